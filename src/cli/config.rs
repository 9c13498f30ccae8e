//! `legate config write|read|list|delete`, as `consul config`: same flags, output and exit
//! codes. Entries are decoded here as the agent decodes them, so a malformed file is reported
//! before anything is sent.

use super::client::{indented_json, read_data, segment, CasFlags, Client, HttpFlags};
use crate::types::config_entry::{ConfigEntry, MESH_KIND, MESH_NAME};
use reqwest::Method;
use serde_json::Value;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Creates or updates a config entry from an HCL or JSON file (`-` for stdin).
    Write(WriteArgs),
    /// Prints a config entry as JSON.
    Read(ReadArgs),
    /// Lists the names of the config entries of a kind.
    List(ListArgs),
    /// Deletes a config entry.
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    check_and_set: CasFlags,
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `-kind` and `-name`, naming one entry.
#[derive(Debug, clap::Args)]
struct EntryFlags {
    #[arg(long, default_value = "")]
    kind: String,
    #[arg(long, default_value = "")]
    name: String,
}

impl EntryFlags {
    /// Both must be given, `-kind` first.
    fn check(&self) -> Result<(), String> {
        if self.kind.is_empty() {
            return Err("Must specify the -kind parameter".into());
        }
        if self.name.is_empty() {
            return Err("Must specify the -name parameter".into());
        }
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    entry: EntryFlags,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(long, default_value = "")]
    kind: String,
    /// A `?filter` expression over the entries.
    #[arg(long, default_value = "")]
    filter: String,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    entry: EntryFlags,
    /// A file holding the entry to delete (instead of -kind and -name).
    #[arg(long, default_value = "")]
    filename: String,
    #[command(flatten)]
    check_and_set: CasFlags,
}

/// The client, with the `consul config` commands' own error text.
fn connect(flags: &HttpFlags) -> Result<Client, String> {
    Client::new(flags).map_err(|e| format!("Error connect to Consul agent: {e}"))
}

pub async fn run(command: ConfigCommand) -> i32 {
    let result = match command {
        ConfigCommand::Write(a) => write(a).await,
        ConfigCommand::Read(a) => read(a).await,
        ConfigCommand::List(a) => list(a).await,
        ConfigCommand::Delete(a) => delete(a).await,
    };
    super::client::exit_code(result)
}

/// The document at `source`, as `LoadDataSourceNoRaw` reads it: `-` is stdin, anything else a
/// file path (taken as it is: no `@`, no literal data).
fn load(source: &str) -> Result<String, String> {
    let failed = |e: String| format!("Failed to load data: {e}");
    if source.is_empty() {
        return Err(failed(
            "Failed to load data: must specify a file path or '-' for stdin".into(),
        ));
    }
    // `read_data` reads stdin for `-` and a file for `@path`, with the same error texts.
    let source = if source == "-" {
        source.to_string()
    } else {
        format!("@{source}")
    };
    let data = read_data(&source).map_err(failed)?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

/// Parses an entry written in JSON or HCL (`ParseConfigEntry`) and decodes it as the agent
/// will; returns the document to send and the decoded entry.
fn parse(text: &str) -> Result<(Value, ConfigEntry), String> {
    let failed = |e: String| format!("Failed to decode config entry input: {e}");
    let document: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        // `ParseConfigEntry` prefixes a syntax error itself, and the command once more.
        Err(_) => hcl::from_str(text).map_err(|e| failed(failed(e.to_string())))?,
    };
    let entry = ConfigEntry::decode(document.clone()).map_err(failed)?;
    Ok((document, entry))
}

/// The name Consul's client reports for an entry (the mesh entry's is always `mesh`).
fn display_name(entry: &ConfigEntry) -> &str {
    if entry.kind == MESH_KIND {
        MESH_NAME
    } else {
        &entry.name
    }
}

fn entry_path(kind: &str, name: &str) -> String {
    format!("/v1/config/{}/{}", segment(kind), segment(name))
}

