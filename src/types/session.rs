//! Sessions (Consul's `structs.Session`), as stored and rendered.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

pub const BEHAVIOR_RELEASE: &str = "release";
pub const BEHAVIOR_DELETE: &str = "delete";

/// A service check a session is tied to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCheck {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub namespace: String,
}

/// A session. Invariant: while it exists, its node and every check it names exist and none of
/// those checks is critical; when that stops being true the session is invalidated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct Session {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub node: String,
    /// Nanoseconds, as Go renders a `time.Duration`.
    pub lock_delay: u64,
    pub behavior: String,
    /// Go duration text (`"30s"`), empty for no TTL.
    #[serde(rename = "TTL")]
    pub ttl: String,
    pub node_checks: Option<Vec<String>>,
    pub service_checks: Option<Vec<ServiceCheck>>,
    pub create_index: u64,
    pub modify_index: u64,
    /// Unix milliseconds after which a TTL session is invalid (TTL × 2 after the last renewal,
    /// Consul's grace); 0 without a TTL. Not part of Consul's JSON.
    #[serde(skip)]
    pub expires_at_ms: u64,
}

impl crate::store::codec::Record for Session {
    const VERSION: u8 = 1;
}
