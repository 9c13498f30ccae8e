//! The config-entry domain (Consul's `state/config_entry.go`): one table of entries keyed by
//! kind and name, writes with optional check-and-set, and the checks a write must pass against
//! the other entries (`validateProposedConfigEntryInGraph`).
//!
//! Index and watch rules: reads report the table's index (as Consul's `maxIndexTxn` does for
//! both a single entry and a list); a single read watches its key, a list the kind's prefix,
//! so a write wakes readers of that entry and of its kind's list, and no one else.
//!
//! Entries arrive decoded and checked on their own (`ConfigEntry::check`); what depends on
//! other entries is checked here, inside the write, so it sees the state the write lands on.

use super::error::{Result, StoreError};
use super::tables::CONFIG_ENTRIES;
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::config_entry::{
    ConfigEntry, IngressGateway, INGRESS_GATEWAY_KIND, MESH_KIND, MESH_NAME, PROXY_DEFAULTS_KIND,
    PROXY_DEFAULTS_NAME, SERVICE_DEFAULTS_KIND, SERVICE_RESOLVER_KIND, SERVICE_ROUTER_KIND,
    SERVICE_SPLITTER_KIND, TERMINATING_GATEWAY_KIND, WILDCARD,
};

/// A service's protocol when no entry sets one (Consul's `DefaultServiceProtocol`).
pub const DEFAULT_PROTOCOL: &str = "tcp";

pub(super) fn key(kind: &str, name: &str) -> String {
    format!("{kind}\0{name}")
}

fn kind_prefix(kind: &str) -> String {
    format!("{kind}\0")
}

/// One entry, without watching (for other domains and checks).
pub fn lookup(r: &impl Readable, kind: &str, name: &str) -> Result<Option<ConfigEntry>> {
    r.get(CONFIG_ENTRIES, &key(kind, name))
}

