//! Group commit: one writer thread drains every queued command into a single redb transaction
//! and a single fsync. Each command still applies as its own operation with its own index and
//! result, and no result is sent (nor any watcher woken) before the commit is durable.

use super::command::{self, Entry, Outcome};
use super::error::{Result, StoreError};
use super::tables::TABLE_INDEX;
use super::tx::{read_applied, read_global_index, WriteTx};
use super::watch::Watches;
use crate::metrics::{Key, Kind, Metrics};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
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

pub(super) fn spawn_writer(
    db: Arc<Database>,
    watches: Arc<Watches>,
    tap: Tap,
    metrics: Arc<Metrics>,
) -> Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Job>();
    let mut state = WriterState::load(&db)?;
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
                state.run_batch(&db, &watches, &tap, &metrics, jobs);
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
                // Table names are 'static in this build; leak the few loaded from disk once.
                let name: &'static str = Box::leak(k.value().to_string().into_boxed_str());
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
        db: &Database,
        watches: &Watches,
        tap: &Tap,
        metrics: &Metrics,
        jobs: Vec<Job>,
    ) {
        let tapping = tap.lock().unwrap().is_some();
        let mut pending = Vec::with_capacity(jobs.len());
        let started = std::time::Instant::now();
        match self.apply(db, jobs, tapping, &mut pending) {
            Ok((index, applied, touched)) => {
                // As raft counts the entries it applies and times their commit.
                metrics.record(
                    Key::Named(Kind::Counter, "consul.raft.apply"),
                    pending.len() as f64,
                );
                metrics.record_time(
                    Key::Named(Kind::Sample, "consul.raft.commitTime"),
                    started.elapsed(),
                );
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
            Err(err) => {
                tracing::error!(error = %err, "write batch failed; nothing in it was acknowledged");
                // The transaction was not committed: reload the cached indexes from disk.
                if let Ok(fresh) = WriterState::load(db) {
                    *self = fresh;
                }
                for p in pending {
                    let _ = p.reply.send(Err(StoreError::Storage(err.to_string())));
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply(
        &mut self,
        db: &Database,
        jobs: Vec<Job>,
        tapping: bool,
        pending: &mut Vec<Pending>,
    ) -> Result<(u64, u64, std::collections::HashSet<(&'static str, String)>)> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
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
            Ok(done) => {
                txn.commit()?;
                Ok(done)
            }
            Err(e) => {
                let _ = txn.abort();
                Err(e)
            }
        }
    }
}
