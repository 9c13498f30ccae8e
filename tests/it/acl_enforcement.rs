//! ACL enforcement on every endpoint, with `default_policy = "deny"`: the route matrix (every
//! route the router knows, called with no token, an unknown token, a limited token and the
//! management token) and focused tests of the rights Consul requires, list filtering with
//! `X-Consul-Results-Filtered-By-ACLs`, and where the caller's token comes from.

use crate::common::TestAgent;
use legate::http::AclRule;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

pub(crate) const ROOT: &str = "6b8a2c3e-1111-4222-8333-944455556666";
const UNKNOWN: &str = "00000000-dead-4bad-8bad-000000000000";
/// In the name of everything the seeded data holds: a 2xx body for a caller without rights
/// on it must not contain it.
const MARKER: &str = "sekrit";
const NODE: &str = "sekrit-agent";

/// An agent named `NODE` with Connect and ACLs on (default deny) and `ROOT` as its
/// management token.
pub(crate) async fn acl_agent() -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acl.json");
    let acl = json!({
        "connect": {"enabled": true},
        "acl": {
            "enabled": true,
            "default_policy": "deny",
            "tokens": {"initial_management": ROOT},
        },
    });
    std::fs::write(&cfg, acl.to_string()).unwrap();
    let a = TestAgent::start_with(move |f| {
        f.config_file = vec![cfg];
        f.node = Some(NODE.into());
    })
    .await;
    (a, dir)
}

struct Answer {
    status: u16,
    filtered: bool,
    body: String,
}

async fn call(a: &TestAgent, method: Method, path: &str, token: &str, body: &str) -> Answer {
    let mut req = a
        .http
        .request(method, a.url(path))
        .timeout(Duration::from_secs(3));
    if !token.is_empty() {
        req = req.header("X-Consul-Token", token);
    }
    if !body.is_empty() {
        req = req.body(body.to_string());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let filtered = resp
                .headers()
                .get("X-Consul-Results-Filtered-By-ACLs")
                .is_some_and(|v| v == "true");
            Answer {
                status,
                filtered,
                body: resp.text().await.unwrap_or_default(),
            }
        }
        // A streaming endpoint (monitor) that was allowed keeps the connection open.
        Err(e) if e.is_timeout() => Answer {
            status: 200,
            filtered: false,
            body: String::new(),
        },
        Err(e) => panic!("{path}: {e}"),
    }
}

/// Management-token JSON call asserting a 200.
async fn root(a: &TestAgent, method: Method, path: &str, body: Value) -> Value {
    let got = call(a, method, path, ROOT, &body.to_string()).await;
    assert_eq!(got.status, 200, "{path}: {}", got.body);
    serde_json::from_str(&got.body).unwrap_or(Value::Null)
}

/// A token with the given rules; returns its secret.
async fn token_with(a: &TestAgent, name: &str, rules: &str) -> String {
    root(
        a,
        Method::PUT,
        "/v1/acl/policy",
        json!({"Name": name, "Rules": rules}),
    )
    .await;
    let token = root(
        a,
        Method::PUT,
        "/v1/acl/token",
        json!({"Policies": [{"Name": name}]}),
    )
    .await;
    token["SecretID"].as_str().unwrap().to_string()
}

