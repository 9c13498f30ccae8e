//! Intentions (Consul's `structs.Intention` and `SourceIntention`): the one source of truth is
//! the `service-intentions` config entry of the destination, whose `Sources` each become one
//! intention. This module normalizes and validates such entries (`normalize`/`validate` of
//! `ServiceIntentionsConfigEntry`, for plain and legacy writes), converts sources to
//! intentions, computes precedence, and edits an entry's sources for the intention APIs.
//!
//! Namespaces and partitions are Enterprise: every intention is in `default`. Peers and
//! sameness groups are refused (Legate has no peering).

use super::config_entry::{meta_errors, ConfigEntry, WILDCARD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const SERVICE_INTENTIONS_KIND: &str = "service-intentions";
/// The only namespace of Consul CE.
pub const DEFAULT_NS: &str = "default";
const SOURCE_CONSUL: &str = "consul";
/// Consul's `metaValueMaxLength`, which also bounds descriptions.
const DESCRIPTION_MAX: usize = 512;
/// Go's zero `time.Time`, as intentions without legacy times render it.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One source of a `service-intentions` entry, as stored (canonical keys, Consul's order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Source {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Value>,
    pub precedence: i64,
    #[serde(rename = "LegacyID", skip_serializing_if = "String::is_empty")]
    pub legacy_id: String,
    #[serde(rename = "Type")]
    pub source_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub legacy_meta: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_create_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_update_time: Option<String>,
}

impl Source {
    fn is_l7(&self) -> bool {
        !self.permissions.is_empty()
    }
}

/// An intention as Consul's API renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Intention {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(rename = "SourceNS")]
    pub source_ns: String,
    pub source_name: String,
    #[serde(rename = "DestinationNS")]
    pub destination_ns: String,
    pub destination_name: String,
    pub source_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    pub precedence: i64,
    pub created_at: String,
    pub updated_at: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Intention {
    /// Consul's `Intention.String()`, which authorize reasons quote.
    pub fn describe(&self) -> String {
        let id = if self.id.is_empty() {
            String::new()
        } else {
            format!("ID: {}, ", self.id)
        };
        let detail = if self.permissions.is_empty() {
            format!("Action: {}", self.action.to_uppercase())
        } else {
            format!("Permissions: {}", self.permissions.len())
        };
        format!(
            "{}/{} => {}/{} ({id}Precedence: {}, {detail})",
            self.source_ns,
            self.source_name,
            self.destination_ns,
            self.destination_name,
            self.precedence
        )
    }

    /// Whether this intention matches `name` on the `by` side (its exact name or `*`).
    pub fn matches(&self, by: MatchBy, name: &str) -> bool {
        let side = match by {
            MatchBy::Source => &self.source_name,
            MatchBy::Destination => &self.destination_name,
        };
        side == name || side == WILDCARD
    }

    /// The decision of an L4 intention; an L7 one (with `Permissions`) cannot be decided
    /// without a request, so it denies a connection.
    pub fn allows(&self) -> bool {
        self.permissions.is_empty() && self.action == "allow"
    }
}

/// Which side of an intention a match query names (`?by=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    Source,
    Destination,
}

impl MatchBy {
    pub fn parse(by: &str) -> Option<MatchBy> {
        match by {
            "source" => Some(MatchBy::Source),
            "destination" => Some(MatchBy::Destination),
            _ => None,
        }
    }
}

/// Consul's precedence sort: higher precedence first, then by names for a stable order.
pub fn sort_by_precedence(intentions: &mut [Intention]) {
    intentions.sort_by(|a, b| {
        b.precedence
            .cmp(&a.precedence)
            .then_with(|| a.source_name.cmp(&b.source_name))
            .then_with(|| a.destination_name.cmp(&b.destination_name))
    });
}

/// Precedence from how exact each side is (`computeIntentionPrecedence`): the destination
/// counts most (9, 6, 3 at most), each wildcard on the source side takes one off. With the
/// namespace always `default`, a name is exact (2) or `*` (1).
fn precedence(destination: &str, source: &str) -> i64 {
    let exact = |name: &str| if name == WILDCARD { 1 } else { 2 };
    let max = match exact(destination) {
        2 => 9,
        _ => 6,
    };
    max - (2 - exact(source))
}

/// The sources of a `service-intentions` entry (empty for any other kind).
pub fn sources(entry: &ConfigEntry) -> Vec<Source> {
    if entry.kind != SERVICE_INTENTIONS_KIND {
        return Vec::new();
    }
    entry
        .body()
        .get("Sources")
        .and_then(|s| Vec::<Source>::deserialize(s).ok())
        .unwrap_or_default()
}

