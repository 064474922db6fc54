//! The guard of tools that destroy one database as a whole — `dropdb`, and
//! `pg_restore --clean` into a database: pick the word from the policy,
//! check that the database can be backed up (or that it does not exist, so
//! there is nothing to protect), show what will go, then ask, back up the
//! whole database and record, with the steps shared in `safeguard.rs`.

use std::io;

use indicatif::HumanBytes;

use crate::audit::{Outcome, Record};
use crate::pgtools::{PgTools, quote_literal};
use crate::shim::guard::{self, Decision};
use crate::shim::safeguard::{self, Protection, write_audit};
use crate::target::Target;
use crate::{Context, Error};

/// One operation on one database, as the tool's guard describes it.
pub struct Operation<'a> {
    /// The tool's name, for the audit log and messages (`dropdb`).
    pub tool: &'static str,
    /// The operation in a few words, for a refusal: `dropdb "shop"`.
    pub what: String,
    /// What happens to the database, for the summary: `drop database "shop"`.
    pub action: String,
    /// The word to type under the `confirm` policy.
    pub verb: &'a str,
    /// Where the tool connects first; asked whether the database exists
    /// when the database itself cannot be reached.
    pub maintenance: Target,
    /// The database destroyed, found with the real client tools when it
    /// needs them (`None`: they cannot be found); `Err` says why it cannot
    /// be told (a refusal).
    pub target: &'a dyn Fn(Option<&PgTools>) -> Result<Target, String>,
}

/// Asks, backs up the whole database and records; `Ok` means: exec the
/// real tool now. Every failure before the backup is complete refuses.
pub fn protect(ctx: &Context, op: &Operation<'_>) -> Result<(), Error> {
    let what = &op.what;
    let mut record = Record::new(ctx, op.tool, Outcome::Refused);
    let config = safeguard::load_config(ctx, what)?;
    let refuse = safeguard::refusal(&config, what);
    record.target = Some((&op.maintenance).into());
    // Missing client programs matter only once a backup is due: a
    // database under policy `off` needs none.
    let tools = PgTools::resolve(ctx);
    let target = match (op.target)(tools.as_ref().ok()) {
        Ok(t) => t,
        Err(why) => return Err(refuse(&mut record, why)),
    };
    record.target = Some((&target).into());

    let policy = config.policy_for(&target);
    let plan = match guard::decide_whole_database(op.verb, &target.dbname, policy) {
        Decision::Guard(plan) => plan,
        Decision::Pass => {
            record.decision = Outcome::PolicyOff;
            record.detail = Some(format!("policy off for database \"{}\"", target.dbname));
            write_audit(&config, &record);
            return Ok(());
        }
        Decision::Refuse(why) => return Err(refuse(&mut record, why)),
    };
    let tools = match tools {
        Ok(tools) => tools,
        Err(e) => return Err(refuse(&mut record, format!("no backup is possible ({e})"))),
    };
    let (_, preflights) = safeguard::check_backups(&tools, &target, &plan, None);
    let preflights = match preflights {
        Ok(ready) => ready,
        Err((database, e)) => {
            if database_exists(&tools, &op.maintenance, &database) == Ok(false) {
                note!(
                    "dbguard: database \"{database}\" does not exist, so there is nothing to back up; {} runs unguarded",
                    op.tool
                );
                record.decision = Outcome::Pass;
                record.detail = Some(format!("database \"{database}\" does not exist"));
                write_audit(&config, &record);
                return Ok(());
            }
            return Err(refuse(
                &mut record,
                format!("no backup of \"{database}\" is possible ({e})"),
            ));
        }
    };

    let mut summary = Vec::new();
    print_summary(op, &target, preflights.first(), &mut summary);
    safeguard::ask_back_up_record(
        ctx,
        &Protection {
            config: &config,
            tools: &tools,
            target: &target,
            plan: &plan,
            preflights: &preflights,
            summary: safeguard::lines(&summary),
            reason: safeguard::redacted_command(ctx),
        },
        &mut record,
        &refuse,
    )
}

/// Whether `database` exists on the server `maintenance` reaches; `Err`
/// when that cannot be told either.
pub(super) fn database_exists(
    tools: &PgTools,
    maintenance: &Target,
    database: &str,
) -> Result<bool, String> {
    let sql = format!(
        "select count(*) from pg_database where datname = {}",
        quote_literal(database)
    );
    match tools.query(maintenance, &sql) {
        Ok(rows) => Ok(rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|n| n != "0")),
        Err(_) => Err(format!("cannot ask {maintenance} which databases exist")),
    }
}

fn print_summary(
    op: &Operation<'_>,
    target: &Target,
    pre: Option<&crate::backup::Preflight>,
    out: &mut impl io::Write,
) {
    let _ = writeln!(
        out,
        "dbguard: {} is about to {} (host {}, port {}, user {}):",
        op.tool, op.action, target.host, target.port, target.user
    );
    if let Some(pre) = pre {
        let _ = writeln!(
            out,
            "  {} in {} tables, {} rows (estimated)",
            HumanBytes(pre.facts.size_bytes),
            pre.facts.tables.len(),
            pre.facts
                .tables
                .iter()
                .filter_map(|t| t.rows_estimate)
                .sum::<i64>()
        );
    }
    let _ = writeln!(
        out,
        "  backup first: the whole database \"{}\"",
        target.dbname
    );
}
