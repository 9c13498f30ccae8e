//! `/v1/acl/*` (Consul's `acl_endpoint.go`, HTTP and server halves): bootstrap, tokens,
//! policies, roles, templated policies and the replication status.
//!
//! Every endpoint answers 401 `ACL support disabled` when ACLs are off. Management endpoints
//! need `acl:read` or `acl:write` on the caller's token. A body that doesn't decode is a 400;
//! what the server refuses (validation, conflicts) is Consul's 500 with its text.
//!
//! Also the enforcement helpers every handler uses: `Caller` (who a request acts as, resolved
//! once by `dispatch`), its checks and list filtering, and `require`.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::templated::{TemplateVariables, TemplatedPolicy, TEMPLATED_POLICIES};
use crate::acl::{AccessLevel, PermissionDenied, Resource};
use crate::agent::acl::Identity;
use crate::gojson::{self, field, Kind, Schema, STRING};
use crate::store::acl::{self as store_acl, TokenFilter, TokenWrite};
use crate::store::{Command, StoreError};
use crate::types::acl::{
    is_reserved, is_uuid, management_token, new_uuid, parse_rfc3339, AclPolicy, AclRole, AclToken,
    Grants, Link, NodeIdentity, ServiceIdentity, TemplatedPolicyLink, RESERVED_PREFIX,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use warp::http::{Method, StatusCode};

/// What a non-management caller sees instead of a token's secret (Consul's
/// `redactedToken`).
const HIDDEN: &str = "<hidden>";
/// The file whose content (the last bootstrap's index) allows one more bootstrap.
pub const BOOTSTRAP_RESET_FILE: &str = "acl-bootstrap-reset";
/// Consul's bounds on a token's lifetime (`acl_token_{min,max}_expiration_ttl` defaults).
pub(super) const MIN_TTL: Duration = Duration::from_secs(60);
pub(super) const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

// ---- request decoding ---------------------------------------------------------------------

static LINK: Schema = Schema {
    name: "ACLLink",
    go_type: "structs.ACLTokenPolicyLink",
    fields: &[field("ID", STRING), field("Name", STRING)],
    base: None,
    strict: false,
};

static SERVICE_IDENTITY: Schema = Schema {
    name: "ACLServiceIdentity",
    go_type: "structs.ACLServiceIdentity",
    fields: &[
        field("ServiceName", STRING),
        field("Datacenters", Kind::StrList),
    ],
    base: None,
    strict: false,
};

static NODE_IDENTITY: Schema = Schema {
    name: "ACLNodeIdentity",
    go_type: "structs.ACLNodeIdentity",
    fields: &[field("NodeName", STRING), field("Datacenter", STRING)],
    base: None,
    strict: false,
};

pub(super) static TEMPLATE_VARIABLES: Schema = Schema {
    name: "ACLTemplatedPolicyVariables",
    go_type: "structs.ACLTemplatedPolicyVariables",
    fields: &[field("Name", STRING)],
    base: None,
    strict: false,
};

static TEMPLATED_POLICY: Schema = Schema {
    name: "ACLTemplatedPolicy",
    go_type: "structs.ACLTemplatedPolicy",
    fields: &[
        field("TemplateName", STRING),
        field("TemplateVariables", Kind::Struct(&TEMPLATE_VARIABLES)),
        field("Datacenters", Kind::StrList),
    ],
    base: None,
    strict: false,
};

/// The grant fields tokens and roles share (Go embeds none, but both have them).
static GRANTS: Schema = Schema {
    name: "ACLGrants",
    go_type: "structs.ACLRole",
    fields: &[
        field(
            "Policies",
            Kind::List(&LINK, "[]structs.ACLTokenPolicyLink"),
        ),
        field(
            "ServiceIdentities",
            Kind::List(&SERVICE_IDENTITY, "[]*structs.ACLServiceIdentity"),
        ),
        field(
            "NodeIdentities",
            Kind::List(&NODE_IDENTITY, "[]*structs.ACLNodeIdentity"),
        ),
        field(
            "TemplatedPolicies",
            Kind::List(&TEMPLATED_POLICY, "[]*structs.ACLTemplatedPolicy"),
        ),
    ],
    base: None,
    strict: false,
};

static TOKEN: Schema = Schema {
    name: "ACLToken",
    go_type: "structs.ACLToken",
    fields: &[
        field("AccessorID", STRING),
        field("SecretID", STRING),
        field("Description", STRING),
        field("Roles", Kind::List(&LINK, "[]structs.ACLTokenRoleLink")),
        field("Local", Kind::Bool),
        field("AuthMethod", STRING),
        field("ExpirationTime", STRING),
        field("ExpirationTTL", Kind::Duration),
        field("Rules", STRING),
        field("Type", STRING),
    ],
    base: Some(&GRANTS),
    strict: false,
};

static POLICY: Schema = Schema {
    name: "ACLPolicy",
    go_type: "structs.ACLPolicy",
    fields: &[
        field("ID", STRING),
        field("Name", STRING),
        field("Description", STRING),
        field("Rules", STRING),
        field("Datacenters", Kind::StrList),
    ],
    base: None,
    strict: false,
};

static ROLE: Schema = Schema {
    name: "ACLRole",
    go_type: "structs.ACLRole",
    fields: &[
        field("ID", STRING),
        field("Name", STRING),
        field("Description", STRING),
    ],
    base: Some(&GRANTS),
    strict: false,
};

static BOOTSTRAP: Schema = Schema {
    name: "BootstrapRequest",
    go_type: "api.BootstrapRequest",
    fields: &[field("BootstrapSecret", STRING)],
    base: None,
    strict: false,
};

static CLONE: Schema = Schema {
    name: "ACLToken",
    go_type: "structs.ACLToken",
    fields: &[field("Description", STRING)],
    base: None,
    strict: false,
};

/// The body decoded against `schema`; an empty body is an empty object where `optional`. A
/// body that does not decode is a 400 whose text starts with the endpoint's `failure` (Consul's
/// `Token decoding failed`, `Policy decoding failed`, ...).
pub(super) async fn decode(
    ctx: &Ctx,
    req: &mut Request,
    schema: &Schema,
    optional: bool,
    failure: &str,
) -> Result<Map<String, Value>, ApiError> {
    let body = req.body(ctx).await?;
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    gojson::decode(&body, schema).map_err(|e| ApiError::bad_request(format!("{failure}: {e}")))
}

/// Where a `PUT` to one record's URL names the record: the body `field` which, when set, must
/// be the URL's `key`, else Consul's 400 `mismatch`.
pub(super) struct KeyedBody<'a> {
    pub field: &'a str,
    pub key: &'a str,
    pub mismatch: &'a str,
}

