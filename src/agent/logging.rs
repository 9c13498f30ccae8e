//! The process's logging: stderr output behind a level that `/v1/agent/reload` can change, and
//! a monitor layer that hands log events to `/v1/agent/monitor` streams, each at the level it
//! asked for (independent of the stderr level, as Consul's monitor is).
//!
//! `init` installs both as the global subscriber (only `legate agent` calls it; an agent started
//! in-process runs without one, and then `set_level` reports that nothing was changed).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// How many records a slow monitor may fall behind before it loses some.
const MONITOR_BUFFER: usize = 512;

/// One log event, as the monitor layer captured it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub time: SystemTime,
    pub level: Level,
    /// The module, in Consul's dotted style (`agent.local`).
    pub module: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// hclog's text line: `2006-01-02T15:04:05.000Z [INFO]  agent: message: key=value`.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} {:<7} {}: {}",
            rfc3339(self.time, 3),
            format!("[{}]", level_name(self.level)),
            self.module,
            self.message
        );
        if !self.fields.is_empty() {
            out.push(':');
            for (k, v) in &self.fields {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    let _ = write!(out, " {k}={v:?}");
                } else {
                    let _ = write!(out, " {k}={v}");
                }
            }
        }
        out.push('\n');
        out
    }

    /// hclog's JSON line (`-logjson`): `@level`, `@message`, `@module`, `@timestamp` and fields.
    pub fn json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert(
            "@level".into(),
            level_name(self.level).to_lowercase().into(),
        );
        map.insert("@message".into(), self.message.clone().into());
        map.insert("@module".into(), self.module.clone().into());
        map.insert("@timestamp".into(), rfc3339(self.time, 6).into());
        for (k, v) in &self.fields {
            map.insert(k.clone(), v.clone().into());
        }
        let mut line = serde_json::Value::Object(map).to_string();
        line.push('\n');
        line
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// 1 (error) ..= 5 (trace); 0 means "nothing".
fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A level as Consul's `logging.LevelFromString` reads it (case-insensitive; `ERR` is `ERROR`).
pub fn parse_level(text: &str) -> Option<Level> {
    match text.trim().to_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

struct Hub {
    tx: broadcast::Sender<Arc<LogRecord>>,
    /// The level of each open monitor, by its id.
    monitors: Mutex<Vec<(u64, Level)>>,
    next_id: Mutex<u64>,
    /// The finest level any monitor wants (`rank`), read on every event.
    finest: AtomicU8,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| Hub {
        tx: broadcast::channel(MONITOR_BUFFER).0,
        monitors: Mutex::new(Vec::new()),
        next_id: Mutex::new(0),
        finest: AtomicU8::new(0),
    })
}

impl Hub {
    fn recompute(&self, monitors: &[(u64, Level)]) {
        let finest = monitors.iter().map(|(_, l)| rank(l)).max().unwrap_or(0);
        self.finest.store(finest, Ordering::Relaxed);
    }
}

/// An open monitor: receives the records at or above its level until dropped.
pub struct Monitor {
    id: u64,
    level: Level,
    rx: broadcast::Receiver<Arc<LogRecord>>,
    /// Records lost because this monitor fell behind.
    pub dropped: u64,
}

/// Opens a monitor at `level`.
pub fn subscribe(level: Level) -> Monitor {
    let hub = hub();
    let id = {
        let mut next = hub.next_id.lock().unwrap();
        *next += 1;
        *next
    };
    let rx = hub.tx.subscribe();
    let mut monitors = hub.monitors.lock().unwrap();
    monitors.push((id, level));
    hub.recompute(&monitors);
    Monitor {
        id,
        level,
        rx,
        dropped: 0,
    }
}

