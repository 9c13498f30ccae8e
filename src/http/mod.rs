//! The HTTP API. Every `/v1` route is listed once in `ROUTES` (path, methods, handler, body
//! limit); one warp filter hands each request to `dispatch`, which answers `OPTIONS` and wrong
//! methods as Consul does, resolves the caller's ACL token, enforces the route's fixed ACL
//! right (`AclRule`), reads the body within the route's limit, and renders errors.
//! Handlers parse and render; they call `store` domain functions and never touch tables.

pub mod acl;
pub mod acl_auth;
pub mod agent;
pub mod blocking;
pub mod catalog;
pub mod config;
pub mod connect;
pub mod coordinate;
pub mod discovery_chain;
pub mod error;
pub mod event;
pub mod federation_state;
pub mod health;
pub mod intention;
pub mod internal;
pub mod kv;
pub mod operator;
pub mod peering;
pub mod prepared_query;
pub mod query;
pub mod reply;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;
pub mod ui;

use bytes::Bytes;
use error::ApiError;
use futures_util::{Stream, StreamExt};
use query::{Defaults, Params, QueryOptions};
use reply::Reply;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::Filter;

use crate::acl::{AccessLevel, Resource};
pub use crate::agent::context::{AgentContext, Ctx};

/// What only HTTP handlers need of the context.
impl AgentContext {
    pub fn query_options(&self, req: &Request) -> Result<QueryOptions, ApiError> {
        QueryOptions::parse(
            &req.params,
            &req.headers,
            &Defaults {
                datacenter: query::forwards_by_datacenter(&req.path)
                    .then_some(self.config.datacenter.as_str()),
                default_wait: self.config.default_query_time,
                max_wait: self.config.max_query_time,
            },
        )
    }
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// A parsed request as handlers see it.
pub struct Request {
    pub method: Method,
    /// The percent-decoded path.
    pub path: String,
    pub params: Params,
    pub headers: HeaderMap,
    /// Who the request acts as (see `acl::Caller`).
    pub caller: acl::Caller,
    /// The client's address (the connection's peer), when known.
    pub remote: Option<SocketAddr>,
    body: Option<BodyStream>,
    body_limit: BodyLimit,
}

/// What ACL right a route needs (Consul's handlers and endpoints; the docs' "ACL Required").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclRule {
    /// None: the caller's token is not even resolved (status, CA roots, bootstrap).
    Open,
    /// This right, checked before the handler runs. `agent` and `node` rights are on this
    /// agent's node; other fixed resources are global.
    Fixed(Resource, AccessLevel),
    /// `GET` needs read on the resource, any other method write (operator settings).
    ByMethod(Resource),
    /// The right depends on the key, service, node or body: the handler checks it (through
    /// `req.caller.require`) and filters lists by what the token may read.
    InHandler,
}

/// How large a route's body may be, and the message Consul gives past it.
#[derive(Clone, Copy)]
pub enum BodyLimit {
    /// KV values: `limits.kv_max_value_size`.
    KvValue,
    /// Transactions: the larger of `txn_max_req_len` and `kv_max_value_size`.
    Txn,
    /// Any other JSON body.
    Default,
    /// Snapshot archives (`PUT /v1/snapshot`): `SNAPSHOT_BODY_LIMIT`.
    Snapshot,
}

/// Largest body accepted by routes without a Consul-specified limit.
const DEFAULT_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// Largest snapshot archive accepted for restore.
const SNAPSHOT_BODY_LIMIT: u64 = 1024 * 1024 * 1024;

impl Request {
    /// The path after `prefix` (for routes like `/v1/kv/<key>`).
    pub fn tail(&self, prefix: &str) -> &str {
        self.path.strip_prefix(prefix).unwrap_or("")
    }

