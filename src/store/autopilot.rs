//! The autopilot configuration (Consul's `state/autopilot.go`): one row, written with its
//! defaults when a server first leads and replaced by `PUT
//! /v1/operator/autopilot/configuration`, optionally check-and-set.

use super::error::Result;
use super::tables::AUTOPILOT;
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::autopilot::AutopilotConfig;

/// The only key of the `autopilot` table.
const KEY: &str = "config";

/// The stored configuration (the defaults before a server has written one) and the table's
/// index.
pub fn get(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, AutopilotConfig)> {
    ws.table(AUTOPILOT.name);
    let config = r.get(AUTOPILOT, KEY)?.unwrap_or_default();
    Ok((r.table_index(AUTOPILOT.name)?, config))
}

/// Stores `config` unless a configuration is already stored (a new leader's defaults).
pub fn ensure(tx: &mut WriteTx, config: AutopilotConfig) -> Result<()> {
    if tx.get(AUTOPILOT, KEY)?.is_none() {
        set(tx, config, None)?;
    }
    Ok(())
}

/// Replaces the configuration; with `cas`, only when the stored one's `ModifyIndex` equals it.
/// Returns whether it was stored.
pub fn set(tx: &mut WriteTx, config: AutopilotConfig, cas: Option<u64>) -> Result<bool> {
    let existing = tx.get(AUTOPILOT, KEY)?;
    let current = existing.as_ref().map_or(0, |c| c.modify_index);
    if cas.is_some_and(|cas| cas != current) {
        return Ok(false);
    }
    let index = tx.index();
    let stored = AutopilotConfig {
        create_index: existing.map_or(index, |c| c.create_index),
        modify_index: index,
        ..config
    };
    tx.put(AUTOPILOT, KEY, &stored)?;
    Ok(true)
}
