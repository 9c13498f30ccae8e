//! KV load generator: durable PUT and GET throughput against Legate (Consul's `/v1/kv`) or etcd
//! (its v3 JSON gateway), for `benches/run-vs-etcd.sh`.
//!
//! Each of `--concurrency` clients sends one request at a time (a closed loop) over a shared
//! keep-alive HTTP/1.1 connection pool. Keys come round-robin from a pool of `--keys` keys
//! (`bench/k00000`, ...), so a PUT run touches every key many times and `--ops <keys>` with
//! `--op put` preloads the whole pool exactly once. Every request body and URL is built before
//! the run, so the client does as little work as possible per request (both servers share the
//! machine's cores with it).
//!
//! It prints one line, e.g.
//! `RESULT target=legate op=put concurrency=64 ops=123 errors=0 secs=10.000 ops_per_sec=12.3 p50_ms=1.234 p99_ms=5.678 max_ms=9.1`
//! and exits non-zero if any request failed.
//!
//! Run it as `cargo bench --bench kv_load -- --target legate --url http://127.0.0.1:8500 --op put
//! --concurrency 64 --duration 10`. Without `--url` it prints a note and does nothing, so a
//! plain `cargo bench` stays harmless.

#[path = "common/mod.rs"]
mod common;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    Legate,
    Etcd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Op {
    Put,
    Get,
}

