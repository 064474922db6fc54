//! Reporters: a `ScanReport` rendered for people (`text`), for tools
//! (`json`, a stable contract), and for CI (`github`, workflow-command
//! annotations). Each is a pure function writing to any `io::Write`, so
//! output is the same in a terminal, a pipe or a test.

use std::io::{self, Write};

use serde::Serialize;

use super::finding::{Kind, Problem, ScanReport, Severity};

/// Output format of `dbguard scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people: one finding per block, then a summary.
    #[default]
    Text,
    /// One JSON object, for tools.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
}

/// Writes `report` in `format`. `color` applies to text only.
pub fn write(
    format: Format,
    report: &ScanReport,
    out: &mut impl Write,
    color: bool,
) -> io::Result<()> {
    match format {
        Format::Text => text(report, out, color),
        Format::Json => json(report, out),
        Format::Github => github(report, out),
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

/// Text for people:
///
/// ```text
/// migrate.sql:12: drop_table public.users (CASCADE)
///     DROP TABLE public.users CASCADE
/// 1 destructive statement in 3 statements; confirm with DROP
/// ```
pub fn text(report: &ScanReport, out: &mut impl Write, color: bool) -> io::Result<()> {
    let paint = Paint { on: color };
    for f in &report.findings {
        let mut head = format!(
            "{}{}",
            paint.wrap("1", &location(&f.path, Some(f.line))),
            paint.wrap("1;31", f.kind.as_str())
        );
        if !f.objects.is_empty() {
            head.push(' ');
            head.push_str(&f.objects.join(", "));
        }
        if f.cascade {
            head.push_str(" (CASCADE)");
        }
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
    let plural = |n: u64, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    match report.worst() {
        Some(worst) => writeln!(
            out,
            "{} in {}; confirm with {}",
            plural(report.destructive_count(), "destructive statement"),
            plural(total, "statement"),
            worst.verb()
        )?,
        None => writeln!(
            out,
            "no destructive statements in {}",
            plural(total, "statement")
        )?,
    }
    Ok(())
}

/// The JSON contract (DESIGN.md section 5): one object with `statements`
/// and `findings` (each with `path`, `line`, `kind`, `objects`, `cascade`,
/// `statement`, `verb`, and `implied` for dynamic SQL), plus
/// `destructive`, `findings_omitted`, `errors` and `warnings`. Serialised
/// from borrowed views, so a large report is not copied to be printed.
pub fn json(report: &ScanReport, out: &mut impl Write) -> io::Result<()> {
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
    let view = JsonReport {
        statements: report.statements,
        destructive: report.destructive_count(),
        findings: report
            .findings
            .iter()
            .map(|f| JsonFinding {
                path: &f.path,
                line: f.line,
                kind: f.kind.as_str(),
                objects: &f.objects,
                cascade: f.cascade,
                statement: &f.statement,
                verb: f.verb(),
                implied: f.implied.map(Kind::as_str),
            })
            .collect(),
        findings_omitted: report.findings_omitted,
        errors: problems(Severity::Error),
        warnings: problems(Severity::Warning),
    };
    serde_json::to_writer_pretty(&mut *out, &view)?;
    writeln!(out)
}

#[derive(Serialize)]
struct JsonReport<'a> {
    statements: u64,
    destructive: u64,
    findings: Vec<JsonFinding<'a>>,
    findings_omitted: u64,
    errors: Vec<JsonProblem<'a>>,
    warnings: Vec<JsonProblem<'a>>,
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
}

#[derive(Serialize)]
struct JsonProblem<'a> {
    path: &'a str,
    line: Option<u64>,
    message: &'a str,
}

/// GitHub Actions annotations, one line per finding or problem.
pub fn github(report: &ScanReport, out: &mut impl Write) -> io::Result<()> {
    for f in &report.findings {
        let mut message = format!("{}: {}", f.kind.explanation(), f.statement);
        if !f.objects.is_empty() {
            message.push_str(&format!(" (objects: {})", f.objects.join(", ")));
        }
        writeln!(
            out,
            "::error file={},line={},title={}::{}",
            escape_property(&f.path),
            f.line,
            escape_property(&format!("dbguard {}", f.kind)),
            escape_data(&message)
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
    use super::*;

    #[test]
    fn github_escapes() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn text_without_color_has_no_escapes() {
        let report = crate::sql::scan_str("DROP TABLE t;");
        let mut out = Vec::new();
        text(&report, &mut out, false).expect("writing to a Vec cannot fail");
        assert!(!out.contains(&0x1b));
        let mut colored = Vec::new();
        text(&report, &mut colored, true).expect("writing to a Vec cannot fail");
        assert!(colored.contains(&0x1b));
    }
}
