//! The Go structs of Consul CE's config entries, as `gojson` schemas: which keys a body may
//! hold (with their snake_case aliases), their types for weak decoding, and their JSON tags
//! for rendering.
//!
//! service-defaults, proxy-defaults, ingress-gateway and terminating-gateway are modelled to
//! the leaf; the other kinds list their top-level fields only and keep nested values as sent.
//! Namespaces and partitions (Enterprise) are in no schema, so such keys are refused.

use crate::gojson::{aliased, field, omitempty, pointer, Field, Kind, Schema, INT, STRING, UINT32};

const KIND: Field = field("Kind", STRING);
const NAME: Field = field("Name", STRING);
const META: Field = omitempty("Meta", &[], Kind::StrMap);

const fn strict(name: &'static str, go_type: &'static str, fields: &'static [Field]) -> Schema {
    Schema {
        name,
        go_type,
        fields,
        base: None,
        strict: true,
    }
}

// ----- shared by the proxy kinds -----

static TRANSPARENT_PROXY_CONFIG: Schema = strict(
    "TransparentProxyConfig",
    "structs.TransparentProxyConfig",
    &[
        omitempty("OutboundListenerPort", &["outbound_listener_port"], INT),
        omitempty("DialedDirectly", &["dialed_directly"], Kind::Bool),
    ],
);

static MESH_GATEWAY_CONFIG: Schema = strict(
    "MeshGatewayConfig",
    "structs.MeshGatewayConfig",
    &[omitempty("Mode", &[], Kind::Str("structs.MeshGatewayMode"))],
);

static EXPOSE_PATH: Schema = strict(
    "ExposePath",
    "structs.ExposePath",
    &[
        omitempty("ListenerPort", &["listener_port"], INT),
        omitempty("Path", &[], STRING),
        omitempty("LocalPathPort", &["local_path_port"], INT),
        omitempty("Protocol", &[], STRING),
        omitempty("ParsedFromCheck", &["parsed_from_check"], Kind::Bool),
    ],
);

static EXPOSE_CONFIG: Schema = strict(
    "ExposeConfig",
    "structs.ExposeConfig",
    &[
        omitempty("Checks", &[], Kind::Bool),
        omitempty(
            "Paths",
            &[],
            Kind::List(&EXPOSE_PATH, "[]structs.ExposePath"),
        ),
    ],
);

static ENVOY_EXTENSION: Schema = strict(
    "EnvoyExtension",
    "structs.EnvoyExtension",
    &[
        field("Name", STRING),
        field("Required", Kind::Bool),
        field("Arguments", Kind::Any),
        aliased("ConsulVersion", &["consul_version"], STRING),
        aliased("EnvoyVersion", &["envoy_version"], STRING),
    ],
);

const ENVOY_EXTENSIONS: Field = omitempty(
    "EnvoyExtensions",
    &["envoy_extensions"],
    Kind::List(&ENVOY_EXTENSION, "structs.EnvoyExtensions"),
);

static PASSIVE_HEALTH_CHECK_CONFIG: Schema = strict(
    "PassiveHealthCheck",
    "structs.PassiveHealthCheck",
    &[
        omitempty("Interval", &[], Kind::Duration),
        omitempty("MaxFailures", &["max_failures"], UINT32),
        pointer(
            "EnforcingConsecutive5xx",
            &["enforcing_consecutive_5xx"],
            UINT32,
        ),
        pointer("MaxEjectionPercent", &["max_ejection_percent"], UINT32),
        pointer("BaseEjectionTime", &["base_ejection_time"], Kind::Duration),
    ],
);

/// Fields several structs declare alike.
const MODE: Field = omitempty("Mode", &[], Kind::Str("structs.ProxyMode"));
const TRANSPARENT_PROXY: Field = omitempty(
    "TransparentProxy",
    &["transparent_proxy"],
    Kind::Struct(&TRANSPARENT_PROXY_CONFIG),
);
const MUTUAL_TLS_MODE: Field = omitempty(
    "MutualTLSMode",
    &["mutual_tls_mode"],
    Kind::Str("structs.MutualTLSMode"),
);
const MESH_GATEWAY: Field = omitempty(
    "MeshGateway",
    &["mesh_gateway"],
    Kind::Struct(&MESH_GATEWAY_CONFIG),
);
const EXPOSE: Field = omitempty("Expose", &[], Kind::Struct(&EXPOSE_CONFIG));
const PASSIVE_HEALTH_CHECK: Field = pointer(
    "PassiveHealthCheck",
    &["passive_health_check"],
    Kind::Struct(&PASSIVE_HEALTH_CHECK_CONFIG),
);

// ----- service-defaults -----

