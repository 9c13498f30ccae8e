//! ACL auth methods (Consul's `agent/consul/authmethod`): each type's configuration and its
//! checks, the identity a verified login yields, and how binding rules turn that identity
//! into grants. Nothing here does I/O: fetching remote keys or asking a Kubernetes API
//! server is the agent's part (`agent::acl_login`), which hands the results in.
//!
//! An identity has selectable fields (what a rule's `Selector` sees: `value.<name>` and
//! `list.<name>` for `jwt`/`oidc`, `serviceaccount.{namespace,name,uid}` for `kubernetes`)
//! and projected variables (what `${...}` in a `BindName` may use).

pub mod jwt;

use crate::acl::templated::{is_valid_identity_name, TemplateVariables, TemplatedPolicy};
use crate::acl::{is_valid_name, POLICY_NAME_MAX, ROLE_NAME_MAX};
use crate::filter::Filter;
use crate::gojson::go_kind;
use crate::types::acl::AclBindingRule;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Every type Consul CE registers, sorted as `authmethod.Types()` lists them.
pub const TYPES: [&str; 3] = ["jwt", "kubernetes", "oidc"];

/// Consul's refusal of an unknown or missing type.
pub fn unknown_type_message() -> String {
    format!(
        "Invalid Auth Method: Type should be one of: [{}]",
        TYPES.join(" ")
    )
}

/// A `kubernetes` method's configuration.
#[derive(Debug, Clone, Default)]
pub struct KubernetesConfig {
    pub host: String,
    pub ca_cert: String,
    pub service_account_jwt: String,
}

/// A `jwt` or `oidc` method's configuration (`ssoauth.Config`).
#[derive(Debug, Clone, Default)]
pub struct SsoConfig {
    pub claims: jwt::ClaimRules,
    /// Claim (name or JSON pointer) → identity field, for single values and for lists.
    pub claim_mappings: BTreeMap<String, String>,
    pub list_claim_mappings: BTreeMap<String, String>,
    pub oidc_discovery_url: String,
    /// The CA certificate (PEM) the discovery URL and the keys it names are fetched with.
    pub oidc_discovery_ca_cert: String,
    pub jwks_url: String,
    pub jwks_ca_cert: String,
    pub public_keys: Vec<jwt::PublicKey>,
    pub oidc_client_id: String,
}

/// A method's configuration, parsed and checked as far as no network is needed.
#[derive(Debug, Clone)]
pub enum MethodConfig {
    Kubernetes(KubernetesConfig),
    Jwt(SsoConfig),
    Oidc(SsoConfig),
}

fn decode_error(problem: String) -> String {
    format!("1 error(s) decoding:\n\n* {problem}")
}

/// Reads the config map into named fields, refusing keys the type doesn't have
/// (`authmethod.ParseConfig` decodes with `ErrorUnused`).
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, known: &[&str]) -> Result<Fields<'a>, String> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
            .collect();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            return Err(decode_error(format!(
                "'' has invalid keys: {}",
                unknown.join(", ")
            )));
        }
        Ok(Fields { map })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn text(&self, name: &str) -> Result<String, String> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(v) => string_at(name, v),
        }
    }

    fn texts(&self, name: &str) -> Result<Vec<String>, String> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| string_at(&format!("{name}[{i}]"), v))
                .collect(),
            Some(other) => Err(decode_error(format!(
                "'{name}': source data must be an array or slice, got {}",
                go_kind(other)
            ))),
        }
    }

    fn mapping(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| Ok((k.clone(), string_at(&format!("{name}[{k}]"), v)?)))
                .collect(),
            Some(other) => Err(decode_error(format!(
                "'{name}' expected a map, got '{}'",
                go_kind(other)
            ))),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(unconvertible(name, "bool", other)),
        }
    }

    /// A `time.Duration` field in whole seconds: a number of nanoseconds or Go's duration
    /// text (`5s`, `-1s`).
    fn seconds(&self, name: &str) -> Result<i64, String> {
        let bad = || {
            decode_error(format!(
                "error decoding '{name}': time: invalid duration {:?}",
                self.get(name).map(Value::to_string).unwrap_or_default()
            ))
        };
        match self.get(name) {
            None => Ok(0),
            Some(Value::Number(n)) => Ok(n.as_f64().ok_or_else(bad)? as i64 / 1_000_000_000),
            Some(Value::String(s)) => {
                let (negative, text) = match s.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, s.as_str()),
                };
                let d = crate::duration::parse(text).map_err(|_| bad())?;
                let secs = d.as_secs() as i64;
                Ok(if negative { -secs } else { secs })
            }
            Some(_) => Err(bad()),
        }
    }
}

