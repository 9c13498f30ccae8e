//! Token resolution (Consul's `ACLResolver`): a request's secret → its token → the rules of
//! its policies, roles, service and node identities and templated policies → one compiled
//! `acl::Authorizer`. Compiled identities are cached by secret; the cache is valid for one
//! state of the ACL tables and is dropped whole when any of them changes, so a changed policy
//! or a deleted token takes effect on the next request. The cache holds a store watch on the
//! ACL tables: the writer fires it before it answers the write, so checking it (a look at a
//! flag, no store transaction) is all a request with a cached token costs.

use crate::acl::templated::{node_identity_rules, service_identity_rules, TemplateVariables};
use crate::acl::{Authorizer, DefaultPolicy, Policy};
use crate::config::Config;
use crate::store::{acl, Readable, Store, StoreError, Watch, WatchSet};
use crate::types::acl::{AclToken, Grants, ANONYMOUS_SECRET};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who a request acts as, and what it may do.
pub struct Identity {
    /// Empty when ACLs are disabled (nobody in particular).
    pub accessor_id: String,
    /// The token itself (for `/v1/acl/token/self`); `None` for the agent recovery token and
    /// when ACLs are disabled.
    pub token: Option<AclToken>,
    pub authorizer: Authorizer,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// An unknown or expired secret (Consul's `acl.ErrNotFound`, a 403).
    #[error("ACL not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct AclResolver {
    store: Store,
    enabled: bool,
    default_policy: DefaultPolicy,
    datacenter: String,
    node_name: String,
    cache: Mutex<Cache>,
    /// The one identity everybody has with ACLs disabled.
    unrestricted: Arc<Identity>,
}

#[derive(Default)]
struct Cache {
    /// Fires on the first ACL write after it was registered; `None` once fired.
    watch: Option<Watch>,
    /// Counts the watches registered: every read made under one watch saw the same ACL
    /// tables, so its entries may go in only while that watch is current.
    generation: u64,
    by_secret: HashMap<String, Arc<Identity>>,
}

impl Cache {
    /// Drops every entry if an ACL table changed since the watch was registered, and makes
    /// sure a watch is in place; returns its generation. A read started after this call sees
    /// the ACL tables as they are until the watch fires.
    fn current(&mut self, store: &Store) -> u64 {
        let changed = self
            .watch
            .as_ref()
            .is_some_and(|w| w.changed().now_or_never().is_some());
        if changed {
            self.watch = None;
            self.by_secret.clear();
        }
        if self.watch.is_none() {
            let mut ws = WatchSet::new();
            acl::watch_all(&mut ws);
            // Registered before any read under it: only commits after now can fire it, and
            // reads started after now see every commit before.
            self.watch = Some(store.watches().register(ws, u64::MAX));
            self.generation += 1;
        }
        self.generation
    }
}

/// The accessor the agent recovery token acts as (it has no stored token).
pub const AGENT_RECOVERY_ACCESSOR: &str = "agent-recovery-token";

