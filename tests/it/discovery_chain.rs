//! `/v1/discovery-chain/<service>`: chains compiled from config entries, checked against the
//! shapes of Consul's API documentation and the node and target names its compiler tests
//! expect (default chain, resolver subsets with a default subset, redirect, failover,
//! splitter, router, overrides, the protocol that can't route), and blocking on the entries.

use crate::common::{index_of, TestAgent};
use serde_json::{json, Value};
use std::time::Duration;

async fn config(a: &TestAgent, entry: Value) {
    let resp = a.put_json("/v1/config", entry.clone()).await;
    assert_eq!(
        resp.status(),
        200,
        "{entry}: {}",
        resp.text().await.unwrap()
    );
}

/// The chain a `POST` with `overrides` compiles.
async fn chain_with(a: &TestAgent, service: &str, overrides: Value) -> Value {
    let resp = a
        .http
        .post(a.url(&format!("/v1/discovery-chain/{service}")))
        .json(&overrides)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["Chain"].clone()
}

async fn chain(a: &TestAgent, service: &str) -> Value {
    let (_, body) = a.get_json(&format!("/v1/discovery-chain/{service}")).await;
    body["Chain"].clone()
}

/// The SNI suffix of this agent's targets: `internal.<trust domain>`.
async fn internal(a: &TestAgent) -> String {
    let resp = a.get("/v1/connect/ca/roots").await;
    let trust_domain = if resp.status() == 200 {
        let body: Value = resp.json().await.unwrap();
        body["TrustDomain"].as_str().unwrap_or_default().to_string()
    } else {
        String::new()
    };
    format!("internal.{trust_domain}")
}

fn target(id: &str, service: &str, subset: &str, dc: &str, sni: &str, timeout_s: u64) -> Value {
    let mut t = json!({
        "ID": id,
        "Service": service,
        "Namespace": "default",
        "Partition": "default",
        "Datacenter": dc,
        "MeshGateway": {},
        "Subset": {},
        "TransparentProxy": {},
        "ConnectTimeout": timeout_s * 1_000_000_000,
        "SNI": sni,
        "Name": sni,
    });
    if !subset.is_empty() {
        t["ServiceSubset"] = json!(subset);
    }
    t
}

#[tokio::test]
async fn without_entries_the_chain_is_the_default_one() {
    let a = TestAgent::start().await;
    let internal = internal(&a).await;
    let sni = format!("web.default.dc1.{internal}");
    assert_eq!(
        chain(&a, "web").await,
        json!({
            "ServiceName": "web",
            "Namespace": "default",
            "Partition": "default",
            "Datacenter": "dc1",
            "Default": true,
            "Protocol": "tcp",
            "StartNode": "resolver:web.default.default.dc1",
            "Nodes": {
                "resolver:web.default.default.dc1": {
                    "Type": "resolver",
                    "Name": "web.default.default.dc1",
                    "Resolver": {
                        "ConnectTimeout": "5s",
                        "Default": true,
                        "Target": "web.default.default.dc1"
                    }
                }
            },
            "Targets": {
                "web.default.default.dc1": target("web.default.default.dc1", "web", "", "dc1", &sni, 5)
            },
            "AutoVirtualIPs": null,
            "ManualVirtualIPs": null
        })
    );
    // Compiled for another datacenter, the target moves there.
    let (_, other) = a.get_json("/v1/discovery-chain/web?compile-dc=dc2").await;
    assert_eq!(
        other["Chain"]["StartNode"],
        "resolver:web.default.default.dc2"
    );
    assert_eq!(other["Chain"]["Datacenter"], "dc2");
}

