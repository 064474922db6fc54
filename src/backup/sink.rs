//! The integrity sequence of invariant 4, written once for every engine and
//! destination: bytes are hashed (SHA-256) while they stream to a private
//! temporary file, with no second read; the file is fsync'd, renamed to a
//! final name that never replaces anything, and the directory fsync'd; the
//! sidecar metadata comes last, the same way, and a data file whose sidecar
//! could not be written is removed again. Leftovers of an interrupted write
//! keep their temporary names (`partial`), which nothing ever offers.
//!
//! What an engine wants to see of its own stream (pg_dump's completion
//! trailer, COPY row counts, an archive checker fed the same bytes) plugs in
//! as a [`Tap`]; the sink itself knows nothing of PostgreSQL.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::durable;
use super::metadata::FileEntry;
use super::store::{ReservedId, Store};
use crate::Error;

/// Read size from a producer's pipe: as large as the pipe it comes from.
pub const CHUNK: usize = 1 << 20;

/// Chunks at least this large are written straight to the file; smaller
/// ones (the producer running ahead of us only a little) are gathered first.
pub const WRITE_BUFFER: usize = 64 * 1024;

/// Bytes between requests to start write-back of what is already written.
const WRITEBACK_STEP: u64 = 32 << 20;

/// Something an engine wants to see of every chunk as it streams past.
pub trait Tap {
    fn feed(&mut self, chunk: &[u8]);
}

/// Where each chunk of a stream goes: the file, the hash, the byte count,
/// the progress bar and the engine's taps.
pub struct Sink<'t, W: Write> {
    out: W,
    hasher: Sha256,
    size: u64,
    taps: Vec<&'t mut dyn Tap>,
    bar: ProgressBar,
    /// The file behind `out`, to start write-back early (see `feed`).
    writeback: Option<(std::os::fd::RawFd, u64)>,
}

/// What a finished stream amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub sha256: String,
    pub size_bytes: u64,
}

impl<'t, W: Write> Sink<'t, W> {
    pub fn new(out: W, taps: Vec<&'t mut dyn Tap>, bar: ProgressBar) -> Self {
        Sink {
            out,
            hasher: Sha256::new(),
            size: 0,
            taps,
            bar,
            writeback: None,
        }
    }

    /// Starts the kernel writing the file out while the stream is still
    /// running, so the final fsync has little left to wait for (a bare
    /// pg_dump, which the guard is compared with, does not fsync at all).
    pub fn with_writeback(mut self, fd: std::os::fd::RawFd) -> Self {
        self.writeback = Some((fd, 0));
        self
    }

