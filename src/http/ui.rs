//! `/v1/internal/ui/*` (Consul's `ui_endpoint.go`): the summaries the web UI reads, in
//! Consul's shapes so tools written against them work too. Lists are blocking reads and show
//! only what the caller's token may read, as Consul's ACL filters do (with
//! `X-Consul-Results-Filtered-By-ACLs` when something was left out).

use super::acl::Caller;
use super::blocking::blocking;
use super::catalog::path_arg;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::store::catalog::{self as store, NodeDump};
use crate::store::{config_entry, gateway, intention as stored_intention};
use crate::types::catalog::{
    CheckServiceNode, HealthCheck, NodeService, CRITICAL, PASSING, WARNING,
};
use crate::types::config_entry::{INGRESS_GATEWAY_KIND, WILDCARD};
use crate::types::gateway::GatewayService;
use crate::types::intention::{Intention, MatchBy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A JSON answer with the read metadata, plus the filtered header when `filtered` (see
/// `Reply::filtered_by_acls`).
fn listing<T: Serialize>(
    req: &Request,
    value: &T,
    pretty: bool,
    index: u64,
    filtered: bool,
) -> Result<Reply, ApiError> {
    Ok(Reply::json(value, pretty)?
        .read_meta(index)
        .filtered_by_acls(&req.caller, filtered))
}

// ---- service summaries --------------------------------------------------------------------

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GatewayConfig {
    #[serde(skip_serializing_if = "is_zero")]
    associated_service_count: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One service across its instances (Consul's `ServiceSummary`).
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ServiceSummary {
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    name: String,
    datacenter: String,
    tags: Option<Vec<String>>,
    nodes: Option<Vec<String>>,
    external_sources: Option<Vec<String>>,
    instance_count: usize,
    checks_passing: usize,
    checks_warning: usize,
    checks_critical: usize,
    gateway_config: GatewayConfig,
    transparent_proxy: bool,
    connect_native: bool,
    /// The status of each check, by node and check ID: a node's checks count once however
    /// many instances the node runs.
    #[serde(skip)]
    checks: BTreeMap<(String, String), String>,
    #[serde(skip)]
    transparent_proxy_set: bool,
}

/// A summary as `/v1/internal/ui/services` lists it (Consul's `ServiceListingSummary`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceListingSummary {
    #[serde(flatten)]
    summary: ServiceSummary,
    connected_with_proxy: bool,
    connected_with_gateway: bool,
}

fn push_unique(list: &mut Option<Vec<String>>, value: &str) {
    let list = list.get_or_insert_with(Vec::new);
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

/// Summaries by service name, and the names of the services a proxy fronts (Consul's
/// `summarizeServices`).
fn summarize(dump: &[CheckServiceNode]) -> (BTreeMap<String, ServiceSummary>, BTreeSet<String>) {
    let mut summaries: BTreeMap<String, ServiceSummary> = BTreeMap::new();
    let mut has_proxy = BTreeSet::new();
    fn summary<'a>(
        all: &'a mut BTreeMap<String, ServiceSummary>,
        name: &str,
    ) -> &'a mut ServiceSummary {
        all.entry(name.to_string())
            .or_insert_with(|| ServiceSummary {
                name: name.to_string(),
                ..Default::default()
            })
    }
    let record = |sum: &mut ServiceSummary, node: &str, checks: &[HealthCheck]| {
        for check in checks {
            sum.checks.insert(
                (node.to_string(), check.check_id.clone()),
                check.status.clone(),
            );
        }
    };
    for entry in dump {
        let svc: &NodeService = &entry.service;
        let node = &entry.node.node;
        if let Some(destination) = svc.proxy_destination() {
            has_proxy.insert(destination.to_string());
            let dest = summary(&mut summaries, destination);
            record(dest, node, &entry.checks);
            let transparent =
                svc.proxy.0.get("Mode").and_then(|m| m.as_str()) == Some("transparent");
            if transparent && !dest.transparent_proxy_set {
                dest.transparent_proxy = true;
            }
            if !transparent {
                dest.transparent_proxy = false;
            }
            dest.transparent_proxy_set = true;
        }
        let sum = summary(&mut summaries, &svc.service);
        push_unique(&mut sum.nodes, node);
        sum.kind = svc.kind.clone();
        sum.datacenter = entry.node.datacenter.clone();
        sum.instance_count += 1;
        sum.connect_native |= svc.is_connect_native();
        for tag in &svc.tags {
            push_unique(&mut sum.tags, tag);
        }
        if let Some(source) = svc.meta.get("external-source").filter(|s| !s.is_empty()) {
            push_unique(&mut sum.external_sources, source);
        }
        record(sum, node, &entry.checks);
    }
    (summaries, has_proxy)
}

/// Sorted summaries with their check counts (Consul's `prepSummaryOutput`); `typical_only`
/// leaves out proxies and gateways other than ingress.
fn prepare(summaries: BTreeMap<String, ServiceSummary>, typical_only: bool) -> Vec<ServiceSummary> {
    let mut out = Vec::with_capacity(summaries.len());
    for (_, mut sum) in summaries {
        for list in [&mut sum.nodes, &mut sum.tags].into_iter().flatten() {
            list.sort();
        }
        for status in sum.checks.values() {
            match status.as_str() {
                PASSING => sum.checks_passing += 1,
                WARNING => sum.checks_warning += 1,
                CRITICAL => sum.checks_critical += 1,
                _ => {}
            }
        }
        if typical_only && !(sum.kind.is_empty() || sum.kind == INGRESS_GATEWAY_KIND) {
            continue;
        }
        out.push(sum);
    }
    out
}

/// Keeps the instances whose node and service the caller may read (Consul's
/// `filterCheckServiceNodes`); whether any was dropped.
fn readable_instances(caller: &Caller, dump: &mut Vec<CheckServiceNode>) -> bool {
    caller.filter(dump, |c, e| {
        c.reads_node(&e.node.node) && c.reads_service(&e.service.service)
    })
}

/// `GET /v1/internal/ui/services`: every service summarized, with whether proxies or
/// gateways front it.
pub async fn services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let filter = opts.parsed_filter()?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, dump) = store::service_dump(r, ws)?;
        let (gateway_index, gateways) = gateway::all_services(r, ws)?;
        Ok((index.max(gateway_index), (dump, gateways)))
    })
    .await?;
    let (mut dump, mut gateways) = got.value;
    // The expression first, as Consul's `ServiceDump`: the filtered-by-ACLs header counts only
    // what it kept.
    if let Some(f) = filter {
        dump = f.apply(dump)?;
    }
    let mut filtered = readable_instances(&req.caller, &mut dump);
    filtered |= req.caller.filter(&mut gateways, |c, g| {
        c.reads_service(&g.gateway.name) && c.reads_service(&g.service.name)
    });
    let mut gateways_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut linked_services: BTreeMap<&str, usize> = BTreeMap::new();
    for g in &gateways {
        gateways_of
            .entry(&g.service.name)
            .or_default()
            .push(&g.gateway.name);
        *linked_services.entry(&g.gateway.name).or_default() += 1;
    }
    let (summaries, has_proxy) = summarize(&dump);
    let present: BTreeSet<String> = summaries.keys().cloned().collect();
    let listing_summaries: Vec<ServiceListingSummary> = prepare(summaries, false)
        .into_iter()
        .map(|mut summary| {
            let name = summary.name.clone();
            summary.gateway_config.associated_service_count =
                linked_services.get(name.as_str()).copied().unwrap_or(0);
            let connected_with_gateway = summary.instance_count > 0
                && gateways_of
                    .get(name.as_str())
                    .is_some_and(|gws| gws.iter().any(|gw| present.contains(*gw)));
            ServiceListingSummary {
                summary,
                connected_with_proxy: has_proxy.contains(&name),
                connected_with_gateway,
            }
        })
        .collect();
    listing(&req, &listing_summaries, opts.pretty, got.index, filtered)
}

