//! Python venvs the harness needs (alembic; moto's S3 server): created once
//! under target/ with pinned packages and reused across runs, rebuilt when
//! the pins change.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

/// The bin directory of the venv `name` (under `CARGO_TARGET_TMPDIR`)
/// holding `pins`; `program` is what must be in it for it to count as built.
pub fn ensure(name: &str, pins: &[&str], program: &str) -> Result<PathBuf, String> {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join(name);
    let bin = venv.join("bin");
    let stamp = venv.join(".dbguard-pins");
    let wanted = pins.join("\n");
    // Several test processes (nextest) may get here at once: one builds.
    let lock_file =
        fs::File::create(base.join(format!("{name}.lock"))).map_err(|e| e.to_string())?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| e.to_string())?;
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && bin.join(program).exists() {
        return Ok(bin);
    }
    let _ = fs::remove_dir_all(&venv);
    let python = std::env::var("DBGUARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("{e} (on Debian: apt-get install -y python3-venv)"))?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(pins))?;
    fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(bin)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
