//! Helpers for tests of a guarded command: run a shim on a real
//! pseudo-terminal (answers can only come through /dev/tty) or in a new
//! session with no terminal at all, and read what it left in the backup
//! store (backup files, the audit log).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::sandbox::capture;
use super::{Output, Sandbox};

/// `program args` on a pseudo-terminal in `cwd` (default: the sandbox
/// directory), stdin from `stdin_file` (default /dev/null).
pub fn on_terminal(
    sandbox: &Sandbox,
    program: &Path,
    args: &[&str],
    stdin_file: Option<&Path>,
    cwd: Option<&Path>,
) -> expectrl::session::OsSession {
    let stdin = stdin_file.map_or("/dev/null".to_owned(), |p| p.display().to_string());
    let mut cmd = sandbox.command("sh");
    cmd.arg("-c")
        .arg(format!("exec \"$0\" \"$@\" < '{stdin}'"))
        .arg(program)
        .args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

/// Runs `cmd` in a new session: there is no terminal to ask on.
pub fn without_terminal(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    // SAFETY: setsid is async-signal-safe; it detaches from any terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    capture(cmd, stdin)
}

/// The exit status of a process run on a pty, as a shell reports it.
pub fn exit_code(session: &mut expectrl::session::OsSession) -> i32 {
    use expectrl::process::unix::WaitStatus;
    match session.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => panic!("unexpected end: {other:?}"),
    }
}

/// Backup data files in the store (no sidecars, journal or audit log).
pub fn backups(store: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(store)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.starts_with("backup_") && !name.ends_with(".json")
    });
    files.sort();
    files
}

pub fn audit_lines(store: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(store.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// A backup's id: its file name without the extension.
pub fn id_of(backup: &Path) -> String {
    backup
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("backup name")
        .to_owned()
}

/// Sends the sandbox's backups to `<sandbox>/store` and returns that path.
pub fn use_store(sandbox: &mut Sandbox) -> PathBuf {
    let store = sandbox.dir.path().join("store");
    sandbox.set(
        "DBGUARD_BACKUP_DIR",
        store.to_str().expect("utf-8 temp path"),
    );
    store
}

/// Restores backup `id` without asking and without a safety backup, and
/// checks that it succeeded.
pub fn restore_unasked(sandbox: &Sandbox, id: &str) {
    let out = capture(
        sandbox
            .dbguard()
            .args(["restore", id, "--yes", "--no-safety-backup"]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
}

/// psql's prompt for `db` (superuser, so `#`), with `state` between the
/// name and the `#`: empty, `*` in a transaction, `!` in a failed one.
pub fn psql_prompt(db: &str, state: &str) -> String {
    format!("{db}={state}# ")
}

/// `interactive_psql` on `db`, once its first prompt is shown.
pub fn open_psql(sandbox: &Sandbox, db: &str) -> expectrl::session::OsSession {
    use expectrl::Expect;
    let mut p = interactive_psql(sandbox, &[]);
    p.expect(psql_prompt(db, "")).expect("psql's first prompt");
    p
}

/// An interactive psql through the shim: the pseudo-terminal is its
/// stdin, stdout, stderr and controlling terminal, as in a shell.
pub fn interactive_psql(sandbox: &Sandbox, args: &[&str]) -> expectrl::session::OsSession {
    let mut cmd = sandbox.shim("psql");
    cmd.args(["-X", "-P", "pager=off"]).args(args);
    let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}