/// `GET /v1/internal/ui/exported-services`: the services exported to a peer. Legate has no
/// cluster peering, so nothing is exported.
pub async fn exported_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, _) = store::services(r, ws)?;
        Ok((index, Vec::<ServiceListingSummary>::new()))
    })
    .await?;
    listing(&req, &got.value, opts.pretty, got.index, false)
}

/// A service a gateway fronts, with its instances.
type Fronted = (GatewayService, Vec<CheckServiceNode>);

/// The services an ingress or terminating gateway fronts, with their instances (Consul's
/// `GatewayServiceDump`): a service without instances still appears, by name.
fn gateway_dump(
    r: &crate::store::ReadTx,
    ws: &mut crate::store::WatchSet,
    gateway_name: &str,
) -> crate::store::Result<(u64, Vec<Fronted>)> {
    let (mut index, linked) = gateway::services(r, ws, gateway_name)?;
    let mut out = Vec::with_capacity(linked.len());
    for g in linked {
        let (i, instances) =
            store::check_service_nodes(r, ws, &g.service.name, store::Lookup::Service)?;
        index = index.max(i);
        out.push((g, instances));
    }
    Ok((index, out))
}

/// The gateway named after `prefix`, which the caller must be allowed to read.
fn gateway_reader(req: &Request, prefix: &str) -> Result<String, ApiError> {
    let name = path_arg(req, prefix, "Missing gateway name")?;
    req.caller
        .require(Resource::Service, AccessLevel::Read, &name)?;
    Ok(name)
}

