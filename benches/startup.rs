//! Start-up cost of a large store: how long `Store::open` takes (redb's open, migrations and
//! `check_records`, which decodes every record to refuse a corrupt store) on `--keys` KV
//! entries (default 200,000) and `--services` catalog services with one check each (default
//! 10,000), against a bare walk of the same rows without decoding them.
//!
//!   cargo bench --bench startup -- --keys 200000 --services 10000 --rounds 5
//!
//! The store is filled in a temp dir under `--dir` (default /tmp) through an in-process agent
//! (KV through the store's commands, services through `/v1/catalog/register`), then closed;
//! each round opens it afresh. Prints one `RESULT startup ...` line; removes its data on exit.

// Only the agent start and the knobs: the closed loops are for the throughput benches.
#[path = "common/in_process.rs"]
mod in_process;

use in_process::knob;
use legate::store::{Command, Store};
use redb::{ReadableDatabase, ReadableTable, TableHandle};
use std::time::{Duration, Instant};

fn main() {
    let keys = knob("--keys", 200_000) as usize;
    let services = knob("--services", 10_000) as usize;
    let rounds = knob("--rounds", 5) as usize;
    let parent = std::env::args()
        .skip_while(|a| a != "--dir")
        .nth(1)
        .unwrap_or_else(|| "/tmp".into());
    let dir = tempfile::tempdir_in(parent).expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let filled = Instant::now();
    runtime.block_on(fill(dir.path(), keys, services));
    eprintln!("filled in {:.1?}", filled.elapsed());
    let data = dir.path().join("data");
    let file = data.join(legate::store::DB_FILE);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);

    let mut open = Vec::new();
    let mut walk = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let store = Store::open(&data).expect("store opens");
        open.push(started.elapsed());
        store.close();
        let started = Instant::now();
        let rows = walk_rows(&file);
        walk.push(started.elapsed());
        assert!(rows >= keys + services, "{rows} rows");
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    println!(
        "RESULT startup keys={keys} services={services} file_mb={:.1} open_ms={:.0} bare_walk_ms={:.0}",
        size as f64 / 1e6,
        median(&mut open),
        median(&mut walk),
    );
}

/// Opens the file with redb alone and reads every row of every table, decoding nothing.
fn walk_rows(file: &std::path::Path) -> usize {
    let db = redb::Database::open(file).expect("redb opens");
    let txn = db.begin_read().expect("read");
    let mut rows = 0;
    for table in txn.list_tables().expect("tables") {
        let def = redb::TableDefinition::<&str, &[u8]>::new(table.name());
        let Ok(t) = txn.open_table(def) else { continue };
        for row in t.iter().expect("iter") {
            let (k, v) = row.expect("row");
            std::hint::black_box((k.value().len(), v.value().len()));
            rows += 1;
        }
    }
    rows
}

async fn fill(dir: &std::path::Path, keys: usize, services: usize) {
    let agent = in_process::start_agent(dir, serde_json::json!({})).await;
    let store = agent.ctx.store.clone();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1024) {
        let writes: Vec<_> = chunk
            .iter()
            .map(|i| {
                store.apply(Command::KvSet {
                    key: format!("bench/{i:07}"),
                    value: vec![b'v'; 100],
                    flags: 0,
                    cas: None,
                })
            })
            .collect();
        for w in futures_util::future::join_all(writes).await {
            w.expect("kv set");
        }
    }
    let base = format!("http://{}", agent.http_addr.expect("http"));
    let http = reqwest::Client::new();
    for chunk in (0..services).collect::<Vec<_>>().chunks(64) {
        let writes = chunk.iter().map(|i| {
            let body = serde_json::json!({
                "Node": format!("node-{}", i % 100),
                "Address": format!("10.0.{}.{}", i % 100 / 250, i % 100 % 250),
                "Service": {"ID": format!("svc-{i}"), "Service": format!("svc-{}", i % 500),
                            "Port": 8000 + i % 1000, "Tags": ["a", "b"]},
                "Checks": [{"CheckID": format!("check-{i}"), "Name": "alive",
                            "Status": "passing", "ServiceID": format!("svc-{i}")}],
            });
            http.put(format!("{base}/v1/catalog/register"))
                .json(&body)
                .send()
        });
        for resp in futures_util::future::join_all(writes).await {
            assert_eq!(resp.expect("register").status(), 200);
        }
    }
    agent.stop().await;
}
