//! The one protect pipeline. Every destructive operation a guard plans —
//! psql's SQL, a statement inside a live psql session, `dropdb`,
//! `pg_restore --clean`, an alembic migration or stamp — is carried out
//! here, in the same order: configuration and target, policy (the
//! decision), the connection check of each planned backup (with the
//! operation's own catalog query riding along), the summary (blast
//! radius), the word typed on /dev/tty (or `DBGUARD_YES`), the backups,
//! and the audit record. Every failure before the last backup is complete
//! refuses, so the operation never runs unprotected; every refusal once the
//! configuration is known is audited, passwords removed.
//!
//! A tool describes its operation through `Operation`; `take_backup` is
//! the one place a backup is taken for an operation (the guards, `dbguard
//! migrate`, `restore`'s safety backup), so a step after each backup is
//! added once.

use std::io::{self, IsTerminal, Write};

use crate::Context;
use crate::Error;
use crate::audit::{self, BackupRecord, Outcome, Record};
use crate::backup::{self, Created, Request};
use crate::config::{Config, Policy};
use crate::confirm::{self, Expect, Question, YES_ENV};
use crate::error::{Place, Refusal};
use crate::pgtools::{ExtraRows, PgTools, QueryError, quote_literal};
use crate::shim::guard::{Decision, Guard};
use crate::sql::{Finding, ScanReport};
use crate::target::Target;

pub use crate::error::BYPASS_HINT;

/// A destructive operation as a tool's guard describes it to the
/// pipeline: what it is, where it is aimed, how the policy decides it and
/// what the person is shown.
pub trait Operation {
    /// The tool, as the audit log names it.
    fn tool(&self) -> &'static str;
    /// The operation in a few words, for a refusal: `dropdb "shop"`.
    fn what(&self) -> String;
    /// The same once the database is known (psql adds it).
    fn what_on(&self, _target: &Target) -> String {
        self.what()
    }
    /// The findings recorded in the audit log.
    fn findings(&self) -> Option<&ScanReport> {
        None
    }
    /// The client programs backups and helper queries use.
    fn tools(&self, ctx: &Context) -> Result<PgTools, Error> {
        PgTools::resolve(ctx)
    }
    /// Recorded as the audit target while `target` is not known yet.
    fn audit_target(&self) -> Option<&Target> {
        None
    }
    /// The database the operation is aimed at, found with the client
    /// programs when it needs them (`None`: they cannot be found); `Err`
    /// says why it cannot be told (a refusal).
    fn target(&self, tools: Option<&PgTools>) -> Result<Target, String>;
    /// The decision under the configured policies (`policy` gives any
    /// database's, by name, on the target's server).
    fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision;
    /// A catalog query on the target, riding along in its connection
    /// check; its rows come to `scope` and `summary`.
    fn helper_query(&self) -> Option<String> {
        None
    }
    /// When the backup of `database` is impossible: where to ask whether
    /// it exists at all, and the note to print when it does not (nothing
    /// to protect there). `None`: it is a refusal in any case.
    fn when_absent(&self, _database: &str, _target: &Target) -> Option<(Target, String)> {
        None
    }

    /// True when, by the helper query's `rows`, the operation removes
    /// nothing at all: it then runs unasked and without a backup, audited
    /// as a pass.
    fn removes_nothing(&self, _rows: &Rows) -> bool {
        false
    }
    /// The plan with the backup scopes the helper query's rows allow.
    fn scope(&self, plan: Guard, _target: &Target, _rows: &Rows) -> Guard {
        plan
    }
    /// What the person sees before the question (the blast radius).
    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>);
    /// Printed before a refusal that comes before the summary was shown
    /// (psql lists what it found).
    fn before_refusal(&self, _target: Option<&Target>) {}
    /// Where the person reads the refusal (a shell, or inside psql and
    /// perhaps a transaction): it decides what a refusal tells them to do.
    fn place(&self) -> Place {
        Place::Shell
    }
    /// Why a backup cannot be taken now, when the person's own session
    /// holds a lock on a table it must read (inside psql: `BEGIN; ALTER
    /// TABLE t …; DROP TABLE t;`). `tables` are the ones to read, as
    /// `schema.table` or as written; `None` before the helper query, when
    /// the operation checks the tables it names (the helper query reads
    /// them too).
    fn blocked_by_own_locks(&self, _tables: Option<&[String]>) -> Option<String> {
        None
    }
}