/// `GET /v1/internal/ui/gateway-services-nodes/<gateway>`: summaries of the services a
/// gateway fronts, with the addresses an ingress gateway serves each on.
pub async fn gateway_services_nodes(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = gateway_reader(&req, "/v1/internal/ui/gateway-services-nodes/")?;
    let got = blocking(&ctx.store, &opts, |r, ws| gateway_dump(r, ws, &name)).await?;
    let mut filtered = false;
    let mut dump = Vec::new();
    let mut addresses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (g, mut instances) in got.value {
        if !req.caller.reads_service(&g.service.name) {
            filtered = true;
            continue;
        }
        filtered |= readable_instances(&req.caller, &mut instances);
        let hosts = if g.hosts.is_empty() {
            // Consul's modifySummaryForGatewayService: a name under each served DNS domain.
            let dns = &ctx.config.dns;
            std::iter::once(&dns.domain)
                .chain(&dns.alt_domain)
                .map(|domain| {
                    format!(
                        "{}.ingress.{}.{domain}",
                        g.service.name, ctx.config.datacenter
                    )
                })
                .collect()
        } else {
            g.hosts.clone()
        };
        let known = addresses.entry(g.service.name.clone()).or_default();
        if g.port != 0 {
            for host in hosts {
                let address = format!("{host}:{}", g.port);
                if !known.contains(&address) {
                    known.push(address);
                }
            }
        }
        dump.extend(instances);
    }
    let (mut summaries, _) = summarize(&dump);
    for (service, addresses) in addresses {
        let sum = summaries
            .entry(service.clone())
            .or_insert_with(|| ServiceSummary {
                name: service,
                ..Default::default()
            });
        sum.gateway_config.addresses = addresses;
    }
    listing(
        &req,
        &prepare(summaries, false),
        opts.pretty,
        got.index,
        filtered,
    )
}

