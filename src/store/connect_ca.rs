//! The Connect CA (Consul's `state/connect_ca.go`): the one CA configuration (provider, its
//! settings, the cluster ID), the roots (the active one and those rotated out, each with the
//! cross-signed certificates its leaves carry) and the agent's leaf certificates by service.
//!
//! Private keys are kept here and nowhere else (the data dir is 0700); readers that render
//! roots or the configuration leave them out. Keys, serials and certificates are made before
//! the command that stores them is built (see `command`), so applying only copies them in.

use super::error::Result;
use super::tables::{CA_CONFIG, CA_LEAVES, CA_ROOTS};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::JsonValue;
use bincode::{Decode, Encode};
use std::fmt;

/// The only key of the `connect_ca_config` table.
const CONFIG_KEY: &str = "config";

/// Consul's `CAConfiguration`, with its cluster ID.
#[derive(Clone, PartialEq, Encode, Decode)]
pub struct CaConfig {
    pub provider: String,
    /// Fixed when the CA is first initialized; names the trust domain.
    pub cluster_id: String,
    /// The provider's settings as given (an object; `PrivateKey` included).
    pub config: JsonValue,
    /// As last set: whether that change rotated the root without cross-signing it.
    pub force_without_cross_signing: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `CaConfig` as version 1 stored it, before `force_without_cross_signing`.
#[derive(Decode)]
#[cfg_attr(test, derive(Encode))]
struct CaConfigV1 {
    provider: String,
    cluster_id: String,
    config: JsonValue,
    create_index: u64,
    modify_index: u64,
}

/// Without the settings, which may hold an imported root's private key.
impl fmt::Debug for CaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaConfig")
            .field("provider", &self.provider)
            .field("cluster_id", &self.cluster_id)
            .field("modify_index", &self.modify_index)
            .finish_non_exhaustive()
    }
}

/// Consul's `CARoot`, with its private key.
#[derive(Clone, PartialEq, Encode, Decode)]
pub struct CaRootRecord {
    pub id: String,
    pub name: String,
    pub serial_number: u64,
    pub signing_key_id: String,
    /// Unix seconds.
    pub not_before: u64,
    pub not_after: u64,
    pub root_cert: String,
    /// Certificates leaves of this root carry after it: the root cross-signed by the one it
    /// replaced.
    pub intermediate_certs: Vec<String>,
    pub private_key: String,
    pub private_key_type: String,
    pub private_key_bits: u32,
    pub active: bool,
    /// Unix milliseconds when a rotation made it inactive (0 while active).
    pub rotated_out_at_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl fmt::Debug for CaRootRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaRootRecord")
            .field("id", &self.id)
            .field("active", &self.active)
            .field("private_key_type", &self.private_key_type)
            .field("create_index", &self.create_index)
            .finish_non_exhaustive()
    }
}

/// A leaf certificate issued to a service through this agent (Consul's `IssuedCert`), cached
/// until its renewal time or until its root stops being the active one.
#[derive(Clone, PartialEq, Encode, Decode)]
pub struct LeafRecord {
    pub service: String,
    pub service_uri: String,
    pub serial_number: String,
    /// The leaf followed by its root's intermediates.
    pub cert_pem: String,
    pub private_key_pem: String,
    /// Unix seconds.
    pub valid_after: u64,
    pub valid_before: u64,
    /// Unix seconds from which a read issues a new one: a random point of the validity
    /// window, drawn when it was issued.
    pub renew_after: u64,
    /// The ID of the root that signed it.
    pub root_id: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl fmt::Debug for LeafRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeafRecord")
            .field("service", &self.service)
            .field("serial_number", &self.serial_number)
            .field("root_id", &self.root_id)
            .finish_non_exhaustive()
    }
}

impl super::codec::Record for CaConfig {
    const VERSION: u8 = 2;

