//! Shell completion as consul's CLI offers it (mitchellh/cli with posener/complete): the
//! shell runs the binary with `COMP_LINE`/`COMP_POINT` set and reads one candidate a line;
//! `-autocomplete-install` / `-autocomplete-uninstall` add or remove the
//! `complete -C <binary> legate` line in the user's bash and zsh startup files. Like consul's,
//! the candidates are the command names at each level (consul's commands complete no flags).

use clap::CommandFactory;
use std::path::PathBuf;

/// The top-level flags consul's CLI completes.
const TOP_FLAGS: &[&str] = &["-autocomplete-install", "-autocomplete-uninstall"];

/// The candidates for the last (possibly empty) word of `line`, cut at `point`.
pub fn candidates(line: &str, point: usize) -> Vec<String> {
    let line = line.get(..point.min(line.len())).unwrap_or(line);
    let mut words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let partial = if line.ends_with(char::is_whitespace) {
        ""
    } else {
        words.pop().unwrap_or("")
    };
    let mut command = super::Cli::command();
    for word in &words {
        match command.find_subcommand(word) {
            Some(sub) => command = sub.clone(),
            None => return Vec::new(),
        }
    }
    let mut out: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help" && name.starts_with(partial))
        .collect();
    if words.is_empty() && partial.starts_with('-') {
        out.extend(
            TOP_FLAGS
                .iter()
                .filter(|f| f.starts_with(partial))
                .map(|f| f.to_string()),
        );
    }
    out
}

/// Answers the shell's completion request when the environment holds one.
pub fn answer_shell() -> Option<i32> {
    let line = std::env::var("COMP_LINE").ok()?;
    let point = std::env::var("COMP_POINT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(line.len());
    for candidate in candidates(&line, point) {
        println!("{candidate}");
    }
    Some(0)
}

/// The startup files of the shells found in `$HOME`.
fn rc_files() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return Vec::new();
    };
    [".bashrc", ".zshrc"]
        .iter()
        .map(|f| home.join(f))
        .filter(|p| p.is_file())
        .collect()
}

fn complete_line() -> Result<String, String> {
    let binary = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok(format!("complete -C {} legate", binary.display()))
}

/// `-autocomplete-install` (`install`) or `-autocomplete-uninstall`; returns the exit code.
pub fn install(install: bool) -> i32 {
    let verb = if install {
        "installing"
    } else {
        "uninstalling"
    };
    match change(install) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error {verb} autocomplete: {e}");
            1
        }
    }
}

fn change(install: bool) -> Result<(), String> {
    let files = rc_files();
    if files.is_empty() {
        return Err("did not find any shells to install".into());
    }
    let line = complete_line()?;
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        let present = text.lines().any(|l| l.trim() == line);
        let zsh = file.ends_with(".zshrc");
        let new_text = match (install, present) {
            (true, true) => return Err(format!("already installed in {}", file.display())),
            (false, false) => return Err(format!("does not installed in {}", file.display())),
            (true, false) => {
                let mut text = text;
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                if zsh && !text.contains("bashcompinit") {
                    text.push_str("autoload -U +X bashcompinit && bashcompinit\n");
                }
                text.push_str(&line);
                text.push('\n');
                text
            }
            (false, true) => text
                .lines()
                .filter(|l| l.trim() != line)
                .map(|l| format!("{l}\n"))
                .collect(),
        };
        std::fs::write(&file, new_text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_at_each_level() {
        assert_eq!(candidates("legate ke", 9), ["keygen"]);
        assert_eq!(candidates("legate catalog n", 16), ["nodes"]);
        let kv = candidates("legate kv ", 10);
        assert!(
            kv.contains(&"get".to_string()) && kv.contains(&"put".to_string()),
            "{kv:?}"
        );
        assert_eq!(
            candidates("legate -autocomplete-i", 22),
            ["-autocomplete-install"]
        );
        assert!(candidates("legate nosuch ", 14).is_empty());
        // Only what is left of the cursor counts.
        assert_eq!(candidates("legate ca xyz", 9), ["catalog"]);
    }
}
