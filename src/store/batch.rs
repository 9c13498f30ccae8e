//! Group commit: one writer thread drains every queued write into a single redb transaction and
//! a single fsync. Each write still runs as its own operation with its own index and result,
//! and no result is sent (nor any watcher woken) before the commit is durable.

use super::error::{Result, StoreError};
use super::tables::TABLE_INDEX;
use super::tx::{read_global_index, WriteTx};
use super::watch::Watches;
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

/// Most operations one batch takes, so a flood of writers cannot make one commit unbounded.
const MAX_BATCH: usize = 1024;

/// Runs one operation inside the batch's transaction. It returns whether the operation
/// succeeded (a failure is rolled back) and the continuation that delivers its result once the
/// batch's commit outcome is known.
pub(super) type Job = Box<dyn FnOnce(&mut WriteTx) -> (bool, Completion) + Send>;
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

pub(super) fn spawn_writer(
    db: Arc<Database>,
    watches: Arc<Watches>,
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
                state.run_batch(&db, &watches, jobs);
            }
        })
        .map_err(StoreError::storage)?;
    Ok((tx, handle))
}

struct WriterState {
    last_index: u64,
    table_indexes: HashMap<&'static str, u64>,
}

impl WriterState {
    fn load(db: &Database) -> Result<Self> {
        let txn = db.begin_read()?;
        let last_index = read_global_index(&txn)?;
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
            table_indexes,
        })
    }

    fn run_batch(&mut self, db: &Database, watches: &Watches, jobs: Vec<Job>) {
        let mut completions = Vec::with_capacity(jobs.len());
        let outcome = self.apply(db, jobs, &mut completions);
        match outcome {
            Ok((index, touched)) => {
                self.last_index = index;
                watches.announce(index, &touched);
                for done in completions {
                    done(Ok(()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "write batch failed; nothing in it was acknowledged");
                // The transaction was not committed: reload the cached indexes from disk.
                if let Ok(fresh) = WriterState::load(db) {
                    *self = fresh;
                }
                for done in completions {
                    done(Err(StoreError::Storage(err.to_string())));
                }
            }
        }
    }

    fn apply(
        &mut self,
        db: &Database,
        jobs: Vec<Job>,
        completions: &mut Vec<Completion>,
    ) -> Result<(u64, std::collections::HashSet<(&'static str, String)>)> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let result = {
            let mut tx = WriteTx::new(&txn, self.last_index, &mut self.table_indexes);
            let mut failure = None;
            for job in jobs {
                tx.begin_op();
                let (ok, done) = job(&mut tx);
                completions.push(done);
                let undo = if ok {
                    tx.finish_op();
                    Ok(())
                } else {
                    tx.rollback_op()
                };
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
