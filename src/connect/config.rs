//! The built-in provider's settings: the `Config` map of Consul's `CAConfiguration`, decoded
//! as Consul's `ParseConsulCAConfig` decodes it (mapstructure, weakly typed, field names
//! matched without regard to case or underscores, unknown keys ignored) over its defaults.

use std::time::Duration;

use serde_json::{Map, Value};

use super::ca::DEFAULT_ROOT_CERT_TTL;
use super::keys::{validate_leaf_cert_ttl, KeySpec};

/// The settings a CA is run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSettings {
    pub leaf_cert_ttl: Duration,
    pub root_cert_ttl: Duration,
    /// Validated as Consul does; the built-in provider of a primary datacenter signs leaves
    /// with its root, so no intermediate is made with it.
    pub intermediate_cert_ttl: Duration,
    /// The key a generated root gets (ignored when a root is imported).
    pub key: KeySpec,
    /// A root to import instead of generating one, with its key.
    pub private_key: String,
    pub root_cert: String,
}

const HOUR: u64 = 3600;

/// Every field the built-in provider's configuration may hold, as Consul spells it.
/// `RotationPeriod` is accepted and, as in Consul 1.22 (whose provider config no longer has
/// it), ignored.
pub const FIELDS: &[&str] = &[
    "LeafCertTTL",
    "RootCertTTL",
    "IntermediateCertTTL",
    "RotationPeriod",
    "PrivateKeyType",
    "PrivateKeyBits",
    "PrivateKey",
    "RootCert",
    "SkipValidate",
    "CSRMaxPerSecond",
    "CSRMaxConcurrent",
];

/// The field `key` names (`leaf_cert_ttl`, `leafcertttl`, `LeafCertTTL`...), as Consul's
/// decoder matches them.
pub fn canonical_key(key: &str) -> Option<&'static str> {
    let folded = |s: &str| s.replace('_', "").to_lowercase();
    let wanted = folded(key);
    FIELDS.iter().copied().find(|f| folded(f) == wanted)
}

/// The map a new cluster's CA configuration holds (Consul's runtime defaults).
pub fn default_map() -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in [
        ("LeafCertTTL", Value::from("72h")),
        ("RotationPeriod", Value::from("2160h")),
        ("IntermediateCertTTL", Value::from("8760h")),
        ("RootCertTTL", Value::from("87600h")),
        ("PrivateKeyType", Value::from("ec")),
        ("PrivateKeyBits", Value::from(256)),
    ] {
        map.insert(key.into(), value);
    }
    map
}

impl CaSettings {
    /// Decodes and validates a provider `Config` map as Consul's `ParseConsulCAConfig`: over
    /// the defaults, then a root cert needs its key, then (unless `SkipValidate`) the TTL and
    /// key rules of `CommonCAProviderConfig.Validate`; errors read as Consul's.
    pub fn parse(map: &Map<String, Value>) -> Result<CaSettings, String> {
        let mut leaf_cert_ttl = Duration::from_secs(72 * HOUR);
        let mut root_cert_ttl = DEFAULT_ROOT_CERT_TTL;
        let mut intermediate_cert_ttl = Duration::from_secs(8760 * HOUR);
        let mut key_type = "ec".to_string();
        let mut key_bits = 256;
        let mut private_key = String::new();
        let mut root_cert = String::new();
        let mut skip_validate = false;
        let decoding = |e: String| format!("error decoding config: {e}");
        for (key, value) in map {
            match canonical_key(key) {
                Some("LeafCertTTL") => leaf_cert_ttl = duration(key, value).map_err(decoding)?,
                Some("RootCertTTL") => root_cert_ttl = duration(key, value).map_err(decoding)?,
                Some("IntermediateCertTTL") => {
                    intermediate_cert_ttl = duration(key, value).map_err(decoding)?
                }
                Some("PrivateKeyType") => key_type = string(key, value).map_err(decoding)?,
                Some("PrivateKeyBits") => key_bits = integer(key, value).map_err(decoding)?,
                Some("PrivateKey") => private_key = string(key, value).map_err(decoding)?,
                Some("RootCert") => root_cert = string(key, value).map_err(decoding)?,
                Some("SkipValidate") => skip_validate = boolean(key, value).map_err(decoding)?,
                // Consul's server-side signing limits: checked, not enforced (see the README).
                Some("CSRMaxPerSecond") => {
                    float(key, value).map_err(decoding)?;
                }
                Some("CSRMaxConcurrent") => {
                    integer(key, value).map_err(decoding)?;
                }
                _ => {}
            }
        }
        if private_key.is_empty() && !root_cert.is_empty() {
            return Err(super::Error::MissingPrivateKey.to_string());
        }
        if !skip_validate {
            validate_ttls(leaf_cert_ttl, intermediate_cert_ttl).map_err(|e| e.to_string())?;
        }
        // Checked even with `SkipValidate`: a root of an unknown key type cannot be made.
        let bits = u32::try_from(key_bits).unwrap_or(0);
        let key = KeySpec::from_config(&key_type, bits).map_err(|e| e.to_string())?;
        Ok(CaSettings {
            leaf_cert_ttl,
            root_cert_ttl,
            intermediate_cert_ttl,
            key,
            private_key,
            root_cert,
        })
    }
}

