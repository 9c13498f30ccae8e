//! `/v1/agent/*`: the local agent's own endpoints.
//!
//! ACLs (Consul's `agent_endpoint.go`): fixed agent/node/operator rights are in the route
//! table; here, services need `service:read`/`service:write` on their name (a proxy also
//! write on its destination), checks the right of their service, else `node:write` on this
//! node, and the service, check and member lists keep what the token may read.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::config::CONSUL_VERSION;
use serde_json::json;

/// `GET /v1/agent/self`: Config, DebugConfig, Coord, Member, Stats and Meta as Consul renders them.
/// Consul adds `xDS` (Envoy versions and gRPC ports) only when it runs a gRPC server; Legate
/// runs none whatever `ports.grpc`/`grpc_tls` say, so it answers as a Consul with both off.
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

use super::acl::Caller;
use super::blocking::blocking_hashed;
use crate::acl::{AccessLevel, Resource};
use crate::agent::definition::{decode_check, decode_service};
use crate::agent::local::{aggregated_status, service_health, LocalError, Source};
use crate::store::agent_state;
use crate::store::catalog;
use crate::store::ReadTx;
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

/// Write on a local service (by ID), when it exists: `service:write` on its name.
fn require_service_write(ctx: &Ctx, req: &Request, id: &str) -> Result<(), ApiError> {
    match agent_state::service(&ctx.store.read()?, id)? {
        Some(local) => req.caller.require(
            Resource::Service,
            AccessLevel::Write,
            &local.service.service,
        ),
        None => Ok(()),
    }
}

/// Write on what a check (by ID) belongs to, when it exists: its service, else this node.
fn require_check_write(ctx: &Ctx, req: &Request, id: &str) -> Result<(), ApiError> {
    match catalog::get_check(&ctx.store.read()?, ctx.local.node(), id)? {
        Some(check) => require_check_target_write(ctx, req, &check.service_name),
        None => Ok(()),
    }
}

/// `service:write` on a check's service, `node:write` on this node for a node check.
fn require_check_target_write(ctx: &Ctx, req: &Request, service: &str) -> Result<(), ApiError> {
    if service.is_empty() {
        req.caller
            .require(Resource::Node, AccessLevel::Write, ctx.local.node())
    } else {
        req.caller
            .require(Resource::Service, AccessLevel::Write, service)
    }
}

/// Consul's `vetServiceRegister`: `service:write` on the service's name, on the name of the
/// local service with its ID (which it would replace), and on a proxy's destination; and
/// `mesh:write` for a proxy that sets an Envoy escape hatch.
fn vet_service_register(
    r: &ReadTx,
    caller: &Caller,
    id: &str,
    name: &str,
    destination: Option<&str>,
    proxy: Option<&serde_json::Value>,
) -> Result<(), ApiError> {
    caller.require(Resource::Service, AccessLevel::Write, name)?;
    if proxy.is_some_and(crate::types::catalog::sets_envoy_escape_hatch) {
        caller.require(Resource::Mesh, AccessLevel::Write, "")?;
    }
    if let Some(replaced) = agent_state::service(r, id)? {
        caller.require(
            Resource::Service,
            AccessLevel::Write,
            &replaced.service.service,
        )?;
    }
    match destination {
        Some(destination) => caller.require(Resource::Service, AccessLevel::Write, destination),
        None => Ok(()),
    }
}

/// A proxy definition's `DestinationServiceName`, when set.
fn proxy_destination(proxy: Option<&serde_json::Value>) -> Option<&str> {
    proxy
        .and_then(|p| p.get("DestinationServiceName"))
        .and_then(serde_json::Value::as_str)
        .filter(|d| !d.is_empty())
}

pub async fn services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let filter = opts.parsed_filter()?;
    let r = ctx.store.read()?;
    let mut services: Vec<AgentService> = agent_state::services(&r)?
        .iter()
        .map(|local| AgentService::new(&local.service, &ctx.config.datacenter))
        .collect();
    drop(r);
    if let Some(f) = &filter {
        services = f.apply(services)?;
    }
    // As Consul, ACLs filter after the expression: the filtered-by-ACLs header only counts
    // what the expression would have kept.
    let removed = req
        .caller
        .filter(&mut services, |c, s| c.reads_service(&s.service));
    let out: BTreeMap<_, _> = services.into_iter().map(|s| (s.id.clone(), s)).collect();
    Ok(Reply::json(&out, opts.pretty)?.filtered_by_acls(&req.caller, removed))
}

