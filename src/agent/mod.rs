//! The agent: its context (store, configuration, local services and checks, sessions, events),
//! how it is opened and brought up, and its background work. Serving it over HTTP is
//! `process`'s job; `http` reads this context and never the other way round.

pub mod acl;
pub mod acl_login;
pub mod checks;
pub mod connect_ca;
pub mod connlimit;
pub mod context;
pub mod definition;
pub mod discovery_chain;
pub mod events;
pub mod host;
pub mod intentions;
pub mod local;
pub mod logging;
pub mod ops;
pub mod prepared_query;
pub mod sessions;

use crate::config::Config;
use crate::store::{Command, Outcome, Store};
use crate::types::autopilot::AutopilotConfig;
use crate::types::catalog::{
    HealthCheck, Node, NodeService, PASSING, SERF_CHECK_ALIVE_OUTPUT, SERF_CHECK_ID,
    SERF_CHECK_NAME,
};
pub use context::{AgentContext, Ctx};
use local::{LocalAgent, Source};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long KV tombstones are kept (Consul's `tombstone_ttl` default).
const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(String),
}

/// Opens the data dir and the store and brings the agent up (its node, its config-file
/// definitions, the bootstrap config entries): everything a running agent is, before it
/// serves. The temp dir, for `-dev` without `-data-dir`, must live as long as the agent.
/// `opener` opens the store's database file (`store::file_database` but in disk-fault tests).
pub async fn open(
    config: Config,
    opener: &crate::store::DatabaseOpener,
) -> Result<(Ctx, Option<tempfile::TempDir>), AgentError> {
    let (data_dir, dev_dir) = match &config.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("legate-dev-")
                .tempdir()
                .map_err(|e| AgentError::Io(format!("cannot create a -dev data dir: {e}")))?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let store = Store::open_with(&data_dir, opener)?;
    store
        .metrics()
        .set_cumulative(!config.telemetry.prometheus_retention.is_zero());
    let node_id = node_id(&data_dir, config.node_id.as_deref())?;
    let local = LocalAgent::new(
        store.clone(),
        config.node_name.clone(),
        config.enable_script_checks,
        config.enable_local_script_checks,
    );
    let sessions = sessions::Sessions::new(
        store.clone(),
        config.node_name.clone(),
        config.session_ttl_min,
    );
    let ctx = Arc::new(AgentContext {
        leader_since: std::time::SystemTime::now(),
        ops: ops::Ops::new(&config, &data_dir).map_err(AgentError::Io)?,
        acl: acl::AclResolver::new(store.clone(), &config),
        http_connections: connlimit::ConnectionLimiter::new(
            config.limits.http_max_conns_per_client,
        ),
        restoring: tokio::sync::Mutex::new(()),
        dns: std::sync::RwLock::new(context::DnsSettings {
            generation: 0,
            config: Arc::new(config.dns.clone()),
        }),
        metrics_naming: std::sync::RwLock::new(crate::metrics::Naming::new(
            &config.telemetry,
            &crate::config::hostname(),
        )),
        events: Arc::new(events::Events::new()),
        leaf_issuers: connect_ca::LeafIssuers::default(),
        intentions: intentions::IntentionCache::new(
            store.clone(),
            intentions::Fallback::from_config(&config),
        ),
        store,
        config,
        node_id,
        local,
        sessions,
        shutdown: tokio::sync::Notify::new(),
    });
    bring_up(&ctx).await?;
    bootstrap_config_entries(&ctx).await?;
    initialize_acls(&ctx).await?;
    Ok((ctx, dev_dir))
}

/// Starts the agent's periodic housekeeping.
pub fn spawn_background(ctx: &Ctx) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(reap_tombstones(ctx.store.clone())),
        tokio::spawn(reap_critical_services(ctx.local.clone())),
    ];
    if ctx.config.acl.enabled {
        tasks.push(tokio::spawn(reap_expired_acl_tokens(ctx.store.clone())));
    }
    if ctx.config.connect.enabled {
        tasks.push(tokio::spawn(connect_ca::prune_roots_periodically(
            ctx.store.clone(),
        )));
    }
    tasks
}

