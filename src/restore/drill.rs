//! Restore drills (`dbguard drill`): proof that a backup restores, without
//! touching the database it came from.
//!
//! A pg_dump backup is re-verified (every byte against its SHA-256), then
//! restored into a scratch database on the server it came from
//! (`<db>__dbguard_drill_<time>_<pid>`, from `template0` in the origin's
//! shape), by the same code the swap restore uses before its swap: the
//! plain dump through `psql -1`, an archive through `pg_restore -f -` with
//! its rows counted and summed on the way. Each table's row count and
//! content checksum in the scratch copy (read back by pg_dump, as the swap
//! does) are compared with those the sidecar recorded at backup time, or,
//! for an archive, for which the sidecar records none, with those of the
//! archive's own data. The scratch database is dropped afterwards, also
//! after a failure or Ctrl-C (the stop signals only set a flag while a
//! drill runs; the clients in the terminal's process group die of them,
//! and the drill then unwinds, dropping it).
//!
//! A pgBackRest restore point is restored into a scratch cluster
//! (`restore::pitr`); reaching the point is the first proof, then every
//! table the sidecar recorded must exist there, with the recorded row
//! count and checksum where the sidecar has them (the pgBackRest engine
//! records estimates only, and the report says so).
//!
//! The outcome is recorded as the backup's last drill (`backup::drilled`,
//! beside the sidecar, which stays as written) and in the audit log.

use crate::report::text::plural;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, FixedOffset, Local};
use indicatif::HumanBytes;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::{
    TableCheck, checksum_mismatches, expected_checksums, output_settings, pitr,
    restore_archive_counting, run_restore, swap, table_checks, write_audit,
};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::audit::{BackupRecord, Outcome, Record};
use crate::backup::drilled::Drilled;
use crate::backup::engine::RestorePoint;
use crate::backup::engine::pg_dump::{self, CopyCounter};
use crate::backup::store::{Entry, VerifyOutcome};
use crate::backup::{Format, Metadata, Scope, Store};
use crate::backup::{catalog, copies};
use crate::config::{Config, RemoteSection};
use crate::error::exit;
use crate::pgtools::first_error_line;
use crate::pgtools::{PgTools, quote_ident};
use crate::sql::lexer::{Lexer, MetaCommand, Sink, Statement};
use crate::sql::token::{self, Token};
use crate::target::{Target, redact};
use crate::{Context, Error};

/// The exit status of a drill stopped by Ctrl-C (or SIGTERM, SIGHUP), as a
/// shell reports a death by SIGINT.
pub const INTERRUPTED: u8 = 130;

/// Where a table's expected value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Recorded in the sidecar at backup time.
    Sidecar,
    /// Counted and summed from the archive's data as it was restored.
    Archive,
    /// Nothing exact to compare with.
    Nothing,
}

/// One table of a drill.
#[derive(Debug, Clone)]
pub struct TableResult {
    /// The row check, as the restore makes it (`actual` is the scratch copy's).
    pub rows: TableCheck,
    pub rows_from: Source,
    pub checksum_expected: Option<String>,
    pub checksum_found: Option<String>,
    pub checksum_from: Source,
    /// The checksum matched, or there was none to compare.
    pub checksum_ok: bool,
}

impl TableResult {
    pub fn ok(&self) -> bool {
        self.rows.ok() && self.checksum_ok
    }

    /// What differs, expected against found; `None` when nothing does.
    pub fn problem(&self) -> Option<String> {
        let table = &self.rows.table;
        let Some(found) = self.rows.actual else {
            return Some(format!("{table}: not in the restored copy"));
        };
        if !self.rows.ok() {
            return Some(format!(
                "{table}: {} expected ({}), {found} found",
                plural(self.rows.expected.unwrap_or_default(), "row"),
                describe(self.rows_from)
            ));
        }
        if !self.checksum_ok {
            return Some(format!(
                "{table}: content checksum {} expected ({}), {} found",
                self.checksum_expected.as_deref().unwrap_or("?"),
                describe(self.checksum_from),
                self.checksum_found
                    .as_deref()
                    .unwrap_or("no data read back")
            ));
        }
        None
    }
}

fn describe(source: Source) -> &'static str {
    match source {
        Source::Sidecar => "recorded in the sidecar at backup time",
        Source::Archive => "counted from the archive's data",
        Source::Nothing => "nothing recorded",
    }
}

/// How a drill ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The backup does not verify, does not restore, or its restored copy
    /// differs; `table` is the first table to blame, if one is.
    Failed {
        table: Option<String>,
        why: String,
    },
}

/// One drill, as reported and recorded.
#[derive(Debug, Clone)]
pub struct DrillReport {
    pub id: String,
    pub at: DateTime<FixedOffset>,
    pub tables: Vec<TableResult>,
    /// In plain words, what was compared.
    pub compared: String,
    pub verdict: Verdict,
    /// What became of the scratch database or cluster.
    pub cleanup: String,
    /// The remote whose copy was drilled; `None` for the local copy.
    pub from: Option<String>,
}

impl DrillReport {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }

    /// The error a failed drill is reported as (exit 1); `None` when it passed.
    pub fn error(&self) -> Option<Error> {
        match &self.verdict {
            Verdict::Passed => None,
            Verdict::Failed { why, .. } => Some(Error::Failed {
                message: format!("drill of {} failed: {why}", self.id),
                code: exit::FOUND,
            }),
        }
    }

    /// One line for `--all`: mark, id, and what was compared or what failed.
    pub fn line(&self) -> String {
        let drilled = match &self.from {
            Some(remote) => format!("{} (remote {remote})", self.id),
            None => self.id.clone(),
        };
        match &self.verdict {
            Verdict::Passed => format!("ok      {drilled}  {}", self.compared),
            Verdict::Failed { why, .. } => format!("FAILED  {drilled}  {why}"),
        }
    }
}

/// Set by the stop signals while a drill runs.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn note_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// While alive, the stop signals only set `STOP`. SA_RESTART, unlike the
/// prompt's handler (`confirm`): the restore pumps data between pipes, and
/// a read cut short by a signal must not pass for the end of the data.
/// The clients (psql, pg_restore, pg_dump) keep the default disposition
/// and die of a Ctrl-C from the terminal, which ends the step under way.
pub struct CatchStop {
    previous: Vec<(Signal, SigAction)>,
}

