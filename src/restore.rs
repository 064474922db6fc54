//! Restoring a backup into a database, exactly or not at all (DESIGN.md
//! invariant 6).
//!
//! In order: find the backup and re-verify every byte (a corrupted or
//! incomplete backup is refused); decide the target (see [`choose_target`]
//! for the precedence between flags, the `PG*` environment and the
//! backup's origin); show what will be overwritten and how; have the person
//! type the target database's name; take a safety backup of the current
//! state; then restore by one of three methods:
//! - **swap** (whole-database backups, the default): into a new database,
//!   checked there (exact row counts and content checksums: a plain
//!   dump's from its metadata, an archive's computed from its data as it
//!   is restored; the new database read back by pg_dump, see
//!   `pg_dump::read_back`), then renamed into place while
//!   the replaced database is kept under another name (`restore::swap`);
//! - **tables** (table-scoped backups): rows and sequence positions put back
//!   into the existing tables in one transaction, dependents untouched
//!   (`restore::tables`); tables that no longer exist are recreated from the
//!   dump;
//! - **in place** (`--in-place`, where a swap is impossible): the dump runs
//!   over the existing database in one transaction (`psql -1`, `pg_restore
//!   --single-transaction --clean --if-exists`); objects created after the
//!   backup that depend on restored ones make it fail, unchanged.
//!
//! A pgBackRest restore point is first recovered in a scratch cluster and
//! dumped, then restored by one of the above (`restore::pitr`).
//!
//! Afterwards every table in the metadata is checked for existence and row
//! count, and the restore is written to the audit log; so is a restore
//! refused or cancelled before anything changed.

pub mod drill;
pub mod pitr;
pub mod swap;
pub mod tables;

use crate::report::text::plural;
use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;

use indicatif::HumanBytes;

use crate::audit::{BackupRecord, Outcome, Record};
use crate::backup::engine::pg_dump::{self, CopyCounter};
use crate::backup::store::{Status, VerifyOutcome};
use crate::backup::{self, Format, Metadata, Request, Scope, Store};
use crate::config::Config;
use crate::confirm::{self, Consent, Expect, Question, YES_ENV};
use crate::error::{Refusal, exit};
use crate::pgtools::{DatabaseFacts, PgTools, first_error_line, identify, quote_ident};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// What to restore where.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub id: String,
    /// An explicit connection; empty means the `PG*` environment, or the
    /// database the backup came from (see [`choose_target`]).
    pub connection: ConnectionArgs,
    /// Restore into the database the backup came from, whatever `PG*` says.
    pub origin: bool,
    pub yes: bool,
    /// The question was already asked and answered for this very restore,
    /// and how: a restore point's restore asks once, before its scratch
    /// cluster, then brings back what it recovered through here. It is not
    /// asked again, and the audit record says how it was really answered
    /// (a typed word is not `--yes`).
    pub answered: Option<Consent>,
    pub safety_backup: bool,
    /// Parallel pg_restore jobs (archive formats only).
    pub jobs: Option<u32>,
    /// Restore over the existing database instead of swapping in a new one.
    pub in_place: bool,
    /// End other sessions on the database being replaced by a swap.
    pub terminate: bool,
    /// Restore from this remote's copy (`--from`), even when the local one verifies.
    pub from: Option<String>,
    /// The port for the scratch cluster a restore point is restored into;
    /// `None` picks a free one.
    pub scratch_port: Option<u16>,
}

/// How a restore is carried out (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Swap,
    Tables,
    InPlace,
}

/// Where the target came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// `-d/-h/-p/-U` or positional arguments, completed part by part from
    /// `PG*` and then the backup's origin.
    Flags,
    /// `--origin`: the backup's recorded host, port, user and database.
    OriginFlag,
    /// No flags: the `PG*` environment names at least part of the
    /// connection (the rest comes from the backup's origin).
    Environment,
    /// No flags and no `PG*` connection variables: the backup's origin.
    Origin,
}

impl TargetSource {
    /// Whether the person named the target on the command line.
    pub fn explicit(self) -> bool {
        matches!(self, TargetSource::Flags | TargetSource::OriginFlag)
    }

    fn describe(self) -> &'static str {
        match self {
            TargetSource::Flags => "from the command line",
            TargetSource::OriginFlag => "the backup's origin (--origin)",
            TargetSource::Environment => "from the PG* environment",
            TargetSource::Origin => "the backup's origin",
        }
    }
}

/// The `PG*` variables that say which database libpq connects to.
const CONNECTION_VARS: [&str; 6] = [
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSERVICE",
];