/// Every intention of an entry, in the entry's (precedence) order (`ToIntentions`).
pub fn intentions(entry: &ConfigEntry) -> Vec<Intention> {
    sources(entry)
        .into_iter()
        .map(|src| to_intention(entry, src))
        .collect()
}

fn to_intention(entry: &ConfigEntry, src: Source) -> Intention {
    // A legacy intention keeps its own meta; the others show the entry's.
    let meta = if src.legacy_id.is_empty() {
        entry.meta.clone()
    } else {
        src.legacy_meta
    };
    Intention {
        id: src.legacy_id,
        description: src.description,
        source_ns: DEFAULT_NS.into(),
        source_name: src.name,
        destination_ns: DEFAULT_NS.into(),
        destination_name: entry.name.clone(),
        source_type: src.source_type,
        action: src.action,
        permissions: src.permissions,
        meta,
        precedence: src.precedence,
        created_at: src.legacy_create_time.unwrap_or_else(|| ZERO_TIME.into()),
        updated_at: src.legacy_update_time.unwrap_or_else(|| ZERO_TIME.into()),
        create_index: entry.create_index,
        modify_index: entry.modify_index,
    }
}

// ----- normalize and validate -----

/// The keys a source may hold, and the names inside its permissions, canonically spelled.
const SOURCE_KEYS: &[&str] = &[
    "Name",
    "Action",
    "Permissions",
    "Precedence",
    "LegacyID",
    "Type",
    "Description",
    "LegacyMeta",
    "LegacyCreateTime",
    "LegacyUpdateTime",
];
const PERMISSION_KEYS: &[&str] = &[
    "Action",
    "HTTP",
    "JWT",
    "PathExact",
    "PathPrefix",
    "PathRegex",
    "Header",
    "Methods",
    "Name",
    "Present",
    "Exact",
    "Prefix",
    "Suffix",
    "Regex",
    "Invert",
    "Providers",
    "VerifyClaims",
    "Path",
    "Value",
];

/// How mapstructure binds a key: case-insensitively, or by its snake_case alias.
fn canonical<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let folded = key.replace('_', "").to_lowercase();
    known.iter().copied().find(|k| k.to_lowercase() == folded)
}

/// Respells every key of a permission (recursively) as Consul's field name.
fn canonical_permission(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = canonical(&k, PERMISSION_KEYS).map_or(k, str::to_string);
                    (key, canonical_permission(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_permission).collect()),
        other => other,
    }
}

/// Reads the raw `Sources` of a decoded entry into typed sources, refusing unknown keys.
fn decode_sources(raw: Option<&Value>) -> Result<Vec<Source>, String> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("Sources must be a list of sources".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(map) = item else {
                return Err(format!("Sources[{i}] must be an object"));
            };
            let mut canon = Map::new();
            for (k, v) in map {
                let lower = k.to_lowercase();
                let Some(key) = canonical(k, SOURCE_KEYS) else {
                    return Err(if lower.contains("namespace") || lower.contains("partition") {
                        format!("invalid config key \"Sources[{i}].{k}\", namespaces and partitions are a consul enterprise feature")
                    } else if lower == "peer" || lower.replace('_', "") == "samenessgroup" {
                        format!("invalid config key \"Sources[{i}].{k}\": Legate has no cluster peering")
                    } else {
                        format!("invalid config key \"Sources[{i}].{k}\"")
                    });
                };
                let v = if key == "Permissions" {
                    canonical_permission(v.clone())
                } else {
                    v.clone()
                };
                canon.insert(key.to_string(), v);
            }
            Source::deserialize(Value::Object(canon))
                .map_err(|e| format!("Sources[{i}]: {e}"))
        })
        .collect()
}

/// `normalize` of a `service-intentions` entry: types default to `consul`, precedence is
/// computed, HTTP methods are uppercased, sources are sorted by precedence (stably), and a
/// plain write clears the legacy fields except `LegacyMeta`, which `validate` then refuses.
pub fn normalize(entry: &mut ConfigEntry, legacy: bool) -> Result<(), String> {
    let mut sources = decode_sources(entry.body().get("Sources"))?;
    for src in &mut sources {
        if src.source_type.is_empty() {
            src.source_type = SOURCE_CONSUL.into();
        }
        src.precedence = precedence(&entry.name, &src.name);
        if !legacy {
            src.legacy_id.clear();
            src.legacy_create_time = None;
            src.legacy_update_time = None;
        }
        for perm in &mut src.permissions {
            if let Some(Value::Array(methods)) = perm.pointer_mut("/HTTP/Methods") {
                for m in methods {
                    if let Value::String(s) = m {
                        *s = s.to_uppercase();
                    }
                }
            }
        }
    }
    sources.sort_by_key(|s| std::cmp::Reverse(s.precedence));
    let rendered = serde_json::to_value(&sources).map_err(|e| e.to_string())?;
    entry.set_body_field("Sources", rendered);
    Ok(())
}

