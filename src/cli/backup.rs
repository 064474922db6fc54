//! `dbguard backup`: take a checksummed backup of a database now.
//!
//! Connection check and database size first, then the dump, the metadata
//! and retention. A dump only reads, so nothing is asked: the person who
//! typed `dbguard backup` has already said what they want. The result is
//! printed on stdout; progress and the pre-dump summary go to stderr.

use std::io::Write;
use std::path::PathBuf;

use indicatif::HumanBytes;

use crate::backup::{self, Created, Format, Request, Scope};
use crate::config::Config;
use crate::pgtools::PgTools;
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Database name (or conninfo string / URI) and user name, as psql takes them.
    #[arg(value_name = "DBNAME [USERNAME]")]
    pub positional: Vec<String>,
    /// Dump format (default: from the configuration, else plain).
    #[arg(short = 'F', long, value_enum)]
    pub format: Option<Format>,
    /// Parallel pg_dump jobs (directory format only).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Back up only this table (pg_dump -t pattern); repeatable.
    #[arg(short = 't', long = "table", value_name = "TABLE")]
    pub tables: Vec<String>,
    /// Write the backup here instead of the backup directory (no retention).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Why the backup is taken; stored in its metadata.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Accepted for scripts written when `backup` asked first; it no longer does.
    #[arg(short = 'y', long, alias = "force", hide = true)]
    pub yes: bool,
    /// Do not apply the retention rules afterwards.
    #[arg(long)]
    pub no_prune: bool,
    /// Do not wait for the copies to the remotes: they continue in the
    /// background (`dbguard list` shows when they are there).
    #[arg(long)]
    pub no_wait: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let connection = args.connection.clone().with_positional(&args.positional)?;
    let target = Target::resolve(&connection, ctx)?;
    let config = Config::load(ctx)?;
    let tools = PgTools::resolve(ctx)?;
    let pre = backup::preflight(&tools, &target)?;
    let format = args.format.unwrap_or_else(|| config.format());
    let destination = match &args.output {
        Some(path) => path.display().to_string(),
        None => config.backup_dir()?.display().to_string(),
    };
    eprintln!(
        "Backing up {} ({} on the server, {} tables) as {format} to {destination}",
        pre.target,
        HumanBytes(pre.facts.size_bytes),
        pre.facts.tables.len()
    );
    let request = Request {
        reason: args
            .reason
            .clone()
            .unwrap_or_else(|| "dbguard backup (manual)".to_owned()),
        scope: Scope::tables(args.tables.clone()),
        format: Some(format),
        jobs: args.jobs,
        output: args.output.clone(),
        prune: !args.no_prune,
        // A manual backup is a dump to keep; restore points are the guards'.
        pg_dump_only: true,
    };
    let created = backup::take(&config, &tools, &pre, &request)?;
    let mut out = std::io::stdout().lock();
    report(&mut out, &created).map_err(|e| Error::io("writing to stdout", e))?;
    if args.output.is_some() || config.file.remotes.is_empty() {
        return Ok(crate::error::exit::OK);
    }
    let id = &created.metadata.id;
    if args.no_wait {
        backup::copies::spawn_detached(id)
            .map_err(|e| Error::io("cannot start the copy to the remotes", e))?;
        writeln!(
            out,
            "Copying to the remotes in the background (see `dbguard list`)"
        )
        .map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(crate::error::exit::OK);
    }
    let store = backup::Store::new(&config.backup_dir()?);
    let entry = store.find(id)?.ok_or_else(|| {
        Error::BackupFailed(format!(
            "{id} disappeared from {} before it was copied",
            store.dir().display()
        ))
    })?;
    let mut failures = Vec::new();
    for attempt in backup::copies::copy_to_remotes(&config, store.dir(), &entry) {
        match attempt.result {
            Ok(location) => writeln!(out, "  copy     {}: {location}", attempt.remote)
                .map_err(|e| Error::io("writing to stdout", e))?,
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        return Ok(crate::error::exit::OK);
    }
    // The local backup is complete; only the off-machine copy is missing,
    // and `dbguard sync` retries it.
    Err(Error::BackupFailed(format!(
        "{id} is complete locally but not on every remote: {}; `dbguard sync` retries",
        failures.join("; ")
    )))
}

/// The success report: what was written where, and what retention did.
pub fn report(out: &mut impl Write, created: &Created) -> std::io::Result<()> {
    let m = &created.metadata;
    writeln!(out, "Backed up database \"{}\" as {}", m.database, m.id)?;
    writeln!(
        out,
        "  file     {} ({}, {})",
        created.data_path.display(),
        HumanBytes(m.size_bytes),
        m.format
    )?;
    writeln!(out, "  sha256   {}", m.sha256)?;
    writeln!(
        out,
        "  tables   {} (alembic revision: {})",
        m.tables.len(),
        m.alembic_revision.as_deref().unwrap_or("none")
    )?;
    writeln!(out, "  proof    {}", m.completeness)?;
    writeln!(out, "  took     {:.1} s", m.dump_seconds)?;
    match &created.pruned {
        None => {}
        Some(Ok(outcome)) => {
            let removed: Vec<&str> = outcome.removed.iter().map(|r| r.id.as_str()).collect();
            let kept = outcome.decisions().filter(|d| d.keep()).count();
            if removed.is_empty() {
                writeln!(out, "Retention: kept all {kept} backups")?;
            } else {
                writeln!(
                    out,
                    "Retention: kept {kept}, removed {}: {}",
                    removed.len(),
                    removed.join(", ")
                )?;
            }
        }
        Some(Err(e)) => writeln!(out, "Retention skipped: {e}")?,
    }
    Ok(())
}
