//! `/v1/agent/*`: the local agent's own endpoints.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::config::CONSUL_VERSION;
use serde_json::json;

/// `GET /v1/agent/self`: Config, DebugConfig, Coord, Member, Stats and Meta as Consul renders them.
pub async fn self_info(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let c = &ctx.config;
    let node_id = &ctx.node_id;
    let body = json!({
        "Config": {
            "Datacenter": c.datacenter,
            "PrimaryDatacenter": c.primary_datacenter,
            "NodeName": c.node_name,
            "NodeID": node_id,
            "Revision": env!("CARGO_PKG_VERSION"),
            "Server": c.server,
            "Version": CONSUL_VERSION,
        },
        "DebugConfig": {
            "Datacenter": c.datacenter,
            "PrimaryDatacenter": c.primary_datacenter,
            "NodeName": c.node_name,
            "NodeID": node_id,
            "ServerMode": c.server,
            "DevMode": c.dev,
            "DataDir": ctx.store.path().parent().map(|p| p.display().to_string()),
            "ClientAddrs": [c.client_addr.to_string()],
            "BindAddr": c.bind_addr.to_string(),
            "AdvertiseAddrLAN": c.advertise_addr.to_string(),
            "HTTPPort": c.ports.http,
            "DNSPort": c.ports.dns,
            "GRPCPort": c.ports.grpc,
            "GRPCTLSPort": c.ports.grpc_tls,
            "ServerPort": c.ports.server,
            "KVMaxValueSize": c.limits.kv_max_value_size,
            "TxnMaxReqLen": c.limits.txn_max_req_len,
            "MaxQueryTime": crate::duration::format(c.max_query_time),
            "DefaultQueryTime": crate::duration::format(c.default_query_time),
            "EnableScriptChecks": c.enable_script_checks,
            "EnableLocalScriptChecks": c.enable_local_script_checks,
            "EnableUI": c.ui,
            "LogLevel": c.log_level.to_uppercase(),
            "Revision": env!("CARGO_PKG_VERSION"),
            "Version": CONSUL_VERSION,
        },
        "Coord": {
            "Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "Error": 1.5,
            "Adjustment": 0.0,
            "Height": 1.0e-5,
        },
        "Member": ctx.member(),
        "Stats": {
            "build": { "prerelease": "", "revision": env!("CARGO_PKG_VERSION"), "version": CONSUL_VERSION },
            "consul": {
                "bootstrap": c.bootstrap.to_string(),
                "known_datacenters": "1",
                "leader": "true",
                "leader_addr": c.server_address(),
                "server": c.server.to_string(),
            },
            "raft": { "state": "Leader", "num_peers": "0" },
            "runtime": {
                "arch": std::env::consts::ARCH,
                "os": std::env::consts::OS,
                "cpu_count": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string(),
            },
        },
        "Meta": ctx.node_meta(),
    });
    Reply::json(&body, opts.pretty)
}

// ----- services and checks registered through this agent -----

use super::blocking::blocking_hashed;
use crate::agent::definition::{decode_check, decode_service};
use crate::agent::local::{aggregated_status, service_health, LocalError, Source};
use crate::store::agent_state;
use crate::store::catalog;
use crate::types::catalog::{HealthCheck, NodeService, ServiceAddress, Weights};
use serde::Serialize;
use std::collections::BTreeMap;
use warp::http::StatusCode;

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::BadRequest(m) => ApiError::bad_request(m),
            LocalError::NotFound(m) => ApiError::not_found(m),
            LocalError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// A local service as `/v1/agent/services` renders it (Consul's `api.AgentService`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(rename = "ID")]
    id: String,
    service: String,
    tags: Vec<String>,
    meta: BTreeMap<String, String>,
    port: u16,
    address: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    socket_path: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tagged_addresses: BTreeMap<String, ServiceAddress>,
    weights: Weights,
    enable_tag_override: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect: Option<serde_json::Value>,
    datacenter: String,
}

