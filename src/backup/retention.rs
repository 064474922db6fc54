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
use super::partial;
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
    /// Leftovers of interrupted writes (see `partial`): removed, or with
    /// `dry_run` only listed.
    pub stale_partials: Vec<String>,
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
    let mut stale_partials = Vec::new();
    for path in partial::stale(store.dir()) {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if !dry_run && let Err(e) = partial::remove(&path) {
            failures.push((name, e.to_string()));
            continue;
        }
        stale_partials.push(name);
    }
    Ok(Outcome {
        plan,
        unmanaged,
        failures,
        stale_partials,
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
            (0u32..5, 0u32..5, 0u32..4, 0u32..4, 0u32..3)
                .prop_map(|(l, d, w, m, y)| policy(l, d, w, m, y))
        }

        /// The rules stated as sets: the newest backup of each of the N
        /// newest periods that have backups, plus the N newest overall,
        /// plus everything dated in the future.
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
