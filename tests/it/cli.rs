//! The `legate kv` CLI against a running agent.

use crate::common::TestAgent;

#[tokio::test]
async fn kv_put_get_delete() {
    let a = TestAgent::start().await;
    let out = a
        .cli(&["kv", "put", "-flags=5", "cli/key", "hello"], None)
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Data written to: cli/key\n"),
        "{}",
        out.stderr
    );
    let out = a.cli(&["kv", "get", "cli/key"], None).await;
    assert_eq!(out.stdout, "hello\n");
    let out = a.cli(&["kv", "get", "-detailed", "cli/key"], None).await;
    assert!(
        out.stdout.contains("Flags            5\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Value            hello"),
        "{}",
        out.stdout
    );
    let out = a
        .cli(&["kv", "put", "cli/stdin", "-"], Some("from stdin"))
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = a.cli(&["kv", "get", "-recurse", "cli/"], None).await;
    assert_eq!(out.stdout, "cli/key:hello\ncli/stdin:from stdin\n");
    let out = a.cli(&["kv", "get", "-keys", "cli/"], None).await;
    assert_eq!(out.stdout, "cli/key\ncli/stdin\n");
    let out = a.cli(&["kv", "delete", "cli/key"], None).await;
    assert_eq!(out.stdout, "Success! Deleted key: cli/key\n");
    let out = a.cli(&["kv", "get", "cli/key"], None).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error! No key exists at: cli/key\n");
    let out = a.cli(&["kv", "delete", "-recurse", "cli/"], None).await;
    assert_eq!(out.stdout, "Success! Deleted keys with prefix: cli/\n");
}

#[tokio::test]
async fn kv_cas_from_the_cli() {
    let a = TestAgent::start().await;
    let out = a
        .cli(&["kv", "put", "-cas", "-modify-index=0", "c", "1"], None)
        .await;
    assert_eq!(out.code, 0);
    let out = a
        .cli(&["kv", "put", "-cas", "-modify-index=0", "c", "2"], None)
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error! Did not write to c: CAS performed with index=0 and key already exists.\n"
    );
    let out = a
        .cli(&["kv", "delete", "-cas", "-modify-index=99", "c"], None)
        .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error! Did not delete key c: CAS failed\n");
    let out = a.cli(&["kv", "delete", "-modify-index=1", "c"], None).await;
    assert_eq!(out.stderr, "Cannot specify -modify-index without -cas!\n");
}

#[tokio::test]
async fn kv_export_then_import_under_a_prefix() {
    let a = TestAgent::start().await;
    a.put_ok("/v1/kv/exp/a?flags=3", "one").await;
    a.put_ok("/v1/kv/exp/b", "two").await;
    let out = a.cli(&["kv", "export", "exp/"], None).await;
    assert_eq!(out.code, 0);
    let exported: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        exported[0],
        serde_json::json!({"key": "exp/a", "flags": 3, "value": "b25l"})
    );
    assert!(
        out.stdout.contains("\n\t{"),
        "tab-indented like consul: {}",
        out.stdout
    );
    let out = a
        .cli(&["kv", "import", "-prefix=copy", "-"], Some(&out.stdout))
        .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Imported: copy/exp/a\nImported: copy/exp/b\n");
    let (_, body) = a.get_json("/v1/kv/copy/exp/a").await;
    assert_eq!(body[0]["Flags"], 3);
}

#[tokio::test]
async fn errors_from_the_agent_reach_the_user() {
    let a = TestAgent::start().await;
    let out = a.cli(&["kv", "get"], None).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error! Missing KEY argument\n")
    );
    let out = a
        .cli(&["kv", "put", "-http-addr=127.0.0.1:1", "k", "v"], None)
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("Error! Failed writing data: "),
        "{}",
        out.stderr
    );
}

/// Regression: clap's own messages showed where Go's flag package names the flag, and a
/// repeated flag stopped the command where Go lets the last one win.
#[tokio::test]
async fn flags_parse_as_gos_flag_package_parses_them() {
    let a = TestAgent::start().await;
    let out = a.cli(&["kv", "get", "-x", "k"], None).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("flag provided but not defined: -x\n"),
        "{}",
        out.stderr
    );
    let out = a.cli(&["kv", "put", "-bogus=1", "k", "v"], None).await;
    assert!(
        out.stderr
            .starts_with("flag provided but not defined: -bogus\n"),
        "{}",
        out.stderr
    );
    // The last of a repeated flag wins: the first address would fail to connect.
    let unreachable = "-http-addr=127.0.0.1:1";
    let reachable = format!("-http-addr={}", a.base.trim_start_matches("http://"));
    let out = a
        .cli(&["kv", "put", unreachable, &reachable, "k", "v"], None)
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Data written to: k\n")
    );
}

/// Every command path of the CLI (`kv get`, `acl token create`, ...), as the parser knows them.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let subs: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push(path.clone());
        }
        for sub in subs {
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(
        &<legate::cli::Cli as clap::CommandFactory>::command(),
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// Go's flag package refuses an undefined flag the same way in every consul command: the
/// message, then the usage, exit 1; nothing runs.
#[tokio::test]
async fn every_command_refuses_an_undefined_flag_as_go_does() {
    let a = TestAgent::start().await;
    let paths = command_paths();
    assert!(paths.len() > 60, "{} commands", paths.len());
    let mut wrong = Vec::new();
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("-x");
        let out = a.cli(&args, None).await;
        if out.code != 1
            || !out
                .stderr
                .starts_with("flag provided but not defined: -x\n")
        {
            wrong.push(format!(
                "{}: exit {} {:?}",
                path.join(" "),
                out.code,
                out.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
