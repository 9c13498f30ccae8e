//! Snapshot save and restore time, for `benches/run-snapshot.sh`.
//!
//! Starts a Legate agent (the `--legate` binary) on a temp data dir under `--dir`, fills it with
//! `--keys` KV entries (through `/v1/txn`, 128 sets per transaction) and `--services` services
//! (`/v1/agent/service/register`), then times, as a user would run them, each a separate
//! `legate` process:
//!
//! - `snapshot save FILE` from the running agent (online),
//! - `snapshot inspect FILE`,
//! - `snapshot restore FILE` into a second, empty agent, and into the loaded agent itself
//!   (every row replaced),
//! - `snapshot save -data-dir` and `snapshot restore -data-dir` (offline) once the loaded
//!   agent is stopped.
//!
//! It checks that the restored agent holds every key and service, prints one
//! `RESULT snapshot ...` line and a markdown table, and exits non-zero on any failure.
//! Without `--legate` it prints a note and does nothing, so a plain `cargo bench` stays
//! harmless.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Snapshot save/restore timing for Legate")]
struct Args {
    /// The legate binary to run (a release build).
    #[arg(long)]
    legate: Option<PathBuf>,
    /// Work directory for data dirs and the snapshot file.
    #[arg(long, default_value = "/tmp")]
    dir: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    /// KV value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Concurrent requests while loading.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A running agent started by this bench, stopped when dropped.
struct Agent {
    child: Child,
    base: String,
}

impl Agent {
    fn start(legate: &Path, data_dir: &Path, log: &Path) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(log).expect("agent log");
        let child = Command::new(legate)
            .args([
                "agent",
                "-client",
                "127.0.0.1",
                "-dns-port",
                "-1",
                "-log-level",
                "warn",
            ])
            .arg("-data-dir")
            .arg(data_dir)
            .args(["-http-port", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        Agent {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http
                .get(format!("{}/v1/status/leader", self.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agent exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready at {}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM and wait: a clean shutdown that releases the data dir.
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `legate args...` against `addr` (or none), returning wall time and stdout.
fn timed(legate: &Path, addr: Option<&str>, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(legate)
        .args(args)
        .env("CONSUL_HTTP_ADDR", addr.unwrap_or("127.0.0.1:1"))
        .env_remove("CONSUL_HTTP_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("legate runs");
    let took = start.elapsed();
    if !out.status.success() {
        panic!(
            "legate {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends `bodies` to `url` with `concurrency` requests in flight, each must answer 200.
async fn load(http: &reqwest::Client, url: String, bodies: Vec<String>, concurrency: usize) {
    use futures_util::StreamExt;
    futures_util::stream::iter(bodies)
        .map(|body| {
            let request = http.put(&url).body(body);
            async move {
                let resp = request.send().await.expect("request");
                let status = resp.status();
                if !status.is_success() {
                    panic!("{status}: {}", resp.text().await.unwrap_or_default());
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

async fn fill(http: &reqwest::Client, agent: &Agent, args: &Args) {
    let value = B64.encode(
        (0..args.value_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let keys: Vec<usize> = (0..args.keys).collect();
    let txns: Vec<String> = keys
        .chunks(128)
        .map(|chunk| {
            let ops: Vec<serde_json::Value> = chunk
                .iter()
                .map(|i| {
                    serde_json::json!({"KV": {"Verb": "set", "Key": format!("bench/{:03}/k{i:06}", i % 997), "Value": value}})
                })
                .collect();
            serde_json::Value::Array(ops).to_string()
        })
        .collect();
    load(
        http,
        format!("{}/v1/txn", agent.base),
        txns,
        args.concurrency,
    )
    .await;
    let services: Vec<String> = (0..args.services)
        .map(|i| {
            serde_json::json!({
                "Name": format!("svc-{}", i % 500),
                "ID": format!("svc-{i:05}"),
                "Port": 10_000 + (i % 50_000),
                "Address": format!("10.0.{}.{}", i / 250 % 256, i % 250),
                "Tags": ["bench", format!("shard-{}", i % 16)],
                "Meta": {"version": "1", "index": i.to_string()},
            })
            .to_string()
        })
        .collect();
    load(
        http,
        format!("{}/v1/agent/service/register", agent.base),
        services,
        args.concurrency,
    )
    .await;
}

/// Number of KV keys and agent services an agent holds.
async fn counts(http: &reqwest::Client, agent: &Agent) -> (usize, usize) {
    let keys: Vec<String> = http
        .get(format!("{}/v1/kv/?keys", agent.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let services: serde_json::Map<String, serde_json::Value> = http
        .get(format!("{}/v1/agent/services", agent.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (keys.len(), services.len())
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

async fn run(args: Args, legate: PathBuf) -> bool {
    let work = tempfile::Builder::new()
        .prefix("legate-snapshot-bench.")
        .tempdir_in(&args.dir)
        .expect("work dir");
    let w = work.path();
    let file = w.join("bench.snap");
    let file_s = file.to_str().unwrap();
    let http = reqwest::Client::new();

    let mut a = Agent::start(&legate, &w.join("a"), &w.join("a.log"));
    a.ready(&http).await;
    let started = Instant::now();
    fill(&http, &a, &args).await;
    let fill_time = started.elapsed();
    let loaded = counts(&http, &a).await;
    eprintln!(
        "== loaded {} keys and {} services in {}s",
        loaded.0,
        loaded.1,
        secs(fill_time)
    );

    let (save_online, out) = timed(&legate, Some(a.addr()), &["snapshot", "save", file_s]);
    eprintln!("== {}", out.trim());
    let size = std::fs::metadata(&file).unwrap().len();
    let (inspect, out) = timed(&legate, None, &["snapshot", "inspect", file_s]);
    eprintln!("{out}");

    let mut b = Agent::start(&legate, &w.join("b"), &w.join("b.log"));
    b.ready(&http).await;
    let (restore_empty, _) = timed(&legate, Some(b.addr()), &["snapshot", "restore", file_s]);
    let restored = counts(&http, &b).await;
    b.stop();
    let (restore_loaded, _) = timed(&legate, Some(a.addr()), &["snapshot", "restore", file_s]);
    let after_in_place = counts(&http, &a).await;

    a.stop();
    let offline_file = w.join("offline.snap");
    let offline_s = offline_file.to_str().unwrap();
    let data_a = w.join("a");
    let (save_offline, _) = timed(
        &legate,
        None,
        &[
            "snapshot",
            "save",
            "-data-dir",
            data_a.to_str().unwrap(),
            offline_s,
        ],
    );
    let data_c = w.join("c");
    let (restore_offline, _) = timed(
        &legate,
        None,
        &[
            "snapshot",
            "restore",
            "-data-dir",
            data_c.to_str().unwrap(),
            offline_s,
        ],
    );

    let ok = restored.0 == args.keys && restored.1 == args.services && after_in_place == restored;
    println!(
        "RESULT snapshot keys={} services={} value_size={} archive_bytes={size} fill_secs={} \
         save_secs={} inspect_secs={} restore_empty_secs={} restore_in_place_secs={} \
         offline_save_secs={} offline_restore_secs={} verified={ok}",
        args.keys,
        args.services,
        args.value_size,
        secs(fill_time),
        secs(save_online),
        secs(inspect),
        secs(restore_empty),
        secs(restore_loaded),
        secs(save_offline),
        secs(restore_offline),
    );
    println!();
    println!(
        "| {} keys + {} services, archive {:.1} MiB | seconds |",
        args.keys,
        args.services,
        size as f64 / (1024.0 * 1024.0)
    );
    println!("| --- | --- |");
    for (name, took) in [
        ("`snapshot save` (online)", save_online),
        ("`snapshot inspect`", inspect),
        ("`snapshot restore` into an empty agent", restore_empty),
        (
            "`snapshot restore` over the same data (in place)",
            restore_loaded,
        ),
        ("`snapshot save -data-dir` (offline)", save_offline),
        (
            "`snapshot restore -data-dir` (offline, new dir)",
            restore_offline,
        ),
    ] {
        println!("| {name} | {} |", secs(took));
    }
    if !ok {
        eprintln!(
            "restored agent holds {restored:?} (keys, services), in place {after_in_place:?}; \
             expected ({}, {})",
            args.keys, args.services
        );
    }
    ok
}

fn main() {
    let args = Args::parse();
    let Some(legate) = args.legate.clone() else {
        eprintln!("snapshot bench: no --legate given, nothing to do (see benches/run-snapshot.sh)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if !runtime.block_on(run(args, legate)) {
        std::process::exit(1);
    }
}
