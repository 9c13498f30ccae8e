//! The agent process: configuration, data directory, store, HTTP server, background work and
//! signals. `run` returns when the agent has shut down cleanly.

use crate::config::Config;
use crate::http::{self, AgentContext};
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long KV tombstones are kept (Consul's `tombstone_ttl` default).
const TOMBSTONE_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Io(String),
}

/// A running agent: its context and where it serves HTTP.
pub struct Agent {
    pub ctx: http::Ctx,
    pub http_addr: Option<std::net::SocketAddr>,
    server: Option<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Keeps a `-dev` throwaway data dir alive until shutdown.
    _dev_dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// Opens the store and starts serving.
    pub async fn start(config: Config) -> Result<Agent, AgentError> {
        let (data_dir, dev_dir) = match &config.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("legate-dev-")
                    .tempdir()
                    .map_err(|e| AgentError::Io(format!("cannot create a -dev data dir: {e}")))?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let store = Store::open(&data_dir)?;
        let node_id = node_id(&data_dir, config.node_id.as_deref())?;
        let ctx = Arc::new(AgentContext {
            store,
            config,
            node_id,
            shutdown: tokio::sync::Notify::new(),
        });
        let (http_addr, server) = match ctx.config.http_socket() {
            Some(addr) => {
                let stop = ctx.clone();
                let (bound, handle) =
                    http::serve(
                        ctx.clone(),
                        addr,
                        async move { stop.shutdown.notified().await },
                    )
                    .await
                    .map_err(|e| {
                        AgentError::Io(format!("cannot listen on {addr} (HTTP API): {e}"))
                    })?;
                (Some(bound), Some(handle))
            }
            None => (None, None),
        };
        let background = vec![tokio::spawn(reap_tombstones(ctx.store.clone()))];
        Ok(Agent {
            ctx,
            http_addr,
            server,
            background,
            _dev_dir: dev_dir,
        })
    }

    /// Stops serving and closes the store once every queued write is durable.
    pub async fn stop(mut self) {
        self.ctx.shutdown.notify_waiters();
        if let Some(mut server) = self.server.take() {
            // Graceful: in-flight requests finish; idle keep-alive connections don't hold us up.
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        let store = self.ctx.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
}

/// Runs the agent until SIGINT, SIGTERM or `/v1/agent/leave`.
pub async fn run(config: Config) -> Result<(), AgentError> {
    let pid_file = config.pid_file.clone();
    let agent = Agent::start(config).await?;
    if let Some(pid_file) = &pid_file {
        std::fs::write(pid_file, std::process::id().to_string()).map_err(|e| {
            AgentError::Io(format!("cannot write pid file {}: {e}", pid_file.display()))
        })?;
    }
    let c = &agent.ctx.config;
    tracing::info!(
        version = crate::config::CONSUL_VERSION,
        node = %c.node_name,
        node_id = %agent.ctx.node_id,
        datacenter = %c.datacenter,
        server = c.server,
        data_dir = %agent.ctx.store.path().display(),
        http = ?agent.http_addr,
        "Legate agent running"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| AgentError::Io(e.to_string()))?;
    let leave = agent.ctx.clone();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("caught interrupt, shutting down"),
        _ = term.recv() => tracing::info!("caught terminate, shutting down"),
        _ = leave.shutdown.notified() => tracing::info!("leave requested, shutting down"),
    }
    agent.stop().await;
    if let Some(pid_file) = pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// The node ID: the configured one, else the one saved in the data dir, else a new UUID saved
/// there, so the node keeps its identity across restarts.
fn node_id(data_dir: &Path, configured: Option<&str>) -> Result<String, AgentError> {
    let file: PathBuf = data_dir.join("node-id");
    let id = match configured {
        Some(id) => {
            uuid::Uuid::parse_str(id)
                .map_err(|_| AgentError::Io(format!("node_id {id:?} is not a valid UUID")))?;
            id.to_lowercase()
        }
        None => match std::fs::read_to_string(&file) {
            Ok(saved) if !saved.trim().is_empty() => return Ok(saved.trim().to_string()),
            _ => uuid::Uuid::new_v4().to_string(),
        },
    };
    std::fs::write(&file, &id)
        .map_err(|e| AgentError::Io(format!("cannot write {}: {e}", file.display())))?;
    Ok(id)
}

/// Removes KV tombstones older than the TTL, once a minute.
async fn reap_tombstones(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let ttl = TOMBSTONE_TTL.as_secs();
        match store
            .write(move |tx| crate::store::kv::reap_tombstones(tx, ttl))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(reaped = n, "reaped KV tombstones"),
            Err(crate::store::StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "tombstone reap failed"),
        }
    }
}
