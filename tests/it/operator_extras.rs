//! The endpoints a single Consul CE server answers without the feature behind them: the
//! keyring without gossip encryption, peering without peers, usage counts, the agent's host
//! and version, and CE's refusal of the Enterprise utilization report.

use crate::common::TestAgent;
use crate::routes::request as send;
use serde_json::{json, Value};

const KEY: &str = r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#;

#[tokio::test]
async fn keyring_answers_as_an_agent_without_gossip_encryption() {
    let a = TestAgent::start().await;
    let (status, text) = send(&a, "GET", "/v1/operator/keyring", "").await;
    assert_eq!(status, 500);
    assert_eq!(
        text,
        "4 errors occurred:\n\t* WAN error: 1/1 nodes reported failure\n\t\
         * test-node.dc1: Keyring is empty (encryption not enabled)\n\t\
         * dc1 (LAN) error: 1/1 nodes reported failure\n\t\
         * test-node: Keyring is empty (encryption not enabled)\n\n"
    );
    // Only this agent's own (LAN) pool is asked with local-only.
    let (status, text) = send(&a, "GET", "/v1/operator/keyring?local-only=true", "").await;
    assert_eq!(status, 500);
    assert!(
        text.starts_with("2 errors occurred:\n\t* dc1 (LAN) error"),
        "{text}"
    );
    for method in ["POST", "PUT", "DELETE"] {
        let (status, text) = send(&a, method, "/v1/operator/keyring", KEY).await;
        assert_eq!(status, 500, "{method}");
        assert!(
            text.contains("test-node: No keyring to modify (encryption not enabled)"),
            "{method}: {text}"
        );
    }
}

#[tokio::test]
async fn keyring_refuses_bad_input_with_consuls_messages() {
    let a = TestAgent::start().await;
    let cases = [
        ("POST", "/v1/operator/keyring", "", "Request decode failed: EOF"),
        ("POST", "/v1/operator/keyring", r#"{"Key":1}"#, "Request decode failed: json: cannot unmarshal number into Go struct field keyringArgs.Key of type string"),
        ("GET", "/v1/operator/keyring?relay-factor=x", "", "Error parsing relay factor: strconv.Atoi: parsing \"x\": invalid syntax"),
        ("GET", "/v1/operator/keyring?relay-factor=6", "", "Invalid relay-factor: Relay factor must be in range: [0, 5]"),
        ("GET", "/v1/operator/keyring?local-only=maybe", "", "Error parsing local-only: strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        ("PUT", "/v1/operator/keyring?local-only=true", KEY, "Invalid use of local-only: local-only can only be set for list requests"),
    ];
    for (method, path, body, want) in cases {
        assert_eq!(
            send(&a, method, path, body).await,
            (400, want.to_string()),
            "{method} {path} {body}"
        );
    }
}

#[tokio::test]
async fn peering_without_peers() {
    let a = TestAgent::start().await;
    assert_eq!(a.get_json("/v1/peerings").await.1, json!([]));
    assert_eq!(
        send(&a, "GET", "/v1/peering/east", "").await,
        (404, "Peering not found for \"east\"".to_string())
    );
    assert_eq!(
        send(&a, "DELETE", "/v1/peering/east", "").await,
        (200, String::new())
    );
    assert_eq!(
        send(&a, "GET", "/v1/peering/", "").await,
        (400, "Must specify a name to fetch.".to_string())
    );
    assert_eq!(a.get_json("/v1/imported-services").await.1, json!([]));
}

#[tokio::test]
async fn exported_services_resolve_the_config_entry() {
    let a = TestAgent::start().await;
    assert_eq!(a.get_json("/v1/exported-services").await.1, json!([]));
    for name in ["web", "db"] {
        a.put_ok(
            "/v1/catalog/register",
            json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": name}}).to_string(),
        )
        .await;
    }
    // A wildcard exports typical services only, as Consul's `serviceNamesOfKindTxn`.
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {
            "Kind": "connect-proxy", "Service": "web-sidecar-proxy", "Port": 21000,
            "Proxy": {"DestinationServiceName": "web"}}})
        .to_string(),
    )
    .await;
    a.put_ok(
        "/v1/config",
        json!({"Kind": "exported-services", "Name": "default", "Services": [
            {"Name": "web", "Consumers": [{"Peer": "west"}, {"Peer": "east"}]},
            {"Name": "*", "Consumers": [{"Peer": "north"}]},
        ]})
        .to_string(),
    )
    .await;
    let (index, got) = a.get_json("/v1/exported-services").await;
    assert!(index > 0);
    assert_eq!(
        got,
        json!([
            {"Service": "db", "Consumers": {"Peers": ["north"]}},
            {"Service": "web", "Consumers": {"Peers": ["east", "north", "west"]}},
        ])
    );
}

