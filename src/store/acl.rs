//! The ACL domain (Consul's `state/acl.go` with the checks of `consul/acl_endpoint.go` that
//! depend on stored state): tokens by accessor with an index by secret, policies and roles by
//! ID with an index by name, and the bootstrap marker.
//!
//! Everything a write must check against other records (unique names and secrets, links to
//! existing policies and roles, what may change on an update, the bootstrap rule) is checked
//! here, inside the write, so it sees the state the write lands on; a refusal is a
//! `StoreError::Rejected` with Consul's text, which the HTTP layer renders as Consul's 500.
//! IDs, secrets and creation and expiry times arrive decided; expiry is judged against the
//! entry's time (`tx.now_ms()`).
//!
//! Index and watch rules: reads report the index of the tables they read (tokens reads also
//! the policies' and roles', whose names they fill in) and watch those tables.

use super::error::{Result, StoreError};
use super::tables::{
    ACL_BOOTSTRAP, ACL_POLICIES, ACL_POLICY_NAMES, ACL_ROLES, ACL_ROLE_NAMES, ACL_TOKENS,
    ACL_TOKEN_SECRETS,
};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::acl::templated::{is_valid_identity_name, TemplateVariables, TemplatedPolicy};
use crate::types::acl::{
    anonymous_token, global_management_policy, is_uuid, AclPolicy, AclRole, AclToken, Grants, Link,
    ANONYMOUS_ID, GLOBAL_MANAGEMENT_ID,
};
use bincode::{Decode, Encode};

/// A name or secret index row: the ID of the record it points to.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct IdRef {
    pub id: String,
}

impl super::codec::Record for IdRef {
    const VERSION: u8 = 1;
}

/// The bootstrap marker: the index the last bootstrap happened at (Consul's
/// `acl-token-bootstrap` index entry), which a reset must name.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Bootstrap {
    pub index: u64,
}

impl super::codec::Record for Bootstrap {
    const VERSION: u8 = 1;
}

const BOOTSTRAP_KEY: &str = "bootstrap";

pub(super) fn rejected(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(message.into())
}

/// The last write to any ACL table: the index of ACL reads.
pub fn index(r: &impl Readable) -> Result<u64> {
    let mut max = 0;
    for table in [ACL_TOKENS.name, ACL_POLICIES.name, ACL_ROLES.name] {
        max = max.max(r.table_index(table)?);
    }
    Ok(max)
}

/// Watches every ACL table (blocking ACL reads, the resolver's cache).
pub fn watch_all(ws: &mut WatchSet) {
    ws.table(ACL_TOKENS.name);
    ws.table(ACL_POLICIES.name);
    ws.table(ACL_ROLES.name);
}

// ---- reads ----------------------------------------------------------------------------

/// Fills in the names of linked policies or roles (`T`), dropping links to deleted ones
/// (Consul's `fixupTokenPolicyLinks` and friends).
fn fill_links<T: Named>(r: &impl Readable, links: &mut Vec<Link>) -> Result<()> {
    let mut kept = Vec::with_capacity(links.len());
    for mut link in links.drain(..) {
        if let Some(record) = r.get(T::RECORDS, &link.id)? {
            link.name = record.name().to_string();
            kept.push(link);
        }
    }
    *links = kept;
    Ok(())
}

fn filled_token(r: &impl Readable, mut token: AclToken) -> Result<AclToken> {
    fill_links::<AclPolicy>(r, &mut token.grants.policies)?;
    fill_links::<AclRole>(r, &mut token.roles)?;
    Ok(token)
}

fn filled_role(r: &impl Readable, mut role: AclRole) -> Result<AclRole> {
    fill_links::<AclPolicy>(r, &mut role.grants.policies)?;
    Ok(role)
}

/// A token by accessor, with link names, without watching.
pub fn token(r: &impl Readable, accessor: &str) -> Result<Option<AclToken>> {
    r.get(ACL_TOKENS, accessor)?
        .map(|t| filled_token(r, t))
        .transpose()
}

/// A token by secret, with link names, without watching (the resolver's lookup).
pub fn token_by_secret(r: &impl Readable, secret: &str) -> Result<Option<AclToken>> {
    match r.get(ACL_TOKEN_SECRETS, secret)? {
        Some(link) => token(r, &link.id),
        None => Ok(None),
    }
}

