//! Which backups to keep: restic's `forget` policy, as pure functions over
//! (id, timestamp) lists, plus the glue that applies it to a store under
//! the prune lock.
//!
//! Semantics (restic's): backups are taken newest first; every rule is
//! independent and the results are ORed. `keep_last N` keeps the N newest.
//! `keep_daily N` walks the list and keeps a backup whenever its local
//! calendar day differs from the day of the last backup that rule kept, N
//! times — so it keeps the newest backup of each of the N newest days that
//! have backups (gaps do not count). Weekly uses ISO weeks, monthly and
//! yearly the calendar, all in local time. A backup dated in the future
//! (clock skew, a restored machine) is kept and takes no part in the rules,
//! so it can never push an older backup out.
//!
//! dbguard's additions, for a safety net that must not wear away: the
//! rules apply to each database's backups separately ([`Series`]);
//! `keep_within` keeps everything younger than a minimum age; the newest
//! verified backup of each database is always kept; a policy whose counts
//! are all 0 is refused; every removal is printed and audited.
//!
//! A restore point (pgBackRest engine) has no data file; what it needs is
//! in pgBackRest's repository, and pgBackRest's own retention decides how
//! long that stays. So `pgbackrest info` is asked about every restore point
//! first: one still restorable is a backup like any other (and, checked
//! just now, a verified one); one whose base backup or WAL pgBackRest has
//! expired is no backup at all: it takes no part in the rules, can never
//! be the newest verified backup that keeps an older one of its database
//! alive, and is removed with the reason. One that cannot be checked
//! (pgBackRest not answering, WAL that never reached the repository) is
//! left alone and not counted either.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use super::engine::pgbackrest::{self, PointState, StanzaInfo};
use super::lock::PruneLock;
use super::partial;
use super::store::{BackupId, Entry, OrphanCheck, Store};
use crate::config::{Age, Retention};
use crate::{Context, Error, audit};

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// One of the `keep_last` newest (1-based position).
    Last(u32),
    Daily(String),
    Weekly(String),
    Monthly(String),
    Yearly(String),
    /// Dated after "now".
    Future,
    /// Younger than `keep_within`.
    Within(Age),
    /// Protected by the caller: the backup just made.
    JustMade,
    /// Protected: the newest backup whose re-read verification passed.
    NewestVerified,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Last(n) => write!(f, "last #{n}"),
            Reason::Daily(d) => write!(f, "daily {d}"),
            Reason::Weekly(w) => write!(f, "weekly {w}"),
            Reason::Monthly(m) => write!(f, "monthly {m}"),
            Reason::Yearly(y) => write!(f, "yearly {y}"),
            Reason::Future => f.write_str("dated in the future"),
            Reason::Within(age) => write!(f, "within {age}"),
            Reason::JustMade => f.write_str("just made"),
            Reason::NewestVerified => f.write_str("newest verified"),
        }
    }
}

/// The verdict for one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub time: DateTime<Utc>,
    /// Empty means remove.
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Decisions for every backup, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub decisions: Vec<Decision>,
}

impl Plan {
    pub fn removed(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep())
    }

    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.keep())
    }
}

/// The periods a backup falls into, in local time.
struct Buckets {
    day: (i32, u32),
    week: (i32, u32),
    month: (i32, u32),
    year: i32,
}

fn buckets<Tz: TimeZone>(time: DateTime<Utc>, tz: &Tz) -> Buckets {
    let local = time.with_timezone(tz);
    let week = local.iso_week();
    Buckets {
        day: (local.year(), local.ordinal()),
        week: (week.year(), week.week()),
        month: (local.year(), local.month()),
        year: local.year(),
    }
}

