//! Scanning whole psql scripts: reading sources (files, stdin, `-c`
//! strings) in bounded chunks, following `\i`/`\ir`/`\include`/
//! `\include_relative` with a cycle guard and a depth limit, keeping psql
//! variables (`-v NAME=VALUE`, `\set`, `\unset`) across sources as psql
//! does, and turning each statement the lexer finds into findings.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::classify::{self, Context};
use super::estimate;
use super::finding::{Finding, Problem, ScanReport, Severity};
use super::lexer::{Lexer, MetaCommand, Sink, Statement, Terminator};
use super::token::variable_char;

/// Bytes read at a time.
const CHUNK: usize = 128 << 10;
/// How many scripts deep `\i` may nest (the top-level input counts as one).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// How many includes one scan follows in all: a script that includes the
/// same files over and over (each level twice, sixteen levels deep) would
/// otherwise take exponential time.
pub const MAX_INCLUDES: usize = 10_000;
/// Objects listed per finding; a longer list is dropped as unknown.
pub const MAX_OBJECTS: usize = 1_000;
/// Characters of statement text kept in a finding.
const STATEMENT_DISPLAY: usize = 200;

/// One input being read.
struct Frame {
    /// How the input is named in findings.
    label: String,
    /// Canonical path, for the cycle guard (`None` for stdin and strings).
    canonical: Option<PathBuf>,
    /// Directory that `\ir` is relative to.
    base_dir: PathBuf,
}

/// Scans psql scripts. Variables set by one source stay set for the next,
/// as in one psql run (`psql -v a=1 -f x.sql -c '...'`).
pub struct Scanner {
    variables: HashMap<Vec<u8>, Vec<u8>>,
    /// psql's working directory: `\i` paths are relative to it.
    cwd: PathBuf,
    stack: Vec<Frame>,
    includes_followed: usize,
    report: ScanReport,
    /// A `:name` with no value here: psql may know it at run time.
    unresolved: std::cell::Cell<bool>,
    /// The server's `standard_conforming_strings` (on unless told).
    standard_strings: bool,
}