/// `GET /v1/internal/ui/gateway-intentions/<gateway>`: the intentions whose destination is
/// a service the gateway fronts.
pub async fn gateway_intentions(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = gateway_reader(&req, "/v1/internal/ui/gateway-intentions/")?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, linked) = gateway::services(r, ws, &name)?;
        let names: Vec<String> = linked.into_iter().map(|g| g.service.name).collect();
        let (i, matches) = stored_intention::matching(r, ws, MatchBy::Destination, &names)?;
        Ok((index.max(i), matches))
    })
    .await?;
    let mut seen = BTreeSet::new();
    let mut intentions: Vec<Intention> = Vec::new();
    let mut filtered = false;
    for intention in got.value.into_values().flatten() {
        if !seen.insert(intention.id.clone()) {
            continue;
        }
        if req.caller.may(
            Resource::Intention,
            AccessLevel::Read,
            &intention.destination_name,
        ) {
            intentions.push(intention);
        } else {
            filtered = true;
        }
    }
    listing(&req, &intentions, opts.pretty, got.index, filtered)
}

// ---- service topology ---------------------------------------------------------------------

/// What the intentions decide for a connection (Consul's `IntentionDecisionSummary`).
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IntentionDecision {
    default_allow: bool,
    allowed: bool,
    has_permissions: bool,
    external_source: String,
    has_exact: bool,
}

/// The decision of the first intention, in precedence order, matching `source` →
/// `destination` (an L7 one denies: only the request would decide), else the default.
fn decide(
    intentions: &[Intention],
    source: &str,
    destination: &str,
    default_allow: bool,
) -> IntentionDecision {
    let matched = intentions.iter().find(|i| {
        i.matches(MatchBy::Source, source) && i.matches(MatchBy::Destination, destination)
    });
    match matched {
        None => IntentionDecision {
            default_allow,
            allowed: default_allow,
            ..Default::default()
        },
        Some(i) => IntentionDecision {
            default_allow,
            allowed: i.allows(),
            has_permissions: !i.permissions.is_empty(),
            external_source: i.meta.get("external-source").cloned().unwrap_or_default(),
            has_exact: i.source_name != WILDCARD && i.destination_name != WILDCARD,
        },
    }
}

/// A neighbour in the topology (Consul's `ServiceTopologySummary`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TopologySummary {
    #[serde(flatten)]
    summary: ServiceSummary,
    source: &'static str,
    intention: IntentionDecision,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceTopology {
    protocol: String,
    transparent_proxy: bool,
    upstreams: Vec<TopologySummary>,
    downstreams: Vec<TopologySummary>,
    #[serde(rename = "FilteredByACLs")]
    filtered_by_acls: bool,
}

/// Where a neighbour comes from: an upstream named in a proxy's registration (or an ingress
/// gateway's config entry). Upstreams inferred from intentions for transparent proxies are
/// not derived.
const FROM_REGISTRATION: &str = "proxy-registration";

/// The upstreams a proxy registration names (prepared queries aside).
fn proxy_upstreams(svc: &NodeService) -> Vec<&str> {
    svc.proxy
        .0
        .get("Upstreams")
        .and_then(|u| u.as_array())
        .into_iter()
        .flatten()
        .filter(|u| u.get("DestinationType").and_then(|t| t.as_str()) != Some("prepared_query"))
        .filter_map(|u| u.get("DestinationName").and_then(|n| n.as_str()))
        .collect()
}

