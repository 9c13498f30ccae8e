//! Health-check runners: periodic HTTP, TCP and script probes, as Consul's agent runs them
//! (`agent/checks/check.go`). TTL and alias checks are the agent's; this module only provides
//! their output truncation helper, [`truncate_ttl_output`].
//!
//! [`spawn`] starts one check as a tokio task. Timing: the first run comes after a random
//! stagger in `[0, interval)`, then one run every `interval` after the previous run finished;
//! intervals under [`MIN_INTERVAL`] are raised to it. Each probe result goes through a
//! [`StatusHandler`] (success/failure thresholds), and whatever it lets through is handed to
//! the [`CheckSink`] — on every run, changed or not.
//!
//! Probes (defaults in brackets):
//! * HTTP [`HttpSpec`] — timeout [10s]; 2xx passing, 429 warning, anything else critical;
//!   output `HTTP <METHOD> <url>: <code> <reason> Output: <last N bytes of the body>`;
//!   a transport error is critical with Go-style text (`Get "<url>": <cause>`).
//! * TCP — timeout [10s]; passing `TCP connect <addr>: Success`, else critical with the dial
//!   error (`dial tcp <addr>: connect: connection refused`).
//! * Script (argv, no shell) — timeout [30s]; exit 0 passing, 1 warning, else critical; output
//!   is stdout+stderr, last N bytes, prefixed `Captured N of M bytes\n...\n` when cut. Like
//!   Consul, a timeout (`Timed out (30s) running check`, plus `\n\n<output>` if any) or a
//!   failure to start the program is reported as critical *directly*, bypassing the
//!   thresholds.
//!
//! N is `output_max_size`, [`DEFAULT_OUTPUT_MAX_SIZE`] (4096) when 0.

mod http;
pub(crate) mod output;
mod script;
mod status;
mod tcp;

pub use self::http::{ACCEPT_DEFAULT, USER_AGENT_DEFAULT};
pub use self::output::{truncate_ttl_output, DEFAULT_OUTPUT_MAX_SIZE};
pub use self::status::StatusHandler;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shortest interval a check runs at (Consul's `MinInterval`).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Default timeout of HTTP checks.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default (dial) timeout of TCP checks.
pub const DEFAULT_TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of script checks.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A check's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

impl CheckStatus {
    /// Consul's spelling: `passing`, `warning`, `critical`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string other than `passing`, `warning` or `critical` (matching is exact, as in
/// Consul). Holds the rejected text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCheckStatusError(pub String);

impl fmt::Display for ParseCheckStatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid check status: '{}'", self.0)
    }
}

impl std::error::Error for ParseCheckStatusError {}

impl FromStr for CheckStatus {
    type Err = ParseCheckStatusError;

    fn from_str(s: &str) -> Result<CheckStatus, ParseCheckStatusError> {
        match s {
            "passing" => Ok(CheckStatus::Passing),
            "warning" => Ok(CheckStatus::Warning),
            "critical" => Ok(CheckStatus::Critical),
            other => Err(ParseCheckStatusError(other.to_string())),
        }
    }
}

/// An HTTP check's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpSpec {
    pub url: String,
    /// `""` means `GET`. Sent (and shown in the output) as given.
    pub method: String,
    /// Request headers. A `Host` entry sets the request's host (first value);
    /// `User-Agent` and `Accept` get defaults when absent or empty.
    pub header: BTreeMap<String, Vec<String>>,
    /// Request body, sent as given (nothing when empty).
    pub body: String,
    pub tls_skip_verify: bool,
    /// HTTPS only: the DNS name for SNI and certificate verification instead of the URL's host
    /// (an IP address here is ignored).
    pub tls_server_name: String,
    /// Report the 3xx response itself (critical) instead of following it.
    pub disable_redirects: bool,
}

/// What a check probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeSpec {
    Http(HttpSpec),
    /// `host:port`.
    Tcp {
        addr: String,
    },
    /// argv: `args[0]` is the program, looked up in `PATH`; no shell.
    Script {
        args: Vec<String>,
    },
}

