//! The ACL system: bootstrap (and its reset file), token, policy and role management with
//! Consul's validation texts, `acl:read`/`acl:write` on the management endpoints, token
//! expiry, persistence across restarts, and secrets kept out of the logs.

use crate::common::{agent, free_port, wait_ready, TestAgent};
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) const ROOT: &str = "6b8a2c3e-1111-4222-8333-944455556666";

/// An agent with ACLs on (default deny) and `ROOT` as the initial management token; the
/// config dir must outlive it.
pub(crate) async fn acl_agent(extra: Value) -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut acl = json!({
        "enabled": true,
        "default_policy": "deny",
        "tokens": {"initial_management": ROOT},
    });
    if let (Some(acl), Some(extra)) = (acl.as_object_mut(), extra.as_object()) {
        acl.extend(extra.clone());
    }
    let cfg = dir.path().join("acl.json");
    std::fs::write(&cfg, json!({ "acl": acl }).to_string()).unwrap();
    let a = TestAgent::start_with(move |f| f.config_file = vec![cfg]).await;
    (a, dir)
}

pub(crate) async fn call(
    a: &TestAgent,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = a.http.request(method, a.url(path));
    if !token.is_empty() {
        req = req.header("X-Consul-Token", token);
    }
    if let Some(body) = body {
        req = req.body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

pub(crate) async fn put(a: &TestAgent, path: &str, token: &str, body: Value) -> (u16, String) {
    call(a, reqwest::Method::PUT, path, token, Some(body)).await
}

pub(crate) async fn get(a: &TestAgent, path: &str, token: &str) -> (u16, String) {
    call(a, reqwest::Method::GET, path, token, None).await
}

/// A 200's JSON body.
pub(crate) fn ok(reply: (u16, String)) -> Value {
    assert_eq!(reply.0, 200, "{}", reply.1);
    serde_json::from_str(&reply.1).unwrap()
}

#[tokio::test]
async fn acl_endpoints_answer_401_when_acls_are_disabled() {
    let a = TestAgent::start().await;
    for path in ["/v1/acl/bootstrap", "/v1/acl/policy"] {
        let (status, body) = put(&a, path, "", json!({})).await;
        assert_eq!((status, body.as_str()), (401, "ACL support disabled"));
    }
}

#[tokio::test]
async fn bootstrap_once_then_only_with_the_reset_file() {
    let (a, _cfg) = acl_agent(json!({"tokens": {}})).await;
    let first = ok(put(&a, "/v1/acl/bootstrap", "", json!({})).await);
    let secret = first["SecretID"].as_str().unwrap().to_string();
    assert_eq!(first["Policies"][0]["Name"], "global-management");
    assert_eq!(first["Description"], "Bootstrap Token (Global Management)");

    let (status, body) = put(&a, "/v1/acl/bootstrap", "", json!({})).await;
    assert_eq!(status, 403, "{body}");
    let prefix = "Permission denied: ACL bootstrap no longer allowed (reset index: ";
    assert!(body.starts_with(prefix), "{body}");
    let reset: u64 = body[prefix.len()..].trim_end_matches(')').parse().unwrap();

    // A wrong index is refused and the file stays.
    let reset_file = a.data_dir.join("acl-bootstrap-reset");
    std::fs::write(&reset_file, (reset + 100).to_string()).unwrap();
    let (status, body) = put(&a, "/v1/acl/bootstrap", "", json!({})).await;
    assert_eq!(status, 500);
    assert!(body.starts_with("Invalid bootstrap reset index"), "{body}");

    std::fs::write(&reset_file, format!("{reset}\n")).unwrap();
    let second = ok(put(&a, "/v1/acl/bootstrap", "", json!({})).await);
    assert_ne!(second["SecretID"], first["SecretID"]);
    assert!(!reset_file.exists(), "the reset file is used once");
    // Both management tokens work.
    for token in [secret.as_str(), second["SecretID"].as_str().unwrap()] {
        ok(get(&a, "/v1/acl/tokens", token).await);
    }
}

#[tokio::test]
async fn builtin_records_exist_and_resist_changes() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let me = ok(get(&a, "/v1/acl/token/self", ROOT).await);
    assert_eq!(me["Description"], "Initial Management Token");
    // Without a token, or with an unknown one, there is no token to read: Consul's 404.
    for token in ["", "6ee7ac04-8bf8-4a86-9f4c-9b8a5b6b7a1d"] {
        let (status, body) = get(&a, "/v1/acl/token/self", token).await;
        assert_eq!(
            (status, body.as_str()),
            (404, "Supplied token does not exist")
        );
    }
    let (status, _) = call(&a, reqwest::Method::PUT, "/v1/acl/token/self", ROOT, None).await;
    assert_eq!(status, 405, "Consul registers token/self for GET only");
    let anonymous = ok(get(
        &a,
        "/v1/acl/token/00000000-0000-0000-0000-000000000002",
        ROOT,
    )
    .await);
    assert_eq!(anonymous["SecretID"], "anonymous");
    let (status, body) = call(
        &a,
        reqwest::Method::DELETE,
        "/v1/acl/token/00000000-0000-0000-0000-000000000002",
        ROOT,
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Delete operation not permitted on the anonymous token")
    );
    let gm = "/v1/acl/policy/00000000-0000-0000-0000-000000000001";
    let (status, body) = call(&a, reqwest::Method::DELETE, gm, ROOT, None).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "Delete operation not permitted on the builtin global-management policy"
        )
    );
    let (status, body) = put(
        &a,
        gm,
        ROOT,
        json!({"Name": "global-management", "Rules": ""}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "Changing the Rules for the builtin global-management policy is not permitted"
        )
    );
    // Deleting one's own token is refused.
    let (status, body) = call(
        &a,
        reqwest::Method::DELETE,
        &format!("/v1/acl/token/{}", me["AccessorID"].as_str().unwrap()),
        ROOT,
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            "Deletion of the request's authorization token is not permitted"
        )
    );
}

