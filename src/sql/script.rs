//! Scanning whole psql scripts: reading sources (files, stdin, `-c`
//! strings) in bounded chunks, following `\i`/`\ir`/`\include`/
//! `\include_relative` with a cycle guard and a depth limit, keeping psql
//! variables (`-v NAME=VALUE`, `\set`, `\unset`) across sources as psql
//! does, and turning each statement the lexer finds into findings.
//!
//! It reads the input the way psql does where that changes what runs:
//!
//! - `\i ~/file` and `\i ~`: psql expands a leading `~` to `$HOME`.
//! - `\i /dev/stdin` (or `/dev/fd/0`): psql reads its own standard input.
//!   `dbguard scan` reads it too (`read_stdin_includes`); a guard cannot
//!   without taking the input from psql, so there the SQL is left to the
//!   check inside psql (`builds_sql_at_run_time`) instead of being an
//!   error.
//! - `-c` strings (`scan_command`): one that starts with a backslash is a
//!   single meta-command, and psql ignores the rest of the string (`-c
//!   '\echo x \\ DROP TABLE t'` drops nothing); any other is sent to the
//!   server as one query string, which stops at its first error.
//! - `\copy (query) to ...` runs its query: judged like `COPY (query) TO`.
//!
//! Tables the input creates itself: a `DROP TABLE` or `TRUNCATE` whose
//! every table was created earlier in the same input by a plain `CREATE
//! TABLE` (not `IF NOT EXISTS`, which may have created nothing) destroys
//! nothing that existed before the input ran, and is kept apart
//! (`ScanReport::created_here`), not reported as destructive. That holds
//! only when a failed CREATE would have stopped the input before the DROP;
//! otherwise (psql carries on after an error by default) the CREATE of a
//! table that already existed fails and the DROP removes the old table. So
//! the exemption needs one of: `ON_ERROR_STOP` on when the CREATE ran
//! (`-v ON_ERROR_STOP=1`, `\set ON_ERROR_STOP on`), the CREATE and the DROP
//! inside one transaction block (explicit, or `psql -1`: an error aborts the
//! rest of the block, unless `ON_ERROR_ROLLBACK` is set), or both in one
//! `-c` query string. A CREATE inside an `\if` block (which may not run)
//! counts for nothing, and an `ON_ERROR_STOP` set inside one is not trusted.
//! A psqlrc file is not read here and could change either variable: the
//! check inside psql stays the backstop. A `\connect` or a `SET
//! search_path` in between forgets what was created (the same name may then
//! mean another table). Without any of these the finding stays: the guard's
//! check inside psql sees the live database either way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::classify::{self, Context, Hit};
use super::estimate;
use super::finding::Kind;
use super::finding::{Finding, Problem, ScanReport, Severity};
use super::key::statement_key;
use super::lexer::{Lexer, MetaCommand, Sink, Statement, Terminator};
use super::token::{Tokenizer, qualified_name, skip_parens, tokens, variable_char};

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
    /// A `-c` string that starts with a backslash: psql runs its first
    /// meta-command only, and ignores the rest.
    single_meta_command: bool,
    /// Set once that meta-command has been seen.
    ignore_rest: bool,
    /// A query string sent whole: the server stops at its first error.
    one_query_string: bool,
}

impl Frame {
    fn new(label: String, canonical: Option<PathBuf>, base_dir: PathBuf) -> Self {
        Frame {
            label,
            canonical,
            base_dir,
            single_meta_command: false,
            ignore_rest: false,
            one_query_string: false,
        }
    }
}

