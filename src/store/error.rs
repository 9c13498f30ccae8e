//! Errors of the store, one enum with a message a user (or the HTTP layer) can act on.

use thiserror::Error;

/// What a store operation can fail with. The HTTP layer maps these to Consul's status codes in
/// one place (`http::error`); nothing else inspects redb errors.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory is held by another running agent.
    #[error("data directory {0} is in use by another agent (its database is locked); stop that agent or use another -data-dir")]
    Locked(String),
    /// The file was written by a newer Legate whose schema this build does not know.
    #[error("data directory was written by schema version {found}, newer than this build's {supported}; upgrade legate")]
    SchemaTooNew { found: u64, supported: u64 },
    /// A stored record could not be decoded: the file is damaged or was altered.
    #[error("corrupt record in table {table} at key {key:?}: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },
    /// The data file failed redb's checks or holds a record that does not decode, found as
    /// the store opened: the agent does not start on a store it could not verify.
    #[error(
        "the data file {file} cannot be used: {reason}. Stop here rather than serve from it: \
             move the data dir aside and restore the last snapshot into a new one \
             (legate snapshot restore -data-dir DIR FILE)"
    )]
    Unverified { file: String, reason: String },
    /// A precondition of a write failed and the operation was rolled back (Txn's 409).
    #[error("transaction rolled back")]
    TxnAborted(Vec<crate::types::TxnError>),
    /// Bad input detected by the store itself (maps to 400).
    #[error("{0}")]
    Invalid(String),
    /// The current state refuses the operation (an unknown session, a node or check that is
    /// missing or critical): Consul reports these from its server as 500s, and clients such as
    /// Patroni recognise them by that status.
    #[error("{0}")]
    Rejected(String),
    /// A command was offered at a log position already applied (a replayed log).
    #[error("command at log index {log_index} already applied (store is at {applied})")]
    AlreadyApplied { log_index: u64, applied: u64 },
    /// The agent is shutting down and no longer accepts writes.
    #[error("store is closed")]
    Closed,
    /// An I/O or database fault (maps to 500).
    #[error("storage error: {0}")]
    Storage(String),
}

impl StoreError {
    pub(crate) fn storage(err: impl std::fmt::Display) -> Self {
        StoreError::Storage(err.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(err: $t) -> Self {
                StoreError::storage(err)
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError,
    redb::SetDurabilityError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
