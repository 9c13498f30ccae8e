//! Agent configuration: `consul agent`'s flags and its JSON/HCL config files, merged into one
//! validated `Config` (low → high: raw file values → `FileConfig` → `Config`).
//!
//! Precedence as Consul's: built-in defaults (dev defaults with `-dev`), then config files and
//! directories in order, then `-hcl` fragments, then flags. Keys that only matter in a cluster
//! are accepted and ignored with a log line; an unknown key or a bad value stops the start with
//! an error naming it.

use crate::types::config_entry::ConfigEntry;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Consul version whose API this agent implements (reported by `/v1/agent/self`).
pub const CONSUL_VERSION: &str = "1.22.0";

/// `consul agent` flags (the `legate agent` command line).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentFlags {
    /// Development mode: a throwaway data dir (unless -data-dir is given), server, bound to 127.0.0.1.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dev: Option<bool>,
    /// Directory for the agent's durable state.
    #[arg(long = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// A JSON or HCL config file (repeatable).
    #[arg(long = "config-file")]
    pub config_file: Vec<PathBuf>,
    /// A directory of .json/.hcl config files, read in lexical order (repeatable).
    #[arg(long = "config-dir")]
    pub config_dir: Vec<PathBuf>,
    /// Read config files as this format ("hcl" or "json") whatever their extension.
    #[arg(long = "config-format")]
    pub config_format: Option<String>,
    /// Inline HCL config fragment (repeatable).
    #[arg(long = "hcl")]
    pub hcl: Vec<String>,
    #[arg(long = "node")]
    pub node: Option<String>,
    #[arg(long = "node-id")]
    pub node_id: Option<String>,
    #[arg(long = "datacenter")]
    pub datacenter: Option<String>,
    /// Address the HTTP API binds to.
    #[arg(long = "client")]
    pub client: Option<String>,
    #[arg(long = "bind")]
    pub bind: Option<String>,
    #[arg(long = "advertise")]
    pub advertise: Option<String>,
    #[arg(long = "http-port", allow_negative_numbers = true)]
    pub http_port: Option<i32>,
    /// The DNS interface's port, UDP and TCP (8600; -1 disables it).
    #[arg(long = "dns-port", allow_negative_numbers = true)]
    pub dns_port: Option<i32>,
    #[arg(long = "grpc-port", allow_negative_numbers = true)]
    pub grpc_port: Option<i32>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub server: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub bootstrap: Option<bool>,
    #[arg(long = "bootstrap-expect")]
    pub bootstrap_expect: Option<u32>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ui: Option<bool>,
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    #[arg(long = "log-json", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub log_json: Option<bool>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "enable-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_script_checks: Option<bool>,
    #[arg(long = "enable-local-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_local_script_checks: Option<bool>,
    /// Cluster flags accepted for compatibility and ignored on a single node.
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    #[arg(long = "join")]
    pub join: Vec<String>,
    #[arg(long = "encrypt")]
    pub encrypt: Option<String>,
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dev: bool,
    pub datacenter: String,
    pub primary_datacenter: String,
    pub node_name: String,
    pub node_id: Option<String>,
    /// `None` only in `-dev` without `-data-dir`: a throwaway directory is made at start.
    pub data_dir: Option<PathBuf>,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    pub client_addr: IpAddr,
    pub bind_addr: IpAddr,
    pub advertise_addr: IpAddr,
    pub ports: Ports,
    /// `addresses.http`, when set, overrides `client_addr` for the HTTP API.
    pub http_addr: Option<IpAddr>,
    pub log_level: String,
    pub log_json: bool,
    pub pid_file: Option<PathBuf>,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    pub ui: bool,
    /// Where the UI is served (`ui_config.content_path`, default `/ui/`), always with a
    /// leading and trailing slash as Consul normalizes it.
    pub ui_content_path: String,
    pub limits: Limits,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
    /// The shortest session TTL accepted (`session_ttl_min`, default 10s).
    pub session_ttl_min: Duration,
    pub node_meta: BTreeMap<String, String>,
    /// The `acl` block with the older top-level `acl_*` keys folded in.
    pub acl: AclConfig,
    /// `default_intention_policy` (`allow` or `deny`): what authorize answers when no
    /// intention matches; unset, the ACL default policy decides.
    pub default_intention_policy: Option<String>,
    /// `services`/`service` and `checks`/`check` definitions, for the agent-services work.
    pub services: Vec<Value>,
    pub checks: Vec<Value>,
    /// `config_entries.bootstrap`, decoded and checked: written at start by a server in the
    /// primary datacenter, each only if no entry of its kind and name exists yet.
    pub config_entries: Vec<ConfigEntry>,
    /// Files and directories read, so `reload` can read them again.
    pub config_files: Vec<PathBuf>,
    pub config_dirs: Vec<PathBuf>,
    /// Things worth logging once logging is set up (keys ignored on a single node).
    pub notices: Vec<String>,
    /// The `telemetry` keys that shape what `/v1/agent/metrics` reports.
    pub telemetry: TelemetryConfig,
    /// The flags this configuration was loaded from, so `reload` can load it again.
    pub flags: AgentFlags,
    pub connect: ConnectConfig,
    /// The DNS interface: `domain`, `alt_domain`, `recursors`, `dns_config` and `addresses.dns`.
    pub dns: DnsConfig,
    /// `watches`: run by the agent against its own HTTP API.
    pub watches: Vec<crate::watch::AgentWatch>,
}

/// The `telemetry` keys Consul's go-metrics setup reads that change what the agent reports
/// (the external sinks' addresses are ignored: `/v1/agent/metrics` is the only sink).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `prometheus_retention_time`: the Prometheus format is served only when it is positive,
    /// and a Prometheus series not updated for this long is dropped.
    pub prometheus_retention: Duration,
    /// `disable_hostname`: gauges are not prefixed with the host name.
    pub disable_hostname: bool,
    /// `metrics_prefix`: the first part of every name (`consul`; empty for none).
    pub metrics_prefix: String,
    /// `filter_default`: whether a metric no `prefix_filter` rule covers is reported.
    pub filter_default: bool,
    /// `prefix_filter` rules starting with `+` and `-`, without that sign.
    pub allowed_prefixes: Vec<String>,
    pub blocked_prefixes: Vec<String>,
    /// `disable_compat_1.9`: HTTP requests are not also reported under their pre-1.9 names.
    pub disable_compat_1_9: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            prometheus_retention: Duration::ZERO,
            disable_hostname: false,
            metrics_prefix: "consul".into(),
            filter_default: true,
            allowed_prefixes: Vec::new(),
            blocked_prefixes: Vec::new(),
            disable_compat_1_9: false,
        }
    }
}

/// The `connect` block: Connect and its CA (the built-in `consul` provider only).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectConfig {
    /// Off by default, on with `-dev` (as Consul's dev mode).
    pub enabled: bool,
    pub ca_provider: String,
    /// The provider settings a new CA starts with, spelled as the API spells them
    /// (`LeafCertTTL`...): Consul's defaults overridden by `ca_config`.
    pub ca_config: Map<String, Value>,
}

