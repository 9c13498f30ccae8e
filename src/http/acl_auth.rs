//! `/v1/acl/auth-method*`, `/v1/acl/binding-rule*`, `/v1/acl/login` and `/v1/acl/logout`
//! (Consul's `acl_endpoint.go`, HTTP and server halves). Management endpoints need `acl:read`
//! or `acl:write`; login needs no token (the bearer token is the credential) and logout acts
//! on the caller's own token. What the server refuses is Consul's 500 with its text, a
//! missing record Consul's 404.

use super::acl::{
    acls_enabled, authorize, caller_secret, decode, decode_keyed, not_exist, text, token_json,
    KeyedBody, MAX_TTL, MIN_TTL, TEMPLATE_VARIABLES,
};
use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::AccessLevel;
use crate::agent::acl_login::{self, LoginError, LoginRequest};
use crate::gojson::{field, Kind, Schema, STRING};
use crate::store::acl_auth;
use crate::store::{Command, ReadTx, WatchSet};
use crate::types::acl::{new_uuid, AclAuthMethod, AclBindingRule};
use serde_json::{Map, Value};
use warp::http::{Method, StatusCode};

static AUTH_METHOD: Schema = Schema {
    name: "ACLAuthMethod",
    go_type: "structs.ACLAuthMethod",
    fields: &[
        field("Name", STRING),
        field("Type", STRING),
        field("DisplayName", STRING),
        field("Description", STRING),
        field("MaxTokenTTL", Kind::Duration),
        field("TokenLocality", STRING),
        field("Config", Kind::Any),
    ],
    base: None,
    strict: false,
};

static BINDING_RULE: Schema = Schema {
    name: "ACLBindingRule",
    go_type: "structs.ACLBindingRule",
    fields: &[
        field("ID", STRING),
        field("Description", STRING),
        field("AuthMethod", STRING),
        field("Selector", STRING),
        field("BindType", STRING),
        field("BindName", STRING),
        field("BindVars", Kind::Struct(&TEMPLATE_VARIABLES)),
    ],
    base: None,
    strict: false,
};

static LOGIN: Schema = Schema {
    name: "ACLLoginParams",
    go_type: "structs.ACLLoginParams",
    fields: &[
        field("AuthMethod", STRING),
        field("BearerToken", STRING),
        field("Meta", Kind::StrMap),
    ],
    base: None,
    strict: false,
};

/// `GET` of one method or rule (`kind` in messages; `read` renders it): a missing one is
/// Consul's 404.
async fn read_one<F>(ctx: &Ctx, req: Request, kind: &str, read: F) -> Result<Reply, ApiError>
where
    F: Fn(&ReadTx, &mut WatchSet) -> crate::store::Result<(u64, Option<Value>)> + Send + Sync,
{
    authorize(ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, read).await?;
    match got.value {
        Some(record) => Ok(Reply::json(&record, opts.pretty)?.read_meta(got.index)),
        None => Err(not_exist(kind)),
    }
}

/// `DELETE` of one method or rule: `true`, also when it didn't exist.
async fn delete_one(ctx: &Ctx, req: Request, delete: Command) -> Result<Reply, ApiError> {
    authorize(ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    ctx.store.apply(delete).await?;
    Reply::json(&true, opts.pretty)
}

// ---- auth methods -----------------------------------------------------------------------

const AUTH_METHOD_PREFIX: &str = "/v1/acl/auth-method/";

fn auth_method_from(body: &Map<String, Value>, name: String) -> AclAuthMethod {
    let config = body
        .get("Config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    AclAuthMethod {
        name,
        method_type: text(body, "Type"),
        display_name: text(body, "DisplayName"),
        description: text(body, "Description"),
        max_token_ttl_ns: body.get("MaxTokenTTL").and_then(Value::as_u64).unwrap_or(0),
        token_locality: text(body, "TokenLocality"),
        config: Value::Object(config).to_string(),
        ..AclAuthMethod::default()
    }
}

/// Checks and stores a method (its type kept when the body leaves it out).
async fn write_auth_method(
    ctx: &Ctx,
    method: AclAuthMethod,
    pretty: bool,
) -> Result<Reply, ApiError> {
    let method = acl_login::check_method(&ctx.store, method, (MIN_TTL, MAX_TTL))
        .await
        .map_err(ApiError::internal)?;
    let stored = ctx
        .store
        .apply(Command::AclAuthMethodSet(Box::new(method)))
        .await?
        .acl_auth_method()
        .ok_or_else(|| ApiError::internal("Failed to retrieve the auth method after insertion"))?;
    Reply::json(&stored.to_json(), pretty)
}

/// `PUT /v1/acl/auth-method`.
pub async fn auth_method_create(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(
        &ctx,
        &mut req,
        &AUTH_METHOD,
        false,
        "AuthMethod decoding failed",
    )
    .await?;
    let method = auth_method_from(&body, text(&body, "Name"));
    write_auth_method(&ctx, method, opts.pretty).await
}

/// `GET`, `PUT` and `DELETE /v1/acl/auth-method/<name>`.
pub async fn auth_method_handle(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let name = req.tail(AUTH_METHOD_PREFIX).to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("Missing auth method name"));
    }
    match req.method {
        Method::GET => {
            read_one(&ctx, req, "auth method", |r, ws| {
                let (index, method) = acl_auth::get_auth_method(r, ws, &name)?;
                Ok((index, method.map(|m| m.to_json())))
            })
            .await
        }
        Method::PUT => {
            authorize(&ctx, &req, AccessLevel::Write)?;
            let opts = ctx.query_options(&req)?;
            let keyed = KeyedBody {
                field: "Name",
                key: &name,
                mismatch: "AuthMethod Name in URL and payload do not match",
            };
            let failure = "AuthMethod decoding failed";
            let body = decode_keyed(&ctx, &mut req, &AUTH_METHOD, failure, keyed).await?;
            write_auth_method(&ctx, auth_method_from(&body, name), opts.pretty).await
        }
        _ => delete_one(&ctx, req, Command::AclAuthMethodDelete { name }).await,
    }
}

