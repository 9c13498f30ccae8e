//! Schemas of Consul's request structs for `gojson::decode`: which keys a body may hold, their
//! Go types (for Go's error texts) and their snake_case aliases. Shared by the catalog endpoints
//! and by service and check definitions (agent API and config files).

use crate::gojson::{aliased, field, Kind, Schema, INT, PORT, STRING, UINT64};

pub static LOCALITY: Schema = Schema {
    name: "Locality",
    go_type: "structs.Locality",
    fields: &[field("Region", STRING), field("Zone", STRING)],
    base: None,
    strict: true,
};

pub static WEIGHTS: Schema = Schema {
    name: "Weights",
    go_type: "structs.Weights",
    fields: &[field("Passing", INT), field("Warning", INT)],
    base: None,
    strict: true,
};

pub static SERVICE_ADDRESS: Schema = Schema {
    name: "ServiceAddress",
    go_type: "structs.ServiceAddress",
    fields: &[field("Address", STRING), field("Port", PORT)],
    base: None,
    strict: true,
};

/// `ConnectProxyConfig`: strict (`lib.UnmarshalJSON`), with Consul's snake_case aliases; the
/// nested structures are kept as they are.
pub static PROXY: Schema = Schema {
    name: "ConnectProxyConfig",
    go_type: "structs.ConnectProxyConfig",
    fields: &[
        aliased("EnvoyExtensions", &["envoy_extensions"], Kind::Any),
        aliased(
            "DestinationServiceName",
            &["destination_service_name"],
            STRING,
        ),
        aliased("DestinationServiceID", &["destination_service_id"], STRING),
        aliased("LocalServiceAddress", &["local_service_address"], STRING),
        aliased("LocalServicePort", &["local_service_port"], INT),
        aliased(
            "LocalServiceSocketPath",
            &["local_service_socket_path"],
            STRING,
        ),
        field("Mode", Kind::Str("structs.ProxyMode")),
        field("Config", Kind::Any),
        field("Upstreams", Kind::Any),
        aliased("MeshGateway", &["mesh_gateway"], Kind::Any),
        field("Expose", Kind::Any),
        aliased("TransparentProxy", &["transparent_proxy"], Kind::Any),
        aliased("AccessLogs", &["access_logs"], Kind::Any),
    ],
    base: None,
    strict: true,
};

/// `ServiceConnect`: decoded leniently by Consul (plain `json.Unmarshal`).
pub static CONNECT: Schema = Schema {
    name: "ServiceConnect",
    go_type: "structs.ServiceConnect",
    fields: &[
        field("Native", Kind::Bool),
        aliased("SidecarService", &["sidecar_service"], Kind::Any),
        field("PeerMeta", Kind::Any),
    ],
    base: None,
    strict: false,
};

