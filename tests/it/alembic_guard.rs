//! The alembic guard end to end: the sample project migrated by the real
//! alembic on the real cluster, answers typed on a real pseudo-terminal,
//! and the database itself checked afterwards.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use expectrl::Expect;

use crate::support::guarded::{self, audit_lines, backups, exit_code, id_of};
use crate::support::sandbox::capture;
use crate::support::{AlembicProject, Output, Sandbox, TestDb, cluster};

pub(crate) const REFUSED: i32 = 77;

pub(crate) struct Setup {
    pub db: TestDb,
    pub project: AlembicProject,
    pub sandbox: Sandbox,
    pub store: PathBuf,
}

/// A database migrated to `revision` by the real alembic, and a sandbox
/// whose only route to it is the project's alembic.ini.
pub(crate) fn setup(hint: &str, revision: &str) -> Setup {
    let db = cluster().create_db(hint);
    let project = AlembicProject::new(&db);
    let mut sandbox = Sandbox::new();
    let store = guarded::use_store(&mut sandbox);
    let out = capture(
        sandbox
            .real("alembic")
            .current_dir(project.path())
            .args(["upgrade", revision]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    Setup {
        db,
        project,
        sandbox,
        store,
    }
}

impl Setup {
    pub fn shim(&self, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.shim("alembic");
        cmd.current_dir(self.project.path()).args(args);
        cmd
    }

    pub fn on_terminal(&self, args: &[&str]) -> expectrl::session::OsSession {
        guarded::on_terminal(
            &self.sandbox,
            &self.sandbox.shims.join("alembic"),
            args,
            None,
            Some(self.project.path()),
        )
    }

    pub fn without_terminal(&self, args: &[&str]) -> Output {
        guarded::without_terminal(&mut self.shim(args), None)
    }
}

/// Everything a downgrade can change: the revision, the tables and their
/// columns, and every row, as one comparable text.
pub(crate) fn snapshot(db: &TestDb) -> String {
    let columns = db.sql(
        "select string_agg(table_name || '.' || column_name || ':' || data_type, ',' order by table_name, ordinal_position)
         from information_schema.columns where table_schema = 'public'",
    );
    let version = db.sql("select string_agg(version_num, ',') from alembic_version");
    let users = db.sql("select string_agg(format('%s', u), ';' order by id) from users u");
    let orders = if db.sql("select to_regclass('orders') is not null") == "t" {
        db.sql("select string_agg(format('%s', o), ';' order by id) from orders o")
    } else {
        "no orders table".to_owned()
    };
    format!("version {version}\ncolumns {columns}\nusers {users}\norders {orders}")
}

pub(crate) fn version(db: &TestDb) -> String {
    db.sql("select version_num from alembic_version")
}

#[test]
fn downgrade_with_the_word_reverts_and_the_backup_restores_exactly() {
    let s = setup("alembic_right_word", "0003");
    let before = snapshot(&s.db);
    assert!(before.contains("orders (1,1,12.50)"), "{before}");

    let mut p = s.on_terminal(&["downgrade", "-1"]);
    let shown = p
        .expect("to continue (anything else cancels)")
        .expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains(&format!("downgrade database \"{}\"", s.db.name)),
        "{summary}"
    );
    // `-1` is shown as the revision it resolves to.
    assert!(summary.contains("from 0003 to 0002 (-1):"), "{summary}");
    assert!(
        summary.contains("reverts 0003 -> 0002 (create orders)"),
        "{summary}"
    );
    assert!(summary.contains("drop_table orders"), "{summary}");
    // The blast radius: the rows the dropped table holds, counted.
    let rows = s.db.sql("select count(*) from orders");
    assert!(
        summary.contains(&format!("public.orders: {rows} rows")),
        "{summary}"
    );
    assert!(summary.contains("Type \"DOWNGRADE\""), "{summary}");
    // Nothing has run while the question is open.
    assert_eq!(snapshot(&s.db), before);
    p.send_line("DOWNGRADE").expect("type");
    p.expect("Running downgrade 0003 -> 0002")
        .expect("alembic ran");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(version(&s.db), "0002");
    assert_eq!(s.db.sql("select to_regclass('orders') is null"), "t");

    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    let id = id_of(&files[0]);
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(s.store.join(format!("{id}.json"))).expect("metadata"))
            .expect("json");
    assert_eq!(meta["alembic_revision"], "0003");
    assert_eq!(
        meta["reason"].as_str().map(|r| r.contains("downgrade -1")),
        Some(true)
    );

    guarded::restore_unasked(&s.sandbox, &id);
    assert_eq!(snapshot(&s.db), before);

    // The restore writes its own line; the guard's is the one before.
    let audit = audit_lines(&s.store);
    let last = audit
        .iter()
        .rfind(|l| l["tool"] != "restore")
        .expect("an audit line");
    assert_eq!(last["tool"], "alembic");
    assert_eq!(last["decision"], "confirmed");
    assert_eq!(last["backups"][0]["id"], id.as_str());
    assert_eq!(last["target"]["database"], s.db.name.as_str());
    assert_eq!(last["findings"][0]["kind"], "drop_table");
}

