//! `dbguard prune`: apply the retention rules to the backup directory,
//! printing keep or remove with the reason for every backup.

use std::io::Write;
use std::time::Duration;

use crate::backup::Store;
use crate::backup::retention::{self, Outcome};
use crate::config::Config;
use crate::error::exit;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    let outcome = retention::prune_store(
        &store,
        config.retention(),
        None,
        args.dry_run,
        Duration::from_secs(30),
    )?;
    let mut out = std::io::stdout().lock();
    report(&mut out, &outcome, args.dry_run).map_err(|e| Error::io("writing to stdout", e))?;
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

pub fn report(out: &mut impl Write, outcome: &Outcome, dry_run: bool) -> std::io::Result<()> {
    let remove_word = if dry_run { "would remove" } else { "remove" };
    let width = outcome
        .plan
        .decisions
        .iter()
        .map(|d| d.id.len())
        .chain(outcome.unmanaged.iter().map(String::len))
        .chain(outcome.stale_partials.iter().map(String::len))
        .max()
        .unwrap_or(0);
    for d in &outcome.plan.decisions {
        if d.keep() {
            let why: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
            writeln!(out, "{:<12}  {:<width$}  {}", "keep", d.id, why.join(", "))?;
        } else {
            writeln!(out, "{remove_word:<12}  {:<width$}  no rule keeps it", d.id)?;
        }
    }
    for id in &outcome.unmanaged {
        writeln!(
            out,
            "{:<12}  {id:<width$}  incomplete or missing data; left alone (see dbguard verify)",
            "skip"
        )?;
    }
    for name in &outcome.stale_partials {
        writeln!(
            out,
            "{remove_word:<12}  {name:<width$}  left by an interrupted backup (never had a final name)"
        )?;
    }
    let removed = outcome.plan.removed().count();
    writeln!(
        out,
        "{} backups: {} kept, {} {}",
        outcome.plan.decisions.len(),
        outcome.plan.decisions.len() - removed,
        removed,
        if dry_run {
            "would be removed"
        } else {
            "removed"
        }
    )
}
