//! The dropdb guard: every dropdb that would drop a database is confirmed
//! with that database's own name (under `confirm` as under `protect`: the
//! whole database goes, so no verb says more), the whole database is
//! backed up and the decision recorded before `shim::run` execs the real
//! dropdb. An invocation dropdb itself rejects, `--help` and `--version`
//! pass straight through.

use std::ffi::OsStr;

use crate::audit::BYPASS_ENV;
use crate::shim::chain::Link;
use crate::shim::dropdb::{DropdbArgs, Intent};
use crate::shim::safeguard::{bypass_hint, record_bypass};
use crate::shim::whole_database::{self, Operation};
use crate::target::{ConnectionArgs, Target};
use crate::{Context, Error};

/// Runs the guard. `Ok` means: exec the real dropdb now.
pub fn guard(ctx: &Context, link: &Link) -> Result<(), Error> {
    if link.guarded_upstream() {
        return Ok(());
    }
    if ctx.flag(BYPASS_ENV) {
        record_bypass(ctx, "dropdb");
        return Ok(());
    }
    let args = DropdbArgs::parse(
        ctx.args.get(1..).unwrap_or_default(),
        ctx.var("POSIXLY_CORRECT").is_some(),
    );
    let name = match &args.intent {
        Intent::Nothing => return Ok(()),
        Intent::Unclear(why) => {
            return Err(Error::Refused(format!(
                "refused dropdb: {why}; {}",
                bypass_hint(ctx.flag(crate::confirm::YES_ENV))
            )));
        }
        Intent::Drop(name) => name.to_string_lossy().into_owned(),
    };
    let what = format!("dropdb \"{name}\"");
    // dropdb issues the DROP from its maintenance database (a name or a
    // conninfo string); the dropped database is on the server that one
    // reaches, with the same user.
    let maintenance_db = match &args.maintenance_db {
        Some(db) => db.to_string_lossy().into_owned(),
        None if name == "postgres" => "template1".to_owned(),
        None => "postgres".to_owned(),
    };
    let conn = ConnectionArgs {
        host: lossy(args.host.as_deref()),
        port: lossy(args.port.as_deref()),
        user: lossy(args.username.as_deref()),
        dbname: Some(maintenance_db),
    };
    let maintenance = Target::resolve(&conn, ctx).map_err(|e| {
        Error::Refused(format!(
            "refused {what}: cannot tell which server it is for ({e}); {}",
            bypass_hint(ctx.flag(crate::confirm::YES_ENV))
        ))
    })?;
    let dropped = maintenance.with_dbname(&name);
    whole_database::protect(
        ctx,
        &Operation {
            tool: "dropdb",
            what,
            action: format!("drop database \"{name}\""),
            verb: &name,
            maintenance,
            target: &|_| Ok(dropped.clone()),
        },
    )
}

fn lossy(value: Option<&OsStr>) -> Option<String> {
    value.map(|v| v.to_string_lossy().into_owned())
}