static UPSTREAM_LIMITS: Schema = strict(
    "UpstreamLimits",
    "structs.UpstreamLimits",
    &[
        pointer("MaxConnections", &["max_connections"], INT),
        pointer("MaxPendingRequests", &["max_pending_requests"], INT),
        pointer("MaxConcurrentRequests", &["max_concurrent_requests"], INT),
    ],
);

static UPSTREAM_CONFIG: Schema = strict(
    "UpstreamConfig",
    "structs.UpstreamConfig",
    &[
        omitempty("Name", &[], STRING),
        field("Peer", STRING),
        omitempty("EnvoyListenerJSON", &["envoy_listener_json"], STRING),
        omitempty("EnvoyClusterJSON", &["envoy_cluster_json"], STRING),
        omitempty("Protocol", &[], STRING),
        omitempty("ConnectTimeoutMs", &["connect_timeout_ms"], INT),
        pointer("Limits", &[], Kind::Struct(&UPSTREAM_LIMITS)),
        PASSIVE_HEALTH_CHECK,
        MESH_GATEWAY,
        omitempty(
            "BalanceOutboundConnections",
            &["balance_outbound_connections"],
            STRING,
        ),
    ],
);

static UPSTREAM_CONFIGURATION: Schema = strict(
    "UpstreamConfiguration",
    "structs.UpstreamConfiguration",
    &[
        omitempty(
            "Overrides",
            &[],
            Kind::List(&UPSTREAM_CONFIG, "[]*structs.UpstreamConfig"),
        ),
        pointer("Defaults", &[], Kind::Struct(&UPSTREAM_CONFIG)),
    ],
);

static DESTINATION: Schema = strict(
    "DestinationConfig",
    "structs.DestinationConfig",
    &[
        omitempty("Addresses", &[], Kind::StrList),
        omitempty("Port", &[], INT),
    ],
);

static ROUTE_RATE_LIMITS: Schema = strict(
    "InstanceLevelRouteRateLimits",
    "structs.InstanceLevelRouteRateLimits",
    &[
        aliased("PathExact", &["path_exact"], STRING),
        aliased("PathPrefix", &["path_prefix"], STRING),
        aliased("PathRegex", &["path_regex"], STRING),
        aliased("RequestsPerSecond", &["requests_per_second"], INT),
        aliased("RequestsMaxBurst", &["requests_max_burst"], INT),
    ],
);

static INSTANCE_RATE_LIMITS: Schema = strict(
    "InstanceLevelRateLimits",
    "structs.InstanceLevelRateLimits",
    &[
        aliased("RequestsPerSecond", &["requests_per_second"], INT),
        aliased("RequestsMaxBurst", &["requests_max_burst"], INT),
        field(
            "Routes",
            Kind::List(&ROUTE_RATE_LIMITS, "[]structs.InstanceLevelRouteRateLimits"),
        ),
    ],
);

static RATE_LIMITS: Schema = strict(
    "RateLimits",
    "structs.RateLimits",
    &[aliased(
        "InstanceLevel",
        &["instance_level"],
        Kind::Struct(&INSTANCE_RATE_LIMITS),
    )],
);

pub static SERVICE_DEFAULTS: Schema = strict(
    "ServiceConfigEntry",
    "structs.ServiceConfigEntry",
    &[
        KIND,
        NAME,
        field("Protocol", STRING),
        MODE,
        TRANSPARENT_PROXY,
        MUTUAL_TLS_MODE,
        MESH_GATEWAY,
        EXPOSE,
        omitempty("ExternalSNI", &["external_sni"], STRING),
        pointer(
            "UpstreamConfig",
            &["upstream_config"],
            Kind::Struct(&UPSTREAM_CONFIGURATION),
        ),
        pointer("Destination", &[], Kind::Struct(&DESTINATION)),
        omitempty("MaxInboundConnections", &["max_inbound_connections"], INT),
        omitempty("LocalConnectTimeoutMs", &["local_connect_timeout_ms"], INT),
        omitempty("LocalRequestTimeoutMs", &["local_request_timeout_ms"], INT),
        omitempty(
            "BalanceInboundConnections",
            &["balance_inbound_connections"],
            STRING,
        ),
        pointer("RateLimits", &["rate_limits"], Kind::Struct(&RATE_LIMITS)),
        ENVOY_EXTENSIONS,
        META,
    ],
);

// ----- proxy-defaults -----

static ACCESS_LOGS: Schema = strict(
    "AccessLogsConfig",
    "structs.AccessLogsConfig",
    &[
        omitempty("Enabled", &[], Kind::Bool),
        omitempty(
            "DisableListenerLogs",
            &["disable_listener_logs"],
            Kind::Bool,
        ),
        omitempty("Type", &[], Kind::Str("structs.LogSinkType")),
        omitempty("Path", &[], STRING),
        omitempty("JSONFormat", &["json_format"], STRING),
        omitempty("TextFormat", &["text_format"], STRING),
    ],
);

