//! The Connect CA over HTTP: roots and configuration shaped as Consul's, leaves that real TLS
//! stacks and `openssl verify` accept, rotation with cross-signing, refusals that change
//! nothing, and a CA that survives restarts and snapshots.

use crate::common::tls::{chain, mutual_tls, openssl_verify, Identity};
use crate::common::{index_of, TestAgent};
use serde_json::{json, Value};
use std::time::Duration;

async fn connect_agent() -> TestAgent {
    TestAgent::start_with(|f| f.hcl.push("connect { enabled = true }".into())).await
}

async fn roots(a: &TestAgent) -> Value {
    a.get_json("/v1/connect/ca/roots").await.1
}

fn active_root(roots: &Value) -> &Value {
    let id = &roots["ActiveRootID"];
    roots["Roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| &r["ID"] == id)
        .expect("the active root is listed")
}

async fn leaf(a: &TestAgent, service: &str) -> Value {
    a.get_json(&format!("/v1/agent/connect/ca/leaf/{service}"))
        .await
        .1
}

fn identity(leaf: &Value) -> Identity<'_> {
    Identity {
        cert_pem: leaf["CertPEM"].as_str().unwrap(),
        private_key_pem: leaf["PrivateKeyPEM"].as_str().unwrap(),
        uri: leaf["ServiceURI"].as_str().unwrap(),
    }
}

