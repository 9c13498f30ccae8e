//! `legate members|join|leave|force-leave|reload|info`, as the consul commands of those names:
//! same flags, output and exit codes.

use super::catalog::columnize;
use super::client::{connect, decode, exit_code_of, segment, HttpFlags};
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct MembersArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Provides detailed information about nodes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    detailed: Option<bool>,
    /// If the agent is in server mode, lists the members of the WAN pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    wan: Option<bool>,
    /// Only lists the members whose status matches this regular expression.
    #[arg(long, default_value = ".*")]
    status: String,
    /// (Enterprise-only) Only lists the members of this network segment.
    #[arg(long, default_value = "_all")]
    segment: String,
    /// Filter to use with the request.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    filter: String,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Joins a server to another server in the WAN pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    wan: Option<bool>,
    addresses: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LeaveArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ForceLeaveArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Removes the member from the member list altogether.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    prune: Option<bool>,
    /// Only removes the member from the WAN pool.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    wan: Option<bool>,
    nodes: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

pub async fn members(a: MembersArgs) -> i32 {
    exit_code_of(run_members(a).await)
}

pub async fn join(a: JoinArgs) -> i32 {
    exit_code_of(run_join(a).await)
}

pub async fn leave(a: LeaveArgs) -> i32 {
    exit_code_of(run_leave(a).await)
}

pub async fn force_leave(a: ForceLeaveArgs) -> i32 {
    exit_code_of(run_force_leave(a).await)
}

pub async fn reload(a: ReloadArgs) -> i32 {
    exit_code_of(run_reload(a).await)
}

pub async fn info(a: InfoArgs) -> i32 {
    exit_code_of(run_info(a).await)
}

/// Serf's name for a member status.
fn status_name(status: i64) -> String {
    match status {
        0 => "none".into(),
        1 => "alive".into(),
        2 => "leaving".into(),
        3 => "left".into(),
        4 => "failed".into(),
        n => format!("unknown MemberStatus {n}"),
    }
}

/// One member of `/v1/agent/members`, its tags adjusted as the consul CLI adjusts them.
struct Member {
    name: String,
    address: String,
    status: String,
    tags: BTreeMap<String, String>,
}

impl Member {
    fn from_json(v: &Value, segment_flag: &str) -> Member {
        let mut tags: BTreeMap<String, String> = v
            .get("Tags")
            .and_then(Value::as_object)
            .map(|m: &Map<String, Value>| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let partition = tags.entry("ap".into()).or_default();
        if partition.is_empty() {
            *partition = "default".into();
        }
        let default_partition = tags["ap"] == "default";
        let is_server = tags.get("role").is_some_and(|r| r == "consul");
        let segment = tags.entry("segment".into()).or_default();
        if default_partition {
            if segment_flag == "_all" && is_server {
                *segment = "<all>".into();
            } else if segment.is_empty() {
                *segment = "<default>".into();
            }
        } else {
            segment.clear();
        }
        let addr = v.get("Addr").and_then(Value::as_str).unwrap_or("");
        let port = v.get("Port").and_then(Value::as_u64).unwrap_or(0) as u16;
        // Go's net.TCPAddr: an unparsable IP prints as nothing before the port.
        let address = match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
            Err(_) => format!(":{port}"),
        };
        Member {
            name: v
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            address,
            status: status_name(v.get("Status").and_then(Value::as_i64).unwrap_or(0)),
            tags,
        }
    }

    fn tag(&self, key: &str) -> &str {
        self.tags.get(key).map(String::as_str).unwrap_or("")
    }

    /// Servers first, then the default partition, then by segment, partition and name.
    fn sort_key(&self) -> (bool, bool, &str, &str, &str) {
        let partition = self.tag("ap");
        (
            self.tag("role") != "consul",
            !(partition.is_empty() || partition == "default"),
            self.tag("segment"),
            partition,
            &self.name,
        )
    }

