//! Certificates for the agents' own TLS (not Connect's): the CA and the server, client and
//! CLI certificates `legate tls ca|cert create` write, as Consul's `tlsutil` generates them
//! (EC P-256 keys written as "EC PRIVATE KEY", HashiCorp's CA subject, key IDs as Consul
//! spells them).

use super::keys::{ec_p256_sec1_pem, load_private_key};
use super::{cert_der, pem_encode, to_asn1_time, Error};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints,
    PublicKeyData, SanType, SerialNumber,
};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

const DAY: Duration = Duration::from_secs(86_400);

/// `legate tls ca create`'s choices.
pub struct CaOptions {
    /// The subject's common name; Consul's `Consul Agent CA <serial>` when empty.
    pub common_name: String,
    pub days: u32,
    /// DNS domains the CA may sign for (a critical name constraint), none for any.
    pub permitted_dns_domains: Vec<String>,
}

/// What a certificate is for: its SANs and extended key usages.
pub enum CertRole {
    Server,
    Client,
    Cli,
}

pub struct CertOptions {
    pub role: CertRole,
    pub common_name: String,
    pub days: u32,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A new CA, valid from `now` for `days`.
pub fn generate_ca(opts: &CaOptions, now: SystemTime) -> Result<Issued, Error> {
    let (key, key_pem) = ec_p256_sec1_pem()?;
    // Consul draws the serial below 2^128 and names the CA after it.
    let serial = rand::random::<u128>() >> 1;
    let common_name = if opts.common_name.is_empty() {
        format!("Consul Agent CA {serial}")
    } else {
        opts.common_name.clone()
    };
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    let mut dn = DistinguishedName::new();
    // pkix.Name's order: C, O, L, ST, STREET, POSTALCODE, CN.
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "HashiCorp Inc.");
    dn.push(DnType::LocalityName, "San Francisco");
    dn.push(DnType::StateOrProvinceName, "CA");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), "101 Second Street");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), "94105");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    if !opts.permitted_dns_domains.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: opts
                .permitted_dns_domains
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    identify_and_date(&mut params, &key, opts.days, now)?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: pem_encode("CERTIFICATE", cert.der()),
        key_pem,
    })
}

/// A new certificate signed by the CA (`ca_pem`, `ca_key_pem`), valid from `now` for `days`.
pub fn generate_cert(
    ca_pem: &str,
    ca_key_pem: &str,
    opts: &CertOptions,
    now: SystemTime,
) -> Result<Issued, Error> {
    let ca_key = load_private_key(ca_key_pem)?;
    let ca_der = cert_der(ca_pem, "CA cert")?;
    let issuer = Issuer::from_ca_cert_der(&ca_der.into(), ca_key)?;
    let (key, key_pem) = ec_p256_sec1_pem()?;
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(
        &(rand::random::<u128>() >> 1).to_be_bytes(),
    ));
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, opts.common_name.clone());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match opts.role {
        CertRole::Server => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        CertRole::Client => vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ],
        CertRole::Cli => Vec::new(),
    };
    let mut sans = Vec::new();
    for name in &opts.dns_names {
        sans.push(SanType::DnsName(name.clone().try_into()?));
    }
    sans.extend(opts.ip_addresses.iter().copied().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    identify_and_date(&mut params, &key, opts.days, now)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: pem_encode("CERTIFICATE", cert.der()),
        key_pem,
    })
}

/// What the CA and its certificates share: Consul's key IDs (the authority's taken from the
/// issuer) and validity from `now` for `days`.
fn identify_and_date(
    params: &mut CertificateParams,
    key: &KeyPair,
    days: u32,
    now: SystemTime,
) -> Result<(), Error> {
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(agent_key_id(&key.subject_public_key_info()));
    params.use_authority_key_identifier_extension = true;
    let not_before = to_asn1_time(now)?;
    params.not_before = not_before;
    params.not_after = not_before + DAY * days;
    Ok(())
}

/// Consul's agent-TLS key ID: the SHA-256 of the public key info written out as
/// colon-separated hex, and those characters are the ID's bytes.
fn agent_key_id(spki_der: &[u8]) -> Vec<u8> {
    super::hex_string(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subject and authority key IDs of a certificate.
    fn key_ids(
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        use x509_parser::extensions::ParsedExtension;
        let (mut ski, mut aki) = (None, None);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => {}
            }
        }
        (ski, aki)
    }

    #[test]
    fn a_server_certificate_chains_to_its_ca_with_consuls_names() {
        let now = SystemTime::now();
        let ca = generate_ca(
            &CaOptions {
                common_name: String::new(),
                days: 10,
                permitted_dns_domains: vec!["consul".into(), "localhost".into()],
            },
            now,
        )
        .unwrap();
        assert!(ca.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let issued = generate_cert(
            &ca.cert_pem,
            &ca.key_pem,
            &CertOptions {
                role: CertRole::Server,
                common_name: "server.dc1.consul".into(),
                days: 1,
                dns_names: vec!["server.dc1.consul".into(), "localhost".into()],
                ip_addresses: vec!["127.0.0.1".parse().unwrap()],
            },
            now,
        )
        .unwrap();
        let ca_der = cert_der(&ca.cert_pem, "ca").unwrap();
        let ca_cert = super::super::parse_x509(&ca_der, "ca").unwrap();
        assert!(ca_cert
            .subject()
            .to_string()
            .contains("CN=Consul Agent CA "));
        let der = cert_der(&issued.cert_pem, "cert").unwrap();
        let cert = super::super::parse_x509(&der, "cert").unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let (ca_ski, _) = key_ids(&ca_cert);
        let (_, leaf_aki) = key_ids(&cert);
        assert_eq!(leaf_aki, ca_ski);
        // Consul's key IDs are colon-separated hex text.
        assert_eq!(ca_ski.unwrap()[2], b':');
    }
}
