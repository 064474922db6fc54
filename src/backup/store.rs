//! The backup directory as a collection: backup ids, listing, checking
//! each backup against its metadata, removing, and the verification
//! journal that remembers when each backup last proved good.
//!
//! A backup is the pair `<id>.<ext>` + `<id>.json`. Anything else in the
//! directory (temporary `.tmp-*` files of a backup in progress, the lock,
//! the journal) is not a backup and is never listed.
//!
//! Ids are unique across formats and processes: a writer holds its id (see
//! `partial::reserve`) from before its data file gets the final name until
//! the sidecar is written, and an id is free only when no file of any
//! format has it. The same hold tells a data file whose writer died at the
//! rename (an orphan, removed by prune) from one whose sidecar is on its way.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};
use serde::{Deserialize, Serialize};

use super::metadata::Metadata;
use super::partial::{self, Reservation};
use super::sink::{hash_directory, hash_reader};
use super::{Format, durable};
use crate::Error;

/// The journal of verification results, one JSON object per line.
pub const JOURNAL: &str = ".dbguard-verify.jsonl";

/// Timestamp layout inside backup names.
const STAMP: &str = "%Y%m%d_%H%M%S";

/// A backup's id: `backup_<database>_<YYYYmmdd_HHMMSS>[_<n>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupId(String);

impl BackupId {
    /// The id for a backup of `database` started at `time` (local time);
    /// `n` > 1 only when that second already has a backup.
    pub fn new(database: &str, time: NaiveDateTime, n: u32) -> BackupId {
        let safe: String = database
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut id = format!("backup_{safe}_{}", time.format(STAMP));
        if n > 1 {
            id.push_str(&format!("_{n}"));
        }
        BackupId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The database part, timestamp and sequence number of an id, if it
    /// follows the naming scheme.
    pub fn parse(id: &str) -> Option<(String, NaiveDateTime, u32)> {
        let rest = id.strip_prefix("backup_")?;
        let try_stamp = |s: &str| -> Option<(String, NaiveDateTime)> {
            if s.len() < 16 || !s.is_char_boundary(s.len() - 16) {
                return None;
            }
            let (db, stamp) = s.split_at(s.len() - 16);
            let stamp = stamp.strip_prefix('_')?;
            let time = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
            (!db.is_empty()).then(|| (db.to_owned(), time))
        };
        if let Some((db, time)) = try_stamp(rest) {
            return Some((db, time, 1));
        }
        let (head, n) = rest.rsplit_once('_')?;
        let n: u32 = n.parse().ok().filter(|n| *n > 1)?;
        let (db, time) = try_stamp(head)?;
        Some((db, time, n))
    }
}

impl std::fmt::Display for BackupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One backup as found on disk: its data, its metadata, either may be missing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub data: Option<PathBuf>,
    pub sidecar: Option<PathBuf>,
    /// `None`: no sidecar; `Some(Err)`: a sidecar that does not parse.
    pub metadata: Option<Result<Metadata, String>>,
}

impl Entry {
    pub fn meta(&self) -> Option<&Metadata> {
        self.metadata.as_ref().and_then(|m| m.as_ref().ok())
    }

    /// When the backup was taken: the metadata's time, else the name's
    /// (read as local time).
    pub fn created(&self) -> Option<DateTime<FixedOffset>> {
        if let Some(m) = self.meta() {
            return Some(m.created_at);
        }
        let (_, naive, _) = BackupId::parse(&self.id)?;
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.fixed_offset())
    }

    pub fn format(&self) -> Option<Format> {
        self.meta().map(|m| m.format).or_else(|| {
            self.data
                .as_ref()
                .and_then(|p| p.extension())
                .and_then(|e| e.to_str())
                .and_then(Format::from_extension)
        })
    }

    fn sequence(&self) -> u32 {
        BackupId::parse(&self.id).map_or(0, |(_, _, n)| n)
    }
}