#[tokio::test]
async fn policies_roles_and_tokens_round_trip_with_consuls_checks() {
    let (a, _cfg) = acl_agent(json!({})).await;
    // Policies.
    let rules = r#"key_prefix "app/" { policy = "write" }"#;
    let p = ok(put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "app", "Rules": rules}),
    )
    .await);
    let pid = p["ID"].as_str().unwrap().to_string();
    let (status, body) = put(&a, "/v1/acl/policy", ROOT, json!({"Name": "app"})).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            r#"Invalid Policy: A Policy with Name "app" already exists"#
        )
    );
    let (status, body) = put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"ID": "6b8a2c3e-0000-4222-8333-944455556666", "Name": "with-id"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Cannot specify the ID when creating a new policy")
    );
    let (status, body) = put(&a, "/v1/acl/policy", ROOT, json!({"Name": 7})).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Policy decoding failed: "), "{body}");
    let (status, body) = put(&a, "/v1/acl/policy", ROOT, json!({"Name": "bad name!"})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
    );
    let (status, body) = put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "broken", "Rules": r#"key "x" { policy = "nope" }"#}),
    )
    .await;
    assert_eq!(status, 500);
    assert!(body.starts_with("Invalid key policy"), "{body}");
    assert_eq!(
        ok(get(&a, "/v1/acl/policy/name/app", ROOT).await)["ID"],
        pid
    );
    let updated = ok(put(
        &a,
        &format!("/v1/acl/policy/{pid}"),
        ROOT,
        json!({"Name": "app2", "Rules": rules, "Description": "renamed"}),
    )
    .await);
    assert_eq!(updated["CreateIndex"], p["CreateIndex"]);
    assert_ne!(updated["Hash"], p["Hash"]);
    let list = ok(get(&a, "/v1/acl/policies", ROOT).await);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"app2") && names.contains(&"global-management"));
    assert!(list[0].get("Rules").is_none(), "stubs carry no rules");

    // Roles link policies by name; links come back by ID and current name.
    let role = ok(put(
        &a,
        "/v1/acl/role",
        ROOT,
        json!({"Name": "web", "Policies": [{"Name": "app2"}], "ServiceIdentities": [{"ServiceName": "web"}]}),
    )
    .await);
    assert_eq!(role["Policies"], json!([{"ID": pid, "Name": "app2"}]));
    let (status, body) = put(&a, "/v1/acl/role", ROOT, json!({"Name": "web"})).await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            r#"Invalid Role: A Role with Name "web" already exists"#
        )
    );
    let rid = role["ID"].as_str().unwrap().to_string();
    assert_eq!(ok(get(&a, "/v1/acl/role/name/web", ROOT).await)["ID"], rid);
    let (status, body) = put(
        &a,
        &format!("/v1/acl/role/{rid}"),
        ROOT,
        json!({"ID": "6b8a2c3e-0000-4222-8333-944455556666", "Name": "web"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Role ID in URL and payload do not match")
    );
    let (status, body) = get(&a, "/v1/acl/role/name/nope", ROOT).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Requested role does not exist: ACL not found")
    );

    // Tokens.
    let (status, body) = put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"Policies": [{"Name": "missing"}]}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"No such ACL policy with name "missing""#)
    );
    let (status, body) = put(&a, "/v1/acl/token", ROOT, json!({"AccessorID": "nope"})).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Invalid Token: AccessorID - not a valid UUID")
    );
    let (status, body) = put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"SecretID": "00000000-0000-0000-0000-000000000077"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            500,
            r#"Invalid Token: SecretID - UUIDs with the prefix "00000000-0000-0000-0000-0000000000" are reserved"#
        )
    );
    let t = ok(put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"Description": "app token", "Policies": [{"ID": pid}, {"Name": "app2"}], "Roles": [{"Name": "web"}]}),
    )
    .await);
    assert_eq!(
        t["Policies"],
        json!([{"ID": pid, "Name": "app2"}]),
        "deduplicated"
    );
    assert_eq!(t["Roles"], json!([{"ID": rid, "Name": "web"}]));
    let accessor = t["AccessorID"].as_str().unwrap().to_string();
    let (status, body) = put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"SecretID": t["SecretID"]}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Invalid Token: SecretID is already in use")
    );
    let by_policy = ok(get(&a, &format!("/v1/acl/tokens?policy={pid}"), ROOT).await);
    assert_eq!(by_policy.as_array().unwrap().len(), 1);
    assert_eq!(by_policy[0]["AccessorID"], accessor.as_str());
    let by_role = ok(get(&a, &format!("/v1/acl/tokens?role={rid}"), ROOT).await);
    assert_eq!(by_role.as_array().unwrap().len(), 1);

    let path = format!("/v1/acl/token/{accessor}");
    let (status, body) = put(
        &a,
        &path,
        ROOT,
        json!({"SecretID": "6b8a2c3e-0000-4222-8333-944455556666"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Changing a token's SecretID is not permitted")
    );
    let (status, body) = put(
        &a,
        &path,
        ROOT,
        json!({"AccessorID": "6b8a2c3e-0000-4222-8333-944455556666"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Token Accessor ID in URL and payload do not match")
    );
    let (status, body) = put(&a, &path, ROOT, json!({"AuthMethod": "nomad"})).await;
    assert_eq!(
        (status, body),
        (500, format!("Cannot change AuthMethod of {accessor}"))
    );
    let changed = ok(put(&a, &path, ROOT, json!({"Description": "changed"})).await);
    assert_eq!(
        changed["SecretID"], t["SecretID"],
        "an update keeps the secret"
    );
    assert_eq!(changed["CreateTime"], t["CreateTime"]);
    assert!(changed.get("Policies").is_none());

    let (status, body) = put(
        &a,
        "/v1/acl/token/6b8a2c3e-0000-4222-8333-000000000000/clone",
        ROOT,
        json!({}),
    )
    .await;
    assert_eq!((status, body.as_str()), (403, "ACL not found"));
    let clone = ok(put(&a, &format!("{path}/clone"), ROOT, json!({})).await);
    assert_ne!(clone["AccessorID"], t["AccessorID"]);
    assert_eq!(clone["Description"], "changed");

    // Deleting a policy unlinks it.
    let (status, body) = call(
        &a,
        reqwest::Method::DELETE,
        &format!("/v1/acl/policy/{pid}"),
        ROOT,
        None,
    )
    .await;
    assert_eq!((status, body.trim()), (200, "true"));
    let (status, body) = get(&a, &format!("/v1/acl/policy/{pid}"), ROOT).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Requested policy does not exist: ACL not found")
    );
    let role_after = ok(get(&a, &format!("/v1/acl/role/{rid}"), ROOT).await);
    assert!(role_after.get("Policies").is_none(), "{role_after}");

    let (status, body) = call(&a, reqwest::Method::DELETE, &path, ROOT, None).await;
    assert_eq!((status, body.trim()), (200, "true"));
    let (status, body) = get(&a, &path, ROOT).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Requested token does not exist: ACL not found")
    );
}

#[tokio::test]
async fn management_endpoints_need_acl_read_or_write() {
    let (a, _cfg) = acl_agent(json!({})).await;
    ok(put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "reader", "Rules": r#"acl = "read""#}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "kv", "Rules": r#"key_prefix "" { policy = "read" }"#}),
    )
    .await);
    let reader = ok(put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"Policies": [{"Name": "reader"}]}),
    )
    .await);
    let limited = ok(put(
        &a,
        "/v1/acl/token",
        ROOT,
        json!({"Policies": [{"Name": "kv"}]}),
    )
    .await);
    let limited_secret = limited["SecretID"].as_str().unwrap();
    let limited_accessor = limited["AccessorID"].as_str().unwrap();

    let (status, body) = put(&a, "/v1/acl/policy", limited_secret, json!({"Name": "x"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        format!("Permission denied: token with AccessorID '{limited_accessor}' lacks permission 'acl:write'")
    );
    let (status, body) = get(&a, "/v1/acl/tokens", limited_secret).await;
    assert_eq!(status, 403);
    assert!(body.ends_with("lacks permission 'acl:read'"), "{body}");
    // No token at all is the anonymous token, which the default policy denies.
    let (status, body) = get(&a, "/v1/acl/policies", "").await;
    assert_eq!(status, 403);
    assert!(
        body.contains("'00000000-0000-0000-0000-000000000002'"),
        "{body}"
    );
    let (status, body) = get(
        &a,
        "/v1/acl/policies",
        "9b1e7f2a-0000-4000-8000-000000000000",
    )
    .await;
    assert_eq!((status, body.as_str()), (403, "ACL not found"));

    // acl:read lists, with secrets hidden.
    let reader_secret = reader["SecretID"].as_str().unwrap();
    let tokens = ok(get(&a, "/v1/acl/tokens", reader_secret).await);
    assert!(tokens
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["SecretID"] == "<hidden>"));
    let (status, _) = put(&a, "/v1/acl/role", reader_secret, json!({"Name": "r"})).await;
    assert_eq!(status, 403);

    // Any valid token reads itself, secret included.
    let me = ok(get(&a, "/v1/acl/token/self", limited_secret).await);
    assert_eq!(me["SecretID"], limited_secret);
    // A changed policy takes effect at once: the resolver's cache follows the tables.
    let kv = ok(get(&a, "/v1/acl/policy/name/kv", ROOT).await);
    ok(put(
        &a,
        &format!("/v1/acl/policy/{}", kv["ID"].as_str().unwrap()),
        ROOT,
        json!({"Name": "kv", "Rules": r#"acl = "write""#}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/policy",
        limited_secret,
        json!({"Name": "now-allowed"}),
    )
    .await);
}

#[tokio::test]
async fn expired_tokens_stop_working() {
    use legate::store::{acl::TokenWrite, Command};
    use legate::types::acl::AclToken;
    let (a, _cfg) = acl_agent(json!({})).await;
    // The API refuses lifetimes under a minute; the store takes any expiry.
    let (status, body) = put(&a, "/v1/acl/token", ROOT, json!({"ExpirationTTL": "5s"})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "ExpirationTime cannot be less than 1m0s in the future (was 5s)"
    );
    let now = legate::clock::now_ms();
    let secret = "1d0c3f6e-2222-4333-8444-955566667777";
    let token = AclToken {
        accessor_id: "1d0c3f6e-3333-4333-8444-955566667777".into(),
        secret_id: secret.into(),
        create_ms: now,
        expiration_ms: Some(now + 1_000),
        ..Default::default()
    };
    a.store()
        .apply(Command::AclTokenSet {
            token: Box::new(token),
            mode: TokenWrite::Create,
        })
        .await
        .unwrap();
    let me = ok(get(&a, "/v1/acl/token/self", secret).await);
    assert!(me["ExpirationTime"].is_string());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // As Consul's read by secret: an expired token is not found (other routes: 403).
    let (status, body) = get(&a, "/v1/acl/token/self", secret).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Supplied token does not exist")
    );
    let (status, body) = get(&a, "/v1/kv/x", secret).await;
    assert_eq!((status, body.as_str()), (403, "ACL not found"));
    let tokens = ok(get(&a, "/v1/acl/tokens", ROOT).await);
    assert!(!tokens.to_string().contains(secret));
    let reaped = a.store().apply(Command::AclTokenReap).await.unwrap();
    assert!(matches!(reaped, legate::store::Outcome::Reaped(1)));
}

#[tokio::test]
async fn acl_records_and_persisted_agent_tokens_survive_a_restart() {
    let (a, _cfg) = acl_agent(json!({"enable_token_persistence": true})).await;
    let t = ok(put(&a, "/v1/acl/token", ROOT, json!({"Description": "kept"})).await);
    let secret = t["SecretID"].as_str().unwrap().to_string();
    // The agent's default token answers for requests without one.
    let (status, _) = put(&a, "/v1/agent/token/default", ROOT, json!({"Token": ROOT})).await;
    assert_eq!(status, 200);
    let file = a.data_dir.join("acl-tokens.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let a = a.restart().await;
    assert_eq!(
        ok(get(&a, "/v1/acl/token/self", &secret).await)["Description"],
        "kept"
    );
    let me = ok(get(&a, "/v1/acl/token/self", "").await);
    assert_eq!(me["Description"], "Initial Management Token");
    // The initial management token was not created twice.
    let tokens = ok(get(&a, "/v1/acl/tokens", ROOT).await);
    assert_eq!(tokens.as_array().unwrap().len(), 3, "{tokens}");
}

#[tokio::test]
async fn templated_policies_are_listed_and_previewed() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let all = ok(get(&a, "/v1/acl/templated-policies", ROOT).await);
    assert!(all.get("builtin/service").is_some());
    let one = ok(get(&a, "/v1/acl/templated-policy/name/builtin/node", ROOT).await);
    assert_eq!(one["TemplateName"], "builtin/node");
    let preview = ok(call(
        &a,
        reqwest::Method::POST,
        "/v1/acl/templated-policy/preview/builtin/service",
        ROOT,
        Some(json!({"Name": "api"})),
    )
    .await);
    assert!(preview["Rules"]
        .as_str()
        .unwrap()
        .contains("service \"api\""));
    let replication = ok(get(&a, "/v1/acl/replication", "").await);
    assert_eq!(replication["Enabled"], false);
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acl.json");
    std::fs::write(
        &cfg,
        json!({"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": ROOT, "agent": ROOT}}}).to_string(),
    )
    .unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let mut child = agent(&[
        "-data-dir",
        data.to_str().unwrap(),
        "-http-port",
        &port.to_string(),
        "-config-file",
        cfg.to_str().unwrap(),
        "-log-level",
        "trace",
    ]);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .put(format!("{base}/v1/acl/token"))
        .header("X-Consul-Token", ROOT)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["SecretID"].as_str().unwrap().to_string();
    for path in ["/v1/acl/token/self", "/v1/acl/tokens"] {
        client
            .get(format!("{base}{path}?token={secret}"))
            .send()
            .await
            .unwrap();
    }
    client
        .put(format!("{base}/v1/agent/token/default"))
        .header("X-Consul-Token", ROOT)
        .body(json!({"Token": secret}).to_string())
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!logs.is_empty());
    assert!(!logs.contains(ROOT), "initial management secret logged");
    assert!(!logs.contains(&secret), "token secret logged");
}

