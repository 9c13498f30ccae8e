//! `/v1/txn`: a list of operations applied atomically (Consul's `state/txn.go`). Every
//! operation runs through the owning domain's functions; if any fails, all errors are
//! collected and the whole transaction is rolled back. Transactions made only of reads run on
//! a read snapshot without taking an index.

use super::catalog;
use super::error::{Result, StoreError};
use super::kv;
use super::tables::KV;
use super::{ReadTx, Readable, WriteTx};
use crate::types::catalog::{HealthCheck, Node, NodeService};
use crate::types::{
    KvEntry, TxnCheckOp, TxnError, TxnKvOp, TxnNodeOp, TxnOp, TxnResult, TxnServiceOp, TxnSessionOp,
};

/// KV verbs that only read.
const KV_READ_VERBS: &[&str] = &[
    "get",
    "get-tree",
    "check-index",
    "check-session",
    "check-not-exists",
];

pub fn is_read_only(ops: &[TxnOp]) -> bool {
    ops.iter().all(|op| {
        op.session.is_none()
            && match (&op.kv, op.verb()) {
                (Some(kv), _) => KV_READ_VERBS.contains(&kv.verb.as_str()),
                (None, Some(verb)) => verb == "get",
                (None, None) => true,
            }
    })
}

/// Runs `ops` inside a write; an error rolls back every operation.
pub fn apply(tx: &mut WriteTx, ops: &[TxnOp]) -> Result<Vec<TxnResult>> {
    dispatch(ops, |op| {
        if let Some(kv) = &op.kv {
            kv_op(tx, kv)
        } else if let Some(node) = &op.node {
            node_op(tx, node)
        } else if let Some(svc) = &op.service {
            service_op(tx, svc)
        } else if let Some(check) = &op.check {
            check_op(tx, check)
        } else if let Some(session) = &op.session {
            session_op(tx, session)
        } else {
            Ok(Vec::new()) // Consul drops an operation with no type
        }
    })
}

