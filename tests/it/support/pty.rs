//! Driving a command on a real pseudo-terminal, the way a person at a
//! keyboard would: the command's stdin comes from a file (default
//! /dev/null), so any answer it reads can only come through /dev/tty.

use std::path::Path;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;

use super::Sandbox;

/// Starts `program args` in the sandbox on a new pseudo-terminal.
pub fn on_terminal(
    sandbox: &Sandbox,
    program: &Path,
    args: &[&str],
    stdin_file: Option<&Path>,
) -> OsSession {
    let stdin = stdin_file.map_or("/dev/null".to_owned(), |p| p.display().to_string());
    let mut cmd = sandbox.command("sh");
    cmd.arg("-c")
        .arg(format!("exec \"$0\" \"$@\" < '{stdin}'"))
        .arg(program)
        .args(args);
    let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

/// Waits for the command and returns its status as a shell reports it
/// (128 + N for a death by signal N).
pub fn exit_code(session: &mut OsSession) -> i32 {
    match session.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => panic!("unexpected end: {other:?}"),
    }
}