/// `GET /v1/acl/token/<accessor>`.
pub fn get_token(r: &ReadTx, ws: &mut WatchSet, accessor: &str) -> Result<(u64, Option<AclToken>)> {
    watch_all(ws);
    Ok((index(r)?, token(r, accessor)?))
}

/// What `GET /v1/acl/tokens` lists: tokens linking a policy or a role (by ID), or created by
/// an auth method's logins; `None` for no condition.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenFilter<'a> {
    pub policy: Option<&'a str>,
    pub role: Option<&'a str>,
    pub auth_method: Option<&'a str>,
}

/// `GET /v1/acl/tokens`, only the tokens `filter` keeps.
pub fn list_tokens(
    r: &ReadTx,
    ws: &mut WatchSet,
    filter: TokenFilter,
) -> Result<(u64, Vec<AclToken>)> {
    let TokenFilter {
        policy,
        role,
        auth_method,
    } = filter;
    watch_all(ws);
    let mut out = Vec::new();
    for (_, t) in r.scan_prefix(ACL_TOKENS, "")? {
        let t = filled_token(r, t)?;
        if policy.is_some_and(|p| !t.grants.policies.iter().any(|l| l.id == p))
            || role.is_some_and(|id| !t.roles.iter().any(|l| l.id == id))
            || auth_method.is_some_and(|m| t.auth_method != m)
        {
            continue;
        }
        out.push(t);
    }
    Ok((index(r)?, out))
}

pub fn policy(r: &impl Readable, id: &str) -> Result<Option<AclPolicy>> {
    r.get(ACL_POLICIES, id)
}

/// A policy by name, without watching.
pub fn policy_by_name(r: &impl Readable, name: &str) -> Result<Option<AclPolicy>> {
    match r.get(ACL_POLICY_NAMES, name)? {
        Some(link) => policy(r, &link.id),
        None => Ok(None),
    }
}

/// `GET /v1/acl/policy/<id>` or, with `by_name`, `/v1/acl/policy/name/<name>`.
pub fn get_policy(
    r: &ReadTx,
    ws: &mut WatchSet,
    key: &str,
    by_name: bool,
) -> Result<(u64, Option<AclPolicy>)> {
    ws.table(ACL_POLICIES.name);
    let found = if by_name {
        policy_by_name(r, key)?
    } else {
        policy(r, key)?
    };
    Ok((r.table_index(ACL_POLICIES.name)?, found))
}

pub fn list_policies(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<AclPolicy>)> {
    ws.table(ACL_POLICIES.name);
    let all = r.scan_prefix(ACL_POLICIES, "")?.into_iter().map(|(_, p)| p);
    Ok((r.table_index(ACL_POLICIES.name)?, all.collect()))
}

/// A role by ID, with link names, without watching.
pub fn role(r: &impl Readable, id: &str) -> Result<Option<AclRole>> {
    r.get(ACL_ROLES, id)?
        .map(|role| filled_role(r, role))
        .transpose()
}

/// A role by name, with link names, without watching.
pub fn role_by_name(r: &impl Readable, name: &str) -> Result<Option<AclRole>> {
    match r.get(ACL_ROLE_NAMES, name)? {
        Some(link) => role(r, &link.id),
        None => Ok(None),
    }
}

/// `GET /v1/acl/role/<id>` or, with `by_name`, `/v1/acl/role/name/<name>`.
pub fn get_role(
    r: &ReadTx,
    ws: &mut WatchSet,
    key: &str,
    by_name: bool,
) -> Result<(u64, Option<AclRole>)> {
    ws.table(ACL_ROLES.name);
    ws.table(ACL_POLICIES.name);
    let found = if by_name {
        role_by_name(r, key)?
    } else {
        role(r, key)?
    };
    Ok((index(r)?, found))
}

