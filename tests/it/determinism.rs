//! Every write is a command (`store::command`): the same entries applied in the same order to
//! two fresh stores give byte-identical tables, global index and table indexes, whenever they
//! are applied. The streams come from a real agent driven over HTTP and from a generator of
//! random command sequences; the two replays of each stream run more than a second apart, so
//! a write that read the wall clock (tombstone times, lock-delays, session expiry) or a random
//! source would make them differ.

use crate::common::TestAgent;
use legate::store::acl::TokenWrite;
use legate::store::agent_state::{LocalCheck, LocalService, ServiceRegistration};
use legate::store::catalog::Registration;
use legate::store::connect_ca::{CaConfig, CaRootRecord, LeafRecord};
use legate::store::{codec, Command, Dump, Entry, Store, StoreError};
use legate::types::acl::{
    management_token, AclAuthMethod, AclBindingRule, AclPolicy, AclRole, AclToken, Grants, Link,
};
use legate::types::autopilot::AutopilotConfig;
use legate::types::catalog::{HealthCheck, Node, NodeService};
use legate::types::config_entry::ConfigEntry;
use legate::types::coordinate::{Coord, CoordinateEntry};
use legate::types::prepared_query::{PreparedQuery, QueryTemplate, ServiceQuery};
use legate::types::session::Session;
use legate::types::JsonValue;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// A recorded log: each entry's position and its encoding, as a replicated log carries it.
type Log = Vec<(u64, Vec<u8>)>;

fn decode(bytes: &[u8]) -> Entry {
    codec::decode("log", "entry", bytes).expect("a decodable entry")
}

/// Applies `log` to a fresh store; returns its contents and the kinds of command in it.
async fn replay(log: &Log) -> (Dump, BTreeSet<&'static str>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut kinds = BTreeSet::new();
    // Submitted together so they share a few group commits; `apply_entry` queues each entry
    // when called, so they are queued in log order.
    let applying = log.iter().map(|(index, bytes)| {
        let entry = decode(bytes);
        kinds.insert(entry.command.kind());
        store.apply_entry(*index, entry)
    });
    for outcome in futures_util::future::join_all(applying).await {
        // A command may fail (a lock on a missing session...), the same way on every replica;
        // a position refused as already applied would mean the log was fed out of order.
        assert!(
            !matches!(outcome, Err(StoreError::AlreadyApplied { .. })),
            "{outcome:?}"
        );
    }
    let dump = store.read().unwrap().dump().unwrap();
    store.close();
    (dump, kinds)
}

/// What the replays went through: the kinds of command applied and the tables left non-empty.
#[derive(Default)]
struct Coverage {
    kinds: BTreeSet<&'static str>,
    tables: BTreeSet<&'static str>,
}

