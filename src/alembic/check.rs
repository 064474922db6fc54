//! The report of `dbguard check-migration`: for each revision a range of
//! upgrades applies (or a downgrade reverts), the destructive operations
//! it holds. Built from alembic's offline render (each finding attributed
//! to the revision whose `-- Running upgrade` or `-- Running downgrade`
//! marker precedes it; alembic's own version-table bookkeeping left out)
//! or, when the render cannot run, from a static scan of each revision's
//! `upgrade()` or `downgrade()`. It is written by the reporters in
//! `crate::report`, like every other report.

use serde::Serialize;

use crate::alembic::render::{Direction, migration_steps};
use crate::alembic::script_dir::{Script, ScriptDir};
use crate::alembic::static_scan;
use crate::sql::{Finding, Scanner};

/// How the operations were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// alembic rendered the SQL offline and the SQL was scanned.
    Rendered,
    /// The revision files' `upgrade()` bodies were read as text.
    Static,
}

/// One revision the range applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionCheck {
    pub revision: String,
    /// The revision it applies on top of; empty for base.
    pub down_revision: String,
    pub message: Option<String>,
    /// The revision file, when the script directory could be read.
    pub path: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationCheck {
    /// The range checked, as given or as worked out (`0003:heads`).
    pub range: String,
    /// True when the range is checked as a downgrade.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub downgrade: bool,
    pub method: Method,
    /// Why the static scan was used, when it was.
    pub note: Option<String>,
    pub revisions: Vec<RevisionCheck>,
}

impl MigrationCheck {
    pub fn destructive_count(&self) -> usize {
        self.revisions.iter().map(|r| r.findings.len()).sum()
    }

    pub fn is_destructive(&self) -> bool {
        self.destructive_count() > 0
    }

    /// From alembic's offline output for the range. `path_of` names a
    /// revision's file, when known.
    pub fn from_render(
        direction: Direction,
        range: &str,
        sql: &str,
        log: &str,
        path_of: impl Fn(&str) -> Option<String>,
    ) -> MigrationCheck {
        let downgrade = direction == Direction::Downgrade;
        let steps = migration_steps(direction, sql, log);
        // Line of each step's marker comment and the revision it applies
        // (or reverts), in order.
        let mark = format!("Running {} ", direction.command());
        let markers: Vec<(u64, String)> = sql
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("--"))
            .filter_map(|(i, l)| {
                let rest = &l[l.find(&mark)? + mark.len()..];
                let (from, to) = rest.split_once("-> ")?;
                let owner = if downgrade { from } else { to };
                Some((i as u64 + 1, owner.trim().to_owned()))
            })
            .collect();
        let mut revisions: Vec<RevisionCheck> = steps
            .iter()
            .map(|s| {
                let (revision, down_revision) = if downgrade {
                    (s.from.clone(), s.to.clone())
                } else {
                    (s.to.clone(), s.from.clone())
                };
                RevisionCheck {
                    path: path_of(&revision),
                    revision,
                    down_revision,
                    message: s.message.clone(),
                    findings: Vec::new(),
                }
            })
            .collect();
        let mut scanner = Scanner::new("/");
        let label = format!("{}.sql", direction.command());
        scanner.scan_bytes(&label, sql.as_bytes(), std::path::Path::new("/"));
        let report = static_scan::without_version_bookkeeping(scanner.finish());
        for f in report.findings {
            let owner = markers
                .iter()
                .rev()
                .find(|(line, _)| *line <= f.line)
                .map(|(_, rev)| rev.as_str());
            let slot = owner
                .and_then(|rev| revisions.iter().position(|r| r.revision == rev))
                .unwrap_or(0);
            if let Some(r) = revisions.get_mut(slot) {
                r.findings.push(f);
            }
        }
        MigrationCheck {
            range: range.to_owned(),
            downgrade,
            method: Method::Rendered,
            note: None,
            revisions,
        }
    }

    /// From the revision files themselves, for when rendering failed.
    /// `display` names a file in findings and in the report.
    pub fn from_static(
        direction: Direction,
        range: &str,
        path: &[&Script],
        note: String,
        display: impl Fn(&std::path::Path) -> String,
    ) -> MigrationCheck {
        let revisions = path
            .iter()
            .map(|s| {
                let shown = display(&s.path);
                let findings = match std::fs::read_to_string(&s.path) {
                    Ok(src) => static_scan::scan_function(&src, direction.command(), &shown),
                    Err(_) => Vec::new(),
                };
                RevisionCheck {
                    revision: s.revision.clone(),
                    down_revision: s.down.join(", "),
                    message: s.message.clone(),
                    path: Some(shown),
                    findings,
                }
            })
            .collect();
        MigrationCheck {
            range: range.to_owned(),
            downgrade: direction == Direction::Downgrade,
            method: Method::Static,
            note: Some(note),
            revisions,
        }
    }
}

/// The revisions a range names, from the script directory: `FROM:TO`
/// (FROM may be `base`), or `TO` alone (from base); `current` replaces an
/// absent FROM when checking pending revisions.
pub fn static_path<'a>(
    dir: &'a ScriptDir,
    from: &[String],
    to: &str,
) -> Result<Vec<&'a Script>, String> {
    dir.upgrade_path(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE users (id SERIAL NOT NULL, nickname TEXT);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE users ADD COLUMN email TEXT;

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0004

ALTER TABLE users DROP COLUMN nickname;

DROP TABLE legacy CASCADE;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0002';

COMMIT;
";

    const LOG: &str = "INFO  [alembic.runtime.migration] Running upgrade  -> 0001, create users
INFO  [alembic.runtime.migration] Running upgrade 0001 -> 0002, add users.email
INFO  [alembic.runtime.migration] Running upgrade 0002 -> 0004, drop users.nickname
";

    fn sample() -> MigrationCheck {
        MigrationCheck::from_render(Direction::Upgrade, "base:head", SQL, LOG, |rev| {
            (rev != "0002").then(|| format!("migrations/versions/{rev}.py"))
        })
    }

    #[test]
    fn findings_belong_to_the_revision_whose_marker_precedes_them() {
        let c = sample();
        let per: Vec<(String, usize)> = c
            .revisions
            .iter()
            .map(|r| (r.revision.clone(), r.findings.len()))
            .collect();
        assert_eq!(
            per,
            vec![("0001".into(), 0), ("0002".into(), 0), ("0004".into(), 2)]
        );
        assert_eq!(c.destructive_count(), 2);
        assert!(c.is_destructive());
    }

    #[test]
    fn downgrades_belong_to_the_reverted_revision_without_the_version_table() {
        let sql = "BEGIN;\n\n-- Running downgrade 0002 -> 0001\n\nALTER TABLE users DROP COLUMN email;\n\nUPDATE alembic_version SET version_num='0001' WHERE alembic_version.version_num = '0002';\n\n-- Running downgrade 0001 -> \n\nDROP TABLE users;\n\nDELETE FROM alembic_version WHERE alembic_version.version_num = '0001';\n\nDROP TABLE alembic_version;\n\nCOMMIT;\n";
        let c = MigrationCheck::from_render(Direction::Downgrade, "0002:base", sql, "", |_| None);
        let per: Vec<(String, String, Vec<String>)> = c
            .revisions
            .iter()
            .map(|r| {
                (
                    r.revision.clone(),
                    r.down_revision.clone(),
                    r.findings.iter().map(|f| f.kind.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            per,
            vec![
                ("0002".into(), "0001".into(), vec!["drop_column".into()]),
                ("0001".into(), "".into(), vec!["drop_table".into()]),
            ]
        );
    }
}
