//! The alembic guard: what protecting an alembic command takes. A
//! `downgrade` reverts migrations, which usually drops what the upgrades
//! created, so before the real alembic runs: find the database, read its
//! current revision, have the real alembic render the downgrade's SQL
//! offline and scan it (`crate::alembic`), and plan its protection — the
//! pipeline (`protect.rs`) shows which revisions are reverted and what they
//! destroy, asks for `DOWNGRADE` (the database's name under `protect`),
//! backs up the whole database and records the decision; `launch` then
//! execs the real alembic.
//!
//! An `upgrade` is rendered and scanned the same way, but asks only when
//! the SQL holds something destructive (an `op.drop_column`, a raw
//! `DROP`), for the verb found; additive upgrades exec without a prompt.
//! A render that fails (migrations that read data) is treated as
//! destructive, as unreadable SQL is for psql; the revision files are then
//! listed and scanned statically, for the person to see what will run. An
//! upgrade the revision files show to apply nothing execs at once, and so
//! does an upgrade of a database holding no user table and no row (the
//! same catalog query that reads the version table tells; audited as a
//! pass with that reason).
//!
//! `stamp` rewrites the version table without running anything: it asks
//! for `STAMP` and backs up first. `revision --autogenerate` is the one
//! command that runs as a child: afterwards the new file's destructive
//! operations are listed for review.
//!
//! Every other command launches at once, before any configuration is read
//! or any process started: `current`, `history`, `--help` and `--sql`
//! runs must cost nothing.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::alembic::args::{AlembicArgs, Command as AlembicCommand, Intent};
use crate::alembic::check::{Method, MigrationCheck};
use crate::alembic::project::{
    migration_files, nothing_to_apply, per_revision, project_locations, read_project,
};
use crate::alembic::render::{Direction, Step, render};
use crate::alembic::static_scan;
use crate::alembic::url::resolve_target;
use crate::alembic::version_table::{DatabaseState, VERSION_QUERY, database_state, revisions_of};
use crate::audit::{Outcome, Record};
use crate::backup::Scope;
use crate::config::{Config, Policy};
use crate::error::Refusal;
use crate::pgtools::PgTools;
use crate::shim::RealTool;
use crate::shim::chain::{CHAIN_ENV, Link};
use crate::shim::guard::{self, Decision};
use crate::shim::launch::Launch;
use crate::shim::protect::{self, View};
use crate::shim::spawn;
use crate::shim::{Invocation, Plan};
use crate::sql::{Problem, ScanReport, Severity};
use crate::target::Target;
use crate::{ARGV0_ENV, Context, Error};

/// Destructive statements listed before the prompt; the rest are counted.
const SHOWN_FINDINGS: usize = 20;

/// The word a downgrade asks for under the default policy.
pub const DOWNGRADE_WORD: &str = "DOWNGRADE";

/// Plans an alembic command: a downgrade, an upgrade with something
/// destructive in it, and a stamp are protected; `revision
/// --autogenerate` runs as a child and its new file is reviewed; every
/// other command launches at once.
pub fn assess<'a>(inv: &Invocation<'a>) -> Plan<'a> {
    let ctx = inv.ctx;
    let args = AlembicArgs::parse(ctx.args.get(1..).unwrap_or_default());
    let (direction, revision) = match (args.intent(), &args.command) {
        (Intent::Autogenerate, _) => {
            let (link, real) = (inv.link, inv.real);
            return Plan::Pass(Box::new(move || {
                review_autogenerate(ctx, link, real, &args)
            }));
        }
        (Intent::Downgrade, Some(AlembicCommand::Downgrade { revision, .. })) => {
            (Direction::Downgrade, revision)
        }
        (Intent::Upgrade, Some(AlembicCommand::Upgrade { revision, .. })) => {
            (Direction::Upgrade, revision)
        }
        (
            Intent::Stamp,
            Some(AlembicCommand::Stamp {
                revisions, purge, ..
            }),
        ) => {
            let revisions: Vec<String> = revisions
                .iter()
                .map(|r| r.to_string_lossy().into_owned())
                .collect();
            return assess_stamp(ctx, &args, revisions, *purge);
        }
        _ => return Plan::launch(),
    };
    let revision = revision.to_string_lossy().into_owned();
    assess_migration(ctx, &args, direction, revision, inv.real)
}

