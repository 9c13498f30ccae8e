//! The HTTP client the CLI commands share, configured as the consul CLI's is: `-http-addr`
//! (or `CONSUL_HTTP_ADDR`), `-token` / `-token-file` (or `CONSUL_HTTP_TOKEN`), `-datacenter`,
//! `-stale`.

use reqwest::{Method, StatusCode};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpFlags {
    /// Address of the agent's HTTP API.
    #[arg(
        long = "http-addr",
        env = "CONSUL_HTTP_ADDR",
        default_value = "127.0.0.1:8500"
    )]
    pub http_addr: String,
    /// ACL token for the request.
    #[arg(long = "token", env = "CONSUL_HTTP_TOKEN")]
    pub token: Option<String>,
    /// File holding the ACL token.
    #[arg(long = "token-file", env = "CONSUL_HTTP_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    #[arg(long = "datacenter")]
    pub datacenter: Option<String>,
    /// Allow any agent to answer (accepted; a single node is always consistent).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub stale: Option<bool>,
}

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
            Err(format!(
                "Unexpected response code: {} ({})",
                self.status.as_u16(),
                self.text()
            ))
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
    pub fn new(flags: &HttpFlags) -> Result<Client, String> {
        let addr = flags.http_addr.trim_end_matches('/');
        let base = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let token = match (&flags.token, &flags.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("Error reading token file {}: {e}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        Ok(Client {
            http: reqwest::Client::new(),
            base,
            token,
            datacenter: flags.datacenter.clone(),
        })
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
        let (status, index) = (response.status(), index_of(&response));
        let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(Response {
            status,
            index,
            body,
        })
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
        let (status, index) = (response.status(), index_of(&response));
        let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Response {
            status,
            index,
            body,
        }
        .ok()
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
        let (status, index) = (response.status(), index_of(&response));
        if status != reqwest::StatusCode::OK {
            let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
            return Response {
                status,
                index,
                body,
            }
            .ok()
            .map(|_| index);
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
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.map_err(|e| e.to_string())
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

fn index_of(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads a command's DATA argument as the consul CLI does: `@file`, `-` for stdin, else literal.
/// Files and stdin are read up to `MAX_DATA`: past it no agent would take the body anyway, and
/// an endless input (`@/dev/zero`) must not grow without bound.
pub fn read_data(arg: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = arg.strip_prefix('@') {
        let file = std::fs::File::open(path).map_err(|e| format!("Failed to read file: {e}"))?;
        return read_bounded(file).map_err(|e| format!("Failed to read file: {e}"));
    }
    if arg == "-" {
        return read_bounded(std::io::stdin()).map_err(|e| format!("Failed to read stdin: {e}"));
    }
    Ok(arg.as_bytes().to_vec())
}

/// The most `read_data` reads from a file or stdin: the largest body an agent accepts
/// (`limits.txn_max_req_len`'s and `kv_max_value_size`'s ceiling is well below it).
pub const MAX_DATA: u64 = 64 * 1024 * 1024;

fn read_bounded(input: impl std::io::Read) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut input.take(MAX_DATA + 1), &mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_DATA {
        return Err(format!("input is larger than {MAX_DATA} bytes"));
    }
    Ok(buf)
}

/// Parses a Go `FlagMapValue` item (`-meta`, `-node-meta`): `key=value`, split at the first `=`.
pub fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("missing \"=\" value in argument: {arg}")),
    }
}

/// A command's exit code: 0, or 1 after printing its error to stderr (as the consul CLI).
pub fn exit_code(result: Result<(), String>) -> i32 {
    exit_code_of(result.map(|()| 0))
}

/// Like `exit_code`, for commands that choose their own exit code on success.
pub fn exit_code_of(result: Result<i32, String>) -> i32 {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

/// `value` as JSON indented with `indent`, as Go's `json.MarshalIndent(v, "", indent)` (each
/// consul command picks its own indent).
pub fn indented_json<T: serde::Serialize + ?Sized>(
    value: &T,
    indent: &[u8],
) -> Result<String, String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// `-cas` and `-modify-index`, as `kv put|delete` and `config write|delete` take them.
#[derive(Debug, clap::Args)]
pub struct CasFlags {
    /// Check-and-set: act only if the entry's ModifyIndex is -modify-index (0: only create).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    cas: Option<bool>,
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
}

impl CasFlags {
    pub fn on(&self) -> bool {
        self.cas.unwrap_or(false)
    }

    /// The `?cas=` the request carries, if any.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        if self.on() {
            vec![("cas", self.modify_index.to_string())]
        } else {
            Vec::new()
        }
    }
}

/// Builds the client, with the consul CLI's error text.
pub fn connect(flags: &HttpFlags) -> Result<Client, String> {
    Client::new(flags).map_err(|e| format!("Error connecting to Consul agent: {e}"))
}

/// Decodes a JSON response body.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("cannot decode response: {e}"))
}

/// Percent-encodes one path segment (a service or node name).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
