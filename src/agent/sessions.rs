//! Session lifecycle on the agent: creation with Consul's defaults and validation, renewal,
//! and the TTL timers that invalidate sessions nobody renews (persisted deadlines, so a
//! restart re-arms them and expires the ones that ran out while the agent was down).

use super::local::LocalError;
use crate::clock::now_ms;
use crate::gojson::{self, field, Kind, Schema, STRING};
use crate::store::{session, Command, Store};
use crate::types::catalog::SERF_CHECK_ID;
use crate::types::session::{ServiceCheck, Session, BEHAVIOR_DELETE, BEHAVIOR_RELEASE};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(86400);
/// Consul waits twice the TTL before invalidating, a grace for clients and delays.
const TTL_MULTIPLIER: u32 = 2;
/// Below this, a numeric lock delay is taken as seconds (clients often send `15`).
const LOCK_DELAY_SECONDS_THRESHOLD: u128 = 1000;

pub struct Sessions {
    store: Store,
    node: String,
    /// The shortest TTL accepted (`session_ttl_min`).
    min_ttl: Duration,
    timers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    me: Weak<Sessions>,
}

type Result<T> = std::result::Result<T, LocalError>;

/// `structs.Session` as `/v1/session/create` decodes it (`LockDelay` takes a number of
/// seconds or nanoseconds, or a duration text, so it is typed by hand below).
static SESSION_REQUEST: Schema = Schema {
    name: "Session",
    go_type: "structs.Session",
    fields: &[
        field("ID", STRING),
        field("Name", STRING),
        field("Node", STRING),
        field("LockDelay", Kind::Any),
        field("Behavior", STRING),
        field("TTL", STRING),
        field("Checks", Kind::StrList),
        field("NodeChecks", Kind::StrList),
        field(
            "ServiceChecks",
            Kind::List(&SERVICE_CHECK, "[]structs.ServiceCheck"),
        ),
        field("Namespace", STRING),
    ],
    base: None,
    strict: true,
};

static SERVICE_CHECK: Schema = Schema {
    name: "Session",
    go_type: "structs.ServiceCheck",
    fields: &[field("ID", STRING), field("Namespace", STRING)],
    base: None,
    strict: true,
};

