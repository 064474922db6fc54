//! The one error type. Every variant carries enough to say what happened and
//! what to do next in a single line, and maps to a documented exit status.
//! Errors are printed once, at the top, as `dbguard: message`.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

use crate::tool::Tool;

/// Exit statuses shared by every personality (docs/exit-statuses-and-environment.md, "Exit statuses").
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

    /// The guard would not run a destructive operation, or the person said
    /// no: what was refused, why, and how to proceed.
    #[error("{0}")]
    Refused(Refusal),

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
        use std::io::{IsTerminal, Write};
        let mut stderr = std::io::stderr();
        if let Error::Refused(refusal) = self {
            let terminal = stderr.is_terminal();
            let width = terminal
                .then(|| console::Term::stderr().size_checked())
                .flatten()
                .map_or(usize::MAX, |(_, cols)| usize::from(cols));
            let _ = render_refusal(&mut stderr, refusal, width, terminal && colour_wanted());
            return;
        }
        let _ = writeln!(stderr, "dbguard: {self}");
    }
}

/// Whether the environment allows colour on a terminal: `NO_COLOR` unset
/// (or empty) and a `TERM` that is set and not `dumb`, as for `dbguard scan`.
pub fn colour_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_some_and(|t| !t.is_empty() && t != "dumb")
}

/// A refusal, in the order the person needs it: what was not run and
/// why, then how to proceed, then (for the guards) the bypass, last. Shown
/// as short lines: `refused <what>: <why>`, then the hint and the bypass
/// each on a line of its own (indented), the parts that are absent left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The operation not run (`dropdb "shop"`), when there is one to name;
    /// a "no" typed on the terminal names none.
    pub what: Option<String>,
    /// Why, in a few words.
    pub why: String,
    /// What to do next, or what state things are in now.
    pub hint: Option<String>,
    /// The way past the guard, phrased for where the person is.
    pub bypass: Option<String>,
}

/// The way past a guard's refusal from a shell, named last in every guard's refusal.
pub const BYPASS_HINT: &str = "to run it anyway: DBGUARD_YES=1 (backs up first, no prompt) or DBGUARD_BYPASS=1 (no guard at all)";

/// The same from inside psql, where the environment cannot be changed:
/// the way is to quit and start psql again.
pub const SESSION_BYPASS_HINT: &str = "to run it anyway: \\q, then start psql with DBGUARD_YES=1 (backs up first, no prompt) or DBGUARD_BYPASS=1 (no guard at all)";

/// Where the person reads a guard's refusal, which decides what they can
/// do next: a shell can set variables and rerun; inside psql they cannot,
/// and a refused statement aborts an open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A command line: the shim refuses and psql, dropdb… never start.
    Shell,
    /// Inside a running psql, outside a transaction.
    Session,
    /// Inside a running psql, in an open transaction: the refused statement
    /// fails on the server, so the transaction is now aborted.
    Transaction,
}

impl Place {
    /// The state things are in after a "no" here.
    pub fn after_no(self) -> &'static str {
        match self {
            Place::Shell => "nothing was changed",
            Place::Session => "the statement was not run; send it again to be asked again",
            Place::Transaction => {
                "the transaction is now aborted and must be rolled back: type ROLLBACK; (its earlier changes are undone)"
            }
        }
    }

    /// The way past a guard's refusal, from here.
    pub fn bypass(self) -> &'static str {
        match self {
            Place::Shell => BYPASS_HINT,
            Place::Session | Place::Transaction => SESSION_BYPASS_HINT,
        }
    }
}

impl Refusal {
    /// A refusal of `what` because of `why`, without a hint yet.
    pub fn of(what: impl Into<String>, why: impl Into<String>) -> Refusal {
        Refusal {
            what: Some(what.into()),
            why: why.into(),
            hint: None,
            bypass: None,
        }
    }

    /// A refusal that names no operation (a cancelled prompt).
    pub fn because(why: impl Into<String>) -> Refusal {
        Refusal {
            what: None,
            why: why.into(),
            hint: None,
            bypass: None,
        }
    }

