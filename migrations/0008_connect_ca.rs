//! Schema 8: the Connect CA's configuration, roots and the agent's leaf certificates.

use crate::store::tables::{CA_CONFIG, CA_LEAVES, CA_ROOTS};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(CA_CONFIG.def())?;
    txn.open_table(CA_ROOTS.def())?;
    txn.open_table(CA_LEAVES.def())?;
    Ok(())
}
