use crate::common::{b64, index_of, TestAgent};
use serde_json::json;

#[tokio::test]
async fn put_get_roundtrip_with_consul_shapes() {
    let a = TestAgent::start().await;
    assert_eq!(
        a.put_ok("/v1/kv/web/config?flags=42", "hello").await,
        "true"
    );
    let resp = a.get("/v1/kv/web/config").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["Content-Type"], "application/json");
    assert_eq!(resp.headers()["X-Consul-KnownLeader"], "true");
    assert_eq!(resp.headers()["X-Consul-LastContact"], "0");
    let index = index_of(&resp);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"LockIndex": 0, "Key": "web/config", "Flags": 42, "Value": b64("hello"),
                "CreateIndex": index, "ModifyIndex": index}])
    );
    // Field order is Consul's.
    let text = a.get("/v1/kv/web/config").await.text().await.unwrap();
    assert!(
        text.starts_with(r#"[{"LockIndex":0,"Key":"web/config","Flags":42,"Value":"#),
        "{text}"
    );

    // An empty value is null.
    a.put_ok("/v1/kv/empty", "").await;
    let (_, body) = a.get_json("/v1/kv/empty").await;
    assert_eq!(body[0]["Value"], serde_json::Value::Null);
}

#[tokio::test]
async fn raw_returns_the_bytes() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/bin", vec![0u8, 1, 2, 255]).await;
    let resp = a.get("/v1/kv/bin?raw").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["Content-Type"], "text/plain");
    assert_eq!(resp.headers()["X-Content-Type-Options"], "nosniff");
    assert!(resp.headers().contains_key("X-Consul-Index"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &[0u8, 1, 2, 255]);
}

#[tokio::test]
async fn missing_keys_are_404_with_an_empty_body_and_an_index() {
    let a = TestAgent::start().await;
    let resp = a.get("/v1/kv/nope").await;
    assert_eq!(resp.status(), 404);
    assert!(index_of(&resp) >= 1);
    assert_eq!(resp.text().await.unwrap(), "");
    assert_eq!(a.get("/v1/kv/nope?recurse").await.status(), 404);
    assert_eq!(a.get("/v1/kv/nope?keys").await.status(), 404);
    // Listing the keys of the whole (empty) store is an empty list, not a 404.
    let (_, keys) = a.get_json("/v1/kv/?keys").await;
    assert_eq!(keys, json!([]));
}

#[tokio::test]
async fn recurse_and_keys_with_separator() {
    let a = TestAgent::start().await;
    for key in ["app/a", "app/b/c", "app/b/d", "apple", "zoo"] {
        a.put_ok(&format!("/v1/kv/{key}"), key).await;
    }
    let (index, body) = a.get_json("/v1/kv/app/?recurse").await;
    let keys: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["app/a", "app/b/c", "app/b/d"]);
    let highest = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ModifyIndex"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(index, highest, "highest ModifyIndex under the prefix");
    let (_, keys) = a.get_json("/v1/kv/app?keys&separator=/").await;
    assert_eq!(keys, json!(["app/", "apple"]));
    let (_, keys) = a.get_json("/v1/kv/app/?keys&separator=/").await;
    assert_eq!(keys, json!(["app/a", "app/b/"]));
    let (_, keys) = a.get_json("/v1/kv/?keys").await;
    assert_eq!(keys.as_array().unwrap().len(), 5);
    // The old misspelling still works.
    let (_, keys) = a.get_json("/v1/kv/app/?keys&seperator=/").await;
    assert_eq!(keys, json!(["app/a", "app/b/"]));
}

