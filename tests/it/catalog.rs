//! `/v1/catalog/*` and `/v1/health/*`. The agent may register its own node, so every test
//! looks only at the names it registered.

use crate::common::{index_of, TestAgent};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const NODE_ID: &str = "a5d1c9a0-1b2c-4d3e-8f40-123456789abc";

async fn register(a: &TestAgent, body: Value) {
    assert_eq!(
        a.put_ok("/v1/catalog/register", body.to_string()).await,
        "true"
    );
}

async fn deregister(a: &TestAgent, body: Value) {
    assert_eq!(
        a.put_ok("/v1/catalog/deregister", body.to_string()).await,
        "true"
    );
}

/// A 400 and its body.
async fn bad(a: &TestAgent, method: &str, path: &str, body: &str) -> String {
    let req = match method {
        "PUT" => a.http.put(a.url(path)).body(body.to_string()),
        _ => a.http.get(a.url(path)),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 400, "{method} {path}: {text}");
    text
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.pointer(field).unwrap().as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Node `n1` with service `web1` (named `web`), a node-level check and a service check.
async fn web_on_n1(a: &TestAgent) {
    register(
        a,
        json!({
            "ID": NODE_ID,
            "Node": "n1",
            "Address": "10.0.0.1",
            "TaggedAddresses": {"lan": "10.0.0.1", "wan": "198.18.0.1"},
            "NodeMeta": {"rack": "r1"},
            "Service": {
                "ID": "web1",
                "Service": "web",
                "Tags": ["v1", "Primary"],
                "Port": 8080,
                "Meta": {"version": "1"},
            },
            "Checks": [
                {"CheckID": "node-ok", "Name": "Node OK", "Status": "passing"},
                {
                    "CheckID": "web-http",
                    "Name": "Web HTTP",
                    "Status": "passing",
                    "ServiceID": "web1",
                    "Definition": {"HTTP": "http://10.0.0.1:8080/health", "Interval": "10s"},
                },
            ],
        }),
    )
    .await;
}

#[tokio::test]
async fn register_and_read_back_in_consuls_shapes() {
    let a = TestAgent::start().await;
    web_on_n1(&a).await;

    // /v1/catalog/nodes
    let resp = a.get("/v1/catalog/nodes").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["Content-Type"], "application/json");
    assert_eq!(resp.headers()["X-Consul-KnownLeader"], "true");
    let nodes_index = index_of(&resp);
    let nodes: Value = resp.json().await.unwrap();
    let n1 = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == "n1")
        .expect("n1 listed")
        .clone();
    let node_index = n1["CreateIndex"].as_u64().unwrap();
    assert!(node_index > 0 && nodes_index >= node_index);
    let node = json!({
        "ID": NODE_ID,
        "Node": "n1",
        "Address": "10.0.0.1",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "10.0.0.1", "wan": "198.18.0.1"},
        "Meta": {"rack": "r1"},
        "CreateIndex": node_index,
        "ModifyIndex": node_index,
    });
    assert_eq!(n1, node);

    // /v1/catalog/services
    let (_, services) = a.get_json("/v1/catalog/services").await;
    let mut tags: Vec<&str> = services["web"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["Primary", "v1"]);

    // /v1/catalog/service/web, field order included
    let resp = a.get("/v1/catalog/service/web").await;
    let index = index_of(&resp);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(r#"[{"ID":"a5d1c9a0-1b2c-4d3e-8f40-123456789abc","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1","TaggedAddresses""#),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        list,
        json!([{
            "ID": NODE_ID,
            "Node": "n1",
            "Address": "10.0.0.1",
            "Datacenter": "dc1",
            "TaggedAddresses": {"lan": "10.0.0.1", "wan": "198.18.0.1"},
            "NodeMeta": {"rack": "r1"},
            "ServiceKind": "",
            "ServiceID": "web1",
            "ServiceName": "web",
            "ServiceTags": ["v1", "Primary"],
            "ServiceAddress": "",
            "ServiceWeights": {"Passing": 1, "Warning": 1},
            "ServiceMeta": {"version": "1"},
            "ServicePort": 8080,
            "ServiceSocketPath": "",
            "ServiceEnableTagOverride": false,
            "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "ServiceConnect": {},
            "ServiceLocality": null,
            "CreateIndex": node_index,
            "ModifyIndex": node_index,
        }])
    );
    assert!(index >= node_index);

    // /v1/catalog/node/n1
    let service = json!({
        "ID": "web1",
        "Service": "web",
        "Tags": ["v1", "Primary"],
        "Address": "",
        "Meta": {"version": "1"},
        "Port": 8080,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "Connect": {},
        "PeerName": "",
        "CreateIndex": node_index,
        "ModifyIndex": node_index,
    });
    let (index, body) = a.get_json("/v1/catalog/node/n1").await;
    assert_eq!(body, json!({"Node": node, "Services": {"web1": service}}));
    assert!(index >= node_index);
    // Node names are case-insensitive.
    let (_, body) = a.get_json("/v1/catalog/node/N1").await;
    assert_eq!(body["Node"]["Node"], "n1");

    // /v1/catalog/node-services/n1
    let (_, body) = a.get_json("/v1/catalog/node-services/n1").await;
    assert_eq!(body, json!({"Node": node, "Services": [service]}));

    // /v1/health/node/n1: node-level and service checks.
    let node_check = json!({
        "Node": "n1",
        "CheckID": "node-ok",
        "Name": "Node OK",
        "Status": "passing",
        "Notes": "",
        "Output": "",
        "ServiceID": "",
        "ServiceName": "",
        "ServiceTags": [],
        "Type": "",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": node_index,
        "ModifyIndex": node_index,
    });
    let web_check = json!({
        "Node": "n1",
        "CheckID": "web-http",
        "Name": "Web HTTP",
        "Status": "passing",
        "Notes": "",
        "Output": "",
        "ServiceID": "web1",
        "ServiceName": "web",
        "ServiceTags": ["v1", "Primary"],
        "Type": "http",
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {"Interval": "10s", "HTTP": "http://10.0.0.1:8080/health"},
        "CreateIndex": node_index,
        "ModifyIndex": node_index,
    });
    let (_, checks) = a.get_json("/v1/health/node/n1").await;
    assert_eq!(checks, json!([node_check, web_check]));

    // /v1/health/checks/web: the service's checks only.
    let (_, checks) = a.get_json("/v1/health/checks/web").await;
    assert_eq!(checks, json!([web_check]));

    // /v1/health/service/web: node checks first.
    let (_, entries) = a.get_json("/v1/health/service/web").await;
    assert_eq!(
        entries,
        json!([{"Node": node, "Service": service, "Checks": [node_check, web_check]}])
    );

    // /v1/health/state/<state>
    let (_, passing) = a.get_json("/v1/health/state/passing").await;
    let mine: Vec<&Value> = passing
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["Node"] == "n1")
        .collect();
    assert_eq!(mine, [&node_check, &web_check]);
    let (_, any) = a.get_json("/v1/health/state/any?node-meta=rack:r1").await;
    assert_eq!(any, json!([node_check, web_check]));

    // ?pretty: Go's four-space indent and a final newline.
    let text = a
        .get("/v1/catalog/node-services/n1?pretty")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("{\n    \"Node\": {\n        \"ID\""),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
}

