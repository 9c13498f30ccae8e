//! KV load generator for etcd's native gRPC API (the `etcd-client` crate, as etcd's Rust users
//! call it), the gRPC column of `benches/run-vs-etcd.sh`. The closed loop, flags, key pool and
//! RESULT line are `benches/common/closed_loop.rs`, shared with `benches/kv_load.rs`, so its
//! numbers compare with the HTTP ones.
//!
//! All clients share one gRPC channel (one HTTP/2 connection), as an etcd client does. It exits
//! non-zero if any request failed.
//!
//! Run it as `cargo run --release -- --url http://127.0.0.1:2379 --op put --concurrency 64`.

#[path = "../../common/closed_loop.rs"]
mod closed_loop;
#[path = "../../common/mod.rs"]
mod common;
use clap::Parser;
use closed_loop::{LoadArgs, Op};
use etcd_client::{Client, ConnectOptions, KvClient};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "KV load generator for etcd's native gRPC API")]
struct Args {
    #[command(flatten)]
    load: LoadArgs,
}

/// What every client shares.
struct Shared {
    op: Op,
    kv: KvClient,
    keys: Vec<Vec<u8>>,
    value: Vec<u8>,
}

impl Shared {
    async fn call(&self, key: usize) -> Result<(), String> {
        // `KvClient` is a cheap handle on the shared channel; its calls take `&mut self`.
        let mut kv = self.kv.clone();
        let key = self.keys[key].clone();
        match self.op {
            Op::Put => kv.put(key, self.value.clone(), None).await.map(drop),
            // A read succeeds only if it found the key, as kv_load's do.
            Op::Get => match kv.get(key, None).await {
                Ok(resp) if resp.kvs().is_empty() => return Err("key not found".into()),
                other => other.map(drop),
            },
        }
        .map_err(|e| e.to_string())
    }
}

async fn run(load: &LoadArgs, url: String) -> bool {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30));
    let client = Client::connect([url], Some(options))
        .await
        .expect("connect to etcd");
    let shared = Arc::new(Shared {
        op: load.op,
        kv: client.kv_client(),
        keys: load.key_pool().map(String::into_bytes).collect(),
        value: load.value(),
    });
    closed_loop::run(load, "etcd-grpc", move |key| {
        let shared = shared.clone();
        async move { shared.call(key).await }
    })
    .await
}

fn main() {
    let args = Args::parse();
    let Some(url) = common::loopback_base(
        "etcd-grpc",
        args.load.url.as_deref(),
        "benches/run-vs-etcd.sh",
    ) else {
        return;
    };
    if !args.load.runtime().block_on(run(&args.load, url)) {
        std::process::exit(1);
    }
}
