//! `dbguard restore ID [CONNECTION]`: put a verified backup back, after
//! showing what will be overwritten and having the person type the target
//! database's name. The work is in `crate::restore`.

use crate::error::exit;
use crate::restore::{RestoreRequest, restore};
use crate::target::ConnectionArgs;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
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
    /// Parallel pg_restore jobs (custom/directory backups); not atomic.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<u32>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let request = RestoreRequest {
        id: args.id,
        connection: args.connection.with_positional(&args.positional)?,
        yes: args.yes,
        safety_backup: !args.no_safety_backup,
        jobs: args.jobs,
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
