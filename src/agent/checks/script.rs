//! Script checks: run `args` (no shell), map the exit code (0 passing, 1 warning, anything else
//! critical) and report the combined stdout+stderr, keeping its last bytes.
//!
//! The child runs in its own process group with stdin on `/dev/null` and stdout and stderr
//! on one pipe (so their interleaving is kept). The run — process exit *and* the end of its
//! output — is bounded by the timeout; on expiry the whole process group is killed. If the
//! runner itself is cancelled mid-run, the group is killed too.

use super::output::TailBuffer;
use super::{error_text, CheckStatus, Outcome};
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

/// Kills a process group when dropped while armed.
struct GroupKiller {
    pgid: Option<libc::pid_t>,
}

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses the
            // process group we created for the child (its leader has not been reaped yet, so
            // the id cannot have been reused).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Go's wording for a failure to start `program`.
fn spawn_error_text(program: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
        format!("exec: {program:?}: executable file not found in $PATH")
    } else {
        format!("fork/exec {program}: {}", error_text(e))
    }
}

fn classify(status: ExitStatus) -> CheckStatus {
    match status.code() {
        Some(0) => CheckStatus::Passing,
        Some(1) => CheckStatus::Warning,
        _ => CheckStatus::Critical,
    }
}

/// Runs one script check. Set-up failures and timeouts are `Outcome::Direct` (Consul reports
/// them without going through the status thresholds); exit-code results are `Outcome::Probe`.
pub(crate) async fn run(args: &[String], timeout: Duration, max_output: usize) -> Outcome {
    let Some(program) = args.first() else {
        return Outcome::Direct(
            CheckStatus::Critical,
            "no script arguments to run".to_string(),
        );
    };

    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => return Outcome::Direct(CheckStatus::Critical, error_text(&e)),
    };
    let writer_for_stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return Outcome::Direct(CheckStatus::Critical, error_text(&e)),
    };

    let mut command = Command::new(program);
    command
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = command.spawn();
    // The command holds our copies of the pipe's write end: close them, or the read side
    // would never see end-of-file.
    drop(command);
    let mut child: Child = match spawned {
        Ok(child) => child,
        Err(e) => return Outcome::Direct(CheckStatus::Critical, spawn_error_text(program, &e)),
    };
    let mut killer = GroupKiller {
        pgid: child.id().map(|id| id as libc::pid_t),
    };

    let mut receiver = match pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(r) => r,
        Err(e) => {
            killer.kill();
            let _ = child.wait().await;
            return Outcome::Direct(CheckStatus::Critical, error_text(&e));
        }
    };

    let mut output = TailBuffer::new(max_output);
    let finished = {
        let output = &mut output;
        let child = &mut child;
        let work = async move {
            let mut chunk = vec![0u8; 8192];
            loop {
                match receiver.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => output.write(&chunk[..n]),
                }
            }
            child.wait().await
        };
        tokio::time::timeout(timeout, work).await
    };

    match finished {
        Ok(Ok(status)) => {
            killer.disarm();
            Outcome::Probe(classify(status), output.text_with_capture_note())
        }
        Ok(Err(e)) => {
            killer.kill();
            let _ = child.wait().await;
            Outcome::Direct(CheckStatus::Critical, error_text(&e))
        }
        Err(_) => {
            killer.kill();
            let _ = child.start_kill();
            let mut message = format!(
                "Timed out ({}) running check",
                crate::duration::format(timeout)
            );
            tracing::warn!(program = %program, "{message}");
            let captured = output.text_with_capture_note();
            if !captured.is_empty() {
                message.push_str("\n\n");
                message.push_str(&captured);
            }
            // Reap the killed child so the next run never overlaps with it.
            let _ = child.wait().await;
            Outcome::Direct(CheckStatus::Critical, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".to_string(), "-c".to_string(), script.to_string()]
    }

    async fn run_sh(script: &str) -> Outcome {
        run(&sh(script), Duration::from_secs(5), 4096).await
    }

    #[tokio::test]
    async fn exit_codes_map_to_statuses() {
        assert_eq!(
            run_sh("echo hello; exit 0").await,
            Outcome::Probe(CheckStatus::Passing, "hello\n".to_string())
        );
        assert_eq!(
            run_sh("echo meh; exit 1").await,
            Outcome::Probe(CheckStatus::Warning, "meh\n".to_string())
        );
        assert_eq!(
            run_sh("echo bad; exit 2").await,
            Outcome::Probe(CheckStatus::Critical, "bad\n".to_string())
        );
        assert_eq!(
            run_sh("kill -9 $$").await,
            Outcome::Probe(CheckStatus::Critical, String::new())
        );
    }

    #[tokio::test]
    async fn stdout_and_stderr_are_combined_in_order() {
        assert_eq!(
            run_sh("echo one; echo two >&2; echo three").await,
            Outcome::Probe(CheckStatus::Passing, "one\ntwo\nthree\n".to_string())
        );
    }

    #[tokio::test]
    async fn runs_args_without_a_shell() {
        let args = vec!["echo".to_string(), "$HOME; exit 3".to_string()];
        assert_eq!(
            run(&args, Duration::from_secs(5), 4096).await,
            Outcome::Probe(CheckStatus::Passing, "$HOME; exit 3\n".to_string())
        );
    }

    #[tokio::test]
    async fn long_output_keeps_the_tail_with_a_note() {
        // 26 * 400 = 10400 bytes, ending in "...xyz".
        let script =
            "i=0; while [ $i -lt 400 ]; do printf abcdefghijklmnopqrstuvwxyz; i=$((i+1)); done";
        let Outcome::Probe(status, output) = run(&sh(script), Duration::from_secs(5), 100).await
        else {
            panic!("expected a probe result");
        };
        assert_eq!(status, CheckStatus::Passing);
        let expected_tail: String = "abcdefghijklmnopqrstuvwxyz".repeat(4)[4..].to_string();
        assert_eq!(
            output,
            format!("Captured 100 of 10400 bytes\n...\n{expected_tail}")
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let started = Instant::now();
        // The background sleep keeps the output pipe open: only a group kill ends it.
        let outcome = run(
            &sh("echo started; sleep 5 & sleep 5"),
            Duration::from_millis(300),
            4096,
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(
            outcome,
            Outcome::Direct(
                CheckStatus::Critical,
                "Timed out (300ms) running check\n\nstarted\n".to_string()
            )
        );
        let silent = run(&sh("sleep 5"), Duration::from_millis(200), 4096).await;
        assert_eq!(
            silent,
            Outcome::Direct(
                CheckStatus::Critical,
                "Timed out (200ms) running check".to_string()
            )
        );
    }

    #[tokio::test]
    async fn missing_programs_are_critical() {
        for (program, message) in [
            (
                "no-such-program-xyz",
                "exec: \"no-such-program-xyz\": executable file not found in $PATH",
            ),
            (
                "/no/such/program",
                "fork/exec /no/such/program: no such file or directory",
            ),
        ] {
            let outcome = run(&[program.to_string()], Duration::from_secs(1), 4096).await;
            assert_eq!(
                outcome,
                Outcome::Direct(CheckStatus::Critical, message.to_string())
            );
        }
        let outcome = run(&[], Duration::from_secs(1), 4096).await;
        assert!(matches!(outcome, Outcome::Direct(CheckStatus::Critical, _)));
    }
}