/// The target of `request`, from its flags, the `PG*` environment and
/// the backup's `origin` (see `choose_target`).
pub(crate) fn request_target(
    ctx: &Context,
    request: &RestoreRequest,
    origin: &Target,
) -> Result<(Target, TargetSource), Error> {
    let env = |name: &str| {
        ctx.var(name)
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    choose_target(
        &RequestTarget {
            connection: request.connection.clone(),
            origin: request.origin,
        },
        origin,
        env,
    )
}

/// The restore target. `--origin` takes all of it from the backup.
/// Otherwise each part (host, port, user, database) comes from the command
/// line (`-h/-p/-U/-d`, positionals, a conninfo or URI in `-d`), else from
/// the `PG*` environment, else from the backup's origin; with `PGSERVICE`
/// set, parts the command line leaves open are the service file's, as in
/// libpq. The source says which of these named the connection.
pub fn choose_target(
    request: &RequestTarget,
    origin: &Target,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Target, TargetSource), Error> {
    let given = &request.connection;
    if request.origin {
        if !given.is_empty() {
            return Err(Error::Usage(
                "--origin restores into the database the backup came from; it cannot go with -d/-h/-p/-U".into(),
            ));
        }
        return Ok((origin.clone(), TargetSource::OriginFlag));
    }
    let source = if !given.is_empty() {
        TargetSource::Flags
    } else if CONNECTION_VARS.iter().any(|v| env(v).is_some()) {
        TargetSource::Environment
    } else {
        TargetSource::Origin
    };
    let service = env("PGSERVICE").is_some();
    let from_origin = |flag: &Option<String>, vars: &[&str], value: String| {
        flag.clone()
            .or_else(|| (!service && vars.iter().all(|v| env(v).is_none())).then_some(value))
    };
    let filled = ConnectionArgs {
        host: from_origin(&given.host, &["PGHOST", "PGHOSTADDR"], origin.host.clone()),
        port: from_origin(&given.port, &["PGPORT"], origin.port.to_string()),
        user: from_origin(&given.user, &["PGUSER"], origin.user.clone()),
        dbname: from_origin(&given.dbname, &["PGDATABASE"], origin.dbname.clone()),
    };
    Ok((Target::resolve_with(&filled, &env)?, source))
}

/// The parts of a request that choose the target.
#[derive(Debug, Clone, Default)]
pub struct RequestTarget {
    pub connection: ConnectionArgs,
    pub origin: bool,
}

/// One table's state after the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: String,
    /// Rows in the backup: exact for plain dumps, else the estimate.
    pub expected: Option<i64>,
    pub exact: bool,
    /// Rows now; `None` when the table is missing.
    pub actual: Option<i64>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        match (self.actual, self.exact) {
            (None, _) => false,
            (Some(n), true) => Some(n) == self.expected,
            (Some(_), false) => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub id: String,
    pub target: Target,
    pub safety_backup: Option<String>,
    pub method: Method,
    pub atomic: bool,
    /// A swap's replaced database, kept until the user drops it.
    pub replaced: Option<String>,
    pub checks: Vec<TableCheck>,
    /// Tables whose content was checked against checksums before a swap.
    pub checksummed: usize,
}

/// Runs a restore; `out` gets the summary.
pub fn restore(
    ctx: &Context,
    request: &RestoreRequest,
    out: &mut impl Write,
) -> Result<RestoreReport, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    // Along the hierarchy: the local copy when it verifies, else a remote one.
    if let Some(note) =
        backup::copies::bring_back(&config, &store, &request.id, request.from.as_deref())?
    {
        eprintln!("{note}");
    }
    let entry = store.find(&request.id)?.ok_or_else(|| {
        Error::Usage(format!(
            "no backup {} in {}; `dbguard list` shows the ids",
            request.id,
            store.dir().display()
        ))
    })?;
    let verdict = store.verify(&entry);
    let _ = store.record_verification(
        &entry.id,
        VerifyOutcome {
            id: entry.id.clone(),
            at: chrono::Local::now().fixed_offset(),
            status: verdict.status.label().to_owned(),
            how: "verify".into(),
        },
    );
    let meta = match (&verdict.status, entry.meta()) {
        (Status::Ok, Some(meta)) => meta.clone(),
        (status, _) => {
            return Err(Error::Failed {
                message: format!(
                    "refusing to restore {}: {} ({}); pick another backup from `dbguard list`",
                    entry.id,
                    status.label(),
                    status.detail().unwrap_or("no metadata")
                ),
                code: exit::FOUND,
            });
        }
    };
    if let Some(point) = &meta.restore_point {
        return pitr::restore(ctx, request, &meta, point, out);
    }
    let data_path = entry
        .data
        .clone()
        .ok_or_else(|| Error::Usage(format!("backup {} has no data file", entry.id)))?;
    if request.jobs.is_some() && meta.format == Format::Plain {
        return Err(Error::Usage(
            "-j/--jobs needs a custom or directory backup; plain SQL is restored by psql in one session".into(),
        ));
    }

    let tools = PgTools::resolve(ctx)?;
    let original = Target::explicit(&meta.host, meta.port, &meta.user, &meta.database);
    let (target, source) = request_target(ctx, request, &original)?;

    // The target may not exist (dropped by accident): it is created, after asking.
    let (target, current) = match backup::preflight(&tools, &target) {
        Ok(pre) => (pre.target.clone(), Some(pre)),
        Err(Error::Unreachable { detail, .. }) if detail.contains("does not exist") => {
            (target, None)
        }
        Err(e) => return Err(e),
    };
    let different =
        target.dbname != meta.database || !same_server(&tools, &original, &target, source);
    let unasked = match request.answered {
        Some(consent) => consent != Consent::Typed,
        None => request.yes || ctx.flag(YES_ENV),
    };
    // A restore refused or cancelled before anything was changed is
    // audited too, with its reason (passwords removed).
    let refused = |err: Error| -> Error {
        if let Error::Refused(refusal) = &err {
            let mut record = Record::new(ctx, "restore", Outcome::Refused);
            record.target = Some((&target).into());
            record.yes = unasked;
            record.detail = Some(crate::target::redact(&format!(
                "restore of {}: {refusal}",
                entry.id
            )));
            write_audit(&config, &record);
        }
        err
    };
    if different && unasked && !source.explicit() {
        return Err(refused(Refusal::of(
            format!("restore into {target}"),
            format!(
                "it is not the database the backup came from (\"{}\" on {}:{}; the target came from {})",
                meta.database,
                meta.host,
                meta.port,
                source.describe()
            ),
        )
        .hint("without a question the target must be explicit: name it with -d/-h/-p/-U, or use --origin for the backup's own database")
        .into()));
    }
    let method = match (&meta.scope, request.in_place) {
        (Scope::Tables(_), _) => Method::Tables,
        (_, true) => Method::InPlace,
        _ => Method::Swap,
    };
    if request.jobs.is_some() && method == Method::Tables {
        return Err(Error::Usage(
            "-j/--jobs restores whole databases; a table-scoped backup is restored in one transaction".into(),
        ));
    }

    let question = Question {
        summary: summary(
            &meta,
            &target,
            source,
            current.as_ref().map(|p| &p.facts),
            different,
            method,
            request,
        ),
        expect: Expect::Word(target.dbname.clone()),
        emphasis: vec![target.dbname.clone()],
    };
    let consent = match request.answered {
        Some(consent) => consent,
        None => confirm::confirm(ctx, &question, request.yes).map_err(refused)?,
    };
    if consent != Consent::Typed {
        for line in &question.summary {
            eprintln!("{line}");
        }
    }

    let mut safety = None;
    match &current {
        Some(pre) if request.safety_backup => {
            let mut req = Request::new(
                format!("safety backup before restoring {}", entry.id),
                Scope::database(),
            );
            // Retention must not run here: it could remove the very backup being restored.
            req.prune = false;
            let created =
                crate::shim::protect::take_backup(&config, &tools, pre, &req).map_err(|e| {
                    Error::Failed {
                        message: format!(
                            "{e}; the restore was not started (use --no-safety-backup to skip it)"
                        ),
                        code: exit::ERROR,
                    }
                })?;
            writeln!(
                out,
                "Safety backup of the current state: {}",
                created.metadata.id
            )
            .map_err(|e| Error::io("writing to stdout", e))?;
            safety = Some(created.metadata.id);
        }
        Some(_) => {}
        None if method != Method::Swap => create_database(&tools, &target)?,
        None => {}
    }

    let tables: Vec<(String, String)> = meta
        .tables
        .iter()
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect();
    let mut audit = Record::new(ctx, "restore", Outcome::RestoreFailed);
    audit.target = Some((&target).into());
    audit.yes = unasked;
    let outcome = match method {
        Method::Swap => restore_by_swap(
            &tools,
            &target,
            current.is_some(),
            &meta,
            &data_path,
            &tables,
            request,
            out,
        ),
        Method::Tables => {
            let present = tools.count_rows(&target, &tables)?;
            let result = if !tables.is_empty() && present.iter().all(Option::is_some) {
                tables::restore(&tools, &target, &meta, &data_path, &tables)
            } else {
                // Tables that are gone come back from the dump as they
                // were; nothing can depend on a table that does not exist.
                run_restore(&tools, &target, &meta, &data_path, None)
            };
            result.map(|()| (None, RowCounts::new(), 0)).map_err(|e| {
                format!("{e}; it ran in one transaction, so the database is unchanged")
            })
        }
        Method::InPlace => {
            let atomic = request.jobs.is_none();
            if !atomic {
                writeln!(
                    out,
                    "Note: a parallel in-place restore (-j) runs in several sessions and is NOT atomic; a failure can leave the database half restored."
                )
                .map_err(|e| Error::io("writing to stdout", e))?;
            }
            run_restore(&tools, &target, &meta, &data_path, request.jobs)
                .map(|()| (None, RowCounts::new(), 0))
                .map_err(|e| {
                    format!(
                        "{e}; {}",
                        if atomic {
                            "it ran in one transaction, so the database is unchanged"
                        } else {
                            "the database may be partly restored"
                        }
                    )
                })
        }
    };
    let (replaced, counted, checksummed) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let safety = safety
                .as_deref()
                .map(|id| format!(" (safety backup: {id})"))
                .unwrap_or_default();
            let message = format!(
                "restore of {} into \"{}\" failed: {e}{safety}",
                entry.id, target.dbname
            );
            audit.detail = Some(crate::target::redact(&message));
            write_audit(&config, &audit);
            return Err(Error::Failed {
                message,
                code: exit::ERROR,
            });
        }
    };

    let counts = tools.count_rows(&target, &tables)?;
    let checks = table_checks(&meta, &counted, counts);
    audit.decision = Outcome::Restored;
    audit.detail = Some(format!(
        "restored {} by {}{}{}",
        entry.id,
        match method {
            Method::Swap => "swap",
            Method::Tables => "table data in place",
            Method::InPlace => "in-place restore",
        },
        replaced
            .as_deref()
            .map(|r| format!("; replaced database kept as \"{r}\""))
            .unwrap_or_default(),
        if checks.iter().all(TableCheck::ok) {
            String::new()
        } else {
            "; some tables do not match the backup".to_owned()
        }
    ));
    audit
        .backups
        .extend(entry.data.as_ref().map(|path| BackupRecord {
            id: entry.id.clone(),
            database: meta.database.clone(),
            sha256: meta.sha256.clone(),
            path: path.clone(),
        }));
    write_audit(&config, &audit);
    let report = RestoreReport {
        id: entry.id.clone(),
        target,
        safety_backup: safety,
        method,
        atomic: method != Method::InPlace || request.jobs.is_none(),
        replaced,
        checks,
        checksummed,
    };
    write_report(out, &report).map_err(|e| Error::io("writing to stdout", e))?;
    Ok(report)
}

