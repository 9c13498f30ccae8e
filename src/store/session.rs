//! The session domain (Consul's `state/session.go`): sessions, what they are tied to, the
//! locks they hold, and lock-delays. Invalidating a session releases or deletes its locks
//! through the KV domain, never by writing the KV table directly.

use super::catalog::Marker;
use super::error::{Result, StoreError};
use super::tables::{
    CHECKS, KV_LOCK_DELAYS, NODES, SESSIONS, SESSION_CHECKS, SESSION_LOCKS, SESSION_NODES,
};
use super::{kv, prepared_query};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::catalog::CRITICAL;
use crate::types::session::{Session, BEHAVIOR_DELETE};
use bincode::{Decode, Encode};

/// Until when a key may not be acquired after its session was invalidated.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LockDelay {
    pub until_ms: u64,
}

impl super::codec::Record for LockDelay {
    const VERSION: u8 = 1;
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// The checks a session is tied to, as (check id) on its node.
fn tied_checks(s: &Session) -> Vec<String> {
    let mut out: Vec<String> = s.node_checks.clone().unwrap_or_default();
    out.extend(s.service_checks.iter().flatten().map(|c| c.id.clone()));
    out
}

/// Creates a session after checking what it is tied to (Consul's `sessionCreateTxn`).
pub fn create(tx: &mut WriteTx, session: Session) -> Result<Session> {
    let node = session.node.clone();
    if tx.get(NODES, &lower(&node))?.is_none() {
        return Err(StoreError::Rejected(super::catalog::MISSING_NODE.into()));
    }
    for check_id in tied_checks(&session) {
        match tx.get(CHECKS, &format!("{}\0{check_id}", lower(&node)))? {
            None => {
                return Err(StoreError::Rejected(format!(
                    "Missing check '{check_id}' registration"
                )))
            }
            Some(c) if c.status == CRITICAL => {
                return Err(StoreError::Rejected(format!(
                    "Check '{check_id}' is in critical state"
                )))
            }
            Some(_) => {}
        }
    }
    let index = tx.index();
    let session = Session {
        create_index: index,
        modify_index: index,
        ..session
    };
    for check_id in tied_checks(&session) {
        tx.put(
            SESSION_CHECKS,
            &format!("{}\0{check_id}\0{}", lower(&node), session.id),
            &Marker,
        )?;
    }
    tx.put(
        SESSION_NODES,
        &format!("{}\0{}", lower(&node), session.id),
        &Marker,
    )?;
    tx.put(SESSIONS, &session.id.clone(), &session)?;
    Ok(session)
}

/// Extends a TTL session's deadline. `None` when the session does not exist.
pub fn renew(tx: &mut WriteTx, id: &str, expires_at_ms: u64) -> Result<Option<Session>> {
    let Some(session) = tx.get(SESSIONS, id)? else {
        return Ok(None);
    };
    let renewed = Session {
        expires_at_ms,
        ..session
    };
    // The deadline is bookkeeping, not part of what readers see: no index moves.
    tx.put_quiet(SESSIONS, id, &renewed)?;
    Ok(Some(renewed))
}

/// Destroys a session: its locks are released or deleted per its behavior and their keys get
/// its lock-delay, and the prepared queries bound to it are deleted. Destroying a missing
/// session changes nothing.
pub fn destroy(tx: &mut WriteTx, id: &str) -> Result<()> {
    let Some(session) = tx.delete(SESSIONS, id)? else {
        return Ok(());
    };
    let node = lower(&session.node);
    for check_id in tied_checks(&session) {
        tx.delete(SESSION_CHECKS, &format!("{node}\0{check_id}\0{id}"))?;
    }
    tx.delete(SESSION_NODES, &format!("{node}\0{id}"))?;
    let delay_until = tx.now_ms() + session.lock_delay / 1_000_000;
    for (lock_key, _) in tx.scan_prefix(SESSION_LOCKS, &format!("{id}\0"))? {
        let key = lock_key[id.len() + 1..].to_string();
        if session.lock_delay > 0 {
            tx.put(
                KV_LOCK_DELAYS,
                &key,
                &LockDelay {
                    until_ms: delay_until,
                },
            )?;
        }
        // Both keep `session_locks` in step with the entry.
        if session.behavior == BEHAVIOR_DELETE {
            kv::delete(tx, &key)?;
        } else {
            kv::release_session(tx, &key, id)?;
        }
    }
    prepared_query::delete_for_session(tx, id)
}

/// Invalidates every session tied to `check_id` on `node` (the check went critical or away).
pub fn invalidate_for_check(tx: &mut WriteTx, node: &str, check_id: &str) -> Result<()> {
    let prefix = format!("{}\0{check_id}\0", lower(node));
    for (key, _) in tx.scan_prefix(SESSION_CHECKS, &prefix)? {
        destroy(tx, &key[prefix.len()..])?;
    }
    Ok(())
}

/// Invalidates every session of a node (the node was deregistered).
pub fn invalidate_for_node(tx: &mut WriteTx, node: &str) -> Result<()> {
    let prefix = format!("{}\0", lower(node));
    for (key, _) in tx.scan_prefix(SESSION_NODES, &prefix)? {
        destroy(tx, &key[prefix.len()..])?;
    }
    Ok(())
}

/// Destroys `id` if its TTL deadline is not after the command's time (run by the expiry
/// timer and at start).
pub fn expire(tx: &mut WriteTx, id: &str) -> Result<bool> {
    match tx.get(SESSIONS, id)? {
        Some(s) if s.expires_at_ms != 0 && s.expires_at_ms <= tx.now_ms() => {
            destroy(tx, id)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Records that `session` holds `key` (called by the KV domain on acquire).
pub fn record_lock(tx: &mut WriteTx, session: &str, key: &str) -> Result<()> {
    tx.put(SESSION_LOCKS, &format!("{session}\0{key}"), &Marker)
}

/// Forgets that `session` holds `key` (release, or the key was deleted).
pub fn forget_lock(tx: &mut WriteTx, session: &str, key: &str) -> Result<()> {
    tx.delete(SESSION_LOCKS, &format!("{session}\0{key}"))?;
    Ok(())
}

/// Whether `key` is still inside a lock-delay.
pub fn lock_delayed(r: &impl Readable, key: &str, now_ms: u64) -> Result<bool> {
    Ok(r.get(KV_LOCK_DELAYS, key)?
        .is_some_and(|d| d.until_ms > now_ms))
}

pub fn get(r: &impl Readable, id: &str) -> Result<Option<Session>> {
    r.get(SESSIONS, id)
}

pub fn info(r: &ReadTx, ws: &mut WatchSet, id: &str) -> Result<(u64, Vec<Session>)> {
    ws.key(SESSIONS.name, id);
    Ok((
        r.table_index(SESSIONS.name)?,
        r.get(SESSIONS, id)?.into_iter().collect(),
    ))
}

pub fn list(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<Session>)> {
    ws.table(SESSIONS.name);
    let all = r
        .scan_prefix(SESSIONS, "")?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    Ok((r.table_index(SESSIONS.name)?, all))
}

pub fn for_node(r: &ReadTx, ws: &mut WatchSet, node: &str) -> Result<(u64, Vec<Session>)> {
    ws.table(SESSIONS.name);
    let mut out = Vec::new();
    for (key, _) in r.scan_prefix(SESSION_NODES, &format!("{}\0", lower(node)))? {
        if let Some(s) = r.get(SESSIONS, super::catalog::last_part(&key))? {
            out.push(s);
        }
    }
    Ok((r.table_index(SESSIONS.name)?, out))
}

/// Every session with a TTL, for arming expiry timers at start.
pub fn with_ttl(r: &impl Readable) -> Result<Vec<Session>> {
    Ok(r.scan_prefix(SESSIONS, "")?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.expires_at_ms != 0)
        .collect())
}
