//! `dbguard uninstall`: removes what `install.sh` installed, with no
//! checkout needed. It reads the manifest `install.sh` left in the shim
//! directory and removes exactly what it lists (binary, preload library,
//! shim links, marker, manual pages, the rc block, and the directories it
//! created when they are empty), each only while it is still the file that
//! was installed: a link repointed or a file replaced by hand is left and
//! named. Backups are never touched; the command says where they are.
//!
//! The manifest format is `install.sh`'s (one `key value` per line); the
//! two implementations are tested against each other in tests/it/install.rs.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cli::shim_dir;
use crate::config::Config;
use crate::error::exit;
use crate::{Context, Error};

/// The manifest's name inside the shim directory (install.sh's MANIFEST).
pub const MANIFEST: &str = ".dbguard-manifest";
/// The lines install.sh puts around its rc block.
const RC_START: &str = "# >>> dbguard >>>";
const RC_END: &str = "# <<< dbguard <<<";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shim directory of the install to remove (default: as `doctor`
    /// finds it: DBGUARD_SHIM_DIR, the default location, or on PATH).
    #[arg(long, value_name = "DIR")]
    pub shim_dir: Option<PathBuf>,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, ctx: &Context) -> Result<u8, Error> {
    let Some(dir) = shim_dir::locate(ctx, args.shim_dir.as_deref()) else {
        return Err(Error::Usage(
            "cannot tell where dbguard was installed: HOME is not set; pass --shim-dir".into(),
        ));
    };
    let manifest_path = dir.path.join(MANIFEST);
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    let text = match fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            writeln!(
                out,
                "nothing to uninstall: no install manifest at {}\n(pass --shim-dir with the directory used when installing)",
                manifest_path.display()
            )
            .map_err(|e| Error::io("writing to stdout", e))?;
            return Ok(exit::OK);
        }
        Err(e) => {
            return Err(Error::io(
                format!("cannot read {}", manifest_path.display()),
                e,
            ));
        }
    };
    let manifest = Manifest::parse(&text);
    let mut report = Report {
        out: &mut out,
        err: &mut err,
        dry_run: args.dry_run,
    };
    remove(&manifest, &manifest_path, &mut report)
        .map_err(|e| Error::io("writing the report", e))?;
    let backups = match Config::load(ctx).and_then(|c| Ok((c.backup_dir()?, c.backup_dir_origin())))
    {
        Ok((dir, origin)) => format!("{} ({origin})", dir.display()),
        Err(e) => format!("unknown ({e})"),
    };
    writeln!(
        out,
        "{}\nBackups were not touched: they are in {backups}, with the audit log (audit.jsonl); projects with a .dbguard.toml keep theirs in backups/ beside it unless it says otherwise. Remove them yourself once you no longer need them.",
        if args.dry_run {
            "Nothing was removed (--dry-run)."
        } else {
            "dbguard uninstalled."
        }
    )
    .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

/// What `install.sh` wrote down.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub binary: Option<PathBuf>,
    pub sha256: Option<String>,
    pub library: Option<PathBuf>,
    pub library_sha256: Option<String>,
    /// The check library the preload library loads from beside itself.
    pub check_library: Option<PathBuf>,
    pub check_library_sha256: Option<String>,
    pub marker: Option<PathBuf>,
    pub links: Vec<PathBuf>,
    /// Manual pages with their checksums.
    pub man_pages: Vec<(String, PathBuf)>,
    /// Directories install.sh created, in creation order.
    pub dirs: Vec<PathBuf>,
    pub rcs: Vec<PathBuf>,
    pub rcs_created: Vec<PathBuf>,
}

impl Manifest {
    pub fn parse(text: &str) -> Manifest {
        let mut m = Manifest::default();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let path = || PathBuf::from(value);
            match key {
                "binary" => m.binary = Some(path()),
                "sha256" => m.sha256 = Some(value.to_owned()),
                "library" => m.library = Some(path()),
                "library-sha256" => m.library_sha256 = Some(value.to_owned()),
                "check-library" => m.check_library = Some(path()),
                "check-library-sha256" => m.check_library_sha256 = Some(value.to_owned()),
                "marker" => m.marker = Some(path()),
                "link" => m.links.push(path()),
                "man" => {
                    if let Some((sha, page)) = value.split_once(' ') {
                        m.man_pages.push((sha.to_owned(), PathBuf::from(page)));
                    }
                }
                "dir" => m.dirs.push(path()),
                "rc" => m.rcs.push(path()),
                "rc-created" => m.rcs_created.push(path()),
                // Keys from a newer install.sh: leave what they name alone.
                _ => {}
            }
        }
        m
    }
}

struct Report<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    dry_run: bool,
}