/// `GET /v1/internal/ui/service-topology/<service>?kind=`: the services a service calls
/// (upstreams) and that call it (downstreams), with their health and what the intentions
/// decide for each connection. Needs `service:read` on the service.
pub async fn service_topology(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = path_arg(
        &req,
        "/v1/internal/ui/service-topology/",
        "Missing service name",
    )?;
    let Some(kind) = req.params.get("kind").map(str::to_string) else {
        return Err(ApiError::bad_request("Missing service kind"));
    };
    if !kind.is_empty() && kind != INGRESS_GATEWAY_KIND {
        return Err(ApiError::bad_request(format!(
            "Unsupported service kind {kind:?}"
        )));
    }
    req.caller
        .require(Resource::Service, AccessLevel::Read, &name)?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, dump) = store::service_dump(r, ws)?;
        let (intentions_index, intentions) = stored_intention::list(r, ws)?;
        let (gateways_index, gateways) = gateway::all_services(r, ws)?;
        let protocol = config_entry::service_protocol(r, ws, &name)?;
        let index = index.max(intentions_index).max(gateways_index);
        Ok((index, (dump, intentions, gateways, protocol)))
    })
    .await?;
    let (dump, intentions, gateways, protocol) = got.value;
    let proxies: Vec<&NodeService> = dump
        .iter()
        .map(|e| &e.service)
        .filter(|s| s.proxy_destination() == Some(name.as_str()))
        .collect();
    let transparent = !proxies.is_empty()
        && proxies
            .iter()
            .all(|p| p.proxy.0.get("Mode").and_then(|m| m.as_str()) == Some("transparent"));
    let upstream_names: BTreeSet<&str> = if kind == INGRESS_GATEWAY_KIND {
        gateways
            .iter()
            .filter(|g| g.gateway.name == name)
            .map(|g| g.service.name.as_str())
            .collect()
    } else {
        proxies.iter().flat_map(|p| proxy_upstreams(p)).collect()
    };
    let mut downstream_names: BTreeSet<&str> = dump
        .iter()
        .filter(|e| proxy_upstreams(&e.service).contains(&name.as_str()))
        .filter_map(|e| e.service.proxy_destination())
        .collect();
    downstream_names.extend(
        gateways
            .iter()
            .filter(|g| g.service.name == name && g.gateway_kind == INGRESS_GATEWAY_KIND)
            .map(|g| g.gateway.name.as_str()),
    );
    let (default_allow, _) = crate::agent::intentions::Fallback::from_config(&ctx.config)
        .decide(&req.caller.identity.authorizer);
    let mut filtered = false;
    let mut neighbours = |names: &BTreeSet<&str>, decision: &dyn Fn(&str) -> IntentionDecision| {
        let mut instances: Vec<CheckServiceNode> = dump
            .iter()
            .filter(|e| names.contains(e.service.service.as_str()))
            .cloned()
            .collect();
        filtered |= readable_instances(&req.caller, &mut instances);
        let (summaries, _) = summarize(&instances);
        prepare(summaries, true)
            .into_iter()
            .map(|summary| TopologySummary {
                intention: decision(&summary.name),
                summary,
                source: FROM_REGISTRATION,
            })
            .collect::<Vec<_>>()
    };
    let upstreams = neighbours(&upstream_names, &|up| {
        decide(&intentions, &name, up, default_allow)
    });
    let downstreams = neighbours(&downstream_names, &|down| {
        decide(&intentions, down, &name, default_allow)
    });
    let topology = ServiceTopology {
        protocol,
        transparent_proxy: transparent,
        upstreams,
        downstreams,
        filtered_by_acls: filtered,
    };
    listing(&req, &topology, opts.pretty, got.index, filtered)
}

// ---- nodes --------------------------------------------------------------------------------

/// A node with its services and checks (Consul's `NodeInfo`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeInfo {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    tagged_addresses: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    services: Vec<NodeService>,
    checks: Vec<HealthCheck>,
}

impl From<NodeDump> for NodeInfo {
    fn from((node, services, checks): NodeDump) -> NodeInfo {
        NodeInfo {
            id: node.id,
            node: node.node,
            address: node.address,
            tagged_addresses: node.tagged_addresses,
            meta: node.meta,
            services,
            checks,
        }
    }
}

