//! Service and check definitions as clients send them to `/v1/agent/service/register` and
//! `/v1/agent/check/register` (and as config files hold them), decoded the way Consul decodes
//! them: keys match case-insensitively, a few snake_case aliases are accepted, an unknown key is
//! an error naming it, durations are Go duration strings or nanoseconds.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How the value under a key is decoded.
#[derive(Clone, Copy)]
enum Field {
    /// A scalar, a list of scalars, or a map with free keys (Meta, Header, ...).
    Plain,
    /// An object with its own schema.
    Object(&'static Schema),
    /// A list of objects with the schema.
    List(&'static Schema),
    /// Anything: not checked (a proxy's `Config`).
    Free,
    /// Accepted and dropped.
    Ignored,
}

/// Canonical key names, with the aliases Consul accepts for them.
struct Schema {
    fields: &'static [(&'static str, Field)],
    aliases: &'static [(&'static str, &'static str)],
}

const CHECK_TYPE_FIELDS: &[(&str, Field)] = &[
    ("CheckID", Field::Plain),
    ("Name", Field::Plain),
    ("Status", Field::Plain),
    ("Notes", Field::Plain),
    ("ScriptArgs", Field::Plain),
    ("HTTP", Field::Plain),
    ("Header", Field::Plain),
    ("Method", Field::Plain),
    ("Body", Field::Plain),
    ("DisableRedirects", Field::Plain),
    ("TCP", Field::Plain),
    ("TCPUseTLS", Field::Plain),
    ("UDP", Field::Plain),
    ("Interval", Field::Plain),
    ("AliasNode", Field::Plain),
    ("AliasService", Field::Plain),
    ("DockerContainerID", Field::Plain),
    ("Shell", Field::Plain),
    ("GRPC", Field::Plain),
    ("GRPCUseTLS", Field::Plain),
    ("H2PING", Field::Plain),
    ("H2PingUseTLS", Field::Plain),
    ("OSService", Field::Plain),
    ("TLSServerName", Field::Plain),
    ("TLSSkipVerify", Field::Plain),
    ("Timeout", Field::Plain),
    ("TTL", Field::Plain),
    ("SuccessBeforePassing", Field::Plain),
    ("FailuresBeforeWarning", Field::Plain),
    ("FailuresBeforeCritical", Field::Plain),
    ("ProxyHTTP", Field::Plain),
    ("ProxyGRPC", Field::Plain),
    ("DeregisterCriticalServiceAfter", Field::Plain),
    ("OutputMaxSize", Field::Plain),
];

const CHECK_ALIASES: &[(&str, &str)] = &[
    ("args", "ScriptArgs"),
    ("script_args", "ScriptArgs"),
    (
        "deregister_critical_service_after",
        "DeregisterCriticalServiceAfter",
    ),
    ("docker_container_id", "DockerContainerID"),
    ("tls_server_name", "TLSServerName"),
    ("tls_skip_verify", "TLSSkipVerify"),
    ("grpc_use_tls", "GRPCUseTLS"),
    ("h2ping_use_tls", "H2PingUseTLS"),
    ("service_id", "ServiceIDIgnored"),
];

/// A check inside a service definition (Consul's `CheckType`).
static CHECK_TYPE: Schema = Schema {
    fields: CHECK_TYPE_FIELDS,
    aliases: CHECK_ALIASES,
};