pub async fn service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let id = req.tail("/v1/agent/service/").to_string();
    let dc = ctx.config.datacenter.clone();
    let got = blocking_hashed(&ctx.store, &opts, |r, ws| {
        let (index, local) = agent_state::watched_service(r, ws, &id)?;
        Ok((index, local.map(|l| AgentService::new(&l.service, &dc))))
    })
    .await?;
    let Some(mut svc) = got.value else {
        return Err(ApiError::not_found(format!("unknown service ID: {id}")));
    };
    req.caller
        .require(Resource::Service, AccessLevel::Read, &svc.service)?;
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
    let r = ctx.store.read()?;
    let id = if def.id.is_empty() {
        &def.name
    } else {
        &def.id
    };
    let destination = (def.kind == "connect-proxy")
        .then(|| proxy_destination(def.proxy.as_ref()))
        .flatten();
    vet_service_register(
        &r,
        &req.caller,
        id,
        &def.name,
        destination,
        def.proxy.as_ref(),
    )?;
    // A sidecar is a service of its own (`<id>-sidecar-proxy`, by default named
    // `<name>-sidecar-proxy`, a proxy of its parent), vetted as Consul does with its own
    // `Token` when it has one.
    let sidecar = def
        .connect
        .as_ref()
        .and_then(|c| c.get("SidecarService"))
        .filter(|s| !s.is_null());
    if let Some(sidecar) = sidecar {
        let text = |key: &str| {
            sidecar
                .get(key)
                .and_then(serde_json::Value::as_str)
                .filter(|v| !v.is_empty())
        };
        let name =
            text("Name").map_or_else(|| format!("{}-sidecar-proxy", def.name), str::to_string);
        let destination = proxy_destination(sidecar.get("Proxy")).unwrap_or(&def.name);
        let caller = match text("Token") {
            Some(secret) => Caller {
                identity: ctx
                    .acl
                    .resolve(secret, ctx.ops.tokens.get("agent_recovery").as_deref())?,
                named: true,
            },
            None => req.caller.clone(),
        };
        vet_service_register(
            &r,
            &caller,
            &format!("{id}-sidecar-proxy"),
            &name,
            Some(destination),
            sidecar.get("Proxy"),
        )?;
    }
    drop(r);
    ctx.local
        .register_service(def, replace, Source::Api)
        .await?;
    Ok(done())
}

pub async fn deregister_service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/service/deregister/").to_string();
    require_service_write(&ctx, &req, &id)?;
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
    require_service_write(&ctx, &req, &id)?;
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
    let mut rows = Vec::new();
    for local in agent_state::checks(&r)? {
        if let Some(row) = catalog::get_check(&r, ctx.local.node(), &local.check_id)? {
            rows.push(row);
        }
    }
    drop(r);
    if let Some(f) = &filter {
        rows = f.apply(rows)?;
    }
    // After the expression, as Consul (see `services`), and as its
    // `filterChecksWithAuthorizer`: a service check needs read on its service only, a node
    // check read on this node.
    let node = ctx.local.node();
    let removed = req.caller.filter(&mut rows, |c, row| {
        if row.service_name.is_empty() {
            c.reads_node(node)
        } else {
            c.reads_service(&row.service_name)
        }
    });
    let out: BTreeMap<String, HealthCheck> =
        rows.into_iter().map(|c| (c.check_id.clone(), c)).collect();
    Ok(Reply::json(&out, opts.pretty)?.filtered_by_acls(&req.caller, removed))
}

