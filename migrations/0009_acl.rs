//! Schema 9: the ACL system's tokens, policies and roles (with their secret and name indexes)
//! and the bootstrap marker.

use crate::store::tables::{
    ACL_BOOTSTRAP, ACL_POLICIES, ACL_POLICY_NAMES, ACL_ROLES, ACL_ROLE_NAMES, ACL_TOKENS,
    ACL_TOKEN_SECRETS,
};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    for table in [
        ACL_TOKENS.def(),
        ACL_TOKEN_SECRETS.def(),
        ACL_POLICIES.def(),
        ACL_POLICY_NAMES.def(),
        ACL_ROLES.def(),
        ACL_ROLE_NAMES.def(),
        ACL_BOOTSTRAP.def(),
    ] {
        txn.open_table(table)?;
    }
    Ok(())
}
