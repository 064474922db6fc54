//! The backup store: taking backups, their metadata, listing,
//! verification, retention and the prune lock.
//!
//! Seams: an [`engine::Engine`] takes a backup (`engine/pg_dump.rs`, with
//! streamed SHA-256 and a completeness proof); a [`dest::Destination`] keeps
//! it (`dest/local.rs`, the backup directory, where every backup is written
//! first); `sink` is the one integrity sequence both go through.
//!
//! Entry points for the rest of dbguard:
//! - [`take_for`]: everything a guard needs in one call — configuration,
//!   tools, connection check, dump, metadata, pruning.
//! - [`preflight`] then [`take`]: the same in two steps, for callers that
//!   want to show the database size or ask a question in between
//!   (`dbguard backup`, `dbguard restore`'s safety backup).

pub mod catalog;
pub mod copies;
pub mod dest;
pub mod drilled;
pub mod durable;
pub mod encryption;
pub mod engine;
pub mod lock;
pub mod metadata;
pub mod partial;
pub mod remote_prune;
pub mod retention;
pub mod sink;
pub mod store;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{Config, EngineChoice, PitrSettings};
use crate::pgtools::{DatabaseFacts, PgTools};
use crate::target::Target;
use crate::{Context, Error};
use dest::local::Local;
use engine::{Engine, PgBackRest, PgDump};

pub use crate::dump_format::Format;
pub use metadata::Metadata;
pub use store::{BackupId, Store};

/// What a backup covers. Stored as `"database"` or a list of table names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scope {
    /// Always the word `database`.
    Database(ScopeWord),
    Tables(Vec<String>),
}

/// The word `database`, alone, so the untagged form reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeWord {
    Database,
}

impl Scope {
    pub fn database() -> Scope {
        Scope::Database(ScopeWord::Database)
    }

    pub fn tables(tables: Vec<String>) -> Scope {
        if tables.is_empty() {
            Scope::database()
        } else {
            Scope::Tables(tables)
        }
    }

    pub fn table_list(&self) -> &[String] {
        match self {
            Scope::Database(_) => &[],
            Scope::Tables(t) => t,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Database(_) => f.write_str("database"),
            Scope::Tables(t) => write!(f, "tables {}", t.join(",")),
        }
    }
}

/// What to back up and why.
#[derive(Debug, Clone)]
pub struct Request {
    /// Why (the guarded command, say); passwords are removed before storing.
    pub reason: String,
    pub scope: Scope,
    /// `None`: the configured format.
    pub format: Option<Format>,
    /// Parallel jobs, directory format only.
    pub jobs: Option<u32>,
    /// An explicit data file path instead of the store (`--output`).
    pub output: Option<PathBuf>,
    /// Apply retention afterwards (only in the store).
    pub prune: bool,
    /// Dump with pg_dump whatever engine the configuration names (a
    /// scratch cluster restored from a restore point matches the live
    /// database's rules, but has no WAL archiving of its own).
    pub pg_dump_only: bool,
}

impl Request {
    pub fn new(reason: impl Into<String>, scope: Scope) -> Request {
        Request {
            reason: reason.into(),
            scope,
            format: None,
            jobs: None,
            output: None,
            prune: true,
            pg_dump_only: false,
        }
    }
}

/// A database that answered, with what it said about itself.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The target, with the server's own idea of database, user and port.
    pub target: Target,
    pub facts: DatabaseFacts,
}

/// The connection check and the facts recorded with a backup. An
/// unreachable server is one line: `cannot connect to ...`.
pub fn preflight(tools: &PgTools, target: &Target) -> Result<Preflight, Error> {
    preflight_with(tools, target, None).map(|(pre, _)| pre)
}

/// `preflight`, with one more helper query in the same psql session (see
/// `PgTools::inspect_with`).
pub fn preflight_with(
    tools: &PgTools,
    target: &Target,
    extra: Option<&str>,
) -> Result<(Preflight, crate::pgtools::ExtraRows), Error> {
    let (id, facts, rows) = tools.inspect_with(target, extra)?;
    let mut target = target.clone();
    target.adopt(&id);
    Ok((Preflight { target, facts }, rows))
}

/// A backup that exists, complete, under its final name.
#[derive(Debug, Clone)]
pub struct Created {
    pub metadata: Metadata,
    pub data_path: PathBuf,
    pub metadata_path: PathBuf,
    /// What retention did afterwards, if it ran.
    /// Removals have already been printed on stderr and audited.
    pub pruned: Option<Result<retention::Outcome, String>>,
}