/// The result of checking one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Bytes differ from the checksum or size in the metadata.
    Corrupted(String),
    /// No (usable) metadata: the backup never finished.
    Incomplete(String),
    /// Metadata without data, or an id that does not exist.
    Missing(String),
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Corrupted(_) => "CORRUPTED",
            Status::Incomplete(_) => "INCOMPLETE",
            Status::Missing(_) => "MISSING",
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            Status::Ok => None,
            Status::Corrupted(d) | Status::Incomplete(d) | Status::Missing(d) => Some(d),
        }
    }

    pub fn is_ok(&self) -> bool {
        *self == Status::Ok
    }
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub id: String,
    pub status: Status,
    /// For a restore point found restorable: what a restore would start
    /// from (the pgBackRest backup, `--set`) and the WAL range it replays,
    /// both found in the repository. A DBA reads this instead of a byte
    /// count, since a restore point has no data file.
    pub restorable: Option<String>,
    pub bytes_read: u64,
    pub seconds: f64,
}

/// One line of the verification journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    pub id: String,
    pub at: DateTime<FixedOffset>,
    /// `OK`, `CORRUPTED`, ...
    pub status: String,
    /// `created` (proven complete while it was written) or `verify` (re-read).
    pub how: String,
}

impl VerifyOutcome {
    pub fn ok_at_creation(meta: &Metadata) -> VerifyOutcome {
        VerifyOutcome {
            id: meta.id.clone(),
            at: Local::now().fixed_offset(),
            status: "OK".into(),
            how: "created".into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }
}

/// A backup id this process holds while its files get their final names.
#[derive(Debug)]
pub struct ReservedId {
    pub id: BackupId,
    _hold: Reservation,
}

/// Why an orphaned data file was not removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanCheck {
    /// Removed (or, in a dry run, would be).
    Removable,
    /// Written less than a minute ago: its writer may still be at work.
    TooYoung,
    /// A living process holds its id: the sidecar is on its way.
    BeingWritten,
    /// It has a sidecar after all (written since it was listed).
    Complete,
}

