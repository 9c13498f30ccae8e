//! `/v1/catalog/*` (Consul's `catalog_endpoint.go`, HTTP and server halves): register and
//! deregister with Consul's checks and error texts, and the catalog reads, all blocking, with
//! `?node-meta`, `?tag` and `?filter` where Consul has them (`?near` is accepted and ignored:
//! there is one node to be near).
//!
//! Narrowing (`?node-meta`, `?tag`, `?passing`, `?filter`) is applied to a read's result after
//! the blocking loop returns it: the index of a read never depends on it, as in Consul.
//!
//! ACLs (Consul's `vetRegisterWithACL`, `vetDeregisterWithACL` and `filterACL`): a write needs
//! `node:write` when it changes the node, `service:write` on each service it touches and, for
//! a check, its service's or node's write; reads leave out the nodes and services the token
//! may not read (after `?filter`); a Connect read without `service:read` on its service finds
//! nothing, and a gateway read needs `service:read` on the gateway.

use super::acl::Caller;
use super::blocking::blocking;
use super::error::ApiError;
use super::query::QueryOptions;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::filter::Filter;
use crate::gojson::{self, field, is_zero, multierror, Kind, Schema, STRING, UINT64};
use crate::store::catalog::Registration;
use crate::store::catalog::{self as store, Lookup};
use crate::store::gateway;
use crate::store::{Command, ReadTx, WatchSet};
use crate::types::catalog::{HealthCheck, Node, NodeService, ServiceAddress, ServiceNode, Weights};
use crate::types::schemas::{HEALTH_CHECK, LOCALITY, NODE_SERVICE};
use crate::types::JsonValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

// ----- narrowing shared with `health` -----

/// What a read's query narrows its results by.
pub(super) struct Narrow {
    /// `?node-meta=key:value` (repeatable): the node's meta must have every pair.
    node_meta: BTreeMap<String, String>,
    /// `?tag=` (repeatable): the service must have every tag, case-insensitively.
    tags: Option<Vec<String>>,
    /// `?filter=`.
    filter: Option<Filter>,
    /// `?peer=`: only what was imported from that peer. No peering can exist on this agent,
    /// so naming a peer narrows every result to nothing (rather than being ignored).
    peer: bool,
}

impl Narrow {
    pub(super) fn parse(req: &Request, opts: &QueryOptions) -> Result<Narrow, ApiError> {
        let node_meta = req
            .params
            .all("node-meta")
            .into_iter()
            .map(|pair| match pair.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (pair.to_string(), String::new()),
            })
            .collect();
        let tags = req.params.has("tag").then(|| {
            req.params
                .all("tag")
                .into_iter()
                .map(str::to_string)
                .collect()
        });
        Ok(Narrow {
            node_meta,
            tags,
            filter: opts.parsed_filter()?,
            peer: req.params.get("peer").is_some_and(|p| !p.is_empty()),
        })
    }

    pub(super) fn has_node_meta(&self) -> bool {
        !self.node_meta.is_empty()
    }

    /// Consul's `SatisfiesMetaFilters`.
    pub(super) fn meta_ok(&self, meta: &BTreeMap<String, String>) -> bool {
        self.node_meta
            .iter()
            .all(|(k, v)| meta.get(k).is_some_and(|have| have == v))
    }

    /// Whether `tags` has every `?tag` (Consul's `serviceTagsFilter`).
    pub(super) fn tags_ok(&self, tags: &[String]) -> bool {
        self.tags
            .as_ref()
            .is_none_or(|wanted| wanted.iter().all(|w| tags.iter().any(|t| fold_eq(t, w))))
    }

    /// Keeps the items matching `?filter` (and of `?peer`); a filter that doesn't fit the data
    /// is a 400.
    pub(super) fn filter<T: Serialize>(&self, items: Vec<T>) -> Result<Vec<T>, ApiError> {
        match &self.filter {
            _ if self.peer => Ok(Vec::new()),
            None => Ok(items),
            Some(f) => Ok(f.apply(items)?),
        }
    }

    /// Whether `?peer` names a peer (whose records can't exist here).
    pub(super) fn names_peer(&self) -> bool {
        self.peer
    }

    pub(super) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }
}

/// Go's `strings.EqualFold`, near enough.
pub(super) fn fold_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

