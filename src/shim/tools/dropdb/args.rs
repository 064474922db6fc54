//! dropdb's command line, as dropdb 13–17 reads it: `dropdb
//! [connection-option...] [option...] dbname`, through getopt_long (see
//! `getopt.rs`), with `--help`/`-?` and `--version`/`-V` answered only as
//! the first argument.
//!
//! The result says which database would be dropped, or that dropdb would
//! stop before dropping anything (help, version, a misused option, no or
//! too many database names), in which case the guard passes it through.

use std::ffi::OsString;

use crate::shim::getopt::{self, HasArg, Spec};

const SPEC: Spec = Spec {
    short: "efh:ip:U:wW",
    long: &[
        ("host", HasArg::Required, "h"),
        ("port", HasArg::Required, "p"),
        ("username", HasArg::Required, "U"),
        ("no-password", HasArg::No, "w"),
        ("password", HasArg::No, "W"),
        ("echo", HasArg::No, "e"),
        ("interactive", HasArg::No, "i"),
        ("if-exists", HasArg::No, "if-exists"),
        ("maintenance-db", HasArg::Required, "maintenance-db"),
        ("force", HasArg::No, "f"),
    ],
};

/// dropdb's argv, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropdbArgs {
    pub host: Option<OsString>,
    pub port: Option<OsString>,
    pub username: Option<OsString>,
    /// Where dropdb connects to issue the DROP (a name or a conninfo
    /// string); never the database dropped.
    pub maintenance_db: Option<OsString>,
    pub if_exists: bool,
    pub intent: Intent,
}

/// What the invocation would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Intent {
    /// dropdb stops before touching anything (help, version, an error in
    /// its own arguments).
    #[default]
    Nothing,
    /// Drops this database.
    Drop(OsString),
    /// Options this model does not know make it impossible to tell which
    /// database would go; the string says why.
    Unclear(String),
}

impl DropdbArgs {
    /// Parses everything after argv[0].
    pub fn parse(args: &[OsString], posixly_correct: bool) -> DropdbArgs {
        if getopt::asks_help_or_version(args) {
            return DropdbArgs::default();
        }
        let parsed = SPEC.parse(args, posixly_correct);
        let mut out = DropdbArgs {
            host: parsed.value("h").cloned(),
            port: parsed.value("p").cloned(),
            username: parsed.value("U").cloned(),
            maintenance_db: parsed.value("maintenance-db").cloned(),
            if_exists: parsed.has("if-exists"),
            intent: Intent::Nothing,
        };
        if parsed.misused().is_some() {
            return out;
        }
        out.intent = match (parsed.operands.as_slice(), parsed.has_unknown()) {
            ([name], _) => Intent::Drop(name.clone()),
            // dropdb itself stops at "missing required argument" or "too
            // many command-line arguments".
            (_, false) => Intent::Nothing,
            // An unknown option may take the next argument as its value in
            // a newer dropdb: the database's name cannot be told.
            ([], true) => Intent::Nothing,
            (_, true) => Intent::Unclear(
                "options dbguard does not know leave it unclear which database dropdb would drop"
                    .into(),
            ),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> DropdbArgs {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        DropdbArgs::parse(&args, false)
    }

    #[test]
    fn the_operand_is_the_database_dropped() {
        let a = parse(&[
            "-h",
            "db1",
            "-p5433",
            "--username=app",
            "--if-exists",
            "shop",
        ]);
        assert_eq!(a.intent, Intent::Drop("shop".into()));
        assert_eq!(a.host.unwrap(), "db1");
        assert_eq!(a.port.unwrap(), "5433");
        assert_eq!(a.username.unwrap(), "app");
        assert!(a.if_exists);

        let a = parse(&["shop", "--maintenance-db", "template1", "-ef"]);
        assert_eq!(a.intent, Intent::Drop("shop".into()), "options after it");
        assert_eq!(a.maintenance_db.unwrap(), "template1");
        assert_eq!(parse(&["--", "-odd"]).intent, Intent::Drop("-odd".into()));
    }

    #[test]
    fn what_dropdb_rejects_drops_nothing() {
        for args in [
            &["--help"][..],
            &["-V", "shop"],
            &["-?"],
            &[],
            &["a", "b"],
            &["-h"],
            &["shop", "--echo=1"],
            &["shop", "--maintenance-db"],
        ] {
            assert_eq!(parse(args).intent, Intent::Nothing, "{args:?}");
        }
    }

    #[test]
    fn unknown_options_are_guarded_when_the_name_is_clear_and_refused_when_not() {
        assert_eq!(
            parse(&["--newer-flag", "shop"]).intent,
            Intent::Drop("shop".into())
        );
        assert!(matches!(
            parse(&["--newer-option", "value", "shop"]).intent,
            Intent::Unclear(_)
        ));
        assert!(matches!(parse(&["-V"]).intent, Intent::Nothing));
        // -V later than first is an invalid option to dropdb.
        assert_eq!(parse(&["shop", "-V"]).intent, Intent::Drop("shop".into()));
    }
}