/// Consul's TTL rules: a leaf lives at least an hour and at most a year; an intermediate at
/// least three hours (its renewal check runs hourly) and three leaf lifetimes.
fn validate_ttls(leaf: Duration, intermediate: Duration) -> Result<(), super::Error> {
    validate_leaf_cert_ttl(leaf)?;
    if intermediate < Duration::from_secs(3 * HOUR) {
        return Err(super::Error::IntermediateCertTtlTooShort);
    }
    if intermediate < 3 * leaf {
        return Err(super::Error::IntermediateCertTtlBelowLeaves(
            crate::duration::format(3 * leaf),
        ));
    }
    Ok(())
}

/// A duration as Consul's decode hook reads one: a Go duration string, or a number of
/// nanoseconds.
fn duration(key: &str, value: &Value) -> Result<Duration, String> {
    match value {
        Value::String(s) => crate::duration::parse(s),
        Value::Number(n) => Ok(Duration::from_nanos(
            n.as_f64().unwrap_or(0.0).max(0.0) as u64
        )),
        other => Err(type_error(key, other, "time.Duration")),
    }
}

/// A bool, weakly: a bool, a number (non-zero is true) or a string Go's `ParseBool` reads.
fn boolean(key: &str, value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Value::String(s) if s.is_empty() => Ok(false),
        Value::String(s) => crate::gojson::parse_go_bool(s).ok_or_else(|| {
            format!(
                "cannot parse '{key}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
            )
        }),
        other => Err(type_error(key, other, "bool")),
    }
}

/// A float32, weakly: a number, a bool or a numeric string.
fn float(key: &str, value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.parse().map_err(|_| {
            format!(
                "cannot parse '{key}' as float: strconv.ParseFloat: parsing {s:?}: invalid syntax"
            )
        }),
        other => Err(type_error(key, other, "float32")),
    }
}

fn string(key: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.into()),
        other => Err(type_error(key, other, "string")),
    }
}

/// An int, weakly: a number or a numeric string.
fn integer(key: &str, value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| type_error(key, value, "int")),
        Value::String(s) => s.parse().map_err(|_| {
            format!("cannot parse '{key}' as int: strconv.ParseInt: parsing {s:?}: invalid syntax")
        }),
        other => Err(type_error(key, other, "int")),
    }
}

fn type_error(key: &str, value: &Value, want: &str) -> String {
    let got = match value {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    };
    format!("'{key}' expected type '{want}', got unconvertible type '{got}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CaSettings, String> {
        CaSettings::parse(v.as_object().unwrap())
    }

    #[test]
    fn defaults_and_weak_decoding() {
        let s = parse(json!({})).unwrap();
        assert_eq!(s.leaf_cert_ttl, Duration::from_secs(72 * HOUR));
        assert_eq!(s.key, KeySpec::default());
        assert_eq!(CaSettings::parse(&default_map()).unwrap(), s);
        let s = parse(
            json!({"leaf_cert_ttl": "2h", "privatekeytype": "rsa", "PrivateKeyBits": "2048"}),
        )
        .unwrap();
        assert_eq!(s.leaf_cert_ttl, Duration::from_secs(2 * HOUR));
        assert_eq!(s.key, KeySpec::from_config("rsa", 2048).unwrap());
    }

    #[test]
    fn bad_settings_are_refused_with_consuls_texts() {
        let err = |v| parse(v).unwrap_err();
        assert_eq!(
            err(json!({"LeafCertTTL": "1m"})),
            "leaf cert TTL must be greater or equal than 1h0m0s"
        );
        assert_eq!(
            err(json!({"PrivateKeyType": "dsa"})),
            "private key type must be either 'ec' or 'rsa'"
        );
        assert_eq!(
            err(json!({"RootCert": "x"})),
            "must provide a private key when providing a root cert"
        );
        assert!(err(json!({"LeafCertTTL": "soon"})).starts_with("error decoding config: "));
        assert_eq!(
            err(json!({"LeafCertTTL": "8761h"})),
            "leaf cert TTL must be less than 8760h0m0s"
        );
        assert_eq!(
            err(json!({"IntermediateCertTTL": "2h"})),
            "Intermediate Cert TTL must be greater or equal than 3h"
        );
        assert_eq!(
            err(json!({"IntermediateCertTTL": "100h"})),
            "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL (>=216h0m0s)."
        );
        assert_eq!(
            err(json!({"CSRMaxPerSecond": "fast"})),
            "error decoding config: cannot parse 'CSRMaxPerSecond' as float: strconv.ParseFloat: parsing \"fast\": invalid syntax"
        );
        assert_eq!(
            err(json!({"CSRMaxConcurrent": [1]})),
            "error decoding config: 'CSRMaxConcurrent' expected type 'int', got unconvertible type 'slice'"
        );
    }

    #[test]
    fn skip_validate_lifts_the_ttl_rules_and_rotation_period_is_ignored() {
        let s =
            parse(json!({"SkipValidate": true, "LeafCertTTL": "1m", "IntermediateCertTTL": "1h"}))
                .unwrap();
        assert_eq!(s.leaf_cert_ttl, Duration::from_secs(60));
        assert!(parse(json!({"SkipValidate": "true", "PrivateKeyType": "dsa"})).is_err());
        assert!(parse(json!({"RotationPeriod": "not a duration"})).is_ok());
        assert!(parse(json!({"CSRMaxPerSecond": "12.5", "CSRMaxConcurrent": 4})).is_ok());
    }
}
