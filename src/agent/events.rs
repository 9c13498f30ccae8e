//! The recent user events this agent has seen (a single node is the whole gossip pool), in
//! memory as Consul keeps them, ordered by a Lamport clock.

use base64::Engine;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many recent events an agent keeps.
pub const EVENT_BUFFER: usize = 256;
/// A user event (Consul's `agent.UserEvent`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserEvent {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "base64_or_null")]
    pub payload: Option<Vec<u8>>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u32,
    #[serde(rename = "LTime")]
    pub ltime: u64,
}

fn base64_or_null<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(bytes) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        None => s.serialize_none(),
    }
}

/// The recent events and the Lamport clock that orders them.
pub struct Events {
    buffer: Mutex<VecDeque<UserEvent>>,
    /// The next event's Lamport time (Serf starts its event clock at 1).
    clock: AtomicU64,
    /// Bumped each time an event is recorded; `/v1/event/list` waits on it.
    recorded: tokio::sync::watch::Sender<u64>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            buffer: Mutex::new(VecDeque::with_capacity(EVENT_BUFFER)),
            clock: AtomicU64::new(1),
            recorded: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Events {
    pub fn new() -> Events {
        Events::default()
    }

    /// The Lamport time the next event will get.
    pub fn lamport_time(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Changes whenever an event is recorded.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Assigns the next Lamport time.
    pub fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Records an event, dropping the oldest past `EVENT_BUFFER`, and wakes waiting lists.
    pub fn record(&self, event: UserEvent) {
        {
            let mut buffer = self.buffer.lock().unwrap();
            if buffer.len() == EVENT_BUFFER {
                buffer.pop_front();
            }
            buffer.push_back(event);
        }
        self.recorded.send_modify(|n| *n += 1);
    }

    /// The recorded events, oldest first, optionally only those named `name`.
    pub fn list(&self, name: Option<&str>) -> Vec<UserEvent> {
        self.buffer
            .lock()
            .unwrap()
            .iter()
            .filter(|e| name.is_none_or(|n| e.name == n))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_newest_256() {
        let events = Events::new();
        for i in 0..300 {
            events.record(UserEvent {
                id: format!("{i}"),
                name: if i % 2 == 0 { "even" } else { "odd" }.into(),
                payload: None,
                node_filter: String::new(),
                service_filter: String::new(),
                tag_filter: String::new(),
                version: 1,
                ltime: i,
            });
        }
        let all = events.list(None);
        assert_eq!(all.len(), EVENT_BUFFER);
        assert_eq!(all[0].ltime, 44);
        assert_eq!(events.list(Some("odd")).len(), 128);
    }
}
