//! The PostgreSQL tools dbguard stands in for: their names, the variable
//! that points at each real one, and the package that provides it. A bottom
//! module: the error type, the PATH walk and the shims all name tools.

use std::ffi::OsStr;
use std::fmt;

use crate::env;

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
        env::real_tool_var(self.name())
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
