//! HTTP checks: 2xx passing, 429 warning, anything else (or a transport error) critical.
//!
//! One client per check: no keep-alive (no idle pooling plus `Connection: close`), no proxy,
//! a total per-request timeout, redirects followed up to 10 unless disabled (then the 3xx
//! itself is the result), certificate checks off with `tls_skip_verify`.
//!
//! `tls_server_name` (HTTPS only, a DNS name) is the name used for SNI and certificate
//! verification instead of the URL's host. The request is sent to the server-name host while
//! a check-private resolver maps that name to the URL's real host, and the `Host` header
//! keeps the URL's authority, so the server sees the same request as without the override.

use super::output::TailBuffer;
use super::tcp::dial_error;
use super::{CheckStatus, HttpSpec};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONNECTION, HOST, USER_AGENT};
use reqwest::{Method, Url};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The `User-Agent` sent unless the check sets one.
pub const USER_AGENT_DEFAULT: &str = "Consul Health Check";
/// The `Accept` sent unless the check sets one.
pub const ACCEPT_DEFAULT: &str = "text/plain, text/*, */*";

/// Where the `tls_server_name` host really points.
#[derive(Debug, Clone)]
enum RealHost {
    Ip(IpAddr),
    Domain(String),
}

/// Resolves the TLS server name to the URL's real host; every other name normally.
struct ServerNameResolver {
    server_name: String,
    real: RealHost,
}

async fn lookup(host: String) -> Result<Addrs, Box<dyn StdError + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    Ok(Box::new(addrs.into_iter()))
}

impl Resolve for ServerNameResolver {
    fn resolve(&self, name: Name) -> Resolving {
        if name.as_str().eq_ignore_ascii_case(&self.server_name) {
            match &self.real {
                RealHost::Ip(ip) => {
                    let addr = SocketAddr::new(*ip, 0);
                    Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
                }
                RealHost::Domain(domain) => Box::pin(lookup(domain.clone())),
            }
        } else {
            Box::pin(lookup(name.as_str().to_string()))
        }
    }
}

/// A prepared HTTP check.
pub(crate) struct HttpProbe {
    spec: HttpSpec,
    method: String,
    max_output: usize,
    /// The client, or why it could not be built (reported on every run).
    client: Result<reqwest::Client, String>,
    /// With a `tls_server_name` override: the URL actually requested and the original authority.
    rewrite: Option<(Url, String)>,
}

impl HttpProbe {
    pub(crate) fn new(spec: HttpSpec, timeout: Duration, max_output: usize) -> HttpProbe {
        let method = if spec.method.is_empty() {
            "GET".to_string()
        } else {
            spec.method.clone()
        };
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .no_proxy()
            .timeout(timeout)
            .redirect(if spec.disable_redirects {
                reqwest::redirect::Policy::none()
            } else {
                reqwest::redirect::Policy::limited(10)
            })
            .danger_accept_invalid_certs(spec.tls_skip_verify);
        let rewrite = server_name_rewrite(&spec);
        if let Some((url, _)) = &rewrite {
            let original = Url::parse(&spec.url).expect("parsed by server_name_rewrite");
            let host = original.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let real = match bare.parse::<IpAddr>() {
                Ok(ip) => RealHost::Ip(ip),
                Err(_) => RealHost::Domain(host.to_string()),
            };
            let server_name = url.host_str().unwrap_or_default().to_string();
            builder = builder.dns_resolver(Arc::new(ServerNameResolver { server_name, real }));
        }
        let client = builder.build().map_err(|e| deepest_message(&e));
        HttpProbe {
            spec,
            method,
            max_output,
            client,
            rewrite,
        }
    }

    /// Runs one HTTP check.
    pub(crate) async fn run(&self) -> (CheckStatus, String) {
        match self.request().await {
            Ok(result) => result,
            Err(message) => (CheckStatus::Critical, message),
        }
    }

    async fn request(&self) -> Result<(CheckStatus, String), String> {
        let url_text = &self.spec.url;
        let op = go_op(&self.method);
        let client = self
            .client
            .as_ref()
            .map_err(|e| format!("{op} {url_text:?}: {e}"))?;
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("net/http: invalid method {:?}", self.method))?;
        let url = match &self.rewrite {
            Some((url, _)) => url.clone(),
            None => Url::parse(url_text).map_err(|e| format!("parse {url_text:?}: {e}"))?,
        };
        let headers = self
            .headers()
            .map_err(|e| format!("{op} {url_text:?}: {e}"))?;

