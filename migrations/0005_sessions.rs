//! Schema 5: sessions, what they are tied to, the locks they hold and lock-delays.

use crate::store::tables::{
    KV_LOCK_DELAYS, SESSIONS, SESSION_CHECKS, SESSION_LOCKS, SESSION_NODES,
};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SESSIONS.def())?;
    txn.open_table(SESSION_CHECKS.def())?;
    txn.open_table(SESSION_NODES.def())?;
    txn.open_table(SESSION_LOCKS.def())?;
    txn.open_table(KV_LOCK_DELAYS.def())?;
    Ok(())
}
