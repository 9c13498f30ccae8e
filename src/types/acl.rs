//! ACL tokens, policies and roles (Consul's `structs.ACLToken`, `ACLPolicy`, `ACLRole`), as
//! stored and rendered, with the builtin records every ACL-enabled datacenter has.
//!
//! Links to policies and roles are stored by ID only (a policy can be renamed without touching
//! the tokens that use it); the store fills in the current names when it reads them back.

use super::intention::go_time;
use bincode::{Decode, Encode};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The builtin `global-management` policy (`structs.ACLPolicyGlobalManagementID`).
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_NAME: &str = "global-management";
/// The anonymous token's accessor (`structs.ACLTokenAnonymousID`); its secret is `anonymous`.
pub const ANONYMOUS_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const ANONYMOUS_SECRET: &str = "anonymous";
/// IDs a user may not choose (`structs.ACLReservedPrefix`): the builtin records live there.
pub const RESERVED_PREFIX: &str = "00000000-0000-0000-0000-0000000000";

/// What the builtin management policy allows: everything.
const GLOBAL_MANAGEMENT_RULES: &str = r#"
acl = "write"
agent_prefix "" {
	policy = "write"
}
event_prefix "" {
	policy = "write"
}
key_prefix "" {
	policy = "write"
}
keyring = "write"
node_prefix "" {
	policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
	policy = "write"
}
service_prefix "" {
	policy = "write"
	intentions = "write"
}
session_prefix "" {
	policy = "write"
}"#;

/// A token's or role's link to a policy or role. Written with an ID or a name; stored with
/// the ID only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Link {
    pub id: String,
    pub name: String,
}

/// `ACLServiceIdentity`: the rules of a service's own token, generated from its name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct ServiceIdentity {
    pub service_name: String,
    pub datacenters: Vec<String>,
}

/// `ACLNodeIdentity`: the rules of a node's agent token, valid in one datacenter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct NodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// `ACLTemplatedPolicy`: a builtin template and its `name` variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct TemplatedPolicyLink {
    pub template_name: String,
    /// `TemplateVariables.Name`; `None` when the request had no variables.
    pub name: Option<String>,
    pub datacenters: Vec<String>,
}

/// What grants a token or role its rules, besides the policies linked directly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Grants {
    pub policies: Vec<Link>,
    pub service_identities: Vec<ServiceIdentity>,
    pub node_identities: Vec<NodeIdentity>,
    pub templated_policies: Vec<TemplatedPolicyLink>,
}

/// What a token written through the legacy API (`/v1/acl/create`, pre-1.4) carries: its type
/// and, for a client token, its own rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Legacy {
    /// `client` or `management`.
    pub kind: String,
    pub rules: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct AclToken {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub grants: Grants,
    pub roles: Vec<Link>,
    pub local: bool,
    /// Unix milliseconds; the token stops working at this time and is reaped after it.
    pub expiration_ms: Option<u64>,
    pub create_ms: u64,
    /// Set for tokens of the legacy API; an update through the new API drops it.
    pub legacy: Option<Legacy>,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
    /// The auth method whose login created the token; empty for every other token.
    pub auth_method: String,
}

/// `AclToken` as version 1 stored it, before tokens could come from a login.
#[derive(Decode)]
struct AclTokenV1 {
    accessor_id: String,
    secret_id: String,
    description: String,
    grants: Grants,
    roles: Vec<Link>,
    local: bool,
    expiration_ms: Option<u64>,
    create_ms: u64,
    legacy: Option<Legacy>,
    hash: Vec<u8>,
    create_index: u64,
    modify_index: u64,
}

