//! The catalog domain: nodes, service instances and health checks (Consul's
//! `state/catalog.go`), with the lookup tables that keep per-service reads cheap.
//!
//! Index rules, as Consul's: every write that changes what a read of service `s` returns
//! (an instance, one of its checks, a node-level check or the node of one of its instances)
//! moves the `service/<s>` row of `catalog_indexes`; blocking reads of `s` watch that one row,
//! so a change to `s` never wakes watchers of another service. Identical rewrites change
//! nothing.

use super::error::{Result, StoreError};
use super::tables::{
    CATALOG_INDEXES, CHECKS, CONNECT_NAMES, NODES, SERVICES, SERVICE_CHECKS, SERVICE_NAMES,
};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::catalog::{
    CheckServiceNode, HealthCheck, Node, NodeService, ServiceAddress, CRITICAL, PASSING, WARNING,
};
use crate::types::config_entry::TERMINATING_GATEWAY_KIND;
use bincode::{Decode, Encode};
use std::collections::{BTreeMap, BTreeSet};

/// A row of `catalog_services`: the instance and the node it runs on.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ServiceEntry {
    pub node: String,
    pub service: NodeService,
}

/// The value of an index-table row: the key is all there is.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Marker;

/// The value of a `catalog_indexes` row.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IndexEntry {
    pub index: u64,
}

macro_rules! record {
    ($($t:ty),*) => {$(
        impl super::codec::Record for $t {
            const VERSION: u8 = 1;
        }
    )*};
}
record!(ServiceEntry, Marker, IndexEntry);

pub const MISSING_NODE: &str = "Missing node registration";
pub const MISSING_SERVICE: &str = "Missing service registration";

fn lower(node: &str) -> String {
    node.to_lowercase()
}
fn service_key(node: &str, id: &str) -> String {
    format!("{}\0{id}", lower(node))
}
fn name_key(name: &str, node: &str, id: &str) -> String {
    format!("{name}\0{}\0{id}", lower(node))
}
fn check_key(node: &str, check_id: &str) -> String {
    format!("{}\0{check_id}", lower(node))
}
fn service_check_key(node: &str, service_id: &str, check_id: &str) -> String {
    format!("{}\0{service_id}\0{check_id}", lower(node))
}
fn service_index_key(name: &str) -> String {
    format!("service/{name}")
}
fn connect_index_key(name: &str) -> String {
    format!("connect/{name}")
}
fn node_index_key(node: &str) -> String {
    format!("node/{}", lower(node))
}

/// The last part of an index-table key (`a\0b\0c` → `c`).
pub(super) fn last_part(key: &str) -> &str {
    key.rsplit('\0').next().unwrap_or(key)
}

fn bump(tx: &mut WriteTx, key: &str) -> Result<()> {
    let entry = IndexEntry { index: tx.index() };
    tx.put(CATALOG_INDEXES, key, &entry)
}

/// Moves the index of every read that includes `svc`: its name and, for Connect, the
/// service it fronts.
fn bump_service(tx: &mut WriteTx, svc: &NodeService) -> Result<()> {
    bump(tx, &service_index_key(&svc.service))?;
    if let Some(dest) = connect_name(svc) {
        bump(tx, &connect_index_key(&dest))?;
    }
    Ok(())
}

/// The name under which `svc` is found by Connect lookups, if any.
fn connect_name(svc: &NodeService) -> Option<String> {
    if let Some(dest) = svc.proxy_destination() {
        return Some(dest.to_string());
    }
    svc.is_connect_native().then(|| svc.service.clone())
}

fn services_on_node(r: &impl Readable, node: &str) -> Result<Vec<NodeService>> {
    Ok(r.scan_prefix(SERVICES, &format!("{}\0", lower(node)))?
        .into_iter()
        .map(|(_, e)| e.service)
        .collect())
}

fn bump_all_services_of_node(tx: &mut WriteTx, node: &str) -> Result<()> {
    for svc in services_on_node(&*tx, node)? {
        bump_service(tx, &svc)?;
    }
    Ok(())
}

