//! `/v1/event/*`: user events. A single node is the whole gossip pool, so firing an event
//! delivers it here at once: it is recorded when its node/service/tag filters match this agent
//! (as every Consul agent applies them before storing an event) in a buffer of the most recent
//! 256, in memory.
//!
//! `/v1/event/list` blocks as Consul's does: its `X-Consul-Index` is derived from the ID of the
//! newest matching event (the UUID's two 64-bit halves XORed), so it is not monotonic; a
//! request blocks only while that index equals `?index`, and wakes when any event is recorded.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::agent::events::UserEvent;
use crate::store::agent_state;
use tokio::time::Instant;
use warp::http::StatusCode;

/// The only user-event version there is.
const USER_EVENT_VERSION: u32 = 1;
/// The remote-exec event, which agents handle themselves (and ignore: remote exec is disabled).
const REMOTE_EXEC_NAME: &str = "_rexec";
/// Serf's default `UserEventSizeLimit`.
const SIZE_LIMIT: usize = 512;
/// The prefix Consul gives user events' names in Serf.
const SERF_PREFIX: &str = "consul:event:";

/// Consul's `uuidToUint64`: the UUID's first 16 hex digits XOR its last 16.
pub fn uuid_to_index(id: &str) -> u64 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return 0;
    }
    let low = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    let high = u64::from_str_radix(&hex[16..], 16).unwrap_or(0);
    low ^ high
}

/// Go's `regexp` error for a pattern Rust's engine refuses, as near as the two engines allow.
pub(crate) fn regex_error(pattern: &str, err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| {
            l.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim().to_string());
    let code = if detail.contains("unclosed group") {
        "missing closing )".to_string()
    } else if detail.contains("unopened group") {
        "unexpected )".to_string()
    } else if detail.contains("unclosed character class") {
        "missing closing ]".to_string()
    } else if detail.contains("repetition operator missing expression") {
        "missing argument to repetition operator".to_string()
    } else if detail.contains("unrecognized escape sequence") {
        "invalid escape sequence".to_string()
    } else {
        detail
    };
    format!("error parsing regexp: {code}: `{pattern}`")
}

fn compile(kind: &str, pattern: &str) -> Result<regex::Regex, ApiError> {
    regex::Regex::new(pattern).map_err(|e| {
        ApiError::internal(format!(
            "Invalid {kind} filter: {}",
            regex_error(pattern, &e)
        ))
    })
}

/// Length of a msgpack string as the user-event codec writes it (str8/16/32).
fn str_len(n: usize) -> usize {
    n + match n {
        0..=31 => 1,
        32..=255 => 2,
        256..=65_535 => 3,
        _ => 5,
    }
}

/// Length of a msgpack binary (bin8/16/32).
fn bin_len(n: usize) -> usize {
    n + match n {
        0..=255 => 2,
        256..=65_535 => 3,
        _ => 5,
    }
}

/// Length of a string or bytes in the older msgpack spec Serf's own codec writes (raw).
fn raw_len(n: usize) -> usize {
    n + match n {
        0..=31 => 1,
        32..=65_535 => 3,
        _ => 5,
    }
}

