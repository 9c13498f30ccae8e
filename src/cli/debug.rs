//! `legate debug`, as `consul debug`: captures the agent's state (self, members, host) and,
//! over `-duration`, its metrics every `-interval` and its logs, into a directory archived as
//! a `.tar.gz` (consul's layout: one top directory named after the output).

use super::client::{connect, indented_json, Client, HttpFlags};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What `-capture` may name (consul's targets but `pprof`, which has no Legate equivalent).
const TARGETS: &[&str] = &["metrics", "logs", "host", "agent", "members"];
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MIN_DURATION: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct DebugArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// How often metrics are captured.
    #[arg(long, default_value = "30s")]
    interval: String,
    /// How long to capture metrics and logs.
    #[arg(long, default_value = "2m")]
    duration: String,
    /// What to capture (repeatable): metrics, logs, host, agent, members; all by default.
    #[arg(long, action = clap::ArgAction::Append)]
    capture: Vec<String>,
    /// The output directory (and archive name); consul-debug-<unix time> by default.
    #[arg(long, default_value = "")]
    output: String,
    /// Archive the directory as <output>.tar.gz (and remove it).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    archive: bool,
}

pub async fn run(a: DebugArgs) -> i32 {
    super::client::exit_code(debug(a).await)
}

fn has(targets: &[String], target: &str) -> bool {
    targets.iter().any(|t| t == target)
}

async fn debug(a: DebugArgs) -> Result<(), String> {
    let invalid = |e: String| format!("Invalid flags: {e}");
    let interval = crate::duration::parse(&a.interval).map_err(invalid)?;
    let duration = crate::duration::parse(&a.duration).map_err(invalid)?;
    if duration < interval {
        return Err(invalid("duration must be longer than interval".into()));
    }
    if interval < MIN_INTERVAL {
        return Err(invalid(format!(
            "interval must be longer than {}",
            crate::duration::format(MIN_INTERVAL)
        )));
    }
    if duration < MIN_DURATION {
        return Err(invalid(format!(
            "duration must be longer than {}",
            crate::duration::format(MIN_DURATION)
        )));
    }
    let targets: Vec<String> = if a.capture.is_empty() {
        TARGETS.iter().map(|t| t.to_string()).collect()
    } else {
        a.capture.clone()
    };
    if let Some(unknown) = targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        return Err(invalid(format!("target not found: {unknown}")));
    }
    let output = if a.output.is_empty() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        PathBuf::from(format!("consul-debug-{}", now.as_secs()))
    } else {
        PathBuf::from(&a.output)
    };
    if output.exists() {
        return Err(format!(
            "Output directory already exists: {}",
            output.display()
        ));
    }

    let client = connect(&a.http)?;
    let me = client
        .ok(Method::GET, "/v1/agent/self", &[], None)
        .await
        .map_err(|e| {
            format!("Error querying target agent: {e}. Verify connectivity and agent address.")
        })?;
    let me: Value = super::client::decode(&me.body)?;
    let version = me["Config"]["Version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    std::fs::create_dir_all(&output)
        .map_err(|e| format!("Could not create output directory: {e}"))?;
    let archive_name = format!("{}.tar.gz", output.display());
    println!("==> Starting debugger and capturing static information...");
    println!("     Agent Version: '{version}'");
    println!(
        "          Interval: '{}'",
        crate::duration::format(interval)
    );
    println!(
        "          Duration: '{}'",
        crate::duration::format(duration)
    );
    println!(
        "            Output: '{}'",
        if a.archive {
            archive_name.clone()
        } else {
            output.display().to_string()
        }
    );
    println!("           Capture: '{}'", targets.join(", "));

    write_json(
        &output.join("index.json"),
        &json!({
            "Version": 2,
            "AgentVersion": version,
            "Interval": crate::duration::format(interval),
            "Duration": crate::duration::format(duration),
            "Targets": targets,
        }),
    )?;
    if has(&targets, "agent") {
        write_json(&output.join("agent.json"), &me)?;
    }
    for (target, path) in [("members", "/v1/agent/members"), ("host", "/v1/agent/host")] {
        if has(&targets, target) {
            match get_json(&client, path).await {
                Ok(value) => write_json(&output.join(format!("{target}.json")), &value)?,
                Err(e) => eprintln!("Error capturing {target}: {e}"),
            }
        }
    }

    println!(
        "==> Capturing metrics and logs for {}",
        crate::duration::format(duration)
    );
    let logs = has(&targets, "logs").then(|| {
        let client = client.clone();
        let file = output.join("consul.log");
        tokio::spawn(async move { capture_logs(&client, &file).await })
    });
    let deadline = tokio::time::Instant::now() + duration;
    if has(&targets, "metrics") {
        let mut metrics = std::fs::File::create(output.join("metrics.json"))
            .map_err(|e| format!("Error creating metrics file: {e}"))?;
        let mut ticks = tokio::time::interval(interval);
        while tokio::time::Instant::now() < deadline {
            tokio::select! {
                _ = ticks.tick() => {
                    match get_json(&client, "/v1/agent/metrics").await {
                        Ok(sample) => writeln!(metrics, "{}", indented_json(&sample, b"\t")?)
                            .map_err(|e| format!("Error writing metrics: {e}"))?,
                        Err(e) => eprintln!("Error capturing metrics: {e}"),
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    } else {
        tokio::time::sleep_until(deadline).await;
    }
    if let Some(logs) = logs {
        logs.abort();
        if let Ok(Err(e)) = logs.await {
            eprintln!("Error capturing logs: {e}");
        }
    }

    if !a.archive {
        println!("Saved debug directory: {}", output.display());
        return Ok(());
    }
    archive(&output, Path::new(&archive_name))
        .map_err(|e| format!("Error creating archive: {e}"))?;
    std::fs::remove_dir_all(&output)
        .map_err(|e| format!("Error removing output directory: {e}"))?;
    println!("Saved debug archive: {archive_name}");
    Ok(())
}

async fn get_json(client: &Client, path: &str) -> Result<Value, String> {
    let resp = client.ok(Method::GET, path, &[], None).await?;
    super::client::decode(&resp.body)
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    std::fs::write(path, indented_json(value, b"\t")?)
        .map_err(|e| format!("Error writing {}: {e}", path.display()))
}

/// Appends the agent's log lines (all levels) to `file` until aborted.
async fn capture_logs(client: &Client, file: &Path) -> Result<(), String> {
    let mut out = std::fs::File::create(file).map_err(|e| e.to_string())?;
    let mut response = client
        .stream("/v1/agent/monitor", &[("loglevel", "TRACE".into())])
        .await?;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        out.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `dir` as a gzip-compressed tar whose entries sit under the directory's own name.
fn archive(dir: &Path, file: &Path) -> std::io::Result<()> {
    let encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(file)?, flate2::Compression::default());
    let mut tar = tar::Builder::new(encoder);
    let name = dir.file_name().unwrap_or(dir.as_os_str());
    tar.append_dir_all(name, dir)?;
    tar.into_inner()?.finish()?.sync_all()
}
