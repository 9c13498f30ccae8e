//! `AgentContext`: what the running agent is made of (store, configuration, local state,
//! runtimes), shared by the HTTP handlers, the CLI's in-process paths and background tasks.

use crate::config::{Config, DnsConfig};
use crate::store::Store;
use std::sync::Arc;

/// What every handler can reach: the store and the agent's configuration.
pub struct AgentContext {
    pub store: Store,
    pub config: Config,
    /// This node's ID (a UUID, kept in the data dir across restarts).
    pub node_id: String,
    /// Services and checks registered through this agent, with their runners.
    pub local: Arc<super::local::LocalAgent>,
    /// Session lifecycle and TTL timers.
    pub sessions: Arc<super::sessions::Sessions>,
    /// Notified to stop the agent (`/v1/agent/leave`, signals).
    pub shutdown: tokio::sync::Notify,
    /// The recent user events (`/v1/event/*`), in memory.
    pub events: Arc<super::events::Events>,
    /// When this server became leader (`/v1/operator/autopilot/*`): when the agent started.
    pub leader_since: std::time::SystemTime,
    /// Agent tokens and what the last config load registered (`/v1/agent/token/*`, reload).
    pub ops: super::ops::Ops,
    /// Resolves request tokens to what they may do.
    pub acl: super::acl::AclResolver,
    /// Leaf certificate issuance, one at a time per service.
    pub leaf_issuers: super::connect_ca::LeafIssuers,
    /// The compiled intentions `/v1/agent/connect/authorize` answers from.
    pub intentions: super::intentions::IntentionCache,
    /// Open HTTP connections per client IP (`limits.http_max_conns_per_client`).
    pub http_connections: Arc<super::connlimit::ConnectionLimiter>,
    /// Held while a snapshot restore runs: one at a time.
    pub restoring: tokio::sync::Mutex<()>,
    /// How recorded metrics are named and filtered (`telemetry`); reload replaces the filter.
    pub metrics_naming: std::sync::RwLock<crate::metrics::Naming>,
    /// The DNS settings in force (`config.dns` at start); reload replaces them.
    pub dns: std::sync::RwLock<DnsSettings>,
}

/// DNS settings as reloaded: as Consul's `DNSServer.ReloadConfig`, everything of `dns_config`
/// and `recursors` changes but the domains and the listener. `generation` counts the
/// replacements, so that answers cached under older settings are told apart.
#[derive(Clone)]
pub struct DnsSettings {
    pub generation: u64,
    pub config: Arc<DnsConfig>,
}

pub type Ctx = Arc<AgentContext>;

impl AgentContext {
    /// The DNS settings in force.
    pub fn dns_settings(&self) -> DnsSettings {
        self.dns.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `next` in force, keeping the domains and the listener's address.
    pub fn reload_dns(&self, next: &DnsConfig) {
        let mut settings = self.dns.write().unwrap_or_else(|e| e.into_inner());
        let kept = &settings.config;
        let config = DnsConfig {
            domain: kept.domain.clone(),
            alt_domain: kept.alt_domain.clone(),
            addr: kept.addr,
            ..next.clone()
        };
        *settings = DnsSettings {
            generation: settings.generation + 1,
            config: Arc::new(config),
        };
    }

    /// This node as a serf member (`/v1/agent/self`, `/v1/agent/members`).
    pub fn member(&self) -> serde_json::Value {
        let c = &self.config;
        // A client's serf tags say `role=node`; a server adds what other servers need.
        let mut tags = serde_json::json!({
            "role": if c.server { "consul" } else { "node" },
            "dc": c.datacenter,
            "segment": "",
            "id": self.node_id,
            "build": format!("{}:legate-{}", crate::config::CONSUL_VERSION, env!("CARGO_PKG_VERSION")),
            "vsn": "2",
            "vsn_min": "2",
            "vsn_max": "3",
        });
        if c.server {
            let server_tags = serde_json::json!({
                "port": c.ports.server.to_string(),
                "raft_vsn": "3",
                "expect": c.bootstrap_expect.to_string(),
                "bootstrap": if c.bootstrap { "1" } else { "0" },
                "acls": if c.acl.enabled { "1" } else { "0" },
                "ft_fs": "1",
                "ft_si": "1",
                "wan_join_port": c.ports.serf_wan.to_string(),
                "grpc_port": c.ports.grpc.to_string(),
            });
            if let (Some(all), Some(extra)) = (tags.as_object_mut(), server_tags.as_object()) {
                all.extend(extra.clone());
            }
        }
        serde_json::json!({
            "Name": c.node_name,
            "Addr": c.advertise_addr.to_string(),
            "Port": c.ports.serf_lan,
            "Tags": tags,
            "Status": 1,
            "ProtocolMin": 1,
            "ProtocolMax": 5,
            "ProtocolCur": 2,
            "DelegateMin": 2,
            "DelegateMax": 5,
            "DelegateCur": 4,
        })
    }

    /// The node's metadata, with the keys Consul always adds.
    pub fn node_meta(&self) -> std::collections::BTreeMap<String, String> {
        let mut meta = self.config.node_meta.clone();
        meta.insert("consul-network-segment".into(), String::new());
        meta.insert(
            "consul-version".into(),
            crate::config::CONSUL_VERSION.into(),
        );
        meta
    }
}
