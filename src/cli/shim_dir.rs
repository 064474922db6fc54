//! Where the shim directory is, for `doctor` and `init`. Both need to agree
//! with `install.sh` on the default, and both must work for installs that
//! chose another place, so the lookup goes: `DBGUARD_SHIM_DIR`, the default
//! location when it exists, any directory on PATH marked as a shim
//! directory, and finally the default even though it does not exist (so
//! `init` can be set up in a shell rc before the first install).

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::Context;
use crate::shim::resolve::SHIM_DIR_MARKER;

/// Names the shim directory explicitly, for installs outside the default.
pub use crate::env::SHIM_DIR as SHIM_DIR_ENV;

/// How the shim directory was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `DBGUARD_SHIM_DIR` or a command-line option.
    Explicit,
    /// `$XDG_DATA_HOME/dbguard/shims`, where `install.sh` puts it.
    Default,
    /// A directory on PATH holding the marker file.
    OnPath,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Explicit => "from DBGUARD_SHIM_DIR",
            Origin::Default => "default location",
            Origin::OnPath => "found on PATH",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimDir {
    pub path: PathBuf,
    pub origin: Origin,
}

/// `$XDG_DATA_HOME/dbguard/shims`, or `~/.local/share/dbguard/shims` when
/// XDG_DATA_HOME is unset or relative (the XDG spec says to ignore it then).
pub fn default_path(ctx: &Context) -> Option<PathBuf> {
    let data_home = ctx
        .var("XDG_DATA_HOME")
        .map(Path::new)
        .filter(|p| p.is_absolute())
        .map(Path::to_path_buf)
        .or_else(|| {
            let home = ctx.var("HOME").filter(|h| !h.is_empty())?;
            Some(Path::new(home).join(".local/share"))
        })?;
    Some(data_home.join("dbguard/shims"))
}

/// The PATH entries of `ctx`, as the shell searches them: an empty entry is
/// the working directory and a relative one is taken from it.
pub fn path_entries(ctx: &Context) -> Vec<PathBuf> {
    let Some(path) = ctx.var("PATH") else {
        return Vec::new();
    };
    let cwd = ctx.cwd.as_deref().unwrap_or(Path::new("."));
    std::env::split_paths(path)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                cwd.to_path_buf()
            } else {
                cwd.join(dir)
            }
        })
        .collect()
}

/// Whether `dir` carries the marker that `install.sh` leaves in shim directories.
pub fn is_marked(dir: &Path) -> bool {
    dir.join(SHIM_DIR_MARKER).exists()
}

/// Finds the shim directory for `ctx`; `explicit` (a command-line option)
/// wins over everything. `None` only when there is no HOME to derive the
/// default from and nothing else names a directory.
pub fn locate(ctx: &Context, explicit: Option<&Path>) -> Option<ShimDir> {
    let named = explicit.map(Path::to_path_buf).or_else(|| {
        ctx.var(SHIM_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = named {
        return Some(ShimDir {
            path,
            origin: Origin::Explicit,
        });
    }
    let default = default_path(ctx);
    if let Some(path) = default.as_ref().filter(|p| is_marked(p)) {
        return Some(ShimDir {
            path: path.clone(),
            origin: Origin::Default,
        });
    }
    if let Some(path) = path_entries(ctx).into_iter().find(|d| is_marked(d)) {
        return Some(ShimDir {
            path,
            origin: Origin::OnPath,
        });
    }
    default.map(|path| ShimDir {
        path,
        origin: Origin::Default,
    })
}

/// Where `dir` sits among `entries` (0 is first), comparing paths by their
/// components so `/a/b/` and `/a/b` are the same entry.
pub fn position(entries: &[PathBuf], dir: &Path) -> Option<usize> {
    entries.iter().position(|e| e == dir)
}

/// The file name of the shell in `$SHELL`, for shell-specific advice.
pub fn login_shell(ctx: &Context) -> Option<&OsStr> {
    ctx.var("SHELL").and_then(|s| Path::new(s).file_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn default_follows_xdg_then_home() {
        let ctx = Context::for_test(&["dbguard"], &[("HOME", "/home/u")]);
        assert_eq!(
            default_path(&ctx),
            Some(PathBuf::from("/home/u/.local/share/dbguard/shims"))
        );
        let ctx = Context::for_test(
            &["dbguard"],
            &[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")],
        );
        assert_eq!(
            default_path(&ctx),
            Some(PathBuf::from("/data/dbguard/shims"))
        );
        let relative = Context::for_test(
            &["dbguard"],
            &[("HOME", "/home/u"), ("XDG_DATA_HOME", "data")],
        );
        assert_eq!(
            default_path(&relative),
            Some(PathBuf::from("/home/u/.local/share/dbguard/shims"))
        );
    }

    #[test]
    fn lookup_order() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let default = home.join(".local/share/dbguard/shims");
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join(SHIM_DIR_MARKER), "").unwrap();
        let path = format!("/usr/bin:{}", elsewhere.display());
        let home_s = home.display().to_string();

        // The default does not exist yet: the marked PATH entry wins.
        let ctx = Context::for_test(&["dbguard"], &[("HOME", &home_s), ("PATH", &path)]);
        let found = locate(&ctx, None).unwrap();
        assert_eq!(
            (found.path, found.origin),
            (elsewhere.clone(), Origin::OnPath)
        );

        // Once the default exists and is marked, it is preferred.
        fs::create_dir_all(&default).unwrap();
        fs::write(default.join(SHIM_DIR_MARKER), "").unwrap();
        let found = locate(&ctx, None).unwrap();
        assert_eq!(
            (found.path, found.origin),
            (default.clone(), Origin::Default)
        );

        // The variable and the option override both.
        let ctx = Context::for_test(
            &["dbguard"],
            &[("HOME", &home_s), ("PATH", &path), (SHIM_DIR_ENV, "/x")],
        );
        assert_eq!(locate(&ctx, None).unwrap().path, PathBuf::from("/x"));
        assert_eq!(
            locate(&ctx, Some(Path::new("/y"))).unwrap().path,
            PathBuf::from("/y")
        );

        // Nothing anywhere: the default, so init can precede the install.
        let bare = Context::for_test(&["dbguard"], &[("HOME", "/nohome"), ("PATH", "/usr/bin")]);
        let found = locate(&bare, None).unwrap();
        assert_eq!(
            found.path,
            PathBuf::from("/nohome/.local/share/dbguard/shims")
        );
    }

    #[test]
    fn path_entries_resolve_empty_and_relative() {
        let mut ctx = Context::for_test(&["dbguard"], &[("PATH", "/a/::rel/bin")]);
        ctx.cwd = Some(PathBuf::from("/work"));
        let entries = path_entries(&ctx);
        assert_eq!(
            entries,
            [
                PathBuf::from("/a"),
                PathBuf::from("/work"),
                PathBuf::from("/work/rel/bin")
            ]
        );
        assert_eq!(position(&entries, Path::new("/a/")), Some(0));
    }
}
