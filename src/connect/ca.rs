//! Root CAs as Consul's built-in provider makes them, root import, and cross-signing.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::X509Name;

use super::keys::{generate_private_key, key_info, load_private_key, KeySpec, KeyType};
use super::{
    cert_der, from_asn1_time, hex_string, key_id, parse_x509, pem_encode, random_serial,
    subject_key_id, to_asn1_time, Error,
};

/// Consul's `RootCertTTL` default: ten years.
pub const DEFAULT_ROOT_CERT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A cross-signed certificate is needed only while leaves of the old root are in use; Consul
/// gives it a fixed week.
const CROSS_SIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Certificates signed for others start a minute in the past so that servers whose clocks
/// drift a little accept them at once (Consul's `CertificateTimeDriftBuffer`).
pub(crate) const CLOCK_DRIFT_BUFFER: Duration = Duration::from_secs(60);

/// A root CA with the fields Consul's `CARoot` derives from the certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRoot {
    /// Colon-hex SHA-1 fingerprint of the certificate's DER (`CARoot.ID`).
    pub id: String,
    /// Colon-hex SubjectKeyId (`CARoot.SigningKeyID`); empty if the certificate has none.
    pub signing_key_id: String,
    /// The serial's low 64 bits, as Consul's `SerialNumber.Uint64()`.
    pub serial_number: u64,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub root_cert_pem: String,
    pub private_key_pem: String,
    pub private_key_type: KeyType,
    pub private_key_bits: u32,
}

impl fmt::Debug for CaRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaRoot")
            .field("id", &self.id)
            .field("signing_key_id", &self.signing_key_id)
            .field("serial_number", &self.serial_number)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("private_key_type", &self.private_key_type)
            .field("private_key_bits", &self.private_key_bits)
            .finish_non_exhaustive()
    }
}

/// A CA certificate and its key, to sign with.
#[derive(Clone, Copy)]
pub struct CaSigner<'a> {
    pub cert_pem: &'a str,
    pub private_key_pem: &'a str,
}

impl<'a> From<&'a CaRoot> for CaSigner<'a> {
    fn from(root: &'a CaRoot) -> Self {
        CaSigner {
            cert_pem: &root.root_cert_pem,
            private_key_pem: &root.private_key_pem,
        }
    }
}

impl CaSigner<'_> {
    pub(crate) fn issuer(&self) -> Result<Issuer<'static, rcgen::KeyPair>, Error> {
        let key = load_private_key(self.private_key_pem)?;
        let der = cert_der(self.cert_pem, "CA cert")?;
        Ok(Issuer::from_ca_cert_der(&CertificateDer::from(der), key)?)
    }
}

/// The trust domain of a cluster (`SpiffeIDSigningForCluster`): `<cluster-id>.consul`,
/// fixed to `.consul` whatever the DNS domain, so changing that cannot break certificates.
pub fn trust_domain(cluster_id: &str) -> String {
    format!("{cluster_id}.consul").to_lowercase()
}

/// Generates a key as `key` says and a self-signed root for the cluster, valid from `now`
/// for `ttl` (see [`DEFAULT_ROOT_CERT_TTL`]).
pub fn generate_root(
    cluster_id: &str,
    key: KeySpec,
    ttl: Duration,
    now: SystemTime,
) -> Result<CaRoot, Error> {
    let private_key_pem = generate_private_key(key)?;
    let signer = load_private_key(&private_key_pem)?;
    let not_before = to_asn1_time(now)?;

    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(random_serial()));
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        DnValue::PrintableString(ca_common_name(cluster_id).try_into()?),
    );
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{}", trust_domain(cluster_id)).try_into()?,
    )];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    // Consul's roots carry AuthorityKeyId = SubjectKeyId = its key ID of the root key.
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(key_id(&signer.subject_public_key_info()));
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_before + ttl;
    let cert = params.self_signed(&signer)?;
    describe_root(cert.der(), private_key_pem)
}

/// Takes a user's `PrivateKey` and `RootCert` (Consul CA config) as the root, checking that
/// the key is the certificate's.
pub fn import_root(private_key_pem: &str, root_cert_pem: &str) -> Result<CaRoot, Error> {
    if private_key_pem.trim().is_empty() {
        return Err(Error::MissingPrivateKey);
    }
    let key = load_private_key(private_key_pem)?;
    let der = cert_der(root_cert_pem, "root cert")?;
    let cert = parse_x509(&der, "root cert")?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(Error::KeyMismatch);
    }
    describe_root(&der, private_key_pem.to_string())
}

