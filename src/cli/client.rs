//! The HTTP client the CLI commands share, configured as the consul CLI's is: `-http-addr`
//! (or `CONSUL_HTTP_ADDR`), `-token` / `-token-file` (or `CONSUL_HTTP_TOKEN`), `-datacenter`,
//! `-stale`.

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpFlags {
    /// Address of the agent's HTTP API.
    #[arg(
        long = "http-addr",
        env = "CONSUL_HTTP_ADDR",
        default_value = "127.0.0.1:8500"
    )]
    pub http_addr: String,
    /// ACL token for the request.
    #[arg(long = "token", env = "CONSUL_HTTP_TOKEN")]
    pub token: Option<String>,
    /// File holding the ACL token.
    #[arg(long = "token-file", env = "CONSUL_HTTP_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    #[arg(long = "datacenter")]
    pub datacenter: Option<String>,
    /// Allow any agent to answer (accepted; a single node is always consistent).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub stale: Option<bool>,
}

pub use crate::client::{segment, Client, Response};

impl Client {
    /// The client the flags describe; the token comes from `-token`, else `-token-file`.
    pub fn new(flags: &HttpFlags) -> Result<Client, String> {
        let token = match (&flags.token, &flags.token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("Error reading token file {}: {e}", file.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        Ok(Client::with(
            &flags.http_addr,
            token,
            flags.datacenter.clone(),
        ))
    }
}

/// Files and stdin are read up to `MAX_DATA`: past it no agent would take the body anyway, and
/// an endless input (`@/dev/zero`) must not grow without bound.
/// Reads a command's DATA argument as the consul CLI does: `@file`, `-` for stdin, else literal.
pub fn read_data(arg: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = arg.strip_prefix('@') {
        let file = std::fs::File::open(path).map_err(|e| format!("Failed to read file: {e}"))?;
        return read_bounded(file).map_err(|e| format!("Failed to read file: {e}"));
    }
    if arg == "-" {
        return read_bounded(std::io::stdin()).map_err(|e| format!("Failed to read stdin: {e}"));
    }
    Ok(arg.as_bytes().to_vec())
}

/// Parses a Go `FlagMapValue` item (`-meta`, `-node-meta`): `key=value`, split at the first `=`.
pub fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("missing \"=\" value in argument: {arg}")),
    }
}

/// A command's exit code: 0, or 1 after printing its error to stderr (as the consul CLI).
pub fn exit_code(result: Result<(), String>) -> i32 {
    exit_code_of(result.map(|()| 0))
}

/// Like `exit_code`, for commands that choose their own exit code on success.
pub fn exit_code_of(result: Result<i32, String>) -> i32 {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

/// `value` as JSON indented with `indent`, as Go's `json.MarshalIndent(v, "", indent)` (each
/// consul command picks its own indent).
pub fn indented_json<T: serde::Serialize + ?Sized>(
    value: &T,
    indent: &[u8],
) -> Result<String, String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// `-cas` and `-modify-index`, as `kv put|delete` and `config write|delete` take them.
#[derive(Debug, clap::Args)]
pub struct CasFlags {
    /// Check-and-set: act only if the entry's ModifyIndex is -modify-index (0: only create).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    cas: Option<bool>,
    #[arg(long = "modify-index", default_value_t = 0)]
    pub modify_index: u64,
}

impl CasFlags {
    pub fn on(&self) -> bool {
        self.cas.unwrap_or(false)
    }

    /// The `?cas=` the request carries, if any.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        if self.on() {
            vec![("cas", self.modify_index.to_string())]
        } else {
            Vec::new()
        }
    }
}

/// Builds the client, with the consul CLI's error text.
pub fn connect(flags: &HttpFlags) -> Result<Client, String> {
    Client::new(flags).map_err(|e| format!("Error connecting to Consul agent: {e}"))
}

/// Decodes a JSON response body.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("cannot decode response: {e}"))
}

/// The most `read_data` reads from a file or stdin: the largest body an agent accepts
/// (`limits.txn_max_req_len`'s and `kv_max_value_size`'s ceiling is well below it).
pub const MAX_DATA: u64 = 64 * 1024 * 1024;

fn read_bounded(input: impl std::io::Read) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut input.take(MAX_DATA + 1), &mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_DATA {
        return Err(format!("input is larger than {MAX_DATA} bytes"));
    }
    Ok(buf)
}
