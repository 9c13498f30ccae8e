//! The `legate` command line, mirroring `consul`'s commands and Go-style flags (`-flag`,
//! `-flag=value`, `-flag value`). Every command but `agent` is an HTTP client of a running agent.

pub mod acl;
pub mod acl_auth;
pub mod agent;
pub mod autocomplete;
pub mod catalog;
pub mod client;
pub mod config;
pub mod connect;
pub mod debug;
pub mod event;
pub mod intention;
pub mod keygen;
pub mod kv;
pub mod lock;
pub mod maint;
pub mod monitor;
pub mod operator;
pub mod rtt;
pub mod services;
pub mod snapshot;
pub mod tls;
pub mod validate;
pub mod watch;

use crate::config::{AgentFlags, Config};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "legate",
    version,
    about = "A durable, single-node, Consul-compatible agent",
    // Go's flag package lets the last of a repeated flag win (repeatable flags accumulate).
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the agent.
    Agent(Box<AgentFlags>),
    /// Interacts with the key-value store.
    Kv {
        #[command(subcommand)]
        command: kv::KvCommand,
    },
    /// Interacts with the catalog.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Interacts with centralized config entries.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Registers or deregisters services with the local agent.
    Services {
        #[command(subcommand)]
        command: services::ServicesCommand,
    },
    /// Controls node or service maintenance mode.
    Maint(maint::MaintArgs),
    /// Saves, restores and inspects snapshots of the agent's state.
    Snapshot {
        #[command(subcommand)]
        command: snapshot::SnapshotCommand,
    },
    /// Executes a command holding a lock (or a semaphore slot).
    Lock(lock::LockArgs),
    /// Lists the members of the cluster.
    Members(agent::MembersArgs),
    /// Tells the agent to join a cluster.
    Join(agent::JoinArgs),
    /// Gracefully leaves the cluster and shuts the agent down.
    Leave(agent::LeaveArgs),
    /// Forces a member of the cluster into the "left" state.
    ForceLeave(agent::ForceLeaveArgs),
    /// Triggers the agent to reload its configuration files.
    Reload(agent::ReloadArgs),
    /// Prints debugging information for operators.
    Info(agent::InfoArgs),
    /// Fires a user event.
    Event(event::EventArgs),
    /// Manages the ACL system: bootstrap, tokens, policies, roles, auth methods and binding
    /// rules.
    Acl {
        #[command(subcommand)]
        command: acl::AclCommand,
    },
    /// Logs in with an auth method, writing the new ACL token to a file.
    Login(acl_auth::LoginArgs),
    /// Destroys an ACL token created by a login.
    Logout(acl_auth::LogoutArgs),
    /// Interacts with Connect service intentions.
    Intention {
        #[command(subcommand)]
        command: intention::IntentionCommand,
    },
    /// Operator tools: the Raft configuration and autopilot.
    Operator {
        #[command(subcommand)]
        command: operator::OperatorCommand,
    },
    /// Connect: the CA's configuration.
    Connect {
        #[command(subcommand)]
        command: connect::ConnectCommand,
    },
    /// Generates a new gossip encryption key.
    Keygen(keygen::KeygenArgs),
    /// Validates config files and directories without starting the agent.
    Validate(validate::ValidateArgs),
    /// Streams the agent's logs.
    Monitor(monitor::MonitorArgs),
    /// Estimates the round trip time between two nodes.
    Rtt(rtt::RttArgs),
    /// Captures the agent's state, metrics and logs into an archive.
    Debug(debug::DebugArgs),
    /// Creates the agents' TLS CA and certificates.
    Tls {
        #[command(subcommand)]
        command: tls::TlsCommand,
    },
    /// Watches for changes in a view of the data.
    Watch(watch::WatchArgs),
    /// Prints the version.
    Version,
}

/// Go's flag package accepts `-name` for long flags, one-letter names included (`-n`); clap
/// wants `--name`. Rewrites every single-dash word (up to a bare `--`), leaving `-` (stdin),
/// negative numbers and `-h` (help, in Go's package as in clap) alone. A word the command
/// takes as a value (commands whose arguments may start with a dash) then shows as `--name`,
/// which `no_undefined_flag` refuses as Go does.
pub fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg);
        } else if arg.len() > 1
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && arg != "-h"
            && !is_number(&arg)
        {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// Go's flag package stops at the first non-flag word: for commands that run a child
/// (`legate lock`, `legate watch`) everything from there on belongs to the child and must reach
/// it as given (`ls -la` stays `ls -la`). Rewrites the flags before it as `normalize_go_flags`
/// does and puts a `--` before it. `args` is the whole command line (`legate lock ...`);
/// `value_flags` are the command's flags that take a separate value.
pub fn normalize_go_flags_before_child(
    args: impl IntoIterator<Item = String>,
    value_flags: &[&str],
) -> Vec<String> {
    let mut iter = args.into_iter();
    let mut out: Vec<String> = iter.by_ref().take(2).collect();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg);
            break;
        }
        let flag = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|f| !f.is_empty());
        let Some(flag) = flag else {
            // The first argument (or a lone "-"): the end of the flags.
            out.push("--".into());
            out.push(arg);
            break;
        };
        let takes_value = !flag.contains('=') && value_flags.contains(&flag);
        out.push(normalize_go_flags([arg]).remove(0));
        if takes_value {
            if let Some(value) = iter.next() {
                out.push(value);
            }
        }
    }
    out.extend(iter);
    out
}

fn is_number(arg: &str) -> bool {
    arg[1..].parse::<f64>().is_ok()
}

