//! The formats a pg_dump backup is written in, as the configuration, the
//! command line and the metadata name them. Defined below both the
//! configuration (which names a default) and the backup store (which writes
//! them), so neither imports the other for it; `backup::Format` re-exports it.

use serde::{Deserialize, Serialize};

/// pg_dump's output formats dbguard offers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// SQL text with DROP ... IF EXISTS first; restorable with psql.
    #[default]
    Plain,
    /// pg_dump's compressed archive; restorable with pg_restore.
    Custom,
    /// One file per table in a directory; allows parallel dumps (-j).
    Directory,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Plain, Format::Custom, Format::Directory];

    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Custom => "custom",
            Format::Directory => "directory",
        }
    }

    /// The extension of the backup's data file (a directory for `directory`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Plain => "sql",
            Format::Custom => "dump",
            Format::Directory => "dir",
        }
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