    /// Reads the whole body, refusing it once it exceeds the route's limit (whether or not the
    /// client announced a length) with Consul's 413 text.
    pub async fn body(&mut self, ctx: &AgentContext) -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        self.stream_body(ctx, |chunk| {
            out.extend_from_slice(&chunk);
            std::future::ready(true)
        })
        .await?;
        Ok(out)
    }

    /// Hands the body to `sink` chunk by chunk as it arrives, within the route's limit as
    /// `body`; stops reading when `sink` answers false (it wants no more).
    pub async fn stream_body<F, Fut>(
        &mut self,
        ctx: &AgentContext,
        mut sink: F,
    ) -> Result<(), ApiError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: Future<Output = bool>,
    {
        let limits = &ctx.config.limits;
        let (limit, setting) = match self.body_limit {
            BodyLimit::KvValue => (limits.kv_max_value_size, Some("kv_max_value_size")),
            BodyLimit::Txn => (
                limits.txn_max_req_len.max(limits.kv_max_value_size),
                Some("txn_max_req_len"),
            ),
            BodyLimit::Default => (DEFAULT_BODY_LIMIT, None),
            BodyLimit::Snapshot => (SNAPSHOT_BODY_LIMIT, None),
        };
        let too_large = |size: Option<u64>| {
            let see = setting
                .map(|s| {
                    format!(
                        " See https://developer.hashicorp.com/docs/agent/config/config-files#{s}."
                    )
                })
                .unwrap_or_default();
            ApiError::too_large(match size {
                Some(size) => {
                    format!("Request body({size} bytes) too large, max size: {limit} bytes.{see}")
                }
                None => format!("Request body too large, max size: {limit} bytes.{see}"),
            })
        };
        let announced = self
            .headers
            .get("Content-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(size) = announced.filter(|&s| s > limit) {
            return Err(too_large(Some(size)));
        }
        let mut read = 0u64;
        while let Some(chunk) = self.next_chunk().await? {
            read += chunk.len() as u64;
            if read > limit {
                return Err(too_large(None));
            }
            if !sink(chunk).await {
                break;
            }
        }
        Ok(())
    }

    /// The body's next chunk, `None` at its end. A client that sends nothing for
    /// `BODY_IDLE_TIMEOUT` is cut off: a body that is never finished must not hold its
    /// connection and handler forever.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        let Some(stream) = self.body.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next()).await {
            Err(_) => {
                self.body = None;
                Err(ApiError::bad_request(format!(
                    "Failed to read body: no data for {}s",
                    BODY_IDLE_TIMEOUT.as_secs()
                )))
            }
            Ok(None) => {
                self.body = None;
                Ok(None)
            }
            Ok(Some(chunk)) => chunk
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("Failed to read body: {e}"))),
        }
    }
}

/// How long a request body may stall before the request is refused and its connection closed.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send a request's headers, counted from the moment the connection
/// is ready for one (also between keep-alive requests, as Go's server counts its read
/// deadlines). Consul's plain HTTP server sets none; Legate cuts slow-header connections after
/// Consul's `limits.https_handshake_timeout` default, so a client dribbling bytes costs no
/// more than its connection for that long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;
type Handler = fn(Ctx, Request) -> HandlerFuture;

struct Route {
    path: &'static str,
    /// Whether `path` is a prefix (routes that take the rest of the path as an argument).
    prefix: bool,
    methods: &'static [Method],
    body: BodyLimit,
    acl: AclRule,
    handler: Handler,
}

/// One route: path, `prefix` or `exact`, methods, body limit, ACL rule, handler. The ACL rule
/// is `open`, `handler` (checked in the handler), `resource:level` (fixed) or
/// `resource:by_method`; a route without one does not compile.
macro_rules! route {
    ($path:expr, prefix, [$($m:ident),*], $body:ident, $acl:tt $(: $level:ident)?, $handler:path) => {
        Route { path: $path, prefix: true, methods: &[$(Method::$m),*], body: BodyLimit::$body,
                acl: acl_rule!($acl $(: $level)?), handler: |c, r| Box::pin($handler(c, r)) }
    };
    ($path:expr, exact, [$($m:ident),*], $body:ident, $acl:tt $(: $level:ident)?, $handler:path) => {
        Route { path: $path, prefix: false, methods: &[$(Method::$m),*], body: BodyLimit::$body,
                acl: acl_rule!($acl $(: $level)?), handler: |c, r| Box::pin($handler(c, r)) }
    };
}

