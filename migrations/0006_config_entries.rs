//! Schema 6: config entries (`/v1/config`), one table keyed by kind and name.

use crate::store::tables::CONFIG_ENTRIES;
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(CONFIG_ENTRIES.def())?;
    Ok(())
}