/// Registers or updates a node, keeping its creation index.
pub fn ensure_node(tx: &mut WriteTx, node: Node) -> Result<()> {
    if node.node.is_empty() {
        return Err(StoreError::Invalid("Must provide node".into()));
    }
    let key = lower(&node.node);
    let existing = tx.get(NODES, &key)?;
    if existing.as_ref().is_some_and(|e| e.same_as(&node)) {
        return Ok(());
    }
    let index = tx.index();
    let record = Node {
        create_index: existing.map_or(index, |e| e.create_index),
        modify_index: index,
        ..node
    };
    tx.put(NODES, &key, &record)?;
    bump(tx, &node_index_key(&key))?;
    bump_all_services_of_node(tx, &key)
}

/// Registers or updates a service instance on an existing node.
pub fn ensure_service(tx: &mut WriteTx, node: &str, service: NodeService) -> Result<()> {
    if tx.get(NODES, &lower(node))?.is_none() {
        return Err(StoreError::Invalid(MISSING_NODE.into()));
    }
    let key = service_key(node, &service.id);
    let mut service = service;
    show_virtual_ips(tx, &mut service)?;
    let existing = tx.get(SERVICES, &key)?.map(|e| e.service);
    if existing.as_ref().is_some_and(|e| e.same_as(&service)) {
        return Ok(());
    }
    if let Some(old) = &existing {
        unindex_service(tx, node, old)?;
    }
    let index = tx.index();
    let service = NodeService {
        create_index: existing.map_or(index, |e| e.create_index),
        modify_index: index,
        ..service
    };
    tx.put(
        SERVICE_NAMES,
        &name_key(&service.service, node, &service.id),
        &Marker,
    )?;
    if let Some(dest) = connect_name(&service) {
        tx.put(CONNECT_NAMES, &name_key(&dest, node, &service.id), &Marker)?;
    }
    bump_service(tx, &service)?;
    bump(tx, &node_index_key(node))?;
    let entry = ServiceEntry {
        node: node.to_string(),
        service,
    };
    tx.put(SERVICES, &key, &entry)
}

/// Consul shows a service's virtual IP on each of its mesh instances, and on a terminating
/// gateway the virtual IP of each service its entry links (without a port).
fn show_virtual_ips(tx: &mut WriteTx, service: &mut NodeService) -> Result<()> {
    use super::virtual_ip::{assign, gateway_tag, linked_services, TAGGED_ADDRESS};
    if let Some(dest) = connect_name(service) {
        let vip = assign(tx, &dest)?;
        service.tagged_addresses.insert(
            TAGGED_ADDRESS.to_string(),
            ServiceAddress {
                address: vip.to_string(),
                port: service.port,
            },
        );
    }
    if service.kind == TERMINATING_GATEWAY_KIND {
        let gateway_prefix = gateway_tag("");
        service
            .tagged_addresses
            .retain(|tag, _| !tag.starts_with(&gateway_prefix));
        let linked = super::config_entry::lookup(&*tx, TERMINATING_GATEWAY_KIND, &service.service)?
            .map(|entry| linked_services(&entry))
            .unwrap_or_default();
        for name in linked {
            let vip = assign(tx, &name)?;
            service.tagged_addresses.insert(
                gateway_tag(&name),
                ServiceAddress {
                    address: vip.to_string(),
                    port: 0,
                },
            );
        }
    }
    Ok(())
}