/// The body of a `PUT` to one record's URL, decoded as [`decode`] does and checked to name
/// that record.
pub(super) async fn decode_keyed(
    ctx: &Ctx,
    req: &mut Request,
    schema: &Schema,
    failure: &str,
    keyed: KeyedBody<'_>,
) -> Result<Map<String, Value>, ApiError> {
    let body = decode(ctx, req, schema, false, failure).await?;
    let in_body = text(&body, keyed.field);
    if !in_body.is_empty() && in_body != keyed.key {
        return Err(ApiError::bad_request(keyed.mismatch));
    }
    Ok(body)
}

pub(super) fn text(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn texts(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn objects<'a>(
    map: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    map.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn links(map: &Map<String, Value>, key: &str) -> Vec<Link> {
    objects(map, key)
        .map(|l| Link {
            id: text(l, "ID"),
            name: text(l, "Name"),
        })
        .collect()
}

fn grants(map: &Map<String, Value>) -> Grants {
    Grants {
        policies: links(map, "Policies"),
        service_identities: objects(map, "ServiceIdentities")
            .map(|s| ServiceIdentity {
                service_name: text(s, "ServiceName"),
                datacenters: texts(s.get("Datacenters")),
            })
            .collect(),
        node_identities: objects(map, "NodeIdentities")
            .map(|n| NodeIdentity {
                node_name: text(n, "NodeName"),
                datacenter: text(n, "Datacenter"),
            })
            .collect(),
        templated_policies: objects(map, "TemplatedPolicies")
            .map(|t| TemplatedPolicyLink {
                template_name: text(t, "TemplateName"),
                name: t
                    .get("TemplateVariables")
                    .and_then(Value::as_object)
                    .map(|v| text(v, "Name")),
                datacenters: texts(t.get("Datacenters")),
            })
            .collect(),
    }
}

// ---- authorization ------------------------------------------------------------------------

/// Who a request acts as: resolved once per request by `dispatch`, before the handler runs.
#[derive(Clone)]
pub struct Caller {
    pub identity: Arc<Identity>,
    /// Whether a token was named, by the request or as the agent's `default` token. Consul
    /// tells only such callers that results were filtered (to the anonymous caller, a filtered
    /// list looks like a complete one).
    pub named: bool,
}

impl Caller {
    /// The request's token (see `query::token`), else the agent's `default` token, else the
    /// anonymous token, resolved; the agent recovery token is the agent's current one.
    pub(super) fn resolve(
        ctx: &Ctx,
        params: &super::query::Params,
        headers: &warp::http::HeaderMap,
    ) -> Result<Caller, ApiError> {
        if !ctx.acl.enabled() {
            return Ok(Caller {
                identity: ctx.acl.resolve("", None)?,
                named: false,
            });
        }
        let secret = request_secret(ctx, params, headers);
        let recovery = ctx.ops.tokens.get("agent_recovery");
        Ok(Caller {
            identity: ctx.acl.resolve(&secret, recovery.as_deref())?,
            named: !secret.is_empty(),
        })
    }

    /// The caller of a route that needs no right: its token is not resolved, and a handler
    /// asking anyway is denied everything.
    pub(super) fn unresolved() -> Caller {
        // Shared: open routes (`/v1/status/leader`) are the hot path and allocate nothing.
        static NOBODY: std::sync::LazyLock<Arc<Identity>> = std::sync::LazyLock::new(|| {
            Arc::new(Identity {
                accessor_id: String::new(),
                token: None,
                authorizer: crate::acl::Authorizer::deny_all(),
            })
        });
        Caller {
            identity: NOBODY.clone(),
            named: false,
        }
    }

    /// Whether the caller has `access` on `resource` `segment`.
    pub fn may(&self, resource: Resource, access: AccessLevel, segment: &str) -> bool {
        self.identity
            .authorizer
            .enforce(resource, access, segment)
            .is_allow()
    }

    /// Consul's permission-denied error for this caller.
    pub fn denied(&self, resource: Resource, access: AccessLevel, segment: &str) -> ApiError {
        PermissionDenied::lacks(&self.identity.accessor_id, resource, access, segment).into()
    }

    pub fn reads_node(&self, node: &str) -> bool {
        self.may(Resource::Node, AccessLevel::Read, node)
    }

    pub fn reads_service(&self, service: &str) -> bool {
        self.may(Resource::Service, AccessLevel::Read, service)
    }

    /// A check is readable with read on its node and, for a service check, its service.
    pub fn reads_check(&self, check: &crate::types::catalog::HealthCheck) -> bool {
        self.reads_node(&check.node)
            && (check.service_id.is_empty() || self.reads_service(&check.service_name))
    }

    /// The caller, if it has `access` on `resource` `segment`; else Consul's 403.
    pub fn require(
        &self,
        resource: Resource,
        access: AccessLevel,
        segment: &str,
    ) -> Result<(), ApiError> {
        if self.may(resource, access, segment) {
            Ok(())
        } else {
            Err(self.denied(resource, access, segment))
        }
    }

    /// Keeps the items the caller may read (`readable`); returns whether any were removed,
    /// for `Reply::filtered_by_acls`.
    pub fn filter<T>(&self, items: &mut Vec<T>, readable: impl Fn(&Caller, &T) -> bool) -> bool {
        let before = items.len();
        items.retain(|item| readable(self, item));
        items.len() != before
    }
}

/// The caller's token secret (for what is done to the token itself, as logout): see
/// `Caller::resolve`.
pub(super) fn caller_secret(ctx: &Ctx, req: &Request) -> String {
    request_secret(ctx, &req.params, &req.headers)
}

/// The request's token (see `query::token`), else the agent's `default` token, else empty
/// (the anonymous token).
fn request_secret(
    ctx: &Ctx,
    params: &super::query::Params,
    headers: &warp::http::HeaderMap,
) -> String {
    super::query::token(params, headers)
        .or_else(|| ctx.ops.tokens.get("default"))
        .unwrap_or_default()
}

/// The caller, if ACLs are on and its token has `access` on ACLs.
pub(super) fn authorize(
    ctx: &Ctx,
    req: &Request,
    access: AccessLevel,
) -> Result<Arc<Identity>, ApiError> {
    acls_enabled(ctx)?;
    req.caller.require(Resource::Acl, access, "")?;
    Ok(req.caller.identity.clone())
}

/// Whether the caller may see secrets (`acl:write`).
fn sees_secrets(identity: &Identity) -> bool {
    identity.authorizer.acl_write().is_allow()
}

/// Consul's 404 for a read of an ACL record (`kind`: `token`, `policy`, ...) that does not
/// exist (`ACLResourceNotExistError`).
pub(super) fn not_exist(kind: &str) -> ApiError {
    ApiError::not_found(format!("Requested {kind} does not exist: ACL not found"))
}

pub(super) fn token_json(token: &AclToken, show_secret: bool) -> Value {
    token.to_json(if show_secret {
        &token.secret_id
    } else {
        HIDDEN
    })
}

// ---- bootstrap and replication ------------------------------------------------------------

/// `PUT /v1/acl/bootstrap`: the first management token (`BootstrapSecret` may choose its
/// secret). Once done, only a reset file naming the last bootstrap's index allows another.
pub async fn bootstrap(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(&ctx, &mut req, &BOOTSTRAP, true, "Request decoding failed").await?;
    let secret = match text(&body, "BootstrapSecret") {
        s if s.is_empty() => new_uuid(),
        s if !is_uuid(&s) => {
            return Err(ApiError::internal(
                "Invalid Token: SecretID is not a valid UUID",
            ))
        }
        s => s,
    };
    let reset_file = ctx.store.path().with_file_name(BOOTSTRAP_RESET_FILE);
    let reset_index = read_reset_index(&reset_file);
    let token = management_token(
        new_uuid(),
        secret,
        "Bootstrap Token (Global Management)",
        crate::clock::now_ms(),
    );
    let stored = match ctx
        .store
        .apply(Command::AclBootstrap {
            token: Box::new(token),
            reset_index,
        })
        .await
    {
        Ok(outcome) => outcome.acl_token(),
        Err(StoreError::Rejected(msg)) if msg.starts_with("ACL bootstrap no longer allowed") => {
            return Err(PermissionDenied::Cause(msg).into())
        }
        Err(e) => return Err(e.into()),
    };
    if reset_index.is_some() {
        if let Err(e) = std::fs::remove_file(&reset_file) {
            tracing::warn!(error = %e, file = %reset_file.display(), "cannot remove the ACL bootstrap reset file; remove it by hand");
        }
    }
    tracing::info!("ACL bootstrap completed");
    let token = stored.ok_or_else(|| ApiError::internal("bootstrap stored no token"))?;
    Reply::json(&token_json(&token, true), opts.pretty)
}

/// 401 unless ACLs are enabled, as every ACL endpoint answers.
pub(crate) fn acls_enabled(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.acl.enabled() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ACL support disabled",
        ))
    }
}

