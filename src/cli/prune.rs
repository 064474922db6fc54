//! `dbguard prune`: apply the retention rules to the backup directory,
//! database by database, printing keep or remove with the reason for every
//! backup and recording every removal in the audit log.

use std::io::Write;
use std::time::Duration;

use crate::backup::Store;
use crate::backup::retention::{self, Outcome};
use crate::config::{Config, Retention};
use crate::error::exit;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Apply this remote's retention to its copies instead of the local
    /// directory (its own keep_* keys; the newest copy of each database
    /// always stays).
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let dir = config.backup_dir()?;
    let store = Store::new(&dir);
    let (policy, outcome) = match &args.remote {
        Some(name) => {
            let remote = config.remote(name)?;
            let policy = remote.retention().map_err(Error::Usage)?;
            let outcome =
                crate::backup::remote_prune::prune_remote(&config, &store, remote, args.dry_run)?;
            (policy, outcome)
        }
        None => {
            let policy = config.retention();
            let outcome = retention::prune_store(
                &store,
                policy,
                None,
                args.dry_run,
                Duration::from_secs(30),
            )?;
            (policy, outcome)
        }
    };
    retention::audit_removals(ctx, &dir, &outcome.removed);
    let mut out = std::io::stdout().lock();
    report(&mut out, &policy, &outcome, args.dry_run)
        .map_err(|e| Error::io("writing to stdout", e))?;
    if let Some((id, why)) = outcome.failures.first() {
        return Err(Error::Failed {
            message: format!(
                "could not remove {id}: {why} ({} removal(s) failed)",
                outcome.failures.len()
            ),
            code: exit::ERROR,
        });
    }
    Ok(exit::OK)
}

/// Every verdict, database by database, then what was left alone and the
/// totals.
pub fn report(
    out: &mut impl Write,
    policy: &Retention,
    outcome: &Outcome,
    dry_run: bool,
) -> std::io::Result<()> {
    let remove_word = if dry_run { "would remove" } else { "remove" };
    let width = outcome
        .decisions()
        .map(|d| d.id.len())
        .chain(outcome.unmanaged.iter().map(|(id, _)| id.len()))
        .chain(outcome.orphans.iter().map(String::len))
        .chain(outcome.stale_partials.iter().map(String::len))
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "Policy, for each database separately: {}; the newest verified backup is always kept",
        retention::describe(policy)
    )?;
    for series in &outcome.series {
        writeln!(out, "Backups of {}:", series.series)?;
        for d in &series.plan.decisions {
            if d.keep() {
                let why: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
                writeln!(out, "{:<12}  {:<width$}  {}", "keep", d.id, why.join(", "))?;
            } else {
                writeln!(out, "{remove_word:<12}  {:<width$}  no rule keeps it", d.id)?;
            }
        }
    }
    for id in &outcome.orphans {
        writeln!(
            out,
            "{remove_word:<12}  {id:<width$}  data without metadata, left by an interrupted backup"
        )?;
    }
    for (id, why) in &outcome.unmanaged {
        writeln!(out, "{:<12}  {id:<width$}  {why}", "skip")?;
    }
    for name in &outcome.stale_partials {
        writeln!(
            out,
            "{remove_word:<12}  {name:<width$}  left by an interrupted backup (never had a final name)"
        )?;
    }
    let total = outcome.decisions().count();
    let removed = outcome.decisions().filter(|d| !d.keep()).count();
    writeln!(
        out,
        "{total} backups of {} database(s): {} kept, {removed} {}",
        outcome.series.len(),
        total - removed,
        if dry_run {
            "would be removed"
        } else {
            "removed"
        }
    )
}
