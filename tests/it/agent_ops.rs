//! Agent operations: members, join, force-leave, leave, reload, metrics, monitor, tokens, user
//! events, coordinates and the operator raft/autopilot endpoints.

use crate::common::TestAgent;
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::{Duration, Instant};

async fn status_and_text(resp: reqwest::Response) -> (u16, String) {
    (resp.status().as_u16(), resp.text().await.unwrap())
}

// ----- members, join, force-leave -----

#[tokio::test]
async fn members_lists_this_node() {
    let a = TestAgent::start().await;
    let (_, members) = a.get_json("/v1/agent/members").await;
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 1);
    let m = &members[0];
    assert_eq!(m["Name"], "test-node");
    assert_eq!(m["Addr"], "127.0.0.1");
    assert_eq!(m["Port"], 8301);
    assert_eq!(m["Status"], 1);
    // A client agent's serf role is `node`, without the server-only tags.
    assert_eq!(m["Tags"]["role"], "node");
    assert_eq!(m["Tags"]["dc"], "dc1");
    assert!(m["Tags"].get("port").is_none());
    // A client agent has no WAN pool.
    let (_, wan) = a.get_json("/v1/agent/members?wan=1").await;
    assert_eq!(wan, Value::Null);
    let (code, text) = status_and_text(a.get("/v1/agent/members?wan=1&segment=x").await).await;
    assert_eq!(
        (code, text.as_str()),
        (400, "Cannot provide a segment with wan=true")
    );
    let (code, text) = status_and_text(a.get("/v1/agent/members?segment=x").await).await;
    assert_eq!(
        (code, text.as_str()),
        (
            500,
            "Network segments are not supported in this version of Consul"
        )
    );
    let (_, all) = a.get_json("/v1/agent/members?segment=_all").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_server_is_also_the_wan_pool() {
    let a = TestAgent::start_with(|f| f.server = Some(true)).await;
    let (_, wan) = a.get_json("/v1/agent/members?wan=1").await;
    assert_eq!(wan[0]["Name"], "test-node.dc1");
    assert_eq!(wan[0]["Port"], 8302);
    assert!(wan[0]["Tags"].get("wan_join_port").is_none());
    // Force-leaving the WAN name of this server is accepted (and refuted: it is alive).
    let resp = a.put("/v1/agent/force-leave/test-node.dc1?wan", "").await;
    assert_eq!(resp.status(), 200);
    let (code, text) =
        status_and_text(a.put("/v1/agent/force-leave/other.dc1?wan", "").await).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "agent: No node found with name ''")
    );
}

#[tokio::test]
async fn join_succeeds_only_for_this_agent() {
    let a = TestAgent::start().await;
    assert_eq!(a.put("/v1/agent/join/127.0.0.1", "").await.status(), 200);
    assert_eq!(
        a.put("/v1/agent/join/127.0.0.1:8301", "").await.status(),
        200
    );
    let port = crate::common::free_port();
    let (code, text) =
        status_and_text(a.put(&format!("/v1/agent/join/127.0.0.1:{port}"), "").await).await;
    assert_eq!(code, 500);
    assert_eq!(
        text,
        format!(
            "1 error occurred:\n\t* Failed to join 127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connect: connection refused\n\n"
        )
    );
    let (code, text) = status_and_text(a.put("/v1/agent/join/127.0.0.1?wan=1", "").await).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "Must be a server to join WAN cluster")
    );
    assert_eq!(a.get("/v1/agent/join/127.0.0.1").await.status(), 405);
}

#[tokio::test]
async fn force_leave_knows_only_this_node() {
    let a = TestAgent::start().await;
    assert_eq!(
        a.put("/v1/agent/force-leave/test-node", "").await.status(),
        200
    );
    assert_eq!(
        a.put("/v1/agent/force-leave/test-node?prune", "")
            .await
            .status(),
        200
    );
    let (code, text) = status_and_text(a.put("/v1/agent/force-leave/ghost", "").await).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "agent: No node found with name 'ghost'")
    );
    // The node is still there and alive.
    let (_, members) = a.get_json("/v1/agent/members").await;
    assert_eq!(members[0]["Status"], 1);
}

