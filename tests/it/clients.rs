//! Real Consul clients against the agent.

use crate::common::TestAgent;
use rs_consul::types::{CreateOrUpdateKeyRequest, DeleteKeyRequest, ReadKeyRequest};
use rs_consul::{Config, Consul};

fn rs_consul(a: &TestAgent) -> Consul {
    Consul::new(Config {
        address: a.base.clone(),
        token: None,
        ..Default::default()
    })
}

#[tokio::test]
async fn rs_consul_kv_roundtrip() {
    let a = TestAgent::start().await;
    let consul = rs_consul(&a);
    let put = CreateOrUpdateKeyRequest {
        key: "rs/one",
        ..Default::default()
    };
    let (ok, _) = consul
        .create_or_update_key(put, b"first".to_vec())
        .await
        .unwrap();
    assert!(ok);
    let cas = CreateOrUpdateKeyRequest {
        key: "rs/one",
        check_and_set: Some(0),
        ..Default::default()
    };
    let (ok, _) = consul
        .create_or_update_key(cas, b"nope".to_vec())
        .await
        .unwrap();
    assert!(!ok, "cas=0 on an existing key must fail");

    let read = consul
        .read_key(ReadKeyRequest {
            key: "rs/one",
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(read.response[0].value.as_deref(), Some("first"));
    assert!(read.index >= 1);

    let listed = consul
        .read_key(ReadKeyRequest {
            key: "rs/",
            recurse: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.response.len(), 1);

    let deleted = consul
        .delete_key(DeleteKeyRequest {
            key: "rs/one",
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(deleted);
    let missing = consul
        .read_key(ReadKeyRequest {
            key: "rs/one",
            ..Default::default()
        })
        .await;
    assert!(missing.is_err(), "a missing key is a 404 to the client");
}

#[tokio::test]
async fn rs_consul_blocking_read_returns_on_change() {
    let a = TestAgent::start().await;
    let consul = rs_consul(&a);
    a.put_ok("/v1/kv/watch", "1").await;
    let first = consul
        .read_key(ReadKeyRequest {
            key: "watch",
            ..Default::default()
        })
        .await
        .unwrap();
    let writer = {
        let base = a.base.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            reqwest::Client::new()
                .put(format!("{base}/v1/kv/watch"))
                .body("2")
                .send()
                .await
                .unwrap();
        })
    };
    let second = consul
        .read_key(ReadKeyRequest {
            key: "watch",
            index: Some(first.index),
            wait: std::time::Duration::from_secs(10),
            ..Default::default()
        })
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(second.index > first.index);
    assert_eq!(second.response[0].value.as_deref(), Some("2"));
}
