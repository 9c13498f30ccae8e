//! `/v1/txn`: atomic multi-operation transactions. Parsing and limits here; execution in
//! `store::txn`. A transaction of reads only runs on a snapshot and takes no index.
//!
//! ACLs, per operation as Consul's `txn_endpoint.go`: KV writes need `key:write` (a tree
//! delete write on the whole prefix), KV checks `key:read`; node writes `node:write`;
//! service and check writes `service:write` on their (stored) service, a node check
//! `node:write`; a session delete `session:write` on its node. Gets are checked on the way
//! out: results the token may not read are left out.

use super::acl::Caller;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::store::{catalog, kv, session, txn, Command, Outcome, ReadTx, StoreError};
use crate::types::prepared_query::QueryMeta;
use crate::types::{TxnError, TxnOp, TxnResult};
use serde::Serialize;
use warp::http::StatusCode;

/// Most operations one transaction may hold (Consul 1.14 and later; 64 before).
pub const MAX_TXN_OPS: usize = 128;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnResponse {
    results: Option<Vec<TxnResult>>,
    errors: Option<Vec<TxnError>>,
}

/// A read-only transaction's answer: Consul serves it through `Txn.Read`, whose reply
/// (`structs.TxnReadResponse`) carries the query meta beside the results.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnReadResponse {
    #[serde(flatten)]
    txn: TxnResponse,
    #[serde(flatten)]
    meta: QueryMeta,
}

pub async fn handle(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let ops: Vec<TxnOp> = serde_json::from_slice::<Option<Vec<TxnOp>>>(&body)
        .map_err(|e| ApiError::bad_request(format!("Failed to parse body: {e}")))?
        .unwrap_or_default();
    if ops.len() > MAX_TXN_OPS {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            ops.len()
        )));
    }
    let max_value = ctx.config.limits.kv_max_value_size;
    for op in ops.iter().filter_map(|op| op.kv.as_ref()) {
        if op.value.len() as u64 > max_value {
            return Err(ApiError::too_large(format!(
                "Value for key {:?} is too large ({} > {max_value} bytes)",
                op.key,
                op.value.len()
            )));
        }
    }
    // One error per operation, as Consul's pre-checks: an invalid one is not also vetted.
    let mut pre_errors = pre_check(&ops);
    let invalid: Vec<usize> = pre_errors.iter().map(|e| e.op_index).collect();
    pre_errors.extend(
        acl_check(&ctx.store.read()?, &req.caller, &ops)?
            .into_iter()
            .filter(|e| !invalid.contains(&e.op_index)),
    );
    pre_errors.sort_by_key(|e| e.op_index);
    let read_only = txn::is_read_only(&ops);
    // Consul's `Txn.Read` fills in its query meta only once the pre-checks passed.
    let known_leader = read_only && pre_errors.is_empty();
    let outcome = if !pre_errors.is_empty() {
        Err(StoreError::TxnAborted(pre_errors))
    } else if read_only {
        txn::read(&ctx.store.read()?, &ops)
    } else {
        ctx.store
            .apply(Command::Txn { ops })
            .await
            .map(Outcome::txn_results)
    };
    let (status, response, removed) = match outcome {
        Ok(mut results) => {
            let removed = req.caller.filter(&mut results, readable);
            let response = TxnResponse {
                results: Some(results),
                errors: None,
            };
            (StatusCode::OK, response, removed)
        }
        Err(StoreError::TxnAborted(errors)) => {
            let response = TxnResponse {
                results: None,
                errors: Some(errors),
            };
            (StatusCode::CONFLICT, response, false)
        }
        Err(other) => return Err(other.into()),
    };
    // Consul's `/v1/txn` sets no `X-Consul-Results-Filtered-By-ACLs` header nor an index;
    // a read-only one tells of the leader in its headers and body.
    let reply = if read_only {
        // `Txn.Read` sets only the leader fields and the ACL flag: no index, no level.
        let body = TxnReadResponse {
            txn: response,
            meta: QueryMeta {
                index: 0,
                last_contact: 0,
                known_leader,
                consistency_level: String::new(),
                not_modified: false,
                backend: 0,
                results_filtered_by_acls: removed && req.caller.named,
            },
        };
        Reply::json(&body, opts.pretty)?
            .header("X-Consul-LastContact", "0")
            .header("X-Consul-KnownLeader", known_leader.to_string())
    } else {
        Reply::json(&response, opts.pretty)?
    };
    Ok(reply.with_status(status))
}