/// The readable part of a node (Consul's `filterNodeDump`): `None` when the node itself isn't.
fn readable_node(caller: &Caller, mut info: NodeInfo, filtered: &mut bool) -> Option<NodeInfo> {
    if !caller.reads_node(&info.node) {
        *filtered = true;
        return None;
    }
    *filtered |= caller.filter(&mut info.services, |c, s| c.reads_service(&s.service));
    *filtered |= caller.filter(&mut info.checks, |c, check| {
        check.service_name.is_empty() || c.reads_service(&check.service_name)
    });
    Some(info)
}

/// `GET /v1/internal/ui/nodes`: every node with its services and checks. `?filter` runs
/// before the ACL filter, as Consul's `NodeDump`, so the filtered-by-ACLs header counts only
/// what the expression kept.
pub async fn nodes(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let filter = opts.parsed_filter()?;
    let got = blocking(&ctx.store, &opts, |r, ws| store::node_dump(r, ws, None)).await?;
    let infos: Vec<NodeInfo> = got.value.into_iter().map(NodeInfo::from).collect();
    let infos = match filter {
        Some(f) => f.apply(infos)?,
        None => infos,
    };
    let mut filtered = false;
    let infos: Vec<NodeInfo> = infos
        .into_iter()
        .filter_map(|info| readable_node(&req.caller, info, &mut filtered))
        .collect();
    listing(&req, &infos, opts.pretty, got.index, filtered)
}

/// `GET /v1/internal/ui/node/<node>`: one node with its services and checks; an unknown (or
/// unreadable) node is a 404 with no body, as Consul's.
pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = path_arg(&req, "/v1/internal/ui/node/", "Missing node name")?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        store::node_dump(r, ws, Some(&name))
    })
    .await?;
    let mut filtered = false;
    let info = got
        .value
        .into_iter()
        .find_map(|dump| readable_node(&req.caller, dump.into(), &mut filtered));
    match info {
        Some(info) => listing(&req, &info, opts.pretty, got.index, filtered),
        None => Ok(Reply::empty(warp::http::StatusCode::NOT_FOUND)
            .read_meta(got.index)
            .filtered_by_acls(&req.caller, filtered)),
    }
}

// ---- catalog overview ---------------------------------------------------------------------

/// Counts by status (Consul's `HealthSummary`).
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct HealthSummary {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    total: usize,
    passing: usize,
    warning: usize,
    critical: usize,
}

impl HealthSummary {
    fn add(&mut self, status: &str) {
        self.total += 1;
        match status {
            PASSING => self.passing += 1,
            WARNING => self.warning += 1,
            CRITICAL => self.critical += 1,
            _ => {}
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CatalogSummary {
    nodes: Option<Vec<HealthSummary>>,
    services: Option<Vec<HealthSummary>>,
    checks: Option<Vec<HealthSummary>>,
}

/// The worst status of a set of checks (Consul's `AggregatedStatus`): maintenance first,
/// then critical, warning, passing (also for none).
fn aggregated_status<'a>(checks: impl IntoIterator<Item = &'a HealthCheck>) -> &'static str {
    let (mut maintenance, mut critical, mut warning) = (false, false, false);
    for check in checks {
        if check.check_id == "_node_maintenance"
            || check.check_id.starts_with("_service_maintenance:")
        {
            maintenance = true;
            continue;
        }
        match check.status.as_str() {
            PASSING => {}
            WARNING => warning = true,
            CRITICAL => critical = true,
            _ => return "",
        }
    }
    if maintenance {
        "maintenance"
    } else if critical {
        CRITICAL
    } else if warning {
        WARNING
    } else {
        PASSING
    }
}

fn overview(dump: &[NodeDump]) -> CatalogSummary {
    let mut nodes: Option<HealthSummary> = None;
    let mut services: BTreeMap<&str, HealthSummary> = BTreeMap::new();
    let mut checks: BTreeMap<&str, HealthSummary> = BTreeMap::new();
    for (_, node_services, node_checks) in dump {
        for check in node_checks {
            checks
                .entry(&check.name)
                .or_insert_with(|| HealthSummary {
                    name: check.name.clone(),
                    ..Default::default()
                })
                .add(&check.status);
        }
        let node_level = node_checks.iter().filter(|c| c.service_id.is_empty());
        nodes
            .get_or_insert_with(Default::default)
            .add(aggregated_status(node_level));
        for svc in node_services {
            let own = node_checks.iter().filter(|c| c.service_id == svc.id);
            services
                .entry(&svc.service)
                .or_insert_with(|| HealthSummary {
                    name: svc.service.clone(),
                    ..Default::default()
                })
                .add(aggregated_status(own));
        }
    }
    let listed =
        |m: BTreeMap<&str, HealthSummary>| (!m.is_empty()).then(|| m.into_values().collect());
    CatalogSummary {
        nodes: nodes.map(|n| vec![n]),
        services: listed(services),
        checks: listed(checks),
    }
}

/// `GET /v1/internal/ui/catalog-overview`: node, service and check health counts. Needs
/// `operator:read` (the route's rule), as Consul's.
pub async fn catalog_overview(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, |r, ws| store::node_dump(r, ws, None)).await?;
    Reply::json(&overview(&got.value), opts.pretty)
}

