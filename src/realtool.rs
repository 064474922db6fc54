//! Finding a real program: the file the shell would have run had the shim
//! directory not been first on PATH. The one PATH walk of dbguard, used by
//! the shims for the tool they become and by `pgtools` for the clients
//! dbguard runs itself (psql, pg_dump, pg_restore), so both always agree
//! on which program is real and fail the same way.
//!
//! Rules, in order: an explicit `DBGUARD_REAL_<PROGRAM>` wins (it must be an
//! executable file and not this binary); otherwise walk PATH as execvp does
//! (an empty entry is the working directory, a relative one is taken from
//! it) and take the first executable regular file that is not this binary
//! (same device and inode, which also covers hard links and symlinks), is
//! not a link to another dbguard, and does not lie in a directory marked as
//! a shim directory.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};

use crate::env;
use crate::tool::Tool;
use crate::{Context, Error};

/// A file inside every directory dbguard creates for its shims. Directories
/// holding it are never searched for real tools.
pub const SHIM_DIR_MARKER: &str = ".dbguard-shims";

/// PATH used when the variable is unset, as execvp(3) does on glibc.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The real program a shim will become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealTool {
    pub tool: Tool,
    pub path: PathBuf,
    pub source: Source,
}

/// How the real tool was found, for `doctor` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Named by `DBGUARD_REAL_<TOOL>`.
    Override,
    /// Found on PATH.
    Path,
}

/// Identity of the running binary, to recognise links to ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The running executable, through /proc/self/exe.
    pub fn current_exe() -> Option<FileId> {
        let exe = std::env::current_exe().ok()?;
        fs::metadata(exe).ok().map(|m| FileId::of(&m))
    }
}

impl RealTool {
    pub fn resolve(tool: Tool, ctx: &Context) -> Result<RealTool, Error> {
        RealTool::resolve_excluding(tool, ctx, FileId::current_exe())
    }

    /// Resolution with an explicit notion of "ourselves", for tests.
    pub fn resolve_excluding(
        tool: Tool,
        ctx: &Context,
        me: Option<FileId>,
    ) -> Result<RealTool, Error> {
        match find(tool.name(), ctx, me) {
            Ok(found) => Ok(RealTool {
                tool,
                path: found.path,
                source: found.source,
            }),
            Err(Missing::Ourselves { var, .. }) => Err(Error::Recursion {
                tool,
                depth: 1,
                var,
            }),
            Err(Missing::NotOnPath { var }) => Err(Error::RealToolNotFound {
                tool,
                package: tool.package(),
                var,
            }),
            Err(missing) => Err(missing.into_error(tool.name())),
        }
    }
}

/// A program the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub source: Source,
}

/// Why the walk found nothing usable. Each caller words "not found" for its
/// own audience (a shim: exit 127; the toolbox: install the client); a bad
/// override is the same error everywhere ([`Missing::into_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// `var` names something that is not an executable regular file.
    NotExecutable { var: String, path: PathBuf },
    /// `var` names this very binary: running it would only come back here.
    Ourselves { var: String, path: PathBuf },
    /// Nothing suitable on PATH; `var` is the override that would help.
    NotOnPath { var: String },
}

impl Missing {
    /// The error for `program`, as every caller reports it.
    pub fn into_error(self, program: &str) -> Error {
        match self {
            Missing::NotExecutable { var, path } => Error::BadOverride {
                program: program.to_owned(),
                var,
                path,
                why: "is not an executable file",
            },
            Missing::Ourselves { var, path } => Error::BadOverride {
                program: program.to_owned(),
                var,
                path,
                why: "is dbguard itself, which would only come back here",
            },
            Missing::NotOnPath { var } => Error::ClientToolNotFound {
                name: program.to_owned(),
                var,
            },
        }
    }
}

