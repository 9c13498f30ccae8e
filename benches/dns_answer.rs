//! What a DNS answer costs the agent, in process and without sockets: one agent holding 1,000
//! services of 3 instances each answers a mix of A and SRV questions through
//! `dns::Responder::respond`, timed per pass over the question set. The first pass reads
//! every answer from the store; the passes after are answered from the cache (each still
//! decoded, shuffled, built and encoded). `benches/run-dnsperf.sh` measures the same over
//! UDP with dnsperf.
//!
//! `cargo bench --bench dns_answer`. Knobs: `--services N` (default 1000), `--instances K`
//! (default 3), `--passes P` (default 5), `--srv-share S` (percent of SRV questions, default
//! 50).

#[path = "common/in_process.rs"]
mod in_process;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use in_process::{catalog_register, knob, start_agent};
use legate::dns::{Responder, Transport};
use std::time::{Duration, Instant};

/// Registers `services` services with `instances` instances each, one node per 250 services
/// and instance round, as `benches/run-dnsperf.sh` does.
async fn register(base: &str, services: usize, instances: usize) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    for i in 0..instances {
        for s in 0..services {
            let body = serde_json::json!({
                "Node": format!("node-{i}-{}", s / 250),
                "Address": format!("10.{i}.{}.1", s / 250),
                "Service": {"ID": format!("svc-{s}"), "Service": format!("svc-{s}"),
                            "Address": format!("10.{i}.{}.{}", s / 250, 2 + s % 250),
                            "Port": 8000 + s},
            });
            catalog_register(&http, base, body).await;
        }
    }
}

/// Every service asked once, `srv_share` percent of them (spread evenly) as SRV.
fn questions(services: usize, srv_share: usize) -> Vec<Vec<u8>> {
    (0..services)
        .map(|s| {
            let (name, qtype) = if s * srv_share % 100 < srv_share {
                (format!("_svc-{s}._tcp.service.consul."), RecordType::SRV)
            } else {
                (format!("svc-{s}.service.consul."), RecordType::A)
            };
            let mut message = Message::new();
            message
                .set_id(s as u16)
                .set_message_type(MessageType::Query)
                .set_recursion_desired(true)
                .add_query(Query::query(
                    Name::from_ascii(&name).expect("question name"),
                    qtype,
                ));
            message.to_vec().expect("question encoded")
        })
        .collect()
}

/// Answers every question once; the time taken. The replies are checked afterwards, untimed.
async fn pass(responder: &Responder, questions: &[Vec<u8>], instances: usize) -> Duration {
    let mut replies = Vec::with_capacity(questions.len());
    let start = Instant::now();
    for question in questions {
        replies.push(responder.respond(question, Transport::Udp).await);
    }
    let took = start.elapsed();
    for reply in replies {
        let reply = Message::from_vec(&reply.expect("a reply")).expect("reply decodes");
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.answers().len(), instances);
    }
    took
}

#[tokio::main]
async fn main() {
    let services = knob("--services", 1000) as usize;
    let instances = knob("--instances", 3) as usize;
    let passes = knob("--passes", 5);
    let srv_share = knob("--srv-share", 50) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = start_agent(dir.path(), serde_json::json!({"ports": {"dns": -1}})).await;
    let base = format!("http://{}", agent.http_addr.expect("http address"));
    register(&base, services, instances).await;
    let questions = questions(services, srv_share);
    let responder = Responder::new(agent.ctx.clone());
    println!("{services} services x {instances} instances, {srv_share}% SRV");
    println!("| pass | questions | µs per answer |");
    println!("|---|---|---|");
    for n in 0..=passes {
        let took = pass(&responder, &questions, instances).await;
        let label = if n == 0 {
            "first (read from the store)".to_string()
        } else {
            format!("{n} (cached)")
        };
        println!(
            "| {label} | {} | {:.2} |",
            questions.len(),
            took.as_secs_f64() * 1e6 / questions.len() as f64
        );
    }
    agent.stop().await;
}