impl Scanner {
    /// A scanner whose `\i` paths are relative to `cwd`.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        Scanner {
            variables: HashMap::new(),
            cwd: cwd.into(),
            stack: Vec::new(),
            includes_followed: 0,
            report: ScanReport::default(),
            unresolved: std::cell::Cell::new(false),
            standard_strings: true,
        }
    }

    /// Lexes `'...'` as a server with `standard_conforming_strings = off`
    /// does when `on` is false: backslashes escape, as in `E'...'`.
    pub fn set_standard_strings(&mut self, on: bool) {
        self.standard_strings = on;
    }

    /// Sets a psql variable, as `-v NAME=VALUE` does.
    pub fn set_variable(&mut self, name: &str, value: &str) {
        self.variables
            .insert(name.as_bytes().to_vec(), value.as_bytes().to_vec());
    }

    /// Applies one `-v` argument: `NAME=VALUE` sets, a bare `NAME` unsets
    /// (psql's reading).
    pub fn apply_assignment(&mut self, assignment: &str) {
        match assignment.split_once('=') {
            Some((name, value)) => self.set_variable(name, value),
            None => {
                self.variables.remove(assignment.as_bytes());
            }
        }
    }

    /// Scans the file at `path` (relative to the scanner's `cwd`).
    pub fn scan_path(&mut self, path: &Path) {
        let label = path.display().to_string();
        self.scan_file(label, &self.cwd.join(path), None);
    }

    /// Scans a stream, such as stdin, named `label` in findings; `\ir`
    /// inside it is relative to `base_dir`.
    pub fn scan_reader(&mut self, label: &str, reader: impl Read, base_dir: &Path) {
        let frame = Frame {
            label: label.to_string(),
            canonical: None,
            base_dir: base_dir.to_path_buf(),
        };
        self.scan_stream(frame, reader, None);
    }

    /// Scans SQL held in memory (a `-c` string, a statement inside psql).
    /// The text goes to the lexer as it is: the guard inside psql scans
    /// every candidate statement, and a read buffer per statement (a large
    /// allocation, zeroed) would cost more than the scan itself.
    pub fn scan_bytes(&mut self, label: &str, sql: &[u8], base_dir: &Path) {
        let frame = Frame {
            label: label.to_string(),
            canonical: None,
            base_dir: base_dir.to_path_buf(),
        };
        self.scan_frame(frame, None, |scanner, lexer| lexer.feed(sql, scanner));
    }

    /// The report so far.
    pub fn report(&self) -> &ScanReport {
        &self.report
    }

    pub fn finish(mut self) -> ScanReport {
        if self.unresolved.get() {
            self.report.builds_sql_at_run_time = true;
        }
        self.report
    }

    /// Opens and scans a file; `include_line` is the line of the `\i` that
    /// named it, for problems.
    fn scan_file(&mut self, label: String, path: &Path, include_line: Option<u64>) {
        let opened = File::open(path).and_then(|f| {
            let canonical = path.canonicalize()?;
            Ok((f, canonical))
        });
        let (file, canonical) = match opened {
            Ok(pair) => pair,
            Err(err) => {
                let message = format!("cannot read {label}: {}", io_message(&err));
                self.problem_at_include(message, include_line);
                return;
            }
        };
        if let Some(pos) = self
            .stack
            .iter()
            .position(|f| f.canonical.as_ref() == Some(&canonical))
        {
            let mut chain: Vec<&str> = self.stack[pos..].iter().map(|f| f.label.as_str()).collect();
            chain.push(&label);
            let message = format!("include cycle: {}", chain.join(" -> "));
            self.problem_at_include(message, include_line);
            return;
        }
        let base_dir = canonical
            .parent()
            .map_or_else(|| self.cwd.clone(), Path::to_path_buf);
        let frame = Frame {
            label,
            canonical: Some(canonical),
            base_dir,
        };
        self.scan_stream(frame, file, include_line);
    }

    fn scan_stream(&mut self, frame: Frame, mut reader: impl Read, include_line: Option<u64>) {
        self.scan_frame(frame, include_line, |scanner, lexer| {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => lexer.feed(&buf[..n], scanner),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        let line = lexer.line();
                        let label = scanner.label().to_string();
                        scanner.push_problem(
                            Severity::Error,
                            Some(line),
                            format!("cannot read {label}: {}", io_message(&err)),
                        );
                        break;
                    }
                }
            }
        });
    }

    /// Scans one input (`frame`) with a fresh lexer that `feed` gives the
    /// bytes to, inside the include-depth limit, and reports input that
    /// ends inside a quote, comment or block.
    fn scan_frame(
        &mut self,
        frame: Frame,
        include_line: Option<u64>,
        feed: impl FnOnce(&mut Self, &mut Lexer),
    ) {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            let message = format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} levels at {}; not followed",
                frame.label
            );
            self.problem_at_include(message, include_line);
            return;
        }
        self.stack.push(frame);
        let mut lexer = Lexer::with_standard_strings(self.standard_strings);
        feed(self, &mut lexer);
        if let Some(open) = lexer.finish(self) {
            self.push_problem(
                Severity::Error,
                Some(open.line),
                format!(
                    "input ends inside a {} that starts here; psql would send the rest of the script as part of it, so the statements after it cannot be judged",
                    open.what
                ),
            );
        }
        self.stack.pop();
    }

    fn label(&self) -> &str {
        self.stack.last().map_or("-", |f| f.label.as_str())
    }

    fn push_problem(&mut self, severity: Severity, line: Option<u64>, message: String) {
        let path = self.label().to_string();
        self.report.push_problem(Problem {
            severity,
            path,
            line,
            message,
        });
    }

    /// A problem with an include is reported at the `\i` line in the
    /// including script (or without a line for a top-level input).
    fn problem_at_include(&mut self, message: String, include_line: Option<u64>) {
        let path = match include_line {
            Some(_) => self.label().to_string(),
            None => String::new(),
        };
        self.report.push_problem(Problem {
            severity: Severity::Error,
            path,
            line: include_line,
            message,
        });
    }

    fn include(&mut self, args: &[u8], relative: bool, line: u64) {
        self.includes_followed += 1;
        if self.includes_followed > MAX_INCLUDES {
            if self.includes_followed == MAX_INCLUDES + 1 {
                self.push_problem(
                    Severity::Error,
                    Some(line),
                    format!(
                        "more than {MAX_INCLUDES} includes in one scan; the rest are not followed"
                    ),
                );
            }
            return;
        }
        let Some(Some(arg)) = self.parse_args(args).into_iter().next() else {
            self.push_problem(
                Severity::Error,
                Some(line),
                "include without a file name that can be known before running (missing, or built by a shell command)".into(),
            );
            return;
        };
        let written = bytes_to_path(&arg);
        let base = if relative {
            self.stack.last().map_or(&self.cwd, |f| &f.base_dir).clone()
        } else {
            self.cwd.clone()
        };
        let path = base.join(&written);
        // Name it as written, joined to the including script's directory
        // for \ir, so the reader can find it.
        let label = if relative && written.is_relative() {
            match self.stack.last().and_then(|f| f.canonical.as_ref()) {
                Some(_) => Path::new(self.label())
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&written)
                    .display()
                    .to_string(),
                None => written.display().to_string(),
            }
        } else {
            written.display().to_string()
        };
        self.scan_file(label, &path, Some(line));
    }

    /// Splits meta-command arguments as psql does for ordinary arguments:
    /// whitespace separates, `'...'` quotes (with `''` and backslash
    /// escapes), `"..."` quotes, `:name` substitutes. `None` for an
    /// argument whose value cannot be known (a backquoted shell command).
    fn parse_args(&self, raw: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            while i < raw.len() && raw[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= raw.len() {
                break;
            }
            let mut arg = Some(Vec::new());
            while i < raw.len() && !raw[i].is_ascii_whitespace() {
                let b = raw[i];
                match b {
                    b'\'' => {
                        i += 1;
                        while i < raw.len() {
                            match raw[i] {
                                b'\'' if raw.get(i + 1) == Some(&b'\'') => {
                                    push(&mut arg, b'\'');
                                    i += 2;
                                }
                                b'\'' => {
                                    i += 1;
                                    break;
                                }
                                b'\\' if i + 1 < raw.len() => {
                                    push(
                                        &mut arg,
                                        match raw[i + 1] {
                                            b'n' => b'\n',
                                            b't' => b'\t',
                                            other => other,
                                        },
                                    );
                                    i += 2;
                                }
                                other => {
                                    push(&mut arg, other);
                                    i += 1;
                                }
                            }
                        }
                    }
                    b'"' => {
                        i += 1;
                        while i < raw.len() && raw[i] != b'"' {
                            push(&mut arg, raw[i]);
                            i += 1;
                        }
                        i += 1;
                    }
                    b'`' => {
                        arg = None;
                        i += 1;
                        while i < raw.len() && raw[i] != b'`' {
                            i += 1;
                        }
                        i += 1;
                    }
                    b':' if raw.get(i + 1).is_some_and(|&c| variable_char(c)) => {
                        let start = i + 1;
                        let mut end = start;
                        while end < raw.len() && variable_char(raw[end]) {
                            end += 1;
                        }
                        match self.variables.get(&raw[start..end]) {
                            Some(value) => {
                                if let Some(a) = arg.as_mut() {
                                    a.extend_from_slice(value);
                                }
                            }
                            None => {
                                if let Some(a) = arg.as_mut() {
                                    a.extend_from_slice(&raw[i..end]);
                                }
                            }
                        }
                        i = end;
                    }
                    _ => {
                        push(&mut arg, b);
                        i += 1;
                    }
                }
            }
            args.push(arg);
        }
        args
    }

    fn set(&mut self, args: &[u8]) {
        let mut parsed = self.parse_args(args).into_iter();
        let Some(Some(name)) = parsed.next() else {
            return;
        };
        // psql joins the remaining arguments without separators.
        let mut value = Some(Vec::new());
        for part in parsed {
            match (value.as_mut(), part) {
                (Some(v), Some(p)) => v.extend_from_slice(&p),
                _ => value = None,
            }
        }
        match value {
            Some(v) => {
                self.variables.insert(name, v);
            }
            // A value computed by a shell command is unknown: leave
            // references to it unsubstituted rather than guess.
            None => {
                self.variables.remove(&name);
            }
        }
    }
}