// ----- user events -----

#[tokio::test]
async fn events_fire_and_list_with_consuls_shapes() {
    let a = TestAgent::start().await;
    let (_, empty) = a.get_json("/v1/event/list").await;
    assert_eq!(empty, json!([]));
    let resp = a.get("/v1/event/list").await;
    assert_eq!(resp.headers()["X-Consul-Index"], "1");

    let fired: Value = a
        .put("/v1/event/fire/deploy", "v1.2.3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fired["Name"], "deploy");
    assert_eq!(fired["Payload"], crate::common::b64("v1.2.3"));
    assert_eq!(fired["NodeFilter"], "");
    assert_eq!(fired["ServiceFilter"], "");
    assert_eq!(fired["TagFilter"], "");
    assert_eq!(fired["Version"], 1);
    assert_eq!(fired["LTime"], 0);
    let id = fired["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);

    let second: Value = a
        .put("/v1/event/fire/restart", "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["Payload"], Value::Null);

    let (index, events) = a.get_json("/v1/event/list").await;
    let events = events.as_array().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["ID"], id.as_str());
    assert_eq!(events[0]["LTime"], 1);
    assert_eq!(events[1]["LTime"], 2);
    // The index is the newest event's ID folded to 64 bits.
    let hex: String = second["ID"]
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| *c != '-')
        .collect();
    let expected =
        u64::from_str_radix(&hex[..16], 16).unwrap() ^ u64::from_str_radix(&hex[16..], 16).unwrap();
    assert_eq!(index, expected);

    let (_, named) = a.get_json("/v1/event/list?name=deploy").await;
    assert_eq!(named.as_array().unwrap().len(), 1);
    assert_eq!(named[0]["Payload"], crate::common::b64("v1.2.3"));
}

#[tokio::test]
async fn event_errors_match_consul() {
    let a = TestAgent::start().await;
    let (code, text) = status_and_text(a.put("/v1/event/fire/", "").await).await;
    assert_eq!((code, text.as_str()), (400, "Missing name"));
    let (code, text) = status_and_text(a.put("/v1/event/fire/x?tag=v1", "").await).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "Cannot provide tag filter without service filter")
    );
    let (code, text) = status_and_text(a.put("/v1/event/fire/x?node=(", "").await).await;
    assert_eq!(
        (code, text.as_str()),
        (
            500,
            "Invalid node filter: error parsing regexp: missing closing ): `(`"
        )
    );
    let (code, text) = status_and_text(a.put("/v1/event/fire/x", vec![b'x'; 600]).await).await;
    assert_eq!(
        (code, text.as_str()),
        (
            500,
            "user event exceeds configured limit of 512 bytes before encoding"
        )
    );
    let (code, text) = status_and_text(a.put("/v1/event/fire/x?dc=dc9", "").await).await;
    assert_eq!((code, text.as_str()), (500, "No path to datacenter"));
    assert_eq!(a.get("/v1/event/fire/x").await.status(), 405);
    // Nothing was recorded.
    let (_, events) = a.get_json("/v1/event/list").await;
    assert_eq!(events, json!([]));
}

#[tokio::test]
async fn events_are_recorded_only_when_their_filters_match() {
    let a = TestAgent::start().await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "web", "ID": "web-1", "Tags": ["blue"]}),
    )
    .await;
    let fire = |q: &'static str| a.put(q, "");
    assert_eq!(fire("/v1/event/fire/a?node=^test-").await.status(), 200);
    assert_eq!(fire("/v1/event/fire/b?node=other").await.status(), 200);
    assert_eq!(fire("/v1/event/fire/c?service=web").await.status(), 200);
    assert_eq!(fire("/v1/event/fire/d?service=db").await.status(), 200);
    assert_eq!(
        fire("/v1/event/fire/e?service=web&tag=blu").await.status(),
        200
    );
    assert_eq!(
        fire("/v1/event/fire/f?service=web&tag=green")
            .await
            .status(),
        200
    );
    // Remote exec is disabled: its event is not kept.
    assert_eq!(fire("/v1/event/fire/_rexec").await.status(), 200);
    let (_, events) = a.get_json("/v1/event/list").await;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c", "e"]);
    // The Lamport clock still counted every fired event.
    let ltimes: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["LTime"].as_u64().unwrap())
        .collect();
    assert_eq!(ltimes, [1, 3, 5]);
}

