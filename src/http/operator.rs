//! `/v1/operator/raft/*` and `/v1/operator/autopilot/*`, answered as a single Consul server
//! answers them: it is the only voter and the leader, so removing it or handing leadership to
//! another server fails with the errors Raft gives. The autopilot configuration is in the store
//! (`store::autopilot`), with Consul's defaults and check-and-set semantics.

use super::error::ApiError;
use super::reply::Reply;
use super::{Ctx, Request};
use crate::filter::go_quote;
use crate::gojson::{self, field, Kind, Schema, STRING, UINT64};
use crate::store::{autopilot, Command, WatchSet};
use crate::types::autopilot::AutopilotConfig;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// The Raft term a freshly bootstrapped single server leads in.
const TERM: u64 = 2;
/// The index of the Raft configuration entry that bootstrapped the single server.
const CONFIGURATION_INDEX: u64 = 1;

/// This server's facts as Raft and autopilot report them.
struct ThisServer {
    id: String,
    name: String,
    address: String,
    last_index: u64,
}

fn this_server(ctx: &Ctx) -> Result<ThisServer, ApiError> {
    Ok(ThisServer {
        id: ctx.node_id.clone(),
        name: ctx.config.node_name.clone(),
        address: ctx.config.server_address(),
        last_index: ctx.store.read()?.global_index()?.max(1),
    })
}

/// Go's RFC 3339 with nanoseconds, trailing zeros trimmed (`time.Time` in JSON).
fn go_rfc3339_nano(t: SystemTime) -> String {
    let full = crate::agent::logging::rfc3339(t, 9);
    let (head, frac) = full
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((&full, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}Z", head.trim_end_matches('Z'))
    } else {
        format!("{head}.{frac}Z")
    }
}

/// `GET /v1/operator/raft/configuration`: this server, the only voter, leading.
pub async fn raft_configuration(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let me = this_server(&ctx)?;
    let body = json!({
        "Servers": [{
            "ID": me.id,
            "Node": me.name,
            "Address": me.address,
            "Leader": true,
            "ProtocolVersion": "3",
            "Voter": true,
            "LastIndex": me.last_index,
        }],
        "Index": CONFIGURATION_INDEX,
    });
    Reply::json(&body, opts.pretty)
}

/// `DELETE /v1/operator/raft/peer?id=|address=`: the only peer is this server, and Raft won't
/// remove its last voter.
pub async fn raft_remove_peer(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let id = req.params.get("id");
    let address = req.params.get("address");
    let me = this_server(&ctx)?;
    match (id, address) {
        (None, None) => {
            return Err(ApiError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("Must specify only one of ?id or ?address"))
        }
        (Some(id), None) if id != me.id => {
            return Err(ApiError::internal(format!(
                "id {} was not found in the Raft configuration",
                go_quote(id)
            )))
        }
        (None, Some(address)) if address != me.address => {
            return Err(ApiError::internal(format!(
                "address {} was not found in the Raft configuration",
                go_quote(address)
            )))
        }
        _ => {}
    }
    // Removing this server would leave Raft without a voter.
    Err(ApiError::internal(
        "need at least one voter in configuration: {[]}",
    ))
}

/// `POST /v1/operator/raft/transfer-leader?id=`: there is no other server to lead.
pub async fn raft_transfer_leader(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    ctx.query_options(&req)?;
    let reason = match req.params.get("id").filter(|id| !id.is_empty()) {
        None => "cannot find peer".to_string(),
        Some(id) if id == ctx.node_id => "cannot transfer leadership to itself".to_string(),
        Some(id) => format!("Could not find address for server id {id}"),
    };
    Err(ApiError::internal(format!(
        "rpc error: code = Unknown desc = {reason}"
    )))
}

static AUTOPILOT_CONFIGURATION: Schema = Schema {
    name: "AutopilotConfiguration",
    go_type: "api.AutopilotConfiguration",
    fields: &[
        field("CleanupDeadServers", Kind::Bool),
        field("LastContactThreshold", Kind::Any),
        field("MaxTrailingLogs", UINT64),
        field("MinQuorum", Kind::Int("uint", 0, u64::MAX as i128)),
        field("ServerStabilizationTime", Kind::Any),
        field("RedundancyZoneTag", STRING),
        field("DisableUpgradeMigration", Kind::Bool),
        field("UpgradeVersionTag", STRING),
        field("CreateIndex", UINT64),
        field("ModifyIndex", UINT64),
    ],
    base: None,
    strict: true,
};

