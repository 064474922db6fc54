//! `dbguard restore ID [CONNECTION]`: put a verified backup back, after
//! showing what will be overwritten and having the person type the target
//! database's name. The work is in `crate::restore`; the help text below
//! documents the target's precedence and the methods.

use crate::error::exit;
use crate::restore::{RestoreRequest, restore};
use crate::target::ConnectionArgs;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(
    disable_help_flag = true,
    after_help = "Target: --origin is the database the backup came from. Otherwise each part (host, port, user, \
database) comes from the command line (-h/-p/-U/-d, DBNAME [USERNAME], a conninfo or URI in -d), else from the PG* \
environment (PGHOST/PGHOSTADDR, PGPORT, PGUSER, PGDATABASE), else from the backup's origin; with PGSERVICE set, the \
service file fills what the command line leaves open. When the target is not where the backup came from, dbguard \
says so; under --yes or DBGUARD_YES=1 such a target must be named on the command line (or --origin given).\n\n\
Whole-database backups are restored into a new database, checked, then swapped in by renaming; the replaced database is \
kept as <db>__dbguard_replaced_<time> until you drop it. This needs CREATEDB and no other sessions on the database \
(--terminate ends them). --in-place restores over the existing database in one transaction instead; objects created since \
the backup that depend on restored ones make it fail, unchanged. Table-scoped backups put the tables' rows back in place, \
in one transaction. A pgBackRest restore point is recovered in a scratch cluster on a free port (or --scratch-port), \
the tables it protects (or its whole database) are dumped from there and restored as above; the live cluster keeps running.\n\n\
--whole-cluster instead rewinds the restore point's whole cluster (every database in it) in its own data directory \
(pgbackrest restore --delta --type=name --target-action=promote). It runs only with the server stopped (dbguard never \
stops or starts it), and only when you type the stanza's name on the terminal: --yes and DBGUARD_YES=1 do not answer \
this question. Start the server afterwards; it replays WAL up to the point and promotes.\n\n\
Exit status: 0 restored and checked; 1 the backup failed verification (nothing was restored) or, restored, some tables \
differ from it; 77 refused or not confirmed; 2 on an error (nothing was changed, except by a parallel --in-place restore, which says so)."
)]
pub struct Args {
    /// The backup to restore (id from `dbguard list`, or its file name).
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Restore into this database instead of the one backed up (DBNAME [USERNAME]).
    #[arg(value_name = "DBNAME [USERNAME]")]
    pub positional: Vec<String>,
    /// Do not ask; restore at once (also DBGUARD_YES=1).
    #[arg(short = 'y', long, visible_alias = "force")]
    pub yes: bool,
    /// Skip the backup of the current state taken before restoring.
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Parallel pg_restore jobs (custom/directory backups, whole database).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Restore into the database the backup came from, whatever PG* says.
    #[arg(long)]
    pub origin: bool,
    /// Restore over the existing database instead of swapping in a new one.
    #[arg(long)]
    pub in_place: bool,
    /// End other sessions on the database a swap replaces.
    #[arg(long)]
    pub terminate: bool,
    /// Restore this remote's copy instead of the local one.
    // Without it a remote copy is used only when the local one is missing
    // or does not verify, the remotes tried in the configuration's order.
    #[arg(long, value_name = "REMOTE")]
    pub from: Option<String>,
    /// Port for the scratch cluster a restore point is recovered in
    /// (default: a free one).
    #[arg(long, value_name = "PORT")]
    pub scratch_port: Option<u16>,
    /// Rewind the restore point's whole cluster in its own data directory
    /// (server stopped; confirmed on the terminal only).
    #[arg(long)]
    pub whole_cluster: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    if args.whole_cluster {
        return whole_cluster(args, ctx);
    }
    let request = RestoreRequest {
        id: args.id,
        connection: args.connection.with_positional(&args.positional)?,
        origin: args.origin,
        yes: args.yes,
        answered: None,
        safety_backup: !args.no_safety_backup,
        jobs: args.jobs,
        in_place: args.in_place,
        terminate: args.terminate,
        from: args.from,
        scratch_port: args.scratch_port,
    };
    let mut out = std::io::stdout().lock();
    let report = restore(ctx, &request, &mut out)?;
    let bad: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.ok())
        .map(|c| c.table.as_str())
        .collect();
    if bad.is_empty() {
        Ok(exit::OK)
    } else {
        Err(Error::Failed {
            message: format!(
                "restored, but these tables do not match the backup: {}",
                bad.join(", ")
            ),
            code: exit::FOUND,
        })
    }
}

/// `--whole-cluster`: everything else on the command line chooses a
/// database, a method or a shortcut, none of which applies when a whole
/// cluster is rewound, so each is refused rather than silently ignored.
fn whole_cluster(args: Args, ctx: &Context) -> Result<u8, Error> {
    let conflicting = [
        (
            !args.connection.is_empty() || !args.positional.is_empty(),
            "a target database",
        ),
        (args.origin, "--origin"),
        (args.in_place, "--in-place"),
        (args.jobs.is_some(), "-j"),
        (args.terminate, "--terminate"),
        (args.from.is_some(), "--from"),
        (args.scratch_port.is_some(), "--scratch-port"),
        (args.no_safety_backup, "--no-safety-backup"),
        (args.yes, "--yes (it is confirmed on the terminal only)"),
    ];
    if let Some((_, what)) = conflicting.iter().find(|(given, _)| *given) {
        return Err(Error::Usage(format!(
            "--whole-cluster rewinds the restore point's whole cluster; {what} does not apply to it"
        )));
    }
    let mut out = std::io::stdout().lock();
    crate::restore::pitr::restore_whole_cluster(ctx, &args.id, &mut out)?;
    Ok(exit::OK)
}