async fn put_config(a: &TestAgent, body: Value) -> (u16, String) {
    let resp = a
        .put("/v1/connect/ca/configuration", body.to_string())
        .await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn roots_and_configuration_are_shaped_as_consuls_and_keep_keys_out() {
    let a = connect_agent().await;
    let resp = a.get("/v1/connect/ca/roots").await;
    assert!(index_of(&resp) > 0);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let roots: Value = serde_json::from_str(&text).unwrap();
    let trust_domain = roots["TrustDomain"].as_str().unwrap();
    assert!(trust_domain.ends_with(".consul"), "{trust_domain}");
    assert_eq!(roots["Roots"].as_array().unwrap().len(), 1);
    let root = active_root(&roots);
    assert_eq!(root["Name"], "Consul CA Primary Cert");
    assert_eq!(root["Active"], true);
    assert_eq!(root["PrivateKeyType"], "ec");
    assert_eq!(root["PrivateKeyBits"], 256);
    assert_eq!(root["IntermediateCerts"], Value::Null);
    assert_eq!(root["ExternalTrustDomain"], "");
    assert!(root["SerialNumber"].as_u64().unwrap() > 0);
    assert_eq!(root["SigningKeyID"].as_str().unwrap().len(), 32 * 3 - 1);
    for key in ["NotBefore", "NotAfter"] {
        assert!(root[key].as_str().unwrap().ends_with('Z'), "{key}");
    }
    assert!(root["RootCert"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(a.get_json("/v1/agent/connect/ca/roots").await.1, roots);

    let resp = a.get("/v1/connect/ca/roots?pem=true").await;
    assert_eq!(
        resp.headers()["Content-Type"],
        "application/pem-certificate-chain"
    );
    assert_eq!(resp.text().await.unwrap(), root["RootCert"]);
    let resp = a.get("/v1/connect/ca/roots?pem=maybe").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "The 'pem' query parameter must be a boolean value"
    );

    let (_, config) = a.get_json("/v1/connect/ca/configuration").await;
    assert_eq!(config["Provider"], "consul");
    assert_eq!(config["Config"]["LeafCertTTL"], "72h");
    assert_eq!(config["Config"]["PrivateKeyType"], "ec");
    assert!(config["CreateIndex"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn leaves_of_two_services_complete_mutual_tls_against_the_roots() {
    let a = connect_agent().await;
    let roots = roots(&a).await;
    let root_pem = active_root(&roots)["RootCert"]
        .as_str()
        .unwrap()
        .to_string();
    let web = leaf(&a, "web").await;
    let db = leaf(&a, "db").await;
    assert_eq!(
        web["ServiceURI"],
        format!(
            "spiffe://{}/ns/default/dc/dc1/svc/web",
            roots["TrustDomain"].as_str().unwrap()
        )
    );
    assert_eq!(web["Service"], "web");
    assert!(web["SerialNumber"].as_str().unwrap().contains(':'));
    assert!(web["ValidAfter"].as_str().unwrap() < web["ValidBefore"].as_str().unwrap());
    assert!(web["ModifyIndex"].as_u64().unwrap() > 0);
    assert_eq!(
        mutual_tls(&root_pem, identity(&web), identity(&db)),
        web["ServiceURI"]
    );
    openssl_verify(&root_pem, None, web["CertPEM"].as_str().unwrap());
    // Cached: the same certificate until it nears expiry or the root changes, also when a
    // blocking read of it times out.
    assert_eq!(leaf(&a, "web").await, web);
    let started = std::time::Instant::now();
    let path = format!(
        "/v1/agent/connect/ca/leaf/web?index={}&wait=500ms",
        web["ModifyIndex"]
    );
    let (index, again) = a.get_json(&path).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        (index, &again),
        (web["ModifyIndex"].as_u64().unwrap(), &web)
    );
}

#[tokio::test]
async fn a_new_key_type_rotates_the_root_and_old_trust_still_verifies_new_leaves() {
    let a = connect_agent().await;
    let old_root = active_root(&roots(&a).await).clone();
    let old_pem = old_root["RootCert"].as_str().unwrap().to_string();
    let db_old = leaf(&a, "db").await;
    let web_old = leaf(&a, "web").await;

    // A blocking read of the current leaf returns once the rotation supersedes it.
    let waiting = {
        let url = a.url(&format!(
            "/v1/agent/connect/ca/leaf/web?index={}&wait=60s",
            web_old["ModifyIndex"]
        ));
        let http = a.http.clone();
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());

    let config =
        json!({"Provider": "consul", "Config": {"PrivateKeyType": "rsa", "PrivateKeyBits": 2048}});
    let (status, body) = put_config(&a, config).await;
    assert_eq!((status, body.as_str()), (200, ""));

    let roots = roots(&a).await;
    let listed = roots["Roots"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let new_root = active_root(&roots).clone();
    assert_ne!(new_root["ID"], old_root["ID"]);
    assert_eq!(new_root["PrivateKeyType"], "rsa");
    let old_listed = listed.iter().find(|r| r["ID"] == old_root["ID"]).unwrap();
    assert_eq!(old_listed["Active"], false);
    let cross = new_root["IntermediateCerts"][0].as_str().unwrap();

    let resp = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the blocking leaf query returns after the rotation")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let web_new: Value = resp.json().await.unwrap();
    assert_ne!(web_new["SerialNumber"], web_old["SerialNumber"]);
    assert!(web_new["ModifyIndex"].as_u64() > web_old["ModifyIndex"].as_u64());
    let web_pem = web_new["CertPEM"].as_str().unwrap();
    assert_eq!(
        chain(web_pem).len(),
        2,
        "the new leaf carries the cross-signed cert"
    );

    openssl_verify(&old_pem, Some(cross), web_pem);
    openssl_verify(new_root["RootCert"].as_str().unwrap(), None, web_pem);
    // A peer that still has the old root and leaf accepts the new leaf, and the reverse.
    assert_eq!(
        mutual_tls(&old_pem, identity(&web_new), identity(&db_old)),
        web_new["ServiceURI"]
    );
    let pems = a
        .get("/v1/connect/ca/roots?pem=true")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(chain(&pems).len(), 3);
}

#[tokio::test]
async fn bad_configurations_are_refused_and_change_nothing() {
    let a = connect_agent().await;
    let before = (
        roots(&a).await,
        a.get_json("/v1/connect/ca/configuration").await.1,
    );
    for (config, message) in [
        (
            json!({"Provider": "consul", "Config": {"LeafCertTTL": "1m"}}),
            "error configuring provider: leaf cert TTL must be greater or equal than 1h0m0s",
        ),
        (
            json!({"Provider": "consul", "Config": {"PrivateKeyType": "dsa"}}),
            "error configuring provider: private key type must be either 'ec' or 'rsa'",
        ),
        (
            json!({"Provider": "consul", "Config": {"PrivateKeyType": "rsa", "PrivateKeyBits": 1024}}),
            "error configuring provider: RSA key length must be 2048 or 4096 bits",
        ),
        (
            json!({"Provider": "consul", "Config": {"IntermediateCertTTL": "24h"}}),
            "error configuring provider: Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL (>=216h0m0s).",
        ),
        (
            json!({"Provider": "consul", "Config": {"CSRMaxConcurrent": "many"}}),
            "error configuring provider: error decoding config: cannot parse 'CSRMaxConcurrent' as int: strconv.ParseInt: parsing \"many\": invalid syntax",
        ),
        (
            json!({"Provider": "consul", "Config": {}, "State": {"id": "x"}}),
            "Provider State is read-only. It must be omitted or identical to the current value",
        ),
        (
            json!({"Provider": "consul", "Config": {"RootCert": "-----BEGIN CERTIFICATE-----"}}),
            "error configuring provider: must provide a private key when providing a root cert",
        ),
    ] {
        let (status, body) = put_config(&a, config.clone()).await;
        assert_eq!((status, body.as_str()), (400, message), "{config}");
    }
    let (status, body) = put_config(&a, json!({"Provider": "vault", "Config": {}})).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown CA provider \"vault\""), "{body}");
    let (status, body) = put_config(&a, json!({"Provider": 1})).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Request decode failed: "), "{body}");

    let after = (
        roots(&a).await,
        a.get_json("/v1/connect/ca/configuration").await.1,
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_ca_and_cached_leaves_survive_a_restart() {
    let a = connect_agent().await;
    let roots_before = roots(&a).await;
    let leaf_before = leaf(&a, "web").await;
    let a = a.restart().await;
    assert_eq!(roots(&a).await, roots_before);
    assert_eq!(leaf(&a, "web").await, leaf_before);
}

#[tokio::test]
async fn a_snapshot_carries_the_ca_and_its_leaves() {
    let a = connect_agent().await;
    let roots_a = roots(&a).await;
    let leaf_a = leaf(&a, "web").await;
    let archive = a.get("/v1/snapshot").await.bytes().await.unwrap();

    let b = connect_agent().await;
    assert_ne!(roots(&b).await["ActiveRootID"], roots_a["ActiveRootID"]);
    let resp = b.put("/v1/snapshot", archive.to_vec()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(roots(&b).await["Roots"], roots_a["Roots"]);
    assert_eq!(
        leaf(&b, "web").await["SerialNumber"],
        leaf_a["SerialNumber"]
    );
}

#[tokio::test]
async fn without_connect_the_ca_endpoints_answer_as_consuls() {
    let a = TestAgent::start().await;
    let (_, roots) = a.get_json("/v1/connect/ca/roots").await;
    assert_eq!(
        roots,
        json!({"ActiveRootID": "", "TrustDomain": "", "Roots": []})
    );
    for resp in [
        a.get("/v1/agent/connect/ca/leaf/web").await,
        a.get("/v1/connect/ca/configuration").await,
        a.put("/v1/connect/ca/configuration", r#"{"Provider":"consul"}"#)
            .await,
    ] {
        assert_eq!(resp.status(), 500);
        assert_eq!(
            resp.text().await.unwrap(),
            "Connect must be enabled in order to use this endpoint"
        );
    }
}

#[tokio::test]
async fn the_cli_reads_and_sets_the_ca_configuration() {
    let a = connect_agent().await;
    let out = a.cli(&["connect", "ca", "get-config"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("{\n\t\"Provider\": \"consul\",\n\t\"Config\": {\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\t\t\"LeafCertTTL\": \"72h\",\n"),
        "{}",
        out.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.json");
    std::fs::write(
        &file,
        r#"{"Provider": "consul", "Config": {"LeafCertTTL": "24h"}}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = a
        .cli(&["connect", "ca", "set-config", "-config-file", path], None)
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Configuration updated!\n"),
        "{}",
        out.stderr
    );
    let (_, config) = a.get_json("/v1/connect/ca/configuration").await;
    assert_eq!(config["Config"], json!({"LeafCertTTL": "24h"}));

    std::fs::write(
        &file,
        r#"{"Provider": "consul", "Config": {"LeafCertTTL": "1m"}}"#,
    )
    .unwrap();
    let out = a
        .cli(&["connect", "ca", "set-config", "-config-file", path], None)
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error setting CA configuration: Unexpected response code: 400 (error configuring provider: leaf cert TTL must be greater or equal than 1h0m0s)\n"
    );
    let out = a.cli(&["connect", "ca", "set-config"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "The -config-file flag is required\n")
    );
}

#[tokio::test]
async fn concurrent_first_requests_for_a_leaf_get_one_certificate() {
    let a = connect_agent().await;
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let url = a.url("/v1/agent/connect/ca/leaf/api");
            let http = a.http.clone();
            tokio::spawn(async move {
                let resp = http.get(url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut serials = std::collections::BTreeSet::new();
    for request in requests {
        let leaf = request.await.unwrap();
        serials.insert((
            leaf["SerialNumber"].to_string(),
            leaf["ModifyIndex"].to_string(),
        ));
    }
    assert_eq!(serials.len(), 1, "one certificate issued: {serials:?}");
    assert_eq!(
        leaf(&a, "api").await["SerialNumber"].to_string(),
        serials.first().unwrap().0
    );
}

#[tokio::test]
async fn force_without_cross_signing_rotates_with_no_cross_signed_certificate() {
    let a = connect_agent().await;
    let old_root = active_root(&roots(&a).await).clone();
    let old_leaf = leaf(&a, "web").await;
    let config = json!({
        "Provider": "consul",
        "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384},
        "ForceWithoutCrossSigning": true,
    });
    assert_eq!(put_config(&a, config).await, (200, String::new()));
    let roots = roots(&a).await;
    let new_root = active_root(&roots);
    assert_ne!(new_root["ID"], old_root["ID"]);
    assert_eq!(new_root["IntermediateCerts"], Value::Null);
    assert_eq!(roots["Roots"].as_array().unwrap().len(), 2);
    let (_, stored) = a.get_json("/v1/connect/ca/configuration").await;
    assert_eq!(stored["ForceWithoutCrossSigning"], true);
    // The new leaf carries no cross-signed certificate: only the new root verifies it.
    let new_leaf = leaf(&a, "web").await;
    assert_ne!(new_leaf["SerialNumber"], old_leaf["SerialNumber"]);
    let pem = new_leaf["CertPEM"].as_str().unwrap();
    assert_eq!(chain(pem).len(), 1);
    openssl_verify(new_root["RootCert"].as_str().unwrap(), None, pem);
}

#[tokio::test]
async fn rotated_out_roots_are_pruned_after_two_leaf_lifetimes() {
    let a = connect_agent().await;
    let config = json!({"Provider": "consul", "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384, "LeafCertTTL": "2h"}});
    assert_eq!(put_config(&a, config).await, (200, String::new()));
    let before = roots(&a).await;
    assert_eq!(before["Roots"].as_array().unwrap().len(), 2);
    let prune = |now_ms| legate::agent::connect_ca::prune_roots(a.store(), now_ms);
    let now = legate::clock::now_ms();
    // Within two leaf lifetimes (2 × 2h) of the rotation nothing goes, and nothing is written.
    assert_eq!(prune(now + 4 * 3600 * 1000 - 60_000).await.unwrap(), 0);
    assert_eq!(roots(&a).await, before);
    assert_eq!(prune(now + 4 * 3600 * 1000 + 60_000).await.unwrap(), 1);
    let after = roots(&a).await;
    let listed = after["Roots"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["ID"], before["ActiveRootID"]);
    assert_eq!(listed[0]["Active"], true);
}

#[tokio::test]
async fn a_blocking_leaf_query_returns_a_new_certificate_at_the_renewal_point() {
    use legate::store::{connect_ca, Command, WatchSet};
    let a = connect_agent().await;
    let first = leaf(&a, "web").await;
    // The cached leaf, due for renewal two seconds from now (its real point is days away).
    let store = a.store();
    let mut cached = connect_ca::leaf(&store.read().unwrap(), &mut WatchSet::new(), "web")
        .unwrap()
        .unwrap();
    cached.renew_after = legate::clock::now_ms() / 1000 + 2;
    let serial = cached.serial_number.clone();
    let stored = store
        .apply(Command::ConnectCaLeafIssued {
            leaf: Box::new(cached),
            replaces: Some(serial),
        })
        .await
        .unwrap();
    assert!(stored.applied());
    let due = leaf(&a, "web").await;
    assert_eq!(due["SerialNumber"], first["SerialNumber"]);

    let started = std::time::Instant::now();
    let path = format!(
        "/v1/agent/connect/ca/leaf/web?index={}&wait=60s",
        due["ModifyIndex"]
    );
    let (index, renewed) = a.get_json(&path).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    assert_ne!(renewed["SerialNumber"], first["SerialNumber"]);
    assert!(index > due["ModifyIndex"].as_u64().unwrap());
}
