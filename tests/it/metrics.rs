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
        f.hcl = vec![
            "telemetry {\n prometheus_retention_time = \"60s\"\n disable_hostname = true\n}".into(),
        ]
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
    // Each timing is a summary with the Prometheus sink's quantiles of the last 10 seconds,
    // then its sum and count.
    let kvs = text
        .lines()
        .skip_while(|l| !l.starts_with("consul_kvs_apply"))
        .take(5)
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect::<Vec<_>>();
    assert_eq!(
        kvs,
        [
            "consul_kvs_apply{quantile=\"0.5\"}",
            "consul_kvs_apply{quantile=\"0.9\"}",
            "consul_kvs_apply{quantile=\"0.99\"}",
            "consul_kvs_apply_sum",
            "consul_kvs_apply_count",
        ]
    );
    // One timing: every quantile is it.
    let median = value("consul_kvs_apply{quantile=\"0.5\"}");
    assert!(median > 0.0);
    assert_eq!(value("consul_kvs_apply{quantile=\"0.99\"}"), median);
    assert_eq!(value("consul_kvs_apply_sum"), median);
    assert!(
        value("consul_api_http{method=\"PUT\",path=\"v1_kv_\",quantile=\"0.9\"}") > 0.0,
        "{text}"
    );
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

/// An agent started with `config` (JSON) as its config file; the dir must outlive it.
async fn agent_with(config: Value) -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let a = TestAgent::start_with(move |f| f.config_file = vec![file]).await;
    (a, dir)
}

fn names(summary: &Value, list: &str) -> Vec<String> {
    summary[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_string())
        .collect()
}

/// go-metrics' host name: the kernel's, as Go's `os.Hostname` reads it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn gauges_carry_the_host_name_while_prometheus_is_on() {
    // Consul leaves the host name out while its in-memory sink is its only one; with the
    // Prometheus sink beside it, go-metrics puts it after the prefix of every gauge, and of
    // nothing else.
    let (a, _dir) = agent_with(json!({"telemetry": {"prometheus_retention_time": "60s"}})).await;
    assert_eq!(a.put("/v1/kv/h", "1").await.status(), 200);
    let host = host_name();
    let (_, m) = a.get_json("/v1/agent/metrics").await;
    let gauges = names(&m, "Gauges");
    for gauge in [
        "state.nodes",
        "runtime.alloc_bytes",
        "runtime.num_goroutines",
    ] {
        let name = format!("consul.{host}.{gauge}");
        assert!(gauges.contains(&name), "no {name} in {gauges:?}");
    }
    assert!(
        gauges
            .iter()
            .all(|g| g.starts_with(&format!("consul.{host}."))),
        "{gauges:?}"
    );
    let samples = names(&m, "Samples");
    assert!(
        samples.contains(&"consul.api.http".to_string()),
        "{samples:?}"
    );
    let text = a
        .get("/v1/agent/metrics?format=prometheus")
        .await
        .text()
        .await
        .unwrap();
    let flat: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let samples = parse_prometheus(&text);
    assert!(
        text.contains(&format!("# TYPE consul_{flat}_state_nodes gauge\n")),
        "{text}"
    );
    assert!(
        samples
            .iter()
            .any(|(s, v)| *s == format!("consul_{flat}_state_kv_entries") && *v == 1.0),
        "{text}"
    );
    assert!(text.contains("# TYPE consul_kvs_apply summary\n"), "{text}");

    let (plain, _dir) = agent_with(json!({"telemetry": {
        "prometheus_retention_time": "60s",
        "disable_hostname": true,
    }}))
    .await;
    let (_, m) = plain.get_json("/v1/agent/metrics").await;
    assert!(names(&m, "Gauges").contains(&"consul.state.nodes".to_string()));
}

#[tokio::test]
async fn telemetry_prefix_and_filter_shape_every_name() {
    let (a, _dir) = agent_with(json!({"telemetry": {
        "metrics_prefix": "edge",
        "prefix_filter": ["-edge.http", "+edge.http.PUT", "-edge.state", "+edge.state.nodes"],
    }}))
    .await;
    early_in_an_interval().await;
    assert_eq!(a.put("/v1/kv/f", "1").await.status(), 200);
    assert_eq!(a.get("/v1/kv/f").await.status(), 200);
    let m = summary_naming(&a, &["edge.kvs.apply", "edge.api.http", "edge.raft.apply"]).await;
    let samples = names(&m, "Samples");
    assert!(
        samples.contains(&"edge.http.PUT.v1.kv._".to_string()),
        "{samples:?}"
    );
    assert!(
        !samples.iter().any(|s| s.starts_with("edge.http.GET")),
        "blocked: {samples:?}"
    );
    assert!(
        !samples.iter().any(|s| s.starts_with("consul.")),
        "{samples:?}"
    );
    let gauges = names(&m, "Gauges");
    assert!(
        gauges.contains(&"edge.state.nodes".to_string()),
        "{gauges:?}"
    );
    assert!(
        gauges.contains(&"edge.runtime.sys_bytes".to_string()),
        "{gauges:?}"
    );
    assert!(
        !gauges.contains(&"edge.state.kv_entries".to_string()),
        "blocked: {gauges:?}"
    );

    // `filter_default = false`: only what a rule allows; `disable_compat_1.9`: no
    // `consul.http.*` names.
    let (b, _dir) = agent_with(json!({"telemetry": {
        "filter_default": false,
        "prefix_filter": ["+consul.api", "+consul.http", "+consul.kvs"],
        "disable_compat_1.9": true,
    }}))
    .await;
    early_in_an_interval().await;
    assert_eq!(b.put("/v1/kv/f", "1").await.status(), 200);
    let m = summary_naming(&b, &["consul.kvs.apply", "consul.api.http"]).await;
    assert_eq!(names(&m, "Gauges"), Vec::<String>::new());
    assert_eq!(names(&m, "Counters"), Vec::<String>::new());
    let samples = names(&m, "Samples");
    assert!(
        samples
            .iter()
            .all(|s| s == "consul.kvs.apply" || s == "consul.api.http"),
        "{samples:?}"
    );
}