#[tokio::test]
async fn cli_bootstraps_and_manages_tokens_and_policies() {
    let (a, _cfg) = acl_agent(json!({"tokens": {}})).await;
    let boot = a.cli(&["acl", "bootstrap", "-format=json"], None).await;
    assert_eq!(boot.code, 0, "{}", boot.stderr);
    let root: Value = serde_json::from_str(&boot.stdout).unwrap();
    let root = root["SecretID"].as_str().unwrap().to_string();
    let again = a.cli(&["acl", "bootstrap"], None).await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.starts_with("Failed ACL bootstrapping: Unexpected response code: 403 (Permission denied: ACL bootstrap no longer allowed"),
        "{}",
        again.stderr
    );

    let t = ["-token", root.as_str()];
    let created = a
        .cli(
            &[
                &["acl", "policy", "create", "-name", "kv", "-rules", "-"][..],
                &t,
            ]
            .concat(),
            Some(r#"key_prefix "" { policy = "read" }"#),
        )
        .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(
        created.stdout.contains("Name:         kv"),
        "{}",
        created.stdout
    );
    let read = a
        .cli(
            &[&["acl", "policy", "read", "-name", "kv"][..], &t].concat(),
            None,
        )
        .await;
    assert!(
        read.stdout.contains("Rules:\nkey_prefix"),
        "{}",
        read.stdout
    );

    let token = a
        .cli(
            &[
                &[
                    "acl",
                    "token",
                    "create",
                    "-description",
                    "cli",
                    "-policy-name",
                    "kv",
                    "-format=json",
                ][..],
                &t,
            ]
            .concat(),
            None,
        )
        .await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    let token: Value = serde_json::from_str(&token.stdout).unwrap();
    let accessor = token["AccessorID"].as_str().unwrap();
    let shown = a
        .cli(
            &[&["acl", "token", "read", "-id", accessor][..], &t].concat(),
            None,
        )
        .await;
    assert!(
        shown.stdout.contains("Description:      cli"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("Policies:\n   "), "{}", shown.stdout);
    let updated = a
        .cli(
            &[
                &[
                    "acl",
                    "token",
                    "update",
                    "-id",
                    accessor,
                    "-description",
                    "renamed",
                ][..],
                &t,
            ]
            .concat(),
            None,
        )
        .await;
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    assert!(
        updated.stdout.contains("- kv"),
        "policies kept: {}",
        updated.stdout
    );
    let list = a
        .cli(&[&["acl", "token", "list"][..], &t].concat(), None)
        .await;
    assert!(list.stdout.contains("renamed"), "{}", list.stdout);
    let deleted = a
        .cli(
            &[&["acl", "token", "delete", "-id", accessor][..], &t].concat(),
            None,
        )
        .await;
    assert_eq!(
        deleted.stdout.trim(),
        format!("Token {accessor:?} deleted successfully")
    );
    let gone = a
        .cli(
            &[&["acl", "policy", "delete", "-name", "kv"][..], &t].concat(),
            None,
        )
        .await;
    assert_eq!(gone.code, 0, "{}", gone.stderr);
    let denied = a.cli(&["acl", "policy", "list"], None).await;
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("403"), "{}", denied.stderr);
}