pub async fn register_check(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let body = body_json(&req.body(&ctx).await?)?;
    let def = decode_check(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    // Consul's `vetCheckRegister`: write on what the check is for, and on what the check it
    // would replace (same ID) was for. An unknown service is refused by the registration,
    // with Consul's text.
    if def.service_id.is_empty() {
        require_check_target_write(&ctx, &req, "")?;
    } else if let Some(local) = agent_state::service(&ctx.store.read()?, &def.service_id)? {
        require_check_target_write(&ctx, &req, &local.service.service)?;
    }
    require_check_write(
        &ctx,
        &req,
        if def.id.is_empty() {
            &def.name
        } else {
            &def.id
        },
    )?;
    ctx.local.register_check(def, Source::Api).await?;
    Ok(done())
}

pub async fn deregister_check(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let id = req.tail("/v1/agent/check/deregister/").to_string();
    require_check_write(&ctx, &req, &id)?;
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
    require_check_write(&ctx, &req, id)?;
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
    require_check_write(&ctx, &req, &id)?;
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
    let found = agent_state::service(&r, &id)?;
    if let Some(local) = &found {
        req.caller
            .require(Resource::Service, AccessLevel::Read, &local.service.service)?;
    }
    let Some(local) = found else {
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
    req.caller
        .require(Resource::Service, AccessLevel::Read, &name)?;
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

// ----- membership and agent operations: members, join, leave, reload, metrics, monitor -----

use crate::agent::logging;
use crate::agent::ops::Tokens;
use crate::filter::go_quote;
use crate::metrics::{Gauge, Kind, Naming};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How long a join waits for the other side (memberlist's LAN TCP timeout).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET /v1/agent/members?wan=&segment=`: this node is the whole LAN pool; as a server it is
/// also the WAN pool, as `<node>.<dc>`.
pub async fn members(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let wan = req.params.get("wan").is_some_and(|v| !v.is_empty());
    let segment = req.params.get("segment").unwrap_or("");
    if wan {
        if !segment.is_empty() && segment != "_all" {
            return Err(ApiError::bad_request(
                "Cannot provide a segment with wan=true",
            ));
        }
        if !ctx.config.server {
            return Reply::json(&serde_json::Value::Null, opts.pretty);
        }
        let mut member = ctx.member();
        let c = &ctx.config;
        member["Name"] = json!(format!("{}.{}", c.node_name, c.datacenter));
        member["Port"] = json!(c.ports.serf_wan);
        if let Some(tags) = member["Tags"].as_object_mut() {
            tags.remove("wan_join_port");
        }
        return members_reply(&req, vec![member], opts.pretty);
    }
    if !segment.is_empty() && segment != "_all" {
        return Err(ApiError::internal(
            "Network segments are not supported in this version of Consul",
        ));
    }
    members_reply(&req, vec![ctx.member()], opts.pretty)
}

/// The members whose node the caller may read (Consul's `filterMembers`).
fn members_reply(
    req: &Request,
    mut members: Vec<serde_json::Value>,
    pretty: bool,
) -> Result<Reply, ApiError> {
    let removed = req.caller.filter(&mut members, |c, m| {
        c.reads_node(m["Name"].as_str().unwrap_or_default())
    });
    Ok(Reply::json(&members, pretty)?.filtered_by_acls(&req.caller, removed))
}

/// Go's text for a failed dial (`dial tcp <addr>: connect: connection refused`).
fn dial_error(addr: SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let what = match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        ErrorKind::TimedOut => "i/o timeout".to_string(),
        ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_string(),
        ErrorKind::HostUnreachable => "connect: no route to host".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: {what}")
}

/// Whether `addr` is this agent's own gossip address.
fn is_self(ctx: &Ctx, addr: SocketAddr, port: u16) -> bool {
    let c = &ctx.config;
    addr.port() == port
        && (addr.ip() == c.advertise_addr
            || addr.ip() == c.bind_addr
            || (c.bind_addr.is_unspecified() && addr.ip().is_loopback()))
}

/// memberlist's join of one address: joining this agent itself succeeds; anything else fails,
/// as there is no other member to gossip with.
async fn join_address(ctx: &Ctx, addr: &str, port: u16) -> Result<(), String> {
    let targets: Vec<SocketAddr> = if let Ok(sa) = addr.parse::<SocketAddr>() {
        vec![sa]
    } else if let Ok(ip) = addr
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        vec![SocketAddr::new(ip, port)]
    } else {
        let (host, port) = match addr.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(port)),
            _ => (addr.to_string(), port),
        };
        let found = tokio::net::lookup_host(format!("{host}:{port}")).await;
        match found {
            Ok(found) => found.collect(),
            Err(e) => return Err(format!("Failed to resolve {addr}: lookup {host}: {e}")),
        }
    };
    let mut errors = Vec::new();
    for target in targets {
        if is_self(ctx, target, port) {
            return Ok(());
        }
        let error = match tokio::time::timeout(JOIN_TIMEOUT, tokio::net::TcpStream::connect(target))
            .await
        {
            Err(_) => format!("dial tcp {target}: i/o timeout"),
            Ok(Err(e)) => dial_error(target, &e),
            Ok(Ok(_)) => "this agent is a single node and cannot join a cluster".to_string(),
        };
        errors.push(format!("Failed to join {target}: {error}"));
    }
    Err(errors.join("\n\t* "))
}

/// `PUT /v1/agent/join/<address>?wan=`.
pub async fn join(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let wan = req.params.get("wan").is_some_and(|v| !v.is_empty());
    let addr = req.tail("/v1/agent/join/").to_string();
    drop(req);
    let pool = if wan { "WAN" } else { "LAN" };
    if wan && !ctx.config.server {
        return Err(ApiError::internal("Must be a server to join WAN cluster"));
    }
    let port = if wan {
        ctx.config.ports.serf_wan
    } else {
        ctx.config.ports.serf_lan
    }
    .max(0) as u16;
    tracing::info!(addresses = %addr, "({pool}) joining");
    match join_address(&ctx, &addr, port).await {
        Ok(()) => {
            tracing::info!(number_of_nodes = 1, "({pool}) joined");
            Ok(done())
        }
        Err(e) => {
            let count = e.matches("\n\t* ").count() + 1;
            let noun = if count == 1 { "error" } else { "errors" };
            let text = format!("{count} {noun} occurred:\n\t* {e}\n\n");
            tracing::warn!(error = %text.trim(), "({pool}) couldn't join");
            Err(ApiError::internal(text))
        }
    }
}

/// `PUT /v1/agent/leave`: leaves (there is no one to tell) and shuts the agent down cleanly,
/// after answering.
pub async fn leave(ctx: Ctx, _req: Request) -> Result<Reply, ApiError> {
    tracing::info!("graceful leave requested");
    let stop = ctx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.shutdown.notify_waiters();
    });
    Ok(done())
}

