//! The pg_restore guard: a restore with `--clean` into a database drops
//! what the archive holds before recreating it, so it is confirmed
//! (`RESTORE` under `confirm`, the database's name under `protect`), the
//! whole target database is backed up and the decision recorded before
//! `shim::run` execs the real pg_restore. Every other pg_restore (a
//! listing, a script, an additive restore) passes straight through.
//!
//! With `--create` the database dropped is the archive's own, named in its
//! table of contents; it is read with the real `pg_restore -l` when the
//! archive is a file. An archive on stdin cannot be read twice, so that
//! case is refused with the way around it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::audit::BYPASS_ENV;
use crate::pgtools::{PgTools, first_error_line};
use crate::shim::chain::Link;
use crate::shim::pg_restore::{Intent, PgRestoreArgs};
use crate::shim::safeguard::record_bypass;
use crate::shim::whole_database::{self, Operation};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// The word under the `confirm` policy.
pub const RESTORE_WORD: &str = "RESTORE";

/// Runs the guard. `Ok` means: exec the real pg_restore now.
pub fn guard(ctx: &Context, link: &Link) -> Result<(), Error> {
    if link.guarded_upstream() {
        return Ok(());
    }
    if ctx.flag(BYPASS_ENV) {
        record_bypass(ctx, "pg_restore");
        return Ok(());
    }
    let args = PgRestoreArgs::parse(
        ctx.args.get(1..).unwrap_or_default(),
        ctx.var("POSIXLY_CORRECT").is_some(),
    );
    if args.intent == Intent::Nothing {
        return Ok(());
    }
    let conn = ConnectionArgs {
        host: lossy(args.host.as_deref()),
        port: lossy(args.port.as_deref()),
        user: lossy(args.username.as_deref()),
        dbname: lossy(args.dbname.as_deref()),
    };
    let connected = Target::resolve(&conn, ctx).map_err(|e| {
        Error::Refused(format!(
            "refused pg_restore --clean: cannot tell which database it is for ({e}); {}",
            crate::shim::safeguard::bypass_hint(ctx.flag(crate::confirm::YES_ENV))
        ))
    })?;
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    let archive = args.archive.as_deref().map(|a| cwd.join(a));
    let (what, action) = match args.intent {
        Intent::CleanCreate => (
            "pg_restore --clean --create".to_owned(),
            "drop and recreate the archive's database".to_owned(),
        ),
        _ => (
            format!("pg_restore --clean into \"{}\"", connected.dbname),
            format!(
                "drop and recreate the archive's objects in database \"{}\"",
                connected.dbname
            ),
        ),
    };
    let target = |tools: Option<&PgTools>| match args.intent {
        Intent::CleanCreate => {
            let tools =
                tools.ok_or("the real pg_restore, needed to read the archive, is not found")?;
            let name = archive_database(tools, archive.as_deref())?;
            Ok(connected.with_dbname(&name))
        }
        _ => Ok(connected.clone()),
    };
    whole_database::protect(
        ctx,
        &Operation {
            tool: "pg_restore",
            what,
            action,
            verb: RESTORE_WORD,
            maintenance: connected.clone(),
            target: &target,
        },
    )
}

/// The database an archive was dumped from, from its table of contents
/// (`;     dbname: NAME`), read by the real pg_restore.
fn archive_database(tools: &PgTools, archive: Option<&Path>) -> Result<String, String> {
    let Some(archive) = archive else {
        return Err(
            "with --create the database dropped is named inside the archive, \
                    which comes on stdin and cannot be read twice; give the archive as a file"
                .into(),
        );
    };
    let out = std::process::Command::new(&tools.pg_restore)
        .arg("-l")
        .arg(archive)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tools.pg_restore.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cannot read the archive's table of contents ({})",
            first_error_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    toc_database(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "the archive's table of contents names no database".into())
}

/// The `dbname:` line of a `pg_restore -l` header.
pub fn toc_database(listing: &str) -> Option<String> {
    listing
        .lines()
        .take_while(|l| l.starts_with(';'))
        .find_map(|l| {
            l.trim_start_matches(';')
                .trim_start()
                .strip_prefix("dbname: ")
        })
        .map(str::to_owned)
}

fn lossy(value: Option<&OsStr>) -> Option<String> {
    value.map(|v| v.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_comes_from_the_listing_header() {
        let listing = ";\n; Archive created at 2026-01-01 10:00:00 UTC\n;     dbname: shop\n;     TOC Entries: 9\n;\n215; 1259 16385 TABLE public t app\n";
        assert_eq!(toc_database(listing).as_deref(), Some("shop"));
        assert_eq!(toc_database("215; 1259 TABLE public t\n"), None);
    }
}