    fn decode_version(version: u8, payload: &[u8]) -> std::result::Result<Self, String> {
        if version != 1 {
            return Err(format!("unknown CaConfig record version {version}"));
        }
        let v1: CaConfigV1 = super::codec::decode_payload(payload)?;
        Ok(CaConfig {
            provider: v1.provider,
            cluster_id: v1.cluster_id,
            config: v1.config,
            force_without_cross_signing: false,
            create_index: v1.create_index,
            modify_index: v1.modify_index,
        })
    }
}
impl super::codec::Record for CaRootRecord {
    const VERSION: u8 = 1;
}
impl super::codec::Record for LeafRecord {
    const VERSION: u8 = 1;
}

/// The stored configuration, if the CA was initialized.
pub fn config(r: &ReadTx, ws: &mut WatchSet) -> Result<Option<CaConfig>> {
    ws.table(CA_CONFIG.name);
    r.get(CA_CONFIG, CONFIG_KEY)
}

/// Every root by ID (Consul's order), with the table's index.
pub fn roots(r: &impl Readable, ws: &mut WatchSet) -> Result<(u64, Vec<CaRootRecord>)> {
    ws.table(CA_ROOTS.name);
    let roots = r.scan_prefix(CA_ROOTS, "")?;
    Ok((
        r.table_index(CA_ROOTS.name)?,
        roots.into_iter().map(|(_, root)| root).collect(),
    ))
}

/// The root that signs new leaves.
pub fn active_root(r: &impl Readable, ws: &mut WatchSet) -> Result<Option<CaRootRecord>> {
    Ok(roots(r, ws)?.1.into_iter().find(|root| root.active))
}

/// The cached leaf of `service`.
pub fn leaf(r: &ReadTx, ws: &mut WatchSet, service: &str) -> Result<Option<LeafRecord>> {
    ws.key(CA_LEAVES.name, service);
    r.get(CA_LEAVES, service)
}

/// Stores the first configuration and its root unless the CA is already initialized (what a
/// Consul leader does when it finds no CA).
pub fn initialize(tx: &mut WriteTx, config: CaConfig, root: CaRootRecord) -> Result<()> {
    if tx.get(CA_CONFIG, CONFIG_KEY)?.is_some() {
        return Ok(());
    }
    let index = tx.index();
    let config = CaConfig {
        create_index: index,
        modify_index: index,
        ..config
    };
    tx.put(CA_CONFIG, CONFIG_KEY, &config)?;
    put_root(tx, root)
}

/// Replaces the provider, its settings and `ForceWithoutCrossSigning` (the cluster ID stays) and, with `new_root`, rotates: the
/// active root becomes inactive and `new_root` (cross-signed by it) the active one. Refused
/// (`false`) when the active root is no longer `rotates_from`: the change was decided (and
/// `new_root` cross-signed) against a root another write has replaced since.
pub fn set_config(
    tx: &mut WriteTx,
    config: CaConfig,
    new_root: Option<CaRootRecord>,
    rotates_from: &str,
) -> Result<bool> {
    let Some(current) = tx.get(CA_CONFIG, CONFIG_KEY)? else {
        return Ok(false);
    };
    let active = active_root(tx, &mut WatchSet::new())?;
    if active.as_ref().map(|r| r.id.as_str()) != Some(rotates_from) {
        return Ok(false);
    }
    let index = tx.index();
    let config = CaConfig {
        provider: config.provider,
        config: config.config,
        force_without_cross_signing: config.force_without_cross_signing,
        modify_index: index,
        ..current
    };
    tx.put(CA_CONFIG, CONFIG_KEY, &config)?;
    if let (Some(new_root), Some(old)) = (new_root, active) {
        let now = tx.now_ms();
        let retired = CaRootRecord {
            active: false,
            rotated_out_at_ms: now,
            modify_index: index,
            ..old
        };
        tx.put(CA_ROOTS, &retired.id.clone(), &retired)?;
        put_root(tx, new_root)?;
    }
    Ok(true)
}

fn put_root(tx: &mut WriteTx, root: CaRootRecord) -> Result<()> {
    let index = tx.index();
    let root = CaRootRecord {
        active: true,
        rotated_out_at_ms: 0,
        create_index: index,
        modify_index: index,
        ..root
    };
    tx.put(CA_ROOTS, &root.id.clone(), &root)
}