/// `/v1/internal/ui/metrics-proxy/*`: Legate has no metrics provider to proxy to, so it
/// answers as Consul does when none is configured.
pub async fn metrics_proxy(ctx: Ctx, _req: Request) -> Result<Reply, ApiError> {
    Err(ApiError::not_found(if ctx.config.ui {
        "Metrics proxy is not enabled"
    } else {
        "UI is not enabled"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::catalog::Node;

    fn instance(
        node: &str,
        id: &str,
        name: &str,
        tags: &[&str],
        checks: &[(&str, &str)],
    ) -> CheckServiceNode {
        CheckServiceNode {
            node: Node {
                node: node.into(),
                datacenter: "dc1".into(),
                ..Default::default()
            },
            service: NodeService {
                id: id.into(),
                service: name.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
            checks: checks
                .iter()
                .map(|(id, status)| HealthCheck {
                    node: node.into(),
                    check_id: id.to_string(),
                    status: status.to_string(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn a_summary_counts_a_nodes_checks_once_and_merges_tags_and_nodes() {
        let dump = vec![
            instance(
                "b",
                "web1",
                "web",
                &["v2", "blue"],
                &[("serfHealth", PASSING), ("w1", CRITICAL)],
            ),
            instance(
                "b",
                "web2",
                "web",
                &["v2"],
                &[("serfHealth", PASSING), ("w2", WARNING)],
            ),
            instance("a", "web3", "web", &[], &[("w3", PASSING)]),
            instance("a", "db1", "db", &[], &[]),
        ];
        let (summaries, _) = summarize(&dump);
        let out = prepare(summaries, false);
        let names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        let web = &out[1];
        assert_eq!(web.instance_count, 3);
        assert_eq!(
            web.nodes.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(
            web.tags.as_deref(),
            Some(&["blue".to_string(), "v2".to_string()][..])
        );
        assert_eq!(
            (web.checks_passing, web.checks_warning, web.checks_critical),
            (2, 1, 1)
        );
        let json = serde_json::to_value(&out[0]).unwrap();
        assert_eq!(json["Tags"], serde_json::Value::Null);
        assert!(json.get("Kind").is_none());
    }

    #[test]
    fn aggregated_status_is_the_worst_with_maintenance_first() {
        let check = |id: &str, status: &str| HealthCheck {
            check_id: id.into(),
            status: status.into(),
            ..Default::default()
        };
        assert_eq!(aggregated_status(&[]), PASSING);
        assert_eq!(
            aggregated_status(&[check("a", WARNING), check("b", CRITICAL)]),
            CRITICAL
        );
        assert_eq!(
            aggregated_status(&[check("_node_maintenance", CRITICAL), check("b", PASSING)]),
            "maintenance"
        );
    }
}
