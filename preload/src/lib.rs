//! `libdbguard_preload.so`: loaded into the real psql by the dbguard shim
//! (`LD_PRELOAD`), it wraps libpq's query-sending functions so that every
//! statement psql sends — typed at the prompt, produced by `\gexec`, built
//! from variables — is checked by `dbguard::shim::live` before it reaches
//! the server. A statement that is declined is replaced by one that raises
//! the refusal as an error on the server.
//!
//! Rules this file keeps:
//! - At load time (an ELF constructor, before psql's `main`), our entry is
//!   removed from `LD_PRELOAD` and our control variables from the
//!   environment, so programs psql starts (`\!`, `\o |cmd`, the pager) run
//!   without us. A process without libpq (Debian's pg_wrapper, which execs
//!   the real psql) keeps them, to pass them on.
//! - No panic crosses the C boundary: every wrapper runs the guard under
//!   `catch_unwind`, and a panic refuses a statement that looks
//!   destructive rather than sending it unchecked.
//! - Every entry point psql 13–17 sends SQL text through is wrapped:
//!   `PQexec`, `PQsendQuery`, `PQexecParams`, `PQsendQueryParams` (`\bind`),
//!   `PQprepare` (`\gdesc`) and `PQsendPrepare` (`\parse`); each string is
//!   judged once, whatever the transaction state. libpq's own `PQexec`
//!   calls `PQsendQuery` through its PLT: that nested call is passed on.
//! - `PQgetResult` (and `PQexec`'s result) is only watched, for a string
//!   that creates tables: the guard learns which tables this session really
//!   created. Nothing else of libpq is touched: `\c`, cancel and COPY data
//!   keep their own code paths.

mod libpq;