/// The reset index the operator wrote, if the file exists and holds a number.
fn read_reset_index(path: &std::path::Path) -> Option<u64> {
    let raw = std::fs::read_to_string(path).ok()?;
    match raw.trim().parse() {
        Ok(index) => Some(index),
        Err(_) => {
            tracing::error!(file = %path.display(), "the ACL bootstrap reset file must hold the reset index, a number; ignoring it");
            None
        }
    }
}

/// `GET /v1/acl/replication`: this server is the primary, which replicates nothing.
pub async fn replication(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let zero_time = "0001-01-01T00:00:00Z";
    Reply::json(
        &json!({
            "Enabled": false,
            "Running": false,
            "SourceDatacenter": ctx.config.primary_datacenter,
            "ReplicationType": "",
            "ReplicatedIndex": 0,
            "ReplicatedRoleIndex": 0,
            "ReplicatedTokenIndex": 0,
            "LastSuccess": zero_time,
            "LastError": zero_time,
            "LastErrorMessage": "",
        }),
        opts.pretty,
    )
}

// ---- tokens -------------------------------------------------------------------------------

const TOKEN_PREFIX: &str = "/v1/acl/token/";
const TOKEN_DECODING: &str = "Token decoding failed";

/// `PUT /v1/acl/token`: creates a token.
pub async fn token_create(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(&ctx, &mut req, &TOKEN, false, TOKEN_DECODING).await?;
    let token = new_token(&body)?;
    let stored = write_token(&ctx, token, TokenWrite::Create).await?;
    Reply::json(&token_json(&stored, true), opts.pretty)
}

