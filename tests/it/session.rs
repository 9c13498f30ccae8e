//! Sessions, locks and their invalidation.

use crate::common::TestAgent;
use serde_json::{json, Value};
use std::time::Duration;

async fn create(a: &TestAgent, body: Value) -> String {
    let resp = a.put_json("/v1/session/create", body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["ID"].as_str().unwrap().to_string()
}

async fn acquire(a: &TestAgent, key: &str, session: &str, value: &str) -> bool {
    a.put_ok(
        &format!("/v1/kv/{key}?acquire={session}"),
        value.to_string(),
    )
    .await
        == "true"
}

async fn holder(a: &TestAgent, key: &str) -> Value {
    let (_, body) = a.get_json(&format!("/v1/kv/{key}")).await;
    body[0].clone()
}

/// An agent that accepts short session TTLs, so expiry tests run in seconds.
async fn fast_ttl_agent() -> TestAgent {
    TestAgent::start_with(|f| f.hcl = vec!["session_ttl_min = \"1s\"".into()]).await
}

#[tokio::test]
async fn create_with_defaults_and_read_back() {
    let a = TestAgent::start().await;
    let resp = a.put("/v1/session/create", "").await;
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().await.unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    let s = &info[0];
    assert_eq!(s["Node"], "test-node");
    assert_eq!(s["LockDelay"], 15_000_000_000u64);
    assert_eq!(s["Behavior"], "release");
    assert_eq!(s["TTL"], "");
    assert_eq!(s["NodeChecks"], json!(["serfHealth"]));
    let (_, list) = a.get_json("/v1/session/list").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, by_node) = a.get_json("/v1/session/node/test-node").await;
    assert_eq!(by_node[0]["ID"], id.as_str());
    let (_, none) = a.get_json("/v1/session/info/nope").await;
    assert_eq!(none, json!([]));

    // Lock delay as a small number means seconds; as a string it is a duration.
    let id = create(
        &a,
        json!({"Name": "n", "LockDelay": 5, "Behavior": "delete", "TTL": "30s"}),
    )
    .await;
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(
        (
            info[0]["LockDelay"].as_u64(),
            info[0]["Behavior"].as_str(),
            info[0]["TTL"].as_str()
        ),
        (Some(5_000_000_000), Some("delete"), Some("30s"))
    );
    let id = create(&a, json!({"LockDelay": "250ms"})).await;
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info[0]["LockDelay"], 250_000_000u64);
}

