//! `/v1/health/*` (Consul's `health_endpoint.go`): checks by node, by service and by state,
//! and service instances with their checks (a service's own, its Connect-capable ones, or its
//! ingress gateways'), all blocking. Narrowing as in `catalog`.
//!
//! ACLs: results are filtered to the checks and instances whose node and service the token
//! may read (ACL filtering comes before `?filter`, so expressions see only readable data);
//! Connect and ingress reads first need `service:read` on the service.

use super::blocking::blocking;
use super::catalog::{path_arg, Narrow};
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::store::catalog::{self as store, Lookup};
use crate::store::gateway;
use crate::store::{ReadTx, WatchSet};
use crate::types::catalog::{CheckServiceNode, HealthCheck, Node, CRITICAL, PASSING, WARNING};
use std::collections::BTreeMap;

/// `GET /v1/health/node/<node>`: every check on the node, node-level and service checks.
pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, "/v1/health/node/", "Missing node name")?;
    let got = blocking(&ctx.store, &opts, |r, ws| store::node_checks(r, ws, &name)).await?;
    checks_reply(&req, &opts, &narrow, got.value, got.index)
}

/// The checks the caller may read, narrowed by `?filter`.
fn checks_reply(
    req: &Request,
    opts: &super::query::QueryOptions,
    narrow: &Narrow,
    checks: Vec<HealthCheck>,
    index: u64,
) -> Result<Reply, ApiError> {
    let mut checks = narrow.filter(checks)?;
    let removed = req
        .caller
        .filter(&mut checks, |c, check| c.reads_check(check));
    Ok(Reply::json(&checks, opts.pretty)?
        .read_meta(index)
        .filtered_by_acls(&req.caller, removed))
}

/// Keeps the checks whose node has the `?node-meta` pairs, reading the nodes in the same
/// snapshot (and watching them, since a node's meta decides what the read returns).
fn on_matching_nodes(
    r: &ReadTx,
    ws: &mut WatchSet,
    narrow: &Narrow,
    checks: Vec<HealthCheck>,
) -> crate::store::Result<Vec<HealthCheck>> {
    if !narrow.has_node_meta() {
        return Ok(checks);
    }
    let nodes: BTreeMap<String, Node> = store::nodes(r, ws)?
        .1
        .into_iter()
        .map(|n| (n.node.to_lowercase(), n))
        .collect();
    Ok(checks
        .into_iter()
        .filter(|c| {
            nodes
                .get(&c.node.to_lowercase())
                .is_some_and(|n| narrow.meta_ok(&n.meta))
        })
        .collect())
}

/// `GET /v1/health/checks/<service>`: the checks of every instance of a service.
pub async fn checks(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, "/v1/health/checks/", "Missing service name")?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, checks) = store::service_checks(r, ws, &name)?;
        Ok((index, on_matching_nodes(r, ws, &narrow, checks)?))
    })
    .await?;
    checks_reply(&req, &opts, &narrow, got.value, got.index)
}

/// `GET /v1/health/state/<state>`: the checks in a state (`any` for all). An unknown state is
/// refused (Consul's server returns `[]` for one; its Go client refuses it with this text).
pub async fn state(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let state = path_arg(&req, "/v1/health/state/", "Missing check state")?;
    if !["any", PASSING, WARNING, CRITICAL].contains(&state.as_str()) {
        return Err(ApiError::bad_request(format!("Unsupported state: {state}")));
    }
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, checks) = store::checks_in_state(r, ws, &state)?;
        Ok((index, on_matching_nodes(r, ws, &narrow, checks)?))
    })
    .await?;
    checks_reply(&req, &opts, &narrow, got.value, got.index)
}

/// Whose instances a service's health read returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Instances {
    /// The service's own, or its Connect-capable ones.
    Of(Lookup),
    /// Those of the ingress gateways that front it.
    Ingress,
}

/// `GET /v1/health/service/<service>`.
pub async fn service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    service_nodes(
        ctx,
        req,
        "/v1/health/service/",
        Instances::Of(Lookup::Service),
    )
    .await
}

