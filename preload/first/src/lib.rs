//! `libdbguard_preload.so`, the library the dbguard shim preloads into the
//! real psql (`LD_PRELOAD`): the first stage of the live check. It is
//! small on purpose (no classifier, no dbguard crate), because every psql
//! run that can send SQL loads it. It wraps libpq's query-sending
//! functions and, for each string psql sends, runs a byte-level pre-check
//! (`precheck`); only a string that may be destructive loads the second
//! stage, `libdbguard_check.so` from the same directory, which judges it
//! (classify, ask, back up, or refuse) and from then on sees every string
//! and result, as the whole check always did.
//!
//! Rules this file keeps:
//! - At load time (an ELF constructor, before psql's `main`), our entry is
//!   removed from `LD_PRELOAD`, and the pre-flight's confirmed statements
//!   are read and their file removed, so programs psql starts (`\!`,
//!   `\o |cmd`, the pager) run without us. A process without libpq
//!   (Debian's pg_wrapper, which execs the real psql) keeps them, to pass
//!   them on.
//! - Fail closed: when the second stage cannot be loaded, a string that may
//!   be destructive is replaced by one that fails on the server with the
//!   reason; a harmless one is sent.
//! - No panic crosses the C boundary: the second stage catches its own;
//!   this stage is built `no_std` with `panic = "abort"` (`sys.rs` says
//!   why), has nothing that is expected to panic, and would stop psql
//!   rather than send an unchecked string if something did.
//! - Every entry point psql 13–17 sends SQL text through is wrapped:
//!   `PQexec`, `PQsendQuery`, `PQexecParams`, `PQsendQueryParams`
//!   (`\bind`), `PQprepare` (`\gdesc`) and `PQsendPrepare` (`\parse`);
//!   libpq's own `PQexec` calls `PQsendQuery` through its PLT: that nested
//!   call is passed on. `PQgetResult` is passed on, and shown to the second
//!   stage once it is loaded (it tracks the tables a session creates).

#![cfg_attr(panic = "abort", no_std)]

extern crate alloc;

mod abi;
pub mod precheck;
mod stage2;
mod sys;

use alloc::boxed::Box;
use alloc::ffi::CString;
use alloc::vec::Vec;
use core::ffi::{CStr, c_char, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

pub use abi::{ABI_VERSION, CHECK_FILE, CONFIRMED_ENV, PRELOAD_FILE, refusal_statement};
use sys::{Once, ThreadFlag};

pub type PgConn = c_void;
pub type PgResult = c_void;
pub type Oid = u32;

type ExecFn = unsafe extern "C" fn(*mut PgConn, *const c_char) -> *mut PgResult;
type SendQueryFn = unsafe extern "C" fn(*mut PgConn, *const c_char) -> c_int;
type ExecParamsFn = unsafe extern "C" fn(
    *mut PgConn,
    *const c_char,
    c_int,
    *const Oid,
    *const *const c_char,
    *const c_int,
    *const c_int,
    c_int,
) -> *mut PgResult;
type SendQueryParamsFn = unsafe extern "C" fn(
    *mut PgConn,
    *const c_char,
    c_int,
    *const Oid,
    *const *const c_char,
    *const c_int,
    *const c_int,
    c_int,
) -> c_int;
type PrepareFn = unsafe extern "C" fn(
    *mut PgConn,
    *const c_char,
    *const c_char,
    c_int,
    *const Oid,
) -> *mut PgResult;
type SendPrepareFn =
    unsafe extern "C" fn(*mut PgConn, *const c_char, *const c_char, c_int, *const Oid) -> c_int;
type GetResultFn = unsafe extern "C" fn(*mut PgConn) -> *mut PgResult;

/// The real libpq function `name` (NUL-terminated), the next definition
/// after this library; null when the process has none. The second stage
/// gets its libpq through this, so its own queries never come back here.
///
/// # Safety
/// `name` is null or NUL-terminated.
#[inline(never)]
pub unsafe extern "C" fn real_function(name: *const c_char) -> *mut c_void {
    if name.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: dlsym with a NUL-terminated name (the caller's contract).
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name) };
    // RTLD_NEXT means "after the object dlsym returns into". Kept from
    // being a tail call (which an optimised build makes of it), so that
    // object is this library, not the second stage that called us: from
    // there the next `PQgetResult` would not be libpq's.
    core::hint::black_box(found)
}

/// Looks `name` up after this library, as a function pointer of type `$ty`.
macro_rules! next {
    ($name:literal, $ty:ty) => {{
        // SAFETY: a NUL-terminated name.
        let p = unsafe { real_function(concat!($name, "\0").as_ptr().cast()) };
        if p.is_null() {
            None
        } else {
            // SAFETY: the address of libpq's function of that name, whose C
            // signature `$ty` spells out; function and data pointers have
            // the same representation on every platform we build.
            Some(unsafe { core::mem::transmute::<*mut c_void, $ty>(p) })
        }
    }};
}

