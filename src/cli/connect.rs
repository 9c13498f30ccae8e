//! `legate connect ca get-config|set-config`, as the consul commands of those names.

use super::client::{connect, decode, indented_json, HttpFlags};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum ConnectCommand {
    /// Interacts with the Connect Certificate Authority (CA).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Displays the current Connect CA configuration.
    GetConfig(GetConfigArgs),
    /// Modifies the current Connect CA configuration.
    SetConfig(SetConfigArgs),
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
    /// The JSON file holding the new CA configuration (`Provider`, `Config`).
    #[arg(long = "config-file", default_value = "")]
    config_file: String,
    /// Accepted as consul's; the built-in provider always cross-signs.
    #[arg(long = "force-without-cross-signing", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    force_without_cross_signing: Option<bool>,
}

/// Consul's `api.CAConfig`, in its field order; `Config`'s keys sorted as Go sorts a map's.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CaConfig {
    provider: String,
    config: BTreeMap<String, Value>,
    state: Option<BTreeMap<String, String>>,
    force_without_cross_signing: bool,
    create_index: u64,
    modify_index: u64,
}

pub async fn run(command: ConnectCommand) -> i32 {
    let ConnectCommand::Ca { command } = command;
    let result = match command {
        CaCommand::GetConfig(a) => get_config(a).await,
        CaCommand::SetConfig(a) => set_config(a).await,
    };
    super::client::exit_code(result)
}

async fn get_config(a: GetConfigArgs) -> Result<(), String> {
    let client = connect(&a.http)?;
    let response = client
        .ok(Method::GET, "/v1/connect/ca/configuration", &[], None)
        .await
        .map_err(|e| format!("Error request CA configuration: {e}"))?;
    let config: CaConfig = decode(&response.body)?;
    println!("{}", indented_json(&config, b"\t")?);
    Ok(())
}

async fn set_config(a: SetConfigArgs) -> Result<(), String> {
    if a.config_file.is_empty() {
        return Err("The -config-file flag is required".into());
    }
    let text =
        std::fs::read(&a.config_file).map_err(|e| format!("Error reading config file: {e}"))?;
    let mut config: serde_json::Map<String, Value> =
        serde_json::from_slice(&text).map_err(|e| format!("Error parsing config file: {e}"))?;
    if let Some(force) = a.force_without_cross_signing {
        config.insert("ForceWithoutCrossSigning".into(), force.into());
    }
    let client = connect(&a.http)?;
    let body = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    client
        .ok(Method::PUT, "/v1/connect/ca/configuration", &[], Some(body))
        .await
        .map_err(|e| format!("Error setting CA configuration: {e}"))?;
    println!("Configuration updated!");
    Ok(())
}