fn assess_migration(
    ctx: &Context,
    args: &AlembicArgs,
    direction: Direction,
    revision: String,
    real: &RealTool,
) -> Plan<'static> {
    let what = format!("alembic {} {revision}", direction.command());
    let config = match load_config(&what, ctx) {
        Ok(config) => config,
        Err(refusal) => return Plan::Refuse(refusal),
    };
    if direction == Direction::Upgrade && !config.file.alembic.upgrade_analysis.unwrap_or(true) {
        return Plan::launch();
    }
    let target = match resolve_target(ctx, args, &config) {
        Ok(t) => t,
        Err(why) => return Plan::Refuse(Refusal::guarded(&what, why)),
    };
    let policy = config.policy_for(&target);
    let mut migration = Migration {
        what,
        target,
        direction,
        revision: revision.clone(),
        current: Err(String::new()),
        steps: Vec::new(),
        report: None,
        render_error: None,
        fallbacks: Vec::new(),
        judged: ScanReport::default(),
    };
    if policy == Policy::Off {
        if direction == Direction::Downgrade {
            // Recorded as `policy_off` by the pipeline; nothing is read.
            return Plan::protect(migration);
        }
        return Plan::launch();
    }
    let tools = match PgTools::resolve(ctx) {
        Ok(tools) => tools,
        Err(e) => {
            return Plan::Refuse(Refusal::guarded(
                &migration.what,
                format!("no backup is possible ({e})"),
            ));
        }
    };

    let state = database_state(&tools, &migration.target);
    if direction == Direction::Upgrade
        && let Ok(DatabaseState {
            holds_user_data: false,
            ..
        }) = &state
    {
        // A fresh database (a first deploy, a CI run): no table, no row,
        // nothing an upgrade could lose, so nothing to ask or back up.
        let mut record = Record::new(ctx, "alembic", Outcome::Pass);
        record.target = Some((&migration.target).into());
        record.detail = Some(format!(
            "database \"{}\" holds no user tables and no rows: nothing to lose",
            migration.target.dbname
        ));
        protect::write_audit(&config, &record);
        return Plan::launch();
    }
    let current = state.map(|s| s.revisions);
    if direction == Direction::Upgrade
        && let Ok(revs) = &current
        && nothing_to_apply(&read_project(ctx, args), revs, &revision)
    {
        // Already there: alembic will do nothing, so there is nothing to
        // render (a whole Python start-up saved on every deploy).
        return Plan::launch();
    }
    let render = match &current {
        Ok(revs) => render(ctx, args, &real.path, direction, revs, &revision),
        Err(e) => Err(format!("the current revision cannot be read ({e})")),
    };
    // alembic could not render the run as a whole: render each revision
    // on its own, so that one revision that reads data leaves the others
    // judged on their SQL; only the ones that fail are read from their
    // files. The operation stays guarded for those regardless.
    let revisions = match (&render, &current) {
        (Err(why), Ok(revs)) => {
            per_revision(ctx, args, &real.path, direction, revs, &revision, why).ok()
        }
        _ => None,
    };
    let mut judged = ScanReport::default();
    match (&render, &revisions) {
        (Ok(r), _) => {
            migration.steps = r.steps.clone();
            migration.report = Some(r.report.clone());
            judged = r.report.clone();
        }
        (Err(_), Some(check)) => {
            migration.steps = steps_of(direction, check);
            let mut report = ScanReport::default();
            for r in &check.revisions {
                for f in &r.findings {
                    report.push_finding(f.clone());
                    if r.method == Method::Rendered {
                        judged.push_finding(f.clone());
                    }
                }
            }
            // What the files show is for the person to read; the static
            // scan cannot see SQL built from data, so a revision read that
            // way counts as unreadable SQL does in psql.
            for (rev, why) in check.fallbacks() {
                judged.push_problem(Problem {
                    severity: Severity::Error,
                    path: format!("{}.sql", direction.command()),
                    line: None,
                    message: format!("revision {rev} cannot be rendered offline: {why}"),
                });
            }
            migration.report = Some(report);
            migration.fallbacks = check.fallbacks();
        }
        (Err(why), None) => {
            judged.push_problem(Problem {
                severity: Severity::Error,
                path: format!("{}.sql", direction.command()),
                line: None,
                message: why.clone(),
            });
        }
    }
    migration.current = current;
    migration.render_error = render.err();
    migration.judged = judged;
    if direction == Direction::Upgrade && migration.judged.is_safe() {
        // An additive upgrade: nothing to ask, nothing to record.
        return Plan::launch();
    }
    Plan::protect(migration)
}

