//! The second stage, `libdbguard_check.so`: found beside this library,
//! loaded with `dlopen` on the first string that may be destructive, and
//! called through the C entry points it exports (`preload/src/lib.rs` in
//! the repository defines them; `ABI_VERSION` must match).

use alloc::borrow::ToOwned;
use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::{CStr, c_char, c_int, c_void};

use crate::sys::Once;
use crate::{ABI_VERSION, CHECK_FILE, PgConn, PgResult};

type RealFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type InitFn = unsafe extern "C" fn(u32, RealFn, *const u8, usize) -> c_int;
type JudgeFn = unsafe extern "C" fn(*mut PgConn, *const c_char) -> *mut c_char;
type FreeFn = unsafe extern "C" fn(*mut c_char);
type SentFn = unsafe extern "C" fn(*mut PgConn, *const c_char, c_int);
type ResultFn = unsafe extern "C" fn(*mut PgResult, c_int);

/// The loaded second stage's entry points.
pub struct Check {
    judge: JudgeFn,
    free: FreeFn,
    sent: SentFn,
    result: ResultFn,
}

static CHECK: Once<Result<Check, String>> = Once::new();

/// The second stage, if it has been loaded successfully.
pub fn loaded() -> Option<&'static Check> {
    CHECK.get().and_then(|c| c.as_ref().ok())
}

/// Loads the second stage (once; a failure is remembered and given again),
/// handing it the pre-flight's confirmed statements. `Err` says why it
/// cannot run, for the refusal.
pub fn load(confirmed: impl FnOnce() -> Vec<u8>) -> Result<&'static Check, String> {
    CHECK
        .get_or_init(|| open(&confirmed()))
        .as_ref()
        .map_err(|why| format!("{why}; a statement that may be destructive is not run without it"))
}

fn open(confirmed: &[u8]) -> Result<Check, String> {
    let path = beside_us();
    let c_path = CString::new(path.clone()).map_err(|_| format!("bad path {path}"))?;
    // SAFETY: a NUL-terminated path. RTLD_LOCAL: its symbols (and the
    // dbguard crate's) stay out of psql's namespace.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!(
            "the dbguard check library could not be loaded: {}",
            dl_error()
        ));
    }
    let symbol = |name: &CStr| -> Result<*mut c_void, String> {
        // SAFETY: a handle dlopen returned, a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            Err(format!(
                "{path} is not a dbguard check library of this version (no {})",
                name.to_string_lossy()
            ))
        } else {
            Ok(p)
        }
    };
    // SAFETY (each transmute): the second stage's exported function of
    // that name, whose signature the type spells out (ABI_VERSION guards
    // against another build's).
    let init: InitFn = unsafe { core::mem::transmute(symbol(c"dbguard_check_init")?) };
    let check = Check {
        judge: unsafe {
            core::mem::transmute::<*mut c_void, JudgeFn>(symbol(c"dbguard_check_judge")?)
        },
        free: unsafe {
            core::mem::transmute::<*mut c_void, FreeFn>(symbol(c"dbguard_check_free")?)
        },
        sent: unsafe {
            core::mem::transmute::<*mut c_void, SentFn>(symbol(c"dbguard_check_sent")?)
        },
        result: unsafe {
            core::mem::transmute::<*mut c_void, ResultFn>(symbol(c"dbguard_check_result")?)
        },
    };
    // SAFETY: the entry point checked above; `confirmed` is valid for the
    // call, which copies it.
    let status = unsafe {
        init(
            ABI_VERSION,
            crate::real_function,
            confirmed.as_ptr(),
            confirmed.len(),
        )
    };
    if status != 0 {
        return Err(format!(
            "{path} is a dbguard check library of another version (reinstall dbguard)"
        ));
    }
    Ok(check)
}

impl Check {
    /// The text to send instead of `query`, or `None` to send it unchanged.
    pub fn judge(&self, conn: *mut PgConn, query: *const c_char) -> Option<CString> {
        // SAFETY: the caller's connection and NUL-terminated query; the
        // second stage catches its own panics.
        let p = unsafe { (self.judge)(conn, query) };
        if p.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string the second stage allocated; it
        // is copied, then handed back to be freed there, exactly once.
        let text = unsafe { CStr::from_ptr(p) }.to_owned();
        unsafe { (self.free)(p) };
        Some(text)
    }

    pub fn sent(&self, conn: *mut PgConn, query: *const c_char, sent: bool) {
        // SAFETY: as in `judge`.
        unsafe { (self.sent)(conn, query, c_int::from(sent)) }
    }

    pub fn result(&self, res: *mut PgResult, whole_exec: bool) {
        // SAFETY: a result (or null) the real libpq just returned.
        unsafe { (self.result)(res, c_int::from(whole_exec)) }
    }
}

/// `libdbguard_check.so` in the directory this library was loaded from.
fn beside_us() -> String {
    let mut info = core::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let anchor = beside_us as *const c_void;
    // SAFETY: dladdr fills `info` for an address inside a loaded object;
    // this function is inside this library.
    let found = unsafe { libc::dladdr(anchor, info.as_mut_ptr()) } != 0;
    // SAFETY: zeroed, or filled by dladdr.
    let info = unsafe { info.assume_init() };
    let own = if found && !info.dli_fname.is_null() {
        // SAFETY: dladdr's file name is NUL-terminated and lives as long
        // as the library stays loaded.
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    match own.rfind('/') {
        Some(slash) => format!("{}/{CHECK_FILE}", &own[..slash]),
        None => CHECK_FILE.to_owned(),
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown error".to_owned()
    } else {
        // SAFETY: see above.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}
