//! `legate acl bootstrap`, `legate acl token create|read|update|delete|list` and `legate acl
//! policy create|read|update|delete|list`, as the consul commands of those names: the same
//! flags, `-format=pretty|json`, and the same output and error texts. Roles, auth methods,
//! binding rules, login and logout are in `acl_auth`.

use super::client::{connect, decode, exit_code, indented_json, read_data, segment, HttpFlags};
use reqwest::Method;
use serde_json::{json, Map, Value};

#[derive(Debug, clap::Subcommand)]
pub enum AclCommand {
    /// Bootstraps the ACL system and prints the management token.
    Bootstrap(BootstrapArgs),
    /// Manages tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manages policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Manages roles.
    Role {
        #[command(subcommand)]
        command: super::acl_auth::RoleCommand,
    },
    /// Manages auth methods.
    AuthMethod {
        #[command(subcommand)]
        command: super::acl_auth::AuthMethodCommand,
    },
    /// Manages binding rules.
    BindingRule {
        #[command(subcommand)]
        command: super::acl_auth::BindingRuleCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    Create(TokenArgs),
    Read(TokenReadArgs),
    Update(TokenArgs),
    Delete(IdArgs),
    List(FormatArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    Create(PolicyArgs),
    Read(PolicyReadArgs),
    Update(PolicyArgs),
    Delete(PolicyReadArgs),
    List(FormatArgs),
}

#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    #[command(flatten)]
    pub(super) http: HttpFlags,
    /// Output format {pretty|json}.
    #[arg(long, default_value = "pretty")]
    pub(super) format: String,
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    out: FormatArgs,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The token's AccessorID.
    #[arg(long, default_value = "")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct TokenReadArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// The token's AccessorID.
    #[arg(long, default_value = "")]
    id: String,
    /// Reads the token given with -token instead.
    #[arg(long = "self")]
    own: bool,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// The AccessorID to update (update) or to use (create).
    #[arg(long = "id", alias = "accessor", default_value = "")]
    id: String,
    /// The SecretID to use (create only).
    #[arg(long, default_value = "")]
    secret: String,
    #[arg(long)]
    description: Option<String>,
    /// A policy to link by ID (repeatable).
    #[arg(long = "policy-id")]
    policy_ids: Vec<String>,
    /// A policy to link by name (repeatable).
    #[arg(long = "policy-name")]
    policy_names: Vec<String>,
    #[arg(long = "role-id")]
    role_ids: Vec<String>,
    #[arg(long = "role-name")]
    role_names: Vec<String>,
    /// `<service>[:<dc1>,<dc2>]` (repeatable).
    #[arg(long = "service-identity")]
    service_identities: Vec<String>,
    /// `<node>:<datacenter>` (repeatable).
    #[arg(long = "node-identity")]
    node_identities: Vec<String>,
    /// The token's lifetime (e.g. `1h`; create only).
    #[arg(long = "expires-ttl", value_parser = crate::duration::parse)]
    expires_ttl: Option<std::time::Duration>,
    /// A token local to this datacenter (create only).
    #[arg(long)]
    local: bool,
}

/// A policy or role named by `-id` or `-name`.
#[derive(Debug, clap::Args)]
pub struct PolicyReadArgs {
    #[command(flatten)]
    pub(super) out: FormatArgs,
    #[arg(long, default_value = "")]
    pub(super) id: String,
    #[arg(long, default_value = "")]
    pub(super) name: String,
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    out: FormatArgs,
    /// The policy to update.
    #[arg(long, default_value = "")]
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// The rules: literal, `@file` or `-` for stdin.
    #[arg(long)]
    rules: Option<String>,
    /// A datacenter the policy is valid in (repeatable).
    #[arg(long = "valid-datacenter")]
    datacenters: Vec<String>,
}

pub async fn run(command: AclCommand) -> i32 {
    exit_code(match command {
        AclCommand::Bootstrap(a) => bootstrap(a).await,
        AclCommand::Token { command } => match command {
            TokenCommand::Create(a) => token_write(a, true).await,
            TokenCommand::Read(a) => token_read(a).await,
            TokenCommand::Update(a) => token_write(a, false).await,
            TokenCommand::Delete(a) => token_delete(a).await,
            TokenCommand::List(a) => {
                let context = "Failed to retrieve the token list";
                list_all(&a, "/v1/acl/tokens", context, pretty_token).await
            }
        },
        AclCommand::Policy { command } => match command {
            PolicyCommand::Create(a) => policy_write(a, true).await,
            PolicyCommand::Read(a) => policy_read(a).await,
            PolicyCommand::Update(a) => policy_write(a, false).await,
            PolicyCommand::Delete(a) => policy_delete(a).await,
            PolicyCommand::List(a) => {
                let context = "Failed to retrieve the policy list";
                list_all(&a, "/v1/acl/policies", context, pretty_policy).await
            }
        },
        AclCommand::Role { command } => super::acl_auth::role(command).await,
        AclCommand::AuthMethod { command } => super::acl_auth::auth_method(command).await,
        AclCommand::BindingRule { command } => super::acl_auth::binding_rule(command).await,
    })
}

/// Sends a request and decodes its JSON answer; errors carry `context`.
pub(super) async fn call(
    http: &HttpFlags,
    method: Method,
    path: &str,
    body: Option<Value>,
    context: &str,
) -> Result<Value, String> {
    let client = connect(http)?;
    let body = body.map(|b| b.to_string().into_bytes());
    let resp = client
        .ok(method, path, &[], body)
        .await
        .map_err(|e| format!("{context}: {e}"))?;
    decode(&resp.body)
}

/// Creates (`id` `None`) or updates the record of `kind` (`token`, `policy`, ...; `label` in
/// messages) at `/v1/acl/<kind>[/<id>]` and returns what was stored.
pub(super) async fn write_record(
    http: &HttpFlags,
    kind: &str,
    label: &str,
    id: Option<&str>,
    body: Map<String, Value>,
) -> Result<Value, String> {
    let (path, context) = match id {
        None => (
            format!("/v1/acl/{kind}"),
            format!("Failed to create new {label}"),
        ),
        Some(id) => (
            format!("/v1/acl/{kind}/{}", segment(id)),
            format!("Failed to update {label}"),
        ),
    };
    call(
        http,
        Method::PUT,
        &path,
        Some(Value::Object(body)),
        &context,
    )
    .await
}

pub(super) fn check_format(format: &str) -> Result<(), String> {
    match format {
        "pretty" | "json" => Ok(()),
        other => Err(format!("Invalid format: {other}")),
    }
}

/// Prints one record in the chosen format.
pub(super) fn print(
    out: &FormatArgs,
    value: &Value,
    pretty: fn(&Value) -> String,
) -> Result<(), String> {
    if out.format == "json" {
        println!("{}", indented_json(value, b"    ")?);
    } else {
        print!("{}", pretty(value));
    }
    Ok(())
}

pub(super) fn print_list(
    out: &FormatArgs,
    list: &Value,
    pretty: fn(&Value) -> String,
) -> Result<(), String> {
    if out.format == "json" {
        println!("{}", indented_json(list, b"    ")?);
        return Ok(());
    }
    let items = list.as_array().cloned().unwrap_or_default();
    let rendered: Vec<String> = items.iter().map(pretty).collect();
    print!("{}", rendered.join("\n"));
    Ok(())
}

/// `list`: the records at `path`, printed.
pub(super) async fn list_all(
    out: &FormatArgs,
    path: &str,
    context: &str,
    pretty: fn(&Value) -> String,
) -> Result<(), String> {
    check_format(&out.format)?;
    let list = call(&out.http, Method::GET, path, None, context).await?;
    print_list(out, &list, pretty)
}

/// A kind of record the CLI reads and deletes by one key (a token's accessor, a policy's or
/// role's ID, a method's name, a rule's ID).
pub(super) struct Keyed {
    /// Its API path under `/v1/acl/`.
    pub(super) path: &'static str,
    /// How messages name it.
    pub(super) label: &'static str,
    /// How the delete confirmation names it.
    pub(super) deleted: &'static str,
    pub(super) pretty: fn(&Value) -> String,
}

impl Keyed {
    fn path_of(&self, key: &str) -> String {
        format!("/v1/acl/{}/{}", self.path, segment(key))
    }

