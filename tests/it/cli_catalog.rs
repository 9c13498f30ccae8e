//! The `legate catalog`, `legate services` and `legate maint` CLI against a running agent.

use crate::common::TestAgent;
use serde_json::json;

/// Runs `args`, asserting exit code 0, and returns stdout.
async fn ok(a: &TestAgent, args: &[&str]) -> String {
    let out = a.cli(args, None).await;
    assert_eq!(out.code, 0, "legate {args:?}: {}", out.stderr);
    out.stdout
}

async fn node_id(a: &TestAgent) -> String {
    let (_, me) = a.get_json("/v1/agent/self").await;
    me["Config"]["NodeID"].as_str().unwrap().to_string()
}

const NO_NODES: &str = "No nodes match the given query - try expanding your search.\n";
const NO_SERVICES: &str = "No services match the given query - try expanding your search.\n";

#[tokio::test]
async fn catalog_datacenters() {
    let a = TestAgent::start().await;
    assert_eq!(ok(&a, &["catalog", "datacenters"]).await, "dc1\n");
    let out = a.cli(&["catalog", "datacenters", "extra"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Too many arguments (expected 0, got 1)\n")
    );
}

#[tokio::test]
async fn catalog_nodes_table_and_narrowing() {
    let a = TestAgent::start().await;
    let id = node_id(&a).await;
    let short = id.split('-').next().unwrap();
    a.put_ok(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Port": 80}"#,
    )
    .await;

    let expected =
        format!("Node       ID        Address    DC\ntest-node  {short:<8}  127.0.0.1  dc1\n");
    assert_eq!(ok(&a, &["catalog", "nodes"]).await, expected);
    assert_eq!(
        ok(&a, &["catalog", "nodes", "-service", "web"]).await,
        expected
    );
    assert_eq!(
        ok(
            &a,
            &["catalog", "nodes", "-filter", "Node == \"test-node\""]
        )
        .await,
        expected
    );
    assert_eq!(
        ok(
            &a,
            &[
                "catalog",
                "nodes",
                "-near=_agent",
                "-node-meta",
                "consul-network-segment="
            ]
        )
        .await,
        expected
    );

    let detailed = ok(&a, &["catalog", "nodes", "-detailed"]).await;
    let lines: Vec<&str> = detailed.lines().collect();
    assert_eq!(lines.len(), 2, "{detailed}");
    assert!(
        lines[0].starts_with(
            "Node       ID                                    Address    DC   TaggedAddresses"
        ),
        "{detailed}"
    );
    assert!(lines[0].ends_with("  Meta"), "{detailed}");
    assert!(
        lines[1].starts_with(&format!("test-node  {id}  127.0.0.1  dc1  lan=127.0.0.1, ")),
        "{detailed}"
    );
    assert!(
        lines[1].contains("consul-network-segment=, consul-version="),
        "{detailed}"
    );

    for args in [
        &["catalog", "nodes", "-service", "nope"][..],
        &["catalog", "nodes", "-node-meta", "rack=r1"][..],
        &["catalog", "nodes", "-filter", "Node == \"other\""][..],
    ] {
        let out = a.cli(args, None).await;
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "", NO_NODES),
            "{args:?}"
        );
    }

    // The filter may come from stdin or a file.
    let out = a
        .cli(
            &["catalog", "nodes", "-filter", "-"],
            Some("Node == \"test-node\""),
        )
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, expected.as_str()),
        "{}",
        out.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("filter");
    std::fs::write(&file, "Node != \"test-node\"").unwrap();
    let arg = format!("@{}", file.display());
    let out = a.cli(&["catalog", "nodes", "-filter", &arg], None).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, NO_NODES));

    let out = a
        .cli(&["catalog", "nodes", "-filter", "Node =="], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error listing nodes: Unexpected response code: 400 ("),
        "{}",
        out.stderr
    );
    let out = a
        .cli(&["catalog", "nodes", "-node-meta", "novalue"], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("missing \"=\" value in argument: novalue"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn catalog_services_names_and_tags() {
    let a = TestAgent::start().await;
    // One service through HTTP, one through the CLI, a second instance of `web` with more tags.
    a.put_json(
        "/v1/agent/service/register",
        json!({"ID": "web-1", "Name": "web", "Tags": ["v1", "primary"], "Port": 80}),
    )
    .await;
    let out = ok(
        &a,
        &[
            "services",
            "register",
            "-name=redis",
            "-tag",
            "cache",
            "-port",
            "6379",
        ],
    )
    .await;
    assert_eq!(out, "Registered service: redis\n");
    a.put_json(
        "/v1/agent/service/register",
        json!({"ID": "web-2", "Name": "web", "Tags": ["v2"], "Port": 81}),
    )
    .await;

    assert_eq!(ok(&a, &["catalog", "services"]).await, "redis\nweb\n");
    assert_eq!(
        ok(&a, &["catalog", "services", "-tags"]).await,
        "redis      cache\nweb        primary,v1,v2\n"
    );
    assert_eq!(
        ok(&a, &["catalog", "services", "-node", "test-node", "-tags"]).await,
        "redis      cache\nweb        primary,v1,v2\n"
    );
    assert_eq!(
        ok(
            &a,
            &["catalog", "services", "-filter", "ServiceName == \"web\""]
        )
        .await,
        "web\n"
    );
    assert_eq!(
        ok(
            &a,
            &[
                "catalog",
                "services",
                "-node-meta",
                "consul-network-segment="
            ]
        )
        .await,
        "redis\nweb\n"
    );
    for args in [
        &["catalog", "services", "-node", "no-such-node"][..],
        &["catalog", "services", "-node-meta", "rack=r1"][..],
    ] {
        let out = a.cli(args, None).await;
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "", NO_SERVICES),
            "{args:?}"
        );
    }
    let out = a.cli(&["catalog", "services", "web"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Too many arguments (expected 0, got 1)\n")
    );
}

#[tokio::test]
async fn services_register_from_flags() {
    let a = TestAgent::start().await;
    let out = ok(
        &a,
        &[
            "services",
            "register",
            "-id=web-1",
            "-name=web",
            "-address=10.0.0.5",
            "-port=8080",
            "-tag=a",
            "-tag=b",
            "-meta",
            "version=1.2",
            "-meta=team=x",
            "-tagged-address",
            "lan=10.0.0.5:8080",
        ],
    )
    .await;
    assert_eq!(out, "Registered service: web\n");
    let (_, svc) = a.get_json("/v1/agent/service/web-1").await;
    assert_eq!(svc["Service"], "web");
    assert_eq!(svc["Address"], "10.0.0.5");
    assert_eq!(svc["Port"], 8080);
    assert_eq!(svc["Tags"], json!(["a", "b"]));
    assert_eq!(svc["Meta"], json!({"team": "x", "version": "1.2"}));
    assert_eq!(
        svc["TaggedAddresses"]["lan"],
        json!({"Address": "10.0.0.5", "Port": 8080})
    );

    // The ID defaults to the name.
    ok(&a, &["services", "register", "-name", "db"]).await;
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(services["db"]["Service"], "db");

    let out = a.cli(&["services", "register"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Service registration requires at least one argument or flags.\n"
        )
    );
    let out = a
        .cli(&["services", "register", "-name=x", "f.json"], None)
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Service registration requires arguments or -id, not both.\n"
        )
    );
    let out = a
        .cli(
            &[
                "services",
                "register",
                "-name=x",
                "-tagged-address",
                "lan=nope",
            ],
            None,
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("Invalid Tagged Address: "),
        "{}",
        out.stderr
    );
    // The agent's refusal is reported with the service's name.
    let out = a
        .cli(
            &["services", "register", "-name=bad", "-meta", "consul-x=1"],
            None,
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error registering service \"bad\": Unexpected response code: 400 ("),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn services_register_and_deregister_files() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("web.json");
    std::fs::write(
        &json_file,
        r#"{"service": {"id": "web-1", "name": "web", "port": 80, "tags": ["v1"],
             "check": {"ttl": "30s"}}}"#,
    )
    .unwrap();
    let hcl_file = dir.path().join("more.hcl");
    std::fs::write(
        &hcl_file,
        "services {\n  name = \"db\"\n  port = 5432\n  meta = { role = \"primary\" }\n}\n\
         services {\n  id = \"cache-1\"\n  name = \"cache\"\n  enable_tag_override = true\n}\n",
    )
    .unwrap();
    let (json_path, hcl_path) = (
        json_file.display().to_string(),
        hcl_file.display().to_string(),
    );

    let out = ok(&a, &["services", "register", &json_path, &hcl_path]).await;
    assert_eq!(
        out,
        "Registered service: web\nRegistered service: db\nRegistered service: cache\n"
    );
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(services["web-1"]["Tags"], json!(["v1"]));
    assert_eq!(services["db"]["Meta"], json!({"role": "primary"}));
    assert_eq!(services["cache-1"]["EnableTagOverride"], true);
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(checks["service:web-1"]["ServiceID"], "web-1");
    assert_eq!(ok(&a, &["catalog", "services"]).await, "cache\ndb\nweb\n");

    // Files name the services to deregister: by ID, else by name.
    let out = ok(&a, &["services", "deregister", &hcl_path]).await;
    assert_eq!(
        out,
        "Deregistered service: db\nDeregistered service: cache-1\n"
    );
    let out = ok(&a, &["services", "deregister", "-id", "web-1"]).await;
    assert_eq!(out, "Deregistered service: web-1\n");
    let out = a.cli(&["catalog", "services"], None).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, NO_SERVICES));

    let out = a.cli(&["services", "deregister", "-id=web-1"], None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error deregistering service \"web-1\": Unexpected response code: 404 ("),
        "{}",
        out.stderr
    );
    let out = a.cli(&["services", "deregister"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Service deregistration requires at least one argument or -id.\n"
        )
    );
    let out = a
        .cli(&["services", "deregister", "-id=x", &json_path], None)
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Service deregistration requires arguments or -id, not both.\n"
        )
    );

    // A definition the agent's decoder refuses is reported before anything is sent.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"service": {"name": "x", "bogus": 1}}"#).unwrap();
    let out = a
        .cli(&["services", "register", &bad.display().to_string()], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
    assert!(out.stderr.contains("bogus"), "{}", out.stderr);
    let missing = dir.path().join("missing.json");
    let out = a
        .cli(
            &["services", "register", &missing.display().to_string()],
            None,
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
}

#[tokio::test]
async fn maint_enable_list_disable() {
    let a = TestAgent::start().await;
    a.put_ok(
        "/v1/agent/service/register",
        r#"{"ID": "web-1", "Name": "web"}"#,
    )
    .await;
    assert_eq!(ok(&a, &["maint"]).await, "");

    assert_eq!(
        ok(&a, &["maint", "-enable", "-reason", "kernel upgrade"]).await,
        "Node maintenance is now enabled\n"
    );
    assert_eq!(
        ok(&a, &["maint", "-enable", "-service=web-1"]).await,
        "Service maintenance is now enabled for \"web-1\"\n"
    );
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(checks["_node_maintenance"]["Status"], "critical");
    let default_reason = checks["_service_maintenance:web-1"]["Notes"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ok(&a, &["maint"]).await,
        format!(
            "Node:\n  Name:   test-node\n  Reason: kernel upgrade\n\n\
             Service:\n  ID:     web-1\n  Reason: {default_reason}\n\n"
        )
    );
    // The maintenance checks are critical, so `web` has no passing instance.
    let (_, health) = a.get_json("/v1/health/service/web?passing").await;
    assert_eq!(health, json!([]));

    assert_eq!(
        ok(&a, &["maint", "-disable", "-service", "web-1"]).await,
        "Service maintenance is now disabled for \"web-1\"\n"
    );
    assert_eq!(
        ok(&a, &["maint", "-disable"]).await,
        "Node maintenance is now disabled\n"
    );
    assert_eq!(ok(&a, &["maint"]).await, "");
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(checks.get("_node_maintenance").is_none(), "{checks}");

    for (args, message) in [
        (
            &["maint", "-enable", "-disable"][..],
            "Only one of -enable or -disable may be provided\n",
        ),
        (
            &["maint", "-reason=x"][..],
            "Reason may only be provided with -enable\n",
        ),
        (
            &["maint", "-disable", "-reason=x"][..],
            "Reason may only be provided with -enable\n",
        ),
        (
            &["maint", "-service=web-1"][..],
            "Service requires either -enable or -disable\n",
        ),
    ] {
        let out = a.cli(args, None).await;
        assert_eq!((out.code, out.stderr.as_str()), (1, message), "{args:?}");
    }
    let out = a.cli(&["maint", "-enable", "-service", "nope"], None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error enabling service maintenance: Unexpected response code: 404 ("),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn commands_report_an_unreachable_agent() {
    let a = TestAgent::start().await;
    for args in [
        &["catalog", "datacenters", "-http-addr=127.0.0.1:1"][..],
        &["catalog", "nodes", "-http-addr=127.0.0.1:1"][..],
        &["catalog", "services", "-http-addr=127.0.0.1:1"][..],
        &["services", "register", "-name=x", "-http-addr=127.0.0.1:1"][..],
        &["services", "deregister", "-id=x", "-http-addr=127.0.0.1:1"][..],
        &["maint", "-http-addr=127.0.0.1:1"][..],
    ] {
        let out = a.cli(args, None).await;
        assert_eq!(out.code, 1, "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
    }
}