/// `GET /v1/acl/roles`, optionally only those linking a policy (by ID).
pub fn list_roles(
    r: &ReadTx,
    ws: &mut WatchSet,
    policy: Option<&str>,
) -> Result<(u64, Vec<AclRole>)> {
    ws.table(ACL_ROLES.name);
    ws.table(ACL_POLICIES.name);
    let mut out = Vec::new();
    for (_, role) in r.scan_prefix(ACL_ROLES, "")? {
        let role = filled_role(r, role)?;
        if policy.is_none_or(|p| role.grants.policies.iter().any(|l| l.id == p)) {
            out.push(role);
        }
    }
    Ok((index(r)?, out))
}

/// The index of the last bootstrap, if any.
pub fn bootstrapped_at(r: &impl Readable) -> Result<Option<u64>> {
    Ok(r.get(ACL_BOOTSTRAP, BOOTSTRAP_KEY)?.map(|b| b.index))
}

// ---- writes ---------------------------------------------------------------------------

/// Whether a token write creates a token or updates the one with its accessor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum TokenWrite {
    Create,
    Update,
}

/// `PUT /v1/acl/token` (create) and `PUT /v1/acl/token/<accessor>` (update). On create the
/// accessor, secret, creation and expiry times are the new token's; on update an empty secret,
/// auth method and expiry mean "keep", and the creation time is kept (Consul's `TokenWriter`).
pub fn set_token(tx: &mut WriteTx, mut token: AclToken, mode: TokenWrite) -> Result<AclToken> {
    let existing = tx.get(ACL_TOKENS, &token.accessor_id)?;
    match mode {
        TokenWrite::Create => {
            let secret_taken = |tx: &WriteTx, id: &str| -> Result<bool> {
                Ok(tx.get(ACL_TOKEN_SECRETS, id)?.is_some())
            };
            if existing.is_some() || secret_taken(tx, &token.accessor_id)? {
                return Err(rejected("Invalid Token: AccessorID is already in use"));
            }
            if secret_taken(tx, &token.secret_id)?
                || tx.get(ACL_TOKENS, &token.secret_id)?.is_some()
            {
                return Err(rejected("Invalid Token: SecretID is already in use"));
            }
        }
        TokenWrite::Update => {
            let Some(existing) = existing.filter(|t| !t.is_expired(tx.now_ms())) else {
                return Err(rejected(format!(
                    "Cannot find token {:?}",
                    token.accessor_id
                )));
            };
            if token.secret_id.is_empty() {
                token.secret_id = existing.secret_id.clone();
            } else if token.secret_id != existing.secret_id {
                return Err(rejected("Changing a token's SecretID is not permitted"));
            }
            if token.local != existing.local {
                return Err(rejected(format!(
                    "Cannot toggle local mode of {}",
                    token.accessor_id
                )));
            }
            match (token.expiration_ms, existing.expiration_ms) {
                (None, kept) => token.expiration_ms = kept,
                (Some(new), Some(old)) if new == old => {}
                _ => {
                    return Err(rejected(format!(
                        "Cannot change expiration time of {}",
                        token.accessor_id
                    )))
                }
            }
            if token.auth_method.is_empty() {
                token.auth_method = existing.auth_method.clone();
            } else if token.auth_method != existing.auth_method {
                return Err(rejected(format!(
                    "Cannot change AuthMethod of {}",
                    token.accessor_id
                )));
            }
            token.create_ms = existing.create_ms;
        }
    }
    resolve_links::<AclPolicy>(tx, &mut token.grants.policies, true)?;
    resolve_links::<AclRole>(tx, &mut token.roles, true)?;
    check_identities(&token.grants, "token", token.local)?;
    if let Some(legacy) = &token.legacy {
        crate::acl::Policy::parse(&legacy.rules).map_err(|e| rejected(e.to_string()))?;
    }
    token.hash = token.content_hash();
    put_token(tx, token)
}

/// Stores a checked token with its indexes and secret row.
fn put_token(tx: &mut WriteTx, token: AclToken) -> Result<AclToken> {
    let index = tx.index();
    let existing = tx.get(ACL_TOKENS, &token.accessor_id)?;
    let token = AclToken {
        create_index: existing.as_ref().map_or(index, |t| t.create_index),
        modify_index: index,
        ..token
    };
    tx.put(ACL_TOKENS, &token.accessor_id, &token)?;
    let link = IdRef {
        id: token.accessor_id.clone(),
    };
    tx.put(ACL_TOKEN_SECRETS, &token.secret_id, &link)?;
    filled_token(&*tx, token)
}

