//! `legate acl role|auth-method|binding-rule create|read|update|delete|list`, `legate login`
//! and `legate logout`, as the consul commands of those names: the same flags,
//! `-format=pretty|json`, and the same output and error texts.

use super::acl::{
    call, check_format, link_list, list_all, named_id, node_identity, pretty_grants, required, s,
    service_identity, FormatArgs, Keyed, PolicyReadArgs as RoleReadArgs,
};
use super::client::{exit_code, indented_json, parse_key_value, read_data, segment, HttpFlags};
use reqwest::Method;
use serde_json::{json, Map, Value};

// ---- roles ------------------------------------------------------------------------------

#[derive(Debug, clap::Subcommand)]
pub enum RoleCommand {
    Create(RoleArgs),
    Read(RoleReadArgs),
    Update(RoleArgs),
    Delete(RoleReadArgs),
    List(FormatArgs),
}

#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// The role to update.
    #[arg(long, default_value = "")]
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long = "policy-id")]
    policy_ids: Vec<String>,
    #[arg(long = "policy-name")]
    policy_names: Vec<String>,
    /// `<service>[:<dc1>,<dc2>]` (repeatable).
    #[arg(long = "service-identity")]
    service_identities: Vec<String>,
    /// `<node>:<datacenter>` (repeatable).
    #[arg(long = "node-identity")]
    node_identities: Vec<String>,
    /// Replace the role's grants instead of adding to them (update only).
    #[arg(long = "no-merge")]
    no_merge: bool,
}

/// The consul CLI's pretty role output.
fn pretty_role(r: &Value) -> String {
    format!(
        "ID:           {}\nName:         {}\nDescription:  {}\n{}",
        s(r, "ID"),
        s(r, "Name"),
        s(r, "Description"),
        pretty_grants(r)
    )
}

const ROLE: Keyed = Keyed {
    path: "role",
    label: "role",
    deleted: "Role",
    pretty: pretty_role,
};

pub async fn role(command: RoleCommand) -> Result<(), String> {
    match command {
        RoleCommand::Create(a) => role_write(a, true).await,
        RoleCommand::Update(a) => role_write(a, false).await,
        RoleCommand::Read(a) => {
            let id = named_id(&a.out.http, "role", &a.id, &a.name).await?;
            ROLE.read(&a.out, &id).await
        }
        RoleCommand::Delete(a) => {
            let id = named_id(&a.out.http, "role", &a.id, &a.name).await?;
            ROLE.delete(&a.out.http, &id).await
        }
        RoleCommand::List(a) => {
            let context = "Failed to retrieve the role list";
            list_all(&a, "/v1/acl/roles", context, pretty_role).await
        }
    }
}

/// Appends `new` to `body[key]` (or replaces it with `replace`).
fn extend_list(body: &mut Map<String, Value>, key: &str, new: Vec<Value>, replace: bool) {
    let mut list = if replace {
        Vec::new()
    } else {
        body.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    list.extend(new);
    body.insert(key.into(), Value::Array(list));
}

/// `acl role create` and `acl role update`: an update starts from the stored role and adds
/// the flags' grants (or, with `-no-merge`, replaces them).
async fn role_write(a: RoleArgs, create: bool) -> Result<(), String> {
    check_format(&a.out.format)?;
    let http = &a.out.http;
    let mut body = ROLE.start(http, create, &a.id, a.name.as_deref()).await?;
    if let Some(name) = a.name {
        body.insert("Name".into(), json!(name));
    }
    if let Some(d) = a.description {
        body.insert("Description".into(), json!(d));
    }
    let replace = create || a.no_merge;
    let policies = link_list(&a.policy_ids, &a.policy_names);
    extend_list(&mut body, "Policies", policies, replace);
    let services = a.service_identities.iter().map(|i| service_identity(i));
    extend_list(&mut body, "ServiceIdentities", services.collect(), replace);
    let nodes = a
        .node_identities
        .iter()
        .map(|i| node_identity(i))
        .collect::<Result<Vec<_>, _>>()?;
    extend_list(&mut body, "NodeIdentities", nodes, replace);
    let key = (!create).then_some(a.id.as_str());
    ROLE.write(&a.out, key, body).await
}

// ---- auth methods -----------------------------------------------------------------------

#[derive(Debug, clap::Subcommand)]
pub enum AuthMethodCommand {
    Create(AuthMethodArgs),
    Read(NameArgs),
    Update(AuthMethodArgs),
    Delete(NameArgs),
    List(FormatArgs),
}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    #[command(flatten)]
    out: FormatArgs,
    #[arg(long, default_value = "")]
    name: String,
}

