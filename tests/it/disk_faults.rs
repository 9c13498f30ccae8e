//! A data file the agent cannot verify stops the start with an error naming the file and the
//! way out (restore a snapshot); the agent never serves from it. A write the disk refuses
//! answers 500 with the cause and leaves nothing behind, while reads go on; writes resume
//! when the disk does, without a restart. A write whose flush failed is answered by what the
//! file holds once it reopens, or discarded for good when it cannot decide in time.

use crate::common::{agent, free_port, index_of, wait_exit, wait_ready, TestAgent};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs an agent on `data` long enough to write a key, then stops it cleanly.
async fn data_dir_with_a_key(data: &Path) {
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = agent(&["-data-dir", data.to_str().unwrap(), "-http-port", &port]);
    wait_ready(&base).await;
    let put = reqwest::Client::new()
        .put(format!("{base}/v1/kv/kept"))
        .body("value")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

/// Starts an agent on `data` and returns what it printed on stderr when it stopped.
fn failed_start(data: &Path) -> String {
    let port = free_port().to_string();
    let mut child = agent(&["-data-dir", data.to_str().unwrap(), "-http-port", &port]);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    err
}

fn assert_names_the_way_out(err: &str, file: &Path) {
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("cannot be used"), "{err}");
    assert!(err.contains("legate snapshot restore -data-dir"), "{err}");
}

#[tokio::test]
async fn a_record_that_does_not_decode_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    data_dir_with_a_key(&data).await;
    let file = data.join(legate::store::DB_FILE);
    {
        let db = redb::Database::open(&file).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(legate::store::tables::raw("kv"))
            .unwrap()
            .insert("kept", b"\x01not a record".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = failed_start(&data);
    assert_names_the_way_out(&err, &file);
    assert!(err.contains("table kv at key \"kept\""), "{err}");
}

#[tokio::test]
async fn a_data_file_that_fails_the_database_checks_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    data_dir_with_a_key(&data).await;
    let file = data.join(legate::store::DB_FILE);
    // Damage the database header's magic and its pages.
    let mut bytes = std::fs::read(&file).unwrap();
    for b in bytes.iter_mut().take(64) {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    let err = failed_start(&data);
    assert_names_the_way_out(&err, &file);
}

/// Which of the disk's operations fail while it is full.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refused {
    /// Writes, flushes and resizes: nothing reaches the file.
    Everything,
    /// Flushes alone: writes land in the page cache but are never known to be durable.
    Flushes,
}

/// redb's file backend, whose operations (`refused`) fail with "no space left on device"
/// while `full` is set: a full disk on command.
#[derive(Debug)]
struct FillingDisk {
    file: redb::backends::FileBackend,
    full: Arc<AtomicBool>,
    refused: Refused,
}

impl FillingDisk {
    fn refuse(&self, flush: bool) -> std::io::Result<()> {
        let refused = flush || self.refused == Refused::Everything;
        match refused && self.full.load(Ordering::SeqCst) {
            true => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            false => Ok(()),
        }
    }
}

macro_rules! forward_locks {
    ($($method:ident -> $answer:ty),*) => {$(
        fn $method(&self, start: Bound<u64>, end: Bound<u64>) -> Result<$answer, redb::BackendError> {
            self.file.$method(start, end)
        }
    )*};
}

impl redb::StorageBackend for FillingDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.refuse(false)?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.refuse(true)?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.refuse(false)?;
        self.file.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }
    // The file's locks, so reopening it after a fault meets them as the agent's own file does.
    forward_locks!(
        try_lock_range -> bool,
        try_lock_shared_range -> bool,
        lock_range -> (),
        lock_shared_range -> (),
        unlock_range -> (),
        query_lock_range -> bool
    );
}

/// An agent whose disk fills up, refusing `refused`, while the returned flag is set; `key` is
/// written first (as `kept`) and the index after it returned.
async fn agent_on_a_filling_disk(refused: Refused, key: &str) -> (TestAgent, Arc<AtomicBool>, u64) {
    let full = Arc::new(AtomicBool::new(false));
    let flag = full.clone();
    let opener: legate::store::DatabaseOpener = Arc::new(move |builder, path| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| redb::DatabaseError::Storage(redb::StorageError::Io(e)))?;
        builder.create_with_backend(FillingDisk {
            file: redb::backends::FileBackend::new(file)?,
            full: flag.clone(),
            refused,
        })
    });
    let agent = TestAgent::start_on(&opener).await;
    agent.put_ok(&format!("/v1/kv/{key}"), "kept").await;
    let index = index_of(&agent.get(&format!("/v1/kv/{key}")).await);
    (agent, full, index)
}