/// Applies `policy` to `backups` as of `now`, in time zone `tz`. Ids in
/// `protect` are kept whatever the rules say. Pure: no clock, no disk.
pub fn plan<Tz: TimeZone>(
    backups: &[(String, DateTime<Utc>)],
    policy: &Retention,
    now: DateTime<Utc>,
    tz: &Tz,
    protect: &[(String, Reason)],
) -> Plan
where
    Tz::Offset: std::fmt::Display,
{
    let mut sorted: Vec<&(String, DateTime<Utc>)> = backups.iter().collect();
    // Newest first; ties broken by id so the result does not depend on input order.
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));

    let mut last_left = policy.keep_last;
    let mut daily = (policy.keep_daily, None);
    let mut weekly = (policy.keep_weekly, None);
    let mut monthly = (policy.keep_monthly, None);
    let mut yearly = (policy.keep_yearly, None);
    let mut position = 0;

    /// restic's bucket step: keep when the period differs from the last
    /// one this rule kept and the rule has count left.
    fn step<K: PartialEq + Copy>(rule: &mut (u32, Option<K>), key: K) -> bool {
        if rule.0 > 0 && rule.1 != Some(key) {
            rule.0 -= 1;
            rule.1 = Some(key);
            return true;
        }
        false
    }

    let decisions = sorted
        .into_iter()
        .map(|(id, time)| {
            let mut reasons = Vec::new();
            if *time > now {
                reasons.push(Reason::Future);
            } else {
                position += 1;
                if policy.keep_within.hours > 0 && now - *time < policy.keep_within.as_chrono() {
                    reasons.push(Reason::Within(policy.keep_within));
                }
                if last_left > 0 {
                    last_left -= 1;
                    reasons.push(Reason::Last(position));
                }
                let b = buckets(*time, tz);
                let local = time.with_timezone(tz);
                if step(&mut daily, b.day) {
                    reasons.push(Reason::Daily(local.format("%Y-%m-%d").to_string()));
                }
                if step(&mut weekly, b.week) {
                    reasons.push(Reason::Weekly(format!("{}-W{:02}", b.week.0, b.week.1)));
                }
                if step(&mut monthly, b.month) {
                    reasons.push(Reason::Monthly(local.format("%Y-%m").to_string()));
                }
                if step(&mut yearly, b.year) {
                    reasons.push(Reason::Yearly(b.year.to_string()));
                }
            }
            for (protected, why) in protect {
                if protected == id {
                    reasons.push(why.clone());
                }
            }
            Decision {
                id: id.clone(),
                time: *time,
                reasons,
            }
        })
        .collect();
    Plan { decisions }
}

/// Which backups form one series for retention: those of one database on
/// one server (restic groups by host and paths, pgBackRest by stanza), so
/// a busy database can never push out another's backups. The server is
/// as recorded; one spelt two ways makes two series, which keeps more.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub database: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\" on {}:{}", self.database, self.host, self.port)
    }
}

/// The verdicts for one series.
#[derive(Debug, Clone)]
pub struct SeriesPlan {
    pub series: Series,
    pub plan: Plan,
}

/// One file removed by a prune (a backup or an orphaned data file), with
/// what the audit log records about it.
#[derive(Debug, Clone)]
pub struct Removal {
    pub id: String,
    /// The data file (or directory).
    pub path: std::path::PathBuf,
    /// From the sidecar; `None` for an orphan, which has none.
    pub metadata: Option<super::Metadata>,
    /// Why, in words.
    pub why: String,
}

/// A restore point whose base backup or WAL pgBackRest has expired.
#[derive(Debug, Clone)]
pub struct ExpiredPoint {
    pub series: Series,
    pub id: String,
    /// What pgBackRest no longer holds, in words.
    pub why: String,
}

/// What a prune of a store found and did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Verdicts per database, in database order.
    pub series: Vec<SeriesPlan>,
    /// Restore points pgBackRest has expired: removed (with `dry_run`
    /// only listed), outside the rules.
    pub expired: Vec<ExpiredPoint>,
    /// What was removed (nothing in a dry run), orphans included.
    pub removed: Vec<Removal>,
    /// Data files without a sidecar whose writer is gone: removed, or with
    /// `dry_run` only listed.
    pub orphans: Vec<String>,
    /// Backups without usable metadata, which retention leaves alone, with why.
    pub unmanaged: Vec<(String, String)>,
    /// Removals that failed, with the reason.
    pub failures: Vec<(String, String)>,
    /// Leftovers of interrupted writes (see `partial`): removed, or with
    /// `dry_run` only listed.
    pub stale_partials: Vec<String>,
}

impl Outcome {
    /// Every decision, series after series.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        self.series.iter().flat_map(|s| s.plan.decisions.iter())
    }
}

/// The policy in words, for reports and the audit log.
pub fn describe(policy: &Retention) -> String {
    let mut parts = vec![format!("keep_within {}", policy.keep_within)];
    for (name, n) in [
        ("keep_last", policy.keep_last),
        ("keep_daily", policy.keep_daily),
        ("keep_weekly", policy.keep_weekly),
        ("keep_monthly", policy.keep_monthly),
        ("keep_yearly", policy.keep_yearly),
    ] {
        if n > 0 {
            parts.push(format!("{name} {n}"));
        }
    }
    parts.join(", ")
}

