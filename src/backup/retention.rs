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

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use super::lock::PruneLock;
use super::store::Store;
use crate::Error;
use crate::config::Retention;

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

/// What a prune of a store found and did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub plan: Plan,
    /// Backups without usable metadata, which retention leaves alone.
    pub unmanaged: Vec<String>,
    /// Removals that failed, with the reason.
    pub failures: Vec<(String, String)>,
}

/// Plans retention for a store (and, unless `dry_run`, removes what the
/// plan drops) while holding the prune lock.
pub fn prune_store(
    store: &Store,
    policy: Retention,
    just_made: Option<&str>,
    dry_run: bool,
    wait: Duration,
) -> Result<Outcome, Error> {
    let _lock = PruneLock::acquire(store.dir(), wait)?;
    let entries = store.entries()?;
    let verifications = store.last_verifications();
    let mut backups = Vec::new();
    let mut unmanaged = Vec::new();
    for entry in &entries {
        match (entry.meta(), entry.data.is_some()) {
            (Some(meta), true) => {
                backups.push((entry.id.clone(), meta.created_at.with_timezone(&Utc)))
            }
            _ => unmanaged.push(entry.id.clone()),
        }
    }
    let mut protect = Vec::new();
    if let Some(id) = just_made {
        protect.push((id.to_owned(), Reason::JustMade));
    }
    // Entries are newest first, so the first verified one is the newest.
    if let Some(id) = backups.iter().map(|(id, _)| id).find(|id| {
        verifications
            .get(*id)
            .is_some_and(|v| v.is_ok() && v.how == "verify")
    }) {
        protect.push((id.clone(), Reason::NewestVerified));
    }
    let plan = plan(&backups, &policy, Utc::now(), &chrono::Local, &protect);
    let mut failures = Vec::new();
    if !dry_run {
        for decision in plan.removed() {
            if let Some(entry) = entries.iter().find(|e| e.id == decision.id)
                && let Err(e) = store.remove(entry)
            {
                failures.push((decision.id.clone(), e.to_string()));
            }
        }
        let remaining: Vec<String> = entries
            .iter()
            .map(|e| e.id.clone())
            .filter(|id| !plan.removed().any(|d| d.id == *id))
            .collect();
        let _ = store.compact_journal(&remaining);
    }
    Ok(Outcome {
        plan,
        unmanaged,
        failures,
    })
}

/// Retention after a new backup: never waits long for the lock (another
/// prune running is as good as this one) and never removes `just_made`.
pub fn prune_after_backup(
    store: &Store,
    policy: Retention,
    just_made: &str,
) -> Result<Plan, Error> {
    prune_store(
        store,
        policy,
        Some(just_made),
        false,
        Duration::from_secs(5),
    )
    .map(|o| o.plan)
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
}