/// How the DNS interface answers (Consul's `dns_config` with the top-level `domain`,
/// `alt_domain` and `recursors`), with Consul's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Lower case, ending with a dot (`consul.`).
    pub domain: String,
    pub alt_domain: Option<String>,
    /// `addresses.dns`, when set, overrides `client_addr` for the DNS interface.
    pub addr: Option<IpAddr>,
    /// Where names outside the domains are forwarded (port 53 unless given).
    pub recursors: Vec<std::net::SocketAddr>,
    pub recursor_strategy: RecursorStrategy,
    pub recursor_timeout: Duration,
    /// Accepted as Consul's; this single server always answers from its own state, which
    /// is never stale.
    pub allow_stale: bool,
    pub max_stale: Duration,
    pub node_ttl: Duration,
    /// `service_ttl`: exact service names, and prefixes for keys ending with `*`.
    pub service_ttl: Vec<(String, Duration)>,
    pub only_passing: bool,
    pub udp_answer_limit: usize,
    /// 0: no limit.
    pub a_record_limit: usize,
    pub enable_truncate: bool,
    /// Accepted as Consul's; answers are read from the store, which needs no cache.
    pub use_cache: bool,
    pub cache_max_age: Duration,
    pub soa: SoaConfig,
    pub disable_compression: bool,
    /// Accepted as Consul's; namespaces are an Enterprise feature.
    pub prefer_namespace: bool,
    /// `enable_additional_node_meta_txt`: node meta as TXT records in SRV answers' extras.
    pub node_meta_txt: bool,
}

/// The order recursors are tried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecursorStrategy {
    Sequential,
    Random,
}

/// `dns_config.soa`: the SOA record's timers, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaConfig {
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub min_ttl: u32,
}

impl DnsConfig {
    /// The TTL of a service's answers: an exact `service_ttl` key, else the longest matching
    /// `*` prefix, else none (the caller falls back to `node_ttl`), as Consul's lookup.
    pub fn service_ttl(&self, service: &str) -> Option<Duration> {
        let mut best: Option<(usize, Duration)> = None;
        for (key, ttl) in &self.service_ttl {
            match key.strip_suffix('*') {
                None if key == service => return Some(*ttl),
                Some(prefix)
                    if service.starts_with(prefix)
                        && best.is_none_or(|(len, _)| prefix.len() >= len) =>
                {
                    best = Some((prefix.len(), *ttl));
                }
                _ => {}
            }
        }
        best.map(|(_, ttl)| ttl)
    }
}

/// A port of -1 disables the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub http: i32,
    pub https: i32,
    pub dns: i32,
    pub grpc: i32,
    pub grpc_tls: i32,
    pub server: i32,
    pub serf_lan: i32,
    pub serf_wan: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub kv_max_value_size: u64,
    pub txn_max_req_len: u64,
    /// Concurrent HTTP connections allowed from one client IP (0: no limit).
    pub http_max_conns_per_client: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: 512 * 1024,
            http_max_conns_per_client: 200,
        }
    }
}

/// A startup configuration error, naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Error parsing {file}: {reason}")]
    Parse { file: String, reason: String },
    #[error("Error reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The `acl` block, checked (Consul's ACL settings of `RuntimeConfig`).
#[derive(Debug, Clone)]
pub struct AclConfig {
    pub enabled: bool,
    /// What a token may do where none of its rules apply (`allow` or `deny`, default allow).
    pub default_policy: crate::acl::DefaultPolicy,
    /// `allow`, `deny`, `extend-cache` (default) or `async-cache`. This single server never
    /// loses its leader, so the setting is checked and reported but has no effect.
    pub down_policy: String,
    /// Whether tokens set through `/v1/agent/token/*` are saved in the data dir.
    pub enable_token_persistence: bool,
    /// Whether KV listings need `key:list` on their prefix (else they only leave out what
    /// the token may not read), as Consul's `acl.enable_key_list_policy`.
    pub enable_key_list_policy: bool,
    pub tokens: AclTokens,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_policy: crate::acl::DefaultPolicy::Allow,
            down_policy: "extend-cache".into(),
            enable_token_persistence: false,
            enable_key_list_policy: false,
            tokens: AclTokens::default(),
        }
    }
}

/// `acl.tokens`: the secrets the configuration supplies.
#[derive(Clone, Default)]
pub struct AclTokens {
    /// Created as a management token at start (and bootstraps the ACL system).
    pub initial_management: Option<String>,
    /// The agent's own token for its internal operations.
    pub agent: Option<String>,
    /// Used for requests that carry no token.
    pub default: Option<String>,
    /// Works on this agent's `/v1/agent/*` endpoints even when the servers are unreachable.
    pub agent_recovery: Option<String>,
    pub replication: Option<String>,
    pub config_file_service_registration: Option<String>,
    pub dns: Option<String>,
}

/// Secrets stay out of `{:?}` output (the configuration is logged at debug level).
impl std::fmt::Debug for AclTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |t: &Option<String>| if t.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("AclTokens")
            .field("initial_management", &set(&self.initial_management))
            .field("agent", &set(&self.agent))
            .field("default", &set(&self.default))
            .field("agent_recovery", &set(&self.agent_recovery))
            .field("replication", &set(&self.replication))
            .field(
                "config_file_service_registration",
                &set(&self.config_file_service_registration),
            )
            .field("dns", &set(&self.dns))
            .finish()
    }
}

/// The top-level `acl_*` keys Consul still reads, used where the `acl` block is silent.
struct Legacy {
    master_token: Option<String>,
    default_policy: Option<String>,
    down_policy: Option<String>,
    token: Option<String>,
    agent_token: Option<String>,
}

impl AclConfig {
    fn build(file: FileAcl, legacy: Legacy) -> Result<AclConfig, ConfigError> {
        let tokens = file.tokens.unwrap_or_default();
        let default_policy = match file
            .default_policy
            .or(legacy.default_policy)
            .as_deref()
            .unwrap_or("allow")
        {
            "allow" => crate::acl::DefaultPolicy::Allow,
            "deny" => crate::acl::DefaultPolicy::Deny,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "acl.default_policy: invalid value {other:?}: must be \"allow\" or \"deny\""
                )))
            }
        };
        let down_policy = file
            .down_policy
            .or(legacy.down_policy)
            .unwrap_or_else(|| "extend-cache".into());
        if !["allow", "deny", "extend-cache", "async-cache"].contains(&down_policy.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "acl.down_policy: invalid value {down_policy:?}: must be one of \"allow\", \"deny\", \"extend-cache\" or \"async-cache\""
            )));
        }
        // The deprecated alias and its replacement must agree, as in Consul.
        let pick = |new: Option<String>, new_key: &str, old: Option<String>, old_key: &str| {
            match (new, old) {
                (Some(_), Some(_)) => Err(ConfigError::Invalid(format!(
                    "acl.tokens.{old_key} and acl.tokens.{new_key} cannot both be set; acl.tokens.{old_key} is deprecated, keep only acl.tokens.{new_key}"
                ))),
                (new, old) => Ok(new.or(old)),
            }
        };
        let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
        Ok(AclConfig {
            enabled: file.enabled.unwrap_or(false),
            default_policy,
            down_policy,
            enable_token_persistence: file.enable_token_persistence.unwrap_or(false),
            enable_key_list_policy: file.enable_key_list_policy.unwrap_or(false),
            tokens: AclTokens {
                initial_management: non_empty(
                    pick(
                        tokens.initial_management,
                        "initial_management",
                        tokens.master,
                        "master",
                    )?
                    .or(legacy.master_token),
                ),
                agent: non_empty(tokens.agent.or(legacy.agent_token)),
                default: non_empty(tokens.default.or(legacy.token)),
                agent_recovery: non_empty(pick(
                    tokens.agent_recovery,
                    "agent_recovery",
                    tokens.agent_master,
                    "agent_master",
                )?),
                replication: non_empty(tokens.replication),
                config_file_service_registration: non_empty(
                    tokens.config_file_service_registration,
                ),
                dns: non_empty(tokens.dns),
            },
        })
    }
}