    fn standard_row(&self) -> Vec<String> {
        let kind = match self.tag("role") {
            "node" => "client",
            "consul" => "server",
            _ => {
                let mut row = vec![
                    self.name.clone(),
                    self.address.clone(),
                    self.status.clone(),
                    "unknown".into(),
                ];
                row.extend(std::iter::repeat_n(String::new(), 5));
                return row;
            }
        };
        let build = match self.tags.get("build") {
            None => "< 0.3".to_string(),
            Some(b) if b.is_empty() => "< 0.3".to_string(),
            Some(b) => b.split(':').next().unwrap_or("").to_string(),
        };
        vec![
            self.name.clone(),
            self.address.clone(),
            self.status.clone(),
            kind.into(),
            build,
            self.tag("vsn").into(),
            self.tag("dc").into(),
            self.tag("ap").into(),
            self.tag("segment").into(),
        ]
    }

    fn detailed_row(&self) -> Vec<String> {
        let tags = self
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            self.name.clone(),
            self.address.clone(),
            self.status.clone(),
            tags,
        ]
    }
}

fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The members table (`detailed` or standard) of a `/v1/agent/members` body; `None` when no
/// member's status matches.
fn members_table(
    items: &[Value],
    status: &regex::Regex,
    segment_flag: &str,
    detailed: bool,
) -> Option<String> {
    let mut members: Vec<Member> = items
        .iter()
        .map(|v| Member::from_json(v, segment_flag))
        .filter(|m| status.is_match(&m.status))
        .collect();
    if members.is_empty() {
        return None;
    }
    members.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut table = if detailed {
        vec![header(&["Node", "Address", "Status", "Tags"])]
    } else {
        vec![header(&[
            "Node",
            "Address",
            "Status",
            "Type",
            "Build",
            "Protocol",
            "DC",
            "Partition",
            "Segment",
        ])]
    };
    for m in &members {
        table.push(if detailed {
            m.detailed_row()
        } else {
            m.standard_row()
        });
    }
    Some(columnize(&table))
}

async fn run_members(a: MembersArgs) -> Result<i32, String> {
    let status = regex::Regex::new(&a.status).map_err(|e| {
        format!(
            "Failed to compile status regexp: {}",
            crate::http::event::regex_error(&a.status, &e)
        )
    })?;
    let client = connect(&a.http)?;
    let mut query = vec![("segment", a.segment.clone())];
    if a.wan.unwrap_or(false) {
        query.push(("wan", "1".to_string()));
    }
    if !a.filter.is_empty() {
        query.push(("filter", a.filter.clone()));
    }
    let fail = |e: String| format!("Error retrieving members: {e}");
    let resp = client
        .ok(Method::GET, "/v1/agent/members", &query, None)
        .await
        .map_err(fail)?;
    let items: Option<Vec<Value>> = decode(&resp.body).map_err(fail)?;
    let items = items.unwrap_or_default();
    match members_table(&items, &status, &a.segment, a.detailed.unwrap_or(false)) {
        Some(table) => {
            println!("{table}");
            Ok(0)
        }
        None => Ok(2),
    }
}

