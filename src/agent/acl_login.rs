//! ACL auth methods at work (Consul's `ACL.AuthMethodSet`, `BindingRuleSet` and `Login`): the
//! checks that need the network (a JWKS or OIDC discovery URL must answer), logins that verify
//! a bearer token and create a token from the matching binding rules, and logouts.
//!
//! The verification itself is `acl::authmethod`; this module fetches what it needs (keys from
//! a JWKS URL, a Kubernetes TokenReview) and writes through store commands. The token a login
//! creates gets its IDs, times and grants here, before its command is built.

use crate::acl::authmethod::jwt::{self, KeySource};
use crate::acl::authmethod::{self, Identity, KubernetesConfig, MethodConfig, SsoConfig};
use crate::store::acl::{self as store_acl, TokenWrite};
use crate::store::acl_auth;
use crate::store::{Command, Store, StoreError};
use crate::types::acl::{
    new_uuid, AclAuthMethod, AclBindingRule, AclToken, Grants, Link, NodeIdentity, ServiceIdentity,
    TemplatedPolicyLink,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a request to a JWKS, OIDC discovery or Kubernetes endpoint may take.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a login or logout failed; the HTTP layer maps each to Consul's status.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Consul's `acl.ErrNotFound` (403 `ACL not found...`).
    #[error("ACL not found{0}")]
    NotFound(String),
    /// Consul's `acl.ErrPermissionDenied` (403): no rule granted anything.
    #[error("Permission denied")]
    Denied,
    /// A logout of a token that did not come from a login (403).
    #[error("Permission denied: token wasn't created via login")]
    NotFromLogin,
    /// The method refused the bearer token or could not reach its backend (500).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(REMOTE_TIMEOUT);
    if !ca_pem.is_empty() {
        let cert = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("failed to decode keys: {e} {body}"))
}

async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<jwt::KeyEntry>, String> {
    let doc = get_json(client, url)
        .await
        .map_err(|e| format!("fetching keys oidc: get keys failed: {e}"))?;
    jwt::parse_jwks(&doc).map_err(|e| format!("fetching keys oidc: {e}"))
}

/// The provider's discovery document (`oidc.NewProvider`): it must name the URL as issuer.
async fn discover(client: &reqwest::Client, url: &str) -> Result<Map<String, Value>, String> {
    let well_known = format!(
        "{}/.well-known/openid-configuration",
        url.trim_end_matches('/')
    );
    let doc = get_json(client, &well_known).await?;
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer != url {
        return Err(format!(
            "oidc: issuer did not match the issuer returned by provider, expected {url:?} got {issuer:?}"
        ));
    }
    Ok(doc.as_object().cloned().unwrap_or_default())
}

/// The keys a `jwt` method verifies with when they are remote: its JWKS, or the one its OIDC
/// discovery document names (both fetched with one client, trusting the discovery CA).
async fn remote_keys(config: &SsoConfig) -> Result<Vec<jwt::KeyEntry>, String> {
    if !config.jwks_url.is_empty() {
        return fetch_jwks(&client(&config.jwks_ca_cert)?, &config.jwks_url).await;
    }
    let client = client(&config.oidc_discovery_ca_cert)?;
    let doc = discover(&client, &config.oidc_discovery_url).await?;
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .unwrap_or_default();
    fetch_jwks(&client, jwks_uri).await
}

/// Checks a method about to be written, as `AuthMethodSet` does: a known type (an update may
/// leave it out and keep the stored one), a valid name, TTL and locality, and a configuration
/// its type accepts, remote URLs included. Returns the method with its type filled in.
pub async fn check_method(
    store: &Store,
    mut method: AclAuthMethod,
    ttl_bounds: (Duration, Duration),
) -> Result<AclAuthMethod, String> {
    if method.name.is_empty() {
        return Err("Invalid Auth Method: no Name is set".into());
    }
    if !crate::acl::is_valid_name(&method.name, crate::acl::AUTH_METHOD_NAME_MAX) {
        return Err(
            "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"
                .into(),
        );
    }
    let existing = acl_auth::auth_method(&store.read().map_err(|e| e.to_string())?, &method.name)
        .map_err(|e| e.to_string())?;
    if let Some(existing) = existing {
        if method.method_type.is_empty() {
            method.method_type = existing.method_type;
        } else if existing.method_type != method.method_type {
            return Err("the Type field of an Auth Method is immutable".into());
        }
    }
    if !authmethod::TYPES.contains(&method.method_type.as_str()) {
        return Err(authmethod::unknown_type_message());
    }
    let (min, max) = ttl_bounds;
    let ttl = Duration::from_nanos(method.max_token_ttl_ns);
    let fmt = crate::duration::format;
    if !ttl.is_zero() && ttl > max {
        return Err(format!(
            "MaxTokenTTL {} cannot be more than {}",
            fmt(ttl),
            fmt(max)
        ));
    }
    if !ttl.is_zero() && ttl < min {
        return Err(format!(
            "MaxTokenTTL {} cannot be less than {}",
            fmt(ttl),
            fmt(min)
        ));
    }
    if !matches!(method.token_locality.as_str(), "" | "local" | "global") {
        return Err(
            "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'".into(),
        );
    }
    let invalid = |e: String| format!("Invalid Auth Method: {e}");
    let config =
        MethodConfig::parse(&method.method_type, &method.config_json()).map_err(invalid)?;
    match &config {
        MethodConfig::Jwt(c) if !c.jwks_url.is_empty() => {
            let fetched = async { fetch_jwks(&client(&c.jwks_ca_cert)?, &c.jwks_url).await };
            fetched
                .await
                .map_err(|e| invalid(format!("error checking JWKSURL: {e}")))?;
        }
        MethodConfig::Jwt(c) | MethodConfig::Oidc(c) if !c.oidc_discovery_url.is_empty() => {
            let found = async {
                discover(&client(&c.oidc_discovery_ca_cert)?, &c.oidc_discovery_url).await
            };
            found
                .await
                .map_err(|e| invalid(format!("error checking OIDCDiscoveryURL: {e}")))?;
        }
        _ => {}
    }
    Ok(method)
}