/// Replays every log twice, more than a second apart, and checks the replicas agree.
async fn assert_replicas_agree(logs: &[Log]) -> Coverage {
    let mut first = Vec::new();
    for log in logs {
        first.push(replay(log).await);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut coverage = Coverage::default();
    for (log, (dump, seen)) in logs.iter().zip(first) {
        let (again, _) = replay(log).await;
        if dump != again {
            let entries: Vec<Entry> = log.iter().map(|(_, b)| decode(b)).collect();
            panic!(
                "replicas differ after applying {entries:#?}\nfirst: {dump:#?}\nsecond: {again:#?}"
            );
        }
        coverage.kinds.extend(seen);
        let filled = dump.tables.iter().filter(|(_, rows)| !rows.is_empty());
        coverage.tables.extend(filled.map(|(name, _)| *name));
    }
    coverage
}

/// Drives a real agent through a day of ordinary use and records what its store applied.
async fn recorded_scenario() -> Log {
    let agent = TestAgent::start_with(|f| f.hcl.push("connect { enabled = true }".into())).await;
    let tap = agent.store().tap();
    let node = json!({
        "Node": "test-node", "Address": "127.0.0.1",
        "Check": {"CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing"}
    });
    agent.put_ok("/v1/catalog/register", node.to_string()).await;
    // A snapshot restored over a later write; what follows builds on the restored state.
    let archive = agent.get("/v1/snapshot").await.bytes().await.unwrap();
    agent.put_ok("/v1/kv/after-snapshot", "z").await;
    agent.put_ok("/v1/snapshot", archive).await;
    // KV: writes, CAS, flags, deletes, trees.
    agent.put_ok("/v1/kv/app/a", "1").await;
    let (index, _) = agent.get_json("/v1/kv/app/a").await;
    agent
        .put_ok(&format!("/v1/kv/app/a?cas={index}"), "2")
        .await;
    agent.put_ok("/v1/kv/app/b?flags=5", "x").await;
    agent.put_ok("/v1/kv/app/c?cas=0", "y").await;
    agent.delete("/v1/kv/app/c?cas=1").await;
    agent.delete("/v1/kv/app/b").await;
    agent.put_ok("/v1/kv/tree/1", "t").await;
    agent.put_ok("/v1/kv/tree/2", "t").await;
    agent.delete("/v1/kv/tree/?recurse").await;
    // Sessions and locks, with a lock-delay left behind.
    let body = json!({"Name": "locker", "LockDelay": "5s", "Behavior": "delete"});
    let created: serde_json::Value =
        serde_json::from_str(&agent.put_ok("/v1/session/create", body.to_string()).await).unwrap();
    let session = created["ID"].as_str().unwrap().to_string();
    agent
        .put_ok(&format!("/v1/kv/lock?acquire={session}"), "held")
        .await;
    agent
        .put_ok(&format!("/v1/kv/lock?release={session}"), "free")
        .await;
    agent
        .put_ok(&format!("/v1/kv/lock?acquire={session}"), "again")
        .await;
    agent
        .put_ok(&format!("/v1/session/destroy/{session}"), "")
        .await;
    let ttl: serde_json::Value = serde_json::from_str(
        &agent
            .put_ok("/v1/session/create", json!({"TTL": "10s"}).to_string())
            .await,
    )
    .unwrap();
    let ttl_session = ttl["ID"].as_str().unwrap().to_string();
    agent
        .put_ok(&format!("/v1/session/renew/{ttl_session}"), "")
        .await;
    // A transaction.
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "txn/1", "Value": "eA=="}},
        {"KV": {"Verb": "delete", "Key": "app/a"}},
    ]);
    agent.put_ok("/v1/txn", ops.to_string()).await;
    // Services and checks through the agent, maintenance, results.
    let web = json!({"Name": "web", "Port": 80, "Check": {"TTL": "30s"}});
    agent
        .put_ok("/v1/agent/service/register", web.to_string())
        .await;
    agent.put_ok("/v1/agent/check/pass/service:web", "").await;
    let mem = json!({"Name": "mem", "TTL": "30s"});
    agent
        .put_ok("/v1/agent/check/register", mem.to_string())
        .await;
    agent.put_ok("/v1/agent/check/fail/mem?note=full", "").await;
    agent
        .put_ok(
            "/v1/agent/service/maintenance/web?enable=true&reason=upgrade",
            "",
        )
        .await;
    agent
        .put_ok("/v1/agent/service/maintenance/web?enable=false", "")
        .await;
    agent.put_ok("/v1/agent/check/deregister/mem", "").await;
    agent.put_ok("/v1/agent/service/deregister/web", "").await;
    // Config entries.
    let defaults = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"});
    agent.put_ok("/v1/config", defaults.to_string()).await;
    agent.delete("/v1/config/service-defaults/web").await;
    // The catalog from outside the agent.
    let external = json!({"Node": "ext", "Address": "10.0.0.9",
        "Service": {"Service": "db", "Port": 5432}});
    agent
        .put_ok("/v1/catalog/register", external.to_string())
        .await;
    let gone = json!({"Node": "ext", "ServiceID": "db"});
    agent
        .put_ok("/v1/catalog/deregister", gone.to_string())
        .await;
    agent
        .put_ok("/v1/catalog/deregister", json!({"Node": "ext"}).to_string())
        .await;
    // The Connect CA (initialized at start, so carried by the restored snapshot): a leaf
    // issued, a rotation to a new root, the leaf reissued under it.
    agent.get_json("/v1/agent/connect/ca/leaf/web").await;
    let rotate =
        json!({"Provider": "consul", "Config": {"PrivateKeyType": "ec", "PrivateKeyBits": 384}});
    agent
        .put_ok("/v1/connect/ca/configuration", rotate.to_string())
        .await;
    agent.get_json("/v1/agent/connect/ca/leaf/web").await;
    // Every entry reaches the tap before its request is answered.
    tap.try_iter().collect()
}