/// Stops check runners and session timers, then closes the store once every queued write is
/// durable.
pub async fn close(ctx: &Ctx) {
    ctx.local.stop();
    ctx.sessions.stop();
    let store = ctx.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
}

/// After a snapshot restore replaced the store's contents: the in-memory runtime follows the
/// restored state. Check runners and session timers are re-armed from the store (the caller
/// stopped them before restoring), and this node, its `serfHealth` check and the config-file
/// definitions are registered again, as on a start (no-ops when the snapshot already has them
/// as they are).
pub async fn resume_after_restore(ctx: &Ctx) -> Result<(), AgentError> {
    ctx.local.stop();
    ctx.sessions.stop();
    bring_up(ctx).await
}

/// What a start (and a restore) does once the store is open: this node and its config-file
/// definitions in the catalog, the Connect CA when it has none yet, then check runners and
/// session timers from the stored state.
async fn bring_up(ctx: &Ctx) -> Result<(), AgentError> {
    register_self(ctx).await?;
    if ctx.config.connect.enabled {
        connect_ca::initialize(ctx).await?;
    }
    load_config_definitions(ctx).await?;
    ctx.local
        .resume()
        .map_err(|e| AgentError::Io(e.to_string()))?;
    ctx.sessions
        .resume()
        .await
        .map_err(|e| AgentError::Io(e.to_string()))
}

/// The node ID: the configured one, else the one saved in the data dir, else a new UUID saved
/// there, so the node keeps its identity across restarts.
fn node_id(data_dir: &Path, configured: Option<&str>) -> Result<String, AgentError> {
    let file: PathBuf = data_dir.join("node-id");
    let id = match configured {
        Some(id) => {
            uuid::Uuid::parse_str(id)
                .map_err(|_| AgentError::Io(format!("node_id {id:?} is not a valid UUID")))?;
            id.to_lowercase()
        }
        None => match std::fs::read_to_string(&file) {
            Ok(saved) if !saved.trim().is_empty() => return Ok(saved.trim().to_string()),
            _ => uuid::Uuid::new_v4().to_string(),
        },
    };
    std::fs::write(&file, &id)
        .map_err(|e| AgentError::Io(format!("cannot write {}: {e}", file.display())))?;
    Ok(id)
}