impl AclResolver {
    pub fn new(store: Store, config: &Config) -> AclResolver {
        AclResolver {
            store,
            enabled: config.acl.enabled,
            default_policy: config.acl.default_policy,
            datacenter: config.datacenter.clone(),
            node_name: config.node_name.clone(),
            cache: Mutex::new(Cache::default()),
            unrestricted: Arc::new(Identity {
                accessor_id: String::new(),
                token: None,
                authorizer: Authorizer::manage_all(),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The identity of `secret`; an empty secret is the anonymous token's. `agent_recovery`
    /// is the agent's current recovery token (configured or set through the API), which acts
    /// without a stored token. With ACLs disabled everyone may do everything.
    pub fn resolve(
        &self,
        secret: &str,
        agent_recovery: Option<&str>,
    ) -> Result<Arc<Identity>, ResolveError> {
        if !self.enabled {
            return Ok(self.unrestricted.clone());
        }
        let secret = if secret.is_empty() {
            ANONYMOUS_SECRET
        } else {
            secret
        };
        if agent_recovery == Some(secret) {
            return Ok(Arc::new(self.agent_recovery_identity()));
        }
        let now = crate::clock::now_ms();
        let generation = {
            let mut cache = self.cache.lock().unwrap();
            let generation = cache.current(&self.store);
            if let Some(found) = cache.by_secret.get(secret) {
                return match &found.token {
                    Some(t) if t.is_expired(now) => Err(ResolveError::NotFound),
                    _ => Ok(found.clone()),
                };
            }
            generation
        };
        let r = self.store.read()?;
        let token = acl::token_by_secret(&r, secret)?
            .filter(|t| !t.is_expired(now))
            .ok_or(ResolveError::NotFound)?;
        let policies = self.policies_of(&r, &token)?;
        drop(r);
        let identity = Arc::new(Identity {
            accessor_id: token.accessor_id.clone(),
            authorizer: Authorizer::new(&policies, self.default_policy),
            token: Some(token),
        });
        let mut cache = self.cache.lock().unwrap();
        // Only a read made under the still unfired watch saw the ACL tables as they are.
        if cache.current(&self.store) == generation {
            cache.by_secret.insert(secret.to_string(), identity.clone());
        }
        Ok(identity)
    }

    /// What the agent recovery token may do: anything with this agent, read the nodes
    /// (Consul's `agentRecoveryAuthorizer`), whatever the default policy.
    fn agent_recovery_identity(&self) -> Identity {
        let rules = format!(
            "agent {:?} {{\n  policy = \"write\"\n}}\nnode_prefix \"\" {{\n  policy = \"read\"\n}}",
            self.node_name
        );
        let policy = Policy::parse(&rules).expect("the agent recovery rules parse");
        Identity {
            accessor_id: AGENT_RECOVERY_ACCESSOR.into(),
            token: None,
            authorizer: Authorizer::new(&[policy], DefaultPolicy::Deny),
        }
    }

    /// Every policy the token's grants and roles bring, for this datacenter.
    fn policies_of(&self, r: &impl Readable, token: &AclToken) -> Result<Vec<Policy>, StoreError> {
        let mut out = Vec::new();
        if let Some(legacy) = &token.legacy {
            match Policy::parse(&legacy.rules) {
                Ok(p) => out.push(p),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring legacy token rules that do not parse")
                }
            }
        }
        self.add_grants(r, &token.grants, &mut out)?;
        for link in &token.roles {
            if let Some(role) = acl::role(r, &link.id)? {
                self.add_grants(r, &role.grants, &mut out)?;
            }
        }
        Ok(out)
    }

    fn add_grants(
        &self,
        r: &impl Readable,
        grants: &Grants,
        out: &mut Vec<Policy>,
    ) -> Result<(), StoreError> {
        let here = |dcs: &[String]| dcs.is_empty() || dcs.contains(&self.datacenter);
        let mut push = |rules: &str, what: &str| match Policy::parse(rules) {
            Ok(p) => out.push(p),
            // Stored rules were checked when written; one that no longer parses (a newer
            // writer's syntax) grants nothing rather than failing every request.
            Err(e) => tracing::warn!(error = %e, "ignoring ACL rules of {what} that do not parse"),
        };
        for link in &grants.policies {
            if let Some(p) = acl::policy(r, &link.id)? {
                if here(&p.datacenters) {
                    push(&p.rules, &format!("policy {}", p.id));
                }
            }
        }
        for s in grants
            .service_identities
            .iter()
            .filter(|s| here(&s.datacenters))
        {
            push(
                &service_identity_rules(&s.service_name),
                "a service identity",
            );
        }
        for n in grants
            .node_identities
            .iter()
            .filter(|n| n.datacenter == self.datacenter)
        {
            push(&node_identity_rules(&n.node_name), "a node identity");
        }
        for t in grants
            .templated_policies
            .iter()
            .filter(|t| here(&t.datacenters))
        {
            let variables = t.name.clone().map(|name| TemplateVariables { name });
            let rendered = crate::acl::templated::TemplatedPolicy::by_name(&t.template_name)
                .and_then(|template| template.render(variables.as_ref()));
            match rendered {
                Ok(rules) => push(&rules, "a templated policy"),
                Err(e) => tracing::warn!(error = %e, "ignoring a templated policy"),
            }
        }
        Ok(())
    }
}
