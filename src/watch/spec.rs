//! Watch definitions, as Consul's `api/watch` parses them: a map of parameters (the agent
//! config's `watches` entries, or what `legate watch` builds from its flags) becomes a
//! [`WatchSpec`] (what to watch) and, for the agent, a [`Handler`] (what to run on change).
//! Every parameter must be consumed; errors carry Consul's texts.

use serde_json::{Map, Value};
use std::time::Duration;

/// The view of the agent's data a watch follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Key(String),
    KeyPrefix(String),
    Services,
    Nodes,
    Service {
        service: String,
        tags: Vec<String>,
        passing_only: bool,
    },
    /// The checks of one service, or the checks in one state (`any` for all).
    Checks(ChecksOf),
    /// User events, optionally only those of one name.
    Event(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChecksOf {
    Service(String),
    State(String),
}

/// What to watch and how to ask for it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSpec {
    pub query: Query,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    pub stale: bool,
}

/// What the agent runs when a watched view changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Handler {
    /// The legacy `handler` string, run through the shell.
    Shell(String),
    /// `args`: a program and its arguments, run directly.
    Args(Vec<String>),
    /// `handler_type = "http"`: the JSON is sent to an HTTP endpoint.
    Http(HttpHandler),
}

/// `http_handler_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpHandler {
    pub path: String,
    pub method: String,
    pub header: Vec<(String, String)>,
    pub timeout: Duration,
    pub tls_skip_verify: bool,
}

/// One entry of the agent config's `watches`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentWatch {
    pub spec: WatchSpec,
    pub handler: Handler,
}

/// Consul's default for `http_handler_config.timeout`.
const HTTP_HANDLER_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses a watch's parameters (consumed as they are read; any left over is refused).
pub fn parse(params: &mut Map<String, Value>) -> Result<WatchSpec, String> {
    let datacenter = take_string(params, "datacenter")?;
    let token = take_string(params, "token")?;
    let kind = take_string(params, "type")?.unwrap_or_default();
    if kind.is_empty() {
        return Err("Watch type must be specified".into());
    }
    let (query, stale) = match kind.as_str() {
        "key" => {
            let stale = take_bool(params, "stale")?;
            let key = take_string(params, "key")?.unwrap_or_default();
            if key.is_empty() {
                return Err("Must specify a single key to watch".into());
            }
            (Query::Key(key), stale)
        }
        "keyprefix" => {
            let stale = take_bool(params, "stale")?;
            let prefix = take_string(params, "prefix")?.unwrap_or_default();
            if prefix.is_empty() {
                return Err("Must specify a single prefix to watch".into());
            }
            (Query::KeyPrefix(prefix), stale)
        }
        "services" => (Query::Services, take_bool(params, "stale")?),
        "nodes" => (Query::Nodes, take_bool(params, "stale")?),
        "service" => {
            let stale = take_bool(params, "stale")?;
            let service = take_string(params, "service")?.unwrap_or_default();
            if service.is_empty() {
                return Err("Must specify a single service to watch".into());
            }
            let tags = take_strings(params, "tag")?;
            let passing_only = take_bool(params, "passingonly")?;
            let query = Query::Service {
                service,
                tags,
                passing_only,
            };
            (query, stale)
        }
        "checks" => {
            let stale = take_bool(params, "stale")?;
            let service = take_string(params, "service")?.unwrap_or_default();
            let state = take_string(params, "state")?.unwrap_or_default();
            let of = match (service.is_empty(), state.is_empty()) {
                (false, false) => return Err("Cannot specify service and state".into()),
                (false, true) => ChecksOf::Service(service),
                (true, false) => ChecksOf::State(state),
                (true, true) => ChecksOf::State("any".into()),
            };
            (Query::Checks(of), stale)
        }
        // The stale setting doesn't apply to events.
        "event" => (
            Query::Event(take_string(params, "name")?.unwrap_or_default()),
            false,
        ),
        other => return Err(format!("Unsupported watch type: {other}")),
    };
    Ok(WatchSpec {
        query,
        datacenter,
        token,
        stale,
    })
}

