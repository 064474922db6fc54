//! The report of `dbguard check-migration`: for each revision a range of
//! upgrades applies (or a downgrade reverts), the destructive operations
//! it holds. Built from alembic's offline render (each finding attributed
//! to the revision whose `-- Running upgrade` or `-- Running downgrade`
//! marker precedes it; alembic's own version-table bookkeeping left out)
//! or, when the range cannot be rendered, revision by revision: each
//! revision alembic renders on its own is scanned as SQL, and only those
//! it cannot render fall back to a static scan of their `upgrade()` or
//! `downgrade()`, named in the report with alembic's last error line. It
//! is written by the reporters in `crate::report`, like every other report.

use serde::Serialize;

use crate::alembic::render::{Direction, RenderedSql, migration_steps, scan_rendered};
use crate::alembic::script_dir::{Script, ScriptDir};
use crate::alembic::static_scan;
use crate::sql::Finding;

/// How the operations were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// alembic rendered the SQL offline and the SQL was scanned.
    Rendered,
    /// The revision files' `upgrade()` bodies were read as text.
    Static,
    /// The range did not render as a whole: each revision was rendered on
    /// its own, and the ones that failed were read as text.
    PerRevision,
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
    /// How this revision's operations were found (`rendered` or `static`).
    pub method: Method,
    /// Why this revision was scanned statically: alembic's last error line
    /// when it rendered the revision on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
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
                    method: Method::Rendered,
                    fallback: None,
                    findings: Vec::new(),
                }
            })
            .collect();
        let report = scan_rendered(direction, sql);
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
            .map(|s| static_revision(direction, s, None, &display))
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

/// One revision read from its file: the static scan of its `upgrade()` or
/// `downgrade()`; `fallback` says why it was not rendered.
fn static_revision(
    direction: Direction,
    script: &Script,
    fallback: Option<String>,
    display: &impl Fn(&std::path::Path) -> String,
) -> RevisionCheck {
    let shown = display(&script.path);
    let findings = match std::fs::read_to_string(&script.path) {
        Ok(src) => static_scan::scan_function(&src, direction.command(), &shown),
        Err(_) => Vec::new(),
    };
    RevisionCheck {
        revision: script.revision.clone(),
        down_revision: script.down.join(", "),
        message: script.message.clone(),
        path: Some(shown),
        method: Method::Static,
        fallback,
        findings,
    }
}

/// The name findings in the SQL alembic rendered for one revision alone
/// carry: their lines count from the start of that SQL.
pub fn rendered_label(direction: Direction, revision: &str) -> String {
    format!("{revision}.{}.sql", direction.command())
}

/// The range alembic renders one revision with, on its own: from its
/// parent to it (or back). `None` for a merge, which has several parents
/// and no single range.
pub fn revision_range(direction: Direction, script: &Script) -> Option<String> {
    let parent = match script.down.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        _ => return None,
    };
    let rev = &script.revision;
    Some(match (direction, parent) {
        (Direction::Upgrade, None) => rev.clone(),
        (Direction::Upgrade, Some(p)) => format!("{p}:{rev}"),
        (Direction::Downgrade, None) => format!("{rev}:base"),
        (Direction::Downgrade, Some(p)) => format!("{rev}:{p}"),
    })
}