/// The helper query's outcome: `None` without a query, else its rows or
/// why it failed.
pub type Rows = Option<ExtraRows>;

/// What the summary is drawn from.
pub struct View<'a> {
    pub target: &'a Target,
    pub plan: &'a Guard,
    pub preflights: &'a [backup::Preflight],
    pub rows: &'a Rows,
}

/// Carries out `op`: `Ok` means it may run now (protected, or nothing to
/// protect under the policy); `Err` is the refusal, already audited.
pub fn protect(ctx: &Context, op: &dyn Operation) -> Result<(), Error> {
    let mut record = Record::new(ctx, op.tool(), Outcome::Refused);
    if let Some(report) = op.findings() {
        record = record.with_findings(&report.findings, report.findings_omitted);
    }
    let config = match Config::load(ctx) {
        Ok(config) => config,
        Err(e) => {
            // Nowhere to audit it: the backup directory is in the file.
            op.before_refusal(None);
            return Err(Refusal::guarded_at(
                op.place(),
                op.what(),
                format!("the configuration cannot be read ({e})"),
            )
            .into());
        }
    };
    let place = op.place();
    let refuse = |record: &mut Record, what: String, why: String| -> Error {
        record.decision = Outcome::Refused;
        record.detail = Some(crate::target::redact(&why));
        write_audit(&config, record);
        Refusal::guarded_at(place, what, why).into()
    };
    record.target = op.audit_target().map(Into::into);
    // Missing client programs matter only once a backup is due: a
    // database under policy `off` needs none.
    let tools = op.tools(ctx);
    let target = match op.target(tools.as_ref().ok()) {
        Ok(t) => t,
        Err(why) => {
            op.before_refusal(None);
            return Err(refuse(&mut record, op.what(), why));
        }
    };
    record.target = Some((&target).into());
    let what = op.what_on(&target);
    let refuse_now = |record: &mut Record, why: String| {
        op.before_refusal(Some(&target));
        refuse(record, what.clone(), why)
    };

    let policy = |db: &str| config.policy_for(&target.with_dbname(db));
    let mut plan = match op.decide(&target, &policy) {
        Decision::Guard(plan) => plan,
        Decision::Pass => {
            record.decision = Outcome::PolicyOff;
            record.detail = Some(format!("policy off for database \"{}\"", target.dbname));
            write_audit(&config, &record);
            return Ok(());
        }
        Decision::Refuse(why) => return Err(refuse_now(&mut record, why)),
    };
    let tools = match tools {
        Ok(tools) => tools,
        Err(e) => {
            return Err(refuse_now(
                &mut record,
                format!("no backup is possible ({e})"),
            ));
        }
    };
    // Refused at once: the backup could only wait for the person's own
    // transaction, which waits for the backup.
    let blocked = |record: &mut Record, why: String| -> Error {
        match refuse_now(record, why) {
            Error::Refused(mut refusal) => {
                refusal.hint = Some(format!(
                    "{}; then run the statement outside a transaction, or commit the earlier changes before it",
                    place.after_no()
                ));
                refusal.into()
            }
            other => other,
        }
    };
    if let Some(why) = op.blocked_by_own_locks(None) {
        return Err(blocked(&mut record, why));
    }
    let query = op.helper_query();
    let (rows, preflights) = loop {
        let (rows, checked) = {
            let _spinner = Spinner::start("looking up what it would destroy");
            check_backups(&tools, &target, &plan, query.as_deref())
        };
        let (database, e) = match checked {
            Ok(ready) => break (rows, ready),
            Err(failed) => failed,
        };
        // `DROP DATABASE [IF EXISTS] x` or `dropdb x` where x does not
        // exist removes nothing: setup scripts do this all the time, and
        // refusing them would only teach people to bypass the guard.
        let absent = op
            .when_absent(&database, &target)
            .filter(|(ask, _)| database_exists(&tools, ask, &database) == Ok(false));
        let Some((_, note)) = absent else {
            return Err(refuse_now(
                &mut record,
                format!("no backup of \"{database}\" is possible ({e})"),
            ));
        };
        // An empty note: the tool itself says the database does not exist.
        if !note.is_empty() {
            note!("{note}");
        }
        plan.backups.retain(|b| b.database != database);
        if plan.backups.is_empty() {
            record.decision = Outcome::Pass;
            record.detail = Some(format!("database \"{database}\" does not exist"));
            write_audit(&config, &record);
            return Ok(());
        }
    };
    if op.removes_nothing(&rows) {
        record.decision = Outcome::Pass;
        record.detail = Some("none of the tables it drops or empties exists".into());
        write_audit(&config, &record);
        return Ok(());
    }
    let plan = op.scope(plan, &target, &rows);
    if let Some(why) = op.blocked_by_own_locks(Some(&tables_to_dump(&plan, &preflights))) {
        return Err(blocked(&mut record, why));
    }
    let mut summary = Vec::new();
    op.summary(
        &View {
            target: &target,
            plan: &plan,
            preflights: &preflights,
            rows: &rows,
        },
        &mut summary,
    );
    let refuse = |record: &mut Record, why: String| refuse(record, what.clone(), why);
    let declined = |record: &mut Record, no: Refusal| -> Error {
        record.decision = Outcome::Refused;
        record.detail = Some(no.why.clone());
        write_audit(&config, record);
        // The person chose: say where things stand, and no bypass.
        Refusal::of(what.clone(), no.why)
            .hint(place.after_no())
            .into()
    };
    ask_back_up_record(
        ctx,
        &Protection {
            config: &config,
            tools: &tools,
            plan: &plan,
            preflights: &preflights,
            summary: lines(&summary),
            emphasis: vec![target.dbname.clone()],
            reason: redacted_command(ctx),
        },
        &mut record,
        &refuse,
        &declined,
    )
}

