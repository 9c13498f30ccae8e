//! Config entries (`/v1/config`) and what depends on them: `/v1/catalog/gateway-services`,
//! `/v1/health/ingress`, `config_entries.bootstrap` and `legate config`.

use crate::common::{index_of, CliOutput, TestAgent};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// PUTs an entry, returning status and body text.
async fn put_entry(a: &TestAgent, query: &str, entry: Value) -> (u16, String) {
    let resp = a.put_json(&format!("/v1/config{query}"), entry).await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn write(a: &TestAgent, entry: Value) {
    let (status, body) = put_entry(a, "", entry.clone()).await;
    assert_eq!((status, body.as_str()), (200, "true"), "writing {entry}");
}

async fn status_and_text(resp: reqwest::Response) -> (u16, String) {
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Registers a service instance (with a passing or critical check) through the catalog.
async fn register(a: &TestAgent, node: &str, service: Value, status: &str) {
    let id = service["ID"]
        .as_str()
        .or(service["Service"].as_str())
        .unwrap()
        .to_string();
    let body = json!({
        "Node": node, "Address": "10.0.0.9", "NodeMeta": {"rack": node},
        "Service": service,
        "Check": {"CheckID": format!("{id}-alive"), "Name": "alive", "Status": status, "ServiceID": id},
    });
    assert_eq!(a.put_json("/v1/catalog/register", body).await.status(), 200);
}

/// `web` with a sidecar proxy: a Connect-capable service a wildcard ingress can reach.
async fn register_connect_web(a: &TestAgent) {
    register(
        a,
        "app1",
        json!({"ID": "web1", "Service": "web", "Port": 80}),
        "passing",
    )
    .await;
    register(
        a,
        "app1",
        json!({"ID": "web1-proxy", "Service": "web-sidecar-proxy", "Kind": "connect-proxy", "Port": 21000,
               "Proxy": {"DestinationServiceName": "web"}}),
        "passing",
    )
    .await;
}

#[tokio::test]
async fn entries_are_written_read_listed_and_deleted_in_consuls_shape() {
    let a = TestAgent::start().await;
    // snake_case and lowercase keys, weak values: stored and rendered canonically.
    write(
        &a,
        json!({"kind": "service-defaults", "name": "web", "protocol": "HTTP",
               "mesh_gateway": {"mode": "local"}, "local_connect_timeout_ms": "500",
               "Meta": {"owner": "team-a"}}),
    )
    .await;
    let resp = a.get("/v1/config/service-defaults/web").await;
    assert_eq!(resp.status(), 200);
    let index = index_of(&resp);
    let entry: Value = resp.json().await.unwrap();
    assert_eq!(
        entry,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http",
               "TransparentProxy": {}, "MeshGateway": {"Mode": "local"}, "Expose": {},
               "LocalConnectTimeoutMs": 500, "Meta": {"owner": "team-a"},
               "CreateIndex": index, "ModifyIndex": index})
    );
    write(
        &a,
        json!({"Kind": "proxy-defaults", "Config": {"protocol": "http"}}),
    )
    .await;
    write(&a, json!({"Kind": "service-router", "Name": "web", "Routes": [{"Match": {"HTTP": {"PathPrefix": "/a"}}}]})).await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "grpc"}),
    )
    .await;

    let (list_index, list) = a.get_json("/v1/config/service-defaults").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert!(list_index > index);
    let (_, filtered) = a
        .get_json("/v1/config/service-defaults?filter=Protocol%20%3D%3D%20grpc")
        .await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(filtered[0]["Name"], "api");
    // The proxy-defaults entry is `global`; other kinds keep their nested fields as sent.
    let (_, global) = a.get_json("/v1/config/proxy-defaults/global").await;
    assert_eq!(global["Config"], json!({"protocol": "http"}));
    let (_, router) = a.get_json("/v1/config/service-router/web").await;
    assert_eq!(router["Routes"][0]["Match"]["HTTP"]["PathPrefix"], "/a");
    // An empty kind lists every entry.
    let (_, all) = a.get_json("/v1/config/").await;
    assert_eq!(all.as_array().unwrap().len(), 4);

    let resp = a.delete("/v1/config/service-defaults/api").await;
    assert_eq!(status_and_text(resp).await, (200, "{}".to_string()));
    let resp = a.get("/v1/config/service-defaults/api").await;
    assert!(index_of(&resp) > list_index);
    assert_eq!(
        status_and_text(resp).await,
        (
            404,
            r#"Config entry not found for "service-defaults" / "api""#.to_string()
        )
    );
    // Deleting what is not there succeeds.
    assert_eq!(
        a.delete("/v1/config/service-defaults/api").await.status(),
        200
    );
}

