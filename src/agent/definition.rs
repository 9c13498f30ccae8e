//! Service and check definitions as clients send them to `/v1/agent/service/register` and
//! `/v1/agent/check/register` (and as config files hold them), decoded the way Consul decodes
//! them (`gojson` with the schemas of `types::schemas`): keys match case-insensitively,
//! snake_case spellings are accepted, an unknown key is an error naming it, durations are Go
//! duration strings or nanoseconds.

use crate::gojson;
use crate::types::schemas;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

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
    let map = gojson::decode_value(value, &schemas::SERVICE_DEFINITION)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())
}

/// Decodes a `/v1/agent/check/register` body (or a config file's check).
pub fn decode_check(value: Value) -> Result<CheckDefinition, String> {
    let map = gojson::decode_value(value, &schemas::CHECK_DEFINITION)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())
}

/// Consul's rules for service metadata.
pub fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), String> {
    validate_meta_pairs(meta, false)
}

/// Consul's `ValidateNodeMetadata`: `allow_reserved` lets keys start with `consul-` (filters,
/// such as a prepared query's `NodeMeta`, may name them).
pub fn validate_meta_pairs(
    meta: &BTreeMap<String, String>,
    allow_reserved: bool,
) -> Result<(), String> {
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
        } else if !allow_reserved && k.starts_with("consul-") {
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
