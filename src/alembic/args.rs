//! alembic's command line, modelled as alembic 1.13–1.20 read it with
//! argparse: global options (`-c/--config` repeatable, `-n/--name`, `-x`
//! repeatable, `--raiseerr`, `-q`), then one subcommand with its own
//! options. Long options may be abbreviated to a unique prefix and take
//! their value as `--opt=value` or as the next argument; a token that looks
//! like a negative number (`-1`) is a positional, as argparse decides.
//!
//! The guard only needs to know which command runs, against which config,
//! and whether it is offline (`--sql`), so everything else is kept raw.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The subcommand and the parts of it the guard decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Upgrade {
        revision: OsString,
        sql: bool,
    },
    Downgrade {
        revision: OsString,
        sql: bool,
    },
    Stamp {
        revisions: Vec<OsString>,
        sql: bool,
        purge: bool,
    },
    Revision {
        autogenerate: bool,
        sql: bool,
    },
    /// Commands that only read the script directory or the version table,
    /// or write new files: `current`, `history`, `heads`, `show`, `check`, ...
    Other {
        name: String,
    },
}

/// alembic's argv, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlembicArgs {
    /// `-c/--config`, in order (alembic accepts an ini file and a pyproject.toml).
    pub configs: Vec<OsString>,
    /// `-n/--name`: the ini section (default `alembic`).
    pub name: Option<OsString>,
    /// `-x` arguments for env.py, in order.
    pub x_args: Vec<OsString>,
    pub raiseerr: bool,
    pub quiet: bool,
    /// `-h`/`--help`/`--version` anywhere: prints and exits.
    pub help_or_version: bool,
    pub command: Option<Command>,
    /// Why alembic would refuse these arguments, when it would.
    pub rejected: Option<String>,
}

/// What the guard must do with the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Touches no database, or only reads: pass straight through.
    Pass,
    /// Reverts migrations.
    Downgrade,
    /// Applies migrations, which may hold destructive operations.
    Upgrade,
    /// Rewrites the version table without running migrations.
    Stamp,
    /// Writes a new migration file from the database's state; worth a review.
    Autogenerate,
}

struct OptSpec {
    long: &'static str,
    short: Option<u8>,
    takes_value: bool,
}

const fn opt(long: &'static str, short: Option<u8>, takes_value: bool) -> OptSpec {
    OptSpec {
        long,
        short,
        takes_value,
    }
}

const GLOBAL: &[OptSpec] = &[
    opt("help", Some(b'h'), false),
    opt("version", None, false),
    opt("config", Some(b'c'), true),
    opt("name", Some(b'n'), true),
    opt("x", Some(b'x'), true),
    opt("raiseerr", None, false),
    opt("quiet", Some(b'q'), false),
];

const HELP: OptSpec = opt("help", Some(b'h'), false);
const VERBOSE: OptSpec = opt("verbose", Some(b'v'), false);

/// Each subcommand's options (alembic 1.20; older versions have subsets).
const COMMANDS: &[(&str, &[OptSpec])] = &[
    (
        "upgrade",
        &[HELP, opt("sql", None, false), opt("tag", None, true)],
    ),
    (
        "downgrade",
        &[HELP, opt("sql", None, false), opt("tag", None, true)],
    ),
    (
        "stamp",
        &[
            HELP,
            opt("sql", None, false),
            opt("tag", None, true),
            opt("purge", None, false),
        ],
    ),
    (
        "revision",
        &[
            HELP,
            opt("message", Some(b'm'), true),
            opt("autogenerate", None, false),
            opt("sql", None, false),
            opt("head", None, true),
            opt("splice", None, false),
            opt("branch-label", None, true),
            opt("version-path", None, true),
            opt("rev-id", None, true),
            opt("depends-on", None, true),
        ],
    ),
    (
        "merge",
        &[
            HELP,
            opt("message", Some(b'm'), true),
            opt("branch-label", None, true),
            opt("rev-id", None, true),
        ],
    ),
    (
        "current",
        &[HELP, VERBOSE, opt("check-heads", Some(b'c'), false)],
    ),
    (
        "history",
        &[
            HELP,
            opt("rev-range", Some(b'r'), true),
            VERBOSE,
            opt("indicate-current", Some(b'i'), false),
        ],
    ),
    (
        "heads",
        &[HELP, VERBOSE, opt("resolve-dependencies", None, false)],
    ),
    ("branches", &[HELP, VERBOSE]),
    ("show", &[HELP, VERBOSE]),
    (
        "init",
        &[
            HELP,
            opt("template", Some(b't'), true),
            opt("package", None, false),
        ],
    ),
    ("ensure_version", &[HELP, opt("sql", None, false)]),
    ("check", &[HELP]),
    ("edit", &[HELP]),
    ("list_templates", &[HELP]),
];

fn command_options(command: &str) -> Option<&'static [OptSpec]> {
    COMMANDS
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, specs)| *specs)
}