/// The wildcard rule of a name (`validateIntentionWildcards` without namespaces).
fn wildcard_error(name: &str) -> Option<&'static str> {
    (name != WILDCARD && name.contains(WILDCARD))
        .then_some("Name: wildcard character '*' cannot be used with partial values")
}

/// `validate` of a normalized `service-intentions` entry, with Consul's messages.
pub fn validate(entry: &ConfigEntry, legacy: bool) -> Result<(), String> {
    if entry.name.is_empty() {
        return Err("Name is required".into());
    }
    if let Some(e) = wildcard_error(&entry.name) {
        return Err(e.into());
    }
    if legacy {
        if !entry.meta.is_empty() {
            return Err("Meta must be omitted for legacy intention writes".into());
        }
    } else if let Some(e) = meta_errors(&entry.meta).into_iter().next() {
        return Err(e);
    }
    let sources = sources(entry);
    if sources.is_empty() {
        return Err("At least one source is required".into());
    }
    let wildcard_destination = entry.name == WILDCARD;
    let mut seen = std::collections::HashSet::new();
    for (i, src) in sources.iter().enumerate() {
        validate_source(i, src, legacy, wildcard_destination)?;
        if !seen.insert(src.name.as_str()) {
            return Err(format!(
                "Sources[{i}] defines \"{DEFAULT_NS}/{}\" more than once",
                src.name
            ));
        }
    }
    Ok(())
}

fn validate_source(i: usize, src: &Source, legacy: bool, wildcard_dst: bool) -> Result<(), String> {
    if src.name.is_empty() {
        return Err(format!("Sources[{i}].Name is required"));
    }
    if let Some(e) = wildcard_error(&src.name) {
        return Err(format!("Sources[{i}].{e}"));
    }
    if src.description.len() > DESCRIPTION_MAX {
        return Err(format!(
            "Sources[{i}].Description exceeds maximum length {DESCRIPTION_MAX}"
        ));
    }
    if legacy {
        if let Some(e) = meta_errors(&src.legacy_meta).into_iter().next() {
            return Err(format!("Sources[{i}].{e}"));
        }
        for (field, value) in [
            ("LegacyCreateTime", &src.legacy_create_time),
            ("LegacyUpdateTime", &src.legacy_update_time),
        ] {
            if value.is_none() {
                return Err(format!("Sources[{i}].{field} must be set"));
            }
        }
        if src.legacy_id.is_empty() {
            return Err(format!("Sources[{i}].LegacyID must be set"));
        }
    } else if !src.legacy_meta.is_empty() {
        return Err(format!("Sources[{i}].LegacyMeta must be omitted"));
    }
    if (legacy || !src.is_l7()) && !matches!(src.action.as_str(), "allow" | "deny") {
        return Err(format!(
            "Sources[{i}].Action must be set to 'allow' or 'deny'"
        ));
    }
    if src.is_l7() && !src.action.is_empty() {
        return Err(format!(
            "Sources[{i}].Action must be omitted if Permissions are specified"
        ));
    }
    if wildcard_dst && src.is_l7() {
        return Err(format!("Sources[{i}].Permissions cannot be specified on intentions with wildcarded destinations"));
    }
    if src.source_type != SOURCE_CONSUL {
        return Err(format!("Sources[{i}].Type must be set to 'consul'"));
    }
    for (j, perm) in src.permissions.iter().enumerate() {
        validate_permission(i, j, perm)?;
    }
    Ok(())
}