macro_rules! acl_rule {
    (open) => {
        AclRule::Open
    };
    (handler) => {
        AclRule::InHandler
    };
    ($resource:ident : by_method) => {
        AclRule::ByMethod(acl_resource!($resource))
    };
    ($resource:ident : read) => {
        AclRule::Fixed(acl_resource!($resource), AccessLevel::Read)
    };
    ($resource:ident : write) => {
        AclRule::Fixed(acl_resource!($resource), AccessLevel::Write)
    };
}

macro_rules! acl_resource {
    (acl) => {
        Resource::Acl
    };
    (agent) => {
        Resource::Agent
    };
    (node) => {
        Resource::Node
    };
    (operator) => {
        Resource::Operator
    };
    (keyring) => {
        Resource::Keyring
    };
    (peering) => {
        Resource::Peering
    };
}

/// Every route of the API (Consul's `http_register.go`), one line each.
#[rustfmt::skip]
static ROUTES: &[Route] = &[
    route!("/v1/kv/", prefix, [GET, PUT, DELETE], KvValue, handler, kv::handle),
    route!("/v1/txn", exact, [PUT], Txn, handler, txn::handle),
    route!("/v1/snapshot", exact, [GET, PUT], Snapshot, acl:write, snapshot::handle),
    route!("/v1/agent/self", exact, [GET], Default, agent:read, agent::self_info),
    route!("/v1/agent/services", exact, [GET], Default, handler, agent::services),
    route!("/v1/agent/service/register", exact, [PUT], Default, handler, agent::register_service),
    route!("/v1/agent/service/deregister/", prefix, [PUT], Default, handler, agent::deregister_service),
    route!("/v1/agent/service/maintenance/", prefix, [PUT], Default, handler, agent::service_maintenance),
    route!("/v1/agent/service/", prefix, [GET], Default, handler, agent::service),
    route!("/v1/agent/maintenance", exact, [PUT], Default, node:write, agent::node_maintenance),
    route!("/v1/agent/health/service/id/", prefix, [GET], Default, handler, agent::health_by_id),
    route!("/v1/agent/health/service/name/", prefix, [GET], Default, handler, agent::health_by_name),
    route!("/v1/agent/checks", exact, [GET], Default, handler, agent::checks),
    route!("/v1/agent/check/register", exact, [PUT], Default, handler, agent::register_check),
    route!("/v1/agent/check/deregister/", prefix, [PUT], Default, handler, agent::deregister_check),
    route!("/v1/agent/check/pass/", prefix, [PUT, GET], Default, handler, agent::check_ttl),
    route!("/v1/agent/check/warn/", prefix, [PUT, GET], Default, handler, agent::check_ttl),
    route!("/v1/agent/check/fail/", prefix, [PUT, GET], Default, handler, agent::check_ttl),
    route!("/v1/agent/check/update/", prefix, [PUT], Default, handler, agent::check_update),
    route!("/v1/session/create", exact, [PUT], Default, handler, session::create),
    route!("/v1/session/destroy/", prefix, [PUT], Default, handler, session::destroy),
    route!("/v1/session/renew/", prefix, [PUT], Default, handler, session::renew),
    route!("/v1/session/info/", prefix, [GET], Default, handler, session::info),
    route!("/v1/session/node/", prefix, [GET], Default, handler, session::node),
    route!("/v1/session/list", exact, [GET], Default, handler, session::list),
    route!("/v1/status/leader", exact, [GET], Default, open, status::leader),
    route!("/v1/status/peers", exact, [GET], Default, open, status::peers),
    route!("/v1/catalog/datacenters", exact, [GET], Default, open, status::datacenters),
    route!("/v1/catalog/register", exact, [PUT], Default, handler, catalog::register),
    route!("/v1/catalog/deregister", exact, [PUT], Default, handler, catalog::deregister),
    route!("/v1/catalog/nodes", exact, [GET], Default, handler, catalog::nodes),
    route!("/v1/catalog/services", exact, [GET], Default, handler, catalog::services),
    route!("/v1/catalog/service/", prefix, [GET], Default, handler, catalog::service),
    route!("/v1/catalog/connect/", prefix, [GET], Default, handler, catalog::connect),
    route!("/v1/catalog/node/", prefix, [GET], Default, handler, catalog::node),
    route!("/v1/catalog/node-services/", prefix, [GET], Default, handler, catalog::node_services),
    route!("/v1/catalog/gateway-services/", prefix, [GET], Default, handler, catalog::gateway_services),
    route!("/v1/health/node/", prefix, [GET], Default, handler, health::node),
    route!("/v1/health/checks/", prefix, [GET], Default, handler, health::checks),
    route!("/v1/health/service/", prefix, [GET], Default, handler, health::service),
    route!("/v1/health/connect/", prefix, [GET], Default, handler, health::connect),
    route!("/v1/health/state/", prefix, [GET], Default, handler, health::state),
    route!("/v1/health/ingress/", prefix, [GET], Default, handler, health::ingress),
    route!("/v1/config", exact, [PUT], Default, handler, config::apply),
    route!("/v1/config/", prefix, [GET, DELETE], Default, handler, config::handle),
    route!("/v1/connect/intentions", exact, [GET, POST], Default, handler, intention::root),
    route!("/v1/connect/intentions/", prefix, [GET, PUT, DELETE], Default, handler, intention::handle),
    route!("/v1/agent/connect/authorize", exact, [POST], Default, handler, intention::authorize),
    route!("/v1/agent/members", exact, [GET], Default, handler, agent::members),
    route!("/v1/agent/join/", prefix, [PUT], Default, agent:write, agent::join),
    route!("/v1/agent/leave", exact, [PUT], Default, agent:write, agent::leave),
    route!("/v1/agent/force-leave/", prefix, [PUT], Default, operator:write, agent::force_leave),
    route!("/v1/agent/reload", exact, [PUT], Default, agent:write, agent::reload),
    route!("/v1/agent/metrics", exact, [GET], Default, agent:read, agent::metrics),
    route!("/v1/agent/metrics/stream", exact, [GET], Default, agent:read, agent::metrics_stream),
    route!("/v1/agent/monitor", exact, [GET], Default, agent:read, agent::monitor),
    route!("/v1/agent/token/", prefix, [PUT], Default, handler, agent::token),
    route!("/v1/event/fire/", prefix, [PUT], Default, handler, event::fire),
    route!("/v1/event/list", exact, [GET], Default, handler, event::list),
    route!("/v1/coordinate/datacenters", exact, [GET], Default, open, coordinate::datacenters),
    route!("/v1/coordinate/nodes", exact, [GET], Default, handler, coordinate::nodes),
    route!("/v1/coordinate/node/", prefix, [GET], Default, handler, coordinate::node),
    route!("/v1/coordinate/update", exact, [PUT], Default, handler, coordinate::update),
    route!("/v1/operator/raft/configuration", exact, [GET], Default, operator:read, operator::raft_configuration),
    route!("/v1/operator/raft/peer", exact, [DELETE], Default, operator:write, operator::raft_remove_peer),
    route!("/v1/operator/raft/transfer-leader", exact, [POST], Default, operator:write, operator::raft_transfer_leader),
    route!("/v1/operator/autopilot/configuration", exact, [GET, PUT], Default, operator:by_method, operator::autopilot_configuration),
    route!("/v1/operator/autopilot/health", exact, [GET], Default, operator:read, operator::autopilot_health),
    route!("/v1/operator/autopilot/state", exact, [GET], Default, operator:read, operator::autopilot_state),
    route!("/v1/connect/ca/roots", exact, [GET], Default, open, connect::roots),
    route!("/v1/connect/ca/configuration", exact, [GET, PUT], Default, operator:by_method, connect::configuration),
    route!("/v1/agent/connect/ca/roots", exact, [GET], Default, open, connect::roots),
    route!("/v1/agent/connect/ca/leaf/", prefix, [GET], Default, handler, connect::leaf),
    route!("/v1/acl/bootstrap", exact, [PUT], Default, open, acl::bootstrap),
    route!("/v1/acl/replication", exact, [GET], Default, handler, acl::replication),
    route!("/v1/acl/token", exact, [PUT], Default, handler, acl::token_create),
    // Reads by secret, resolving none up front: an unknown secret is its own 404.
    route!("/v1/acl/token/self", exact, [GET], Default, open, acl::token_self),
    route!("/v1/acl/token/", prefix, [GET, PUT, DELETE], Default, handler, acl::token_handle),
    route!("/v1/acl/tokens", exact, [GET], Default, handler, acl::token_list),
    route!("/v1/acl/policy", exact, [PUT], Default, handler, acl::policy_create),
    route!("/v1/acl/policy/", prefix, [GET, PUT, DELETE], Default, handler, acl::policy_handle),
    route!("/v1/acl/policies", exact, [GET], Default, handler, acl::policy_list),
    route!("/v1/acl/role", exact, [PUT], Default, handler, acl::role_create),
    route!("/v1/acl/role/", prefix, [GET, PUT, DELETE], Default, handler, acl::role_handle),
    route!("/v1/acl/roles", exact, [GET], Default, handler, acl::role_list),
    route!("/v1/acl/templated-policies", exact, [GET], Default, handler, acl::templated_list),
    route!("/v1/acl/templated-policy/", prefix, [GET, POST, PUT], Default, handler, acl::templated_handle),
    route!("/v1/acl/create", exact, [PUT], Default, handler, acl::legacy_write),
    route!("/v1/acl/update", exact, [PUT], Default, handler, acl::legacy_write),
    route!("/v1/acl/destroy/", prefix, [PUT], Default, handler, acl::legacy_destroy),
    route!("/v1/acl/info/", prefix, [GET], Default, handler, acl::legacy_info),
    route!("/v1/acl/clone/", prefix, [PUT], Default, handler, acl::legacy_clone),
    route!("/v1/acl/list", exact, [GET], Default, handler, acl::legacy_list),
    route!("/v1/query", exact, [GET, POST], Default, handler, prepared_query::root),
    route!("/v1/query/", prefix, [GET, PUT, DELETE], Default, handler, prepared_query::handle),
    route!("/v1/discovery-chain/", prefix, [GET, POST], Default, handler, discovery_chain::handle),
    route!("/v1/acl/auth-method", exact, [PUT], Default, handler, acl_auth::auth_method_create),
    route!("/v1/acl/auth-method/", prefix, [GET, PUT, DELETE], Default, handler, acl_auth::auth_method_handle),
    route!("/v1/acl/auth-methods", exact, [GET], Default, handler, acl_auth::auth_method_list),
    route!("/v1/acl/binding-rule", exact, [PUT], Default, handler, acl_auth::binding_rule_create),
    route!("/v1/acl/binding-rule/", prefix, [GET, PUT, DELETE], Default, handler, acl_auth::binding_rule_handle),
    route!("/v1/acl/binding-rules", exact, [GET], Default, handler, acl_auth::binding_rule_list),
    route!("/v1/acl/login", exact, [POST], Default, open, acl_auth::login),
    route!("/v1/acl/logout", exact, [POST], Default, handler, acl_auth::logout),
    route!("/v1/internal/ui/services", exact, [GET], Default, handler, ui::services),
    route!("/v1/internal/ui/exported-services", exact, [GET], Default, handler, ui::exported_services),
    route!("/v1/internal/ui/nodes", exact, [GET], Default, handler, ui::nodes),
    route!("/v1/internal/ui/node/", prefix, [GET], Default, handler, ui::node),
    route!("/v1/internal/ui/catalog-overview", exact, [GET], Default, operator:read, ui::catalog_overview),
    route!("/v1/internal/ui/gateway-services-nodes/", prefix, [GET], Default, handler, ui::gateway_services_nodes),
    route!("/v1/internal/ui/gateway-intentions/", prefix, [GET], Default, handler, ui::gateway_intentions),
    route!("/v1/internal/ui/service-topology/", prefix, [GET], Default, handler, ui::service_topology),
    route!("/v1/internal/ui/metrics-proxy/", prefix, [GET], Default, handler, ui::metrics_proxy),
    route!("/v1/agent/version", exact, [GET], Default, open, agent::version),
    route!("/v1/agent/host", exact, [GET], Default, operator:read, agent::host),
    route!("/v1/operator/keyring", exact, [GET, POST, PUT, DELETE], Default, keyring:by_method, operator::keyring),
    route!("/v1/operator/usage", exact, [GET], Default, operator:read, operator::usage),
    route!("/v1/operator/utilization", exact, [GET], Default, open, operator::utilization),
    route!("/v1/peerings", exact, [GET], Default, peering:read, peering::list),
    route!("/v1/peering/token", exact, [POST], Default, handler, peering::generate_token),
    route!("/v1/peering/establish", exact, [POST], Default, handler, peering::establish),
    route!("/v1/peering/", prefix, [GET, DELETE], Default, peering:by_method, peering::handle),
    route!("/v1/exported-services", exact, [GET], Default, handler, peering::exported_services),
    route!("/v1/imported-services", exact, [GET], Default, handler, peering::imported_services),
    route!("/v1/internal/acl/authorize", exact, [POST], Default, handler, internal::acl_authorize),
    route!("/v1/internal/service-virtual-ip", exact, [PUT], Default, handler, internal::assign_service_virtual_ips),
    route!("/v1/internal/federation-states", exact, [GET], Default, operator:read, federation_state::list),
    route!("/v1/internal/federation-states/mesh-gateways", exact, [GET], Default, handler, federation_state::mesh_gateways),
    route!("/v1/internal/federation-state/", prefix, [GET], Default, operator:read, federation_state::get),
];

