//! The agent's counters and timings, kept as go-metrics' in-memory sink keeps Consul's: per
//! 10-second interval (count, sum, min, max and sum of squares of what was recorded), plus
//! running totals since the start for the Prometheus format.
//!
//! Recording is on every request's path, so the registry is sharded: a thread always records
//! into its own shard (one uncontended mutex, one hash lookup) and only a scrape visits all
//! shards. The store records its commits here and the HTTP layer its requests; neither knows
//! the other, and this module knows neither.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long go-metrics' in-memory sink aggregates before it starts a new interval.
pub const INTERVAL: Duration = Duration::from_secs(10);
const INTERVAL_SECS: u64 = INTERVAL.as_secs();

/// Enough shards that the API's worker threads and the store's writer rarely share one.
const SHARDS: usize = 16;

/// What a metric is, as go-metrics tells counters (`IncrCounter`) from timings (`AddSample`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    Counter,
    Sample,
}

/// Which metric a recorded value belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Key {
    /// A metric with a fixed name, e.g. `consul.kvs.apply`.
    Named(Kind, &'static str),
    /// The time an HTTP request took: its method and the route pattern it matched
    /// (`/v1/kv/`), as Consul's request wrapper labels `consul.api.http`.
    Http {
        method: &'static str,
        route: &'static str,
    },
}

impl Key {
    fn kind(&self) -> Kind {
        match self {
            Key::Named(kind, _) => *kind,
            Key::Http { .. } => Kind::Sample,
        }
    }

    /// The names (and labels) Consul reports the metric under. An HTTP request is reported
    /// twice, as Consul's wrapper does while `telemetry.disable_compat_1.9` is unset: as
    /// `consul.api.http` labelled with method and path, and under its pre-1.9 name
    /// `consul.http.<METHOD>.<path parts>` (`/v1/kv/` → `consul.http.PUT.v1.kv._`).
    fn reported(&self) -> Vec<(String, Vec<(&'static str, String)>)> {
        match self {
            Key::Named(_, name) => vec![(name.to_string(), Vec::new())],
            Key::Http { method, route } => {
                let parts: Vec<&str> = route
                    .trim_start_matches('/')
                    .split('/')
                    .map(|p| if p.is_empty() { "_" } else { p })
                    .collect();
                vec![
                    (
                        "consul.api.http".to_string(),
                        vec![
                            ("method", method.to_string()),
                            // The trailing `_` tells `/v1/kv/<key>` from `/v1/kv`.
                            ("path", route.trim_start_matches('/').replace('/', "_")),
                        ],
                    ),
                    (
                        format!("consul.http.{method}.{}", parts.join(".")),
                        Vec::new(),
                    ),
                ]
            }
        }
    }
}

/// What go-metrics' `AggregateSample` keeps of the values recorded for one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
}

impl Aggregate {
    fn new(value: f64) -> Aggregate {
        Aggregate {
            count: 1,
            sum: value,
            sum_sq: value * value,
            min: value,
            max: value,
        }
    }

    fn ingest(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_sq += value * value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The sample standard deviation, as go-metrics computes it (0 for fewer than two values).
    pub fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        ((n * self.sum_sq - self.sum * self.sum) / div)
            .max(0.0)
            .sqrt()
    }
}

type Aggregates = HashMap<Key, Aggregate>;

fn record_into(map: &mut Aggregates, key: Key, value: f64) {
    match map.get_mut(&key) {
        Some(a) => a.ingest(value),
        None => {
            map.insert(key, Aggregate::new(value));
        }
    }
}

#[derive(Default)]
struct Shard {
    /// Start (Unix seconds) of the interval `current` aggregates.
    current_start: u64,
    current: Aggregates,
    /// The interval just before `current`.
    previous: Aggregates,
    /// Everything since the agent started (Prometheus counters and summaries are cumulative).
    totals: Aggregates,
}

impl Shard {
    /// Moves the shard to the interval starting at `start`.
    fn roll_to(&mut self, start: u64) {
        if start == self.current_start {
            return;
        }
        if start == self.current_start + INTERVAL_SECS {
            self.previous = std::mem::take(&mut self.current);
        } else {
            self.previous.clear();
            self.current.clear();
        }
        self.current_start = start;
    }
}

