//! What the agent's watches run on a change (Consul's `agent/watch_handler.go`): a program
//! (`args`), a shell line (the legacy `handler`) or an HTTP request, each given the result as
//! JSON and the index in `CONSUL_INDEX` / `X-Consul-Index`. Output is logged, its last 4 KiB.

use super::plan::{Next, OnChange};
use super::spec::{Handler, HttpHandler};
use crate::agent::checks::output::{TailBuffer, DEFAULT_OUTPUT_MAX_SIZE};
use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `script` run by the user's shell (`$SHELL`, else /bin/sh), as Consul's `exec.Script`.
pub fn shell_command(script: &str) -> tokio::process::Command {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut command = tokio::process::Command::new(shell);
    command.arg("-c").arg(script);
    command
}

/// `args` run directly (the first is the program); `None` when there is none.
pub fn handler_command(args: &[String]) -> Option<tokio::process::Command> {
    let (program, rest) = args.split_first()?;
    let mut command = tokio::process::Command::new(program);
    command.args(rest);
    Some(command)
}

/// The JSON a handler receives: Go's `json.Encoder` output, a line.
pub fn handler_input(data: &Value) -> Vec<u8> {
    let mut input = serde_json::to_vec(data).unwrap_or_default();
    input.push(b'\n');
    input
}

/// An agent-config watch's handler.
pub struct AgentHandler {
    handler: Handler,
    http: Option<reqwest::Client>,
}

impl AgentHandler {
    pub fn new(handler: Handler) -> AgentHandler {
        let http = match &handler {
            Handler::Http(config) => reqwest::Client::builder()
                .danger_accept_invalid_certs(config.tls_skip_verify)
                .timeout(config.timeout)
                .build()
                .map_err(|e| tracing::error!(error = %e, "Failed to setup http watch"))
                .ok(),
            _ => None,
        };
        AgentHandler { handler, http }
    }
}

impl OnChange for AgentHandler {
    async fn changed(&mut self, index: u64, data: &Value) -> Next {
        let input = handler_input(data);
        match &self.handler {
            Handler::Shell(script) => {
                run_program(shell_command(script), script, index, input).await
            }
            Handler::Args(args) => match handler_command(args) {
                Some(command) => run_program(command, &args.join(" "), index, input).await,
                None => tracing::error!("Failed to setup watch: no arguments to run"),
            },
            Handler::Http(config) => {
                if let Some(http) = &self.http {
                    post(http, config, index, input).await;
                }
            }
        }
        Next::Continue
    }
}

async fn run_program(mut command: tokio::process::Command, name: &str, index: u64, input: Vec<u8>) {
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => return tracing::error!(error = %e, "Failed to setup watch"),
    };
    let Ok(writer_for_stderr) = writer.try_clone() else {
        return tracing::error!("Failed to setup watch: cannot share the output pipe");
    };
    command
        .env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .kill_on_drop(true);
    let spawned = command.spawn();
    // The command holds our copies of the pipe's write end: close them, or reading would
    // never see end-of-file.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return tracing::error!(watch_handler = name, error = %e, "Failed to run watch handler")
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut output = TailBuffer::new(DEFAULT_OUTPUT_MAX_SIZE);
    if let Ok(mut receiver) =
        tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
    {
        let mut chunk = vec![0u8; 8192];
        while let Ok(n) = receiver.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            output.write(&chunk[..n]);
        }
    }
    match child.wait().await {
        Ok(status) if status.success() => {}
        Ok(status) => {
            tracing::error!(watch_handler = name, error = %status, "Failed to run watch handler")
        }
        Err(e) => tracing::error!(watch_handler = name, error = %e, "Failed to run watch handler"),
    }
    tracing::debug!(
        watch_handler = name,
        output = %output.text_with_capture_note(),
        "watch handler output"
    );
}

async fn post(http: &reqwest::Client, config: &HttpHandler, index: u64, input: Vec<u8>) {
    let method = match reqwest::Method::from_bytes(config.method.as_bytes()) {
        Ok(m) => m,
        Err(e) => return tracing::error!(error = %e, "Failed to setup http watch"),
    };
    let mut request = http
        .request(method, &config.path)
        .header("Content-Type", "application/json")
        .header("X-Consul-Index", index.to_string());
    for (name, value) in &config.header {
        request = request.header(name, value);
    }
    let response = match request.body(input).send().await {
        Ok(r) => r,
        Err(e) => {
            return tracing::error!(watch = %config.path, error = %e, "Failed to invoke http watch handler")
        }
    };
    let status = response.status();
    let mut output = TailBuffer::new(DEFAULT_OUTPUT_MAX_SIZE);
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        output.write(&chunk);
    }
    let output = output.text_with_capture_note();
    if status.is_success() {
        tracing::trace!(watch = %config.path, %output, "http watch handler output");
    } else {
        tracing::error!(watch = %config.path, %status, %output, "http watch handler failed with output");
    }
}