impl CatchStop {
    pub fn install() -> CatchStop {
        STOP.store(false, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(note_stop),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let previous = STOP_SIGNALS
            .iter()
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe.
            .filter_map(|&sig| unsafe { sigaction(sig, &action) }.ok().map(|p| (sig, p)))
            .collect();
        CatchStop { previous }
    }
}

impl Drop for CatchStop {
    fn drop(&mut self) {
        for (sig, action) in &self.previous {
            // SAFETY: restores a disposition sigaction itself returned.
            let _ = unsafe { sigaction(*sig, action) };
        }
    }
}

/// Whether a stop signal arrived during the drill.
pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

fn check_stop(id: &str) -> Result<(), Error> {
    if stopped() {
        return Err(interrupted(id));
    }
    Ok(())
}

fn interrupted(id: &str) -> Error {
    Error::Failed {
        message: format!("drill of {id} interrupted; nothing was recorded"),
        code: INTERRUPTED,
    }
}

/// A download's destination that fails its next write once a stop signal
/// was caught, so Ctrl-C ends a long download at its next chunk rather
/// than at its end. Not `ErrorKind::Interrupted`: `write_all` retries that.
struct StopAware<W>(W);

impl<W: Write> Write for StopAware<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if stopped() {
            return Err(std::io::Error::other("interrupted"));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The scratch database of one drill, dropped when this goes out of scope
/// (an early return, an error, an interruption) unless dropped before.
struct ScratchDatabase<'a> {
    tools: &'a PgTools,
    admin: Target,
    name: String,
    dropped: bool,
}

impl ScratchDatabase<'_> {
    /// Drops the database; a warning naming it when that fails.
    fn drop_now(&mut self) -> Result<(), String> {
        self.dropped = true;
        // FORCE (PostgreSQL 13+) ends a session a killed client may have
        // left behind; older servers only know the plain form.
        let name = quote_ident(&self.name);
        let forced = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if self.tools.query(&self.admin, &forced).is_ok() {
            return Ok(());
        }
        self.tools
            .query(&self.admin, &format!("DROP DATABASE IF EXISTS {name}"))
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the scratch database \"{}\" could not be dropped ({}); drop it yourself: dropdb {}",
                    self.name,
                    e.into_error(&self.admin),
                    self.name
                )
            })
    }
}

impl Drop for ScratchDatabase<'_> {
    fn drop(&mut self) {
        if !self.dropped
            && let Err(warning) = self.drop_now()
        {
            note!("dbguard: warning: {warning}");
        }
    }
}

/// Drills one backup (`id` as every command takes it) and records the
/// outcome. A backup only a remote holds is downloaded first (see
/// [`fetch_remote`]). `Ok` for a drill that ran, passed or failed (see
/// [`DrillReport::error`]); `Err` when it could not run (no such backup,
/// the server unreachable, no right to create a database, interrupted).
/// With `from`, the copy on that remote is drilled even when there is a
/// local one.
pub fn drill(
    ctx: &Context,
    id: &str,
    from: Option<&str>,
    scratch_port: Option<u16>,
    out: &mut impl Write,
) -> Result<DrillReport, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    if let Some(name) = from {
        let remote = config.remote(name)?;
        let tools = PgTools::resolve(ctx)?;
        let _stop = CatchStop::install();
        let fetched = fetch_remote(&config, &[remote], id, out)?.ok_or_else(|| {
            Error::Usage(format!(
                "remote {name} has no backup {id}; `dbguard list` shows where each backup is"
            ))
        })?;
        return drill_fetched(ctx, &config, &store, &tools, fetched, scratch_port, out);
    }
    let local = store.find(id);
    // An exact id wins over a prefix of a longer one wherever each is: `X`
    // only a remote holds is not the local `X_2` (nor ambiguous with it).
    let names = |found: &str| found == id.trim() || catalog::short_id(found) == id.trim();
    if !matches!(&local, Ok(Some(entry)) if names(&entry.id))
        && let Some(remote) = remote_holding_exactly(&config, &names)
    {
        let tools = PgTools::resolve(ctx)?;
        let _stop = CatchStop::install();
        let fetched = fetch_remote(&config, &[remote], id, out)?
            .ok_or_else(|| Error::Usage(format!("remote {} no longer has {id}", remote.name)))?;
        return drill_fetched(ctx, &config, &store, &tools, fetched, scratch_port, out);
    }
    let local = local?;
    let tools = PgTools::resolve(ctx)?;
    if let Some(entry) = local {
        let _stop = CatchStop::install();
        return drill_entry(ctx, &config, &store, &tools, &entry, scratch_port, out);
    }
    let not_found = || {
        let remotes: Vec<&str> = config
            .file
            .remotes
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        Error::Usage(format!(
            "no backup {id} in {}{}; `dbguard list` shows the ids",
            store.dir().display(),
            if remotes.is_empty() {
                String::new()
            } else {
                format!(" nor on remote {}", remotes.join(", "))
            }
        ))
    };
    if config.file.remotes.is_empty() {
        return Err(not_found());
    }
    let _stop = CatchStop::install();
    let remotes: Vec<&RemoteSection> = config.file.remotes.iter().collect();
    let fetched = fetch_remote(&config, &remotes, id, out)?.ok_or_else(not_found)?;
    drill_fetched(ctx, &config, &store, &tools, fetched, scratch_port, out)
}

/// The first remote holding a backup whose id `names` accepts; a remote
/// that cannot be listed is passed over (the usual lookup reports it).
fn remote_holding_exactly<'c>(
    config: &'c Config,
    names: &dyn Fn(&str) -> bool,
) -> Option<&'c RemoteSection> {
    config.file.remotes.iter().find(|remote| {
        copies::open_remote(config, remote)
            .and_then(|s3| copies::remote_backups(&s3))
            .is_ok_and(|found| found.iter().any(|b| names(&b.id)))
    })
}

