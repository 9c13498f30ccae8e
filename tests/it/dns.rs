//! The DNS interface, asked by hickory's resolver (as an application would) and by raw
//! hickory-proto messages where a test needs the header bits or a reply's sections.

use crate::common::TestAgent;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::Resolver;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An agent answering DNS on an ephemeral port, configured by `hcl`.
async fn agent(hcl: &[&str]) -> TestAgent {
    let hcl: Vec<String> = hcl.iter().map(|h| h.to_string()).collect();
    TestAgent::start_with(|f| {
        f.dns_port = Some(0);
        f.hcl = hcl;
    })
    .await
}

async fn register(a: &TestAgent, body: Value) {
    assert_eq!(
        a.put_ok("/v1/catalog/register", body.to_string()).await,
        "true"
    );
}

/// A Connect proxy of `api` on node `n1` (10.0.0.1), port 21000.
async fn register_api_sidecar(a: &TestAgent) {
    register(
        a,
        json!({"Node": "n1", "Address": "10.0.0.1",
               "Service": {"Kind": "connect-proxy", "Service": "api-sidecar-proxy", "Port": 21000,
                           "Proxy": {"DestinationServiceName": "api"}}}),
    )
    .await;
}

/// A resolver that asks only `addr`, over `protocol`, caching nothing.
fn resolver(addr: SocketAddr, protocol: Protocol) -> Resolver<TokioConnectionProvider> {
    resolver_over(addr, &[protocol])
}

/// A resolver that asks `addr` over each of `protocols` (UDP first, then TCP when a reply is
/// truncated, as a system resolver does).
fn resolver_over(addr: SocketAddr, protocols: &[Protocol]) -> Resolver<TokioConnectionProvider> {
    let mut config = ResolverConfig::new();
    for protocol in protocols {
        config.add_name_server(NameServerConfig::new(addr, *protocol));
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.attempts = 1;
    opts.timeout = std::time::Duration::from_secs(3);
    Resolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(opts)
        .build()
}

/// The answers' data, as text, for `name`/`qtype` through the resolver.
async fn lookup(
    r: &Resolver<TokioConnectionProvider>,
    name: &str,
    qtype: RecordType,
) -> BTreeSet<String> {
    let found = r
        .lookup(name, qtype)
        .await
        .unwrap_or_else(|e| panic!("{name} {qtype}: {e}"));
    found
        .records()
        .iter()
        .filter(|rec| rec.record_type() == qtype)
        .map(|rec| rec.data().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asks one question with a raw message (`edns`: the UDP size to advertise, if any) and
/// returns the whole reply.
async fn ask(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    protocol: Protocol,
    edns: Option<u16>,
) -> Message {
    let mut request = Message::new();
    request
        .set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        request.set_edns(e);
    }
    let bytes = request.to_vec().unwrap();
    let reply = match protocol {
        Protocol::Udp => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket.send_to(&bytes, addr).await.unwrap();
            let mut buffer = vec![0u8; 65535];
            let len =
                tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buffer))
                    .await
                    .expect("a UDP reply within 5s")
                    .unwrap();
            buffer.truncate(len);
            buffer
        }
        _ => {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(&(bytes.len() as u16).to_be_bytes())
                .await
                .unwrap();
            stream.write_all(&bytes).await.unwrap();
            let len = stream.read_u16().await.unwrap();
            let mut buffer = vec![0u8; len as usize];
            stream.read_exact(&mut buffer).await.unwrap();
            buffer
        }
    };
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.id(), request.id());
    reply
}

/// `ask` over UDP without EDNS, as most of these questions go.
async fn ask_udp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    ask(addr, name, qtype, Protocol::Udp, None).await
}

async fn ask_tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    ask(addr, name, qtype, Protocol::Tcp, None).await
}

fn texts(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.name(), r.record_type(), r.data()))
        .collect()
}

