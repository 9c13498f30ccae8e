//! Shared by the bench targets (each includes it with `#[path = "common/mod.rs"]`) and by
//! `benches/etcd-grpc/`.
#![allow(dead_code)]

/// The base URL of the agent to load, or `None` when no `--url` was given (a plain
/// `cargo bench` does nothing). Exits when the URL is not on loopback: benches load only this
/// machine.
pub fn loopback_base(bench: &str, url: Option<&str>, script: &str) -> Option<String> {
    let Some(url) = url else {
        eprintln!("{bench}: no --url given, nothing to do (see {script})");
        return None;
    };
    let base = url.trim_end_matches('/').to_string();
    // `http` rather than reqwest's URL type: the etcd gRPC generator has no reqwest.
    let host = base
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase));
    if !matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")) {
        eprintln!("{bench}: refusing non-loopback URL {base}");
        std::process::exit(2);
    }
    Some(base)
}

/// The nearest-rank `p` quantile (0..=1) of sorted samples (the default for none).
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The rules of the `i`th of the ACL benches' policies: about ten rules over keys, services,
/// nodes, sessions, events and queries, none matching another policy's names.
pub fn policy_rules(i: usize) -> String {
    format!(
        r#"
key_prefix "apps/app{i}/" {{ policy = "write" }}
key_prefix "apps/app{i}/secrets/" {{ policy = "deny" }}
key "apps/app{i}/config" {{ policy = "read" }}
key_prefix "shared/team{i}/" {{ policy = "list" }}
service "svc{i}" {{ policy = "write" }}
service_prefix "svc{i}-" {{ policy = "read" intentions = "write" }}
node_prefix "rack{i}-" {{ policy = "write" }}
node "db{i}" {{ policy = "read" }}
session_prefix "rack{i}-" {{ policy = "write" }}
event_prefix "deploy-{i}" {{ policy = "write" }}
query_prefix "q{i}" {{ policy = "read" }}
"#
    )
}