pub static NODE_SERVICE: Schema = Schema {
    name: "NodeService",
    go_type: "structs.NodeService",
    fields: &[
        field("Kind", Kind::Str("structs.ServiceKind")),
        field("ID", STRING),
        field("Service", STRING),
        field("Tags", Kind::StrList),
        field("Address", STRING),
        field(
            "TaggedAddresses",
            Kind::Map(&SERVICE_ADDRESS, "map[string]structs.ServiceAddress"),
        ),
        field("Meta", Kind::StrMap),
        field("Port", PORT),
        field("SocketPath", STRING),
        field("Weights", Kind::Struct(&WEIGHTS)),
        field("EnableTagOverride", Kind::Bool),
        field("Locality", Kind::Struct(&LOCALITY)),
        field("Proxy", Kind::Struct(&PROXY)),
        field("Connect", Kind::Struct(&CONNECT)),
        field("PeerName", STRING),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: true,
};

/// `HealthCheckDefinition`: decoded leniently by its own `UnmarshalJSON`; durations are Go
/// duration strings or nanoseconds.
pub static DEFINITION: Schema = Schema {
    name: "HealthCheckDefinition",
    go_type: "structs.HealthCheckDefinition",
    fields: &[
        field("HTTP", STRING),
        field("TLSServerName", STRING),
        field("TLSSkipVerify", Kind::Bool),
        field("Header", Kind::Any),
        field("Method", STRING),
        field("Body", STRING),
        field("DisableRedirects", Kind::Bool),
        field("TCP", STRING),
        field("UDP", STRING),
        field("H2PING", STRING),
        field("OSService", STRING),
        field("H2PingUseTLS", Kind::Bool),
        field("Interval", Kind::Duration),
        field("OutputMaxSize", Kind::Int("uint", 0, u32::MAX as i128)),
        field("Timeout", Kind::Duration),
        field("DeregisterCriticalServiceAfter", Kind::Duration),
        field("ScriptArgs", Kind::StrList),
        field("DockerContainerID", STRING),
        field("Shell", STRING),
        field("GRPC", STRING),
        field("GRPCUseTLS", Kind::Bool),
        field("AliasNode", STRING),
        field("AliasService", STRING),
        field("TTL", Kind::Duration),
    ],
    base: None,
    strict: false,
};

pub static HEALTH_CHECK: Schema = Schema {
    name: "HealthCheck",
    go_type: "structs.HealthCheck",
    fields: &[
        field("Node", STRING),
        field("CheckID", Kind::Str("types.CheckID")),
        field("Name", STRING),
        field("Status", STRING),
        field("Notes", STRING),
        field("Output", STRING),
        field("ServiceID", STRING),
        field("ServiceName", STRING),
        field("ServiceTags", Kind::StrList),
        field("Type", STRING),
        field("Interval", STRING),
        field("Timeout", STRING),
        field("ExposedPort", PORT),
        field("PeerName", STRING),
        field("Definition", Kind::Struct(&DEFINITION)),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: true,
};

/// The probe of a check, shared by a service's checks (`CheckType`) and standalone ones
/// (`CheckDefinition`), as Go embeds it.
pub static CHECK_PROBE: Schema = Schema {
    name: "CheckType",
    go_type: "structs.CheckType",
    fields: &[
        aliased("ScriptArgs", &["args", "script_args"], Kind::StrList),
        field("HTTP", STRING),
        field("Header", Kind::Any),
        field("Method", STRING),
        field("Body", STRING),
        field("DisableRedirects", Kind::Bool),
        field("TCP", STRING),
        field("TCPUseTLS", Kind::Bool),
        field("UDP", STRING),
        field("Interval", Kind::Duration),
        field("AliasNode", STRING),
        field("AliasService", STRING),
        aliased("DockerContainerID", &["docker_container_id"], STRING),
        field("Shell", STRING),
        field("GRPC", STRING),
        aliased("GRPCUseTLS", &["grpc_use_tls"], Kind::Bool),
        field("H2PING", STRING),
        aliased("H2PingUseTLS", &["h2ping_use_tls"], Kind::Bool),
        field("OSService", STRING),
        aliased("TLSServerName", &["tls_server_name"], STRING),
        aliased("TLSSkipVerify", &["tls_skip_verify"], Kind::Bool),
        field("Timeout", Kind::Duration),
        field("TTL", Kind::Duration),
        field("SuccessBeforePassing", INT),
        field("FailuresBeforeWarning", INT),
        field("FailuresBeforeCritical", INT),
        field("ProxyHTTP", STRING),
        field("ProxyGRPC", STRING),
        aliased(
            "DeregisterCriticalServiceAfter",
            &["deregister_critical_service_after"],
            Kind::Duration,
        ),
        field("OutputMaxSize", INT),
    ],
    base: None,
    strict: true,
};

/// A check inside a service definition: `CheckID`, not `ID`.
pub static CHECK_TYPE: Schema = Schema {
    name: "CheckType",
    go_type: "structs.CheckType",
    fields: &[
        field("CheckID", Kind::Str("types.CheckID")),
        field("Name", STRING),
        field("Status", STRING),
        field("Notes", STRING),
        aliased("ServiceID", &["service_id"], STRING),
    ],
    base: Some(&CHECK_PROBE),
    strict: true,
};

/// `/v1/agent/check/register` and config-file checks: `ID`, not `CheckID`.
pub static CHECK_DEFINITION: Schema = Schema {
    name: "CheckDefinition",
    go_type: "structs.CheckDefinition",
    fields: &[
        field("ID", Kind::Str("types.CheckID")),
        field("Name", STRING),
        field("Notes", STRING),
        aliased("ServiceID", &["service_id"], STRING),
        field("Token", STRING),
        field("Status", STRING),
    ],
    base: Some(&CHECK_PROBE),
    strict: true,
};

/// A service definition's `Connect`, whose `SidecarService` is itself a service definition.
/// Consul decodes it leniently.
pub static SERVICE_CONNECT: Schema = Schema {
    name: "ServiceConnect",
    go_type: "structs.ServiceConnect",
    fields: &[
        field("Native", Kind::Bool),
        aliased(
            "SidecarService",
            &["sidecar_service"],
            Kind::Struct(&SERVICE_DEFINITION),
        ),
        field("PeerMeta", Kind::Any),
    ],
    base: None,
    strict: false,
};

/// `/v1/agent/service/register` and config-file services (`ServiceDefinition`).
pub static SERVICE_DEFINITION: Schema = Schema {
    name: "ServiceDefinition",
    go_type: "structs.ServiceDefinition",
    fields: &[
        field("Kind", Kind::Str("structs.ServiceKind")),
        field("ID", STRING),
        field("Name", STRING),
        field("Tags", Kind::StrList),
        field("Address", STRING),
        aliased(
            "TaggedAddresses",
            &["tagged_addresses"],
            Kind::Map(&SERVICE_ADDRESS, "map[string]structs.ServiceAddress"),
        ),
        field("Meta", Kind::StrMap),
        field("Port", PORT),
        field("SocketPath", STRING),
        field("Check", Kind::Struct(&CHECK_TYPE)),
        field("Checks", Kind::List(&CHECK_TYPE, "structs.CheckTypes")),
        field("Weights", Kind::Struct(&WEIGHTS)),
        field("Token", STRING),
        aliased("EnableTagOverride", &["enable_tag_override"], Kind::Bool),
        field("Proxy", Kind::Struct(&PROXY)),
        field("Connect", Kind::Struct(&SERVICE_CONNECT)),
        field("Locality", Kind::Struct(&LOCALITY)),
    ],
    base: None,
    strict: true,
};

/// `IntentionHTTPHeaderPermission`, one header rule of an L7 intention.
pub static INTENTION_HTTP_HEADER: Schema = Schema {
    name: "IntentionHTTPHeaderPermission",
    go_type: "structs.IntentionHTTPHeaderPermission",
    fields: &[
        field("Name", STRING),
        field("Present", Kind::Bool),
        field("Exact", STRING),
        field("Prefix", STRING),
        field("Suffix", STRING),
        field("Contains", STRING),
        field("Regex", STRING),
        field("Invert", Kind::Bool),
        field("IgnoreCase", Kind::Bool),
    ],
    base: None,
    strict: true,
};

/// `IntentionHTTPPermission`: what an L7 intention matches.
pub static INTENTION_HTTP: Schema = Schema {
    name: "IntentionHTTPPermission",
    go_type: "structs.IntentionHTTPPermission",
    fields: &[
        field("PathExact", STRING),
        field("PathPrefix", STRING),
        field("PathRegex", STRING),
        field(
            "Header",
            Kind::List(
                &INTENTION_HTTP_HEADER,
                "[]structs.IntentionHTTPHeaderPermission",
            ),
        ),
        field("Methods", Kind::StrList),
    ],
    base: None,
    strict: true,
};

/// `IntentionPermission`; the JWT requirement is kept as given.
pub static INTENTION_PERMISSION: Schema = Schema {
    name: "IntentionPermission",
    go_type: "structs.IntentionPermission",
    fields: &[
        field("Action", Kind::Str("structs.IntentionAction")),
        field("HTTP", Kind::Struct(&INTENTION_HTTP)),
        field("JWT", Kind::Any),
    ],
    base: None,
    strict: true,
};

/// `structs.Intention`, the body of the intention endpoints (create, update, exact upsert).
/// Its read-only fields (precedence, times, hash, indexes) are accepted, so a body read back
/// from the API can be sent again; the handlers ignore them.
pub static INTENTION: Schema = Schema {
    name: "Intention",
    go_type: "structs.Intention",
    fields: &[
        field("ID", STRING),
        field("Description", STRING),
        field("SourcePeer", STRING),
        field("SourceSamenessGroup", STRING),
        field("SourceNS", STRING),
        field("SourceName", STRING),
        field("DestinationNS", STRING),
        field("DestinationName", STRING),
        field("SourcePartition", STRING),
        field("DestinationPartition", STRING),
        field("SourceType", Kind::Str("structs.IntentionSourceType")),
        field("Action", Kind::Str("structs.IntentionAction")),
        field(
            "Permissions",
            Kind::List(&INTENTION_PERMISSION, "[]*structs.IntentionPermission"),
        ),
        field("DefaultAddr", STRING),
        field("DefaultPort", INT),
        field("Meta", Kind::StrMap),
        field("Precedence", INT),
        field("CreatedAt", Kind::Any),
        field("UpdatedAt", Kind::Any),
        field("Hash", Kind::Any),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: true,
};

/// `ConnectAuthorizeRequest`, the body of `/v1/agent/connect/authorize`.
pub static CONNECT_AUTHORIZE: Schema = Schema {
    name: "ConnectAuthorizeRequest",
    go_type: "structs.ConnectAuthorizeRequest",
    fields: &[
        field("Target", STRING),
        field("ClientCertURI", STRING),
        field("ClientCertSerial", STRING),
    ],
    base: None,
    strict: true,
};