/// Checks a binding rule about to be written against its method's identity fields (the
/// store checks again that the method exists). An update may leave the method out.
pub fn check_binding_rule(
    store: &Store,
    rule: &AclBindingRule,
    create: bool,
) -> Result<(), String> {
    let r = store.read().map_err(|e| e.to_string())?;
    let mut method_name = rule.auth_method.clone();
    if !create {
        let existing = acl_auth::binding_rule(&r, &rule.id).map_err(|e| e.to_string())?;
        match existing {
            // The store refuses a missing rule with Consul's text.
            None => return Ok(()),
            Some(existing) if method_name.is_empty() => method_name = existing.auth_method,
            Some(existing) if existing.auth_method != method_name => {
                return Err("the AuthMethod field of an Binding Rule is immutable".into())
            }
            Some(_) => {}
        }
    }
    if method_name.is_empty() {
        return Err("Invalid Binding Rule: no AuthMethod is set".into());
    }
    let Some(method) = acl_auth::auth_method(&r, &method_name).map_err(|e| e.to_string())? else {
        return Err(format!("cannot find auth method with name {method_name:?}"));
    };
    let config = MethodConfig::parse(&method.method_type, &method.config_json())
        .map_err(|e| format!("Invalid Auth Method: {e}"))?;
    authmethod::validate_rule(rule, &config)
}

/// Verifies a bearer token with a method and returns the identity it proves.
async fn verify(config: &MethodConfig, bearer: &str) -> Result<Identity, String> {
    match config {
        MethodConfig::Jwt(c) => {
            let now_s = (crate::clock::now_ms() / 1000) as i64;
            let claims = if c.public_keys.is_empty() {
                let keys = remote_keys(c)
                    .await
                    .map_err(|e| format!("error verifying token: {e}"))?;
                jwt::verify(bearer, KeySource::Jwks(&keys), &c.claims, now_s)?
            } else {
                jwt::verify(bearer, KeySource::Static(&c.public_keys), &c.claims, now_s)?
            };
            Identity::from_claims(c, &claims)
        }
        MethodConfig::Oidc(c) => {
            // The provider must answer before anything else, as Consul builds its validator
            // from it; a JWT login is then refused for this type.
            let found = async {
                discover(&client(&c.oidc_discovery_ca_cert)?, &c.oidc_discovery_url).await
            };
            found
                .await
                .map_err(|e| format!("error checking OIDCDiscoveryURL: {e}"))?;
            Err("ClaimsFromJWT is incompatible with type \"oidc\"".into())
        }
        MethodConfig::Kubernetes(k) => token_review(k, bearer).await,
    }
}

/// Asks the Kubernetes API server who a service account token belongs to (a TokenReview,
/// then the account's `consul.hashicorp.com/service-name` annotation).
async fn token_review(k: &KubernetesConfig, bearer: &str) -> Result<Identity, String> {
    jwt::parse(bearer).map_err(|e| format!("failed to parse and validate JWT: {e}"))?;
    let host = if k.host.contains("://") {
        k.host.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", k.host)
    };
    let client = client(&k.ca_cert)?;
    let url = format!("{host}/apis/authentication.k8s.io/v1/tokenreviews");
    let review = serde_json::json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "spec": {"token": bearer},
    });
    let resp = client
        .post(&url)
        .bearer_auth(&k.service_account_jwt)
        .json(&review)
        .send()
        .await
        .map_err(|e| format!("Post {url:?}: {e}"))?;
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    let status = &body["status"];
    if let Some(err) = status["error"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("lookup failed: {err}"));
    }
    if status["authenticated"].as_bool() != Some(true) {
        return Err("lookup failed: service account jwt not valid".into());
    }
    let username = status["user"]["username"].as_str().unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    let [system, account, namespace, name] = parts[..] else {
        return Err("lookup failed: unexpected username format".into());
    };
    if system != "system" || account != "serviceaccount" {
        return Err("lookup failed: username returned is not a service account".into());
    }
    let uid = status["user"]["uid"].as_str().unwrap_or_default();
    let sa_url = format!("{host}/api/v1/namespaces/{namespace}/serviceaccounts/{name}");
    let sa: Value = client
        .get(&sa_url)
        .bearer_auth(&k.service_account_jwt)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("annotation lookup failed: {e}"))?
        .json()
        .await
        .map_err(|e| format!("annotation lookup failed: {e}"))?;
    let name = sa["metadata"]["annotations"]["consul.hashicorp.com/service-name"]
        .as_str()
        .unwrap_or(name);
    Ok(Identity::kubernetes(namespace, name, uid))
}

