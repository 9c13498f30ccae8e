//! Every table of the store, in one place. Keys are strings; record values are
//! `codec`-encoded envelopes of the named type.
//!
//! Changing what a table holds means a new record version (see `codec`) or a migration
//! (`migrations/`) plus a bump of `SCHEMA_VERSION`; `schema_is_pinned` below catches a
//! change made without one.

use redb::TableDefinition;
use std::marker::PhantomData;

/// The schema this build writes. `migrations/` holds one step per version up to this one.
pub const SCHEMA_VERSION: u64 = 12;

/// `meta`: name → u64. Holds `schema_version` and `index`, the last global index handed out
/// (strictly increasing; every committed write carries a larger one than any before it).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_INDEX: &str = "index";
/// The highest global index a store continues from. Each command adds at most one, so index
/// arithmetic cannot overflow; a snapshot claiming a higher index is refused.
pub const MAX_INDEX: u64 = 1 << 62;
/// `applied`: the log position of the last command applied (see `command`). Every command
/// takes one position, whether it wrote or failed; a command at or below it is refused.
pub const META_APPLIED: &str = "applied";

/// `table_index`: table name → the global index of the last write that touched it
/// (Consul's `index` table, the source of `X-Consul-Index` for table-wide reads).
pub const TABLE_INDEX: TableDefinition<&str, u64> = TableDefinition::new("table_index");

/// A table of records of type `T`, keyed by string.
pub struct Table<T> {
    pub name: &'static str,
    record: PhantomData<fn() -> T>,
}

impl<T> Table<T> {
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            record: PhantomData,
        }
    }

    pub fn def(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        raw(self.name)
    }
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Table<T> {}

