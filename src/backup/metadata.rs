//! The JSON sidecar `<stem>.json` written beside every backup (DESIGN.md
//! section 5). It is written last, so its presence means the data file is
//! complete; its checksum and size are what `verify` and `restore` trust.
//! It never holds a password: the reason is redacted and the connection is
//! recorded as host, port, user and database only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local};
use serde::{Deserialize, Serialize};

use super::engine::Taken as Dumped;
use super::{Format, Scope};
use crate::Error;
use crate::pgtools::DatabaseFacts;
use crate::target::{Target, redact};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The backup's id: the file stem shared by data file and sidecar.
    pub id: String,
    /// The data file (or directory) name, beside this sidecar.
    pub file: String,
    pub created_at: DateTime<FixedOffset>,
    /// SHA-256 of the data file; for a directory, of its sorted manifest.
    pub sha256: String,
    pub size_bytes: u64,
    pub format: Format,
    /// The engine that took the backup (`pg_dump`); sidecars written
    /// before engines had names were all pg_dump's.
    #[serde(default = "pg_dump_engine")]
    pub engine: String,
    pub database: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub server_version: String,
    pub pg_dump_version: String,
    pub tables: Vec<TableEntry>,
    pub alembic_revision: Option<String>,
    pub scope: Scope,
    pub reason: String,
    pub tool_version: String,
    /// `pg_database_size` when the backup started.
    #[serde(default)]
    pub database_size_bytes: u64,
    /// How long pg_dump and the completeness proof took.
    #[serde(default)]
    pub dump_seconds: f64,
    /// How completeness was proven.
    #[serde(default)]
    pub completeness: String,
    /// Directory format: every file with its size and checksum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// The pgBackRest engine's restore point: what a restore replays WAL
    /// up to. Such a backup has no data file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<super::engine::RestorePoint>,
}

fn pg_dump_engine() -> String {
    super::engine::PgDump::NAME.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// The planner's estimate when the backup was taken (null if unknown).
    pub rows_estimate: Option<i64>,
    /// The exact number of rows in the dump, counted from a plain dump's
    /// COPY data as it streamed; null for other formats.
    #[serde(default)]
    pub rows: Option<i64>,
    /// The order-independent checksum of the table's rows in the dump
    /// (16 hex digits; `pg_dump::CopyCounter` defines it), computed from a
    /// plain dump's COPY data as it streamed; absent for other formats and
    /// in sidecars written before checksums were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl TableEntry {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Metadata {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        dumped: &Dumped,
        target: &Target,
        facts: &DatabaseFacts,
        pg_dump_version: String,
        scope: &Scope,
        reason: &str,
        started_at: DateTime<Local>,
        elapsed: Duration,
    ) -> Metadata {
        let in_scope = |t: &crate::pgtools::TableFact| match scope {
            Scope::Database(_) => true,
            Scope::Tables(names) => names
                .iter()
                .any(|n| *n == t.name || *n == format!("{}.{}", t.schema, t.name)),
        };
        let tables = facts
            .tables
            .iter()
            .filter(|t| {
                in_scope(t)
                    || dumped
                        .rows
                        .contains_key(&(t.schema.clone(), t.name.clone()))
            })
            .map(|t| TableEntry {
                schema: t.schema.clone(),
                name: t.name.clone(),
                rows_estimate: t.rows_estimate,
                rows: dumped
                    .rows
                    .get(&(t.schema.clone(), t.name.clone()))
                    .copied(),
                checksum: dumped
                    .checksums
                    .get(&(t.schema.clone(), t.name.clone()))
                    .cloned(),
            })
            .collect();
        Metadata {
            id: dumped.id.clone(),
            file: dumped
                .path
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            created_at: started_at.fixed_offset(),
            sha256: dumped.sha256.clone(),
            size_bytes: dumped.size_bytes,
            format: dumped.format,
            engine: dumped.engine.to_owned(),
            database: target.dbname.clone(),
            host: target.host.clone(),
            port: target.port,
            user: target.user.clone(),
            server_version: facts.server_version.clone(),
            pg_dump_version,
            tables,
            alembic_revision: facts.alembic_revision.clone(),
            scope: scope.clone(),
            reason: redact(reason),
            tool_version: format!("dbguard {}", env!("CARGO_PKG_VERSION")),
            database_size_bytes: facts.size_bytes,
            dump_seconds: elapsed.as_secs_f64(),
            completeness: dumped.completeness.clone(),
            files: dumped.files.clone(),
            restore_point: dumped.restore_point.clone(),
        }
    }

    /// The sidecar's path for a data file: same stem, `.json`.
    pub fn path_for(data_path: &Path) -> PathBuf {
        data_path.with_extension("json")
    }

    /// Writes the sidecar durably (temp, fsync, rename, fsync of the directory).
    /// The sidecar's bytes: pretty JSON and a final newline.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::BackupFailed(format!("cannot encode metadata: {e}")))?;
        json.push(b'\n');
        Ok(json)
    }

    pub fn read(path: &Path) -> Result<Metadata, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| format!("not valid metadata: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sidecar as dbguard wrote them before engines had names.
    const OLD_SIDECAR: &str = r#"{
        "id": "backup_app_20260101_000000", "file": "backup_app_20260101_000000.sql",
        "created_at": "2026-01-01T00:00:00+00:00", "sha256": "aa", "size_bytes": 2,
        "format": "plain", "database": "app", "host": "localhost", "port": 5432,
        "user": "me", "server_version": "16.4", "pg_dump_version": "pg_dump 16.4",
        "tables": [], "alembic_revision": null, "scope": "database",
        "reason": "test", "tool_version": "0.1.0"
    }"#;

    #[test]
    fn a_sidecar_without_an_engine_was_taken_by_pg_dump_and_says_so_when_rewritten() {
        let meta: Metadata = serde_json::from_str(OLD_SIDECAR).unwrap();
        assert_eq!(meta.engine, "pg_dump");
        let json: serde_json::Value = serde_json::from_slice(&meta.to_json().unwrap()).unwrap();
        assert_eq!(json["engine"], "pg_dump");
    }
}