/// Resolves links to policies or roles (`T`) given by name to IDs, checks links given by ID
/// exist (with `check_ids`), keeps IDs only and drops duplicates (the same policy twice
/// counts once). Roles may link policies by an ID that does not exist: Consul checks IDs for
/// tokens only.
fn resolve_links<T: Named>(tx: &WriteTx, links: &mut Vec<Link>, check_ids: bool) -> Result<()> {
    let kind = T::LABEL.to_lowercase();
    let mut out: Vec<Link> = Vec::new();
    for link in links.drain(..) {
        let id = if link.id.is_empty() {
            match tx.get(T::NAMES, &link.name)? {
                Some(named) => named.id,
                None => {
                    return Err(rejected(format!(
                        "No such ACL {kind} with name {:?}",
                        link.name
                    )))
                }
            }
        } else {
            if check_ids && tx.get(T::RECORDS, &link.id)?.is_none() {
                return Err(rejected(format!(
                    "No such ACL {kind} with ID {:?}",
                    link.id
                )));
            }
            link.id
        };
        if !out.iter().any(|l| l.id == id) {
            out.push(Link {
                id,
                name: String::new(),
            });
        }
    }
    *links = out;
    Ok(())
}

/// Service and node identities and templated policies, as Consul checks them for a token or
/// role (`owner`).
fn check_identities(grants: &Grants, owner: &str, local: bool) -> Result<()> {
    for s in &grants.service_identities {
        if s.service_name.is_empty() {
            return Err(rejected(format!(
                "Service identity is missing the service name field on this {owner}"
            )));
        }
        if local && !s.datacenters.is_empty() {
            return Err(rejected(format!(
                "Service identity {:?} cannot specify a list of datacenters on a local token",
                s.service_name
            )));
        }
        if !is_valid_identity_name(&s.service_name) {
            return Err(rejected(format!(
                "Service identity {:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed",
                s.service_name
            )));
        }
    }
    for n in &grants.node_identities {
        if n.node_name.is_empty() {
            return Err(rejected(format!(
                "Node identity is missing the node name field on this {owner}"
            )));
        }
        if n.datacenter.is_empty() {
            return Err(rejected(format!(
                "Node identity is missing the datacenter field on this {owner}"
            )));
        }
        if !is_valid_identity_name(&n.node_name) {
            return Err(rejected(
                "Node identity has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed",
            ));
        }
    }
    for t in &grants.templated_policies {
        let template =
            TemplatedPolicy::by_name(&t.template_name).map_err(|e| rejected(e.to_string()))?;
        let variables = t.name.clone().map(|name| TemplateVariables { name });
        template
            .validate(variables.as_ref())
            .map_err(|e| rejected(e.to_string()))?;
    }
    Ok(())
}

/// `DELETE /v1/acl/token/<accessor>`: deleting a missing token succeeds; the anonymous token
/// stays.
pub fn delete_token(tx: &mut WriteTx, accessor: &str) -> Result<()> {
    if accessor == ANONYMOUS_ID {
        return Err(rejected(
            "Delete operation not permitted on the anonymous token",
        ));
    }
    if let Some(token) = tx.delete(ACL_TOKENS, accessor)? {
        tx.delete(ACL_TOKEN_SECRETS, &token.secret_id)?;
    }
    Ok(())
}

/// The accessors of the tokens expired at `now_ms`.
pub fn expired_tokens(r: &impl Readable, now_ms: u64) -> Result<Vec<String>> {
    Ok(r.scan_prefix(ACL_TOKENS, "")?
        .into_iter()
        .filter(|(_, t)| t.is_expired(now_ms))
        .map(|(accessor, _)| accessor)
        .collect())
}

/// Removes the tokens expired at the entry's time; returns how many.
pub fn reap_expired_tokens(tx: &mut WriteTx) -> Result<usize> {
    let expired = expired_tokens(&*tx, tx.now_ms())?;
    for accessor in &expired {
        delete_token(tx, accessor)?;
    }
    Ok(expired.len())
}

