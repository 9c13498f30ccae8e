//! `legate lock [options] PREFIX CHILD...`, as `consul lock`: runs CHILD while holding a lock
//! (or, with `-n N` > 1, one of N semaphore slots) under PREFIX in the KV store.
//!
//! The protocol is the Go `api` package's, so `legate lock` and `consul lock` (or any client of
//! `api.Lock` / `api.Semaphore`) exclude each other on the same prefix:
//!
//! * **lock** (`-n 1`): a session (TTL 15s, renewed every TTL/2, lock-delay 15s) acquires
//!   `PREFIX/.lock` with `?acquire=` and the lock flag value; a contender waits with blocking
//!   queries on that key until it has no holder, and retries every 5s while a lock-delay is in
//!   force;
//! * **semaphore** (`-n N`): each contender acquires its own key `PREFIX/<session>` with a
//!   session whose behavior is `delete`, then adds itself to the JSON document at
//!   `PREFIX/.lock` (`{"Limit":N,"Holders":{"<session>":true}}`) by check-and-set once fewer
//!   than N live holders are listed (holders whose contender key is gone are pruned).
//!
//! Once held, a monitor watches the key (blocking queries; `-monitor-retry` 5xx or transport
//! errors are ridden out, 1s apart). If the lock is lost, or the command gets SIGINT/SIGTERM
//! (forwarded to the child), the child gets SIGTERM, then SIGKILL after 5s. When the child
//! exits, the lock is released, the session destroyed and the lock key removed if no one else
//! uses it. The exit code is the child's (128 + N for a signal N; 1 when the child had to be
//! stopped yet exited 0), or 1 when the lock could not be had.

use super::client::{Client, HttpFlags, Response};
use crate::types::KvEntry;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// The flags `api.Lock` writes on its key, so a lock and a semaphore on one prefix conflict.
pub const LOCK_FLAG_VALUE: u64 = 0x2ddc_cbc0_58a5_0c18;
/// The flags `api.Semaphore` writes on its keys.
pub const SEMAPHORE_FLAG_VALUE: u64 = 0xe0f6_9a2b_aa41_4de0;
/// The key under the prefix that the lock, or the semaphore's holder list, lives at.
pub const LOCK_KEY: &str = ".lock";

const SESSION_TTL: Duration = Duration::from_secs(15);
const LOCK_DELAY: &str = "15s";
/// How long one blocking read waits while contending (bounds how late a timeout is noticed).
const WAIT_TIME: Duration = Duration::from_secs(15);
/// The pause after an acquire refused by a lock-delay.
const RETRY_TIME: Duration = Duration::from_secs(5);
const MONITOR_RETRY_TIME: Duration = Duration::from_secs(1);
/// Between SIGTERM and SIGKILL for a child that must stop.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Limit on the number of concurrent lock holders; above 1 a semaphore is used.
    #[arg(
        short = 'n',
        long = "n",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    limit: i64,
    /// Name of the lock session (default: derived from the child command and prefix).
    #[arg(long)]
    name: Option<String>,
    /// Pass stdin to the child process.
    #[arg(long = "pass-stdin", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pass_stdin: Option<bool>,
    /// Run the child through a shell (`$SHELL -c`, /bin/sh by default). Default true.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    shell: Option<bool>,
    /// Maximum time to wait for the lock (a Go duration, e.g. `1s`); 0 waits forever.
    #[arg(long)]
    timeout: Option<String>,
    /// Deprecated alias of -timeout.
    #[arg(long = "try")]
    try_timeout: Option<String>,
    /// 5xx responses (or transport errors) tolerated, 1s apart, while monitoring the lock.
    #[arg(
        long = "monitor-retry",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    monitor_retry: i64,
    /// Print what the lock is doing.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    verbose: Option<bool>,
    /// Accepted for consul compatibility: the child's exit code is always propagated.
    #[arg(long = "child-exit-code", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    child_exit_code: Option<bool>,
    /// PREFIX followed by the child command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Flags of `lock` that take a value (`-flag value` consumes the next word).