/// The `acl` block as written. The cache TTLs and replication switches are accepted (a
/// Consul configuration carries them) but mean nothing on a single server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAcl {
    enabled: Option<bool>,
    default_policy: Option<String>,
    down_policy: Option<String>,
    enable_token_persistence: Option<bool>,
    #[serde(rename = "enable_token_replication")]
    _enable_token_replication: Option<bool>,
    enable_key_list_policy: Option<bool>,
    #[serde(rename = "policy_ttl")]
    _policy_ttl: Option<String>,
    #[serde(rename = "role_ttl")]
    _role_ttl: Option<String>,
    #[serde(rename = "token_ttl")]
    _token_ttl: Option<String>,
    tokens: Option<FileAclTokens>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAclTokens {
    initial_management: Option<String>,
    master: Option<String>,
    agent: Option<String>,
    agent_recovery: Option<String>,
    agent_master: Option<String>,
    default: Option<String>,
    replication: Option<String>,
    config_file_service_registration: Option<String>,
    dns: Option<String>,
}

impl std::fmt::Debug for FileAclTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileAclTokens { .. }")
    }
}

/// Everything a config file may hold. Unknown keys are refused; cluster-only keys are kept as
/// raw values only to be reported as ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    datacenter: Option<String>,
    primary_datacenter: Option<String>,
    node_name: Option<String>,
    node_id: Option<String>,
    data_dir: Option<PathBuf>,
    server: Option<bool>,
    bootstrap: Option<bool>,
    bootstrap_expect: Option<u32>,
    client_addr: Option<String>,
    bind_addr: Option<String>,
    advertise_addr: Option<String>,
    ports: Option<FilePorts>,
    addresses: Option<FileAddresses>,
    log_level: Option<String>,
    log_json: Option<bool>,
    pid_file: Option<PathBuf>,
    enable_script_checks: Option<bool>,
    enable_local_script_checks: Option<bool>,
    ui: Option<bool>,
    ui_config: Option<Value>,
    limits: Option<FileLimits>,
    performance: Option<FilePerformance>,
    default_query_time: Option<String>,
    max_query_time: Option<String>,
    session_ttl_min: Option<String>,
    node_meta: Option<BTreeMap<String, String>>,
    acl: Option<FileAcl>,
    /// Pre-1.4 spellings of `acl.tokens.initial_management`, `acl.default_policy`,
    /// `acl.down_policy`, `acl.tokens.default` and `acl.tokens.agent`.
    acl_master_token: Option<String>,
    acl_default_policy: Option<String>,
    acl_down_policy: Option<String>,
    acl_token: Option<String>,
    acl_agent_token: Option<String>,
    default_intention_policy: Option<String>,
    service: Option<Value>,
    services: Option<Value>,
    check: Option<Value>,
    checks: Option<Value>,
    config_entries: Option<FileConfigEntries>,
    connect: Option<FileConnect>,
    domain: Option<String>,
    alt_domain: Option<String>,
    recursors: Option<Vec<String>>,
    dns_config: Option<FileDnsConfig>,
    watches: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDnsConfig {
    allow_stale: Option<bool>,
    max_stale: Option<String>,
    node_ttl: Option<String>,
    service_ttl: Option<BTreeMap<String, String>>,
    only_passing: Option<bool>,
    udp_answer_limit: Option<i64>,
    a_record_limit: Option<i64>,
    enable_truncate: Option<bool>,
    use_cache: Option<bool>,
    cache_max_age: Option<String>,
    recursor_strategy: Option<String>,
    recursor_timeout: Option<String>,
    soa: Option<FileSoa>,
    disable_compression: Option<bool>,
    prefer_namespace: Option<bool>,
    enable_additional_node_meta_txt: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSoa {
    refresh: Option<u32>,
    retry: Option<u32>,
    expire: Option<u32>,
    min_ttl: Option<u32>,
}

/// A domain as the DNS interface matches it: lower case, ending with a dot.
fn dns_domain(key: &str, text: &str) -> Result<String, ConfigError> {
    let domain = text.trim_end_matches('.').to_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if domain.is_empty() || !domain.split('.').all(valid_label) {
        return Err(ConfigError::Invalid(format!(
            "{key}: {text:?} is not a valid DNS domain"
        )));
    }
    Ok(format!("{domain}."))
}

/// A recursor as Consul accepts it: an IP address, with an optional port (53 by default).
fn recursor_address(text: &str) -> Result<std::net::SocketAddr, ConfigError> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| (ip, 53).into())
        .map_err(|_| {
            ConfigError::Invalid(format!(
                "recursors: invalid recursor address {text:?}: must be an IP address, with an optional port"
            ))
        })
}