/// Every entry of a kind, by name, without watching.
pub fn of_kind(r: &impl Readable, kind: &str) -> Result<Vec<ConfigEntry>> {
    Ok(r.scan_prefix(CONFIG_ENTRIES, &kind_prefix(kind))?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// The config entries' index: the last write to any of them.
pub fn index(r: &impl Readable) -> Result<u64> {
    r.table_index(CONFIG_ENTRIES.name)
}

/// One entry (`GET /v1/config/<kind>/<name>`).
pub fn get(
    r: &ReadTx,
    ws: &mut WatchSet,
    kind: &str,
    name: &str,
) -> Result<(u64, Option<ConfigEntry>)> {
    Ok((index(r)?, watched(r, ws, kind, name)?))
}

/// One entry, watching its key (for reads that keep their own index).
pub fn watched(
    r: &impl Readable,
    ws: &mut WatchSet,
    kind: &str,
    name: &str,
) -> Result<Option<ConfigEntry>> {
    ws.key(CONFIG_ENTRIES.name, &key(kind, name));
    lookup(r, kind, name)
}

/// Every entry of `kind`, or of every kind when `None` (`GET /v1/config/<kind>`).
pub fn list(r: &ReadTx, ws: &mut WatchSet, kind: Option<&str>) -> Result<(u64, Vec<ConfigEntry>)> {
    let prefix = kind.map(kind_prefix).unwrap_or_default();
    ws.prefix(CONFIG_ENTRIES.name, &prefix);
    let entries = r
        .scan_prefix(CONFIG_ENTRIES, &prefix)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    Ok((index(r)?, entries))
}

/// Whether a check-and-set may go ahead: `0` only creates, any other index must be the
/// existing entry's `ModifyIndex`.
fn cas_matches(existing: Option<&ConfigEntry>, cas: u64) -> bool {
    match existing {
        None => cas == 0,
        Some(e) => cas != 0 && e.modify_index == cas,
    }
}

/// Writes a checked entry (Consul's `ensureConfigEntryTxn`), keeping its creation index.
/// With `cas`, writes only if `cas_matches`; returns whether it wrote. A write of what is
/// already stored changes nothing and succeeds, with or without `cas`: Consul's
/// `ConfigEntry.Apply` skips such a no-op upsert (`shouldSkipOperation`) before any CAS check.
pub fn set(tx: &mut WriteTx, entry: ConfigEntry, cas: Option<u64>) -> Result<bool> {
    let k = key(&entry.kind, &entry.name);
    let existing = tx.get(CONFIG_ENTRIES, &k)?;
    if existing.as_ref().is_some_and(|e| e.same_as(&entry)) {
        return Ok(true);
    }
    if cas.is_some_and(|cas| !cas_matches(existing.as_ref(), cas)) {
        return Ok(false);
    }
    check_graph(
        &*tx,
        &entry.kind,
        &entry.name,
        Some(&entry),
        existing.as_ref(),
    )?;
    let index = tx.index();
    let record = ConfigEntry {
        create_index: existing.map_or(index, |e| e.create_index),
        modify_index: index,
        ..entry
    };
    if ROUTED_KINDS.contains(&record.kind.as_str()) {
        super::virtual_ip::assign(tx, &record.name)?;
    }
    for linked in super::virtual_ip::linked_services(&record) {
        super::virtual_ip::assign(tx, &linked)?;
    }
    let gateway = (record.kind == TERMINATING_GATEWAY_KIND).then(|| record.name.clone());
    tx.put(CONFIG_ENTRIES, &k, &record)?;
    if let Some(gateway) = gateway {
        super::catalog::refresh_instances(tx, &gateway)?;
    }
    Ok(true)
}

/// Kinds whose entry gives the service it names a virtual IP (transparent proxies route to
/// it even before an instance registers).
const ROUTED_KINDS: [&str; 3] = [
    SERVICE_RESOLVER_KIND,
    SERVICE_ROUTER_KIND,
    SERVICE_SPLITTER_KIND,
];

/// Deletes an entry (Consul's `deleteConfigEntryTxn`). With `cas`, deletes only an entry whose
/// `ModifyIndex` is `cas` and returns whether it did. Deleting a missing entry succeeds, with
/// or without `cas`: Consul's `ConfigEntry.Delete` skips it as already done
/// (`shouldSkipOperation`) and reports it deleted.
pub fn delete(tx: &mut WriteTx, kind: &str, name: &str, cas: Option<u64>) -> Result<bool> {
    let k = key(kind, name);
    let Some(existing) = tx.get(CONFIG_ENTRIES, &k)? else {
        return Ok(true);
    };
    if cas.is_some_and(|cas| existing.modify_index != cas) {
        return Ok(false);
    }
    check_graph(&*tx, kind, name, None, Some(&existing))?;
    tx.delete(CONFIG_ENTRIES, &k)?;
    if kind == TERMINATING_GATEWAY_KIND {
        super::catalog::refresh_instances(tx, name)?;
    }
    Ok(true)
}

// ----- checks against the other entries -----

fn rejected(message: String) -> StoreError {
    StoreError::Rejected(message)
}

/// The pending change a check evaluates: entries read through it see the proposed state.
struct Proposal<'a> {
    kind: &'a str,
    name: &'a str,
    entry: Option<&'a ConfigEntry>,
}

impl Proposal<'_> {
    fn lookup(&self, r: &impl Readable, kind: &str, name: &str) -> Result<Option<ConfigEntry>> {
        if kind == self.kind && name == self.name {
            return Ok(self.entry.cloned());
        }
        lookup(r, kind, name)
    }
}

/// `validateProposedConfigEntryInGraph`, for the parts that apply on a single node: the mesh's
/// permissive-mTLS switch, one gateway kind per name, and ingress listeners whose protocol
/// must match the protocol of the services they expose.
fn check_graph(
    r: &impl Readable,
    kind: &str,
    name: &str,
    new: Option<&ConfigEntry>,
    existing: Option<&ConfigEntry>,
) -> Result<()> {
    let proposal = Proposal {
        kind,
        name,
        entry: new,
    };
    match kind {
        PROXY_DEFAULTS_KIND | SERVICE_DEFAULTS_KIND => {
            if let Some(new) = new {
                check_mutual_tls(r, new, existing)?;
            }
        }
        INGRESS_GATEWAY_KIND => check_gateway_clash(r, name, kind, TERMINATING_GATEWAY_KIND)?,
        TERMINATING_GATEWAY_KIND => {
            check_gateway_clash(r, name, kind, INGRESS_GATEWAY_KIND)?;
            return Ok(());
        }
        _ => {}
    }
    check_routing_protocols(r, &proposal)?;
    let (gateways, strict) = match kind {
        // Editing an ingress gateway itself: its listeners must match exactly.
        INGRESS_GATEWAY_KIND => (
            new.and_then(ConfigEntry::ingress).into_iter().collect(),
            true,
        ),
        PROXY_DEFAULTS_KIND => (ingress_gateways(r)?, false),
        SERVICE_DEFAULTS_KIND
        | SERVICE_ROUTER_KIND
        | SERVICE_SPLITTER_KIND
        | SERVICE_RESOLVER_KIND => {
            let mut linked = ingress_gateways(r)?;
            linked.retain(|g| exposes(g, name));
            (linked, false)
        }
        _ => return Ok(()),
    };
    for gateway in &gateways {
        check_ingress_protocols(r, &proposal, gateway, strict)?;
    }
    Ok(())
}

