//! `Normalize` and `Validate` of every kind (Consul's `structs.*ConfigEntry` methods), over a
//! decoded entry, with Consul's messages. The modelled kinds are checked in full; the others
//! get the checks every kind shares (a name, the meta limits) and CE's refusals.

use super::ConfigEntry;
use crate::gojson::multierror;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Consul's limits on `Meta` (`metaMaxKeyPairs`, `metaKeyMaxLength`, `metaValueMaxLength`).
const META_MAX_PAIRS: usize = 64;
const META_KEY_MAX: usize = 128;
const META_VALUE_MAX: usize = 512;

/// The name every wildcard field uses.
pub const WILDCARD: &str = "*";

type Checked = Result<(), String>;

/// The errors collected so far as Go returns them: nothing, or one multierror.
fn collected(errors: Vec<String>) -> Checked {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errors))
    }
}

/// `validateConfigEntryMeta`, each problem separately.
pub(crate) fn meta_errors(meta: &BTreeMap<String, String>) -> Vec<String> {
    let mut errors = Vec::new();
    if meta.len() > META_MAX_PAIRS {
        errors.push(format!(
            "Meta exceeds maximum element count {META_MAX_PAIRS}"
        ));
    }
    for (k, v) in meta {
        if k.len() > META_KEY_MAX {
            errors.push(format!(
                "Meta key {k:?} exceeds maximum length {META_KEY_MAX}"
            ));
        }
        if v.len() > META_VALUE_MAX {
            errors.push(format!(
                "Meta value for key {k:?} exceeds maximum length {META_VALUE_MAX}"
            ));
        }
    }
    errors
}

fn lowercase(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = map.get_mut(key) {
        *s = s.to_lowercase();
    }
}

/// Normalizes `entry` and validates it, as `ConfigEntry.Apply` does before a write.
pub(super) fn check(entry: &mut ConfigEntry) -> Checked {
    normalize(entry)?;
    validate(entry)
}

fn normalize(entry: &mut ConfigEntry) -> Checked {
    let kind = entry.kind.clone();
    let body = entry.body_mut();
    match kind.as_str() {
        super::SERVICE_DEFAULTS_KIND => {
            lowercase(body, "Protocol");
            if let Some(Value::Object(upstreams)) = body.get_mut("UpstreamConfig") {
                for (key, upstream) in upstreams.iter_mut() {
                    let each: Vec<&mut Value> = match (key.as_str(), upstream) {
                        ("Overrides", Value::Array(items)) => items.iter_mut().collect(),
                        ("Defaults", one) => vec![one],
                        _ => Vec::new(),
                    };
                    for u in each.into_iter().filter_map(Value::as_object_mut) {
                        lowercase(u, "Protocol");
                        let negative = u
                            .get("ConnectTimeoutMs")
                            .and_then(Value::as_i64)
                            .is_some_and(|v| v < 0);
                        if negative {
                            u.insert("ConnectTimeoutMs".into(), Value::from(0));
                        }
                    }
                }
            }
        }
        super::INGRESS_GATEWAY_KIND => {
            for listener in body
                .get_mut("Listeners")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Value::Object(l) = listener {
                    let protocol = l.get("Protocol").and_then(Value::as_str).unwrap_or("");
                    let protocol = if protocol.is_empty() {
                        "tcp".to_string()
                    } else {
                        protocol.to_lowercase()
                    };
                    l.insert("Protocol".into(), Value::from(protocol));
                }
            }
        }
        _ => {}
    }
    if kind == crate::types::intention::SERVICE_INTENTIONS_KIND {
        crate::types::intention::normalize(entry, false)?;
    }
    entry.name = super::canonical_name(&kind, &entry.name)?;
    Ok(())
}

