//! Prepared queries (Consul's `prepared_query_endpoint.go` on the server side): checking a
//! query before it is written, writing it, and running it. `execute` is the one way a query
//! runs, for `/v1/query/<id|name>/execute` and for DNS's `<name>.query.<domain>`.
//!
//! This agent is its datacenter's only server and knows no other datacenter, so a query's
//! `Failover` is stored and shown but there is nowhere to fail over to: `Failovers` is always 0.

pub mod template;

use super::acl::Identity;
use super::context::AgentContext;
use crate::acl::{AccessLevel, Authorizer, Resource};
use crate::store::catalog::{self, Lookup};
use crate::store::prepared_query::{self as store, Resolved};
use crate::store::{coordinate, Command, Readable, StoreError, WatchSet};
use crate::types::catalog::{CheckServiceNode, CRITICAL, PASSING};
use crate::types::prepared_query::{PreparedQuery, QueryDns, REDACTED_TOKEN};
use rand::seq::SliceRandom;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a prepared-query operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No query has that ID or name (Consul's `ErrQueryNotFound`).
    #[error("Query not found")]
    NotFound,
    /// The query breaks one of Consul's rules; its server answers these as RPC errors (500).
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] super::acl::ResolveError),
}

type Result<T> = std::result::Result<T, QueryError>;

/// Consul's `parseQuery`: what a query must satisfy on its own before it is written. Templates
/// are compiled too (Consul does so inside the write, with the same outcome).
pub fn check(query: &PreparedQuery) -> Result<()> {
    let invalid = |m: String| QueryError::Rejected(format!("Invalid prepared query: {m}"));
    if query.name.is_empty() && !query.is_template() && query.session.is_empty() {
        return Err(invalid("Must be bound to a session".into()));
    }
    if query.token == REDACTED_TOKEN {
        return Err(invalid(format!("Bad Token '{REDACTED_TOKEN}', it looks like a query definition with a redacted token was submitted")));
    }
    let svc = &query.service;
    if svc.service.is_empty() {
        return Err(invalid("Must provide a Service name to query".into()));
    }
    let failover = &svc.failover;
    if failover.nearest_n < 0 {
        return Err(invalid(format!(
            "Bad NearestN '{}', must be >= 0",
            failover.nearest_n
        )));
    }
    let has_targets = failover.targets.as_ref().is_some_and(|t| !t.is_empty());
    let has_datacenters = failover.datacenters.as_ref().is_some_and(|d| !d.is_empty());
    if has_targets && (failover.nearest_n != 0 || has_datacenters) {
        return Err(invalid(
            "Targets cannot be populated with NearestN or Datacenters".into(),
        ));
    }
    if !svc.sameness_group.is_empty() {
        if has_targets || has_datacenters || failover.nearest_n != 0 {
            return Err(invalid("Sameness group cannot be set with failover".into()));
        }
        if !svc.peer.is_empty() {
            return Err(invalid("Sameness group cannot be set with peer".into()));
        }
    }
    if let Some(meta) = &svc.node_meta {
        super::definition::validate_meta_pairs(meta, true).map_err(invalid)?;
    }
    dns_ttl(&query.dns).map_err(invalid)?;
    if query.is_template() {
        template::compile(query)
            .map_err(|e| QueryError::Rejected(format!("failed compiling template: {e}")))?;
    }
    Ok(())
}

/// A query's DNS TTL (`parseDNS`): `None` when it sets none.
pub fn dns_ttl(dns: &QueryDns) -> std::result::Result<Option<Duration>, String> {
    if dns.ttl.is_empty() {
        return Ok(None);
    }
    if let Some(magnitude) = dns.ttl.strip_prefix('-') {
        // Go parses a negative duration; Consul then refuses it by its nanoseconds.
        if let Ok(d) = crate::duration::parse(magnitude) {
            if !d.is_zero() {
                return Err(format!("DNS TTL '-{}', must be >=0", d.as_nanos()));
            }
            return Ok(Some(d));
        }
    }
    crate::duration::parse(&dns.ttl)
        .map(Some)
        .map_err(|e| format!("Bad DNS TTL '{}': {e}", dns.ttl))
}

/// Creates `query` under a new ID and returns the ID.
pub async fn create(ctx: &AgentContext, mut query: PreparedQuery) -> Result<String> {
    if !query.id.is_empty() {
        return Err(QueryError::Rejected(
            "ID must be empty when creating a new prepared query".into(),
        ));
    }
    check(&query)?;
    query.id = uuid::Uuid::new_v4().to_string();
    let id = query.id.clone();
    ctx.store
        .apply(Command::PreparedQuerySet {
            query: Box::new(query),
            create: true,
        })
        .await?;
    Ok(id)
}

