//! End-to-end checks of the CA: real TLS handshakes with rustls and chains checked by
//! `openssl verify`, so the certificates are judged by independent verifiers.

use std::time::{Duration, SystemTime};

use x509_parser::extensions::GeneralName;

use super::ca::{trust_domain, DEFAULT_ROOT_CERT_TTL};
use super::*;

#[path = "../../tests/common/tls.rs"]
mod tls;
use tls::{chain, mutual_tls, openssl, openssl_verify, uri_sans, Identity};

fn identity(leaf: &IssuedLeaf) -> Identity<'_> {
    Identity {
        cert_pem: &leaf.cert_pem,
        private_key_pem: &leaf.private_key_pem,
        uri: &leaf.uri,
    }
}

const CLUSTER_ID: &str = "11111111-2222-3333-4444-555555555555";
const LEAF_TTL: Duration = Duration::from_secs(72 * 3600);

fn root(spec: KeySpec) -> CaRoot {
    generate_root(CLUSTER_ID, spec, DEFAULT_ROOT_CERT_TTL, SystemTime::now()).unwrap()
}

fn service_id(service: &str) -> CertUri {
    CertUri::service(&trust_domain(CLUSTER_ID), "dc1", service)
}

fn leaf(ca: &CaRoot, intermediates: &[String], service: &str) -> IssuedLeaf {
    let id = service_id(service);
    let request = LeafRequest {
        id: &id,
        dns_sans: &[],
        ttl: LEAF_TTL,
    };
    sign_leaf(ca.into(), intermediates, &request, SystemTime::now()).unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    cert_der(pem, "test cert").unwrap()
}

#[test]
fn root_is_shaped_like_consuls() {
    let now = SystemTime::now();
    let root = generate_root(CLUSTER_ID, KeySpec::default(), DEFAULT_ROOT_CERT_TTL, now).unwrap();
    let der = der_of(&root.root_cert_pem);
    let cert = parse_x509(&der, "root").unwrap();

    let cn = cert.subject().iter_common_name().next().unwrap();
    let cn = cn.as_str().unwrap();
    assert!(
        cn.starts_with("pri-") && cn.ends_with(".consul.ca.11111111.consul"),
        "{cn}"
    );
    assert_eq!(cn.len(), "pri-12345678.consul.ca.11111111.consul".len());
    assert_eq!(cert.subject(), cert.issuer());
    assert_eq!(
        uri_sans(&der),
        ["spiffe://11111111-2222-3333-4444-555555555555.consul"]
    );
    assert!(cert.is_ca());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && usage.digital_signature());

    let ski = subject_key_id(&cert).unwrap();
    assert_eq!(ski, key_id(cert.public_key().raw));
    assert_eq!(root.signing_key_id, hex_string(&ski));
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    assert_eq!(root.id, hex_string(sha1.as_ref()));
    assert_eq!(root.id.len(), 20 * 3 - 1);
    assert_eq!(
        root.serial_number.to_be_bytes()[8 - cert.raw_serial().len()..],
        *cert.raw_serial()
    );

    let now_secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since_epoch = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(since_epoch(root.not_before), now_secs);
    assert_eq!(
        since_epoch(root.not_after),
        now_secs + DEFAULT_ROOT_CERT_TTL.as_secs()
    );
    assert_eq!(
        (root.private_key_type, root.private_key_bits),
        (KeyType::Ec, 256)
    );
    assert!(root
        .private_key_pem
        .starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn leaf_is_shaped_like_consuls_and_openssl_accepts_it() {
    let root = root(KeySpec::default());
    let now = SystemTime::now();
    let id = service_id("web");
    let dns = ["web.example.com:8443".to_string()];
    let request = LeafRequest {
        id: &id,
        dns_sans: &dns,
        ttl: LEAF_TTL,
    };
    let leaf = sign_leaf((&root).into(), &[], &request, now).unwrap();
    let der = der_of(&leaf.cert_pem);
    let cert = parse_x509(&der, "leaf").unwrap();

    assert_eq!(
        leaf.uri,
        "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web"
    );
    assert_eq!(uri_sans(&der), [leaf.uri.as_str()]);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "an empty subject makes the SAN critical");
    assert!(san
        .value
        .general_names
        .contains(&GeneralName::DNSName("web.example.com")));
    assert_eq!(cert.subject().iter().count(), 0);
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment() && usage.key_agreement());

    let aki = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| hex_string(k.0))
            }
            _ => None,
        });
    assert_eq!(aki.as_deref(), Some(root.signing_key_id.as_str()));
    assert_eq!(leaf.serial_number, hex_string(cert.raw_serial()));

    let since_epoch = |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let now_secs = since_epoch(now);
    assert_eq!(since_epoch(leaf.valid_after), now_secs - 60);
    assert_eq!(
        since_epoch(leaf.valid_before),
        now_secs - 60 + LEAF_TTL.as_secs()
    );
    assert!(leaf
        .private_key_pem
        .starts_with("-----BEGIN PRIVATE KEY-----\n"));

    openssl_verify(&root.root_cert_pem, None, &leaf.cert_pem);
}

