//! The process state every decision depends on — arguments, environment,
//! working directory, whether stdin is a terminal — captured once, so that
//! decisions are plain functions of a value and can be tested without
//! spawning anything.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::env::ARGV0 as ARGV0_ENV;

#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The full argv, argv[0] included, as the kernel gave it (not UTF-8-checked).
    pub args: Vec<OsString>,
    /// The environment, in the order the process received it.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory, or `None` when it no longer exists.
    pub cwd: Option<PathBuf>,
    /// Whether file descriptor 0 is a terminal.
    pub stdin_is_tty: bool,
    /// `DBGUARD_ARGV0`, when set and not empty.
    pub argv0_override: Option<OsString>,
}

impl Context {
    pub fn from_process() -> Self {
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let argv0_override = env
            .iter()
            .find(|(k, v)| k == ARGV0_ENV && !v.is_empty())
            .map(|(_, v)| v.clone());
        Context {
            args: std::env::args_os().collect(),
            env,
            cwd: std::env::current_dir().ok(),
            // Asked of the descriptor itself: `io::stdin()` would set up
            // its buffer, which a shim that execs never uses.
            // SAFETY: isatty only inspects descriptor 0.
            stdin_is_tty: unsafe { libc::isatty(0) } == 1,
            argv0_override,
        }
    }

    /// argv[0] as given; empty when the caller passed an empty argv.
    pub fn argv0(&self) -> &OsStr {
        self.args
            .first()
            .map(OsString::as_os_str)
            .unwrap_or_default()
    }

    /// The value of an environment variable, if set.
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// True when the variable is set to something other than empty, `0`,
    /// `false` or `no` — the usual reading of a boolean switch.
    pub fn flag(&self, name: &str) -> bool {
        match self.var(name).and_then(OsStr::to_str) {
            None => self.var(name).is_some_and(|v| !v.is_empty()),
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            ),
        }
    }

    /// A context for tests: the given argv and environment, no terminal.
    pub fn for_test(args: &[&str], env: &[(&str, &str)]) -> Self {
        let env: Vec<(OsString, OsString)> = env
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let argv0_override = env
            .iter()
            .find(|(k, _)| k == ARGV0_ENV)
            .map(|(_, v)| v.clone());
        Context {
            args: args.iter().map(OsString::from).collect(),
            env,
            cwd: Some(PathBuf::from("/")),
            stdin_is_tty: false,
            argv0_override,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_reads_common_spellings() {
        for (value, expected) in [
            ("1", true),
            ("yes", true),
            ("TRUE", true),
            ("0", false),
            ("false", false),
            ("", false),
            ("off", false),
        ] {
            let ctx = Context::for_test(&["psql"], &[("DBGUARD_YES", value)]);
            assert_eq!(ctx.flag("DBGUARD_YES"), expected, "value {value:?}");
        }
        assert!(!Context::for_test(&["psql"], &[]).flag("DBGUARD_YES"));
    }
}