/// A route as the ACL matrix test sees it: path, whether it is a prefix, its methods and
/// its ACL rule.
pub fn route_table() -> impl Iterator<Item = (&'static str, bool, &'static [Method], AclRule)> {
    ROUTES.iter().map(|r| (r.path, r.prefix, r.methods, r.acl))
}

fn find_route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| {
        if r.prefix {
            path.starts_with(r.path)
        } else {
            path == r.path
        }
    })
}

/// The peer address of the connection a request came on, put in its extensions by
/// `accept_loop`.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

async fn dispatch(
    ctx: Ctx,
    method: Method,
    raw_path: String,
    raw_query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: BodyStream,
) -> Reply {
    let path = percent_encoding::percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let Some(route) = find_route(&path) else {
        // Consul's mux sends a path no endpoint claims to its index handler, which no metrics
        // wrapper wraps: the refusal is not timed.
        let message = if path.contains("/v1/") {
            "Invalid URL path: not a recognized HTTP API endpoint\n"
        } else {
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
        };
        return ApiError::not_found(message).into();
    };
    // Consul's wrapper times every request routed to an endpoint, whatever refuses it after
    // (its method, its token, its query options, its body), under the method it came with.
    let started = std::time::Instant::now();
    let metrics = ctx.store.metrics().clone();
    let key = crate::metrics::Key::Http {
        method: method.clone(),
        route: route.path,
    };
    let reply = routed(ctx, route, method, path, raw_query, headers, remote, body).await;
    metrics.record_time(key, started.elapsed());
    reply
}

