//! Temporary files of writes in progress in the backup directory, and the
//! leftovers of writes that were killed.
//!
//! Every temporary file or directory dbguard creates there (`.tmp-*.partial`)
//! comes from here and holds an exclusive `flock` for as long as its writer
//! lives. The kernel drops that lock when the writer exits, however it
//! exits (SIGKILL, out of memory, power loss), so a partial that nobody
//! holds is the remains of an interrupted write and can be removed. Such a
//! file never has a final name, so it was never offered for restore; this
//! only gives the disk space back.
//!
//! The same lock guards a backup id while its files get their final names
//! (a [`Reservation`], `.tmp-<id>.id.partial`): the data file appears
//! before its sidecar, and a data file without a sidecar is an orphan only
//! when nobody holds its id.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::{NamedTempFile, TempDir};

/// Name prefix of every temporary entry in the backup directory.
pub const PREFIX: &str = ".tmp-";
/// Name suffix of every temporary entry in the backup directory.
pub const SUFFIX: &str = ".partial";

/// A partial younger than this is never called stale: it may have been
/// created a moment ago by a writer that has not taken its lock yet.
const GRACE: Duration = Duration::from_secs(60);

/// A new private temporary file in `dir`, locked by this process.
pub fn new_file(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{prefix}"))
        .suffix(SUFFIX)
        .tempfile_in(dir)?;
    lock(file.as_file())?;
    Ok(file)
}

/// A new private temporary directory in `dir`, and the open handle whose
/// lock marks it as in use; keep the handle as long as the directory.
pub fn new_dir(dir: &Path, prefix: &str) -> io::Result<(TempDir, File)> {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{prefix}"))
        .suffix(SUFFIX)
        .tempdir_in(dir)?;
    let handle = File::open(tmp.path())?;
    lock(&handle)?;
    Ok((tmp, handle))
}

/// A backup id claimed by this process. Released (the file removed, the
/// lock dropped) when dropped; by the kernel if the process dies.
#[derive(Debug)]
pub struct Reservation {
    path: PathBuf,
    _file: File,
}

/// Claims backup id `id` in `dir`: `Ok(None)` when another process holds
/// it. A writer (`take_over` false) never takes a reservation file that
/// already exists, so two writers can never share an id. A pruner
/// (`take_over` true) also takes one whose holder is gone, to prove that
/// nobody is between publishing a data file and its sidecar.
pub fn reserve(dir: &Path, id: &str, take_over: bool) -> io::Result<Option<Reservation>> {
    let path = dir.join(format!("{PREFIX}{id}.id{SUFFIX}"));
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && take_over => {
            match File::open(&path) {
                Ok(file) => file,
                // Released between the two calls: free, but try again later.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    };
    if lock(&file).is_err() {
        // Someone else got the lock first (or holds it): not ours, and not
        // ours to remove.
        return Ok(None);
    }
    // A holder that released removed the name before unlocking; a lock on
    // such a removed file proves nothing about the name.
    let same = fs::metadata(&path)
        .and_then(|on_disk| file.metadata().map(|held| (on_disk, held)))
        .is_ok_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
    if !same {
        return Ok(None);
    }
    Ok(Some(Reservation { path, _file: file }))
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Removed while still locked, so nobody can take the old file for a
        // fresh claim; a failure leaves a stale partial that prune removes.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether `path` was last modified at least the grace period ago (a
/// missing or unreadable file is not).
pub fn old_enough(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age >= GRACE)
}

/// Partials in `dir` that no living writer holds.
pub fn stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .flatten()
        .filter(|item| {
            let name = item.file_name();
            let name = name.to_string_lossy();
            name.starts_with(PREFIX) && name.ends_with(SUFFIX)
        })
        .filter(|item| old_enough(&item.path()) && !held(&item.path()))
        .map(|item| item.path())
        .collect();
    found.sort();
    found
}

/// Removes a stale partial, file or directory.
pub fn remove(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

fn lock(file: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether some process holds the partial's lock. A partial that cannot
/// even be opened counts as held: it is not ours to remove.
fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return true;
    };
    // Taking the lock proves nobody holds it; it is released when `file`
    // is dropped at the end of this function.
    lock(&file).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn age(path: &Path) {
        let old = SystemTime::now() - 2 * GRACE;
        let file = File::open(path).unwrap();
        file.set_modified(old).unwrap();
    }

    #[test]
    fn a_partial_held_by_its_writer_is_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        let file = new_file(dir.path(), "backup_").unwrap();
        let (subdir, _handle) = new_dir(dir.path(), "backup_").unwrap();
        age(file.path());
        age(subdir.path());
        assert!(stale(dir.path()).is_empty());
    }

    #[test]
    fn a_partial_whose_writer_died_is_stale_once_old_enough() {
        let dir = tempfile::tempdir().unwrap();
        // The writer is another process, killed while it holds the lock,
        // as a SIGKILLed backup would be.
        let path = dir.path().join(".tmp-backup_x.partial");
        fs::write(&path, "half a dump").unwrap();
        // `-o`: the lock stays with flock itself, not with the sleep it starts.
        let mut writer = Command::new("flock")
            .arg("-o")
            .arg(&path)
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        // Until flock has taken the lock the file would look stale; wait for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !held(&path) {
            assert!(std::time::Instant::now() < deadline, "flock never locked");
            std::thread::sleep(Duration::from_millis(10));
        }
        age(&path);
        assert!(stale(dir.path()).is_empty(), "held by a living writer");
        writer.kill().unwrap();
        writer.wait().unwrap();
        // flock's child shares the locked file description from fork until
        // it closes it (`-o`) before exec: on a busy machine that can be
        // after flock itself died, so the lock outlives it briefly.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while held(&path) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lock outlived its writer"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(stale(dir.path()), vec![path.clone()]);
        remove(&path).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn an_id_is_held_by_one_claimant_and_a_dead_holder_can_be_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = reserve(dir.path(), "backup_a_20260101_000000", false)
            .unwrap()
            .expect("free id");
        for take_over in [false, true] {
            assert!(
                reserve(dir.path(), "backup_a_20260101_000000", take_over)
                    .unwrap()
                    .is_none()
            );
        }
        assert!(
            reserve(dir.path(), "backup_a_20260101_000000_2", false)
                .unwrap()
                .is_some()
        );
        drop(first);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "released");

        // A holder killed with its reservation file left behind: a writer
        // does not reuse the file, a pruner takes it over.
        let path = dir.path().join(".tmp-backup_b_20260101_000000.id.partial");
        fs::write(&path, "").unwrap();
        assert!(
            reserve(dir.path(), "backup_b_20260101_000000", false)
                .unwrap()
                .is_none()
        );
        let taken = reserve(dir.path(), "backup_b_20260101_000000", true).unwrap();
        assert!(taken.is_some());
        drop(taken);
        assert!(!path.exists());
    }

    #[test]
    fn a_fresh_unlocked_partial_gets_its_grace_period_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".tmp-backup_y.partial"), "").unwrap();
        for name in [
            "backup_a_20260101_000000.sql",
            ".prune.lock",
            "notes.partial",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
            age(&dir.path().join(name));
        }
        assert!(stale(dir.path()).is_empty());
    }
}
