//! The `legate agent` process: signals, pid file, data dir lock and startup errors.

use crate::common::{agent, free_port, json_at, wait_exit, wait_ready};
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pid_file = dir.path().join("legate.pid");
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let data_arg = data.to_str().unwrap();
    let mut child = agent(&[
        "-data-dir",
        data_arg,
        "-http-port",
        &port,
        "-pid-file",
        pid_file.to_str().unwrap(),
    ]);
    wait_ready(&base).await;
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        child.id().to_string()
    );

    // A second agent on the same data dir refuses to start.
    let mut second = agent(&[
        "-data-dir",
        data_arg,
        "-http-port",
        &free_port().to_string(),
    ]);
    let status = wait_exit(&mut second, Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(second.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("in use by another agent"), "{err}");

    let client = reqwest::Client::new();
    let put = client
        .put(format!("{base}/v1/kv/kept"))
        .body("yes")
        .send()
        .await
        .unwrap();
    assert_eq!(put.text().await.unwrap(), "true");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(!pid_file.exists(), "pid file removed on clean shutdown");

    let mut child = agent(&["-data-dir", data_arg, "-http-port", &port]);
    wait_ready(&base).await;
    let got = client
        .get(format!("{base}/v1/kv/kept?raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "yes");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}

#[test]
fn bad_configuration_stops_the_start_with_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.json");
    std::fs::write(&cfg, r#"{"data_dir": "/tmp/x", "bogus_key": true}"#).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-config-file", cfg.to_str().unwrap()], "bogus_key"),
        (vec!["-dev", "-no-such-flag"], "no-such-flag"),
        (
            vec!["-dev", "-hcl", "ports { http = \"x\" }"],
            "invalid type",
        ),
        (vec![], "data_dir"),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_legate"))
            .arg("agent")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// As Go's flag package: the last of a repeated flag wins, while `-config-file` (a repeatable
/// flag) keeps every file given.
#[tokio::test]
async fn a_repeated_flag_takes_the_last_value_and_config_files_accumulate() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("named.json");
    std::fs::write(&named, r#"{"node_name": "from-first-file"}"#).unwrap();
    let service = dir.path().join("service.json");
    std::fs::write(&service, r#"{"services": [{"name": "from-second-file"}]}"#).unwrap();
    let (first, last) = (free_port().to_string(), free_port().to_string());
    let mut child = agent(&[
        "-dev",
        "-http-port",
        &first,
        "-http-port",
        &last,
        "-config-file",
        named.to_str().unwrap(),
        "-config-file",
        service.to_str().unwrap(),
    ]);
    let base = format!("http://127.0.0.1:{last}");
    wait_ready(&base).await;
    assert!(
        reqwest::get(format!("http://127.0.0.1:{first}/v1/status/leader"))
            .await
            .is_err(),
        "the first -http-port is served too"
    );
    let node = json_at(&format!("{base}/v1/agent/self")).await;
    assert_eq!(node["Config"]["NodeName"], "from-first-file");
    let services = json_at(&format!("{base}/v1/agent/services")).await;
    assert!(services.get("from-second-file").is_some(), "{services}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(0)
    );
}
