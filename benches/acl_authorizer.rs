//! ACL check cost: builds a token of 100 policies (about 1,000 rules over keys, services,
//! nodes, sessions, events and queries), compiles it once and reports nanoseconds per check
//! for a few resource kinds, hits and misses alike.
//!
//! `cargo bench --bench acl_authorizer` (the target is a few hundred ns per check; a check
//! should stay well under 5 µs).

#[path = "common/mod.rs"]
mod common;
use common::policy_rules;
use legate::acl::{Authorizer, DefaultPolicy, Policy};
use std::hint::black_box;
use std::time::Instant;

const POLICIES: usize = 100;
const ROUNDS: usize = 200_000;

fn time(label: &str, segments: &[String], check: impl Fn(&str) -> bool) {
    let mut allowed = 0usize;
    let start = Instant::now();
    for round in 0..ROUNDS {
        let segment = &segments[round % segments.len()];
        allowed += usize::from(check(black_box(segment)));
    }
    let ns = start.elapsed().as_nanos() as f64 / ROUNDS as f64;
    println!("{label:<28} {ns:>8.1} ns/check  ({allowed} of {ROUNDS} allowed)");
}

fn main() {
    let start = Instant::now();
    let policies: Vec<Policy> = (0..POLICIES)
        .map(|i| Policy::parse(&policy_rules(i)).expect("bench rules parse"))
        .collect();
    let parsed = start.elapsed();
    let start = Instant::now();
    let authz = Authorizer::new(&policies, DefaultPolicy::Deny);
    let compiled = start.elapsed();
    let rules: usize = policies.iter().map(|p| p.rules.len()).sum();
    println!("{POLICIES} policies, {rules} rules: parse {parsed:?}, compile {compiled:?}");

    let keys: Vec<String> = (0..64)
        .flat_map(|i| {
            [
                format!("apps/app{i}/data/item-{i}"),
                format!("apps/app{i}/secrets/db-password"),
                format!("apps/app{i}/config"),
                format!("unmatched/path/{i}"),
            ]
        })
        .collect();
    let services: Vec<String> = (0..64)
        .flat_map(|i| {
            [
                format!("svc{i}"),
                format!("svc{i}-sidecar-proxy"),
                format!("other{i}"),
            ]
        })
        .collect();
    let nodes: Vec<String> = (0..64)
        .flat_map(|i| {
            [
                format!("rack{i}-node-7"),
                format!("db{i}"),
                format!("edge{i}"),
            ]
        })
        .collect();
    let prefixes: Vec<String> = (0..64)
        .flat_map(|i| [format!("apps/app{i}/data/"), format!("apps/app{i}/")])
        .collect();

    time("key_read", &keys, |k| authz.key_read(k).is_allow());
    time("key_write", &keys, |k| authz.key_write(k).is_allow());
    time("key_list", &keys, |k| authz.key_list(k).is_allow());
    time("key_write_prefix", &prefixes, |k| {
        authz.key_write_prefix(k).is_allow()
    });
    time("service_read", &services, |s| {
        authz.service_read(s).is_allow()
    });
    time("service_write", &services, |s| {
        authz.service_write(s).is_allow()
    });
    time("intention_write", &services, |s| {
        authz.intention_write(s).is_allow()
    });
    time("node_read", &nodes, |n| authz.node_read(n).is_allow());
    time("session_write", &nodes, |n| {
        authz.session_write(n).is_allow()
    });
    time("service_read_all (scan)", &services, |_| {
        authz.service_read_all().is_allow()
    });
}
