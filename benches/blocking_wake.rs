//! Blocking-query wake benchmark: many parked `/v1/health/service/<name>` watchers, one change
//! at a time, for `benches/run-blocking.sh`.
//!
//! Against a running agent (loopback only) it
//! 1. registers `--services` services (`svc-0000`, ...) through `PUT /v1/agent/service/register`,
//!    each with a TTL check `service:<id>` (passing, TTL 1h);
//! 2. reads each service's `X-Consul-Index` from `GET /v1/health/service/<name>`;
//! 3. parks `--watchers-per-service` blocking watchers per service
//!    (`?index=<idx>&wait=<wait>s`), each on its own keep-alive HTTP/1.1 connection (a watcher
//!    sends one request at a time, so the pool never shares a connection between two of them);
//!    after a wake a watcher re-issues its request with the new index, as Consul clients do;
//! 4. once the agent holds all the connections (its fd count, with `--agent-pid`) and a settle
//!    delay passed, reads the agent's RSS (`/proc/<pid>/status`);
//! 5. for `--rounds` rounds picks a random service, takes t0, changes it
//!    (`PUT /v1/agent/check/pass/service:<id>?note=round-<n>`) and records, for each of its
//!    watchers, the time from t0 to the complete response. Any other response in the round
//!    (a watcher of another service, an extra one, one without a new index) is an unexpected
//!    wakeup; a watcher of the changed service that doesn't answer within `--round-timeout` is
//!    missed. A woken watcher whose body lacks the new note counts as stale.
//!
//! It prints a `RESULT ...` line and a markdown table. Performance targets (p99 < 10 ms, RSS <
//! 100 MB) are reported, not asserted; the exit code is non-zero only for correctness problems
//! (unexpected or missed wakeups, stale bodies, request errors).
//!
//! `cargo bench --bench blocking_wake -- --url http://127.0.0.1:8500 --agent-pid <pid>`.
//! Without `--url` it prints a note and does nothing, so a plain `cargo bench` stays harmless.

#[path = "common/mod.rs"]
mod common;
use clap::Parser;
use futures_util::StreamExt;
use rand::Rng;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(about = "Wake latency and memory of parked blocking queries on /v1/health/service")]
struct Args {
    /// Base URL of the agent, e.g. http://127.0.0.1:8500 (loopback only).
    #[arg(long)]
    url: Option<String>,
    /// The agent's pid, for its RSS, fd count and CPU time (read from /proc).
    #[arg(long)]
    agent_pid: Option<u32>,
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    watchers_per_service: usize,
    /// Changes made, one service at a time.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// The blocking wait of every watcher, in seconds (`?wait=<n>s`).
    #[arg(long, default_value_t = 300)]
    wait_secs: u64,
    /// reqwest clients (connection pools) the watchers are spread over.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds to wait after every watcher's connection is held by the agent.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Quiet milliseconds after each round, watching for late or unexpected wakeups.
    #[arg(long, default_value_t = 100)]
    gap_ms: u64,
    /// Seconds a round waits for all watchers of the changed service.
    #[arg(long, default_value_t = 5.0)]
    round_timeout: f64,
    /// Seconds to wait for every watcher to be parked.
    #[arg(long, default_value_t = 120.0)]
    park_timeout: f64,
    /// Watchers started at a time while parking (the agent's accept backlog is finite).
    #[arg(long, default_value_t = 500)]
    ramp_batch: usize,
    /// Concurrent requests while registering and reading indexes.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// Service name prefix.
    #[arg(long, default_value = "svc-")]
    prefix: String,
    /// Leave the services registered at the end (default: deregister them).
    #[arg(long)]
    keep_services: bool,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What a watcher reports after each response (or failure).
enum Event {
    Response {
        service: usize,
        at: Instant,
        prev_index: u64,
        index: u64,
        body: bytes::Bytes,
    },
    Error {
        service: usize,
        message: String,
    },
}

fn index_header(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// One watcher: a blocking read, and again with the returned index, until the process ends.
async fn watcher(
    client: reqwest::Client,
    url: String,
    service: usize,
    mut index: u64,
    wait_secs: u64,
    events: mpsc::UnboundedSender<Event>,
) {
    loop {
        let result = async {
            let resp = client
                .get(format!("{url}?index={index}&wait={wait_secs}s"))
                .send()
                .await?;
            let status = resp.status();
            let new_index = index_header(&resp);
            // Reading the whole body completes the response and frees the connection.
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, new_index, body))
        }
        .await;
        let at = Instant::now();
        let event = match result {
            Ok((status, Some(new_index), body)) if status == reqwest::StatusCode::OK => {
                let prev_index = index;
                index = new_index;
                Event::Response {
                    service,
                    at,
                    prev_index,
                    index: new_index,
                    body,
                }
            }
            Ok((status, _, body)) => Event::Error {
                service,
                message: format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            },
            Err(e) => Event::Error {
                service,
                message: format!("{e:?}"),
            },
        };
        let failed = matches!(event, Event::Error { .. });
        if events.send(event).is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Request errors, and responses that came outside any round (before the first change or
/// between rounds): those are unexpected wakeups.
#[derive(Default)]
struct Tally {
    errors: u64,
    first_error: Option<String>,
    outside_rounds: u64,
}

impl Tally {
    fn error(&mut self, service: usize, message: String) {
        self.errors += 1;
        self.first_error
            .get_or_insert_with(|| format!("watcher of service #{service}: {message}"));
    }

    /// Takes every pending event; a response here is one no change asked for.
    fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<Event>) {
        while let Ok(ev) = rx.try_recv() {
            match ev {
                Event::Response { .. } => self.outside_rounds += 1,
                Event::Error { service, message } => self.error(service, message),
            }
        }
    }
}

// ----- /proc -----

#[derive(Default, Clone, Copy)]
struct ProcStats {
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
    fds: u64,
    /// utime + stime, seconds.
    cpu_secs: f64,
}

fn proc_stats(pid: u32) -> Option<ProcStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / ticks;
    Some(ProcStats {
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
        cpu_secs: cpu,
    })
}

/// The soft `Max open files` of a process, from /proc/<pid>/limits.
fn fd_limit_of(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises this process's soft fd limit to its hard limit; returns the new soft limit.
#[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every target
fn raise_fd_limit() -> u64 {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim = wanted;
            }
        }
        lim.rlim_cur as u64
    }
}

