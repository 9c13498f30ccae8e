//! `legate watch`, as `consul watch`: follows one view of the agent's data (through the
//! shared watch plan) and prints it once, or runs a handler with it on stdin on every change.

use super::client::{connect, HttpFlags};
use crate::watch::handler::{handler_command, handler_input, shell_command};
use crate::watch::{Next, OnChange, Plan};
use reqwest::Method;
use serde_json::{Map, Value};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The watch type: key, keyprefix, services, nodes, service, checks or event.
    #[arg(long = "type", default_value = "")]
    kind: String,
    /// The key to watch (type key).
    #[arg(long, default_value = "")]
    key: String,
    /// The key prefix to watch (type keyprefix).
    #[arg(long, default_value = "")]
    prefix: String,
    /// The service to watch (type service; optional for checks).
    #[arg(long, default_value = "")]
    service: String,
    /// A service tag to filter on (type service); repeatable.
    #[arg(long, action = clap::ArgAction::Append)]
    tag: Vec<String>,
    /// Only instances passing all their checks (type service): true or false.
    #[arg(long, default_value = "")]
    passingonly: String,
    /// The check state to watch (type checks).
    #[arg(long, default_value = "")]
    state: String,
    /// The event name to watch (type event).
    #[arg(long, default_value = "")]
    name: String,
    /// Run the handler through the shell ($SHELL, /bin/sh by default).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    shell: bool,
    /// The handler and its arguments; without one, the result is printed once.
    #[arg(trailing_var_arg = true)]
    child: Vec<String>,
}

/// The flags that take a separate value (see `super::normalize_go_flags_before_child`).
pub const VALUE_FLAGS: &[&str] = &[
    "http-addr",
    "token",
    "token-file",
    "datacenter",
    "type",
    "key",
    "prefix",
    "service",
    "tag",
    "passingonly",
    "state",
    "name",
];

const HELP: &str = "Usage: legate watch [options] [child...]";

pub async fn run(a: WatchArgs) -> i32 {
    match watch(a).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

async fn watch(a: WatchArgs) -> Result<i32, String> {
    if a.kind.is_empty() {
        return Err(format!("Watch type must be specified\n\n{HELP}"));
    }
    let mut params = Map::new();
    let mut put = |name: &str, value: &str| {
        if !value.is_empty() {
            params.insert(name.into(), Value::String(value.into()));
        }
    };
    put("type", &a.kind);
    put("key", &a.key);
    put("prefix", &a.prefix);
    put("service", &a.service);
    put("state", &a.state);
    put("name", &a.name);
    if !a.tag.is_empty() {
        params.insert("tag".into(), Value::from(a.tag.clone()));
    }
    if a.http.stale.unwrap_or(false) {
        params.insert("stale".into(), Value::Bool(true));
    }
    if !a.passingonly.is_empty() {
        let passing = crate::gojson::parse_go_bool(&a.passingonly).ok_or_else(|| {
            format!(
                "Failed to parse passingonly flag: strconv.ParseBool: parsing {:?}: invalid syntax",
                a.passingonly
            )
        })?;
        params.insert("passingonly".into(), Value::Bool(passing));
    }
    let spec = crate::watch::spec::parse(&mut params)?;
    if let Some(key) = params.keys().next() {
        return Err(format!("Invalid parameters: [{key}]"));
    }

    let client = connect(&a.http)?;
    client
        .ok(Method::GET, "/v1/agent/self", &[], None)
        .await
        .map_err(|e| format!("Error querying Consul agent: {e}"))?;
    let plan = Plan::with_client(spec, client);
    let mut handler = CliHandler {
        child: a.child,
        shell: a.shell,
        exit: 0,
    };
    plan.run(&mut handler).await;
    Ok(handler.exit)
}

/// Prints the first result and stops, or runs the child with each result on its stdin
/// (stopping, with exit code 1, when it cannot be run or fails).
struct CliHandler {
    child: Vec<String>,
    shell: bool,
    exit: i32,
}

impl OnChange for CliHandler {
    async fn changed(&mut self, index: u64, data: &Value) -> Next {
        if self.child.is_empty() {
            match super::client::indented_json(data, b"    ") {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("Error encoding output: {e}");
                    self.exit = 1;
                }
            }
            return Next::Stop;
        }
        match self.run_child(index, data).await {
            Ok(()) => Next::Continue,
            Err(message) => {
                eprintln!("{message}");
                self.exit = 1;
                Next::Stop
            }
        }
    }
}

impl CliHandler {
    async fn run_child(&self, index: u64, data: &Value) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let command = if self.shell {
            Some(shell_command(&self.child.join(" ")))
        } else {
            handler_command(&self.child)
        };
        let Some(mut command) = command else {
            return Err("Error executing handler: no command".into());
        };
        command
            .env("CONSUL_INDEX", index.to_string())
            .stdin(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("Error starting handler: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            let input = handler_input(data);
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
            });
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("Error executing handler: {e}"))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => Err(format!("Error executing handler: exit status {code}")),
            None => Err(format!("Error executing handler: {status}")),
        }
    }
}
