//! `legate monitor`, as `consul monitor`: streams the agent's log lines until interrupted.

use super::client::{connect, HttpFlags};

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// The lowest level of the lines to show.
    #[arg(long = "log-level", default_value = "INFO")]
    log_level: String,
    /// The lines as JSON.
    #[arg(long = "log-json", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    log_json: bool,
}

pub async fn run(a: MonitorArgs) -> i32 {
    super::client::exit_code(monitor(a).await)
}

async fn monitor(a: MonitorArgs) -> Result<(), String> {
    let client = connect(&a.http)?;
    let mut query = vec![("loglevel", a.log_level.clone())];
    if a.log_json {
        query.push(("logjson", String::new()));
    }
    let mut response = client
        .stream("/v1/agent/monitor", &query)
        .await
        .map_err(|e| format!("Error starting monitor: {e}"))?;
    let mut pending = Vec::new();
    let ended = loop {
        tokio::select! {
            chunk = response.chunk() => match chunk {
                Ok(Some(bytes)) => {
                    pending.extend_from_slice(&bytes);
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        println!("{}", String::from_utf8_lossy(&line[..end]));
                    }
                }
                Ok(None) | Err(_) => break true,
            },
            _ = tokio::signal::ctrl_c() => break false,
        }
    };
    if ended {
        return Err("Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.".into());
    }
    Ok(())
}
