//! The alembic guard's effects. A `downgrade` reverts migrations, which
//! usually drops what the upgrades created, so before the real alembic runs
//! it: find the database, read its current revision, have the real alembic
//! render the downgrade's SQL offline and scan it, show the person which
//! revisions are reverted and what they destroy, ask for `DOWNGRADE` (the
//! database's name under `protect`), back up the whole database and record
//! the decision. `shim::run` then execs the real alembic.
//!
//! An `upgrade` is rendered and scanned the same way, but asks only when
//! the SQL holds something destructive (an `op.drop_column`, a raw
//! `DROP`), for the verb found; additive upgrades exec without a prompt.
//! A render that fails (migrations that read data) is treated as
//! destructive, as unreadable SQL is for psql.
//!
//! Every other command returns at once, before any configuration is read
//! or any process started: `current`, `history`, `--help` and `--sql`
//! runs must cost nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::audit::{BYPASS_ENV, Record};
use crate::backup::Scope;
use crate::config::{Config, Policy};
use crate::pgtools::{PgTools, QueryError};
use crate::shim::RealTool;
use crate::shim::alembic::{AlembicArgs, Command as AlembicCommand, Intent};
use crate::shim::alembic_target::{self, FoundUrl};
use crate::shim::chain::Link;
use crate::shim::guard::{self, Decision};
use crate::shim::safeguard::{self, BYPASS_HINT, Protection, record_bypass, write_audit};
use crate::sql::{Problem, ScanReport, Scanner, Severity};
use crate::target::{ConnectionArgs, Target, redact, sqlalchemy_to_libpq};
use crate::{Context, Error};

/// Destructive statements listed before the prompt; the rest are counted.
const SHOWN_FINDINGS: usize = 20;

/// The word a downgrade asks for under the default policy.
pub const DOWNGRADE_WORD: &str = "DOWNGRADE";

/// Runs the guard. `Ok` means: exec the real alembic now.
pub fn guard(ctx: &Context, link: &Link, real: &RealTool) -> Result<(), Error> {
    if link.guarded_upstream() {
        return Ok(());
    }
    let args = AlembicArgs::parse(ctx.args.get(1..).unwrap_or_default());
    let (direction, revision) = match (args.intent(), &args.command) {
        (Intent::Downgrade, Some(AlembicCommand::Downgrade { revision, .. })) => {
            (Direction::Downgrade, revision)
        }
        (Intent::Upgrade, Some(AlembicCommand::Upgrade { revision, .. })) => {
            (Direction::Upgrade, revision)
        }
        _ => return Ok(()),
    };
    if ctx.flag(BYPASS_ENV) {
        record_bypass(ctx, "alembic");
        return Ok(());
    }
    let revision = revision.to_string_lossy().into_owned();
    protect_migration(ctx, &args, direction, &revision, real)
}

/// Which way a migration run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upgrade,
    Downgrade,
}

impl Direction {
    fn command(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
        }
    }

    /// How the summary introduces each revision.
    fn step_verb(self) -> &'static str {
        match self {
            Direction::Upgrade => "applies",
            Direction::Downgrade => "reverts",
        }
    }
}