/// The configuration for the alembic guard about to protect `what`; a
/// file that cannot be read refuses (nothing is known about the policy).
fn load_config(what: &str, ctx: &Context) -> Result<Config, Refusal> {
    Config::load(ctx)
        .map_err(|e| Refusal::guarded(what, format!("the configuration cannot be read ({e})")))
}

/// An upgrade or downgrade, read and rendered, for the protect pipeline.
struct Migration {
    what: String,
    target: Target,
    direction: Direction,
    revision: String,
    /// The revisions applied now, or why they could not be read.
    current: Result<Vec<String>, String>,
    steps: Vec<Step>,
    /// What the render (or the revision files) showed.
    report: Option<ScanReport>,
    /// Why the run could not be rendered as a whole, when it could not.
    render_error: Option<String>,
    /// The revisions read from their files after rendering each on its own
    /// failed, with alembic's last error line.
    fallbacks: Vec<(String, String)>,
    /// What an upgrade is judged on: the rendered SQL's findings, and each
    /// revision (or the run) that could not be rendered as unreadable SQL.
    judged: ScanReport,
}

/// The steps of a run checked revision by revision.
fn steps_of(direction: Direction, check: &MigrationCheck) -> Vec<Step> {
    check
        .revisions
        .iter()
        .map(|r| {
            let (from, to) = match direction {
                Direction::Upgrade => (r.down_revision.clone(), r.revision.clone()),
                Direction::Downgrade => (r.revision.clone(), r.down_revision.clone()),
            };
            Step {
                from,
                to,
                message: r.message.clone(),
            }
        })
        .collect()
}

impl protect::Operation for Migration {
    fn tool(&self) -> &'static str {
        "alembic"
    }

    fn what(&self) -> String {
        self.what.clone()
    }

    fn findings(&self) -> Option<&ScanReport> {
        self.report.as_ref()
    }

    fn target(&self, _tools: Option<&PgTools>) -> Result<Target, String> {
        Ok(self.target.clone())
    }

    fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision {
        let policy = policy(&target.dbname);
        match self.direction {
            Direction::Downgrade => {
                guard::decide_whole_database(DOWNGRADE_WORD, &target.dbname, policy)
            }
            Direction::Upgrade => {
                guard::decide(&self.judged, &target.dbname, |_| policy, Scope::database())
            }
        }
    }

    fn helper_query(&self) -> Option<String> {
        self.report
            .as_ref()
            .and_then(crate::shim::statements::destroyed_rows_query)
    }

    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>) {
        Outlook {
            radius: crate::shim::statements::destroyed_rows_lines(view.rows),
            target: view.target,
            direction: self.direction,
            current: self.current.as_deref().ok(),
            revision: &self.revision,
            steps: &self.steps,
            report: self.report.as_ref(),
            render_error: self.render_error.as_deref(),
            fallbacks: &self.fallbacks,
        }
        .print(out);
    }
}

/// The word `alembic stamp` asks for under the default policy.
pub const STAMP_WORD: &str = "STAMP";

/// `alembic stamp` rewrites the version table without running anything:
/// afterwards alembic believes the schema is at a revision it may not be
/// at, and the next upgrade or downgrade runs against the wrong state. So
/// it is confirmed (`STAMP`, the name under `protect`) and the whole
/// database (the version table with it) is backed up first.
fn assess_stamp(
    ctx: &Context,
    args: &AlembicArgs,
    revisions: Vec<String>,
    purge: bool,
) -> Plan<'static> {
    let what = format!("alembic stamp {}", revisions.join(" "));
    let config = match load_config(&what, ctx) {
        Ok(config) => config,
        Err(refusal) => return Plan::Refuse(refusal),
    };
    Plan::protect(Stamp {
        what,
        target: resolve_target(ctx, args, &config),
        revisions,
        purge,
    })
}

/// `alembic stamp`, for the protect pipeline.
struct Stamp {
    what: String,
    target: Result<Target, String>,
    revisions: Vec<String>,
    purge: bool,
}

impl protect::Operation for Stamp {
    fn tool(&self) -> &'static str {
        "alembic"
    }

    fn what(&self) -> String {
        self.what.clone()
    }

    fn target(&self, _tools: Option<&PgTools>) -> Result<Target, String> {
        self.target.clone()
    }

    fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision {
        guard::decide_whole_database(STAMP_WORD, &target.dbname, policy(&target.dbname))
    }

    /// The version table is read in the connection check: each query is a
    /// psql start the person would otherwise wait for in turn.
    fn helper_query(&self) -> Option<String> {
        Some(VERSION_QUERY.to_owned())
    }

    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>) {
        let current = match view.rows {
            Some(Ok(rows)) => Some(revisions_of(rows.clone())),
            _ => None,
        };
        write_stamp_outlook(
            view.target,
            current.as_deref(),
            &self.revisions,
            self.purge,
            out,
        );
    }
}