/// Puts this node in the catalog with its `serfHealth` check and, as a server, the `consul`
/// service, as a Consul leader registers its own members.
async fn register_self(ctx: &Ctx) -> Result<(), AgentError> {
    let c = &ctx.config;
    let addr = c.advertise_addr.to_string();
    let v4 = c.advertise_addr.is_ipv4();
    let mut tagged = std::collections::BTreeMap::new();
    for key in ["lan", "wan"] {
        tagged.insert(key.to_string(), addr.clone());
        tagged.insert(
            format!("{key}_{}", if v4 { "ipv4" } else { "ipv6" }),
            addr.clone(),
        );
    }
    let node = Node {
        id: ctx.node_id.clone(),
        node: c.node_name.clone(),
        address: addr,
        datacenter: c.datacenter.clone(),
        tagged_addresses: tagged,
        meta: ctx.node_meta(),
        ..Default::default()
    };
    let serf = HealthCheck {
        node: c.node_name.clone(),
        check_id: SERF_CHECK_ID.into(),
        name: SERF_CHECK_NAME.into(),
        status: PASSING.into(),
        output: SERF_CHECK_ALIVE_OUTPUT.into(),
        ..Default::default()
    };
    let consul = c.server.then(|| NodeService {
        id: "consul".into(),
        service: "consul".into(),
        port: c.ports.server.max(0) as u16,
        meta: [
            ("non_voter", "false"),
            ("read_replica", "false"),
            ("raft_version", "3"),
            ("serf_protocol_current", "2"),
            ("serf_protocol_min", "1"),
            ("serf_protocol_max", "5"),
            ("version", crate::config::CONSUL_VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    });
    ctx.store
        .apply(Command::AgentSelf {
            node: Box::new(node),
            serf_health: Box::new(serf),
            consul_service: consul.map(Box::new),
            autopilot: Box::new(AutopilotConfig::default()),
        })
        .await?;
    Ok(())
}

/// Registers the `services` and `checks` of the config files.
async fn load_config_definitions(ctx: &Ctx) -> Result<(), AgentError> {
    for raw in &ctx.config.services {
        let def = definition::decode_service(raw.clone())
            .map_err(|e| AgentError::Io(format!("invalid service definition in config: {e}")))?;
        ctx.local
            .register_service(def, false, Source::Config)
            .await
            .map_err(|e| AgentError::Io(format!("cannot register service from config: {e}")))?;
    }
    for raw in &ctx.config.checks {
        let def = definition::decode_check(raw.clone())
            .map_err(|e| AgentError::Io(format!("invalid check definition in config: {e}")))?;
        ctx.local
            .register_check(def, Source::Config)
            .await
            .map_err(|e| AgentError::Io(format!("cannot register check from config: {e}")))?;
    }
    Ok(())
}

/// Writes the `config_entries.bootstrap` entries that don't exist yet, as a Consul server does
/// once it leads (only in the primary datacenter): an existing entry is never overwritten, so
/// changes made through the API survive restarts.
async fn bootstrap_config_entries(ctx: &Ctx) -> Result<(), AgentError> {
    let c = &ctx.config;
    if c.config_entries.is_empty() {
        return Ok(());
    }
    if !c.server {
        tracing::info!(
            "config_entries.bootstrap is applied by servers only; ignored on this client"
        );
        return Ok(());
    }
    if c.primary_datacenter != c.datacenter {
        return Ok(());
    }
    for entry in c.config_entries.clone() {
        let (kind, name) = (entry.kind.clone(), entry.name.clone());
        ctx.store
            .apply(Command::ConfigEntrySet {
                entry: Box::new(entry),
                cas: Some(0),
            })
            .await
            .map_err(|e| {
                AgentError::Io(format!(
                    "Failed to apply configuration entry {kind:?} / {name:?}: {e}"
                ))
            })?;
    }
    Ok(())
}

/// Deregisters services whose checks stayed critical past `DeregisterCriticalServiceAfter`.
async fn reap_critical_services(local: Arc<LocalAgent>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = local.reap_critical_services().await {
            tracing::warn!(error = %e, "critical service reaping failed");
        }
    }
}

/// With ACLs enabled, makes sure the builtin policy, the anonymous token and the configured
/// initial management token exist, as a Consul server does once it leads. A client does it
/// too: its own store is the only one it asks.
async fn initialize_acls(ctx: &Ctx) -> Result<(), AgentError> {
    let c = &ctx.config;
    if !c.acl.enabled {
        return Ok(());
    }
    let initial_management = c.acl.tokens.initial_management.clone().map(|secret| {
        crate::types::acl::management_token(
            crate::types::acl::new_uuid(),
            secret,
            "Initial Management Token",
            crate::clock::now_ms(),
        )
    });
    ctx.store
        .apply(Command::AclInitialize {
            initial_management: initial_management.map(Box::new),
        })
        .await?;
    Ok(())
}

/// Removes expired ACL tokens now and then (they stop working at their expiry regardless).
async fn reap_expired_acl_tokens(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        // Looked for first, so a quiet period writes nothing to the log.
        let due = store
            .read()
            .and_then(|r| crate::store::acl::expired_tokens(&r, crate::clock::now_ms()));
        if !matches!(due, Ok(ref expired) if !expired.is_empty()) {
            continue;
        }
        match store.apply(Command::AclTokenReap).await {
            Ok(Outcome::Reaped(n)) if n > 0 => {
                tracing::debug!(reaped = n, "reaped expired ACL tokens")
            }
            Ok(_) => {}
            Err(crate::store::StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "ACL token reap failed"),
        }
    }
}

/// Removes KV tombstones older than the TTL, once a minute.
async fn reap_tombstones(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let reap = Command::KvReapTombstones {
            ttl_ms: TOMBSTONE_TTL.as_millis() as u64,
        };
        match store.apply(reap).await {
            Ok(Outcome::Reaped(n)) if n > 0 => tracing::debug!(reaped = n, "reaped KV tombstones"),
            Ok(_) => {}
            Err(crate::store::StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "tombstone reap failed"),
        }
    }
}