/// A record with a unique name beside its ID (policies and roles), kept findable by name in a
/// names table.
trait Named: super::codec::Record {
    /// How Consul's messages name the kind (`Policy`, `Role`).
    const LABEL: &'static str;
    /// The longest name Consul accepts for the kind.
    const NAME_MAX: usize;
    const RECORDS: super::tables::Table<Self>;
    const NAMES: super::tables::Table<IdRef>;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// The record with these indexes.
    fn indexed(self, create_index: u64, modify_index: u64) -> Self;
    fn create_index(&self) -> u64;
}

impl Named for AclPolicy {
    const LABEL: &'static str = "Policy";
    const NAME_MAX: usize = crate::acl::POLICY_NAME_MAX;
    const RECORDS: super::tables::Table<Self> = ACL_POLICIES;
    const NAMES: super::tables::Table<IdRef> = ACL_POLICY_NAMES;
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn indexed(self, create_index: u64, modify_index: u64) -> Self {
        AclPolicy {
            create_index,
            modify_index,
            ..self
        }
    }
    fn create_index(&self) -> u64 {
        self.create_index
    }
}

impl Named for AclRole {
    const LABEL: &'static str = "Role";
    const NAME_MAX: usize = crate::acl::ROLE_NAME_MAX;
    const RECORDS: super::tables::Table<Self> = ACL_ROLES;
    const NAMES: super::tables::Table<IdRef> = ACL_ROLE_NAMES;
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn indexed(self, create_index: u64, modify_index: u64) -> Self {
        AclRole {
            create_index,
            modify_index,
            ..self
        }
    }
    fn create_index(&self) -> u64 {
        self.create_index
    }
}

/// Checks a write of `record` as Consul's endpoints do (a valid name, unique among its kind;
/// an update names an existing record by a valid UUID); returns the record it replaces.
fn checked_write<T: Named>(tx: &WriteTx, record: &T, create: bool) -> Result<Option<T>> {
    let (label, lower) = (T::LABEL, T::LABEL.to_lowercase());
    if record.name().is_empty() {
        return Err(rejected(format!("Invalid {label}: no Name is set")));
    }
    if !crate::acl::is_valid_name(record.name(), T::NAME_MAX) {
        return Err(rejected(format!(
            "Invalid {label}: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
        )));
    }
    let name_owner = tx.get(T::NAMES, record.name())?.map(|l| l.id);
    if create {
        if name_owner.is_some() {
            return Err(rejected(format!(
                "Invalid {label}: A {label} with Name {:?} already exists",
                record.name()
            )));
        }
        return Ok(None);
    }
    if !is_uuid(record.id()) {
        return Err(rejected(format!("{label} ID invalid UUID")));
    }
    let Some(existing) = tx.get(T::RECORDS, record.id())? else {
        return Err(rejected(format!("cannot find {lower} {}", record.id())));
    };
    if name_owner.is_some_and(|owner| owner != record.id()) {
        return Err(rejected(format!(
            "Invalid {label}: A {lower} with name {:?} already exists",
            record.name()
        )));
    }
    Ok(Some(existing))
}

/// Stores `record` at this write's index (keeping `existing`'s creation index) and moves its
/// name row.
fn put_named<T: Named>(tx: &mut WriteTx, record: T, existing: Option<T>) -> Result<T> {
    let index = tx.index();
    if let Some(old) = &existing {
        if old.name() != record.name() {
            tx.delete(T::NAMES, old.name())?;
        }
    }
    let record = record.indexed(existing.map_or(index, |r| r.create_index()), index);
    tx.put(T::RECORDS, record.id(), &record)?;
    let link = IdRef {
        id: record.id().to_string(),
    };
    tx.put(T::NAMES, record.name(), &link)?;
    Ok(record)
}

/// Deletes a record and its name row; deleting a missing one succeeds.
fn delete_named<T: Named>(tx: &mut WriteTx, id: &str) -> Result<()> {
    if let Some(record) = tx.delete(T::RECORDS, id)? {
        tx.delete(T::NAMES, record.name())?;
    }
    Ok(())
}

