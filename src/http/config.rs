//! `/v1/config` (Consul's `config_endpoint.go`, HTTP and server halves): write an entry
//! (`PUT /v1/config`, `?cas`), read one (`GET /v1/config/<kind>/<name>`), list a kind or all
//! (`GET /v1/config/<kind>`, `?filter`), delete one (`DELETE /v1/config/<kind>/<name>`, `?cas`).
//! Reads block.
//!
//! Statuses follow Consul's split between its HTTP handler and its server: a body that doesn't
//! decode, or an unknown kind in a delete, is a 400; what the server refuses (an entry that
//! fails validation, a conflict with other entries, an unknown kind in a read) is a 500.
//!
//! ACLs by kind (Consul's `CanRead`/`CanWrite`, see `entry_right`); a list keeps the entries
//! the token may read.

use super::acl::Caller;
use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, PermissionDenied, Resource};
use crate::filter::go_quote;
use crate::gojson;
use crate::store::{config_entry, Command};
use crate::types::config_entry::{canonical_name, check_kind, ConfigEntry, SERVICE_DEFAULTS_KIND};
use serde_json::Value;
use std::collections::BTreeSet;
use warp::http::Method;

const PREFIX: &str = "/v1/config/";

/// `?cas=`: absent or empty means none. Consul hands a malformed one's parse error back as is,
/// which its HTTP layer turns into a 500.
fn cas(req: &Request) -> Result<Option<u64>, ApiError> {
    match req.params.get("cas") {
        None | Some("") => Ok(None),
        Some(_) => req
            .params
            .u64("cas")
            .map_err(|e| ApiError::internal(e.message)),
    }
}

/// The path's kind and, after the first `/`, name.
fn kind_and_name(req: &Request) -> (String, Option<String>) {
    let tail = req.tail(PREFIX);
    match tail.split_once('/') {
        Some((kind, name)) => (kind.to_string(), Some(name.to_string())),
        None => (tail.to_string(), None),
    }
}

