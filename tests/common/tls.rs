//! Independent verifiers of Connect certificates, shared by the CA's unit tests
//! (`src/connect/tests.rs` includes this file) and the integration tests: an in-memory rustls
//! mutual-TLS handshake that checks SPIFFE IDs, and `openssl verify`.

use std::process::Command;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::CryptoProvider;
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, Connection, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

/// The URI SANs of a DER certificate.
pub fn uri_sans(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// Runs `openssl` with `args`; a missing binary fails the test rather than skipping it.
pub fn openssl(args: &[&str]) -> std::process::Output {
    match Command::new("openssl").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the openssl binary is needed by these tests; install it with: \
             apt-get update && apt-get install -y openssl"
        ),
        Err(e) => panic!("running openssl: {e}"),
    }
}

/// `openssl verify -CAfile <ca> [-untrusted <untrusted>] <leaf>` must accept the chain.
pub fn openssl_verify(ca_pem: &str, untrusted_pem: Option<&str>, leaf_pem: &str) {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca = write("ca.pem", ca_pem);
    let leaf = write("leaf.pem", leaf_pem);
    let mut args = vec!["verify", "-CAfile", &ca];
    let untrusted;
    if let Some(pem) = untrusted_pem {
        untrusted = write("untrusted.pem", pem);
        args.extend(["-untrusted", &untrusted]);
    }
    args.push(&leaf);
    let out = openssl(&args);
    assert!(
        out.status.success(),
        "openssl verify refused the chain: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Verifies a server certificate against the roots but, instead of a DNS name (Connect
/// leaves have none), requires the expected SPIFFE ID.
#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    expected_uri: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if uri_sans(end_entity) != [self.expected_uri.as_str()] {
            return Err(rustls::Error::General("unexpected SPIFFE ID".into()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

pub fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn transfer(from: &mut Connection, to: &mut Connection) {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    to.read_tls(&mut buf.as_slice()).unwrap();
    to.process_new_packets().unwrap();
}

/// A leaf certificate (with its chain) and its key, as a TLS peer presents them.
pub struct Identity<'a> {
    pub cert_pem: &'a str,
    pub private_key_pem: &'a str,
    /// The SPIFFE ID the leaf carries.
    pub uri: &'a str,
}

/// `web` (client) and `db` (server) complete mutual TLS in memory, each checking the other's
/// leaf against the root it trusts. Returns the SPIFFE ID the server saw.
pub fn mutual_tls(trusted_root_pem: &str, web: Identity<'_>, db: Identity<'_>) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(chain(trusted_root_pem).remove(0)).unwrap();
    let roots = Arc::new(roots);

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .unwrap();
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(
            chain(db.cert_pem),
            PrivateKeyDer::from_pem_slice(db.private_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let server_verifier = SpiffeServerVerifier {
        roots,
        expected_uri: db.uri.to_string(),
        provider: provider.clone(),
    };
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(server_verifier))
        .with_client_auth_cert(
            chain(web.cert_pem),
            PrivateKeyDer::from_pem_slice(web.private_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();

    let mut client = Connection::Client(
        rustls::ClientConnection::new(Arc::new(client_config), "db".try_into().unwrap()).unwrap(),
    );
    let mut server =
        Connection::Server(rustls::ServerConnection::new(Arc::new(server_config)).unwrap());
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        transfer(&mut client, &mut server);
        transfer(&mut server, &mut client);
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    let peer = server.peer_certificates().unwrap();
    uri_sans(&peer[0]).remove(0)
}
