//! The HTTP API. Every `/v1` route is listed once in `ROUTES` (path, methods, handler, body
//! limit); one warp filter hands each request to `dispatch`, which answers `OPTIONS` and wrong
//! methods as Consul does, resolves the caller's ACL token, enforces the route's fixed ACL
//! right (`AclRule`), reads the body within the route's limit, and renders errors.
//! Handlers parse and render; they call `store` domain functions and never touch tables.

pub mod acl;
pub mod agent;
pub mod blocking;
pub mod catalog;
pub mod config;
pub mod connect;
pub mod coordinate;
pub mod error;
pub mod event;
pub mod health;
pub mod intention;
pub mod internal;
pub mod kv;
pub mod operator;
pub mod peering;
pub mod query;
pub mod reply;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;

use bytes::Bytes;
use error::ApiError;
use futures_util::{Stream, StreamExt};
use query::{Defaults, Params, QueryOptions};
use reply::Reply;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
                datacenter: &self.config.datacenter,
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
    /// `acl::require`) and filters lists by what the token may read.
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
        let mut out = Vec::new();
        if let Some(mut stream) = self.body.take() {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request(format!("Failed to read body: {e}")))?;
                if (out.len() + chunk.len()) as u64 > limit {
                    return Err(too_large(None));
                }
                out.extend_from_slice(&chunk);
            }
        }
        Ok(out)
    }
}

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
    route!("/v1/agent/version", exact, [GET], Default, open, agent::version),
    route!("/v1/agent/host", exact, [GET], Default, operator:read, agent::host),
    route!("/v1/operator/keyring", exact, [GET, POST, PUT, DELETE], Default, keyring:by_method, operator::keyring),
    route!("/v1/operator/usage", exact, [GET], Default, operator:read, operator::usage),
    route!("/v1/operator/utilization", exact, [GET], Default, open, operator::utilization),
    route!("/v1/peerings", exact, [GET], Default, peering:read, peering::list),
    route!("/v1/peering/", prefix, [GET, DELETE], Default, peering:by_method, peering::handle),
    route!("/v1/exported-services", exact, [GET], Default, handler, peering::exported_services),
    route!("/v1/imported-services", exact, [GET], Default, handler, peering::imported_services),
    route!("/v1/internal/acl/authorize", exact, [POST], Default, handler, internal::acl_authorize),
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

async fn dispatch(
    ctx: Ctx,
    method: Method,
    raw_path: String,
    raw_query: String,
    headers: HeaderMap,
    body: BodyStream,
) -> Reply {
    let path = percent_encoding::percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let Some(route) = find_route(&path) else {
        let message = if path.contains("/v1/") {
            "Invalid URL path: not a recognized HTTP API endpoint\n"
        } else {
            "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n"
        };
        return ApiError::not_found(message).into();
    };
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
        body: Some(body),
        body_limit: route.body,
    };
    let pretty = request.params.has("pretty");
    let ctx_default_policy = ctx.config.acl.default_policy;
    let mut reply = match (route.handler)(ctx, request).await {
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
        .and(warp::body::stream())
        .then(
            |ctx, method, full: warp::path::FullPath, query, headers, body| {
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
                    dispatch(ctx, method, path, query, headers, body)
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
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(permit) = limiter.admit(peer.ip()) else {
            tokio::spawn(refuse(stream, peer));
            continue;
        };
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service.clone()),
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
/// likely too many open files) is logged and retried after a second, when some may have closed.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting an HTTP connection failed");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}
