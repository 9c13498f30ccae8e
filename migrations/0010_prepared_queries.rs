//! Schema 10: prepared queries with their name, template and session indexes.

use crate::store::tables::{
    PREPARED_QUERIES, PREPARED_QUERY_NAMES, PREPARED_QUERY_SESSIONS, PREPARED_QUERY_TEMPLATES,
};
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    for table in [
        PREPARED_QUERIES.def(),
        PREPARED_QUERY_NAMES.def(),
        PREPARED_QUERY_TEMPLATES.def(),
        PREPARED_QUERY_SESSIONS.def(),
    ] {
        txn.open_table(table)?;
    }
    Ok(())
}
