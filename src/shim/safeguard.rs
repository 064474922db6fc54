//! The steps every guard takes once it has decided that an operation needs
//! protecting, whichever tool runs it: show what is about to happen, get
//! the word typed on /dev/tty (or `DBGUARD_YES`), take the planned backups,
//! and write the audit record. Also the audit helpers the guards share.

use std::io::{self, IsTerminal, Write};

use crate::Context;
use crate::Error;
use crate::audit::{self, BackupRecord, Record};
use crate::backup::{self, Request};
use crate::config::Config;
use crate::confirm::{self, Expect, Question, YES_ENV};
use crate::pgtools::{ExtraRows, PgTools, QueryError};
use crate::shim::guard::Guard;
use crate::sql::{Finding, ScanReport};
use crate::target::Target;

/// The one line that tells how to get past a refusal.
pub const BYPASS_HINT: &str = "to run it anyway: DBGUARD_YES=1 (backs up first, no prompt) or DBGUARD_BYPASS=1 (no guard at all)";

/// Everything needed to carry out a `Guard` decision.
pub struct Protection<'a> {
    pub config: &'a Config,
    pub tools: &'a PgTools,
    /// The database the tool connects to.
    pub target: &'a Target,
    pub plan: &'a Guard,
    /// The connection check of each planned backup, in plan order, done
    /// before anyone is asked (see `check_backups`).
    pub preflights: &'a [backup::Preflight],
    /// Lines shown before the question (or printed, when nobody is asked).
    pub summary: Vec<String>,
    /// The command line, passwords removed, stored with each backup.
    pub reason: String,
}

/// A rendered summary split into the lines `Protection::summary` holds.
pub fn lines(rendered: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(rendered)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The connection checks of a plan's backups, in plan order, or the first
/// database that cannot be backed up and why.
pub type Checked = Result<Vec<backup::Preflight>, (String, Error)>;

/// The configuration for a guard about to refuse or protect `what`; a file
/// that cannot be read refuses (nothing is known about the policy).
pub fn load_config(ctx: &Context, what: &str) -> Result<Config, Error> {
    Config::load(ctx).map_err(|e| {
        Error::Refused(format!(
            "refused {what}: the configuration cannot be read ({e}); {BYPASS_HINT}"
        ))
    })
}

/// Turns a reason into the refusal of `what`, recording it in the audit
/// log first (passwords removed from the reason).
pub fn refusal<'a>(
    config: &'a Config,
    what: &'a str,
) -> impl Fn(&mut Record, String) -> Error + 'a {
    move |record: &mut Record, why: String| {
        record.decision = "refused".into();
        record.detail = Some(crate::target::redact(&why));
        write_audit(config, record);
        Error::Refused(format!("refused {what}: {why}; {BYPASS_HINT}"))
    }
}

/// Runs the connection check of every planned backup, in parallel, before
/// the question: a database that cannot be backed up is refused before
/// anyone is asked. `query` is the guard's own helper query on the
/// connected database, if any: it rides in that database's connection
/// check when there is one (each psql start and connection costs time the
/// person waits for), else it runs beside the checks. Returns the query's
/// rows (`None` without a query) and the checks' outcome; on failure, the
/// database that cannot be backed up and why.
pub fn check_backups(
    tools: &PgTools,
    target: &Target,
    plan: &Guard,
    query: Option<&str>,
) -> (Option<ExtraRows>, Checked) {
    let rides_along = plan.backups.iter().any(|s| s.database == target.dbname);
    std::thread::scope(|threads| {
        let checks: Vec<_> = plan
            .backups
            .iter()
            .map(|step| {
                let connected = step.database == target.dbname;
                let db_target = if connected {
                    target.clone()
                } else {
                    target.with_dbname(&step.database)
                };
                let extra = query.filter(|_| connected);
                let database = step.database.clone();
                (
                    database,
                    threads.spawn(move || backup::preflight_with(tools, &db_target, extra)),
                )
            })
            .collect();
        let mut rows = query.filter(|_| !rides_along).map(|sql| {
            tools.query(target, sql).map_err(|e| match e {
                QueryError::Failed { detail, .. } => detail,
                QueryError::Spawn(p, e) => format!("{}: {e}", p.display()),
            })
        });
        let mut ready = Vec::with_capacity(checks.len());
        for (database, check) in checks {
            let outcome = check.join().unwrap_or_else(|_| {
                Err(Error::BackupFailed("the connection check crashed".into()))
            });
            match outcome {
                Ok((pre, extra)) => {
                    if query.is_some() && database == target.dbname && rows.is_none() {
                        rows = Some(extra);
                    }
                    ready.push(pre);
                }
                Err(e) => return (rows, Err((database, e))),
            }
        }
        (rows, Ok(ready))
    })
}