/// `fn $name() -> Option<$ty>`: the real function behind one wrapper,
/// looked up on its first call. One by one, so a run pays only for the
/// entry points psql uses (`psql -c 'select 1'`: two of seven), and
/// loading the library pays for one.
macro_rules! real {
    ($name:ident, $symbol:literal, $ty:ty) => {
        fn $name() -> Option<$ty> {
            static REAL: Once<Option<$ty>> = Once::new();
            *REAL.get_or_init(|| next!($symbol, $ty))
        }
    };
}

real!(real_exec, "PQexec", ExecFn);
real!(real_send_query, "PQsendQuery", SendQueryFn);
real!(real_exec_params, "PQexecParams", ExecParamsFn);
real!(
    real_send_query_params,
    "PQsendQueryParams",
    SendQueryParamsFn
);
real!(real_prepare, "PQprepare", PrepareFn);
real!(real_send_prepare, "PQsendPrepare", SendPrepareFn);
real!(real_get_result, "PQgetResult", GetResultFn);

/// Runs when the library is loaded, before psql's `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// The pre-flight's confirmed statements (the file's bytes), read at load
/// time and taken by the second stage when it is loaded (null: none, or
/// taken already).
static CONFIRMED: AtomicPtr<Vec<u8>> = AtomicPtr::new(ptr::null_mut());

extern "C" fn on_load() {
    scrub_environment();
}

/// Removes what only this process should see from the environment.
///
/// Only in a process that has libpq: on Debian `psql` is a Perl wrapper
/// (pg_wrapper) that execs the real psql, and the variables must survive
/// that exec to reach it.
fn scrub_environment() {
    if real_send_query().is_none() {
        return;
    }
    if let Some(list) = sys::getenv(c"LD_PRELOAD") {
        let kept: Vec<&[u8]> = list
            .split(|b| *b == b':' || *b == b' ')
            .filter(|entry| !entry.is_empty() && !is_us(entry))
            .collect();
        let kept = (!kept.is_empty()).then(|| kept.join(&b':'));
        // SAFETY: constructors run before `main`, while the process has
        // one thread, so nothing reads the environment concurrently.
        unsafe { sys::setenv(c"LD_PRELOAD", kept.as_deref()) };
    }
    let confirmed_env = c"DBGUARD_LIVE_CONFIRMED";
    debug_assert_eq!(confirmed_env.to_bytes(), CONFIRMED_ENV.as_bytes());
    if let Some(path) = sys::getenv(confirmed_env) {
        let Ok(path) = CString::new(path) else {
            return;
        };
        // SAFETY: as above, single-threaded before `main`.
        unsafe { sys::setenv(confirmed_env, None) };
        if let Some(bytes) = sys::read_file(&path) {
            // Taken (and freed) by `take_confirmed`; the constructor runs once.
            CONFIRMED.store(Box::into_raw(Box::new(bytes)), Ordering::Release);
        }
        sys::remove_file(&path);
    }
}

/// The confirmed statements, once: the second stage gets them when it loads.
fn take_confirmed() -> Vec<u8> {
    let p = CONFIRMED.swap(ptr::null_mut(), Ordering::AcqRel);
    if p.is_null() {
        Vec::new()
    } else {
        // SAFETY: a box `scrub_environment` leaked, taken out exactly once.
        *unsafe { Box::from_raw(p) }
    }
}

fn is_us(entry: &[u8]) -> bool {
    entry.rsplit(|b| *b == b'/').next() == Some(PRELOAD_FILE.as_bytes())
}

/// Set while a real libpq function runs on psql's behalf: libpq's own
/// `PQexec` calls `PQsendQuery` through its PLT, which lands in our wrapper
/// again, and the text was judged already.
static INSIDE: ThreadFlag = ThreadFlag::new();

/// Marks the duration of a call into the real libpq (see `INSIDE`).
struct Inside(bool);

impl Inside {
    fn enter() -> Inside {
        Inside(INSIDE.replace(true))
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.replace(self.0);
    }
}

fn nested() -> bool {
    INSIDE.get()
}