/// The path argument of a prefix route, or Consul's 400 when it is missing.
pub(super) fn path_arg(req: &Request, prefix: &str, missing: &str) -> Result<String, ApiError> {
    let arg = req.tail(prefix);
    if arg.is_empty() {
        return Err(ApiError::bad_request(missing));
    }
    Ok(arg.to_string())
}

// ----- register / deregister -----

static REGISTER_REQUEST: Schema = Schema {
    name: "RegisterRequest",
    go_type: "structs.RegisterRequest",
    fields: &[
        field("Datacenter", STRING),
        field("ID", Kind::Str("types.NodeID")),
        field("Node", STRING),
        field("Address", STRING),
        field("TaggedAddresses", Kind::StrMap),
        field("NodeMeta", Kind::StrMap),
        field("Service", Kind::Struct(&NODE_SERVICE)),
        field("Check", Kind::Struct(&HEALTH_CHECK)),
        field("Checks", Kind::List(&HEALTH_CHECK, "structs.HealthChecks")),
        field("Locality", Kind::Struct(&LOCALITY)),
        field("SkipNodeUpdate", Kind::Bool),
        field("PeerName", STRING),
        field("Token", STRING),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: true,
};

/// `DeregisterRequest` (its `UnmarshalJSON` is strict and still allows the obsolete `Address`).
static DEREGISTER_REQUEST: Schema = Schema {
    name: "DeregisterRequest",
    go_type: "structs.DeregisterRequest",
    fields: &[
        field("Datacenter", STRING),
        field("Node", STRING),
        field("ServiceID", STRING),
        field("CheckID", Kind::Str("types.CheckID")),
        field("PeerName", STRING),
        field("Token", STRING),
        field("Address", STRING),
    ],
    base: None,
    strict: true,
};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct RegisterBody {
    datacenter: String,
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    tagged_addresses: BTreeMap<String, String>,
    node_meta: BTreeMap<String, String>,
    service: Option<ServiceBody>,
    check: Option<CheckBody>,
    checks: Vec<CheckBody>,
    skip_node_update: bool,
    peer_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ServiceBody {
    kind: String,
    #[serde(rename = "ID")]
    id: String,
    service: String,
    tags: Vec<String>,
    address: String,
    tagged_addresses: BTreeMap<String, ServiceAddress>,
    meta: BTreeMap<String, String>,
    port: u16,
    socket_path: String,
    weights: Option<WeightsBody>,
    enable_tag_override: bool,
    proxy: Map<String, Value>,
    connect: Map<String, Value>,
    peer_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct WeightsBody {
    passing: i64,
    warning: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct CheckBody {
    node: String,
    #[serde(rename = "CheckID")]
    check_id: String,
    name: String,
    status: String,
    notes: String,
    output: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    r#type: String,
    interval: String,
    timeout: String,
    exposed_port: u16,
    peer_name: String,
    definition: Map<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct DeregisterBody {
    datacenter: String,
    node: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    #[serde(rename = "CheckID")]
    check_id: String,
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8], schema: &Schema) -> Result<T, ApiError> {
    let failed = |reason: String| {
        // Consul CE's `rewordUnknownEnterpriseFieldError`.
        let reason = if reason == r#"json: unknown field "Namespace""# {
            format!("{reason} - Namespaces are a Consul Enterprise feature")
        } else {
            reason
        };
        ApiError::bad_request(format!("Request decode failed: {reason}"))
    };
    let map = gojson::decode(body, schema).map_err(failed)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| failed(e.to_string()))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// A body naming another datacenter would be forwarded there; there is none to reach.
fn check_datacenter(ctx: &Ctx, dc: &str) -> Result<(), ApiError> {
    if !dc.is_empty() && dc != ctx.config.datacenter {
        return Err(ApiError::internal("No path to datacenter"));
    }
    Ok(())
}

impl RegisterBody {
    /// Consul's `Catalog.Register` checks, in its order.
    fn validate(self, ctx: &Ctx) -> Result<Registration, ApiError> {
        let peered = !self.peer_name.is_empty()
            || self
                .service
                .as_ref()
                .is_some_and(|s| !s.peer_name.is_empty())
            || self
                .check
                .iter()
                .chain(&self.checks)
                .any(|c| !c.peer_name.is_empty());
        if peered {
            return Err(invalid("cannot register requests with PeerName in them"));
        }
        check_datacenter(ctx, &self.datacenter)?;
        if self.node.is_empty() {
            return Err(invalid("Must provide node"));
        }
        if !self.id.is_empty() {
            parse_uuid(&self.id).map_err(|e| invalid(format!("Bad node ID: {e}")))?;
        }
        if self.address.is_empty() && !self.skip_node_update {
            return Err(invalid("Must provide address if SkipNodeUpdate is not set"));
        }
        let service = self.service.map(ServiceBody::validate).transpose()?;
        let mut checks = self.checks;
        checks.extend(self.check);
        let checks = checks
            .into_iter()
            .map(|c| c.into_check(&self.node))
            .collect();
        let datacenter = if self.datacenter.is_empty() {
            ctx.config.datacenter.clone()
        } else {
            self.datacenter
        };
        Ok(Registration {
            node: Node {
                id: self.id,
                node: self.node,
                address: self.address,
                datacenter,
                tagged_addresses: self.tagged_addresses,
                meta: self.node_meta,
                create_index: 0,
                modify_index: 0,
            },
            skip_node_update: self.skip_node_update,
            service,
            checks,
        })
    }
}

/// `go-uuid`'s `ParseUUID` errors.
fn parse_uuid(id: &str) -> Result<(), String> {
    if id.len() != 36 {
        return Err("uuid string is wrong length".into());
    }
    let b = id.as_bytes();
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return Err("uuid is improperly formatted".into());
    }
    let hex: String = [&id[0..8], &id[9..13], &id[14..18], &id[19..23], &id[24..36]].concat();
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "encoding/hex: invalid byte: U+{:04X} {}",
            c as u32,
            go_quote_rune(c)
        ));
    }
    Ok(())
}

