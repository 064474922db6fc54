//! The guard inside a running psql: the decisions the preload library
//! (`preload/`, loaded into the real psql by the shim) takes for every
//! statement psql sends to the server. The library only translates libpq
//! calls; everything that can be decided without a live connection is
//! here, behind the small `Connection` trait, so it is unit-tested.
//!
//! For each statement: scan it (the same scanner as for scripts); when it
//! is destructive, show it, ask on /dev/tty, back up through the live
//! connection's own settings, audit, and let it through. When the answer
//! is no (or the backup fails), the statement is replaced by one that
//! raises an error on the server, so psql prints the reason and an open
//! transaction is aborted exactly as by any failed statement.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::config::Config;
use crate::pgtools::{PgTools, quote_ident, quote_literal};
use crate::sql::estimate::{Candidate, MAX_CANDIDATES, Threshold, add_bulk_findings};
use crate::sql::keyed::keyed_statement;
pub use crate::sql::pinned::unique_keys_query;
use crate::sql::pinned::{covers_a_key, pinned_columns};
use crate::sql::{Kind, ScanReport, Scanner};
use crate::target::Target;
use crate::{Context, Error};

pub use crate::env::{LIVE_CONFIRMED as CONFIRMED_ENV, PRELOAD as PRELOAD_ENV};

/// What the preload library's first stage shares with the shim and the
/// check: the file names of both stages (`PRELOAD_FILE`, the first stage
/// psql gets in `LD_PRELOAD`; `CHECK_FILE`, the check it loads from its own
/// directory, this module behind it), the version of the check's entry
/// points, and the statement that refuses. One source file: the first
/// stage is `no_std` and cannot depend on this crate.
#[path = "../../preload/first/src/abi.rs"]
mod abi;
pub use abi::{ABI_VERSION, CHECK_FILE, PRELOAD_FILE, refusal_statement};

// The first stage names the confirmed-statements variable itself; it must
// be the one `env` (the foundation, which cannot import this module)
// defines and documents with every other variable.
const _: () = assert!(
    same_str(abi::CONFIRMED_ENV, CONFIRMED_ENV),
    "the first stage's CONFIRMED_ENV differs from env::LIVE_CONFIRMED"
);

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// How long a backup taken from inside a session waits for a table lock.
/// The session's own open transaction may hold it (`BEGIN; ALTER TABLE t
/// ...; DROP TABLE t;`): waiting longer would only hang psql.
pub const LOCK_TIMEOUT_MS: u32 = 10_000;

/// The label findings of a live statement carry instead of a file name.
pub const STATEMENT_LABEL: &str = "statement";

/// The transaction state of the connection, as libpq reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    Active,
    InTransaction,
    InError,
    Unknown,
}

impl TxStatus {
    /// From `PQtransactionStatus`'s `PGTransactionStatusType`.
    pub fn from_libpq(value: i32) -> TxStatus {
        match value {
            0 => TxStatus::Idle,
            1 => TxStatus::Active,
            2 => TxStatus::InTransaction,
            3 => TxStatus::InError,
            _ => TxStatus::Unknown,
        }
    }
}

/// What the guard needs from a live libpq connection.
pub trait Connection {
    /// The connection's settings (`PQconninfo`, with the host and port it
    /// actually reached), password included.
    fn settings(&self) -> Vec<(String, String)>;
    fn transaction(&self) -> TxStatus;
    /// A setting the server reports on this connection
    /// (`PQparameterStatus`: `standard_conforming_strings`,
    /// `client_encoding`), `None` when unknown.
    fn parameter(&self, _name: &str) -> Option<String> {
        None
    }
    /// Runs `EXPLAIN` statements on the connection in one round trip,
    /// leaving the session's state as it was (inside a transaction, under
    /// a savepoint rolled back afterwards); each one's output in order, or
    /// `None` where it failed or did not run.
    fn explain(&self, statements: &[String]) -> Vec<Option<String>>;
    /// Runs one query the same way (state left as it was) and gives the
    /// first value of its first row; `None` when it failed, returned no
    /// row, or the value was empty.
    fn query_value(&self, sql: &str) -> Option<String> {
        self.explain(&[sql.to_owned()]).pop().flatten()
    }
    /// What tells this connection from another (after `\c`): the server
    /// and database it reached, as the user it logged in as.
    fn identity(&self) -> String {
        let settings = self.settings();
        ["host", "hostaddr", "port", "dbname", "user"]
            .iter()
            .map(|k| {
                settings
                    .iter()
                    .find(|(key, _)| key == k)
                    .map_or("", |(_, v)| v.as_str())
            })
            .collect::<Vec<_>>()
            .join("\0")
    }
}

/// What to do with a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it as it is.
    Send,
    /// Send this instead: it raises the refusal as an error on the server.
    Replace(String),
}

/// The per-process state of the live guard.
pub struct LiveGuard {
    ctx: Context,
    /// Statements confirmed by the script pre-flight, with how many times
    /// each may still pass unasked.
    confirmed: Mutex<HashMap<String, u32>>,
    /// The bulk threshold, read from the configuration once per session.
    threshold: OnceLock<Option<Threshold>>,
    /// The unique keys of the tables seen so far on this connection.
    keys: Mutex<KeyCache>,
    /// The tables this session created itself (see `Created`).
    created: Mutex<Created>,
}

/// Tables the session really created: a `CREATE TABLE` whose query string
/// succeeded. Dropping or truncating such a table destroys nothing that
/// was there before the session, so it is not asked about (squawk and
/// Atlas exempt these too). They are known by their OID, so a later
/// `search_path` change, a rollback that undid the CREATE, or another
/// session's table of the same name never counts.
///
/// `CREATE TABLE IF NOT EXISTS` over an existing table creates nothing;
/// the server says so only in a notice (SQLSTATE 42P07, "relation …
/// already exists, skipping"), which the library watches for. Such names
/// count only when notices reach the session (`client_min_messages` at
/// `notice` or below) and no 42P07 came with the string's results.
#[derive(Default)]
struct Created {
    identity: String,
    /// Created by the string being sent now, if it succeeds (names as
    /// written, folded).
    pending: Vec<String>,
    /// Named by `CREATE TABLE IF NOT EXISTS` in the string being sent now:
    /// created if it succeeds and no notice said one was skipped.
    pending_if_not_exists: Vec<String>,
    /// A notice said a `CREATE … IF NOT EXISTS` of this string skipped.
    pending_skipped: bool,
    /// A result of the string being sent now failed.
    pending_failed: bool,
    /// Created by a string that succeeded, OIDs not yet looked up (the
    /// connection was busy with its results then).
    unresolved: Vec<String>,
    oids: Vec<u32>,
}

