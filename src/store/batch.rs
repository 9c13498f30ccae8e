//! Group commit: one writer thread drains every queued command into a single redb transaction
//! and a single fsync. Each command still applies as its own operation with its own index and
//! result, and no result is sent (nor any watcher woken) before the commit is durable.
//!
//! A write the disk refuses (no space, an I/O error) fails redb's file for good: every later
//! read or write of that `Database` answers `PreviousIo`. So after a failed batch the writer
//! closes it and reopens the file (`Disk::recover`), which repairs it to its last durable
//! commit; what the file then holds decides the batch's outcome. While the file cannot be
//! reopened (the fault persists), reads are served from a copy of the file in memory and each
//! batch first tries the file again, so writes resume once the disk does, without a restart.

use super::command::{self, Entry, Outcome};
use super::error::{Result, StoreError};
use super::tables::{RECORD_TABLES, TABLE_INDEX};
use super::tx::{read_applied, read_global_index, WriteTx};
use super::watch::Watches;
use super::{open_database, DatabaseOpener, DatabaseSlot};
use crate::metrics::{Key, Kind, Metrics};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Most commands one batch takes, so a flood of writers cannot make one commit unbounded.
const MAX_BATCH: usize = 1024;

/// A queued command and where its result goes once the batch's commit outcome is known.
pub(super) struct Job {
    /// The command's log position when the log decided it (a replica); `None`: the next one.
    pub log_index: Option<u64>,
    pub entry: Entry,
    pub reply: tokio::sync::oneshot::Sender<Result<Outcome>>,
}

/// Receives every applied entry with its log position, encoded as it would be shipped, once
/// its batch is durable (see `Store::tap`).
pub(super) type Tap = Arc<Mutex<Option<mpsc::Sender<(u64, Vec<u8>)>>>>;

/// The database file as the writer sees it: the slot it shares with readers, and how to open
/// the file again after a fault.
pub(super) struct Disk {
    slot: DatabaseSlot,
    path: PathBuf,
    opener: DatabaseOpener,
    /// Why the file cannot be written, while the slot holds the in-memory copy.
    unwritable: Option<String>,
    /// The index and keys of a batch whose commit reached the file but not its flush: its
    /// watchers are woken once the reopened file shows it durable.
    in_doubt: Option<(u64, HashSet<(&'static str, String)>)>,
}

impl Disk {
    pub(super) fn new(slot: DatabaseSlot, path: PathBuf, opener: DatabaseOpener) -> Self {
        Disk {
            slot,
            path,
            opener,
            unwritable: None,
            in_doubt: None,
        }
    }

    fn current(&self) -> Option<Arc<Database>> {
        self.slot.read().unwrap().clone()
    }

    /// Closes the failed database and reopens the file, or, while that fails, serves reads
    /// from an in-memory copy of the file's last durable state.
    fn recover(&mut self) {
        let Some(failed) = self.slot.write().unwrap().take() else {
            return;
        };
        // The slot held the only handle (the writer drops its own before recovering); dropping
        // it closes the file and releases its lock, so the file can be opened again.
        drop(failed);
        if self.reopen() {
            return;
        }
        match self.copy_in_memory() {
            Ok(copy) => *self.slot.write().unwrap() = Some(Arc::new(copy)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the store's file either; reads fail until it can")
            }
        }
    }

    /// Opens the file again; true when it is open and writable. The slot keeps what it holds
    /// (the in-memory copy) when the file cannot be opened yet.
    fn reopen(&mut self) -> bool {
        match open_database(&self.opener, &self.path) {
            Ok(db) => {
                if let Some(cause) = self.unwritable.take() {
                    tracing::warn!(%cause, "the store's file is writable again; writes resume");
                }
                *self.slot.write().unwrap() = Some(Arc::new(db));
                true
            }
            Err(e) => {
                let cause = format!(
                    "the data file {} cannot be written ({e})",
                    self.path.display()
                );
                tracing::error!(%cause, "writes fail until the disk recovers; reads go on");
                self.unwritable = Some(cause);
                false
            }
        }
    }

    /// The file's bytes opened as a database in memory, repaired there to its last durable
    /// commit: never written back, only read while the file itself refuses writes.
    fn copy_in_memory(&self) -> Result<Database> {
        let bytes = std::fs::read(&self.path).map_err(|e| {
            StoreError::Storage(format!("cannot read {}: {e}", self.path.display()))
        })?;
        let memory = redb::backends::InMemoryBackend::new();
        redb::StorageBackend::set_len(&memory, bytes.len() as u64).map_err(StoreError::storage)?;
        redb::StorageBackend::write(&memory, 0, &bytes).map_err(StoreError::storage)?;
        Ok(Database::builder().create_with_backend(memory)?)
    }
}

pub(super) fn spawn_writer(
    mut disk: Disk,
    watches: Arc<Watches>,
    tap: Tap,
    metrics: Arc<Metrics>,
) -> Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Job>();
    let mut state = WriterState::load(&*disk.current().ok_or(StoreError::Closed)?)?;
    let handle = std::thread::Builder::new()
        .name("legate-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                state.run_batch(&mut disk, &watches, &tap, &metrics, jobs);
            }
        })
        .map_err(StoreError::storage)?;
    Ok((tx, handle))
}