#[derive(Debug, clap::Args)]
pub struct AuthMethodArgs {
    #[command(flatten)]
    out: FormatArgs,
    #[arg(long = "type", default_value = "")]
    method_type: String,
    #[arg(long, default_value = "")]
    name: String,
    #[arg(long = "display-name")]
    display_name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// The longest lifetime of the tokens its logins create (e.g. `10m`).
    #[arg(long = "max-token-ttl", value_parser = crate::duration::parse)]
    max_token_ttl: Option<std::time::Duration>,
    /// `local` or `global`.
    #[arg(long = "token-locality")]
    token_locality: Option<String>,
    /// The type's configuration as JSON: literal, `@file` or `-` for stdin.
    #[arg(long)]
    config: Option<String>,
    #[arg(long = "kubernetes-host")]
    kubernetes_host: Option<String>,
    /// PEM CA certificate: literal, `@file` or `-`.
    #[arg(long = "kubernetes-ca-cert")]
    kubernetes_ca_cert: Option<String>,
    #[arg(long = "kubernetes-service-account-jwt")]
    kubernetes_service_account_jwt: Option<String>,
    /// Replace the stored method instead of merging the flags into it (update only).
    #[arg(long = "no-merge")]
    no_merge: bool,
}

/// The consul CLI's pretty auth method output.
fn pretty_auth_method(m: &Value) -> String {
    let mut out = format!(
        "Name:          {}\nType:          {}\n",
        s(m, "Name"),
        s(m, "Type")
    );
    if let Some(d) = m["DisplayName"].as_str() {
        out.push_str(&format!("DisplayName:   {d}\n"));
    }
    out.push_str(&format!("Description:   {}\n", s(m, "Description")));
    if let Some(ttl) = m["MaxTokenTTL"].as_str() {
        out.push_str(&format!("MaxTokenTTL:   {ttl}\n"));
    }
    if let Some(locality) = m["TokenLocality"].as_str() {
        out.push_str(&format!("TokenLocality: {locality}\n"));
    }
    if let Some(config) = m.get("Config") {
        let text = indented_json(config, b"  ").unwrap_or_default();
        out.push_str(&format!("Config:\n{text}\n"));
    }
    out
}

const AUTH_METHOD: Keyed = Keyed {
    path: "auth-method",
    label: "auth method",
    deleted: "Auth-method",
    pretty: pretty_auth_method,
};

pub async fn auth_method(command: AuthMethodCommand) -> Result<(), String> {
    match command {
        AuthMethodCommand::Create(a) => auth_method_write(a, true).await,
        AuthMethodCommand::Update(a) => auth_method_write(a, false).await,
        AuthMethodCommand::Read(a) => AUTH_METHOD.read(&a.out, required(&a.name, "name")?).await,
        AuthMethodCommand::Delete(a) => {
            AUTH_METHOD
                .delete(&a.out.http, required(&a.name, "name")?)
                .await
        }
        AuthMethodCommand::List(a) => {
            let context = "Failed to retrieve the auth method list";
            list_all(&a, "/v1/acl/auth-methods", context, pretty_auth_method).await
        }
    }
}