#[tokio::test]
async fn the_legacy_api_works_on_the_same_tokens() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let rules = r#"key_prefix "legacy/" { policy = "write" }"#;
    let created = ok(put(
        &a,
        "/v1/acl/create",
        ROOT,
        json!({"Name": "old client", "Type": "client", "Rules": rules}),
    )
    .await);
    let id = created["ID"].as_str().unwrap().to_string();
    let info = ok(get(&a, &format!("/v1/acl/info/{id}"), ROOT).await);
    assert_eq!(info[0]["Name"], "old client");
    assert_eq!(info[0]["Rules"], rules);
    // The new API sees it, marked legacy.
    let me = ok(get(&a, "/v1/acl/token/self", &id).await);
    assert_eq!(me["Type"], "client");
    let tokens = ok(get(&a, "/v1/acl/tokens", ROOT).await);
    assert!(tokens
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Legacy"] == true && t["Description"] == "old client"));
    ok(put(
        &a,
        "/v1/acl/update",
        ROOT,
        json!({"ID": id, "Name": "renamed", "Type": "client"}),
    )
    .await);
    let list = ok(get(&a, "/v1/acl/list", ROOT).await);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["Name"] == "renamed"));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["ID"] == ROOT && t["Type"] == "management"));
    let (status, body) = put(&a, "/v1/acl/update", ROOT, json!({"Name": "x"})).await;
    assert_eq!((status, body.as_str()), (400, "ACL ID must be set"));
    let clone = ok(put(&a, &format!("/v1/acl/clone/{id}"), ROOT, json!({})).await);
    assert_ne!(clone["ID"], id.as_str());
    assert_eq!(
        ok(put(&a, &format!("/v1/acl/destroy/{id}"), ROOT, json!({})).await),
        true
    );
    assert_eq!(
        ok(get(&a, &format!("/v1/acl/info/{id}"), ROOT).await),
        json!([])
    );
}
