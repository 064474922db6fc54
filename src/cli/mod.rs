//! The toolbox personality: `dbguard <command>`. Each subcommand lives in
//! its own file with its clap arguments and a `run` function returning the
//! exit status.

pub mod backup;
pub mod check_migration;
pub mod completions;
pub mod config;
pub mod doctor;
pub mod init;
pub mod list;
pub mod log;
pub mod man;
pub mod migrate;
pub mod prune;
pub mod restore;
pub mod scan;
pub mod shim_dir;
mod table;
pub mod uninstall;
pub mod verify;
pub mod verify_test_db;

use clap::{Parser, Subcommand};

use crate::{Context, Error};

#[derive(Debug, Parser)]
#[command(
    name = "dbguard",
    version,
    about = "Stops psql, alembic, dropdb and pg_restore from destroying data by accident: destructive commands are confirmed and backed up before they run.",
    long_about = None,
    after_help = "Invoked through a link named psql, alembic, dropdb or pg_restore, dbguard guards that tool instead. See `dbguard doctor`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find destructive statements in psql scripts.
    Scan(scan::Args),
    /// List the destructive operations in pending (or a RANGE of) alembic revisions.
    CheckMigration(check_migration::Args),
    /// alembic upgrade with a backup before and after, and a restore offered on failure.
    Migrate(migrate::Args),
    /// Take a checksummed backup of a database with pg_dump.
    Backup(backup::Args),
    /// List backups, newest first.
    List(list::Args),
    /// Show what the guards decided (the audit log), oldest first.
    Log(log::Args),
    /// Re-read backups and check them against their checksums.
    Verify(verify::Args),
    /// Restore a verified backup into a database.
    Restore(restore::Args),
    /// Remove old backups according to the retention rules.
    Prune(prune::Args),
    /// Show which psql, alembic, dropdb and pg_restore this shell runs, and whether they are guarded.
    Doctor(doctor::Args),
    /// Print shell code that keeps the shim directory first on PATH.
    Init(init::Args),
    /// Show the configuration in effect and where each value came from.
    Config(config::Args),
    /// Check that a test database is reachable, policy off, and not a guarded one.
    VerifyTestDb(verify_test_db::Args),
    /// Print the shell completion script for dbguard.
    Completions(completions::Args),
    /// Print the manual page, or write every page into a directory.
    Man(man::Args),
    /// Remove what install.sh installed (binary, shims, library, manual pages, rc lines); backups stay.
    Uninstall(uninstall::Args),
}

/// Parses the toolbox command line and runs the command.
pub fn run(ctx: &Context) -> Result<u8, Error> {
    let cli = match Cli::try_parse_from(&ctx.args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with status 0, and
            // usage errors to stderr with status 2, as documented.
            let code = err.exit_code();
            let _ = err.print();
            return Ok(u8::try_from(code).unwrap_or(crate::error::exit::ERROR));
        }
    };
    match cli.command {
        Command::Scan(args) => scan::run(args, ctx),
        Command::Completions(args) => completions::run(args, ctx),
        Command::CheckMigration(args) => check_migration::run(args, ctx),
        Command::Migrate(args) => migrate::run(args, ctx),
        Command::Backup(args) => backup::run(args, ctx),
        Command::List(args) => list::run(args, ctx),
        Command::Log(args) => log::run(args, ctx),
        Command::Verify(args) => verify::run(args, ctx),
        Command::Restore(args) => restore::run(args, ctx),
        Command::Prune(args) => prune::run(args, ctx),
        Command::Doctor(args) => doctor::run(args, ctx),
        Command::Init(args) => init::run(args, ctx),
        Command::Config(args) => config::run(args, ctx),
        Command::VerifyTestDb(args) => verify_test_db::run(args, ctx),
        Command::Man(args) => man::run(args, ctx),
        Command::Uninstall(args) => uninstall::run(args, ctx),
    }
}
