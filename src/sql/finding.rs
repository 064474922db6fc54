//! What a scan produces: the kinds of destructive statement (a table of
//! rules, one entry per kind), one `Finding` per destructive statement, and
//! the `ScanReport` that collects findings, statement counts and problems
//! (unreadable input, missing includes) for one or more inputs.

use serde::Serialize;

/// A kind of destructive statement. The snake-case names are part of the
/// stable CLI contract (`dbguard scan --format json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DropDatabase,
    DropSchema,
    DropTable,
    DropColumn,
    DropOwned,
    DropOther,
    Truncate,
    DeleteAll,
    UpdateAll,
    Dynamic,
    DeleteBulk,
    UpdateBulk,
    External,
}

/// One rule: the data that describes a kind to people and to tools.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub kind: Kind,
    /// snake_case name used in JSON and exit-status contracts.
    pub snake: &'static str,
    /// kebab-case name, for configuration and ignore comments.
    pub kebab: &'static str,
    /// The word a person types to confirm.
    pub verb: &'static str,
    /// One line saying what is lost.
    pub explanation: &'static str,
    /// Higher is worse; used to pick the one word to confirm with when a
    /// script holds several kinds.
    pub severity: u8,
}

/// Every kind, in the order of `Kind`'s variants.
pub const RULES: [Rule; 13] = [
    Rule {
        kind: Kind::DropDatabase,
        snake: "drop_database",
        kebab: "drop-database",
        verb: "DROP",
        explanation: "drops a whole database with every schema, table and row in it",
        severity: 10,
    },
    Rule {
        kind: Kind::DropSchema,
        snake: "drop_schema",
        kebab: "drop-schema",
        verb: "DROP",
        explanation: "drops a schema; with CASCADE every table in it goes too",
        severity: 9,
    },
    Rule {
        kind: Kind::DropTable,
        snake: "drop_table",
        kebab: "drop-table",
        verb: "DROP",
        explanation: "drops a table and all of its rows",
        severity: 8,
    },
    Rule {
        kind: Kind::DropColumn,
        snake: "drop_column",
        kebab: "drop-column",
        verb: "DROP",
        explanation: "loses a column's value in every row (DROP COLUMN, or ALTER ... TYPE ... USING without the column)",
        severity: 5,
    },
    Rule {
        kind: Kind::DropOwned,
        snake: "drop_owned",
        kebab: "drop-owned",
        verb: "DROP",
        explanation: "drops every object owned by a role, tables included",
        severity: 7,
    },
    Rule {
        kind: Kind::DropOther,
        snake: "drop_other",
        kebab: "drop-other",
        verb: "DROP",
        explanation: "drops a database object (view, index, function, constraint, default, ...)",
        severity: 2,
    },
    Rule {
        kind: Kind::Truncate,
        snake: "truncate",
        kebab: "truncate",
        verb: "TRUNCATE",
        explanation: "empties tables, removing every row at once",
        severity: 6,
    },
    Rule {
        kind: Kind::DeleteAll,
        snake: "delete_all",
        kebab: "delete-all",
        verb: "DELETE",
        explanation: "deletes rows with no WHERE, a WHERE that names no column, or through MERGE: every row may go",
        severity: 4,
    },
    Rule {
        kind: Kind::UpdateAll,
        snake: "update_all",
        kebab: "update-all",
        verb: "UPDATE",
        explanation: "updates rows with no WHERE, a WHERE that names no column, or a MERGE that reaches every row: every row changes",
        severity: 3,
    },
    Rule {
        kind: Kind::Dynamic,
        snake: "dynamic",
        kebab: "dynamic",
        verb: "DROP",
        explanation: "runs SQL built at run time (DO block, EXECUTE, \\gexec) that looks destructive",
        severity: 1,
    },
    Rule {
        kind: Kind::DeleteBulk,
        snake: "delete_bulk",
        kebab: "delete-bulk",
        verb: "DELETE",
        explanation: "deletes more rows than the bulk threshold, by the planner's estimate (EXPLAIN, not run)",
        severity: 4,
    },
    Rule {
        kind: Kind::UpdateBulk,
        snake: "update_bulk",
        kebab: "update-bulk",
        verb: "UPDATE",
        explanation: "updates more rows than the bulk threshold, by the planner's estimate (EXPLAIN, not run)",
        severity: 3,
    },
    Rule {
        kind: Kind::External,
        snake: "external",
        kebab: "external",
        verb: "RUN",
        explanation: "hands SQL or a shell command to something outside this session (dblink, COPY ... PROGRAM), where a backup of this database may not reach",
        severity: 1,
    },
];

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::DropDatabase,
        Kind::DropSchema,
        Kind::DropTable,
        Kind::DropColumn,
        Kind::DropOwned,
        Kind::DropOther,
        Kind::Truncate,
        Kind::DeleteAll,
        Kind::UpdateAll,
        Kind::Dynamic,
        Kind::DeleteBulk,
        Kind::UpdateBulk,
        Kind::External,
    ];

    /// The rule describing this kind.
    pub fn rule(self) -> &'static Rule {
        // RULES is written in variant order; the test below pins that.
        &RULES[self as usize]
    }

    /// The snake_case name (`drop_table`), as in JSON output.
    pub fn as_str(self) -> &'static str {
        self.rule().snake
    }

    /// The kebab-case name (`drop-table`).
    pub fn kebab(self) -> &'static str {
        self.rule().kebab
    }

    /// One line saying what a statement of this kind destroys.
    pub fn explanation(self) -> &'static str {
        self.rule().explanation
    }

    /// The word a person types to confirm. For `Dynamic` the precise kind is
    /// unknown; `Finding::verb` does better when the text gave a hint.
    pub fn verb(self) -> &'static str {
        self.rule().verb
    }

    pub fn severity(self) -> u8 {
        self.rule().severity
    }

    /// Parses a snake or kebab name.
    pub fn from_name(name: &str) -> Option<Kind> {
        RULES
            .iter()
            .find(|r| r.snake == name || r.kebab == name)
            .map(|r| r.kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destructive statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The input as named on the command line (`-` for stdin), or the
    /// include's path as written in the script, resolved.
    pub path: String,
    /// 1-based line of the statement's first token.
    pub line: u64,
    pub kind: Kind,
    /// Affected objects, schema-qualified when written so, with
    /// PostgreSQL's identifier folding (`USERS` → `users`, `"Users"` →
    /// `Users`). For drop_column each is `table.column`. Empty when not
    /// known (dynamic SQL, a statement too long to keep whole, a very long
    /// list): treat that as "anything in the database".
    pub objects: Vec<String>,
    /// Whether CASCADE was given: dependents are destroyed too.
    pub cascade: bool,
    /// The statement's text, whitespace collapsed, possibly shortened.
    pub statement: String,
    /// For `dynamic` and `external`: the kind the SQL run elsewhere looks
    /// like, when the text gives it away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implied: Option<Kind>,
    /// `DROP ... IF EXISTS`: the statement does nothing when its object is
    /// missing. Still a finding (a static reading cannot know), but a guard
    /// with a connection can check existence before asking.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub if_exists: bool,
    /// Every object the statement drops or empties was created earlier in
    /// the same input by a plain `CREATE TABLE` that could not have failed
    /// without stopping the input first (see `Scanner`): nothing that
    /// existed before the input runs is lost. Such findings are kept in
    /// `ScanReport::created_here`, not `findings`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub created_in_input: bool,
    /// The statement's key (`sql::key`), by which a confirmation given
    /// before psql starts is recognised when psql sends it; `None` when
    /// the whole text is not known.
    #[serde(skip)]
    pub key: Option<String>,
}

impl Finding {
    /// The confirmation word for this finding: the kind's verb, or for
    /// dynamic SQL the verb of the kind it appears to generate.
    pub fn verb(&self) -> &'static str {
        match (self.kind, self.implied) {
            (Kind::Dynamic | Kind::External, Some(implied)) => implied.verb(),
            (kind, _) => kind.verb(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The scan could not read or follow all of its input: the result must
    /// be treated as destructive.
    Error,
    /// Worth saying, but the result stands.
    Warning,
}

/// Something that went wrong reading the input, as opposed to a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub path: String,
    /// Line in `path`, when the problem has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
}

/// The outcome of scanning one or more inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Statements that would be sent to the server.
    pub statements: u64,
    /// Destructive statements, in input order, at most `MAX_FINDINGS`.
    pub findings: Vec<Finding>,
    /// Findings beyond `MAX_FINDINGS`, counted but not kept, so that memory
    /// stays bounded on any input.
    pub findings_omitted: u64,
    pub problems: Vec<Problem>,
    /// Some SQL is only known when psql runs it (`\gexec`, variables set
    /// at run time): the guard must also check it inside psql.
    #[serde(skip)]
    pub builds_sql_at_run_time: bool,
    /// Drops and truncates of tables the input itself created (see
    /// `Finding::created_in_input`): shown to whoever asks, but not
    /// destructive, since nothing that existed before is lost. At most
    /// `MAX_FINDINGS`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created_here: Vec<Finding>,
    /// DELETEs and UPDATEs with a WHERE, for a guard to estimate
    /// (`estimate`); at most `estimate::MAX_CANDIDATES`.
    #[serde(skip)]
    pub estimate_candidates: Vec<super::estimate::Candidate>,
    /// How many rows each bulk DELETE or UPDATE found by estimate changes,
    /// for the guard's summary (the blast radius).
    #[serde(skip)]
    pub row_estimates: Vec<RowEstimate>,
}

/// The rows a DELETE or UPDATE with a WHERE changes, as judged when it was
/// found to be bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowEstimate {
    /// Where the statement is, as its finding says.
    pub path: String,
    pub line: u64,
    /// Rows changed.
    pub changed: u64,
    /// Rows in the table, when known.
    pub total: Option<u64>,
    /// Counted (a small table the planner knew nothing about), not estimated.
    pub exact: bool,
}

