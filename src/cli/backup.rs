//! `dbguard backup` (not built yet).

use crate::{Context, Error};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _ctx: &Context) -> Result<u8, Error> {
    Err(Error::Usage("`dbguard backup` is not available yet".into()))
}
