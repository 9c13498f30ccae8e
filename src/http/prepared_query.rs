//! `/v1/query` and `/v1/query/<id>[/execute|/explain]` (Consul's
//! `prepared_query_endpoint.go`): create and list, read, update and delete by ID, and
//! execute or explain by ID, name or template prefix.
//!
//! ACLs as Consul's server applies them: writing a named query or a template needs
//! `query:write` on its name (for an update, on the old name too); reading one needs
//! `query:read` on its name, and an unnamed query is listed or explained only for `acl:write`
//! (anyone holding its ID may read it); a query's `Token` shows as `<hidden>` without
//! `acl:write`. Executing needs nothing: the instances are filtered by what the query's
//! token, else the caller's, may read.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::agent::acl::Identity;
use crate::agent::prepared_query::{self as queries, ExecuteOptions, QueryError, Source};
use crate::store::prepared_query as store;
use crate::types::prepared_query::{
    ExecuteResponse, ExplainResponse, PreparedQuery, QueryMeta, PREPARED_QUERY, REDACTED_TOKEN,
};
use warp::http::{Method, StatusCode};

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::NotFound => ApiError::not_found(err.to_string()),
            QueryError::Rejected(m) => ApiError::internal(m),
            QueryError::Store(e) => e.into(),
            QueryError::Token(e) => e.into(),
        }
    }
}

fn denied() -> ApiError {
    ApiError::forbidden("Permission denied")
}

/// Whether the caller may write a query with this ACL prefix.
fn may_write(who: &Identity, query: &PreparedQuery) -> bool {
    query.acl_prefix().is_none_or(|prefix| {
        who.authorizer
            .enforce(Resource::Query, AccessLevel::Write, prefix)
            .is_allow()
    })
}

fn manages(who: &Identity) -> bool {
    who.authorizer.acl_write().is_allow()
}

/// The query as the caller may see it: `None` if it may not see it at all (an unnamed query
/// without `acl:write`, or no `query:read` on its name), else with its token redacted unless
/// the caller has `acl:write` (Consul's `filterPreparedQueries`).
fn visible(who: &Identity, query: PreparedQuery) -> Option<PreparedQuery> {
    if manages(who) {
        return Some(query);
    }
    let prefix = query.acl_prefix()?;
    if !who
        .authorizer
        .enforce(Resource::Query, AccessLevel::Read, prefix)
        .is_allow()
    {
        return None;
    }
    Some(redacted(who, query))
}

fn redacted(who: &Identity, mut query: PreparedQuery) -> PreparedQuery {
    if !query.token.is_empty() && !manages(who) {
        query.token = REDACTED_TOKEN.into();
    }
    query
}

/// Decodes a query body as Consul's `decodeBody` does.
fn decode(body: &[u8]) -> Result<PreparedQuery, ApiError> {
    let failed = |e: String| ApiError::bad_request(format!("Request decode failed: {e}"));
    let map = crate::gojson::decode(body, &PREPARED_QUERY).map_err(failed)?;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| failed(e.to_string()))
}

/// `GET /v1/query` (list) and `POST /v1/query` (create).
pub async fn root(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let who = req.caller.identity.clone();
    if req.method == Method::POST {
        let query = decode(&req.body(&ctx).await?)?;
        if !may_write(&who, &query) {
            return Err(denied());
        }
        let id = queries::create(&ctx, query).await?;
        return Reply::json(&serde_json::json!({ "ID": id }), opts.pretty);
    }
    let got = blocking(&ctx.store, &opts, store::list).await?;
    let listed: Vec<PreparedQuery> = got
        .value
        .into_iter()
        .filter_map(|q| visible(&who, q))
        .collect();
    Ok(Reply::json(&listed, opts.pretty)?.read_meta(got.index))
}

/// `/v1/query/<id>` (read, update, delete) and `/v1/query/<id|name>/(execute|explain)`.
pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let tail = req.tail("/v1/query/").to_string();
    let action = ["execute", "explain"].into_iter().find_map(|a| {
        tail.strip_suffix(&format!("/{a}"))
            .map(|id| (a, id.to_string()))
    });
    if let Some((action, id)) = action {
        if req.method != Method::GET {
            return Err(ApiError::method_not_allowed(
                req.method.as_str(),
                "OPTIONS,GET".into(),
            ));
        }
        return match action {
            "execute" => execute(ctx, req, &id).await,
            _ => explain(ctx, req, &id).await,
        };
    }
    match req.method {
        Method::GET => read(ctx, req, &tail).await,
        Method::PUT => update(ctx, req, tail).await,
        _ => delete(ctx, req, &tail).await,
    }
}

