//! `/v1/session/*`: create, destroy, renew, and the blocking reads info, node and list.
//!
//! ACLs: creating, destroying or renewing a session needs `session:write` on its node; reads
//! keep the sessions whose node the token has `session:read` on.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::store::session;
use crate::types::session::Session;

/// `session:write` on an existing session's node (an unknown one is the store's answer).
fn require_write(ctx: &Ctx, req: &Request, id: &str) -> Result<(), ApiError> {
    match session::get(&ctx.store.read()?, id)? {
        Some(s) => req
            .caller
            .require(Resource::Session, AccessLevel::Write, &s.node),
        None => Ok(()),
    }
}

/// The sessions whose node the caller has `session:read` on.
fn readable_reply(
    req: &Request,
    mut sessions: Vec<Session>,
    index: u64,
    pretty: bool,
) -> Result<Reply, ApiError> {
    let removed = req.caller.filter(&mut sessions, |c, s| {
        c.may(Resource::Session, AccessLevel::Read, &s.node)
    });
    Ok(Reply::json(&sessions, pretty)?
        .read_meta(index)
        .filtered_by_acls(&req.caller, removed))
}

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
    let session = ctx.sessions.decode(parsed)?;
    req.caller
        .require(Resource::Session, AccessLevel::Write, &session.node)?;
    let created = ctx.sessions.create(session).await?;
    Reply::json(&serde_json::json!({ "ID": created.id }), opts.pretty)
}

pub async fn destroy(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/session/destroy/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    require_write(&ctx, &req, &id)?;
    ctx.sessions.destroy(&id).await?;
    Reply::json(&true, opts.pretty)
}

pub async fn renew(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/session/renew/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing session"));
    }
    require_write(&ctx, &req, &id)?;
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
    readable_reply(&req, got.value, got.index, opts.pretty)
}

pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let node = req.tail("/v1/session/node/").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let got = blocking(&ctx.store, &opts, |r, ws| session::for_node(r, ws, &node)).await?;
    readable_reply(&req, got.value, got.index, opts.pretty)
}

pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, session::list).await?;
    readable_reply(&req, got.value, got.index, opts.pretty)
}
