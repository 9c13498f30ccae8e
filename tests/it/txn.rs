use crate::common::{b64, TestAgent};
use serde_json::{json, Value};

async fn txn(a: &TestAgent, ops: Value) -> (u16, Value) {
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(&ops)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_write_transaction_applies_all_ops_at_one_index() {
    let a = TestAgent::start().await;
    let (status, body) = txn(
        &a,
        json!([
            {"KV": {"Verb": "set", "Key": "t/a", "Value": b64("1"), "Flags": 7}},
            {"KV": {"Verb": "set", "Key": "t/b", "Value": b64("2")}},
            {"KV": {"Verb": "get", "Key": "t/a"}},
            {"KV": {"Verb": "check-not-exists", "Key": "t/c"}},
            {"KV": {"Verb": "delete", "Key": "t/none"}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Errors"], Value::Null);
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // set results carry no value; get does.
    assert_eq!(results[0]["KV"]["Value"], Value::Null);
    assert_eq!(results[0]["KV"]["Flags"], 7);
    assert_eq!(results[2]["KV"]["Value"], b64("1"));
    let index = results[0]["KV"]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(results[1]["KV"]["ModifyIndex"], index);
    let (_, kv) = a.get_json("/v1/kv/t/b").await;
    assert_eq!(kv[0]["ModifyIndex"], index);
}

#[tokio::test]
async fn a_failed_transaction_rolls_back_and_reports_every_error() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/x", "orig").await;
    let (orig_index, _) = a.get_json("/v1/kv/x").await;
    let (status, body) = txn(
        &a,
        json!([
            {"KV": {"Verb": "set", "Key": "x", "Value": b64("changed")}},
            {"KV": {"Verb": "set", "Key": "new", "Value": b64("v")}},
            {"KV": {"Verb": "cas", "Key": "x", "Value": b64("v"), "Index": 999}},
            {"KV": {"Verb": "get", "Key": "missing"}},
            {"KV": {"Verb": "bogus", "Key": "k"}}
        ]),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["Results"], Value::Null);
    assert_eq!(
        body["Errors"],
        json!([
            {"OpIndex": 2, "What": "failed to set key \"x\", index is stale"},
            {"OpIndex": 3, "What": "key \"missing\" doesn't exist"},
            {"OpIndex": 4, "What": "unknown KV verb \"bogus\""}
        ])
    );
    let (index, kv) = a.get_json("/v1/kv/x").await;
    assert_eq!(kv[0]["Value"], b64("orig"));
    assert_eq!(
        index, orig_index,
        "a rolled-back transaction takes no index"
    );
    assert_eq!(a.get("/v1/kv/new").await.status(), 404);
}

#[tokio::test]
async fn check_verbs_and_read_only_transactions() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/c/1", "a").await;
    a.put_ok("/v1/kv/c/2", "b").await;
    let (c1, _) = a.get_json("/v1/kv/c/1").await;
    let (status, body) = txn(
        &a,
        json!([
            {"KV": {"Verb": "check-index", "Key": "c/1", "Index": c1}},
            {"KV": {"Verb": "check-session", "Key": "c/1"}},
            {"KV": {"Verb": "get-tree", "Key": "c/"}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[3]["KV"]["Value"], b64("b"));
    let (status, body) = txn(
        &a,
        json!([
            {"KV": {"Verb": "check-index", "Key": "c/1", "Index": c1 + 5}},
            {"KV": {"Verb": "check-session", "Key": "c/1", "Session": "s"}},
            {"KV": {"Verb": "check-not-exists", "Key": "c/2"}},
            {"KV": {"Verb": "check-index", "Key": "c/none", "Index": 1}}
        ]),
    )
    .await;
    assert_eq!(status, 409);
    let whats: Vec<&str> = body["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["What"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        [
            &format!(
                "failed index check for key \"c/1\", current modify index {c1} != {}",
                c1 + 5
            ),
            "failed session check for key \"c/1\", current session \"\" != \"s\"",
            "key \"c/2\" exists",
            "failed to check index, key \"c/none\" doesn't exist",
        ]
    );
}

#[tokio::test]
async fn delete_verbs() {
    let a = TestAgent::start().await;
    for k in ["d/1", "d/2", "e"] {
        a.put_ok(&format!("/v1/kv/{k}"), "v").await;
    }
    let (e_index, _) = a.get_json("/v1/kv/e").await;
    let (status, body) = txn(
        &a,
        json!([
            {"KV": {"Verb": "delete-tree", "Key": "d/"}},
            {"KV": {"Verb": "delete-cas", "Key": "e", "Index": e_index}},
            {"KV": {"Verb": "delete-cas", "Key": "gone", "Index": 9}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Results"], json!([]));
    assert_eq!(a.get("/v1/kv/?recurse").await.status(), 404);
}

#[tokio::test]
async fn malformed_and_oversized_transactions_are_refused() {
    let a = TestAgent::start().await;
    let resp = a.put("/v1/txn", "not json").await;
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with("Failed to parse body: "));
    let ops: Vec<Value> = (0..129)
        .map(|i| json!({"KV": {"Verb": "set", "Key": format!("k{i}")}}))
        .collect();
    let resp = a
        .http
        .put(a.url("/v1/txn"))
        .json(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.text().await.unwrap(),
        "Transaction contains too many operations (129 > 128)"
    );
    let resp = a.put("/v1/txn", vec![b' '; 600 * 1024]).await;
    assert_eq!(resp.status(), 413);
    let (status, body) = txn(&a, json!([{"KV": {"Verb": "set", "Key": ""}}])).await;
    assert_eq!(status, 409);
    assert_eq!(body["Errors"][0]["What"], "Must provide key");
    let resp = a.get("/v1/txn").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(a.get("/v1/kv/?keys").await.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn lock_verbs_need_a_session() {
    let a = TestAgent::start().await;
    let (status, body) = txn(&a, json!([{"KV": {"Verb": "lock", "Key": "l"}}])).await;
    assert_eq!(status, 409);
    assert_eq!(body["Errors"][0]["What"], "missing session");
    let (status, body) = txn(
        &a,
        json!([{"KV": {"Verb": "unlock", "Key": "l", "Session": "s"}}]),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["Errors"][0]["What"],
        "failed to unlock key \"l\", lock isn't held, or is held by another session"
    );
}

#[tokio::test]
async fn node_service_and_check_operations() {
    let a = TestAgent::start().await;
    let (status, body) = txn(
        &a,
        json!([
            {"Node": {"Verb": "set", "Node": {"Node": "ext-1", "Address": "10.9.9.9"}}},
            {"Service": {"Verb": "set", "Node": "ext-1", "Service": {"ID": "pay-1", "Service": "pay", "Port": 443}}},
            {"Check": {"Verb": "set", "Check": {"Node": "ext-1", "CheckID": "pay-alive", "Name": "alive", "Status": "passing", "ServiceID": "pay-1"}}}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["Results"].as_array().unwrap();
    assert_eq!(results[0]["Node"]["Address"], "10.9.9.9");
    assert_eq!(results[1]["Service"]["Service"], "pay");
    assert_eq!(results[2]["Check"]["ServiceName"], "pay");
    let node_index = results[0]["Node"]["ModifyIndex"].as_u64().unwrap();

    // Reads only: no index taken.
    let (status, body) = txn(
        &a,
        json!([{"Node": {"Verb": "get", "Node": {"Node": "ext-1"}}}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Results"][0]["Node"]["Node"], "ext-1");

    let (status, body) = txn(
        &a,
        json!([
            {"Node": {"Verb": "cas", "Node": {"Node": "ext-1", "Address": "10.0.0.1", "ModifyIndex": node_index + 100}}},
            {"Service": {"Verb": "get", "Node": "ext-1", "Service": {"ID": "nope", "Service": ""}}},
            {"Check": {"Verb": "bogus", "Check": {"Node": "ext-1", "CheckID": "x"}}}
        ]),
    )
    .await;
    assert_eq!(status, 409);
    let whats: Vec<&str> = body["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["What"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        [
            "failed to set node \"ext-1\", index is stale",
            "service \"nope\" on node \"ext-1\" doesn't exist",
            "unknown Check verb \"bogus\"",
        ]
    );
    let (status, _) = txn(
        &a,
        json!([{"Node": {"Verb": "delete", "Node": {"Node": "ext-1"}}}]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = txn(
        &a,
        json!([{"Check": {"Verb": "get", "Check": {"Node": "ext-1", "CheckID": "pay-alive"}}}]),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

/// Consul answers a read-only transaction through `Txn.Read`, whose reply carries the query
/// meta in the body and the leader headers; a write transaction's carries neither.
#[tokio::test]
async fn a_read_only_transaction_answers_with_the_query_meta() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/r/a", "1").await;
    let send = |ops: Value| a.http.put(a.url("/v1/txn")).json(&ops).send();
    let resp = send(json!([{"KV": {"Verb": "get", "Key": "r/a"}}]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["X-Consul-KnownLeader"], "true");
    assert_eq!(resp.headers()["X-Consul-LastContact"], "0");
    assert!(resp.headers().get("X-Consul-Index").is_none());
    let body: Value = resp.json().await.unwrap();
    let mut meta = body.as_object().unwrap().clone();
    assert_eq!(meta.remove("Results").unwrap()[0]["KV"]["Value"], b64("1"));
    assert_eq!(
        Value::Object(meta),
        json!({"Errors": null, "Index": 0, "LastContact": 0, "KnownLeader": true,
               "ConsistencyLevel": "", "NotModified": false, "Backend": 0,
               "ResultsFilteredByACLs": false})
    );

    // A refused pre-check returns before the meta is filled in.
    let resp = send(json!([{"KV": {"Verb": "get"}}])).await.unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["X-Consul-KnownLeader"], "false");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["KnownLeader"].clone(), body["Results"].clone()),
        (json!(false), Value::Null)
    );

    let (status, body) = txn(
        &a,
        json!([{"KV": {"Verb": "set", "Key": "r/b", "Value": b64("2")}}]),
    )
    .await;
    assert_eq!(status, 200);
    let mut keys: Vec<_> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["Errors", "Results"]);
}