/// Everything under `/v1/acl/token/`: `self`, `<accessor>` and `<accessor>/clone`.
pub async fn token_handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let tail = req.tail(TOKEN_PREFIX).to_string();
    if let Some(accessor) = tail.strip_suffix("/clone") {
        if req.method != Method::PUT {
            return Err(ApiError::method_not_allowed(
                req.method.as_str(),
                "OPTIONS,PUT".into(),
            ));
        }
        return token_clone(ctx, req, accessor.to_string()).await;
    }
    match req.method {
        Method::GET => token_read(ctx, req, tail).await,
        Method::PUT => token_update(ctx, req, tail).await,
        _ => token_delete(ctx, req, tail).await,
    }
}

/// A new token from a create request: IDs and times decided here, Consul's checks that need
/// no stored state done here too.
fn new_token(body: &Map<String, Value>) -> Result<AclToken, ApiError> {
    let refuse = |msg: String| Err(ApiError::internal(msg));
    let chosen_id = |field: &str| -> Result<String, ApiError> {
        match text(body, field) {
            id if id.is_empty() => Ok(new_uuid()),
            id => match token_id_problem(&id) {
                Some(problem) => Err(ApiError::internal(format!(
                    "Invalid Token: {field} - {problem}"
                ))),
                None => Ok(id),
            },
        }
    };
    let accessor = chosen_id("AccessorID")?;
    let secret = chosen_id("SecretID")?;
    legacy_field_checks(body)?;
    let create_ms = crate::clock::now_ms();
    let ttl_ns = body
        .get("ExpirationTTL")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut expiration_ms = expiration(body)?;
    if ttl_ns > 0 {
        if expiration_ms.is_some() {
            return refuse("Token Expiration TTL and Expiration Time cannot both be set".into());
        }
        expiration_ms = Some(create_ms + ttl_ns / 1_000_000);
    }
    if let Some(at) = expiration_ms {
        if at < create_ms {
            return refuse("ExpirationTime cannot be before CreateTime".into());
        }
        let expires_in = Duration::from_millis(at - create_ms);
        let fmt = crate::duration::format;
        if expires_in > MAX_TTL {
            return refuse(format!(
                "ExpirationTime cannot be more than {} in the future (was {})",
                fmt(MAX_TTL),
                fmt(expires_in)
            ));
        }
        if expires_in < MIN_TTL {
            return refuse(format!(
                "ExpirationTime cannot be less than {} in the future (was {})",
                fmt(MIN_TTL),
                fmt(expires_in)
            ));
        }
    }
    if !text(body, "AuthMethod").is_empty() {
        return refuse("AuthMethod field is disallowed outside of login".into());
    }
    Ok(AclToken {
        accessor_id: accessor,
        secret_id: secret,
        description: text(body, "Description"),
        grants: grants(body),
        roles: links(body, "Roles"),
        local: body.get("Local").and_then(Value::as_bool).unwrap_or(false),
        expiration_ms,
        create_ms,
        ..Default::default()
    })
}

/// Why a token ID chosen by the caller is refused (Consul's `validateTokenID`), if it is.
fn token_id_problem(id: &str) -> Option<String> {
    if is_reserved(id) {
        Some(format!(
            "UUIDs with the prefix {RESERVED_PREFIX:?} are reserved"
        ))
    } else if !is_uuid(id) {
        Some("not a valid UUID".into())
    } else {
        None
    }
}