fn push(arg: &mut Option<Vec<u8>>, b: u8) {
    if let Some(a) = arg.as_mut() {
        a.push(b);
    }
}

#[cfg(unix)]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// An I/O error's message without the "(os error N)" noise.
fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(p) => text[..p].to_string(),
        None => text,
    }
}

impl Scanner {
    /// Keeps a DELETE or UPDATE with a WHERE for the planner's estimate.
    fn note_estimate_candidate(&mut self, statement: &Statement<'_>) {
        if self.report.estimate_candidates.len() >= estimate::MAX_CANDIDATES {
            return;
        }
        // Most statements are neither: skip tokenizing them.
        let head = statement.text.iter().find(|b| !b.is_ascii_whitespace());
        if !matches!(head, Some(b'd' | b'D' | b'u' | b'U' | b'-' | b'/')) {
            return;
        }
        if let Some((kind, table, table_text)) = estimate::candidate(statement.text) {
            let path = self.label().to_string();
            self.report.estimate_candidates.push(estimate::Candidate {
                path,
                line: statement.line,
                kind,
                table,
                table_text,
                statement: display_statement(statement.text, statement.truncated),
                text: String::from_utf8_lossy(statement.text).into_owned(),
                // Only the head of a long statement is kept: not estimable.
                complete: !statement.truncated,
            });
        }
    }
}

