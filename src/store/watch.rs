//! Watches for blocking queries: a reader records what it read (a key, a prefix or a whole
//! table) in a `WatchSet`; after each commit the writer wakes only the readers whose recorded
//! data the commit touched.
//!
//! Invariant: a watch registered for a read made at global index N fires for every commit with
//! an index above N that touches its data. `register` enforces it: when a commit above N was
//! already announced before the watch was in place, the watch fires at once (the caller reads
//! again), so no change can slip between reading and waiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A touched "table" that stands for everything: a commit touching it wakes every watch and
/// counts as a restore (see `Watches::restores`). Written by `WriteTx::wake_all`.
pub const EVERYTHING: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchKey {
    /// Any write to the table.
    Table(&'static str),
    /// A write to this exact key.
    Key(&'static str, String),
    /// A write to any key starting with this prefix.
    Prefix(&'static str, String),
}

/// What one read touched; handed to `Watches::register` when the reader decides to wait.
#[derive(Debug, Default)]
pub struct WatchSet {
    keys: Vec<WatchKey>,
    /// Unix milliseconds from which what was read is stale with no write at all (a cached
    /// certificate reaching its renewal point): a blocking read waits no longer.
    stale_at_ms: Option<u64>,
}

impl WatchSet {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn table(&mut self, table: &'static str) {
        self.keys.push(WatchKey::Table(table));
    }
    pub fn key(&mut self, table: &'static str, key: &str) {
        self.keys.push(WatchKey::Key(table, key.to_string()));
    }
    pub fn prefix(&mut self, table: &'static str, prefix: &str) {
        self.keys.push(WatchKey::Prefix(table, prefix.to_string()));
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Records that the result read goes stale at `unix_ms` (the earliest such time counts).
    pub fn stale_at(&mut self, unix_ms: u64) {
        self.stale_at_ms = Some(self.stale_at_ms.map_or(unix_ms, |t| t.min(unix_ms)));
    }
    pub fn stale_at_ms(&self) -> Option<u64> {
        self.stale_at_ms
    }
}

type Waiters = HashMap<u64, Arc<Notify>>;

#[derive(Default)]
struct Registry {
    /// Index of the last commit whose touched keys were announced.
    announced: u64,
    /// Commits announced that touched `EVERYTHING` (snapshot restores).
    restores: u64,
    next_id: u64,
    keys: HashMap<(&'static str, String), Waiters>,
    /// Per table: prefix → waiters.
    prefixes: HashMap<&'static str, HashMap<String, Waiters>>,
    tables: HashMap<&'static str, Waiters>,
}

/// The registry shared by the writer (which announces commits) and blocking readers.
#[derive(Default)]
pub struct Watches {
    registry: Mutex<Registry>,
}

/// A registered wait. Dropping it removes its registrations.
pub struct Watch {
    watches: Arc<Watches>,
    id: u64,
    keys: Vec<WatchKey>,
    notify: Arc<Notify>,
}

impl Watch {
    /// Resolves when a commit touched the watched data (or at once if one already had).
    pub async fn changed(&self) {
        self.notify.notified().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut reg = self.watches.registry.lock().unwrap();
        for key in &self.keys {
            match key {
                WatchKey::Table(t) => remove_waiter(&mut reg.tables, t, self.id),
                WatchKey::Key(t, k) => remove_waiter(&mut reg.keys, &(*t, k.clone()), self.id),
                WatchKey::Prefix(t, p) => {
                    if let Some(by_prefix) = reg.prefixes.get_mut(t) {
                        remove_waiter(by_prefix, p, self.id);
                        if by_prefix.is_empty() {
                            reg.prefixes.remove(t);
                        }
                    }
                }
            }
        }
    }
}

fn remove_waiter<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Waiters>, key: &K, id: u64) {
    if let Some(waiters) = map.get_mut(key) {
        waiters.remove(&id);
        if waiters.is_empty() {
            map.remove(key);
        }
    }
}

impl Watches {
    pub fn new(announced: u64) -> Arc<Self> {
        let watches = Watches::default();
        watches.registry.lock().unwrap().announced = announced;
        Arc::new(watches)
    }

    /// Registers `set`, read at global index `read_index`, and returns the watch to wait on.
    pub fn register(self: &Arc<Self>, set: WatchSet, read_index: u64) -> Watch {
        let notify = Arc::new(Notify::new());
        let mut reg = self.registry.lock().unwrap();
        reg.next_id += 1;
        let id = reg.next_id;
        if reg.announced > read_index {
            // A commit newer than the read was announced before we got here: read again.
            notify.notify_one();
        }
        let mut keys = set.keys;
        keys.sort();
        keys.dedup();
        for key in &keys {
            let waiters = match key {
                WatchKey::Table(t) => reg.tables.entry(t).or_default(),
                WatchKey::Key(t, k) => reg.keys.entry((t, k.clone())).or_default(),
                WatchKey::Prefix(t, p) => reg
                    .prefixes
                    .entry(t)
                    .or_default()
                    .entry(p.clone())
                    .or_default(),
            };
            waiters.insert(id, notify.clone());
        }
        Watch {
            watches: self.clone(),
            id,
            keys,
            notify,
        }
    }

    /// The index of the last commit announced: a read started after this call sees every
    /// commit up to it, and registering a watch with it as the read index fires for every
    /// later commit that touches the watched data.
    pub fn announced(&self) -> u64 {
        self.registry.lock().unwrap().announced
    }

    /// Called by the writer after a commit at `index` became durable, with every (table, key)
    /// the commit wrote. Wakes exactly the watches on those keys, their prefixes and tables.
    pub fn announce(&self, index: u64, touched: &HashSet<(&'static str, String)>) {
        let mut reg = self.registry.lock().unwrap();
        reg.announced = reg.announced.max(index);
        if touched.contains(&(EVERYTHING, String::new())) {
            reg.restores += 1;
            let all = reg.keys.values().chain(reg.tables.values()).chain(
                reg.prefixes
                    .values()
                    .flat_map(|by_prefix| by_prefix.values()),
            );
            for waiters in all {
                for notify in waiters.values() {
                    notify.notify_one();
                }
            }
            return;
        }
        let mut fired: HashSet<u64> = HashSet::new();
        let mut fire = |waiters: Option<&Waiters>| {
            for (id, notify) in waiters.into_iter().flatten() {
                if fired.insert(*id) {
                    notify.notify_one();
                }
            }
        };
        let touched_tables: HashSet<&'static str> = touched.iter().map(|(t, _)| *t).collect();
        for table in &touched_tables {
            fire(reg.tables.get(table));
        }
        for (table, key) in touched {
            fire(reg.keys.get(&(*table, key.clone())));
            if let Some(by_prefix) = reg.prefixes.get(table) {
                for end in (0..=key.len()).filter(|&i| key.is_char_boundary(i)) {
                    fire(by_prefix.get(&key[..end]));
                }
            }
        }
    }

    /// How many commits so far replaced everything (snapshot restores). A blocking read that
    /// sees this change while it waits returns at once: what it waited on was replaced, and
    /// its index may have gone backwards.
    pub fn restores(&self) -> u64 {
        self.registry.lock().unwrap().restores
    }

    /// Number of registered waiters (for metrics and tests).
    pub fn waiting(&self) -> usize {
        let reg = self.registry.lock().unwrap();
        let mut ids: HashSet<u64> = HashSet::new();
        for w in reg.keys.values().chain(reg.tables.values()) {
            ids.extend(w.keys());
        }
        for by_prefix in reg.prefixes.values() {
            for w in by_prefix.values() {
                ids.extend(w.keys());
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touched(items: &[(&'static str, &str)]) -> HashSet<(&'static str, String)> {
        items.iter().map(|(t, k)| (*t, k.to_string())).collect()
    }

    async fn fired(watch: &Watch) -> bool {
        tokio::time::timeout(Duration::from_millis(20), watch.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn wakes_only_matching_watchers() {
        let watches = Watches::new(5);
        let mut a = WatchSet::new();
        a.key("kv", "a");
        let mut b = WatchSet::new();
        b.key("kv", "b");
        let mut p = WatchSet::new();
        p.prefix("kv", "fo");
        let mut t = WatchSet::new();
        t.table("other");
        let (wa, wb, wp, wt) = (
            watches.register(a, 5),
            watches.register(b, 5),
            watches.register(p, 5),
            watches.register(t, 5),
        );
        watches.announce(6, &touched(&[("kv", "a"), ("kv", "foo")]));
        assert!(fired(&wa).await);
        assert!(!fired(&wb).await);
        assert!(fired(&wp).await);
        assert!(!fired(&wt).await);
    }

    #[tokio::test]
    async fn a_commit_between_read_and_register_fires_at_once() {
        let watches = Watches::new(5);
        watches.announce(6, &touched(&[("kv", "x")]));
        let mut set = WatchSet::new();
        set.key("kv", "unrelated");
        let watch = watches.register(set, 5);
        assert!(fired(&watch).await);
    }

    #[tokio::test]
    async fn touching_everything_wakes_every_watch_and_counts_a_restore() {
        let watches = Watches::new(5);
        let mut k = WatchSet::new();
        k.key("kv", "missing");
        let mut p = WatchSet::new();
        p.prefix("sessions", "x");
        let (wk, wp) = (watches.register(k, 5), watches.register(p, 5));
        assert_eq!(watches.restores(), 0);
        watches.announce(6, &touched(&[(EVERYTHING, "")]));
        assert!(fired(&wk).await);
        assert!(fired(&wp).await);
        assert_eq!(watches.restores(), 1);
    }

    #[tokio::test]
    async fn dropping_a_watch_unregisters_it() {
        let watches = Watches::new(1);
        let mut set = WatchSet::new();
        set.prefix("kv", "");
        set.key("kv", "k");
        let watch = watches.register(set, 1);
        assert_eq!(watches.waiting(), 1);
        drop(watch);
        assert_eq!(watches.waiting(), 0);
    }
}
