//! dbguard is one binary with several names. Invoked as `dbguard` it is a
//! toolbox (`scan`, `backup`, `doctor`, ...); invoked through a link named
//! after a PostgreSQL tool (`psql`, `alembic`, `dropdb`, `pg_restore`) it is
//! a guard that decides whether the command is dangerous and then replaces
//! itself with the real tool. This file holds the one dispatch point between the two.

// The files shared with the preload library's `no_std` first stage
// (`#[path]` modules) name `alloc` as it must.
extern crate alloc;

/// Writes a line to stderr, ignoring failure: stderr may be a terminal
/// that has hung up, and the guard's outcome must not depend on it.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alembic;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod context;
pub mod dump_format;
pub mod env;
pub mod error;
#[cfg(test)]
mod layers;
pub mod pgtools;
pub mod realtool;
pub mod report;
pub mod restore;
pub mod shim;
pub mod sql;
pub mod target;
pub mod tool;

use std::ffi::OsStr;
use std::path::Path;
use std::process::ExitCode;

pub use context::Context;
pub use error::Error;
use tool::Tool;

/// Environment variable that overrides the name the binary was invoked by,
/// so tests (and curious users) can pick a personality without a link.
pub use env::ARGV0 as ARGV0_ENV;

/// What the binary was asked to be, decided from argv[0]'s file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Toolbox,
    Shim(Tool),
}

impl Personality {
    /// Picks the personality from the file name of `argv0` (`/x/y/psql` and
    /// `./psql` are both `psql`). The whole name counts, not its stem: a
    /// backup copy such as `psql.orig` is not psql, and a guard must never
    /// start under a name the person did not mean. An unknown name is an
    /// error that lists the valid ones, rather than a guess.
    pub fn from_argv0(argv0: &OsStr) -> Result<Self, Error> {
        let name = Path::new(argv0).file_name().unwrap_or_default();
        if name == "dbguard" {
            return Ok(Personality::Toolbox);
        }
        match Tool::from_name(name) {
            Some(tool) => Ok(Personality::Shim(tool)),
            None => Err(Error::UnknownName(name.to_owned())),
        }
    }
}

/// Runs the binary with the process's own arguments and environment and
/// turns the outcome into an exit status, reporting an error once, here.
pub fn main_entry() -> ExitCode {
    ExitCode::from(status())
}

/// [`main_entry`]'s work, as a plain status the shims' early start can
/// hand to `exit`.
fn status() -> u8 {
    let ctx = Context::from_process();
    let outcome = run(&ctx);
    match outcome {
        Ok(code) => code,
        Err(err) if err.is_broken_pipe() => 0,
        Err(err) => {
            err.report();
            err.exit_code()
        }
    }
}

/// The shims' start, called from an ELF constructor the executable
/// registers (`src/main.rs`), before Rust's runtime start-up; returns at
/// once when the binary was started as the toolbox, which then starts as
/// usual.
///
/// Every psql run starts here, and the runtime's start-up is a measurable
/// share of its cost (`docs/benchmarks.md`): it reads `/proc/self/maps` to
/// find the main thread's stack guard and maps a signal stack to report a
/// stack overflow by name. A shim does without the name (an overflow is a
/// plain `SIGSEGV`, and psql is not started), and keeps what its own code
/// relies on: descriptors 0–2 open, and `SIGPIPE` ignored, so a closed pipe
/// is an error it reports (the exec gives the real tool the default back).
/// A panic exits 101, as from `main`.
pub fn shim_before_main() {
    let name = std::env::var_os(ARGV0_ENV)
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::args_os().next())
        .unwrap_or_default();
    if !matches!(Personality::from_argv0(&name), Ok(Personality::Shim(_))) {
        return;
    }
    for fd in 0..3 {
        // SAFETY: plain system calls on descriptor numbers; an fd that is
        // not open gets /dev/null, as the runtime's start-up would give it.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
                && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != fd
            {
                libc::abort();
            }
        }
    }
    // SAFETY: setting a disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let status = std::panic::catch_unwind(status).unwrap_or(101);
    std::process::exit(status.into())
}

/// Dispatches on the personality. Returns the exit status on success; a shim
/// that execs the real tool never returns.
pub fn run(ctx: &Context) -> Result<u8, Error> {
    let argv0 = ctx.argv0_override.as_deref().unwrap_or(ctx.argv0());
    match Personality::from_argv0(argv0)? {
        Personality::Toolbox => cli::run(ctx),
        Personality::Shim(tool) => shim::run(tool, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personality(argv0: &str) -> Result<Personality, Error> {
        Personality::from_argv0(OsStr::new(argv0))
    }

    #[test]
    fn the_file_name_picks_the_personality_wherever_the_link_lives() {
        assert_eq!(personality("dbguard").unwrap(), Personality::Toolbox);
        assert_eq!(
            personality("/usr/local/bin/dbguard").unwrap(),
            Personality::Toolbox
        );
        assert_eq!(
            personality("./psql").unwrap(),
            Personality::Shim(Tool::Psql)
        );
        assert_eq!(
            personality("/home/me/.local/share/dbguard/shims/alembic").unwrap(),
            Personality::Shim(Tool::Alembic)
        );
    }

    /// Regression: the stem made `psql.orig` (or `dbguard.bak`) answer as
    /// psql (or the toolbox).
    #[test]
    fn a_name_with_an_extension_is_not_the_tool() {
        for name in ["psql.orig", "/x/alembic.sh", "dbguard.bak", "psql-15"] {
            assert!(
                matches!(personality(name), Err(Error::UnknownName(_))),
                "{name}"
            );
        }
    }
}