/// What the person sees before a stamp is confirmed.
fn write_stamp_outlook(
    target: &Target,
    current: Option<&[String]>,
    revisions: &[String],
    purge: bool,
    out: &mut impl io::Write,
) {
    let from = match current {
        Some([]) => "no revision".to_owned(),
        Some(revs) => revs.join(", "),
        None => "an unknown revision".to_owned(),
    };
    let _ = writeln!(
        out,
        "dbguard: alembic stamp rewrites the version table of database \"{}\" (host {}, port {}, user {}) from {from} to {} without running any migration:",
        target.dbname,
        target.host,
        target.port,
        target.user,
        revisions.join(", ")
    );
    if purge {
        let _ = writeln!(
            out,
            "  --purge: every row of the version table is deleted first, whatever branch it names"
        );
    }
    let _ = writeln!(
        out,
        "  the schema stays as it is; later upgrades and downgrades start from the stamped revision"
    );
    let _ = writeln!(
        out,
        "  backup first: the whole database \"{}\"",
        target.dbname
    );
}

/// `alembic revision --autogenerate` writes a migration from the
/// difference between the models and the database, and a rename looks to
/// it like a drop and a create. So the real alembic runs as a child (same
/// stdio, same environment) and afterwards each new file's `upgrade()` is
/// scanned; destructive operations in it are listed, to be reviewed before
/// anyone applies it. `None` for every other command (exec as usual);
/// otherwise the status to exit with, alembic's own.
fn review_autogenerate(
    ctx: &Context,
    link: &Link,
    real: &RealTool,
    args: &AlembicArgs,
) -> Result<Launch, Error> {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let locations = project_locations(ctx, args, &cwd);
    let before = migration_files(&locations);
    let mut cmd = Command::new(&real.path);
    cmd.arg0(&real.path)
        .args(ctx.args.iter().skip(1))
        .env_clear()
        .envs(ctx.env.iter().map(|(k, v)| (k, v)))
        .env(CHAIN_ENV, link.marker_for_next())
        .env_remove(ARGV0_ENV);
    if let Some(dir) = &ctx.cwd {
        cmd.current_dir(dir);
    }
    let ended = match spawn::run(&mut cmd) {
        Ok(ended) => ended,
        Err(source) => {
            return Err(Error::Exec {
                program: real.path.clone(),
                source,
            });
        }
    };
    if ended.success() {
        for path in migration_files(&locations).difference(&before) {
            let shown = path
                .strip_prefix(&cwd)
                .unwrap_or(path)
                .display()
                .to_string();
            let Ok(source) = std::fs::read_to_string(path) else {
                continue;
            };
            let mut report = ScanReport::default();
            for f in static_scan::scan_function(&source, "upgrade", &shown) {
                report.push_finding(f);
            }
            let mut out = Vec::new();
            write_review(&shown, &report, &mut out);
            let _ = io::Write::write_all(&mut io::stderr(), &out);
        }
    }
    Ok(Launch::Exited(ended.exit_like()))
}

/// The warning after an autogenerated revision with destructive operations
/// (nothing when it has none).
fn write_review(shown: &str, report: &ScanReport, out: &mut impl io::Write) {
    if report.findings.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "dbguard: review {shown} before applying it: autogenerate wrote destructive operations into upgrade() (a renamed table or column looks to it like a drop and a create):"
    );
    protect::write_findings(report, SHOWN_FINDINGS, |f| format!("line {}", f.line), out);
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
    /// The rows in the tables and columns it drops or empties.
    radius: Vec<String>,
    /// Revisions read from their files, and why they could not be rendered.
    fallbacks: &'a [(String, String)],
}