#[tokio::test]
async fn cas_put_and_delete() {
    let a = TestAgent::start().await;
    assert_eq!(a.put_ok("/v1/kv/k?cas=0", "1").await, "true");
    assert_eq!(a.put_ok("/v1/kv/k?cas=0", "2").await, "false");
    let (index, _) = a.get_json("/v1/kv/k").await;
    assert_eq!(
        a.put_ok(&format!("/v1/kv/k?cas={}", index + 10), "3").await,
        "false"
    );
    assert_eq!(
        a.put_ok(&format!("/v1/kv/k?cas={index}"), "4").await,
        "true"
    );
    let (index, body) = a.get_json("/v1/kv/k").await;
    assert_eq!(body[0]["Value"], b64("4"));
    let resp = a.delete("/v1/kv/k?cas=1").await;
    assert_eq!(resp.text().await.unwrap(), "false");
    let resp = a.delete(&format!("/v1/kv/k?cas={index}")).await;
    assert_eq!(resp.text().await.unwrap(), "true");
    assert_eq!(a.get("/v1/kv/k").await.status(), 404);
}

#[tokio::test]
async fn delete_single_and_recursive() {
    let a = TestAgent::start().await;
    for key in ["d/1", "d/2", "d/x/3", "keep"] {
        a.put_ok(&format!("/v1/kv/{key}"), "v").await;
    }
    let (before, _) = a.get_json("/v1/kv/d/?recurse").await;
    assert_eq!(a.delete("/v1/kv/d/1").await.text().await.unwrap(), "true");
    assert_eq!(
        a.delete("/v1/kv/never-existed").await.text().await.unwrap(),
        "true"
    );
    assert_eq!(
        a.delete("/v1/kv/d/?recurse").await.text().await.unwrap(),
        "true"
    );
    assert_eq!(a.get("/v1/kv/d/?recurse").await.status(), 404);
    // The prefix index does not go backwards after the delete.
    let resp = a.get("/v1/kv/d/?recurse").await;
    let after = index_of(&resp);
    assert!(
        after > before,
        "the prefix index moved forward with the delete"
    );
    assert_eq!(
        after,
        index_of(&a.get("/v1/kv/never-existed").await),
        "it is the delete's index, the table's latest"
    );
    assert_eq!(a.get("/v1/kv/keep").await.status(), 200);
}