#[test]
fn agent_leaves_also_serve_localhost_and_servers_are_refused() {
    let root = root(KeySpec::default());
    let agent = CertUri::parse(&format!(
        "spiffe://{}/agent/client/dc/dc1/id/node-1",
        trust_domain(CLUSTER_ID)
    ))
    .unwrap();
    let request = LeafRequest {
        id: &agent,
        dns_sans: &[],
        ttl: LEAF_TTL,
    };
    let leaf = sign_leaf((&root).into(), &[], &request, SystemTime::now()).unwrap();
    let der = der_of(&leaf.cert_pem);
    let cert = parse_x509(&der, "leaf").unwrap();
    let names = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert!(names.contains(&GeneralName::DNSName("localhost")));
    assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));

    let server = CertUri::Server {
        host: trust_domain(CLUSTER_ID),
        datacenter: "dc1".into(),
    };
    let request = LeafRequest {
        id: &server,
        ..request
    };
    assert_eq!(
        sign_leaf((&root).into(), &[], &request, SystemTime::now()).unwrap_err(),
        Error::NotLeafIdentity
    );
}

#[test]
fn two_leaves_complete_mutual_tls() {
    let root = root(KeySpec::default());
    let web = leaf(&root, &[], "web");
    let db = leaf(&root, &[], "db");
    assert_eq!(
        mutual_tls(&root.root_cert_pem, identity(&web), identity(&db)),
        web.uri
    );
}

#[test]
fn leaves_of_a_rotated_root_verify_against_the_old_root_through_the_cross_signed_cert() {
    let old = root(KeySpec::default());
    let new = root(KeySpec::from_config("ec", 384).unwrap());
    let cross = cross_sign((&old).into(), &new.root_cert_pem, SystemTime::now()).unwrap();

    let cross_der = der_of(&cross);
    let cross_cert = parse_x509(&cross_der, "cross").unwrap();
    let new_der = der_of(&new.root_cert_pem);
    let new_cert = parse_x509(&new_der, "new").unwrap();
    assert_eq!(cross_cert.subject(), new_cert.subject());
    assert_eq!(cross_cert.public_key().raw, new_cert.public_key().raw);
    assert_eq!(
        cross_cert.issuer().as_raw(),
        parse_x509(&der_of(&old.root_cert_pem), "old")
            .unwrap()
            .subject()
            .as_raw()
    );
    assert_eq!(uri_sans(&cross_der), uri_sans(&new_der));

    let web = leaf(&new, std::slice::from_ref(&cross), "web");
    assert_eq!(
        chain(&web.cert_pem).len(),
        2,
        "the leaf carries the cross-signed cert"
    );
    openssl_verify(&old.root_cert_pem, Some(&cross), &web.cert_pem);
    openssl_verify(&new.root_cert_pem, None, &web.cert_pem);

    // A proxy that still trusts only the old root talks to a new leaf, and the reverse.
    let db_old = leaf(&old, &[], "db");
    assert_eq!(
        mutual_tls(&old.root_cert_pem, identity(&web), identity(&db_old)),
        web.uri
    );
}

