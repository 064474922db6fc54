//! Reports for CI: GitHub Actions workflow commands (`::error file=…`),
//! one line per finding or problem, with the workflow-command escaping
//! written once.

use std::io::{self, Write};

use super::Report;
use crate::alembic::check::{Method, MigrationCheck};
use crate::sql::{Finding, ScanReport, Severity};

/// Writes `report` as GitHub Actions annotations. A guard's summary is
/// annotated as the scan it summarises.
pub fn github(report: &Report<'_>, out: &mut impl Write) -> io::Result<()> {
    match report {
        Report::Scan(scan) => scan_github(scan, out),
        Report::Guard(summary) => scan_github(summary.report, out),
        Report::Migration(check) => migration_github(check, out),
    }
}

/// `what the kind destroys: statement (objects: a, b)`.
fn message(f: &Finding) -> String {
    let mut message = format!("{}: {}", f.kind.explanation(), f.statement);
    if !f.objects.is_empty() {
        message.push_str(&format!(" (objects: {})", f.objects.join(", ")));
    }
    message
}

fn scan_github(report: &ScanReport, out: &mut impl Write) -> io::Result<()> {
    for f in &report.findings {
        writeln!(
            out,
            "::error file={},line={},title={}::{}",
            escape_property(&f.path),
            f.line,
            escape_property(&format!("dbguard {}", f.kind)),
            escape_data(&message(f))
        )?;
    }
    for p in &report.problems {
        let level = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if !p.path.is_empty() {
            props.push(format!("file={}", escape_property(&p.path)));
        }
        if let Some(line) = p.line {
            props.push(format!("line={line}"));
        }
        props.push("title=dbguard".to_string());
        writeln!(
            out,
            "::{level} {}::{}",
            props.join(","),
            escape_data(&p.message)
        )?;
    }
    Ok(())
}

/// One `::error` per operation, on the revision's file (and line, for a
/// static scan); the reason for a static scan as a `::notice` first.
fn migration_github(check: &MigrationCheck, out: &mut impl Write) -> io::Result<()> {
    if let Some(note) = &check.note {
        writeln!(out, "::notice title=dbguard::{}", escape_data(note))?;
    }
    for r in &check.revisions {
        for f in &r.findings {
            let mut props = Vec::new();
            if let Some(p) = &r.path {
                props.push(format!("file={}", escape_property(p)));
                if r.method == Method::Static {
                    props.push(format!("line={}", f.line));
                }
            }
            props.push(format!(
                "title={}",
                escape_property(&format!("dbguard {} in revision {}", f.kind, r.revision))
            ));
            writeln!(
                out,
                "::error {}::{}",
                props.join(","),
                escape_data(&message(f))
            )?;
        }
    }
    Ok(())
}

/// Escapes a workflow-command message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::super::samples::{self, render};
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_data("50%\nnext\r"), "50%25%0Anext%0D");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn scan() {
        let scan = samples::scan();
        insta::assert_snapshot!(render(|out| github(&Report::Scan(&scan), out)));
    }

    #[test]
    fn migration() {
        let check = samples::migration();
        insta::assert_snapshot!(render(|out| github(&Report::Migration(&check), out)));
    }

    #[test]
    fn migration_read_from_the_revision_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let check = samples::static_migration(dir.path());
        insta::assert_snapshot!(render(|out| github(&Report::Migration(&check), out)));
    }
}