/// Replaces the query `query.id` names.
pub async fn update(ctx: &AgentContext, query: PreparedQuery) -> Result<()> {
    check(&query)?;
    ctx.store
        .apply(Command::PreparedQuerySet {
            query: Box::new(query),
            create: false,
        })
        .await?;
    Ok(())
}

/// Deletes a query, refusing one that doesn't exist as Consul does.
pub async fn delete(ctx: &AgentContext, id: &str) -> Result<()> {
    if store::lookup(&ctx.store.read()?, id)?.is_none() {
        return Err(QueryError::Rejected(format!(
            "Cannot modify non-existent prepared query: '{id}'"
        )));
    }
    ctx.store
        .apply(Command::PreparedQueryDelete { id: id.into() })
        .await?;
    Ok(())
}

/// The query `id_or_name` runs as, with templates rendered for that name, and the index of
/// the queries it was read at.
pub fn resolve(r: &impl Readable, id_or_name: &str) -> Result<(u64, PreparedQuery)> {
    let (index, found) = store::resolve(r, id_or_name)?;
    let query = match found.ok_or(QueryError::NotFound)? {
        Resolved::Query(q) => q,
        Resolved::Template(t) => template::compile(&t)
            .and_then(|c| c.render(id_or_name, AGENT_SEGMENT))
            .map_err(QueryError::Rejected)?,
    };
    Ok((index, query))
}

/// This agent's network segment, for `${agent.segment}`: CE has only the default one.
const AGENT_SEGMENT: &str = "";

/// Where an execution's caller is, for sorting the answers by round trip.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `?near`: a node name, `_agent` (this agent's node) or `_ip` (the node at `ip`); empty
    /// for the query's own `Near`.
    pub near: String,
    /// The caller's address, for `_ip`.
    pub ip: Option<IpAddr>,
}

/// How to run a query.
#[derive(Clone)]
pub struct ExecuteOptions {
    pub source: Source,
    /// At most this many instances (0: all).
    pub limit: usize,
    /// Only Connect-capable instances, whatever the query says.
    pub connect: bool,
    /// Who is asking (their token already defaulted to the agent's `default` token); the
    /// query's own `Token`, when it has one, is used instead.
    pub caller: Arc<Identity>,
}

/// What a query found (`PreparedQueryExecuteResponse`).
#[derive(Debug, Clone)]
pub struct Execution {
    /// The service looked up (after template rendering).
    pub service: String,
    /// The healthy instances the query keeps, nearest first when sorted, else shuffled.
    pub nodes: Vec<CheckServiceNode>,
    pub dns: QueryDns,
    pub datacenter: String,
    pub failovers: u32,
}

impl Execution {
    /// The TTL DNS answers carry: the query's own, if it sets one.
    pub fn ttl(&self) -> Option<Duration> {
        dns_ttl(&self.dns).ok().flatten()
    }
}

/// Runs the query `id_or_name` (by ID, exact name or longest template prefix) in this
/// datacenter (Consul's `PreparedQuery.Execute`): the service's instances minus those with a
/// critical check (any non-passing one with `OnlyPassing`) not in `IgnoreCheckIDs`, narrowed
/// by `NodeMeta`, `ServiceMeta` and `Tags` (`!tag` excludes), minus what the token may not
/// read; shuffled, then sorted by round trip from the source node (which comes first) when
/// there is one with a coordinate, then cut to `limit`.
pub fn execute(ctx: &AgentContext, id_or_name: &str, opts: &ExecuteOptions) -> Result<Execution> {
    let r = ctx.store.read()?;
    let (_, query) = resolve(&r, id_or_name)?;
    let svc = &query.service;
    let lookup = if svc.connect || opts.connect {
        Lookup::Connect
    } else {
        Lookup::Service
    };
    let (_, mut nodes) =
        catalog::check_service_nodes(&r, &mut WatchSet::new(), &svc.service, lookup)?;
    let ignored = svc.ignore_check_ids.as_deref().unwrap_or_default();
    nodes.retain(|n| {
        n.checks.iter().all(|c| {
            ignored.contains(&c.check_id)
                || !(c.status == CRITICAL || (svc.only_passing && c.status != PASSING))
        })
    });
    if let Some(meta) = svc.node_meta.as_ref().filter(|m| !m.is_empty()) {
        nodes.retain(|n| meta.iter().all(|(k, v)| n.node.meta.get(k) == Some(v)));
    }
    if let Some(meta) = svc.service_meta.as_ref().filter(|m| !m.is_empty()) {
        nodes.retain(|n| meta.iter().all(|(k, v)| n.service.meta.get(k) == Some(v)));
    }
    if let Some(tags) = svc.tags.as_ref().filter(|t| !t.is_empty()) {
        nodes.retain(|n| has_tags(&n.service.tags, tags));
    }
    let query_identity;
    let authorizer = if query.token.is_empty() {
        &opts.caller.authorizer
    } else {
        query_identity = ctx.acl.resolve(&query.token, None)?;
        &query_identity.authorizer
    };
    nodes.retain(|n| readable(authorizer, n));
    nodes.shuffle(&mut rand::rng());
    let near = if opts.source.near.is_empty() {
        svc.near.as_str()
    } else {
        opts.source.near.as_str()
    };
    let near = match near {
        "_agent" => ctx.config.node_name.clone(),
        "_ip" => opts
            .source
            .ip
            .and_then(|ip| node_at(&r, ip).transpose())
            .transpose()?
            .unwrap_or_default(),
        other => other.to_string(),
    };
    if !near.is_empty() {
        sort_by_distance(&r, &near, &mut nodes)?;
        // Consul puts `near` first if among the first ten, sorted or not (no coordinate),
        // its name matched in any case (`strings.EqualFold`).
        if let Some(at) = nodes
            .iter()
            .take(10)
            .position(|n| n.node.node.eq_ignore_ascii_case(&near))
        {
            nodes.swap(0, at);
        }
    }
    if opts.limit > 0 {
        nodes.truncate(opts.limit);
    }
    Ok(Execution {
        service: svc.service.clone(),
        nodes,
        dns: query.dns.clone(),
        datacenter: ctx.config.datacenter.clone(),
        failovers: 0,
    })
}

