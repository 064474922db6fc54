//! Every environment variable that steers dbguard, defined and documented in
//! one place: what sets it, who reads it and what it means. Code elsewhere
//! names these constants, never the strings, and a test below fails when a
//! `DBGUARD_*` name appears in the sources without being listed here.
//!
//! Variables only the test and benchmark harnesses read
//! (`DBGUARD_TEST_PYTHON`, `DBGUARD_BENCH_BIN`, `DBGUARD_BENCH_WRITE`) live
//! with those harnesses: they never change what the binary does.

/// Set by the person (or CI) to `1`: no guard at all for this command. The
/// shim execs the real tool at once, without analysis, prompt or backup, and
/// records the bypass in the audit log.
pub const BYPASS: &str = "DBGUARD_BYPASS";

/// Set by the person (or a deploy script) to `1`: every confirmation is
/// answered yes, but the backup is still taken first. Also accepted by the
/// toolbox commands that ask (`restore`, `prune`), with one exception:
/// `restore --whole-cluster` rewinds every database of a cluster and is
/// confirmed only by a person at the terminal, whatever this says.
pub const YES: &str = "DBGUARD_YES";

/// Set by the person: the backup directory, overriding `[backup] dir` in the
/// configuration and the default under `$HOME`. Also where `audit.jsonl`
/// lives.
pub const BACKUP_DIR: &str = "DBGUARD_BACKUP_DIR";

/// Set by the person: the one configuration file to use (it must exist),
/// instead of the nearest `.dbguard.toml` or `~/.config/dbguard/config.toml`.
pub const CONFIG: &str = "DBGUARD_CONFIG";

/// Prefix of `DBGUARD_REAL_<PROGRAM>` (`DBGUARD_REAL_PSQL`,
/// `DBGUARD_REAL_ALEMBIC`, `DBGUARD_REAL_PG_DUMP`, ...), set by the person:
/// the real program's path, used instead of the PATH walk, by the shims for
/// the tool they exec and by the toolbox for the clients it runs itself.
/// See [`real_tool_var`].
pub const REAL_PREFIX: &str = "DBGUARD_REAL_";

/// Set by the person (or `install.sh`'s layout): the path of the preload
/// library that the psql shim loads into the real psql, instead of looking
/// beside the binary and in `../lib/dbguard/`.
pub const PRELOAD: &str = "DBGUARD_PRELOAD";

/// Set by the psql shim for the preload library: a 0600 file listing the
/// statements the script pre-flight already confirmed, one key per line.
/// The library reads and deletes it, and removes the variable before psql's
/// `main` runs, so nothing psql starts inherits it.
pub const LIVE_CONFIRMED: &str = "DBGUARD_LIVE_CONFIRMED";

/// Set by the person for installs outside the default location: the shim
/// directory that `init`, `doctor` and `uninstall` manage.
pub const SHIM_DIR: &str = "DBGUARD_SHIM_DIR";

/// Set by every shim for the process it execs: the recursion marker
/// (process id and start time, with a hop count). A shim that finds its own
/// process in it knows the command was already guarded and must not ask or
/// back up twice; too many hops is a loop (exit 126).
pub const SHIM_CHAIN: &str = "DBGUARD_SHIM_CHAIN";

/// Set by the person: the database an alembic command touches, first in the
/// lookup order (before `[alembic] database_url`, `DATABASE_URL` and
/// `sqlalchemy.url`). Only tells dbguard what to back up.
pub const DATABASE_URL: &str = "DBGUARD_DATABASE_URL";

/// Set by tests (or a curious person): the name the binary answers to,
/// instead of argv[0]'s file name, to pick a personality without a link.
pub const ARGV0: &str = "DBGUARD_ARGV0";

/// Every variable above, for `doctor` and `config` listings and for the test
/// that keeps this module complete. `DBGUARD_REAL_<PROGRAM>` appears as its
/// prefix.
pub const ALL: [&str; 11] = [
    BYPASS,
    YES,
    BACKUP_DIR,
    CONFIG,
    REAL_PREFIX,
    PRELOAD,
    LIVE_CONFIRMED,
    SHIM_DIR,
    SHIM_CHAIN,
    DATABASE_URL,
    ARGV0,
];

/// The variable that names a real program explicitly:
/// `psql` → `DBGUARD_REAL_PSQL`, `pg_dump` → `DBGUARD_REAL_PG_DUMP`.
pub fn real_tool_var(program: &str) -> String {
    format!("{REAL_PREFIX}{}", program.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn real_tool_variables_are_the_upper_case_program_name() {
        assert_eq!(real_tool_var("psql"), "DBGUARD_REAL_PSQL");
        assert_eq!(real_tool_var("pg_restore"), "DBGUARD_REAL_PG_RESTORE");
    }

    /// Every `DBGUARD_*` name in the binary's and the library's sources is
    /// one defined here, so a new variable cannot go undocumented.
    #[test]
    fn every_variable_the_sources_mention_is_defined_here() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut unknown = Vec::new();
        for dir in ["src", "preload/src"] {
            for file in crate::layers::rust_files(&root.join(dir)) {
                let text = std::fs::read_to_string(&file).unwrap();
                for name in variable_names(&text) {
                    let known = name == "DBGUARD_"
                        || HARNESS_ONLY.contains(&name.as_str())
                        || ALL.contains(&name.as_str())
                        || name
                            .strip_prefix(REAL_PREFIX)
                            .is_some_and(|p| !p.is_empty());
                    if !known {
                        unknown.push(format!("{}: {name}", file.display()));
                    }
                }
            }
        }
        assert!(unknown.is_empty(), "undocumented variables: {unknown:#?}");
    }

    /// Read by the test and benchmark harnesses, never by the binary.
    const HARNESS_ONLY: [&str; 3] = [
        "DBGUARD_TEST_PYTHON",
        "DBGUARD_BENCH_BIN",
        "DBGUARD_BENCH_WRITE",
    ];

    /// `DBGUARD_` followed by upper-case letters, digits and underscores.
    fn variable_names(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (at, _) in text.match_indices("DBGUARD_") {
            let rest = &text[at..];
            let len = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..len].to_owned());
        }
        names
    }
}