/// Drills `entry` and records the outcome (last drill, audit log).
pub fn drill_entry(
    ctx: &Context,
    config: &Config,
    store: &Store,
    tools: &PgTools,
    entry: &Entry,
    scratch_port: Option<u16>,
    out: &mut impl Write,
) -> Result<DrillReport, Error> {
    let at = Local::now().fixed_offset();
    let verdict = store.verify(entry);
    let _ = store.record_verification(
        &entry.id,
        VerifyOutcome {
            id: entry.id.clone(),
            at,
            status: verdict.status.label().to_owned(),
            how: "verify".into(),
        },
    );
    let ran = match (entry.meta(), verdict.status.is_ok()) {
        (Some(meta), true) => restore_and_compare(tools, entry, meta, scratch_port, out)?,
        _ => {
            let local = format!(
                "the backup does not verify: {} ({})",
                verdict.status.label(),
                verdict.status.detail().unwrap_or("no metadata")
            );
            // The same hierarchy as `restore`: a local copy that is gone
            // or damaged gives way to a good copy on a remote.
            let remote = match fetch_good_remote_copy(config, entry, &local, out)? {
                Ok(fetched) => {
                    return drill_fetched(ctx, config, store, tools, fetched, scratch_port, out);
                }
                Err(why) => why,
            };
            Ran::failed(
                None,
                format!("{local}{remote}"),
                "Nothing was restored.".into(),
            )
        }
    };
    let report = DrillReport {
        id: entry.id.clone(),
        at,
        tables: ran.tables,
        compared: ran.compared,
        verdict: ran.verdict,
        cleanup: ran.cleanup,
        from: None,
    };
    record(ctx, config, store, entry, None, &report);
    Ok(report)
}

/// A verified copy of `entry` from the first remote holding one, for a
/// local copy that does not verify (`local` says why). `Err` carries what
/// the remotes added to that (nothing when none is configured or none has
/// the backup); only an interruption is an error of the drill.
fn fetch_good_remote_copy(
    config: &Config,
    entry: &Entry,
    local: &str,
    out: &mut impl Write,
) -> Result<Result<Fetched, String>, Error> {
    if config.file.remotes.is_empty() {
        return Ok(Err(String::new()));
    }
    say(
        out,
        format!(
            "The local copy of {}: {local}; looking for a copy on a remote",
            entry.id
        ),
    )?;
    let remotes: Vec<&RemoteSection> = config.file.remotes.iter().collect();
    match fetch_remote(config, &remotes, &entry.id, out) {
        Ok(Some(Fetched {
            damaged: Some(why), ..
        })) => Ok(Err(format!(
            "; the remote copy does not verify either: {why}"
        ))),
        Ok(Some(fetched)) => Ok(Ok(fetched)),
        Ok(None) => Ok(Err("; no remote holds a copy".into())),
        Err(e) if stopped() => Err(e),
        Err(e) => Ok(Err(format!("; no remote copy could be fetched: {e}"))),
    }
}

fn restore_and_compare(
    tools: &PgTools,
    entry: &Entry,
    meta: &Metadata,
    scratch_port: Option<u16>,
    out: &mut impl Write,
) -> Result<Ran, Error> {
    match &meta.restore_point {
        Some(point) => drill_point(tools, meta, point, scratch_port, out),
        None => drill_dump(tools, entry, meta, out),
    }
}

/// A backup only a remote holds, downloaded for one drill into a private
/// temporary directory (mode 0700 under `TMPDIR`), removed with this value.
pub struct Fetched {
    pub remote: String,
    pub id: String,
    /// The data file's name on the remote; `None` for a restore point.
    pub data_file: Option<String>,
    dir: tempfile::TempDir,
    /// Why the download cannot be used, when it cannot.
    damaged: Option<String>,
}

/// Finds `wanted` on `remotes`, in their order, and downloads
/// it: the sidecar, then the data, whose stored bytes are checked against
/// the checksum recorded when they were copied and whose plaintext must
/// have the sidecar's SHA-256. `None` when no remote has it; a remote that
/// cannot be reached is skipped when another has the backup.
pub fn fetch_remote(
    config: &Config,
    remotes: &[&RemoteSection],
    wanted: &str,
    out: &mut impl Write,
) -> Result<Option<Fetched>, Error> {
    let mut unreachable = Vec::new();
    for &remote in remotes {
        let listed = copies::open_remote(config, remote).and_then(|s3| {
            let found = copies::remote_backups(&s3)?;
            Ok((s3, found))
        });
        let (s3, found) = match listed {
            Ok(listed) => listed,
            Err(e) => {
                unreachable.push(e.to_string());
                continue;
            }
        };
        let mut candidates = copies::as_entries(&found);
        if wanted.trim().starts_with("latest") {
            // `latest` and `latest:DB` need each backup's database and
            // time: its sidecar, small.
            for (entry, backup) in candidates.iter_mut().zip(&found) {
                entry.metadata = s3
                    .download_small(&backup.sidecar_file)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Metadata>(&bytes).ok())
                    .map(Ok);
            }
        }
        candidates.sort_by(|a, b| b.created().cmp(&a.created()).then(b.id.cmp(&a.id)));
        let Some(entry) = catalog::resolve(&candidates, wanted)? else {
            continue;
        };
        let Some(backup) = found.into_iter().find(|b| b.id == entry.id) else {
            continue;
        };
        let dir = tempfile::Builder::new()
            .prefix("dbguard-drill-")
            .tempdir()
            .map_err(|e| Error::io("cannot create a temporary directory for the download", e))?;
        // This very id: a prefix match (`X_2` for `X`) is another backup.
        let local = Store::new(&config.backup_dir()?)
            .entries()?
            .iter()
            .any(|e| e.id == backup.id);
        say(
            out,
            format!(
                "{} {} remote {}: downloading it into {}",
                backup.id,
                if local { "drilled from" } else { "is only on" },
                remote.name,
                dir.path().display()
            ),
        )?;
        let mut fetched = Fetched {
            remote: remote.name.clone(),
            id: backup.id.clone(),
            data_file: backup.data_file.clone(),
            dir,
            damaged: None,
        };
        let sidecar = s3.download_small(&backup.sidecar_file)?;
        let meta: Metadata = serde_json::from_slice(&sidecar).map_err(|e| {
            Error::BackupFailed(format!(
                "remote {}: the metadata of {} is not valid: {e}",
                remote.name, backup.id
            ))
        })?;
        if let Some(data_file) = &backup.data_file {
            let path = fetched.dir.path().join(data_file);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
            match s3.download(data_file, &mut StopAware(&mut file)) {
                Ok((sha256, _)) if sha256 != meta.sha256 => {
                    fetched.damaged = Some(format!(
                        "the copy on remote {} has SHA-256 {sha256}, but its sidecar says {}",
                        remote.name, meta.sha256
                    ));
                }
                Ok(_) => {}
                // Damage the remote's own checksum found; anything else
                // (the remote gone mid-way) is not the backup's fault.
                // Ctrl-C: the half-written download goes with `fetched`.
                Err(_) if stopped() => return Err(interrupted(&backup.id)),
                Err(Error::BackupFailed(why)) => fetched.damaged = Some(why),
                Err(e) => return Err(e),
            }
        }
        // The sidecar last, as every backup is published.
        let sidecar_path = fetched.dir.path().join(&backup.sidecar_file);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&sidecar_path)
            .and_then(|mut f| f.write_all(&sidecar))
            .map_err(|e| Error::io(format!("cannot write {}", sidecar_path.display()), e))?;
        return Ok(Some(fetched));
    }
    match unreachable.is_empty() {
        true => Ok(None),
        false => Err(Error::Failed {
            message: format!(
                "{wanted} is not here, and not every remote could be asked: {}",
                unreachable.join("; ")
            ),
            code: exit::ERROR,
        }),
    }
}

