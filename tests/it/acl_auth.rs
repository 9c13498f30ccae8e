//! ACL auth methods, binding rules, login and logout: CRUD with Consul's checks, JWT logins
//! end to end (static RSA and EC keys, a JWKS served from 127.0.0.1), bound issuer and
//! audience refusals, claim mappings with selectors and `${value.x}` interpolation, logout,
//! backends that can't be reached, deletion cascades and persistence across a restart.

use crate::acl::{acl_agent, call, get, ok, put, ROOT};
use crate::common::{http_target, TestAgent};
use base64::Engine;
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn now_s() -> u64 {
    legate::clock::now_ms() / 1000
}

/// A key that signs test JWTs, with its public half as PEM and as a JWK.
enum Signer {
    Ec(EcdsaKeyPair, rcgen::KeyPair),
    Rsa(RsaKeyPair, rcgen::KeyPair),
}

impl Signer {
    fn ec() -> Signer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .unwrap();
        Signer::Ec(pair, key)
    }

    fn rsa() -> Signer {
        use rsa::pkcs8::EncodePrivateKey;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = private.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let key = rcgen::KeyPair::try_from(der.as_slice()).unwrap();
        Signer::Rsa(pair, key)
    }

    fn public_pem(&self) -> String {
        match self {
            Signer::Ec(_, k) | Signer::Rsa(_, k) => {
                use rcgen::PublicKeyData;
                pem("PUBLIC KEY", &k.subject_public_key_info())
            }
        }
    }

    /// The public key as a JWKS document with one key, `kid` "k1".
    fn jwks(&self) -> String {
        let Signer::Ec(_, k) = self else {
            unreachable!("the JWKS tests use an EC key")
        };
        let point = k.public_key_raw();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": b64url(&point[1..33]), "y": b64url(&point[33..]),
        }]})
        .to_string()
    }

    fn sign(&self, claims: &Value) -> String {
        let rng = ring::rand::SystemRandom::new();
        let alg = match self {
            Signer::Ec(..) => "ES256",
            Signer::Rsa(..) => "RS256",
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": "k1"});
        let signed = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = match self {
            Signer::Ec(pair, _) => pair
                .sign(&rng, signed.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Signer::Rsa(pair, _) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{signed}.{}", b64url(&signature))
    }
}

/// Claims of a workload: issuer `legate-test`, audience `consul`, valid for a minute.
fn workload_claims(extra: Value) -> Value {
    let mut claims = json!({
        "iss": "legate-test",
        "aud": ["consul"],
        "iat": now_s(),
        "exp": now_s() + 60,
        "sub": "Web",
        "team": "eng",
        "groups": ["admins", "dev"],
        "k8s": {"ns": "prod"},
    });
    if let (Some(c), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    claims
}

/// A `jwt` method's config verifying with `keys` (a `JWTValidationPubKeys` or `JWKSURL`
/// entry) and mapping the workload claims.
fn jwt_config(keys: Value) -> Value {
    let mut config = json!({
        "BoundIssuer": "legate-test",
        "BoundAudiences": ["consul"],
        "ClaimMappings": {"sub": "who", "team": "team", "/k8s/ns": "namespace"},
        "ListClaimMappings": {"groups": "groups"},
    });
    if let (Some(c), Some(keys)) = (config.as_object_mut(), keys.as_object()) {
        c.extend(keys.clone());
    }
    config
}

/// Creates a `jwt` method `name` verifying with `key`; `extra` adds top-level fields.
async fn jwt_method(a: &TestAgent, name: &str, key: &Signer, extra: Value) -> Value {
    let config = jwt_config(json!({"JWTValidationPubKeys": [key.public_pem()]}));
    let mut body = json!({"Name": name, "Type": "jwt", "Config": config});
    if let (Some(b), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(extra.clone());
    }
    ok(put(a, "/v1/acl/auth-method", ROOT, body).await)
}

async fn delete(a: &TestAgent, path: &str, token: &str) -> (u16, String) {
    call(a, reqwest::Method::DELETE, path, token, None).await
}

async fn login(a: &TestAgent, method: &str, jwt: &str) -> (u16, String) {
    call(
        a,
        reqwest::Method::POST,
        "/v1/acl/login",
        "",
        Some(json!({"AuthMethod": method, "BearerToken": jwt, "Meta": {"pod": "p1"}})),
    )
    .await
}

/// A 500 with Consul's text.
fn refused(reply: (u16, String), text: &str) {
    assert_eq!((reply.0, reply.1.as_str()), (500, text));
}

/// A 500 whose text starts with `prefix` (the rest names a time, a port or a system error).
fn refused_with(reply: (u16, String), prefix: &str) {
    assert_eq!(reply.0, 500, "{}", reply.1);
    assert!(reply.1.starts_with(prefix), "{}", reply.1);
}

/// A 500 whose text ends with `suffix`.
fn refused_ending(reply: (u16, String), suffix: &str) {
    assert_eq!(reply.0, 500, "{}", reply.1);
    assert!(reply.1.ends_with(suffix), "{}", reply.1);
}

#[tokio::test]
async fn auth_methods_and_binding_rules_round_trip_with_consuls_checks() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let key = Signer::ec();
    let config = jwt_config(json!({"JWTValidationPubKeys": [key.public_pem()]}));
    let created = jwt_method(
        &a,
        "nomad",
        &key,
        json!({"DisplayName": "Nomad", "MaxTokenTTL": "10m", "TokenLocality": "global"}),
    )
    .await;
    assert_eq!(created["Name"], "nomad");
    assert_eq!(created["MaxTokenTTL"], "10m0s");
    assert_eq!(created["TokenLocality"], "global");
    assert_eq!(created["Config"]["BoundIssuer"], "legate-test");
    assert!(created.get("Description").is_none(), "{created}");
    let read = ok(get(&a, "/v1/acl/auth-method/nomad", ROOT).await);
    assert_eq!(read, created);
    let list = ok(get(&a, "/v1/acl/auth-methods", ROOT).await);
    assert_eq!(list[0]["DisplayName"], "Nomad");
    assert!(
        list[0].get("Config").is_none(),
        "stubs leave out Config: {list}"
    );
    assert_eq!(
        get(&a, "/v1/acl/auth-method/nope", ROOT).await,
        (
            404,
            "Requested auth method does not exist: ACL not found".to_string()
        )
    );

    // An update may leave out the type; it cannot change it.
    let updated = ok(put(
        &a,
        "/v1/acl/auth-method/nomad",
        ROOT,
        json!({"Description": "workloads", "Config": config}),
    )
    .await);
    assert_eq!(
        (updated["Type"].as_str(), updated["Description"].as_str()),
        (Some("jwt"), Some("workloads"))
    );
    refused(
        put(
            &a,
            "/v1/acl/auth-method/nomad",
            ROOT,
            json!({"Type": "kubernetes", "Config": {}}),
        )
        .await,
        "the Type field of an Auth Method is immutable",
    );
    let (status, body) = put(&a, "/v1/acl/auth-method/x", ROOT, json!({"Name": "y"})).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "AuthMethod Name in URL and payload do not match")
    );
    for (body, text) in [
        (json!({"Name": "m", "Type": "ldap"}), "Invalid Auth Method: Type should be one of: [jwt kubernetes oidc]"),
        (json!({"Type": "jwt"}), "Invalid Auth Method: no Name is set"),
        (json!({"Name": "a b", "Type": "jwt"}), "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"),
        (json!({"Name": "m", "Type": "jwt", "Config": {}}), "Invalid Auth Method: exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set for type \"jwt\""),
        (json!({"Name": "m", "Type": "jwt", "Config": {"JWTValidationPubKeys": ["nope"]}}), "Invalid Auth Method: error parsing public key JWTValidationPubKeys[0]: data does not contain any valid RSA, ECDSA, or ED25519 public keys"),
        (json!({"Name": "m", "Type": "jwt", "TokenLocality": "far", "Config": config}), "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'"),
        (json!({"Name": "m", "Type": "jwt", "MaxTokenTTL": "1s", "Config": config}), "MaxTokenTTL 1s cannot be less than 1m0s"),
        (json!({"Name": "m", "Type": "kubernetes", "Config": {}}), "Invalid Auth Method: Config.Host is required"),
        (json!({"Name": "m", "Type": "oidc", "Config": {"OIDCDiscoveryURL": "http://x"}}), "Invalid Auth Method: 'OIDCClientID' must be set for type \"oidc\""),
    ] {
        refused(put(&a, "/v1/acl/auth-method", ROOT, body).await, text);
    }
    assert!(
        ok(get(&a, "/v1/acl/auth-methods", ROOT).await)
            .as_array()
            .unwrap()
            .len()
            == 1
    );

    // Binding rules.
    for (body, text) in [
        (
            json!({"AuthMethod": "nope", "BindType": "service", "BindName": "x"}),
            "cannot find auth method with name \"nope\"",
        ),
        (
            json!({"BindType": "service", "BindName": "x"}),
            "Invalid Binding Rule: no AuthMethod is set",
        ),
        (
            json!({"AuthMethod": "nomad", "BindName": "x"}),
            "Invalid Binding Rule: no BindType is set",
        ),
        (
            json!({"AuthMethod": "nomad", "BindType": "service"}),
            "Invalid Binding Rule: no BindName is set",
        ),
        (
            json!({"AuthMethod": "nomad", "BindType": "thing", "BindName": "x"}),
            "Invalid Binding Rule: unknown BindType \"thing\"",
        ),
        (
            json!({"AuthMethod": "nomad", "BindType": "service", "BindName": "${value.nope}"}),
            "Invalid Binding Rule: invalid BindName: unknown variable accessed: value.nope",
        ),
        (
            json!({"AuthMethod": "nomad", "BindType": "service", "BindName": "Not Valid"}),
            "Invalid Binding Rule: invalid BindName",
        ),
    ] {
        refused(put(&a, "/v1/acl/binding-rule", ROOT, body).await, text);
    }
    refused_with(
        put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "BindType": "service", "BindName": "x", "Selector": "value.who =="}),
    )
    .await,
        "invalid Binding Rule: Selector is invalid: ",
    );
    let rule = ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "Description": "web", "BindType": "service",
               "BindName": "svc-${value.who}", "Selector": "value.team == eng"}),
    )
    .await);
    let id = rule["ID"].as_str().unwrap().to_string();
    assert_eq!(
        ok(get(&a, &format!("/v1/acl/binding-rule/{id}"), ROOT).await),
        rule
    );
    let templated = ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "BindType": "templated-policy", "BindName": "builtin/service",
               "BindVars": {"Name": "${value.who}"}}),
    )
    .await);
    assert_eq!(templated["BindVars"]["Name"], "${value.who}");
    let moved = put(
        &a,
        &format!("/v1/acl/binding-rule/{id}"),
        ROOT,
        json!({"AuthMethod": "other", "BindType": "node", "BindName": "n"}),
    )
    .await;
    refused(
        moved,
        "the AuthMethod field of an Binding Rule is immutable",
    );
    let edited = ok(put(
        &a,
        &format!("/v1/acl/binding-rule/{id}"),
        ROOT,
        json!({"BindType": "node", "BindName": "node-${value.who}"}),
    )
    .await);
    assert_eq!(
        (edited["AuthMethod"].as_str(), edited["BindType"].as_str()),
        (Some("nomad"), Some("node"))
    );
    assert_eq!(edited["CreateIndex"], rule["CreateIndex"]);
    let listed = ok(get(&a, "/v1/acl/binding-rules?authmethod=nomad", ROOT).await);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        ok(get(&a, "/v1/acl/binding-rules?authmethod=other", ROOT).await),
        json!([])
    );
    assert_eq!(
        ok(delete(&a, &format!("/v1/acl/binding-rule/{id}"), ROOT).await),
        json!(true)
    );
    assert_eq!(
        get(&a, &format!("/v1/acl/binding-rule/{id}"), ROOT).await,
        (
            404,
            "Requested binding rule does not exist: ACL not found".to_string()
        )
    );

    // Management needs acl:read / acl:write.
    let (status, _) = get(&a, "/v1/acl/auth-methods", "").await;
    assert_eq!(status, 403);
    let (status, _) = put(&a, "/v1/acl/binding-rule", "", json!({})).await;
    assert_eq!(status, 403);

    // Deleting the method takes its rules along.
    assert_eq!(
        ok(delete(&a, "/v1/acl/auth-method/nomad", ROOT).await),
        json!(true)
    );
    assert_eq!(ok(get(&a, "/v1/acl/binding-rules", ROOT).await), json!([]));
}