/// mapstructure's refusal of a value of the wrong type for the field at `path`.
fn unconvertible(path: &str, target: &str, v: &Value) -> String {
    decode_error(crate::gojson::unconvertible(path, target, v))
}

/// A string field (or list item, or map value) at `path`.
fn string_at(path: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(unconvertible(path, "string", other)),
    }
}

const SSO_FIELDS: &[&str] = &[
    "JWTSupportedAlgs",
    "BoundAudiences",
    "ClaimMappings",
    "ListClaimMappings",
    "OIDCDiscoveryURL",
    "OIDCDiscoveryCACert",
    "OIDCClientID",
    "OIDCClientSecret",
    "OIDCScopes",
    "OIDCACRValues",
    "AllowedRedirectURIs",
    "VerboseOIDCLogging",
    "JWKSURL",
    "JWKSCACert",
    "JWTValidationPubKeys",
    "BoundIssuer",
    "ExpirationLeeway",
    "NotBeforeLeeway",
    "ClockSkewLeeway",
];

impl MethodConfig {
    /// Parses and checks a method's `Config` for its type, with Consul's messages (without
    /// the `Invalid Auth Method: ` prefix the caller adds). Remote URLs are checked by the
    /// agent afterwards.
    pub fn parse(method_type: &str, config: &Map<String, Value>) -> Result<MethodConfig, String> {
        match method_type {
            "kubernetes" => parse_kubernetes(config).map(MethodConfig::Kubernetes),
            "jwt" => parse_sso(config, "jwt").map(MethodConfig::Jwt),
            "oidc" => parse_sso(config, "oidc").map(MethodConfig::Oidc),
            _ => Err(unknown_type_message()),
        }
    }

    /// Field names a login's identity has, with empty values (`NewIdentity`): what binding
    /// rules are checked against when written.
    pub fn blank_identity(&self) -> Identity {
        match self {
            MethodConfig::Kubernetes(_) => Identity::kubernetes("", "", ""),
            MethodConfig::Jwt(c) | MethodConfig::Oidc(c) => Identity {
                values: c
                    .claim_mappings
                    .values()
                    .map(|k| (k.clone(), String::new()))
                    .collect(),
                lists: c
                    .list_claim_mappings
                    .values()
                    .map(|k| (k.clone(), Vec::new()))
                    .collect(),
                kubernetes: false,
            },
        }
    }
}

