//! psql's command line, modelled as psql 13–17 read it: GNU getopt_long with
//! psql's option table (argument permutation, bundled short flags, attached
//! or separate arguments, `--name=value`, unique prefixes of long names,
//! `--` ending options), then the positional database and user names.
//!
//! The result says what SQL psql will run and where it comes from; the
//! guard scans exactly those sources. Anything psql itself would reject is
//! marked `Rejected`: psql exits before running SQL, so it passes through.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One source of SQL, in the order psql runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-c COMMAND`: one string (SQL or a backslash command).
    Command(OsString),
    /// `-f FILE`.
    File(OsString),
    /// `-f -`: the script is stdin.
    Stdin,
}

/// Where an option's value sits in argv: the argument at `index` (counting
/// from the first one after argv[0]) holds it from byte `offset` on — 0 for
/// a separate argument, after `-f` or `--file=` for an attached one. The
/// guard uses it to hand psql a spooled copy of a `-f` pipe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArgPos {
    pub index: usize,
    pub offset: usize,
}

impl ArgPos {
    /// `args` with this value replaced by `value`, what precedes it kept.
    pub fn replace_in(self, args: &[OsString], value: &OsStr) -> Vec<OsString> {
        let mut out = args.to_vec();
        if let Some(arg) = out.get_mut(self.index) {
            let mut bytes = arg.as_bytes()[..self.offset.min(arg.len())].to_vec();
            bytes.extend_from_slice(value.as_bytes());
            *arg = OsString::from_vec(bytes);
        }
        out
    }
}

/// What the invocation does with SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Prints help, a version or the database list, or fails on its own
    /// arguments: no user SQL reaches the server.
    NoSql,
    /// Runs `-c`/`-f` actions, then exits.
    Actions,
    /// No actions: reads stdin, as a script when it is not a terminal,
    /// as an interactive session when it is.
    Stdin,
}

/// psql's argv, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PsqlArgs {
    pub actions: Vec<Action>,
    /// Where each action's value sits in argv, one per action, in order.
    pub action_args: Vec<ArgPos>,
    /// Where the value of the option being applied sits (parsing state).
    value_at: ArgPos,
    pub dbname: Option<OsString>,
    pub host: Option<OsString>,
    pub port: Option<OsString>,
    pub username: Option<OsString>,
    /// `-v NAME=VALUE` in order; a `None` value unsets the variable (`-v NAME`).
    pub variables: Vec<(OsString, Option<OsString>)>,
    pub single_transaction: bool,
    pub single_line: bool,
    pub single_step: bool,
    pub no_psqlrc: bool,
    pub list: bool,
    pub help: bool,
    pub version: bool,
    pub no_password: bool,
    pub force_password: bool,
    /// Why psql would refuse these arguments, when it would.
    pub rejected: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Required,
    /// Only as `--name=value` (psql's `--help[=topic]`).
    Optional,
}

/// psql's long options with the short option each stands for ('\0' for
/// long-only ones, which we name by the long name instead).
const LONG: &[(&str, HasArg, char)] = &[
    ("echo-all", HasArg::No, 'a'),
    ("no-align", HasArg::No, 'A'),
    ("command", HasArg::Required, 'c'),
    ("dbname", HasArg::Required, 'd'),
    ("echo-queries", HasArg::No, 'e'),
    ("echo-errors", HasArg::No, 'b'),
    ("echo-hidden", HasArg::No, 'E'),
    ("file", HasArg::Required, 'f'),
    ("field-separator", HasArg::Required, 'F'),
    ("field-separator-zero", HasArg::No, 'z'),
    ("host", HasArg::Required, 'h'),
    ("html", HasArg::No, 'H'),
    ("list", HasArg::No, 'l'),
    ("log-file", HasArg::Required, 'L'),
    ("no-readline", HasArg::No, 'n'),
    ("single-transaction", HasArg::No, '1'),
    ("output", HasArg::Required, 'o'),
    ("port", HasArg::Required, 'p'),
    ("pset", HasArg::Required, 'P'),
    ("quiet", HasArg::No, 'q'),
    ("record-separator", HasArg::Required, 'R'),
    ("record-separator-zero", HasArg::No, '0'),
    ("single-step", HasArg::No, 's'),
    ("single-line", HasArg::No, 'S'),
    ("tuples-only", HasArg::No, 't'),
    ("table-attr", HasArg::Required, 'T'),
    ("username", HasArg::Required, 'U'),
    ("set", HasArg::Required, 'v'),
    ("variable", HasArg::Required, 'v'),
    ("version", HasArg::No, 'V'),
    ("no-password", HasArg::No, 'w'),
    ("password", HasArg::No, 'W'),
    ("expanded", HasArg::No, 'x'),
    ("no-psqlrc", HasArg::No, 'X'),
    ("help", HasArg::Optional, '?'),
    ("csv", HasArg::No, '\0'),
];