impl AgentService {
    fn new(s: &NodeService, datacenter: &str) -> AgentService {
        let proxy = (s.kind == "connect-proxy" || s.kind.ends_with("-gateway")).then(|| {
            let mut p = s.proxy.0.clone();
            if let Some(obj) = p.as_object_mut() {
                obj.entry("MeshGateway")
                    .or_insert_with(|| serde_json::json!({}));
                obj.entry("Expose").or_insert_with(|| serde_json::json!({}));
            }
            p
        });
        AgentService {
            kind: s.kind.clone(),
            id: s.id.clone(),
            service: s.service.clone(),
            tags: s.tags.clone(),
            meta: s.meta.clone(),
            port: s.port,
            address: s.address.clone(),
            socket_path: s.socket_path.clone(),
            tagged_addresses: s.tagged_addresses.clone(),
            weights: s.weights,
            enable_tag_override: s.enable_tag_override,
            content_hash: None,
            proxy,
            connect: s
                .is_connect_native()
                .then(|| serde_json::json!({"Native": true})),
            datacenter: datacenter.to_string(),
        }
    }
}

fn body_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("Request decode failed: EOF"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))
}

/// A write answered with an empty 200, as Consul's agent endpoints do.
fn done() -> Reply {
    Reply::empty(StatusCode::OK)
}

pub async fn services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let filter = opts.parsed_filter()?;
    let r = ctx.store.read()?;
    let mut out = BTreeMap::new();
    for local in agent_state::services(&r)? {
        let svc = AgentService::new(&local.service, &ctx.config.datacenter);
        if let Some(f) = &filter {
            if !f
                .matches_item(&svc)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
            {
                continue;
            }
        }
        out.insert(svc.id.clone(), svc);
    }
    Reply::json(&out, opts.pretty)
}

pub async fn service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/agent/service/").to_string();
    let dc = ctx.config.datacenter.clone();
    let got = blocking_hashed(&ctx.store, &opts, |r, ws| {
        ws.key(crate::store::tables::AGENT_SERVICES.name, &id);
        let svc = agent_state::service(r, &id)?.map(|l| AgentService::new(&l.service, &dc));
        Ok((r.global_index()?, svc))
    })
    .await?;
    let Some(mut svc) = got.value else {
        return Err(ApiError::not_found(format!("unknown service ID: {id}")));
    };
    let hash = got.hash.unwrap_or_default();
    svc.content_hash = Some(hash.clone());
    Ok(Reply::json(&svc, opts.pretty)?.header("X-Consul-ContentHash", hash))
}

pub async fn register_service(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let replace = matches!(
        req.params.get("replace-existing-checks"),
        Some("" | "true" | "1")
    );
    let body = body_json(&req.body(&ctx).await?)?;
    let def = decode_service(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    ctx.local
        .register_service(def, replace, Source::Api)
        .await?;
    Ok(done())
}

pub async fn deregister_service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/service/deregister/").to_string();
    ctx.local.deregister_service(&id).await?;
    Ok(done())
}

/// `?enable=` as Consul parses it, with its errors.
fn enable_flag(req: &Request) -> Result<bool, ApiError> {
    match req.params.get("enable") {
        None | Some("") => Err(ApiError::bad_request("Missing value for enable")),
        Some(v) => match v {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            other => Err(ApiError::bad_request(format!(
                "Invalid value for enable: {other:?}"
            ))),
        },
    }
}

pub async fn service_maintenance(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/service/maintenance/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing service ID"));
    }
    let enable = enable_flag(&req)?;
    let reason = req.params.get("reason").unwrap_or("");
    ctx.local.service_maintenance(&id, enable, reason).await?;
    Ok(done())
}

pub async fn node_maintenance(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let enable = enable_flag(&req)?;
    let reason = req.params.get("reason").unwrap_or("");
    ctx.local.node_maintenance(enable, reason).await?;
    Ok(done())
}

pub async fn checks(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let filter = opts.parsed_filter()?;
    let r = ctx.store.read()?;
    let mut out: BTreeMap<String, HealthCheck> = BTreeMap::new();
    for local in agent_state::checks(&r)? {
        let Some(row) = catalog::get_check(&r, ctx.local.node(), &local.check_id)? else {
            continue;
        };
        if let Some(f) = &filter {
            if !f
                .matches_item(&row)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
            {
                continue;
            }
        }
        out.insert(row.check_id.clone(), row);
    }
    Reply::json(&out, opts.pretty)
}