/// Appends `record` to the audit log beside the backups; a log that cannot
/// be written is a warning, not a failed restore.
fn write_audit(config: &Config, record: &Record) {
    let written = config
        .backup_dir()
        .and_then(|dir| crate::audit::append(&dir, record).map_err(|e| Error::io("audit log", e)));
    if let Err(e) = written {
        note!("dbguard: warning: could not write the audit log: {e}");
    }
}

/// Whether `target` is on the server the backup was taken from. Spelled
/// the same way, it is; spelled differently (`localhost` for the socket
/// directory, `127.0.0.1`, another port of the same server), the servers are
/// asked who they are. When either cannot answer, the prompt errs on the
/// side of saying "different".
fn same_server(tools: &PgTools, original: &Target, target: &Target, source: TargetSource) -> bool {
    if matches!(source, TargetSource::Origin | TargetSource::OriginFlag)
        || (target.host == original.host && target.port == original.port)
    {
        return true;
    }
    // The cluster answers for every database on it: when the backed-up one
    // is gone, the maintenance database still says who the server is.
    let ask = |t: &Target| identify(tools, t).or_else(|_| identify(tools, &swap::maintenance(t)));
    match (ask(original), ask(target)) {
        (Ok(a), Ok(b)) => a.system_identifier == b.system_identifier,
        _ => false,
    }
}