#[tokio::test]
async fn bad_requests_get_consuls_errors() {
    let a = TestAgent::start().await;
    let resp = a.put("/v1/kv/", "x").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), "Missing key name");
    let resp = a.get("/v1/kv/").await;
    assert_eq!(resp.status(), 400);
    let resp = a.put("/v1/kv/k?cas=0&release=abc", "x").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "Conflicting flags: cas=0&release=abc"
    );
    let resp = a.put("/v1/kv/k?flags=abc", "x").await;
    assert_eq!(resp.status(), 400);
    let resp = a.delete("/v1/kv/k?recurse&cas=1").await;
    assert_eq!(resp.status(), 400);
    let resp = a.http.post(a.url("/v1/kv/k")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["Allow"], "OPTIONS,GET,PUT,DELETE");
    assert_eq!(resp.text().await.unwrap(), "method POST not allowed");
    let resp = a
        .http
        .request(reqwest::Method::OPTIONS, a.url("/v1/kv/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["Allow"], "OPTIONS,GET,PUT,DELETE");
    let resp = a.get("/v1/nothing/here").await;
    assert_eq!(resp.status(), 404);
    // Nothing above wrote anything.
    assert_eq!(a.get("/v1/kv/k").await.status(), 404);
}

#[tokio::test]
async fn oversized_values_are_413_and_not_stored() {
    let a = TestAgent::start_with(|_| {}).await;
    let big = vec![b'x'; 512 * 1024 + 1];
    let resp = a.put("/v1/kv/big", big.clone()).await;
    assert_eq!(resp.status(), 413);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("Request body(524289 bytes) too large, max size: 524288 bytes."),
        "{text}"
    );
    // A chunked body without a length is cut off as well.
    let stream = futures_util::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = a
        .http
        .put(a.url("/v1/kv/big"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(a.get("/v1/kv/big").await.status(), 404);
    // Exactly the limit is fine.
    assert_eq!(a.put_ok("/v1/kv/big", vec![b'x'; 512 * 1024]).await, "true");
}

#[tokio::test]
async fn the_value_limit_follows_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("limits.hcl");
    std::fs::write(&cfg, "limits { kv_max_value_size = 10 }").unwrap();
    let a = TestAgent::start_with(|f| f.config_file = vec![cfg]).await;
    assert_eq!(a.put("/v1/kv/k", "0123456789").await.status(), 200);
    assert_eq!(a.put("/v1/kv/k", "0123456789a").await.status(), 413);
}

#[tokio::test]
async fn keys_clients_rely_on_are_accepted_and_traversal_is_not() {
    let a = TestAgent::start().await;
    for key in [
        "config.json",
        "with%20space",
        "semi;colon",
        "ümlaut",
        "a/b.c/d,e-f_g",
    ] {
        assert_eq!(
            a.put_ok(&format!("/v1/kv/{key}"), "v").await,
            "true",
            "{key}"
        );
        assert_eq!(a.get(&format!("/v1/kv/{key}")).await.status(), 200, "{key}");
    }
    let (_, body) = a.get_json("/v1/kv/with%20space").await;
    assert_eq!(body[0]["Key"], "with space");
    // (Encoded slashes: an HTTP client would normalise a literal `/../` away.)
    let resp = a.put("/v1/kv/a%2F..%2Fetc", "v").await;
    assert_eq!(resp.status(), 400);
    let (_, keys) = a.get_json("/v1/kv/?keys").await;
    assert!(!keys.to_string().contains(".."));
}

#[tokio::test]
async fn query_option_errors() {
    let a = TestAgent::start().await;
    let cases = [
        (
            "/v1/kv/k?stale&consistent",
            400,
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ),
        ("/v1/kv/k?dc=other", 500, "No path to datacenter"),
        ("/v1/kv/k?wait=forever&index=1", 400, "Invalid wait time"),
        ("/v1/kv/k?index=abc", 400, "Invalid index"),
        (
            "/v1/kv/k?ns=team",
            400,
            "Invalid query parameter: \"ns\" - Namespaces are a Consul Enterprise feature",
        ),
        (
            "/v1/kv/k?partition=p",
            400,
            "Invalid query parameter: \"partition\" - Partitions are a Consul Enterprise feature",
        ),
    ];
    for (path, status, message) in cases {
        let resp = a.get(path).await;
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(resp.text().await.unwrap(), message, "{path}");
    }
    a.put_ok("/v1/kv/k", "v").await;
    for ok in [
        "/v1/kv/k?dc=dc1",
        "/v1/kv/k?ns=default&partition=default",
        "/v1/kv/k?stale",
        "/v1/kv/k?consistent",
    ] {
        assert_eq!(a.get(ok).await.status(), 200, "{ok}");
    }
}

#[tokio::test]
async fn pretty_output_is_indented_with_four_spaces() {
    let a = TestAgent::start().await;
    assert_eq!(a.put_ok("/v1/kv/p?pretty", "v").await, "true\n");
    let text = a.get("/v1/kv/p?pretty").await.text().await.unwrap();
    assert!(
        text.starts_with("[\n    {\n        \"LockIndex\": 0,"),
        "{text}"
    );
    assert!(text.ends_with("]\n"));
}

#[tokio::test]
async fn identical_rewrites_keep_the_modify_index() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/same", "v").await;
    let (first, _) = a.get_json("/v1/kv/same").await;
    a.put_ok("/v1/kv/same", "v").await;
    let (second, body) = a.get_json("/v1/kv/same").await;
    assert_eq!(first, second);
    assert_eq!(body[0]["ModifyIndex"], first);
}

#[tokio::test]
async fn release_without_holding_the_lock_is_false() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/l", "v").await;
    assert_eq!(
        a.put_ok("/v1/kv/l?release=not-the-holder", "v").await,
        "false"
    );
}
