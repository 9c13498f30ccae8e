//! `legate kv get|put|delete|export|import`, as `consul kv`: same flags, output and exit codes.

use super::client::{connect, indented_json, read_data, CasFlags, HttpFlags};
use crate::types::KvEntry;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Debug, clap::Subcommand)]
pub enum KvCommand {
    /// Retrieves the value at a key, or lists keys under a prefix.
    Get(GetArgs),
    /// Writes a value to a key.
    Put(PutArgs),
    /// Deletes a key, or every key under a prefix.
    Delete(DeleteArgs),
    /// Prints the keys under a prefix as JSON, for `import`.
    Export(ExportArgs),
    /// Writes the keys of an `export` document.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    base64: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    detailed: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    keys: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    recurse: Option<bool>,
    #[arg(long, default_value = "/")]
    separator: String,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PutArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    check_and_set: CasFlags,
    #[arg(long, default_value_t = 0)]
    flags: u64,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    base64: Option<bool>,
    #[arg(long)]
    session: Option<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    acquire: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    release: Option<bool>,
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    check_and_set: CasFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    recurse: Option<bool>,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[arg(long, default_value = "")]
    prefix: String,
    #[arg(allow_hyphen_values = true)]
    args: Vec<String>,
}

/// One entry of `consul kv export` output.
#[derive(Debug, Serialize, Deserialize)]
struct ExportedEntry {
    key: String,
    flags: u64,
    value: String,
}

fn on(flag: Option<bool>) -> bool {
    flag.unwrap_or(false)
}

pub async fn run(command: KvCommand) -> i32 {
    let result = match command {
        KvCommand::Get(a) => get(a).await,
        KvCommand::Put(a) => put(a).await,
        KvCommand::Delete(a) => delete(a).await,
        KvCommand::Export(a) => export(a).await,
        KvCommand::Import(a) => import(a).await,
    };
    super::client::exit_code(result)
}

fn one_key(args: &[String], required: bool) -> Result<String, String> {
    match args {
        [] if required => Err("Error! Missing KEY argument".into()),
        [] => Ok(String::new()),
        [key] => Ok(key.clone()),
        more => Err(format!(
            "Too many arguments (expected 1, got {})",
            more.len()
        )),
    }
}

