//! The alembic side of the harness: a Python venv under target/ with pinned
//! alembic, SQLAlchemy and psycopg2-binary (created once and reused across
//! runs), and a sample alembic project that tests copy and point at their
//! own database.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

use super::TestDb;

/// The pins; changing them rebuilds the venv on the next run.
pub const PINS: &[&str] = &[
    "alembic==1.20.1",
    "SQLAlchemy==2.0.58",
    "psycopg2-binary==2.9.13",
];

static VENV_BIN: OnceLock<PathBuf> = OnceLock::new();

/// The venv's bin directory (holds the real `alembic` and `python`).
pub fn alembic_bin_dir() -> &'static Path {
    VENV_BIN.get_or_init(|| match ensure_venv() {
        Ok(bin) => bin,
        Err(message) => panic!("alembic venv: {message}"),
    })
}

fn ensure_venv() -> Result<PathBuf, String> {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join("alembic-venv");
    let bin = venv.join("bin");
    let stamp = venv.join(".dbguard-pins");
    let wanted = PINS.join("\n");
    // Several test processes (nextest) may get here at once: one builds.
    let lock_file = fs::File::create(base.join("alembic-venv.lock")).map_err(|e| e.to_string())?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| e.to_string())?;
    if fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && bin.join("alembic").exists() {
        return Ok(bin);
    }
    let _ = fs::remove_dir_all(&venv);
    let python = std::env::var("DBGUARD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("{e} (on Debian: apt-get install -y python3-venv)"))?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PINS))?;
    fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(bin)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A copy of tests/fixtures/alembic_project whose alembic.ini points at a
/// test database. Revisions: 0001 users (with rows), 0002 adds users.email,
/// 0003 orders (with rows), 0004 drops users.nickname.
pub struct AlembicProject {
    pub dir: tempfile::TempDir,
}

impl AlembicProject {
    pub fn new(db: &TestDb) -> AlembicProject {
        let dir = tempfile::tempdir().expect("temp dir");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alembic_project");
        copy_tree(&fixture, dir.path()).expect("copy the sample alembic project");
        let ini = dir.path().join("alembic.ini");
        let text = fs::read_to_string(&ini).expect("read alembic.ini");
        fs::write(&ini, text.replace("@DATABASE_URL@", &db.sqlalchemy_url()))
            .expect("write alembic.ini");
        AlembicProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds revision `file` from tests/fixtures/alembic_extra (each one
    /// there is a 0005 on top of 0004, so add at most one).
    pub fn add_revision(&self, file: &str) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/alembic_extra")
            .join(file);
        fs::copy(&from, self.path().join("migrations/versions").join(file))
            .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }

    /// Adds tests/fixtures/alembic_extra/models.py beside alembic.ini: the
    /// metadata autogenerate compares the database with.
    pub fn add_models(&self) {
        let from =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alembic_extra/models.py");
        fs::copy(&from, self.path().join("models.py"))
            .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target)?;
            }
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
