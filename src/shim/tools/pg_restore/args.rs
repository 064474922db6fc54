//! pg_restore's command line, as pg_restore 13–17 reads it: getopt_long
//! with pg_restore's option table (see `getopt.rs`), `--help`/`-?` and
//! `--version`/`-V` answered only as the first argument, at most one
//! archive operand (stdin without one).
//!
//! pg_restore destroys data only when it restores into a database
//! (`-d/--dbname`) with `-c/--clean`: the archive's objects are dropped
//! before they are recreated. Without `-d` it writes a script and touches
//! no database; with `-l/--list` it prints the archive's contents. With
//! `--create` as well, `-d` names only the database it connects to first:
//! the one dropped and recreated is the archive's own.

use std::ffi::OsString;

use crate::shim::getopt::{self, HasArg, Spec};

const SPEC: Spec = Spec {
    short: "acCd:ef:F:h:I:j:lL:n:N:Op:P:RsS:t:T:U:vwWx1",
    long: &[
        ("clean", HasArg::No, "c"),
        ("create", HasArg::No, "C"),
        ("data-only", HasArg::No, "a"),
        ("dbname", HasArg::Required, "d"),
        ("exit-on-error", HasArg::No, "e"),
        ("exclude-schema", HasArg::Required, "N"),
        ("file", HasArg::Required, "f"),
        ("format", HasArg::Required, "F"),
        ("function", HasArg::Required, "P"),
        ("host", HasArg::Required, "h"),
        ("index", HasArg::Required, "I"),
        ("jobs", HasArg::Required, "j"),
        ("list", HasArg::No, "l"),
        ("no-privileges", HasArg::No, "x"),
        ("no-acl", HasArg::No, "x"),
        ("no-owner", HasArg::No, "O"),
        ("no-reconnect", HasArg::No, "R"),
        ("port", HasArg::Required, "p"),
        ("no-password", HasArg::No, "w"),
        ("password", HasArg::No, "W"),
        ("schema", HasArg::Required, "n"),
        ("schema-only", HasArg::No, "s"),
        ("superuser", HasArg::Required, "S"),
        ("table", HasArg::Required, "t"),
        ("trigger", HasArg::Required, "T"),
        ("use-list", HasArg::Required, "L"),
        ("username", HasArg::Required, "U"),
        ("verbose", HasArg::No, "v"),
        ("single-transaction", HasArg::No, "1"),
        ("disable-triggers", HasArg::No, "disable-triggers"),
        ("enable-row-security", HasArg::No, "enable-row-security"),
        ("if-exists", HasArg::No, "if-exists"),
        ("no-comments", HasArg::No, "no-comments"),
        (
            "no-data-for-failed-tables",
            HasArg::No,
            "no-data-for-failed-tables",
        ),
        ("no-publications", HasArg::No, "no-publications"),
        ("no-security-labels", HasArg::No, "no-security-labels"),
        ("no-subscriptions", HasArg::No, "no-subscriptions"),
        (
            "no-table-access-method",
            HasArg::No,
            "no-table-access-method",
        ),
        ("no-tablespaces", HasArg::No, "no-tablespaces"),
        ("role", HasArg::Required, "role"),
        ("section", HasArg::Required, "section"),
        ("strict-names", HasArg::No, "strict-names"),
        (
            "use-set-session-authorization",
            HasArg::No,
            "use-set-session-authorization",
        ),
        ("filter", HasArg::Required, "filter"),
        ("transaction-size", HasArg::Required, "transaction-size"),
        ("restrict-key", HasArg::Required, "restrict-key"),
    ],
};

/// pg_restore's argv, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgRestoreArgs {
    /// `-d`: a database name, conninfo string or URI.
    pub dbname: Option<OsString>,
    pub host: Option<OsString>,
    pub port: Option<OsString>,
    pub username: Option<OsString>,
    /// The archive (a file or directory); `None` reads stdin.
    pub archive: Option<OsString>,
    pub single_transaction: bool,
    pub jobs: Option<OsString>,
    pub intent: Intent,
}

/// What the invocation would do to a database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Intent {
    /// Nothing destroyed: help, version, a listing, a script, an additive
    /// restore, or arguments pg_restore itself rejects.
    #[default]
    Nothing,
    /// `--clean -d DB`: the archive's objects in DB are dropped and recreated.
    CleanInto,
    /// `--clean --create -d DB`: the archive's own database is dropped and
    /// recreated; DB is only where pg_restore connects first.
    CleanCreate,
}

impl PgRestoreArgs {
    /// Parses everything after argv[0].
    pub fn parse(args: &[OsString], posixly_correct: bool) -> PgRestoreArgs {
        if getopt::asks_help_or_version(args) {
            return PgRestoreArgs::default();
        }
        let p = SPEC.parse(args, posixly_correct);
        let out = PgRestoreArgs {
            dbname: p.value("d").cloned(),
            host: p.value("h").cloned(),
            port: p.value("p").cloned(),
            username: p.value("U").cloned(),
            archive: p.operands.first().cloned(),
            single_transaction: p.has("1"),
            jobs: p.value("j").cloned(),
            intent: Intent::Nothing,
        };
        // Every check below is one pg_restore makes before it connects; an
        // option this model does not know is not one of them, so it never
        // makes a --clean restore pass unguarded.
        let rejected = p.misused().is_some()
            || (p.operands.len() > 1 && !p.has_unknown())
            || (p.has("d") && p.has("f"))
            || (p.has("a") && p.has("c"));
        if rejected || p.has("l") || !p.has("d") || !p.has("c") {
            return out;
        }
        PgRestoreArgs {
            intent: if p.has("C") {
                Intent::CleanCreate
            } else {
                Intent::CleanInto
            },
            ..out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> PgRestoreArgs {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        PgRestoreArgs::parse(&args, false)
    }

    #[test]
    fn clean_into_a_database_is_destructive() {
        for args in [
            &["-c", "-d", "shop", "a.dump"][..],
            &["a.dump", "--clean", "--dbname=shop"],
            &["-cdshop", "a.dump"],
            &["-1", "-j", "4", "--if-exists", "-c", "-d", "shop"],
            &["--cl", "--db", "shop", "a.dump"],
            &["--restrict-key=x", "--future-option", "-c", "-d", "shop"],
        ] {
            let a = parse(args);
            assert_eq!(a.intent, Intent::CleanInto, "{args:?}");
            assert_eq!(a.dbname.as_deref().unwrap(), "shop");
        }
        let a = parse(&["-C", "-c", "-d", "postgres", "a.dump"]);
        assert_eq!(a.intent, Intent::CleanCreate);
        assert_eq!(a.archive.unwrap(), "a.dump");
    }

    #[test]
    fn listings_scripts_additive_restores_and_rejected_arguments_are_not() {
        for args in [
            &["--help"][..],
            &["-V"],
            &["-c", "a.dump"],
            &["-c", "-f", "out.sql", "a.dump"],
            &["-l", "-c", "-d", "shop", "a.dump"],
            &["-d", "shop", "a.dump"],
            &["-C", "-d", "postgres", "a.dump"],
            &["-c", "-d", "shop", "-f", "x", "a.dump"],
            &["-c", "-a", "-d", "shop", "a.dump"],
            &["-c", "-d", "shop", "a.dump", "b.dump"],
            &["-c", "-d"],
            &["--clean=1", "-d", "shop"],
        ] {
            assert_eq!(parse(args).intent, Intent::Nothing, "{args:?}");
        }
    }
}
