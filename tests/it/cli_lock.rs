//! `legate lock`: real `legate lock` processes against a running agent, their children
//! appending markers to a temp file.

use crate::common::TestAgent;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn lock_command(a: &TestAgent, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_legate"));
    cmd.arg("lock")
        .args(args)
        .env("CONSUL_HTTP_ADDR", a.base.trim_start_matches("http://"))
        .env_remove("CONSUL_HTTP_TOKEN")
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn finish(child: tokio::process::Child) -> Output {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("legate lock finishes")
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn lock(a: &TestAgent, args: &[&str]) -> Output {
    finish(lock_command(a, args).spawn().unwrap()).await
}

/// A child that appends `start N`, sleeps, then appends `end N` to `file`.
fn marker_child(file: &Path, n: usize, sleep: &str) -> String {
    let f = file.display();
    format!("echo start {n} >> {f}; sleep {sleep}; echo end {n} >> {f}")
}

/// The most children that were between their start and end markers at once; panics unless
/// every child left exactly one start and one end after it.
fn max_concurrency(file: &Path, children: usize) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let (mut inside, mut max) = (std::collections::HashSet::new(), 0);
    let mut ended = 0;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("start", n)) => assert!(inside.insert(n.to_string()), "{text}"),
            Some(("end", n)) => {
                assert!(inside.remove(n), "{text}");
                ended += 1;
            }
            _ => panic!("unexpected line {line:?} in\n{text}"),
        }
        max = max.max(inside.len());
    }
    assert_eq!(ended, children, "every child ran once:\n{text}");
    max
}

/// After a run: no session is left and the lock keys were cleaned up.
async fn assert_clean(a: &TestAgent, prefix: &str) {
    let (_, sessions) = a.get_json("/v1/session/list").await;
    assert_eq!(sessions, serde_json::json!([]), "sessions destroyed");
    let resp = a.get(&format!("/v1/kv/{prefix}?recurse")).await;
    assert_eq!(resp.status(), 404, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn holders_exclude_each_other() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markers");
    let children: Vec<_> = (0..3)
        .map(|n| {
            lock_command(&a, &["cli-lock/mutex", &marker_child(&file, n, "0.4")])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = finish(child).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(max_concurrency(&file, 3), 1, "the lock excludes");
    assert_clean(&a, "cli-lock/mutex").await;
}

#[tokio::test]
async fn a_semaphore_admits_n_holders() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("markers");
    let children: Vec<_> = (0..3)
        .map(|n| {
            lock_command(
                &a,
                &["-n", "2", "cli-lock/sem", &marker_child(&file, n, "1.5")],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    // While two hold it, the document lists two holders with the limit.
    let body = a
        .eventually("/v1/kv/cli-lock/sem/.lock?raw", |v| {
            v["Holders"].as_object().is_some_and(|h| h.len() == 2)
        })
        .await;
    assert_eq!(body["Limit"], 2);
    let (_, entry) = a.get_json("/v1/kv/cli-lock/sem/.lock").await;
    assert_eq!(entry[0]["Flags"], 0xe0f6_9a2b_aa41_4de0u64);
    for child in children {
        let out = finish(child).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(
        max_concurrency(&file, 3),
        2,
        "two holders at once, never three"
    );
    assert_clean(&a, "cli-lock/sem").await;
}

#[tokio::test]
async fn the_childs_exit_code_and_arguments_pass_through() {
    let a = TestAgent::start().await;
    let out = lock(
        &a,
        &["cli-lock/code", "echo held=$CONSUL_LOCK_HELD; exit 7"],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (7, "held=true\n"),
        "{}",
        out.stderr
    );
    // Without a shell the words after PREFIX are the command, flags included.
    let out = lock(
        &a,
        &[
            "-shell=false",
            "cli-lock/code",
            "sh",
            "-c",
            "printf '%s\\n' \"$0\"; exit 4",
            "-n",
        ],
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (4, "-n\n"),
        "{}",
        out.stderr
    );
    let out = lock(&a, &["-verbose", "cli-lock/code", "true"]).await;
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .contains("Setting up lock at path: cli-lock/code/.lock"),
        "{}",
        out.stdout
    );
    let out = lock(&a, &["cli-lock/code"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Key prefix and child command must be specified\n")
    );
    let out = lock(&a, &["-n=0", "p", "true"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Lock holder limit must be positive\n")
    );
    assert_clean(&a, "cli-lock/code").await;
}

#[tokio::test]
async fn try_gives_up_after_its_timeout() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let holder = lock_command(&a, &["cli-lock/try", "sleep 30"])
        .spawn()
        .unwrap();
    a.eventually("/v1/kv/cli-lock/try/.lock", |v| v[0]["Session"].is_string())
        .await;
    let started = Instant::now();
    let out = lock(
        &a,
        &[
            "-try=700ms",
            "cli-lock/try",
            &format!("touch {}", ran.display()),
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Shutdown triggered or timeout during lock acquisition\n"
    );
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!ran.exists(), "the child never ran");
    let (_, sessions) = a.get_json("/v1/session/list").await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "only the holder's");
    // SIGTERM to the holder stops its child, releases and cleans up.
    let pid = holder.id().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = finish(holder).await;
    assert_eq!(out.code, 128 + libc::SIGTERM, "{}", out.stderr);
    assert_clean(&a, "cli-lock/try").await;
}

#[tokio::test]
async fn losing_the_lock_stops_the_child() {
    let a = TestAgent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let after = dir.path().join("after");
    let child = lock_command(
        &a,
        &[
            "cli-lock/lost",
            &format!("sleep 20; touch {}", after.display()),
        ],
    )
    .spawn()
    .unwrap();
    let sessions = a
        .eventually("/v1/session/list", |v| {
            v.as_array().is_some_and(|s| s.len() == 1)
        })
        .await;
    a.eventually("/v1/kv/cli-lock/lost/.lock", |v| {
        v[0]["Session"].is_string()
    })
    .await;
    let id = sessions[0]["ID"].as_str().unwrap();
    let (_, info) = a.get_json(&format!("/v1/session/info/{id}")).await;
    assert_eq!(
        (info[0]["TTL"].as_str(), info[0]["LockDelay"].as_u64()),
        (Some("15s"), Some(15_000_000_000))
    );
    let started = Instant::now();
    a.put_ok(&format!("/v1/session/destroy/{id}"), "").await;
    let out = finish(child).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Lock lost, killing child"),
        "{}",
        out.stderr
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!after.exists(), "the child's process group was stopped");
    let resp = a.get("/v1/kv/cli-lock/lost/.lock").await;
    assert_eq!(resp.status(), 404, "released and cleaned up");
}

#[tokio::test]
async fn a_lock_and_a_semaphore_on_one_prefix_conflict() {
    let a = TestAgent::start().await;
    let holder = lock_command(&a, &["cli-lock/mixed", "sleep 30"])
        .spawn()
        .unwrap();
    a.eventually("/v1/kv/cli-lock/mixed/.lock", |v| {
        v[0]["Session"].is_string()
    })
    .await;
    let out = lock(&a, &["-n", "3", "cli-lock/mixed", "true"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Lock acquisition failed: Existing key does not match semaphore use\n"
        )
    );
    let pid = holder.id().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = finish(holder).await;
    assert_ne!(out.code, 0);
    let _: Value = a.get_json("/v1/session/list").await.1;
    assert_clean(&a, "cli-lock/mixed").await;
}