struct WriterState {
    last_index: u64,
    applied: u64,
    table_indexes: HashMap<&'static str, u64>,
}

/// A command's reply, held until its batch's commit outcome is known.
struct Pending {
    reply: tokio::sync::oneshot::Sender<Result<Outcome>>,
    result: Result<Outcome>,
    /// Log position and encoded entry, kept only while a tap listens.
    tapped: Option<(u64, Vec<u8>)>,
}

impl WriterState {
    fn load(db: &Database) -> Result<Self> {
        let txn = db.begin_read()?;
        let last_index = read_global_index(&txn)?;
        let applied = read_applied(&txn)?;
        let mut table_indexes = HashMap::new();
        if let Ok(t) = txn.open_table(TABLE_INDEX) {
            for row in t.iter()? {
                let (k, v) = row?;
                // Table names are 'static in this build: the record tables' own, and a leaked
                // copy for any other (loaded again after each write fault, so kept rare).
                let name = k.value();
                let name: &'static str = match RECORD_TABLES.iter().find(|t| t.name == name) {
                    Some(table) => table.name,
                    None => Box::leak(name.to_string().into_boxed_str()),
                };
                table_indexes.insert(name, v.value());
            }
        }
        Ok(WriterState {
            last_index,
            applied,
            table_indexes,
        })
    }

    fn run_batch(
        &mut self,
        disk: &mut Disk,
        watches: &Watches,
        tap: &Tap,
        metrics: &Metrics,
        jobs: Vec<Job>,
    ) {
        if disk.unwritable.is_some() && disk.reopen() {
            self.reload(disk);
            if let Some((index, touched)) = disk.in_doubt.take() {
                if self.last_index == index {
                    watches.announce(index, &touched);
                }
            }
        }
        let db = match (&disk.unwritable, disk.current()) {
            (None, Some(db)) => db,
            (Some(cause), _) => return refuse(jobs, || StoreError::Storage(not_durable(cause))),
            (None, None) => return refuse(jobs, || StoreError::Closed),
        };
        let tapping = tap.lock().unwrap().is_some();
        let mut pending = Vec::with_capacity(jobs.len());
        let started = std::time::Instant::now();
        let Failure { error, attempted } = match self.apply(&db, jobs, tapping, &mut pending) {
            Ok(done) => {
                // As raft counts the entries it applies and times their commit.
                metrics.record(
                    Key::Named(Kind::Counter, "raft.apply"),
                    pending.len() as f64,
                );
                metrics.record_time(
                    Key::Named(Kind::Sample, "raft.commitTime"),
                    started.elapsed(),
                );
                return self.acknowledge(done, pending, watches, tap);
            }
            Err(failure) => *failure,
        };
        drop(db);
        let cause = match error {
            StoreError::Storage(cause) => cause,
            other => other.to_string(),
        };
        tracing::error!(error = %cause, "write batch failed; reopening the store's file");
        disk.recover();
        self.reload(disk);
        // A commit that failed in its last flush may still be in the file, which the reopen
        // has just made durable: then the batch did happen, and is acknowledged as such.
        let in_file = matches!(&attempted, Some(done) if self.applied == done.1);
        let err = match (attempted, &disk.unwritable) {
            (Some(done), None) if in_file => return self.acknowledge(done, pending, watches, tap),
            // Its commit reached the file but not its flush; whether it lasts is up to the disk.
            (Some((index, _, touched)), Some(_)) if in_file => {
                disk.in_doubt = Some((index, touched));
                format!(
                    "the write reached the data file but could not be flushed, so it is not known \
                 to be durable: {cause}"
                )
            }
            _ => not_durable(&cause),
        };
        for p in pending {
            let _ = p.reply.send(Err(StoreError::Storage(err.clone())));
        }
    }

    /// Sends each command's result once its batch is durable, and wakes the watchers.
    fn acknowledge(&mut self, done: Done, pending: Vec<Pending>, watches: &Watches, tap: &Tap) {
        let (index, applied, touched) = done;
        self.last_index = index;
        self.applied = applied;
        watches.announce(index, &touched);
        let tap = tap.lock().unwrap();
        for p in pending {
            if let (Some(sink), Some(entry)) = (tap.as_ref(), p.tapped) {
                let _ = sink.send(entry);
            }
            let _ = p.reply.send(p.result);
        }
    }

    /// Takes the cached indexes from what the database now holds: nothing of a batch that was
    /// not committed stays in them.
    fn reload(&mut self, disk: &Disk) {
        match disk.current().map(|db| WriterState::load(&db)) {
            Some(Ok(fresh)) => *self = fresh,
            Some(Err(e)) => tracing::error!(error = %e, "cannot read the store's indexes back"),
            None => {}
        }
    }

    fn apply(
        &mut self,
        db: &Database,
        jobs: Vec<Job>,
        tapping: bool,
        pending: &mut Vec<Pending>,
    ) -> Result<Done, Box<Failure>> {
        let mut txn = db.begin_write().map_err(Failure::before_commit)?;
        txn.set_durability(Durability::Immediate)
            .map_err(Failure::before_commit)?;
        let result = {
            let mut tx = WriteTx::new(&txn, self.last_index, self.applied, &mut self.table_indexes);
            let mut failure = None;
            for job in jobs {
                let log_index = job.log_index.unwrap_or(tx.applied() + 1);
                if log_index <= tx.applied() {
                    pending.push(Pending {
                        reply: job.reply,
                        result: Err(StoreError::AlreadyApplied {
                            log_index,
                            applied: tx.applied(),
                        }),
                        tapped: None,
                    });
                    continue;
                }
                let tapped = tapping.then(|| (log_index, super::codec::encode(&job.entry)));
                tx.begin_op(log_index, job.entry.time_ms);
                let result = command::apply(&mut tx, job.entry.command);
                let undo = if result.is_ok() {
                    tx.finish_op();
                    Ok(())
                } else {
                    tx.rollback_op()
                };
                pending.push(Pending {
                    reply: job.reply,
                    result,
                    tapped,
                });
                if let Err(e) = undo {
                    failure = Some(e);
                    break;
                }
            }
            match failure {
                Some(e) => Err(e),
                None => tx.finish_batch(),
            }
        };
        match result {
            Ok(done) => match txn.commit() {
                Ok(()) => Ok(done),
                Err(e) => Err(Box::new(Failure {
                    error: e.into(),
                    attempted: Some(done),
                })),
            },
            Err(e) => {
                let _ = txn.abort();
                Err(Failure::before_commit(e))
            }
        }
    }
}

/// What a committed batch leaves: the global index, the last log position applied and the
/// (table, key) pairs it wrote, whose watchers are woken.
type Done = (u64, u64, HashSet<(&'static str, String)>);

/// Why a batch did not commit, and what it would have left had its commit been attempted.
struct Failure {
    error: StoreError,
    attempted: Option<Done>,
}

impl Failure {
    fn before_commit(error: impl Into<StoreError>) -> Box<Self> {
        Box::new(Failure {
            error: error.into(),
            attempted: None,
        })
    }
}

fn not_durable(cause: &str) -> String {
    format!("the write could not be made durable and was not applied: {cause}")
}

/// Answers every job of a batch that was not tried with the error `why` makes.
fn refuse(jobs: Vec<Job>, why: impl Fn() -> StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(why()));
    }
}
