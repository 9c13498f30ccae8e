//! `/v1/txn` request and response bodies.

use super::KvEntry;
use serde::{Deserialize, Serialize};

/// One operation of a transaction: one of `KV`, `Node`, `Service`, `Check`, `Session`. This
/// build executes `KV`; the others are refused by name until the catalog and session work
/// lands. Unknown fields are ignored, as Go's decoder does.
#[derive(Debug, Clone, Deserialize)]
pub struct TxnOp {
    #[serde(rename = "KV")]
    pub kv: Option<TxnKvOp>,
    #[serde(rename = "Node")]
    pub node: Option<serde_json::Value>,
    #[serde(rename = "Service")]
    pub service: Option<serde_json::Value>,
    #[serde(rename = "Check")]
    pub check: Option<serde_json::Value>,
    #[serde(rename = "Session")]
    pub session: Option<serde_json::Value>,
}

impl TxnOp {
    /// The name of the non-KV operation this op carries, if any.
    pub fn other_kind(&self) -> Option<&'static str> {
        [
            ("Node", &self.node),
            ("Service", &self.service),
            ("Check", &self.check),
            ("Session", &self.session),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some())
        .map(|(name, _)| name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnKvOp {
    pub verb: String,
    #[serde(default)]
    pub key: String,
    #[serde(default, with = "super::base64_bytes")]
    pub value: Vec<u8>,
    #[serde(default)]
    pub flags: u64,
    #[serde(default)]
    pub index: u64,
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub partition: Option<String>,
}

/// One entry of a successful transaction's `Results`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    #[serde(rename = "KV")]
    pub kv: KvEntry,
}

/// Why a transaction was rolled back: the failing operation's position and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}