/// Parses one entry of the agent config's `watches`, as Consul's agent does when it loads
/// them (`handler_type` defaults to `script`; exactly one of `handler`, `args` and
/// `http_handler_config`).
pub fn parse_agent_watch(entry: &Value) -> Result<AgentWatch, String> {
    let Value::Object(original) = entry else {
        return Err(format!("a watch must be an object, not {entry}"));
    };
    let mut params = original.clone();
    let handler_type = match params.remove("handler_type") {
        None => "script".to_string(),
        Some(Value::String(t)) if t == "http" || t == "script" => t,
        Some(Value::String(t)) => return Err(format!("Handler type '{t}' not recognized")),
        Some(other) => return Err(format!("Handler type '{other}' not recognized")),
    };
    if let Some(Value::String(kind)) = params.get("type") {
        if kind.starts_with("connect_") {
            return Err(format!("Watch type {kind} is not allowed in agent config"));
        }
    }
    let failed = |e: String| {
        format!(
            "Failed to parse watch ({}): {e}",
            Value::Object(original.clone())
        )
    };
    let http = if handler_type == "http" {
        let raw = params.remove("http_handler_config").ok_or_else(|| {
            failed("Handler type 'http' requires 'http_handler_config' to be set".into())
        })?;
        Some(
            http_handler(raw)
                .map_err(|e| failed(format!("Failed to parse 'http_handler_config': {e}")))?,
        )
    } else {
        None
    };
    let handler = params.remove("handler");
    let args = params.remove("args");
    let spec = parse(&mut params).map_err(failed)?;
    if !params.is_empty() {
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        return Err(failed(format!("Invalid parameters: [{}]", keys.join(" "))));
    }
    let handler = match (handler, args, http) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err("Only one watch handler allowed".into())
        }
        (Some(Value::String(script)), None, None) => {
            tracing::warn!("The 'handler' field in watches has been deprecated and replaced with the 'args' field. See https://www.consul.io/docs/agent/watches.html");
            Handler::Shell(script)
        }
        (Some(_), None, None) => return Err("Watch handler must be a string".into()),
        (None, Some(args), None) => Handler::Args(watch_args(args)?),
        (None, None, Some(http)) => Handler::Http(http),
        (None, None, None) => return Err("Must define a watch handler".into()),
    };
    Ok(AgentWatch { spec, handler })
}

fn watch_args(args: Value) -> Result<Vec<String>, String> {
    match args {
        Value::String(one) => Ok(vec![one]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err("Watch args must be a list of strings".to_string()),
            })
            .collect(),
        _ => Err("Watch args must be a list of strings".into()),
    }
}

fn http_handler(raw: Value) -> Result<HttpHandler, String> {
    // HCL blocks may arrive as a one-element list.
    let raw = match raw {
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => other,
    };
    let Value::Object(mut map) = raw else {
        return Err(format!("expected a map, got {raw}"));
    };
    let path = take_string(&mut map, "path")?.unwrap_or_default();
    let method = take_string(&mut map, "method")?
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "POST".into());
    let timeout = match take_string(&mut map, "timeout")? {
        None => HTTP_HANDLER_TIMEOUT,
        Some(t) if t.is_empty() => HTTP_HANDLER_TIMEOUT,
        Some(t) => {
            crate::duration::parse(&t).map_err(|e| format!("Failed to parse timeout: {e}"))?
        }
    };
    let tls_skip_verify = take_bool(&mut map, "tls_skip_verify")?;
    let mut header = Vec::new();
    match map.remove("header") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) => {
            for (name, values) in headers {
                for value in watch_args(values)
                    .map_err(|_| format!("header {name:?}: expected a list of strings"))?
                {
                    header.push((name.clone(), value));
                }
            }
        }
        Some(other) => return Err(format!("header: expected a map, got {other}")),
    }
    if let Some(key) = map.keys().next() {
        return Err(format!("invalid key {key:?}"));
    }
    if path.is_empty() {
        return Err("Requires 'path' to be set".into());
    }
    Ok(HttpHandler {
        path,
        method,
        header,
        timeout,
        tls_skip_verify,
    })
}

fn take_string(params: &mut Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match params.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Expecting {name} to be a string")),
    }
}

fn take_bool(params: &mut Map<String, Value>, name: &str) -> Result<bool, String> {
    match params.remove(name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(format!("Expecting {name} to be a boolean")),
    }
}