impl Outlook<'_> {
    /// Where the run ends, as the steps resolve it (`-1` is the revision
    /// before the current one); the argument as given when there are no
    /// steps to tell, and both when they differ.
    fn destination(&self) -> String {
        let Some(last) = self.steps.last() else {
            return self.revision.to_owned();
        };
        let resolved = if last.to.is_empty() { "base" } else { &last.to };
        if resolved == self.revision {
            resolved.to_owned()
        } else {
            format!("{resolved} ({})", self.revision)
        }
    }

    fn print(&self, out: &mut impl io::Write) {
        let Outlook {
            target,
            direction,
            current,
            revision: _,
            steps,
            report,
            render_error,
            ref radius,
            fallbacks,
        } = *self;
        let destination = self.destination();
        let from = match current {
            Some([]) => "no revision".to_owned(),
            Some(revs) => revs.join(", "),
            None => "an unknown revision".to_owned(),
        };
        let _ = writeln!(
            out,
            "dbguard: alembic is about to {} database \"{}\" (host {}, port {}, user {}) from {from} to {destination}:",
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
        match (render_error, report) {
            (Some(why), Some(_)) => {
                if steps.len() > 1 {
                    let _ = writeln!(
                        out,
                        "  cannot render the whole run offline ({why}); rendered each revision on its own"
                    );
                }
                for (rev, why) in fallbacks {
                    let _ = writeln!(
                        out,
                        "  revision {rev} cannot be rendered offline: {why}; scanned its {}() in the revision file instead, and treating it as destructive",
                        direction.command()
                    );
                }
            }
            (Some(why), None) => {
                let _ = writeln!(
                    out,
                    "  cannot tell what it will run: {why}; treating it as destructive"
                );
            }
            (None, _) => {}
        }
        if let Some(report) = report {
            let scanned = if fallbacks.is_empty() {
                "the rendered SQL"
            } else {
                "the rendered SQL and the revision files"
            };
            if report.findings.is_empty() && !report.has_errors() {
                let _ = writeln!(out, "  no destructive statement found in {scanned}");
            }
            // A finding of the whole run's SQL names its line there; one
            // read from a revision file, or from the SQL rendered for one
            // revision alone, names that file too.
            let whole_run = format!("{}.sql", direction.command());
            protect::write_findings(
                report,
                SHOWN_FINDINGS,
                |f| {
                    if f.path == whole_run {
                        format!("line {}", f.line)
                    } else {
                        format!("{}:{}", f.path, f.line)
                    }
                },
                out,
            );
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
        for line in radius {
            let _ = writeln!(out, "  {line}");
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
    use crate::alembic::render::migration_steps;
    use crate::alembic::render::tests::{LOG, OFFLINE_SQL};
    use crate::shim::{Tool, with_invocation};

    #[test]
    fn read_only_and_offline_commands_launch_without_reading_anything() {
        // A configuration that cannot be read would refuse any command
        // that looked at it.
        let env = [("DBGUARD_CONFIG", "/nonexistent/dbguard.toml")];
        for args in [
            &["alembic", "current"][..],
            &["alembic", "history"],
            &["alembic", "--help"],
            &["alembic", "downgrade", "--sql", "0002:0001"],
        ] {
            let passes = with_invocation(Tool::Alembic, args, &env, |inv| {
                matches!(assess(inv), Plan::Pass(_))
            });
            assert!(passes, "{args:?}");
        }
        let refused = with_invocation(
            Tool::Alembic,
            &["alembic", "downgrade", "-1"],
            &env,
            |inv| matches!(assess(inv), Plan::Refuse(r) if r.why.starts_with("the configuration cannot be read")),
        );
        assert!(refused);
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
            radius: vec!["public.orders: 1,000 rows".to_owned()],
            fallbacks: &[],
        }
        .print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("downgrade database \"shop\""), "{text}");
        assert!(text.contains("from 0004 to base:"), "{text}");
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
            text.contains(
                "  public.orders: 1,000 rows\n  backup first: the whole database \"shop\""
            ),
            "the rows it destroys, then the backup: {text}"
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
            radius: Vec::new(),
            fallbacks: &[],
        }
        .print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("from an unknown revision to -1:"), "{text}");
        assert!(
            text.contains("the offline render failed: boom; treating it as destructive"),
            "{text}"
        );

        // A relative target shows the revision it resolves to.
        let one_back = &migration_steps(Direction::Downgrade, OFFLINE_SQL, LOG)[..1];
        let mut out = Vec::new();
        Outlook {
            target: &target,
            direction: Direction::Downgrade,
            current: Some(&["0004".to_owned()]),
            revision: "-1",
            steps: one_back,
            report: Some(&report),
            render_error: Some("the offline render failed: boom"),
            fallbacks: &[("0004".to_owned(), "KeyError: 'x'".to_owned())],
            radius: Vec::new(),
        }
        .print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("from 0004 to 0003 (-1):"), "{text}");
        assert!(
            text.contains("revision 0004 cannot be rendered offline: KeyError: 'x'; scanned its downgrade() in the revision file instead"),
            "{text}"
        );
    }
}
