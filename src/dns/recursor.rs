//! Forwarding names outside the served domains to the `recursors`, as Consul's recursor: in
//! order (or a random order with `recursor_strategy = "random"`), each given
//! `recursor_timeout`, over the transport the question came on; the first reply that is
//! NOERROR or NXDOMAIN is passed back as it is.

use super::Transport;
use crate::config::{DnsConfig, RecursorStrategy};
use hickory_proto::op::{Message, ResponseCode};
use rand::seq::SliceRandom;
use std::net::SocketAddr;
use tokio::net::{TcpStream, UdpSocket};

/// The first usable reply of a recursor, or `None` when none gave one (SERVFAIL follows).
pub async fn forward(config: &DnsConfig, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let mut order: Vec<SocketAddr> = config.recursors.clone();
    if config.recursor_strategy == RecursorStrategy::Random {
        order.shuffle(&mut rand::rng());
    }
    for recursor in order {
        let exchange = exchange(recursor, packet, transport);
        let reply = match tokio::time::timeout(config.recursor_timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(%recursor, error = %e, "DNS recursor failed");
                continue;
            }
            Err(_) => {
                tracing::debug!(%recursor, "DNS recursor timed out");
                continue;
            }
        };
        match Message::from_vec(&reply).map(|m| m.response_code()) {
            Ok(ResponseCode::NoError | ResponseCode::NXDomain) => return Some(reply),
            _ => continue,
        }
    }
    None
}

async fn exchange(
    recursor: SocketAddr,
    packet: &[u8],
    transport: Transport,
) -> std::io::Result<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let local: SocketAddr = if recursor.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(recursor).await?;
            socket.send(packet).await?;
            let mut buffer = vec![0u8; 65535];
            // A stray datagram with another ID is not the reply: wait for ours.
            loop {
                let len = socket.recv(&mut buffer).await?;
                if len >= 2 && buffer[..2] == packet[..2] {
                    return Ok(buffer[..len].to_vec());
                }
            }
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect(recursor).await?;
            super::write_framed(&mut stream, packet).await?;
            super::read_framed(&mut stream).await
        }
    }
}