impl MigrationCheck {
    /// For a range alembic could not render as a whole (`why`): each
    /// revision on `path` is rendered on its own by `render_one` (given
    /// the revision's range, see `revision_range`) and scanned as SQL;
    /// only the revisions that fail there are scanned statically, each
    /// with alembic's error as its `fallback`. The note names them.
    pub fn per_revision(
        direction: Direction,
        range: &str,
        path: &[&Script],
        why: &str,
        render_one: impl Fn(&str) -> Result<RenderedSql, String>,
        display: impl Fn(&std::path::Path) -> String,
    ) -> MigrationCheck {
        let mut revisions = Vec::new();
        for script in path {
            let rendered = match revision_range(direction, script) {
                // A run of one revision has just failed as a whole: the
                // same render would fail the same way.
                Some(_) if path.len() == 1 => Err(why.to_owned()),
                Some(one) => render_one(&one).map(|r| (one, r)),
                None => Err("a merge revision is not rendered on its own".to_owned()),
            };
            let fallback = match rendered {
                Ok((one, r)) => {
                    let shown = display(&script.path);
                    let check =
                        MigrationCheck::from_render(direction, &one, &r.sql, &r.log, |_| {
                            Some(shown.clone())
                        });
                    let mut found: Vec<RevisionCheck> = check
                        .revisions
                        .into_iter()
                        .filter(|c| c.revision == script.revision)
                        .collect();
                    if let Some(mut own) = found.pop() {
                        own.message = own.message.or_else(|| script.message.clone());
                        own.down_revision = script.down.join(", ");
                        // Lines count in this revision's own SQL: say so.
                        for f in &mut own.findings {
                            f.path = rendered_label(direction, &script.revision);
                        }
                        revisions.push(own);
                        continue;
                    }
                    // alembic rendered something that did not run this
                    // revision: its SQL says nothing about it.
                    format!(
                        "alembic's render of {one} did not run revision {}",
                        script.revision
                    )
                }
                Err(e) => e,
            };
            let last = fallback
                .strip_prefix("the offline render failed: ")
                .unwrap_or(&fallback)
                .to_owned();
            revisions.push(static_revision(direction, script, Some(last), &display));
        }
        let fell_back: Vec<String> = revisions
            .iter()
            .filter_map(|r| {
                r.fallback
                    .as_ref()
                    .map(|why| format!("{} ({why})", r.revision))
            })
            .collect();
        let all_static = !revisions.is_empty() && fell_back.len() == revisions.len();
        let note = if fell_back.is_empty() {
            format!("{why}; every revision rendered on its own")
        } else {
            let how = if path.len() > 1 {
                "rendered revision by revision, and "
            } else {
                ""
            };
            format!(
                "{why}; {how}scanned the {}() of {} statically: {}",
                direction.command(),
                if fell_back.len() == 1 {
                    "1 revision that cannot be rendered offline".to_owned()
                } else {
                    format!(
                        "{} revisions that cannot be rendered offline",
                        fell_back.len()
                    )
                },
                fell_back.join("; ")
            )
        };
        MigrationCheck {
            range: range.to_owned(),
            downgrade: direction == Direction::Downgrade,
            method: if all_static {
                Method::Static
            } else {
                Method::PerRevision
            },
            note: Some(note),
            revisions,
        }
    }

    /// The revisions that fell back to a static scan, with why.
    pub fn fallbacks(&self) -> Vec<(String, String)> {
        self.revisions
            .iter()
            .filter_map(|r| Some((r.revision.clone(), r.fallback.clone()?)))
            .collect()
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

    #[test]
    fn each_revision_renders_on_its_own_and_only_failures_are_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            path
        };
        let script = |rev: &str, down: &[&str], path: std::path::PathBuf| Script {
            revision: rev.into(),
            down: down.iter().map(|d| (*d).to_owned()).collect(),
            message: None,
            path,
        };
        let first = script(
            "0001",
            &[],
            write("0001.py", "def upgrade():\n    op.create_table('t')\n"),
        );
        let second = script(
            "0002",
            &["0001"],
            write(
                "0002.py",
                "def upgrade():\n    rows = op.get_bind().execute(sa.text('select 1'))\n    op.drop_column('t', 'c')\n",
            ),
        );
        assert_eq!(revision_range(Direction::Upgrade, &first).unwrap(), "0001");
        assert_eq!(
            revision_range(Direction::Upgrade, &second).unwrap(),
            "0001:0002"
        );
        assert_eq!(
            revision_range(Direction::Downgrade, &first).unwrap(),
            "0001:base"
        );
        let merge = script("0003", &["0001", "0002"], dir.path().join("0003.py"));
        assert!(revision_range(Direction::Upgrade, &merge).is_none());

        let c = MigrationCheck::per_revision(
            Direction::Upgrade,
            "base:head",
            &[&first, &second],
            "the offline render failed: boom",
            |range| match range {
                "0001" => Ok(RenderedSql {
                    sql: "-- Running upgrade  -> 0001\n\nDROP TABLE old;\n".into(),
                    log: String::new(),
                }),
                _ => Err("the offline render failed: NotImplementedError: no rows offline".into()),
            },
            |p| p.file_name().unwrap().to_string_lossy().into_owned(),
        );
        assert_eq!(c.method, Method::PerRevision);
        let per: Vec<(&str, Method, Option<&str>, Vec<&str>)> = c
            .revisions
            .iter()
            .map(|r| {
                (
                    r.revision.as_str(),
                    r.method,
                    r.fallback.as_deref(),
                    r.findings.iter().map(|f| f.kind.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            per,
            vec![
                ("0001", Method::Rendered, None, vec!["drop_table"]),
                (
                    "0002",
                    Method::Static,
                    Some("NotImplementedError: no rows offline"),
                    vec!["drop_column"]
                ),
            ]
        );
        assert_eq!(c.revisions[0].findings[0].path, "0001.upgrade.sql");
        assert_eq!(c.revisions[1].findings[0].path, "0002.py");
        let note = c.note.unwrap();
        assert!(
            note.contains("0002 (NotImplementedError: no rows offline)"),
            "{note}"
        );
        assert!(!note.contains("0001 ("), "{note}");
    }
}