impl ScanReport {
    /// Findings kept in memory; later ones are only counted.
    pub const MAX_FINDINGS: usize = 10_000;
    /// Problems kept in memory; later ones are dropped (the first few say
    /// enough, and an error is an error).
    pub const MAX_PROBLEMS: usize = 1_000;

    pub fn push_finding(&mut self, finding: Finding) {
        if self.findings.len() < Self::MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.findings_omitted += 1;
        }
    }

    /// Keeps a finding about a table the input created itself.
    pub fn push_created_here(&mut self, finding: Finding) {
        if self.created_here.len() < Self::MAX_FINDINGS {
            self.created_here.push(finding);
        }
    }

    pub fn push_problem(&mut self, problem: Problem) {
        if self.problems.len() < Self::MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    /// Total number of destructive statements, kept or not.
    pub fn destructive_count(&self) -> u64 {
        self.findings.len() as u64 + self.findings_omitted
    }

    pub fn is_destructive(&self) -> bool {
        self.destructive_count() > 0
    }

    /// True when some input could not be read or followed; a guard must then
    /// treat the operation as destructive.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// Safe to run without confirmation: nothing destructive and nothing
    /// unread.
    pub fn is_safe(&self) -> bool {
        !self.is_destructive() && !self.has_errors()
    }

    /// The finding whose confirmation word matters most (highest severity,
    /// first in input order on ties).
    pub fn worst(&self) -> Option<&Finding> {
        self.findings.iter().rev().max_by_key(|f| {
            f.implied
                .unwrap_or(f.kind)
                .severity()
                .max(f.kind.severity())
        })
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_in_variant_order() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(RULES[i].kind, *kind);
            assert_eq!(Kind::from_name(kind.as_str()), Some(*kind));
            assert_eq!(Kind::from_name(kind.kebab()), Some(*kind));
            assert_eq!(kind.kebab().replace('-', "_"), kind.as_str());
        }
    }

    #[test]
    fn serde_names_match_snake_names() {
        for kind in Kind::ALL {
            let json = serde_json::to_string(&kind).expect("a unit enum serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn dynamic_verb_follows_the_implied_kind() {
        let mut f = Finding {
            path: "-".into(),
            line: 1,
            kind: Kind::Dynamic,
            objects: vec![],
            cascade: false,
            statement: String::new(),
            implied: Some(Kind::Truncate),
            if_exists: false,
            created_in_input: false,
            key: None,
        };
        assert_eq!(f.verb(), "TRUNCATE");
        f.implied = None;
        assert_eq!(f.verb(), "DROP");
    }

    #[test]
    fn worst_prefers_severity_then_input_order() {
        let mk = |line, kind| Finding {
            path: "a.sql".into(),
            line,
            kind,
            objects: vec![],
            cascade: false,
            statement: String::new(),
            implied: None,
            if_exists: false,
            created_in_input: false,
            key: None,
        };
        let mut report = ScanReport::default();
        report.push_finding(mk(1, Kind::UpdateAll));
        report.push_finding(mk(2, Kind::DropTable));
        report.push_finding(mk(3, Kind::DropTable));
        let worst = report.worst().expect("three findings");
        assert_eq!((worst.line, worst.kind), (2, Kind::DropTable));
    }

    #[test]
    fn findings_beyond_the_cap_are_counted() {
        let mut report = ScanReport::default();
        for line in 0..(ScanReport::MAX_FINDINGS as u64 + 5) {
            report.push_finding(Finding {
                path: "a".into(),
                line,
                kind: Kind::Truncate,
                objects: vec![],
                cascade: false,
                statement: String::new(),
                implied: None,
                if_exists: false,
                created_in_input: false,
                key: None,
            });
        }
        assert_eq!(report.findings.len(), ScanReport::MAX_FINDINGS);
        assert_eq!(report.findings_omitted, 5);
        assert_eq!(
            report.destructive_count(),
            ScanReport::MAX_FINDINGS as u64 + 5
        );
    }
}