fn parse_kubernetes(config: &Map<String, Value>) -> Result<KubernetesConfig, String> {
    let f = Fields::new(config, &["Host", "CACert", "ServiceAccountJWT"])?;
    let parsed = KubernetesConfig {
        host: f.text("Host")?,
        ca_cert: f.text("CACert")?,
        service_account_jwt: f.text("ServiceAccountJWT")?,
    };
    if parsed.host.is_empty() {
        return Err("Config.Host is required".into());
    }
    if parsed.ca_cert.is_empty() {
        return Err("Config.CACert is required".into());
    }
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(parsed.ca_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>();
    match certs {
        Ok(certs) if !certs.is_empty() => {}
        _ => {
            return Err(
                "error parsing kubernetes ca cert: data does not contain any valid RSA or ECDSA certificates"
                    .into(),
            )
        }
    }
    if parsed.service_account_jwt.is_empty() {
        return Err("Config.ServiceAccountJWT is required".into());
    }
    if let Err(e) = jwt::parse(&parsed.service_account_jwt) {
        return Err(format!("Config.ServiceAccountJWT is not a valid JWT: {e}"));
    }
    Ok(parsed)
}

fn parse_sso(config: &Map<String, Value>, kind: &str) -> Result<SsoConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let f = Fields::new(config, SSO_FIELDS)?;
    let must_not = |field: &str| Err(format!("'{field}' must not be set for type {kind:?}"));
    let pub_keys = f.texts("JWTValidationPubKeys")?;
    let mut c = SsoConfig {
        claims: jwt::ClaimRules {
            supported_algs: f.texts("JWTSupportedAlgs")?,
            bound_issuer: f.text("BoundIssuer")?,
            bound_audiences: f.texts("BoundAudiences")?,
            expiration_leeway_s: f.seconds("ExpirationLeeway")?,
            not_before_leeway_s: f.seconds("NotBeforeLeeway")?,
            clock_skew_leeway_s: f.seconds("ClockSkewLeeway")?,
        },
        claim_mappings: f.mapping("ClaimMappings")?,
        list_claim_mappings: f.mapping("ListClaimMappings")?,
        oidc_discovery_url: f.text("OIDCDiscoveryURL")?,
        oidc_discovery_ca_cert: f.text("OIDCDiscoveryCACert")?,
        jwks_url: f.text("JWKSURL")?,
        jwks_ca_cert: f.text("JWKSCACert")?,
        public_keys: Vec::new(),
        oidc_client_id: f.text("OIDCClientID")?,
    };
    let client_secret = f.text("OIDCClientSecret")?;
    let redirect_uris = f.texts("AllowedRedirectURIs")?;
    if kind == "oidc" {
        for (field, missing) in [
            ("OIDCDiscoveryURL", c.oidc_discovery_url.is_empty()),
            ("OIDCClientID", c.oidc_client_id.is_empty()),
            ("OIDCClientSecret", client_secret.is_empty()),
            ("AllowedRedirectURIs", redirect_uris.is_empty()),
        ] {
            if missing {
                return Err(format!("'{field}' must be set for type {kind:?}"));
            }
        }
        for (field, set) in [
            ("JWKSURL", !c.jwks_url.is_empty()),
            ("JWKSCACert", !c.jwks_ca_cert.is_empty()),
            ("JWTValidationPubKeys", !pub_keys.is_empty()),
            ("BoundIssuer", !c.claims.bound_issuer.is_empty()),
            ("ExpirationLeeway", c.claims.expiration_leeway_s != 0),
            ("NotBeforeLeeway", c.claims.not_before_leeway_s != 0),
            ("ClockSkewLeeway", c.claims.clock_skew_leeway_s != 0),
        ] {
            if set {
                return must_not(field);
            }
        }
    } else {
        for (field, set) in [
            ("OIDCClientID", !c.oidc_client_id.is_empty()),
            ("OIDCClientSecret", !client_secret.is_empty()),
            ("OIDCScopes", !f.texts("OIDCScopes")?.is_empty()),
            ("OIDCACRValues", !f.texts("OIDCACRValues")?.is_empty()),
            ("AllowedRedirectURIs", !redirect_uris.is_empty()),
            ("VerboseOIDCLogging", f.flag("VerboseOIDCLogging")?),
        ] {
            if set {
                return must_not(field);
            }
        }
        let sources = [
            !c.oidc_discovery_url.is_empty(),
            !pub_keys.is_empty(),
            !c.jwks_url.is_empty(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(format!("exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set for type {kind:?}"));
        }
        if c.jwks_url.is_empty() && !c.jwks_ca_cert.is_empty() {
            return Err("'JWKSCACert' should not be set unless 'JWKSURL' is set".into());
        }
        for (i, pem) in pub_keys.iter().enumerate() {
            let key = jwt::parse_public_key_pem(pem)
                .map_err(|e| format!("error parsing public key JWTValidationPubKeys[{i}]: {e}"))?;
            c.public_keys.push(key);
        }
    }
    if c.oidc_discovery_url.is_empty() && !c.oidc_discovery_ca_cert.is_empty() {
        return Err(
            "'OIDCDiscoveryCACert' should not be set unless 'OIDCDiscoveryURL' is set".into(),
        );
    }
    for ca in [&c.jwks_ca_cert, &c.oidc_discovery_ca_cert] {
        if !ca.is_empty()
            && rustls_pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).is_err()
        {
            return Err("could not parse any PEM certificates".into());
        }
    }
    if let Some(bad) = c
        .claims
        .supported_algs
        .iter()
        .find(|a| !jwt::is_supported_alg(a))
    {
        return Err(format!("Invalid supported algorithm: {bad}"));
    }
    for (label, mappings) in [
        ("ClaimMappings", &c.claim_mappings),
        ("ListClaimMappings", &c.list_claim_mappings),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for target in mappings.values() {
            if !seen.insert(target) {
                return Err(format!(
                    "{label} contains multiple mappings for key {target:?}"
                ));
            }
        }
    }
    Ok(c)
}

