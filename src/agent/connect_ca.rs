//! The Connect CA as a Consul server's CA manager and an agent's leaf-cert manager run it:
//! the CA is initialized when the agent comes up, reconfigured (rotating its root when the
//! key or an imported root changes) through `PUT /v1/connect/ca/configuration`, and leaves
//! are signed locally, cached in the store and reissued when they near expiry or the active
//! root changes.
//!
//! Everything random or timed (cluster ID, keys, certificates, the renewal point) is made
//! here, before the command that stores it is built.

use super::{AgentError, Ctx};
use crate::connect::{
    self, cross_sign, generate_root, import_root, sign_leaf, CaRoot, CaSettings, CaSigner, CertUri,
    LeafRequest,
};
use crate::store::connect_ca::{self as store_ca, CaConfig, CaRootRecord, LeafRecord};
use crate::store::{Command, Outcome, ReadTx, Store, StoreError, WatchSet};
use crate::types::JsonValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The only provider: Consul's built-in CA.
pub const PROVIDER: &str = "consul";

/// Consul names every root of its built-in provider this way.
const ROOT_NAME: &str = "Consul CA Primary Cert";

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Consul's `ErrConnectNotEnabled`.
    #[error("Connect must be enabled in order to use this endpoint")]
    Disabled,
    /// A configuration the provider refuses; nothing was changed.
    #[error("{0}")]
    BadConfig(String),
    /// The CA is missing or the crypto failed.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<connect::Error> for CaError {
    fn from(e: connect::Error) -> Self {
        CaError::Failed(e.to_string())
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(crate::clock::now_ms())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Key generation (RSA above all) and signing take milliseconds to seconds: off the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CaError> + Send + 'static,
) -> Result<T, CaError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CaError::Failed(format!("CA task failed: {e}")))?
}

/// The root `settings` ask for: the imported one, else a new one of their key type.
fn make_root(cluster_id: &str, settings: &CaSettings) -> Result<CaRoot, CaError> {
    Ok(if settings.root_cert.is_empty() {
        generate_root(cluster_id, settings.key, settings.root_cert_ttl, now())?
    } else {
        import_root(&settings.private_key, &settings.root_cert)
            .map_err(|e| CaError::BadConfig(e.to_string()))?
    })
}

fn root_record(root: CaRoot, intermediate_certs: Vec<String>) -> CaRootRecord {
    CaRootRecord {
        id: root.id,
        name: ROOT_NAME.into(),
        serial_number: root.serial_number,
        signing_key_id: root.signing_key_id,
        not_before: unix_secs(root.not_before),
        not_after: unix_secs(root.not_after),
        root_cert: root.root_cert_pem,
        intermediate_certs,
        private_key: root.private_key_pem,
        private_key_type: root.private_key_type.as_str().into(),
        private_key_bits: root.private_key_bits,
        active: true,
        rotated_out_at_ms: 0,
        create_index: 0,
        modify_index: 0,
    }
}

fn settings_of(config: &CaConfig) -> Result<CaSettings, CaError> {
    let empty = Map::new();
    CaSettings::parse(config.config.0.as_object().unwrap_or(&empty))
        .map_err(|e| CaError::Failed(format!("stored CA configuration is invalid: {e}")))
}

/// Initializes the CA from the agent's `connect.ca_config` when none is stored (a Consul
/// leader's `initializeCA`); a stored CA is kept whatever the config file says now.
pub async fn initialize(ctx: &Ctx) -> Result<(), AgentError> {
    if store_ca::config(&ctx.store.read()?, &mut WatchSet::new())?.is_some() {
        return Ok(());
    }
    let map = ctx.config.connect.ca_config.clone();
    let fail = |e: CaError| AgentError::Io(format!("cannot initialize the Connect CA: {e}"));
    let settings = CaSettings::parse(&map).map_err(|e| fail(CaError::BadConfig(e)))?;
    let cluster_id = uuid::Uuid::new_v4().to_string();
    let id = cluster_id.clone();
    let root = blocking(move || make_root(&id, &settings))
        .await
        .map_err(fail)?;
    let config = CaConfig {
        provider: ctx.config.connect.ca_provider.clone(),
        cluster_id,
        config: JsonValue(Value::Object(map)),
        force_without_cross_signing: false,
        create_index: 0,
        modify_index: 0,
    };
    let root = root_record(root, Vec::new());
    tracing::info!(root = %root.id, "initialized the Connect CA with a new root");
    ctx.store
        .apply(Command::ConnectCaInitialize {
            config: Box::new(config),
            root: Box::new(root),
        })
        .await?;
    Ok(())
}

/// The stored configuration and active root of an enabled, initialized CA.
fn current(ctx: &Ctx) -> Result<(CaConfig, CaRootRecord), CaError> {
    current_in(ctx, &ctx.store.read()?)
}

/// `current`, read in a transaction the caller goes on reading.
fn current_in(ctx: &Ctx, read: &ReadTx) -> Result<(CaConfig, CaRootRecord), CaError> {
    if !ctx.config.connect.enabled {
        return Err(CaError::Disabled);
    }
    let mut ws = WatchSet::new();
    match (
        store_ca::config(read, &mut ws)?,
        store_ca::active_root(read, &mut ws)?,
    ) {
        (Some(config), Some(root)) => Ok((config, root)),
        _ => Err(CaError::Failed("the Connect CA is not initialized".into())),
    }
}