use std::cell::Cell;
use std::ffi::{CStr, CString, OsStr, c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use dbguard::Context;
use dbguard::shim::live::{self, CONFIRMED_ENV, LiveGuard, PRELOAD_FILE, Verdict};

use crate::libpq::{
    BAD_RESPONSE, COMMAND_OK, FATAL_ERROR, LiveConn, Oid, PgConn, PgResult, TUPLES_OK, libpq,
};

/// Runs when the library is loaded, before psql's `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// The pre-flight's confirmed keys, read at load time.
static CONFIRMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn on_load() {
    let _ = catch_unwind(scrub_environment);
}

/// Removes what only this process should see from the environment.
///
/// Only in a process that has libpq: on Debian `psql` is a Perl wrapper
/// (pg_wrapper) that execs the real psql, and the variables must survive
/// that exec to reach it.
fn scrub_environment() {
    if libpq().send_query.is_none() {
        return;
    }
    if let Some(list) = std::env::var_os("LD_PRELOAD") {
        let kept: Vec<&[u8]> = list
            .as_bytes()
            .split(|b| *b == b':' || *b == b' ')
            .filter(|entry| !entry.is_empty() && !is_us(entry))
            .collect();
        // SAFETY: constructors run before `main`, while the process has
        // one thread, so nothing reads the environment concurrently.
        unsafe {
            if kept.is_empty() {
                std::env::remove_var("LD_PRELOAD");
            } else {
                std::env::set_var("LD_PRELOAD", OsStr::from_bytes(&kept.join(&b':')));
            }
        }
    }
    if let Some(path) = std::env::var_os(CONFIRMED_ENV) {
        // SAFETY: as above, single-threaded before `main`.
        unsafe { std::env::remove_var(CONFIRMED_ENV) };
        if let Ok(text) = std::fs::read_to_string(&path) {
            let keys = text.lines().map(str::to_owned).collect();
            if let Ok(mut confirmed) = CONFIRMED.lock() {
                *confirmed = keys;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

fn is_us(entry: &[u8]) -> bool {
    entry.rsplit(|b| *b == b'/').next() == Some(PRELOAD_FILE.as_bytes())
}

static GUARD: OnceLock<LiveGuard> = OnceLock::new();

/// The guard, built on the first statement (not at load time, so a
/// session that sends nothing pays nothing).
fn guard() -> &'static LiveGuard {
    GUARD.get_or_init(|| {
        let ctx = Context::from_process();
        let confirmed = CONFIRMED
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        LiveGuard::new(ctx, &confirmed)
    })
}

thread_local! {
    /// Set while the guard runs, so libpq calls it makes are not judged.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// Set while a real libpq function runs on psql's behalf: libpq's own
    /// `PQexec` calls `PQsendQuery` through its PLT, which lands in our
    /// wrapper again, and the text was judged already.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the duration of a call into the real libpq (see `INSIDE`).
struct Inside(bool);

impl Inside {
    fn enter() -> Inside {
        Inside(INSIDE.with(|i| i.replace(true)))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|i| i.set(self.0));
    }
}

fn nested() -> bool {
    INSIDE.with(Cell::get)
}

/// The string being sent may create tables: its results are watched, so
/// the guard learns which tables this session really created.
static WATCHING_RESULTS: AtomicBool = AtomicBool::new(false);

/// After `judge`: tells the guard what is really sent now (`sent` is false
/// when a refusal replaced it).
fn note_sent(conn: *mut PgConn, query: *const c_char, sent: bool) {
    if conn.is_null() || query.is_null() {
        return;
    }
    // SAFETY: as in `judge`.
    let sql = unsafe { CStr::from_ptr(query) }.to_bytes();
    let creates = sent && sql.windows(6).any(|w| w.eq_ignore_ascii_case(b"create"));
    if !creates && !WATCHING_RESULTS.load(Ordering::Relaxed) {
        return;
    }
    let text: &[u8] = if creates { sql } else { b"" };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        guard().will_send(&LiveConn { conn }, text)
    }));
    WATCHING_RESULTS.store(creates, Ordering::Relaxed);
}

/// A result of the watched string (`None`: there are no more).
fn note_result(status: Option<c_int>) {
    if !WATCHING_RESULTS.load(Ordering::Relaxed) {
        return;
    }
    let Some(guard) = GUARD.get() else {
        return;
    };
    let _ = catch_unwind(AssertUnwindSafe(|| match status {
        None => {
            guard.results_done();
            WATCHING_RESULTS.store(false, Ordering::Relaxed);
        }
        Some(BAD_RESPONSE | FATAL_ERROR) => guard.result(false),
        Some(_) => {}
    }));
}

/// `PQexec` gives only the string's last result: the string succeeded as
/// a whole when that one did (the server stops at the first error).
fn note_exec_result(res: *mut PgResult) {
    if !WATCHING_RESULTS.load(Ordering::Relaxed) {
        return;
    }
    let status = match libpq().result_status {
        // SAFETY: a non-null result just returned by the real libpq.
        Some(f) if !res.is_null() => unsafe { f(res) },
        _ => FATAL_ERROR,
    };
    let ok = status == COMMAND_OK || status == TUPLES_OK;
    note_result(Some(if ok { COMMAND_OK } else { FATAL_ERROR }));
    note_result(None);
}

/// The text to send instead of `query`, or `None` to send it unchanged.
fn judge(conn: *mut PgConn, query: *const c_char) -> Option<CString> {
    if conn.is_null() || query.is_null() || BUSY.with(Cell::get) {
        return None;
    }
    // SAFETY: psql passes a NUL-terminated query that outlives the call.
    let sql = unsafe { CStr::from_ptr(query) }.to_bytes();
    if let Some(guard) = GUARD.get() {
        // Keys learned for earlier statements may not survive this one.
        let _ = catch_unwind(AssertUnwindSafe(|| guard.observe(&LiveConn { conn }, sql)));
    }
    if !dbguard::sql::classify::may_hold_candidate(sql) {
        // Most statements: nothing to check, and no guard to set up.
        return None;
    }
    BUSY.with(|b| b.set(true));
    let verdict = catch_unwind(AssertUnwindSafe(|| guard().check(&LiveConn { conn }, sql)));
    BUSY.with(|b| b.set(false));
    let replacement = match verdict {
        Ok(Verdict::Send) => return None,
        Ok(Verdict::Replace(text)) => text,
        Err(_) if looks_destructive(sql) => live::refusal_statement(
            "the check of this statement failed unexpectedly; it was not run",
        ),
        Err(_) => return None,
    };
    // The refusal is built from text without NUL bytes.
    CString::new(replacement).ok()
}

/// The last line of defence when the guard itself failed: any of the
/// destructive verbs anywhere in the text.
fn looks_destructive(sql: &[u8]) -> bool {
    let lower = sql.to_ascii_lowercase();
    [
        "drop", "truncate", "delete", "update", "alter", "do", "execute",
    ]
    .iter()
    .any(|w| lower.windows(w.len()).any(|win| win == w.as_bytes()))
}

/// # Safety
/// Called by psql with libpq's contract for `PQexec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQexec(conn: *mut PgConn, query: *const c_char) -> *mut PgResult {
    let Some(real) = libpq().exec else {
        return ptr::null_mut();
    };
    if nested() {
        // SAFETY: libpq calling itself; passed on unchanged.
        return unsafe { real(conn, query) };
    }
    let replaced = judge(conn, query);
    note_sent(conn, query, replaced.is_none());
    let query = replaced.as_ref().map_or(query, |c| c.as_ptr());
    let _inside = Inside::enter();
    // SAFETY: the real PQexec with the caller's connection and a valid
    // NUL-terminated query (the caller's, or ours, alive until it returns).
    let res = unsafe { real(conn, query) };
    note_exec_result(res);
    res
}

