//! Config entries (Consul's `structs.ConfigEntry`): the kinds Consul CE knows, decoding a body
//! as `DecodeConfigEntry` does, `Normalize` + `Validate`, and the JSON Consul renders.
//!
//! An entry is kept as its decoded body (canonical keys, values converted to the schema's
//! types, normalized), so what a client sent comes back in Consul's shape whatever spelling it
//! used. Decoding errors are the client's (Consul answers 400); check errors come from
//! Consul's server (500).

mod schemas;
mod validate;

pub(crate) use validate::meta_errors;
pub use validate::{
    is_http_like, GatewayTls, IngressGateway, IngressListener, IngressService, LinkedService,
    TerminatingGateway, WILDCARD,
};

use super::JsonValue;
use crate::gojson::{self, Schema};
use bincode::{Decode, Encode};
use schemas::*;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const SERVICE_DEFAULTS_KIND: &str = "service-defaults";
pub const PROXY_DEFAULTS_KIND: &str = "proxy-defaults";
pub const SERVICE_ROUTER_KIND: &str = "service-router";
pub const SERVICE_SPLITTER_KIND: &str = "service-splitter";
pub const SERVICE_RESOLVER_KIND: &str = "service-resolver";
pub const INGRESS_GATEWAY_KIND: &str = "ingress-gateway";
pub const TERMINATING_GATEWAY_KIND: &str = "terminating-gateway";
pub const MESH_KIND: &str = "mesh";
pub const EXPORTED_SERVICES_KIND: &str = "exported-services";
pub const SAMENESS_GROUP_KIND: &str = "sameness-group";

/// The only name a proxy-defaults entry may have, and the only name of the mesh entry.
pub const PROXY_DEFAULTS_NAME: &str = "global";
pub const MESH_NAME: &str = "mesh";

/// Every kind Consul CE accepts (`MakeConfigEntry`), with its schema.
static KINDS: &[(&str, &Schema)] = &[
    (SERVICE_DEFAULTS_KIND, &SERVICE_DEFAULTS),
    (PROXY_DEFAULTS_KIND, &PROXY_DEFAULTS),
    (SERVICE_ROUTER_KIND, &SERVICE_ROUTER),
    (SERVICE_SPLITTER_KIND, &SERVICE_SPLITTER),
    (SERVICE_RESOLVER_KIND, &SERVICE_RESOLVER),
    (INGRESS_GATEWAY_KIND, &INGRESS_GATEWAY),
    (TERMINATING_GATEWAY_KIND, &TERMINATING_GATEWAY),
    ("service-intentions", &SERVICE_INTENTIONS),
    (MESH_KIND, &MESH),
    (EXPORTED_SERVICES_KIND, &EXPORTED_SERVICES),
    (SAMENESS_GROUP_KIND, &SAMENESS_GROUP),
    ("api-gateway", &API_GATEWAY),
    ("bound-api-gateway", &BOUND_API_GATEWAY),
    ("file-system-certificate", &FILE_SYSTEM_CERTIFICATE),
    ("inline-certificate", &INLINE_CERTIFICATE),
    ("http-route", &HTTP_ROUTE),
    ("tcp-route", &TCP_ROUTE),
    ("jwt-provider", &JWT_PROVIDER),
];

/// The schema of a kind Consul CE knows; any other is refused with Consul's text.
fn schema_of(kind: &str) -> Result<&'static Schema, String> {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| *s)
        .ok_or_else(|| format!("invalid config entry kind: {kind}"))
}

/// Refuses a kind Consul CE doesn't know, with Consul's text.
pub fn check_kind(kind: &str) -> Result<(), String> {
    schema_of(kind).map(|_| ())
}

/// The name an entry of `kind` is stored under (Consul's `Normalize` of the name): the mesh
/// entry is always `mesh`, proxy-defaults `global` (given or not).
pub fn canonical_name(kind: &str, name: &str) -> Result<String, String> {
    match kind {
        MESH_KIND => Ok(MESH_NAME.into()),
        PROXY_DEFAULTS_KIND if name.is_empty() || name == PROXY_DEFAULTS_NAME => {
            Ok(PROXY_DEFAULTS_NAME.into())
        }
        PROXY_DEFAULTS_KIND => Err(format!(
            "invalid name ({name:?}), only {PROXY_DEFAULTS_NAME:?} is supported"
        )),
        _ => Ok(name.to_string()),
    }
}

