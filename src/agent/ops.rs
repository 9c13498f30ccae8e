//! Run-time agent operations: the agent's ACL tokens (from the configuration, replaced through
//! `/v1/agent/token/*` and, with `acl.enable_token_persistence`, saved in the data dir's
//! `acl-tokens.json` as Consul does) and `reload`, which reads the configuration files again as
//! Consul's `ReloadConfig` does: services and checks defined in config are replaced by the new
//! definitions (ones that disappeared are removed; API registrations are left alone), the
//! log level changes, and the `watches` plans are stopped and started anew (Consul's
//! `reloadWatches`).

use super::definition::{decode_check, decode_service};
use super::local::{LocalError, Source};
use super::AgentContext;
use crate::config::Config;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The agent tokens, by canonical name (`default`, `agent`, `agent_recovery`, `replication`,
/// `config_file_service_registration`, `dns`).
#[derive(Debug)]
pub struct Tokens {
    current: Mutex<BTreeMap<&'static str, String>>,
    /// The tokens set through the API, saved to `file` when persistence is on.
    persisted: Mutex<BTreeMap<&'static str, String>>,
    file: Option<PathBuf>,
}

/// The persisted tokens' file in the data dir (Consul's name and format).
pub const TOKENS_FILE: &str = "acl-tokens.json";

impl Tokens {
    /// The canonical name of a `/v1/agent/token/<target>`, with Consul's legacy aliases.
    pub fn canonical(target: &str) -> Option<&'static str> {
        Some(match target {
            "acl_token" | "default" => "default",
            "acl_agent_token" | "agent" => "agent",
            "acl_agent_master_token" | "agent_master" | "agent_recovery" => "agent_recovery",
            "acl_replication_token" | "replication" => "replication",
            "config_file_service_registration" => "config_file_service_registration",
            "dns_token" | "dns" => "dns",
            _ => return None,
        })
    }

    /// The configured tokens, overridden by the persisted ones (tokens set through the API
    /// win over the configuration across restarts, as in Consul).
    pub fn load(config: &Config, data_dir: &Path) -> Result<Tokens, String> {
        let t = &config.acl.tokens;
        let configured = [
            ("default", &t.default),
            ("agent", &t.agent),
            ("agent_recovery", &t.agent_recovery),
            ("replication", &t.replication),
            (
                "config_file_service_registration",
                &t.config_file_service_registration,
            ),
            ("dns", &t.dns),
        ];
        let mut current: BTreeMap<&'static str, String> = configured
            .into_iter()
            .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
            .collect();
        let file = config
            .acl
            .enable_token_persistence
            .then(|| data_dir.join(TOKENS_FILE));
        let mut persisted = BTreeMap::new();
        if let Some(path) = &file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let saved: BTreeMap<String, String> =
                        serde_json::from_slice(&bytes).map_err(|e| {
                            format!(
                                "cannot read persisted ACL tokens from {}: {e}",
                                path.display()
                            )
                        })?;
                    for (name, value) in saved {
                        if let Some(name) = Self::canonical(&name) {
                            persisted.insert(name, value);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        current.extend(persisted.clone());
        Ok(Tokens {
            current: Mutex::new(current),
            persisted: Mutex::new(persisted),
            file,
        })
    }

    /// Sets a token (an empty one clears it) and, with persistence on, saves the tokens set
    /// through the API.
    pub fn set(&self, name: &'static str, token: String) -> std::io::Result<()> {
        self.current.lock().unwrap().insert(name, token.clone());
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut persisted = self.persisted.lock().unwrap();
        persisted.insert(name, token);
        let body = serde_json::to_vec(&*persisted).expect("a map of strings renders");
        write_private(path, &body)
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.current
            .lock()
            .unwrap()
            .get(name)
            .filter(|t| !t.is_empty())
            .cloned()
    }
}

/// Replaces `path` with `body`, readable by this user only, through a temporary file so a
/// crash leaves the old or the new file, never a cut one.
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What the last configuration load put in place.
#[derive(Debug)]
struct Loaded {
    services: Vec<Value>,
    checks: Vec<Value>,
    log_level: String,
}

/// Agent-operation state held by the context.
#[derive(Debug)]
pub struct Ops {
    pub tokens: Tokens,
    loaded: Mutex<Loaded>,
    /// Serializes reloads.
    reloading: tokio::sync::Mutex<()>,
    watch_plans: Mutex<WatchPlans>,
}

/// The agent config's watch plans while they run, and the agent's HTTP address they query.
#[derive(Debug, Default)]
struct WatchPlans {
    addr: Option<std::net::SocketAddr>,
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl WatchPlans {
    fn stop(&mut self) {
        for plan in self.running.drain(..) {
            plan.abort();
        }
    }

    fn start(&mut self, watches: &[crate::watch::AgentWatch]) {
        if let Some(addr) = self.addr {
            self.running = crate::watch::spawn_agent_watches(watches, addr);
        }
    }
}

/// Why a reload failed (Consul answers 500 with the text).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReloadError(pub String);

impl Ops {
    pub fn new(config: &Config, data_dir: &Path) -> Result<Ops, String> {
        Ok(Ops {
            tokens: Tokens::load(config, data_dir)?,
            loaded: Mutex::new(Loaded {
                services: config.services.clone(),
                checks: config.checks.clone(),
                log_level: config.log_level.clone(),
            }),
            reloading: tokio::sync::Mutex::new(()),
            watch_plans: Mutex::new(WatchPlans::default()),
        })
    }

    /// Starts the config's `watches` against the agent's own HTTP API at `addr` (once it
    /// listens); reload restarts them there.
    pub fn start_watches(&self, watches: &[crate::watch::AgentWatch], addr: std::net::SocketAddr) {
        let mut plans = self.watch_plans.lock().unwrap();
        plans.stop();
        plans.addr = Some(addr);
        plans.start(watches);
    }

    /// Stops every watch plan (at shutdown).
    pub fn stop_watches(&self) {
        self.watch_plans.lock().unwrap().stop();
    }

    /// The log level currently in force (changes with `reload`).
    pub fn log_level(&self) -> String {
        self.loaded.lock().unwrap().log_level.clone()
    }
}

fn service_ids(defs: &[Value]) -> BTreeSet<String> {
    defs.iter()
        .filter_map(|raw| decode_service(raw.clone()).ok())
        .map(|d| if d.id.is_empty() { d.name } else { d.id })
        .collect()
}

fn check_ids(defs: &[Value]) -> BTreeSet<String> {
    defs.iter()
        .filter_map(|raw| decode_check(raw.clone()).ok())
        .map(|d| if d.id.is_empty() { d.name } else { d.id })
        .collect()
}

/// Reads the configuration again from the agent's flags and applies what can change at run
/// time. Nothing changes when the new configuration doesn't load or a definition is invalid.
pub async fn reload(ctx: &AgentContext) -> Result<(), ReloadError> {
    let _one_at_a_time = ctx.ops.reloading.lock().await;
    let new = Config::load(&ctx.config.flags).map_err(|e| ReloadError(e.to_string()))?;
    let mut services = Vec::new();
    for raw in &new.services {
        services.push(
            decode_service(raw.clone())
                .map_err(|e| ReloadError(format!("Failed reloading services: {e}")))?,
        );
    }
    let mut checks = Vec::new();
    for raw in &new.checks {
        checks.push(
            decode_check(raw.clone())
                .map_err(|e| ReloadError(format!("Failed reloading checks: {e}")))?,
        );
    }
    let (old_services, old_checks, old_level) = {
        let loaded = ctx.ops.loaded.lock().unwrap();
        (
            service_ids(&loaded.services),
            check_ids(&loaded.checks),
            loaded.log_level.clone(),
        )
    };
    let new_services = service_ids(&new.services);
    let new_checks = check_ids(&new.checks);
    let gone = |e: LocalError| match e {
        // Already removed through the API: nothing left to unload.
        LocalError::NotFound(_) => Ok(()),
        other => Err(other),
    };
    for id in old_checks.difference(&new_checks) {
        if let Err(e) = ctx.local.deregister_check(id).await.or_else(gone) {
            return Err(ReloadError(format!("Failed unloading checks: {e}")));
        }
    }
    for id in old_services.difference(&new_services) {
        if let Err(e) = ctx.local.deregister_service(id).await.or_else(gone) {
            return Err(ReloadError(format!("Failed unloading services: {e}")));
        }
    }
    // Replacing the checks drops ones a service definition no longer lists, as Consul's
    // unload-then-load does.
    for def in services {
        ctx.local
            .register_service(def, true, Source::Config)
            .await
            .map_err(|e| ReloadError(format!("Failed reloading services: {e}")))?;
    }
    for def in checks {
        ctx.local
            .register_check(def, Source::Config)
            .await
            .map_err(|e| ReloadError(format!("Failed reloading checks: {e}")))?;
    }
    ctx.http_connections
        .set_max(new.limits.http_max_conns_per_client);
    ctx.reload_dns(&new.dns);
    // As Consul's reload, which updates go-metrics' prefix filter and nothing else of it.
    ctx.metrics_naming
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .update_filter(&new.telemetry);
    if new.log_level != old_level {
        match super::logging::set_level(&new.log_level) {
            Ok(true) => tracing::info!(level = %new.log_level, "log level changed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot change the log level"),
        }
    }
    // As Consul, every plan stops and the new configuration's start from scratch.
    {
        let mut plans = ctx.ops.watch_plans.lock().unwrap();
        plans.stop();
        plans.start(&new.watches);
    }
    *ctx.ops.loaded.lock().unwrap() = Loaded {
        services: new.services,
        checks: new.checks,
        log_level: new.log_level,
    };
    for notice in &new.notices {
        tracing::debug!("{notice}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_targets_and_their_legacy_names() {
        assert_eq!(Tokens::canonical("acl_token"), Some("default"));
        assert_eq!(Tokens::canonical("agent_master"), Some("agent_recovery"));
        assert_eq!(Tokens::canonical("dns"), Some("dns"));
        assert_eq!(Tokens::canonical("bogus"), None);
    }

    #[test]
    fn definitions_are_known_by_id_or_name() {
        let defs = vec![
            serde_json::json!({"name": "web"}),
            serde_json::json!({"id": "api-1", "name": "api"}),
        ];
        let ids: Vec<String> = service_ids(&defs).into_iter().collect();
        assert_eq!(ids, ["api-1", "web"]);
    }
}