/// Checks made before anything runs (Consul's `kvsPreApply`): every KV op but `delete-tree`
/// needs a key, lock verbs need a session, keys may not traverse paths.
fn pre_check(ops: &[TxnOp]) -> Vec<TxnError> {
    let mut errors = Vec::new();
    for (op_index, op) in ops.iter().enumerate() {
        let Some(kv_op) = &op.kv else { continue };
        let what = if kv_op.key.is_empty() && kv_op.verb != "delete-tree" {
            Some("Must provide key".to_string())
        } else if matches!(kv_op.verb.as_str(), "lock" | "unlock") && kv_op.session.is_empty() {
            Some("missing session".to_string())
        } else {
            kv::validate_key(&kv_op.key).err().map(|e| e.to_string())
        };
        if let Some(what) = what {
            errors.push(TxnError { op_index, what });
        }
    }
    errors
}

/// The right an operation needs before it runs; `None` for gets (filtered on the way out).
/// Writes by ID are judged by what they would change: the stored service, check or
/// session, when there is one.
fn needed(r: &ReadTx, op: &TxnOp) -> crate::store::Result<Option<(Resource, AccessLevel, String)>> {
    let write = |resource, segment: &str| Some((resource, AccessLevel::Write, segment.to_string()));
    if let Some(kv_op) = &op.kv {
        return Ok(match kv_op.verb.as_str() {
            "get" | "get-tree" => None,
            "check-index" | "check-session" | "check-not-exists" => {
                Some((Resource::Key, AccessLevel::Read, kv_op.key.clone()))
            }
            _ => write(Resource::Key, &kv_op.key),
        });
    }
    if let Some(node_op) = op.node.as_ref().filter(|o| o.verb != "get") {
        return Ok(write(Resource::Node, &node_op.node.node));
    }
    if let Some(service_op) = op.service.as_ref().filter(|o| o.verb != "get") {
        let stored = catalog::get_service(r, &service_op.node, &service_op.service.id)?;
        let name = stored.map_or_else(|| service_op.service.service.clone(), |s| s.service);
        return Ok(write(Resource::Service, &name));
    }
    if let Some(check_op) = op.check.as_ref().filter(|o| o.verb != "get") {
        let check = catalog::get_check(r, &check_op.check.node, &check_op.check.check_id)?
            .unwrap_or_else(|| check_op.check.clone());
        if check.service_id.is_empty() {
            return Ok(write(Resource::Node, &check.node));
        }
        let stored = catalog::get_service(r, &check.node, &check.service_id)?;
        let name = stored.map_or(check.service_name, |s| s.service);
        return Ok(write(Resource::Service, &name));
    }
    if let Some(session_op) = &op.session {
        let stored = session::get(r, &session_op.session.id)?;
        return Ok(stored.map(|s| (Resource::Session, AccessLevel::Write, s.node)));
    }
    Ok(None)
}

/// The operations the caller may not run, with Consul's permission-denied text.
fn acl_check(r: &ReadTx, caller: &Caller, ops: &[TxnOp]) -> crate::store::Result<Vec<TxnError>> {
    let mut errors = Vec::new();
    for (op_index, op) in ops.iter().enumerate() {
        let Some((resource, level, segment)) = needed(r, op)? else {
            continue;
        };
        let tree = op.kv.as_ref().is_some_and(|o| o.verb == "delete-tree");
        let allowed = if tree {
            super::kv::require_tree_write(caller, &segment)
        } else {
            caller.require(resource, level, &segment)
        };
        if let Err(denied) = allowed {
            errors.push(TxnError {
                op_index,
                what: denied.message,
            });
        }
    }
    Ok(errors)
}

/// Whether the caller may see a result (Consul's `FilterTxnResults`).
fn readable(caller: &Caller, result: &TxnResult) -> bool {
    let read = |resource, segment: &str| caller.may(resource, AccessLevel::Read, segment);
    result
        .kv
        .as_ref()
        .is_none_or(|e| read(Resource::Key, &e.key))
        && result
            .node
            .as_ref()
            .is_none_or(|n| read(Resource::Node, &n.node))
        && result
            .service
            .as_ref()
            .is_none_or(|s| read(Resource::Service, &s.service))
        && result.check.as_ref().is_none_or(|c| {
            read(Resource::Node, &c.node)
                && (c.service_name.is_empty() || read(Resource::Service, &c.service_name))
        })
}