/// The whole-database restore by swap; returns the replaced database's
/// new name, if there was one. On error the target is as it was and the
/// staging database is gone (or named in the error).
#[allow(clippy::too_many_arguments)]
fn restore_by_swap(
    tools: &PgTools,
    target: &Target,
    exists: bool,
    meta: &Metadata,
    data: &std::path::Path,
    tables: &[(String, String)],
    request: &RestoreRequest,
    out: &mut impl Write,
) -> Result<(Option<String>, RowCounts, usize), String> {
    let admin = swap::maintenance(target);
    let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S").to_string();
    // The process id too: two restores of one database within a second
    // (an archive restored twice, a script) must not reuse either name.
    let stamp = format!("{stamp}_{}", std::process::id());
    let staging = swap::staging_name(&target.dbname, &stamp);
    let replaced = exists.then(|| swap::replaced_name(&target.dbname, &stamp));
    let shape = if exists {
        swap::shape(tools, &admin, &target.dbname).map_err(|e| {
            format!(
                "{e}; a swap works from the database \"{}\" on the same server, so nothing was changed; \
                 --in-place restores over the existing database instead, with its limits",
                admin.dbname
            )
        })?
    } else {
        None
    };
    swap::create_staging(tools, &admin, &staging, shape.as_ref()).map_err(|e| e.to_string())?;
    let staged = target.with_dbname(&staging);
    let give_up = |why: String| -> String {
        match swap::drop_staging(tools, &admin, &staging) {
            None => format!("{why}; \"{}\" was not touched", target.dbname),
            Some(left) => format!("{why}; \"{}\" was not touched, but {left}", target.dbname),
        }
    };

    let streamed = meta.format != Format::Plain && request.jobs.is_none();
    let restored = if streamed {
        restore_archive_counting(tools, &staged, data, None)
    } else {
        run_restore(tools, &staged, meta, data, request.jobs).map(|()| CopyCounter::default())
    };
    let mut seen = restored.map_err(|e| {
        give_up(format!(
            "restoring into the new database \"{staging}\" failed: {e}"
        ))
    })?;
    if meta.format != Format::Plain && !streamed {
        // A parallel restore streams nothing past dbguard: the expected
        // rows and checksums come from the archive's own data.
        seen = archive_data(tools, &staged, data).map_err(|e| {
            give_up(format!(
                "the archive's data cannot be read for the check: {e}"
            ))
        })?;
    }
    let counted = seen.counts.clone();
    let counts = tools
        .count_rows(&staged, tables)
        .map_err(|e| give_up(format!("the restored database cannot be checked: {e}")))?;
    let wrong: Vec<String> = table_checks(meta, &counted, counts)
        .into_iter()
        .filter(|c| !c.ok())
        .map(|c| c.table)
        .collect();
    if !wrong.is_empty() {
        return Err(give_up(format!(
            "the restored copy does not match the backup's metadata ({})",
            wrong.join(", ")
        )));
    }
    let expected = expected_checksums(meta, &seen);
    if !expected.is_empty() {
        let options = if exists {
            output_settings(tools, target)
        } else {
            String::new()
        };
        let read = pg_dump::read_back(tools, &staged, &options)
            .map_err(|e| give_up(format!("the restored database cannot be read back: {e}")))?;
        let differ = checksum_mismatches(&expected, &read);
        if !differ.is_empty() {
            return Err(give_up(format!(
                "the restored copy's content does not match the checksums recorded at backup time ({})",
                differ.join(", ")
            )));
        }
    }
    let checksummed = expected.len();

    // The database's own settings and grants come over only now: a
    // setting such as default_transaction_read_only must not hit the restore.
    if let Some(shape) = &shape {
        let mut warnings = swap::carry_over(tools, &admin, &target.dbname, &staging);
        warnings.extend(swap::hand_over(tools, &admin, &staging, shape));
        for warning in warnings {
            let _ = writeln!(out, "Warning: {warning}");
        }
    }
    if exists {
        let mut others =
            swap::sessions(tools, &admin, &target.dbname).map_err(|e| give_up(e.to_string()))?;
        // With --terminate, new connections are shut out first (a pool
        // would reconnect between the terminate and the rename) and let in
        // again afterwards, to whichever database then has the old one's name.
        let mut closed = false;
        let reopen_original = |closed: bool| {
            if closed {
                let _ = swap::allow_connections(tools, &admin, &target.dbname, true);
            }
        };
        if !others.is_empty() && request.terminate {
            let _ = writeln!(
                out,
                "Ending {} other session(s) on \"{}\" (--terminate).",
                others.len(),
                target.dbname
            );
            closed = swap::allow_connections(tools, &admin, &target.dbname, false).is_ok();
            others = swap::terminate(tools, &admin, &target.dbname).map_err(|e| {
                reopen_original(closed);
                give_up(e.to_string())
            })?;
        }
        if !others.is_empty() {
            reopen_original(closed);
            let list: Vec<String> = others.iter().map(ToString::to_string).collect();
            return Err(give_up(format!(
                "other sessions are connected to \"{}\" and a database in use cannot be renamed: {}; \
                 close them, or rerun with --terminate to end them (or --in-place to restore over the database in use, with its limits)",
                target.dbname,
                list.join(", ")
            )));
        }
        let swapped = swap::swap(tools, &admin, &target.dbname, &staging, replaced.as_deref());
        match (&swapped, &replaced) {
            (Ok(()), Some(old)) if closed => {
                let _ = swap::allow_connections(tools, &admin, old, true);
            }
            _ => reopen_original(closed),
        }
        swapped.map_err(|e| {
            give_up(format!(
                "the swap failed ({e}); --in-place restores over the existing database instead, with its limits"
            ))
        })?;
        return Ok((replaced, counted, checksummed));
    }
    swap::swap(tools, &admin, &target.dbname, &staging, None).map_err(|e| {
        give_up(format!(
            "the swap failed ({e}); --in-place restores over the existing database instead, with its limits"
        ))
    })?;
    Ok((replaced, counted, checksummed))
}

