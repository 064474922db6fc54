//! The dropdb guard: every dropdb that would drop a database is confirmed
//! with that database's own name (under `confirm` as under `protect`: the
//! whole database goes, so no verb says more), the whole database is
//! backed up and the decision recorded (`protect`) before the real
//! dropdb is exec'd. An invocation dropdb itself rejects, `--help` and `--version`
//! pass straight through.

pub mod args;

use std::ffi::OsStr;

use crate::error::Refusal;
use crate::shim::tools::dropdb::args::{DropdbArgs, Intent};
use crate::shim::whole_database::Operation;
use crate::shim::{Invocation, Plan};
use crate::target::{ConnectionArgs, Target};

/// Plans a dropdb: pass what drops nothing, refuse what cannot be told,
/// protect the database it drops.
pub fn assess<'a>(inv: &Invocation<'a>) -> Plan<'a> {
    let ctx = inv.ctx;
    let args = DropdbArgs::parse(
        ctx.args.get(1..).unwrap_or_default(),
        ctx.var("POSIXLY_CORRECT").is_some(),
    );
    let name = match &args.intent {
        Intent::Nothing => return Plan::launch(),
        Intent::Unclear(why) => return Plan::Refuse(Refusal::guarded("dropdb", why.clone())),
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
    let maintenance = match Target::resolve(&conn, ctx) {
        Ok(t) => t,
        Err(e) => {
            return Plan::Refuse(Refusal::guarded(
                &what,
                format!("cannot tell which server it is for ({e})"),
            ));
        }
    };
    let dropped = maintenance.with_dbname(&name);
    Plan::protect(Operation {
        tool: "dropdb",
        what,
        action: format!("drop database \"{name}\""),
        verb: name,
        maintenance,
        target: Box::new(move |_| Ok(dropped.clone())),
    })
}

fn lossy(value: Option<&OsStr>) -> Option<String> {
    value.map(|v| v.to_string_lossy().into_owned())
}
