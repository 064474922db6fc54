//! Becoming the real tool, once the plan is carried out. The process is
//! replaced (execve), so signals, the terminal, stdin and the exit status
//! belong to the real tool, exactly as if the shell had started it. For
//! psql, the plan's last step adds the preload library to the environment.

use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use crate::shim::RealTool;
use crate::shim::chain::{CHAIN_ENV, Link};
use crate::{ARGV0_ENV, Context, Error};

/// How the real tool is started.
#[derive(Debug)]
pub enum Launch {
    /// Exec it, with `args` instead of the user's arguments when given (a
    /// spooled `-f` pipe renamed), and `env` added to the environment (the
    /// preload library for psql).
    Exec {
        args: Option<Vec<OsString>>,
        env: Vec<(OsString, OsString)>,
    },
    /// It already ran as a child (`alembic revision --autogenerate`, whose
    /// new file is reviewed afterwards): exit with its status.
    Exited(u8),
}

impl Launch {
    /// Exec with the user's arguments and environment.
    pub fn as_given() -> Launch {
        Launch::Exec {
            args: None,
            env: Vec::new(),
        }
    }
}

/// What a plan does last, after anything it protects is protected: hand
/// over what was read (psql's spooled stdin) and say how to start the tool.
pub type Then<'a> = Box<dyn FnOnce() -> Result<Launch, Error> + 'a>;

/// Carries out `then` and becomes the real tool; returns only on failure,
/// or with the status of a tool that ran as a child.
pub fn launch(real: &RealTool, ctx: &Context, link: &Link, then: Then<'_>) -> Result<u8, Error> {
    match then()? {
        Launch::Exec { args, env } => {
            let args = args
                .as_deref()
                .unwrap_or_else(|| ctx.args.get(1..).unwrap_or_default());
            Err(exec(real, link, args, &env))
        }
        Launch::Exited(status) => Ok(status),
    }
}

/// Replaces this process with `real`, given `args` after argv[0] and
/// `env` added to the environment. Returns only on failure.
///
/// argv[0] becomes the real tool's path rather than the name the user typed:
/// PostgreSQL programs locate their share and sysconf directories (locale
/// files, `pg_service.conf`) from argv[0], and a bare `psql` would lead them
/// back to the shim directory. Their messages use only the file name, so
/// nothing the user sees changes.
fn exec(real: &RealTool, link: &Link, args: &[OsString], env: &[(OsString, OsString)]) -> Error {
    let marker = OsString::from(link.marker_for_next());
    let mut set: Vec<(&OsStr, &OsStr)> = vec![(OsStr::new(CHAIN_ENV), &marker)];
    set.extend(env.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str())));
    Error::Exec {
        program: real.path.clone(),
        source: execve(&real.path, args, &set, ARGV0_ENV),
    }
}

unsafe extern "C" {
    static environ: *const *const c_char;
}

/// execve(2) of `path` (an absolute path: the real tool was resolved) with
/// argv[0] set to `path`, and this process's environment as [`environment`]
/// changes it. Returns only on failure.
///
/// What `std::process::Command::exec` does, without its copy of the whole
/// environment into a map and back, which every psql run would pay for.
/// As it does, the real tool gets an empty signal mask and `SIGPIPE` at
/// its default (the shim ignores it).
fn execve(path: &Path, args: &[OsString], set: &[(&OsStr, &OsStr)], unset: &str) -> io::Error {
    match try_execve(path, args, set, unset) {
        Err(err) => err,
        Ok(never) => match never {},
    }
}

fn try_execve(
    path: &Path,
    args: &[OsString],
    set: &[(&OsStr, &OsStr)],
    unset: &str,
) -> io::Result<std::convert::Infallible> {
    let mut current = Vec::new();
    // SAFETY: `environ` is the process's NULL-terminated array of C
    // strings; nothing changes it while the shim runs (no thread sets
    // variables), and the exec replaces it.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            current.push(CStr::from_ptr(*entry));
            entry = entry.add(1);
        }
    }
    let (kept, added) = environment(&current, set, unset)?;
    let mut argv = vec![c_string(path.as_os_str().as_bytes().to_vec())?];
    for arg in args {
        argv.push(c_string(arg.as_bytes().to_vec())?);
    }
    let argv_ptrs: Vec<*const c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = kept
        .iter()
        .map(|e| e.as_ptr())
        .chain(added.iter().map(|e| e.as_ptr()))
        .chain(std::iter::once(ptr::null()))
        .collect();
    // SAFETY: an empty set for the mask, the default for SIGPIPE, then
    // execve with NULL-terminated arrays of strings that outlive the call
    // (argv[0] is the program's path).
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execve(argv[0].as_ptr(), argv_ptrs.as_ptr(), envp.as_ptr());
        let err = io::Error::last_os_error();
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        Err(err)
    }
}

/// The real tool's environment: the entries of `current` (`NAME=value`, in
/// their order) whose name is neither `unset` nor set again, then `set`
/// (of two equal names, the last wins). An entry without a `=` after its
/// first byte is dropped (a name is not empty, so a `=` at the start
/// belongs to it), as std drops it.
fn environment<'a>(
    current: &[&'a CStr],
    set: &[(&OsStr, &OsStr)],
    unset: &str,
) -> io::Result<(Vec<&'a CStr>, Vec<CString>)> {
    let replaced =
        |name: &[u8]| name == unset.as_bytes() || set.iter().any(|(n, _)| n.as_bytes() == name);
    let kept = current
        .iter()
        .copied()
        .filter(|entry| {
            let bytes = entry.to_bytes();
            bytes
                .iter()
                .skip(1)
                .position(|b| *b == b'=')
                .is_some_and(|eq| !replaced(&bytes[..eq + 1]))
        })
        .collect();
    let mut added = Vec::with_capacity(set.len());
    for (i, (name, value)) in set.iter().enumerate() {
        if set[i + 1..].iter().any(|(later, _)| later == name) {
            continue;
        }
        let mut entry = name.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        added.push(c_string(entry)?);
    }
    Ok((kept, added))
}

fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in an argument"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(kept: &[&CStr], added: &[CString]) -> Vec<String> {
        kept.iter()
            .copied()
            .chain(added.iter().map(CString::as_c_str))
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_environment_keeps_order_replaces_and_removes() {
        let current = [
            c"PATH=/usr/bin",
            c"DBGUARD_ARGV0=psql",
            c"LD_PRELOAD=/old.so",
            c"=weird=kept",
            c"NOEQUALS",
            c"EMPTY=",
            c"LD_PRELOAD=/again.so",
            c"ODD=a=b",
        ];
        let set = [
            (OsStr::new("LD_PRELOAD"), OsStr::new("/first.so")),
            (OsStr::new("CHAIN"), OsStr::new("1.2:1")),
            (OsStr::new("LD_PRELOAD"), OsStr::new("/lib.so")),
        ];
        let (kept, added) = environment(&current, &set, "DBGUARD_ARGV0").unwrap();
        assert_eq!(
            names(&kept, &added),
            [
                "PATH=/usr/bin",
                "=weird=kept",
                "EMPTY=",
                "ODD=a=b",
                "CHAIN=1.2:1",
                "LD_PRELOAD=/lib.so"
            ]
        );
    }

    #[test]
    fn a_nul_byte_in_a_value_is_an_error_not_a_truncation() {
        let set = [(OsStr::new("X"), OsStr::new("a\0b"))];
        let err = environment(&[], &set, "Y").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
