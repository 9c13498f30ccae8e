//! The KV domain: entries, tombstones and their indexes (Consul's `state/kvs.go`).
//!
//! Index rules, as Consul's: a single-key read reports the entry's `ModifyIndex` (the table's
//! index when the key is missing); a prefix read
//! reports the highest index among the prefix's entries and tombstones (the table's index when
//! the prefix is empty or nothing matched). Watches are as narrow as the read: the key, or the
//! prefix.

use super::error::{Result, StoreError};
use super::tables::{KV, KV_TOMBSTONES};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::KvEntry;
use bincode::{Decode, Encode};

/// Marks a deleted key so the index of any prefix containing it cannot go backwards.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Tombstone {
    /// Index of the delete.
    pub index: u64,
    /// When the delete happened (seconds since the Unix epoch), for reaping.
    pub deleted_at: u64,
}

impl super::codec::Record for Tombstone {
    const VERSION: u8 = 1;
}

/// Refuses keys a client could use to escape a directory when keys are mapped to paths
/// (`..` segments). Everything else Consul has long accepted stays accepted.
pub fn validate_key(key: &str) -> Result<()> {
    if key.split('/').any(|segment| segment == "..") {
        return Err(StoreError::Invalid(format!(
            "Invalid key {key:?}: path traversal segments (\"..\") are not allowed"
        )));
    }
    Ok(())
}

/// The KV table's index, counting deletes (tombstones) too.
pub fn max_index(r: &ReadTx) -> Result<u64> {
    Ok(r.table_index(KV.name)?
        .max(r.table_index(KV_TOMBSTONES.name)?))
}

/// One key: its own `ModifyIndex` when present, else the table's index (as Consul's
/// `KVS.Get` reports it).
pub fn get(r: &ReadTx, ws: &mut WatchSet, key: &str) -> Result<(u64, Option<KvEntry>)> {
    ws.key(KV.name, key);
    match r.get(KV, key)? {
        Some(entry) => Ok((entry.modify_index, Some(entry))),
        None => Ok((max_index(r)?, None)),
    }
}

pub fn list(r: &ReadTx, ws: &mut WatchSet, prefix: &str) -> Result<(u64, Vec<KvEntry>)> {
    ws.prefix(KV.name, prefix);
    let entries: Vec<KvEntry> = r
        .scan_prefix(KV, prefix)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let highest = entries.iter().map(|e| e.modify_index).max().unwrap_or(0);
    Ok((prefix_index(r, prefix, highest)?, entries))
}

/// Keys under `prefix`; with a separator, keys below the next separator collapse into one
/// entry ending with it (a "directory").
pub fn keys(
    r: &ReadTx,
    ws: &mut WatchSet,
    prefix: &str,
    separator: &str,
) -> Result<(u64, Vec<String>)> {
    ws.prefix(KV.name, prefix);
    let mut highest = 0;
    let mut keys: Vec<String> = Vec::new();
    for (key, entry) in r.scan_prefix(KV, prefix)? {
        highest = highest.max(entry.modify_index);
        let folded = match key[prefix.len()..].find(separator) {
            Some(at) if !separator.is_empty() => {
                key[..prefix.len() + at + separator.len()].to_string()
            }
            _ => key,
        };
        if keys.last() != Some(&folded) {
            keys.push(folded);
        }
    }
    Ok((prefix_index(r, prefix, highest)?, keys))
}

fn prefix_index(r: &ReadTx, prefix: &str, highest_entry: u64) -> Result<u64> {
    let table = max_index(r)?;
    if prefix.is_empty() {
        return Ok(table);
    }
    let tombstones = r
        .scan_prefix(KV_TOMBSTONES, prefix)?
        .into_iter()
        .map(|(_, t)| t.index)
        .max()
        .unwrap_or(0);
    let sub = highest_entry.max(tombstones);
    Ok(if sub != 0 { sub } else { table })
}

/// Writes `key`, keeping its creation index and lock holder. As in Consul, the lock index is
/// reset (a plain write carries none) and an identical rewrite changes nothing, not even the
/// entry's `ModifyIndex`.
pub fn set(tx: &mut WriteTx, key: &str, value: Vec<u8>, flags: u64) -> Result<bool> {
    let existing = tx.get(KV, key)?;
    store_entry(tx, key, value, flags, existing.as_ref())?;
    Ok(true)
}

/// Check-and-set: with `cas == 0` only creates; otherwise only replaces the entry whose
/// `ModifyIndex` equals `cas`. Returns whether it wrote.
pub fn set_cas(tx: &mut WriteTx, key: &str, value: Vec<u8>, flags: u64, cas: u64) -> Result<bool> {
    let existing = tx.get(KV, key)?;
    let matches = match &existing {
        None => cas == 0,
        Some(e) => cas != 0 && e.modify_index == cas,
    };
    if matches {
        store_entry(tx, key, value, flags, existing.as_ref())?;
    }
    Ok(matches)
}

