//! Reports for people. Colour (when asked for) only ever wraps text that
//! is there without it.

use std::io::{self, Write};

use super::{GuardSummary, Report, kind_and_objects};
use crate::alembic::check::{Method, MigrationCheck, RevisionCheck};
use crate::sql::{ScanReport, Severity};

/// Writes `report` for people. `color` adds ANSI styles.
pub fn text(report: &Report<'_>, out: &mut impl Write, color: bool) -> io::Result<()> {
    match report {
        Report::Scan(scan) => scan_text(scan, out, &Paint { on: color }),
        Report::Migration(check) => migration_text(check, out),
        Report::Guard(summary) => guard_text(summary, out),
    }
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn location(path: &str, line: Option<u64>) -> String {
    match (path.is_empty(), line) {
        (true, _) => String::new(),
        (false, Some(line)) => format!("{path}:{line}: "),
        (false, None) => format!("{path}: "),
    }
}

/// `n` and the noun, in the plural unless `n` is 1 ("1 table", "2
/// tables"); for nouns whose plural adds an `s`.
pub fn plural<N: std::fmt::Display + PartialEq + From<u8>>(n: N, word: &str) -> String {
    if n == N::from(1) {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// ```text
/// migrate.sql:12: drop_table public.users (CASCADE)
///     DROP TABLE public.users CASCADE
/// 1 destructive statement in 3 statements; confirm with DROP
/// ```
fn scan_text(report: &ScanReport, out: &mut impl Write, paint: &Paint) -> io::Result<()> {
    for f in &report.findings {
        let mut head = format!(
            "{}{}",
            paint.wrap("1", &location(&f.path, Some(f.line))),
            kind_and_objects(f, &paint.wrap("1;31", f.kind.as_str()))
        );
        if let Some(implied) = f.implied {
            head.push_str(&format!(" (looks like {implied})"));
        }
        writeln!(out, "{head}")?;
        writeln!(out, "    {}", paint.wrap("2", &f.statement))?;
    }
    if report.findings_omitted > 0 {
        writeln!(
            out,
            "... and {} more destructive statements not listed",
            report.findings_omitted
        )?;
    }
    for p in &report.problems {
        let label = match p.severity {
            Severity::Error => paint.wrap("1;31", "error"),
            Severity::Warning => paint.wrap("1;33", "warning"),
        };
        writeln!(out, "{}{label}: {}", location(&p.path, p.line), p.message)?;
    }
    let total = report.statements;
    match report.worst() {
        Some(worst) => writeln!(
            out,
            "{} in {}; confirm with {}",
            plural(report.destructive_count(), "destructive statement"),
            plural(total, "statement"),
            worst.verb()
        ),
        None => writeln!(
            out,
            "no destructive statements in {}",
            plural(total, "statement")
        ),
    }
}

/// `from -> to (message)` in the direction the range runs.
fn step_name(r: &RevisionCheck, downgrade: bool) -> String {
    let down = if r.down_revision.is_empty() {
        "base"
    } else {
        &r.down_revision
    };
    let message = r
        .message
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    if downgrade {
        format!("{} -> {down}{message}", r.revision)
    } else {
        format!("{down} -> {}{message}", r.revision)
    }
}

/// ```text
/// 0003 -> 0004 (drop users.nickname)  migrations/versions/0004_drop_nickname.py
///   drop_column users.nickname
///       ALTER TABLE users DROP COLUMN nickname
/// ```
fn migration_text(check: &MigrationCheck, out: &mut impl Write) -> io::Result<()> {
    if let Some(note) = &check.note {
        writeln!(out, "note: {note}")?;
    }
    if check.revisions.is_empty() {
        let verb = if check.downgrade { "revert" } else { "apply" };
        return writeln!(out, "no revisions to {verb} in {}", check.range);
    }
    for r in &check.revisions {
        let path = r
            .path
            .as_deref()
            .map(|p| format!("  {p}"))
            .unwrap_or_default();
        if r.findings.is_empty() {
            writeln!(
                out,
                "{}: nothing destructive{path}",
                step_name(r, check.downgrade)
            )?;
            continue;
        }
        writeln!(out, "{}{path}", step_name(r, check.downgrade))?;
        for f in &r.findings {
            // A revision read from its file has the file's lines.
            let at = match r.method {
                Method::Static => format!("line {}: ", f.line),
                Method::Rendered | Method::PerRevision => String::new(),
            };
            let head = kind_and_objects(f, f.kind.as_str());
            writeln!(out, "  {at}{head}\n      {}", f.statement)?;
        }
    }
    let hit = check
        .revisions
        .iter()
        .filter(|r| !r.findings.is_empty())
        .count() as u64;
    let n = check.revisions.len() as u64;
    let ops = check.destructive_count() as u64;
    if hit == 0 {
        writeln!(
            out,
            "{} in {}, nothing destructive",
            plural(n, "revision"),
            check.range
        )
    } else {
        writeln!(
            out,
            "{} in {}, {hit} with destructive operations ({}); review them and back up before applying",
            plural(n, "revision"),
            check.range,
            plural(ops, "operation")
        )
    }
}

/// ```text
///   app.sql:3: drop_table users
///       DROP TABLE users
///   ... and 2 more destructive statements
/// ```
fn guard_text(summary: &GuardSummary<'_>, out: &mut impl Write) -> io::Result<()> {
    let report = summary.report;
    for f in report.findings.iter().take(summary.shown) {
        let head = kind_and_objects(f, f.kind.as_str());
        writeln!(
            out,
            "  {}: {head}\n      {}",
            (summary.locate)(f),
            f.statement
        )?;
    }
    let hidden = report
        .destructive_count()
        .saturating_sub(summary.shown as u64);
    if hidden > 0 {
        writeln!(out, "  ... and {hidden} more destructive statements")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::samples::{self, render};
    use super::*;

    #[test]
    fn scan() {
        let scan = samples::scan();
        insta::assert_snapshot!(render(|out| text(&Report::Scan(&scan), out, false)));
    }

    #[test]
    fn scan_in_color_only_adds_styles() {
        let scan = samples::scan();
        let plain = render(|out| text(&Report::Scan(&scan), out, false));
        let colored = render(|out| text(&Report::Scan(&scan), out, true));
        assert!(!plain.contains('\x1b'));
        assert!(colored.contains('\x1b'));
        let stripped = colored
            .split('\x1b')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    &part[part.find('m').unwrap() + 1..]
                }
            })
            .collect::<String>();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn migration() {
        let check = samples::migration();
        insta::assert_snapshot!(render(|out| text(&Report::Migration(&check), out, false)));
    }

    #[test]
    fn migration_read_from_the_revision_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let check = samples::static_migration(dir.path());
        insta::assert_snapshot!(render(|out| text(&Report::Migration(&check), out, false)));
    }

    #[test]
    fn nothing_to_apply() {
        let check = MigrationCheck::from_render(
            crate::alembic::render::Direction::Upgrade,
            "0004:heads",
            "BEGIN;\n\nCOMMIT;\n",
            "",
            |_| None,
        );
        assert_eq!(
            render(|out| text(&Report::Migration(&check), out, false)),
            "no revisions to apply in 0004:heads\n"
        );
    }

    #[test]
    fn guard_summary_shows_the_first_findings_and_counts_the_rest() {
        let scan = samples::scan();
        let locate = |f: &crate::sql::Finding| format!("line {}", f.line);
        let summary = GuardSummary {
            report: &scan,
            shown: 1,
            locate: &locate,
        };
        insta::assert_snapshot!(render(|out| text(&Report::Guard(summary), out, false)));
    }

    #[test]
    fn a_downgrade_names_each_step_from_the_reverted_revision() {
        use crate::alembic::render::Direction;
        let sql = "BEGIN;\n\n-- Running downgrade 0002 -> 0001\n\nALTER TABLE users DROP COLUMN email;\n\n-- Running downgrade 0001 -> \n\nDROP TABLE users;\n\nCOMMIT;\n";
        let check =
            MigrationCheck::from_render(Direction::Downgrade, "0002:base", sql, "", |_| None);
        let text = render(|out| super::text(&Report::Migration(&check), out, false));
        assert!(
            text.contains("0002 -> 0001\n  drop_column users.email"),
            "{text}"
        );
        assert!(text.contains("0001 -> base\n  drop_table users"), "{text}");
        let none = MigrationCheck::from_render(
            Direction::Downgrade,
            "0001:0001",
            "BEGIN;\n\nCOMMIT;\n",
            "",
            |_| None,
        );
        let text = render(|out| super::text(&Report::Migration(&none), out, false));
        assert_eq!(text, "no revisions to revert in 0001:0001\n");
    }
}