/// Whether a service's tags have every required tag and no `!`-excluded one, compared
/// case-insensitively (Consul's `tagFilter`).
fn has_tags(have: &[String], wanted: &[String]) -> bool {
    let have: Vec<String> = have.iter().map(|t| t.to_lowercase()).collect();
    wanted.iter().all(|tag| {
        let tag = tag.to_lowercase();
        match tag.strip_prefix('!') {
            Some(excluded) => !have.iter().any(|t| t == excluded),
            None => have.contains(&tag),
        }
    })
}

/// Whether the token may see an instance: `node:read` on its node and `service:read` on it.
fn readable(authorizer: &Authorizer, n: &CheckServiceNode) -> bool {
    authorizer
        .enforce(Resource::Node, AccessLevel::Read, &n.node.node)
        .is_allow()
        && authorizer
            .enforce(Resource::Service, AccessLevel::Read, &n.service.service)
            .is_allow()
}

/// The name of the node whose address is `ip`, if any.
fn node_at(r: &crate::store::ReadTx, ip: IpAddr) -> Result<Option<String>> {
    let (_, nodes) = catalog::nodes(r, &mut WatchSet::new())?;
    let ip = ip.to_string();
    Ok(nodes.into_iter().find(|n| n.address == ip).map(|n| n.node))
}

/// Sorts by round trip from `near` (nodes without a coordinate last, order kept among
/// equals); without a coordinate for `near`, leaves the order alone.
fn sort_by_distance(
    r: &crate::store::ReadTx,
    near: &str,
    nodes: &mut [CheckServiceNode],
) -> Result<()> {
    let Some(origin) = coordinate::lookup(r, near, "")? else {
        return Ok(());
    };
    let mut keyed = Vec::with_capacity(nodes.len());
    for n in nodes.iter() {
        let distance = coordinate::lookup(r, &n.node.node, "")?
            .map_or(f64::INFINITY, |c| origin.distance_to(&c));
        keyed.push(distance);
    }
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| keyed[a].total_cmp(&keyed[b]));
    let sorted: Vec<CheckServiceNode> = order.iter().map(|&i| nodes[i].clone()).collect();
    nodes.clone_from_slice(&sorted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_filter_requires_and_excludes_case_insensitively() {
        let have = tags(&["Primary", "v1"]);
        assert!(has_tags(&have, &tags(&["primary"])));
        assert!(has_tags(&have, &tags(&["primary", "!v2"])));
        assert!(!has_tags(&have, &tags(&["primary", "!V1"])));
        assert!(!has_tags(&have, &tags(&["secondary"])));
    }

    #[test]
    fn dns_ttl_as_consul_parses_it() {
        let ttl = |s: &str| dns_ttl(&QueryDns { ttl: s.into() });
        assert_eq!(ttl("").unwrap(), None);
        assert_eq!(ttl("10s").unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(
            ttl("-5s").unwrap_err(),
            "DNS TTL '-5000000000', must be >=0"
        );
        assert_eq!(
            ttl("nope").unwrap_err(),
            "Bad DNS TTL 'nope': time: invalid duration \"nope\""
        );
    }
}