#[tokio::test]
async fn empty_results_have_consuls_shapes() {
    let a = TestAgent::start().await;
    for path in [
        "/v1/catalog/service/nope",
        "/v1/catalog/connect/nope",
        "/v1/health/service/nope",
        "/v1/health/connect/nope",
        "/v1/health/checks/nope",
        "/v1/health/node/nope",
        "/v1/catalog/nodes?node-meta=none:x",
        "/v1/health/state/any?node-meta=none:x",
    ] {
        let resp = a.get(path).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(index_of(&resp) >= 1);
        assert_eq!(resp.text().await.unwrap(), "[]", "{path}");
    }
    let (_, body) = a.get_json("/v1/catalog/services?node-meta=none:x").await;
    assert_eq!(body, json!({}));
    let resp = a.get("/v1/catalog/node/nope").await;
    assert_eq!(resp.status(), 200);
    assert!(index_of(&resp) >= 1);
    assert_eq!(resp.text().await.unwrap(), "null");
    let resp = a.get("/v1/catalog/node-services/nope").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"Node":null,"Services":null}"#
    );

    // A node without services.
    register(&a, json!({"Node": "bare", "Address": "10.0.0.9"})).await;
    let (_, body) = a.get_json("/v1/catalog/node/bare").await;
    assert_eq!(body["Services"], json!({}));
    let (_, body) = a.get_json("/v1/catalog/node-services/bare").await;
    assert_eq!(body["Node"]["Node"], "bare");
    assert_eq!(body["Services"], Value::Null);
    let (_, body) = a.get_json("/v1/health/node/bare").await;
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn tags_must_all_match_case_insensitively() {
    let a = TestAgent::start().await;
    for (node, id, tags) in [
        ("n1", "api1", json!(["v1", "primary"])),
        ("n2", "api2", json!(["v1"])),
        ("n3", "api3", json!([])),
    ] {
        register(
            &a,
            json!({"Node": node, "Address": "10.0.0.1",
                   "Service": {"ID": id, "Service": "api", "Tags": tags}}),
        )
        .await;
    }
    let ids = |v: &Value, f: &str| names(v, f);
    let (_, all) = a.get_json("/v1/catalog/service/api").await;
    assert_eq!(ids(&all, "/ServiceID"), ["api1", "api2", "api3"]);
    let (_, v1) = a.get_json("/v1/catalog/service/api?tag=V1").await;
    assert_eq!(ids(&v1, "/ServiceID"), ["api1", "api2"]);
    let (_, both) = a
        .get_json("/v1/catalog/service/api?tag=v1&tag=PRIMARY")
        .await;
    assert_eq!(ids(&both, "/ServiceID"), ["api1"]);
    let (_, none) = a.get_json("/v1/catalog/service/api?tag=v2").await;
    assert_eq!(none, json!([]));
    let (_, health) = a
        .get_json("/v1/health/service/api?tag=v1&tag=primary")
        .await;
    assert_eq!(ids(&health, "/Service/ID"), ["api1"]);
    // Instances without tags render `[]`.
    let api3 = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ServiceID"] == "api3")
        .unwrap();
    assert_eq!(api3["ServiceTags"], json!([]));
}