/// `/v1/agent/check/register` (Consul's `CheckDefinition`): `ID` instead of `CheckID`, plus
/// `ServiceID` and `Token`.
static CHECK_DEFINITION: Schema = Schema {
    fields: &[
        ("ID", Field::Plain),
        ("Name", Field::Plain),
        ("Notes", Field::Plain),
        ("ServiceID", Field::Plain),
        ("Token", Field::Plain),
        ("Status", Field::Plain),
        ("ScriptArgs", Field::Plain),
        ("HTTP", Field::Plain),
        ("Header", Field::Plain),
        ("Method", Field::Plain),
        ("Body", Field::Plain),
        ("DisableRedirects", Field::Plain),
        ("TCP", Field::Plain),
        ("TCPUseTLS", Field::Plain),
        ("UDP", Field::Plain),
        ("Interval", Field::Plain),
        ("AliasNode", Field::Plain),
        ("AliasService", Field::Plain),
        ("DockerContainerID", Field::Plain),
        ("Shell", Field::Plain),
        ("GRPC", Field::Plain),
        ("GRPCUseTLS", Field::Plain),
        ("H2PING", Field::Plain),
        ("H2PingUseTLS", Field::Plain),
        ("OSService", Field::Plain),
        ("TLSServerName", Field::Plain),
        ("TLSSkipVerify", Field::Plain),
        ("Timeout", Field::Plain),
        ("TTL", Field::Plain),
        ("SuccessBeforePassing", Field::Plain),
        ("FailuresBeforeWarning", Field::Plain),
        ("FailuresBeforeCritical", Field::Plain),
        ("DeregisterCriticalServiceAfter", Field::Plain),
        ("OutputMaxSize", Field::Plain),
    ],
    aliases: &[
        ("args", "ScriptArgs"),
        ("script_args", "ScriptArgs"),
        ("service_id", "ServiceID"),
        (
            "deregister_critical_service_after",
            "DeregisterCriticalServiceAfter",
        ),
        ("docker_container_id", "DockerContainerID"),
        ("tls_server_name", "TLSServerName"),
        ("tls_skip_verify", "TLSSkipVerify"),
        ("grpc_use_tls", "GRPCUseTLS"),
        ("h2ping_use_tls", "H2PingUseTLS"),
    ],
};

static UPSTREAM: Schema = Schema {
    fields: &[
        ("DestinationType", Field::Plain),
        ("DestinationNamespace", Field::Plain),
        ("DestinationPartition", Field::Plain),
        ("DestinationPeer", Field::Plain),
        ("DestinationName", Field::Plain),
        ("Datacenter", Field::Plain),
        ("LocalBindAddress", Field::Plain),
        ("LocalBindPort", Field::Plain),
        ("LocalBindSocketPath", Field::Plain),
        ("LocalBindSocketMode", Field::Plain),
        ("Config", Field::Free),
        ("MeshGateway", Field::Free),
        ("CentralConfig", Field::Free),
    ],
    aliases: &[
        ("destination_type", "DestinationType"),
        ("destination_namespace", "DestinationNamespace"),
        ("destination_partition", "DestinationPartition"),
        ("destination_peer", "DestinationPeer"),
        ("destination_name", "DestinationName"),
        ("local_bind_address", "LocalBindAddress"),
        ("local_bind_port", "LocalBindPort"),
        ("local_bind_socket_path", "LocalBindSocketPath"),
        ("local_bind_socket_mode", "LocalBindSocketMode"),
        ("mesh_gateway", "MeshGateway"),
    ],
};

static PROXY: Schema = Schema {
    fields: &[
        ("DestinationServiceName", Field::Plain),
        ("DestinationServiceID", Field::Plain),
        ("LocalServiceAddress", Field::Plain),
        ("LocalServicePort", Field::Plain),
        ("LocalServiceSocketPath", Field::Plain),
        ("Mode", Field::Plain),
        ("TransparentProxy", Field::Free),
        ("Config", Field::Free),
        ("Upstreams", Field::List(&UPSTREAM)),
        ("MeshGateway", Field::Free),
        ("Expose", Field::Free),
        ("AccessLogs", Field::Free),
    ],
    aliases: &[
        ("destination_service_name", "DestinationServiceName"),
        ("destination_service_id", "DestinationServiceID"),
        ("local_service_address", "LocalServiceAddress"),
        ("local_service_port", "LocalServicePort"),
        ("local_service_socket_path", "LocalServiceSocketPath"),
        ("mesh_gateway", "MeshGateway"),
        ("transparent_proxy", "TransparentProxy"),
        ("access_logs", "AccessLogs"),
    ],
};

