//! `dbguard prune`: apply the retention rules to the backup directory,
//! database by database, printing keep or remove with the reason for every
//! backup and recording every removal in the audit log. Restore points
//! whose base backup or WAL pgBackRest has expired are removed outside the
//! rules, each with what pgBackRest no longer holds.

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
        .chain(outcome.expired.iter().map(|e| e.id.len()))
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
        for e in expired_in(outcome, &series.series) {
            writeln!(out, "{remove_word:<12}  {:<width$}  {}", e.id, e.why)?;
        }
    }
    // A database whose only entries are expired restore points.
    let mut only_expired: Vec<&retention::Series> = outcome
        .expired
        .iter()
        .map(|e| &e.series)
        .filter(|s| !outcome.series.iter().any(|p| p.series == **s))
        .collect();
    only_expired.sort();
    only_expired.dedup();
    for series in &only_expired {
        writeln!(out, "Backups of {series}:")?;
        for e in expired_in(outcome, series) {
            writeln!(out, "{remove_word:<12}  {:<width$}  {}", e.id, e.why)?;
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
    let total = outcome.decisions().count() + outcome.expired.len();
    let removed = outcome.decisions().filter(|d| !d.keep()).count() + outcome.expired.len();
    writeln!(
        out,
        "{total} backups of {} database(s): {} kept, {removed} {}",
        outcome.series.len() + only_expired.len(),
        total - removed,
        if dry_run {
            "would be removed"
        } else {
            "removed"
        }
    )
}

/// The expired restore points of one database.
fn expired_in<'a>(
    outcome: &'a Outcome,
    series: &'a retention::Series,
) -> impl Iterator<Item = &'a retention::ExpiredPoint> + 'a {
    outcome.expired.iter().filter(move |e| e.series == *series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::retention::{Decision, ExpiredPoint, Plan, Reason, Series, SeriesPlan};
    use chrono::{TimeZone, Utc};

    fn series(database: &str) -> Series {
        Series {
            database: database.into(),
            host: "/run/postgresql".into(),
            port: 5432,
        }
    }

    fn expired(database: &str, id: &str) -> ExpiredPoint {
        ExpiredPoint {
            series: series(database),
            id: id.into(),
            why: format!(
                "restore point dbguard_{id} expired by pgBackRest's retention: WAL has expired"
            ),
        }
    }

    /// An expired restore point is listed with its database and counted
    /// as removed, also when nothing else of its database is left.
    #[test]
    fn expired_restore_points_are_listed_with_their_database_and_counted() {
        let outcome = Outcome {
            series: vec![SeriesPlan {
                series: series("shop"),
                plan: Plan {
                    decisions: vec![Decision {
                        id: "backup_shop_1".into(),
                        time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                        reasons: vec![Reason::Last(1), Reason::NewestVerified],
                    }],
                },
            }],
            expired: vec![
                expired("shop", "backup_shop_2"),
                expired("big", "backup_big_1"),
            ],
            ..Outcome::default()
        };
        let mut out = Vec::new();
        report(&mut out, &Retention::default(), &outcome, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1], "Backups of \"shop\" on /run/postgresql:5432:",
            "{text}"
        );
        assert!(
            lines[2].starts_with("keep          backup_shop_1"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("would remove  backup_shop_2  restore point"),
            "{text}"
        );
        assert_eq!(
            lines[4], "Backups of \"big\" on /run/postgresql:5432:",
            "{text}"
        );
        assert!(
            lines[5].starts_with("would remove  backup_big_1 "),
            "{text}"
        );
        assert_eq!(
            lines[6], "3 backups of 2 database(s): 1 kept, 2 would be removed",
            "{text}"
        );
    }
}