/// Two nodes running `web` (one with its own address), node meta, and `db` on the first.
async fn catalog(a: &TestAgent) {
    register(
        a,
        json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
               "Service": {"Service": "web", "Port": 8080, "Tags": ["v1"]}}),
    )
    .await;
    register(
        a,
        json!({"Node": "n2", "Address": "10.0.0.2",
               "Service": {"Service": "web", "Address": "10.0.1.2", "Port": 9090, "Tags": ["v2"]}}),
    )
    .await;
    register(
        a,
        json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
               "Service": {"ID": "db1", "Service": "db", "Address": "10.0.0.1", "Port": 5432}}),
    )
    .await;
    register(a, json!({"Node": "v6", "Address": "2001:db8::5"})).await;
}

#[tokio::test]
async fn dns_every_name_form_over_udp_and_tcp() {
    let a = agent(&["alt_domain = \"alt.test\""]).await;
    catalog(&a).await;
    let addr = a.dns_addr();
    let both: &[&str] = &["10.0.0.1", "10.0.1.2"];
    let v6_ptr = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let expectations: &[(&str, RecordType, &[&str])] = &[
        ("web.service.consul.", RecordType::A, both),
        ("WEB.service.dc1.consul.", RecordType::A, both),
        ("web.service.dc1.dc.consul.", RecordType::A, both),
        ("web.service.alt.test.", RecordType::A, both),
        ("v1.web.service.consul.", RecordType::A, &["10.0.0.1"]),
        (
            "_web._tcp.service.consul.",
            RecordType::SRV,
            &[
                "1 1 8080 n1.node.dc1.consul.",
                "1 1 9090 0a000102.addr.dc1.consul.",
            ],
        ),
        (
            "_web._v2.service.dc1.consul.",
            RecordType::SRV,
            &["1 1 9090 0a000102.addr.dc1.consul."],
        ),
        // A service at its node's address is named after the service, as Consul's.
        (
            "db.service.consul.",
            RecordType::SRV,
            &["1 1 5432 db.service.dc1.consul."],
        ),
        ("n1.node.consul.", RecordType::A, &["10.0.0.1"]),
        ("n1.node.dc1.consul.", RecordType::TXT, &["rack=r1"]),
        ("v6.node.consul.", RecordType::AAAA, &["2001:db8::5"]),
        ("0a000001.addr.dc1.consul.", RecordType::A, &["10.0.0.1"]),
        (
            "20010db8000000000000000000000001.addr.consul.",
            RecordType::AAAA,
            &["2001:db8::1"],
        ),
        (
            "1.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            &["n1.node.dc1.consul."],
        ),
        (
            "2.1.0.10.in-addr.arpa.",
            RecordType::PTR,
            &["web.service.dc1.consul."],
        ),
        (v6_ptr, RecordType::PTR, &["v6.node.dc1.consul."]),
    ];
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let r = resolver(addr, protocol);
        for (name, qtype, expected) in expectations {
            assert_eq!(
                lookup(&r, name, *qtype).await,
                set(expected),
                "{name} {qtype} {protocol:?}"
            );
        }
    }

    // SRV extras: the targets' addresses and the nodes' meta (enable_additional_node_meta_txt
    // is on by default).
    let reply = ask_udp(addr, "web.service.consul.", RecordType::SRV).await;
    assert!(reply.authoritative());
    assert_eq!(
        texts(reply.additionals()),
        set(&[
            "n1.node.dc1.consul. A 10.0.0.1",
            "n1.node.dc1.consul. TXT rack=r1",
            "0a000102.addr.dc1.consul. A 10.0.1.2",
        ])
    );
    // ANY on a node: its address and meta.
    let reply = ask_tcp(addr, "n1.node.consul.", RecordType::ANY).await;
    assert_eq!(
        texts(reply.answers()),
        set(&["n1.node.consul. A 10.0.0.1", "n1.node.consul. TXT rack=r1"])
    );

    // The catalog as the next question sees it.
    assert_eq!(
        a.put_ok(
            "/v1/catalog/deregister",
            json!({"Node": "n2", "ServiceID": "web"}).to_string()
        )
        .await,
        "true"
    );
    let r = resolver(addr, Protocol::Udp);
    assert_eq!(
        lookup(&r, "web.service.consul.", RecordType::A).await,
        set(&["10.0.0.1"])
    );
}

