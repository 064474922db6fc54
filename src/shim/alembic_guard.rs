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
//! destructive, as unreadable SQL is for psql; the revision files are then
//! listed and scanned statically, for the person to see what will run. An
//! upgrade the revision files show to apply nothing execs at once.
//!
//! `stamp` rewrites the version table without running anything: it asks
//! for `STAMP` and backs up first. `revision --autogenerate` is the one
//! command that runs as a child: afterwards the new file's destructive
//! operations are listed for review.
//!
//! Every other command returns at once, before any configuration is read
//! or any process started: `current`, `history`, `--help` and `--sql`
//! runs must cost nothing.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::alembic::args::{AlembicArgs, Command as AlembicCommand, Intent};
use crate::alembic::script_dir::{self, ScriptDir};
use crate::alembic::static_scan;
use crate::alembic::url::{self, FoundUrl};
use crate::audit::BYPASS_ENV;
use crate::backup::Scope;
use crate::config::{Config, Policy};
use crate::error::Refusal;
use crate::pgtools::{PgTools, QueryError};
use crate::shim::RealTool;
use crate::shim::chain::{CHAIN_ENV, Link};
use crate::shim::guard::{self, Decision};
use crate::shim::protect::{self, View, record_bypass};
use crate::shim::spawn;
use crate::sql::{Problem, ScanReport, Scanner, Severity};
use crate::target::{ConnectionArgs, Target, redact, sqlalchemy_to_libpq};
use crate::{ARGV0_ENV, Context, Error};

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
        (
            Intent::Stamp,
            Some(AlembicCommand::Stamp {
                revisions, purge, ..
            }),
        ) => {
            if ctx.flag(BYPASS_ENV) {
                record_bypass(ctx, "alembic");
                return Ok(());
            }
            let revisions: Vec<String> = revisions
                .iter()
                .map(|r| r.to_string_lossy().into_owned())
                .collect();
            return protect_stamp(ctx, &args, &revisions, *purge);
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
    pub fn command(self) -> &'static str {
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
    let config = load_config(ctx, &what)?;
    if direction == Direction::Upgrade && !config.file.alembic.upgrade_analysis.unwrap_or(true) {
        return Ok(());
    }
    let target = resolve_target(ctx, args, &config)
        .map_err(|why| protect::refused(ctx, "alembic", None, Refusal::guarded(&what, why)))?;
    let policy = config.policy_for(&target);
    let mut migration = Migration {
        what,
        target,
        direction,
        revision,
        current: Err(String::new()),
        steps: Vec::new(),
        report: None,
        render_error: None,
        judged: ScanReport::default(),
    };
    if policy == Policy::Off {
        if direction == Direction::Downgrade {
            // Recorded as `policy_off` by the pipeline; nothing is read.
            return protect::protect(ctx, &migration);
        }
        return Ok(());
    }
    let tools = PgTools::resolve(ctx).map_err(|e| {
        protect::refused(
            ctx,
            "alembic",
            Some(&migration.target),
            Refusal::guarded(&migration.what, format!("no backup is possible ({e})")),
        )
    })?;

    let current = current_revisions(&tools, &migration.target);
    if direction == Direction::Upgrade
        && let Ok(revs) = &current
        && nothing_to_apply(&read_project(ctx, args), revs, revision)
    {
        // Already there: alembic will do nothing, so there is nothing to
        // render (a whole Python start-up saved on every deploy).
        return Ok(());
    }
    let render = match &current {
        Ok(revs) => render(ctx, args, real, direction, revs, revision),
        Err(e) => Err(format!("the current revision cannot be read ({e})")),
    };
    let (steps, report) = match (&render, &current) {
        (Ok(r), _) => (r.steps.clone(), Some(r.report.clone())),
        // alembic could not render it: read the revision files instead,
        // to show what will run; the operation stays guarded regardless.
        (Err(_), Ok(revs)) => match static_fallback(ctx, args, direction, revs, revision) {
            Ok((steps, report)) => (steps, Some(report)),
            Err(_) => (Vec::new(), None),
        },
        (Err(_), Err(_)) => (Vec::new(), None),
    };
    // Without a render, what the files show is for the person to read; the
    // static scan cannot see SQL built from data, so the database's name
    // is the word, as for unreadable SQL in psql.
    let mut judged = match &render {
        Ok(_) => report.clone().unwrap_or_default(),
        Err(_) => ScanReport::default(),
    };
    if let Err(why) = &render {
        judged.push_problem(Problem {
            severity: Severity::Error,
            path: "upgrade.sql".into(),
            line: None,
            message: why.clone(),
        });
    }
    migration.current = current;
    migration.steps = steps;
    migration.report = report;
    migration.render_error = render.err();
    migration.judged = judged;
    if direction == Direction::Upgrade && migration.judged.is_safe() {
        // An additive upgrade: nothing to ask, nothing to record.
        return Ok(());
    }
    protect::protect(ctx, &migration)
}