/// The checks creates and updates share: fields only the legacy API may set.
fn legacy_field_checks(body: &Map<String, Value>) -> Result<(), ApiError> {
    if !text(body, "Rules").is_empty() {
        return Err(ApiError::internal(
            "Rules cannot be specified for this token",
        ));
    }
    if !text(body, "Type").is_empty() {
        return Err(ApiError::internal(
            "Type cannot be specified for this token",
        ));
    }
    Ok(())
}

fn expiration(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match text(body, "ExpirationTime") {
        t if t.is_empty() => Ok(None),
        t => parse_rfc3339(&t).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Request decode failed: parsing time {t:?}: not an RFC 3339 time"
            ))
        }),
    }
}

async fn write_token(ctx: &Ctx, token: AclToken, mode: TokenWrite) -> Result<AclToken, ApiError> {
    ctx.store
        .apply(Command::AclTokenSet {
            token: Box::new(token),
            mode,
        })
        .await?
        .acl_token()
        .ok_or_else(|| ApiError::internal("Failed to retrieve the token after insertion"))
}

/// `PUT /v1/acl/token/<accessor>`.
async fn token_update(ctx: Ctx, mut req: Request, accessor: String) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let keyed = KeyedBody {
        field: "AccessorID",
        key: &accessor,
        mismatch: "Token Accessor ID in URL and payload do not match",
    };
    let body = decode_keyed(&ctx, &mut req, &TOKEN, TOKEN_DECODING, keyed).await?;
    if !is_uuid(&accessor) {
        return Err(ApiError::internal("AccessorID is not a valid UUID"));
    }
    legacy_field_checks(&body)?;
    if body
        .get("ExpirationTTL")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        > 0
    {
        return Err(ApiError::internal(format!(
            "Cannot change expiration time of {accessor}"
        )));
    }
    let token = AclToken {
        accessor_id: accessor,
        secret_id: text(&body, "SecretID"),
        description: text(&body, "Description"),
        grants: grants(&body),
        roles: links(&body, "Roles"),
        local: body.get("Local").and_then(Value::as_bool).unwrap_or(false),
        expiration_ms: expiration(&body)?,
        auth_method: text(&body, "AuthMethod"),
        ..Default::default()
    };
    let stored = write_token(&ctx, token, TokenWrite::Update).await?;
    Reply::json(&token_json(&stored, true), opts.pretty)
}

/// `GET /v1/acl/token/<accessor>`: secrets hidden from callers without `acl:write`; an
/// unknown or expired token is Consul's 404.
async fn token_read(ctx: Ctx, req: Request, accessor: String) -> Result<Reply, ApiError> {
    let identity = authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let show = sees_secrets(&identity);
    let now = crate::clock::now_ms();
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, token) = store_acl::get_token(r, ws, &accessor)?;
        let token = token.filter(|t| !t.is_expired(now));
        Ok((index, token.map(|t| token_json(&t, show))))
    })
    .await?;
    match got.value {
        Some(token) => Ok(Reply::json(&token, opts.pretty)?.read_meta(got.index)),
        None => Err(not_exist("token")),
    }
}

/// `GET /v1/acl/token/self`: the caller's own token, secret included. As Consul's
/// `ACL.TokenRead` by secret, nothing is resolved first: a missing, unknown or expired secret
/// is a 404, as is the agent recovery token, which is not a stored token.
pub async fn token_self(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let missing = || ApiError::not_found("Supplied token does not exist");
    let secret = request_secret(&ctx, &req.params, &req.headers);
    if secret.is_empty() {
        return Err(missing());
    }
    let recovery = ctx.ops.tokens.get("agent_recovery");
    let identity = match ctx.acl.resolve(&secret, recovery.as_deref()) {
        Err(crate::agent::acl::ResolveError::NotFound) => return Err(missing()),
        resolved => resolved?,
    };
    let token = identity.token.as_ref().ok_or_else(missing)?;
    Reply::json(&token_json(token, true), opts.pretty)
}

/// `PUT /v1/acl/token/<accessor>/clone`: a new token with the same grants, its description
/// from the body or the original's. A missing or expired original is Consul's 403 `ACL not
/// found`.
async fn token_clone(ctx: Ctx, mut req: Request, accessor: String) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(&ctx, &mut req, &CLONE, true, TOKEN_DECODING).await?;
    let now = crate::clock::now_ms();
    let original = store_acl::token(&ctx.store.read()?, &accessor)?
        .filter(|t| !t.is_expired(now))
        .ok_or_else(|| ApiError::forbidden("ACL not found"))?;
    if !original.auth_method.is_empty() {
        return Err(ApiError::internal(
            "Cannot clone a token created from an auth method",
        ));
    }
    if original
        .legacy
        .as_ref()
        .is_some_and(|l| !l.rules.is_empty())
    {
        return Err(ApiError::internal(
            "Cannot clone a legacy ACL with this endpoint",
        ));
    }
    let description = match text(&body, "Description") {
        d if d.is_empty() => original.description.clone(),
        d => d,
    };
    let clone = AclToken {
        accessor_id: new_uuid(),
        secret_id: new_uuid(),
        description,
        create_ms: now,
        create_index: 0,
        modify_index: 0,
        ..original
    };
    let stored = write_token(&ctx, clone, TokenWrite::Create).await?;
    Reply::json(&token_json(&stored, true), opts.pretty)
}