/// Why a table created earlier in the input certainly exists only because
/// of that CREATE, when a later statement drops or empties it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Creation {
    /// ON_ERROR_STOP was on: a failed CREATE would have ended the script.
    stopped_on_error: bool,
    /// The explicit transaction block it ran in, if any.
    transaction: Option<u64>,
    /// The `-c` query string it ran in, if any.
    query_string: Option<u64>,
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
    /// `$HOME`, for `\i ~/...`.
    home: Option<PathBuf>,
    /// Whether `\i /dev/stdin` may be read here (see the module doc).
    read_stdin_includes: bool,
    /// Tables created by a plain CREATE TABLE so far, by folded name.
    created: HashMap<String, Creation>,
    /// The explicit transaction block open now, numbered.
    transaction: Option<u64>,
    /// The `-c` query string being read now, numbered.
    query_string: Option<u64>,
    /// Numbers handed out to transactions and query strings.
    serial: u64,
    /// How many `\if` blocks are open: every branch is read, but only one
    /// runs, so a CREATE inside one may not have run at all.
    conditional_depth: usize,
    /// ON_ERROR_STOP was set or unset inside an `\if` block: its value at
    /// run time is not known.
    on_error_stop_uncertain: bool,
    /// The server's `standard_conforming_strings` (on unless told).
    standard_strings: bool,
    /// Set when the bytes scanned are a masked copy (see
    /// `key_statements_by`).
    as_sent: Option<AsSent>,
}

/// The bytes psql sends, beside the masked copy the lexer reads: masking
/// keeps every byte where it is, so a statement found at some place in the
/// copy was sent as the bytes at the same place.
struct AsSent {
    masked: Vec<u8>,
    sent: Vec<u8>,
    /// Where the last statement found in `masked` ended.
    cursor: usize,
}