#[tokio::test]
async fn jwt_login_with_static_keys_binds_services_through_selectors() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let key = Signer::rsa();
    jwt_method(&a, "nomad", &key, json!({"MaxTokenTTL": "10m"})).await;
    ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "BindType": "service", "BindName": "svc-${value.who}",
               "Selector": "value.team == eng and \"admins\" in list.groups"}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "ns-prod", "Rules": ""}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "BindType": "policy", "BindName": "ns-${value.namespace}"}),
    )
    .await);

    let before = legate::clock::now_ms();
    let token = ok(login(&a, "nomad", &key.sign(&workload_claims(json!({})))).await);
    assert_eq!(token["AuthMethod"], "nomad");
    assert_eq!(token["Local"], true);
    assert_eq!(
        token["Description"],
        r#"token created via login: {"pod":"p1"}"#
    );
    assert_eq!(
        token["ServiceIdentities"],
        json!([{"ServiceName": "svc-web"}])
    );
    assert_eq!(token["Policies"][0]["Name"], "ns-prod");
    let expires =
        legate::types::acl::parse_rfc3339(token["ExpirationTime"].as_str().unwrap()).unwrap();
    assert!(
        (before + 600_000..before + 610_000).contains(&expires),
        "{token}"
    );
    let secret = token["SecretID"].as_str().unwrap().to_string();
    let me = ok(get(&a, "/v1/acl/token/self", &secret).await);
    assert_eq!(me["AccessorID"], token["AccessorID"]);
    // The service identity grants service:write on svc-web.
    let register = put(
        &a,
        "/v1/agent/service/register",
        &secret,
        json!({"Name": "svc-web"}),
    )
    .await;
    assert_eq!(register.0, 200, "{}", register.1);
    let listed = ok(get(&a, "/v1/acl/tokens?authmethod=nomad", ROOT).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["AccessorID"], token["AccessorID"]);
    let clone = put(
        &a,
        &format!(
            "/v1/acl/token/{}/clone",
            token["AccessorID"].as_str().unwrap()
        ),
        ROOT,
        json!({}),
    )
    .await;
    refused(clone, "Cannot clone a token created from an auth method");

    // The claims the method binds to are checked.
    refused_ending(
        login(
            &a,
            "nomad",
            &key.sign(&workload_claims(json!({"iss": "evil"}))),
        )
        .await,
        "invalid issuer claim (iss)",
    );
    refused(
        login(
            &a,
            "nomad",
            &key.sign(&workload_claims(json!({"aud": "other"}))),
        )
        .await,
        "error validating claims: aud claim does not match any bound audience",
    );
    let expired = workload_claims(json!({"iat": now_s() - 3600, "exp": now_s() - 600}));
    refused_ending(
        login(&a, "nomad", &key.sign(&expired)).await,
        "token is expired (exp)",
    );
    refused(
        login(
            &a,
            "nomad",
            &Signer::rsa().sign(&workload_claims(json!({}))),
        )
        .await,
        "no known key successfully validated the token signature",
    );
    // No rule matches (wrong team, and no policy for namespace "dev"): nothing is granted.
    let stranger = workload_claims(json!({"team": "ops", "k8s": {"ns": "dev"}}));
    let (status, body) = login(&a, "nomad", &key.sign(&stranger)).await;
    assert_eq!((status, body.as_str()), (403, "Permission denied"));
    let (status, body) = login(&a, "ghost", "x").await;
    assert_eq!(
        (status, body.as_str()),
        (403, "ACL not found: auth method \"ghost\" not found")
    );

    // Logout deletes a login's token; other tokens are refused.
    let (status, body) = call(&a, reqwest::Method::POST, "/v1/acl/logout", ROOT, None).await;
    assert_eq!(
        (status, body.as_str()),
        (403, "Permission denied: token wasn't created via login")
    );
    let (status, body) = call(&a, reqwest::Method::POST, "/v1/acl/logout", "", None).await;
    assert_eq!(
        (status, body.as_str()),
        (401, "Supplied token does not exist")
    );
    assert_eq!(
        ok(call(&a, reqwest::Method::POST, "/v1/acl/logout", &secret, None).await),
        json!(true)
    );
    let (status, body) = get(&a, "/v1/acl/token/self", &secret).await;
    assert_eq!(
        (status, body.as_str()),
        (404, "Supplied token does not exist")
    );
    let (status, body) = call(&a, reqwest::Method::POST, "/v1/acl/logout", &secret, None).await;
    assert_eq!((status, body.as_str()), (403, "ACL not found"));

    // Deleting the method deletes the tokens its logins created.
    let token = ok(login(&a, "nomad", &key.sign(&workload_claims(json!({})))).await);
    ok(delete(&a, "/v1/acl/auth-method/nomad", ROOT).await);
    let gone = get(
        &a,
        &format!("/v1/acl/token/{}", token["AccessorID"].as_str().unwrap()),
        ROOT,
    )
    .await;
    assert_eq!(
        gone,
        (
            404,
            "Requested token does not exist: ACL not found".to_string()
        )
    );
}

