//! `/v1/kv/<key>`: get (single, `recurse`, `keys` with `separator`, `raw`), put (`flags`,
//! `cas`, `acquire`, `release`) and delete (`recurse`, `cas`), as Consul's `kvs_endpoint.go`.
//!
//! ACLs: a get needs `key:read` on the key; a listing (`keys`, `recurse`) shows only the
//! readable keys, and needs `key:list` on its prefix with `acl.enable_key_list_policy`; a put or delete needs `key:write` on the key,
//! a recursive delete write on everything under the prefix.

use super::acl::Caller;
use super::blocking::{blocking, Blocked};
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::store::{kv, Command};
use warp::http::{Method, StatusCode};

const PREFIX: &str = "/v1/kv/";

pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    match req.method {
        Method::GET => get(ctx, req).await,
        Method::PUT => put(ctx, req).await,
        _ => delete(ctx, req).await,
    }
}

fn missing_key() -> ApiError {
    ApiError::bad_request("Missing key name")
}

/// Consul refuses more than one of these flags together, echoing the whole query.
fn conflicting(req: &Request, flags: &[&str]) -> Result<(), ApiError> {
    if flags.iter().filter(|f| req.params.has(f)).count() > 1 {
        return Err(ApiError::bad_request(format!(
            "Conflicting flags: {}",
            req.params.encode_sorted()
        )));
    }
    Ok(())
}

async fn get(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let key = req.tail(PREFIX).to_string();
    let store = &ctx.store;
    let lists = req.params.has("keys") || req.params.has("recurse");
    if !lists && key.is_empty() {
        return Err(missing_key());
    }
    // A listing leaves out what the token may not read; it needs `key:list` on its prefix
    // only with `acl.enable_key_list_policy`, as Consul's KVS.List and KVS.ListKeys.
    if !lists {
        req.caller.require(Resource::Key, AccessLevel::Read, &key)?;
    } else if ctx.config.acl.enable_key_list_policy {
        req.caller.require(Resource::Key, AccessLevel::List, &key)?;
    }
    if req.params.has("keys") {
        let separator = req
            .params
            .get("separator")
            .or_else(|| req.params.get("seperator"))
            .unwrap_or("")
            .to_string();
        let got = blocking(store, &opts, |r, ws| kv::keys(r, ws, &key, &separator)).await?;
        return listing(&req, opts.pretty, got, |k| k, !key.is_empty());
    }
    if req.params.has("recurse") {
        let got = blocking(store, &opts, |r, ws| kv::list(r, ws, &key)).await?;
        return listing(&req, opts.pretty, got, |e| &e.key, true);
    }
    let got = blocking(store, &opts, |r, ws| kv::get(r, ws, &key)).await?;
    let Some(entry) = got.value else {
        return Ok(Reply::empty(StatusCode::NOT_FOUND).read_meta(got.index));
    };
    if req.params.has("raw") {
        return Ok(Reply::bytes(entry.value, Some("text/plain"))
            .header("X-Content-Type-Options", "nosniff")
            .header("Content-Security-Policy", "sandbox")
            .read_meta(got.index));
    }
    Ok(Reply::json(&[entry], opts.pretty)?.read_meta(got.index))
}

/// A listing's reply: the entries whose key the caller may read; a 404 when none is left
/// and `missing_is_404`.
fn listing<T: serde::Serialize>(
    req: &Request,
    pretty: bool,
    mut got: Blocked<Vec<T>>,
    key_of: impl Fn(&T) -> &str,
    missing_is_404: bool,
) -> Result<Reply, ApiError> {
    let removed = req.caller.filter(&mut got.value, |c, item| {
        c.may(Resource::Key, AccessLevel::Read, key_of(item))
    });
    let reply = if got.value.is_empty() && missing_is_404 {
        Reply::empty(StatusCode::NOT_FOUND)
    } else {
        Reply::json(&got.value, pretty)?
    };
    Ok(reply
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// Write on every key under `prefix` (a recursive delete, here or in a transaction): Consul's
/// `KeyWritePrefix`, refused with the `key:write` text on the prefix.
pub(super) fn require_tree_write(caller: &Caller, prefix: &str) -> Result<(), ApiError> {
    if caller
        .identity
        .authorizer
        .key_write_prefix(prefix)
        .is_allow()
    {
        Ok(())
    } else {
        Err(caller.denied(Resource::Key, AccessLevel::Write, prefix))
    }
}

async fn put(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let key = req.tail(PREFIX).to_string();
    if key.is_empty() {
        return Err(missing_key());
    }
    conflicting(&req, &["cas", "acquire", "release"])?;
    let flags = req.params.u64("flags")?.unwrap_or(0);
    let cas = req.params.u64("cas")?;
    let acquire = req.params.get("acquire").map(str::to_string);
    let release = req.params.get("release").map(str::to_string);
    req.caller
        .require(Resource::Key, AccessLevel::Write, &key)?;
    let value = req.body(&ctx).await?;
    kv::validate_key(&key)?;
    let command = match (acquire, release) {
        (Some(session), _) => Command::KvLock {
            key,
            value,
            flags,
            session,
        },
        (_, Some(session)) => Command::KvUnlock {
            key,
            value,
            flags,
            session,
        },
        (None, None) => Command::KvSet {
            key,
            value,
            flags,
            cas,
        },
    };
    let written = ctx.store.apply(command).await?.applied();
    Reply::json(&written, opts.pretty)
}

async fn delete(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    conflicting(&req, &["recurse", "cas"])?;
    let key = req.tail(PREFIX).to_string();
    let command = if req.params.has("recurse") {
        require_tree_write(&req.caller, &key)?;
        Command::KvDeleteTree { prefix: key }
    } else {
        if key.is_empty() {
            return Err(missing_key());
        }
        req.caller
            .require(Resource::Key, AccessLevel::Write, &key)?;
        let cas = req.params.u64("cas")?;
        Command::KvDelete { key, cas }
    };
    let deleted = ctx.store.apply(command).await?.applied();
    Reply::json(&deleted, opts.pretty)
}
