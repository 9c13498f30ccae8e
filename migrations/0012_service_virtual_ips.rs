//! Schema 12: service virtual IPs. Connect services registered before it get theirs when
//! next registered, as in a Consul cluster upgraded to a version with virtual IPs.

use crate::store::tables::SERVICE_VIRTUAL_IPS;
use crate::store::Result;
use redb::WriteTransaction;

pub fn apply(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(SERVICE_VIRTUAL_IPS.def())?;
    Ok(())
}
