//! `/v1/connect/ca/*` and `/v1/agent/connect/ca/*`: the CA's roots (never their keys), its
//! configuration (never `PrivateKey`), and the agent's leaf certificates. The CA itself is
//! `agent::connect_ca`; this module parses and renders.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::agent::connect_ca::{self, CaConfigRequest, CaError};
use crate::gojson::{self, field, Kind, Schema, STRING, UINT64};
use crate::store::connect_ca::{self as store_ca, CaRootRecord, LeafRecord};
use serde_json::{json, Map, Value};
use std::time::{Duration, UNIX_EPOCH};

impl From<CaError> for ApiError {
    fn from(err: CaError) -> Self {
        match err {
            CaError::BadConfig(msg) => ApiError::bad_request(msg),
            CaError::Store(e) => e.into(),
            // Consul reports a disabled Connect from its RPC layer: a 500.
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Go's JSON of a `time.Time` with whole seconds.
fn go_time(unix_secs: u64) -> String {
    crate::agent::logging::rfc3339(UNIX_EPOCH + Duration::from_secs(unix_secs), 0)
}

/// A root as `ConnectCA.Roots` lists it: only the public fields.
fn render_root(root: &CaRootRecord) -> Value {
    json!({
        "ID": root.id,
        "Name": root.name,
        "SerialNumber": root.serial_number,
        "SigningKeyID": root.signing_key_id,
        "ExternalTrustDomain": "",
        "NotBefore": go_time(root.not_before),
        "NotAfter": go_time(root.not_after),
        "RootCert": root.root_cert,
        // A Go nil slice: null until a rotation gives the root a cross-signed certificate.
        "IntermediateCerts": (!root.intermediate_certs.is_empty()).then_some(&root.intermediate_certs),
        "Active": root.active,
        "PrivateKeyType": root.private_key_type,
        "PrivateKeyBits": root.private_key_bits,
        "CreateIndex": root.create_index,
        "ModifyIndex": root.modify_index,
    })
}

/// `GET /v1/connect/ca/roots` and `GET /v1/agent/connect/ca/roots` (blocking): the roots with
/// the active one's ID and the trust domain, or with `?pem=true` every root and intermediate
/// as one PEM chain.
pub async fn roots(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let pem = match req.params.get("pem").filter(|v| !v.is_empty()) {
        None => false,
        Some(v) => crate::gojson::parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_request("The 'pem' query parameter must be a boolean value")
        })?,
    };
    // Rendered inside the read: keys never leave the store's records.
    let got = blocking(&ctx.store, &opts, |r, ws| {
        let config = store_ca::config(r, ws)?;
        let (index, roots) = store_ca::roots(r, ws)?;
        let rendered = if pem {
            Value::String(pem_chain(&roots))
        } else {
            let active = roots.iter().find(|r| r.active).map(|r| r.id.clone());
            let trust_domain = config.map(|c| crate::connect::trust_domain(&c.cluster_id));
            json!({
                "ActiveRootID": active.unwrap_or_default(),
                "TrustDomain": trust_domain.unwrap_or_default(),
                "Roots": roots.iter().map(render_root).collect::<Vec<_>>(),
            })
        };
        Ok((index, rendered))
    })
    .await?;
    if let Value::String(chain) = got.value {
        // RFC 8555's type for a PEM chain, as Consul answers.
        return Ok(Reply::bytes(
            chain.into_bytes(),
            Some("application/pem-certificate-chain"),
        )
        .read_meta(got.index));
    }
    let body = got.value;
    Ok(Reply::json(&body, opts.pretty)?.read_meta(got.index))
}

/// Every root followed by its intermediates.
fn pem_chain(roots: &[CaRootRecord]) -> String {
    let mut chain = String::new();
    for root in roots {
        chain.push_str(&root.root_cert);
        for intermediate in &root.intermediate_certs {
            chain.push_str(intermediate);
        }
    }
    chain
}

static CA_CONFIGURATION: Schema = Schema {
    name: "CAConfiguration",
    go_type: "structs.CAConfiguration",
    fields: &[
        field("Provider", STRING),
        field("Config", Kind::Any),
        field("State", Kind::StrMap),
        field("ForceWithoutCrossSigning", Kind::Bool),
        field("force_without_cross_signing", Kind::Bool),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: false,
};

/// `GET|PUT /v1/connect/ca/configuration`.
pub async fn configuration(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    if req.method == warp::http::Method::GET {
        let config = connect_ca::configuration(&ctx)?;
        let mut settings = config.config.0.as_object().cloned().unwrap_or_default();
        settings.remove("PrivateKey");
        let body = json!({
            "Provider": config.provider,
            "Config": settings,
            "State": null,
            "ForceWithoutCrossSigning": config.force_without_cross_signing,
            "CreateIndex": config.create_index,
            "ModifyIndex": config.modify_index,
        });
        return Reply::json(&body, opts.pretty);
    }
    let body = req.body(&ctx).await?;
    let decoded = gojson::decode(&body, &CA_CONFIGURATION)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    let provider = decoded
        .get("Provider")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let settings = match decoded.get("Config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Request decode failed: json: cannot unmarshal into Go struct field CAConfiguration.Config of type map[string]interface {}",
            ))
        }
    };
    // The built-in provider keeps no State: one given must be empty, as Consul's check.
    if decoded
        .get("State")
        .and_then(Value::as_object)
        .is_some_and(|state| !state.is_empty())
    {
        return Err(ApiError::bad_request(
            "Provider State is read-only. It must be omitted or identical to the current value",
        ));
    }
    // Consul also reads the snake-case spelling of this one field.
    let force = |key| decoded.get(key).and_then(Value::as_bool).unwrap_or(false);
    let request = CaConfigRequest {
        provider,
        config: settings,
        force_without_cross_signing: force("ForceWithoutCrossSigning")
            || force("force_without_cross_signing"),
    };
    connect_ca::set_configuration(&ctx, request).await?;
    Ok(Reply::empty(warp::http::StatusCode::OK))
}

/// The agent endpoint's `IssuedCert`.
fn render_leaf(leaf: &LeafRecord) -> Value {
    json!({
        "SerialNumber": leaf.serial_number,
        "CertPEM": leaf.cert_pem,
        "PrivateKeyPEM": leaf.private_key_pem,
        "Service": leaf.service,
        "ServiceURI": leaf.service_uri,
        "ValidAfter": go_time(leaf.valid_after),
        "ValidBefore": go_time(leaf.valid_before),
        "CreateIndex": leaf.create_index,
        "ModifyIndex": leaf.modify_index,
    })
}

/// `GET /v1/agent/connect/ca/leaf/<service>`: the service's current leaf; with `?index=`, once
/// the leaf at that index is superseded (by a rotation, a reissue, or by reaching its renewal
/// point, which the shared blocking mechanism wakes on as on a write).
pub async fn leaf(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let service = req.tail("/v1/agent/connect/ca/leaf/").to_string();
    if service.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    req.caller.require(
        crate::acl::Resource::Service,
        crate::acl::AccessLevel::Write,
        &service,
    )?;
    if opts.index > 0 {
        blocking(&ctx.store, &opts, |r, ws| {
            connect_ca::leaf_version(r, ws, &service)
        })
        .await?;
    }
    let leaf = connect_ca::leaf(&ctx, &service).await?;
    Ok(Reply::json(&render_leaf(&leaf), opts.pretty)?.read_meta(leaf.modify_index))
}