        let mut request = client.request(method, url).headers(headers);
        if !self.spec.body.is_empty() {
            request = request.body(self.spec.body.clone());
        }
        let mut response = request.send().await.map_err(|e| self.describe_error(&e))?;

        let code = response.status();
        let status_line = match code.canonical_reason() {
            Some(reason) => format!("{} {}", code.as_u16(), reason),
            None => code.as_u16().to_string(),
        };
        let mut body = TailBuffer::new(self.max_output);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.write(&chunk),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(url = %url_text, error = %e, "check error while reading body");
                    break;
                }
            }
        }
        let output = format!(
            "HTTP {} {}: {} Output: {}",
            self.method,
            url_text,
            status_line,
            body.text()
        );
        let status = if code.is_success() {
            CheckStatus::Passing
        } else if code.as_u16() == 429 {
            CheckStatus::Warning
        } else {
            CheckStatus::Critical
        };
        Ok((status, output))
    }

    /// The request headers: the check's, then the defaults it did not set.
    fn headers(&self) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        let mut host: Option<&str> = None;
        for (name, values) in &self.spec.header {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
            if header == HOST {
                // Like Go's `req.Host`: the first value wins, an empty one does not count.
                host = values.first().map(String::as_str).filter(|v| !v.is_empty());
                continue;
            }
            for value in values {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("net/http: invalid header field value for {name:?}"))?;
                headers.append(header.clone(), value);
            }
        }
        let host = host.or(self
            .rewrite
            .as_ref()
            .map(|(_, authority)| authority.as_str()));
        if let Some(host) = host {
            let value = HeaderValue::from_str(host)
                .map_err(|_| format!("net/http: invalid Host header {host:?}"))?;
            headers.insert(HOST, value);
        }
        for (name, default) in [(USER_AGENT, USER_AGENT_DEFAULT), (ACCEPT, ACCEPT_DEFAULT)] {
            let unset = headers.get(&name).is_none_or(|v| v.as_bytes().is_empty());
            if unset {
                headers.insert(name, HeaderValue::from_static(default));
            }
        }
        if !headers.contains_key(CONNECTION) {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(headers)
    }

    /// Go's `url.Error` text for a failed request: `Get "<url>": <cause>`.
    fn describe_error(&self, e: &reqwest::Error) -> String {
        let op = go_op(&self.method);
        let url = match (&self.rewrite, e.url()) {
            (None, Some(url)) => url.clone(),
            _ => Url::parse(&self.spec.url).expect("the request was built from it"),
        };
        let cause = if e.is_timeout() {
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".to_string()
        } else if e.is_redirect() {
            "stopped after 10 redirects".to_string()
        } else if let Some(io) = find_io_error(e).filter(|io| io.raw_os_error().is_some()) {
            match (url.host_str(), url.port_or_known_default()) {
                (Some(host), Some(port)) => match format!("{host}:{port}").parse::<SocketAddr>() {
                    Ok(addr) => dial_error(addr, io),
                    Err(_) => format!("dial tcp {host}:{port}: connect: {}", super::error_text(io)),
                },
                _ => super::error_text(io),
            }
        } else {
            let deepest = deepest_message(e);
            if deepest.contains("failed to lookup address") {
                format!(
                    "dial tcp: lookup {}: no such host",
                    url.host_str().unwrap_or_default()
                )
            } else {
                deepest
            }
        };
        format!("{op} {:?}: {cause}", url.as_str())
    }
}

/// The `tls_server_name` rewrite of the check's URL, when one applies: HTTPS, a DNS name that
/// differs from the URL's host. Returns the URL to request and the original authority.
fn server_name_rewrite(spec: &HttpSpec) -> Option<(Url, String)> {
    let server_name = spec.tls_server_name.trim();
    if server_name.is_empty() || server_name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let original = Url::parse(&spec.url).ok()?;
    if original.scheme() != "https" {
        return None;
    }
    let host = original.host_str()?;
    if host.eq_ignore_ascii_case(server_name) {
        return None;
    }
    let authority = match original.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let mut rewritten = original.clone();
    rewritten.set_host(Some(server_name)).ok()?;
    Some((rewritten, authority))
}

/// Go's `url.Error.Op`: the method with only its first letter upper-case (`Get`, `Post`).
fn go_op(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => {
            first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
        }
        None => String::new(),
    }
}

