//! `/v1/internal/*` endpoints that are not the web UI's: `/v1/internal/acl/authorize` answers
//! whether the caller's token may do each of a batch of operations (Consul's `ACLAuthorize`
//! and `acl.Enforce`).

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::gojson::{self, field, Schema, STRING};
use serde_json::{Map, Value};

/// Consul refuses larger batches.
const MAX_AUTHORIZATIONS: usize = 64;

/// Every resource `acl.Enforce` knows, by name.
const RESOURCES: [Resource; Resource::COUNT] = [
    Resource::Acl,
    Resource::Agent,
    Resource::Event,
    Resource::Intention,
    Resource::Key,
    Resource::Keyring,
    Resource::Mesh,
    Resource::Node,
    Resource::Operator,
    Resource::Peering,
    Resource::Query,
    Resource::Service,
    Resource::Session,
];

static AUTHORIZATION_REQUEST: Schema = Schema {
    name: "ACLAuthorizationRequest",
    go_type: "structs.ACLAuthorizationRequest",
    fields: &[
        field("Resource", STRING),
        field("Segment", STRING),
        field("Access", STRING),
    ],
    base: None,
    strict: false,
};

/// One decision of `acl.Enforce`: the resource must be known, and the level one it has (only
/// keys have `list`); levels are matched in any case.
fn enforce(
    caller: &super::acl::Caller,
    resource: &str,
    segment: &str,
    access: &str,
) -> Result<bool, String> {
    let Some(resource) = RESOURCES.iter().copied().find(|r| r.as_str() == resource) else {
        return Err(format!(
            "Invalid ACL resource requested: {}",
            crate::filter::go_quote(resource)
        ));
    };
    let level = match AccessLevel::parse(access) {
        Some(AccessLevel::Read) => AccessLevel::Read,
        Some(AccessLevel::Write) => AccessLevel::Write,
        Some(AccessLevel::List) if resource == Resource::Key => AccessLevel::List,
        _ => {
            return Err(format!(
                "Invalid access level for {} resource: {access}",
                resource.as_str()
            ))
        }
    };
    Ok(caller.may(resource, level, segment))
}

/// `POST /v1/internal/acl/authorize`: a JSON list of `{Resource, Segment, Access}`, answered
/// with each request and `Allow`. Needs ACLs on and any valid token (no further right).
pub async fn acl_authorize(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    super::acl::acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let decode_failed =
        |e: String| ApiError::bad_request(format!("Failed to decode request body: {e}"));
    let requests: Vec<Map<String, Value>> = match gojson::parse(&body).map_err(decode_failed)? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| gojson::decode_value(item, &AUTHORIZATION_REQUEST))
            .collect::<Result<_, _>>()
            .map_err(decode_failed)?,
        Value::Null => Vec::new(),
        other => {
            return Err(decode_failed(format!(
                "json: cannot unmarshal {} into Go value of type []structs.ACLAuthorizationRequest",
                gojson::json_kind(&other)
            )))
        }
    };
    if requests.len() > MAX_AUTHORIZATIONS {
        return Err(ApiError::bad_request(format!(
            "Refusing to process more than {MAX_AUTHORIZATIONS} authorizations at once"
        )));
    }
    let text = |m: &Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let mut answers = Vec::with_capacity(requests.len());
    for request in &requests {
        let (resource, segment, access) = (
            text(request, "Resource"),
            text(request, "Segment"),
            text(request, "Access"),
        );
        let allow =
            enforce(&req.caller, &resource, &segment, &access).map_err(ApiError::bad_request)?;
        let mut answer = Map::new();
        answer.insert("Resource".into(), Value::String(resource));
        if !segment.is_empty() {
            answer.insert("Segment".into(), Value::String(segment));
        }
        answer.insert("Access".into(), Value::String(access));
        answer.insert("Allow".into(), Value::Bool(allow));
        answers.push(Value::Object(answer));
    }
    Reply::json(&answers, opts.pretty)
}