/// The backup of a series that no policy may remove: the newest whose last
/// check passed (`verified`: its sidecar is present and the data's SHA-256
/// matched the sidecar, while it was written or when last re-read by
/// `dbguard verify`). When no backup of the series has a passing check on
/// record (the journal was lost, backups were copied in), the newest never
/// checked one stands in; one whose last check failed never does.
fn newest_verified<'a>(
    newest_first: &[&'a str],
    last_check: &std::collections::HashMap<String, super::store::VerifyOutcome>,
) -> Option<&'a str> {
    newest_first
        .iter()
        .find(|id| last_check.get(**id).is_some_and(|v| v.is_ok()))
        .or_else(|| {
            newest_first
                .iter()
                .find(|id| !last_check.contains_key(**id))
        })
        .copied()
}

/// Plans retention for a store, database by database (and, unless
/// `dry_run`, removes what the plans drop and data files orphaned by a
/// killed backup) while holding the prune lock. A policy whose counts are
/// all 0 is refused: it would keep nothing.
pub fn prune_store(
    store: &Store,
    policy: Retention,
    just_made: Option<&str>,
    dry_run: bool,
    wait: Duration,
) -> Result<Outcome, Error> {
    prune_store_knowing(store, policy, just_made, dry_run, wait, None)
}

