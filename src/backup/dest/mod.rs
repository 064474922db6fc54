//! The destination interface: where finished backups are kept. Each
//! destination is one file here.
//!
//! Every backup is first written into the local directory ([`local::Local`]),
//! through the integrity sequence in `sink`; that is where engines stream
//! to. Further destinations (a second directory, S3-compatible storage)
//! receive copies of published backups through [`Destination::put`]: the
//! data (when the engine made any) and the sidecar, the sidecar last. A copy
//! counts only when it is complete and its checksum confirmed.

pub mod local;
pub mod s3;

use std::path::Path;

use crate::Error;

/// A published backup, as a destination receives it.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    pub id: &'a str,
    /// The data file or directory; `None` for a restore point.
    pub data: Option<&'a Path>,
    /// The sidecar metadata, copied last.
    pub sidecar: &'a Path,
    /// The data's SHA-256 (a directory's manifest checksum), to confirm the copy.
    pub sha256: &'a str,
}

/// Where a confirmed copy lives, for the metadata and `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The destination, as [`Destination::describe`] says it.
    pub destination: String,
    /// The copy's data location (path, or URL for a remote); the sidecar's
    /// when there is no data.
    pub location: String,
}

/// Somewhere a published backup can be copied to.
pub trait Destination {
    /// The destination in a few words, for messages: `local /srv/backups`,
    /// `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// Stores a copy of `backup`, data first, sidecar last, and returns once
    /// the copy is complete and its checksum confirmed. A failed copy leaves
    /// nothing under a final name.
    fn put(&self, backup: &Published<'_>) -> Result<Copied, Error>;
}