/// Every stored ingress gateway's listeners.
fn ingress_gateways(r: &impl Readable) -> Result<Vec<IngressGateway>> {
    Ok(of_kind(r, INGRESS_GATEWAY_KIND)?
        .iter()
        .filter_map(ConfigEntry::ingress)
        .collect())
}

/// Whether an ingress gateway lists `service` by name on some listener.
fn exposes(gateway: &IngressGateway, service: &str) -> bool {
    gateway
        .listeners
        .iter()
        .any(|l| l.services.iter().any(|s| s.name == service))
}

fn check_mutual_tls(
    r: &impl Readable,
    new: &ConfigEntry,
    existing: Option<&ConfigEntry>,
) -> Result<()> {
    let mode = new.mutual_tls_mode();
    if mode != "permissive" || existing.is_some_and(|e| e.mutual_tls_mode() == mode) {
        return Ok(());
    }
    let allowed = lookup(r, MESH_KIND, MESH_NAME)?.is_some_and(|m| m.allows_permissive_mtls());
    if !allowed {
        return Err(rejected("cannot set MutualTLSMode=permissive because AllowEnablingPermissiveMutualTLS=false in the mesh config entry".into()));
    }
    Ok(())
}

fn check_gateway_clash(r: &impl Readable, name: &str, kind: &str, other: &str) -> Result<()> {
    if lookup(r, other, name)?.is_some() {
        return Err(rejected(format!(
            "cannot create a {kind:?} config entry with name {name:?}, a {other:?} config entry with that name already exists"
        )));
    }
    Ok(())
}

/// The protocol of a service's discovery chain: its service-defaults, else the global
/// proxy-defaults' `Config.protocol`, else `tcp`.
fn chain_protocol(r: &impl Readable, proposal: &Proposal, service: &str) -> Result<String> {
    if let Some(p) = proposal
        .lookup(r, SERVICE_DEFAULTS_KIND, service)?
        .and_then(|e| e.protocol())
    {
        return Ok(p);
    }
    Ok(proposal
        .lookup(r, PROXY_DEFAULTS_KIND, PROXY_DEFAULTS_NAME)?
        .and_then(|e| e.protocol())
        .unwrap_or_else(|| DEFAULT_PROTOCOL.into()))
}