/// Drills a downloaded copy, records the outcome in the local store (the
/// last drill names the remote), and removes the download.
pub fn drill_fetched(
    ctx: &Context,
    config: &Config,
    store: &Store,
    tools: &PgTools,
    fetched: Fetched,
    scratch_port: Option<u16>,
    out: &mut impl Write,
) -> Result<DrillReport, Error> {
    let at = Local::now().fixed_offset();
    let downloaded = Store::new(fetched.dir.path());
    let entry = downloaded.find(&fetched.id)?.ok_or_else(|| {
        Error::BackupFailed(format!("the download of {} is incomplete", fetched.id))
    })?;
    let ran = match (&fetched.damaged, entry.meta()) {
        (None, Some(meta)) => {
            if let Some(data) = &fetched.data_file {
                say(
                    out,
                    format!(
                        "Downloaded {data} from remote {} and verified it (the remote's checksum, then the sidecar's SHA-256)",
                        fetched.remote
                    ),
                )?;
            }
            restore_and_compare(tools, &entry, meta, scratch_port, out)?
        }
        (damaged, _) => Ran::failed(
            None,
            format!(
                "the copy on remote {} does not verify: {}",
                fetched.remote,
                damaged.as_deref().unwrap_or("its metadata does not parse")
            ),
            "Nothing was restored.".into(),
        ),
    };
    let mut report = DrillReport {
        id: entry.id.clone(),
        at,
        tables: ran.tables,
        compared: ran.compared,
        verdict: ran.verdict,
        cleanup: ran.cleanup,
        from: Some(fetched.remote.clone()),
    };
    let place = fetched.dir.path().display().to_string();
    let remote = fetched.remote.clone();
    let data_file = fetched.data_file.clone();
    report.cleanup = match fetched.dir.close() {
        Ok(()) => format!("{}\nDownloaded copy {place} removed.", report.cleanup),
        Err(e) => format!(
            "{}\nWarning: the downloaded copy {place} could not be removed ({e}); remove it yourself",
            report.cleanup
        ),
    };
    record(
        ctx,
        config,
        store,
        &entry,
        Some((remote.as_str(), data_file.as_deref())),
        &report,
    );
    Ok(report)
}

/// What a drill found, before it is recorded.
struct Ran {
    tables: Vec<TableResult>,
    compared: String,
    verdict: Verdict,
    cleanup: String,
}

impl Ran {
    fn failed(table: Option<String>, why: String, cleanup: String) -> Ran {
        Ran {
            tables: Vec::new(),
            compared: String::new(),
            verdict: Verdict::Failed { table, why },
            cleanup,
        }
    }

    /// The verdict over `tables`: the first table that differs fails it.
    fn judged(tables: Vec<TableResult>, compared: String, cleanup: String) -> Ran {
        let bad: Vec<(String, String)> = tables
            .iter()
            .filter_map(|t| t.problem().map(|p| (t.rows.table.clone(), p)))
            .collect();
        let verdict = match bad.first() {
            None => Verdict::Passed,
            Some((table, problem)) => Verdict::Failed {
                table: Some(table.clone()),
                why: if bad.len() > 1 {
                    match bad.len() - 1 {
                        1 => format!("{problem} (and 1 more table differs)"),
                        n => format!("{problem} (and {n} more tables differ)"),
                    }
                } else {
                    problem.clone()
                },
            },
        };
        Ran {
            tables,
            compared,
            verdict,
            cleanup,
        }
    }
}

fn say(out: &mut impl Write, line: String) -> Result<(), Error> {
    writeln!(out, "{line}").map_err(|e| Error::io("writing to stdout", e))
}

/// The schema-qualified tables the sidecar recorded.
fn recorded_tables(meta: &Metadata) -> Vec<(String, String)> {
    meta.tables
        .iter()
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect()
}