pub static PROXY_DEFAULTS: Schema = strict(
    "ProxyConfigEntry",
    "structs.ProxyConfigEntry",
    &[
        KIND,
        NAME,
        field("Config", Kind::Any),
        MODE,
        TRANSPARENT_PROXY,
        MUTUAL_TLS_MODE,
        MESH_GATEWAY,
        EXPOSE,
        omitempty("AccessLogs", &["access_logs"], Kind::Struct(&ACCESS_LOGS)),
        ENVOY_EXTENSIONS,
        pointer("FailoverPolicy", &["failover_policy"], Kind::Any),
        pointer(
            "PrioritizeByLocality",
            &["prioritize_by_locality"],
            Kind::Any,
        ),
        META,
    ],
);

// ----- ingress-gateway -----

static GATEWAY_TLS_SDS: Schema = strict(
    "GatewayTLSSDSConfig",
    "structs.GatewayTLSSDSConfig",
    &[
        omitempty("ClusterName", &["cluster_name"], STRING),
        omitempty("CertResource", &["cert_resource"], STRING),
    ],
);

const SDS: Field = pointer("SDS", &[], Kind::Struct(&GATEWAY_TLS_SDS));

static GATEWAY_TLS: Schema = strict(
    "GatewayTLSConfig",
    "structs.GatewayTLSConfig",
    &[
        field("Enabled", Kind::Bool),
        SDS,
        omitempty(
            "TLSMinVersion",
            &["tls_min_version"],
            Kind::Str("types.TLSVersion"),
        ),
        omitempty(
            "TLSMaxVersion",
            &["tls_max_version"],
            Kind::Str("types.TLSVersion"),
        ),
        omitempty("CipherSuites", &["cipher_suites"], Kind::StrList),
    ],
);

static GATEWAY_SERVICE_TLS: Schema = strict(
    "GatewayServiceTLSConfig",
    "structs.GatewayServiceTLSConfig",
    &[SDS],
);

static HEADER_MODIFIERS: Schema = strict(
    "HTTPHeaderModifiers",
    "structs.HTTPHeaderModifiers",
    &[
        omitempty("Add", &[], Kind::StrMap),
        omitempty("Set", &[], Kind::StrMap),
        omitempty("Remove", &[], Kind::StrList),
    ],
);

static INGRESS_SERVICE: Schema = strict(
    "IngressService",
    "structs.IngressService",
    &[
        field("Name", STRING),
        field("Hosts", Kind::StrList),
        pointer("TLS", &[], Kind::Struct(&GATEWAY_SERVICE_TLS)),
        pointer(
            "RequestHeaders",
            &["request_headers"],
            Kind::Struct(&HEADER_MODIFIERS),
        ),
        pointer(
            "ResponseHeaders",
            &["response_headers"],
            Kind::Struct(&HEADER_MODIFIERS),
        ),
        omitempty("MaxConnections", &["max_connections"], UINT32),
        omitempty("MaxPendingRequests", &["max_pending_requests"], UINT32),
        omitempty(
            "MaxConcurrentRequests",
            &["max_concurrent_requests"],
            UINT32,
        ),
        PASSIVE_HEALTH_CHECK,
        META,
    ],
);

static INGRESS_LISTENER: Schema = strict(
    "IngressListener",
    "structs.IngressListener",
    &[
        field("Port", INT),
        field("Protocol", STRING),
        pointer("TLS", &[], Kind::Struct(&GATEWAY_TLS)),
        field(
            "Services",
            Kind::List(&INGRESS_SERVICE, "[]structs.IngressService"),
        ),
    ],
);

static INGRESS_DEFAULTS: Schema = strict(
    "IngressServiceConfig",
    "structs.IngressServiceConfig",
    &[
        field("MaxConnections", UINT32),
        field("MaxPendingRequests", UINT32),
        field("MaxConcurrentRequests", UINT32),
        PASSIVE_HEALTH_CHECK,
    ],
);

pub static INGRESS_GATEWAY: Schema = strict(
    "IngressGatewayConfigEntry",
    "structs.IngressGatewayConfigEntry",
    &[
        KIND,
        NAME,
        field("TLS", Kind::Struct(&GATEWAY_TLS)),
        field(
            "Listeners",
            Kind::List(&INGRESS_LISTENER, "[]structs.IngressListener"),
        ),
        pointer("Defaults", &[], Kind::Struct(&INGRESS_DEFAULTS)),
        META,
    ],
);

// ----- terminating-gateway -----

