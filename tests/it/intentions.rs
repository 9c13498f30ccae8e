//! Intentions: `/v1/connect/intentions` (exact, check, match, legacy IDs) over the
//! `service-intentions` config entries they live in, and `/v1/agent/connect/authorize`.

use crate::common::TestAgent;
use serde_json::{json, Value};
use std::time::Duration;

const WEB_URI: &str =
    "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web";

async fn post(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(a.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn put_exact(a: &TestAgent, source: &str, destination: &str, body: Value) -> (u16, String) {
    let resp = a
        .put_json(
            &format!("/v1/connect/intentions/exact?source={source}&destination={destination}"),
            body,
        )
        .await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn authorize(a: &TestAgent, target: &str, uri: &str) -> (u16, Value) {
    let (status, text) = post(
        a,
        "/v1/agent/connect/authorize",
        json!({"Target": target, "ClientCertURI": uri, "ClientCertSerial": "01:02"}),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn exact_crud_agrees_with_the_config_entry() {
    let a = TestAgent::start().await;
    let (status, body) = put_exact(
        &a,
        "web",
        "db",
        json!({"Action": "allow", "Description": "web reads", "Meta": {"team": "a"}}),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "true"));

    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(got["SourceName"], "web");
    assert_eq!(got["DestinationName"], "db");
    assert_eq!(got["SourceNS"], "default");
    assert_eq!(got["Action"], "allow");
    assert_eq!(got["Description"], "web reads");
    assert_eq!(got["Meta"], json!({"team": "a"}));
    assert_eq!(got["Precedence"], 9);
    assert_eq!(got["ID"], "");

    let (_, entry) = a.get_json("/v1/config/service-intentions/db").await;
    assert_eq!(entry["Sources"][0]["Name"], "web");
    assert_eq!(entry["Sources"][0]["Action"], "allow");
    assert_eq!(entry["Sources"][0]["Type"], "consul");
    assert_eq!(entry["Meta"], json!({"team": "a"}));
    assert_eq!(entry["ModifyIndex"], got["ModifyIndex"]);

    // A write through /v1/config shows through the intention API.
    let written = a
        .put_json(
            "/v1/config",
            json!({"Kind": "service-intentions", "Name": "db",
                   "Sources": [{"Name": "web", "Action": "deny"}, {"Name": "*", "Action": "allow"}]}),
        )
        .await;
    assert_eq!(written.status(), 200);
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(got["Action"], "deny");

    let deleted = a
        .delete("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(deleted.status(), 200);
    let missing = a
        .get("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "Intention not found");
    // The entry keeps its other source; deleting the last one removes the entry.
    let (_, entry) = a.get_json("/v1/config/service-intentions/db").await;
    assert_eq!(entry["Sources"].as_array().unwrap().len(), 1);
    a.delete("/v1/connect/intentions/exact?source=*&destination=db")
        .await;
    assert_eq!(
        a.get("/v1/config/service-intentions/db").await.status(),
        404
    );
}

#[tokio::test]
async fn list_is_in_precedence_order_and_filters_and_match_and_check_follow_it() {
    let a = TestAgent::start().await;
    for (src, dst, action) in [
        ("*", "*", "deny"),
        ("web", "*", "allow"),
        ("*", "db", "deny"),
        ("web", "db", "allow"),
        ("api", "cache", "allow"),
    ] {
        assert_eq!(
            put_exact(&a, src, dst, json!({"Action": action})).await.0,
            200
        );
    }
    let (_, list) = a.get_json("/v1/connect/intentions").await;
    let order: Vec<(String, String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["SourceName"].as_str().unwrap().into(),
                i["DestinationName"].as_str().unwrap().into(),
                i["Precedence"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("api".into(), "cache".into(), 9),
            ("web".into(), "db".into(), 9),
            ("*".into(), "db".into(), 8),
            ("web".into(), "*".into(), 6),
            ("*".into(), "*".into(), 5),
        ]
    );
    let (_, filtered) = a
        .get_json("/v1/connect/intentions?filter=Action%20%3D%3D%20%22deny%22")
        .await;
    assert_eq!(filtered.as_array().unwrap().len(), 2);

    let (_, matched) = a
        .get_json("/v1/connect/intentions/match?by=destination&name=db&name=other")
        .await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}>{}",
                    i["SourceName"].as_str().unwrap(),
                    i["DestinationName"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(names(&matched["db"]), ["web>db", "*>db", "web>*", "*>*"]);
    assert_eq!(names(&matched["other"]), ["web>*", "*>*"]);
    let (_, by_source) = a
        .get_json("/v1/connect/intentions/match?by=source&name=api")
        .await;
    assert_eq!(names(&by_source["api"]), ["api>cache", "*>db", "*>*"]);
    let bad = a.get("/v1/connect/intentions/match?by=nope&name=x").await;
    assert_eq!(bad.status(), 400);
    let missing = a.get("/v1/connect/intentions/match?by=source").await;
    assert_eq!(
        missing.text().await.unwrap(),
        "required query parameter 'name' not set"
    );

    for (src, dst, allowed) in [
        ("web", "db", true),
        ("api", "db", false),
        ("web", "x", true),
        ("api", "x", false),
    ] {
        let (_, check) = a
            .get_json(&format!(
                "/v1/connect/intentions/check?source={src}&destination={dst}"
            ))
            .await;
        assert_eq!(check, json!({"Allowed": allowed}), "{src} -> {dst}");
    }
}

#[tokio::test]
async fn validation_errors_are_consuls() {
    let a = TestAgent::start().await;
    let (status, body) = put_exact(&a, "web", "db", json!({"Action": "maybe"})).await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Sources[0].Action must be set to 'allow' or 'deny'")
    );
    let (_, body) = put_exact(&a, "we*", "db", json!({"Action": "allow"})).await;
    assert_eq!(
        body,
        "Sources[0].Name: wildcard character '*' cannot be used with partial values"
    );
    let (_, body) = put_exact(
        &a,
        "web",
        "*",
        json!({"Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}),
    )
    .await;
    assert_eq!(
        body,
        "Sources[0].Permissions cannot be specified on intentions with wildcarded destinations"
    );
    let resp = a
        .put_json(
            "/v1/config",
            json!({"Kind": "service-intentions", "Name": "db",
                   "Sources": [{"Name": "web", "Action": "allow"}, {"Name": "web", "Action": "deny"}]}),
        )
        .await;
    assert_eq!(
        resp.text().await.unwrap(),
        "Sources[1] defines \"default/web\" more than once"
    );
    let (status, _) = post(
        &a,
        "/v1/connect/intentions",
        json!({"SourceName": "web", "DestinationName": "db", "Action": "allow"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &a,
        "/v1/connect/intentions",
        json!({"SourceName": "web", "DestinationName": "db", "Action": "deny"}),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("duplicate intention found: default/web => default/db (ID: "),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_are_decoded_as_consuls_handlers_decode_them() {
    let a = TestAgent::start().await;
    let (status, body) = put_exact(&a, "web", "db", json!({"Action": "allow", "Bogus": 1})).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Request decode failed: json: unknown field \"Bogus\"")
    );
    let (status, body) = put_exact(&a, "web", "db", json!({"Action": 1})).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Request decode failed: json: cannot unmarshal number into Go struct field Intention.Action of type structs.IntentionAction")
    );
    let (status, body) = put_exact(
        &a,
        "web",
        "db",
        json!({"Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/", "Header": [{"Name": "x", "Exact": true}]}}]}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Request decode failed: json: cannot unmarshal bool into Go struct field IntentionHTTPHeaderPermission.Permissions.HTTP.Header.Exact of type string")
    );
    let (status, body) = post(
        &a,
        "/v1/connect/intentions",
        json!({"SourceName": "web", "DestinationName": "db", "Action": "allow", "Meta": {"a": 1}}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (500, "Failed to decode request body: json: cannot unmarshal number into Go struct field Intention.Meta of type string")
    );
    let (status, body) = post(
        &a,
        "/v1/agent/connect/authorize",
        json!({"Target": "db", "ClientCertURI": WEB_URI, "Namespace": "x"}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Request decode failed: json: unknown field \"Namespace\""
        )
    );
    // Keys match case-insensitively, and read-only fields a GET returns are accepted.
    let (status, _) = put_exact(
        &a,
        "web",
        "db",
        json!({"action": "allow", "Precedence": 9, "CreateIndex": 3, "Hash": "AAE="}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(got["Action"], "allow");
    let (status, _) = authorize(&a, "db", WEB_URI).await;
    assert_eq!(status, 200);
    assert_eq!(
        a.get_json("/v1/config/service-intentions/db").await.1["Sources"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn legacy_intentions_keep_their_id_meta_and_times_across_restart() {
    let a = TestAgent::start().await;
    let (status, body) = post(
        &a,
        "/v1/connect/intentions",
        json!({"SourceName": "web", "DestinationName": "db", "Action": "allow", "Meta": {"k": "v"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, got) = a.get_json(&format!("/v1/connect/intentions/{id}")).await;
    assert_eq!(got["ID"], id.as_str());
    assert_eq!(got["Meta"], json!({"k": "v"}));
    let created = got["CreatedAt"].as_str().unwrap().to_string();
    assert!(created.starts_with("20"), "{created}");
    let (_, entry) = a.get_json("/v1/config/service-intentions/db").await;
    assert_eq!(entry["Sources"][0]["LegacyID"], id.as_str());

    // Update by ID: the creation time stays.
    let updated = a
        .put_json(
            &format!("/v1/connect/intentions/{id}"),
            json!({"SourceName": "web", "DestinationName": "db", "Action": "deny"}),
        )
        .await;
    assert_eq!(updated.status(), 200);

    let a = a.restart().await;
    let (_, got) = a.get_json(&format!("/v1/connect/intentions/{id}")).await;
    assert_eq!(got["Action"], "deny");
    assert_eq!(got["CreatedAt"], created.as_str());
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(got["ID"], id.as_str());

    let deleted = a.delete(&format!("/v1/connect/intentions/{id}")).await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        a.get(&format!("/v1/connect/intentions/{id}"))
            .await
            .status(),
        404
    );
    let gone = a.delete(&format!("/v1/connect/intentions/{id}")).await;
    assert_eq!(
        gone.text().await.unwrap(),
        format!("Cannot delete non-existent intention: '{id}'")
    );
}

#[tokio::test]
async fn authorize_allows_denies_and_falls_back() {
    let a = TestAgent::start().await;
    // No intention: the ACL default (ACLs off) allows.
    let (_, d) = authorize(&a, "db", WEB_URI).await;
    assert_eq!(
        d,
        json!({"Authorized": true, "Reason": "Default behavior configured by ACLs"})
    );
    put_exact(&a, "web", "db", json!({"Action": "deny"})).await;
    let (_, d) = authorize(&a, "db", WEB_URI).await;
    assert_eq!(
        d,
        json!({"Authorized": false, "Reason": "Matched L4 intention: default/web => default/db (Precedence: 9, Action: DENY)"})
    );
    put_exact(&a, "*", "cache", json!({"Action": "allow"})).await;
    let (_, d) = authorize(&a, "cache", WEB_URI).await;
    assert_eq!(d["Authorized"], true);
    assert_eq!(
        d["Reason"],
        "Matched L4 intention: default/* => default/cache (Precedence: 8, Action: ALLOW)"
    );
    // L7 intentions deny here.
    put_exact(
        &a,
        "web",
        "api",
        json!({"Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/v1"}}]}),
    )
    .await;
    let (_, d) = authorize(&a, "api", WEB_URI).await;
    assert_eq!(
        d,
        json!({"Authorized": false, "Reason": "Matched L7 intention: default/web => default/api (Precedence: 9, Permissions: 1)"})
    );
    // Any trust domain is accepted; identities that are not services are refused.
    let (_, d) = authorize(&a, "db", "spiffe://other.consul/ns/default/dc/dc2/svc/web").await;
    assert_eq!(d["Authorized"], false);
    let (status, d) = authorize(&a, "db", "spiffe://x.consul/agent/client/dc/dc1/id/n1").await;
    assert_eq!(
        (status, d),
        (400, json!("ClientCertURI not a valid Service identifier"))
    );
    let (status, d) = authorize(&a, "db", "https://nope").await;
    assert_eq!(
        (status, d),
        (400, json!("ClientCertURI not a valid Connect identifier"))
    );
    let (status, d) = authorize(&a, "", WEB_URI).await;
    assert_eq!(
        (status, d),
        (400, json!("Target service must be specified"))
    );
}

#[tokio::test]
async fn a_blocking_list_wakes_on_a_change_through_either_api() {
    let a = TestAgent::start().await;
    put_exact(&a, "web", "db", json!({"Action": "allow"})).await;
    let (index, _) = a.get_json("/v1/connect/intentions").await;
    let waiting = a.watch(&format!("/v1/connect/intentions?index={index}&wait=10s"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    a.put_json(
        "/v1/config",
        json!({"Kind": "service-intentions", "Name": "api", "Sources": [{"Name": "web", "Action": "deny"}]}),
    )
    .await;
    let (new_index, body, took) = waiting.await.unwrap();
    assert!(new_index > index);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert!(took < Duration::from_secs(5));
}

#[tokio::test]
async fn default_intention_policy_decides_when_no_intention_matches() {
    for (policy, allowed) in [("deny", false), ("allow", true)] {
        // With ACLs on and allowing by default, the configured policy still wins.
        let mut hcl = vec![format!("default_intention_policy = \"{policy}\"")];
        if !allowed {
            hcl.push("acl {\n  enabled = true\n  default_policy = \"allow\"\n}".into());
        }
        let a = TestAgent::start_with(|f| f.hcl = hcl).await;
        let (status, d) = authorize(&a, "db", WEB_URI).await;
        assert_eq!(status, 200, "{policy}: {d}");
        assert_eq!(
            d,
            json!({"Authorized": allowed, "Reason": "Default intention policy"}),
            "{policy}"
        );
        // A matching intention overrides the default either way.
        let action = if allowed { "deny" } else { "allow" };
        put_exact(&a, "web", "db", json!({"Action": action})).await;
        let (_, d) = authorize(&a, "db", WEB_URI).await;
        assert_eq!(d["Authorized"], !allowed, "{policy}: {d}");
        // The check endpoint agrees for a pair no intention matches.
        let (_, check) = a
            .get_json("/v1/connect/intentions/check?source=web&destination=other")
            .await;
        assert_eq!(check, json!({"Allowed": allowed}), "{policy}");
    }
}

#[test]
fn an_unknown_default_intention_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flags = legate::config::AgentFlags {
        data_dir: Some(dir.path().to_path_buf()),
        hcl: vec!["default_intention_policy = \"maybe\"".into()],
        ..Default::default()
    };
    let err = legate::config::Config::load(&flags)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("default_intention_policy: \"maybe\" is neither \"allow\" nor \"deny\""),
        "{err}"
    );
}

// ----- the `legate intention` CLI -----

#[tokio::test]
async fn cli_create_get_replace_check_match_list_delete() {
    let a = TestAgent::start().await;
    let out = a.cli(&["intention", "list"], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (2, "", "There are no intentions.\n")
    );

    let out = a
        .cli(
            &[
                "intention",
                "create",
                "-meta",
                "team=a",
                "-meta=owner=b",
                "-description",
                "web reads",
                "web",
                "db",
            ],
            None,
        )
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Created: web => db (allow)\n"),
        "{}",
        out.stderr
    );
    let out = a.cli(&["intention", "get", "web", "db"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    let id = got["ID"].as_str().unwrap().to_string();
    assert!(!id.is_empty());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "Source:       web".to_string(),
            "Destination:  db".into(),
            "Action:       allow".into(),
            format!("ID:           {id}"),
            "Description:  web reads".into(),
            "Meta[owner]:  b".into(),
            "Meta[team]:   a".into(),
        ]
    );
    assert!(lines[7].starts_with("Created At:   "), "{}", out.stdout);
    assert!(lines[7].ends_with(" UTC"), "{}", out.stdout);
    let by_id = a.cli(&["intention", "get", &id], None).await;
    assert_eq!(by_id.stdout, out.stdout);

    // A second create conflicts; -replace replaces (silently, as consul does).
    let out = a
        .cli(&["intention", "create", "-deny", "web", "db"], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "Error creating intention \"web => db (deny)\": Unexpected response code: 500 (duplicate intention found: default/web => default/db"
        ),
        "{}",
        out.stderr
    );
    let out = a
        .cli(
            &["intention", "create", "-deny", "-replace", "web", "db"],
            None,
        )
        .await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    let (_, got) = a.get_json(&format!("/v1/connect/intentions/{id}")).await;
    assert_eq!(got["Action"], "deny");
    let out = a
        .cli(
            &["intention", "create", "-allow", "-deny", "web", "db"],
            None,
        )
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Only one of -allow or -deny may be specified.\n")
    );
    let out = a.cli(&["intention", "create", "web"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: Must specify two arguments: source and destination\n"
        )
    );

    // From a file, and from stdin.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ixn.json");
    std::fs::write(
        &file,
        r#"{"SourceName": "api", "DestinationName": "db", "Action": "allow"}"#,
    )
    .unwrap();
    let out = a
        .cli(
            &["intention", "create", "-file", file.to_str().unwrap(), "-"],
            Some(r#"{"SourceName": "*", "DestinationName": "cache", "Action": "deny"}"#),
        )
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Created: api => db (allow)\nCreated: * => cache (deny)\n"
        ),
        "{}",
        out.stderr
    );

    let out = a.cli(&["intention", "check", "web", "db"], None).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "Denied\n"));
    let out = a.cli(&["intention", "check", "api", "db"], None).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "Allowed\n"));
    let out = a.cli(&["intention", "check", "web", "cache"], None).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "Denied\n"));
    let out = a.cli(&["intention", "check", "web"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            2,
            "Error: command requires exactly two arguments: src and dst\n"
        )
    );

    let out = a.cli(&["intention", "match", "db"], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "api => db (allow)\nweb => db (deny)\n")
    );
    let out = a.cli(&["intention", "match", "-source", "web"], None).await;
    assert_eq!(out.stdout, "web => db (deny)\n* => cache (deny)\n");
    let out = a
        .cli(
            &["intention", "match", "-source", "-destination", "web"],
            None,
        )
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: only one of -source or -destination may be specified\n"
        )
    );

    let out = a.cli(&["intention", "list"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["ID", "Source", "Action", "Destination", "Precedence"]
    );
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines.contains(&vec![id.as_str(), "web", "deny", "db", "9"]));

    let out = a.cli(&["intention", "delete", "web", "db"], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Intention deleted.\n"),
        "{}",
        out.stderr
    );
    let out = a.cli(&["intention", "get", "web", "db"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Intention not found with source \"web\" and destination \"db\"\n"
        )
    );
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=api&destination=db")
        .await;
    let api_id = got["ID"].as_str().unwrap().to_string();
    let out = a.cli(&["intention", "delete", &api_id], None).await;
    assert_eq!(out.stdout, "Intention deleted.\n", "{}", out.stderr);
    let out = a.cli(&["intention", "get", &api_id], None).await;
    assert_eq!(
        (out.code, out.stderr),
        (1, format!("Intention not found with ID {api_id:?}\n"))
    );
}