/// Runs read-only `ops` on a snapshot.
pub fn read(r: &ReadTx, ops: &[TxnOp]) -> Result<Vec<TxnResult>> {
    dispatch(ops, |op| {
        if let Some(kv) = &op.kv {
            read_verb(r, kv)
        } else if let Some(node) = &op.node {
            get_node(r, &node.node.node)
        } else if let Some(svc) = &op.service {
            get_service(r, &svc.node, &svc.service.id)
        } else if let Some(check) = &op.check {
            get_check(r, &check.check.node, &check.check.check_id)
        } else {
            Ok(Vec::new())
        }
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

fn kv_result(entry: KvEntry) -> Vec<TxnResult> {
    vec![TxnResult {
        kv: Some(entry),
        ..Default::default()
    }]
}

/// A result without the value: Consul returns values only for reads.
fn without_value(mut entry: KvEntry) -> Vec<TxnResult> {
    entry.value = Vec::new();
    kv_result(entry)
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
        "lock" => {
            match kv::lock(tx, key, op.value.clone(), op.flags, &op.session).map_err(fault)? {
                Ok(()) => stored(tx),
                Err(kv::LockRefused::Held) => {
                    Err(format!("failed to lock key {key:?}, lock is already held"))
                }
                Err(kv::LockRefused::Delayed) => {
                    Err(format!("failed to lock key {key:?} due to lock delay"))
                }
            }
        }
        _ => read_verb(&*tx, op),
    }
}

fn read_verb(r: &impl Readable, op: &TxnKvOp) -> Result<Vec<TxnResult>, String> {
    let key = op.key.as_str();
    match op.verb.as_str() {
        "get" => match r.get(KV, key).map_err(fault)? {
            Some(entry) => Ok(kv_result(entry)),
            None => Err(format!("key {key:?} doesn't exist")),
        },
        "get-tree" => Ok(r
            .scan_prefix(KV, key)
            .map_err(fault)?
            .into_iter()
            .flat_map(|(_, kv)| kv_result(kv))
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

/// CAS against an optional existing record: index 0 only creates; otherwise the index must
/// match the existing one.
fn cas_matches(existing: Option<u64>, cas: u64) -> bool {
    match existing {
        None => cas == 0,
        Some(current) => cas != 0 && current == cas,
    }
}

fn get_node(r: &impl Readable, name: &str) -> Result<Vec<TxnResult>, String> {
    match catalog::get_node(r, name).map_err(fault)? {
        Some(node) => Ok(vec![TxnResult {
            node: Some(node),
            ..Default::default()
        }]),
        None => Err(format!("node {name:?} doesn't exist")),
    }
}

fn node_op(tx: &mut WriteTx, op: &TxnNodeOp) -> Result<Vec<TxnResult>, String> {
    let name = op.node.node.as_str();
    let existing =
        || -> Result<Option<Node>, String> { catalog::get_node(&*tx, name).map_err(fault) };
    match op.verb.as_str() {
        "get" => get_node(&*tx, name),
        "set" => {
            catalog::ensure_node(tx, op.node.clone()).map_err(fault)?;
            get_node(&*tx, name)
        }
        "cas" => {
            if !cas_matches(existing()?.map(|n| n.modify_index), op.node.modify_index) {
                return Err(format!("failed to set node {name:?}, index is stale"));
            }
            catalog::ensure_node(tx, op.node.clone()).map_err(fault)?;
            get_node(&*tx, name)
        }
        "delete" => catalog::delete_node(tx, name)
            .map(|_| Vec::new())
            .map_err(fault),
        "delete-cas" => {
            if existing()?.map(|n| n.modify_index) != Some(op.node.modify_index) {
                return Err(format!("failed to delete node {name:?}, index is stale"));
            }
            catalog::delete_node(tx, name)
                .map(|_| Vec::new())
                .map_err(fault)
        }
        verb => Err(format!("unknown Node verb {verb:?}")),
    }
}

fn get_service(r: &impl Readable, node: &str, id: &str) -> Result<Vec<TxnResult>, String> {
    match catalog::get_service(r, node, id).map_err(fault)? {
        Some(service) => Ok(vec![TxnResult {
            service: Some(service),
            ..Default::default()
        }]),
        None => Err(format!("service {id:?} on node {node:?} doesn't exist")),
    }
}

fn service_op(tx: &mut WriteTx, op: &TxnServiceOp) -> Result<Vec<TxnResult>, String> {
    let (node, id) = (op.node.as_str(), op.service.id.as_str());
    let existing = |tx: &WriteTx| -> Result<Option<NodeService>, String> {
        catalog::get_service(tx, node, id).map_err(fault)
    };
    match op.verb.as_str() {
        "get" => get_service(&*tx, node, id),
        "set" => {
            catalog::ensure_service(tx, node, op.service.clone()).map_err(fault)?;
            get_service(&*tx, node, id)
        }
        "cas" => {
            if !cas_matches(
                existing(tx)?.map(|s| s.modify_index),
                op.service.modify_index,
            ) {
                return Err(format!(
                    "failed to set service {id:?} on node {node:?}, index is stale"
                ));
            }
            catalog::ensure_service(tx, node, op.service.clone()).map_err(fault)?;
            get_service(&*tx, node, id)
        }
        "delete" => catalog::delete_service(tx, node, id)
            .map(|_| Vec::new())
            .map_err(fault),
        "delete-cas" => {
            if existing(tx)?.map(|s| s.modify_index) != Some(op.service.modify_index) {
                return Err(format!(
                    "failed to delete service {id:?} on node {node:?}, index is stale"
                ));
            }
            catalog::delete_service(tx, node, id)
                .map(|_| Vec::new())
                .map_err(fault)
        }
        verb => Err(format!("unknown Service verb {verb:?}")),
    }
}

fn get_check(r: &impl Readable, node: &str, id: &str) -> Result<Vec<TxnResult>, String> {
    match catalog::get_check(r, node, id).map_err(fault)? {
        Some(check) => Ok(vec![TxnResult {
            check: Some(check),
            ..Default::default()
        }]),
        None => Err(format!("check {id:?} on node {node:?} doesn't exist")),
    }
}

fn check_op(tx: &mut WriteTx, op: &TxnCheckOp) -> Result<Vec<TxnResult>, String> {
    let (node, id) = (op.check.node.as_str(), op.check.check_id.as_str());
    let existing = |tx: &WriteTx| -> Result<Option<HealthCheck>, String> {
        catalog::get_check(tx, node, id).map_err(fault)
    };
    match op.verb.as_str() {
        "get" => get_check(&*tx, node, id),
        "set" => {
            catalog::ensure_check(tx, op.check.clone()).map_err(fault)?;
            get_check(&*tx, node, id)
        }
        "cas" => {
            if !cas_matches(existing(tx)?.map(|c| c.modify_index), op.check.modify_index) {
                return Err(format!(
                    "failed to set check {id:?} on node {node:?}, index is stale"
                ));
            }
            catalog::ensure_check(tx, op.check.clone()).map_err(fault)?;
            get_check(&*tx, node, id)
        }
        "delete" => catalog::delete_check(tx, node, id)
            .map(|_| Vec::new())
            .map_err(fault),
        "delete-cas" => {
            if existing(tx)?.map(|c| c.modify_index) != Some(op.check.modify_index) {
                return Err(format!(
                    "failed to delete check {id:?} on node {node:?}, index is stale"
                ));
            }
            catalog::delete_check(tx, node, id)
                .map(|_| Vec::new())
                .map_err(fault)
        }
        verb => Err(format!("unknown Check verb {verb:?}")),
    }
}

fn session_op(tx: &mut WriteTx, op: &TxnSessionOp) -> Result<Vec<TxnResult>, String> {
    match op.verb.as_str() {
        "delete" => super::session::destroy(tx, &op.session.id)
            .map(|_| Vec::new())
            .map_err(|e| format!("failed to delete session: {e}")),
        verb => Err(format!(
            "failed to delete session: unknown Session verb {verb:?}"
        )),
    }
}
