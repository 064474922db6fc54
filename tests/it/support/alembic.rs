//! The alembic side of the harness: a Python venv under target/ with pinned
//! alembic, SQLAlchemy and psycopg2-binary (created once and reused across
//! runs), and a sample alembic project that tests copy and point at their
//! own database.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    super::venv::ensure("alembic-venv", PINS, "alembic")
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