/// `PUT /v1/agent/force-leave/<node>?prune&wan`: the only member is this node, which is alive,
/// so forcing it out has no effect (Serf refutes it); any other name is unknown.
pub async fn force_leave(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let node = req.tail("/v1/agent/force-leave/").to_string();
    let c = &ctx.config;
    let wan_name = format!("{}.{}", c.node_name, c.datacenter);
    tracing::info!(node = %node, "Force leaving node");
    let found = if req.params.has("wan") {
        if !c.server {
            return Err(ApiError::internal(
                "Must be a server to force-leave a node from the WAN cluster",
            ));
        }
        if node != wan_name {
            // The WAN-only removal names no LAN node.
            return Err(ApiError::internal("agent: No node found with name ''"));
        }
        true
    } else {
        let as_wan = if node.ends_with(&format!(".{}", c.datacenter)) {
            node.clone()
        } else {
            format!("{node}.{}", c.datacenter)
        };
        node == c.node_name || (c.server && as_wan == wan_name)
    };
    if !found {
        return Err(ApiError::internal(format!(
            "agent: No node found with name '{node}'"
        )));
    }
    Ok(done())
}

/// `PUT /v1/agent/reload`: reads the configuration files again.
pub async fn reload(ctx: Ctx, _req: Request) -> Result<Reply, ApiError> {
    tracing::info!("Reloading configuration...");
    crate::agent::ops::reload(&ctx)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(done())
}

/// The gauges read now, by their reported names, those the `telemetry` filter lets through.
fn gauges(ctx: &Ctx, naming: &Naming) -> Result<Vec<Gauge>, ApiError> {
    use crate::store::session;
    let r = ctx.store.read()?;
    let agent_state::StateCounts {
        nodes,
        service_instances: instances,
        checks,
        kv_entries,
        sessions,
        local_services,
        local_checks,
    } = agent_state::counts(&r)?;
    let services = catalog::service_name_count(&r)?;
    let ttl_sessions = session::with_ttl(&r)?.len();
    drop(r);
    // The help texts of the gauges Consul defines (its usage metrics, session TTL timers and
    // RPC gauges); the others have none.
    let mut out = vec![
        (
            "state.nodes",
            nodes as f64,
            Some("Measures the current number of nodes registered with Consul. It is only emitted by Consul servers. Added in v1.9.0."),
        ),
        (
            "state.services",
            services as f64,
            Some("Measures the current number of unique services registered with Consul, based on service name. It is only emitted by Consul servers. Added in v1.9.0."),
        ),
        (
            "state.service_instances",
            instances as f64,
            // Consul's text, the same as `state.services`'.
            Some("Measures the current number of unique services registered with Consul, based on service name. It is only emitted by Consul servers. Added in v1.9.0."),
        ),
        ("state.checks", checks as f64, None),
        (
            "state.kv_entries",
            kv_entries as f64,
            Some("Measures the current number of entries in the Consul KV store. It is only emitted by Consul servers. Added in v1.10.3."),
        ),
        ("state.sessions", sessions as f64, None),
        (
            "session_ttl.active",
            ttl_sessions as f64,
            Some("Tracks the active number of sessions being tracked."),
        ),
        ("agent.local.services", local_services as f64, None),
        ("agent.local.checks", local_checks as f64, None),
        (
            "rpc.queries_blocking",
            ctx.store.watches().waiting() as f64,
            Some("Shows the current number of in-flight blocking queries the server is handling."),
        ),
    ];
    // Go's runtime figures, by their nearest equivalents in this process.
    let memory = crate::agent::host::proc_sizes("/proc/self/status").unwrap_or_default();
    if let Some(&rss) = memory.get("VmRSS") {
        out.push(("runtime.sys_bytes", rss as f64, None));
    }
    if let Some(&heap) = memory.get("RssAnon") {
        out.push(("runtime.alloc_bytes", heap as f64, None));
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        out.push((
            "runtime.num_goroutines",
            runtime.metrics().num_alive_tasks() as f64,
            None,
        ));
    }
    Ok(out
        .into_iter()
        .filter_map(|(name, value, help)| {
            let name = naming.gauge(name)?;
            Some(Gauge { name, value, help })
        })
        .collect())
}

