//! `legate watch` against a running agent, and the agent config's `watches` running their
//! script and HTTP handlers.

use crate::common::TestAgent;
use std::path::Path;
use std::time::Duration;

/// Waits (at most 10 s) until `file` holds `lines` lines; returns them.
async fn lines_of(file: &Path, lines: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_string).collect();
        if found.len() >= lines {
            return found;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{} has {} lines, expected {lines}: {text}",
                file.display(),
                found.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn watch_prints_the_view_once() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/app/config", "v1").await;
    let out = a
        .cli(&["watch", "-type", "key", "-key", "app/config"], None)
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (index, _) = a.get_json("/v1/kv/app/config").await;
    // The api package's KVPair, as consul watch prints it.
    assert_eq!(
        out.stdout,
        format!(
            "{{\n    \"Key\": \"app/config\",\n    \"CreateIndex\": {index},\n    \"ModifyIndex\": {index},\n    \"LockIndex\": 0,\n    \"Flags\": 0,\n    \"Value\": \"djE=\",\n    \"Session\": \"\"\n}}\n"
        )
    );

    let out = a.cli(&["watch", "-type=key", "-key=missing"], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "null\n"),
        "{}",
        out.stderr
    );

    let out = a
        .cli(&["watch", "-type", "keyprefix", "-prefix", "app/"], None)
        .await;
    let pairs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pairs[0]["Key"], "app/config");

    let out = a.cli(&["watch", "-type", "nodes"], None).await;
    let nodes: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(nodes[0]["Node"], "test-node");

    a.put_ok(
        "/v1/agent/service/register",
        r#"{"Name": "web", "Tags": ["v1"]}"#,
    )
    .await;
    let out = a.cli(&["watch", "-type", "services"], None).await;
    assert_eq!(out.stdout, "{\n    \"web\": [\n        \"v1\"\n    ]\n}\n");
    let out = a
        .cli(
            &[
                "watch",
                "-type",
                "service",
                "-service",
                "web",
                "-tag",
                "v1",
                "-passingonly=true",
            ],
            None,
        )
        .await;
    let entries: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(entries[0]["Service"]["Service"], "web");
    let out = a
        .cli(
            &["watch", "-type", "service", "-service", "web", "-tag", "v2"],
            None,
        )
        .await;
    assert_eq!(out.stdout, "[]\n");

    let out = a
        .cli(&["watch", "-type", "checks", "-state", "passing"], None)
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let checks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(checks.is_array(), "{checks}");
}