/// Caches a newly issued leaf for its service (each certificate is new: both its indexes are
/// this write's), unless the cached one is no longer `replaces` (the serial the issuer saw, or
/// none): another issuer got there first and its leaf stands (`false`).
pub fn put_leaf(tx: &mut WriteTx, leaf: LeafRecord, replaces: Option<&str>) -> Result<bool> {
    let current = tx.get::<LeafRecord>(CA_LEAVES, &leaf.service)?;
    if current.as_ref().map(|l| l.serial_number.as_str()) != replaces {
        return Ok(false);
    }
    let index = tx.index();
    let leaf = LeafRecord {
        create_index: index,
        modify_index: index,
        ..leaf
    };
    tx.put(CA_LEAVES, &leaf.service.clone(), &leaf)?;
    Ok(true)
}

/// Removes the roots rotated out before `rotated_out_before_ms` (Unix milliseconds; Consul's
/// leader prunes a root once two leaf lifetimes have passed since its rotation, so no leaf it
/// signed is still valid). The active root is never removed. Returns how many went.
pub fn prune_roots(tx: &mut WriteTx, rotated_out_before_ms: u64) -> Result<usize> {
    let (_, roots) = roots(tx, &mut WatchSet::new())?;
    let mut pruned = 0;
    for root in roots {
        if !root.active
            && root.rotated_out_at_ms != 0
            && root.rotated_out_at_ms < rotated_out_before_ms
        {
            tx.delete(CA_ROOTS, &root.id)?;
            pruned += 1;
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{codec, Command, Store};

    fn leaf(serial: &str) -> LeafRecord {
        LeafRecord {
            service: "web".into(),
            service_uri: "spiffe://c.consul/ns/default/dc/dc1/svc/web".into(),
            serial_number: serial.into(),
            cert_pem: String::new(),
            private_key_pem: String::new(),
            valid_after: 0,
            valid_before: 7200,
            renew_after: 3600,
            root_id: "root".into(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Two issuers that saw no leaf: the first one's stands, the second is refused; a reissue
    /// that names the cached serial replaces it.
    #[tokio::test]
    async fn a_leaf_replaces_only_the_serial_its_issuer_saw() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let issue = |serial: &str, replaces: Option<&str>| Command::ConnectCaLeafIssued {
            leaf: Box::new(leaf(serial)),
            replaces: replaces.map(String::from),
        };
        let cached = |store: &Store| {
            super::leaf(&store.read().unwrap(), &mut WatchSet::new(), "web")
                .unwrap()
                .map(|l| l.serial_number)
        };
        assert!(store.apply(issue("01", None)).await.unwrap().applied());
        assert!(!store.apply(issue("02", None)).await.unwrap().applied());
        assert_eq!(cached(&store).as_deref(), Some("01"));
        assert!(!store
            .apply(issue("03", Some("02")))
            .await
            .unwrap()
            .applied());
        assert!(store
            .apply(issue("04", Some("01")))
            .await
            .unwrap()
            .applied());
        assert_eq!(cached(&store).as_deref(), Some("04"));
    }

    #[test]
    fn a_version_1_configuration_reads_as_not_forced() {
        let v1 = CaConfigV1 {
            provider: "consul".into(),
            cluster_id: "c1".into(),
            config: JsonValue(serde_json::json!({"LeafCertTTL": "72h"})),
            create_index: 3,
            modify_index: 4,
        };
        let mut bytes = vec![1];
        bytes.extend(bincode::encode_to_vec(&v1, bincode::config::standard()).unwrap());
        let read: CaConfig = codec::decode("connect_ca_config", "config", &bytes).unwrap();
        assert_eq!(
            (
                read.cluster_id.as_str(),
                read.force_without_cross_signing,
                read.modify_index
            ),
            ("c1", false, 4)
        );
        let again: CaConfig =
            codec::decode("connect_ca_config", "config", &codec::encode(&read)).unwrap();
        assert!(again == read);
    }
}
