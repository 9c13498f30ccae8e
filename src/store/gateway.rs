//! Gateways and the services they front (Consul's `gateway-services` table, derived here at
//! read time from the gateways' config entries and the catalog instead of being maintained on
//! every write).
//!
//! An ingress or terminating gateway fronts the services its config entry names, and with `*`
//! every registered service of no special kind (`consul` aside) that fits the gateway: for an
//! ingress gateway one with a Connect-capable instance whose protocol is the listener's, for a
//! terminating gateway one with an instance that isn't Connect-native, plus the
//! service-defaults destinations. A name listed explicitly beats the wildcard.
//!
//! Reads watch the gateway's entries and, for a wildcard, the catalog's services and the
//! entries that decide protocols; their index is the config entries' index or the catalog's,
//! whichever is later, so it moves whenever the result can.

use super::catalog::{self, Lookup};
use super::config_entry;
use super::error::Result;
use super::{ReadTx, WatchSet};
use crate::types::catalog::CheckServiceNode;
use crate::types::config_entry::{
    ConfigEntry, INGRESS_GATEWAY_KIND, SERVICE_DEFAULTS_KIND, TERMINATING_GATEWAY_KIND, WILDCARD,
};
use crate::types::gateway::{GatewayService, ServiceName};
use std::collections::BTreeSet;

/// `GatewayService.ServiceKind` of a catalog service and of a service-defaults destination.
const KIND_SERVICE: &str = "service";
const KIND_DESTINATION: &str = "destination";

/// Whether a wildcard of a `gateway_kind` gateway covers the registered service `name`
/// (Consul's `updateGatewayNamespace` / `checkGatewayWildcardsAndUpdate` rules).
fn wildcard_covers(
    r: &ReadTx,
    ws: &mut WatchSet,
    name: &str,
    gateway_kind: &str,
) -> Result<(u64, bool)> {
    // The servers' own service is never fronted by a wildcard.
    if name == catalog::CONSUL_SERVICE {
        return Ok((0, false));
    }
    let (index, instances) = catalog::service_instances(r, ws, name, Lookup::Service)?;
    if !instances.iter().any(|(_, s)| s.kind.is_empty()) {
        return Ok((index, false));
    }
    if gateway_kind == INGRESS_GATEWAY_KIND {
        let (connect_index, connect) = catalog::service_instances(r, ws, name, Lookup::Connect)?;
        return Ok((index.max(connect_index), !connect.is_empty()));
    }
    Ok((index, instances.iter().any(|(_, s)| !s.is_connect_native())))
}

/// Every registered service a wildcard of a `gateway_kind` gateway covers.
fn wildcard_services(
    r: &ReadTx,
    ws: &mut WatchSet,
    gateway_kind: &str,
) -> Result<(u64, Vec<String>)> {
    let (mut index, names) = catalog::services(r, ws)?;
    let mut out = Vec::new();
    for name in names.keys() {
        let (i, covered) = wildcard_covers(r, ws, name, gateway_kind)?;
        index = index.max(i);
        if covered {
            out.push(name.clone());
        }
    }
    Ok((index, out))
}

fn mapping(entry: &ConfigEntry, service: &str, gateway_kind: &str) -> GatewayService {
    GatewayService {
        gateway: ServiceName {
            name: entry.name.clone(),
        },
        service: ServiceName {
            name: service.to_string(),
        },
        gateway_kind: gateway_kind.to_string(),
        port: 0,
        protocol: String::new(),
        hosts: Vec::new(),
        ca_file: String::new(),
        cert_file: String::new(),
        key_file: String::new(),
        sni: String::new(),
        from_wildcard: false,
        service_kind: String::new(),
        // The associations change with the entry, so they carry its index.
        create_index: entry.modify_index,
        modify_index: entry.modify_index,
    }
}

