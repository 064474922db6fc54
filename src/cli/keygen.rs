//! `dbguard keygen FILE`: a new encryption key for remote copies, written
//! to FILE (mode 0600, never replacing a file). Only the public key is
//! printed; the file is what a restore needs, so it must be kept safe
//! somewhere other than the remote it protects.

use std::path::PathBuf;

use crate::backup::encryption::KeyFile;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the key (must not exist yet).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(args: Args, _ctx: &Context) -> Result<u8, Error> {
    let public = KeyFile::generate(&args.file)?;
    println!("Wrote a new key to {} (mode 0600)", args.file.display());
    println!("  public key  {public}");
    println!(
        "Use it with `encryption_key_file = \"{}\"` in a [[remote]]. Keep a copy somewhere safe \
         other than that remote: without this file its copies cannot be restored.",
        args.file.display()
    );
    Ok(crate::error::exit::OK)
}