async fn read(ctx: Ctx, req: Request, id: &str) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let who = req.caller.identity.clone();
    let got = blocking(&ctx.store, &opts, |r, ws| store::get(r, ws, id)).await?;
    let query = got
        .value
        .ok_or_else(|| ApiError::not_found("Query not found"))?;
    // Holding the ID of an unnamed query is enough to read it.
    let query = if query.acl_prefix().is_none() {
        redacted(&who, query)
    } else {
        visible(&who, query).ok_or_else(denied)?
    };
    Ok(Reply::json(&[query], opts.pretty)?.read_meta(got.index))
}

async fn update(ctx: Ctx, mut req: Request, id: String) -> Result<Reply, ApiError> {
    let who = req.caller.identity.clone();
    let body = req.body(&ctx).await?;
    let mut query = if body.is_empty() {
        PreparedQuery::default()
    } else {
        decode(&body)?
    };
    // The ID is the path's, whatever the body says.
    query.id = id;
    if !may_write(&who, &query) {
        return Err(denied());
    }
    check_existing(&ctx, &who, &query.id)?;
    queries::update(&ctx, query).await?;
    Ok(Reply::empty(StatusCode::OK))
}

async fn delete(ctx: Ctx, req: Request, id: &str) -> Result<Reply, ApiError> {
    let who = req.caller.identity.clone();
    check_existing(&ctx, &who, id)?;
    queries::delete(&ctx, id).await?;
    Ok(Reply::empty(StatusCode::OK))
}

/// A change to an existing query needs `query:write` on its current name too.
fn check_existing(ctx: &Ctx, who: &Identity, id: &str) -> Result<(), ApiError> {
    let existing = store::lookup(&ctx.store.read()?, id)?.ok_or_else(|| {
        ApiError::internal(format!("Cannot modify non-existent prepared query: '{id}'"))
    })?;
    if !may_write(who, &existing) {
        return Err(denied());
    }
    Ok(())
}

/// The `QueryMeta` a read embeds in its body (execute, explain, a federation state): the
/// consistency asked for, as Consul's `QueryOptions.ConsistencyLevel`; this single server
/// always leads. Execute and explain are not blocking reads, so their index is 0 (the header
/// says 1, as for any read).
pub(super) fn query_meta(opts: &super::query::QueryOptions, index: u64) -> QueryMeta {
    let level = if opts.consistent {
        "consistent"
    } else if opts.stale {
        "stale"
    } else {
        "leader"
    };
    QueryMeta {
        index,
        last_contact: 0,
        known_leader: true,
        consistency_level: level.into(),
        not_modified: false,
        backend: 0,
        results_filtered_by_acls: false,
    }
}

fn limit(req: &Request) -> Result<usize, ApiError> {
    match req.params.get("limit") {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i64>().map(|n| n.max(0) as usize).map_err(|_| {
            ApiError::internal(format!(
                "Bad limit: strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        }),
    }
}

/// The caller's address as Consul's `sourceAddrFromRequest` sees it: the first
/// `X-Forwarded-For` entry, else the connection's peer.
fn source_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.headers
        .get("X-Forwarded-For")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .or(req.remote.map(|a| a.ip()))
}

async fn execute(ctx: Ctx, req: Request, id_or_name: &str) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let run = ExecuteOptions {
        source: Source {
            near: req.params.get("near").unwrap_or("").to_string(),
            ip: source_ip(&req),
        },
        limit: limit(&req)?,
        connect: req
            .params
            .get("connect")
            .is_some_and(|v| v != "false" && v != "0"),
        caller: req.caller.identity.clone(),
    };
    let done = queries::execute(&ctx, id_or_name, &run)?;
    let response = ExecuteResponse {
        service: done.service,
        nodes: done.nodes,
        dns: done.dns,
        datacenter: done.datacenter,
        failovers: done.failovers,
        meta: query_meta(&opts, 0),
    };
    Ok(Reply::json(&response, opts.pretty)?.read_meta(0))
}

async fn explain(ctx: Ctx, req: Request, id_or_name: &str) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    limit(&req)?;
    let who = req.caller.identity.clone();
    let (_, query) = queries::resolve(&ctx.store.read()?, id_or_name)?;
    let query = visible(&who, query).ok_or_else(denied)?;
    let response = ExplainResponse {
        query,
        meta: query_meta(&opts, 0),
    };
    Ok(Reply::json(&response, opts.pretty)?.read_meta(0))
}