#[test]
fn rsa_and_p384_roots_sign_verifiable_leaves() {
    for (key_type, bits) in [("rsa", 2048), ("ec", 384)] {
        let root = root(KeySpec::from_config(key_type, bits).unwrap());
        assert_eq!(
            (root.private_key_type.as_str(), root.private_key_bits),
            (key_type, bits)
        );
        let web = leaf(&root, &[], "web");
        let db = leaf(&root, &[], "db");
        openssl_verify(&root.root_cert_pem, None, &web.cert_pem);
        assert_eq!(
            mutual_tls(&root.root_cert_pem, identity(&web), identity(&db)),
            web.uri
        );
    }
}

#[test]
fn import_checks_the_key_matches_the_cert() {
    let root = root(KeySpec::default());
    let imported = import_root(&root.private_key_pem, &root.root_cert_pem).unwrap();
    assert_eq!(imported, root);

    let other = generate_private_key(KeySpec::default()).unwrap();
    assert_eq!(
        import_root(&other, &root.root_cert_pem).unwrap_err(),
        Error::KeyMismatch
    );
    assert_eq!(
        import_root("", &root.root_cert_pem).unwrap_err(),
        Error::MissingPrivateKey
    );
}

/// Keys as Consul and `openssl` write them (SEC1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY")
/// import, and the imported root signs leaves openssl accepts.
#[test]
fn import_reads_sec1_and_pkcs1_keys_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    let cases: [(&[&str], &str, KeyType, u32); 3] = [
        (
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                key,
            ],
            "EC PRIVATE KEY",
            KeyType::Ec,
            256,
        ),
        (
            &[
                "ecparam",
                "-name",
                "secp384r1",
                "-genkey",
                "-noout",
                "-out",
                key,
            ],
            "EC PRIVATE KEY",
            KeyType::Ec,
            384,
        ),
        (
            &["genrsa", "-traditional", "-out", key, "2048"],
            "RSA PRIVATE KEY",
            KeyType::Rsa,
            2048,
        ),
    ];
    for (keygen, label, key_type, bits) in cases {
        assert!(openssl(keygen).status.success());
        let req = [
            "req",
            "-new",
            "-x509",
            "-key",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=imported root",
        ];
        assert!(openssl(&req).status.success());
        let key_pem = std::fs::read_to_string(key).unwrap();
        assert!(
            key_pem.starts_with(&format!("-----BEGIN {label}-----")),
            "{key_pem}"
        );
        let cert_pem = std::fs::read_to_string(cert).unwrap();

        let root = import_root(&key_pem, &cert_pem).unwrap();
        assert_eq!(
            (root.private_key_type, root.private_key_bits),
            (key_type, bits)
        );
        assert_eq!(root.private_key_pem, key_pem);
        let web = leaf(&root, &[], "web");
        openssl_verify(&cert_pem, None, &web.cert_pem);
    }
}

#[test]
fn key_config_is_validated_as_consul_does() {
    assert_eq!(KeySpec::from_config("ec", 256).unwrap(), KeySpec::default());
    assert!(KeySpec::from_config("rsa", 4096).is_ok());
    assert_eq!(KeySpec::from_config("dsa", 256), Err(Error::InvalidKeyType));
    assert_eq!(KeySpec::from_config("EC", 256), Err(Error::InvalidKeyType));
    assert_eq!(
        KeySpec::from_config("ec", 2048),
        Err(Error::InvalidEcKeyBits)
    );
    assert_eq!(
        KeySpec::from_config("rsa", 256),
        Err(Error::InvalidRsaKeyBits)
    );
    assert_eq!(
        KeySpec::from_config("ec", 521),
        Err(Error::UnsupportedEcKeyBits(521))
    );
    assert_eq!(
        Error::InvalidEcKeyBits.to_string(),
        "EC key length must be one of (224, 256, 384, 521) bits"
    );

    let hour = Duration::from_secs(3600);
    assert!(validate_leaf_cert_ttl(hour).is_ok());
    assert!(validate_leaf_cert_ttl(365 * 24 * hour).is_ok());
    assert_eq!(
        validate_leaf_cert_ttl(hour - Duration::from_secs(1)),
        Err(Error::LeafCertTtlTooShort)
    );
    assert_eq!(
        validate_leaf_cert_ttl(365 * 24 * hour + Duration::from_secs(1)),
        Err(Error::LeafCertTtlTooLong)
    );
}