/// One metric of an interval or of the totals, by its reported name.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
    pub kind: Kind,
    pub value: Aggregate,
}

/// The registry: one per agent, shared by the store (commits) and the HTTP layer (requests).
pub struct Metrics {
    enabled: AtomicBool,
    /// Start of the interval the registry was created in: until it has ended there is no
    /// finished interval to report, and the current one is shown instead.
    first_interval: u64,
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn interval_start(now: SystemTime) -> u64 {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    secs - secs % INTERVAL_SECS
}

/// The shard the calling thread records into, picked once per thread.
fn own_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl Metrics {
    pub fn new() -> Metrics {
        let first_interval = interval_start(SystemTime::now());
        Metrics {
            enabled: AtomicBool::new(true),
            first_interval,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        current_start: first_interval,
                        ..Shard::default()
                    })
                })
                .collect(),
        }
    }

    /// Turns recording on or off (benchmarks compare the two); what was recorded stays.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Records `value` (milliseconds for timings, an increment for counters) for `key`.
    pub fn record(&self, key: Key, value: f64) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let start = interval_start(SystemTime::now());
        let mut shard = self.shards[own_shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.roll_to(start);
        record_into(&mut shard.current, key, value);
        record_into(&mut shard.totals, key, value);
    }

    /// Records how long something took, in milliseconds as go-metrics' `MeasureSince`.
    pub fn record_time(&self, key: Key, took: Duration) {
        self.record(key, took.as_secs_f64() * 1000.0);
    }

    /// The interval `/v1/agent/metrics` reports at `now`, as go-metrics' `DisplayMetrics`:
    /// the last finished interval, or the current one while none has finished yet. Returns
    /// its start and its metrics sorted by name.
    pub fn interval(&self, now: SystemTime) -> (SystemTime, Vec<Sampled>) {
        let start = interval_start(now);
        let show_previous = start > self.first_interval;
        let mut merged = Aggregates::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.roll_to(start);
            let interval = if show_previous {
                &shard.previous
            } else {
                &shard.current
            };
            merge_into(&mut merged, interval);
        }
        let shown = if show_previous {
            start - INTERVAL_SECS
        } else {
            start
        };
        (UNIX_EPOCH + Duration::from_secs(shown), sampled(merged))
    }

    /// Everything recorded since the agent started, sorted by name.
    pub fn totals(&self) -> Vec<Sampled> {
        let mut merged = Aggregates::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            merge_into(&mut merged, &shard.totals);
        }
        sampled(merged)
    }
}

fn merge_into(into: &mut Aggregates, from: &Aggregates) {
    for (key, value) in from {
        into.entry(*key)
            .and_modify(|a| a.merge(value))
            .or_insert(*value);
    }
}

fn sampled(merged: Aggregates) -> Vec<Sampled> {
    let mut out: Vec<Sampled> = merged
        .into_iter()
        .flat_map(|(key, value)| {
            key.reported()
                .into_iter()
                .map(move |(name, labels)| Sampled {
                    name,
                    labels,
                    kind: key.kind(),
                    value,
                })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.labels.cmp(&b.labels)));
    out
}

/// A number as Go's JSON writes a float that holds an integer (`1`, not `1.0`).
pub fn json_number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        serde_json::json!(v as i64)
    } else {
        serde_json::json!(v)
    }
}

impl Sampled {
    /// go-metrics' `SampledValue` as JSON: `Rate` is the sum per second of the interval.
    pub fn to_json(&self) -> serde_json::Value {
        let a = &self.value;
        let labels: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "Name": self.name,
            "Count": a.count,
            "Rate": json_number(a.sum / INTERVAL_SECS as f64),
            "Sum": json_number(a.sum),
            "Min": json_number(a.min),
            "Max": json_number(a.max),
            "Mean": json_number(a.mean()),
            "Stddev": json_number(a.stddev()),
            "Labels": labels,
        })
    }
}

