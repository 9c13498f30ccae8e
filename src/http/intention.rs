//! `/v1/connect/intentions` (Consul's `intentions_endpoint.go`) and
//! `POST /v1/agent/connect/authorize`. Intentions live in `service-intentions` config entries;
//! reads go through `store::intention` (blocking, waking on any write of those entries), writes
//! through `agent::intentions`.
//!
//! ACLs (Consul's `intention_endpoint.go`): an intention is read with `intention:read` and
//! written with `intention:write` on its destination (lists keep the readable ones); `check`
//! needs `service:read` on the destination; authorize needs `service:write` on the target.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::agent::intentions as ops;
use crate::connect::CertUri;
use crate::gojson;
use crate::store::intention as stored;
use crate::store::WatchSet;
use crate::types::intention::{IntentionInput, MatchBy, DEFAULT_NS};
use crate::types::schemas::CONNECT_AUTHORIZE;
use warp::http::Method;

const PREFIX: &str = "/v1/connect/intentions/";

fn required<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    req.params
        .get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("required query parameter '{name}' not set")))
}

/// A `?source=`/`?destination=` value: `name` or `default/name` (namespaces are Enterprise).
fn service_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let value = required(req, name)?;
    match value.split_once('/') {
        None => Ok(value.to_string()),
        Some((DEFAULT_NS, service)) if !service.is_empty() => Ok(service.to_string()),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} {value:?}: only names in the default namespace are supported (namespaces are a Consul Enterprise feature)"
        ))),
    }
}

/// A body the intention writes cannot decode. Consul's exact upsert and legacy update answer
/// 400 `Request decode failed`; its legacy create returns a plain error, a 500 `Failed to
/// decode request body`.
#[derive(Clone, Copy)]
enum DecodeFailure {
    BadRequest,
    Create,
}

async fn decoded_body(
    ctx: &Ctx,
    req: &mut Request,
    failure: DecodeFailure,
) -> Result<IntentionInput, ApiError> {
    let body = req.body(ctx).await?;
    IntentionInput::decode(&body).map_err(|e| match failure {
        DecodeFailure::BadRequest => ApiError::bad_request(format!("Request decode failed: {e}")),
        DecodeFailure::Create => ApiError::internal(format!("Failed to decode request body: {e}")),
    })
}