/// A periodic check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSpec {
    pub probe: ProbeSpec,
    /// Raised to [`MIN_INTERVAL`] when shorter.
    pub interval: Duration,
    /// `None` or zero: the probe's default (HTTP 10s, TCP 10s, script 30s).
    pub timeout: Option<Duration>,
    /// Output limit in bytes; 0 means [`DEFAULT_OUTPUT_MAX_SIZE`].
    pub output_max_size: usize,
    pub success_before_passing: u32,
    /// 0 means the same as `failures_before_critical`.
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
}

/// Receives a check's results. Called from the runner's task; keep it quick and non-blocking.
pub trait CheckSink: Send + Sync + 'static {
    fn report(&self, check_id: &str, status: CheckStatus, output: String);
}

/// A running check. Dropping it, or calling [`RunnerHandle::stop`], stops the check: an
/// in-flight probe is abandoned (a script's process group is killed) and nothing more is
/// reported. Only [`RunnerHandle::stop_and_wait`] also waits for the task to be gone, which
/// excludes a report racing with the stop on a multi-threaded runtime.
pub struct RunnerHandle {
    task: Option<tokio::task::JoinHandle<()>>,
    stopped: Arc<AtomicBool>,
}

impl RunnerHandle {
    /// Stops the check (idempotent).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Stops the check and waits until its task has ended.
    pub async fn stop_and_wait(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Whether the runner's task has ended (it only ends when stopped).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for RunnerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for RunnerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunnerHandle")
            .field("stopped", &self.stopped.load(Ordering::SeqCst))
            .finish()
    }
}

/// Starts the periodic runner as a tokio task (must be called within a tokio runtime);
/// dropping (or calling stop on) the handle stops it.
pub fn spawn(check_id: String, spec: RunnerSpec, sink: Arc<dyn CheckSink>) -> RunnerHandle {
    let interval = effective_interval(spec.interval);
    let initial_delay = random_stagger(interval);
    spawn_with_timing(check_id, spec, sink, interval, initial_delay)
}

/// The interval a check really runs at.
pub fn effective_interval(interval: Duration) -> Duration {
    interval.max(MIN_INTERVAL)
}

/// A random duration in `[0, interval)` (zero for a zero interval).
fn random_stagger(interval: Duration) -> Duration {
    let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::random_range(0..nanos))
}

fn spawn_with_timing(
    check_id: String,
    spec: RunnerSpec,
    sink: Arc<dyn CheckSink>,
    interval: Duration,
    initial_delay: Duration,
) -> RunnerHandle {
    let stopped = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run_loop(
        check_id,
        spec,
        sink,
        interval,
        initial_delay,
        Arc::clone(&stopped),
    ));
    RunnerHandle {
        task: Some(task),
        stopped,
    }
}

async fn run_loop(
    check_id: String,
    spec: RunnerSpec,
    sink: Arc<dyn CheckSink>,
    interval: Duration,
    initial_delay: Duration,
    stopped: Arc<AtomicBool>,
) {
    let probe = Probe::new(&spec);
    let mut handler = StatusHandler::new(
        spec.success_before_passing,
        spec.failures_before_warning,
        spec.failures_before_critical,
    );
    tokio::time::sleep(initial_delay).await;
    loop {
        let report = match probe.run().await {
            Outcome::Probe(status, output) => handler.update(status, output),
            Outcome::Direct(status, output) => Some((status, output)),
        };
        if let Some((status, output)) = report {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            tracing::debug!(check = %check_id, status = %status, "check result");
            sink.report(&check_id, status, output);
        }
        tokio::time::sleep(interval).await;
    }
}

/// One probe run's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A result for the status thresholds to judge.
    Probe(CheckStatus, String),
    /// A result reported as is (Consul's script set-up failures and timeouts).
    Direct(CheckStatus, String),
}

/// A check's probe, prepared once (the HTTP client is built once per check).
enum Probe {
    Http(Box<http::HttpProbe>),
    Tcp {
        addr: String,
        timeout: Duration,
    },
    Script {
        args: Vec<String>,
        timeout: Duration,
        max_output: usize,
    },
}