/// Whether routers and splitters can work with `protocol` (Consul's
/// `EnableAdvancedRoutingForProtocol`).
pub fn routes_advanced(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

/// Consul compiles the discovery chain of every service a write touches; of what that can
/// refuse, this checks what applies on one datacenter: a router or splitter needs a protocol
/// that can route.
fn check_routing_protocols(r: &impl Readable, proposal: &Proposal) -> Result<()> {
    let services: Vec<String> = match proposal.kind {
        SERVICE_ROUTER_KIND | SERVICE_SPLITTER_KIND | SERVICE_DEFAULTS_KIND => {
            vec![proposal.name.to_string()]
        }
        PROXY_DEFAULTS_KIND => {
            let mut names: Vec<String> = of_kind(r, SERVICE_ROUTER_KIND)?
                .into_iter()
                .chain(of_kind(r, SERVICE_SPLITTER_KIND)?)
                .map(|e| e.name)
                .collect();
            names.sort();
            names.dedup();
            names
        }
        _ => return Ok(()),
    };
    for service in services {
        let protocol = chain_protocol(r, proposal, &service)?;
        if !routes_advanced(&protocol) && !starts_at_resolver(r, proposal, &service)? {
            return Err(rejected(format!(
                "discovery chain {service:?} uses a protocol {protocol:?} that does not permit advanced routing or splitting behavior"
            )));
        }
    }
    Ok(())
}

/// Whether a service's chain starts at its resolver (no router or splitter in front).
fn starts_at_resolver(r: &impl Readable, proposal: &Proposal, service: &str) -> Result<bool> {
    for kind in [SERVICE_ROUTER_KIND, SERVICE_SPLITTER_KIND] {
        if proposal.lookup(r, kind, service)?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An ingress listener's services must speak its protocol. Only when the gateway itself is
/// being written is that strict; otherwise a `tcp` listener may front any service whose chain
/// starts at its resolver, as in Consul.
fn check_ingress_protocols(
    r: &impl Readable,
    proposal: &Proposal,
    gateway: &IngressGateway,
    strict: bool,
) -> Result<()> {
    for listener in &gateway.listeners {
        let expected = listener.protocol.as_str();
        for service in listener.services.iter().filter(|s| s.name != WILDCARD) {
            let protocol = chain_protocol(r, proposal, &service.name)?;
            if protocol == expected {
                continue;
            }
            let tolerated = !strict
                && expected == DEFAULT_PROTOCOL
                && starts_at_resolver(r, proposal, &service.name)?;
            if !tolerated {
                return Err(rejected(format!(
                    "service {:?} has protocol {protocol:?}, which does not match defined listener protocol {expected:?}",
                    service.name
                )));
            }
        }
    }
    Ok(())
}

/// The protocol of `service`'s chain as stored (for gateway reads), watching the entries it
/// depends on.
pub fn service_protocol(r: &ReadTx, ws: &mut WatchSet, service: &str) -> Result<String> {
    ws.key(CONFIG_ENTRIES.name, &key(SERVICE_DEFAULTS_KIND, service));
    ws.key(
        CONFIG_ENTRIES.name,
        &key(PROXY_DEFAULTS_KIND, PROXY_DEFAULTS_NAME),
    );
    let nothing = Proposal {
        kind: "",
        name: "",
        entry: None,
    };
    chain_protocol(r, &nothing, service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Command, Store};
    use serde_json::json;

    fn entry(v: serde_json::Value) -> ConfigEntry {
        let mut e = ConfigEntry::decode(v).unwrap();
        e.check().unwrap();
        e
    }

    async fn write(store: &Store, v: serde_json::Value, cas: Option<u64>) -> Result<bool> {
        let e = entry(v);
        store
            .apply(Command::ConfigEntrySet {
                entry: Box::new(e),
                cas,
            })
            .await
            .map(|o| o.applied())
    }

    async fn put(store: &Store, v: serde_json::Value) {
        write(store, v, None).await.unwrap();
    }

    /// Why a plain write of `v` is refused.
    async fn refused(store: &Store, v: serde_json::Value) -> String {
        write(store, v, None).await.unwrap_err().to_string()
    }

    fn read(store: &Store, kind: &str, name: &str) -> Option<ConfigEntry> {
        lookup(&store.read().unwrap(), kind, name).unwrap()
    }

    #[tokio::test]
    async fn cas_creates_only_when_absent_and_updates_only_at_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let web = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
        assert!(write(&store, web.clone(), Some(0)).await.unwrap());
        let first = read(&store, "service-defaults", "web").unwrap();
        assert_eq!(first.create_index, first.modify_index);
        let grpc = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
        assert!(!write(&store, grpc.clone(), Some(0)).await.unwrap());
        // Writing what is stored is a no-op that succeeds whatever the CAS index, as Consul's
        // endpoint skips it before checking the index.
        let before = store.read().unwrap().global_index().unwrap();
        assert!(write(&store, web.clone(), Some(0)).await.unwrap());
        assert!(write(&store, web.clone(), Some(first.modify_index + 5))
            .await
            .unwrap());
        assert_eq!(store.read().unwrap().global_index().unwrap(), before);
        assert!(!write(&store, grpc.clone(), Some(first.modify_index + 5))
            .await
            .unwrap());
        assert!(write(&store, grpc, Some(first.modify_index)).await.unwrap());
        let second = read(&store, "service-defaults", "web").unwrap();
        assert_eq!(second.create_index, first.create_index);
        assert!(second.modify_index > first.modify_index);
        // A plain rewrite of the same entry changes nothing.
        let before = store.read().unwrap().global_index().unwrap();
        assert!(write(
            &store,
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "GRPC"}),
            None
        )
        .await
        .unwrap());
        assert_eq!(store.read().unwrap().global_index().unwrap(), before);
        // Deletes: a CAS at the wrong index refuses; a missing entry is "deleted", CAS or not
        // (Consul's endpoint skips the delete and reports it done).
        let at = second.modify_index;
        assert!(!store
            .apply(Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: Some(at + 1),
            })
            .await
            .unwrap()
            .applied());
        assert!(store
            .apply(Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: Some(at),
            })
            .await
            .unwrap()
            .applied());
        let before = store.read().unwrap().global_index().unwrap();
        assert!(store
            .apply(Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: Some(1),
            })
            .await
            .unwrap()
            .applied());
        assert!(store
            .apply(Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: None,
            })
            .await
            .unwrap()
            .applied());
        assert_eq!(store.read().unwrap().global_index().unwrap(), before);
    }

    #[tokio::test]
    async fn a_write_wakes_its_entry_and_kind_watchers_and_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        put(&store, json!({"Kind": "service-defaults", "Name": "web"})).await;
        let watch = |read: &dyn Fn(&ReadTx, &mut WatchSet)| {
            let r = store.read().unwrap();
            let mut ws = WatchSet::new();
            read(&r, &mut ws);
            store.watches().register(ws, r.global_index().unwrap())
        };
        let web = watch(&|r, ws| drop(get(r, ws, "service-defaults", "web").unwrap()));
        let api = watch(&|r, ws| drop(get(r, ws, "service-defaults", "api").unwrap()));
        let defaults = watch(&|r, ws| drop(list(r, ws, Some("service-defaults")).unwrap()));
        let routers = watch(&|r, ws| drop(list(r, ws, Some("service-router")).unwrap()));
        let everything = watch(&|r, ws| drop(list(r, ws, None).unwrap()));
        put(
            &store,
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        )
        .await;
        let fired = |w: &crate::store::Watch| {
            let changed = w.changed();
            futures_util::FutureExt::now_or_never(changed).is_some()
        };
        assert!(fired(&web) && fired(&defaults) && fired(&everything));
        assert!(!fired(&api) && !fired(&routers));
    }

    #[tokio::test]
    async fn gateways_and_protocols_are_checked_against_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ingress = json!({"Kind": "ingress-gateway", "Name": "gw",
            "Listeners": [{"Port": 80, "Protocol": "http", "Services": [{"Name": "web"}]}]});
        let err = refused(&store, ingress.clone()).await;
        assert_eq!(
            err,
            r#"service "web" has protocol "tcp", which does not match defined listener protocol "http""#
        );
        put(
            &store,
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
        )
        .await;
        put(&store, ingress).await;
        // Now the service can't drop back to tcp, nor lose its defaults.
        let err = refused(
            &store,
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "tcp"}),
        )
        .await;
        assert!(
            err.contains("does not match defined listener protocol"),
            "{err}"
        );
        let err = store
            .apply(Command::ConfigEntryDelete {
                kind: "service-defaults".into(),
                name: "web".into(),
                cas: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Rejected(_)));
        // One gateway kind per name.
        let err = refused(&store, json!({"Kind": "terminating-gateway", "Name": "gw"})).await;
        assert_eq!(
            err,
            r#"cannot create a "terminating-gateway" config entry with name "gw", a "ingress-gateway" config entry with that name already exists"#
        );
        // Permissive mTLS needs the mesh's consent.
        let err = refused(
            &store,
            json!({"Kind": "proxy-defaults", "MutualTLSMode": "permissive"}),
        )
        .await;
        assert!(err.starts_with("cannot set MutualTLSMode=permissive"));
        put(
            &store,
            json!({"Kind": "mesh", "AllowEnablingPermissiveMutualTLS": true}),
        )
        .await;
        put(
            &store,
            json!({"Kind": "proxy-defaults", "MutualTLSMode": "permissive"}),
        )
        .await;
    }
}
