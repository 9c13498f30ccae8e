//! Schema 7: network coordinates (`/v1/coordinate/*`) and the autopilot configuration, kept in
//! the store instead of memory.

use crate::store::tables::{AUTOPILOT, COORDINATES};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(COORDINATES.def())?;
    txn.open_table(AUTOPILOT.def())?;
    Ok(())
}