fn store_entry(
    tx: &mut WriteTx,
    key: &str,
    value: Vec<u8>,
    flags: u64,
    existing: Option<&KvEntry>,
) -> Result<()> {
    validate_key(key)?;
    let entry = KvEntry {
        lock_index: 0,
        key: key.to_string(),
        flags,
        value,
        session: existing.map(|e| e.session.clone()).unwrap_or_default(),
        create_index: existing.map_or(tx.index(), |e| e.create_index),
        modify_index: tx.index(),
    };
    if let Some(e) = existing {
        let unchanged = KvEntry {
            modify_index: e.modify_index,
            ..entry.clone()
        };
        if &unchanged == e {
            return Ok(());
        }
    }
    tx.put(KV, key, &entry)
}

/// Deletes `key` if present (deleting a missing key succeeds, as in Consul).
pub fn delete(tx: &mut WriteTx, key: &str) -> Result<()> {
    if remove(tx, key)? {
        bury(tx, key)?;
    }
    Ok(())
}

/// Removes the entry, and the lock its session held on it. Returns whether it existed.
fn remove(tx: &mut WriteTx, key: &str) -> Result<bool> {
    let Some(old) = tx.delete(KV, key)? else {
        return Ok(false);
    };
    if !old.session.is_empty() {
        super::session::forget_lock(tx, &old.session, key)?;
    }
    Ok(true)
}

