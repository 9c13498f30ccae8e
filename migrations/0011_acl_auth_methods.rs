//! Schema 11: ACL auth methods and their binding rules. Tokens stored before it decode as
//! record version 1 (no auth method), so they need no rewrite.

use crate::store::tables::{ACL_AUTH_METHODS, ACL_BINDING_RULES};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(ACL_AUTH_METHODS.def())?;
    txn.open_table(ACL_BINDING_RULES.def())?;
    Ok(())
}