/// `api.ReadableDuration`'s decoding: a Go duration string or a number of nanoseconds.
fn readable_duration(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(s) => crate::duration::parse(s),
        Value::Number(n) => Ok(Duration::from_nanos(
            n.as_f64().unwrap_or(0.0).max(0.0) as u64
        )),
        other => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(&other.to_string())
        )),
    }
}

/// Decodes a PUT body over Consul's defaults.
fn decode_config(body: &[u8]) -> Result<AutopilotConfig, String> {
    let map = gojson::decode(body, &AUTOPILOT_CONFIGURATION)?;
    let mut c = AutopilotConfig::default();
    for (key, value) in &map {
        match key.as_str() {
            "CleanupDeadServers" => c.cleanup_dead_servers = value.as_bool().unwrap_or(false),
            "LastContactThreshold" => c.last_contact_threshold = readable_duration(value)?,
            "MaxTrailingLogs" => c.max_trailing_logs = value.as_u64().unwrap_or(0),
            "MinQuorum" => c.min_quorum = value.as_u64().unwrap_or(0),
            "ServerStabilizationTime" => c.server_stabilization_time = readable_duration(value)?,
            "RedundancyZoneTag" => c.redundancy_zone_tag = value.as_str().unwrap_or("").into(),
            "DisableUpgradeMigration" => {
                c.disable_upgrade_migration = value.as_bool().unwrap_or(false)
            }
            "UpgradeVersionTag" => c.upgrade_version_tag = value.as_str().unwrap_or("").into(),
            _ => {}
        }
    }
    Ok(c)
}

/// `GET|PUT /v1/operator/autopilot/configuration` (PUT with `?cas=` answers whether it applied).
pub async fn autopilot_configuration(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    if req.method == warp::http::Method::GET {
        // Not a blocking query in Consul, and answered without index headers.
        let (_, config) = autopilot::get(&ctx.store.read()?, &mut WatchSet::new())?;
        return Reply::json(&config, opts.pretty);
    }
    let body = req.body(&ctx).await?;
    let new = decode_config(&body)
        .map_err(|e| ApiError::bad_request(format!("Error parsing autopilot config: {e}")))?;
    let cas = match req.params.get("cas") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Error parsing cas value: strconv.ParseUint: parsing {}: invalid syntax",
                go_quote(v)
            ))
        })?),
    };
    let applied = ctx
        .store
        .apply(Command::AutopilotSetConfig {
            config: Box::new(new),
            cas,
        })
        .await?
        .applied();
    Reply::json(&applied, opts.pretty)
}

/// `GET /v1/operator/autopilot/health`.
pub async fn autopilot_health(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let me = this_server(&ctx)?;
    let since = ctx.leader_since;
    let rounded = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            (since
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64
                + 500)
                / 1000,
        );
    let body = json!({
        "Healthy": true,
        "FailureTolerance": 0,
        "Servers": [{
            "ID": me.id,
            "Name": me.name,
            "Address": me.address,
            "SerfStatus": "alive",
            "Version": crate::config::CONSUL_VERSION,
            "Leader": true,
            "LastContact": "0s",
            "LastTerm": TERM,
            "LastIndex": me.last_index,
            "Healthy": true,
            "Voter": true,
            "StableSince": crate::agent::logging::rfc3339(rounded, 0),
        }],
    });
    Reply::json(&body, opts.pretty)
}

/// `GET /v1/operator/autopilot/state`.
pub async fn autopilot_state(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let me = this_server(&ctx)?;
    let mut servers = serde_json::Map::new();
    servers.insert(
        me.id.clone(),
        json!({
            "ID": me.id,
            "Name": me.name,
            "Address": me.address,
            "NodeStatus": "alive",
            "Version": crate::config::CONSUL_VERSION,
            "LastContact": "0s",
            "LastTerm": TERM,
            "LastIndex": me.last_index,
            "Healthy": true,
            "StableSince": go_rfc3339_nano(ctx.leader_since),
            "ReadReplica": false,
            "Status": "leader",
            "Meta": ctx.node_meta(),
            "NodeType": "voter",
        }),
    );
    let body = json!({
        "Healthy": true,
        "FailureTolerance": 0,
        "OptimisticFailureTolerance": 0,
        "Servers": servers,
        "Leader": me.id,
        "Voters": [me.id],
    });
    Reply::json(&body, opts.pretty)
}