#[tokio::test]
async fn cli_replaces_config_entry_intentions_in_place() {
    let a = TestAgent::start().await;
    put_exact(&a, "web", "db", json!({"Action": "allow"})).await;
    let out = a
        .cli(
            &["intention", "create", "-deny", "-replace", "web", "db"],
            None,
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, got) = a
        .get_json("/v1/connect/intentions/exact?source=web&destination=db")
        .await;
    assert_eq!(got["Action"], "deny");
    assert_eq!(got["ID"], "");
    let out = a.cli(&["intention", "get", "web", "db"], None).await;
    assert_eq!(
        out.stdout,
        "Source:       web\nDestination:  db\nAction:       deny\nCreated At:   Monday, 01-Jan-01 00:00:00 UTC\n"
    );
    // L7 intentions are for config entries.
    let out = a
        .cli(
            &["intention", "create", "-file", "-"],
            Some(r#"{"SourceName": "web", "DestinationName": "api", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/"}}]}"#),
        )
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error: cannot create L7 intention from file \"-\" using this CLI; use 'consul config write' instead\n")
    );
}

/// Regression: updating a legacy intention to the source of another one at the same
/// destination silently replaced that other intention.
#[tokio::test]
async fn a_legacy_update_cannot_take_another_intentions_source() {
    let a = TestAgent::start().await;
    let create =
        |source: &str| json!({"SourceName": source, "DestinationName": "db", "Action": "allow"});
    let (_, web) = post(&a, "/v1/connect/intentions", create("web")).await;
    let (_, api) = post(&a, "/v1/connect/intentions", create("api")).await;
    let api_id: Value = serde_json::from_str(&api).unwrap();
    let api_id = api_id["ID"].as_str().unwrap();
    let resp = a
        .put_json(&format!("/v1/connect/intentions/{api_id}"), create("web"))
        .await;
    assert_eq!(resp.status(), 500);
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with("duplicate intention found: default/web => default/db"));
    let (_, list) = a.get_json("/v1/connect/intentions").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{web} {list}");
    // Updating an intention in place (same source) still works.
    let resp = a
        .put_json(&format!("/v1/connect/intentions/{api_id}"), create("api"))
        .await;
    assert_eq!(resp.status(), 200);
}
