//! The `legate members|join|leave|force-leave|reload|info|event|operator` CLI against a running
//! agent.

use crate::common::TestAgent;
use serde_json::Value;

/// Runs `args`, asserting exit code 0, and returns stdout.
async fn ok(a: &TestAgent, args: &[&str]) -> String {
    let out = a.cli(args, None).await;
    assert_eq!(out.code, 0, "legate {args:?}: {}", out.stderr);
    out.stdout
}

/// Runs `args`, asserting exit code `code` and no stdout, and returns stderr.
async fn fails(a: &TestAgent, args: &[&str], code: i32) -> String {
    let out = a.cli(args, None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (code, ""),
        "legate {args:?}: {}",
        out.stderr
    );
    out.stderr
}

async fn server() -> TestAgent {
    TestAgent::start_with(|f| f.server = Some(true)).await
}

/// The agent's only member: its `Addr:Port` and the `Build` column.
async fn me(a: &TestAgent, wan: bool) -> (String, String, Value) {
    let path = if wan {
        "/v1/agent/members?wan=1"
    } else {
        "/v1/agent/members"
    };
    let (_, members) = a.get_json(path).await;
    let m = members[0].clone();
    let addr = format!("{}:{}", m["Addr"].as_str().unwrap(), m["Port"]);
    let build = m["Tags"]["build"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    (addr, build, m)
}

/// `columnize` of the rows (all cells but the last padded to the column width, two spaces).
fn table(rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; rows[0].len()];
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
            }
            line + "\n"
        })
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

