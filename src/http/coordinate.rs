//! `/v1/coordinate/*`: network coordinates (Serf's Vivaldi) per node and segment, kept in the
//! store (`store::coordinate`). This node starts at Serf's origin coordinate;
//! `PUT /v1/coordinate/update` sets the coordinate of a node, and, as Consul's state store
//! does, an update for a node the catalog doesn't know is accepted and silently dropped.
//!
//! Consul batches updates into Raft every few seconds; here each applies at once.
//!
//! ACLs: reads keep the nodes the token has `node:read` on (one node's read needs it); an
//! update needs `node:write` on its node.

use super::blocking::blocking;
use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::acl::{AccessLevel, Resource};
use crate::gojson::{self, field, Kind, Schema, STRING};
use crate::store::{coordinate, Command};
use crate::types::coordinate::{Coord, CoordinateEntry, DIMENSIONS};
use serde_json::Value;
use warp::http::StatusCode;

/// The query options and `?segment` of a coordinate read.
fn list_args(
    ctx: &Ctx,
    req: &Request,
) -> Result<(super::query::QueryOptions, Option<String>), ApiError> {
    Ok((
        ctx.query_options(req)?,
        req.params.get("segment").map(str::to_string),
    ))
}

/// What a coordinate read found: the index, the entries and whether to pretty-print.
struct Read {
    index: u64,
    entries: Vec<CoordinateEntry>,
    pretty: bool,
}

/// The coordinates (of `?segment` only, when given) as a blocking read.
async fn read(
    ctx: &Ctx,
    opts: super::query::QueryOptions,
    segment: Option<String>,
) -> Result<Read, ApiError> {
    let got = blocking(&ctx.store, &opts, coordinate::list).await?;
    let entries = got
        .value
        .into_iter()
        .filter(|e| segment.as_ref().is_none_or(|s| *s == e.segment))
        .collect();
    Ok(Read {
        index: got.index,
        entries,
        pretty: opts.pretty,
    })
}

/// `GET /v1/coordinate/datacenters`: this server's WAN coordinate, in the only datacenter.
pub async fn datacenters(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let pretty = req.params.has("pretty");
    let c = &ctx.config;
    let body = serde_json::json!([{
        "Datacenter": c.datacenter,
        "AreaID": "wan",
        "Coordinates": [CoordinateEntry {
            node: format!("{}.{}", c.node_name, c.datacenter),
            segment: String::new(),
            coord: Coord::origin(),
        }],
    }]);
    Reply::json(&body, pretty)
}

/// `GET /v1/coordinate/nodes`: every node's LAN coordinates (blocking).
pub async fn nodes(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let (opts, segment) = list_args(&ctx, &req)?;
    let caller = req.caller;
    let mut got = read(&ctx, opts, segment).await?;
    let removed = caller.filter(&mut got.entries, |c, e| c.reads_node(&e.node));
    Ok(Reply::json(&got.entries, got.pretty)?
        .read_meta(got.index)
        .filtered_by_acls(&caller, removed))
}

/// `GET /v1/coordinate/node/<node>`: one node's coordinates; 404 when it has none.
pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let name = req.tail("/v1/coordinate/node/").to_string();
    let (opts, segment) = list_args(&ctx, &req)?;
    req.caller
        .require(Resource::Node, AccessLevel::Read, &name)?;
    drop(req);
    let got = read(&ctx, opts, segment).await?;
    let entries: Vec<CoordinateEntry> =
        got.entries.into_iter().filter(|e| e.node == name).collect();
    if entries.is_empty() {
        return Ok(Reply::empty(StatusCode::NOT_FOUND).read_meta(got.index));
    }
    Ok(Reply::json(&entries, got.pretty)?.read_meta(got.index))
}

static COORD: Schema = Schema {
    // Go names the outermost type in a nested field's error.
    name: "CoordinateUpdateRequest",
    go_type: "coordinate.Coordinate",
    fields: &[
        field("Vec", Kind::Any),
        field("Error", Kind::Any),
        field("Adjustment", Kind::Any),
        field("Height", Kind::Any),
    ],
    base: None,
    strict: true,
};

static UPDATE: Schema = Schema {
    name: "CoordinateUpdateRequest",
    go_type: "structs.CoordinateUpdateRequest",
    fields: &[
        field("Datacenter", STRING),
        field("Node", STRING),
        field("Segment", STRING),
        field("Coord", Kind::Struct(&COORD)),
        field("Token", STRING),
    ],
    base: None,
    strict: true,
};

fn mismatch(v: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field CoordinateUpdateRequest.Coord.{field} of type {go_type}",
        crate::gojson::json_kind(v)
    )
}

/// The decoded `Coord` (absent keys are zero, as in Go).
fn decode_coord(map: &serde_json::Map<String, Value>) -> Result<Coord, String> {
    let float = |name: &str| -> Result<f64, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(0.0),
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0)),
            Some(other) => Err(mismatch(other, name, "float64")),
        }
    };
    let vec = match map.get("Vec") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => Ok(0.0),
                Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0)),
                other => Err(mismatch(other, "Vec", "float64")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(mismatch(other, "Vec", "[]float64")),
    };
    Ok(Coord {
        vec,
        error: float("Error")?,
        adjustment: float("Adjustment")?,
        height: float("Height")?,
    })
}

/// `PUT /v1/coordinate/update`: `{"Node", "Segment", "Coord"}`.
pub async fn update(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let body = req.body(&ctx).await?;
    let failed = |e: String| ApiError::bad_request(format!("Request decode failed: {e}"));
    let map = gojson::decode(&body, &UPDATE).map_err(failed)?;
    let coord = match map.get("Coord") {
        Some(Value::Object(c)) => Some(decode_coord(c).map_err(failed)?),
        _ => None,
    };
    // The datacenter comes from `?dc`, as for any write.
    ctx.query_options(&req)?;
    let Some(coord) = coord.filter(Coord::is_valid) else {
        return Err(ApiError::internal("invalid coordinate"));
    };
    if coord.vec.len() != DIMENSIONS {
        return Err(ApiError::internal("incompatible coordinate"));
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let update = CoordinateEntry {
        node: text("Node"),
        segment: text("Segment"),
        coord,
    };
    req.caller
        .require(Resource::Node, AccessLevel::Write, &update.node)?;
    ctx.store
        .apply(Command::CoordinateBatchUpdate {
            updates: vec![update],
        })
        .await?;
    Ok(Reply::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coord_type_errors_name_the_field() {
        let mut map = serde_json::Map::new();
        map.insert("Error".into(), Value::from("x"));
        assert_eq!(
            decode_coord(&map).unwrap_err(),
            "json: cannot unmarshal string into Go struct field CoordinateUpdateRequest.Coord.Error of type float64"
        );
    }
}