#[tokio::test]
async fn a_recorded_agent_stream_replays_identically() {
    let log = recorded_scenario().await;
    assert!(log.len() > 30, "recorded {} entries", log.len());
    let coverage = assert_replicas_agree(&[log]).await;
    for kind in [
        "kv-lock",
        "session-create",
        "agent-register-services",
        "restore-snapshot",
        "connect-ca-set-config",
        "connect-ca-leaf-issued",
    ] {
        assert!(coverage.kinds.contains(kind), "{kind} missing");
    }
    // The time-dependent rows exist, so a clock read while applying would show (a rotation
    // stamps the retired root with the entry's time).
    for table in [
        "kv_lock_delays",
        "kv_tombstones",
        "sessions",
        "connect_ca_roots",
    ] {
        assert!(coverage.tables.contains(table), "{table} left empty");
    }
}

#[tokio::test]
async fn a_replayed_log_position_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let entry = |value: &[u8]| Entry {
        time_ms: 1_000,
        command: Command::KvSet {
            key: "k".into(),
            value: value.to_vec(),
            flags: 0,
            cas: None,
        },
    };
    store.apply_entry(1, entry(b"first")).await.unwrap();
    store.apply_entry(2, entry(b"second")).await.unwrap();
    let before = store.read().unwrap().dump().unwrap();
    for index in [1, 2] {
        let err = store.apply_entry(index, entry(b"again")).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyApplied { log_index, applied: 2 } if log_index == index),
            "{err:?}"
        );
    }
    assert_eq!(store.read().unwrap().dump().unwrap(), before);
    // The position survives a restart: a log replayed after it is still refused.
    store.close();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.apply_entry(2, entry(b"again")).await.is_err());
    store.apply_entry(3, entry(b"third")).await.unwrap();
}

// ----- random command sequences -----

const KEYS: [&str; 5] = ["a", "a/b", "a/c", "b", "lock"];
const SESSIONS: [&str; 2] = [
    "5e55a0a1-0000-4000-8000-000000000001",
    "5e55a0a1-0000-4000-8000-000000000002",
];
const STATUSES: [&str; 3] = ["passing", "warning", "critical"];
/// The kinds `command` builds, each once, then the KV and session kinds again: sessions that
/// take locks and end with a lock-delay need a few of them in a row.
const KIND_DRAW: [u8; 70] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, // every kind
    0, 1, 1, 1, 3, 15, 15, 15, 16, 16, 18, 7, 28, 28, 31, 31, 31, 33, 33, 36, 36, 36, 38, 38, 40,
    19, 42,
];
/// Prepared-query IDs and names the generator draws from: few, so name clashes, updates,
/// deletes and session-bound queries meet.
const QUERY_IDS: [&str; 3] = [
    "9e000000-0000-4000-8000-000000000001",
    "9e000000-0000-4000-8000-000000000002",
    "9e000000-0000-4000-8000-000000000003",
];
const QUERY_NAMES: [&str; 4] = ["geo", "", "GEO", "9e000000-0000-4000-8000-000000000002"];
/// Auth method names the generator draws from; tokens and rules name them too.
const AUTH_METHODS: [&str; 2] = ["m1", "m2"];
/// ACL IDs the generator draws from: few, so creates, updates and deletes meet.
const ACL_IDS: [&str; 3] = [
    "ac1d0000-0000-4000-8000-000000000001",
    "ac1d0000-0000-4000-8000-000000000002",
    "ac1d0000-0000-4000-8000-000000000003",
];
/// Tokens live 10 s (two entries), so reaps and expired updates happen within a sequence.
const TOKEN_LIFE_MS: u64 = 10_000;
/// Entry times for sequences that exercise time itself: a fixed past epoch, 5 s apart, so
/// TTLs and lock-delays lapse within a sequence.
const EPOCH_MS: u64 = 1_000_000_000_000;
const STEP_MS: u64 = 5_000;
/// Session deadlines are set 20 s after their entry's time.
const SESSION_GRACE_MS: u64 = 20_000;

fn check(id: &str, service_id: &str, status: &str) -> HealthCheck {
    HealthCheck {
        node: "n1".into(),
        check_id: id.into(),
        name: id.into(),
        status: status.into(),
        service_id: service_id.into(),
        ..Default::default()
    }
}