/// A backup directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory if needed; with `private`, makes it 0700.
    pub fn prepare(&self, private: bool) -> Result<(), Error> {
        let fail = |e: io::Error| {
            Error::BackupFailed(format!(
                "cannot use backup directory {}: {e}",
                self.dir.display()
            ))
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(fail)?;
        if private {
            let mode = fs::metadata(&self.dir).map_err(fail)?.permissions().mode();
            if mode & 0o777 != 0o700 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Every backup in the directory, newest first. A directory that does
    /// not exist yet holds no backups.
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        let read = match fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot read backup directory {}", self.dir.display()),
                    e,
                ));
            }
        };
        let mut by_id: HashMap<String, Entry> = HashMap::new();
        for item in read.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            // `<id>.copies.json` records where copies are (`copies`),
            // `<id>.drill.json` the last restore drill (`drilled`); neither
            // is a sidecar.
            if !name.starts_with("backup_")
                || name.ends_with(".copies.json")
                || name.ends_with(super::drilled::SUFFIX)
            {
                continue;
            }
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            let is_sidecar = ext == "json";
            if !is_sidecar && Format::from_extension(ext).is_none() {
                continue;
            }
            let entry = by_id.entry(stem.to_owned()).or_insert_with(|| Entry {
                id: stem.to_owned(),
                data: None,
                sidecar: None,
                metadata: None,
            });
            if is_sidecar {
                entry.metadata = Some(Metadata::read(&item.path()));
                entry.sidecar = Some(item.path());
            } else {
                entry.data = Some(item.path());
            }
        }
        let mut entries: Vec<Entry> = by_id.into_values().collect();
        entries.sort_by(|a, b| {
            b.created()
                .cmp(&a.created())
                .then(b.sequence().cmp(&a.sequence()))
                .then(b.id.cmp(&a.id))
        });
        Ok(entries)
    }

    /// Claims the first free id for a backup of `database` started at
    /// `time`: no file of any format nor a sidecar has it, and no other
    /// process holds it. Two backups started in the same second, in any
    /// formats, get `_2`, `_3`, ... Hold the result until the sidecar is
    /// written.
    pub fn reserve_id(&self, database: &str, time: NaiveDateTime) -> io::Result<ReservedId> {
        for n in 1..10_000 {
            let id = BackupId::new(database, time, n);
            let Some(hold) = partial::reserve(&self.dir, id.as_str(), false)? else {
                continue;
            };
            // Checked while holding the id: whoever published files under
            // it held it too, so what is seen now cannot change under us.
            if self.id_in_use(id.as_str()) {
                continue;
            }
            return Ok(ReservedId { id, _hold: hold });
        }
        Err(io::Error::other("no free backup name for this second"))
    }

    fn id_in_use(&self, id: &str) -> bool {
        Format::ALL
            .iter()
            .map(|f| f.extension())
            .chain(["json"])
            .any(|ext| fs::symlink_metadata(self.dir.join(format!("{id}.{ext}"))).is_ok())
    }

    /// Whether `entry`, a data file without a sidecar, is the remains of a
    /// backup killed between its rename and its sidecar, and with `remove`
    /// removes it. It is, only when old enough and when its id can be
    /// claimed (no writer holds it); the sidecar is looked for again while
    /// the id is held, so a backup that just finished is never touched.
    pub fn check_orphan(&self, entry: &Entry, remove: bool) -> io::Result<OrphanCheck> {
        let Some(data) = entry.data.as_ref().filter(|_| entry.sidecar.is_none()) else {
            return Ok(OrphanCheck::Complete);
        };
        if !partial::old_enough(data) {
            return Ok(OrphanCheck::TooYoung);
        }
        let Some(_hold) = partial::reserve(&self.dir, &entry.id, true)? else {
            return Ok(OrphanCheck::BeingWritten);
        };
        if self.dir.join(format!("{}.json", entry.id)).exists() {
            return Ok(OrphanCheck::Complete);
        }
        if remove {
            if data.is_dir() {
                fs::remove_dir_all(data)?;
            } else {
                fs::remove_file(data)?;
            }
            durable::sync_dir(&self.dir)?;
        }
        Ok(OrphanCheck::Removable)
    }

    /// A backup by id, short id, file name, unique prefix, `latest` or
    /// `latest:DB` (see `catalog::resolve`); an ambiguous prefix is an error.
    pub fn find(&self, wanted: &str) -> Result<Option<Entry>, Error> {
        super::catalog::resolve(&self.entries()?, wanted)
    }

    /// Re-reads every byte of a backup and compares it with its metadata.
    pub fn verify(&self, entry: &Entry) -> Verdict {
        let clock = Instant::now();
        let (status, bytes_read, restorable) = check(entry);
        Verdict {
            id: entry.id.clone(),
            status,
            restorable,
            bytes_read,
            seconds: clock.elapsed().as_secs_f64(),
        }
    }

    /// Appends a result to the journal (one `write` per line, O_APPEND).
    pub fn record_verification(&self, id: &str, mut outcome: VerifyOutcome) -> io::Result<()> {
        outcome.id = id.to_owned();
        let mut line = serde_json::to_vec(&outcome).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode_private()
            .open(self.dir.join(JOURNAL))?;
        file.write_all(&line)
    }

    /// The latest journal entry per backup id.
    pub fn last_verifications(&self) -> HashMap<String, VerifyOutcome> {
        let mut last = HashMap::new();
        let Ok(file) = File::open(self.dir.join(JOURNAL)) else {
            return last;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if let Ok(outcome) = serde_json::from_str::<VerifyOutcome>(&line) {
                last.insert(outcome.id.clone(), outcome);
            }
        }
        last
    }

    /// Drops journal lines of backups that no longer exist.
    pub fn compact_journal(&self, keep: &[String]) -> io::Result<()> {
        let path = self.dir.join(JOURNAL);
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<VerifyOutcome>(line).is_ok_and(|o| keep.contains(&o.id))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if kept.len() != text.len() {
            durable::replace(&path, kept.as_bytes())?;
        }
        Ok(())
    }

    /// Removes a backup: the sidecar first, so a half-removed backup is
    /// never offered for restore.
    pub fn remove(&self, entry: &Entry) -> io::Result<()> {
        if let Some(sidecar) = &entry.sidecar {
            fs::remove_file(sidecar)?;
        }
        if let Some(data) = &entry.data {
            if data.is_dir() {
                fs::remove_dir_all(data)?;
            } else {
                fs::remove_file(data)?;
            }
        }
        // The last drill's record goes with the backup it describes, unless
        // a remote still holds a copy: `list` shows it with that copy, and
        // remote retention removes it with the last one.
        if super::copies::Copies::read(&self.dir, &entry.id)
            .copies
            .is_empty()
        {
            super::drilled::remove(&self.dir, &entry.id)?;
        }
        durable::sync_dir(&self.dir)
    }
}

