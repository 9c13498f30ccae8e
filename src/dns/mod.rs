//! The DNS interface (Consul's `agent/dns`): names in `domain` and `alt_domain` answered from
//! the store over UDP and TCP, names elsewhere forwarded to the `recursors`.
//!
//! Messages are read and written by hickory-proto; `name` routes a question, `answer` builds
//! the records from one read transaction or from what `cache` kept of one (no writes; a
//! catalog change is visible to the next question), and this module trims the reply to what
//! the transport carries, as Consul's `trimDNSResponse`, and serves the sockets.

pub mod answer;
mod cache;
pub mod name;
mod recursor;

use crate::agent::Ctx;
use crate::config::DnsConfig;
use answer::{Miss, Sections};
use hickory_proto::op::message::emit_message_parts;
use hickory_proto::op::{Edns, Header, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use name::Route;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How a question arrived, which bounds the size of its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A reply without EDNS fits in 512 bytes (RFC 1035).
const DEFAULT_UDP_SIZE: usize = 512;
/// The largest UDP payload honored, whatever EDNS asks (Consul's `maxUDPDatagramSize`).
const MAX_UDP_SIZE: usize = 65535 - 68;
/// At most this many answers in a 512-byte reply, whatever `udp_answer_limit` says.
const MAX_UDP_ANSWER_LIMIT: usize = 8;
/// A TCP reply's limit: 64 KiB less the message overhead, as Consul's.
const MAX_TCP_SIZE: usize = 65523;

/// What answers DNS messages for an agent: its store, read through the answers cached.
pub struct Responder {
    ctx: Ctx,
    services: answer::ServiceCache,
}

impl Responder {
    pub fn new(ctx: Ctx) -> Responder {
        Responder {
            ctx,
            services: answer::ServiceCache::default(),
        }
    }

    /// Answers one DNS message; `None` when it is not a query worth a reply.
    pub async fn respond(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        respond(&self.ctx, &self.services, packet, transport).await
    }
}

async fn respond(
    ctx: &Ctx,
    cache: &answer::ServiceCache,
    packet: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let settings = ctx.dns_settings();
    let config = &*settings.config;
    let Some(query) = request.queries().first() else {
        // Like miekg/dns, a message without a question is refused.
        return Some(encode(&refused(&request), config));
    };
    let qname = name::canonical(&query.name().to_ascii());
    let route = name::route(&qname, config);
    let Route::Inside { domain, lookup } = route else {
        if config.recursors.is_empty() {
            return Some(encode(&refused(&request), config));
        }
        return Some(match recursor::forward(config, packet, transport).await {
            Some(reply) => reply,
            None => encode(&server_failure(&request, config), config),
        });
    };
    let owner = Name::from_ascii(&qname).unwrap_or_else(|_| query.name().clone());
    let mut response = reply(&request, &owner, query.query_type(), config);
    response.set_authoritative(true);
    let question = answer::Question {
        qname: &qname,
        owner: &owner,
        qtype: query.query_type(),
        domain: &domain,
        lookup: &lookup,
        settings: &settings,
    };
    match answer::answer(ctx, cache, &question) {
        Ok(found) => {
            let sections = found.sections(config);
            return Some(encode_fitting(
                &response, sections, &request, transport, config,
            ));
        }
        Err(miss @ (Miss::NameError | Miss::NoData)) => {
            if matches!(miss, Miss::NameError) {
                response.set_response_code(ResponseCode::NXDomain);
            }
            response.add_name_server(answer::soa(config, &domain));
        }
        Err(Miss::Failure(reason)) => {
            tracing::error!(name = %qname, %reason, "DNS lookup failed");
            return Some(encode(&server_failure(&request, config), config));
        }
    }
    Some(encode(&response, config))
}

/// The reply skeleton: the request's ID, opcode, RD and CD bits and question (its name in
/// lower case, as Consul answers), EDNS echoed when asked, RA when recursors are set.
fn reply(request: &Message, owner: &Name, qtype: RecordType, config: &DnsConfig) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_checking_disabled(request.checking_disabled())
        .set_recursion_available(!config.recursors.is_empty());
    if let Some(first) = request.queries().first() {
        let mut query = Query::query(owner.clone(), qtype);
        query.set_query_class(first.query_class());
        response.add_query(query);
    }
    if let Some(edns) = request.extensions().as_ref() {
        let mut echoed = Edns::new();
        echoed.set_max_payload(edns.max_payload().max(DEFAULT_UDP_SIZE as u16));
        response.set_edns(echoed);
    }
    response
}