fn go_quote_rune(c: char) -> String {
    match c {
        '\'' => r"'\''".into(),
        '\\' => r"'\\'".into(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

const GATEWAY_KINDS: [&str; 4] = [
    "mesh-gateway",
    "terminating-gateway",
    "ingress-gateway",
    "api-gateway",
];

fn str_of<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

impl ServiceBody {
    /// `NodeService.Validate` (the parts that don't need config entries) and
    /// `servicePreApply`.
    fn validate(mut self) -> Result<NodeService, ApiError> {
        let mut errors = Vec::new();
        let kind = self.kind.as_str();
        let native = self.connect.get("Native") == Some(&Value::Bool(true));
        let no_port = self.port == 0 && self.socket_path.is_empty();
        if kind == "connect-proxy" {
            if no_port {
                errors.push(format!("Port or SocketPath must be set for a {kind}"));
            }
            let dest = str_of(&self.proxy, "DestinationServiceName");
            if dest.trim().is_empty() {
                errors.push(
                    "Proxy.DestinationServiceName must be non-empty for Connect proxy services"
                        .into(),
                );
            }
            if dest == "*" {
                errors.push(
                    "Proxy.DestinationServiceName must not be a wildcard for Connect proxy services"
                        .into(),
                );
            }
            if native {
                errors.push("A Proxy cannot also be Connect Native, only typical services".into());
            }
        }
        if GATEWAY_KINDS.contains(&kind) {
            if self.port == 0 && kind != "ingress-gateway" && kind != "api-gateway" {
                errors.push(format!("Port must be non-zero for a {kind}"));
            }
            if self
                .connect
                .get("SidecarService")
                .is_some_and(|v| !v.is_null())
            {
                errors.push(format!("A {kind} cannot have a sidecar service defined"));
            }
            for setting in [
                "DestinationServiceName",
                "DestinationServiceID",
                "LocalServiceAddress",
                "LocalServicePort",
                "LocalServiceSocketPath",
                "Upstreams",
            ] {
                if self.proxy.get(setting).is_some_and(|v| !is_zero(v)) {
                    errors.push(format!(
                        "The Proxy.{setting} configuration is invalid for a {kind}"
                    ));
                }
            }
        }
        if let Some(Value::Object(sidecar)) = self.connect.get("SidecarService") {
            let id = sidecar
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("ID"))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("");
            if !id.is_empty() {
                errors.push(
                    "A SidecarService cannot specify an ID as this is managed by the agent".into(),
                );
            }
            let nested = sidecar
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Connect"))
                .and_then(|(_, v)| v.as_object())
                .is_some_and(|c| {
                    c.iter().any(|(k, v)| {
                        (k.eq_ignore_ascii_case("SidecarService")
                            || k.eq_ignore_ascii_case("sidecar_service"))
                            && !v.is_null()
                    })
                });
            if nested {
                errors.push("A SidecarService cannot have a nested SidecarService".into());
            }
        }
        if native && no_port {
            errors.push("Port or SocketPath must be set for a Connect native service.".into());
        }
        if !errors.is_empty() {
            return Err(invalid(multierror(&errors)));
        }
        if self.id.is_empty() {
            self.id = self.service.clone();
        }
        if self.service.is_empty() {
            // With an ID, Consul's own text; with neither, Consul would store a nameless
            // service no lookup can reach, so it is refused too.
            return Err(invalid(
                "Must provide service name (Service.Service) when service ID is provided",
            ));
        }
        if matches!(self.address.as_str(), "0.0.0.0" | "::" | "[::]") {
            return Err(invalid("Invalid service address"));
        }
        // `ToServiceNode`: missing or invalid weights become {1, 1}.
        let weights = match self.weights {
            Some(w)
                if w.passing >= 1 && w.warning >= 0 && w.passing <= 65535 && w.warning <= 65535 =>
            {
                Weights {
                    passing: w.passing as i32,
                    warning: w.warning as i32,
                }
            }
            _ => Weights::default(),
        };
        Ok(NodeService {
            kind: self.kind,
            id: self.id,
            service: self.service,
            tags: self.tags,
            address: self.address,
            tagged_addresses: self.tagged_addresses,
            meta: self.meta,
            port: self.port,
            socket_path: self.socket_path,
            weights,
            enable_tag_override: self.enable_tag_override,
            proxy: JsonValue(render_proxy(self.proxy)),
            connect: JsonValue(render_connect(self.connect)),
            peer_name: String::new(),
            create_index: 0,
            modify_index: 0,
        })
    }
}

/// A proxy configuration as Consul renders it (zero-valued `omitempty` fields left out,
/// `Mode`, `MeshGateway` and `Expose` always there); `null` for the zero configuration, which
/// the service type renders as Consul's default.
fn render_proxy(mut proxy: Map<String, Value>) -> Value {
    let mut out = Map::new();
    let mut take = |out: &mut Map<String, Value>, key: &str, always: Option<Value>| match (
        proxy.remove(key),
        always,
    ) {
        (Some(v), _) if !is_zero(&v) => {
            out.insert(key.into(), v);
        }
        (Some(v), Some(_)) if !v.is_null() => {
            out.insert(key.into(), v);
        }
        (_, Some(default)) => {
            out.insert(key.into(), default);
        }
        _ => {}
    };
    take(&mut out, "TransparentProxy", None);
    take(&mut out, "AccessLogs", None);
    take(&mut out, "EnvoyExtensions", None);
    take(&mut out, "DestinationServiceName", None);
    take(&mut out, "DestinationServiceID", None);
    take(&mut out, "LocalServiceAddress", None);
    take(&mut out, "LocalServicePort", None);
    take(&mut out, "LocalServiceSocketPath", None);
    take(&mut out, "Mode", Some(Value::from("")));
    take(&mut out, "Config", None);
    take(&mut out, "Upstreams", None);
    take(&mut out, "MeshGateway", Some(Value::Object(Map::new())));
    take(&mut out, "Expose", Some(Value::Object(Map::new())));
    let zero = serde_json::json!({"Mode": "", "MeshGateway": {}, "Expose": {}});
    if Value::Object(out.clone()) == zero {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// `ServiceConnect` as Consul renders it (every field `omitempty`); `null` when empty.
fn render_connect(mut connect: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for key in ["Native", "SidecarService", "PeerMeta"] {
        if let Some(v) = connect.remove(key).filter(|v| !is_zero(v)) {
            out.insert(key.into(), v);
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

fn nanos(def: &Map<String, Value>, key: &str) -> u64 {
    def.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A check definition as `HealthCheckDefinition.MarshalJSON` renders it: the durations first
/// as duration strings (`TTL` stays nanoseconds), every zero field left out.
fn render_definition(mut def: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for key in [
        "Interval",
        "OutputMaxSize",
        "Timeout",
        "DeregisterCriticalServiceAfter",
    ] {
        let Some(v) = def.remove(key).filter(|v| !is_zero(v)) else {
            continue;
        };
        let v = if key == "OutputMaxSize" {
            v
        } else {
            let d = std::time::Duration::from_nanos(v.as_u64().unwrap_or(0));
            Value::from(crate::duration::format(d))
        };
        out.insert(key.into(), v);
    }
    for key in [
        "HTTP",
        "TLSServerName",
        "TLSSkipVerify",
        "Header",
        "Method",
        "Body",
        "DisableRedirects",
        "TCP",
        "UDP",
        "H2PING",
        "OSService",
        "H2PingUseTLS",
        "ScriptArgs",
        "DockerContainerID",
        "Shell",
        "GRPC",
        "GRPCUseTLS",
        "AliasNode",
        "AliasService",
        "TTL",
    ] {
        if let Some(v) = def.remove(key).filter(|v| !is_zero(v)) {
            out.insert(key.into(), v);
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// `CheckType.Type()` of a check definition.
fn check_type(def: &Map<String, Value>) -> &'static str {
    let set = |key: &str| !str_of(def, key).is_empty();
    let interval = nanos(def, "Interval") > 0;
    let script = def
        .get("ScriptArgs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
        && interval;
    if set("GRPC") && interval {
        "grpc"
    } else if set("HTTP") && interval {
        "http"
    } else if nanos(def, "TTL") > 0 {
        "ttl"
    } else if set("TCP") && interval {
        "tcp"
    } else if set("UDP") && interval {
        "udp"
    } else if set("AliasNode") || set("AliasService") {
        "alias"
    } else if script && set("DockerContainerID") {
        "docker"
    } else if script {
        "script"
    } else if set("H2PING") && interval {
        "h2ping"
    } else if set("OSService") && interval {
        "os_service"
    } else {
        ""
    }
}

impl CheckBody {
    /// The check as Consul stores it: on the request's node unless it names one, its ID
    /// defaulting to its name, its type computed from its definition when not given.
    fn into_check(self, node: &str) -> HealthCheck {
        let r#type = if self.r#type.is_empty() {
            check_type(&self.definition).to_string()
        } else {
            self.r#type
        };
        HealthCheck {
            node: if self.node.is_empty() {
                node.to_string()
            } else {
                self.node
            },
            check_id: if self.check_id.is_empty() {
                self.name.clone()
            } else {
                self.check_id
            },
            name: self.name,
            status: self.status,
            notes: self.notes,
            output: self.output,
            service_id: self.service_id,
            service_name: self.service_name,
            service_tags: self.service_tags,
            r#type,
            interval: self.interval,
            timeout: self.timeout,
            exposed_port: self.exposed_port,
            definition: JsonValue(render_definition(self.definition)),
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// `PUT /v1/catalog/register`.
pub async fn register(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let registration = decode::<RegisterBody>(&body, &REGISTER_REQUEST)?.validate(&ctx)?;
    authorize_registration(&ctx, &req.caller, &registration)?;
    ctx.store
        .apply(Command::CatalogRegister(Box::new(registration)))
        .await?;
    Reply::json(&true, opts.pretty)
}

/// Write on the node when the registration changes it, on the service it registers and on
/// what each check belongs to (the registration's service, else one already on the node).
fn authorize_registration(ctx: &Ctx, caller: &Caller, r: &Registration) -> Result<(), ApiError> {
    let read = ctx.store.read()?;
    let node = &r.node.node;
    let existing = store::get_node(&read, node)?;
    let changes_node = match &existing {
        None => true,
        Some(old) => !r.skip_node_update && !old.same_as(&r.node),
    };
    if changes_node {
        caller.require(Resource::Node, AccessLevel::Write, node)?;
    }
    if let Some(service) = &r.service {
        caller.require(Resource::Service, AccessLevel::Write, &service.service)?;
        // Registering over a service with the same ID replaces (deletes) it.
        if let Some(replaced) = store::get_service(&read, node, &service.id)? {
            caller.require(Resource::Service, AccessLevel::Write, &replaced.service)?;
        }
        if crate::types::catalog::sets_envoy_escape_hatch(&service.proxy.0) {
            caller.require(Resource::Mesh, AccessLevel::Write, "")?;
        }
    }
    for check in &r.checks {
        if check.service_id.is_empty() {
            caller.require(Resource::Node, AccessLevel::Write, node)?;
            continue;
        }
        let service_name = match &r.service {
            Some(s) if s.id == check.service_id => Some(s.service.clone()),
            _ => store::get_service(&read, node, &check.service_id)?.map(|s| s.service),
        };
        // An unknown service is refused by the store with Consul's text.
        if let Some(name) = service_name {
            caller.require(Resource::Service, AccessLevel::Write, &name)?;
        }
    }
    Ok(())
}

/// Consul's `vetDeregisterWithACL`: write on the node allows anything on it (an agent whose
/// token lost a service's write can still clean up); else write on the service (with its
/// checks), or on the check's service, else on the node. An unknown service or check without
/// write on the node is Consul's error naming it.
fn authorize_deregistration(
    ctx: &Ctx,
    caller: &Caller,
    args: &DeregisterBody,
) -> Result<(), ApiError> {
    if caller.may(Resource::Node, AccessLevel::Write, &args.node) {
        return Ok(());
    }
    let read = ctx.store.read()?;
    let service_of = |id: &str| -> Result<Option<String>, ApiError> {
        Ok(store::get_service(&read, &args.node, id)?.map(|s| s.service))
    };
    let service = if !args.service_id.is_empty() {
        let unknown = || ApiError::internal(format!("Unknown service ID '{}'", args.service_id));
        Some(service_of(&args.service_id)?.ok_or_else(unknown)?)
    } else if !args.check_id.is_empty() {
        let unknown = || ApiError::internal(format!("Unknown check ID '{}'", args.check_id));
        let check = store::get_check(&read, &args.node, &args.check_id)?.ok_or_else(unknown)?;
        match check.service_id.is_empty() {
            true => None,
            false => service_of(&check.service_id)?,
        }
    } else {
        None
    };
    match service {
        Some(name) => caller.require(Resource::Service, AccessLevel::Write, &name),
        None => caller.require(Resource::Node, AccessLevel::Write, &args.node),
    }
}

/// `PUT /v1/catalog/deregister`: a service (with its checks), else a check, else the node.
pub async fn deregister(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let body = req.body(&ctx).await?;
    let args = decode::<DeregisterBody>(&body, &DEREGISTER_REQUEST)?;
    check_datacenter(&ctx, &args.datacenter)?;
    if args.node.is_empty() {
        return Err(invalid("Must provide node"));
    }
    authorize_deregistration(&ctx, &req.caller, &args)?;
    ctx.store
        .apply(Command::CatalogDeregister {
            node: args.node,
            service_id: args.service_id,
            check_id: args.check_id,
        })
        .await?;
    Reply::json(&true, opts.pretty)
}

// ----- reads -----

/// `GET /v1/catalog/nodes`.
pub async fn nodes(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let got = blocking(&ctx.store, &opts, store::nodes).await?;
    let nodes: Vec<Node> = got
        .value
        .into_iter()
        .filter(|n| narrow.meta_ok(&n.meta))
        .collect();
    let mut nodes = narrow.filter(nodes)?;
    let removed = req.caller.filter(&mut nodes, |c, n| c.reads_node(&n.node));
    Ok(Reply::json(&nodes, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// An instance is readable with read on its node and its service.
fn readable_instance(caller: &Caller, instance: &ServiceNode) -> bool {
    caller.reads_node(&instance.node) && caller.reads_service(&instance.service_name)
}

/// Every instance of every service, with its node.
fn all_instances(r: &ReadTx, ws: &mut WatchSet) -> crate::store::Result<Vec<(Node, NodeService)>> {
    let (_, names) = store::services(r, ws)?;
    let mut out = Vec::new();
    for name in names.keys() {
        out.extend(store::service_instances(r, ws, name, Lookup::Service)?.1);
    }
    Ok(out)
}

/// `GET /v1/catalog/services`: each service name with its instances' tags. With
/// `?node-meta` or `?filter` (which sees each instance as a `ServiceNode`), only the
/// instances that pass count. ACLs filter by service name alone, after `?filter` (so the
/// filtered-by-ACLs header counts only what the expression kept), as Consul's `ListServices`.
pub async fn services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    if !narrow.has_node_meta() && !narrow.has_filter() && !narrow.names_peer() {
        let mut got = blocking(&ctx.store, &opts, store::services).await?;
        let before = got.value.len();
        got.value.retain(|name, _| req.caller.reads_service(name));
        return Ok(Reply::json(&got.value, opts.pretty)?
            .read_meta(got.index)
            .filtered_by_acls(&req.caller, got.value.len() != before));
    }
    let by_meta = narrow.has_node_meta();
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let (index, _) = store::services(r, ws)?;
        let index = if by_meta {
            index.max(store::nodes(r, ws)?.0)
        } else {
            index
        };
        Ok((index, all_instances(r, ws)?))
    })
    .await?;
    let instances: Vec<ServiceNode> = got
        .value
        .iter()
        .filter(|(n, _)| narrow.meta_ok(&n.meta))
        .map(|(n, s)| ServiceNode::new(n, s))
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sn in narrow.filter(instances)? {
        let tags = out.entry(sn.service_name).or_default();
        for tag in sn.service_tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    let before = out.len();
    out.retain(|name, _| req.caller.reads_service(name));
    Ok(Reply::json(&out, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, out.len() != before))
}

/// `GET /v1/catalog/service/<name>`.
pub async fn service(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    service_nodes(ctx, req, "/v1/catalog/service/", Lookup::Service).await
}

/// `GET /v1/catalog/connect/<name>`: the Connect-capable instances for a service (tags are
/// ignored, as in Consul).
pub async fn connect(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    service_nodes(ctx, req, "/v1/catalog/connect/", Lookup::Connect).await
}

async fn service_nodes(
    ctx: Ctx,
    req: Request,
    prefix: &str,
    lookup: Lookup,
) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, prefix, "Missing service name")?;
    // A Connect lookup without read on the service it finds proxies for answers nothing, as
    // Consul's `Catalog.ServiceNodes`: not a refusal.
    let hidden = lookup == Lookup::Connect && !req.caller.reads_service(&name);
    let got = blocking(&ctx.store, &opts, |r, ws| {
        store::service_instances(r, ws, &name, lookup)
    })
    .await?;
    let items: Vec<ServiceNode> = got
        .value
        .iter()
        .filter(|(n, s)| {
            !hidden
                && (lookup == Lookup::Connect || narrow.tags_ok(&s.tags))
                && narrow.meta_ok(&n.meta)
        })
        .map(|(n, s)| ServiceNode::new(n, s))
        .collect();
    let mut items = narrow.filter(items)?;
    let removed = req.caller.filter(&mut items, readable_instance);
    Ok(Reply::json(&items, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

type NodeWithServices = (Node, Vec<NodeService>);

/// A node with its services, by name or else (2 characters or more) by a unique node-ID
/// prefix, as Consul's `nodeServicesTxn` looks nodes up.
fn lookup_node(
    r: &ReadTx,
    ws: &mut WatchSet,
    name_or_id: &str,
) -> crate::store::Result<(u64, Option<NodeWithServices>)> {
    let (index, found) = store::node_services(r, ws, name_or_id)?;
    let id_like = name_or_id.len() >= 2
        && name_or_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-');
    if found.is_some() || !id_like {
        return Ok((index, found));
    }
    let prefix = name_or_id.to_ascii_lowercase();
    let (_, nodes) = store::nodes(r, ws)?;
    let mut matches = nodes
        .iter()
        .filter(|n| !n.id.is_empty() && n.id.to_ascii_lowercase().starts_with(&prefix));
    match (matches.next(), matches.next()) {
        (Some(node), None) => store::node_services(r, ws, &node.node),
        _ => Ok((index, None)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeServices {
    node: Node,
    services: BTreeMap<String, NodeService>,
}

/// A node and its services as the caller may see them, its services narrowed by `?filter`
/// first (as Consul filters by ACL after the expression): nothing without read on the node,
/// and only the readable services; also whether ACLs removed anything.
fn readable_node(
    caller: &Caller,
    narrow: &Narrow,
    found: Option<NodeWithServices>,
) -> Result<(Option<NodeWithServices>, bool), ApiError> {
    Ok(match found {
        None => (None, false),
        Some((node, _)) if !caller.reads_node(&node.node) => (None, true),
        Some((node, services)) => {
            let mut services = narrow.filter(services)?;
            let removed = caller.filter(&mut services, |c, s| c.reads_service(&s.service));
            (Some((node, services)), removed)
        }
    })
}

/// `GET /v1/catalog/node/<node>`: `{"Node": ..., "Services": {id: service}}`, or `null` for
/// an unknown node. `?filter` applies to the services.
pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, "/v1/catalog/node/", "Missing node name")?;
    let got = blocking(&ctx.store, &opts, |r, ws| lookup_node(r, ws, &name)).await?;
    let found = got.value.filter(|_| !narrow.names_peer());
    let (found, removed) = readable_node(&req.caller, &narrow, found)?;
    let body = found.map(|(node, services)| NodeServices {
        node,
        services: services.into_iter().map(|s| (s.id.clone(), s)).collect(),
    });
    Ok(Reply::json(&body, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeServiceList {
    node: Option<Node>,
    services: Option<Vec<NodeService>>,
}

/// `GET /v1/catalog/node-services/<node>`: `{"Node": ..., "Services": [...]}`; both `null`
/// for an unknown node, and `Services` `null` for a node without services (`[]` once a
/// filter has run, as go-bexpr returns an empty list).
pub async fn node_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let narrow = Narrow::parse(&req, &opts)?;
    let name = path_arg(&req, "/v1/catalog/node-services/", "Missing node name")?;
    let got = blocking(&ctx.store, &opts, |r, ws| lookup_node(r, ws, &name)).await?;
    let found = got.value.filter(|_| !narrow.names_peer());
    let (found, removed) = readable_node(&req.caller, &narrow, found)?;
    let body = match found {
        None => NodeServiceList {
            node: None,
            services: None,
        },
        Some((node, services)) => NodeServiceList {
            node: Some(node),
            services: Some(services).filter(|s| narrow.has_filter() || !s.is_empty()),
        },
    };
    Ok(Reply::json(&body, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// `GET /v1/catalog/gateway-services/<gateway>`: the services an ingress or terminating
/// gateway fronts, `null` when none (an unknown gateway included, as in Consul).
pub async fn gateway_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let name = path_arg(
        &req,
        "/v1/catalog/gateway-services/",
        "Missing gateway name",
    )?;
    req.caller
        .require(Resource::Service, AccessLevel::Read, &name)?;
    let mut got = blocking(&ctx.store, &opts, |r, ws| gateway::services(r, ws, &name)).await?;
    let removed = req
        .caller
        .filter(&mut got.value, |c, s| c.reads_service(&s.service.name));
    let services = Some(got.value).filter(|s| !s.is_empty());
    Ok(Reply::json(&services, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_errors_are_go_uuids() {
        assert!(parse_uuid("a5d1c9a0-1b2c-4d3e-8f40-123456789abc").is_ok());
        assert_eq!(
            parse_uuid("abc").unwrap_err(),
            "uuid string is wrong length"
        );
        assert_eq!(
            parse_uuid("a5d1c9a0x1b2c-4d3e-8f40-123456789abc").unwrap_err(),
            "uuid is improperly formatted"
        );
        assert_eq!(
            parse_uuid("g5d1c9a0-1b2c-4d3e-8f40-123456789abc").unwrap_err(),
            "encoding/hex: invalid byte: U+0067 'g'"
        );
    }

    #[test]
    fn definitions_render_as_consul_marshals_them() {
        let def: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "HTTP": "http://x", "Interval": 10_000_000_000u64, "TLSSkipVerify": false,
            "TTL": 0, "Timeout": 1_500_000_000u64,
        }))
        .unwrap();
        assert_eq!(check_type(&def), "http");
        assert_eq!(
            serde_json::to_string(&render_definition(def)).unwrap(),
            r#"{"Interval":"10s","Timeout":"1.5s","HTTP":"http://x"}"#
        );
        assert_eq!(render_definition(Map::new()), Value::Null);
    }

    #[test]
    fn proxies_render_with_consuls_defaults() {
        assert_eq!(render_proxy(Map::new()), Value::Null);
        let p: Map<String, Value> = serde_json::from_value(
            serde_json::json!({"Expose": {}, "DestinationServiceName": "web", "LocalServicePort": 0}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&render_proxy(p)).unwrap(),
            r#"{"DestinationServiceName":"web","Mode":"","MeshGateway":{},"Expose":{}}"#
        );
    }
}
