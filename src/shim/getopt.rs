//! GNU getopt_long as the PostgreSQL client programs call it, for the argv
//! models of dropdb and pg_restore: argument permutation (options may follow
//! operands unless POSIXLY_CORRECT), bundled short flags, attached or
//! separate option arguments, `--name=value`, unique prefixes of long
//! names, and `--` ending the options.
//!
//! Unlike getopt it does not stop at the first problem: it records every
//! one and goes on, because a guard must still see `--clean` or the
//! database name when an option it does not know (one added by a newer
//! PostgreSQL, say) precedes them. The caller decides what a problem means.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    No,
    Required,
}

/// One long option: its name, whether it takes an argument, and the key it
/// is reported under (its short letter when it has one, else its own name).
pub type LongOption = (&'static str, HasArg, &'static str);

/// A program's option table.
pub struct Spec {
    /// The getopt string: letters, each followed by ':' when it takes an argument.
    pub short: &'static str,
    pub long: &'static [LongOption],
}

/// Something the real program would stop at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An option this table does not know: a newer release may accept it.
    Unknown(String),
    /// A known option used wrongly (missing or unexpected argument, an
    /// ambiguous prefix): every release stops here.
    Misused(String),
}

/// The command line, split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Options in order, by key, with their argument.
    pub options: Vec<(&'static str, Option<OsString>)>,
    pub operands: Vec<OsString>,
    pub problems: Vec<Problem>,
}

impl Parsed {
    pub fn has(&self, key: &str) -> bool {
        self.options.iter().any(|(k, _)| *k == key)
    }

    /// The last value given for `key` (the one the programs keep).
    pub fn value(&self, key: &str) -> Option<&OsString> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_ref())
    }

    /// A problem every release of the program stops at.
    pub fn misused(&self) -> Option<&str> {
        self.problems.iter().find_map(|p| match p {
            Problem::Misused(why) => Some(why.as_str()),
            Problem::Unknown(_) => None,
        })
    }

    pub fn has_unknown(&self) -> bool {
        self.problems
            .iter()
            .any(|p| matches!(p, Problem::Unknown(_)))
    }
}

impl Spec {
    fn short_has_arg(&self, c: u8) -> Option<HasArg> {
        let bytes = self.short.as_bytes();
        let i = bytes.iter().position(|&b| b == c && b != b':')?;
        Some(if bytes.get(i + 1) == Some(&b':') {
            HasArg::Required
        } else {
            HasArg::No
        })
    }

    /// The key of short option `c` (a static slice of the getopt string).
    fn short_key(&self, c: u8) -> &'static str {
        let i = self.short.as_bytes().iter().position(|&b| b == c);
        // One byte of an ASCII string: always a char boundary.
        i.map_or("?", |i| &self.short[i..i + 1])
    }

    /// Splits everything after argv[0].
    pub fn parse(&self, args: &[OsString], posixly_correct: bool) -> Parsed {
        let mut out = Parsed::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_bytes();
            i += 1;
            if arg == b"--" {
                out.operands.extend(args[i..].iter().cloned());
                break;
            }
            if arg.len() < 2 || arg[0] != b'-' {
                out.operands.push(args[i - 1].clone());
                if posixly_correct {
                    out.operands.extend(args[i..].iter().cloned());
                    break;
                }
                continue;
            }
            if let Some(body) = arg.strip_prefix(b"--") {
                self.long_option(body, args, &mut i, &mut out);
            } else {
                self.short_options(&arg[1..], args, &mut i, &mut out);
            }
        }
        out
    }

    fn long_option(&self, body: &[u8], args: &[OsString], i: &mut usize, out: &mut Parsed) {
        let (name, inline) = match body.iter().position(|&b| b == b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        let display = String::from_utf8_lossy(name).into_owned();
        let exact = self.long.iter().find(|(n, _, _)| n.as_bytes() == name);
        let (long_name, has_arg, key) = match exact {
            Some(option) => *option,
            None => {
                let matches: Vec<&LongOption> = self
                    .long
                    .iter()
                    .filter(|(n, _, _)| n.as_bytes().starts_with(name))
                    .collect();
                // Two names for the same option (--no-acl, --no-privileges)
                // are not ambiguous to getopt when they agree.
                let first = matches.first().copied();
                let same = first.is_some_and(|f| matches.iter().all(|m| m.1 == f.1 && m.2 == f.2));
                match first {
                    Some(one) if same => *one,
                    None => {
                        out.problems.push(Problem::Unknown(format!(
                            "unrecognized option '--{display}'"
                        )));
                        return;
                    }
                    Some(_) => {
                        out.problems.push(Problem::Misused(format!(
                            "option '--{display}' is ambiguous"
                        )));
                        return;
                    }
                }
            }
        };
        let value = match (has_arg, inline) {
            (HasArg::No, Some(_)) => {
                out.problems.push(Problem::Misused(format!(
                    "option '--{long_name}' doesn't allow an argument"
                )));
                return;
            }
            (HasArg::No, None) => None,
            (HasArg::Required, Some(v)) => Some(OsString::from_vec(v.to_vec())),
            (HasArg::Required, None) => match args.get(*i) {
                Some(v) => {
                    *i += 1;
                    Some(v.clone())
                }
                None => {
                    out.problems.push(Problem::Misused(format!(
                        "option '--{long_name}' requires an argument"
                    )));
                    return;
                }
            },
        };
        out.options.push((key, value));
    }

    fn short_options(&self, cluster: &[u8], args: &[OsString], i: &mut usize, out: &mut Parsed) {
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            j += 1;
            match self.short_has_arg(c) {
                None => out.problems.push(Problem::Unknown(format!(
                    "invalid option -- '{}'",
                    c as char
                ))),
                Some(HasArg::No) => out.options.push((self.short_key(c), None)),
                Some(HasArg::Required) => {
                    let value = if j < cluster.len() {
                        OsString::from_vec(cluster[j..].to_vec())
                    } else {
                        match args.get(*i) {
                            Some(v) => {
                                *i += 1;
                                v.clone()
                            }
                            None => {
                                out.problems.push(Problem::Misused(format!(
                                    "option requires an argument -- '{}'",
                                    c as char
                                )));
                                return;
                            }
                        }
                    };
                    out.options.push((self.short_key(c), Some(value)));
                    return;
                }
            }
        }
    }
}

