//! `dbguard scan`: reads psql scripts (files, or stdin as `-`) and reports
//! the destructive statements in them. Exit 0: nothing destructive; 1:
//! destructive statements found; 2: an input could not be read or followed
//! (the report is still printed, then the error).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::exit;
use crate::report::{self, Report};
use crate::sql::{Format, Scanner};
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 nothing destructive, 1 destructive statements found, 2 error."
)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Set a psql variable, as `psql -v NAME=VALUE` does (a bare NAME unsets it).
    #[arg(short = 'v', long = "set", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,

    /// psql scripts to scan; `-` (or nothing) reads stdin.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let cwd = ctx.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
    if args.paths.is_empty() && ctx.stdin_is_tty {
        return Err(Error::Usage(
            "dbguard scan: no input; name a script, or pipe SQL in and use `-`".into(),
        ));
    }
    let mut scanner = Scanner::new(&cwd);
    // This scan owns stdin: `\i /dev/stdin` reads it, as psql would.
    scanner.read_stdin_includes(true);
    for assignment in &args.variables {
        scanner.apply_assignment(assignment);
    }
    let stdin_only = [PathBuf::from("-")];
    let paths = if args.paths.is_empty() {
        &stdin_only[..]
    } else {
        &args.paths[..]
    };
    for path in paths {
        if path == Path::new("-") {
            scanner.scan_reader("-", std::io::stdin().lock(), &cwd);
        } else {
            scanner.scan_path(path);
        }
    }
    let report = scanner.finish();

    let stdout = std::io::stdout();
    let color = args.format == Format::Text
        && stdout.is_terminal()
        && ctx.var("NO_COLOR").is_none_or(|v| v.is_empty())
        && ctx.var("TERM").is_none_or(|v| v != "dumb");
    let mut out = stdout.lock();
    report::write(args.format, &Report::Scan(&report), &mut out, color)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write the report", e))?;

    let errors: Vec<_> = report.errors().collect();
    if let Some(first) = errors.first() {
        let more = match errors.len() {
            1 => String::new(),
            n => format!(" (and {} more problems)", n - 1),
        };
        let at = match (first.path.is_empty(), first.line) {
            (true, _) => String::new(),
            (false, Some(line)) => format!("{}:{line}: ", first.path),
            (false, None) => format!("{}: ", first.path),
        };
        return Err(Error::Failed {
            message: format!(
                "{at}{}{more}; not all input was judged, so treat it as destructive",
                first.message
            ),
            code: exit::ERROR,
        });
    }
    Ok(if report.is_destructive() {
        exit::FOUND
    } else {
        exit::OK
    })
}
