//! `legate snapshot save|restore|inspect FILE`, as `consul snapshot`: same arguments, output and
//! exit codes. `save` and `restore` also work offline with `-data-dir DIR`, on the data dir of a
//! stopped agent (refused while an agent holds it). The archive has Consul's container layout
//! around Legate's own state (see `store::snapshot`): Consul's snapshots are refused here, and
//! Consul cannot restore ours. Files are streamed, never read whole into memory.

use super::client::{connect, HttpFlags};
use crate::store::snapshot::{self, Archive, Metadata};
use crate::store::StoreError;
use reqwest::Method;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Saves a point-in-time snapshot of the agent's state to FILE.
    Save(SaveArgs),
    /// Restores the agent's state from a snapshot FILE.
    Restore(RestoreArgs),
    /// Displays information about a snapshot FILE.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Offline: read the data dir of a stopped agent instead of asking a running one.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Offline: restore into the data dir of a stopped agent instead of a running one.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Output format: pretty or json.
    #[arg(long, default_value = "pretty")]
    format: String,
    /// Adds a breakdown of the KV data by key prefix.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    kvdetails: Option<bool>,
    /// With -kvdetails: how many key segments make a prefix.
    #[arg(long, default_value_t = 2)]
    kvdepth: usize,
    /// With -kvdetails: only keys starting with this.
    #[arg(long, default_value = "")]
    kvfilter: String,
    args: Vec<String>,
}

pub async fn run(command: SnapshotCommand) -> i32 {
    let result = match command {
        SnapshotCommand::Save(a) => save(a).await,
        SnapshotCommand::Restore(a) => restore(a).await,
        SnapshotCommand::Inspect(a) => inspect(a).await,
    };
    super::client::exit_code(result.map(|out| {
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(std::io::stdout(), "{out}");
    }))
}

fn one_file(args: &[String]) -> Result<&str, String> {
    match args {
        [] => Err("Missing FILE argument".into()),
        [file] => Ok(file),
        more => Err(format!(
            "Too many arguments (expected 1, got {})",
            more.len()
        )),
    }
}

/// A store error as the user should read it, with the way out of a locked data dir.
fn store_error(err: StoreError, online_hint: &str) -> String {
    match err {
        StoreError::Locked(dir) => format!(
            "data directory {dir} is in use by a running agent; stop it first, or {online_hint} \
             (without -data-dir)"
        ),
        StoreError::Invalid(message) => message,
        other => other.to_string(),
    }
}

/// Creates (or truncates) `path` with mode 0600: a snapshot holds secrets.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

async fn save(a: SaveArgs) -> Result<String, String> {
    let file = one_file(&a.args)?;
    let unverified = format!("{file}.unverified");
    let result = save_to(&a, file, &unverified).await;
    let _ = std::fs::remove_file(&unverified);
    result
}

async fn save_to(a: &SaveArgs, file: &str, unverified: &str) -> Result<String, String> {
    let write_error = |e: std::io::Error| format!("Error writing unverified snapshot file: {e}");
    match &a.data_dir {
        Some(dir) => {
            let out = create_private(Path::new(unverified)).map_err(write_error)?;
            let dir = dir.clone();
            let mut out = std::io::BufWriter::new(out);
            let saved = tokio::task::spawn_blocking(move || {
                let meta = snapshot::save_offline(&dir, &mut out)?;
                out.flush()
                    .and_then(|()| out.get_ref().sync_all())
                    .map_err(StoreError::storage)?;
                Ok::<_, StoreError>(meta)
            })
            .await
            .map_err(|e| format!("Error saving snapshot: {e}"))?;
            saved.map_err(|e| {
                format!(
                    "Error saving snapshot: {}",
                    store_error(e, "save from the running agent")
                )
            })?;
        }
        None => {
            let client = connect(&a.http)?;
            let query = if a.http.stale.unwrap_or(false) {
                vec![("stale", String::new())]
            } else {
                Vec::new()
            };
            let out = create_private(Path::new(unverified)).map_err(write_error)?;
            let mut out = std::io::BufWriter::new(out);
            client
                .download("/v1/snapshot", &query, &mut out)
                .await
                .map_err(|e| format!("Error saving snapshot: {e}"))?;
            out.flush()
                .and_then(|()| out.get_ref().sync_all())
                .map_err(write_error)?;
        }
    }
    // Read it back to verify, as consul does, before it takes the real name.
    let archive = open_archive(
        unverified,
        "Error opening snapshot file for verify",
        "Error verifying snapshot file",
    )
    .await?;
    std::fs::rename(unverified, file)
        .map_err(|e| format!("Error renaming {unverified:?} to {file:?}: {e}"))?;
    Ok(format!(
        "Saved and verified snapshot to index {}",
        archive.meta.index
    ))
}