/// `GET /v1/connect/intentions` (`?filter`) and `POST` (a legacy create, answering its ID).
pub async fn root(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    if req.method == Method::POST {
        let input = decoded_body(&ctx, &mut req, DecodeFailure::Create).await?;
        req.caller.require(
            Resource::Intention,
            AccessLevel::Write,
            &input.destination_name,
        )?;
        let id = ops::create_legacy(&ctx.store, input).await?;
        return Reply::json(&serde_json::json!({ "ID": id }), opts.pretty);
    }
    let filter = opts.parsed_filter()?;
    let got = blocking(&ctx.store, &opts, stored::list).await?;
    let mut intentions = match filter {
        Some(f) => f.apply(got.value)?,
        None => got.value,
    };
    let removed = req.caller.filter(&mut intentions, |c, i| {
        c.may(Resource::Intention, AccessLevel::Read, &i.destination_name)
    });
    Ok(Reply::json(&intentions, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// Everything under `/v1/connect/intentions/`: `exact`, `check`, `match`, or an ID.
pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    match req.tail(PREFIX) {
        "exact" => exact(ctx, req).await,
        "check" if req.method == Method::GET => check(ctx, req).await,
        "match" if req.method == Method::GET => matching(ctx, req).await,
        "check" | "match" => Err(ApiError::method_not_allowed(
            req.method.as_str(),
            "OPTIONS,GET".into(),
        )),
        _ => by_id(ctx, req).await,
    }
}

async fn exact(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let source = service_param(&req, "source")?;
    let destination = service_param(&req, "destination")?;
    let level = if req.method == Method::GET {
        AccessLevel::Read
    } else {
        AccessLevel::Write
    };
    req.caller
        .require(Resource::Intention, level, &destination)?;
    match req.method {
        Method::GET => {
            let got = blocking(&ctx.store, &opts, |r, ws| {
                stored::exact(r, ws, &source, &destination)
            })
            .await?;
            match got.value {
                Some(found) => Ok(Reply::json(&found, opts.pretty)?.read_meta(got.index)),
                None => Ok(
                    Reply::from(ApiError::not_found("Intention not found")).read_meta(got.index)
                ),
            }
        }
        Method::PUT => {
            let mut input = decoded_body(&ctx, &mut req, DecodeFailure::BadRequest).await?;
            input.source_name = source;
            input.destination_name = destination;
            ops::upsert_exact(&ctx.store, input).await?;
            Reply::json(&true, opts.pretty)
        }
        _ => {
            ops::delete_exact(&ctx.store, &source, &destination).await?;
            Reply::json(&true, opts.pretty)
        }
    }
}

/// `GET /v1/connect/intentions/check`: whether `source` may connect to `destination`,
/// decided as authorize decides.
async fn check(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let source = service_param(&req, "source")?;
    let destination = service_param(&req, "destination")?;
    req.caller
        .require(Resource::Service, AccessLevel::Read, &destination)?;
    let decision = ctx.intentions.authorize(
        DEFAULT_NS,
        &source,
        &destination,
        &req.caller.identity.authorizer,
    )?;
    Reply::json(
        &serde_json::json!({ "Allowed": decision.authorized }),
        opts.pretty,
    )
}

/// `GET /v1/connect/intentions/match?by=&name=` (`name` repeatable): per name, the matching
/// intentions in precedence order.
async fn matching(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let by = required(&req, "by")?;
    // Consul's text, without the value.
    let by = MatchBy::parse(by).ok_or_else(|| {
        ApiError::bad_request("'by' parameter must be one of 'source' or 'destination'")
    })?;
    let names: Vec<String> = req
        .params
        .all("name")
        .into_iter()
        .map(String::from)
        .collect();
    if names.iter().all(|n| n.is_empty()) {
        return Err(ApiError::bad_request(
            "required query parameter 'name' not set",
        ));
    }
    for name in &names {
        req.caller
            .require(Resource::Intention, AccessLevel::Read, name)?;
    }
    let got = blocking(&ctx.store, &opts, |r, ws| {
        stored::matching(r, ws, by, &names)
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

/// `GET`, `PUT` and `DELETE /v1/connect/intentions/<id>` (legacy intentions).
async fn by_id(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail(PREFIX).to_string();
    match req.method {
        Method::GET => {
            let got = blocking(&ctx.store, &opts, |r, ws| stored::by_id(r, ws, &id)).await?;
            match got.value {
                Some(found) => {
                    req.caller.require(
                        Resource::Intention,
                        AccessLevel::Read,
                        &found.destination_name,
                    )?;
                    Ok(Reply::json(&found, opts.pretty)?.read_meta(got.index))
                }
                None => Ok(
                    Reply::from(ApiError::not_found("Intention not found")).read_meta(got.index)
                ),
            }
        }
        Method::PUT => {
            let input = decoded_body(&ctx, &mut req, DecodeFailure::BadRequest).await?;
            require_write_by_id(&ctx, &req, &id)?;
            req.caller.require(
                Resource::Intention,
                AccessLevel::Write,
                &input.destination_name,
            )?;
            ops::update_legacy(&ctx.store, &id, input).await?;
            Ok(Reply::empty(warp::http::StatusCode::OK))
        }
        _ => {
            require_write_by_id(&ctx, &req, &id)?;
            ops::delete_legacy(&ctx.store, &id).await?;
            Reply::json(&true, opts.pretty)
        }
    }
}

/// `intention:write` on the destination of an existing intention (by ID); an unknown one is
/// the write's own answer.
fn require_write_by_id(ctx: &Ctx, req: &Request, id: &str) -> Result<(), ApiError> {
    let (_, found) = stored::by_id(&ctx.store.read()?, &mut WatchSet::new(), id)?;
    match found {
        Some(i) => req
            .caller
            .require(Resource::Intention, AccessLevel::Write, &i.destination_name),
        None => Ok(()),
    }
}

/// `POST /v1/agent/connect/authorize`: answered from the agent's compiled intentions. The
/// certificate's trust domain is not checked (the proxy verified the chain).
pub async fn authorize(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let parsed = gojson::decode(&body, &CONNECT_AUTHORIZE)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    let field = |name| {
        parsed
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    };
    let target = field("Target");
    if target.is_empty() {
        return Err(ApiError::bad_request("Target service must be specified"));
    }
    req.caller
        .require(Resource::Service, AccessLevel::Write, target)?;
    let uri = CertUri::parse(field("ClientCertURI"))
        .map_err(|_| ApiError::bad_request("ClientCertURI not a valid Connect identifier"))?;
    let CertUri::Service {
        namespace, service, ..
    } = uri
    else {
        return Err(ApiError::bad_request(
            "ClientCertURI not a valid Service identifier",
        ));
    };
    let decision = ctx.intentions.authorize(
        &namespace,
        &service,
        target,
        &req.caller.identity.authorizer,
    )?;
    Reply::json(&decision, opts.pretty)
}
