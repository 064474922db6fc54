//! The prune lock: one pruner per backup directory at a time, so two
//! concurrent runs can never both decide to remove the same backups (or
//! remove one the other just protected).
//!
//! The lock is an `flock` on `<dir>/.dbguard-prune.lock`. The kernel drops
//! it when its holder dies, however it dies, so a lock left behind by a
//! killed process is stale by construction and the next run simply takes
//! it. The file records the holder's pid, only to name it in messages and
//! to say when a stale lock was taken over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::Error;

pub const LOCK_FILE: &str = ".dbguard-prune.lock";

/// Held while it lives; released on drop (and by the kernel on death).
#[derive(Debug)]
pub struct PruneLock {
    _lock: Flock<File>,
    /// The pid a previous holder left in the file when it did not unlock
    /// cleanly (it died holding the lock).
    pub took_over_from: Option<u32>,
}

impl PruneLock {
    /// Takes the lock, retrying for up to `wait`.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<PruneLock, Error> {
        let path = dir.join(LOCK_FILE);
        let deadline = Instant::now() + wait;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot open prune lock {}", path.display()), e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    let mut previous = String::new();
                    let _ = lock.read_to_string(&mut previous);
                    let took_over_from = previous
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|&pid| pid != std::process::id());
                    let _ = lock.set_len(0);
                    let _ = lock.seek(SeekFrom::Start(0));
                    let _ = write!(lock, "{}", std::process::id());
                    let _ = lock.flush();
                    return Ok(PruneLock {
                        _lock: lock,
                        took_over_from,
                    });
                }
                Err((file, Errno::EWOULDBLOCK)) => {
                    if Instant::now() >= deadline {
                        let mut holder = String::new();
                        let mut file = file;
                        let _ = file.read_to_string(&mut holder);
                        let holder = holder.trim();
                        return Err(Error::Failed {
                            message: format!(
                                "another dbguard (pid {}) is pruning {}; try again when it has finished",
                                if holder.is_empty() { "unknown" } else { holder },
                                dir.display()
                            ),
                            code: crate::error::exit::ERROR,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, errno)) => {
                    return Err(Error::io(
                        format!("cannot lock {}", path.display()),
                        std::io::Error::from(errno),
                    ));
                }
            }
        }
    }
}

impl Drop for PruneLock {
    fn drop(&mut self) {
        // A clean release empties the file: a pid found there later means
        // its holder died with the lock held.
        let _ = self._lock.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gives_up_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = PruneLock::acquire(dir.path(), Duration::ZERO).unwrap();
        let err = PruneLock::acquire(dir.path(), Duration::from_millis(120)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        let again = PruneLock::acquire(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(again.took_over_from, None, "a clean release leaves no pid");
    }

    #[test]
    fn a_lock_whose_holder_died_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(LOCK_FILE);
        // A child takes the lock and is killed while holding it.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 9>>'{}'; flock 9; printf 424242 >&9; echo locked; sleep 60",
                lock_path.display()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = [0u8; 7];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .unwrap();
        assert!(PruneLock::acquire(dir.path(), Duration::ZERO).is_err());
        child.kill().unwrap();
        child.wait().unwrap();
        let lock = PruneLock::acquire(dir.path(), Duration::from_secs(2)).unwrap();
        assert_eq!(lock.took_over_from, Some(424242));
    }
}
