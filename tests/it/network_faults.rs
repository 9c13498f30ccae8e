//! Hostile and faulty clients: slow headers, bodies never finished, transfer codings Go's
//! server refuses, running out of file descriptors, and a flood of connections on top of
//! thousands of parked blocking queries. Each test fails if its protection is removed.

use crate::common::{free_port, wait_ready, TestAgent};
use legate::http::{BODY_IDLE_TIMEOUT, HEADER_READ_TIMEOUT};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (or `within` passes, which fails the test); returns what came.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "connection still open after {within:?}");
    String::from_utf8_lossy(&out).into_owned()
}

/// Held by the tests that measure `/v1/status/leader` under load, so that they don't load the
/// machine for each other.
pub(crate) static LATENCY_MEASUREMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The latency most probes stay under: the 90th percentile of `latencies` (a probe or two may
/// meet the machine's other work: other tests, other builds).
pub(crate) fn p90(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[latencies.len() * 9 / 10 - 1]
}

/// Time for one `GET /v1/status/leader` on a new connection, up to the end of its headers.
pub(crate) async fn leader_latency(addr: &str) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    started.elapsed()
}

#[tokio::test]
async fn connections_dribbling_their_headers_are_cut() {
    let a = TestAgent::start().await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr(&a.base)).await.unwrap();
        s.write_all(b"GET /v1/status/leader HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // One header byte a second, never finishing.
    let dribble = async {
        for _ in 0..(HEADER_READ_TIMEOUT.as_secs() + 3) {
            for s in &mut slow {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let probe = async {
        // Meanwhile the agent answers others as usual.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(leader_latency(&addr(&a.base)).await < Duration::from_secs(1));
    };
    tokio::join!(dribble, probe);
    for s in &mut slow {
        read_until_closed(s, Duration::from_secs(2)).await;
    }
    assert!(started.elapsed() >= HEADER_READ_TIMEOUT);
}

#[tokio::test]
async fn a_body_that_is_never_finished_is_cut_and_nothing_is_written() {
    let a = TestAgent::start().await;
    let mut s = TcpStream::connect(addr(&a.base)).await.unwrap();
    s.write_all(b"PUT /v1/kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut s, BODY_IDLE_TIMEOUT + Duration::from_secs(5)).await;
    assert!(started.elapsed() >= BODY_IDLE_TIMEOUT - Duration::from_secs(1));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Failed to read body"), "{answer}");
    assert_eq!(a.get("/v1/kv/stalled").await.status(), 404);
}

/// Go's server accepts only `chunked`; hyper would store the still-gzipped body.
#[tokio::test]
async fn transfer_codings_other_than_chunked_are_not_implemented() {
    let a = TestAgent::start().await;
    let mut s = TcpStream::connect(addr(&a.base)).await.unwrap();
    s.write_all(
        b"PUT /v1/kv/coded HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{answer}"
    );
    assert!(answer.contains("content-type: text/plain; charset=utf-8"));
    assert!(
        answer.ends_with("\r\n\r\nUnsupported transfer encoding"),
        "{answer}"
    );
    assert_eq!(a.get("/v1/kv/coded").await.status(), 404);
    // Plain chunked bodies still work.
    let mut s = TcpStream::connect(addr(&a.base)).await.unwrap();
    s.write_all(
        b"PUT /v1/kv/coded HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let got = a.get("/v1/kv/coded?raw").await.text().await.unwrap();
    assert_eq!(got, "hello");
}

/// Starts the real binary with at most `max_fds` open files and `hcl` added to its config.
fn limited_agent(
    data: &std::path::Path,
    port: u16,
    max_fds: u64,
    hcl: &str,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_legate"));
    command
        .args(["agent", "-data-dir", data.to_str().unwrap()])
        .args(["-http-port", &port.to_string(), "-dns-port", "-1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if !hcl.is_empty() {
        command.args(["-hcl", hcl]);
    }
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: max_fds,
                rlim_max: max_fds,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

#[tokio::test]
async fn running_out_of_file_descriptors_does_not_stop_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = limited_agent(&dir.path().join("data"), port, 128, "");
    wait_ready(&base).await;
    // Idle keep-alive connections until the agent has no descriptor left: the kernel still
    // completes the handshakes, the accepts fail with EMFILE.
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr(&base)).await.unwrap();
        s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let starved = tokio::time::timeout(Duration::from_secs(2), leader_latency(&addr(&base))).await;
    assert!(starved.is_err(), "the agent still had descriptors to spare");
    drop(held);
    // Once descriptors are free again, accepts resume without a restart.
    let recovered =
        tokio::time::timeout(Duration::from_secs(10), leader_latency(&addr(&base))).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(recovered.is_ok(), "the listener did not recover");
}

/// 10,000 blocking queries parked on one key, then a flood of connections that open and close:
/// `/v1/status/leader` on a new connection still answers within 100 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_blocking_queries_and_a_connection_flood_leave_the_agent_responsive() {
    const PARKED: usize = 10_000;
    let _alone = LATENCY_MEASUREMENT.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hcl = "limits { http_max_conns_per_client = 20000 }";
    let mut child = limited_agent(&dir.path().join("data"), port, 20_000, hcl);
    wait_ready(&base).await;
    let target = addr(&base);
    let put = reqwest::Client::new()
        .put(format!("{base}/v1/kv/parked"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let mut parked = Vec::with_capacity(PARKED);
    for _ in 0..PARKED {
        let mut s = TcpStream::connect(&target).await.unwrap();
        s.write_all(b"GET /v1/kv/parked?index=1000000&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        parked.push(s);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (target, stop) = (target.clone(), stop.clone());
        tokio::spawn(async move {
            let mut opened = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch: Vec<_> = (0..50).map(|_| TcpStream::connect(&target)).collect();
                for c in futures_util::future::join_all(batch).await {
                    opened += u64::from(c.is_ok());
                }
            }
            opened
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two rounds of probes, the better one judged: the rest of the test suite shares the
    // machine's two cores, and one round can land on a burst of it. Without the protection
    // both rounds are far past the limit.
    let mut rounds = Vec::new();
    for _ in 0..2 {
        let mut latencies = Vec::new();
        for _ in 0..20 {
            latencies.push(leader_latency(&target).await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rounds.push(latencies);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(parked);
    // Connections keep opening and closing all through the probes (on a loaded machine a few
    // hundred a second).
    assert!(opened >= 200, "the flood opened only {opened} connections");
    let best = rounds.iter().map(|r| p90(r.clone())).min().unwrap();
    assert!(best < Duration::from_millis(100), "{rounds:?}");
}
