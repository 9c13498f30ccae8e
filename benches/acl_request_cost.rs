//! What ACL enforcement costs on the request path, in process: an agent with ACLs off and one
//! with ACLs on (default deny) serve KV GETs to the same closed loop of HTTP clients, the
//! second with a token of 100 policies (about 1,100 rules; one grants the keys read). Also
//! times the per-request ACL work alone: resolving the token (a cache hit) plus one check.
//!
//! `cargo bench --bench acl_request_cost` (targets: GET throughput within 10% of ACLs off;
//! resolve plus check under 5 µs). Knobs: `--clients N` (default 16), `--seconds S` (default
//! 5 per run), `--rounds R` (default 2 alternating off/on runs).

#[path = "common/mod.rs"]
mod common;
#[path = "common/in_process.rs"]
mod in_process;
use in_process::{closed_loop_rate, start_agent, Knobs};
use legate::process::Agent;
use std::time::Instant;

const ROOT: &str = "6b8a2c3e-1111-4222-8333-944455556666";
const POLICIES: usize = 100;
const KEYS: usize = 256;

async fn start(dir: &std::path::Path, acl: bool) -> Agent {
    let mut config = serde_json::json!({});
    if acl {
        config["acl"] = serde_json::json!({
            "enabled": true,
            "default_policy": "deny",
            "tokens": {"initial_management": ROOT},
        });
    }
    start_agent(dir, config).await
}

/// The `i`th policy; the first also grants read on the bench's keys.
fn policy_rules(i: usize) -> String {
    let mut rules = common::policy_rules(i);
    if i == 0 {
        rules.push_str("key_prefix \"bench/\" { policy = \"read\" }\n");
    }
    rules
}

async fn put(http: &reqwest::Client, url: String, body: String) -> String {
    let resp = http
        .put(url)
        .header("X-Consul-Token", ROOT)
        .body(body)
        .send()
        .await
        .expect("setup request");
    assert!(
        resp.status().is_success(),
        "setup failed: {}",
        resp.status()
    );
    resp.text().await.expect("setup body")
}

/// Writes the keys; with ACLs, creates the policies and a token holding them all.
async fn prepare(http: &reqwest::Client, base: &str, acl: bool) -> Option<String> {
    for k in 0..KEYS {
        put(http, format!("{base}/v1/kv/bench/key-{k}"), "value".into()).await;
    }
    if !acl {
        return None;
    }
    let mut links = Vec::new();
    for i in 0..POLICIES {
        let body = serde_json::json!({"Name": format!("p{i}"), "Rules": policy_rules(i)});
        put(http, format!("{base}/v1/acl/policy"), body.to_string()).await;
        links.push(serde_json::json!({"Name": format!("p{i}")}));
    }
    let token = put(
        http,
        format!("{base}/v1/acl/token"),
        serde_json::json!({"Policies": links}).to_string(),
    )
    .await;
    let token: serde_json::Value = serde_json::from_str(&token).expect("token JSON");
    Some(token["SecretID"].as_str().expect("secret").to_string())
}

/// GETs per second from a closed loop of `clients` for `seconds`.
async fn get_rate(base: &str, token: Option<&str>, knobs: &Knobs) -> f64 {
    let urls: Vec<String> = (0..KEYS)
        .map(|k| format!("{base}/v1/kv/bench/key-{k}"))
        .collect();
    let token = token.map(str::to_string);
    closed_loop_rate(knobs.clients, knobs.seconds, move |http, i| {
        let req = http.get(&urls[i % KEYS]);
        match &token {
            Some(t) => req.header("X-Consul-Token", t),
            None => req,
        }
    })
    .await
}

fn main() {
    let knobs = Knobs::from_args(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let (off_dir, on_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let off = start(off_dir.path(), false).await;
        let on = start(on_dir.path(), true).await;
        let off_base = format!("http://{}", off.http_addr.expect("http"));
        let on_base = format!("http://{}", on.http_addr.expect("http"));
        prepare(&http, &off_base, false).await;
        let token = prepare(&http, &on_base, true).await.expect("token");

        // The per-request ACL work alone, on the agent with ACLs on.
        let resolver = &on.ctx.acl;
        resolver.resolve(&token, None).expect("token resolves");
        let rounds = 200_000u32;
        let start_at = Instant::now();
        let mut allowed = 0u32;
        for k in 0..rounds {
            let identity = resolver.resolve(&token, None).expect("token resolves");
            let key = if k % 2 == 0 { "bench/key-1" } else { "apps/app7/secrets/x" };
            allowed += u32::from(identity.authorizer.key_read(key).is_allow());
        }
        let per = start_at.elapsed() / rounds;
        println!(
            "resolve (cached) + key_read check, {POLICIES} policies: {per:?} per request ({allowed} of {rounds} allowed)"
        );

        let (mut off_total, mut on_total) = (0.0, 0.0);
        for round in 1..=knobs.rounds {
            let off_rate = get_rate(&off_base, None, &knobs).await;
            let on_rate = get_rate(&on_base, Some(&token), &knobs).await;
            println!(
                "round {round}: KV GET {off_rate:.0}/s with ACLs off, {on_rate:.0}/s with ACLs on ({} clients)",
                knobs.clients
            );
            off_total += off_rate;
            on_total += on_rate;
        }
        let diff = (off_total - on_total) / off_total * 100.0;
        println!(
            "RESULT acl_kv_get off={:.0}/s on={:.0}/s difference={diff:.1}%",
            off_total / knobs.rounds as f64,
            on_total / knobs.rounds as f64
        );
        off.stop().await;
        on.stop().await;
    });
}