/// The checksum each table in the metadata should have, where one is
/// known: recorded in the sidecar (plain dumps), else summed from the
/// archive's data as it went past (`seen`).
fn expected_checksums(
    meta: &Metadata,
    seen: &CopyCounter,
) -> Vec<(String, (String, String), String)> {
    let from_archive = seen.checksums();
    meta.tables
        .iter()
        .filter_map(|t| {
            let key = (t.schema.clone(), t.name.clone());
            let sum = t
                .checksum
                .clone()
                .or_else(|| from_archive.get(&key).cloned())?;
            Some((t.qualified(), key, sum))
        })
        .collect()
}

/// The tables whose content read back from the restored database differs
/// from the expected checksum, or whose data was not read back at all.
fn checksum_mismatches(
    expected: &[(String, (String, String), String)],
    read: &CopyCounter,
) -> Vec<String> {
    let actual = read.checksums();
    expected
        .iter()
        .filter(|(_, key, sum)| actual.get(key) != Some(sum))
        .map(|(name, _, _)| name.clone())
        .collect()
}

/// Settings that change how pg_dump prints values but that it does not
/// set itself, as the database being replaced has them (its own `ALTER
/// DATABASE ... SET` come over to the new one only after the check), in
/// `PGOPTIONS` form. Unknown ones are left to the server's defaults.
fn output_settings(tools: &PgTools, target: &Target) -> String {
    let Ok(rows) = tools.query(
        target,
        "SELECT current_setting('TimeZone'), current_setting('bytea_output')",
    ) else {
        return String::new();
    };
    let Some(row) = rows.first() else {
        return String::new();
    };
    let escape = |v: &str| v.replace('\\', "\\\\").replace(' ', "\\ ");
    ["TimeZone", "bytea_output"]
        .iter()
        .zip(row)
        .map(|(name, value)| format!("-c {name}={}", escape(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An archive's data, as `pg_restore --data-only -f -` prints it, streamed
/// through the COPY counter (nothing is written).
fn archive_data(
    tools: &PgTools,
    target: &Target,
    data: &std::path::Path,
) -> Result<CopyCounter, String> {
    let mut cmd = tools.command(&tools.pg_restore, target);
    cmd.args(["--data-only", "-f", "-"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tools.pg_restore.display()))?;
    let err = child.stderr.take();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = err {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        text
    });
    let mut counter = CopyCounter::default();
    if let Some(mut from) = child.stdout.take() {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match std::io::Read::read(&mut from, &mut buf) {
                Ok(0) => break,
                Ok(n) => counter.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("reading pg_restore's output: {e}"));
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for pg_restore: {e}"))?;
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(first_error_line(&stderr));
    }
    Ok(counter)
}

/// Rows per table as counted in an archive's data while it was restored.
type RowCounts = HashMap<(String, String), i64>;

/// The check of every table in the metadata against `actual` (in the same
/// order): exact where the metadata or the restore counted the rows.
fn table_checks(meta: &Metadata, counted: &RowCounts, actual: Vec<Option<i64>>) -> Vec<TableCheck> {
    meta.tables
        .iter()
        .zip(actual)
        .map(|(t, actual)| {
            let rows = t
                .rows
                .or_else(|| counted.get(&(t.schema.clone(), t.name.clone())).copied());
            TableCheck {
                table: t.qualified(),
                expected: rows.or(t.rows_estimate),
                exact: rows.is_some(),
                actual,
            }
        })
        .collect()
}

/// Restores an archive into an empty database as one psql transaction fed
/// by `pg_restore -f -`, counting each table's rows on the way, so that an
/// archive's restore is checked against exact counts as a plain dump's is.
/// `list` is a table of contents for `pg_restore -L` (the drill leaves
/// entries out with it).
fn restore_archive_counting(
    tools: &PgTools,
    target: &Target,
    data: &std::path::Path,
    list: Option<&std::path::Path>,
) -> Result<CopyCounter, String> {
    let mut script = tools.command(&tools.pg_restore, target);
    script.args(["-f", "-"]);
    if let Some(list) = list {
        script.arg("-L").arg(list);
    }
    script
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut script = script
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tools.pg_restore.display()))?;
    let mut psql = tools.command(&tools.psql, target);
    psql.args(["-X", "-w", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .args(target.libpq_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut psql = match psql.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = script.kill();
            let _ = script.wait();
            return Err(format!("cannot run {}: {e}", tools.psql.display()));
        }
    };
    let script_err = script.stderr.take();
    let script_err = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = script_err {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        text
    });
    let mut counter = CopyCounter::default();
    if let (Some(mut from), Some(mut to)) = (script.stdout.take(), psql.stdin.take()) {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match std::io::Read::read(&mut from, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    counter.feed(&buf[..n]);
                    // psql gone (an error stopped it): its stderr says why.
                    if to.write_all(&buf[..n]).is_err() {
                        let _ = script.kill();
                        break;
                    }
                }
            }
        }
    }
    let script_status = script
        .wait()
        .map_err(|e| format!("waiting for pg_restore: {e}"))?;
    let script_err = script_err.join().unwrap_or_default();
    let done = psql
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if !done.status.success() {
        return Err(first_error_line(&String::from_utf8_lossy(&done.stderr)));
    }
    if !script_status.success() {
        return Err(first_error_line(&script_err));
    }
    Ok(counter)
}

