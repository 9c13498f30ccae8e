//! Connect leaf certificates: how fast the agent issues new ones (a key pair generated, signed
//! by the CA and stored durably for each) and serves cached ones, for
//! `benches/run-leaf-issuance.sh`.
//!
//! `--services` distinct service names are requested once each by `--concurrency` clients (each
//! request issues a new leaf), then requested again (each answered from the cache). Prints one
//! `RESULT` line per phase and exits non-zero if a request failed. Without `--url` it prints a
//! note and does nothing, so a plain `cargo bench` stays harmless.

#[path = "common/mod.rs"]
mod common;
use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Base URL of an agent with Connect enabled (loopback only).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value_t = 500)]
    services: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn main() {
    let args = Args::parse();
    let Some(url) = common::loopback_base(
        "leaf_issuance",
        args.url.as_deref(),
        "benches/run-leaf-issuance.sh",
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let failed = runtime.block_on(async move {
        let mut failed = false;
        for phase in ["issue", "cached"] {
            match run(&url, args.services, args.concurrency.max(1)).await {
                Ok((elapsed, mut latencies)) => {
                    latencies.sort();
                    println!(
                        "RESULT phase={phase} services={} concurrency={} secs={:.3} per_sec={:.1} p50_ms={:.3} p99_ms={:.3}",
                        args.services,
                        args.concurrency,
                        elapsed.as_secs_f64(),
                        args.services as f64 / elapsed.as_secs_f64(),
                        ms(common::percentile(&latencies, 0.50)),
                        ms(common::percentile(&latencies, 0.99)),
                    );
                }
                Err(e) => {
                    eprintln!("leaf_issuance: {phase}: {e}");
                    failed = true;
                }
            }
        }
        failed
    });
    std::process::exit(i32::from(failed));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Requests the leaf of every service once; returns the wall time and each request's latency.
async fn run(
    base: &str,
    services: usize,
    concurrency: usize,
) -> Result<(Duration, Vec<Duration>), String> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, next, base) = (http.clone(), next.clone(), base.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= services {
                        return Ok::<_, String>(latencies);
                    }
                    let sent = Instant::now();
                    let url = format!("{base}/v1/agent/connect/ca/leaf/svc-{i:05}");
                    let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                    if !resp.status().is_success() {
                        return Err(format!("{url}: {}", resp.status()));
                    }
                    resp.bytes().await.map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(services);
    for w in workers {
        all.extend(w.await.map_err(|e| e.to_string())??);
    }
    Ok((started.elapsed(), all))
}