/// Runs the command line; returns the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    if let Some(code) = autocomplete::answer_shell() {
        return code;
    }
    match args.get(1).map(String::as_str) {
        Some("-autocomplete-install") => return autocomplete::install(true),
        Some("-autocomplete-uninstall") => return autocomplete::install(false),
        _ => {}
    }
    // `lock` and `watch` stop reading their flags at their first argument: the child's
    // arguments reach it as given.
    let args = match args.get(1).map(String::as_str) {
        Some("lock") => normalize_go_flags_before_child(args, lock::VALUE_FLAGS),
        Some("watch") => normalize_go_flags_before_child(args, watch::VALUE_FLAGS),
        _ => normalize_go_flags(args),
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return report_parse_error(e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cli.command {
        Command::Agent(flags) => runtime.block_on(run_agent(*flags)),
        Command::Kv { command } => runtime.block_on(kv::run(command)),
        Command::Catalog { command } => runtime.block_on(catalog::run(command)),
        Command::Config { command } => runtime.block_on(config::run(command)),
        Command::Services { command } => runtime.block_on(services::run(command)),
        Command::Maint(args) => runtime.block_on(maint::run(args)),
        Command::Snapshot { command } => runtime.block_on(snapshot::run(command)),
        Command::Lock(args) => runtime.block_on(lock::run(args)),
        Command::Members(args) => runtime.block_on(agent::members(args)),
        Command::Join(args) => runtime.block_on(agent::join(args)),
        Command::Leave(args) => runtime.block_on(agent::leave(args)),
        Command::ForceLeave(args) => runtime.block_on(agent::force_leave(args)),
        Command::Reload(args) => runtime.block_on(agent::reload(args)),
        Command::Info(args) => runtime.block_on(agent::info(args)),
        Command::Event(args) => runtime.block_on(event::run(args)),
        Command::Intention { command } => runtime.block_on(intention::run(command)),
        Command::Operator { command } => runtime.block_on(operator::run(command)),
        Command::Connect { command } => runtime.block_on(connect::run(command)),
        Command::Acl { command } => runtime.block_on(acl::run(command)),
        Command::Watch(args) => runtime.block_on(watch::run(args)),
        Command::Tls { command } => tls::run(command),
        Command::Keygen(args) => keygen::run(args),
        Command::Debug(args) => runtime.block_on(debug::run(args)),
        Command::Validate(args) => validate::run(args),
        Command::Monitor(args) => runtime.block_on(monitor::run(args)),
        Command::Rtt(args) => runtime.block_on(rtt::run(args)),
        Command::Login(args) => runtime.block_on(acl_auth::login(args)),
        Command::Logout(args) => runtime.block_on(acl_auth::logout(args)),
        Command::Version => {
            println!(
                "Legate v{} (Consul API v{})",
                env!("CARGO_PKG_VERSION"),
                crate::config::CONSUL_VERSION
            );
            0
        }
    }
}

/// For commands whose arguments may start with `-` (a value such as `-` for stdin): Go's flag
/// package still reads a dash word before the first argument as a flag, so one the command
/// does not define is refused as Go refuses it.
pub fn no_undefined_flag(args: &[String]) -> Result<(), String> {
    match args.first() {
        Some(first) if first.len() > 2 && first.starts_with("--") => {
            let name = first[1..].split('=').next().unwrap_or(first);
            Err(format!("flag provided but not defined: {name}"))
        }
        _ => Ok(()),
    }
}

/// Prints a command line the parser refused; an undefined flag is named as Go's flag package
/// names it. Returns the exit code (0 for `-help` and `-version`).
fn report_parse_error(e: clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            // Undo `normalize_go_flags`: `--name` was typed `-name`.
            let name = arg
                .strip_prefix('-')
                .filter(|a| a.starts_with('-'))
                .unwrap_or(arg);
            let name = name.split('=').next().unwrap_or(name);
            eprintln!("flag provided but not defined: {name}");
            if let Some(ContextValue::StyledStr(usage)) = e.get(ContextKind::Usage) {
                eprintln!("{usage}");
            }
            return 1;
        }
    }
    let _ = e.print();
    if e.use_stderr() {
        1
    } else {
        0
    }
}

async fn run_agent(flags: AgentFlags) -> i32 {
    let config = match Config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("==> {e}");
            return 1;
        }
    };
    init_logging(&config);
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    match crate::process::run(config).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("==> {e}");
            1
        }
    }
}

/// Stderr logging at the configured level (changeable by `reload`), plus the stream that
/// `/v1/agent/monitor` reads.
fn init_logging(config: &Config) {
    crate::agent::logging::init(&config.log_level, config.log_json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags_become_long_flags() {
        let args = [
            "legate",
            "agent",
            "-dev",
            "-data-dir=/x",
            "-http-port",
            "-1",
            "-",
            "--",
            "-keep",
        ];
        let out = normalize_go_flags(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            [
                "legate",
                "agent",
                "--dev",
                "--data-dir=/x",
                "--http-port",
                "-1",
                "-",
                "--",
                "-keep"
            ]
        );
    }

    #[test]
    fn agent_flags_parse() {
        let cli = Cli::try_parse_from(normalize_go_flags(
            [
                "legate",
                "agent",
                "-dev",
                "-server=false",
                "-config-file",
                "a.json",
                "-config-file=b.hcl",
                "-node",
                "n1",
            ]
            .iter()
            .map(|s| s.to_string()),
        ))
        .unwrap();
        let Command::Agent(flags) = cli.command else {
            panic!()
        };
        assert_eq!(flags.dev, Some(true));
        assert_eq!(flags.server, Some(false));
        assert_eq!(flags.config_file.len(), 2);
        assert!(Cli::try_parse_from(["legate", "agent", "--no-such-flag"]).is_err());
    }
}
