//! A data file the agent cannot verify stops the start with an error naming the file and the
//! way out (restore a snapshot); the agent never serves from it.

use crate::common::{agent, free_port, wait_exit, wait_ready};
use std::path::Path;
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