/// The text to send instead of `query`, or `None` to send it unchanged.
fn judge(conn: *mut PgConn, query: *const c_char) -> Option<CString> {
    if conn.is_null() || query.is_null() {
        return None;
    }
    if let Some(check) = stage2::loaded() {
        // Once loaded, the second stage sees every string (it forgets
        // learned keys on some) and runs the pre-check itself.
        return check.judge(conn, query);
    }
    // SAFETY: psql passes a NUL-terminated query that outlives the call.
    let sql = unsafe { CStr::from_ptr(query) }.to_bytes();
    if !precheck::may_hold_candidate(sql) {
        // Most strings: nothing to check, nothing to load.
        return None;
    }
    match stage2::load(take_confirmed) {
        Ok(check) => check.judge(conn, query),
        Err(why) => CString::new(refusal_statement(&why)).ok(),
    }
}

/// After `judge`: tells the second stage, if loaded, what is really sent
/// now (`sent` is false when a refusal replaced it).
fn note_sent(conn: *mut PgConn, query: *const c_char, sent: bool) {
    if let Some(check) = stage2::loaded() {
        check.sent(conn, query, sent);
    }
}

/// A result psql reads (`whole_exec`: `PQexec`'s, the string's last).
fn note_result(res: *mut PgResult, whole_exec: bool) {
    if let Some(check) = stage2::loaded() {
        check.result(res, whole_exec);
    }
}

/// # Safety
/// Called by psql with libpq's contract for `PQexec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQexec(conn: *mut PgConn, query: *const c_char) -> *mut PgResult {
    let Some(real) = real_exec() else {
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
    note_result(res, true);
    res
}

/// # Safety
/// Called by psql with libpq's contract for `PQsendQuery`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQsendQuery(conn: *mut PgConn, query: *const c_char) -> c_int {
    let Some(real) = real_send_query() else {
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

/// Passes every result on untouched; the second stage, once loaded, sees
/// them (the results of a string that creates tables).
///
/// # Safety
/// Called by psql with libpq's contract for `PQgetResult`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn PQgetResult(conn: *mut PgConn) -> *mut PgResult {
    let Some(real) = real_get_result() else {
        return ptr::null_mut();
    };
    // SAFETY: the caller's connection, passed on unchanged.
    let res = unsafe { real(conn) };
    if !nested() {
        note_result(res, false);
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
    let Some(real) = real_exec_params() else {
        return ptr::null_mut();
    };
    let nested = nested();
    let refusal = if nested { None } else { judge(conn, command) };
    if !nested {
        note_sent(conn, command, refusal.is_none());
    }
    // The refusal takes no parameters.
    let p = match &refusal {
        None => Params::of(
            command,
            n_params,
            param_types,
            param_values,
            param_lengths,
            param_formats,
        ),
        Some(refusal) => Params::none(refusal),
    };
    let inside = Inside::enter();
    // SAFETY: the caller's arguments passed on unchanged, or a valid query
    // (`refusal` lives until the call returns) with no parameter arrays.
    let res = unsafe {
        real(
            conn,
            p.command,
            p.n,
            p.types,
            p.values,
            p.lengths,
            p.formats,
            result_format,
        )
    };
    if !inside.0 {
        note_result(res, true);
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
    let Some(real) = real_send_query_params() else {
        return 0;
    };
    let nested = nested();
    let refusal = if nested { None } else { judge(conn, command) };
    if !nested {
        note_sent(conn, command, refusal.is_none());
    }
    let p = match &refusal {
        None => Params::of(
            command,
            n_params,
            param_types,
            param_values,
            param_lengths,
            param_formats,
        ),
        Some(refusal) => Params::none(refusal),
    };
    let _inside = Inside::enter();
    // SAFETY: as in PQexecParams.
    unsafe {
        real(
            conn,
            p.command,
            p.n,
            p.types,
            p.values,
            p.lengths,
            p.formats,
            result_format,
        )
    }
}

/// The command and parameter arrays of `PQexecParams` and
/// `PQsendQueryParams`, passed on as they came or replaced by a refusal
/// with no parameters at all.
struct Params {
    command: *const c_char,
    n: c_int,
    types: *const Oid,
    values: *const *const c_char,
    lengths: *const c_int,
    formats: *const c_int,
}

impl Params {
    fn of(
        command: *const c_char,
        n: c_int,
        types: *const Oid,
        values: *const *const c_char,
        lengths: *const c_int,
        formats: *const c_int,
    ) -> Params {
        Params {
            command,
            n,
            types,
            values,
            lengths,
            formats,
        }
    }

    fn none(refusal: &CStr) -> Params {
        Params {
            command: refusal.as_ptr(),
            n: 0,
            types: ptr::null(),
            values: ptr::null(),
            lengths: ptr::null(),
            formats: ptr::null(),
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
    let Some(real) = real_prepare() else {
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
    let Some(real) = real_send_prepare() else {
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
        assert!(!is_us(b"/x/libdbguard_check.so"));
    }
}
