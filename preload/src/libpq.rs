//! The real libpq: its functions looked up once (those the first stage
//! wraps through the first stage's `real_function`, which finds the
//! definitions after its wrappers; those nobody wraps with the global
//! `dlsym`), and a live connection seen through them as the guard's
//! `Connection`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::sync::OnceLock;

use dbguard::shim::live::{Connection, TxStatus};

/// The first stage's lookup of the real functions behind its wrappers.
pub type RealFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;

pub type PgConn = c_void;
pub type PgResult = c_void;

pub type SendQueryFn = unsafe extern "C" fn(*mut PgConn, *const c_char) -> c_int;
type TextFn = unsafe extern "C" fn(*const PgConn) -> *mut c_char;
type StatusFn = unsafe extern "C" fn(*const PgConn) -> c_int;
type ConninfoFn = unsafe extern "C" fn(*mut PgConn) -> *mut ConninfoOption;
type ResultStatusFn = unsafe extern "C" fn(*const PgResult) -> c_int;
type NtuplesFn = unsafe extern "C" fn(*const PgResult) -> c_int;
type GetvalueFn = unsafe extern "C" fn(*const PgResult, c_int, c_int) -> *mut c_char;
type ClearFn = unsafe extern "C" fn(*mut PgResult);
pub type GetResultFn = unsafe extern "C" fn(*mut PgConn) -> *mut PgResult;
type ParameterStatusFn = unsafe extern "C" fn(*const PgConn, *const c_char) -> *const c_char;
/// libpq's `PQnoticeReceiver`.
pub type NoticeReceiver = unsafe extern "C" fn(*mut c_void, *const PgResult);
type SetNoticeReceiverFn = unsafe extern "C" fn(
    *mut PgConn,
    Option<NoticeReceiver>,
    *mut c_void,
) -> Option<NoticeReceiver>;
type ResultErrorFieldFn = unsafe extern "C" fn(*const PgResult, c_int) -> *mut c_char;

/// `PG_DIAG_SQLSTATE`, the field code of a result's SQLSTATE.
pub const DIAG_SQLSTATE: c_int = b'C' as c_int;

/// `PGRES_COMMAND_OK` and `PGRES_TUPLES_OK` of `ExecStatusType`.
pub const COMMAND_OK: c_int = 1;
pub const TUPLES_OK: c_int = 2;
/// `PGRES_BAD_RESPONSE` and `PGRES_FATAL_ERROR`.
pub const BAD_RESPONSE: c_int = 5;
pub const FATAL_ERROR: c_int = 7;
type ConninfoFreeFn = unsafe extern "C" fn(*mut ConninfoOption);

/// libpq's `PQconninfoOption`.
#[repr(C)]
struct ConninfoOption {
    keyword: *mut c_char,
    envvar: *mut c_char,
    compiled: *mut c_char,
    val: *mut c_char,
    label: *mut c_char,
    dispchar: *mut c_char,
    dispsize: c_int,
}

/// The libpq functions this library calls. `None` where the process has
/// no such function (not linked with libpq, or an older libpq).
pub struct Libpq {
    pub send_query: Option<SendQueryFn>,
    host: Option<TextFn>,
    hostaddr: Option<TextFn>,
    port: Option<TextFn>,
    db: Option<TextFn>,
    user: Option<TextFn>,
    pass: Option<TextFn>,
    transaction_status: Option<StatusFn>,
    conninfo: Option<ConninfoFn>,
    conninfo_free: Option<ConninfoFreeFn>,
    pub result_status: Option<ResultStatusFn>,
    parameter_status: Option<ParameterStatusFn>,
    ntuples: Option<NtuplesFn>,
    getvalue: Option<GetvalueFn>,
    clear: Option<ClearFn>,
    pub get_result: Option<GetResultFn>,
    pub set_notice_receiver: Option<SetNoticeReceiverFn>,
    pub result_error_field: Option<ResultErrorFieldFn>,
}

/// The real function behind the first stage's wrapper (`RTLD_NEXT`,
/// through it) or the one function of that name in the process
/// (`RTLD_DEFAULT`), as a function pointer of the given type.
macro_rules! lookup {
    (RTLD_NEXT, $name:literal, $ty:ty) => {{
        let p = match REAL.get() {
            // SAFETY: the first stage's lookup, with a NUL-terminated name.
            Some(real) => unsafe { real(concat!($name, "\0").as_ptr().cast()) },
            None => std::ptr::null_mut(),
        };
        lookup!(@cast p, $ty)
    }};
    (RTLD_DEFAULT, $name:literal, $ty:ty) => {{
        // SAFETY: dlsym with a NUL-terminated name is always safe to call.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, concat!($name, "\0").as_ptr().cast()) };
        lookup!(@cast p, $ty)
    }};
    (@cast $p:expr, $ty:ty) => {{
        // The result is either null or the address of libpq's function of
        // that name, whose C signature the target type spells out.
        let p: *mut c_void = $p;
        if p.is_null() {
            None
        } else {
            // SAFETY: see above; a function pointer and a data pointer have
            // the same size and representation on every platform we build.
            Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(p) })
        }
    }};
}