fn protect_migration(
    ctx: &Context,
    args: &AlembicArgs,
    direction: Direction,
    revision: &str,
    real: &RealTool,
) -> Result<(), Error> {
    let what = format!("alembic {} {revision}", direction.command());
    let mut record = Record::new(ctx, "alembic", "refused");
    let config = Config::load(ctx).map_err(|e| {
        Error::Refused(format!(
            "refused {what}: the configuration cannot be read ({e}); {BYPASS_HINT}"
        ))
    })?;
    if direction == Direction::Upgrade && !config.file.alembic.upgrade_analysis.unwrap_or(true) {
        return Ok(());
    }
    let refuse = |record: &mut Record, why: String| {
        record.decision = "refused".into();
        record.detail = Some(redact(&why));
        write_audit(&config, record);
        Error::Refused(format!("refused {what}: {why}; {BYPASS_HINT}"))
    };
    let target = match resolve_target(ctx, args, &config) {
        Ok(t) => t,
        Err(why) => return Err(refuse(&mut record, why)),
    };
    record.target = Some((&target).into());

    let policy = config.policy_for(&target);
    if policy == Policy::Off {
        if direction == Direction::Downgrade {
            record.decision = "policy_off".into();
            record.detail = Some(format!("policy off for database \"{}\"", target.dbname));
            write_audit(&config, &record);
        }
        return Ok(());
    }
    let tools = match PgTools::resolve(ctx) {
        Ok(tools) => tools,
        Err(e) => return Err(refuse(&mut record, format!("no backup is possible ({e})"))),
    };

    let current = current_revisions(&tools, &target);
    let render = match &current {
        Ok(revs) => render(ctx, args, real, direction, revs, revision),
        Err(e) => Err(format!("the current revision cannot be read ({e})")),
    };
    let (steps, report) = match &render {
        Ok(r) => (r.steps.clone(), Some(r.report.clone())),
        Err(_) => (Vec::new(), None),
    };
    let decision = match direction {
        Direction::Downgrade => {
            guard::decide_whole_database(DOWNGRADE_WORD, &target.dbname, policy)
        }
        Direction::Upgrade => {
            let mut judged = report.clone().unwrap_or_default();
            if let Err(why) = &render {
                // Nothing could be read: the database's name is the word,
                // as for unreadable SQL given to psql.
                judged.push_problem(Problem {
                    severity: Severity::Error,
                    path: "upgrade.sql".into(),
                    line: None,
                    message: why.clone(),
                });
            }
            guard::decide(&judged, &target.dbname, |_| policy, Scope::database())
        }
    };
    let plan = match decision {
        Decision::Guard(plan) => plan,
        Decision::Pass => return Ok(()),
        Decision::Refuse(why) => return Err(refuse(&mut record, why)),
    };
    if let Some(report) = &report {
        record = record.with_findings(&report.findings, report.findings_omitted);
    }
    // An unreachable database is refused before anyone is asked.
    let (_, preflights) = safeguard::check_backups(&tools, &target, &plan, None);
    let preflights = match preflights {
        Ok(ready) => ready,
        Err((database, e)) => {
            return Err(refuse(
                &mut record,
                format!("no backup of \"{database}\" is possible ({e})"),
            ));
        }
    };
    let mut summary = Vec::new();
    Outlook {
        target: &target,
        direction,
        current: current.as_deref().ok(),
        revision,
        steps: &steps,
        report: report.as_ref(),
        render_error: render.as_ref().err().map(String::as_str),
    }
    .print(&mut summary);
    let summary = safeguard::lines(&summary);
    safeguard::ask_back_up_record(
        ctx,
        &Protection {
            config: &config,
            tools: &tools,
            target: &target,
            plan: &plan,
            preflights: &preflights,
            summary,
            reason: safeguard::redacted_command(ctx),
        },
        &mut record,
        &refuse,
    )
}

/// The database alembic will migrate, as a libpq target; `Err` is the
/// refusal reason, saying how to name one.
fn resolve_target(ctx: &Context, args: &AlembicArgs, config: &Config) -> Result<Target, String> {
    let env = |name: &str| ctx.var(name).map(|v| v.to_string_lossy().into_owned());
    let config_url = config.file.alembic.database_url.clone().map(|u| {
        (
            u,
            config
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from(".dbguard.toml")),
        )
    });
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let read_ini = |path: &Path| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let FoundUrl { url, origin } = alembic_target::find_url(args, env, config_url, &cwd, read_ini)
        .map_err(|e| e.to_string())?;
    let uri = sqlalchemy_to_libpq(&url)
        .map_err(|e| format!("the database URL from {origin} is unusable: {e}"))?;
    let conn = ConnectionArgs {
        dbname: Some(uri),
        ..ConnectionArgs::default()
    };
    Target::resolve(&conn, ctx)
        .map_err(|e| redact(&format!("the database URL from {origin} is unusable: {e}")))
}