/// The checks of one L7 permission (`Sources[i].Permissions[j]`).
fn validate_permission(i: usize, j: usize, perm: &Value) -> Result<(), String> {
    let at = format!("Sources[{i}].Permissions[{j}]");
    if !matches!(
        perm.get("Action").and_then(Value::as_str),
        Some("allow" | "deny")
    ) {
        return Err(format!("{at}.Action must be set to 'allow' or 'deny'"));
    }
    let Some(http) = perm.get("HTTP").filter(|h| h.is_object()) else {
        return Err(format!("{at}.HTTP is required"));
    };
    let text = |k: &str| http.get(k).and_then(Value::as_str).unwrap_or("");
    let mut paths = 0;
    for key in ["PathExact", "PathPrefix"] {
        let value = text(key);
        if !value.is_empty() {
            paths += 1;
            if !value.starts_with('/') {
                return Err(format!("{at}.HTTP.{key} doesn't start with '/': {value:?}"));
            }
        }
    }
    if !text("PathRegex").is_empty() {
        paths += 1;
    }
    if paths > 1 {
        return Err(format!(
            "{at}.HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex"
        ));
    }
    let mut parts = paths;
    let headers = http.get("Header").and_then(Value::as_array);
    for (k, hdr) in headers.into_iter().flatten().enumerate() {
        if hdr
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(format!("{at}.HTTP.Header[{k}] missing required Name field"));
        }
        let set = ["Exact", "Prefix", "Suffix", "Regex"]
            .iter()
            .filter(|f| {
                !hdr.get(**f)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            })
            .count()
            + usize::from(hdr.get("Present").and_then(Value::as_bool) == Some(true));
        if set != 1 {
            return Err(format!("{at}.HTTP.Header[{k}] should only contain one of Present, Exact, Prefix, Suffix, or Regex"));
        }
        parts += 1;
    }
    let methods = http.get("Methods").and_then(Value::as_array);
    if let Some(methods) = methods.filter(|m| !m.is_empty()) {
        let mut found = std::collections::HashSet::new();
        for m in methods {
            let m = m.as_str().unwrap_or("");
            if !HTTP_METHODS.contains(&m) {
                return Err(format!(
                    "{at}.HTTP.Methods contains an invalid method {m:?}"
                ));
            }
            if !found.insert(m) {
                return Err(format!("{at}.HTTP.Methods contains {m:?} more than once"));
            }
        }
        parts += 1;
    }
    if parts == 0 {
        return Err(format!("{at}.HTTP should not be empty"));
    }
    Ok(())
}

/// Go's `net/http` method constants, the only methods Consul accepts in a permission.
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

// ----- edits for the intention APIs -----

/// What a client sends for an intention (`structs.Intention` as decoded by the HTTP API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IntentionInput {
    #[serde(rename = "ID")]
    pub id: String,
    pub description: String,
    #[serde(rename = "SourceNS")]
    pub source_ns: String,
    pub source_name: String,
    #[serde(rename = "DestinationNS")]
    pub destination_ns: String,
    pub destination_name: String,
    pub source_type: String,
    pub action: String,
    pub permissions: Vec<Value>,
    pub meta: BTreeMap<String, String>,
}

impl IntentionInput {
    /// Decodes a body as Consul's handlers do (`structs.Intention` through `lib.DecodeJSON`:
    /// keys match case-insensitively, unknown ones are refused, mistyped values get Go's
    /// text); read-only fields such as `Precedence` or `CreateIndex` are accepted and ignored.
    pub fn decode(body: &[u8]) -> Result<IntentionInput, String> {
        let decoded = crate::gojson::decode(body, &super::schemas::INTENTION)?;
        IntentionInput::deserialize(Value::Object(decoded)).map_err(|e| e.to_string())
    }

    /// Namespaces are Enterprise: only `default` (or none) is accepted.
    pub fn check_namespaces(&self) -> Result<(), String> {
        for ns in [&self.source_ns, &self.destination_ns] {
            if !ns.is_empty() && ns != DEFAULT_NS {
                return Err(format!(
                    "namespace {ns:?} is not supported: namespaces are a Consul Enterprise feature"
                ));
            }
        }
        Ok(())
    }

    /// The source this input describes. A legacy source carries its ID, meta and times.
    pub fn to_source(&self, legacy: Option<Legacy>) -> Source {
        let mut src = Source {
            name: self.source_name.clone(),
            action: self.action.clone(),
            permissions: self.permissions.clone(),
            source_type: self.source_type.clone(),
            description: self.description.clone(),
            ..Source::default()
        };
        if let Some(l) = legacy {
            src.legacy_id = l.id;
            src.legacy_meta = self.meta.clone();
            src.legacy_create_time = Some(l.created_at);
            src.legacy_update_time = Some(l.updated_at);
        }
        src
    }
}

/// The identity of a legacy intention: its ID and times, decided before the command.
#[derive(Debug, Clone)]
pub struct Legacy {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
}

