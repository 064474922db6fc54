//! The local directory: where every backup is written first, and a
//! destination for copies (a second directory, a mounted volume).
//!
//! Engines stage their output here under temporary names (`partial`) and
//! publish it through `sink`; copies arriving through [`Destination::put`]
//! take the same way: streamed through the hash into a temporary file,
//! confirmed against the original's checksum, fsync'd, renamed without
//! replacing anything, the directory fsync'd, the sidecar last.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use tempfile::{NamedTempFile, TempDir};

use super::{Copied, Destination, Published};
use crate::Error;
use crate::backup::partial;
use crate::backup::sink::{self, Naming, Sink, dir_error, failed};

/// A backup directory on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    dir: PathBuf,
}

impl Local {
    pub fn new(dir: impl Into<PathBuf>) -> Local {
        Local { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new private temporary file for a stream, locked as in use.
    pub fn stage_file(&self) -> Result<NamedTempFile, Error> {
        partial::new_file(&self.dir, "backup_").map_err(|e| dir_error(&self.dir, &e))
    }

    /// A new private temporary directory for a producer that writes files
    /// itself, with the handle that marks it in use until it is published.
    pub fn stage_dir(&self) -> Result<(TempDir, File), Error> {
        partial::new_dir(&self.dir, "backup_").map_err(|e| dir_error(&self.dir, &e))
    }

    /// Publishes a finished staged file under the first free final name.
    pub fn publish_file(
        &self,
        tmp: NamedTempFile,
        naming: &Naming,
        ext: &str,
    ) -> Result<sink::Published, Error> {
        sink::publish_file(tmp, &self.dir, naming, ext)
    }

    /// Publishes a finished directory (inside a staged one) under the first
    /// free final name.
    pub fn publish_dir(
        &self,
        out: &Path,
        naming: &Naming,
        ext: &str,
    ) -> Result<sink::Published, Error> {
        sink::publish_dir(out, &self.dir, naming, ext)
    }

    /// Copies one file into a staged file here, hashing as it streams.
    fn copy_file(&self, from: &Path) -> Result<(NamedTempFile, sink::Summary), Error> {
        let tmp = self.stage_file()?;
        let mut source =
            File::open(from).map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
        let mut sink = Sink::new(
            BufWriter::with_capacity(sink::WRITE_BUFFER, tmp.as_file()),
            Vec::new(),
            ProgressBar::hidden(),
        );
        sink::pump(&mut source, &mut sink).map_err(|e| match e {
            sink::PumpError::Read(e) => failed(format!("cannot read {}: {e}", from.display())),
            sink::PumpError::Write(e) => dir_error(&self.dir, &e),
        })?;
        let summary = sink.finish().map_err(|e| dir_error(&self.dir, &e))?;
        Ok((tmp, summary))
    }

    /// Copies a directory archive into a staged directory here and returns
    /// it with its manifest checksum.
    fn copy_dir(&self, from: &Path) -> Result<(TempDir, File, PathBuf, String), Error> {
        let (tmp, held) = self.stage_dir()?;
        let out = tmp.path().join("data");
        fs::create_dir(&out).map_err(|e| dir_error(&self.dir, &e))?;
        let entries = fs::read_dir(from)
            .map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
            fs::copy(entry.path(), out.join(entry.file_name()))
                .map_err(|e| dir_error(&self.dir, &e))?;
        }
        let (_, manifest, _) =
            sink::hash_directory(&out, true).map_err(|e| dir_error(&self.dir, &e))?;
        Ok((tmp, held, out, manifest))
    }
}

impl Destination for Local {
    fn describe(&self) -> String {
        format!("local {}", self.dir.display())
    }