#[tokio::test]
async fn usage_counts_the_catalog() {
    let a = TestAgent::start().await;
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "web1", "Service": "web"}})
            .to_string(),
    )
    .await;
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "web2", "Service": "web"}})
            .to_string(),
    )
    .await;
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n2", "Address": "10.0.0.2", "Service": {
            "Kind": "connect-proxy", "Service": "web-proxy",
            "Proxy": {"DestinationServiceName": "web"}, "Port": 21000}})
        .to_string(),
    )
    .await;
    let (index, body) = a.get_json("/v1/operator/usage").await;
    assert!(index > 0);
    let nodes = a
        .get_json("/v1/catalog/nodes")
        .await
        .1
        .as_array()
        .unwrap()
        .len() as u64;
    let dc1: &Value = &body["Usage"]["dc1"];
    // `web` and `web-proxy`: names, not instances.
    assert_eq!(dc1["Services"], 2, "{body}");
    assert_eq!(dc1["ServiceInstances"], 3);
    assert_eq!(dc1["ConnectServiceInstances"]["connect-proxy"], 1);
    assert_eq!(dc1["ConnectServiceInstances"]["mesh-gateway"], 0);
    assert_eq!(dc1["BillableServiceInstances"], 2);
    assert_eq!(dc1["Nodes"], nodes);
}

#[tokio::test]
async fn agent_version_and_host() {
    let a = TestAgent::start().await;
    let (_, version) = a.get_json("/v1/agent/version").await;
    assert_eq!(version["HumanVersion"], "1.22.0");
    assert!(version.get("SHA").is_some() && version.get("BuildDate").is_some());
    let (_, host) = a.get_json("/v1/agent/host").await;
    assert!(host["Memory"]["total"].as_u64().unwrap() > 0, "{host}");
    assert!(!host["CPU"].as_array().unwrap().is_empty());
    assert!(host["Host"]["uptime"].as_u64().is_some());
    assert!(host["Disk"]["total"].as_u64().unwrap() > 0);
    assert_eq!(host["Errors"], json!([]));
}

#[tokio::test]
async fn utilization_is_enterprise_only() {
    let a = TestAgent::start().await;
    assert_eq!(
        send(&a, "GET", "/v1/operator/utilization", "").await,
        (
            404,
            "operator utilization requires Consul Enterprise".to_string()
        )
    );
}

#[tokio::test]
async fn acl_authorize_answers_each_request_for_the_callers_token() {
    use crate::acl_enforcement::{acl_agent, ROOT};
    let (a, _cfg) = acl_agent().await;
    let ask = |token: &'static str, body: &'static str| {
        let req = a
            .http
            .post(a.url("/v1/internal/acl/authorize"))
            .header("X-Consul-Token", token)
            .body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let batch = r#"[{"Resource":"operator","Access":"write"},
                    {"Resource":"key","Segment":"app/x","Access":"LIST"},
                    {"Resource":"service","Segment":"web","Access":"read"}]"#;
    let (status, text) = ask(ROOT, batch).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([
            {"Resource": "operator", "Access": "write", "Allow": true},
            {"Resource": "key", "Segment": "app/x", "Access": "LIST", "Allow": true},
            {"Resource": "service", "Segment": "web", "Access": "read", "Allow": true},
        ])
    );
    // The anonymous token under default deny may do none of it.
    let (status, text) = ask("", batch).await;
    assert_eq!(status, 200);
    let allowed: Vec<Value> = serde_json::from_str::<Vec<Value>>(&text)
        .unwrap()
        .into_iter()
        .map(|a| a["Allow"].clone())
        .collect();
    assert_eq!(allowed, [json!(false), json!(false), json!(false)]);
    assert_eq!(ask(ROOT, "[]").await, (200, "[]".to_string()));
    assert_eq!(
        ask(ROOT, r#"[{"Resource":"bogus","Access":"read"}]"#).await,
        (400, "Invalid ACL resource requested: \"bogus\"".to_string())
    );
    assert_eq!(
        ask(ROOT, r#"[{"Resource":"operator","Access":"list"}]"#).await,
        (
            400,
            "Invalid access level for operator resource: list".to_string()
        )
    );
    let many = format!(
        "[{}]",
        vec![r#"{"Resource":"acl","Access":"read"}"#; 65].join(",")
    );
    let resp = a
        .http
        .post(a.url("/v1/internal/acl/authorize"))
        .header("X-Consul-Token", ROOT)
        .body(many)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "Refusing to process more than 64 authorizations at once"
    );
}

#[tokio::test]
async fn metrics_stream_sends_a_summary_each_interval() {
    let a = TestAgent::start().await;
    let mut resp = a.get("/v1/agent/metrics/stream").await;
    assert_eq!(resp.status(), 200);
    // The first summary closes the first 10-second interval.
    let first = tokio::time::timeout(std::time::Duration::from_secs(15), resp.chunk())
        .await
        .expect("a summary within an interval")
        .unwrap()
        .expect("a chunk");
    let line = std::str::from_utf8(&first).unwrap();
    assert!(line.ends_with('\n'), "{line}");
    let summary: Value = serde_json::from_str(line.trim_end()).unwrap();
    for key in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(summary.get(key).is_some(), "{key} missing: {summary}");
    }
}
