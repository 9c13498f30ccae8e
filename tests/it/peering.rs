//! `POST /v1/peering/token` and `/v1/peering/establish` on an agent that serves no gRPC:
//! requests and tokens validated with Consul's texts, then refused as Consul refuses them
//! when it cannot make or reach a peering, with nothing written (the peering list stays
//! empty).

use crate::common::TestAgent;
use crate::routes::request;
use base64::Engine;
use serde_json::{json, Value};

async fn post(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    request(a, "POST", path, &body.to_string()).await
}

fn rpc(message: &str) -> (u16, String) {
    (500, format!("rpc error: code = Unknown desc = {message}"))
}

fn token(value: Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

async fn connect_agent() -> TestAgent {
    TestAgent::start_with(|f| f.hcl.push("connect { enabled = true }".into())).await
}

#[tokio::test]
async fn generating_a_token_needs_grpc_tls() {
    let a = connect_agent().await;
    let before = a.store().read().unwrap().global_index().unwrap();
    assert_eq!(
        post(&a, "/v1/peering/token", json!({})).await,
        (
            400,
            "PeerName is required in the payload when generating a new peering token.".into()
        )
    );
    assert_eq!(
        post(&a, "/v1/peering/token", json!({"PeerName": "East"})).await,
        rpc("East is not a valid peer name: a valid peering name must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character")
    );
    assert_eq!(
        post(&a, "/v1/peering/token", json!({"PeerName": "east", "Meta": {"consul-x": "1"}})).await,
        rpc("meta tags failed validation: Couldn't load metadata pair ('consul-x', '1'): Key prefix 'consul-' is reserved for internal use")
    );
    assert_eq!(
        post(&a, "/v1/peering/token", json!({"PeerName": "east"})).await,
        rpc("TLS for gRPC must be enabled when generating peering tokens")
    );
    assert_eq!(
        request(&a, "POST", "/v1/peering/token", "{").await,
        (400, "Body decoding failed: unexpected EOF".into())
    );
    assert_eq!(a.store().read().unwrap().global_index().unwrap(), before);
    let (_, peerings) = a.get_json("/v1/peerings").await;
    assert_eq!(peerings, json!([]));
}

#[tokio::test]
async fn establishing_validates_the_token_as_consul() {
    let a = connect_agent().await;
    let establish = |name: &str, tok: String| json!({"PeerName": name, "PeeringToken": tok});
    assert_eq!(
        post(&a, "/v1/peering/establish", json!({"PeerName": "east"})).await,
        (
            400,
            "PeeringToken is required in the payload when establishing a peering.".into()
        )
    );
    assert_eq!(
        post(&a, "/v1/peering/establish", json!({"PeeringToken": "x"})).await,
        (
            400,
            "PeerName is required in the payload when establishing a peering.".into()
        )
    );
    assert_eq!(
        post(&a, "/v1/peering/establish", establish("east", "ab!".into())).await,
        rpc("failed to decode token: illegal base64 data at input byte 2")
    );
    assert_eq!(
        post(
            &a,
            "/v1/peering/establish",
            establish("east", token(json!({})))
        )
        .await,
        rpc("peering token server addresses value is empty")
    );
    assert_eq!(
        post(
            &a,
            "/v1/peering/establish",
            establish("east", token(json!({"ServerAddresses": ["1.2.3.4"]})))
        )
        .await,
        rpc("1.2.3.4 is not a valid peering server address")
    );
    assert_eq!(
        post(
            &a,
            "/v1/peering/establish",
            establish(
                "east",
                token(json!({"CA": ["nope"], "ServerAddresses": ["1.2.3.4:8503"]}))
            )
        )
        .await,
        rpc("peering token invalid CA: no PEM-encoded data found")
    );
    assert_eq!(
        post(
            &a,
            "/v1/peering/establish",
            establish("east", token(json!({"ServerAddresses": ["1.2.3.4:8503"]})))
        )
        .await,
        rpc("peering token peer ID value is empty")
    );
    // This cluster's own name is refused; any other peer cannot be reached without gRPC.
    let roots = a.get_json("/v1/connect/ca/roots").await.1;
    let own = format!(
        "server.dc1.peering.{}",
        roots["TrustDomain"].as_str().unwrap()
    );
    let valid = |server_name: &str| {
        token(json!({
            "ServerAddresses": ["10.0.0.1:8503"],
            "ServerName": server_name,
            "PeerID": "3c1b6ba7-c7a5-4c3c-8d0b-5bd35ae2a58c",
        }))
    };
    assert_eq!(
        post(&a, "/v1/peering/establish", establish("east", valid(&own))).await,
        rpc(&format!("cannot create a peering within the same cluster \"{own}\". Refer to the `exported-services` documentation if you want to export between partitions without peering"))
    );
    let (status, body) = post(
        &a,
        "/v1/peering/establish",
        establish("east", valid("server.dc2.peering.other.consul")),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("rpc error: code = Unknown desc = 1 error occurred:\n\t* failed to exchange peering secret through address \"10.0.0.1:8503\""),
        "{body}"
    );
    let (_, peerings) = a.get_json("/v1/peerings").await;
    assert_eq!(peerings, json!([]));
}

#[tokio::test]
async fn making_peerings_needs_peering_write_once_the_request_is_valid() {
    let (a, _dir) = crate::acl_enforcement::acl_agent().await;
    let valid_token = token(json!({
        "ServerAddresses": ["10.0.0.1:8503"],
        "PeerID": "3c1b6ba7-c7a5-4c3c-8d0b-5bd35ae2a58c",
    }));
    let requests = [
        ("/v1/peering/token", json!({"PeerName": "east"})),
        (
            "/v1/peering/establish",
            json!({"PeerName": "east", "PeeringToken": valid_token}),
        ),
    ];
    for (path, body) in requests {
        let (status, text) = post(&a, path, body).await;
        assert_eq!(status, 403, "{path}");
        assert!(
            text.ends_with("lacks permission 'peering:write'"),
            "{path}: {text}"
        );
    }
    // As Consul's, the request is checked first: a bad one is refused for what it is.
    assert_eq!(
        post(&a, "/v1/peering/token", json!({"PeerName": "East"}))
            .await
            .0,
        500
    );
}