    pub(super) async fn read(&self, out: &FormatArgs, key: &str) -> Result<(), String> {
        check_format(&out.format)?;
        let context = format!("Error reading {} {key:?}", self.label);
        let record = call(&out.http, Method::GET, &self.path_of(key), None, &context).await?;
        print(out, &record, self.pretty)
    }

    /// The stored record, for an update to start from.
    pub(super) async fn current(
        &self,
        http: &HttpFlags,
        key: &str,
    ) -> Result<Map<String, Value>, String> {
        let context = format!("Error when retrieving current {} {key:?}", self.label);
        let current = call(http, Method::GET, &self.path_of(key), None, &context).await?;
        Ok(current.as_object().cloned().unwrap_or_default())
    }

    /// What a `create` or `update` starts from: nothing for a create, which needs a `-name`,
    /// and the stored record of `-id` for an update.
    pub(super) async fn start(
        &self,
        http: &HttpFlags,
        create: bool,
        id: &str,
        name: Option<&str>,
    ) -> Result<Map<String, Value>, String> {
        if create {
            if name.unwrap_or("").is_empty() {
                return Err("Missing required '-name' flag".into());
            }
            return Ok(Map::new());
        }
        if id.is_empty() {
            return Err(format!(
                "Cannot update a {} without specifying the -id parameter",
                self.label
            ));
        }
        self.current(http, id).await
    }

