//! `TestAgent`: a real agent serving HTTP on 127.0.0.1 with an ephemeral port and a temp data
//! dir, plus a small client for driving it.
#![allow(dead_code)]

use legate::config::{AgentFlags, Config};
use legate::process::Agent;
use std::path::{Path, PathBuf};

pub mod tls;

pub struct TestAgent {
    agent: Option<Agent>,
    dir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub base: String,
    pub http: reqwest::Client,
    /// The flags it was started with, which a restart keeps.
    flags: AgentFlags,
}

impl TestAgent {
    pub async fn start() -> TestAgent {
        Self::start_with(|_| {}).await
    }

    /// Starts an agent after letting `adjust` change its flags.
    pub async fn start_with(adjust: impl FnOnce(&mut AgentFlags)) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut agent = Self::start_in(&data_dir, adjust).await;
        agent.dir = Some(dir);
        agent
    }

    /// Starts an agent whose store opens its database file through `opener` (a backend that
    /// fails on command, for disk faults); a restart opens the file as the agent does.
    pub async fn start_on(opener: &legate::store::DatabaseOpener) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut agent = Self::start_in_with(&data_dir, |_| {}, opener).await;
        agent.dir = Some(dir);
        agent
    }

    /// Starts an agent on an existing data dir (for restarts).
    pub async fn start_in(data_dir: &Path, adjust: impl FnOnce(&mut AgentFlags)) -> TestAgent {
        Self::start_in_with(data_dir, adjust, &legate::store::file_database()).await
    }

    async fn start_in_with(
        data_dir: &Path,
        adjust: impl FnOnce(&mut AgentFlags),
        opener: &legate::store::DatabaseOpener,
    ) -> TestAgent {
        let mut flags = AgentFlags {
            data_dir: Some(data_dir.to_path_buf()),
            http_port: Some(0),
            // Tests run side by side: none takes the default DNS port (8600); the DNS tests
            // ask for an ephemeral one.
            dns_port: Some(-1),
            node: Some("test-node".into()),
            ..Default::default()
        };
        adjust(&mut flags);
        let config = Config::load(&flags).expect("valid test config");
        let started_with = flags.clone();
        let agent = Agent::start_with(config, opener)
            .await
            .expect("agent starts");
        let base = format!("http://{}", agent.http_addr.expect("http enabled"));
        TestAgent {
            agent: Some(agent),
            dir: None,
            data_dir: data_dir.to_path_buf(),
            base,
            http: reqwest::Client::new(),
            flags: started_with,
        }
    }

    /// Stops the agent cleanly and starts it again on the same data dir.
    pub async fn restart(mut self) -> TestAgent {
        let dir = self.dir.take();
        let data_dir = self.data_dir.clone();
        let flags = self.flags.clone();
        self.agent.take().unwrap().stop().await;
        let mut agent = Self::start_in(&data_dir, |f| *f = flags).await;
        agent.dir = dir;
        agent
    }

    /// Where the agent answers DNS (started with a `dns_port` other than -1).
    pub fn dns_addr(&self) -> std::net::SocketAddr {
        self.agent
            .as_ref()
            .and_then(|a| a.dns_addr)
            .expect("DNS enabled")
    }

    /// The agent's store, for tests that watch what it applies.
    pub fn store(&self) -> &legate::store::Store {
        &self.agent.as_ref().expect("agent running").ctx.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http.delete(self.url(path)).send().await.unwrap()
    }

    /// PUTs and returns the response text, asserting a 200.
    pub async fn put_ok(&self, path: &str, body: impl Into<reqwest::Body>) -> String {
        let resp = self.put(path, body).await;
        assert_eq!(resp.status(), 200, "PUT {path}");
        resp.text().await.unwrap()
    }

    /// GETs JSON, asserting a 200; returns `X-Consul-Index` (0 when absent) and the body.
    pub async fn get_json(&self, path: &str) -> (u64, serde_json::Value) {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        (index, resp.json().await.unwrap())
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.ctx.shutdown.notify_waiters();
            agent.ctx.store.close();
        }
    }
}

pub fn index_of(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("X-Consul-Index")
        .expect("X-Consul-Index header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A tiny HTTP server on 127.0.0.1 answering every request with `status` and `body`; returns
/// its address. It lives as long as the test's runtime.
pub async fn http_target(status: u16, body: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

impl TestAgent {
    /// Polls `GET path` until `pred` holds for its JSON body (at most 10 s).
    pub async fn eventually(
        &self,
        path: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let resp = self.get(path).await;
            let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
            if pred(&body) {
                return body;
            }
            if std::time::Instant::now() > deadline {
                panic!("condition on {path} not met within 10s; last body: {body}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Starts a (blocking) GET of `path`; the task yields the reply's index (0 for endpoints
    /// without `X-Consul-Index`, such as hash-blocking agent reads), its JSON body and how long
    /// it took.
    pub fn watch(
        &self,
        path: &str,
    ) -> tokio::task::JoinHandle<(u64, serde_json::Value, std::time::Duration)> {
        let url = self.url(path);
        let http = self.http.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let resp = http.get(url).send().await.unwrap();
            let index = match resp.headers().contains_key("X-Consul-Index") {
                true => index_of(&resp),
                false => 0,
            };
            (index, resp.json().await.unwrap(), started.elapsed())
        })
    }

    pub async fn put_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

// ----- the real binary, for process-level tests -----

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the real `legate agent` binary with `args` (stderr piped), its DNS interface off so
/// agents of parallel tests do not contend for port 8600.
pub fn agent(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_legate"))
        .arg("agent")
        .args(["-dns-port", "-1"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 20 s) until the agent at `base` answers.
pub async fn wait_ready(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/v1/status/leader")).await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("agent at {base} not ready after 20s");
}

/// The JSON a `GET` of `url` answers (an agent spawned as a process, not a `TestAgent`).
pub async fn json_at(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// Waits (at most `within`) for the process to exit, killing it otherwise.
pub fn wait_exit(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("agent did not exit within {within:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What a `legate` CLI run printed and returned.
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TestAgent {
    /// Runs the real `legate` binary with `args` against this agent (`CONSUL_HTTP_ADDR`),
    /// feeding it `stdin` when given.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"))
            .args(args)
            .env("CONSUL_HTTP_ADDR", self.base.trim_start_matches("http://"))
            .env_remove("CONSUL_HTTP_TOKEN")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
