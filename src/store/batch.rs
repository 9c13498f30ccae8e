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
//!
//! Every reply follows what the file holds. A commit whose pages reached the file but whose
//! flush failed is *in doubt*: the disk may still keep it or lose it. Its replies wait while
//! the writer retries the file; the reopened file answers them (the batch is in it: its real
//! results; it is not: "not applied"). Reads meanwhile show the state before it (the in-memory
//! copy is rolled back). When the file cannot decide within `IN_DOUBT_WAIT`, the batch is
//! discarded: its rollback is first written durably beside the file (`rollback`), then the
//! replies say "not applied", and the batch is taken back out of the file as soon as it can be
//! written again, or at the next start. A disk that refuses even that small file keeps the
//! replies waiting, since no answer could then be kept.

use super::command::{self, Entry, Outcome};
use super::error::{Result, StoreError};
use super::rollback::{self, Rollback};
use super::tables::{RECORD_TABLES, TABLE_INDEX};
use super::tx::{read_applied, read_global_index, Committed, WriteTx};
use super::watch::Watches;
use super::{open_database, DatabaseOpener, DatabaseSlot};
use crate::metrics::{Key, Kind, Metrics};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most commands one batch takes, so a flood of writers cannot make one commit unbounded.
const MAX_BATCH: usize = 1024;

/// How long the replies of an in-doubt batch wait for the file to decide: Consul's default
/// `rpc_hold_timeout`, the time it lets a write wait out a leaderless cluster.
const IN_DOUBT_WAIT: Duration = Duration::from_secs(7);

/// How often the writer tries the file again while a batch is in doubt.
const RETRY_EVERY: Duration = Duration::from_millis(100);

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
    /// The batch whose commit reached the file but not its flush, until the file decides.
    in_doubt: Option<InDoubt>,
}

/// A batch whose commit reached the file but whose flush failed.
struct InDoubt {
    committed: Committed,
    rollback: Rollback,
    /// Its replies, held until the file decides; empty once it was discarded.
    pending: Vec<Pending>,
    cause: String,
    since: Instant,
    /// Recording its rollback failed (and was logged).
    unrecorded: bool,
}

/// How the file came back after a failed batch.
enum Recovered {
    /// Open and writable again.
    Reopened,
    /// Still refused; reads are served from a copy of its bytes, which held the batch in
    /// question (`held`; now rolled back in the copy) or not.
    Copied { held: bool },
    /// Neither opened nor read.
    Unreadable,
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

    /// Where a discarded batch's rollback is kept until the file no longer holds it.
    fn discard_path(&self) -> PathBuf {
        self.path.with_file_name(rollback::DISCARD_FILE)
    }

    /// Closes the failed database and reopens the file, or, while that fails, serves reads
    /// from an in-memory copy of the file's last durable state, with `batch` (a commit that
    /// reached the file but not its flush) rolled back in it.
    fn recover(&mut self, batch: Option<&Rollback>) -> Recovered {
        if let Some(failed) = self.slot.write().unwrap().take() {
            // The slot held the only handle (the writer drops its own before recovering);
            // dropping it closes the file and releases its lock, so it can be opened again.
            drop(failed);
        }
        if self.reopen() {
            return Recovered::Reopened;
        }
        let copy = match self.copy_in_memory() {
            Ok(copy) => copy,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the store's file either; reads fail until it can");
                return Recovered::Unreadable;
            }
        };
        let held = match batch {
            Some(batch) => batch.held_by(&copy).unwrap_or(true),
            None => false,
        };
        if let (true, Some(batch)) = (held, batch) {
            if let Err(e) = batch.apply_to(&copy) {
                tracing::error!(error = %e, "cannot hide the unflushed write from reads");
                return Recovered::Unreadable;
            }
        }
        *self.slot.write().unwrap() = Some(Arc::new(copy));
        Recovered::Copied { held }
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
                // Said when it changes: while a write is in doubt the file is retried often.
                if self.unwritable.as_ref() != Some(&cause) {
                    tracing::error!(%cause, "writes fail until the disk recovers; reads go on");
                }
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
            loop {
                // While a batch is in doubt the writer wakes to try the file again.
                let first = match disk.in_doubt.is_some() {
                    true => match rx.recv_timeout(RETRY_EVERY) {
                        Ok(job) => Some(job),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                    false => match rx.recv() {
                        Ok(job) => Some(job),
                        Err(_) => break,
                    },
                };
                state.settle(&mut disk, &watches, &tap);
                let Some(first) = first else { continue };
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                state.run_batch(&mut disk, &watches, &tap, &metrics, jobs);
            }
            if let Some(doubt) = disk.in_doubt.take() {
                let unknown = format!(
                    "the agent stopped before the file showed whether the write is durable; \
                     the next start serves what it holds: {}",
                    doubt.cause
                );
                answer(doubt.pending, &unknown);
            }
        })
        .map_err(StoreError::storage)?;
    Ok((tx, handle))
}

