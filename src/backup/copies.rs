//! Where the copies of each backup are: one small JSON file per backup,
//! `<id>.copies.json` beside its sidecar, replaced atomically on every
//! change. The sidecar is written once (invariant 4) and never rewritten, so
//! what changes after a backup is published lives here.
//!
//! A remote is recorded as holding a copy only after the copy was confirmed
//! (`dest::s3`); the last failure per remote is kept too, so `list` and
//! `sync` can say what is missing and why.
//!
//! [`copy_to_remotes`] is the one place that copies a published backup to
//! every configured remote and records the outcome: used by `dbguard
//! backup`, the detached `dbguard sync --backup ID` a guard starts, and
//! `dbguard sync`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::dest::s3::S3;
use super::dest::{Destination, Published};
use super::durable;
use super::store::Entry;
use crate::Error;
use crate::config::{Config, RemoteSection};

/// The file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copies {
    #[serde(default)]
    pub copies: Vec<CopyRecord>,
    #[serde(default)]
    pub failures: Vec<CopyFailure>,
}

/// One confirmed copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRecord {
    pub remote: String,
    /// The data object's URL (the sidecar's for a restore point).
    pub location: String,
    pub encrypted: bool,
    pub copied_at: DateTime<FixedOffset>,
}

/// The last failed attempt at copying to one remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFailure {
    pub remote: String,
    pub error: String,
    pub at: DateTime<FixedOffset>,
}

/// The copies file of backup `id` in `dir`.
pub fn path_for(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.copies.json"))
}

impl Copies {
    /// What is recorded for `id`; nothing recorded is an empty record. A
    /// file that does not parse counts as no copies (`sync` then copies
    /// again), never as an error that hides the backup.
    pub fn read(dir: &Path, id: &str) -> Copies {
        fs::read(path_for(dir, id))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn has(&self, remote: &str) -> bool {
        self.copies.iter().any(|c| c.remote == remote)
    }

    fn write(&self, dir: &Path, id: &str) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        durable::replace(&path_for(dir, id), &json)
    }

    /// Records a confirmed copy on `remote` (replacing an earlier record and
    /// clearing its failure).
    pub fn record_copy(dir: &Path, id: &str, record: CopyRecord) -> io::Result<()> {
        let mut copies = Copies::read(dir, id);
        copies.copies.retain(|c| c.remote != record.remote);
        copies.failures.retain(|f| f.remote != record.remote);
        copies.copies.push(record);
        copies.write(dir, id)
    }

    /// Records a failed attempt; an earlier confirmed copy stays recorded.
    pub fn record_failure(dir: &Path, id: &str, failure: CopyFailure) -> io::Result<()> {
        let mut copies = Copies::read(dir, id);
        copies.failures.retain(|f| f.remote != failure.remote);
        copies.failures.push(failure);
        copies.write(dir, id)
    }

    /// Forgets the copy on `remote` (removed by retention).
    pub fn forget(dir: &Path, id: &str, remote: &str) -> io::Result<()> {
        let mut copies = Copies::read(dir, id);
        copies.copies.retain(|c| c.remote != remote);
        if copies == Copies::default() {
            return match fs::remove_file(path_for(dir, id)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        copies.write(dir, id)
    }
}

/// Connects to a configured remote.
pub fn open_remote(config: &Config, remote: &RemoteSection) -> Result<S3, Error> {
    S3::open(remote, config.key_file(remote).as_deref())
}

/// One backup a remote holds completely (its sidecar is there, and the
/// sidecar goes last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBackup {
    pub id: String,
    /// The data file's local name (a directory backup's directory name);
    /// `None` for a restore point.
    pub data_file: Option<String>,
    pub sidecar_file: String,
    /// A directory backup's files on the remote, by name inside it; empty
    /// for any other backup.
    pub dir_files: Vec<String>,
}

/// Remote backups as store entries with nothing local, for id resolution.
pub fn as_entries(found: &[RemoteBackup]) -> Vec<Entry> {
    found
        .iter()
        .map(|b| Entry {
            id: b.id.clone(),
            data: None,
            sidecar: None,
            metadata: None,
        })
        .collect()
}

/// The complete backups on a remote, in no particular order.
pub fn remote_backups(s3: &S3) -> Result<Vec<RemoteBackup>, Error> {
    let files = s3.files()?;
    let mut found = Vec::new();
    for sidecar in files.iter().filter(|f| f.file_name.ends_with(".json")) {
        let Some(id) = sidecar.file_name.strip_suffix(".json") else {
            continue;
        };
        let data_file = files
            .iter()
            .map(|f| f.file_name.as_str())
            .find(|name| {
                name.strip_prefix(id)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|ext| super::Format::from_extension(ext).is_some())
            })
            .map(str::to_owned);
        let dir_name = format!("{id}.{}", super::Format::Directory.extension());
        let dir_files: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name.strip_prefix(&format!("{dir_name}/")))
            .map(str::to_owned)
            .collect();
        let data_file = data_file.or_else(|| (!dir_files.is_empty()).then_some(dir_name));
        found.push(RemoteBackup {
            id: id.to_owned(),
            data_file,
            sidecar_file: sidecar.file_name.clone(),
            dir_files,
        });
    }
    Ok(found)
}

