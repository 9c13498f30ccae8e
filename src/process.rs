//! The agent process: the agent (`agent::open`) served over HTTP, its background work and
//! signals. `run` returns when the agent has shut down cleanly.

use crate::agent::{self, AgentError, Ctx};
use crate::config::Config;
use crate::dns;
use crate::http;
use std::time::Duration;

/// A running agent: its context and where it serves HTTP.
pub struct Agent {
    pub ctx: Ctx,
    pub http_addr: Option<std::net::SocketAddr>,
    /// Where the DNS interface answers (UDP and TCP), unless `ports.dns` is -1.
    pub dns_addr: Option<std::net::SocketAddr>,
    server: Option<tokio::task::JoinHandle<()>>,
    dns: Option<dns::DnsServer>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Keeps a `-dev` throwaway data dir alive until shutdown.
    _dev_dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// Opens the store and starts serving.
    pub async fn start(config: Config) -> Result<Agent, AgentError> {
        Self::start_with(config, &crate::store::file_database()).await
    }

    /// `start`, with the store's database file opened through `opener`.
    pub async fn start_with(
        config: Config,
        opener: &crate::store::DatabaseOpener,
    ) -> Result<Agent, AgentError> {
        let (ctx, dev_dir) = agent::open(config, opener).await?;
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
        let dns = match ctx.config.dns_socket() {
            Some(addr) => Some(dns::serve(ctx.clone(), addr).await.map_err(|e| {
                AgentError::Io(format!("cannot listen on {addr} (DNS interface): {e}"))
            })?),
            None => None,
        };
        let background = agent::spawn_background(&ctx);
        // Watches use the agent's own HTTP API (the config refuses them without one).
        if let Some(addr) = http_addr {
            ctx.ops.start_watches(&ctx.config.watches, addr);
        }
        Ok(Agent {
            ctx,
            http_addr,
            dns_addr: dns.as_ref().map(|d| d.addr),
            server,
            dns,
            background,
            _dev_dir: dev_dir,
        })
    }

    /// Stops serving and closes the store once every queued write is durable.
    pub async fn stop(mut self) {
        self.ctx.shutdown.notify_waiters();
        // Dropping the DNS server stops it.
        self.dns = None;
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
        self.ctx.ops.stop_watches();
        agent::close(&self.ctx).await;
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
        dns = ?agent.dns_addr,
        "Legate agent running"
    );
    let signal =
        |kind| tokio::signal::unix::signal(kind).map_err(|e| AgentError::Io(e.to_string()));
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let leave = agent.ctx.clone();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("caught interrupt, shutting down"),
            _ = term.recv() => tracing::info!("caught terminate, shutting down"),
            _ = leave.shutdown.notified() => tracing::info!("leave requested, shutting down"),
            // As Consul, a hangup reloads the configuration and the agent runs on.
            _ = hangup.recv() => {
                tracing::info!("caught hangup, reloading the configuration");
                if let Err(e) = agent::ops::reload(&agent.ctx).await {
                    tracing::error!(error = %e, "reload failed");
                }
                continue;
            }
        }
        break;
    }
    agent.stop().await;
    if let Some(pid_file) = pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    tracing::info!("shutdown complete");
    Ok(())
}