/// `OpenOptions` with mode 0600 for new files.
trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

fn check(entry: &Entry) -> (Status, u64, Option<String>) {
    let (status, bytes_read) = match check_restore_point(entry) {
        Some(Ok(restorable)) => return (Status::Ok, 0, Some(restorable)),
        Some(Err(status)) => return (status, 0, None),
        None => check_data(entry),
    };
    (status, bytes_read, None)
}

/// A restore point has no data file: what must exist is its base backup
/// and WAL in the pgBackRest repository. `None` for any other backup.
fn check_restore_point(entry: &Entry) -> Option<Result<String, Status>> {
    let point = entry.meta()?.restore_point.as_ref()?;
    Some(
        super::engine::pgbackrest::check_point(point)
            .map_err(|why| Status::Missing(format!("restore point {}: {why}", point.name))),
    )
}

fn check_data(entry: &Entry) -> (Status, u64) {
    let meta = match &entry.metadata {
        None => {
            return (
                Status::Incomplete("no metadata: the backup never finished".into()),
                0,
            );
        }
        Some(Err(e)) => return (Status::Incomplete(format!("metadata unreadable: {e}")), 0),
        Some(Ok(meta)) => meta,
    };
    let Some(data) = &entry.data else {
        return (
            Status::Missing(format!("data file {} is missing", meta.file)),
            0,
        );
    };
    if meta.format == Format::Directory {
        return check_directory(data, meta);
    }
    let mut file = match File::open(data) {
        Ok(f) => f,
        Err(e) => {
            return (
                Status::Missing(format!("cannot open {}: {e}", data.display())),
                0,
            );
        }
    };
    let (sha256, size) = match hash_reader(&mut file) {
        Ok(x) => x,
        Err(e) => return (Status::Corrupted(format!("read error: {e}")), 0),
    };
    let status = if size != meta.size_bytes {
        Status::Corrupted(format!("size {size} bytes, expected {}", meta.size_bytes))
    } else if sha256 != meta.sha256 {
        Status::Corrupted("SHA-256 does not match the metadata".into())
    } else {
        Status::Ok
    };
    (status, size)
}