#[tokio::test]
async fn check_and_set_on_write_and_delete() {
    let a = TestAgent::start().await;
    let entry = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    assert_eq!(
        put_entry(&a, "?cas=0", entry.clone()).await,
        (200, "true".into())
    );
    let grpc = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "grpc"});
    assert_eq!(
        put_entry(&a, "?cas=0", grpc.clone()).await,
        (200, "false".into())
    );
    let (_, stored) = a.get_json("/v1/config/service-defaults/web").await;
    let at = stored["ModifyIndex"].as_u64().unwrap();
    // Writing what is stored is a no-op Consul reports done, whatever the CAS index.
    for cas in ["0".to_string(), (at + 10).to_string()] {
        assert_eq!(
            put_entry(&a, &format!("?cas={cas}"), entry.clone()).await,
            (200, "true".into())
        );
    }
    let (_, unchanged) = a.get_json("/v1/config/service-defaults/web").await;
    assert_eq!(unchanged["ModifyIndex"].as_u64().unwrap(), at);
    assert_eq!(
        put_entry(&a, &format!("?cas={}", at + 10), grpc.clone()).await,
        (200, "false".into())
    );
    assert_eq!(
        put_entry(&a, &format!("?cas={at}"), grpc).await,
        (200, "true".into())
    );
    let (_, stored) = a.get_json("/v1/config/service-defaults/web").await;
    assert_eq!(stored["Protocol"], "grpc");
    assert_eq!(stored["CreateIndex"].as_u64().unwrap(), at);
    let now = stored["ModifyIndex"].as_u64().unwrap();
    let resp = a
        .delete(&format!("/v1/config/service-defaults/web?cas={at}"))
        .await;
    assert_eq!(status_and_text(resp).await, (200, "false".to_string()));
    let resp = a
        .delete(&format!("/v1/config/service-defaults/web?cas={now}"))
        .await;
    assert_eq!(status_and_text(resp).await, (200, "true".to_string()));
    // Deleting what is gone is a no-op Consul reports done, CAS or not.
    let resp = a
        .delete(&format!("/v1/config/service-defaults/web?cas={now}"))
        .await;
    assert_eq!(status_and_text(resp).await, (200, "true".to_string()));
    let resp = a.put("/v1/config?cas=x", r#"{"Kind":"mesh"}"#).await;
    assert_eq!(
        status_and_text(resp).await,
        (
            500,
            r#"strconv.ParseUint: parsing "x": invalid syntax"#.to_string()
        )
    );
}

