//! The guard of tools that destroy one database as a whole — `dropdb`, and
//! `pg_restore --clean` into a database: pick the word from the policy,
//! check that the database can be backed up (or that it does not exist, so
//! there is nothing to protect), show what will go, then ask, back up the
//! whole database and record, through the one pipeline in `protect.rs`.

use std::io;

use indicatif::HumanBytes;

use crate::config::Policy;
use crate::pgtools::PgTools;
use crate::pgtools::TableFact;
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
        "dbguard: {} is about to {}\n  (host {}, port {}, user {}):",
        op.tool, op.action, target.host, target.port, target.user
    );
    if let Some(pre) = pre {
        write_tables(&pre.facts.tables, pre.facts.size_bytes, out);
    }
    let _ = writeln!(
        out,
        "  backup first: the whole database \"{}\"",
        target.dbname
    );
}

/// Tables listed by name in a whole-database summary; the rest are counted.
const SHOWN_TABLES: usize = 5;

/// What a whole database holds: its size, tables and rows, then the
/// largest tables by rows. Rows are the planner's estimates (exact for a
/// small table never analysed); a table nobody could count is said so.
pub fn write_tables(tables: &[TableFact], size_bytes: u64, out: &mut impl io::Write) {
    let known: i64 = tables.iter().filter_map(|t| t.rows_estimate).sum();
    let unknown = tables.iter().filter(|t| t.rows_estimate.is_none()).count();
    let unknown = if unknown > 0 {
        format!(" ({unknown} not counted)")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  {} in {} {}, ~{} rows{unknown}",
        HumanBytes(size_bytes),
        tables.len(),
        if tables.len() == 1 { "table" } else { "tables" },
        thousands(known)
    );
    let mut largest: Vec<&TableFact> = tables.iter().collect();
    largest.sort_by_key(|t| std::cmp::Reverse(t.rows_estimate.unwrap_or(-1)));
    for t in largest.iter().take(SHOWN_TABLES) {
        let rows = t.rows_estimate.map_or_else(
            || "rows unknown".to_owned(),
            |n| format!("{} rows", thousands(n)),
        );
        let _ = writeln!(out, "    {}.{}: {rows}", t.schema, t.name);
    }
    if tables.len() > SHOWN_TABLES {
        let _ = writeln!(out, "    and {} more", tables.len() - SHOWN_TABLES);
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: Option<i64>) -> TableFact {
        TableFact {
            schema: "public".into(),
            name: name.into(),
            rows_estimate: rows,
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-4500), "-4,500");
    }

    #[test]
    fn the_largest_tables_are_named_and_uncounted_ones_said_so() {
        let tables: Vec<TableFact> = (1..=7)
            .map(|i| table(&format!("t{i}"), Some(i * 1000)))
            .chain([table("locked", None)])
            .collect();
        let mut out = Vec::new();
        write_tables(&tables, 5 << 20, &mut out);
        insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
          5.00 MiB in 8 tables, ~28,000 rows (1 not counted)
            public.t7: 7,000 rows
            public.t6: 6,000 rows
            public.t5: 5,000 rows
            public.t4: 4,000 rows
            public.t3: 3,000 rows
            and 3 more
        ");
    }
}
