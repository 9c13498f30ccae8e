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
