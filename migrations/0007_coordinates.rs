//! Schema 7: network coordinates (`/v1/coordinate/*`), kept in the store instead of memory.

use crate::store::tables::COORDINATES;
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(COORDINATES.def())?;
    Ok(())
}