/// `acl auth-method create` and `update`: an update merges the flags into the stored method
/// unless `-no-merge`.
async fn auth_method_write(a: AuthMethodArgs, create: bool) -> Result<(), String> {
    check_format(&a.out.format)?;
    let http = &a.out.http;
    if a.name.is_empty() {
        return Err(if create {
            "Missing required '-name' flag".into()
        } else {
            "Cannot update an auth method without specifying the -name parameter".into()
        });
    }
    if create && a.method_type.is_empty() {
        return Err("Missing required '-type' flag".into());
    }
    let mut body: Map<String, Value> = if create || a.no_merge {
        Map::new()
    } else {
        AUTH_METHOD.current(http, &a.name).await?
    };
    body.insert("Name".into(), json!(a.name));
    if !a.method_type.is_empty() {
        body.insert("Type".into(), json!(a.method_type));
    }
    let texts = [
        ("DisplayName", a.display_name),
        ("Description", a.description),
        ("TokenLocality", a.token_locality),
    ];
    for (key, value) in texts {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(ttl) = a.max_token_ttl {
        body.insert("MaxTokenTTL".into(), json!(crate::duration::format(ttl)));
    }
    if let Some(config) = a.config {
        let raw = read_data(&config)?;
        let parsed: Value = serde_json::from_slice(&raw)
            .map_err(|e| format!("Error parsing JSON for auth method config: {e}"))?;
        body.insert("Config".into(), parsed);
    }
    let kubernetes = [
        ("Host", a.kubernetes_host),
        ("CACert", a.kubernetes_ca_cert),
        ("ServiceAccountJWT", a.kubernetes_service_account_jwt),
    ];
    for (key, value) in kubernetes {
        if let Some(v) = value {
            let v = String::from_utf8_lossy(&read_data(&v)?).into_owned();
            let config = body.entry("Config").or_insert_with(|| json!({}));
            config[key] = json!(v);
        }
    }
    let key = (!create).then_some(a.name.as_str());
    AUTH_METHOD.write(&a.out, key, body).await
}

// ---- binding rules ----------------------------------------------------------------------

#[derive(Debug, clap::Subcommand)]
pub enum BindingRuleCommand {
    Create(BindingRuleArgs),
    Read(BindingRuleIdArgs),
    Update(BindingRuleArgs),
    Delete(BindingRuleIdArgs),
    List(BindingRuleListArgs),
}

#[derive(Debug, clap::Args)]
pub struct BindingRuleIdArgs {
    #[command(flatten)]
    out: FormatArgs,
    #[arg(long, default_value = "")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct BindingRuleListArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// Only the rules of this auth method.
    #[arg(long, default_value = "")]
    method: String,
}

#[derive(Debug, clap::Args)]
pub struct BindingRuleArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// The rule to update.
    #[arg(long, default_value = "")]
    id: String,
    #[arg(long, default_value = "")]
    method: String,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    selector: Option<String>,
    /// `service`, `node`, `role`, `policy` or `templated-policy`.
    #[arg(long = "bind-type")]
    bind_type: Option<String>,
    #[arg(long = "bind-name")]
    bind_name: Option<String>,
    /// A templated policy's variable, `name=<value>`.
    #[arg(long = "bind-vars")]
    bind_vars: Vec<String>,
    /// Replace the stored rule instead of merging the flags into it (update only).
    #[arg(long = "no-merge")]
    no_merge: bool,
}

/// The consul CLI's pretty binding rule output.
fn pretty_binding_rule(r: &Value) -> String {
    let mut out = format!(
        "ID:           {}\nAuthMethod:   {}\nDescription:  {}\nBindType:     {}\nBindName:     {}\n",
        s(r, "ID"),
        s(r, "AuthMethod"),
        s(r, "Description"),
        s(r, "BindType"),
        s(r, "BindName"),
    );
    if let Some(vars) = r["BindVars"].as_object() {
        out.push_str(&format!(
            "BindVars:     name={}\n",
            s(&Value::Object(vars.clone()), "Name")
        ));
    }
    out.push_str(&format!("Selector:     {}\n", s(r, "Selector")));
    out
}

const BINDING_RULE: Keyed = Keyed {
    path: "binding-rule",
    label: "binding rule",
    deleted: "Binding rule",
    pretty: pretty_binding_rule,
};

pub async fn binding_rule(command: BindingRuleCommand) -> Result<(), String> {
    match command {
        BindingRuleCommand::Create(a) => binding_rule_write(a, true).await,
        BindingRuleCommand::Update(a) => binding_rule_write(a, false).await,
        BindingRuleCommand::Read(a) => BINDING_RULE.read(&a.out, required(&a.id, "id")?).await,
        BindingRuleCommand::Delete(a) => {
            BINDING_RULE
                .delete(&a.out.http, required(&a.id, "id")?)
                .await
        }
        BindingRuleCommand::List(a) => {
            let mut path = "/v1/acl/binding-rules".to_string();
            if !a.method.is_empty() {
                path = format!("{path}?authmethod={}", segment(&a.method));
            }
            let context = "Failed to retrieve the binding rule list";
            list_all(&a.out, &path, context, pretty_binding_rule).await
        }
    }
}

