//! The web UI and the internal endpoints it reads: serving (redirect, deep links, versioned
//! gzipped assets, CSP, `content_path`), `/v1/internal/ui/*` in Consul's shapes with ACL
//! filtering, and browser scenarios in headless Chromium (tests/ui/browser.py, which needs
//! Debian's `chromium` and `chromium-driver` and Python's selenium; .ci/run installs them).

use crate::acl::{get, ok, put, ROOT};
use crate::common::TestAgent;
use futures_util::StreamExt;
use serde_json::{json, Value};

async fn ui_agent() -> TestAgent {
    TestAgent::start_with(|f| f.ui = Some(true)).await
}

/// An agent with the UI and ACLs on (default deny, `ROOT` as the management token); the
/// config dir must outlive it.
async fn ui_acl_agent() -> (TestAgent, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acl.json");
    let config = json!({"ui_config": {"enabled": true}, "acl": {
        "enabled": true, "default_policy": "deny",
        "tokens": {"initial_management": ROOT, "agent": ROOT}}});
    std::fs::write(&cfg, config.to_string()).unwrap();
    let a = TestAgent::start_with(move |f| f.config_file = vec![cfg]).await;
    (a, dir)
}

/// A token whose one policy has `rules`; its secret.
async fn token_with(a: &TestAgent, rules: &str) -> String {
    let policy = json!({"Name": "ui-test", "Rules": rules});
    ok(put(a, "/v1/acl/policy", ROOT, policy).await);
    let token = ok(put(
        a,
        "/v1/acl/token",
        ROOT,
        json!({"Policies": [{"Name": "ui-test"}]}),
    )
    .await);
    token["SecretID"].as_str().unwrap().to_string()
}

/// Registers `per_node` services on each of `nodes` catalog nodes, each with a passing check.
async fn register_catalog(a: &TestAgent, nodes: usize, per_node: usize, token: &str) {
    let calls = (0..nodes * per_node).map(|i| {
        let node = format!("node-{:02}", i % nodes);
        let body = json!({
            "Node": node, "Address": format!("10.1.{}.{}", i % nodes / 250, i % nodes % 250 + 1),
            "Service": {"ID": format!("svc-{i:04}"), "Service": format!("svc-{i:04}"), "Port": 8000 + i % 1000,
                        "Tags": [format!("tier-{}", i % 3)]},
            "Check": {"CheckID": format!("svc-{i:04}-http"), "Name": "http", "Status": "passing",
                      "ServiceID": format!("svc-{i:04}"), "Output": "HTTP GET: 200 OK"},
        });
        async move {
            ok(put(a, "/v1/catalog/register", token, body).await);
        }
    });
    futures_util::stream::iter(calls)
        .buffer_unordered(50)
        .collect::<Vec<()>>()
        .await;
}

/// The entry of a JSON list whose `Name` is `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    let found = list.as_array().unwrap().iter().find(|s| s["Name"] == name);
    found.unwrap_or_else(|| panic!("{name} in {list}"))
}

// ---- serving ------------------------------------------------------------------------------