fn ingress_services(
    r: &ReadTx,
    ws: &mut WatchSet,
    entry: &ConfigEntry,
    out: &mut Vec<GatewayService>,
) -> Result<u64> {
    let mut index = 0;
    // What a wildcard covers depends on the catalog alone: read once for every listener.
    let mut wildcard: Option<Vec<String>> = None;
    for listener in entry.ingress().unwrap_or_default().listeners {
        let with_listener = |service: &str| GatewayService {
            port: listener.port,
            protocol: listener.protocol.clone(),
            ..mapping(entry, service, INGRESS_GATEWAY_KIND)
        };
        let explicit: BTreeSet<&str> = listener
            .services
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| *n != WILDCARD)
            .collect();
        for service in listener.services.iter().filter(|s| s.name != WILDCARD) {
            out.push(GatewayService {
                hosts: service.hosts.clone(),
                ..with_listener(&service.name)
            });
        }
        if explicit.len() == listener.services.len() {
            continue;
        }
        if wildcard.is_none() {
            let (i, covered) = wildcard_services(r, ws, INGRESS_GATEWAY_KIND)?;
            index = index.max(i);
            wildcard = Some(covered);
        }
        let covered = wildcard.iter().flatten();
        for name in covered.filter(|n| !explicit.contains(n.as_str())) {
            // A wildcard only reaches services that speak the listener's protocol.
            if config_entry::service_protocol(r, ws, name)? != listener.protocol {
                continue;
            }
            out.push(GatewayService {
                from_wildcard: true,
                ..with_listener(name)
            });
        }
    }
    Ok(index)
}

/// Consul's `GatewayServiceKind`: registered, else a destination, else not known yet.
fn service_kind(r: &ReadTx, ws: &mut WatchSet, name: &str) -> Result<(u64, &'static str)> {
    let (index, instances) = catalog::service_instances(r, ws, name, Lookup::Service)?;
    if !instances.is_empty() {
        return Ok((index, KIND_SERVICE));
    }
    let (_, defaults) = config_entry::get(r, ws, SERVICE_DEFAULTS_KIND, name)?;
    let destination = defaults.is_some_and(|d| d.has_destination());
    Ok((index, if destination { KIND_DESTINATION } else { "" }))
}

fn terminating_services(
    r: &ReadTx,
    ws: &mut WatchSet,
    entry: &ConfigEntry,
    out: &mut Vec<GatewayService>,
) -> Result<u64> {
    let services = entry.terminating().unwrap_or_default().services;
    let mut index = 0;
    let linked = |svc: &crate::types::config_entry::LinkedService, name: &str| GatewayService {
        ca_file: svc.ca_file.clone(),
        cert_file: svc.cert_file.clone(),
        key_file: svc.key_file.clone(),
        sni: svc.sni.clone(),
        ..mapping(entry, name, TERMINATING_GATEWAY_KIND)
    };
    let explicit: BTreeSet<&str> = services
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| *n != WILDCARD)
        .collect();
    for svc in services.iter().filter(|s| s.name != WILDCARD) {
        let (i, kind) = service_kind(r, ws, &svc.name)?;
        index = index.max(i);
        out.push(GatewayService {
            service_kind: kind.to_string(),
            ..linked(svc, &svc.name)
        });
    }
    let Some(wildcard) = services.iter().find(|s| s.name == WILDCARD) else {
        return Ok(index);
    };
    let (i, covered) = wildcard_services(r, ws, TERMINATING_GATEWAY_KIND)?;
    index = index.max(i);
    let (_, defaults) = config_entry::list(r, ws, Some(SERVICE_DEFAULTS_KIND))?;
    let destinations = defaults
        .iter()
        .filter(|d| d.has_destination())
        .map(|d| (d.name.clone(), KIND_DESTINATION));
    let mut seen = explicit
        .iter()
        .map(|n| n.to_string())
        .collect::<BTreeSet<_>>();
    for (name, kind) in covered
        .into_iter()
        .map(|n| (n, KIND_SERVICE))
        .chain(destinations)
    {
        if !seen.insert(name.clone()) {
            continue;
        }
        out.push(GatewayService {
            from_wildcard: true,
            service_kind: kind.to_string(),
            ..linked(wildcard, &name)
        });
    }
    Ok(index)
}

