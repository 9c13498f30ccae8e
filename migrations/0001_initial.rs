//! Schema 1: the global index, per-table indexes and the KV table.

use crate::store::tables::{KV, META, TABLE_INDEX};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(META)?;
    txn.open_table(TABLE_INDEX)?;
    txn.open_table(KV.def())?;
    Ok(())
}