#[tokio::test]
async fn dns_connect_and_ingress_names() {
    let a = agent(&[]).await;
    register(
        &a,
        json!({"Node": "n1", "Address": "10.0.0.1",
               "Service": {"Service": "api", "Port": 80}}),
    )
    .await;
    register_api_sidecar(&a).await;
    register(
        &a,
        json!({"Node": "gw", "Address": "10.0.0.9",
               "Service": {"Kind": "ingress-gateway", "Service": "edge", "Port": 8443}}),
    )
    .await;
    a.put_json(
        "/v1/config",
        json!({"Kind": "ingress-gateway", "Name": "edge",
               "Listeners": [{"Port": 8443, "Protocol": "tcp", "Services": [{"Name": "api"}]}]}),
    )
    .await;
    let r = resolver(a.dns_addr(), Protocol::Udp);
    assert_eq!(
        lookup(&r, "api.connect.consul.", RecordType::SRV).await,
        set(&["1 1 21000 n1.node.dc1.consul."])
    );
    assert_eq!(
        lookup(&r, "api.ingress.consul.", RecordType::A).await,
        set(&["10.0.0.9"])
    );
}

#[tokio::test]
async fn dns_answers_only_healthy_instances() {
    for only_passing in [false, true] {
        let a = agent(&[&format!("dns_config {{ only_passing = {only_passing} }}")]).await;
        for (node, ip, status) in [
            ("ok", "10.1.0.1", "passing"),
            ("warn", "10.1.0.2", "warning"),
            ("down", "10.1.0.3", "critical"),
        ] {
            register(
                &a,
                json!({"Node": node, "Address": ip,
                       "Service": {"Service": "app", "Port": 80},
                       "Check": {"CheckID": "c", "Name": "c", "ServiceID": "app", "Status": status}}),
            )
            .await;
        }
        let r = resolver(a.dns_addr(), Protocol::Udp);
        let expected = if only_passing {
            set(&["10.1.0.1"])
        } else {
            set(&["10.1.0.1", "10.1.0.2"])
        };
        assert_eq!(
            lookup(&r, "app.service.consul.", RecordType::A).await,
            expected
        );
        // A warning instance's SRV weight is its warning weight (1 by default).
        if !only_passing {
            assert_eq!(
                lookup(&r, "app.service.consul.", RecordType::SRV).await,
                set(&["1 1 80 ok.node.dc1.consul.", "1 1 80 warn.node.dc1.consul."])
            );
        }
    }

    // Maintenance mode is a critical check: the service's, then the node's.
    let a = agent(&[]).await;
    a.put_json(
        "/v1/agent/service/register",
        json!({"Name": "maint", "Port": 81}),
    )
    .await;
    let addr = a.dns_addr();
    wait_for(addr, "maint.service.consul.", true).await;
    for (path, answered) in [
        ("/v1/agent/service/maintenance/maint?enable=true", false),
        ("/v1/agent/service/maintenance/maint?enable=false", true),
        ("/v1/agent/maintenance?enable=true", false),
    ] {
        assert_eq!(a.put(path, "").await.status(), 200, "{path}");
        wait_for(addr, "maint.service.consul.", answered).await;
    }
}