/// psql's getopt string: letters followed by ':' take an argument.
const SHORT: &str = "aAbc:d:eEf:F:h:HlL:no:p:P:qR:sStT:U:v:VwWxXz?01";

fn short_has_arg(c: u8) -> Option<HasArg> {
    let bytes = SHORT.as_bytes();
    let i = bytes.iter().position(|&b| b == c && b != b':')?;
    Some(if bytes.get(i + 1) == Some(&b':') {
        HasArg::Required
    } else {
        HasArg::No
    })
}

impl PsqlArgs {
    /// Parses everything after argv[0]. `posixly_correct` mirrors the
    /// POSIXLY_CORRECT environment variable, which stops option parsing at
    /// the first non-option as getopt does.
    pub fn parse(args: &[OsString], posixly_correct: bool) -> PsqlArgs {
        let mut parsed = PsqlArgs::default();
        // psql answers these before getopt when they are the first argument.
        match args.first().map(|a| a.as_bytes()) {
            Some(b"-?") | Some(b"--help") => {
                parsed.help = true;
                return parsed;
            }
            Some(b"-V") | Some(b"--version") => {
                parsed.version = true;
                return parsed;
            }
            _ => {}
        }

        let mut positional: Vec<OsString> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_bytes();
            i += 1;
            if arg == b"--" {
                positional.extend(args[i..].iter().cloned());
                break;
            }
            if arg.len() < 2 || arg[0] != b'-' {
                if posixly_correct {
                    positional.push(OsString::from_vec(arg.to_vec()));
                    positional.extend(args[i..].iter().cloned());
                    break;
                }
                positional.push(OsString::from_vec(arg.to_vec()));
                continue;
            }
            let outcome = if let Some(long) = arg.strip_prefix(b"--") {
                parsed.long_option(long, args, &mut i)
            } else {
                parsed.short_options(&arg[1..], args, &mut i)
            };
            if let Err(why) = outcome {
                parsed.rejected = Some(why);
                return parsed;
            }
            if parsed.help || parsed.version {
                // psql prints and exits as soon as it meets these.
                return parsed;
            }
        }