#[tokio::test]
async fn root_redirects_to_the_ui_whose_pages_and_assets_are_served_with_csp() {
    let a = ui_agent().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(a.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 301);
    assert_eq!(root.headers()["Location"], "/ui/");
    let ui = client.get(a.url("/ui")).send().await.unwrap();
    assert_eq!(
        (ui.status().as_u16(), &ui.headers()["Location"]),
        (
            301,
            &"/ui/".parse::<reqwest::header::HeaderValue>().unwrap()
        )
    );
    let page = a.get("/ui/dc1/services/web").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["Content-Security-Policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    let script = html
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(
        script.starts_with("/ui/assets/") && script.ends_with("/app.js"),
        "{script}"
    );
    let gz = a
        .http
        .get(a.url(&script))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["Content-Encoding"], "gzip");
    assert!(gz.headers()["Cache-Control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(
        gz.headers()["Content-Type"],
        "text/javascript; charset=utf-8"
    );
    let plain = a.get(&script).await;
    assert!(plain.headers().get("Content-Encoding").is_none());
    assert!(plain.text().await.unwrap().contains("import"));
    let old = a.get("/ui/assets/000000000000/app.js").await;
    assert_eq!(old.status(), 404);
}

#[tokio::test]
async fn without_the_ui_root_says_so_and_ui_paths_are_not_found() {
    let a = TestAgent::start().await;
    let root = a.get("/").await;
    assert_eq!(root.status(), 200);
    assert_eq!(
        root.text().await.unwrap(),
        "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart."
    );
    assert_eq!(a.get("/ui/").await.status(), 404);
    let metrics = a.get("/v1/internal/ui/metrics-proxy/api/v1/query").await;
    assert_eq!(metrics.status(), 404);
    assert_eq!(metrics.text().await.unwrap(), "UI is not enabled");
}

#[tokio::test]
async fn content_path_moves_the_ui() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ui.hcl");
    std::fs::write(
        &cfg,
        "ui_config {\n enabled = true\n content_path = \"/console\"\n}\n",
    )
    .unwrap();
    let a = TestAgent::start_with(move |f| f.config_file = vec![cfg]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(a.url("/")).send().await.unwrap();
    assert_eq!(root.headers()["Location"], "/console/");
    let page = a.get("/console/dc1/kv/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/console/assets/"));
    assert_eq!(a.get("/ui/").await.status(), 404);
}

// ---- internal endpoints -------------------------------------------------------------------

#[tokio::test]
async fn ui_services_summarize_instances_checks_and_tags_as_consul() {
    let a = ui_agent().await;
    for (node, id, tags, status) in [
        ("n1", "web-1", json!(["v1", "blue"]), "passing"),
        ("n2", "web-2", json!(["v1"]), "critical"),
    ] {
        a.put_ok("/v1/catalog/register", json!({
            "Node": node, "Address": "10.0.0.1",
            "Service": {"ID": id, "Service": "web", "Port": 80, "Tags": tags, "Meta": {"external-source": "k8s"}},
            "Check": {"CheckID": format!("{id}-check"), "Name": "c", "Status": status, "ServiceID": id},
        }).to_string()).await;
    }
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1",
        "Check": {"CheckID": "node-disk", "Name": "disk", "Status": "warning"}})
        .to_string(),
    )
    .await;
    let (index, services) = a.get_json("/v1/internal/ui/services").await;
    assert!(index > 0);
    let web = named(&services, "web");
    assert_eq!(
        web,
        &json!({
            "Name": "web", "Datacenter": "dc1", "Tags": ["blue", "v1"], "Nodes": ["n1", "n2"],
            "ExternalSources": ["k8s"], "InstanceCount": 2,
            "ChecksPassing": 1, "ChecksWarning": 1, "ChecksCritical": 1,
            "GatewayConfig": {}, "TransparentProxy": false, "ConnectNative": false,
            "ConnectedWithProxy": false, "ConnectedWithGateway": false,
        })
    );
    // A blocking read returns once a check changes.
    let waiter = {
        let url = a.url(&format!("/v1/internal/ui/services?index={index}&wait=10s"));
        let http = a.http.clone();
        tokio::spawn(async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    a.put_ok("/v1/catalog/register", json!({"Node": "n2", "Address": "10.0.0.1",
        "Check": {"CheckID": "web-2-check", "Name": "c", "Status": "passing", "ServiceID": "web-2"}}).to_string()).await;
    let after = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    let web = named(&after, "web");
    assert_eq!(
        (
            web["ChecksPassing"].as_u64(),
            web["ChecksCritical"].as_u64()
        ),
        (Some(2), Some(0))
    );
}

#[tokio::test]
async fn ui_nodes_and_node_carry_services_and_checks() {
    let a = ui_agent().await;
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "db-1", "Address": "10.0.0.9", "NodeMeta": {"rack": "r1"},
        "Service": {"Service": "db", "Port": 5432}})
        .to_string(),
    )
    .await;
    let (_, nodes) = a.get_json("/v1/internal/ui/nodes").await;
    let db = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Node"] == "db-1")
        .unwrap();
    assert_eq!(db["Address"], "10.0.0.9");
    assert_eq!(db["Meta"]["rack"], "r1");
    assert_eq!(db["Services"][0]["Service"], "db");
    assert_eq!(db["Checks"], json!([]));
    let (_, one) = a.get_json("/v1/internal/ui/node/db-1").await;
    assert_eq!(&one, db);
    let missing = a.get("/v1/internal/ui/node/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), "");
    let (_, overview) = a.get_json("/v1/internal/ui/catalog-overview").await;
    let db = named(&overview["Services"], "db");
    assert_eq!(
        db,
        &json!({"Name": "db", "Total": 1, "Passing": 1, "Warning": 0, "Critical": 0})
    );
    assert_eq!(overview["Nodes"].as_array().unwrap().len(), 1);
    assert!(overview["Nodes"][0].get("Name").is_none());
    let (_, exported) = a.get_json("/v1/internal/ui/exported-services").await;
    assert_eq!(exported, json!([]));
    let metrics = a.get("/v1/internal/ui/metrics-proxy/api/v1/query").await;
    assert_eq!(metrics.status(), 404);
    assert_eq!(
        metrics.text().await.unwrap(),
        "Metrics proxy is not enabled"
    );
}