/// Reads and verifies the archive at `path`, streamed into a temporary file (never whole in
/// memory; an endless input stops at its first bytes). Errors read as consul's: `opening` and
/// `reading` prefix a file that cannot be opened and one that is not a valid archive.
async fn open_archive(path: &str, opening: &str, reading: &str) -> Result<Archive, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{opening}: {e}"))?;
    let read = tokio::task::spawn_blocking(move || {
        snapshot::receive(std::io::BufReader::new(file), &std::env::temp_dir())
    })
    .await
    .map_err(|e| format!("{reading}: {e}"))?;
    read.map_err(|e| format!("{reading}: {}", store_error(e, "")))
}

async fn restore(a: RestoreArgs) -> Result<String, String> {
    let file = one_file(&a.args)?;
    let restore_error = |e: String| format!("Error restoring snapshot: {e}");
    match &a.data_dir {
        Some(dir) => {
            let archive = open_archive(
                file,
                "Error opening snapshot file",
                "Error restoring snapshot",
            )
            .await?;
            let archive = tokio::task::spawn_blocking(move || snapshot::load(archive))
                .await
                .map_err(|e| restore_error(e.to_string()))?
                .map_err(|e| restore_error(store_error(e, "")))?;
            snapshot::restore_offline(dir, archive)
                .await
                .map_err(|e| restore_error(store_error(e, "restore into the running agent")))?;
        }
        None => {
            let client = connect(&a.http)?;
            let body = tokio::fs::File::open(file)
                .await
                .map_err(|e| format!("Error opening snapshot file: {e}"))?;
            client
                .upload(Method::PUT, "/v1/snapshot", body.into())
                .await
                .map_err(restore_error)?;
        }
    }
    Ok("Restored snapshot".into())
}

/// One row of `inspect`'s tables.
struct Stat {
    name: String,
    count: u64,
    sum: u64,
}

/// Largest first, then by name (consul's order).
fn sorted(stats: BTreeMap<String, (u64, u64)>) -> Vec<Stat> {
    let mut out: Vec<Stat> = stats
        .into_iter()
        .map(|(name, (count, sum))| Stat { name, count, sum })
        .collect();
    out.sort_by(|a, b| b.sum.cmp(&a.sum).then_with(|| a.name.cmp(&b.name)));
    out
}

async fn inspect(a: InspectArgs) -> Result<String, String> {
    let file = one_file(&a.args)?;
    if a.format != "pretty" && a.format != "json" {
        return Err(format!(
            "Error outputting enhanced snapshot data: Unknown format: {}",
            a.format
        ));
    }
    let archive = open_archive(
        file,
        "Error opening snapshot file",
        "Error reading snapshot",
    )
    .await?;
    let mut tables: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut kv: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut total, mut total_kv) = (0u64, 0u64);
    let kvdetails = a.kvdetails.unwrap_or(false);
    for record in archive.records() {
        let (table, key, value) =
            record.map_err(|e| format!("Error extracting snapshot data: {e}"))?;
        let size = Archive::record_size(&key, &value);
        let entry = tables.entry(table.to_string()).or_default();
        entry.0 += 1;
        entry.1 += size;
        total += size;
        if kvdetails && table == crate::store::tables::KV.name && key.starts_with(&a.kvfilter) {
            let segments: Vec<&str> = key.split('/').collect();
            let prefix = segments[..a.kvdepth.min(segments.len())].join("/");
            let entry = kv.entry(prefix).or_default();
            entry.0 += 1;
            entry.1 += size;
            total_kv += size;
        }
    }
    let stats = sorted(tables);
    let kv_stats = kvdetails.then(|| sorted(kv));
    if a.format == "json" {
        return Ok(json(&archive, &stats, kv_stats.as_deref(), total, total_kv));
    }
    Ok(pretty(
        &archive.meta,
        archive.size(),
        &stats,
        kv_stats.as_deref(),
        total,
        total_kv,
    ))
}

fn json(
    archive: &Archive,
    stats: &[Stat],
    kv_stats: Option<&[Stat]>,
    total: u64,
    total_kv: u64,
) -> String {
    let rows = |stats: &[Stat]| -> serde_json::Value {
        stats
            .iter()
            .map(|s| serde_json::json!({"Name": s.name, "Sum": s.sum, "Count": s.count}))
            .collect()
    };
    let meta = &archive.meta;
    let value = serde_json::json!({
        "Meta": {
            "ID": meta.id(),
            "Size": archive.size(),
            "Index": meta.index,
            "Term": 1,
            "Version": meta.format,
        },
        "Stats": rows(stats),
        "StatsKV": kv_stats.map(rows),
        "TotalSize": total,
        "TotalSizeKV": total_kv,
        "Legate": meta,
    });
    super::client::indented_json(&value, b"   ").expect("a JSON value always serializes")
}