fn take_strings(params: &mut Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    match params.remove(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                _ => Err(format!("Index {i} of {name} expected to be string")),
            })
            .collect(),
        Some(_) => Err(format!("Expecting {name} to be a string or []string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<WatchSpec, String> {
        let Value::Object(mut map) = v else { panic!() };
        let spec = parse(&mut map)?;
        assert!(map.is_empty(), "left over: {map:?}");
        Ok(spec)
    }

    #[test]
    fn types_and_their_parameters() {
        assert_eq!(
            spec(json!({"type": "key", "key": "a/b", "stale": true})).unwrap(),
            WatchSpec {
                query: Query::Key("a/b".into()),
                datacenter: None,
                token: None,
                stale: true
            }
        );
        assert_eq!(
            spec(
                json!({"type": "service", "service": "web", "tag": ["a", "b"], "passingonly": true})
            )
            .unwrap()
            .query,
            Query::Service {
                service: "web".into(),
                tags: vec!["a".into(), "b".into()],
                passing_only: true
            }
        );
        assert_eq!(
            spec(json!({"type": "checks"})).unwrap().query,
            Query::Checks(ChecksOf::State("any".into()))
        );
        assert_eq!(
            spec(json!({"type": "checks", "service": "s", "state": "passing"})).unwrap_err(),
            "Cannot specify service and state"
        );
        assert_eq!(
            spec(json!({"type": "key"})).unwrap_err(),
            "Must specify a single key to watch"
        );
        assert_eq!(
            spec(json!({"type": "nope"})).unwrap_err(),
            "Unsupported watch type: nope"
        );
        assert_eq!(
            spec(json!({"type": "key", "key": 1})).unwrap_err(),
            "Expecting key to be a string"
        );
        assert_eq!(spec(json!({})).unwrap_err(), "Watch type must be specified");
    }

    #[test]
    fn agent_watches_need_exactly_one_handler() {
        let w = parse_agent_watch(&json!({"type": "key", "key": "k", "args": ["a", "b"]})).unwrap();
        assert_eq!(w.handler, Handler::Args(vec!["a".into(), "b".into()]));
        let w = parse_agent_watch(&json!({"type": "nodes", "handler": "echo hi"})).unwrap();
        assert_eq!(w.handler, Handler::Shell("echo hi".into()));
        let w = parse_agent_watch(&json!({
            "type": "services", "handler_type": "http",
            "http_handler_config": {"path": "http://x/y", "header": {"X-A": ["1", "2"]}, "timeout": "5s"}
        }))
        .unwrap();
        assert_eq!(
            w.handler,
            Handler::Http(HttpHandler {
                path: "http://x/y".into(),
                method: "POST".into(),
                header: vec![("X-A".into(), "1".into()), ("X-A".into(), "2".into())],
                timeout: Duration::from_secs(5),
                tls_skip_verify: false
            })
        );
        for (entry, error) in [
            (
                json!({"type": "key", "key": "k"}),
                "Must define a watch handler",
            ),
            (
                json!({"type": "key", "key": "k", "handler": "x", "args": ["y"]}),
                "Only one watch handler allowed",
            ),
            (
                json!({"type": "key", "key": "k", "args": ["y", true]}),
                "Watch args must be a list of strings",
            ),
            (
                json!({"type": "key", "key": "k", "args": ["y"], "handler_type": "exec"}),
                "Handler type 'exec' not recognized",
            ),
            (
                json!({"type": "connect_roots", "args": ["y"]}),
                "Watch type connect_roots is not allowed in agent config",
            ),
        ] {
            assert_eq!(parse_agent_watch(&entry).unwrap_err(), error, "{entry}");
        }
        let err = parse_agent_watch(&json!({"type": "key", "key": "k", "args": ["y"], "bogus": 1}))
            .unwrap_err();
        assert!(err.ends_with("Invalid parameters: [bogus]"), "{err}");
        let err = parse_agent_watch(&json!({"type": "key", "key": "k", "handler_type": "http",
            "http_handler_config": {"method": "PUT"}}))
        .unwrap_err();
        assert!(
            err.ends_with("Failed to parse 'http_handler_config': Requires 'path' to be set"),
            "{err}"
        );
    }
}
