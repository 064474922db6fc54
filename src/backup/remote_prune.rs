//! Retention on a remote: the same rules as the local directory
//! (`retention::plan`, per database and server), with the remote's own
//! policy (`[[remote]]` keep_* keys), applied to the copies the remote
//! holds completely. The newest complete copy of each database is never
//! removed; every removal is printed by the caller and audited like a
//! local one.
//!
//! When the removed copy was the backup's last one (nothing local, no other
//! remote holds it), the drill record kept for it in the local store goes
//! too: `list` must never show a drill of a backup that no longer exists.
//!
//! A copy is removed sidecar first, so a removal interrupted half-way
//! leaves data without a sidecar, which no listing offers, never a sidecar
//! promising data that is gone.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use super::copies::{self, Copies, RemoteBackup};
use super::dest::s3::S3;
use super::drilled;
use super::retention::{self, Decision, Outcome, Reason, Removal, Series, SeriesPlan};
use super::{Metadata, Store};
use crate::Error;
use crate::config::{Config, RemoteSection};

/// Plans (and unless `dry_run`, carries out) retention on `remote`.
pub fn prune_remote(
    config: &Config,
    store: &Store,
    remote: &RemoteSection,
    dry_run: bool,
) -> Result<Outcome, Error> {
    let policy = remote.retention().map_err(Error::Usage)?;
    let s3 = copies::open_remote(config, remote)?;
    let mut outcome = Outcome::default();
    let mut series: BTreeMap<Series, Vec<(RemoteBackup, Metadata)>> = BTreeMap::new();
    for backup in copies::remote_backups(&s3)? {
        let meta = s3.download_small(&backup.sidecar_file).and_then(|bytes| {
            serde_json::from_slice::<Metadata>(&bytes)
                .map_err(|e| Error::BackupFailed(format!("metadata is not valid: {e}")))
        });
        match meta {
            Ok(meta) => series
                .entry(Series {
                    database: meta.database.clone(),
                    host: meta.host.clone(),
                    port: meta.port,
                })
                .or_default()
                .push((backup, meta)),
            Err(e) => outcome
                .unmanaged
                .push((backup.id.clone(), format!("left alone: {e}"))),
        }
    }
    let now = Utc::now();
    for (key, backups) in series {
        let times: Vec<(String, chrono::DateTime<Utc>)> = backups
            .iter()
            .map(|(b, m)| (b.id.clone(), m.created_at.with_timezone(&Utc)))
            .collect();
        // The newest complete copy of each database stays, whatever the
        // rules; only when none is complete does the newest stand in.
        let newest_of = |complete_only: bool| {
            backups
                .iter()
                .filter(|(b, m)| !complete_only || is_complete(b, m))
                .map(|(b, m)| (b.id.clone(), m.created_at.with_timezone(&Utc)))
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
                .map(|(id, _)| (id, Reason::NewestVerified))
        };
        let newest = newest_of(true).or_else(|| newest_of(false));
        let plan = retention::plan(&times, &policy, now, &chrono::Local, newest.as_slice());
        for decision in plan.removed() {
            let Some((backup, meta)) = backups.iter().find(|(b, _)| b.id == decision.id) else {
                continue;
            };
            if dry_run {
                continue;
            }
            match remove(&s3, backup) {
                Ok(()) => {
                    let _ = Copies::forget(store.dir(), &backup.id, &remote.name);
                    forget_drill_of_vanished(config, store, remote, &backup.id);
                    outcome.removed.push(Removal {
                        id: backup.id.clone(),
                        path: describe_location(&s3, backup).into(),
                        metadata: Some(meta.clone()),
                        why: why(remote, decision),
                    });
                }
                Err(e) => outcome.failures.push((backup.id.clone(), e.to_string())),
            }
        }
        outcome.series.push(SeriesPlan { series: key, plan });
    }
    Ok(outcome)
}

/// Whether the remote holds every byte the sidecar describes, each with its
/// checksum object: a directory copy missing one of its manifest's files
/// cannot be restored, so it is not the copy that must stay.
fn is_complete(backup: &RemoteBackup, meta: &Metadata) -> bool {
    if meta.restore_point.is_some() {
        return true;
    }
    backup.data_file.is_some()
        && (backup.dir_files.is_empty()
            || meta
                .files
                .iter()
                .all(|file| backup.dir_files.contains(&file.name)))
}

fn remove(s3: &S3, backup: &RemoteBackup) -> Result<(), Error> {
    s3.remove(&backup.sidecar_file)?;
    match &backup.data_file {
        Some(data) if backup.dir_files.is_empty() => s3.remove(data)?,
        Some(dir) => {
            for file in &backup.dir_files {
                s3.remove(&format!("{dir}/{file}"))?;
            }
        }
        None => {}
    }
    Ok(())
}

/// Removes the local drill record of `id` when no copy of it remains: none
/// in the store, none on another remote. A remote that cannot be asked
/// might hold one, so the record then stays (a stale record is harmless;
/// a missing one for an existing backup hides its last drill).
fn forget_drill_of_vanished(config: &Config, store: &Store, pruned: &RemoteSection, id: &str) {
    let local = store
        .entries()
        .map(|entries| entries.iter().any(|e| e.id == id));
    if !matches!(local, Ok(false)) {
        return;
    }
    for other in config.file.remotes.iter().filter(|r| r.name != pruned.name) {
        let held = copies::open_remote(config, other)
            .and_then(|s3| copies::remote_backups(&s3))
            .map(|found| found.iter().any(|b| b.id == id));
        if !matches!(held, Ok(false)) {
            return;
        }
    }
    let _ = drilled::remove(store.dir(), id);
}

fn describe_location(s3: &S3, backup: &RemoteBackup) -> String {
    format!(
        "{}:{}",
        s3.name(),
        backup.data_file.as_deref().unwrap_or(&backup.sidecar_file)
    )
}

fn why(remote: &RemoteSection, decision: &Decision) -> String {
    let taken = chrono::Local
        .from_utc_datetime(&decision.time.naive_utc())
        .format("%Y-%m-%d %H:%M");
    format!(
        "remote {} retention: no rule keeps this copy (taken {taken})",
        remote.name
    )
}