impl AsSent {
    /// The key of the statement whose (masked) text is `text`, the next
    /// one in the input: its bytes as sent. `None` (no key, so nothing
    /// confirmed passes for it) when it is not found there whole.
    fn key_of(&mut self, text: &[u8], truncated: bool) -> Option<String> {
        if truncated || text.is_empty() {
            return None;
        }
        let at = self.cursor + memchr::memmem::find(self.masked.get(self.cursor..)?, text)?;
        self.cursor = at + text.len();
        Some(statement_key(self.sent.get(at..self.cursor)?))
    }
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
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            read_stdin_includes: false,
            created: HashMap::new(),
            transaction: None,
            query_string: None,
            serial: 0,
            conditional_depth: 0,
            on_error_stop_uncertain: false,
            standard_strings: true,
            as_sent: None,
        }
    }

    /// The bytes about to be scanned are `masked`, a copy of `sent` in
    /// which the bytes after the first of each multibyte character were
    /// replaced (so that the lexer splits statements where the server
    /// does): statements are keyed (`Finding::key`) by their bytes in
    /// `sent`, the ones psql sends.
    pub fn key_statements_by(&mut self, masked: &[u8], sent: &[u8]) {
        if masked.len() == sent.len() {
            self.as_sent = Some(AsSent {
                masked: masked.to_vec(),
                sent: sent.to_vec(),
                cursor: 0,
            });
        }
    }

    /// Sets the directory `~` stands for in `\i ~/...` (default: `$HOME`).
    pub fn set_home(&mut self, home: Option<PathBuf>) {
        self.home = home;
    }

    /// The whole input runs in one transaction (`psql -1`): a failed
    /// statement makes every later one fail, up to an explicit COMMIT.
    pub fn single_transaction(&mut self) {
        self.serial += 1;
        self.transaction = Some(self.serial);
    }

    /// Lets `\i /dev/stdin` read this process's standard input, as psql
    /// would. Only for a scan that owns stdin (`dbguard scan`); a guard
    /// leaves it to psql.
    pub fn read_stdin_includes(&mut self, allowed: bool) {
        self.read_stdin_includes = allowed;
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
        let frame = Frame::new(label.to_string(), None, base_dir.to_path_buf());
        self.scan_stream(frame, reader, None);
    }

    /// Scans a `psql -c` string as psql runs it: one that starts with a
    /// backslash is a single meta-command (the rest is ignored); any other
    /// goes to the server whole, as one query string.
    pub fn scan_command(&mut self, label: &str, command: &[u8], base_dir: &Path) {
        let mut frame = Frame::new(label.to_string(), None, base_dir.to_path_buf());
        if command.first() == Some(&b'\\') {
            frame.single_meta_command = true;
        } else {
            frame.one_query_string = true;
            self.serial += 1;
            self.query_string = Some(self.serial);
        }
        self.scan_frame(frame, None, |scanner, lexer| lexer.feed(command, scanner));
        self.query_string = None;
    }

    /// Scans SQL held in memory (a `-c` string, a statement inside psql).
    /// The text goes to the lexer as it is: the guard inside psql scans
    /// every candidate statement, and a read buffer per statement (a large
    /// allocation, zeroed) would cost more than the scan itself.
    pub fn scan_bytes(&mut self, label: &str, sql: &[u8], base_dir: &Path) {
        let frame = Frame::new(label.to_string(), None, base_dir.to_path_buf());
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
        if is_stdin(path) {
            self.scan_stdin_include(label, path, include_line);
            return;
        }
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
        let frame = Frame::new(label, Some(canonical), base_dir);
        self.scan_stream(frame, file, include_line);
    }

    /// `\i /dev/stdin`: psql reads its standard input as a script.
    fn scan_stdin_include(&mut self, label: String, path: &Path, include_line: Option<u64>) {
        if !self.read_stdin_includes {
            // Reading it here would take it from psql: leave the SQL to the
            // check inside psql, which sees what psql sends.
            self.report.builds_sql_at_run_time = true;
            return;
        }
        // Opened by name, as psql does, not through `io::stdin()`: the
        // outer input may be stdin too, and holds its lock. A pipe has no
        // canonical path, so there is no cycle check (a pipe cannot
        // include itself).
        match File::open(path) {
            Ok(file) => {
                let frame = Frame::new(label, None, self.cwd.clone());
                self.scan_stream(frame, file, include_line);
            }
            Err(err) => {
                let message = format!("cannot read {label}: {}", io_message(&err));
                self.problem_at_include(message, include_line);
            }
        }
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
        let written = match self.expand_tilde(&arg) {
            Some(path) => path,
            None => {
                self.push_problem(
                    Severity::Error,
                    Some(line),
                    "include of a path under ~ with no home directory known (HOME is not set)"
                        .into(),
                );
                return;
            }
        };
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

    /// psql's `expand_tilde`: a leading `~` alone or before `/` is the home
    /// directory. `None` when that is needed and unknown. (`~user` is left
    /// as written: psql looks it up in the password database, which this
    /// scan does not.)
    fn expand_tilde(&self, arg: &[u8]) -> Option<PathBuf> {
        match arg {
            [b'~'] => self.home.clone(),
            [b'~', b'/', rest @ ..] => Some(self.home.as_ref()?.join(bytes_to_path(rest))),
            _ => Some(bytes_to_path(arg)),
        }
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

/// The names under which a process reads its own standard input.
fn is_stdin(path: &Path) -> bool {
    ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]
        .iter()
        .any(|p| path == Path::new(p))
}

/// psql's reading of a boolean variable (`ON_ERROR_STOP`): a prefix of
/// `true`, `false`, `yes`, `no`, or `on`, `off`, `1`, `0`, any case.
fn psql_bool(value: &[u8]) -> Option<bool> {
    let v = String::from_utf8_lossy(value).to_ascii_lowercase();
    if v.is_empty() {
        return None;
    }
    let prefix_of = |word: &str| word.starts_with(v.as_str());
    if prefix_of("true") || prefix_of("yes") || v == "on" || v == "1" {
        Some(true)
    } else if prefix_of("false") || prefix_of("no") || v == "off" || v == "of" || v == "0" {
        Some(false)
    } else {
        None
    }
}

/// What a statement does to the bookkeeping of created tables.
enum Effect {
    /// `CREATE [TEMP|UNLOGGED] TABLE name` without IF NOT EXISTS.
    CreatesTable(String),
    Begins,
    /// COMMIT, END, ROLLBACK, ABORT (not `ROLLBACK TO`).
    Ends,
    /// `ROLLBACK TO savepoint`: an error before it no longer blocks what
    /// follows.
    RollsBackToSavepoint,
    /// `SET search_path`: unqualified names may now mean other tables.
    ChangesSearchPath,
    None,
}

fn effect(text: &[u8]) -> Effect {
    // Most statements start with none of these: skip tokenizing them.
    let Some(first) = Tokenizer::new(text).next() else {
        return Effect::None;
    };
    let head = |w: &str| first.is(w);
    if !(head("create")
        || head("begin")
        || head("start")
        || head("commit")
        || head("end")
        || head("rollback")
        || head("abort")
        || head("set"))
    {
        return Effect::None;
    }
    let toks = tokens(text);
    if head("begin") || head("start") {
        return Effect::Begins;
    }
    if head("commit") || head("end") || head("abort") {
        return Effect::Ends;
    }
    if head("rollback") {
        let to = toks.iter().skip(1).take(2).any(|t| t.is("to"));
        return if to {
            Effect::RollsBackToSavepoint
        } else {
            Effect::Ends
        };
    }
    if head("set") {
        let search_path = toks.iter().take(3).any(|t| t.is("search_path"));
        return if search_path {
            Effect::ChangesSearchPath
        } else {
            Effect::None
        };
    }
    let mut i = 1;
    while toks.get(i).is_some_and(|t| {
        t.is("global") || t.is("local") || t.is("temp") || t.is("temporary") || t.is("unlogged")
    }) {
        i += 1;
    }
    if !toks.get(i).is_some_and(|t| t.is("table")) || toks.get(i + 1).is_some_and(|t| t.is("if")) {
        return Effect::None;
    }
    match qualified_name(&toks, i + 1) {
        Some((name, _)) => Effect::CreatesTable(name),
        None => Effect::None,
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
    /// Turns the hits of one statement into findings; drops and truncates
    /// of tables the input certainly created itself are kept apart.
    fn record(
        &mut self,
        text: &[u8],
        line: u64,
        truncated: bool,
        key: Option<String>,
        hits: Vec<Hit>,
    ) {
        let shown = display_statement(text, truncated);
        let path = self.label().to_string();
        for hit in hits {
            // A list read from a cut statement may miss names, and a huge
            // list is not worth keeping: either way, say "unknown" (empty)
            // so that a backup covers everything rather than a guess.
            let objects = if truncated || hit.objects.len() > MAX_OBJECTS {
                Vec::new()
            } else {
                hit.objects
            };
            let created_in_input = matches!(hit.kind, Kind::DropTable | Kind::Truncate)
                && !objects.is_empty()
                && objects.iter().all(|o| self.certainly_created(o));
            if hit.kind == Kind::DropTable {
                for object in &objects {
                    self.created.remove(object);
                }
            }
            let finding = Finding {
                path: path.clone(),
                line,
                kind: hit.kind,
                objects,
                cascade: hit.cascade,
                statement: shown.clone(),
                implied: hit.implied,
                if_exists: hit.if_exists,
                created_in_input,
                key: key.clone(),
            };
            if created_in_input {
                self.report.push_created_here(finding);
            } else {
                self.report.push_finding(finding);
            }
        }
    }

    /// True when `table` was created earlier in the input and nothing
    /// after a failed CREATE could have reached this point.
    fn certainly_created(&self, table: &str) -> bool {
        let Some(creation) = self.created.get(table) else {
            return false;
        };
        creation.stopped_on_error
            || (creation.transaction.is_some() && creation.transaction == self.transaction)
            || (creation.query_string.is_some() && creation.query_string == self.query_string)
    }

    /// A `\set` or `\unset` of ON_ERROR_STOP inside an `\if` block makes
    /// its value at run time unknown from then on.
    fn note_on_error_stop_change(&mut self, args: &[u8]) {
        if self.conditional_depth > 0
            && let Some(Some(name)) = self.parse_args(args).into_iter().next()
            && name == b"ON_ERROR_STOP"
        {
            self.on_error_stop_uncertain = true;
        }
    }

    /// Follows CREATE TABLE, transaction blocks and search_path changes.
    fn track_creation(&mut self, text: &[u8]) {
        match effect(text) {
            // A CREATE in a branch that may not run proves nothing.
            Effect::CreatesTable(_) if self.conditional_depth > 0 => {}
            Effect::CreatesTable(name) => {
                let stopped_on_error = !self.on_error_stop_uncertain
                    && self
                        .variables
                        .get(&b"ON_ERROR_STOP"[..])
                        .and_then(|v| psql_bool(v))
                        .unwrap_or(false);
                // With ON_ERROR_ROLLBACK, psql wraps each statement in a
                // savepoint: a failed CREATE no longer aborts the block.
                let rolls_back_errors = self
                    .variables
                    .get(&b"ON_ERROR_ROLLBACK"[..])
                    .is_some_and(|v| psql_bool(v) != Some(false));
                self.created.insert(
                    name,
                    Creation {
                        stopped_on_error,
                        transaction: self.transaction.filter(|_| !rolls_back_errors),
                        query_string: self.query_string,
                    },
                );
            }
            Effect::Begins => {
                if self.transaction.is_none() {
                    self.serial += 1;
                    self.transaction = Some(self.serial);
                }
            }
            Effect::Ends => self.transaction = None,
            Effect::RollsBackToSavepoint => {
                if self.transaction.is_some() {
                    self.serial += 1;
                    self.transaction = Some(self.serial);
                }
            }
            Effect::ChangesSearchPath => self.created.clear(),
            Effect::None => {}
        }
    }

    /// `\copy (query) to ...`: psql sends `COPY (query) TO STDOUT`, which
    /// runs the query. The arguments are the rest of the line, verbatim
    /// (psql substitutes no variables in them).
    fn copy_query(&mut self, command: &MetaCommand<'_>) {
        let args = command.args;
        let toks = tokens(args);
        if !toks.first().is_some_and(|t| t.is_punct(b'(')) {
            return;
        }
        let close = skip_parens(&toks, 0);
        let from = toks.get(1).map_or(args.len(), |t| t.offset);
        let to = match close.checked_sub(1).and_then(|c| toks.get(c)) {
            Some(t) if t.is_punct(b')') && close > 1 => t.offset,
            _ => args.len(),
        };
        let query = &args[from.min(to)..to];
        let hits = classify::classify(query, Context::default());
        if !hits.is_empty() {
            self.record(args, command.line, false, Some(statement_key(args)), hits);
        }
    }

    /// Keeps a DELETE or UPDATE with a WHERE for the planner's estimate.
    /// `sent_key`: the key from the bytes as sent, when they are not the
    /// bytes scanned (`key_statements_by`).
    fn note_estimate_candidate(
        &mut self,
        statement: &Statement<'_>,
        sent_key: Option<Option<String>>,
    ) {
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
                key: sent_key.unwrap_or_else(|| whole_statement_key(statement)),
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
        if self.stack.last().is_some_and(|f| f.ignore_rest) {
            return;
        }
        self.report.statements += 1;
        if statement.terminator == Terminator::Gexec {
            self.report.builds_sql_at_run_time = true;
        }
        let context = Context {
            gexec: statement.terminator == Terminator::Gexec,
            truncated: statement.truncated,
        };
        // Every statement moves the place in the bytes as sent.
        let sent_key = self
            .as_sent
            .as_mut()
            .map(|a| a.key_of(statement.text, statement.truncated));
        let hits = classify::classify(statement.text, context);
        if hits.is_empty() {
            self.note_estimate_candidate(statement, sent_key);
        } else {
            let key = sent_key.unwrap_or_else(|| whole_statement_key(statement));
            self.record(
                statement.text,
                statement.line,
                statement.truncated,
                key,
                hits,
            );
        }
        self.track_creation(statement.text);
    }

    fn meta(&mut self, command: &MetaCommand<'_>) {
        if let Some(frame) = self.stack.last_mut() {
            if frame.ignore_rest {
                return;
            }
            // psql runs one meta-command from a `-c '\...'` string.
            frame.ignore_rest = frame.single_meta_command;
        }
        match command.name {
            b"copy" => self.copy_query(command),
            b"c" | b"connect" => self.created.clear(),
            b"if" => self.conditional_depth += 1,
            b"endif" => self.conditional_depth = self.conditional_depth.saturating_sub(1),
            b"i" | b"include" => self.include(command.args, false, command.line),
            b"ir" | b"include_relative" => self.include(command.args, true, command.line),
            b"set" => {
                self.note_on_error_stop_change(command.args);
                self.set(command.args);
            }
            b"unset" => {
                self.note_on_error_stop_change(command.args);
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

/// The key of the whole statement: hashed from its text when it is held
/// whole, else as the lexer hashed it streaming past.
fn whole_statement_key(statement: &Statement<'_>) -> Option<String> {
    if statement.truncated {
        statement.whole_key.clone()
    } else {
        Some(statement_key(statement.text))
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

    fn kinds(report: &ScanReport) -> Vec<Kind> {
        report.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_backslash_command_string_runs_one_meta_command_only() {
        let mut scanner = Scanner::new("/");
        scanner.scan_command("-c", b"\\echo hi \\\\ DROP TABLE s", Path::new("/"));
        scanner.scan_command("-c", b"\\set t x \\\\ \\set t y", Path::new("/"));
        scanner.scan_command("-c", b"DROP TABLE :t", Path::new("/"));
        let report = scanner.finish();
        assert_eq!(report.statements, 1);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(
            report.findings[0].objects,
            vec!["x"],
            "only the first \\set ran"
        );
        // Not at the very start: the whole string goes to the server.
        let mut scanner = Scanner::new("/");
        scanner.scan_command("-c", b" \\echo hi \\\\ DROP TABLE s", Path::new("/"));
        assert_eq!(kinds(&scanner.finish()), vec![Kind::DropTable]);
    }

    #[test]
    fn tilde_is_the_home_directory() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("x.sql"), "TRUNCATE t;\n").expect("write");
        let mut scanner = Scanner::new("/");
        scanner.set_home(Some(dir.path().to_path_buf()));
        scanner.scan_bytes("-", b"\\i ~/x.sql\n\\ir ~/x.sql\n", Path::new("/"));
        let report = scanner.finish();
        assert_eq!(kinds(&report), vec![Kind::Truncate, Kind::Truncate]);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let mut scanner = Scanner::new("/");
        scanner.set_home(None);
        scanner.scan_bytes("-", b"\\i ~/x.sql\n", Path::new("/"));
        assert!(scanner.finish().has_errors());
    }

    #[test]
    fn stdin_includes_are_left_to_psql_in_a_guard() {
        let report = scan("SELECT 1;\n\\i /dev/stdin\nSELECT 2;\n");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.builds_sql_at_run_time);
    }

    #[test]
    fn backslash_copy_runs_its_query() {
        let report = scan(
            "\\copy (delete from t returning *) to '/tmp/x'\n\\copy (select * from t) to '/tmp/y'\n\\copy t from '/tmp/z'\n",
        );
        assert_eq!(kinds(&report), vec![Kind::DeleteAll]);
        assert_eq!(report.findings[0].objects, vec!["t"]);
        assert_eq!(report.findings[0].line, 1);
    }

    /// (kind, created here) of every finding, kept or set apart.
    fn created(sql: &str, command: bool) -> (Vec<Kind>, Vec<Kind>) {
        let mut scanner = Scanner::new("/");
        if command {
            scanner.scan_command("-c", sql.as_bytes(), Path::new("/"));
        } else {
            scanner.scan_bytes("-", sql.as_bytes(), Path::new("/"));
        }
        let report = scanner.finish();
        assert!(report.created_here.iter().all(|f| f.created_in_input));
        assert!(report.findings.iter().all(|f| !f.created_in_input));
        let here = report.created_here.iter().map(|f| f.kind).collect();
        (kinds(&report), here)
    }

    #[test]
    fn tables_created_by_the_input_are_set_apart_when_a_failed_create_stops_it() {
        let apart = (vec![], vec![Kind::DropTable]);
        for sql in [
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\nDROP TABLE tmp;",
            "\\set ON_ERROR_STOP 1\nCREATE TEMP TABLE tmp AS SELECT 1;\nDROP TABLE tmp;",
            "BEGIN;\nCREATE TABLE tmp (a int);\nINSERT INTO tmp VALUES (1);\nDROP TABLE tmp;\nCOMMIT;",
            "START TRANSACTION; CREATE UNLOGGED TABLE s.tmp (a int); DROP TABLE s.tmp; END;",
        ] {
            assert_eq!(created(sql, false), apart, "{sql}");
        }
        assert_eq!(
            created(
                "CREATE TABLE tmp (a int); TRUNCATE tmp; DROP TABLE tmp",
                true
            ),
            (vec![], vec![Kind::Truncate, Kind::DropTable])
        );
    }

    #[test]
    fn drops_that_may_reach_an_older_table_stay_findings() {
        let kept = vec![Kind::DropTable];
        for sql in [
            // psql carries on after a failed CREATE by default.
            "CREATE TABLE tmp (a int);\nDROP TABLE tmp;",
            "\\set ON_ERROR_STOP off\nCREATE TABLE tmp (a int);\nDROP TABLE tmp;",
            // IF NOT EXISTS over an existing table creates nothing.
            "\\set ON_ERROR_STOP on\nCREATE TABLE IF NOT EXISTS tmp (a int);\nDROP TABLE tmp;",
            // Committed, then the next block: its CREATE error no longer
            // blocks the DROP.
            "BEGIN; CREATE TABLE tmp (a int); COMMIT; BEGIN; DROP TABLE tmp; COMMIT;",
            "BEGIN; CREATE TABLE tmp (a int); ROLLBACK TO SAVEPOINT s; DROP TABLE tmp; COMMIT;",
            // Each statement in its own savepoint: the block survives a
            // failed CREATE.
            "\\set ON_ERROR_ROLLBACK on\nBEGIN; CREATE TABLE tmp (a int); DROP TABLE tmp; COMMIT;",
            // Another table of the same name.
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\nDROP TABLE public.tmp;",
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\nSET search_path = app;\nDROP TABLE tmp;",
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\n\\c other\nDROP TABLE tmp;",
            // Dropped once already: a second DROP finds an older one, if any.
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\nDROP TABLE tmp;\nDROP TABLE tmp;",
            // One of the tables existed before.
            "\\set ON_ERROR_STOP on\nCREATE TABLE tmp (a int);\nDROP TABLE tmp, users;",
            // The CREATE sits in a branch that may not run.
            "\\set ON_ERROR_STOP on\n\\if :fresh\nCREATE TABLE tmp (a int);\n\\endif\nDROP TABLE tmp;",
            // ON_ERROR_STOP may or may not have been set.
            "\\if :strict\n\\set ON_ERROR_STOP on\n\\endif\nCREATE TABLE tmp (a int);\nDROP TABLE tmp;",
        ] {
            let (findings, here) = created(sql, false);
            assert_eq!(findings, kept, "{sql}");
            assert!(here.len() <= 1, "{sql}");
        }
    }

    #[test]
    fn a_single_transaction_run_sets_created_tables_apart() {
        let mut scanner = Scanner::new("/");
        scanner.single_transaction();
        scanner.scan_bytes(
            "-",
            b"CREATE TABLE tmp (a int);\nDROP TABLE tmp;",
            Path::new("/"),
        );
        let report = scanner.finish();
        assert_eq!(report.findings, vec![]);
        assert_eq!(report.created_here.len(), 1);
        let mut scanner = Scanner::new("/");
        scanner.single_transaction();
        scanner.scan_bytes(
            "-",
            b"CREATE TABLE tmp (a int);\nCOMMIT;\nDROP TABLE tmp;",
            Path::new("/"),
        );
        assert_eq!(scanner.finish().findings.len(), 1);
    }
}