async fn value_of(agent: &TestAgent, key: &str) -> Option<String> {
    let resp = agent.get(&format!("/v1/kv/{key}?raw")).await;
    match resp.status().as_u16() {
        200 => Some(resp.text().await.unwrap()),
        404 => None,
        other => panic!("GET {key}: {other} {}", resp.text().await.unwrap()),
    }
}

/// Fills the disk and writes `key`: the write answers 500 naming the cause, which is returned.
async fn write_on_a_full_disk(agent: &TestAgent, full: &AtomicBool, key: &str) -> String {
    full.store(true, Ordering::SeqCst);
    let refused = agent.put(&format!("/v1/kv/{key}"), "lost").await;
    assert_eq!(refused.status(), 500);
    let cause = refused.text().await.unwrap();
    assert!(cause.contains("No space left on device"), "{cause}");
    cause
}

#[tokio::test]
async fn a_write_the_disk_refuses_answers_500_and_writes_resume_when_it_has_space_again() {
    let (agent, full, index) = agent_on_a_filling_disk(Refused::Everything, "before").await;

    let cause = write_on_a_full_disk(&agent, &full, "during").await;
    assert!(cause.contains("could not be made durable"), "{cause}");
    let session = agent.put("/v1/session/create", "{}").await;
    assert_eq!(session.status(), 500);

    // Reads and blocking queries go on while the disk is full.
    assert_eq!(value_of(&agent, "before").await.as_deref(), Some("kept"));
    assert_eq!(value_of(&agent, "during").await, None);
    let started = std::time::Instant::now();
    let blocked = agent
        .get(&format!("/v1/kv/before?index={index}&wait=1s"))
        .await;
    assert_eq!(blocked.status(), 200);
    assert_eq!(
        index_of(&blocked),
        index,
        "the refused write moved the index"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Still full: still refused, still nothing applied.
    assert_eq!(agent.put("/v1/kv/during", "lost").await.status(), 500);

    full.store(false, Ordering::SeqCst);
    agent.put_ok("/v1/kv/after", "written").await;
    let after = agent.get("/v1/kv/after").await;
    assert_eq!(index_of(&after), index + 1, "a refused write took an index");
    assert_eq!(value_of(&agent, "during").await, None);
    let (_, sessions) = agent.get_json("/v1/session/list").await;
    assert_eq!(sessions, serde_json::json!([]));

    let agent = agent.restart().await;
    assert_eq!(value_of(&agent, "before").await.as_deref(), Some("kept"));
    assert_eq!(value_of(&agent, "after").await.as_deref(), Some("written"));
    assert_eq!(value_of(&agent, "during").await, None);
}

/// A blocking query on `key` past `index`, parked before this returns; it resolves with the
/// index and raw value it wakes with.
async fn park(agent: &TestAgent, key: &str, index: u64) -> tokio::task::JoinHandle<(u64, String)> {
    let url = agent.url(&format!("/v1/kv/{key}?index={index}&wait=30s&raw"));
    let parked = tokio::spawn(async move {
        let resp = reqwest::get(url).await.unwrap();
        (index_of(&resp), resp.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    parked
}

#[tokio::test]
async fn a_blocking_query_parked_across_a_refused_write_wakes_for_the_next_durable_one() {
    let (agent, full, index) = agent_on_a_filling_disk(Refused::Everything, "watched").await;
    let parked = park(&agent, "watched", index).await;
    write_on_a_full_disk(&agent, &full, "watched").await;
    full.store(false, Ordering::SeqCst);
    agent.put_ok("/v1/kv/watched", "two").await;
    let (woke_at, value) = tokio::time::timeout(Duration::from_secs(10), parked)
        .await
        .expect("the blocking query wakes")
        .unwrap();
    assert_eq!(value, "two");
    assert_eq!(woke_at, index + 1);
}

/// Starts `PUT /v1/kv/{key}` without waiting for its answer.
fn put_in_background(agent: &TestAgent, key: &str) -> tokio::task::JoinHandle<(u16, String)> {
    let url = agent.url(&format!("/v1/kv/{key}"));
    tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .put(url)
            .body("unflushed")
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// A commit whose pages reached the file but whose flush failed is in doubt: its reply waits,
/// reads show the store without it, and once the disk flushes again the reopened file decides.
/// Here it holds the write, so the reply is the write's own success, its watchers wake, and a
/// restart shows it.
#[tokio::test]
async fn a_commit_whose_flush_fails_is_answered_by_what_the_file_holds_once_it_reopens() {
    let (agent, full, index) = agent_on_a_filling_disk(Refused::Flushes, "before").await;
    let parked = park(&agent, "unflushed", index).await;
    full.store(true, Ordering::SeqCst);
    let write = put_in_background(&agent, "unflushed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!write.is_finished(), "answered before the file decided");
    assert_eq!(value_of(&agent, "unflushed").await, None);
    assert_eq!(value_of(&agent, "before").await.as_deref(), Some("kept"));
    assert!(
        !parked.is_finished(),
        "a watcher woke for a write not known to be durable"
    );

    full.store(false, Ordering::SeqCst);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the reply follows the reopened file")
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "true"));
    let (woke_at, value) = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("the blocking query wakes")
        .unwrap();
    assert_eq!((woke_at, value.as_str()), (index + 1, "unflushed"));
    agent.put_ok("/v1/kv/after", "written").await;
    let agent = agent.restart().await;
    assert_eq!(
        value_of(&agent, "unflushed").await.as_deref(),
        Some("unflushed")
    );
    assert_eq!(value_of(&agent, "after").await.as_deref(), Some("written"));
}

/// Fills the disk so flushes fail and writes `key`: the file cannot decide within the wait, so
/// the write answers 500, discarded; its rollback waits beside the data file.
async fn a_discarded_write(key: &str) -> (TestAgent, Arc<AtomicBool>, u64) {
    let (agent, full, index) = agent_on_a_filling_disk(Refused::Flushes, "before").await;
    full.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, cause) = put_in_background(&agent, key).await.unwrap();
    assert_eq!(status, 500, "{cause}");
    assert!(started.elapsed() >= Duration::from_secs(7), "{cause}");
    assert!(cause.contains("not known to be durable"), "{cause}");
    assert!(
        cause.contains("discarded and will not be applied"),
        "{cause}"
    );
    assert!(cause.contains("No space left on device"), "{cause}");
    assert_eq!(value_of(&agent, key).await, None);
    assert!(agent.data_dir.join(legate::store::DISCARD_FILE).exists());
    (agent, full, index)
}

/// A write answered "not applied" never appears: the file is rolled back to before it as soon
/// as it can be written, and the next write takes the index it would have had.
#[tokio::test]
async fn a_commit_the_disk_cannot_decide_in_time_is_discarded_once_it_recovers() {
    let (agent, full, index) = a_discarded_write("discarded").await;
    full.store(false, Ordering::SeqCst);
    agent.put_ok("/v1/kv/after", "written").await;
    assert_eq!(index_of(&agent.get("/v1/kv/after").await), index + 1);
    assert_eq!(value_of(&agent, "discarded").await, None);
    assert!(!agent.data_dir.join(legate::store::DISCARD_FILE).exists());
    let agent = agent.restart().await;
    assert_eq!(value_of(&agent, "discarded").await, None);
    assert_eq!(value_of(&agent, "after").await.as_deref(), Some("written"));
}

/// ... and when the agent stops before the disk recovers, the next start takes it out.
#[tokio::test]
async fn a_discarded_commit_stays_out_after_a_restart() {
    let (agent, _full, _) = a_discarded_write("discarded").await;
    let agent = agent.restart().await;
    assert_eq!(value_of(&agent, "discarded").await, None);
    assert_eq!(value_of(&agent, "before").await.as_deref(), Some("kept"));
    assert!(!agent.data_dir.join(legate::store::DISCARD_FILE).exists());
    agent.put_ok("/v1/kv/after", "written").await;
    assert_eq!(value_of(&agent, "after").await.as_deref(), Some("written"));
}