/// The one PATH walk: finds `program` (a file name such as `psql` or
/// `pg_dump`) for `ctx`, skipping `me` and every dbguard.
pub fn find(program: &str, ctx: &Context, me: Option<FileId>) -> Result<Found, Missing> {
    let var = env::real_tool_var(program);
    if let Some(path) = ctx.var(&var).filter(|v| !v.is_empty()) {
        let path = absolutize(Path::new(path), ctx.cwd.as_deref());
        return match executable(&path) {
            Some(meta) if Some(FileId::of(&meta)) == me => Err(Missing::Ourselves { var, path }),
            Some(_) => Ok(Found {
                path,
                source: Source::Override,
            }),
            None => Err(Missing::NotExecutable { var, path }),
        };
    }

    let search = ctx.var("PATH").unwrap_or_else(|| OsStr::new(DEFAULT_PATH));
    for dir in std::env::split_paths(search) {
        let dir = absolutize(&dir, ctx.cwd.as_deref());
        if dir.join(SHIM_DIR_MARKER).exists() {
            continue;
        }
        let candidate = dir.join(program);
        let Some(meta) = executable(&candidate) else {
            continue;
        };
        if Some(FileId::of(&meta)) == me || links_to_dbguard(&candidate) {
            continue;
        }
        return Ok(Found {
            path: candidate,
            source: Source::Path,
        });
    }
    Err(Missing::NotOnPath { var })
}

/// A client program dbguard runs itself, found as the shims find theirs.
pub fn find_client(program: &str, ctx: &Context) -> Result<Found, Error> {
    find(program, ctx, FileId::current_exe()).map_err(|missing| missing.into_error(program))
}

/// An empty PATH entry means the working directory, as for execvp.
fn absolutize(path: &Path, cwd: Option<&Path>) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let cwd = cwd.unwrap_or(Path::new("."));
    if path.as_os_str().is_empty() {
        cwd.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Metadata of `path` (links followed) when it is a regular file we may execute.
fn executable(path: &Path) -> Option<fs::Metadata> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || access(path, AccessFlags::X_OK).is_err() {
        return None;
    }
    Some(meta)
}