/// Downloads the files of remote directory backup `backup` into `to` (or
/// only reads them, for `None`), each checked against its entry in the
/// manifest of `meta`, the manifest against the backup's checksum; returns
/// the bytes read. A file missing on the remote, or one that does not match,
/// is an error naming it.
pub fn download_dir(
    s3: &S3,
    backup: &RemoteBackup,
    meta: &super::Metadata,
    to: Option<&Path>,
) -> Result<u64, Error> {
    let dir_name = backup.data_file.as_deref().unwrap_or_default();
    let damaged = |why: String| Error::BackupFailed(format!("remote {}: {why}", s3.name()));
    if meta.files.is_empty() || super::sink::manifest_sha256(&meta.files) != meta.sha256 {
        return Err(damaged(format!(
            "the metadata of {} lists no files matching its checksum",
            backup.id
        )));
    }
    let mut total = 0;
    for file in &meta.files {
        if !backup.dir_files.contains(&file.name) {
            return Err(damaged(format!(
                "{dir_name}/{} is missing; the copy is incomplete",
                file.name
            )));
        }
        let remote_name = format!("{dir_name}/{}", file.name);
        let (sha256, size) = match to {
            Some(dir) => {
                let path = dir.join(&file.name);
                let mut out = fs::File::create(&path)
                    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
                s3.download(&remote_name, &mut out)?
            }
            None => s3.download(&remote_name, &mut io::sink())?,
        };
        if sha256 != file.sha256 || size != file.size {
            return Err(damaged(format!(
                "{remote_name} has {size} bytes with SHA-256 {sha256}; the metadata says {} bytes, {}",
                file.size, file.sha256
            )));
        }
        total += size;
    }
    Ok(total)
}

/// The outcome of copying one backup to one remote.
#[derive(Debug)]
pub struct Attempt {
    pub remote: String,
    pub result: Result<String, Error>,
}

/// Copies backup `entry` (in `dir`) to every remote that lacks it (all of
/// them with `again`), recording each outcome. Only complete, confirmed
/// copies are recorded as copies.
pub fn copy_to_remotes(config: &Config, dir: &Path, entry: &Entry) -> Vec<Attempt> {
    let recorded = Copies::read(dir, &entry.id);
    let mut attempts = Vec::new();
    for remote in &config.file.remotes {
        if recorded.has(&remote.name) {
            continue;
        }
        let result = copy_one(config, remote, entry);
        let now = chrono::Local::now().fixed_offset();
        let logged = match &result {
            Ok((location, encrypted)) => Copies::record_copy(
                dir,
                &entry.id,
                CopyRecord {
                    remote: remote.name.clone(),
                    location: location.clone(),
                    encrypted: *encrypted,
                    copied_at: now,
                },
            ),
            Err(e) => Copies::record_failure(
                dir,
                &entry.id,
                CopyFailure {
                    remote: remote.name.clone(),
                    error: e.to_string(),
                    at: now,
                },
            ),
        };
        let result = match (result, logged) {
            (Ok(_), Err(e)) => Err(Error::io(
                format!(
                    "the copy on {} is complete but could not be recorded",
                    remote.name
                ),
                e,
            )),
            (result, _) => result.map(|(location, _)| location),
        };
        attempts.push(Attempt {
            remote: remote.name.clone(),
            result,
        });
    }
    attempts
}

fn copy_one(
    config: &Config,
    remote: &RemoteSection,
    entry: &Entry,
) -> Result<(String, bool), Error> {
    let sidecar = entry.sidecar.as_deref().ok_or_else(|| {
        Error::BackupFailed(format!("{}: no metadata, so it is not copied", entry.id))
    })?;
    let meta = entry.meta().ok_or_else(|| {
        Error::BackupFailed(format!(
            "{}: its metadata does not parse, so it is not copied",
            entry.id
        ))
    })?;
    let s3 = open_remote(config, remote)?;
    let copied = s3.put(&Published {
        id: &entry.id,
        data: entry.data.as_deref(),
        sidecar,
        sha256: &meta.sha256,
    })?;
    Ok((copied.location, s3.is_encrypted()))
}

