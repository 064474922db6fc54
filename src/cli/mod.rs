//! The toolbox personality: `dbguard <command>`. Each subcommand lives in
//! its own file with its clap arguments and a `run` function returning the
//! exit status.

pub mod backup;
pub mod check_migration;
pub mod completions;
pub mod config;
pub mod doctor;
pub mod drill;
pub mod init;
pub mod keygen;
pub mod list;
pub mod log;
pub mod man;
pub mod migrate;
pub mod prune;
pub mod restore;
pub mod scan;
pub mod shim_dir;
pub mod sync;
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
    /// Restore backups into a scratch database (or cluster) and compare them with what was recorded.
    Drill(drill::Args),
    /// Copy backups that a configured remote lacks, retrying failed copies.
    Sync(sync::Args),
    /// Create an encryption key file for remote copies.
    Keygen(keygen::Args),
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
        Err(err) if err.use_stderr() => return Err(Error::Usage(one_line(&err, &ctx.args))),
        Err(err) => {
            // Help and version, on stdout with status 0, exactly as clap writes them.
            let _ = err.print();
            return Ok(crate::error::exit::OK);
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
        Command::Drill(args) => drill::run(args, ctx),
        Command::Sync(args) => sync::run(args, ctx),
        Command::Keygen(args) => keygen::run(args, ctx),
        Command::Doctor(args) => doctor::run(args, ctx),
        Command::Init(args) => init::run(args, ctx),
        Command::Config(args) => config::run(args, ctx),
        Command::VerifyTestDb(args) => verify_test_db::run(args, ctx),
        Command::Man(args) => man::run(args, ctx),
        Command::Uninstall(args) => uninstall::run(args, ctx),
    }
}

/// A clap usage error as the one line every dbguard error is (`dbguard:
/// ...`, status 2): clap's message with what it lists (missing arguments,
/// possible values, a tip), and where help is. clap's own rendering spans
/// several lines with `error:`, the usage and a blank line.
fn one_line(err: &clap::Error, args: &[std::ffi::OsString]) -> String {
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    let cli = Cli::command();
    // The help to point at: the subcommand's when one was named.
    let subcommand = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .and_then(|name| cli.find_subcommand(name))
        .map(|sub| sub.get_name().to_owned());
    let help = match &subcommand {
        Some(name) => format!("dbguard {name} --help"),
        None => "dbguard --help".to_owned(),
    };
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        return format!("no command given; see {help}");
    }
    let text = err.render().to_string();
    let mut out = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if out.is_empty() {
            out.push_str(line.strip_prefix("error: ").unwrap_or(line));
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            out.push_str(&format!(" ({tip})"));
        } else if let Some(listed) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push_str(&format!(" ({listed})"));
        } else if out.ends_with(':') {
            out.push(' ');
            out.push_str(line);
        } else {
            out.push_str(", ");
            out.push_str(line);
        }
    }
    if out.is_empty() {
        out.push_str("invalid arguments");
    }
    out.push_str(&format!("; see {help}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let ctx = Context::for_test(args, &[]);
        match run(&ctx) {
            Err(Error::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn argument_errors_are_one_line_with_the_tip_and_where_help_is() {
        assert_eq!(
            usage_error(&["dbguard", "bakup"]),
            "unrecognized subcommand 'bakup' (a similar subcommand exists: 'backup'); see dbguard --help"
        );
        assert_eq!(
            usage_error(&["dbguard", "prune", "--dry"]),
            "unexpected argument '--dry' found (a similar argument exists: '--dry-run'); see dbguard prune --help"
        );
        assert_eq!(
            usage_error(&["dbguard"]),
            "no command given; see dbguard --help"
        );
        assert_eq!(
            usage_error(&["dbguard", "scan", "--format", "xml"]),
            "invalid value 'xml' for '--format <FORMAT>' (possible values: text, json, github); see dbguard scan --help"
        );
        let message = usage_error(&["dbguard", "restore"]);
        assert!(
            message.starts_with("the following required arguments were not provided: <")
                && message.ends_with("; see dbguard restore --help")
                && !message.contains('\n'),
            "{message}"
        );
    }
}