#[tokio::test]
async fn resolver_subsets_default_subset_timeout_and_failover() {
    let a = TestAgent::start().await;
    let internal = internal(&a).await;
    config(
        &a,
        json!({
            "Kind": "service-resolver",
            "Name": "web",
            "DefaultSubset": "v1",
            "ConnectTimeout": "15s",
            "Subsets": {
                "v1": {"Filter": "Service.Meta.version == v1"},
                "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true}
            },
            "Failover": {"*": {"Datacenters": ["dc2", "dc3"]}}
        }),
    )
    .await;
    let c = chain(&a, "web").await;
    assert_eq!(c["StartNode"], "resolver:v1.web.default.default.dc1");
    assert!(c.get("Default").is_none());
    assert_eq!(
        c["Nodes"]["resolver:v1.web.default.default.dc1"],
        json!({
            "Type": "resolver",
            "Name": "v1.web.default.default.dc1",
            "Resolver": {
                "ConnectTimeout": "15s",
                "Target": "v1.web.default.default.dc1",
                "Failover": {"Targets": ["v1.web.default.default.dc2", "v1.web.default.default.dc3"]}
            }
        })
    );
    let mut v1 = target(
        "v1.web.default.default.dc1",
        "web",
        "v1",
        "dc1",
        &format!("v1.web.default.dc1.{internal}"),
        15,
    );
    v1["Subset"] = json!({"Filter": "Service.Meta.version == v1"});
    assert_eq!(c["Targets"]["v1.web.default.default.dc1"], v1);
    assert_eq!(
        c["Targets"]["v1.web.default.default.dc2"]["SNI"],
        format!("v1.web.default.dc2.{internal}")
    );
    assert_eq!(c["Targets"].as_object().unwrap().len(), 3);

    // The overrides of a POST apply to every target and mark the chain as customized.
    let custom = chain_with(
        &a,
        "web",
        json!({"OverrideConnectTimeout": "2s", "OverrideMeshGateway": {"Mode": "local"}}),
    )
    .await;
    let t = &custom["Targets"]["v1.web.default.default.dc1"];
    assert_eq!(t["ConnectTimeout"], 2_000_000_000u64);
    assert_eq!(t["MeshGateway"], json!({"Mode": "local"}));
    assert_eq!(custom["CustomizationHash"].as_str().unwrap().len(), 8);
    // Snake-case names are read too; an unknown gateway mode is refused with Consul's text.
    let snake = chain_with(&a, "web", json!({"override_connect_timeout": "3s"})).await;
    assert_eq!(
        snake["Targets"]["v1.web.default.default.dc1"]["ConnectTimeout"],
        3_000_000_000u64
    );
    let bad = a
        .http
        .post(a.url("/v1/discovery-chain/web"))
        .json(&json!({"OverrideMeshGateway": {"Mode": "sideways"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.text().await.unwrap(),
        "Invalid OverrideMeshGateway.Mode parameter"
    );
}

#[tokio::test]
async fn a_redirect_resolves_to_the_other_service() {
    let a = TestAgent::start().await;
    config(
        &a,
        json!({"Kind": "service-resolver", "Name": "web", "Redirect": {"Service": "api"}}),
    )
    .await;
    config(
        &a,
        json!({"Kind": "service-resolver", "Name": "api", "Subsets": {"v2": {"Filter": "Service.Meta.v == 2"}}, "DefaultSubset": "v2"}),
    )
    .await;
    let c = chain(&a, "web").await;
    assert_eq!(c["ServiceName"], "web");
    assert_eq!(c["StartNode"], "resolver:v2.api.default.default.dc1");
    let ids: Vec<&String> = c["Targets"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["v2.api.default.default.dc1"]);
    assert_eq!(c["Targets"]["v2.api.default.default.dc1"]["Service"], "api");
}

#[tokio::test]
async fn a_datacenter_redirect_and_failover_targets() {
    let a = TestAgent::start().await;
    config(
        &a,
        json!({"Kind": "service-resolver", "Name": "web", "Redirect": {"Datacenter": "dc2"}}),
    )
    .await;
    let c = chain(&a, "web").await;
    assert_eq!(c["StartNode"], "resolver:web.default.default.dc2");
    assert_eq!(c["Targets"]["web.default.default.dc2"]["Datacenter"], "dc2");
    assert!(c.get("Default").is_none());
    config(
        &a,
        json!({"Kind": "service-resolver", "Name": "api", "Failover": {"*": {"Targets": [
            {"Service": "backup"}, {"Datacenter": "dc3"}]}}}),
    )
    .await;
    let c = chain(&a, "api").await;
    assert_eq!(
        c["Nodes"]["resolver:api.default.default.dc1"]["Resolver"]["Failover"],
        json!({"Targets": ["backup.default.default.dc1", "api.default.default.dc3"]})
    );
    let mut ids: Vec<&String> = c["Targets"].as_object().unwrap().keys().collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "api.default.default.dc1",
            "api.default.default.dc3",
            "backup.default.default.dc1"
        ]
    );
}

#[tokio::test]
async fn a_splitter_weights_subsets_of_an_http_service() {
    let a = TestAgent::start().await;
    config(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    config(
        &a,
        json!({"Kind": "service-resolver", "Name": "web", "Subsets": {
            "v1": {"Filter": "Service.Meta.version == v1"},
            "v2": {"Filter": "Service.Meta.version == v2"}}}),
    )
    .await;
    config(
        &a,
        json!({"Kind": "service-splitter", "Name": "web", "Splits": [
            {"Weight": 90, "ServiceSubset": "v1"},
            {"Weight": 10, "ServiceSubset": "v2"}]}),
    )
    .await;
    let c = chain(&a, "web").await;
    assert_eq!(c["Protocol"], "http");
    assert_eq!(c["StartNode"], "splitter:web.default.default");
    assert_eq!(
        c["Nodes"]["splitter:web.default.default"],
        json!({
            "Type": "splitter",
            "Name": "web.default.default",
            "Splits": [
                {"Weight": 90.0, "NextNode": "resolver:v1.web.default.default.dc1"},
                {"Weight": 10.0, "NextNode": "resolver:v2.web.default.default.dc1"}
            ]
        })
    );
    let mut nodes: Vec<&String> = c["Nodes"].as_object().unwrap().keys().collect();
    nodes.sort();
    assert_eq!(
        nodes,
        [
            "resolver:v1.web.default.default.dc1",
            "resolver:v2.web.default.default.dc1",
            "splitter:web.default.default"
        ]
    );
    // Overridden to tcp, the splitter is left out.
    let tcp = chain_with(&a, "web", json!({"OverrideProtocol": "tcp"})).await;
    assert_eq!(tcp["Protocol"], "tcp");
    assert_eq!(tcp["StartNode"], "resolver:web.default.default.dc1");
}

#[tokio::test]
async fn a_router_routes_then_falls_back_to_the_service() {
    let a = TestAgent::start().await;
    config(
        &a,
        json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}),
    )
    .await;
    config(
        &a,
        json!({"Kind": "service-router", "Name": "web", "Routes": [
            {"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin"}}]}),
    )
    .await;
    let c = chain(&a, "web").await;
    assert_eq!(c["Protocol"], "http");
    assert_eq!(c["StartNode"], "router:web.default.default");
    let routes = c["Nodes"]["router:web.default.default"]["Routes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["NextNode"], "resolver:admin.default.default.dc1");
    assert_eq!(
        routes[0]["Definition"]["Match"]["HTTP"]["PathPrefix"],
        "/admin"
    );
    assert_eq!(routes[1]["NextNode"], "resolver:web.default.default.dc1");
    assert_eq!(
        routes[1]["Definition"]["Match"],
        json!({"HTTP": {"PathPrefix": "/"}})
    );
    assert!(c["Targets"]["admin.default.default.dc1"].is_object());
}