/// # Safety
/// Called by psql with libpq's contract for `PQsendQuery`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQsendQuery(conn: *mut PgConn, query: *const c_char) -> c_int {
    let Some(real) = libpq().send_query else {
        return 0;
    };
    if nested() {
        // SAFETY: libpq calling itself (`PQexec`); passed on unchanged.
        return unsafe { real(conn, query) };
    }
    let replaced = judge(conn, query);
    note_sent(conn, query, replaced.is_none());
    let query = replaced.as_ref().map_or(query, |c| c.as_ptr());
    let _inside = Inside::enter();
    // SAFETY: as in PQexec; libpq copies the query before returning.
    unsafe { real(conn, query) }
}

/// Watches the results of a string that may create tables; passes every
/// result on untouched.
///
/// # Safety
/// Called by psql with libpq's contract for `PQgetResult`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQgetResult(conn: *mut PgConn) -> *mut PgResult {
    let Some(real) = libpq().get_result else {
        return ptr::null_mut();
    };
    // SAFETY: the caller's connection, passed on unchanged.
    let res = unsafe { real(conn) };
    if !nested() && WATCHING_RESULTS.load(Ordering::Relaxed) {
        let status = match libpq().result_status {
            // SAFETY: a non-null result just returned by the real libpq.
            Some(f) if !res.is_null() => Some(unsafe { f(res) }),
            _ if res.is_null() => None,
            _ => Some(FATAL_ERROR),
        };
        note_result(status);
    }
    res
}

/// # Safety
/// Called with libpq's contract for `PQexecParams`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQexecParams(
    conn: *mut PgConn,
    command: *const c_char,
    n_params: c_int,
    param_types: *const Oid,
    param_values: *const *const c_char,
    param_lengths: *const c_int,
    param_formats: *const c_int,
    result_format: c_int,
) -> *mut PgResult {
    let Some(real) = libpq().exec_params else {
        return ptr::null_mut();
    };
    let refusal = if nested() { None } else { judge(conn, command) };
    if !nested() {
        note_sent(conn, command, refusal.is_none());
    }
    let params = Params::of(
        n_params,
        param_types,
        param_values,
        param_lengths,
        param_formats,
    );
    // The refusal takes no parameters.
    let (command, p) = match &refusal {
        None => (command, params),
        Some(refusal) => (refusal.as_ptr(), Params::NONE),
    };
    let inside = Inside::enter();
    // SAFETY: the caller's arguments passed on unchanged, or a valid query
    // (`refusal` lives until the call returns) with no parameter arrays.
    let res = unsafe {
        real(
            conn,
            command,
            p.n,
            p.types,
            p.values,
            p.lengths,
            p.formats,
            result_format,
        )
    };
    if !inside.0 {
        note_exec_result(res);
    }
    res
}