/// Fills the `CARoot` fields from a root certificate, as Consul's `newCARoot`.
fn describe_root(der: &[u8], private_key_pem: String) -> Result<CaRoot, Error> {
    let cert = parse_x509(der, "root cert")?;
    let (private_key_type, private_key_bits) = key_info(cert.public_key().raw)?;
    let validity = cert.validity();
    Ok(CaRoot {
        id: hex_string(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
        signing_key_id: subject_key_id(&cert).map_or_else(String::new, |id| hex_string(&id)),
        serial_number: serial_low_u64(cert.raw_serial()),
        not_before: from_asn1_time(validity.not_before, "root cert")?,
        not_after: from_asn1_time(validity.not_after, "root cert")?,
        root_cert_pem: pem_encode("CERTIFICATE", der),
        private_key_pem,
        private_key_type,
        private_key_bits,
    })
}

/// Signs `new_root_cert_pem`'s subject and key with the old root (Consul's `CrossSignCA`): a
/// copy of the new root whose issuer is the old one. Consul puts it first in the new root's
/// `IntermediateCerts`, and leaves of the new root carry it, so that proxies that trust only
/// the old root accept them during the rotation.
pub fn cross_sign(
    old_root: CaSigner<'_>,
    new_root_cert_pem: &str,
    now: SystemTime,
) -> Result<String, Error> {
    let issuer = old_root.issuer()?;
    let der = cert_der(new_root_cert_pem, "new root cert")?;
    let new_root = parse_x509(&der, "new root cert")?;
    let public_key = SubjectPublicKeyInfo::from_der(new_root.public_key().raw)?;

    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(random_serial()));
    params.distinguished_name = distinguished_name(new_root.subject())?;
    params.subject_alt_names = subject_alt_names(&new_root);
    params.is_ca = match new_root.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => match bc.value.path_len_constraint {
            Some(n) => IsCa::Ca(BasicConstraints::Constrained(n as u8)),
            None => IsCa::Ca(BasicConstraints::Unconstrained),
        },
        _ => {
            return Err(Error::Parse {
                what: "new root cert",
                reason: "not a CA certificate".into(),
            })
        }
    };
    params.key_usages = key_usages(&new_root);
    params.key_identifier_method = KeyIdMethod::PreSpecified(
        subject_key_id(&new_root).unwrap_or_else(|| key_id(new_root.public_key().raw)),
    );
    params.use_authority_key_identifier_extension = true;
    let not_before = to_asn1_time(now - CLOCK_DRIFT_BUFFER)?;
    params.not_before = not_before;
    params.not_after = not_before + CROSS_SIGN_TTL;
    let cert = params.signed_by(&public_key, &issuer)?;
    Ok(pem_encode("CERTIFICATE", cert.der()))
}

/// Go's `big.Int.Uint64()` of the serial: its low 64 bits.
fn serial_low_u64(raw: &[u8]) -> u64 {
    raw.iter()
        .rev()
        .take(8)
        .rev()
        .fold(0u64, |acc, b| acc << 8 | u64::from(*b))
}

/// Consul's `CACN("consul", uid, clusterID, true)`: `pri-<uid>.consul.ca.<cluster>.consul`,
/// a fresh 8-character base-36 uid so every root has its own name (some providers cache by
/// subject), and only 8 characters of the cluster ID to stay within the 64-byte CN limit.
fn ca_common_name(cluster_id: &str) -> String {
    const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let uid: String = (0..8)
        .map(|_| BASE36[rand::random_range(0..BASE36.len())] as char)
        .collect();
    let cluster: String = cluster_id.chars().take(8).collect();
    format!("pri-{uid}.consul.ca.{cluster}.consul")
}

/// The subject of a certificate as rcgen names, keeping each value's string type so the copy
/// encodes byte for byte the same (path building compares names).
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, Error> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let unsupported = |reason: &str| Error::Parse {
        what: "new root cert subject",
        reason: reason.into(),
    };
    let mut dn = DistinguishedName::new();
    for attr in name.iter_attributes() {
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unsupported("attribute type too long"))?
            .collect();
        let text = std::str::from_utf8(attr.attr_value().data)
            .map_err(|_| unsupported("attribute is not text"))?
            .to_string();
        let value = match attr.attr_value().header.tag() {
            Tag::PrintableString => DnValue::PrintableString(text.try_into()?),
            Tag::Ia5String => DnValue::Ia5String(text.try_into()?),
            Tag::Utf8String => DnValue::Utf8String(text),
            _ => {
                return Err(unsupported(
                    "only Printable, IA5 and UTF8 strings are supported",
                ))
            }
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> Vec<SanType> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.to_string().try_into().ok().map(SanType::URI),
            GeneralName::DNSName(dns) => dns.to_string().try_into().ok().map(SanType::DnsName),
            _ => None,
        })
        .collect()
}

fn key_usages(cert: &X509Certificate<'_>) -> Vec<KeyUsagePurpose> {
    let Some(usage) = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::KeyUsage(usage) => Some(*usage),
            _ => None,
        })
    else {
        return Vec::new();
    };
    [
        (usage.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (usage.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (usage.crl_sign(), KeyUsagePurpose::CrlSign),
    ]
    .into_iter()
    .filter_map(|(set, purpose)| set.then_some(purpose))
    .collect()
}
