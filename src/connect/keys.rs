//! CA and leaf keys: Consul's `PrivateKeyType`/`PrivateKeyBits` rules, generation, and
//! loading a PEM key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY") for signing.

use std::time::Duration;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::EncodePrivateKey;
use rustls_pki_types::PrivateKeyDer;
use serde::{Deserialize, Serialize};
use x509_parser::public_key::PublicKey;

use super::{pem_encode, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Ec,
    Rsa,
}

impl KeyType {
    /// The config/API spelling (`PrivateKeyType`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ec => "ec",
            KeyType::Rsa => "rsa",
        }
    }
}

/// A validated key type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub key_type: KeyType,
    pub bits: u32,
}

impl Default for KeySpec {
    /// Consul's default CA key, and the key every leaf gets: EC P-256.
    fn default() -> Self {
        KeySpec {
            key_type: KeyType::Ec,
            bits: 256,
        }
    }
}

impl KeySpec {
    /// Validates `PrivateKeyType`/`PrivateKeyBits` as Consul's `CommonCAProviderConfig`
    /// does (the type is matched exactly, as there), then refuses the curves ring cannot sign
    /// with.
    pub fn from_config(key_type: &str, bits: u32) -> Result<KeySpec, Error> {
        let key_type = match key_type {
            "ec" => {
                if ![224, 256, 384, 521].contains(&bits) {
                    return Err(Error::InvalidEcKeyBits);
                }
                if bits != 256 && bits != 384 {
                    return Err(Error::UnsupportedEcKeyBits(bits));
                }
                KeyType::Ec
            }
            "rsa" => {
                if bits != 2048 && bits != 4096 {
                    return Err(Error::InvalidRsaKeyBits);
                }
                KeyType::Rsa
            }
            _ => return Err(Error::InvalidKeyType),
        };
        Ok(KeySpec { key_type, bits })
    }
}

/// Consul's `LeafCertTTL` bounds: at least an hour, less than a year.
pub fn validate_leaf_cert_ttl(ttl: Duration) -> Result<(), Error> {
    const HOUR: u64 = 3600;
    if ttl < Duration::from_secs(HOUR) {
        return Err(Error::LeafCertTtlTooShort);
    }
    if ttl > Duration::from_secs(365 * 24 * HOUR) {
        return Err(Error::LeafCertTtlTooLong);
    }
    Ok(())
}

/// Generates a private key and returns it as PKCS#8 PEM ("PRIVATE KEY").
pub fn generate_private_key(spec: KeySpec) -> Result<String, Error> {
    let pkcs8 = match (spec.key_type, spec.bits) {
        (KeyType::Ec, 256) => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?.serialize_der(),
        (KeyType::Ec, 384) => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384)?.serialize_der(),
        (KeyType::Rsa, bits) => {
            // ring cannot generate RSA keys; the rsa crate only generates, ring signs.
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits as usize)
                .map_err(|e| Error::KeyGeneration(e.to_string()))?;
            key.to_pkcs8_der()
                .map_err(|e| Error::KeyGeneration(e.to_string()))?
                .as_bytes()
                .to_vec()
        }
        (KeyType::Ec, bits) => return Err(Error::UnsupportedEcKeyBits(bits)),
    };
    Ok(pem_encode("PRIVATE KEY", &pkcs8))
}