/// Answers a request for `route`: its method, its ACL rule, then its handler.
#[allow(clippy::too_many_arguments)]
async fn routed(
    ctx: Ctx,
    route: &'static Route,
    method: Method,
    path: String,
    raw_query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: BodyStream,
) -> Reply {
    let allow = || {
        let mut names = vec!["OPTIONS"];
        names.extend(route.methods.iter().map(Method::as_str));
        names.join(",")
    };
    if method == Method::OPTIONS {
        return Reply::empty(StatusCode::OK).header("Allow", allow());
    }
    if !route.methods.contains(&method) {
        return ApiError::method_not_allowed(method.as_str(), allow()).into();
    }
    let params = Params::parse(&raw_query);
    let caller = match route.acl {
        AclRule::Open => acl::Caller::unresolved(),
        _ => match acl::Caller::resolve(&ctx, &params, &headers) {
            Ok(caller) => caller,
            Err(err) => return err.into(),
        },
    };
    let fixed = match route.acl {
        AclRule::Fixed(resource, level) => Some((resource, level)),
        AclRule::ByMethod(resource) if method == Method::GET => Some((resource, AccessLevel::Read)),
        AclRule::ByMethod(resource) => Some((resource, AccessLevel::Write)),
        AclRule::Open | AclRule::InHandler => None,
    };
    if let Some((resource, level)) = fixed {
        let segment = match resource {
            Resource::Agent | Resource::Node => ctx.config.node_name.as_str(),
            _ => "",
        };
        if !caller.may(resource, level, segment) {
            return caller.denied(resource, level, segment).into();
        }
    }
    let request = Request {
        method,
        path,
        params,
        headers,
        caller,
        remote,
        body: Some(body),
        body_limit: route.body,
    };
    let pretty = request.params.has("pretty");
    let ctx_default_policy = ctx.config.acl.default_policy;
    let filtered = request.params.has("filter");
    let handling = (route.handler)(ctx, request);
    let outcome = if filtered {
        on_filter_runtime(handling).await
    } else {
        handling.await
    };
    let mut reply = match outcome {
        Ok(reply) => reply,
        Err(err) => err.into(),
    };
    if pretty && reply.content_type == Some("application/json") && !reply.body.ends_with(b"\n") {
        // Bodies built without the pretty flag (true/false answers) still end with a newline.
        reply.body.push(b'\n');
    }
    let default_policy = match ctx_default_policy {
        crate::acl::DefaultPolicy::Allow => "allow",
        crate::acl::DefaultPolicy::Deny => "deny",
    };
    reply.header("X-Consul-Default-ACL-Policy", default_policy)
}