#[test]
fn a_wrong_word_or_no_terminal_leaves_schema_and_data_untouched() {
    let s = setup("alembic_wrong_word", "head");
    let before = snapshot(&s.db);
    let mut p = s.on_terminal(&["downgrade", "base"]);
    let shown = p.expect("Type \"DOWNGRADE\"").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    for step in [
        "0004 -> 0003",
        "0003 -> 0002",
        "0002 -> 0001",
        "0001 -> base",
    ] {
        assert!(
            summary.contains(&format!("reverts {step}")),
            "{step}: {summary}"
        );
    }
    assert!(summary.contains("drop_column users.email"), "{summary}");
    p.send_line("downgrade").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    assert_eq!(snapshot(&s.db), before);

    let out = s.without_terminal(&["downgrade", "-1"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    let last = stderr
        .lines()
        .skip_while(|l| !l.starts_with("dbguard: refused"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        last.contains("no terminal") && last.contains("DBGUARD_YES=1"),
        "{last}"
    );
    assert_eq!(snapshot(&s.db), before);
    assert!(backups(&s.store).is_empty());
    let audit = audit_lines(&s.store);
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|l| l["decision"] == "refused"));
}

#[test]
fn offline_downgrade_passes_through_untouched() {
    let s = setup("alembic_offline", "head");
    let before = snapshot(&s.db);
    let args = ["downgrade", "--sql", "0004:0002"];
    let shim = s.without_terminal(&args);
    let real = capture(
        s.sandbox
            .real("alembic")
            .current_dir(s.project.path())
            .args(args),
        None,
    );
    assert_eq!(shim, real);
    assert_eq!(shim.status, 0, "{}", shim.stderr_str());
    assert!(shim.stdout_str().contains("DROP TABLE orders"));
    assert_eq!(snapshot(&s.db), before);
    assert!(!s.store.exists(), "no audit log, no backup");
}

#[test]
fn a_password_in_the_url_never_lands_on_disk() {
    let mut s = setup("alembic_password", "0003");
    let url = format!(
        "postgresql+psycopg2://postgres:s3cret-pw@127.0.0.1:{}/{}",
        s.db.cluster.port, s.db.name
    );
    s.sandbox.set("DATABASE_URL", &url).set("DBGUARD_YES", "1");
    let out = s.without_terminal(&["-x", &format!("url={url}"), "downgrade", "-1"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&s.db), "0002");
    assert!(
        !out.stderr_str().contains("s3cret-pw"),
        "{}",
        out.stderr_str()
    );
    let mut checked = 0;
    for entry in fs::read_dir(&s.store).expect("store").flatten() {
        let bytes = fs::read(entry.path()).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cret-pw"),
            "password in {}",
            entry.path().display()
        );
        checked += 1;
    }
    assert!(checked >= 3, "backup, metadata and audit log");
}

