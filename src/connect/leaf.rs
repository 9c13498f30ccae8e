//! Leaf certificates, as Consul's built-in provider signs them (`ConsulProvider.Sign`) for the
//! CSR an agent's leaf-cert manager makes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use super::ca::{CaSigner, CLOCK_DRIFT_BUFFER};
use super::keys::{generate_private_key, load_private_key, KeySpec};
use super::uri::CertUri;
use super::{
    from_asn1_time, hex_string, key_id, parse_x509, pem_encode, random_serial, to_asn1_time, Error,
};

/// What to sign a leaf for.
#[derive(Debug, Clone)]
pub struct LeafRequest<'a> {
    /// A service, agent or mesh gateway ID in the cluster's trust domain.
    pub id: &'a CertUri,
    /// Extra DNS SANs (the agent endpoint's `DNSSAN`); usually empty for services.
    pub dns_sans: &'a [String],
    /// Consul's `LeafCertTTL` (default 72h); see [`super::validate_leaf_cert_ttl`].
    pub ttl: Duration,
}

/// A signed leaf, as Consul's `IssuedCert` reports it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedLeaf {
    /// Colon-hex serial (`IssuedCert.SerialNumber`).
    pub serial_number: String,
    /// The leaf followed by the root's intermediates (the cross-signed certificate after a
    /// rotation), as Consul returns `CertPEM`.
    pub cert_pem: String,
    pub private_key_pem: String,
    /// The SPIFFE ID the certificate carries (`ServiceURI`, `AgentURI` or `KindURI`).
    pub uri: String,
    pub valid_after: SystemTime,
    pub valid_before: SystemTime,
}

impl fmt::Debug for IssuedLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedLeaf")
            .field("serial_number", &self.serial_number)
            .field("uri", &self.uri)
            .field("valid_after", &self.valid_after)
            .field("valid_before", &self.valid_before)
            .finish_non_exhaustive()
    }
}

/// Generates a leaf key (EC P-256, which Consul's agents always use whatever the CA's key
/// type) and signs a certificate for `request.id` with `ca`, appending `intermediate_pems`.
pub fn sign_leaf(
    ca: CaSigner<'_>,
    intermediate_pems: &[String],
    request: &LeafRequest<'_>,
    now: SystemTime,
) -> Result<IssuedLeaf, Error> {
    let mut sans = vec![SanType::URI(request.id.to_string().try_into()?)];
    match request.id {
        CertUri::Service { .. } | CertUri::MeshGateway { .. } => {}
        // The agent's own certificate also serves its local listeners.
        CertUri::Agent { .. } => {
            sans.push(SanType::DnsName("localhost".try_into()?));
            sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            sans.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        }
        CertUri::Server { .. } | CertUri::Signing { .. } => return Err(Error::NotLeafIdentity),
    }
    for name in request.dns_sans {
        // The leaf-cert manager drops any ":port" suffix and duplicates.
        let host = name.split(':').next().unwrap_or_default();
        if host.is_empty() {
            continue;
        }
        let san = SanType::DnsName(host.to_string().try_into()?);
        if !sans.contains(&san) {
            sans.push(san);
        }
    }

    let private_key_pem = generate_private_key(KeySpec::default())?;
    let leaf_key = load_private_key(&private_key_pem)?;
    let issuer = ca.issuer()?;

    let serial = random_serial();
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(serial));
    // Consul leaves have an empty subject; the SPIFFE ID in the (then critical) SAN is the
    // identity.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DataEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(key_id(&leaf_key.subject_public_key_info()));
    params.use_authority_key_identifier_extension = true;
    let not_before = to_asn1_time(now - CLOCK_DRIFT_BUFFER)?;
    params.not_before = not_before;
    params.not_after = not_before + request.ttl;
    let cert = params.signed_by(&leaf_key, &issuer)?;

    let parsed = parse_x509(cert.der(), "leaf cert")?;
    let validity = parsed.validity();
    let mut cert_pem = pem_encode("CERTIFICATE", cert.der());
    for intermediate in intermediate_pems {
        cert_pem.push_str(intermediate);
        if !intermediate.ends_with('\n') {
            cert_pem.push('\n');
        }
    }
    Ok(IssuedLeaf {
        // Go's `big.Int.Bytes()`: DER's sign-padding zero is not part of the number.
        serial_number: hex_string(
            &parsed.raw_serial()[parsed.raw_serial().iter().take_while(|b| **b == 0).count()..],
        ),
        cert_pem,
        private_key_pem,
        uri: request.id.to_string(),
        valid_after: from_asn1_time(validity.not_before, "leaf cert")?,
        valid_before: from_asn1_time(validity.not_after, "leaf cert")?,
    })
}