pub async fn register_check(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let body = body_json(&req.body(&ctx).await?)?;
    let def = decode_check(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    ctx.local.register_check(def, Source::Api).await?;
    Ok(done())
}

pub async fn deregister_check(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/check/deregister/").to_string();
    ctx.local.deregister_check(&id).await?;
    Ok(done())
}

/// `pass|warn|fail/<id>?note=`: the note becomes the output.
pub async fn check_ttl(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let rest = req.tail("/v1/agent/check/");
    let (verb, id) = rest.split_once('/').unwrap_or((rest, ""));
    let status = match verb {
        "pass" => "passing",
        "warn" => "warning",
        _ => "critical",
    };
    let note = req.params.get("note").unwrap_or("").to_string();
    ctx.local.update_ttl(id, status, &note).await?;
    Ok(done())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckUpdate {
    #[serde(rename = "Status", alias = "status", default)]
    status: String,
    #[serde(rename = "Output", alias = "output", default)]
    output: String,
}

pub async fn check_update(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/check/update/").to_string();
    let body = body_json(&req.body(&ctx).await?)?;
    let update: CheckUpdate = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    if !["passing", "warning", "critical"].contains(&update.status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Invalid check status: '{}'",
            update.status
        )));
    }
    ctx.local
        .update_ttl(&id, &update.status, &update.output)
        .await?;
    Ok(done())
}

/// One local instance with its checks, as `/v1/agent/health/service/*` reports it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceHealth {
    aggregated_status: String,
    service: Option<AgentService>,
    checks: Option<Vec<HealthCheck>>,
}

fn health_code(status: &str) -> StatusCode {
    match status {
        "passing" => StatusCode::OK,
        "warning" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn wants_text(req: &Request) -> bool {
    req.params.get("format") == Some("text")
        || req
            .headers
            .get("Accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("text/plain"))
}

fn health_reply<T: Serialize>(
    req: &Request,
    code: StatusCode,
    reason: &str,
    body: &T,
    pretty: bool,
) -> Result<Reply, ApiError> {
    let reply = if wants_text(req) {
        Reply::bytes(reason.as_bytes().to_vec(), Some("text/plain"))
    } else {
        Reply::json(body, pretty)?
    };
    Ok(reply.with_status(code).header("X-Consul-Reason", reason))
}

fn instance_health(
    ctx: &Ctx,
    r: &crate::store::ReadTx,
    svc: &NodeService,
) -> Result<ServiceHealth, ApiError> {
    let checks = service_health(r, ctx.local.node(), &svc.id)?;
    Ok(ServiceHealth {
        aggregated_status: aggregated_status(&checks).to_string(),
        service: Some(AgentService::new(svc, &ctx.config.datacenter)),
        checks: Some(checks),
    })
}

pub async fn health_by_id(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/agent/health/service/id/").to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing serviceID"));
    }
    let r = ctx.store.read()?;
    let Some(local) = agent_state::service(&r, &id)? else {
        let reason = format!("ServiceId {id} not found");
        let body = ServiceHealth {
            aggregated_status: "critical".into(),
            service: None,
            checks: None,
        };
        return health_reply(&req, StatusCode::NOT_FOUND, &reason, &body, opts.pretty);
    };
    let health = instance_health(&ctx, &r, &local.service)?;
    let status = health.aggregated_status.clone();
    health_reply(&req, health_code(&status), &status, &health, opts.pretty)
}

pub async fn health_by_name(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = req.tail("/v1/agent/health/service/name/").to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing service Name"));
    }
    let r = ctx.store.read()?;
    let mut out = Vec::new();
    for local in agent_state::services(&r)?
        .into_iter()
        .filter(|l| l.service.service == name)
    {
        out.push(instance_health(&ctx, &r, &local.service)?);
    }
    if out.is_empty() {
        let reason = format!("ServiceName {name} Not Found");
        return health_reply(&req, StatusCode::NOT_FOUND, &reason, &out, opts.pretty);
    }
    let rank = |s: &str| match s {
        "passing" => 0,
        "warning" => 1,
        _ => 2,
    };
    let worst = out
        .iter()
        .map(|h| h.aggregated_status.as_str())
        .max_by_key(|s| rank(s))
        .unwrap_or("passing")
        .to_string();
    health_reply(&req, health_code(&worst), &worst, &out, opts.pretty)
}
