//! Crash test: proves that an acknowledged write survives a hard crash and that the index never
//! goes backwards. A child `legate agent` process, serving 127.0.0.1 from one data dir kept
//! across restarts, is put under concurrent KV write load and killed with SIGKILL (no shutdown,
//! no final flush) at a random moment while writes are in flight, several times in a row.
//! After every restart on the same data dir the test checks that:
//! - every PUT that was answered `200 true` (acknowledged, so past the group commit's fsync) in
//!   any earlier round is present with its value, as is every key any earlier read returned;
//! - nothing appears that was never written, and a key's ModifyIndex never changes;
//! - `X-Consul-Index` of `GET /v1/kv/crash/?recurse` covers every ModifyIndex seen and never
//!   drops below the previous round's, and the KV table index is >= every index any client ever
//!   read (including the ones polled during the load just before the kill);
//! - a fresh write after the restart gets a ModifyIndex above every index ever seen.
//!
//! Any failure here means Legate can lose acknowledged data or reuse indexes after a crash
//! (e.g. acknowledging before the commit is durable, or restoring a stale global index).

use base64::Engine;
use rand::Rng;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many times the agent is SIGKILLed (it is started one more time, for the final check).
const ROUNDS: usize = 8;
/// Concurrent writer tasks per round.
const WRITERS: usize = 8;
/// Bounds each writer's PUTs in one round, so nothing loops forever.
const MAX_PUTS_PER_WRITER: usize = 100_000;
/// How long a started agent has to answer `/v1/status/leader`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Per-request timeout for every HTTP call of the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct KvEntry {
    key: String,
    value: Option<String>,
    create_index: u64,
    modify_index: u64,
}

/// The value written under `key`: derived from the key, so any entry can be checked alone.
fn value_for(key: &str) -> String {
    format!("value-of:{key}")
}

/// A running child agent; killed (SIGKILL) and reaped when dropped, so a panic never leaks it.
struct ChildAgent {
    child: Child,
    base: String,
    log: PathBuf,
}

impl ChildAgent {
    fn start(data_dir: &Path, log: PathBuf) -> ChildAgent {
        let port = free_port();
        let log_file = std::fs::File::create(&log).expect("create agent log file");
        let child = Command::new(env!("CARGO_BIN_EXE_legate"))
            .arg("agent")
            .arg("-data-dir")
            .arg(data_dir)
            .arg("-http-port")
            .arg(port.to_string())
            .arg("-dns-port=-1")
            .arg("-client")
            .arg("127.0.0.1")
            .arg("-bind")
            .arg("127.0.0.1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log file handle"))
            .stderr(log_file)
            .spawn()
            .expect("spawn legate agent");
        ChildAgent {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Polls `/v1/status/leader` until it answers 200, failing clearly on exit or timeout.
    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/v1/status/leader", self.base);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on agent") {
                panic!(
                    "agent exited before becoming ready ({status}); log:\n{}",
                    log_tail(&self.log)
                );
            }
            let answered = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if answered {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "agent at {} did not answer /v1/status/leader within {READY_TIMEOUT:?}; log:\n{}",
                    self.base,
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the agent");
        self.child.wait().expect("reap the agent");
    }
}

impl Drop for ChildAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- agent log {} ---\n{}",
                self.log.display(),
                log_tail(&self.log)
            );
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(4000)));
        let _ = f.read_to_string(&mut text);
    }
    text
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("build HTTP client")
}

fn consul_index(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("X-Consul-Index")
        .unwrap_or_else(|| panic!("no X-Consul-Index on {} {}", resp.status(), resp.url()))
        .to_str()
        .unwrap()
        .parse()
        .expect("numeric X-Consul-Index")
}

/// What one writer task did in one round.
#[derive(Default)]
struct WriterReport {
    /// Keys whose PUT was answered `200 true`.
    acked: Vec<String>,
    /// Every key a PUT was sent for, acknowledged or not.
    attempted: Vec<String>,
    /// The error that ended the writer (expected: the agent was killed), if any.
    ended_by: Option<String>,
}

