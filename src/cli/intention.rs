//! `legate intention create|get|delete|check|match|list`, as `consul intention`: same flags,
//! output and exit codes (`check`: 0 allowed, 1 denied, 2 on errors; `list`: 2 when there are
//! none). Sources and destinations are `name` or `namespace/name`, as the agent takes them.

use super::catalog::columnize;
use super::client::{connect, decode, parse_key_value, read_data, segment, Client, HttpFlags};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum IntentionCommand {
    /// Creates intentions for service connections (SRC DST, or -file FILE...).
    Create(CreateArgs),
    /// Shows an intention (SRC DST, or ID).
    Get(TargetArgs),
    /// Deletes an intention (SRC DST, or ID).
    Delete(TargetArgs),
    /// Checks whether a connection between two services is allowed.
    Check(TargetArgs),
    /// Shows the intentions that match a source or destination, in evaluation order.
    Match(MatchArgs),
    /// Lists all intentions.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Create an intention that allows when matched (the default).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    allow: Option<bool>,
    /// Create an intention that denies when matched.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    deny: Option<bool>,
    /// Read intention data (JSON) from one or more files; `-` reads stdin.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    file: Option<bool>,
    /// Replace matching intentions.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    replace: Option<bool>,
    /// Metadata to set on the intention, as key=value (repeatable).
    #[arg(long)]
    meta: Vec<String>,
    /// A description of the intention.
    #[arg(long, default_value = "")]
    description: String,
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct MatchArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Match intentions with the given source.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    source: Option<bool>,
    /// Match intentions with the given destination (the default).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    destination: Option<bool>,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    http: HttpFlags,
}

pub async fn run(command: IntentionCommand) -> i32 {
    use super::client::{exit_code, exit_code_of};
    match command {
        IntentionCommand::Create(a) => exit_code(create(a).await),
        IntentionCommand::Get(a) => exit_code(get(a).await),
        IntentionCommand::Delete(a) => exit_code(delete(a).await),
        // `check` reserves 1 for "denied": its errors exit 2.
        IntentionCommand::Check(a) => match check(a).await {
            Ok(code) => code,
            Err(message) => {
                eprintln!("{message}");
                2
            }
        },
        IntentionCommand::Match(a) => exit_code(matching(a).await),
        IntentionCommand::List(a) => exit_code_of(list(a).await),
    }
}

fn on(flag: Option<bool>) -> bool {
    flag.unwrap_or(false)
}

/// A string field of an intention as the API renders it.
fn text<'a>(ixn: &'a Value, key: &str) -> &'a str {
    ixn.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `namespace/name`, the default namespace left out (`api.Intention.SourceString`).
fn part(ns: &str, name: &str) -> String {
    if ns.is_empty() || ns == crate::types::intention::DEFAULT_NS {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn source_string(ixn: &Value) -> String {
    part(text(ixn, "SourceNS"), text(ixn, "SourceName"))
}

fn destination_string(ixn: &Value) -> String {
    part(text(ixn, "DestinationNS"), text(ixn, "DestinationName"))
}

/// `api.Intention.String()`: `SRC => DST (action)`.
fn describe(ixn: &Value) -> String {
    format!(
        "{} => {} ({})",
        source_string(ixn),
        destination_string(ixn),
        text(ixn, "Action")
    )
}

/// Splits a `[namespace/]name` argument (`ParseIntentionTarget`; partitions are Enterprise).
fn target(arg: &str) -> Result<(String, String), String> {
    match arg.split('/').collect::<Vec<_>>().as_slice() {
        [name] => Ok((String::new(), name.to_string())),
        [ns, name] => Ok((ns.to_string(), name.to_string())),
        _ => Err("target can contain at most one '/'".into()),
    }
}

/// The intentions `create` sends: from SRC DST and the flags, or from `-file` documents.
fn to_create(a: &CreateArgs) -> Result<Vec<Value>, String> {
    if on(a.file) {
        return a.args.iter().map(|path| from_file(path)).collect();
    }
    let [src, dst] = a.args.as_slice() else {
        return Err("Must specify two arguments: source and destination".into());
    };
    let (src_ns, src_name) = target(src).map_err(|e| format!("Invalid intention source: {e}"))?;
    let (dst_ns, dst_name) =
        target(dst).map_err(|e| format!("Invalid intention destination: {e}"))?;
    let meta = a
        .meta
        .iter()
        .map(|m| parse_key_value(m))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let mut ixn = Map::new();
    if !src_ns.is_empty() {
        ixn.insert("SourceNS".into(), json!(src_ns));
    }
    ixn.insert("SourceName".into(), json!(src_name));
    if !dst_ns.is_empty() {
        ixn.insert("DestinationNS".into(), json!(dst_ns));
    }
    ixn.insert("DestinationName".into(), json!(dst_name));
    ixn.insert("SourceType".into(), json!("consul"));
    let action = if on(a.deny) { "deny" } else { "allow" };
    ixn.insert("Action".into(), json!(action));
    if !a.description.is_empty() {
        ixn.insert("Description".into(), json!(a.description));
    }
    if !meta.is_empty() {
        ixn.insert("Meta".into(), json!(meta));
    }
    Ok(vec![Value::Object(ixn)])
}

/// One intention from a JSON file (`-` is stdin); L7 intentions belong in config entries.
fn from_file(path: &str) -> Result<Value, String> {
    let source = if path == "-" {
        path.to_string()
    } else {
        format!("@{path}")
    };
    let data = read_data(&source)?;
    let ixn: Value = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
    if !ixn.is_object() {
        return Err(format!("intention in {path:?} is not a JSON object"));
    }
    let has_permissions = ixn
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Permissions"))
        })
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|p| !p.is_empty());
    if has_permissions {
        return Err(format!(
            "cannot create L7 intention from file {path:?} using this CLI; use 'consul config write' instead"
        ));
    }
    Ok(ixn)
}