#[tokio::test]
async fn event_list_blocks_until_an_event_is_recorded() {
    let a = TestAgent::start().await;
    a.put("/v1/event/fire/first", "").await;
    let (index, _) = a.get_json("/v1/event/list").await;

    // A different index returns at once.
    let started = Instant::now();
    a.get_json(&format!("/v1/event/list?index={}&wait=5s", index + 1))
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));

    // The current index times out with the same result.
    let started = Instant::now();
    let (same, _) = a
        .get_json(&format!("/v1/event/list?index={index}&wait=300ms"))
        .await;
    assert_eq!(same, index);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let url = a.url(&format!("/v1/event/list?index={index}&wait=10s"));
    let client = a.http.clone();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let resp = client.get(url).send().await.unwrap();
        let body: Value = resp.json().await.unwrap();
        (body, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    a.put("/v1/event/fire/second", "").await;
    let (body, elapsed) = waiter.await.unwrap();
    assert!(elapsed < Duration::from_secs(5));
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[1]["Name"], "second");
}

#[tokio::test]
async fn the_event_buffer_keeps_256() {
    let a = TestAgent::start().await;
    for i in 0..260 {
        a.put(&format!("/v1/event/fire/e{i}"), "").await;
    }
    let (_, events) = a.get_json("/v1/event/list").await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 256);
    assert_eq!(events[0]["Name"], "e4");
    assert_eq!(events[255]["LTime"], 260);
}

// ----- coordinates -----