/// The configuration for the alembic guard about to protect `what`; a
/// file that cannot be read refuses (nothing is known about the policy).
fn load_config(ctx: &Context, what: &str) -> Result<Config, Error> {
    Config::load(ctx).map_err(|e| {
        Refusal::guarded(what, format!("the configuration cannot be read ({e})")).into()
    })
}

/// An upgrade or downgrade, read and rendered, for the protect pipeline.
struct Migration<'a> {
    what: String,
    target: Target,
    direction: Direction,
    revision: &'a str,
    /// The revisions applied now, or why they could not be read.
    current: Result<Vec<String>, String>,
    steps: Vec<Step>,
    /// What the render (or the revision files) showed.
    report: Option<ScanReport>,
    render_error: Option<String>,
    /// What an upgrade is judged on: the render's findings, or the render's
    /// failure as unreadable SQL.
    judged: ScanReport,
}

impl protect::Operation for Migration<'_> {
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

    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>) {
        Outlook {
            target: view.target,
            direction: self.direction,
            current: self.current.as_deref().ok(),
            revision: self.revision,
            steps: &self.steps,
            report: self.report.as_ref(),
            render_error: self.render_error.as_deref(),
        }
        .print(out);
    }
}

/// The database alembic will migrate, as a libpq target; `Err` is the
/// refusal reason, saying how to name one.
pub fn resolve_target(
    ctx: &Context,
    args: &AlembicArgs,
    config: &Config,
) -> Result<Target, String> {
    resolve_connection(ctx, args, config).map(|(_, target)| target)
}

/// The database alembic will migrate, as connection arguments (a libpq
/// URI, password included, for tools dbguard runs itself) and as the
/// resolved target.
pub fn resolve_connection(
    ctx: &Context,
    args: &AlembicArgs,
    config: &Config,
) -> Result<(ConnectionArgs, Target), String> {
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
    let FoundUrl { url, origin } =
        url::find_url(args, env, config_url, &cwd, read_ini).map_err(|e| e.to_string())?;
    let uri = sqlalchemy_to_libpq(&url)
        .map_err(|e| format!("the database URL from {origin} is unusable: {e}"))?;
    let conn = ConnectionArgs {
        dbname: Some(uri),
        ..ConnectionArgs::default()
    };
    let target = Target::resolve(&conn, ctx)
        .map_err(|e| redact(&format!("the database URL from {origin} is unusable: {e}")))?;
    Ok((conn, target))
}

/// The word `alembic stamp` asks for under the default policy.
pub const STAMP_WORD: &str = "STAMP";

/// `alembic stamp` rewrites the version table without running anything:
/// afterwards alembic believes the schema is at a revision it may not be
/// at, and the next upgrade or downgrade runs against the wrong state. So
/// it is confirmed (`STAMP`, the name under `protect`) and the whole
/// database (the version table with it) is backed up first.
fn protect_stamp(
    ctx: &Context,
    args: &AlembicArgs,
    revisions: &[String],
    purge: bool,
) -> Result<(), Error> {
    let what = format!("alembic stamp {}", revisions.join(" "));
    let config = load_config(ctx, &what)?;
    protect::protect(
        ctx,
        &Stamp {
            what,
            target: resolve_target(ctx, args, &config),
            revisions,
            purge,
        },
    )
}

/// `alembic stamp`, for the protect pipeline.
struct Stamp<'a> {
    what: String,
    target: Result<Target, String>,
    revisions: &'a [String],
    purge: bool,
}

impl protect::Operation for Stamp<'_> {
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
            self.revisions,
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

/// One query for the version table: selecting from a missing table is an
/// error, not an empty result, so the table is looked up first (on the
/// search_path, as alembic looks) and only read, through `query_to_xml`,
/// when it exists. One psql start instead of two: this runs before every
/// upgrade, including the ones with nothing to apply.
const VERSION_QUERY: &str = "select case when to_regclass('alembic_version') is null then '' \
     else array_to_string(xpath('//version_num/text()', \
     query_to_xml('select version_num from alembic_version order by 1', false, false, ''))::text[], ' ') end";

/// The revisions in the database's version table. An absent table means
/// nothing has been applied yet (an empty list).
pub fn current_revisions(tools: &PgTools, target: &Target) -> Result<Vec<String>, String> {
    let rows = tools.query(target, VERSION_QUERY).map_err(query_error)?;
    Ok(revisions_of(rows))
}