/// Unique keys learned from the server, per table as written in the
/// statements (so valid for one connection and one search_path): the
/// column lists of each key, or `None` when the table could not be looked
/// up or does not qualify.
#[derive(Default)]
struct KeyCache {
    identity: String,
    tables: HashMap<String, Option<Vec<Vec<String>>>>,
    /// Something that may change names or keys ran inside the open
    /// transaction: forget again when it ends (`SET LOCAL` ends there).
    changed_in_transaction: bool,
}

/// First words of statements that can neither change a table's keys nor
/// what a name resolves to. Anything else (DDL, `SET`, `RESET`, `DISCARD`,
/// `ROLLBACK`, `CALL`, `DO`, several statements in one string) makes the
/// guard forget what it learned.
const KEEPS_KEYS: [&str; 27] = [
    "select",
    "insert",
    "update",
    "delete",
    "with",
    "values",
    "table",
    "begin",
    "start",
    "commit",
    "end",
    "savepoint",
    "release",
    "explain",
    "show",
    "fetch",
    "move",
    "close",
    "declare",
    "copy",
    "prepare",
    "execute",
    "deallocate",
    "listen",
    "notify",
    "unlisten",
    "lock",
];

impl LiveGuard {
    /// `ctx` is the process as psql sees it (the library's own variables
    /// already removed); `confirmed` the keys the pre-flight passed on.
    pub fn new(ctx: Context, confirmed: &[String]) -> LiveGuard {
        let mut map = HashMap::new();
        for key in confirmed {
            *map.entry(key.clone()).or_insert(0) += 1;
        }
        LiveGuard {
            ctx,
            confirmed: Mutex::new(map),
            threshold: OnceLock::new(),
            keys: Mutex::new(KeyCache::default()),
            created: Mutex::new(Created::default()),
        }
    }

    /// psql is about to send `sql` (after `check` let it through): tables
    /// it creates are remembered if every result of it succeeds. Only a
    /// string of plain statements counts: one that may change what a name
    /// resolves to (`SET search_path`) would make the later lookup lie.
    ///
    /// True when the string holds a `CREATE TABLE IF NOT EXISTS` whose
    /// outcome the server tells in a notice: the caller then passes the
    /// SQLSTATE of every notice of this string to `notice`.
    pub fn will_send(&self, conn: &dyn Connection, sql: &[u8]) -> bool {
        let Ok(mut created) = self.created.lock() else {
            return false;
        };
        let identity = conn.identity();
        if created.identity != identity {
            *created = Created {
                identity,
                ..Created::default()
            };
        }
        let lexical = Lexical::of(conn);
        let sql = lexical.masked(sql);
        let names = tables_created(&sql, lexical.standard_strings);
        created.pending = names.plain;
        created.pending_if_not_exists = names.if_not_exists;
        created.pending_skipped = false;
        created.pending_failed = false;
        if created.pending_if_not_exists.is_empty() {
            return false;
        }
        // A skipped CREATE says so only in a notice, and a session that
        // hides notices would hear nothing: those names then never count.
        let notices_reach_us = conn
            .query_value("SELECT pg_catalog.current_setting('client_min_messages')")
            .is_some_and(|level| notices_visible_at(&level));
        if !notices_reach_us {
            created.pending_if_not_exists.clear();
        }
        notices_reach_us
    }

    /// A notice (its SQLSTATE) that came with the string being sent.
    pub fn notice(&self, sqlstate: &[u8]) {
        // 42P07 duplicate_table: "relation … already exists, skipping".
        if sqlstate == b"42P07"
            && let Ok(mut created) = self.created.lock()
        {
            created.pending_skipped = true;
        }
    }

    /// One result of the string being sent; `ok` false for an error.
    pub fn result(&self, ok: bool) {
        if !ok && let Ok(mut created) = self.created.lock() {
            created.pending_failed = true;
        }
    }

    /// The string's last result was read: what it created now exists.
    pub fn results_done(&self) {
        let Ok(mut created) = self.created.lock() else {
            return;
        };
        let pending = std::mem::take(&mut created.pending);
        let if_not_exists = std::mem::take(&mut created.pending_if_not_exists);
        // Which of several IF NOT EXISTS the notice was about, the notice
        // says only in words: one skip makes none of them count.
        let skipped = std::mem::take(&mut created.pending_skipped);
        if !std::mem::take(&mut created.pending_failed) {
            created.unresolved.extend(pending);
            if !skipped {
                created.unresolved.extend(if_not_exists);
            }
        }
    }

    /// True when every table `report` drops or truncates is one this
    /// session created, and nothing else in it is destructive.
    fn only_own_tables(&self, conn: &dyn Connection, report: &ScanReport) -> bool {
        if report.findings.is_empty()
            || report.has_errors()
            || report.findings_omitted > 0
            || !report.estimate_candidates.is_empty()
        {
            return false;
        }
        let own = |f: &crate::sql::Finding| {
            matches!(f.kind, Kind::DropTable | Kind::Truncate)
                && !f.cascade
                && !f.objects.is_empty()
        };
        if !report.findings.iter().all(own) {
            return false;
        }
        let Ok(mut created) = self.created.lock() else {
            return false;
        };
        let identity = conn.identity();
        if created.identity != identity {
            *created = Created {
                identity,
                ..Created::default()
            };
            return false;
        }
        if !created.unresolved.is_empty() {
            let names = std::mem::take(&mut created.unresolved);
            let found = conn
                .query_value(&format!(
                    "SELECT string_agg(pg_catalog.to_regclass(x)::oid::text, ',') FROM unnest(ARRAY[{}]::text[]) x",
                    regclass_list(&names)
                ))
                .unwrap_or_default();
            created
                .oids
                .extend(found.split(',').filter_map(|o| o.parse::<u32>().ok()));
        }
        if created.oids.is_empty() {
            return false;
        }
        let objects: Vec<String> = report
            .findings
            .iter()
            .flat_map(|f| f.objects.iter().cloned())
            .collect();
        let oids: Vec<String> = created.oids.iter().map(u32::to_string).collect();
        conn.query_value(&format!(
            "SELECT bool_and(coalesce(pg_catalog.to_regclass(x)::oid = ANY (ARRAY[{}]::oid[]), false))::text FROM unnest(ARRAY[{}]::text[]) x",
            oids.join(","),
            regclass_list(&objects)
        ))
        .is_some_and(|v| v == "true")
    }

