//! Cluster peering and the services a datacenter shares through it (`/v1/peering*`,
//! `/v1/exported-services`, `/v1/imported-services`), answered as a Consul CE server that has
//! established no peering: the peering list is empty, reading a peering finds none, deleting
//! one is the no-op Consul's delete of an unknown peering is, and nothing is imported. The
//! exported services are resolved from the `exported-services` config entry as Consul does,
//! since that entry can name peers before any peering exists.
//!
//! Peerings are made over gRPC (a token names the acceptor's gRPC TLS addresses, the dialer
//! exchanges the token's secret there), and Legate serves no gRPC. So it is a Consul whose
//! gRPC TLS port is off: generating a token validates the request and is refused as Consul
//! refuses it then, and establishing one validates the request and the token as Consul does
//! and is refused where Consul would dial the peer. Neither writes anything, which keeps
//! the empty peering list true.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::gojson::{self, field, Kind, Schema, STRING};
use crate::store::{catalog, config_entry, connect_ca, ReadTx, WatchSet};
use crate::types::config_entry::{EXPORTED_SERVICES_KIND, WILDCARD};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use warp::http::Method;

/// `GET /v1/peerings`: no peering exists, so the list is empty.
pub async fn list(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let none: [(); 0] = [];
    Reply::json(&none, opts.pretty)
}

/// `GET|DELETE /v1/peering/<name>`.
pub async fn handle(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let name = req.tail("/v1/peering/");
    if name.is_empty() {
        return Err(ApiError::bad_request("Must specify a name to fetch."));
    }
    if req.method == Method::DELETE {
        // Consul's delete returns early, successfully, when the peering doesn't exist.
        return Ok(Reply::empty(warp::http::StatusCode::OK));
    }
    Err(ApiError::not_found(format!(
        "Peering not found for {}",
        crate::filter::go_quote(name)
    )))
}

/// One exported service and who consumes it (Consul's `api.ResolvedExportedService`).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ExportedService {
    pub service: String,
    pub consumers: Consumers,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Consumers {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// The services the `exported-services` entry shares, by name, a `*` entry expanded to every
/// service with a typical instance; `consul` is never exported (Consul's
/// `resolvedExportedServicesTxn`).
fn exported(r: &ReadTx, ws: &mut WatchSet) -> crate::store::Result<(u64, Vec<ExportedService>)> {
    let (mut index, entry) = config_entry::get(r, ws, EXPORTED_SERVICES_KIND, "default")?;
    let mut peers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let listed: Vec<serde_json::Value> = entry
        .as_ref()
        .and_then(|e| e.body.0.get("Services"))
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    for service in &listed {
        let name = service.get("Name").and_then(|n| n.as_str()).unwrap_or("");
        let consumers: Vec<String> = service
            .get("Consumers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("Peer").and_then(|p| p.as_str()))
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        let names: Vec<String> = if name == WILDCARD {
            let (catalog_index, typical) = catalog::typical_service_names(r, ws)?;
            index = index.max(catalog_index);
            typical.into_iter().collect()
        } else {
            vec![name.to_string()]
        };
        for n in names.into_iter().filter(|n| n != catalog::CONSUL_SERVICE) {
            peers
                .entry(n)
                .or_default()
                .extend(consumers.iter().cloned());
        }
    }
    let services = peers
        .into_iter()
        .map(|(service, peers)| ExportedService {
            service,
            consumers: Consumers {
                peers: peers.into_iter().collect(),
            },
        })
        .collect();
    Ok((index, services))
}

/// `GET /v1/exported-services`: needs `mesh:read`; lists the services the caller may read.
pub async fn exported_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    req.caller.require(Resource::Mesh, AccessLevel::Read, "")?;
    let opts = ctx.query_options(&req)?;
    let got = blocking(&ctx.store, &opts, exported).await?;
    let mut services = got.value;
    let removed = req
        .caller
        .filter(&mut services, |c, s| c.reads_service(&s.service));
    Ok(Reply::json(&services, opts.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&req.caller, removed))
}

/// `GET /v1/imported-services`: needs `mesh:read`; without a peering nothing is imported, and
/// CE answers a plain (empty) array.
pub async fn imported_services(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    req.caller.require(Resource::Mesh, AccessLevel::Read, "")?;
    let opts = ctx.query_options(&req)?;
    let none: [(); 0] = [];
    Reply::json(&none, opts.pretty)
}

static GENERATE_TOKEN_REQUEST: Schema = Schema {
    name: "PeeringGenerateTokenRequest",
    go_type: "api.PeeringGenerateTokenRequest",
    fields: &[
        field("PeerName", STRING),
        field("Partition", STRING),
        field("Meta", Kind::StrMap),
        field("ServerExternalAddresses", Kind::StrList),
    ],
    base: None,
    strict: false,
};

static ESTABLISH_REQUEST: Schema = Schema {
    name: "PeeringEstablishRequest",
    go_type: "api.PeeringEstablishRequest",
    fields: &[
        field("PeerName", STRING),
        field("Partition", STRING),
        field("PeeringToken", STRING),
        field("Meta", Kind::StrMap),
    ],
    base: None,
    strict: false,
};

static TOKEN_REMOTE: Schema = Schema {
    name: "PeeringTokenRemote",
    go_type: "structs.PeeringTokenRemote",
    fields: &[field("Partition", STRING), field("Datacenter", STRING)],
    base: None,
    strict: false,
};

/// What a peering token holds (Consul's `structs.PeeringToken`, base64 of its JSON).
static PEERING_TOKEN: Schema = Schema {
    name: "PeeringToken",
    go_type: "structs.PeeringToken",
    fields: &[
        field("CA", Kind::StrList),
        field("ManualServerAddresses", Kind::StrList),
        field("ServerAddresses", Kind::StrList),
        field("ServerName", STRING),
        field("PeerID", STRING),
        field("EstablishmentSecret", STRING),
        field("Remote", Kind::Struct(&TOKEN_REMOTE)),
    ],
    base: None,
    strict: false,
};

/// An error of Consul's peering service as its HTTP API passes it on: a plain error crosses
/// the gRPC boundary with code `Unknown` and becomes a 500 with the status text.
fn peering_rpc_error(message: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("rpc error: code = Unknown desc = {message}"))
}