/// Data to leak: a key, a catalog node with a service and check, an agent service with a TTL
/// check, a session, an event, a config entry, an intention and a coordinate, all named with
/// `MARKER`, and a prepared query. Returns the session's, the intention's and the query's IDs.
async fn seed(a: &TestAgent) -> (String, String, String) {
    root(a, Method::PUT, "/v1/kv/sekrit/key", json!("v")).await;
    root(
        a,
        Method::PUT,
        "/v1/catalog/register",
        json!({"Node": "sekrit-node", "Address": "10.0.0.9",
               "Service": {"ID": "sekrit-web1", "Service": "sekrit-web", "Port": 80},
               "Checks": [{"CheckID": "sekrit-check", "Name": "sekrit-check",
                           "ServiceID": "sekrit-web1", "Status": "passing"}]}),
    )
    .await;
    root(
        a,
        Method::PUT,
        "/v1/agent/service/register",
        json!({"ID": "sekrit-api", "Name": "sekrit-api", "Port": 81,
               "Check": {"CheckID": "sekrit-ttl", "TTL": "60s"}}),
    )
    .await;
    let session = root(
        a,
        Method::PUT,
        "/v1/session/create",
        json!({"Name": "sekrit-session"}),
    )
    .await["ID"]
        .as_str()
        .unwrap()
        .to_string();
    root(a, Method::PUT, "/v1/event/fire/sekrit-event", json!(null)).await;
    root(
        a,
        Method::PUT,
        "/v1/config",
        json!({"Kind": "service-defaults", "Name": "sekrit-web", "Protocol": "http"}),
    )
    .await;
    let intention = root(
        a,
        Method::POST,
        "/v1/connect/intentions",
        json!({"SourceName": "sekrit-src", "DestinationName": "sekrit-web", "Action": "allow"}),
    )
    .await["ID"]
        .as_str()
        .unwrap()
        .to_string();
    root(
        a,
        Method::PUT,
        "/v1/coordinate/update",
        json!({"Node": "sekrit-node",
               "Coord": {"Vec": [0.1, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5,
                         "Adjustment": 0, "Height": 0.00001}}),
    )
    .await;
    let query = root(
        a,
        Method::POST,
        "/v1/query",
        json!({"Name": "sekrit-q", "Service": {"Service": "sekrit-web"}}),
    )
    .await["ID"]
        .as_str()
        .unwrap()
        .to_string();
    (session, intention, query)
}

/// One call per route and method (more where a route has distinct checks): route, method,
/// path and query, body. `{session}`, `{intention}` and `{query}` stand for the seeded IDs. The route
/// `/v1/agent/leave` comes last: with the management token it stops the agent.
#[rustfmt::skip]
const CALLS: &[(&str, &str, &str, &str)] = &[
    ("/v1/kv/", "GET", "/v1/kv/sekrit/key", ""),
    ("/v1/kv/", "GET", "/v1/kv/sekrit/?recurse", ""),
    ("/v1/kv/", "GET", "/v1/kv/?keys", ""),
    ("/v1/kv/", "PUT", "/v1/kv/sekrit/new", "x"),
    ("/v1/kv/", "DELETE", "/v1/kv/sekrit/?recurse", ""),
    ("/v1/txn", "PUT", "/v1/txn", r#"[{"KV":{"Verb":"set","Key":"sekrit/t","Value":"eA=="}}]"#),
    ("/v1/txn", "PUT", "/v1/txn", r#"[{"KV":{"Verb":"get","Key":"sekrit/key"}}]"#),
    ("/v1/snapshot", "GET", "/v1/snapshot", ""),
    ("/v1/snapshot", "PUT", "/v1/snapshot", "not a snapshot"),
    ("/v1/agent/self", "GET", "/v1/agent/self", ""),
    ("/v1/agent/services", "GET", "/v1/agent/services", ""),
    ("/v1/agent/service/register", "PUT", "/v1/agent/service/register", r#"{"Name":"sekrit-new"}"#),
    ("/v1/agent/service/deregister/", "PUT", "/v1/agent/service/deregister/sekrit-api", ""),
    ("/v1/agent/service/maintenance/", "PUT", "/v1/agent/service/maintenance/sekrit-api?enable=true", ""),
    ("/v1/agent/service/", "GET", "/v1/agent/service/sekrit-api", ""),
    ("/v1/agent/maintenance", "PUT", "/v1/agent/maintenance?enable=true", ""),
    ("/v1/agent/health/service/id/", "GET", "/v1/agent/health/service/id/sekrit-api", ""),
    ("/v1/agent/health/service/name/", "GET", "/v1/agent/health/service/name/sekrit-api", ""),
    ("/v1/agent/checks", "GET", "/v1/agent/checks", ""),
    ("/v1/agent/check/register", "PUT", "/v1/agent/check/register", r#"{"Name":"sekrit-c","TTL":"10s"}"#),
    ("/v1/agent/check/deregister/", "PUT", "/v1/agent/check/deregister/sekrit-ttl", ""),
    ("/v1/agent/check/pass/", "PUT", "/v1/agent/check/pass/sekrit-ttl", ""),
    ("/v1/agent/check/warn/", "PUT", "/v1/agent/check/warn/sekrit-ttl", ""),
    ("/v1/agent/check/fail/", "PUT", "/v1/agent/check/fail/sekrit-ttl", ""),
    ("/v1/agent/check/pass/", "GET", "/v1/agent/check/pass/sekrit-ttl", ""),
    ("/v1/agent/check/warn/", "GET", "/v1/agent/check/warn/sekrit-ttl", ""),
    ("/v1/agent/check/fail/", "GET", "/v1/agent/check/fail/sekrit-ttl", ""),
    ("/v1/agent/check/update/", "PUT", "/v1/agent/check/update/sekrit-ttl", r#"{"Status":"passing"}"#),
    ("/v1/session/create", "PUT", "/v1/session/create", ""),
    ("/v1/session/destroy/", "PUT", "/v1/session/destroy/{session}", ""),
    ("/v1/session/renew/", "PUT", "/v1/session/renew/{session}", ""),
    ("/v1/session/info/", "GET", "/v1/session/info/{session}", ""),
    ("/v1/session/node/", "GET", "/v1/session/node/sekrit-agent", ""),
    ("/v1/session/list", "GET", "/v1/session/list", ""),
    ("/v1/status/leader", "GET", "/v1/status/leader", ""),
    ("/v1/status/peers", "GET", "/v1/status/peers", ""),
    ("/v1/catalog/datacenters", "GET", "/v1/catalog/datacenters", ""),
    ("/v1/catalog/register", "PUT", "/v1/catalog/register", r#"{"Node":"sekrit-node","Address":"10.0.0.9","Service":{"Service":"sekrit-web2"}}"#),
    ("/v1/catalog/deregister", "PUT", "/v1/catalog/deregister", r#"{"Node":"sekrit-node"}"#),
    ("/v1/catalog/nodes", "GET", "/v1/catalog/nodes", ""),
    ("/v1/catalog/services", "GET", "/v1/catalog/services", ""),
    ("/v1/catalog/service/", "GET", "/v1/catalog/service/sekrit-web", ""),
    ("/v1/catalog/connect/", "GET", "/v1/catalog/connect/sekrit-web", ""),
    ("/v1/catalog/node/", "GET", "/v1/catalog/node/sekrit-node", ""),
    ("/v1/catalog/node-services/", "GET", "/v1/catalog/node-services/sekrit-node", ""),
    ("/v1/catalog/gateway-services/", "GET", "/v1/catalog/gateway-services/sekrit-gw", ""),
    ("/v1/health/node/", "GET", "/v1/health/node/sekrit-node", ""),
    ("/v1/health/checks/", "GET", "/v1/health/checks/sekrit-web", ""),
    ("/v1/health/service/", "GET", "/v1/health/service/sekrit-web", ""),
    ("/v1/health/connect/", "GET", "/v1/health/connect/sekrit-web", ""),
    ("/v1/health/state/", "GET", "/v1/health/state/any", ""),
    ("/v1/health/ingress/", "GET", "/v1/health/ingress/sekrit-web", ""),
    ("/v1/config", "PUT", "/v1/config", r#"{"Kind":"service-defaults","Name":"sekrit-web","Protocol":"grpc"}"#),
    ("/v1/config/", "GET", "/v1/config/service-defaults/sekrit-web", ""),
    ("/v1/config/", "GET", "/v1/config/service-defaults", ""),
    ("/v1/config/", "DELETE", "/v1/config/service-defaults/sekrit-web", ""),
    ("/v1/connect/intentions", "GET", "/v1/connect/intentions", ""),
    ("/v1/connect/intentions", "POST", "/v1/connect/intentions", r#"{"SourceName":"sekrit-x","DestinationName":"sekrit-web","Action":"deny"}"#),
    ("/v1/connect/intentions/", "GET", "/v1/connect/intentions/exact?source=sekrit-src&destination=sekrit-web", ""),
    ("/v1/connect/intentions/", "PUT", "/v1/connect/intentions/exact?source=sekrit-y&destination=sekrit-web", r#"{"Action":"deny"}"#),
    ("/v1/connect/intentions/", "GET", "/v1/connect/intentions/check?source=sekrit-src&destination=sekrit-web", ""),
    ("/v1/connect/intentions/", "GET", "/v1/connect/intentions/match?by=destination&name=sekrit-web", ""),
    ("/v1/connect/intentions/", "GET", "/v1/connect/intentions/{intention}", ""),
    ("/v1/connect/intentions/", "DELETE", "/v1/connect/intentions/{intention}", ""),
    ("/v1/agent/connect/authorize", "POST", "/v1/agent/connect/authorize", r#"{"Target":"sekrit-web","ClientCertURI":"spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/sekrit-src"}"#),
    ("/v1/agent/members", "GET", "/v1/agent/members", ""),
    ("/v1/agent/join/", "PUT", "/v1/agent/join/127.0.0.1:1", ""),
    ("/v1/agent/force-leave/", "PUT", "/v1/agent/force-leave/sekrit-node", ""),
    ("/v1/agent/reload", "PUT", "/v1/agent/reload", ""),
    ("/v1/agent/metrics", "GET", "/v1/agent/metrics", ""),
    ("/v1/agent/metrics/stream", "GET", "/v1/agent/metrics/stream", ""),
    ("/v1/agent/monitor", "GET", "/v1/agent/monitor", ""),
    ("/v1/agent/token/", "PUT", "/v1/agent/token/replication", r#"{"Token":"sekrit-token"}"#),
    ("/v1/event/fire/", "PUT", "/v1/event/fire/sekrit-event2", ""),
    ("/v1/event/list", "GET", "/v1/event/list", ""),
    ("/v1/coordinate/datacenters", "GET", "/v1/coordinate/datacenters", ""),
    ("/v1/coordinate/nodes", "GET", "/v1/coordinate/nodes", ""),
    ("/v1/coordinate/node/", "GET", "/v1/coordinate/node/sekrit-node", ""),
    ("/v1/coordinate/update", "PUT", "/v1/coordinate/update", r#"{"Node":"sekrit-node","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}"#),
    ("/v1/operator/raft/configuration", "GET", "/v1/operator/raft/configuration", ""),
    ("/v1/operator/raft/peer", "DELETE", "/v1/operator/raft/peer?id=nope", ""),
    ("/v1/operator/raft/transfer-leader", "POST", "/v1/operator/raft/transfer-leader", ""),
    ("/v1/operator/autopilot/configuration", "GET", "/v1/operator/autopilot/configuration", ""),
    ("/v1/operator/autopilot/configuration", "PUT", "/v1/operator/autopilot/configuration", r#"{"CleanupDeadServers":false}"#),
    ("/v1/operator/autopilot/health", "GET", "/v1/operator/autopilot/health", ""),
    ("/v1/operator/autopilot/state", "GET", "/v1/operator/autopilot/state", ""),
    ("/v1/connect/ca/roots", "GET", "/v1/connect/ca/roots", ""),
    ("/v1/connect/ca/configuration", "GET", "/v1/connect/ca/configuration", ""),
    ("/v1/connect/ca/configuration", "PUT", "/v1/connect/ca/configuration", r#"{"Provider":"consul","Config":{}}"#),
    ("/v1/agent/connect/ca/roots", "GET", "/v1/agent/connect/ca/roots", ""),
    ("/v1/agent/connect/ca/leaf/", "GET", "/v1/agent/connect/ca/leaf/sekrit-web", ""),
    ("/v1/acl/bootstrap", "PUT", "/v1/acl/bootstrap", ""),
    ("/v1/acl/replication", "GET", "/v1/acl/replication", ""),
    ("/v1/acl/token", "PUT", "/v1/acl/token", r#"{"Description":"sekrit-t"}"#),
    ("/v1/acl/token/self", "GET", "/v1/acl/token/self", ""),
    ("/v1/acl/token/", "GET", "/v1/acl/token/00000000-0000-0000-0000-000000000002", ""),
    ("/v1/acl/token/", "PUT", "/v1/acl/token/00000000-0000-0000-0000-000000000002", r#"{"Description":"x"}"#),
    ("/v1/acl/token/", "DELETE", "/v1/acl/token/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/tokens", "GET", "/v1/acl/tokens", ""),
    ("/v1/acl/policy", "PUT", "/v1/acl/policy", r#"{"Name":"sekrit-p"}"#),
    ("/v1/acl/policy/", "GET", "/v1/acl/policy/name/global-management", ""),
    ("/v1/acl/policy/", "PUT", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", r#"{"Name":"x"}"#),
    ("/v1/acl/policy/", "DELETE", "/v1/acl/policy/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/policies", "GET", "/v1/acl/policies", ""),
    ("/v1/acl/role", "PUT", "/v1/acl/role", r#"{"Name":"sekrit-r"}"#),
    ("/v1/acl/role/", "GET", "/v1/acl/role/name/sekrit-r", ""),
    ("/v1/acl/role/", "PUT", "/v1/acl/role/00000000-0000-0000-0000-000000000009", r#"{"Name":"x"}"#),
    ("/v1/acl/role/", "DELETE", "/v1/acl/role/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/roles", "GET", "/v1/acl/roles", ""),
    ("/v1/acl/templated-policies", "GET", "/v1/acl/templated-policies", ""),
    ("/v1/acl/templated-policy/", "GET", "/v1/acl/templated-policy/name/builtin/service", ""),
    ("/v1/acl/templated-policy/", "POST", "/v1/acl/templated-policy/preview/builtin/service", r#"{"Name":"sekrit-web"}"#),
    ("/v1/acl/templated-policy/", "PUT", "/v1/acl/templated-policy/preview/builtin/service", r#"{"Name":"sekrit-web"}"#),
    ("/v1/acl/create", "PUT", "/v1/acl/create", r#"{"Name":"sekrit-legacy"}"#),
    ("/v1/acl/update", "PUT", "/v1/acl/update", r#"{"ID":"sekrit-legacy","Name":"x"}"#),
    ("/v1/acl/destroy/", "PUT", "/v1/acl/destroy/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/info/", "GET", "/v1/acl/info/00000000-0000-0000-0000-000000000002", ""),
    ("/v1/acl/clone/", "PUT", "/v1/acl/clone/00000000-0000-0000-0000-000000000002", ""),
    ("/v1/acl/list", "GET", "/v1/acl/list", ""),
    ("/v1/query", "GET", "/v1/query", ""),
    ("/v1/query", "POST", "/v1/query", r#"{"Name":"sekrit-q2","Service":{"Service":"sekrit-web"}}"#),
    // Executing is open to all, its results filtered (prepared_query's own ACL test): reading
    // and explaining need `query:read`.
    ("/v1/query/", "GET", "/v1/query/{query}", ""),
    ("/v1/query/", "GET", "/v1/query/{query}/explain", ""),
    ("/v1/query/", "PUT", "/v1/query/00000000-0000-0000-0000-000000000009", r#"{"Name":"x","Service":{"Service":"x"}}"#),
    ("/v1/query/", "DELETE", "/v1/query/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/discovery-chain/", "GET", "/v1/discovery-chain/sekrit-web", ""),
    ("/v1/discovery-chain/", "POST", "/v1/discovery-chain/sekrit-web", r#"{"OverrideConnectTimeout":"7s"}"#),
    ("/v1/acl/auth-method", "PUT", "/v1/acl/auth-method", r#"{"Name":"sekrit-m2","Type":"kubernetes","Config":{}}"#),
    ("/v1/acl/auth-method/", "GET", "/v1/acl/auth-method/sekrit-m", ""),
    ("/v1/acl/auth-method/", "PUT", "/v1/acl/auth-method/sekrit-m", r#"{"Name":"sekrit-m","Type":"kubernetes","Description":"x"}"#),
    ("/v1/acl/auth-method/", "DELETE", "/v1/acl/auth-method/nope", ""),
    ("/v1/acl/auth-methods", "GET", "/v1/acl/auth-methods", ""),
    ("/v1/acl/binding-rule", "PUT", "/v1/acl/binding-rule", r#"{"AuthMethod":"sekrit-m","BindType":"service","BindName":"x"}"#),
    ("/v1/acl/binding-rule/", "GET", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/binding-rule/", "PUT", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", r#"{"AuthMethod":"sekrit-m","BindType":"service","BindName":"x"}"#),
    ("/v1/acl/binding-rule/", "DELETE", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", ""),
    ("/v1/acl/binding-rules", "GET", "/v1/acl/binding-rules", ""),
    ("/v1/acl/login", "POST", "/v1/acl/login", r#"{"AuthMethod":"","BearerToken":"x"}"#),
    ("/v1/acl/logout", "POST", "/v1/acl/logout", ""),
    ("/v1/internal/ui/services", "GET", "/v1/internal/ui/services", ""),
    ("/v1/internal/ui/exported-services", "GET", "/v1/internal/ui/exported-services", ""),
    ("/v1/internal/ui/nodes", "GET", "/v1/internal/ui/nodes", ""),
    ("/v1/internal/ui/node/", "GET", "/v1/internal/ui/node/sekrit-node", ""),
    ("/v1/internal/ui/catalog-overview", "GET", "/v1/internal/ui/catalog-overview", ""),
    ("/v1/internal/ui/gateway-services-nodes/", "GET", "/v1/internal/ui/gateway-services-nodes/sekrit-gw", ""),
    ("/v1/internal/ui/gateway-intentions/", "GET", "/v1/internal/ui/gateway-intentions/sekrit-gw", ""),
    ("/v1/internal/ui/service-topology/", "GET", "/v1/internal/ui/service-topology/sekrit-web", ""),
    ("/v1/internal/ui/metrics-proxy/", "GET", "/v1/internal/ui/metrics-proxy/x", ""),
    ("/v1/agent/version", "GET", "/v1/agent/version", ""),
    ("/v1/agent/host", "GET", "/v1/agent/host", ""),
    ("/v1/operator/keyring", "GET", "/v1/operator/keyring", ""),
    ("/v1/operator/keyring", "POST", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#),
    ("/v1/operator/keyring", "PUT", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#),
    ("/v1/operator/keyring", "DELETE", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#),
    ("/v1/operator/usage", "GET", "/v1/operator/usage", ""),
    ("/v1/operator/utilization", "GET", "/v1/operator/utilization", ""),
    ("/v1/peerings", "GET", "/v1/peerings", ""),
    ("/v1/peering/", "GET", "/v1/peering/sekrit-peer", ""),
    ("/v1/peering/", "DELETE", "/v1/peering/sekrit-peer", ""),
    ("/v1/peering/token", "POST", "/v1/peering/token", r#"{"PeerName":"sekrit-peer"}"#),
    ("/v1/peering/establish", "POST", "/v1/peering/establish", r#"{"PeerName":"sekrit-peer","PeeringToken":"e30="}"#),
    ("/v1/internal/federation-states", "GET", "/v1/internal/federation-states", ""),
    ("/v1/internal/federation-states/mesh-gateways", "GET", "/v1/internal/federation-states/mesh-gateways", ""),
    ("/v1/internal/federation-state/", "GET", "/v1/internal/federation-state/dc1", ""),
    ("/v1/internal/service-virtual-ip", "PUT", "/v1/internal/service-virtual-ip", r#"{"Service":"sekrit-web","ManualVIPs":["10.1.1.1"]}"#),
    ("/v1/exported-services", "GET", "/v1/exported-services", ""),
    ("/v1/imported-services", "GET", "/v1/imported-services", ""),
    ("/v1/internal/acl/authorize", "POST", "/v1/internal/acl/authorize", r#"[{"Resource":"key","Segment":"public/key","Access":"read"}]"#),
    ("/v1/agent/leave", "PUT", "/v1/agent/leave", ""),
];

fn store_index(a: &TestAgent) -> u64 {
    a.store().read().unwrap().global_index().unwrap()
}

/// Whether the answer is Consul's refusal of a token's rights (not a refusal of the input).
fn denied(got: &Answer) -> bool {
    got.status == 403
        && (got.body == "ACL not found" || got.body.starts_with("Permission denied: token with"))
}

#[tokio::test]
async fn every_route_is_enforced_for_every_kind_of_caller() {
    // Every route (and each of its methods) has a call below, and every call names a route.
    let routes: Vec<_> = legate::http::route_table().collect();
    let mut uncovered = Vec::new();
    for (path, _, methods, _) in &routes {
        for m in methods.iter() {
            if !CALLS
                .iter()
                .any(|(r, cm, _, _)| r == path && *cm == m.as_str())
            {
                uncovered.push(format!("{m} {path}"));
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "routes without a matrix call: {uncovered:?}"
    );
    let known: BTreeSet<&str> = routes.iter().map(|r| r.0).collect();
    for (route, ..) in CALLS {
        assert!(known.contains(route), "{route} is not a route");
    }

    let (a, _cfg) = acl_agent().await;
    let (session, intention, query) = seed(&a).await;
    let limited = token_with(
        &a,
        "limited",
        r#"key_prefix "public/" { policy = "write" }
           service_prefix "public" { policy = "write" }
           node_prefix "public" { policy = "write" }
           session_prefix "public" { policy = "write" }
           event_prefix "public" { policy = "write" }"#,
    )
    .await;
    let rule_of = |route: &str| routes.iter().find(|r| r.0 == route).unwrap().3;
    let expand = |p: &str| {
        p.replace("{session}", &session)
            .replace("{intention}", &intention)
            .replace("{query}", &query)
    };

    for (route, method, path, body) in CALLS {
        let method: Method = method.parse().unwrap();
        let path = expand(path);
        let rule = rule_of(route);
        for (who, token) in [
            ("anonymous", ""),
            ("unknown", UNKNOWN),
            ("limited", &limited),
        ] {
            let before = store_index(&a);
            let got = call(&a, method.clone(), &path, token, body).await;
            let what = format!("{method} {path} as {who}: {} {}", got.status, got.body);
            if rule == AclRule::Open {
                assert!(!denied(&got), "{what}");
                continue;
            }
            if who == "unknown" {
                assert_eq!(
                    (got.status, got.body.as_str()),
                    (403, "ACL not found"),
                    "{what}"
                );
            }
            if matches!(rule, AclRule::Fixed(..) | AclRule::ByMethod(_)) {
                assert!(denied(&got), "{what}");
            }
            if (200..300).contains(&got.status) {
                assert!(!got.body.contains(MARKER), "leak: {what}");
            }
            assert_eq!(store_index(&a), before, "written: {what}");
        }
    }

    // The management token may do everything (what fails, fails for other reasons), and sees
    // the data the others didn't: the leak check above had something to find.
    let mut revealing = 0;
    for (_, method, path, body) in CALLS {
        let got = call(&a, method.parse().unwrap(), &expand(path), ROOT, body).await;
        assert!(!denied(&got), "{method} {path} as management: {}", got.body);
        if (200..300).contains(&got.status) && got.body.contains(MARKER) {
            revealing += 1;
        }
    }
    assert!(
        revealing >= 15,
        "only {revealing} answers showed the seeded data"
    );
}

#[tokio::test]
async fn kv_rights_follow_key_prefixes() {
    let (a, _cfg) = acl_agent().await;
    for key in ["app/a", "app/b", "app/private/c", "other/d"] {
        root(&a, Method::PUT, &format!("/v1/kv/{key}"), json!("v")).await;
    }
    let token = token_with(
        &a,
        "app",
        r#"key_prefix "app/" { policy = "list" }
           key_prefix "app/private/" { policy = "deny" }
           key "app/b" { policy = "write" }"#,
    )
    .await;
    assert_eq!(
        call(&a, Method::GET, "/v1/kv/app/a", &token, "")
            .await
            .status,
        200
    );
    let got = call(&a, Method::GET, "/v1/kv/other/d", &token, "").await;
    assert_eq!(got.status, 403);
    assert!(
        got.body
            .contains("lacks permission 'key:read' on \"other/d\""),
        "{}",
        got.body
    );

    // A listing shows only readable keys, saying so.
    let got = call(&a, Method::GET, "/v1/kv/app/?keys", &token, "").await;
    assert_eq!(got.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&got.body).unwrap(),
        json!(["app/a", "app/b"])
    );
    assert!(got.filtered);
    let got = call(&a, Method::GET, "/v1/kv/app/?recurse", &token, "").await;
    let keys: Vec<Value> = serde_json::from_str::<Vec<Value>>(&got.body)
        .unwrap()
        .into_iter()
        .map(|e| e["Key"].clone())
        .collect();
    assert_eq!(keys, [json!("app/a"), json!("app/b")]);
    assert!(got.filtered);
    // Listing the root is not refused (Consul checks `key:list` only with
    // `acl.enable_key_list_policy`): it shows what the token may read.
    let got = call(&a, Method::GET, "/v1/kv/?keys", &token, "").await;
    assert_eq!(
        (
            got.status,
            serde_json::from_str::<Value>(&got.body).unwrap()
        ),
        (200, json!(["app/a", "app/b"]))
    );

    // Writes: only the writable key; a tree delete needs write on everything under it.
    assert_eq!(
        call(&a, Method::PUT, "/v1/kv/app/b", &token, "x")
            .await
            .status,
        200
    );
    let got = call(&a, Method::PUT, "/v1/kv/app/a", &token, "x").await;
    assert!(
        got.body
            .contains("lacks permission 'key:write' on \"app/a\""),
        "{}",
        got.body
    );
    assert_eq!(
        call(&a, Method::DELETE, "/v1/kv/app/b", &token, "")
            .await
            .status,
        200
    );
    let writer = token_with(
        &a,
        "writer",
        r#"key_prefix "app/" { policy = "write" }
           key_prefix "app/private/" { policy = "read" }"#,
    )
    .await;
    let got = call(&a, Method::DELETE, "/v1/kv/app/?recurse", &writer, "").await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert_eq!(
        root(&a, Method::GET, "/v1/kv/app/a", json!(null)).await[0]["Key"],
        "app/a"
    );
}

/// Two catalog nodes with a passing service each: `web` on `n-pub`, `db` on `n-priv`.
async fn register_public_and_private(a: &TestAgent) {
    for (node, service) in [("n-pub", "web"), ("n-priv", "db")] {
        root(
            a,
            Method::PUT,
            "/v1/catalog/register",
            json!({"Node": node, "Address": "10.0.0.1",
                   "Service": {"Service": service, "Port": 80},
                   "Check": {"CheckID": format!("{service}-up"), "Name": "up",
                             "ServiceID": service, "Status": "passing"}}),
        )
        .await;
    }
}

#[tokio::test]
async fn catalog_and_health_reads_are_filtered_with_the_header() {
    let (a, _cfg) = acl_agent().await;
    register_public_and_private(&a).await;
    let token = token_with(
        &a,
        "web-reader",
        r#"node "n-pub" { policy = "read" }
           service "web" { policy = "read" }"#,
    )
    .await;
    let names = |body: &str, field: &str| -> Vec<String> {
        serde_json::from_str::<Vec<Value>>(body)
            .unwrap()
            .iter()
            .map(|v| v.pointer(field).unwrap().as_str().unwrap().to_string())
            .collect()
    };
    let got = call(&a, Method::GET, "/v1/catalog/nodes", &token, "").await;
    assert_eq!(names(&got.body, "/Node"), ["n-pub"]);
    assert!(got.filtered);
    let got = call(&a, Method::GET, "/v1/catalog/services", &token, "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&got.body).unwrap(),
        json!({"web": []})
    );
    assert!(got.filtered);
    let got = call(&a, Method::GET, "/v1/health/state/any", &token, "").await;
    assert_eq!(names(&got.body, "/CheckID"), ["web-up"]);
    assert!(got.filtered);
    let got = call(&a, Method::GET, "/v1/health/service/db", &token, "").await;
    assert_eq!(
        (got.status, got.body.as_str(), got.filtered),
        (200, "[]", true)
    );
    let got = call(&a, Method::GET, "/v1/health/service/web", &token, "").await;
    assert_eq!(names(&got.body, "/Service/Service"), ["web"]);
    assert!(!got.filtered, "nothing was removed");
    let got = call(&a, Method::GET, "/v1/catalog/node/n-priv", &token, "").await;
    assert_eq!((got.body.as_str(), got.filtered), ("null", true));

    // The anonymous caller gets the same filtering, but is not told about it.
    let got = call(&a, Method::GET, "/v1/catalog/nodes", "", "").await;
    assert_eq!((got.body.as_str(), got.filtered), ("[]", false));
}

/// Consul filters by ACL after `?filter`: the header tells of nothing the expression had left
/// out anyway, and a service list with a filter needs read on the service name only.
#[tokio::test]
async fn acls_filter_after_the_expression() {
    let (a, _cfg) = acl_agent().await;
    register_public_and_private(&a).await;
    for destination in ["web", "db"] {
        root(
            &a,
            Method::PUT,
            &format!("/v1/connect/intentions/exact?source=api&destination={destination}"),
            json!({"Action": "allow"}),
        )
        .await;
    }
    let token = token_with(
        &a,
        "web-only",
        r#"node "n-pub" { policy = "read" }
           service "web" {
             policy = "read"
             intentions = "read"
           }
           service "api" { policy = "read" }"#,
    )
    .await;
    let service_only = token_with(&a, "web-name", r#"service "web" { policy = "read" }"#).await;
    let cases = [
        (
            "/v1/catalog/nodes?filter=Node%20%3D%3D%20%22n-pub%22",
            &token,
        ),
        (
            "/v1/catalog/service/db?filter=Node%20%3D%3D%20%22n-pub%22",
            &token,
        ),
        (
            "/v1/health/state/any?filter=Node%20%3D%3D%20%22n-pub%22",
            &token,
        ),
        (
            "/v1/health/service/db?filter=Node.Node%20%3D%3D%20%22n-pub%22",
            &token,
        ),
        (
            "/v1/connect/intentions?filter=DestinationName%20%3D%3D%20%22web%22",
            &token,
        ),
        (
            "/v1/catalog/services?filter=ServiceName%20%3D%3D%20%22web%22",
            &service_only,
        ),
    ];
    for (path, token) in cases {
        let got = call(&a, Method::GET, path, token, "").await;
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert!(!got.filtered, "{path}: the expression removed the rest");
    }
    let got = call(&a, Method::GET, cases[5].0, &service_only, "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&got.body).unwrap(),
        json!({"web": []}),
        "service read is enough for the list, as without a filter"
    );
    let got = call(&a, Method::GET, "/v1/connect/intentions", &token, "").await;
    assert!(
        got.filtered,
        "without the expression, ACLs removed db's intention"
    );
}

#[tokio::test]
async fn service_registration_and_connect_need_service_write() {
    let (a, _cfg) = acl_agent().await;
    let token = token_with(&a, "web-writer", r#"service "web" { policy = "write" }"#).await;
    let register = |name: &str| json!({"Name": name, "Port": 80}).to_string();
    let sidecar = |name: &str| {
        json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {"Name": name}}})
            .to_string()
    };
    let authorize = |target: &str| {
        json!({"Target": target,
               "ClientCertURI": "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/api"})
        .to_string()
    };
    // Registration (of a sidecar too), leaf certificates and authorize calls need
    // service:write on the service (the target); "db" and "web-sidecar-proxy" are not the
    // token's.
    let (register_path, leaf, authorize_path) = (
        "/v1/agent/service/register",
        "/v1/agent/connect/ca/leaf/",
        "/v1/agent/connect/authorize",
    );
    #[rustfmt::skip]
    let cases = [
        (Method::PUT, register_path.to_string(), register("web"), 200),
        (Method::PUT, register_path.to_string(), register("db"), 403),
        (Method::PUT, register_path.to_string(), sidecar("web-sidecar-proxy"), 403),
        (Method::PUT, register_path.to_string(), sidecar("web"), 200),
        (Method::GET, format!("{leaf}web"), String::new(), 200),
        (Method::GET, format!("{leaf}db"), String::new(), 403),
        (Method::POST, authorize_path.to_string(), authorize("web"), 200),
        (Method::POST, authorize_path.to_string(), authorize("db"), 403),
    ];
    for (method, path, body, status) in cases {
        let got = call(&a, method, &path, &token, &body).await;
        assert_eq!(got.status, status, "{path} {body}: {}", got.body);
        if status == 403 {
            assert!(
                got.body
                    .contains("lacks permission 'service:write' on \"db\"")
                    || got.body.contains("on \"web-sidecar-proxy\""),
                "{}",
                got.body
            );
        }
    }

    // Intentions are read and written with intention rights on their destination.
    let reader = token_with(
        &a,
        "intentions",
        r#"service "web" { policy = "read" intentions = "write" }"#,
    )
    .await;
    let intention = |dest: &str| {
        json!({"SourceName": "api", "DestinationName": dest, "Action": "allow"}).to_string()
    };
    let got = call(
        &a,
        Method::POST,
        "/v1/connect/intentions",
        &reader,
        &intention("web"),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let got = call(
        &a,
        Method::POST,
        "/v1/connect/intentions",
        &reader,
        &intention("db"),
    )
    .await;
    assert!(
        got.body
            .contains("lacks permission 'intention:write' on \"db\""),
        "{}",
        got.body
    );
    root(
        &a,
        Method::POST,
        "/v1/connect/intentions",
        json!({"SourceName": "api", "DestinationName": "db", "Action": "deny"}),
    )
    .await;
    let got = call(&a, Method::GET, "/v1/connect/intentions", &reader, "").await;
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&got.body).unwrap().len(),
        1,
        "{}",
        got.body
    );
    assert!(got.filtered);
}

#[tokio::test]
async fn tokens_come_from_the_request_then_the_agent_default() {
    let (a, _cfg) = acl_agent().await;
    root(&a, Method::PUT, "/v1/kv/k", json!("v")).await;
    let reader = token_with(&a, "reader", r#"key "k" { policy = "read" }"#).await;
    let status =
        |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
    let url = a.url("/v1/kv/k");
    assert_eq!(status(a.http.get(&url)).await, 403);
    assert_eq!(
        status(a.http.get(&url).header("X-Consul-Token", &reader)).await,
        200
    );
    let bearer = format!("Bearer {reader}");
    assert_eq!(
        status(a.http.get(&url).header("Authorization", &bearer)).await,
        200
    );
    assert_eq!(
        status(a.http.get(format!("{url}?token={reader}"))).await,
        200
    );
    // `?token=` wins over the headers, as in Consul.
    let with_unknown = a
        .http
        .get(format!("{url}?token={UNKNOWN}"))
        .header("X-Consul-Token", &reader);
    assert_eq!(status(with_unknown).await, 403);

    // The agent's default token stands in for a request without one.
    root(
        &a,
        Method::PUT,
        "/v1/agent/token/default",
        json!({"Token": reader}),
    )
    .await;
    assert_eq!(status(a.http.get(&url)).await, 200);

    // The agent recovery token set through the API acts on this agent.
    let recovery = "0f0f0f0f-1111-4222-8333-944455556666";
    assert_eq!(
        status(
            a.http
                .get(a.url("/v1/agent/self"))
                .header("X-Consul-Token", recovery)
        )
        .await,
        403
    );
    root(
        &a,
        Method::PUT,
        "/v1/agent/token/agent_recovery",
        json!({"Token": recovery}),
    )
    .await;
    assert_eq!(
        status(
            a.http
                .get(a.url("/v1/agent/self"))
                .header("X-Consul-Token", recovery)
        )
        .await,
        200
    );
}

#[tokio::test]
async fn a_changed_policy_takes_effect_on_the_next_request() {
    let (a, _cfg) = acl_agent().await;
    root(&a, Method::PUT, "/v1/kv/k", json!("v")).await;
    let token = token_with(&a, "flip", r#"key "k" { policy = "read" }"#).await;
    assert_eq!(
        call(&a, Method::GET, "/v1/kv/k", &token, "").await.status,
        200
    );
    let policy = root(&a, Method::GET, "/v1/acl/policy/name/flip", json!(null)).await;
    let id = policy["ID"].as_str().unwrap();
    root(
        &a,
        Method::PUT,
        &format!("/v1/acl/policy/{id}"),
        json!({"Name": "flip", "Rules": r#"key "k" { policy = "deny" }"#}),
    )
    .await;
    assert_eq!(
        call(&a, Method::GET, "/v1/kv/k", &token, "").await.status,
        403
    );
}

#[tokio::test]
async fn with_the_key_list_policy_a_listing_needs_key_list_on_its_prefix() {
    let acl = format!(
        "acl {{\n enabled = true\n default_policy = \"deny\"\n enable_key_list_policy = true\n tokens {{\n initial_management = \"{ROOT}\"\n }}\n}}"
    );
    let a = TestAgent::start_with(|f| f.hcl = vec![acl]).await;
    root(&a, Method::PUT, "/v1/kv/app/a", json!("v")).await;
    let reader = token_with(&a, "reader", r#"key_prefix "app/" { policy = "read" }"#).await;
    let lister = token_with(&a, "lister", r#"key_prefix "app/" { policy = "list" }"#).await;
    for path in ["/v1/kv/app/?keys", "/v1/kv/app/?recurse"] {
        assert_eq!(call(&a, Method::GET, path, &reader, "").await.status, 403);
        assert_eq!(call(&a, Method::GET, path, &lister, "").await.status, 200);
    }
    assert_eq!(
        call(&a, Method::GET, "/v1/kv/app/a", &reader, "")
            .await
            .status,
        200
    );
}

/// With no intention matching, authorize and check fall back to what the caller's token says
/// (Consul's `IntentionDefaultAllow`), which no policy decides: under the default deny policy
/// even a management token is denied, as Consul's policy authorizers defer to the default.
#[tokio::test]
async fn authorize_falls_back_on_the_callers_acl_default() {
    let (a, _cfg) = acl_agent().await;
    let writer = token_with(&a, "web-writer", r#"service "web" { policy = "write" }"#).await;
    let body = r#"{"Target":"web","ClientCertURI":"spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/api"}"#;
    for token in [ROOT, writer.as_str()] {
        let got = call(&a, Method::POST, "/v1/agent/connect/authorize", token, body).await;
        assert_eq!(got.status, 200, "{}", got.body);
        let decision: Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(
            decision,
            json!({"Authorized": false, "Reason": "Default behavior configured by ACLs"})
        );
    }
    let got = call(
        &a,
        Method::GET,
        "/v1/connect/intentions/check?source=api&destination=web",
        ROOT,
        "",
    )
    .await;
    assert_eq!(got.body.trim(), r#"{"Allowed":false}"#);
}

/// As Consul's `vetServiceRegister` and `vetCheckRegister`: a registration also needs write on
/// what it replaces (the local service or check with its ID), a sidecar is vetted with its
/// own `Token` when it has one, and the agent's check list keeps a service check for read on
/// its service alone (`filterChecksWithAuthorizer`).
#[tokio::test]
async fn agent_registrations_are_vetted_against_what_they_replace() {
    let (a, _cfg) = acl_agent().await;
    root(
        &a,
        Method::PUT,
        "/v1/agent/service/register",
        json!({"ID": "db1", "Name": "db", "Port": 5432}),
    )
    .await;
    root(
        &a,
        Method::PUT,
        "/v1/agent/check/register",
        json!({"ID": "node-ttl", "Name": "node-ttl", "TTL": "60s"}),
    )
    .await;
    let web = token_with(&a, "web-writer", r#"service "web" { policy = "write" }"#).await;
    let sidecar = token_with(
        &a,
        "sidecar-writer",
        r#"service_prefix "web" { policy = "write" }"#,
    )
    .await;
    let register = "/v1/agent/service/register";

    // Taking over the ID of "db" needs write on "db".
    let body = json!({"ID": "db1", "Name": "web", "Port": 80}).to_string();
    let got = call(&a, Method::PUT, register, &web, &body).await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(
        got.body
            .contains("lacks permission 'service:write' on \"db\""),
        "{}",
        got.body
    );
    let db = root(&a, Method::GET, "/v1/agent/service/db1", json!(null)).await;
    assert_eq!(db["Service"], "db");

    // The sidecar's own token may register what the request's token may not.
    let with_sidecar = |token: Option<&str>| {
        let mut sidecar = json!({});
        if let Some(token) = token {
            sidecar["Token"] = json!(token);
        }
        json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": sidecar}}).to_string()
    };
    let got = call(&a, Method::PUT, register, &web, &with_sidecar(None)).await;
    assert!(
        got.body
            .contains("lacks permission 'service:write' on \"web-sidecar-proxy\""),
        "{}",
        got.body
    );
    let got = call(
        &a,
        Method::PUT,
        register,
        &web,
        &with_sidecar(Some(&sidecar)),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let got = call(
        &a,
        Method::PUT,
        register,
        &web,
        &with_sidecar(Some(UNKNOWN)),
    )
    .await;
    assert_eq!((got.status, got.body.as_str()), (403, "ACL not found"));

    // A service check replacing a node check needs node:write too.
    let web_check =
        |id: &str| json!({"ID": id, "Name": "web-ttl", "ServiceID": "web", "TTL": "60s"});
    let check_register = "/v1/agent/check/register";
    let body = web_check("node-ttl").to_string();
    let got = call(&a, Method::PUT, check_register, &web, &body).await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(
        got.body
            .contains(&format!("lacks permission 'node:write' on \"{NODE}\"")),
        "{}",
        got.body
    );
    let body = web_check("web-ttl").to_string();
    let got = call(&a, Method::PUT, check_register, &web, &body).await;
    assert_eq!(got.status, 200, "{}", got.body);

    // Reading the agent's checks: the service's check without any node right.
    let reader = token_with(&a, "web-reader", r#"service "web" { policy = "read" }"#).await;
    let got = call(&a, Method::GET, "/v1/agent/checks", &reader, "").await;
    let checks: Value = serde_json::from_str(&got.body).unwrap();
    let ids: Vec<&String> = checks.as_object().unwrap().keys().collect();
    assert!(ids.contains(&&"web-ttl".to_string()), "{}", got.body);
    assert!(!ids.contains(&&"node-ttl".to_string()), "{}", got.body);
    assert!(got.filtered);

    // ACLs filter after `?filter`: what the expression leaves out anyway is not counted.
    let only_web = [
        ("/v1/agent/checks", "ServiceName == \"web\""),
        ("/v1/agent/services", "Service == \"web\""),
    ];
    for (path, expression) in only_web {
        let got = call(&a, Method::GET, path, &reader, "").await;
        assert!(got.filtered, "{path}: {}", got.body);
        let expression =
            percent_encoding::utf8_percent_encode(expression, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{path}?filter={expression}");
        let got = call(&a, Method::GET, &url, &reader, "").await;
        assert_eq!(got.status, 200, "{url}: {}", got.body);
        assert!(got.body.contains("web"), "{url}: {}", got.body);
        assert!(!got.filtered, "{url}: {}", got.body);
    }
}

/// Config entries by kind, as Consul's `CanRead`/`CanWrite`: the mesh entry is readable by
/// anyone, routes need `mesh:read`, and bound API gateways are written by Consul's controller
/// only, whatever the token.
#[tokio::test]
async fn config_entry_rights_follow_each_kind() {
    let (a, _cfg) = acl_agent().await;
    root(&a, Method::PUT, "/v1/config", json!({"Kind": "mesh"})).await;
    root(
        &a,
        Method::PUT,
        "/v1/config",
        json!({"Kind": "http-route", "Name": "r"}),
    )
    .await;
    let web = token_with(&a, "web-reader", r#"service "web" { policy = "read" }"#).await;
    let got = call(&a, Method::GET, "/v1/config/mesh/mesh", &web, "").await;
    assert_eq!(got.status, 200, "{}", got.body);
    let got = call(&a, Method::GET, "/v1/config/http-route/r", &web, "").await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(
        got.body.contains("lacks permission 'mesh:read'"),
        "{}",
        got.body
    );
    let body = json!({"Kind": "bound-api-gateway", "Name": "gw"}).to_string();
    let got = call(&a, Method::PUT, "/v1/config", ROOT, &body).await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (403, "Permission denied: only writeable by controller")
    );

    // A discovery-chain entry also needs read on the services it sends traffic to.
    let writer = token_with(&a, "web-writer", r#"service "web" { policy = "write" }"#).await;
    let splitter = json!({"Kind": "service-splitter", "Name": "web",
                          "Splits": [{"Weight": 100, "Service": "web-v2"}]});
    let got = call(
        &a,
        Method::PUT,
        "/v1/config",
        &writer,
        &splitter.to_string(),
    )
    .await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(
        got.body
            .contains("lacks permission 'service:read' on \"web-v2\""),
        "{}",
        got.body
    );
}

/// Consul's event handler answers a refused fire with the bare `Permission denied`, after the
/// agent has vetted the event's filters.
#[tokio::test]
async fn a_refused_event_fire_says_permission_denied() {
    let (a, _cfg) = acl_agent().await;
    let token = token_with(&a, "deployer", r#"event "deploy" { policy = "write" }"#).await;
    let got = call(&a, Method::PUT, "/v1/event/fire/deploy", &token, "").await;
    assert_eq!(got.status, 200, "{}", got.body);
    let got = call(&a, Method::PUT, "/v1/event/fire/other", &token, "").await;
    assert_eq!((got.status, got.body.as_str()), (403, "Permission denied"));
    let got = call(&a, Method::PUT, "/v1/event/fire/other?tag=v1", &token, "").await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (500, "Cannot provide tag filter without service filter")
    );
}

/// A transaction leaves out the results the token may not read without saying so (Consul's
/// `/v1/txn` sets no filtered-by-ACLs header), and refuses a tree delete without write on
/// the whole prefix.
#[tokio::test]
async fn transactions_filter_reads_silently_and_vet_tree_deletes() {
    let (a, _cfg) = acl_agent().await;
    for key in ["app/a", "app/private/b"] {
        root(&a, Method::PUT, &format!("/v1/kv/{key}"), json!("v")).await;
    }
    let token = token_with(
        &a,
        "app-writer",
        r#"key_prefix "app/" { policy = "write" }
           key_prefix "app/private/" { policy = "deny" }"#,
    )
    .await;
    let get_tree = r#"[{"KV":{"Verb":"get-tree","Key":"app/"}}]"#;
    let got = call(&a, Method::PUT, "/v1/txn", &token, get_tree).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["Results"].as_array().unwrap().len(), 1, "{}", got.body);
    assert_eq!(body["Results"][0]["KV"]["Key"], "app/a");
    assert!(!got.filtered);
    let delete_tree = r#"[{"KV":{"Verb":"delete-tree","Key":"app/"}}]"#;
    let got = call(&a, Method::PUT, "/v1/txn", &token, delete_tree).await;
    assert_eq!(got.status, 409, "{}", got.body);
    assert!(
        got.body
            .contains("lacks permission 'key:write' on \\\"app/\\\""),
        "{}",
        got.body
    );
    // An invalid operation gets its validation error only, not also a denial.
    let keyless = r#"[{"KV":{"Verb":"set","Key":"","Value":"eA=="}}]"#;
    let got = call(&a, Method::PUT, "/v1/txn", &token, keyless).await;
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(
        (got.status, &body["Errors"]),
        (409, &json!([{"OpIndex": 0, "What": "Must provide key"}]))
    );
}

/// Envoy escape hatches and code-running extensions need `mesh:write` besides
/// `service:write` (Consul's gate on `Proxy.Config` / upstream `envoy_*` keys and on
/// `builtin/lua`/`builtin/wasm` in service-defaults), on the agent and catalog paths alike.
#[tokio::test]
async fn envoy_escape_hatches_need_mesh_write() {
    let (a, _cfg) = acl_agent().await;
    let services = r#"service_prefix "" { policy = "write" }
                      node_prefix "" { policy = "write" }"#;
    let writer = token_with(&a, "service-writer", services).await;
    let mesh = token_with(&a, "mesh-writer", &format!("{services}\nmesh = \"write\"")).await;
    let proxy = |config: Value, upstream_config: Value| {
        json!({"Name": "web-proxy", "Kind": "connect-proxy", "Port": 21000,
               "Proxy": {"DestinationServiceName": "web", "Config": config,
                         "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9000,
                                        "Config": upstream_config}]}})
        .to_string()
    };
    let register = "/v1/agent/service/register";
    let catalog = |service: String| {
        let mut service: Value = serde_json::from_str(&service).unwrap();
        let name = service.as_object_mut().unwrap().remove("Name").unwrap();
        service["Service"] = name;
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": service}).to_string()
    };
    let gated = [
        proxy(json!({"Envoy_Bootstrap_JSON_TPL": "{}"}), json!({})),
        proxy(
            json!({"protocol": "http"}),
            json!({"envoy_cluster_json": "{}"}),
        ),
    ];
    for body in &gated {
        for (path, body) in [
            (register, body.clone()),
            ("/v1/catalog/register", catalog(body.clone())),
        ] {
            let got = call(&a, Method::PUT, path, &writer, &body).await;
            assert_eq!(got.status, 403, "{path} {body}: {}", got.body);
            assert!(
                got.body.contains("lacks permission 'mesh:write'"),
                "{}",
                got.body
            );
            let got = call(&a, Method::PUT, path, &mesh, &body).await;
            assert_eq!(got.status, 200, "{path} {body}: {}", got.body);
        }
    }
    let plain = proxy(json!({"protocol": "http"}), json!({"protocol": "http"}));
    let got = call(&a, Method::PUT, register, &writer, &plain).await;
    assert_eq!(got.status, 200, "{}", got.body);

    let entries = [
        json!({"Kind": "service-defaults", "Name": "web",
               "EnvoyExtensions": [{"Name": "builtin/lua", "Arguments": {"ProxyType": "connect-proxy", "Listener": "inbound", "Script": "function envoy_on_request(r) end"}}]}),
        json!({"Kind": "service-defaults", "Name": "web",
               "UpstreamConfig": {"Overrides": [{"Name": "db", "EnvoyClusterJSON": "{}"}]}}),
    ];
    for entry in entries {
        let got = call(&a, Method::PUT, "/v1/config", &writer, &entry.to_string()).await;
        assert_eq!(got.status, 403, "{entry}: {}", got.body);
        assert!(
            got.body.contains("lacks permission 'mesh:write'"),
            "{}",
            got.body
        );
        let got = call(&a, Method::PUT, "/v1/config", &mesh, &entry.to_string()).await;
        assert_ne!(got.status, 403, "{entry}: {}", got.body);
    }
    let plain = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    let got = call(&a, Method::PUT, "/v1/config", &writer, &plain.to_string()).await;
    assert_eq!(got.status, 200, "{}", got.body);
}

/// Connect and ingress lookups without read on the service answer nothing, as Consul's
/// `ServiceNodes` endpoints do: an empty list, not a refusal.
#[tokio::test]
async fn connect_lookups_without_service_read_answer_nothing() {
    let (a, _cfg) = acl_agent().await;
    root(
        &a,
        Method::PUT,
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1",
               "Service": {"Service": "web-proxy", "Kind": "connect-proxy", "Port": 21000,
                           "Proxy": {"DestinationServiceName": "web"}}}),
    )
    .await;
    let outsider = token_with(
        &a,
        "proxy-reader",
        r#"service "web-proxy" { policy = "read" }
           node_prefix "" { policy = "read" }"#,
    )
    .await;
    let reader = token_with(
        &a,
        "web-reader",
        r#"service_prefix "web" { policy = "read" }
           node_prefix "" { policy = "read" }"#,
    )
    .await;
    for path in [
        "/v1/catalog/connect/web",
        "/v1/health/connect/web",
        "/v1/health/ingress/web",
    ] {
        let got = call(&a, Method::GET, path, &outsider, "").await;
        assert_eq!((got.status, got.body.as_str()), (200, "[]"), "{path}");
        assert!(!got.filtered, "{path}");
    }
    for path in ["/v1/catalog/connect/web", "/v1/health/connect/web"] {
        let got = call(&a, Method::GET, path, &reader, "").await;
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert!(got.body.contains("web-proxy"), "{path}: {}", got.body);
    }
}

/// Consul's `vetRegisterWithACL` and `vetDeregisterWithACL`: registering over a service ID
/// needs write on the service it replaces; write on the node deregisters anything on it; an
/// unknown service without it is Consul's error naming the ID.
#[tokio::test]
async fn catalog_writes_are_vetted_as_consuls() {
    let (a, _cfg) = acl_agent().await;
    for (id, name) in [("db1", "db"), ("web1", "web")] {
        root(
            &a,
            Method::PUT,
            "/v1/catalog/register",
            json!({"Node": "n1", "Address": "10.0.0.1",
                   "Service": {"ID": id, "Service": name, "Port": 80}}),
        )
        .await;
    }
    let web = token_with(&a, "web-writer", r#"service "web" { policy = "write" }"#).await;
    let node = token_with(&a, "n1-writer", r#"node "n1" { policy = "write" }"#).await;
    let register = |id: &str| {
        json!({"Node": "n1", "Address": "10.0.0.1", "SkipNodeUpdate": true,
               "Service": {"ID": id, "Service": "web", "Port": 81}})
        .to_string()
    };
    let got = call(
        &a,
        Method::PUT,
        "/v1/catalog/register",
        &web,
        &register("db1"),
    )
    .await;
    assert_eq!(got.status, 403, "{}", got.body);
    assert!(
        got.body.contains("'service:write' on \"db\""),
        "{}",
        got.body
    );
    let got = call(
        &a,
        Method::PUT,
        "/v1/catalog/register",
        &web,
        &register("web1"),
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);

    let deregister = |service: &str| json!({"Node": "n1", "ServiceID": service}).to_string();
    let path = "/v1/catalog/deregister";
    let got = call(&a, Method::PUT, path, &web, &deregister("nope")).await;
    assert_eq!(
        (got.status, got.body.as_str()),
        (500, "Unknown service ID 'nope'")
    );
    let got = call(&a, Method::PUT, path, &web, &deregister("db1")).await;
    assert_eq!(got.status, 403, "{}", got.body);
    let got = call(&a, Method::PUT, path, &node, &deregister("db1")).await;
    assert_eq!(
        got.status, 200,
        "node write deregisters any service: {}",
        got.body
    );
    let got = call(&a, Method::PUT, path, &web, &deregister("web1")).await;
    assert_eq!(got.status, 200, "{}", got.body);
}
