//! `/v1/agent/metrics`: Consul's metric names for what the agent did, go-metrics' summary
//! shape, the Prometheus text format, and the answer without a Prometheus retention time.

use crate::common::TestAgent;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Writes through each API whose Consul metric the agent reports.
async fn exercise(a: &TestAgent) {
    assert_eq!(a.put("/v1/kv/m", "1").await.status(), 200);
    let txn = json!([{"KV": {"Verb": "set", "Key": "t", "Value": "dg=="}}]);
    assert_eq!(a.put_json("/v1/txn", txn).await.status(), 200);
    let node = json!({"Node": "n1", "Address": "10.0.0.1"});
    assert_eq!(a.put_json("/v1/catalog/register", node).await.status(), 200);
    assert_eq!(
        a.put_json("/v1/session/create", json!({})).await.status(),
        200
    );
    assert_eq!(a.put("/v1/event/fire/deploy", "").await.status(), 200);
}

/// Waits, if need be, for a 10-second interval to start, so that what follows within a few
/// seconds is all recorded in one interval.
async fn early_in_an_interval() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 10_000;
    if into > 6_000 {
        tokio::time::sleep(Duration::from_millis(10_100 - into as u64)).await;
    }
}

/// The summary once it reports every name in `names` (a finished interval is reported, so
/// what was just recorded may need the current interval to end).
async fn summary_naming(a: &TestAgent, names: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let (_, m) = a.get_json("/v1/agent/metrics").await;
        let present: HashSet<&str> = ["Counters", "Samples"]
            .iter()
            .flat_map(|list| m[*list].as_array().unwrap().iter())
            .filter_map(|s| s["Name"].as_str())
            .collect();
        if names.iter().all(|n| present.contains(n)) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "missing some of {names:?} in {m:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn metrics_name_what_the_agent_did_in_consuls_shape() {
    let a = TestAgent::start().await;
    early_in_an_interval().await;
    exercise(&a).await;
    let m = summary_naming(
        &a,
        &[
            "consul.kvs.apply",
            "consul.txn.apply",
            "consul.catalog.register",
            "consul.session.apply",
            "consul.raft.commitTime",
            "consul.api.http",
            "consul.raft.apply",
            "consul.serf.events",
        ],
    )
    .await;
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["Timestamp", "Gauges", "Points", "Counters", "Samples"]
    );
    let ts = m["Timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with("0 +0000 UTC"),
        "an interval starts on 10 s: {ts}"
    );
    for list in ["Counters", "Samples"] {
        let entries = m[list].as_array().unwrap();
        let names: Vec<&str> = entries
            .iter()
            .map(|s| s["Name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{list} are sorted by name");
        for s in entries {
            let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["Name", "Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev", "Labels"],
                "{s}"
            );
            assert!(s["Count"].as_u64().unwrap() >= 1, "{s}");
            assert!(s["Min"].as_f64() <= s["Max"].as_f64(), "{s}");
        }
    }
    let find = |list: &str, name: &str, labels: Value| {
        m[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Name"] == name && s["Labels"] == labels)
            .unwrap_or_else(|| panic!("no {name} {labels} in {list}: {m:#}"))
            .clone()
    };
    let kv_put = find(
        "Samples",
        "consul.api.http",
        json!({"method": "PUT", "path": "v1_kv_"}),
    );
    assert_eq!(kv_put["Count"], 1);
    let legacy = find("Samples", "consul.http.PUT.v1.kv._", json!({}));
    assert_eq!(
        legacy["Sum"], kv_put["Sum"],
        "the pre-1.9 name of the same request"
    );
    let events = find("Counters", "consul.serf.events", json!({}));
    assert_eq!(
        (events["Count"].clone(), events["Sum"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(events["Rate"], 0.1, "the sum over the 10-second interval");
    // Every write is one raft entry; the five above (the event is not one) are among them.
    let applied = find("Counters", "consul.raft.apply", json!({}));
    assert!(applied["Sum"].as_f64().unwrap() >= 4.0, "{applied}");
    for gauge in [
        "consul.runtime.alloc_bytes",
        "consul.runtime.sys_bytes",
        "consul.runtime.num_goroutines",
    ] {
        let g = m["Gauges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["Name"] == gauge)
            .unwrap_or_else(|| panic!("no gauge {gauge}"));
        assert!(g["Value"].as_f64().unwrap() > 0.0, "{g}");
    }
}

/// Checks `text` against the Prometheus text format (0.0.4): every sample line names a
/// metric whose `# TYPE` came before it, and carries a number. Returns the samples.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut samples = Vec::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    assert!(text.ends_with('\n'), "{text}");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(valid_name(name), "{line}");
            assert!(["gauge", "counter", "summary"].contains(&kind), "{line}");
            assert!(!typed.iter().any(|(n, _)| n == name), "TYPE twice: {line}");
            typed.push((name.to_string(), kind.to_string()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(valid_name(rest.split(' ').next().unwrap()), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .expect(line);
            for pair in inner.split(',') {
                let (k, v) = pair.split_once('=').expect(line);
                assert!(valid_name(k), "{line}");
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{line}"
                );
            }
        }
        let (_, kind) = typed
            .iter()
            .rev()
            .find(|(t, _)| {
                name == t
                    || name.strip_suffix("_sum") == Some(t)
                    || name.strip_suffix("_count") == Some(t)
            })
            .unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
        if name.ends_with("_sum") || name.ends_with("_count") {
            assert!(
                kind == "summary" || !typed.iter().any(|(t, _)| t == name),
                "{line}"
            );
        }
        samples.push((series.to_string(), value));
    }
    samples
}

#[tokio::test]
async fn prometheus_text_parses_and_counts_since_the_start() {
    let a = TestAgent::start_with(|f| {
        f.hcl = vec!["telemetry { prometheus_retention_time = \"60s\" }".into()]
    })
    .await;
    exercise(&a).await;
    let resp = a.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["Content-Type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let samples = parse_prometheus(&text);
    let value = |series: &str| {
        samples
            .iter()
            .find(|(s, _)| s == series)
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .1
    };
    assert!(text.contains("# TYPE consul_kvs_apply summary\n"), "{text}");
    assert_eq!(value("consul_kvs_apply_count"), 1.0);
    assert!(value("consul_kvs_apply_sum") > 0.0);
    assert_eq!(value("consul_txn_apply_count"), 1.0);
    assert_eq!(value("consul_catalog_register_count"), 1.0);
    assert_eq!(value("consul_session_apply_count"), 1.0);
    assert_eq!(value("consul_serf_events"), 1.0);
    assert!(
        text.contains("# TYPE consul_raft_apply counter\n"),
        "{text}"
    );
    assert!(value("consul_raft_apply") >= 4.0);
    assert_eq!(
        value("consul_api_http_count{method=\"PUT\",path=\"v1_kv_\"}"),
        1.0
    );
    assert_eq!(value("consul_http_PUT_v1_kv___count"), 1.0);
    assert!(
        text.contains("# TYPE consul_runtime_alloc_bytes gauge\n"),
        "{text}"
    );
    assert_eq!(value("consul_state_nodes"), 2.0);
}

#[tokio::test]
async fn prometheus_without_retention_answers_as_consuls_wrapper_writes() {
    // Consul's handler returns a `CodeWithPayloadError` (415) without a body; its wrapper
    // only sets `X-Consul-Reason` from it and returns, so Go sends 200 with nothing.
    let a = TestAgent::start().await;
    let resp = a.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(
        headers["X-Consul-Reason"],
        "Prometheus is not enabled since its retention time is not positive"
    );
    assert!(headers.get("Content-Type").is_none(), "{headers:?}");
    assert_eq!(headers["Content-Length"], "0");
    assert_eq!(resp.text().await.unwrap(), "");
    // The JSON summary is served all the same.
    let (_, m) = a.get_json("/v1/agent/metrics").await;
    assert!(m["Gauges"].is_array());
}