/// Set once, by `dbguard_check_init`, before anything is looked up.
pub static REAL: OnceLock<RealFn> = OnceLock::new();

/// The real libpq, looked up on first use.
pub fn libpq() -> &'static Libpq {
    static LIBPQ: OnceLock<Libpq> = OnceLock::new();
    LIBPQ.get_or_init(|| Libpq {
        send_query: lookup!(RTLD_NEXT, "PQsendQuery", SendQueryFn),
        host: lookup!(RTLD_DEFAULT, "PQhost", TextFn),
        hostaddr: lookup!(RTLD_DEFAULT, "PQhostaddr", TextFn),
        port: lookup!(RTLD_DEFAULT, "PQport", TextFn),
        db: lookup!(RTLD_DEFAULT, "PQdb", TextFn),
        user: lookup!(RTLD_DEFAULT, "PQuser", TextFn),
        pass: lookup!(RTLD_DEFAULT, "PQpass", TextFn),
        transaction_status: lookup!(RTLD_DEFAULT, "PQtransactionStatus", StatusFn),
        conninfo: lookup!(RTLD_DEFAULT, "PQconninfo", ConninfoFn),
        conninfo_free: lookup!(RTLD_DEFAULT, "PQconninfoFree", ConninfoFreeFn),
        result_status: lookup!(RTLD_DEFAULT, "PQresultStatus", ResultStatusFn),
        parameter_status: lookup!(RTLD_DEFAULT, "PQparameterStatus", ParameterStatusFn),
        ntuples: lookup!(RTLD_DEFAULT, "PQntuples", NtuplesFn),
        getvalue: lookup!(RTLD_DEFAULT, "PQgetvalue", GetvalueFn),
        clear: lookup!(RTLD_DEFAULT, "PQclear", ClearFn),
        // Wrapped too (to see whether what psql sent succeeded): the real
        // one, after ours.
        get_result: lookup!(RTLD_NEXT, "PQgetResult", GetResultFn),
        set_notice_receiver: lookup!(RTLD_DEFAULT, "PQsetNoticeReceiver", SetNoticeReceiverFn),
        result_error_field: lookup!(RTLD_DEFAULT, "PQresultErrorField", ResultErrorFieldFn),
    })
}

/// A C string owned by libpq, copied; `None` for null or empty.
fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libpq returns NUL-terminated strings that live as long as the
    // connection (or the conninfo array), which outlives this copy.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    (!s.is_empty()).then_some(s)
}

/// A connection psql is about to send a statement on.
pub struct LiveConn {
    pub conn: *mut PgConn,
}

impl LiveConn {
    fn get(&self, f: Option<TextFn>) -> Option<String> {
        // SAFETY: `conn` is the non-null PGconn psql passed to the wrapped
        // call, valid for its duration; the accessor only reads it.
        f.and_then(|f| text(unsafe { f(self.conn) }))
    }

    /// Sends `sql` (possibly several statements) with the real
    /// PQsendQuery (never our wrapper, so it is not judged) and gives, for
    /// each statement in order, the first value of its first row (`""`
    /// for a command without rows) or `None` for an error. After an error
    /// the server runs no further statement of the string.
    fn run(&self, sql: &str) -> Vec<Option<String>> {
        let api = libpq();
        let (Some(send), Some(next), Some(status), Some(ntuples), Some(getvalue), Some(clear)) = (
            api.send_query,
            api.get_result,
            api.result_status,
            api.ntuples,
            api.getvalue,
            api.clear,
        ) else {
            return Vec::new();
        };
        let Ok(sql) = std::ffi::CString::new(sql) else {
            return Vec::new();
        };
        // SAFETY: the live connection (see `get`), idle between statements
        // because psql is about to send one; a NUL-terminated query.
        if unsafe { send(self.conn, sql.as_ptr()) } == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: results are read until libpq says there are no more,
            // which leaves the connection idle for psql, as it found it.
            let res = unsafe { next(self.conn) };
            if res.is_null() {
                break;
            }
            // SAFETY: `res` is a non-null result just returned; it is read
            // and then cleared exactly once.
            unsafe {
                out.push(match status(res) {
                    TUPLES_OK if ntuples(res) > 0 => {
                        Some(text(getvalue(res, 0, 0)).unwrap_or_default())
                    }
                    COMMAND_OK | TUPLES_OK => Some(String::new()),
                    _ => None,
                });
                clear(res);
            }
        }
        out
    }
}