fn check_directory(dir: &Path, meta: &Metadata) -> (Status, u64) {
    let (files, sha256, size) = match hash_directory(dir, false) {
        Ok(x) => x,
        Err(e) => return (Status::Corrupted(format!("read error: {e}")), 0),
    };
    if sha256 == meta.sha256 && size == meta.size_bytes {
        return (Status::Ok, size);
    }
    let expected: HashMap<&str, &super::metadata::FileEntry> =
        meta.files.iter().map(|f| (f.name.as_str(), f)).collect();
    let found: HashMap<&str, &super::metadata::FileEntry> =
        files.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut problems = Vec::new();
    for (name, want) in &expected {
        match found.get(name) {
            None => problems.push(format!("{name} missing")),
            Some(got) if got.sha256 != want.sha256 || got.size != want.size => {
                problems.push(format!("{name} changed"))
            }
            Some(_) => {}
        }
    }
    for name in found.keys().filter(|n| !expected.contains_key(*n)) {
        problems.push(format!("{name} unexpected"));
    }
    problems.sort();
    if problems.is_empty() {
        problems.push("manifest SHA-256 does not match the metadata".into());
    }
    (Status::Corrupted(problems.join(", ")), size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 12)
            .and_then(|d| d.and_hms_opt(h, m, s))
            .unwrap()
    }

    #[test]
    fn ids_follow_the_contract_and_parse_back() {
        let id = BackupId::new("stoflow_db", at(14, 30, 0), 1);
        assert_eq!(id.as_str(), "backup_stoflow_db_20260112_143000");
        assert_eq!(
            BackupId::parse(id.as_str()),
            Some(("stoflow_db".into(), at(14, 30, 0), 1))
        );
        let id = BackupId::new("shop_2", at(1, 2, 3), 3);
        assert_eq!(id.as_str(), "backup_shop_2_20260112_010203_3");
        assert_eq!(
            BackupId::parse(id.as_str()),
            Some(("shop_2".into(), at(1, 2, 3), 3))
        );
        assert_eq!(
            BackupId::new("my db/ü", at(0, 0, 0), 1).as_str(),
            "backup_my_db___20260112_000000"
        );
        for bad in [
            "backup_20260112_143000",
            "backup_x_2026011_143000",
            "other",
            "backup_x_20260112_143000_1",
        ] {
            assert_eq!(BackupId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn listing_pairs_files_and_ignores_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "backup_a_20260101_000000.sql",
            "backup_a_20260102_000000.sql",
            "backup_a_20260102_000000_2.dump",
            ".tmp-backup_x.partial",
            JOURNAL,
            "notes.txt",
            "backup_a_20260103_000000.json",
            "backup_a_20260101_000000.drill.json",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        let store = Store::new(dir.path());
        let ids: Vec<String> = store.entries().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(
            ids,
            [
                "backup_a_20260103_000000",
                "backup_a_20260102_000000_2",
                "backup_a_20260102_000000",
                "backup_a_20260101_000000"
            ]
        );
        let entries = store.entries().unwrap();
        assert!(matches!(entries[0].metadata, Some(Err(_))));
        assert_eq!(store.verify(&entries[0]).status.label(), "INCOMPLETE");
        assert_eq!(store.verify(&entries[3]).status.label(), "INCOMPLETE");
        let found = store.find("backup_a_20260101_000000.sql").unwrap().unwrap();
        assert_eq!(found.id, "backup_a_20260101_000000");
    }

    /// Regression: pruning the local copy of a backup that a remote still
    /// holds removed the record of its last drill, so `list` showed the
    /// remote copy as never drilled.
    #[test]
    fn removing_a_backup_keeps_its_drill_record_while_a_remote_holds_a_copy() {
        use crate::backup::copies::{Copies, CopyRecord};
        use crate::backup::drilled::{Drilled, path_for};

        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let drilled = Drilled {
            at: "2026-03-01T07:00:00Z".parse().unwrap(),
            ok: true,
            detail: "2 tables".into(),
            table: None,
            from: None,
        };
        for (id, remote) in [
            ("backup_a_20260101_000000", Some("offsite")),
            ("backup_a_20260102_000000", None),
        ] {
            fs::write(dir.path().join(format!("{id}.sql")), "x").unwrap();
            drilled.write(dir.path(), id).unwrap();
            if let Some(remote) = remote {
                let record = CopyRecord {
                    remote: remote.into(),
                    location: format!("s3://bucket/{id}.sql"),
                    encrypted: false,
                    copied_at: drilled.at,
                };
                Copies::record_copy(dir.path(), id, record).unwrap();
            }
        }
        for entry in store.entries().unwrap() {
            store.remove(&entry).unwrap();
        }
        assert!(store.entries().unwrap().is_empty());
        assert_eq!(
            Drilled::read(dir.path(), "backup_a_20260101_000000"),
            Some(drilled)
        );
        assert!(!path_for(dir.path(), "backup_a_20260102_000000").exists());
    }

    /// Regression: a plain and a custom backup started in the same second
    /// got the same id, and the second failed writing its sidecar.
    #[test]
    fn ids_are_unique_across_formats_and_holders() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let t = at(9, 0, 0);
        let first = store.reserve_id("shop", t).unwrap();
        assert_eq!(first.id.as_str(), "backup_shop_20260112_090000");
        // Held, not yet on disk: the next claimant gets the next number.
        let second = store.reserve_id("shop", t).unwrap();
        assert_eq!(second.id.as_str(), "backup_shop_20260112_090000_2");
        drop(first);
        // A data file in another format, or a lone sidecar, also takes the id.
        fs::write(dir.path().join("backup_shop_20260112_090000.dump"), "x").unwrap();
        fs::write(dir.path().join("backup_shop_20260112_090000_3.json"), "x").unwrap();
        let third = store.reserve_id("shop", t).unwrap();
        assert_eq!(third.id.as_str(), "backup_shop_20260112_090000_4");
    }

    #[test]
    fn concurrent_claimants_of_one_second_all_get_different_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let barrier = std::sync::Barrier::new(8);
        let ids: Vec<String> = std::thread::scope(|threads| {
            let workers: Vec<_> = (0..8)
                .map(|i| {
                    let (store, barrier, dir) = (&store, &barrier, dir.path());
                    threads.spawn(move || {
                        barrier.wait();
                        let held = store.reserve_id("shop", at(9, 0, 0)).unwrap();
                        // Half of them publish a data file, in different
                        // formats, and release: the id stays taken by the file.
                        if i % 2 == 0 {
                            let ext = Format::ALL[i % 3].extension();
                            fs::write(dir.join(format!("{}.{ext}", held.id)), "x").unwrap();
                            held.id.as_str().to_owned()
                        } else {
                            let id = held.id.as_str().to_owned();
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            drop(held);
                            id
                        }
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let published: Vec<&String> = ids.iter().step_by(2).collect();
        let unique: std::collections::BTreeSet<&String> = published.iter().copied().collect();
        assert_eq!(unique.len(), published.len(), "{ids:?}");
    }

    #[test]
    fn an_orphan_is_removed_only_when_old_and_unheld() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let id = "backup_shop_20260112_090000";
        let data = dir.path().join(format!("{id}.sql"));
        fs::write(&data, "half").unwrap();
        let entry = || store.find(id).unwrap().unwrap();
        assert_eq!(
            store.check_orphan(&entry(), true).unwrap(),
            OrphanCheck::TooYoung
        );
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::open(&data).unwrap().set_modified(old).unwrap();
        let writer = partial::reserve(dir.path(), id, false).unwrap().unwrap();
        assert_eq!(
            store.check_orphan(&entry(), true).unwrap(),
            OrphanCheck::BeingWritten
        );
        drop(writer);
        assert_eq!(
            store.check_orphan(&entry(), false).unwrap(),
            OrphanCheck::Removable
        );
        assert!(data.exists(), "only checked");
        assert_eq!(
            store.check_orphan(&entry(), true).unwrap(),
            OrphanCheck::Removable
        );
        assert!(!data.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left");
    }

    #[test]
    fn journal_keeps_the_latest_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let outcome = |status: &str| VerifyOutcome {
            id: String::new(),
            at: Local::now().fixed_offset(),
            status: status.into(),
            how: "verify".into(),
        };
        store.record_verification("a", outcome("OK")).unwrap();
        store
            .record_verification("a", outcome("CORRUPTED"))
            .unwrap();
        store.record_verification("b", outcome("OK")).unwrap();
        let last = store.last_verifications();
        assert_eq!(last["a"].status, "CORRUPTED");
        assert!(last["b"].is_ok());
        store.compact_journal(&["b".into()]).unwrap();
        assert!(!store.last_verifications().contains_key("a"));
        let mode = fs::metadata(dir.path().join(JOURNAL))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