static CONNECT: Schema = Schema {
    fields: &[
        ("Native", Field::Plain),
        ("SidecarService", Field::Object(&SERVICE)),
        ("PeerMeta", Field::Free),
    ],
    aliases: &[("sidecar_service", "SidecarService")],
};

static SERVICE: Schema = Schema {
    fields: &[
        ("Kind", Field::Plain),
        ("ID", Field::Plain),
        ("Name", Field::Plain),
        ("Tags", Field::Plain),
        ("Address", Field::Plain),
        ("TaggedAddresses", Field::Plain),
        ("Meta", Field::Plain),
        ("Port", Field::Plain),
        ("SocketPath", Field::Plain),
        ("Check", Field::Object(&CHECK_TYPE)),
        ("Checks", Field::List(&CHECK_TYPE)),
        ("Weights", Field::Plain),
        ("Token", Field::Plain),
        ("EnableTagOverride", Field::Plain),
        ("Proxy", Field::Object(&PROXY)),
        ("Connect", Field::Object(&CONNECT)),
        ("Locality", Field::Free),
    ],
    aliases: &[
        ("enable_tag_override", "EnableTagOverride"),
        ("tagged_addresses", "TaggedAddresses"),
    ],
};

/// Rewrites `value`'s keys to their canonical names under `schema`, refusing unknown keys with
/// Go's decoder message.
fn canonicalize(value: Value, schema: &Schema) -> Result<Value, String> {
    let Value::Object(map) = value else {
        return match value {
            Value::Null => Ok(Value::Null),
            other => Err(format!(
                "json: cannot unmarshal {} into an object",
                kind_of(&other)
            )),
        };
    };
    let mut out = Map::new();
    for (key, v) in map {
        let canonical = schema
            .aliases
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(&key))
            .map(|(_, c)| *c)
            .or_else(|| {
                schema
                    .fields
                    .iter()
                    .find(|(name, _)| same_key(name, &key))
                    .map(|(n, _)| *n)
            })
            .ok_or_else(|| format!("json: unknown field {key:?}"))?;
        let field = schema
            .fields
            .iter()
            .find(|(name, _)| *name == canonical)
            .map_or(Field::Ignored, |(_, f)| *f);
        let v = match field {
            Field::Plain | Field::Free => v,
            Field::Ignored => continue,
            Field::Object(inner) => canonicalize(v, inner)?,
            Field::List(inner) => match v {
                Value::Array(items) => Value::Array(
                    items
                        .into_iter()
                        .map(|i| canonicalize(i, inner))
                        .collect::<Result<_, _>>()?,
                ),
                Value::Null => Value::Null,
                other => {
                    return Err(format!(
                        "json: cannot unmarshal {} into a list",
                        kind_of(&other)
                    ))
                }
            },
        };
        out.insert(canonical.to_string(), v);
    }
    Ok(Value::Object(out))
}

/// Keys match case-insensitively, and config files' snake_case spelling (`socket_path`) names
/// the same field as `SocketPath`.
fn same_key(canonical: &str, key: &str) -> bool {
    let mut a = canonical
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase());
    let mut b = key
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (x, y) if x == y => continue,
            _ => return false,
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A Go duration: a string like `"10s"` or a number of nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s.is_empty() => Ok(GoDuration(Duration::ZERO)),
            Value::String(s) => crate::duration::parse(&s)
                .map(GoDuration)
                .map_err(serde::de::Error::custom),
            Value::Number(n) => n
                .as_u64()
                .map(|n| GoDuration(Duration::from_nanos(n)))
                .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {n}"))),
            Value::Null => Ok(GoDuration(Duration::ZERO)),
            other => Err(serde::de::Error::custom(format!(
                "invalid duration {other}"
            ))),
        }
    }
}