/// A spinner on stderr while helper queries run, so a slow catalog does
/// not look like a hung terminal; nothing at all when stderr is not a
/// terminal. Cleared when dropped.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn start(message: &'static str) -> Spinner {
        if !io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        // Shown only when the wait is long enough to notice.
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The tables the plan's backups read: a table scope's, or every table a
/// second connection sees in the database (what pg_dump will lock; a table
/// the session created and has not committed is not among them).
fn tables_to_dump(plan: &Guard, preflights: &[backup::Preflight]) -> Vec<String> {
    let mut tables = Vec::new();
    for (step, pre) in plan.backups.iter().zip(preflights) {
        match &step.scope {
            backup::Scope::Tables(named) => tables.extend(named.iter().cloned()),
            backup::Scope::Database(_) => tables.extend(
                pre.facts
                    .tables
                    .iter()
                    .map(|t| format!("{}.{}", t.schema, t.name)),
            ),
        }
    }
    tables
}

/// Whether `database` exists on the server `maintenance` reaches; `Err`
/// when that cannot be told either.
fn database_exists(tools: &PgTools, maintenance: &Target, database: &str) -> Result<bool, String> {
    let sql = format!(
        "select count(*) from pg_database where datname = {}",
        quote_literal(database)
    );
    match tools.query(maintenance, &sql) {
        Ok(rows) => Ok(rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|n| n != "0")),
        Err(_) => Err(format!("cannot ask {maintenance} which databases exist")),
    }
}

/// Records a refusal a tool's guard decided on its own (before any
/// operation could be described: input it cannot read, an invocation it
/// cannot tell the meaning of) in the audit log, when there is one.
pub fn refused(ctx: &Context, tool: &str, target: Option<&Target>, refusal: Refusal) -> Error {
    if let Ok(config) = Config::load(ctx) {
        let mut record = Record::new(ctx, tool, Outcome::Refused);
        record.target = target.map(Into::into);
        record.detail = Some(crate::target::redact(&refusal.why));
        write_audit(&config, &record);
    }
    refusal.into()
}

/// Everything needed to carry out a `Guard` decision.
struct Protection<'a> {
    config: &'a Config,
    tools: &'a PgTools,
    plan: &'a Guard,
    /// The connection check of each planned backup, in plan order, done
    /// before anyone is asked (see `check_backups`).
    preflights: &'a [backup::Preflight],
    /// Lines shown before the question (or printed, when nobody is asked).
    summary: Vec<String>,
    /// Names the question shows in colour (the database).
    emphasis: Vec<String>,
    /// The command line, passwords removed, stored with each backup.
    reason: String,
}

