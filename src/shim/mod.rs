//! The guard personality: what happens when the binary is invoked as `psql`,
//! `alembic`, `dropdb` or `pg_restore`. psql's SQL is analysed
//! (`psql_guard`) and destructive runs are confirmed and backed up before
//! the real tool is exec'd; alembic downgrades are rendered offline,
//! scanned, confirmed and backed up (`alembic_guard`); `dropdb` and
//! `pg_restore --clean -d` destroy a database as a whole and are confirmed
//! and backed up whole (`dropdb_guard`, `pg_restore_guard`). Every other
//! invocation passes straight through.

pub mod alembic;
pub mod alembic_guard;
pub mod alembic_target;
pub mod chain;
pub mod dropdb;
pub mod dropdb_guard;
pub mod exec;
pub mod getopt;
pub mod guard;
pub mod pg_restore;
pub mod pg_restore_guard;
pub mod psql;
pub mod psql_guard;
pub mod resolve;
pub mod safeguard;
pub mod spawn;
pub mod stdin;
pub mod whole_database;

use std::ffi::OsStr;
use std::fmt;

use crate::{Context, Error};
pub use resolve::RealTool;

/// A PostgreSQL tool the binary can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    Psql,
    Alembic,
    Dropdb,
    PgRestore,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Psql, Tool::Alembic, Tool::Dropdb, Tool::PgRestore];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Psql => "psql",
            Tool::Alembic => "alembic",
            Tool::Dropdb => "dropdb",
            Tool::PgRestore => "pg_restore",
        }
    }

    pub fn names() -> Vec<&'static str> {
        Tool::ALL.iter().map(|t| t.name()).collect()
    }

    /// Every tool's name in a sentence: `psql, alembic, dropdb and pg_restore`.
    pub fn names_in_words() -> String {
        let names = Tool::names();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.join(""),
        }
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
            Tool::Psql | Tool::Dropdb | Tool::PgRestore => "postgresql-client",
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
    match tool {
        Tool::Psql => {
            if let Some(args) = psql_guard::guard(ctx, &link)? {
                return Err(exec::exec_with_args(&real, &link, &args));
            }
        }
        Tool::Alembic => {
            if let Some(status) = alembic_guard::review_autogenerate(ctx, &link, &real) {
                return status;
            }
            alembic_guard::guard(ctx, &link, &real)?
        }
        Tool::Dropdb => dropdb_guard::guard(ctx, &link)?,
        Tool::PgRestore => pg_restore_guard::guard(ctx, &link)?,
    }
    Err(exec::exec(&real, ctx, &link))
}
