//! Record encoding: bincode 2 inside a one-byte versioned envelope.
//!
//! Every stored value is `[version: u8][bincode payload]`. A record type names its current
//! version; decoding an older version goes through the type's `upgrade` chain, so a record
//! written by an older build is read without rewriting the file (migrations in `migrations/`
//! rewrite whole tables when that is cheaper or needed).

use super::error::{Result, StoreError};
use bincode::{Decode, Encode};

/// A value stored in a table. `VERSION` is bumped whenever the encoded shape changes; the
/// previous shape then lives on as a frozen type that `decode_version` converts from.
pub trait Record: Encode + Decode<()> + Sized {
    const VERSION: u8;

    /// Decodes a payload written with an older `version`. The default knows only the current one.
    fn decode_version(version: u8, payload: &[u8]) -> Result<Self, String> {
        Err(format!(
            "unknown record version {version} (this build writes {}; payload {} bytes)",
            Self::VERSION,
            payload.len()
        ))
    }
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Record>(value: &T) -> Vec<u8> {
    let mut out = vec![T::VERSION];
    bincode::encode_into_std_write(value, &mut out, config())
        .expect("encoding into a Vec cannot fail");
    out
}

/// Decodes the payload of a bincode record of exactly type `T` (used by `decode_version` chains).
pub fn decode_payload<T: Decode<()>>(payload: &[u8]) -> Result<T, String> {
    bincode::decode_from_slice(payload, config())
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}

pub fn decode<T: Record>(table: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table,
        key: key.to_string(),
        reason,
    };
    let (&version, payload) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty value".into()))?;
    if version == T::VERSION {
        decode_payload(payload).map_err(corrupt)
    } else {
        T::decode_version(version, payload).map_err(corrupt)
    }
}
