//! The route inventory: every route of Consul 1.22's `agent/http_register.go`, each method of
//! it, and how Legate answers it. A route is either served (a probe calls it and gets an answer
//! from a handler, in Consul's shape where the probe names one), answered as Consul CE answers
//! when CE does not offer it, or still missing. The
//! test fails when a Consul route is in none of these, when a route Legate serves is not in
//! Consul's table (unless listed with the reason), when a probe gets the router's 404 or 405,
//! and when a missing route starts to be served without moving to `SERVED`.

use crate::common::TestAgent;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Consul 1.22's route table (`agent/http_register.go`): path (a trailing `/` takes the rest of
/// the path as an argument) and methods. `/v1/query/` is registered without methods (its
/// handler decides); its methods here are the ones the handler accepts.
#[rustfmt::skip]
const CONSUL_ROUTES: &[(&str, &[&str])] = &[
    ("/v1/acl/bootstrap", &["PUT"]),
    ("/v1/acl/login", &["POST"]),
    ("/v1/acl/logout", &["POST"]),
    ("/v1/acl/replication", &["GET"]),
    ("/v1/acl/policies", &["GET"]),
    ("/v1/acl/policy", &["PUT"]),
    ("/v1/acl/policy/", &["GET", "PUT", "DELETE"]),
    ("/v1/acl/policy/name/", &["GET"]),
    ("/v1/acl/roles", &["GET"]),
    ("/v1/acl/role", &["PUT"]),
    ("/v1/acl/role/name/", &["GET"]),
    ("/v1/acl/role/", &["GET", "PUT", "DELETE"]),
    ("/v1/acl/binding-rules", &["GET"]),
    ("/v1/acl/binding-rule", &["PUT"]),
    ("/v1/acl/binding-rule/", &["GET", "PUT", "DELETE"]),
    ("/v1/acl/auth-methods", &["GET"]),
    ("/v1/acl/auth-method", &["PUT"]),
    ("/v1/acl/auth-method/", &["GET", "PUT", "DELETE"]),
    ("/v1/acl/tokens", &["GET"]),
    ("/v1/acl/token", &["PUT"]),
    ("/v1/acl/token/self", &["GET"]),
    ("/v1/acl/token/", &["GET", "PUT", "DELETE"]),
    ("/v1/acl/templated-policies", &["GET"]),
    ("/v1/acl/templated-policy/name/", &["GET"]),
    ("/v1/acl/templated-policy/preview/", &["POST"]),
    ("/v1/agent/token/", &["PUT"]),
    ("/v1/agent/self", &["GET"]),
    ("/v1/agent/host", &["GET"]),
    ("/v1/agent/version", &["GET"]),
    ("/v1/agent/maintenance", &["PUT"]),
    ("/v1/agent/reload", &["PUT"]),
    ("/v1/agent/monitor", &["GET"]),
    ("/v1/agent/metrics", &["GET"]),
    ("/v1/agent/metrics/stream", &["GET"]),
    ("/v1/agent/services", &["GET"]),
    ("/v1/agent/service/", &["GET"]),
    ("/v1/agent/checks", &["GET"]),
    ("/v1/agent/members", &["GET"]),
    ("/v1/agent/join/", &["PUT"]),
    ("/v1/agent/leave", &["PUT"]),
    ("/v1/agent/force-leave/", &["PUT"]),
    ("/v1/agent/health/service/id/", &["GET"]),
    ("/v1/agent/health/service/name/", &["GET"]),
    ("/v1/agent/check/register", &["PUT"]),
    ("/v1/agent/check/deregister/", &["PUT"]),
    ("/v1/agent/check/pass/", &["PUT"]),
    ("/v1/agent/check/warn/", &["PUT"]),
    ("/v1/agent/check/fail/", &["PUT"]),
    ("/v1/agent/check/update/", &["PUT"]),
    ("/v1/agent/connect/authorize", &["POST"]),
    ("/v1/agent/connect/ca/roots", &["GET"]),
    ("/v1/agent/connect/ca/leaf/", &["GET"]),
    ("/v1/agent/service/register", &["PUT"]),
    ("/v1/agent/service/deregister/", &["PUT"]),
    ("/v1/agent/service/maintenance/", &["PUT"]),
    ("/v1/catalog/register", &["PUT"]),
    ("/v1/catalog/connect/", &["GET"]),
    ("/v1/catalog/deregister", &["PUT"]),
    ("/v1/catalog/datacenters", &["GET"]),
    ("/v1/catalog/nodes", &["GET"]),
    ("/v1/catalog/services", &["GET"]),
    ("/v1/catalog/service/", &["GET"]),
    ("/v1/catalog/node/", &["GET"]),
    ("/v1/catalog/node-services/", &["GET"]),
    ("/v1/catalog/gateway-services/", &["GET"]),
    ("/v1/config/", &["GET", "DELETE"]),
    ("/v1/config", &["PUT"]),
    ("/v1/connect/ca/configuration", &["GET", "PUT"]),
    ("/v1/connect/ca/roots", &["GET"]),
    ("/v1/connect/intentions", &["GET", "POST"]),
    ("/v1/connect/intentions/match", &["GET"]),
    ("/v1/connect/intentions/check", &["GET"]),
    ("/v1/connect/intentions/exact", &["GET", "PUT", "DELETE"]),
    ("/v1/connect/intentions/", &["GET", "PUT", "DELETE"]),
    ("/v1/coordinate/datacenters", &["GET"]),
    ("/v1/coordinate/nodes", &["GET"]),
    ("/v1/coordinate/node/", &["GET"]),
    ("/v1/coordinate/update", &["PUT"]),
    ("/v1/internal/federation-states", &["GET"]),
    ("/v1/internal/federation-states/mesh-gateways", &["GET"]),
    ("/v1/internal/federation-state/", &["GET"]),
    ("/v1/discovery-chain/", &["GET", "POST"]),
    ("/v1/exported-services", &["GET"]),
    ("/v1/imported-services", &["GET"]),
    ("/v1/event/fire/", &["PUT"]),
    ("/v1/event/list", &["GET"]),
    ("/v1/health/node/", &["GET"]),
    ("/v1/health/checks/", &["GET"]),
    ("/v1/health/state/", &["GET"]),
    ("/v1/health/service/", &["GET"]),
    ("/v1/health/connect/", &["GET"]),
    ("/v1/health/ingress/", &["GET"]),
    ("/v1/internal/ui/metrics-proxy/", &["GET"]),
    ("/v1/internal/ui/nodes", &["GET"]),
    ("/v1/internal/ui/node/", &["GET"]),
    ("/v1/internal/ui/services", &["GET"]),
    ("/v1/internal/ui/exported-services", &["GET"]),
    ("/v1/internal/ui/catalog-overview", &["GET"]),
    ("/v1/internal/ui/gateway-services-nodes/", &["GET"]),
    ("/v1/internal/ui/gateway-intentions/", &["GET"]),
    ("/v1/internal/ui/service-topology/", &["GET"]),
    ("/v1/internal/acl/authorize", &["POST"]),
    ("/v1/internal/service-virtual-ip", &["PUT"]),
    ("/v1/kv/", &["GET", "PUT", "DELETE"]),
    ("/v1/operator/raft/configuration", &["GET"]),
    ("/v1/operator/raft/transfer-leader", &["POST"]),
    ("/v1/operator/raft/peer", &["DELETE"]),
    ("/v1/operator/keyring", &["GET", "POST", "PUT", "DELETE"]),
    ("/v1/operator/usage", &["GET"]),
    ("/v1/operator/utilization", &["GET"]),
    ("/v1/operator/autopilot/configuration", &["GET", "PUT"]),
    ("/v1/operator/autopilot/health", &["GET"]),
    ("/v1/operator/autopilot/state", &["GET"]),
    ("/v1/peering/token", &["POST"]),
    ("/v1/peering/establish", &["POST"]),
    ("/v1/peering/", &["GET", "DELETE"]),
    ("/v1/peerings", &["GET"]),
    ("/v1/query", &["GET", "POST"]),
    ("/v1/query/", &["GET", "PUT", "DELETE"]),
    ("/v1/session/create", &["PUT"]),
    ("/v1/session/destroy/", &["PUT"]),
    ("/v1/session/renew/", &["PUT"]),
    ("/v1/session/info/", &["GET"]),
    ("/v1/session/node/", &["GET"]),
    ("/v1/session/list", &["GET"]),
    ("/v1/status/leader", &["GET"]),
    ("/v1/status/peers", &["GET"]),
    ("/v1/snapshot", &["GET", "PUT"]),
    ("/v1/txn", &["PUT"]),
];