/// Registers `web` on `n1` and `db` on `n2`; the secret of a token that reads only `web` and
/// `n1`.
async fn web_on_n1_reader(a: &TestAgent) -> String {
    for (node, service) in [("n1", "web"), ("n2", "db")] {
        let body = json!({"Node": node, "Address": "10.0.0.1", "Service": {"Service": service}});
        ok(put(a, "/v1/catalog/register", ROOT, body).await);
    }
    token_with(
        a,
        "service \"web\" { policy = \"read\" }\nnode \"n1\" { policy = \"read\" }",
    )
    .await
}

#[tokio::test]
async fn ui_lists_show_only_what_the_token_may_read() {
    let (a, _dir) = ui_acl_agent().await;
    let secret = web_on_n1_reader(&a).await;
    let resp = a
        .http
        .get(a.url("/v1/internal/ui/services"))
        .header("X-Consul-Token", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["X-Consul-Results-Filtered-By-ACLs"], "true");
    let services: Vec<Value> = resp.json().await.unwrap();
    let names: Vec<&Value> = services.iter().map(|s| &s["Name"]).collect();
    assert_eq!(names, [&json!("web")]);
    let nodes = ok(get(&a, "/v1/internal/ui/nodes", &secret).await);
    let names: Vec<&Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["Node"])
        .collect();
    assert_eq!(names, [&json!("n1")]);
    assert_eq!(get(&a, "/v1/internal/ui/node/n2", &secret).await.0, 404);
    let (status, text) = get(&a, "/v1/internal/ui/catalog-overview", &secret).await;
    assert_eq!(status, 403, "{text}");
}

/// As Consul's `NodeDump` and `ServiceDump`, `?filter` runs before the ACL filter: what the
/// expression drops anyway does not count as filtered by ACLs.
#[tokio::test]
async fn ui_lists_apply_the_filter_before_acls() {
    let (a, _dir) = ui_acl_agent().await;
    let secret = web_on_n1_reader(&a).await;
    for (path, filter, filtered) in [
        ("/v1/internal/ui/nodes", "Node == n1", false),
        ("/v1/internal/ui/nodes", "Node != nobody", true),
        ("/v1/internal/ui/services", "Service.Service == web", false),
        (
            "/v1/internal/ui/services",
            "Service.Service != nobody",
            true,
        ),
    ] {
        let resp = a
            .http
            .get(a.url(path))
            .query(&[("filter", filter)])
            .header("X-Consul-Token", &secret)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} {filter}");
        let header = resp.headers().get("X-Consul-Results-Filtered-By-ACLs");
        assert_eq!(header.is_some(), filtered, "{path} {filter}: {header:?}");
        let list: Vec<Value> = resp.json().await.unwrap();
        assert_eq!(list.len(), 1, "{path} {filter}: {list:?}");
    }
}

