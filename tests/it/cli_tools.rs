//! `legate keygen`, `validate`, `tls ca|cert create`, `rtt`, `monitor` and `debug`: the real
//! binary, in a temp working directory or against a running agent.

use crate::common::tls::{openssl, openssl_verify};
use crate::common::{CliOutput, TestAgent};
use std::path::Path;
use std::time::Duration;

/// Runs `legate args` in `dir` (no agent needed).
fn legate_in(dir: &Path, args: &[&str]) -> CliOutput {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn keygen_prints_32_random_bytes_in_base64() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let first = legate_in(dir.path(), &["keygen"]);
    let second = legate_in(dir.path(), &["keygen"]);
    assert_eq!(first.code, 0);
    let key = first.stdout.trim_end_matches('\n');
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    assert_eq!(bytes.len(), 32);
    assert_ne!(first.stdout, second.stdout);
}

#[test]
fn validate_accepts_a_good_config_and_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("a.hcl"),
        "data_dir = \"/tmp/x\"\nnode_name = \"n1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        r#"{"ports": {"http": 8600}, "watches": [{"type": "nodes", "args": ["true"]}]}"#,
    )
    .unwrap();
    let out = legate_in(dir.path(), &["validate", "conf.d", "b.json"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Configuration is valid!\n"),
        "{}",
        out.stderr
    );
    let out = legate_in(dir.path(), &["validate", "-quiet", "conf.d"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));

    // Any extension, read as the format given.
    std::fs::write(dir.path().join("c.conf"), "data_dir = \"/tmp/x\"\n").unwrap();
    let out = legate_in(dir.path(), &["validate", "-config-format=hcl", "c.conf"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = legate_in(dir.path(), &["validate", "-config-format=yaml", "c.conf"]);
    assert_eq!(out.stderr, "-config-format must be either 'hcl' or 'json\n");

    std::fs::write(
        dir.path().join("bad.hcl"),
        "data_dir = \"/tmp/x\"\nnode_nmae = \"n1\"\n",
    )
    .unwrap();
    let out = legate_in(dir.path(), &["validate", "bad.hcl"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("Config validation failed: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("node_nmae"), "{}", out.stderr);
    assert_eq!(out.stdout, "");

    std::fs::write(
        dir.path().join("watch.json"),
        r#"{"data_dir": "/tmp/x", "watches": [{"type": "key", "key": "k"}]}"#,
    )
    .unwrap();
    let out = legate_in(dir.path(), &["validate", "watch.json"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("watches[0]: Must define a watch handler"),
        "{}",
        out.stderr
    );

    let out = legate_in(dir.path(), &["validate"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Must specify at least one config file or directory\n")
    );
}

#[test]
fn tls_ca_and_certs_as_consul_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = legate_in(
        d,
        &[
            "tls",
            "ca",
            "create",
            "-name-constraint",
            "-additional-name-constraint",
            "example.com",
        ],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n"
        ),
        "{}",
        out.stderr
    );
    let out = legate_in(d, &["tls", "ca", "create"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "consul-agent-ca.pem already exists.\n")
    );
    let key = std::fs::read_to_string(d.join("consul-agent-ca-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{key}");

    let out = legate_in(
        d,
        &[
            "tls",
            "cert",
            "create",
            "-server",
            "-node",
            "n1",
            "-additional-dnsname",
            "extra.example.com",
            "-additional-ipaddress",
            "10.1.2.3",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out
        .stdout
        .starts_with("==> WARNING: Server Certificates grants authority"));
    assert!(out.stdout.ends_with(
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n"
    ));
    let out = legate_in(d, &["tls", "cert", "create", "-server"]);
    assert!(
        out.stdout
            .ends_with("==> Saved dc1-server-consul-1-key.pem\n"),
        "{}",
        out.stdout
    );
    let out = legate_in(d, &["tls", "cert", "create", "-client", "-dc", "east"]);
    assert_eq!(
        out.stdout,
        "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n==> Saved east-client-consul-0.pem\n==> Saved east-client-consul-0-key.pem\n"
    );
    assert_eq!(legate_in(d, &["tls", "cert", "create", "-cli"]).code, 0);

    let ca = std::fs::read_to_string(d.join("consul-agent-ca.pem")).unwrap();
    let text = |file: &str| {
        let out = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            d.join(file).to_str().unwrap(),
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (file, sans, eku) in [
        (
            "dc1-server-consul-0.pem",
            "DNS:extra.example.com, DNS:n1.server.dc1.consul, DNS:server.dc1.consul, DNS:localhost, IP Address:10.1.2.3, IP Address:127.0.0.1",
            Some("TLS Web Server Authentication, TLS Web Client Authentication"),
        ),
        (
            "east-client-consul-0.pem",
            "DNS:client.east.consul, DNS:localhost, IP Address:127.0.0.1",
            Some("TLS Web Client Authentication, TLS Web Server Authentication"),
        ),
        ("dc1-cli-consul-0.pem", "DNS:cli.dc1.consul, DNS:localhost", None),
    ] {
        openssl_verify(&ca, None, &std::fs::read_to_string(d.join(file)).unwrap());
        let text = text(file);
        assert!(text.contains(sans), "{file}: {text}");
        match eku {
            Some(eku) => assert!(text.contains(eku), "{file}: {text}"),
            None => assert!(!text.contains("Extended Key Usage"), "{file}: {text}"),
        }
    }
    let ca_text = text("consul-agent-ca.pem");
    assert!(ca_text.contains("O = HashiCorp Inc."), "{ca_text}");
    assert!(ca_text.contains("CN = Consul Agent CA "), "{ca_text}");
    assert!(
        ca_text.contains("X509v3 Name Constraints: critical"),
        "{ca_text}"
    );
    assert!(ca_text.contains("DNS:example.com"), "{ca_text}");

    for (args, error) in [
        (
            &["tls", "cert", "create"][..],
            "Please provide either -server, -client, or -cli\n",
        ),
        (
            &["tls", "cert", "create", "-client", "-node", "n"],
            "-node requires -server\n",
        ),
        (
            &["tls", "cert", "create", "-client", "-domain", "other"],
            "Error reading CA: open other-agent-ca.pem: no such file or directory\n",
        ),
    ] {
        let out = legate_in(d, args);
        assert_eq!((out.code, out.stderr.as_str()), (1, error), "{args:?}");
    }
}

#[tokio::test]
async fn rtt_reports_the_distance_between_coordinates() {
    let a = TestAgent::start().await;
    for (node, vec) in [
        ("alpha", "0, 0, 0.003, 0, 0, 0, 0, 0"),
        ("beta", "0, 0.004, 0, 0, 0, 0, 0, 0"),
    ] {
        a.put_ok(
            "/v1/catalog/register",
            format!(r#"{{"Node": "{node}", "Address": "10.0.0.1"}}"#),
        )
        .await;
        a.put_ok(
            "/v1/coordinate/update",
            format!(
                r#"{{"Node": "{node}", "Coord": {{"Vec": [{vec}], "Error": 1.5, "Adjustment": 0, "Height": 0.0001}}}}"#
            ),
        )
        .await;
    }
    a.eventually("/v1/coordinate/nodes", |v| {
        v.as_array().is_some_and(|n| n.len() >= 2)
    })
    .await;
    let out = a.cli(&["rtt", "alpha", "beta"], None).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Estimated alpha <-> beta rtt: 5.200 ms (using LAN coordinates)\n"
        ),
        "{}",
        out.stderr
    );
    let out = a.cli(&["rtt", "alpha", "nowhere"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        // As consul: with one node unknown, neither counts as found.
        (1, "Could not find a coordinate for node \"alpha\"\n")
    );
    let out = a.cli(&["rtt"], None).await;
    assert_eq!(out.code, 1);
    assert!(out
        .stderr
        .starts_with("One or two node names must be specified\n"));
}

#[tokio::test]
async fn monitor_streams_the_agents_log_lines() {
    // The real agent process: its log lines are what the monitor streams.
    let dir = tempfile::tempdir().unwrap();
    let port = crate::common::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let mut agent = crate::common::agent(&[
        "-data-dir",
        dir.path().join("data").to_str().unwrap(),
        "-http-port",
        &port,
    ]);
    crate::common::wait_ready(&format!("http://{addr}")).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(["monitor", "-log-level", "debug", "-http-addr", &addr])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("new event") {
                return line;
            }
        }
        String::new()
    });
    let http = reqwest::Client::new();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while !reader.is_finished() {
            http.put(format!("http://{addr}/v1/event/fire/hello"))
                .send()
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        reader.await.unwrap()
    })
    .await
    .expect("a log line within 20s");
    assert!(line.contains("[DEBUG]"), "{line}");
    assert!(line.contains("event_name=hello"), "{line}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .args(["monitor", "-log-level", "loud", "-http-addr", &addr])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error starting monitor: Unexpected response code: 400 (Unknown log level: loud)\n"
    );
    let _ = child.kill().await;
    let _ = agent.kill();
    let _ = agent.wait();
}

#[tokio::test]
async fn debug_archives_agent_state_metrics_and_logs() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("capture");
    let out = a
        .cli(
            &[
                "debug",
                "-interval",
                "5s",
                "-duration",
                "10s",
                "-output",
                out_dir.to_str().unwrap(),
            ],
            None,
        )
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let archive = format!("{}.tar.gz", out_dir.display());
    assert!(
        out.stdout
            .ends_with(&format!("Saved debug archive: {archive}\n")),
        "{}",
        out.stdout
    );
    assert!(!out_dir.exists());

    let file = std::fs::File::open(&archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut names = Vec::new();
    let mut contents = std::collections::HashMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut text = String::new();
        if entry.header().entry_type().is_file() {
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            contents.insert(name.clone(), text);
        }
        names.push(name);
    }
    for file in [
        "index.json",
        "agent.json",
        "members.json",
        "metrics.json",
        "consul.log",
    ] {
        assert!(
            contents.contains_key(&format!("capture/{file}")),
            "{file} in {names:?}"
        );
    }
    let agent: serde_json::Value = serde_json::from_str(&contents["capture/agent.json"]).unwrap();
    assert_eq!(agent["Config"]["NodeName"], "test-node");
    let index: serde_json::Value = serde_json::from_str(&contents["capture/index.json"]).unwrap();
    assert_eq!(index["Interval"], "5s");
    assert_eq!(index["Duration"], "10s");
    // Two intervals in the duration: two samples.
    assert!(
        contents["capture/metrics.json"]
            .matches("\"Gauges\"")
            .count()
            >= 2
    );

    let out = a.cli(&["debug", "-interval", "1s"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Invalid flags: interval must be longer than 5s\n")
    );
    let out = a.cli(&["debug", "-capture", "pprof"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Invalid flags: target not found: pprof\n")
    );
}

#[test]
fn shell_completion_names_commands_and_installs_in_bashrc() {
    let home = tempfile::tempdir().unwrap();
    let legate = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_legate"))
            .args(args)
            .env("HOME", home.path())
            .env_remove("COMP_LINE")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = legate(
        &[],
        &[("COMP_LINE", "legate catalog s"), ("COMP_POINT", "16")],
    );
    assert_eq!((code, stdout.as_str()), (0, "services\n"));

    let (code, _, stderr) = legate(&["-autocomplete-install"], &[]);
    assert_eq!(
        (code, stderr.as_str()),
        (
            1,
            "Error installing autocomplete: did not find any shells to install\n"
        )
    );
    let bashrc = home.path().join(".bashrc");
    std::fs::write(&bashrc, "export A=1\n").unwrap();
    let (code, _, stderr) = legate(&["-autocomplete-install"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let line = format!("complete -C {} legate", env!("CARGO_BIN_EXE_legate"));
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        format!("export A=1\n{line}\n")
    );
    let (code, _, stderr) = legate(&["-autocomplete-install"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("Error installing autocomplete: already installed in "),
        "{stderr}"
    );
    let (code, _, _) = legate(&["-autocomplete-uninstall"], &[]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "export A=1\n");
}
