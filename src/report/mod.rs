//! One report module: every report dbguard writes — a scan (`dbguard
//! scan`), a migration check (`dbguard check-migration`), a guard's summary
//! of what it is about to protect — is a [`Report`], and the three
//! reporters write any of them: [`text`] for people, [`json`] for tools,
//! [`github`] for CI annotations. Each is a plain function over
//! `&mut impl Write`, so the output is the same in a terminal, a pipe or a
//! test, and each is snapshot-tested in-process beside its code.

pub mod github;
pub mod json;
pub mod text;

use std::io::{self, Write};

use crate::alembic::check::MigrationCheck;
use crate::sql::{Finding, ScanReport};

pub use crate::sql::Format;
pub use github::github;
pub use json::json;
pub use text::text;

/// Anything dbguard reports.
#[derive(Clone, Copy)]
pub enum Report<'a> {
    /// Destructive statements and problems found in SQL.
    Scan(&'a ScanReport),
    /// The destructive operations of each alembic revision a range applies.
    Migration(&'a MigrationCheck),
    /// What a guard is about to protect, before it asks.
    Guard(GuardSummary<'a>),
}

/// A guard's summary: the first `shown` findings of `report`, each placed
/// by `locate` (`file:line` for psql, `line N` for alembic's render).
#[derive(Clone, Copy)]
pub struct GuardSummary<'a> {
    pub report: &'a ScanReport,
    pub shown: usize,
    pub locate: &'a dyn Fn(&Finding) -> String,
}

/// Writes `report` in `format`. `color` applies to text only.
pub fn write(
    format: Format,
    report: &Report<'_>,
    out: &mut impl Write,
    color: bool,
) -> io::Result<()> {
    match format {
        Format::Text => text(report, out, color),
        Format::Json => json(report, out),
        Format::Github => github(report, out),
    }
}

/// A finding's kind and objects as every text report starts it:
/// `drop_table public.users (CASCADE)`.
fn kind_and_objects(f: &Finding, kind: &str) -> String {
    let mut head = kind.to_owned();
    if !f.objects.is_empty() {
        head.push(' ');
        head.push_str(&f.objects.join(", "));
    }
    if f.cascade {
        head.push_str(" (CASCADE)");
    }
    head
}

#[cfg(test)]
pub(crate) mod samples {
    //! Reports the reporters' snapshot tests share.

    use crate::alembic::check::MigrationCheck;
    use crate::alembic::render::Direction;
    use crate::sql::ScanReport;

    pub fn scan() -> ScanReport {
        let mut report = crate::sql::scan_str(
            "CREATE TABLE t (id int);\n\
             DROP TABLE public.users CASCADE;\n\
             DELETE FROM audit;\n\
             DO $$ BEGIN EXECUTE 'DROP TABLE ' || name; END $$;\n",
        );
        // A path that needs escaping in every format.
        for f in &mut report.findings {
            f.path = "deploy/50%,done:migrate.sql".into();
        }
        report.problems.push(crate::sql::Problem {
            severity: crate::sql::Severity::Warning,
            path: "deploy/50%,done:migrate.sql".into(),
            line: Some(4),
            message: "a variable is not set:\nassumed destructive".into(),
        });
        report
    }

    pub const RENDER_SQL: &str = "BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

CREATE TABLE users (id SERIAL NOT NULL, nickname TEXT);

INSERT INTO alembic_version (version_num) VALUES ('0001') RETURNING alembic_version.version_num;

-- Running upgrade 0001 -> 0002

ALTER TABLE users ADD COLUMN email TEXT;

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

-- Running upgrade 0002 -> 0004

ALTER TABLE users DROP COLUMN nickname;

DROP TABLE legacy CASCADE;

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0002';

COMMIT;
";

    pub const RENDER_LOG: &str =
        "INFO  [alembic.runtime.migration] Running upgrade  -> 0001, create users
INFO  [alembic.runtime.migration] Running upgrade 0001 -> 0002, add users.email
INFO  [alembic.runtime.migration] Running upgrade 0002 -> 0004, drop users.nickname
";

    pub fn migration() -> MigrationCheck {
        MigrationCheck::from_render(
            Direction::Upgrade,
            "base:head",
            RENDER_SQL,
            RENDER_LOG,
            |rev| (rev != "0002").then(|| format!("migrations/versions/{rev}.py")),
        )
    }

    /// A check that fell back to reading the revision files.
    pub fn static_migration(dir: &std::path::Path) -> MigrationCheck {
        let path = dir.join("0005_x.py");
        std::fs::write(
            &path,
            "\"\"\"drop things\"\"\"\nrevision = '0005'\ndown_revision = '0004'\n\ndef upgrade():\n    op.drop_table('t')\n",
        )
        .expect("write");
        let script = crate::alembic::script_dir::parse_script(
            &std::fs::read_to_string(&path).expect("read"),
            &path,
        )
        .expect("a revision");
        MigrationCheck::from_static(
            Direction::Upgrade,
            "0004:head",
            &[&script],
            "the offline render failed: boom; scanned the revision files instead".into(),
            |_| "versions/0005_x.py".into(),
        )
    }

    /// What a reporter wrote, as text.
    pub fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("utf-8")
    }
}