async fn write(a: WriteArgs) -> Result<(), String> {
    super::no_undefined_flag(&a.args)?;
    let [source] = a.args.as_slice() else {
        return Err(
            "Must provide exactly one positional argument to specify the config entry to write"
                .into(),
        );
    };
    let (document, entry) = parse(&load(source)?)?;
    let client = connect(&a.http)?;
    let (kind, name) = (entry.kind.as_str(), display_name(&entry));
    let body = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
    let written = client
        .ok(
            Method::PUT,
            "/v1/config",
            &a.check_and_set.query(),
            Some(body),
        )
        .await
        .map_err(|e| format!("Error writing config entry {kind}/{name}: {e}"))?
        .is_true();
    if !written {
        return Err(format!("Config entry not updated: {kind}/{name}"));
    }
    println!("Config entry written: {kind}/{name}");
    Ok(())
}

async fn read(a: ReadArgs) -> Result<(), String> {
    a.entry.check()?;
    let (kind, name) = (&a.entry.kind, &a.entry.name);
    let client = connect(&a.http)?;
    let failed = |e: String| format!("Error reading config entry {kind}/{name}: {e}");
    let resp = client
        .ok(Method::GET, &entry_path(kind, name), &[], None)
        .await
        .map_err(failed)?;
    let entry: Value = super::client::decode(&resp.body).map_err(failed)?;
    println!("{}", indented_json(&entry, b"    ")?);
    Ok(())
}

async fn list(a: ListArgs) -> Result<(), String> {
    if a.kind.is_empty() {
        return Err("Must specify the -kind parameter".into());
    }
    let client = connect(&a.http)?;
    let failed = |e: String| format!("Error listing config entries for kind {:?}: {e}", a.kind);
    let query = if a.filter.is_empty() {
        Vec::new()
    } else {
        vec![("filter", a.filter.clone())]
    };
    let path = format!("/v1/config/{}", segment(&a.kind));
    let resp = client
        .ok(Method::GET, &path, &query, None)
        .await
        .map_err(failed)?;
    let entries: Vec<Value> = super::client::decode(&resp.body).map_err(failed)?;
    for entry in entries {
        let name = entry
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or(MESH_NAME);
        println!("{name}");
    }
    Ok(())
}

/// `consul config delete`'s argument rules.
fn check_delete_args(a: &DeleteArgs) -> Result<(), String> {
    let given = [&a.filename, &a.entry.kind, &a.entry.name]
        .iter()
        .filter(|s| !s.is_empty())
        .count();
    if given >= 3 || (!a.filename.is_empty() && given == 2) {
        return Err("filename can't be used with kind or name".into());
    }
    if given == 0 {
        return Err("Must specify the -kind or -filename parameter".into());
    }
    if a.filename.is_empty() {
        a.entry.check()?;
    }
    let (cas, modify_index) = (a.check_and_set.on(), a.check_and_set.modify_index);
    if cas && modify_index == 0 {
        return Err("Must specify a -modify-index greater than 0 with -cas".into());
    }
    if modify_index != 0 && !cas {
        return Err("Cannot specify -modify-index without -cas".into());
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> Result<(), String> {
    check_delete_args(&a)?;
    let (kind, name) = if a.filename.is_empty() {
        (a.entry.kind.clone(), a.entry.name.clone())
    } else {
        let (_, entry) = parse(&load(&a.filename)?)?;
        let name = display_name(&entry).to_string();
        (entry.kind, name)
    };
    let client = connect(&a.http)?;
    let cas = &a.check_and_set;
    let resp = client
        .ok(
            Method::DELETE,
            &entry_path(&kind, &name),
            &cas.query(),
            None,
        )
        .await
        .map_err(|e| format!("Error deleting config entry {kind}/{name}: {e}"))?;
    if cas.on() && !resp.is_true() {
        return Err(format!("Config entry not deleted: {kind}/{name}"));
    }
    println!("Config entry deleted: {kind}/{name}");
    Ok(())
}
