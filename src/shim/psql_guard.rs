//! The psql guard's effects: read every piece of SQL psql is about to run
//! (`-c`, `-f` with includes, stdin), and when any of it is destructive,
//! show it, ask on the terminal, back up, record the decision and only
//! then let `shim::run` exec the real psql. The decision itself is in
//! `guard.rs`.
//!
//! The path for harmless SQL is kept short on purpose: no configuration,
//! no connection and no child process before exec.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::audit::{BYPASS_ENV, Record};
use crate::backup::Scope;
use crate::config::Config;
use crate::pgtools::{PgTools, quote_ident, quote_literal};
use crate::shim::chain::Link;
use crate::shim::guard::{self, Decision, Guard, TableFacts};
use crate::shim::live;
use crate::shim::psql::{Action, ArgPos, Mode, PsqlArgs};
use crate::shim::safeguard::{self, BYPASS_HINT, Protection, record_bypass, write_audit};
use crate::shim::stdin::{self, StdinKind};
use crate::shim::whole_database;
use crate::sql::{Kind, Problem, ScanReport, Scanner, Severity};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// Findings listed before the prompt; the rest are counted.
const SHOWN_FINDINGS: usize = 20;

/// Runs the guard. `Ok` means: exec the real psql now (with stdin already
/// replaced by the spool when it was a pipe), started as `Launch` says:
/// with other arguments when a `-f` pipe was spooled (they name the spool,
/// `/dev/fd/N`, inherited across exec, instead of the emptied pipe), and
/// with variables added to its environment (the preload library, when psql
/// must be guarded from inside).
pub fn guard(ctx: &Context, link: &Link) -> Result<Launch, Error> {
    if link.guarded_upstream() {
        // A shim earlier in this process already decided; asking or backing
        // up again would be noise, and stdin is already the spool (and the
        // preload, if any, already in the environment).
        return Ok(Launch::default());
    }
    if ctx.flag(BYPASS_ENV) {
        record_bypass(ctx, "psql");
        return Ok(Launch::default());
    }
    let argv = ctx.args.get(1..).unwrap_or_default();
    let args = PsqlArgs::parse(argv, ctx.var("POSIXLY_CORRECT").is_some());
    if args.mode() == Mode::NoSql {
        return Ok(Launch::default());
    }
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut scanned = scan(&args, &cwd)?;
    if !scanned.report.estimate_candidates.is_empty() {
        estimate_bulk(ctx, &args, &mut scanned.report);
    }
    if !scanned.report.is_safe() {
        protect(ctx, &args, &scanned.report)?;
    }
    if let Some(mut file) = scanned.stdin.take() {
        stdin::install_as_stdin(&mut file)
            .map_err(|e| refused_io("cannot hand the spooled stdin to psql", e))?;
    }
    let mut rewritten: Option<Vec<OsString>> = None;
    let mut taken = Vec::new();
    for pipe in std::mem::take(&mut scanned.pipes) {
        // The same `/dev/fd/K` given twice: psql reads the script once and
        // then an empty pipe, so the second (empty) spool gets its own name.
        let own_number = inherited_fd_number(&pipe.path).filter(|k| !taken.contains(k));
        taken.extend(own_number);
        let handed = match own_number {
            // `/dev/fd/K` (what `<(…)` gives): the spool takes descriptor K
            // itself, so psql's argv and messages stay exactly the user's.
            Some(k) => stdin::install_as(pipe.spool, k).map(|()| None),
            // A named pipe: psql is pointed at the spool instead.
            None => stdin::inherit(pipe.spool).map(Some),
        };
        match handed.map_err(|e| refused_io("cannot hand a spooled -f pipe to psql", e))? {
            None => {}
            Some(fd) => {
                let current = rewritten.take().unwrap_or_else(|| argv.to_vec());
                let spool = format!("/dev/fd/{fd}");
                rewritten = Some(pipe.at.replace_in(&current, OsStr::new(&spool)));
            }
        }
    }
    // Every run that may send SQL gets the library: psql is an
    // interpreter, and what it really sends (psqlrc, `\if`-chosen
    // variables, files it writes itself, the server's lexical settings, a
    // failed COPY's data lines) is checked where it leaves psql.
    let env = preload_env(ctx, &scanned)?;
    Ok(Launch {
        args: rewritten,
        env,
    })
}