/// Takes a backup of the preflighted database. On error nothing with a
/// final name is left behind.
pub fn take(
    config: &Config,
    tools: &PgTools,
    pre: &Preflight,
    request: &Request,
) -> Result<Created, Error> {
    let format = request.format.unwrap_or_else(|| config.format());
    if request.jobs.is_some() && format != Format::Directory {
        return Err(Error::Usage(
            "-j/--jobs needs --format directory (pg_dump dumps in parallel only to a directory)"
                .into(),
        ));
    }
    let started_at = chrono::Local::now();
    let (dir, naming) = match &request.output {
        Some(path) => {
            let file_name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                Error::Usage(format!("--output {}: not a file name", path.display()))
            })?;
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let dir = parent.map_or_else(|| PathBuf::from("."), PathBuf::from);
            (dir, sink::Naming::Exact(file_name.to_owned()))
        }
        None => (
            config.backup_dir()?,
            sink::Naming::Store {
                database: pre.target.dbname.clone(),
                started_at,
            },
        ),
    };
    let clock = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let store = Store::new(&dir);
    store.prepare(request.output.is_none())?;
    let local = Local::new(&dir);
    let pg_dump = PgDump::new(tools);
    let pitr = match (&request.output, config.engine_for(&pre.target)) {
        (None, EngineChoice::PgBackRest(settings)) if !request.pg_dump_only => {
            choose_pitr(tools, &pre.target, &settings)?.map(|health| (settings, health))
        }
        _ => None,
    };
    let pgbackrest = pitr
        .as_ref()
        .map(|(settings, health)| PgBackRest::new(tools, &settings.stanza, health.clone()));
    let engine: &dyn Engine = match &pgbackrest {
        Some(engine) => engine,
        None => &pg_dump,
    };

    // The engine's version for the metadata runs beside the backup rather
    // than after it: one process start less on the guard's path.
    let (taken, engine_version) = std::thread::scope(|threads| {
        let version = threads.spawn(|| engine.version());
        let taken = engine.take(
            &engine::Job {
                target: &pre.target,
                format,
                jobs: request.jobs,
                tables: request.scope.table_list(),
                size_hint: pre.facts.size_bytes,
                progress,
                naming: &naming,
                started_at,
            },
            &local,
        );
        (taken, version.join().unwrap_or_default())
    });
    let mut taken = taken?;

    let metadata = Metadata::build(
        &taken,
        &pre.target,
        &pre.facts,
        engine_version,
        &request.scope,
        &request.reason,
        started_at,
        clock.elapsed(),
    );
    // Invariant 4: the sidecar comes last, and without it the data file
    // must not keep its final name.
    let metadata_path = dir.join(format!("{}.json", taken.id));
    sink::write_sidecar(&metadata_path, &metadata.to_json()?, taken.path.as_deref())?;
    let _ = store.record_verification(
        &metadata.id,
        store::VerifyOutcome::ok_at_creation(&metadata),
    );
    // Sidecar written: the backup is complete and its id no longer needs holding.
    drop(taken.reservation.take());

    let pruned = (request.prune && request.output.is_none()).then(|| {
        // The stanza's state as the health check read it, moments ago.
        let known = pitr
            .as_ref()
            .map(|(settings, health)| (settings.stanza.as_str(), &health.info));
        let outcome =
            retention::prune_after_backup(&store, config.retention(), &metadata.id, known)
                .map_err(|e| e.to_string())?;
        if !outcome.removed.is_empty() || !outcome.failures.is_empty() {
            // The command line that caused the removals, for the audit log.
            retention::announce(&Context::from_process(), &dir, &outcome);
        }
        Ok(outcome)
    });
    Ok(Created {
        // A restore point has no data file: the sidecar is its local record.
        data_path: taken.path.unwrap_or_else(|| metadata_path.clone()),
        metadata_path,
        metadata,
        pruned,
    })
}

/// Whether the pgBackRest engine can protect the database now. Unhealthy
/// archiving is said on stderr and falls back to pg_dump (`Ok(None)`), or
/// refuses when the configuration requires the PITR engine.
fn choose_pitr(
    tools: &PgTools,
    target: &Target,
    settings: &PitrSettings,
) -> Result<Option<engine::pgbackrest::Health>, Error> {
    match engine::pgbackrest::health(tools, target, &settings.stanza) {
        Ok(health) => Ok(Some(health)),
        Err(why) if settings.require => Err(Error::BackupFailed(format!(
            "WAL archiving for \"{}\" is not healthy: {why}; the configuration requires the pgbackrest engine (require_pitr = true), so nothing was backed up",
            target.dbname
        ))),
        Err(why) => {
            note!(
                "dbguard: WAL archiving for \"{}\" is not healthy: {why}; backing up with pg_dump instead",
                target.dbname
            );
            Ok(None)
        }
    }
}

/// One call for the guards: resolve tools and configuration, check the
/// connection, take a whole-database or scoped backup into the store and
/// prune. The caller has already asked for confirmation.
pub fn take_for(
    ctx: &Context,
    target: &Target,
    reason: &str,
    scope: Scope,
) -> Result<Created, Error> {
    let config = Config::load(ctx)?;
    let tools = PgTools::resolve(ctx)?;
    let pre = preflight(&tools, target)?;
    take(&config, &tools, &pre, &Request::new(reason, scope))
}

/// Starts copying `created` to every configured remote in a detached
/// `dbguard sync`, which records its outcome: a guarded command never
/// waits for the network. A copy that cannot even start is said, never
/// fatal: the local backup is complete, and `dbguard sync` retries.
pub fn copy_in_background(config: &Config, created: &Created) {
    if config.file.remotes.is_empty() {
        return;
    }
    if let Err(e) = copies::spawn_detached(&created.metadata.id) {
        eprintln!(
            "dbguard: could not start copying {} to the remotes ({e}); `dbguard sync` will copy it",
            created.metadata.id
        );
    }
}
