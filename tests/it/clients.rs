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

/// Runs one of the py-consul scripts under tests/clients against a fresh agent. py-consul must
/// be installed (`.ci/run` installs it); where it is not, the test fails with the command that
/// installs it rather than passing without having run.
async fn py_consul(script: &str) {
    let has_module = std::process::Command::new("python3")
        .args(["-c", "import consul"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        has_module,
        "python3 with py-consul is not installed; install it with: python3 -m pip install py-consul"
    );
    let a = TestAgent::start().await;
    let addr = a.base.trim_start_matches("http://").to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("python3")
        .args([path.as_str(), host, port])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn py_consul_kv_and_txn() {
    py_consul("py_consul_kv.py").await;
}

#[tokio::test]
async fn py_consul_discovery_health_sessions_and_events() {
    py_consul("py_consul_discovery.py").await;
}
