//! Gateway ↔ service associations (Consul's `structs.GatewayService`), as
//! `/v1/catalog/gateway-services` renders them.

use serde::Serialize;

/// A service name as Consul renders `structs.ServiceName` (CE: the name alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceName {
    pub name: String,
}

/// One service a gateway fronts, with what the gateway's config entry says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GatewayService {
    pub gateway: ServiceName,
    pub service: ServiceName,
    /// `ingress-gateway` or `terminating-gateway`.
    pub gateway_kind: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(rename = "CAFile", skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(rename = "SNI", skip_serializing_if = "String::is_empty")]
    pub sni: String,
    /// The association comes from a `*` in the entry, not from the service's own name.
    #[serde(skip_serializing_if = "is_false")]
    pub from_wildcard: bool,
    /// `service` (registered in the catalog), `destination` (a service-defaults destination),
    /// or empty (neither, yet).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_kind: String,
    pub create_index: u64,
    pub modify_index: u64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !b
}