#[tokio::test]
async fn passing_keeps_instances_whose_checks_all_pass() {
    let a = TestAgent::start().await;
    for (node, status, node_status) in [
        ("n1", "passing", "passing"),
        ("n2", "warning", "passing"),
        ("n3", "critical", "passing"),
        ("n4", "passing", "critical"),
    ] {
        register(
            &a,
            json!({
                "Node": node, "Address": "10.0.0.1",
                "Service": {"Service": "db"},
                "Checks": [
                    {"Name": "node", "Status": node_status},
                    {"Name": "svc", "Status": status, "ServiceID": "db"},
                ],
            }),
        )
        .await;
    }
    let (_, all) = a.get_json("/v1/health/service/db").await;
    assert_eq!(names(&all, "/Node/Node"), ["n1", "n2", "n3", "n4"]);
    for q in ["passing", "passing=true", "passing=1", "passing=T"] {
        let (_, only) = a.get_json(&format!("/v1/health/service/db?{q}")).await;
        assert_eq!(names(&only, "/Node/Node"), ["n1"], "{q}");
    }
    let (_, off) = a.get_json("/v1/health/service/db?passing=false").await;
    assert_eq!(off.as_array().unwrap().len(), 4);
    assert_eq!(
        bad(&a, "GET", "/v1/health/service/db?passing=maybe", "").await,
        "Invalid value for ?passing"
    );
    // Check states are served by state.
    let (_, critical) = a.get_json("/v1/health/state/critical").await;
    let mut mine: Vec<String> = critical
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["Node"].as_str().unwrap().starts_with('n'))
        .map(|c| {
            format!(
                "{}/{}",
                c["Node"].as_str().unwrap(),
                c["CheckID"].as_str().unwrap()
            )
        })
        .collect();
    mine.sort();
    assert_eq!(mine, ["n3/svc", "n4/node"]);
    let (_, warning) = a.get_json("/v1/health/state/warning").await;
    let mine: Vec<&Value> = warning
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["Node"].as_str().unwrap().starts_with('n'))
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (&mine[0]["Node"], &mine[0]["CheckID"]),
        (&json!("n2"), &json!("svc"))
    );
}

