//! Schema 4: the agent's own registrations (services, checks and their runner state).

use crate::store::tables::{AGENT_CHECKS, AGENT_SERVICES};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(AGENT_SERVICES.def())?;
    txn.open_table(AGENT_CHECKS.def())?;
    Ok(())
}