/// One config entry, as stored and as rendered.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ConfigEntry {
    pub kind: String,
    pub name: String,
    /// Every other field Consul's struct for the kind has, keyed by its Go field name, with
    /// absent and null fields left out (rendering restores Consul's defaults).
    pub body: JsonValue,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for ConfigEntry {
    const VERSION: u8 = 1;
}

/// Unused keys as Consul CE's `validateUnusedKeys` judges them: the index fields and `Kind`
/// are fine, namespaces and JWT checks are Enterprise, anything else is unknown. `Hash` is a
/// field of every Consul entry (computed by the server, so what a client sends is dropped):
/// entries read from a Consul carry it and must write back unchanged.
fn unused_key_errors(unused: &[String]) -> Vec<String> {
    unused
        .iter()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "CreateIndex" | "ModifyIndex" | "Kind" | "kind" | "Hash"
            )
        })
        .map(|k| {
            let lower = k.to_lowercase();
            if lower.ends_with("namespace") {
                format!("invalid config key {k:?}, namespaces are a consul enterprise feature")
            } else if lower.contains("jwt") {
                format!(
                    "invalid config key {k:?}, api-gateway jwt validation is a consul enterprise feature"
                )
            } else {
                format!("invalid config key {k:?}")
            }
        })
        .collect()
}

/// A JSON document's top level as mapstructure describes a non-map (`'' expected a map, …`).
fn top_level(raw: Value) -> Result<Map<String, Value>, String> {
    match raw {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(format!(
            "'' expected a map, got '{}'",
            gojson::go_kind(&other)
        )),
    }
}

impl ConfigEntry {
    /// Whether writing this entry needs `mesh:write` besides its kind's right, as Consul's
    /// `ServiceConfigEntry.CanWrite`: a service-defaults entry that runs caller-supplied code
    /// in Envoy (a `builtin/lua` or `builtin/wasm` extension) or overrides an upstream's
    /// listener or cluster with Envoy JSON.
    pub fn runs_envoy_code(&self) -> bool {
        if self.kind != "service-defaults" {
            return false;
        }
        let body = &self.body.0;
        let extensions = body
            .get("EnvoyExtensions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let executes = extensions.iter().any(|e| {
            matches!(
                e.get("Name").and_then(Value::as_str),
                Some("builtin/lua" | "builtin/wasm")
            )
        });
        let upstreams = body.get("UpstreamConfig");
        let overrides = upstreams
            .and_then(|u| u.get("Overrides"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let escape_hatch = |upstream: &Value| {
            ["EnvoyListenerJSON", "EnvoyClusterJSON"].iter().any(|k| {
                upstream
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty())
            })
        };
        executes
            || upstreams
                .and_then(|u| u.get("Defaults"))
                .is_some_and(escape_hatch)
            || overrides.iter().any(escape_hatch)
    }

    /// Decodes a body (a parsed JSON or HCL document) as Consul's `DecodeConfigEntry` does:
    /// the kind picks the struct, keys bind case-insensitively or by their snake_case alias,
    /// values convert weakly, and unknown keys are refused.
    pub fn decode(raw: Value) -> Result<ConfigEntry, String> {
        let map = top_level(raw)?;
        let kind = match map.get("Kind").or_else(|| map.get("kind")) {
            None => return Err("Payload does not contain a kind/Kind key at the top level".into()),
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err("Kind value in payload is not a string".into()),
        };
        let schema = schema_of(&kind)?;
        let decoded =
            gojson::decode_weak(map, schema).map_err(|errors| gojson::weak_errors(&errors))?;
        let errors = unused_key_errors(&decoded.unused);
        if !errors.is_empty() {
            return Err(gojson::multierror(&errors));
        }
        let mut body = decoded.map;
        body.remove("Kind");
        let name = match body.remove("Name") {
            Some(Value::String(name)) => name,
            _ => String::new(),
        };
        let meta = match body.remove("Meta") {
            Some(meta) => serde_json::from_value(meta).unwrap_or_default(),
            None => BTreeMap::new(),
        };
        Ok(ConfigEntry {
            kind,
            name,
            body: JsonValue(Value::Object(body)),
            meta,
            create_index: 0,
            modify_index: 0,
        })
    }

    /// Consul's `Normalize` then `Validate`, as a write applies them.
    pub fn check(&mut self) -> Result<(), String> {
        validate::check(self)
    }

    /// The decoded body (empty when there is none).
    pub fn body(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match &self.body.0 {
            Value::Object(map) => map,
            _ => EMPTY.get_or_init(Map::new),
        }
    }

