//! Service virtual IPs (Consul's `ServiceVirtualIP` table in `state/catalog.go`): each service
//! reached through the mesh (a Connect proxy or native instance registered for it, or a
//! resolver, router or splitter entry naming it) is given an address of 240.0.0.0/4 for
//! transparent proxies, and may carry manual addresses (`PUT
//! /v1/internal/service-virtual-ip`), each held by at most one service.
//!
//! Invariant: auto-assigned offsets are unique and handed out in increasing order (Consul's
//! counter). Consul also reuses the offset of a service whose last instance is gone; Legate
//! keeps a service's address for good, so the same service always gets the same address.

use super::error::{Result, StoreError};
use super::tables::SERVICE_VIRTUAL_IPS;
use super::{ReadTx, Readable, WatchSet, WriteTx};
use bincode::{Decode, Encode};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The tagged address under which a service instance shows its service's virtual IP; a
/// terminating gateway shows each linked service's under `consul-virtual:<service>`.
pub const TAGGED_ADDRESS: &str = "consul-virtual";

/// The tagged address of a terminating gateway for `service`'s virtual IP (Consul's
/// `ServiceGatewayVirtualIPTag`).
pub fn gateway_tag(service: &str) -> String {
    format!("{TAGGED_ADDRESS}:{service}")
}

/// The services a terminating gateway's entry links by name (a `*` is no service).
pub fn linked_services(entry: &crate::types::config_entry::ConfigEntry) -> Vec<String> {
    entry
        .terminating()
        .unwrap_or_default()
        .services
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n != crate::types::config_entry::WILDCARD)
        .collect()
}

/// The first address of the range (offset 0, never assigned).
const START: Ipv4Addr = Ipv4Addr::new(240, 0, 0, 0);
/// One past the last offset of 240.0.0.0/4 that may be assigned (Consul's
/// `virtualIPMaxOffset`, 15.255.255.254).
const MAX_OFFSET: u32 = 0x0FFF_FFFE;

/// A service's virtual addresses.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ServiceVirtualIp {
    /// The auto-assigned address, as an offset from 240.0.0.0.
    pub offset: u32,
    /// Addresses assigned by hand, in the order given.
    pub manual_ips: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl super::codec::Record for ServiceVirtualIp {
    const VERSION: u8 = 1;
}

impl ServiceVirtualIp {
    /// The auto-assigned address.
    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(START) + self.offset)
    }
}

/// The virtual IPs of `service`, if it has any, with the table's index.
pub fn get(
    r: &ReadTx,
    ws: &mut WatchSet,
    service: &str,
) -> Result<(u64, Option<ServiceVirtualIp>)> {
    ws.table(SERVICE_VIRTUAL_IPS.name);
    Ok((
        r.table_index(SERVICE_VIRTUAL_IPS.name)?,
        r.get(SERVICE_VIRTUAL_IPS, service)?,
    ))
}

/// The auto-assigned address of `service`, assigning the next free one if it has none
/// (Consul's `assignServiceVirtualIP`).
pub fn assign(tx: &mut WriteTx, service: &str) -> Result<Ipv4Addr> {
    if let Some(existing) = tx.get(SERVICE_VIRTUAL_IPS, service)? {
        return Ok(existing.address());
    }
    let highest = tx
        .scan_prefix(SERVICE_VIRTUAL_IPS, "")?
        .into_iter()
        .map(|(_, v)| v.offset)
        .max()
        .unwrap_or(0);
    let offset = highest + 1;
    if offset >= MAX_OFFSET {
        return Err(StoreError::Invalid(
            "cannot allocate any more unique service virtual IPs".into(),
        ));
    }
    let index = tx.index();
    let record = ServiceVirtualIp {
        offset,
        manual_ips: Vec::new(),
        create_index: index,
        modify_index: index,
    };
    tx.put(SERVICE_VIRTUAL_IPS, service, &record)?;
    Ok(record.address())
}

/// What assigning manual addresses did: whether the service has virtual IPs at all (nothing
/// changes when it has none), and the services that gave up some of the addresses.
#[derive(Debug, PartialEq, Eq)]
pub struct ManualAssignment {
    pub found: bool,
    pub unassigned_from: Vec<String>,
}

/// Makes `ips` the manual addresses of `service`, taking each away from any other service
/// that held it (Consul's `AssignManualServiceVIPs`).
pub fn assign_manual(
    tx: &mut WriteTx,
    service: &str,
    ips: Vec<String>,
) -> Result<ManualAssignment> {
    let Some(mut target) = tx.get(SERVICE_VIRTUAL_IPS, service)? else {
        return Ok(ManualAssignment {
            found: false,
            unassigned_from: Vec::new(),
        });
    };
    let index = tx.index();
    let taken: BTreeSet<&str> = ips.iter().map(String::as_str).collect();
    let mut unassigned_from = Vec::new();
    for (name, mut other) in tx.scan_prefix(SERVICE_VIRTUAL_IPS, "")? {
        if name == service
            || !other
                .manual_ips
                .iter()
                .any(|ip| taken.contains(ip.as_str()))
        {
            continue;
        }
        other.manual_ips.retain(|ip| !taken.contains(ip.as_str()));
        other.modify_index = index;
        tx.put(SERVICE_VIRTUAL_IPS, &name, &other)?;
        unassigned_from.push(name);
    }
    target.manual_ips = ips;
    target.modify_index = index;
    tx.put(SERVICE_VIRTUAL_IPS, service, &target)?;
    Ok(ManualAssignment {
        found: true,
        unassigned_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Command, Store};

    fn assign_manual_command(service: &str, ips: &[&str]) -> Command {
        Command::AssignManualVirtualIps {
            service: service.into(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn manual_addresses_move_between_services_and_need_a_known_service() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for name in ["one", "two"] {
            store
                .apply(Command::ConfigEntrySet {
                    entry: Box::new(crate::types::config_entry::ConfigEntry {
                        kind: "service-resolver".into(),
                        name: name.into(),
                        body: Default::default(),
                        meta: Default::default(),
                        create_index: 0,
                        modify_index: 0,
                    }),
                    cas: None,
                })
                .await
                .unwrap();
        }
        let missing = store
            .apply(assign_manual_command("missing", &["1.1.1.1"]))
            .await
            .unwrap();
        assert_eq!(missing.virtual_ips().map(|a| a.found), Some(false));
        store
            .apply(assign_manual_command("one", &["1.1.1.1", "2.2.2.2"]))
            .await
            .unwrap();
        let moved = store
            .apply(assign_manual_command("two", &["2.2.2.2"]))
            .await
            .unwrap()
            .virtual_ips()
            .unwrap();
        assert_eq!(moved.unassigned_from, ["one"]);
        let r = store.read().unwrap();
        let one = get(&r, &mut WatchSet::new(), "one").unwrap().1.unwrap();
        assert_eq!(one.manual_ips, ["1.1.1.1"]);
        assert_eq!(one.address(), Ipv4Addr::new(240, 0, 0, 1));
        let two = get(&r, &mut WatchSet::new(), "two").unwrap().1.unwrap();
        assert_eq!(two.address(), Ipv4Addr::new(240, 0, 0, 2));
    }
}