/// Runs a request carrying a client-chosen `?filter=` on a runtime of its own: whatever CPU
/// its expression costs (each pass is also capped, see `Filter::apply`), the API's workers
/// stay free, and `/v1/status/leader` doesn't wait behind eight expensive filters. Its two
/// workers are all the threads filters get, so they also bound how much of the machine's CPU
/// filters take at once. The task ends with the request: a client that goes away cancels it.
async fn on_filter_runtime(handling: HandlerFuture) -> Result<Reply, ApiError> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("legate-filter")
            .enable_all()
            .build()
            .expect("the filter runtime starts")
    });
    struct AbortOnDrop(tokio::task::JoinHandle<Result<Reply, ApiError>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(runtime.spawn(handling));
    (&mut task.0)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("filtered request failed: {e}"))))
}

/// The warp filter serving the whole API.
pub fn api(
    ctx: Ctx,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .map(move || ctx.clone())
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::stream())
        .then(
            |ctx: Ctx,
             method: Method,
             full: warp::path::FullPath,
             query,
             headers: HeaderMap,
             peer: Option<Peer>,
             body| {
                let body: BodyStream = Box::pin(futures_util::StreamExt::map(
                    body,
                    |chunk: Result<_, warp::Error>| {
                        chunk.map(|mut buf| {
                            let len = bytes::Buf::remaining(&buf);
                            bytes::Buf::copy_to_bytes(&mut buf, len)
                        })
                    },
                ));
                let path = full.as_str().to_string();
                async move {
                    let config = &ctx.config;
                    if let Some(page) = crate::ui::serve(
                        config.ui,
                        &config.ui_content_path,
                        &method,
                        &path,
                        &headers,
                    ) {
                        return page.map(Into::into);
                    }
                    dispatch(ctx, method, path, query, headers, peer.map(|p| p.0), body)
                        .await
                        .into_response()
                }
            },
        )
}

