//! What metrics cost, in process: one agent holding 10,000 catalog services (100 nodes of 100)
//! answers `/v1/agent/metrics` and its Prometheus form, each scrape timed; then a closed loop
//! of HTTP clients writes KV keys with the metrics registry recording, and with it off, in
//! alternating runs; last, what one recording costs the thread that makes it.
//!
//! `cargo bench --bench metrics_cost` (targets: a scrape under 10 ms; KV write throughput with
//! metrics on within 3% of off). Knobs: `--clients N` (default 16), `--seconds S` (default 5
//! per run), `--rounds R` (default 3 alternating off/on runs), `--scrapes K` (default 50).

#[path = "common/mod.rs"]
mod common;
#[path = "common/in_process.rs"]
mod in_process;
use in_process::{catalog_register, closed_loop_rate, knob, start_agent, Knobs};
use std::time::{Duration, Instant};

const NODES: usize = 100;
const SERVICES_PER_NODE: usize = 100;
const KEYS: usize = 1024;

fn client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .no_proxy()
        .build()
        .expect("http client")
}

/// Registers `NODES` nodes of `SERVICES_PER_NODE` services each, one node per client task.
async fn register_services(base: &str) {
    let http = client(NODES);
    let tasks: Vec<_> = (0..NODES)
        .map(|n| {
            let (http, base) = (http.clone(), base.to_string());
            tokio::spawn(async move {
                for s in 0..SERVICES_PER_NODE {
                    let body = serde_json::json!({
                        "Node": format!("node-{n}"),
                        "Address": format!("10.0.{}.{}", n / 250, n % 250 + 1),
                        "Service": {"Service": format!("svc-{n}-{s}"), "Port": 8000 + s},
                    });
                    catalog_register(&http, &base, body).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("register task");
    }
}

/// Median and slowest of `k` scrapes of `path`, and the size of the last answer.
async fn scrape(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    k: usize,
) -> (Duration, Duration, usize) {
    let mut took = Vec::with_capacity(k);
    let mut size = 0;
    for _ in 0..k {
        let start = Instant::now();
        let resp = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), 200, "scrape refused");
        size = resp.bytes().await.expect("scrape body").len();
        took.push(start.elapsed());
    }
    took.sort();
    (common::percentile(&took, 0.5), took[took.len() - 1], size)
}

/// KV PUTs per second from a closed loop of `clients` for `seconds`.
async fn put_rate(base: &str, knobs: &Knobs) -> f64 {
    let urls: Vec<String> = (0..KEYS)
        .map(|k| format!("{base}/v1/kv/bench/key-{k}"))
        .collect();
    closed_loop_rate(knobs.clients, knobs.seconds, move |http, i| {
        http.put(&urls[i % KEYS]).body("value")
    })
    .await
}

fn main() {
    let knobs = Knobs::from_args(3);
    let scrapes = knob("--scrapes", 50) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let telemetry = serde_json::json!({"telemetry": {"prometheus_retention_time": "60s"}});
        let agent = start_agent(dir.path(), telemetry).await;
        let base = format!("http://{}", agent.http_addr.expect("http"));
        let setup = Instant::now();
        register_services(&base).await;
        println!(
            "registered {} services on {NODES} nodes in {:?}",
            NODES * SERVICES_PER_NODE,
            setup.elapsed()
        );
        let http = client(1);
        for (label, path) in [
            ("JSON", "/v1/agent/metrics"),
            ("Prometheus", "/v1/agent/metrics?format=prometheus"),
        ] {
            let (median, slowest, size) = scrape(&http, &base, path, scrapes).await;
            println!(
                "{label} scrape at 10,000 services: median {median:?}, slowest {slowest:?} of {} ({size} bytes)",
                scrapes
            );
        }

        let metrics = agent.ctx.store.metrics().clone();
        let (mut off_total, mut on_total) = (0.0, 0.0);
        for round in 1..=knobs.rounds {
            metrics.set_enabled(false);
            let off = put_rate(&base, &knobs).await;
            metrics.set_enabled(true);
            let on = put_rate(&base, &knobs).await;
            println!(
                "round {round}: KV PUT {off:.0}/s with metrics off, {on:.0}/s on ({} clients)",
                knobs.clients
            );
            off_total += off;
            on_total += on;
        }
        println!(
            "KV PUT mean: {:.0}/s off, {:.0}/s on ({:+.1}%)",
            off_total / knobs.rounds as f64,
            on_total / knobs.rounds as f64,
            (on_total - off_total) / off_total * 100.0
        );
        // Closed-loop rates on shared cores swing more than metrics cost; this is the cost
        // itself: a KV PUT records four times (its request, its apply, the commit's entries
        // and time).
        const RECORDS: u32 = 1_000_000;
        let key = legate::metrics::Key::Http {
            method: reqwest::Method::PUT,
            route: "/v1/kv/",
        };
        let start = Instant::now();
        for i in 0..RECORDS {
            metrics.record(key.clone(), f64::from(i % 1000) / 100.0);
        }
        println!(
            "one timing recorded in {:?} (mean of {RECORDS})",
            start.elapsed() / RECORDS
        );
        agent.stop().await;
    });
}
