//! `/v1/snapshot` and `legate snapshot`: point-in-time archives taken under write load, atomic
//! restores, refusal of damaged archives, and the offline (-data-dir) mode.

use crate::common::{b64, index_of, TestAgent};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// GET /v1/snapshot: the archive and its `X-Consul-Index`.
async fn save(a: &TestAgent) -> (u64, Vec<u8>) {
    let resp = a.get("/v1/snapshot").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["Content-Type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let index = index_of(&resp);
    (index, resp.bytes().await.unwrap().to_vec())
}

/// A snapshot kept under tests/fixtures: `legate-0.1-format1.snap` is an archive in the bare
/// layout Legate wrote before the Consul container (KV `fixture/a` = `one`, `fixture/b` = `two`
/// with flags 7, service `web`); `consul-shaped.snap` has Consul's container and a Raft state.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn restore(a: &TestAgent, archive: Vec<u8>) -> (u16, String) {
    let resp = a.put("/v1/snapshot", archive).await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Every KV entry: key → (value, ModifyIndex).
async fn kv_state(a: &TestAgent) -> BTreeMap<String, (String, u64)> {
    let resp = a.get("/v1/kv/?recurse").await;
    if resp.status() == 404 {
        return BTreeMap::new();
    }
    let body: Value = resp.json().await.unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = e["Value"].as_str().unwrap_or("").to_string();
            (
                e["Key"].as_str().unwrap().to_string(),
                (value, e["ModifyIndex"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// One acknowledged write of the load: the key, its new value (`None`: deleted) and the index
/// the write committed at.
#[derive(Debug, Clone)]
struct Write {
    key: String,
    value: Option<String>,
    index: u64,
}

/// Writes until `stop`, logging every acknowledged write. Each transaction writes a key of its
/// own and a per-writer marker, so even a delete learns its commit index (the marker's).
async fn writer(
    a: Arc<TestAgent>,
    id: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> Vec<Write> {
    let mut log = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("load/{id}/{}", n % 17);
        let marker = format!("load/marker-{id}");
        let value = format!("w{id}-{n}");
        let delete = n.is_multiple_of(5);
        let first = if delete {
            json!({"KV": {"Verb": "delete", "Key": key}})
        } else {
            json!({"KV": {"Verb": "set", "Key": key, "Value": b64(&value)}})
        };
        let ops = json!([first, {"KV": {"Verb": "set", "Key": marker, "Value": b64(&value)}}]);
        let resp = a
            .http
            .put(a.url("/v1/txn"))
            .json(&ops)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let results = body["Results"].as_array().unwrap();
        let index = results.last().unwrap()["KV"]["ModifyIndex"]
            .as_u64()
            .unwrap();
        log.push(Write {
            key,
            value: (!delete).then(|| b64(&value)),
            index,
        });
        log.push(Write {
            key: marker,
            value: Some(b64(&value)),
            index,
        });
        done.fetch_add(1, Ordering::Relaxed);
    }
    log
}

/// The KV state at `index` according to the write log: for each key, its last write at or
/// below `index`.
fn state_at(log: &[Write], index: u64) -> BTreeMap<String, (String, u64)> {
    let mut last: BTreeMap<String, &Write> = BTreeMap::new();
    for w in log.iter().filter(|w| w.index <= index) {
        let newer = last.get(&w.key).is_none_or(|prev| prev.index < w.index);
        if newer {
            last.insert(w.key.clone(), w);
        }
    }
    last.into_iter()
        .filter_map(|(k, w)| w.value.clone().map(|v| (k, (v, w.index))))
        .collect()
}

async fn wait_for(done: &AtomicUsize, at_least: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::Relaxed) < at_least {
        assert!(std::time::Instant::now() < deadline, "writers too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_under_concurrent_writes_restores_exactly_its_index() {
    let a = Arc::new(TestAgent::start().await);
    a.put_ok("/v1/kv/static/config", "before the load").await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|id| tokio::spawn(writer(a.clone(), id, stop.clone(), done.clone())))
        .collect();

    wait_for(&done, 200).await;
    let (snap_index, archive) = save(&a).await;
    let after_snapshot = done.load(Ordering::Relaxed);
    wait_for(&done, after_snapshot + 200).await;
    stop.store(true, Ordering::Relaxed);
    let mut log = Vec::new();
    for w in writers {
        log.extend(w.await.unwrap());
    }
    assert!(log.iter().any(|w| w.index <= snap_index));
    assert!(
        log.iter().any(|w| w.index > snap_index),
        "writes went on while the snapshot was taken"
    );

    let mut expected = state_at(&log, snap_index);
    let (_, static_entry) = a.get_json("/v1/kv/static/config").await;
    expected.insert(
        "static/config".into(),
        (
            b64("before the load"),
            static_entry[0]["ModifyIndex"].as_u64().unwrap(),
        ),
    );

    // A fresh agent gets exactly the state at the snapshot's index: same values, same
    // ModifyIndex, and nothing newer.
    let b = TestAgent::start().await;
    assert_eq!(restore(&b, archive.clone()).await, (200, String::new()));
    let restored = kv_state(&b).await;
    assert_eq!(restored, expected);
    assert!(restored.values().all(|(_, index)| *index <= snap_index));
    // Its index continues above the snapshot's.
    let (index_b, _) = b.get_json("/v1/kv/?recurse").await;
    assert!(index_b > snap_index);

    // Restoring in place rolls the loaded agent back to the same state, while its index keeps
    // climbing, and a blocking reader parked before the restore wakes with the new index.
    let (index_a, _) = a.get_json("/v1/kv/load/?recurse").await;
    let parked = {
        let a = a.clone();
        tokio::spawn(async move {
            let resp = a
                .get(&format!("/v1/kv/load/?recurse&index={index_a}&wait=30s"))
                .await;
            index_of(&resp)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(restore(&a, archive).await, (200, String::new()));
    let woke_at = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("the blocking reader woke")
        .unwrap();
    assert!(woke_at > index_a, "{woke_at} > {index_a}");
    assert_eq!(kv_state(&a).await, expected);
    a.put_ok("/v1/kv/after", "x").await;
    let (_, after) = a.get_json("/v1/kv/after").await;
    assert!(after[0]["ModifyIndex"].as_u64().unwrap() > woke_at);
}

#[tokio::test]
async fn damaged_or_foreign_archives_are_refused_and_nothing_changes() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/keep", "me").await;
    let (_, good) = save(&a).await;
    a.put_ok("/v1/kv/later", "too").await;
    let before = kv_state(&a).await;
    let (index_before, _) = a.get_json("/v1/kv/?recurse").await;

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // Damage inside the gzip stream fails its decoding or a checksum.
        ("corrupt", flipped, ""),
        ("truncated", good[..good.len() - 10].to_vec(), "truncated"),
        ("header only", good[..10].to_vec(), "truncated"),
        ("empty", Vec::new(), "not a Legate snapshot"),
        (
            "consul",
            fixture("consul-shaped.snap"),
            "this is a Consul snapshot",
        ),
        (
            "json",
            b"{\"Key\": \"v\"}".to_vec(),
            "not a Legate snapshot",
        ),
    ];
    for (name, archive, reason) in cases {
        let (status, message) = restore(&a, archive).await;
        assert_eq!(status, 400, "{name}: {message}");
        assert!(
            message.starts_with("invalid snapshot: ") && message.contains(reason),
            "{name}: {message}"
        );
    }
    assert_eq!(kv_state(&a).await, before);
    let (index_after, _) = a.get_json("/v1/kv/?recurse").await;
    assert_eq!(index_after, index_before);
    // The agent still restores a good one.
    assert_eq!(restore(&a, good).await.0, 200);
    assert!(!kv_state(&a).await.contains_key("later"));
}

#[tokio::test]
async fn services_checks_sessions_and_locks_come_back() {
    let fast = |f: &mut legate::config::AgentFlags| f.hcl = vec!["session_ttl_min = \"1s\"".into()];
    let a = TestAgent::start_with(fast).await;
    let resp = a
        .put_json(
            "/v1/agent/service/register",
            json!({"Name": "web", "ID": "web-1", "Port": 8080, "Tags": ["v1"],
                   "Check": {"CheckID": "web-ttl", "TTL": "2s"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        a.put("/v1/agent/check/pass/web-ttl", "").await.status(),
        200
    );
    let resp = a
        .put_json("/v1/session/create", json!({"Name": "holder"}))
        .await;
    let holder = resp.json::<Value>().await.unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.put_ok(&format!("/v1/kv/locks/leader?acquire={holder}"), "me")
            .await,
        "true"
    );
    let resp = a
        .put_json(
            "/v1/session/create",
            json!({"Name": "ephemeral", "TTL": "1s"}),
        )
        .await;
    let ephemeral = resp.json::<Value>().await.unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, archive) = save(&a).await;

    let b = TestAgent::start_with(fast).await;
    assert_eq!(restore(&b, archive).await.0, 200);
    let (_, services) = b.get_json("/v1/agent/services").await;
    assert_eq!(services["web-1"]["Port"], 8080);
    let (_, catalog) = b.get_json("/v1/catalog/service/web").await;
    assert_eq!(catalog[0]["ServiceID"], "web-1");
    let (_, lock) = b.get_json("/v1/kv/locks/leader").await;
    assert_eq!(lock[0]["Session"], holder.as_str());
    let (_, info) = b.get_json(&format!("/v1/session/info/{holder}")).await;
    assert_eq!(info[0]["Name"], "holder");
    // The restored TTL check is live on the new agent: it can be updated, and it expires.
    assert_eq!(
        b.put("/v1/agent/check/pass/web-ttl", "").await.status(),
        200
    );
    let checks = b
        .eventually("/v1/agent/checks", |c| c["web-ttl"]["Status"] == "critical")
        .await;
    assert!(checks["web-ttl"]["Output"]
        .as_str()
        .unwrap()
        .starts_with("TTL expired"));
    // So are the restored session timers: the unrenewed TTL session goes away.
    b.eventually(&format!("/v1/session/info/{ephemeral}"), |s| {
        s == &json!([])
    })
    .await;
    // This agent is still registered in its own catalog.
    let (_, nodes) = b.get_json("/v1/catalog/nodes").await;
    assert_eq!(nodes[0]["Node"], "test-node");
}

#[tokio::test]
async fn archives_beyond_the_default_body_limit_restore() {
    let a = TestAgent::start().await;
    // Values that don't compress, so the gzip container stays large.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..14 {
        let big: Vec<u8> = (0..400 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        a.put_ok(&format!("/v1/kv/big/{i}"), big).await;
    }
    let (_, archive) = save(&a).await;
    assert!(archive.len() > 5 * 1024 * 1024);
    let b = TestAgent::start().await;
    assert_eq!(restore(&b, archive).await.0, 200);
    assert_eq!(kv_state(&b).await, kv_state(&a).await);
}

// ----- the CLI -----

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn legate(addr: Option<&TestAgent>, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"));
    cmd.args(args).env_remove("CONSUL_HTTP_TOKEN");
    match addr {
        Some(a) => cmd.env("CONSUL_HTTP_ADDR", a.base.trim_start_matches("http://")),
        // Nothing listens there: offline commands must not need an agent.
        None => cmd.env("CONSUL_HTTP_ADDR", "127.0.0.1:1"),
    };
    let out = cmd.output().await.unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn cli_save_inspect_restore() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/cli/one", "1").await;
    a.put_ok("/v1/kv/cli/two", "2").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let file = file.to_str().unwrap();

    let out = legate(Some(&a), &["snapshot", "save", file]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (index, _) = a.get_json("/v1/kv/?recurse").await;
    assert_eq!(
        out.stdout,
        format!("Saved and verified snapshot to index {index}\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!std::path::Path::new(&format!("{file}.unverified")).exists());

    let out = legate(None, &["snapshot", "inspect", file]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with(" ID           1-"), "{}", out.stdout);
    assert_eq!(lines[2], format!(" Index        {index}"));
    assert_eq!(lines[3], " Term         1");
    assert_eq!(lines[4], " Version      1");
    assert!(lines[6].starts_with(" Type ") && lines[6].contains("Count"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" kv ") && l.contains(" 2 ")),
        "{}",
        out.stdout
    );
    assert!(lines.last().unwrap().starts_with(" Total "));
    let out = legate(None, &["snapshot", "inspect", "-format=json", file]).await;
    let body: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(body["Meta"]["Index"], index);
    assert_eq!(body["Legate"]["Node"], "test-node");
    let kv = body["Stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"] == "kv")
        .unwrap();
    assert_eq!(kv["Count"], 2);

    a.put_ok("/v1/kv/cli/three", "3").await;
    let out = legate(Some(&a), &["snapshot", "restore", file]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Restored snapshot\n"),
        "{}",
        out.stderr
    );
    assert_eq!(a.get("/v1/kv/cli/three").await.status(), 404);

    // Errors, in consul's words.
    let out = legate(Some(&a), &["snapshot", "save"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Missing FILE argument\n")
    );
    let out = legate(Some(&a), &["snapshot", "restore", "a", "b"]).await;
    assert_eq!(out.stderr, "Too many arguments (expected 1, got 2)\n");
    let garbage = dir.path().join("garbage.snap");
    std::fs::write(&garbage, b"not a snapshot at all").unwrap();
    let out = legate(
        Some(&a),
        &["snapshot", "restore", garbage.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error restoring snapshot: Unexpected response code: 400 (invalid snapshot: not a Legate snapshot"),
        "{}",
        out.stderr
    );
    let out = legate(None, &["snapshot", "inspect", garbage.to_str().unwrap()]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error reading snapshot: invalid snapshot"),
        "{}",
        out.stderr
    );
    let out = legate(None, &["snapshot", "inspect", "/no/such/file"]).await;
    assert!(
        out.stderr.starts_with("Error opening snapshot file: "),
        "{}",
        out.stderr
    );
    assert_eq!(a.get("/v1/kv/cli/one").await.status(), 200);
}

#[tokio::test]
async fn offline_save_and_restore_with_a_stopped_agent() {
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("a");
    let file = dir.path().join("offline.snap");
    let file = file.to_str().unwrap();
    let a = TestAgent::start_in(&data_a, |_| {}).await;
    a.put_ok("/v1/kv/offline/k", "v").await;
    let resp = a
        .put_json(
            "/v1/agent/service/register",
            json!({"Name": "db", "ID": "db-1", "Port": 5432}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let expected = kv_state(&a).await;
    // The global index, which an offline save of the same state reports too.
    let (index, _) = save(&a).await;

    // While the agent holds the data dir, offline mode refuses clearly.
    let data_a_str = data_a.to_str().unwrap();
    let out = legate(None, &["snapshot", "save", "-data-dir", data_a_str, file]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is in use by a running agent"),
        "{}",
        out.stderr
    );
    assert!(!std::path::Path::new(file).exists());

    drop(a); // stops the agent and closes its store; the data dir stays
    let out = legate(None, &["snapshot", "save", "-data-dir", data_a_str, file]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("Saved and verified snapshot to index {index}\n")
    );

    // Online restore of the offline backup into another running agent.
    let b = TestAgent::start().await;
    let out = legate(Some(&b), &["snapshot", "restore", file]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(kv_state(&b).await, expected);
    let (_, services) = b.get_json("/v1/agent/services").await;
    assert_eq!(services["db-1"]["Port"], 5432);

    // Offline restore into a new data dir, then an agent started on it has everything.
    let data_c = dir.path().join("c");
    let out = legate(
        None,
        &[
            "snapshot",
            "restore",
            "-data-dir",
            data_c.to_str().unwrap(),
            file,
        ],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Restored snapshot\n"),
        "{}",
        out.stderr
    );
    let c = TestAgent::start_in(&data_c, |_| {}).await;
    assert_eq!(kv_state(&c).await, expected);
    let (_, services) = c.get_json("/v1/agent/services").await;
    assert_eq!(services["db-1"]["Service"], "db");
    let (index_c, _) = c.get_json("/v1/kv/?recurse").await;
    assert!(index_c > index);
}

/// Archives written before the Consul container (the bare `state.bin`) still inspect and
/// restore.
#[tokio::test]
async fn archives_in_the_earlier_layout_still_restore() {
    let a = TestAgent::start().await;
    assert_eq!(restore(&a, fixture("legate-0.1-format1.snap")).await.0, 200);
    let state = kv_state(&a).await;
    assert_eq!(state["fixture/a"].0, b64("one"));
    assert_eq!(state["fixture/b"].0, b64("two"));
    let (_, b) = a.get_json("/v1/kv/fixture/b").await;
    assert_eq!(b[0]["Flags"], 7);
    let path = format!(
        "{}/tests/fixtures/legate-0.1-format1.snap",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = legate(None, &["snapshot", "inspect", &path]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(" Index        4\n"), "{}", out.stdout);
    // Saved again, it comes out in the container.
    let (_, saved) = save(&a).await;
    assert!(saved.starts_with(&[0x1f, 0x8b]));
}

/// Regression: a bogus upload was buffered whole (up to 1 GiB) before its first byte was
/// looked at. Now it is refused after its first bytes, and the agent stops reading it.
#[tokio::test]
async fn a_bogus_upload_is_refused_after_its_first_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/keep", "me").await;
    let s = tokio::net::TcpStream::connect(a.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut r, mut s) = s.into_split();
    const DECLARED: u64 = 100 * 1024 * 1024;
    s.write_all(
        format!("PUT /v1/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: {DECLARED}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let junk = vec![b'j'; 64 * 1024];
    let mut sent = 0u64;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while sent < DECLARED {
        tokio::select! {
            written = s.write_all(&junk) => {
                if written.is_err() {
                    break;
                }
                sent += junk.len() as u64;
            }
            read = r.read(&mut buf) => {
                match read {
                    Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break,
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), r.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not a Legate snapshot"), "{answer}");
    // What the kernel's socket buffers hold, not the 100 MB.
    assert!(
        sent < 16 * 1024 * 1024,
        "the agent read {sent} bytes of a bogus upload"
    );
    assert_eq!(kv_state(&a).await["keep"].0, b64("me"));
}

/// As Consul's raft, which takes user restores one at a time: a restore arriving while another
/// is running waits for it, then runs and answers as any restore.
#[tokio::test]
async fn a_second_restore_waits_for_the_first_then_runs() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/keep", "first").await;
    let (_, first_archive) = save(&a).await;
    a.put_ok("/v1/kv/keep", "second").await;
    let (_, second_archive) = save(&a).await;
    // A restore whose upload is still coming holds the agent's one restore slot.
    let mut first = tokio::net::TcpStream::connect(a.base.trim_start_matches("http://"))
        .await
        .unwrap();
    first
        .write_all(
            format!(
                "PUT /v1/snapshot HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                first_archive.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    first
        .write_all(&first_archive[..first_archive.len() / 2])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = {
        let url = a.url("/v1/snapshot");
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .put(url)
                .body(second_archive)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!second.is_finished(), "the second restore did not wait");

    first
        .write_all(&first_archive[first_archive.len() / 2..])
        .await
        .unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second restore runs once the first is done")
        .unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    // Applied in arrival order: the second archive is what the agent now holds.
    assert_eq!(kv_state(&a).await["keep"].0, b64("second"));
}

/// Regression: `snapshot inspect /dev/zero` read without bound.
#[tokio::test]
async fn inspecting_an_endless_input_fails_at_once() {
    let started = std::time::Instant::now();
    let out = legate(None, &["snapshot", "inspect", "/dev/zero"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not a Legate snapshot"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = legate(None, &["config", "write", "/dev/zero"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("larger than"), "{}", out.stderr);
}
