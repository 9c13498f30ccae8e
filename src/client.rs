//! An HTTP client of an agent's API, as Consul's `api` package is one: the CLI commands and
//! the agent's own watches (`watch`) talk to the agent through it.

use reqwest::{Method, StatusCode};

/// A response: status, `X-Consul-Index` (0 when absent) and body.
pub struct Response {
    pub status: StatusCode,
    pub index: u64,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Any status but 200 becomes the consul CLI's error text.
    pub fn ok(self) -> Result<Response, String> {
        if self.status == StatusCode::OK {
            Ok(self)
        } else {
            Err(unexpected(self.status, &self.text()))
        }
    }

    /// Whether the body is the JSON `true` Consul answers successful writes with.
    pub fn is_true(&self) -> bool {
        self.body.trim_ascii() == b"true"
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    datacenter: Option<String>,
}

impl Client {
    /// A client of the agent at `addr` (`host:port`, or a URL with its scheme), sending
    /// `token` and `?dc=datacenter` with every request when given.
    pub fn with(addr: &str, token: Option<String>, datacenter: Option<String>) -> Client {
        let addr = addr.trim_end_matches('/');
        let base = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        Client {
            http: reqwest::Client::new(),
            base,
            token,
            datacenter,
        }
    }

    /// The request for `path` with `query`, the datacenter and the token.
    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let mut url = format!("{}{}", self.base, path);
        let mut pairs: Vec<(&str, String)> = query.to_vec();
        if let Some(dc) = &self.datacenter {
            pairs.push(("dc", dc.clone()));
        }
        if !pairs.is_empty() {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            url.push('?');
            url.push_str(&encoded);
        }
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.header("X-Consul-Token", token);
        }
        request
    }

    /// Sends a request to `path` (which starts with `/v1/`) with `query` pairs appended.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, String> {
        let response = self
            .start(method, path, query, body.map(reqwest::Body::from))
            .await?;
        read_whole(response).await
    }

    /// Streams `body` (a file, say) to `path`; any status but 200 becomes the consul CLI's
    /// error text.
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        body: reqwest::Body,
    ) -> Result<Response, String> {
        let response = self.start(method, path, &[], Some(body)).await?;
        read_whole(response).await?.ok()
    }

    /// GETs `path` and writes a 200's body to `out` as it arrives; returns its
    /// `X-Consul-Index`. Any other status becomes the consul CLI's error text.
    pub async fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut impl std::io::Write,
    ) -> Result<u64, String> {
        let mut response = self.start(Method::GET, path, query, None).await?;
        let index = index_of(&response);
        if response.status() != StatusCode::OK {
            return Err(refused(response).await);
        }
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            out.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        Ok(index)
    }

    async fn start(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, String> {
        let mut request = self.request(method, path, query);
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.map_err(|e| e.to_string())
    }

    /// Starts a GET whose body is read as it arrives (a stream such as the agent's monitor);
    /// any status but 200 becomes the consul CLI's error text.
    pub async fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, String> {
        let response = self.start(Method::GET, path, query, None).await?;
        if response.status() == StatusCode::OK {
            return Ok(response);
        }
        Err(refused(response).await)
    }

    /// Like `send`, and any status but 200 becomes the consul CLI's error text.
    pub async fn ok(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, String> {
        self.send(method, path, query, body).await?.ok()
    }
}

/// The consul CLI's error text for a streamed answer other than 200, read from its body.
async fn refused(response: reqwest::Response) -> String {
    let status = response.status();
    unexpected(status, &response.text().await.unwrap_or_default())
}

/// A response read whole, with its status and `X-Consul-Index`.
async fn read_whole(response: reqwest::Response) -> Result<Response, String> {
    let (status, index) = (response.status(), index_of(&response));
    let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok(Response {
        status,
        index,
        body,
    })
}

fn index_of(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The consul CLI's text for an answer other than 200.
fn unexpected(status: StatusCode, body: &str) -> String {
    format!("Unexpected response code: {} ({body})", status.as_u16())
}

/// Percent-encodes one path segment (a service or node name).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