/// The stored configuration (Consul's `ConnectCA.ConfigurationGet`).
pub fn configuration(ctx: &Ctx) -> Result<CaConfig, CaError> {
    Ok(current(ctx)?.0)
}

/// A `PUT /v1/connect/ca/configuration` body.
pub struct CaConfigRequest {
    pub provider: String,
    pub config: Map<String, Value>,
    /// Rotate without having the current root cross-sign the new one.
    pub force_without_cross_signing: bool,
}

/// Applies a new provider configuration (Consul's `ConnectCA.ConfigurationSet`): validated
/// first, so a refused one changes nothing; a different key type or size, or a different
/// imported root, rotates to a new root cross-signed by the current one (unless
/// `ForceWithoutCrossSigning`), which stays trusted.
pub async fn set_configuration(ctx: &Ctx, request: CaConfigRequest) -> Result<(), CaError> {
    let (config, active) = current(ctx)?;
    let CaConfigRequest {
        provider,
        config: map,
        force_without_cross_signing,
    } = request;
    if provider != PROVIDER {
        return Err(CaError::BadConfig(format!(
            "could not initialize provider: unknown CA provider {provider:?} (Legate has only the built-in \"consul\" provider)"
        )));
    }
    // Consul's no-op check compares the provider and its settings only.
    if provider == config.provider && Some(&map) == config.config.0.as_object() {
        return Ok(());
    }
    let settings = CaSettings::parse(&map)
        .map_err(|e| CaError::BadConfig(format!("error configuring provider: {e}")))?;
    let cluster_id = config.cluster_id.clone();
    let old = active.clone();
    let new_root = blocking(move || {
        let rotate = if settings.root_cert.is_empty() {
            settings.key.key_type.as_str() != old.private_key_type
                || settings.key.bits != old.private_key_bits
        } else {
            true
        };
        if !rotate {
            return Ok(None);
        }
        let root = make_root(&cluster_id, &settings)?;
        if root.id == old.id {
            return Ok(None);
        }
        if force_without_cross_signing {
            tracing::warn!(
                "ForceWithoutCrossSigning set, CA reconfiguration skipping cross-signing"
            );
            return Ok(Some(root_record(root, Vec::new())));
        }
        let signer = CaSigner {
            cert_pem: &old.root_cert,
            private_key_pem: &old.private_key,
        };
        let cross_signed = cross_sign(signer, &root.root_cert_pem, now())?;
        Ok(Some(root_record(root, vec![cross_signed])))
    })
    .await?;
    if let Some(root) = &new_root {
        tracing::info!(from = %active.id, to = %root.id, "rotating the Connect CA root");
    }
    let applied = ctx
        .store
        .apply(Command::ConnectCaSetConfig {
            config: Box::new(CaConfig {
                provider,
                config: JsonValue(Value::Object(map)),
                force_without_cross_signing,
                ..config
            }),
            new_root: new_root.map(Box::new),
            rotates_from: active.id,
        })
        .await?
        .applied();
    if !applied {
        return Err(CaError::Failed(
            "the CA root changed while this configuration was applied; retry".into(),
        ));
    }
    Ok(())
}

