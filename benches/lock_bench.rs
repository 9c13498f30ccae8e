//! Lock benchmark: acquire/release round trips per second on one shared key, for
//! `benches/run-lock-bench.sh`.
//!
//! For each count in `--clients` (default `1,32`) it creates that many sessions (one per client,
//! as `api.Lock` makes them: TTL 15s, lock-delay 15s; renewed while the run lasts), then every
//! client loops for `--duration` seconds over the same key `bench/lock-<clients>`:
//! `PUT /v1/kv/<key>?acquire=<session>` and, when that returned `true`,
//! `PUT /v1/kv/<key>?release=<session>`. A round trip counts when both returned `true`; an
//! acquire that returned `false` (someone else holds the key) counts as a failed attempt and the
//! client tries again at once (no back-off: the worst case for the agent). After each run the
//! key's `LockIndex` must equal the number of acquisitions (one step per new holder) and no
//! request may have failed, else the exit code is non-zero.
//!
//! It prints one `RESULT ...` line per run and a markdown table.
//!
//! `cargo bench --bench lock_bench -- --url http://127.0.0.1:8500 --clients 1,32 --duration 10`.
//! Without `--url` it prints a note and does nothing, so a plain `cargo bench` stays harmless.

#[path = "common/mod.rs"]
mod common;
use clap::Parser;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Lock acquire/release round trips per second against a Legate agent")]
struct Args {
    /// Base URL of the agent, e.g. http://127.0.0.1:8500 (loopback only).
    #[arg(long)]
    url: Option<String>,
    /// Contending client counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    clients: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Default)]
struct ClientStats {
    round_trips: u64,
    acquired: u64,
    failed_acquires: u64,
    errors: u64,
    /// Acquire-to-released latency of each round trip, microseconds.
    latencies_us: Vec<u64>,
}

struct RunResult {
    clients: usize,
    secs: f64,
    stats: ClientStats,
    lock_index: u64,
}

fn main() {
    let args = Args::parse();
    let Some(url) = common::loopback_base(
        "lock_bench",
        args.url.as_deref(),
        "benches/run-lock-bench.sh",
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(async move {
        let mut results = Vec::new();
        for &clients in &args.clients {
            match run(&url, clients.max(1), Duration::from_secs_f64(args.duration)).await {
                Ok(r) => {
                    print_result(&r);
                    results.push(r);
                }
                Err(e) => {
                    eprintln!("lock_bench: run with {clients} clients failed: {e}");
                    return 1;
                }
            }
        }
        print_table(&results);
        let bad = results
            .iter()
            .any(|r| r.stats.errors > 0 || r.lock_index != r.stats.acquired);
        i32::from(bad)
    });
    std::process::exit(code);
}

async fn put(http: &reqwest::Client, url: &str, body: &'static str) -> Result<String, String> {
    let resp = http
        .put(url)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("{url}: {status} {text}"));
    }
    Ok(text)
}

async fn run(base: &str, clients: usize, duration: Duration) -> Result<RunResult, String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()
        .map_err(|e| e.to_string())?;
    let key = format!("bench/lock-{clients}");
    // A fresh key per run, so its LockIndex counts this run's acquisitions only.
    http.delete(format!("{base}/v1/kv/{key}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut sessions = Vec::new();
    for i in 0..clients {
        let body = serde_json::json!({"Name": format!("lock-bench-{i}"), "TTL": "15s"});
        let resp = http
            .put(format!("{base}/v1/session/create"))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        let id = v["ID"]
            .as_str()
            .ok_or_else(|| format!("session create: {v}"))?;
        sessions.push(id.to_string());
    }
    let stop = Arc::new(AtomicBool::new(false));
    // Keep the sessions alive (TTL/2) while the run lasts.
    let renewer = {
        let (http, base, sessions, stop) = (
            http.clone(),
            base.to_string(),
            sessions.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                for s in &sessions {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = http
                        .put(format!("{base}/v1/session/renew/{s}"))
                        .send()
                        .await;
                }
                tokio::time::sleep(Duration::from_secs(6)).await;
            }
        })
    };

    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for s in &sessions {
        let http = http.clone();
        let acquire = format!("{base}/v1/kv/{key}?acquire={s}");
        let release = format!("{base}/v1/kv/{key}?release={s}");
        tasks.push(tokio::spawn(async move {
            let mut st = ClientStats::default();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match put(&http, &acquire, "held").await {
                    Ok(t) if t == "true" => {
                        st.acquired += 1;
                        match put(&http, &release, "free").await {
                            Ok(t) if t == "true" => {
                                st.round_trips += 1;
                                st.latencies_us.push(t0.elapsed().as_micros() as u64);
                            }
                            Ok(other) => {
                                eprintln!("release answered {other:?}");
                                st.errors += 1;
                            }
                            Err(e) => {
                                eprintln!("release: {e}");
                                st.errors += 1;
                            }
                        }
                    }
                    Ok(_) => st.failed_acquires += 1,
                    Err(e) => {
                        eprintln!("acquire: {e}");
                        st.errors += 1;
                    }
                }
            }
            st
        }));
    }
    let mut total = ClientStats::default();
    for t in tasks {
        let st = t.await.map_err(|e| e.to_string())?;
        total.round_trips += st.round_trips;
        total.acquired += st.acquired;
        total.failed_acquires += st.failed_acquires;
        total.errors += st.errors;
        total.latencies_us.extend(st.latencies_us);
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    renewer.abort();

    let resp = http
        .get(format!("{base}/v1/kv/{key}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let lock_index = if resp.status() == reqwest::StatusCode::OK {
        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        v[0]["LockIndex"].as_u64().unwrap_or(0)
    } else {
        0
    };
    for s in &sessions {
        let _ = http
            .put(format!("{base}/v1/session/destroy/{s}"))
            .send()
            .await;
    }
    total.latencies_us.sort_unstable();
    Ok(RunResult {
        clients,
        secs,
        stats: total,
        lock_index,
    })
}

fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    common::percentile(sorted_us, p) as f64 / 1000.0
}

fn print_result(r: &RunResult) {
    let s = &r.stats;
    println!(
        "RESULT clients={} secs={:.3} round_trips={} round_trips_per_sec={:.1} failed_acquires={} \
         failed_per_sec={:.1} errors={} lock_index={} acquired={} p50_ms={:.3} p99_ms={:.3}",
        r.clients,
        r.secs,
        s.round_trips,
        s.round_trips as f64 / r.secs,
        s.failed_acquires,
        s.failed_acquires as f64 / r.secs,
        s.errors,
        r.lock_index,
        s.acquired,
        percentile_ms(&s.latencies_us, 0.50),
        percentile_ms(&s.latencies_us, 0.99),
    );
}

fn print_table(results: &[RunResult]) {
    println!();
    println!("| clients | secs | round trips | round trips/s | failed acquires | failed/s | round trip p50 ms | p99 ms | errors | LockIndex = acquisitions |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |");
    for r in results {
        let s = &r.stats;
        println!(
            "| {} | {:.1} | {} | {:.1} | {} | {:.1} | {:.3} | {:.3} | {} | {} |",
            r.clients,
            r.secs,
            s.round_trips,
            s.round_trips as f64 / r.secs,
            s.failed_acquires,
            s.failed_acquires as f64 / r.secs,
            percentile_ms(&s.latencies_us, 0.50),
            percentile_ms(&s.latencies_us, 0.99),
            s.errors,
            if r.lock_index == s.acquired {
                "yes"
            } else {
                "NO"
            },
        );
    }
}