/// The revisions in `VERSION_QUERY`'s rows.
fn revisions_of(rows: Vec<Vec<String>>) -> Vec<String> {
    let field = rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default();
    field.split_whitespace().map(xml_unescape).collect()
}

/// Undoes the escaping of XML text content (revision ids are normally
/// plain, but the version table holds whatever was written to it).
fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#x0D;", "\r")
        .replace("&amp;", "&")
}

fn query_error(e: QueryError) -> String {
    match e {
        QueryError::Failed { detail, .. } => redact(&detail),
        QueryError::Spawn(p, e) => format!("{}: {e}", p.display()),
    }
}

/// The revisions a run goes through and their destructive operations,
/// read from the revision files (their `upgrade()` or `downgrade()`
/// bodies) when alembic cannot render the run offline.
fn static_fallback(
    ctx: &Context,
    args: &AlembicArgs,
    direction: Direction,
    current: &[String],
    target_revision: &str,
) -> Result<(Vec<Step>, ScanReport), String> {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let scripts = project_scripts(ctx, args, &cwd);
    let path = match direction {
        Direction::Upgrade => scripts.upgrade_path(current, target_revision)?,
        Direction::Downgrade => scripts.downgrade_path(current, target_revision)?,
    };
    let mut report = ScanReport::default();
    let mut steps = Vec::new();
    for script in path {
        let shown = script
            .path
            .strip_prefix(&cwd)
            .unwrap_or(&script.path)
            .display()
            .to_string();
        let source = std::fs::read_to_string(&script.path)
            .map_err(|e| format!("cannot read {shown} ({e})"))?;
        for f in static_scan::scan_function(&source, direction.command(), &shown) {
            report.push_finding(f);
        }
        let parents = script.down.join(", ");
        let (from, to) = match direction {
            Direction::Upgrade => (parents, script.revision.clone()),
            Direction::Downgrade => (script.revision.clone(), parents),
        };
        steps.push(Step {
            from,
            to,
            message: script.message.clone(),
        });
    }
    Ok((steps, report))
}

/// The project's revision files as read for the upgrade shortcut: the
/// scripts, and whether every `.py` file in the version directories was
/// understood (a file whose `revision` could not be read might be a head
/// the graph does not know about).
pub struct ProjectRead {
    pub scripts: ScriptDir,
    pub complete: bool,
}

fn read_project(ctx: &Context, args: &AlembicArgs) -> ProjectRead {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let ini = url::ini_path(args, ctx.var("ALEMBIC_CONFIG"), &cwd);
    // Nested version directories are not read here.
    let section = url::ini_section(args);
    let recursive =
        std::fs::read_to_string(&ini).is_ok_and(|t| script_dir::recursive(&t, &section));
    let locations = project_locations(ctx, args, &cwd);
    let files = migration_files(&locations)
        .into_iter()
        .filter(|p| !p.ends_with("__init__.py"))
        .count();
    let scripts = ScriptDir::read(&locations);
    ProjectRead {
        complete: !recursive && !locations.is_empty() && files == scripts.scripts.len(),
        scripts,
    }
}

/// True only when the revision files show for certain that `upgrade
/// target` from `current` applies nothing: every file understood, every
/// current revision known, the target resolved, and all of it already in
/// the current revisions' ancestry. Anything uncertain is `false` (render
/// and scan as usual).
pub fn nothing_to_apply(project: &ProjectRead, current: &[String], target: &str) -> bool {
    if !project.complete || current.is_empty() || target.starts_with('+') {
        return false;
    }
    if !current.iter().all(|r| project.scripts.get(r).is_some()) {
        return false;
    }
    match project.scripts.resolve(target) {
        Ok(to) if !to.is_empty() => project
            .scripts
            .upgrade_path(current, target)
            .is_ok_and(|path| path.is_empty()),
        _ => false,
    }
}

/// The project's revision files, from the ini file alembic will read.
pub fn project_scripts(ctx: &Context, args: &AlembicArgs, cwd: &Path) -> ScriptDir {
    ScriptDir::read(&project_locations(ctx, args, cwd))
}

/// The directories alembic keeps revision files in, from its ini file;
/// empty when the file cannot be read.
pub fn project_locations(ctx: &Context, args: &AlembicArgs, cwd: &Path) -> Vec<PathBuf> {
    let ini = url::ini_path(args, ctx.var("ALEMBIC_CONFIG"), cwd);
    let Ok(text) = std::fs::read_to_string(&ini) else {
        return Vec::new();
    };
    let section = url::ini_section(args);
    script_dir::version_locations(&text, &ini, &section, cwd)
}