/// How often Consul's leader looks for roots to prune.
const ROOT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Removes the roots rotated out more than two leaf lifetimes before `now_ms` (Consul's
/// `pruneCARoots`: no leaf they signed can still be valid); writes only when one is due.
pub async fn prune_roots(store: &Store, now_ms: u64) -> Result<usize, CaError> {
    let read = store.read()?;
    let mut ws = WatchSet::new();
    let Some(config) = store_ca::config(&read, &mut ws)? else {
        return Ok(0);
    };
    let leaf_ttl = settings_of(&config)?.leaf_cert_ttl;
    let cutoff = now_ms.saturating_sub(2 * leaf_ttl.as_millis() as u64);
    let (_, roots) = store_ca::roots(&read, &mut ws)?;
    drop(read);
    if !roots
        .iter()
        .any(|r| !r.active && r.rotated_out_at_ms != 0 && r.rotated_out_at_ms < cutoff)
    {
        return Ok(0);
    }
    let outcome = store
        .apply(Command::ConnectCaPruneRoots {
            rotated_out_before_ms: cutoff,
        })
        .await?;
    Ok(match outcome {
        Outcome::Reaped(n) => n,
        _ => 0,
    })
}

/// Prunes rotated-out roots at start, then every `ROOT_PRUNE_INTERVAL` as Consul's leader does.
pub async fn prune_roots_periodically(store: Store) {
    let mut tick = tokio::time::interval(ROOT_PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        match prune_roots(&store, crate::clock::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned old unused Connect CA roots"),
            Err(CaError::Store(StoreError::Closed)) => return,
            Err(e) => tracing::warn!(error = %e, "Connect CA root pruning failed"),
        }
    }
}

/// Whether `leaf` may still be served: signed by the active root and not yet in its renewal
/// window.
fn is_fresh(leaf: &LeafRecord, active_root: &str, now_secs: u64) -> bool {
    leaf.root_id == active_root && now_secs < leaf.renew_after
}

/// For a blocking leaf query: the cached leaf's index while it may be served, else
/// `u64::MAX`, so that a query waiting on it returns once a rotation (a write to the roots)
/// or a reissue (a write to the leaf) makes it stale, or its renewal point passes.
pub fn leaf_version(
    r: &ReadTx,
    ws: &mut WatchSet,
    service: &str,
) -> crate::store::Result<(u64, ())> {
    let active = store_ca::active_root(r, ws)?;
    let leaf = store_ca::leaf(r, ws, service)?;
    let index = match (leaf, active) {
        (Some(leaf), Some(root)) if is_fresh(&leaf, &root.id, unix_secs(now())) => {
            ws.stale_at(leaf.renew_after * 1000);
            leaf.modify_index
        }
        _ => u64::MAX,
    };
    Ok((index, ()))
}

/// One leaf issuance at a time per service: concurrent requests that find no fresh leaf
/// wait for the one signing and are answered with its certificate (Consul's leaf manager
/// runs one fetch per service as well), instead of each signing and caching its own.
#[derive(Default)]
pub struct LeafIssuers(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl LeafIssuers {
    async fn turn(&self, service: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut issuers = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // Locks nobody holds or waits for go: the map is as large as the issuances under way.
            issuers.retain(|_, lock| Arc::strong_count(lock) > 1);
            issuers.entry(service.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The cached leaf of `service` if it may be served, else what issuing its successor needs.
enum Cached {
    Fresh(LeafRecord),
    Due {
        config: Box<CaConfig>,
        root: Box<CaRootRecord>,
        /// The serial of the stale leaf the new one replaces.
        replaces: Option<String>,
    },
}

fn cached(ctx: &Ctx, service: &str) -> Result<Cached, CaError> {
    let read = ctx.store.read()?;
    let (config, root) = current_in(ctx, &read)?;
    let leaf = store_ca::leaf(&read, &mut WatchSet::new(), service)?;
    Ok(match leaf {
        Some(leaf) if is_fresh(&leaf, &root.id, unix_secs(now())) => Cached::Fresh(leaf),
        leaf => Cached::Due {
            config: Box::new(config),
            root: Box::new(root),
            replaces: leaf.map(|l| l.serial_number),
        },
    })
}

/// The leaf certificate of `service` (Consul's `AgentConnectCALeafCert`): the cached one
/// while fresh, else a new one signed by the active root (with its intermediates) and cached.
pub async fn leaf(ctx: &Ctx, service: &str) -> Result<LeafRecord, CaError> {
    if let Cached::Fresh(leaf) = cached(ctx, service)? {
        return Ok(leaf);
    }
    let _turn = ctx.leaf_issuers.turn(service).await;
    // The issuance that held the turn before may have cached a fresh one.
    let (config, root, replaces) = match cached(ctx, service)? {
        Cached::Fresh(leaf) => return Ok(leaf),
        Cached::Due {
            config,
            root,
            replaces,
        } => (*config, *root, replaces),
    };
    let settings = settings_of(&config)?;
    let id = CertUri::service(
        &connect::trust_domain(&config.cluster_id),
        &ctx.config.datacenter,
        service,
    );
    let service_name = service.to_string();
    let issued = blocking(move || {
        let request = LeafRequest {
            id: &id,
            dns_sans: &[],
            ttl: settings.leaf_cert_ttl,
        };
        let signer = CaSigner {
            cert_pem: &root.root_cert,
            private_key_pem: &root.private_key,
        };
        let issued = sign_leaf(signer, &root.intermediate_certs, &request, now())?;
        let (after, before) = (
            unix_secs(issued.valid_after),
            unix_secs(issued.valid_before),
        );
        // Consul's leaf-cert manager renews at a random point between 60% and 90% of the
        // lifetime, so leaves issued together don't all renew together; one living under ten
        // minutes (only with `SkipValidate`) is due at once.
        let lifetime = before.saturating_sub(after);
        let renew_after = if lifetime < 600 {
            after
        } else {
            after + lifetime * 6 / 10 + rand::random_range(0..=lifetime * 3 / 10)
        };
        Ok(LeafRecord {
            service: service_name,
            service_uri: issued.uri,
            serial_number: issued.serial_number,
            cert_pem: issued.cert_pem,
            private_key_pem: issued.private_key_pem,
            valid_after: after,
            valid_before: before,
            renew_after,
            root_id: root.id,
            create_index: 0,
            modify_index: 0,
        })
    })
    .await?;
    // Refused when another issuer (another server, one day) cached a leaf since: its leaf
    // stands, and is what this request answers too.
    ctx.store
        .apply(Command::ConnectCaLeafIssued {
            leaf: Box::new(issued),
            replaces,
        })
        .await?;
    store_ca::leaf(&ctx.store.read()?, &mut WatchSet::new(), service)?
        .ok_or_else(|| CaError::Failed(format!("the leaf of {service:?} was not stored")))
}