    /// Creates (`key` `None`) or updates the record and prints what was stored.
    pub(super) async fn write(
        &self,
        out: &FormatArgs,
        key: Option<&str>,
        body: Map<String, Value>,
    ) -> Result<(), String> {
        let stored = write_record(&out.http, self.path, self.label, key, body).await?;
        print(out, &stored, self.pretty)
    }

    pub(super) async fn delete(&self, http: &HttpFlags, key: &str) -> Result<(), String> {
        let context = format!("Error deleting {} {key:?}", self.label);
        call(http, Method::DELETE, &self.path_of(key), None, &context).await?;
        println!("{} {key:?} deleted successfully", self.deleted);
        Ok(())
    }
}

/// The `-name` or `-id` a command needs, refused when empty.
pub(super) fn required<'a>(value: &'a str, flag: &str) -> Result<&'a str, String> {
    if value.is_empty() {
        Err(format!("Must specify the -{flag} parameter"))
    } else {
        Ok(value)
    }
}

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// An RFC 3339 time as Go prints a `time.Time` (`2006-01-02 15:04:05.000 +0000 UTC`).
fn go_time(rfc3339: &str) -> String {
    let t = rfc3339.trim_end_matches('Z').replacen('T', " ", 1);
    format!("{t} +0000 UTC")
}

/// The consul CLI's pretty token output.
fn pretty_token(t: &Value) -> String {
    let mut out = format!(
        "AccessorID:       {}\nSecretID:         {}\nDescription:      {}\nLocal:            {}\n",
        s(t, "AccessorID"),
        s(t, "SecretID"),
        s(t, "Description"),
        t["Local"].as_bool().unwrap_or(false),
    );
    if let Some(method) = t["AuthMethod"].as_str() {
        out.push_str(&format!("Auth Method:      {method} (Namespace: )\n"));
    }
    out.push_str(&format!(
        "Create Time:      {}\n",
        go_time(s(t, "CreateTime"))
    ));
    if let Some(exp) = t["ExpirationTime"].as_str() {
        out.push_str(&format!("Expiration Time:  {}\n", go_time(exp)));
    }
    out.push_str(&pretty_grants(t));
    out
}

