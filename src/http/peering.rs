//! Cluster peering and the services a datacenter shares through it (`/v1/peering*`,
//! `/v1/exported-services`, `/v1/imported-services`), answered as a Consul CE server that has
//! established no peering: the peering list is empty, reading a peering finds none, deleting
//! one is the no-op Consul's delete of an unknown peering is, and nothing is imported. The
//! exported services are resolved from the `exported-services` config entry as Consul does,
//! since that entry can name peers before any peering exists.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::store::{catalog, config_entry, ReadTx, WatchSet};
use crate::types::config_entry::{EXPORTED_SERVICES_KIND, WILDCARD};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use warp::http::Method;

/// `GET /v1/peerings`: no peering exists, so the list is empty.
pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let none: [(); 0] = [];
    Reply::json(&none, opts.pretty)
}

/// `GET|DELETE /v1/peering/<name>`.
pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let name = req.tail("/v1/peering/");
    if name.is_empty() {
        return Err(ApiError::bad_request("Must specify a name to fetch."));
    }
    if req.method == Method::DELETE {
        // Consul's delete returns early, successfully, when the peering doesn't exist.
        return Ok(Reply::empty(warp::http::StatusCode::OK));
    }
    Err(ApiError::not_found(format!(
        "Peering not found for {}",
        crate::filter::go_quote(name)
    )))
}

/// One exported service and who consumes it (Consul's `api.ResolvedExportedService`).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ExportedService {
    pub service: String,
    pub consumers: Consumers,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Consumers {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// The services the `exported-services` entry shares, by name, a `*` entry expanded to every
/// registered service but `consul` (as Consul resolves wildcards).
fn exported(r: &ReadTx, ws: &mut WatchSet) -> crate::store::Result<(u64, Vec<ExportedService>)> {
    let (config_index, entry) = config_entry::get(r, ws, EXPORTED_SERVICES_KIND, "default")?;
    let (catalog_index, registered) = catalog::services(r, ws)?;
    let mut peers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let listed: Vec<serde_json::Value> = entry
        .as_ref()
        .and_then(|e| e.body.0.get("Services"))
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    for service in &listed {
        let name = service.get("Name").and_then(|n| n.as_str()).unwrap_or("");
        let consumers: Vec<String> = service
            .get("Consumers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("Peer").and_then(|p| p.as_str()))
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let names: Vec<String> = if name == WILDCARD {
            registered
                .keys()
                .filter(|n| n.as_str() != "consul")
                .cloned()
                .collect()
        } else {
            vec![name.to_string()]
        };
        for n in names {
            peers
                .entry(n)
                .or_default()
                .extend(consumers.iter().cloned());
        }
    }
    let services = peers
        .into_iter()
        .map(|(service, peers)| ExportedService {
            service,
            consumers: Consumers {
                peers: peers.into_iter().collect(),
            },
        })
        .collect();
    Ok((config_index.max(catalog_index), services))
}

/// `GET /v1/exported-services`: needs `mesh:read`; lists the services the caller may read.
pub async fn exported_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    req.caller.require(Resource::Mesh, AccessLevel::Read, "")?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, exported).await?;
    let mut services = got.value;
    let removed = req
        .caller
        .filter(&mut services, |c, s| c.reads_service(&s.service));
    Ok(Reply::json(&services, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// `GET /v1/imported-services`: needs `mesh:read`; without a peering nothing is imported, and
/// CE answers a plain (empty) array.
pub async fn imported_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    req.caller.require(Resource::Mesh, AccessLevel::Read, "")?;
    let opts = ctx.query_options(&req)?;
    let none: [(); 0] = [];
    Reply::json(&none, opts.pretty)
}