/// How the real psql is to be started.
#[derive(Debug, Default)]
pub struct Launch {
    /// Arguments instead of the user's, when a spooled `-f` pipe was renamed.
    pub args: Option<Vec<OsString>>,
    /// Variables added to psql's environment.
    pub env: Vec<(OsString, OsString)>,
}

/// K, when `path` names an inherited descriptor as `/dev/fd/K` or
/// `/proc/self/fd/K`.
fn inherited_fd_number(path: &Path) -> Option<i32> {
    let text = path.to_str()?;
    let number = text
        .strip_prefix("/dev/fd/")
        .or_else(|| text.strip_prefix("/proc/self/fd/"))?;
    number.parse().ok().filter(|&k| k > 2)
}

/// What `scan` read and kept for psql.
struct Scanned {
    report: ScanReport,
    /// The spool of a stdin pipe, to become psql's stdin.
    stdin: Option<File>,
    /// Each `-f` pipe, spooled.
    pipes: Vec<SpooledPipe>,
    /// stdin is a terminal psql will read an interactive session from.
    interactive: bool,
}

struct SpooledPipe {
    /// The path psql was given.
    path: PathBuf,
    /// Where that path sits in argv.
    at: ArgPos,
    spool: File,
}

/// Asks the server how many rows each DELETE and UPDATE with a WHERE
/// would change (plain EXPLAIN, in one helper psql) and adds those over
/// the configured threshold as `delete_bulk`/`update_bulk` findings. Any
/// failure (no server, a table the script creates first) leaves the WHERE
/// rule to judge: an estimate is an extra reason to ask, never a reason
/// not to.
fn estimate_bulk(ctx: &Context, args: &PsqlArgs, report: &mut ScanReport) {
    let Ok(config) = Config::load(ctx) else {
        return;
    };
    let Some(threshold) = config.bulk_threshold() else {
        return;
    };
    let Ok(target) = Target::resolve(&connection_args(args), ctx) else {
        return;
    };
    if config.policy_for(&target) == crate::config::Policy::Off {
        return;
    }
    let Ok(tools) = PgTools::resolve(ctx) else {
        return;
    };
    crate::sql::estimate::add_bulk_findings(report, &threshold, true, |statements| {
        let plans: std::collections::HashMap<String, String> = tools
            .explain_all(&target, statements)
            .unwrap_or_default()
            .into_iter()
            .collect();
        statements.iter().map(|s| plans.get(s).cloned()).collect()
    });
}

fn connection_args(args: &PsqlArgs) -> ConnectionArgs {
    ConnectionArgs {
        host: lossy(args.host.as_deref()),
        port: lossy(args.port.as_deref()),
        user: lossy(args.username.as_deref()),
        dbname: lossy(args.dbname.as_deref()),
    }
}