static LINKED_SERVICE: Schema = strict(
    "LinkedService",
    "structs.LinkedService",
    &[
        omitempty("Name", &[], STRING),
        omitempty("CAFile", &["ca_file"], STRING),
        omitempty("CertFile", &["cert_file"], STRING),
        omitempty("KeyFile", &["key_file"], STRING),
        omitempty("SNI", &[], STRING),
    ],
);

pub static TERMINATING_GATEWAY: Schema = strict(
    "TerminatingGatewayConfigEntry",
    "structs.TerminatingGatewayConfigEntry",
    &[
        KIND,
        NAME,
        field(
            "Services",
            Kind::List(&LINKED_SERVICE, "[]structs.LinkedService"),
        ),
        META,
    ],
);

// ----- the other kinds: top-level fields, nested values kept as sent -----

/// A top-level field of a kind not modelled further: rendered only when given.
const fn given(name: &'static str, aliases: &'static [&'static str]) -> Field {
    pointer(name, aliases, Kind::Any)
}

/// The schema of a kind with `Kind`, `Name`, `Meta` and the given top-level fields.
macro_rules! top_level {
    ($id:ident, $go:literal, [$($field:expr),* $(,)?]) => {
        pub static $id: Schema = strict($go, concat!("structs.", $go), &[KIND, NAME, $($field,)* META]);
    };
}

top_level!(
    SERVICE_ROUTER,
    "ServiceRouterConfigEntry",
    [given("Routes", &[])]
);
top_level!(
    SERVICE_SPLITTER,
    "ServiceSplitterConfigEntry",
    [given("Splits", &[])]
);
top_level!(
    SERVICE_RESOLVER,
    "ServiceResolverConfigEntry",
    [
        given("DefaultSubset", &["default_subset"]),
        given("Subsets", &[]),
        given("Redirect", &[]),
        given("Failover", &[]),
        given("ConnectTimeout", &["connect_timeout"]),
        given("RequestTimeout", &["request_timeout"]),
        given("PrioritizeByLocality", &["prioritize_by_locality"]),
        given("LoadBalancer", &["load_balancer"]),
    ]
);
top_level!(
    SERVICE_INTENTIONS,
    "ServiceIntentionsConfigEntry",
    [given("Sources", &[]), given("JWT", &[])]
);
top_level!(
    EXPORTED_SERVICES,
    "ExportedServicesConfigEntry",
    [given("Services", &[])]
);
top_level!(
    SAMENESS_GROUP,
    "SamenessGroupConfigEntry",
    [
        given("DefaultForFailover", &["default_for_failover"]),
        given("IncludeLocal", &["include_local"]),
        given("Members", &[]),
    ]
);
top_level!(
    API_GATEWAY,
    "APIGatewayConfigEntry",
    [given("Listeners", &[]), given("Status", &[])]
);
top_level!(
    BOUND_API_GATEWAY,
    "BoundAPIGatewayConfigEntry",
    [given("Listeners", &[]), given("Services", &[])]
);
top_level!(
    INLINE_CERTIFICATE,
    "InlineCertificateConfigEntry",
    [
        given("Certificate", &[]),
        given("PrivateKey", &["private_key"]),
    ]
);
top_level!(
    FILE_SYSTEM_CERTIFICATE,
    "FileSystemCertificateConfigEntry",
    [
        given("Certificate", &[]),
        given("PrivateKey", &["private_key"]),
    ]
);
top_level!(
    HTTP_ROUTE,
    "HTTPRouteConfigEntry",
    [
        given("Parents", &[]),
        given("Rules", &[]),
        given("Hostnames", &[]),
        given("Status", &[]),
    ]
);
top_level!(
    TCP_ROUTE,
    "TCPRouteConfigEntry",
    [
        given("Parents", &[]),
        given("Services", &[]),
        given("Status", &[]),
    ]
);
top_level!(
    JWT_PROVIDER,
    "JWTProviderConfigEntry",
    [
        given("JSONWebKeySet", &["json_web_key_set"]),
        given("Issuer", &[]),
        given("Audiences", &[]),
        given("Locations", &[]),
        given("Forwarding", &[]),
        given("ClockSkewSeconds", &["clock_skew_seconds"]),
        given("CacheConfig", &["cache_config"]),
    ]
);

/// The mesh entry has no `Name` (it is always `mesh`) and no `Kind` field (its JSON adds one).
pub static MESH: Schema = strict(
    "MeshConfigEntry",
    "structs.MeshConfigEntry",
    &[
        given("TransparentProxy", &["transparent_proxy"]),
        omitempty(
            "AllowEnablingPermissiveMutualTLS",
            &["allow_enabling_permissive_mutual_tls"],
            Kind::Bool,
        ),
        given("ValidateClusters", &["validate_clusters"]),
        given("TLS", &[]),
        given("HTTP", &[]),
        given("Peering", &[]),
        META,
    ],
);
