//! The watch loop of Consul's `api/watch/plan.go`: query at once, then block on the last
//! index; call the handler only when the index moved *and* the result differs; reset the
//! index when it goes backwards; back off (5 s × failures², at most 3 min) on errors.

use super::spec::{ChecksOf, Query, WatchSpec};
use crate::client::{segment, Client};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;

const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(180);

/// Whether the plan goes on after a handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
}

/// What a plan calls with each new result and the index it was read at.
pub trait OnChange {
    fn changed(&mut self, index: u64, data: &Value) -> impl Future<Output = Next> + Send;
}

pub struct Plan {
    spec: WatchSpec,
    client: Client,
}

impl Plan {
    /// A plan asking the agent at `addr` with the spec's token and datacenter.
    pub fn new(spec: WatchSpec, addr: &str) -> Plan {
        let client = Client::with(addr, spec.token.clone(), spec.datacenter.clone());
        Plan { spec, client }
    }

    /// A plan asking through `client` (which carries the token and datacenter).
    pub fn with_client(spec: WatchSpec, client: Client) -> Plan {
        Plan { spec, client }
    }

    /// Runs until the handler says stop.
    pub async fn run(&self, on_change: &mut impl OnChange) {
        let mut failures: u32 = 0;
        let mut last_index: Option<u64> = None;
        let mut last_result: Option<Value> = None;
        loop {
            let (index, result) = match self.fetch(last_index).await {
                Ok(answer) => answer,
                Err(e) => {
                    failures += 1;
                    last_index = None;
                    let retry =
                        (RETRY_INTERVAL * failures.saturating_mul(failures)).min(MAX_BACKOFF);
                    tracing::error!(error = %e, ?retry, "Watch errored");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            failures = 0;
            if last_index == Some(index) {
                continue;
            }
            let previous = last_index;
            last_index = Some(next_index(index, previous));
            if previous.is_some() && last_result.as_ref() == Some(&result) {
                continue;
            }
            let next = on_change.changed(index, &result).await;
            last_result = Some(result);
            if next == Next::Stop {
                return;
            }
        }
    }

    /// One (blocking, once an index is known) read of the watched view.
    async fn fetch(&self, last_index: Option<u64>) -> Result<(u64, Value), String> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(index) = last_index.filter(|i| *i > 0) {
            query.push(("index", index.to_string()));
        }
        if self.spec.stale {
            query.push(("stale", String::new()));
        }
        let path = match &self.spec.query {
            Query::Key(key) => format!("/v1/kv/{}", key_path(key)),
            Query::KeyPrefix(prefix) => {
                query.push(("recurse", String::new()));
                format!("/v1/kv/{}", key_path(prefix))
            }
            Query::Services => "/v1/catalog/services".into(),
            Query::Nodes => "/v1/catalog/nodes".into(),
            Query::Service {
                service,
                tags,
                passing_only,
            } => {
                query.extend(tags.iter().map(|t| ("tag", t.clone())));
                if *passing_only {
                    query.push(("passing", "1".into()));
                }
                format!("/v1/health/service/{}", segment(service))
            }
            Query::Checks(ChecksOf::Service(service)) => {
                format!("/v1/health/checks/{}", segment(service))
            }
            Query::Checks(ChecksOf::State(state)) => {
                format!("/v1/health/state/{}", segment(state))
            }
            Query::Event(name) => {
                if !name.is_empty() {
                    query.push(("name", name.clone()));
                }
                "/v1/event/list".into()
            }
        };
        let response = self.client.send(Method::GET, &path, &query, None).await?;
        // A missing key (or prefix) is a result too: nothing, at the index the agent gave.
        let missing_kv = matches!(self.spec.query, Query::Key(_) | Query::KeyPrefix(_))
            && response.status == StatusCode::NOT_FOUND;
        if missing_kv {
            return Ok((response.index, Value::Null));
        }
        let response = response.ok()?;
        let body: Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("cannot decode response: {e}"))?;
        let result = match (&self.spec.query, body) {
            (Query::Key(_), Value::Array(mut pairs)) if !pairs.is_empty() => {
                api_kv_pair(pairs.swap_remove(0))
            }
            (Query::Key(_), _) => Value::Null,
            (Query::KeyPrefix(_), Value::Array(pairs)) => {
                Value::Array(pairs.into_iter().map(api_kv_pair).collect())
            }
            (Query::Event(_), Value::Array(events)) => {
                Value::Array(events_after(events, last_index))
            }
            (_, body) => body,
        };
        Ok((response.index, result))
    }
}

/// A KV entry as Consul's api package decodes it (and handlers receive it): its `KVPair`
/// fields in their order, `Session` always there.
fn api_kv_pair(pair: Value) -> Value {
    let Value::Object(mut pair) = pair else {
        return pair;
    };
    let mut out = serde_json::Map::new();
    for (field, default) in [
        ("Key", Value::from("")),
        ("CreateIndex", Value::from(0)),
        ("ModifyIndex", Value::from(0)),
        ("LockIndex", Value::from(0)),
        ("Flags", Value::from(0)),
        ("Value", Value::Null),
        ("Session", Value::from("")),
    ] {
        out.insert(field.into(), pair.remove(field).unwrap_or(default));
    }
    // Enterprise fields, present only when set.
    for field in ["Namespace", "Partition"] {
        if let Some(value) = pair
            .remove(field)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            out.insert(field.into(), value);
        }
    }
    Value::Object(out)
}

/// The index the next query blocks on: the new one, or 0 (answer at once) when it did not
/// grow, which happens after the agent's state was replaced by an older one.
fn next_index(index: u64, previous: Option<u64>) -> u64 {
    match previous {
        Some(p) if index <= p => 0,
        _ => index,
    }
}

/// Only the events newer than the one the last index stands for (an event list's index is
/// its last event's ID folded into a number).
fn events_after(events: Vec<Value>, last_index: Option<u64>) -> Vec<Value> {
    let Some(last) = last_index else {
        return events;
    };
    let seen = events.iter().position(|e| {
        e.get("ID")
            .and_then(Value::as_str)
            .is_some_and(|id| crate::http::event::uuid_to_index(id) == last)
    });
    match seen {
        Some(i) => events.into_iter().skip(i + 1).collect(),
        None => events,
    }
}

/// A key in a URL path: each segment encoded, the slashes kept.
fn key_path(key: &str) -> String {
    key.split('/').map(segment).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_index_resets_when_it_does_not_grow() {
        assert_eq!(next_index(7, None), 7);
        assert_eq!(next_index(9, Some(7)), 9);
        assert_eq!(next_index(5, Some(7)), 0);
        assert_eq!(next_index(7, Some(7)), 0);
    }

    #[test]
    fn only_events_after_the_last_seen_one() {
        let a = "00000000-0000-0000-0000-000000000001";
        let b = "00000000-0000-0000-0000-000000000002";
        let events = vec![json!({"ID": a}), json!({"ID": b})];
        assert_eq!(events_after(events.clone(), None).len(), 2);
        assert_eq!(
            events_after(events.clone(), Some(1)),
            vec![json!({"ID": b})]
        );
        assert_eq!(events_after(events.clone(), Some(2)), Vec::<Value>::new());
        assert_eq!(events_after(events, Some(99)).len(), 2);
    }
}