/// Checks `domain`, `alt_domain`, `recursors` and `dns_config`, filling in Consul's defaults.
fn dns_config(
    domain: Option<String>,
    alt_domain: Option<String>,
    recursors: Option<Vec<String>>,
    raw: Option<FileDnsConfig>,
    addr: Option<IpAddr>,
) -> Result<DnsConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let domain = dns_domain("domain", domain.as_deref().unwrap_or("consul."))?;
    let alt_domain = alt_domain
        .filter(|d| !d.is_empty())
        .map(|d| dns_domain("alt_domain", &d))
        .transpose()?;
    if alt_domain.as_deref() == Some(domain.as_str()) {
        return Err(ConfigError::Invalid(format!(
            "alt_domain: {domain:?} cannot be the same as domain"
        )));
    }
    let duration = |key: &str, text: Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(t) => crate::duration::parse(&t)
            .map_err(|e| ConfigError::Invalid(format!("dns_config.{key}: {e}"))),
    };
    let limit = |key: &str, value: Option<i64>, default: usize| match value {
        None => Ok(default),
        Some(v) => usize::try_from(v)
            .map_err(|_| ConfigError::Invalid(format!("dns_config.{key}: {v} cannot be negative"))),
    };
    let recursor_strategy = match raw.recursor_strategy.as_deref() {
        None | Some("" | "sequential") => RecursorStrategy::Sequential,
        Some("random") => RecursorStrategy::Random,
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "dns_config.recursor_strategy: {other:?} is neither \"sequential\" nor \"random\""
            )))
        }
    };
    let mut service_ttl = Vec::new();
    for (name, ttl) in raw.service_ttl.unwrap_or_default() {
        let ttl = crate::duration::parse(&ttl)
            .map_err(|e| ConfigError::Invalid(format!("dns_config.service_ttl[{name:?}]: {e}")))?;
        service_ttl.push((name, ttl));
    }
    let soa = raw.soa.unwrap_or_default();
    Ok(DnsConfig {
        domain,
        alt_domain,
        addr,
        recursors: recursors
            .unwrap_or_default()
            .iter()
            .map(|r| recursor_address(r))
            .collect::<Result<_, _>>()?,
        recursor_strategy,
        recursor_timeout: duration(
            "recursor_timeout",
            raw.recursor_timeout,
            Duration::from_secs(2),
        )?,
        allow_stale: raw.allow_stale.unwrap_or(true),
        max_stale: duration(
            "max_stale",
            raw.max_stale,
            Duration::from_secs(87600 * 3600),
        )?,
        node_ttl: duration("node_ttl", raw.node_ttl, Duration::ZERO)?,
        service_ttl,
        only_passing: raw.only_passing.unwrap_or(false),
        udp_answer_limit: limit("udp_answer_limit", raw.udp_answer_limit, 3)?,
        a_record_limit: limit("a_record_limit", raw.a_record_limit, 0)?,
        enable_truncate: raw.enable_truncate.unwrap_or(false),
        use_cache: raw.use_cache.unwrap_or(false),
        cache_max_age: duration("cache_max_age", raw.cache_max_age, Duration::ZERO)?,
        soa: SoaConfig {
            refresh: soa.refresh.unwrap_or(3600),
            retry: soa.retry.unwrap_or(600),
            expire: soa.expire.unwrap_or(86400),
            min_ttl: soa.min_ttl.unwrap_or(0),
        },
        disable_compression: raw.disable_compression.unwrap_or(false),
        prefer_namespace: raw.prefer_namespace.unwrap_or(false),
        node_meta_txt: raw.enable_additional_node_meta_txt.unwrap_or(true),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConnect {
    enabled: Option<bool>,
    ca_provider: Option<String>,
    ca_config: Option<Map<String, Value>>,
}

/// Checks the `connect` block and spells `ca_config`'s keys as the CA API does, so the stored
/// configuration reads the same whether it came from a file or from the API.
fn connect_config(raw: Option<FileConnect>, dev: bool) -> Result<ConnectConfig, ConfigError> {
    use crate::connect::config::{canonical_key, default_map};
    let raw = raw.unwrap_or_default();
    let ca_provider = raw.ca_provider.unwrap_or_else(|| "consul".into());
    if ca_provider != "consul" {
        return Err(ConfigError::Invalid(format!(
            "connect.ca_provider: {ca_provider:?} is not supported; Legate has only the built-in \"consul\" provider"
        )));
    }
    let mut ca_config = default_map();
    for (key, value) in raw.ca_config.unwrap_or_default() {
        let field = canonical_key(&key).ok_or_else(|| {
            ConfigError::Invalid(format!("connect.ca_config: unknown key {key:?}"))
        })?;
        ca_config.insert(field.into(), value);
    }
    crate::connect::CaSettings::parse(&ca_config)
        .map_err(|e| ConfigError::Invalid(format!("connect.ca_config: {e}")))?;
    Ok(ConnectConfig {
        enabled: raw.enabled.unwrap_or(dev),
        ca_provider,
        ca_config,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfigEntries {
    /// One entry or a list (an HCL block, or several).
    bootstrap: Option<Value>,
}

/// Reads the `telemetry` block: the keys of `TelemetryConfig` are checked and kept, the sinks'
/// settings are logged as ignored, and `prefix_filter` rules Consul warns about are skipped
/// with the same warning.
fn telemetry_config(
    block: Value,
    notices: &mut Vec<String>,
) -> Result<TelemetryConfig, ConfigError> {
    let mut t = TelemetryConfig::default();
    let Value::Object(block) = block else {
        return Err(ConfigError::Invalid(format!(
            "telemetry: expected a block, got {block}"
        )));
    };
    let boolean = |key: &str, v: &Value| {
        v.as_bool().ok_or_else(|| {
            ConfigError::Invalid(format!("telemetry.{key}: expected a boolean, got {v}"))
        })
    };
    let text = |key: &str, v: &Value| {
        v.as_str().map(str::to_owned).ok_or_else(|| {
            ConfigError::Invalid(format!("telemetry.{key}: expected a string, got {v}"))
        })
    };
    for (key, v) in &block {
        match key.as_str() {
            "prometheus_retention_time" => {
                t.prometheus_retention = crate::duration::parse(&text(key, v)?).map_err(|e| {
                    ConfigError::Invalid(format!("telemetry.prometheus_retention_time: {e}"))
                })?
            }
            "disable_hostname" => t.disable_hostname = boolean(key, v)?,
            "metrics_prefix" => t.metrics_prefix = text(key, v)?,
            "filter_default" => t.filter_default = boolean(key, v)?,
            "disable_compat_1.9" => t.disable_compat_1_9 = boolean(key, v)?,
            "prefix_filter" => {
                let rules = v.as_array().ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "telemetry.prefix_filter: expected a list of strings, got {v}"
                    ))
                })?;
                for rule in rules {
                    let rule = text(key, rule)?;
                    if rule.is_empty() {
                        notices.push("Cannot have empty filter rule in prefix_filter".into());
                    } else if let Some(prefix) = rule.strip_prefix('+') {
                        t.allowed_prefixes.push(prefix.into());
                    } else if let Some(prefix) = rule.strip_prefix('-') {
                        t.blocked_prefixes.push(prefix.into());
                    } else {
                        notices.push(format!(
                            "Filter rule must begin with either '+' or '-': {rule:?}"
                        ));
                    }
                }
            }
            _ => notices.push(format!(
                "config key \"telemetry.{key}\" ignored: /v1/agent/metrics is the only metrics sink"
            )),
        }
    }
    Ok(t)
}

/// `ui_config.content_path` with the slashes Consul adds: `ui` and `/ui` both mean `/ui/`.
fn ui_content_path(configured: Option<&str>) -> String {
    let path = configured.filter(|p| !p.is_empty()).unwrap_or("/ui/");
    let lead = if path.starts_with('/') { "" } else { "/" };
    let trail = if path.ends_with('/') { "" } else { "/" };
    format!("{lead}{path}{trail}")
}

/// Decodes and checks `config_entries.bootstrap` as Consul's config builder does, naming the
/// entry that fails.
fn bootstrap_entries(raw: Option<FileConfigEntries>) -> Result<Vec<ConfigEntry>, ConfigError> {
    let raw = raw.and_then(|c| c.bootstrap);
    definitions(raw, None)
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let invalid =
                |e: String| ConfigError::Invalid(format!("config_entries.bootstrap[{i}]: {e}"));
            let mut entry = ConfigEntry::decode(value).map_err(invalid)?;
            entry.check().map_err(invalid)?;
            Ok(entry)
        })
        .collect()
}

/// Decodes `watches` as Consul's agent does when it starts them, naming the entry that fails.
fn agent_watches(raw: Option<Value>) -> Result<Vec<crate::watch::AgentWatch>, ConfigError> {
    definitions(raw, None)
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            crate::watch::spec::parse_agent_watch(entry)
                .map_err(|e| ConfigError::Invalid(format!("watches[{i}]: {e}")))
        })
        .collect()
}