/// [`prune_store`], with one stanza's `pgbackrest info` already in hand
/// (`known`): restore points of that stanza are assessed against it
/// instead of a new `pgbackrest info`.
fn prune_store_knowing(
    store: &Store,
    policy: Retention,
    just_made: Option<&str>,
    dry_run: bool,
    wait: Duration,
    known: Option<(&str, &StanzaInfo)>,
) -> Result<Outcome, Error> {
    if policy.counts_all_zero() {
        return Err(Error::Usage(
            "refusing to prune: the retention policy keeps nothing (every count is 0)".into(),
        ));
    }
    let _lock = PruneLock::acquire(store.dir(), wait)?;
    let entries = store.entries()?;
    let mut verifications = store.last_verifications();
    let now = Utc::now();
    let mut outcome = Outcome::default();

    // Entries are newest first, and stay so within each series.
    let mut series: BTreeMap<Series, Vec<&Entry>> = BTreeMap::new();
    let mut orphans = Vec::new();
    let mut expired: Vec<(&Entry, ExpiredPoint)> = Vec::new();
    let mut stanzas: std::collections::HashMap<String, Result<StanzaInfo, String>> = known
        .map(|(stanza, info)| (stanza.to_owned(), Ok(info.clone())))
        .into_iter()
        .collect();
    for entry in &entries {
        match (entry.meta(), entry.data.is_some()) {
            (Some(meta), has_data) if has_data || meta.restore_point.is_some() => {
                let key = Series {
                    database: meta.database.clone(),
                    host: meta.host.clone(),
                    port: meta.port,
                };
                // The restore point just made was checked as it was
                // made (its WAL archived, its base backup named by
                // pgBackRest) and its check is on record: asking again
                // would tell nothing new, and `known` predates its WAL.
                let just_checked = just_made == Some(entry.id.as_str());
                if let Some(point) = meta.restore_point.as_ref().filter(|_| !just_checked) {
                    let info = stanzas
                        .entry(point.stanza.clone())
                        .or_insert_with(|| pgbackrest::stanza_ok(&point.stanza));
                    let state = info
                        .as_ref()
                        .map(|info| pgbackrest::assess(info, point))
                        .map_err(Clone::clone);
                    match state {
                        Ok(PointState::Restorable { .. }) => {
                            // Checked against the repository just now.
                            verifications.insert(
                                entry.id.clone(),
                                super::store::VerifyOutcome {
                                    id: entry.id.clone(),
                                    at: chrono::Local::now().fixed_offset(),
                                    status: "OK".into(),
                                    how: "pgbackrest info".into(),
                                },
                            );
                        }
                        Ok(PointState::Expired(why)) => {
                            expired.push((
                                entry,
                                ExpiredPoint {
                                    series: key,
                                    id: entry.id.clone(),
                                    why: format!(
                                        "restore point {} expired by pgBackRest's retention: {why}",
                                        point.name
                                    ),
                                },
                            ));
                            continue;
                        }
                        Ok(PointState::Missing(why)) => {
                            outcome.unmanaged.push((
                                entry.id.clone(),
                                format!("restore point not restorable ({why}); left alone, not counted (see dbguard verify)"),
                            ));
                            continue;
                        }
                        Err(why) => {
                            outcome.unmanaged.push((
                                entry.id.clone(),
                                format!(
                                    "restore point not checked ({why}); left alone, not counted"
                                ),
                            ));
                            continue;
                        }
                    }
                }
                series.entry(key).or_default().push(entry);
            }
            (None, true) if entry.sidecar.is_none() => orphans.push(entry),
            (Some(_), false) => outcome.unmanaged.push((
                entry.id.clone(),
                "data missing; left alone (see dbguard verify)".into(),
            )),
            _ => outcome.unmanaged.push((
                entry.id.clone(),
                "metadata unreadable; left alone (see dbguard verify)".into(),
            )),
        }
    }

    for (key, members) in series {
        let ids: Vec<&str> = members.iter().map(|e| e.id.as_str()).collect();
        let mut protect = Vec::new();
        if let Some(id) = just_made.filter(|id| ids.contains(id)) {
            protect.push((id.to_owned(), Reason::JustMade));
        }
        if let Some(id) = newest_verified(&ids, &verifications) {
            protect.push((id.to_owned(), Reason::NewestVerified));
        }
        let backups: Vec<(String, DateTime<Utc>)> = members
            .iter()
            .filter_map(|e| {
                e.meta()
                    .map(|m| (e.id.clone(), m.created_at.with_timezone(&Utc)))
            })
            .collect();
        let plan = plan(&backups, &policy, now, &chrono::Local, &protect);
        if !dry_run {
            for decision in plan.removed() {
                let Some(entry) = members.iter().find(|e| e.id == decision.id) else {
                    continue;
                };
                match store.remove(entry) {
                    Ok(()) => outcome.removed.push(Removal {
                        id: entry.id.clone(),
                        path: record_path(entry),
                        metadata: entry.meta().cloned(),
                        why: format!(
                            "retention ({}, per database): no rule keeps it",
                            describe(&policy)
                        ),
                    }),
                    Err(e) => outcome.failures.push((decision.id.clone(), e.to_string())),
                }
            }
        }
        outcome.series.push(SeriesPlan { series: key, plan });
    }

    for (entry, point) in expired {
        if !dry_run {
            match store.remove(entry) {
                Ok(()) => outcome.removed.push(Removal {
                    id: entry.id.clone(),
                    path: record_path(entry),
                    metadata: entry.meta().cloned(),
                    why: point.why.clone(),
                }),
                Err(e) => {
                    outcome.failures.push((entry.id.clone(), e.to_string()));
                    continue;
                }
            }
        }
        outcome.expired.push(point);
    }

    for entry in orphans {
        match store.check_orphan(entry, !dry_run) {
            Ok(OrphanCheck::Removable) => {
                outcome.orphans.push(entry.id.clone());
                if !dry_run {
                    outcome.removed.push(Removal {
                        id: entry.id.clone(),
                        path: entry.data.clone().unwrap_or_default(),
                        metadata: None,
                        why: "data file without metadata, left by a backup that was interrupted"
                            .into(),
                    });
                }
            }
            Ok(check) => {
                let why = match check {
                    OrphanCheck::TooYoung | OrphanCheck::BeingWritten => {
                        "no metadata yet; a backup may still be writing it"
                    }
                    _ => "metadata written meanwhile",
                };
                outcome.unmanaged.push((entry.id.clone(), why.into()));
            }
            Err(e) => outcome.failures.push((entry.id.clone(), e.to_string())),
        }
    }

    if !dry_run {
        let remaining: Vec<String> = entries
            .iter()
            .map(|e| e.id.clone())
            .filter(|id| !outcome.removed.iter().any(|r| r.id == *id))
            .collect();
        let _ = store.compact_journal(&remaining);
    }
    for path in partial::stale(store.dir()) {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if !dry_run && let Err(e) = partial::remove(&path) {
            outcome.failures.push((name, e.to_string()));
            continue;
        }
        outcome.stale_partials.push(name);
    }
    Ok(outcome)
}

/// The file a removal names: the data, or for a restore point (which has
/// none) its sidecar.
fn record_path(entry: &Entry) -> std::path::PathBuf {
    entry
        .data
        .clone()
        .or_else(|| entry.sidecar.clone())
        .unwrap_or_default()
}

