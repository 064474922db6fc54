//! `dbguard drill [ID | --all]`: restore backups where they cannot hurt (a
//! scratch database on their server, or a scratch cluster for a restore
//! point) and compare them with what was recorded at backup time. The work
//! is in `crate::restore::drill`; this file picks the backups and reports.

use std::io::Write;

use crate::backup::store::Entry;
use crate::backup::{Store, copies};
use crate::config::Config;
use crate::error::exit;
use crate::pgtools::PgTools;
use crate::restore::drill::{self, CatchStop};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A pg_dump backup is verified, restored into a scratch database \
<db>__dbguard_drill_<time>_<pid> on the server it came from, and each table's row count and content checksum \
there are compared with those recorded in its sidecar at backup time (for custom and directory archives, whose \
sidecar records none, with those of the archive's own data). A pgBackRest restore point is restored into a \
scratch cluster on a free port (or --scratch-port); it must be reached, and every table the sidecar recorded \
must exist there (with the recorded counts and checksums, where there are any). The scratch database or \
cluster is removed afterwards, also after a failure or Ctrl-C. A table-scoped backup's foreign keys to \
tables outside it cannot exist in an empty database: they are left out, and named in the output and the \
record; everything else, including foreign keys between its own tables, is restored. A backup only a remote \
holds (or, with --from, the copy on that remote) is downloaded into a private temporary directory (under \
TMPDIR), verified against the remote's checksum and the sidecar's SHA-256 before use, and removed afterwards. \
The result is shown by `dbguard list` (DRILLED) and written to the audit log.\n\n\
Exit status: 0 every drill passed; 1 a drill failed (the backup does not verify, does not restore, or a table \
differs: named with what was expected and found); 2 on an error (no such backup, the server unreachable, no \
right to create a database); 130 interrupted."
)]
pub struct Args {
    /// The backup to drill: an id from `dbguard list`, a unique prefix, latest or latest:DB.
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub id: Option<String>,
    /// Drill every backup, newest first (then those only a remote holds),
    /// and go on past failures.
    #[arg(long)]
    pub all: bool,
    /// Drill the copy on this remote (downloaded, verified, then removed),
    /// even when there is a local one.
    #[arg(long, value_name = "REMOTE", conflicts_with = "all")]
    pub from: Option<String>,
    /// Port for the scratch cluster a restore point is restored into
    /// (default: a free one).
    #[arg(long, value_name = "PORT")]
    pub scratch_port: Option<u16>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let mut out = std::io::stdout().lock();
    let Some(id) = args.id.filter(|_| !args.all) else {
        return drill_all(ctx, args.scratch_port, &mut out);
    };
    let report = drill::drill(ctx, &id, args.from.as_deref(), args.scratch_port, &mut out)?;
    drill::write_report(&mut out, &report).map_err(|e| Error::io("writing to stdout", e))?;
    match report.error() {
        None => Ok(exit::OK),
        Some(failed) => Err(failed),
    }
}

/// Every local backup, newest first: one line each, on past failures.
fn drill_all(ctx: &Context, scratch_port: Option<u16>, out: &mut impl Write) -> Result<u8, Error> {
    let config = Config::load(ctx)?;
    let store = Store::new(&config.backup_dir()?);
    let entries = store.entries()?;
    if entries.is_empty() && config.file.remotes.is_empty() {
        writeln!(out, "No backups in {}", store.dir().display())
            .map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(exit::OK);
    }
    let tools = PgTools::resolve(ctx)?;
    let _stop = CatchStop::install();
    let (mut failed, mut errors, mut passed) = (Vec::new(), 0, 0);
    for entry in &entries {
        let line = if entry.metadata.is_none() {
            // Data without a sidecar: a backup being written, or one
            // that never finished (`prune` removes those).
            format!("skip    {}  incomplete: no metadata", entry.id)
        } else {
            // The details of each drill are in its line; the running
            // commentary would drown them.
            match drill::drill_entry(
                ctx,
                &config,
                &store,
                &tools,
                entry,
                scratch_port,
                &mut std::io::sink(),
            ) {
                Ok(report) if report.passed() => {
                    passed += 1;
                    report.line()
                }
                Ok(report) => {
                    failed.push(entry.id.clone());
                    report.line()
                }
                Err(e) if drill::stopped() => return Err(e),
                Err(e) => {
                    errors += 1;
                    format!("ERROR   {}  could not drill: {e}", entry.id)
                }
            }
        };
        writeln!(out, "{line}").map_err(|e| Error::io("writing to stdout", e))?;
    }
    // Backups only a remote holds: downloaded one at a time, each removed
    // after its drill.
    let mut remote_only: Vec<(String, Entry)> = Vec::new();
    for remote in &config.file.remotes {
        let listed =
            copies::open_remote(&config, remote).and_then(|s3| copies::remote_backups(&s3));
        match listed {
            Ok(found) => {
                for entry in copies::as_entries(&found) {
                    let known = entries.iter().any(|e| e.id == entry.id)
                        || remote_only.iter().any(|(_, e)| e.id == entry.id);
                    if !known {
                        remote_only.push((remote.name.clone(), entry));
                    }
                }
            }
            Err(e) => {
                errors += 1;
                writeln!(out, "ERROR   remote {}  cannot be listed: {e}", remote.name)
                    .map_err(|e| Error::io("writing to stdout", e))?;
            }
        }
    }
    if entries.is_empty() && remote_only.is_empty() && errors == 0 {
        writeln!(
            out,
            "No backups in {} nor on the remotes",
            store.dir().display()
        )
        .map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(exit::OK);
    }
    remote_only.sort_by(|(_, a), (_, b)| b.created().cmp(&a.created()).then(b.id.cmp(&a.id)));
    for (name, entry) in &remote_only {
        let drilled = config.remote(name).and_then(|remote| {
            let fetched = drill::fetch_remote(&config, &[remote], &entry.id, &mut std::io::sink())?
                .ok_or_else(|| Error::Usage(format!("remote {name} no longer has it")))?;
            drill::drill_fetched(
                ctx,
                &config,
                &store,
                &tools,
                fetched,
                scratch_port,
                &mut std::io::sink(),
            )
        });
        let shown = format!("{} (remote {name})", entry.id);
        let line = match drilled {
            Ok(report) if report.passed() => {
                passed += 1;
                report.line()
            }
            Ok(report) => {
                failed.push(entry.id.clone());
                report.line()
            }
            Err(e) if drill::stopped() => return Err(e),
            Err(e) => {
                errors += 1;
                format!("ERROR   {shown}  could not drill: {e}")
            }
        };
        writeln!(out, "{line}").map_err(|e| Error::io("writing to stdout", e))?;
    }
    if !failed.is_empty() {
        return Err(Error::Failed {
            message: format!(
                "{} of {} drills failed: {}",
                failed.len(),
                failed.len() + passed + errors,
                failed.join(", ")
            ),
            code: exit::FOUND,
        });
    }
    if errors > 0 {
        return Err(Error::Failed {
            message: format!("{errors} backups could not be drilled; see the lines above"),
            code: exit::ERROR,
        });
    }
    Ok(exit::OK)
}
