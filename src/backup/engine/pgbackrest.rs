//! The pgBackRest engine: a guarded operation costs a restore point, not a
//! dump. The cluster archives its WAL through pgBackRest; before the
//! operation runs, dbguard creates a uniquely named restore point, forces a
//! WAL switch and waits until the segment holding the restore point is
//! archived. The sidecar then names the stanza, the restore point, its LSN,
//! time and timeline, and the pgBackRest backup it builds on; that is the
//! whole local record (no data file).
//!
//! Whether the engine can be trusted is decided first, by [`health`]:
//! `archive_mode` on, no archiving failure newer than the last success in
//! `pg_stat_archiver`, and the stanza's `pgbackrest info` reporting status
//! ok with at least one backup. [`check_point`] answers the later question
//! (`verify`, `restore`): are the base backup and the WAL up to the
//! restore point still in the repository?
//!
//! pgBackRest reads its own configuration (`PGBACKREST_CONFIG`,
//! `PGBACKREST_*`, /etc/pgbackrest/pgbackrest.conf); dbguard passes only
//! the stanza.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::{Engine, Job, Taken};
use crate::Error;
use crate::backup::dest::local::Local;
use crate::backup::sink::Naming;
use crate::backup::store::Store;
use crate::pgtools::{PgTools, first_error_line, quote_literal};

/// How long a guard waits for the restore point's WAL segment to reach
/// the repository before it gives up (and the operation does not run).
pub const ARCHIVE_WAIT: Duration = Duration::from_secs(60);

/// What the sidecar records about a restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub stanza: String,
    /// The name given to `pg_create_restore_point`, restored to with
    /// `pgbackrest restore --type=name`.
    pub name: String,
    pub lsn: String,
    pub time: DateTime<FixedOffset>,
    pub timeline: u32,
    /// The WAL segment holding the restore point, archived before the
    /// operation ran.
    pub wal_segment: String,
    /// The pgBackRest backup (label) the restore point builds on.
    pub backup_label: String,
    /// The cluster's data directory as the server reported it (absent when
    /// the guard's role may not see it): where a whole-cluster restore
    /// writes, and where `postmaster.pid` says whether the server runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_directory: Option<String>,
}

/// Whether a restore point can still be reached, by what pgBackRest's
/// repository holds now ([`assess`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointState {
    /// A backup that ended before the point, and the WAL from its start
    /// to the point, are in the repository.
    Restorable {
        /// The backup to restore from (`--set`): with `--type=name`
        /// pgBackRest cannot pick it by itself and would take the newest,
        /// which may have started after the point.
        base: String,
        /// The base backup and WAL range, in words.
        detail: String,
    },
    /// pgBackRest's retention removed the base backup or the WAL the point
    /// needs: it can never be restored again.
    Expired(String),
    /// The WAL up to the point is not (or no longer) in the repository
    /// for another reason (archived elsewhere, a repository replaced).
    Missing(String),
}

/// What [`health`] found: archiving works and the stanza has a backup.
#[derive(Debug, Clone)]
pub struct Health {
    /// The newest backup's label.
    pub backup_label: String,
    pub pgbackrest_version: String,
    /// The stanza's `pgbackrest info`, as the check read it: the prune
    /// after the guard's backup assesses the older restore points with it
    /// instead of asking pgBackRest again (`retention::prune_after_backup`).
    pub info: StanzaInfo,
}

/// The engine for one guarded database, after a healthy [`health`].
pub struct PgBackRest<'a> {
    tools: &'a PgTools,
    stanza: &'a str,
    health: Health,
}

impl<'a> PgBackRest<'a> {
    pub const NAME: &'static str = "pgbackrest";

    pub fn new(tools: &'a PgTools, stanza: &'a str, health: Health) -> PgBackRest<'a> {
        PgBackRest {
            tools,
            stanza,
            health,
        }
    }
}