/// The grants of a token or role as the consul CLI lists them: linked policies and roles,
/// service and node identities.
pub(super) fn pretty_grants(t: &Value) -> String {
    let mut out = String::new();
    for (key, title) in [("Policies", "Policies"), ("Roles", "Roles")] {
        if let Some(links) = t[key].as_array().filter(|l| !l.is_empty()) {
            out.push_str(&format!("{title}:\n"));
            for l in links {
                out.push_str(&format!("   {} - {}\n", s(l, "ID"), s(l, "Name")));
            }
        }
    }
    if let Some(ids) = t["ServiceIdentities"].as_array().filter(|l| !l.is_empty()) {
        out.push_str("Service Identities:\n");
        for id in ids {
            let dcs = match id["Datacenters"].as_array() {
                Some(d) if !d.is_empty() => d
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "all".into(),
            };
            out.push_str(&format!(
                "   {} (Datacenters: {dcs})\n",
                s(id, "ServiceName")
            ));
        }
    }
    if let Some(ids) = t["NodeIdentities"].as_array().filter(|l| !l.is_empty()) {
        out.push_str("Node Identities:\n");
        for id in ids {
            out.push_str(&format!(
                "   {} (Datacenter: {})\n",
                s(id, "NodeName"),
                s(id, "Datacenter")
            ));
        }
    }
    out
}

/// The consul CLI's pretty policy output (rules only when the record has them).
fn pretty_policy(p: &Value) -> String {
    let dcs = p["Datacenters"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut out = format!(
        "ID:           {}\nName:         {}\nDescription:  {}\nDatacenters:  {dcs}\n",
        s(p, "ID"),
        s(p, "Name"),
        s(p, "Description"),
    );
    if let Some(rules) = p["Rules"].as_str() {
        out.push_str(&format!("Rules:\n{rules}\n"));
    }
    out
}

async fn bootstrap(a: BootstrapArgs) -> Result<(), String> {
    check_format(&a.out.format)?;
    let token = call(
        &a.out.http,
        Method::PUT,
        "/v1/acl/bootstrap",
        None,
        "Failed ACL bootstrapping",
    )
    .await?;
    print(&a.out, &token, pretty_token)
}

pub(super) fn link_list(ids: &[String], names: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({"ID": id}))
        .chain(names.iter().map(|name| json!({"Name": name})))
        .collect()
}

pub(super) fn service_identity(arg: &str) -> Value {
    match arg.split_once(':') {
        Some((name, dcs)) => {
            json!({"ServiceName": name, "Datacenters": dcs.split(',').collect::<Vec<_>>()})
        }
        None => json!({"ServiceName": arg}),
    }
}

pub(super) fn node_identity(arg: &str) -> Result<Value, String> {
    let (name, dc) = arg
        .split_once(':')
        .ok_or_else(|| format!("Malformed -node-identity argument: {arg:?}"))?;
    Ok(json!({"NodeName": name, "Datacenter": dc}))
}