/// Asks, backs up and records. `refuse` turns a reason into the refusal
/// (and records it); every failure before the last backup is complete
/// refuses, so the operation never runs unprotected.
pub fn ask_back_up_record(
    ctx: &Context,
    p: &Protection<'_>,
    record: &mut Record,
    refuse: &dyn Fn(&mut Record, String) -> Error,
) -> Result<(), Error> {
    let yes = ctx.flag(YES_ENV);
    if yes || !io::stderr().is_terminal() {
        for line in &p.summary {
            note!("{line}");
        }
    }
    if !yes
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_err()
    {
        return Err(refuse(
            record,
            "no terminal to ask for confirmation on".into(),
        ));
    }
    let question = Question {
        summary: if yes { Vec::new() } else { p.summary.clone() },
        expect: Expect::Word(p.plan.word.clone()),
    };
    if let Err(e) = confirm::confirm(ctx, &question, false) {
        return Err(refuse(record, e.to_string()));
    }

    for (step, pre) in p.plan.backups.iter().zip(p.preflights) {
        let created = backup::take(
            p.config,
            p.tools,
            pre,
            &Request::new(p.reason.clone(), step.scope.clone()),
        );
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                return Err(refuse(
                    record,
                    format!("the backup of \"{}\" failed ({e})", step.database),
                ));
            }
        };
        note!(
            "dbguard: backed up \"{}\" ({}) as {}\ndbguard:   file: {}\ndbguard:   to restore: dbguard restore {}",
            step.database,
            step.scope,
            created.metadata.id,
            created.data_path.display(),
            created.metadata.id
        );
        record.backups.push(BackupRecord {
            id: created.metadata.id.clone(),
            database: step.database.clone(),
            sha256: created.metadata.sha256.clone(),
            path: created.data_path.clone(),
        });
    }
    record.decision = "confirmed".into();
    record.detail = Some(format!(
        "policy {:?}, {}",
        p.plan.policy,
        if yes {
            "DBGUARD_YES"
        } else {
            "typed on the terminal"
        }
    ));
    write_audit(p.config, record);
    Ok(())
}

/// The destructive statements of `report`, as the guards list them before
/// asking: at most `shown` of them, each as `  <where>: <kind> <objects>`
/// with its text beneath, then how many more there are. `locate` says where
/// a statement is (`path:line` for a script, `line N` for rendered SQL).
pub fn write_findings(
    report: &ScanReport,
    shown: usize,
    locate: impl Fn(&Finding) -> String,
    out: &mut impl Write,
) {
    let summary = crate::report::GuardSummary {
        report,
        shown,
        locate: &locate,
    };
    // A summary that cannot be shown must not stop the guard: the question
    // and the refusal say the rest.
    let _ = crate::report::text(&crate::report::Report::Guard(summary), out, false);
}

/// Appends to the audit log; a failure is a warning, not a refusal, since
/// the backup (the thing that protects data) is already complete.
pub fn write_audit(config: &Config, record: &Record) {
    let outcome = config
        .backup_dir()
        .and_then(|dir| audit::append(&dir, record).map_err(|e| Error::io("audit log", e)));
    if let Err(e) = outcome {
        note!("dbguard: warning: could not write the audit log: {e}");
    }
}

/// `DBGUARD_BYPASS`: no analysis, but a line in the audit log.
pub fn record_bypass(ctx: &Context, tool: &str) {
    match Config::load(ctx) {
        Ok(config) => {
            let mut record = Record::new(ctx, tool, "bypass");
            record.detail = Some("DBGUARD_BYPASS set: not analysed".into());
            write_audit(&config, &record);
        }
        Err(e) => note!("dbguard: warning: could not write the audit log: {e}"),
    }
}

/// The command line as one string, passwords removed.
pub fn redacted_command(ctx: &Context) -> String {
    crate::target::redact(
        &ctx.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
    )
}
