//! The durable store: redb tables (see `tables`), one monotonic global index, group commit
//! (`batch`) and watches for blocking queries (`watch`). Domain modules (`kv`, `txn`, ...) own
//! their tables and expose read functions over `ReadTx` and write functions over `WriteTx`.
//!
//! Every write is a `Command` (`command`), and `Store::apply` is the only way in: the
//! command is stamped with this machine's time into an `Entry`, takes the next position of the
//! command log, and the writer applies it deterministically (the time, IDs and keys travel
//! inside the entry; applying reads no clock, random source or file outside the store).
//! `meta.applied` records the last log position applied, whether the command wrote, changed
//! nothing or failed, so the same log gives the same global and table indexes everywhere.
//!
//! How a replicated log plugs in (the Raft issue): the leader builds the `Entry` exactly as
//! `apply` does today and appends its encoding (`codec::encode`, the records' envelope) to
//! the log instead of queueing it; every server's state machine then calls
//! `Store::apply_entry(log_index, entry)` for each committed log entry in order, and the
//! request that proposed it gets the `Outcome` from the leader's application. A log index at
//! or below `meta.applied` is refused (`StoreError::AlreadyApplied`), so replaying a log after
//! a restart or a snapshot install cannot apply an entry twice. Reads stay local (`ReadTx`).

pub mod acl;
pub mod acl_auth;
pub mod agent_state;
pub mod autopilot;
pub mod batch;
pub mod catalog;
pub mod codec;
pub mod command;
pub mod config_entry;
pub mod connect_ca;
pub mod coordinate;
pub mod error;
pub mod gateway;
pub mod intention;
pub mod kv;
pub mod migrate;
pub mod prepared_query;
mod rollback;
pub mod session;
pub mod snapshot;
pub mod tables;
pub mod tx;
pub mod txn;
pub mod virtual_ip;
pub mod watch;

pub use command::{Command, Entry, Outcome};
pub use error::{Result, StoreError};
pub use rollback::DISCARD_FILE;
pub use tx::{Dump, ReadTx, Readable, WriteTx};
pub use watch::{Watch, WatchSet, Watches};

use crate::metrics::{Key, Kind, Metrics};
use redb::{Database, ReadableDatabase};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, RwLock};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "legate.redb";

/// A handle to the store; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Taken out by `close`, which releases the file (and its lock) even while clones of the
    /// `Store` are still held elsewhere.
    db: DatabaseSlot,
    watches: Arc<Watches>,
    writer: Mutex<Option<mpsc::Sender<batch::Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    tap: batch::Tap,
    path: PathBuf,
    /// The agent's metrics registry: the store records its commits and commands here.
    metrics: Arc<Metrics>,
}

/// Reads every record of every record table and checks that it decodes as its table's type:
/// a damaged page or an altered record stops the start instead of failing reads later.
fn check_records(db: &Database) -> Result<()> {
    let txn = db.begin_read()?;
    for t in tables::RECORD_TABLES {
        let table = match txn.open_table(tables::raw(t.name)) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for row in redb::ReadableTable::iter(&table)? {
            let (k, v) = row?;
            (t.check)(t.name, k.value(), v.value())?;
        }
    }
    Ok(())
}

/// Opens the database file at a path with a configured builder: `Store::open` uses redb's own
/// file backend; tests pass one over a backend that fails on command, to fault the disk.
pub type DatabaseOpener =
    Arc<dyn Fn(&redb::Builder, &Path) -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The database the store reads and writes, shared by the handle and the writer, which swaps it
/// for a reopened one after a write fault (see `batch`).
pub(super) type DatabaseSlot = Arc<RwLock<Option<Arc<Database>>>>;

/// The database in its file, through redb's own file backend.
pub fn file_database() -> DatabaseOpener {
    Arc::new(|builder, path| builder.create(path))
}

/// Opens the file through `opener`. redb repairs a file that was not closed cleanly as it
/// opens it; say so, and how long it took, since that start is slower and follows a crash, a
/// kill or a write fault.
pub(super) fn open_database(
    opener: &DatabaseOpener,
    path: &Path,
) -> Result<Database, redb::DatabaseError> {
    let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::time::Instant::now();
    let mut builder = Database::builder();
    let flag = repaired.clone();
    let shown = path.display().to_string();
    builder.set_repair_callback(move |session| {
        if !flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                file = %shown,
                "the store was not shut down cleanly (crash, kill, power loss or a failed write); repairing it"
            );
        }
        tracing::debug!(progress = session.progress(), "repairing the store");
    });
    let db = opener(&builder, path)?;
    if repaired.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            took_ms = started.elapsed().as_millis() as u64,
            "store repaired; every write acknowledged before is kept"
        );
    }
    Ok(db)
}

