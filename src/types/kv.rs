use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// One KV entry, as stored and as `/v1/kv` renders it (Consul's `DirEntry`).
/// Invariant: `create_index <= modify_index`; `lock_index` counts successful acquisitions and
/// `session` is set only while a session holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct KvEntry {
    pub lock_index: u64,
    pub key: String,
    pub flags: u64,
    #[serde(with = "super::base64_bytes")]
    pub value: Vec<u8>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for KvEntry {
    const VERSION: u8 = 1;
}