#[tokio::test]
async fn filter_expressions_narrow_every_read() {
    let a = TestAgent::start().await;
    for (node, rack, id, port) in [("n1", "r1", "web1", 80), ("n2", "r2", "web2", 81)] {
        register(
            &a,
            json!({
                "Node": node, "Address": "10.0.0.1", "NodeMeta": {"rack": rack},
                "Service": {"ID": id, "Service": "web", "Port": port, "Tags": [id]},
                "Check": {"Name": "alive", "Status": "passing", "ServiceID": id},
            }),
        )
        .await;
    }
    let (_, nodes) = a
        .get_json("/v1/catalog/nodes?filter=Meta.rack%20%3D%3D%20r2")
        .await;
    assert_eq!(names(&nodes, "/Node"), ["n2"]);
    let (_, sn) = a
        .get_json("/v1/catalog/service/web?filter=ServicePort%20%3D%3D%2080")
        .await;
    assert_eq!(names(&sn, "/ServiceID"), ["web1"]);
    let (_, csn) = a
        .get_json("/v1/health/service/web?filter=Node.Meta.rack%20%3D%3D%20r1")
        .await;
    assert_eq!(names(&csn, "/Service/ID"), ["web1"]);
    let (_, checks) = a
        .get_json("/v1/health/checks/web?filter=ServiceID%20%3D%3D%20web2")
        .await;
    assert_eq!(names(&checks, "/Node"), ["n2"]);
    let (_, node) = a
        .get_json("/v1/catalog/node/n1?filter=Port%20%3D%3D%2081")
        .await;
    assert_eq!(node["Services"], json!({}));
    let (_, list) = a
        .get_json("/v1/catalog/node-services/n1?filter=Port%20%3D%3D%2081")
        .await;
    assert_eq!(list["Services"], json!([]));
    let (_, services) = a
        .get_json("/v1/catalog/services?filter=ServicePort%20%3D%3D%2081")
        .await;
    assert_eq!(services["web"], json!(["web2"]));
    // An expression that doesn't parse is a 400 with the parser's message.
    let text = bad(&a, "GET", "/v1/catalog/nodes?filter=Meta%20%3D%3D", "").await;
    assert!(
        text.starts_with("Failed to create boolean expression evaluator"),
        "{text}"
    );
}

#[tokio::test]
async fn node_meta_narrows_reads() {
    let a = TestAgent::start().await;
    for (node, rack, env) in [
        ("m1", "r1", "prod"),
        ("m2", "r2", "prod"),
        ("m3", "r1", "dev"),
    ] {
        register(
            &a,
            json!({
                "Node": node, "Address": "10.0.0.1",
                "NodeMeta": {"rack": rack, "env": env},
                "Service": {"ID": format!("cache-{node}"), "Service": "cache"},
                "Check": {"Name": "c", "Status": "passing", "ServiceID": format!("cache-{node}")},
            }),
        )
        .await;
    }
    let (_, nodes) = a.get_json("/v1/catalog/nodes?node-meta=rack:r1").await;
    assert_eq!(names(&nodes, "/Node"), ["m1", "m3"]);
    let (_, nodes) = a
        .get_json("/v1/catalog/nodes?node-meta=rack:r1&node-meta=env:prod")
        .await;
    assert_eq!(names(&nodes, "/Node"), ["m1"]);
    let (_, sn) = a
        .get_json("/v1/catalog/service/cache?node-meta=env:dev&near=_agent")
        .await;
    assert_eq!(names(&sn, "/Node"), ["m3"]);
    let (_, csn) = a
        .get_json("/v1/health/service/cache?node-meta=rack:r2")
        .await;
    assert_eq!(names(&csn, "/Node/Node"), ["m2"]);
    let (_, checks) = a
        .get_json("/v1/health/checks/cache?node-meta=env:prod")
        .await;
    assert_eq!(names(&checks, "/Node"), ["m1", "m2"]);
    let (_, state) = a
        .get_json("/v1/health/state/passing?node-meta=env:dev")
        .await;
    assert_eq!(names(&state, "/Node"), ["m3"]);
    let (_, services) = a.get_json("/v1/catalog/services?node-meta=env:dev").await;
    assert_eq!(services, json!({"cache": []}));
}

