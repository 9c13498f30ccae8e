//! Taking one committed batch back out of the file: for a batch whose commit reached the data
//! file but whose flush failed, and which was answered "not applied" once the file could not
//! decide in time (see `batch`). The record lives in memory while the agent runs and in
//! `DISCARD_FILE` beside the data file, so a start after a crash takes the batch out too
//! before serving anything.

use super::error::{Result, StoreError};
use super::tables::{self, META, META_APPLIED, META_INDEX, RECORD_TABLES, TABLE_INDEX};
use super::tx::{read_applied, read_global_index, Undo};
use bincode::{Decode, Encode};
use redb::{Database, Durability, ReadableDatabase};
use std::path::Path;

/// File name, in the data directory, of the rollback of a batch answered as not applied.
pub const DISCARD_FILE: &str = "legate.discard";

/// A batch's writes and bookkeeping, and what they replaced.
#[derive(Encode, Decode)]
pub(super) struct Rollback {
    /// The global index and log position the file shows when it holds the batch.
    after: (u64, u64),
    /// The global index and log position before it.
    before: (u64, u64),
    /// Every table's index before it.
    table_indexes: Vec<(String, u64)>,
    /// (table, key, previous row) for each write, oldest first.
    undo: Vec<(String, String, Option<Vec<u8>>)>,
}

impl Rollback {
    pub(super) fn new(
        after: (u64, u64),
        before: (u64, u64),
        table_indexes: impl Iterator<Item = (String, u64)>,
        undo: Vec<Undo>,
    ) -> Self {
        Rollback {
            after,
            before,
            table_indexes: table_indexes.collect(),
            undo: undo
                .into_iter()
                .map(|u| (u.table.to_string(), u.key, u.previous))
                .collect(),
        }
    }

    /// Whether `db` holds the batch: its last commit is the batch's.
    pub(super) fn held_by(&self, db: &Database) -> Result<bool> {
        let txn = db.begin_read()?;
        Ok((read_global_index(&txn)?, read_applied(&txn)?) == self.after)
    }

    /// Puts back, in one durable commit, every row the batch wrote and the indexes it moved.
    pub(super) fn apply_to(&self, db: &Database) -> Result<()> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        for (table, key, previous) in self.undo.iter().rev() {
            let name = RECORD_TABLES
                .iter()
                .find(|t| t.name == table)
                .map(|t| t.name)
                .ok_or_else(|| StoreError::Storage(format!("no record table {table}")))?;
            let mut t = txn.open_table(tables::raw(name))?;
            match previous {
                Some(bytes) => t.insert(key.as_str(), bytes.as_slice())?,
                None => t.remove(key.as_str())?,
            };
        }
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_INDEX, self.before.0)?;
            meta.insert(META_APPLIED, self.before.1)?;
            let mut indexes = txn.open_table(TABLE_INDEX)?;
            indexes.retain(|_, _| false)?;
            for (table, index) in &self.table_indexes {
                indexes.insert(table.as_str(), *index)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Writes the record to `path` durably: complete or not there at all.
    pub(super) fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let bytes = bincode::encode_to_vec(self, bincode::config::standard())
            .map_err(std::io::Error::other)?;
        let partial = path.with_extension("partial");
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        sync_parent(path)
    }

    fn load(path: &Path) -> Result<Option<Rollback>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Storage(format!("{}: {e}", path.display()))),
        };
        bincode::decode_from_slice(&bytes, bincode::config::standard())
            .map(|(rollback, _)| Some(rollback))
            .map_err(|e| StoreError::Unverified {
                file: path.display().to_string(),
                reason: format!("it does not decode ({e})"),
            })
    }
}

/// Removes the rollback record at `path` once the file no longer holds its batch.
pub(super) fn forget(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// At the start: takes out of `db` the batch a rollback record left at `path` names, if the
/// file holds it, then removes the record.
pub(super) fn settle_at_start(db: &Database, path: &Path) -> Result<()> {
    let Some(rollback) = Rollback::load(path)? else {
        return Ok(());
    };
    if rollback.held_by(db)? {
        rollback.apply_to(db)?;
        tracing::warn!(
            index = rollback.after.0,
            "took out of the store a write that was answered as not applied (its flush had failed)"
        );
    }
    forget(path).map_err(|e| StoreError::Storage(format!("{}: {e}", path.display())))
}
