//! Federation states: the one state of this (primary) datacenter, as a Consul primary's
//! leader keeps it, listing its mesh gateways; the shapes of Consul's
//! `FederationStateList`, `FederationStateGet` (a 404 without body for another datacenter)
//! and `FederationStateListMeshGateways` (`{}` without gateways).

use crate::common::TestAgent;
use serde_json::json;

#[tokio::test]
async fn the_local_state_lists_the_mesh_gateways() {
    let a = TestAgent::start_with(|f| f.server = Some(true)).await;
    let (_, states) = a.get_json("/v1/internal/federation-states").await;
    assert_eq!(states.as_array().unwrap().len(), 1);
    let state = &states[0];
    assert_eq!(state["Datacenter"], "dc1");
    assert!(state.get("MeshGateways").is_none(), "{state}");
    for key in [
        "UpdatedAt",
        "PrimaryModifyIndex",
        "CreateIndex",
        "ModifyIndex",
    ] {
        assert!(state.get(key).is_some(), "{key}: {state}");
    }
    let (_, gateways) = a
        .get_json("/v1/internal/federation-states/mesh-gateways")
        .await;
    assert_eq!(gateways, json!({}));

    a.put_ok(
        "/v1/agent/service/register",
        json!({"Kind": "mesh-gateway", "Name": "mesh-gateway", "Port": 8443}).to_string(),
    )
    .await;
    let (index, states) = a.get_json("/v1/internal/federation-states").await;
    let mesh = &states[0]["MeshGateways"];
    assert_eq!(mesh.as_array().unwrap().len(), 1, "{states}");
    assert_eq!(mesh[0]["Service"]["Kind"], "mesh-gateway");
    assert_eq!(mesh[0]["Service"]["Port"], 8443);
    assert_eq!(states[0]["ModifyIndex"], json!(index));
    let (_, gateways) = a
        .get_json("/v1/internal/federation-states/mesh-gateways")
        .await;
    assert_eq!(gateways["dc1"], *mesh);

    let (_, one) = a.get_json("/v1/internal/federation-state/dc1").await;
    assert_eq!(one["State"], states[0]);
    assert_eq!(one["Index"], json!(index));
    assert_eq!(one["KnownLeader"], true);
    assert_eq!(one["ConsistencyLevel"], "leader");
    assert_eq!(one["ResultsFilteredByACLs"], false);
}

#[tokio::test]
async fn another_datacenter_has_no_state() {
    let a = TestAgent::start().await;
    let resp = a.get("/v1/internal/federation-state/dc2").await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("X-Consul-Index"));
    assert_eq!(resp.text().await.unwrap(), "");
    let resp = a.get("/v1/internal/federation-state/").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), "Missing datacenter name");
}

#[tokio::test]
async fn a_blocking_list_wakes_when_a_mesh_gateway_registers() {
    let a = TestAgent::start().await;
    let (index, _) = a.get_json("/v1/internal/federation-states").await;
    let waiter = a.watch(&format!(
        "/v1/internal/federation-states?index={index}&wait=10s"
    ));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Kind": "mesh-gateway", "Name": "gw", "Port": 443}).to_string(),
    )
    .await;
    let (_, states, _) = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("the list wakes")
        .unwrap();
    assert_eq!(states[0]["MeshGateways"][0]["Service"]["Service"], "gw");
}