async fn writer(
    http: reqwest::Client,
    base: String,
    round: usize,
    id: usize,
    stop: Arc<AtomicBool>,
) -> WriterReport {
    let mut report = WriterReport::default();
    for n in 0..MAX_PUTS_PER_WRITER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("crash/{round}/{id}/{n}");
        report.attempted.push(key.clone());
        let sent = http
            .put(format!("{base}/v1/kv/{key}"))
            .body(value_for(&key))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                report.ended_by = Some(format!("send: {e}"));
                break;
            }
        };
        let status = resp.status();
        match resp.text().await {
            Ok(body) if status == reqwest::StatusCode::OK && body.trim() == "true" => {
                report.acked.push(key)
            }
            Ok(body) => panic!("PUT {key} answered {status} {body:?} while the agent was up"),
            Err(e) => {
                report.ended_by = Some(format!("body: {e}"));
                break;
            }
        }
    }
    report
}

/// Polls the KV table index (`X-Consul-Index` of a single-key GET) while the writers run, so
/// the test knows the highest index a client could have read before the crash.
async fn index_observer(
    http: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
    max_seen: Arc<AtomicU64>,
) {
    let url = format!("{base}/v1/kv/crash-observer/none");
    for _ in 0..100_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match http.get(&url).send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
                max_seen.fetch_max(consul_index(&resp), Ordering::SeqCst);
            }
            Ok(resp) => panic!("observer GET answered {}", resp.status()),
            Err(_) => break, // the agent was killed
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Everything the test has learnt so far, across rounds.
#[derive(Default)]
struct Ledger {
    /// Acknowledged keys, with the round they were written in.
    acked: BTreeMap<String, usize>,
    /// Every key a PUT was ever sent for.
    attempted: HashSet<String>,
    /// Every key any read returned, with its ModifyIndex then.
    observed: BTreeMap<String, u64>,
    /// Highest index (X-Consul-Index or ModifyIndex) any read ever returned.
    max_index_seen: u64,
    /// `X-Consul-Index` of the previous `crash/?recurse` check.
    last_prefix_index: u64,
}

