//! The agent's counters and timings, kept as go-metrics' in-memory sink keeps Consul's: per
//! 10-second interval (count, sum, min, max and sum of squares of what was recorded), plus,
//! for the Prometheus format, running totals since the start and the recent timings the
//! Prometheus sink's summaries draw their quantiles from.
//!
//! Recording is on every request's path, so the registry is sharded: a thread always records
//! into its own shard (one uncontended mutex, one hash lookup per view) and only a scrape
//! visits all shards. The store records its commits here and the HTTP layer its requests;
//! neither knows the other, and this module knows neither. Names are recorded without
//! Consul's `metrics_prefix`; `Naming` gives them their reported form at the scrape.

use crate::config::TelemetryConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long go-metrics' in-memory sink aggregates before it starts a new interval.
pub const INTERVAL: Duration = Duration::from_secs(10);
const INTERVAL_SECS: u64 = INTERVAL.as_secs();

/// Enough shards that the API's worker threads and the store's writer rarely share one.
const SHARDS: usize = 16;

/// The quantiles go-metrics' Prometheus sink asks its summaries for.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// A Prometheus summary answers its quantiles from the last 10 seconds (`MaxAge`), kept in 5
/// age buckets that rotate every 2 seconds (client_golang's defaults): at any time the
/// quantiles cover between 8 and 10 seconds.
const AGE_BUCKETS: usize = 5;
const AGE_BUCKET_SECS: u64 = 2;

/// The relative error of a quantile: timings are counted in buckets whose bounds grow by this
/// factor, so memory stays bounded however many requests a window holds, and the buckets of
/// shards and age buckets add up.
const BUCKET_GROWTH: f64 = 1.01;

/// What a metric is, as go-metrics tells counters (`IncrCounter`) from timings (`AddSample`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Kind {
    Counter,
    Sample,
}

