//! `dbguard sync`: copies every backup that a configured remote lacks (or
//! whose earlier copy failed) and prints one line per copy. A guard starts
//! `dbguard sync --backup ID` detached after each backup, so the guarded
//! command never waits for the network; the outcome is recorded in the
//! backup's copies file either way.

use crate::backup::Store;
use crate::backup::copies::{self, Attempt};
use crate::config::Config;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this backup (id, unique prefix, `latest`, `latest:DB`).
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
    /// Print nothing (the detached copy a guard starts).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    if config.file.remotes.is_empty() {
        return Err(Error::Usage(
            "no [[remote]] in the configuration: nothing to sync to".into(),
        ));
    }
    let store = Store::new(&config.backup_dir()?);
    let entries = match &args.backup {
        Some(wanted) => vec![store.find(wanted)?.ok_or_else(|| {
            Error::Usage(format!("no backup `{wanted}` in {}", store.dir().display()))
        })?],
        None => store.entries()?,
    };
    let mut failed = 0;
    let mut copied = 0;
    for entry in entries
        .iter()
        .filter(|e| e.meta().is_some() && e.data.is_some())
    {
        for Attempt { remote, result } in copies::copy_to_remotes(&config, store.dir(), entry) {
            match result {
                Ok(location) => {
                    copied += 1;
                    if !args.quiet {
                        println!("copied {} to {remote}: {location}", entry.id);
                    }
                }
                Err(e) => {
                    failed += 1;
                    if !args.quiet {
                        eprintln!("dbguard: {} not copied to {remote}: {e}", entry.id);
                    }
                }
            }
        }
    }
    if !args.quiet && copied == 0 && failed == 0 {
        println!("Every backup is on every remote already.");
    }
    Ok(if failed == 0 {
        crate::error::exit::OK
    } else {
        crate::error::exit::ERROR
    })
}
