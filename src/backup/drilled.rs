//! The last restore drill of each backup (`dbguard drill`): one small JSON
//! file per backup, `<id>.drill.json` beside its sidecar, replaced
//! atomically on every drill. The sidecar and the data file are written
//! once and never rewritten (invariant 4), so what a drill learns later
//! lives here. The file is not part of the backup: the store does not list
//! it as one, `verify` does not check it, and removing the backup removes
//! it too (`Store::remove`), unless a remote still holds a copy; remote
//! retention removes it with the last copy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::durable;

/// The suffix that marks a drill record in the backup directory.
pub const SUFFIX: &str = ".drill.json";

/// The outcome of one drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drilled {
    pub at: DateTime<FixedOffset>,
    /// The restored copy matched what was compared.
    pub ok: bool,
    /// What was compared (a passed drill), or what failed and why.
    pub detail: String,
    /// The first table that did not match, when a table is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The remote whose copy was downloaded and drilled; absent when the
    /// local copy was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The drill record of backup `id` in `dir`.
pub fn path_for(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{SUFFIX}"))
}

impl Drilled {
    /// The last drill of `id`; `None` when it was never drilled. A record
    /// that does not parse counts as no drill, never as an error that
    /// hides the backup.
    pub fn read(dir: &Path, id: &str) -> Option<Drilled> {
        fs::read(path_for(dir, id))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    /// Replaces the record of `id` (temporary file, fsync, rename, fsync
    /// of the directory).
    pub fn write(&self, dir: &Path, id: &str) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        durable::replace(&path_for(dir, id), &json)
    }

    /// `OK` or `FAILED`, as `list` shows it.
    pub fn label(&self) -> &'static str {
        if self.ok { "OK" } else { "FAILED" }
    }
}

/// Removes the record of `id`, if there is one.
pub fn remove(dir: &Path, id: &str) -> io::Result<()> {
    match fs::remove_file(path_for(dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_last_drill_replaces_the_one_before_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let id = "backup_shop_20260301_091502";
        assert_eq!(Drilled::read(dir.path(), id), None);
        let at = DateTime::parse_from_rfc3339("2026-03-02T08:00:00+00:00").unwrap();
        let failed = Drilled {
            at,
            ok: false,
            detail: "public.items: 301 rows expected, 300 found".into(),
            table: Some("public.items".into()),
            from: None,
        };
        failed.write(dir.path(), id).unwrap();
        let passed = Drilled {
            ok: true,
            table: None,
            ..failed.clone()
        };
        passed.write(dir.path(), id).unwrap();
        assert_eq!(Drilled::read(dir.path(), id), Some(passed));
        let mode = fs::metadata(path_for(dir.path(), id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no leftovers");
        remove(dir.path(), id).unwrap();
        remove(dir.path(), id).unwrap();
        assert_eq!(Drilled::read(dir.path(), id), None);
    }
}
