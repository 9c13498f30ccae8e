//! KV load generator: durable PUT and GET throughput against Legate (Consul's `/v1/kv`) or etcd
//! (its v3 JSON gateway), for `benches/run-vs-etcd.sh`. The closed loop, key pool and RESULT
//! line are `common/closed_loop.rs`, shared with the etcd gRPC generator (`benches/etcd-grpc/`).
//!
//! Clients share a keep-alive HTTP/1.1 connection pool. Every request body and URL is built
//! before the run, so the client does as little work as possible per request (both servers
//! share the machine's cores with it). It exits non-zero if any request failed.
//!
//! Run it as `cargo bench --bench kv_load -- --target legate --url http://127.0.0.1:8500 --op put
//! --concurrency 64 --duration 10`. Without `--url` it prints a note and does nothing, so a
//! plain `cargo bench` stays harmless.

#[path = "common/closed_loop.rs"]
mod closed_loop;
#[path = "common/mod.rs"]
mod common;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use closed_loop::{LoadArgs, Op};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    Legate,
    Etcd,
}

#[derive(Parser, Debug)]
#[command(about = "KV load generator for Legate and etcd")]
struct Args {
    /// Server kind: `legate` (/v1/kv) or `etcd` (/v3/kv gateway).
    #[arg(long, value_enum, default_value = "legate")]
    target: Target,
    #[command(flatten)]
    load: LoadArgs,
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
    let value = args.load.value();
    let value_b64 = B64.encode(&value);
    args.load
        .key_pool()
        .map(|key| match (args.target, args.load.op) {
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
                    serde_json::json!({"key": B64.encode(&key), "value": value_b64}).to_string(),
                ),
            },
            (Target::Etcd, Op::Get) => Request {
                method: reqwest::Method::POST,
                url: format!("{base}/v3/kv/range"),
                body: Bytes::from(serde_json::json!({"key": B64.encode(&key)}).to_string()),
            },
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

/// What every client shares.
struct Client {
    target: Target,
    op: Op,
    http: reqwest::Client,
    requests: Vec<Request>,
}

impl Client {
    async fn call(&self, key: usize) -> Result<(), String> {
        let req = &self.requests[key];
        let resp = self
            .http
            .request(req.method.clone(), &req.url)
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        // Reading the whole body lets the connection go back to the pool.
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if success(self.target, self.op, status, &body) {
            Ok(())
        } else {
            Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

fn main() {
    let args = Args::parse();
    let Some(base) = common::loopback_base(
        "kv_load",
        args.load.url.as_deref(),
        "benches/run-vs-etcd.sh",
    ) else {
        return;
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.load.concurrency)
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("http client");
    let client = Arc::new(Client {
        target: args.target,
        op: args.load.op,
        http,
        requests: prepare(&args, &base),
    });
    let target = format!("{:?}", args.target).to_lowercase();
    let ok = args
        .load
        .runtime()
        .block_on(closed_loop::run(&args.load, &target, move |key| {
            let client = client.clone();
            async move { client.call(key).await }
        }));
    if !ok {
        std::process::exit(1);
    }
}
