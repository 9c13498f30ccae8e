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
use crate::acl::{AccessLevel, Resource};
use crate::filter::go_quote;
use crate::gojson;
use crate::store::{config_entry, Command};
use crate::types::config_entry::{canonical_name, check_kind, ConfigEntry, SERVICE_DEFAULTS_KIND};
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

/// The right reading (or, with `write`, writing) an entry of `kind` named `name` needs, as
/// Consul's entries' `CanRead`/`CanWrite`; `None` when anyone may.
fn entry_right(kind: &str, name: &str, write: bool) -> Option<(Resource, AccessLevel, String)> {
    let level = if write {
        AccessLevel::Write
    } else {
        AccessLevel::Read
    };
    let global = |resource| Some((resource, level, String::new()));
    match kind {
        "service-defaults" | "service-router" | "service-splitter" | "service-resolver" => {
            Some((Resource::Service, level, name.to_string()))
        }
        "service-intentions" => Some((Resource::Intention, level, name.to_string())),
        // Every proxy needs proxy-defaults: anyone may read them.
        "proxy-defaults" if !write => None,
        "ingress-gateway" | "terminating-gateway" if write => global(Resource::Operator),
        "ingress-gateway"
        | "terminating-gateway"
        | "api-gateway"
        | "bound-api-gateway"
        | "http-route"
        | "tcp-route"
            if !write =>
        {
            Some((Resource::Service, level, name.to_string()))
        }
        _ => global(Resource::Mesh),
    }
}

fn may_read(caller: &Caller, entry: &ConfigEntry) -> bool {
    entry_right(&entry.kind, &entry.name, false).is_none_or(|(r, l, s)| caller.may(r, l, &s))
}

fn require(caller: &Caller, kind: &str, name: &str, write: bool) -> Result<(), ApiError> {
    match entry_right(kind, name, write) {
        Some((resource, level, segment)) => caller.require(resource, level, &segment),
        None => Ok(()),
    }
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
        use Resource::{Intention, Mesh, Operator, Service};
        let cases = [
            (
                "service-defaults",
                "web",
                false,
                Some((Service, Read, "web")),
            ),
            (
                "service-resolver",
                "web",
                true,
                Some((Service, Write, "web")),
            ),
            (
                "service-intentions",
                "web",
                true,
                Some((Intention, Write, "web")),
            ),
            ("proxy-defaults", "global", false, None),
            ("proxy-defaults", "global", true, Some((Mesh, Write, ""))),
            ("ingress-gateway", "gw", false, Some((Service, Read, "gw"))),
            ("ingress-gateway", "gw", true, Some((Operator, Write, ""))),
            (
                "exported-services",
                "default",
                false,
                Some((Mesh, Read, "")),
            ),
        ];
        for (kind, name, write, expected) in cases {
            let expected = expected.map(|(r, l, s)| (r, l, s.to_string()));
            assert_eq!(
                entry_right(kind, name, write),
                expected,
                "{kind} write={write}"
            );
        }
    }
}