// ---- identities -----------------------------------------------------------------------------

/// What a verified login says about its bearer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// `value.<name>` (jwt/oidc) or the service account's fields (kubernetes).
    pub values: BTreeMap<String, String>,
    pub lists: BTreeMap<String, Vec<String>>,
    /// Whether the fields are a Kubernetes service account's.
    kubernetes: bool,
}

const SA_FIELDS: [&str; 3] = ["namespace", "name", "uid"];

impl Identity {
    /// A Kubernetes service account's identity.
    pub fn kubernetes(namespace: &str, name: &str, uid: &str) -> Identity {
        Identity {
            values: SA_FIELDS
                .into_iter()
                .zip([namespace, name, uid])
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            lists: BTreeMap::new(),
            kubernetes: true,
        }
    }

    /// The identity of a verified JWT's claims, through the configured mappings
    /// (`extractClaims`): a mapped claim that is absent is left out.
    pub fn from_claims(
        config: &SsoConfig,
        claims: &Map<String, Value>,
    ) -> Result<Identity, String> {
        let mut identity = Identity::default();
        for (claim, target) in &config.claim_mappings {
            match claim_at(claims, claim) {
                None => {}
                Some(Value::String(s)) => {
                    identity.values.insert(target.clone(), s.clone());
                }
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    identity.values.insert(target.clone(), v.to_string());
                }
                Some(_) => return Err(format!("error converting claim '{claim}' to string")),
            }
        }
        for (claim, target) in &config.list_claim_mappings {
            let items = match claim_at(claims, claim) {
                None => continue,
                Some(Value::Array(items)) => items.clone(),
                Some(one) => vec![one.clone()],
            };
            let mut list = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => list.push(s),
                    v @ (Value::Number(_) | Value::Bool(_)) => list.push(v.to_string()),
                    _ => return Err(format!("error converting claim '{claim}' to list")),
                }
            }
            identity.lists.insert(target.clone(), list);
        }
        Ok(identity)
    }

    /// What a rule's `Selector` is evaluated against.
    fn selectable(&self) -> Value {
        if self.kubernetes {
            json!({ "serviceaccount": self.values })
        } else {
            json!({ "value": self.values, "list": self.lists })
        }
    }

    /// The variables a `BindName` may interpolate, by their `${...}` name.
    fn projected(&self) -> BTreeMap<String, String> {
        let prefix = if self.kubernetes {
            "serviceaccount."
        } else {
            "value."
        };
        self.values
            .iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
            .collect()
    }
}

