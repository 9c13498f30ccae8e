//! Intention reads (Consul's `state/config_entry_intention.go`): intentions are never stored
//! on their own, only as the sources of `service-intentions` config entries, so every read
//! here goes through `config_entry` and watches that kind's prefix. A write of an entry by
//! either API therefore wakes the readers of both.

use super::config_entry;
use super::error::Result;
use super::{ReadTx, Readable, WatchSet};
use crate::types::config_entry::ConfigEntry;
use crate::types::intention::{
    self, sort_by_precedence, Intention, MatchBy, SERVICE_INTENTIONS_KIND,
};
use std::collections::BTreeMap;

/// Every `service-intentions` entry, watching them all; with the config entries' index.
fn entries(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<ConfigEntry>)> {
    config_entry::list(r, ws, Some(SERVICE_INTENTIONS_KIND))
}

/// Every intention, in precedence order (`GET /v1/connect/intentions`).
pub fn list(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<Intention>)> {
    let (index, entries) = entries(r, ws)?;
    let mut all: Vec<Intention> = entries.iter().flat_map(intention::intentions).collect();
    sort_by_precedence(&mut all);
    Ok((index, all))
}

/// The intention from `source` to `destination`, if any (`/v1/connect/intentions/exact`).
pub fn exact(
    r: &ReadTx,
    ws: &mut WatchSet,
    source: &str,
    destination: &str,
) -> Result<(u64, Option<Intention>)> {
    let (index, entry) = config_entry::get(r, ws, SERVICE_INTENTIONS_KIND, destination)?;
    let found = entry
        .iter()
        .flat_map(intention::intentions)
        .find(|i| i.source_name == source);
    Ok((index, found))
}

/// The legacy intention with this ID (`/v1/connect/intentions/<id>`); intentions written as
/// config entries have no ID, so an empty one finds nothing.
pub fn by_id(r: &ReadTx, ws: &mut WatchSet, id: &str) -> Result<(u64, Option<Intention>)> {
    let (index, all) = list(r, ws)?;
    Ok((
        index,
        all.into_iter().find(|i| !id.is_empty() && i.id == id),
    ))
}

/// For each name, the intentions matching it on the `by` side, exact ones before wildcards
/// (`/v1/connect/intentions/match`).
pub fn matching(
    r: &ReadTx,
    ws: &mut WatchSet,
    by: MatchBy,
    names: &[String],
) -> Result<(u64, BTreeMap<String, Vec<Intention>>)> {
    let (index, all) = list(r, ws)?;
    let out = names
        .iter()
        .map(|name| {
            let hits = all
                .iter()
                .filter(|i| i.matches(by, name))
                .cloned()
                .collect();
            (name.clone(), hits)
        })
        .collect();
    Ok((index, out))
}

/// The entry of a destination, without watching (to plan a write on).
pub fn entry_of(r: &impl Readable, destination: &str) -> Result<Option<ConfigEntry>> {
    config_entry::lookup(r, SERVICE_INTENTIONS_KIND, destination)
}

/// The entry holding the legacy intention `id`, without watching.
pub fn entry_with_id(r: &impl Readable, id: &str) -> Result<Option<ConfigEntry>> {
    Ok(config_entry::of_kind(r, SERVICE_INTENTIONS_KIND)?
        .into_iter()
        .find(|e| intention::sources(e).iter().any(|s| s.legacy_id == id)))
}
