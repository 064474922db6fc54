//! `dbguard completions`: the generated scripts loaded into real shells,
//! which are then asked to complete partial command lines.

use std::process::Command;

use crate::support::sandbox::dbguard_bin;

/// Runs `script` in a clean, non-interactive shell and returns its stdout.
fn shell(program: &str, args: &[&str], script: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(script)
        .env("DBGUARD", dbguard_bin())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    let out = shell(
        "bash",
        &["--norc", "--noprofile", "-c"],
        r#"source <("$DBGUARD" completions bash)
           COMP_WORDS=(dbguard verify-t); COMP_CWORD=1
           _dbguard dbguard verify-t dbguard
           printf '%s\n' "${COMPREPLY[@]}"
           echo --
           COMP_WORDS=(dbguard backup --for); COMP_CWORD=2
           _dbguard dbguard --for backup
           printf '%s\n' "${COMPREPLY[@]}""#,
    );
    // `--force` is a hidden alias now that backup asks nothing: not offered.
    assert_eq!(lines(&out), ["verify-test-db", "--", "--format"]);
}

#[test]
fn fish_completes_subcommands_and_option_values_with_their_help() {
    let out = shell(
        "fish",
        &["--no-config", "-c"],
        r#"$DBGUARD completions fish | source
           complete -C 'dbguard ver'
           complete -C 'dbguard backup --format '"#,
    );
    let names: Vec<&str> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(l))
        .collect();
    assert_eq!(
        names,
        ["verify", "verify-test-db", "custom", "directory", "plain"]
    );
    assert!(out.contains("verify\tRe-read backups"), "{out}");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(dbguard_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run dbguard");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}