/// Registers every instance named `name` again, so what they show of other tables (a
/// terminating gateway's linked services' virtual IPs) follows a change there.
pub fn refresh_instances(tx: &mut WriteTx, name: &str) -> Result<()> {
    for (key, _) in tx.scan_prefix(SERVICE_NAMES, &format!("{name}\0"))? {
        let mut parts = key.splitn(3, '\0').skip(1);
        let (Some(node), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(entry) = tx.get(SERVICES, &service_key(node, id))? {
            ensure_service(tx, &entry.node, entry.service)?;
        }
    }
    Ok(())
}

fn unindex_service(tx: &mut WriteTx, node: &str, old: &NodeService) -> Result<()> {
    tx.delete(SERVICE_NAMES, &name_key(&old.service, node, &old.id))?;
    if let Some(dest) = connect_name(old) {
        tx.delete(CONNECT_NAMES, &name_key(&dest, node, &old.id))?;
    }
    bump_service(tx, old)
}

/// Removes a service instance and its checks. Removing a missing one changes nothing.
pub fn delete_service(tx: &mut WriteTx, node: &str, service_id: &str) -> Result<()> {
    let Some(entry) = tx.delete(SERVICES, &service_key(node, service_id))? else {
        return Ok(());
    };
    for (key, _) in tx.scan_prefix(SERVICE_CHECKS, &format!("{}\0{service_id}\0", lower(node)))? {
        let check_id = last_part(&key).to_string();
        tx.delete(SERVICE_CHECKS, &key)?;
        tx.delete(CHECKS, &check_key(node, &check_id))?;
    }
    unindex_service(tx, node, &entry.service)?;
    bump(tx, &node_index_key(node))
}

/// Registers or updates a check. A service check takes the service's name and tags; a check
/// without a status starts critical.
pub fn ensure_check(tx: &mut WriteTx, check: HealthCheck) -> Result<()> {
    let Some(node) = tx.get(NODES, &lower(&check.node))? else {
        return Err(StoreError::Invalid(MISSING_NODE.into()));
    };
    let mut check = HealthCheck {
        node: node.node.clone(),
        ..check
    };
    if check.status.is_empty() {
        check.status = CRITICAL.into();
    }
    if ![PASSING, WARNING, CRITICAL].contains(&check.status.as_str()) {
        return Err(StoreError::Invalid(format!(
            "Invalid check status: {:?}",
            check.status
        )));
    }
    let service = if check.service_id.is_empty() {
        None
    } else {
        let entry = tx
            .get(SERVICES, &service_key(&node.node, &check.service_id))?
            .ok_or_else(|| StoreError::Invalid(MISSING_SERVICE.into()))?;
        check.service_name = entry.service.service.clone();
        check.service_tags = entry.service.tags.clone();
        Some(entry.service)
    };
    let key = check_key(&node.node, &check.check_id);
    let existing = tx.get(CHECKS, &key)?;
    if existing.as_ref().is_some_and(|e| e.same_as(&check)) {
        return Ok(());
    }
    if let Some(old) = &existing {
        if old.service_id != check.service_id {
            tx.delete(
                SERVICE_CHECKS,
                &service_check_key(&node.node, &old.service_id, &old.check_id),
            )?;
            bump_for_check(tx, &node.node, old)?;
        }
    }
    let index = tx.index();
    let check = HealthCheck {
        create_index: existing.map_or(index, |e| e.create_index),
        modify_index: index,
        ..check
    };
    tx.put(
        SERVICE_CHECKS,
        &service_check_key(&node.node, &check.service_id, &check.check_id),
        &Marker,
    )?;
    match &service {
        Some(svc) => bump_service(tx, svc)?,
        None => bump_all_services_of_node(tx, &node.node)?,
    }
    let critical = check.status == CRITICAL;
    let check_id = check.check_id.clone();
    tx.put(CHECKS, &key, &check)?;
    if critical {
        super::session::invalidate_for_check(tx, &node.node, &check_id)?;
    }
    Ok(())
}

fn bump_for_check(tx: &mut WriteTx, node: &str, check: &HealthCheck) -> Result<()> {
    if check.service_id.is_empty() {
        return bump_all_services_of_node(tx, node);
    }
    match tx.get(SERVICES, &service_key(node, &check.service_id))? {
        Some(entry) => bump_service(tx, &entry.service),
        None => Ok(()),
    }
}

/// Changes a check's status and output only (what check runners report).
pub fn update_check_status(
    tx: &mut WriteTx,
    node: &str,
    check_id: &str,
    status: &str,
    output: &str,
) -> Result<()> {
    let Some(check) = tx.get(CHECKS, &check_key(node, check_id))? else {
        return Err(StoreError::Invalid(format!(
            "Unknown check ID {check_id:?}"
        )));
    };
    ensure_check(
        tx,
        HealthCheck {
            status: status.to_string(),
            output: output.to_string(),
            ..check
        },
    )
}

/// Removes a check. Removing a missing one changes nothing.
pub fn delete_check(tx: &mut WriteTx, node: &str, check_id: &str) -> Result<()> {
    let Some(check) = tx.delete(CHECKS, &check_key(node, check_id))? else {
        return Ok(());
    };
    tx.delete(
        SERVICE_CHECKS,
        &service_check_key(node, &check.service_id, check_id),
    )?;
    super::session::invalidate_for_check(tx, node, check_id)?;
    bump_for_check(tx, node, &check)
}

/// Removes a node with all its services and checks.
pub fn delete_node(tx: &mut WriteTx, node: &str) -> Result<()> {
    if tx.get(NODES, &lower(node))?.is_none() {
        return Ok(());
    }
    for svc in services_on_node(&*tx, node)? {
        delete_service(tx, node, &svc.id)?;
    }
    for (key, _) in tx.scan_prefix(CHECKS, &format!("{}\0", lower(node)))? {
        delete_check(tx, node, last_part(&key))?;
    }
    super::session::invalidate_for_node(tx, node)?;
    super::coordinate::delete_node(tx, node)?;
    tx.delete(NODES, &lower(node))?;
    bump(tx, &node_index_key(node))
}

// ----- reads -----

/// A validated `PUT /v1/catalog/register`, applied as one write (Consul's
/// `EnsureRegistration`).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct Registration {
    pub node: Node,
    /// `SkipNodeUpdate`: an existing node keeps its address and meta.
    pub skip_node_update: bool,
    pub service: Option<NodeService>,
    pub checks: Vec<HealthCheck>,
}

