//! The one error type. Every variant carries enough to say what happened and
//! what to do next in a single line, and maps to a documented exit status.
//! Errors are printed once, at the top, as `dbguard: message`.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::tool::Tool;

/// Exit statuses shared by every personality (README, "Exit statuses").
pub mod exit {
    /// Success; for a shim, whatever the real tool returned.
    pub const OK: u8 = 0;
    /// A check found something: `scan` found destructive SQL, `verify` a bad backup.
    pub const FOUND: u8 = 1;
    /// Usage, input or environment error.
    pub const ERROR: u8 = 2;
    /// A shim refused to run a destructive operation it could not protect.
    /// Distinct from psql's own 0–3, alembic's, dropdb's and pg_restore's 0–1.
    pub const REFUSED: u8 = 77;
    /// The real tool was found but could not be executed (or would be ourselves).
    pub const CANNOT_EXEC: u8 = 126;
    /// No real tool behind the shim.
    pub const NOT_FOUND: u8 = 127;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invoked as {:?}, which is not a name dbguard answers to; valid names: dbguard, {}",
        .0,
        Tool::names().join(", ")
    )]
    UnknownName(OsString),

    #[error("{0}")]
    Usage(String),

    #[error(
        "no real {tool} found on PATH behind the dbguard shims; install it (apt-get install -y {package}) or set {var} to its path"
    )]
    RealToolNotFound {
        tool: Tool,
        package: &'static str,
        var: String,
    },

    /// `DBGUARD_REAL_<PROGRAM>` names something that cannot be the real
    /// program. The same error (and exit status) for a shim's tool and for
    /// a client the toolbox runs.
    #[error("{var}={} {why}; point it at the real {program}", .path.display())]
    BadOverride {
        program: String,
        var: String,
        path: PathBuf,
        why: &'static str,
    },

    #[error(
        "recursive shim invocation: {tool} reached a dbguard shim {depth} times in one process; check {var} and PATH for links back to dbguard"
    )]
    Recursion { tool: Tool, depth: u32, var: String },

    #[error("cannot run {}: {source}", .program.display())]
    Exec { program: PathBuf, source: io::Error },

    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },

    /// The guard would not run a destructive operation; the message names the
    /// statement, the database and the bypass.
    #[error("{0}")]
    Refused(String),

    /// A failure with its own message and status, for subcommands whose
    /// outcome is not a plain error (e.g. a checksum mismatch).
    #[error("{message}")]
    Failed { message: String, code: u8 },

    /// A PostgreSQL client program dbguard runs itself (pg_dump, pg_restore,
    /// psql for helper queries) is missing.
    #[error(
        "{name} not found on PATH; install it (apt-get install -y postgresql-client) or set {var} to its path"
    )]
    ClientToolNotFound { name: String, var: String },

    /// The connection check failed before anything was done.
    #[error(
        "cannot connect to {target}: {detail}; check the server is running and the connection settings (-h -p -U -d, PG* variables, .pgpass)"
    )]
    Unreachable { target: String, detail: String },

    /// A backup could not be completed; nothing with a final name was left behind.
    #[error("backup failed: {0}; nothing was saved")]
    BackupFailed(String),

    /// A configuration file exists but cannot be used.
    #[error("{}: {message}", .path.display())]
    Config { path: PathBuf, message: String },
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::UnknownName(_)
            | Error::Usage(_)
            | Error::Io { .. }
            | Error::ClientToolNotFound { .. }
            | Error::Unreachable { .. }
            | Error::BackupFailed(_)
            | Error::Config { .. } => exit::ERROR,
            Error::RealToolNotFound { .. } => exit::NOT_FOUND,
            Error::BadOverride { .. } | Error::Recursion { .. } | Error::Exec { .. } => {
                exit::CANNOT_EXEC
            }
            Error::Refused(_) => exit::REFUSED,
            Error::Failed { code, .. } => *code,
        }
    }

    /// True for a write to a closed pipe (`dbguard scan | head`): a quiet
    /// success, as for any Unix filter.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Prints the error once, as `dbguard: message`.
    pub fn report(&self) {
        if self.is_broken_pipe() {
            return;
        }
        // Not eprintln!: stderr may be a terminal that just hung up, and a
        // failed report must not turn a refusal into a panic (exit 101).
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "dbguard: {self}");
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::io("I/O error", source)
    }
}