/// `DELETE /v1/acl/token/<accessor>`: `true`, also for a token that doesn't exist.
async fn token_delete(ctx: Ctx, req: Request, accessor: String) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    if !is_uuid(&accessor) {
        return Err(ApiError::internal(
            "Accessor ID is missing or an invalid UUID",
        ));
    }
    let existing = store_acl::token(&ctx.store.read()?, &accessor)?;
    if existing.is_some_and(|t| t.accessor_id == req.caller.identity.accessor_id) {
        return Err(ApiError::internal(
            "Deletion of the request's authorization token is not permitted",
        ));
    }
    ctx.store
        .apply(Command::AclTokenDelete {
            accessor_id: accessor,
        })
        .await?;
    Reply::json(&true, opts.pretty)
}

/// `GET /v1/acl/tokens` (`?policy=<id>`, `?role=<id>`): expired tokens left out.
pub async fn token_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let identity = authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let show = sees_secrets(&identity);
    let param = |name: &str| req.params.get(name).filter(|v| !v.is_empty());
    let filter = TokenFilter {
        policy: param("policy"),
        role: param("role"),
        auth_method: param("authmethod"),
    };
    let now = crate::clock::now_ms();
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, tokens) = store_acl::list_tokens(r, ws, filter)?;
        let stubs: Vec<Value> = tokens
            .iter()
            .filter(|t| !t.is_expired(now))
            .map(|t| t.stub_json(if show { &t.secret_id } else { HIDDEN }))
            .collect();
        Ok((index, stubs))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

// ---- policies -----------------------------------------------------------------------------

type ReadNamed = fn(
    &crate::store::ReadTx,
    &mut crate::store::WatchSet,
    &str,
    bool,
) -> crate::store::Result<(u64, Option<Value>)>;

/// What the policy and role endpoints differ in; `named_*` serve both.
struct NamedEndpoints {
    /// As Consul's messages name the kind (`Policy`, `Role`).
    label: &'static str,
    prefix: &'static str,
    schema: &'static Schema,
    /// The write of a decoded body under `id`; `create` when the ID is new.
    set: fn(&Map<String, Value>, String, bool) -> Command,
    delete: fn(String) -> Command,
    /// The stored record as rendered, from the write's outcome.
    written: fn(crate::store::Outcome) -> Option<Value>,
    /// One record by ID (or by name) as rendered, with the index it was read at.
    read: ReadNamed,
    /// Consul's 400 for a create whose body names an ID.
    id_on_create: &'static str,
}

impl NamedEndpoints {
    fn decoding_failed(&self) -> String {
        format!("{} decoding failed", self.label)
    }
}

static POLICIES: NamedEndpoints = NamedEndpoints {
    label: "Policy",
    prefix: "/v1/acl/policy/",
    schema: &POLICY,
    set: |body, id, create| Command::AclPolicySet {
        policy: Box::new(policy_from(body, id)),
        create,
    },
    delete: |id| Command::AclPolicyDelete { id },
    written: |o| o.acl_policy().map(|p| p.to_json()),
    read: |r, ws, key, by_name| {
        let (index, policy) = store_acl::get_policy(r, ws, key, by_name)?;
        Ok((index, policy.map(|p| p.to_json())))
    },
    id_on_create: "Cannot specify the ID when creating a new policy",
};

static ROLES: NamedEndpoints = NamedEndpoints {
    label: "Role",
    prefix: "/v1/acl/role/",
    schema: &ROLE,
    set: |body, id, create| Command::AclRoleSet {
        role: Box::new(role_from(body, id)),
        create,
    },
    delete: |id| Command::AclRoleDelete { id },
    written: |o| o.acl_role().map(|r| r.to_json()),
    read: |r, ws, key, by_name| {
        let (index, role) = store_acl::get_role(r, ws, key, by_name)?;
        Ok((index, role.map(|r| r.to_json())))
    },
    id_on_create: "Role ID in URL and payload do not match",
};

/// `PUT /v1/acl/policy` or `/v1/acl/role`: creates one; the body may not name an ID.
async fn named_create(
    kind: &NamedEndpoints,
    ctx: Ctx,
    mut req: Request,
) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(&ctx, &mut req, kind.schema, false, &kind.decoding_failed()).await?;
    if !text(&body, "ID").is_empty() {
        return Err(ApiError::bad_request(kind.id_on_create));
    }
    named_write(kind, &ctx, &body, new_uuid(), true, opts.pretty).await
}

async fn named_write(
    kind: &NamedEndpoints,
    ctx: &Ctx,
    body: &Map<String, Value>,
    id: String,
    create: bool,
    pretty: bool,
) -> Result<Reply, ApiError> {
    let outcome = ctx.store.apply((kind.set)(body, id, create)).await?;
    let stored = (kind.written)(outcome).ok_or_else(|| {
        ApiError::internal(format!(
            "Failed to retrieve the {} after insertion",
            kind.label.to_lowercase()
        ))
    })?;
    Reply::json(&stored, pretty)
}

