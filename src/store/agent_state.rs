//! The agent's own registrations (Consul's agent local state), persisted so a restart brings
//! back every service and check with its runner. Each write goes through the catalog in the
//! same operation: on a single node the anti-entropy sync is that local write.

use super::catalog;
use super::error::Result;
use super::tables::{AGENT_CHECKS, AGENT_SERVICES};
use super::{Readable, WriteTx};
use crate::types::catalog::{HealthCheck, NodeService};
use crate::types::JsonValue;
use bincode::{Decode, Encode};

/// A service registered through this agent.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LocalService {
    pub service: NodeService,
    /// The parent's ID when this is a sidecar registered with it (removed with the parent).
    pub sidecar_of: String,
}

/// A check registered through this agent: its definition (to restart its runner) and, for TTL
/// checks, when it expires. Its status and output live in the catalog row.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct LocalCheck {
    pub check_id: String,
    pub service_id: String,
    /// The check definition as decoded (canonical Consul keys).
    pub definition: JsonValue,
    /// Unix milliseconds at which a TTL check turns critical; 0 when not a TTL check.
    pub ttl_deadline_ms: u64,
}

impl super::codec::Record for LocalService {
    const VERSION: u8 = 1;
}
impl super::codec::Record for LocalCheck {
    const VERSION: u8 = 1;
}

pub fn services(r: &impl Readable) -> Result<Vec<LocalService>> {
    Ok(r.scan_prefix(AGENT_SERVICES, "")?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

pub fn service(r: &impl Readable, id: &str) -> Result<Option<LocalService>> {
    r.get(AGENT_SERVICES, id)
}

/// One local service for a blocking read, which wakes when that service is written.
pub fn watched_service(
    r: &super::ReadTx,
    ws: &mut super::WatchSet,
    id: &str,
) -> Result<(u64, Option<LocalService>)> {
    ws.key(AGENT_SERVICES.name, id);
    Ok((r.global_index()?, r.get(AGENT_SERVICES, id)?))
}

/// Row counts of the agent's state, for metrics.
pub struct StateCounts {
    pub nodes: u64,
    pub service_instances: u64,
    pub checks: u64,
    pub kv_entries: u64,
    pub sessions: u64,
    pub local_services: u64,
    pub local_checks: u64,
}

pub fn counts(r: &super::ReadTx) -> Result<StateCounts> {
    use super::tables::{CHECKS, KV, NODES, SERVICES, SESSIONS};
    Ok(StateCounts {
        nodes: r.row_count(NODES)?,
        service_instances: r.row_count(SERVICES)?,
        checks: r.row_count(CHECKS)?,
        kv_entries: r.row_count(KV)?,
        sessions: r.row_count(SESSIONS)?,
        local_services: r.row_count(AGENT_SERVICES)?,
        local_checks: r.row_count(AGENT_CHECKS)?,
    })
}

pub fn checks(r: &impl Readable) -> Result<Vec<LocalCheck>> {
    Ok(r.scan_prefix(AGENT_CHECKS, "")?
        .into_iter()
        .map(|(_, c)| c)
        .collect())
}

pub fn check(r: &impl Readable, id: &str) -> Result<Option<LocalCheck>> {
    r.get(AGENT_CHECKS, id)
}

/// Stores a local service and syncs it to the catalog.
pub fn put_service(tx: &mut WriteTx, node: &str, local: LocalService) -> Result<()> {
    catalog::ensure_service(tx, node, local.service.clone())?;
    tx.put(AGENT_SERVICES, &local.service.id.clone(), &local)
}

/// Removes a local service, its checks and its sidecar, here and in the catalog.
pub fn delete_service(tx: &mut WriteTx, node: &str, id: &str) -> Result<()> {
    for local in checks(&*tx)?.into_iter().filter(|c| c.service_id == id) {
        tx.delete(AGENT_CHECKS, &local.check_id)?;
    }
    for sidecar in services(&*tx)?.into_iter().filter(|s| s.sidecar_of == id) {
        delete_service(tx, node, &sidecar.service.id)?;
    }
    tx.delete(AGENT_SERVICES, id)?;
    catalog::delete_service(tx, node, id)
}

/// A service to register through the agent, with its checks (the local definition and the
/// catalog row of each).
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct ServiceRegistration {
    pub service: LocalService,
    pub checks: Vec<(LocalCheck, HealthCheck)>,
}

/// Registers services with their checks; with `replace_existing_checks`, also removes the
/// service's checks that are no longer defined and returns their IDs.
pub fn register_services(
    tx: &mut WriteTx,
    node: &str,
    services: Vec<ServiceRegistration>,
    replace_existing_checks: bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for ServiceRegistration {
        service,
        checks: defined,
    } in services
    {
        let id = service.service.id.clone();
        put_service(tx, node, service)?;
        let keep: Vec<String> = defined.iter().map(|(l, _)| l.check_id.clone()).collect();
        for (local, row) in defined {
            put_check(tx, local, row)?;
        }
        if replace_existing_checks {
            for old in checks(&*tx)?.into_iter().filter(|c| c.service_id == id) {
                if !keep.contains(&old.check_id) {
                    delete_check(tx, node, &old.check_id)?;
                    removed.push(old.check_id);
                }
            }
        }
    }
    Ok(removed)
}

/// Stores a local check and its catalog row. Re-registering a check keeps its status and
/// output.
pub fn put_check(tx: &mut WriteTx, local: LocalCheck, mut row: HealthCheck) -> Result<()> {
    if let Some(prev) = catalog::get_check(&*tx, &row.node, &row.check_id)? {
        row.status = prev.status;
        row.output = prev.output;
    }
    catalog::ensure_check(tx, row)?;
    tx.put(AGENT_CHECKS, &local.check_id.clone(), &local)
}

/// Removes a local check and its catalog row.
pub fn delete_check(tx: &mut WriteTx, node: &str, id: &str) -> Result<()> {
    tx.delete(AGENT_CHECKS, id)?;
    catalog::delete_check(tx, node, id)
}

/// Records a check result; for a TTL check also its new deadline. A check deregistered
/// since the result was taken is left alone.
pub fn set_check_status(
    tx: &mut WriteTx,
    node: &str,
    id: &str,
    status: &str,
    output: &str,
    ttl_deadline_ms: Option<u64>,
) -> Result<()> {
    let Some(local) = tx.get(AGENT_CHECKS, id)? else {
        return Ok(());
    };
    if let Some(deadline) = ttl_deadline_ms {
        tx.put(
            AGENT_CHECKS,
            id,
            &LocalCheck {
                ttl_deadline_ms: deadline,
                ..local
            },
        )?;
    }
    catalog::update_check_status(tx, node, id, status, output)
}
