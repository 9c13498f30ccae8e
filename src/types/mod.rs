//! Consul's JSON types, shared by the store (which persists them), the HTTP layer (which renders
//! them) and the CLI (which reads them back). Field names and shapes follow Consul's API.

pub mod acl;
pub mod autopilot;
pub mod catalog;
pub mod config_entry;
pub mod coordinate;
pub mod gateway;
pub mod intention;
pub mod json;
pub mod kv;
pub mod prepared_query;
pub mod schemas;
pub mod session;
pub mod txn;

pub use json::JsonValue;
pub use kv::KvEntry;
pub use txn::{
    TxnCheckOp, TxnError, TxnKvOp, TxnNodeOp, TxnOp, TxnResult, TxnServiceOp, TxnSessionOp,
};

/// Serde helpers for `[]byte` fields: base64 in JSON, `null` for empty (as Go renders a nil slice).
pub mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if bytes.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(Vec::new()),
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}