impl Engine for PgBackRest<'_> {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> String {
        self.health.pgbackrest_version.clone()
    }

    fn take(&self, job: &Job<'_>, local: &Local) -> Result<Taken, Error> {
        let clock = Instant::now();
        let Naming::Store {
            database,
            started_at,
        } = job.naming
        else {
            return Err(Error::BackupFailed(
                "the pgbackrest engine keeps no data file, so --output has nothing to write".into(),
            ));
        };
        // The id is held until the sidecar is written, as for a data file.
        let reserved = Store::new(local.dir())
            .reserve_id(database, started_at.naive_local())
            .map_err(|e| Error::BackupFailed(format!("cannot reserve a backup id: {e}")))?;
        let id = reserved.id.as_str().to_owned();
        let name = point_name(&id, started_at);
        let (point, failures_before) = create_point(self.tools, job, self.stanza, &name)?;
        let point = RestorePoint {
            backup_label: self.health.backup_label.clone(),
            ..point
        };
        wait_archived(
            self.tools,
            job,
            &point.wal_segment,
            failures_before,
            ARCHIVE_WAIT,
        )?;
        let record = serde_json::to_vec(&point)
            .map_err(|e| Error::BackupFailed(format!("cannot encode the restore point: {e}")))?;
        Ok(Taken {
            engine: Self::NAME,
            id,
            path: None,
            format: job.format,
            // The sidecar's own record of the point, checksummed like data.
            sha256: crate::backup::sink::hash_reader(&mut record.as_slice())
                .map(|(sum, _)| sum)
                .unwrap_or_default(),
            size_bytes: 0,
            rows: Default::default(),
            // Nothing is dumped: the scratch cluster's dump is checked when
            // it is restored.
            checksums: Default::default(),
            files: Vec::new(),
            completeness: format!(
                "restore point {} at {} archived (WAL segment {}) on top of pgBackRest backup {}",
                point.name, point.lsn, point.wal_segment, point.backup_label
            ),
            elapsed: clock.elapsed(),
            reservation: Some(std::sync::Arc::new(reserved)),
            restore_point: Some(point),
        })
    }
}

/// The restore point's name: `dbguard_<time>_<hash>`, within PostgreSQL's
/// 63 characters whatever the database's name. Unique across backup
/// directories sharing one cluster: the id is unique in its directory, the
/// nanoseconds and the process tell directories apart.
pub fn point_name(id: &str, started_at: &chrono::DateTime<chrono::Local>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!(
        "{id}/{}/{}",
        started_at.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id()
    ));
    format!(
        "dbguard_{}_{}",
        started_at.format("%Y%m%d_%H%M%S"),
        &hex::encode(digest)[..16]
    )
}

/// Whether the engine can protect the database now; `Err` says why not,
/// in words for a person.
pub fn health(
    tools: &PgTools,
    target: &crate::target::Target,
    stanza: &str,
) -> Result<Health, String> {
    let rows = tools
        .query(
            target,
            "SELECT current_setting('archive_mode'), coalesce(last_archived_wal, ''), \
             coalesce(last_failed_wal, ''), failed_count, \
             coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) \
             FROM pg_stat_archiver",
        )
        .map_err(|e| {
            format!(
                "cannot ask the server about archiving: {}",
                e.into_error(target)
            )
        })?;
    let row = rows.first().ok_or("pg_stat_archiver returned no row")?;
    let field = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
    if !matches!(field(0), "on" | "always") {
        return Err(format!("archive_mode is {}", field(0)));
    }
    if field(4) == "t" {
        return Err(format!(
            "archiving WAL segment {} failed after the last success ({} failures so far; see the server log)",
            field(2),
            field(3)
        ));
    }
    let stanza_info = info(stanza)?;
    let status = &stanza_info.status;
    if status.code != 0 {
        return Err(format!(
            "pgbackrest info for stanza \"{stanza}\": {}",
            status.message
        ));
    }
    let newest = stanza_info
        .backup
        .last()
        .ok_or_else(|| format!("stanza \"{stanza}\" has no backup yet"))?;
    Ok(Health {
        backup_label: newest.label.clone(),
        // From the same answer: one process start less on the guard's path.
        pgbackrest_version: newest
            .backrest
            .as_ref()
            .and_then(|b| b.version.as_deref())
            .map(|v| format!("pgBackRest {v}"))
            .unwrap_or_default(),
        info: stanza_info.clone(),
    })
}

