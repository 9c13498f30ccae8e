//! Watches, as Consul's `api/watch`: a plan follows one view of the agent's data through
//! blocking queries and hands every change to a handler. `legate watch` and the agent
//! config's `watches` share the plan; they differ only in their handlers.

pub mod handler;
pub mod plan;
pub mod spec;

pub use plan::{Next, OnChange, Plan};
pub use spec::{AgentWatch, WatchSpec};

/// Starts the agent config's watches against the agent's own HTTP API at `addr`; each runs
/// until its task is aborted.
pub fn spawn_agent_watches(
    watches: &[AgentWatch],
    addr: std::net::SocketAddr,
) -> Vec<tokio::task::JoinHandle<()>> {
    // A wildcard listen address is reached over loopback.
    let addr = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        ip if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    watches
        .iter()
        .cloned()
        .map(|watch| {
            let plan = Plan::new(watch.spec, &addr.to_string());
            let mut handler = handler::AgentHandler::new(watch.handler);
            tokio::spawn(async move { plan.run(&mut handler).await })
        })
        .collect()
}
