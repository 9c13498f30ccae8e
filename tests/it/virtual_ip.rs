//! Service virtual IPs: the address of 240.0.0.0/4 a Connect service gets, shown as the
//! `consul-virtual` tagged address of its mesh instances, and `PUT
//! /v1/internal/service-virtual-ip` (Consul's API test `TestAPI_Internal_AssignServiceVirtualIP`:
//! resolvers to attach addresses to, a missing service as a no-op, addresses moving between
//! services).

use crate::common::TestAgent;
use crate::routes::request;
use serde_json::{json, Value};

async fn assign(a: &TestAgent, service: &str, ips: &[&str]) -> (u16, String) {
    let body = json!({"Service": service, "ManualVIPs": ips}).to_string();
    request(a, "PUT", "/v1/internal/service-virtual-ip", &body).await
}

fn unassigned(names: &[&str]) -> Value {
    if names.is_empty() {
        return Value::Null;
    }
    names
        .iter()
        .map(|n| json!({"ServiceName": {"Name": n}, "Peer": ""}))
        .collect()
}

#[tokio::test]
async fn manual_addresses_follow_consuls_api_test() {
    let a = TestAgent::start().await;
    for name in ["one", "two", "three"] {
        let resp = a
            .put_json(
                "/v1/config",
                json!({"Kind": "service-resolver", "Name": name}),
            )
            .await;
        assert_eq!(resp.status(), 200);
    }
    let steps: [(&str, &[&str], bool, &[&str]); 6] = [
        ("missing", &["1.1.1.1", "2.2.2.2"], false, &[]),
        ("one", &["1.1.1.1", "2.2.2.2", "3.3.3.3"], true, &[]),
        ("two", &["2.2.2.2"], true, &["one"]),
        ("three", &["3.3.3.3"], true, &["one"]),
        ("missing", &["1.1.1.1", "2.2.2.2", "3.3.3.3"], false, &[]),
        (
            "one",
            &["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
            true,
            &["three", "two"],
        ),
    ];
    for (service, ips, found, from) in steps {
        let (status, body) = assign(&a, service, ips).await;
        assert_eq!(status, 200, "{service}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"Found": found, "UnassignedFrom": unassigned(from)}),
            "{service} {ips:?}"
        );
    }
}

#[tokio::test]
async fn only_ipv4_addresses_are_accepted_and_nothing_changes_otherwise() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/config",
        json!({"Kind": "service-resolver", "Name": "one"}),
    )
    .await;
    let before = a.store().read().unwrap().global_index().unwrap();
    assert_eq!(
        assign(&a, "one", &["1.1.1.1", "nope"]).await,
        (500, "\"<nil>\" is not a valid IPv4 address".into())
    );
    assert_eq!(
        assign(&a, "one", &["::1"]).await,
        (500, "\"::1\" is not a valid IPv4 address".into())
    );
    let (status, text) = request(
        &a,
        "PUT",
        "/v1/internal/service-virtual-ip",
        r#"{"ManualVIPs": 3}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("Request decode failed: json: cannot unmarshal number"),
        "{text}"
    );
    assert_eq!(a.store().read().unwrap().global_index().unwrap(), before);
}