#[tokio::test]
async fn deregister_removes_a_service_a_check_or_the_node() {
    let a = TestAgent::start().await;
    web_on_n1(&a).await;
    register(
        &a,
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "db1", "Service": "db"}}),
    )
    .await;
    // A check.
    deregister(&a, json!({"Node": "n1", "CheckID": "node-ok"})).await;
    let (_, checks) = a.get_json("/v1/health/node/n1").await;
    assert_eq!(names(&checks, "/CheckID"), ["web-http"]);
    // A service, with its checks.
    deregister(&a, json!({"Node": "n1", "ServiceID": "web1"})).await;
    let (_, web) = a.get_json("/v1/catalog/service/web").await;
    assert_eq!(web, json!([]));
    let (_, checks) = a.get_json("/v1/health/node/n1").await;
    assert_eq!(checks, json!([]));
    let (_, body) = a.get_json("/v1/catalog/node/n1").await;
    assert_eq!(
        body["Services"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["db1"]
    );
    // Missing things are fine.
    deregister(&a, json!({"Node": "n1", "ServiceID": "ghost"})).await;
    deregister(&a, json!({"Node": "ghost"})).await;
    // The whole node.
    deregister(&a, json!({"Node": "n1"})).await;
    let (_, body) = a.get_json("/v1/catalog/node/n1").await;
    assert_eq!(body, Value::Null);
    let (_, services) = a.get_json("/v1/catalog/services").await;
    assert!(services.get("db").is_none() && services.get("web").is_none());
    // The obsolete Address is allowed; an unknown field isn't.
    deregister(&a, json!({"Node": "n1", "Address": "10.0.0.1"})).await;
    assert_eq!(
        bad(
            &a,
            "PUT",
            "/v1/catalog/deregister",
            r#"{"Node":"n1","Bogus":1}"#
        )
        .await,
        r#"Request decode failed: json: unknown field "Bogus""#
    );
    assert_eq!(
        bad(&a, "PUT", "/v1/catalog/deregister", "{}").await,
        "Must provide node"
    );
}

