//! Read and write transactions as the domain modules see them.
//!
//! A `WriteTx` spans one group-commit batch; each queued write runs as an *operation* inside
//! it with its own global index. redb cannot roll back part of a transaction once tables are
//! open (no savepoints), so every write keeps an undo record and a failed operation is undone
//! by replaying them; operations that succeed share the batch's single commit and fsync.
//! Functions that take `&mut WriteTx` compose and never commit (Consul's `*Txn` convention).

use super::codec::{self, Record};
use super::error::Result;
use super::tables::{self, Table, META, META_APPLIED, META_INDEX, TABLE_INDEX};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use std::collections::{HashMap, HashSet};

/// Reads shared by snapshots and writes in progress, so a domain's lookups serve both.
pub trait Readable {
    fn get<T: Record>(&self, table: Table<T>, key: &str) -> Result<Option<T>>;
    /// Every record whose key starts with `prefix`, in key order.
    fn scan_prefix<T: Record>(&self, table: Table<T>, prefix: &str) -> Result<Vec<(String, T)>>;
    /// The global index of the last write that touched `table` (0 if none).
    fn table_index(&self, table: &'static str) -> Result<u64>;
}

/// A consistent snapshot for reads (redb MVCC: never blocks the writer).
pub struct ReadTx {
    pub(super) txn: ReadTransaction,
}

impl Readable for ReadTx {
    fn get<T: Record>(&self, table: Table<T>, key: &str) -> Result<Option<T>> {
        match open_read(&self.txn, table.name)? {
            Some(t) => get_in(&t, table, key),
            None => Ok(None),
        }
    }

    /// Every record whose key starts with `prefix`, in key order.
    fn scan_prefix<T: Record>(&self, table: Table<T>, prefix: &str) -> Result<Vec<(String, T)>> {
        match open_read(&self.txn, table.name)? {
            Some(t) => scan_in(&t, table, prefix),
            None => Ok(Vec::new()),
        }
    }

    fn table_index(&self, table: &'static str) -> Result<u64> {
        match self.txn.open_table(TABLE_INDEX) {
            Ok(t) => Ok(t.get(table)?.map(|v| v.value()).unwrap_or(0)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}

/// Every row of a store, as stored: what two replicas that applied the same log must agree
/// on byte for byte.
#[derive(Debug, PartialEq, Eq)]
pub struct Dump {
    /// `meta` (global index, log position applied, schema version).
    pub meta: Vec<(String, u64)>,
    pub table_indexes: Vec<(String, u64)>,
    /// Each record table's rows, encoded, in key order.
    pub tables: Vec<(&'static str, Rows)>,
}

/// A table's rows: key and encoded record.
pub type Rows = Vec<(String, Vec<u8>)>;

impl ReadTx {
    /// Every table of the store in one consistent read (see `Dump`).
    pub fn dump(&self) -> Result<Dump> {
        let counters = |def: redb::TableDefinition<&str, u64>| -> Result<Vec<(String, u64)>> {
            match self.txn.open_table(def) {
                Ok(t) => t
                    .iter()?
                    .map(|row| {
                        let (k, v) = row?;
                        Ok((k.value().to_string(), v.value()))
                    })
                    .collect(),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            }
        };
        let mut tables = Vec::new();
        for table in tables::RECORD_TABLES {
            let mut rows = Vec::new();
            if let Some(t) = open_read(&self.txn, table.name)? {
                for row in t.iter()? {
                    let (k, v) = row?;
                    rows.push((k.value().to_string(), v.value().to_vec()));
                }
            }
            tables.push((table.name, rows));
        }
        Ok(Dump {
            meta: counters(META)?,
            table_indexes: counters(TABLE_INDEX)?,
            tables,
        })
    }

    /// How many rows `table` holds, without decoding them (metrics).
    pub fn row_count<T>(&self, table: Table<T>) -> Result<u64> {
        use redb::ReadableTableMetadata;
        match open_read(&self.txn, table.name)? {
            Some(t) => Ok(t.len()?),
            None => Ok(0),
        }
    }

    /// How many distinct first parts the keys of `table` have (keys `<part>\0<rest>`), read
    /// from the keys alone, in one pass in key order (no record is decoded).
    pub fn count_key_parts<T>(&self, table: Table<T>) -> Result<u64> {
        let Some(t) = open_read(&self.txn, table.name)? else {
            return Ok(0);
        };
        let mut count = 0;
        let mut last = String::new();
        for row in redb::ReadableTable::iter(&t)? {
            let (key, _) = row?;
            let key = key.value();
            let part = key.split('\0').next().unwrap_or(key);
            if count == 0 || part != last {
                count += 1;
                last.clear();
                last.push_str(part);
            }
        }
        Ok(count)
    }

    /// The last global index handed out as of this snapshot.
    pub fn global_index(&self) -> Result<u64> {
        read_global_index(&self.txn)
    }
}

fn get_in<T: Record>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    table: Table<T>,
    key: &str,
) -> Result<Option<T>> {
    match t.get(key)? {
        Some(v) => Ok(Some(codec::decode(table.name, key, v.value())?)),
        None => Ok(None),
    }
}

fn scan_in<T: Record>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    table: Table<T>,
    prefix: &str,
) -> Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    for row in t.range(prefix..)? {
        let (k, v) = row?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_string(), codec::decode(table.name, key, v.value())?));
    }
    Ok(out)
}