/// A check as part of a service definition, or (with `id`, `service_id`) on its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckDefinition {
    #[serde(rename = "CheckID", alias = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub notes: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(default)]
    pub script_args: Option<Vec<String>>,
    #[serde(rename = "HTTP", default)]
    pub http: String,
    #[serde(default)]
    pub header: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub disable_redirects: bool,
    #[serde(rename = "TCP", default)]
    pub tcp: String,
    #[serde(rename = "UDP", default)]
    pub udp: String,
    #[serde(default)]
    pub interval: GoDuration,
    #[serde(default)]
    pub alias_node: String,
    #[serde(default)]
    pub alias_service: String,
    #[serde(rename = "DockerContainerID", default)]
    pub docker_container_id: String,
    #[serde(rename = "GRPC", default)]
    pub grpc: String,
    #[serde(rename = "H2PING", default)]
    pub h2ping: String,
    #[serde(rename = "OSService", default)]
    pub os_service: String,
    #[serde(rename = "TLSServerName", default)]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify", default)]
    pub tls_skip_verify: bool,
    #[serde(default)]
    pub timeout: GoDuration,
    #[serde(rename = "TTL", default)]
    pub ttl: GoDuration,
    #[serde(default)]
    pub success_before_passing: u32,
    #[serde(default)]
    pub failures_before_warning: u32,
    #[serde(default)]
    pub failures_before_critical: u32,
    #[serde(default)]
    pub deregister_critical_service_after: GoDuration,
    #[serde(default)]
    pub output_max_size: usize,
}

impl CheckDefinition {
    /// Consul's check type name, first match wins.
    pub fn kind(&self) -> &'static str {
        if !self.grpc.is_empty() {
            "grpc"
        } else if !self.http.is_empty() {
            "http"
        } else if !self.ttl.0.is_zero() {
            "ttl"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.udp.is_empty() {
            "udp"
        } else if !self.alias_service.is_empty() {
            "alias"
        } else if !self.docker_container_id.is_empty() {
            "docker"
        } else if self.script_args.as_ref().is_some_and(|a| !a.is_empty()) {
            "script"
        } else if !self.h2ping.is_empty() {
            "h2ping"
        } else if !self.os_service.is_empty() {
            "os_service"
        } else {
            ""
        }
    }

    /// Whether the definition is empty (Consul skips an empty `Check` object).
    pub fn is_empty(&self) -> bool {
        self.kind().is_empty() && self.name.is_empty() && self.id.is_empty()
    }

    /// Consul's `CheckType.Validate`.
    pub fn validate(&self) -> Result<(), String> {
        let interval_kinds = [
            "script",
            "http",
            "tcp",
            "udp",
            "h2ping",
            "os_service",
            "grpc",
            "docker",
        ];
        let kind = self.kind();
        if !self.interval.0.is_zero() && !self.ttl.0.is_zero() {
            return Err("Interval and TTL cannot both be specified".into());
        }
        if interval_kinds.contains(&kind) && self.interval.0.is_zero() {
            return Err(
                "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
                    .into(),
            );
        }
        if kind == "alias" {
            if !self.interval.0.is_zero() {
                return Err("Interval cannot be set for Alias checks".into());
            }
            if !self.ttl.0.is_zero() {
                return Err("TTL must be not be set for Alias checks".into());
            }
        }
        if kind.is_empty() {
            return Err("TTL must be > 0 for TTL checks".into());
        }
        if self.failures_before_warning > self.failures_before_critical
            && self.failures_before_critical > 0
        {
            return Err("FailuresBeforeWarning can't be higher than FailuresBeforeCritical".into());
        }
        Ok(())
    }
}

/// A service definition (Consul's `ServiceDefinition`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceDefinition {
    #[serde(default)]
    pub kind: String,
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub tagged_addresses: Option<BTreeMap<String, crate::types::catalog::ServiceAddress>>,
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub socket_path: String,
    #[serde(default)]
    pub check: Option<CheckDefinition>,
    #[serde(default)]
    pub checks: Option<Vec<CheckDefinition>>,
    #[serde(default)]
    pub weights: Option<crate::types::catalog::Weights>,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub enable_tag_override: bool,
    #[serde(default)]
    pub proxy: Option<Value>,
    #[serde(default)]
    pub connect: Option<Value>,
    #[serde(default)]
    pub locality: Option<Value>,
}

