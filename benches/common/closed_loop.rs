//! The closed loop shared by the KV load generators (`benches/kv_load.rs` over HTTP and
//! `benches/etcd-grpc/` over etcd's native gRPC), included by both with `#[path]` so their
//! RESULT lines measure exactly the same thing.
//!
//! Each of `--concurrency` clients has one operation in flight at a time. Keys come round-robin
//! from a pool of `--keys` keys (`bench/k00000`, ...), so a PUT run touches every key many
//! times and `--ops <keys>` with `--op put` preloads the whole pool exactly once. Operations
//! started during the warm-up are not measured.

use clap::{Args, ValueEnum};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Op {
    Put,
    Get,
}

/// The flags every load generator takes.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8500 (loopback only).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, value_enum, default_value = "put")]
    pub op: Op,
    /// Clients with one request in flight each.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Measured seconds (after the warm-up); the run stops at this or at `--ops`, whichever first.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many operations (e.g. `--ops 1000` to preload a 1000-key pool).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Unmeasured seconds before the measurement (opens connections, warms caches).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Tokio worker threads for the client.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

impl LoadArgs {
    /// The key pool, in order.
    pub fn key_pool(&self) -> impl Iterator<Item = String> {
        (0..self.keys).map(|i| format!("bench/k{i:05}"))
    }

    /// The value every PUT writes.
    pub fn value(&self) -> Vec<u8> {
        (0..self.value_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect()
    }

    /// The client's runtime: few threads, since the servers share the machine's cores with it.
    pub fn runtime(&self) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.threads.max(1))
            .enable_all()
            .build()
            .expect("tokio runtime")
    }
}

struct State {
    limit: u64,
    keys: u64,
    /// Next operation number; key = number % keys.
    next: AtomicU64,
    /// Operations started after the warm-up are measured; `measuring` flips when it ends.
    measuring: AtomicBool,
    stop: AtomicBool,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Runs the load and prints its RESULT line, e.g.
/// `RESULT target=legate op=put concurrency=64 ops=123 errors=0 secs=10.000 ops_per_sec=12.3 p50_ms=1.234 p99_ms=5.678 max_ms=9.1`.
/// `op(i)` does one operation on key `i` of the pool and says why it failed, if it did.
/// Returns whether every operation succeeded.
pub async fn run<F, Fut>(args: &LoadArgs, target: &str, op: F) -> bool
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    assert!(
        args.concurrency > 0 && args.keys > 0,
        "--concurrency and --keys must be positive"
    );
    // A bounded `--ops` run (a preload) measures everything; a timed run skips the warm-up.
    let warmup = if args.ops.is_some() {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.warmup)
    };
    let state = Arc::new(State {
        limit: args.ops.unwrap_or(u64::MAX),
        keys: args.keys as u64,
        next: AtomicU64::new(0),
        measuring: AtomicBool::new(warmup.is_zero()),
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let op = Arc::new(op);
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(client_loop(state.clone(), op.clone())))
        .collect();

    // Throughput counts operations *completed* within the window by clients that started them
    // measured (latencies recorded), over its length.
    tokio::time::sleep(warmup).await;
    state.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let window = Duration::from_secs_f64(args.duration);
    let timer = tokio::spawn({
        let state = state.clone();
        async move {
            tokio::time::sleep(window).await;
            state.stop.store(true, Ordering::Relaxed);
        }
    });
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.expect("client task"));
    }
    let secs = start.elapsed().as_secs_f64();
    timer.abort();

    latencies.sort_unstable();
    let ms = |us: u32| us as f64 / 1000.0;
    let errors = state.errors.load(Ordering::Relaxed);
    println!(
        "RESULT target={target} op={} concurrency={} ops={} errors={errors} secs={secs:.3} ops_per_sec={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        format!("{:?}", args.op).to_lowercase(),
        args.concurrency,
        latencies.len(),
        latencies.len() as f64 / secs,
        ms(crate::common::percentile(&latencies, 0.50)),
        ms(crate::common::percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or(0)),
    );
    if let Some(e) = state.first_error.lock().unwrap().take() {
        eprintln!("{target}: {errors} failed requests; first: {e}");
    }
    errors == 0
}

/// One client: operations back to back until told to stop; returns its measured latencies (µs).
async fn client_loop<F, Fut>(state: Arc<State>, op: Arc<F>) -> Vec<u32>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut latencies = Vec::with_capacity(1 << 16);
    while !state.stop.load(Ordering::Relaxed) {
        let n = state.next.fetch_add(1, Ordering::Relaxed);
        if n >= state.limit {
            break;
        }
        let measured = state.measuring.load(Ordering::Relaxed);
        let start = Instant::now();
        let result = op((n % state.keys) as usize).await;
        let elapsed = start.elapsed();
        if let Err(msg) = result {
            state.errors.fetch_add(1, Ordering::Relaxed);
            state.first_error.lock().unwrap().get_or_insert(msg);
            continue;
        }
        if measured {
            latencies.push(elapsed.as_micros().min(u32::MAX as u128) as u32);
        }
    }
    latencies
}