#[tokio::test]
async fn create_errors() {
    let a = TestAgent::start().await;
    let cases = [
        (
            json!({"Behavior": "explode"}),
            "Invalid Behavior setting 'explode'",
        ),
        (
            json!({"TTL": "5s"}),
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
        ),
        (
            json!({"TTL": "soon"}),
            "Session TTL 'soon' invalid: time: invalid duration \"soon\"",
        ),
        (json!({"Node": "ghost"}), "Missing node registration"),
        (
            json!({"NodeChecks": ["nope"]}),
            "Missing check 'nope' registration",
        ),
        (
            json!({"Bogus": 1}),
            "Request decode failed: json: unknown field \"Bogus\"",
        ),
        // Regression: a field of the wrong type was dropped and the session created.
        (
            json!({"Node": 123}),
            "Request decode failed: json: cannot unmarshal number into Go struct field Session.Node of type string",
        ),
        (
            json!({"NodeChecks": "serfHealth"}),
            "Request decode failed: json: cannot unmarshal string into Go struct field Session.NodeChecks of type []string",
        ),
    ];
    for (body, text) in cases {
        let resp = a.put_json("/v1/session/create", body.clone()).await;
        // Decoding errors are the HTTP layer's 400s; the rest Consul's server refuses (500),
        // and clients such as Patroni recognise them by that status.
        let status = if text.starts_with("Request decode failed") {
            400
        } else {
            500
        };
        assert_eq!(resp.status(), status, "{body}");
        assert_eq!(resp.text().await.unwrap(), text, "{body}");
    }
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "down", "TTL": "30s"}),
    )
    .await;
    let resp = a
        .put_json("/v1/session/create", json!({"NodeChecks": ["down"]}))
        .await;
    assert_eq!(
        resp.text().await.unwrap(),
        "Check 'down' is in critical state"
    );
    let (_, list) = a.get_json("/v1/session/list").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn acquire_and_release_follow_consuls_lock_rules() {
    let a = TestAgent::start().await;
    let s1 = create(&a, json!({"LockDelay": "0s"})).await;
    let s2 = create(&a, json!({"LockDelay": "0s"})).await;
    assert!(acquire(&a, "leader", &s1, "one").await);
    let h = holder(&a, "leader").await;
    assert_eq!(
        (h["Session"].as_str(), h["LockIndex"].as_u64()),
        (Some(s1.as_str()), Some(1))
    );
    // The holder may rewrite without a new lock index; others are refused.
    assert!(acquire(&a, "leader", &s1, "one-again").await);
    assert_eq!(holder(&a, "leader").await["LockIndex"], 1);
    assert!(!acquire(&a, "leader", &s2, "two").await);
    assert_eq!(
        a.put_ok(&format!("/v1/kv/leader?release={s2}"), "x").await,
        "false"
    );
    assert_eq!(
        a.put_ok(&format!("/v1/kv/leader?release={s1}"), "released")
            .await,
        "true"
    );
    let h = holder(&a, "leader").await;
    assert!(h.get("Session").is_none());
    assert!(acquire(&a, "leader", &s2, "two").await);
    assert_eq!(holder(&a, "leader").await["LockIndex"], 2);
    let resp = a.put("/v1/kv/leader?acquire=not-a-session", "x").await;
    assert_eq!(resp.status(), 500, "as Consul's server answers");
    assert_eq!(
        resp.text().await.unwrap(),
        "invalid session \"not-a-session\""
    );
    // Txn lock verbs use the same rules.
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(&json!([{"KV": {"Verb": "lock", "Key": "leader", "Session": s1}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["Errors"][0]["What"],
        "failed to lock key \"leader\", lock is already held"
    );
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(
            &json!([{"KV": {"Verb": "check-session", "Key": "leader", "Session": s2}},
                      {"KV": {"Verb": "unlock", "Key": "leader", "Session": s2}}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn destroying_releases_or_deletes_and_applies_the_lock_delay() {
    let a = TestAgent::start().await;
    let releasing = create(&a, json!({"LockDelay": "1s"})).await;
    let deleting = create(&a, json!({"Behavior": "delete", "LockDelay": "0s"})).await;
    let other = create(&a, json!({"LockDelay": "0s"})).await;
    assert!(acquire(&a, "r", &releasing, "kept").await);
    assert!(acquire(&a, "d", &deleting, "gone").await);
    assert_eq!(
        a.put_ok(&format!("/v1/session/destroy/{releasing}"), "")
            .await,
        "true"
    );
    assert_eq!(
        a.put_ok(&format!("/v1/session/destroy/{deleting}"), "")
            .await,
        "true"
    );
    let h = holder(&a, "r").await;
    assert!(h.get("Session").is_none());
    assert_eq!(h["Value"], crate::common::b64("kept"));
    assert_eq!(a.get("/v1/kv/d").await.status(), 404);
    // Inside the lock-delay nobody may take the released key; afterwards they may.
    assert!(!acquire(&a, "r", &other, "mine").await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(acquire(&a, "r", &other, "mine").await);
}

#[tokio::test]
async fn ttl_sessions_expire_unless_renewed() {
    let a = fast_ttl_agent().await;
    let renewed = create(&a, json!({"TTL": "1s", "LockDelay": "0s"})).await;
    let forgotten = create(&a, json!({"TTL": "1s", "LockDelay": "0s"})).await;
    assert!(acquire(&a, "ttl-lock", &forgotten, "v").await);
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let resp = a.put(&format!("/v1/session/renew/{renewed}"), "").await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body[0]["ID"], renewed.as_str());
    }
    // TTL 1s with Consul's ×2 grace: the unrenewed one is gone by now, the other is not.
    let (_, info) = a.get_json(&format!("/v1/session/info/{forgotten}")).await;
    assert_eq!(info, json!([]));
    assert!(holder(&a, "ttl-lock").await.get("Session").is_none());
    let (_, info) = a.get_json(&format!("/v1/session/info/{renewed}")).await;
    assert_eq!(info[0]["ID"], renewed.as_str());
    let resp = a.put(&format!("/v1/session/renew/{forgotten}"), "").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("Session id '{forgotten}' not found")
    );
}

#[tokio::test]
async fn a_critical_check_invalidates_its_sessions() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "db", "Check": {"TTL": "30s", "Status": "passing"}}),
    )
    .await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "node-ok", "TTL": "30s", "Status": "passing"}),
    )
    .await;
    let by_service = create(
        &a,
        json!({"ServiceChecks": [{"ID": "service:db"}], "LockDelay": "0s"}),
    )
    .await;
    let by_node = create(
        &a,
        json!({"NodeChecks": ["serfHealth", "node-ok"], "LockDelay": "0s"}),
    )
    .await;
    assert!(acquire(&a, "svc-lock", &by_service, "v").await);
    a.put("/v1/agent/check/fail/service:db", "").await;
    let (_, info) = a.get_json(&format!("/v1/session/info/{by_service}")).await;
    assert_eq!(info, json!([]));
    assert!(holder(&a, "svc-lock").await.get("Session").is_none());
    let (_, info) = a.get_json(&format!("/v1/session/info/{by_node}")).await;
    assert_eq!(
        info[0]["ID"],
        by_node.as_str(),
        "unrelated session survives"
    );
    a.put("/v1/agent/check/deregister/node-ok", "").await;
    let (_, info) = a.get_json(&format!("/v1/session/info/{by_node}")).await;
    assert_eq!(
        info,
        json!([]),
        "deregistering a tied check invalidates too"
    );
}