async fn binding_rule_write(a: BindingRuleArgs, create: bool) -> Result<(), String> {
    check_format(&a.out.format)?;
    let http = &a.out.http;
    if create && a.method.is_empty() {
        return Err("Missing required '-method' flag".into());
    }
    if create && a.bind_name.as_deref().unwrap_or("").is_empty() {
        return Err("Missing required '-bind-name' flag".into());
    }
    if !create && a.id.is_empty() {
        return Err("Cannot update a binding rule without specifying the -id parameter".into());
    }
    let mut body: Map<String, Value> = if create || a.no_merge {
        Map::new()
    } else {
        BINDING_RULE.current(http, &a.id).await?
    };
    if !a.method.is_empty() {
        body.insert("AuthMethod".into(), json!(a.method));
    }
    let bind_type = a
        .bind_type
        .or_else(|| create.then(|| "service".to_string()));
    let texts = [
        ("Description", a.description),
        ("Selector", a.selector),
        ("BindType", bind_type),
        ("BindName", a.bind_name),
    ];
    for (key, value) in texts {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    for var in &a.bind_vars {
        let (key, value) = parse_key_value(var)?;
        if !key.eq_ignore_ascii_case("name") {
            return Err(format!("Unknown -bind-vars variable {key:?}"));
        }
        body.insert("BindVars".into(), json!({ "Name": value }));
    }
    let key = (!create).then_some(a.id.as_str());
    BINDING_RULE.write(&a.out, key, body).await
}

// ---- login and logout -------------------------------------------------------------------

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The auth method to log in with.
    #[arg(long, default_value = "")]
    method: String,
    /// A file holding the bearer token the method verifies.
    #[arg(long = "bearer-token-file", default_value = "")]
    bearer_token_file: String,
    /// The file the new token's SecretID is written to.
    #[arg(long = "token-sink-file", default_value = "")]
    token_sink_file: String,
    /// `key=value` metadata for the token's description (repeatable).
    #[arg(long)]
    meta: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    http: HttpFlags,
}

/// `legate login`: exchanges a bearer token for an ACL token, written to the sink file.
pub async fn login(a: LoginArgs) -> i32 {
    exit_code(login_inner(a).await)
}

async fn login_inner(a: LoginArgs) -> Result<(), String> {
    if a.method.is_empty() {
        return Err("Missing required '-method' flag".into());
    }
    if a.token_sink_file.is_empty() {
        return Err("Missing required '-token-sink-file' flag".into());
    }
    if a.bearer_token_file.is_empty() {
        return Err("Missing required '-bearer-token-file' flag".into());
    }
    let bearer = std::fs::read_to_string(&a.bearer_token_file)
        .map_err(|e| format!("Error reading bearer token file: {e}"))?;
    let bearer = bearer.trim();
    if bearer.is_empty() {
        return Err(format!("No bearer token found in {}", a.bearer_token_file));
    }
    let meta = a
        .meta
        .iter()
        .map(|m| parse_key_value(m).map(|(k, v)| (k, json!(v))))
        .collect::<Result<Map<String, Value>, _>>()?;
    let body = json!({"AuthMethod": a.method, "BearerToken": bearer, "Meta": meta});
    let token = call(
        &a.http,
        Method::POST,
        "/v1/acl/login",
        Some(body),
        "Error logging in",
    )
    .await?;
    std::fs::write(&a.token_sink_file, s(&token, "SecretID"))
        .map_err(|e| format!("Error writing token to file sink: {e}"))
}

/// `legate logout`: destroys the token given with `-token`, which a login must have created.
pub async fn logout(a: LogoutArgs) -> i32 {
    let result = call(
        &a.http,
        Method::POST,
        "/v1/acl/logout",
        None,
        "Error destroying token",
    )
    .await;
    exit_code(result.map(|_| ()))
}