/// What a probe's answer must look like, beyond coming from a handler.
#[derive(Clone, Copy)]
enum Shape {
    /// Any answer from a handler (errors included: the route exists).
    Handled,
    /// A 200 JSON object with at least these top-level keys.
    Object(&'static [&'static str]),
    /// A 200 JSON array (never `null`).
    Array,
    /// Exactly this status and body (Consul CE's answer).
    Exactly(u16, &'static str),
    /// A 200 whose body streams on (only the status is read).
    Streamed,
}

use Shape::{Array, Exactly, Handled, Object, Streamed};

/// Served routes: route, method, the request that probes it (path and query, body), and the
/// shape of the answer. The agent is a client of its own single server, ACLs off, seeded by
/// `seed` with the service `web` (check `web-ttl`), the key `k` and the event `deploy`.
#[rustfmt::skip]
const SERVED: &[(&str, &str, &str, &str, Shape)] = &[
    ("/v1/acl/bootstrap", "PUT", "/v1/acl/bootstrap", "", Handled),
    ("/v1/acl/replication", "GET", "/v1/acl/replication", "", Handled),
    ("/v1/acl/policies", "GET", "/v1/acl/policies", "", Handled),
    ("/v1/acl/policy", "PUT", "/v1/acl/policy", r#"{"Name":"p"}"#, Handled),
    ("/v1/acl/policy/", "GET", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", "", Handled),
    ("/v1/acl/policy/", "PUT", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", r#"{"Name":"p"}"#, Handled),
    ("/v1/acl/policy/", "DELETE", "/v1/acl/policy/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/acl/policy/name/", "GET", "/v1/acl/policy/name/global-management", "", Handled),
    ("/v1/acl/roles", "GET", "/v1/acl/roles", "", Handled),
    ("/v1/acl/role", "PUT", "/v1/acl/role", r#"{"Name":"r"}"#, Handled),
    ("/v1/acl/role/name/", "GET", "/v1/acl/role/name/r", "", Handled),
    ("/v1/acl/role/", "GET", "/v1/acl/role/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/acl/role/", "PUT", "/v1/acl/role/00000000-0000-0000-0000-000000000009", r#"{"Name":"r"}"#, Handled),
    ("/v1/acl/role/", "DELETE", "/v1/acl/role/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/acl/tokens", "GET", "/v1/acl/tokens", "", Handled),
    ("/v1/acl/token", "PUT", "/v1/acl/token", "{}", Handled),
    ("/v1/acl/token/self", "GET", "/v1/acl/token/self", "", Handled),
    ("/v1/acl/token/", "GET", "/v1/acl/token/00000000-0000-0000-0000-000000000002", "", Handled),
    ("/v1/acl/token/", "PUT", "/v1/acl/token/00000000-0000-0000-0000-000000000002", "{}", Handled),
    ("/v1/acl/token/", "DELETE", "/v1/acl/token/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/acl/templated-policies", "GET", "/v1/acl/templated-policies", "", Handled),
    ("/v1/acl/templated-policy/name/", "GET", "/v1/acl/templated-policy/name/builtin/service", "", Handled),
    ("/v1/acl/templated-policy/preview/", "POST", "/v1/acl/templated-policy/preview/builtin/service", r#"{"Name":"web"}"#, Handled),
    ("/v1/agent/token/", "PUT", "/v1/agent/token/default", r#"{"Token":"t"}"#, Handled),
    ("/v1/agent/self", "GET", "/v1/agent/self", "", Object(&["Config", "DebugConfig", "Coord", "Member", "Stats", "Meta"])),
    ("/v1/agent/host", "GET", "/v1/agent/host", "", Object(&["Memory", "CPU", "Host", "Disk", "CollectionTime", "Errors"])),
    ("/v1/agent/version", "GET", "/v1/agent/version", "", Object(&["SHA", "BuildDate", "HumanVersion", "FIPS"])),
    ("/v1/agent/maintenance", "PUT", "/v1/agent/maintenance?enable=false", "", Handled),
    ("/v1/agent/reload", "PUT", "/v1/agent/reload", "", Handled),
    // The stream itself is tested in agent_ops; here the level check answers at once.
    ("/v1/agent/monitor", "GET", "/v1/agent/monitor?loglevel=bogus", "", Exactly(400, "Unknown log level: bogus")),
    ("/v1/agent/metrics/stream", "GET", "/v1/agent/metrics/stream", "", Streamed),
    ("/v1/agent/metrics", "GET", "/v1/agent/metrics", "", Object(&["Timestamp", "Gauges", "Points", "Counters", "Samples"])),
    ("/v1/agent/services", "GET", "/v1/agent/services", "", Object(&["web"])),
    ("/v1/agent/service/", "GET", "/v1/agent/service/web", "", Object(&["ID", "Service", "Tags", "Port", "ContentHash"])),
    ("/v1/agent/checks", "GET", "/v1/agent/checks", "", Object(&["web-ttl"])),
    ("/v1/agent/members", "GET", "/v1/agent/members", "", Array),
    ("/v1/agent/join/", "PUT", "/v1/agent/join/127.0.0.1:1", "", Handled),
    ("/v1/agent/force-leave/", "PUT", "/v1/agent/force-leave/nobody", "", Handled),
    ("/v1/agent/health/service/id/", "GET", "/v1/agent/health/service/id/web", "", Handled),
    ("/v1/agent/health/service/name/", "GET", "/v1/agent/health/service/name/web", "", Handled),
    ("/v1/agent/check/register", "PUT", "/v1/agent/check/register", r#"{"Name":"c2","TTL":"10s"}"#, Handled),
    ("/v1/agent/check/deregister/", "PUT", "/v1/agent/check/deregister/c2", "", Handled),
    ("/v1/agent/check/pass/", "PUT", "/v1/agent/check/pass/web-ttl", "", Handled),
    ("/v1/agent/check/warn/", "PUT", "/v1/agent/check/warn/web-ttl", "", Handled),
    ("/v1/agent/check/fail/", "PUT", "/v1/agent/check/fail/web-ttl", "", Handled),
    ("/v1/agent/check/update/", "PUT", "/v1/agent/check/update/web-ttl", r#"{"Status":"passing"}"#, Handled),
    ("/v1/agent/connect/authorize", "POST", "/v1/agent/connect/authorize", r#"{"Target":"web","ClientCertURI":"spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/api"}"#, Handled),
    ("/v1/agent/connect/ca/roots", "GET", "/v1/agent/connect/ca/roots", "", Handled),
    ("/v1/agent/connect/ca/leaf/", "GET", "/v1/agent/connect/ca/leaf/web", "", Handled),
    ("/v1/agent/service/register", "PUT", "/v1/agent/service/register", r#"{"Name":"api"}"#, Handled),
    ("/v1/agent/service/deregister/", "PUT", "/v1/agent/service/deregister/api", "", Handled),
    ("/v1/agent/service/maintenance/", "PUT", "/v1/agent/service/maintenance/web?enable=false", "", Handled),
    ("/v1/catalog/register", "PUT", "/v1/catalog/register", r#"{"Node":"n2","Address":"10.0.0.2"}"#, Handled),
    ("/v1/catalog/connect/", "GET", "/v1/catalog/connect/web", "", Array),
    ("/v1/catalog/deregister", "PUT", "/v1/catalog/deregister", r#"{"Node":"n2"}"#, Handled),
    ("/v1/catalog/datacenters", "GET", "/v1/catalog/datacenters", "", Array),
    ("/v1/catalog/nodes", "GET", "/v1/catalog/nodes", "", Array),
    ("/v1/catalog/services", "GET", "/v1/catalog/services", "", Object(&["web"])),
    ("/v1/catalog/service/", "GET", "/v1/catalog/service/web", "", Array),
    ("/v1/catalog/node/", "GET", "/v1/catalog/node/test-node", "", Object(&["Node", "Services"])),
    ("/v1/catalog/node-services/", "GET", "/v1/catalog/node-services/test-node", "", Object(&["Node", "Services"])),
    // Consul returns the RPC's nil slice for a gateway without services: `null`, not `[]`.
    ("/v1/catalog/gateway-services/", "GET", "/v1/catalog/gateway-services/gw", "", Exactly(200, "null")),
    ("/v1/config/", "GET", "/v1/config/service-defaults", "", Array),
    ("/v1/config/", "DELETE", "/v1/config/service-defaults/web", "", Handled),
    ("/v1/config", "PUT", "/v1/config", r#"{"Kind":"service-defaults","Name":"web","Protocol":"http"}"#, Handled),
    ("/v1/connect/ca/configuration", "GET", "/v1/connect/ca/configuration", "", Handled),
    ("/v1/connect/ca/configuration", "PUT", "/v1/connect/ca/configuration", r#"{"Provider":"consul","Config":{}}"#, Handled),
    ("/v1/connect/ca/roots", "GET", "/v1/connect/ca/roots", "", Handled),
    ("/v1/connect/intentions", "GET", "/v1/connect/intentions", "", Array),
    ("/v1/connect/intentions", "POST", "/v1/connect/intentions", r#"{"SourceName":"api","DestinationName":"web","Action":"allow"}"#, Handled),
    ("/v1/connect/intentions/match", "GET", "/v1/connect/intentions/match?by=destination&name=web", "", Handled),
    ("/v1/connect/intentions/check", "GET", "/v1/connect/intentions/check?source=api&destination=web", "", Handled),
    ("/v1/connect/intentions/exact", "GET", "/v1/connect/intentions/exact?source=api&destination=web", "", Handled),
    ("/v1/connect/intentions/exact", "PUT", "/v1/connect/intentions/exact?source=db&destination=web", r#"{"Action":"deny"}"#, Handled),
    ("/v1/connect/intentions/exact", "DELETE", "/v1/connect/intentions/exact?source=db&destination=web", "", Handled),
    ("/v1/connect/intentions/", "GET", "/v1/connect/intentions/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/connect/intentions/", "PUT", "/v1/connect/intentions/00000000-0000-0000-0000-000000000009", r#"{"SourceName":"x","DestinationName":"web","Action":"deny"}"#, Handled),
    ("/v1/connect/intentions/", "DELETE", "/v1/connect/intentions/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/coordinate/datacenters", "GET", "/v1/coordinate/datacenters", "", Array),
    ("/v1/coordinate/nodes", "GET", "/v1/coordinate/nodes", "", Array),
    ("/v1/coordinate/node/", "GET", "/v1/coordinate/node/test-node", "", Handled),
    ("/v1/coordinate/update", "PUT", "/v1/coordinate/update", r#"{"Node":"test-node","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}"#, Handled),
    ("/v1/exported-services", "GET", "/v1/exported-services", "", Array),
    ("/v1/imported-services", "GET", "/v1/imported-services", "", Array),
    ("/v1/event/fire/", "PUT", "/v1/event/fire/deploy", "", Object(&["ID", "Name", "Payload", "NodeFilter", "ServiceFilter", "TagFilter", "Version", "LTime"])),
    ("/v1/event/list", "GET", "/v1/event/list", "", Array),
    ("/v1/health/node/", "GET", "/v1/health/node/test-node", "", Array),
    ("/v1/health/checks/", "GET", "/v1/health/checks/web", "", Array),
    ("/v1/health/state/", "GET", "/v1/health/state/any", "", Array),
    ("/v1/health/service/", "GET", "/v1/health/service/web", "", Array),
    ("/v1/health/connect/", "GET", "/v1/health/connect/web", "", Array),
    ("/v1/health/ingress/", "GET", "/v1/health/ingress/web", "", Array),
    // ACLs are off on the probed agent: Consul's answer then.
    ("/v1/internal/acl/authorize", "POST", "/v1/internal/acl/authorize", "[]", Exactly(401, "ACL support disabled")),
    ("/v1/kv/", "GET", "/v1/kv/k", "", Array),
    ("/v1/kv/", "PUT", "/v1/kv/k2", "v", Handled),
    ("/v1/kv/", "DELETE", "/v1/kv/k2", "", Handled),
    ("/v1/operator/raft/configuration", "GET", "/v1/operator/raft/configuration", "", Object(&["Servers", "Index"])),
    ("/v1/operator/raft/transfer-leader", "POST", "/v1/operator/raft/transfer-leader", "", Handled),
    ("/v1/operator/raft/peer", "DELETE", "/v1/operator/raft/peer?id=nope", "", Handled),
    ("/v1/operator/keyring", "GET", "/v1/operator/keyring", "", Handled),
    ("/v1/operator/keyring", "POST", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#, Handled),
    ("/v1/operator/keyring", "PUT", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#, Handled),
    ("/v1/operator/keyring", "DELETE", "/v1/operator/keyring", r#"{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}"#, Handled),
    ("/v1/operator/usage", "GET", "/v1/operator/usage", "", Object(&["Usage"])),
    ("/v1/operator/utilization", "GET", "/v1/operator/utilization", "", Exactly(404, "operator utilization requires Consul Enterprise")),
    ("/v1/operator/autopilot/configuration", "GET", "/v1/operator/autopilot/configuration", "", Object(&["CleanupDeadServers", "LastContactThreshold", "MaxTrailingLogs", "MinQuorum", "ServerStabilizationTime", "RedundancyZoneTag", "DisableUpgradeMigration", "UpgradeVersionTag", "CreateIndex", "ModifyIndex"])),
    ("/v1/operator/autopilot/configuration", "PUT", "/v1/operator/autopilot/configuration", r#"{"CleanupDeadServers":true}"#, Handled),
    ("/v1/operator/autopilot/health", "GET", "/v1/operator/autopilot/health", "", Object(&["Healthy", "FailureTolerance", "Servers"])),
    ("/v1/operator/autopilot/state", "GET", "/v1/operator/autopilot/state", "", Object(&["Healthy", "FailureTolerance", "OptimisticFailureTolerance", "Servers", "Leader", "Voters"])),
    ("/v1/peering/", "GET", "/v1/peering/east", "", Exactly(404, "Peering not found for \"east\"")),
    ("/v1/peering/", "DELETE", "/v1/peering/east", "", Exactly(200, "")),
    ("/v1/peerings", "GET", "/v1/peerings", "", Array),
    // Legate serves no gRPC: Consul's refusal when it cannot make a token, and its check of
    // a token that is not base64.
    ("/v1/peering/token", "POST", "/v1/peering/token", r#"{"PeerName":"east"}"#, Exactly(500, "rpc error: code = Unknown desc = connect.enabled must be set to true in the server's configuration when generating peering tokens")),
    ("/v1/peering/establish", "POST", "/v1/peering/establish", r#"{"PeerName":"east","PeeringToken":"%%"}"#, Exactly(500, "rpc error: code = Unknown desc = failed to decode token: illegal base64 data at input byte 0")),
    ("/v1/internal/federation-states", "GET", "/v1/internal/federation-states", "", Array),
    ("/v1/internal/federation-states/mesh-gateways", "GET", "/v1/internal/federation-states/mesh-gateways", "", Exactly(200, "{}")),
    ("/v1/internal/federation-state/", "GET", "/v1/internal/federation-state/dc1", "", Object(&["State", "Index", "KnownLeader"])),
    ("/v1/internal/service-virtual-ip", "PUT", "/v1/internal/service-virtual-ip", r#"{"Service":"web","ManualVIPs":["10.0.0.1"]}"#, Exactly(200, r#"{"Found":false,"UnassignedFrom":null}"#)),
    ("/v1/session/create", "PUT", "/v1/session/create", "", Object(&["ID"])),
    ("/v1/session/destroy/", "PUT", "/v1/session/destroy/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/session/renew/", "PUT", "/v1/session/renew/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/session/info/", "GET", "/v1/session/info/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/session/node/", "GET", "/v1/session/node/test-node", "", Array),
    ("/v1/session/list", "GET", "/v1/session/list", "", Array),
    ("/v1/status/leader", "GET", "/v1/status/leader", "", Handled),
    ("/v1/status/peers", "GET", "/v1/status/peers", "", Array),
    ("/v1/snapshot", "GET", "/v1/snapshot", "", Handled),
    ("/v1/snapshot", "PUT", "/v1/snapshot", "not a snapshot", Handled),
    ("/v1/txn", "PUT", "/v1/txn", r#"[{"KV":{"Verb":"get","Key":"k"}}]"#, Handled),
    ("/v1/acl/login", "POST", "/v1/acl/login", r#"{"AuthMethod":"m","BearerToken":"x"}"#, Exactly(401, "ACL support disabled")),
    ("/v1/acl/logout", "POST", "/v1/acl/logout", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/binding-rules", "GET", "/v1/acl/binding-rules", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/binding-rule", "PUT", "/v1/acl/binding-rule", "{}", Exactly(401, "ACL support disabled")),
    ("/v1/acl/binding-rule/", "GET", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/binding-rule/", "PUT", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", "{}", Exactly(401, "ACL support disabled")),
    ("/v1/acl/binding-rule/", "DELETE", "/v1/acl/binding-rule/00000000-0000-0000-0000-000000000009", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/auth-methods", "GET", "/v1/acl/auth-methods", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/auth-method", "PUT", "/v1/acl/auth-method", "{}", Exactly(401, "ACL support disabled")),
    ("/v1/acl/auth-method/", "GET", "/v1/acl/auth-method/m", "", Exactly(401, "ACL support disabled")),
    ("/v1/acl/auth-method/", "PUT", "/v1/acl/auth-method/m", "{}", Exactly(401, "ACL support disabled")),
    ("/v1/acl/auth-method/", "DELETE", "/v1/acl/auth-method/m", "", Exactly(401, "ACL support disabled")),
    ("/v1/query", "POST", "/v1/query", r#"{"Name":"q","Service":{"Service":"web"}}"#, Object(&["ID"])),
    ("/v1/query", "GET", "/v1/query", "", Array),
    ("/v1/query/", "GET", "/v1/query/q/execute", "", Object(&["Service", "Nodes", "DNS", "Datacenter", "Failovers"])),
    ("/v1/query/", "PUT", "/v1/query/00000000-0000-0000-0000-000000000009", r#"{"Service":{"Service":"web"}}"#, Handled),
    ("/v1/query/", "DELETE", "/v1/query/00000000-0000-0000-0000-000000000009", "", Handled),
    ("/v1/discovery-chain/", "GET", "/v1/discovery-chain/web", "", Object(&["Chain"])),
    ("/v1/discovery-chain/", "POST", "/v1/discovery-chain/web", "{}", Object(&["Chain"])),
    ("/v1/internal/ui/services", "GET", "/v1/internal/ui/services", "", Array),
    ("/v1/internal/ui/exported-services", "GET", "/v1/internal/ui/exported-services", "", Array),
    ("/v1/internal/ui/nodes", "GET", "/v1/internal/ui/nodes", "", Array),
    ("/v1/internal/ui/node/", "GET", "/v1/internal/ui/node/test-node", "", Object(&["Node", "Address", "Services", "Checks"])),
    ("/v1/internal/ui/catalog-overview", "GET", "/v1/internal/ui/catalog-overview", "", Object(&["Nodes", "Services", "Checks"])),
    ("/v1/internal/ui/gateway-services-nodes/", "GET", "/v1/internal/ui/gateway-services-nodes/gw", "", Handled),
    ("/v1/internal/ui/gateway-intentions/", "GET", "/v1/internal/ui/gateway-intentions/gw", "", Handled),
    ("/v1/internal/ui/service-topology/", "GET", "/v1/internal/ui/service-topology/web", "", Handled),
    ("/v1/internal/ui/metrics-proxy/", "GET", "/v1/internal/ui/metrics-proxy/x", "", Handled),
    // Last: it stops the agent.
    ("/v1/agent/leave", "PUT", "/v1/agent/leave", "", Handled),
];

/// Enterprise-only routes (registered only in Consul Enterprise's `http_register_ent.go`) and
/// what Consul CE answers for them: its router's 404 for a path it doesn't know.
#[rustfmt::skip]
const ENTERPRISE_ONLY: &[(&str, &str)] = &[
    ("GET", "/v1/namespaces"),
    ("PUT", "/v1/namespace"),
    ("GET", "/v1/namespace/default"),
    ("GET", "/v1/partitions"),
    ("PUT", "/v1/partition"),
    ("GET", "/v1/partition/default"),
    ("GET", "/v1/operator/license"),
    ("PUT", "/v1/operator/license"),
    ("GET", "/v1/operator/segment"),
];

/// Routes Legate serves that Consul 1.22 doesn't have, or methods it adds, with why.
#[rustfmt::skip]
const LEGATE_ONLY: &[(&str, &str, &str)] = &[
    ("/v1/acl/create", "PUT", "legacy ACL API (removed in Consul 1.11), kept by the ACL work"),
    ("/v1/acl/update", "PUT", "legacy ACL API"),
    ("/v1/acl/destroy/", "PUT", "legacy ACL API"),
    ("/v1/acl/info/", "GET", "legacy ACL API"),
    ("/v1/acl/clone/", "PUT", "legacy ACL API"),
    ("/v1/acl/list", "GET", "legacy ACL API"),
    ("/v1/acl/templated-policy/", "PUT", "the preview also takes PUT (Consul: POST only)"),
    ("/v1/agent/check/pass/", "GET", "TTL updates by GET, as Consul before 1.0"),
    ("/v1/agent/check/warn/", "GET", "TTL updates by GET, as Consul before 1.0"),
    ("/v1/agent/check/fail/", "GET", "TTL updates by GET, as Consul before 1.0"),
];

/// The router's answer to a path it doesn't know.
const UNKNOWN_ROUTE: &str = "Invalid URL path: not a recognized HTTP API endpoint\n";

#[test]
fn every_consul_route_is_accounted_for() {
    let mut missing = Vec::new();
    for (route, methods) in CONSUL_ROUTES {
        for method in *methods {
            if !SERVED.iter().any(|(r, m, ..)| r == route && m == method) {
                missing.push(format!("{method} {route}"));
            }
        }
    }
    assert!(missing.is_empty(), "Consul routes not served: {missing:?}");
    let consul: BTreeSet<(&str, &str)> = CONSUL_ROUTES
        .iter()
        .flat_map(|(r, ms)| ms.iter().map(move |m| (*r, *m)))
        .collect();
    for (route, method, ..) in SERVED {
        assert!(
            consul.contains(&(*route, *method)),
            "{method} {route} is not Consul's"
        );
    }
}

/// Whether Legate's route `path` (a prefix route when `prefix`) covers Consul's `route`.
fn covers(path: &str, prefix: bool, route: &str) -> bool {
    path == route || (prefix && route.starts_with(path))
}

#[test]
fn every_legate_route_is_consuls_or_listed_with_a_reason() {
    let mut extra = Vec::new();
    for (path, prefix, methods, _) in legate::http::route_table() {
        for method in methods {
            let consul = CONSUL_ROUTES
                .iter()
                .any(|(route, ms)| covers(path, prefix, route) && ms.contains(&method.as_str()));
            let listed = LEGATE_ONLY
                .iter()
                .any(|(r, m, _)| *r == path && *m == method.as_str());
            if !consul && !listed {
                extra.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        extra.is_empty(),
        "routes Consul 1.22 doesn't have: {extra:?}"
    );
}

/// Sends `body` with `method` to `path`; the status and the body's text.
pub(crate) async fn request(a: &TestAgent, method: &str, path: &str, body: &str) -> (u16, String) {
    let resp = a
        .http
        .request(method.parse::<Method>().unwrap(), a.url(path))
        .body(body.to_string())
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The data the probes read: a service with a TTL check, a key and an event.
async fn seed(a: &TestAgent) {
    a.put_ok(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 80, "Check": {"CheckID": "web-ttl", "TTL": "30s"}})
            .to_string(),
    )
    .await;
    a.put_ok("/v1/kv/k", "v").await;
    a.put_ok("/v1/event/fire/deploy", "").await;
}

#[tokio::test]
async fn every_served_route_answers_from_its_handler_in_consuls_shape() {
    let a = TestAgent::start_with(|f| f.server = Some(true)).await;
    seed(&a).await;
    let mut wrong = Vec::new();
    for (route, method, path, body, shape) in SERVED {
        if let Streamed = shape {
            let resp = a.http.get(a.url(path)).send().await.unwrap();
            if resp.status() != 200 {
                wrong.push(format!("not streamed: {method} {path}: {}", resp.status()));
            }
            continue;
        }
        let (status, text) = request(&a, method, path, body).await;
        let what = format!("{method} {path} ({route}): {status} {text}");
        if status == 405 || (status == 404 && text == UNKNOWN_ROUTE) {
            wrong.push(format!("not routed: {what}"));
            continue;
        }
        let json = || serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let fits = match shape {
            Handled => true,
            Array => status == 200 && json().is_array(),
            Object(keys) => {
                let v = json();
                status == 200 && keys.iter().all(|k| v.get(k).is_some())
            }
            Exactly(s, t) => status == *s && text == *t,
            Streamed => unreachable!("streamed probes are read above"),
        };
        if !fits {
            wrong.push(format!("not Consul's shape: {what}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn enterprise_routes_answer_ces_unknown_route_404() {
    let a = TestAgent::start().await;
    for (method, path) in ENTERPRISE_ONLY {
        let (status, text) = request(&a, method, path, "").await;
        assert_eq!(
            (status, text.as_str()),
            (404, UNKNOWN_ROUTE),
            "{method} {path}"
        );
    }
}

/// Reads that take `?peer=`: with no peering, each answers as for a peer that has nothing.
#[rustfmt::skip]
const PEER_READS: &[(&str, &str)] = &[
    ("/v1/catalog/nodes?peer=east", "[]"),
    ("/v1/catalog/services?peer=east", "{}"),
    ("/v1/catalog/service/web?peer=east", "[]"),
    ("/v1/catalog/node/test-node?peer=east", "null"),
    ("/v1/catalog/node-services/test-node?peer=east", r#"{"Node":null,"Services":null}"#),
    ("/v1/health/node/test-node?peer=east", "[]"),
    ("/v1/health/checks/web?peer=east", "[]"),
    ("/v1/health/service/web?peer=east", "[]"),
    ("/v1/health/state/any?peer=east", "[]"),
];

#[tokio::test]
async fn a_named_peer_narrows_catalog_and_health_reads_to_nothing() {
    let a = TestAgent::start().await;
    seed(&a).await;
    for (path, empty) in PEER_READS {
        let unpeered = path.trim_end_matches("?peer=east");
        let (status, all) = request(&a, "GET", unpeered, "").await;
        assert_eq!(status, 200, "{unpeered}");
        assert_ne!(all, *empty, "{unpeered} has data to narrow");
        assert_eq!(
            request(&a, "GET", path, "").await,
            (200, empty.to_string()),
            "{path}"
        );
    }
}

/// Consul's handlers that answer from the agent itself and never read `?dc` (agent_endpoint.go
/// parses it only for the CA roots and leaf certificates; event_endpoint.go's list, the keyring
/// (asked of every datacenter at once), the UI's metrics proxy and the datacenter lists
/// neither). Every other route forwards by it.
fn answered_locally(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix("/v1/agent/") {
        Some(rest) => rest != "connect/ca/roots" && !rest.starts_with("connect/ca/leaf/"),
        None => {
            path.starts_with("/v1/internal/ui/metrics-proxy/")
                || [
                    "/v1/event/list",
                    "/v1/operator/keyring",
                    "/v1/catalog/datacenters",
                    "/v1/coordinate/datacenters",
                ]
                .contains(&path)
        }
    }
}

#[tokio::test]
async fn another_datacenter_has_no_path() {
    let a = TestAgent::start().await;
    seed(&a).await;
    let (mut forwarded, mut local) = (0, 0);
    for (_, method, path, body, shape) in SERVED {
        // With ACLs disabled the ACL routes answer that first, whatever the datacenter (as
        // Consul's `checkACLDisabled` comes before its parse), as CE does for the routes only
        // Enterprise offers; a stream never ends.
        let refused_first = path.starts_with("/v1/acl/")
            || matches!(shape, Exactly(404, text) if text.ends_with("requires Consul Enterprise"));
        if *method != "GET" || refused_first || matches!(shape, Streamed) {
            continue;
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let other = format!("{path}{sep}dc=dc2");
        let (status, text) = request(&a, method, &other, body).await;
        if answered_locally(path) {
            let (plain, _) = request(&a, method, path, body).await;
            assert_eq!(
                status, plain,
                "{other} answers locally, ignoring ?dc: {text}"
            );
            local += 1;
        } else {
            assert_eq!(
                (status, text.as_str()),
                (500, "No path to datacenter"),
                "{other}"
            );
            forwarded += 1;
        }
    }
    assert!(
        forwarded >= 50 && local >= 15,
        "probed {forwarded} forwarded, {local} local"
    );
    // Writes forwarded to another datacenter's servers fail the same way, changing nothing.
    let before = a.store().read().unwrap().global_index().unwrap();
    for (method, path, body) in WRITES_TO_DC2 {
        assert_eq!(
            request(&a, method, path, body).await,
            (500, "No path to datacenter".to_string()),
            "{method} {path}"
        );
    }
    assert_eq!(a.store().read().unwrap().global_index().unwrap(), before);
}

#[rustfmt::skip]
const WRITES_TO_DC2: &[(&str, &str, &str)] = &[
    ("PUT", "/v1/kv/k?dc=dc2", "v"),
    ("PUT", "/v1/txn?dc=dc2", r#"[{"KV":{"Verb":"set","Key":"t","Value":"eA=="}}]"#),
    ("PUT", "/v1/session/create?dc=dc2", ""),
    ("PUT", "/v1/event/fire/deploy?dc=dc2", ""),
    ("PUT", "/v1/catalog/register?dc=dc2", r#"{"Node":"n2","Address":"10.0.0.2"}"#),
    ("PUT", "/v1/config?dc=dc2", r#"{"Kind":"service-defaults","Name":"web","Protocol":"http"}"#),
    ("PUT", "/v1/coordinate/update?dc=dc2", r#"{"Node":"test-node","Coord":{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}}"#),
    ("GET", "/v1/snapshot?dc=dc2", ""),
];
