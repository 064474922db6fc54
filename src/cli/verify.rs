//! `dbguard verify`: re-read backups and compare every byte with the
//! checksum and size in their metadata. Exit 1 when any is not OK.

use std::io::Write;

use chrono::Local;
use indicatif::HumanBytes;

use crate::backup::Store;
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
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    let verdicts = verify(&store, &args.ids)?;
    let mut out = std::io::stdout().lock();
    report(&mut out, &verdicts).map_err(|e| Error::io("writing to stdout", e))?;
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

pub fn report(out: &mut impl Write, verdicts: &[Verdict]) -> std::io::Result<()> {
    if verdicts.is_empty() {
        return writeln!(out, "No backups to verify");
    }
    let width = verdicts.iter().map(|v| v.id.len()).max().unwrap_or(0);
    for v in verdicts {
        let detail = match v.status.detail() {
            Some(d) => d.to_owned(),
            None => format!("{} read in {:.2} s", HumanBytes(v.bytes_read), v.seconds),
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