#[derive(Clone)]
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
        if disk.unwritable.is_some() && disk.in_doubt.is_none() && disk.reopen() {
            self.reload(disk);
        }
        // Nothing is written on top of a batch still in doubt: it may yet be taken out.
        let refused = disk
            .unwritable
            .as_ref()
            .or(disk.in_doubt.as_ref().map(|d| &d.cause));
        let db = match (refused, disk.current()) {
            (None, Some(db)) => db,
            (Some(cause), _) => return refuse(jobs, || StoreError::Storage(not_durable(cause))),
            (None, None) => return refuse(jobs, || StoreError::Closed),
        };
        let tapping = tap.lock().unwrap().is_some();
        let mut pending = Vec::with_capacity(jobs.len());
        let started = Instant::now();
        let before = self.clone();
        let Failure { error, attempted } = match self.apply(&db, jobs, tapping, &mut pending) {
            Ok(committed) => {
                // As raft counts the entries it applies and times their commit.
                metrics.record(
                    Key::Named(Kind::Counter, "raft.apply"),
                    pending.len() as f64,
                );
                metrics.record_time(
                    Key::Named(Kind::Sample, "raft.commitTime"),
                    started.elapsed(),
                );
                return self.acknowledge(committed, pending, watches, tap);
            }
            Err(failure) => *failure,
        };
        drop(db);
        let cause = match error {
            StoreError::Storage(cause) => cause,
            other => other.to_string(),
        };
        tracing::error!(error = %cause, "write batch failed; reopening the store's file");
        let Some(mut committed) = attempted else {
            // Its commit was not attempted: nothing of it is in the file.
            disk.recover(None);
            self.reload(disk);
            return answer(pending, &not_durable(&cause));
        };
        // The commit was attempted: its pages, and the header naming them, may be in the file.
        let rollback = Rollback::new(
            (committed.index, committed.applied),
            (before.last_index, before.applied),
            before
                .table_indexes
                .iter()
                .map(|(t, i)| (t.to_string(), *i)),
            std::mem::take(&mut committed.undo),
        );
        let recovered = disk.recover(Some(&rollback));
        self.reload(disk);
        match recovered {
            // The reopened file, repaired to its last durable commit, decides.
            Recovered::Reopened => {
                match (self.last_index, self.applied) == (committed.index, committed.applied) {
                    true => self.acknowledge(committed, pending, watches, tap),
                    false => answer(pending, &not_durable(&cause)),
                }
            }
            // The commit never reached the file's bytes, so no later flush can keep it.
            Recovered::Copied { held: false } => answer(pending, &not_durable(&cause)),
            Recovered::Copied { held: true } | Recovered::Unreadable => {
                disk.in_doubt = Some(InDoubt {
                    committed,
                    rollback,
                    pending,
                    cause,
                    since: Instant::now(),
                    unrecorded: false,
                })
            }
        }
    }

    /// While a batch is in doubt: once the file opens again, answers it by what the file holds
    /// (or takes it back out, when it was discarded); once `IN_DOUBT_WAIT` has passed without
    /// that, discards it.
    fn settle(&mut self, disk: &mut Disk, watches: &Watches, tap: &Tap) {
        let Some(mut doubt) = disk.in_doubt.take() else {
            return;
        };
        // The file is open already when a rollback failed and the file reopened at once.
        if disk.unwritable.is_none() || disk.reopen() {
            self.reload(disk);
            let held =
                (self.last_index, self.applied) == (doubt.committed.index, doubt.committed.applied);
            let discarded = doubt.pending.is_empty();
            if held && !discarded {
                return self.acknowledge(doubt.committed, doubt.pending, watches, tap);
            }
            if held {
                let db = disk.current();
                let undone = db.map(|db| doubt.rollback.apply_to(&db));
                if let Some(Err(e)) = undone {
                    tracing::error!(error = %e, "cannot take the discarded write out of the file yet");
                    disk.recover(Some(&doubt.rollback));
                    self.reload(disk);
                    disk.in_doubt = Some(doubt);
                    return;
                }
                self.reload(disk);
                tracing::warn!("took the discarded write back out of the store's file");
            }
            answer(doubt.pending, &not_durable(&doubt.cause));
            if let Err(e) = rollback::forget(&disk.discard_path()) {
                tracing::error!(error = %e, "cannot remove the discarded write's rollback record");
            }
            return;
        }
        if !doubt.pending.is_empty() && doubt.since.elapsed() >= IN_DOUBT_WAIT {
            match doubt.rollback.save(&disk.discard_path()) {
                Ok(()) => answer(std::mem::take(&mut doubt.pending), &discarded(&doubt.cause)),
                // Said once: the writer tries again every `RETRY_EVERY`.
                Err(e) if !doubt.unrecorded => {
                    doubt.unrecorded = true;
                    tracing::error!(
                        error = %e,
                        "cannot record the discarded write's rollback; its replies wait for the disk"
                    )
                }
                Err(_) => {}
            }
        }
        disk.in_doubt = Some(doubt);
    }

    /// Sends each command's result once its batch is durable, and wakes the watchers.
    fn acknowledge(
        &mut self,
        committed: Committed,
        pending: Vec<Pending>,
        watches: &Watches,
        tap: &Tap,
    ) {
        self.last_index = committed.index;
        self.applied = committed.applied;
        watches.announce(committed.index, &committed.touched);
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
    ) -> Result<Committed, Box<Failure>> {
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
            Ok(committed) => match txn.commit() {
                Ok(()) => Ok(committed),
                Err(e) => Err(Box::new(Failure {
                    error: e.into(),
                    attempted: Some(committed),
                })),
            },
            Err(e) => {
                let _ = txn.abort();
                Err(Failure::before_commit(e))
            }
        }
    }
}

/// Why a batch did not commit, and what it would have left had its commit been attempted.
struct Failure {
    error: StoreError,
    attempted: Option<Committed>,
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

fn discarded(cause: &str) -> String {
    format!(
        "the write reached the data file but could not be flushed, and the disk did not recover \
         within {}s, so it is not known to be durable; it was discarded and will not be applied: \
         {cause}",
        IN_DOUBT_WAIT.as_secs()
    )
}

/// Answers every held reply with the error `message`.
fn answer(pending: Vec<Pending>, message: &str) {
    for p in pending {
        let _ = p.reply.send(Err(StoreError::Storage(message.to_string())));
    }
}

/// Answers every job of a batch that was not tried with the error `why` makes.
fn refuse(jobs: Vec<Job>, why: impl Fn() -> StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(why()));
    }
}
