//! `/v1/snapshot`: GET takes a point-in-time archive of the whole state (writes keep going;
//! `X-Consul-Index` is the snapshot's index), PUT restores one atomically, as Consul's
//! `snapshot_endpoint.go`. The archive format is Legate's own (`store::snapshot`); a truncated,
//! corrupt or foreign archive is refused with a 400 before anything changes.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::snapshot::{self, Origin};
use crate::store::Command;
use warp::http::{Method, StatusCode};

pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    match req.method {
        Method::GET => save(ctx, req).await,
        _ => restore(ctx, req).await,
    }
}

fn join_error(err: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("snapshot task failed: {err}"))
}

async fn save(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    // Validates `dc` and friends; `stale` needs nothing on a single node.
    ctx.query_options(&req)?;
    let store = ctx.store.clone();
    let origin = Origin {
        node: ctx.config.node_name.clone(),
        datacenter: ctx.config.datacenter.clone(),
    };
    let (meta, body) = tokio::task::spawn_blocking(move || {
        let read = store.read()?;
        let mut body = Vec::new();
        let meta = snapshot::export(&read, &origin, &mut body)?;
        Ok::<_, crate::store::StoreError>((meta, body))
    })
    .await
    .map_err(join_error)??;
    Ok(Reply::bytes(body, Some("application/octet-stream")).read_meta(meta.index))
}

async fn restore(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    // The whole archive is verified before the running state is touched.
    let archive = tokio::task::spawn_blocking(move || snapshot::load(body))
        .await
        .map_err(join_error)??;
    // No runner or timer may write between the restore and the re-arm from its state.
    ctx.local.stop();
    ctx.sessions.stop();
    let restored = ctx
        .store
        .apply(Command::RestoreSnapshot(Box::new(archive)))
        .await;
    // Even after a failed restore (the store is then unchanged) the runtime must run again.
    let resumed = crate::agent::resume_after_restore(&ctx).await;
    let index = restored?.restored_index();
    resumed
        .map_err(|e| ApiError::internal(format!("restored, but resuming the agent failed: {e}")))?;
    tracing::info!(index, "restored snapshot");
    Ok(Reply::empty(StatusCode::OK))
}