    pub fn feed(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.out.write_all(chunk)?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        for tap in &mut self.taps {
            tap.feed(chunk);
        }
        if let Some((fd, started)) = &mut self.writeback
            && self.size - *started >= WRITEBACK_STEP
        {
            // Only bytes the buffered writer has already handed to the
            // kernel; asynchronous, a hint: errors surface at fsync.
            let end = self.size.saturating_sub(2 << 20);
            if end > *started {
                // SAFETY: plain syscall on a descriptor we own for the call's duration.
                unsafe {
                    libc::sync_file_range(
                        *fd,
                        *started as libc::off64_t,
                        (end - *started) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                *started = end;
            }
        }
        let len = self.bar.length().unwrap_or(0);
        if self.size > len {
            self.bar.set_length(self.size + self.size / 10);
        }
        self.bar.set_position(self.size);
        Ok(())
    }

    /// Flushes the file and hands back the totals; the taps are free again.
    pub fn finish(mut self) -> io::Result<Summary> {
        self.out.flush()?;
        Ok(Summary {
            sha256: hex::encode(self.hasher.finalize()),
            size_bytes: self.size,
        })
    }
}

/// Why streaming stopped early.
#[derive(Debug)]
pub enum PumpError {
    /// Reading the producer failed.
    Read(io::Error),
    /// Writing the backup file failed (full disk, I/O error).
    Write(io::Error),
}

/// Moves everything from `src` through `sink`, stopping at the first error.
pub fn pump<W: Write>(src: &mut impl Read, sink: &mut Sink<'_, W>) -> Result<(), PumpError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        sink.feed(&buf[..n]).map_err(PumpError::Write)?;
    }
}

/// SHA-256 and length of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Per-file SHA-256 of a directory archive (sorted by name), the SHA-256 of
/// the manifest built from them, and the total size. With `seal`, each file
/// is also made private and fsync'd. For producers that write files
/// themselves (pg_dump's directory format), the one read there is.
pub fn hash_directory(dir: &Path, seal: bool) -> io::Result<(Vec<FileEntry>, String, u64)> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    let mut total = 0;
    for name in names {
        let path = dir.join(&name);
        let mut file = File::open(&path)?;
        if seal {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        let (sha256, size) = hash_reader(&mut file)?;
        if seal {
            file.sync_all()?;
        }
        total += size;
        files.push(FileEntry { name, size, sha256 });
    }
    let manifest = manifest_sha256(&files);
    Ok((files, manifest, total))
}

/// The checksum of a directory archive: SHA-256 over `<sha256>  <name>\n`
/// lines in name order (the `sha256sum` format).
pub fn manifest_sha256(files: &[FileEntry]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(format!("{}  {}\n", f.sha256, f.name).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// How a backup's final name is chosen.
#[derive(Debug, Clone)]
pub enum Naming {
    /// `backup_<db>_<timestamp>[_<n>].<ext>` in the store, first free `n`.
    Store {
        database: String,
        started_at: DateTime<Local>,
    },
    /// Exactly this file name (`--output`); an existing file is an error.
    Exact(String),
}

pub(crate) fn failed(message: impl Into<String>) -> Error {
    Error::BackupFailed(message.into())
}

pub(crate) fn dir_error(dir: &Path, e: &io::Error) -> Error {
    failed(format!(
        "cannot write in backup directory {}: {e}",
        dir.display()
    ))
}

/// A published data file: its id, its path, and the id's hold (store
/// naming only), to keep until the sidecar is written.
pub type Published = (String, PathBuf, Option<std::sync::Arc<ReservedId>>);

/// Tries final names in `dir` until one is free; `put` creates it without
/// replacing anything (an atomic no-replace rename).
pub fn publish(
    dir: &Path,
    naming: &Naming,
    ext: &str,
    mut put: impl FnMut(&Path) -> io::Result<()>,
) -> Result<Published, Error> {
    match naming {
        Naming::Exact(name) => {
            let path = dir.join(name);
            let id = Path::new(name)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(name)
                .to_owned();
            put(&path).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => failed(format!(
                    "{} already exists; choose another --output",
                    path.display()
                )),
                _ => dir_error(dir, &e),
            })?;
            Ok((id, path, None))
        }
        Naming::Store {
            database,
            started_at,
        } => {
            // The id is held before the data file gets its name (see
            // `Store::reserve_id`); a file that appears anyway under it (not
            // written by dbguard) only moves us to the next one.
            let store = Store::new(dir);
            for _ in 0..100 {
                let reserved = store
                    .reserve_id(database, started_at.naive_local())
                    .map_err(|e| dir_error(dir, &e))?;
                let id = reserved.id.as_str().to_owned();
                let path = dir.join(format!("{id}.{ext}"));
                match put(&path) {
                    Ok(()) => return Ok((id, path, Some(std::sync::Arc::new(reserved)))),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(dir_error(dir, &e)),
                }
            }
            Err(failed("no free backup name for this second"))
        }
    }
}

/// Publishes a finished temporary file under the first free final name:
/// fsync, no-replace rename, directory fsync. The temporary name is gone
/// afterwards whatever happened.
pub fn publish_file(
    tmp: tempfile::NamedTempFile,
    dir: &Path,
    naming: &Naming,
    ext: &str,
) -> Result<Published, Error> {
    let published = publish(dir, naming, ext, |final_path| {
        durable::publish_file_ref(&tmp, final_path)
    });
    // Published under its final name by rename, or failed: either way the
    // temporary name goes.
    drop(tmp);
    // Best effort, as before the split: failing here must not report a
    // backup that exists under its final name as failed.
    let _ = durable::sync_dir(dir);
    published
}

/// Publishes a finished, fsync'd directory under the first free final name.
pub fn publish_dir(out: &Path, dir: &Path, naming: &Naming, ext: &str) -> Result<Published, Error> {
    durable::sync_dir(out).map_err(|e| dir_error(dir, &e))?;
    publish(dir, naming, ext, |final_path| {
        durable::publish_dir(out, final_path)
    })
}

/// Writes the sidecar last, as a new file that never replaces another; when
/// that fails the published data must not keep its final name, so it is
/// removed again (invariant 4: complete or absent).
pub fn write_sidecar(sidecar: &Path, json: &[u8], data: Option<&Path>) -> Result<(), Error> {
    durable::write_new(sidecar, json).map_err(|e| {
        if let Some(data) = data {
            remove_data(data);
        }
        failed(format!("cannot write metadata {}: {e}", sidecar.display()))
    })
}

/// Removes a published data file or directory again.
pub fn remove_data(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    if let Some(dir) = path.parent() {
        let _ = durable::sync_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails with "no space left" after `room` bytes.
    struct FullDisk {
        room: usize,
        written: Vec<u8>,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written.len() + buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_the_stream_with_a_write_error() {
        let data = vec![b'x'; 3 * CHUNK];
        let mut sink = Sink::new(
            FullDisk {
                room: CHUNK + 10,
                written: Vec::new(),
            },
            Vec::new(),
            ProgressBar::hidden(),
        );
        let err = pump(&mut &data[..], &mut sink).unwrap_err();
        match err {
            PumpError::Write(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            PumpError::Read(e) => panic!("expected a write error, got read error {e}"),
        }
    }

    #[test]
    fn manifest_is_the_sha256sum_format() {
        let files = vec![
            FileEntry {
                name: "3001.dat.gz".into(),
                size: 3,
                sha256: "aa".into(),
            },
            FileEntry {
                name: "toc.dat".into(),
                size: 5,
                sha256: "bb".into(),
            },
        ];
        assert_eq!(
            manifest_sha256(&files),
            hex::encode(Sha256::digest(b"aa  3001.dat.gz\nbb  toc.dat\n"))
        );
    }

    #[test]
    fn a_published_file_never_replaces_another_and_takes_the_next_name() {
        let dir = tempfile::tempdir().unwrap();
        let naming = Naming::Store {
            database: "app".into(),
            started_at: Local::now(),
        };
        let mut ids = Vec::new();
        for text in ["one", "two"] {
            let mut tmp = super::super::partial::new_file(dir.path(), "backup_").unwrap();
            tmp.write_all(text.as_bytes()).unwrap();
            let (id, path, _) = publish_file(tmp, dir.path(), &naming, "sql").unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
            ids.push(id);
        }
        assert_ne!(ids[0], ids[1]);
        assert!(ids[1].ends_with("_2"), "{ids:?}");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file stays behind");
    }

    #[test]
    fn a_sidecar_that_cannot_be_written_takes_the_data_file_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("backup_app_20260101_000000.sql");
        fs::write(&data, "data").unwrap();
        let sidecar = dir.path().join("no-such-dir").join("x.json");
        let err = write_sidecar(&sidecar, b"{}", Some(&data)).unwrap_err();
        assert!(matches!(err, Error::BackupFailed(_)), "{err}");
        assert!(!data.exists());
    }
}