/// Prefixes a validation error as Consul's `EnsureRegistration` does.
fn context(what: &'static str) -> impl Fn(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Invalid(msg) => StoreError::Invalid(format!("{what}: {msg}")),
        other => other,
    }
}

/// Registers a node with an optional service and checks, after checking (as Consul's
/// `vetRegisterWithACL`) that the checks are on the request's node and that a service check
/// names a service of the request or one already on the node.
pub fn register(tx: &mut WriteTx, r: Registration) -> Result<()> {
    let name = r.node.node.clone();
    let existing = get_node(&*tx, &name)?;
    for check in &r.checks {
        if lower(&check.node) != lower(&name) {
            return Err(StoreError::Invalid(format!(
                "Node '{}' for check '{}' doesn't match register request node '{name}'",
                check.node, check.check_id
            )));
        }
        if check.service_id.is_empty()
            || r.service.as_ref().is_some_and(|s| s.id == check.service_id)
        {
            continue;
        }
        let known = existing.is_some() && get_service(&*tx, &name, &check.service_id)?.is_some();
        if !known {
            return Err(StoreError::Invalid(format!(
                "Unknown service ID '{}' for check ID '{}'",
                check.service_id, check.check_id
            )));
        }
    }
    if existing.is_none() || !r.skip_node_update {
        ensure_node(tx, r.node).map_err(context("failed inserting node"))?;
    }
    if let Some(service) = r.service {
        ensure_service(tx, &name, service).map_err(context("failed inserting service"))?;
    }
    for check in r.checks {
        ensure_check(tx, check).map_err(context("failed inserting check"))?;
    }
    Ok(())
}

pub fn get_node(r: &impl Readable, node: &str) -> Result<Option<Node>> {
    r.get(NODES, &lower(node))
}

pub fn get_service(r: &impl Readable, node: &str, service_id: &str) -> Result<Option<NodeService>> {
    Ok(r.get(SERVICES, &service_key(node, service_id))?
        .map(|e| e.service))
}

pub fn get_check(r: &impl Readable, node: &str, check_id: &str) -> Result<Option<HealthCheck>> {
    r.get(CHECKS, &check_key(node, check_id))
}

fn index_row(r: &impl Readable, key: &str) -> Result<u64> {
    Ok(r.get(CATALOG_INDEXES, key)?.map_or(0, |e| e.index))
}

fn catalog_max(r: &ReadTx) -> Result<u64> {
    Ok(r.table_index(NODES.name)?
        .max(r.table_index(SERVICES.name)?)
        .max(r.table_index(CHECKS.name)?))
}

/// All nodes, by name.
pub fn nodes(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<Node>)> {
    ws.table(NODES.name);
    let nodes = r
        .scan_prefix(NODES, "")?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    Ok((
        r.table_index(NODES.name)?
            .max(r.table_index(SERVICES.name)?),
        nodes,
    ))
}