/// Deletes `key` only if its `ModifyIndex` equals `cas`; a missing key counts as deleted.
pub fn delete_cas(tx: &mut WriteTx, key: &str, cas: u64) -> Result<bool> {
    match tx.get(KV, key)? {
        None => Ok(true),
        Some(e) if e.modify_index == cas => {
            delete(tx, key)?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// Deletes every key starting with `prefix`. As Consul's, one tombstone at the prefix records
/// the delete (none for the empty prefix, where the table index already covers it).
pub fn delete_tree(tx: &mut WriteTx, prefix: &str) -> Result<()> {
    let mut deleted = false;
    for (key, _) in tx.scan_prefix(KV, prefix)? {
        deleted |= remove(tx, &key)?;
    }
    if deleted && !prefix.is_empty() {
        bury(tx, prefix)?;
    }
    Ok(())
}

/// Releases the lock `session` holds on `key`, writing `value` and `flags` (Consul's unlock).
/// Returns false when the key is missing or held by another session.
pub fn unlock(
    tx: &mut WriteTx,
    key: &str,
    value: Vec<u8>,
    flags: u64,
    session: &str,
) -> Result<bool> {
    let Some(existing) = tx.get(KV, key)? else {
        return Ok(false);
    };
    if existing.session != session {
        return Ok(false);
    }
    let entry = KvEntry {
        flags,
        value,
        session: String::new(),
        modify_index: tx.index(),
        ..existing
    };
    tx.put(KV, key, &entry)?;
    super::session::forget_lock(tx, session, key)?;
    Ok(true)
}

/// Why an acquire did not take the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRefused {
    /// Another session holds it.
    Held,
    /// The previous holder's session was invalidated less than its lock-delay ago.
    Delayed,
}

/// Acquires `key` for `session`, writing `value` and `flags` (Consul's `kvsLockTxn`): a new
/// holder increments `LockIndex`; the current holder may rewrite without changing it.
pub fn lock(
    tx: &mut WriteTx,
    key: &str,
    value: Vec<u8>,
    flags: u64,
    session: &str,
) -> Result<Result<(), LockRefused>> {
    if session.is_empty() {
        return Err(StoreError::Rejected("missing session".into()));
    }
    if super::session::get(&*tx, session)?.is_none() {
        return Err(StoreError::Rejected(format!("invalid session {session:?}")));
    }
    validate_key(key)?;
    let existing = tx.get(KV, key)?;
    let lock_index = match &existing {
        Some(e) if e.session == session => e.lock_index,
        Some(e) if !e.session.is_empty() => return Ok(Err(LockRefused::Held)),
        _ if super::session::lock_delayed(&*tx, key, tx.now_ms())? => {
            return Ok(Err(LockRefused::Delayed))
        }
        Some(e) => e.lock_index + 1,
        None => 1,
    };
    let index = tx.index();
    let entry = KvEntry {
        lock_index,
        key: key.to_string(),
        flags,
        value,
        session: session.to_string(),
        create_index: existing.map_or(index, |e| e.create_index),
        modify_index: index,
    };
    tx.put(KV, key, &entry)?;
    super::session::record_lock(tx, session, key)?;
    Ok(Ok(()))
}

/// Clears `session`'s hold on `key`, keeping its value (an invalidated session with the
/// `release` behavior).
pub fn release_session(tx: &mut WriteTx, key: &str, session: &str) -> Result<()> {
    let Some(existing) = tx.get(KV, key)? else {
        return Ok(());
    };
    if existing.session != session {
        return Ok(());
    }
    let entry = KvEntry {
        session: String::new(),
        modify_index: tx.index(),
        ..existing
    };
    tx.put(KV, key, &entry)?;
    super::session::forget_lock(tx, session, key)
}

fn bury(tx: &mut WriteTx, key: &str) -> Result<()> {
    let tombstone = Tombstone {
        index: tx.index(),
        deleted_at: tx.now_ms() / 1000,
    };
    tx.put(KV_TOMBSTONES, key, &tombstone)
}

/// Removes tombstones older than `ttl_ms` at the command's time, so the graveyard does not
/// grow forever. As in Consul, reaping moves no table index. Returns how many were reaped.
pub fn reap_tombstones(tx: &mut WriteTx, ttl_ms: u64) -> Result<usize> {
    let cutoff = (tx.now_ms().saturating_sub(ttl_ms)) / 1000;
    let mut reaped = 0;
    for (key, t) in tx.scan_prefix(KV_TOMBSTONES, "")? {
        if t.deleted_at <= cutoff {
            tx.purge(KV_TOMBSTONES, &key)?;
            reaped += 1;
        }
    }
    Ok(reaped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Command, Store};

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn set_keeps_create_index_and_bumps_modify_index() {
        let (_d, store) = store().await;
        store.apply(Command::kv_set("a", b"1")).await.unwrap();
        store
            .apply(Command::KvSet {
                key: "a".into(),
                value: b"2".to_vec(),
                flags: 5,
                cas: None,
            })
            .await
            .unwrap();
        let r = store.read().unwrap();
        let (idx, e) = get(&r, &mut WatchSet::new(), "a").unwrap();
        let e = e.unwrap();
        assert_eq!((e.create_index, e.modify_index, e.flags, idx), (1, 2, 5, 2));
    }

    #[tokio::test]
    async fn cas_zero_only_creates() {
        let (_d, store) = store().await;
        assert!(store
            .apply(Command::KvSet {
                key: "a".into(),
                value: vec![],
                flags: 0,
                cas: Some(0)
            })
            .await
            .unwrap()
            .applied());
        assert!(!store
            .apply(Command::KvSet {
                key: "a".into(),
                value: vec![],
                flags: 0,
                cas: Some(0)
            })
            .await
            .unwrap()
            .applied());
        assert!(!store
            .apply(Command::KvSet {
                key: "a".into(),
                value: vec![],
                flags: 0,
                cas: Some(99)
            })
            .await
            .unwrap()
            .applied());
        assert!(store
            .apply(Command::KvSet {
                key: "a".into(),
                value: vec![],
                flags: 0,
                cas: Some(1)
            })
            .await
            .unwrap()
            .applied());
    }

    #[tokio::test]
    async fn prefix_index_does_not_go_backwards_after_delete() {
        let (_d, store) = store().await;
        store.apply(Command::kv_set("p/a", b"")).await.unwrap();
        store.apply(Command::kv_set("p/b", b"")).await.unwrap();
        store.apply(Command::kv_set("q", b"")).await.unwrap();
        store
            .apply(Command::KvDelete {
                key: "p/b".into(),
                cas: None,
            })
            .await
            .unwrap();
        let r = store.read().unwrap();
        let (idx, entries) = list(&r, &mut WatchSet::new(), "p/").unwrap();
        assert_eq!((idx, entries.len()), (4, 1));
        let (idx, keys) = keys(&r, &mut WatchSet::new(), "", "/").unwrap();
        assert_eq!(keys, ["p/", "q"]);
        assert_eq!(idx, 4);
    }

    #[tokio::test]
    async fn a_failed_operation_leaves_no_trace() {
        let (_d, store) = store().await;
        store.apply(Command::kv_set("a", b"1")).await.unwrap();
        // The third operation fails, so the transaction's first two are undone with it.
        let ops = serde_json::from_value(serde_json::json!([
            {"KV": {"Verb": "set", "Key": "a", "Value": "Mg=="}},
            {"KV": {"Verb": "set", "Key": "b", "Value": "Mg=="}},
            {"KV": {"Verb": "cas", "Key": "a", "Value": "Mg==", "Index": 99}},
        ]))
        .unwrap();
        let err = store.apply(Command::Txn { ops }).await;
        assert!(err.is_err());
        let r = store.read().unwrap();
        assert_eq!(r.get(KV, "a").unwrap().unwrap().value, b"1");
        assert!(r.get(KV, "b").unwrap().is_none());
        assert_eq!((r.global_index().unwrap(), max_index(&r).unwrap()), (1, 1));
    }

    #[test]
    fn traversal_keys_are_refused() {
        assert!(validate_key("a/../b").is_err());
        assert!(validate_key("../b").is_err());
        assert!(validate_key("a/..").is_err());
        assert!(validate_key("a..b/c.json").is_ok());
        assert!(validate_key("weird key?&=").is_ok());
    }
}
