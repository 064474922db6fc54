//! Rendering an alembic migration offline: the revision range to render
//! (`render_range`), the real alembic's `--sql` output for it
//! (`render_sql`), the revisions it runs as alembic reports them
//! (`migration_steps`), and that SQL scanned for destructive statements
//! (`render`). alembic touches no database in offline mode.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Context;
use crate::alembic::args::AlembicArgs;
use crate::sql::{ScanReport, Scanner};
use crate::target::redact;

/// Which way a migration run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upgrade,
    Downgrade,
}

impl Direction {
    pub fn command(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
        }
    }

    /// How the summary introduces each revision.
    pub fn step_verb(self) -> &'static str {
        match self {
            Direction::Upgrade => "applies",
            Direction::Downgrade => "reverts",
        }
    }
}

/// One revision a migration run applies or reverts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub from: String,
    /// Empty for base (before the first revision).
    pub to: String,
    /// The revision's message, when alembic logged it.
    pub message: Option<String>,
}

/// The offline render and what the scan found in it.
#[derive(Debug, Clone)]
pub struct Render {
    pub steps: Vec<Step>,
    pub report: ScanReport,
}

/// The revision range to render: offline mode cannot read the version
/// table, so the current revision goes in front. `Err` when there is no
/// single starting point.
pub fn render_range(
    direction: Direction,
    current: &[String],
    target_revision: &str,
) -> Result<String, String> {
    match (current, direction) {
        ([one], _) => Ok(format!("{one}:{target_revision}")),
        // Nothing applied yet: an upgrade renders from the start.
        ([], Direction::Upgrade) => Ok(target_revision.to_owned()),
        ([], Direction::Downgrade) => {
            Err("the database has no revision applied; there is nothing to downgrade".into())
        }
        (_, _) => Err(format!(
            "the database is at several heads ({}); offline rendering needs one",
            current.join(", ")
        )),
    }
}

/// Has the real alembic render the migration offline and scans the SQL.
pub fn render(
    ctx: &Context,
    args: &AlembicArgs,
    alembic: &Path,
    direction: Direction,
    current: &[String],
    target_revision: &str,
) -> Result<Render, String> {
    let range = render_range(direction, current, target_revision)?;
    let rendered = render_sql(ctx, args, alembic, direction, &range)?;
    Ok(Render {
        steps: migration_steps(direction, &rendered.sql, &rendered.log),
        report: scan_rendered(direction, &rendered.sql),
    })
}

/// The destructive statements in alembic's rendered SQL. Unlike a psql
/// script's, a drop or truncate of a table an earlier statement created
/// counts: a run through several revisions created it in one and destroys
/// it in another, and on a database already at the earlier revision the
/// table holds rows by then. alembic's own version-table bookkeeping is
/// left out.
pub fn scan_rendered(direction: Direction, sql: &str) -> ScanReport {
    let mut scanner = Scanner::new(PathBuf::from("/"));
    let label = format!("{}.sql", direction.command());
    scanner.scan_bytes(&label, sql.as_bytes(), Path::new("/"));
    let mut report = scanner.finish();
    let created_here = std::mem::take(&mut report.created_here);
    report
        .findings
        .extend(created_here.into_iter().map(|mut f| {
            f.created_in_input = false;
            f
        }));
    report.findings.sort_by_key(|f| f.line);
    crate::alembic::static_scan::without_version_bookkeeping(report)
}

/// What alembic printed for an offline run: the SQL and its log.
#[derive(Debug, Clone)]
pub struct RenderedSql {
    pub sql: String,
    pub log: String,
}

