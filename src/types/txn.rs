//! `/v1/txn` request and response bodies.

use super::catalog::{HealthCheck, Node, NodeService};
use super::KvEntry;
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// One operation of a transaction: one of `KV`, `Node`, `Service`, `Check` (and `Session`,
/// which arrives with the sessions work). Unknown fields are ignored, as Go's decoder does.
#[derive(Debug, Clone, Deserialize, Encode, Decode)]
pub struct TxnOp {
    #[serde(rename = "KV")]
    pub kv: Option<TxnKvOp>,
    #[serde(rename = "Node")]
    pub node: Option<TxnNodeOp>,
    #[serde(rename = "Service")]
    pub service: Option<TxnServiceOp>,
    #[serde(rename = "Check")]
    pub check: Option<TxnCheckOp>,
    #[serde(rename = "Session")]
    pub session: Option<TxnSessionOp>,
}

impl TxnOp {
    /// The operation's verb, whatever its kind.
    pub fn verb(&self) -> Option<&str> {
        self.kv
            .as_ref()
            .map(|o| o.verb.as_str())
            .or(self.node.as_ref().map(|o| o.verb.as_str()))
            .or(self.service.as_ref().map(|o| o.verb.as_str()))
            .or(self.check.as_ref().map(|o| o.verb.as_str()))
            .or(self.session.as_ref().map(|o| o.verb.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize, Encode, Decode)]
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

#[derive(Debug, Clone, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct TxnNodeOp {
    pub verb: String,
    pub node: Node,
}

#[derive(Debug, Clone, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct TxnServiceOp {
    pub verb: String,
    pub node: String,
    pub service: NodeService,
}

#[derive(Debug, Clone, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct TxnCheckOp {
    pub verb: String,
    pub check: HealthCheck,
}

#[derive(Debug, Clone, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct TxnSessionOp {
    pub verb: String,
    pub session: TxnSessionRef,
}

/// The session an operation names (only its ID matters).
#[derive(Debug, Clone, Deserialize, Encode, Decode)]
pub struct TxnSessionRef {
    #[serde(rename = "ID")]
    pub id: String,
}

/// One entry of a successful transaction's `Results`: exactly one field is set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TxnResult {
    #[serde(rename = "KV", skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvEntry>,
    #[serde(rename = "Node", skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    #[serde(rename = "Service", skip_serializing_if = "Option::is_none")]
    pub service: Option<NodeService>,
    #[serde(rename = "Check", skip_serializing_if = "Option::is_none")]
    pub check: Option<HealthCheck>,
}

/// Why a transaction was rolled back: the failing operation's position and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
}
