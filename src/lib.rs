//! Legate: a durable, single-node, Consul-compatible agent.
//!
//! Request flow: `http` parses a request into query options and a typed body, then calls a
//! domain function of `store` — reads on a `ReadTx` snapshot (through `http::blocking` for
//! blocking queries, which registers the read's `WatchSet`), writes as `store::Command`s through `Store::apply`,
//! which group-commits them (`store::batch`) and wakes only the watchers whose data changed.
//! `agent` runs the process (config, store, HTTP server, signals); `cli` is the `legate`
//! command line, an HTTP client of the agent.

pub mod acl;
pub mod agent;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connect;
pub mod duration;
pub mod filter;
pub mod gojson;
pub mod http;
pub mod store;
pub mod types;