#[tokio::test]
async fn ui_service_topology_names_upstreams_and_downstreams_with_intention_decisions() {
    let a = ui_agent().await;
    for service in [
        json!({"Service": "web", "Port": 80}),
        json!({"Service": "api", "Port": 81}),
        json!({"Kind": "connect-proxy", "ID": "web-proxy", "Service": "web-sidecar-proxy", "Port": 21000,
               "Proxy": {"DestinationServiceName": "web", "Upstreams": [{"DestinationName": "api", "LocalBindPort": 9191}]}}),
    ] {
        a.put_ok(
            "/v1/catalog/register",
            json!({"Node": "n1", "Address": "10.0.0.1", "Service": service}).to_string(),
        )
        .await;
    }
    a.put_ok(
        "/v1/connect/intentions/exact?source=web&destination=api",
        json!({"Action": "deny"}).to_string(),
    )
    .await;
    let (_, web) = a
        .get_json("/v1/internal/ui/service-topology/web?kind=")
        .await;
    assert_eq!(web["Protocol"], "tcp");
    assert_eq!(web["TransparentProxy"], false);
    assert_eq!(web["Downstreams"], json!([]));
    let up = &web["Upstreams"][0];
    assert_eq!(
        (&up["Name"], &up["Source"], up["InstanceCount"].as_u64()),
        (&json!("api"), &json!("proxy-registration"), Some(1))
    );
    assert_eq!(
        up["Intention"],
        json!({"DefaultAllow": true, "Allowed": false, "HasPermissions": false, "ExternalSource": "", "HasExact": true})
    );
    let (_, api) = a
        .get_json("/v1/internal/ui/service-topology/api?kind=")
        .await;
    assert_eq!(api["Downstreams"][0]["Name"], "web");
    assert_eq!(api["Upstreams"], json!([]));
    let missing = a.get("/v1/internal/ui/service-topology/web").await;
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.text().await.unwrap(), "Missing service kind");
    let odd = a
        .get("/v1/internal/ui/service-topology/web?kind=mesh-gateway")
        .await;
    assert_eq!(
        odd.text().await.unwrap(),
        "Unsupported service kind \"mesh-gateway\""
    );
}

#[tokio::test]
async fn ui_ingress_addresses_follow_the_dns_domain_and_alt_domain() {
    let a = TestAgent::start_with(|f| {
        f.ui = Some(true);
        f.hcl = vec![
            "domain = \"example.\"".into(),
            "alt_domain = \"alt.test\"".into(),
        ];
    })
    .await;
    let entry = json!({"Kind": "ingress-gateway", "Name": "ing", "Listeners": [
        {"Port": 8080, "Protocol": "tcp", "Services": [{"Name": "api"}]}]});
    a.put_ok("/v1/config", entry.to_string()).await;
    let (_, fronted) = a
        .get_json("/v1/internal/ui/gateway-services-nodes/ing")
        .await;
    assert_eq!(
        fronted[0]["GatewayConfig"],
        json!({"Addresses": ["api.ingress.dc1.example.:8080", "api.ingress.dc1.alt.test.:8080"]})
    );
}

#[tokio::test]
async fn ui_gateway_reads_list_fronted_services_with_addresses_and_their_intentions() {
    let a = ui_agent().await;
    a.put_ok(
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1",
        "Service": {"Service": "api", "Port": 81}})
        .to_string(),
    )
    .await;
    let entry = json!({"Kind": "ingress-gateway", "Name": "ing", "Listeners": [
        {"Port": 8080, "Protocol": "tcp", "Services": [{"Name": "api"}]},
        {"Port": 8081, "Protocol": "tcp", "Services": [{"Name": "billing"}]}]});
    a.put_ok("/v1/config", entry.to_string()).await;
    let (_, fronted) = a
        .get_json("/v1/internal/ui/gateway-services-nodes/ing")
        .await;
    let fronted = fronted.as_array().unwrap();
    assert_eq!(fronted.len(), 2);
    assert_eq!(fronted[0]["Name"], "api");
    assert_eq!(fronted[0]["InstanceCount"], 1);
    assert_eq!(
        fronted[0]["GatewayConfig"],
        json!({"Addresses": ["api.ingress.dc1.consul.:8080"]})
    );
    // A fronted service without instances is listed by name.
    assert_eq!(fronted[1]["Name"], "billing");
    assert_eq!(fronted[1]["InstanceCount"], 0);
    assert_eq!(fronted[1]["Nodes"], Value::Null);
    assert_eq!(
        fronted[1]["GatewayConfig"],
        json!({"Addresses": ["billing.ingress.dc1.consul.:8081"]})
    );
    a.put_ok(
        "/v1/connect/intentions/exact?source=web&destination=api",
        json!({"Action": "allow"}).to_string(),
    )
    .await;
    a.put_ok(
        "/v1/connect/intentions/exact?source=web&destination=other",
        json!({"Action": "deny"}).to_string(),
    )
    .await;
    let (_, intentions) = a.get_json("/v1/internal/ui/gateway-intentions/ing").await;
    let pairs: Vec<(Value, Value)> = intentions
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["SourceName"].clone(), i["DestinationName"].clone()))
        .collect();
    assert_eq!(pairs, [(json!("web"), json!("api"))]);
    let missing = a.get("/v1/internal/ui/gateway-intentions/").await;
    assert_eq!(
        (missing.status().as_u16(), missing.text().await.unwrap()),
        (400, "Missing gateway name".to_string())
    );
}