#[tokio::test]
async fn a_protocol_that_cannot_route_is_refused() {
    let a = TestAgent::start().await;
    let refused = "discovery chain \"web\" uses a protocol \"tcp\" that does not permit advanced routing or splitting behavior";
    let splitter = json!({"Kind": "service-splitter", "Name": "web", "Splits": [{"Weight": 100, "Service": "api"}]});
    let resp = a.put_json("/v1/config", splitter.clone()).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), refused);
    // Once web speaks http the splitter is accepted, and web can't go back to tcp.
    config(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    config(&a, splitter).await;
    let resp = a
        .put_json(
            "/v1/config",
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "tcp"}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.text().await.unwrap(), refused);
    let resp = a.delete("/v1/config/service-defaults/web").await;
    assert_eq!(resp.status(), 500);
    assert_eq!(chain(&a, "web").await["Protocol"], "http");
}

#[tokio::test]
async fn a_chain_read_blocks_until_an_entry_it_read_changes() {
    let a = TestAgent::start().await;
    let resp = a.get("/v1/discovery-chain/web").await;
    let index = index_of(&resp);
    let watch = a.watch(&format!("/v1/discovery-chain/web?index={index}&wait=5s"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An entry of another service is not read by web's chain.
    config(
        &a,
        json!({"Kind": "service-defaults", "Name": "other", "Protocol": "http"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!watch.is_finished());
    config(
        &a,
        json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"}),
    )
    .await;
    let (woke_at, body, took) = watch.await.unwrap();
    assert!(woke_at > index);
    assert_eq!(body["Chain"]["Protocol"], "http");
    assert!(took < Duration::from_secs(4));
}