/// A new EC P-256 key and its PEM as Consul's `tlsutil` writes it: SEC1 ("EC PRIVATE KEY")
/// naming its curve, which Go's `x509.ParseECPrivateKey` requires.
pub(crate) fn ec_p256_sec1_pem() -> Result<(KeyPair, String), Error> {
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let bad = |reason: String| Error::KeyGeneration(reason);
    // PKCS#8 wraps the SEC1 structure (without the curve) as its third field.
    let pkcs8 = key.serialize_der();
    let (_, outer) = x509_parser::der_parser::parse_der(&pkcs8).map_err(|e| bad(e.to_string()))?;
    let inner = outer
        .as_sequence()
        .ok()
        .and_then(|f| f.get(2))
        .and_then(|f| f.as_slice().ok())
        .ok_or_else(|| bad("no private key in PKCS#8".into()))?;
    let (_, inner) = x509_parser::der_parser::parse_der(inner).map_err(|e| bad(e.to_string()))?;
    let scalar = inner
        .as_sequence()
        .ok()
        .and_then(|f| f.get(1))
        .and_then(|f| f.as_slice().ok())
        .ok_or_else(|| bad("no private scalar in PKCS#8".into()))?;
    let public_key = [&[0u8][..], key.public_key_raw()].concat();
    let sec1 = der_tlv(
        0x30,
        &[
            &[0x02, 0x01, 0x01][..],
            &der_tlv(0x04, scalar),
            &der_tlv(0xa0, P256),
            &der_tlv(0xa1, &der_tlv(0x03, &public_key)),
        ]
        .concat(),
    );
    Ok((key, super::pem_encode("EC PRIVATE KEY", &sec1)))
}

/// Loads the first private key of a PEM value. ring reads only PKCS#8, so SEC1 and PKCS#1
/// keys (what Consul and `openssl` write) are rewrapped as PKCS#8 first.
pub(crate) fn load_private_key(pem: &str) -> Result<KeyPair, Error> {
    use rustls_pki_types::pem::PemObject;
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Parse {
        what: "private key",
        reason: e.to_string(),
    })?;
    let pkcs8 = match &der {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Sec1(k) => sec1_to_pkcs8(k.secret_sec1_der())?,
        PrivateKeyDer::Pkcs1(k) => rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der())
            .map_err(|e| Error::UnsupportedKey(e.to_string()))?
            .to_pkcs8_der()
            .map_err(|e| Error::UnsupportedKey(e.to_string()))?
            .as_bytes()
            .to_vec(),
        _ => return Err(Error::UnsupportedKey("unknown PEM key format".into())),
    };
    KeyPair::try_from(pkcs8.as_slice()).map_err(|e| Error::UnsupportedKey(e.to_string()))
}

/// Key type and size of a DER SubjectPublicKeyInfo (Consul's `KeyInfoFromCert`).
pub(crate) fn key_info(spki_der: &[u8]) -> Result<(KeyType, u32), Error> {
    use x509_parser::prelude::FromDer;
    let parse_err = |reason: String| Error::Parse {
        what: "public key",
        reason,
    };
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| parse_err(e.to_string()))?;
    match spki.parsed().map_err(|e| parse_err(e.to_string()))? {
        PublicKey::EC(point) => Ok((KeyType::Ec, point.key_size() as u32)),
        PublicKey::RSA(rsa) => Ok((KeyType::Rsa, rsa.key_size() as u32)),
        _ => Err(Error::UnsupportedKey("not an EC or RSA key".into())),
    }
}

/// Wraps a SEC1 `ECPrivateKey` in a PKCS#8 `PrivateKeyInfo`. The curve follows from the
/// private scalar's length, which is all we need to tell P-256 from P-384.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, Error> {
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    let bad = |reason: &str| Error::UnsupportedKey(format!("EC PRIVATE KEY: {reason}"));
    let (_, obj) = x509_parser::der_parser::parse_der(sec1).map_err(|e| bad(&e.to_string()))?;
    let fields = obj.as_sequence().map_err(|e| bad(&e.to_string()))?;
    let scalar = fields
        .get(1)
        .and_then(|f| f.as_slice().ok())
        .ok_or_else(|| bad("no private key field"))?;
    let curve = match scalar.len() {
        32 => P256,
        48 => P384,
        n => return Err(bad(&format!("{}-bit curves are not supported", n * 8))),
    };
    let algorithm = der_tlv(0x30, &[EC_PUBLIC_KEY, curve].concat());
    let version = [0x02, 0x01, 0x00];
    Ok(der_tlv(
        0x30,
        &[&version[..], &algorithm, &der_tlv(0x04, sec1)].concat(),
    ))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}
