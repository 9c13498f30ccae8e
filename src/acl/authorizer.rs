//! The compiled form of a token's policies, answering allow/deny for every ACL check as
//! Consul's `policyAuthorizer` chained to a static default authorizer does.
//!
//! Compilation merges all policies (per resource and segment the strongest level wins: deny,
//! then write, list, read) and builds, per resource, one [`RuleTable`]: segments sorted so a
//! check is a binary search plus a short walk up the chain of enclosing prefix rules. Checks
//! allocate nothing.

use super::rules::{AccessLevel, Policy, Resource};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn is_allow(self) -> bool {
        self == Decision::Allow
    }
}

/// What one authorizer in a chain says: `None` is Consul's `Default` (no rule applies, ask
/// the next authorizer).
type Verdict = Option<Decision>;

/// `acl.default_policy`: what a token may do where none of its rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    Allow,
    Deny,
}

/// Whether a rule's level grants the wanted one (Consul's `enforce`): write grants all, list
/// grants list and read, read only read, deny nothing.
fn grants(rule: AccessLevel, wanted: AccessLevel) -> Decision {
    let allowed = match rule {
        AccessLevel::Write => true,
        AccessLevel::List => matches!(wanted, AccessLevel::List | AccessLevel::Read),
        AccessLevel::Read => wanted == AccessLevel::Read,
        AccessLevel::Deny => false,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

struct Entry {
    segment: Box<str>,
    exact: Option<AccessLevel>,
    prefix: Option<AccessLevel>,
    /// The nearest entry whose segment is a proper prefix of this one and that has a prefix
    /// rule: the next candidate when this entry's own prefix rule does not apply.
    up: Option<u32>,
}

/// One resource's rules, sorted by segment (Consul keeps them in a radix tree).
#[derive(Default)]
struct RuleTable {
    entries: Vec<Entry>,
}

/// A segment's merged exact and prefix levels, before the table is built.
#[derive(Default, Clone, Copy)]
struct Slot {
    exact: Option<AccessLevel>,
    prefix: Option<AccessLevel>,
}

impl RuleTable {
    fn build(slots: BTreeMap<String, Slot>) -> RuleTable {
        let mut entries: Vec<Entry> = Vec::with_capacity(slots.len());
        // Enclosing prefix rules of the current entry, innermost last. Sorted order visits a
        // segment's extensions right after it, so an entry that is not a prefix of the
        // current one is not a prefix of any later one either and can be dropped.
        let mut enclosing: Vec<usize> = Vec::new();
        for (segment, slot) in slots {
            while let Some(&top) = enclosing.last() {
                if segment.starts_with(&*entries[top].segment) {
                    break;
                }
                enclosing.pop();
            }
            let up = enclosing.last().map(|&i| i as u32);
            if slot.prefix.is_some() {
                enclosing.push(entries.len());
            }
            entries.push(Entry {
                segment: segment.into_boxed_str(),
                exact: slot.exact,
                prefix: slot.prefix,
                up,
            });
        }
        RuleTable { entries }
    }

    /// The level of the rule that applies to `segment`: an exact rule for it, else the
    /// longest prefix rule (Consul's `getPolicy`).
    fn lookup(&self, segment: &str) -> Option<AccessLevel> {
        let last = self.last_at_or_before(segment)?;
        let entry = &self.entries[last];
        if &*entry.segment == segment && entry.exact.is_some() {
            return entry.exact;
        }
        self.longest_prefix_rule(last, segment)
    }

    /// The index of the greatest segment `<= segment`. Every rule segment that is a prefix
    /// of `segment` sorts between that prefix and `segment`, so it is a prefix of this entry
    /// too: the candidates are this entry and its `up` chain.
    fn last_at_or_before(&self, segment: &str) -> Option<usize> {
        self.entries
            .partition_point(|e| &*e.segment <= segment)
            .checked_sub(1)
    }

    fn longest_prefix_rule(&self, start: usize, segment: &str) -> Option<AccessLevel> {
        let mut next = Some(start);
        while let Some(i) = next {
            let entry = &self.entries[i];
            if entry.prefix.is_some() && segment.starts_with(&*entry.segment) {
                return entry.prefix;
            }
            next = entry.up.map(|u| u as usize);
        }
        None
    }

    /// Consul's `KeyWritePrefix`: may everything under `prefix` be written (a recursive
    /// delete)? Denied when the prefix rule covering `prefix` does not grant write, or when
    /// any rule at or under `prefix`, exact or prefix, does not. Allowed when a covering
    /// prefix rule grants write; otherwise no rule decides.
    fn write_prefix(&self, prefix: &str) -> Verdict {
        let covering = self
            .last_at_or_before(prefix)
            .and_then(|last| self.longest_prefix_rule(last, prefix));
        let base = covering.map(|level| grants(level, AccessLevel::Write));
        if base == Some(Decision::Deny) {
            return base;
        }
        let start = self.entries.partition_point(|e| &*e.segment < prefix);
        let not_write = |level: Option<AccessLevel>| level.is_some_and(|l| l != AccessLevel::Write);
        let any_denied = self.entries[start..]
            .iter()
            .take_while(|e| e.segment.starts_with(prefix))
            .any(|e| not_write(e.prefix) || not_write(e.exact));
        if any_denied {
            Some(Decision::Deny)
        } else {
            base
        }
    }

    /// The catch-all `""` prefix rule's decision, if there is one.
    fn catch_all(&self, wanted: AccessLevel) -> Verdict {
        let first = self.entries.first().filter(|e| e.segment.is_empty())?;
        first.prefix.map(|level| grants(level, wanted))
    }

    /// Consul's `anyAllowed`: allowed if some rule grants `wanted`; else the catch-all
    /// prefix rule's denial, if any; else no decision.
    fn any_allowed(&self, wanted: AccessLevel) -> Verdict {
        let catch_all = self.catch_all(wanted);
        let allows =
            |level: Option<AccessLevel>| level.is_some_and(|l| grants(l, wanted).is_allow());
        if catch_all == Some(Decision::Allow)
            || self
                .entries
                .iter()
                .any(|e| allows(e.prefix) || allows(e.exact))
        {
            return Some(Decision::Allow);
        }
        catch_all
    }

    /// Consul's `allAllowed`: denied if the catch-all prefix rule or any rule denies
    /// `wanted` (an exact rule counts where it decides, i.e. unless its prefix rule at the
    /// same segment already denies); else the catch-all's allowance, if any; else no
    /// decision.
    fn all_allowed(&self, wanted: AccessLevel) -> Verdict {
        let catch_all = self.catch_all(wanted);
        let denies =
            |level: Option<AccessLevel>| level.is_some_and(|l| !grants(l, wanted).is_allow());
        if catch_all == Some(Decision::Deny)
            || self
                .entries
                .iter()
                .any(|e| denies(e.prefix) || denies(e.exact))
        {
            return Some(Decision::Deny);
        }
        catch_all
    }
}

/// All of a token's policies merged and compiled (Consul's `policyAuthorizer`).
struct PolicyAuthorizer {
    /// Indexed by `Resource as usize`; the global resources' tables stay empty.
    tables: Vec<RuleTable>,
    globals: [Option<AccessLevel>; Resource::COUNT],
}

impl PolicyAuthorizer {
    fn compile(policies: &[Policy]) -> PolicyAuthorizer {
        // Per resource, per segment, the strongest level of each kind (Consul's
        // `MergePolicies`); intentions merge separately from their service's policy.
        let mut slots: Vec<BTreeMap<String, Slot>> =
            (0..Resource::COUNT).map(|_| BTreeMap::new()).collect();
        let mut intentions: BTreeMap<String, Slot> = BTreeMap::new();
        let mut globals = [None; Resource::COUNT];
        for policy in policies {
            for &(resource, level) in &policy.globals {
                let merged = &mut globals[resource as usize];
                *merged = (*merged).max(Some(level));
            }
            for rule in &policy.rules {
                let slot = slots[rule.resource as usize]
                    .entry(rule.segment.clone())
                    .or_default();
                merge(slot, rule.prefix, Some(rule.access));
                if rule.resource == Resource::Service {
                    let slot = intentions.entry(rule.segment.clone()).or_default();
                    merge(slot, rule.prefix, rule.intentions);
                }
            }
        }
        // A service rule without `intentions` grants intention read when it grants
        // service read or write, and denies intentions otherwise (Consul's `loadRules`).
        let service = &slots[Resource::Service as usize];
        for (segment, slot) in intentions.iter_mut() {
            let derive = |own: &mut Option<AccessLevel>, service: Option<AccessLevel>| {
                if let Some(service) = service {
                    own.get_or_insert(match service {
                        AccessLevel::Read | AccessLevel::Write => AccessLevel::Read,
                        _ => AccessLevel::Deny,
                    });
                }
            };
            let service = service[segment];
            derive(&mut slot.exact, service.exact);
            derive(&mut slot.prefix, service.prefix);
        }
        slots[Resource::Intention as usize] = intentions;
        PolicyAuthorizer {
            tables: slots.into_iter().map(RuleTable::build).collect(),
            globals,
        }
    }

    fn table(&self, resource: Resource) -> &RuleTable {
        &self.tables[resource as usize]
    }

    fn decide(&self, op: Op) -> Verdict {
        match op {
            Op::Check(resource, wanted, segment) => {
                let level = match resource {
                    Resource::Acl | Resource::Keyring | Resource::Operator => {
                        self.globals[resource as usize]
                    }
                    // Without their own rule, mesh and peering follow operator.
                    Resource::Mesh | Resource::Peering => self.globals[resource as usize]
                        .or(self.globals[Resource::Operator as usize]),
                    // `*` asks about intentions in general: reading needs one readable
                    // service, writing needs every service writable.
                    Resource::Intention if segment == "*" => {
                        let table = self.table(resource);
                        return match wanted {
                            AccessLevel::Write => table.all_allowed(wanted),
                            _ => table.any_allowed(wanted),
                        };
                    }
                    _ => self.table(resource).lookup(segment),
                };
                level.map(|level| grants(level, wanted))
            }
            Op::KeyWritePrefix(prefix) => self.table(Resource::Key).write_prefix(prefix),
            Op::ReadAll(resource) => self.table(resource).all_allowed(AccessLevel::Read),
            Op::ServiceWriteAny => self
                .table(Resource::Service)
                .any_allowed(AccessLevel::Write),
            // Only the default policy decides this.
            Op::IntentionDefaultAllow => None,
        }
    }
}

fn merge(slot: &mut Slot, prefix: bool, level: Option<AccessLevel>) {
    let merged = if prefix {
        &mut slot.prefix
    } else {
        &mut slot.exact
    };
    *merged = (*merged).max(level);
}

/// A check, as the authorizers in a chain are asked it.
#[derive(Clone, Copy)]
enum Op<'a> {
    Check(Resource, AccessLevel, &'a str),
    KeyWritePrefix(&'a str),
    /// Node or service read on every name.
    ReadAll(Resource),
    ServiceWriteAny,
    IntentionDefaultAllow,
}

#[derive(Clone)]
enum Layer {
    Policies(Arc<PolicyAuthorizer>),
    /// Consul's static authorizers: allow-all and deny-all decide everything but ACL
    /// management, which only manage-all allows.
    Static {
        allow: bool,
        manage: bool,
    },
}

impl Layer {
    fn decide(&self, op: Op) -> Verdict {
        match self {
            Layer::Policies(policies) => policies.decide(op),
            Layer::Static { allow, manage } => {
                let allowed = match op {
                    Op::Check(Resource::Acl, _, _) => *manage,
                    _ => *allow,
                };
                Some(if allowed {
                    Decision::Allow
                } else {
                    Decision::Deny
                })
            }
        }
    }
}

/// A token's authorizer: authorizers asked in order, the first that decides wins, and a
/// check nobody decides is denied (Consul's `ChainedAuthorizer`). Cheap to clone.
#[derive(Clone)]
pub struct Authorizer {
    chain: Vec<Layer>,
}

impl Authorizer {
    /// Compiles a token's policies (its own, its roles', its identities' and templated
    /// policies' rendered rules) ahead of the default policy.
    pub fn new(policies: &[Policy], default: DefaultPolicy) -> Authorizer {
        let mut chain = vec![Layer::Policies(Arc::new(PolicyAuthorizer::compile(
            policies,
        )))];
        chain.extend(Self::from_default(default).chain);
        Authorizer { chain }
    }

    /// What an anonymous or unknown token gets with no policies at all.
    pub fn from_default(default: DefaultPolicy) -> Authorizer {
        match default {
            DefaultPolicy::Allow => Self::allow_all(),
            DefaultPolicy::Deny => Self::deny_all(),
        }
    }

    /// Allows everything but ACL management and snapshots.
    pub fn allow_all() -> Authorizer {
        Self::fixed(true, false)
    }

    pub fn deny_all() -> Authorizer {
        Self::fixed(false, false)
    }

    /// Allows everything (management tokens).
    pub fn manage_all() -> Authorizer {
        Self::fixed(true, true)
    }

    fn fixed(allow: bool, manage: bool) -> Authorizer {
        Authorizer {
            chain: vec![Layer::Static { allow, manage }],
        }
    }

    fn decide(&self, op: Op) -> Decision {
        self.chain
            .iter()
            .find_map(|layer| layer.decide(op))
            .unwrap_or(Decision::Deny)
    }

    /// Any segment check by resource and level, as Consul's `acl.Enforce`. Global resources
    /// ignore `segment`; a level a resource has no operation for (say, `list` on services)
    /// is judged by the rule like any other.
    pub fn enforce(&self, resource: Resource, access: AccessLevel, segment: &str) -> Decision {
        self.decide(Op::Check(resource, access, segment))
    }

    pub fn acl_read(&self) -> Decision {
        self.enforce(Resource::Acl, AccessLevel::Read, "")
    }
    pub fn acl_write(&self) -> Decision {
        self.enforce(Resource::Acl, AccessLevel::Write, "")
    }
    /// Snapshots need ACL write, as in Consul.
    pub fn snapshot(&self) -> Decision {
        self.acl_write()
    }
    pub fn agent_read(&self, node: &str) -> Decision {
        self.enforce(Resource::Agent, AccessLevel::Read, node)
    }
    pub fn agent_write(&self, node: &str) -> Decision {
        self.enforce(Resource::Agent, AccessLevel::Write, node)
    }
    pub fn event_read(&self, name: &str) -> Decision {
        self.enforce(Resource::Event, AccessLevel::Read, name)
    }
    pub fn event_write(&self, name: &str) -> Decision {
        self.enforce(Resource::Event, AccessLevel::Write, name)
    }
    /// Whether traffic matching no intention is allowed: only the default policy says.
    pub fn intention_default_allow(&self) -> Decision {
        self.decide(Op::IntentionDefaultAllow)
    }
    /// Intentions whose destination is `service`; `*` means any readable destination.
    pub fn intention_read(&self, service: &str) -> Decision {
        self.enforce(Resource::Intention, AccessLevel::Read, service)
    }
    /// Intentions whose destination is `service`; `*` needs every destination writable.
    pub fn intention_write(&self, service: &str) -> Decision {
        self.enforce(Resource::Intention, AccessLevel::Write, service)
    }
    pub fn key_read(&self, key: &str) -> Decision {
        self.enforce(Resource::Key, AccessLevel::Read, key)
    }
    pub fn key_list(&self, prefix: &str) -> Decision {
        self.enforce(Resource::Key, AccessLevel::List, prefix)
    }
    pub fn key_write(&self, key: &str) -> Decision {
        self.enforce(Resource::Key, AccessLevel::Write, key)
    }
    /// Write on every key under `prefix` (recursive deletes): no rule under it may
    /// withhold write.
    pub fn key_write_prefix(&self, prefix: &str) -> Decision {
        self.decide(Op::KeyWritePrefix(prefix))
    }
    pub fn keyring_read(&self) -> Decision {
        self.enforce(Resource::Keyring, AccessLevel::Read, "")
    }
    pub fn keyring_write(&self) -> Decision {
        self.enforce(Resource::Keyring, AccessLevel::Write, "")
    }
    pub fn mesh_read(&self) -> Decision {
        self.enforce(Resource::Mesh, AccessLevel::Read, "")
    }
    pub fn mesh_write(&self) -> Decision {
        self.enforce(Resource::Mesh, AccessLevel::Write, "")
    }
    pub fn node_read(&self, node: &str) -> Decision {
        self.enforce(Resource::Node, AccessLevel::Read, node)
    }
    /// Read on every node: no node rule may withhold read.
    pub fn node_read_all(&self) -> Decision {
        self.decide(Op::ReadAll(Resource::Node))
    }
    pub fn node_write(&self, node: &str) -> Decision {
        self.enforce(Resource::Node, AccessLevel::Write, node)
    }
    pub fn operator_read(&self) -> Decision {
        self.enforce(Resource::Operator, AccessLevel::Read, "")
    }
    pub fn operator_write(&self) -> Decision {
        self.enforce(Resource::Operator, AccessLevel::Write, "")
    }
    pub fn peering_read(&self) -> Decision {
        self.enforce(Resource::Peering, AccessLevel::Read, "")
    }
    pub fn peering_write(&self) -> Decision {
        self.enforce(Resource::Peering, AccessLevel::Write, "")
    }
    pub fn prepared_query_read(&self, name: &str) -> Decision {
        self.enforce(Resource::Query, AccessLevel::Read, name)
    }
    pub fn prepared_query_write(&self, name: &str) -> Decision {
        self.enforce(Resource::Query, AccessLevel::Write, name)
    }
    pub fn service_read(&self, service: &str) -> Decision {
        self.enforce(Resource::Service, AccessLevel::Read, service)
    }
    /// Read on every service: no service rule may withhold read.
    pub fn service_read_all(&self) -> Decision {
        self.decide(Op::ReadAll(Resource::Service))
    }
    pub fn service_write(&self, service: &str) -> Decision {
        self.enforce(Resource::Service, AccessLevel::Write, service)
    }
    /// Write on at least one service.
    pub fn service_write_any(&self) -> Decision {
        self.decide(Op::ServiceWriteAny)
    }
    pub fn session_read(&self, node: &str) -> Decision {
        self.enforce(Resource::Session, AccessLevel::Read, node)
    }
    pub fn session_write(&self, node: &str) -> Decision {
        self.enforce(Resource::Session, AccessLevel::Write, node)
    }
}

/// Consul's `PermissionDeniedError`, rendered with its exact texts (clients match on the
/// `Permission denied` prefix; the rest tells the operator which rule is missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionDenied {
    /// Bare `Permission denied`.
    #[error("Permission denied")]
    Plain,
    /// `Permission denied: <cause>`, e.g. `Denied by intention default`.
    #[error("Permission denied: {0}")]
    Cause(String),
    /// `Permission denied: token with AccessorID '<id>' lacks permission '<resource>:<level>'
    /// on "<segment>"`.
    #[error("Permission denied: {}", Lacks(self))]
    Lacks {
        /// Empty for a token without accessor (rendered `provided token`).
        accessor_id: String,
        resource: Resource,
        access: AccessLevel,
        /// Empty for global resources; [`PermissionDenied::ALL_NODES`] and friends for the
        /// whole-catalog checks.
        segment: String,
    },
}

impl PermissionDenied {
    /// The segments Consul names for `node_read_all`, `service_read_all` and
    /// `service_write_any` denials.
    pub const ALL_NODES: &'static str = "all nodes";
    pub const ALL_SERVICES: &'static str = "all services";
    pub const ANY_SERVICE: &'static str = "any service";

    pub fn lacks(
        accessor_id: &str,
        resource: Resource,
        access: AccessLevel,
        segment: &str,
    ) -> Self {
        PermissionDenied::Lacks {
            accessor_id: accessor_id.to_string(),
            resource,
            access,
            segment: segment.to_string(),
        }
    }
}

/// The `Lacks` text after `Permission denied: `.
struct Lacks<'a>(&'a PermissionDenied);

impl fmt::Display for Lacks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PermissionDenied::Lacks {
            accessor_id,
            resource,
            access,
            segment,
        } = self.0
        else {
            return Ok(());
        };
        if accessor_id.is_empty() {
            f.write_str("provided token")?;
        } else {
            write!(f, "token with AccessorID '{accessor_id}'")?;
        }
        write!(f, " lacks permission '{resource}:{access}'")?;
        if !segment.is_empty() {
            write!(f, " on \"{segment}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz(policies: &[&str], default: DefaultPolicy) -> Authorizer {
        let parsed: Vec<Policy> = policies.iter().map(|p| Policy::parse(p).unwrap()).collect();
        Authorizer::new(&parsed, default)
    }

    fn deny(policies: &[&str]) -> Authorizer {
        authz(policies, DefaultPolicy::Deny)
    }

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let a = deny(&[r#"
            key_prefix "" { policy = "read" }
            key_prefix "foo/" { policy = "write" }
            key_prefix "foo/bar/" { policy = "deny" }
            key "foo/bar/baz" { policy = "write" }
            key "foo/bar/" { policy = "read" }
        "#]);
        assert!(a.key_read("other").is_allow());
        assert!(!a.key_write("other").is_allow());
        assert!(a.key_write("foo/x").is_allow());
        assert!(a.key_write("foo/").is_allow());
        assert!(!a.key_read("foo/bar/x").is_allow());
        assert!(a.key_write("foo/bar/baz").is_allow());
        // The exact rule on a segment beats the prefix rule on the same segment...
        assert!(a.key_read("foo/bar/").is_allow());
        // ...but only for that segment.
        assert!(!a.key_read("foo/bar/baz2").is_allow());
        assert!(a.key_read("foo/b").is_allow());
        assert!(a.key_read("fo").is_allow());
    }

    #[test]
    fn lookups_skip_unrelated_neighbours() {
        // Sorted neighbours that are not prefixes of the segment must not match.
        let a = deny(&[r#"
            key_prefix "a" { policy = "write" }
            key_prefix "ab" { policy = "deny" }
            key "abc" { policy = "deny" }
            key_prefix "abd/x" { policy = "deny" }
            service_prefix "web" { policy = "write" }
        "#]);
        assert!(!a.key_write("abd/y").is_allow());
        assert!(a.key_write("ac").is_allow());
        assert!(!a.key_write("abz").is_allow());
        assert!(a.key_write("a").is_allow());
        assert!(!a.key_read("b").is_allow());
        assert!(!a.key_read("").is_allow());
        assert!(a.service_write("web").is_allow());
        assert!(!a.service_write("we").is_allow());
    }

    #[test]
    fn policies_merge_with_deny_first() {
        let a = deny(&[
            r#"key "k" { policy = "write" } key_prefix "p/" { policy = "deny" } node "n" { policy = "read" }"#,
            r#"key "k" { policy = "deny" } key_prefix "p/" { policy = "write" } node "n" { policy = "write" }"#,
            r#"key "l" { policy = "list" } key "l" { policy = "read" } operator = "read""#,
            r#"operator = "write""#,
        ]);
        assert!(!a.key_read("k").is_allow());
        assert!(!a.key_write("p/x").is_allow());
        assert!(a.node_write("n").is_allow());
        // List outranks read, so list is granted.
        assert!(a.key_list("l").is_allow());
        assert!(!a.key_write("l").is_allow());
        assert!(a.operator_write().is_allow());
    }

    #[test]
    fn default_policy_decides_where_no_rule_applies() {
        let rules =
            [r#"key_prefix "secret/" { policy = "deny" } service "web" { policy = "read" }"#];
        let allow = authz(&rules, DefaultPolicy::Allow);
        let deny = authz(&rules, DefaultPolicy::Deny);
        assert!(allow.key_write("public").is_allow());
        assert!(!allow.key_read("secret/x").is_allow());
        // A rule that grants less than asked denies: it does not fall through.
        assert!(!allow.service_write("web").is_allow());
        assert!(!deny.key_read("public").is_allow());
        assert!(deny.service_read("web").is_allow());
        // Allow-all never grants ACL management or snapshots.
        assert!(!allow.acl_read().is_allow());
        assert!(!allow.snapshot().is_allow());
        assert!(allow.intention_default_allow().is_allow());
        assert!(!deny.intention_default_allow().is_allow());
        let manage = Authorizer::manage_all();
        assert!(manage.acl_write().is_allow() && manage.snapshot().is_allow());
        assert!(!Authorizer::deny_all().key_read("x").is_allow());
        assert!(Authorizer::allow_all().key_write_prefix("").is_allow());
        assert!(!Authorizer::from_default(DefaultPolicy::Allow)
            .acl_write()
            .is_allow());
    }

    #[test]
    fn key_write_prefix_needs_write_on_the_whole_subtree() {
        let a = deny(&[r#"
            key_prefix "" { policy = "write" }
            key_prefix "ro/" { policy = "read" }
            key "locked/k" { policy = "deny" }
            key "w/k" { policy = "write" }
        "#]);
        assert!(a.key_write_prefix("w/").is_allow());
        assert!(a.key_write_prefix("other").is_allow());
        assert!(
            !a.key_write_prefix("ro/").is_allow(),
            "covering prefix rule is read"
        );
        assert!(!a.key_write_prefix("ro/sub/").is_allow());
        assert!(
            !a.key_write_prefix("locked/").is_allow(),
            "an exact rule below denies"
        );
        assert!(
            !a.key_write_prefix("locked/k").is_allow(),
            "an exact rule on the prefix itself counts"
        );
        assert!(
            !a.key_write_prefix("").is_allow(),
            "rules under the root deny"
        );
        assert!(a.key_write("locked/x").is_allow());

        // Without a covering prefix rule, the default decides unless a rule below denies.
        let b = authz(
            &[r#"key "a/b" { policy = "write" } key "c/d" { policy = "read" }"#],
            DefaultPolicy::Allow,
        );
        assert!(b.key_write_prefix("a/").is_allow());
        assert!(!b.key_write_prefix("c/").is_allow());
        let c = deny(&[r#"key "a/b" { policy = "write" }"#]);
        assert!(!c.key_write_prefix("a/").is_allow());
    }

    #[test]
    fn intentions_derive_from_service_rules() {
        let a = deny(&[r#"
            service "w" { policy = "write" }
            service "r" { policy = "read" }
            service "d" { policy = "deny" }
            service "x" { policy = "read" intentions = "write" }
            service_prefix "p-" { policy = "write" intentions = "deny" }
        "#]);
        assert!(a.intention_read("w").is_allow() && !a.intention_write("w").is_allow());
        assert!(a.intention_read("r").is_allow());
        assert!(!a.intention_read("d").is_allow());
        assert!(a.intention_write("x").is_allow());
        assert!(!a.intention_read("p-1").is_allow());
        assert!(!a.intention_read("none").is_allow());
        // `*`: read needs one readable destination, write needs all writable.
        assert!(a.intention_read("*").is_allow());
        assert!(!a.intention_write("*").is_allow());
        let all = deny(&[r#"service_prefix "" { policy = "read" intentions = "write" }"#]);
        assert!(all.intention_write("*").is_allow());

        // Merging: intentions merge on their own; a derived level comes from the merged
        // service level.
        let m = deny(&[
            r#"service "s" { policy = "write" }"#,
            r#"service "s" { policy = "read" intentions = "write" }"#,
            r#"service "t" { policy = "write" } service "t2" { policy = "write" }"#,
            r#"service "t" { policy = "deny" }"#,
        ]);
        assert!(m.service_write("s").is_allow() && m.intention_write("s").is_allow());
        assert!(!m.intention_read("t").is_allow());
    }

    #[test]
    fn whole_catalog_checks() {
        let some = deny(&[r#"service "a" { policy = "write" } node "n" { policy = "read" }"#]);
        assert!(some.service_write_any().is_allow());
        // No catch-all rule: the default decides.
        assert!(!some.service_read_all().is_allow());
        assert!(
            authz(&[r#"node "n" { policy = "read" }"#], DefaultPolicy::Allow)
                .node_read_all()
                .is_allow()
        );

        let all = deny(&[
            r#"service_prefix "" { policy = "read" } node_prefix "" { policy = "read" } node "x" { policy = "deny" }"#,
        ]);
        assert!(all.service_read_all().is_allow());
        assert!(!all.service_write_any().is_allow());
        assert!(!all.node_read_all().is_allow(), "one denied node");

        let catch_all_deny = authz(
            &[r#"service_prefix "" { policy = "deny" } service "a" { policy = "write" }"#],
            DefaultPolicy::Allow,
        );
        assert!(catch_all_deny.service_write_any().is_allow());
        let catch_all_deny = authz(
            &[r#"service_prefix "" { policy = "deny" }"#],
            DefaultPolicy::Allow,
        );
        assert!(!catch_all_deny.service_write_any().is_allow());
    }

    #[test]
    fn global_rules() {
        let a = deny(&[r#"acl = "read" keyring = "write" operator = "read""#]);
        assert!(a.acl_read().is_allow() && !a.acl_write().is_allow() && !a.snapshot().is_allow());
        assert!(a.keyring_write().is_allow());
        // Mesh and peering follow operator unless set.
        assert!(a.mesh_read().is_allow() && !a.mesh_write().is_allow());
        assert!(a.peering_read().is_allow() && !a.peering_write().is_allow());
        let b = deny(&[r#"operator = "write" mesh = "deny""#]);
        assert!(!b.mesh_read().is_allow() && b.peering_write().is_allow());
        let c = deny(&[r#"peering = "write""#]);
        assert!(c.peering_write().is_allow() && !c.operator_read().is_allow());
    }

    #[test]
    fn segment_resources() {
        let a = deny(&[r#"
            agent_prefix "" { policy = "read" }
            agent "me" { policy = "write" }
            event_prefix "deploy-" { policy = "write" }
            query "q" { policy = "read" }
            session_prefix "" { policy = "write" }
            session "ro" { policy = "read" }
        "#]);
        assert!(
            a.agent_read("x").is_allow()
                && !a.agent_write("x").is_allow()
                && a.agent_write("me").is_allow()
        );
        assert!(a.event_write("deploy-1").is_allow() && !a.event_read("other").is_allow());
        assert!(a.prepared_query_read("q").is_allow() && !a.prepared_query_write("q").is_allow());
        assert!(
            a.session_write("n").is_allow()
                && a.session_read("ro").is_allow()
                && !a.session_write("ro").is_allow()
        );
        assert!(a
            .enforce(Resource::Agent, AccessLevel::Write, "me")
            .is_allow());
        // Only key rules grant list.
        assert!(!a.key_list("x").is_allow());
    }

    #[test]
    fn permission_denied_texts() {
        let e = PermissionDenied::lacks("a1b2", Resource::Service, AccessLevel::Write, "web");
        assert_eq!(e.to_string(), "Permission denied: token with AccessorID 'a1b2' lacks permission 'service:write' on \"web\"");
        let e = PermissionDenied::lacks("", Resource::Operator, AccessLevel::Read, "");
        assert_eq!(
            e.to_string(),
            "Permission denied: provided token lacks permission 'operator:read'"
        );
        let e = PermissionDenied::lacks(
            "x",
            Resource::Node,
            AccessLevel::Read,
            PermissionDenied::ALL_NODES,
        );
        assert_eq!(e.to_string(), "Permission denied: token with AccessorID 'x' lacks permission 'node:read' on \"all nodes\"");
        assert_eq!(
            PermissionDenied::Cause("Denied by intention default".into()).to_string(),
            "Permission denied: Denied by intention default"
        );
        assert_eq!(PermissionDenied::Plain.to_string(), "Permission denied");
    }
}
