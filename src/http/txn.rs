//! `/v1/txn`: atomic multi-operation transactions. Parsing and limits here; execution in
//! `store::txn`. A transaction of reads only runs on a snapshot and takes no index.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::{kv, txn, Command, Outcome, StoreError};
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
    let pre_errors = pre_check(&ops);
    let outcome = if !pre_errors.is_empty() {
        Err(StoreError::TxnAborted(pre_errors))
    } else if txn::is_read_only(&ops) {
        txn::read(&ctx.store.read()?, &ops)
    } else {
        ctx.store
            .apply(Command::Txn { ops })
            .await
            .map(Outcome::txn_results)
    };
    match outcome {
        Ok(results) => Reply::json(
            &TxnResponse {
                results: Some(results),
                errors: None,
            },
            opts.pretty,
        ),
        Err(StoreError::TxnAborted(errors)) => Ok(Reply::json(
            &TxnResponse {
                results: None,
                errors: Some(errors),
            },
            opts.pretty,
        )?
        .with_status(StatusCode::CONFLICT)),
        Err(other) => Err(other.into()),
    }
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