/// Service names with the union of their instances' tags.
pub fn services(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, BTreeMap<String, Vec<String>>)> {
    ws.table(SERVICES.name);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, entry) in r.scan_prefix(SERVICES, "")? {
        let tags = out.entry(entry.service.service.clone()).or_default();
        for tag in entry.service.tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    Ok((r.table_index(SERVICES.name)?, out))
}

/// The name of the servers' own service, which is never exported to peers.
pub const CONSUL_SERVICE: &str = "consul";

/// Names of the services with a typical instance (neither proxy nor gateway), as Consul's
/// `serviceNamesOfKindTxn` for `ServiceKindTypical`.
pub fn typical_service_names(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, BTreeSet<String>)> {
    ws.table(SERVICES.name);
    let names = r
        .scan_prefix(SERVICES, "")?
        .into_iter()
        .filter(|(_, entry)| entry.service.kind.is_empty())
        .map(|(_, entry)| entry.service.service)
        .collect();
    Ok((r.table_index(SERVICES.name)?, names))
}

/// How many distinct service names the catalog holds (the `consul.state.services` gauge),
/// without reading the services themselves.
pub fn service_name_count(r: &ReadTx) -> Result<u64> {
    r.count_key_parts(SERVICE_NAMES)
}

/// Which instances a service lookup returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Instances registered under the name.
    Service,
    /// Connect-capable instances for the name: its proxies, or itself if native.
    Connect,
}