#[tokio::test]
async fn jwt_login_with_a_jwks_url_and_roles() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let key = Signer::ec();
    let jwks: &'static str = Box::leak(key.jwks().into_boxed_str());
    let server = http_target(200, jwks).await;
    let config = jwt_config(json!({"JWKSURL": format!("http://{server}/jwks")}));
    ok(put(
        &a,
        "/v1/acl/auth-method",
        ROOT,
        json!({"Name": "jwks", "Type": "jwt", "Config": config}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/role",
        ROOT,
        json!({"Name": "team-eng", "ServiceIdentities": [{"ServiceName": "api"}]}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "jwks", "BindType": "role", "BindName": "team-${value.team}"}),
    )
    .await);
    let token = ok(login(&a, "jwks", &key.sign(&workload_claims(json!({})))).await);
    assert_eq!(token["Roles"][0]["Name"], "team-eng");
    assert!(token.get("ExpirationTime").is_none(), "{token}");
    refused(
        login(&a, "jwks", &Signer::ec().sign(&workload_claims(json!({})))).await,
        "error verifying token: failed to verify id token signature",
    );
    // A JWKS URL that doesn't answer is refused when the method is written.
    let dead = crate::common::free_port();
    let config = jwt_config(json!({"JWKSURL": format!("http://127.0.0.1:{dead}/jwks")}));
    refused_with(
        put(
            &a,
            "/v1/acl/auth-method",
            ROOT,
            json!({"Name": "dead", "Type": "jwt", "Config": config}),
        )
        .await,
        "Invalid Auth Method: error checking JWKSURL: fetching keys",
    );
}

