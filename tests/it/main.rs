//! Integration tests: each drives a real agent over HTTP (see `common::TestAgent`).

#[path = "../common/mod.rs"]
mod common;

mod acl;
mod acl_auth;
mod acl_enforcement;
mod agent;
mod agent_ops;
mod agent_services;
mod blocking;
mod catalog;
mod cli;
mod cli_agent;
mod cli_catalog;
mod cli_lock;
mod cli_tools;
mod cli_watch;
mod clients;
mod config_entries;
mod connect_ca;
mod determinism;
mod discovery_chain;
mod disk_faults;
mod dns;
mod federation_state;
mod hostile_input;
mod intentions;
mod kv;
mod metrics;
mod network_faults;
mod operator_extras;
mod peering;
mod prepared_query;
mod process;
mod restart;
mod routes;
mod session;
mod snapshot;
mod txn;
mod ui;
mod virtual_ip;
