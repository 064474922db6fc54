//! `dbguard man`: the manual pages, generated from the same clap
//! definitions that parse the arguments, so they never drift from the real
//! options. `install.sh` writes them with `--dir` into `share/man/man1`.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::exit;
use crate::{Context, Error};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  dbguard man | man -l -
  dbguard man --dir ~/.local/share/man/man1")]
pub struct Args {
    /// Write dbguard.1 and one page per command (dbguard-list.1, ...) into
    /// DIR instead of printing dbguard.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args, _ctx: &Context) -> Result<u8, Error> {
    match args.dir {
        Some(dir) => {
            let written = write_pages(&dir)
                .map_err(|e| Error::io(format!("writing manual pages to {}", dir.display()), e))?;
            let mut out = std::io::stdout().lock();
            for page in written {
                writeln!(out, "{}", page.display())
                    .map_err(|e| Error::io("writing to stdout", e))?;
            }
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Error::io("rendering the manual page", e))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .map_err(|e| Error::io("writing to stdout", e))?;
        }
    }
    Ok(exit::OK)
}

/// Writes `dbguard.1` and `dbguard-<command>.1` for every visible command
/// into `dir` (which must exist); returns the files written, sorted.
pub fn write_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dbguard") && n.ends_with(".1"))
        })
        .collect();
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_command_with_the_real_options() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "dbguard.1",
            "dbguard-list.1",
            "dbguard-log.1",
            "dbguard-uninstall.1",
        ] {
            assert!(names.iter().any(|n| n == expected), "{names:?}");
        }
        let list = std::fs::read_to_string(dir.path().join("dbguard-list.1")).unwrap();
        assert!(list.contains(".TH dbguard-list 1"), "{list}");
        assert!(list.contains("database"), "{list}");
        let main = std::fs::read_to_string(dir.path().join("dbguard.1")).unwrap();
        assert!(main.contains("dbguard\\-restore"), "{main}");
    }
}