/// The entry `existing` (or a new one for `destination`) with `source` in place of the source
/// of the same name, or added. `meta`, when given, replaces the entry's meta.
pub fn with_source(
    existing: Option<ConfigEntry>,
    destination: &str,
    source: Source,
    meta: Option<BTreeMap<String, String>>,
) -> ConfigEntry {
    let mut entry =
        existing.unwrap_or_else(|| ConfigEntry::new(SERVICE_INTENTIONS_KIND, destination));
    let mut all = sources(&entry);
    match all.iter_mut().find(|s| s.name == source.name) {
        Some(slot) => *slot = source,
        None => all.push(source),
    }
    if let Some(meta) = meta {
        entry.meta = meta;
    }
    set_sources(&mut entry, &all);
    entry
}

/// The entry without the sources `drop` selects; `None` when none is left (the entry goes).
pub fn without_source(
    mut entry: ConfigEntry,
    drop: impl Fn(&Source) -> bool,
) -> Option<ConfigEntry> {
    let mut all = sources(&entry);
    all.retain(|s| !drop(s));
    if all.is_empty() {
        return None;
    }
    set_sources(&mut entry, &all);
    Some(entry)
}

fn set_sources(entry: &mut ConfigEntry, sources: &[Source]) {
    let rendered = serde_json::to_value(sources).unwrap_or(Value::Array(Vec::new()));
    entry.set_body_field("Sources", rendered);
}

/// Whether an entry is managed by the legacy (ID-based) API: all its sources have an ID.
pub fn is_legacy(entry: &ConfigEntry) -> bool {
    let all = sources(entry);
    !all.is_empty() && all.iter().all(|s| !s.legacy_id.is_empty())
}

/// RFC 3339 with nanoseconds, as Go renders a `time.Time`, for legacy times.
pub fn go_time(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ZERO_TIME.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> Result<ConfigEntry, String> {
        let mut e = ConfigEntry::decode(v)?;
        e.check()?;
        Ok(e)
    }

    #[test]
    fn precedence_follows_exactness_destination_first() {
        assert_eq!(precedence("db", "web"), 9);
        assert_eq!(precedence("db", "*"), 8);
        assert_eq!(precedence("*", "web"), 6);
        assert_eq!(precedence("*", "*"), 5);
    }

    #[test]
    fn sources_are_normalized_sorted_and_described() {
        let e = entry(json!({"Kind": "service-intentions", "Name": "db", "Sources": [
            {"name": "*", "action": "deny"}, {"Name": "web", "Action": "allow", "legacy_id": "x"},
        ]}))
        .unwrap();
        let ixns = intentions(&e);
        assert_eq!(ixns[0].source_name, "web");
        assert_eq!(ixns[0].id, "", "a plain write clears LegacyID");
        assert_eq!(ixns[1].precedence, 8);
        assert_eq!(
            ixns[0].describe(),
            "default/web => default/db (Precedence: 9, Action: ALLOW)"
        );
    }

    #[test]
    fn validation_errors_are_consuls() {
        let err = |sources: Value| {
            entry(json!({"Kind": "service-intentions", "Name": "db", "Sources": sources}))
                .unwrap_err()
        };
        assert_eq!(err(json!([])), "At least one source is required");
        assert_eq!(
            err(json!([{"Name": "web", "Action": "maybe"}])),
            "Sources[0].Action must be set to 'allow' or 'deny'"
        );
        assert_eq!(
            err(json!([{"Name": "we*", "Action": "allow"}])),
            "Sources[0].Name: wildcard character '*' cannot be used with partial values"
        );
        assert_eq!(
            err(json!([{"Name": "web", "Action": "allow"}, {"Name": "web", "Action": "deny"}])),
            "Sources[1] defines \"default/web\" more than once"
        );
        assert_eq!(
            err(
                json!([{"Name": "web", "Action": "allow", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "/a"}}]}])
            ),
            "Sources[0].Action must be omitted if Permissions are specified"
        );
        assert_eq!(
            err(
                json!([{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathExact": "a"}}]}])
            ),
            "Sources[0].Permissions[0].HTTP.PathExact doesn't start with '/': \"a\""
        );
        assert_eq!(
            entry(json!({"Kind": "service-intentions", "Name": "*", "Sources": [
                {"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}]}))
            .unwrap_err(),
            "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations"
        );
    }

    #[test]
    fn go_time_renders_rfc3339() {
        assert_eq!(go_time(1_500), "1970-01-01T00:00:01.5Z");
    }
}
