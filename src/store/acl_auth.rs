//! The ACL domain's auth methods (by name) and binding rules (by ID): Consul's
//! `state/acl.go` for `acl-auth-methods` and `acl-binding-rules`.
//!
//! Checked here, inside the write, is what depends on stored state: an auth method's type is
//! immutable, a binding rule names an existing auth method (whose name it keeps), and an
//! update names an existing record. The type's configuration, a rule's selector and bind
//! name are checked before the command is built (they need the type's validator, which may
//! fetch remote keys). Deleting an auth method deletes its binding rules and the tokens its
//! logins created, as Consul's `aclAuthMethodDeleteTxn` does.
//!
//! Index and watch rules: each read reports and watches the table it reads.

use super::acl::rejected;
use super::error::Result;
use super::tables::{ACL_AUTH_METHODS, ACL_BINDING_RULES, ACL_TOKENS};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::acl::{is_uuid, AclAuthMethod, AclBindingRule};

// ---- auth methods -----------------------------------------------------------------------

pub fn auth_method(r: &impl Readable, name: &str) -> Result<Option<AclAuthMethod>> {
    r.get(ACL_AUTH_METHODS, name)
}

/// `GET /v1/acl/auth-method/<name>`.
pub fn get_auth_method(
    r: &ReadTx,
    ws: &mut WatchSet,
    name: &str,
) -> Result<(u64, Option<AclAuthMethod>)> {
    ws.table(ACL_AUTH_METHODS.name);
    Ok((r.table_index(ACL_AUTH_METHODS.name)?, auth_method(r, name)?))
}

/// `GET /v1/acl/auth-methods`, by name.
pub fn list_auth_methods(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<AclAuthMethod>)> {
    ws.table(ACL_AUTH_METHODS.name);
    let all = r
        .scan_prefix(ACL_AUTH_METHODS, "")?
        .into_iter()
        .map(|(_, m)| m);
    Ok((r.table_index(ACL_AUTH_METHODS.name)?, all.collect()))
}

/// `PUT /v1/acl/auth-method[/<name>]`: creates or replaces the method of that name; an
/// empty type keeps the stored one.
pub fn set_auth_method(tx: &mut WriteTx, mut method: AclAuthMethod) -> Result<AclAuthMethod> {
    let existing = tx.get(ACL_AUTH_METHODS, &method.name)?;
    if let Some(existing) = &existing {
        if method.method_type.is_empty() {
            method.method_type = existing.method_type.clone();
        } else if method.method_type != existing.method_type {
            return Err(rejected("the Type field of an Auth Method is immutable"));
        }
    }
    if method.method_type.is_empty() {
        return Err(rejected(crate::acl::authmethod::unknown_type_message()));
    }
    let index = tx.index();
    method.create_index = existing.map_or(index, |m| m.create_index);
    method.modify_index = index;
    tx.put(ACL_AUTH_METHODS, &method.name, &method)?;
    Ok(method)
}

/// `DELETE /v1/acl/auth-method/<name>`: the method, its binding rules and its logins'
/// tokens; deleting a missing method succeeds.
pub fn delete_auth_method(tx: &mut WriteTx, name: &str) -> Result<()> {
    if tx.delete(ACL_AUTH_METHODS, name)?.is_none() {
        return Ok(());
    }
    for (id, rule) in tx.scan_prefix(ACL_BINDING_RULES, "")? {
        if rule.auth_method == name {
            tx.delete(ACL_BINDING_RULES, &id)?;
        }
    }
    for (accessor, token) in tx.scan_prefix(ACL_TOKENS, "")? {
        if token.auth_method == name {
            super::acl::delete_token(tx, &accessor)?;
        }
    }
    Ok(())
}

// ---- binding rules ------------------------------------------------------------------------

/// A binding rule by ID, without watching.
pub fn binding_rule(r: &impl Readable, id: &str) -> Result<Option<AclBindingRule>> {
    r.get(ACL_BINDING_RULES, id)
}

/// `GET /v1/acl/binding-rule/<id>`.
pub fn get_binding_rule(
    r: &ReadTx,
    ws: &mut WatchSet,
    id: &str,
) -> Result<(u64, Option<AclBindingRule>)> {
    ws.table(ACL_BINDING_RULES.name);
    Ok((r.table_index(ACL_BINDING_RULES.name)?, binding_rule(r, id)?))
}

/// The binding rules of one auth method, or all of them, by ID.
pub fn binding_rules(r: &impl Readable, auth_method: Option<&str>) -> Result<Vec<AclBindingRule>> {
    Ok(r.scan_prefix(ACL_BINDING_RULES, "")?
        .into_iter()
        .map(|(_, rule)| rule)
        .filter(|rule| auth_method.is_none_or(|m| rule.auth_method == m))
        .collect())
}

/// `GET /v1/acl/binding-rules[?authmethod=<name>]`.
pub fn list_binding_rules(
    r: &ReadTx,
    ws: &mut WatchSet,
    auth_method: Option<&str>,
) -> Result<(u64, Vec<AclBindingRule>)> {
    ws.table(ACL_BINDING_RULES.name);
    Ok((
        r.table_index(ACL_BINDING_RULES.name)?,
        binding_rules(r, auth_method)?,
    ))
}

/// `PUT /v1/acl/binding-rule` (create, its ID decided) and `/v1/acl/binding-rule/<id>`
/// (update: an empty auth method keeps the stored one, another one is refused).
pub fn set_binding_rule(
    tx: &mut WriteTx,
    mut rule: AclBindingRule,
    create: bool,
) -> Result<AclBindingRule> {
    let existing = if create {
        None
    } else {
        if !is_uuid(&rule.id) {
            return Err(rejected("Binding Rule ID invalid UUID"));
        }
        let Some(existing) = tx.get(ACL_BINDING_RULES, &rule.id)? else {
            return Err(rejected(format!("cannot find binding rule {}", rule.id)));
        };
        if rule.auth_method.is_empty() {
            rule.auth_method = existing.auth_method.clone();
        } else if rule.auth_method != existing.auth_method {
            return Err(rejected(
                "the AuthMethod field of an Binding Rule is immutable",
            ));
        }
        Some(existing)
    };
    if rule.auth_method.is_empty() {
        return Err(rejected("Invalid Binding Rule: no AuthMethod is set"));
    }
    if tx.get(ACL_AUTH_METHODS, &rule.auth_method)?.is_none() {
        return Err(rejected(format!(
            "cannot find auth method with name {:?}",
            rule.auth_method
        )));
    }
    let index = tx.index();
    rule.create_index = existing.map_or(index, |r| r.create_index);
    rule.modify_index = index;
    tx.put(ACL_BINDING_RULES, &rule.id, &rule)?;
    Ok(rule)
}

/// `DELETE /v1/acl/binding-rule/<id>`: deleting a missing rule succeeds.
pub fn delete_binding_rule(tx: &mut WriteTx, id: &str) -> Result<()> {
    tx.delete(ACL_BINDING_RULES, id)?;
    Ok(())
}