impl Sessions {
    pub fn new(store: Store, node: String, min_ttl: Duration) -> Arc<Sessions> {
        Arc::new_cyclic(|me| Sessions {
            store,
            node,
            min_ttl,
            timers: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    /// Creates a session from a `/v1/session/create` body (empty for all defaults).
    /// Creates a session decoded by `decode`.
    pub async fn create(&self, session: Session) -> Result<Session> {
        let created = self
            .store
            .apply(Command::SessionCreate(Box::new(session)))
            .await?
            .session()
            .ok_or_else(|| LocalError::Internal("session create returned no session".into()))?;
        if created.expires_at_ms != 0 {
            self.arm(created.id.clone(), created.expires_at_ms);
        }
        Ok(created)
    }

    /// A create request's session (the agent's node by default), checked as Consul does.
    pub fn decode(&self, body: Option<Value>) -> Result<Session> {
        let bad = |m: String| LocalError::BadRequest(m);
        // Consul's server refuses these as RPC errors (500), and clients such as Patroni
        // recognise them by that status.
        let rejected = |m: String| LocalError::Internal(m);
        // Typed as Go decodes `structs.Session`: a field of the wrong JSON type is refused.
        let f = gojson::decode_value(body.unwrap_or(Value::Null), &SESSION_REQUEST)
            .map_err(|e| bad(format!("Request decode failed: {e}")))?;
        let text = |name: &str| {
            f.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let strings = |name: &str| -> Option<Vec<String>> {
            f.get(name).filter(|v| !v.is_null()).map(|v| {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            })
        };
        let lock_delay = match f.get("LockDelay") {
            None | Some(Value::Null) => DEFAULT_LOCK_DELAY,
            Some(Value::Number(n)) => {
                let n = n
                    .as_u64()
                    .ok_or_else(|| bad(format!("Request decode failed: invalid LockDelay {n}")))?
                    as u128;
                if n < LOCK_DELAY_SECONDS_THRESHOLD {
                    Duration::from_secs(n as u64)
                } else {
                    Duration::from_nanos(n as u64)
                }
            }
            Some(Value::String(s)) => {
                let d = crate::duration::parse(s)
                    .map_err(|e| bad(format!("Request decode failed: {e}")))?;
                if d.as_nanos() < LOCK_DELAY_SECONDS_THRESHOLD {
                    Duration::from_secs(d.as_nanos() as u64)
                } else {
                    d
                }
            }
            Some(other) => {
                return Err(bad(format!(
                    "Request decode failed: invalid LockDelay {other}"
                )))
            }
        }
        .min(MAX_LOCK_DELAY);
        let behavior = match text("Behavior").as_str() {
            "" | BEHAVIOR_RELEASE => BEHAVIOR_RELEASE.to_string(),
            BEHAVIOR_DELETE => BEHAVIOR_DELETE.to_string(),
            other => return Err(rejected(format!("Invalid Behavior setting '{other}'"))),
        };
        let ttl_text = text("TTL");
        let ttl = if ttl_text.is_empty() {
            Duration::ZERO
        } else {
            crate::duration::parse(&ttl_text)
                .map_err(|e| rejected(format!("Session TTL '{ttl_text}' invalid: {e}")))?
        };
        if !ttl.is_zero() && !(self.min_ttl..=MAX_TTL).contains(&ttl) {
            return Err(rejected(format!(
                "Invalid Session TTL '{}', must be between [{}={}]",
                ttl.as_nanos(),
                crate::duration::format(self.min_ttl),
                crate::duration::format(MAX_TTL)
            )));
        }
        let legacy = strings("Checks");
        let mut node_checks = strings("NodeChecks");
        if let Some(legacy) = legacy {
            node_checks.get_or_insert_with(Vec::new).extend(legacy);
        }
        if node_checks.is_none() && f.get("ServiceChecks").is_none_or(Value::is_null) {
            node_checks = Some(vec![SERF_CHECK_ID.to_string()]);
        }
        let service_checks = match f.get("ServiceChecks") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Vec<ServiceCheck>>(v.clone())
                    .map_err(|e| bad(format!("Request decode failed: {e}")))?,
            ),
        };
        let node = text("Node");
        Ok(Session {
            id: uuid::Uuid::new_v4().to_string(),
            name: text("Name"),
            node: if node.is_empty() {
                self.node.clone()
            } else {
                node
            },
            lock_delay: lock_delay.as_nanos() as u64,
            behavior,
            ttl: if ttl.is_zero() {
                String::new()
            } else {
                ttl_text
            },
            node_checks,
            service_checks,
            expires_at_ms: if ttl.is_zero() {
                0
            } else {
                now_ms() + (ttl * TTL_MULTIPLIER).as_millis() as u64
            },
            ..Default::default()
        })
    }

    pub async fn destroy(&self, id: &str) -> Result<()> {
        self.store
            .apply(Command::SessionDestroy { id: id.to_string() })
            .await?;
        if let Some(timer) = self.timers.lock().unwrap().remove(id) {
            timer.abort();
        }
        Ok(())
    }

    /// Renews a TTL session; `None` when it no longer exists.
    pub async fn renew(&self, id: &str) -> Result<Option<Session>> {
        let Some(current) = session::get(&self.store.read()?, id)? else {
            return Ok(None);
        };
        let ttl = crate::duration::parse(&current.ttl).unwrap_or(Duration::ZERO);
        if ttl.is_zero() {
            return Ok(Some(current));
        }
        let deadline = now_ms() + (ttl * TTL_MULTIPLIER).as_millis() as u64;
        let renewed = self
            .store
            .apply(Command::SessionRenew {
                id: id.to_string(),
                expires_at_ms: deadline,
            })
            .await?
            .session();
        if renewed.is_some() {
            self.arm(id.to_string(), deadline);
        }
        Ok(renewed)
    }

    /// Re-arms the timers of stored TTL sessions; ones already past their deadline are
    /// invalidated now.
    pub async fn resume(&self) -> Result<()> {
        for s in session::with_ttl(&self.store.read()?)? {
            self.arm(s.id, s.expires_at_ms);
        }
        Ok(())
    }

    fn arm(&self, id: String, deadline_ms: u64) {
        let me = self.me.clone();
        let wait = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        let session_id = id.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(me) = me.upgrade() else { return };
            let expire = Command::SessionExpire {
                id: session_id.clone(),
            };
            match me.store.apply(expire).await.map(|o| o.applied()) {
                Ok(true) => {
                    tracing::info!(session = %session_id, "session TTL expired; invalidated")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(session = %session_id, error = %e, "session expiry failed")
                }
            }
        });
        if let Some(old) = self.timers.lock().unwrap().insert(id, task) {
            old.abort();
        }
    }

    pub fn stop(&self) {
        for (_, t) in self.timers.lock().unwrap().drain() {
            t.abort();
        }
    }
}
