//! Prepared queries (`/v1/query`): Consul's shapes and validation texts, execution with its
//! health, tag and metadata filters, templates, `?near` sorting by network coordinates,
//! session-bound queries, persistence (restart, snapshot), blocking lists and ACLs.

use crate::acl::{acl_agent, call, ROOT};
use crate::common::{index_of, TestAgent};
use serde_json::{json, Value};
use std::time::Duration;

async fn post(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    let resp = a.http.post(a.url(path)).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Creates a query and returns its ID.
async fn create(a: &TestAgent, body: Value) -> String {
    let (status, text) = post(a, "/v1/query", body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["ID"].as_str().unwrap().to_string()
}

/// Registers an instance of `service` on `node` with one service check in `status`.
async fn register(a: &TestAgent, node: &str, addr: &str, service: Value, status: &str) {
    let id = service["ID"].as_str().unwrap().to_string();
    let body = json!({
        "Node": node,
        "Address": addr,
        "NodeMeta": {"rack": if node.ends_with('1') { "r1" } else { "r2" }},
        "Service": service,
        "Checks": [{"CheckID": format!("check-{id}"), "Name": "c", "Status": status, "ServiceID": id}],
    });
    let resp = a.put_json("/v1/catalog/register", body).await;
    assert_eq!(resp.status(), 200);
}

/// The node names an execution returned, in order.
async fn executed(a: &TestAgent, path: &str) -> Vec<String> {
    let (_, body) = a.get_json(path).await;
    body["Nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"]["Node"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn create_read_update_delete_with_consuls_shapes() {
    let a = TestAgent::start().await;
    let id = create(
        &a,
        json!({
            "Name": "my-query",
            "Token": "",
            "Service": {
                "Service": "redis",
                "Failover": {"NearestN": 3, "Datacenters": ["dc1", "dc2"]},
                "Near": "node1",
                "OnlyPassing": false,
                "Tags": ["primary", "!experimental"],
                "NodeMeta": {"instance_type": "m3.large"},
                "ServiceMeta": {"environment": "production"}
            },
            "DNS": {"TTL": "10s"}
        }),
    )
    .await;
    let (index, got) = a.get_json(&format!("/v1/query/{id}")).await;
    let q = &got[0];
    assert_eq!(
        *q,
        json!({
            "ID": id,
            "Name": "my-query",
            "Session": "",
            "Token": "",
            "Template": {"Type": "", "Regexp": "", "RemoveEmptyTags": false},
            "Service": {
                "Service": "redis",
                "Failover": {"NearestN": 3, "Datacenters": ["dc1", "dc2"], "Targets": null},
                "OnlyPassing": false,
                "IgnoreCheckIDs": null,
                "Near": "node1",
                "Tags": ["primary", "!experimental"],
                "NodeMeta": {"instance_type": "m3.large"},
                "ServiceMeta": {"environment": "production"},
                "Peer": "",
                "Connect": false
            },
            "DNS": {"TTL": "10s"},
            "CreateIndex": q["CreateIndex"],
            "ModifyIndex": q["CreateIndex"],
        })
    );
    assert_eq!(index, q["CreateIndex"].as_u64().unwrap());

    let resp = a
        .put_json(
            &format!("/v1/query/{id}"),
            json!({"Name": "renamed", "Service": {"Service": "redis"}}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "");
    let (_, list) = a.get_json("/v1/query").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["Name"], "renamed");
    assert_eq!(list[0]["CreateIndex"], q["CreateIndex"]);
    assert!(list[0]["ModifyIndex"].as_u64() > q["ModifyIndex"].as_u64());

    // Executed by name (any case) and by ID.
    let (_, by_name) = a.get_json("/v1/query/RENAMED/execute").await;
    assert_eq!(by_name["Service"], "redis");
    assert_eq!(by_name["Nodes"], json!([]));
    assert_eq!(by_name["Datacenter"], "dc1");
    assert_eq!(by_name["Failovers"], 0);
    assert_eq!(by_name["DNS"], json!({"TTL": ""}));
    a.get_json(&format!("/v1/query/{id}/execute")).await;

    let resp = a.delete(&format!("/v1/query/{id}")).await;
    assert_eq!(resp.status(), 200);
    for path in [format!("/v1/query/{id}"), format!("/v1/query/{id}/execute")] {
        let resp = a.get(&path).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(resp.text().await.unwrap(), "Query not found");
    }
    let (_, list) = a.get_json("/v1/query").await;
    assert_eq!(list, json!([]));
    let resp = a.delete(&format!("/v1/query/{id}")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.text().await.unwrap(),
        format!("Cannot modify non-existent prepared query: '{id}'")
    );
}

#[tokio::test]
async fn invalid_queries_are_refused_with_consuls_texts() {
    let a = TestAgent::start().await;
    let first = create(&a, json!({"Name": "taken", "Service": {"Service": "s"}})).await;
    let cases = [
        (
            json!({"Name": "x", "Service": {}}),
            "Invalid prepared query: Must provide a Service name to query".to_string(),
        ),
        (
            json!({"Service": {"Service": "s"}}),
            "Invalid prepared query: Must be bound to a session".into(),
        ),
        (
            json!({"Name": "x", "Service": {"Service": "s", "Failover": {"NearestN": -1}}}),
            "Invalid prepared query: Bad NearestN '-1', must be >= 0".into(),
        ),
        (
            json!({"Name": "x", "Service": {"Service": "s"}, "DNS": {"TTL": "soon"}}),
            "Invalid prepared query: Bad DNS TTL 'soon': time: invalid duration \"soon\"".into(),
        ),
        (
            json!({"Name": "x", "Token": "<hidden>", "Service": {"Service": "s"}}),
            "Invalid prepared query: Bad Token '<hidden>', it looks like a query definition with a redacted token was submitted".into(),
        ),
        (
            json!({"Name": "TAKEN", "Service": {"Service": "s"}}),
            "name 'TAKEN' aliases an existing query name".into(),
        ),
        (
            json!({"Name": first, "Service": {"Service": "s"}}),
            format!("name '{first}' aliases an existing query ID"),
        ),
        (
            json!({"Name": "x", "Session": "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "Service": {"Service": "s"}}),
            "invalid session \"adf4238a-882b-9ddc-4a9d-5b6758e4159e\"".into(),
        ),
        (
            json!({"Name": "x", "Template": {"Type": "nope"}, "Service": {"Service": "s"}}),
            "failed compiling template: Bad Template.Type 'nope'".into(),
        ),
        (
            json!({"Name": "x", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${nope}"}}),
            "failed compiling template: Bad evaluation for '${nope}' in Service.Service: unknown variable accessed: nope".into(),
        ),
        (
            json!({"ID": "abc", "Name": "x", "Service": {"Service": "s"}}),
            "ID must be empty when creating a new prepared query".into(),
        ),
    ];
    for (body, message) in cases {
        let (status, text) = post(&a, "/v1/query", body.clone()).await;
        assert_eq!((status, text.as_str()), (500, message.as_str()), "{body}");
    }
    for body in [json!("not an object"), json!({"Name": 5})] {
        let (status, text) = post(&a, "/v1/query", body).await;
        assert_eq!(status, 400);
        assert!(
            text.starts_with("Request decode failed: json: cannot unmarshal"),
            "{text}"
        );
    }
    // Nothing was written by the refused requests.
    let (_, list) = a.get_json("/v1/query").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Keys bind case-insensitively, as Go decodes them.
    let lower = create(
        &a,
        json!({"name": "lower", "service": {"service": "s", "onlypassing": true}}),
    )
    .await;
    let (_, got) = a.get_json(&format!("/v1/query/{lower}")).await;
    assert_eq!(got[0]["Name"], "lower");
    assert_eq!(got[0]["Service"]["OnlyPassing"], true);
    let resp = a.put(&format!("/v1/query/{first}/execute"), "").await;
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn execute_keeps_healthy_matching_instances() {
    let a = TestAgent::start().await;
    let db = |id: &str, tags: Value, env: &str| json!({"ID": id, "Service": "db", "Tags": tags, "Meta": {"env": env}, "Port": 5432});
    register(
        &a,
        "n1",
        "10.0.0.1",
        db("db1", json!(["primary", "v1"]), "prod"),
        "passing",
    )
    .await;
    register(
        &a,
        "n2",
        "10.0.0.2",
        db("db2", json!(["Primary", "v2"]), "prod"),
        "warning",
    )
    .await;
    register(
        &a,
        "n3",
        "10.0.0.3",
        db("db3", json!(["replica"]), "dev"),
        "critical",
    )
    .await;
    let run = |body: Value| {
        let a = &a;
        async move {
            let id = create(a, body).await;
            let nodes = sorted(executed(a, &format!("/v1/query/{id}/execute")).await);
            a.delete(&format!("/v1/query/{id}")).await;
            nodes
        }
    };
    let q = |service: Value| json!({"Name": "q", "Service": service});
    // Critical instances are never answered; OnlyPassing drops warnings too.
    assert_eq!(run(q(json!({"Service": "db"}))).await, ["n1", "n2"]);
    assert_eq!(
        run(q(json!({"Service": "db", "OnlyPassing": true}))).await,
        ["n1"]
    );
    // An ignored check no longer counts.
    assert_eq!(
        run(q(json!({"Service": "db", "IgnoreCheckIDs": ["check-db3"]}))).await,
        ["n1", "n2", "n3"]
    );
    // Tags are required case-insensitively, `!tag` excludes.
    assert_eq!(
        run(q(json!({"Service": "db", "Tags": ["primary"]}))).await,
        ["n1", "n2"]
    );
    assert_eq!(
        run(q(json!({"Service": "db", "Tags": ["primary", "!V2"]}))).await,
        ["n1"]
    );
    assert_eq!(
        run(q(
            json!({"Service": "db", "NodeMeta": {"rack": "r2"}, "IgnoreCheckIDs": ["check-db3"]})
        ))
        .await,
        ["n2", "n3"]
    );
    assert_eq!(
        run(q(json!({"Service": "db", "ServiceMeta": {"env": "dev"}}))).await,
        Vec::<String>::new()
    );

    let id = create(&a, q(json!({"Service": "db"}))).await;
    let (_, full) = a.get_json(&format!("/v1/query/{id}/execute?limit=1")).await;
    assert_eq!(full["Nodes"].as_array().unwrap().len(), 1);
    let entry = &full["Nodes"][0];
    assert_eq!(entry["Service"]["Service"], "db");
    assert_eq!(entry["Checks"][0]["ServiceID"], entry["Service"]["ID"]);
    assert_eq!(full["Index"], 0);
    assert_eq!(full["KnownLeader"], true);
    assert_eq!(full["ConsistencyLevel"], "leader");
    assert_eq!(
        full["ResultsFilteredByACLs"], false,
        "Consul's QueryMeta carries it"
    );
    let resp = a.get(&format!("/v1/query/{id}/execute?limit=x")).await;
    assert_eq!(resp.status(), 500);
    // ?connect=true looks up Connect-capable instances: there are none.
    let (_, connect) = a
        .get_json(&format!("/v1/query/{id}/execute?connect=true"))
        .await;
    assert_eq!(connect["Nodes"], json!([]));
}

#[tokio::test]
async fn templates_resolve_by_longest_prefix_and_render() {
    let a = TestAgent::start().await;
    for (node, id, tags) in [
        ("n1", "a1", json!(["primary"])),
        ("n2", "a2", json!(["replica"])),
    ] {
        let svc = json!({"ID": id, "Service": "mysql-customer", "Tags": tags});
        register(&a, node, "10.0.0.1", svc, "passing").await;
    }
    let catch_all = create(
        &a,
        json!({"Name": "", "Template": {"Type": "name_prefix_match"},
               "Service": {"Service": "${name.full}"}}),
    )
    .await;
    create(
        &a,
        json!({
            "Name": "geo-db-",
            "Template": {
                "Type": "name_prefix_match",
                "Regexp": "^geo-db-(.*?)-([^\\-]+?)$",
                "RemoveEmptyTags": true
            },
            "Service": {"Service": "mysql-${match(1)}", "Tags": ["${match(2)}", "${match(9)}"]},
            "DNS": {"TTL": "5s"}
        }),
    )
    .await;
    let (_, explained) = a
        .get_json("/v1/query/geo-db-customer-primary/explain")
        .await;
    assert_eq!(explained["Query"]["Service"]["Service"], "mysql-customer");
    assert_eq!(explained["Query"]["Service"]["Tags"], json!(["primary"]));
    assert_eq!(explained["Query"]["Name"], "geo-db-");
    let (_, run) = a
        .get_json("/v1/query/geo-db-customer-primary/execute")
        .await;
    assert_eq!(run["Service"], "mysql-customer");
    assert_eq!(run["DNS"]["TTL"], "5s");
    assert_eq!(
        executed(&a, "/v1/query/geo-db-customer-replica/execute").await,
        ["n2"]
    );
    // Any other name falls to the empty-named template.
    let (_, other) = a.get_json("/v1/query/mysql-customer/explain").await;
    assert_eq!(other["Query"]["Service"]["Service"], "mysql-customer");
    assert_eq!(
        sorted(executed(&a, "/v1/query/mysql-customer/execute").await),
        ["n1", "n2"]
    );
    // A template is reached by name only, and only one may have the empty name.
    let resp = a.get(&format!("/v1/query/{catch_all}/execute")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(
        resp.text().await.unwrap(),
        "prepared query templates can only be resolved up by name, not by ID"
    );
    let (status, text) = post(
        &a,
        "/v1/query",
        json!({"Template": {"Type": "name_prefix_match"}, "Service": {"Service": "x"}}),
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (500, "a query template with an empty name already exists")
    );
}

#[tokio::test]
async fn near_sorts_by_round_trip_with_the_source_first() {
    let a = TestAgent::start().await;
    let nodes = [
        ("n1", "10.0.0.1", 0.0),
        ("n2", "10.0.0.2", 0.010),
        ("n3", "10.0.0.3", 0.020),
    ];
    for (node, addr, _) in nodes {
        let svc = json!({"ID": "web", "Service": "web"});
        register(&a, node, addr, svc, "passing").await;
    }
    let mut updates = Vec::new();
    for (node, _, x) in nodes {
        updates.push(json!({"Node": node, "Coord": {
            "Vec": [x, 0, 0, 0, 0, 0, 0, 0], "Error": 0.1, "Adjustment": 0, "Height": 0.0001}}));
    }
    updates.push(json!({"Node": "test-node", "Coord": {
        "Vec": [0.025, 0, 0, 0, 0, 0, 0, 0], "Error": 0.1, "Adjustment": 0, "Height": 0.0001}}));
    for update in updates {
        let resp = a.put_json("/v1/coordinate/update", update).await;
        assert_eq!(resp.status(), 200);
    }
    let id = create(&a, json!({"Name": "web", "Service": {"Service": "web"}})).await;
    let path = format!("/v1/query/{id}/execute");
    for _ in 0..5 {
        assert_eq!(
            executed(&a, &format!("{path}?near=n1")).await,
            ["n1", "n2", "n3"]
        );
        assert_eq!(
            executed(&a, &format!("{path}?near=n3")).await,
            ["n3", "n2", "n1"]
        );
        assert_eq!(
            executed(&a, &format!("{path}?near=_agent")).await,
            ["n3", "n2", "n1"]
        );
    }
    // `_ip` sorts from the node at the caller's address (here, as a proxy forwards it).
    let resp = a
        .http
        .get(a.url(&format!("{path}?near=_ip")))
        .header("X-Forwarded-For", "10.0.0.2, 10.9.9.9")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["Nodes"][0]["Node"]["Node"], "n2");
    // Without a forwarded address, the connection's own: a node registered at 127.0.0.1.
    let svc = json!({"ID": "web", "Service": "web"});
    register(&a, "local", "127.0.0.1", svc, "passing").await;
    let local = json!({"Node": "local", "Coord": {
        "Vec": [0.5, 0, 0, 0, 0, 0, 0, 0], "Error": 0.1, "Adjustment": 0, "Height": 0.0001}});
    assert_eq!(
        a.put_json("/v1/coordinate/update", local).await.status(),
        200
    );
    assert_eq!(
        executed(&a, &format!("{path}?near=_ip")).await,
        ["local", "n3", "n2", "n1"]
    );
    // The query's own Near applies when the request names none.
    let near = create(
        &a,
        json!({"Name": "near", "Service": {"Service": "web", "Near": "n1"}}),
    )
    .await;
    assert_eq!(
        executed(&a, &format!("/v1/query/{near}/execute")).await,
        ["n1", "n2", "n3", "local"]
    );
    // Without a coordinate nothing is sorted, but the source still comes first, found among
    // the results in any case (Consul's `strings.EqualFold`).
    let svc = json!({"ID": "web", "Service": "web"});
    register(&a, "nocoord", "10.0.0.9", svc, "passing").await;
    for _ in 0..5 {
        assert_eq!(
            executed(&a, &format!("{path}?near=NOCOORD")).await[0],
            "nocoord"
        );
    }
}

#[tokio::test]
async fn a_query_bound_to_a_session_goes_with_it() {
    let a = TestAgent::start().await;
    let resp = a.put("/v1/session/create", "").await;
    let session = resp.json::<Value>().await.unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let bound = create(&a, json!({"Session": session, "Service": {"Service": "s"}})).await;
    let kept = create(&a, json!({"Name": "kept", "Service": {"Service": "s"}})).await;
    let (_, got) = a.get_json(&format!("/v1/query/{bound}")).await;
    assert_eq!(got[0]["Session"], session.as_str());
    a.put_ok(&format!("/v1/session/destroy/{session}"), "")
        .await;
    assert_eq!(a.get(&format!("/v1/query/{bound}")).await.status(), 404);
    let (_, list) = a.get_json("/v1/query").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["ID"], kept.as_str());
}

#[tokio::test]
async fn queries_survive_a_restart_and_a_snapshot_restore() {
    let a = TestAgent::start().await;
    let id = create(
        &a,
        json!({"Name": "kept", "Service": {"Service": "s", "Tags": ["t"]}, "DNS": {"TTL": "3s"}}),
    )
    .await;
    let (_, before) = a.get_json(&format!("/v1/query/{id}")).await;
    let a = a.restart().await;
    let (_, after) = a.get_json(&format!("/v1/query/{id}")).await;
    assert_eq!(before, after);

    let archive = a.get("/v1/snapshot").await.bytes().await.unwrap();
    a.delete(&format!("/v1/query/{id}")).await;
    let other = create(&a, json!({"Name": "later", "Service": {"Service": "s"}})).await;
    let resp = a.put("/v1/snapshot", archive).await;
    assert_eq!(resp.status(), 200);
    let (_, restored) = a.get_json(&format!("/v1/query/{id}")).await;
    assert_eq!(restored, before);
    assert_eq!(a.get(&format!("/v1/query/{other}")).await.status(), 404);
    // The name index came back with the rows: the name is still taken.
    let (status, _) = post(
        &a,
        "/v1/query",
        json!({"Name": "KEPT", "Service": {"Service": "s"}}),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        executed(&a, "/v1/query/kept/execute").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_list_blocks_until_a_query_changes() {
    let a = TestAgent::start().await;
    let resp = a.get("/v1/query").await;
    let index = index_of(&resp);
    let watch = a.watch(&format!("/v1/query?index={index}&wait=5s"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!watch.is_finished());
    // An unrelated write does not wake it.
    a.put_ok("/v1/kv/unrelated", "x").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!watch.is_finished());
    create(&a, json!({"Name": "q", "Service": {"Service": "s"}})).await;
    let (woke_at, list, took) = watch.await.unwrap();
    assert!(woke_at > index);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(took < Duration::from_secs(4));
}

#[tokio::test]
async fn acls_guard_names_redact_tokens_and_filter_results() {
    let (a, _config_dir) = acl_agent(json!({})).await;
    let put = reqwest::Method::PUT;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let svc =
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"ID": "db", "Service": "db"}});
    let (status, _) = call(&a, put.clone(), "/v1/catalog/register", ROOT, Some(svc)).await;
    assert_eq!(status, 200);
    let rules = r#"query_prefix "geo" { policy = "write" }"#;
    let (status, policy) = call(
        &a,
        put.clone(),
        "/v1/acl/policy",
        ROOT,
        Some(json!({"Name": "geo", "Rules": rules})),
    )
    .await;
    assert_eq!(status, 200, "{policy}");
    let policy: Value = serde_json::from_str(&policy).unwrap();
    let (_, token) = call(
        &a,
        put,
        "/v1/acl/token",
        ROOT,
        Some(json!({"Policies": [{"ID": policy["ID"]}]})),
    )
    .await;
    let token: Value = serde_json::from_str(&token).unwrap();
    let geo = token["SecretID"].as_str().unwrap();

    // query:write on the name's prefix is needed to create a named query.
    let body = |name: &str, token: &str| json!({"Name": name, "Token": token, "Service": {"Service": "db"}});
    let (status, text) = call(&a, post.clone(), "/v1/query", geo, Some(body("other", ""))).await;
    assert_eq!((status, text.as_str()), (403, "Permission denied"));
    let (status, text) = call(
        &a,
        post.clone(),
        "/v1/query",
        geo,
        Some(body("geo-db", ROOT)),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let id = serde_json::from_str::<Value>(&text).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text) = call(&a, post, "/v1/query", ROOT, Some(body("open", ""))).await;
    assert_eq!(status, 200, "{text}");

    // Only acl:write sees a query's token; a reader sees what its rules name.
    let (_, mine) = call(&a, get.clone(), &format!("/v1/query/{id}"), geo, None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&mine).unwrap()[0]["Token"],
        "<hidden>"
    );
    let (_, managed) = call(&a, get.clone(), &format!("/v1/query/{id}"), ROOT, None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&managed).unwrap()[0]["Token"],
        ROOT
    );
    let (_, listed) = call(&a, get.clone(), "/v1/query", geo, None).await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["Name"], "geo-db");
    let (_, all) = call(&a, get.clone(), "/v1/query", ROOT, None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&all)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = call(&a, get.clone(), "/v1/query/open/explain", geo, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&a, reqwest::Method::DELETE, "/v1/query/open", geo, None).await;
    assert_eq!(status, 500, "open is a name, not an ID");

    // Executing needs no query rule: the query's token (here the management one) decides
    // what is returned, else the caller's.
    let (_, with_token) = call(&a, get.clone(), "/v1/query/geo-db/execute", "", None).await;
    let with_token: Value = serde_json::from_str(&with_token).unwrap();
    assert_eq!(with_token["Nodes"].as_array().unwrap().len(), 1);
    let (_, anonymous) = call(&a, get.clone(), "/v1/query/open/execute", "", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&anonymous).unwrap()["Nodes"],
        json!([])
    );
    let (_, managed) = call(&a, get, "/v1/query/open/execute", ROOT, None).await;
    let managed: Value = serde_json::from_str(&managed).unwrap();
    assert_eq!(managed["Nodes"].as_array().unwrap().len(), 1);
}
