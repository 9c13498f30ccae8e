//! Legate: a durable, single-node, Consul-compatible agent.
//!
//! Layers, top to bottom: `cli` (the `legate` command line, an HTTP client of the agent) →
//! `process` (the agent served over HTTP, signals) → `http` (routes, parsing, rendering) →
//! `agent` (its context, local services and checks, sessions, events) → `store` (redb tables,
//! one module per domain) → `config`, `types`, `gojson`, `filter`; `acl` and `connect` are
//! the ACL rules and authorizer and the Connect CA's certificates, beside the store.
//! `watch` (watch plans: blocking queries rerunning a handler on change) and `client` (the HTTP
//! client of an agent) serve both `cli` and `process`; `config` reads watch definitions
//! through `watch::spec`, which depends on nothing above `config`.
//!
//! Request flow: `http` parses a request into query options and a typed body, then calls a
//! domain function of `store`: reads on a `ReadTx` snapshot (through `http::blocking` for
//! blocking queries, which registers the read's `WatchSet`), writes as `store::Command`s
//! through `Store::apply`, which group-commits them (`store::batch`) and wakes only the
//! watchers whose data changed.

pub mod acl;
pub mod agent;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod connect;
pub mod dns;
pub mod duration;
pub mod filter;
pub mod gojson;
pub mod http;
pub mod metrics;
pub mod process;
pub mod store;
pub mod types;
pub mod ui;
pub mod watch;
