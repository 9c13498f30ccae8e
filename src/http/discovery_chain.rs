//! `GET`/`POST /v1/discovery-chain/<service>` (Consul's `discovery_chain_endpoint.go`): the
//! service's compiled chain, in `?compile-dc` (default: this agent's datacenter), with the
//! `POST` body's overrides; blocking on the config entries the compilation read. Needs
//! `service:read` on the service.

use super::blocking::blocking;
use super::catalog::path_arg;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::agent::discovery_chain::{self, ChainError, Compilation, Overrides};
use crate::store::{config_entry, connect_ca, virtual_ip};
use serde_json::Value;
use warp::http::Method;

/// The `POST` body's overrides, decoded as Consul's `discoveryChainReadRequest` (names matched
/// case-insensitively, or in snake_case; the timeout as Go duration text or nanoseconds);
/// a mesh gateway mode other than `none`, `local` or `remote` is refused with Consul's text.
fn overrides(body: &[u8]) -> Result<Overrides, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Overrides::default());
    }
    let bad = |m: String| ApiError::bad_request(format!("Request decoding failed: {m}"));
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(bad("body is not a JSON object".into()));
    };
    let mut out = Overrides::default();
    for (key, v) in &map {
        match key.replace('_', "").to_lowercase().as_str() {
            "overrideprotocol" => out.protocol = v.as_str().unwrap_or_default().to_string(),
            "overrideconnecttimeout" => {
                out.connect_timeout = match v {
                    Value::String(s) => {
                        Some(crate::duration::parse(s).map_err(bad)?).filter(|d| !d.is_zero())
                    }
                    Value::Number(n) => n
                        .as_u64()
                        .map(std::time::Duration::from_nanos)
                        .filter(|d| !d.is_zero()),
                    _ => None,
                }
            }
            "overridemeshgateway" => {
                out.mesh_gateway_mode = v
                    .as_object()
                    .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case("mode")))
                    .and_then(|(_, m)| m.as_str())
                    .unwrap_or_default()
                    .to_string()
            }
            _ => {}
        }
    }
    if !matches!(
        out.mesh_gateway_mode.as_str(),
        "" | "none" | "local" | "remote"
    ) {
        return Err(ApiError::bad_request(
            "Invalid OverrideMeshGateway.Mode parameter",
        ));
    }
    Ok(out)
}

pub async fn handle(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let service = path_arg(&req, "/v1/discovery-chain/", "Missing chain name")?;
    req.caller
        .require(Resource::Service, AccessLevel::Read, &service)?;
    let overrides = if req.method == Method::POST {
        overrides(&req.body(&ctx).await?)?
    } else {
        Overrides::default()
    };
    let datacenter = match req.params.get("compile-dc") {
        Some(dc) if !dc.is_empty() => dc.to_string(),
        _ => ctx.config.datacenter.clone(),
    };
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let trust_domain = connect_ca::config(r, ws)?
            .map(|c| crate::connect::trust_domain(&c.cluster_id))
            .unwrap_or_default();
        let at = Compilation {
            service: &service,
            datacenter: &datacenter,
            trust_domain: &trust_domain,
            overrides: &overrides,
        };
        let chain = match discovery_chain::compile(r, ws, &at) {
            Ok(chain) => Ok(chain),
            Err(ChainError::Refused(message)) => Err(message),
            Err(ChainError::Store(e)) => return Err(e),
        };
        let (vip_index, vips) = virtual_ip::get(r, ws, &service)?;
        let chain = chain.map(|mut chain| {
            // Consul's `ReadDiscoveryChain` adds the service's virtual IPs (null when none).
            let auto = vips.as_ref().map(|v| vec![v.address().to_string()]);
            let manual = vips.map(|v| v.manual_ips).filter(|ips| !ips.is_empty());
            chain["AutoVirtualIPs"] = serde_json::json!(auto);
            chain["ManualVirtualIPs"] = serde_json::json!(manual);
            chain
        });
        Ok((config_entry::index(r)?.max(vip_index), chain))
    })
    .await?;
    // A refused chain is an RPC error in Consul (500), and blocks like any other answer.
    let chain = got.value.map_err(ApiError::internal)?;
    Ok(Reply::json(&serde_json::json!({ "Chain": chain }), opts.pretty)?.read_meta(got.index))
}