/// `alembic revision --autogenerate` writes a migration from the
/// difference between the models and the database, and a rename looks to
/// it like a drop and a create. So the real alembic runs as a child (same
/// stdio, same environment) and afterwards each new file's `upgrade()` is
/// scanned; destructive operations in it are listed, to be reviewed before
/// anyone applies it. `None` for every other command (exec as usual);
/// otherwise the status to exit with, alembic's own.
pub fn review_autogenerate(
    ctx: &Context,
    link: &Link,
    real: &RealTool,
) -> Option<Result<u8, Error>> {
    if link.guarded_upstream() {
        return None;
    }
    let args = AlembicArgs::parse(ctx.args.get(1..).unwrap_or_default());
    if args.intent() != Intent::Autogenerate || ctx.flag(BYPASS_ENV) {
        return None;
    }
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let locations = project_locations(ctx, &args, &cwd);
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
            return Some(Err(Error::Exec {
                program: real.path.clone(),
                source,
            }));
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
    Some(Ok(ended.exit_like()))
}

/// The `*.py` files in the version directories.
fn migration_files(locations: &[PathBuf]) -> BTreeSet<PathBuf> {
    locations
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect()
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

/// Has the real alembic render the migration offline and scans the SQL.
fn render(
    ctx: &Context,
    args: &AlembicArgs,
    real: &RealTool,
    direction: Direction,
    current: &[String],
    target_revision: &str,
) -> Result<Render, String> {
    let range = render_range(direction, current, target_revision)?;
    let rendered = render_sql(ctx, args, real, direction, &range)?;
    let mut scanner = Scanner::new(ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/")));
    let label = format!("{}.sql", direction.command());
    scanner.scan_bytes(&label, rendered.sql.as_bytes(), Path::new("/"));
    Ok(Render {
        steps: migration_steps(direction, &rendered.sql, &rendered.log),
        report: scanner.finish(),
    })
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
    real: &RealTool,
    direction: Direction,
    range: &str,
) -> Result<RenderedSql, String> {
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
        .map_err(|e| format!("{} could not be started ({e})", real.path.display()))?;
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
        match (render_error, report) {
            (Some(why), Some(_)) => {
                let _ = writeln!(
                    out,
                    "  cannot render it offline: {why}; scanned the revision files' {}() instead, and treating it as destructive",
                    direction.command()
                );
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
            let scanned = if render_error.is_some() {
                "the revision files"
            } else {
                "the rendered SQL"
            };
            if report.findings.is_empty() && !report.has_errors() {
                let _ = writeln!(out, "  no destructive statement found in {scanned}");
            }
            let statically = render_error.is_some();
            protect::write_findings(
                report,
                SHOWN_FINDINGS,
                |f| {
                    if statically {
                        format!("{}:{}", f.path, f.line)
                    } else {
                        format!("line {}", f.line)
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
    fn version_table_text_is_unescaped() {
        assert_eq!(xml_unescape("0004"), "0004");
        assert_eq!(xml_unescape("a&amp;lt;&lt;b&gt;"), "a&lt;<b>");
    }

    #[test]
    fn only_a_certain_graph_skips_the_render() {
        use crate::alembic::script_dir::Script;
        let script = |rev: &str, down: &[&str]| Script {
            revision: rev.into(),
            down: down.iter().map(|d| (*d).to_owned()).collect(),
            message: None,
            path: PathBuf::from(format!("{rev}.py")),
        };
        let project = ProjectRead {
            scripts: ScriptDir {
                scripts: vec![script("a", &[]), script("b", &["a"])],
            },
            complete: true,
        };
        let at = |r: &str| vec![r.to_owned()];
        assert!(nothing_to_apply(&project, &at("b"), "head"));
        assert!(nothing_to_apply(&project, &at("b"), "heads"));
        assert!(nothing_to_apply(&project, &at("b"), "a"));
        assert!(!nothing_to_apply(&project, &at("a"), "head"));
        assert!(
            !nothing_to_apply(&project, &[], "head"),
            "nothing applied yet"
        );
        assert!(
            !nothing_to_apply(&project, &at("zz"), "head"),
            "unknown current"
        );
        assert!(
            !nothing_to_apply(&project, &at("b"), "nope"),
            "unknown target"
        );
        assert!(!nothing_to_apply(&project, &at("b"), "+1"));
        let partial = ProjectRead {
            complete: false,
            ..project
        };
        assert!(
            !nothing_to_apply(&partial, &at("b"), "head"),
            "a file not understood"
        );
        let empty = ProjectRead {
            scripts: ScriptDir::default(),
            complete: true,
        };
        assert!(!nothing_to_apply(&empty, &at("b"), "head"));
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