/// A rendered summary split into lines.
fn lines(rendered: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(rendered)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The connection checks of a plan's backups, in plan order, or the first
/// database that cannot be backed up and why.
type Checked = Result<Vec<backup::Preflight>, (String, Error)>;

/// Runs the connection check of every planned backup, in parallel, before
/// the question: a database that cannot be backed up is refused before
/// anyone is asked. `query` is the guard's own helper query on the
/// connected database, if any: it rides in that database's connection
/// check when there is one (each psql start and connection costs time the
/// person waits for), else it runs beside the checks. Returns the query's
/// rows (`None` without a query) and the checks' outcome; on failure, the
/// database that cannot be backed up and why.
fn check_backups(
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
fn ask_back_up_record(
    ctx: &Context,
    p: &Protection<'_>,
    record: &mut Record,
    refuse: &dyn Fn(&mut Record, String) -> Error,
    declined: &dyn Fn(&mut Record, Refusal) -> Error,
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
        emphasis: p.emphasis.clone(),
    };
    match confirm::confirm(ctx, &question, false) {
        Ok(_) => {}
        Err(Error::Refused(no)) => return Err(declined(record, no)),
        Err(e) => return Err(refuse(record, e.to_string())),
    }

    for (step, pre) in p.plan.backups.iter().zip(p.preflights) {
        let created = take_backup(
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
        record.backups.push(backup_record(&created));
        record.restore_points.extend(restore_point_record(&created));
    }
    record.decision = Outcome::Confirmed;
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

/// Takes one backup that protects an operation: the guards', `dbguard
/// migrate`'s before and after the migration, `restore`'s safety backup.
/// The one place a step after each backup (a remote copy, a drill) goes.
pub fn take_backup(
    config: &Config,
    tools: &PgTools,
    pre: &backup::Preflight,
    request: &Request,
) -> Result<Created, Error> {
    let created = backup::take(config, tools, pre, request)?;
    backup::copy_in_background(config, &created);
    Ok(created)
}

/// A backup as the audit log lists it.
pub fn backup_record(created: &Created) -> BackupRecord {
    BackupRecord {
        id: created.metadata.id.clone(),
        database: created.metadata.database.clone(),
        sha256: created.metadata.sha256.clone(),
        path: created.data_path.clone(),
    }
}

/// The restore point a backup is, as the audit log lists it; `None` for
/// a backup with a data file.
pub fn restore_point_record(created: &Created) -> Option<audit::RestorePointRecord> {
    let point = created.metadata.restore_point.as_ref()?;
    Some(audit::RestorePointRecord {
        backup: created.metadata.id.clone(),
        stanza: point.stanza.clone(),
        name: point.name.clone(),
        lsn: point.lsn.clone(),
        timeline: point.timeline,
        time: point.time.to_rfc3339(),
    })
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
            let mut record = Record::new(ctx, tool, Outcome::Bypass);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::guard::decide_whole_database;

    /// An operation aimed at a database nobody can name, with a password
    /// in the reason, as a connection URI would carry it.
    struct Unresolvable;

    impl Operation for Unresolvable {
        fn tool(&self) -> &'static str {
            "psql"
        }
        fn what(&self) -> String {
            "drop table t".into()
        }
        fn tools(&self, _ctx: &Context) -> Result<PgTools, Error> {
            Err(Error::Usage("no client programs in a unit test".into()))
        }
        fn target(&self, _tools: Option<&PgTools>) -> Result<Target, String> {
            Err(
                "cannot tell which database it is for (bad URI postgresql://app:s3cret@db/app)"
                    .into(),
            )
        }
        fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision {
            decide_whole_database("DROP", &target.dbname, policy(&target.dbname))
        }
        fn summary(&self, _view: &View<'_>, _out: &mut Vec<u8>) {}
    }

    fn audit_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(audit::FILE_NAME))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn every_refusal_reaches_the_audit_log_without_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().to_str().unwrap();
        let ctx = Context::for_test(
            &["psql", "-c", "drop table t"],
            &[("DBGUARD_BACKUP_DIR", store)],
        );
        let err = protect(&ctx, &Unresolvable).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::REFUSED);
        assert!(
            err.to_string()
                .starts_with("refused drop table t: cannot tell which database it is for"),
            "{err}"
        );
        assert!(err.to_string().ends_with(BYPASS_HINT), "{err}");

        let refusal = Refusal::guarded("dropdb", "see postgresql://app:s3cret@db/app");
        refused(&ctx, "dropdb", None, refusal);

        let lines = audit_lines(dir.path());
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line["decision"], "refused");
            let detail = line["detail"].as_str().unwrap();
            assert!(detail.contains("postgresql://app@db"), "{detail}");
            assert!(!detail.contains("s3cret"), "{detail}");
        }
        assert_eq!(lines[1]["tool"], "dropdb");
    }
}