/// The instances of `name` with their nodes; the index is the service's own.
pub fn service_instances(
    r: &ReadTx,
    ws: &mut WatchSet,
    name: &str,
    lookup: Lookup,
) -> Result<(u64, Vec<(Node, NodeService)>)> {
    let (names, index_key) = match lookup {
        Lookup::Service => (SERVICE_NAMES, service_index_key(name)),
        Lookup::Connect => (CONNECT_NAMES, connect_index_key(name)),
    };
    ws.key(CATALOG_INDEXES.name, &index_key);
    let mut out = Vec::new();
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for (key, _) in r.scan_prefix(names, &format!("{name}\0"))? {
        let mut parts = key.splitn(3, '\0').skip(1);
        let (Some(node), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(entry) = r.get(SERVICES, &service_key(node, id))? else {
            continue;
        };
        let node = match nodes.get(node) {
            Some(n) => n.clone(),
            None => {
                let Some(n) = r.get(NODES, node)? else {
                    continue;
                };
                nodes.insert(node.to_string(), n.clone());
                n
            }
        };
        out.push((node, entry.service));
    }
    let index = match index_row(r, &index_key)? {
        0 => r
            .table_index(SERVICES.name)?
            .max(r.table_index(NODES.name)?),
        i => i,
    };
    Ok((index, out))
}

/// The checks of one instance, node-level checks first.
fn instance_checks(r: &impl Readable, node: &str, service_id: &str) -> Result<Vec<HealthCheck>> {
    let mut out = Vec::new();
    for sid in ["", service_id] {
        for (key, _) in r.scan_prefix(SERVICE_CHECKS, &format!("{}\0{sid}\0", lower(node)))? {
            if let Some(c) = r.get(CHECKS, &check_key(node, last_part(&key)))? {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Instances of `name` with their nodes and checks (`/v1/health/service`).
pub fn check_service_nodes(
    r: &ReadTx,
    ws: &mut WatchSet,
    name: &str,
    lookup: Lookup,
) -> Result<(u64, Vec<CheckServiceNode>)> {
    let (index, instances) = service_instances(r, ws, name, lookup)?;
    let index = if instances.is_empty() && index_row(r, &service_index_key(name))? == 0 {
        catalog_max(r)?
    } else {
        index
    };
    let mut out = Vec::with_capacity(instances.len());
    for (node, service) in instances {
        let checks = instance_checks(r, &node.node, &service.id)?;
        out.push(CheckServiceNode {
            node,
            service,
            checks,
        });
    }
    Ok((index, out))
}

/// A node and the services on it.
pub type NodeWithServices = (Node, Vec<NodeService>);

/// A node with its services (`/v1/catalog/node`); `None` for an unknown node.
pub fn node_services(
    r: &ReadTx,
    ws: &mut WatchSet,
    node: &str,
) -> Result<(u64, Option<NodeWithServices>)> {
    let key = node_index_key(node);
    ws.key(CATALOG_INDEXES.name, &key);
    let index = index_row(r, &key)?;
    let Some(n) = r.get(NODES, &lower(node))? else {
        return Ok((index, None));
    };
    let services = services_on_node(r, node)?;
    Ok((index, Some((n, services))))
}

/// Every check on a node, node-level and service checks.
pub fn node_checks(r: &ReadTx, ws: &mut WatchSet, node: &str) -> Result<(u64, Vec<HealthCheck>)> {
    let prefix = format!("{}\0", lower(node));
    ws.prefix(CHECKS.name, &prefix);
    let checks = r
        .scan_prefix(CHECKS, &prefix)?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    Ok((r.table_index(CHECKS.name)?, checks))
}

/// The checks of every instance of service `name` (node-level checks excluded).
pub fn service_checks(
    r: &ReadTx,
    ws: &mut WatchSet,
    name: &str,
) -> Result<(u64, Vec<HealthCheck>)> {
    ws.key(CATALOG_INDEXES.name, &service_index_key(name));
    let mut out = Vec::new();
    for (key, _) in r.scan_prefix(SERVICE_NAMES, &format!("{name}\0"))? {
        let mut parts = key.splitn(3, '\0').skip(1);
        let (Some(node), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        for (ckey, _) in r.scan_prefix(SERVICE_CHECKS, &format!("{node}\0{id}\0"))? {
            if let Some(c) = r.get(CHECKS, &check_key(node, last_part(&ckey)))? {
                out.push(c);
            }
        }
    }
    Ok((r.table_index(CHECKS.name)?, out))
}

/// Every check in `state` (`any` for all).
pub fn checks_in_state(
    r: &ReadTx,
    ws: &mut WatchSet,
    state: &str,
) -> Result<(u64, Vec<HealthCheck>)> {
    ws.table(CHECKS.name);
    let checks = r
        .scan_prefix(CHECKS, "")?
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| state == "any" || c.status == state)
        .collect();
    Ok((r.table_index(CHECKS.name)?, checks))
}

/// A node with its services and every check on it (Consul's `NodeInfo`).
pub type NodeDump = (Node, Vec<NodeService>, Vec<HealthCheck>);

/// Every node with its services and checks (`/v1/internal/ui/nodes`; Consul's `NodeDump`),
/// or only `node` when given (`/v1/internal/ui/node/<node>`).
pub fn node_dump(
    r: &ReadTx,
    ws: &mut WatchSet,
    node: Option<&str>,
) -> Result<(u64, Vec<NodeDump>)> {
    for table in [NODES.name, SERVICES.name, CHECKS.name] {
        ws.table(table);
    }
    let nodes: Vec<Node> = match node {
        Some(name) => r.get(NODES, &lower(name))?.into_iter().collect(),
        None => r
            .scan_prefix(NODES, "")?
            .into_iter()
            .map(|(_, n)| n)
            .collect(),
    };
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let services = services_on_node(r, &n.node)?;
        let checks = r
            .scan_prefix(CHECKS, &format!("{}\0", lower(&n.node)))?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        out.push((n, services, checks));
    }
    Ok((catalog_max(r)?, out))
}

/// Every service instance with its node and checks, by node then instance (Consul's
/// `ServiceDump`, read by `/v1/internal/ui/services`).
pub fn service_dump(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<CheckServiceNode>)> {
    for table in [NODES.name, SERVICES.name, CHECKS.name] {
        ws.table(table);
    }
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut out = Vec::new();
    for (_, entry) in r.scan_prefix(SERVICES, "")? {
        let node = match nodes.get(&entry.node) {
            Some(n) => n.clone(),
            None => {
                let Some(n) = r.get(NODES, &lower(&entry.node))? else {
                    continue;
                };
                nodes.insert(entry.node.clone(), n.clone());
                n
            }
        };
        let checks = instance_checks(r, &node.node, &entry.service.id)?;
        out.push(CheckServiceNode {
            node,
            service: entry.service,
            checks,
        });
    }
    Ok((catalog_max(r)?, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::agent_state::LocalCheck;
    use crate::store::{Command, Store};

    fn node(name: &str) -> Node {
        Node {
            id: String::new(),
            node: name.into(),
            address: "10.0.0.1".into(),
            datacenter: "dc1".into(),
            ..Default::default()
        }
    }

    fn svc(id: &str, name: &str) -> NodeService {
        NodeService {
            id: id.into(),
            service: name.into(),
            port: 80,
            ..Default::default()
        }
    }

    fn check(node: &str, id: &str, service_id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            node: node.into(),
            check_id: id.into(),
            name: id.into(),
            status: status.into(),
            service_id: service_id.into(),
            ..Default::default()
        }
    }

    /// Registers node `n1` with `service` and `checks`.
    async fn register(store: &Store, service: Option<NodeService>, checks: Vec<HealthCheck>) {
        let registration = Registration {
            node: node("n1"),
            skip_node_update: false,
            service,
            checks,
        };
        store
            .apply(Command::CatalogRegister(Box::new(registration)))
            .await
            .unwrap();
    }

    async fn deregister(store: &Store, node: &str, service_id: &str) {
        let command = Command::CatalogDeregister {
            node: node.into(),
            service_id: service_id.into(),
            check_id: String::new(),
        };
        store.apply(command).await.unwrap();
    }

    async fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let web_check = check("n1", "web-check", "web1", PASSING);
        register(&store, Some(svc("web1", "web")), vec![web_check]).await;
        register(&store, Some(svc("db1", "db")), vec![]).await;
        (dir, store)
    }

    fn service_index(store: &Store, name: &str) -> u64 {
        let r = store.read().unwrap();
        service_instances(&r, &mut WatchSet::new(), name, Lookup::Service)
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn service_names_are_counted_once_whatever_their_instances() {
        let (_d, store) = setup().await;
        register(&store, Some(svc("web2", "web")), vec![]).await;
        register(&store, Some(svc("web-admin", "web-admin")), vec![]).await;
        let r = store.read().unwrap();
        assert_eq!(service_name_count(&r).unwrap(), 3);
        assert_eq!(
            service_name_count(&r).unwrap() as usize,
            services(&r, &mut WatchSet::new()).unwrap().1.len()
        );
    }

    #[tokio::test]
    async fn health_reads_carry_node_checks_first() {
        let (_d, store) = setup().await;
        register(&store, None, vec![check("n1", "node-check", "", PASSING)]).await;
        let r = store.read().unwrap();
        let (_, entries) =
            check_service_nodes(&r, &mut WatchSet::new(), "web", Lookup::Service).unwrap();
        assert_eq!(entries.len(), 1);
        let ids: Vec<&str> = entries[0]
            .checks
            .iter()
            .map(|c| c.check_id.as_str())
            .collect();
        assert_eq!(ids, ["node-check", "web-check"]);
        assert_eq!(entries[0].checks[1].service_name, "web");
    }

    #[tokio::test]
    async fn a_service_change_moves_only_that_services_index() {
        let (_d, store) = setup().await;
        let (web, db) = (service_index(&store, "web"), service_index(&store, "db"));
        let down = HealthCheck {
            output: "down".into(),
            ..check("n1", "web-check", "web1", CRITICAL)
        };
        register(&store, None, vec![down]).await;
        assert!(service_index(&store, "web") > web);
        assert_eq!(service_index(&store, "db"), db);
        // A node-level check moves every service on the node.
        register(&store, None, vec![check("n1", "maint", "", CRITICAL)]).await;
        assert!(service_index(&store, "db") > db);
    }

    #[tokio::test]
    async fn identical_rewrites_change_nothing() {
        let (_d, store) = setup().await;
        let before = store.read().unwrap().global_index().unwrap();
        let web_check = check("n1", "web-check", "web1", PASSING);
        register(&store, Some(svc("web1", "web")), vec![web_check]).await;
        assert_eq!(store.read().unwrap().global_index().unwrap(), before);
    }

    #[tokio::test]
    async fn deleting_a_service_removes_its_checks_and_lookups() {
        let (_d, store) = setup().await;
        deregister(&store, "n1", "web1").await;
        let r = store.read().unwrap();
        assert!(
            service_instances(&r, &mut WatchSet::new(), "web", Lookup::Service)
                .unwrap()
                .1
                .is_empty()
        );
        assert!(get_check(&r, "n1", "web-check").unwrap().is_none());
        let (_, names) = services(&r, &mut WatchSet::new()).unwrap();
        assert_eq!(names.keys().collect::<Vec<_>>(), ["db"]);
    }

    #[tokio::test]
    async fn checks_need_their_node_and_service() {
        let (_d, store) = setup().await;
        // Through the agent's check registration, which writes the row as given.
        let register_check = |row: HealthCheck| Command::AgentRegisterCheck {
            check: Box::new(LocalCheck {
                check_id: row.check_id.clone(),
                service_id: row.service_id.clone(),
                definition: crate::types::JsonValue::default(),
                ttl_deadline_ms: 0,
            }),
            row: Box::new(row),
        };
        let err = store
            .apply(register_check(check("nope", "c", "", PASSING)))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), MISSING_NODE);
        let err = store
            .apply(register_check(check("n1", "c", "ghost", PASSING)))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), MISSING_SERVICE);
    }

    #[tokio::test]
    async fn connect_lookups_find_proxies_by_destination() {
        let (_d, store) = setup().await;
        let proxy = NodeService {
            kind: "connect-proxy".into(),
            proxy: crate::types::JsonValue(serde_json::json!({"DestinationServiceName": "web"})),
            ..svc("web1-sidecar-proxy", "web-sidecar-proxy")
        };
        register(&store, Some(proxy), vec![]).await;
        let r = store.read().unwrap();
        let (_, found) =
            service_instances(&r, &mut WatchSet::new(), "web", Lookup::Connect).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.id, "web1-sidecar-proxy");
    }

    #[tokio::test]
    async fn deleting_a_node_removes_everything_on_it() {
        let (_d, store) = setup().await;
        deregister(&store, "N1", "").await;
        let r = store.read().unwrap();
        assert!(nodes(&r, &mut WatchSet::new()).unwrap().1.is_empty());
        assert!(services(&r, &mut WatchSet::new()).unwrap().1.is_empty());
        assert!(checks_in_state(&r, &mut WatchSet::new(), "any")
            .unwrap()
            .1
            .is_empty());
    }
}

