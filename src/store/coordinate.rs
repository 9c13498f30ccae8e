//! The coordinate domain (Consul's `state/coordinate.go`): each catalog node's network
//! coordinate per segment. Updates for nodes the catalog doesn't know are dropped, as Consul's
//! state store drops them, and a node's coordinates go with the node, so every stored
//! coordinate belongs to a registered node.

use super::error::Result;
use super::tables::{COORDINATES, NODES};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::coordinate::{Coord, CoordinateEntry};

fn key(node: &str, segment: &str) -> String {
    format!("{}\0{segment}", node.to_lowercase())
}

/// Stores the coordinates of known nodes (Consul's `CoordinateBatchUpdate`).
pub fn update(tx: &mut WriteTx, updates: Vec<CoordinateEntry>) -> Result<()> {
    for entry in updates {
        if tx.get(NODES, &entry.node.to_lowercase())?.is_none() {
            continue;
        }
        let k = key(&entry.node, &entry.segment);
        if tx.get(COORDINATES, &k)?.as_ref() != Some(&entry) {
            tx.put(COORDINATES, &k, &entry)?;
        }
    }
    Ok(())
}

/// Gives `node` the origin coordinate in the default segment unless it has one: where an
/// agent starts before its first measurement.
pub fn ensure_origin(tx: &mut WriteTx, node: &str) -> Result<()> {
    if tx.get(COORDINATES, &key(node, ""))?.is_none() {
        let origin = CoordinateEntry {
            node: node.to_string(),
            segment: String::new(),
            coord: Coord::origin(),
        };
        update(tx, vec![origin])?;
    }
    Ok(())
}

/// Removes every coordinate of `node` (the node was deregistered).
pub fn delete_node(tx: &mut WriteTx, node: &str) -> Result<()> {
    let prefix = format!("{}\0", node.to_lowercase());
    for (k, _) in tx.scan_prefix(COORDINATES, &prefix)? {
        tx.delete(COORDINATES, &k)?;
    }
    Ok(())
}

/// `node`'s coordinate in `segment`, without watching (for distance sorts).
pub fn lookup(r: &impl Readable, node: &str, segment: &str) -> Result<Option<Coord>> {
    Ok(r.get(COORDINATES, &key(node, segment))?.map(|e| e.coord))
}

/// Every coordinate, by node and segment, with the table's index (`/v1/coordinate/nodes`).
pub fn list(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<CoordinateEntry>)> {
    ws.table(COORDINATES.name);
    let entries = r.scan_prefix(COORDINATES, "")?;
    Ok((
        r.table_index(COORDINATES.name)?,
        entries.into_iter().map(|(_, e)| e).collect(),
    ))
}
