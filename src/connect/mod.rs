//! Connect's built-in CA (Consul's `consul` provider), as a pure crypto core.
//!
//! Nothing here touches the store or reads a clock: callers pass `now`, and every function
//! returns plain data (PEM strings, serials, IDs) to be put in a write command. Keys, serials
//! and CA name suffixes are drawn from the OS random source while the command is being built,
//! never while it is applied, so applying a command stays deterministic.
//!
//! - [`config`]: the provider's `Config` map (Consul's `ConsulCAProviderConfig`), decoded and
//!   validated.
//! - [`keys`]: CA key type/size configuration (Consul's `PrivateKeyType`/`PrivateKeyBits`) and
//!   key generation.
//! - [`ca`]: root generation and import ([`CaRoot`], as Consul's `CARoot`), and cross-signing a
//!   new root with the old one during rotation.
//! - [`leaf`]: signing a leaf certificate for a service, agent or mesh gateway.
//! - [`uri`]: SPIFFE IDs, parsed as Consul's `connect.ParseCertURI`.
//! - [`agent_tls`]: the agents' own TLS CA and certificates (`legate tls`), not Connect's.

pub mod agent_tls;
pub mod ca;
pub mod config;
pub mod keys;
pub mod leaf;
pub mod uri;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use x509_parser::certificate::X509Certificate;

pub use ca::{cross_sign, generate_root, import_root, trust_domain, CaRoot, CaSigner};
pub use config::CaSettings;
pub use keys::{generate_private_key, validate_leaf_cert_ttl, KeySpec, KeyType};
pub use leaf::{sign_leaf, IssuedLeaf, LeafRequest};
pub use uri::CertUri;

/// Why a CA operation failed. Messages that Consul also produces read as Consul's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("private key type must be either 'ec' or 'rsa'")]
    InvalidKeyType,
    #[error("EC key length must be one of (224, 256, 384, 521) bits")]
    InvalidEcKeyBits,
    #[error("RSA key length must be 2048 or 4096 bits")]
    InvalidRsaKeyBits,
    /// Consul accepts P-224 and P-521, but ring (our signer) implements only P-256 and P-384.
    #[error("EC key length {0} is not supported by Legate's CA; use 256 or 384")]
    UnsupportedEcKeyBits(u32),
    #[error("leaf cert TTL must be greater or equal than 1h0m0s")]
    LeafCertTtlTooShort,
    #[error("leaf cert TTL must be less than 8760h0m0s")]
    LeafCertTtlTooLong,
    #[error("Intermediate Cert TTL must be greater or equal than 3h")]
    IntermediateCertTtlTooShort,
    /// With three leaf lifetimes as Go renders a duration.
    #[error("Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL (>={0}).")]
    IntermediateCertTtlBelowLeaves(String),
    #[error("must provide a private key when providing a root cert")]
    MissingPrivateKey,
    #[error("root cert is for a different private key")]
    KeyMismatch,
    #[error("error parsing {what}: {reason}")]
    Parse { what: &'static str, reason: String },
    #[error("unsupported private key: {0} (supported: EC P-256, EC P-384, RSA)")]
    UnsupportedKey(String),
    #[error("error generating private key: {0}")]
    KeyGeneration(String),
    #[error("error generating certificate: {0}")]
    Certificate(String),
    #[error("SPIFFE ID must have 'spiffe' scheme")]
    NotSpiffe,
    #[error("SPIFFE ID is not in the expected format: {0}")]
    UnexpectedSpiffeFormat(String),
    #[error("Invalid {what}: {reason}")]
    InvalidSpiffeSegment { what: &'static str, reason: String },
    #[error("SPIFFE ID in CSR must be a service, agent, or mesh gateway ID")]
    NotLeafIdentity,
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Certificate(e.to_string())
    }
}

/// Colon-separated lowercase hex, as Consul renders serials, key IDs and fingerprints
/// (`connect.HexString`).
pub fn hex_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Consul's key identifier (`connect.KeyId`): the whole SHA-256 of the DER
/// SubjectPublicKeyInfo. Used for SubjectKeyId and AuthorityKeyId, so a leaf's
/// AuthorityKeyId equals its root's `signing_key_id`, which is how agents notice a rotation.
fn key_id(spki_der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, spki_der)
        .as_ref()
        .to_vec()
}

/// A random certificate serial: below 2^63, so it is positive and fits the `u64` that Consul's
/// `CARoot.SerialNumber` reports, and odd, so never the zero RFC 5280 forbids.
fn random_serial() -> u64 {
    rand::random::<u64>() >> 1 | 1
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // base64 output is ASCII, so byte offsets are char boundaries.
    for start in (0..b64.len()).step_by(64) {
        out.push_str(&b64[start..(start + 64).min(b64.len())]);
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first CERTIFICATE block of a PEM value (Consul's `connect.ParseCert`).
fn cert_der(pem: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| Error::Parse {
            what,
            reason: e.to_string(),
        })
}

fn parse_x509<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, Error> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| Error::Parse {
            what,
            reason: e.to_string(),
        })
}

/// Certificates carry whole seconds; truncating `now` first makes the times we return equal
/// to the ones in the certificate.
fn to_asn1_time(t: SystemTime) -> Result<time::OffsetDateTime, Error> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Certificate("time before 1970".into()))?
        .as_secs();
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .map_err(|e| Error::Certificate(e.to_string()))
}

fn from_asn1_time(t: x509_parser::time::ASN1Time, what: &'static str) -> Result<SystemTime, Error> {
    u64::try_from(t.timestamp())
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
        .map_err(|_| Error::Parse {
            what,
            reason: "validity before 1970".into(),
        })
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
}
