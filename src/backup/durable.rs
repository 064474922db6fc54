//! Making files durable and visible in one step: data reaches the disk
//! (fsync) before it gets its final name (rename), and the name itself
//! reaches the disk (fsync of the directory) before anyone is told.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// fsync of a directory, so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Gives a finished, fsync'd temporary file its final name, never
/// replacing an existing file, then syncs the directory.
pub fn publish_file(tmp: NamedTempFile, final_path: &Path) -> Result<(), io::Error> {
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(final_path).map_err(|e| e.error)?;
    if let Some(dir) = final_path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Gives a finished temporary file its final name without consuming it, so
/// the caller can try the next name when one is taken: fsync, then an
/// atomic rename that refuses to replace an existing file. The caller syncs
/// the directory once it is done.
pub fn publish_file_ref(tmp: &NamedTempFile, final_path: &Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    rename_noreplace(tmp.path(), final_path)
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Renames a finished directory to its final name (refusing to replace an
/// existing one), then syncs the parent.
pub fn publish_dir(tmp_dir: &Path, final_path: &Path) -> io::Result<()> {
    rename_noreplace(tmp_dir, final_path)?;
    if let Some(dir) = final_path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `bytes` as a new file at `path` (mode 0600) the same durable way.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = super::partial::new_file(dir, "")?;
    tmp.write_all(bytes)?;
    publish_file(tmp, path)
}

/// Rewrites a small file atomically (replacing it), for the verification journal.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = super::partial::new_file(dir, "")?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn new_files_are_private_and_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_new(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_new(&path, b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file stays behind: {leftovers:?}"
        );
    }
}