/// Asks `name` (A, UDP) until it is answered with one record (`answered`) or is NXDOMAIN (at
/// most 10 s): the agent's own registrations reach the catalog through its sync.
async fn wait_for(addr: SocketAddr, name: &str, answered: bool) {
    let expected = if answered {
        (ResponseCode::NoError, 1)
    } else {
        (ResponseCode::NXDomain, 0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = ask_udp(addr, name, RecordType::A).await;
        let got = (reply.response_code(), reply.answers().len());
        if got == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: still {got:?} after 10s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dns_unknown_names_soa_ns_and_refused() {
    let a = TestAgent::start_with(|f| {
        f.dns_port = Some(0);
        f.server = Some(true);
        f.hcl = vec!["dns_config {\n soa {\n min_ttl = 30\n retry = 60\n }\n}".into()];
    })
    .await;
    catalog(&a).await;
    let addr = a.dns_addr();
    for name in [
        "nothing.service.consul.",
        "web.service.dc2.consul.",
        "ghost.node.consul.",
        "geo.query.consul.",
        "consul.",
        "web.nonsense.consul.",
        "1.2.3.4.in-addr.arpa.",
    ] {
        let reply = ask(addr, name, RecordType::A, Protocol::Udp, None).await;
        assert_eq!(reply.response_code(), ResponseCode::NXDomain, "{name}");
        assert!(reply.authoritative(), "{name}");
        assert!(reply.answers().is_empty(), "{name}");
        let soa = reply.name_servers();
        assert_eq!(soa.len(), 1, "{name}");
        let RData::SOA(rdata) = soa[0].data() else {
            panic!("{name}: {soa:?}")
        };
        assert_eq!(
            (soa[0].name().to_string(), soa[0].ttl()),
            ("consul.".to_string(), 30)
        );
        assert_eq!(
            (
                rdata.mname().to_string(),
                rdata.rname().to_string(),
                rdata.refresh(),
                rdata.retry(),
                rdata.expire(),
                rdata.minimum()
            ),
            (
                "ns.consul.".to_string(),
                "hostmaster.consul.".to_string(),
                3600,
                60,
                86400,
                30
            )
        );
    }
    // The resolver reads it as NXDOMAIN with the SOA.
    let err = resolver(addr, Protocol::Tcp)
        .lookup("nothing.service.consul.", RecordType::A)
        .await
        .unwrap_err();
    assert!(err.is_nx_domain(), "{err}");
    assert!(err.into_soa().is_some());

    // A name that exists without records of the type: NOERROR, SOA in the authority.
    let reply = ask_udp(addr, "web.service.consul.", RecordType::AAAA).await;
    assert_eq!(
        (
            reply.response_code(),
            reply.answers().len(),
            reply.name_servers().len()
        ),
        (ResponseCode::NoError, 0, 1)
    );

    // SOA and NS for the domain: this server's node names the name server.
    let reply = ask_udp(addr, "consul.", RecordType::SOA).await;
    assert_eq!(reply.answers()[0].record_type(), RecordType::SOA);
    assert_eq!(
        texts(reply.name_servers()),
        set(&["consul. NS test-node.node.dc1.consul."])
    );
    assert_eq!(
        texts(reply.additionals()),
        set(&["test-node.node.dc1.consul. A 127.0.0.1"])
    );
    let reply = ask_tcp(addr, "consul.", RecordType::NS).await;
    assert_eq!(
        texts(reply.answers()),
        set(&["consul. NS test-node.node.dc1.consul."])
    );

    // Outside the domain with no recursor: REFUSED, recursion not available.
    let reply = ask_udp(addr, "example.org.", RecordType::A).await;
    assert_eq!(reply.response_code(), ResponseCode::Refused);
    assert!(!reply.recursion_available());
}

#[tokio::test]
async fn dns_ttls_from_node_ttl_and_service_ttl_prefixes() {
    let a = agent(&[r#"dns_config {
             node_ttl = "10s"
             service_ttl = { "*" = "5s", "we*" = "7s", "db" = "3s" }
           }"#])
    .await;
    catalog(&a).await;
    register(
        &a,
        json!({"Node": "n3", "Address": "10.0.0.3", "Service": {"Service": "dbx", "Port": 1}}),
    )
    .await;
    let addr = a.dns_addr();
    for (name, qtype, ttl) in [
        ("web.service.consul.", RecordType::A, 7),
        ("web.service.consul.", RecordType::SRV, 7),
        ("db.service.consul.", RecordType::A, 3),
        ("dbx.service.consul.", RecordType::A, 5),
        ("n1.node.consul.", RecordType::A, 10),
        ("0a000001.addr.consul.", RecordType::A, 10),
    ] {
        let reply = ask(addr, name, qtype, Protocol::Udp, None).await;
        assert!(!reply.answers().is_empty(), "{name}");
        for record in reply.answers().iter().chain(reply.additionals()) {
            assert_eq!(record.ttl(), ttl, "{name} {record}");
        }
    }
    // Without any setting, TTLs are 0 (Consul's defaults).
    let b = agent(&[]).await;
    catalog(&b).await;
    let reply = ask_udp(b.dns_addr(), "web.service.consul.", RecordType::A).await;
    assert!(reply.answers().iter().all(|r| r.ttl() == 0));
}

/// Registers `count` instances of `big`, one per node.
async fn big_service(a: &TestAgent, count: usize) {
    for i in 0..count {
        register(
            a,
            json!({"Node": format!("big{i}"), "Address": format!("10.9.0.{}", i + 1),
                   "Service": {"Service": "big", "Port": 80}}),
        )
        .await;
    }
}

#[tokio::test]
async fn dns_truncates_udp_answers_and_tcp_carries_them_all() {
    let a = agent(&[]).await;
    big_service(&a, 40).await;
    let addr = a.dns_addr();
    // Without EDNS: udp_answer_limit (3) answers, no TC bit unless enable_truncate.
    let reply = ask_udp(addr, "big.service.consul.", RecordType::A).await;
    assert_eq!((reply.answers().len(), reply.truncated()), (3, false));
    // SRV: the extras follow the answers kept.
    let reply = ask_udp(addr, "big.service.consul.", RecordType::SRV).await;
    assert_eq!(reply.answers().len(), 3);
    let targets: BTreeSet<String> = reply
        .answers()
        .iter()
        .map(|r| match r.data() {
            RData::SRV(srv) => srv.target().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    let extra_names: BTreeSet<String> = reply
        .additionals()
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    assert_eq!(targets, extra_names);
    // EDNS makes room: all 40 A records fit in 1232 bytes.
    let reply = ask(
        addr,
        "big.service.consul.",
        RecordType::A,
        Protocol::Udp,
        Some(1232),
    )
    .await;
    assert_eq!(reply.answers().len(), 40);
    // 40 SRV answers with their extras do not: as many as fit.
    let reply = ask(
        addr,
        "big.service.consul.",
        RecordType::SRV,
        Protocol::Udp,
        Some(1232),
    )
    .await;
    let n = reply.answers().len();
    assert!((3..40).contains(&n), "{n}");
    assert!(reply.to_vec().unwrap().len() <= 1232);
    // TCP carries everything.
    let reply = ask_tcp(addr, "big.service.consul.", RecordType::SRV).await;
    assert_eq!((reply.answers().len(), reply.additionals().len()), (40, 40));
    // Answers are shuffled per question.
    let mut firsts = BTreeSet::new();
    for _ in 0..20 {
        let reply = ask_tcp(addr, "big.service.consul.", RecordType::A).await;
        firsts.insert(reply.answers()[0].data().to_string());
    }
    assert!(firsts.len() > 1, "{firsts:?}");

    let b = agent(&[
        "dns_config {\n enable_truncate = true\n udp_answer_limit = 5\n a_record_limit = 10\n}",
    ])
    .await;
    big_service(&b, 40).await;
    let addr = b.dns_addr();
    let reply = ask_udp(addr, "big.service.consul.", RecordType::A).await;
    assert_eq!((reply.answers().len(), reply.truncated()), (5, true));
    // The resolver retries a truncated reply over TCP: a_record_limit caps it there.
    let r = resolver_over(addr, &[Protocol::Udp, Protocol::Tcp]);
    assert_eq!(
        lookup(&r, "big.service.consul.", RecordType::A).await.len(),
        10
    );
    let reply = ask_tcp(addr, "big.service.consul.", RecordType::A).await;
    assert_eq!((reply.answers().len(), reply.truncated()), (10, false));
}

/// A tiny DNS server on 127.0.0.1 (UDP and TCP on one port) answering every A question with
/// 192.0.2.7.
async fn upstream() -> SocketAddr {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    fn answer(packet: &[u8]) -> Vec<u8> {
        let request = Message::from_vec(packet).unwrap();
        let mut reply = Message::new();
        reply
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_recursion_available(true)
            .add_queries(request.queries().to_vec());
        let q = &request.queries()[0];
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            60,
            RData::A(A::new(192, 0, 2, 7)),
        ));
        reply.to_vec().unwrap()
    }
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65535];
        while let Ok((len, peer)) = udp.recv_from(&mut buffer).await {
            let _ = udp.send_to(&answer(&buffer[..len]), peer).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let len = stream.read_u16().await.unwrap();
                let mut packet = vec![0u8; len as usize];
                stream.read_exact(&mut packet).await.unwrap();
                let reply = answer(&packet);
                stream
                    .write_all(&(reply.len() as u16).to_be_bytes())
                    .await
                    .unwrap();
                stream.write_all(&reply).await.unwrap();
            });
        }
    });
    addr
}