impl Probe {
    fn new(spec: &RunnerSpec) -> Probe {
        let timeout = |default: Duration| spec.timeout.filter(|t| !t.is_zero()).unwrap_or(default);
        let max_output = output::effective_max(spec.output_max_size);
        match &spec.probe {
            ProbeSpec::Http(http_spec) => Probe::Http(Box::new(http::HttpProbe::new(
                http_spec.clone(),
                timeout(DEFAULT_HTTP_TIMEOUT),
                max_output,
            ))),
            ProbeSpec::Tcp { addr } => Probe::Tcp {
                addr: addr.clone(),
                timeout: timeout(DEFAULT_TCP_TIMEOUT),
            },
            ProbeSpec::Script { args } => Probe::Script {
                args: args.clone(),
                timeout: timeout(DEFAULT_SCRIPT_TIMEOUT),
                max_output,
            },
        }
    }

    async fn run(&self) -> Outcome {
        match self {
            Probe::Http(probe) => {
                let (status, output) = probe.run().await;
                Outcome::Probe(status, output)
            }
            Probe::Tcp { addr, timeout } => {
                let (status, output) = tcp::run(addr, *timeout).await;
                Outcome::Probe(status, output)
            }
            Probe::Script {
                args,
                timeout,
                max_output,
            } => script::run(args, *timeout, *max_output).await,
        }
    }
}