async fn run_join(a: JoinArgs) -> Result<i32, String> {
    if a.addresses.is_empty() {
        return Err(
            "At least one address to join must be specified.\n\nUsage: legate join [options] address ..."
                .into(),
        );
    }
    let client = connect(&a.http)?;
    let query = if a.wan.unwrap_or(false) {
        vec![("wan", "1".to_string())]
    } else {
        Vec::new()
    };
    let mut joined = 0;
    for addr in &a.addresses {
        let path = format!("/v1/agent/join/{}", segment(addr));
        match client.ok(Method::PUT, &path, &query, None).await {
            Ok(_) => joined += 1,
            Err(e) => eprintln!("Error joining address '{addr}': {e}"),
        }
    }
    if joined == 0 {
        return Err("Failed to join any nodes.".into());
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    Ok(0)
}

async fn run_leave(a: LeaveArgs) -> Result<i32, String> {
    if !a.args.is_empty() {
        eprintln!("Error found unexpected args: [{}]", a.args.join(" "));
        println!("Usage: legate leave [options]");
        return Ok(1);
    }
    let client = connect(&a.http)?;
    client
        .ok(Method::PUT, "/v1/agent/leave", &[], None)
        .await
        .map_err(|e| format!("Error leaving: {e}"))?;
    println!("Graceful leave complete");
    Ok(0)
}

async fn run_force_leave(a: ForceLeaveArgs) -> Result<i32, String> {
    if a.nodes.len() != 1 {
        return Err(
            "A single node name must be specified to force leave.\n\nUsage: legate force-leave [options] name"
                .into(),
        );
    }
    let client = connect(&a.http)?;
    let mut query = Vec::new();
    if a.prune.unwrap_or(false) {
        query.push(("prune", "1".to_string()));
    }
    if a.wan.unwrap_or(false) {
        query.push(("wan", "1".to_string()));
    }
    let path = format!("/v1/agent/force-leave/{}", segment(&a.nodes[0]));
    client
        .ok(Method::PUT, &path, &query, None)
        .await
        .map_err(|e| format!("Error force leaving: {e}"))?;
    Ok(0)
}

async fn run_reload(a: ReloadArgs) -> Result<i32, String> {
    let client = connect(&a.http)?;
    client
        .ok(Method::PUT, "/v1/agent/reload", &[], None)
        .await
        .map_err(|e| format!("Error reloading: {e}"))?;
    println!("Configuration reload triggered");
    Ok(0)
}

/// The `Stats` sections of `/v1/agent/self`: `section:` lines, each followed by its sorted
/// `\tkey = value` lines; the error ends the output at a section that is not an object.
fn stats_text(stats: &Map<String, Value>) -> (String, Option<String>) {
    let mut out = String::new();
    let sections: BTreeMap<&String, &Value> = stats.iter().collect();
    for (name, values) in sections {
        out.push_str(&format!("{name}:\n"));
        let Some(values) = values.as_object() else {
            return (out, Some(format!("Got invalid subkey in stats: {values}")));
        };
        let sorted: BTreeMap<&String, &Value> = values.iter().collect();
        for (key, value) in sorted {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("\t{key} = {value}\n"));
        }
    }
    (out, None)
}

async fn run_info(a: InfoArgs) -> Result<i32, String> {
    let client = connect(&a.http)?;
    let fail = |e: String| format!("Error querying agent: {e}");
    let resp = client
        .ok(Method::GET, "/v1/agent/self", &[], None)
        .await
        .map_err(fail)?;
    let me: Map<String, Value> = decode(&resp.body).map_err(fail)?;
    let Some(stats) = me.get("Stats").and_then(Value::as_object) else {
        return Err(format!(
            "Agent response did not contain 'Stats' key: {}",
            Value::Object(me.clone())
        ));
    };
    let (text, error) = stats_text(stats);
    print!("{text}");
    match error {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(name: &str, role: &str, status: i64) -> Value {
        json!({"Name": name, "Addr": "10.0.0.1", "Port": 8301, "Status": status,
            "Tags": {"role": role, "dc": "dc1", "build": "1.2.3:abc", "vsn": "2", "segment": ""}})
    }

    #[test]
    fn servers_sort_first_and_get_the_all_segment() {
        let items = vec![
            member("b-client", "node", 1),
            member("z-server", "consul", 1),
            member("a-gone", "node", 3),
        ];
        let all = regex::Regex::new(".*").unwrap();
        let table = members_table(&items, &all, "_all", false).unwrap();
        assert_eq!(
            table,
            "Node      Address        Status  Type    Build  Protocol  DC   Partition  Segment\n\
             z-server  10.0.0.1:8301  alive   server  1.2.3  2         dc1  default    <all>\n\
             a-gone    10.0.0.1:8301  left    client  1.2.3  2         dc1  default    <default>\n\
             b-client  10.0.0.1:8301  alive   client  1.2.3  2         dc1  default    <default>"
        );
        let alive = regex::Regex::new("alive").unwrap();
        let table = members_table(&items, &alive, "_all", true).unwrap();
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "z-server  10.0.0.1:8301  alive   ap=default,build=1.2.3:abc,dc=dc1,role=consul,segment=<all>,vsn=2"
        );
        let none = regex::Regex::new("failed").unwrap();
        assert!(members_table(&items, &none, "_all", false).is_none());
    }

    #[test]
    fn stats_print_sorted_sections() {
        let stats =
            json!({"raft": {"state": "Leader", "num_peers": "0"}, "agent": {"checks": "1"}});
        assert_eq!(
            stats_text(stats.as_object().unwrap()).0,
            "agent:\n\tchecks = 1\nraft:\n\tnum_peers = 0\n\tstate = Leader\n"
        );
    }
}