/// Decodes a peering request body as Consul's HTTP handler does.
async fn peering_body(
    ctx: &Ctx,
    req: &mut Request,
    schema: &Schema,
) -> Result<Map<String, Value>, ApiError> {
    let body = req.body(ctx).await?;
    gojson::decode(&body, schema)
        .map_err(|e| ApiError::bad_request(format!("Body decoding failed: {e}")))
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(map: &Map<String, Value>, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Consul's check of a request's peer name, made before anything else.
fn validate_peer_name(request: &Map<String, Value>) -> Result<(), ApiError> {
    let name = text(request, "PeerName");
    if valid_peer_name(name) {
        return Ok(());
    }
    Err(peering_rpc_error(format!(
        "{name} is not a valid peer name: a valid peering name must consist of lower case \
         alphanumeric characters or '-', and must start and end with an alphanumeric character"
    )))
}

/// Consul's `ValidateMetaTags` on a request's `Meta`.
fn validate_meta(request: &Map<String, Value>) -> Result<(), ApiError> {
    let meta: BTreeMap<String, String> = request
        .get("Meta")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    crate::agent::definition::validate_meta(&meta)
        .map_err(|e| peering_rpc_error(format!("meta tags failed validation: {e}")))
}

/// An RFC 1123 label in lower case, at most 63 characters.
fn valid_peer_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&name.len())
        && name.starts_with(ok)
        && name.ends_with(ok)
        && name.chars().all(|c| ok(c) || c == '-')
}

/// `POST /v1/peering/token`: validated as Consul validates it, then (with `peering:write`,
/// checked after the validation as Consul's) refused as a Consul server without a gRPC TLS
/// port refuses it, before writing the peering.
pub async fn generate_token(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let request = peering_body(&ctx, &mut req, &GENERATE_TOKEN_REQUEST).await?;
    if text(&request, "PeerName").is_empty() {
        return Err(ApiError::bad_request(
            "PeerName is required in the payload when generating a new peering token.",
        ));
    }
    validate_peer_name(&request)?;
    validate_meta(&request)?;
    req.caller
        .require(Resource::Peering, AccessLevel::Write, "")?;
    Err(peering_rpc_error(if ctx.config.connect.enabled {
        "TLS for gRPC must be enabled when generating peering tokens"
    } else {
        "connect.enabled must be set to true in the server's configuration when generating peering tokens"
    }))
}