/// A parsed option occurrence: its long name and value.
type Occurrence = (&'static str, Option<OsString>);

/// argparse's test for a positional that starts with a dash.
fn looks_negative_number(arg: &[u8]) -> bool {
    let Some(rest) = arg.strip_prefix(b"-") else {
        return false;
    };
    !rest.is_empty()
        && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && rest.iter().filter(|b| **b == b'.').count() <= 1
        && rest.iter().any(u8::is_ascii_digit)
}

/// Parses one option token (and maybe its value from the next argument).
fn parse_option(
    specs: &'static [OptSpec],
    args: &[OsString],
    i: &mut usize,
) -> Result<Occurrence, String> {
    let arg = args[*i].as_bytes();
    *i += 1;
    let lossy = String::from_utf8_lossy(arg).into_owned();
    let (spec, inline): (&OptSpec, Option<&[u8]>) = if let Some(body) = arg.strip_prefix(b"--") {
        let (name, inline) = match body.iter().position(|&b| b == b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        let exact = specs.iter().find(|s| s.long.as_bytes() == name);
        let spec = match exact {
            Some(s) => s,
            None => {
                let matches: Vec<&OptSpec> = specs
                    .iter()
                    .filter(|s| s.long.len() > 1 && s.long.as_bytes().starts_with(name))
                    .collect();
                match matches.as_slice() {
                    [one] => *one,
                    [] => return Err(format!("unrecognized arguments: {lossy}")),
                    _ => return Err(format!("ambiguous option: {lossy}")),
                }
            }
        };
        (spec, inline)
    } else {
        let letter = arg[1];
        let spec = specs
            .iter()
            .find(|s| s.short == Some(letter))
            .ok_or_else(|| format!("unrecognized arguments: {lossy}"))?;
        let rest = &arg[2..];
        if !spec.takes_value && !rest.is_empty() {
            // `-qv`-style bundles: alembic has too few flags for them to matter.
            return Err(format!("unrecognized arguments: {lossy}"));
        }
        (spec, (!rest.is_empty()).then_some(rest))
    };
    let value = match (spec.takes_value, inline) {
        (false, Some(_)) => {
            return Err(format!(
                "argument --{}: ignored explicit argument",
                spec.long
            ));
        }
        (false, None) => None,
        (true, Some(v)) => Some(OsString::from(std::ffi::OsStr::from_bytes(v))),
        (true, None) => match args.get(*i) {
            Some(v) if !v.as_bytes().starts_with(b"-") || looks_negative_number(v.as_bytes()) => {
                *i += 1;
                Some(v.clone())
            }
            _ => return Err(format!("argument --{}: expected one argument", spec.long)),
        },
    };
    Ok((spec.long, value))
}

impl AlembicArgs {
    /// Parses everything after argv[0].
    pub fn parse(args: &[OsString]) -> AlembicArgs {
        let mut parsed = AlembicArgs::default();
        if let Err(why) = parsed.parse_inner(args) {
            parsed.rejected = Some(why);
        }
        parsed
    }

    fn parse_inner(&mut self, args: &[OsString]) -> Result<(), String> {
        let mut i = 0;
        // Global options, up to the subcommand.
        let command_name = loop {
            let Some(arg) = args.get(i) else {
                if self.help_or_version {
                    return Ok(());
                }
                return Err("too few arguments".into());
            };
            let bytes = arg.as_bytes();
            if bytes.len() > 1 && bytes[0] == b'-' && bytes != b"--" {
                let (name, value) = parse_option(GLOBAL, args, &mut i)?;
                match name {
                    "help" | "version" => self.help_or_version = true,
                    "config" => self.configs.extend(value),
                    "name" => self.name = value,
                    "x" => self.x_args.extend(value),
                    "raiseerr" => self.raiseerr = true,
                    "quiet" => self.quiet = true,
                    _ => {}
                }
                continue;
            }
            if bytes == b"--" {
                i += 1;
                continue;
            }
            i += 1;
            break String::from_utf8_lossy(bytes).into_owned();
        };
        if self.help_or_version {
            // argparse acts on -h/--version as soon as it meets them.
            return Ok(());
        }
        let specs = command_options(&command_name)
            .ok_or_else(|| format!("argument: invalid choice: '{command_name}'"))?;

        let mut flags: Vec<&'static str> = Vec::new();
        let mut positional: Vec<OsString> = Vec::new();
        let mut only_positional = false;
        while i < args.len() {
            let bytes = args[i].as_bytes();
            if only_positional
                || bytes.len() < 2
                || bytes[0] != b'-'
                || looks_negative_number(bytes)
            {
                positional.push(args[i].clone());
                i += 1;
                continue;
            }
            if bytes == b"--" {
                only_positional = true;
                i += 1;
                continue;
            }
            let (name, _) = parse_option(specs, args, &mut i)?;
            if name == "help" {
                self.help_or_version = true;
                return Ok(());
            }
            flags.push(name);
        }
        let has = |flag: &str| flags.contains(&flag);
        let one_revision = |positional: &mut Vec<OsString>| -> Result<OsString, String> {
            match positional.len() {
                1 => Ok(positional.remove(0)),
                0 => Err("the following arguments are required: revision".into()),
                _ => Err("unrecognized arguments".into()),
            }
        };
        self.command = Some(match command_name.as_str() {
            "upgrade" => Command::Upgrade {
                revision: one_revision(&mut positional)?,
                sql: has("sql"),
            },
            "downgrade" => Command::Downgrade {
                revision: one_revision(&mut positional)?,
                sql: has("sql"),
            },
            "stamp" => {
                if positional.is_empty() {
                    return Err("the following arguments are required: revisions".into());
                }
                Command::Stamp {
                    revisions: positional,
                    sql: has("sql"),
                    purge: has("purge"),
                }
            }
            "revision" => Command::Revision {
                autogenerate: has("autogenerate"),
                sql: has("sql"),
            },
            other => Command::Other {
                name: other.to_string(),
            },
        });
        Ok(())
    }

    /// What the guard must do. Offline (`--sql`) runs only print SQL, and
    /// anything alembic rejects never reaches env.py: both pass through.
    pub fn intent(&self) -> Intent {
        if self.rejected.is_some() || self.help_or_version {
            return Intent::Pass;
        }
        match &self.command {
            Some(Command::Downgrade { sql: false, .. }) => Intent::Downgrade,
            Some(Command::Upgrade { sql: false, .. }) => Intent::Upgrade,
            Some(Command::Stamp { sql: false, .. }) => Intent::Stamp,
            Some(Command::Revision {
                autogenerate: true,
                sql: false,
            }) => Intent::Autogenerate,
            _ => Intent::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> AlembicArgs {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        AlembicArgs::parse(&args)
    }

    #[test]
    fn downgrade_targets_of_every_form() {
        for target in [
            "-1",
            "base",
            "ae1027a6acf",
            "ae10",
            "branch@-2",
            "heads",
            "-2.5",
        ] {
            let p = parse(&["downgrade", target]);
            assert_eq!(
                p.command,
                Some(Command::Downgrade {
                    revision: target.into(),
                    sql: false
                }),
                "{target}"
            );
            assert_eq!(p.intent(), Intent::Downgrade);
        }
    }

    #[test]
    fn offline_mode_passes_through_even_abbreviated() {
        for args in [
            &["upgrade", "head", "--sql"][..],
            &["downgrade", "--sql", "0002:0001"],
            &["upgrade", "--sq", "head"],
            &["upgrade", "--s", "head"],
            &["stamp", "--sql", "head"],
        ] {
            assert_eq!(parse(args).intent(), Intent::Pass, "{args:?}");
        }
        // In `revision`, --s could be --sql or --splice.
        assert!(
            parse(&["revision", "--s"])
                .rejected
                .unwrap()
                .contains("ambiguous")
        );
    }

    #[test]
    fn global_options_come_before_the_command() {
        let p = parse(&[
            "-c",
            "a.ini",
            "--config=pyproject.toml",
            "-n",
            "tenant",
            "-x",
            "schema=a",
            "-xdry=1",
            "--raiseerr",
            "-q",
            "upgrade",
            "head",
        ]);
        assert_eq!(
            p.configs,
            vec![OsString::from("a.ini"), OsString::from("pyproject.toml")]
        );
        assert_eq!(p.name.as_deref(), Some(std::ffi::OsStr::new("tenant")));
        assert_eq!(
            p.x_args,
            vec![OsString::from("schema=a"), OsString::from("dry=1")]
        );
        assert!(p.raiseerr && p.quiet);
        assert_eq!(p.intent(), Intent::Upgrade);
        // After the command, a global option is alembic's error, not ours to guard.
        assert!(parse(&["upgrade", "head", "-x", "a=1"]).rejected.is_some());
    }

    #[test]
    fn stamp_and_autogenerate() {
        let p = parse(&["stamp", "--purge", "head"]);
        assert_eq!(
            p.command,
            Some(Command::Stamp {
                revisions: vec!["head".into()],
                sql: false,
                purge: true
            })
        );
        assert_eq!(p.intent(), Intent::Stamp);
        assert_eq!(
            parse(&["revision", "--autogenerate", "-m", "x"]).intent(),
            Intent::Autogenerate
        );
        assert_eq!(
            parse(&["revision", "--autog", "-mx"]).intent(),
            Intent::Autogenerate
        );
        assert_eq!(
            parse(&["revision", "-m", "add table"]).intent(),
            Intent::Pass
        );
    }

    #[test]
    fn reading_commands_pass() {
        for args in [
            &["current"][..],
            &["history", "-r", "-3:current"],
            &["heads", "-v"],
            &["show", "head"],
            &["check"],
            &["--help"],
            &["downgrade", "-h"],
            &["--version"],
        ] {
            let p = parse(args);
            assert_eq!(p.intent(), Intent::Pass, "{args:?}: {:?}", p.rejected);
        }
    }

    #[test]
    fn what_alembic_rejects() {
        for args in [
            &[][..],
            &["frobnicate"],
            &["downgrade"],
            &["downgrade", "-1", "-2"],
            &["upgrade", "--bogus", "head"],
            &["-c"],
        ] {
            let p = parse(args);
            assert!(p.rejected.is_some(), "{args:?}");
            assert_eq!(p.intent(), Intent::Pass);
        }
    }
}