fn local_check(id: &str, service_id: &str) -> LocalCheck {
    LocalCheck {
        check_id: id.into(),
        service_id: service_id.into(),
        definition: JsonValue::default(),
        ttl_deadline_ms: 0,
    }
}

fn service(id: &str, name: &str, port: u16) -> NodeService {
    NodeService {
        id: id.into(),
        service: name.into(),
        port,
        ..Default::default()
    }
}

/// A CA root as the store sees it: applying copies certificates and keys without reading them,
/// so placeholders exercise it as well as real ones.
fn ca_root(n: u8) -> CaRootRecord {
    CaRootRecord {
        id: format!("root-{}", n % 3),
        name: "Consul CA Primary Cert".into(),
        serial_number: u64::from(n),
        signing_key_id: format!("key-{n}"),
        not_before: 1_000,
        not_after: 2_000,
        root_cert: format!("cert-{n}"),
        intermediate_certs: vec![format!("cross-{n}")],
        private_key: format!("private-{n}"),
        private_key_type: "ec".into(),
        private_key_bits: 256,
        active: true,
        rotated_out_at_ms: 0,
        create_index: 0,
        modify_index: 0,
    }
}

fn ca_config(cluster_id: &str, leaf_cert_ttl: &str) -> CaConfig {
    CaConfig {
        provider: "consul".into(),
        cluster_id: cluster_id.into(),
        config: JsonValue(json!({ "LeafCertTTL": leaf_cert_ttl })),
        force_without_cross_signing: leaf_cert_ttl.len() > 2,
        create_index: 0,
        modify_index: 0,
    }
}