/// Cluster and transport keys a single node has no use for: accepted, logged, ignored.
const IGNORED_KEYS: &[&str] = &[
    "retry_join",
    "retry_join_wan",
    "start_join",
    "start_join_wan",
    "retry_interval",
    "retry_max",
    "rejoin_after_leave",
    "leave_on_terminate",
    "skip_leave_on_interrupt",
    "encrypt",
    "encrypt_verify_incoming",
    "encrypt_verify_outgoing",
    "serf_lan",
    "serf_wan",
    "advertise_addr_wan",
    "translate_wan_addrs",
    "raft_protocol",
    "raft_snapshot_threshold",
    "raft_snapshot_interval",
    "raft_trailing_logs",
    "autopilot",
    "reconnect_timeout",
    "reconnect_timeout_wan",
    "disable_update_check",
    "disable_remote_exec",
    "disable_host_node_id",
    "tls",
    "auto_encrypt",
    "license_path",
];

// Every field is parsed so a bad value stops the start; those a single node has no use for
// are not read afterwards.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePorts {
    http: Option<i32>,
    https: Option<i32>,
    dns: Option<i32>,
    grpc: Option<i32>,
    grpc_tls: Option<i32>,
    server: Option<i32>,
    serf_lan: Option<i32>,
    serf_wan: Option<i32>,
    sidecar_min_port: Option<i32>,
    sidecar_max_port: Option<i32>,
    expose_min_port: Option<i32>,
    expose_max_port: Option<i32>,
}

// Every field is parsed so a bad value stops the start; those a single node has no use for
// are not read afterwards.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAddresses {
    http: Option<String>,
    https: Option<String>,
    dns: Option<String>,
    grpc: Option<String>,
    grpc_tls: Option<String>,
}

// Every field is parsed so a bad value stops the start; those a single node has no use for
// are not read afterwards.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    kv_max_value_size: Option<u64>,
    txn_max_req_len: Option<u64>,
    http_max_conns_per_client: Option<u64>,
    https_handshake_timeout: Option<String>,
    rpc_handshake_timeout: Option<String>,
    rpc_max_burst: Option<u64>,
    rpc_max_conns_per_client: Option<u64>,
    rpc_rate: Option<f64>,
    request_limits: Option<Value>,
}

// Every field is parsed so a bad value stops the start; those a single node has no use for
// are not read afterwards.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePerformance {
    raft_multiplier: Option<u32>,
    leave_drain_time: Option<String>,
    rpc_hold_timeout: Option<String>,
}

impl Config {
    /// Builds the configuration from flags and the files they name.
    pub fn load(flags: &AgentFlags) -> Result<Config, ConfigError> {
        let format = match flags.config_format.as_deref() {
            None | Some("") => None,
            Some(f @ ("hcl" | "json")) => Some(f),
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "-config-format must be either 'hcl' or 'json'".into(),
                ))
            }
        };
        let mut merged = Value::Object(Map::new());
        for file in &flags.config_file {
            merge(&mut merged, read_file(file, format)?);
        }
        for dir in &flags.config_dir {
            for file in config_dir_files(dir, format)? {
                merge(&mut merged, read_file(&file, format)?);
            }
        }
        for (i, fragment) in flags.hcl.iter().enumerate() {
            merge(
                &mut merged,
                parse_text(&format!("-hcl fragment {}", i + 1), fragment, true)?,
            );
        }
        let mut notices = Vec::new();
        let mut telemetry = TelemetryConfig::default();
        if let Value::Object(map) = &mut merged {
            if let Some(block) = map.remove("telemetry") {
                telemetry = telemetry_config(block, &mut notices)?;
            }
            for key in IGNORED_KEYS {
                if map.remove(*key).is_some() {
                    notices.push(format!(
                        "config key {key:?} ignored: it only applies to a multi-node cluster"
                    ));
                }
            }
        }
        let file: FileConfig = serde_json::from_value(merged).map_err(|e| ConfigError::Parse {
            file: "config".into(),
            reason: e.to_string(),
        })?;
        if !flags.retry_join.is_empty() || !flags.join.is_empty() || flags.encrypt.is_some() {
            notices.push(
                "-join, -retry-join and -encrypt are ignored: this agent is a single node".into(),
            );
        }
        let mut config = Self::build(flags, file, notices)?;
        if !config.watches.is_empty() && config.http_socket().is_none() {
            return Err(ConfigError::Invalid(
                "watch plans require an HTTP or HTTPS endpoint".into(),
            ));
        }
        config.telemetry = telemetry;
        Ok(config)
    }

    fn build(
        flags: &AgentFlags,
        file: FileConfig,
        notices: Vec<String>,
    ) -> Result<Config, ConfigError> {
        let dev = flags.dev.unwrap_or(false);
        let data_dir = flags.data_dir.clone().or(file.data_dir);
        if !dev && data_dir.is_none() {
            return Err(ConfigError::Invalid(
                "data_dir cannot be empty: set -data-dir or data_dir in a config file (or use -dev)".into(),
            ));
        }
        let datacenter = flags
            .datacenter
            .clone()
            .or(file.datacenter)
            .unwrap_or_else(|| "dc1".into())
            .to_lowercase();
        if datacenter.is_empty()
            || !datacenter
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::Invalid(format!(
                "datacenter {datacenter:?} cannot contain characters other than letters, digits, '-' and '_'"
            )));
        }
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let parse_ip = |what: &str, text: Option<String>| -> Result<Option<IpAddr>, ConfigError> {
            text.map(|t| {
                t.parse()
                    .map_err(|_| ConfigError::Invalid(format!("{what}: invalid IP address {t:?}")))
            })
            .transpose()
        };
        let client_addr =
            parse_ip("client_addr", flags.client.clone().or(file.client_addr))?.unwrap_or(loopback);
        let bind_addr =
            parse_ip("bind_addr", flags.bind.clone().or(file.bind_addr))?.unwrap_or(loopback);
        let advertise_addr = parse_ip(
            "advertise_addr",
            flags.advertise.clone().or(file.advertise_addr),
        )?
        .unwrap_or(if bind_addr.is_unspecified() {
            loopback
        } else {
            bind_addr
        });
        let addresses = file.addresses.unwrap_or_default();
        let http_addr = parse_ip("addresses.http", addresses.http)?;
        let fp = file.ports.unwrap_or_default();
        let ports = Ports {
            http: flags.http_port.or(fp.http).unwrap_or(8500),
            https: fp.https.unwrap_or(-1),
            dns: flags.dns_port.or(fp.dns).unwrap_or(8600),
            grpc: flags
                .grpc_port
                .or(fp.grpc)
                .unwrap_or(if dev { 8502 } else { -1 }),
            grpc_tls: fp.grpc_tls.unwrap_or(if dev { 8503 } else { -1 }),
            server: fp.server.unwrap_or(8300),
            serf_lan: fp.serf_lan.unwrap_or(8301),
            serf_wan: fp.serf_wan.unwrap_or(8302),
        };
        for (name, port) in [
            ("ports.http", ports.http),
            ("ports.dns", ports.dns),
            ("ports.server", ports.server),
        ] {
            if !(-1..=65535).contains(&port) {
                return Err(ConfigError::Invalid(format!("{name}: invalid port {port}")));
            }
        }
        let log_level = flags
            .log_level
            .clone()
            .or(file.log_level)
            .unwrap_or_else(|| "info".into())
            .to_lowercase();
        if !["trace", "debug", "info", "warn", "err", "error"].contains(&log_level.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "log_level: invalid level {log_level:?}"
            )));
        }
        let fl = file.limits.unwrap_or_default();
        let defaults = Limits::default();
        let limits = Limits {
            kv_max_value_size: fl.kv_max_value_size.unwrap_or(defaults.kv_max_value_size),
            http_max_conns_per_client: fl
                .http_max_conns_per_client
                .unwrap_or(defaults.http_max_conns_per_client),
            txn_max_req_len: fl.txn_max_req_len.unwrap_or(defaults.txn_max_req_len),
        };
        if let Some(perf) = file.performance {
            if let Some(m) = perf.raft_multiplier.filter(|m| !(1..=10).contains(m)) {
                return Err(ConfigError::Invalid(format!(
                    "performance.raft_multiplier cannot be {m}. Must be between 1 and 10"
                )));
            }
        }
        let duration =
            |key: &str, text: Option<String>, default: u64| -> Result<Duration, ConfigError> {
                match text {
                    None => Ok(Duration::from_secs(default)),
                    Some(t) => crate::duration::parse(&t)
                        .map_err(|e| ConfigError::Invalid(format!("{key}: {e}"))),
                }
            };
        let node_name = flags
            .node
            .clone()
            .or(file.node_name)
            .unwrap_or_else(hostname);
        let server = dev || flags.server.or(file.server).unwrap_or(false);
        if let Some(p) = file
            .default_intention_policy
            .as_deref()
            .filter(|p| !matches!(*p, "allow" | "deny"))
        {
            return Err(ConfigError::Invalid(format!(
                "default_intention_policy: {p:?} is neither \"allow\" nor \"deny\""
            )));
        }
        Ok(Config {
            dev,
            primary_datacenter: file
                .primary_datacenter
                .unwrap_or_else(|| datacenter.clone()),
            datacenter,
            node_name,
            node_id: flags.node_id.clone().or(file.node_id),
            data_dir,
            server,
            bootstrap: flags.bootstrap.or(file.bootstrap).unwrap_or(dev),
            bootstrap_expect: flags
                .bootstrap_expect
                .or(file.bootstrap_expect)
                .unwrap_or(0),
            client_addr,
            bind_addr,
            advertise_addr,
            ports,
            http_addr,
            log_level,
            log_json: flags.log_json.or(file.log_json).unwrap_or(false),
            pid_file: flags.pid_file.clone().or(file.pid_file),
            enable_script_checks: flags
                .enable_script_checks
                .or(file.enable_script_checks)
                .unwrap_or(false),
            enable_local_script_checks: flags
                .enable_local_script_checks
                .or(file.enable_local_script_checks)
                .unwrap_or(false),
            ui: flags
                .ui
                .or(file.ui)
                .or(file
                    .ui_config
                    .as_ref()
                    .and_then(|u| u.get("enabled"))
                    .and_then(Value::as_bool))
                .unwrap_or(dev),
            ui_content_path: ui_content_path(
                file.ui_config
                    .as_ref()
                    .and_then(|u| u.get("content_path"))
                    .and_then(Value::as_str),
            ),
            limits,
            default_query_time: duration("default_query_time", file.default_query_time, 300)?,
            max_query_time: duration("max_query_time", file.max_query_time, 600)?,
            session_ttl_min: duration("session_ttl_min", file.session_ttl_min, 10)?,
            node_meta: file.node_meta.unwrap_or_default(),
            acl: AclConfig::build(
                file.acl.unwrap_or_default(),
                Legacy {
                    master_token: file.acl_master_token,
                    default_policy: file.acl_default_policy,
                    down_policy: file.acl_down_policy,
                    token: file.acl_token,
                    agent_token: file.acl_agent_token,
                },
            )?,
            default_intention_policy: file.default_intention_policy,
            services: definitions(file.service, file.services),
            checks: definitions(file.check, file.checks),
            config_entries: bootstrap_entries(file.config_entries)?,
            config_files: flags.config_file.clone(),
            config_dirs: flags.config_dir.clone(),
            notices,
            telemetry: TelemetryConfig::default(),
            flags: flags.clone(),
            connect: connect_config(file.connect, dev)?,
            dns: dns_config(
                file.domain,
                file.alt_domain,
                file.recursors,
                file.dns_config,
                parse_ip("addresses.dns", addresses.dns)?,
            )?,
            watches: agent_watches(file.watches)?,
        })
    }

    /// The address the HTTP API listens on, or `None` when `ports.http` is -1.
    pub fn http_socket(&self) -> Option<std::net::SocketAddr> {
        (self.ports.http >= 0).then(|| {
            (
                self.http_addr.unwrap_or(self.client_addr),
                self.ports.http as u16,
            )
                .into()
        })
    }

    /// The address the DNS interface listens on (UDP and TCP), or `None` when `ports.dns`
    /// is -1.
    pub fn dns_socket(&self) -> Option<std::net::SocketAddr> {
        (self.ports.dns >= 0).then(|| {
            (
                self.dns.addr.unwrap_or(self.client_addr),
                self.ports.dns as u16,
            )
                .into()
        })
    }

    /// This node's server RPC address (what `/v1/status/leader` reports).
    pub fn server_address(&self) -> String {
        std::net::SocketAddr::from((self.advertise_addr, self.ports.server.max(0) as u16))
            .to_string()
    }
}