fn find_io_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a std::io::Error> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = err.source();
    }
    None
}

/// The innermost error's message (the outer layers only repeat the URL or say "client error").
fn deepest_message(e: &(dyn StdError + 'static)) -> String {
    let mut current: &(dyn StdError + 'static) = e;
    while let Some(next) = current.source() {
        current = next;
    }
    match current.downcast_ref::<std::io::Error>() {
        Some(io) => super::error_text(io),
        None => current.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{closed_port, TestServer};
    use super::*;
    use std::collections::BTreeMap;

    fn spec(url: String) -> HttpSpec {
        HttpSpec {
            url,
            ..HttpSpec::default()
        }
    }

    async fn run_spec(spec: HttpSpec) -> (CheckStatus, String) {
        HttpProbe::new(spec, Duration::from_secs(5), 4096)
            .run()
            .await
    }

    #[tokio::test]
    async fn status_codes_map_to_statuses() {
        let server = TestServer::start().await;
        let url = server.url("/ok");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Passing,
                format!("HTTP GET {url}: 200 OK Output: ok")
            )
        );
        let url = server.url("/status/204");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Passing,
                format!("HTTP GET {url}: 204 No Content Output: ")
            )
        );
        let url = server.url("/status/429");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Warning,
                format!("HTTP GET {url}: 429 Too Many Requests Output: status 429")
            )
        );
        let url = server.url("/status/500");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Critical,
                format!("HTTP GET {url}: 500 Internal Server Error Output: status 500")
            )
        );
        let url = server.url("/status/404");
        assert_eq!(run_spec(spec(url)).await.0, CheckStatus::Critical);
    }

    #[tokio::test]
    async fn sends_method_body_and_headers() {
        let server = TestServer::start().await;
        let url = server.url("/ok");
        let mut header = BTreeMap::new();
        header.insert(
            "X-Token".to_string(),
            vec!["a".to_string(), "b".to_string()],
        );
        header.insert("Host".to_string(), vec!["service.example:8080".to_string()]);
        let spec = HttpSpec {
            url: url.clone(),
            method: "POST".to_string(),
            header,
            body: "{\"ping\":1}".to_string(),
            ..HttpSpec::default()
        };
        let (status, output) = run_spec(spec).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, format!("HTTP POST {url}: 200 OK Output: ok"));

        let request = server.last_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/ok");
        assert_eq!(request.body, "{\"ping\":1}");
        assert_eq!(request.header("host"), vec!["service.example:8080"]);
        assert_eq!(request.header("x-token"), vec!["a", "b"]);
        assert_eq!(request.header("user-agent"), vec![USER_AGENT_DEFAULT]);
        assert_eq!(request.header("accept"), vec![ACCEPT_DEFAULT]);
        assert_eq!(request.header("connection"), vec!["close"]);
    }

    #[tokio::test]
    async fn check_headers_override_defaults() {
        let server = TestServer::start().await;
        let mut header = BTreeMap::new();
        header.insert("user-agent".to_string(), vec!["probe/1".to_string()]);
        header.insert("Accept".to_string(), vec!["application/json".to_string()]);
        let spec = HttpSpec {
            url: server.url("/ok"),
            header,
            ..HttpSpec::default()
        };
        assert_eq!(run_spec(spec).await.0, CheckStatus::Passing);
        let request = server.last_request();
        assert_eq!(request.method, "GET");
        assert_eq!(request.header("user-agent"), vec!["probe/1"]);
        assert_eq!(request.header("accept"), vec!["application/json"]);
        assert_eq!(request.header("host"), vec![server.addr.to_string()]);
    }

    #[tokio::test]
    async fn redirects_are_followed_unless_disabled() {
        let server = TestServer::start().await;
        let url = server.url("/redirect");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Passing,
                format!("HTTP GET {url}: 200 OK Output: ok")
            )
        );
        let disabled = HttpSpec {
            disable_redirects: true,
            ..spec(url.clone())
        };
        assert_eq!(
            run_spec(disabled).await,
            (
                CheckStatus::Critical,
                format!("HTTP GET {url}: 302 Found Output: moved")
            )
        );
        let url = server.url("/loop");
        assert_eq!(
            run_spec(spec(url.clone())).await,
            (
                CheckStatus::Critical,
                format!("Get {url:?}: stopped after 10 redirects")
            )
        );
    }

    #[tokio::test]
    async fn body_keeps_the_last_bytes() {
        let server = TestServer::start().await;
        let url = server.url("/big");
        let (status, output) = HttpProbe::new(spec(url.clone()), Duration::from_secs(5), 10)
            .run()
            .await;
        assert_eq!(status, CheckStatus::Passing);
        // /big answers 10000 bytes ending in "0123456789".
        assert_eq!(output, format!("HTTP GET {url}: 200 OK Output: 0123456789"));
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections_are_critical() {
        let server = TestServer::start().await;
        let url = server.url("/slow");
        let started = std::time::Instant::now();
        let (status, output) = HttpProbe::new(spec(url.clone()), Duration::from_millis(200), 4096)
            .run()
            .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!(
                "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )
        );

        let port = closed_port().await;
        let url = format!("http://127.0.0.1:{port}/health");
        let (status, output) = run_spec(spec(url.clone())).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!("Get {url:?}: dial tcp 127.0.0.1:{port}: connect: connection refused")
        );

        let (status, output) = run_spec(HttpSpec {
            method: "PUT".into(),
            ..spec(url.clone())
        })
        .await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.starts_with(&format!("Put {url:?}: ")), "{output}");
    }

    #[tokio::test]
    async fn invalid_requests_are_critical() {
        let (status, output) = run_spec(spec("not a url".to_string())).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.starts_with("parse \"not a url\": "), "{output}");

        let bad_method = HttpSpec {
            method: "GE T".into(),
            ..spec("http://127.0.0.1:1/".into())
        };
        assert_eq!(
            run_spec(bad_method).await,
            (
                CheckStatus::Critical,
                "net/http: invalid method \"GE T\"".to_string()
            )
        );

        let mut header = BTreeMap::new();
        header.insert("bad name".to_string(), vec!["x".to_string()]);
        let bad_header = HttpSpec {
            header,
            ..spec("http://127.0.0.1:1/".into())
        };
        let (status, output) = run_spec(bad_header).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(
            output.ends_with("net/http: invalid header field name \"bad name\""),
            "{output}"
        );
    }

    #[tokio::test]
    async fn https_uses_tls_and_the_server_name_override() {
        // The target speaks plain HTTP, so the handshake fails; what it received shows the TLS
        // client hello went to the URL's address with the overriding server name (SNI).
        let server = TestServer::start().await;
        let url = format!("https://{}/ok", server.addr);
        let https = HttpSpec {
            tls_skip_verify: true,
            tls_server_name: "check.example.test".to_string(),
            ..spec(url.clone())
        };
        let (status, output) = run_spec(https).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.starts_with(&format!("Get {url:?}: ")), "{output}");
        let hello = server.wait_raw().await;
        assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
        let sni = b"check.example.test";
        assert!(
            hello.windows(sni.len()).any(|w| w == sni),
            "SNI carries the server name"
        );

        // Without an override: plain TLS to the URL's host.
        let (status, output) = run_spec(HttpSpec {
            tls_skip_verify: true,
            ..spec(url.clone())
        })
        .await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.starts_with(&format!("Get {url:?}: ")), "{output}");
    }

    #[test]
    fn server_name_rewrite_rules() {
        let with = |url: &str, name: &str| HttpSpec {
            url: url.to_string(),
            tls_server_name: name.to_string(),
            ..HttpSpec::default()
        };
        let (url, authority) =
            server_name_rewrite(&with("https://10.0.0.1:8443/h?x=1", "svc.local")).unwrap();
        assert_eq!(url.as_str(), "https://svc.local:8443/h?x=1");
        assert_eq!(authority, "10.0.0.1:8443");
        let (_, authority) = server_name_rewrite(&with("https://[::1]/h", "svc.local")).unwrap();
        assert_eq!(authority, "[::1]");
        assert!(server_name_rewrite(&with("http://10.0.0.1/h", "svc.local")).is_none());
        assert!(server_name_rewrite(&with("https://svc.local/h", "SVC.local")).is_none());
        assert!(server_name_rewrite(&with("https://10.0.0.1/h", "10.0.0.2")).is_none());
        assert!(server_name_rewrite(&with("https://10.0.0.1/h", "")).is_none());
    }

    #[test]
    fn go_ops() {
        assert_eq!(go_op("GET"), "Get");
        assert_eq!(go_op("post"), "Post");
        assert_eq!(go_op(""), "");
    }
}
