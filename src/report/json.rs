//! Reports for tools: one pretty-printed JSON object and a newline. The
//! scan's shape is a stable contract (the design notes, section 5).

use std::io::{self, Write};

use serde::Serialize;

use super::Report;
use crate::alembic::check::MigrationCheck;
use crate::sql::{Finding, Kind, Problem, ScanReport, Severity};

/// Writes `report` as JSON. A guard's summary is written as the scan it
/// summarises, whole.
pub fn json(report: &Report<'_>, out: &mut impl Write) -> io::Result<()> {
    match report {
        Report::Scan(scan) => scan_json(scan, out)?,
        Report::Guard(summary) => scan_json(summary.report, out)?,
        Report::Migration(check) => migration_json(check, out)?,
    }
    writeln!(out)
}

/// One object with `statements` and `findings` (each with `path`, `line`,
/// `kind`, `objects`, `cascade`, `statement`, `verb`, `if_exists`,
/// `created_here`, and `implied` for dynamic SQL), plus `destructive`,
/// `findings_omitted`, `errors`, `warnings` and `created_here`: the drops
/// and truncates of tables the input itself created, which are not
/// destructive (each with `created_here` true). Serialised from borrowed
/// views, so a large report is not copied to be printed.
fn scan_json(report: &ScanReport, out: &mut impl Write) -> io::Result<()> {
    let problems = |severity: Severity| -> Vec<JsonProblem<'_>> {
        report
            .problems
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p: &Problem| JsonProblem {
                path: &p.path,
                line: p.line,
                message: &p.message,
            })
            .collect()
    };
    fn finding(f: &Finding) -> JsonFinding<'_> {
        JsonFinding {
            path: &f.path,
            line: f.line,
            kind: f.kind.as_str(),
            objects: &f.objects,
            cascade: f.cascade,
            statement: &f.statement,
            verb: f.verb(),
            implied: f.implied.map(Kind::as_str),
            if_exists: f.if_exists,
            created_here: f.created_in_input,
        }
    }
    let view = JsonReport {
        statements: report.statements,
        destructive: report.destructive_count(),
        findings: report.findings.iter().map(finding).collect(),
        findings_omitted: report.findings_omitted,
        errors: problems(Severity::Error),
        warnings: problems(Severity::Warning),
        created_here: report.created_here.iter().map(finding).collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &view)?;
    Ok(())
}

#[derive(Serialize)]
struct JsonReport<'a> {
    statements: u64,
    destructive: u64,
    findings: Vec<JsonFinding<'a>>,
    findings_omitted: u64,
    errors: Vec<JsonProblem<'a>>,
    warnings: Vec<JsonProblem<'a>>,
    created_here: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    path: &'a str,
    line: u64,
    kind: &'static str,
    objects: &'a [String],
    cascade: bool,
    statement: &'a str,
    verb: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    implied: Option<&'static str>,
    /// `DROP … IF EXISTS`: nothing happens when the object is missing.
    if_exists: bool,
    /// Every object it drops or empties was created earlier in the same
    /// input (`Finding::created_in_input`): nothing that existed before
    /// is lost.
    created_here: bool,
}

#[derive(Serialize)]
struct JsonProblem<'a> {
    path: &'a str,
    line: Option<u64>,
    message: &'a str,
}

/// One object: `range`, `method`, `note`, `destructive` (count) and
/// `revisions`, each with `revision`, `down_revision`, `message`, `path`
/// and `findings`.
fn migration_json(check: &MigrationCheck, out: &mut impl Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        #[serde(flatten)]
        check: &'a MigrationCheck,
        destructive: usize,
    }
    serde_json::to_writer_pretty(
        &mut *out,
        &Doc {
            check,
            destructive: check.destructive_count(),
        },
    )
    .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::super::samples::{self, render};
    use super::*;

    #[test]
    fn scan() {
        let scan = samples::scan();
        insta::assert_snapshot!(render(|out| json(&Report::Scan(&scan), out)));
    }

    #[test]
    fn if_exists_and_created_here_are_shown() {
        let scan = crate::sql::scan_str(
            "BEGIN;\nCREATE TABLE scratch (a int);\nDROP TABLE scratch;\nCOMMIT;\nDROP TABLE IF EXISTS gone;\n",
        );
        insta::assert_snapshot!(render(|out| json(&Report::Scan(&scan), out)));
    }

    #[test]
    fn migration() {
        let check = samples::migration();
        insta::assert_snapshot!(render(|out| json(&Report::Migration(&check), out)));
    }

    #[test]
    fn a_guard_summary_is_the_whole_scan() {
        let scan = samples::scan();
        let locate = |f: &crate::sql::Finding| f.path.clone();
        let guard = super::super::GuardSummary {
            report: &scan,
            shown: 1,
            locate: &locate,
        };
        assert_eq!(
            render(|out| json(&Report::Guard(guard), out)),
            render(|out| json(&Report::Scan(&scan), out))
        );
    }
}
