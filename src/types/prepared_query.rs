//! Prepared queries (Consul's `structs.PreparedQuery`), as stored and rendered. Lists and maps
//! are options so a query renders `null` where Go renders a nil slice or map.

use super::catalog::CheckServiceNode;
use crate::gojson::{field, Kind, Schema, INT, STRING, UINT64};
use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only template type Consul knows.
pub const TEMPLATE_NAME_PREFIX_MATCH: &str = "name_prefix_match";

/// What a caller without `acl:write` sees instead of a query's token.
pub const REDACTED_TOKEN: &str = "<hidden>";

/// A datacenter or peer to fail over to (`QueryFailoverTarget`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct FailoverTarget {
    pub peer: String,
    pub datacenter: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// Where to look when the local datacenter has no healthy instance (`QueryFailoverOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct Failover {
    #[serde(rename = "NearestN")]
    pub nearest_n: i64,
    pub datacenters: Option<Vec<String>>,
    pub targets: Option<Vec<FailoverTarget>>,
}

/// The service a query looks up and how it narrows the instances (`ServiceQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    pub service: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sameness_group: String,
    pub failover: Failover,
    pub only_passing: bool,
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Option<Vec<String>>,
    pub near: String,
    pub tags: Option<Vec<String>>,
    pub node_meta: Option<BTreeMap<String, String>>,
    pub service_meta: Option<BTreeMap<String, String>>,
    pub peer: String,
    pub connect: bool,
}

/// How a query's answers are served over DNS (`QueryDNSOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    /// A Go duration; empty for the agent's default.
    #[serde(rename = "TTL")]
    pub ttl: String,
}

/// Whether and how a query is a template (`QueryTemplateOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    /// Empty for a plain query, else `name_prefix_match`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub regexp: String,
    pub remove_empty_tags: bool,
}

/// A prepared query. Invariants kept by the store: IDs are unique UUIDs; non-empty names are
/// unique (case-insensitively) and never another query's ID; at most one template has the
/// empty name; a query with a `Session` exists only while that session does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub session: String,
    pub token: String,
    pub template: QueryTemplate,
    pub service: ServiceQuery,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    pub create_index: u64,
    pub modify_index: u64,
}

impl crate::store::codec::Record for PreparedQuery {
    const VERSION: u8 = 1;
}

impl PreparedQuery {
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }

    /// The name `query` ACL rules apply to; `None` for an unnamed plain query, which only its
    /// ID (or a management token) reaches (`GetACLPrefix`).
    pub fn acl_prefix(&self) -> Option<&str> {
        (!self.name.is_empty() || self.is_template()).then_some(self.name.as_str())
    }
}

/// `structs.PreparedQuery` as Consul's handlers decode a request body (Go's `encoding/json`:
/// keys matched case-insensitively, unknown ones dropped, wrong types refused).
pub static PREPARED_QUERY: Schema = Schema {
    name: "PreparedQuery",
    go_type: "structs.PreparedQuery",
    fields: &[
        field("ID", STRING),
        field("Name", STRING),
        field("Session", STRING),
        field("Token", STRING),
        field("Template", Kind::Struct(&QUERY_TEMPLATE)),
        field("Service", Kind::Struct(&SERVICE_QUERY)),
        field("DNS", Kind::Struct(&QUERY_DNS)),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: false,
};

static QUERY_TEMPLATE: Schema = Schema {
    name: "QueryTemplateOptions",
    go_type: "structs.QueryTemplateOptions",
    fields: &[
        field("Type", STRING),
        field("Regexp", STRING),
        field("RemoveEmptyTags", Kind::Bool),
    ],
    base: None,
    strict: false,
};

static SERVICE_QUERY: Schema = Schema {
    name: "ServiceQuery",
    go_type: "structs.ServiceQuery",
    fields: &[
        field("Service", STRING),
        field("SamenessGroup", STRING),
        field("Failover", Kind::Struct(&FAILOVER)),
        field("OnlyPassing", Kind::Bool),
        field("IgnoreCheckIDs", Kind::StrList),
        field("Near", STRING),
        field("Tags", Kind::StrList),
        field("NodeMeta", Kind::StrMap),
        field("ServiceMeta", Kind::StrMap),
        field("Peer", STRING),
        field("Connect", Kind::Bool),
    ],
    base: None,
    strict: false,
};

static FAILOVER: Schema = Schema {
    name: "QueryFailoverOptions",
    go_type: "structs.QueryFailoverOptions",
    fields: &[
        field("NearestN", INT),
        field("Datacenters", Kind::StrList),
        field(
            "Targets",
            Kind::List(&FAILOVER_TARGET, "[]structs.QueryFailoverTarget"),
        ),
    ],
    base: None,
    strict: false,
};

static FAILOVER_TARGET: Schema = Schema {
    name: "QueryFailoverTarget",
    go_type: "structs.QueryFailoverTarget",
    fields: &[
        field("Peer", STRING),
        field("Datacenter", STRING),
        field("Partition", STRING),
        field("Namespace", STRING),
    ],
    base: None,
    strict: false,
};

static QUERY_DNS: Schema = Schema {
    name: "QueryDNSOptions",
    go_type: "structs.QueryDNSOptions",
    fields: &[field("TTL", STRING)],
    base: None,
    strict: false,
};

/// What executing a query returns (`PreparedQueryExecuteResponse` with its `QueryMeta`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecuteResponse {
    pub service: String,
    pub nodes: Vec<CheckServiceNode>,
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    pub datacenter: String,
    pub failovers: u32,
    #[serde(flatten)]
    pub meta: QueryMeta,
}

/// What explaining a query returns: the query as it would run, templates rendered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExplainResponse {
    pub query: PreparedQuery,
    #[serde(flatten)]
    pub meta: QueryMeta,
}

/// Consul's `QueryMeta` as responses embed it (prepared queries, federation states, a
/// read-only transaction); this single server always leads, so a read is never stale.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryMeta {
    pub index: u64,
    /// Nanoseconds since the leader was last heard from (a Go `time.Duration`).
    pub last_contact: u64,
    pub known_leader: bool,
    pub consistency_level: String,
    pub not_modified: bool,
    /// Consul's `QueryBackend`: 0, the blocking-query backend.
    pub backend: u8,
    #[serde(rename = "ResultsFilteredByACLs")]
    pub results_filtered_by_acls: bool,
}