/// `namespace/name` as the exact endpoints take it (`FormatSource`: the namespace kept).
fn exact_query(ixn: &Value) -> Vec<(&'static str, String)> {
    let full = |ns: &str, name: &str| {
        if ns.is_empty() {
            name.to_string()
        } else {
            format!("{ns}/{name}")
        }
    };
    vec![
        (
            "source",
            full(text(ixn, "SourceNS"), text(ixn, "SourceName")),
        ),
        (
            "destination",
            full(text(ixn, "DestinationNS"), text(ixn, "DestinationName")),
        ),
    ]
}

async fn create(a: CreateArgs) -> Result<(), String> {
    super::no_undefined_flag(&a.args)?;
    if on(a.allow) && on(a.deny) {
        return Err("Only one of -allow or -deny may be specified.".into());
    }
    let ixns = to_create(&a).map_err(|e| format!("Error: {e}"))?;
    let client = connect(&a.http)?;
    for ixn in ixns {
        let body = serde_json::to_vec(&ixn).map_err(|e| e.to_string())?;
        if on(a.replace) {
            let query = exact_query(&ixn);
            let (src, dst) = (&query[0].1, &query[1].1);
            let old = fetch(&client, "/v1/connect/intentions/exact", &query)
                .await
                .map_err(|e| {
                    format!(
                        "Error looking up intention for replacement with source {src:?} and destination {dst:?}: {e}"
                    )
                })?;
            if let Some(old) = old {
                // Legacy intentions are replaced by ID; config-entry ones in place.
                let id = text(&old, "ID");
                let sent = if id.is_empty() {
                    client
                        .ok(
                            Method::PUT,
                            "/v1/connect/intentions/exact",
                            &query,
                            Some(body),
                        )
                        .await
                } else {
                    let path = format!("/v1/connect/intentions/{}", segment(id));
                    client.ok(Method::PUT, &path, &[], Some(body)).await
                };
                sent.map_err(|e| {
                    format!(
                        "Error replacing intention with source {src:?} and destination {dst:?}: {e}"
                    )
                })?;
                continue;
            }
        }
        client
            .ok(Method::POST, "/v1/connect/intentions", &[], Some(body))
            .await
            .map_err(|e| format!("Error creating intention {:?}: {e}", describe(&ixn)))?;
        println!("Created: {}", describe(&ixn));
    }
    Ok(())
}

/// A GET answering 404 for "none" (as the api package's getters return nil).
async fn fetch(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
) -> Result<Option<Value>, String> {
    let resp = client.send(Method::GET, path, query, None).await?;
    if resp.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    Ok(Some(decode(&resp.ok()?.body)?))
}

/// The intention `get` and friends name: `ID` or `SRC DST` (`GetFromArgs`).
async fn lookup(client: &Client, args: &[String]) -> Result<Value, String> {
    let failed = |e: String| format!("Error reading the intention: {e}");
    match args {
        [id] => fetch(
            client,
            &format!("/v1/connect/intentions/{}", segment(id)),
            &[],
        )
        .await
        .map_err(failed)?
        .ok_or_else(|| format!("Intention not found with ID {id:?}")),
        [src, dst] => fetch(
            client,
            "/v1/connect/intentions/exact",
            &[("source", src.clone()), ("destination", dst.clone())],
        )
        .await
        .map_err(failed)?
        .ok_or_else(|| format!("Intention not found with source {src:?} and destination {dst:?}")),
        _ => Err("command requires exactly 1 or 2 arguments".into()),
    }
}

/// A Go `time.Time` as `Local().Format(time.RFC850)` renders it (in UTC here).
fn rfc850(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let format = time::macros::format_description!(
        "[weekday], [day]-[month repr:short]-[year repr:last_two] [hour]:[minute]:[second] UTC"
    );
    time::OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| rfc3339.to_string())
}

