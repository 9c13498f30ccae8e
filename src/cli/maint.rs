//! `legate maint`, as `consul maint`: lists, enables or disables node and service maintenance
//! mode on the local agent.

use super::client::{connect, decode, segment, HttpFlags};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, clap::Args)]
pub struct MaintArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Enable maintenance mode.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    enable: Option<bool>,
    /// Disable maintenance mode.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    disable: Option<bool>,
    /// Text describing the maintenance reason.
    #[arg(long, default_value = "")]
    reason: String,
    /// Control maintenance mode for a specific service ID.
    #[arg(long, default_value = "")]
    service: String,
}

const NODE_CHECK: &str = "_node_maintenance";
const SERVICE_CHECK_PREFIX: &str = "_service_maintenance:";

pub async fn run(a: MaintArgs) -> i32 {
    super::client::exit_code(maint(a).await)
}

async fn maint(a: MaintArgs) -> Result<(), String> {
    let (enable, disable) = (a.enable.unwrap_or(false), a.disable.unwrap_or(false));
    if enable && disable {
        return Err("Only one of -enable or -disable may be provided".into());
    }
    if !enable && !a.reason.is_empty() {
        return Err("Reason may only be provided with -enable".into());
    }
    if !enable && !disable && !a.service.is_empty() {
        return Err("Service requires either -enable or -disable".into());
    }
    let client = connect(&a.http)?;

    if !enable && !disable {
        let resp = client
            .ok(Method::GET, "/v1/agent/self", &[], None)
            .await
            .map_err(|e| format!("Error querying Consul agent: {e}"))?;
        let info: Value =
            decode(&resp.body).map_err(|e| format!("Error querying Consul agent: {e}"))?;
        let node_name = info["Config"]["NodeName"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let fail = |e: String| format!("Error getting checks: {e}");
        let resp = client
            .ok(Method::GET, "/v1/agent/checks", &[], None)
            .await
            .map_err(fail)?;
        let checks: BTreeMap<String, Value> = decode(&resp.body).map_err(fail)?;
        print!("{}", listing(&node_name, &checks));
        return Ok(());
    }

    let mut query = vec![("enable", enable.to_string())];
    if enable {
        query.push(("reason", a.reason.clone()));
    }
    let path = if a.service.is_empty() {
        "/v1/agent/maintenance".to_string()
    } else {
        format!("/v1/agent/service/maintenance/{}", segment(&a.service))
    };
    let (verb, state) = if enable {
        ("enabling", "enabled")
    } else {
        ("disabling", "disabled")
    };
    let target = if a.service.is_empty() {
        "node"
    } else {
        "service"
    };
    client
        .ok(Method::PUT, &path, &query, None)
        .await
        .map_err(|e| format!("Error {verb} {target} maintenance: {e}"))?;
    if a.service.is_empty() {
        println!("Node maintenance is now {state}");
    } else {
        println!("Service maintenance is now {state} for {:?}", a.service);
    }
    Ok(())
}

/// The `Node:` / `Service:` blocks for the maintenance checks among `checks`.
fn listing(node_name: &str, checks: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    for (id, check) in checks {
        let notes = check["Notes"].as_str().unwrap_or("");
        if id == NODE_CHECK {
            out.push_str(&format!(
                "Node:\n  Name:   {node_name}\n  Reason: {notes}\n\n"
            ));
        } else if id.starts_with(SERVICE_CHECK_PREFIX) {
            let service = check["ServiceID"].as_str().unwrap_or("");
            out.push_str(&format!(
                "Service:\n  ID:     {service}\n  Reason: {notes}\n\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_node_then_services() {
        let checks: BTreeMap<String, Value> = [
            (
                "_service_maintenance:web".to_string(),
                json!({"ServiceID": "web", "Notes": "deploy"}),
            ),
            (
                "_node_maintenance".to_string(),
                json!({"Notes": "patching"}),
            ),
            ("other".to_string(), json!({"Notes": "x"})),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            listing("n1", &checks),
            "Node:\n  Name:   n1\n  Reason: patching\n\nService:\n  ID:     web\n  Reason: deploy\n\n"
        );
    }
}