/// The services a gateway fronts (`/v1/catalog/gateway-services/<gateway>`), by service name
/// and port; empty for a name with no gateway entry.
pub fn services(
    r: &ReadTx,
    ws: &mut WatchSet,
    gateway: &str,
) -> Result<(u64, Vec<GatewayService>)> {
    let mut out = Vec::new();
    let (mut index, ingress) = config_entry::get(r, ws, INGRESS_GATEWAY_KIND, gateway)?;
    if let Some(entry) = ingress {
        index = index.max(ingress_services(r, ws, &entry, &mut out)?);
    }
    let (_, terminating) = config_entry::get(r, ws, TERMINATING_GATEWAY_KIND, gateway)?;
    if let Some(entry) = terminating {
        index = index.max(terminating_services(r, ws, &entry, &mut out)?);
    }
    out.sort_by(|a, b| (&a.service.name, a.port).cmp(&(&b.service.name, b.port)));
    Ok((index, out))
}

/// The services of every ingress and terminating gateway (Consul's `DumpGatewayServices`).
pub fn all_services(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<GatewayService>)> {
    let mut index = 0;
    let mut out = Vec::new();
    for kind in [INGRESS_GATEWAY_KIND, TERMINATING_GATEWAY_KIND] {
        let (i, entries) = config_entry::list(r, ws, Some(kind))?;
        index = index.max(i);
        for entry in entries {
            let (i, mut services) = services(r, ws, &entry.name)?;
            index = index.max(i);
            out.append(&mut services);
        }
    }
    Ok((index, out))
}

