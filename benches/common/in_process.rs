//! In-process agents and closed loops of HTTP clients, for the benches that start their own
//! agent (each includes this file with `#[path = "common/in_process.rs"]`).
// Each bench uses only some of these.
#![allow(dead_code)]

use legate::config::{AgentFlags, Config};
use legate::process::Agent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients walk their requests with a stride so they don't hit the same keys in lockstep.
const STRIDE: usize = 7;

/// The closed loop's shape: `--clients N` (default 16), `--seconds S` per run (default 5),
/// `--rounds R` alternating runs (default `rounds`).
pub struct Knobs {
    pub clients: usize,
    pub seconds: u64,
    pub rounds: usize,
}

impl Knobs {
    pub fn from_args(rounds: u64) -> Knobs {
        Knobs {
            clients: knob("--clients", 16) as usize,
            seconds: knob("--seconds", 5),
            rounds: knob("--rounds", rounds) as usize,
        }
    }
}

/// The number given as `--<name> N` on the command line, or `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts an agent in `dir` on an ephemeral HTTP port, with `config` (JSON) as its config
/// file; a client's connections are not limited.
pub async fn start_agent(dir: &std::path::Path, mut config: serde_json::Value) -> Agent {
    let cfg = dir.join("bench.json");
    config["limits"] = serde_json::json!({"http_max_conns_per_client": 0});
    std::fs::write(&cfg, config.to_string()).expect("bench config written");
    let flags = AgentFlags {
        data_dir: Some(dir.join("data")),
        http_port: Some(0),
        node: Some("bench".into()),
        config_file: vec![cfg],
        log_level: Some("warn".into()),
        ..Default::default()
    };
    Agent::start(Config::load(&flags).expect("bench config"))
        .await
        .expect("agent starts")
}

/// `PUT /v1/catalog/register` of `body`, which must succeed.
pub async fn catalog_register(http: &reqwest::Client, base: &str, body: serde_json::Value) {
    let resp = http
        .put(format!("{base}/v1/catalog/register"))
        .body(body.to_string())
        .send()
        .await
        .expect("register");
    assert!(resp.status().is_success(), "register: {}", resp.status());
}

/// Requests per second from a closed loop of `clients` for `seconds`: client `c` sends
/// `request(http, c)`, `request(http, c + 7)`, … and each answer must be 200.
pub async fn closed_loop_rate<F>(clients: usize, seconds: u64, request: F) -> f64
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .no_proxy()
        .build()
        .expect("http client");
    let request = Arc::new(request);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, done, request) = (http.clone(), done.clone(), request.clone());
            tokio::spawn(async move {
                let mut i = c;
                while Instant::now() < deadline {
                    let resp = request(&http, i).send().await.expect("request");
                    assert_eq!(resp.status(), 200, "request refused");
                    resp.bytes().await.expect("answer body");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += STRIDE;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}