    /// A guard's refusal of `what` from a shell: the bypass comes last.
    pub fn guarded(what: impl Into<String>, why: impl Into<String>) -> Refusal {
        Refusal::guarded_at(Place::Shell, what, why)
    }

    /// A guard's refusal of `what`, read at `place`: inside a transaction
    /// it says the transaction must be rolled back, and the bypass is
    /// phrased for where the person is.
    pub fn guarded_at(place: Place, what: impl Into<String>, why: impl Into<String>) -> Refusal {
        let refusal = Refusal {
            bypass: Some(place.bypass().to_owned()),
            ..Refusal::of(what, why)
        };
        match place {
            Place::Transaction => refusal.hint(place.after_no()),
            Place::Shell | Place::Session => refusal,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Refusal {
        self.hint = Some(hint.into());
        self
    }

    /// The refusal as said to someone who already set `DBGUARD_YES=1`:
    /// suggesting it again would send them round in a circle, so only the
    /// bypass is left.
    pub fn under_yes(mut self) -> Refusal {
        if self.bypass.as_deref() == Some(BYPASS_HINT) {
            self.bypass = Some(YES_DID_NOT_HELP_HINT.to_owned());
        }
        self
    }

    /// The lines of the refusal, without the `dbguard: ` of the first.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![match &self.what {
            Some(what) => format!("refused {what}: {}", self.why),
            None => self.why.clone(),
        }];
        lines.extend(self.hint.iter().chain(&self.bypass).cloned());
        lines
    }
}

/// The hint of a guard's refusal that happened under `DBGUARD_YES=1`.
pub const YES_DID_NOT_HELP_HINT: &str = "DBGUARD_YES=1 does not get past this; to run it anyway: DBGUARD_BYPASS=1 (no guard at all, no backup)";

/// Writes `refusal` as `dbguard: ` and its lines, the later ones indented,
/// each wrapped at `width` columns; with `colour`, the first line in bold
/// red. Pure, so every layout is snapshot-tested.
pub fn render_refusal(
    out: &mut impl io::Write,
    refusal: &Refusal,
    width: usize,
    colour: bool,
) -> io::Result<()> {
    let style = console::Style::new().red().bold().force_styling(colour);
    for (i, line) in refusal.lines().iter().enumerate() {
        let (first, rest) = if i == 0 {
            ("dbguard: ", "  ")
        } else {
            ("  ", "    ")
        };
        for (j, piece) in wrap(line, width, first.len(), rest.len())
            .iter()
            .enumerate()
        {
            let indent = if j == 0 { first } else { rest };
            if i == 0 {
                writeln!(out, "{indent}{}", style.apply_to(piece))?;
            } else {
                writeln!(out, "{indent}{piece}")?;
            }
        }
    }
    Ok(())
}

/// `text` broken at spaces into pieces that fit `width` after their
/// indent (`first` columns for the first piece, `rest` for the others); a
/// word longer than a line stays whole.
pub fn wrap(text: &str, width: usize, first: usize, rest: usize) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let room = width.saturating_sub(if pieces.is_empty() { first } else { rest });
        let needed = console::measure_text_width(&current)
            + usize::from(!current.is_empty())
            + console::measure_text_width(word);
        if !current.is_empty() && needed > room {
            pieces.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    pieces.push(current);
    pieces
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Error::report adds `dbguard: ` to the first line; the others are
        // indented beneath it.
        f.write_str(&self.lines().join("\n  "))
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::Refused(refusal)
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::io("I/O error", source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_what_why_then_the_hint() {
        let r = Refusal::guarded("dropdb \"shop\"", "no terminal to ask for confirmation on");
        assert_eq!(
            Error::from(r).to_string(),
            format!(
                "refused dropdb \"shop\": no terminal to ask for confirmation on\n  {BYPASS_HINT}"
            )
        );
        let no = Refusal::because("cancelled by a signal (Ctrl-C)").hint("nothing was changed");
        assert_eq!(
            no.to_string(),
            "cancelled by a signal (Ctrl-C)\n  nothing was changed"
        );
        assert_eq!(Error::from(no).exit_code(), exit::REFUSED);
    }
}
