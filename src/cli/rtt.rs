//! `legate rtt`, as `consul rtt`: the round trip time between two nodes estimated from their
//! network coordinates (serf's Vivaldi distance).

use super::client::{connect, decode, HttpFlags};
use crate::types::coordinate::Coord;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct RttArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Use WAN coordinates (nodes given as node.datacenter).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    wan: bool,
    /// One or two node names; the second defaults to the agent's node.
    nodes: Vec<String>,
}

/// The estimated round trip time between two coordinates, in seconds (serf's `DistanceTo`,
/// as `Coord::distance_to`), truncated to whole nanoseconds as Go's `time.Duration` keeps it.
fn rtt_seconds(a: &Coord, b: &Coord) -> f64 {
    (a.distance_to(b) * 1e9).trunc() / 1e9
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeCoordinate {
    node: String,
    #[serde(default)]
    segment: String,
    coord: Coord,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DatacenterCoordinates {
    datacenter: String,
    #[serde(default)]
    coordinates: Option<Vec<NodeCoordinate>>,
}

const USAGE: &str = "Usage: legate rtt [options] node1 [node2]";

pub async fn run(a: RttArgs) -> i32 {
    super::client::exit_code(rtt(a).await)
}

async fn rtt(a: RttArgs) -> Result<(), String> {
    let mut nodes = a.nodes;
    if nodes.is_empty() || nodes.len() > 2 {
        return Err(format!(
            "One or two node names must be specified\n\n{USAGE}"
        ));
    }
    let client = connect(&a.http)?;
    let self_info = || async {
        let resp = client
            .ok(Method::GET, "/v1/agent/self", &[], None)
            .await
            .map_err(|e| format!("Unable to look up agent info: {e}"))?;
        decode::<Value>(&resp.body)
    };
    let (source, found) = if a.wan {
        if nodes.len() < 2 {
            let me = self_info().await?;
            let config = &me["Config"];
            nodes.push(format!(
                "{}.{}",
                config["NodeName"].as_str().unwrap_or_default(),
                config["Datacenter"].as_str().unwrap_or_default()
            ));
        }
        let resp = client
            .ok(Method::GET, "/v1/coordinate/datacenters", &[], None)
            .await
            .map_err(|e| format!("Error getting coordinates: {e}"))?;
        let dcs: Vec<DatacenterCoordinates> = decode(&resp.body)?;
        let find = |name: &str| {
            dcs.iter().find_map(|dc| {
                dc.coordinates.iter().flatten().find_map(|c| {
                    (format!("{}.{}", c.node, dc.datacenter) == name).then(|| c.coord.clone())
                })
            })
        };
        ("WAN", (find(&nodes[0]), find(&nodes[1])))
    } else {
        if nodes.len() < 2 {
            let me = self_info().await?;
            nodes.push(
                me["Config"]["NodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let resp = client
            .ok(Method::GET, "/v1/coordinate/nodes", &[], None)
            .await
            .map_err(|e| format!("Error getting coordinates: {e}"))?;
        let entries: Vec<NodeCoordinate> = decode(&resp.body)?;
        if entries.is_empty() {
            return Err("No coordinates found".into());
        }
        // Coordinates compare only within one network segment.
        let first = entries.iter().find(|e| e.node == nodes[0]);
        let second = entries.iter().find(|e| e.node == nodes[1]);
        let found = match (first, second) {
            (Some(x), Some(y)) if x.segment == y.segment => {
                (Some(x.coord.clone()), Some(y.coord.clone()))
            }
            _ => (None, None),
        };
        ("LAN", found)
    };
    let (Some(first), Some(second)) = found else {
        let missing = if found.0.is_none() {
            &nodes[0]
        } else {
            &nodes[1]
        };
        return Err(format!("Could not find a coordinate for node {missing:?}"));
    };
    println!(
        "Estimated {} <-> {} rtt: {:.3} ms (using {source} coordinates)",
        nodes[0],
        nodes[1],
        rtt_seconds(&first, &second) * 1000.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coord(vec: &[f64], height: f64, adjustment: f64) -> Coord {
        Coord {
            vec: vec.to_vec(),
            error: 1.5,
            adjustment,
            height,
        }
    }

    #[test]
    fn distance_is_serfs() {
        let a = coord(&[0.0, 0.0, 0.003], 0.0001, 0.0);
        let b = coord(&[0.0, 0.004, 0.0], 0.0001, 0.0);
        assert!((rtt_seconds(&a, &b) - 0.0052).abs() < 1e-12);
        // A negative adjustment that would make it negative is ignored.
        let c = coord(&[0.0, 0.004, 0.0], 0.0001, -1.0);
        assert!((rtt_seconds(&a, &c) - 0.0052).abs() < 1e-12);
        let d = coord(&[0.0, 0.004, 0.0], 0.0001, 0.001);
        assert!((rtt_seconds(&a, &d) - 0.0062).abs() < 1e-12);
    }
}