/// The command a generated tuple stands for; `now` is its entry's time.
fn command(kind: u8, a: u8, b: u8, flag: bool, now: u64) -> Command {
    let key = KEYS[usize::from(a) % KEYS.len()].to_string();
    let session = SESSIONS[usize::from(b) % SESSIONS.len()].to_string();
    let status = STATUSES[usize::from(a) % STATUSES.len()].to_string();
    let cas = flag.then_some(u64::from(b % 6));
    match kind {
        0 => Command::KvSet {
            key,
            value: vec![b],
            flags: u64::from(b),
            cas,
        },
        1 => Command::KvLock {
            key,
            value: vec![b],
            flags: 0,
            session,
        },
        2 => Command::KvUnlock {
            key,
            value: vec![],
            flags: 1,
            session,
        },
        3 => Command::KvDelete { key, cas },
        4 => Command::KvDeleteTree {
            prefix: ["", "a", "a/", "b"][usize::from(a) % 4].into(),
        },
        5 => Command::KvReapTombstones {
            ttl_ms: u64::from(a) * 4_000,
        },
        6 => {
            let cas = if flag { 999 } else { 0 };
            let ops = json!([
                {"KV": {"Verb": "set", "Key": key, "Value": "eA=="}},
                {"KV": {"Verb": "delete", "Key": KEYS[usize::from(b) % KEYS.len()]}},
                {"KV": {"Verb": "cas", "Key": "txn", "Value": "eQ==", "Index": cas}},
            ]);
            Command::Txn {
                ops: serde_json::from_value(ops).unwrap(),
            }
        }
        7 => Command::CatalogRegister(Box::new(Registration {
            node: Node {
                node: "n1".into(),
                address: format!("10.0.0.{a}"),
                ..Default::default()
            },
            skip_node_update: flag,
            service: Some(service("web", "web", 80 + u16::from(b))),
            checks: vec![check(&format!("c-{}", b % 3), "web", &status)],
        })),
        8 => Command::CatalogDeregister {
            node: "n1".into(),
            service_id: if flag { "web".into() } else { String::new() },
            check_id: if a.is_multiple_of(2) {
                "c-1".into()
            } else {
                String::new()
            },
        },
        9 => Command::AgentSelf {
            node: Box::new(Node {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                ..Default::default()
            }),
            serf_health: Box::new(check("serfHealth", "", &status)),
            consul_service: flag
                .then(|| service("consul", "consul", 8300))
                .map(Box::new),
            autopilot: Box::new(AutopilotConfig::default()),
        },
        10 => {
            let id = format!("api{}", b % 2);
            Command::AgentRegisterServices {
                node: "n1".into(),
                services: vec![ServiceRegistration {
                    service: LocalService {
                        service: service(&id, "api", 9000),
                        sidecar_of: String::new(),
                    },
                    checks: vec![(
                        local_check(&format!("{id}-ttl"), &id),
                        check(&format!("{id}-ttl"), &id, &status),
                    )],
                }],
                replace_existing_checks: flag,
            }
        }
        11 => Command::AgentDeregisterService {
            node: "n1".into(),
            id: format!("api{}", b % 2),
        },
        12 => Command::AgentRegisterCheck {
            check: Box::new(local_check("mem", "")),
            row: Box::new(check("mem", "", &status)),
        },
        13 => Command::AgentDeregisterCheck {
            node: "n1".into(),
            id: "mem".into(),
        },
        14 => Command::AgentCheckStatus {
            node: "n1".into(),
            id: ["mem", "api0-ttl", "api1-ttl"][usize::from(b) % 3].into(),
            status,
            output: format!("output {b}"),
            ttl_deadline_ms: flag.then_some(now + 30_000),
        },
        15 => Command::SessionCreate(Box::new(Session {
            id: session,
            node: "n1".into(),
            lock_delay: u64::from(a) * 1_000_000_000,
            behavior: if flag { "delete" } else { "release" }.into(),
            ttl: "10s".into(),
            node_checks: Some(if b.is_multiple_of(2) {
                vec![]
            } else {
                vec!["serfHealth".into()]
            }),
            expires_at_ms: now + SESSION_GRACE_MS,
            ..Default::default()
        })),
        16 => Command::SessionDestroy { id: session },
        17 => Command::SessionRenew {
            id: session,
            expires_at_ms: now + SESSION_GRACE_MS,
        },
        18 => Command::SessionExpire { id: session },
        19 => {
            let protocol = ["tcp", "http", "grpc"][usize::from(a) % 3];
            // A resolver also gives its service a virtual IP.
            let raw = if b % 4 == 3 {
                let name = ["web", "api"][usize::from(a) % 2];
                json!({"Kind": "service-resolver", "Name": name})
            } else {
                json!({"Kind": "service-defaults", "Name": "web", "Protocol": protocol})
            };
            let mut entry = ConfigEntry::decode(raw).unwrap();
            entry.check().unwrap();
            Command::ConfigEntrySet {
                entry: Box::new(entry),
                cas,
            }
        }
        21 => Command::AutopilotSetConfig {
            config: Box::new(AutopilotConfig {
                max_trailing_logs: u64::from(b),
                ..AutopilotConfig::default()
            }),
            cas,
        },
        20 => Command::ConfigEntryDelete {
            kind: "service-defaults".into(),
            name: "web".into(),
            cas,
        },
        23 => Command::ConnectCaInitialize {
            config: Box::new(ca_config(&format!("cluster-{a}"), "72h")),
            root: Box::new(ca_root(a)),
        },
        24 => Command::ConnectCaSetConfig {
            config: Box::new(ca_config("ignored", &format!("{}h", 1 + a))),
            new_root: flag.then(|| ca_root(b)).map(Box::new),
            rotates_from: format!("root-{}", a % 3),
        },
        25 => Command::ConnectCaLeafIssued {
            leaf: Box::new(LeafRecord {
                service: ["web", "db"][usize::from(b) % 2].into(),
                service_uri: format!("spiffe://c.consul/ns/default/dc/dc1/svc/{b}"),
                serial_number: format!("0{a}:0{b}"),
                cert_pem: format!("leaf-{a}"),
                private_key_pem: format!("leaf-key-{a}"),
                valid_after: now / 1000,
                valid_before: now / 1000 + 3600,
                renew_after: now / 1000 + 2400,
                root_id: format!("root-{}", a % 3),
                create_index: 0,
                modify_index: 0,
            }),
            // Sometimes the serial a previous draw cached, sometimes none: both outcomes.
            replaces: flag.then(|| format!("0{b}:0{a}")),
        },

        26 => Command::AclInitialize {
            initial_management: flag
                .then(|| {
                    management_token(
                        ACL_IDS[usize::from(a) % 3].into(),
                        ACL_IDS[usize::from(b) % 3].into(),
                        "initial",
                        now,
                    )
                })
                .map(Box::new),
        },
        27 => Command::AclBootstrap {
            token: Box::new(management_token(
                ACL_IDS[usize::from(a) % 3].into(),
                ACL_IDS[usize::from(b) % 3].into(),
                "bootstrap",
                now,
            )),
            reset_index: flag.then_some(u64::from(b)),
        },
        28 => Command::AclTokenSet {
            token: Box::new(AclToken {
                accessor_id: ACL_IDS[usize::from(a) % 3].into(),
                secret_id: ACL_IDS[usize::from(b) % 3].into(),
                grants: Grants {
                    policies: vec![Link {
                        id: String::new(),
                        name: ["p", "q"][usize::from(b) % 2].into(),
                    }],
                    ..Grants::default()
                },
                // Some tokens link a role by ID, which may not exist (refused).
                roles: if a.is_multiple_of(3) {
                    vec![Link {
                        id: ACL_IDS[usize::from(b) % 3].into(),
                        name: String::new(),
                    }]
                } else {
                    Vec::new()
                },
                expiration_ms: a.is_multiple_of(2).then_some(now + TOKEN_LIFE_MS),
                create_ms: now,
                // Some tokens come from a login, so deleting their auth method deletes them.
                auth_method: if b.is_multiple_of(2) {
                    AUTH_METHODS[usize::from(a) % 2].into()
                } else {
                    String::new()
                },
                ..AclToken::default()
            }),
            mode: if flag {
                TokenWrite::Create
            } else {
                TokenWrite::Update
            },
        },
        29 => Command::AclTokenDelete {
            accessor_id: ACL_IDS[usize::from(a) % 3].into(),
        },
        30 => Command::AclTokenReap,
        31 => Command::AclPolicySet {
            policy: Box::new(AclPolicy {
                id: ACL_IDS[usize::from(a) % 3].into(),
                name: ["p", "q"][usize::from(b) % 2].into(),
                rules: format!("key_prefix \"{key}\" {{ policy = \"read\" }}"),
                ..AclPolicy::default()
            }),
            create: flag,
        },
        32 => Command::AclPolicyDelete {
            id: ACL_IDS[usize::from(a) % 3].into(),
        },
        33 => Command::AclRoleSet {
            role: Box::new(AclRole {
                id: ACL_IDS[usize::from(a) % 3].into(),
                name: ["r", "s"][usize::from(b) % 2].into(),
                // Half of them link a policy, which may not exist (the role is refused then).
                grants: Grants {
                    policies: if b < 4 {
                        vec![Link {
                            id: String::new(),
                            name: ["p", "q"][usize::from(a) % 2].into(),
                        }]
                    } else {
                        Vec::new()
                    },
                    ..Grants::default()
                },
                ..AclRole::default()
            }),
            create: flag,
        },
        34 => Command::AclRoleDelete {
            id: ACL_IDS[usize::from(a) % 3].into(),
        },
        // Roots rotated out more than `a` steps ago go (the cutoff is the pruner's decision).
        35 => Command::ConnectCaPruneRoots {
            rotated_out_before_ms: now.saturating_sub(u64::from(a) * STEP_MS),
        },
        36 => Command::PreparedQuerySet {
            query: Box::new(PreparedQuery {
                id: QUERY_IDS[usize::from(a) % 3].into(),
                name: QUERY_NAMES[usize::from(b) % 4].into(),
                // Half of them are bound to a session, which may or may not exist.
                session: if a.is_multiple_of(2) {
                    session
                } else {
                    String::new()
                },
                template: QueryTemplate {
                    kind: if b >= 4 { "name_prefix_match" } else { "" }.into(),
                    ..QueryTemplate::default()
                },
                service: ServiceQuery {
                    service: format!("svc-{b}"),
                    ..ServiceQuery::default()
                },
                ..PreparedQuery::default()
            }),
            create: flag,
        },
        37 => Command::PreparedQueryDelete {
            id: QUERY_IDS[usize::from(a) % 3].into(),
        },
        38 => Command::AclAuthMethodSet(Box::new(AclAuthMethod {
            name: AUTH_METHODS[usize::from(a) % 2].into(),
            // An empty type keeps the stored one (refused for a new method); a different
            // one is refused.
            method_type: ["jwt", "kubernetes", ""][usize::from(b) % 3].into(),
            max_token_ttl_ns: u64::from(b) * 60_000_000_000,
            config: format!("{{\"BoundIssuer\":\"{key}\"}}"),
            ..AclAuthMethod::default()
        })),
        39 => Command::AclAuthMethodDelete {
            name: AUTH_METHODS[usize::from(a) % 2].into(),
        },
        40 => Command::AclBindingRuleSet {
            rule: Box::new(AclBindingRule {
                id: ACL_IDS[usize::from(a) % 3].into(),
                auth_method: ["m1", "m2", ""][usize::from(b) % 3].into(),
                selector: format!("value.k == {key}"),
                bind_type: "service".into(),
                bind_name: "${value.k}".into(),
                ..AclBindingRule::default()
            }),
            create: flag,
        },
        41 => Command::AclBindingRuleDelete {
            id: ACL_IDS[usize::from(a) % 3].into(),
        },
        42 => Command::AssignManualVirtualIps {
            service: ["web", "api", "ghost"][usize::from(a) % 3].into(),
            ips: ["10.0.0.1", "10.0.0.2", "10.0.0.3"][..usize::from(b) % 4]
                .iter()
                .map(|ip| ip.to_string())
                .collect(),
        },
        22 => Command::CoordinateBatchUpdate {
            updates: vec![CoordinateEntry {
                node: ["n1", "ghost"][usize::from(b) % 2].into(),
                segment: String::new(),
                coord: Coord {
                    vec: vec![f64::from(a) / 8.0; 8],
                    ..Coord::origin()
                },
            }],
        },
        other => unreachable!("no command kind {other}"),
    }
}