fn kv_path(key: &str) -> String {
    let encoded: String = key
        .split('/')
        .map(|seg| {
            percent_encoding::utf8_percent_encode(seg, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("/");
    format!("/v1/kv/{encoded}")
}

fn render_value(value: &[u8], base64: bool) -> String {
    if base64 {
        base64::engine::general_purpose::STANDARD.encode(value)
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

fn detailed(entry: &KvEntry, base64: bool, with_value: bool) -> String {
    let session = if entry.session.is_empty() {
        "-"
    } else {
        &entry.session
    };
    let mut rows = vec![
        ("CreateIndex", entry.create_index.to_string()),
        ("Flags", entry.flags.to_string()),
        ("Key", entry.key.clone()),
        ("LockIndex", entry.lock_index.to_string()),
        ("ModifyIndex", entry.modify_index.to_string()),
        ("Session", session.to_string()),
    ];
    if with_value {
        rows.push(("Value", render_value(&entry.value, base64)));
    }
    rows.iter()
        .map(|(k, v)| format!("{k:<17}{v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn get(a: GetArgs) -> Result<(), String> {
    let key = one_key(&a.args, false)?;
    let key = key.strip_prefix('/').unwrap_or(&key).to_string();
    let (keys, recurse) = (on(a.keys), on(a.recurse));
    if key.is_empty() && !keys && !recurse {
        return Err("Error! Missing KEY argument".into());
    }
    let client = connect(&a.http)?;
    let query_err = |e: String| format!("Error querying Consul agent: {e}");
    if keys && !(recurse && on(a.detailed)) {
        let mut query = vec![("keys", String::new())];
        if !recurse {
            query.push(("separator", a.separator.clone()));
        }
        let resp = client
            .send(Method::GET, &kv_path(&key), &query, None)
            .await
            .map_err(query_err)?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let keys: Vec<String> = parse(&resp.body).map_err(query_err)?;
        for k in keys {
            println!("{k}");
        }
        return Ok(());
    }
    if recurse {
        let resp = client
            .send(
                Method::GET,
                &kv_path(&key),
                &[("recurse", String::new())],
                None,
            )
            .await
            .map_err(query_err)?;
        let entries: Vec<KvEntry> = if resp.status == StatusCode::NOT_FOUND {
            Vec::new()
        } else {
            parse(&resp.body).map_err(query_err)?
        };
        let blocks: Vec<String> = entries
            .iter()
            .map(|e| {
                if on(a.detailed) {
                    detailed(e, on(a.base64), !keys)
                } else {
                    format!("{}:{}", e.key, render_value(&e.value, on(a.base64)))
                }
            })
            .collect();
        if !blocks.is_empty() {
            println!(
                "{}",
                blocks.join(if on(a.detailed) { "\n\n" } else { "\n" })
            );
        }
        return Ok(());
    }
    let resp = client
        .send(Method::GET, &kv_path(&key), &[], None)
        .await
        .map_err(query_err)?;
    if resp.status == StatusCode::NOT_FOUND {
        return Err(format!("Error! No key exists at: {key}"));
    }
    let entries: Vec<KvEntry> = parse(&resp.body).map_err(query_err)?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or_else(|| format!("Error! No key exists at: {key}"))?;
    if on(a.detailed) {
        println!("{}", detailed(&entry, on(a.base64), true));
    } else {
        println!("{}", render_value(&entry.value, on(a.base64)));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("cannot decode response: {e}"))
}

async fn put(a: PutArgs) -> Result<(), String> {
    super::no_undefined_flag(&a.args)?;
    let (key, data) = match a.args.as_slice() {
        [] => return Err("Error! Missing KEY argument".into()),
        [key] => (key.clone(), Vec::new()),
        [key, data] => (
            key.clone(),
            read_data(data).map_err(|e| format!("Error! {e}"))?,
        ),
        more => {
            return Err(format!(
                "Error! Too many arguments (expected 1 or 2, got {})",
                more.len()
            ))
        }
    };
    if key.starts_with('/') {
        return Err(format!(
            "Error! Failed writing data: Invalid key. Key must not begin with a '/': {key}"
        ));
    }
    let value = if on(a.base64) {
        base64::engine::general_purpose::STANDARD
            .decode(String::from_utf8_lossy(&data).trim())
            .map_err(|e| format!("Error! Cannot base 64 decode data: {e}"))?
    } else {
        data
    };
    let (acquire, release) = (on(a.acquire), on(a.release));
    if (acquire || release) && a.session.is_none() {
        return Err("Error! Missing -session (required with -acquire and -release)".into());
    }
    let client = connect(&a.http)?;
    let mut query = Vec::new();
    if a.flags != 0 {
        query.push(("flags", a.flags.to_string()));
    }
    let session = a.session.clone().unwrap_or_default();
    if a.check_and_set.on() {
        query.extend(a.check_and_set.query());
    } else if acquire {
        query.push(("acquire", session));
    } else if release {
        query.push(("release", session));
    }
    let resp = client
        .ok(Method::PUT, &kv_path(&key), &query, Some(value))
        .await
        .map_err(|e| format!("Error! Failed writing data: {e}"))?;
    let ok = String::from_utf8_lossy(&resp.body).contains("true");
    match (ok, a.check_and_set.on(), acquire, release) {
        (true, _, true, _) => println!("Success! Lock acquired on: {key}"),
        (true, _, _, true) => println!("Success! Lock released on: {key}"),
        (true, _, _, _) => println!("Success! Data written to: {key}"),
        (false, true, _, _) if a.check_and_set.modify_index == 0 => {
            return Err(format!(
                "Error! Did not write to {key}: CAS performed with index=0 and key already exists."
            ))
        }
        (false, true, _, _) => return Err(format!("Error! Did not write to {key}: CAS failed")),
        (false, _, true, _) => return Err("Error! Did not acquire lock".into()),
        (false, _, _, true) => return Err("Error! Did not release lock".into()),
        (false, _, _, _) => return Err(format!("Error! Did not write to {key}")),
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> Result<(), String> {
    let (cas, recurse) = (a.check_and_set.on(), on(a.recurse));
    let key = one_key(&a.args, !recurse)?;
    let key = key.strip_prefix('/').unwrap_or(&key).to_string();
    if cas && a.check_and_set.modify_index == 0 {
        return Err(
            "Cannot delete a key that does not exist. Provide a -modify-index greater than than 0."
                .into(),
        );
    }
    if a.check_and_set.modify_index != 0 && !cas {
        return Err("Cannot specify -modify-index without -cas!".into());
    }
    if cas && recurse {
        return Err("Cannot specify both -cas and -recurse!".into());
    }
    let client = connect(&a.http)?;
    if recurse {
        client
            .ok(
                Method::DELETE,
                &kv_path(&key),
                &[("recurse", String::new())],
                None,
            )
            .await
            .map_err(|e| format!("Error! Did not delete prefix {key}: {e}"))?;
        println!("Success! Deleted keys with prefix: {key}");
        return Ok(());
    }
    let resp = client
        .ok(
            Method::DELETE,
            &kv_path(&key),
            &a.check_and_set.query(),
            None,
        )
        .await
        .map_err(|e| format!("Error! Did not delete key {key}: {e}"))?;
    if cas && !String::from_utf8_lossy(&resp.body).contains("true") {
        return Err(format!("Error! Did not delete key {key}: CAS failed"));
    }
    println!("Success! Deleted key: {key}");
    Ok(())
}

async fn export(a: ExportArgs) -> Result<(), String> {
    let prefix = one_key(&a.args, false)?;
    let client = connect(&a.http)?;
    let resp = client
        .send(
            Method::GET,
            &kv_path(&prefix),
            &[("recurse", String::new())],
            None,
        )
        .await
        .map_err(|e| format!("Error querying Consul agent: {e}"))?;
    let entries: Vec<KvEntry> = if resp.status == StatusCode::NOT_FOUND {
        Vec::new()
    } else {
        parse(&resp.body)?
    };
    let exported: Vec<ExportedEntry> = entries
        .into_iter()
        .map(|e| ExportedEntry {
            key: e.key,
            flags: e.flags,
            value: base64::engine::general_purpose::STANDARD.encode(&e.value),
        })
        .collect();
    println!("{}", indented_json(&exported, b"\t")?);
    Ok(())
}

async fn import(a: ImportArgs) -> Result<(), String> {
    super::no_undefined_flag(&a.args)?;
    let data = match a.args.as_slice() {
        [] => return Err("Error! Missing DATA argument".into()),
        [data] => read_data(data).map_err(|e| format!("Error! {e}"))?,
        more => {
            return Err(format!(
                "Error! Too many arguments (expected 1, got {})",
                more.len()
            ))
        }
    };
    if data.is_empty() {
        return Err("Error! Empty DATA argument".into());
    }
    let entries: Vec<ExportedEntry> =
        serde_json::from_slice(&data).map_err(|e| format!("Cannot unmarshal data: {e}"))?;
    let client = connect(&a.http)?;
    for entry in entries {
        let value = base64::engine::general_purpose::STANDARD
            .decode(&entry.value)
            .map_err(|e| format!("Error base 64 decoding value for key {}: {e}", entry.key))?;
        let key = join_prefix(&a.prefix, &entry.key);
        let query = if entry.flags != 0 {
            vec![("flags", entry.flags.to_string())]
        } else {
            Vec::new()
        };
        client
            .ok(Method::PUT, &kv_path(&key), &query, Some(value))
            .await
            .map_err(|e| format!("Error! Failed writing data for key {key}: {e}"))?;
        println!("Imported: {key}");
    }
    Ok(())
}

/// Go's `path.Join(prefix, key)`, keeping a trailing `/` of the key.
fn join_prefix(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        return key.to_string();
    }
    let joined = format!(
        "{}/{}",
        prefix.trim_end_matches('/'),
        key.trim_start_matches('/')
    );
    let joined = joined.trim_end_matches('/').to_string();
    if key.ends_with('/') {
        format!("{joined}/")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_join_keeps_directories() {
        assert_eq!(join_prefix("", "a/b"), "a/b");
        assert_eq!(join_prefix("p", "a/b"), "p/a/b");
        assert_eq!(join_prefix("p/", "dir/"), "p/dir/");
    }

    #[test]
    fn detailed_output_aligns_like_consul() {
        let e = KvEntry {
            lock_index: 0,
            key: "foo".into(),
            flags: 0,
            value: b"bar".to_vec(),
            session: String::new(),
            create_index: 5,
            modify_index: 5,
        };
        assert_eq!(
            detailed(&e, false, true),
            "CreateIndex      5\nFlags            0\nKey              foo\nLockIndex        0\nModifyIndex      5\nSession          -\nValue            bar"
        );
    }
}