impl Sink for Scanner {
    fn variable(&self, name: &[u8]) -> Option<Vec<u8>> {
        let value = self.variables.get(name).cloned();
        // `a[1:2]` asks for a variable named `2`: never one in practice.
        if value.is_none() && name.first().is_some_and(|b| !b.is_ascii_digit()) {
            self.unresolved.set(true);
        }
        value
    }

    fn statement(&mut self, statement: &Statement<'_>) {
        self.report.statements += 1;
        if statement.terminator == Terminator::Gexec {
            self.report.builds_sql_at_run_time = true;
        }
        let context = Context {
            gexec: statement.terminator == Terminator::Gexec,
            truncated: statement.truncated,
        };
        let hits = classify::classify(statement.text, context);
        if hits.is_empty() {
            self.note_estimate_candidate(statement);
            return;
        }
        let text = display_statement(statement.text, statement.truncated);
        let path = self.label().to_string();
        for hit in hits {
            // A list read from a cut statement may miss names, and a huge
            // list is not worth keeping: either way, say "unknown" (empty)
            // so that a backup covers everything rather than a guess.
            let objects = if statement.truncated || hit.objects.len() > MAX_OBJECTS {
                Vec::new()
            } else {
                hit.objects
            };
            self.report.push_finding(Finding {
                path: path.clone(),
                line: statement.line,
                kind: hit.kind,
                objects,
                cascade: hit.cascade,
                statement: text.clone(),
                implied: hit.implied,
            });
        }
    }

    fn meta(&mut self, command: &MetaCommand<'_>) {
        match command.name {
            b"i" | b"include" => self.include(command.args, false, command.line),
            b"ir" | b"include_relative" => self.include(command.args, true, command.line),
            b"set" => self.set(command.args),
            b"unset" => {
                if let Some(Some(name)) = self.parse_args(command.args).into_iter().next() {
                    self.variables.remove(&name);
                }
            }
            b"getenv" => {
                // The value comes from the environment psql runs in; do not
                // pretend to know it.
                if let Some(Some(name)) = self.parse_args(command.args).into_iter().next() {
                    self.variables.remove(&name);
                }
            }
            _ => {}
        }
    }
}

