//! `/v1/txn`: a list of operations applied atomically (Consul's `state/txn.go`). Every
//! operation runs through the owning domain's functions; if any fails, all errors are
//! collected and the whole transaction is rolled back. Transactions made only of reads run on
//! a read snapshot without taking an index.

use super::error::{Result, StoreError};
use super::kv;
use super::tables::KV;
use super::{ReadTx, Readable, WriteTx};
use crate::types::{KvEntry, TxnError, TxnKvOp, TxnOp, TxnResult};

/// Verbs that only read.
const READ_VERBS: &[&str] = &[
    "get",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
];

pub fn is_read_only(ops: &[TxnOp]) -> bool {
    ops.iter().all(|op| {
        op.kv
            .as_ref()
            .is_some_and(|kv| READ_VERBS.contains(&kv.verb.as_str()))
    })
}

/// Runs `ops` inside a write; an error rolls back every operation.
pub fn apply(tx: &mut WriteTx, ops: &[TxnOp]) -> Result<Vec<TxnResult>> {
    dispatch(ops, |op| match &op.kv {
        Some(kv) => kv_op(tx, kv),
        None => Err(no_kv_op(op)),
    })
}

fn no_kv_op(op: &TxnOp) -> String {
    match op.other_kind() {
        Some(kind) => format!("{kind} operations are not supported by this agent yet"),
        None => "no operation specified".to_string(),
    }
}

/// Runs read-only `ops` on a snapshot.
pub fn read(r: &ReadTx, ops: &[TxnOp]) -> Result<Vec<TxnResult>> {
    dispatch(ops, |op| match &op.kv {
        Some(kv) => read_verb(r, kv),
        None => Err(no_kv_op(op)),
    })
}

fn dispatch(
    ops: &[TxnOp],
    mut run: impl FnMut(&TxnOp) -> Result<Vec<TxnResult>, String>,
) -> Result<Vec<TxnResult>> {
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (op_index, op) in ops.iter().enumerate() {
        match run(op) {
            Ok(r) => results.extend(r),
            Err(what) => errors.push(TxnError { op_index, what }),
        }
    }
    if errors.is_empty() {
        Ok(results)
    } else {
        Err(StoreError::TxnAborted(errors))
    }
}

/// A storage fault inside an operation is reported as that operation's error.
fn fault(e: StoreError) -> String {
    e.to_string()
}

/// A result without the value: Consul returns values only for reads.
fn without_value(mut entry: KvEntry) -> Vec<TxnResult> {
    entry.value = Vec::new();
    vec![TxnResult { kv: entry }]
}

fn kv_op(tx: &mut WriteTx, op: &TxnKvOp) -> Result<Vec<TxnResult>, String> {
    let key = op.key.as_str();
    let stored = |tx: &WriteTx| -> Result<Vec<TxnResult>, String> {
        Ok(tx
            .get(KV, key)
            .map_err(fault)?
            .map(without_value)
            .unwrap_or_default())
    };
    match op.verb.as_str() {
        "set" => {
            kv::set(tx, key, op.value.clone(), op.flags).map_err(fault)?;
            stored(tx)
        }
        "cas" => {
            if !kv::set_cas(tx, key, op.value.clone(), op.flags, op.index).map_err(fault)? {
                return Err(format!("failed to set key {key:?}, index is stale"));
            }
            stored(tx)
        }
        "delete" => kv::delete(tx, key).map(|_| Vec::new()).map_err(fault),
        "delete-cas" => {
            if !kv::delete_cas(tx, key, op.index).map_err(fault)? {
                return Err(format!("failed to delete key {key:?}, index is stale"));
            }
            Ok(Vec::new())
        }
        "delete-tree" => kv::delete_tree(tx, key).map(|_| Vec::new()).map_err(fault),
        "unlock" => {
            if !kv::unlock(tx, key, op.value.clone(), op.flags, &op.session).map_err(fault)? {
                return Err(format!(
                    "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                ));
            }
            stored(tx)
        }
        // Sessions arrive with the sessions issue; until then no session can exist, so a lock
        // fails the way Consul fails for an unknown session.
        "lock" => Err(format!("invalid session {:?}", op.session)),
        _ => read_verb(&*tx, op),
    }
}

fn read_verb(r: &impl Readable, op: &TxnKvOp) -> Result<Vec<TxnResult>, String> {
    let key = op.key.as_str();
    match op.verb.as_str() {
        "get" => match r.get(KV, key).map_err(fault)? {
            Some(entry) => Ok(vec![TxnResult { kv: entry }]),
            None => Err(format!("key {key:?} doesn't exist")),
        },
        "get-tree" => Ok(r
            .scan_prefix(KV, key)
            .map_err(fault)?
            .into_iter()
            .map(|(_, kv)| TxnResult { kv })
            .collect()),
        "check-index" => match r.get(KV, key).map_err(fault)? {
            None => Err(format!("failed to check index, key {key:?} doesn't exist")),
            Some(e) if e.modify_index != op.index => Err(format!(
                "failed index check for key {key:?}, current modify index {} != {}",
                e.modify_index, op.index
            )),
            Some(e) => Ok(without_value(e)),
        },
        "check-session" => match r.get(KV, key).map_err(fault)? {
            None => Err(format!(
                "failed to check session, key {key:?} doesn't exist"
            )),
            Some(e) if e.session != op.session => Err(format!(
                "failed session check for key {key:?}, current session {:?} != {:?}",
                e.session, op.session
            )),
            Some(e) => Ok(without_value(e)),
        },
        "check-not-exists" => match r.get(KV, key).map_err(fault)? {
            Some(_) => Err(format!("key {key:?} exists")),
            None => Ok(Vec::new()),
        },
        verb => Err(format!("unknown KV verb {verb:?}")),
    }
}