pub const VALUE_FLAGS: &[&str] = &[
    "http-addr",
    "token",
    "token-file",
    "datacenter",
    "n",
    "name",
    "timeout",
    "try",
    "monitor-retry",
];

fn on(flag: Option<bool>, default: bool) -> bool {
    flag.unwrap_or(default)
}

pub async fn run(args: LockArgs) -> i32 {
    match run_lock(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

async fn run_lock(args: LockArgs) -> Result<i32, String> {
    super::no_undefined_flag(&args.args)?;
    if args.limit <= 0 {
        return Err("Lock holder limit must be positive".into());
    }
    if args.args.len() < 2 {
        return Err("Key prefix and child command must be specified".into());
    }
    let prefix = args.args[0].trim_start_matches('/').to_string();
    let child_args = args.args[1..].to_vec();
    let timeout = match args.timeout.as_deref().or(args.try_timeout.as_deref()) {
        None => Duration::ZERO,
        Some(text) => crate::duration::parse(text).map_err(|e| {
            if text.starts_with('-') {
                "Timeout must be positive".to_string()
            } else {
                format!("invalid value {text:?} for -timeout: {e}")
            }
        })?,
    };
    if args.monitor_retry < 0 {
        return Err("Number for 'monitor-retry' must be >= 0".into());
    }
    let verbose = on(args.verbose, false);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("Consul lock for '{}' at '{}'", child_args.join(" "), prefix));
    let _ = args.child_exit_code;

    let api = Api::new(&args.http).map_err(|e| format!("Error connecting to Consul agent: {e}"))?;
    let reply = api
        .call(Method::GET, "/v1/agent/self", &[], None)
        .await
        .and_then(Reply::ok)
        .map_err(|e| format!("Error querying Consul agent: {e}"))?;
    drop(reply);

    let (stop_tx, stop_rx) = watch::channel::<Option<i32>>(None);
    let signals = spawn_signal_listener(stop_tx).map_err(|e| format!("signals: {e}"))?;

    let mode = if args.limit == 1 {
        let key = join(&prefix, LOCK_KEY);
        if verbose {
            println!("Setting up lock at path: {key}");
        }
        Mode::Lock { key }
    } else {
        if verbose {
            println!(
                "Setting up semaphore (limit {}) at prefix: {prefix}",
                args.limit
            );
        }
        Mode::Semaphore {
            prefix: prefix.clone(),
            limit: args.limit,
        }
    };

    if verbose {
        println!("Attempting lock acquisition");
    }
    let session = create_session(&api, &name, mode.behavior())
        .await
        .map_err(|e| format!("Lock acquisition failed: failed to create session: {e}"))?;
    let (renew_stop, renew_stop_rx) = watch::channel(false);
    let renewer = tokio::spawn(renew_periodically(
        api.clone(),
        session.clone(),
        renew_stop_rx,
    ));
    let holder = Holder {
        api: api.clone(),
        mode,
        session: session.clone(),
    };
    let end_session = |renewer: tokio::task::JoinHandle<()>| {
        let api = api.clone();
        let session = session.clone();
        async move {
            let _ = renew_stop.send(true);
            let _ = renewer.await;
            let _ = api
                .call(
                    Method::PUT,
                    &format!("/v1/session/destroy/{}", segment(&session)),
                    &[],
                    None,
                )
                .await;
        }
    };

    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    let acquired = tokio::select! {
        r = holder.acquire(deadline) => r,
        _ = stopped(stop_rx.clone()) => Ok(false),
    };
    match acquired {
        Ok(true) => {}
        Ok(false) => {
            holder.abandon().await;
            end_session(renewer).await;
            signals.abort();
            return Err("Shutdown triggered or timeout during lock acquisition".into());
        }
        Err(e) => {
            holder.abandon().await;
            end_session(renewer).await;
            signals.abort();
            return Err(format!("Lock acquisition failed: {e}"));
        }
    }

    let monitor = tokio::spawn(holder.clone().monitor(args.monitor_retry as u32));
    let code = if stop_rx.borrow().is_some() {
        eprintln!("Shutdown triggered during lock acquisition");
        1
    } else {
        run_child(
            &child_args,
            on(args.shell, true),
            on(args.pass_stdin, false),
            verbose,
            monitor,
            stop_rx.clone(),
        )
        .await
    };

    let released = holder.release().await;
    end_session(renewer).await;
    signals.abort();
    if let Err(e) = released {
        return Err(format!("Lock release failed: {e}"));
    }
    match holder.cleanup().await {
        Ok(true) => {
            if verbose {
                println!("Cleanup succeeded");
            }
        }
        Ok(false) => {
            if verbose {
                println!("Cleanup aborted, lock in use");
            }
        }
        Err(e) => return Err(format!("Lock cleanup failed: {e}")),
    }
    Ok(code)
}

/// Runs the child until it exits, the lock is lost or a signal asks us to stop; returns the
/// exit code to report.
async fn run_child(
    args: &[String],
    shell: bool,
    pass_stdin: bool,
    verbose: bool,
    mut monitor: tokio::task::JoinHandle<()>,
    stop: watch::Receiver<Option<i32>>,
) -> i32 {
    if verbose {
        println!("Starting handler");
    }
    let command = if shell {
        Some(crate::watch::handler::shell_command(&args.join(" ")))
    } else {
        crate::watch::handler::handler_command(args)
    };
    let Some(mut command) = command else {
        eprintln!("Error starting handler: no command to run");
        monitor.abort();
        return 127;
    };
    command
        .env("CONSUL_LOCK_HELD", "true")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // The child (and whatever it starts) gets its own process group, so stopping it stops its
    // descendants too; with -pass-stdin it stays in ours, where it may read the terminal.
    let own_group = !pass_stdin;
    if pass_stdin {
        if verbose {
            println!("Stdin passed to handler process");
        }
        command.stdin(Stdio::inherit());
    } else {
        command.stdin(Stdio::null()).process_group(0);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error starting handler: {e}");
            monitor.abort();
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let pid = child.id().unwrap_or(0) as i32;
    let signal_child = move |sig: i32| {
        if pid > 0 {
            // SAFETY: kill(2) with a pid (or process group) we started.
            unsafe {
                libc::kill(if own_group { -pid } else { pid }, sig);
            }
        }
    };
    let (exit_tx, mut exit_rx) = oneshot::channel::<std::io::Result<ExitStatus>>();
    tokio::spawn(async move {
        let _ = exit_tx.send(child.wait().await);
    });

    let reason = tokio::select! {
        status = &mut exit_rx => {
            monitor.abort();
            if verbose {
                println!("Child terminated, releasing lock");
            }
            return exit_code(status.ok());
        }
        _ = &mut monitor => "Lock lost, killing child",
        _ = stopped(stop.clone()) => {
            if let Some(sig) = *stop.borrow() {
                signal_child(sig);
            }
            "Shutdown triggered, killing child"
        }
    };
    monitor.abort();
    eprintln!("{reason}");
    if verbose {
        println!("Terminating child pid {pid}");
    }
    signal_child(libc::SIGTERM);
    let status = match tokio::time::timeout(KILL_GRACE, &mut exit_rx).await {
        Ok(status) => {
            if verbose {
                println!("Child terminated");
            }
            status.ok()
        }
        Err(_) => {
            if verbose {
                println!("Child did not exit after grace period of 5s");
                println!("Killing child pid {pid}");
            }
            signal_child(libc::SIGKILL);
            exit_rx.await.ok()
        }
    };
    match exit_code(status) {
        0 => 1,
        code => code,
    }
}

fn exit_code(status: Option<std::io::Result<ExitStatus>>) -> i32 {
    match status {
        Some(Ok(s)) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        _ => 1,
    }
}

/// Records SIGINT/SIGTERM in `tx` (the latest one wins), for the whole run.
fn spawn_signal_listener(
    tx: watch::Sender<Option<i32>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = interrupt.recv() => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
            };
            tx.send_replace(Some(sig));
        }
    }))
}

