//! Naming a backup on the command line: the one place that turns what a
//! person typed (`latest`, `latest:DB`, a full id, its short form without
//! `backup_`, a file name, or any unique prefix of these) into one backup.
//! Every command taking an id (`restore`, `verify`, ...) goes through
//! [`resolve`], so they all accept the same spellings and fail the same way.

use std::path::Path;

use super::Format;
use super::store::Entry;
use crate::Error;

/// The prefix every backup id starts with; the short id leaves it out.
const ID_PREFIX: &str = "backup_";

/// Candidates listed in an "ambiguous prefix" error before the rest are counted.
const MAX_CANDIDATES: usize = 8;

/// The id as `dbguard list` shows it: without the `backup_` every id shares.
pub fn short_id(id: &str) -> &str {
    id.strip_prefix(ID_PREFIX).unwrap_or(id)
}

/// The backup `wanted` names among `entries` (newest first, as
/// `Store::entries` returns them). `Ok(None)` when nothing matches; an
/// error when a prefix matches more than one backup, listing them.
pub fn resolve(entries: &[Entry], wanted: &str) -> Result<Option<Entry>, Error> {
    let wanted = wanted.trim();
    if wanted == "latest" {
        return Ok(entries.iter().find(|e| e.meta().is_some()).cloned());
    }
    if let Some(database) = wanted.strip_prefix("latest:") {
        return Ok(entries
            .iter()
            .find(|e| e.meta().is_some_and(|m| m.database == database))
            .cloned());
    }
    let stem = file_stem(wanted);
    if stem.is_empty() {
        return Ok(None);
    }
    // An exact id always wins, even when it is also a prefix of a longer one
    // (`backup_app_20260101_120000` and `..._120000_2`).
    let exact = |e: &&Entry| e.id == stem || short_id(&e.id) == stem;
    if let Some(entry) = entries.iter().find(exact) {
        return Ok(Some(entry.clone()));
    }
    let matches: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.id.starts_with(stem) || short_id(&e.id).starts_with(stem))
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        many => {
            let mut listed: Vec<&str> = many
                .iter()
                .take(MAX_CANDIDATES)
                .map(|e| short_id(&e.id))
                .collect();
            if many.len() > MAX_CANDIDATES {
                listed.push("...");
            }
            Err(Error::Usage(format!(
                "{wanted:?} matches {} backups: {}; type more of the id, or use latest or latest:DATABASE",
                many.len(),
                listed.join(", ")
            )))
        }
    }
}

/// A data or sidecar file name (or path) stands for its backup's id.
fn file_stem(wanted: &str) -> &str {
    let name = Path::new(wanted)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(wanted);
    match name.rsplit_once('.') {
        Some((stem, ext)) if ext == "json" || Format::from_extension(ext).is_some() => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Store;
    use crate::backup::metadata::Metadata;

    /// Entries as the store returns them: newest first. `None` metadata is
    /// an incomplete backup.
    fn entries(specs: &[(&str, Option<&str>)]) -> Vec<Entry> {
        specs
            .iter()
            .map(|(id, database)| Entry {
                id: (*id).to_owned(),
                data: Some(format!("/b/{id}.sql").into()),
                sidecar: database.map(|_| format!("/b/{id}.json").into()),
                metadata: database.map(|db| Ok(metadata(id, db))),
            })
            .collect()
    }

    fn metadata(id: &str, database: &str) -> Metadata {
        serde_json::from_value(serde_json::json!({
            "id": id, "file": format!("{id}.sql"), "created_at": "2026-01-01T12:00:00+00:00",
            "sha256": "00", "size_bytes": 1, "format": "plain", "database": database,
            "host": "localhost", "port": 5432, "user": "u", "server_version": "15",
            "pg_dump_version": "15", "tables": [], "alembic_revision": null,
            "scope": "database", "reason": "r", "tool_version": "0"
        }))
        .expect("metadata literal matches the struct")
    }

    fn sample() -> Vec<Entry> {
        entries(&[
            ("backup_shop_20260102_090000", None),
            ("backup_app_20260101_120000_2", Some("app")),
            ("backup_app_20260101_120000", Some("app")),
            ("backup_shop_20251231_080000", Some("shop")),
        ])
    }

    fn id(wanted: &str) -> Option<String> {
        resolve(&sample(), wanted).unwrap().map(|e| e.id)
    }

    #[test]
    fn latest_is_the_newest_complete_backup() {
        assert_eq!(
            id("latest").as_deref(),
            Some("backup_app_20260101_120000_2")
        );
        assert_eq!(
            id("latest:shop").as_deref(),
            Some("backup_shop_20251231_080000")
        );
        assert_eq!(id("latest:nope"), None);
    }

    #[test]
    fn full_short_and_file_names_name_one_backup() {
        for wanted in [
            "backup_app_20260101_120000",
            "app_20260101_120000",
            "backup_app_20260101_120000.sql",
            "/elsewhere/backup_app_20260101_120000.json",
        ] {
            assert_eq!(
                id(wanted).as_deref(),
                Some("backup_app_20260101_120000"),
                "{wanted}"
            );
        }
    }

    #[test]
    fn a_unique_prefix_is_enough() {
        assert_eq!(
            id("shop_2025").as_deref(),
            Some("backup_shop_20251231_080000")
        );
        assert_eq!(
            id("backup_shop_2026").as_deref(),
            Some("backup_shop_20260102_090000")
        );
        assert_eq!(id("nothing"), None);
        assert_eq!(id(""), None);
    }

    #[test]
    fn an_ambiguous_prefix_lists_the_candidates() {
        let err = resolve(&sample(), "shop").unwrap_err().to_string();
        assert_eq!(
            err,
            "\"shop\" matches 2 backups: shop_20260102_090000, shop_20251231_080000; \
             type more of the id, or use latest or latest:DATABASE"
        );
        assert!(resolve(&sample(), "app_2026").is_err());
    }

    #[test]
    fn the_store_resolves_through_here() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(store.find("latest").unwrap().is_none());
    }
}
