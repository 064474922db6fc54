//! The psql guard: read every piece of SQL psql is about to run (`-c`,
//! `-f` with includes, stdin), and when any of it is destructive, plan its
//! protection (`statements.rs` describes it, `protect.rs` shows it, asks,
//! backs up and records); then hand psql what was spooled and, when psql
//! must be guarded from inside, the preload library. The decision itself
//! is in `guard.rs`.
//!
//! The path for harmless SQL is kept short on purpose: no configuration,
//! no connection and no child process before exec.

pub mod args;

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use std::rc::Rc;

use crate::config::Config;
use crate::error::Refusal;
use crate::pgtools::PgTools;
use crate::shim::launch::{Launch, Then};
use crate::shim::live;
use crate::shim::statements::Statements;
use crate::shim::stdin::{self, StdinKind};
use crate::shim::tools::psql::args::{Action, ArgPos, Mode, PsqlArgs};
use crate::shim::{Invocation, Plan};
use crate::sql::{Problem, ScanReport, Scanner, Severity};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// Plans a psql run: reads every piece of SQL it will run (spooling what
/// can be read only once) and protects it when any of it is destructive.
/// What is handed to psql afterwards is `hand_over`'s.
pub fn assess<'a>(inv: &Invocation<'a>) -> Plan<'a> {
    let ctx = inv.ctx;
    let argv = ctx.args.get(1..).unwrap_or_default();
    let args = PsqlArgs::parse(argv, ctx.var("POSIXLY_CORRECT").is_some());
    if args.mode() == Mode::NoSql {
        return Plan::launch();
    }
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut scanned = match scan(&args, &cwd) {
        Ok(scanned) => scanned,
        Err(refusal) => return Plan::Refuse(refusal),
    };
    if !scanned.report.estimate_candidates.is_empty() {
        estimate_bulk(ctx, &args, &mut scanned.report);
    }
    let report = Rc::new(std::mem::take(&mut scanned.report));
    // Set when the statements pass because they remove nothing (see
    // `Statements::passed_unasked`): psql then gets no confirmation.
    let unasked = Rc::new(Cell::new(false));
    let then: Then<'a> = {
        let report = Rc::clone(&report);
        let unasked = Rc::clone(&unasked);
        Box::new(move || hand_over(ctx, argv, scanned, &report, !unasked.get()))
    };
    if report.is_safe() {
        return Plan::Pass(then);
    }
    let conn = connection_args(&args);
    let mut statements = Statements::new(report, Target::resolve(&conn, ctx), move || {
        PgTools::resolve(ctx)
    });
    statements.passed_unasked = unasked;
    // What passes because it removes nothing now is judged again when
    // psql sends it, by the library: only when the library is there.
    statements.judged_when_sent = live::preload_library(ctx).is_ok();
    Plan::Protect {
        operation: Box::new(statements),
        then,
    }
}

/// Once the SQL is judged (and protected): stdin replaced by its spool
/// when it was a pipe, each spooled `-f` pipe handed over (under its own
/// `/dev/fd/N` name, or with the arguments changed to name the spool), and
/// the preload library added when psql must be guarded from inside.
fn hand_over(
    ctx: &Context,
    argv: &[OsString],
    scanned: Scanned,
    report: &ScanReport,
    confirmed: bool,
) -> Result<Launch, Error> {
    if let Some(mut file) = scanned.stdin {
        stdin::install_as_stdin(&mut file)
            .map_err(|e| refused_io("cannot hand the spooled stdin to psql", e))?;
    }
    let mut rewritten: Option<Vec<OsString>> = None;
    let mut taken = Vec::new();
    for pipe in scanned.pipes {
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
    let env = preload_env(ctx, report, scanned.interactive, confirmed)?;
    Ok(Launch::Exec {
        args: rewritten,
        env,
    })
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
fn preload_env(
    ctx: &Context,
    report: &ScanReport,
    interactive: bool,
    confirmed: bool,
) -> Result<Vec<(OsString, OsString)>, Error> {
    let library = match live::preload_library(ctx) {
        Ok(path) => path,
        // A script whose SQL was all seen before psql starts keeps psql's
        // own output byte for byte: the missing library is `doctor`'s to
        // report.
        Err(_) if !interactive && !report.builds_sql_at_run_time => {
            return Ok(Vec::new());
        }
        Err(looked) => {
            if interactive {
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
    // Without the check beside it the library still refuses what may be
    // destructive (fail closed); a person at the prompt is told why first.
    if interactive && let Err(why) = live::check_library(&library) {
        note!("dbguard: {why}");
    }
    let mut preload = library.into_os_string();
    if let Some(existing) = ctx.var("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let mut env = vec![(OsString::from("LD_PRELOAD"), preload)];
    // Statements let through because they removed nothing when asked
    // about were not confirmed: the library judges them when sent.
    let keys = if confirmed {
        live::confirmed_keys(report)
    } else {
        Vec::new()
    };
    if !keys.is_empty() {
        let path = live::write_confirmed(&keys)
            .map_err(|e| refused_io("cannot pass the confirmed statements on to psql", e))?;
        env.push((live::CONFIRMED_ENV.into(), path.into_os_string()));
    }
    Ok(env)
}

/// Scans what psql will run, in psql's order, with its variables, and
/// notes whether stdin is a terminal psql will read a session from.
fn scan(args: &PsqlArgs, cwd: &Path) -> Result<Scanned, Refusal> {
    let mut scanner = Scanner::new(cwd);
    // psql honours -1 only around -c and -f actions.
    if args.single_transaction && args.mode() == Mode::Actions {
        scanner.single_transaction();
    }
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
                    Action::Command(sql) => scanner.scan_command("-c", sql.as_bytes(), cwd),
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
fn scan_pipe(scanner: &mut Scanner, path: &Path, cwd: &Path) -> Result<File, Refusal> {
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
fn scan_stdin(scanner: &mut Scanner, cwd: &Path) -> Result<Option<File>, Refusal> {
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
fn refused_io(what: &str, e: io::Error) -> Refusal {
    Refusal::because(format!("{what}: {e}")).hint("psql was not started")
}

fn lossy(value: Option<&OsStr>) -> Option<String> {
    value.map(|v| v.to_string_lossy().into_owned())
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