/// What `/v1/operator/usage` counts (Consul's `ServiceUsage` for one datacenter).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Usage {
    /// Distinct service names.
    pub services: u64,
    pub service_instances: u64,
    /// Instances by Connect role: each proxy and gateway kind, and native services.
    pub connect_service_instances: BTreeMap<String, u64>,
    /// Instances that are neither proxies, gateways nor the `consul` service itself.
    pub billable_service_instances: u64,
    pub nodes: u64,
}

/// The Connect roles Consul counts, each reported even when zero.
const CONNECT_ROLES: [&str; 6] = [
    "api-gateway",
    "connect-native",
    "connect-proxy",
    "ingress-gateway",
    "mesh-gateway",
    "terminating-gateway",
];

/// Counts of the catalog for `/v1/operator/usage`; the index is the catalog's.
pub fn usage(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Usage)> {
    ws.table(NODES.name);
    ws.table(SERVICES.name);
    let mut usage = Usage {
        connect_service_instances: CONNECT_ROLES.iter().map(|r| (r.to_string(), 0)).collect(),
        ..Usage::default()
    };
    for (_, entry) in r.scan_prefix(SERVICES, "")? {
        let service = entry.service;
        usage.service_instances += 1;
        let role = if service.kind.is_empty() && service.is_connect_native() {
            Some("connect-native")
        } else {
            CONNECT_ROLES
                .iter()
                .copied()
                .find(|role| *role == service.kind)
        };
        if let Some(count) = role.and_then(|r| usage.connect_service_instances.get_mut(r)) {
            *count += 1;
        }
        let infrastructure = !service.kind.is_empty() || service.service == CONSUL_SERVICE;
        if !infrastructure {
            usage.billable_service_instances += 1;
        }
    }
    usage.services = service_name_count(r)?;
    usage.nodes = r.row_count(NODES)?;
    Ok((catalog_max(r)?, usage))
}
