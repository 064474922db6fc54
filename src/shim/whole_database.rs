//! The guard of tools that destroy one database as a whole — `dropdb`, and
//! `pg_restore --clean` into a database: pick the word from the policy,
//! check that the database can be backed up (or that it does not exist, so
//! there is nothing to protect), show what will go, then ask, back up the
//! whole database and record, through the one pipeline in `protect.rs`.

use std::io;

use indicatif::HumanBytes;

use crate::config::Policy;
use crate::pgtools::PgTools;
use crate::shim::guard::{self, Decision};
use crate::shim::protect::View;
use crate::target::Target;

/// One operation on one database, as the tool's guard describes it.
pub struct Operation<'a> {
    /// The tool's name, for the audit log and messages (`dropdb`).
    pub tool: &'static str,
    /// The operation in a few words, for a refusal: `dropdb "shop"`.
    pub what: String,
    /// What happens to the database, for the summary: `drop database "shop"`.
    pub action: String,
    /// The word to type under the `confirm` policy.
    pub verb: String,
    /// Where the tool connects first; asked whether the database exists
    /// when the database itself cannot be reached.
    pub maintenance: Target,
    /// The database destroyed, found with the real client tools when it
    /// needs them (`None`: they cannot be found); `Err` says why it cannot
    /// be told (a refusal).
    pub target: FindTarget<'a>,
}

/// How an operation finds the database it destroys (see `Operation::target`).
pub type FindTarget<'a> = Box<dyn Fn(Option<&PgTools>) -> Result<Target, String> + 'a>;

impl crate::shim::protect::Operation for Operation<'_> {
    fn tool(&self) -> &'static str {
        self.tool
    }

    fn what(&self) -> String {
        self.what.clone()
    }

    fn audit_target(&self) -> Option<&Target> {
        Some(&self.maintenance)
    }

    fn target(&self, tools: Option<&PgTools>) -> Result<Target, String> {
        (self.target)(tools)
    }

    fn decide(&self, target: &Target, policy: &dyn Fn(&str) -> Policy) -> Decision {
        guard::decide_whole_database(&self.verb, &target.dbname, policy(&target.dbname))
    }

    fn when_absent(&self, database: &str, _target: &Target) -> Option<(Target, String)> {
        Some((
            self.maintenance.clone(),
            format!(
                "dbguard: database \"{database}\" does not exist, so there is nothing to back up; {} runs unguarded",
                self.tool
            ),
        ))
    }

    fn summary(&self, view: &View<'_>, out: &mut Vec<u8>) {
        print_summary(self, view.target, view.preflights.first(), out);
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