    fn put(&self, backup: &Published<'_>) -> Result<Copied, Error> {
        let file_name = |path: &Path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
                .ok_or_else(|| failed(format!("{}: not a file name", path.display())))
        };
        let mismatch = |got: &str| {
            failed(format!(
                "the copy of {} in {} has SHA-256 {got}, not {}; nothing was kept",
                backup.id,
                self.dir.display(),
                backup.sha256
            ))
        };
        let data = match backup.data {
            Some(data) if data.is_dir() => {
                let (_tmp, _held, out, manifest) = self.copy_dir(data)?;
                if manifest != backup.sha256 {
                    return Err(mismatch(&manifest));
                }
                let (_, path, _) = self.publish_dir(&out, &Naming::Exact(file_name(data)?), "")?;
                Some(path)
            }
            Some(data) => {
                let (tmp, summary) = self.copy_file(data)?;
                if summary.sha256 != backup.sha256 {
                    return Err(mismatch(&summary.sha256));
                }
                let (_, path, _) = self.publish_file(tmp, &Naming::Exact(file_name(data)?), "")?;
                Some(path)
            }
            None => None,
        };
        let sidecar = self.dir.join(file_name(backup.sidecar)?);
        let json = fs::read(backup.sidecar)
            .map_err(|e| failed(format!("cannot read {}: {e}", backup.sidecar.display())))?;
        sink::write_sidecar(&sidecar, &json, data.as_deref())?;
        Ok(Copied {
            destination: self.describe(),
            location: data.unwrap_or(sidecar).display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn published_file(dir: &Path, text: &str) -> (PathBuf, PathBuf, String) {
        let data = dir.join("backup_app_20260101_000000.sql");
        fs::write(&data, text).unwrap();
        let sidecar = dir.join("backup_app_20260101_000000.json");
        fs::write(&sidecar, "{}\n").unwrap();
        (data, sidecar, hex::encode(Sha256::digest(text)))
    }

    #[test]
    fn a_copy_is_confirmed_against_the_checksum_and_keeps_its_name() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (data, sidecar, sha256) = published_file(from.path(), "dump text");
        let copied = Local::new(to.path())
            .put(&Published {
                id: "backup_app_20260101_000000",
                data: Some(&data),
                sidecar: &sidecar,
                sha256: &sha256,
            })
            .unwrap();
        let copy = to.path().join("backup_app_20260101_000000.sql");
        assert_eq!(copied.location, copy.display().to_string());
        assert_eq!(fs::read_to_string(&copy).unwrap(), "dump text");
        assert!(to.path().join("backup_app_20260101_000000.json").exists());
        assert_eq!(fs::read_dir(to.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_copy_whose_checksum_differs_leaves_nothing() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (data, sidecar, _) = published_file(from.path(), "dump text");
        let wrong = hex::encode(Sha256::digest("other text"));
        let err = Local::new(to.path())
            .put(&Published {
                id: "backup_app_20260101_000000",
                data: Some(&data),
                sidecar: &sidecar,
                sha256: &wrong,
            })
            .unwrap_err();
        assert!(err.to_string().contains("nothing was kept"), "{err}");
        assert_eq!(fs::read_dir(to.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_archive_is_copied_whole_and_checked_by_its_manifest() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let archive = from.path().join("backup_app_20260101_000000.dir");
        fs::create_dir(&archive).unwrap();
        fs::write(archive.join("toc.dat"), "toc").unwrap();
        fs::write(archive.join("3001.dat.gz"), "rows").unwrap();
        let sidecar = from.path().join("backup_app_20260101_000000.json");
        fs::write(&sidecar, "{}\n").unwrap();
        let (_, manifest, _) = sink::hash_directory(&archive, false).unwrap();
        Local::new(to.path())
            .put(&Published {
                id: "backup_app_20260101_000000",
                data: Some(&archive),
                sidecar: &sidecar,
                sha256: &manifest,
            })
            .unwrap();
        let copy = to.path().join("backup_app_20260101_000000.dir");
        assert_eq!(fs::read_to_string(copy.join("toc.dat")).unwrap(), "toc");
        assert_eq!(fs::read_dir(to.path()).unwrap().count(), 2);
    }
}
