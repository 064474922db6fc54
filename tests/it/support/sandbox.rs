//! A sandbox is what a user's shell looks like after installing dbguard: a
//! private HOME, a shim directory with `psql`, `alembic`, `dropdb` and
//! `pg_restore` linking to the built binary, first on PATH, then the alembic
//! venv and the system PATH.
//! Commands get a clean environment so the host's settings never leak in.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{TestDb, alembic_bin_dir, cluster};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub shims: PathBuf,
    /// The PATH every command in the sandbox sees.
    pub path: String,
    /// Extra environment (PG* for a database, DBGUARD_* for a test).
    pub env: Vec<(String, String)>,
}

/// The built binary.
pub fn dbguard_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dbguard"))
}

/// Puts the preload libraries (the first stage psql gets in `LD_PRELOAD`
/// and the check it loads from beside itself) where `cargo build` leaves
/// them, beside the binary, so the shim finds them there as in a
/// development build.
/// - The check: `cargo test` builds it (for its crate's own tests) only
///   into `deps/`, the directory of this test executable; a copy beside the
///   binary from an older `cargo build` would be stale.
/// - The first stage is a workspace of its own (`no_std`,
///   `panic = "abort"`), which `cargo test` does not build: it is built
///   here, optimised as it ships, into a target directory of its own (the
///   running `cargo test` holds the lock on ours).
///
/// Done once per run, with a hard link and a rename, so a concurrent reader
/// never sees half a file.
pub fn install_preload_beside_binary() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let check = std::env::current_exe()
            .expect("test executable")
            .with_file_name("libdbguard_check.so");
        place_beside_binary(&check, "libdbguard_check.so");
        place_beside_binary(&build_first_stage(), "libdbguard_preload.so");
    });
}

/// Builds `preload/first` (release, `--locked`) and returns the library.
fn build_first_stage() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = dbguard_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("first-stage");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(repo.join("preload/first/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo to build preload/first");
    assert!(
        out.status.success(),
        "building preload/first failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("release/libdbguard_preload.so")
}

fn place_beside_binary(fresh: &Path, name: &str) {
    let beside = dbguard_bin().with_file_name(name);
    if !fresh.is_file() || fresh == beside {
        return; // built by `cargo build` only: it is beside already
    }
    let staged = beside.with_extension(format!("so.{}", std::process::id()));
    let _ = fs::remove_file(&staged);
    fs::hard_link(fresh, &staged)
        .or_else(|_| fs::copy(fresh, &staged).map(|_| ()))
        .expect("stage the preload library");
    fs::rename(&staged, &beside).expect("place the preload library");
}

impl Sandbox {
    /// A sandbox with the alembic venv on PATH behind the shims.
    pub fn new() -> Sandbox {
        let venv = alembic_bin_dir().display().to_string();
        Sandbox::with_path_tail(&format!("{venv}:{}", system_path()))
    }

    /// A sandbox without alembic (faster: no venv needed).
    pub fn psql_only() -> Sandbox {
        Sandbox::with_path_tail(&system_path())
    }

    fn with_path_tail(tail: &str) -> Sandbox {
        install_preload_beside_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        let shims = home.join(".local/share/dbguard/shims");
        fs::create_dir_all(&shims).expect("shim dir");
        fs::write(shims.join(".dbguard-shims"), "").expect("shim marker");
        for tool in ["psql", "alembic", "dropdb", "pg_restore"] {
            symlink(dbguard_bin(), shims.join(tool)).expect("shim link");
        }
        let path = format!("{}:{tail}", shims.display());
        Sandbox {
            dir,
            home,
            shims,
            path,
            env: Vec::new(),
        }
    }

    /// Points libpq tools at `db`.
    pub fn with_db(mut self, db: &TestDb) -> Sandbox {
        self.env.extend(db.env());
        self
    }

    pub fn set(&mut self, key: &str, value: &str) -> &mut Sandbox {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A command with the sandbox's clean environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("LC_ALL", "C.UTF-8")
            .env("TZ", "UTC")
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        cmd
    }

    /// `tool` through the shim, as a user's shell would run it.
    pub fn shim(&self, tool: &str) -> Command {
        self.command(self.shims.join(tool))
    }

    /// The real `tool`, as the shell would run it without dbguard.
    pub fn real(&self, tool: &str) -> Command {
        self.command(real_tool(tool))
    }

    /// `dbguard` itself.
    pub fn dbguard(&self) -> Command {
        self.command(dbguard_bin())
    }
}

/// Where the real tool lives: the venv for alembic, the client dir otherwise.
pub fn real_tool(tool: &str) -> PathBuf {
    if tool == "alembic" {
        alembic_bin_dir().join("alembic")
    } else {
        cluster().client(tool)
    }
}

/// The PATH of the test process, without any dbguard shim directory.
fn system_path() -> String {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|d| !d.join(".dbguard-shims").exists())
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Captured outcome of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Exit status, or 128 + signal number when killed, as a shell reports it.
    pub status: i32,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` with `stdin` fed in, capturing everything.
pub fn capture(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    use std::os::unix::process::ExitStatusExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().expect("wait");
    let status = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    Output {
        stdout: out.stdout,
        stderr: out.stderr,
        status,
    }
}

/// Path of a file inside the sandbox directory.
pub fn in_dir(sandbox: &Sandbox, name: &str) -> PathBuf {
    sandbox.dir.path().join(name)
}

pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