/// Whether the client asked for the Prometheus format (`?format=prometheus`, or an
/// OpenMetrics / text 0.0.4 `Accept`).
fn wants_prometheus(req: &Request) -> bool {
    if req.params.get("format") == Some("prometheus") {
        return true;
    }
    let accept = req
        .headers
        .get("Accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.split(',').any(|mime| {
        let mut parts = mime.split(';');
        let raw = parts.next().unwrap_or("").trim().to_lowercase();
        raw == "application/openmetrics-text"
            || (raw == "text/plain" && parts.next().map(str::trim) == Some("version=0.0.4"))
    })
}

/// `GET /v1/agent/metrics[?format=prometheus]`.
pub async fn metrics(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    if wants_prometheus(&req) {
        if ctx.config.telemetry.prometheus_retention.is_zero() {
            // Consul's handler returns this as a `CodeWithPayloadError` with no body, and its
            // wrapper then only adds the reason header: Go answers 200 with an empty body.
            return Ok(Reply::empty(StatusCode::OK).header(
                "X-Consul-Reason",
                "Prometheus is not enabled since its retention time is not positive",
            ));
        }
        return Ok(Reply::bytes(
            prometheus(&ctx)?.into_bytes(),
            Some("text/plain; version=0.0.4; charset=utf-8"),
        ));
    }
    Reply::json(&summary(&ctx)?, opts.pretty)
}

/// Every metric in the Prometheus text format: gauges as they are now, counters and timings
/// since the agent started (those recorded within the retention time).
fn prometheus(ctx: &Ctx) -> Result<String, ApiError> {
    let naming = ctx.metrics_naming.read().unwrap_or_else(|e| e.into_inner());
    let totals = ctx.store.metrics().totals(
        std::time::SystemTime::now(),
        ctx.config.telemetry.prometheus_retention,
        &naming,
    );
    Ok(crate::metrics::write_prometheus(
        &gauges(ctx, &naming)?,
        &totals,
    ))
}

/// The reported interval's metrics as go-metrics' `InmemSink` summarizes them
/// (`MetricsSummary`): gauges as they are now, counters and timings of the interval.
fn summary(ctx: &Ctx) -> Result<serde_json::Value, ApiError> {
    let naming = ctx.metrics_naming.read().unwrap_or_else(|e| e.into_inner());
    let gauges = gauges(ctx, &naming)?;
    let (start, recorded) = ctx
        .store
        .metrics()
        .interval(std::time::SystemTime::now(), &naming);
    let mut counters = Vec::new();
    let mut samples = Vec::new();
    for s in &recorded {
        match s.kind {
            Kind::Counter => counters.push(s.to_json()),
            Kind::Sample => samples.push(s.to_json()),
        }
    }
    let mut gauges: Vec<serde_json::Value> = gauges
        .iter()
        .map(|g| json!({"Name": g.name, "Value": crate::metrics::json_number(g.value), "Labels": {}}))
        .collect();
    gauges.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    Ok(json!({
        "Timestamp": logging::go_time_string(start),
        "Gauges": gauges,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    }))
}