// ----- stats -----

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A latency series (µs), sorted on demand.
#[derive(Default)]
struct Series(Vec<i64>);

impl Series {
    fn push(&mut self, d: i64) {
        self.0.push(d);
    }
    fn summary(&mut self) -> (f64, f64, f64) {
        self.0.sort_unstable();
        (
            ms(common::percentile(&self.0, 0.50)),
            ms(common::percentile(&self.0, 0.99)),
            ms(self.0.last().copied().unwrap_or(0)),
        )
    }
}

fn us_since(from: Instant, to: Instant) -> i64 {
    if to >= from {
        (to - from).as_micros() as i64
    } else {
        -((from - to).as_micros() as i64)
    }
}

// ----- the run -----

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("blocking_wake: {msg}");
    std::process::exit(2);
}

async fn check_ok(
    resp: Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> reqwest::Response {
    match resp {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            fail(format!("{what}: {status}: {body}"))
        }
        Err(e) => fail(format!("{what}: {e:?}")),
    }
}

fn name_of(args: &Args, i: usize) -> String {
    format!("{}{i:04}", args.prefix)
}

async fn run(args: Args, base: String) -> bool {
    let total = args.services * args.watchers_per_service;
    let w = args.watchers_per_service;
    let control = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");

    check_ok(
        control.get(format!("{base}/v1/status/leader")).send().await,
        "agent not reachable",
    )
    .await;

    // 1. Register the services.
    let started = Instant::now();
    let names: Vec<String> = (0..args.services).map(|i| name_of(&args, i)).collect();
    futures_util::stream::iter(names.iter().enumerate())
        .for_each_concurrent(args.setup_concurrency, |(i, name)| {
            let control = &control;
            let base = &base;
            async move {
                let body = serde_json::json!({
                    "ID": name,
                    "Name": name,
                    "Port": 10000 + i,
                    "Tags": ["bench"],
                    "Check": {"TTL": "1h", "Status": "passing"},
                });
                check_ok(
                    control
                        .put(format!("{base}/v1/agent/service/register"))
                        .json(&body)
                        .send()
                        .await,
                    &format!("registering {name}"),
                )
                .await;
            }
        })
        .await;
    eprintln!(
        "blocking_wake: registered {} services in {:.1}s",
        args.services,
        started.elapsed().as_secs_f64()
    );

    // 2. Each service's index (and a sanity check of what the endpoint returns).
    let mut indexes = vec![0u64; args.services];
    let got: Vec<(usize, u64, serde_json::Value)> = futures_util::stream::iter(0..args.services)
        .map(|i| {
            let control = &control;
            let url = format!("{base}/v1/health/service/{}", names[i]);
            async move {
                let resp = check_ok(control.get(&url).send().await, &format!("GET {url}")).await;
                let Some(index) = index_header(&resp) else {
                    fail(format!("GET {url}: no X-Consul-Index"))
                };
                let body: serde_json::Value = resp
                    .json()
                    .await
                    .unwrap_or_else(|e| fail(format!("GET {url}: {e}")));
                (i, index, body)
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect()
        .await;
    for (i, index, body) in got {
        indexes[i] = index;
        let entries = body.as_array().map_or(0, |a| a.len());
        let has_check = body
            .pointer("/0/Checks")
            .and_then(|c| c.as_array())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["CheckID"] == format!("service:{}", names[i]).as_str())
            });
        if entries != 1 || !has_check {
            fail(format!(
                "/v1/health/service/{} returned {entries} entries (want 1, with check service:{0}): {body}",
                names[i]
            ));
        }
    }

    // 3. Park the watchers.
    let fd_limit = raise_fd_limit();
    if fd_limit < total as u64 + 256 {
        fail(format!(
            "open-file limit {fd_limit} too low for {total} watchers (raise `ulimit -n`)"
        ));
    }
    if let Some(pid) = args.agent_pid {
        if let Some(limit) = fd_limit_of(pid) {
            if limit < total as u64 + 64 {
                fail(format!(
                    "the agent's open-file limit is {limit}, too low for {total} watchers"
                ));
            }
        }
    }
    let before = args.agent_pid.and_then(proc_stats);
    let clients: Vec<reqwest::Client> = (0..args.clients.max(1))
        .map(|_| {
            reqwest::Client::builder()
                .http1_only()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(usize::MAX)
                // A watcher's connection is busy for up to wait + wait/16; keep idle ones too.
                .pool_idle_timeout(Duration::from_secs(args.wait_secs * 2 + 60))
                .build()
                .expect("http client")
        })
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let park_start = Instant::now();
    let park_deadline = park_start + Duration::from_secs_f64(args.park_timeout);
    let agent_fds_at = |pid: u32| proc_stats(pid).map_or(0, |s| s.fds);
    let mut spawned = 0usize;
    let mut tasks = Vec::with_capacity(total);
    // Watcher k watches service k % services, so every batch spreads over many services.
    while spawned < total {
        let batch = args.ramp_batch.max(1).min(total - spawned);
        for k in spawned..spawned + batch {
            let service = k % args.services;
            let client = clients[k % clients.len()].clone();
            let url = format!("{base}/v1/health/service/{}", names[service]);
            tasks.push(tokio::spawn(watcher(
                client,
                url,
                service,
                indexes[service],
                args.wait_secs,
                tx.clone(),
            )));
        }
        spawned += batch;
        // Let the agent accept one batch before starting the next.
        if let (Some(pid), Some(b)) = (args.agent_pid, before) {
            let want = b.fds + (spawned - batch) as u64;
            while agent_fds_at(pid) < want && Instant::now() < park_deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(tx);
    let mut tally = Tally::default();
    if let (Some(pid), Some(b)) = (args.agent_pid, before) {
        let want = b.fds + total as u64;
        loop {
            tally.drain(&mut rx);
            let fds = agent_fds_at(pid);
            if fds >= want {
                break;
            }
            if Instant::now() >= park_deadline {
                fail(format!(
                    "only {} of {total} watcher connections reached the agent after {:.0}s (errors: {}, first: {:?})",
                    fds.saturating_sub(b.fds),
                    args.park_timeout,
                    tally.errors,
                    tally.first_error
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let connected_secs = park_start.elapsed().as_secs_f64();
    let settle_start = args.agent_pid.and_then(proc_stats);
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    tally.drain(&mut rx);
    // 4. Memory with everything parked.
    let parked = args.agent_pid.and_then(proc_stats);
    let idle_cpu = match (settle_start, parked) {
        (Some(a), Some(b)) => Some((b.cpu_secs - a.cpu_secs) / args.settle),
        _ => None,
    };
    let client_rss_kb = proc_stats(std::process::id()).map_or(0, |s| s.rss_kb);
    eprintln!(
        "blocking_wake: {total} watchers parked ({connected_secs:.1}s to connect, {:.1}s settle); agent RSS {}",
        args.settle,
        parked.map_or("?".into(), |p| format!("{:.1} MB", mb(p.rss_kb)))
    );

    // 5. Rounds: one change at a time.
    let mut wake = Series::default();
    let mut ack = Series::default();
    let mut after_ack = Series::default();
    let mut last_of_round = Series::default();
    let (mut woken, mut missed, mut unexpected, mut stale) = (0u64, 0u64, 0u64, 0u64);
    let mut unexpected_examples: Vec<String> = Vec::new();
    let mut rng = rand::rng();
    let round_timeout = Duration::from_secs_f64(args.round_timeout);
    let gap = Duration::from_millis(args.gap_ms);
    let rounds_start = Instant::now();
    let cpu_rounds_start = args.agent_pid.and_then(proc_stats);
    for round in 0..args.rounds {
        tally.drain(&mut rx);
        let s = rng.random_range(0..args.services);
        let note = format!("round-{round}");
        let t0 = Instant::now();
        check_ok(
            control
                .put(format!(
                    "{base}/v1/agent/check/pass/service:{}?note={note}",
                    names[s]
                ))
                .send()
                .await,
            "changing the service",
        )
        .await;
        let acked = Instant::now();
        ack.push(us_since(t0, acked));
        let mut got = 0usize;
        let mut last = t0;
        // The round lasts until all of s's watchers answered (or the timeout), plus the gap.
        let mut deadline = t0 + round_timeout;
        let mut all_in = false;
        loop {
            let ev = match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(ev)) => ev,
                Ok(None) => fail("every watcher stopped"),
                Err(_) => break,
            };
            match ev {
                Event::Response {
                    service,
                    at,
                    prev_index,
                    index,
                    body,
                } => {
                    if service == s && got < w && index > prev_index {
                        got += 1;
                        woken += 1;
                        wake.push(us_since(t0, at));
                        after_ack.push(us_since(acked, at));
                        last = last.max(at);
                        let needle = note.as_bytes();
                        if !body.windows(needle.len()).any(|win| win == needle) {
                            stale += 1;
                        }
                        if got == w && !all_in {
                            all_in = true;
                            deadline = Instant::now() + gap;
                        }
                    } else {
                        unexpected += 1;
                        if unexpected_examples.len() < 5 {
                            unexpected_examples.push(format!(
                                "round {round} (changed {}): watcher of {} returned index {prev_index} -> {index}",
                                names[s], names[service]
                            ));
                        }
                    }
                }
                Event::Error { service, message } => tally.error(service, message),
            }
        }
        if got < w {
            missed += (w - got) as u64;
        } else {
            last_of_round.push(us_since(t0, last));
        }
    }
    let rounds_secs = rounds_start.elapsed().as_secs_f64();
    let after_rounds = args.agent_pid.and_then(proc_stats);
    tally.drain(&mut rx);
    let early = tally.outside_rounds;
    let errors = tally.errors;
    let first_error = tally.first_error.take();
    unexpected += early;

    // Stop the watchers (closing their connections) before deregistering.
    for t in &tasks {
        t.abort();
    }
    drop(rx);
    for t in tasks {
        let _ = t.await;
    }
    drop(clients);
    if !args.keep_services {
        futures_util::stream::iter(names.iter())
            .for_each_concurrent(args.setup_concurrency, |name| {
                let control = &control;
                let base = &base;
                async move {
                    let _ = control
                        .put(format!("{base}/v1/agent/service/deregister/{name}"))
                        .send()
                        .await;
                }
            })
            .await;
    }

    // ----- report -----
    let (w50, w99, wmax) = wake.summary();
    let (a50, a99, amax) = ack.summary();
    let (d50, d99, dmax) = after_ack.summary();
    let (l50, l99, lmax) = last_of_round.summary();
    let rss = parked.map_or(0, |p| p.rss_kb);
    let base_rss = before.map_or(0, |p| p.rss_kb);
    let per_watcher_kb = if total > 0 {
        rss.saturating_sub(base_rss) as f64 / total as f64
    } else {
        0.0
    };
    let rounds_cpu = match (cpu_rounds_start, after_rounds) {
        (Some(a), Some(b)) => Some(b.cpu_secs - a.cpu_secs),
        _ => None,
    };
    println!(
        "RESULT services={} watchers={total} rounds={} woken={woken} missed={missed} unexpected={unexpected} outside_rounds={early} stale={stale} errors={errors} wake_p50_ms={w50:.3} wake_p99_ms={w99:.3} wake_max_ms={wmax:.3} ack_p50_ms={a50:.3} ack_p99_ms={a99:.3} after_ack_p50_ms={d50:.3} after_ack_p99_ms={d99:.3} round_last_p50_ms={l50:.3} round_last_p99_ms={l99:.3} rss_mb={:.1} rss_before_mb={:.1} hwm_mb={:.1} per_watcher_kb={per_watcher_kb:.2} agent_fds={} agent_threads={} idle_cpu_pct={} client_rss_mb={:.1} connect_secs={connected_secs:.1}",
        args.services,
        args.rounds,
        mb(rss),
        mb(base_rss),
        mb(parked.map_or(0, |p| p.hwm_kb)),
        parked.map_or(0, |p| p.fds),
        parked.map_or(0, |p| p.threads),
        idle_cpu.map_or("?".into(), |c| format!("{:.2}", c * 100.0)),
        mb(client_rss_kb),
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let have_pid = parked.is_some();
    println!();
    println!(
        "Blocking wake: {total} watchers on /v1/health/service over {} services, {} rounds, load generator on the same {}-core machine",
        args.services,
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| metric | value | target |");
    println!("|---|---:|---|");
    println!("| wake latency p50 (t0 → watcher has the response) | {w50:.2} ms | |");
    println!(
        "| wake latency p99 | {w99:.2} ms | < 10 ms: {} |",
        verdict(w99 < 10.0 && woken > 0)
    );
    println!("| wake latency max | {wmax:.2} ms | |");
    println!("| change PUT acknowledged (fsync'd) p50 / p99 / max | {a50:.2} / {a99:.2} / {amax:.2} ms | |");
    println!("| wake after the PUT's ack p50 / p99 / max | {d50:.2} / {d99:.2} / {dmax:.2} ms | |");
    println!("| last of a service's {w} watchers p50 / p99 / max | {l50:.2} / {l99:.2} / {lmax:.2} ms | |");
    println!(
        "| watchers woken / missed | {woken} / {missed} | {} expected, 0 missed: {} |",
        args.rounds * w,
        verdict(missed == 0 && woken == (args.rounds * w) as u64)
    );
    println!(
        "| unexpected wakeups (other services, extra or early) | {unexpected} | 0: {} |",
        verdict(unexpected == 0)
    );
    println!("| stale bodies / request errors | {stale} / {errors} | 0 |");
    if have_pid {
        println!(
            "| agent RSS, all watchers parked | {:.1} MB | < 100 MB: {} |",
            mb(rss),
            verdict(rss < 100 * 1024)
        );
        println!(
            "| agent RSS before the watchers ({} services registered) | {:.1} MB | |",
            args.services,
            mb(base_rss)
        );
        println!("| agent RSS per parked watcher | {per_watcher_kb:.1} KB | |");
        println!(
            "| agent peak RSS (VmHWM) / fds / threads | {:.1} MB / {} / {} | |",
            mb(parked.map_or(0, |p| p.hwm_kb)),
            parked.map_or(0, |p| p.fds),
            parked.map_or(0, |p| p.threads)
        );
        println!(
            "| agent CPU while parked / during {} rounds | {} % / {} s over {rounds_secs:.1} s | |",
            args.rounds,
            idle_cpu.map_or("?".into(), |c| format!("{:.1}", c * 100.0)),
            rounds_cpu.map_or("?".into(), |c| format!("{c:.2}")),
        );
    } else {
        println!("| agent RSS | (no --agent-pid) | < 100 MB |");
    }
    println!("| time to connect {total} watchers | {connected_secs:.1} s | |");
    println!("| load generator RSS | {:.1} MB | |", mb(client_rss_kb));
    if let Some(e) = &first_error {
        eprintln!("blocking_wake: {errors} request errors; first: {e}");
    }
    for e in &unexpected_examples {
        eprintln!("blocking_wake: unexpected: {e}");
    }
    if early > 0 {
        eprintln!("blocking_wake: {early} watchers returned outside any round (before the first change or between rounds)");
    }
    unexpected == 0 && missed == 0 && stale == 0 && errors == 0
}

fn main() {
    let args = Args::parse();
    let Some(base) = common::loopback_base(
        "blocking_wake",
        args.url.as_deref(),
        "benches/run-blocking.sh",
    ) else {
        return;
    };
    assert!(
        args.services > 0 && args.services <= 10_000 && args.watchers_per_service > 0,
        "--services must be in 1..=10000 and --watchers-per-service positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = runtime.block_on(run(args, base));
    // Don't wait for aborted watchers' sockets to wind down.
    runtime.shutdown_background();
    if !ok {
        std::process::exit(1);
    }
}