#[tokio::test]
async fn dns_forwards_other_names_to_recursors() {
    let up = upstream().await;
    // The first recursor never answers (a bound socket nobody reads): the next one does.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = agent(&[&format!(
        "recursors = [\"{}\", \"{up}\"]\ndns_config {{ recursor_timeout = \"300ms\" }}",
        silent.local_addr().unwrap()
    )])
    .await;
    catalog(&a).await;
    let addr = a.dns_addr();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let r = resolver(addr, protocol);
        assert_eq!(
            lookup(&r, "www.example.org.", RecordType::A).await,
            set(&["192.0.2.7"])
        );
        // Names inside the domain are still the agent's, now with recursion available.
        assert_eq!(
            lookup(&r, "n1.node.consul.", RecordType::A).await,
            set(&["10.0.0.1"])
        );
    }
    let reply = ask_udp(addr, "n1.node.consul.", RecordType::A).await;
    assert!(reply.recursion_available());

    // Every recursor failing: SERVFAIL with recursion available.
    let b = agent(&[&format!(
        "recursors = [\"{}\"]\ndns_config {{ recursor_timeout = \"200ms\" }}",
        silent.local_addr().unwrap()
    )])
    .await;
    let reply = ask_udp(b.dns_addr(), "www.example.org.", RecordType::A).await;
    assert_eq!(reply.response_code(), ResponseCode::ServFail);
    assert!(reply.recursion_available());
}