/// What reading (or writing) an entry of one kind takes: Consul's entries' `CanRead` and
/// `CanWrite`.
#[derive(Debug, PartialEq, Eq)]
enum EntryRight {
    /// Anyone may (what every proxy reads).
    Anyone,
    /// This right.
    Needs(Resource, AccessLevel, String),
    /// `service:write` on any service (sidecars read JWT providers), else `mesh:read`.
    AnyServiceWriteOrMeshRead,
    /// No token: Consul's own controller writes these.
    Nobody(&'static str),
}

/// The right reading (or, with `write`, writing) an entry of `kind` named `name` needs.
fn entry_right(kind: &str, name: &str, write: bool) -> EntryRight {
    let level = if write {
        AccessLevel::Write
    } else {
        AccessLevel::Read
    };
    let on_name = |resource| EntryRight::Needs(resource, level, name.to_string());
    match (kind, write) {
        ("service-defaults" | "service-router" | "service-splitter" | "service-resolver", _) => {
            on_name(Resource::Service)
        }
        ("service-intentions", _) => on_name(Resource::Intention),
        ("proxy-defaults" | "mesh" | "sameness-group", false) => EntryRight::Anyone,
        (
            "ingress-gateway" | "terminating-gateway" | "api-gateway" | "bound-api-gateway",
            false,
        ) => on_name(Resource::Service),
        ("bound-api-gateway", true) => EntryRight::Nobody("only writeable by controller"),
        ("jwt-provider", false) => EntryRight::AnyServiceWriteOrMeshRead,
        _ => EntryRight::Needs(Resource::Mesh, level, String::new()),
    }
}

impl EntryRight {
    /// The caller, if it has this right; else Consul's 403.
    fn check(self, caller: &Caller) -> Result<(), ApiError> {
        match self {
            EntryRight::Anyone => Ok(()),
            EntryRight::Needs(resource, level, segment) => {
                caller.require(resource, level, &segment)
            }
            EntryRight::AnyServiceWriteOrMeshRead
                if caller.identity.authorizer.service_write_any().is_allow() =>
            {
                Ok(())
            }
            EntryRight::AnyServiceWriteOrMeshRead => {
                caller.require(Resource::Mesh, AccessLevel::Read, "")
            }
            EntryRight::Nobody(cause) => Err(PermissionDenied::Cause(cause.into()).into()),
        }
    }
}

/// The other services a discovery-chain entry sends traffic to (Consul's
/// `ListRelatedServices`): routes' destinations, splits, a resolver's redirect and failover
/// targets (but those on peers), each defaulting to the entry's own service. Writing the
/// entry also needs `service:read` on each (`canWriteDiscoveryChain`).
fn related_services(entry: &ConfigEntry) -> BTreeSet<String> {
    let body = entry.body();
    let service_or_own = |v: &Value| {
        v.get("Service")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(&entry.name)
            .to_string()
    };
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = BTreeSet::new();
    match entry.kind.as_str() {
        "service-router" => out.extend(
            list(body.get("Routes"))
                .iter()
                .filter_map(|route| route.get("Destination"))
                .filter(|d| !d.is_null())
                .map(service_or_own),
        ),
        "service-splitter" => out.extend(list(body.get("Splits")).iter().map(service_or_own)),
        "service-resolver" => {
            out.extend(
                body.get("Redirect")
                    .filter(|r| !r.is_null())
                    .map(service_or_own),
            );
            let failovers = body.get("Failover").and_then(Value::as_object);
            for failover in failovers.into_iter().flat_map(|m| m.values()) {
                let targets = list(failover.get("Targets"));
                if targets.is_empty() {
                    out.insert(service_or_own(failover));
                }
                let local = |t: &&Value| {
                    t.get("Peer")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                };
                out.extend(targets.iter().filter(local).map(service_or_own));
            }
        }
        _ => {}
    }
    out.remove(&entry.name);
    out
}

fn may_read(caller: &Caller, entry: &ConfigEntry) -> bool {
    entry_right(&entry.kind, &entry.name, false)
        .check(caller)
        .is_ok()
}

fn require(caller: &Caller, kind: &str, name: &str, write: bool) -> Result<(), ApiError> {
    entry_right(kind, name, write).check(caller)
}

/// `PUT /v1/config`: `true` once written, `false` when a `?cas` doesn't match.
pub async fn apply(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let decode_failed = |e: String| ApiError::bad_request(format!("Request decoding failed: {e}"));
    let raw = gojson::parse(&body).map_err(decode_failed)?;
    let mut entry = ConfigEntry::decode(raw).map_err(decode_failed)?;
    let cas = cas(&req)?;
    require(&req.caller, &entry.kind, &entry.name, true)?;
    if entry.runs_envoy_code() {
        req.caller.require(Resource::Mesh, AccessLevel::Write, "")?;
    }
    for related in related_services(&entry) {
        req.caller
            .require(Resource::Service, AccessLevel::Read, &related)?;
    }
    entry.check().map_err(ApiError::internal)?;
    let written = ctx
        .store
        .apply(Command::ConfigEntrySet {
            entry: Box::new(entry),
            cas,
        })
        .await?
        .applied();
    Reply::json(&written, opts.pretty)
}

/// `GET` and `DELETE` under `/v1/config/`.
pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    match req.method {
        Method::GET => read(ctx, req).await,
        _ => delete(ctx, req).await,
    }
}

async fn read(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let (kind, name) = kind_and_name(&req);
    let Some(name) = name else {
        return list(ctx, req, kind).await;
    };
    check_kind(&kind).map_err(ApiError::internal)?;
    require(&req.caller, &kind, &name, false)?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        config_entry::get(r, ws, &kind, &name)
    })
    .await?;
    match got.value {
        Some(entry) => Ok(Reply::json(&entry, opts.pretty)?.read_meta(got.index)),
        None => Ok(Reply::from(ApiError::not_found(format!(
            "Config entry not found for {} / {}",
            go_quote(&kind),
            go_quote(&name)
        )))
        .read_meta(got.index)),
    }
}