#[tokio::test]
async fn reload_replaces_the_prefix_filter() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telemetry.json");
    let write = |rules: Value| {
        let config = json!({"telemetry": {"prefix_filter": rules}});
        std::fs::write(&file, config.to_string()).unwrap();
    };
    write(json!(["-consul.state"]));
    let path = file.clone();
    let a = TestAgent::start_with(move |f| f.config_file = vec![path]).await;
    let before = names(&a.get_json("/v1/agent/metrics").await.1, "Gauges");
    assert!(
        !before.iter().any(|g| g.starts_with("consul.state.")),
        "{before:?}"
    );
    write(json!(["-consul.runtime"]));
    assert_eq!(a.put("/v1/agent/reload", "").await.status(), 200);
    let after = names(&a.get_json("/v1/agent/metrics").await.1, "Gauges");
    assert!(
        after.contains(&"consul.state.nodes".to_string()),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|g| g.starts_with("consul.runtime.")),
        "{after:?}"
    );
}

/// A Prometheus scrape with `token`.
async fn scrape(a: &TestAgent, token: &str) -> String {
    a.http
        .get(a.url("/v1/agent/metrics?format=prometheus"))
        .header("X-Consul-Token", token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `consul_api_http_count` per `(method, path)` in a Prometheus scrape.
async fn http_counts(
    a: &TestAgent,
    token: &str,
) -> std::collections::BTreeMap<(String, String), f64> {
    let text = scrape(a, token).await;
    parse_prometheus(&text)
        .into_iter()
        .filter_map(|(series, v)| {
            let labels = series.strip_prefix("consul_api_http_count{")?;
            let (method, path) = labels
                .strip_prefix("method=\"")?
                .strip_suffix("\"}")?
                .split_once("\",path=\"")?;
            Some(((method.to_string(), path.to_string()), v))
        })
        .collect()
}

#[tokio::test]
async fn requests_an_endpoint_refuses_are_timed_and_unrouted_ones_are_not() {
    const ROOT: &str = "root-token";
    let (a, _dir) = agent_with(json!({
        "telemetry": {"prometheus_retention_time": "60s", "disable_hostname": true},
        "limits": {"kv_max_value_size": 16},
        "acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": ROOT}},
    }))
    .await;
    let send = |method: &str, path: &str, token: &str, body: &'static str| {
        let req = a
            .http
            .request(method.parse().unwrap(), a.url(path))
            .header("X-Consul-Token", token)
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let before = http_counts(&a, ROOT).await;
    // Refused by Consul's wrapper or the endpoint: each timed under its endpoint.
    assert_eq!(send("PATCH", "/v1/kv/x", ROOT, "").await, 405);
    assert_eq!(send("OPTIONS", "/v1/kv/x", ROOT, "").await, 200);
    assert_eq!(
        send("PUT", "/v1/kv/x", ROOT, "far more than sixteen bytes").await,
        413
    );
    assert_eq!(send("GET", "/v1/kv/x?index=abc", ROOT, "").await, 400);
    assert_eq!(send("GET", "/v1/agent/self", "", "").await, 403);
    // No endpoint: Consul's mux hands these to its index handler, which nothing times.
    assert_eq!(send("GET", "/v1/no-such-endpoint", ROOT, "").await, 404);
    assert_eq!(send("GET", "/not-the-api", ROOT, "").await, 404);
    let after = http_counts(&a, ROOT).await;
    let grew: Vec<(String, String)> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| {
            assert_eq!(*v - before.get(k).unwrap_or(&0.0), 1.0, "{k:?}");
            k.clone()
        })
        .collect();
    let pair = |m: &str, p: &str| (m.to_string(), p.to_string());
    assert_eq!(
        grew,
        [
            // The first scrape, timed once it was answered.
            pair("GET", "v1_agent_metrics"),
            pair("GET", "v1_agent_self"),
            pair("GET", "v1_kv_"),
            pair("OPTIONS", "v1_kv_"),
            pair("PATCH", "v1_kv_"),
            pair("PUT", "v1_kv_"),
        ]
    );
    let text = scrape(&a, ROOT).await;
    assert!(
        text.contains("\nconsul_http_PATCH_v1_kv___count 1\n"),
        "{text}"
    );
}