/// What a login asks for.
pub struct LoginRequest {
    pub auth_method: String,
    pub bearer_token: String,
    pub meta: BTreeMap<String, String>,
}

/// `POST /v1/acl/login`: verifies the bearer token with the method, evaluates its binding
/// rules and creates a token with what they grant (roles and policies that don't exist are
/// skipped, as Consul skips them); nothing granted is `Denied`.
/// Node identities are granted in `datacenter`, this agent's.
pub async fn login(
    store: &Store,
    datacenter: &str,
    req: LoginRequest,
) -> Result<AclToken, LoginError> {
    let (method, rules) = {
        let r = store.read()?;
        let method = acl_auth::auth_method(&r, &req.auth_method)?.ok_or_else(|| {
            LoginError::NotFound(format!(": auth method {:?} not found", req.auth_method))
        })?;
        let rules = acl_auth::binding_rules(&r, Some(&req.auth_method))?;
        (method, rules)
    };
    let config = MethodConfig::parse(&method.method_type, &method.config_json())
        .map_err(|e| LoginError::Failed(format!("Invalid Auth Method: {e}")))?;
    let identity = verify(&config, &req.bearer_token)
        .await
        .map_err(LoginError::Failed)?;
    let bindings =
        authmethod::evaluate(&rules, &identity).map_err(|e| LoginError::Failed(e.to_string()))?;
    let (roles, policies) = {
        let r = store.read()?;
        let roles = existing(&bindings.roles, |name| {
            Ok(store_acl::role_by_name(&r, name)?.map(|x| x.id))
        })?;
        let policies = existing(&bindings.policies, |name| {
            Ok(store_acl::policy_by_name(&r, name)?.map(|x| x.id))
        })?;
        (roles, policies)
    };
    let grants = Grants {
        policies,
        service_identities: bindings
            .service_identities
            .into_iter()
            .map(|service_name| ServiceIdentity {
                service_name,
                datacenters: Vec::new(),
            })
            .collect(),
        node_identities: bindings
            .node_identities
            .into_iter()
            .map(|node_name| NodeIdentity {
                node_name,
                datacenter: datacenter.to_string(),
            })
            .collect(),
        templated_policies: bindings
            .templated_policies
            .into_iter()
            .map(|(template_name, name)| TemplatedPolicyLink {
                template_name,
                name,
                datacenters: Vec::new(),
            })
            .collect(),
    };
    let nothing = grants.policies.is_empty()
        && grants.service_identities.is_empty()
        && grants.node_identities.is_empty()
        && grants.templated_policies.is_empty()
        && roles.is_empty();
    if nothing {
        return Err(LoginError::Denied);
    }
    let mut description = "token created via login".to_string();
    if !req.meta.is_empty() {
        let meta =
            serde_json::to_string(&req.meta).map_err(|e| LoginError::Failed(e.to_string()))?;
        description = format!("{description}: {meta}");
    }
    let create_ms = crate::clock::now_ms();
    let token = AclToken {
        accessor_id: new_uuid(),
        secret_id: new_uuid(),
        description,
        grants,
        roles,
        local: method.token_locality != "global",
        expiration_ms: (method.max_token_ttl_ns > 0)
            .then(|| create_ms + method.max_token_ttl_ns / 1_000_000),
        create_ms,
        auth_method: method.name,
        ..AclToken::default()
    };
    let stored = store
        .apply(Command::AclTokenSet {
            token: Box::new(token),
            mode: TokenWrite::Create,
        })
        .await?
        .acl_token()
        .ok_or_else(|| LoginError::Failed("Failed to retrieve the token after insertion".into()))?;
    Ok(stored)
}

/// Links to the records named in `names` that exist (`id_of` finds one's ID): Consul skips
/// bound roles and policies that don't.
fn existing(
    names: &[String],
    id_of: impl Fn(&str) -> crate::store::Result<Option<String>>,
) -> crate::store::Result<Vec<Link>> {
    let mut links = Vec::new();
    for name in names {
        if let Some(id) = id_of(name)? {
            links.push(Link {
                id,
                name: String::new(),
            });
        }
    }
    Ok(links)
}

/// `POST /v1/acl/logout`: deletes the caller's token if a login created it.
pub async fn logout(store: &Store, secret: &str) -> Result<(), LoginError> {
    let token = store_acl::token_by_secret(&store.read()?, secret)?
        .ok_or_else(|| LoginError::NotFound(String::new()))?;
    if token.auth_method.is_empty() {
        return Err(LoginError::NotFromLogin);
    }
    store
        .apply(Command::AclTokenDelete {
            accessor_id: token.accessor_id,
        })
        .await?;
    Ok(())
}