    /// An empty entry of `kind` named `name` (for entries built by other APIs).
    pub fn new(kind: &str, name: &str) -> ConfigEntry {
        ConfigEntry {
            kind: kind.into(),
            name: name.into(),
            body: JsonValue(Value::Object(Map::new())),
            meta: BTreeMap::new(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// Sets one top-level field of the body.
    pub fn set_body_field(&mut self, key: &str, value: Value) {
        self.body_mut().insert(key.into(), value);
    }

    fn body_mut(&mut self) -> &mut Map<String, Value> {
        if !self.body.0.is_object() {
            self.body = JsonValue(Value::Object(Map::new()));
        }
        match &mut self.body.0 {
            Value::Object(map) => map,
            _ => unreachable!("the body was just made an object"),
        }
    }

    /// Whether two versions of an entry say the same (indexes aside).
    pub fn same_as(&self, other: &ConfigEntry) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && self.body == other.body
            && self.meta == other.meta
    }

    /// The entry as Consul's API renders it: its struct's fields in order (absent ones as Go's
    /// zero values unless `omitempty`), then `CreateIndex` and `ModifyIndex`.
    pub fn to_json(&self) -> Value {
        let mut full = self.body().clone();
        full.insert("Kind".into(), Value::from(self.kind.clone()));
        full.insert("Name".into(), Value::from(self.name.clone()));
        if !self.meta.is_empty() {
            full.insert(
                "Meta".into(),
                serde_json::to_value(&self.meta).unwrap_or_default(),
            );
        }
        let mut out = match schema_of(&self.kind) {
            Ok(schema) => {
                let mut out = Map::new();
                // Kinds without a `Kind` field (mesh) add it first in their JSON.
                if !schema.fields.iter().any(|f| f.name == "Kind") {
                    out.insert("Kind".into(), Value::from(self.kind.clone()));
                }
                out.extend(gojson::render(&full, schema));
                out
            }
            // Not a kind this build stores; shown as it is.
            Err(_) => full,
        };
        out.insert("CreateIndex".into(), Value::from(self.create_index));
        out.insert("ModifyIndex".into(), Value::from(self.modify_index));
        Value::Object(out)
    }

    fn view<T: for<'de> serde::Deserialize<'de> + Default>(&self) -> T {
        validate::view(&self.body.0)
    }

    /// The listeners of an ingress-gateway entry.
    pub fn ingress(&self) -> Option<IngressGateway> {
        (self.kind == INGRESS_GATEWAY_KIND).then(|| self.view())
    }

    /// The linked services of a terminating-gateway entry.
    pub fn terminating(&self) -> Option<TerminatingGateway> {
        (self.kind == TERMINATING_GATEWAY_KIND).then(|| self.view())
    }

    /// The protocol a service-defaults entry sets, or proxy-defaults' `Config.protocol`
    /// (`ComputeProtocol`), lowercased; `None` when the entry sets none.
    pub fn protocol(&self) -> Option<String> {
        let protocol = match self.kind.as_str() {
            SERVICE_DEFAULTS_KIND => self.body().get("Protocol").cloned(),
            PROXY_DEFAULTS_KIND => self
                .body()
                .get("Config")
                .and_then(|c| c.get("protocol"))
                .cloned(),
            _ => None,
        };
        let protocol = match protocol? {
            Value::String(s) => s,
            Value::Null => return None,
            other => other.to_string(),
        };
        (!protocol.is_empty()).then(|| protocol.to_lowercase())
    }

    /// Whether a service-defaults entry declares an external destination.
    pub fn has_destination(&self) -> bool {
        self.kind == SERVICE_DEFAULTS_KIND && self.body().contains_key("Destination")
    }

    /// A proxy-defaults or service-defaults entry's `MutualTLSMode`.
    pub fn mutual_tls_mode(&self) -> &str {
        self.body()
            .get("MutualTLSMode")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether the mesh entry lets entries enable permissive mutual TLS.
    pub fn allows_permissive_mtls(&self) -> bool {
        self.body()
            .get("AllowEnablingPermissiveMutualTLS")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

impl Serialize for ConfigEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded(v: Value) -> ConfigEntry {
        let mut entry = ConfigEntry::decode(v).unwrap();
        entry.check().unwrap();
        entry
    }

    fn check_err(v: Value) -> String {
        let mut entry = ConfigEntry::decode(v).unwrap();
        entry.check().unwrap_err()
    }

    /// Entries read from a Consul carry its computed `Hash`; they write back unchanged.
    #[test]
    fn a_hash_from_consul_is_accepted_and_dropped() {
        for kind in ["service-defaults", "ingress-gateway", "service-router"] {
            let entry = decoded(json!({"Kind": kind, "Name": "web", "Hash": 5_u64}));
            assert!(entry.to_json().get("Hash").is_none(), "{kind}");
        }
    }

    #[test]
    fn snake_case_and_lowercase_keys_normalize_and_render_as_consul() {
        let entry = decoded(json!({
            "kind": "service-defaults", "name": "web", "protocol": "HTTP",
            "mesh_gateway": {"mode": "local"}, "max_inbound_connections": "10",
            "upstream_config": {"overrides": [{"name": "db", "connect_timeout_ms": -5, "protocol": "GRPC"}]},
        }));
        assert_eq!(
            entry.to_json(),
            json!({
                "Kind": "service-defaults", "Name": "web", "Protocol": "http",
                "TransparentProxy": {}, "MeshGateway": {"Mode": "local"}, "Expose": {},
                "UpstreamConfig": {"Overrides": [{"Name": "db", "Peer": "", "Protocol": "grpc", "MeshGateway": {}}]},
                "MaxInboundConnections": 10, "CreateIndex": 0, "ModifyIndex": 0,
            })
        );
        // Key order is Consul's too.
        let keys: Vec<String> = entry
            .to_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys[..3], ["Kind", "Name", "Protocol"]);
    }

    #[test]
    fn ingress_defaults_render_like_consul() {
        let entry = decoded(json!({
            "Kind": "ingress-gateway", "Name": "ig",
            "Listeners": [{"Port": 8080, "Services": [{"Name": "web"}]}],
            "Meta": {"team": "a"},
        }));
        assert_eq!(
            entry.to_json(),
            json!({
                "Kind": "ingress-gateway", "Name": "ig", "TLS": {"Enabled": false},
                "Listeners": [{"Port": 8080, "Protocol": "tcp", "Services": [{"Name": "web", "Hosts": null}]}],
                "Meta": {"team": "a"}, "CreateIndex": 0, "ModifyIndex": 0,
            })
        );
    }

    #[test]
    fn decoding_errors_are_consuls() {
        let err = |v: Value| ConfigEntry::decode(v).unwrap_err();
        assert_eq!(
            err(json!({"Name": "x"})),
            "Payload does not contain a kind/Kind key at the top level"
        );
        assert_eq!(
            err(json!({"Kind": 1})),
            "Kind value in payload is not a string"
        );
        assert_eq!(
            err(json!({"Kind": "nope"})),
            "invalid config entry kind: nope"
        );
        assert_eq!(err(json!([1])), "'' expected a map, got 'slice'");
        assert_eq!(
            err(json!({"Kind": "service-defaults", "Name": "w", "Bogus": 1, "Namespace": "n", "CreateIndex": 4})),
            "2 errors occurred:\n\t* invalid config key \"Bogus\"\n\t* invalid config key \"Namespace\", namespaces are a consul enterprise feature\n\n"
        );
        assert_eq!(
            err(json!({"Kind": "ingress-gateway", "Name": "i", "Listeners": [{"Port": "x"}]})),
            "1 error(s) decoding:\n\n* cannot parse 'Listeners[0].Port' as int: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        // Other kinds check their top-level keys only.
        assert!(ConfigEntry::decode(
            json!({"Kind": "service-router", "Name": "r", "Routes": [{"Anything": 1}]})
        )
        .is_ok());
        assert_eq!(
            err(json!({"Kind": "service-router", "Name": "r", "Route": []})),
            "1 error occurred:\n\t* invalid config key \"Route\"\n\n"
        );
    }

    #[test]
    fn ingress_listener_rules() {
        let ingress = |listeners: Value| {
            check_err(json!({"Kind": "ingress-gateway", "Name": "ig", "Listeners": listeners}))
        };
        assert_eq!(
            ingress(json!([{"Port": 1, "Protocol": "udp", "Services": [{"Name": "a"}]}])),
            "protocol must be 'tcp', 'http', 'http2', or 'grpc'. 'udp' is an unsupported protocol"
        );
        assert_eq!(
            ingress(json!([{"Port": 1, "Services": [{"Name": "a"}, {"Name": "b"}]}])),
            "Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port 1)"
        );
        assert_eq!(
            ingress(json!([{"Port": 1, "Services": [{"Name": "*"}]}])),
            "Wildcard service name is only valid for protocol = 'http' (listener on port 1)"
        );
        assert_eq!(
            ingress(
                json!([{"Port": 1, "Protocol": "http", "Services": [{"Name": "a"}, {"Name": "a"}]}])
            ),
            "Service a cannot be added multiple times (listener on port 1)"
        );
        assert_eq!(
            ingress(
                json!([{"Port": 1, "Protocol": "http", "Services": [{"Name": "*", "Hosts": ["x.com"]}]}])
            ),
            "Associating hosts to a wildcard service is not supported (listener on port 1)"
        );
        assert_eq!(
            ingress(json!([{"Port": 1, "Protocol": "http", "Services": [{"Name": "a", "Hosts": ["a.*.com"]}]}])),
            "Host \"a.*.com\" is not valid, a wildcard specifier is only allowed as the leftmost label"
        );
        assert_eq!(
            ingress(
                json!([{"Port": 1, "Services": [{"Name": "a"}]}, {"Port": 1, "Services": [{"Name": "b"}]}])
            ),
            "port 1 declared on two listeners"
        );
        assert_eq!(
            ingress(json!([{"Port": 2, "Protocol": "http", "Services": []}])),
            "No service declared for listener with port 2"
        );
        assert_eq!(
            check_err(json!({"Kind": "ingress-gateway", "Name": "ig", "TLS": {"TLSMinVersion": "TLSv9"}})),
            "no matching TLS version found for TLSv9, please specify one of [TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3]"
        );
    }

    #[test]
    fn terminating_and_defaults_rules() {
        assert_eq!(
            check_err(
                json!({"Kind": "terminating-gateway", "Name": "t", "Services": [{"Name": "a"}, {"Name": "a"}]})
            ),
            "Service \"a\" was specified more than once within a namespace"
        );
        assert_eq!(
            check_err(
                json!({"Kind": "terminating-gateway", "Name": "t", "Services": [{"Name": "a", "CertFile": "c"}]})
            ),
            "Service \"a\" must have a CertFile, CAFile, and KeyFile specified for TLS origination"
        );
        assert_eq!(
            check_err(json!({"Kind": "proxy-defaults", "Name": "other"})),
            "invalid name (\"other\"), only \"global\" is supported"
        );
        assert_eq!(
            decoded(json!({"Kind": "proxy-defaults", "Config": {"protocol": "HTTP"}}))
                .protocol()
                .as_deref(),
            Some("http")
        );
        assert_eq!(
            check_err(json!({"Kind": "service-defaults", "Name": "*"})),
            "service-defaults name must be the name of a service, and not a wildcard"
        );
        assert_eq!(
            check_err(json!({"Kind": "service-defaults", "Name": "w", "BalanceInboundConnections": "x",
                "Destination": {"Addresses": ["a.com", "a.com", "*.x"], "Port": 0}})),
            "4 errors occurred:\n\t* invalid value for balance_inbound_connections: x\n\t* Duplicate address 'a.com' is not allowed\n\t* Destination address '*.x' is invalid Could not validate address *.x as an IP or Hostname\n\t* Invalid Port number 0\n\n"
        );
        assert_eq!(
            check_err(json!({"Kind": "service-defaults", "Name": "w", "MutualTLSMode": "loose"})),
            "Invalid MutualTLSMode \"loose\". Must be one of \"\", \"strict\", or \"permissive\"."
        );
        assert_eq!(
            check_err(json!({"Kind": "service-router"})),
            "Name is required"
        );
        // Consul's gateway checks don't ask for a name.
        decoded(json!({"Kind": "ingress-gateway"}));
        decoded(json!({"Kind": "terminating-gateway"}));
        assert_eq!(
            check_err(json!({"Kind": "exported-services", "Name": "x"})),
            "exported-services Name must be \"default\""
        );
    }

    #[test]
    fn mesh_is_always_named_mesh_and_renders_its_kind_first() {
        let entry = decoded(json!({"Kind": "mesh", "AllowEnablingPermissiveMutualTLS": "true"}));
        assert_eq!(entry.name, "mesh");
        assert!(entry.allows_permissive_mtls());
        assert_eq!(
            entry.to_json(),
            json!({"Kind": "mesh", "AllowEnablingPermissiveMutualTLS": true, "CreateIndex": 0, "ModifyIndex": 0})
        );
        assert_eq!(
            ConfigEntry::decode(json!({"Kind": "mesh", "Name": "mesh"})).unwrap_err(),
            "1 error occurred:\n\t* invalid config key \"Name\"\n\n"
        );
    }
}