#[test]
fn no_database_url_is_a_clear_refusal() {
    let s = setup("alembic_no_url", "head");
    let ini = s.project.path().join("alembic.ini");
    let text = fs::read_to_string(&ini).expect("ini");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("sqlalchemy.url"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&ini, without).expect("write ini");
    let out = s.without_terminal(&["downgrade", "-1"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    // The reason on one line, the bypass on the next.
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(
        stderr.contains("has no sqlalchemy.url in [alembic]"),
        "{stderr}"
    );
    assert!(stderr.contains("set DBGUARD_DATABASE_URL="), "{stderr}");
    assert_eq!(version(&s.db), "0004");
}

#[test]
fn yes_backs_up_without_asking_and_bypass_skips_the_guard() {
    let mut s = setup("alembic_yes", "head");
    s.sandbox.set("DBGUARD_YES", "1");
    let out = s.without_terminal(&["downgrade", "-1"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("reverts 0004 -> 0003"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(version(&s.db), "0003");
    assert_eq!(backups(&s.store).len(), 1);
    let audit = audit_lines(&s.store);
    assert_eq!(audit.last().expect("line")["yes"], true);

    let mut b = setup("alembic_bypass", "head");
    b.sandbox.set("DBGUARD_BYPASS", "1");
    let out = b.without_terminal(&["downgrade", "-1"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&b.db), "0003");
    assert!(backups(&b.store).is_empty());
    let audit = audit_lines(&b.store);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["decision"], "bypass");
}

#[test]
fn an_upgrade_that_drops_a_column_is_caught_and_names_it() {
    let s = setup("alembic_upgrade_drop", "0003");
    let before = snapshot(&s.db);
    let out = s.without_terminal(&["upgrade", "head"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("applies 0003 -> 0004 (drop users.nickname)"),
        "{stderr}"
    );
    assert!(stderr.contains("drop_column users.nickname"), "{stderr}");
    // The blast radius: the values the dropped column holds, counted.
    let values = s.db.sql("select count(nickname) from users");
    assert!(
        stderr.contains(&format!("users.nickname (values): {values} rows")),
        "{stderr}"
    );
    assert_eq!(snapshot(&s.db), before);

    let mut p = s.on_terminal(&["upgrade", "head"]);
    p.expect("Type \"DROP\"")
        .expect("the verb found is the word");
    p.send_line("DROP").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(version(&s.db), "0004");
    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");

    // At head, nothing is pending: no question, no backup.
    let out = s.without_terminal(&["upgrade", "head"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        !out.stderr_str().contains("dbguard"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(backups(&s.store).len(), 1);

    // The backup holds the column the upgrade dropped.
    let id = id_of(&files[0]);
    guarded::restore_unasked(&s.sandbox, &id);
    assert_eq!(snapshot(&s.db), before);
}

#[test]
fn an_additive_upgrade_runs_at_once_without_a_backup() {
    let s = setup("alembic_upgrade_add", "0002");
    // No terminal: a question would be a refusal, so success means none was asked.
    let out = s.without_terminal(&["upgrade", "0003"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        !out.stderr_str().contains("dbguard"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(version(&s.db), "0003");
    assert_eq!(s.db.sql("select count(*) from orders"), "3");
    assert!(!s.store.exists(), "no backup, no audit line");

    // Analysis switched off in the config: even the drop runs unasked.
    fs::write(
        s.project.path().join(".dbguard.toml"),
        "[alembic]\nupgrade_analysis = false\n",
    )
    .expect("config");
    let out = s.without_terminal(&["upgrade", "head"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&s.db), "0004");
}

#[test]
fn protect_asks_for_the_database_name_and_off_runs_unasked() {
    let s = setup("alembic_protect", "head");
    let config = s.project.path().join(".dbguard.toml");
    fs::write(
        &config,
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"protect\"\n",
            s.db.name
        ),
    )
    .expect("config");
    let mut p = s.on_terminal(&["downgrade", "-1"]);
    p.expect(format!("Type \"{}\"", s.db.name).as_str())
        .expect("the name is the word");
    p.send_line("DOWNGRADE").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    assert_eq!(version(&s.db), "0004");

    fs::write(
        &config,
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"off\"\n",
            s.db.name
        ),
    )
    .expect("config");
    let out = s.without_terminal(&["downgrade", "-1"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&s.db), "0003");
    assert!(backups(&s.store).is_empty());
    let audit = audit_lines(&s.store);
    assert_eq!(audit.last().expect("line")["decision"], "policy_off");
}

#[test]
fn stamp_asks_backs_up_and_the_backup_brings_the_version_back() {
    let s = setup("alembic_stamp", "head");
    let before = snapshot(&s.db);
    let mut p = s.on_terminal(&["stamp", "--purge", "0002"]);
    let shown = p.expect("Type \"STAMP\"").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("rewrites the version table of database")
            && summary.contains("from 0004 to 0002 without running any migration"),
        "{summary}"
    );
    assert!(summary.contains("--purge: every row"), "{summary}");
    p.send_line("stamp").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    assert_eq!(snapshot(&s.db), before);

    let out = s.without_terminal(&["stamp", "0002"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert_eq!(version(&s.db), "0004");

    let mut p = s.on_terminal(&["stamp", "--purge", "0002"]);
    p.expect("Type \"STAMP\"").expect("prompt");
    p.send_line("STAMP").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(version(&s.db), "0002");
    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    guarded::restore_unasked(&s.sandbox, &id_of(&files[0]));
    assert_eq!(snapshot(&s.db), before);

    // DBGUARD_YES backs up without asking; DBGUARD_BYPASS only records.
    let mut y = setup("alembic_stamp_yes", "head");
    y.sandbox.set("DBGUARD_YES", "1");
    let out = y.without_terminal(&["stamp", "0003"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&y.db), "0003");
    assert_eq!(backups(&y.store).len(), 1);
    y.sandbox.set("DBGUARD_BYPASS", "1");
    let out = y.without_terminal(&["stamp", "0001"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(version(&y.db), "0001");
    assert_eq!(backups(&y.store).len(), 1);
    let audit = audit_lines(&y.store);
    assert_eq!(audit.last().expect("line")["decision"], "bypass");

    // Offline, stamp only prints SQL: straight through.
    let args = ["stamp", "--sql", "0003:0002"];
    let shim = s.without_terminal(&args);
    let real = capture(
        s.sandbox
            .real("alembic")
            .current_dir(s.project.path())
            .args(args),
        None,
    );
    assert_eq!(shim, real);
}

#[test]
fn an_upgrade_alembic_cannot_render_is_scanned_statically_and_still_guarded() {
    let s = setup("alembic_static", "head");
    s.project.add_revision("0005_backfill_reads_data.py");
    let before = snapshot(&s.db);
    let out = s.without_terminal(&["upgrade", "head"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("revision 0005 cannot be rendered offline: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("scanned its upgrade() in the revision file instead"),
        "{stderr}"
    );
    assert!(
        stderr.contains("applies 0004 -> 0005 (fold users.email into name)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "migrations/versions/0005_backfill_reads_data.py:24: drop_column users.email"
        ),
        "{stderr}"
    );
    assert_eq!(snapshot(&s.db), before);

    // The render failed, so the database's name is the word.
    let mut p = s.on_terminal(&["upgrade", "head"]);
    p.expect(format!("Type \"{}\"", s.db.name).as_str())
        .expect("prompt");
    p.send_line(&s.db.name).expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(version(&s.db), "0005");
    assert_eq!(backups(&s.store).len(), 1);
}

#[test]
fn autogenerate_warns_about_the_destructive_operations_it_wrote() {
    let s = setup("alembic_autogenerate", "head");
    s.project.add_models();
    let versions = s.project.path().join("migrations/versions");
    let count = || fs::read_dir(&versions).expect("versions").count();
    let files_before = count();
    let out = s.without_terminal(&["revision", "--autogenerate", "-m", "tidy"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        out.stdout_str().contains("Generating "),
        "alembic's own output passes through: {}",
        out.stdout_str()
    );
    let review = stderr
        .lines()
        .skip_while(|l| !l.starts_with("dbguard: review migrations/versions/"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(review.contains("_tidy.py before applying it"), "{stderr}");
    assert!(review.contains(": drop_table orders"), "{review}");
    assert_eq!(count(), files_before + 1);
    assert_eq!(version(&s.db), "0004", "nothing applied");

    // alembic's own failure keeps its status, and there is nothing to review.
    let again = ["revision", "--autogenerate", "-m", "again"];
    let out = s.without_terminal(&again);
    let real = capture(
        s.sandbox
            .real("alembic")
            .current_dir(s.project.path())
            .args(again),
        None,
    );
    assert_ne!(real.status, 0);
    assert_eq!(out.status, real.status, "{}", out.stderr_str());
    assert!(
        out.stderr_str()
            .contains("Target database is not up to date"),
        "{}",
        out.stderr_str()
    );
    assert!(!out.stderr_str().contains("dbguard: review"));
}

#[test]
fn bypass_is_recorded_once_for_any_alembic_command_and_changes_nothing_it_prints() {
    let mut s = setup("alembic_bypass_any", "head");
    let real = capture(
        s.sandbox
            .real("alembic")
            .current_dir(s.project.path())
            .args(["current"]),
        None,
    );
    s.sandbox.set("DBGUARD_BYPASS", "1");
    let shim = s.without_terminal(&["current"]);
    assert_eq!(shim, real);
    let audit = audit_lines(&s.store);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["decision"], "bypass");
    assert_eq!(audit[0]["tool"], "alembic");
    assert_eq!(audit[0]["argv"][1], "current");
}

/// The revision whose `-- Running upgrade`/`-- Running downgrade` marker
/// precedes each line of alembic's rendered SQL (1-based), as the guard
/// attributes them.
fn owners_by_line(direction: &str, sql: &str) -> Vec<String> {
    let mark = format!("Running {direction} ");
    let mut owner = String::new();
    sql.lines()
        .map(|l| {
            if let Some(at) = l.find(&mark).filter(|_| l.trim_start().starts_with("--"))
                && let Some((from, to)) = l[at + mark.len()..].split_once("-> ")
            {
                owner = if direction == "downgrade" { from } else { to }
                    .trim()
                    .to_owned();
            }
            owner.clone()
        })
        .collect()
}

#[test]
fn the_guard_finds_every_labelled_operation_of_the_fixture_histories() {
    use crate::alembic_tools::{HISTORIES, Label, history, labels, scored};
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for name in HISTORIES {
        let db = cluster().create_db(&format!("guard_{name}"));
        let project = history(name, &db.sqlalchemy_url());
        let mut sandbox = Sandbox::new();
        let store = guarded::use_store(&mut sandbox);
        sandbox.set("DBGUARD_YES", "1");
        // Something to lose: an upgrade of an empty database passes unasked.
        db.sql("create table kept (id int); insert into kept values (1)");
        for direction in ["upgrade", "downgrade"] {
            let (run, range) = if direction == "upgrade" {
                ("head".to_owned(), "head".to_owned())
            } else {
                ("base".to_owned(), format!("{}:base", version(&db)))
            };
            // The whole run's SQL as the guard renders it, to tell which
            // revision a line of it belongs to.
            let rendered = capture(
                sandbox.real("alembic").current_dir(project.path()).args([
                    direction,
                    range.as_str(),
                    "--sql",
                ]),
                None,
            );
            let owners = owners_by_line(direction, &rendered.stdout_str());
            let before = audit_lines(&store).len();
            let out = guarded::without_terminal(
                sandbox
                    .shim("alembic")
                    .current_dir(project.path())
                    .args([direction, run.as_str()]),
                None,
            );
            assert_eq!(out.status, 0, "{name} {direction}: {}", out.stderr_str());
            let audit = audit_lines(&store);
            let record = audit[before..]
                .iter()
                .rfind(|l| l["tool"] == "alembic")
                .unwrap_or_else(|| panic!("{name} {direction}: no audit line"));
            assert_eq!(record["decision"], "confirmed", "{name} {direction}");
            assert_eq!(record["findings_omitted"], 0, "{name} {direction}");
            // The revisions the summary says were read from their files.
            let stderr = out.stderr_str();
            let statically: Vec<String> = stderr
                .lines()
                .filter_map(|l| l.trim().strip_prefix("revision "))
                .filter_map(|l| l.split_once(" cannot be rendered offline"))
                .map(|(rev, _)| rev.to_owned())
                .collect();
            let whole_run = format!("{direction}.sql");
            let alone = format!(".{direction}.sql");
            let found: Vec<(bool, Label)> = record["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .map(|f| {
                    let path = f["path"].as_str().unwrap_or_default();
                    let line = f["line"].as_u64().unwrap_or(0);
                    let revision = if path == whole_run {
                        owners
                            .get(line.saturating_sub(1) as usize)
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        path.strip_suffix(&alone).unwrap_or_default().to_owned()
                    };
                    (
                        path.ends_with(".py"),
                        Label {
                            revision,
                            file: path.rsplit('/').next().unwrap_or(path).into(),
                            line,
                            kind: f["kind"].as_str().unwrap_or_default().into(),
                        },
                    )
                })
                .collect();
            let method = if statically.is_empty() {
                "rendered"
            } else {
                "per revision"
            };
            let s = scored(method.into(), &labels(name, direction), &found, |rev| {
                statically.iter().any(|r| r == rev)
            });
            let line = format!(
                "guard {name} {direction} {}: recall {:.2} ({}/{}), precision {:.2} ({}/{}); missed {:?}, extra {:?}",
                s.method,
                s.recall(),
                s.hits,
                s.labelled,
                s.precision(),
                s.hits,
                s.found,
                s.missed,
                s.extra
            );
            if s.recall() < 1.0 || s.precision() < 0.95 {
                failures.push(line.clone());
            }
            figures.push(line);
        }
        assert_eq!(
            db.sql("select count(*) from kept"),
            "1",
            "{name}: the table outside the history is untouched"
        );
    }
    eprintln!("{}", figures.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_upgrade_of_an_empty_database_runs_unasked_without_a_backup() {
    let db = cluster().create_db("alembic_empty");
    let project = AlembicProject::new(&db);
    let mut sandbox = Sandbox::new();
    let store = guarded::use_store(&mut sandbox);
    let upgrade = || {
        guarded::without_terminal(
            sandbox
                .shim("alembic")
                .current_dir(project.path())
                .args(["upgrade", "head"]),
            None,
        )
    };

    // A table of its own is something to lose: the history's drops are
    // asked about, and without a terminal that is a refusal.
    db.sql("create table kept (id int); insert into kept values (1)");
    let out = upgrade();
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert_eq!(db.sql("select to_regclass('alembic_version') is null"), "t");

    // Nothing in it: a first deploy needs no question and no backup.
    db.sql("drop table kept");
    let out = upgrade();
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        !out.stderr_str().contains("dbguard"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(db.sql("select to_regclass('users') is not null"), "t");
    assert!(backups(&store).is_empty());
    let audit = audit_lines(&store);
    let last = audit.last().expect("an audit line");
    assert_eq!(last["tool"], "alembic");
    assert_eq!(last["decision"], "pass");
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("holds no user tables and no rows")),
        "{last}"
    );
}