fn summary(
    meta: &Metadata,
    target: &Target,
    source: TargetSource,
    current: Option<&DatabaseFacts>,
    different: bool,
    method: Method,
    request: &RestoreRequest,
) -> Vec<String> {
    let mut lines = vec![format!(
        "Restore {} ({}, {}, taken {}; reason: {})",
        meta.id,
        meta.format,
        HumanBytes(meta.size_bytes),
        meta.created_at.format("%Y-%m-%d %H:%M:%S %:z"),
        meta.reason
    )];
    if different {
        lines.push(format!(
            "into a DIFFERENT database than the one backed up: {target}, {} (the backup is of \"{}\" on {}:{})",
            source.describe(),
            meta.database,
            meta.host,
            meta.port
        ));
    } else {
        lines.push(format!("into {target}"));
    }
    lines.push(match method {
        Method::Swap if current.is_none() => format!(
            "How: into a new database, checked, then renamed to \"{}\".",
            target.dbname
        ),
        Method::Swap => "How: into a new database, checked, then swapped in by renaming; the current database is kept under another name until you drop it.".to_owned(),
        Method::Tables => "How: the backed-up tables' rows and sequences are put back in place in one transaction; views and foreign keys on them stay.".to_owned(),
        Method::InPlace => "How: in place (--in-place), over the existing database; objects created since the backup that depend on restored ones make it fail unchanged.".to_owned(),
    });
    match current {
        None => lines.push(format!(
            "The database \"{}\" does not exist; it will be created.",
            target.dbname
        )),
        Some(facts) => {
            let describe = |tables: Vec<(String, Option<i64>)>| {
                if tables.is_empty() {
                    return "no tables".to_owned();
                }
                tables
                    .into_iter()
                    .map(|(name, rows)| match rows {
                        Some(n) => format!("{name} ~{n}"),
                        None => format!("{name} ?"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            lines.push(format!(
                "Now:    {}, {}: {}",
                HumanBytes(facts.size_bytes),
                plural(facts.tables.len(), "table"),
                describe(
                    facts
                        .tables
                        .iter()
                        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows_estimate))
                        .collect()
                )
            ));
            lines.push(format!(
                "Backup: {}: {}",
                plural(meta.tables.len(), "table"),
                describe(
                    meta.tables
                        .iter()
                        .map(|t| (t.qualified(), t.rows.or(t.rows_estimate)))
                        .collect()
                )
            ));
            let extra: Vec<String> = facts
                .tables
                .iter()
                .map(|t| format!("{}.{}", t.schema, t.name))
                .filter(|name| !meta.tables.iter().any(|b| b.qualified() == *name))
                .collect();
            if method == Method::InPlace {
                lines.push(
                    "Every object in the backup is dropped and recreated: its current contents are lost."
                        .to_owned(),
                );
            }
            if method == Method::Swap {
                if !extra.is_empty() {
                    lines.push(format!(
                        "Tables not in the backup stay only in the replaced database: {}",
                        extra.join(", ")
                    ));
                }
            } else if !extra.is_empty() {
                lines.push(format!(
                    "Tables not in the backup are left as they are: {}",
                    extra.join(", ")
                ));
            }
            if request.safety_backup {
                lines.push("A safety backup of the current state is taken first.".to_owned());
            } else {
                lines.push("No safety backup will be taken (--no-safety-backup).".to_owned());
            }
        }
    }
    lines
}

fn create_database(tools: &PgTools, target: &Target) -> Result<(), Error> {
    let maintenance = target.with_dbname("postgres");
    tools
        .query(
            &maintenance,
            &format!("CREATE DATABASE {}", quote_ident(&target.dbname)),
        )
        .map_err(|e| e.into_error(&maintenance))?;
    Ok(())
}

/// Arguments that always name the database (pg_restore without `-d`
/// would print SQL instead of restoring).
fn db_args(target: &Target) -> Vec<String> {
    let args = target.libpq_args();
    if args.is_empty() {
        vec!["-d".to_owned(), target.dbname.clone()]
    } else {
        args
    }
}

fn run_restore(
    tools: &PgTools,
    target: &Target,
    meta: &Metadata,
    data: &std::path::Path,
    jobs: Option<u32>,
) -> Result<(), String> {
    let mut cmd = match meta.format {
        Format::Plain => {
            let mut cmd = tools.command(&tools.psql, target);
            cmd.args(["-X", "-w", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(data)
                .args(db_args(target));
            cmd
        }
        Format::Custom | Format::Directory => {
            let mut cmd = tools.command(&tools.pg_restore, target);
            cmd.args(["-w", "--exit-on-error", "--clean", "--if-exists"]);
            match jobs {
                Some(n) => {
                    cmd.arg(format!("--jobs={n}"));
                }
                None => {
                    cmd.arg("--single-transaction");
                }
            }
            cmd.args(db_args(target)).arg(data);
            cmd
        }
    };
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run the restore tool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(first_error_line(&String::from_utf8_lossy(&out.stderr)))
    }
}

pub fn write_report(out: &mut impl Write, report: &RestoreReport) -> std::io::Result<()> {
    writeln!(out, "Restored {} into {}", report.id, report.target)?;
    let width = report
        .checks
        .iter()
        .map(|c| c.table.len())
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        let expected = match (c.expected, c.exact) {
            (Some(n), true) => format!("{} in backup", plural(n, "row")),
            (Some(n), false) => format!("~{n} rows estimated at backup time"),
            (None, _) => "row count unknown".to_owned(),
        };
        let (mark, now) = match c.actual {
            None => ("MISSING", "table missing".to_owned()),
            Some(n) if c.ok() => ("ok", format!("{} now", plural(n, "row"))),
            Some(n) => ("DIFFERS", format!("{} now", plural(n, "row"))),
        };
        writeln!(out, "  {mark:<8} {:<width$}  {now} ({expected})", c.table)?;
    }
    let bad = report.checks.iter().filter(|c| !c.ok()).count();
    if bad == 0 {
        match report.checks.len() {
            1 => writeln!(out, "The table is present with the expected rows.")?,
            n => writeln!(out, "All {n} tables present with the expected rows.")?,
        }
        if report.checksummed > 0 {
            writeln!(
                out,
                "Content of {} checked against the backup's checksums before the swap.",
                plural(report.checksummed, "table")
            )?;
        }
    } else {
        writeln!(
            out,
            "{bad} of {} {} not match the backup.",
            plural(report.checks.len(), "table"),
            if bad == 1 { "does" } else { "do" }
        )?;
    }
    if let Some(old) = &report.replaced {
        writeln!(
            out,
            "The database it replaced is kept as \"{old}\". When you no longer need it: dropdb {}",
            shell_word(old)
        )?;
    }
    Ok(())
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_text(checks: Vec<TableCheck>, checksummed: usize) -> String {
        let report = RestoreReport {
            id: "backup_shop_20260301_070000".into(),
            target: Target::explicit("/run/pg", 5432, "app", "shop"),
            safety_backup: None,
            method: Method::Swap,
            atomic: true,
            replaced: None,
            checks,
            checksummed,
        };
        let mut out = Vec::new();
        write_report(&mut out, &report).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn check(table: &str, expected: i64, actual: i64) -> TableCheck {
        TableCheck {
            table: table.into(),
            expected: Some(expected),
            exact: true,
            actual: Some(actual),
        }
    }

    /// Regression: one table came out as "1 tables" and one row as "1 rows".
    #[test]
    fn the_report_counts_in_words_that_agree_with_the_number() {
        let one = report_text(vec![check("public.t", 1, 1)], 1);
        assert!(
            one.contains("public.t  1 row now (1 row in backup)"),
            "{one}"
        );
        assert!(
            one.contains("The table is present with the expected rows."),
            "{one}"
        );
        assert!(one.contains("Content of 1 table checked"), "{one}");
        let two = report_text(vec![check("public.a", 2, 2), check("public.b", 3, 1)], 2);
        assert!(
            two.contains("public.a  2 rows now (2 rows in backup)"),
            "{two}"
        );
        assert!(
            two.contains("1 of 2 tables does not match the backup."),
            "{two}"
        );
        let both = report_text(vec![check("public.a", 2, 0), check("public.b", 3, 1)], 0);
        assert!(
            both.contains("2 of 2 tables do not match the backup."),
            "{both}"
        );
    }

    fn pick(
        connection: ConnectionArgs,
        origin_flag: bool,
        env: &[(&str, &str)],
    ) -> Result<(String, TargetSource), Error> {
        let origin = Target::explicit("/run/pg", 5433, "app", "shop");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        choose_target(
            &RequestTarget {
                connection,
                origin: origin_flag,
            },
            &origin,
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
        .map(|(t, source)| {
            (
                format!("{}:{} {} {}", t.host, t.port, t.user, t.dbname),
                source,
            )
        })
    }

    #[test]
    fn each_part_of_the_target_comes_from_flags_then_pg_then_the_origin() {
        let none = ConnectionArgs::default();
        assert_eq!(
            pick(none.clone(), false, &[]).unwrap(),
            ("/run/pg:5433 app shop".into(), TargetSource::Origin)
        );
        assert_eq!(
            pick(none.clone(), false, &[("PGHOST", "db2"), ("PGUSER", "ops")]).unwrap(),
            ("db2:5433 ops shop".into(), TargetSource::Environment)
        );
        let copy = ConnectionArgs {
            dbname: Some("shop_copy".into()),
            ..ConnectionArgs::default()
        };
        assert_eq!(
            pick(copy.clone(), false, &[("PGPORT", "6000")]).unwrap(),
            ("/run/pg:6000 app shop_copy".into(), TargetSource::Flags)
        );
        let uri = ConnectionArgs {
            dbname: Some("postgresql://u@h:7000/d".into()),
            ..ConnectionArgs::default()
        };
        assert_eq!(
            pick(uri, false, &[("PGHOST", "ignored")]).unwrap(),
            ("h:7000 u d".into(), TargetSource::Flags)
        );
        assert_eq!(
            pick(
                none.clone(),
                true,
                &[("PGHOST", "db2"), ("PGDATABASE", "x")]
            )
            .unwrap(),
            ("/run/pg:5433 app shop".into(), TargetSource::OriginFlag)
        );
        assert!(matches!(pick(copy, true, &[]), Err(Error::Usage(_))));
        // A service file decides what the command line leaves open.
        let (resolved, source) = pick(none, false, &[("PGSERVICE", "prod")]).unwrap();
        assert_eq!(source, TargetSource::Environment);
        assert!(!resolved.contains("shop"), "{resolved}");
    }

    #[test]
    fn exact_counts_must_match_estimates_need_only_exist() {
        let check = |expected, exact, actual| TableCheck {
            table: "public.t".into(),
            expected,
            exact,
            actual,
        };
        assert!(check(Some(3), true, Some(3)).ok());
        assert!(!check(Some(3), true, Some(2)).ok());
        assert!(check(Some(100), false, Some(2)).ok());
        assert!(!check(Some(3), false, None).ok());
    }
}