/// A claim by name, or by JSON pointer when it starts with `/`.
fn claim_at<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        let mut at: &Value = claims.get(name.split('/').nth(1)?)?;
        for part in name.split('/').skip(2) {
            let part = part.replace("~1", "/").replace("~0", "~");
            at = match at {
                Value::Object(m) => m.get(&part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    } else {
        claims.get(name)
    }
}

// ---- binding rules --------------------------------------------------------------------------

/// The kinds of grant a binding rule can give.
pub const BIND_TYPES: [&str; 5] = ["service", "node", "role", "policy", "templated-policy"];

/// What logins through an auth method are granted: names as computed from the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bindings {
    pub service_identities: Vec<String>,
    pub node_identities: Vec<String>,
    pub roles: Vec<String>,
    pub policies: Vec<String>,
    /// Template name and its `Name` variable.
    pub templated_policies: Vec<(String, Option<String>)>,
}

impl Bindings {
    pub fn is_empty(&self) -> bool {
        self.service_identities.is_empty()
            && self.node_identities.is_empty()
            && self.roles.is_empty()
            && self.policies.is_empty()
            && self.templated_policies.is_empty()
    }
}

/// Replaces `${name}` with its variable, lowercased (Consul's `InterpolateHIL` with
/// `lowercase`); an unknown name is an error.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("failed to parse {text:?}: expected '}}'"))?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable accessed: {name}"))?;
        out.push_str(&value.to_lowercase());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Why a rule's bind name could not be computed (Consul's binder texts, as a login reports
/// them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("error interpreting template: {0}")]
    Template(String),
    #[error("invalid bind name: {0:?}")]
    InvalidName(String),
    #[error("Bind name for templated-policy bind type does not match existing template name: {0}")]
    UnknownTemplate(String),
    #[error("failed to interpret templated policy variables: {0}")]
    TemplateVariables(String),
    #[error("templated policy failed validation: {0}")]
    TemplateInvalid(String),
    #[error("unknown BindType {0:?}")]
    UnknownType(String),
}

/// The grant a rule gives `vars`: the index of its bind type, the name and, for a templated
/// policy, its `Name` variable.
fn bind(
    rule: &AclBindingRule,
    vars: &BTreeMap<String, String>,
) -> Result<(usize, String, Option<String>), BindError> {
    let kind = BIND_TYPES
        .iter()
        .position(|t| *t == rule.bind_type)
        .ok_or_else(|| BindError::UnknownType(rule.bind_type.clone()))?;
    if rule.bind_type == "templated-policy" {
        let template = TemplatedPolicy::by_name(&rule.bind_name)
            .map_err(|_| BindError::UnknownTemplate(rule.bind_name.clone()))?;
        let variables = rule
            .bind_vars_name
            .as_ref()
            .map(|n| interpolate(n, vars).map(|name| TemplateVariables { name }))
            .transpose()
            .map_err(BindError::TemplateVariables)?;
        template
            .validate(variables.as_ref())
            .map_err(|e| BindError::TemplateInvalid(e.to_string()))?;
        return Ok((kind, rule.bind_name.clone(), variables.map(|v| v.name)));
    }
    let name = interpolate(&rule.bind_name, vars).map_err(BindError::Template)?;
    let valid = match rule.bind_type.as_str() {
        "service" | "node" => is_valid_identity_name(&name),
        "role" => is_valid_name(&name, ROLE_NAME_MAX),
        _ => is_valid_name(&name, POLICY_NAME_MAX),
    };
    if !valid {
        return Err(BindError::InvalidName(name));
    }
    Ok((kind, name, None))
}

