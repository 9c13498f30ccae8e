//! Query options shared by every endpoint: parsed once from the raw query pairs and headers
//! into a `QueryOptions` that cannot be contradictory (Consul's `parse` in `agent/http.go`).

use super::error::ApiError;
use std::time::Duration;
use warp::http::HeaderMap;

/// Consul's default and maximum blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The raw query string as ordered pairs; value-less flags (`?recurse`) have an empty value.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &str) -> Self {
        Params(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }
    /// The first value of `name`, if present (`Some("")` for a flag without a value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// Every value of a repeatable parameter (`?tag=a&tag=b`), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The query re-encoded with keys sorted, as Go's `url.Values.Encode` renders it.
    pub fn encode_sorted(&self) -> String {
        let mut pairs = self.0.clone();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }
    /// Parses an unsigned integer parameter, with Go's `strconv.ParseUint` error text.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// `?index=`: block until the result's index exceeds this (0: don't block).
    pub index: u64,
    /// `?hash=`: block until the result's content hash differs from this.
    pub hash: Option<String>,
    /// How long a blocking query may wait, already clamped to `MAX_WAIT`.
    pub wait: Duration,
    pub stale: bool,
    pub consistent: bool,
    pub pretty: bool,
    pub filter: Option<String>,
    pub token: Option<String>,
}

/// What the parse needs to know about the agent and the route.
pub struct Defaults<'a> {
    /// The agent's datacenter when the route forwards by `?dc` (another one has no path);
    /// `None` on a route that answers locally and ignores it (see `forwards_by_datacenter`).
    pub datacenter: Option<&'a str>,
    pub default_wait: Duration,
    pub max_wait: Duration,
}

/// Whether Consul's handler for `path` reads `?dc` and forwards there: the agent's own
/// endpoints (but its CA roots and leaf certificates), its event buffer, the keyring (asked of
/// every datacenter at once), the UI's metrics proxy and the datacenter lists answer locally
/// and ignore it.
pub fn forwards_by_datacenter(path: &str) -> bool {
    match path.strip_prefix("/v1/agent/") {
        Some(rest) => rest == "connect/ca/roots" || rest.starts_with("connect/ca/leaf/"),
        None => {
            !path.starts_with("/v1/internal/ui/metrics-proxy/")
                && !matches!(
                    path,
                    "/v1/event/list"
                        | "/v1/operator/keyring"
                        | "/v1/catalog/datacenters"
                        | "/v1/coordinate/datacenters"
                )
        }
    }
}

impl QueryOptions {
    pub fn parse(params: &Params, headers: &HeaderMap, agent: &Defaults) -> Result<Self, ApiError> {
        if let (Some(dc), Some(ours)) = (params.get("dc"), agent.datacenter) {
            if !dc.is_empty() && dc != ours {
                return Err(ApiError::internal("No path to datacenter"));
            }
        }
        check_tenancy(params, headers)?;
        let index = match params.get("index") {
            None | Some("") => 0,
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid index"))?,
        };
        let wait = match params.get("wait") {
            None | Some("") => agent.default_wait,
            Some(v) => {
                crate::duration::parse(v).map_err(|_| ApiError::bad_request("Invalid wait time"))?
            }
        };
        let wait = if wait.is_zero() {
            agent.default_wait
        } else {
            wait.min(agent.max_wait)
        };
        let stale = params.has("stale");
        let consistent = params.has("consistent");
        if stale && consistent {
            return Err(ApiError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        Ok(QueryOptions {
            index,
            hash: params
                .get("hash")
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            wait,
            stale,
            consistent,
            pretty: params.has("pretty"),
            filter: params
                .get("filter")
                .filter(|f| !f.is_empty())
                .map(str::to_string),
            token: token(params, headers),
        })
    }
}

impl QueryOptions {
    /// The parsed `?filter=` expression; an invalid one is a 400 with go-bexpr's message.
    pub fn parsed_filter(&self) -> Result<Option<crate::filter::Filter>, ApiError> {
        self.filter
            .as_deref()
            .map(crate::filter::Filter::parse)
            .transpose()
            .map_err(ApiError::from)
    }
}

/// The request's ACL token: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`.
pub fn token(params: &Params, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = params.get("token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    if let Some(t) = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok()) {
        if !t.is_empty() {
            return Some(t.to_string());
        }
    }
    let auth = headers.get("Authorization").and_then(|v| v.to_str().ok())?;
    let mut words = auth.split_whitespace();
    let scheme = words.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    words.next().map(str::to_string)
}

/// Namespaces and partitions are Enterprise features: only `default` is accepted here.
fn check_tenancy(params: &Params, headers: &HeaderMap) -> Result<(), ApiError> {
    let checks = [
        ("header", "X-Consul-Namespace", "Namespaces"),
        ("query parameter", "ns", "Namespaces"),
        ("header", "X-Consul-Partition", "Partitions"),
        ("query parameter", "partition", "Partitions"),
    ];
    for (kind, name, feature) in checks {
        let value = if kind == "header" {
            headers.get(name).and_then(|v| v.to_str().ok())
        } else {
            params.get(name)
        };
        if let Some(v) = value {
            if !v.is_empty() && v != "default" {
                return Err(ApiError::bad_request(format!(
                    "Invalid {kind}: {name:?} - {feature} are a Consul Enterprise feature"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<QueryOptions, ApiError> {
        let defaults = Defaults {
            datacenter: Some("dc1"),
            default_wait: DEFAULT_WAIT,
            max_wait: MAX_WAIT,
        };
        QueryOptions::parse(&Params::parse(q), &HeaderMap::new(), &defaults)
    }

    #[test]
    fn value_less_flags_are_present() {
        let p = Params::parse("recurse&raw=&keys=1");
        assert_eq!(p.get("recurse"), Some(""));
        assert!(p.has("raw") && p.has("keys") && !p.has("pretty"));
    }

    #[test]
    fn wait_defaults_and_caps() {
        assert_eq!(parse("").unwrap().wait, DEFAULT_WAIT);
        assert_eq!(parse("wait=1m30s").unwrap().wait, Duration::from_secs(90));
        assert_eq!(parse("wait=1h").unwrap().wait, MAX_WAIT);
        assert_eq!(parse("wait=abc").unwrap_err().message, "Invalid wait time");
        assert_eq!(parse("index=x").unwrap_err().message, "Invalid index");
    }

    #[test]
    fn contradictions_and_foreign_datacenters_are_refused() {
        let err = parse("stale&consistent").unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            parse("dc=dc2").unwrap_err().message,
            "No path to datacenter"
        );
        assert!(parse("dc=dc1&ns=default&partition=default").is_ok());
        assert!(forwards_by_datacenter("/v1/agent/connect/ca/leaf/web"));
        assert!(!forwards_by_datacenter("/v1/agent/services"));
        assert!(forwards_by_datacenter("/v1/status/leader"));
        assert!(!forwards_by_datacenter("/v1/catalog/datacenters"));
        assert_eq!(
            parse("ns=team").unwrap_err().message,
            "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature"
        );
    }

    #[test]
    fn token_sources_in_order() {
        let mut h = HeaderMap::new();
        h.insert("Authorization", "Bearer abc".parse().unwrap());
        assert_eq!(token(&Params::parse(""), &h).as_deref(), Some("abc"));
        h.insert("X-Consul-Token", "hdr".parse().unwrap());
        assert_eq!(token(&Params::parse(""), &h).as_deref(), Some("hdr"));
        assert_eq!(token(&Params::parse("token=q"), &h).as_deref(), Some("q"));
    }
}