/// The stanza's entry in `pgbackrest info --output=json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StanzaInfo {
    #[serde(default)]
    pub archive: Vec<ArchiveRange>,
    #[serde(default)]
    pub backup: Vec<BackupInfo>,
    pub status: StanzaStatus,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StanzaStatus {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArchiveRange {
    pub min: Option<String>,
    pub max: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackupInfo {
    pub label: String,
    pub archive: BackupArchive,
    /// Where the backup started and stopped in the WAL.
    #[serde(default)]
    pub lsn: Option<BackupLsn>,
    /// The pgBackRest that took the backup.
    #[serde(default)]
    pub backrest: Option<BackRest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackRest {
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackupLsn {
    pub start: Option<String>,
    pub stop: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackupArchive {
    pub start: Option<String>,
    pub stop: Option<String>,
}

/// A `pgbackrest` command for `stanza`, with pgBackRest's own environment.
pub fn pgbackrest(stanza: &str) -> Command {
    let mut cmd = Command::new("pgbackrest");
    cmd.arg(format!("--stanza={stanza}")).stdin(Stdio::null());
    cmd
}

/// What is wrong with the server's WAL archiving now, if anything: a
/// failure newer than the last success in `pg_stat_archiver`
/// (archive_command failing). `Err` when the server cannot be asked.
pub fn archiving_failure(
    tools: &PgTools,
    target: &crate::target::Target,
) -> Result<Option<String>, String> {
    let rows = tools
        .query(
            target,
            "SELECT coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false), \
             coalesce(last_failed_wal, ''), failed_count, \
             coalesce(to_char(last_failed_time, 'YYYY-MM-DD HH24:MI:SS TZ'), ''), \
             coalesce(last_archived_wal, 'none'), \
             coalesce(to_char(last_archived_time, 'YYYY-MM-DD HH24:MI:SS TZ'), 'never') \
             FROM pg_stat_archiver",
        )
        .map_err(|e| e.into_error(target).to_string())?;
    let row = rows.first().ok_or("pg_stat_archiver returned no row")?;
    let field = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
    if field(0) != "t" {
        return Ok(None);
    }
    Ok(Some(format!(
        "archiving WAL segment {} has failed since {} ({} failures so far); the last segment archived was {} at {}",
        field(1),
        field(3),
        field(2),
        field(4),
        field(5)
    )))
}

/// What broken archiving on the servers of `points` (restore points'
/// sidecars) means, one paragraph per server that is failing now or
/// cannot be asked. Each server is asked once, through the database the
/// point was taken in, else `postgres` (that database may be the one a
/// guarded DROP DATABASE removed).
pub fn archiving_warnings<'a>(
    tools: &PgTools,
    points: impl IntoIterator<Item = &'a crate::backup::Metadata>,
) -> Vec<String> {
    let mut asked: Vec<(String, u16)> = Vec::new();
    let mut warnings = Vec::new();
    for meta in points {
        if meta.restore_point.is_none() {
            continue;
        }
        let server = (meta.host.clone(), meta.port);
        if asked.contains(&server) {
            continue;
        }
        asked.push(server);
        let ask = |db: &str| {
            archiving_failure(
                tools,
                &crate::target::Target::explicit(&meta.host, meta.port, &meta.user, db),
            )
        };
        // `postgres` only when the point's database is gone: a server that
        // cannot be reached is not asked twice (each waits for the timeout).
        let answer = ask(&meta.database).or_else(|e| {
            if e.contains("does not exist") {
                ask("postgres")
            } else {
                Err(e)
            }
        });
        let where_ = format!("{}:{}", meta.host, meta.port);
        match answer {
            Ok(None) => {}
            Ok(Some(why)) => warnings.push(format!(
                "WAL archiving on {where_} is broken now: {why}. Restore points taken before it broke stay restorable (each is checked against the repository), but new guarded operations on its pgBackRest databases fall back to pg_dump, or refuse where require_pitr is set, until archive_command works again; see the server log."
            )),
            Err(e) => warnings.push(format!(
                "cannot ask {where_} whether WAL archiving works: {e}"
            )),
        }
    }
    warnings
}

/// `pgbackrest info --output=json` for one stanza.
pub fn info(stanza: &str) -> Result<StanzaInfo, String> {
    let out = pgbackrest(stanza)
        .args(["--output=json", "info"])
        .output()
        .map_err(|e| format!("cannot run pgbackrest: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pgbackrest info for stanza \"{stanza}\" failed: {}",
            first_error_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    let mut stanzas: Vec<StanzaInfo> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("pgbackrest info gave unexpected JSON: {e}"))?;
    if stanzas.is_empty() {
        return Err(format!("pgbackrest knows no stanza \"{stanza}\""));
    }
    Ok(stanzas.swap_remove(0))
}

/// Whether the repository still holds what a restore to `point` needs: a
/// backup that ended before the point and every WAL segment from that
/// backup's start to the point's segment. `Err` says what is missing.
pub fn check_point(point: &RestorePoint) -> Result<String, String> {
    match state(point)? {
        PointState::Restorable { detail, .. } => Ok(detail),
        PointState::Expired(why) | PointState::Missing(why) => Err(why),
    }
}

/// [`assess`] against the repository as `pgbackrest info` shows it now;
/// `Err` when pgBackRest cannot be asked (then nothing is known).
pub fn state(point: &RestorePoint) -> Result<PointState, String> {
    let info = stanza_ok(&point.stanza)?;
    Ok(assess(&info, point))
}

/// `pgbackrest info` for `stanza`, which must report status ok.
pub fn stanza_ok(stanza: &str) -> Result<StanzaInfo, String> {
    let info = info(stanza)?;
    if info.status.code != 0 {
        return Err(format!(
            "pgbackrest info for stanza \"{stanza}\": {}",
            info.status.message
        ));
    }
    Ok(info)
}

/// The pure part of [`check_point`]: which backup a restore to `point`
/// would start from, or what is missing.
pub fn restorable(info: &StanzaInfo, point: &RestorePoint) -> Result<String, String> {
    match assess(info, point) {
        PointState::Restorable { detail, .. } => Ok(detail),
        PointState::Expired(why) | PointState::Missing(why) => Err(why),
    }
}

/// What `info` (one stanza's `pgbackrest info`) says about `point`.
pub fn assess(info: &StanzaInfo, point: &RestorePoint) -> PointState {
    let (Some(min), Some(max)) = (
        info.archive.iter().filter_map(|a| a.min.clone()).min(),
        info.archive.iter().filter_map(|a| a.max.clone()).max(),
    ) else {
        return PointState::Missing(format!("stanza \"{}\" holds no archived WAL", point.stanza));
    };
    if same_timeline_segment(&max, &point.wal_segment) < std::cmp::Ordering::Equal {
        return PointState::Missing(format!(
            "WAL segment {} is not in the repository (archived up to {max})",
            point.wal_segment
        ));
    }
    // Newest first: the closest base backup means the least replay.
    let base = info.backup.iter().rev().find(|b| {
        ended_before(b, point)
            && b.archive.start.as_deref().is_some_and(|start| {
                same_timeline_segment(start, &min) >= std::cmp::Ordering::Equal
            })
    });
    match base {
        Some(b) => PointState::Restorable {
            base: b.label.clone(),
            detail: format!(
                "restore point {} at {} (timeline {}): from pgBackRest backup {} (--set={}) and WAL {}..{}, both in the repository of stanza \"{}\"",
                point.name,
                point.lsn,
                point.timeline,
                b.label,
                b.label,
                b.archive.start.as_deref().unwrap_or("?"),
                point.wal_segment,
                point.stanza
            ),
        },
        None => PointState::Expired(format!(
            "WAL has expired: no backup in stanza \"{}\" from before restore point {} whose WAL is still archived (oldest archived segment {min})",
            point.stanza, point.name
        )),
    }
}

/// Whether backup `b` reached consistency before `point`: by LSN where
/// pgBackRest reports it (a backup that stopped in the point's segment but
/// after the point cannot replay to it), else by WAL segment.
fn ended_before(b: &BackupInfo, point: &RestorePoint) -> bool {
    let stop_lsn = b
        .lsn
        .as_ref()
        .and_then(|l| l.stop.as_deref())
        .and_then(parse_lsn);
    if let (Some(stop), Some(at)) = (stop_lsn, parse_lsn(&point.lsn)) {
        return stop <= at;
    }
    b.archive.stop.as_deref().is_some_and(|stop| {
        same_timeline_segment(stop, &point.wal_segment) <= std::cmp::Ordering::Equal
    })
}

/// `16/B374D848` as a number.
fn parse_lsn(lsn: &str) -> Option<u64> {
    let (high, low) = lsn.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Orders WAL segment names by position, ignoring the timeline (the first
/// 8 of their 24 hex digits): a later timeline continues the same WAL.
fn same_timeline_segment(a: &str, b: &str) -> std::cmp::Ordering {
    let position = |s: &str| s.get(8..).unwrap_or(s).to_owned();
    position(a).cmp(&position(b))
}

/// Creates the restore point and switches WAL, in one session; also
/// returns the archiver's failure count from before the switch.
fn create_point(
    tools: &PgTools,
    job: &Job<'_>,
    stanza: &str,
    name: &str,
) -> Result<(RestorePoint, u64), Error> {
    let sql = format!(
        "SELECT p.lsn, pg_walfile_name(p.lsn), c.timeline_id, \
         to_char(clock_timestamp(), 'YYYY-MM-DD\"T\"HH24:MI:SS.USOF'), \
         coalesce((SELECT setting FROM pg_settings WHERE name = 'data_directory'), ''), \
         (SELECT failed_count FROM pg_stat_archiver) \
         FROM (SELECT pg_create_restore_point({}) AS lsn) p, pg_control_checkpoint() c;\n\
         SELECT pg_switch_wal()",
        quote_literal(name)
    );
    let rows = tools.query(job.target, &sql).map_err(|e| {
        Error::BackupFailed(format!(
            "cannot create restore point {name}: {}",
            e.into_error(job.target)
        ))
    })?;
    let row = rows
        .first()
        .filter(|r| r.len() >= 4)
        .ok_or_else(|| Error::BackupFailed("pg_create_restore_point returned nothing".into()))?;
    let time = DateTime::parse_from_str(&format!("{}00", row[3]), "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_str(&row[3], "%Y-%m-%dT%H:%M:%S%.f%#z"))
        .map_err(|e| Error::BackupFailed(format!("restore point time {:?}: {e}", row[3])))?;
    let failures = row.get(5).and_then(|n| n.parse().ok()).unwrap_or(0);
    let point = RestorePoint {
        stanza: stanza.to_owned(),
        name: name.to_owned(),
        lsn: row[0].clone(),
        time,
        timeline: row[2].parse().unwrap_or(1),
        wal_segment: row[1].clone(),
        backup_label: String::new(),
        // pg_settings hides it from roles that may not read it.
        data_directory: row.get(4).filter(|d| !d.is_empty()).cloned(),
    };
    Ok((point, failures))
}

/// Waits until `pg_stat_archiver` reports `segment` (or a later one)
/// archived. The timeout is an error, and so is the archiver giving up on
/// `segment` (or a later one) before it: after [`ARCHIVER_RETRIES`] failed
/// attempts in a row (counted from `failures_before`, the archiver's
/// failure count before the WAL switch) the server waits about a minute
/// before the next, so waiting on would only end in the timeout. Without that segment the
/// restore point cannot be reached.
fn wait_archived(
    tools: &PgTools,
    job: &Job<'_>,
    segment: &str,
    failures_before: u64,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        let rows = tools
            .query(
                job.target,
                "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), failed_count FROM pg_stat_archiver",
            )
            .map_err(|e| e.into_error(job.target))?;
        let field = |i: usize| {
            rows.first()
                .and_then(|r| r.get(i))
                .cloned()
                .unwrap_or_default()
        };
        let (archived, failed) = (field(0), field(1));
        if !archived.is_empty() && archived.as_str() >= segment {
            return Ok(());
        }
        let failures: u64 = field(2).parse().unwrap_or(0);
        let failed_since = failures.saturating_sub(failures_before);
        let gave_up = failed_since >= ARCHIVER_RETRIES
            && is_segment_name(&failed)
            && failed.as_str() >= segment;
        if gave_up || Instant::now() >= deadline {
            let why = if gave_up {
                format!("archiving WAL segment {failed} failed {failed_since} times in a row")
            } else {
                format!(
                    "WAL segment {segment} was not archived within {} s",
                    timeout.as_secs()
                )
            };
            return Err(Error::BackupFailed(format!(
                "restore point not taken: {why} (holding the restore point: {segment}; last archived: {}, last failed: {}); check archive_command and the server log",
                if archived.is_empty() {
                    "none"
                } else {
                    &archived
                },
                if failed.is_empty() { "none" } else { &failed },
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// How many times in a row the server's archiver tries a segment before it
/// pauses for about a minute (PostgreSQL's `NUM_ARCHIVE_RETRIES`).
const ARCHIVER_RETRIES: u64 = 3;

/// A WAL segment's file name (24 hexadecimal digits), not a `.history` or
/// `.partial` file, which do not order against segments.
fn is_segment_name(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(segment: &str) -> RestorePoint {
        RestorePoint {
            stanza: "main".into(),
            name: "dbguard_x".into(),
            lsn: "0/3000090".into(),
            time: DateTime::parse_from_rfc3339("2026-01-01T00:00:00+00:00").unwrap(),
            timeline: 1,
            wal_segment: segment.into(),
            backup_label: "20260101-000000F".into(),
            data_directory: None,
        }
    }

    fn info(min: &str, max: &str, backups: &[(&str, &str, &str)]) -> StanzaInfo {
        StanzaInfo {
            archive: vec![ArchiveRange {
                min: Some(min.into()),
                max: Some(max.into()),
            }],
            backup: backups
                .iter()
                .map(|(label, start, stop)| BackupInfo {
                    backrest: None,
                    lsn: None,
                    label: (*label).into(),
                    archive: BackupArchive {
                        start: Some((*start).into()),
                        stop: Some((*stop).into()),
                    },
                })
                .collect(),
            status: StanzaStatus {
                code: 0,
                message: "ok".into(),
            },
        }
    }

    const S2: &str = "000000010000000000000002";
    const S3: &str = "000000010000000000000003";
    const S5: &str = "000000010000000000000005";
    const S7: &str = "000000010000000000000007";

    #[test]
    fn restore_point_names_fit_postgres_whatever_the_database_is_called() {
        let at = chrono::Local::now();
        let long = format!("backup_{}_20260101_000000_2", "d".repeat(63));
        let name = point_name(&long, &at);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("dbguard_"), "{name}");
        assert_ne!(name, point_name("backup_other_20260101_000000", &at));
    }

    #[test]
    fn a_point_with_its_base_backup_and_wal_is_restorable() {
        let found = restorable(&info(S2, S7, &[("F1", S2, S3)]), &point(S5)).unwrap();
        assert_eq!(
            found,
            format!(
                "restore point dbguard_x at 0/3000090 (timeline 1): from pgBackRest backup F1 (--set=F1) and WAL {S2}..{S5}, both in the repository of stanza \"main\""
            )
        );
    }

    #[test]
    fn a_point_whose_wal_is_not_archived_or_has_expired_is_not() {
        let missing = restorable(&info(S2, S3, &[("F1", S2, S3)]), &point(S5)).unwrap_err();
        assert!(missing.contains("not in the repository"), "{missing}");
        // The base backup from before the point is gone and the only one
        // left started after it.
        let expired = restorable(&info(S5, S7, &[("F2", S7, S7)]), &point(S5)).unwrap_err();
        assert!(expired.contains("WAL has expired"), "{expired}");
        let no_wal = restorable(
            &StanzaInfo {
                archive: Vec::new(),
                ..info(S2, S7, &[])
            },
            &point(S5),
        )
        .unwrap_err();
        assert!(no_wal.contains("no archived WAL"), "{no_wal}");
    }

    #[test]
    fn the_base_backup_is_the_newest_that_ended_before_the_point_not_the_newest() {
        // A full backup taken after the point: restoring it could never
        // reach the point, so pgBackRest must be given the older one.
        let both = info(S2, S7, &[("F1", S2, S3), ("F2", S7, S7)]);
        match assess(&both, &point(S5)) {
            PointState::Restorable { base, .. } => assert_eq!(base, "F1"),
            other => panic!("{other:?}"),
        }
        // Stopped in the point's segment, but after the point.
        let mut late = info(S2, S7, &[("F1", S2, S3), ("F2", S5, S5)]);
        late.backup[1].lsn = Some(BackupLsn {
            start: Some("0/5000028".into()),
            stop: Some("0/5000100".into()),
        });
        let at = RestorePoint {
            lsn: "0/5000090".into(),
            ..point(S5)
        };
        match assess(&late, &at) {
            PointState::Restorable { base, .. } => assert_eq!(base, "F1"),
            other => panic!("{other:?}"),
        }
        late.backup[1].lsn.as_mut().unwrap().stop = Some("0/5000080".into());
        match assess(&late, &at) {
            PointState::Restorable { base, .. } => assert_eq!(base, "F2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expiry_is_told_apart_from_wal_that_never_reached_the_repository() {
        assert!(matches!(
            assess(&info(S5, S7, &[("F2", S7, S7)]), &point(S5)),
            PointState::Expired(_)
        ));
        assert!(matches!(
            assess(&info(S2, S3, &[("F1", S2, S3)]), &point(S5)),
            PointState::Missing(_)
        ));
    }

    #[test]
    fn a_later_timeline_continues_the_same_wal() {
        let later = "000000020000000000000007";
        assert!(restorable(&info(S2, later, &[("F1", S2, S3)]), &point(S5)).is_ok());
    }
}