impl Monitor {
    /// The next record at this monitor's level; `None` once logging is gone.
    pub async fn recv(&mut self) -> Option<Arc<LogRecord>> {
        loop {
            match self.rx.recv().await {
                Ok(record) if rank(&record.level) <= rank(&self.level) => return Some(record),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => self.dropped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let hub = hub();
        let mut monitors = hub.monitors.lock().unwrap();
        monitors.retain(|(id, _)| *id != self.id);
        hub.recompute(&monitors);
    }
}

/// Passes the events some monitor wants. Interest is always "sometimes": monitors come and go,
/// so a callsite's answer must not be cached.
struct MonitorFilter;

impl<S: Subscriber> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        rank(meta.level()) <= hub().finest.load(Ordering::Relaxed)
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
}

/// Captures events into `LogRecord`s and broadcasts them.
struct MonitorLayer;

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let hub = hub();
        if hub.tx.receiver_count() == 0 {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let module = meta
            .target()
            .strip_prefix("legate::")
            .unwrap_or(meta.target())
            .replace("::", ".");
        let _ = hub.tx.send(Arc::new(LogRecord {
            time: SystemTime::now(),
            level: *meta.level(),
            module,
            message: fields.message,
            fields: fields.fields,
        }));
    }
}

type LevelSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

fn setter() -> &'static OnceLock<LevelSetter> {
    static SETTER: OnceLock<LevelSetter> = OnceLock::new();
    &SETTER
}

/// The `EnvFilter` directive for a Consul log level.
fn directive(level: &str) -> &str {
    match level {
        "err" => "error",
        other => other,
    }
}

/// Installs the global subscriber: stderr (text or JSON) at `level` (or `RUST_LOG`), behind a
/// reloadable filter, and the monitor layer.
pub fn init(level: &str, json: bool) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter, Registry};
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directive(level)));
    let (filter, handle) = reload::Layer::<EnvFilter, Registry>::new(filter);
    let stderr = fmt::layer().with_writer(std::io::stderr);
    let stderr: Box<dyn Layer<Registry> + Send + Sync> = if json {
        Box::new(stderr.json())
    } else {
        Box::new(stderr)
    };
    let installed = tracing_subscriber::registry()
        .with(stderr.with_filter(filter))
        .with(MonitorLayer.with_filter(MonitorFilter))
        .try_init();
    if installed.is_ok() {
        let _ = setter().set(Box::new(move |level| {
            handle
                .reload(EnvFilter::new(directive(level)))
                .map_err(|e| e.to_string())
        }));
    }
}

/// Changes the stderr level. `Ok(false)` when no subscriber of ours is installed.
pub fn set_level(level: &str) -> Result<bool, String> {
    match setter().get() {
        Some(set) => set(level).map(|()| true),
        None => Ok(false),
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// UTC calendar fields of a time: (year, month, day, hour, minute, second, nanos).
fn utc_fields(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (
        y,
        mo,
        da,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos(),
    )
}

/// RFC 3339 in UTC with `digits` fraction digits (0..=9): `2006-01-02T15:04:05.000Z`.
pub fn rfc3339(t: SystemTime, digits: usize) -> String {
    let (y, mo, d, h, mi, s, nanos) = utc_fields(t);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if digits > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(&frac[..digits.min(9)]);
    }
    out.push('Z');
    out
}

/// Go's `time.Time.String()` for a UTC time rounded to the second:
/// `2006-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = utc_fields(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_times_like_go() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t, 3), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(t, 0), "2023-11-14T22:13:20Z");
        assert_eq!(go_time_string(t), "2023-11-14 22:13:20 +0000 UTC");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap, 0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn levels_parse_as_consul_reads_them() {
        assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
        assert_eq!(parse_level("err"), Some(Level::ERROR));
        assert_eq!(parse_level("verbose"), None);
    }

    #[test]
    fn records_render_as_hclog_lines() {
        let r = LogRecord {
            time: SystemTime::UNIX_EPOCH,
            level: Level::INFO,
            module: "agent".into(),
            message: "Synced node info".into(),
            fields: vec![("node".into(), "n1".into()), ("why".into(), "a b".into())],
        };
        assert_eq!(
            r.text(),
            "1970-01-01T00:00:00.000Z [INFO]  agent: Synced node info: node=n1 why=\"a b\"\n"
        );
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["@level"], "info");
        assert_eq!(json["node"], "n1");
    }

    #[tokio::test]
    async fn monitors_only_raise_the_level_while_open() {
        let m = subscribe(Level::DEBUG);
        assert!(hub().finest.load(Ordering::Relaxed) >= rank(&Level::DEBUG));
        drop(m);
    }
}