/// Has the real alembic print the migration's SQL for `range` (`--sql`
/// touches no database) with the same global options, so env.py, `-x` and
/// the ini section are the ones the real run will use. `Err` holds the
/// last line alembic said, passwords removed.
pub fn render_sql(
    ctx: &Context,
    args: &AlembicArgs,
    alembic: &Path,
    direction: Direction,
    range: &str,
) -> Result<RenderedSql, String> {
    let mut cmd = Command::new(alembic);
    for c in &args.configs {
        cmd.arg("-c").arg(c);
    }
    if let Some(n) = &args.name {
        cmd.arg("-n").arg(n);
    }
    for x in &args.x_args {
        cmd.arg("-x").arg(x);
    }
    cmd.arg(direction.command())
        .arg(range)
        .arg("--sql")
        .env_clear()
        .envs(ctx.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &ctx.cwd {
        cmd.current_dir(cwd);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{} could not be started ({e})", alembic.display()))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let why = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(format!("the offline render failed: {}", redact(why.trim())));
    }
    Ok(RenderedSql {
        sql: String::from_utf8_lossy(&out.stdout).into_owned(),
        log,
    })
}

/// The revisions run, from alembic's offline output: the SQL carries
/// `-- Running downgrade X -> Y` (or `upgrade`) comments, and its log
/// (unless `-q`) repeats them with the revision's message. From base, the
/// left side is empty.
pub fn migration_steps(direction: Direction, sql: &str, log: &str) -> Vec<Step> {
    let mark = format!("Running {} ", direction.command());
    let parse = |line: &str| -> Option<Step> {
        let rest = &line[line.find(&mark)? + mark.len()..];
        let (from, rest) = rest.split_once("-> ")?;
        let (to, message) = match rest.split_once(", ") {
            Some((to, m)) => (to, Some(m.trim().to_owned())),
            None => (rest, None),
        };
        Some(Step {
            from: from.trim().to_owned(),
            to: to.trim().to_owned(),
            message: message.filter(|m| !m.is_empty()),
        })
    };
    let mut steps: Vec<Step> = sql
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .filter_map(parse)
        .collect();
    for logged in log.lines().filter_map(parse) {
        match steps
            .iter_mut()
            .find(|s| s.from == logged.from && s.to == logged.to)
        {
            Some(s) => s.message = s.message.take().or(logged.message),
            None => steps.push(logged),
        }
    }
    steps
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const OFFLINE_SQL: &str = "BEGIN;

-- Running downgrade 0004 -> 0003

ALTER TABLE users ADD COLUMN nickname TEXT;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0004';

-- Running downgrade 0003 -> 0002

DROP TABLE orders;

-- Running downgrade 0001 -> 

DROP TABLE users;

COMMIT;
";

    pub(crate) const LOG: &str = "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.
INFO  [alembic.runtime.migration] Running downgrade 0004 -> 0003, drop users.nickname
INFO  [alembic.runtime.migration] Running downgrade 0003 -> 0002, create orders, with a comma
INFO  [alembic.runtime.migration] Running downgrade 0001 -> , create users
";

    #[test]
    fn steps_come_from_the_sql_comments_with_messages_from_the_log() {
        let steps = migration_steps(Direction::Downgrade, OFFLINE_SQL, LOG);
        assert_eq!(
            steps,
            vec![
                Step {
                    from: "0004".into(),
                    to: "0003".into(),
                    message: Some("drop users.nickname".into())
                },
                Step {
                    from: "0003".into(),
                    to: "0002".into(),
                    message: Some("create orders, with a comma".into())
                },
                Step {
                    from: "0001".into(),
                    to: "".into(),
                    message: Some("create users".into())
                },
            ]
        );
        // Under -q there is no log: the comments alone still list the steps.
        let quiet = migration_steps(Direction::Downgrade, OFFLINE_SQL, "");
        assert_eq!(quiet.len(), 3);
        assert!(quiet.iter().all(|s| s.message.is_none()));
        // A statement that merely mentions the phrase is not a step.
        assert!(
            migration_steps(
                Direction::Downgrade,
                "SELECT 'Running downgrade a -> b';",
                ""
            )
            .is_empty()
        );
    }

    #[test]
    fn upgrades_from_base_and_render_ranges() {
        let sql = "-- Running upgrade  -> 0001\n\nCREATE TABLE users (id INTEGER);\n\n-- Running upgrade 0001 -> 0002\n";
        let steps = migration_steps(Direction::Upgrade, sql, "");
        assert_eq!(steps.len(), 2);
        assert_eq!((steps[0].from.as_str(), steps[0].to.as_str()), ("", "0001"));
        assert_eq!(
            (steps[1].from.as_str(), steps[1].to.as_str()),
            ("0001", "0002")
        );
        // Downgrade markers are not upgrade steps.
        assert!(migration_steps(Direction::Upgrade, OFFLINE_SQL, LOG).is_empty());

        let one = ["0003".to_owned()];
        assert_eq!(
            render_range(Direction::Upgrade, &one, "head").unwrap(),
            "0003:head"
        );
        assert_eq!(
            render_range(Direction::Downgrade, &one, "-1").unwrap(),
            "0003:-1"
        );
        assert_eq!(render_range(Direction::Upgrade, &[], "+2").unwrap(), "+2");
        assert!(render_range(Direction::Downgrade, &[], "-1").is_err());
        let two = ["a1".to_owned(), "b2".to_owned()];
        let err = render_range(Direction::Upgrade, &two, "heads").unwrap_err();
        assert!(err.contains("several heads (a1, b2)"), "{err}");
    }
}