impl Store {
    /// Opens (or creates) the store in `data_dir`, created with mode 0700 since it holds
    /// secrets, and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Self::open_with(data_dir, &file_database())
    }

    /// `open`, with the database file opened (at the start and again after a write fault)
    /// through `opener`.
    pub fn open_with(data_dir: &Path, opener: &DatabaseOpener) -> Result<Store> {
        Self::open_checking(data_dir, opener, true)
    }

    /// `open` for a restore, which replaces every record table: the records already there
    /// are about to go, so they are not decoded first (nor does a damaged one stop it).
    pub(super) fn open_to_replace(data_dir: &Path) -> Result<Store> {
        Self::open_checking(data_dir, &file_database(), false)
    }

    fn open_checking(data_dir: &Path, opener: &DatabaseOpener, check: bool) -> Result<Store> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let unverified = |reason: String| StoreError::Unverified {
            file: path.display().to_string(),
            reason,
        };
        let db = open_database(opener, &path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::Locked(data_dir.display().to_string())
            }
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
                unverified(format!("it fails the database's checks ({reason})"))
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(e))
                if e.kind() == std::io::ErrorKind::InvalidData =>
            {
                unverified(format!("it fails the database's checks ({e})"))
            }
            other => StoreError::storage(other),
        })?;
        migrate::run(&db, tables::SCHEMA_VERSION)?;
        rollback::settle_at_start(&db, &data_dir.join(DISCARD_FILE))?;
        if check {
            check_records(&db).map_err(|e| unverified(e.to_string()))?;
        }
        Self::start(db, path, opener.clone())
    }

    fn start(db: Database, path: PathBuf, opener: DatabaseOpener) -> Result<Store> {
        let index = tx::read_global_index(&db.begin_read()?)?;
        let db: DatabaseSlot = Arc::new(RwLock::new(Some(Arc::new(db))));
        let watches = Watches::new(index);
        let tap = batch::Tap::default();
        let disk = batch::Disk::new(db.clone(), path.clone(), opener);
        let metrics = Arc::new(Metrics::new());
        let (writer, handle) =
            batch::spawn_writer(disk, watches.clone(), tap.clone(), metrics.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                watches,
                writer: Mutex::new(Some(writer)),
                writer_thread: Mutex::new(Some(handle)),
                tap,
                path,
                metrics,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<ReadTx> {
        let db = self.inner.db.read().unwrap();
        let db = db.as_ref().ok_or(StoreError::Closed)?;
        Ok(ReadTx {
            txn: db.begin_read()?,
        })
    }

    pub fn watches(&self) -> &Arc<Watches> {
        &self.inner.watches
    }

    /// The agent's metrics registry (one per store, so one per agent).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Applies `command`, stamped with this machine's time, at the next log position: queued
    /// for the next group commit, it resolves with its outcome once that commit is durable. An
    /// `Err` rolls back everything the command wrote and nothing else.
    pub fn apply(&self, command: Command) -> impl Future<Output = Result<Outcome>> + Send {
        self.submit(None, Entry::now(command))
    }

    /// Applies `entry` at log position `log_index` (a replicated log's committed entry, or a
    /// recorded one replayed); refused if the store has already applied that position.
    pub fn apply_entry(
        &self,
        log_index: u64,
        entry: Entry,
    ) -> impl Future<Output = Result<Outcome>> + Send {
        self.submit(Some(log_index), entry)
    }

    /// Queues the entry at once, in call order, and returns a future of its outcome alone:
    /// the command (up to a kilobyte) travels straight into the queue instead of being kept
    /// in every caller's future state.
    fn submit(
        &self,
        log_index: Option<u64>,
        entry: Entry,
    ) -> impl Future<Output = Result<Outcome>> + Send {
        let (reply, recv) = tokio::sync::oneshot::channel();
        // Consul times an operation from its RPC to the FSM's answer: queue, commit and apply.
        let timed = entry
            .command
            .metric_name()
            .map(|name| (name, self.inner.metrics.clone(), std::time::Instant::now()));
        let job = batch::Job {
            log_index,
            entry,
            reply,
        };
        let queued = {
            let writer = self.inner.writer.lock().unwrap();
            match writer.as_ref() {
                Some(writer) => writer.send(job).map_err(|_| StoreError::Closed),
                None => Err(StoreError::Closed),
            }
        };
        async move {
            queued?;
            let outcome = recv.await.unwrap_or_else(|_| {
                Err(StoreError::Storage(
                    "write was dropped by a failed batch".into(),
                ))
            });
            if let Some((name, metrics, started)) = timed {
                metrics.record_time(Key::Named(Kind::Sample, name), started.elapsed());
            }
            outcome
        }
    }

    /// From now on, every entry applied is sent to the returned receiver with its log
    /// position, encoded as a replicated log would carry it, once it is durable: what a
    /// leader ships to followers, and how tests record a real command stream. A new tap
    /// replaces the previous one.
    pub fn tap(&self) -> mpsc::Receiver<(u64, Vec<u8>)> {
        let (send, recv) = mpsc::channel();
        *self.inner.tap.lock().unwrap() = Some(send);
        recv
    }

    /// Stops accepting writes, waits for the writer to finish what is queued, and closes the
    /// database file. Later reads and writes fail with `StoreError::Closed`.
    pub fn close(&self) {
        self.inner.writer.lock().unwrap().take();
        if let Some(handle) = self.inner.writer_thread.lock().unwrap().take() {
            let _ = handle.join();
        }
        self.inner.db.write().unwrap().take();
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                StoreError::Storage(format!("cannot create data dir {}: {e}", dir.display()))
            })?;
    }
    let meta = std::fs::metadata(dir)
        .map_err(|e| StoreError::Storage(format!("cannot read data dir {}: {e}", dir.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            StoreError::Storage(format!(
                "cannot restrict data dir {} to 0700: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}