fn pretty(
    meta: &Metadata,
    size: u64,
    stats: &[Stat],
    kv_stats: Option<&[Stat]>,
    total: u64,
    total_kv: u64,
) -> String {
    let cells = |row: &[&str]| row.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut lines = vec![
        cells(&[" ID", &meta.id()]),
        cells(&[" Size", &size.to_string()]),
        cells(&[" Index", &meta.index.to_string()]),
        cells(&[" Term", "1"]),
        cells(&[" Version", &meta.format.to_string()]),
        cells(&[""]),
    ];
    table(&mut lines, " Type", stats, total);
    let mut out = tabwrite(&lines, 8, 6);
    if let Some(kv_stats) = kv_stats {
        let mut lines = vec![cells(&[""]), cells(&[""])];
        table(&mut lines, " Key Name", kv_stats, total_kv);
        out.push_str(&tabwrite(&lines, 30, 12));
    }
    out
}

/// The lines of a Type/Count/Size table, as consul writes them to its tabwriter.
fn table(lines: &mut Vec<Vec<String>>, title: &str, stats: &[Stat], total: u64) {
    let dashes = || vec![" ----".into(), "----".into(), "----".into(), String::new()];
    lines.push(vec![
        title.into(),
        "Count".into(),
        "Size".into(),
        String::new(),
    ]);
    lines.push(dashes());
    for s in stats {
        lines.push(vec![
            format!(" {}", s.name),
            s.count.to_string(),
            byte_size(s.sum),
            String::new(),
        ]);
    }
    lines.push(dashes());
    // The last line's final cell ends the output: it is not padded (Go's tabwriter at Flush).
    lines.push(vec![" Total".into(), String::new(), byte_size(total)]);
}

/// Go's `text/tabwriter` with left alignment and space padding, for lines given as cells: every
/// cell but a line's last was tab-terminated. Consecutive lines sharing a column form a block
/// padded to its widest cell plus `padding` (at least `min_width`). Lines are joined with
/// newlines; there is none after the last.
fn tabwrite(lines: &[Vec<String>], min_width: usize, padding: usize) -> String {
    fn width(s: &str) -> usize {
        s.chars().count()
    }
    fn write_lines(out: &mut Vec<String>, lines: &[Vec<String>], widths: &[usize]) {
        for line in lines {
            let mut text = String::new();
            for (j, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if j < widths.len() {
                    text.extend(std::iter::repeat_n(
                        ' ',
                        widths[j].saturating_sub(width(cell)),
                    ));
                }
            }
            out.push(text);
        }
    }
    fn format(
        out: &mut Vec<String>,
        lines: &[Vec<String>],
        widths: &mut Vec<usize>,
        min_width: usize,
        padding: usize,
    ) {
        let column = widths.len();
        let mut start = 0;
        let mut this = 0;
        while this < lines.len() {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            write_lines(out, &lines[start..this], widths);
            start = this;
            let mut w = min_width;
            while this < lines.len() && column + 1 < lines[this].len() {
                w = w.max(width(&lines[this][column]) + padding);
                this += 1;
            }
            widths.push(w);
            format(out, &lines[start..this], widths, min_width, padding);
            widths.pop();
            start = this;
        }
        write_lines(out, &lines[start..], widths);
    }
    let mut out = Vec::new();
    format(&mut out, lines, &mut Vec::new(), min_width, padding);
    out.join("\n")
}

/// consul's `ByteSize`: one decimal, without a trailing `.0`.
fn byte_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    if bytes == 0 {
        return "0".into();
    }
    let (value, unit) = UNITS
        .iter()
        .find(|(size, _)| bytes >= *size)
        .map(|(size, unit)| (bytes as f64 / *size as f64, *unit))
        .unwrap_or((bytes as f64, "B"));
    let text = format!("{value:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_read_as_consul_prints_them() {
        assert_eq!(byte_size(0), "0");
        assert_eq!(byte_size(313), "313B");
        assert_eq!(byte_size(1024), "1KB");
        assert_eq!(byte_size(1638), "1.6KB");
        assert_eq!(byte_size(5 * 1024 * 1024 + 1), "5MB");
    }

    /// The layout of consul's own `pretty.golden` for `snapshot inspect`.
    #[test]
    fn pretty_output_matches_consuls_layout() {
        let meta = Metadata {
            format: 1,
            schema_version: 5,
            index: 3,
            created_at: String::new(),
            created_at_ms: 0,
            node: String::new(),
            datacenter: String::new(),
            legate_version: String::new(),
            consul_version: String::new(),
            tables: Vec::new(),
            table_indexes: BTreeMap::new(),
        };
        let stats = [Stat {
            name: "msg".into(),
            count: 2,
            sum: 1,
        }];
        let out = pretty(&meta, 2, &stats, None, 1, 0);
        assert_eq!(
            out,
            " ID           1-3-0\n Size         2\n Index        3\n Term         1\n Version      1\n\n Type       Count      Size      \n ----       ----       ----      \n msg        2          1B        \n ----       ----       ----      \n Total                 1B"
        );
    }
}