/// The revisions in the database's version table. An absent table means
/// nothing has been applied yet (an empty list).
fn current_revisions(tools: &PgTools, target: &Target) -> Result<Vec<String>, String> {
    // Selecting from a missing table is an error, not an empty result, so
    // ask first whether it exists (on the search_path, as alembic looks).
    let exists = tools
        .query(target, "select to_regclass('alembic_version') is not null")
        .map_err(query_error)?;
    if exists.first().and_then(|r| r.first()).map(String::as_str) != Some("t") {
        return Ok(Vec::new());
    }
    let rows = tools
        .query(target, "select version_num from alembic_version order by 1")
        .map_err(query_error)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

fn query_error(e: QueryError) -> String {
    match e {
        QueryError::Failed { detail, .. } => redact(&detail),
        QueryError::Spawn(p, e) => format!("{}: {e}", p.display()),
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
struct Render {
    steps: Vec<Step>,
    report: ScanReport,
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

/// Has the real alembic print the migration's SQL (`--sql` touches no
/// database) with the same global options, so env.py, `-x` and the ini
/// section are the ones the real run will use.
fn render(
    ctx: &Context,
    args: &AlembicArgs,
    real: &RealTool,
    direction: Direction,
    current: &[String],
    target_revision: &str,
) -> Result<Render, String> {
    let range = render_range(direction, current, target_revision)?;
    let mut cmd = Command::new(&real.path);
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
        .arg(&range)
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
        .map_err(|e| format!("{} could not be started ({e})", real.path.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(format!("the offline render failed: {}", redact(why.trim())));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut scanner = Scanner::new(ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/")));
    let label = format!("{}.sql", direction.command());
    scanner.scan_bytes(&label, &out.stdout, Path::new("/"));
    Ok(Render {
        steps: migration_steps(direction, &stdout, &stderr),
        report: scanner.finish(),
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

/// What the person sees before the question.
struct Outlook<'a> {
    target: &'a Target,
    direction: Direction,
    /// The revisions applied now; `None` when they could not be read.
    current: Option<&'a [String]>,
    /// The revision argument as given (`-1`, `head`, ...).
    revision: &'a str,
    steps: &'a [Step],
    report: Option<&'a ScanReport>,
    render_error: Option<&'a str>,
}

impl Outlook<'_> {
    fn print(&self, out: &mut impl io::Write) {
        let Outlook {
            target,
            direction,
            current,
            revision,
            steps,
            report,
            render_error,
        } = *self;
        let from = match current {
            Some([]) => "no revision".to_owned(),
            Some(revs) => revs.join(", "),
            None => "an unknown revision".to_owned(),
        };
        let _ = writeln!(
            out,
            "dbguard: alembic is about to {} database \"{}\" (host {}, port {}, user {}) from {from} to {revision}:",
            direction.command(),
            target.dbname,
            target.host,
            target.port,
            target.user
        );
        for s in steps {
            let from = if s.from.is_empty() { "base" } else { &s.from };
            let to = if s.to.is_empty() { "base" } else { &s.to };
            let message = s
                .message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} {from} -> {to}{message}", direction.step_verb());
        }
        if let Some(why) = render_error {
            let _ = writeln!(
                out,
                "  cannot tell what it will run: {why}; treating it as destructive"
            );
        }
        if let Some(report) = report {
            if report.findings.is_empty() && !report.has_errors() {
                let _ = writeln!(out, "  no destructive statement found in the rendered SQL");
            }
            safeguard::write_findings(report, SHOWN_FINDINGS, |f| format!("line {}", f.line), out);
            for p in report
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
            {
                let _ = writeln!(
                    out,
                    "  cannot judge part of the rendered SQL: {}",
                    p.message
                );
            }
        }
        let _ = writeln!(
            out,
            "  backup first: the whole database \"{}\"",
            target.dbname
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFLINE_SQL: &str = "BEGIN;

-- Running downgrade 0004 -> 0003

ALTER TABLE users ADD COLUMN nickname TEXT;

UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0004';

-- Running downgrade 0003 -> 0002

DROP TABLE orders;

-- Running downgrade 0001 -> 

DROP TABLE users;

COMMIT;
";

    const LOG: &str = "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.
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

    #[test]
    fn the_summary_names_revisions_findings_and_the_backup() {
        let target = Target::explicit("db", 5432, "app", "shop");
        let report = crate::sql::scan_str(OFFLINE_SQL);
        let mut out = Vec::new();
        Outlook {
            target: &target,
            direction: Direction::Downgrade,
            current: Some(&["0004".to_owned()]),
            revision: "base",
            steps: &migration_steps(Direction::Downgrade, OFFLINE_SQL, LOG),
            report: Some(&report),
            render_error: None,
        }
        .print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("downgrade database \"shop\""), "{text}");
        assert!(text.contains("from 0004 to base"), "{text}");
        assert!(
            text.contains("reverts 0004 -> 0003 (drop users.nickname)"),
            "{text}"
        );
        assert!(
            text.contains("reverts 0001 -> base (create users)"),
            "{text}"
        );
        assert!(text.contains("drop_table orders"), "{text}");
        assert!(text.contains("drop_table users"), "{text}");
        assert!(
            text.contains("backup first: the whole database \"shop\""),
            "{text}"
        );

        let mut out = Vec::new();
        Outlook {
            target: &target,
            direction: Direction::Downgrade,
            current: None,
            revision: "-1",
            steps: &[],
            report: None,
            render_error: Some("the offline render failed: boom"),
        }
        .print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("from an unknown revision to -1"), "{text}");
        assert!(
            text.contains("the offline render failed: boom; treating it as destructive"),
            "{text}"
        );
    }
}
