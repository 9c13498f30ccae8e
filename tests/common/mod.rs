//! `TestAgent`: a real agent serving HTTP on 127.0.0.1 with an ephemeral port and a temp data
//! dir, plus a small client for driving it.
#![allow(dead_code)]

use legate::agent::Agent;
use legate::config::{AgentFlags, Config};
use std::path::{Path, PathBuf};

pub struct TestAgent {
    agent: Option<Agent>,
    dir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub base: String,
    pub http: reqwest::Client,
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

    /// Starts an agent on an existing data dir (for restarts).
    pub async fn start_in(data_dir: &Path, adjust: impl FnOnce(&mut AgentFlags)) -> TestAgent {
        let mut flags = AgentFlags {
            data_dir: Some(data_dir.to_path_buf()),
            http_port: Some(0),
            node: Some("test-node".into()),
            ..Default::default()
        };
        adjust(&mut flags);
        let config = Config::load(&flags).expect("valid test config");
        let agent = Agent::start(config).await.expect("agent starts");
        let base = format!("http://{}", agent.http_addr.expect("http enabled"));
        TestAgent {
            agent: Some(agent),
            dir: None,
            data_dir: data_dir.to_path_buf(),
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the agent cleanly and starts it again on the same data dir.
    pub async fn restart(mut self) -> TestAgent {
        let dir = self.dir.take();
        let data_dir = self.data_dir.clone();
        self.agent.take().unwrap().stop().await;
        let mut agent = Self::start_in(&data_dir, |_| {}).await;
        agent.dir = dir;
        agent
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