async fn get(a: TargetArgs) -> Result<(), String> {
    let client = connect(&a.http)?;
    let ixn = lookup(&client, &a.args).await?;
    let mut rows = vec![
        vec!["Source:".to_string(), source_string(&ixn)],
        vec!["Destination:".to_string(), destination_string(&ixn)],
    ];
    for (label, key) in [("Action:", "Action"), ("ID:", "ID")] {
        if !text(&ixn, key).is_empty() {
            rows.push(vec![label.to_string(), text(&ixn, key).to_string()]);
        }
    }
    if !text(&ixn, "Description").is_empty() {
        rows.push(vec![
            "Description:".into(),
            text(&ixn, "Description").into(),
        ]);
    }
    if let Some(meta) = ixn.get("Meta").and_then(Value::as_object) {
        let sorted: BTreeMap<&String, &Value> = meta.iter().collect();
        for (k, v) in sorted {
            rows.push(vec![
                format!("Meta[{k}]:"),
                v.as_str().unwrap_or_default().to_string(),
            ]);
        }
    }
    rows.push(vec!["Created At:".into(), rfc850(text(&ixn, "CreatedAt"))]);
    println!("{}", columnize(&rows));
    if let Some(perms) = ixn
        .get("Permissions")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    {
        println!(
            "Permissions:\n{}",
            super::client::indented_json(perms, b"  ")?
        );
    }
    Ok(())
}

async fn delete(a: TargetArgs) -> Result<(), String> {
    let client = connect(&a.http)?;
    let sent = match a.args.as_slice() {
        [id] => {
            let path = format!("/v1/connect/intentions/{}", segment(id));
            client.ok(Method::DELETE, &path, &[], None).await
        }
        [src, dst] => {
            let query = [("source", src.clone()), ("destination", dst.clone())];
            client
                .ok(Method::DELETE, "/v1/connect/intentions/exact", &query, None)
                .await
        }
        _ => return Err("command requires exactly 1 or 2 arguments".into()),
    };
    sent.map_err(|e| format!("Error deleting the intention: {e}"))?;
    println!("Intention deleted.");
    Ok(())
}

/// 0 when allowed, 1 when denied.
async fn check(a: TargetArgs) -> Result<i32, String> {
    let [src, dst] = a.args.as_slice() else {
        return Err("Error: command requires exactly two arguments: src and dst".into());
    };
    let client = connect(&a.http)?;
    let query = [
        ("source", src.clone()),
        ("destination", dst.clone()),
        ("source-type", "consul".to_string()),
    ];
    let failed = |e: String| format!("Error checking the connection: {e}");
    let resp = client
        .ok(Method::GET, "/v1/connect/intentions/check", &query, None)
        .await
        .map_err(failed)?;
    let answer: Value = decode(&resp.body).map_err(failed)?;
    if answer["Allowed"].as_bool() == Some(true) {
        println!("Allowed");
        Ok(0)
    } else {
        println!("Denied");
        Ok(1)
    }
}

async fn matching(a: MatchArgs) -> Result<(), String> {
    let [name] = a.args.as_slice() else {
        return Err("Error: command requires exactly one argument: src or dst".into());
    };
    if on(a.source) && on(a.destination) {
        return Err("Error: only one of -source or -destination may be specified".into());
    }
    let by = if on(a.source) {
        "source"
    } else {
        "destination"
    };
    let client = connect(&a.http)?;
    let failed = |e: String| format!("Error matching the connection: {e}");
    let query = [("by", by.to_string()), ("name", name.clone())];
    let resp = client
        .ok(Method::GET, "/v1/connect/intentions/match", &query, None)
        .await
        .map_err(failed)?;
    let matches: BTreeMap<String, Vec<Value>> = decode(&resp.body).map_err(failed)?;
    for ixn in matches.get(name).into_iter().flatten() {
        println!("{}", describe(ixn));
    }
    Ok(())
}

/// 2 when there are no intentions.
async fn list(a: ListArgs) -> Result<i32, String> {
    let client = connect(&a.http)?;
    let failed = |e: String| format!("Failed to retrieve the intentions list: {e}");
    let resp = client
        .ok(Method::GET, "/v1/connect/intentions", &[], None)
        .await
        .map_err(failed)?;
    let ixns: Vec<Value> = decode(&resp.body).map_err(failed)?;
    if ixns.is_empty() {
        eprintln!("There are no intentions.");
        return Ok(2);
    }
    let mut rows = vec![["ID", "Source", "Action", "Destination", "Precedence"]
        .map(String::from)
        .to_vec()];
    for ixn in &ixns {
        rows.push(vec![
            text(ixn, "ID").to_string(),
            text(ixn, "SourceName").to_string(),
            text(ixn, "Action").to_string(),
            text(ixn, "DestinationName").to_string(),
            ixn["Precedence"].as_i64().unwrap_or_default().to_string(),
        ]);
    }
    println!("{}", columnize(&rows));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_go_rfc850() {
        assert_eq!(
            rfc850("2026-12-06T18:10:56.5Z"),
            "Sunday, 06-Dec-26 18:10:56 UTC"
        );
        assert_eq!(
            rfc850("0001-01-01T00:00:00Z"),
            "Monday, 01-Jan-01 00:00:00 UTC"
        );
    }

    #[test]
    fn targets_take_an_optional_namespace() {
        assert_eq!(target("web").unwrap(), ("".into(), "web".into()));
        assert_eq!(target("ns/web").unwrap(), ("ns".into(), "web".into()));
        assert!(target("a/b/c").is_err());
    }
}
