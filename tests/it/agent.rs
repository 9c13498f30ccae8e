use crate::common::TestAgent;
use serde_json::json;

#[tokio::test]
async fn agent_self_describes_the_node() {
    let a = TestAgent::start().await;
    let (_, body) = a.get_json("/v1/agent/self").await;
    let config = &body["Config"];
    assert_eq!(config["Datacenter"], "dc1");
    assert_eq!(config["PrimaryDatacenter"], "dc1");
    assert_eq!(config["NodeName"], "test-node");
    assert_eq!(config["Version"], "1.22.0");
    assert_eq!(config["Server"], false);
    assert_eq!(config["NodeID"].as_str().unwrap().len(), 36);
    assert_eq!(body["Member"]["Name"], "test-node");
    assert_eq!(body["Member"]["Status"], 1);
    assert_eq!(body["Member"]["Tags"]["role"], "node", "a client agent");
    assert_eq!(body["Meta"]["consul-version"], "1.22.0");
    assert!(body["DebugConfig"].is_object());
}

#[tokio::test]
async fn the_node_id_survives_a_restart() {
    let a = TestAgent::start().await;
    let (_, before) = a.get_json("/v1/agent/self").await;
    let a = a.restart().await;
    let (_, after) = a.get_json("/v1/agent/self").await;
    assert_eq!(before["Config"]["NodeID"], after["Config"]["NodeID"]);
}

#[tokio::test]
async fn status_and_datacenters() {
    let a = TestAgent::start_with(|f| f.datacenter = Some("east".into())).await;
    let (_, leader) = a.get_json("/v1/status/leader").await;
    assert_eq!(leader, json!("127.0.0.1:8300"));
    let (_, peers) = a.get_json("/v1/status/peers").await;
    assert_eq!(peers, json!(["127.0.0.1:8300"]));
    let (_, dcs) = a.get_json("/v1/catalog/datacenters").await;
    assert_eq!(dcs, json!(["east"]));
    assert_eq!(
        a.http
            .put(a.url("/v1/status/leader"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn a_second_agent_on_the_same_data_dir_fails_fast() {
    let a = TestAgent::start().await;
    let flags = legate::config::AgentFlags {
        data_dir: Some(a.data_dir.clone()),
        http_port: Some(0),
        ..Default::default()
    };
    let config = legate::config::Config::load(&flags).unwrap();
    let err = match legate::process::Agent::start(config).await {
        Ok(_) => panic!("second agent started on a locked data dir"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use by another agent"), "{err}");
}

#[tokio::test]
async fn the_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let a = TestAgent::start().await;
    let mode = std::fs::metadata(&a.data_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn agent_self_has_no_xds_without_a_grpc_server() {
    // Configured gRPC ports parse and show, but no gRPC server runs to serve Envoy.
    let a = TestAgent::start_with(|f| {
        f.hcl
            .push("ports {\n  grpc = 8502\n  grpc_tls = 8503\n}".into())
    })
    .await;
    let (_, body) = a.get_json("/v1/agent/self").await;
    assert_eq!(body["DebugConfig"]["GRPCPort"], 8502);
    assert_eq!(body["DebugConfig"]["GRPCTLSPort"], 8503);
    assert!(body.get("xDS").is_none(), "{body}");
}