#[tokio::test]
async fn dns_reads_only_what_the_dns_token_may() {
    let a = acl_agent().await;
    for body in [
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": 80}}),
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "db", "Port": 81}}),
    ] {
        put_as_root(&a, "/v1/catalog/register", body).await;
    }
    let addr = a.dns_addr();
    // The anonymous token reads nothing.
    let reply = ask_udp(addr, "web.service.consul.", RecordType::A).await;
    assert_eq!(reply.response_code(), ResponseCode::NXDomain);

    let rules = "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }";
    dns_token(&a, rules).await;
    let reply = ask_udp(addr, "web.service.consul.", RecordType::A).await;
    assert_eq!(
        texts(reply.answers()),
        set(&["web.service.consul. A 10.0.0.1"])
    );
    let reply = ask_udp(addr, "db.service.consul.", RecordType::A).await;
    assert_eq!(reply.response_code(), ResponseCode::NXDomain);
    let reply = ask_udp(addr, "n1.node.consul.", RecordType::A).await;
    assert_eq!(reply.answers().len(), 1);
}

/// An agent answering DNS with ACLs on and denying by default; `root` is the management token.
async fn acl_agent() -> TestAgent {
    TestAgent::start_with(|f| {
        f.dns_port = Some(0);
        f.hcl = vec![r#"acl {
            enabled = true
            default_policy = "deny"
            tokens { initial_management = "root" }
        }"#
        .into()];
    })
    .await
}

/// Makes a token with one policy of `rules` the DNS token; the policy and the token.
async fn dns_token(a: &TestAgent, rules: &str) -> (Value, Value) {
    let policy = put_as_root(a, "/v1/acl/policy", json!({"Name": "dns", "Rules": rules})).await;
    let token = put_as_root(
        a,
        "/v1/acl/token",
        json!({"Policies": [{"ID": policy["ID"]}]}),
    )
    .await;
    put_as_root(
        a,
        "/v1/agent/token/dns",
        json!({"Token": token["SecretID"]}),
    )
    .await;
    (policy, token)
}