#[derive(Parser, Debug)]
#[command(about = "KV load generator for Legate and etcd")]
struct Args {
    /// Server kind: `legate` (/v1/kv) or `etcd` (/v3/kv gateway).
    #[arg(long, value_enum, default_value = "legate")]
    target: Target,
    /// Base URL of the server, e.g. http://127.0.0.1:8500 (loopback only).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value = "put")]
    op: Op,
    /// Clients with one request in flight each.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds (after the warm-up); the run stops at this or at `--ops`, whichever first.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many operations (e.g. `--ops 1000` to preload a 1000-key pool).
    #[arg(long)]
    ops: Option<u64>,
    /// Unmeasured seconds before the measurement (opens connections, warms caches).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Tokio worker threads for the client.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One prepared request per key: what differs between the two APIs.
struct Request {
    method: reqwest::Method,
    url: String,
    body: Bytes,
}

fn prepare(args: &Args, base: &str) -> Vec<Request> {
    let value: Vec<u8> = (0..args.value_size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let value_b64 = B64.encode(&value);
    (0..args.keys)
        .map(|i| {
            let key = format!("bench/k{i:05}");
            match (args.target, args.op) {
                (Target::Legate, Op::Put) => Request {
                    method: reqwest::Method::PUT,
                    url: format!("{base}/v1/kv/{key}"),
                    body: Bytes::from(value.clone()),
                },
                (Target::Legate, Op::Get) => Request {
                    method: reqwest::Method::GET,
                    url: format!("{base}/v1/kv/{key}"),
                    body: Bytes::new(),
                },
                (Target::Etcd, Op::Put) => Request {
                    method: reqwest::Method::POST,
                    url: format!("{base}/v3/kv/put"),
                    body: Bytes::from(
                        serde_json::json!({"key": B64.encode(&key), "value": value_b64})
                            .to_string(),
                    ),
                },
                (Target::Etcd, Op::Get) => Request {
                    method: reqwest::Method::POST,
                    url: format!("{base}/v3/kv/range"),
                    body: Bytes::from(serde_json::json!({"key": B64.encode(&key)}).to_string()),
                },
            }
        })
        .collect()
}

/// Whether a response means the operation did what it should: a 200, and for a read, a found
/// key (Legate answers 404 for a missing key; etcd answers 200 without `kvs`).
fn success(target: Target, op: Op, status: reqwest::StatusCode, body: &[u8]) -> bool {
    if status != reqwest::StatusCode::OK {
        return false;
    }
    match (target, op) {
        (Target::Legate, Op::Put) => body.starts_with(b"true"),
        (Target::Etcd, Op::Get) => body.windows(6).any(|w| w == b"\"kvs\":"),
        _ => true,
    }
}

struct Shared {
    args: Args,
    client: reqwest::Client,
    requests: Vec<Request>,
    /// Next operation number; key = number % keys.
    next: AtomicU64,
    /// Operations started after the warm-up are measured; `measuring` flips when it ends.
    measuring: AtomicBool,
    stop: AtomicBool,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

/// One client: requests back to back until told to stop; returns its measured latencies (µs).
async fn client_loop(shared: Arc<Shared>) -> Vec<u32> {
    let mut latencies = Vec::with_capacity(1 << 16);
    let limit = shared.args.ops.unwrap_or(u64::MAX);
    while !shared.stop.load(Ordering::Relaxed) {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= limit {
            break;
        }
        let req = &shared.requests[(n % shared.requests.len() as u64) as usize];
        let measured = shared.measuring.load(Ordering::Relaxed);
        let start = Instant::now();
        let result = async {
            let resp = shared
                .client
                .request(req.method.clone(), &req.url)
                .body(req.body.clone())
                .send()
                .await?;
            let status = resp.status();
            // Reading the whole body lets the connection go back to the pool.
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let elapsed = start.elapsed();
        let failure = match result {
            Ok((status, body)) if success(shared.args.target, shared.args.op, status, &body) => {
                None
            }
            Ok((status, body)) => Some(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(msg) = failure {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            shared.first_error.lock().unwrap().get_or_insert(msg);
            continue;
        }
        if measured {
            latencies.push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        }
    }
    latencies
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    common::percentile(sorted, p) as f64 / 1000.0
}

async fn run(args: Args, base: String) -> bool {
    let requests = prepare(&args, &base);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("http client");
    // A bounded `--ops` run (a preload) measures everything; a timed run skips the warm-up.
    let warmup = if args.ops.is_some() {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.warmup)
    };
    let shared = Arc::new(Shared {
        client,
        requests,
        next: AtomicU64::new(0),
        measuring: AtomicBool::new(warmup.is_zero()),
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        first_error: std::sync::Mutex::new(None),
        args,
    });
    let tasks: Vec<_> = (0..shared.args.concurrency)
        .map(|_| tokio::spawn(client_loop(shared.clone())))
        .collect();

    // Timer: warm-up, then the measured window. Throughput counts operations *completed* within
    // the window by clients that started them measured (latencies recorded), over its length.
    tokio::time::sleep(warmup).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let window = Duration::from_secs_f64(shared.args.duration);
    let all_done = futures_util::future::join_all(tasks);
    tokio::pin!(all_done);
    let mut results = tokio::select! {
        r = &mut all_done => r,
        _ = tokio::time::sleep(window) => {
            shared.stop.store(true, Ordering::Relaxed);
            all_done.await
        }
    };
    let secs = start.elapsed().as_secs_f64();

    let mut latencies: Vec<u32> = results
        .drain(..)
        .flat_map(|r| r.expect("client task"))
        .collect();
    latencies.sort_unstable();
    let errors = shared.errors.load(Ordering::Relaxed);
    let a = &shared.args;
    println!(
        "RESULT target={} op={} concurrency={} ops={} errors={} secs={:.3} ops_per_sec={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        format!("{:?}", a.target).to_lowercase(),
        format!("{:?}", a.op).to_lowercase(),
        a.concurrency,
        latencies.len(),
        errors,
        secs,
        latencies.len() as f64 / secs,
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if let Some(e) = shared.first_error.lock().unwrap().take() {
        eprintln!("kv_load: {errors} failed requests; first: {e}");
    }
    errors == 0
}

fn main() {
    let args = Args::parse();
    let Some(base) =
        common::loopback_base("kv_load", args.url.as_deref(), "benches/run-vs-etcd.sh")
    else {
        return;
    };
    assert!(
        args.concurrency > 0 && args.keys > 0,
        "--concurrency and --keys must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    if !runtime.block_on(run(args, base)) {
        std::process::exit(1);
    }
}
