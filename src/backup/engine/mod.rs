//! The backup engine interface: what takes a backup of a database. Each
//! engine is one file here; `pg_dump` is the default (and today the only)
//! one; `pgbackrest` makes a restore point. An engine produces its data into the local directory through the
//! integrity sequence in `sink` and reports what it made; writing the
//! sidecar, recording the verification and pruning stay with the caller
//! (`backup::take`), the same for every engine.
//!
//! An engine whose backup is not a file (pgBackRest: a restore point in its
//! own repository) returns a [`Taken`] without `path`; the sidecar is then
//! the whole local record and names what to restore to.

pub mod pg_dump;
pub mod pgbackrest;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Local as LocalTime};

use super::Format;
use super::dest::local::Local;
use super::metadata::FileEntry;
use super::sink::Naming;
use crate::Error;
use crate::target::Target;

pub use pg_dump::PgDump;
pub use pgbackrest::{PgBackRest, RestorePoint};

/// What to back up, for any engine.
pub struct Job<'a> {
    pub target: &'a Target,
    /// The data format, for engines that write one (pg_dump).
    pub format: Format,
    /// Parallel jobs, where the engine and format allow them.
    pub jobs: Option<u32>,
    /// `-t` patterns; empty for the whole database.
    pub tables: &'a [String],
    /// The database size, for the progress estimate.
    pub size_hint: u64,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    pub naming: &'a Naming,
    pub started_at: DateTime<LocalTime>,
}

/// A finished backup, published under its final name, sidecar not yet written.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The engine's name ([`Engine::name`]), recorded in the sidecar.
    pub engine: &'static str,
    pub id: String,
    /// The data file or directory in the local directory; `None` when the
    /// engine keeps the data elsewhere (a restore point).
    pub path: Option<PathBuf>,
    pub format: Format,
    pub sha256: String,
    pub size_bytes: u64,
    /// Exact row counts per (schema, table), where the engine saw them.
    pub rows: HashMap<(String, String), i64>,
    /// Content checksums per (schema, table), where the engine saw the
    /// rows (`pg_dump::CopyCounter` says how they are computed).
    pub checksums: HashMap<(String, String), String>,
    /// Per-file entries of a directory-format backup.
    pub files: Vec<FileEntry>,
    /// How completeness was proven, for the metadata.
    pub completeness: String,
    pub elapsed: Duration,
    /// The id held for this backup until its sidecar is written (store
    /// naming only); dropping it releases the id.
    pub reservation: Option<std::sync::Arc<super::store::ReservedId>>,
    /// The restore point, for an engine whose backup is one.
    pub restore_point: Option<RestorePoint>,
}

/// A way of backing up a database. `Sync`: the caller asks for the version
/// on one thread while the backup runs on another.
pub trait Engine: Sync {
    /// The engine's name, as configuration and metadata spell it.
    fn name(&self) -> &'static str;

    /// The engine's own version line for the metadata (`pg_dump (PostgreSQL)
    /// 16.4`); empty when it cannot tell. Runs beside [`Engine::take`].
    fn version(&self) -> String;

    /// Takes the backup `job` describes into `local`, publishing it under
    /// its final name; on error nothing with a final name is left behind.
    fn take(&self, job: &Job<'_>, local: &Local) -> Result<Taken, Error>;
}
