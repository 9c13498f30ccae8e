//! Catalog types: nodes, service instances and health checks, as stored and as Consul renders
//! them in catalog and health reads. Field names and order follow Consul's `structs`.

use super::JsonValue;
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

pub const PASSING: &str = "passing";
pub const WARNING: &str = "warning";
pub const CRITICAL: &str = "critical";

/// The agent's own liveness check on its node.
pub const SERF_CHECK_ID: &str = "serfHealth";
pub const SERF_CHECK_NAME: &str = "Serf Health Status";
pub const SERF_CHECK_ALIVE_OUTPUT: &str = "Agent alive and reachable";

/// A node of the catalog. Invariant: `node` is unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID", default)]
    pub id: String,
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub datacenter: String,
    #[serde(default)]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl Node {
    /// Whether two records describe the same node (indexes aside): Consul's `IsSame`.
    pub fn same_as(&self, other: &Node) -> bool {
        self.id == other.id
            && self.node.eq_ignore_ascii_case(&other.node)
            && self.address == other.address
            && self.datacenter == other.datacenter
            && self.tagged_addresses == other.tagged_addresses
            && self.meta == other.meta
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    pub passing: i32,
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service's address under a tag (`lan_ipv4`, `wan`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u16,
}

/// One service instance on a node (Consul's `NodeService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct NodeService {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub address: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(default)]
    pub weights: Weights,
    #[serde(default)]
    pub enable_tag_override: bool,
    #[serde(default, serialize_with = "proxy_or_default")]
    pub proxy: JsonValue,
    #[serde(default, serialize_with = "object_or_empty")]
    pub connect: JsonValue,
    #[serde(default)]
    pub peer_name: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl NodeService {
    /// Same service apart from indexes (Consul's `IsSameService`).
    pub fn same_as(&self, other: &NodeService) -> bool {
        let strip = |s: &NodeService| NodeService {
            create_index: 0,
            modify_index: 0,
            ..s.clone()
        };
        strip(self) == strip(other)
    }

    /// The proxy's destination service, for a `connect-proxy`.
    pub fn proxy_destination(&self) -> Option<&str> {
        if self.kind != "connect-proxy" {
            return None;
        }
        self.proxy
            .0
            .get("DestinationServiceName")
            .and_then(|v| v.as_str())
    }

    pub fn is_connect_native(&self) -> bool {
        self.connect
            .0
            .get("Native")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
}

/// A health check (Consul's `HealthCheck`). `service_id` is empty for a node-level check.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub node: String,
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub output: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub service_tags: Vec<String>,
    #[serde(default)]
    pub r#type: String,
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub timeout: String,
    #[serde(default)]
    pub exposed_port: u16,
    #[serde(default, serialize_with = "object_or_empty")]
    pub definition: JsonValue,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl HealthCheck {
    pub fn same_as(&self, other: &HealthCheck) -> bool {
        let strip = |c: &HealthCheck| HealthCheck {
            create_index: 0,
            modify_index: 0,
            ..c.clone()
        };
        strip(self) == strip(other)
    }
}

/// A service instance with its node and its checks (node checks first), as
/// `/v1/health/service` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckServiceNode {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

/// A service instance flattened with its node, as `/v1/catalog/service` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceNode {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_kind: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    pub service_weights: Weights,
    pub service_meta: BTreeMap<String, String>,
    pub service_port: u16,
    pub service_socket_path: String,
    pub service_enable_tag_override: bool,
    #[serde(serialize_with = "proxy_or_default")]
    pub service_proxy: JsonValue,
    #[serde(serialize_with = "object_or_empty")]
    pub service_connect: JsonValue,
    pub service_locality: Option<JsonValue>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceNode {
    pub fn new(node: &Node, s: &NodeService) -> ServiceNode {
        ServiceNode {
            id: node.id.clone(),
            node: node.node.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: node.tagged_addresses.clone(),
            node_meta: node.meta.clone(),
            service_kind: s.kind.clone(),
            service_id: s.id.clone(),
            service_name: s.service.clone(),
            service_tags: s.tags.clone(),
            service_address: s.address.clone(),
            service_tagged_addresses: s.tagged_addresses.clone(),
            service_weights: s.weights,
            service_meta: s.meta.clone(),
            service_port: s.port,
            service_socket_path: s.socket_path.clone(),
            service_enable_tag_override: s.enable_tag_override,
            service_proxy: s.proxy.clone(),
            service_connect: s.connect.clone(),
            service_locality: None,
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

/// Go renders a nil slice or map as `null`; accept it where a list or map is expected.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn object_or_empty<S: Serializer>(v: &JsonValue, s: S) -> Result<S::Ok, S::Error> {
    if v.is_null() {
        serde_json::Map::new().serialize(s)
    } else {
        v.serialize(s)
    }
}

/// A service without a proxy still renders Consul's zero `ConnectProxyConfig`.
fn proxy_or_default<S: Serializer>(v: &JsonValue, s: S) -> Result<S::Ok, S::Error> {
    if v.is_null() {
        serde_json::json!({"Mode": "", "MeshGateway": {}, "Expose": {}}).serialize(s)
    } else {
        v.serialize(s)
    }
}

macro_rules! record {
    ($($t:ty),*) => {$(
        impl crate::store::codec::Record for $t {
            const VERSION: u8 = 1;
        }
    )*};
}
record!(Node, NodeService, HealthCheck);

/// The `Proxy.Config` keys that put arbitrary Envoy JSON into a proxy's bootstrap or xDS
/// resources (Consul's `envoyEscapeHatchKeys`): setting one needs `mesh:write` besides
/// `service:write`, since the JSON can carry code-executing filters.
const ENVOY_ESCAPE_HATCH_KEYS: [&str; 11] = [
    "envoy_bootstrap_json_tpl",
    "envoy_extra_static_listeners_json",
    "envoy_extra_static_clusters_json",
    "envoy_extra_stats_sinks_json",
    "envoy_stats_config_json",
    "envoy_tracing_json",
    "envoy_public_listener_json",
    "envoy_listener_tracing_json",
    "envoy_local_cluster_json",
    "envoy_listener_json",
    "envoy_cluster_json",
];

/// Whether a service's `Proxy` sets an Envoy escape hatch, in its `Config` or an upstream's,
/// matching keys without regard to case as the decoders that read them do.
pub fn sets_envoy_escape_hatch(proxy: &serde_json::Value) -> bool {
    let in_config = |config: Option<&serde_json::Value>| {
        config
            .and_then(serde_json::Value::as_object)
            .is_some_and(|c| {
                c.keys().any(|k| {
                    ENVOY_ESCAPE_HATCH_KEYS
                        .iter()
                        .any(|hatch| hatch.eq_ignore_ascii_case(k))
                })
            })
    };
    let upstreams = proxy
        .get("Upstreams")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    in_config(proxy.get("Config")) || upstreams.iter().any(|u| in_config(u.get("Config")))
}