/// A metric name as Prometheus accepts it (`consul.kvs.apply` → `consul_kvs_apply`).
pub fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn prometheus_labels(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Appends `totals` to `out` in the Prometheus text format (0.0.4): counters as `counter`,
/// timings as `summary` (`_sum` and `_count`), one `# HELP`/`# TYPE` pair per name.
pub fn write_prometheus(out: &mut String, totals: &[Sampled]) {
    use std::fmt::Write;
    let mut last_name: Option<&str> = None;
    for s in totals {
        let name = prometheus_name(&s.name);
        if last_name != Some(s.name.as_str()) {
            let kind = match s.kind {
                Kind::Counter => "counter",
                Kind::Sample => "summary",
            };
            let _ = write!(out, "# HELP {name} {name}\n# TYPE {name} {kind}\n");
            last_name = Some(s.name.as_str());
        }
        let labels = prometheus_labels(&s.labels);
        let _ = match s.kind {
            Kind::Counter => writeln!(out, "{name}{labels} {}", s.value.sum),
            Kind::Sample => write!(
                out,
                "{name}_sum{labels} {}\n{name}_count{labels} {}\n",
                s.value.sum, s.value.count
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_as_go_metrics() {
        let mut a = Aggregate::new(2.0);
        a.ingest(4.0);
        a.ingest(6.0);
        assert_eq!((a.count, a.sum, a.min, a.max), (3, 12.0, 2.0, 6.0));
        assert_eq!(a.mean(), 4.0);
        assert_eq!(a.stddev(), 2.0);
        assert_eq!(Aggregate::new(5.0).stddev(), 0.0);
    }

    #[test]
    fn records_from_many_threads_merge() {
        let m = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        m.record(Key::Named(Kind::Counter, "consul.raft.apply"), 1.0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let totals = m.totals();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].value.count, 800);
        assert_eq!(totals[0].value.sum, 800.0);
    }

    #[test]
    fn shows_the_last_finished_interval_once_there_is_one() {
        let m = Metrics::new();
        let key = Key::Named(Kind::Sample, "consul.kvs.apply");
        m.record(key, 3.0);
        let now = UNIX_EPOCH + Duration::from_secs(m.first_interval);
        let (start, current) = m.interval(now);
        assert_eq!(start, now);
        assert_eq!(current[0].value.sum, 3.0);
        // One interval later the finished one is reported; two later it is empty.
        let (start, finished) = m.interval(now + INTERVAL);
        assert_eq!(start, now);
        assert_eq!(finished, current);
        assert!(m.interval(now + 2 * INTERVAL).1.is_empty());
        assert_eq!(m.totals()[0].value.sum, 3.0);
    }

    #[test]
    fn disabled_records_nothing() {
        let m = Metrics::new();
        m.set_enabled(false);
        m.record(Key::Named(Kind::Counter, "consul.raft.apply"), 1.0);
        assert!(m.totals().is_empty());
    }

    #[test]
    fn http_requests_are_labelled_as_consul_api_http() {
        let m = Metrics::new();
        let key = Key::Http {
            method: "GET",
            route: "/v1/kv/",
        };
        m.record(key, 1.5);
        let totals = m.totals();
        let names: Vec<&str> = totals.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["consul.api.http", "consul.http.GET.v1.kv._"]);
        assert!(totals[1].labels.is_empty());
        let s = &totals[0];
        let json = s.to_json();
        assert_eq!(
            json["Labels"],
            serde_json::json!({"method": "GET", "path": "v1_kv_"})
        );
        assert_eq!(json["Sum"], 1.5);
        assert_eq!(json["Rate"], 0.15);
        let mut text = String::new();
        write_prometheus(&mut text, &totals[..1]);
        assert_eq!(
            text,
            "# HELP consul_api_http consul_api_http\n# TYPE consul_api_http summary\n\
             consul_api_http_sum{method=\"GET\",path=\"v1_kv_\"} 1.5\n\
             consul_api_http_count{method=\"GET\",path=\"v1_kv_\"} 1\n"
        );
    }
}