/// True when the first argument asks for help or the version: the
/// PostgreSQL programs answer these before parsing anything else.
pub fn asks_help_or_version(args: &[OsString]) -> bool {
    matches!(
        args.first().map(|a| a.as_bytes()),
        Some(b"-?" | b"--help" | b"-V" | b"--version")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        short: "cd:f:v",
        long: &[
            ("clean", HasArg::No, "c"),
            ("dbname", HasArg::Required, "d"),
            ("file", HasArg::Required, "f"),
            ("no-acl", HasArg::No, "x"),
            ("no-privileges", HasArg::No, "x"),
            ("no-owner", HasArg::No, "O"),
            ("if-exists", HasArg::No, "if-exists"),
        ],
    };

    fn parse(args: &[&str]) -> Parsed {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        SPEC.parse(&args, false)
    }

    #[test]
    fn bundles_attached_values_long_forms_and_permutation() {
        let p = parse(&["archive", "-cdshop", "--file=out", "--if", "x"]);
        assert_eq!(p.operands, vec![OsString::from("archive"), "x".into()]);
        assert!(p.has("c") && p.has("if-exists"));
        assert_eq!(p.value("d").unwrap(), "shop");
        assert_eq!(p.value("f").unwrap(), "out");
        assert!(p.problems.is_empty());

        let p = parse(&["-c", "--dbname", "a", "-d", "b", "--", "-v"]);
        assert_eq!(p.value("d").unwrap(), "b", "the last one wins");
        assert_eq!(p.operands, vec![OsString::from("-v")]);
    }

    #[test]
    fn problems_are_recorded_and_parsing_goes_on() {
        let p = parse(&["--restrict-key=k", "-q", "-c", "-d", "db"]);
        assert!(p.has_unknown());
        assert!(p.misused().is_none());
        assert!(p.has("c"));
        assert_eq!(p.value("d").unwrap(), "db");

        assert!(parse(&["-d"]).misused().is_some());
        assert!(parse(&["--clean=yes"]).misused().is_some());
        assert!(parse(&["--no-"]).misused().is_some(), "ambiguous");
        assert!(parse(&["--no-p"]).problems.is_empty());
        assert!(parse(&["--no-a"]).has("x"));
    }

    #[test]
    fn posixly_correct_stops_at_the_first_operand() {
        let args: Vec<OsString> = ["a", "-c"].iter().map(OsString::from).collect();
        let p = SPEC.parse(&args, true);
        assert!(!p.has("c"));
        assert_eq!(p.operands.len(), 2);
    }

    #[test]
    fn help_and_version_count_only_first() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(asks_help_or_version(&args(&["--help", "x"])));
        assert!(asks_help_or_version(&args(&["-V"])));
        assert!(!asks_help_or_version(&args(&["x", "--help"])));
    }
}
