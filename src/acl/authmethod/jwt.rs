//! JWT verification for the `jwt` auth method (Consul's `go-sso/oidcauth`): the signature
//! against PEM public keys or a JWKS, then the time claims with Consul's leeways, the bound
//! issuer and audiences. Signatures are checked with ring; no JWT crate decides anything.

use base64::Engine;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::{Map, Value};

/// Seconds of leeway Consul applies when a token has only one of `exp` and `nbf`/`iat`
/// (`claimDefaultLeeway`), and its default clock skew leeway (go-jose's `DefaultLeeway`).
const DEFAULT_CLAIM_LEEWAY_S: i64 = 150;
const DEFAULT_CLOCK_SKEW_S: i64 = 60;

/// The signature algorithms Consul accepts in `JWTSupportedAlgs` and what ring verifies them
/// with (`ES512` is accepted but ring has no P-521 verifier, so such tokens never verify).
const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
];

pub fn is_supported_alg(alg: &str) -> bool {
    ALGORITHMS.contains(&alg)
}

/// A public key a token's signature may verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point on P-256 (65 bytes) or P-384 (97 bytes).
    Ec(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A JWKS key: the key and its `kid`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub kid: Option<String>,
    pub key: PublicKey,
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// Parses a PEM public key (`PUBLIC KEY`, or the key of a `CERTIFICATE`), RSA, ECDSA or
/// Ed25519, as `parsePublicKeyPEM` does.
pub fn parse_public_key_pem(pem: &str) -> Result<PublicKey, String> {
    use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};
    use x509_parser::public_key::PublicKey as Parsed;
    let none = || "data does not contain any valid RSA, ECDSA, or ED25519 public keys".to_string();
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.trim_start().as_bytes()).map_err(|_| none())?;
    let spki_of = |der: &[u8]| -> Result<PublicKey, String> {
        let spki = match SubjectPublicKeyInfo::from_der(der) {
            Ok((_, spki)) => spki,
            Err(_) => {
                let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
                cert.tbs_certificate.subject_pki.clone()
            }
        };
        let ed25519 = x509_parser::oid_registry::OID_SIG_ED25519;
        if spki.algorithm.algorithm == ed25519 {
            return Ok(PublicKey::Ed25519(spki.subject_public_key.data.to_vec()));
        }
        match spki.parsed().map_err(|_| none())? {
            Parsed::RSA(rsa) => Ok(PublicKey::Rsa {
                n: strip_zeros(rsa.modulus),
                e: strip_zeros(rsa.exponent),
            }),
            Parsed::EC(point) => Ok(PublicKey::Ec(point.data().to_vec())),
            _ => Err(none()),
        }
    };
    spki_of(&block.contents)
}

fn b64url(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| e.to_string())
}

/// The keys of a JWKS document (`{"keys": [...]}`); keys of other types or uses are skipped,
/// as go-oidc skips them.
pub fn parse_jwks(doc: &Value) -> Result<Vec<KeyEntry>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("failed to decode keys: no \"keys\" array")?;
    let field = |k: &Map<String, Value>, name: &str| -> Result<Vec<u8>, String> {
        b64url(k.get(name).and_then(Value::as_str).unwrap_or_default())
    };
    let mut out = Vec::new();
    for key in keys.iter().filter_map(Value::as_object) {
        if key
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let text = |name: &str| key.get(name).and_then(Value::as_str).unwrap_or_default();
        let parsed = match (text("kty"), text("crv")) {
            ("RSA", _) => PublicKey::Rsa {
                n: strip_zeros(&field(key, "n")?),
                e: strip_zeros(&field(key, "e")?),
            },
            ("EC", "P-256" | "P-384") => {
                let mut point = vec![4u8];
                point.extend(field(key, "x")?);
                point.extend(field(key, "y")?);
                PublicKey::Ec(point)
            }
            ("OKP", "Ed25519") => PublicKey::Ed25519(field(key, "x")?),
            _ => continue,
        };
        out.push(KeyEntry {
            kid: key.get("kid").and_then(Value::as_str).map(String::from),
            key: parsed,
        });
    }
    Ok(out)
}

