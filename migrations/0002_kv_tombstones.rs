//! Schema 2: KV tombstones. Schema 1 kept no record of deleted keys, so a prefix's index could
//! go backwards after a delete; the table starts empty and the existing `kv` rows stay as they are.

use crate::store::tables::KV_TOMBSTONES;
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(KV_TOMBSTONES.def())?;
    Ok(())
}