/// A PUT with the management token; its JSON reply (`Null` for an empty one).
async fn put_as_root(a: &TestAgent, path: &str, body: Value) -> Value {
    let resp = a
        .http
        .put(a.url(path))
        .header("X-Consul-Token", "root")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn dns_answers_prepared_queries_with_their_ttl() {
    let a = agent(&[r#"dns_config { service_ttl = { "*" = "5s" } }"#]).await;
    catalog(&a).await;
    // A query with its own TTL, and a template query without one (the service's TTL).
    let created = a
        .http
        .post(a.url("/v1/query"))
        .body(
            json!({"Name": "front", "Service": {"Service": "web", "Tags": ["v1"]},
                   "DNS": {"TTL": "9s"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created = a
        .http
        .post(a.url("/v1/query"))
        .body(
            json!({"Name": "any-", "Template": {"Type": "name_prefix_match"},
                   "Service": {"Service": "${name.suffix}"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let addr = a.dns_addr();
    let reply = ask_udp(addr, "front.query.consul.", RecordType::A).await;
    assert_eq!(
        texts(reply.answers()),
        set(&["front.query.consul. A 10.0.0.1"])
    );
    assert!(reply.answers().iter().all(|r| r.ttl() == 9));
    let reply = ask_udp(addr, "any-db.query.consul.", RecordType::SRV).await;
    assert_eq!(reply.answers().len(), 1, "{reply:?}");
    assert!(reply.answers().iter().all(|r| r.ttl() == 5));
    let reply = ask_udp(addr, "nothing.query.consul.", RecordType::A).await;
    assert_eq!(reply.response_code(), ResponseCode::NXDomain);
}

#[tokio::test]
async fn dns_virtual_names_answer_the_services_virtual_ip() {
    let a = agent(&[]).await;
    register_api_sidecar(&a).await;
    let r = resolver(a.dns_addr(), Protocol::Udp);
    assert_eq!(
        lookup(&r, "api.virtual.consul.", RecordType::A).await,
        set(&["240.0.0.1"])
    );
    // A service without a virtual IP, or a peer's (there is no peering): no answer.
    for name in ["web.virtual.consul.", "api.virtual.east.consul."] {
        let reply = ask_udp(a.dns_addr(), name, RecordType::A).await;
        assert_eq!(reply.response_code(), ResponseCode::NoError, "{name}");
        assert!(reply.answers().is_empty(), "{name}");
    }
}

/// Answers are kept between questions, yet every write that changes one is seen by the very
/// next question: asked right after each write's reply, never waited for.
#[tokio::test]
async fn dns_answers_follow_each_write_at_once() {
    let a = acl_agent().await;
    let addr = a.dns_addr();
    let answers = |name: &'static str, qtype| async move {
        let reply = ask_udp(addr, name, qtype).await;
        (reply.response_code(), texts(reply.answers()))
    };
    let web_a = |ips: &[&str]| {
        let records: Vec<String> = ips
            .iter()
            .map(|ip| format!("web.service.consul. A {ip}"))
            .collect();
        (ResponseCode::NoError, records.into_iter().collect())
    };
    let nxdomain = (ResponseCode::NXDomain, BTreeSet::new());
    put_as_root(
        &a,
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web", "Port": 80}}),
    )
    .await;
    let rules = "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }";
    let (policy, token) = dns_token(&a, rules).await;
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        web_a(&["10.0.0.1"])
    );

    // A second instance; a new service the token may read once its policy says so.
    for body in [
        json!({"Node": "n2", "Address": "10.0.0.2", "Service": {"Service": "web", "Port": 80}}),
        json!({"Node": "n2", "Address": "10.0.0.2", "Service": {"Service": "db", "Port": 81}}),
    ] {
        put_as_root(&a, "/v1/catalog/register", body).await;
    }
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        web_a(&["10.0.0.1", "10.0.0.2"])
    );
    assert_eq!(answers("db.service.consul.", RecordType::A).await, nxdomain);
    let widened = format!("{rules}\nservice \"db\" {{ policy = \"read\" }}");
    put_as_root(
        &a,
        &format!("/v1/acl/policy/{}", policy["ID"].as_str().unwrap()),
        json!({"Name": "dns", "Rules": widened}),
    )
    .await;
    assert_eq!(
        answers("db.service.consul.", RecordType::A).await,
        (
            ResponseCode::NoError,
            set(&["db.service.consul. A 10.0.0.2"])
        )
    );

    // A failing check hides its instance; a node's new address shows in SRV extras.
    put_as_root(
        &a,
        "/v1/catalog/register",
        json!({"Node": "n2", "Address": "10.0.0.2",
               "Check": {"CheckID": "down", "Name": "down", "Status": "critical"}}),
    )
    .await;
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        web_a(&["10.0.0.1"])
    );
    let srv_extras = || async move {
        let reply = ask_udp(addr, "web.service.consul.", RecordType::SRV).await;
        texts(reply.additionals())
    };
    assert_eq!(srv_extras().await, set(&["n1.node.dc1.consul. A 10.0.0.1"]));
    put_as_root(
        &a,
        "/v1/catalog/register",
        json!({"Node": "n1", "Address": "10.0.0.9"}),
    )
    .await;
    assert_eq!(srv_extras().await, set(&["n1.node.dc1.consul. A 10.0.0.9"]));

    // Another DNS token, then the service gone.
    put_as_root(&a, "/v1/agent/token/dns", json!({"Token": ""})).await;
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        nxdomain
    );
    put_as_root(
        &a,
        "/v1/agent/token/dns",
        json!({"Token": token["SecretID"]}),
    )
    .await;
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        web_a(&["10.0.0.9"])
    );
    put_as_root(
        &a,
        "/v1/catalog/deregister",
        json!({"Node": "n1", "ServiceID": "web"}),
    )
    .await;
    assert_eq!(
        answers("web.service.consul.", RecordType::A).await,
        nxdomain
    );
}

/// A reload puts new DNS settings in force for the next question, cached answers included,
/// and keeps the domain, as Consul's `DNSServer.ReloadConfig`.
#[tokio::test]
async fn a_reload_puts_new_dns_settings_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dns.json");
    let write = |settings: Value| std::fs::write(&cfg, settings.to_string()).unwrap();
    write(json!({"dns_config": {"only_passing": false, "service_ttl": {"*": "5s"}}}));
    let path = cfg.clone();
    let a = TestAgent::start_with(move |f| {
        f.dns_port = Some(0);
        f.config_file = vec![path];
    })
    .await;
    for (node, status) in [("n1", "passing"), ("n2", "warning")] {
        register(
            &a,
            json!({"Node": node, "Address": format!("10.0.0.{}", &node[1..]),
                   "Service": {"Service": "web", "Port": 80},
                   "Check": {"CheckID": "up", "Name": "up", "ServiceID": "web", "Status": status}}),
        )
        .await;
    }
    let ask = || ask_udp(a.dns_addr(), "web.service.consul.", RecordType::A);
    let before = ask().await;
    assert_eq!(before.answers().len(), 2);
    assert!(before.answers().iter().all(|r| r.ttl() == 5));

    write(json!({"domain": "other", "recursors": [],
                 "dns_config": {"only_passing": true, "service_ttl": {"*": "9s"}}}));
    a.put_ok("/v1/agent/reload", "").await;
    let after = ask().await;
    assert_eq!(
        texts(after.answers()),
        set(&["web.service.consul. A 10.0.0.1"]),
        "only_passing now drops the warning instance"
    );
    assert!(after.answers().iter().all(|r| r.ttl() == 9));
    let elsewhere = ask_udp(a.dns_addr(), "web.service.other.", RecordType::A).await;
    assert_eq!(
        elsewhere.response_code(),
        ResponseCode::Refused,
        "the domain stays"
    );
}