impl From<AclTokenV1> for AclToken {
    fn from(v1: AclTokenV1) -> AclToken {
        AclToken {
            accessor_id: v1.accessor_id,
            secret_id: v1.secret_id,
            description: v1.description,
            grants: v1.grants,
            roles: v1.roles,
            local: v1.local,
            expiration_ms: v1.expiration_ms,
            create_ms: v1.create_ms,
            legacy: v1.legacy,
            hash: v1.hash,
            create_index: v1.create_index,
            modify_index: v1.modify_index,
            auth_method: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct AclPolicy {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct AclRole {
    pub id: String,
    pub name: String,
    pub description: String,
    pub grants: Grants,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for AclToken {
    const VERSION: u8 = 2;

    fn decode_version(version: u8, payload: &[u8]) -> Result<Self, String> {
        match version {
            1 => crate::store::codec::decode_payload::<AclTokenV1>(payload).map(AclToken::from),
            other => Err(format!("unknown AclToken record version {other}")),
        }
    }
}
impl crate::store::codec::Record for AclPolicy {
    const VERSION: u8 = 1;
}
impl crate::store::codec::Record for AclRole {
    const VERSION: u8 = 1;
}

/// The builtin `global-management` policy.
pub fn global_management_policy() -> AclPolicy {
    let mut policy = AclPolicy {
        id: GLOBAL_MANAGEMENT_ID.into(),
        name: GLOBAL_MANAGEMENT_NAME.into(),
        description: "Builtin Policy that grants unlimited access".into(),
        rules: GLOBAL_MANAGEMENT_RULES.into(),
        ..Default::default()
    };
    policy.hash = policy.content_hash();
    policy
}

/// The anonymous token: what a request without a token acts as.
pub fn anonymous_token(create_ms: u64) -> AclToken {
    let mut token = AclToken {
        accessor_id: ANONYMOUS_ID.into(),
        secret_id: ANONYMOUS_SECRET.into(),
        description: "Anonymous Token".into(),
        create_ms,
        ..Default::default()
    };
    token.hash = token.content_hash();
    token
}

/// A token with the `global-management` policy (bootstrap and the initial management token).
pub fn management_token(
    accessor_id: String,
    secret_id: String,
    description: &str,
    create_ms: u64,
) -> AclToken {
    let mut token = AclToken {
        accessor_id,
        secret_id,
        description: description.into(),
        grants: Grants {
            policies: vec![Link {
                id: GLOBAL_MANAGEMENT_ID.into(),
                name: String::new(),
            }],
            ..Default::default()
        },
        create_ms,
        ..Default::default()
    };
    token.hash = token.content_hash();
    token
}

/// Whether `id` is a UUID in Consul's textual form (`uuid.ParseUUID`: 36 characters, hex and
/// dashes in the 8-4-4-4-12 layout, any case).
pub fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether a user-chosen ID falls in the builtin records' range.
pub fn is_reserved(id: &str) -> bool {
    id.starts_with(RESERVED_PREFIX)
}

/// A new random UUID (accessor and secret IDs, policy and role IDs).
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SHA-256 of the bincode encoding of what a record grants or says; its `Hash` field, which
/// clients compare to see whether a record changed (Consul hashes the same fields, with
/// blake2b; the value is opaque).
fn hash_of(parts: impl Encode) -> Vec<u8> {
    let bytes = bincode::encode_to_vec(parts, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .to_vec()
}

impl AclToken {
    /// The hash of the token's content (not its indexes or times, as Consul's `SetHash`).
    pub fn content_hash(&self) -> Vec<u8> {
        hash_of((
            &self.description,
            &self.grants,
            &self.roles,
            self.local,
            &self.secret_id,
            &self.legacy,
        ))
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expiration_ms.is_some_and(|at| at <= now_ms)
    }

    /// The token as `/v1/acl/token/<id>` renders it; `secret` replaces the secret (Consul's
    /// `<hidden>` for callers without `acl:write`).
    pub fn to_json(&self, secret: &str) -> Value {
        let mut out = Map::new();
        out.insert("AccessorID".into(), json!(self.accessor_id));
        out.insert("SecretID".into(), json!(secret));
        out.insert("Description".into(), json!(self.description));
        self.grants.render_into(&mut out, Some(&self.roles));
        if let Some(legacy) = &self.legacy {
            out.insert("Type".into(), json!(legacy.kind));
            out.insert("Rules".into(), json!(legacy.rules));
        }
        out.insert("Local".into(), json!(self.local));
        if !self.auth_method.is_empty() {
            out.insert("AuthMethod".into(), json!(self.auth_method));
        }
        if let Some(at) = self.expiration_ms {
            out.insert("ExpirationTime".into(), json!(go_time(at)));
        }
        out.insert("CreateTime".into(), json!(go_time(self.create_ms)));
        out.insert("Hash".into(), json!(b64(&self.hash)));
        out.insert("CreateIndex".into(), json!(self.create_index));
        out.insert("ModifyIndex".into(), json!(self.modify_index));
        Value::Object(out)
    }

    /// The legacy API's view (`/v1/acl/info`, `/v1/acl/list`): the secret is the ID, the
    /// description the name; a token of the new API shows as `client` with no rules, unless
    /// it has the management policy.
    pub fn legacy_json(&self) -> Value {
        let (kind, rules) = match &self.legacy {
            Some(l) => (l.kind.as_str(), l.rules.as_str()),
            None if self
                .grants
                .policies
                .iter()
                .any(|p| p.id == GLOBAL_MANAGEMENT_ID) =>
            {
                ("management", "")
            }
            None => ("client", ""),
        };
        json!({
            "ID": self.secret_id,
            "Name": self.description,
            "Type": kind,
            "Rules": rules,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        })
    }

    /// `ACLTokenListStub`, as `/v1/acl/tokens` lists it.
    pub fn stub_json(&self, secret: &str) -> Value {
        let mut out = self.to_json(secret);
        if let Some(map) = out.as_object_mut() {
            map.insert("Legacy".into(), json!(self.legacy.is_some()));
        }
        out
    }
}

impl AclPolicy {
    pub fn content_hash(&self) -> Vec<u8> {
        hash_of((
            &self.name,
            &self.description,
            &self.rules,
            &self.datacenters,
        ))
    }

    pub fn to_json(&self) -> Value {
        let mut out = self.stub_json();
        if let Some(map) = out.as_object_mut() {
            map.insert("Rules".into(), json!(self.rules));
        }
        out
    }

    /// `ACLPolicyListStub`: the policy without its rules.
    pub fn stub_json(&self) -> Value {
        json!({
            "ID": self.id,
            "Name": self.name,
            "Description": self.description,
            "Datacenters": (!self.datacenters.is_empty()).then_some(&self.datacenters),
            "Hash": b64(&self.hash),
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        })
    }
}

impl AclRole {
    pub fn content_hash(&self) -> Vec<u8> {
        hash_of((&self.name, &self.description, &self.grants))
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("ID".into(), json!(self.id));
        out.insert("Name".into(), json!(self.name));
        out.insert("Description".into(), json!(self.description));
        self.grants.render_into(&mut out, None);
        out.insert("Hash".into(), json!(b64(&self.hash)));
        out.insert("CreateIndex".into(), json!(self.create_index));
        out.insert("ModifyIndex".into(), json!(self.modify_index));
        Value::Object(out)
    }
}

impl Grants {
    /// Adds the non-empty grant lists in Consul's field order (all are `omitempty`); a token's
    /// roles go right after its policies.
    fn render_into(&self, out: &mut Map<String, Value>, roles: Option<&[Link]>) {
        let links = |links: &[Link]| -> Value {
            links
                .iter()
                .map(|l| json!({"ID": l.id, "Name": l.name}))
                .collect()
        };
        if !self.policies.is_empty() {
            out.insert("Policies".into(), links(&self.policies));
        }
        if let Some(roles) = roles.filter(|r| !r.is_empty()) {
            out.insert("Roles".into(), links(roles));
        }
        if !self.service_identities.is_empty() {
            let ids: Vec<Value> = self
                .service_identities
                .iter()
                .map(|s| {
                    let mut v = json!({"ServiceName": s.service_name});
                    if !s.datacenters.is_empty() {
                        v["Datacenters"] = json!(s.datacenters);
                    }
                    v
                })
                .collect();
            out.insert("ServiceIdentities".into(), Value::Array(ids));
        }
        if !self.node_identities.is_empty() {
            let ids: Vec<Value> = self
                .node_identities
                .iter()
                .map(|n| json!({"NodeName": n.node_name, "Datacenter": n.datacenter}))
                .collect();
            out.insert("NodeIdentities".into(), Value::Array(ids));
        }
        if !self.templated_policies.is_empty() {
            let ids: Vec<Value> = self
                .templated_policies
                .iter()
                .map(|t| {
                    let mut v = json!({"TemplateName": t.template_name});
                    if let Some(name) = &t.name {
                        v["TemplateVariables"] = json!({"Name": name});
                    }
                    if !t.datacenters.is_empty() {
                        v["Datacenters"] = json!(t.datacenters);
                    }
                    v
                })
                .collect();
            out.insert("TemplatedPolicies".into(), Value::Array(ids));
        }
    }
}

/// `ACLAuthMethod`: how a login's bearer token is verified and turned into an identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct AclAuthMethod {
    pub name: String,
    /// `kubernetes`, `jwt` or `oidc`.
    pub method_type: String,
    pub display_name: String,
    pub description: String,
    /// The lifetime of the tokens its logins create, in nanoseconds; 0 means no expiry.
    pub max_token_ttl_ns: u64,
    /// `local`, `global` or empty (local).
    pub token_locality: String,
    /// The type's configuration as JSON text, kept as given (Consul stores a free-form map).
    pub config: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for AclAuthMethod {
    const VERSION: u8 = 1;
}

impl AclAuthMethod {
    /// The configuration as a JSON object (an empty one if the stored text is not one).
    pub fn config_json(&self) -> Map<String, Value> {
        serde_json::from_str(&self.config).unwrap_or_default()
    }

    /// `ACLAuthMethodListStub`: the method without its configuration.
    pub fn stub_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("Name".into(), json!(self.name));
        out.insert("Type".into(), json!(self.method_type));
        if !self.display_name.is_empty() {
            out.insert("DisplayName".into(), json!(self.display_name));
        }
        if !self.description.is_empty() {
            out.insert("Description".into(), json!(self.description));
        }
        if self.max_token_ttl_ns > 0 {
            let ttl = crate::duration::format(Duration::from_nanos(self.max_token_ttl_ns));
            out.insert("MaxTokenTTL".into(), json!(ttl));
        }
        if !self.token_locality.is_empty() {
            out.insert("TokenLocality".into(), json!(self.token_locality));
        }
        out.insert("CreateIndex".into(), json!(self.create_index));
        out.insert("ModifyIndex".into(), json!(self.modify_index));
        Value::Object(out)
    }

    /// The method as `/v1/acl/auth-method/<name>` renders it: the stub with its `Config`
    /// before the indexes, in Consul's field order.
    pub fn to_json(&self) -> Value {
        let Value::Object(stub) = self.stub_json() else {
            unreachable!("stub_json renders an object")
        };
        let mut out = Map::new();
        for (key, value) in stub {
            if key == "CreateIndex" {
                out.insert("Config".into(), Value::Object(self.config_json()));
            }
            out.insert(key, value);
        }
        Value::Object(out)
    }
}

/// `ACLBindingRule`: which logins of an auth method get which grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct AclBindingRule {
    pub id: String,
    pub description: String,
    pub auth_method: String,
    /// A bexpr expression over the login's identity (`value.<claim>`, `list.<claim>`); empty
    /// matches every login.
    pub selector: String,
    /// `service`, `node`, `role`, `policy` or `templated-policy`.
    pub bind_type: String,
    /// What is granted, with `${value.<claim>}` placeholders.
    pub bind_name: String,
    /// `BindVars.Name` of a `templated-policy` rule, with placeholders too.
    pub bind_vars_name: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for AclBindingRule {
    const VERSION: u8 = 1;
}

impl AclBindingRule {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("ID".into(), json!(self.id));
        out.insert("Description".into(), json!(self.description));
        out.insert("AuthMethod".into(), json!(self.auth_method));
        out.insert("Selector".into(), json!(self.selector));
        out.insert("BindType".into(), json!(self.bind_type));
        out.insert("BindName".into(), json!(self.bind_name));
        if let Some(name) = &self.bind_vars_name {
            out.insert("BindVars".into(), json!({ "Name": name }));
        }
        out.insert("CreateIndex".into(), json!(self.create_index));
        out.insert("ModifyIndex".into(), json!(self.modify_index));
        Value::Object(out)
    }
}

fn b64(bytes: &[u8]) -> Value {
    use base64::Engine;
    if bytes.is_empty() {
        Value::Null
    } else {
        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// Parses an RFC 3339 time (`2030-01-02T15:04:05.999Z`, or with a `+hh:mm` offset) into Unix
/// milliseconds, as `ExpirationTime` arrives.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ms = parse_rfc3339("2030-01-02T15:04:05.123Z").unwrap();
        assert_eq!(go_time(ms), "2030-01-02T15:04:05.123Z");
        assert_eq!(parse_rfc3339("2030-01-02T17:04:05.123+02:00"), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    /// A token stored before auth methods existed (record version 1) reads back with no
    /// auth method.
    #[test]
    fn version_1_tokens_decode() {
        let grants = Grants::default();
        let v1 = (
            ("a", "s", "d", &grants, Vec::<Link>::new(), true),
            (Some(5u64), 1u64, None::<Legacy>, vec![1u8], 2u64, 3u64),
        );
        let mut bytes = vec![1u8];
        bytes.extend(bincode::encode_to_vec(v1, bincode::config::standard()).unwrap());
        let token: AclToken = crate::store::codec::decode("acl_tokens", "a", &bytes).unwrap();
        assert_eq!(
            (
                token.secret_id.as_str(),
                token.expiration_ms,
                token.modify_index
            ),
            ("s", Some(5), 3)
        );
        assert!(token.local && token.auth_method.is_empty());
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("00000000-0000-0000-0000-000000000002"));
        assert!(!is_uuid("not-a-uuid"));
        assert!(is_reserved(ANONYMOUS_ID));
    }
}