/// Everything under `/v1/acl/policy/` or `/v1/acl/role/`: `name/<name>` (read) and `<id>`.
async fn named_handle(
    kind: &NamedEndpoints,
    ctx: Ctx,
    mut req: Request,
) -> Result<Reply, ApiError> {
    let tail = req.tail(kind.prefix).to_string();
    if let Some(name) = tail.strip_prefix("name/") {
        return named_read(kind, ctx, req, name.to_string(), true).await;
    }
    match req.method {
        Method::GET => named_read(kind, ctx, req, tail, false).await,
        Method::PUT => {
            authorize(&ctx, &req, AccessLevel::Write)?;
            let opts = ctx.query_options(&req)?;
            let mismatch = format!("{} ID in URL and payload do not match", kind.label);
            let keyed = KeyedBody {
                field: "ID",
                key: &tail,
                mismatch: &mismatch,
            };
            let failure = kind.decoding_failed();
            let body = decode_keyed(&ctx, &mut req, kind.schema, &failure, keyed).await?;
            named_write(kind, &ctx, &body, tail, false, opts.pretty).await
        }
        _ => {
            authorize(&ctx, &req, AccessLevel::Write)?;
            let opts = ctx.query_options(&req)?;
            ctx.store.apply((kind.delete)(tail)).await?;
            Reply::json(&true, opts.pretty)
        }
    }
}

/// `GET /v1/acl/policy/<id>`, `/v1/acl/policy/name/<name>` and the same for roles.
async fn named_read(
    kind: &NamedEndpoints,
    ctx: Ctx,
    req: Request,
    key: String,
    by_name: bool,
) -> Result<Reply, ApiError> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed(
            req.method.as_str(),
            "OPTIONS,GET".into(),
        ));
    }
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, |r, ws| (kind.read)(r, ws, &key, by_name)).await?;
    match got.value {
        Some(record) => Ok(Reply::json(&record, opts.pretty)?.read_meta(got.index)),
        None => Err(not_exist(&kind.label.to_lowercase())),
    }
}

/// `PUT /v1/acl/policy`: creates a policy.
pub async fn policy_create(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    named_create(&POLICIES, ctx, req).await
}

/// Everything under `/v1/acl/policy/`.
pub async fn policy_handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    named_handle(&POLICIES, ctx, req).await
}

fn policy_from(body: &Map<String, Value>, id: String) -> AclPolicy {
    AclPolicy {
        id,
        name: text(body, "Name"),
        description: text(body, "Description"),
        rules: text(body, "Rules"),
        datacenters: texts(body.get("Datacenters")),
        ..Default::default()
    }
}

/// `GET /v1/acl/policies`: stubs, without rules.
pub async fn policy_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, policies) = store_acl::list_policies(r, ws)?;
        Ok((
            index,
            policies
                .iter()
                .map(AclPolicy::stub_json)
                .collect::<Vec<_>>(),
        ))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

// ---- roles --------------------------------------------------------------------------------

/// `PUT /v1/acl/role`: creates a role.
pub async fn role_create(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    named_create(&ROLES, ctx, req).await
}

/// Everything under `/v1/acl/role/`.
pub async fn role_handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    named_handle(&ROLES, ctx, req).await
}

fn role_from(body: &Map<String, Value>, id: String) -> AclRole {
    AclRole {
        id,
        name: text(body, "Name"),
        description: text(body, "Description"),
        grants: grants(body),
        ..Default::default()
    }
}

/// `GET /v1/acl/roles` (`?policy=<id>`).
pub async fn role_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let policy = req.params.get("policy").filter(|p| !p.is_empty());
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, roles) = store_acl::list_roles(r, ws, policy)?;
        Ok((
            index,
            roles.iter().map(AclRole::to_json).collect::<Vec<_>>(),
        ))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

// ---- templated policies -------------------------------------------------------------------

fn template_json(t: &TemplatedPolicy) -> Value {
    json!({
        "TemplateName": t.name,
        "Schema": t.schema,
        "Template": t.template(),
        "Description": t.description,
    })
}

/// `GET /v1/acl/templated-policies`: every builtin template, by name.
pub async fn templated_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let all: Map<String, Value> = TEMPLATED_POLICIES
        .iter()
        .map(|t| (t.name.to_string(), template_json(t)))
        .collect();
    Reply::json(&all, opts.pretty)
}