#[tokio::test]
async fn members_table_detailed_and_filters() {
    let a = server().await;
    let (addr, build, member) = me(&a, false).await;
    let expected = table(&[
        row(&[
            "Node",
            "Address",
            "Status",
            "Type",
            "Build",
            "Protocol",
            "DC",
            "Partition",
            "Segment",
        ]),
        row(&[
            "test-node",
            &addr,
            "alive",
            "server",
            &build,
            "2",
            "dc1",
            "default",
            "<all>",
        ]),
    ]);
    assert_eq!(ok(&a, &["members"]).await, expected);
    assert_eq!(ok(&a, &["members", "-status", "ali.e"]).await, expected);
    assert_eq!(ok(&a, &["members", "-status=alive|failed"]).await, expected);

    // Detailed: every tag, sorted, with the partition and segment the CLI fills in.
    let mut tags: Vec<String> = member["Tags"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "segment")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    tags.push("ap=default".into());
    tags.push("segment=<all>".into());
    tags.sort();
    let detailed = table(&[
        row(&["Node", "Address", "Status", "Tags"]),
        row(&["test-node", &addr, "alive", &tags.join(",")]),
    ]);
    assert_eq!(ok(&a, &["members", "-detailed"]).await, detailed);
    assert!(detailed.contains(",role=consul,"), "{detailed}");

    // No member matches: exit code 2 and no output at all.
    assert_eq!(
        fails(&a, &["members", "-status", "failed"], 2).await.len(),
        0
    );
    let err = fails(&a, &["members", "-status", "("], 1).await;
    assert_eq!(
        err,
        "Failed to compile status regexp: error parsing regexp: missing closing ): `(`\n"
    );

    // The WAN pool holds the server as `<node>.<dc>`.
    let (wan_addr, _, _) = me(&a, true).await;
    let out = ok(&a, &["members", "-wan"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].starts_with(&format!("test-node.dc1  {wan_addr}  alive   server")),
        "{out}"
    );

    let err = fails(&a, &["members", "-segment", "alpha"], 1).await;
    assert!(
        err.starts_with(
            "Error retrieving members: Unexpected response code: 500 (Network segments"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn members_of_a_client_agent_without_a_wan_pool() {
    let a = TestAgent::start().await;
    let out = ok(&a, &["members"]).await;
    assert!(out.starts_with("Node       Address"), "{out}");
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with("test-node  "), "{out}");
    // Regression: a client agent used to be listed as a server.
    assert!(
        row.contains(" client ") && row.contains("<default>"),
        "{out}"
    );
    // A client is in no WAN pool: nothing to list.
    assert_eq!(fails(&a, &["members", "-wan"], 2).await, "");
}

#[tokio::test]
async fn join_counts_the_addresses_that_answered() {
    let a = server().await;
    let (addr, _, _) = me(&a, false).await;
    assert_eq!(
        ok(&a, &["join", &addr]).await,
        "Successfully joined cluster by contacting 1 nodes.\n"
    );

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let out = a.cli(&["join", &addr, &closed], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Successfully joined cluster by contacting 1 nodes.\n")
    );
    assert!(
        out.stderr.starts_with(&format!(
            "Error joining address '{closed}': Unexpected response code: 500 ("
        )),
        "{}",
        out.stderr
    );
    let err = fails(&a, &["join", &closed], 1).await;
    assert!(err.ends_with("\nFailed to join any nodes.\n"), "{err}");

    let err = fails(&a, &["join"], 1).await;
    assert!(
        err.starts_with("At least one address to join must be specified.\n"),
        "{err}"
    );
}

#[tokio::test]
async fn leave_stops_the_agent() {
    // A dedicated agent: it shuts down after answering.
    let a = TestAgent::start().await;
    let out = a.cli(&["leave", "extra"], None).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error found unexpected args: [extra]\n");
    assert_eq!(ok(&a, &["leave"]).await, "Graceful leave complete\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.http.get(a.url("/v1/agent/self")).send().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "agent still serving");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let err = fails(&a, &["leave"], 1).await;
    assert!(err.starts_with("Error leaving: "), "{err}");
}

#[tokio::test]
async fn force_leave_and_reload() {
    let a = TestAgent::start().await;
    assert_eq!(ok(&a, &["force-leave", "test-node"]).await, "");
    assert_eq!(ok(&a, &["force-leave", "-prune", "test-node"]).await, "");
    assert_eq!(
        fails(&a, &["force-leave", "nope"], 1).await,
        "Error force leaving: Unexpected response code: 500 (agent: No node found with name 'nope')\n"
    );
    let err = fails(&a, &["force-leave"], 1).await;
    assert!(
        err.starts_with("A single node name must be specified to force leave.\n"),
        "{err}"
    );
    let err = fails(&a, &["force-leave", "-wan", "test-node"], 1).await;
    assert!(
        err.contains("Must be a server to force-leave a node from the WAN cluster"),
        "{err}"
    );

    assert_eq!(
        ok(&a, &["reload"]).await,
        "Configuration reload triggered\n"
    );
}

#[tokio::test]
async fn info_prints_the_stats_sorted() {
    let a = TestAgent::start().await;
    let (_, me) = a.get_json("/v1/agent/self").await;
    let mut expected = String::new();
    let mut sections: Vec<(&String, &Value)> = me["Stats"].as_object().unwrap().iter().collect();
    sections.sort_by_key(|(k, _)| k.as_str());
    for (name, values) in sections {
        expected.push_str(&format!("{name}:\n"));
        let mut values: Vec<(&String, &Value)> = values.as_object().unwrap().iter().collect();
        values.sort_by_key(|(k, _)| k.as_str());
        for (k, v) in values {
            expected.push_str(&format!("\t{k} = {}\n", v.as_str().unwrap()));
        }
    }
    let out = ok(&a, &["info"]).await;
    assert_eq!(out, expected);
    assert!(out.starts_with("build:\n\tprerelease = \n"), "{out}");
    assert!(out.contains("\nconsul:\n\tbootstrap = false\n"), "{out}");
}

#[tokio::test]
async fn event_fires_with_filters_and_payload() {
    let a = TestAgent::start().await;
    let out = ok(&a, &["event", "-name", "deploy", "v1.2"]).await;
    let id = out
        .strip_prefix("Event ID: ")
        .and_then(|s| s.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert_eq!(id.len(), 36, "{out}");
    let (_, events) = a.get_json("/v1/event/list?name=deploy").await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["ID"], id.as_str());
    assert_eq!(events[0]["Payload"], crate::common::b64("v1.2"));

    let out = ok(&a, &["event", "-name=other", "-node", "test-.*"]).await;
    assert!(out.starts_with("Event ID: "), "{out}");
    let (_, events) = a.get_json("/v1/event/list?name=other").await;
    assert_eq!(events[0]["NodeFilter"], "test-.*");
    assert_eq!(events[0]["Payload"], Value::Null);

    let err = fails(&a, &["event"], 1).await;
    assert!(err.starts_with("Event name must be specified\n"), "{err}");
    assert_eq!(
        fails(&a, &["event", "-name", "x", "-tag", "v1"], 1).await,
        "Cannot provide tag filter without service filter.\n"
    );
    assert_eq!(
        fails(&a, &["event", "-name", "x", "-service", "("], 1).await,
        "Failed to compile service filter regexp: error parsing regexp: missing closing ): `(`\n"
    );
    let err = fails(&a, &["event", "-name", "x", "a", "b"], 1).await;
    assert!(
        err.starts_with("Too many command line arguments.\n"),
        "{err}"
    );
}

#[tokio::test]
async fn operator_raft_peers() {
    let a = server().await;
    let (_, me) = a.get_json("/v1/agent/self").await;
    let id = me["Config"]["NodeID"].as_str().unwrap().to_string();
    let (_, config) = a.get_json("/v1/operator/raft/configuration").await;
    let peer = &config["Servers"][0];
    let address = peer["Address"].as_str().unwrap().to_string();
    let expected = table(&[
        row(&[
            "Node",
            "ID",
            "Address",
            "State",
            "Voter",
            "RaftProtocol",
            "Commit Index",
            "Trails Leader By",
        ]),
        row(&[
            "test-node",
            &id,
            &address,
            "leader",
            "true",
            "3",
            &peer["LastIndex"].to_string(),
            "-",
        ]),
    ]);
    let out = ok(&a, &["operator", "raft", "list-peers", "-stale"]).await;
    // The commit index may move between the two reads: compare the other fields.
    let fields = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .skip(1)
            .map(|l| {
                let mut f: Vec<String> = l.split_whitespace().map(String::from).collect();
                f.remove(6);
                f
            })
            .collect()
    };
    assert_eq!(fields(&out), fields(&expected), "{out}");
    assert!(out.starts_with(expected.lines().next().unwrap()), "{out}");

    assert_eq!(
        fails(&a, &["operator", "raft", "remove-peer"], 1).await,
        "Error removing peer: an address or id is required for the peer to remove\n"
    );
    assert_eq!(
        fails(
            &a,
            &["operator", "raft", "remove-peer", "-id=x", "-address=y"],
            1
        )
        .await,
        "Error removing peer: cannot give both an address and id\n"
    );
    assert_eq!(
        fails(&a, &["operator", "raft", "remove-peer", "-id", "nope"], 1).await,
        "Error removing peer: Unexpected response code: 500 (id \"nope\" was not found in the Raft configuration)\n"
    );
    let err = fails(
        &a,
        &["operator", "raft", "remove-peer", "-address", &address],
        1,
    )
    .await;
    assert!(
        err.contains("need at least one voter in configuration"),
        "{err}"
    );
}

const DEFAULT_CONFIG: &str = "CleanupDeadServers = true
LastContactThreshold = 200ms
MaxTrailingLogs = 250
MinQuorum = 0
ServerStabilizationTime = 10s
RedundancyZoneTag = \"\"
DisableUpgradeMigration = false
UpgradeVersionTag = \"\"
";

#[tokio::test]
async fn operator_autopilot_config_and_state() {
    let a = server().await;
    let get = ["operator", "autopilot", "get-config"];
    assert_eq!(ok(&a, &get).await, DEFAULT_CONFIG);

    assert_eq!(
        ok(
            &a,
            &[
                "operator",
                "autopilot",
                "set-config",
                "-cleanup-dead-servers=false",
                "-max-trailing-logs=10",
                "-min-quorum",
                "3",
                "-last-contact-threshold=1s",
                "-server-stabilization-time",
                "1m30s",
            ]
        )
        .await,
        "Configuration updated!\n"
    );
    assert_eq!(
        ok(&a, &get).await,
        "CleanupDeadServers = false
LastContactThreshold = 1s
MaxTrailingLogs = 10
MinQuorum = 3
ServerStabilizationTime = 1m30s
RedundancyZoneTag = \"\"
DisableUpgradeMigration = false
UpgradeVersionTag = \"\"
"
    );
    // Flags not given keep their values.
    ok(
        &a,
        &[
            "operator",
            "autopilot",
            "set-config",
            "-cleanup-dead-servers",
        ],
    )
    .await;
    let out = ok(&a, &get).await;
    assert!(
        out.starts_with(
            "CleanupDeadServers = true\nLastContactThreshold = 1s\nMaxTrailingLogs = 10\n"
        ),
        "{out}"
    );
    let out = a
        .cli(
            &[
                "operator",
                "autopilot",
                "set-config",
                "-max-trailing-logs=x",
            ],
            None,
        )
        .await;
    assert_eq!(out.code, 1);

    // State: pretty and JSON.
    let (_, me) = a.get_json("/v1/agent/self").await;
    let id = me["Config"]["NodeID"].as_str().unwrap().to_string();
    let out = ok(&a, &["operator", "autopilot", "state"]).await;
    let head = format!(
        "Healthy:                      true
Failure Tolerance:            0
Optimistic Failure Tolerance: 0
Leader:                       {id}
Voters:
   {id}
Servers:
   {id}
      Name:            test-node
"
    );
    assert!(out.starts_with(&head), "{out}");
    assert!(out.contains("\n      Status:          leader\n      Node Type:       voter\n      Node Status:     alive\n      Healthy:         true\n      Last Contact:    0s\n      Last Term:       2\n"), "{out}");
    assert!(
        out.contains("\n      Meta\n         \"consul-network-segment\": \"\"\n"),
        "{out}"
    );
    assert!(out.ends_with("\n\n"), "{out}");

    let out = ok(&a, &["operator", "autopilot", "state", "-format=json"]).await;
    let state: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(state["Leader"], id.as_str());
    assert!(out.starts_with("{\n    \"Healthy\": true,\n"), "{out}");
    assert!(state["Servers"][&id].get("ReadReplica").is_none(), "{out}");
    assert_eq!(
        fails(&a, &["operator", "autopilot", "state", "-format=yaml"], 1).await,
        "Unknown format: yaml\n"
    );
}
