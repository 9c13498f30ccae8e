//! Schema 3: the catalog (nodes, services, checks) and its lookup tables.

use crate::store::tables::{
    CATALOG_INDEXES, CHECKS, CONNECT_NAMES, NODES, SERVICES, SERVICE_CHECKS, SERVICE_NAMES,
};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(NODES.def())?;
    txn.open_table(SERVICES.def())?;
    txn.open_table(SERVICE_NAMES.def())?;
    txn.open_table(CONNECT_NAMES.def())?;
    txn.open_table(CHECKS.def())?;
    txn.open_table(SERVICE_CHECKS.def())?;
    txn.open_table(CATALOG_INDEXES.def())?;
    Ok(())
}