fn uint_len(v: u64) -> usize {
    match v {
        0..=127 => 1,
        128..=255 => 2,
        256..=65_535 => 3,
        65_536..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The size of the msgpack-encoded event Consul hands to Serf.
fn encoded_len(e: &UserEvent) -> usize {
    let mut n = 1 + str_len(2) + str_len(e.id.len()) + str_len(1) + str_len(e.name.len());
    if let Some(p) = e.payload.as_ref().filter(|p| !p.is_empty()) {
        n += str_len(1) + bin_len(p.len());
    }
    for f in [&e.node_filter, &e.service_filter, &e.tag_filter] {
        if !f.is_empty() {
            n += str_len(2) + str_len(f.len());
        }
    }
    n + str_len(1) + 1
}

/// Serf's size checks on a user event, with its errors.
fn check_size(e: &UserEvent, ltime: u64) -> Result<(), ApiError> {
    let serf_name = SERF_PREFIX.len() + e.name.len();
    let payload = encoded_len(e);
    if serf_name + payload > SIZE_LIMIT {
        return Err(ApiError::internal(format!(
            "user event exceeds configured limit of {SIZE_LIMIT} bytes before encoding"
        )));
    }
    // Serf's message: a type byte and {LTime, Name, Payload, CC}.
    let raw = 1
        + 1
        + raw_len(5)
        + uint_len(ltime)
        + raw_len(4)
        + raw_len(serf_name)
        + raw_len(7)
        + raw_len(payload)
        + raw_len(2)
        + 1;
    if raw > SIZE_LIMIT {
        return Err(ApiError::internal(format!(
            "encoded user event exceeds configured limit of {SIZE_LIMIT} bytes after encoding"
        )));
    }
    Ok(())
}

/// Whether an event's filters select this agent (Consul's `shouldProcessUserEvent`: the node
/// filter against the node name, the service filter against local service IDs, the tag filter
/// against those services' tags).
fn matches_this_agent(ctx: &Ctx, e: &UserEvent) -> Result<bool, ApiError> {
    if !e.node_filter.is_empty()
        && !compile("node", &e.node_filter)?.is_match(&ctx.config.node_name)
    {
        return Ok(false);
    }
    if e.service_filter.is_empty() {
        return Ok(true);
    }
    let service_re = compile("service", &e.service_filter)?;
    let tag_re = if e.tag_filter.is_empty() {
        None
    } else {
        Some(compile("tag", &e.tag_filter)?)
    };
    let services = agent_state::services(&ctx.store.read()?)?;
    Ok(services.iter().any(|local| {
        let svc = &local.service;
        service_re.is_match(&svc.id)
            && tag_re
                .as_ref()
                .is_none_or(|re| svc.tags.iter().any(|t| re.is_match(t)))
    }))
}

/// `PUT /v1/event/fire/<name>?node=&service=&tag=`: the body is the payload.
pub async fn fire(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = req.tail("/v1/event/fire/").to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing name"));
    }
    let filter = |key: &str| req.params.get(key).unwrap_or("").to_string();
    let (node_filter, service_filter, tag_filter) =
        (filter("node"), filter("service"), filter("tag"));
    let body = req.body(&ctx).await?;
    if !tag_filter.is_empty() && service_filter.is_empty() {
        return Err(ApiError::internal(
            "Cannot provide tag filter without service filter",
        ));
    }
    for (kind, pattern) in [
        ("node", &node_filter),
        ("service", &service_filter),
        ("tag", &tag_filter),
    ] {
        if !pattern.is_empty() {
            compile(kind, pattern)?;
        }
    }
    // Consul's agent vets the event before its server checks the token, and its handler
    // answers any refusal with the bare text.
    if !req.caller.may(
        crate::acl::Resource::Event,
        crate::acl::AccessLevel::Write,
        &name,
    ) {
        return Err(crate::acl::PermissionDenied::Plain.into());
    }
    let mut event = UserEvent {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        payload: (!body.is_empty()).then_some(body),
        node_filter,
        service_filter,
        tag_filter,
        version: USER_EVENT_VERSION,
        ltime: 0,
    };
    let ltime = ctx.events.lamport_time();
    check_size(&event, ltime)?;
    ctx.store.metrics().record(
        crate::metrics::Key::Named(crate::metrics::Kind::Counter, "serf.events"),
        1.0,
    );
    // The reply is the event as fired: its Lamport time is set on delivery.
    let reply = Reply::json(&event, opts.pretty)?;
    event.ltime = ctx.events.tick();
    if event.name == REMOTE_EXEC_NAME {
        tracing::info!(event_name = %event.name, event_id = %event.id, "ignoring remote exec event, disabled.");
    } else if matches_this_agent(&ctx, &event)? {
        tracing::debug!(event_name = %event.name, event_id = %event.id, "new event");
        ctx.events.record(event);
    }
    Ok(reply)
}

/// `GET /v1/event/list?name=`: the recent events, oldest first.
pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = req.params.get("name").filter(|n| !n.is_empty());
    // Without `?wait`, a blocking list waits up to the longest query time, as Consul's does.
    let wait = if req.params.get("wait").is_some_and(|w| !w.is_empty()) {
        opts.wait
    } else {
        ctx.config.max_query_time
    };
    let deadline = Instant::now() + wait;
    loop {
        let mut recorded = ctx.events.subscribe();
        let mut events = ctx.events.list(name);
        let removed = req.caller.filter(&mut events, |c, e| {
            c.may(
                crate::acl::Resource::Event,
                crate::acl::AccessLevel::Read,
                &e.name,
            )
        });
        let index = events.last().map(|e| uuid_to_index(&e.id)).unwrap_or(1);
        if opts.index > 0 && index == opts.index {
            tokio::select! {
                _ = recorded.changed() => continue,
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        return Ok(Reply::json(&events, opts.pretty)?
            .with_status(StatusCode::OK)
            .header("X-Consul-Index", index.to_string())
            .filtered_by_acls(&req.caller, removed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_xor_of_the_uuid_halves() {
        assert_eq!(uuid_to_index("00000000-0000-0001-0000-000000000003"), 1 ^ 3);
        assert_eq!(uuid_to_index("ffffffff-ffff-ffff-ffff-ffffffffffff"), 0);
    }

    #[test]
    fn size_limit_matches_serf() {
        let mut e = UserEvent {
            id: uuid::Uuid::new_v4().to_string(),
            name: "deploy".into(),
            payload: Some(vec![b'x'; 400]),
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            version: 1,
            ltime: 0,
        };
        assert!(check_size(&e, 1).is_ok());
        e.payload = Some(vec![b'x'; 600]);
        assert!(check_size(&e, 1)
            .unwrap_err()
            .message
            .contains("before encoding"));
    }

    #[test]
    fn regex_errors_read_like_go() {
        let pattern = String::from("(");
        let err = regex::Regex::new(&pattern).unwrap_err();
        assert_eq!(
            regex_error("(", &err),
            "error parsing regexp: missing closing ): `(`"
        );
    }
}