impl Report<'_> {
    /// Removes a file (or link) and says so; `--dry-run` only says so.
    fn remove_file(&mut self, path: &Path, what: &str) -> io::Result<()> {
        if self.dry_run {
            return writeln!(self.out, "would remove {}{what}", path.display());
        }
        match fs::remove_file(path) {
            Ok(()) => writeln!(self.out, "removed {}{what}", path.display()),
            Err(e) => self.leave(path, &e.to_string()),
        }
    }

    fn leave(&mut self, path: &Path, why: &str) -> io::Result<()> {
        writeln!(self.err, "dbguard: left {} in place: {why}", path.display())
    }
}

/// Carries out the removal, in install.sh's order: rc blocks, links,
/// library, manual pages, binary, marker, manifest, directories.
fn remove(m: &Manifest, manifest_path: &Path, r: &mut Report<'_>) -> io::Result<()> {
    for rc in &m.rcs {
        let Ok(text) = fs::read_to_string(rc) else {
            continue;
        };
        if !text.lines().any(|l| l.starts_with(RC_START)) {
            continue;
        }
        let kept = without_block(&text);
        let created = m.rcs_created.contains(rc);
        if r.dry_run {
            writeln!(
                r.out,
                "would remove the dbguard lines from {}",
                rc.display()
            )?;
        } else if created && kept.trim().is_empty() {
            fs::remove_file(rc)?;
            writeln!(
                r.out,
                "removed {} (created by install.sh, now empty)",
                rc.display()
            )?;
        } else {
            // Rewritten in place, so its permissions and a dotfile
            // manager's link stay as they are.
            fs::write(rc, kept)?;
            writeln!(r.out, "removed the dbguard lines from {}", rc.display())?;
        }
    }
    let binary = m.binary.clone().unwrap_or_default();
    for link in &m.links {
        match fs::read_link(link) {
            Ok(target) if target == binary => r.remove_file(link, "")?,
            Ok(_) => r.leave(link, &format!("it no longer links to {}", binary.display()))?,
            Err(_) if fs::symlink_metadata(link).is_ok() => {
                r.leave(link, &format!("it no longer links to {}", binary.display()))?
            }
            Err(_) => {}
        }
    }
    if let Some(library) = &m.library {
        remove_if_unchanged(r, library, m.library_sha256.as_deref())?;
    }
    if let Some(check) = &m.check_library {
        remove_if_unchanged(r, check, m.check_library_sha256.as_deref())?;
    }
    for (sha, page) in &m.man_pages {
        remove_if_unchanged(r, page, Some(sha))?;
    }
    if m.binary.is_some() {
        remove_if_unchanged(r, &binary, m.sha256.as_deref())?;
    }
    if r.dry_run {
        return Ok(());
    }
    if let Some(marker) = &m.marker {
        let _ = fs::remove_file(marker);
    }
    fs::remove_file(manifest_path)?;
    // Deepest first: the manifest lists directories in creation order.
    for dir in m.dirs.iter().rev() {
        if !dir.is_dir() {
            continue;
        }
        match fs::remove_dir(dir) {
            Ok(()) => writeln!(r.out, "removed {}", dir.display())?,
            Err(_) => r.leave(dir, "it is not empty")?,
        }
    }
    Ok(())
}

/// Removes `path` if it is a regular file whose contents still have the
/// checksum recorded at install time.
fn remove_if_unchanged(r: &mut Report<'_>, path: &Path, sha: Option<&str>) -> io::Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let unchanged = meta.is_file() && sha.is_some() && sha256_of(path).ok().as_deref() == sha;
    if unchanged {
        r.remove_file(path, "")
    } else {
        r.leave(path, "it changed since install.sh installed it")
    }
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `text` without the lines from RC_START to RC_END (as install.sh's awk).
fn without_block(text: &str) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line.starts_with(RC_START) {
            skipping = true;
            continue;
        }
        if skipping {
            if line.starts_with(RC_END) {
                skipping = false;
            }
            continue;
        }
        kept.push_str(line);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_as_install_sh_writes_them() {
        let m = Manifest::parse(
            "# comment\nbinary /h/.local/bin/dbguard\nsha256 ab\nlink /s/psql\nlink /s/odd name\n\
             man cd /h/.local/share/man/man1/dbguard.1\ndir /h/.local/bin\nrc /h/.bashrc\nfuture thing\n",
        );
        assert_eq!(
            m.binary.as_deref(),
            Some(Path::new("/h/.local/bin/dbguard"))
        );
        assert_eq!(
            m.links,
            [PathBuf::from("/s/psql"), PathBuf::from("/s/odd name")]
        );
        assert_eq!(
            m.man_pages,
            [(
                "cd".to_owned(),
                PathBuf::from("/h/.local/share/man/man1/dbguard.1")
            )]
        );
        assert_eq!(m.rcs, [PathBuf::from("/h/.bashrc")]);
    }

    #[test]
    fn only_the_block_leaves_the_rc_file() {
        let rc = "alias ll='ls -l'\n# >>> dbguard >>> added by dbguard\nif ...; fi\n# <<< dbguard <<<\nexport A=1\n";
        assert_eq!(without_block(rc), "alias ll='ls -l'\nexport A=1\n");
    }
}