/// A symlink whose target is named `dbguard`: another install's shim, which
/// would only bounce back through PATH.
fn links_to_dbguard(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|target| {
        target.file_name() == Some(OsStr::new("dbguard"))
            || fs::canonicalize(path).is_ok_and(|t| t.file_name() == Some(OsStr::new("dbguard")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tool_file(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn ctx_with_path(path: &str, extra: &[(&str, &str)]) -> Context {
        let mut env = vec![("PATH", path)];
        env.extend_from_slice(extra);
        Context::for_test(&["psql"], &env)
    }

    #[test]
    fn skips_ourselves_and_shim_dirs() {
        let root = tempfile::tempdir().unwrap();
        let (me_dir, marked, real_dir) = (
            root.path().join("me"),
            root.path().join("marked"),
            root.path().join("real"),
        );
        for d in [&me_dir, &marked, &real_dir] {
            fs::create_dir(d).unwrap();
        }
        let me = tool_file(&me_dir, "psql");
        tool_file(&marked, "psql");
        fs::write(marked.join(SHIM_DIR_MARKER), "").unwrap();
        let real = tool_file(&real_dir, "psql");
        let me_id = FileId::of(&fs::metadata(&me).unwrap());

        let path = format!(
            "{}:{}:{}",
            me_dir.display(),
            marked.display(),
            real_dir.display()
        );
        let found =
            RealTool::resolve_excluding(Tool::Psql, &ctx_with_path(&path, &[]), Some(me_id))
                .unwrap();
        assert_eq!(found.path, real);
        assert_eq!(found.source, Source::Path);
    }

    #[test]
    fn skips_links_to_another_dbguard_and_non_executables() {
        let root = tempfile::tempdir().unwrap();
        let other = root.path().join("other");
        let plain = root.path().join("plain");
        let real_dir = root.path().join("real");
        for d in [&other, &plain, &real_dir] {
            fs::create_dir(d).unwrap();
        }
        let dbguard = tool_file(root.path(), "dbguard");
        symlink(&dbguard, other.join("psql")).unwrap();
        fs::write(plain.join("psql"), "not executable").unwrap();
        fs::create_dir(real_dir.join("alembic")).unwrap();
        let real = tool_file(&real_dir, "psql");
        let path = format!(
            "{}:{}:{}",
            other.display(),
            plain.display(),
            real_dir.display()
        );
        let found =
            RealTool::resolve_excluding(Tool::Psql, &ctx_with_path(&path, &[]), None).unwrap();
        assert_eq!(found.path, real);
        let err = RealTool::resolve_excluding(Tool::Alembic, &ctx_with_path(&path, &[]), None)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::RealToolNotFound {
                tool: Tool::Alembic,
                ..
            }
        ));
    }

    #[test]
    fn empty_and_relative_entries_are_taken_from_the_working_directory() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("bin")).unwrap();
        let real = tool_file(&root.path().join("bin"), "psql");
        let mut ctx = ctx_with_path("/nonexistent::bin", &[]);
        ctx.cwd = Some(root.path().join("bin"));
        let found = RealTool::resolve_excluding(Tool::Psql, &ctx, None).unwrap();
        assert_eq!(found.path, real);
        ctx.cwd = Some(root.path().to_path_buf());
        let found = RealTool::resolve_excluding(Tool::Psql, &ctx, None).unwrap();
        assert_eq!(found.path, root.path().join("bin").join("psql"));
    }

    #[test]
    fn override_wins_and_is_checked() {
        let root = tempfile::tempdir().unwrap();
        let real = tool_file(root.path(), "my-psql");
        let var = real.display().to_string();
        let ctx = ctx_with_path("/nonexistent", &[("DBGUARD_REAL_PSQL", &var)]);
        let found = RealTool::resolve_excluding(Tool::Psql, &ctx, None).unwrap();
        assert_eq!((found.path, found.source), (real.clone(), Source::Override));

        let me = FileId::of(&fs::metadata(&real).unwrap());
        let err = RealTool::resolve_excluding(Tool::Psql, &ctx, Some(me)).unwrap_err();
        assert!(matches!(err, Error::Recursion { .. }));

        let ctx = ctx_with_path("/nonexistent", &[("DBGUARD_REAL_PSQL", "/nope/psql")]);
        let err = RealTool::resolve_excluding(Tool::Psql, &ctx, None).unwrap_err();
        assert!(matches!(err, Error::BadOverride { .. }));
    }

    /// Regression: the shims' walk said exit 126 for a bad
    /// `DBGUARD_REAL_PSQL`, the toolbox's own copy exit 2 for a bad
    /// `DBGUARD_REAL_PG_DUMP`. One walk, one error, one status.
    #[test]
    fn a_bad_override_is_the_same_error_for_a_shimmed_tool_and_a_client() {
        let ctx = ctx_with_path(
            "/nonexistent",
            &[
                ("DBGUARD_REAL_PSQL", "/nope/psql"),
                ("DBGUARD_REAL_PG_DUMP", "/nope/pg_dump"),
            ],
        );
        let shim = RealTool::resolve_excluding(Tool::Psql, &ctx, None).unwrap_err();
        let client = find_client("pg_dump", &ctx).unwrap_err();
        for err in [&shim, &client] {
            assert!(matches!(err, Error::BadOverride { .. }), "{err}");
            assert_eq!(err.exit_code(), crate::error::exit::CANNOT_EXEC);
        }
        assert_eq!(
            client.to_string(),
            "DBGUARD_REAL_PG_DUMP=/nope/pg_dump is not an executable file; point it at the real pg_dump"
        );
    }

    #[test]
    fn a_client_override_naming_dbguard_itself_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let me = tool_file(root.path(), "dbguard");
        let var = me.display().to_string();
        let ctx = ctx_with_path("/nonexistent", &[("DBGUARD_REAL_PG_DUMP", &var)]);
        let me_id = FileId::of(&fs::metadata(&me).unwrap());
        let missing = find("pg_dump", &ctx, Some(me_id)).unwrap_err();
        assert!(matches!(missing, Missing::Ourselves { .. }), "{missing:?}");
        let err = missing.into_error("pg_dump");
        assert!(err.to_string().contains("is dbguard itself"), "{err}");
    }
}
