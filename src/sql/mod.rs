//! SQL analysis: finds the destructive statements in psql scripts.
//!
//! The pipeline is `lexer` (bytes → statements and meta-commands, exactly
//! where psql would split them) → `classify` (statement → kinds of
//! destruction, with sqlparser for candidates and a token-level fallback) →
//! `Finding`s collected in a `ScanReport`, which `report` renders as text,
//! JSON or GitHub annotations. `script` drives it: it reads sources in
//! bounded chunks, follows `\i`/`\ir`, and keeps psql variables.
//!
//! Memory stays bounded on any input: input is read in chunks, a
//! statement's text is kept up to `lexer::STATEMENT_CAP` bytes (a longer
//! one is judged by its head, conservatively), COPY data is skipped
//! without being kept, and a report keeps at most
//! `ScanReport::MAX_FINDINGS` findings.
//!
//! The analysis fails closed: a statement that starts like a destructive
//! one but cannot be parsed is still reported, and input that cannot be read
//! or lexed to the end (a missing include, an unterminated quote) becomes an
//! error-level `Problem`, which a guard must treat as destructive.
//!
//! ```
//! use dbguard::sql::{Kind, scan_str};
//!
//! let report = scan_str("SELECT 1; DELETE FROM users WHERE true;");
//! assert_eq!(report.statements, 2);
//! assert_eq!(report.findings[0].kind, Kind::DeleteAll);
//! assert_eq!(report.findings[0].verb(), "DELETE");
//! ```
//!
//! For files, stdin and `-c` strings with psql variables, use `Scanner`:
//!
//! ```no_run
//! use std::path::Path;
//! use dbguard::sql::Scanner;
//!
//! let mut scanner = Scanner::new("/srv/app");
//! scanner.apply_assignment("schema=public");
//! scanner.scan_path(Path::new("migrations/001.sql"));
//! scanner.scan_reader("-", std::io::stdin().lock(), Path::new("/srv/app"));
//! scanner.scan_bytes("-c", b"TRUNCATE :schema.logs", Path::new("/srv/app"));
//! let report = scanner.finish();
//! if !report.is_safe() { /* confirm, back up */ }
//! ```

pub mod classify;
pub mod estimate;
pub mod finding;
pub mod key;
pub mod keyed;
pub mod lexer;
pub mod pinned;
pub mod report;
pub mod script;
pub mod token;

pub use finding::{Finding, Kind, Problem, RULES, RowEstimate, Rule, ScanReport, Severity};
pub use report::Format;
pub use script::Scanner;

/// Scans SQL held in a string, with no variables and `\i` relative to the
/// current directory.
pub fn scan_str(sql: &str) -> ScanReport {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut scanner = Scanner::new(&cwd);
    scanner.scan_bytes("-", sql.as_bytes(), &cwd);
    scanner.finish()
}
