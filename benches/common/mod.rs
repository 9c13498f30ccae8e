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