#[tokio::test]
async fn kubernetes_and_oidc_methods_answer_as_consul_when_their_backend_is_away() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let ca = rcgen::CertificateParams::new(vec!["k8s".into()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let ca = pem("CERTIFICATE", ca.der());
    let reviewer = Signer::ec().sign(&json!({"sub": "reviewer"}));
    let port = crate::common::free_port();
    ok(put(
        &a,
        "/v1/acl/auth-method",
        ROOT,
        json!({"Name": "k8s", "Type": "kubernetes",
               "Config": {"Host": format!("https://127.0.0.1:{port}"), "CACert": ca, "ServiceAccountJWT": reviewer}}),
    )
    .await);
    ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "k8s", "BindType": "service", "BindName": "${serviceaccount.name}",
               "Selector": "serviceaccount.namespace == default"}),
    )
    .await);
    refused_with(
        login(&a, "k8s", "not-a-jwt").await,
        "failed to parse and validate JWT: ",
    );
    let url =
        format!("Post \"https://127.0.0.1:{port}/apis/authentication.k8s.io/v1/tokenreviews\": ");
    refused_with(login(&a, "k8s", &reviewer).await, &url);

    refused_with(
        put(
            &a,
            "/v1/acl/auth-method",
            ROOT,
            json!({"Name": "sso", "Type": "oidc", "Config": {
            "OIDCDiscoveryURL": format!("http://127.0.0.1:{port}"), "OIDCClientID": "c",
            "OIDCClientSecret": "s", "AllowedRedirectURIs": ["http://localhost/cb"]}}),
        )
        .await,
        "Invalid Auth Method: error checking OIDCDiscoveryURL: ",
    );
}