// ---- in the browser -----------------------------------------------------------------------

/// Runs a scenario of tests/ui/browser.py against `a`; fails with the script's message (for
/// a missing prerequisite, the command that installs it). Returns its measurements.
async fn browser(a: &TestAgent, scenario: &str, args: &[&str]) -> Value {
    let out = tokio::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/browser.py"))
        .arg(scenario)
        .arg(&a.base)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("python3 runs (install Python 3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser scenario {scenario} failed:\n{stderr}\n{stdout}"
    );
    eprintln!("{stdout}");
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the scenario's measurements")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_finds_a_service_reads_its_check_and_sees_it_turn_critical_live() {
    let a = ui_agent().await;
    register_catalog(&a, 50, 4, "").await;
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Name": "payments", "Port": 9000, "Tags": ["pci"],
        "Meta": {"team": "money"}, "Check": {"CheckID": "payments-ttl", "TTL": "10m"}})
        .to_string(),
    )
    .await;
    a.put_ok(
        "/v1/agent/check/pass/payments-ttl?note=ledger+reachable",
        "",
    )
    .await;
    let session = json!({"Name": "payments-leader", "Node": "test-node"}).to_string();
    a.put_ok("/v1/session/create", session).await;
    let got = browser(
        &a,
        "services",
        &["payments", "payments-ttl", "ledger reachable"],
    )
    .await;
    assert!(got["critical_after_s"].as_f64().unwrap() < 2.0, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_creates_a_key_and_a_second_editor_gets_a_conflict() {
    let a = ui_agent().await;
    browser(&a, "kv", &[]).await;
}

/// A deny-by-default agent with services, nodes and keys in and out of `app/`, and the
/// secret of a token that may read only `app/` keys.
async fn app_keys_only() -> (TestAgent, tempfile::TempDir, String) {
    let (a, dir) = ui_acl_agent().await;
    register_catalog(&a, 2, 1, ROOT).await;
    for key in ["app/one", "other/two"] {
        ok(put(&a, &format!("/v1/kv/{key}"), ROOT, json!("value")).await);
    }
    let secret = token_with(&a, "key_prefix \"app/\" { policy = \"read\" }").await;
    (a, dir, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_with_deny_a_token_for_app_keys_sees_no_services_nodes_or_acls() {
    let (a, _dir, secret) = app_keys_only().await;
    browser(&a, "acl", &[&secret]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_with_deny_a_token_for_app_keys_sees_only_app_keys() {
    let (a, _dir, secret) = app_keys_only().await;
    browser(&a, "acl-kv", &[&secret]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_first_load_is_small_and_a_thousand_services_render_within_a_second() {
    let a = ui_agent().await;
    register_catalog(&a, 50, 20, "").await;
    let got = browser(&a, "weight", &[]).await;
    assert!(
        got["first_load_compressed_bytes"].as_u64().unwrap() < 200 * 1024,
        "{got}"
    );
    assert!(got["render_ms"].as_u64().unwrap() < 1000, "{got}");
}