/// `GET /v1/health/connect/<service>`: the Connect-capable instances (tags are ignored, as in
/// Consul).
pub async fn connect(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    service_nodes(
        ctx,
        req,
        "/v1/health/connect/",
        Instances::Of(Lookup::Connect),
    )
    .await
}

/// `GET /v1/health/ingress/<service>`: the instances of every ingress gateway that fronts the
/// service. `?tag` narrows the gateways' instances (Consul's server would answer a tagged
/// query with the service's own instances instead, a quirk not reproduced).
pub async fn ingress(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    service_nodes(ctx, req, "/v1/health/ingress/", Instances::Ingress).await
}

/// `?passing`: present without a value means true, otherwise Go's `ParseBool`.
fn passing_flag(req: &Request) -> Result<bool, ApiError> {
    match req.params.get("passing") {
        None => Ok(false),
        Some("" | "1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(_) => Err(ApiError::bad_request("Invalid value for ?passing")),
    }
}

/// Drops every instance with a check that isn't passing, in Consul's way (`Filter`): a dropped
/// instance's place is taken by the last one, so the order of what remains is Consul's too.
fn only_passing(mut nodes: Vec<CheckServiceNode>) -> Vec<CheckServiceNode> {
    let mut n = nodes.len();
    let mut i = 0;
    while i < n {
        if nodes[i].checks.iter().any(|c| c.status != PASSING) {
            nodes.swap(i, n - 1);
            n -= 1;
        } else {
            i += 1;
        }
    }
    nodes.truncate(n);
    nodes
}

async fn service_nodes(
    ctx: Ctx,
    req: Request,
    prefix: &str,
    instances: Instances,
) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, prefix, "Missing service name")?;
    let passing = passing_flag(&req)?;
    // A Connect or ingress lookup without read on the service it finds proxies for answers
    // nothing (with the index), as Consul's `Health.ServiceNodes`: not a refusal.
    let hidden = instances != Instances::Of(Lookup::Service) && !req.caller.reads_service(&name);
    let got = blocking(&ctx.store, &opts, |r, ws| match instances {
        Instances::Of(lookup) => store::check_service_nodes(r, ws, &name, lookup),
        Instances::Ingress => gateway::ingress_nodes(r, ws, &name),
    })
    .await?;
    let tagged = instances != Instances::Of(Lookup::Connect);
    let nodes: Vec<CheckServiceNode> = got
        .value
        .into_iter()
        .filter(|_| !hidden)
        .filter(|e| (!tagged || narrow.tags_ok(&e.service.tags)) && narrow.meta_ok(&e.node.meta))
        .collect();
    // As Consul: the expression, then ACLs (so the filtered-by-ACLs header counts only what
    // the expression kept), then `?passing`, which its HTTP handler applies to the RPC's answer.
    let mut nodes = narrow.filter(nodes)?;
    let removed = req.caller.filter(&mut nodes, |c, e| {
        c.reads_node(&e.node.node) && c.reads_service(&e.service.service)
    });
    let nodes = if passing { only_passing(nodes) } else { nodes };
    Ok(Reply::json(&nodes, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::catalog::NodeService;

    fn entry(id: &str, statuses: &[&str]) -> CheckServiceNode {
        CheckServiceNode {
            node: Node::default(),
            service: NodeService {
                id: id.into(),
                ..Default::default()
            },
            checks: statuses
                .iter()
                .map(|s| HealthCheck {
                    status: s.to_string(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn passing_keeps_instances_whose_checks_all_pass_in_consuls_order() {
        let got = only_passing(vec![
            entry("a", &[WARNING]),
            entry("b", &[PASSING]),
            entry("c", &[]),
            entry("d", &[PASSING, CRITICAL]),
            entry("e", &[PASSING, PASSING]),
        ]);
        let ids: Vec<&str> = got.iter().map(|e| e.service.id.as_str()).collect();
        // Consul swaps "a" with "e", then drops "d".
        assert_eq!(ids, ["e", "b", "c"]);
    }
}