#[tokio::test]
async fn deregistering_a_node_invalidates_its_sessions() {
    let a = TestAgent::start().await;
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(&json!([{"Node": {"Verb": "set", "Node": {"Node": "ext", "Address": "10.0.0.9"}}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = create(&a, json!({"Node": "ext", "NodeChecks": []})).await;
    a.http
        .put(a.url("/v1/txn"))
        .json(&json!([{"Node": {"Verb": "delete", "Node": {"Node": "ext"}}}]))
        .send()
        .await
        .unwrap();
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info, json!([]));
}

#[tokio::test]
async fn blocking_session_reads_wake_on_changes() {
    let a = TestAgent::start().await;
    let (index, _) = a.get_json("/v1/session/list").await;
    let waiter = a.watch(&format!("/v1/session/list?index={index}&wait=10s"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = create(&a, json!({})).await;
    let (_, list, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list[0]["ID"], id.as_str());
}

#[tokio::test]
async fn exactly_one_holder_under_contention() {
    let a = TestAgent::start().await;
    let mut sessions = Vec::new();
    for _ in 0..16 {
        sessions.push(create(&a, json!({"LockDelay": "0s"})).await);
    }
    let mut tasks = Vec::new();
    for s in sessions.clone() {
        let (http, base) = (a.http.clone(), a.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut acquired = 0;
            for i in 0..20 {
                let url = format!("{base}/v1/kv/contended?acquire={s}");
                let got = http
                    .put(url)
                    .body(format!("{s}-{i}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if got == "true" {
                    acquired += 1;
                    // While we hold it, nobody else may.
                    let (_, body): (u64, Value) = {
                        let r = http
                            .get(format!("{base}/v1/kv/contended"))
                            .send()
                            .await
                            .unwrap();
                        (0, r.json().await.unwrap())
                    };
                    assert_eq!(body[0]["Session"], s.as_str());
                    let url = format!("{base}/v1/kv/contended?release={s}");
                    assert_eq!(
                        http.put(url).send().await.unwrap().text().await.unwrap(),
                        "true"
                    );
                }
            }
            acquired
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert!(total > 0);
    let h = holder(&a, "contended").await;
    assert_eq!(
        h["LockIndex"].as_u64().unwrap(),
        total as u64,
        "one LockIndex step per acquisition"
    );
}

#[tokio::test]
async fn sessions_locks_and_deadlines_survive_a_restart() {
    let a = fast_ttl_agent().await;
    let held = create(&a, json!({"LockDelay": "0s"})).await;
    let short = create(&a, json!({"TTL": "1s"})).await;
    assert!(acquire(&a, "kept-lock", &held, "v").await);
    let data_dir = a.data_dir.clone();
    let a = a.restart().await;
    let h = holder(&a, "kept-lock").await;
    assert_eq!(h["Session"], held.as_str());
    let (_, info) = a.get_json(&format!("/v1/session/info/{held}")).await;
    assert_eq!(info[0]["ID"], held.as_str());
    // The TTL session's deadline passed while... it runs out after the restart as well.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (_, info) = a.get_json(&format!("/v1/session/info/{short}")).await;
    assert_eq!(info, json!([]));
    drop(data_dir);
}

#[tokio::test]
async fn txn_can_delete_a_session() {
    let a = TestAgent::start().await;
    let id = create(&a, json!({"LockDelay": "0s"})).await;
    assert!(acquire(&a, "txn-held", &id, "v").await);
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(&json!([{"Session": {"Verb": "delete", "Session": {"ID": id}}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(info, json!([]));
    assert!(holder(&a, "txn-held").await.get("Session").is_none());
}