/// The instances, with their checks, of every ingress gateway that fronts `service` by name or
/// by wildcard (`/v1/health/ingress/<service>`; Consul's `CheckIngressServiceNodes`). Unlike
/// `services`, the wildcard here ignores protocols, as Consul's lookup does.
pub fn ingress_nodes(
    r: &ReadTx,
    ws: &mut WatchSet,
    service: &str,
) -> Result<(u64, Vec<CheckServiceNode>)> {
    let (mut index, gateways) = config_entry::list(r, ws, Some(INGRESS_GATEWAY_KIND))?;
    let mut covered_by_wildcard: Option<bool> = None;
    let mut fronting = BTreeSet::new();
    for gateway in &gateways {
        let listeners = gateway.ingress().unwrap_or_default().listeners;
        let names = || {
            listeners
                .iter()
                .flat_map(|l| l.services.iter().map(|s| s.name.as_str()))
        };
        let by_name = names().any(|n| n == service);
        let by_wildcard = names().any(|n| n == WILDCARD) && {
            if covered_by_wildcard.is_none() {
                let (i, covered) = wildcard_covers(r, ws, service, INGRESS_GATEWAY_KIND)?;
                index = index.max(i);
                covered_by_wildcard = Some(covered);
            }
            covered_by_wildcard == Some(true)
        };
        if by_name || by_wildcard {
            fronting.insert(gateway.name.clone());
        }
    }
    let mut out = Vec::new();
    for gateway in fronting {
        let (i, nodes) = catalog::check_service_nodes(r, ws, &gateway, Lookup::Service)?;
        index = index.max(i);
        out.extend(nodes);
    }
    Ok((index, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::catalog::Registration;
    use crate::store::{Command, Store};
    use crate::types::catalog::{Node, NodeService};
    use crate::types::JsonValue;
    use serde_json::json;

    async fn put(store: &Store, v: serde_json::Value) {
        let mut e = ConfigEntry::decode(v).unwrap();
        e.check().unwrap();
        store
            .apply(Command::ConfigEntrySet {
                entry: Box::new(e),
                cas: None,
            })
            .await
            .unwrap();
    }

    async fn register(store: &Store, svc: NodeService) {
        let registration = Registration {
            node: Node {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                ..Default::default()
            },
            skip_node_update: false,
            service: Some(svc),
            checks: Vec::new(),
        };
        store
            .apply(Command::CatalogRegister(Box::new(registration)))
            .await
            .unwrap();
    }

    fn svc(id: &str, name: &str) -> NodeService {
        NodeService {
            id: id.into(),
            service: name.into(),
            ..Default::default()
        }
    }

    fn proxy_for(dest: &str) -> NodeService {
        NodeService {
            kind: "connect-proxy".into(),
            proxy: JsonValue(json!({"DestinationServiceName": dest})),
            ..svc(&format!("{dest}-proxy"), &format!("{dest}-sidecar-proxy"))
        }
    }

    fn names(store: &Store, gateway: &str) -> Vec<(String, bool)> {
        let r = store.read().unwrap();
        services(&r, &mut WatchSet::new(), gateway)
            .unwrap()
            .1
            .into_iter()
            .map(|g| (g.service.name, g.from_wildcard))
            .collect()
    }

    #[tokio::test]
    async fn wildcards_expand_to_fitting_services_and_names_win() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (id, name) in [
            ("web1", "web"),
            ("db1", "db"),
            ("api1", "api"),
            ("consul", "consul"),
        ] {
            register(&store, svc(id, name)).await;
        }
        register(&store, proxy_for("web")).await;
        register(&store, proxy_for("api")).await;
        put(
            &store,
            json!({"Kind": "proxy-defaults", "Config": {"protocol": "http"}}),
        )
        .await;
        put(
            &store,
            json!({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}),
        )
        .await;
        put(&store, json!({"Kind": "ingress-gateway", "Name": "in",
            "Listeners": [{"Port": 80, "Protocol": "http", "Services": [{"Name": "*"}, {"Name": "db"}]}]}))
        .await;
        // web has a proxy and speaks http; api speaks grpc; db is named; consul never counts.
        assert_eq!(
            names(&store, "in"),
            [("db".to_string(), false), ("web".to_string(), true)]
        );
        // Each wildcard listener fronts them (the catalog is read once for all of them).
        put(
            &store,
            json!({"Kind": "ingress-gateway", "Name": "in2", "Listeners": [
            {"Port": 80, "Protocol": "http", "Services": [{"Name": "*"}]},
            {"Port": 81, "Protocol": "http", "Services": [{"Name": "*"}]}]}),
        )
        .await;
        let r = store.read().unwrap();
        let ports: Vec<(String, i64)> = services(&r, &mut WatchSet::new(), "in2")
            .unwrap()
            .1
            .into_iter()
            .map(|g| (g.service.name, g.port))
            .collect();
        assert_eq!(ports, [("web".to_string(), 80), ("web".to_string(), 81)]);
        drop(r);
        put(&store, json!({"Kind": "service-defaults", "Name": "ext", "Destination": {"Addresses": ["ext.example"], "Port": 443}})).await;
        put(
            &store,
            json!({"Kind": "terminating-gateway", "Name": "out",
            "Services": [{"Name": "*", "SNI": "s"}, {"Name": "db", "CAFile": "ca"}]}),
        )
        .await;
        assert_eq!(
            names(&store, "out"),
            [
                ("api".to_string(), true),
                ("db".to_string(), false),
                ("ext".to_string(), true),
                ("web".to_string(), true)
            ]
        );
        let r = store.read().unwrap();
        let (_, out) = services(&r, &mut WatchSet::new(), "out").unwrap();
        assert_eq!(
            (out[1].ca_file.as_str(), out[1].service_kind.as_str()),
            ("ca", "service")
        );
        assert_eq!(
            (out[2].sni.as_str(), out[2].service_kind.as_str()),
            ("s", "destination")
        );
        let (_, nodes) = ingress_nodes(&r, &mut WatchSet::new(), "web").unwrap();
        assert!(
            nodes.is_empty(),
            "no instance of the gateway is registered yet"
        );
        drop(r);
        register(
            &store,
            NodeService {
                kind: "ingress-gateway".into(),
                port: 8080,
                ..svc("in-1", "in")
            },
        )
        .await;
        let r = store.read().unwrap();
        let (_, nodes) = ingress_nodes(&r, &mut WatchSet::new(), "web").unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].service.id, "in-1");
        assert!(ingress_nodes(&r, &mut WatchSet::new(), "nope")
            .unwrap()
            .1
            .is_empty());
    }
}