/// `cases` random sequences of up to 60 commands (every kind but snapshot restore, which the
/// recorded stream covers), as logs whose entries are `step_ms` apart from `epoch_ms` on.
/// The generator is seeded, so a failure reproduces.
fn random_logs(cases: usize, epoch_ms: u64, step_ms: u64) -> Vec<Log> {
    let step = (0..KIND_DRAW.len(), 0u8..8, 0u8..8, proptest::bool::ANY);
    let strategy = proptest::collection::vec(step, 1..60);
    let mut runner = TestRunner::deterministic();
    (0..cases)
        .map(|_| {
            let steps = strategy.new_tree(&mut runner).unwrap().current();
            // Every sequence starts on a node with a passing serfHealth, so sessions can be
            // created and locks taken from the first random step on.
            let start = [(9, 0, 0, false)];
            let steps = steps
                .into_iter()
                .map(|(draw, a, b, flag)| (KIND_DRAW[draw], a, b, flag));
            start
                .into_iter()
                .chain(steps)
                .enumerate()
                .map(|(i, (kind, a, b, flag))| {
                    let time_ms = epoch_ms + i as u64 * step_ms;
                    let entry = Entry {
                        time_ms,
                        command: command(kind, a, b, flag, time_ms),
                    };
                    (i as u64 + 1, codec::encode(&entry))
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn random_command_sequences_replay_identically() {
    let mut coverage = assert_replicas_agree(&random_logs(48, EPOCH_MS, STEP_MS)).await;
    coverage.kinds.insert("restore-snapshot"); // covered by the recorded stream
    let all: BTreeSet<&str> = Command::KINDS.iter().copied().collect();
    assert_eq!(coverage.kinds, all, "every kind of command is generated");
    for table in [
        "kv_lock_delays",
        "kv_tombstones",
        "sessions",
        "agent_checks",
        "connect_ca_roots",
        "connect_ca_leaves",
        "acl_tokens",
        "acl_roles",
        "prepared_queries",
        "prepared_query_sessions",
        "acl_auth_methods",
        "acl_binding_rules",
    ] {
        assert!(coverage.tables.contains(table), "{table} left empty");
    }
}

/// Entries timed just before now, so the session deadlines they set fall between the first
/// replay and the second: a store that compared them with its own clock instead of the
/// entry's time would expire sessions (and honour lock-delays) in one replica only.
#[tokio::test]
async fn deadlines_follow_the_entries_time_not_the_replicas_clock() {
    for seed_log in 0..6 {
        let now = legate::clock::now_ms();
        let epoch = now + 400 - SESSION_GRACE_MS;
        let log = random_logs(seed_log + 1, epoch, 10).pop().unwrap();
        assert_replicas_agree(&[log]).await;
    }
}
