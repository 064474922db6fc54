//! Restoring a backup into a database, as safely as PostgreSQL allows.
//!
//! In order: find the backup and re-verify every byte (a corrupted or
//! incomplete backup is refused); connect to the target and show what will
//! be overwritten; have the person type the target database's name; take a
//! safety backup of the current state; restore in one transaction (`psql -1
//! -v ON_ERROR_STOP=1`, `pg_restore -1 --exit-on-error --clean --if-exists`)
//! so a failure leaves the database as it was; then check that every table
//! in the metadata exists and compare row counts.

use std::io::Write;
use std::process::Stdio;

use indicatif::HumanBytes;

use crate::backup::store::{Status, VerifyOutcome};
use crate::backup::{self, Format, Metadata, Request, Scope, Store};
use crate::config::Config;
use crate::confirm::{self, Consent, Expect, Question};
use crate::error::exit;
use crate::pgtools::{DatabaseFacts, PgTools, first_error_line, identify, quote_ident};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// What to restore where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub id: String,
    /// An explicit connection; empty means the database the backup came from.
    pub connection: ConnectionArgs,
    pub yes: bool,
    pub safety_backup: bool,
    /// Parallel pg_restore jobs (archive formats only; not atomic).
    pub jobs: Option<u32>,
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
    pub atomic: bool,
    pub checks: Vec<TableCheck>,
}

/// Runs a restore; `out` gets the summary.
pub fn restore(
    ctx: &Context,
    request: &RestoreRequest,
    out: &mut impl Write,
) -> Result<RestoreReport, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
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
    let target = if request.connection.is_empty() {
        original.clone()
    } else {
        Target::resolve(&request.connection, ctx)?
    };

    // The target may not exist (dropped by accident): create it, after asking.
    let (target, current) = match backup::preflight(&tools, &target) {
        Ok(pre) => (pre.target.clone(), Some(pre)),
        Err(Error::Unreachable { detail, .. }) if detail.contains("does not exist") => {
            (target, None)
        }
        Err(e) => return Err(e),
    };
    let different =
        target.dbname != meta.database || !same_server(&tools, &original, &target, request);

    let question = Question {
        summary: summary(
            &meta,
            &target,
            current.as_ref().map(|p| &p.facts),
            different,
            request,
        ),
        expect: Expect::Word(target.dbname.clone()),
        emphasis: vec![target.dbname.clone()],
    };
    if confirm::confirm(ctx, &question, request.yes)? != Consent::Typed {
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
        None => create_database(&tools, &target)?,
    }

    let atomic = request.jobs.is_none();
    if !atomic {
        writeln!(
            out,
            "Note: a parallel restore (-j) runs in several sessions and is NOT atomic; a failure can leave the database half restored."
        )
        .map_err(|e| Error::io("writing to stdout", e))?;
    }
    run_restore(&tools, &target, &meta, &data_path, request.jobs).map_err(|e| {
        let safety = safety
            .as_deref()
            .map(|id| format!(" (safety backup: {id})"))
            .unwrap_or_default();
        Error::Failed {
            message: format!(
                "restore of {} into \"{}\" failed: {e}; {}{safety}",
                entry.id,
                target.dbname,
                if atomic {
                    "it ran in one transaction, so the database is unchanged"
                } else {
                    "the database may be partly restored"
                }
            ),
            code: exit::ERROR,
        }
    })?;

    let tables: Vec<(String, String)> = meta
        .tables
        .iter()
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect();
    let counts = tools.count_rows(&target, &tables)?;
    let checks = meta
        .tables
        .iter()
        .zip(counts)
        .map(|(t, actual)| TableCheck {
            table: t.qualified(),
            expected: t.rows.or(t.rows_estimate),
            exact: t.rows.is_some(),
            actual,
        })
        .collect();
    let report = RestoreReport {
        id: entry.id.clone(),
        target,
        safety_backup: safety,
        atomic,
        checks,
    };
    write_report(out, &report).map_err(|e| Error::io("writing to stdout", e))?;
    Ok(report)
}

/// Whether `target` is on the server the backup was taken from. Spelled
/// the same way, it is; spelled differently (`localhost` for the socket
/// directory, `127.0.0.1`, another port of the same server), the servers are
/// asked who they are. When either cannot answer, the prompt errs on the
/// side of saying "different".
fn same_server(
    tools: &PgTools,
    original: &Target,
    target: &Target,
    request: &RestoreRequest,
) -> bool {
    if request.connection.is_empty()
        || (target.host == original.host && target.port == original.port)
    {
        return true;
    }
    match (identify(tools, original), identify(tools, target)) {
        (Ok(a), Ok(b)) => a.system_identifier == b.system_identifier,
        _ => false,
    }
}

fn summary(
    meta: &Metadata,
    target: &Target,
    current: Option<&DatabaseFacts>,
    different: bool,
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
            "into a DIFFERENT database than the one backed up: {target} (the backup is of \"{}\" on {}:{})",
            meta.database, meta.host, meta.port
        ));
    } else {
        lines.push(format!("into {target}"));
    }
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
                "Now:    {}, {} tables: {}",
                HumanBytes(facts.size_bytes),
                facts.tables.len(),
                describe(
                    facts
                        .tables
                        .iter()
                        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows_estimate))
                        .collect()
                )
            ));
            lines.push(format!(
                "Backup: {} tables: {}",
                meta.tables.len(),
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
            lines.push(
                "Every object in the backup is dropped and recreated: its current contents are lost."
                    .to_owned(),
            );
            if !extra.is_empty() {
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
            (Some(n), true) => format!("{n} rows in backup"),
            (Some(n), false) => format!("~{n} rows estimated at backup time"),
            (None, _) => "row count unknown".to_owned(),
        };
        let (mark, now) = match c.actual {
            None => ("MISSING", "table missing".to_owned()),
            Some(n) if c.ok() => ("ok", format!("{n} rows now")),
            Some(n) => ("DIFFERS", format!("{n} rows now")),
        };
        writeln!(out, "  {mark:<8} {:<width$}  {now} ({expected})", c.table)?;
    }
    let bad = report.checks.iter().filter(|c| !c.ok()).count();
    if bad == 0 {
        writeln!(
            out,
            "All {} tables present with the expected rows.",
            report.checks.len()
        )
    } else {
        writeln!(
            out,
            "{bad} of {} tables do not match the backup.",
            report.checks.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