/// `GET /v1/acl/auth-methods`: stubs, without their configuration.
pub async fn auth_method_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, methods) = acl_auth::list_auth_methods(r, ws)?;
        let stubs: Vec<Value> = methods.iter().map(AclAuthMethod::stub_json).collect();
        Ok((index, stubs))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

// ---- binding rules ----------------------------------------------------------------------

const BINDING_RULE_PREFIX: &str = "/v1/acl/binding-rule/";

fn binding_rule_from(body: &Map<String, Value>, id: String) -> AclBindingRule {
    AclBindingRule {
        id,
        description: text(body, "Description"),
        auth_method: text(body, "AuthMethod"),
        selector: text(body, "Selector"),
        bind_type: text(body, "BindType"),
        bind_name: text(body, "BindName"),
        bind_vars_name: body
            .get("BindVars")
            .and_then(Value::as_object)
            .map(|v| text(v, "Name")),
        ..AclBindingRule::default()
    }
}

async fn write_binding_rule(
    ctx: &Ctx,
    rule: AclBindingRule,
    create: bool,
    pretty: bool,
) -> Result<Reply, ApiError> {
    acl_login::check_binding_rule(&ctx.store, &rule, create).map_err(ApiError::internal)?;
    let stored = ctx
        .store
        .apply(Command::AclBindingRuleSet {
            rule: Box::new(rule),
            create,
        })
        .await?
        .acl_binding_rule()
        .ok_or_else(|| ApiError::internal("Failed to retrieve the binding rule after insertion"))?;
    Reply::json(&stored.to_json(), pretty)
}

/// `PUT /v1/acl/binding-rule`: creates a rule; the body may not name an ID.
pub async fn binding_rule_create(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Write)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(
        &ctx,
        &mut req,
        &BINDING_RULE,
        false,
        "BindingRule decoding failed",
    )
    .await?;
    if !text(&body, "ID").is_empty() {
        return Err(ApiError::bad_request(
            "BindingRule ID in URL and payload do not match",
        ));
    }
    let rule = binding_rule_from(&body, new_uuid());
    write_binding_rule(&ctx, rule, true, opts.pretty).await
}

/// `GET`, `PUT` and `DELETE /v1/acl/binding-rule/<id>`.
pub async fn binding_rule_handle(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let id = req.tail(BINDING_RULE_PREFIX).to_string();
    if id.is_empty() {
        return Err(ApiError::bad_request("Missing binding rule ID"));
    }
    match req.method {
        Method::GET => {
            read_one(&ctx, req, "binding rule", |r, ws| {
                let (index, rule) = acl_auth::get_binding_rule(r, ws, &id)?;
                Ok((index, rule.map(|r| r.to_json())))
            })
            .await
        }
        Method::PUT => {
            authorize(&ctx, &req, AccessLevel::Write)?;
            let opts = ctx.query_options(&req)?;
            let keyed = KeyedBody {
                field: "ID",
                key: &id,
                mismatch: "BindingRule ID in URL and payload do not match",
            };
            let failure = "BindingRule decoding failed";
            let body = decode_keyed(&ctx, &mut req, &BINDING_RULE, failure, keyed).await?;
            write_binding_rule(&ctx, binding_rule_from(&body, id), false, opts.pretty).await
        }
        _ => delete_one(&ctx, req, Command::AclBindingRuleDelete { id }).await,
    }
}

/// `GET /v1/acl/binding-rules[?authmethod=<name>]`.
pub async fn binding_rule_list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    authorize(&ctx, &req, AccessLevel::Read)?;
    let opts = ctx.query_options(&req)?;
    let method = req.params.get("authmethod").filter(|m| !m.is_empty());
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, rules) = acl_auth::list_binding_rules(r, ws, method)?;
        let list: Vec<Value> = rules.iter().map(AclBindingRule::to_json).collect();
        Ok((index, list))
    })
    .await?;
    Ok(Reply::json(&got.value, opts.pretty)?.read_meta(got.index))
}

// ---- login and logout -------------------------------------------------------------------

impl From<LoginError> for ApiError {
    fn from(err: LoginError) -> Self {
        match err {
            LoginError::NotFound(_) | LoginError::Denied | LoginError::NotFromLogin => {
                ApiError::forbidden(err.to_string())
            }
            LoginError::Failed(msg) => ApiError::internal(msg),
            LoginError::Store(e) => e.into(),
        }
    }
}

/// `POST /v1/acl/login`: `{AuthMethod, BearerToken, Meta}`; answers the new token.
pub async fn login(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let body = decode(
        &ctx,
        &mut req,
        &LOGIN,
        false,
        "Failed to decode request body",
    )
    .await?;
    let meta = body
        .get("Meta")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let request = LoginRequest {
        auth_method: text(&body, "AuthMethod"),
        bearer_token: text(&body, "BearerToken"),
        meta,
    };
    let token = acl_login::login(&ctx.store, &ctx.config.datacenter, request).await?;
    Reply::json(&token_json(&token, true), opts.pretty)
}

/// `POST /v1/acl/logout`: deletes the caller's token, which a login must have created; a
/// request without a token is Consul's 401.
pub async fn logout(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    acls_enabled(&ctx)?;
    let opts = ctx.query_options(&req)?;
    let secret = caller_secret(&ctx, &req);
    if secret.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Supplied token does not exist",
        ));
    }
    acl_login::logout(&ctx.store, &secret).await?;
    Reply::json(&true, opts.pretty)
}