/// Consul's `BindingRuleSet` checks of a rule against its method's identity fields, with
/// Consul's messages.
pub fn validate_rule(rule: &AclBindingRule, config: &MethodConfig) -> Result<(), String> {
    let blank = config.blank_identity();
    if !rule.selector.is_empty() {
        if let Err(e) = Filter::parse(&rule.selector) {
            return Err(format!("invalid Binding Rule: Selector is invalid: {e}"));
        }
    }
    if rule.bind_type.is_empty() {
        return Err("Invalid Binding Rule: no BindType is set".into());
    }
    if rule.bind_name.is_empty() {
        return Err("Invalid Binding Rule: no BindName is set".into());
    }
    if !BIND_TYPES.contains(&rule.bind_type.as_str()) {
        return Err(format!(
            "Invalid Binding Rule: unknown BindType {:?}",
            rule.bind_type
        ));
    }
    let fake: BTreeMap<String, String> = blank
        .projected()
        .into_keys()
        .map(|k| (k, "fake".to_string()))
        .collect();
    match bind(rule, &fake) {
        Ok(_) => Ok(()),
        Err(BindError::InvalidName(_)) => Err("Invalid Binding Rule: invalid BindName".into()),
        Err(BindError::Template(e)) => Err(format!("Invalid Binding Rule: invalid BindName: {e}")),
        Err(e) => Err(format!("Invalid Binding Rule: invalid BindName: {e}")),
    }
}