/// `acl token create` and `acl token update`: an update starts from the stored token and
/// replaces what the flags give.
async fn token_write(a: TokenArgs, create: bool) -> Result<(), String> {
    check_format(&a.out.format)?;
    let http = &a.out.http;
    let mut body: Map<String, Value> = if create {
        Map::new()
    } else {
        if a.id.is_empty() {
            return Err("Cannot update a token without specifying the -id parameter".into());
        }
        TOKEN.current(http, &a.id).await?
    };
    if create {
        if !a.id.is_empty() {
            body.insert("AccessorID".into(), json!(a.id));
        }
        if !a.secret.is_empty() {
            body.insert("SecretID".into(), json!(a.secret));
        }
        if let Some(ttl) = a.expires_ttl {
            body.insert("ExpirationTTL".into(), json!(crate::duration::format(ttl)));
        }
        body.insert("Local".into(), json!(a.local));
    }
    if let Some(d) = a.description {
        body.insert("Description".into(), json!(d));
    }
    let policies = link_list(&a.policy_ids, &a.policy_names);
    if create || !policies.is_empty() {
        body.insert("Policies".into(), Value::Array(policies));
    }
    let roles = link_list(&a.role_ids, &a.role_names);
    if create || !roles.is_empty() {
        body.insert("Roles".into(), Value::Array(roles));
    }
    if create || !a.service_identities.is_empty() {
        let ids = a
            .service_identities
            .iter()
            .map(|i| service_identity(i))
            .collect();
        body.insert("ServiceIdentities".into(), Value::Array(ids));
    }
    if create || !a.node_identities.is_empty() {
        let ids = a
            .node_identities
            .iter()
            .map(|i| node_identity(i))
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("NodeIdentities".into(), Value::Array(ids));
    }
    let id = (!create).then_some(a.id.as_str());
    let token = write_record(http, "token", "token", id, body).await?;
    if !create && a.out.format == "pretty" {
        println!("Token updated successfully.");
    }
    print(&a.out, &token, pretty_token)
}

const TOKEN: Keyed = Keyed {
    path: "token",
    label: "token",
    deleted: "Token",
    pretty: pretty_token,
};

async fn token_delete(a: IdArgs) -> Result<(), String> {
    TOKEN.delete(&a.http, required(&a.id, "id")?).await
}

async fn token_read(a: TokenReadArgs) -> Result<(), String> {
    let accessor = if a.own {
        "self"
    } else {
        required(&a.id, "id")?
    };
    TOKEN.read(&a.out, accessor).await
}

/// The ID of `-id` or, failing that, of the `kind` (`policy`, `role`) named `-name`.
pub(super) async fn named_id(
    http: &HttpFlags,
    kind: &str,
    id: &str,
    name: &str,
) -> Result<String, String> {
    if !id.is_empty() {
        return Ok(id.to_string());
    }
    if name.is_empty() {
        return Err("Must specify either the -id or -name parameters".into());
    }
    let path = format!("/v1/acl/{kind}/name/{}", segment(name));
    let record = call(
        http,
        Method::GET,
        &path,
        None,
        &format!("Error finding {kind} {name:?}"),
    )
    .await?;
    Ok(s(&record, "ID").to_string())
}

async fn policy_write(a: PolicyArgs, create: bool) -> Result<(), String> {
    check_format(&a.out.format)?;
    let http = &a.out.http;
    let mut body = POLICY.start(http, create, &a.id, a.name.as_deref()).await?;
    if let Some(name) = a.name {
        body.insert("Name".into(), json!(name));
    }
    if let Some(d) = a.description {
        body.insert("Description".into(), json!(d));
    }
    if let Some(rules) = a.rules {
        let text = read_data(&rules)?;
        body.insert("Rules".into(), json!(String::from_utf8_lossy(&text)));
    }
    if create || !a.datacenters.is_empty() {
        body.insert("Datacenters".into(), json!(a.datacenters));
    }
    POLICY
        .write(&a.out, (!create).then_some(a.id.as_str()), body)
        .await
}

const POLICY: Keyed = Keyed {
    path: "policy",
    label: "policy",
    deleted: "Policy",
    pretty: pretty_policy,
};

async fn policy_read(a: PolicyReadArgs) -> Result<(), String> {
    let id = named_id(&a.out.http, "policy", &a.id, &a.name).await?;
    POLICY.read(&a.out, &id).await
}

async fn policy_delete(a: PolicyReadArgs) -> Result<(), String> {
    let id = named_id(&a.out.http, "policy", &a.id, &a.name).await?;
    POLICY.delete(&a.out.http, &id).await
}