#[tokio::test]
async fn watch_refuses_bad_parameters() {
    let a = TestAgent::start().await;
    for (args, error) in [
        (&["watch"][..], "Watch type must be specified\n"),
        (&["watch", "-type", "key"], "Must specify a single key to watch\n"),
        (&["watch", "-type", "bogus"], "Unsupported watch type: bogus\n"),
        (
            &["watch", "-type", "checks", "-service", "s", "-state", "any"],
            "Cannot specify service and state\n",
        ),
        (
            &["watch", "-type", "service", "-service", "s", "-passingonly", "maybe"],
            "Failed to parse passingonly flag: strconv.ParseBool: parsing \"maybe\": invalid syntax\n",
        ),
        (&["watch", "-type", "event", "-stale"], "Invalid parameters: [stale]\n"),
    ] {
        let out = a.cli(args, None).await;
        assert_eq!(out.code, 1, "{args:?}");
        assert!(out.stderr.starts_with(error), "{args:?}: {}", out.stderr);
    }
    let out = a.cli(&["watch", "-type", "key", "-bogus"], None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("flag provided but not defined: -bogus"),
        "{}",
        out.stderr
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(["watch", "-type", "nodes", "-http-addr", "127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Error querying Consul agent: "));
}

#[tokio::test]
async fn watch_reruns_the_handler_on_a_change_and_not_otherwise() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    a.put_ok("/v1/kv/watched", "one").await;
    let script = format!("(echo $CONSUL_INDEX; cat) >> {}", log.display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(["watch", "-type", "key", "-key", "watched", "sh", "-c"])
        .arg(format!("'{script}'"))
        .env("CONSUL_HTTP_ADDR", a.base.trim_start_matches("http://"))
        .env("SHELL", "/bin/sh")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let first = lines_of(&log, 2).await;
    let (index, _) = a.get_json("/v1/kv/watched").await;
    assert_eq!(first[0], index.to_string());
    let pair: serde_json::Value = serde_json::from_str(&first[1]).unwrap();
    assert_eq!(pair["Value"], crate::common::b64("one"));

    // Another key moves the index but not the watched result: no rerun.
    a.put_ok("/v1/kv/unrelated", "x").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lines_of(&log, 2).await.len(), 2);

    a.put_ok("/v1/kv/watched", "two").await;
    let runs = lines_of(&log, 4).await;
    let pair: serde_json::Value = serde_json::from_str(&runs[3]).unwrap();
    assert_eq!(pair["Value"], crate::common::b64("two"));
    assert!(runs[2].parse::<u64>().unwrap() > index);

    // A failing handler stops the watch with exit code 1.
    let _ = child.start_kill();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args([
            "watch",
            "-type",
            "key",
            "-key",
            "watched",
            "-shell=false",
            "false",
        ])
        .env("CONSUL_HTTP_ADDR", a.base.trim_start_matches("http://"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error executing handler: exit status 1\n"
    );
}

/// A tiny HTTP server recording each request's head and body; returns its address.
async fn recorder() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        let _ = tx.send((head.to_string(), body.to_string()));
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn config_watches_run_script_and_http_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("script-runs");
    let (target, mut requests) = recorder().await;
    let hcl = format!(
        r#"watches = [
  {{ type = "key", key = "cfg", args = ["sh", "-c", "(echo $CONSUL_INDEX; cat) >> {log}"] }},
  {{
    type = "keyprefix"
    prefix = "cfg"
    handler_type = "http"
    http_handler_config = {{
      path = "http://{target}/hook"
      method = "PUT"
      header = {{ "X-Custom" = ["yes"] }}
      timeout = "5s"
    }}
  }},
]"#,
        log = log.display()
    );
    let a = TestAgent::start_with(|f| f.hcl.push(hcl)).await;

    // Both run at once, with nothing there yet.
    let first = lines_of(&log, 2).await;
    assert_eq!(first[1], "null");
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("PUT /hook HTTP/1.1"), "{head}");
    let head = head.to_lowercase();
    assert!(head.contains("x-custom: yes"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("x-consul-index: "), "{head}");
    assert_eq!(body, "null\n");

    a.put_ok("/v1/kv/cfg", "hello").await;
    let runs = lines_of(&log, 4).await;
    let pair: serde_json::Value = serde_json::from_str(&runs[3]).unwrap();
    assert_eq!(pair["Key"], "cfg");
    let (_, body) = tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .unwrap()
        .unwrap();
    let pairs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pairs[0]["Value"], crate::common::b64("hello"));
}

/// A config whose `watches` append what each run receives to files in `dir`: one per
/// (key, file name).
fn watches_config(dir: &Path, watches: &[(&str, &str)]) -> String {
    let plans: Vec<String> = watches
        .iter()
        .map(|(key, file)| {
            let log = dir.join(file);
            format!(
                r#"{{"type": "key", "key": "{key}", "args": ["sh", "-c", "cat >> {}"]}}"#,
                log.display()
            )
        })
        .collect();
    format!(r#"{{"watches": [{}]}}"#, plans.join(", "))
}

fn line_count(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn reload_stops_the_old_watch_plans_and_starts_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watches.json");
    let logs = dir.path();
    std::fs::write(&file, watches_config(logs, &[("a", "a-old"), ("b", "b")])).unwrap();
    let cfg = file.clone();
    let a = TestAgent::start_with(move |f| f.config_file = vec![cfg]).await;
    lines_of(&logs.join("a-old"), 1).await;
    lines_of(&logs.join("b"), 1).await;

    // `a` changes its handler, `b` goes, `c` comes.
    std::fs::write(&file, watches_config(logs, &[("a", "a-new"), ("c", "c")])).unwrap();
    assert_eq!(a.put("/v1/agent/reload", "").await.status(), 200);
    lines_of(&logs.join("a-new"), 1).await;
    lines_of(&logs.join("c"), 1).await;

    a.put_ok("/v1/kv/a", "1").await;
    a.put_ok("/v1/kv/b", "1").await;
    a.put_ok("/v1/kv/c", "1").await;
    lines_of(&logs.join("a-new"), 2).await;
    lines_of(&logs.join("c"), 2).await;
    assert_eq!(
        line_count(&logs.join("a-old")),
        1,
        "the old plan of a still runs"
    );
    assert_eq!(
        line_count(&logs.join("b")),
        1,
        "the removed plan still runs"
    );
}