/// `POST /v1/peering/establish`: the request and its token validated as Consul validates
/// them, then (with `peering:write`) a token of this very cluster refused as Consul refuses
/// it, and any other where Consul would dial the peer's servers to exchange the secret.
pub async fn establish(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let request = peering_body(&ctx, &mut req, &ESTABLISH_REQUEST).await?;
    if text(&request, "PeerName").is_empty() {
        return Err(ApiError::bad_request(
            "PeerName is required in the payload when establishing a peering.",
        ));
    }
    if text(&request, "PeeringToken").is_empty() {
        return Err(ApiError::bad_request(
            "PeeringToken is required in the payload when establishing a peering.",
        ));
    }
    validate_peer_name(&request)?;
    let token = decode_peering_token(text(&request, "PeeringToken"))?;
    validate_peering_token(&token)?;
    validate_meta(&request)?;
    req.caller
        .require(Resource::Peering, AccessLevel::Write, "")?;
    let server_name = own_peering_server_name(&ctx)?;
    if text(&token, "ServerName") == server_name {
        return Err(peering_rpc_error(format!(
            "cannot create a peering within the same cluster {}. Refer to the `exported-services` \
             documentation if you want to export between partitions without peering",
            crate::filter::go_quote(&server_name)
        )));
    }
    let mut addresses = strings(&token, "ManualServerAddresses");
    if addresses.is_empty() {
        addresses = strings(&token, "ServerAddresses");
    }
    let failures: Vec<String> = addresses
        .iter()
        .map(|addr| {
            format!(
                "failed to exchange peering secret through address {}: Legate has no gRPC client \
                 to reach a peer's servers",
                crate::filter::go_quote(addr)
            )
        })
        .collect();
    Err(peering_rpc_error(gojson::multierror(&failures)))
}

/// A token as Consul's `DecodeToken` reads it: standard base64 of a JSON object.
fn decode_peering_token(raw: &str) -> Result<Map<String, Value>, ApiError> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| {
            peering_rpc_error(format!("failed to decode token: {}", go_base64_error(&e)))
        })?;
    gojson::decode(&json, &PEERING_TOKEN).map_err(peering_rpc_error)
}

/// Go's `base64.CorruptInputError` text for `e`.
fn go_base64_error(e: &base64::DecodeError) -> String {
    let offset = match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            *at
        }
        base64::DecodeError::InvalidLength(len) => *len,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {offset}")
}

/// Consul's `validatePeeringToken`: parseable CA certificates, at least one valid server
/// address, a server name when there is a CA, and a peer ID.
fn validate_peering_token(token: &Map<String, Value>) -> Result<(), ApiError> {
    let ca = strings(token, "CA");
    for pem in &ca {
        parse_certificate(pem)
            .map_err(|e| peering_rpc_error(format!("peering token invalid CA: {e}")))?;
    }
    let manual = strings(token, "ManualServerAddresses");
    let servers = strings(token, "ServerAddresses");
    if manual.is_empty() && servers.is_empty() {
        return Err(peering_rpc_error(
            "peering token server addresses value is empty",
        ));
    }
    for addr in manual.iter().chain(&servers) {
        let port = addr
            .rsplit_once(':')
            .filter(|(host, _)| {
                !host.contains(':') || (host.starts_with('[') && host.ends_with(']'))
            })
            .and_then(|(_, port)| port.parse::<u32>().ok());
        if !matches!(port, Some(1..=65535)) {
            return Err(peering_rpc_error(format!(
                "{addr} is not a valid peering server address"
            )));
        }
    }
    if !ca.is_empty() && text(token, "ServerName").is_empty() {
        return Err(peering_rpc_error(
            "peering token server name value is empty",
        ));
    }
    if text(token, "PeerID").is_empty() {
        return Err(peering_rpc_error("peering token peer ID value is empty"));
    }
    Ok(())
}

/// Consul's `connect.ParseCert`: the first PEM block must be a certificate that parses.
fn parse_certificate(pem: &str) -> Result<(), &'static str> {
    use rustls_pki_types::pem::PemObject;
    let first_label = pem
        .lines()
        .find_map(|line| line.trim().strip_prefix("-----BEGIN "))
        .and_then(|rest| rest.strip_suffix("-----"))
        .ok_or("no PEM-encoded data found")?;
    if first_label != "CERTIFICATE" {
        return Err("first PEM-block should be CERTIFICATE type");
    }
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "no PEM-encoded data found")?;
    x509_parser::parse_x509_certificate(&der)
        .map(|_| ())
        .map_err(|_| "x509: malformed certificate")
}

/// The name this cluster's servers answer peers as (Consul's `PeeringServerSAN`), from the
/// Connect CA's trust domain; without a CA, Consul's error for TLS materials it cannot read.
fn own_peering_server_name(ctx: &Ctx) -> Result<String, ApiError> {
    let r = ctx.store.read()?;
    let cluster = connect_ca::config(&r, &mut WatchSet::new())?.map(|c| c.cluster_id);
    match cluster {
        Some(cluster) if !connect_ca::roots(&r, &mut WatchSet::new())?.1.is_empty() => Ok(format!(
            "server.{}.peering.{}",
            ctx.config.datacenter,
            crate::connect::trust_domain(&cluster)
        )),
        _ => Err(peering_rpc_error(
            "failed to fetch TLS materials: CA has not finished initializing",
        )),
    }
}