/// `GET /v1/acl/templated-policy/name/<name>` and `POST /v1/acl/templated-policy/preview/<name>`
/// (the rules the template renders to with the body's variables).
pub async fn templated_handle(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let tail = req.tail("/v1/acl/templated-policy/").to_string();
    let not_found = |e: crate::acl::templated::TemplateError| ApiError::not_found(e.to_string());
    if let Some(name) = tail.strip_prefix("name/") {
        let template = TemplatedPolicy::by_name(name).map_err(not_found)?;
        return Reply::json(&template_json(template), opts.pretty);
    }
    let Some(name) = tail.strip_prefix("preview/") else {
        return Err(ApiError::not_found(
            "Invalid URL path: not a recognized HTTP API endpoint\n",
        ));
    };
    let template = TemplatedPolicy::by_name(name).map_err(not_found)?;
    let body = decode(
        &ctx,
        &mut req,
        &TEMPLATE_VARIABLES,
        true,
        "Failed to decode request body",
    )
    .await?;
    let variables = body.get("Name").map(|_| TemplateVariables {
        name: text(&body, "Name"),
    });
    let rules = template
        .render(variables.as_ref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let preview = AclPolicy {
        name: format!("synthetic-policy-{}", template.id),
        description: format!(
            "synthetic policy generated from templated policy: {}",
            template.name
        ),
        rules,
        ..Default::default()
    };
    Reply::json(&preview.to_json(), opts.pretty)
}

// ---- the legacy API (pre-1.4), on the same tokens ------------------------------------------

static LEGACY: Schema = Schema {
    name: "ACL",
    go_type: "structs.ACL",
    fields: &[
        field("ID", STRING),
        field("Name", STRING),
        field("Type", STRING),
        field("Rules", STRING),
    ],
    base: None,
    strict: false,
};

/// A legacy token from `{ID, Name, Type, Rules}`: the ID is the secret (any string, as the
/// legacy API allowed), a management token links the builtin policy, a client token keeps
/// its rules.
fn legacy_token(
    body: &Map<String, Value>,
    accessor: String,
    secret: String,
) -> Result<AclToken, ApiError> {
    let kind = match text(body, "Type") {
        t if t.is_empty() => "client".to_string(),
        t if t == "client" || t == "management" => t,
        t => return Err(ApiError::bad_request(format!("Invalid ACL Type: {t:?}"))),
    };
    let management = kind == "management";
    Ok(AclToken {
        accessor_id: accessor,
        secret_id: secret,
        description: text(body, "Name"),
        grants: Grants {
            policies: management
                .then(|| Link {
                    id: crate::types::acl::GLOBAL_MANAGEMENT_ID.into(),
                    name: String::new(),
                })
                .into_iter()
                .collect(),
            ..Default::default()
        },
        legacy: Some(crate::types::acl::Legacy {
            kind,
            rules: if management {
                String::new()
            } else {
                text(body, "Rules")
            },
        }),
        create_ms: crate::clock::now_ms(),
        ..Default::default()
    })
}

/// The live token whose secret is `id`, if any.
fn token_by_secret(ctx: &Ctx, id: &str) -> Result<Option<AclToken>, ApiError> {
    let now = crate::clock::now_ms();
    Ok(store_acl::token_by_secret(&ctx.store.read()?, id)?.filter(|t| !t.is_expired(now)))
}

/// `PUT /v1/acl/create` and `PUT /v1/acl/update`: `{"ID": <secret>}`. An update of an
/// unknown ID creates it, as the legacy API's upsert did.
pub async fn legacy_write(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(&ctx, &mut req, &LEGACY, false, "Request decode failed").await?;
    let id = text(&body, "ID");
    let update = req.path.ends_with("/update");
    if update && id.is_empty() {
        return Err(ApiError::bad_request("ACL ID must be set"));
    }
    let existing = if id.is_empty() {
        None
    } else {
        token_by_secret(&ctx, &id)?
    };
    let (token, mode) = match existing {
        Some(t) => (legacy_token(&body, t.accessor_id, id)?, TokenWrite::Update),
        None => {
            let secret = if id.is_empty() { new_uuid() } else { id };
            (legacy_token(&body, new_uuid(), secret)?, TokenWrite::Create)
        }
    };
    let stored = write_token(&ctx, token, mode).await?;
    Reply::json(&json!({"ID": stored.secret_id}), opts.pretty)
}

/// `PUT /v1/acl/destroy/<id>`: `true`, also for an unknown ID.
pub async fn legacy_destroy(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    if let Some(t) = token_by_secret(&ctx, req.tail("/v1/acl/destroy/"))? {
        ctx.store
            .apply(Command::AclTokenDelete {
                accessor_id: t.accessor_id,
            })
            .await?;
    }
    Reply::json(&true, opts.pretty)
}

/// `GET /v1/acl/info/<id>`: a list of the one token, empty when unknown.
pub async fn legacy_info(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let found = token_by_secret(&ctx, req.tail("/v1/acl/info/"))?;
    let list: Vec<Value> = found.iter().map(AclToken::legacy_json).collect();
    Reply::json(&list, opts.pretty)
}

/// `PUT /v1/acl/clone/<id>`: `{"ID": <new secret>}`.
pub async fn legacy_clone(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let original = token_by_secret(&ctx, req.tail("/v1/acl/clone/"))?
        .ok_or_else(|| ApiError::internal("ACL not found"))?;
    let clone = AclToken {
        accessor_id: new_uuid(),
        secret_id: new_uuid(),
        create_ms: crate::clock::now_ms(),
        ..original
    };
    let stored = write_token(&ctx, clone, TokenWrite::Create).await?;
    Reply::json(&json!({"ID": stored.secret_id}), opts.pretty)
}

/// `GET /v1/acl/list`: every live token in the legacy shape.
pub async fn legacy_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let now = crate::clock::now_ms();
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, tokens) = store_acl::list_tokens(r, ws, TokenFilter::default())?;
        let list: Vec<Value> = tokens
            .iter()
            .filter(|t| !t.is_expired(now))
            .map(AclToken::legacy_json)
            .collect();
        Ok((index, list))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}