/// `service`/`services` (and `check`/`checks`) may each be one object or a list.
fn definitions(single: Option<Value>, many: Option<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for v in [single, many].into_iter().flatten() {
        match v {
            Value::Array(items) => out.extend(items),
            other => out.push(other),
        }
    }
    out
}

/// This machine's host name (Go's `os.Hostname`), or `legate` when it has none.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "legate".into())
}

/// The config files of a directory: those named .json or .hcl, or every file when the format
/// is given.
fn config_dir_files(dir: &Path, format: Option<&str>) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::Read {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && (format.is_some()
                    || matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "hcl")))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn read_file(path: &Path, format: Option<&str>) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let is_hcl = match format {
        Some(format) => format == "hcl",
        None => path.extension().and_then(|e| e.to_str()) == Some("hcl"),
    };
    parse_text(&path.display().to_string(), &text, is_hcl)
}

/// Parses one config source into a JSON object (HCL blocks become nested objects).
pub fn parse_text(name: &str, text: &str, hcl: bool) -> Result<Value, ConfigError> {
    let parsed: Result<Value, String> = if hcl {
        hcl::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    };
    let value = parsed.map_err(|reason| ConfigError::Parse {
        file: name.to_string(),
        reason,
    })?;
    let Value::Object(mut map) = value else {
        return Err(ConfigError::Parse {
            file: name.to_string(),
            reason: "top level must be an object".into(),
        });
    };
    // One HCL block is an object, several a list; as a list in every source, bootstrap
    // entries from several sources add up when merged instead of merging into one.
    if let Some(Value::Object(entries)) = map.get_mut("config_entries") {
        if let Some(single @ Value::Object(_)) = entries.get_mut("bootstrap") {
            *single = Value::Array(vec![single.take()]);
        }
    }
    Ok(Value::Object(map))
}

