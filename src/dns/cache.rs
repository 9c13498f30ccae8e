//! Answers kept between questions, each with the watch of what it was read from: the first
//! commit touching that data fires the watch and the next lookup drops the answer, so a
//! change is seen by the first question after it (the writer announces a commit before it
//! acknowledges it). Always consistent with the store, hence no setting for it (Consul's
//! `dns_config.use_cache` serves stale answers for `cache_max_age`; this never does).

use crate::store::Watch;
use futures_util::FutureExt;
use hickory_proto::rr::RecordType;
use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many answers are kept; a new one beyond replaces an arbitrary one. Enough for
/// every service of a large catalog asked as A and SRV.
const CAPACITY: usize = 8192;

/// What an answer is for: the question, the token it was read as, and the generation of the
/// DNS settings it was built under (a reload changes TTLs and health filtering).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    secret: String,
    qname: String,
    qtype: RecordType,
    settings: u64,
}

impl Key {
    pub fn new(secret: &str, qname: &str, qtype: RecordType, settings: u64) -> Key {
        Key {
            secret: secret.to_string(),
            qname: qname.to_string(),
            qtype,
            settings,
        }
    }
}

struct Entry<V> {
    value: V,
    watch: Watch,
}

pub struct Cache<V> {
    entries: Mutex<HashMap<Key, Entry<V>>>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

/// `V` is cheap to clone (what it holds is shared).
impl<V: Clone> Cache<V> {
    /// The answer kept for `key`, unless what it was read from changed since.
    pub fn get(&self, key: &Key) -> Option<V> {
        let mut entries = self.entries.lock().unwrap();
        let entry = entries.get(key)?;
        if entry.watch.changed().now_or_never().is_some() {
            entries.remove(key);
            return None;
        }
        Some(entry.value.clone())
    }

    /// Keeps `value` for `key`. `watch` covers everything the value was read from, registered
    /// with a read index no later than the oldest state the value reflects.
    pub fn insert(&self, key: Key, value: V, watch: Watch) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            if let Some(evicted) = entries.keys().next().cloned() {
                entries.remove(&evicted);
            }
        }
        entries.insert(key, Entry { value, watch });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{WatchSet, Watches};
    use std::collections::HashSet;
    use std::sync::Arc;

    fn watch_on(watches: &Arc<Watches>, key: &str) -> Watch {
        let mut set = WatchSet::new();
        set.key("catalog_indexes", key);
        watches.register(set, watches.announced())
    }

    fn touch(watches: &Watches, index: u64, key: &str) {
        let touched: HashSet<(&'static str, String)> =
            [("catalog_indexes", key.to_string())].into();
        watches.announce(index, &touched);
    }

    #[test]
    fn an_answer_is_dropped_by_the_first_change_to_what_it_read() {
        let watches = Watches::new(1);
        let cache = Cache::default();
        let web = Key::new("", "web.service.consul.", RecordType::A, 0);
        let db = Key::new("", "db.service.consul.", RecordType::A, 0);
        cache.insert(web.clone(), 1, watch_on(&watches, "service/web"));
        cache.insert(db.clone(), 2, watch_on(&watches, "service/db"));
        assert_eq!(cache.get(&web), Some(1));
        touch(&watches, 2, "service/web");
        assert_eq!(cache.get(&web), None);
        assert_eq!(cache.get(&db), Some(2));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn an_answer_read_before_a_commit_announced_since_is_never_served() {
        let watches = Watches::new(1);
        let cache = Cache::default();
        let since = watches.announced();
        touch(&watches, 2, "service/other");
        let mut set = WatchSet::new();
        set.key("catalog_indexes", "service/web");
        let key = Key::new("", "web.service.consul.", RecordType::SRV, 0);
        cache.insert(key.clone(), 1, watches.register(set, since));
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn the_token_and_the_type_tell_answers_apart() {
        let watches = Watches::new(1);
        let cache = Cache::default();
        let keys = [
            Key::new("", "web.service.consul.", RecordType::A, 0),
            Key::new("", "web.service.consul.", RecordType::SRV, 0),
            Key::new("secret", "web.service.consul.", RecordType::A, 0),
        ];
        for (n, key) in keys.iter().enumerate() {
            cache.insert(key.clone(), n, watch_on(&watches, "service/web"));
        }
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(cache.get(key), Some(n));
        }
    }

    #[test]
    fn at_capacity_a_new_answer_replaces_an_old_one() {
        let watches = Watches::new(1);
        let cache = Cache::default();
        for n in 0..=CAPACITY {
            let key = Key::new("", &format!("s{n}.service.consul."), RecordType::A, 0);
            cache.insert(key, n, watch_on(&watches, "service/s"));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert_eq!(watches.waiting(), CAPACITY);
        let last = Key::new(
            "",
            &format!("s{CAPACITY}.service.consul."),
            RecordType::A,
            0,
        );
        assert_eq!(cache.get(&last), Some(CAPACITY));
    }
}
