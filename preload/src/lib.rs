//! `libdbguard_check.so`: the second stage of the live check inside the
//! real psql. The first stage (`preload/first`, `libdbguard_preload.so`,
//! the library in psql's `LD_PRELOAD`) wraps libpq and loads this one with
//! `dlopen` on the first string that may be destructive; from then on it
//! hands every string psql sends, and every result psql reads, to the
//! entry points here, which ask `dbguard::shim::live`. A statement that is
//! declined comes back as one that raises the refusal as an error on the
//! server.
//!
//! Rules this file keeps:
//! - The C entry points below are this library's whole interface;
//!   `dbguard_check_init` refuses another `ABI_VERSION` than the first
//!   stage's, and gets from it the real libpq functions behind its
//!   wrappers, so the guard's own queries are never judged.
//! - No panic crosses the C boundary: every entry runs under
//!   `catch_unwind`, and a panic refuses a statement that looks
//!   destructive rather than sending it unchecked.
//! - Each string is judged once, whatever the transaction state.
//! - The results of a string that creates tables are watched, so the
//!   guard learns which tables this session really created; for `CREATE
//!   TABLE IF NOT EXISTS` also its notices (a notice receiver in front of
//!   psql's, handing every notice on).

mod libpq;

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock};

use dbguard::Context;
use dbguard::shim::live::{self, LiveGuard, Verdict};

use crate::libpq::{
    BAD_RESPONSE, COMMAND_OK, DIAG_SQLSTATE, FATAL_ERROR, LiveConn, NoticeReceiver, PgConn,
    PgResult, REAL, RealFn, TUPLES_OK, libpq,
};

/// The version of the entry points below (one definition, shared with the
/// first stage); the first stage passes the one it was built with to
/// `dbguard_check_init`.
pub use dbguard::shim::live::ABI_VERSION;

/// The pre-flight's confirmed keys, handed over by the first stage.
static CONFIRMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

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
    let watch_notices = catch_unwind(AssertUnwindSafe(|| {
        guard().will_send(&LiveConn { conn }, text)
    }))
    .unwrap_or(false);
    if watch_notices {
        receive_notices(conn);
    }
    WATCHING_RESULTS.store(creates, Ordering::Relaxed);
}

/// The notice receiver `receive_notices` replaced, called after ours.
static NEXT_RECEIVER: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Puts `on_notice` in front of the connection's notice receiver, so the
/// guard hears the SQLSTATE of each notice (a `CREATE TABLE IF NOT
/// EXISTS` that skipped says so only in one). It stays for the life of
/// the connection and hands every notice on, so psql prints them as ever.
fn receive_notices(conn: *mut PgConn) {
    let Some(set) = libpq().set_notice_receiver else {
        return;
    };
    // SAFETY: psql's live connection; our receiver lives as long as the
    // process. The argument is null: psql sets only a notice processor,
    // so the receiver we replace is libpq's default, which ignores its
    // argument (and PQsetNoticeReceiver gives back no argument to keep).
    let previous = unsafe { set(conn, Some(on_notice), std::ptr::null_mut()) };
    if let Some(previous) = previous
        && previous as usize != on_notice as NoticeReceiver as usize
    {
        NEXT_RECEIVER.store(previous as *mut c_void, Ordering::Relaxed);
    }
}

/// Tells the guard the notice's SQLSTATE, then hands the notice on.
unsafe extern "C" fn on_notice(arg: *mut c_void, res: *const PgResult) {
    if WATCHING_RESULTS.load(Ordering::Relaxed)
        && !res.is_null()
        && let (Some(field), Some(guard)) = (libpq().result_error_field, GUARD.get())
    {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: a notice result libpq passes for the call; the field
            // is null or a NUL-terminated string it owns.
            let code = unsafe { field(res, DIAG_SQLSTATE) };
            if !code.is_null() {
                guard.notice(unsafe { CStr::from_ptr(code) }.to_bytes());
            }
        }));
    }
    let next = NEXT_RECEIVER.load(Ordering::Relaxed);
    if !next.is_null() {
        // SAFETY: the receiver the connection had before ours, with the
        // same notice (see `receive_notices` for the argument).
        let next = unsafe { std::mem::transmute::<*mut c_void, NoticeReceiver>(next) };
        unsafe { next(arg, res) };
    }
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

/// Starts the second stage: `abi` is the first stage's `ABI_VERSION`,
/// `real` its lookup of the real libpq functions, `confirmed` the bytes of
/// the pre-flight's confirmed-statements file (one key a line). Returns 0,
/// or -1 for another version.
///
/// # Safety
/// `confirmed` points at `len` readable bytes (or `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbguard_check_init(
    abi: u32,
    real: RealFn,
    confirmed: *const u8,
    len: usize,
) -> c_int {
    if abi != ABI_VERSION {
        return -1;
    }
    let bytes = if confirmed.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(confirmed, len) }
    };
    let started = catch_unwind(AssertUnwindSafe(|| {
        let _ = REAL.set(real);
        let keys = String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if let Ok(mut c) = CONFIRMED.lock() {
            *c = keys;
        }
    }));
    if started.is_ok() { 0 } else { -1 }
}

/// The text to send instead of `query` (to be freed with
/// `dbguard_check_free`), or null to send it unchanged.
///
/// # Safety
/// `conn` is psql's connection and `query` a NUL-terminated string, both
/// valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbguard_check_judge(
    conn: *mut PgConn,
    query: *const c_char,
) -> *mut c_char {
    match judge(conn, query) {
        Some(text) => text.into_raw(),
        None => std::ptr::null_mut(),
    }
}

/// Frees a replacement `dbguard_check_judge` returned.
///
/// # Safety
/// `text` came from `dbguard_check_judge` and is freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbguard_check_free(text: *mut c_char) {
    if !text.is_null() {
        // SAFETY: the caller's contract: made by `CString::into_raw`.
        drop(unsafe { CString::from_raw(text) });
    }
}

/// After judging: `query` is what psql sends now (`sent` 0 when a refusal
/// replaced it).
///
/// # Safety
/// As for `dbguard_check_judge`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbguard_check_sent(conn: *mut PgConn, query: *const c_char, sent: c_int) {
    note_sent(conn, query, sent != 0);
}

/// A result psql reads: from `PQgetResult` (`whole_exec` 0; null when
/// there are no more) or the one `PQexec`/`PQexecParams` returned.
///
/// # Safety
/// `res` is null or a result the real libpq just returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dbguard_check_result(res: *mut PgResult, whole_exec: c_int) {
    if whole_exec != 0 {
        note_exec_result(res);
        return;
    }
    if !WATCHING_RESULTS.load(Ordering::Relaxed) {
        return;
    }
    let status = match libpq().result_status {
        // SAFETY: a non-null result just returned by the real libpq.
        Some(f) if !res.is_null() => Some(unsafe { f(res) }),
        _ if res.is_null() => None,
        _ => Some(FATAL_ERROR),
    };
    note_result(status);
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_path_refuses_anything_that_might_destroy() {
        assert!(looks_destructive(b"DROP TABLE t"));
        assert!(looks_destructive(b"with x as (delete from t) select 1"));
        assert!(!looks_destructive(b"select 1"));
    }
}