/// After a restart: checks every durability and index rule against the ledger, then records
/// what it saw.
async fn verify(http: &reqwest::Client, base: &str, ledger: &mut Ledger, start: usize) {
    // The KV table index, before anything new is written.
    let resp = http
        .get(format!("{base}/v1/kv/crash-observer/none"))
        .send()
        .await
        .expect("GET table index after restart");
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
    let table_index = consul_index(&resp);
    assert!(
        table_index >= ledger.max_index_seen,
        "start {start}: KV table index went backwards after the crash: {table_index} < {} seen before",
        ledger.max_index_seen
    );

    let resp = http
        .get(format!("{base}/v1/kv/crash/?recurse"))
        .send()
        .await
        .expect("GET crash/?recurse after restart");
    let status = resp.status();
    let prefix_index = consul_index(&resp);
    let entries: Vec<KvEntry> = match status {
        reqwest::StatusCode::NOT_FOUND => Vec::new(),
        reqwest::StatusCode::OK => resp.json().await.expect("decode crash/?recurse"),
        other => panic!("start {start}: crash/?recurse answered {other}"),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut present = BTreeMap::new();
    let mut max_modify = 0;
    for e in &entries {
        assert!(
            ledger.attempted.contains(&e.key),
            "start {start}: key {:?} is present but was never written",
            e.key
        );
        let value = e
            .value
            .as_deref()
            .map(|v| b64.decode(v).expect("base64 value"))
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&value),
            value_for(&e.key),
            "start {start}: key {:?} has the wrong value",
            e.key
        );
        assert_eq!(
            e.create_index, e.modify_index,
            "start {start}: key {:?} was written once",
            e.key
        );
        max_modify = max_modify.max(e.modify_index);
        present.insert(e.key.clone(), e.modify_index);
    }

    let missing: Vec<_> = ledger
        .acked
        .iter()
        .filter(|(k, _)| !present.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "start {start}: {} acknowledged write(s) lost after SIGKILL, e.g. {:?} (of {} acknowledged, {} present)",
        missing.len(),
        &missing[..missing.len().min(10)],
        ledger.acked.len(),
        present.len()
    );
    for (key, index) in &ledger.observed {
        match present.get(key) {
            None => panic!("start {start}: key {key:?}, read back earlier, vanished after SIGKILL"),
            Some(now) => assert_eq!(now, index, "start {start}: ModifyIndex of {key:?} changed"),
        }
    }

    assert!(
        prefix_index >= max_modify,
        "start {start}: X-Consul-Index of crash/?recurse is {prefix_index}, below its entries' ModifyIndex {max_modify}"
    );
    assert!(
        prefix_index >= ledger.last_prefix_index,
        "start {start}: X-Consul-Index of crash/?recurse went backwards: {prefix_index} < {}",
        ledger.last_prefix_index
    );
    assert!(
        table_index >= prefix_index,
        "start {start}: KV table index {table_index} below the crash/ prefix index {prefix_index}"
    );

    // A fresh write must get an index above everything ever seen, before and after the crash.
    // (`X-Consul-Index` is never below 1, so on the first, empty start there is nothing to beat.)
    let before = if start == 0 {
        0
    } else {
        ledger.max_index_seen.max(table_index).max(prefix_index)
    };
    let probe = format!("crash-probe/{start}");
    let resp = http
        .put(format!("{base}/v1/kv/{probe}"))
        .body("probe")
        .send()
        .await
        .expect("PUT probe key");
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "PUT probe key");
    assert_eq!(resp.text().await.unwrap().trim(), "true", "PUT probe key");
    let resp = http
        .get(format!("{base}/v1/kv/{probe}"))
        .send()
        .await
        .expect("GET probe key");
    assert_eq!(resp.status(), reqwest::StatusCode::OK, "GET probe key");
    let probe_entries: Vec<KvEntry> = resp.json().await.expect("decode probe key");
    let probe_index = probe_entries[0].modify_index;
    assert!(
        probe_index > before,
        "start {start}: a new write after the crash got ModifyIndex {probe_index}, not above {before} seen before"
    );

    println!(
        "start {start}: {} keys present ({} acknowledged so far), prefix index {prefix_index}, \
         table index {table_index}, new write at {probe_index}",
        present.len(),
        ledger.acked.len()
    );
    ledger.observed.extend(present);
    ledger.max_index_seen = probe_index;
    ledger.last_prefix_index = prefix_index;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_and_index_never_goes_backwards() {
    let began = Instant::now();
    let data = tempfile::tempdir().expect("data tempdir");
    let logs = tempfile::tempdir().expect("log tempdir");
    let data_dir = data.path().join("data");
    let mut ledger = Ledger::default();
    let mut rng = rand::rng();

    for round in 0..=ROUNDS {
        let mut agent =
            ChildAgent::start(&data_dir, logs.path().join(format!("agent-{round}.log")));
        let http = client();
        agent.wait_ready(&http).await;
        if round > 0 {
            // The start after a kill says it repaired the store.
            let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
            assert!(
                log.contains("not shut down cleanly") && log.contains("store repaired"),
                "round {round}: no repair logged after the kill:\n{log}"
            );
        }
        verify(&http, &agent.base, &mut ledger, round).await;
        if round == ROUNDS {
            break; // the final start only verifies
        }

        let stop = Arc::new(AtomicBool::new(false));
        let observed_index = Arc::new(AtomicU64::new(0));
        let observer = tokio::spawn(index_observer(
            http.clone(),
            agent.base.clone(),
            stop.clone(),
            observed_index.clone(),
        ));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                tokio::spawn(writer(
                    http.clone(),
                    agent.base.clone(),
                    round,
                    id,
                    stop.clone(),
                ))
            })
            .collect();

        let delay = Duration::from_millis(rng.random_range(200..=800));
        tokio::time::sleep(delay).await;
        agent.sigkill();
        stop.store(true, Ordering::Relaxed);

        let (mut acked, mut interrupted) = (0, 0);
        for w in writers {
            let report = tokio::time::timeout(REQUEST_TIMEOUT * 2, w)
                .await
                .expect("writer did not stop after the kill")
                .expect("writer task panicked");
            acked += report.acked.len();
            interrupted += report.ended_by.is_some() as usize;
            ledger.attempted.extend(report.attempted);
            ledger
                .acked
                .extend(report.acked.into_iter().map(|k| (k, round)));
        }
        tokio::time::timeout(REQUEST_TIMEOUT * 2, observer)
            .await
            .expect("observer did not stop after the kill")
            .expect("observer task panicked");
        ledger.max_index_seen = ledger
            .max_index_seen
            .max(observed_index.load(Ordering::SeqCst));
        println!(
            "round {round}: SIGKILL after {delay:?}: {acked} writes acknowledged, {interrupted}/{WRITERS} \
             writers cut off mid-request, highest index read before the kill {}",
            observed_index.load(Ordering::SeqCst)
        );
        assert!(
            acked > 0,
            "round {round}: no write was acknowledged in {delay:?}"
        );
    }
    println!(
        "crash test: {ROUNDS} SIGKILLs, {} acknowledged writes, {:?}",
        ledger.acked.len(),
        began.elapsed()
    );
}