/// The environment that loads the preload library into psql, with the
/// statements already confirmed here, so they are not asked about twice.
fn preload_env(ctx: &Context, scanned: &Scanned) -> Result<Vec<(OsString, OsString)>, Error> {
    let report = &scanned.report;
    let library = match live::preload_library(ctx) {
        Ok(path) => path,
        // A script whose SQL was all seen before psql starts keeps psql's
        // own output byte for byte: the missing library is `doctor`'s to
        // report.
        Err(_) if !scanned.interactive && !report.builds_sql_at_run_time => {
            return Ok(Vec::new());
        }
        Err(looked) => {
            if scanned.interactive {
                note!(
                    "dbguard: interactive psql sessions are not guarded: {} not found ({looked}); what you type here runs unprotected",
                    live::PRELOAD_FILE
                );
            } else {
                note!(
                    "dbguard: SQL built while the script runs (\\gexec, variables) is not checked: {} not found ({looked})",
                    live::PRELOAD_FILE
                );
            }
            return Ok(Vec::new());
        }
    };
    let mut preload = library.into_os_string();
    if let Some(existing) = ctx.var("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let mut env = vec![(OsString::from("LD_PRELOAD"), preload)];
    let keys = live::confirmed_keys(report);
    if !keys.is_empty() {
        let path = live::write_confirmed(&keys)
            .map_err(|e| refused_io("cannot pass the confirmed statements on to psql", e))?;
        env.push((live::CONFIRMED_ENV.into(), path.into_os_string()));
    }
    Ok(env)
}

/// Scans what psql will run, in psql's order, with its variables, and
/// notes whether stdin is a terminal psql will read a session from.
fn scan(args: &PsqlArgs, cwd: &Path) -> Result<Scanned, Error> {
    let mut scanner = Scanner::new(cwd);
    for (name, value) in &args.variables {
        let name = name.to_string_lossy();
        match value {
            Some(v) => scanner.set_variable(&name, &v.to_string_lossy()),
            None => scanner.apply_assignment(&name),
        }
    }
    let mut spool = None;
    let mut pipes = Vec::new();
    let mut unreadable = Vec::new();
    let mut stdin_read = false;
    let mut interactive = false;
    let mut read_stdin = |scanner: &mut Scanner, spool: &mut Option<File>| {
        if std::mem::replace(&mut stdin_read, true) {
            return Ok(()); // a second `-f -` reads an exhausted stdin
        }
        if stdin::stdin_kind() == StdinKind::Terminal {
            interactive = true;
            return Ok(());
        }
        scan_stdin(scanner, cwd).map(|s| *spool = s)
    };
    match args.mode() {
        Mode::Stdin => read_stdin(&mut scanner, &mut spool)?,
        Mode::Actions => {
            for (action, at) in args.actions.iter().zip(&args.action_args) {
                match action {
                    Action::Command(sql) => scanner.scan_bytes("-c", sql.as_bytes(), cwd),
                    Action::File(path) => match std::fs::metadata(cwd.join(path)) {
                        Ok(meta) if meta.is_file() => scanner.scan_path(Path::new(path)),
                        // A pipe (`-f <(…)`) can be read only once: it is
                        // copied while scanned, and psql gets the copy.
                        Ok(meta) if meta.file_type().is_fifo() => {
                            let spool = scan_pipe(&mut scanner, Path::new(path), cwd)?;
                            pipes.push(SpooledPipe {
                                path: cwd.join(path),
                                at: *at,
                                spool,
                            });
                        }
                        Ok(meta) if stdin::is_dev_null_meta(&meta) => {}
                        // A terminal or another device cannot be read
                        // without taking its input from psql. Unread means
                        // unknown.
                        Ok(meta) if !meta.is_dir() => unreadable.push(path.to_string_lossy()),
                        // A file psql cannot open runs nothing: psql reports
                        // it itself, exactly as without dbguard.
                        _ => {}
                    },
                    Action::Stdin => read_stdin(&mut scanner, &mut spool)?,
                }
            }
        }
        Mode::NoSql => {}
    }
    let mut report = scanner.finish();
    for path in unreadable {
        report.push_problem(Problem {
            severity: Severity::Error,
            path: path.into_owned(),
            line: None,
            message: "a terminal or device: reading it would take the script from psql, so it cannot be checked".into(),
        });
    }
    Ok(Scanned {
        report,
        stdin: spool,
        pipes,
        interactive,
    })
}

/// Scans a `-f` pipe while copying it into a spool file, which is returned
/// for psql to read instead.
fn scan_pipe(scanner: &mut Scanner, path: &Path, cwd: &Path) -> Result<File, Error> {
    let full = cwd.join(path);
    let what = format!("cannot spool the -f pipe {}", path.display());
    let pipe = File::open(&full).map_err(|e| refused_io(&what, e))?;
    let file = stdin::spool_file().map_err(|e| refused_io(&what, e))?;
    let mut tee = stdin::Tee::new(pipe, file);
    // `\ir` inside resolves against the pipe's directory, as psql does.
    let base = full.parent().unwrap_or(cwd);
    scanner.scan_reader(&path.to_string_lossy(), &mut tee, base);
    tee.drain().map_err(|e| refused_io(&what, e))
}

/// Scans stdin without taking it from psql: a regular file is rewound, a
/// pipe is spooled (returned, to become psql's stdin), a terminal is an
/// interactive session and is left alone.
fn scan_stdin(scanner: &mut Scanner, cwd: &Path) -> Result<Option<File>, Error> {
    match stdin::stdin_kind() {
        // An interactive session: checked statement by statement inside
        // psql (see `preload_env`).
        StdinKind::Terminal | StdinKind::Closed | StdinKind::Null => Ok(None),
        StdinKind::File => {
            let mark = stdin::Rewind::mark()
                .map_err(|e| refused_io("cannot read the script on stdin", e))?;
            scanner.scan_reader("-", io::stdin().lock(), cwd);
            mark.restore()
                .map_err(|e| refused_io("cannot rewind the script on stdin", e))?;
            Ok(None)
        }
        StdinKind::Stream => {
            let file = stdin::spool_file().map_err(|e| refused_io("cannot spool stdin", e))?;
            let mut tee = stdin::Tee::new(io::stdin().lock(), file);
            scanner.scan_reader("-", &mut tee, cwd);
            let file = tee
                .drain()
                .map_err(|e| refused_io("cannot spool stdin", e))?;
            Ok(Some(file))
        }
    }
}

/// psql's stdin could not be kept intact: nothing may run.
fn refused_io(what: &str, e: io::Error) -> Error {
    Error::Refused(format!("{what}: {e}; psql was not started"))
}

/// The destructive path: target, policy, facts, question, backups, audit.
fn protect(ctx: &Context, args: &PsqlArgs, report: &ScanReport) -> Result<(), Error> {
    let conn = connection_args(args);
    protect_on(ctx, Target::resolve(&conn, ctx), report, || {
        PgTools::resolve(ctx)
    })
}

/// Target, policy, facts, question, backups and audit for destructive SQL
/// aimed at `target`: the script pre-flight's resolved target, or the live
/// connection of an interactive session (`shim::live`). `tools` finds the
/// client programs, only once a backup is planned.
pub fn protect_on(
    ctx: &Context,
    target: Result<Target, Error>,
    report: &ScanReport,
    tools: impl FnOnce() -> Result<PgTools, Error>,
) -> Result<(), Error> {
    let what = describe(report);
    let mut record = Record::new(ctx, "psql", "refused")
        .with_findings(&report.findings, report.findings_omitted);
    let refuse_early = |why: String| {
        print_summary(report, None, &[], "", &mut io::stderr());
        Error::Refused(format!("refused {what}: {why}; {BYPASS_HINT}"))
    };
    let target =
        target.map_err(|e| refuse_early(format!("cannot tell which database it is for ({e})")))?;
    let config = Config::load(ctx)
        .map_err(|e| refuse_early(format!("the configuration cannot be read ({e})")))?;
    record.target = Some((&target).into());
    let on_db = format!("{what} on database \"{}\"", target.dbname);
    let refuse = |record: &mut Record, why: String| {
        record.decision = "refused".into();
        record.detail = Some(why.clone());
        write_audit(&config, record);
        Error::Refused(format!("refused {on_db}: {why}; {BYPASS_HINT}"))
    };

    let policy = |db: &str| config.policy_for(&target.with_dbname(db));
    let plan = match guard::decide(report, &target.dbname, policy, Scope::database()) {
        Decision::Pass => {
            record.decision = "policy_off".into();
            record.detail = Some(format!("policy off for database \"{}\"", target.dbname));
            write_audit(&config, &record);
            return Ok(());
        }
        Decision::Refuse(why) => {
            print_summary(report, Some(&target), &[], "", &mut io::stderr());
            return Err(refuse(&mut record, why));
        }
        Decision::Guard(plan) => plan,
    };

    let tools = match tools() {
        Ok(tools) => tools,
        Err(e) => {
            print_summary(report, Some(&target), &[], "", &mut io::stderr());
            return Err(refuse(&mut record, format!("no backup is possible ({e})")));
        }
    };
    let facts_query = table_facts_query(report);
    let mut plan = plan;
    let (facts, preflights) = loop {
        let (facts, preflights) =
            safeguard::check_backups(&tools, &target, &plan, facts_query.as_deref());
        match preflights {
            Ok(ready) => break (facts, ready),
            // `DROP DATABASE [IF EXISTS] x` where x does not exist removes
            // nothing: setup scripts do this all the time, and refusing
            // them would only teach people to bypass the guard.
            Err((database, _))
                if database != target.dbname
                    && whole_database::database_exists(&tools, &target, &database) == Ok(false) =>
            {
                note!(
                    "dbguard: database \"{database}\" does not exist, so dropping it removes nothing"
                );
                plan.backups.retain(|b| b.database != database);
                if plan.backups.is_empty() {
                    record.decision = "pass".into();
                    record.detail = Some(format!("database \"{database}\" does not exist"));
                    write_audit(&config, &record);
                    return Ok(());
                }
            }
            Err((database, e)) => {
                print_summary(report, Some(&target), &[], "", &mut io::stderr());
                return Err(refuse(
                    &mut record,
                    format!("no backup of \"{database}\" is possible ({e})"),
                ));
            }
        }
    };
    let (facts, facts_error) = match facts {
        None => (Some(Vec::new()), None),
        Some(Ok(rows)) => (Some(table_facts(rows)), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let plan = with_local_scope(plan, &target.dbname, report, facts.as_deref());

    let mut summary = Vec::new();
    let radius = blast_radius(facts.as_deref(), facts_error.as_deref());
    print_summary(
        report,
        Some(&target),
        &radius,
        &backup_line(&plan),
        &mut summary,
    );
    let summary = safeguard::lines(&summary);
    let reason = safeguard::redacted_command(ctx);
    safeguard::ask_back_up_record(
        ctx,
        &Protection {
            config: &config,
            tools: &tools,
            target: &target,
            plan: &plan,
            preflights: &preflights,
            summary,
            reason,
        },
        &mut record,
        &refuse,
    )
}

fn lossy(value: Option<&OsStr>) -> Option<String> {
    value.map(|v| v.to_string_lossy().into_owned())
}

/// The first destructive statement, shortened, with where it is, for the
/// one-line refusal.
fn describe(report: &ScanReport) -> String {
    if let Some(f) = report.findings.first() {
        let mut text: String = f.statement.chars().take(60).collect();
        if text.len() < f.statement.len() {
            text.push('…');
        }
        let more = report.destructive_count() - 1;
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return format!("{text} ({}:{}){more}", f.path, f.line);
    }
    match report.errors().next() {
        Some(p) => format!(
            "SQL that could not be read to the end ({}: {})",
            p.path, p.message
        ),
        None => "the SQL".to_owned(),
    }
}

/// Puts the connected database's table scope into the plan.
fn with_local_scope(
    mut plan: Guard,
    connected: &str,
    report: &ScanReport,
    facts: Option<&[TableFacts]>,
) -> Guard {
    let candidates = guard::table_scope_candidates(report);
    let scope = guard::local_scope(&candidates, facts);
    for step in plan.backups.iter_mut().filter(|s| s.database == connected) {
        step.scope = scope.clone();
    }
    plan
}

/// The names of the tables the findings hit in the connected database.
fn named_tables(report: &ScanReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for f in report.findings.iter().filter(|f| {
        matches!(
            f.kind,
            Kind::DropTable
                | Kind::Truncate
                | Kind::DeleteAll
                | Kind::UpdateAll
                | Kind::DeleteBulk
                | Kind::UpdateBulk
        )
    }) {
        for o in &f.objects {
            if !names.contains(o) {
                names.push(o.clone());
            }
        }
    }
    names
}

/// `schema.table` as written in a finding, as a regclass literal.
fn regclass_literal(name: &str) -> String {
    let quoted: Vec<String> = name.split('.').map(quote_ident).collect();
    quote_literal(&quoted.join("."))
}

/// One helper query for every named table: does it exist, is it a plain
/// table, how many rows (exact below 8 MB and only where we may read it,
/// else the planner's estimate), and can deleting its rows change anything
/// else. `None` when no table is named.
fn table_facts_query(report: &ScanReport) -> Option<String> {
    let names = named_tables(report);
    if names.is_empty() {
        return None;
    }
    let values: Vec<String> = names
        .iter()
        .map(|n| format!("({}, {})", quote_literal(n), regclass_literal(n)))
        .collect();
    let sql = format!(
        "select v.name,
       coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname), ''),
       coalesce(c.relkind = 'r', false),
       case when c.oid is null then ''
            when c.relkind in ('r', 'p', 'm') and pg_relation_size(c.oid) < 8388608
                 and has_table_privilege(c.oid, 'SELECT') then
              (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %s', c.oid::regclass), false, true, '')))[1]::text
            when c.reltuples >= 0 then c.reltuples::bigint::text
            else '' end,
       coalesce(exists (select 1 from pg_constraint k where k.confrelid = c.oid and k.contype = 'f'
                          and (k.confdeltype in ('c', 'n', 'd') or k.confupdtype in ('c', 'n', 'd')))
             or exists (select 1 from pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal)
             or exists (select 1 from pg_rewrite r where r.ev_class = c.oid and r.rulename <> '_RETURN')
             or exists (select 1 from pg_inherits i where i.inhparent = c.oid), false)
from (values {}) v(name, reg)
left join pg_class c on c.oid = to_regclass(v.reg)
left join pg_namespace n on n.oid = c.relnamespace",
        values.join(", ")
    );
    Some(sql)
}

/// The rows of `table_facts_query`, as facts.
fn table_facts(rows: Vec<Vec<String>>) -> Vec<TableFacts> {
    rows.into_iter()
        .filter(|r| r.len() >= 5)
        .map(|r| TableFacts {
            name: r[0].clone(),
            qualified: (!r[1].is_empty()).then(|| r[1].clone()),
            plain_table: r[2] == "t",
            rows: r[3].parse().ok(),
            side_effects: r[4] == "t",
        })
        .collect()
}

/// "Blast radius" lines: rows in each named table, or why that is unknown.
fn blast_radius(facts: Option<&[TableFacts]>, error: Option<&str>) -> Vec<String> {
    if let Some(e) = error {
        return vec![format!("rows affected: unknown ({e})")];
    }
    facts
        .unwrap_or_default()
        .iter()
        .map(|t| match (&t.qualified, t.rows) {
            (None, _) => format!("{}: does not exist yet", t.name),
            (Some(q), Some(n)) => format!("{q}: {n} rows"),
            (Some(q), None) => format!("{q}: row count unknown"),
        })
        .collect()
}

fn backup_line(plan: &Guard) -> String {
    let parts: Vec<String> = plan
        .backups
        .iter()
        .map(|b| match &b.scope {
            Scope::Tables(t) => format!("tables {} of \"{}\"", t.join(", "), b.database),
            Scope::Database(_) => format!("the whole database \"{}\"", b.database),
        })
        .collect();
    if parts.is_empty() {
        "no backup (policy off)".to_owned()
    } else {
        format!("backup first: {}", parts.join("; "))
    }
}

/// What was found and where it is aimed, for the terminal or stderr.
fn print_summary(
    report: &ScanReport,
    target: Option<&Target>,
    radius: &[String],
    backup: &str,
    out: &mut impl io::Write,
) {
    let _ = match target {
        Some(t) => writeln!(
            out,
            "dbguard: psql is about to run destructive SQL on database \"{}\" (host {}, port {}, user {}):",
            t.dbname, t.host, t.port, t.user
        ),
        None => writeln!(out, "dbguard: psql is about to run destructive SQL:"),
    };
    safeguard::write_findings(
        report,
        SHOWN_FINDINGS,
        |f| format!("{}:{}", f.path, f.line),
        out,
    );
    for p in report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
    {
        let line = p.line.map(|l| format!(":{l}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}{line}: cannot judge: {} (treated as destructive)",
            p.path, p.message
        );
    }
    for line in radius {
        let _ = writeln!(out, "  {line}");
    }
    if !backup.is_empty() {
        let _ = writeln!(out, "  {backup}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_descriptors_are_recognised_by_name() {
        assert_eq!(inherited_fd_number(Path::new("/dev/fd/63")), Some(63));
        assert_eq!(inherited_fd_number(Path::new("/proc/self/fd/9")), Some(9));
        assert_eq!(
            inherited_fd_number(Path::new("/dev/fd/0")),
            None,
            "stdin stays"
        );
        assert_eq!(inherited_fd_number(Path::new("/tmp/fifo")), None);
        assert_eq!(inherited_fd_number(Path::new("/dev/fd/6x")), None);
    }
}