/// Serves the API on `addr` until `shutdown` resolves. Returns the bound address.
pub async fn serve(
    ctx: Ctx,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let limiter = ctx.http_connections.clone();
    let service = warp::service(api(ctx));
    Ok((
        bound,
        tokio::spawn(accept_loop(listener, limiter, service, shutdown)),
    ))
}

/// Accepts connections until `shutdown`, then lets the open ones finish. Consul's HTTP API is
/// HTTP/1.1 (HTTP/2 only over TLS), so each connection is hyper's HTTP/1 connection directly
/// rather than warp's server, which first sniffs every connection for HTTP/2: that costs memory
/// on each of the thousands of connections parked in blocking queries.
async fn accept_loop<S>(
    listener: tokio::net::TcpListener,
    limiter: Arc<crate::agent::connlimit::ConnectionLimiter>,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    S: tower_service::Service<
            warp::http::Request<hyper::body::Incoming>,
            Response = warp::reply::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut pause = Duration::ZERO;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    pause = Duration::ZERO;
                    accepted
                }
                Err(e) => {
                    pause = accept_failed(e, pause).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(permit) = limiter.admit(peer.ip()) else {
            tokio::spawn(refuse(stream, peer));
            continue;
        };
        let service = PeerService {
            peer: Peer(peer),
            inner: service.clone(),
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper::service::service_fn(move |req| {
                    let mut service = service.clone();
                    async move {
                        if let Some(refusal) = unsupported_transfer_encoding(&req) {
                            return Ok(refusal);
                        }
                        futures_util::future::poll_fn(|cx| {
                            tower_service::Service::poll_ready(&mut service, cx)
                        })
                        .await?;
                        tower_service::Service::call(&mut service, req).await
                    }
                }),
            );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // Clients that give up on a blocking query close mid-request: routine, not an error.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// The API service, with each request marked with its connection's peer.
#[derive(Clone)]
struct PeerService<S> {
    peer: Peer,
    inner: S,
}

impl<S, B> tower_service::Service<warp::http::Request<B>> for PeerService<S>
where
    S: tower_service::Service<warp::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: warp::http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.inner.call(req)
    }
}