/// The body of a keyring change (Consul's `keyringArgs`).
static KEYRING_ARGS: Schema = Schema {
    name: "keyringArgs",
    go_type: "agent.keyringArgs",
    fields: &[field("Key", STRING)],
    base: None,
    strict: false,
};

/// `GET|POST|PUT|DELETE /v1/operator/keyring`, as a server without gossip encryption answers:
/// every node of each pool (WAN, then this datacenter's LAN) reports that it has no keyring,
/// and the HTTP layer turns those failures into a 500 listing them (Consul's
/// `keyringErrorsOrNil`, a go-multierror).
pub async fn keyring(ctx: Ctx, mut req: Request) -> Result<Reply, ApiError> {
    if req.method != warp::http::Method::GET {
        let body = req.body(&ctx).await?;
        gojson::decode(&body, &KEYRING_ARGS)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    }
    if let Some(relay) = req.params.get("relay-factor").filter(|r| !r.is_empty()) {
        let n: i64 = relay.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "Error parsing relay factor: strconv.Atoi: parsing {}: invalid syntax",
                go_quote(relay)
            ))
        })?;
        if !(0..=5).contains(&n) {
            return Err(ApiError::bad_request(
                "Invalid relay-factor: Relay factor must be in range: [0, 5]",
            ));
        }
    }
    let local_only = match req.params.get("local-only").filter(|v| !v.is_empty()) {
        None => false,
        Some(v) => gojson::parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Error parsing local-only: strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(v)
            ))
        })?,
    };
    if local_only && req.method != warp::http::Method::GET {
        return Err(ApiError::bad_request(
            "Invalid use of local-only: local-only can only be set for list requests",
        ));
    }
    let reason = if req.method == warp::http::Method::GET {
        "Keyring is empty (encryption not enabled)"
    } else {
        "No keyring to modify (encryption not enabled)"
    };
    let node = &ctx.config.node_name;
    let dc = &ctx.config.datacenter;
    let mut failures = Vec::new();
    if !local_only {
        failures.push("WAN error: 1/1 nodes reported failure".to_string());
        failures.push(format!("{node}.{dc}: {reason}"));
    }
    failures.push(format!("{dc} (LAN) error: 1/1 nodes reported failure"));
    failures.push(format!("{node}: {reason}"));
    Err(ApiError::internal(gojson::multierror(&failures)))
}

/// `GET /v1/operator/usage`: the catalog's counts for this datacenter.
pub async fn usage(ctx: Ctx, req: Request) -> Result<Reply, ApiError> {
    let opts = ctx.query_options(&req)?;
    let got = super::blocking::blocking(&ctx.store, &opts, crate::store::catalog::usage).await?;
    let body = json!({ "Usage": { ctx.config.datacenter.clone(): got.value } });
    Ok(Reply::json(&body, opts.pretty)?.read_meta(got.index))
}

/// `GET /v1/operator/utilization`: an Enterprise report; CE refuses it before anything else.
pub async fn utilization(_ctx: Ctx, _req: Request) -> Result<Reply, ApiError> {
    Err(ApiError::not_found(
        "operator utilization requires Consul Enterprise",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_over_the_defaults() {
        let c = decode_config(br#"{"MaxTrailingLogs": 5, "LastContactThreshold": "1s"}"#).unwrap();
        assert_eq!(c.max_trailing_logs, 5);
        assert_eq!(c.last_contact_threshold, Duration::from_secs(1));
        assert!(c.cleanup_dead_servers);
        assert_eq!(c.server_stabilization_time, Duration::from_secs(10));
        let err = decode_config(br#"{"LastContactThreshold": "soon"}"#).unwrap_err();
        assert_eq!(err, "time: invalid duration \"soon\"");
        let err = decode_config(br#"{"Bogus": 1}"#).unwrap_err();
        assert_eq!(err, "json: unknown field \"Bogus\"");
    }

    #[test]
    fn times_render_as_go_marshals_them() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_120);
        assert_eq!(go_rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(go_rfc3339_nano(t), "2023-11-14T22:13:20Z");
    }
}