#[tokio::test]
async fn invalid_requests_get_consuls_statuses_and_texts() {
    let a = TestAgent::start().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"Name": "x"}), 400, "Request decoding failed: Payload does not contain a kind/Kind key at the top level"),
        (json!({"Kind": "nope", "Name": "x"}), 400, "Request decoding failed: invalid config entry kind: nope"),
        (
            json!({"Kind": "service-defaults", "Name": "x", "Protocl": "http"}),
            400,
            "Request decoding failed: 1 error occurred:\n\t* invalid config key \"Protocl\"\n\n",
        ),
        (
            json!({"Kind": "ingress-gateway", "Name": "x", "Listeners": [{"Port": 1, "Services": [{"Name": "a", "Namespace": "n"}]}]}),
            400,
            "Request decoding failed: 1 error occurred:\n\t* invalid config key \"Listeners[0].Services[0].Namespace\", namespaces are a consul enterprise feature\n\n",
        ),
        (
            json!({"Kind": "ingress-gateway", "Name": "x", "Listeners": [{"Port": true, "Protocol": ["a"]}]}),
            400,
            "Request decoding failed: 1 error(s) decoding:\n\n* 'Listeners[0].Protocol' expected type 'string', got unconvertible type '[]interface {}', value: '[a]'",
        ),
        (json!({"Kind": "proxy-defaults", "Name": "local"}), 500, "invalid name (\"local\"), only \"global\" is supported"),
        (json!({"Kind": "service-defaults"}), 500, "Name is required"),
        (
            json!({"Kind": "ingress-gateway", "Name": "ig", "Listeners": [{"Port": 80, "Protocol": "tcp", "Services": [{"Name": "a"}, {"Name": "b"}]}]}),
            500,
            "Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port 80)",
        ),
        (
            json!({"Kind": "ingress-gateway", "Name": "ig", "Listeners": [{"Port": 80, "Protocol": "http", "Services": [{"Name": "web"}]}]}),
            500,
            "service \"web\" has protocol \"tcp\", which does not match defined listener protocol \"http\"",
        ),
        (
            json!({"Kind": "terminating-gateway", "Name": "tg", "Services": [{"Name": "a", "KeyFile": "k"}]}),
            500,
            "Service \"a\" must have a CertFile, CAFile, and KeyFile specified for TLS origination",
        ),
        (json!({"Kind": "sameness-group", "Name": "s"}), 500, "sameness-groups are an enterprise-only feature"),
    ];
    for (entry, status, text) in cases {
        assert_eq!(
            put_entry(&a, "", entry.clone()).await,
            (status, text.to_string()),
            "{entry}"
        );
    }
    let kind_nope = "invalid config entry kind: nope";
    for (method, path, status, text) in [
        ("PUT", "/v1/config", 400, "Request decoding failed: EOF"),
        ("GET", "/v1/config/nope/x", 500, kind_nope),
        ("GET", "/v1/config/nope", 500, kind_nope),
        ("DELETE", "/v1/config/nope/x", 400, kind_nope),
        (
            "DELETE",
            "/v1/config/service-defaults",
            404,
            "Must provide both a kind and name to delete",
        ),
        // Only service-defaults can be filtered, as in Consul.
        (
            "GET",
            "/v1/config/service-router?filter=Name%20%3D%3D%20web",
            500,
            "filtering not supported for config entry kind=service-router",
        ),
        (
            "GET",
            "/v1/config/?filter=Name%20%3D%3D%20web",
            500,
            "filtering not supported for config entry kind=",
        ),
    ] {
        let resp = match method {
            "PUT" => a.put(path, "").await,
            "GET" => a.get(path).await,
            _ => a.delete(path).await,
        };
        assert_eq!(
            status_and_text(resp).await,
            (status, text.to_string()),
            "{method} {path}"
        );
    }
    let resp = a.get("/v1/config").await;
    assert_eq!(resp.status(), 405);
    let resp = a
        .get("/v1/config/service-defaults?filter=Protocol%20%3D%3D")
        .await;
    assert_eq!(resp.status(), 400);
}

