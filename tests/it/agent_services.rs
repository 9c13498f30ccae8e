//! `/v1/agent/service*`, `/v1/agent/check*`, maintenance and the agent health endpoints.

use crate::common::{http_target, TestAgent};
use serde_json::{json, Value};
use std::time::Duration;

async fn status_of(a: &TestAgent, check: &str) -> String {
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    checks[check]["Status"]
        .as_str()
        .unwrap_or("missing")
        .to_string()
}

#[tokio::test]
async fn register_and_read_a_service() {
    let a = TestAgent::start().await;
    let resp = a
        .put_json(
            "/v1/agent/service/register",
            json!({"Name": "web", "ID": "web-1", "Port": 8080, "Address": "10.1.2.3",
                   "Tags": ["v1"], "Meta": {"version": "2"}, "Check": {"TTL": "30s"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(
        services["web-1"],
        json!({"ID": "web-1", "Service": "web", "Tags": ["v1"], "Meta": {"version": "2"}, "Port": 8080,
               "Address": "10.1.2.3",
               "TaggedAddresses": {"lan_ipv4": {"Address": "10.1.2.3", "Port": 8080},
                                   "wan_ipv4": {"Address": "10.1.2.3", "Port": 8080}},
               "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false, "Datacenter": "dc1"})
    );
    // The check got Consul's ID, name and initial status.
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    let check = &checks["service:web-1"];
    assert_eq!(check["Name"], "Service 'web' check");
    assert_eq!(check["Status"], "critical");
    assert_eq!(check["Type"], "ttl");
    assert_eq!(check["ServiceName"], "web");

    // One service by ID carries a content hash, also as a header.
    let resp = a.get("/v1/agent/service/web-1").await;
    let hash = resp.headers()["X-Consul-ContentHash"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ContentHash"], hash.as_str());
    let resp = a.get("/v1/agent/service/nope").await;
    assert_eq!(resp.status(), 404);

    // Filters apply to the agent's lists.
    let (_, filtered) = a
        .get_json("/v1/agent/services?filter=Meta.version%20%3D%3D%20%222%22")
        .await;
    assert_eq!(filtered.as_object().unwrap().len(), 1);
    let (_, filtered) = a
        .get_json("/v1/agent/services?filter=Port%20%3D%3D%201")
        .await;
    assert_eq!(filtered, json!({}));
    assert_eq!(
        a.get("/v1/agent/services?filter=Port%20%3D%3D")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn hash_blocking_on_one_service_returns_when_it_changes() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 1}),
    )
    .await;
    let resp = a.get("/v1/agent/service/web").await;
    let hash = resp.headers()["X-Consul-ContentHash"]
        .to_str()
        .unwrap()
        .to_string();
    let waiter = a.watch(&format!("/v1/agent/service/web?hash={hash}&wait=10s"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "other", "Port": 2}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "another service's change woke the watcher"
    );
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 2}),
    )
    .await;
    let (_, body, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["Port"], 2);
    assert_ne!(body["ContentHash"], hash.as_str());
}

#[tokio::test]
async fn registration_errors_are_consuls() {
    let a = TestAgent::start().await;
    let cases = [
        (json!({"Port": 1}), 400, "Missing service name"),
        (json!({"Name": "x", "Bogus": 1}), 400, "Request decode failed: json: unknown field \"Bogus\""),
        (json!({"Name": "x", "Check": {"Interval": "10s", "TCP": "a:1", "TTL": "1s"}}), 400, "Invalid check: Interval and TTL cannot both be specified"),
        (json!({"Name": "x", "Check": {"TTL": "1s", "Status": "bogus"}}), 400, "Status for checks must 'passing', 'warning', 'critical'"),
        (json!({"Name": "x", "Meta": {"consul-x": "y"}}), 400, "Invalid Service Meta: Couldn't load metadata pair ('consul-x', 'y'): Key prefix 'consul-' is reserved for internal use"),
        (json!({"Name": "x", "Kind": "connect-proxy", "Port": 1}), 400, "Validation failed: 1 error occurred:\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"),
        (json!({"Name": "x", "Check": {"Args": ["true"], "Interval": "10s"}}), 500, "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true"),
        (json!({"Name": "x", "Check": {"TTL": "bad"}}), 400, "Request decode failed: time: invalid duration \"bad\""),
    ];
    for (body, status, text) in cases {
        let resp = a.put_json("/v1/agent/service/register", body.clone()).await;
        assert_eq!(resp.status(), status, "{body}");
        assert_eq!(resp.text().await.unwrap(), text, "{body}");
    }
    let resp = a.put("/v1/agent/service/register", "").await;
    assert_eq!(resp.text().await.unwrap(), "Request decode failed: EOF");
    let resp = a.put("/v1/agent/service/deregister/ghost", "").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "Unknown service ID \"ghost\". Ensure that the service ID is passed, not the service name."
    );
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(
        services,
        json!({}),
        "nothing was registered by the failed requests"
    );
}

#[tokio::test]
async fn snake_case_and_lowercase_keys_are_accepted() {
    let a = TestAgent::start().await;
    let resp = a
        .put_json(
            "/v1/agent/service/register",
            json!({"name": "web", "port": 80, "enable_tag_override": true,
                   "checks": [{"name": "ttl", "ttl": "10s"}, {"args": ["true"], "interval": "10s", "name": "s", "status": "passing"}]}),
        )
        .await;
    // Script checks are refused without enable_script_checks, whatever the key's spelling.
    assert_eq!(resp.status(), 500);
    let resp = a
        .put_json(
            "/v1/agent/service/register",
            json!({"name": "web", "port": 80, "enable_tag_override": true, "checks": [{"name": "a", "ttl": "10s"}, {"name": "b", "ttl": "10s"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(
        checks.get("service:web:1").is_some() && checks.get("service:web:2").is_some(),
        "{checks}"
    );
}

#[tokio::test]
async fn ttl_checks_pass_warn_fail_update_and_expire() {
    let a = TestAgent::start().await;
    let resp = a
        .put_json(
            "/v1/agent/check/register",
            json!({"Name": "heartbeat", "TTL": "1s"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(status_of(&a, "heartbeat").await, "critical");
    assert_eq!(
        a.put("/v1/agent/check/pass/heartbeat?note=alive", "")
            .await
            .status(),
        200
    );
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(
        (
            checks["heartbeat"]["Status"].as_str(),
            checks["heartbeat"]["Output"].as_str()
        ),
        (Some("passing"), Some("alive"))
    );
    // The old GET form still works.
    assert_eq!(a.get("/v1/agent/check/warn/heartbeat").await.status(), 200);
    assert_eq!(status_of(&a, "heartbeat").await, "warning");
    let resp = a
        .put_json(
            "/v1/agent/check/update/heartbeat",
            json!({"Status": "passing", "Output": "fine"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = a
        .put_json("/v1/agent/check/update/heartbeat", json!({"Status": "meh"}))
        .await;
    assert_eq!(resp.text().await.unwrap(), "Invalid check status: 'meh'");
    // Without updates the TTL runs out.
    let body = a
        .eventually("/v1/agent/checks", |c| {
            c["heartbeat"]["Status"] == "critical"
        })
        .await;
    assert_eq!(
        body["heartbeat"]["Output"],
        "TTL expired (last output before timeout follows): fine"
    );
    let resp = a.put("/v1/agent/check/pass/ghost", "").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "Unknown check ID \"ghost\". Ensure that the check ID is passed, not the check name."
    );
}

#[tokio::test]
async fn check_registration_errors() {
    let a = TestAgent::start().await;
    let cases = [
        (json!({"TTL": "1s"}), 400, "Missing check name"),
        (
            json!({"Name": "x", "TTL": "1s", "Status": "meh"}),
            400,
            "Bad check status",
        ),
        (
            json!({"Name": "x"}),
            400,
            "Invalid check: TTL must be > 0 for TTL checks",
        ),
        (
            json!({"Name": "x", "TTL": "1s", "ServiceID": "ghost"}),
            404,
            "ServiceID \"ghost\" does not exist",
        ),
        (
            json!({"Name": "x", "CheckID": "y", "TTL": "1s"}),
            400,
            "Request decode failed: json: unknown field \"CheckID\"",
        ),
    ];
    for (body, status, text) in cases {
        let resp = a.put_json("/v1/agent/check/register", body.clone()).await;
        assert_eq!(resp.status(), status, "{body}");
        assert_eq!(resp.text().await.unwrap(), text, "{body}");
    }
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "http", "HTTP": "http://127.0.0.1:1/", "Interval": "10s"}),
    )
    .await;
    let resp = a.put("/v1/agent/check/pass/http", "").await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.text().await.unwrap(),
        "CheckID \"http\" does not have associated TTL"
    );
    assert_eq!(
        a.put("/v1/agent/check/deregister/http", "").await.status(),
        200
    );
    assert_eq!(
        a.put("/v1/agent/check/deregister/http", "").await.status(),
        404
    );
}

#[tokio::test]
async fn http_and_tcp_checks_run_against_real_targets() {
    let a = TestAgent::start().await;
    let ok = http_target(200, "all good").await;
    let busy = http_target(429, "slow down").await;
    let broken = http_target(503, "down").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (name, url) in [("ok", ok), ("busy", busy), ("broken", broken)] {
        let resp = a
            .put_json(
                "/v1/agent/check/register",
                json!({"Name": name, "HTTP": format!("http://{url}/health"), "Interval": "1s"}),
            )
            .await;
        assert_eq!(resp.status(), 200);
    }
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "tcp-up", "TCP": ok.to_string(), "Interval": "1s"}),
    )
    .await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "tcp-down", "TCP": closed.to_string(), "Interval": "1s"}),
    )
    .await;
    let checks = a
        .eventually("/v1/agent/checks", |c| {
            c["ok"]["Status"] == "passing"
                && c["busy"]["Status"] == "warning"
                && c["broken"]["Status"] == "critical"
                && c["tcp-up"]["Status"] == "passing"
                && c["tcp-down"]["Output"] != ""
        })
        .await;
    assert_eq!(
        checks["ok"]["Output"],
        format!("HTTP GET http://{ok}/health: 200 OK Output: all good")
    );
    assert_eq!(
        checks["tcp-up"]["Output"],
        format!("TCP connect {ok}: Success")
    );
    assert_eq!(checks["tcp-down"]["Status"], "critical");
}

#[tokio::test]
async fn script_checks_run_when_enabled() {
    let a = TestAgent::start_with(|f| f.enable_script_checks = Some(true)).await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "ok", "Args": ["sh", "-c", "echo fine"], "Interval": "1s"}),
    )
    .await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "bad", "Args": ["sh", "-c", "exit 2"], "Interval": "1s"}),
    )
    .await;
    let checks = a
        .eventually("/v1/agent/checks", |c| {
            c["ok"]["Status"] == "passing" && c["bad"]["Status"] == "critical"
        })
        .await;
    assert_eq!(checks["ok"]["Output"], "fine\n");
}