/// Merges `next` into `base` as Consul merges config sources: objects merge key by key,
/// lists append, anything else is replaced.
fn merge(base: &mut Value, next: Value) {
    match (base, next) {
        (Value::Object(b), Value::Object(n)) => {
            for (k, v) in n {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(n)) => b.extend(n),
        (b, n) => *b = n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(flags: AgentFlags) -> Result<Config, ConfigError> {
        Config::load(&flags)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn json_and_hcl_files_merge_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            dir.path(),
            "a.json",
            r#"{"datacenter":"east","ports":{"http":9500},"node_name":"n1"}"#,
        );
        let hcl = write(
            dir.path(),
            "b.hcl",
            "data_dir = \"/tmp/x\"\nports { dns = -1 }\nlimits { kv_max_value_size = 1024 }\nretry_join = [\"a\"]\n",
        );
        let cfg = load(AgentFlags {
            config_file: vec![json, hcl],
            node: Some("flagged".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.datacenter, "east");
        assert_eq!((cfg.ports.http, cfg.ports.dns), (9500, -1));
        assert_eq!(cfg.limits.kv_max_value_size, 1024);
        assert_eq!(cfg.node_name, "flagged");
        assert_eq!(cfg.data_dir.as_deref(), Some(Path::new("/tmp/x")));
    }

    #[test]
    fn connect_is_on_in_dev_and_its_ca_config_is_spelled_as_the_api() {
        let dev = load(AgentFlags {
            dev: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert!(dev.connect.enabled);
        assert_eq!(dev.connect.ca_config["LeafCertTTL"], "72h");
        let cfg = load(AgentFlags {
            data_dir: Some("/x".into()),
            hcl: vec![
                "connect {\n enabled = true\n ca_config {\n leaf_cert_ttl = \"2h\"\n private_key_type = \"rsa\"\n private_key_bits = 2048\n }\n}".into(),
            ],
            ..Default::default()
        })
        .unwrap();
        assert!(cfg.connect.enabled);
        assert_eq!(cfg.connect.ca_config["LeafCertTTL"], "2h");
        assert_eq!(cfg.connect.ca_config["PrivateKeyType"], "rsa");
        assert_eq!(cfg.connect.ca_config["RootCertTTL"], "87600h");
        let err = |hcl: &str| {
            load(AgentFlags {
                data_dir: Some("/x".into()),
                hcl: vec![hcl.into()],
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err("connect {\n ca_config {\n leaf_cert = \"2h\"\n }\n}"),
            "connect.ca_config: unknown key \"leaf_cert\""
        );
        assert_eq!(
            err("connect {\n ca_config {\n leaf_cert_ttl = \"1m\"\n }\n}"),
            "connect.ca_config: leaf cert TTL must be greater or equal than 1h0m0s"
        );
        assert!(err("connect { ca_provider = \"vault\" }").contains("only the built-in"));
        assert!(err("connect { bogus = true }").contains("bogus"));
    }

    #[test]
    fn the_acl_block_and_its_legacy_keys() {
        let dir = tempfile::tempdir().unwrap();
        let hcl = write(
            dir.path(),
            "acl.hcl",
            "data_dir = \"/x\"\nacl_master_token = \"old\"\nacl_token = \"anon\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n  tokens {\n    agent = \"a\"\n  }\n}\n",
        );
        let cfg = load(AgentFlags {
            config_file: vec![hcl],
            ..Default::default()
        })
        .unwrap();
        let acl = &cfg.acl;
        assert!(acl.enabled);
        assert_eq!(acl.default_policy, crate::acl::DefaultPolicy::Deny);
        assert_eq!(acl.down_policy, "extend-cache");
        assert_eq!(acl.tokens.initial_management.as_deref(), Some("old"));
        assert_eq!(acl.tokens.default.as_deref(), Some("anon"));
        assert_eq!(acl.tokens.agent.as_deref(), Some("a"));
        assert!(
            !format!("{cfg:?}").contains("\"old\""),
            "secrets stay out of Debug"
        );

        for (text, wanted) in [
            (
                r#"{"data_dir":"/x","acl":{"default_policy":"maybe"}}"#,
                "acl.default_policy",
            ),
            (
                r#"{"data_dir":"/x","acl":{"down_policy":"panic"}}"#,
                "acl.down_policy",
            ),
            (
                r#"{"data_dir":"/x","acl":{"tokens":{"master":"a","initial_management":"b"}}}"#,
                "cannot both be set",
            ),
        ] {
            let f = write(dir.path(), "bad.json", text);
            let err = load(AgentFlags {
                config_file: vec![f],
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(wanted), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "a.json", r#"{"data_dir":"/x","no_such_key":1}"#);
        let err = load(AgentFlags {
            config_file: vec![f],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        let f = write(
            dir.path(),
            "b.json",
            r#"{"data_dir":"/x","ports":{"http":"abc"}}"#,
        );
        let err = load(AgentFlags {
            config_file: vec![f],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        let err = load(AgentFlags {
            dev: Some(true),
            hcl: vec!["max_query_time = \"forever\"".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_query_time"), "{err}");
    }

    #[test]
    fn watches_are_parsed_and_need_the_http_api() {
        let watch = |extra: &str| AgentFlags {
            dev: Some(true),
            hcl: vec![
                r#"watches = [{ type = "key", key = "k", args = ["true"] }]"#.into(),
                extra.into(),
            ],
            ..Default::default()
        };
        let config = load(watch("")).unwrap();
        assert_eq!(config.watches.len(), 1);
        assert_eq!(
            config.watches[0].handler,
            crate::watch::spec::Handler::Args(vec!["true".into()])
        );
        let err = load(watch("ports { http = -1 }")).unwrap_err();
        assert!(
            err.to_string()
                .contains("watch plans require an HTTP or HTTPS endpoint"),
            "{err}"
        );
    }

    #[test]
    fn telemetry_keys_shaping_the_metrics_are_read_and_the_sinks_ignored() {
        let telemetry = |block: &str| {
            load(AgentFlags {
                dev: Some(true),
                hcl: vec![format!("telemetry {{\n{block}\n}}")],
                ..Default::default()
            })
        };
        let config = telemetry(
            r#"prometheus_retention_time = "30s"
               disable_hostname = true
               metrics_prefix = "edge"
               filter_default = false
               prefix_filter = ["+edge.raft", "-edge.http", "", "edge.kvs"]
               statsd_address = "127.0.0.1:8125""#,
        )
        .unwrap();
        assert_eq!(
            config.telemetry,
            TelemetryConfig {
                prometheus_retention: Duration::from_secs(30),
                disable_hostname: true,
                metrics_prefix: "edge".into(),
                filter_default: false,
                allowed_prefixes: vec!["edge.raft".into()],
                blocked_prefixes: vec!["edge.http".into()],
                disable_compat_1_9: false,
            }
        );
        for notice in [
            "Cannot have empty filter rule in prefix_filter",
            "Filter rule must begin with either '+' or '-': \"edge.kvs\"",
            "config key \"telemetry.statsd_address\" ignored: /v1/agent/metrics is the only metrics sink",
        ] {
            assert!(config.notices.iter().any(|n| n == notice), "{:?}", config.notices);
        }
        assert_eq!(
            load(AgentFlags {
                dev: Some(true),
                ..Default::default()
            })
            .unwrap()
            .telemetry,
            TelemetryConfig::default()
        );
        // A key HCL 2 cannot spell (Consul's HCL 1 can), so from JSON.
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            dir.path(),
            "t.json",
            r#"{"telemetry": {"disable_compat_1.9": true}}"#,
        );
        let config = load(AgentFlags {
            dev: Some(true),
            config_file: vec![json],
            ..Default::default()
        })
        .unwrap();
        assert!(config.telemetry.disable_compat_1_9);
        let err = telemetry("disable_hostname = \"yes\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "telemetry.disable_hostname: expected a boolean, got \"yes\""
        );
        let err = telemetry("prometheus_retention_time = \"soon\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("telemetry.prometheus_retention_time: "),
            "{err}"
        );
    }

    #[test]
    fn data_dir_is_required_without_dev() {
        let err = load(AgentFlags::default()).unwrap_err();
        assert!(err.to_string().contains("data_dir"));
        let cfg = load(AgentFlags {
            dev: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert!(cfg.server && cfg.data_dir.is_none());
        assert_eq!(cfg.http_socket().unwrap().to_string(), "127.0.0.1:8500");
    }

    #[test]
    fn bootstrap_entries_come_from_hcl_blocks_or_json_lists() {
        let cfg = load(AgentFlags {
            dev: Some(true),
            hcl: vec![
                "config_entries {\n bootstrap {\n kind = \"service-defaults\"\n name = \"web\"\n protocol = \"HTTP\"\n }\n}".into(),
                r#"config_entries { bootstrap = [{ Kind = "mesh" }, { Kind = "proxy-defaults" }] }"#.into(),
            ],
            ..Default::default()
        })
        .unwrap();
        let names: Vec<(&str, &str)> = cfg
            .config_entries
            .iter()
            .map(|e| (e.kind.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("service-defaults", "web"),
                ("mesh", "mesh"),
                ("proxy-defaults", "global")
            ]
        );
        assert_eq!(cfg.config_entries[0].protocol().as_deref(), Some("http"));
        let err = load(AgentFlags {
            dev: Some(true),
            hcl: vec!["config_entries {\n bootstrap {\n kind = \"nope\"\n }\n}".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "config_entries.bootstrap[0]: invalid config entry kind: nope"
        );
    }

    #[test]
    fn config_dir_reads_json_and_hcl_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "1.json",
            r#"{"data_dir":"/d","datacenter":"one"}"#,
        );
        write(
            dir.path(),
            "2.hcl",
            "datacenter = \"two\"\nservice { name = \"web\" }\n",
        );
        write(dir.path(), "notes.txt", "ignored");
        let cfg = load(AgentFlags {
            config_dir: vec![dir.path().into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.datacenter, "two");
        assert_eq!(cfg.services.len(), 1);
    }

    fn dns_of(hcl: &str) -> Result<DnsConfig, ConfigError> {
        load(AgentFlags {
            dev: Some(true),
            hcl: vec![hcl.into()],
            ..Default::default()
        })
        .map(|c| c.dns)
    }

    #[test]
    fn dns_defaults_are_consuls() {
        let dns = dns_of("").unwrap();
        assert_eq!((dns.domain.as_str(), dns.alt_domain), ("consul.", None));
        assert!(dns.recursors.is_empty());
        assert_eq!(dns.recursor_strategy, RecursorStrategy::Sequential);
        assert_eq!(dns.recursor_timeout, Duration::from_secs(2));
        assert!(dns.allow_stale && dns.node_meta_txt);
        assert!(!dns.only_passing && !dns.enable_truncate && !dns.disable_compression);
        assert_eq!((dns.udp_answer_limit, dns.a_record_limit), (3, 0));
        assert_eq!(dns.node_ttl, Duration::ZERO);
        assert_eq!(
            dns.soa,
            SoaConfig {
                refresh: 3600,
                retry: 600,
                expire: 86400,
                min_ttl: 0
            }
        );
    }

    #[test]
    fn dns_keys_from_json_and_hcl() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            dir.path(),
            "dns.json",
            r#"{"data_dir":"/d","domain":"Example.","alt_domain":"alt.test","recursors":["10.0.0.53","[::1]:5353"],
                "addresses":{"dns":"127.0.0.2"},"ports":{"dns":8653},
                "dns_config":{"only_passing":true,"node_ttl":"5s","service_ttl":{"*":"1s","web":"9s","we*":"3s"},
                              "recursor_strategy":"random","soa":{"min_ttl":7},"udp_answer_limit":4}}"#,
        );
        let cfg = load(AgentFlags {
            config_file: vec![json],
            hcl: vec!["dns_config {\n enable_truncate = true\n a_record_limit = 2\n}".into()],
            ..Default::default()
        })
        .unwrap();
        let dns = &cfg.dns;
        assert_eq!(dns.domain, "example.");
        assert_eq!(dns.alt_domain.as_deref(), Some("alt.test."));
        assert_eq!(
            dns.recursors,
            vec![
                "10.0.0.53:53".parse().unwrap(),
                "[::1]:5353".parse().unwrap()
            ]
        );
        assert_eq!(cfg.dns_socket(), Some("127.0.0.2:8653".parse().unwrap()));
        assert!(dns.only_passing && dns.enable_truncate);
        assert_eq!((dns.udp_answer_limit, dns.a_record_limit), (4, 2));
        assert_eq!(dns.recursor_strategy, RecursorStrategy::Random);
        assert_eq!(dns.soa.min_ttl, 7);
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(dns.service_ttl("web"), secs(9));
        assert_eq!(dns.service_ttl("webapp"), secs(3));
        assert_eq!(dns.service_ttl("db"), secs(1));
    }

    #[test]
    fn dns_bad_values_are_named() {
        for (hcl, expected) in [
            (
                "recursors = [\"dns.example\"]",
                "recursors: invalid recursor address \"dns.example\"",
            ),
            (
                "dns_config {\n recursor_strategy = \"fastest\"\n}",
                "dns_config.recursor_strategy: \"fastest\" is neither",
            ),
            (
                "dns_config {\n udp_answer_limit = -1\n}",
                "dns_config.udp_answer_limit: -1 cannot be negative",
            ),
            (
                "dns_config {\n node_ttl = \"soon\"\n}",
                "dns_config.node_ttl: time: invalid duration",
            ),
            (
                "dns_config {\n service_ttl = { web = \"x\" }\n}",
                "dns_config.service_ttl[\"web\"]: time: invalid duration",
            ),
            (
                "domain = \"bad domain\"",
                "domain: \"bad domain\" is not a valid DNS domain",
            ),
            (
                "alt_domain = \"consul\"",
                "alt_domain: \"consul.\" cannot be the same as domain",
            ),
            ("dns_config {\n colour = 1\n}", "unknown field `colour`"),
        ] {
            let err = dns_of(hcl).unwrap_err().to_string();
            assert!(err.contains(expected), "{hcl}: {err}");
        }
    }

    #[test]
    fn ui_is_on_with_the_flag_either_file_key_or_dev_and_its_path_gets_slashes() {
        let dir = tempfile::tempdir().unwrap();
        let with_file = |text: &str| {
            let file = write(dir.path(), "ui.hcl", text);
            load(AgentFlags {
                dev: Some(true),
                config_file: vec![file],
                ..Default::default()
            })
            .unwrap()
        };
        let dev = with_file("");
        assert!(dev.ui);
        assert_eq!(dev.ui_content_path, "/ui/");
        assert!(!with_file("ui_config { enabled = false }").ui);
        assert!(!with_file("ui = false").ui);
        let moved = with_file("ui_config {\n enabled = true\n content_path = \"console\"\n}\n");
        assert!(moved.ui);
        assert_eq!(moved.ui_content_path, "/console/");
    }
}