/// The untyped definition of a record table, for code that moves bytes without decoding them
/// (undo log, snapshots).
pub fn raw(name: &'static str) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

/// `kv`: KV key → `KvEntry`. Keys are stored exactly as given (case-sensitive).
pub const KV: Table<crate::types::KvEntry> = Table::new("kv");

/// `kv_tombstones`: deleted KV key → `Tombstone`. Keeps the index of a listed prefix from going
/// backwards after a delete (Consul's graveyard); reaped once older than the tombstone TTL.
pub const KV_TOMBSTONES: Table<super::kv::Tombstone> = Table::new("kv_tombstones");

/// `catalog_nodes`: lowercased node name → `Node`.
pub const NODES: Table<crate::types::catalog::Node> = Table::new("catalog_nodes");

/// `catalog_services`: `<lowercased node>\0<service id>` → `ServiceEntry`.
pub const SERVICES: Table<super::catalog::ServiceEntry> = Table::new("catalog_services");

/// `catalog_service_names`: `<service name>\0<lowercased node>\0<service id>` → `Marker`; an
/// index of `catalog_services` by name. Invariant: one row per `catalog_services` row.
pub const SERVICE_NAMES: Table<super::catalog::Marker> = Table::new("catalog_service_names");

/// `catalog_connect_names`: `<destination>\0<lowercased node>\0<service id>` → `Marker`; the
/// Connect-capable instances for a service: its proxies and, if native, itself.
pub const CONNECT_NAMES: Table<super::catalog::Marker> = Table::new("catalog_connect_names");

/// `catalog_checks`: `<lowercased node>\0<check id>` → `HealthCheck`.
pub const CHECKS: Table<crate::types::catalog::HealthCheck> = Table::new("catalog_checks");

/// `catalog_service_checks`: `<lowercased node>\0<service id>\0<check id>` → `Marker`; an index
/// of `catalog_checks` by service (node-level checks have an empty service id).
pub const SERVICE_CHECKS: Table<super::catalog::Marker> = Table::new("catalog_service_checks");

/// `catalog_indexes`: `service/<name>`, `connect/<name>`, `node/<lowercased name>` → the last
/// index that changed anything a read of that service or node returns (Consul's
/// `service.<name>` entries); blocking reads of one service watch exactly that row.
pub const CATALOG_INDEXES: Table<super::catalog::IndexEntry> = Table::new("catalog_indexes");

/// `agent_services`: service ID → `LocalService`, the services registered through this agent.
pub const AGENT_SERVICES: Table<super::agent_state::LocalService> = Table::new("agent_services");

/// `agent_checks`: check ID → `LocalCheck`, the checks registered through this agent.
pub const AGENT_CHECKS: Table<super::agent_state::LocalCheck> = Table::new("agent_checks");

/// `sessions`: session ID → `Session`.
pub const SESSIONS: Table<crate::types::session::Session> = Table::new("sessions");

/// `session_checks`: `<lowercased node>\0<check id>\0<session id>` → `Marker`: the sessions a
/// check invalidates when it goes critical or away.
pub const SESSION_CHECKS: Table<super::catalog::Marker> = Table::new("session_checks");

/// `session_nodes`: `<lowercased node>\0<session id>` → `Marker`: the sessions of a node.
pub const SESSION_NODES: Table<super::catalog::Marker> = Table::new("session_nodes");

/// `session_locks`: `<session id>\0<KV key>` → `Marker`: the locks a session holds.
/// Invariant: a row exists exactly while the KV entry's `Session` is that session.
pub const SESSION_LOCKS: Table<super::catalog::Marker> = Table::new("session_locks");

/// `kv_lock_delays`: KV key → `LockDelay`: no acquire before this time, after the holding
/// session was invalidated.
pub const KV_LOCK_DELAYS: Table<super::session::LockDelay> = Table::new("kv_lock_delays");

/// `config_entries`: `<kind>\0<name>` → `ConfigEntry`. The kind is one Consul CE knows and the
/// name is the normalized one (mesh → `mesh`, proxy-defaults → `global`), so a kind's entries
/// share the prefix `<kind>\0`, which list reads scan and watch.
pub const CONFIG_ENTRIES: Table<crate::types::config_entry::ConfigEntry> =
    Table::new("config_entries");

/// `coordinates`: `<lowercased node>\0<segment>` → `CoordinateEntry`. Invariant: only nodes
/// in `catalog_nodes` have rows.
pub const COORDINATES: Table<crate::types::coordinate::CoordinateEntry> = Table::new("coordinates");

/// `autopilot`: `config` → `AutopilotConfig`, the one autopilot configuration.
pub const AUTOPILOT: Table<crate::types::autopilot::AutopilotConfig> = Table::new("autopilot");

/// `connect_ca_config`: `config` → `CaConfig`, the Connect CA's one configuration.
pub const CA_CONFIG: Table<super::connect_ca::CaConfig> = Table::new("connect_ca_config");

/// `connect_ca_roots`: root ID → `CaRootRecord`. Invariant: once the CA is initialized,
/// exactly one root is active.
pub const CA_ROOTS: Table<super::connect_ca::CaRootRecord> = Table::new("connect_ca_roots");

/// `connect_ca_leaves`: service name → `LeafRecord`, the leaf certificate this agent serves for
/// that service.
pub const CA_LEAVES: Table<super::connect_ca::LeafRecord> = Table::new("connect_ca_leaves");

/// `acl_tokens`: accessor ID → `AclToken`, links to policies and roles by ID only.
pub const ACL_TOKENS: Table<crate::types::acl::AclToken> = Table::new("acl_tokens");

/// `acl_token_secrets`: secret ID → `IdRef` (the accessor). Invariant: one row per token.
pub const ACL_TOKEN_SECRETS: Table<super::acl::IdRef> = Table::new("acl_token_secrets");

/// `acl_policies`: policy ID → `AclPolicy`.
pub const ACL_POLICIES: Table<crate::types::acl::AclPolicy> = Table::new("acl_policies");

/// `acl_policy_names`: policy name → `IdRef`. Invariant: one row per policy.
pub const ACL_POLICY_NAMES: Table<super::acl::IdRef> = Table::new("acl_policy_names");

/// `acl_roles`: role ID → `AclRole`, links to policies by ID only.
pub const ACL_ROLES: Table<crate::types::acl::AclRole> = Table::new("acl_roles");

/// `acl_role_names`: role name → `IdRef`. Invariant: one row per role.
pub const ACL_ROLE_NAMES: Table<super::acl::IdRef> = Table::new("acl_role_names");

/// `acl_bootstrap`: `bootstrap` → `Bootstrap`, the index of the last ACL bootstrap.
pub const ACL_BOOTSTRAP: Table<super::acl::Bootstrap> = Table::new("acl_bootstrap");

/// `prepared_queries`: query ID → `PreparedQuery`.
pub const PREPARED_QUERIES: Table<crate::types::prepared_query::PreparedQuery> =
    Table::new("prepared_queries");

/// `prepared_query_names`: lowercased non-empty query name → `IdRef`. Invariant: one row per
/// named query.
pub const PREPARED_QUERY_NAMES: Table<super::acl::IdRef> = Table::new("prepared_query_names");

/// `prepared_query_templates`: lowercased template name (possibly empty) → `IdRef`, the
/// templates a name resolves to by longest prefix. Invariant: one row per template.
pub const PREPARED_QUERY_TEMPLATES: Table<super::acl::IdRef> =
    Table::new("prepared_query_templates");

/// `prepared_query_sessions`: `<session id>\0<query id>` → `Marker`: the queries deleted with
/// their session. Invariant: one row per query with a session.
pub const PREPARED_QUERY_SESSIONS: Table<super::catalog::Marker> =
    Table::new("prepared_query_sessions");
/// `acl_auth_methods`: auth method name → `AclAuthMethod`.
pub const ACL_AUTH_METHODS: Table<crate::types::acl::AclAuthMethod> =
    Table::new("acl_auth_methods");

/// `acl_binding_rules`: binding rule ID → `AclBindingRule`. Invariant: its auth method exists.
pub const ACL_BINDING_RULES: Table<crate::types::acl::AclBindingRule> =
    Table::new("acl_binding_rules");

/// `service_virtual_ips`: service name → `ServiceVirtualIp`, its auto-assigned and manual
/// virtual addresses. Invariant: auto offsets are unique; a manual address is held by at most
/// one service.
pub const SERVICE_VIRTUAL_IPS: Table<super::virtual_ip::ServiceVirtualIp> =
    Table::new("service_virtual_ips");

/// A record table as code that moves rows without knowing their type sees it (snapshots,
/// dumps): its name, its record type's name, and a check that a row decodes as that type.
pub struct RecordTable {
    pub name: &'static str,
    pub record: &'static str,
    pub check: fn(&'static str, &str, &[u8]) -> super::Result<()>,
}

const fn record<T: super::codec::Record>(table: Table<T>, record: &'static str) -> RecordTable {
    RecordTable {
        name: table.name,
        record,
        check: decodes::<T>,
    }
}

fn decodes<T: super::codec::Record>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> super::Result<()> {
    super::codec::decode::<T>(table, key, bytes).map(|_| ())
}

/// Every record table, with the record type it holds, in creation order.
pub const RECORD_TABLES: &[RecordTable] = &[
    record(KV, "KvEntry"),
    record(KV_TOMBSTONES, "Tombstone"),
    record(NODES, "Node"),
    record(SERVICES, "ServiceEntry"),
    record(SERVICE_NAMES, "Marker"),
    record(CONNECT_NAMES, "Marker"),
    record(CHECKS, "HealthCheck"),
    record(SERVICE_CHECKS, "Marker"),
    record(CATALOG_INDEXES, "IndexEntry"),
    record(AGENT_SERVICES, "LocalService"),
    record(AGENT_CHECKS, "LocalCheck"),
    record(SESSIONS, "Session"),
    record(SESSION_CHECKS, "Marker"),
    record(SESSION_NODES, "Marker"),
    record(SESSION_LOCKS, "Marker"),
    record(KV_LOCK_DELAYS, "LockDelay"),
    record(CONFIG_ENTRIES, "ConfigEntry"),
    record(COORDINATES, "CoordinateEntry"),
    record(AUTOPILOT, "AutopilotConfig"),
    record(CA_CONFIG, "CaConfig"),
    record(CA_ROOTS, "CaRootRecord"),
    record(CA_LEAVES, "LeafRecord"),
    record(ACL_TOKENS, "AclToken"),
    record(ACL_TOKEN_SECRETS, "IdRef"),
    record(ACL_POLICIES, "AclPolicy"),
    record(ACL_POLICY_NAMES, "IdRef"),
    record(ACL_ROLES, "AclRole"),
    record(ACL_ROLE_NAMES, "IdRef"),
    record(ACL_BOOTSTRAP, "Bootstrap"),
    record(PREPARED_QUERIES, "PreparedQuery"),
    record(PREPARED_QUERY_NAMES, "IdRef"),
    record(PREPARED_QUERY_TEMPLATES, "IdRef"),
    record(PREPARED_QUERY_SESSIONS, "Marker"),
    record(ACL_AUTH_METHODS, "AclAuthMethod"),
    record(ACL_BINDING_RULES, "AclBindingRule"),
    record(SERVICE_VIRTUAL_IPS, "ServiceVirtualIp"),
];

#[cfg(test)]
mod tests {
    /// A golden list of the schema: if this fails, the stored shape changed; add a migration
    /// and bump SCHEMA_VERSION, then update the list.
    #[test]
    fn schema_is_pinned() {
        let described: Vec<String> = super::RECORD_TABLES
            .iter()
            .map(|t| format!("{}:{}", t.name, t.record))
            .collect();
        assert_eq!(
            described,
            [
                "kv:KvEntry",
                "kv_tombstones:Tombstone",
                "catalog_nodes:Node",
                "catalog_services:ServiceEntry",
                "catalog_service_names:Marker",
                "catalog_connect_names:Marker",
                "catalog_checks:HealthCheck",
                "catalog_service_checks:Marker",
                "catalog_indexes:IndexEntry",
                "agent_services:LocalService",
                "agent_checks:LocalCheck",
                "sessions:Session",
                "session_checks:Marker",
                "session_nodes:Marker",
                "session_locks:Marker",
                "kv_lock_delays:LockDelay",
                "config_entries:ConfigEntry",
                "coordinates:CoordinateEntry",
                "autopilot:AutopilotConfig",
                "connect_ca_config:CaConfig",
                "connect_ca_roots:CaRootRecord",
                "connect_ca_leaves:LeafRecord",
                "acl_tokens:AclToken",
                "acl_token_secrets:IdRef",
                "acl_policies:AclPolicy",
                "acl_policy_names:IdRef",
                "acl_roles:AclRole",
                "acl_role_names:IdRef",
                "acl_bootstrap:Bootstrap",
                "prepared_queries:PreparedQuery",
                "prepared_query_names:IdRef",
                "prepared_query_templates:IdRef",
                "prepared_query_sessions:Marker",
                "acl_auth_methods:AclAuthMethod",
                "acl_binding_rules:AclBindingRule",
                "service_virtual_ips:ServiceVirtualIp",
            ]
        );
        assert_eq!(super::SCHEMA_VERSION, 12);
    }
}
