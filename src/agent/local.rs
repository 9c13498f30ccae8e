//! The agent's local state: services and checks registered through `/v1/agent/*` (or config
//! files), their check runners and TTL timers, and maintenance mode. Every change is one store
//! write that updates the persisted local state and the catalog together; runners start only
//! after that write is durable.

use super::checks::{self, CheckSink, CheckStatus, HttpSpec, ProbeSpec, RunnerSpec};
use super::definition::{validate_meta, CheckDefinition, ServiceDefinition};
use crate::clock::now_ms;
use crate::store::agent_state::{self, LocalCheck, LocalService, ServiceRegistration};
use crate::store::{catalog, Command, Outcome, Readable, Store, StoreError, WatchSet};
use crate::types::catalog::{
    HealthCheck, NodeService, ServiceAddress, Weights, CRITICAL, PASSING, WARNING,
};
use crate::types::JsonValue;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";
pub const NODE_MAINTENANCE_ID: &str = "_node_maintenance";
const DEFAULT_SERVICE_MAINT_REASON: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";
const DEFAULT_NODE_MAINT_REASON: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
const SCRIPTS_DISABLED: &str =
    "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true";
/// Output kept from TTL updates unless a check says otherwise.
const DEFAULT_OUTPUT_MAX: usize = 4096;
/// Sidecar proxies get a port from this range when they don't name one.
const SIDECAR_PORTS: std::ops::RangeInclusive<u16> = 21000..=21255;

/// Why a local-state operation was refused; the HTTP layer maps each kind to its status.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for LocalError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => LocalError::BadRequest(m),
            other => LocalError::Internal(other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, LocalError>;

/// Where a registration came from: scripts may run for config files with
/// `enable_local_script_checks`, for API calls only with `enable_script_checks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Config,
}

pub fn unknown_service(id: &str) -> LocalError {
    LocalError::NotFound(format!(
        "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
    ))
}

pub fn unknown_check(id: &str) -> LocalError {
    LocalError::NotFound(format!(
        "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
    ))
}

/// A running background task for a check; stops when dropped.
enum Runner {
    Probe(#[allow(dead_code)] checks::RunnerHandle),
    Task(tokio::task::JoinHandle<()>),
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Runner::Task(task) = self {
            task.abort();
        }
    }
}

pub struct LocalAgent {
    store: Store,
    node: String,
    enable_script_checks: bool,
    enable_local_script_checks: bool,
    runners: Mutex<HashMap<String, Runner>>,
    /// When each check with `DeregisterCriticalServiceAfter` was first seen critical.
    critical_since: Mutex<HashMap<String, std::time::Instant>>,
    me: Weak<LocalAgent>,
}

fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        String::new()
    } else {
        crate::duration::format(d)
    }
}

fn check_status(text: &str) -> Option<&'static str> {
    match text {
        "passing" => Some(PASSING),
        "warning" => Some(WARNING),
        "critical" => Some(CRITICAL),
        _ => None,
    }
}