/// # Safety
/// Called with libpq's contract for `PQsendQueryParams`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQsendQueryParams(
    conn: *mut PgConn,
    command: *const c_char,
    n_params: c_int,
    param_types: *const Oid,
    param_values: *const *const c_char,
    param_lengths: *const c_int,
    param_formats: *const c_int,
    result_format: c_int,
) -> c_int {
    let Some(real) = libpq().send_query_params else {
        return 0;
    };
    let refusal = if nested() { None } else { judge(conn, command) };
    if !nested() {
        note_sent(conn, command, refusal.is_none());
    }
    let params = Params::of(
        n_params,
        param_types,
        param_values,
        param_lengths,
        param_formats,
    );
    // The refusal takes no parameters.
    let (command, p) = match &refusal {
        None => (command, params),
        Some(refusal) => (refusal.as_ptr(), Params::NONE),
    };
    let _inside = Inside::enter();
    // SAFETY: the caller's arguments passed on unchanged, or a valid query
    // (`refusal` lives until the call returns) with no parameter arrays.
    unsafe {
        real(
            conn,
            command,
            p.n,
            p.types,
            p.values,
            p.lengths,
            p.formats,
            result_format,
        )
    }
}

/// The parameter arrays of `PQexecParams` and `PQsendQueryParams`, passed
/// on as they came or replaced by none at all.
#[derive(Clone, Copy)]
struct Params {
    n: c_int,
    types: *const Oid,
    values: *const *const c_char,
    lengths: *const c_int,
    formats: *const c_int,
}

impl Params {
    const NONE: Params = Params {
        n: 0,
        types: ptr::null(),
        values: ptr::null(),
        lengths: ptr::null(),
        formats: ptr::null(),
    };

    fn of(
        n: c_int,
        types: *const Oid,
        values: *const *const c_char,
        lengths: *const c_int,
        formats: *const c_int,
    ) -> Params {
        Params {
            n,
            types,
            values,
            lengths,
            formats,
        }
    }
}

/// A prepared statement is judged when it is prepared: what runs later is
/// exactly this text. A declined one is prepared as the refusal, so every
/// execution of it fails on the server.
///
/// # Safety
/// Called with libpq's contract for `PQprepare`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQprepare(
    conn: *mut PgConn,
    name: *const c_char,
    query: *const c_char,
    n_params: c_int,
    param_types: *const Oid,
) -> *mut PgResult {
    let Some(real) = libpq().prepare else {
        return ptr::null_mut();
    };
    let verdict = if nested() { None } else { judge(conn, query) };
    let _inside = Inside::enter();
    match verdict {
        // SAFETY: the caller's arguments, passed on unchanged.
        None => unsafe { real(conn, name, query, n_params, param_types) },
        // SAFETY: a valid statement name and query, no parameter types.
        Some(refusal) => unsafe { real(conn, name, refusal.as_ptr(), 0, ptr::null()) },
    }
}

/// # Safety
/// Called with libpq's contract for `PQsendPrepare`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQsendPrepare(
    conn: *mut PgConn,
    name: *const c_char,
    query: *const c_char,
    n_params: c_int,
    param_types: *const Oid,
) -> c_int {
    let Some(real) = libpq().send_prepare else {
        return 0;
    };
    let verdict = if nested() { None } else { judge(conn, query) };
    let _inside = Inside::enter();
    match verdict {
        // SAFETY: the caller's arguments, passed on unchanged.
        None => unsafe { real(conn, name, query, n_params, param_types) },
        // SAFETY: a valid statement name and query, no parameter types.
        Some(refusal) => unsafe { real(conn, name, refusal.as_ptr(), 0, ptr::null()) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_entry_is_recognised_in_ld_preload() {
        assert!(is_us(b"/usr/lib/dbguard/libdbguard_preload.so"));
        assert!(is_us(b"libdbguard_preload.so"));
        assert!(!is_us(b"/usr/lib/libjemalloc.so"));
        assert!(!is_us(b"/x/libdbguard_preload.so.bak"));
    }

    #[test]
    fn the_panic_path_refuses_anything_that_might_destroy() {
        assert!(looks_destructive(b"DROP TABLE t"));
        assert!(looks_destructive(b"with x as (delete from t) select 1"));
        assert!(!looks_destructive(b"select 1"));
    }
}
