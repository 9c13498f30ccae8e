//! `legate event`, as `consul event`: fires a user event and prints its ID.

use super::client::{connect, decode, segment, HttpFlags};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct EventArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Name of the event.
    #[arg(long, default_value = "")]
    name: String,
    /// Regular expression on the names of the nodes that should handle the event.
    #[arg(long, default_value = "")]
    node: String,
    /// Regular expression on the services of the nodes that should handle the event.
    #[arg(long, default_value = "")]
    service: String,
    /// Regular expression on the service tags (needs -service).
    #[arg(long, default_value = "")]
    tag: String,
    /// The optional payload.
    args: Vec<String>,
}

pub async fn run(a: EventArgs) -> i32 {
    match fire(a).await {
        Ok(id) => {
            println!("Event ID: {id}");
            0
        }
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

const USAGE: &str = "Usage: legate event [options] [payload]";

async fn fire(a: EventArgs) -> Result<String, String> {
    if a.name.is_empty() {
        return Err(format!("Event name must be specified\n\n{USAGE}"));
    }
    for (kind, pattern) in [("node", &a.node), ("service", &a.service), ("tag", &a.tag)] {
        if !pattern.is_empty() {
            regex::Regex::new(pattern).map_err(|e| {
                format!(
                    "Failed to compile {kind} filter regexp: {}",
                    crate::http::event::regex_error(pattern, &e)
                )
            })?;
        }
    }
    if !a.tag.is_empty() && a.service.is_empty() {
        return Err("Cannot provide tag filter without service filter.".into());
    }
    let payload = match a.args.as_slice() {
        [] => None,
        [payload] => Some(payload.as_bytes().to_vec()),
        _ => return Err(format!("Too many command line arguments.\n\n{USAGE}")),
    };
    let client = connect(&a.http)?;
    client
        .ok(Method::GET, "/v1/agent/self", &[], None)
        .await
        .map_err(|e| format!("Error querying Consul agent: {e}"))?;
    let mut query = Vec::new();
    for (key, value) in [("node", &a.node), ("service", &a.service), ("tag", &a.tag)] {
        if !value.is_empty() {
            query.push((key, value.clone()));
        }
    }
    let fail = |e: String| format!("Error firing event: {e}");
    let path = format!("/v1/event/fire/{}", segment(&a.name));
    let resp = client
        .ok(Method::PUT, &path, &query, payload)
        .await
        .map_err(fail)?;
    let event: Value = decode(&resp.body).map_err(fail)?;
    Ok(event
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}