#[tokio::test]
async fn auth_methods_rules_and_login_tokens_survive_a_restart() {
    let (a, _cfg) = acl_agent(json!({})).await;
    let key = Signer::ec();
    jwt_method(&a, "nomad", &key, json!({})).await;
    let rule = ok(put(
        &a,
        "/v1/acl/binding-rule",
        ROOT,
        json!({"AuthMethod": "nomad", "BindType": "node", "BindName": "${value.who}"}),
    )
    .await);
    let token = ok(login(&a, "nomad", &key.sign(&workload_claims(json!({})))).await);
    assert_eq!(token["NodeIdentities"][0]["NodeName"], "web");
    let secret = token["SecretID"].as_str().unwrap().to_string();
    let a = a.restart().await;
    assert_eq!(
        ok(get(&a, "/v1/acl/auth-method/nomad", ROOT).await)["Type"],
        "jwt"
    );
    let id = rule["ID"].as_str().unwrap();
    assert_eq!(
        ok(get(&a, &format!("/v1/acl/binding-rule/{id}"), ROOT).await),
        rule
    );
    let me = ok(get(&a, "/v1/acl/token/self", &secret).await);
    assert_eq!(me["AuthMethod"], "nomad");
    // The method still verifies after the restart.
    ok(login(&a, "nomad", &key.sign(&workload_claims(json!({})))).await);
}