/// REFUSED: a name outside the served domains with no recursor to ask (miekg/dns's answer
/// for an unmatched zone, which Consul keeps).
fn refused(request: &Message) -> Message {
    let mut response = Message::error_msg(request.id(), request.op_code(), ResponseCode::Refused);
    response.set_recursion_desired(request.recursion_desired());
    response.add_queries(request.queries().iter().cloned());
    response
}

fn server_failure(request: &Message, config: &DnsConfig) -> Message {
    let mut response = Message::error_msg(request.id(), request.op_code(), ResponseCode::ServFail);
    response
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(!config.recursors.is_empty());
    response.add_queries(request.queries().iter().cloned());
    response
}

/// The wire form; names are compressed unless `disable_compression`.
fn encode(message: &Message, config: &DnsConfig) -> Vec<u8> {
    let sections = Sections {
        answers: message.answers().iter().collect(),
        authority: message.name_servers().iter().collect(),
        additionals: message.additionals().iter().collect(),
    };
    encode_parts(message.header(), message, &sections, config)
}

/// The wire form of `skeleton`'s question and EDNS under `header`, with `sections` (records
/// kept elsewhere, written without being copied into a message).
fn encode_parts(
    header: &Header,
    skeleton: &Message,
    sections: &Sections<&Record>,
    config: &DnsConfig,
) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buffer);
    // Canonical names are written whole: hickory's way of not compressing them.
    encoder.set_canonical_names(config.disable_compression);
    let emitted = emit_message_parts(
        header,
        &mut skeleton.queries().iter(),
        &mut sections.answers.iter().copied(),
        &mut sections.authority.iter().copied(),
        &mut sections.additionals.iter().copied(),
        skeleton.extensions().as_ref(),
        &[],
        &mut encoder,
    );
    if emitted.is_err() {
        // Only a record hickory cannot write gets here; say so instead of a cut message.
        return encode(
            &Message::error_msg(header.id(), header.op_code(), ResponseCode::ServFail),
            config,
        );
    }
    buffer
}

/// The reply's wire form, `response` with `sections`, its answers cut to what the transport
/// carries (Consul's trimUDPResponse and trimTCPResponse): over UDP at most
/// `udp_answer_limit` (and 8) answers in a 512-byte reply, and never more bytes than 512, the
/// EDNS size or 64 KiB allow; the extras follow the SRV answers kept, and `enable_truncate`
/// sets the TC bit on a cut reply.
fn encode_fitting(
    response: &Message,
    mut sections: Sections<&Record>,
    request: &Message,
    transport: Transport,
    config: &DnsConfig,
) -> Vec<u8> {
    let (max_size, answer_limit) = match transport {
        Transport::Udp => {
            let size = request
                .extensions()
                .as_ref()
                .map_or(DEFAULT_UDP_SIZE, |e| {
                    (e.max_payload() as usize).max(DEFAULT_UDP_SIZE)
                })
                .min(MAX_UDP_SIZE);
            let limit = (size == DEFAULT_UDP_SIZE)
                .then(|| config.udp_answer_limit.min(MAX_UDP_ANSWER_LIMIT));
            // Room for the UDP header, as Consul leaves.
            (size - 8, limit)
        }
        Transport::Tcp => (MAX_TCP_SIZE, None),
    };
    let mut header = *response.header();
    let count = sections.answers.len();
    let over_limit = answer_limit.is_some_and(|limit| count > limit);
    if !over_limit {
        let encoded = encode_parts(&header, response, &sections, config);
        if encoded.len() <= max_size || count <= 1 {
            return encoded;
        }
    }
    // Something must go: pick from the full sections.
    let all_answers = std::mem::take(&mut sections.answers);
    let extras = std::mem::take(&mut sections.additionals);
    header.set_truncated(config.enable_truncate);
    let mut kept = count;
    if let Some(limit) = answer_limit.filter(|_| over_limit) {
        kept = limit;
        keep_answers(&mut sections, &all_answers, kept, &extras);
        let encoded = encode_parts(&header, response, &sections, config);
        if encoded.len() <= max_size || kept <= 1 {
            return encoded;
        }
    }
    sections.authority.clear();
    // The most answers that fit: a binary search over the answer count.
    let (mut fits, mut too_many) = (1, kept);
    while too_many - fits > 1 {
        let mid = (fits + too_many) / 2;
        keep_answers(&mut sections, &all_answers, mid, &extras);
        if encode_parts(&header, response, &sections, config).len() <= max_size {
            fits = mid;
        } else {
            too_many = mid;
        }
    }
    keep_answers(&mut sections, &all_answers, fits, &extras);
    encode_parts(&header, response, &sections, config)
}