/// `GET /v1/config/<kind>`; an empty kind lists every entry, as Consul's does. `?filter` is
/// for service-defaults only (Consul's `ConfigEntry.List` refuses it for any other kind, or
/// none, before reading).
async fn list(ctx: Ctx, req: Request, kind: String) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    if !kind.is_empty() {
        check_kind(&kind).map_err(ApiError::internal)?;
    }
    if opts.filter.is_some() && kind != SERVICE_DEFAULTS_KIND {
        return Err(ApiError::internal(format!(
            "filtering not supported for config entry kind={kind}"
        )));
    }
    // A bad filter is refused before blocking, as Consul builds its filter first.
    let filter = opts.parsed_filter()?;
    let of_kind = (!kind.is_empty()).then_some(kind.as_str());
    let got = blocking(&ctx.store, &opts, |r, ws| {
        config_entry::list(r, ws, of_kind)
    })
    .await?;
    let mut entries = got.value;
    let removed = req.caller.filter(&mut entries, may_read);
    let entries = match filter {
        Some(f) => f.apply(entries)?,
        None => entries,
    };
    Ok(Reply::json(&entries, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// `DELETE /v1/config/<kind>/<name>`: `{}`, or with `?cas` whether it deleted.
async fn delete(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let (kind, Some(name)) = kind_and_name(&req) else {
        return Err(ApiError::not_found(
            "Must provide both a kind and name to delete",
        ));
    };
    check_kind(&kind).map_err(ApiError::bad_request)?;
    let cas = cas(&req)?;
    let name = canonical_name(&kind, &name).map_err(ApiError::internal)?;
    require(&req.caller, &kind, &name, true)?;
    let deleted = ctx
        .store
        .apply(Command::ConfigEntryDelete { kind, name, cas })
        .await?
        .applied();
    match cas {
        Some(_) => Reply::json(&deleted, opts.pretty),
        // Consul answers plain deletes with an empty object, for older clients.
        None => Reply::json(&serde_json::json!({}), opts.pretty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_rights_follow_each_kinds_can_read_and_can_write() {
        use AccessLevel::{Read, Write};
        use EntryRight::{AnyServiceWriteOrMeshRead, Anyone, Nobody};
        use Resource::{Intention, Mesh, Service};
        let needs = |r, l, s: &str| EntryRight::Needs(r, l, s.to_string());
        let cases = [
            (
                "service-defaults",
                "web",
                false,
                needs(Service, Read, "web"),
            ),
            (
                "service-resolver",
                "web",
                true,
                needs(Service, Write, "web"),
            ),
            (
                "service-intentions",
                "web",
                true,
                needs(Intention, Write, "web"),
            ),
            ("proxy-defaults", "global", false, Anyone),
            ("proxy-defaults", "global", true, needs(Mesh, Write, "")),
            ("ingress-gateway", "gw", false, needs(Service, Read, "gw")),
            // Consul 1.22's gateways' `CanWrite` is `MeshWriteAllowed`.
            ("ingress-gateway", "gw", true, needs(Mesh, Write, "")),
            ("exported-services", "default", false, needs(Mesh, Read, "")),
            ("mesh", "mesh", false, Anyone),
            ("mesh", "mesh", true, needs(Mesh, Write, "")),
            ("sameness-group", "sg", false, Anyone),
            ("http-route", "r", false, needs(Mesh, Read, "")),
            ("api-gateway", "gw", false, needs(Service, Read, "gw")),
            (
                "bound-api-gateway",
                "gw",
                true,
                Nobody("only writeable by controller"),
            ),
            ("jwt-provider", "okta", false, AnyServiceWriteOrMeshRead),
        ];
        for (kind, name, write, expected) in cases {
            assert_eq!(
                entry_right(kind, name, write),
                expected,
                "{kind} write={write}"
            );
        }
    }

    #[test]
    fn discovery_chain_entries_relate_to_the_services_they_send_traffic_to() {
        let related = |entry: serde_json::Value| {
            let entry = ConfigEntry::decode(entry).unwrap();
            related_services(&entry).into_iter().collect::<Vec<_>>()
        };
        let router = serde_json::json!({"Kind": "service-router", "Name": "web", "Routes": [
            {"Destination": {"Service": "api"}},
            {"Destination": {"ServiceSubset": "v2"}},
            {"Match": {"HTTP": {"PathPrefix": "/x"}}},
        ]});
        assert_eq!(related(router), ["api"]);
        let splitter = serde_json::json!({"Kind": "service-splitter", "Name": "web", "Splits": [
            {"Weight": 50, "Service": "web-v2"}, {"Weight": 50},
        ]});
        assert_eq!(related(splitter), ["web-v2"]);
        let resolver = serde_json::json!({"Kind": "service-resolver", "Name": "web",
        "Redirect": {"Service": "moved"},
        "Failover": {
            "*": {"Service": "backup"},
            "v1": {"Targets": [{"Service": "t1"}, {"Peer": "far", "Service": "t2"}, {}]},
        }});
        assert_eq!(related(resolver), ["backup", "moved", "t1"]);
        let defaults = serde_json::json!({"Kind": "service-defaults", "Name": "web"});
        assert!(related(defaults).is_empty());
    }
}