/// Runs the CLI with the management token; it must succeed. Returns its output.
async fn cli_ok(a: &TestAgent, args: &[&str], stdin: Option<&str>) -> String {
    let out = a.cli(&[args, &["-token", ROOT][..]].concat(), stdin).await;
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

#[tokio::test]
async fn cli_manages_roles_auth_methods_and_binding_rules_and_logs_in() {
    let (a, _cfg) = acl_agent(json!({})).await;
    ok(put(
        &a,
        "/v1/acl/policy",
        ROOT,
        json!({"Name": "base", "Rules": ""}),
    )
    .await);

    // Roles.
    let create = [
        "acl",
        "role",
        "create",
        "-name",
        "web",
        "-description",
        "Web",
        "-policy-name",
        "base",
        "-service-identity",
        "web:dc1,dc2",
    ];
    let created = cli_ok(&a, &create, None).await;
    assert!(
        created.contains("Name:         web\nDescription:  Web\nPolicies:\n"),
        "{created}"
    );
    assert!(
        created.contains("Service Identities:\n   web (Datacenters: dc1, dc2)\n"),
        "{created}"
    );
    let id = created
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("ID:")
        .trim()
        .to_string();
    let update = [
        "acl",
        "role",
        "update",
        "-id",
        &id,
        "-node-identity",
        "n1:dc1",
        "-format",
        "json",
    ];
    let role: Value = serde_json::from_str(&cli_ok(&a, &update, None).await).unwrap();
    assert_eq!(role["NodeIdentities"][0]["NodeName"], "n1");
    assert_eq!(
        role["Policies"][0]["Name"], "base",
        "an update merges: {role}"
    );
    let read = cli_ok(&a, &["acl", "role", "read", "-name", "web"], None).await;
    assert!(
        read.contains("Node Identities:\n   n1 (Datacenter: dc1)\n"),
        "{read}"
    );
    let list = cli_ok(&a, &["acl", "role", "list", "-format", "json"], None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&list)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let deleted = cli_ok(&a, &["acl", "role", "delete", "-name", "web"], None).await;
    assert_eq!(deleted, format!("Role {id:?} deleted successfully\n"));

    // Auth methods.
    let key = Signer::ec();
    let config = jwt_config(json!({"JWTValidationPubKeys": [key.public_pem()]})).to_string();
    let create = [
        "acl",
        "auth-method",
        "create",
        "-type",
        "jwt",
        "-name",
        "nomad",
        "-max-token-ttl",
        "5m",
        "-config",
        "-",
    ];
    let created = cli_ok(&a, &create, Some(&config)).await;
    let head = "Name:          nomad\nType:          jwt\nDescription:   \nMaxTokenTTL:   5m0s\nConfig:\n{\n  \"BoundIssuer\"";
    assert!(created.starts_with(head), "{created}");
    let update = [
        "acl",
        "auth-method",
        "update",
        "-name",
        "nomad",
        "-display-name",
        "Nomad",
    ];
    let updated = cli_ok(&a, &update, None).await;
    assert!(updated.contains("DisplayName:   Nomad\n"), "{updated}");
    let bad = a
        .cli(
            &[
                "acl",
                "auth-method",
                "create",
                "-type",
                "ldap",
                "-name",
                "x",
                "-token",
                ROOT,
            ],
            None,
        )
        .await;
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr.trim_end(),
        "Failed to create new auth method: Unexpected response code: 500 (Invalid Auth Method: Type should be one of: [jwt kubernetes oidc])"
    );
    let list = cli_ok(&a, &["acl", "auth-method", "list"], None).await;
    assert!(
        list.starts_with("Name:          nomad\n") && !list.contains("Config"),
        "{list}"
    );

    // Binding rules.
    let create = [
        "acl",
        "binding-rule",
        "create",
        "-method",
        "nomad",
        "-bind-name",
        "${value.who}",
        "-selector",
        "value.team == eng",
        "-format",
        "json",
    ];
    let rule: Value = serde_json::from_str(&cli_ok(&a, &create, None).await).unwrap();
    assert_eq!(rule["BindType"], "service");
    let rule_id = rule["ID"].as_str().unwrap();
    let read = cli_ok(&a, &["acl", "binding-rule", "read", "-id", rule_id], None).await;
    assert!(read.contains("AuthMethod:   nomad\n"), "{read}");
    assert!(
        read.ends_with("Selector:     value.team == eng\n"),
        "{read}"
    );
    let list = [
        "acl",
        "binding-rule",
        "list",
        "-method",
        "nomad",
        "-format",
        "json",
    ];
    let listed: Value = serde_json::from_str(&cli_ok(&a, &list, None).await).unwrap();
    assert_eq!(listed[0]["ID"], rule["ID"]);

    // Login writes the secret to the sink; logout destroys it.
    let dir = tempfile::tempdir().unwrap();
    let bearer = dir.path().join("jwt");
    std::fs::write(&bearer, key.sign(&workload_claims(json!({})))).unwrap();
    let sink = dir.path().join("token");
    let (bearer, sink_path) = (bearer.to_str().unwrap(), sink.to_str().unwrap());
    let login = [
        "login",
        "-method",
        "nomad",
        "-bearer-token-file",
        bearer,
        "-token-sink-file",
        sink_path,
    ];
    let login = a.cli(&login, None).await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    let secret = std::fs::read_to_string(&sink).unwrap();
    let me = ok(get(&a, "/v1/acl/token/self", &secret).await);
    assert_eq!(me["ServiceIdentities"][0]["ServiceName"], "web");
    let logout = a.cli(&["logout", "-token", &secret], None).await;
    assert_eq!(logout.code, 0, "{}", logout.stderr);
    assert_eq!(get(&a, "/v1/acl/token/self", &secret).await.0, 404);
    let refused = a.cli(&["logout", "-token", ROOT], None).await;
    assert_eq!(
        refused.stderr.trim_end(),
        "Error destroying token: Unexpected response code: 403 (Permission denied: token wasn't created via login)"
    );

    let deleted = cli_ok(&a, &["acl", "binding-rule", "delete", "-id", rule_id], None).await;
    assert_eq!(
        deleted,
        format!("Binding rule {rule_id:?} deleted successfully\n")
    );
    let deleted = cli_ok(
        &a,
        &["acl", "auth-method", "delete", "-name", "nomad"],
        None,
    )
    .await;
    assert_eq!(deleted, "Auth-method \"nomad\" deleted successfully\n");
}