/// Keeps the first `count` answers and the extras that back the SRV targets among them.
fn keep_answers<'a>(
    sections: &mut Sections<&'a Record>,
    answers: &[&'a Record],
    count: usize,
    extras: &[&'a Record],
) {
    let kept = &answers[..count];
    let targets: std::collections::HashSet<Name> = kept
        .iter()
        .filter_map(|a| match a.data() {
            hickory_proto::rr::RData::SRV(srv) => Some(srv.target().to_lowercase()),
            _ => None,
        })
        .collect();
    sections.answers = kept.to_vec();
    sections.additionals = extras
        .iter()
        .filter(|e| targets.contains(&e.name().to_lowercase()))
        .copied()
        .collect();
}

/// A running DNS interface: where it listens, its UDP threads and its TCP task. Dropping it
/// stops them.
pub struct DnsServer {
    pub addr: SocketAddr,
    udp: Arc<std::net::UdpSocket>,
    stopping: Arc<AtomicBool>,
    tcp: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.tcp.abort();
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the threads blocked in a receive: on a socket shut for reading it returns at
        // once (Linux reports ENOTCONN for an unconnected socket, yet shuts it).
        // SAFETY: shutdown(2) on a descriptor this server owns; no memory is passed.
        unsafe { libc::shutdown(self.udp.as_raw_fd(), libc::SHUT_RD) };
    }
}

/// How many threads read the UDP socket at once: one per core, at least two so a question
/// forwarded to a slow recursor does not hold up the others.
fn udp_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Serves DNS on `addr`, UDP and TCP on the same port (with port 0, the one the UDP socket
/// got). UDP questions are read by threads blocked on the socket, each answering inline: a
/// packet wakes one thread, with no poller or task hand-off in between.
pub async fn serve(ctx: Ctx, addr: SocketAddr) -> std::io::Result<DnsServer> {
    let (udp, tcp) = bind(addr).await?;
    let bound = udp.local_addr()?;
    let udp = Arc::new(udp.into_std()?);
    udp.set_nonblocking(false)?;
    let responder = Arc::new(Responder::new(ctx));
    let stopping = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    for n in 0..udp_workers() {
        let (responder, udp, runtime, stopping) = (
            responder.clone(),
            udp.clone(),
            runtime.clone(),
            stopping.clone(),
        );
        std::thread::Builder::new()
            .name(format!("dns-udp-{n}"))
            .spawn(move || serve_udp(&responder, &udp, &runtime, &stopping))?;
    }
    Ok(DnsServer {
        addr: bound,
        udp,
        stopping,
        tcp: tokio::spawn(serve_tcp(responder, tcp)),
    })
}

async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    // With port 0 the TCP port must follow the UDP one, which another program may hold.
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// One UDP thread: receives, answers (on the runtime, for the recursors' sockets and timers)
/// and replies, until the server stops.
fn serve_udp(
    responder: &Responder,
    socket: &std::net::UdpSocket,
    runtime: &tokio::runtime::Handle,
    stopping: &AtomicBool,
) {
    let mut buffer = vec![0u8; 65535];
    while !stopping.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buffer) {
            Ok(got) => got,
            Err(e) => {
                // A previous reply's ICMP error surfaces here on some systems; keep serving.
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let reply = runtime.block_on(responder.respond(&buffer[..len], Transport::Udp));
        if let Some(reply) = reply {
            if let Err(e) = socket.send_to(&reply, peer) {
                tracing::debug!(error = %e, %peer, "DNS UDP reply not sent");
            }
        }
    }
}

async fn serve_tcp(responder: Arc<Responder>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(responder.clone(), stream));
    }
}

/// Serves the questions of one TCP connection until the client closes it or stays idle for
/// 10 seconds.
async fn serve_connection(responder: Arc<Responder>, mut stream: TcpStream) {
    let idle = std::time::Duration::from_secs(10);
    while let Ok(Ok(packet)) = tokio::time::timeout(idle, read_framed(&mut stream)).await {
        let Some(reply) = responder.respond(&packet, Transport::Tcp).await else {
            return;
        };
        if write_framed(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

/// Reads one message off a TCP stream, where each is preceded by its two-byte length
/// (RFC 1035 4.2.2).
async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let mut message = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}