/// Go's server accepts only `Transfer-Encoding: chunked` and answers anything else (such as
/// `gzip, chunked`, whose body it cannot decode) with a 501 and closes the connection; hyper
/// would pass the still-encoded body on as if it were the content.
fn unsupported_transfer_encoding<B>(req: &warp::http::Request<B>) -> Option<warp::reply::Response> {
    let mut codings = req
        .headers()
        .get_all(warp::http::header::TRANSFER_ENCODING)
        .iter();
    let first = codings.next()?;
    if codings.next().is_none() && first.as_bytes().eq_ignore_ascii_case(b"chunked") {
        return None;
    }
    let mut response = warp::reply::Response::new("Unsupported transfer encoding".into());
    *response.status_mut() = StatusCode::NOT_IMPLEMENTED;
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        warp::http::header::CONNECTION,
        warp::http::HeaderValue::from_static("close"),
    );
    Some(response)
}

/// Answers a connection over its client's limit with a 429 and closes it, giving a client that
/// doesn't read at most 10 ms (as Consul).
async fn refuse(mut stream: tokio::net::TcpStream, peer: SocketAddr) {
    use tokio::io::AsyncWriteExt;
    tracing::warn!(
        client = %peer.ip(),
        "too many concurrent HTTP connections from one client (limits.http_max_conns_per_client)"
    );
    let write = stream.write_all(crate::agent::connlimit::TOO_MANY_CONNECTIONS);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(10), write).await;
}

/// A failed accept: a connection reset before it was accepted is nothing; anything else (most
/// likely too many open files) is logged and retried after a pause that doubles from 5 ms up
/// to a second while accepts keep failing (Go's server), so the listener recovers as soon as
/// descriptors free up without spinning meanwhile. Returns the next pause.
async fn accept_failed(e: std::io::Error, pause: Duration) -> Duration {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return pause;
    }
    let pause = (pause * 2).clamp(FIRST_ACCEPT_PAUSE, MAX_ACCEPT_PAUSE);
    tracing::error!(error = %e, retry_in = ?pause, "accepting an HTTP connection failed");
    tokio::time::sleep(pause).await;
    pause
}

const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(5);
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);
