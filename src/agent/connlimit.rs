//! Consul's `limits.http_max_conns_per_client`: how many HTTP connections one client IP may
//! hold open at once. A connection past the limit is answered `429 Too Many Requests` and
//! closed before any request is read, as Consul's connection limiter does; the limit can change
//! on reload (connections already open stay, even if now over it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What an over-limit client reads before the connection closes.
pub const TOO_MANY_CONNECTIONS: &[u8] =
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Open HTTP connections per client IP. Invariant: an IP's count is the number of live
/// `ConnectionPermit`s for it, and IPs with none have no entry.
pub struct ConnectionLimiter {
    /// The limit per IP; 0 means none.
    max: AtomicU64,
    open: Mutex<HashMap<IpAddr, u64>>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max: u64) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max: AtomicU64::new(max),
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn set_max(&self, max: u64) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Counts a new connection from `ip`, or refuses it when `ip` is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let max = self.max.load(Ordering::Relaxed);
        let mut open = self.open.lock().unwrap();
        let count = open.entry(ip).or_insert(0);
        if max > 0 && *count >= max {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> u64 {
        self.open.lock().unwrap().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_per_ip_and_frees_on_drop() {
        let limiter = ConnectionLimiter::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = limiter.admit(a).unwrap();
        let _second = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none());
        // Another client has its own allowance.
        let _other = limiter.admit(b).unwrap();
        drop(first);
        assert_eq!(limiter.open(a), 1);
        let _third = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none());
    }

    #[test]
    fn zero_means_no_limit_and_the_limit_can_change() {
        let limiter = ConnectionLimiter::new(0);
        let a: IpAddr = "::1".parse().unwrap();
        let permits: Vec<_> = (0..500).map(|_| limiter.admit(a).unwrap()).collect();
        limiter.set_max(500);
        assert!(limiter.admit(a).is_none());
        drop(permits);
        assert_eq!(limiter.open(a), 0);
        assert!(limiter.open.lock().unwrap().is_empty());
    }
}