#[tokio::test]
async fn coordinates_start_at_the_origin_and_take_updates() {
    let a = TestAgent::start().await;
    let origin =
        json!({"Vec": [0, 0, 0, 0, 0, 0, 0, 0], "Error": 1.5, "Adjustment": 0, "Height": 0.00001});
    let (_, dcs) = a.get_json("/v1/coordinate/datacenters").await;
    assert_eq!(
        dcs,
        json!([{"Datacenter": "dc1", "AreaID": "wan",
                "Coordinates": [{"Node": "test-node.dc1", "Segment": "", "Coord": origin}]}])
    );
    let (index, nodes) = a.get_json("/v1/coordinate/nodes").await;
    assert_eq!(
        nodes,
        json!([{"Node": "test-node", "Segment": "", "Coord": origin}])
    );
    let (_, node) = a.get_json("/v1/coordinate/node/test-node").await;
    assert_eq!(node, nodes);
    let resp = a.get("/v1/coordinate/node/ghost").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "");

    // A blocking read wakes on an update.
    let url = a.url(&format!("/v1/coordinate/nodes?index={index}&wait=10s"));
    let client = a.http.clone();
    let waiter = tokio::spawn(async move {
        let resp = client.get(url).send().await.unwrap();
        let index: u64 = resp.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (index, resp.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    let coord = json!({"Vec": [0.5, 0, 0, 0, 0, 0, 0, -0.25], "Error": 0.3, "Adjustment": 0.01, "Height": 0.002});
    let resp = a
        .put_json(
            "/v1/coordinate/update",
            json!({"Node": "test-node", "Coord": coord}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let (new_index, body) = waiter.await.unwrap();
    assert!(new_index > index);
    assert_eq!(body[0]["Coord"], coord);

    // Updates for nodes the catalog doesn't know are accepted and dropped.
    let resp = a
        .put_json(
            "/v1/coordinate/update",
            json!({"Node": "ghost", "Coord": coord}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(a.get("/v1/coordinate/node/ghost").await.status(), 404);
    // A catalog node's are kept, and go with the node.
    a.put_json(
        "/v1/catalog/register",
        json!({"Node": "ext", "Address": "10.0.0.9"}),
    )
    .await;
    a.put_json(
        "/v1/coordinate/update",
        json!({"Node": "ext", "Coord": coord}),
    )
    .await;
    let (_, nodes) = a.get_json("/v1/coordinate/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 2);
    a.put_json("/v1/catalog/deregister", json!({"Node": "ext"}))
        .await;
    let (_, nodes) = a.get_json("/v1/coordinate/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    // ?segment filters.
    let (_, none) = a.get_json("/v1/coordinate/nodes?segment=alpha").await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn coordinates_survive_a_restart() {
    let a = TestAgent::start().await;
    let coord = json!({"Vec": [0.5, 0, 0, 0, 0, 0, 0, -0.25], "Error": 0.3, "Adjustment": 0.01, "Height": 0.002});
    let update = json!({"Node": "test-node", "Segment": "alpha", "Coord": coord});
    a.put_json("/v1/coordinate/update", update).await;
    let (index, before) = a.get_json("/v1/coordinate/nodes").await;
    assert_eq!(before.as_array().unwrap().len(), 2);
    let a = a.restart().await;
    let (after_index, after) = a.get_json("/v1/coordinate/nodes").await;
    // The start keeps the measured coordinate rather than going back to the origin.
    assert_eq!(after, before);
    assert_eq!(after_index, index);
}

#[tokio::test]
async fn coordinate_update_errors() {
    let a = TestAgent::start().await;
    let (code, text) = status_and_text(
        a.put_json(
            "/v1/coordinate/update",
            json!({"Node": "test-node", "Coord": {"Vec": [0, 0, 0]}}),
        )
        .await,
    )
    .await;
    assert_eq!((code, text.as_str()), (500, "incompatible coordinate"));
    let (code, text) = status_and_text(
        a.put_json("/v1/coordinate/update", json!({"Node": "test-node"}))
            .await,
    )
    .await;
    assert_eq!((code, text.as_str()), (500, "invalid coordinate"));
    let (code, text) = status_and_text(
        a.put_json(
            "/v1/coordinate/update",
            json!({"Node": "test-node", "Coord": {"Error": "big"}}),
        )
        .await,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        text,
        "Request decode failed: json: cannot unmarshal string into Go struct field CoordinateUpdateRequest.Coord.Error of type float64"
    );
    let (code, text) = status_and_text(
        a.put_json("/v1/coordinate/update", json!({"Bogus": 1}))
            .await,
    )
    .await;
    assert_eq!(
        (code, text.as_str()),
        (400, "Request decode failed: json: unknown field \"Bogus\"")
    );
}

// ----- operator -----

#[tokio::test]
async fn raft_configuration_is_this_single_voter() {
    let a = TestAgent::start().await;
    let (_, me) = a.get_json("/v1/agent/self").await;
    let id = me["Config"]["NodeID"].as_str().unwrap().to_string();
    let (_, raft) = a.get_json("/v1/operator/raft/configuration").await;
    let server = &raft["Servers"][0];
    assert_eq!(raft["Servers"].as_array().unwrap().len(), 1);
    assert_eq!(server["ID"], id.as_str());
    assert_eq!(server["Node"], "test-node");
    assert_eq!(server["Address"], "127.0.0.1:8300");
    assert_eq!(server["Leader"], true);
    assert_eq!(server["Voter"], true);
    assert_eq!(server["ProtocolVersion"], "3");
    assert_eq!(raft["Index"], 1);

    let del = |q: String| {
        a.http
            .delete(a.url(&format!("/v1/operator/raft/peer{q}")))
            .send()
    };
    let (code, text) = status_and_text(del(String::new()).await.unwrap()).await;
    assert_eq!(code, 400);
    assert_eq!(
        text,
        "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove"
    );
    let (code, text) = status_and_text(del("?id=a&address=b".into()).await.unwrap()).await;
    assert_eq!(
        (code, text.as_str()),
        (400, "Must specify only one of ?id or ?address")
    );
    let (code, text) = status_and_text(del("?id=nope".into()).await.unwrap()).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "id \"nope\" was not found in the Raft configuration")
    );
    let (code, text) = status_and_text(del("?address=10.0.0.1:8300".into()).await.unwrap()).await;
    assert_eq!(
        (code, text.as_str()),
        (
            500,
            "address \"10.0.0.1:8300\" was not found in the Raft configuration"
        )
    );
    for q in [format!("?id={id}"), "?address=127.0.0.1:8300".to_string()] {
        let (code, text) = status_and_text(del(q).await.unwrap()).await;
        assert_eq!(
            (code, text.as_str()),
            (500, "need at least one voter in configuration: {[]}")
        );
    }

    let post = |q: String| {
        a.http
            .post(a.url(&format!("/v1/operator/raft/transfer-leader{q}")))
            .send()
    };
    let (code, text) = status_and_text(post(String::new()).await.unwrap()).await;
    assert_eq!(
        (code, text.as_str()),
        (500, "rpc error: code = Unknown desc = cannot find peer")
    );
    let (_, text) = status_and_text(post(format!("?id={id}")).await.unwrap()).await;
    assert_eq!(
        text,
        "rpc error: code = Unknown desc = cannot transfer leadership to itself"
    );
    let (_, text) = status_and_text(post("?id=other".into()).await.unwrap()).await;
    assert_eq!(
        text,
        "rpc error: code = Unknown desc = Could not find address for server id other"
    );
    assert_eq!(
        a.get("/v1/operator/raft/transfer-leader").await.status(),
        405
    );
}

#[tokio::test]
async fn autopilot_configuration_with_cas() {
    let a = TestAgent::start().await;
    let (_, config) = a.get_json("/v1/operator/autopilot/configuration").await;
    assert_eq!(config["CleanupDeadServers"], true);
    assert_eq!(config["LastContactThreshold"], "200ms");
    assert_eq!(config["MaxTrailingLogs"], 250);
    assert_eq!(config["MinQuorum"], 0);
    assert_eq!(config["ServerStabilizationTime"], "10s");
    assert_eq!(config["RedundancyZoneTag"], "");
    assert_eq!(config["DisableUpgradeMigration"], false);
    assert_eq!(config["UpgradeVersionTag"], "");
    let modify = config["ModifyIndex"].as_u64().unwrap();
    assert!(modify >= 1);
    assert_eq!(config["CreateIndex"], modify);

    // A plain PUT answers true; fields left out take Consul's defaults.
    let resp = a
        .put_json(
            "/v1/operator/autopilot/configuration",
            json!({"CleanupDeadServers": false, "MaxTrailingLogs": 100}),
        )
        .await;
    assert_eq!(resp.text().await.unwrap(), "true");
    let (_, config) = a.get_json("/v1/operator/autopilot/configuration").await;
    assert_eq!(config["CleanupDeadServers"], false);
    assert_eq!(config["MaxTrailingLogs"], 100);
    assert_eq!(config["LastContactThreshold"], "200ms");
    let current = config["ModifyIndex"].as_u64().unwrap();
    assert!(current > modify);
    assert_eq!(config["CreateIndex"], modify);

    // CAS against a stale index fails; against the current one it applies.
    let stale = a
        .put_json(
            &format!("/v1/operator/autopilot/configuration?cas={modify}"),
            json!({"MaxTrailingLogs": 1}),
        )
        .await;
    assert_eq!(stale.text().await.unwrap(), "false");
    let fresh = a
        .put_json(
            &format!("/v1/operator/autopilot/configuration?cas={current}"),
            json!({"MaxTrailingLogs": 2, "LastContactThreshold": "1s"}),
        )
        .await;
    assert_eq!(fresh.text().await.unwrap(), "true");
    let (_, config) = a.get_json("/v1/operator/autopilot/configuration").await;
    assert_eq!(config["MaxTrailingLogs"], 2);
    assert_eq!(config["LastContactThreshold"], "1s");

    let (code, text) = status_and_text(
        a.put_json("/v1/operator/autopilot/configuration?cas=x", json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (code, text.as_str()),
        (
            400,
            "Error parsing cas value: strconv.ParseUint: parsing \"x\": invalid syntax"
        )
    );
    let (code, text) = status_and_text(
        a.put_json(
            "/v1/operator/autopilot/configuration",
            json!({"ServerStabilizationTime": "soon"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (code, text.as_str()),
        (
            400,
            "Error parsing autopilot config: time: invalid duration \"soon\""
        )
    );
    // The configuration is durable, indexes included.
    let a = a.restart().await;
    let (_, after) = a.get_json("/v1/operator/autopilot/configuration").await;
    assert_eq!(after, config);
}

#[tokio::test]
async fn autopilot_health_and_state() {
    let a = TestAgent::start().await;
    let (_, me) = a.get_json("/v1/agent/self").await;
    let id = me["Config"]["NodeID"].as_str().unwrap().to_string();
    let (_, health) = a.get_json("/v1/operator/autopilot/health").await;
    assert_eq!(health["Healthy"], true);
    assert_eq!(health["FailureTolerance"], 0);
    let server = &health["Servers"][0];
    assert_eq!(server["ID"], id.as_str());
    assert_eq!(server["Name"], "test-node");
    assert_eq!(server["Address"], "127.0.0.1:8300");
    assert_eq!(server["SerfStatus"], "alive");
    assert_eq!(server["Version"], "1.22.0");
    assert_eq!(server["Leader"], true);
    assert_eq!(server["Voter"], true);
    assert_eq!(server["Healthy"], true);
    assert_eq!(server["LastContact"], "0s");
    assert!(server["StableSince"].as_str().unwrap().ends_with('Z'));

    let (_, state) = a.get_json("/v1/operator/autopilot/state").await;
    assert_eq!(state["Healthy"], true);
    assert_eq!(state["FailureTolerance"], 0);
    assert_eq!(state["OptimisticFailureTolerance"], 0);
    assert_eq!(state["Leader"], id.as_str());
    assert_eq!(state["Voters"], json!([id]));
    let s = &state["Servers"][id.as_str()];
    assert_eq!(s["Status"], "leader");
    assert_eq!(s["NodeType"], "voter");
    assert_eq!(s["NodeStatus"], "alive");
    assert_eq!(s["ReadReplica"], false);
    assert_eq!(s["Meta"]["consul-version"], "1.22.0");
}

// ----- metrics and tokens -----

#[tokio::test]
async fn metrics_in_json_and_prometheus() {
    let a = TestAgent::start().await;
    a.put("/v1/kv/a", "1").await;
    a.put("/v1/event/fire/deploy", "").await;
    let (_, m) = a.get_json("/v1/agent/metrics").await;
    let ts = m["Timestamp"].as_str().unwrap();
    assert!(ts.ends_with(" +0000 UTC"), "{ts}");
    assert_eq!(m["Points"], json!([]));
    let gauge = |name: &str| {
        m["Gauges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["Name"] == name)
            .unwrap_or_else(|| panic!("no gauge {name}"))
            .clone()
    };
    assert_eq!(gauge("consul.state.nodes")["Value"], 1);
    assert_eq!(gauge("consul.state.kv_entries")["Value"], 1);
    assert_eq!(gauge("consul.state.nodes")["Labels"], json!({}));
    assert!(gauge("consul.runtime.sys_bytes")["Value"].as_u64().unwrap() > 0);

    // Prometheus output needs a retention time (see tests/it/metrics.rs for the answer
    // without one).
    let p = TestAgent::start_with(|f| {
        f.hcl = vec![
            "telemetry {\n prometheus_retention_time = \"60s\"\n disable_hostname = true\n}".into(),
        ]
    })
    .await;
    let resp = p.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["Content-Type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE consul_state_nodes gauge\nconsul_state_nodes 1\n"),
        "{text}"
    );
    let resp = p
        .http
        .get(p.url("/v1/agent/metrics"))
        .header("Accept", "application/openmetrics-text")
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("consul_state_nodes"));
}

#[tokio::test]
async fn tokens_need_acls_enabled() {
    let a = TestAgent::start().await;
    let (code, text) = status_and_text(
        a.put_json("/v1/agent/token/default", json!({"Token": "t"}))
            .await,
    )
    .await;
    assert_eq!((code, text.as_str()), (401, "ACL support disabled"));

    // Setting a token needs `agent:write`; the management token has it whatever the default
    // token becomes below.
    let acl = "acl {\n enabled = true\n tokens {\n initial_management = \"root\"\n }\n}";
    let a = TestAgent::start_with(|f| f.hcl = vec![acl.into()]).await;
    for target in [
        "default",
        "agent",
        "agent_recovery",
        "replication",
        "config_file_service_registration",
        "dns",
        "acl_token",
    ] {
        let resp = a
            .put_json(
                &format!("/v1/agent/token/{target}?token=root"),
                json!({"Token": "secret"}),
            )
            .await;
        assert_eq!(resp.status(), 200, "{target}");
        assert_eq!(resp.text().await.unwrap(), "");
    }
    let (code, text) = status_and_text(
        a.put_json("/v1/agent/token/bogus?token=root", json!({"Token": "t"}))
            .await,
    )
    .await;
    assert_eq!((code, text.as_str()), (404, "Token \"bogus\" is unknown"));
    let (code, text) = status_and_text(a.put("/v1/agent/token/default?token=root", "").await).await;
    assert_eq!((code, text.as_str()), (400, "Request decode failed: EOF"));
    let (code, text) = status_and_text(
        a.put_json("/v1/agent/token/default?token=root", json!({"Secret": "t"}))
            .await,
    )
    .await;
    assert_eq!(
        (code, text.as_str()),
        (400, "Request decode failed: json: unknown field \"Secret\"")
    );
}

// ----- reload -----

#[tokio::test]
async fn reload_applies_config_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.json");
    std::fs::write(
        &file,
        r#"{"services": [{"name": "old", "port": 1000}, {"name": "kept", "port": 2000}]}"#,
    )
    .unwrap();
    let cfg = file.clone();
    let a = TestAgent::start_with(move |f| f.config_file = vec![cfg]).await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "api-registered"}),
    )
    .await;
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert!(services.get("old").is_some() && services.get("kept").is_some());

    std::fs::write(
        &file,
        r#"{"services": [{"name": "kept", "port": 2001}, {"name": "new", "port": 3000,
            "check": {"ttl": "30s"}}],
            "checks": [{"id": "disk", "name": "disk", "ttl": "1m"}]}"#,
    )
    .unwrap();
    let resp = a.put("/v1/agent/reload", "").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert!(services.get("old").is_none(), "{services}");
    assert_eq!(services["kept"]["Port"], 2001);
    assert_eq!(services["new"]["Port"], 3000);
    assert!(services.get("api-registered").is_some());
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(checks.get("disk").is_some() && checks.get("service:new").is_some());

    // A broken file leaves everything as it was, with the error.
    std::fs::write(&file, r#"{"services": [ "#).unwrap();
    let (code, text) = status_and_text(a.put("/v1/agent/reload", "").await).await;
    assert_eq!(code, 500);
    assert!(text.contains("services.json"), "{text}");
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert!(services.get("new").is_some());

    // Removing the check from the config removes it from the agent.
    std::fs::write(&file, r#"{"services": [{"name": "kept", "port": 2001}]}"#).unwrap();
    assert_eq!(a.put("/v1/agent/reload", "").await.status(), 200);
    let (_, checks) = a.get_json("/v1/agent/checks").await;
    assert!(checks.get("disk").is_none(), "{checks}");
    let (_, services) = a.get_json("/v1/agent/services").await;
    assert!(services.get("new").is_none() && services.get("kept").is_some());
}

// ----- the real process: monitor, log level reload, leave -----

/// Collects the agent's stderr lines in the background.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

#[tokio::test]
async fn monitor_streams_logs_and_reload_or_a_hangup_reread_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.json");
    std::fs::write(&cfg, r#"{"log_level": "info"}"#).unwrap();
    let data = dir.path().join("data");
    let port = crate::common::free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = crate::common::agent(&[
        "-data-dir",
        data.to_str().unwrap(),
        "-http-port",
        &port,
        "-node",
        "proc-node",
        "-config-file",
        cfg.to_str().unwrap(),
    ]);
    let lines = stderr_lines(&mut child);
    crate::common::wait_ready(&base).await;
    let client = reqwest::Client::new();

    assert_eq!(
        client
            .get(format!("{base}/v1/agent/monitor?loglevel=loud"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Unknown log level: loud"
    );

    // A debug monitor sees debug lines although stderr is at info.
    let mut stream = client
        .get(format!("{base}/v1/agent/monitor?loglevel=debug"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    client
        .put(format!("{base}/v1/event/fire/hello"))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("new event") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("monitor ended without the event ({other:?}): {seen}"),
        }
    }
    assert!(seen.contains("[DEBUG]"), "{seen}");
    assert!(seen.contains("event_name=hello"), "{seen}");
    drop(stream);
    let has = |needle: &str| lines.lock().unwrap().iter().any(|l| l.contains(needle));
    assert!(!has("new event"), "stderr is at info");

    // Reload with a debug level: stderr now shows debug lines.
    std::fs::write(&cfg, r#"{"log_level": "debug"}"#).unwrap();
    let resp = client
        .put(format!("{base}/v1/agent/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    client
        .put(format!("{base}/v1/event/fire/again"))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has("new event") {
        assert!(Instant::now() < deadline, "no debug line after reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A hangup reloads as well, and the agent runs on.
    std::fs::write(
        &cfg,
        r#"{"log_level": "debug", "services": [{"name": "after-hangup"}]}"#,
    )
    .unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let services = crate::common::json_at(&format!("{base}/v1/agent/services")).await;
        if services.get("after-hangup").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no reload on SIGHUP: {services}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(
        crate::common::wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[tokio::test]
async fn leave_shuts_the_agent_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = crate::common::free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut child =
        crate::common::agent(&["-data-dir", data.to_str().unwrap(), "-http-port", &port]);
    let lines = stderr_lines(&mut child);
    crate::common::wait_ready(&base).await;
    let client = reqwest::Client::new();
    // An open monitor doesn't hold the shutdown up.
    let _monitor = client
        .get(format!("{base}/v1/agent/monitor"))
        .send()
        .await
        .unwrap();
    let resp = client
        .put(format!("{base}/v1/agent/leave"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let status = crate::common::wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("shutdown complete"))
    {
        assert!(Instant::now() < deadline, "no clean shutdown logged");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `limits.http_max_conns_per_client`: a client IP past its limit gets a 429 and a closed
/// connection before any request is read; closing a connection frees its place.
#[tokio::test]
async fn connections_per_client_are_limited() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a =
        TestAgent::start_with(|f| f.hcl = vec!["limits { http_max_conns_per_client = 2 }".into()])
            .await;
    let addr = a.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());
    let mut first = connect().await.unwrap();
    let _second = connect().await.unwrap();
    let mut third = connect().await.unwrap();
    let mut refused = String::new();
    third.read_to_string(&mut refused).await.unwrap();
    assert!(
        refused.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{refused:?}"
    );
    // The admitted connections are served.
    first
        .write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut served = String::new();
    first.read_to_string(&mut served).await.unwrap();
    assert!(served.starts_with("HTTP/1.1 200 OK\r\n"), "{served:?}");
    drop(first);
    // The closed connection's place is free again.
    a.eventually("/v1/status/leader", |v| v.is_string()).await;
}

/// Regression: any caller could replace the agent's tokens; Consul requires `agent:write`.
#[tokio::test]
async fn setting_an_agent_token_needs_agent_write() {
    let acl = "acl {\n enabled = true\n default_policy = \"deny\"\n tokens {\n initial_management = \"root\"\n }\n}";
    let a = TestAgent::start_with(|f| f.hcl = vec![acl.into()]).await;
    let (code, text) = status_and_text(
        a.put_json("/v1/agent/token/default", json!({"Token": "t"}))
            .await,
    )
    .await;
    assert_eq!(code, 403);
    assert!(text.contains("lacks permission 'agent:write'"), "{text}");
    let resp = a
        .put_json("/v1/agent/token/default?token=root", json!({"Token": "t"}))
        .await;
    assert_eq!(resp.status(), 200);
}