fn open_read(
    txn: &ReadTransaction,
    name: &'static str,
) -> Result<Option<redb::ReadOnlyTable<&'static str, &'static [u8]>>> {
    match txn.open_table(tables::raw(name)) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn read_global_index(txn: &ReadTransaction) -> Result<u64> {
    read_meta(txn, META_INDEX)
}

/// The log position of the last command applied (0 before the first).
pub(super) fn read_applied(txn: &ReadTransaction) -> Result<u64> {
    read_meta(txn, META_APPLIED)
}

/// A `META` value (0 when unset, or before the table exists).
pub(super) fn read_meta(txn: &ReadTransaction, key: &str) -> Result<u64> {
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(key)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// What a write replaced: the row `key` of `table` held `previous` (`None`: no row).
pub(super) struct Undo {
    pub table: &'static str,
    pub key: String,
    pub previous: Option<Vec<u8>>,
}

/// What a batch leaves once committed: the global index, the last log position applied, the
/// (table, key) pairs whose watchers are woken, and what every kept write replaced, oldest
/// first (to take the batch back out of a file whose flush failed, see `batch`).
pub(super) struct Committed {
    pub index: u64,
    pub applied: u64,
    pub touched: HashSet<(&'static str, String)>,
    pub undo: Vec<Undo>,
}

/// The state of one operation inside a batch: what to undo and what it touched.
#[derive(Default)]
struct OpState {
    undo: Vec<Undo>,
    touched: Vec<(&'static str, String)>,
    table_indexes: Vec<(&'static str, Option<u64>)>,
    /// The global index before `raise_index` moved it, to put back on rollback.
    raised_from: Option<u64>,
}

impl Readable for WriteTx<'_> {
    fn get<T: Record>(&self, table: Table<T>, key: &str) -> Result<Option<T>> {
        get_in(&self.txn.open_table(table.def())?, table, key)
    }

    fn scan_prefix<T: Record>(&self, table: Table<T>, prefix: &str) -> Result<Vec<(String, T)>> {
        scan_in(&self.txn.open_table(table.def())?, table, prefix)
    }

    /// As seen by the operation in progress.
    fn table_index(&self, table: &'static str) -> Result<u64> {
        Ok(self.table_indexes.get(table).copied().unwrap_or(0))
    }
}

/// A write transaction shared by one batch of operations.
pub struct WriteTx<'a> {
    txn: &'a WriteTransaction,
    /// Last index used by a successful operation (persisted in `meta` at commit).
    last_index: u64,
    /// Per-table last index, cached across batches by the writer.
    table_indexes: &'a mut HashMap<&'static str, u64>,
    dirty_tables: HashSet<&'static str>,
    op: OpState,
    touched: HashSet<(&'static str, String)>,
    /// The undo records of the operations kept so far.
    undo: Vec<Undo>,
    /// Position in the command log of the last command applied (persisted in `meta`).
    applied: u64,
    /// The time carried by the command in progress: the only clock a write may read.
    now_ms: u64,
}

impl<'a> WriteTx<'a> {
    pub(super) fn new(
        txn: &'a WriteTransaction,
        last_index: u64,
        applied: u64,
        table_indexes: &'a mut HashMap<&'static str, u64>,
    ) -> Self {
        WriteTx {
            txn,
            last_index,
            table_indexes,
            dirty_tables: HashSet::new(),
            op: OpState::default(),
            touched: HashSet::new(),
            undo: Vec::new(),
            applied,
            now_ms: 0,
        }
    }

    /// Unix milliseconds of the command in progress, as decided when it was built. Writes
    /// read time only here, so every replica applying the same command stores the same values.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The log position of the last command applied.
    pub(super) fn applied(&self) -> u64 {
        self.applied
    }

    /// The index of the operation in progress: one above the last successful one.
    pub fn index(&self) -> u64 {
        self.last_index + 1
    }

    pub fn put<T: Record>(&mut self, table: Table<T>, key: &str, value: &T) -> Result<()> {
        let bytes = codec::encode(value);
        let previous = {
            let mut t = self.txn.open_table(table.def())?;
            let old = t.insert(key, bytes.as_slice())?;
            old.map(|v| v.value().to_vec())
        };
        self.record(table.name, key, previous);
        Ok(())
    }

    /// Removes `key`; returns the record that was there.
    pub fn delete<T: Record>(&mut self, table: Table<T>, key: &str) -> Result<Option<T>> {
        let previous = {
            let mut t = self.txn.open_table(table.def())?;
            let old = t.remove(key)?;
            old.map(|v| v.value().to_vec())
        };
        let Some(previous) = previous else {
            return Ok(None);
        };
        let decoded = codec::decode(table.name, key, &previous)?;
        self.record(table.name, key, Some(previous));
        Ok(Some(decoded))
    }

    /// Writes `key` without moving the table's index or waking watchers: for bookkeeping no
    /// reader observes (a session's renewal deadline).
    pub fn put_quiet<T: Record>(&mut self, table: Table<T>, key: &str, value: &T) -> Result<()> {
        let bytes = codec::encode(value);
        let previous = {
            let mut t = self.txn.open_table(table.def())?;
            let old = t.insert(key, bytes.as_slice())?;
            old.map(|v| v.value().to_vec())
        };
        self.op.undo.push(Undo {
            table: table.name,
            key: key.to_string(),
            previous,
        });
        Ok(())
    }

    /// Removes `key` without moving the table's index: for housekeeping (tombstone reaping)
    /// that changes no result a reader could observe through that index.
    pub fn purge<T: Record>(&mut self, table: Table<T>, key: &str) -> Result<()> {
        let previous = {
            let mut t = self.txn.open_table(table.def())?;
            let old = t.remove(key)?;
            old.map(|v| v.value().to_vec())
        };
        if previous.is_some() {
            self.op.undo.push(Undo {
                table: table.name,
                key: key.to_string(),
                previous,
            });
        }
        Ok(())
    }

    /// Writes raw `bytes` (an already encoded record) at `key` of the record table `name`
    /// (snapshot restore); undone and announced like `put`.
    pub fn put_raw(&mut self, name: &'static str, key: &str, bytes: &[u8]) -> Result<()> {
        let previous = {
            let mut t = self.txn.open_table(tables::raw(name))?;
            let old = t.insert(key, bytes)?;
            old.map(|v| v.value().to_vec())
        };
        self.record(name, key, previous);
        Ok(())
    }

    /// Removes every row of the record table `name` (snapshot restore); each row is undone and
    /// announced like `delete`.
    pub fn clear_table(&mut self, name: &'static str) -> Result<()> {
        let rows = {
            let mut t = self.txn.open_table(tables::raw(name))?;
            let mut rows = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                rows.push((k.value().to_string(), v.value().to_vec()));
            }
            t.retain(|_, _| false)?;
            rows
        };
        for (key, previous) in rows {
            self.record(name, &key, Some(previous));
        }
        Ok(())
    }

    /// Moves `table`'s index to this operation's whether or not a row changed (snapshot
    /// restore: the whole table was replaced).
    pub fn touch_table(&mut self, table: &'static str) {
        self.bump_table(table);
    }

    /// Once committed, wakes every watch, whatever it watches, and blocking reads waiting
    /// since before return at once (snapshot restore: everything was replaced).
    pub fn wake_all(&mut self) {
        self.op
            .touched
            .push((super::watch::EVERYTHING, String::new()));
    }

    /// Raises the global index to at least `floor` before this operation writes, so the
    /// operation's own index is above it (restoring a snapshot taken at a higher index than
    /// this store's: the index never goes backwards). Undone if the operation fails.
    pub fn raise_index(&mut self, floor: u64) {
        if floor > self.last_index {
            self.op.raised_from.get_or_insert(self.last_index);
            self.last_index = floor;
        }
    }

    fn bump_table(&mut self, table: &'static str) {
        let index = self.index();
        let before = self.table_indexes.insert(table, index);
        self.op.table_indexes.push((table, before));
        self.dirty_tables.insert(table);
    }

    fn record(&mut self, table: &'static str, key: &str, previous: Option<Vec<u8>>) {
        self.bump_table(table);
        self.op.undo.push(Undo {
            table,
            key: key.to_string(),
            previous,
        });
        self.op.touched.push((table, key.to_string()));
    }

    /// Starts applying the command at log position `log_index`, carrying time `now_ms`.
    pub(super) fn begin_op(&mut self, log_index: u64, now_ms: u64) {
        self.op = OpState::default();
        self.applied = log_index;
        self.now_ms = now_ms;
    }

    /// Keeps the operation's writes; it consumed an index only if it wrote something (or moved
    /// a table's index).
    pub(super) fn finish_op(&mut self) {
        let op = std::mem::take(&mut self.op);
        if !op.undo.is_empty() || !op.table_indexes.is_empty() {
            self.last_index += 1;
            self.touched.extend(op.touched);
            self.undo.extend(op.undo);
        }
    }

    /// Undoes every write of the operation in progress, newest first.
    pub(super) fn rollback_op(&mut self) -> Result<()> {
        let op = std::mem::take(&mut self.op);
        for undo in op.undo.into_iter().rev() {
            let mut t = self.txn.open_table(tables::raw(undo.table))?;
            match undo.previous {
                Some(bytes) => {
                    t.insert(undo.key.as_str(), bytes.as_slice())?;
                }
                None => {
                    t.remove(undo.key.as_str())?;
                }
            }
        }
        for (table, before) in op.table_indexes.into_iter().rev() {
            match before {
                Some(i) => self.table_indexes.insert(table, i),
                None => self.table_indexes.remove(table),
            };
        }
        if let Some(index) = op.raised_from {
            self.last_index = index;
        }
        Ok(())
    }

    /// Persists the batch's index bookkeeping; returns what the batch leaves once committed.
    pub(super) fn finish_batch(self) -> Result<Committed> {
        {
            let mut meta = self.txn.open_table(META)?;
            meta.insert(META_INDEX, self.last_index)?;
            meta.insert(META_APPLIED, self.applied)?;
            let mut idx = self.txn.open_table(TABLE_INDEX)?;
            for table in &self.dirty_tables {
                if let Some(i) = self.table_indexes.get(table) {
                    idx.insert(*table, *i)?;
                }
            }
        }
        Ok(Committed {
            index: self.last_index,
            applied: self.applied,
            touched: self.touched,
            undo: self.undo,
        })
    }
}
