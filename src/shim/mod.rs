//! The guard personality: what happens when the binary is invoked as `psql`
//! or `alembic`. psql's SQL is analysed (`psql_guard`) and destructive runs
//! are confirmed and backed up before the real tool is exec'd; alembic
//! downgrades are rendered offline, scanned, confirmed and backed up
//! (`alembic_guard`), every other alembic command passes straight through.

/// Writes a line to stderr, ignoring failure: stderr may be a terminal
/// that has hung up, and the guard's outcome must not depend on it.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alembic;
pub mod alembic_guard;
pub mod alembic_target;
pub mod chain;
pub mod exec;
pub mod guard;
pub mod live;
pub mod psql;
pub mod psql_guard;
pub mod resolve;
pub mod safeguard;
pub mod stdin;

use std::ffi::OsStr;
use std::fmt;

use crate::{Context, Error};
pub use resolve::RealTool;

/// A PostgreSQL tool the binary can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Psql,
    Alembic,
}

impl Tool {
    pub const ALL: [Tool; 2] = [Tool::Psql, Tool::Alembic];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Psql => "psql",
            Tool::Alembic => "alembic",
        }
    }

    pub fn names() -> Vec<&'static str> {
        Tool::ALL.iter().map(|t| t.name()).collect()
    }

    pub fn from_name(name: &OsStr) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| name == t.name())
    }

    /// The variable that names the real tool explicitly, e.g. `DBGUARD_REAL_PSQL`.
    pub fn override_var(self) -> String {
        format!("DBGUARD_REAL_{}", self.name().to_ascii_uppercase())
    }

    /// The Debian package that provides the real tool, for error hints.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Psql => "postgresql-client",
            Tool::Alembic => "alembic",
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs the guard for `tool`. On success this does not return: the process
/// becomes the real tool.
pub fn run(tool: Tool, ctx: &Context) -> Result<u8, Error> {
    let link = chain::Link::observe(tool, ctx)?;
    let real = RealTool::resolve(tool, ctx)?;
    let env = match tool {
        Tool::Psql => psql_guard::guard(ctx, &link)?,
        Tool::Alembic => {
            alembic_guard::guard(ctx, &link, &real)?;
            Vec::new()
        }
    };
    Err(exec::exec(&real, ctx, &link, &env))
}
