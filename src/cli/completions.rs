//! `dbguard completions SHELL`: prints the shell completion script for the
//! toolbox, generated from the same clap definitions that parse its
//! arguments, so completions can never drift from the real options.
//!
//! The shims (`psql`, `alembic`, …) keep the completions of the real
//! tools: a shell completes by command name, and those names are theirs.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::exit;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dbguard completions bash > ~/.local/share/bash-completion/completions/dbguard
  dbguard completions zsh > ~/.zfunc/_dbguard
  dbguard completions fish > ~/.config/fish/completions/dbguard.fish")]
pub struct Args {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args, _ctx: &Context) -> Result<u8, Error> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "dbguard", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}