/// Retention after a new backup: never waits long for the lock (another
/// prune running is as good as this one) and never removes `just_made`.
///
/// `known` is the stanza's `pgbackrest info` that the guard's health check
/// read seconds ago, before `just_made` was taken: the older restore points
/// of that stanza are assessed against it, which spares every guard on the
/// pgBackRest engine a second `pgbackrest info`. An expiry by pgBackRest
/// in those seconds is seen by the next prune, as one a moment after a
/// fresh `info` would be; `verify` and `restore` always ask pgBackRest
/// afresh, so no point is ever restored or verified on this answer.
pub fn prune_after_backup(
    store: &Store,
    policy: Retention,
    just_made: &str,
    known: Option<(&str, &StanzaInfo)>,
) -> Result<Outcome, Error> {
    prune_store_knowing(
        store,
        policy,
        Some(just_made),
        false,
        Duration::from_secs(5),
        known,
    )
}

/// Writes one audit record (decision `pruned`) per removal into the log in
/// the store, as the command in `ctx` did it. A log that cannot be written
/// is a warning: the removal has happened and was printed.
pub fn audit_removals(ctx: &Context, dir: &Path, removed: &[Removal]) {
    let tool = Path::new(ctx.argv0_override.as_deref().unwrap_or(ctx.argv0()))
        .file_name()
        .map_or_else(
            || "dbguard".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    for removal in removed {
        let mut record = audit::Record::new(ctx, &tool, audit::Outcome::Pruned);
        record.detail = Some(removal.why.clone());
        if let Some(m) = &removal.metadata {
            record.target = Some(audit::TargetRecord {
                host: m.host.clone(),
                port: m.port,
                user: m.user.clone(),
                database: m.database.clone(),
            });
        }
        record.backups.push(audit::BackupRecord {
            id: removal.id.clone(),
            database: removal
                .metadata
                .as_ref()
                .map(|m| m.database.clone())
                .or_else(|| BackupId::parse(&removal.id).map(|(db, _, _)| db))
                .unwrap_or_default(),
            sha256: removal
                .metadata
                .as_ref()
                .map(|m| m.sha256.clone())
                .unwrap_or_default(),
            path: removal.path.clone(),
        });
        if let Err(e) = audit::append(dir, &record) {
            note!("dbguard: warning: could not write the audit log: {e}");
            return;
        }
    }
}

/// What an automatic prune (after a backup) did, on stderr: every removal
/// and every failure, one line each, so nothing disappears unseen even
/// when stdout belongs to the guarded tool. Then the audit records.
pub fn announce(ctx: &Context, dir: &Path, outcome: &Outcome) {
    for removal in &outcome.removed {
        let what = match &removal.metadata {
            Some(m) => format!(
                "{} (database \"{}\", taken {})",
                removal.id,
                m.database,
                m.created_at.format("%Y-%m-%d %H:%M")
            ),
            None => removal.id.clone(),
        };
        note!("dbguard: pruned {what}: {}", removal.why);
    }
    for (id, why) in &outcome.failures {
        note!("dbguard: warning: could not prune {id}: {why}");
    }
    audit_removals(ctx, dir, &outcome.removed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration as Span, NaiveDate};

    fn t(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .unwrap()
            .and_utc()
    }

    fn policy(last: u32, daily: u32, weekly: u32, monthly: u32, yearly: u32) -> Retention {
        Retention {
            keep_within: Age::default(),
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            keep_yearly: yearly,
        }
    }

    fn kept(plan: &Plan) -> Vec<&str> {
        plan.kept().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_whatever_the_input_order() {
        let backups: Vec<_> = (1..=5)
            .map(|d| (format!("b{d}"), t(2026, 1, d, 12)))
            .rev()
            .collect();
        let p = plan(
            &backups,
            &policy(2, 0, 0, 0, 0),
            t(2026, 2, 1, 0),
            &Utc,
            &[],
        );
        assert_eq!(kept(&p), ["b5", "b4"]);
        assert_eq!(p.decisions[0].reasons, [Reason::Last(1)]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_and_gaps_do_not_count() {
        let backups = vec![
            ("mon-a".to_string(), t(2026, 1, 5, 8)),
            ("mon-b".to_string(), t(2026, 1, 5, 18)),
            ("wed".to_string(), t(2026, 1, 7, 9)),
            ("sun".to_string(), t(2026, 1, 11, 9)),
        ];
        let p = plan(
            &backups,
            &policy(0, 3, 0, 0, 0),
            t(2026, 2, 1, 0),
            &Utc,
            &[],
        );
        assert_eq!(kept(&p), ["sun", "wed", "mon-b"]);
    }

    #[test]
    fn weeks_are_iso_weeks() {
        // 2026-01-04 is a Sunday (ISO week 2026-W01), 2026-01-05 a Monday (W02).
        let backups = vec![
            ("sun".to_string(), t(2026, 1, 4, 12)),
            ("sat-before".to_string(), t(2026, 1, 3, 12)),
            ("mon".to_string(), t(2026, 1, 5, 12)),
        ];
        let p = plan(
            &backups,
            &policy(0, 0, 5, 0, 0),
            t(2026, 2, 1, 0),
            &Utc,
            &[],
        );
        assert_eq!(kept(&p), ["mon", "sun"]);
        assert_eq!(p.decisions[1].reasons, [Reason::Weekly("2026-W01".into())]);
        // 2024-12-30 belongs to ISO week 2025-W01.
        let p = plan(
            &[("x".to_string(), t(2024, 12, 30, 12))],
            &policy(0, 0, 1, 0, 0),
            t(2026, 1, 1, 0),
            &Utc,
            &[],
        );
        assert_eq!(p.decisions[0].reasons, [Reason::Weekly("2025-W01".into())]);
    }

    #[test]
    fn future_backups_are_kept_and_push_nothing_out() {
        let now = t(2026, 1, 10, 0);
        let mut backups = vec![
            ("old".to_string(), t(2026, 1, 8, 0)),
            ("older".to_string(), t(2026, 1, 7, 0)),
        ];
        let before = plan(&backups, &policy(2, 0, 0, 0, 0), now, &Utc, &[]);
        backups.push(("future".to_string(), now + Span::days(400)));
        let after = plan(&backups, &policy(2, 0, 0, 0, 0), now, &Utc, &[]);
        assert_eq!(kept(&before), ["old", "older"]);
        assert_eq!(kept(&after), ["future", "old", "older"]);
        assert_eq!(after.decisions[0].reasons, [Reason::Future]);
    }

    #[test]
    fn protected_backups_survive_a_zero_policy() {
        let backups = vec![
            ("a".to_string(), t(2026, 1, 1, 0)),
            ("b".to_string(), t(2026, 1, 2, 0)),
        ];
        let p = plan(
            &backups,
            &policy(0, 0, 0, 0, 0),
            t(2026, 2, 1, 0),
            &Utc,
            &[("a".into(), Reason::NewestVerified)],
        );
        assert_eq!(kept(&p), ["a"]);
    }

    #[test]
    fn keep_within_keeps_everything_younger_than_the_minimum_age() {
        let now = t(2026, 1, 10, 12);
        let backups: Vec<_> = (0..6)
            .map(|h| (format!("b{h}"), now - Span::hours(20 * h)))
            .collect();
        let mut p = policy(1, 0, 0, 0, 0);
        p.keep_within = "2d".parse().unwrap();
        let result = plan(&backups, &p, now, &Utc, &[]);
        // 0, 20 and 40 hours old are within two days; 60 and more are not.
        assert_eq!(kept(&result), ["b0", "b1", "b2"]);
        assert_eq!(
            result.decisions[1].reasons,
            [Reason::Within("2d".parse().unwrap())]
        );
        assert_eq!(result.decisions[1].reasons[0].to_string(), "within 2d");
    }

    #[test]
    fn newest_verified_prefers_a_passing_check_and_never_a_failed_one() {
        use super::super::store::VerifyOutcome;
        use std::collections::HashMap;
        let check = |id: &str, status: &str, how: &str| {
            (
                id.to_owned(),
                VerifyOutcome {
                    id: id.into(),
                    at: chrono::Local::now().fixed_offset(),
                    status: status.into(),
                    how: how.into(),
                },
            )
        };
        let ids = ["new", "mid", "old"];
        let journal: HashMap<_, _> = [
            check("new", "CORRUPTED", "verify"),
            check("old", "OK", "created"),
        ]
        .into();
        assert_eq!(newest_verified(&ids, &journal), Some("old"));
        // No passing check anywhere: the newest never checked one.
        let journal: HashMap<_, _> = [check("new", "CORRUPTED", "verify")].into();
        assert_eq!(newest_verified(&ids, &journal), Some("mid"));
        let journal: HashMap<_, _> = ids
            .iter()
            .map(|id| check(id, "CORRUPTED", "verify"))
            .collect();
        assert_eq!(newest_verified(&ids, &journal), None);
    }

    #[test]
    fn days_are_local_days_across_a_dst_change() {
        use chrono_tz::Europe::Berlin;
        // Berlin leaves summer time on 2023-10-29 at 03:00 CEST (01:00 UTC).
        // These three are all on Sunday 29 October in Berlin, though the
        // first is still Saturday in UTC and the last two share a wall-clock hour.
        let backups = vec![
            (
                "sat-utc".to_string(),
                Utc.with_ymd_and_hms(2023, 10, 28, 22, 30, 0).unwrap(),
            ),
            (
                "0230-cest".to_string(),
                Utc.with_ymd_and_hms(2023, 10, 29, 0, 30, 0).unwrap(),
            ),
            (
                "0230-cet".to_string(),
                Utc.with_ymd_and_hms(2023, 10, 29, 1, 30, 0).unwrap(),
            ),
            (
                "fri".to_string(),
                Utc.with_ymd_and_hms(2023, 10, 27, 12, 0, 0).unwrap(),
            ),
        ];
        let now = Utc.with_ymd_and_hms(2023, 11, 1, 0, 0, 0).unwrap();
        let p = plan(&backups, &policy(0, 2, 0, 0, 0), now, &Berlin, &[]);
        assert_eq!(kept(&p), ["0230-cet", "fri"]);
        assert_eq!(p.decisions[0].reasons, [Reason::Daily("2023-10-29".into())]);
        // In UTC the Saturday one would have been a day of its own.
        let p = plan(&backups, &policy(0, 2, 0, 0, 0), now, &Utc, &[]);
        assert_eq!(kept(&p), ["0230-cet", "sat-utc"]);
    }

    mod properties {
        use super::*;
        use chrono::NaiveDate;
        use chrono_tz::Tz;
        use proptest::prelude::*;
        use std::collections::{BTreeSet, HashMap};

        const ZONES: [Tz; 5] = [
            chrono_tz::UTC,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::New_York,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Australia::Lord_Howe,
        ];

        /// A history: a start near a DST change, then gaps from minutes to months.
        fn history() -> impl Strategy<Value = (Vec<(String, DateTime<Utc>)>, i64)> {
            let gap = prop_oneof![
                0i64..180,
                0i64..(60 * 30),
                0i64..(60 * 24 * 10),
                0i64..(60 * 24 * 400)
            ];
            (
                0usize..6,
                0i64..(60 * 24 * 3),
                prop::collection::vec(gap, 0..40),
                -(60i64 * 24 * 30)..(60 * 24 * 30),
            )
                .prop_map(|(start, jitter, gaps, now_shift)| {
                    // Weekends around DST changes in the zones above.
                    let starts = [
                        (2018, 3, 23),
                        (2018, 10, 26),
                        (2019, 2, 15),
                        (2020, 11, 1),
                        (2021, 3, 26),
                        (2023, 10, 27),
                    ];
                    let (y, m, d) = starts[start];
                    let base = NaiveDate::from_ymd_opt(y, m, d)
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                        .expect("valid start date");
                    let mut t = base + chrono::Duration::minutes(jitter);
                    let mut out = Vec::new();
                    for (i, g) in gaps.into_iter().enumerate() {
                        t += chrono::Duration::minutes(g);
                        out.push((format!("b{i:02}"), t));
                    }
                    (out, now_shift)
                })
        }

        fn policy_strategy() -> impl Strategy<Value = Retention> {
            (
                (0u32..5, 0u32..5, 0u32..4, 0u32..4, 0u32..3),
                prop_oneof![Just(0u64), 1u64..72, 1u64..(24 * 60)],
            )
                .prop_map(|((l, d, w, m, y), hours)| {
                    let mut p = policy(l, d, w, m, y);
                    p.keep_within = Age { hours };
                    p
                })
        }

        /// The rules stated as sets: the newest backup of each of the N
        /// newest periods that have backups, plus the N newest overall,
        /// plus everything younger than `keep_within`, plus everything
        /// dated in the future.
        fn expected(
            backups: &[(String, DateTime<Utc>)],
            p: &Retention,
            now: DateTime<Utc>,
            tz: &Tz,
        ) -> BTreeSet<String> {
            let mut past: Vec<&(String, DateTime<Utc>)> =
                backups.iter().filter(|(_, t)| *t <= now).collect();
            past.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
            let mut keep: BTreeSet<String> = backups
                .iter()
                .filter(|(_, t)| *t > now)
                .map(|(id, _)| id.clone())
                .collect();
            keep.extend(
                past.iter()
                    .filter(|(_, t)| now - *t < p.keep_within.as_chrono())
                    .map(|(id, _)| id.clone()),
            );
            keep.extend(
                past.iter()
                    .take(p.keep_last as usize)
                    .map(|(id, _)| id.clone()),
            );
            let local = |t: &DateTime<Utc>| tz.from_utc_datetime(&t.naive_utc()).naive_local();
            let keys: [(u32, PeriodKey<'_>); 4] = [
                (p.keep_daily, Box::new(|t| local(t).date().to_string())),
                (
                    p.keep_weekly,
                    Box::new(|t| {
                        let w = local(t).date().iso_week();
                        format!("{}-{}", w.year(), w.week())
                    }),
                ),
                (
                    p.keep_monthly,
                    Box::new(|t| format!("{}-{}", local(t).year(), local(t).month())),
                ),
                (p.keep_yearly, Box::new(|t| local(t).year().to_string())),
            ];
            for (count, key) in keys {
                let mut newest_of: HashMap<String, usize> = HashMap::new();
                for (i, (_, t)) in past.iter().enumerate() {
                    newest_of.entry(key(t)).or_insert(i);
                }
                let mut firsts: Vec<usize> = newest_of.into_values().collect();
                firsts.sort_unstable();
                keep.extend(
                    firsts
                        .into_iter()
                        .take(count as usize)
                        .map(|i| past[i].0.clone()),
                );
            }
            keep
        }

        /// Names the period a backup falls into.
        type PeriodKey<'a> = Box<dyn Fn(&DateTime<Utc>) -> String + 'a>;

        fn kept_set(p: &Plan) -> BTreeSet<String> {
            p.kept().map(|d| d.id.clone()).collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn plan_matches_the_rules_stated_as_sets(
                (backups, now_shift) in history(),
                p in policy_strategy(),
                zone in 0usize..ZONES.len(),
            ) {
                let tz = ZONES[zone];
                let now = backups.last().map_or_else(Utc::now, |(_, t)| *t) + chrono::Duration::minutes(now_shift);
                let result = plan(&backups, &p, now, &tz, &[]);
                prop_assert_eq!(result.decisions.len(), backups.len());
                prop_assert_eq!(kept_set(&result), expected(&backups, &p, now, &tz));
            }

            #[test]
            fn pruning_again_removes_nothing_more(
                (backups, now_shift) in history(),
                p in policy_strategy(),
                zone in 0usize..ZONES.len(),
            ) {
                let tz = ZONES[zone];
                let now = backups.last().map_or_else(Utc::now, |(_, t)| *t) + chrono::Duration::minutes(now_shift);
                let first = plan(&backups, &p, now, &tz, &[]);
                let survivors: Vec<(String, DateTime<Utc>)> =
                    first.kept().map(|d| (d.id.clone(), d.time)).collect();
                let second = plan(&survivors, &p, now, &tz, &[]);
                prop_assert_eq!(second.removed().count(), 0);
            }

            #[test]
            fn future_backups_never_cost_a_past_one_its_place(
                (backups, now_shift) in history(),
                p in policy_strategy(),
                extra in prop::collection::vec(1i64..(60 * 24 * 900), 1..5),
            ) {
                let now = backups.last().map_or_else(Utc::now, |(_, t)| *t) + chrono::Duration::minutes(now_shift);
                let past: Vec<_> = backups.iter().filter(|(_, t)| *t <= now).cloned().collect();
                let mut with_future = past.clone();
                for (i, m) in extra.iter().enumerate() {
                    with_future.push((format!("future{i}"), now + chrono::Duration::minutes(*m)));
                }
                let before = kept_set(&plan(&past, &p, now, &chrono_tz::Europe::Berlin, &[]));
                let after = plan(&with_future, &p, now, &chrono_tz::Europe::Berlin, &[]);
                let after_past: BTreeSet<String> =
                    after.kept().filter(|d| !d.id.starts_with("future")).map(|d| d.id.clone()).collect();
                prop_assert_eq!(before, after_past);
                prop_assert!(after.decisions.iter().filter(|d| d.id.starts_with("future")).all(Decision::keep));
            }

            #[test]
            fn protected_backups_are_always_kept(
                (backups, _) in history(),
                p in policy_strategy(),
                pick in any::<prop::sample::Index>(),
            ) {
                prop_assume!(!backups.is_empty());
                let id = backups[pick.index(backups.len())].0.clone();
                let now = backups.last().map_or_else(Utc::now, |(_, t)| *t);
                let result = plan(&backups, &p, now, &Utc, &[(id.clone(), Reason::JustMade)]);
                let decision = result.decisions.iter().find(|d| d.id == id).expect("every backup gets a decision");
                prop_assert!(decision.reasons.contains(&Reason::JustMade));
            }
        }
    }
}
