//! The ACL rules language: a policy's rules text (HCL or JSON) decoded and validated into a
//! [`Policy`], with Consul's error texts.
//!
//! Rules name a resource kind and, for most kinds, a segment (a key, service, node, ... name)
//! matched exactly (`key "a/b"`) or as a prefix (`key_prefix "a/"`), each with an access level:
//!
//! ```hcl
//! key_prefix "app/" { policy = "list" }
//! service "web" { policy = "write" intentions = "read" }
//! operator = "read"
//! ```

use super::syntax::{self, Node, Value};
use std::fmt;

/// An access level a rule grants. The declaration order is the merge precedence of Consul's
/// `takesPrecedenceOver` (when policies disagree, deny beats write beats list beats read), so
/// `max` merges two levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    Read,
    List,
    Write,
    Deny,
}

impl AccessLevel {
    /// Consul accepts levels in any case (`AccessLevelFromString` lowercases).
    pub fn parse(level: &str) -> Option<AccessLevel> {
        match level.to_ascii_lowercase().as_str() {
            "read" => Some(AccessLevel::Read),
            "list" => Some(AccessLevel::List),
            "write" => Some(AccessLevel::Write),
            "deny" => Some(AccessLevel::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Read => "read",
            AccessLevel::List => "list",
            AccessLevel::Write => "write",
            AccessLevel::Deny => "deny",
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource kinds of Consul's ACL system (`acl.Resource`). Intentions have no rules of
/// their own: they derive from service rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Acl,
    Agent,
    Event,
    Intention,
    Key,
    Keyring,
    Mesh,
    Node,
    Operator,
    Peering,
    Query,
    Service,
    Session,
}

impl Resource {
    pub const COUNT: usize = 13;

    pub const ALL: [Resource; Resource::COUNT] = [
        Resource::Acl,
        Resource::Agent,
        Resource::Event,
        Resource::Intention,
        Resource::Key,
        Resource::Keyring,
        Resource::Mesh,
        Resource::Node,
        Resource::Operator,
        Resource::Peering,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ];

    /// The resource named `name` in rules (`service`), if any.
    pub fn named(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The name used in rules and in permission-denied errors (`service:write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Intention => "intention",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One segment rule: `<resource>[_prefix] "<segment>" { policy = ..., intentions = ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub resource: Resource,
    pub segment: String,
    /// `key_prefix "a/"` rather than `key "a/"`.
    pub prefix: bool,
    pub access: AccessLevel,
    /// Only service rules carry it; `None` lets the authorizer derive it from `access`.
    pub intentions: Option<AccessLevel>,
}

/// A rule without `intentions`, as the tests of this module and the templated policies write
/// their expectations.
#[cfg(test)]
pub(crate) fn test_rule(
    resource: Resource,
    segment: &str,
    prefix: bool,
    access: AccessLevel,
) -> Rule {
    Rule {
        resource,
        segment: segment.into(),
        prefix,
        access,
        intentions: None,
    }
}

/// A parsed, valid policy. Rules keep the order Consul validates them in (by block kind,
/// then document order), so HCL and JSON forms of the same policy compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    /// `acl`, `keyring`, `operator`, `mesh` and `peering`: one level each, no segment.
    pub globals: Vec<(Resource, AccessLevel)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The text is neither HCL nor JSON, or a rule has the wrong shape.
    #[error("Failed to parse ACL rules: {0}")]
    Syntax(String),
    /// A level that is not read/write/deny (or list, for key rules). The detail renders the
    /// rule as Consul's `%#v` does, e.g. `&acl.KeyRule{Prefix:"a", Policy:"nope", ...}`.
    #[error("Invalid {block} policy: {detail}")]
    InvalidPolicy { block: &'static str, detail: String },
    #[error("Invalid {block} intentions policy: {detail}")]
    InvalidIntentions { block: &'static str, detail: String },
}

/// One segment block kind, in the order Consul's `PolicyRules.Validate` checks them.
struct Block {
    name: &'static str,
    resource: Resource,
    prefix: bool,
    /// How Go's `%#v` names the rule struct and its segment field, for error texts.
    go_type: &'static str,
    go_field: &'static str,
    /// Key, node and service rules embed an (empty, in CE) `EnterpriseRule`.
    enterprise: bool,
}

const fn block(name: &'static str, resource: Resource, prefix: bool) -> Block {
    let (go_type, go_field, enterprise) = match resource {
        Resource::Agent => ("AgentRule", "Node", false),
        Resource::Key => ("KeyRule", "Prefix", true),
        Resource::Node => ("NodeRule", "Name", true),
        Resource::Service => ("ServiceRule", "Name", true),
        Resource::Session => ("SessionRule", "Node", false),
        Resource::Event => ("EventRule", "Event", false),
        _ => ("PreparedQueryRule", "Prefix", false),
    };
    Block {
        name,
        resource,
        prefix,
        go_type,
        go_field,
        enterprise,
    }
}

const BLOCKS: [Block; 14] = [
    block("agent", Resource::Agent, false),
    block("agent_prefix", Resource::Agent, true),
    block("key", Resource::Key, false),
    block("key_prefix", Resource::Key, true),
    block("node", Resource::Node, false),
    block("node_prefix", Resource::Node, true),
    block("service", Resource::Service, false),
    block("service_prefix", Resource::Service, true),
    block("session", Resource::Session, false),
    block("session_prefix", Resource::Session, true),
    block("event", Resource::Event, false),
    block("event_prefix", Resource::Event, true),
    block("query", Resource::Query, false),
    block("query_prefix", Resource::Query, true),
];

/// The rules without segment. Consul validates `acl` before the blocks, the others after them.
const GLOBALS: [Resource; 5] = [
    Resource::Acl,
    Resource::Keyring,
    Resource::Operator,
    Resource::Mesh,
    Resource::Peering,
];

/// A rule as written, before its levels are checked.
struct RawRule {
    segment: String,
    policy: String,
    intentions: String,
}

impl Policy {
    /// Parses and validates rules text, HCL or JSON. Empty text is an empty policy.
    pub fn parse(text: &str) -> Result<Policy, RulesError> {
        if text.trim().is_empty() {
            return Ok(Policy::default());
        }
        let tree = syntax::parse(text).map_err(RulesError::Syntax)?;
        let (blocks, globals) = decode(tree).map_err(RulesError::Syntax)?;
        // A global set twice: the last one counts.
        let global = |resource: Resource| {
            let raw = globals.iter().rev().find(|(r, _)| *r == resource);
            validate_global(resource, raw.map_or("", |(_, raw)| raw.as_str()))
        };
        // Consul's validation order, so that the first error reported is the same one.
        let mut policy = Policy::default();
        policy.globals.extend(global(GLOBALS[0])?);
        for (spec, raws) in BLOCKS.iter().zip(blocks) {
            for raw in raws {
                policy.rules.push(validate_rule(spec, raw)?);
            }
        }
        for resource in &GLOBALS[1..] {
            policy.globals.extend(global(*resource)?);
        }
        Ok(policy)
    }

    /// The level of a global rule (`acl`, `keyring`, `operator`, `mesh`, `peering`), if set.
    pub fn global(&self, resource: Resource) -> Option<AccessLevel> {
        self.globals
            .iter()
            .find(|(r, _)| *r == resource)
            .map(|&(_, level)| level)
    }
}

/// An empty level means "not set", as in Consul; `list` is only for key rules.
fn validate_global(
    resource: Resource,
    raw: &str,
) -> Result<Option<(Resource, AccessLevel)>, RulesError> {
    if raw.is_empty() {
        return Ok(None);
    }
    match AccessLevel::parse(raw).filter(|&level| level != AccessLevel::List) {
        Some(level) => Ok(Some((resource, level))),
        None => Err(RulesError::InvalidPolicy {
            block: resource.as_str(),
            detail: format!("{raw:?}"),
        }),
    }
}

fn validate_rule(spec: &Block, raw: RawRule) -> Result<Rule, RulesError> {
    let detail = || go_rule(spec, &raw);
    // Only key rules may grant list: it is the one resource with a list operation.
    let access = AccessLevel::parse(&raw.policy)
        .filter(|&level| level != AccessLevel::List || spec.resource == Resource::Key)
        .ok_or_else(|| RulesError::InvalidPolicy {
            block: spec.name,
            detail: detail(),
        })?;
    let intentions = match raw.intentions.as_str() {
        "" => None,
        level => Some(
            AccessLevel::parse(level)
                .filter(|&level| level != AccessLevel::List)
                .ok_or_else(|| RulesError::InvalidIntentions {
                    block: spec.name,
                    detail: detail(),
                })?,
        ),
    };
    Ok(Rule {
        resource: spec.resource,
        segment: raw.segment,
        prefix: spec.prefix,
        access,
        intentions,
    })
}

/// Renders a rule as Go's `%#v` prints Consul's rule struct, the detail of its errors.
fn go_rule(spec: &Block, raw: &RawRule) -> String {
    let mut out = format!(
        "&acl.{}{{{}:{:?}, Policy:{:?}",
        spec.go_type, spec.go_field, raw.segment, raw.policy
    );
    if spec.resource == Resource::Service {
        out += &format!(", Intentions:{:?}", raw.intentions);
    }
    if spec.enterprise {
        out += ", EnterpriseRule:acl.EnterpriseRule{}";
    }
    out + "}"
}

type Decoded = (Vec<Vec<RawRule>>, Vec<(Resource, String)>);

/// Reads the tree as Consul's HCL 1 decoder fills its `PolicyRules` struct: names match
/// without regard to case and unknown names are ignored (a policy written for Consul
/// Enterprise, with `namespace` rules, still loads).
fn decode(tree: Node) -> Result<Decoded, String> {
    let mut blocks: Vec<Vec<RawRule>> = BLOCKS.iter().map(|_| Vec::new()).collect();
    let mut globals = Vec::new();
    for (name, node) in entries(&tree, "the rules")? {
        let name = name.to_ascii_lowercase();
        if let Some(i) = BLOCKS.iter().position(|b| b.name == name) {
            for (segment, body) in entries(node, &name)? {
                blocks[i].push(decode_rule(&name, segment, body)?);
            }
        } else if let Some(&resource) = GLOBALS.iter().find(|r| r.as_str() == name) {
            globals.push((resource, string(node, &name)?.to_string()));
        }
    }
    Ok((blocks, globals))
}

fn decode_rule(block: &str, segment: &str, body: &Node) -> Result<RawRule, String> {
    let mut rule = RawRule {
        segment: segment.to_string(),
        policy: String::new(),
        intentions: String::new(),
    };
    let what = format!("{block} {segment:?}");
    for (field, value) in entries(body, &what)? {
        let slot = match field.to_ascii_lowercase().as_str() {
            "policy" => &mut rule.policy,
            "intentions" => &mut rule.intentions,
            _ => continue,
        };
        *slot = string(value, &format!("{what}: {field}"))?.to_string();
    }
    Ok(rule)
}

/// The items of an object; a list of objects (JSON's other way to repeat blocks) is flattened.
fn entries<'n>(node: &'n Node, what: &str) -> Result<Vec<(&'n str, &'n Node)>, String> {
    match &node.value {
        Value::Obj(items) => Ok(items.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        Value::List(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(entries(item, what)?);
            }
            Ok(out)
        }
        other => Err(at(
            node,
            format!(
                "{what}: expected named rules such as {what} \"name\" {{ policy = \"read\" }}, found {}",
                other.kind()
            ),
        )),
    }
}

fn string<'n>(node: &'n Node, what: &str) -> Result<&'n str, String> {
    match &node.value {
        Value::Str(s) => Ok(s),
        other => Err(at(
            node,
            format!(
                "{what}: expected a level (\"read\", \"write\" or \"deny\"), found {}",
                other.kind()
            ),
        )),
    }
}

fn at(node: &Node, msg: String) -> String {
    match node.pos {
        Some(pos) => format!("At {pos}: {msg}"),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_rule as rule;

    /// Consul's `TestPolicySourceParse` "Basic" case, in both syntaxes.
    #[test]
    fn hcl_and_json_forms_agree() {
        use AccessLevel::*;
        use Resource::*;
        let hcl = r#"
            agent_prefix "bar" { policy = "write" }
            agent "foo" { policy = "read" }
            event_prefix "" { policy = "read" }
            event "foo" { policy = "write" }
            event "bar" { policy = "deny" }
            key_prefix "" { policy = "read" }
            key_prefix "foo/" { policy = "write" }
            key_prefix "foo/bar/" { policy = "read" }
            key "foo/bar/baz" { policy = "deny" }
            keyring = "deny"
            node_prefix "" { policy = "read" }
            node "foo" { policy = "write" }
            node "bar" { policy = "deny" }
            operator = "deny"
            mesh = "deny"
            peering = "deny"
            service_prefix "" { policy = "write" }
            service "foo" { policy = "read" }
            session "foo" { policy = "write" }
            session "bar" { policy = "deny" }
            session_prefix "baz" { policy = "deny" }
            query_prefix "" { policy = "read" }
            query "foo" { policy = "write" }
            query "bar" { policy = "deny" }
        "#;
        let json = r#"{
            "agent_prefix": {"bar": {"policy": "write"}},
            "agent": {"foo": {"policy": "read"}},
            "event_prefix": {"": {"policy": "read"}},
            "event": {"foo": {"policy": "write"}, "bar": {"policy": "deny"}},
            "key_prefix": {"": {"policy": "read"}, "foo/": {"policy": "write"}, "foo/bar/": {"policy": "read"}},
            "key": {"foo/bar/baz": {"policy": "deny"}},
            "keyring": "deny",
            "node_prefix": {"": {"policy": "read"}},
            "node": {"foo": {"policy": "write"}, "bar": {"policy": "deny"}},
            "operator": "deny", "mesh": "deny", "peering": "deny",
            "service_prefix": {"": {"policy": "write"}},
            "service": {"foo": {"policy": "read"}},
            "session_prefix": {"baz": {"policy": "deny"}},
            "session": {"foo": {"policy": "write"}, "bar": {"policy": "deny"}},
            "query_prefix": {"": {"policy": "read"}},
            "query": {"foo": {"policy": "write"}, "bar": {"policy": "deny"}}
        }"#;
        let expected = Policy {
            rules: vec![
                rule(Agent, "foo", false, Read),
                rule(Agent, "bar", true, Write),
                rule(Key, "foo/bar/baz", false, Deny),
                rule(Key, "", true, Read),
                rule(Key, "foo/", true, Write),
                rule(Key, "foo/bar/", true, Read),
                rule(Node, "foo", false, Write),
                rule(Node, "bar", false, Deny),
                rule(Node, "", true, Read),
                rule(Service, "foo", false, Read),
                rule(Service, "", true, Write),
                rule(Session, "foo", false, Write),
                rule(Session, "bar", false, Deny),
                rule(Session, "baz", true, Deny),
                rule(Event, "foo", false, Write),
                rule(Event, "bar", false, Deny),
                rule(Event, "", true, Read),
                rule(Query, "foo", false, Write),
                rule(Query, "bar", false, Deny),
                rule(Query, "", true, Read),
            ],
            globals: vec![
                (Keyring, Deny),
                (Operator, Deny),
                (Mesh, Deny),
                (Peering, Deny),
            ],
        };
        assert_eq!(Policy::parse(hcl).unwrap(), expected);
        assert_eq!(Policy::parse(json).unwrap(), expected);
    }

    #[test]
    fn intentions_and_other_forms() {
        let with = Rule {
            intentions: Some(AccessLevel::Read),
            ..rule(Resource::Service, "foo", false, AccessLevel::Write)
        };
        for text in [
            r#"service "foo" { policy = "write" intentions = "read" }"#,
            r#"{ "service": { "foo": { "policy": "write", "intentions": "read" }}}"#,
            // JSON's list form of repeated blocks, and levels in any case.
            r#"{ "service": [{ "foo": { "Policy": "WRITE", "intentions": "Read" }}]}"#,
        ] {
            assert_eq!(
                Policy::parse(text).unwrap().rules,
                vec![with.clone()],
                "{text}"
            );
        }
        let without = Policy::parse(r#"service "foo" { policy = "write" }"#).unwrap();
        assert_eq!(without.rules[0].intentions, None);
    }

    #[test]
    fn empty_levels_and_unknown_names() {
        for text in [
            "",
            "  \n",
            "keyring = \"\"",
            "operator = \"\"",
            "mesh = \"\"",
            "peering = \"\"",
            "{}",
        ] {
            assert_eq!(Policy::parse(text).unwrap(), Policy::default(), "{text:?}");
        }
        // Consul Enterprise rules and unknown fields are ignored, as Consul CE's decoder does.
        let policy = Policy::parse("namespace_prefix \"\" { policy = \"read\" }\nkey \"a\" { policy = \"read\" sentinel = { code = \"x\" } }").unwrap();
        assert_eq!(
            policy.rules,
            vec![rule(Resource::Key, "a", false, AccessLevel::Read)]
        );
        assert_eq!(policy.global(Resource::Acl), None);
    }

    #[test]
    fn bad_levels_give_consuls_errors() {
        let cases = [
            (r#"acl = "list""#, r#"Invalid acl policy: "list""#),
            (
                r#"agent "foo" { policy = "nope" }"#,
                r#"Invalid agent policy: &acl.AgentRule{Node:"foo", Policy:"nope"}"#,
            ),
            (
                r#"agent_prefix "foo" { policy = "nope" }"#,
                "Invalid agent_prefix policy",
            ),
            (
                r#"key "foo" { policy = "nope" }"#,
                r#"Invalid key policy: &acl.KeyRule{Prefix:"foo", Policy:"nope", EnterpriseRule:acl.EnterpriseRule{}}"#,
            ),
            (
                r#"key_prefix "foo" { policy = "nope" }"#,
                "Invalid key_prefix policy",
            ),
            (
                r#"node "foo" { policy = "list" }"#,
                r#"Invalid node policy: &acl.NodeRule{Name:"foo", Policy:"list", EnterpriseRule:acl.EnterpriseRule{}}"#,
            ),
            (
                r#"node_prefix "foo" { policy = "nope" }"#,
                "Invalid node_prefix policy",
            ),
            (
                r#"service "foo" { policy = "nope" }"#,
                "Invalid service policy",
            ),
            (
                r#"service_prefix "foo" { policy = "nope" }"#,
                "Invalid service_prefix policy",
            ),
            (
                r#"service "foo" { policy = "write" intentions = "foo" }"#,
                r#"Invalid service intentions policy: &acl.ServiceRule{Name:"foo", Policy:"write", Intentions:"foo", EnterpriseRule:acl.EnterpriseRule{}}"#,
            ),
            (
                r#"service_prefix "" { policy = "read" intentions = "list" }"#,
                "Invalid service_prefix intentions policy",
            ),
            (
                r#"session "foo" { policy = "nope" }"#,
                r#"Invalid session policy: &acl.SessionRule{Node:"foo", Policy:"nope"}"#,
            ),
            (
                r#"session_prefix "foo" { policy = "nope" }"#,
                "Invalid session_prefix policy",
            ),
            (
                r#"event "foo" { policy = "nope" }"#,
                r#"Invalid event policy: &acl.EventRule{Event:"foo", Policy:"nope"}"#,
            ),
            (
                r#"event_prefix "foo" { policy = "nope" }"#,
                "Invalid event_prefix policy",
            ),
            (
                r#"query "foo" { policy = "nope" }"#,
                r#"Invalid query policy: &acl.PreparedQueryRule{Prefix:"foo", Policy:"nope"}"#,
            ),
            (
                r#"query_prefix "foo" { policy = "nope" }"#,
                "Invalid query_prefix policy",
            ),
            (r#"keyring = "nope""#, "Invalid keyring policy"),
            (r#"operator = "nope""#, r#"Invalid operator policy: "nope""#),
            (r#"mesh = "list""#, "Invalid mesh policy"),
            (r#"peering = "nope""#, "Invalid peering policy"),
            // A rule without a level.
            (
                r#"key "a" { }"#,
                r#"Invalid key policy: &acl.KeyRule{Prefix:"a", Policy:"", EnterpriseRule:acl.EnterpriseRule{}}"#,
            ),
        ];
        for (text, want) in cases {
            let got = Policy::parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text}: {got}");
        }
        // Consul checks acl, then the blocks in a fixed order, then the other globals.
        let both =
            "peering = \"x\"\nquery \"q\" { policy = \"x\" }\nagent \"a\" { policy = \"x\" }";
        assert!(Policy::parse(both)
            .unwrap_err()
            .to_string()
            .starts_with("Invalid agent policy"));
    }

    #[test]
    fn malformed_rules_name_the_problem() {
        let cases = [
            ("key \"a\" {\n  policy = \"read\"\n", "Failed to parse ACL rules: At 3:1: expected '}' closing the '{' at 1:9, found end of input"),
            ("acl = { policy = \"read\" }", "Failed to parse ACL rules: At 1:7: acl: expected a level (\"read\", \"write\" or \"deny\"), found an object"),
            ("key = \"read\"", "Failed to parse ACL rules: At 1:7: key: expected named rules such as key \"name\" { policy = \"read\" }, found a string"),
            ("key \"a\" {\n policy = 1\n}", "Failed to parse ACL rules: At 2:11: key \"a\": policy: expected a level (\"read\", \"write\" or \"deny\"), found a number"),
            (r#"{"key": {"a": {"policy": true}}}"#, "Failed to parse ACL rules: key \"a\": policy: expected a level (\"read\", \"write\" or \"deny\"), found a boolean"),
        ];
        for (text, want) in cases {
            assert_eq!(Policy::parse(text).unwrap_err().to_string(), want, "{text}");
        }
        let json = Policy::parse(r#"{"key": }"#).unwrap_err().to_string();
        assert!(
            json.starts_with("Failed to parse ACL rules: ") && json.contains("line 1 column 9"),
            "{json}"
        );
    }
}
