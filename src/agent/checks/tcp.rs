//! TCP checks: passing when a connection to the address can be opened within the timeout.
//! Failure texts follow Go's dialer (`dial tcp 127.0.0.1:1: connect: connection refused`).

use super::{error_text, CheckStatus};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Splits `host:port` (`[v6]:port` too) the way Go's `net.SplitHostPort` accepts it.
pub(crate) fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("address {addr}: missing port in address"));
    };
    let host = if let Some(inner) = host.strip_prefix('[') {
        match inner.strip_suffix(']') {
            Some(inner) => inner,
            None => return Err(format!("address {addr}: missing ']' in address")),
        }
    } else if host.contains(':') {
        return Err(format!("address {addr}: too many colons in address"));
    } else {
        host
    };
    Ok((host, port))
}

/// Resolves `host:port` to socket addresses; errors are worded like Go's dialer.
pub(crate) async fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = split_host_port(addr).map_err(|e| format!("dial tcp: {e}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("dial tcp: lookup tcp/{port}: unknown port"))?;
    let host = if host.is_empty() { "localhost" } else { host };
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("dial tcp: lookup {host}: no such host"))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(format!(
            "dial tcp: lookup {host}: {}",
            lookup_error_text(&e)
        )),
    }
}

fn lookup_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    if text.contains("failed to lookup address") {
        "no such host".to_string()
    } else {
        error_text(e)
    }
}

/// Go's text for a failed connect to `addr`.
pub(crate) fn dial_error(addr: SocketAddr, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::TimedOut {
        format!("dial tcp {addr}: i/o timeout")
    } else {
        format!("dial tcp {addr}: connect: {}", error_text(e))
    }
}

/// Opens (and closes) one connection to `addr`.
pub(crate) async fn connect(addr: &str, timeout: Duration) -> Result<(), String> {
    let mut current: Option<SocketAddr> = None;
    let attempt = async {
        let targets = resolve(addr).await?;
        let mut last_err = String::new();
        for target in targets {
            current = Some(target);
            match TcpStream::connect(target).await {
                Ok(stream) => {
                    drop(stream);
                    return Ok(());
                }
                Err(e) => last_err = dial_error(target, &e),
            }
        }
        Err(last_err)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(match current {
            Some(target) => format!("dial tcp {target}: i/o timeout"),
            None => format!("dial tcp {addr}: i/o timeout"),
        }),
    }
}

/// Runs one TCP check.
pub(crate) async fn run(addr: &str, timeout: Duration) -> (CheckStatus, String) {
    match connect(addr, timeout).await {
        Ok(()) => (CheckStatus::Passing, format!("TCP connect {addr}: Success")),
        Err(e) => (CheckStatus::Critical, e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::closed_port;
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn open_port_is_passing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (status, output) = run(&addr, Duration::from_secs(2)).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, format!("TCP connect {addr}: Success"));
    }

    #[tokio::test]
    async fn closed_port_is_critical_with_go_text() {
        let port = closed_port().await;
        let addr = format!("127.0.0.1:{port}");
        let (status, output) = run(&addr, Duration::from_secs(2)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn bad_addresses_are_critical() {
        let (status, output) = run("127.0.0.1", Duration::from_secs(1)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            "dial tcp: address 127.0.0.1: missing port in address"
        );
        let (status, output) = run("127.0.0.1:http", Duration::from_secs(1)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, "dial tcp: lookup tcp/http: unknown port");
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(split_host_port("a:1").unwrap(), ("a", "1"));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", "80"));
        assert!(split_host_port("::1:80").is_err());
        assert!(split_host_port("[::1:80").is_err());
    }
}