#[tokio::test]
async fn register_refuses_what_consul_refuses() {
    let a = TestAgent::start().await;
    let cases: &[(&str, &str)] = &[
        ("", "Request decode failed: EOF"),
        ("{", "Request decode failed: unexpected EOF"),
        ("[]", "Request decode failed: json: cannot unmarshal array into Go value of type structs.RegisterRequest"),
        (r#"{"Node":"n","Bogus":1}"#, r#"Request decode failed: json: unknown field "Bogus""#),
        (r#"{"Node":"n","Service":{"Name":"x"}}"#, r#"Request decode failed: json: unknown field "Name""#),
        (r#"{"Node":"n","Namespace":"x"}"#, r#"Request decode failed: json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature"#),
        (r#"{"Node":5}"#, "Request decode failed: json: cannot unmarshal number into Go struct field RegisterRequest.Node of type string"),
        (r#"{"Node":"n","Service":{"Port":"80"}}"#, "Request decode failed: json: cannot unmarshal string into Go struct field NodeService.Service.Port of type int"),
        (r#"{"Node":"n","Checks":{}}"#, "Request decode failed: json: cannot unmarshal object into Go struct field RegisterRequest.Checks of type structs.HealthChecks"),
        ("{}", "Must provide node"),
        (r#"{"Address":"10.0.0.1"}"#, "Must provide node"),
        (r#"{"Node":"n"}"#, "Must provide address if SkipNodeUpdate is not set"),
        (r#"{"Node":"n","Address":"a","ID":"nope"}"#, "Bad node ID: uuid string is wrong length"),
        (r#"{"Node":"n","Address":"a","Service":{"ID":"x"}}"#, "Must provide service name (Service.Service) when service ID is provided"),
        (r#"{"Node":"n","Address":"a","Service":{"Service":"x","Address":"0.0.0.0"}}"#, "Invalid service address"),
        (r#"{"Node":"n","Address":"a","Service":{"Service":"p","Kind":"connect-proxy"}}"#,
         "2 errors occurred:\n\t* Port or SocketPath must be set for a connect-proxy\n\t* Proxy.DestinationServiceName must be non-empty for Connect proxy services\n\n"),
        (r#"{"Node":"n","Address":"a","PeerName":"p"}"#, "cannot register requests with PeerName in them"),
        (r#"{"Node":"n","Address":"a","Check":{"Name":"c","Node":"other"}}"#, "Node 'other' for check 'c' doesn't match register request node 'n'"),
        (r#"{"Node":"n","Address":"a","Check":{"Name":"c","ServiceID":"ghost"}}"#, "Unknown service ID 'ghost' for check ID 'c'"),
    ];
    for (body, want) in cases {
        assert_eq!(
            &bad(&a, "PUT", "/v1/catalog/register", body).await,
            want,
            "{body}"
        );
    }
    // Nothing was written by the refused requests.
    let resp = a.get("/v1/catalog/node/n").await;
    assert_eq!(resp.text().await.unwrap(), "null");
    // A foreign datacenter can't be reached.
    let resp = a
        .put(
            "/v1/catalog/register",
            r#"{"Node":"n","Address":"a","Datacenter":"dc9"}"#,
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), "No path to datacenter");
    // Wrong methods are the route table's 405.
    let resp = a.get("/v1/catalog/register").await;
    assert_eq!(resp.status(), 405);
    let resp = a.put("/v1/catalog/nodes", "").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["Allow"], "OPTIONS,GET");
}

#[tokio::test]
async fn missing_path_arguments_are_400s() {
    let a = TestAgent::start().await;
    for (path, want) in [
        ("/v1/catalog/service/", "Missing service name"),
        ("/v1/catalog/connect/", "Missing service name"),
        ("/v1/catalog/node/", "Missing node name"),
        ("/v1/catalog/node-services/", "Missing node name"),
        ("/v1/health/node/", "Missing node name"),
        ("/v1/health/checks/", "Missing service name"),
        ("/v1/health/service/", "Missing service name"),
        ("/v1/health/connect/", "Missing service name"),
        ("/v1/health/state/", "Missing check state"),
        ("/v1/health/state/bogus", "Unsupported state: bogus"),
    ] {
        assert_eq!(bad(&a, "GET", path, "").await, want, "{path}");
    }
}

#[tokio::test]
async fn go_style_bodies_are_accepted() {
    let a = TestAgent::start().await;
    // Keys match case-insensitively; a lone Check joins Checks; a check's ID defaults to its
    // name and its node to the request's; a service's ID to its name.
    register(
        &a,
        json!({
            "node": "go1", "ADDRESS": "10.0.0.5", "nodemeta": {"k": "v"},
            "service": {"service": "cache", "port": 6379, "tags": null,
                        "weights": {"passing": 3, "warning": 2}},
            "check": {"name": "cache-alive", "serviceid": "cache", "status": "warning",
                      "definition": {"ttl": "30s", "unknownKeyIsIgnored": 1}},
            "checks": null,
        }),
    )
    .await;
    let (_, sn) = a.get_json("/v1/catalog/service/cache").await;
    assert_eq!(sn[0]["ServiceID"], "cache");
    assert_eq!(sn[0]["ServicePort"], 6379);
    assert_eq!(sn[0]["ServiceTags"], json!([]));
    assert_eq!(sn[0]["ServiceWeights"], json!({"Passing": 3, "Warning": 2}));
    assert_eq!(sn[0]["NodeMeta"], json!({"k": "v"}));
    let (_, checks) = a.get_json("/v1/health/checks/cache").await;
    assert_eq!(checks[0]["CheckID"], "cache-alive");
    assert_eq!(checks[0]["Node"], "go1");
    assert_eq!(checks[0]["Status"], "warning");
    assert_eq!(checks[0]["Type"], "ttl");
    assert_eq!(checks[0]["Definition"], json!({"TTL": 30_000_000_000u64}));

    // A check without a status starts critical.
    register(
        &a,
        json!({"Node": "go1", "Address": "10.0.0.5", "Check": {"Name": "fresh"}}),
    )
    .await;
    let (_, checks) = a.get_json("/v1/health/node/go1").await;
    let fresh = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["CheckID"] == "fresh")
        .unwrap();
    assert_eq!(fresh["Status"], "critical");
}

#[tokio::test]
async fn skip_node_update_keeps_the_node_and_lookups_work_by_id_prefix() {
    let a = TestAgent::start().await;
    web_on_n1(&a).await;
    let (_, before) = a.get_json("/v1/catalog/node/n1").await;
    register(
        &a,
        json!({"Node": "n1", "SkipNodeUpdate": true,
               "Service": {"ID": "extra", "Service": "extra"}}),
    )
    .await;
    let (_, after) = a.get_json("/v1/catalog/node/n1").await;
    assert_eq!(after["Node"], before["Node"]);
    assert!(after["Services"].get("extra").is_some());
    // Without it, the node record is replaced.
    register(&a, json!({"Node": "n1", "Address": "10.0.0.2"})).await;
    let (_, after) = a.get_json("/v1/catalog/node/n1").await;
    assert_eq!(after["Node"]["Address"], "10.0.0.2");
    assert_eq!(after["Node"]["Meta"], json!({}));
    // SkipNodeUpdate still creates a missing node.
    register(
        &a,
        json!({"Node": "n9", "SkipNodeUpdate": true, "Address": "10.0.0.9"}),
    )
    .await;
    let (_, n9) = a.get_json("/v1/catalog/node/n9").await;
    assert_eq!(n9["Node"]["Address"], "10.0.0.9");

    // A unique node-ID prefix finds the node.
    register(
        &a,
        json!({"ID": NODE_ID, "Node": "n1", "Address": "10.0.0.2"}),
    )
    .await;
    let (_, by_id) = a.get_json("/v1/catalog/node/a5d1c9a0").await;
    assert_eq!(by_id["Node"]["Node"], "n1");
    let (_, by_id) = a.get_json("/v1/catalog/node-services/A5D1").await;
    assert_eq!(by_id["Node"]["Node"], "n1");
}

#[tokio::test]
async fn connect_lookups_find_proxies_and_native_services() {
    let a = TestAgent::start().await;
    register(
        &a,
        json!({
            "Node": "c1", "Address": "10.0.0.1",
            "Service": {"ID": "web1", "Service": "web", "Port": 80},
        }),
    )
    .await;
    register(
        &a,
        json!({
            "Node": "c1", "Address": "10.0.0.1",
            "Service": {"Kind": "connect-proxy", "ID": "web1-sidecar-proxy",
                        "Service": "web-sidecar-proxy", "Port": 21000,
                        "Proxy": {"destination_service_name": "web", "DestinationServiceID": "web1",
                                  "LocalServicePort": 80}},
        }),
    )
    .await;
    register(
        &a,
        json!({
            "Node": "c1", "Address": "10.0.0.1",
            "Service": {"ID": "native1", "Service": "native", "Port": 9000,
                        "Connect": {"Native": true}},
        }),
    )
    .await;
    let (_, proxies) = a.get_json("/v1/catalog/connect/web").await;
    assert_eq!(names(&proxies, "/ServiceID"), ["web1-sidecar-proxy"]);
    assert_eq!(proxies[0]["ServiceKind"], "connect-proxy");
    assert_eq!(
        proxies[0]["ServiceProxy"],
        json!({"DestinationServiceName": "web", "DestinationServiceID": "web1",
               "LocalServicePort": 80, "Mode": "", "MeshGateway": {}, "Expose": {}})
    );
    let (_, health) = a.get_json("/v1/health/connect/web").await;
    assert_eq!(names(&health, "/Service/ID"), ["web1-sidecar-proxy"]);
    let (_, native) = a.get_json("/v1/catalog/connect/native").await;
    assert_eq!(native[0]["ServiceConnect"], json!({"Native": true}));
    let (_, native) = a.get_json("/v1/health/connect/native").await;
    assert_eq!(names(&native, "/Service/ID"), ["native1"]);
    // Tags don't narrow a Connect lookup (Consul ignores them there).
    let (_, tagged) = a.get_json("/v1/catalog/connect/web?tag=nope").await;
    assert_eq!(names(&tagged, "/ServiceID"), ["web1-sidecar-proxy"]);
    let (_, plain) = a.get_json("/v1/catalog/service/web").await;
    assert_eq!(names(&plain, "/ServiceID"), ["web1"]);
}

#[tokio::test]
async fn an_agent_registered_sidecar_is_what_connect_lookups_return() {
    let a = TestAgent::start().await;
    let body = json!({"Name": "api", "Port": 8080, "Connect": {"SidecarService": {}}});
    a.put_ok("/v1/agent/service/register", body.to_string())
        .await;
    let (_, catalog) = a.get_json("/v1/catalog/connect/api").await;
    assert_eq!(names(&catalog, "/ServiceID"), ["api-sidecar-proxy"]);
    assert_eq!(catalog[0]["ServiceProxy"]["DestinationServiceName"], "api");
    let (_, health) = a.get_json("/v1/health/connect/api").await;
    assert_eq!(names(&health, "/Service/ID"), ["api-sidecar-proxy"]);
    assert_eq!(health[0]["Service"]["Kind"], "connect-proxy");
}

async fn still_blocked(task: &tokio::task::JoinHandle<(u64, Value, Duration)>, what: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "{what} woke the watcher");
}

#[tokio::test]
async fn health_service_blocks_precisely() {
    let a = TestAgent::start().await;
    let node = |extra: Value| {
        let mut body = json!({"Node": "b1", "Address": "10.0.0.1"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    register(&a, node(json!({"Service": {"ID": "a1", "Service": "a"}}))).await;
    register(&a, node(json!({"Service": {"ID": "b1", "Service": "b"}}))).await;
    register(
        &a,
        node(json!({"Check": {"CheckID": "a-check", "Name": "a", "Status": "passing", "ServiceID": "a1"}})),
    )
    .await;
    register(
        &a,
        node(json!({"Check": {"CheckID": "b-check", "Name": "b", "Status": "passing", "ServiceID": "b1"}})),
    )
    .await;
    register(
        &a,
        node(json!({"Check": {"CheckID": "node-check", "Name": "n", "Status": "passing"}})),
    )
    .await;

    // A change to another service's instance or check doesn't wake a watcher of `a`...
    let (index, _) = a.get_json("/v1/health/service/a").await;
    let task = a.watch(&format!("/v1/health/service/a?index={index}&wait=10s"));
    still_blocked(&task, "nothing").await;
    register(
        &a,
        node(json!({"Service": {"ID": "b1", "Service": "b", "Tags": ["new"]}})),
    )
    .await;
    still_blocked(&task, "a change to service b").await;
    register(
        &a,
        node(json!({"Check": {"CheckID": "b-check", "Name": "b", "Status": "critical", "ServiceID": "b1"}})),
    )
    .await;
    still_blocked(&task, "a change to b's check").await;
    // ...nor does an identical rewrite of a's own check.
    register(
        &a,
        node(json!({"Check": {"CheckID": "a-check", "Name": "a", "Status": "passing", "ServiceID": "a1"}})),
    )
    .await;
    still_blocked(&task, "an identical rewrite").await;
    // A change to a's check does.
    register(
        &a,
        node(json!({"Check": {"CheckID": "a-check", "Name": "a", "Status": "warning", "ServiceID": "a1"}})),
    )
    .await;
    let (new_index, body, elapsed) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("woken by a's check")
        .unwrap();
    assert!(new_index > index);
    assert_eq!(body[0]["Checks"][1]["Status"], "warning");
    assert!(elapsed < Duration::from_secs(5));

    // A node-level check on a's node wakes it too.
    let task = a.watch(&format!("/v1/health/service/a?index={new_index}&wait=10s"));
    still_blocked(&task, "nothing").await;
    register(
        &a,
        node(json!({"Check": {"CheckID": "node-check", "Name": "n", "Status": "critical"}})),
    )
    .await;
    let (last, body, _) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("woken by the node check")
        .unwrap();
    assert!(last > new_index);
    assert_eq!(body[0]["Checks"][0]["Status"], "critical");

    // Deregistering a's instance wakes it, with an empty result.
    let task = a.watch(&format!("/v1/health/service/a?index={last}&wait=10s"));
    still_blocked(&task, "nothing").await;
    deregister(&a, json!({"Node": "b1", "ServiceID": "a1"})).await;
    let (_, body, _) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("woken by the deregistration")
        .unwrap();
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn catalog_reads_block_until_their_data_changes() {
    let a = TestAgent::start().await;
    register(&a, json!({"Node": "w1", "Address": "10.0.0.1"})).await;
    let resp = a.get("/v1/catalog/node/w1").await;
    let index = index_of(&resp);
    let task = a.watch(&format!("/v1/catalog/node/w1?index={index}&wait=10s"));
    still_blocked(&task, "nothing").await;
    register(&a, json!({"Node": "w2", "Address": "10.0.0.2"})).await;
    still_blocked(&task, "another node").await;
    register(
        &a,
        json!({"Node": "w1", "Address": "10.0.0.1", "Service": {"Service": "s"}}),
    )
    .await;
    let (new_index, body, _) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("woken by a service on the node")
        .unwrap();
    assert!(new_index > index);
    assert!(body["Services"].get("s").is_some());

    // The wait bounds a blocking read that nothing wakes.
    let started = Instant::now();
    let resp = a
        .get(&format!(
            "/v1/catalog/service/s?index={new_index}&wait=200ms"
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}