        for value in positional {
            if parsed.dbname.is_none() {
                parsed.dbname = Some(value);
            } else if parsed.username.is_none() {
                parsed.username = Some(value);
            }
            // Further arguments are ignored by psql with a warning.
        }
        parsed
    }

    /// What the invocation does with SQL.
    pub fn mode(&self) -> Mode {
        if self.rejected.is_some() || self.help || self.version || self.list {
            Mode::NoSql
        } else if self.actions.is_empty() {
            Mode::Stdin
        } else {
            Mode::Actions
        }
    }

    /// True when psql reads its script from stdin.
    pub fn reads_stdin_script(&self) -> bool {
        match self.mode() {
            Mode::Stdin => true,
            Mode::Actions => self.actions.contains(&Action::Stdin),
            Mode::NoSql => false,
        }
    }

    fn long_option(&mut self, body: &[u8], args: &[OsString], i: &mut usize) -> Result<(), String> {
        let (name, inline) = match body.iter().position(|&b| b == b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        let display = String::from_utf8_lossy(name).into_owned();
        let exact = LONG.iter().find(|(n, _, _)| n.as_bytes() == name);
        let (long_name, has_arg, short) = match exact {
            Some(option) => *option,
            None => {
                let matches: Vec<_> = LONG
                    .iter()
                    .filter(|(n, _, _)| n.as_bytes().starts_with(name))
                    .collect();
                // Prefixes naming the same option twice (--set/--variable
                // share 'v') are not ambiguous to getopt only when they are
                // the same entry; psql's table has distinct entries, so any
                // two matches are ambiguous.
                match matches.as_slice() {
                    [one] => **one,
                    [] => return Err(format!("unrecognized option '--{display}'")),
                    _ => return Err(format!("option '--{display}' is ambiguous")),
                }
            }
        };
        let value: Option<OsString> = match (has_arg, inline) {
            (HasArg::No, Some(_)) => {
                return Err(format!("option '--{long_name}' doesn't allow an argument"));
            }
            (HasArg::No, None) => None,
            (HasArg::Optional, v) => v.map(|v| OsString::from_vec(v.to_vec())),
            (HasArg::Required, Some(v)) => {
                self.value_at = ArgPos {
                    index: *i - 1,
                    offset: 2 + name.len() + 1,
                };
                Some(OsString::from_vec(v.to_vec()))
            }
            (HasArg::Required, None) => match args.get(*i) {
                Some(v) => {
                    self.value_at = ArgPos {
                        index: *i,
                        offset: 0,
                    };
                    *i += 1;
                    Some(v.clone())
                }
                None => return Err(format!("option '--{long_name}' requires an argument")),
            },
        };
        if short == '\0' {
            return Ok(()); // --csv: output format only
        }
        self.apply(short as u8, value)
    }

    fn short_options(
        &mut self,
        cluster: &[u8],
        args: &[OsString],
        i: &mut usize,
    ) -> Result<(), String> {
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            j += 1;
            match short_has_arg(c) {
                None => return Err(format!("invalid option -- '{}'", c as char)),
                Some(HasArg::Required) => {
                    let value = if j < cluster.len() {
                        // The cluster is argument *i - 1 without its '-'.
                        self.value_at = ArgPos {
                            index: *i - 1,
                            offset: 1 + j,
                        };
                        OsString::from_vec(cluster[j..].to_vec())
                    } else {
                        match args.get(*i) {
                            Some(v) => {
                                self.value_at = ArgPos {
                                    index: *i,
                                    offset: 0,
                                };
                                *i += 1;
                                v.clone()
                            }
                            None => {
                                return Err(format!(
                                    "option requires an argument -- '{}'",
                                    c as char
                                ));
                            }
                        }
                    };
                    return self.apply(c, Some(value));
                }
                Some(_) => {
                    self.apply(c, None)?;
                    if self.help || self.version {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, option: u8, value: Option<OsString>) -> Result<(), String> {
        let required = |v: Option<OsString>| v.unwrap_or_default();
        match option {
            b'c' => {
                self.actions.push(Action::Command(required(value)));
                self.action_args.push(self.value_at);
            }
            b'f' => {
                let file = required(value);
                self.actions.push(if file == "-" {
                    Action::Stdin
                } else {
                    Action::File(file)
                });
                self.action_args.push(self.value_at);
            }
            b'd' => self.dbname = value,
            b'h' => self.host = value,
            b'p' => self.port = value,
            b'U' => self.username = value,
            b'v' => {
                let spec = required(value);
                let bytes = spec.as_bytes();
                let variable = match bytes.iter().position(|&b| b == b'=') {
                    Some(eq) => (
                        OsString::from_vec(bytes[..eq].to_vec()),
                        Some(OsString::from_vec(bytes[eq + 1..].to_vec())),
                    ),
                    None => (spec.clone(), None),
                };
                if variable.0.is_empty() {
                    return Err(format!(
                        "invalid variable name: \"{}\"",
                        spec.to_string_lossy()
                    ));
                }
                self.variables.push(variable);
            }
            b'1' => self.single_transaction = true,
            b'S' => self.single_line = true,
            b's' => self.single_step = true,
            b'X' => self.no_psqlrc = true,
            b'l' => self.list = true,
            b'V' => self.version = true,
            b'?' => self.help = true,
            b'w' => self.no_password = true,
            b'W' => self.force_password = true,
            // Output, echo and logging options change nothing we analyse.
            _ => {}
        }
        Ok(())
    }

    /// The value psql would give variable `name` after `-v` processing.
    pub fn variable(&self, name: &str) -> Option<&OsStr> {
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> PsqlArgs {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        PsqlArgs::parse(&args, false)
    }

    fn cmd(s: &str) -> Action {
        Action::Command(s.into())
    }

    #[test]
    fn file_values_are_located_in_argv_and_replaceable() {
        let argv: Vec<OsString> = [
            "-X",
            "-f",
            "/dev/fd/63",
            "-f/dev/fd/62",
            "--file=/dev/fd/61",
            "-qf",
            "a.sql",
            "-Xfb.sql",
            "--fil",
            "c.sql",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let p = PsqlArgs::parse(&argv, false);
        assert_eq!(p.actions.len(), 6);
        assert_eq!(p.action_args.len(), 6);
        let new = OsStr::new("/dev/fd/9");
        let replaced: Vec<String> = p
            .action_args
            .iter()
            .map(|at| {
                at.replace_in(&argv, new)[at.index]
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            replaced,
            [
                "/dev/fd/9",
                "-f/dev/fd/9",
                "--file=/dev/fd/9",
                "/dev/fd/9",
                "-Xf/dev/fd/9",
                "/dev/fd/9"
            ]
        );
        for (action, at) in p.actions.iter().zip(&p.action_args) {
            let Action::File(path) = action else {
                panic!("files only")
            };
            assert!(argv[at.index].as_bytes().ends_with(path.as_bytes()));
        }
    }

    #[test]
    fn commands_and_files_keep_their_order() {
        let p = parse(&[
            "-c",
            "select 1",
            "-f",
            "a.sql",
            "--command=drop table t",
            "--file",
            "b.sql",
            "-f",
            "-",
        ]);
        assert_eq!(
            p.actions,
            vec![
                cmd("select 1"),
                Action::File("a.sql".into()),
                cmd("drop table t"),
                Action::File("b.sql".into()),
                Action::Stdin
            ]
        );
        assert_eq!(p.mode(), Mode::Actions);
        assert!(p.reads_stdin_script());
    }

    #[test]
    fn bundled_short_flags_and_attached_arguments() {
        let p = parse(&[
            "-X1qc",
            "drop table t",
            "-vON_ERROR_STOP=1",
            "-Upostgres",
            "-dapp",
        ]);
        assert!(p.no_psqlrc && p.single_transaction);
        assert_eq!(p.actions, vec![cmd("drop table t")]);
        assert_eq!(p.variable("ON_ERROR_STOP"), Some(OsStr::new("1")));
        assert_eq!(p.username.as_deref(), Some(OsStr::new("postgres")));
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("app")));
        // The argument of -c is taken even when it starts with a dash.
        let p = parse(&["-c", "-- comment\ndrop table t"]);
        assert_eq!(p.actions, vec![cmd("-- comment\ndrop table t")]);
        let p = parse(&["-Xcselect 1"]);
        assert_eq!(p.actions, vec![cmd("select 1")]);
    }

    #[test]
    fn long_option_prefixes_resolve_like_getopt() {
        let p = parse(&["--comm=drop table x", "--dbn", "app", "--single-t"]);
        assert_eq!(p.actions, vec![cmd("drop table x")]);
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("app")));
        assert!(p.single_transaction);
        // --s could be --set, --single-step, --single-line...
        assert!(parse(&["--s", "x"]).rejected.unwrap().contains("ambiguous"));
        assert!(
            parse(&["--bogus"])
                .rejected
                .unwrap()
                .contains("unrecognized")
        );
        assert!(parse(&["--list=x"]).rejected.is_some());
    }

    #[test]
    fn positional_arguments_are_database_then_user() {
        let p = parse(&["app", "alice", "extra", "-c", "select 1"]);
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("app")));
        assert_eq!(p.username.as_deref(), Some(OsStr::new("alice")));
        // With -d, the first positional is the user.
        let p = parse(&["-d", "app", "bob"]);
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("app")));
        assert_eq!(p.username.as_deref(), Some(OsStr::new("bob")));
        // A conninfo string or URI is a positional like any other.
        let p = parse(&[
            "postgresql://u@h:5433/db?sslmode=require",
            "-c",
            "drop table t",
        ]);
        assert_eq!(
            p.dbname.as_deref(),
            Some(OsStr::new("postgresql://u@h:5433/db?sslmode=require"))
        );
    }

    #[test]
    fn double_dash_ends_options() {
        let p = parse(&["-X", "--", "-c", "drop table t"]);
        assert!(p.actions.is_empty());
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("-c")));
        assert_eq!(p.username.as_deref(), Some(OsStr::new("drop table t")));
        assert_eq!(p.mode(), Mode::Stdin);
    }

    #[test]
    fn posixly_correct_stops_at_the_first_positional() {
        let args: Vec<OsString> = ["app", "-c", "drop table t"]
            .iter()
            .map(OsString::from)
            .collect();
        let p = PsqlArgs::parse(&args, true);
        assert!(p.actions.is_empty());
        assert_eq!(p.username.as_deref(), Some(OsStr::new("-c")));
    }

    #[test]
    fn invocations_without_sql() {
        for args in [
            &["--help"][..],
            &["-?"],
            &["--help=commands"],
            &["-V"],
            &["--version"],
            &["-X", "-c", "drop table t", "--version"],
            &["-l"],
            &["--list", "-c", "drop table t"],
            &["-c"],
            &["-Q"],
            &["-c", "drop table t", "--no-such"],
        ] {
            assert_eq!(parse(args).mode(), Mode::NoSql, "{args:?}");
        }
        assert_eq!(parse(&["-X", "app"]).mode(), Mode::Stdin);
    }

    #[test]
    fn variables_set_and_unset() {
        let p = parse(&[
            "-v",
            "t=users",
            "--set=empty=",
            "--variable",
            "gone",
            "-v",
            "t=orders",
        ]);
        assert_eq!(p.variable("t"), Some(OsStr::new("orders")));
        assert_eq!(p.variable("empty"), Some(OsStr::new("")));
        assert_eq!(p.variable("gone"), None);
        assert!(parse(&["-v", "=x"]).rejected.is_some());
    }

    #[test]
    fn connection_options() {
        let p = parse(&[
            "-h",
            "db.example",
            "--port=5433",
            "-U",
            "me",
            "-w",
            "-c",
            "select 1",
        ]);
        assert_eq!(p.host.as_deref(), Some(OsStr::new("db.example")));
        assert_eq!(p.port.as_deref(), Some(OsStr::new("5433")));
        assert_eq!(p.username.as_deref(), Some(OsStr::new("me")));
        assert!(p.no_password && !p.force_password);
    }

    #[test]
    fn non_utf8_arguments_survive() {
        let raw = OsString::from_vec(b"drop table \xff".to_vec());
        let args = vec![OsString::from("-c"), raw.clone()];
        assert_eq!(
            PsqlArgs::parse(&args, false).actions,
            vec![Action::Command(raw)]
        );
    }

    #[test]
    fn a_lone_dash_is_positional() {
        let p = parse(&["-", "-c", "select 1"]);
        assert_eq!(p.dbname.as_deref(), Some(OsStr::new("-")));
    }
}