/// A token split into its parts, not yet trusted.
pub struct Parsed {
    pub alg: String,
    pub kid: Option<String>,
    signed: Vec<u8>,
    signature: Vec<u8>,
    claims: Map<String, Value>,
}

/// Splits a compact JWS and decodes its header and claims.
pub fn parse(token: &str) -> Result<Parsed, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("go-jose/go-jose: compact JWS format must have three parts".into());
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64url(header)?)
        .map_err(|e| format!("go-jose/go-jose: invalid header: {e}"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&b64url(payload)?)
        .map_err(|e| format!("failed to unmarshal claims: {e}"))?;
    Ok(Parsed {
        alg: header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        kid: header.get("kid").and_then(Value::as_str).map(String::from),
        signed: format!("{}.{}", parts[0], parts[1]).into_bytes(),
        signature: b64url(signature)?,
        claims,
    })
}

impl Parsed {
    /// Whether `key` verifies the signature with the header's algorithm.
    fn verified_by(&self, key: &PublicKey) -> bool {
        let rsa = |alg: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
            signature::RsaPublicKeyComponents { n, e }
                .verify(alg, &self.signed, &self.signature)
                .is_ok()
        };
        let with = |alg: &'static dyn VerificationAlgorithm, bytes: &[u8]| {
            UnparsedPublicKey::new(alg, bytes)
                .verify(&self.signed, &self.signature)
                .is_ok()
        };
        match (self.alg.as_str(), key) {
            ("RS256", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
            ("RS384", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
            ("RS512", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
            ("PS256", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
            ("PS384", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
            ("PS512", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
            ("ES256", PublicKey::Ec(p)) if p.len() == 65 => {
                with(&signature::ECDSA_P256_SHA256_FIXED, p)
            }
            ("ES384", PublicKey::Ec(p)) if p.len() == 97 => {
                with(&signature::ECDSA_P384_SHA384_FIXED, p)
            }
            ("EdDSA", PublicKey::Ed25519(k)) => with(&signature::ED25519, k),
            _ => false,
        }
    }
}

/// The claim checks of a `jwt` auth method's configuration.
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    pub supported_algs: Vec<String>,
    pub bound_issuer: String,
    pub bound_audiences: Vec<String>,
    /// Leeways in whole seconds: 0 means Consul's default, negative means none.
    pub expiration_leeway_s: i64,
    pub not_before_leeway_s: i64,
    pub clock_skew_leeway_s: i64,
}

/// Where a token's signature is checked against.
pub enum KeySource<'a> {
    /// `JWTValidationPubKeys`: any key may verify it.
    Static(&'a [PublicKey]),
    /// A JWKS: the keys with the header's `kid`, or all when none has it.
    Jwks(&'a [KeyEntry]),
}

/// Verifies `token` and returns all its claims, with Consul's error texts.
pub fn verify(
    token: &str,
    keys: KeySource,
    rules: &ClaimRules,
    now_s: i64,
) -> Result<Map<String, Value>, String> {
    if token.is_empty() {
        return Err("missing jwt".into());
    }
    let parsed = match (parse(token), &keys) {
        (Ok(p), _) => p,
        (Err(e), KeySource::Static(_)) => return Err(format!("error parsing token: {e}")),
        (Err(e), KeySource::Jwks(_)) => {
            return Err(format!("error verifying token: oidc: malformed jwt: {e}"))
        }
    };
    let alg_allowed = if rules.supported_algs.is_empty() {
        is_supported_alg(&parsed.alg) || parsed.alg == "EdDSA"
    } else {
        rules.supported_algs.contains(&parsed.alg)
    };
    match keys {
        KeySource::Static(keys) => {
            if !alg_allowed || !keys.iter().any(|k| parsed.verified_by(k)) {
                return Err("no known key successfully validated the token signature".into());
            }
        }
        KeySource::Jwks(entries) => {
            let with_kid: Vec<&KeyEntry> = entries
                .iter()
                .filter(|e| parsed.kid.is_some() && e.kid == parsed.kid)
                .collect();
            let candidates: Vec<&KeyEntry> = if with_kid.is_empty() {
                entries.iter().collect()
            } else {
                with_kid
            };
            if !alg_allowed || !candidates.iter().any(|e| parsed.verified_by(&e.key)) {
                return Err(
                    "error verifying token: failed to verify id token signature".to_string()
                );
            }
        }
    }
    check_claims(&parsed.claims, rules, now_s)?;
    Ok(parsed.claims)
}

fn leeway(configured: i64, default: i64) -> i64 {
    match configured {
        0 => default,
        s if s < 0 => 0,
        s => s,
    }
}

/// The time, issuer and audience checks of `verifyVanillaJWT`.
fn check_claims(claims: &Map<String, Value>, rules: &ClaimRules, now: i64) -> Result<(), String> {
    let time = |name: &str| claims.get(name).and_then(Value::as_f64).unwrap_or(0.0) as i64;
    let (iat, mut exp, mut nbf) = (time("iat"), time("exp"), time("nbf"));
    if iat == 0 && exp == 0 && nbf == 0 {
        return Err("no issue time, notbefore, or expiration time encoded in token".into());
    }
    if exp == 0 {
        let latest_start = iat.max(nbf);
        exp = latest_start + leeway(rules.expiration_leeway_s, DEFAULT_CLAIM_LEEWAY_S);
    }
    if nbf == 0 {
        nbf = if iat != 0 {
            iat
        } else {
            exp - leeway(rules.not_before_leeway_s, DEFAULT_CLAIM_LEEWAY_S)
        };
    }
    let skew = leeway(rules.clock_skew_leeway_s, DEFAULT_CLOCK_SKEW_S);
    let invalid = |what: &str| {
        Err(format!(
            "error validating claims: go-jose/go-jose/jwt: validation failed, {what}"
        ))
    };
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !rules.bound_issuer.is_empty() && rules.bound_issuer != issuer {
        return invalid("invalid issuer claim (iss)");
    }
    if now + skew < nbf {
        return invalid("token not valid yet (nbf)");
    }
    if now - skew > exp {
        return invalid("token is expired (exp)");
    }
    if iat != 0 && now + skew < iat {
        return invalid("token issued in the future (iat)");
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if rules.bound_audiences.is_empty() {
        if !audiences.is_empty() {
            return Err(
                "error validating claims: audience claim found in JWT but no audiences are bound"
                    .into(),
            );
        }
    } else if !rules
        .bound_audiences
        .iter()
        .any(|bound| audiences.contains(&bound.as_str()))
    {
        return Err("error validating claims: aud claim does not match any bound audience".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn es256_token(claims: &Value) -> (String, PublicKey) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let signed = format!(
            "{}.{}",
            enc(br#"{"alg":"ES256","typ":"JWT"}"#),
            enc(claims.to_string().as_bytes())
        );
        let sig = pair.sign(&rng, signed.as_bytes()).unwrap();
        (
            format!("{signed}.{}", enc(sig.as_ref())),
            PublicKey::Ec(pair.public_key().as_ref().to_vec()),
        )
    }

    #[test]
    fn time_claims_use_the_leeways() {
        let now = 1_700_000_000;
        let (token, key) = es256_token(&serde_json::json!({"iat": now - 1000}));
        let rules = ClaimRules::default();
        // Only iat: it expires 150 s after it was issued, plus 60 s of skew.
        let err = verify(
            &token,
            KeySource::Static(std::slice::from_ref(&key)),
            &rules,
            now,
        )
        .unwrap_err();
        assert!(err.ends_with("token is expired (exp)"), "{err}");
        let lenient = ClaimRules {
            expiration_leeway_s: 2000,
            ..ClaimRules::default()
        };
        verify(&token, KeySource::Static(&[key]), &lenient, now).unwrap();
    }

    #[test]
    fn a_foreign_key_does_not_verify() {
        let now = 1_700_000_000;
        let (token, _) = es256_token(&serde_json::json!({"exp": now + 60}));
        let (_, other) = es256_token(&serde_json::json!({}));
        let err = verify(
            &token,
            KeySource::Static(&[other]),
            &ClaimRules::default(),
            now,
        );
        assert_eq!(
            err.unwrap_err(),
            "no known key successfully validated the token signature"
        );
    }
}