/// Decodes a service definition from a request body (or a config file's JSON).
pub fn decode_service(value: Value) -> Result<ServiceDefinition, String> {
    let value = canonicalize(value, &SERVICE)?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Decodes a `/v1/agent/check/register` body.
pub fn decode_check(value: Value) -> Result<CheckDefinition, String> {
    let value = canonicalize(value, &CHECK_DEFINITION)?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Consul's rules for service metadata.
pub fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    if meta.len() > 64 {
        return Err("Node metadata cannot contain more than 64 key/value pairs".into());
    }
    for (k, v) in meta {
        let reason = if k.is_empty() {
            Some("Key cannot be blank")
        } else if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some("Key contains invalid characters")
        } else if k.len() > 128 {
            Some("Key is too long (limit: 128 characters)")
        } else if k.starts_with("consul-") {
            Some("Key prefix 'consul-' is reserved for internal use")
        } else if v.len() > 512 {
            Some("Value is too long (limit: 512 characters)")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(format!(
                "Couldn't load metadata pair ('{k}', '{v}'): {reason}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively_and_aliases_apply() {
        let def = decode_service(json!({
            "name": "web", "PORT": 80, "enable_tag_override": true,
            "check": {"http": "http://x", "interval": "10s", "tls_skip_verify": true},
            "Connect": {"sidecar_service": {"port": 21000}}
        }))
        .unwrap();
        assert_eq!(
            (def.name.as_str(), def.port, def.enable_tag_override),
            ("web", 80, true)
        );
        let check = def.check.unwrap();
        assert_eq!(check.kind(), "http");
        assert!(check.tls_skip_verify);
        assert_eq!(check.interval.0, Duration::from_secs(10));
        assert_eq!(def.connect.unwrap()["SidecarService"]["Port"], 21000);
        // Config files spell every key in snake_case.
        let def = decode_service(json!({"name": "s", "socket_path": "/run/s.sock"})).unwrap();
        assert_eq!(def.socket_path, "/run/s.sock");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = decode_service(json!({"Name": "web", "Bogus": 1})).unwrap_err();
        assert_eq!(err, "json: unknown field \"Bogus\"");
        let err = decode_service(json!({"Name": "web", "Check": {"ID": "x"}})).unwrap_err();
        assert_eq!(err, "json: unknown field \"ID\"");
        let err = decode_check(json!({"CheckID": "x"})).unwrap_err();
        assert_eq!(err, "json: unknown field \"CheckID\"");
    }

    #[test]
    fn durations_accept_strings_and_nanoseconds() {
        let c = decode_check(json!({"Name": "t", "TTL": 15_000_000_000u64})).unwrap();
        assert_eq!(c.ttl.0, Duration::from_secs(15));
        assert!(decode_check(json!({"Name": "t", "TTL": "soon"})).is_err());
    }

    #[test]
    fn check_validation_texts() {
        let c = |v: Value| decode_check(v).unwrap().validate();
        assert_eq!(
            c(json!({"Name": "x"})).unwrap_err(),
            "TTL must be > 0 for TTL checks"
        );
        assert_eq!(
            c(json!({"Name": "x", "TCP": "a:1"})).unwrap_err(),
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
        );
        assert_eq!(
            c(json!({"Name": "x", "TTL": "1s", "Interval": "1s"})).unwrap_err(),
            "Interval and TTL cannot both be specified"
        );
        assert!(c(json!({"Name": "x", "AliasService": "web"})).is_ok());
    }

    #[test]
    fn meta_rules() {
        let m = |k: &str| BTreeMap::from([(k.to_string(), "v".to_string())]);
        assert!(validate_meta(&m("version")).is_ok());
        assert!(validate_meta(&m("consul-x"))
            .unwrap_err()
            .contains("reserved"));
        assert!(validate_meta(&m("a.b"))
            .unwrap_err()
            .contains("invalid characters"));
    }
}
