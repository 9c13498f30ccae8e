//! `/v1/session/*`: create, destroy, renew, and the blocking reads info, node and list.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::session;

pub async fn create(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?,
        )
    };
    let created = ctx.sessions.create(parsed).await?;
    Reply::json(&serde_json::json!({ "ID": created.id }), opts.pretty)
}

pub async fn destroy(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/session/destroy/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    ctx.sessions.destroy(&id).await?;
    Reply::json(&true, opts.pretty)
}

pub async fn renew(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/session/renew/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    match ctx.sessions.renew(&id).await? {
        Some(s) => Reply::json(&[s], opts.pretty),
        None => Err(ApiError::not_found(format!("Session id '{id}' not found"))),
    }
}

pub async fn info(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/session/info/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    let got = blocking(&ctx.store, &opts, |r, ws| session::info(r, ws, &id)).await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let node = req.tail("/v1/session/node/").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let got = blocking(&ctx.store, &opts, |r, ws| session::for_node(r, ws, &node)).await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, session::list).await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}