/// A statement's text for people: whitespace runs collapsed, at most
/// `STATEMENT_DISPLAY` characters, an ellipsis where it was cut.
pub fn display_statement(text: &[u8], truncated: bool) -> String {
    let lossy = String::from_utf8_lossy(&text[..text.len().min(STATEMENT_DISPLAY * 4)]);
    let mut out = String::with_capacity(STATEMENT_DISPLAY + 4);
    let mut count = 0;
    let mut cut = truncated || text.len() > STATEMENT_DISPLAY * 4;
    for word in lossy.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= STATEMENT_DISPLAY {
                cut = true;
                break;
            }
            out.push(c);
            count += 1;
        }
        if count >= STATEMENT_DISPLAY {
            cut = true;
            break;
        }
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Kind;

    fn scan(sql: &str) -> ScanReport {
        let mut scanner = Scanner::new("/");
        scanner.scan_bytes("-c", sql.as_bytes(), Path::new("/"));
        scanner.finish()
    }

    #[test]
    fn counts_statements_and_keeps_lines() {
        let report = scan("SELECT 1;\nINSERT INTO t VALUES (1);\n\nDROP TABLE t;\n");
        assert_eq!(report.statements, 3);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].line, 4);
        assert_eq!(report.findings[0].path, "-c");
    }

    #[test]
    fn set_and_v_variables_substitute() {
        let mut scanner = Scanner::new("/");
        scanner.apply_assignment("tbl=accounts");
        scanner.scan_bytes(
            "-c",
            b"DROP TABLE :tbl;\n\\set victim 'Big Table'\nTRUNCATE :\"victim\";\n\\unset tbl\nDROP TABLE :tbl;",
            Path::new("/"),
        );
        let report = scanner.finish();
        let objects: Vec<Vec<String>> = report.findings.iter().map(|f| f.objects.clone()).collect();
        assert_eq!(
            objects,
            vec![
                vec!["accounts".to_string()],
                vec!["Big Table".to_string()],
                vec![]
            ]
        );
    }

    #[test]
    fn set_joins_arguments_and_backquotes_are_unknown() {
        let mut scanner = Scanner::new("/");
        scanner.scan_bytes(
            "-c",
            b"\\set t pub 'lic.x'\nDROP TABLE :t;\n\\set t `echo y`\nDROP TABLE :t;",
            Path::new("/"),
        );
        let report = scanner.finish();
        assert_eq!(report.findings[0].objects, vec!["public.x"]);
        assert_eq!(report.findings[1].objects, Vec::<String>::new());
        assert_eq!(report.findings[1].kind, Kind::DropTable);
    }

    #[test]
    fn display_collapses_and_shortens() {
        assert_eq!(
            display_statement(b"DROP\n  TABLE\tx", false),
            "DROP TABLE x"
        );
        let long = "x ".repeat(500);
        let shown = display_statement(long.as_bytes(), false);
        assert!(shown.ends_with('…'));
        assert!(shown.chars().count() <= STATEMENT_DISPLAY + 1);
        assert_eq!(display_statement(b"DELETE FROM t", true), "DELETE FROM t…");
        assert_eq!(
            display_statement(b"\xff\xfe DROP", false),
            "\u{fffd}\u{fffd} DROP"
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let report = scan("SELECT 1;\nSELECT 'oops;\nDROP TABLE t;");
        assert!(report.has_errors());
        assert_eq!(report.problems[0].line, Some(2));
    }

    #[test]
    fn sql_built_at_run_time_is_noticed() {
        for (sql, built) in [
            ("SELECT 1::int; SELECT a[1:2] FROM t;", false),
            ("SELECT 'drop table t' \\gexec", true),
            ("SELECT :undefined;", true),
            ("\\set t x\nDROP TABLE :t;", false),
        ] {
            assert_eq!(scan(sql).builds_sql_at_run_time, built, "{sql}");
        }
    }

    #[test]
    fn deletes_and_updates_with_a_where_are_kept_for_an_estimate() {
        let report = scan(
            "SELECT 1;\nDELETE FROM t WHERE id > 3;\nupdate s.u set a = 1 where b;\nDELETE FROM t;",
        );
        let found: Vec<(u64, &str)> = report
            .estimate_candidates
            .iter()
            .map(|c| (c.line, c.table.as_str()))
            .collect();
        assert_eq!(found, vec![(2, "t"), (3, "s.u")]);
    }
}