    /// Sees every statement psql sends (before `check`, and whether or
    /// not it is checked), to forget learned keys when one may change them.
    pub fn observe(&self, conn: &dyn Connection, sql: &[u8]) {
        let Ok(mut cache) = self.keys.lock() else {
            return;
        };
        let start = sql
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(sql.len());
        let rest = &sql[start..];
        let len = rest
            .iter()
            .position(|b| !(b.is_ascii_alphabetic() || *b == b'_'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let several = memchr::memchr(b';', rest)
            .is_some_and(|at| rest[at + 1..].iter().any(|b| !b.is_ascii_whitespace()));
        let keeps = !several
            && KEEPS_KEYS
                .iter()
                .any(|k| word.eq_ignore_ascii_case(k.as_bytes()));
        let ends_transaction =
            word.eq_ignore_ascii_case(b"commit") || word.eq_ignore_ascii_case(b"end");
        if !keeps {
            cache.tables.clear();
            if conn.transaction() == TxStatus::InTransaction {
                cache.changed_in_transaction = true;
            }
        } else if ends_transaction && cache.changed_in_transaction {
            cache.tables.clear();
            cache.changed_in_transaction = false;
        }
    }

    /// True when the candidate changes at most one row: its WHERE pins
    /// every column of a unique key of its table. The keys are learned
    /// from the server once per table and connection.
    fn at_most_one_row(&self, conn: &dyn Connection, candidate: &Candidate) -> bool {
        let Some(pinned) = pinned_columns(candidate.text.as_bytes()) else {
            return false;
        };
        self.pins_a_key(conn, &candidate.table_text, &pinned)
    }

    /// True when `pinned` covers a unique key of `table` (as written in
    /// the statement, resolved on the session's search_path).
    fn pins_a_key(&self, conn: &dyn Connection, table: &str, pinned: &[String]) -> bool {
        let Ok(mut cache) = self.keys.lock() else {
            return false;
        };
        let identity = conn.identity();
        if cache.identity != identity {
            cache.tables.clear();
            cache.identity = identity;
        }
        let keys = cache.tables.entry(table.to_owned()).or_insert_with(|| {
            unique_keys_query(table)
                .and_then(|sql| conn.query_value(&sql))
                .and_then(|json| serde_json::from_str(&json).ok())
        });
        keys.as_deref()
            .is_some_and(|keys| covers_a_key(pinned, keys))
    }

    /// The bulk threshold, read from the configuration once per session;
    /// `None` when estimates are turned off.
    fn threshold(&self) -> Option<Threshold> {
        *self
            .threshold
            .get_or_init(|| match Config::load(&self.ctx) {
                Ok(config) => config.bulk_threshold(),
                Err(_) => Some(Threshold::default()),
            })
    }

    /// Decides about `sql`, asking and backing up when it is destructive.
    pub fn check(&self, conn: &dyn Connection, sql: &[u8]) -> Verdict {
        if !crate::sql::classify::may_hold_candidate(sql) {
            // Most statements: no destructive keyword anywhere, no scan.
            return Verdict::Send;
        }
        // The server reads the bytes with the connection's own settings.
        let lexical = Lexical::of(conn);
        let masked = lexical.masked(sql);
        let original = sql;
        let sql: &[u8] = &masked;
        let state = conn.transaction();
        let estimating = matches!(state, TxStatus::Idle | TxStatus::InTransaction);
        if let Some(keyed) = keyed_statement(sql)
            && (!estimating
                || self.threshold().is_none()
                || self.pins_a_key(conn, &keyed.table, &keyed.columns))
        {
            // `DELETE FROM t WHERE id = 5` and the like, sent by the
            // thousand: a WHERE naming a column is never destructive by
            // its text, and one pinning a unique key changes one row at
            // most, so it is never bulk either. No scan, no parse.
            return Verdict::Send;
        }
        // Statements are split where the server splits the masked bytes;
        // each is known by the key of its bytes as sent, which is what
        // the pre-flight hashed when it split the same way.
        let as_sent = matches!(masked, std::borrow::Cow::Owned(_)).then_some(original);
        let mut report = scan_as(&self.ctx, sql, lexical.standard_strings, as_sent);
        if report.estimate_candidates.len() >= MAX_CANDIDATES {
            // The scanner keeps so many; the rest of this one string could
            // not be estimated, which must not pass for "not bulk".
            report.push_problem(crate::sql::Problem {
                severity: crate::sql::Severity::Error,
                path: STATEMENT_LABEL.to_owned(),
                line: None,
                message: format!(
                    "more than {MAX_CANDIDATES} DELETE or UPDATE statements in one string: not all of them can be estimated"
                ),
            });
        }
        if state == TxStatus::InError {
            if report.statements <= 1 {
                // The server refuses every statement but the end of the
                // transaction now: a lone statement cannot destroy.
                return Verdict::Send;
            }
            // `ROLLBACK; DROP …` ends the failed transaction and goes on.
            // Nothing can be estimated on an aborted connection: each
            // DELETE or UPDATE with a WHERE after it counts as bulk.
            for c in std::mem::take(&mut report.estimate_candidates) {
                report.push_finding(c.finding());
            }
        }
        if !report.estimate_candidates.is_empty() && estimating {
            // The connection is idle between statements: ask its planner.
            if let Some(threshold) = self.threshold() {
                if report.statements == 1 {
                    // One row at most is never bulk: no estimate needed.
                    report
                        .estimate_candidates
                        .retain(|c| !self.at_most_one_row(conn, c));
                }
                if !report.estimate_candidates.is_empty() {
                    // A single statement's key was ruled on above.
                    let check_keys = report.statements > 1;
                    add_bulk_findings(&mut report, &threshold, check_keys, |sql| conn.explain(sql));
                }
            }
        }
        if report.is_safe() {
            return Verdict::Send;
        }
        if estimating && self.only_own_tables(conn, &report) {
            return Verdict::Send;
        }
        if self.take_confirmed(&report) {
            return Verdict::Send;
        }
        let target = Target::from_settings(&conn.settings(), |_| None);
        let tools = || {
            let psql = std::env::current_exe().map_err(|e| Error::io("/proc/self/exe", e))?;
            // Backups give up on a table lock rather than wait for this
            // session's own open transaction.
            PgTools::beside_psql(&self.ctx, psql).map(|t| t.with_lock_timeout(LOCK_TIMEOUT_MS))
        };
        let place = match state {
            TxStatus::InTransaction | TxStatus::InError => crate::error::Place::Transaction,
            _ => crate::error::Place::Session,
        };
        // Only an open transaction holds locks past its statement.
        let own_locks = |tables: Option<&[String]>| {
            if state == TxStatus::InTransaction {
                own_locks(conn, tables)
            } else {
                Vec::new()
            }
        };
        match crate::shim::statements::protect_on(
            &self.ctx, target, &report, tools, place, own_locks,
        ) {
            Ok(()) => Verdict::Send,
            Err(e) => Verdict::Replace(refusal_statement(&e.to_string())),
        }
    }

    /// True (and the keys used up) when the pre-flight confirmed every
    /// destructive statement in `report`.
    fn take_confirmed(&self, report: &ScanReport) -> bool {
        if report.has_errors() || report.findings_omitted > 0 {
            return false;
        }
        let Ok(mut confirmed) = self.confirmed.lock() else {
            return false;
        };
        if confirmed.is_empty() {
            return false;
        }
        let mut keys: Vec<&String> = Vec::new();
        for f in &report.findings {
            let Some(key) = &f.key else {
                return false;
            };
            // Several findings of one statement share one confirmation.
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let all_there = keys
            .iter()
            .all(|k| confirmed.get(*k).is_some_and(|n| *n > 0));
        if !all_there {
            return false;
        }
        for k in keys {
            if let Some(n) = confirmed.get_mut(k) {
                *n -= 1;
            }
        }
        true
    }
}

/// The tables among `tables` (`None`: any) on which this session holds an
/// ACCESS EXCLUSIVE lock: pg_dump's ACCESS SHARE lock on them would wait
/// for this session's transaction, which waits for the backup. Asked on
/// the session's own connection, so `pg_backend_pid()` is the session.
fn own_locks(conn: &dyn Connection, tables: Option<&[String]>) -> Vec<String> {
    let only = tables.map_or_else(String::new, |names| {
        let regs: Vec<String> = names
            .iter()
            .map(|n| {
                let quoted: Vec<String> = n.split('.').map(quote_ident).collect();
                format!("to_regclass({})", quote_literal(&quoted.join(".")))
            })
            .collect();
        format!(" and c.oid in ({})", regs.join(", "))
    });
    let sql = format!(
        "select string_agg(distinct c.oid::regclass::text, ', ') from pg_locks l \
         join pg_class c on c.oid = l.relation \
         where l.pid = pg_backend_pid() and l.locktype = 'relation' and l.granted \
         and l.mode = 'AccessExclusiveLock' and c.relkind in ('r', 'p', 'm'){only}"
    );
    conn.query_value(&sql)
        .map(|list| list.split(", ").map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Scans one statement (or `\;`-joined statements) as psql sends it.
pub fn scan(ctx: &Context, sql: &[u8]) -> ScanReport {
    scan_as(ctx, sql, true, None)
}

/// `scan` for a server with the given `standard_conforming_strings`;
/// `as_sent` holds the bytes psql sends when `sql` is their masked copy.
fn scan_as(
    ctx: &Context,
    sql: &[u8],
    standard_strings: bool,
    as_sent: Option<&[u8]>,
) -> ScanReport {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| "/".into());
    let mut scanner = Scanner::new(&cwd);
    scanner.set_standard_strings(standard_strings);
    if let Some(as_sent) = as_sent {
        scanner.key_statements_by(sql, as_sent);
    }
    scanner.scan_bytes(STATEMENT_LABEL, sql, Path::new(&cwd));
    scanner.finish()
}

/// How the server reads the bytes of a query string on one connection.
struct Lexical {
    /// `standard_conforming_strings`: off on legacy databases, where a
    /// backslash in `'...'` escapes the next character.
    standard_strings: bool,
    /// The bytes a character of `client_encoding` spans, when that
    /// encoding lets a byte after the first be `\` or `'` (SJIS, BIG5,
    /// GBK, UHC, GB18030, JOHAB: client-only encodings for this reason).
    char_len: Option<fn(&[u8]) -> usize>,
}

impl Lexical {
    fn of(conn: &dyn Connection) -> Lexical {
        let standard_strings = conn
            .parameter("standard_conforming_strings")
            .is_none_or(|v| !v.eq_ignore_ascii_case("off"));
        let char_len = conn
            .parameter("client_encoding")
            .and_then(|e| unsafe_encoding_char_len(&e));
        Lexical {
            standard_strings,
            char_len,
        }
    }

    /// The bytes as the lexer must see them: in an unsafe encoding, every
    /// byte after the first of a character becomes 0xFF, as psql's own
    /// lexer does (psqlscan.l, `prepare_buffer`), so a trailing 0x5C is
    /// never taken for a backslash. Borrowed as they are otherwise.
    fn masked<'a>(&self, sql: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let Some(char_len) = self.char_len else {
            return std::borrow::Cow::Borrowed(sql);
        };
        if sql.is_ascii() {
            return std::borrow::Cow::Borrowed(sql);
        }
        let mut out = sql.to_vec();
        let mut i = 0;
        while i < out.len() {
            let len = char_len(&sql[i..]).max(1);
            for b in out.iter_mut().skip(i + 1).take(len - 1) {
                *b = 0xFF;
            }
            i += len;
        }
        std::borrow::Cow::Owned(out)
    }
}

/// For the client encodings whose multibyte characters may hold ASCII
/// bytes after the first, the length of the character at the start of
/// the slice (PostgreSQL's `pg_*_mblen`); `None` for every other encoding.
fn unsafe_encoding_char_len(encoding: &str) -> Option<fn(&[u8]) -> usize> {
    let name: String = encoding
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    fn high(b: &[u8]) -> bool {
        b.first().is_some_and(|b| *b >= 0x80)
    }
    let f: fn(&[u8]) -> usize = match name.as_str() {
        "SJIS" | "SHIFTJIS" | "MSKANJI" | "WIN932" | "WINDOWS932" | "SHIFTJIS2004" => {
            |s| match s.first() {
                Some(0xA1..=0xDF) => 1,
                Some(b) if *b >= 0x80 => 2,
                _ => 1,
            }
        }
        "BIG5" | "WIN950" | "WINDOWS950" | "GBK" | "WIN936" | "WINDOWS936" | "UHC" | "WIN949"
        | "WINDOWS949" => |s| if high(s) { 2 } else { 1 },
        "GB18030" => |s| {
            if !high(s) {
                1
            } else if s.get(1).is_some_and(|b| (0x30..=0x39).contains(b)) {
                4
            } else {
                2
            }
        },
        "JOHAB" => |s| match s.first() {
            Some(0x8F) => 3,
            Some(b) if *b >= 0x80 => 2,
            _ => 1,
        },
        _ => return None,
    };
    Some(f)
}

/// True when a session whose `client_min_messages` is `level` is sent
/// NOTICE messages.
fn notices_visible_at(level: &str) -> bool {
    matches!(
        level.trim().to_ascii_lowercase().as_str(),
        "debug5" | "debug4" | "debug3" | "debug2" | "debug1" | "debug" | "log" | "notice"
    )
}

/// The tables a query string may create, folded as written.
#[derive(Debug, Default, PartialEq, Eq)]
struct CreatedNames {
    /// `CREATE [TEMP|UNLOGGED] TABLE name`, also `… AS`: created when the
    /// statement succeeds.
    plain: Vec<String>,
    /// `CREATE … TABLE IF NOT EXISTS name`: created unless it existed.
    if_not_exists: Vec<String>,
}

/// The tables a query string creates; none when another statement in it
/// may change what a name resolves to.
fn tables_created(sql: &[u8], standard_strings: bool) -> CreatedNames {
    use crate::sql::lexer::{Lexer, MetaCommand, Sink, Statement};
    use crate::sql::token::{qualified_name, tokens};

    #[derive(Default)]
    struct Collect {
        names: CreatedNames,
        other: bool,
    }
    impl Sink for Collect {
        fn variable(&self, _: &[u8]) -> Option<Vec<u8>> {
            None
        }
        fn statement(&mut self, statement: &Statement<'_>) {
            let toks = tokens(statement.text);
            let mut i = 0;
            let word = |i: usize, w: &str| toks.get(i).is_some_and(|t| t.is(w));
            if !word(0, "create") {
                let plain = toks.first().is_some_and(|t| {
                    KEEPS_KEYS.iter().any(|k| t.is(k)) && !t.is("declare") && !t.is("prepare")
                });
                self.other |= !plain && !toks.is_empty();
                return;
            }
            i += 1;
            if word(i, "global") || word(i, "local") {
                i += 1;
            }
            if word(i, "temp") || word(i, "temporary") || word(i, "unlogged") {
                i += 1;
            }
            if !word(i, "table") {
                self.other = true;
                return;
            }
            i += 1;
            let if_not_exists = word(i, "if") && word(i + 1, "not") && word(i + 2, "exists");
            if if_not_exists {
                i += 3;
            }
            match qualified_name(&toks, i) {
                // A quoted name holding a dot would be looked up as
                // another (schema-qualified) name.
                Some((name, end))
                    if !statement.truncated && name.matches('.').count() == (end - i - 1) / 2 =>
                {
                    if if_not_exists {
                        self.names.if_not_exists.push(name);
                    } else {
                        self.names.plain.push(name);
                    }
                }
                _ => self.other = true,
            }
        }
        fn meta(&mut self, _: &MetaCommand<'_>) {
            self.other = true;
        }
    }
    if !sql.windows(6).any(|w| w.eq_ignore_ascii_case(b"create")) {
        return CreatedNames::default();
    }
    let mut sink = Collect::default();
    let mut lexer = Lexer::with_standard_strings(standard_strings);
    lexer.feed(sql, &mut sink);
    if lexer.finish(&mut sink).is_some() || sink.other {
        return CreatedNames::default();
    }
    sink.names
}

/// Folded names (`s.t`) as an SQL list of regclass literals.
fn regclass_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| {
            let quoted: Vec<String> = n.split('.').map(quote_ident).collect();
            quote_literal(&quoted.join("."))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The keys (`sql::key`) of every destructive statement the pre-flight
/// confirmed: the whole statement's, however long it is.
pub fn confirmed_keys(report: &ScanReport) -> Vec<String> {
    report
        .findings
        .iter()
        .filter_map(|f| f.key.clone())
        .collect()
}

/// Where the preload library is: `DBGUARD_PRELOAD`, else beside the
/// running binary (cargo's `target/<profile>/`), else
/// `<binary's dir>/../lib/dbguard/` (an install). `Err` says where it
/// looked.
pub fn preload_library(ctx: &Context) -> Result<PathBuf, String> {
    if let Some(path) = ctx.var(PRELOAD_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{PRELOAD_ENV}={}", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate dbguard: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let prefix = dir.parent().unwrap_or(Path::new("/"));
    let candidates = [
        dir.join(PRELOAD_FILE),
        prefix.join("lib/dbguard").join(PRELOAD_FILE),
    ];
    for candidate in &candidates {
        if candidate.is_file() {
            return Ok(candidate.clone());
        }
    }
    Err(format!(
        "looked in {} and {}",
        candidates[0].display(),
        candidates[1].display()
    ))
}

/// The check library beside the preload library `first`. Without it the
/// first stage refuses every string that may be destructive, so this is
/// for `doctor` and install checks; the shim preloads `first` anyway.
pub fn check_library(first: &Path) -> Result<PathBuf, String> {
    let check = first.with_file_name(CHECK_FILE);
    if check.is_file() {
        Ok(check)
    } else {
        Err(format!(
            "{CHECK_FILE} is missing beside {}: statements that may be destructive are refused",
            first.display()
        ))
    }
}

/// Writes the confirmed keys to a private (0600) file for the library,
/// which reads and removes it when psql starts.
pub fn write_confirmed(keys: &[String]) -> std::io::Result<PathBuf> {
    let mut file = tempfile::Builder::new()
        .prefix("dbguard-confirmed-")
        .tempfile()?;
    std::io::Write::write_all(&mut file, (keys.join("\n") + "\n").as_bytes())?;
    let (_, path) = file.keep().map_err(|e| e.error)?;
    Ok(path)
}

/// Turns a failure into the refusal text, for callers outside the guard
/// (the library's panic path).
pub fn refusal_for_error(e: &Error) -> String {
    refusal_statement(&e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(TxStatus);

    impl Connection for Fake {
        fn settings(&self) -> Vec<(String, String)> {
            // Nowhere: the guard must refuse before it could ask anyone.
            vec![
                ("host".into(), "/nonexistent".into()),
                ("dbname".into(), "app".into()),
            ]
        }
        fn transaction(&self) -> TxStatus {
            self.0
        }
        fn explain(&self, _: &[String]) -> Vec<Option<String>> {
            Vec::new()
        }
    }

    fn guard(confirmed: &[String]) -> LiveGuard {
        // The audit record of a refusal goes to a private directory.
        let dir = std::env::temp_dir().join(format!("dbguard-live-test-{}", std::process::id()));
        let dir = dir.to_string_lossy().into_owned();
        let ctx = Context::for_test(&["psql"], &[("DBGUARD_BACKUP_DIR", dir.as_str())]);
        LiveGuard::new(ctx, confirmed)
    }

    #[test]
    fn harmless_statements_and_failed_transactions_pass_unasked() {
        let g = guard(&[]);
        let idle = Fake(TxStatus::Idle);
        for sql in [
            "select 1;",
            "insert into t values (1)",
            "delete from t where id = 3;",
        ] {
            assert_eq!(g.check(&idle, sql.as_bytes()), Verdict::Send, "{sql}");
        }
        // The server refuses everything in a failed transaction by itself.
        assert_eq!(
            g.check(&Fake(TxStatus::InError), b"drop table t;"),
            Verdict::Send
        );
    }

    /// An idle connection with the given server settings.
    struct Settings(Vec<(&'static str, &'static str)>, TxStatus);

    impl Connection for Settings {
        fn settings(&self) -> Vec<(String, String)> {
            Fake(self.1).settings()
        }
        fn transaction(&self) -> TxStatus {
            self.1
        }
        fn explain(&self, _: &[String]) -> Vec<Option<String>> {
            Vec::new()
        }
        fn parameter(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_string_that_ends_a_failed_transaction_and_goes_on_is_checked() {
        let g = guard(&[]);
        let failed = Fake(TxStatus::InError);
        for sql in [
            "rollback; drop table t",
            "rollback to savepoint s; truncate t",
            "abort; delete from t where id > 0",
        ] {
            assert!(
                matches!(g.check(&failed, sql.as_bytes()), Verdict::Replace(_)),
                "{sql}"
            );
        }
        // Alone, the statement fails on the server without our help.
        assert_eq!(
            g.check(&failed, b"delete from t where id > 0"),
            Verdict::Send
        );
    }

    #[test]
    fn strings_are_read_with_the_connections_standard_conforming_strings() {
        let g = guard(&[]);
        let sql = br"select 'a\''; drop table t; --'";
        let on = Settings(vec![("standard_conforming_strings", "on")], TxStatus::Idle);
        let off = Settings(vec![("standard_conforming_strings", "off")], TxStatus::Idle);
        assert_eq!(g.check(&on, sql), Verdict::Send, "one string, then another");
        assert!(matches!(g.check(&off, sql), Verdict::Replace(_)));
    }

    #[test]
    fn a_trailing_backslash_byte_of_a_multibyte_character_escapes_nothing() {
        let g = guard(&[]);
        for (encoding, sql) in [
            ("SJIS", &b"select E'\x95\x5c'; drop table t; --'"[..]),
            ("BIG5", &b"select E'\xa5\x5c'; drop table t; --'"[..]),
            ("GBK", &b"select E'\x81\x5c'; drop table t; --'"[..]),
            ("GB18030", &b"select E'\x81\x5c'; drop table t; --'"[..]),
        ] {
            let conn = Settings(vec![("client_encoding", encoding)], TxStatus::Idle);
            assert!(
                matches!(g.check(&conn, sql), Verdict::Replace(_)),
                "{encoding}"
            );
        }
        // In UTF8 (and EUC_JP, LATIN1, ...) 0x5C is always a backslash.
        let utf8 = Settings(vec![("client_encoding", "UTF8")], TxStatus::Idle);
        assert_eq!(
            g.check(&utf8, b"select E'\xc3\\'; drop table t; --'"),
            Verdict::Send
        );
    }

    #[test]
    fn the_tables_a_string_creates_are_read_from_plain_statements_only() {
        let created = |sql: &str| tables_created(sql.as_bytes(), true).plain;
        assert_eq!(created("create table t (a int)"), ["t"]);
        assert_eq!(
            created(
                "CREATE TEMP TABLE s.\"T\" (a int); insert into x values (1); create unlogged table u as select 1"
            ),
            ["s.T", "u"]
        );
        assert!(created("create table if not exists t (a int)").is_empty());
        assert!(created("set search_path = x; create table t ()").is_empty());
        assert!(created("create table t (); drop table t").is_empty());
        assert!(created("create table \"a.b\" ()").is_empty());
        assert!(created("create index on t (a)").is_empty());
        assert!(created("select 'create table t ()'").is_empty());
    }

    #[test]
    fn if_not_exists_names_are_kept_apart() {
        let names = tables_created(
            b"create table if not exists s.t (a int); create temp table u (); CREATE TABLE IF NOT EXISTS \"V\" AS SELECT 1",
            true,
        );
        assert_eq!(names.plain, ["u"]);
        assert_eq!(names.if_not_exists, ["s.t", "V"]);
        let dotted = tables_created(b"create table if not exists \"a.b\" ()", true);
        assert_eq!(dotted, CreatedNames::default());
    }

    #[test]
    fn only_levels_at_notice_or_below_send_notices() {
        for level in ["notice", "NOTICE", "log", "debug1", "debug5"] {
            assert!(notices_visible_at(level), "{level}");
        }
        for level in ["warning", "error", "", "panic"] {
            assert!(!notices_visible_at(level), "{level}");
        }
    }

    /// An idle connection whose `client_min_messages` is `level`, on
    /// which every created table is found again and every name is one.
    struct Answers {
        level: &'static str,
    }

    impl Connection for Answers {
        fn settings(&self) -> Vec<(String, String)> {
            Fake(TxStatus::Idle).settings()
        }
        fn transaction(&self) -> TxStatus {
            TxStatus::Idle
        }
        fn explain(&self, _: &[String]) -> Vec<Option<String>> {
            Vec::new()
        }
        fn query_value(&self, sql: &str) -> Option<String> {
            if sql.contains("client_min_messages") {
                return Some(self.level.to_owned());
            }
            if sql.contains("string_agg") {
                return Some("16384".to_owned());
            }
            Some("true".to_owned())
        }
    }

    #[test]
    fn create_if_not_exists_counts_only_when_no_notice_said_it_skipped() {
        let drop = b"drop table t";
        let create = b"create table if not exists t (a int)";
        // Created: no notice came; the drop is of the session's own table.
        let g = guard(&[]);
        let conn = Answers { level: "notice" };
        assert!(g.will_send(&conn, create), "notices are watched");
        g.results_done();
        assert_eq!(g.check(&conn, drop), Verdict::Send);
        // Skipped: the table was there before; the drop is refused here.
        let g = guard(&[]);
        assert!(g.will_send(&conn, create));
        g.notice(b"42P07");
        g.results_done();
        assert!(matches!(g.check(&conn, drop), Verdict::Replace(_)));
        // Notices hidden: nothing could tell, so nothing counts.
        let g = guard(&[]);
        let quiet = Answers { level: "warning" };
        assert!(!g.will_send(&quiet, create));
        g.results_done();
        assert!(matches!(g.check(&quiet, drop), Verdict::Replace(_)));
        // Another notice is not a skip.
        let g = guard(&[]);
        assert!(g.will_send(&conn, create));
        g.notice(b"00000");
        g.results_done();
        assert_eq!(g.check(&conn, drop), Verdict::Send);
    }

    #[test]
    fn without_a_terminal_a_destructive_statement_is_replaced_by_an_error() {
        // No server behind the connection's settings: the guard refuses
        // before anyone is asked, and the refusal becomes a statement.
        let g = guard(&[]);
        let Verdict::Replace(sql) = g.check(&Fake(TxStatus::Idle), b"drop table t;") else {
            panic!("a drop must not pass unasked");
        };
        assert!(
            sql.starts_with("DO $dbguard$ BEGIN RAISE EXCEPTION"),
            "{sql}"
        );
        assert!(sql.contains("dbguard: statement not run: refused"), "{sql}");
    }

    #[test]
    fn confirmed_statements_pass_once_each() {
        let report = scan(&Context::for_test(&["psql"], &[]), b"drop table t;");
        let keys = confirmed_keys(&report);
        assert_eq!(keys.len(), 1);
        let g = guard(&keys);
        let idle = Fake(TxStatus::Idle);
        assert_eq!(g.check(&idle, b"drop   table t"), Verdict::Send);
        assert!(matches!(
            g.check(&idle, b"drop table t;"),
            Verdict::Replace(_)
        ));
    }

    /// Regression: a statement whose text is shown shortened (over 200
    /// characters, or over the 1 MiB the scanner keeps) had no key, so the
    /// live check asked again for what the pre-flight had confirmed.
    #[test]
    fn a_long_confirmed_statement_passes_once() {
        let padded = |len: usize| {
            let mut sql = b"drop table t /* ".to_vec();
            sql.resize(len, b'x');
            sql.extend_from_slice(b" */;");
            sql
        };
        for sql in [padded(300), padded(crate::sql::lexer::STATEMENT_CAP + 10)] {
            let report = scan(&Context::for_test(&["psql"], &[]), &sql);
            assert!(report.findings[0].statement.ends_with('…'));
            let g = guard(&confirmed_keys(&report));
            let idle = Fake(TxStatus::Idle);
            assert_eq!(g.check(&idle, &sql), Verdict::Send, "{}", sql.len());
            assert!(matches!(g.check(&idle, &sql), Verdict::Replace(_)));
        }
    }

    /// Regression: in SJIS or BIG5 the live check reads a masked copy of
    /// the bytes (as psql does), whose text is not the one the pre-flight
    /// confirmed; it is keyed by the bytes as sent.
    #[test]
    fn a_confirmed_statement_with_multibyte_characters_passes_once() {
        for (encoding, sql) in [
            ("SJIS", &b"drop table \"\x95\x5c\" /* \x83\x5c */;"[..]),
            ("BIG5", &b"delete from \"\xa5\x5c\";"[..]),
        ] {
            let report = scan(&Context::for_test(&["psql"], &[]), sql);
            let g = guard(&confirmed_keys(&report));
            let conn = Settings(vec![("client_encoding", encoding)], TxStatus::Idle);
            assert_eq!(g.check(&conn, sql), Verdict::Send, "{encoding}");
            assert!(
                matches!(g.check(&conn, sql), Verdict::Replace(_)),
                "{encoding}"
            );
        }
    }

    /// A connection whose tables have the given unique keys and whose
    /// planner estimates a million rows for everything; it counts what the
    /// guard asks.
    struct Keyed {
        keys: &'static str,
        database: std::cell::RefCell<&'static str>,
        tx: std::cell::Cell<TxStatus>,
        lookups: std::cell::Cell<usize>,
        estimates: std::cell::Cell<usize>,
    }

    impl Keyed {
        fn new(keys: &'static str) -> Keyed {
            Keyed {
                keys,
                database: std::cell::RefCell::new("app"),
                tx: std::cell::Cell::new(TxStatus::Idle),
                lookups: Default::default(),
                estimates: Default::default(),
            }
        }
    }

    impl Connection for Keyed {
        fn settings(&self) -> Vec<(String, String)> {
            vec![
                ("host".into(), "/nonexistent".into()),
                ("dbname".into(), self.database.borrow().to_string()),
            ]
        }
        fn transaction(&self) -> TxStatus {
            self.tx.get()
        }
        fn explain(&self, statements: &[String]) -> Vec<Option<String>> {
            self.estimates.set(self.estimates.get() + 1);
            let plan = r#"[{"Plan": {"Plan Rows": 1000000}}]"#;
            statements.iter().map(|_| Some(plan.to_owned())).collect()
        }
        fn query_value(&self, sql: &str) -> Option<String> {
            assert!(sql.contains("to_regclass('t')"), "{sql}");
            self.lookups.set(self.lookups.get() + 1);
            Some(self.keys.to_owned())
        }
    }

    #[test]
    fn a_where_pinning_a_unique_key_needs_no_estimate() {
        let g = guard(&[]);
        let conn = Keyed::new(r#"[["id"], ["a", "b"]]"#);
        for sql in [
            "delete from t where id = 3",
            "DELETE FROM t WHERE 4 = id AND note IS NULL;",
            "update t set n = 1 where a = 1 and b = $1",
        ] {
            g.observe(&conn, sql.as_bytes());
            assert_eq!(g.check(&conn, sql.as_bytes()), Verdict::Send, "{sql}");
        }
        assert_eq!(conn.estimates.get(), 0, "no EXPLAIN for one row");
        assert_eq!(conn.lookups.get(), 1, "the keys are learned once");
        // Not pinned by a whole key: estimated, and a million rows is bulk
        // (refused here: there is no terminal to ask on).
        for sql in [
            "delete from t where id > 0",
            "delete from t where a = 1",
            "delete from t where id = 1 or id = 2",
            "delete from t where id = 1; delete from t where id = 2",
        ] {
            assert!(
                matches!(g.check(&conn, sql.as_bytes()), Verdict::Replace(_)),
                "{sql}"
            );
        }
        assert_eq!(conn.estimates.get(), 4);
    }

    #[test]
    fn a_table_without_keys_is_estimated() {
        let g = guard(&[]);
        let conn = Keyed::new("[]");
        assert!(matches!(
            g.check(&conn, b"delete from t where id = 3"),
            Verdict::Replace(_)
        ));
        assert_eq!((conn.lookups.get(), conn.estimates.get()), (1, 1));
    }

    #[test]
    fn learned_keys_are_forgotten_on_ddl_set_and_another_database() {
        let g = guard(&[]);
        let conn = Keyed::new(r#"[["id"]]"#);
        let delete = b"delete from t where id = 3";
        let mut expected = 1;
        assert_eq!(g.check(&conn, delete), Verdict::Send);
        for between in [
            "select 1",
            "insert into t values (9)",
            "begin",
            "commit",
            "delete from t where id = 8",
        ] {
            g.observe(&conn, between.as_bytes());
            assert_eq!(g.check(&conn, delete), Verdict::Send);
            assert_eq!(conn.lookups.get(), expected, "after {between}");
        }
        for between in [
            "SET search_path = other, public",
            "alter table t drop constraint t_pkey",
            "  create table t (id int)",
            "rollback",
            "select 1; set search_path = x",
            "/* c */ reset all",
        ] {
            g.observe(&conn, between.as_bytes());
            assert_eq!(g.check(&conn, delete), Verdict::Send);
            expected += 1;
            assert_eq!(conn.lookups.get(), expected, "after {between}");
        }
        *conn.database.borrow_mut() = "other";
        assert_eq!(g.check(&conn, delete), Verdict::Send);
        assert_eq!(conn.lookups.get(), expected + 1, "after \\c other");
    }

    #[test]
    fn a_set_local_makes_the_keys_forgotten_again_at_commit() {
        let g = guard(&[]);
        let conn = Keyed::new(r#"[["id"]]"#);
        let delete = b"delete from t where id = 3";
        conn.tx.set(TxStatus::InTransaction);
        // Nothing learned yet when the path changes for this transaction.
        g.observe(&conn, b"set local search_path = other");
        assert_eq!(g.check(&conn, delete), Verdict::Send);
        assert_eq!(conn.lookups.get(), 1);
        g.observe(&conn, b"commit");
        conn.tx.set(TxStatus::Idle);
        assert_eq!(g.check(&conn, delete), Verdict::Send);
        assert_eq!(conn.lookups.get(), 2, "learned again after the commit");
        g.observe(&conn, b"commit");
        assert_eq!(g.check(&conn, delete), Verdict::Send);
        assert_eq!(conn.lookups.get(), 2, "kept after an ordinary commit");
    }

    #[test]
    fn the_key_query_quotes_the_name() {
        let sql = unique_keys_query(r#""it's"."T""#).expect("a query");
        assert!(sql.contains(r#"to_regclass('"it''s"."T"')"#), "{sql}");
        assert_eq!(unique_keys_query("a\\b"), None);
    }

    #[test]
    fn the_refusal_is_one_safe_literal() {
        let sql = refusal_statement("it's $dbguard$ \\ done\0");
        assert_eq!(
            sql,
            "DO $dbguard$ BEGIN RAISE EXCEPTION USING MESSAGE = E'dbguard: statement not run: it''s \\x24dbguard\\x24 \\\\ done'; END $dbguard$"
        );
    }

    #[test]
    fn the_check_library_is_looked_for_beside_the_preload_library() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = dir.path().join(PRELOAD_FILE);
        std::fs::write(&first, "").expect("write");
        let missing = check_library(&first).expect_err("no check yet");
        assert!(
            missing.contains(CHECK_FILE) && missing.contains("refused"),
            "{missing}"
        );
        std::fs::write(dir.path().join(CHECK_FILE), "").expect("write");
        assert_eq!(check_library(&first), Ok(dir.path().join(CHECK_FILE)));
    }
}