#[tokio::test]
async fn alias_checks_follow_the_aliased_service() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "db", "Check": {"TTL": "30s", "Status": "passing"}}),
    )
    .await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "db-alias", "AliasService": "db"}),
    )
    .await;
    a.eventually("/v1/agent/checks", |c| c["db-alias"]["Status"] == "passing")
        .await;
    a.put("/v1/agent/check/fail/service:db?note=gone", "").await;
    let checks = a
        .eventually("/v1/agent/checks", |c| {
            c["db-alias"]["Status"] == "critical"
        })
        .await;
    assert_eq!(
        checks["db-alias"]["Output"],
        "Aliased check \"Service 'db' check\" failing: gone"
    );
}

#[tokio::test]
async fn maintenance_mode_for_a_service_and_the_node() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Check": {"TTL": "30s", "Status": "passing"}}),
    )
    .await;
    let resp = a.get("/v1/agent/health/service/id/web").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["X-Consul-Reason"], "passing");

    assert_eq!(
        a.put("/v1/agent/service/maintenance/web", "")
            .await
            .text()
            .await
            .unwrap(),
        "Missing value for enable"
    );
    assert_eq!(
        a.put("/v1/agent/service/maintenance/web?enable=maybe", "")
            .await
            .status(),
        400
    );
    assert_eq!(
        a.put("/v1/agent/service/maintenance/ghost?enable=true", "")
            .await
            .status(),
        404
    );
    assert_eq!(
        a.put(
            "/v1/agent/service/maintenance/web?enable=true&reason=deploy",
            ""
        )
        .await
        .status(),
        200
    );
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    let maint = &checks["_service_maintenance:web"];
    assert_eq!(
        (
            maint["Name"].as_str(),
            maint["Status"].as_str(),
            maint["Notes"].as_str(),
            maint["ServiceID"].as_str()
        ),
        (
            Some("Service Maintenance Mode"),
            Some("critical"),
            Some("deploy"),
            Some("web")
        )
    );
    let resp = a.get("/v1/agent/health/service/id/web").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["AggregatedStatus"], "maintenance");
    assert_eq!(
        a.put("/v1/agent/service/maintenance/web?enable=false", "")
            .await
            .status(),
        200
    );
    assert_eq!(a.get("/v1/agent/health/service/id/web").await.status(), 200);

    assert_eq!(
        a.put("/v1/agent/maintenance?enable=true", "")
            .await
            .status(),
        200
    );
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(
        checks["_node_maintenance"]["Notes"],
        "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
    );
    let resp = a.get("/v1/agent/health/service/name/web?format=text").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.text().await.unwrap(), "maintenance");
    a.put("/v1/agent/maintenance?enable=false", "").await;
    let resp = a.get("/v1/agent/health/service/name/web").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn agent_health_codes_follow_the_worst_check() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "api", "Check": {"TTL": "30s", "Status": "warning"}}),
    )
    .await;
    assert_eq!(a.get("/v1/agent/health/service/id/api").await.status(), 429);
    a.put("/v1/agent/check/fail/service:api", "").await;
    assert_eq!(a.get("/v1/agent/health/service/id/api").await.status(), 503);
    let resp = a.get("/v1/agent/health/service/id/ghost").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()["X-Consul-Reason"],
        "ServiceId ghost not found"
    );
    let resp = a.get("/v1/agent/health/service/name/ghost").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn deregistering_removes_checks_and_the_sidecar() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}),
    )
    .await;
    let (_, services) = a.get_json("/v1/agent/services").await;
    let sidecar = &services["web-sidecar-proxy"];
    assert_eq!(sidecar["Kind"], "connect-proxy");
    assert_eq!(sidecar["Port"], 21000);
    assert_eq!(sidecar["Proxy"]["DestinationServiceName"], "web");
    assert_eq!(sidecar["Proxy"]["LocalServicePort"], 80);
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(
        checks["service:web-sidecar-proxy:1"]["Name"],
        "Connect Sidecar Listening"
    );
    assert_eq!(
        checks["service:web-sidecar-proxy:2"]["Name"],
        "Connect Sidecar Aliasing web"
    );
    assert_eq!(
        a.put("/v1/agent/service/deregister/web", "").await.status(),
        200
    );
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(services, json!({}));
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(checks, json!({}));
}