/// The grants of the rules whose selector matches `identity` (Consul's binder): a selector
/// that doesn't parse or evaluate matches nothing; a bind name that can't be computed fails
/// the login.
pub fn evaluate(rules: &[AclBindingRule], identity: &Identity) -> Result<Bindings, BindError> {
    let doc = identity.selectable();
    let vars = identity.projected();
    let mut out = Bindings::default();
    for rule in rules {
        let selected = rule.selector.is_empty()
            || Filter::parse(&rule.selector)
                .and_then(|f| f.matches(&doc))
                .unwrap_or(false);
        if !selected {
            continue;
        }
        let (kind, name, var) = bind(rule, &vars)?;
        let list = match kind {
            0 => &mut out.service_identities,
            1 => &mut out.node_identities,
            2 => &mut out.roles,
            3 => &mut out.policies,
            _ => {
                out.templated_policies.push((name, var));
                continue;
            }
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(selector: &str, bind_type: &str, bind_name: &str) -> AclBindingRule {
        AclBindingRule {
            selector: selector.into(),
            bind_type: bind_type.into(),
            bind_name: bind_name.into(),
            ..AclBindingRule::default()
        }
    }

    fn sso(mappings: &[(&str, &str)], lists: &[(&str, &str)]) -> SsoConfig {
        let map = |m: &[(&str, &str)]| {
            m.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        SsoConfig {
            claim_mappings: map(mappings),
            list_claim_mappings: map(lists),
            ..SsoConfig::default()
        }
    }

    #[test]
    fn claims_map_to_values_and_lists() {
        let config = sso(
            &[("/nested/ns", "ns"), ("sub", "who")],
            &[("groups", "groups")],
        );
        let claims = json!({"sub": "Web", "nested": {"ns": 7}, "groups": ["a", "b"]});
        let id = Identity::from_claims(&config, claims.as_object().unwrap()).unwrap();
        assert_eq!(id.values["ns"], "7");
        assert_eq!(id.values["who"], "Web");
        assert_eq!(id.lists["groups"], ["a", "b"]);
    }

    #[test]
    fn rules_select_and_interpolate() {
        let config = sso(&[("sub", "who")], &[("groups", "groups")]);
        let claims = json!({"sub": "Web", "groups": ["admins"]});
        let id = Identity::from_claims(&config, claims.as_object().unwrap()).unwrap();
        let rules = [
            rule("\"admins\" in list.groups", "service", "svc-${value.who}"),
            rule("value.who == nobody", "node", "n1"),
            rule("", "policy", "base"),
        ];
        let got = evaluate(&rules, &id).unwrap();
        assert_eq!(got.service_identities, ["svc-web"]);
        assert!(got.node_identities.is_empty());
        assert_eq!(got.policies, ["base"]);
    }

    #[test]
    fn a_bad_selector_matches_nothing_and_a_bad_name_fails_the_login() {
        let config = sso(&[("sub", "who")], &[]);
        let claims = json!({"sub": "has space"});
        let id = Identity::from_claims(&config, claims.as_object().unwrap()).unwrap();
        let unparsable = [rule("value.who ==", "service", "x")];
        assert!(evaluate(&unparsable, &id).unwrap().is_empty());
        let bad_name = [rule("", "service", "${value.who}")];
        assert_eq!(
            evaluate(&bad_name, &id).unwrap_err().to_string(),
            "invalid bind name: \"has space\""
        );
    }

    #[test]
    fn rules_are_checked_against_the_methods_fields() {
        let config = MethodConfig::Jwt(sso(&[("sub", "who")], &[]));
        validate_rule(&rule("", "service", "${value.who}"), &config).unwrap();
        assert_eq!(
            validate_rule(&rule("", "service", "${value.nope}"), &config).unwrap_err(),
            "Invalid Binding Rule: invalid BindName: unknown variable accessed: value.nope"
        );
        assert_eq!(
            validate_rule(&rule("", "service", "Not Valid"), &config).unwrap_err(),
            "Invalid Binding Rule: invalid BindName"
        );
        assert_eq!(
            validate_rule(&rule("", "thing", "x"), &config).unwrap_err(),
            "Invalid Binding Rule: unknown BindType \"thing\""
        );
    }

    /// The discovery CA is kept: the agent fetches the discovery document and its keys with it.
    #[test]
    fn a_discovery_ca_is_kept_for_fetching() {
        use base64::Engine;
        let cert = rcgen::CertificateParams::new(vec!["idp".into()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let der = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let ca = format!("-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n");
        let config = json!({"OIDCDiscoveryURL": "https://idp", "OIDCDiscoveryCACert": ca});
        let Ok(MethodConfig::Jwt(parsed)) = MethodConfig::parse("jwt", config.as_object().unwrap())
        else {
            panic!("a jwt config with a discovery URL and its CA parses");
        };
        assert_eq!(parsed.oidc_discovery_ca_cert, ca);
    }

    #[test]
    fn configs_follow_consuls_checks() {
        let parse = |t: &str, v: Value| MethodConfig::parse(t, v.as_object().unwrap());
        assert_eq!(
            parse("jwt", json!({})).unwrap_err(),
            "exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set for type \"jwt\""
        );
        assert_eq!(
            parse("jwt", json!({"JWKSURL": "http://x", "Bogus": 1})).unwrap_err(),
            "1 error(s) decoding:\n\n* '' has invalid keys: Bogus"
        );
        assert_eq!(
            parse("oidc", json!({"OIDCDiscoveryURL": "http://x"})).unwrap_err(),
            "'OIDCClientID' must be set for type \"oidc\""
        );
        assert_eq!(
            parse("kubernetes", json!({})).unwrap_err(),
            "Config.Host is required"
        );
        assert_eq!(
            parse(
                "jwt",
                json!({"JWKSURL": "http://x", "JWTSupportedAlgs": ["HS256"]})
            )
            .unwrap_err(),
            "Invalid supported algorithm: HS256"
        );
        // mapstructure's texts for values of the wrong type, the value included.
        assert_eq!(
            parse("jwt", json!({"JWKSURL": ["http://x"]})).unwrap_err(),
            "1 error(s) decoding:\n\n* 'JWKSURL' expected type 'string', got unconvertible type '[]interface {}', value: '[http://x]'"
        );
        assert_eq!(
            parse("jwt", json!({"JWKSURL": "http://x", "BoundAudiences": ["a", 1]})).unwrap_err(),
            "1 error(s) decoding:\n\n* 'BoundAudiences[1]' expected type 'string', got unconvertible type 'float64', value: '1'"
        );
        assert_eq!(
            parse("jwt", json!({"JWKSURL": "http://x", "ClaimMappings": {"a": true}})).unwrap_err(),
            "1 error(s) decoding:\n\n* 'ClaimMappings[a]' expected type 'string', got unconvertible type 'bool', value: 'true'"
        );
    }
}