/// An I/O error as Go words it: OS errors as the lower-case errno text without the
/// ` (os error N)` suffix (`connection refused`), timeouts as `i/o timeout`.
pub(crate) fn error_text(e: &io::Error) -> String {
    if e.raw_os_error().is_some() {
        let text = e.to_string();
        let text = match text.find(" (os error ") {
            Some(at) => &text[..at],
            None => text.as_str(),
        };
        text.to_lowercase()
    } else if e.kind() == io::ErrorKind::TimedOut {
        "i/o timeout".to_string()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Local targets for the probe tests.

    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A port on 127.0.0.1 that nothing listens on.
    pub(crate) async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        port
    }

    #[derive(Debug, Clone, Default)]
    pub(crate) struct Recorded {
        pub method: String,
        pub path: String,
        /// Lower-case names, in arrival order.
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Recorded {
        pub(crate) fn header(&self, name: &str) -> Vec<&str> {
            self.headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    #[derive(Default)]
    struct Seen {
        requests: Vec<Recorded>,
        /// Connections that did not start with an HTTP request (e.g. a TLS client hello).
        raw: Vec<Vec<u8>>,
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1 answering by path:
    /// `/ok` 200 "ok"; `/status/N` N "status N"; `/redirect` 302 → `/ok` "moved";
    /// `/loop` 302 → `/loop`; `/big` 200 with 10000 bytes ending "0123456789";
    /// `/slow` answers after 10 s; anything else 404.
    pub(crate) struct TestServer {
        pub addr: SocketAddr,
        seen: Arc<Mutex<Seen>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TestServer {
        pub(crate) async fn start() -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let seen = Arc::new(Mutex::new(Seen::default()));
            let seen2 = Arc::clone(&seen);
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, Arc::clone(&seen2)));
                }
            });
            TestServer { addr, seen, task }
        }

        pub(crate) fn url(&self, path: &str) -> String {
            format!("http://{}{}", self.addr, path)
        }

        pub(crate) fn last_request(&self) -> Recorded {
            self.seen
                .lock()
                .unwrap()
                .requests
                .last()
                .cloned()
                .expect("a request")
        }

        /// The first non-HTTP connection's bytes (waits up to 2 s).
        pub(crate) async fn wait_raw(&self) -> Vec<u8> {
            for _ in 0..200 {
                if let Some(raw) = self.seen.lock().unwrap().raw.first().cloned() {
                    return raw;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no raw connection");
        }
    }

    async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        // TLS record: 0x16, version (2 bytes), length (2 bytes).
        loop {
            if data.first() == Some(&0x16) && data.len() >= 5 {
                let want = 5 + u16::from_be_bytes([data[3], data[4]]) as usize;
                if data.len() >= want {
                    seen.lock().unwrap().raw.push(data);
                    return;
                }
            }
            if let Some(end) = find(&data, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or_default().split(' ');
                let method = first.next().unwrap_or_default().to_string();
                let path = first.next().unwrap_or_default().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while data.len() < end + 4 + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
                seen.lock().unwrap().requests.push(Recorded {
                    method,
                    path: path.clone(),
                    headers,
                    body,
                });
                respond(&mut stream, &path).await;
                return;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    if !data.is_empty() {
                        seen.lock().unwrap().raw.push(data);
                    }
                    return;
                }
                Ok(n) => data.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    async fn respond(stream: &mut TcpStream, path: &str) {
        let (code, location, body): (u16, Option<&str>, String) = match path {
            "/ok" => (200, None, "ok".to_string()),
            "/redirect" => (302, Some("/ok"), "moved".to_string()),
            "/loop" => (302, Some("/loop"), "again".to_string()),
            "/big" => (200, None, "x".repeat(9990) + "0123456789"),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                (200, None, "late".to_string())
            }
            p => match p
                .strip_prefix("/status/")
                .and_then(|c| c.parse::<u16>().ok())
            {
                Some(204) => (204, None, String::new()),
                Some(code) => (code, None, format!("status {code}")),
                None => (404, None, "not found".to_string()),
            },
        };
        let reason = http::StatusCode::from_u16(code)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("Unknown");
        let mut head = format!("HTTP/1.1 {code} {reason}\r\nConnection: close\r\n");
        if code != 204 {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        if let Some(location) = location {
            head.push_str(&format!("Location: {location}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{closed_port, TestServer};
    use super::*;
    use std::time::Instant;
    use tokio::sync::mpsc;

    struct ChannelSink(mpsc::UnboundedSender<(String, CheckStatus, String)>);

    impl CheckSink for ChannelSink {
        fn report(&self, check_id: &str, status: CheckStatus, output: String) {
            let _ = self.0.send((check_id.to_string(), status, output));
        }
    }

    type Reports = mpsc::UnboundedReceiver<(String, CheckStatus, String)>;

    fn sink() -> (Arc<dyn CheckSink>, Reports) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(ChannelSink(tx)), rx)
    }

    /// Starts `spec` as check `id`, first run at once, then every `interval`.
    fn start(id: &str, spec: RunnerSpec, interval: Duration) -> (RunnerHandle, Reports) {
        let (sink, rx) = sink();
        let handle = spawn_with_timing(id.into(), spec, sink, interval, Duration::ZERO);
        (handle, rx)
    }

    fn runner(probe: ProbeSpec) -> RunnerSpec {
        RunnerSpec {
            probe,
            interval: Duration::from_secs(10),
            timeout: None,
            output_max_size: 0,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
        }
    }

    async fn next(rx: &mut Reports) -> (String, CheckStatus, String) {
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("a report in time")
            .expect("sink open")
    }

    fn sh(script: String) -> ProbeSpec {
        ProbeSpec::Script {
            args: vec!["sh".into(), "-c".into(), script],
        }
    }

    #[test]
    fn statuses_parse_and_print() {
        for status in [
            CheckStatus::Passing,
            CheckStatus::Warning,
            CheckStatus::Critical,
        ] {
            assert_eq!(status.as_str().parse::<CheckStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(
            "Passing".parse::<CheckStatus>(),
            Err(ParseCheckStatusError("Passing".to_string()))
        );
        assert_eq!(
            serde_json::to_string(&CheckStatus::Warning).unwrap(),
            "\"warning\""
        );
    }

    #[test]
    fn intervals_are_clamped_and_staggered() {
        assert_eq!(effective_interval(Duration::from_millis(10)), MIN_INTERVAL);
        assert_eq!(effective_interval(Duration::ZERO), MIN_INTERVAL);
        assert_eq!(
            effective_interval(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        for _ in 0..100 {
            assert!(random_stagger(Duration::from_secs(1)) < Duration::from_secs(1));
        }
        assert_eq!(random_stagger(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn io_errors_read_like_go() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(error_text(&refused), "connection refused");
        assert_eq!(
            error_text(&io::Error::from(io::ErrorKind::TimedOut)),
            "i/o timeout"
        );
    }

    #[tokio::test]
    async fn runs_repeatedly_and_stops_when_dropped() {
        let server = TestServer::start().await;
        let spec = runner(ProbeSpec::Http(HttpSpec {
            url: server.url("/ok"),
            ..HttpSpec::default()
        }));
        let (handle, mut rx) = start("web", spec, Duration::from_millis(30));
        for _ in 0..3 {
            let (id, status, output) = next(&mut rx).await;
            assert_eq!(id, "web");
            assert_eq!(status, CheckStatus::Passing);
            assert_eq!(
                output,
                format!("HTTP GET {}: 200 OK Output: ok", server.url("/ok"))
            );
        }
        drop(handle);
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            rx.try_recv().is_err(),
            "no report after the handle was dropped"
        );
    }

    #[tokio::test]
    async fn stop_and_wait_ends_the_task() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (handle, mut rx) = start(
            "db",
            runner(ProbeSpec::Tcp { addr: addr.clone() }),
            Duration::from_millis(20),
        );
        let (_, status, output) = next(&mut rx).await;
        assert_eq!(
            (status, output),
            (CheckStatus::Passing, format!("TCP connect {addr}: Success"))
        );
        handle.stop();
        handle.stop_and_wait().await;
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn public_spawn_clamps_the_interval() {
        let port = closed_port().await;
        let (sink, mut rx) = sink();
        let mut spec = runner(ProbeSpec::Tcp {
            addr: format!("127.0.0.1:{port}"),
        });
        spec.interval = Duration::from_millis(10);
        let started = Instant::now();
        let _handle = spawn("tcp".into(), spec, sink);
        let (_, status, output) = next(&mut rx).await;
        assert!(
            started.elapsed() < Duration::from_millis(1100),
            "stagger below the interval"
        );
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
        // With a 10ms interval there would be dozens more by now; clamped to 1s, none.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn thresholds_apply_to_probe_results() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("n");
        // Runs 3 and 4 pass, every other run fails; output is the run number.
        let script = format!(
            "n=$(cat '{0}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{0}'; \
             printf $n; case $n in 3|4) ;; *) exit 2;; esac",
            counter.display()
        );
        let mut spec = runner(sh(script));
        spec.success_before_passing = 2;
        spec.failures_before_warning = 1;
        spec.failures_before_critical = 3;
        let (_handle, mut rx) = start("s", spec, Duration::from_millis(20));
        let expected = [
            // Runs 1-2: the failure streak started at its threshold, so both are critical.
            (CheckStatus::Critical, "1"),
            (CheckStatus::Critical, "2"),
            // Run 3 is the first success of 2 (not reported); run 4 is reported.
            (CheckStatus::Passing, "4"),
            // Runs 5-6: failures 1 and 2 of 3, past the warning threshold; run 7 is critical.
            (CheckStatus::Warning, "5"),
            (CheckStatus::Warning, "6"),
            (CheckStatus::Critical, "7"),
        ];
        for (status, output) in expected {
            let (_, got_status, got_output) = next(&mut rx).await;
            assert_eq!((got_status, got_output.as_str()), (status, output));
        }
    }

    #[tokio::test]
    async fn script_timeouts_bypass_the_thresholds() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("n");
        // Run 1 passes quickly; later runs hang.
        let script = format!(
            "if [ -e '{0}' ]; then sleep 5; fi; touch '{0}'; echo fine",
            counter.display()
        );
        let mut spec = runner(sh(script));
        spec.timeout = Some(Duration::from_millis(200));
        spec.failures_before_critical = 3;
        let (_handle, mut rx) = start("s", spec, Duration::from_millis(20));
        let (_, status, output) = next(&mut rx).await;
        assert_eq!((status, output.as_str()), (CheckStatus::Passing, "fine\n"));
        let (_, status, output) = next(&mut rx).await;
        assert_eq!(
            (status, output.as_str()),
            (CheckStatus::Critical, "Timed out (200ms) running check")
        );
    }

    #[tokio::test]
    async fn output_max_size_applies_to_runs() {
        let mut spec = runner(sh("printf 0123456789".to_string()));
        spec.output_max_size = 4;
        let (_handle, mut rx) = start("s", spec, Duration::from_secs(10));
        let (_, status, output) = next(&mut rx).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, "Captured 4 of 10 bytes\n...\n6789");
    }
}