/// `path` as a blocking read past `index`, for `TestAgent::watch`.
fn past(path: &str, index: u64) -> String {
    format!("{path}?index={index}&wait=10s")
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

#[tokio::test]
async fn blocking_reads_wake_for_their_entry_and_kind_only() {
    let a = TestAgent::start().await;
    write(&a, json!({"Kind": "service-defaults", "Name": "web"})).await;
    write(&a, json!({"Kind": "service-resolver", "Name": "web"})).await;
    let (index, _) = a.get_json("/v1/config/service-defaults").await;
    let kind_watch = a.watch(&past("/v1/config/service-defaults", index));
    let entry_watch = a.watch(&past("/v1/config/service-defaults/web", index));
    settle().await;
    // Another kind wakes neither; another entry of the kind wakes the list only.
    write(
        &a,
        json!({"Kind": "service-resolver", "Name": "web", "DefaultSubset": "v1"}),
    )
    .await;
    settle().await;
    assert!(
        !kind_watch.is_finished(),
        "a write to another kind woke a list watcher"
    );
    assert!(!entry_watch.is_finished());
    write(&a, json!({"Kind": "service-defaults", "Name": "api"})).await;
    let (woke, _, _) = tokio::time::timeout(Duration::from_secs(5), kind_watch)
        .await
        .unwrap()
        .unwrap();
    assert!(woke > index);
    settle().await;
    assert!(
        !entry_watch.is_finished(),
        "a write to another entry woke an entry watcher"
    );
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    let (woke, _, _) = tokio::time::timeout(Duration::from_secs(5), entry_watch)
        .await
        .unwrap()
        .unwrap();
    assert!(woke > index);
}

#[tokio::test]
async fn gateway_services_of_ingress_and_terminating_gateways() {
    let a = TestAgent::start().await;
    register_connect_web(&a).await;
    register(
        &a,
        "app1",
        json!({"ID": "db1", "Service": "db", "Port": 5432}),
        "passing",
    )
    .await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http"}),
    )
    .await;
    write(
        &a,
        json!({"Kind": "ingress-gateway", "Name": "edge", "Listeners": [
            {"Port": 8080, "Protocol": "http", "Services": [{"Name": "*"}, {"Name": "api", "Hosts": ["api.example.com"]}]},
            {"Port": 9000, "Services": [{"Name": "db"}]}]}),
    )
    .await;
    let (index, got) = a.get_json("/v1/catalog/gateway-services/edge").await;
    let (_, entry) = a.get_json("/v1/config/ingress-gateway/edge").await;
    let at = entry["ModifyIndex"].clone();
    assert_eq!(
        got,
        json!([
            {"Gateway": {"Name": "edge"}, "Service": {"Name": "api"}, "GatewayKind": "ingress-gateway",
             "Port": 8080, "Protocol": "http", "Hosts": ["api.example.com"], "CreateIndex": at, "ModifyIndex": at},
            {"Gateway": {"Name": "edge"}, "Service": {"Name": "db"}, "GatewayKind": "ingress-gateway",
             "Port": 9000, "Protocol": "tcp", "CreateIndex": at, "ModifyIndex": at},
            {"Gateway": {"Name": "edge"}, "Service": {"Name": "web"}, "GatewayKind": "ingress-gateway",
             "Port": 8080, "Protocol": "http", "FromWildcard": true, "CreateIndex": at, "ModifyIndex": at},
        ])
    );
    // The wildcard follows the catalog: a new Connect service with the listener's protocol joins.
    let waiter = a.watch(&past("/v1/catalog/gateway-services/edge", index));
    settle().await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "shop", "Protocol": "http"}),
    )
    .await;
    register(
        &a,
        "app2",
        json!({"ID": "shop1", "Service": "shop", "Port": 81}),
        "passing",
    )
    .await;
    register(
        &a,
        "app2",
        json!({"ID": "shop1-proxy", "Service": "shop-sidecar-proxy", "Kind": "connect-proxy", "Port": 21001,
               "Proxy": {"DestinationServiceName": "shop"}}),
        "passing",
    )
    .await;
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    let (_, got) = a.get_json("/v1/catalog/gateway-services/edge").await;
    let names: Vec<&str> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["Service"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "db", "shop", "web"]);

    write(
        &a,
        json!({"Kind": "terminating-gateway", "Name": "egress", "Services": [
            {"Name": "*", "SNI": "any.example"},
            {"Name": "db", "CAFile": "/ca.pem", "CertFile": "/c.pem", "KeyFile": "/k.pem", "SNI": "db.example"}]}),
    )
    .await;
    let (_, got) = a.get_json("/v1/catalog/gateway-services/egress").await;
    let db = &got[0];
    assert_eq!(
        (
            db["Service"]["Name"].clone(),
            db["GatewayKind"].clone(),
            db["CAFile"].clone(),
            db["SNI"].clone(),
            db["ServiceKind"].clone()
        ),
        (
            json!("db"),
            json!("terminating-gateway"),
            json!("/ca.pem"),
            json!("db.example"),
            json!("service")
        )
    );
    assert!(db.get("FromWildcard").is_none() && db.get("Port").is_none());
    let wild: Vec<(&str, &str)> = got.as_array().unwrap()[1..]
        .iter()
        .map(|g| {
            (
                g["Service"]["Name"].as_str().unwrap(),
                g["SNI"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(wild, [("shop", "any.example"), ("web", "any.example")]);
    assert!(got.as_array().unwrap()[1..]
        .iter()
        .all(|g| g["FromWildcard"] == true));

    let (_, none) = a.get_json("/v1/catalog/gateway-services/nope").await;
    assert_eq!(none, Value::Null);
    let resp = a.get("/v1/catalog/gateway-services/").await;
    assert_eq!(
        status_and_text(resp).await,
        (400, "Missing gateway name".to_string())
    );
    // A name holds one gateway kind.
    let (status, text) =
        put_entry(&a, "", json!({"Kind": "ingress-gateway", "Name": "egress"})).await;
    assert_eq!(status, 500);
    assert!(
        text.contains("a \"terminating-gateway\" config entry with that name already exists"),
        "{text}"
    );
}

#[tokio::test]
async fn health_ingress_lists_the_gateways_instances_that_front_a_service() {
    let a = TestAgent::start().await;
    register_connect_web(&a).await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    for (node, status, tags) in [
        ("gw1", "passing", json!(["edge"])),
        ("gw2", "critical", json!([])),
    ] {
        register(
            &a,
            node,
            json!({"ID": format!("edge-{node}"), "Service": "edge", "Kind": "ingress-gateway", "Port": 8080, "Tags": tags}),
            status,
        )
        .await;
    }
    let (index, none) = a.get_json("/v1/health/ingress/web").await;
    assert_eq!(none, json!([]));
    let waiter = a.watch(&past("/v1/health/ingress/web", index));
    settle().await;
    write(
        &a,
        json!({"Kind": "ingress-gateway", "Name": "edge",
        "Listeners": [{"Port": 8080, "Protocol": "http", "Services": [{"Name": "web"}]}]}),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();

    let ids = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Service"]["ID"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let (_, all) = a.get_json("/v1/health/ingress/web").await;
    assert_eq!(ids(&all), ["edge-gw1", "edge-gw2"]);
    assert!(all[0]["Checks"][0]["CheckID"]
        .as_str()
        .unwrap()
        .starts_with("edge-gw"));
    let (_, passing) = a.get_json("/v1/health/ingress/web?passing").await;
    assert_eq!(ids(&passing), ["edge-gw1"]);
    let (_, tagged) = a.get_json("/v1/health/ingress/web?tag=edge").await;
    assert_eq!(ids(&tagged), ["edge-gw1"]);
    let (_, by_meta) = a
        .get_json("/v1/health/ingress/web?node-meta=rack:gw2")
        .await;
    assert_eq!(ids(&by_meta), ["edge-gw2"]);
    let (_, filtered) = a
        .get_json("/v1/health/ingress/web?filter=Node.Node%20%3D%3D%20gw2&near=_agent")
        .await;
    assert_eq!(ids(&filtered), ["edge-gw2"]);
    // A wildcard fronts any Connect service; one without a proxy isn't reachable through it.
    write(
        &a,
        json!({"Kind": "ingress-gateway", "Name": "edge",
        "Listeners": [{"Port": 8080, "Protocol": "http", "Services": [{"Name": "*"}]}]}),
    )
    .await;
    let (_, wild) = a.get_json("/v1/health/ingress/web").await;
    assert_eq!(ids(&wild).len(), 2);
    register(
        &a,
        "app1",
        json!({"ID": "plain1", "Service": "plain", "Port": 82}),
        "passing",
    )
    .await;
    let (_, plain) = a.get_json("/v1/health/ingress/plain").await;
    assert_eq!(plain, json!([]));
}

#[tokio::test]
async fn entries_survive_a_restart_with_their_indexes() {
    let a = TestAgent::start().await;
    write(&a, json!({"Kind": "ingress-gateway", "Name": "ig", "Listeners": [{"Port": 1, "Services": [{"Name": "db"}]}]})).await;
    write(
        &a,
        json!({"Kind": "mesh", "TransparentProxy": {"MeshDestinationsOnly": true}}),
    )
    .await;
    let (index, before) = a.get_json("/v1/config/ingress-gateway").await;
    let (_, mesh) = a.get_json("/v1/config/mesh/mesh").await;
    let a = a.restart().await;
    let (index_after, after) = a.get_json("/v1/config/ingress-gateway").await;
    assert_eq!((index_after, &after), (index, &before));
    assert_eq!(a.get_json("/v1/config/mesh/mesh").await.1, mesh);
    let (_, gws) = a.get_json("/v1/catalog/gateway-services/ig").await;
    assert_eq!(gws[0]["Service"]["Name"], "db");
}

#[tokio::test]
async fn a_snapshot_carries_the_entries() {
    let a = TestAgent::start().await;
    write(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    write(
        &a,
        json!({"Kind": "terminating-gateway", "Name": "tg", "Services": [{"Name": "web"}]}),
    )
    .await;
    let (_, before) = a.get_json("/v1/config/").await;
    let resp = a.get("/v1/snapshot").await;
    assert_eq!(resp.status(), 200);
    let archive = resp.bytes().await.unwrap().to_vec();
    assert_eq!(
        a.delete("/v1/config/terminating-gateway/tg").await.status(),
        200
    );
    write(&a, json!({"Kind": "service-defaults", "Name": "other"})).await;
    assert_eq!(a.put("/v1/snapshot", archive).await.status(), 200);
    let (_, after) = a.get_json("/v1/config/").await;
    assert_eq!(after, before);
}

fn config_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const BOOTSTRAP: &str = r#"
config_entries {
  bootstrap {
    kind = "proxy-defaults"
    name = "global"
    config { protocol = "http" }
  }
  bootstrap {
    kind = "ingress-gateway"
    name = "edge"
    listeners = [{ port = 8080, protocol = "http", services = [{ name = "*" }] }]
  }
}
"#;

#[tokio::test]
async fn bootstrap_entries_are_written_once_by_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "entries.hcl", BOOTSTRAP);
    let data = dir.path().join("data");
    let flags = |f: &mut legate::config::AgentFlags| {
        f.server = Some(true);
        f.config_file = vec![file.clone()];
    };
    let a = TestAgent::start_in(&data, flags).await;
    let (_, global) = a.get_json("/v1/config/proxy-defaults/global").await;
    assert_eq!(global["Config"]["protocol"], "http");
    let (_, edge) = a.get_json("/v1/config/ingress-gateway/edge").await;
    assert_eq!(edge["Listeners"][0]["Services"][0]["Name"], "*");
    // A change made through the API is not overwritten by the next start.
    write(
        &a,
        json!({"Kind": "proxy-defaults", "Config": {"protocol": "grpc"}}),
    )
    .await;
    drop(a);
    let a = TestAgent::start_in(&data, flags).await;
    let (_, global) = a.get_json("/v1/config/proxy-defaults/global").await;
    assert_eq!(global["Config"]["protocol"], "grpc");
    drop(a);

    // A client leaves them alone; an invalid one stops the start naming it.
    let client_dir = tempfile::tempdir().unwrap();
    let c = TestAgent::start_in(&client_dir.path().join("data"), |f| {
        f.config_file = vec![file.clone()]
    })
    .await;
    assert_eq!(
        c.get("/v1/config/proxy-defaults/global").await.status(),
        404
    );
    let bad = config_file(
        dir.path(),
        "bad.json",
        r#"{"config_entries": {"bootstrap": [{"Kind": "proxy-defaults", "Name": "x"}]}}"#,
    );
    let err = legate::config::Config::load(&legate::config::AgentFlags {
        data_dir: Some(data.clone()),
        config_file: vec![bad],
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config_entries.bootstrap[0]: invalid name (\"x\"), only \"global\" is supported"
    );
}

/// Runs `legate config <args>`, the arguments split at spaces.
async fn config(a: &TestAgent, args: &str, stdin: Option<&str>) -> CliOutput {
    let args: Vec<&str> = std::iter::once("config")
        .chain(args.split_whitespace())
        .collect();
    a.cli(&args, stdin).await
}

#[tokio::test]
async fn the_config_cli_writes_reads_lists_and_deletes() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hcl = config_file(
        dir.path(),
        "web.hcl",
        "Kind = \"service-defaults\"\nName = \"web\"\nprotocol = \"http\"\n",
    );
    let hcl = hcl.to_str().unwrap();
    let out = config(&a, &format!("write {hcl}"), None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Config entry written: service-defaults/web\n"),
        "{}",
        out.stderr
    );
    let out = config(
        &a,
        "write -",
        Some(r#"{"Kind": "service-defaults", "Name": "api"}"#),
    )
    .await;
    assert_eq!(out.stdout, "Config entry written: service-defaults/api\n");
    let grpc = "Kind = \"service-defaults\"\nName = \"web\"\nprotocol = \"grpc\"\n";
    let out = config(&a, "write -cas -modify-index=0 -", Some(grpc)).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Config entry not updated: service-defaults/web\n")
    );
    // Rewriting what is stored succeeds whatever the index, as Consul skips the no-op.
    let out = config(&a, &format!("write -cas -modify-index=0 {hcl}"), None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Config entry written: service-defaults/web\n")
    );

    let out = config(&a, "read -kind service-defaults -name web", None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let read: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(read["Protocol"], "http");
    assert!(
        out.stdout
            .starts_with("{\n    \"Kind\": \"service-defaults\",\n"),
        "{}",
        out.stdout
    );
    let index = read["ModifyIndex"].as_u64().unwrap();

    let out = config(&a, "list -kind service-defaults", None).await;
    assert_eq!(out.stdout, "api\nweb\n");
    let out = a
        .cli(
            &[
                "config",
                "list",
                "-kind",
                "service-defaults",
                "-filter",
                "Protocol == http",
            ],
            None,
        )
        .await;
    assert_eq!(out.stdout, "web\n");

    let delete_web = "delete -kind service-defaults -name web -cas";
    let out = config(
        &a,
        &format!("{delete_web} -modify-index={}", index + 1),
        None,
    )
    .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Config entry not deleted: service-defaults/web\n")
    );
    let out = config(&a, &format!("{delete_web} -modify-index={index}"), None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Config entry deleted: service-defaults/web\n")
    );
    let out = config(&a, &format!("delete -filename {hcl}"), None).await;
    assert_eq!(out.stdout, "Config entry deleted: service-defaults/web\n");

    // Errors as consul's.
    let out = config(&a, "read -kind service-defaults -name web", None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error reading config entry service-defaults/web: Unexpected response code: 404 (Config entry not found for \"service-defaults\" / \"web\")\n")
    );
    let out = config(&a, "read -kind service-defaults", None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Must specify the -name parameter\n")
    );
    let out = config(&a, "list", None).await;
    assert_eq!(out.stderr, "Must specify the -kind parameter\n");
    let out = config(&a, "write", None).await;
    assert_eq!(
        out.stderr,
        "Must provide exactly one positional argument to specify the config entry to write\n"
    );
    let out = config(
        &a,
        "write -",
        Some("Kind = \"service-defaults\"\nName = \"x\"\nBogus = 1\n"),
    )
    .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Failed to decode config entry input: 1 error occurred:\n\t* invalid config key \"Bogus\"\n\n\n")
    );
    let out = config(
        &a,
        "write -",
        Some(r#"{"Kind": "proxy-defaults", "Name": "x"}"#),
    )
    .await;
    assert_eq!(
        out.stderr,
        "Error writing config entry proxy-defaults/x: Unexpected response code: 500 (invalid name (\"x\"), only \"global\" is supported)\n"
    );
    let out = config(
        &a,
        "delete -kind service-defaults -name x -modify-index=3",
        None,
    )
    .await;
    assert_eq!(out.stderr, "Cannot specify -modify-index without -cas\n");
    let out = config(&a, "delete -kind service-defaults -name x -cas", None).await;
    assert_eq!(
        out.stderr,
        "Must specify a -modify-index greater than 0 with -cas\n"
    );
    let out = config(&a, &format!("delete -filename {hcl} -kind x"), None).await;
    assert_eq!(out.stderr, "filename can't be used with kind or name\n");
    // The entry is a path or `-`, nothing else (`LoadDataSourceNoRaw`): `@` is no prefix.
    let out = config(&a, &format!("write @{hcl}"), None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Failed to load data: Failed to read file: "),
        "{}",
        out.stderr
    );
    let out = a.cli(&["config", "write", ""], None).await;
    assert_eq!(
        out.stderr,
        "Failed to load data: Failed to load data: must specify a file path or '-' for stdin\n"
    );
    // A syntax error is prefixed twice, as `ParseConfigEntry` and the command each do.
    let out = config(&a, "write -", Some("Kind = ")).await;
    assert!(
        out.stderr.starts_with(
            "Failed to decode config entry input: Failed to decode config entry input: "
        ),
        "{}",
        out.stderr
    );
}

/// `consul config` commands word a client error their own way ("Error connect to").
#[tokio::test]
async fn the_config_cli_reports_client_errors_as_consul() {
    let a = TestAgent::start().await;
    let out = config(
        &a,
        "read -token-file /nonexistent/token -kind service-defaults -name web",
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("Error connect to Consul agent: Error reading token file"),
        "{}",
        out.stderr
    );
}