/// `PUT /v1/acl/policy` (create, with its new ID) and `PUT /v1/acl/policy/<id>` (update).
pub fn set_policy(tx: &mut WriteTx, mut policy: AclPolicy, create: bool) -> Result<AclPolicy> {
    let existing = checked_write(&*tx, &policy, create)?;
    if let Some(existing) = existing
        .as_ref()
        .filter(|_| policy.id == GLOBAL_MANAGEMENT_ID)
    {
        if !policy.datacenters.is_empty() {
            return Err(rejected(
                "Changing the Datacenters of the builtin global-management policy is not permitted",
            ));
        }
        if policy.rules != existing.rules {
            return Err(rejected(
                "Changing the Rules for the builtin global-management policy is not permitted",
            ));
        }
    }
    crate::acl::Policy::parse(&policy.rules).map_err(|e| rejected(e.to_string()))?;
    policy.hash = policy.content_hash();
    put_named(tx, policy, existing)
}

/// `DELETE /v1/acl/policy/<id>`: deleting a missing policy succeeds; the builtin one stays.
/// Links to a deleted policy are dropped when read.
pub fn delete_policy(tx: &mut WriteTx, id: &str) -> Result<()> {
    if id == GLOBAL_MANAGEMENT_ID {
        return Err(rejected(
            "Delete operation not permitted on the builtin global-management policy",
        ));
    }
    delete_named::<AclPolicy>(tx, id)
}

/// `PUT /v1/acl/role` (create, with its new ID) and `PUT /v1/acl/role/<id>` (update).
pub fn set_role(tx: &mut WriteTx, mut role: AclRole, create: bool) -> Result<AclRole> {
    let existing = checked_write(&*tx, &role, create)?;
    resolve_links::<AclPolicy>(tx, &mut role.grants.policies, false)?;
    check_identities(&role.grants, "role", false)?;
    role.hash = role.content_hash();
    let role = put_named(tx, role, existing)?;
    filled_role(&*tx, role)
}

/// `DELETE /v1/acl/role/<id>`: deleting a missing role succeeds.
pub fn delete_role(tx: &mut WriteTx, id: &str) -> Result<()> {
    delete_named::<AclRole>(tx, id)
}

/// `PUT /v1/acl/bootstrap`: stores the management token once. After a bootstrap, another one
/// needs `reset_index` equal to the last bootstrap's index (the operator wrote it to the data
/// dir's `acl-bootstrap-reset` file).
pub fn bootstrap(tx: &mut WriteTx, token: AclToken, reset_index: Option<u64>) -> Result<AclToken> {
    if let Some(done_at) = bootstrapped_at(&*tx)? {
        match reset_index {
            None => {
                return Err(rejected(format!(
                    "ACL bootstrap no longer allowed (reset index: {done_at})"
                )))
            }
            Some(given) if given != done_at => {
                return Err(rejected(format!(
                    "Invalid bootstrap reset index (specified {given}, reset index: {done_at})"
                )))
            }
            Some(_) => {}
        }
    }
    let marker = Bootstrap { index: tx.index() };
    tx.put(ACL_BOOTSTRAP, BOOTSTRAP_KEY, &marker)?;
    put_token(tx, token)
}

/// What a leader with ACLs enabled makes sure of at every start (Consul's `initializeACLs`):
/// the builtin policy and the anonymous token exist, and so does the configured initial
/// management token, which bootstraps the ACL system when nothing did yet.
pub fn initialize(tx: &mut WriteTx, initial_management: Option<AclToken>) -> Result<()> {
    if tx.get(ACL_POLICIES, GLOBAL_MANAGEMENT_ID)?.is_none() {
        put_named(tx, global_management_policy(), None)?;
    }
    if tx.get(ACL_TOKENS, ANONYMOUS_ID)?.is_none() {
        put_token(tx, anonymous_token(tx.now_ms()))?;
    }
    if let Some(token) = initial_management {
        if tx.get(ACL_TOKEN_SECRETS, &token.secret_id)?.is_none() {
            if bootstrapped_at(&*tx)?.is_none() {
                bootstrap(tx, token, None)?;
            } else {
                put_token(tx, token)?;
            }
        }
    }
    Ok(())
}
