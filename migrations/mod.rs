//! Ordered schema migrations. Step N brings a file from schema N-1 to N; `store::migrate`
//! applies the missing steps on open, each in its own durable transaction. Never edit a step
//! that has shipped: add the next one and bump `store::tables::SCHEMA_VERSION`.

#[path = "0001_initial.rs"]
mod m0001_initial;
#[path = "0002_kv_tombstones.rs"]
mod m0002_kv_tombstones;
#[path = "0003_catalog.rs"]
mod m0003_catalog;
#[path = "0004_agent_state.rs"]
mod m0004_agent_state;
#[path = "0005_sessions.rs"]
mod m0005_sessions;
#[path = "0006_config_entries.rs"]
mod m0006_config_entries;
#[path = "0007_coordinates.rs"]
mod m0007_coordinates;
#[path = "0008_connect_ca.rs"]
mod m0008_connect_ca;
#[path = "0009_acl.rs"]
mod m0009_acl;
#[path = "0010_prepared_queries.rs"]
mod m0010_prepared_queries;
#[path = "0011_acl_auth_methods.rs"]
mod m0011_acl_auth_methods;
#[path = "0012_service_virtual_ips.rs"]
mod m0012_service_virtual_ips;

use crate::store::Result;
use redb::WriteTransaction;

pub struct Migration {
    pub version: u64,
    pub name: &'static str,
    pub apply: fn(&WriteTransaction) -> Result<()>,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial: meta, table_index, kv",
        apply: m0001_initial::apply,
    },
    Migration {
        version: 2,
        name: "kv_tombstones (graveyard for prefix indexes)",
        apply: m0002_kv_tombstones::apply,
    },
    Migration {
        version: 3,
        name: "catalog: nodes, services, checks and their indexes",
        apply: m0003_catalog::apply,
    },
    Migration {
        version: 4,
        name: "agent local state: services and checks registered through the agent",
        apply: m0004_agent_state::apply,
    },
    Migration {
        version: 5,
        name: "sessions, their ties to checks and nodes, held locks and lock-delays",
        apply: m0005_sessions::apply,
    },
    Migration {
        version: 6,
        name: "config entries (service-defaults, gateways, ...)",
        apply: m0006_config_entries::apply,
    },
    Migration {
        version: 7,
        name: "network coordinates and the autopilot configuration",
        apply: m0007_coordinates::apply,
    },
    Migration {
        version: 8,
        name: "Connect CA: configuration, roots and leaf certificates",
        apply: m0008_connect_ca::apply,
    },
    Migration {
        version: 9,
        name: "ACL tokens, policies, roles, their name and secret indexes, bootstrap marker",
        apply: m0009_acl::apply,
    },
    Migration {
        version: 10,
        name: "prepared queries and their name, template and session indexes",
        apply: m0010_prepared_queries::apply,
    },
    Migration {
        version: 11,
        name: "ACL auth methods and binding rules (tokens gain their auth method: record v2)",
        apply: m0011_acl_auth_methods::apply,
    },
    Migration {
        version: 12,
        name: "service virtual IPs",
        apply: m0012_service_virtual_ips::apply,
    },
];
