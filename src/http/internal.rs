//! `/v1/internal/*` endpoints that are not the web UI's: `/v1/internal/acl/authorize` answers
//! whether the caller's token may do each of a batch of operations (Consul's `ACLAuthorize`
//! and `acl.Enforce`); `/v1/internal/service-virtual-ip` assigns a service's manual virtual
//! IPs (Consul's `AssignManualServiceVIPs`).

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::gojson::{self, field, Kind, Schema, STRING};
use serde_json::{Map, Value};

/// Consul refuses larger batches.
const MAX_AUTHORIZATIONS: usize = 64;

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
    let Some(resource) = Resource::named(resource) else {
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

static ASSIGN_MANUAL_VIPS_REQUEST: Schema = Schema {
    name: "AssignServiceManualVIPsRequest",
    go_type: "structs.AssignServiceManualVIPsRequest",
    fields: &[field("Service", STRING), field("ManualVIPs", Kind::StrList)],
    base: None,
    strict: false,
};

/// `PUT /v1/internal/service-virtual-ip`: sets a service's manual virtual IPs (needs
/// `service:write` on it), taking each from any other service that held it. Answers whether
/// the service has virtual IPs at all (`Found`; nothing changes when not) and the services
/// that lost addresses.
pub async fn assign_service_virtual_ips(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let request = gojson::decode(&body, &ASSIGN_MANUAL_VIPS_REQUEST)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    let service = request
        .get("Service")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    req.caller
        .require(Resource::Service, AccessLevel::Write, &service)?;
    let ips: Vec<String> = request
        .get("ManualVIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for ip in &ips {
        // Go's `net.ParseIP(ip).To4()`: an IPv6 address, even a valid one, is refused.
        let parsed: Option<std::net::IpAddr> = ip.parse().ok();
        if !matches!(parsed, Some(std::net::IpAddr::V4(_))) {
            let shown = parsed.map_or("<nil>".to_string(), |a| a.to_string());
            return Err(ApiError::internal(format!(
                "{} is not a valid IPv4 address",
                crate::filter::go_quote(&shown)
            )));
        }
    }
    let outcome = ctx
        .store
        .apply(crate::store::Command::AssignManualVirtualIps { service, ips })
        .await?;
    let assignment = outcome
        .virtual_ips()
        .ok_or_else(|| ApiError::internal("the virtual IP assignment returned no result"))?;
    let unassigned: Option<Vec<Value>> = (!assignment.unassigned_from.is_empty()).then(|| {
        assignment
            .unassigned_from
            .iter()
            .map(|name| serde_json::json!({"ServiceName": {"Name": name}, "Peer": ""}))
            .collect()
    });
    Reply::json(
        &serde_json::json!({"Found": assignment.found, "UnassignedFrom": unassigned}),
        opts.pretty,
    )
}
