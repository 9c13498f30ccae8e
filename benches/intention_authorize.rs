//! Authorize latency with 1,000 intentions (200 destinations with 4 exact sources each, plus
//! 200 `* → <destination>` rules): the agent's compiled cache called directly (target p50 <
//! 50 µs), then `POST /v1/agent/connect/authorize` over loopback HTTP, one request at a time.
//!
//! `cargo bench --bench intention_authorize`

use legate::config::{AgentFlags, Config};
use legate::process::Agent;
use legate::store::Command;
use legate::types::config_entry::ConfigEntry;
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

const DESTINATIONS: usize = 200;
const SOURCES_PER_DESTINATION: usize = 4;
const DIRECT_CALLS: usize = 200_000;
const HTTP_CALLS: usize = 5_000;

fn percentiles(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "{label:<10} n={:<7} p50 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
        samples.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = AgentFlags {
        data_dir: Some(dir.path().join("data")),
        http_port: Some(0),
        dns_port: Some(-1),
        node: Some("bench".into()),
        ..Default::default()
    };
    let agent = Agent::start(Config::load(&flags).expect("config"))
        .await
        .expect("agent starts");
    let ctx = agent.ctx.clone();

    for d in 0..DESTINATIONS {
        let mut sources: Vec<_> = (0..SOURCES_PER_DESTINATION)
            .map(|s| json!({"Name": format!("src{}", d * 7 + s), "Action": if s % 2 == 0 { "allow" } else { "deny" }}))
            .collect();
        sources.push(json!({"Name": "*", "Action": "deny"}));
        let mut entry = ConfigEntry::decode(
            json!({"Kind": "service-intentions", "Name": format!("dst{d}"), "Sources": sources}),
        )
        .expect("bench entry decodes");
        entry.check().expect("bench entry is valid");
        ctx.store
            .apply(Command::ConfigEntrySet {
                entry: Box::new(entry),
                cas: None,
            })
            .await
            .expect("write");
    }
    let total = DESTINATIONS * (SOURCES_PER_DESTINATION + 1);
    println!("{total} intentions over {DESTINATIONS} destinations");

    // Direct: the first call compiles; the rest read the compiled lists.
    let caller = legate::acl::Authorizer::manage_all();
    let start = Instant::now();
    ctx.intentions
        .authorize("default", "src0", "dst0", &caller)
        .unwrap();
    println!("first call (compiles) {:?}", start.elapsed());
    let mut samples = Vec::with_capacity(DIRECT_CALLS);
    let mut allowed = 0usize;
    for i in 0..DIRECT_CALLS {
        let dst = format!("dst{}", i % DESTINATIONS);
        let src = format!("src{}", i % (DESTINATIONS * 7));
        let start = Instant::now();
        let d = ctx
            .intentions
            .authorize("default", black_box(&src), black_box(&dst), &caller)
            .unwrap();
        samples.push(start.elapsed());
        allowed += usize::from(d.authorized);
    }
    percentiles("direct", samples);
    println!("({allowed} of {DIRECT_CALLS} allowed)");

    let url = format!(
        "http://{}/v1/agent/connect/authorize",
        agent.http_addr.expect("http enabled")
    );
    let http = reqwest::Client::new();
    let mut samples = Vec::with_capacity(HTTP_CALLS);
    for i in 0..HTTP_CALLS {
        let body = json!({
            "Target": format!("dst{}", i % DESTINATIONS),
            "ClientCertURI": format!("spiffe://bench.consul/ns/default/dc/dc1/svc/src{}", i % (DESTINATIONS * 7)),
            "ClientCertSerial": "01",
        });
        let start = Instant::now();
        let resp = http.post(&url).json(&body).send().await.expect("request");
        assert_eq!(resp.status(), 200);
        resp.bytes().await.expect("body");
        samples.push(start.elapsed());
    }
    percentiles("http", samples);
    agent.stop().await;
}