/// Resolves once a stop was requested (never, if nobody can request one any more).
async fn stopped(mut rx: watch::Receiver<Option<i32>>) {
    if rx.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

// --- HTTP ---------------------------------------------------------------------------------------

/// The agent's HTTP API (the shared CLI client) with the KV calls a lock needs.
#[derive(Clone)]
struct Api {
    client: Client,
}

type Reply = Response;

impl Api {
    fn new(flags: &HttpFlags) -> Result<Api, String> {
        Ok(Api {
            client: Client::new(flags)?,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, String> {
        self.client.send(method, path, query, body).await
    }

    /// Reads one key (blocking when `index` > 0): the answer's index and the entry, if any.
    async fn get(
        &self,
        key: &str,
        index: u64,
        wait: Option<Duration>,
    ) -> Result<(u64, Option<KvEntry>), Failure> {
        let reply = self
            .call(Method::GET, &kv_path(key), &blocking(index, wait), None)
            .await
            .map_err(Failure::Transport)?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok((reply.index, None)),
            StatusCode::OK => {
                let mut entries: Vec<KvEntry> = decode(&reply.body).map_err(Failure::Other)?;
                Ok((reply.index, entries.pop()))
            }
            _ => Err(Failure::status(reply)),
        }
    }

    /// Lists the keys starting with `prefix` (blocking when `index` > 0).
    async fn list(
        &self,
        prefix: &str,
        index: u64,
        wait: Option<Duration>,
    ) -> Result<(u64, Vec<KvEntry>), Failure> {
        let mut query = blocking(index, wait);
        query.push(("recurse", String::new()));
        let reply = self
            .call(Method::GET, &kv_path(prefix), &query, None)
            .await
            .map_err(Failure::Transport)?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok((reply.index, Vec::new())),
            StatusCode::OK => Ok((reply.index, decode(&reply.body).map_err(Failure::Other)?)),
            _ => Err(Failure::status(reply)),
        }
    }

    /// A KV write with its query (`acquire`, `release`, `cas`, `flags`); true when it applied.
    async fn put(
        &self,
        key: &str,
        query: &[(&str, String)],
        value: Vec<u8>,
    ) -> Result<bool, String> {
        let reply = self
            .call(Method::PUT, &kv_path(key), query, Some(value))
            .await?
            .ok()?;
        Ok(reply.is_true())
    }

    async fn delete(&self, key: &str, query: &[(&str, String)]) -> Result<bool, String> {
        let reply = self
            .call(Method::DELETE, &kv_path(key), query, None)
            .await?
            .ok()?;
        Ok(reply.is_true())
    }
}

/// Why a read failed: the monitor rides out transport errors and 5xx answers only.
enum Failure {
    Transport(String),
    Status(StatusCode, String),
    Other(String),
}

impl Failure {
    fn status(reply: Reply) -> Failure {
        Failure::Status(
            reply.status,
            format!(
                "Unexpected response code: {} ({})",
                reply.status.as_u16(),
                String::from_utf8_lossy(&reply.body)
            ),
        )
    }

    fn retryable(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status(status, _) => status.is_server_error(),
            Failure::Other(_) => false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(m) | Failure::Status(_, m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

fn blocking(index: u64, wait: Option<Duration>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if index > 0 {
        query.push(("index", index.to_string()));
        if let Some(wait) = wait {
            query.push(("wait", format!("{}ms", wait.as_millis().max(1))));
        }
    }
    query
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("cannot decode response: {e}"))
}

fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn kv_path(key: &str) -> String {
    let encoded: Vec<String> = key.split('/').map(segment).collect();
    format!("/v1/kv/{}", encoded.join("/"))
}

/// `path.Join(prefix, name)`: empty segments dropped.
fn join(prefix: &str, name: &str) -> String {
    prefix
        .split('/')
        .chain(std::iter::once(name))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

// --- session ------------------------------------------------------------------------------------

async fn create_session(api: &Api, name: &str, behavior: &str) -> Result<String, String> {
    let body = serde_json::json!({
        "Name": name,
        "TTL": crate::duration::format(SESSION_TTL),
        "LockDelay": LOCK_DELAY,
        "Behavior": behavior,
    });
    let reply = api
        .call(
            Method::PUT,
            "/v1/session/create",
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await?
        .ok()?;
    #[derive(Deserialize)]
    struct Created {
        #[serde(rename = "ID")]
        id: String,
    }
    Ok(decode::<Created>(&reply.body)?.id)
}

/// Renews the session every TTL/2 (following a TTL the agent changes) until told to stop or
/// the session is gone; transport errors are retried until a whole TTL passed without renewal.
async fn renew_periodically(api: Api, session: String, mut stop: watch::Receiver<bool>) {
    #[derive(Deserialize)]
    struct Renewed {
        #[serde(rename = "TTL", default)]
        ttl: String,
    }
    let path = format!("/v1/session/renew/{}", segment(&session));
    let mut ttl = SESSION_TTL;
    let mut last_renewal = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ttl / 2) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match api.call(Method::PUT, &path, &[], None).await {
            Ok(reply) if reply.status == StatusCode::OK => {
                last_renewal = Instant::now();
                if let Ok(entries) = decode::<Vec<Renewed>>(&reply.body) {
                    if let Some(d) = entries
                        .first()
                        .and_then(|e| crate::duration::parse(&e.ttl).ok())
                        .filter(|d| !d.is_zero())
                    {
                        ttl = d;
                    }
                }
            }
            // The session is gone (404) or refused: the monitor notices the lock is lost.
            Ok(reply) if !reply.status.is_server_error() => return,
            _ if last_renewal.elapsed() >= ttl => return,
            _ => {}
        }
    }
}

// --- lock and semaphore -------------------------------------------------------------------------

#[derive(Clone)]
enum Mode {
    Lock { key: String },
    Semaphore { prefix: String, limit: i64 },
}

impl Mode {
    fn behavior(&self) -> &'static str {
        match self {
            Mode::Lock { .. } => "release",
            Mode::Semaphore { .. } => "delete",
        }
    }
}

/// The semaphore's coordination document at `PREFIX/.lock`.
#[derive(Debug, Serialize, Deserialize)]
struct SemaphoreDoc {
    #[serde(rename = "Limit")]
    limit: i64,
    #[serde(rename = "Holders", default, deserialize_with = "null_as_empty")]
    holders: BTreeMap<String, bool>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, bool>, D::Error> {
    Ok(Option::<BTreeMap<String, bool>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone)]
struct Holder {
    api: Api,
    mode: Mode,
    session: String,
}

impl Holder {
    /// Contends until held (true) or `deadline` passed (false).
    async fn acquire(&self, deadline: Option<Instant>) -> Result<bool, String> {
        match &self.mode {
            Mode::Lock { key } => self.acquire_lock(key, deadline).await,
            Mode::Semaphore { prefix, limit } => {
                self.acquire_semaphore(prefix, *limit, deadline).await
            }
        }
    }

    /// The wait of the next blocking read; None once the deadline passed.
    fn next_wait(deadline: Option<Instant>) -> Option<Duration> {
        match deadline {
            None => Some(WAIT_TIME),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(WAIT_TIME))
            }
        }
    }

    async fn acquire_lock(&self, key: &str, deadline: Option<Instant>) -> Result<bool, String> {
        let mut index = 0;
        loop {
            let Some(wait) = Self::next_wait(deadline) else {
                return Ok(false);
            };
            let (last, pair) = self
                .api
                .get(key, index, Some(wait))
                .await
                .map_err(|e| format!("failed to read lock: {e}"))?;
            if let Some(pair) = &pair {
                if pair.flags != LOCK_FLAG_VALUE {
                    return Err("Existing key does not match lock use".into());
                }
                if pair.session == self.session {
                    return Ok(true);
                }
                if !pair.session.is_empty() {
                    index = last;
                    continue;
                }
            }
            let query = [
                ("acquire", self.session.clone()),
                ("flags", LOCK_FLAG_VALUE.to_string()),
            ];
            if self
                .api
                .put(key, &query, Vec::new())
                .await
                .map_err(|e| format!("failed to acquire lock: {e}"))?
            {
                return Ok(true);
            }
            // Refused: held by someone faster (wait on the key), or a lock-delay (pause).
            let (last, pair) = self
                .api
                .get(key, 0, None)
                .await
                .map_err(|e| format!("failed to read lock: {e}"))?;
            if pair.is_some_and(|p| !p.session.is_empty()) {
                index = last;
                continue;
            }
            index = 0;
            let pause = match deadline {
                None => RETRY_TIME,
                Some(d) => RETRY_TIME.min(d.saturating_duration_since(Instant::now())),
            };
            tokio::time::sleep(pause).await;
        }
    }

    fn contender_key(&self, prefix: &str) -> String {
        join(prefix, &self.session)
    }

    async fn acquire_semaphore(
        &self,
        prefix: &str,
        limit: i64,
        deadline: Option<Instant>,
    ) -> Result<bool, String> {
        let contender = [
            ("acquire", self.session.clone()),
            ("flags", SEMAPHORE_FLAG_VALUE.to_string()),
        ];
        let made = self
            .api
            .put(&self.contender_key(prefix), &contender, Vec::new())
            .await
            .map_err(|e| format!("failed to make contender entry: {e}"))?;
        if !made {
            return Err("failed to make contender entry".into());
        }
        let lock_key = join(prefix, LOCK_KEY);
        let mut index = 0;
        loop {
            let Some(wait) = Self::next_wait(deadline) else {
                return Ok(false);
            };
            let (last, pairs) = self
                .api
                .list(prefix, index, Some(wait))
                .await
                .map_err(|e| format!("failed to read prefix: {e}"))?;
            let (doc_index, mut doc) = semaphore_doc(&pairs, &lock_key, limit)?;
            if doc.limit != limit {
                return Err(format!(
                    "semaphore limit conflict (lock: {}, local: {limit})",
                    doc.limit
                ));
            }
            prune_dead_holders(&mut doc, &pairs);
            if doc.holders.len() as i64 >= doc.limit {
                index = last;
                continue;
            }
            doc.holders.insert(self.session.clone(), true);
            let query = [
                ("cas", doc_index.to_string()),
                ("flags", SEMAPHORE_FLAG_VALUE.to_string()),
            ];
            let body =
                serde_json::to_vec(&doc).map_err(|e| format!("lock encoding failed: {e}"))?;
            if self
                .api
                .put(&lock_key, &query, body)
                .await
                .map_err(|e| format!("failed to update lock: {e}"))?
            {
                return Ok(true);
            }
            // Lost a race with another contender: read again at once.
            index = 0;
        }
    }

    /// Resolves when the lock (or our slot) is lost.
    async fn monitor(self, retries: u32) {
        let mut index = 0;
        let mut left = retries;
        loop {
            let held = match &self.mode {
                Mode::Lock { key } => self
                    .api
                    .get(key, index, None)
                    .await
                    .map(|(last, pair)| (last, pair.is_some_and(|p| p.session == self.session))),
                Mode::Semaphore { prefix, limit } => {
                    let lock_key = join(prefix, LOCK_KEY);
                    self.api
                        .list(prefix, index, None)
                        .await
                        .and_then(|(last, pairs)| {
                            let (_, mut doc) =
                                semaphore_doc(&pairs, &lock_key, *limit).map_err(Failure::Other)?;
                            prune_dead_holders(&mut doc, &pairs);
                            Ok((last, doc.holders.contains_key(&self.session)))
                        })
                }
            };
            match held {
                Ok((last, true)) => {
                    index = last;
                    left = retries;
                }
                Ok((_, false)) => return,
                Err(e) if e.retryable() && left > 0 => {
                    left -= 1;
                    index = 0;
                    tokio::time::sleep(MONITOR_RETRY_TIME).await;
                }
                Err(_) => return,
            }
        }
    }

    /// Gives up the lock, or our semaphore slot and contender key.
    async fn release(&self) -> Result<(), String> {
        match &self.mode {
            Mode::Lock { key } => {
                let query = [
                    ("release", self.session.clone()),
                    ("flags", LOCK_FLAG_VALUE.to_string()),
                ];
                self.api
                    .put(key, &query, Vec::new())
                    .await
                    .map_err(|e| format!("failed to release lock: {e}"))?;
                Ok(())
            }
            Mode::Semaphore { prefix, limit } => {
                let lock_key = join(prefix, LOCK_KEY);
                loop {
                    let (_, pair) = self
                        .api
                        .get(&lock_key, 0, None)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (doc_index, mut doc) = match &pair {
                        Some(p) => semaphore_doc(std::slice::from_ref(p), &lock_key, *limit)?,
                        None => break,
                    };
                    if doc.holders.remove(&self.session).is_none() {
                        break;
                    }
                    let query = [
                        ("cas", doc_index.to_string()),
                        ("flags", SEMAPHORE_FLAG_VALUE.to_string()),
                    ];
                    let body = serde_json::to_vec(&doc)
                        .map_err(|e| format!("lock encoding failed: {e}"))?;
                    if self
                        .api
                        .put(&lock_key, &query, body)
                        .await
                        .map_err(|e| format!("failed to update lock: {e}"))?
                    {
                        break;
                    }
                }
                self.api
                    .delete(&self.contender_key(prefix), &[])
                    .await
                    .map(drop)
            }
        }
    }

    /// After a failed or abandoned acquisition: drops what we may have written.
    async fn abandon(&self) {
        if let Mode::Semaphore { prefix, .. } = &self.mode {
            let _ = self.api.delete(&self.contender_key(prefix), &[]).await;
        }
    }

    /// Deletes the lock key when no one holds it: Ok(true) when done (or nothing to do),
    /// Ok(false) when it is in use.
    async fn cleanup(&self) -> Result<bool, String> {
        match &self.mode {
            Mode::Lock { key } => {
                let (_, pair) = self
                    .api
                    .get(key, 0, None)
                    .await
                    .map_err(|e| format!("failed to read lock: {e}"))?;
                let Some(pair) = pair else { return Ok(true) };
                if pair.flags != LOCK_FLAG_VALUE {
                    return Err("Existing key does not match lock use".into());
                }
                if !pair.session.is_empty() {
                    return Ok(false);
                }
                self.api
                    .delete(key, &[("cas", pair.modify_index.to_string())])
                    .await
                    .map_err(|e| format!("failed to remove lock: {e}"))
            }
            Mode::Semaphore { prefix, limit } => {
                let lock_key = join(prefix, LOCK_KEY);
                let (_, pairs) = self
                    .api
                    .list(prefix, 0, None)
                    .await
                    .map_err(|e| format!("failed to read prefix: {e}"))?;
                let (doc_index, mut doc) = semaphore_doc(&pairs, &lock_key, *limit)?;
                if doc_index == 0 {
                    return Ok(true);
                }
                prune_dead_holders(&mut doc, &pairs);
                if !doc.holders.is_empty() {
                    return Ok(false);
                }
                self.api
                    .delete(&lock_key, &[("cas", doc_index.to_string())])
                    .await
                    .map_err(|e| format!("failed to remove semaphore: {e}"))
            }
        }
    }
}

/// The semaphore document among `pairs` and its `ModifyIndex` (0 and an empty document when
/// it does not exist yet).
fn semaphore_doc(
    pairs: &[KvEntry],
    lock_key: &str,
    limit: i64,
) -> Result<(u64, SemaphoreDoc), String> {
    let Some(pair) = pairs.iter().find(|p| p.key == lock_key) else {
        return Ok((
            0,
            SemaphoreDoc {
                limit,
                holders: BTreeMap::new(),
            },
        ));
    };
    if pair.flags != SEMAPHORE_FLAG_VALUE {
        return Err("Existing key does not match semaphore use".into());
    }
    if pair.value.is_empty() {
        return Ok((
            pair.modify_index,
            SemaphoreDoc {
                limit,
                holders: BTreeMap::new(),
            },
        ));
    }
    let doc =
        serde_json::from_slice(&pair.value).map_err(|e| format!("lock decoding failed: {e}"))?;
    Ok((pair.modify_index, doc))
}

/// Drops holders whose session holds no key under the prefix (their contender key is gone).
fn prune_dead_holders(doc: &mut SemaphoreDoc, pairs: &[KvEntry]) {
    let alive: std::collections::HashSet<&str> = pairs
        .iter()
        .filter(|p| !p.session.is_empty())
        .map(|p| p.session.as_str())
        .collect();
    doc.holders.retain(|s, _| alive.contains(s.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn lock_flags(args: &[&str]) -> Vec<String> {
        crate::cli::normalize_go_flags_before_child(strings(args), VALUE_FLAGS)
    }

    #[test]
    fn flags_stop_at_the_prefix() {
        let out = lock_flags(&[
            "legate",
            "lock",
            "-n",
            "2",
            "-timeout",
            "5s",
            "-verbose",
            "-shell=false",
            "-http-addr=127.0.0.1:1",
            "locks/a",
            "ls",
            "-la",
            "--",
            "-x",
        ]);
        assert_eq!(
            out,
            strings(&[
                "legate",
                "lock",
                "--n",
                "2",
                "--timeout",
                "5s",
                "--verbose",
                "--shell=false",
                "--http-addr=127.0.0.1:1",
                "--",
                "locks/a",
                "ls",
                "-la",
                "--",
                "-x",
            ])
        );
        let out = lock_flags(&["legate", "lock", "-n=3", "--", "p", "-c"]);
        assert_eq!(out, strings(&["legate", "lock", "--n=3", "--", "p", "-c"]));
    }

    #[test]
    fn lock_args_parse() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(lock_flags(&[
            "legate",
            "lock",
            "-n=2",
            "-try",
            "1s",
            "-pass-stdin",
            "p/",
            "echo",
            "-n",
            "hi",
        ]))
        .unwrap();
        let crate::cli::Command::Lock(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.limit, 2);
        assert_eq!(args.try_timeout.as_deref(), Some("1s"));
        assert_eq!(args.pass_stdin, Some(true));
        assert_eq!(args.args, strings(&["p/", "echo", "-n", "hi"]));
    }

    #[test]
    fn join_is_path_join() {
        assert_eq!(join("locks/a/", LOCK_KEY), "locks/a/.lock");
        assert_eq!(join("locks//a", "s1"), "locks/a/s1");
        assert_eq!(join("", LOCK_KEY), ".lock");
    }

    #[test]
    fn semaphore_document_round_trip_and_pruning() {
        let doc: SemaphoreDoc =
            serde_json::from_str(r#"{"Limit":2,"Holders":{"a":true,"b":true}}"#).unwrap();
        let pairs = vec![KvEntry {
            lock_index: 1,
            key: "p/a".into(),
            flags: SEMAPHORE_FLAG_VALUE,
            value: Vec::new(),
            session: "a".into(),
            create_index: 1,
            modify_index: 1,
        }];
        let mut doc = doc;
        prune_dead_holders(&mut doc, &pairs);
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"Limit":2,"Holders":{"a":true}}"#
        );
        let doc: SemaphoreDoc = serde_json::from_str(r#"{"Limit":3,"Holders":null}"#).unwrap();
        assert!(doc.holders.is_empty());
    }
}