impl LocalAgent {
    pub fn new(
        store: Store,
        node: String,
        enable_script_checks: bool,
        enable_local_script_checks: bool,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| LocalAgent {
            store,
            node,
            enable_script_checks,
            enable_local_script_checks,
            runners: Mutex::new(HashMap::new()),
            critical_since: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn this(&self) -> Arc<LocalAgent> {
        self.me.upgrade().expect("local agent alive while in use")
    }

    // ----- services -----

    /// Registers (or replaces) a service with its checks and, if asked, its sidecar proxy.
    pub async fn register_service(
        &self,
        def: ServiceDefinition,
        replace_existing_checks: bool,
        source: Source,
    ) -> Result<()> {
        let (service, checks, sidecar) = self.build_service(def, None, source)?;
        let mut services = vec![(service, String::new(), checks)];
        if let Some((sidecar, sidecar_checks)) = sidecar {
            let parent = services[0].0.id.clone();
            services.push((sidecar, parent, sidecar_checks));
        }
        let to_start: Vec<LocalCheck> = services
            .iter()
            .flat_map(|(_, _, c)| c.iter().map(|(l, _)| l.clone()))
            .collect();
        let services = services
            .into_iter()
            .map(|(service, sidecar_of, checks)| ServiceRegistration {
                service: LocalService {
                    service,
                    sidecar_of,
                },
                checks,
            })
            .collect();
        let removed = self
            .store
            .apply(Command::AgentRegisterServices {
                node: self.node.clone(),
                services,
                replace_existing_checks,
            })
            .await?;
        let removed = match removed {
            Outcome::RemovedChecks(ids) => ids,
            _ => Vec::new(),
        };
        let mut runners = self.runners.lock().unwrap();
        for id in removed {
            runners.remove(&id);
        }
        drop(runners);
        for local in to_start {
            self.start_runner(&local);
        }
        Ok(())
    }

    /// Validates a definition and builds the instance, its checks and its sidecar, as Consul's
    /// `AddService` does.
    #[allow(clippy::type_complexity)]
    fn build_service(
        &self,
        def: ServiceDefinition,
        parent: Option<&NodeService>,
        source: Source,
    ) -> Result<(
        NodeService,
        Vec<(LocalCheck, HealthCheck)>,
        Option<(NodeService, Vec<(LocalCheck, HealthCheck)>)>,
    )> {
        let bad = LocalError::BadRequest;
        if def.name.is_empty() {
            return Err(bad("Missing service name".into()));
        }
        if let Ok(ip) = def
            .address
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            if ip.is_unspecified() {
                return Err(bad("Invalid service address".into()));
            }
        }
        if let Some(w) = def.weights {
            if w.passing <= 0 {
                return Err(bad("Invalid Weights: Passing must be greater than 0".into()));
            }
            if w.warning < 0 {
                return Err(bad(
                    "Invalid Weights: Warning must be greater or equal than 0".into(),
                ));
            }
        }
        let meta = def.meta.clone().unwrap_or_default();
        validate_meta(&meta).map_err(|e| bad(format!("Invalid Service Meta: {e}")))?;
        let id = if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        };
        let mut connect = def.connect.clone().unwrap_or(serde_json::Value::Null);
        let sidecar_def = connect
            .as_object_mut()
            .and_then(|c| c.remove("SidecarService"));
        if connect.as_object().is_some_and(|c| c.is_empty()) {
            connect = serde_json::Value::Null;
        }
        let mut proxy = def.proxy.clone().unwrap_or(serde_json::Value::Null);
        if let Some(parent) = parent {
            let p = proxy.as_object_mut();
            if let Some(p) = p {
                p.entry("DestinationServiceName")
                    .or_insert_with(|| parent.service.clone().into());
                p.entry("DestinationServiceID")
                    .or_insert_with(|| parent.id.clone().into());
            } else {
                proxy = serde_json::json!({
                    "DestinationServiceName": parent.service,
                    "DestinationServiceID": parent.id,
                });
            }
            let p = proxy.as_object_mut().unwrap();
            let has_target = p.contains_key("LocalServiceSocketPath")
                || (p.contains_key("LocalServiceAddress") && p.contains_key("LocalServicePort"));
            if !has_target {
                p.entry("LocalServiceAddress")
                    .or_insert_with(|| "127.0.0.1".into());
                p.entry("LocalServicePort")
                    .or_insert_with(|| parent.port.into());
            }
        }
        let mut errors = Vec::new();
        if def.kind == "connect-proxy" {
            if def.port == 0 && def.socket_path.is_empty() {
                errors.push("Port or SocketPath must be set for a connect-proxy".to_string());
            }
            let dest = proxy
                .get("DestinationServiceName")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            if dest.is_empty() {
                errors.push(
                    "Proxy.DestinationServiceName must be non-empty for Connect proxy services"
                        .into(),
                );
            } else if dest == "*" {
                errors.push("Proxy.DestinationServiceName must not be a wildcard for Connect proxy services".into());
            }
            if connect
                .get("Native")
                .and_then(|v| v.as_bool())
                .unwrap_or(false)
            {
                errors.push("A Proxy cannot also be Connect Native, only typical services".into());
            }
        } else if connect
            .get("Native")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
            && def.port == 0
            && def.socket_path.is_empty()
        {
            errors.push("Port or SocketPath must be set for a Connect native service.".into());
        }
        if parent.is_some() && !def.id.is_empty() {
            errors.push(
                "A SidecarService cannot specify an ID as this is managed by the agent".into(),
            );
        }
        if parent.is_some() && sidecar_def.is_some() {
            errors.push("A SidecarService cannot have a nested SidecarService".into());
        }
        if !errors.is_empty() {
            let mut text = if errors.len() == 1 {
                "Validation failed: 1 error occurred:\n".to_string()
            } else {
                format!("Validation failed: {} errors occurred:\n", errors.len())
            };
            for e in &errors {
                text.push_str(&format!("\t* {e}\n"));
            }
            text.push('\n');
            return Err(bad(text));
        }
        let mut check_defs: Vec<CheckDefinition> = Vec::new();
        check_defs.extend(def.check.clone().filter(|c| !c.is_empty()));
        check_defs.extend(
            def.checks
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !c.is_empty()),
        );
        for c in &check_defs {
            c.validate()
                .map_err(|e| bad(format!("Invalid check: {e}")))?;
            if !c.status.is_empty() && check_status(&c.status).is_none() {
                return Err(bad(
                    "Status for checks must 'passing', 'warning', 'critical'".into(),
                ));
            }
        }
        let mut tagged = def.tagged_addresses.clone().unwrap_or_default();
        if let Ok(ip) = def.address.parse::<IpAddr>() {
            let (lan, wan) = if ip.is_ipv4() {
                ("lan_ipv4", "wan_ipv4")
            } else {
                ("lan_ipv6", "wan_ipv6")
            };
            for key in [lan, wan] {
                tagged.entry(key.to_string()).or_insert(ServiceAddress {
                    address: def.address.clone(),
                    port: def.port,
                });
            }
        }
        let service = NodeService {
            kind: def.kind.clone(),
            id: id.clone(),
            service: def.name.clone(),
            tags: def.tags.clone().unwrap_or_default(),
            address: def.address.clone(),
            tagged_addresses: tagged,
            meta,
            port: def.port,
            socket_path: def.socket_path.clone(),
            weights: def.weights.unwrap_or_default(),
            enable_tag_override: def.enable_tag_override,
            proxy: JsonValue(proxy),
            connect: JsonValue(connect),
            ..Default::default()
        };
        let many = check_defs.len() > 1;
        let mut checks = Vec::new();
        for (i, c) in check_defs.into_iter().enumerate() {
            let check_id = match (c.id.is_empty(), many) {
                (false, _) => c.id.clone(),
                (true, false) => format!("service:{id}"),
                (true, true) => format!("service:{id}:{}", i + 1),
            };
            let name = if c.name.is_empty() {
                format!("Service '{}' check", def.name)
            } else {
                c.name.clone()
            };
            checks.push(self.build_check(check_id, name, &id, c, false, source)?);
        }
        let sidecar = match sidecar_def {
            None => None,
            Some(raw) => {
                let mut sd: ServiceDefinition = serde_json::from_value(raw)
                    .map_err(|e| bad(format!("Invalid SidecarService: {e}")))?;
                if sd.kind.is_empty() {
                    sd.kind = "connect-proxy".into();
                }
                if sd.name.is_empty() {
                    sd.name = format!("{}-sidecar-proxy", def.name);
                }
                if sd.address.is_empty() {
                    sd.address = def.address.clone();
                }
                if sd.tags.as_ref().is_none_or(|t| t.is_empty()) {
                    sd.tags = def.tags.clone();
                }
                if sd.meta.as_ref().is_none_or(|m| m.is_empty()) {
                    sd.meta = def.meta.clone();
                }
                if sd.port == 0 {
                    sd.port = self.free_sidecar_port(&format!("{id}-sidecar-proxy"))?;
                }
                if sd.check.is_none() && sd.checks.as_ref().is_none_or(|c| c.is_empty()) {
                    let addr = if sd.address.is_empty() {
                        "127.0.0.1".to_string()
                    } else {
                        sd.address.clone()
                    };
                    let listen = match addr.parse::<IpAddr>() {
                        Ok(IpAddr::V6(_)) => format!("[{addr}]:{}", sd.port),
                        _ => format!("{addr}:{}", sd.port),
                    };
                    sd.checks = Some(vec![
                        CheckDefinition {
                            name: "Connect Sidecar Listening".into(),
                            tcp: listen,
                            interval: super::definition::GoDuration(Duration::from_secs(10)),
                            ..Default::default()
                        },
                        CheckDefinition {
                            name: format!("Connect Sidecar Aliasing {id}"),
                            alias_service: id.clone(),
                            ..Default::default()
                        },
                    ]);
                }
                let parent_for_sidecar = NodeService {
                    id: id.clone(),
                    ..service.clone()
                };
                let sidecar_id = format!("{id}-sidecar-proxy");
                let (mut sidecar, mut sidecar_checks, _) =
                    self.build_service(sd, Some(&parent_for_sidecar), source)?;
                sidecar.id = sidecar_id.clone();
                let many = sidecar_checks.len() > 1;
                for (i, (local, row)) in sidecar_checks.iter_mut().enumerate() {
                    if local
                        .check_id
                        .starts_with(&format!("service:{}", sidecar.service))
                        || local.check_id.starts_with("service:")
                    {
                        let new_id = if many {
                            format!("service:{sidecar_id}:{}", i + 1)
                        } else {
                            format!("service:{sidecar_id}")
                        };
                        local.check_id = new_id.clone();
                        row.check_id = new_id;
                    }
                    local.service_id = sidecar_id.clone();
                    row.service_id = sidecar_id.clone();
                }
                Some((sidecar, sidecar_checks))
            }
        };
        Ok((service, checks, sidecar))
    }

    /// The lowest free sidecar port (or the one `id` already has).
    fn free_sidecar_port(&self, id: &str) -> Result<u16> {
        let r = self.store.read()?;
        let locals = agent_state::services(&r)?;
        if let Some(existing) = locals.iter().find(|s| s.service.id == id) {
            if SIDECAR_PORTS.contains(&existing.service.port) {
                return Ok(existing.service.port);
            }
        }
        let used: Vec<u16> = locals.iter().map(|s| s.service.port).collect();
        SIDECAR_PORTS.clone().find(|p| !used.contains(p)).ok_or_else(|| {
            LocalError::Internal("no port provided for sidecar_service and none left in the configured range [21000, 21255]".into())
        })
    }

    /// Builds a check's persisted definition and catalog row.
    fn build_check(
        &self,
        check_id: String,
        name: String,
        service_id: &str,
        def: CheckDefinition,
        standalone: bool,
        source: Source,
    ) -> Result<(LocalCheck, HealthCheck)> {
        let kind = def.kind();
        if kind == "script" || kind == "docker" {
            let allowed = self.enable_script_checks
                || (source == Source::Config && self.enable_local_script_checks);
            if !allowed {
                return Err(LocalError::Internal(SCRIPTS_DISABLED.into()));
            }
        }
        if kind == "docker"
            || kind == "grpc"
            || kind == "h2ping"
            || kind == "os_service"
            || kind == "udp"
        {
            return Err(LocalError::BadRequest(format!(
                "Invalid check: {kind} checks are not supported by this agent"
            )));
        }
        let interval = if def.interval.0.is_zero() {
            Duration::ZERO
        } else {
            def.interval.0.max(Duration::from_secs(1))
        };
        let ttl_deadline_ms = if kind == "ttl" {
            now_ms() + def.ttl.0.as_millis() as u64
        } else {
            0
        };
        let (interval_text, timeout_text) = if standalone {
            (
                crate::duration::format(interval),
                crate::duration::format(def.timeout.0),
            )
        } else {
            (go_duration(interval), go_duration(def.timeout.0))
        };
        let row = HealthCheck {
            node: self.node.clone(),
            check_id: check_id.clone(),
            name,
            status: if def.status.is_empty() {
                CRITICAL.into()
            } else {
                def.status.clone()
            },
            notes: def.notes.clone(),
            service_id: service_id.to_string(),
            r#type: kind.to_string(),
            interval: interval_text,
            timeout: timeout_text,
            ..Default::default()
        };
        let local = LocalCheck {
            check_id,
            service_id: service_id.to_string(),
            definition: JsonValue(definition_json(&def)),
            ttl_deadline_ms,
        };
        Ok((local, row))
    }

    /// Removes a service, its checks and its sidecar.
    pub async fn deregister_service(&self, id: &str) -> Result<()> {
        let r = self.store.read()?;
        if agent_state::service(&r, id)?.is_none() {
            return Err(unknown_service(id));
        }
        let doomed: Vec<String> = {
            let sidecars: Vec<String> = agent_state::services(&r)?
                .into_iter()
                .filter(|s| s.sidecar_of == id)
                .map(|s| s.service.id)
                .collect();
            agent_state::checks(&r)?
                .into_iter()
                .filter(|c| c.service_id == id || sidecars.contains(&c.service_id))
                .map(|c| c.check_id)
                .collect()
        };
        drop(r);
        self.store
            .apply(Command::AgentDeregisterService {
                node: self.node.clone(),
                id: id.to_string(),
            })
            .await?;
        let mut runners = self.runners.lock().unwrap();
        for check in doomed {
            runners.remove(&check);
        }
        Ok(())
    }

    // ----- checks -----

    /// Registers (or replaces) a standalone check.
    pub async fn register_check(&self, def: CheckDefinition, source: Source) -> Result<()> {
        if def.name.is_empty() {
            return Err(LocalError::BadRequest("Missing check name".into()));
        }
        if !def.status.is_empty() && check_status(&def.status).is_none() {
            return Err(LocalError::BadRequest("Bad check status".into()));
        }
        def.validate()
            .map_err(|e| LocalError::BadRequest(format!("Invalid check: {e}")))?;
        if !def.service_id.is_empty()
            && agent_state::service(&self.store.read()?, &def.service_id)?.is_none()
        {
            return Err(LocalError::NotFound(format!(
                "ServiceID {:?} does not exist",
                def.service_id
            )));
        }
        let id = if def.id.is_empty() {
            def.name.clone()
        } else {
            def.id.clone()
        };
        let service_id = def.service_id.clone();
        let name = def.name.clone();
        let (local, row) = self.build_check(id, name, &service_id, def, true, source)?;
        self.store
            .apply(Command::AgentRegisterCheck {
                check: Box::new(local.clone()),
                row: Box::new(row),
            })
            .await?;
        self.start_runner(&local);
        Ok(())
    }

    pub async fn deregister_check(&self, id: &str) -> Result<()> {
        if agent_state::check(&self.store.read()?, id)?.is_none() {
            return Err(unknown_check(id));
        }
        self.store
            .apply(Command::AgentDeregisterCheck {
                node: self.node.clone(),
                id: id.to_string(),
            })
            .await?;
        self.runners.lock().unwrap().remove(id);
        Ok(())
    }

    /// `pass|warn|fail|update` on a TTL check: sets status and output and restarts its timer.
    pub async fn update_ttl(&self, id: &str, status: &str, output: &str) -> Result<()> {
        let Some(local) = agent_state::check(&self.store.read()?, id)? else {
            return Err(unknown_check(id));
        };
        let def = decode_stored(&local);
        if def.kind() != "ttl" {
            return Err(LocalError::Internal(format!(
                "CheckID {id:?} does not have associated TTL"
            )));
        }
        let max = if def.output_max_size > 0 {
            def.output_max_size
        } else {
            DEFAULT_OUTPUT_MAX
        };
        let output = checks::truncate_ttl_output(output, max);
        let deadline = now_ms() + def.ttl.0.as_millis() as u64;
        self.set_status(id, status, output, Some(deadline)).await?;
        self.start_ttl_timer(id.to_string(), def.ttl.0);
        Ok(())
    }

    // ----- maintenance -----

    pub async fn service_maintenance(
        &self,
        service_id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<()> {
        let Some(local) = agent_state::service(&self.store.read()?, service_id)? else {
            return Err(unknown_service(service_id));
        };
        let check_id = format!("{SERVICE_MAINTENANCE_PREFIX}{service_id}");
        let reason = if reason.is_empty() {
            DEFAULT_SERVICE_MAINT_REASON
        } else {
            reason
        };
        self.set_maintenance(
            check_id,
            "Service Maintenance Mode",
            &local.service.id,
            enable,
            reason,
        )
        .await
    }

    pub async fn node_maintenance(&self, enable: bool, reason: &str) -> Result<()> {
        let reason = if reason.is_empty() {
            DEFAULT_NODE_MAINT_REASON
        } else {
            reason
        };
        self.set_maintenance(
            NODE_MAINTENANCE_ID.into(),
            "Node Maintenance Mode",
            "",
            enable,
            reason,
        )
        .await
    }

    async fn set_maintenance(
        &self,
        check_id: String,
        name: &str,
        service_id: &str,
        enable: bool,
        reason: &str,
    ) -> Result<()> {
        let exists = agent_state::check(&self.store.read()?, &check_id)?.is_some();
        let node = self.node.clone();
        match (enable, exists) {
            (true, false) => {
                let row = HealthCheck {
                    node: node.clone(),
                    check_id: check_id.clone(),
                    name: name.into(),
                    status: CRITICAL.into(),
                    notes: reason.into(),
                    service_id: service_id.into(),
                    r#type: "maintenance".into(),
                    ..Default::default()
                };
                let local = LocalCheck {
                    check_id,
                    service_id: service_id.into(),
                    definition: JsonValue(serde_json::Value::Null),
                    ttl_deadline_ms: 0,
                };
                self.store
                    .apply(Command::AgentRegisterCheck {
                        check: Box::new(local),
                        row: Box::new(row),
                    })
                    .await?;
            }
            (false, true) => {
                self.store
                    .apply(Command::AgentDeregisterCheck { node, id: check_id })
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    // ----- runners -----

    /// Starts the runners of every persisted check (after a restart); expired TTLs turn critical.
    pub fn resume(&self) -> Result<()> {
        for local in agent_state::checks(&self.store.read()?)? {
            self.start_runner(&local);
        }
        Ok(())
    }

    fn start_runner(&self, local: &LocalCheck) {
        if local.definition.is_null() {
            return; // maintenance checks have no runner
        }
        let def = decode_stored(local);
        let id = local.check_id.clone();
        let runner = match def.kind() {
            "ttl" => {
                let remaining =
                    Duration::from_millis(local.ttl_deadline_ms.saturating_sub(now_ms()));
                self.start_ttl_timer(id, remaining);
                return;
            }
            "alias" => Runner::Task(tokio::spawn(alias_loop(self.this(), id.clone(), def))),
            "http" | "tcp" | "script" => {
                let probe = match def.kind() {
                    "http" => ProbeSpec::Http(HttpSpec {
                        url: def.http.clone(),
                        method: def.method.clone(),
                        header: def.header.clone().unwrap_or_default(),
                        body: def.body.clone(),
                        tls_skip_verify: def.tls_skip_verify,
                        tls_server_name: def.tls_server_name.clone(),
                        disable_redirects: def.disable_redirects,
                    }),
                    "tcp" => ProbeSpec::Tcp {
                        addr: def.tcp.clone(),
                    },
                    _ => ProbeSpec::Script {
                        args: def.script_args.clone().unwrap_or_default(),
                    },
                };
                let spec = RunnerSpec {
                    probe,
                    interval: def.interval.0.max(Duration::from_secs(1)),
                    timeout: (!def.timeout.0.is_zero()).then_some(def.timeout.0),
                    output_max_size: def.output_max_size,
                    success_before_passing: def.success_before_passing,
                    failures_before_warning: def.failures_before_warning,
                    failures_before_critical: def.failures_before_critical,
                };
                let sink: Arc<dyn CheckSink> = Arc::new(Sink(self.me.clone()));
                Runner::Probe(checks::spawn(id.clone(), spec, sink))
            }
            _ => return,
        };
        self.runners.lock().unwrap().insert(id, runner);
    }

    /// (Re)arms a TTL check's timer: when it fires without an update, the check turns critical.
    fn start_ttl_timer(&self, id: String, after: Duration) {
        let agent = self.me.clone();
        let check = id.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(agent) = agent.upgrade() else { return };
            agent.expire_ttl(&check).await;
        });
        self.runners.lock().unwrap().insert(id, Runner::Task(task));
    }

    async fn expire_ttl(&self, id: &str) {
        let last = match self
            .store
            .read()
            .and_then(|r| catalog::get_check(&r, &self.node, id))
        {
            Ok(Some(row)) => row.output,
            _ => return,
        };
        let output = if last.is_empty() || last.starts_with("TTL expired") {
            "TTL expired".to_string()
        } else {
            format!("TTL expired (last output before timeout follows): {last}")
        };
        if let Err(e) = self.set_status(id, CRITICAL, output, None).await {
            tracing::warn!(check = id, error = %e, "could not record TTL expiry");
        }
    }

    /// Records a runner's result if it changed anything.
    async fn record(&self, id: &str, status: &str, output: &str) {
        let unchanged = matches!(
            self.store.read().and_then(|r| catalog::get_check(&r, &self.node, id)),
            Ok(Some(row)) if row.status == status && row.output == output
        );
        if unchanged {
            return;
        }
        if let Err(e) = self.set_status(id, status, output.to_string(), None).await {
            tracing::warn!(check = id, error = %e, "could not record check result");
        }
    }

    /// Writes a check's status and output, and a TTL check's new deadline (ignored once the
    /// check is deregistered).
    async fn set_status(
        &self,
        id: &str,
        status: &str,
        output: String,
        ttl_deadline_ms: Option<u64>,
    ) -> Result<()> {
        self.store
            .apply(Command::AgentCheckStatus {
                node: self.node.clone(),
                id: id.to_string(),
                status: status.to_string(),
                output,
                ttl_deadline_ms,
            })
            .await?;
        Ok(())
    }

    /// Deregisters services whose check has been critical longer than its
    /// `DeregisterCriticalServiceAfter`. Called periodically.
    pub async fn reap_critical_services(&self) -> Result<()> {
        let r = self.store.read()?;
        let mut doomed = Vec::new();
        {
            let mut since = self.critical_since.lock().unwrap();
            let mut seen = Vec::new();
            for local in agent_state::checks(&r)? {
                let def = decode_stored(&local);
                let after = def.deregister_critical_service_after.0;
                if after.is_zero() || local.service_id.is_empty() {
                    continue;
                }
                let critical = catalog::get_check(&r, &self.node, &local.check_id)?
                    .is_some_and(|c| c.status == CRITICAL);
                if !critical {
                    since.remove(&local.check_id);
                    continue;
                }
                seen.push(local.check_id.clone());
                let first = *since
                    .entry(local.check_id.clone())
                    .or_insert_with(std::time::Instant::now);
                if first.elapsed() >= after {
                    doomed.push(local.service_id.clone());
                }
            }
            since.retain(|k, _| seen.contains(k));
        }
        drop(r);
        doomed.dedup();
        for service in doomed {
            tracing::info!(
                service,
                "deregistering service: critical for longer than DeregisterCriticalServiceAfter"
            );
            match self.deregister_service(&service).await {
                Ok(()) | Err(LocalError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Stops every runner (shutdown).
    pub fn stop(&self) {
        self.runners.lock().unwrap().clear();
    }
}

/// Receives probe results from `checks` runners.
struct Sink(Weak<LocalAgent>);

impl CheckSink for Sink {
    fn report(&self, check_id: &str, status: CheckStatus, output: String) {
        let Some(agent) = self.0.upgrade() else {
            return;
        };
        let check_id = check_id.to_string();
        tokio::spawn(async move { agent.record(&check_id, status.as_str(), &output).await });
    }
}

/// An alias check mirrors the health of another service (and, for a local alias, of this
/// node): it re-evaluates whenever those checks change.
async fn alias_loop(agent: Arc<LocalAgent>, id: String, def: CheckDefinition) {
    let node = if def.alias_node.is_empty() {
        agent.node.clone()
    } else {
        def.alias_node.clone()
    };
    loop {
        let mut ws = WatchSet::new();
        let evaluated = (|| -> crate::store::Result<(u64, String, String)> {
            let r = agent.store.read()?;
            let (_, checks) = catalog::node_checks(&r, &mut ws, &node)?;
            let service_exists = catalog::get_service(&r, &node, &def.alias_service)?.is_some();
            let (status, output) = if !service_exists {
                (
                    CRITICAL.to_string(),
                    format!(
                        "Service {} could not be found on node {}",
                        def.alias_service, def.alias_node
                    ),
                )
            } else {
                aggregate_alias(checks.iter().filter(|c| {
                    (c.service_id.is_empty() || c.service_id == def.alias_service)
                        && c.check_id != id
                }))
            };
            Ok((r.global_index()?, status, output))
        })();
        let Ok((read_index, status, output)) = evaluated else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        agent.record(&id, &status, &output).await;
        // Service registration changes move the node's catalog index; watch it too.
        let r = agent.store.read();
        if let Ok(r) = &r {
            let _ = catalog::node_services(r, &mut ws, &node);
        }
        let watch = agent.store.watches().register(ws, read_index);
        watch.changed().await;
    }
}

fn aggregate_alias<'a>(checks: impl Iterator<Item = &'a HealthCheck>) -> (String, String) {
    let mut status = PASSING;
    let mut output = "All checks passing.".to_string();
    let mut any = false;
    for c in checks {
        any = true;
        let worse = match (status, c.status.as_str()) {
            (_, CRITICAL) if status != CRITICAL => true,
            (PASSING, WARNING) => true,
            _ => false,
        };
        if worse {
            status = if c.status == CRITICAL {
                CRITICAL
            } else {
                WARNING
            };
            output = format!("Aliased check {:?} failing: {}", c.name, c.output);
        }
    }
    if !any {
        output = "No checks found.".into();
    }
    (status.to_string(), output)
}

fn definition_json(def: &CheckDefinition) -> serde_json::Value {
    let d = |d: Duration| crate::duration::format(d);
    serde_json::json!({
        "ScriptArgs": def.script_args,
        "HTTP": def.http,
        "Header": def.header,
        "Method": def.method,
        "Body": def.body,
        "DisableRedirects": def.disable_redirects,
        "TCP": def.tcp,
        "Interval": d(def.interval.0),
        "AliasNode": def.alias_node,
        "AliasService": def.alias_service,
        "TLSServerName": def.tls_server_name,
        "TLSSkipVerify": def.tls_skip_verify,
        "Timeout": d(def.timeout.0),
        "TTL": d(def.ttl.0),
        "SuccessBeforePassing": def.success_before_passing,
        "FailuresBeforeWarning": def.failures_before_warning,
        "FailuresBeforeCritical": def.failures_before_critical,
        "DeregisterCriticalServiceAfter": d(def.deregister_critical_service_after.0),
        "OutputMaxSize": def.output_max_size,
    })
}

/// The stored definition of a check (written by `definition_json`, so it always decodes).
fn decode_stored(local: &LocalCheck) -> CheckDefinition {
    serde_json::from_value(local.definition.0.clone()).unwrap_or_default()
}

/// The `AggregatedStatus` of a set of checks, as `/v1/agent/health/service` reports it.
pub fn aggregated_status(checks: &[HealthCheck]) -> &'static str {
    if checks.iter().any(|c| {
        c.check_id == NODE_MAINTENANCE_ID || c.check_id.starts_with(SERVICE_MAINTENANCE_PREFIX)
    }) {
        return "maintenance";
    }
    let mut worst = PASSING;
    for c in checks {
        match c.status.as_str() {
            CRITICAL => return CRITICAL,
            WARNING => worst = WARNING,
            PASSING => {}
            _ => return "",
        }
    }
    worst
}

/// Builds a `Weights` default for the catalog (re-exported for the HTTP layer).
pub fn default_weights() -> Weights {
    Weights::default()
}

/// The check rows of a local service plus this node's local node-level checks.
pub fn service_health(
    r: &impl Readable,
    node: &str,
    service_id: &str,
) -> crate::store::Result<Vec<HealthCheck>> {
    let mut out = Vec::new();
    for local in agent_state::checks(r)? {
        if local.service_id == service_id || local.service_id.is_empty() {
            if let Some(row) = catalog::get_check(r, node, &local.check_id)? {
                out.push(row);
            }
        }
    }
    Ok(out)
}
