//! Federation states (`/v1/internal/federation-state*`): what each datacenter tells the others
//! about its mesh gateways. A Consul primary's leader keeps its own datacenter's state (its
//! mesh gateways, re-synced whenever they change), with or without mesh-gateway WAN
//! federation; other datacenters' states arrive only over the WAN, which a single Legate
//! node never joins. So there is exactly one state, this datacenter's, derived when read from
//! the catalog's mesh gateways: it is what the leader's anti-entropy would have written.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::{catalog, ReadTx, WatchSet};
use crate::types::catalog::CheckServiceNode;
use crate::types::prepared_query::QueryMeta;
use serde::Serialize;
use std::collections::BTreeMap;
use warp::http::StatusCode;

const MESH_GATEWAY: &str = "mesh-gateway";

/// One datacenter's federation state (Consul's `structs.FederationState`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct FederationState {
    datacenter: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mesh_gateways: Vec<CheckServiceNode>,
    /// RFC 3339 time of the leader's last sync: here, when this server became leader.
    updated_at: String,
    primary_modify_index: u64,
    create_index: u64,
    modify_index: u64,
}

/// One datacenter's state with its `QueryMeta` (Consul's `FederationStateResponse`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StateResponse {
    state: FederationState,
    #[serde(flatten)]
    meta: QueryMeta,
}

/// This datacenter's state and its index (the catalog's).
fn own_state(
    ctx: &Ctx,
) -> impl Fn(&ReadTx, &mut WatchSet) -> crate::store::Result<(u64, FederationState)> + '_ {
    move |r, ws| {
        let (index, dump) = catalog::service_dump(r, ws)?;
        let mesh_gateways = dump
            .into_iter()
            .filter(|csn| csn.service.kind == MESH_GATEWAY)
            .collect();
        let index = index.max(1);
        Ok((
            index,
            FederationState {
                datacenter: ctx.config.datacenter.clone(),
                mesh_gateways,
                updated_at: crate::types::intention::go_time(
                    ctx.leader_since
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                ),
                primary_modify_index: index,
                create_index: index,
                modify_index: index,
            },
        ))
    }
}

/// `GET /v1/internal/federation-states` (`operator:read`): every datacenter's state.
pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, own_state(&ctx)).await?;
    Ok(Reply::json(&[got.value], opts.pretty)?.read_meta(got.index))
}

/// `GET /v1/internal/federation-state/<dc>` (`operator:read`): one datacenter's state with
/// the query's metadata, as Consul's `FederationStateResponse`; an unknown datacenter is a
/// 404 with no body.
pub async fn get(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let datacenter = req.tail("/v1/internal/federation-state/");
    if datacenter.is_empty() {
        return Err(ApiError::bad_request("Missing datacenter name"));
    }
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, own_state(&ctx)).await?;
    if datacenter != ctx.config.datacenter {
        return Ok(Reply::empty(StatusCode::NOT_FOUND).read_meta(got.index));
    }
    let body = StateResponse {
        state: got.value,
        meta: super::prepared_query::query_meta(&opts, got.index),
    };
    Ok(Reply::json(&body, opts.pretty)?.read_meta(got.index))
}

/// `GET /v1/internal/federation-states/mesh-gateways`: each datacenter's mesh gateways the
/// caller may read (node and service), datacenters without any left out.
pub async fn mesh_gateways(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, own_state(&ctx)).await?;
    let mut gateways = got.value.mesh_gateways;
    let removed = req.caller.filter(&mut gateways, |c, csn| {
        c.reads_node(&csn.node.node) && c.reads_service(&csn.service.service)
    });
    let mut by_datacenter = BTreeMap::new();
    if !gateways.is_empty() {
        by_datacenter.insert(got.value.datacenter, gateways);
    }
    Ok(Reply::json(&by_datacenter, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}