#[tokio::test]
async fn mesh_instances_show_their_services_virtual_ip() {
    let a = TestAgent::start_with(|f| f.hcl.push("connect { enabled = true }".into())).await;
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 80, "Connect": {"SidecarService": {}}}).to_string(),
    )
    .await;
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Name": "api", "Port": 9090, "Connect": {"Native": true}}).to_string(),
    )
    .await;
    let (_, proxies) = a.get_json("/v1/catalog/connect/web").await;
    assert_eq!(
        proxies[0]["ServiceTaggedAddresses"]["consul-virtual"],
        json!({"Address": "240.0.0.1", "Port": proxies[0]["ServicePort"]})
    );
    let (_, native) = a.get_json("/v1/health/connect/api").await;
    assert_eq!(
        native[0]["Service"]["TaggedAddresses"]["consul-virtual"],
        json!({"Address": "240.0.0.2", "Port": 9090})
    );
    // The plain service itself is no mesh instance.
    let (_, web) = a.get_json("/v1/catalog/service/web").await;
    assert!(web[0]["ServiceTaggedAddresses"]
        .get("consul-virtual")
        .is_none());
    // A second proxy of the same service shares its address; a registered service is found.
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Name": "web", "ID": "web-2", "Port": 81, "Connect": {"SidecarService": {}}})
            .to_string(),
    )
    .await;
    let (_, proxies) = a.get_json("/v1/catalog/connect/web").await;
    let addresses: Vec<&Value> = proxies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["ServiceTaggedAddresses"]["consul-virtual"]["Address"])
        .collect();
    assert_eq!(addresses, [&json!("240.0.0.1"), &json!("240.0.0.1")]);
    assert_eq!(
        assign(&a, "web", &["10.0.0.9"]).await,
        (200, r#"{"Found":true,"UnassignedFrom":null}"#.into())
    );
}

#[tokio::test]
async fn assigning_needs_service_write() {
    let (a, _dir) = crate::acl_enforcement::acl_agent().await;
    assert_eq!(
        assign(&a, "web", &[]).await,
        (
            403,
            "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'service:write' on \"web\"".into()
        )
    );
}

#[tokio::test]
async fn the_discovery_chain_carries_the_services_virtual_ips() {
    let a = TestAgent::start().await;
    let (_, before) = a.get_json("/v1/discovery-chain/db").await;
    assert_eq!(before["Chain"]["AutoVirtualIPs"], Value::Null);
    assert_eq!(before["Chain"]["ManualVirtualIPs"], Value::Null);
    a.put_json(
        "/v1/config",
        json!({"Kind": "service-resolver", "Name": "db"}),
    )
    .await;
    assign(&a, "db", &["10.0.0.7"]).await;
    let (_, after) = a.get_json("/v1/discovery-chain/db").await;
    assert_eq!(after["Chain"]["AutoVirtualIPs"], json!(["240.0.0.1"]));
    assert_eq!(after["Chain"]["ManualVirtualIPs"], json!(["10.0.0.7"]));
}

#[tokio::test]
async fn a_terminating_gateway_shows_its_linked_services_virtual_ips() {
    let a = TestAgent::start().await;
    let register = |body: Value| {
        let body = body.to_string();
        let a = &a;
        async move { assert_eq!(a.put_ok("/v1/catalog/register", body).await, "true") }
    };
    register(json!({"Node": "bar", "Address": "10.0.0.2",
                     "Service": {"Service": "api", "Port": 80, "Connect": {"Native": true}}}))
    .await;
    register(json!({"Node": "bar", "Address": "10.0.0.2",
                     "Service": {"Kind": "terminating-gateway", "Service": "tgate1", "Port": 8443}}))
    .await;
    let gateway = || async {
        let (_, nodes) = a.get_json("/v1/catalog/service/tgate1").await;
        nodes[0]["ServiceTaggedAddresses"].clone()
    };
    assert_eq!(gateway().await, Value::Null);
    a.put_json(
        "/v1/config",
        json!({"Kind": "terminating-gateway", "Name": "tgate1",
               "Services": [{"Name": "api"}, {"Name": "baz"}, {"Name": "*"}]}),
    )
    .await;
    // `baz` is only named by the entry so far, and has an address all the same.
    assert_eq!(
        gateway().await,
        json!({
            "consul-virtual:api": {"Address": "240.0.0.1", "Port": 0},
            "consul-virtual:baz": {"Address": "240.0.0.2", "Port": 0},
        })
    );
    a.put_json(
        "/v1/config",
        json!({"Kind": "terminating-gateway", "Name": "tgate1", "Services": [{"Name": "baz"}]}),
    )
    .await;
    assert_eq!(
        gateway().await,
        json!({"consul-virtual:baz": {"Address": "240.0.0.2", "Port": 0}})
    );
    assert_eq!(
        a.delete("/v1/config/terminating-gateway/tgate1")
            .await
            .status(),
        200
    );
    assert_eq!(gateway().await, Value::Null);
}