/// Makes backup `wanted` usable locally for a restore: when the local copy
/// is missing or does not verify (or `from` names a remote), downloads a
/// remote copy, in the remotes' order, checks it (stored checksum, then the
/// plaintext against the sidecar's SHA-256) and publishes it in the store
/// the way every backup is published. A corrupt local file is kept aside as
/// `<name>.corrupt`, never replaced silently. `latest` and `latest:DB` name
/// the newest backup wherever it is, so a newer one only a remote holds is
/// brought back too. Returns what was done, for the person; `None` when the
/// local copy was used.
pub fn bring_back(
    config: &Config,
    store: &super::Store,
    wanted: &str,
    from: Option<&str>,
) -> Result<Option<String>, Error> {
    let remotes: Vec<&RemoteSection> = match from {
        Some(name) => vec![config.remote(name)?],
        None => config.file.remotes.iter().collect(),
    };
    let found = store.find(wanted);
    let mut remote_id = None;
    // An exact id wins over a prefix of a longer one wherever each is: `X`
    // only a remote holds is not the local `X_2` (nor ambiguous with it).
    let exact = |id: &str| id == wanted.trim() || super::catalog::short_id(id) == wanted.trim();
    if latest_of(wanted).is_none() && !matches!(&found, Ok(None)) {
        let local_is_exact = matches!(&found, Ok(Some(entry)) if exact(&entry.id));
        if !local_is_exact {
            remote_id = remotes.iter().find_map(|remote| {
                let listed = open_remote(config, remote).and_then(|s3| remote_backups(&s3));
                listed.ok()?.into_iter().map(|b| b.id).find(|id| exact(id))
            });
        }
    }
    let mut local = if remote_id.is_some() { None } else { found? };
    let mut notes = Vec::new();
    if let Some(database) = latest_of(wanted) {
        let newest = newest_remote_only(config, store, &remotes, database, local.as_ref());
        notes.extend(newest.unreadable);
        if let Some(id) = newest.id {
            local = None;
            remote_id = Some(id);
        }
    }
    let local_problem = match &local {
        None => Some("there is no local copy".to_owned()),
        Some(entry) => {
            let verdict = store.verify(entry);
            (!verdict.status.is_ok()).then(|| {
                format!(
                    "the local copy is {} ({})",
                    verdict.status.label(),
                    verdict.status.detail().unwrap_or("no metadata")
                )
            })
        }
    };
    let local_ok = local.is_some() && local_problem.is_none();
    let Some(why) = local_problem.or_else(|| from.map(|f| format!("--from {f}"))) else {
        return Ok((!notes.is_empty()).then(|| notes.join("\n")));
    };
    if remotes.is_empty() {
        return Ok(None);
    }
    let known_id = local.as_ref().map(|e| e.id.clone()).or(remote_id);
    let mut tried = Vec::new();
    for remote in remotes {
        match fetch_from(config, store, remote, wanted, known_id.as_deref(), local_ok) {
            Ok(id) => {
                notes.push(format!(
                    "{why}: restoring {id} from remote {} (downloaded and verified)",
                    remote.name
                ));
                return Ok(Some(notes.join("\n")));
            }
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(Error::Failed {
        message: format!(
            "{why}, and no remote copy could be used: {}",
            tried.join("; ")
        ),
        code: crate::error::exit::FOUND,
    })
}

/// `Some(database filter)` when `wanted` is `latest` (`Some(None)`) or
/// `latest:DB` (`Some(Some(DB))`).
fn latest_of(wanted: &str) -> Option<Option<&str>> {
    let wanted = wanted.trim();
    if wanted == "latest" {
        return Some(None);
    }
    wanted.strip_prefix("latest:").map(Some)
}

/// The newest backup of `database` (any, for `None`) that only a remote
/// holds and that is newer than `local`, and the remotes that could not
/// be asked (one line each: `latest` is then resolved among the others).
#[derive(Default)]
struct NewestRemote {
    id: Option<String>,
    unreadable: Vec<String>,
}

fn newest_remote_only(
    config: &Config,
    store: &super::Store,
    remotes: &[&RemoteSection],
    database: Option<&str>,
    local: Option<&Entry>,
) -> NewestRemote {
    use super::store::BackupId;
    let mut newest = NewestRemote::default();
    let local_ids: std::collections::HashSet<String> = store
        .entries()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.data.is_some() && e.meta().is_some())
        .map(|e| e.id)
        .collect();
    // The database as it appears in ids, to skip other databases' backups
    // without reading their sidecars.
    let id_database = database.and_then(|db| {
        BackupId::parse(BackupId::new(db, chrono::NaiveDateTime::default(), 1).as_str())
            .map(|(name, _, _)| name)
    });
    // Compared by name (start time, then sequence), the one order every
    // backup has whether or not its sidecar has been read.
    let order = |id: &str| BackupId::parse(id).map(|(_, time, n)| (time, n));
    let after = local.and_then(|e| order(&e.id));
    let mut listings = Vec::new();
    for remote in remotes {
        match open_remote(config, remote).and_then(|s3| {
            let found = remote_backups(&s3)?;
            Ok(S3Listing { s3, found })
        }) {
            Ok(listing) => listings.push(listing),
            Err(e) => newest.unreadable.push(format!(
                "dbguard: {e}; `latest` is looked for without remote {}",
                remote.name
            )),
        }
    }
    let mut candidates: Vec<(Entry, &S3Listing)> = Vec::new();
    for listing in &listings {
        for entry in as_entries(&listing.found) {
            let parsed = BackupId::parse(&entry.id);
            let of_database = match (&id_database, &parsed) {
                (Some(want), Some((db, _, _))) => db == want,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let newer = match (after, order(&entry.id)) {
                (Some(after), Some(this)) => this > after,
                (None, _) => true,
                (Some(_), None) => false,
            };
            if of_database && newer && !local_ids.contains(&entry.id) {
                candidates.push((entry, listing));
            }
        }
    }
    candidates.sort_by(|(a, _), (b, _)| {
        order(&b.id)
            .cmp(&order(&a.id))
            .then_with(|| b.id.cmp(&a.id))
    });
    for (entry, listing) in candidates {
        let Some(backup) = listing.found.iter().find(|b| b.id == entry.id) else {
            continue;
        };
        let meta = listing
            .s3
            .download_small(&backup.sidecar_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<super::Metadata>(&bytes).ok());
        let Some(meta) = meta else {
            continue;
        };
        if database.is_none_or(|db| meta.database == db) && backup.data_file.is_some() {
            newest.id = Some(entry.id);
            break;
        }
    }
    newest
}

/// One remote's complete backups, listed once.
struct S3Listing {
    s3: S3,
    found: Vec<RemoteBackup>,
}

fn fetch_from(
    config: &Config,
    store: &super::Store,
    remote: &RemoteSection,
    wanted: &str,
    known_id: Option<&str>,
    local_ok: bool,
) -> Result<String, Error> {
    let s3 = open_remote(config, remote)?;
    let found = remote_backups(&s3)?;
    let candidates = as_entries(&found);
    let id = match known_id {
        Some(id) => id.to_owned(),
        None => super::catalog::resolve(&candidates, wanted)?
            .map(|e| e.id)
            .ok_or_else(|| Error::Usage(format!("remote {}: no backup {wanted}", remote.name)))?,
    };
    let backup = found
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| Error::Usage(format!("remote {}: no copy of {id}", remote.name)))?;
    let data_file = backup
        .data_file
        .as_deref()
        .ok_or_else(|| Error::Usage(format!("remote {}: {id} has no data file", remote.name)))?;
    let sidecar_json = s3.download_small(&backup.sidecar_file)?;
    let meta: super::Metadata = serde_json::from_slice(&sidecar_json).map_err(|e| {
        Error::BackupFailed(format!(
            "remote {}: metadata of {id} is not valid: {e}",
            remote.name
        ))
    })?;
    let dir = store.dir();
    store.prepare(true)?;
    let local_dir = super::dest::local::Local::new(dir);
    if !backup.dir_files.is_empty() {
        return fetch_dir(
            store,
            &local_dir,
            backup,
            &meta,
            &sidecar_json,
            local_ok,
            &s3,
        );
    }
    let mut tmp = local_dir.stage_file()?;
    let (sha256, _) = s3.download(data_file, tmp.as_file_mut())?;
    if sha256 != meta.sha256 {
        return Err(Error::BackupFailed(format!(
            "remote {}: {data_file} has SHA-256 {sha256}, but its metadata says {}; not used",
            remote.name, meta.sha256
        )));
    }
    let final_path = dir.join(data_file);
    if local_ok {
        // `--from` with a good local copy: the remote one verified against
        // the same checksum, so the bytes are the same; keep the local file.
        return Ok(id);
    }
    // The damaged local file, if any, is kept for inspection, out of the
    // way of the good copy.
    if final_path.exists() {
        let aside = dir.join(format!("{data_file}.corrupt"));
        std::fs::rename(&final_path, &aside).map_err(|e| {
            Error::io(
                format!("cannot move the damaged {} aside", final_path.display()),
                e,
            )
        })?;
    }
    let (_, path, _) =
        local_dir.publish_file(tmp, &super::sink::Naming::Exact(data_file.to_owned()), "")?;
    let sidecar = dir.join(&backup.sidecar_file);
    if !sidecar.exists() {
        super::sink::write_sidecar(&sidecar, &sidecar_json, Some(path.as_path()))?;
    }
    Ok(id)
}

/// `fetch_from` for a directory backup: every file downloaded into a
/// staged directory and checked, then sealed (0600, fsync'd), its manifest
/// checked once more, and the directory published like a local one.
fn fetch_dir(
    store: &super::Store,
    local_dir: &super::dest::local::Local,
    backup: &RemoteBackup,
    meta: &super::Metadata,
    sidecar_json: &[u8],
    local_ok: bool,
    s3: &S3,
) -> Result<String, Error> {
    let dir = store.dir();
    let dir_name = backup.data_file.clone().unwrap_or_default();
    let (staged, _held) = local_dir.stage_dir()?;
    let out = staged.path().join("data");
    let write_error = |e: io::Error| Error::io(format!("cannot write into {}", dir.display()), e);
    fs::create_dir(&out).map_err(write_error)?;
    download_dir(s3, backup, meta, Some(&out))?;
    let (_, manifest, _) = super::sink::hash_directory(&out, true).map_err(write_error)?;
    if manifest != meta.sha256 {
        return Err(Error::BackupFailed(format!(
            "remote {}: {dir_name} downloaded with manifest SHA-256 {manifest}, but its metadata says {}; not used",
            s3.name(),
            meta.sha256
        )));
    }
    if local_ok {
        return Ok(backup.id.clone());
    }
    let final_path = dir.join(&dir_name);
    if final_path.exists() {
        let aside = dir.join(format!("{dir_name}.corrupt"));
        fs::rename(&final_path, &aside).map_err(|e| {
            Error::io(
                format!("cannot move the damaged {} aside", final_path.display()),
                e,
            )
        })?;
    }
    let (_, path, _) =
        local_dir.publish_dir(&out, &super::sink::Naming::Exact(dir_name.clone()), "")?;
    let sidecar = dir.join(&backup.sidecar_file);
    if !sidecar.exists() {
        super::sink::write_sidecar(&sidecar, sidecar_json, Some(path.as_path()))?;
    }
    Ok(backup.id.clone())
}

/// Starts `dbguard sync --backup ID --quiet` in its own session, detached
/// from the terminal and from the caller, which does not wait for it.
pub fn spawn_detached(id: &str) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["sync", "--quiet", "--backup", id])
        .env(crate::env::ARGV0, "dbguard")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the copy must outlive a
    // terminal that closes and must not receive the guarded tool's signals.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    // Not waited for: reaped by init once the caller execs or exits.
    cmd.spawn().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn copies_and_failures_are_recorded_per_remote_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let id = "backup_app_20260101_000000";
        assert_eq!(Copies::read(dir.path(), id), Copies::default());
        Copies::record_failure(
            dir.path(),
            id,
            CopyFailure {
                remote: "offsite".into(),
                error: "cannot reach".into(),
                at: at("2026-01-01T00:00:00Z"),
            },
        )
        .unwrap();
        assert!(!Copies::read(dir.path(), id).has("offsite"));
        Copies::record_copy(
            dir.path(),
            id,
            CopyRecord {
                remote: "offsite".into(),
                location: "s3://b/p/x.sql".into(),
                encrypted: true,
                copied_at: at("2026-01-01T00:01:00Z"),
            },
        )
        .unwrap();
        let copies = Copies::read(dir.path(), id);
        assert!(
            copies.has("offsite") && copies.failures.is_empty(),
            "{copies:?}"
        );
        Copies::forget(dir.path(), id, "offsite").unwrap();
        assert!(!path_for(dir.path(), id).exists());
    }
}
