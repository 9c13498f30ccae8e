//! `legate operator raft list-peers|remove-peer` and `legate operator autopilot
//! get-config|set-config|state`, as the consul commands of those names.

use super::catalog::columnize;
use super::client::{decode, indented_json, Client, HttpFlags};
use crate::filter::go_quote;
use reqwest::Method;
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Inspects and changes the Raft configuration.
    Raft {
        #[command(subcommand)]
        command: RaftCommand,
    },
    /// Inspects and changes the autopilot configuration.
    Autopilot {
        #[command(subcommand)]
        command: AutopilotCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RaftCommand {
    /// Displays the current Raft peer configuration.
    ListPeers(ListPeersArgs),
    /// Removes a server from the Raft configuration.
    RemovePeer(RemovePeerArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum AutopilotCommand {
    /// Displays the current autopilot configuration.
    GetConfig(GetConfigArgs),
    /// Modifies the current autopilot configuration.
    SetConfig(SetConfigArgs),
    /// Displays autopilot's view of the servers.
    State(StateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListPeersArgs {
    #[command(flatten)]
    http: HttpFlags,
}

#[derive(Debug, clap::Args)]
pub struct RemovePeerArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The address (IP:port) of the server to remove.
    #[arg(long, default_value = "")]
    address: String,
    /// The ID of the server to remove.
    #[arg(long, default_value = "")]
    id: String,
}

#[derive(Debug, clap::Args)]
pub struct GetConfigArgs {
    #[command(flatten)]
    http: HttpFlags,
}

#[derive(Debug, clap::Args)]
pub struct SetConfigArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Whether dead servers are removed when new ones are added (`true|false`).
    #[arg(long = "cleanup-dead-servers", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    cleanup_dead_servers: Option<bool>,
    /// How many log entries a server may trail the leader by and stay healthy.
    #[arg(long = "max-trailing-logs")]
    max_trailing_logs: Option<u64>,
    /// How many servers there must be before autopilot prunes dead ones.
    #[arg(long = "min-quorum")]
    min_quorum: Option<u64>,
    /// How long a server may go without contact from the leader and stay healthy (e.g. `200ms`).
    #[arg(long = "last-contact-threshold", value_parser = crate::duration::parse)]
    last_contact_threshold: Option<Duration>,
    /// How long a server must be healthy before it joins the cluster (e.g. `10s`).
    #[arg(long = "server-stabilization-time", value_parser = crate::duration::parse)]
    server_stabilization_time: Option<Duration>,
    /// (Enterprise-only) The node_meta key that separates servers into redundancy zones.
    #[arg(long = "redundancy-zone-tag")]
    redundancy_zone_tag: Option<String>,
    /// (Enterprise-only) Whether to skip upgrade migrations (`true|false`).
    #[arg(long = "disable-upgrade-migration", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    disable_upgrade_migration: Option<bool>,
    /// (Enterprise-only) The node_meta key holding the version for upgrade migrations.
    #[arg(long = "upgrade-version-tag")]
    upgrade_version_tag: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Output format {pretty|json}.
    #[arg(long, default_value = "pretty")]
    format: String,
}

pub async fn run(command: OperatorCommand) -> i32 {
    let result = match command {
        OperatorCommand::Raft { command } => match command {
            RaftCommand::ListPeers(a) => list_peers(a).await,
            RaftCommand::RemovePeer(a) => remove_peer(a).await,
        },
        OperatorCommand::Autopilot { command } => match command {
            AutopilotCommand::GetConfig(a) => get_config(a).await,
            AutopilotCommand::SetConfig(a) => set_config(a).await,
            AutopilotCommand::State(a) => state(a).await,
        },
    };
    super::client::exit_code_of(result)
}

/// The client, with the operator commands' error text.
fn client(flags: &HttpFlags) -> Result<Client, String> {
    Client::new(flags).map_err(|e| format!("Error initializing client: {e}"))
}

/// `?stale` when `-stale` is set.
fn stale(flags: &HttpFlags) -> Vec<(&'static str, String)> {
    if flags.stale.unwrap_or(false) {
        vec![("stale", String::new())]
    } else {
        Vec::new()
    }
}

/// The list-peers table of a `/v1/operator/raft/configuration` body.
fn peers_table(config: &Value) -> String {
    let servers: Vec<&Value> = config
        .get("Servers")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let last_index = |v: &Value| v.get("LastIndex").and_then(Value::as_u64).unwrap_or(0);
    let is_leader = |v: &Value| v.get("Leader").and_then(Value::as_bool).unwrap_or(false);
    let leader_index = servers
        .iter()
        .filter(|s| is_leader(s))
        .map(|s| last_index(s))
        .next_back()
        .unwrap_or(0);
    let mut table = vec![[
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
        "Commit Index",
        "Trails Leader By",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect::<Vec<_>>()];
    for s in servers {
        let mut protocol = text(s, "ProtocolVersion");
        if protocol.is_empty() {
            protocol = "<=1".into();
        }
        let leader = is_leader(s);
        let index = last_index(s);
        let trails = if leader {
            "-".to_string()
        } else {
            let by = leader_index.wrapping_sub(index);
            if by == 1 {
                "1 commit".to_string()
            } else {
                format!("{by} commits")
            }
        };
        table.push(vec![
            text(s, "Node"),
            text(s, "ID"),
            text(s, "Address"),
            if leader { "leader" } else { "follower" }.into(),
            s.get("Voter")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            protocol,
            index.to_string(),
            trails,
        ]);
    }
    columnize(&table)
}

async fn list_peers(a: ListPeersArgs) -> Result<i32, String> {
    let client = client(&a.http)?;
    let config: Value = get_json(
        &client,
        "/v1/operator/raft/configuration",
        &stale(&a.http),
        "Error getting peers: Failed to retrieve raft configuration",
    )
    .await?;
    println!("{}", peers_table(&config));
    Ok(0)
}

async fn remove_peer(a: RemovePeerArgs) -> Result<i32, String> {
    let client = client(&a.http)?;
    let fail = |e: String| format!("Error removing peer: {e}");
    let query = match (a.address.is_empty(), a.id.is_empty()) {
        (true, true) => {
            return Err(fail(
                "an address or id is required for the peer to remove".into(),
            ))
        }
        (false, false) => return Err(fail("cannot give both an address and id".into())),
        (false, true) => vec![("address", a.address.clone())],
        (true, false) => vec![("id", a.id.clone())],
    };
    client
        .ok(Method::DELETE, "/v1/operator/raft/peer", &query, None)
        .await
        .map_err(fail)?;
    if a.address.is_empty() {
        println!("Removed peer with id {}", go_quote(&a.id));
    } else {
        println!("Removed peer with address {}", go_quote(&a.address));
    }
    Ok(0)
}

/// A duration field of the autopilot configuration, as Go's `time.Duration` prints it.
fn duration_field(config: &Map<String, Value>, key: &str) -> String {
    match config.get(key) {
        Some(Value::String(s)) => crate::duration::parse(s)
            .map(crate::duration::format)
            .unwrap_or_else(|_| s.clone()),
        Some(Value::Number(n)) => {
            crate::duration::format(Duration::from_nanos(n.as_u64().unwrap_or(0)))
        }
        _ => "0s".into(),
    }
}

/// get-config's `Key = value` lines.
fn config_text(config: &Map<String, Value>) -> String {
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    let number = |key: &str| config.get(key).and_then(Value::as_u64).unwrap_or(0);
    let text = |key: &str| go_quote(config.get(key).and_then(Value::as_str).unwrap_or(""));
    [
        format!("CleanupDeadServers = {}", flag("CleanupDeadServers")),
        format!(
            "LastContactThreshold = {}",
            duration_field(config, "LastContactThreshold")
        ),
        format!("MaxTrailingLogs = {}", number("MaxTrailingLogs")),
        format!("MinQuorum = {}", number("MinQuorum")),
        format!(
            "ServerStabilizationTime = {}",
            duration_field(config, "ServerStabilizationTime")
        ),
        format!("RedundancyZoneTag = {}", text("RedundancyZoneTag")),
        format!(
            "DisableUpgradeMigration = {}",
            flag("DisableUpgradeMigration")
        ),
        format!("UpgradeVersionTag = {}", text("UpgradeVersionTag")),
    ]
    .join("\n")
}

/// GETs `path` with `query` and decodes its JSON body; errors start with `context`.
async fn get_json<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
    context: &str,
) -> Result<T, String> {
    let fail = |e: String| format!("{context}: {e}");
    let resp = client
        .ok(Method::GET, path, query, None)
        .await
        .map_err(fail)?;
    decode(&resp.body).map_err(fail)
}

async fn fetch_config(
    client: &Client,
    query: &[(&str, String)],
) -> Result<Map<String, Value>, String> {
    get_json(
        client,
        "/v1/operator/autopilot/configuration",
        query,
        "Error querying Autopilot configuration",
    )
    .await
}

async fn get_config(a: GetConfigArgs) -> Result<i32, String> {
    let client = client(&a.http)?;
    let config = fetch_config(&client, &stale(&a.http)).await?;
    println!("{}", config_text(&config));
    Ok(0)
}

async fn set_config(a: SetConfigArgs) -> Result<i32, String> {
    let client = client(&a.http)?;
    let mut config = fetch_config(&client, &[]).await?;
    if let Some(v) = a.cleanup_dead_servers {
        config.insert("CleanupDeadServers".into(), v.into());
    }
    if let Some(v) = &a.redundancy_zone_tag {
        config.insert("RedundancyZoneTag".into(), v.clone().into());
    }
    if let Some(v) = a.disable_upgrade_migration {
        config.insert("DisableUpgradeMigration".into(), v.into());
    }
    if let Some(v) = &a.upgrade_version_tag {
        config.insert("UpgradeVersionTag".into(), v.clone().into());
    }
    if let Some(v) = a.min_quorum {
        config.insert("MinQuorum".into(), v.into());
    }
    if let Some(v) = a.max_trailing_logs {
        config.insert("MaxTrailingLogs".into(), v.into());
    }
    // The durations go back as Go duration strings, as `api.ReadableDuration` marshals them.
    for (key, flag) in [
        ("LastContactThreshold", a.last_contact_threshold),
        ("ServerStabilizationTime", a.server_stabilization_time),
    ] {
        let value = match flag {
            Some(d) => crate::duration::format(d),
            None => duration_field(&config, key),
        };
        config.insert(key.into(), value.into());
    }
    let cas = config
        .get("ModifyIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let fail = |e: String| format!("Error setting Autopilot configuration: {e}");
    let body = serde_json::to_vec(&config).map_err(|e| fail(e.to_string()))?;
    let resp = client
        .ok(
            Method::PUT,
            "/v1/operator/autopilot/configuration",
            &[("cas", cas.to_string())],
            Some(body),
        )
        .await
        .map_err(fail)?;
    let applied: bool = decode(&resp.body).map_err(fail)?;
    if applied {
        println!("Configuration updated!");
        Ok(0)
    } else {
        println!("Configuration could not be atomically updated, please try again");
        Ok(1)
    }
}

/// The `pretty` rendering of `/v1/operator/autopilot/state`.
fn state_pretty(state: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let flag = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
    let list = |v: &Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = String::new();
    out.push_str(&format!(
        "Healthy:                      {}\n",
        flag(state, "Healthy")
    ));
    out.push_str(&format!(
        "Failure Tolerance:            {}\n",
        number(state, "FailureTolerance")
    ));
    out.push_str(&format!(
        "Optimistic Failure Tolerance: {}\n",
        number(state, "OptimisticFailureTolerance")
    ));
    out.push_str(&format!(
        "Leader:                       {}\n",
        text(state, "Leader")
    ));
    out.push_str("Voters:\n");
    for v in list(state, "Voters") {
        out.push_str(&format!("   {v}\n"));
    }
    let replicas = list(state, "ReadReplicas");
    if !replicas.is_empty() {
        out.push_str("Read Replicas:\n");
        for v in replicas {
            out.push_str(&format!("   {v}\n"));
        }
    }
    if let Some(zones) = state.get("RedundancyZones").and_then(Value::as_object) {
        if !zones.is_empty() {
            out.push_str("Redundancy Zones:\n");
            let mut names: Vec<&String> = zones.keys().collect();
            names.sort();
            for name in names {
                let zone = &zones[name];
                out.push_str(&format!("   {name}:\n"));
                out.push_str(&format!(
                    "      Failure Tolerance: {}\n",
                    number(zone, "FailureTolerance")
                ));
                for (title, key) in [("Voters", "Voters"), ("Servers", "Servers")] {
                    out.push_str(&format!("      {title}:\n"));
                    for v in list(zone, key) {
                        out.push_str(&format!("         {v}\n"));
                    }
                }
            }
        }
    }
    if let Some(upgrade) = state.get("Upgrade").filter(|u| u.is_object()) {
        out.push_str("Upgrade:\n");
        out.push_str(&format!("   Status:         {}\n", text(upgrade, "Status")));
        out.push_str(&format!(
            "   Target Version: {}\n",
            text(upgrade, "TargetVersion")
        ));
        for (title, key) in [
            ("Target Version Voters", "TargetVersionVoters"),
            ("Target Version Non-Voters", "TargetVersionNonVoters"),
            ("Target Version ReadReplicas", "TargetVersionReadReplicas"),
            ("Other Version Voters", "OtherVersionVoters"),
            ("Other Version Non-Voters", "OtherVersionNonVoters"),
            ("Other Version ReadReplicas", "OtherVersionReadReplicas"),
        ] {
            let values = list(upgrade, key);
            if !values.is_empty() {
                out.push_str(&format!("   {title}:\n"));
                for v in values {
                    out.push_str(&format!("      {v}\n"));
                }
            }
        }
    }
    out.push_str("Servers:\n");
    if let Some(servers) = state.get("Servers").and_then(Value::as_object) {
        let mut ids: Vec<&String> = servers.keys().collect();
        ids.sort();
        for id in ids {
            let s = &servers[id];
            let last_contact = s
                .get("LastContact")
                .and_then(Value::as_str)
                .and_then(|d| crate::duration::parse(d).ok())
                .map(crate::duration::format)
                .unwrap_or_else(|| "0s".into());
            out.push_str(&format!("   {}\n", text(s, "ID")));
            out.push_str(&format!("      Name:            {}\n", text(s, "Name")));
            out.push_str(&format!("      Address:         {}\n", text(s, "Address")));
            out.push_str(&format!("      Version:         {}\n", text(s, "Version")));
            out.push_str(&format!("      Status:          {}\n", text(s, "Status")));
            out.push_str(&format!("      Node Type:       {}\n", text(s, "NodeType")));
            out.push_str(&format!(
                "      Node Status:     {}\n",
                text(s, "NodeStatus")
            ));
            out.push_str(&format!("      Healthy:         {}\n", flag(s, "Healthy")));
            out.push_str(&format!("      Last Contact:    {last_contact}\n"));
            out.push_str(&format!(
                "      Last Term:       {}\n",
                number(s, "LastTerm")
            ));
            out.push_str(&format!(
                "      Last Index:      {}\n",
                number(s, "LastIndex")
            ));
            let zone = text(s, "RedundancyZone");
            if !zone.is_empty() {
                out.push_str(&format!("      Redundancy Zone: {zone}\n"));
            }
            let upgrade = text(s, "UpgradeVersion");
            if !upgrade.is_empty() {
                out.push_str(&format!("      Upgrade Version: {upgrade}\n"));
            }
            if flag(s, "ReadReplica") {
                out.push_str("      Read Replica:    true\n");
            }
            if let Some(meta) = s.get("Meta").and_then(Value::as_object) {
                if !meta.is_empty() {
                    out.push_str("      Meta\n");
                    let mut keys: Vec<&String> = meta.keys().collect();
                    keys.sort();
                    for k in keys {
                        out.push_str(&format!(
                            "         {}: {}\n",
                            go_quote(k),
                            go_quote(meta[k].as_str().unwrap_or(""))
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The `json` rendering: the state as `api.AutopilotState` marshals it, indented by four.
fn state_json(state: &Value) -> Result<String, String> {
    let mut state = state.clone();
    if let Some(top) = state.as_object_mut() {
        for key in ["ReadReplicas", "RedundancyZones", "Upgrade"] {
            if top.get(key).is_some_and(crate::gojson::is_zero) {
                top.remove(key);
            }
        }
        if let Some(servers) = top.get_mut("Servers").and_then(Value::as_object_mut) {
            for server in servers.values_mut().filter_map(Value::as_object_mut) {
                for key in ["RedundancyZone", "UpgradeVersion", "ReadReplica"] {
                    if server.get(key).is_some_and(crate::gojson::is_zero) {
                        server.remove(key);
                    }
                }
            }
        }
    }
    indented_json(&state, b"    ").map_err(|e| format!("Failed to marshal token: {e}"))
}

async fn state(a: StateArgs) -> Result<i32, String> {
    let client = client(&a.http)?;
    let state: Value = get_json(
        &client,
        "/v1/operator/autopilot/state",
        &stale(&a.http),
        "Error querying Autopilot state",
    )
    .await?;
    let out = match a.format.as_str() {
        "pretty" => state_pretty(&state),
        "json" => state_json(&state)?,
        other => return Err(format!("Unknown format: {other}")),
    };
    if !out.is_empty() {
        println!("{out}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn peers_table_shows_lag_behind_the_leader() {
        let config = json!({"Servers": [
            {"ID": "a", "Node": "n1", "Address": "10.0.0.1:8300", "Leader": true,
             "ProtocolVersion": "3", "Voter": true, "LastIndex": 10},
            {"ID": "b", "Node": "n2", "Address": "10.0.0.2:8300", "Leader": false,
             "ProtocolVersion": "", "Voter": false, "LastIndex": 9},
        ]});
        assert_eq!(
            peers_table(&config),
            "Node  ID  Address        State     Voter  RaftProtocol  Commit Index  Trails Leader By\n\
             n1    a   10.0.0.1:8300  leader    true   3             10            -\n\
             n2    b   10.0.0.2:8300  follower  false  <=1           9             1 commit"
        );
    }

    #[test]
    fn config_lines_as_consul_prints_them() {
        let config = json!({"CleanupDeadServers": true, "LastContactThreshold": "200ms",
            "MaxTrailingLogs": 250, "MinQuorum": 0, "ServerStabilizationTime": "10s",
            "RedundancyZoneTag": "", "DisableUpgradeMigration": false, "UpgradeVersionTag": ""});
        assert_eq!(
            config_text(config.as_object().unwrap()),
            "CleanupDeadServers = true\nLastContactThreshold = 200ms\nMaxTrailingLogs = 250\n\
             MinQuorum = 0\nServerStabilizationTime = 10s\nRedundancyZoneTag = \"\"\n\
             DisableUpgradeMigration = false\nUpgradeVersionTag = \"\""
        );
    }
}