/// Settings that must not be handed on: secrets without an environment
/// variable to carry them, and names that would pass for the user's own
/// session in pg_stat_activity.
const NOT_HANDED_ON: [&str; 4] = [
    "sslpassword",
    "application_name",
    "fallback_application_name",
    "replication",
];

impl Connection for LiveConn {
    fn settings(&self) -> Vec<(String, String)> {
        let api = libpq();
        let mut out: Vec<(String, String)> = Vec::new();
        if let (Some(conninfo), Some(free)) = (api.conninfo, api.conninfo_free) {
            // SAFETY: `conn` is valid (see `get`); PQconninfo returns a
            // freshly allocated array ending in an entry with a null
            // keyword, or null.
            let options = unsafe { conninfo(self.conn) };
            if !options.is_null() {
                let mut at = options;
                loop {
                    // SAFETY: `at` stays within the array: we stop at the
                    // terminating entry.
                    let option = unsafe { &*at };
                    let Some(keyword) = text(option.keyword) else {
                        break;
                    };
                    if let Some(value) = text(option.val)
                        && !NOT_HANDED_ON.contains(&keyword.as_str())
                    {
                        out.push((keyword, value));
                    }
                    // SAFETY: not the terminator, so the next entry exists.
                    at = unsafe { at.add(1) };
                }
                // SAFETY: the array came from PQconninfo and is freed once.
                unsafe { free(options) };
            }
        }
        // The host, address and port actually reached, rather than lists.
        let mut set = |key: &str, value: Option<String>, only_if_present: bool| {
            let Some(value) = value else { return };
            match out.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None if !only_if_present => out.push((key.to_owned(), value)),
                None => {}
            }
        };
        set("host", self.get(api.host), false);
        set("hostaddr", self.get(api.hostaddr), true);
        set("port", self.get(api.port), false);
        set("dbname", self.get(api.db), false);
        set("user", self.get(api.user), false);
        // A password typed at psql's prompt lives only in the connection.
        set("password", self.get(api.pass), false);
        out
    }

    fn identity(&self) -> String {
        let api = libpq();
        // The connection object itself, and where it leads: after `\c`
        // psql has a new one, which may reuse the old one's address.
        // One string, no copies: it is asked for every statement that
        // changes rows by key, and `format!` with four copied parts cost
        // several times the libpq calls.
        let mut id = String::with_capacity(80);
        let _ = write!(id, "{:x}", self.conn as usize);
        for f in [api.host, api.port, api.db, api.user] {
            id.push('\0');
            if let Some(f) = f {
                // SAFETY: `conn` is valid (see `get`); libpq returns a
                // NUL-terminated string owned by the connection, or null.
                let p = unsafe { f(self.conn) };
                if !p.is_null() {
                    // SAFETY: as above; read before anything else runs on it.
                    id.push_str(&unsafe { CStr::from_ptr(p) }.to_string_lossy());
                }
            }
        }
        id
    }

    fn explain(&self, statements: &[String]) -> Vec<Option<String>> {
        // A newline before each `;`: a statement may end in a `--` comment.
        let batch = statements.join("\n;\n");
        let plans = |mut results: Vec<Option<String>>| {
            results.resize(statements.len(), None);
            results
                .into_iter()
                .map(|r| r.filter(|s| !s.is_empty()))
                .collect()
        };
        if self.transaction() != TxStatus::InTransaction {
            // Idle: an implicit transaction of its own, whose failure
            // touches nothing.
            return plans(self.run(&batch));
        }
        // Inside the user's transaction an error would abort it: run under
        // a savepoint, and undo it whatever happened.
        let mut results = self.run(&format!("SAVEPOINT dbguard_estimate;\n{batch}"));
        if results.first().is_none_or(Option::is_none) {
            return plans(Vec::new());
        }
        results.remove(0);
        self.run("ROLLBACK TO SAVEPOINT dbguard_estimate; RELEASE SAVEPOINT dbguard_estimate");
        plans(results)
    }

    fn parameter(&self, name: &str) -> Option<String> {
        let f = libpq().parameter_status?;
        // Asked twice for every string the check sees: the name goes
        // through a buffer on the stack (parameter names are shorter than
        // PostgreSQL's 64-byte NAMEDATALEN).
        let mut buf = [0u8; 128];
        let bytes = name.as_bytes();
        if bytes.len() >= buf.len() || bytes.contains(&0) {
            return None;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: `conn` is valid (see `get`); the name is NUL-terminated;
        // the value (or null) is owned by the connection and copied here.
        text(unsafe { f(self.conn, buf.as_ptr().cast()) })
    }

    fn transaction(&self) -> TxStatus {
        match libpq().transaction_status {
            // SAFETY: `conn` is valid (see `get`).
            Some(f) => TxStatus::from_libpq(unsafe { f(self.conn) }),
            None => TxStatus::Unknown,
        }
    }
}
