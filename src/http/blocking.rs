//! The one blocking-query mechanism every read endpoint uses (Consul's `blockingquery`).
//!
//! A query function reads one snapshot, records what it read in a `WatchSet` and returns
//! `(index, result)`. Without `?index` (or `?hash`) it runs once. Otherwise it runs again each
//! time a commit touches what it read, until the index passes the client's (or the content hash
//! differs), or the wait (plus up to 1/16 jitter) runs out; then it reads once more and returns
//! that.
//! A query whose result goes stale with time rather than with a write (`WatchSet::stale_at`)
//! is read again at that time, as if a write had woken it.
//! An index ahead of the store's simply waits, as Consul's does. The index is never below 1.
//! A snapshot restore wakes every waiting read, which returns at once with an index no lower
//! than the store's (what it waited on was replaced; entries' own indexes may be older).

use super::error::ApiError;
use super::query::QueryOptions;
use crate::store::{ReadTx, Store, WatchSet};
use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;

/// What a blocking read returns: the result with its index and, when asked for, content hash.
pub struct Blocked<T> {
    pub index: u64,
    pub hash: Option<String>,
    pub value: T,
}

/// When a result is fresh enough to return.
enum Want<'a> {
    Index(u64),
    Hash(&'a str),
}

pub async fn blocking<T, F>(
    store: &Store,
    opts: &QueryOptions,
    query: F,
) -> Result<Blocked<T>, ApiError>
where
    F: Fn(&ReadTx, &mut WatchSet) -> crate::store::Result<(u64, T)>,
    T: Serialize,
{
    run(store, opts, false, query).await
}

/// Like `blocking`, and the result carries its `X-Consul-ContentHash`; `?hash=` blocks until
/// the hash differs.
pub async fn blocking_hashed<T, F>(
    store: &Store,
    opts: &QueryOptions,
    query: F,
) -> Result<Blocked<T>, ApiError>
where
    F: Fn(&ReadTx, &mut WatchSet) -> crate::store::Result<(u64, T)>,
    T: Serialize,
{
    run(store, opts, true, query).await
}

async fn run<T, F>(
    store: &Store,
    opts: &QueryOptions,
    hashed: bool,
    query: F,
) -> Result<Blocked<T>, ApiError>
where
    F: Fn(&ReadTx, &mut WatchSet) -> crate::store::Result<(u64, T)>,
    T: Serialize,
{
    let want = match (&opts.hash, opts.index) {
        (Some(h), _) if hashed => Some(Want::Hash(h)),
        (_, 0) => None,
        (_, i) => Some(Want::Index(i)),
    };
    let deadline = Instant::now() + opts.wait + jitter(opts.wait);
    let restores = store.watches().restores();
    let mut timed_out = false;
    loop {
        let mut ws = WatchSet::new();
        let read = store.read()?;
        let (index, value) = query(&read, &mut ws)?;
        let read_index = read.global_index()?;
        drop(read);
        let restored = want.is_some() && store.watches().restores() != restores;
        // After a restore the entries' own indexes may be older than what the reader saw.
        let floor = if restored { read_index } else { 1 };
        let index = index.max(floor).max(1);
        let hash = if hashed {
            Some(content_hash(&value)?)
        } else {
            None
        };
        let fresh = match &want {
            None => true,
            Some(Want::Index(min)) => index > *min,
            Some(Want::Hash(h)) => hash.as_deref() != Some(*h),
        };
        if fresh || restored || timed_out || Instant::now() >= deadline {
            return Ok(Blocked { index, hash, value });
        }
        // A result that goes stale with time (not with a write) is read again then.
        let stale_at = ws.stale_at_ms().map(|unix_ms| {
            Instant::now()
                + std::time::Duration::from_millis(unix_ms.saturating_sub(crate::clock::now_ms()))
        });
        let watch = store.watches().register(ws, read_index);
        // A parked read holds only its watch: with thousands of watchers, keeping every result
        // until it is superseded would cost memory in proportion to the results' size. A
        // timeout reads once more and returns that (never older than the result dropped here).
        drop((value, hash));
        let wake = stale_at.map_or(deadline, |at| at.min(deadline));
        tokio::select! {
            _ = watch.changed() => {}
            _ = tokio::time::sleep_until(wake) => timed_out = wake >= deadline,
        }
    }
}

/// A random extra wait below `wait / 16`, so many clients don't all return together.
fn jitter(wait: std::time::Duration) -> std::time::Duration {
    let max = wait.as_nanos() as u64 / 16;
    if max == 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_nanos(rand::rng().random_range(0..max))
}

/// A stable hash of a result's JSON rendering (16 hex digits, like Consul's).
pub fn content_hash<T: Serialize>(value: &T) -> Result<String, ApiError> {
    let json = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    Ok(digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv;
    use crate::store::Command;
    use std::time::Duration;

    fn opts(index: u64, wait_ms: u64) -> QueryOptions {
        QueryOptions {
            index,
            wait: Duration::from_millis(wait_ms),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn wakes_on_a_change_to_the_watched_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.apply(Command::kv_set("a", b"1")).await.unwrap();
        let reader = store.clone();
        let waiter = tokio::spawn(async move {
            let started = Instant::now();
            let got = blocking(&reader, &opts(1, 5_000), |r, ws| kv::get(r, ws, "a"))
                .await
                .unwrap();
            (got.index, got.value.unwrap().value, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // An unrelated key does not wake the reader...
        store.apply(Command::kv_set("b", b"x")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        // ...a change to its key does.
        store.apply(Command::kv_set("a", b"2")).await.unwrap();
        let (index, value, elapsed) = waiter.await.unwrap();
        assert_eq!((index, value.as_slice()), (3, &b"2"[..]));
        assert!(elapsed < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn times_out_with_the_current_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let got = blocking(&store, &opts(50, 100), |r, ws| kv::get(r, ws, "missing"))
            .await
            .unwrap();
        assert_eq!(got.index, 1);
        assert!(got.value.is_none());
    }

    #[tokio::test]
    async fn a_result_that_goes_stale_with_time_is_read_again_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stale_at = crate::clock::now_ms() + 300;
        let started = Instant::now();
        let got = blocking(&store, &opts(1, 10_000), |_, ws| {
            ws.stale_at(stale_at);
            let now = crate::clock::now_ms();
            Ok((if now >= stale_at { 2 } else { 1 }, now))
        })
        .await
        .unwrap();
        assert_eq!(got.index, 2);
        assert!(got.value >= stale_at);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn hash_blocking_returns_when_the_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.apply(Command::kv_set("a", b"1")).await.unwrap();
        let first = blocking_hashed(&store, &opts(0, 100), |r, ws| kv::get(r, ws, "a"))
            .await
            .unwrap();
        let hash = first.hash.clone().unwrap();
        assert_eq!(hash.len(), 16);
        let mut o = opts(0, 5_000);
        o.hash = Some(hash.clone());
        let reader = store.clone();
        let waiter = tokio::spawn(async move {
            blocking_hashed(&reader, &o, |r, ws| kv::get(r, ws, "a"))
                .await
                .unwrap()
                .hash
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.apply(Command::kv_set("a", b"2")).await.unwrap();
        assert_ne!(waiter.await.unwrap().unwrap(), hash);
    }
}
