//! `/v1/coordinate/*`: network coordinates (Serf's Vivaldi), kept in memory per node and
//! segment. This node starts at Serf's origin coordinate; `PUT /v1/coordinate/update` sets the
//! coordinate of a node, and, as Consul's state store does, an update for a node the catalog
//! doesn't know is accepted and silently dropped. A node's coordinate goes with the node.
//!
//! Consul batches updates into Raft every few seconds; here they apply at once.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::gojson::{self, field, Kind, Schema, STRING};
use crate::store::catalog;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::time::Instant;
use warp::http::StatusCode;

/// The dimensionality of Serf's coordinates.
const DIMENSIONS: usize = 8;

/// A Vivaldi coordinate (`serf/coordinate.Coordinate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Coord {
    #[serde(serialize_with = "go_floats")]
    pub vec: Vec<f64>,
    #[serde(serialize_with = "go_float")]
    pub error: f64,
    #[serde(serialize_with = "go_float")]
    pub adjustment: f64,
    #[serde(serialize_with = "go_float")]
    pub height: f64,
}

impl Coord {
    /// Serf's `NewCoordinate` with its default config: the origin, maximum error, minimum height.
    pub fn origin() -> Coord {
        Coord {
            vec: vec![0.0; DIMENSIONS],
            error: 1.5,
            adjustment: 0.0,
            height: 1.0e-5,
        }
    }

    fn is_valid(&self) -> bool {
        self.vec.iter().all(|v| v.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }
}

/// Go writes whole floats without a fraction (`0`, not `0.0`).
fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn go_floats<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct F(f64);
    impl Serialize for F {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            go_float(&self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        seq.serialize_element(&F(*x))?;
    }
    seq.end()
}

/// A node's coordinate in a segment (`structs.Coordinate`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CoordinateEntry {
    pub node: String,
    pub segment: String,
    pub coord: Coord,
}

#[derive(Default)]
struct State {
    /// `(node, segment)` → entry.
    entries: BTreeMap<(String, String), CoordinateEntry>,
    index: u64,
}

/// The coordinates of the datacenter's nodes.
pub struct Coordinates {
    state: Mutex<State>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Coordinates {
    /// Starts with `node` at the origin.
    pub fn new(node: &str, index: u64) -> Coordinates {
        let mut state = State {
            index: index.max(1),
            ..Default::default()
        };
        state.entries.insert(
            (node.to_string(), String::new()),
            CoordinateEntry {
                node: node.to_string(),
                segment: String::new(),
                coord: Coord::origin(),
            },
        );
        Coordinates {
            state: Mutex::new(state),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    /// Sets a coordinate at a new index (at least `floor`, above the previous one).
    fn set(&self, entry: CoordinateEntry, floor: u64) {
        {
            let mut state = self.state.lock().unwrap();
            state.index = floor.max(state.index + 1);
            state
                .entries
                .insert((entry.node.clone(), entry.segment.clone()), entry);
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The index of the last update and every entry, sorted by node and segment.
    fn snapshot(&self) -> (u64, Vec<CoordinateEntry>) {
        let state = self.state.lock().unwrap();
        (state.index, state.entries.values().cloned().collect())
    }
}

/// The entries of nodes that are in the catalog, optionally of one segment (`?segment=`).
fn visible(
    ctx: &Ctx,
    segment: Option<&str>,
    entries: Vec<CoordinateEntry>,
) -> Result<Vec<CoordinateEntry>, ApiError> {
    let r = ctx.store.read()?;
    let mut out = Vec::new();
    for e in entries {
        if segment.is_some_and(|s| s != e.segment) {
            continue;
        }
        if catalog::get_node(&r, &e.node)?.is_some() {
            out.push(e);
        }
    }
    Ok(out)
}

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

/// Waits (as a blocking query) until the coordinates' index passes `?index` or the wait ends;
/// returns the visible entries with their index and whether to pretty-print.
async fn wait_for_index(
    ctx: &Ctx,
    opts: super::query::QueryOptions,
    segment: Option<String>,
) -> Result<(u64, Vec<CoordinateEntry>, bool), ApiError> {
    let deadline = Instant::now() + opts.wait;
    loop {
        let mut changed = ctx.coordinates.changed.subscribe();
        let (index, entries) = ctx.coordinates.snapshot();
        if opts.index > 0 && index <= opts.index {
            tokio::select! {
                _ = changed.changed() => continue,
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        return Ok((
            index,
            visible(ctx, segment.as_deref(), entries)?,
            opts.pretty,
        ));
    }
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
    drop(req);
    let (index, entries, pretty) = wait_for_index(&ctx, opts, segment).await?;
    Ok(Reply::json(&entries, pretty)?.read_meta(index))
}

/// `GET /v1/coordinate/node/<node>`: one node's coordinates; 404 when it has none.
pub async fn node(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let name = req.tail("/v1/coordinate/node/").to_string();
    let (opts, segment) = list_args(&ctx, &req)?;
    drop(req);
    let (index, entries, pretty) = wait_for_index(&ctx, opts, segment).await?;
    let entries: Vec<CoordinateEntry> = entries.into_iter().filter(|e| e.node == name).collect();
    if entries.is_empty() {
        return Ok(Reply::empty(StatusCode::NOT_FOUND).read_meta(index));
    }
    Ok(Reply::json(&entries, pretty)?.read_meta(index))
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
    let node = text("Node");
    let r = ctx.store.read()?;
    if catalog::get_node(&r, &node)?.is_some() {
        let floor = r.global_index()?;
        ctx.coordinates.set(
            CoordinateEntry {
                node,
                segment: text("Segment"),
                coord,
            },
            floor,
        );
    }
    Ok(Reply::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_renders_as_go_does() {
        let json = serde_json::to_string(&Coord::origin()).unwrap();
        assert_eq!(
            json,
            r#"{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}"#
        );
    }

    #[test]
    fn updates_take_a_new_index() {
        let c = Coordinates::new("n1", 5);
        let entry = |node: &str| CoordinateEntry {
            node: node.into(),
            segment: String::new(),
            coord: Coord::origin(),
        };
        c.set(entry("n2"), 3);
        assert_eq!(c.snapshot().0, 6);
        c.set(entry("n2"), 10);
        let (index, entries) = c.snapshot();
        assert_eq!(index, 10);
        assert_eq!(entries.len(), 2);
    }

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