fn validate(entry: &ConfigEntry) -> Checked {
    let body = &entry.body.0;
    match entry.kind.as_str() {
        super::SERVICE_DEFAULTS_KIND => service_defaults(entry, view(body)),
        super::PROXY_DEFAULTS_KIND => proxy_defaults(entry, view(body)),
        // Consul's gateway `Validate`s don't ask for a name.
        super::INGRESS_GATEWAY_KIND => ingress_gateway(entry, &view(body)),
        super::TERMINATING_GATEWAY_KIND => terminating_gateway(entry, &view(body)),
        super::EXPORTED_SERVICES_KIND => {
            if entry.name != "default" {
                return Err(r#"exported-services Name must be "default""#.into());
            }
            collected(meta_errors(&entry.meta))
        }
        super::SAMENESS_GROUP_KIND => Err("sameness-groups are an enterprise-only feature".into()),
        super::MESH_KIND => collected(meta_errors(&entry.meta)),
        crate::types::intention::SERVICE_INTENTIONS_KIND => {
            crate::types::intention::validate(entry, false)
        }
        _ => {
            require_name(entry)?;
            collected(meta_errors(&entry.meta))
        }
    }
}

fn require_name(entry: &ConfigEntry) -> Checked {
    if entry.name.is_empty() {
        return Err("Name is required".into());
    }
    Ok(())
}

/// A typed view of a decoded body, for the checks, read in place. The body is already
/// converted to the schema's types, so the view cannot fail; the default covers what it
/// doesn't name.
pub(super) fn view<T: for<'de> Deserialize<'de> + Default>(body: &Value) -> T {
    T::deserialize(body).unwrap_or_default()
}

// ----- service-defaults and proxy-defaults -----

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ServiceDefaults {
    #[serde(rename = "MutualTLSMode")]
    mutual_tls_mode: String,
    balance_inbound_connections: String,
    upstream_config: Option<Upstreams>,
    destination: Option<Destination>,
    rate_limits: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Upstreams {
    overrides: Vec<Upstream>,
    defaults: Option<Upstream>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Upstream {
    name: String,
    peer: String,
    limits: Option<Limits>,
    passive_health_check: Option<PassiveHealthCheck>,
    balance_outbound_connections: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Limits {
    max_connections: Option<i64>,
    max_pending_requests: Option<i64>,
    max_concurrent_requests: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PassiveHealthCheck {
    enforcing_consecutive5xx: Option<u64>,
    max_ejection_percent: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Destination {
    addresses: Vec<String>,
    port: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ProxyDefaults {
    config: Map<String, Value>,
    #[serde(rename = "MutualTLSMode")]
    mutual_tls_mode: String,
}

fn balance_ok(value: &str) -> bool {
    value.is_empty() || value == "exact_balance"
}

fn mutual_tls_mode(mode: &str) -> Checked {
    if ["", "strict", "permissive"].contains(&mode) {
        return Ok(());
    }
    Err(format!(
        r#"Invalid MutualTLSMode {mode:?}. Must be one of "", "strict", or "permissive"."#
    ))
}

/// `UpstreamConfig.validate`: an override must be named, the defaults must not be.
fn upstream(u: &Upstream, named: bool) -> Checked {
    if named {
        if u.name.is_empty() {
            return Err("Name is required".into());
        }
        if u.name == WILDCARD {
            return Err("Wildcard name is not supported".into());
        }
    } else if !u.name.is_empty() {
        return Err("Name must be empty".into());
    }
    let mut errors = Vec::new();
    if let Some(check) = &u.passive_health_check {
        if check.enforcing_consecutive5xx.is_some_and(|p| p > 100) {
            errors.push(
                "passive health check enforcing_consecutive_5xx must be a percentage between 0 and 100"
                    .to_string(),
            );
        } else if check.max_ejection_percent.is_some_and(|p| p > 100) {
            errors.push(
                "passive health check max_ejection_percent must be a percentage between 0 and 100"
                    .to_string(),
            );
        }
    }
    if let Some(limits) = &u.limits {
        let negative = [
            (limits.max_connections, "max connections"),
            (limits.max_pending_requests, "max pending requests"),
            (limits.max_concurrent_requests, "max concurrent requests"),
        ]
        .into_iter()
        .find(|(v, _)| v.is_some_and(|v| v < 0));
        if let Some((_, what)) = negative {
            errors.push(format!("{what} cannot be negative"));
        }
    }
    if !balance_ok(&u.balance_outbound_connections) {
        errors.push(format!(
            "invalid value for balance_outbound_connections: {}",
            u.balance_outbound_connections
        ));
    }
    collected(errors)
}

/// An upstream override's name as Consul prints it (`PeeredServiceName.String`).
fn upstream_name(u: &Upstream) -> String {
    if u.peer.is_empty() {
        u.name.clone()
    } else {
        format!("peer:{}/{}", u.peer, u.name)
    }
}

/// `validateEndpointAddress`: an IP, or a DNS name without wildcards.
fn endpoint_address_ok(address: &str) -> bool {
    address.parse::<std::net::IpAddr>().is_ok()
        || (is_domain_name(address) && !address.contains('*'))
}

/// miekg/dns `IsDomainName`: labels of 1 to 63 octets, 255 octets in all (very liberal
/// otherwise, as the DNS is an 8-bit protocol).
fn is_domain_name(name: &str) -> bool {
    if name == "." {
        return true;
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    !trimmed.is_empty()
        && trimmed.len() < 255
        && trimmed.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

fn service_defaults(entry: &ConfigEntry, sd: ServiceDefaults) -> Checked {
    require_name(entry)?;
    if entry.name == WILDCARD {
        return Err(
            "service-defaults name must be the name of a service, and not a wildcard".into(),
        );
    }
    let mut errors = meta_errors(&entry.meta);
    if !balance_ok(&sd.balance_inbound_connections) {
        errors.push(format!(
            "invalid value for balance_inbound_connections: {}",
            sd.balance_inbound_connections
        ));
    }
    if sd.upstream_config.is_some() && sd.destination.is_some() {
        errors.push(
            "UpstreamConfig and Destination are mutually exclusive for service defaults".into(),
        );
        return collected(errors);
    }
    if let Some(upstreams) = &sd.upstream_config {
        for u in &upstreams.overrides {
            if let Err(e) = upstream(u, true) {
                errors.push(format!(
                    "error in upstream override for {}: {e}",
                    upstream_name(u)
                ));
            }
        }
        if let Some(Err(e)) = upstreams.defaults.as_ref().map(|d| upstream(d, false)) {
            errors.push(format!("error in upstream defaults: {e}"));
        }
    }
    if let Some(dest) = &sd.destination {
        if dest.addresses.is_empty() {
            errors.push("Destination must contain at least one valid address".into());
        }
        let mut seen = HashSet::new();
        for address in &dest.addresses {
            if !seen.insert(address) {
                errors.push(format!("Duplicate address '{address}' is not allowed"));
                continue;
            }
            if !endpoint_address_ok(address) {
                errors.push(format!(
                    "Destination address '{address}' is invalid Could not validate address {address} as an IP or Hostname"
                ));
            }
        }
        if !(1..=65535).contains(&dest.port) {
            errors.push(format!("Invalid Port number {}", dest.port));
        }
    }
    if sd.rate_limits.is_some() {
        errors.push(
            "invalid rate_limits config. Rate limiting is a consul enterprise feature".into(),
        );
    }
    mutual_tls_mode(&sd.mutual_tls_mode)?;
    collected(errors)
}

/// Socket directories longer than this would overflow a Unix socket path on some systems.
const MAX_SOCKET_DIR_LEN: usize = 70;

fn proxy_defaults(entry: &ConfigEntry, pd: ProxyDefaults) -> Checked {
    if entry.name != super::PROXY_DEFAULTS_NAME {
        return Err(format!(
            "invalid name ({:?}), only {:?} is supported",
            entry.name,
            super::PROXY_DEFAULTS_NAME
        ));
    }
    collected(meta_errors(&entry.meta))?;
    let socket_dir = pd
        .config
        .get("envoy_hcp_metrics_bind_socket_dir")
        .and_then(Value::as_str)
        .unwrap_or("");
    if socket_dir.len() > MAX_SOCKET_DIR_LEN {
        return Err(format!(
            "Config: envoy_hcp_metrics_bind_socket_dir length {} exceeds max {MAX_SOCKET_DIR_LEN}",
            socket_dir.len()
        ));
    }
    mutual_tls_mode(&pd.mutual_tls_mode)
}

// ----- gateways -----

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct GatewayTls {
    pub enabled: bool,
    #[serde(rename = "SDS")]
    pub sds: Option<Sds>,
    #[serde(rename = "TLSMinVersion")]
    pub tls_min_version: String,
    #[serde(rename = "TLSMaxVersion")]
    pub tls_max_version: String,
    pub cipher_suites: Vec<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct Sds {
    pub cluster_name: String,
    pub cert_resource: String,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceTls {
    #[serde(rename = "SDS")]
    pub sds: Option<Sds>,
}

/// The parts of an ingress-gateway entry the checks and gateway lookups use.
#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct IngressGateway {
    #[serde(rename = "TLS")]
    pub tls: GatewayTls,
    pub listeners: Vec<IngressListener>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct IngressListener {
    pub port: i64,
    pub protocol: String,
    #[serde(rename = "TLS")]
    pub tls: Option<GatewayTls>,
    pub services: Vec<IngressService>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct IngressService {
    pub name: String,
    pub hosts: Vec<String>,
    #[serde(rename = "TLS")]
    pub tls: Option<ServiceTls>,
    pub request_headers: Option<Map<String, Value>>,
    pub response_headers: Option<Map<String, Value>>,
}

/// The parts of a terminating-gateway entry the checks and gateway lookups use.
#[derive(Deserialize, Default, Clone)]
#[serde(default, rename_all = "PascalCase")]
pub struct TerminatingGateway {
    pub services: Vec<LinkedService>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct LinkedService {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "CAFile")]
    pub ca_file: String,
    #[serde(rename = "CertFile")]
    pub cert_file: String,
    #[serde(rename = "KeyFile")]
    pub key_file: String,
    #[serde(rename = "SNI")]
    pub sni: String,
}

/// Protocols with L7 features: several services per listener, hosts, header changes.
pub fn is_http_like(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

/// The TLS versions Consul knows, sorted as its messages list them.
const TLS_VERSIONS: [&str; 5] = ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"];

fn tls_version(v: &str) -> Checked {
    if TLS_VERSIONS.contains(&v) {
        return Ok(());
    }
    Err(format!(
        "no matching TLS version found for {v}, please specify one of [{}]",
        TLS_VERSIONS.join(", ")
    ))
}

/// `validateTLSConfig`: known versions, max not below min, cipher suites only up to TLS 1.2.
fn tls_config(tls: &GatewayTls) -> Checked {
    let (min, max) = (tls.tls_min_version.as_str(), tls.tls_max_version.as_str());
    if !min.is_empty() {
        tls_version(min)?;
    }
    if !max.is_empty() {
        tls_version(max)?;
        let rank = |v: &str| TLS_VERSIONS[1..].iter().position(|x| *x == v);
        if let (Some(lo), Some(hi)) = (rank(min), rank(max)) {
            if hi < lo {
                return Err(format!(
                    "configuring max version {max} less than the configured min version {min} is invalid"
                ));
            }
        }
    }
    if !tls.cipher_suites.is_empty()
        && !["", "TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2"].contains(&min)
    {
        return Err(format!(
            "configuring CipherSuites is only applicable to connections negotiated with TLS 1.2 or earlier, TLSMinVersion is set to {min}"
        ));
    }
    Ok(())
}

/// `HTTPHeaderModifiers.Validate`: header changes need an L7 protocol.
fn headers(modifiers: &Option<Map<String, Value>>, protocol: &str) -> Checked {
    let set = modifiers
        .as_ref()
        .is_some_and(|m| m.values().any(|v| !crate::gojson::is_zero(v)));
    if set && !is_http_like(protocol) {
        return Err("only valid for http, http2 and grpc protocols".into());
    }
    Ok(())
}

/// `validateServiceSDS`: a certificate needs a cluster at some level, and a service's own
/// certificate needs hosts to bind it to.
fn service_sds(gw: &IngressGateway, lis: &IngressListener, svc: &IngressService) -> Checked {
    let sds_of = |tls: Option<&GatewayTls>| tls.and_then(|t| t.sds.clone()).unwrap_or_default();
    let gw_sds = gw.tls.sds.clone();
    if let Some(sds) = &gw_sds {
        if sds.cluster_name.is_empty() && !sds.cert_resource.is_empty() {
            return Err("TLS.SDS.ClusterName is required if CertResource is set".into());
        }
    }
    let gw_cluster = gw_sds.as_ref().is_some_and(|s| !s.cluster_name.is_empty());
    let gw_cert = gw_sds.as_ref().is_some_and(|s| !s.cert_resource.is_empty());
    let lis_sds = sds_of(lis.tls.as_ref());
    let (lis_cluster, lis_cert) = (
        !lis_sds.cluster_name.is_empty(),
        !lis_sds.cert_resource.is_empty(),
    );
    let port = lis.port;
    if gw_cluster && !gw_cert && !lis_cert {
        return Err(format!("TLS.SDS.CertResource is required if ClusterName is set for gateway (listener on port {port})"));
    }
    if lis_cluster && !lis_cert {
        return Err(format!("TLS.SDS.CertResource is required if ClusterName is set for listener (listener on port {port})"));
    }
    if lis_cert && !lis_cluster && !gw_cluster {
        return Err(format!(
            "TLS.SDS.ClusterName is required if CertResource is set (listener on port {port})"
        ));
    }
    let svc_sds = svc
        .tls
        .as_ref()
        .and_then(|t| t.sds.clone())
        .filter(|s| !s.cert_resource.is_empty());
    if let Some(sds) = svc_sds {
        let name = &svc.name;
        if svc.hosts.is_empty() {
            return Err(format!("A service specifying TLS.SDS.CertResource must have at least one item in Hosts (service {name:?} on listener on port {port})"));
        }
        if sds.cluster_name.is_empty() && !lis_cluster && !gw_cluster {
            return Err(format!("TLS.SDS.ClusterName is required if CertResource is set (service {name:?} on listener on port {port})"));
        }
    }
    Ok(())
}

/// `validateHost`: `*` alone only without TLS; otherwise a DNS name whose only wildcard is
/// the leftmost label.
fn host(tls_enabled: bool, host: &str) -> Checked {
    if host == WILDCARD {
        if tls_enabled {
            return Err("Host '*' is not allowed when TLS is enabled, all hosts must be valid DNS records to add as a DNSSAN".into());
        }
        return Ok(());
    }
    if !is_domain_name(host) {
        return Err(format!("Host {host:?} must be a valid DNS hostname"));
    }
    if host.strip_prefix("*.").unwrap_or(host).contains('*') {
        return Err(format!(
            "Host {host:?} is not valid, a wildcard specifier is only allowed as the leftmost label"
        ));
    }
    Ok(())
}

fn ingress_gateway(entry: &ConfigEntry, gw: &IngressGateway) -> Checked {
    collected(meta_errors(&entry.meta))?;
    tls_config(&gw.tls)?;
    let mut ports = HashSet::new();
    for lis in &gw.listeners {
        let (port, protocol) = (lis.port, lis.protocol.as_str());
        if !ports.insert(port) {
            return Err(format!("port {port} declared on two listeners"));
        }
        if !["tcp", "http", "http2", "grpc"].contains(&protocol) {
            return Err(format!("protocol must be 'tcp', 'http', 'http2', or 'grpc'. '{protocol}' is an unsupported protocol"));
        }
        if lis.services.is_empty() {
            return Err(format!("No service declared for listener with port {port}"));
        }
        if !is_http_like(protocol) && lis.services.len() > 1 {
            return Err(format!("Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"));
        }
        if let Some(tls) = &lis.tls {
            tls_config(tls)?;
        }
        let mut hosts = HashSet::new();
        let mut names = HashSet::new();
        for svc in &lis.services {
            let name = &svc.name;
            headers(&svc.request_headers, protocol).map_err(|e| {
                format!("request headers {e} (service {name:?} on listener on port {port})")
            })?;
            headers(&svc.response_headers, protocol).map_err(|e| {
                format!("response headers {e} (service {name:?} on listener on port {port})")
            })?;
            if protocol == "tcp" {
                if name == WILDCARD {
                    return Err(format!("Wildcard service name is only valid for protocol = 'http' (listener on port {port})"));
                }
                if !svc.hosts.is_empty() {
                    return Err(format!("Associating hosts to a service is not supported for the {protocol} protocol (listener on port {port})"));
                }
            }
            if name.is_empty() {
                return Err(format!(
                    "Service name cannot be blank (listener on port {port})"
                ));
            }
            if name == WILDCARD && !svc.hosts.is_empty() {
                return Err(format!("Associating hosts to a wildcard service is not supported (listener on port {port})"));
            }
            if !names.insert(name) {
                return Err(format!(
                    "Service {name} cannot be added multiple times (listener on port {port})"
                ));
            }
            service_sds(gw, lis, svc)?;
            for h in &svc.hosts {
                if !hosts.insert(h) {
                    return Err(format!(
                        "Hosts must be unique within a specific listener (listener on port {port})"
                    ));
                }
                host(gw.tls.enabled, h)?;
            }
        }
    }
    Ok(())
}

fn terminating_gateway(entry: &ConfigEntry, gw: &TerminatingGateway) -> Checked {
    collected(meta_errors(&entry.meta))?;
    let mut seen = HashSet::new();
    for svc in &gw.services {
        if svc.name.is_empty() {
            return Err("Service name cannot be blank.".into());
        }
        if !seen.insert(&svc.name) {
            return Err(format!(
                "Service {:?} was specified more than once within a namespace",
                svc.name
            ));
        }
        let client_cert = !svc.cert_file.is_empty() || !svc.key_file.is_empty();
        let complete =
            !svc.ca_file.is_empty() && !svc.cert_file.is_empty() && !svc.key_file.is_empty();
        if client_cert && !complete {
            return Err(format!(
                "Service {:?} must have a CertFile, CAFile, and KeyFile specified for TLS origination",
                svc.name
            ));
        }
    }
    Ok(())
}
