//! `legate validate`, as `consul validate`: loads config files and directories as the agent
//! would, without starting it.

use crate::config::{AgentFlags, Config};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Read the files as this format ("hcl" or "json") whatever their extension.
    #[arg(long = "config-format", default_value = "")]
    config_format: String,
    /// Print nothing when the configuration is valid.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    quiet: bool,
    /// Config files and directories.
    paths: Vec<PathBuf>,
}

pub fn run(a: ValidateArgs) -> i32 {
    super::client::exit_code(validate(a))
}

fn validate(a: ValidateArgs) -> Result<(), String> {
    if a.paths.is_empty() {
        return Err("Must specify at least one config file or directory".into());
    }
    if !matches!(a.config_format.as_str(), "" | "hcl" | "json") {
        return Err("-config-format must be either 'hcl' or 'json".into());
    }
    let (config_dir, config_file) = a.paths.into_iter().partition(|p| p.is_dir());
    let flags = AgentFlags {
        config_file,
        config_dir,
        config_format: Some(a.config_format),
        ..Default::default()
    };
    let config = Config::load(&flags).map_err(|e| format!("Config validation failed: {e}"))?;
    for notice in &config.notices {
        eprintln!("{notice}");
    }
    if !a.quiet {
        println!("Configuration is valid!");
    }
    Ok(())
}
