//! `dbguard verify`: re-read backups and compare every byte with the
//! checksum and size in their metadata. Exit 1 when any is not OK.
//! `--remote NAME` re-reads that remote's copies instead: every stored byte
//! against the checksum recorded when it was copied, decrypted, and the
//! plaintext against the backup's own SHA-256 from its sidecar there.

use std::io::Write;

use chrono::Local;
use indicatif::HumanBytes;

use crate::backup::Store;
use crate::backup::copies::{self, RemoteBackup};
use crate::backup::dest::s3::S3;
use crate::backup::engine::pgbackrest;
use crate::backup::store::{Status, Verdict, VerifyOutcome};
use crate::config::Config;
use crate::error::exit;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backup ids (or file names) to check; none means all.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Check every backup in the backup directory.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// Check the copies on this remote instead of the local files.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    let verdicts = match &args.remote {
        Some(name) => verify_remote(&config, name, &args.ids)?,
        None => verify(&store, &args.ids)?,
    };
    let mut out = std::io::stdout().lock();
    report(&mut out, &verdicts).map_err(|e| Error::io("writing to stdout", e))?;
    if args.remote.is_none() {
        archiving_report(&mut out, ctx, &store, &verdicts)
            .map_err(|e| Error::io("writing to stdout", e))?;
    }
    Ok(if verdicts.iter().all(|v| v.status.is_ok()) {
        exit::OK
    } else {
        exit::FOUND
    })
}

/// Checks the named backups (all when `ids` is empty) and records each
/// result in the verification journal.
pub fn verify(store: &Store, ids: &[String]) -> Result<Vec<Verdict>, Error> {
    let entries = store.entries()?;
    let mut verdicts = Vec::new();
    if ids.is_empty() {
        for entry in &entries {
            verdicts.push(store.verify(entry));
        }
    } else {
        for id in ids {
            match store.find(id)? {
                Some(entry) => verdicts.push(store.verify(&entry)),
                None => verdicts.push(Verdict {
                    id: id.clone(),
                    status: Status::Missing(format!("no such backup in {}", store.dir().display())),
                    restorable: None,
                    bytes_read: 0,
                    seconds: 0.0,
                }),
            }
        }
    }
    for v in &verdicts {
        if entries.iter().any(|e| e.id == v.id) {
            let _ = store.record_verification(
                &v.id,
                VerifyOutcome {
                    id: v.id.clone(),
                    at: Local::now().fixed_offset(),
                    status: v.status.label().to_owned(),
                    how: "verify".into(),
                },
            );
        }
    }
    Ok(verdicts)
}

/// Re-reads the copies on remote `name` (all, or those named by `ids`).
pub fn verify_remote(config: &Config, name: &str, ids: &[String]) -> Result<Vec<Verdict>, Error> {
    let remote = config.remote(name)?;
    let s3 = copies::open_remote(config, remote)?;
    let mut found = copies::remote_backups(&s3)?;
    found.sort_by(|a, b| b.id.cmp(&a.id));
    let candidates = copies::as_entries(&found);
    let mut wanted = Vec::new();
    for id in ids {
        match crate::backup::catalog::resolve(&candidates, id)? {
            Some(entry) => wanted.push(entry.id),
            None => {
                return Err(Error::Usage(format!("remote {name}: no backup {id}")));
            }
        }
    }
    let mut verdicts = Vec::new();
    for backup in found
        .iter()
        .filter(|b| wanted.is_empty() || wanted.contains(&b.id))
    {
        let clock = std::time::Instant::now();
        let (status, bytes_read) = check_remote(&s3, backup);
        verdicts.push(Verdict {
            id: backup.id.clone(),
            status,
            restorable: None,
            bytes_read,
            seconds: clock.elapsed().as_secs_f64(),
        });
    }
    Ok(verdicts)
}

fn check_remote(s3: &S3, backup: &RemoteBackup) -> (Status, u64) {
    let meta = match s3.download_small(&backup.sidecar_file).map(|bytes| {
        serde_json::from_slice::<crate::backup::Metadata>(&bytes)
            .map_err(|e| format!("metadata is not valid: {e}"))
    }) {
        Ok(Ok(meta)) => meta,
        Ok(Err(e)) => return (Status::Incomplete(e), 0),
        Err(e) => return (Status::Corrupted(e.to_string()), 0),
    };
    let Some(data_file) = &backup.data_file else {
        return (Status::Ok, 0);
    };
    if !backup.dir_files.is_empty() {
        return match copies::download_dir(s3, backup, &meta, None) {
            Ok(size) => (Status::Ok, size),
            Err(e) => (Status::Corrupted(e.to_string()), 0),
        };
    }
    match s3.download(data_file, &mut std::io::sink()) {
        Ok((sha256, size)) if sha256 == meta.sha256 && size == meta.size_bytes => {
            (Status::Ok, size)
        }
        Ok((sha256, size)) => (
            Status::Corrupted(format!(
                "{size} bytes with SHA-256 {sha256}; the metadata says {} bytes, {}",
                meta.size_bytes, meta.sha256
            )),
            size,
        ),
        Err(e) => (Status::Corrupted(e.to_string()), 0),
    }
}

/// After restore points were verified: whether WAL archiving works on
/// their servers now. A restore point verified OK stays restorable when
/// archiving breaks later, so this does not change the exit status; it
/// says what the next guard will do.
fn archiving_report(
    out: &mut impl Write,
    ctx: &Context,
    store: &Store,
    verdicts: &[Verdict],
) -> std::io::Result<()> {
    let Ok(entries) = store.entries() else {
        return Ok(());
    };
    let points: Vec<_> = entries
        .iter()
        .filter(|e| verdicts.iter().any(|v| v.id == e.id))
        .filter_map(|e| e.meta())
        .filter(|m| m.restore_point.is_some())
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let warnings = match crate::pgtools::PgTools::resolve(ctx) {
        Ok(tools) => pgbackrest::archiving_warnings(&tools, points),
        Err(e) => vec![format!("cannot check WAL archiving: {e}")],
    };
    for warning in warnings {
        writeln!(out, "warning: {warning}")?;
    }
    Ok(())
}

pub fn report(out: &mut impl Write, verdicts: &[Verdict]) -> std::io::Result<()> {
    if verdicts.is_empty() {
        return writeln!(out, "No backups to verify");
    }
    let width = verdicts.iter().map(|v| v.id.len()).max().unwrap_or(0);
    for v in verdicts {
        let detail = match (v.status.detail(), &v.restorable) {
            (Some(d), _) => d.to_owned(),
            (None, Some(restorable)) => restorable.clone(),
            (None, None) => format!("{} read in {:.2} s", HumanBytes(v.bytes_read), v.seconds),
        };
        writeln!(out, "{:<10}  {:<width$}  {detail}", v.status.label(), v.id)?;
    }
    let bad = verdicts.iter().filter(|v| !v.status.is_ok()).count();
    writeln!(
        out,
        "{} checked: {} OK, {} bad",
        verdicts.len(),
        verdicts.len() - bad,
        bad
    )
}