/// The receiving half of a monitor's channel, as a body stream.
struct LogStream(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl futures_util::Stream for LogStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// `GET /v1/agent/monitor?loglevel=&logjson`: streams the agent's log lines at `loglevel`
/// (default INFO) until the client goes away or the agent stops.
pub async fn monitor(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let text = req
        .params
        .get("loglevel")
        .filter(|l| !l.is_empty())
        .unwrap_or("INFO");
    let Some(level) = logging::parse_level(text) else {
        return Err(ApiError::bad_request(format!("Unknown log level: {text}")));
    };
    let json = req.params.has("logjson");
    let mut monitor = logging::subscribe(level);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let stop = ctx.clone();
    tokio::spawn(async move {
        let shutdown = stop.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        loop {
            tokio::select! {
                record = monitor.recv() => {
                    let Some(record) = record else { break };
                    let line = if json { record.json() } else { record.text() };
                    if tx.send(Ok(bytes::Bytes::from(line))).await.is_err() {
                        break;
                    }
                }
                _ = &mut shutdown => break,
                _ = tx.closed() => break,
            }
        }
        if monitor.dropped > 0 {
            tracing::warn!(
                dropped_count = monitor.dropped,
                "Dropped logs during monitor request"
            );
        }
    });
    Ok(Reply::stream(
        Some("text/plain; charset=utf-8"),
        LogStream(rx),
    ))
}

static AGENT_TOKEN: crate::gojson::Schema = crate::gojson::Schema {
    name: "AgentToken",
    go_type: "api.AgentToken",
    fields: &[crate::gojson::field("Token", crate::gojson::STRING)],
    base: None,
    strict: true,
};

/// `PUT /v1/agent/token/<target>` with `{"Token": "..."}`: sets one of the agent's tokens.
/// Needs `agent:write` on this node, as Consul's `AgentToken`.
pub async fn token(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    super::acl::acls_enabled(&ctx)?;
    req.caller
        .require(Resource::Agent, AccessLevel::Write, &ctx.config.node_name)?;
    let body = req.body(&ctx).await?;
    let map = crate::gojson::decode(&body, &AGENT_TOKEN)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    let target = req.tail("/v1/agent/token/").to_string();
    let Some(name) = Tokens::canonical(&target) else {
        return Err(ApiError::not_found(format!(
            "Token {} is unknown",
            go_quote(&target)
        )));
    };
    let value = map
        .get("Token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    ctx.ops
        .tokens
        .set(name, value)
        .map_err(|e| ApiError::internal(format!("Failed to persist ACL token: {e}")))?;
    tracing::info!(token = %target, "Updated agent's ACL token");
    Ok(done())
}

/// `GET /v1/agent/version`: the Consul version this agent answers as (no ACL, as Consul).
pub async fn version(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = json!({
        "SHA": "",
        "BuildDate": "",
        "HumanVersion": CONSUL_VERSION,
        "FIPS": "",
    });
    Reply::json(&body, opts.pretty)
}

/// `GET /v1/agent/host`: the host's facts (Consul's `debug.HostInfo`), read from `/proc` and
/// the data dir's file system; what can't be read is listed in `Errors`.
pub async fn host(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let data_dir = ctx.store.path().parent().map(|p| p.to_path_buf());
    let info =
        tokio::task::spawn_blocking(move || crate::agent::host::collect(data_dir.as_deref()))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    Reply::json(&info, opts.pretty)
}

/// `GET /v1/agent/metrics/stream`: a JSON summary (as `/v1/agent/metrics` answers) at the end
/// of every interval, until the client goes away or the agent stops.
/// Consul's handler reads no query options.
pub async fn metrics_stream(ctx: Ctx, _req: Request) -> Result<Reply, ApiError> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let shutdown = ctx.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        // As go-metrics' `Stream`: each summary as its interval ends. A few milliseconds late,
        // so that the clock read for the summary is past the interval's end.
        let first_end = crate::metrics::until_interval_end(std::time::SystemTime::now())
            + std::time::Duration::from_millis(5);
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + first_end,
            crate::metrics::INTERVAL,
        );
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    // Consul's encoder indents each summary by 4 spaces and ends it with a
                    // newline: the `?pretty` JSON.
                    let line = match summary(&ctx).and_then(|s| Reply::json(&s, true)) {
                        Ok(reply) => reply.body,
                        Err(e) => {
                            tracing::warn!(error = %e.message, "metrics stream: metrics unreadable");
                            continue;
                        }
                    };
                    if tx.send(Ok(bytes::Bytes::from(line))).await.is_err() {
                        break;
                    }
                }
                _ = &mut shutdown => break,
                _ = tx.closed() => break,
            }
        }
    });
    Ok(Reply::stream(
        Some("text/plain; charset=utf-8"),
        LogStream(rx),
    ))
}