/// Which metric a recorded value belongs to; names leave out Consul's `metrics_prefix`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Key {
    /// A metric with a fixed name, e.g. `kvs.apply`.
    Named(Kind, &'static str),
    /// The time an HTTP request took: its method and the route pattern it matched
    /// (`/v1/kv/`), as Consul's request wrapper labels `consul.api.http`.
    Http {
        method: http::Method,
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

    /// The names (and labels) Consul reports the metric under, those `naming` lets through.
    /// An HTTP request is reported twice, as Consul's wrapper does unless
    /// `telemetry.disable_compat_1.9` is set: as `consul.api.http` labelled with method and
    /// path, and under its pre-1.9 name `consul.http.<METHOD>.<path parts>`
    /// (`/v1/kv/` → `consul.http.PUT.v1.kv._`).
    fn reported(&self, naming: &Naming) -> Vec<(String, Labels)> {
        match self {
            Key::Named(_, name) => naming
                .recorded(name)
                .map(|n| (n, Vec::new()))
                .into_iter()
                .collect(),
            Key::Http { method, route } => {
                let labels = vec![
                    ("method", method.to_string()),
                    // The trailing `_` tells `/v1/kv/<key>` from `/v1/kv`.
                    ("path", route.trim_start_matches('/').replace('/', "_")),
                ];
                let mut out: Vec<(String, Labels)> = naming
                    .recorded("api.http")
                    .map(|n| (n, labels))
                    .into_iter()
                    .collect();
                if naming.compat_1_9 {
                    let parts: Vec<&str> = route
                        .trim_start_matches('/')
                        .split('/')
                        .map(|p| if p.is_empty() { "_" } else { p })
                        .collect();
                    let legacy = format!("http.{method}.{}", parts.join("."));
                    out.extend(naming.recorded(&legacy).map(|n| (n, Vec::new())));
                }
                out
            }
        }
    }
}

pub type Labels = Vec<(&'static str, String)>;

/// How Consul's go-metrics setup turns a recorded name into the reported one: the
/// `metrics_prefix` before every name, the host name before gauges' (go-metrics'
/// `EnableHostname`), and the `prefix_filter` rules deciding, on the full name, what is
/// reported at all.
#[derive(Debug, Clone)]
pub struct Naming {
    prefix: String,
    gauge_host: Option<String>,
    compat_1_9: bool,
    filter_default: bool,
    /// `(prefix, allowed)`, the blocking rules last: a prefix both allowed and blocked is
    /// blocked, as the later insert wins in go-metrics' radix tree.
    rules: Vec<(String, bool)>,
}

impl Naming {
    /// Consul sets go-metrics' `EnableHostname` from `disable_hostname`, but clears it when
    /// the in-memory sink is the only one: here, unless Prometheus is on.
    pub fn new(t: &TelemetryConfig, host_name: &str) -> Naming {
        let host_prefixed =
            !t.disable_hostname && !t.prometheus_retention.is_zero() && !host_name.is_empty();
        Naming {
            prefix: t.metrics_prefix.clone(),
            gauge_host: host_prefixed.then(|| host_name.to_string()),
            compat_1_9: !t.disable_compat_1_9,
            filter_default: t.filter_default,
            rules: filter_rules(t),
        }
    }

    /// Replaces the `prefix_filter` rules (go-metrics' `UpdateFilter`, on reload); what was
    /// recorded before is reported by the new rules.
    pub fn update_filter(&mut self, t: &TelemetryConfig) {
        self.rules = filter_rules(t);
    }

    /// The reported name of a counter or timing, if the filter lets it through.
    pub fn recorded(&self, name: &str) -> Option<String> {
        self.full(None, name)
    }

    /// The reported name of a gauge, if the filter lets it through.
    pub fn gauge(&self, name: &str) -> Option<String> {
        self.full(self.gauge_host.as_deref(), name)
    }

    fn full(&self, host: Option<&str>, name: &str) -> Option<String> {
        let prefix = Some(self.prefix.as_str()).filter(|p| !p.is_empty());
        let full = [prefix, host, Some(name)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(".");
        self.allows(&full).then_some(full)
    }

    /// go-metrics' `allowMetric`: the longest rule that is a prefix of the name decides.
    fn allows(&self, name: &str) -> bool {
        self.rules
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.filter_default, |(_, allowed)| *allowed)
    }
}

fn filter_rules(t: &TelemetryConfig) -> Vec<(String, bool)> {
    t.allowed_prefixes
        .iter()
        .map(|p| (p.clone(), true))
        .chain(t.blocked_prefixes.iter().map(|p| (p.clone(), false)))
        .collect()
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

fn record_into(map: &mut Aggregates, key: &Key, value: f64) {
    match map.get_mut(key) {
        Some(a) => a.ingest(value),
        None => {
            map.insert(key.clone(), Aggregate::new(value));
        }
    }
}

/// The timings of one 2-second age bucket, counted in buckets of relative width
/// `BUCKET_GROWTH`, with the exact extremes so that a lone timing is answered exactly.
#[derive(Clone, Debug, Default)]
struct AgeBucket {
    /// Which 2-second span (Unix seconds / 2) the bucket holds.
    span: u64,
    count: u64,
    min: f64,
    max: f64,
    /// Bucket index (see `bucket_of`) → timings in it.
    buckets: BTreeMap<i32, u64>,
}

/// The index of the bucket holding `value`: bucket `i` holds (γ^(i-1), γ^i]; zero and
/// anything below a nanosecond share the lowest.
fn bucket_of(value: f64) -> i32 {
    if value < 1e-6 {
        i32::MIN
    } else {
        (value.ln() / BUCKET_GROWTH.ln()).ceil() as i32
    }
}

/// The value a bucket stands for: the one with the same relative distance to both bounds.
fn bucket_value(index: i32) -> f64 {
    if index == i32::MIN {
        0.0
    } else {
        2.0 * BUCKET_GROWTH.powi(index) / (BUCKET_GROWTH + 1.0)
    }
}

impl AgeBucket {
    fn observe(&mut self, span: u64, value: f64) {
        if self.span != span || self.count == 0 {
            *self = AgeBucket {
                span,
                count: 0,
                min: value,
                max: value,
                buckets: BTreeMap::new(),
            };
        }
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        *self.buckets.entry(bucket_of(value)).or_insert(0) += 1;
    }

    /// Adds `other` in (a bucket of another age or shard).
    fn absorb(&mut self, other: &AgeBucket) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            (self.min, self.max) = (other.min, other.max);
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (index, n) in &other.buckets {
            *self.buckets.entry(*index).or_insert(0) += n;
        }
    }

    /// The value at rank ⌈q·count⌉, or NaN without timings (as a Prometheus summary answers).
    fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return bucket_value(*index).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

/// A metric since the agent started, for the Prometheus format.
#[derive(Clone, Debug)]
struct Running {
    all: Aggregate,
    /// When it was last recorded, in milliseconds since the epoch: a series not recorded for
    /// the retention time is dropped, as go-metrics' Prometheus sink expires it.
    updated_ms: u64,
    /// Timings only: the age buckets, indexed by span modulo `AGE_BUCKETS`.
    recent: [AgeBucket; AGE_BUCKETS],
}

impl Running {
    fn new(kind: Kind, value: f64, now_ms: u64) -> Running {
        let mut running = Running {
            all: Aggregate::new(value),
            updated_ms: now_ms,
            recent: Default::default(),
        };
        running.observe_recent(kind, value, now_ms);
        running
    }

    fn record(&mut self, kind: Kind, value: f64, now_ms: u64) {
        self.all.ingest(value);
        self.updated_ms = now_ms;
        self.observe_recent(kind, value, now_ms);
    }

    fn observe_recent(&mut self, kind: Kind, value: f64, now_ms: u64) {
        if kind == Kind::Sample {
            let span = now_ms / 1000 / AGE_BUCKET_SECS;
            self.recent[span as usize % AGE_BUCKETS].observe(span, value);
        }
    }

    fn absorb(&mut self, other: &Running) {
        self.all.merge(&other.all);
        self.updated_ms = self.updated_ms.max(other.updated_ms);
        for (mine, theirs) in self.recent.iter_mut().zip(&other.recent) {
            if mine.count == 0 || theirs.count == 0 || mine.span == theirs.span {
                let span = mine.span.max(theirs.span);
                mine.absorb(theirs);
                mine.span = span;
            } else if theirs.span > mine.span {
                *mine = theirs.clone();
            }
        }
    }

    /// The quantiles of the timings recorded in the age buckets still current at `now_ms`.
    fn quantiles(&self, now_ms: u64) -> [f64; 3] {
        let span = now_ms / 1000 / AGE_BUCKET_SECS;
        let oldest = span.saturating_sub(AGE_BUCKETS as u64 - 1);
        let mut window = AgeBucket::default();
        for bucket in self
            .recent
            .iter()
            .filter(|b| (oldest..=span).contains(&b.span))
        {
            window.absorb(bucket);
        }
        QUANTILES.map(|q| window.quantile(q))
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
    totals: HashMap<Key, Running>,
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
    pub labels: Labels,
    pub kind: Kind,
    pub value: Aggregate,
    /// Of a timing's totals: its `QUANTILES` over the last 10 seconds (NaN without any).
    pub quantiles: Option<[f64; 3]>,
}

/// The registry: one per agent, shared by the store (commits) and the HTTP layer (requests).
pub struct Metrics {
    enabled: AtomicBool,
    /// Whether running totals are kept: only the Prometheus format reads them, and without it
    /// they would grow with every new label (a client's made-up HTTP method) for good.
    cumulative: AtomicBool,
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

fn millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn interval_start(now_ms: u64) -> u64 {
    let secs = now_ms / 1000;
    secs - secs % INTERVAL_SECS
}

/// How long from `now` until the interval it falls in ends (go-metrics' `interval.done`).
pub fn until_interval_end(now: SystemTime) -> Duration {
    let now_ms = millis(now);
    Duration::from_millis((interval_start(now_ms) + INTERVAL_SECS) * 1000 - now_ms)
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
        let first_interval = interval_start(millis(SystemTime::now()));
        Metrics {
            enabled: AtomicBool::new(true),
            cumulative: AtomicBool::new(true),
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

    /// Keeps running totals (for the Prometheus format) or not; off, `totals` stays empty.
    pub fn set_cumulative(&self, cumulative: bool) {
        self.cumulative.store(cumulative, Ordering::Relaxed);
    }

    /// Records `value` (milliseconds for timings, an increment for counters) for `key`.
    pub fn record(&self, key: Key, value: f64) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let now_ms = millis(SystemTime::now());
        let mut shard = self.shards[own_shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.roll_to(interval_start(now_ms));
        record_into(&mut shard.current, &key, value);
        if !self.cumulative.load(Ordering::Relaxed) {
            return;
        }
        let kind = key.kind();
        match shard.totals.get_mut(&key) {
            Some(running) => running.record(kind, value, now_ms),
            None => {
                shard.totals.insert(key, Running::new(kind, value, now_ms));
            }
        }
    }

    /// Records how long something took, in milliseconds as go-metrics' `MeasureSince`.
    pub fn record_time(&self, key: Key, took: Duration) {
        self.record(key, took.as_secs_f64() * 1000.0);
    }

    /// The interval `/v1/agent/metrics` reports at `now`, as go-metrics' `DisplayMetrics`:
    /// the last finished interval, or the current one while none has finished yet. Returns
    /// its start and its metrics sorted by name.
    pub fn interval(&self, now: SystemTime, naming: &Naming) -> (SystemTime, Vec<Sampled>) {
        let start = interval_start(millis(now));
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
            for (key, value) in interval {
                merged
                    .entry(key.clone())
                    .and_modify(|a| a.merge(value))
                    .or_insert(*value);
            }
        }
        let shown = if show_previous {
            start - INTERVAL_SECS
        } else {
            start
        };
        let sampled = merged
            .into_iter()
            .map(|(key, value)| (key, value, None))
            .collect();
        (
            UNIX_EPOCH + Duration::from_secs(shown),
            sampled_by_name(sampled, naming),
        )
    }

    /// Everything recorded since the agent started, sorted by name, each timing with its
    /// recent quantiles. With a positive `retention`, what was not recorded for that long is
    /// left out and forgotten (it starts again from zero), as go-metrics' Prometheus sink
    /// drops an expired series when it is collected.
    pub fn totals(&self, now: SystemTime, retention: Duration, naming: &Naming) -> Vec<Sampled> {
        let now_ms = millis(now);
        let mut merged: HashMap<Key, Running> = HashMap::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (key, running) in &shard.totals {
                match merged.get_mut(key) {
                    Some(m) => m.absorb(running),
                    None => {
                        merged.insert(key.clone(), running.clone());
                    }
                }
            }
        }
        let retention_ms = retention.as_millis() as u64;
        let expired = |r: &Running| retention_ms > 0 && r.updated_ms + retention_ms < now_ms;
        let gone: Vec<Key> = merged
            .iter()
            .filter(|(_, r)| expired(r))
            .map(|(k, _)| k.clone())
            .collect();
        if !gone.is_empty() {
            for shard in self.shards.iter() {
                let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                // A shard that recorded the key since the first pass keeps it.
                shard
                    .totals
                    .retain(|k, r| !(gone.contains(k) && expired(r)));
            }
        }
        let sampled = merged
            .into_iter()
            .filter(|(_, r)| !expired(r))
            .map(|(key, r)| {
                let quantiles = (key.kind() == Kind::Sample).then(|| r.quantiles(now_ms));
                (key, r.all, quantiles)
            })
            .collect();
        sampled_by_name(sampled, naming)
    }
}

fn sampled_by_name(
    merged: Vec<(Key, Aggregate, Option<[f64; 3]>)>,
    naming: &Naming,
) -> Vec<Sampled> {
    let mut out: Vec<Sampled> = merged
        .into_iter()
        .flat_map(|(key, value, quantiles)| {
            let kind = key.kind();
            key.reported(naming)
                .into_iter()
                .map(move |(name, labels)| Sampled {
                    name,
                    labels,
                    kind,
                    value,
                    quantiles,
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

/// A gauge as read at the scrape, by its reported name.
pub struct Gauge {
    pub name: String,
    pub value: f64,
    /// Consul's help text for the gauges it defines; the others are helped by their name, as
    /// go-metrics' Prometheus sink does.
    pub help: Option<&'static str>,
}

/// A metric name as go-metrics' Prometheus sink flattens it (`consul.kvs.apply` →
/// `consul_kvs_apply`), keeping it a valid Prometheus name.
pub fn prometheus_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A float as Prometheus' text format writes it (Go's `strconv.FormatFloat(v, 'g', -1, 64)`):
/// the shortest digits that read back, with an exponent from 1e+06 up and below 1e-04
/// (`2.7267072e+07`, `123456`, `0.5`, `1.5e-05`, `NaN`, `+Inf`).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // `{:e}` gives the shortest digits that read back: `-1.2345e6`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes a decimal exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{v}")
}

fn prometheus_labels(labels: &[(&'static str, String)], quantile: Option<f64>) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    if let Some(q) = quantile {
        pairs.push(format!("quantile=\"{}\"", go_float(q)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// Writes `gauges` and `totals` in the Prometheus text format (0.0.4) as client_golang does:
/// families sorted by name, each with its `# HELP` and `# TYPE`; gauges and counters as one
/// line, timings as summaries with a line per quantile, then `_sum` and `_count`.
pub fn write_prometheus(gauges: &[Gauge], totals: &[Sampled]) -> String {
    use std::fmt::Write;
    enum Series<'a> {
        Gauge(&'a Gauge),
        Recorded(&'a Sampled),
    }
    let mut series: Vec<(String, Series)> = gauges
        .iter()
        .map(|g| (prometheus_name(&g.name), Series::Gauge(g)))
        .chain(
            totals
                .iter()
                .map(|s| (prometheus_name(&s.name), Series::Recorded(s))),
        )
        .collect();
    // Stable: within a name, `totals` are already sorted by their labels.
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    let mut last_name: Option<&str> = None;
    for (name, s) in &series {
        let (kind, help) = match s {
            Series::Gauge(g) => ("gauge", g.help.unwrap_or(name.as_str())),
            Series::Recorded(s) if s.kind == Kind::Counter => ("counter", name.as_str()),
            Series::Recorded(_) => ("summary", name.as_str()),
        };
        if last_name != Some(name.as_str()) {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            last_name = Some(name.as_str());
        }
        let _ = match s {
            Series::Gauge(g) => writeln!(out, "{name} {}", go_float(g.value)),
            Series::Recorded(s) if s.kind == Kind::Counter => writeln!(
                out,
                "{name}{} {}",
                prometheus_labels(&s.labels, None),
                go_float(s.value.sum)
            ),
            Series::Recorded(s) => {
                let quantiles = s.quantiles.unwrap_or([f64::NAN; 3]);
                for (q, v) in QUANTILES.iter().zip(quantiles) {
                    let _ = writeln!(
                        out,
                        "{name}{} {}",
                        prometheus_labels(&s.labels, Some(*q)),
                        go_float(v)
                    );
                }
                let labels = prometheus_labels(&s.labels, None);
                write!(
                    out,
                    "{name}_sum{labels} {}\n{name}_count{labels} {}\n",
                    go_float(s.value.sum),
                    go_float(s.value.count as f64)
                )
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consul's default naming, the in-memory sink alone.
    fn defaults() -> Naming {
        Naming::new(&TelemetryConfig::default(), "")
    }

    fn totals(m: &Metrics) -> Vec<Sampled> {
        m.totals(SystemTime::now(), Duration::ZERO, &defaults())
    }

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
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        m.record(Key::Named(Kind::Counter, "raft.apply"), 1.0);
                        m.record(
                            Key::Named(Kind::Sample, "kvs.apply"),
                            (t * 100 + i + 1) as f64,
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let totals = totals(&m);
        assert_eq!(totals.len(), 2);
        assert_eq!(totals[1].name, "consul.raft.apply");
        assert_eq!((totals[1].value.count, totals[1].value.sum), (800, 800.0));
        assert_eq!(totals[1].quantiles, None);
        // The timings 1..=800 of all shards: each quantile within the buckets' 1%.
        let [q50, q90, q99] = totals[0].quantiles.unwrap();
        for (got, want) in [(q50, 400.0), (q90, 720.0), (q99, 792.0)] {
            assert!((got - want).abs() <= want * 0.01, "{got} for {want}");
        }
    }

    #[test]
    fn quantiles_cover_the_last_ten_seconds() {
        let m = Metrics::new();
        m.record(Key::Named(Kind::Sample, "kvs.apply"), 3.25);
        let now = SystemTime::now();
        let naming = defaults();
        let at = |t| m.totals(t, Duration::ZERO, &naming)[0].quantiles.unwrap();
        // A lone timing is every quantile, exactly.
        assert_eq!(at(now), [3.25; 3]);
        assert_eq!(at(now + Duration::from_secs(7)), [3.25; 3]);
        // Ten seconds on it has left the window; the totals stay.
        assert!(at(now + Duration::from_secs(11)).iter().all(|q| q.is_nan()));
        assert_eq!(totals(&m)[0].value.count, 1);
    }

    #[test]
    fn series_not_recorded_within_the_retention_time_are_dropped() {
        let m = Metrics::new();
        let key = Key::Named(Kind::Counter, "serf.events");
        m.record(key.clone(), 1.0);
        m.record(key.clone(), 1.0);
        let naming = defaults();
        let retention = Duration::from_secs(60);
        let now = SystemTime::now();
        assert_eq!(m.totals(now, retention, &naming)[0].value.sum, 2.0);
        assert!(m
            .totals(now + Duration::from_secs(61), retention, &naming)
            .is_empty());
        // Dropped means forgotten: the counter starts again.
        m.record(key, 1.0);
        assert_eq!(m.totals(now, retention, &naming)[0].value.sum, 1.0);
    }

    #[test]
    fn shows_the_last_finished_interval_once_there_is_one() {
        let m = Metrics::new();
        let naming = defaults();
        m.record(Key::Named(Kind::Sample, "kvs.apply"), 3.0);
        let now = UNIX_EPOCH + Duration::from_secs(m.first_interval);
        let (start, current) = m.interval(now, &naming);
        assert_eq!(start, now);
        assert_eq!(current[0].name, "consul.kvs.apply");
        assert_eq!(current[0].value.sum, 3.0);
        // One interval later the finished one is reported; two later it is empty.
        let (start, finished) = m.interval(now + INTERVAL, &naming);
        assert_eq!(start, now);
        assert_eq!(finished, current);
        assert!(m.interval(now + 2 * INTERVAL, &naming).1.is_empty());
        assert_eq!(totals(&m)[0].value.sum, 3.0);
    }

    #[test]
    fn an_interval_ends_on_a_multiple_of_ten_seconds() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(until_interval_end(at(1_000_000)), INTERVAL);
        assert_eq!(
            until_interval_end(at(1_003_250)),
            Duration::from_millis(6_750)
        );
    }

    #[test]
    fn disabled_records_nothing() {
        let m = Metrics::new();
        m.set_enabled(false);
        m.record(Key::Named(Kind::Counter, "raft.apply"), 1.0);
        assert!(totals(&m).is_empty());
        assert!(m.interval(SystemTime::now(), &defaults()).1.is_empty());
    }

    #[test]
    fn totals_are_kept_only_when_asked() {
        let m = Metrics::new();
        m.set_cumulative(false);
        m.record(Key::Named(Kind::Counter, "raft.apply"), 1.0);
        assert!(totals(&m).is_empty());
        let (_, interval) = m.interval(SystemTime::now(), &defaults());
        assert_eq!(interval[0].value.sum, 1.0);
    }

    fn telemetry(hcl: impl FnOnce(&mut TelemetryConfig)) -> TelemetryConfig {
        let mut t = TelemetryConfig {
            prometheus_retention: Duration::from_secs(60),
            ..TelemetryConfig::default()
        };
        hcl(&mut t);
        t
    }

    #[test]
    fn gauges_carry_the_host_name_only_beside_another_sink() {
        let on = Naming::new(&telemetry(|_| {}), "web-1");
        assert_eq!(
            on.gauge("runtime.alloc_bytes").unwrap(),
            "consul.web-1.runtime.alloc_bytes"
        );
        assert_eq!(on.recorded("kvs.apply").unwrap(), "consul.kvs.apply");
        let memory_only = Naming::new(&TelemetryConfig::default(), "web-1");
        assert_eq!(
            memory_only.gauge("state.nodes").unwrap(),
            "consul.state.nodes"
        );
        let disabled = Naming::new(&telemetry(|t| t.disable_hostname = true), "web-1");
        assert_eq!(disabled.gauge("state.nodes").unwrap(), "consul.state.nodes");
        let prefixed = Naming::new(&telemetry(|t| t.metrics_prefix = "edge".into()), "h");
        assert_eq!(prefixed.gauge("state.nodes").unwrap(), "edge.h.state.nodes");
        let bare = Naming::new(&telemetry(|t| t.metrics_prefix.clear()), "h");
        assert_eq!(bare.recorded("kvs.apply").unwrap(), "kvs.apply");
    }

    #[test]
    fn the_longest_matching_rule_filters_the_full_name() {
        let naming = Naming::new(
            &telemetry(|t| {
                t.disable_hostname = true;
                t.allowed_prefixes = vec!["consul.raft.apply".into(), "consul.http".into()];
                t.blocked_prefixes = vec!["consul.raft".into(), "consul.http".into()];
            }),
            "h",
        );
        assert_eq!(naming.recorded("raft.apply").unwrap(), "consul.raft.apply");
        assert_eq!(naming.recorded("raft.commitTime"), None);
        assert_eq!(
            naming.recorded("http.GET.v1.kv._"),
            None,
            "blocked wins a tie"
        );
        assert_eq!(naming.recorded("kvs.apply").unwrap(), "consul.kvs.apply");
        let deny = Naming::new(
            &telemetry(|t| {
                t.filter_default = false;
                t.allowed_prefixes = vec!["consul.kvs".into()];
            }),
            "h",
        );
        assert_eq!(deny.recorded("kvs.apply").unwrap(), "consul.kvs.apply");
        assert_eq!(
            deny.gauge("kvs.entries"),
            None,
            "the host name is part of the name"
        );
        assert_eq!(deny.recorded("txn.apply"), None);
    }

    #[test]
    fn floats_as_go_formats_them() {
        for (v, text) in [
            (0.0, "0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (27267072.0, "2.7267072e+07"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float(v), text);
        }
    }

    #[test]
    fn http_requests_are_labelled_as_consul_api_http() {
        let m = Metrics::new();
        let key = Key::Http {
            method: http::Method::GET,
            route: "/v1/kv/",
        };
        m.record(key, 1.5);
        let totals = totals(&m);
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
        assert_eq!(
            write_prometheus(&[], &totals[..1]),
            "# HELP consul_api_http consul_api_http\n# TYPE consul_api_http summary\n\
             consul_api_http{method=\"GET\",path=\"v1_kv_\",quantile=\"0.5\"} 1.5\n\
             consul_api_http{method=\"GET\",path=\"v1_kv_\",quantile=\"0.9\"} 1.5\n\
             consul_api_http{method=\"GET\",path=\"v1_kv_\",quantile=\"0.99\"} 1.5\n\
             consul_api_http_sum{method=\"GET\",path=\"v1_kv_\"} 1.5\n\
             consul_api_http_count{method=\"GET\",path=\"v1_kv_\"} 1\n"
        );
        let compat_off = Naming::new(
            &TelemetryConfig {
                disable_compat_1_9: true,
                ..TelemetryConfig::default()
            },
            "",
        );
        let names: Vec<String> = m
            .totals(SystemTime::now(), Duration::ZERO, &compat_off)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["consul.api.http"]);
    }

    #[test]
    fn prometheus_families_sort_by_name_across_kinds() {
        let m = Metrics::new();
        m.record(Key::Named(Kind::Counter, "serf.events"), 1.0);
        let gauges = [Gauge {
            name: "consul.state.nodes".into(),
            value: 27267072.0,
            help: Some("Number of nodes in the catalog."),
        }];
        assert_eq!(
            write_prometheus(&gauges, &totals(&m)),
            "# HELP consul_serf_events consul_serf_events\n# TYPE consul_serf_events counter\n\
             consul_serf_events 1\n\
             # HELP consul_state_nodes Number of nodes in the catalog.\n\
             # TYPE consul_state_nodes gauge\nconsul_state_nodes 2.7267072e+07\n"
        );
    }
}