/// A pg_dump backup restored into a scratch database on its server.
fn drill_dump(
    tools: &PgTools,
    entry: &Entry,
    meta: &Metadata,
    out: &mut impl Write,
) -> Result<Ran, Error> {
    let data = entry
        .data
        .as_deref()
        .ok_or_else(|| Error::Usage(format!("backup {} has no data file", entry.id)))?;
    let origin = Target::explicit(&meta.host, meta.port, &meta.user, &meta.database);
    let admin = swap::maintenance(&origin);
    // The origin's encoding and locale, when it still exists: a dump
    // restores as it would over there.
    let shape = swap::shape(tools, &admin, &meta.database)?;
    let stamp = format!(
        "{}_{}",
        Local::now().format("%Y%m%d_%H%M%S"),
        std::process::id()
    );
    let name = swap::derived_name(&meta.database, &format!("__dbguard_drill_{stamp}"));
    // Guarded from before it exists: an interruption while it is created
    // still drops it on the way out.
    let mut scratch = ScratchDatabase {
        tools,
        admin: admin.clone(),
        name: name.clone(),
        dropped: false,
    };
    let created = tools.query(&admin, &swap::create_database_sql(&name, shape.as_ref()));
    check_stop(&entry.id)?;
    if let Err(e) = created {
        // Nothing was created, so there is nothing to drop.
        scratch.dropped = true;
        return Err(Error::Failed {
            message: format!(
                "cannot create the scratch database \"{name}\" for the drill ({}); a drill needs a role with CREATEDB",
                e.into_error(&admin)
            ),
            code: exit::ERROR,
        });
    }
    say(
        out,
        format!(
            "Drilling {} ({}, {}, taken {}) in scratch database \"{name}\" on {}:{}",
            entry.id,
            meta.format,
            HumanBytes(meta.size_bytes),
            meta.created_at.format("%Y-%m-%d %H:%M:%S %:z"),
            meta.host,
            meta.port
        ),
    )?;
    let staged = origin.with_dbname(&name);
    if matches!(meta.scope, Scope::Tables(_)) {
        // A table-scoped dump does not create the schemas its tables live in.
        let mut schemas: Vec<&str> = meta.tables.iter().map(|t| t.schema.as_str()).collect();
        schemas.sort_unstable();
        schemas.dedup();
        for schema in schemas {
            let _ = tools.query(
                &staged,
                &format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)),
            );
        }
    }
    // A table-scoped backup's foreign keys to tables outside it cannot be
    // created in an empty database; they are left out, and said so. The
    // referenced tables are not recreated from the live database: the
    // drill proves what the backup holds, not what the server has now.
    let mut left_out = Vec::new();
    let restored = match meta.format {
        Format::Plain => {
            let leave = if matches!(meta.scope, Scope::Tables(_)) {
                std::fs::File::open(data)
                    .and_then(find_foreign_keys)
                    .map(|found| outside(meta, found))
                    .map_err(|e| format!("reading {}: {e}", data.display()))
            } else {
                Ok(Vec::new())
            };
            match leave {
                Ok(leave) if leave.is_empty() => run_restore(tools, &staged, meta, data, None),
                Ok(leave) => {
                    left_out = leave.iter().map(|f| f.key.clone()).collect();
                    say(out, leaving_out(&left_out))?;
                    restore_plain_leaving_out(tools, &staged, data, &leave)
                }
                Err(e) => Err(e),
            }
            .map(|()| CopyCounter::default())
        }
        Format::Custom | Format::Directory => match archive_leave_out(tools, &staged, meta, data) {
            Ok((keys, list)) => {
                if !keys.is_empty() {
                    say(out, leaving_out(&keys))?;
                }
                left_out = keys;
                restore_archive_counting(tools, &staged, data, list.as_ref().map(|f| f.path()))
            }
            Err(e) => Err(e),
        },
    };
    check_stop(&entry.id)?;
    let seen = match restored {
        Ok(seen) => seen,
        Err(e) => {
            let cleanup = cleanup(&mut scratch);
            // Foreign keys are left out; other objects a table needs (a
            // type, a function, a sequence it does not own) are not in a
            // table-scoped dump either, and are not faked here.
            let hint = if matches!(meta.scope, Scope::Tables(_)) && e.contains("does not exist") {
                " (a table-scoped backup holds only its tables; what they use from outside it, other than foreign keys, must exist for it to restore, so this backup restores only into a database that has it)"
            } else {
                ""
            };
            return Ok(Ran::failed(
                None,
                format!("the backup does not restore into an empty database: {e}{hint}"),
                cleanup,
            ));
        }
    };
    let counts = tools.count_rows(&staged, &recorded_tables(meta));
    check_stop(&entry.id)?;
    let counts = counts?;
    // Values print as they did for the backup's pg_dump: with the
    // origin's TimeZone and bytea_output, as the swap does.
    let options = if shape.is_some() {
        output_settings(tools, &origin)
    } else {
        String::new()
    };
    let compared = compare(tools, &staged, meta, &seen, counts, &options);
    check_stop(&entry.id)?;
    let cleanup = cleanup(&mut scratch);
    Ok(match compared {
        Ok(tables) => {
            let mut said = compared_text(&tables);
            if !left_out.is_empty() {
                said.push_str(&format!(
                    "; {} foreign keys to tables outside the backup not created: {}",
                    left_out.len(),
                    left_out
                        .iter()
                        .map(ForeignKey::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ran::judged(tables, said, cleanup)
        }
        Err(e) => Ran::failed(
            None,
            format!("the restored copy cannot be read back: {e}"),
            cleanup,
        ),
    })
}

/// The line that says which foreign keys a drill leaves out, and why.
fn leaving_out(keys: &[ForeignKey]) -> String {
    format!(
        "Leaving out {} foreign keys to tables not in this table-scoped backup (an empty scratch database cannot hold them): {}",
        keys.len(),
        keys.iter()
            .map(ForeignKey::describe)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn cleanup(scratch: &mut ScratchDatabase<'_>) -> String {
    match scratch.drop_now() {
        Ok(()) => format!("Scratch database \"{}\" dropped.", scratch.name),
        Err(warning) => format!("Warning: {warning}"),
    }
}

/// A restore point restored into a scratch cluster.
fn drill_point(
    tools: &PgTools,
    meta: &Metadata,
    point: &RestorePoint,
    scratch_port: Option<u16>,
    out: &mut impl Write,
) -> Result<Ran, Error> {
    say(
        out,
        format!(
            "Drilling {} (restore point {} of stanza \"{}\", {}) in a scratch cluster",
            meta.id, point.name, point.stanza, point.time
        ),
    )?;
    let mut place = None;
    let inspected = pitr::in_scratch_cluster(meta, point, scratch_port, |target, root| {
        place = Some(root.display().to_string());
        say(
            out,
            format!(
                "Restore point {} reached in scratch cluster {}",
                point.name,
                root.display()
            ),
        )?;
        let counts = tools.count_rows(target, &recorded_tables(meta))?;
        Ok(compare(
            tools,
            target,
            meta,
            &CopyCounter::default(),
            counts,
            "",
        ))
    });
    check_stop(&meta.id)?;
    let cleanup = match &place {
        Some(dir) => format!("Scratch cluster {dir} stopped and removed."),
        None => "Scratch cluster removed.".to_owned(),
    };
    Ok(match inspected {
        Ok(Ok(tables)) => {
            let said = format!("restore point reached; {}", compared_text(&tables));
            Ran::judged(tables, said, cleanup)
        }
        Ok(Err(e)) => Ran::failed(
            None,
            format!("the scratch cluster cannot be read back: {e}"),
            cleanup,
        ),
        Err(e) => Ran::failed(None, e.to_string(), cleanup),
    })
}

/// Each recorded table in the restored copy at `target` (row counts
/// `counts`, in the sidecar's order) against what is expected: the row
/// checks and checksums the swap restore makes (`table_checks`,
/// `expected_checksums`, `checksum_mismatches`), the copy read back by
/// pg_dump with `options` only when there is a checksum to compare.
fn compare(
    tools: &PgTools,
    target: &Target,
    meta: &Metadata,
    seen: &CopyCounter,
    counts: Vec<Option<i64>>,
    options: &str,
) -> Result<Vec<TableResult>, String> {
    let checks = table_checks(meta, &seen.counts, counts);
    let expected = expected_checksums(meta, seen);
    let (mismatched, found) = if expected.is_empty() {
        (Vec::new(), HashMap::new())
    } else {
        let read = pg_dump::read_back(tools, target, options)?;
        (checksum_mismatches(&expected, &read), read.checksums())
    };
    Ok(meta
        .tables
        .iter()
        .zip(checks)
        .map(|(t, rows)| {
            let key = (t.schema.clone(), t.name.clone());
            let sum = expected
                .iter()
                .find(|(_, k, _)| *k == key)
                .map(|(_, _, sum)| sum.clone());
            TableResult {
                rows_from: if t.rows.is_some() {
                    Source::Sidecar
                } else if seen.counts.contains_key(&key) {
                    Source::Archive
                } else {
                    Source::Nothing
                },
                checksum_from: match (&t.checksum, &sum) {
                    (Some(_), _) => Source::Sidecar,
                    (None, Some(_)) => Source::Archive,
                    (None, None) => Source::Nothing,
                },
                checksum_ok: !mismatched.contains(&rows.table),
                checksum_found: found.get(&key).cloned(),
                checksum_expected: sum,
                rows,
            }
        })
        .collect())
}

/// What was compared, in plain words: how many tables, and where the
/// expected row counts and checksums came from.
fn compared_text(tables: &[TableResult]) -> String {
    if tables.is_empty() {
        return "the sidecar records no tables: only that the backup restores was checked"
            .to_owned();
    }
    let count = |f: &dyn Fn(&TableResult) -> bool| tables.iter().filter(|t| f(t)).count();
    let mut parts = Vec::new();
    for (n, what) in [
        (
            count(&|t| t.rows_from == Source::Sidecar),
            "row counts recorded in the sidecar",
        ),
        (
            count(&|t| t.rows_from == Source::Archive),
            "row counts from the archive's data",
        ),
        (
            count(&|t| t.rows_from == Source::Nothing),
            "existence only (no exact row count recorded)",
        ),
        (
            count(&|t| t.checksum_from == Source::Sidecar),
            "content checksums recorded in the sidecar",
        ),
        (
            count(&|t| t.checksum_from == Source::Archive),
            "content checksums from the archive's data",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{what} ({n})"));
        }
    }
    let none = count(&|t| t.checksum_from == Source::Nothing);
    if none > 0 {
        parts.push(format!("no content checksum ({none})"));
    }
    format!("{}: {}", plural(tables.len(), "table"), parts.join(", "))
}

/// The last drill beside the sidecar (unless the backup went meanwhile)
/// and a line in the audit log. `remote` names where a downloaded copy
/// came from (and its data file there): its drill is recorded in the local
/// store all the same, naming the remote.
fn record(
    ctx: &Context,
    config: &Config,
    store: &Store,
    entry: &Entry,
    remote: Option<(&str, Option<&str>)>,
    report: &DrillReport,
) {
    let (ok, table, detail) = match &report.verdict {
        Verdict::Passed => (true, None, report.compared.clone()),
        Verdict::Failed { table, why } => (false, table.clone(), why.clone()),
    };
    let write = match remote {
        Some(_) => store.prepare(true).is_ok(),
        None => entry.sidecar.as_ref().is_some_and(|p| p.exists()),
    };
    if write {
        let drilled = Drilled {
            at: report.at,
            ok,
            detail: redact(&detail),
            table,
            from: remote.map(|(name, _)| name.to_owned()),
        };
        if let Err(e) = drilled.write(store.dir(), &entry.id) {
            note!(
                "dbguard: warning: the drill of {} could not be recorded: {e}",
                entry.id
            );
        }
    }
    let outcome = if ok {
        Outcome::Drilled
    } else {
        Outcome::DrillFailed
    };
    let mut audit = Record::new(ctx, "drill", outcome);
    if let Some(meta) = entry.meta() {
        audit.target =
            Some((&Target::explicit(&meta.host, meta.port, &meta.user, &meta.database)).into());
        let path = match remote {
            // The download is gone: the record names the copy drilled.
            Some((name, data)) => data.map(|file| PathBuf::from(format!("{name}:{file}"))),
            None => entry.data.clone(),
        };
        audit.backups.extend(path.map(|path| BackupRecord {
            id: entry.id.clone(),
            database: meta.database.clone(),
            sha256: meta.sha256.clone(),
            path,
        }));
    }
    let from = remote
        .map(|(name, _)| format!(" (the copy on remote {name})"))
        .unwrap_or_default();
    audit.detail = Some(redact(&format!("drill of {}{from}: {detail}", entry.id)));
    write_audit(config, &audit);
}

/// A foreign key a drill leaves out: its table is in a table-scoped
/// backup, the table it references is not, so an empty scratch database
/// cannot hold it. The rows of its table are still restored and compared;
/// only the constraint is not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constrained table, `[schema, name]` as written (folded).
    pub table: Vec<String>,
    pub name: String,
    /// The referenced table, as written (folded).
    pub references: Vec<String>,
}

impl ForeignKey {
    /// `public.orders (orders_user_id_fkey) -> public.users`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) -> {}",
            self.table.join("."),
            self.name,
            self.references.join(".")
        )
    }
}

/// A possibly qualified name as its parts (`s.t` → `[s, t]`), and the
/// index after it.
fn name_parts(toks: &[Token<'_>], mut i: usize) -> Option<(Vec<String>, usize)> {
    let first = toks.get(i).filter(|t| t.is_name())?;
    let mut parts = vec![first.ident()];
    i += 1;
    while toks.get(i).is_some_and(|t| t.is_punct(b'.')) {
        match toks.get(i + 1) {
            Some(t) if t.is_name() => {
                parts.push(t.ident());
                i += 2;
            }
            _ => break,
        }
    }
    Some((parts, i))
}

/// The foreign key a statement adds, when it is one in the form pg_dump
/// writes (`ALTER TABLE [IF EXISTS] [ONLY] t ADD CONSTRAINT c FOREIGN KEY
/// (...) REFERENCES r ...`), with the offset of its first token.
fn foreign_key(text: &[u8]) -> Option<(ForeignKey, usize)> {
    let toks = token::tokens(text);
    let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is(w));
    if !(word(0, "alter") && word(1, "table")) {
        return None;
    }
    let mut i = 2;
    if word(i, "if") && word(i + 1, "exists") {
        i += 2;
    }
    if word(i, "only") {
        i += 1;
    }
    let (table, next) = name_parts(&toks, i)?;
    i = next;
    if !(word(i, "add") && word(i + 1, "constraint")) {
        return None;
    }
    let name = toks.get(i + 2).filter(|t| t.is_name())?.ident();
    i += 3;
    if !(word(i, "foreign") && word(i + 1, "key") && toks.get(i + 2)?.is_punct(b'(')) {
        return None;
    }
    i = token::skip_parens(&toks, i + 2);
    if !word(i, "references") {
        return None;
    }
    let (references, _) = name_parts(&toks, i + 1)?;
    Some((
        ForeignKey {
            table,
            name,
            references,
        },
        toks[0].offset,
    ))
}

/// Whether `name` (as written in the dump) is one of the backup's tables;
/// an unqualified name (pg_dump qualifies every name) matches by name.
fn in_backup(meta: &Metadata, name: &[String]) -> bool {
    meta.tables.iter().any(|t| match name {
        [table] => t.name == *table,
        [schema, table] => t.schema == *schema && t.name == *table,
        _ => false,
    })
}

/// A foreign key statement of a script, found by the project's lexer
/// (so COPY data and quoted text are never mistaken for one): the key
/// and the lines it spans.
struct FoundKey {
    key: ForeignKey,
    first_line: u64,
    last_line: u64,
}

#[derive(Default)]
struct ForeignKeyFinder {
    found: Vec<FoundKey>,
}

impl Sink for ForeignKeyFinder {
    fn variable(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn statement(&mut self, statement: &Statement<'_>) {
        if let Some((key, offset)) = foreign_key(statement.text) {
            let newlines = statement.text[offset..]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.found.push(FoundKey {
                key,
                first_line: statement.line,
                last_line: statement.line + newlines,
            });
        }
    }

    fn meta(&mut self, _: &MetaCommand<'_>) {}
}

/// The foreign key statements of a script read from `from`.
fn find_foreign_keys(mut from: impl Read) -> std::io::Result<Vec<FoundKey>> {
    let mut lexer = Lexer::new();
    let mut finder = ForeignKeyFinder::default();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => lexer.feed(&buf[..n], &mut finder),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    lexer.finish(&mut finder);
    Ok(finder.found)
}

/// The foreign keys of a table-scoped backup that reference tables
/// outside it, among `found`.
fn outside(meta: &Metadata, found: Vec<FoundKey>) -> Vec<FoundKey> {
    if !matches!(meta.scope, Scope::Tables(_)) {
        return Vec::new();
    }
    found
        .into_iter()
        .filter(|f| !in_backup(meta, &f.key.references))
        .collect()
}

/// A plain dump restored into `target` as one psql transaction, without
/// the statements of `leave_out`. Each left-out range must look like the
/// statement found there (starts with `ALTER TABLE`, ends with `;`), or
/// nothing is committed.
fn restore_plain_leaving_out(
    tools: &PgTools,
    target: &Target,
    data: &Path,
    leave_out: &[FoundKey],
) -> Result<(), String> {
    let file =
        std::fs::File::open(data).map_err(|e| format!("cannot read {}: {e}", data.display()))?;
    let mut psql = tools.command(&tools.psql, target);
    psql.args(["-X", "-w", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .args(target.libpq_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut psql = psql
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tools.psql.display()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut broken = None;
    if let Some(mut to) = psql.stdin.take() {
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    broken = Some(format!("reading {}: {e}", data.display()));
                    break;
                }
            }
            number += 1;
            let skipped = leave_out
                .iter()
                .find(|f| (f.first_line..=f.last_line).contains(&number));
            if let Some(f) = skipped {
                let looks_right = if number == f.first_line {
                    line.starts_with(b"ALTER TABLE")
                } else {
                    true
                } && (number != f.last_line
                    || line.trim_ascii_end().ends_with(b";"));
                if !looks_right {
                    broken = Some(format!(
                        "the foreign key {} is not where the lexer found it (line {number}); nothing was left out",
                        f.key.describe()
                    ));
                    break;
                }
                continue;
            }
            // psql gone (an error stopped it): its stderr says why.
            if to.write_all(&line).is_err() {
                break;
            }
        }
        if broken.is_some() {
            // Ends psql before it reads the end of its input: one
            // transaction, so nothing stays.
            let _ = psql.kill();
        }
    }
    let done = psql
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if let Some(why) = broken {
        return Err(why);
    }
    if !done.status.success() {
        return Err(first_error_line(&String::from_utf8_lossy(&done.stderr)));
    }
    Ok(())
}

/// For an archive of a table-scoped backup: the foreign keys to tables
/// outside it (their definitions read from the archive's post-data
/// section) and a table of contents for `pg_restore -L` with exactly those
/// entries commented out; `None` when there is nothing to leave out.
fn archive_leave_out(
    tools: &PgTools,
    target: &Target,
    meta: &Metadata,
    data: &Path,
) -> Result<(Vec<ForeignKey>, Option<tempfile::NamedTempFile>), String> {
    if !matches!(meta.scope, Scope::Tables(_)) {
        return Ok((Vec::new(), None));
    }
    let run = |args: &[&str]| -> Result<Vec<u8>, String> {
        let out = tools
            .command(&tools.pg_restore, target)
            .args(args)
            .arg(data)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", tools.pg_restore.display()))?;
        if !out.status.success() {
            return Err(first_error_line(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out.stdout)
    };
    let list = String::from_utf8_lossy(&run(&["-l"])?).into_owned();
    if !list.contains(" FK CONSTRAINT ") {
        return Ok((Vec::new(), None));
    }
    let post_data = run(&["--section=post-data", "-f", "-"])?;
    let found = find_foreign_keys(post_data.as_slice())
        .map_err(|e| format!("reading the archive's constraints: {e}"))?;
    let keys: Vec<ForeignKey> = outside(meta, found).into_iter().map(|f| f.key).collect();
    if keys.is_empty() {
        return Ok((Vec::new(), None));
    }
    // A TOC line: `ID; CLASS OID FK CONSTRAINT schema table constraint owner`.
    let mut edited = String::with_capacity(list.len() + keys.len());
    let mut matched = vec![false; keys.len()];
    for line in list.lines() {
        let hit = (!line.starts_with(';'))
            .then(|| {
                keys.iter().position(|k| {
                    let [schema, table] = k.table.as_slice() else {
                        return false;
                    };
                    line.contains(&format!(" FK CONSTRAINT {schema} {table} {} ", k.name))
                })
            })
            .flatten();
        if let Some(i) = hit {
            matched[i] = true;
            edited.push(';');
        }
        edited.push_str(line);
        edited.push('\n');
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        return Err(format!(
            "the foreign key {} is not in the archive's table of contents as expected; nothing was left out",
            keys[i].describe()
        ));
    }
    let mut file = tempfile::Builder::new()
        .prefix("dbguard-drill-")
        .suffix(".list")
        .tempfile()
        .map_err(|e| format!("cannot write a table of contents: {e}"))?;
    file.write_all(edited.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write a table of contents: {e}"))?;
    Ok((keys, Some(file)))
}

/// The table of a drill, what was compared, and the cleanup.
pub fn write_report(out: &mut impl Write, report: &DrillReport) -> std::io::Result<()> {
    let width = report
        .tables
        .iter()
        .map(|t| t.rows.table.len())
        .max()
        .unwrap_or(0);
    for t in &report.tables {
        let mark = match (t.rows.actual, t.ok()) {
            (None, _) => "MISSING",
            (Some(_), true) => "ok",
            (Some(_), false) => "DIFFERS",
        };
        let rows = match (t.rows.actual, t.rows.expected, t.rows.exact) {
            (None, _, _) => "not restored".to_owned(),
            (Some(n), Some(e), true) if n != e => format!("{n} rows ({e} expected)"),
            (Some(n), Some(e), false) => format!("{n} rows (~{e} estimated at backup time)"),
            (Some(n), _, _) => format!("{n} rows"),
        };
        let sum = match (&t.checksum_expected, t.checksum_ok) {
            (None, _) => String::new(),
            (Some(e), true) => format!(", checksum {e}"),
            (Some(e), false) => format!(
                ", checksum {} ({e} expected)",
                t.checksum_found.as_deref().unwrap_or("none read back")
            ),
        };
        writeln!(out, "  {mark:<8} {:<width$}  {rows}{sum}", t.rows.table)?;
    }
    match &report.verdict {
        Verdict::Passed => writeln!(out, "Drill passed: {}.", report.compared)?,
        Verdict::Failed { why, .. } => writeln!(out, "Drill FAILED: {why}")?,
    }
    writeln!(out, "{}", report.cleanup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(expected: i64, actual: Option<i64>, checksum_ok: bool) -> TableResult {
        TableResult {
            rows: TableCheck {
                table: "public.items".into(),
                expected: Some(expected),
                exact: true,
                actual,
            },
            rows_from: Source::Sidecar,
            checksum_expected: Some("00000000000000aa".into()),
            checksum_found: Some("00000000000000bb".into()),
            checksum_from: Source::Sidecar,
            checksum_ok,
        }
    }

    #[test]
    fn the_first_table_that_differs_fails_the_drill_with_expected_and_found() {
        let ran = Ran::judged(
            vec![table(3, Some(3), true), table(3, Some(2), true)],
            String::new(),
            String::new(),
        );
        assert_eq!(
            ran.verdict,
            Verdict::Failed {
                table: Some("public.items".into()),
                why: "public.items: 3 rows expected (recorded in the sidecar at backup time), 2 found"
                    .into()
            }
        );
        let ran = Ran::judged(
            vec![table(3, Some(3), false), table(3, None, true)],
            String::new(),
            String::new(),
        );
        assert_eq!(
            ran.verdict,
            Verdict::Failed {
                table: Some("public.items".into()),
                why: "public.items: content checksum 00000000000000aa expected (recorded in the sidecar at backup time), 00000000000000bb found (and 1 more table differs)"
                    .into()
            }
        );
        let ran = Ran::judged(vec![table(3, Some(3), true)], String::new(), String::new());
        assert_eq!(ran.verdict, Verdict::Passed);
    }

    #[test]
    fn foreign_keys_are_read_from_the_statements_pg_dump_writes() {
        let (key, offset) = foreign_key(
            b"ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id, \"Kind\") REFERENCES \"Sales\".\"Users\"(id, kind) ON DELETE CASCADE",
        )
        .expect("a foreign key");
        assert_eq!(offset, 0);
        assert_eq!(
            key.describe(),
            "public.orders (orders_user_id_fkey) -> Sales.Users"
        );
        // Near misses: other constraints, and a foreign key only in a string.
        for text in [
            "ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id)",
            "ALTER TABLE ONLY public.orders ADD CONSTRAINT c CHECK (note <> 'FOREIGN KEY (a) REFERENCES b')",
            "SELECT 'ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES b'",
        ] {
            assert_eq!(foreign_key(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn foreign_keys_in_copy_data_are_not_statements() {
        let script = b"SET x = 1;\nCOPY public.notes (body) FROM stdin;\nALTER TABLE ONLY public.a ADD CONSTRAINT f FOREIGN KEY (x) REFERENCES public.b(id);\n\\.\n\n--\n-- Name: a f2; Type: FK CONSTRAINT\n--\n\nALTER TABLE ONLY public.a\n    ADD CONSTRAINT f2 FOREIGN KEY (x) REFERENCES public.c(id);\n";
        let found = find_foreign_keys(&script[..]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key.name, "f2");
        assert_eq!((found[0].first_line, found[0].last_line), (10, 11));
    }

    #[test]
    fn what_was_compared_is_said_by_source() {
        let mut archive = table(3, Some(3), true);
        archive.rows_from = Source::Archive;
        archive.checksum_from = Source::Archive;
        let mut estimate = table(3, Some(3), true);
        estimate.rows_from = Source::Nothing;
        estimate.checksum_from = Source::Nothing;
        assert_eq!(
            compared_text(&[table(3, Some(3), true), archive, estimate]),
            "3 tables: row counts recorded in the sidecar (1), row counts from the archive's data (1), \
             existence only (no exact row count recorded) (1), content checksums recorded in the sidecar (1), \
             content checksums from the archive's data (1), no content checksum (1)"
        );
    }
}
