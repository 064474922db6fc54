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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::{Tool, with_invocation};

    /// The plan for `args`, handed to `check`.
    fn plan_for(args: &[&str], check: impl FnOnce(Plan<'_>)) {
        with_invocation(Tool::Dropdb, args, &[], |inv| check(assess(inv)));
    }

    #[test]
    fn what_drops_nothing_passes_what_cannot_be_told_refuses_a_drop_is_protected() {
        plan_for(&["dropdb", "--help"], |p| {
            assert!(matches!(p, Plan::Pass(_)))
        });
        plan_for(&["dropdb"], |p| assert!(matches!(p, Plan::Pass(_))));
        plan_for(&["dropdb", "--frobnicate", "a", "b"], |p| match p {
            Plan::Refuse(r) => {
                assert_eq!(r.what.as_deref(), Some("dropdb"));
                assert!(r.why.contains("unclear which database"), "{}", r.why);
            }
            _ => panic!("refused"),
        });
        plan_for(&["dropdb", "-h", "db.example", "shop"], |p| match p {
            Plan::Protect { operation, .. } => {
                assert_eq!(operation.what(), "dropdb \"shop\"");
                let target = operation.target(None).unwrap();
                assert_eq!(
                    (target.host.as_str(), target.dbname.as_str()),
                    ("db.example", "shop")
                );
            }
            _ => panic!("protected"),
        });
    }
}