#[tokio::test]
async fn replace_existing_checks_drops_the_ones_not_listed() {
    let a = TestAgent::start().await;
    a.put_json("/v1/agent/service/register", json!({"Name": "web", "Checks": [{"CheckID": "a", "TTL": "10s"}, {"CheckID": "b", "TTL": "10s"}]})).await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Checks": [{"CheckID": "a", "TTL": "10s"}]}),
    )
    .await;
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(
        checks.get("b").is_some(),
        "kept without ?replace-existing-checks"
    );
    a.put_json(
        "/v1/agent/service/register?replace-existing-checks",
        json!({"Name": "web", "Checks": [{"CheckID": "a", "TTL": "10s"}]}),
    )
    .await;
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(checks.get("b").is_none());
}

#[tokio::test]
async fn critical_services_are_deregistered_after_the_configured_time() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "flaky", "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "1s"}}),
    )
    .await;
    a.eventually("/v1/agent/services", |s| s.get("flaky").is_none())
        .await;
}

#[tokio::test]
async fn registrations_status_and_maintenance_survive_a_restart() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 80, "Check": {"TTL": "1h"}}),
    )
    .await;
    a.put_json(
        "/v1/agent/check/register",
        json!({"Name": "short", "TTL": "1s"}),
    )
    .await;
    a.put("/v1/agent/check/pass/service:web?note=up", "").await;
    a.put("/v1/agent/check/pass/short", "").await;
    a.put(
        "/v1/agent/service/maintenance/web?enable=true&reason=later",
        "",
    )
    .await;
    let (_, before) = a.get_json("/v1/agent/services").await;
    let a = a.restart().await;
    let (_, after) = a.get_json("/v1/agent/services").await;
    assert_eq!(before, after);
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert_eq!(
        (
            checks["service:web"]["Status"].as_str(),
            checks["service:web"]["Output"].as_str()
        ),
        (Some("passing"), Some("up"))
    );
    assert_eq!(checks["_service_maintenance:web"]["Notes"], "later");
    // The TTL timer resumed: the short one runs out after the restart too.
    a.eventually("/v1/agent/checks", |c| c["short"]["Status"] == "critical")
        .await;
    // And it still accepts updates.
    assert_eq!(
        a.put("/v1/agent/check/pass/service:web", "").await.status(),
        200
    );
}

#[tokio::test]
async fn services_and_checks_from_config_files_load_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("services.hcl");
    std::fs::write(
        &cfg,
        r#"
service {
  name = "cfg-web"
  port = 9090
  tags = ["from-config"]
  check {
    ttl = "30s"
  }
}
check {
  name = "cfg-check"
  ttl = "30s"
}
"#,
    )
    .unwrap();
    let a = TestAgent::start_with(|f| f.config_file = vec![cfg]).await;
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert_eq!(services["cfg-web"]["Tags"], json!(["from-config"]));
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(
        checks.get("cfg-check").is_some() && checks.get("service:cfg-web").is_some(),
        "{checks}"
    );
}
