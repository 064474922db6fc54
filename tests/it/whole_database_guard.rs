//! The dropdb and pg_restore guards end to end: the real cluster, the real
//! dropdb, pg_dump and pg_restore, a real pseudo-terminal for the question.
//! Each test checks the server afterwards (does the database exist, which
//! rows does it hold), not only what dbguard printed.

use std::fs;
use std::path::{Path, PathBuf};

use expectrl::Expect;

use crate::support::guarded::{self, audit_lines, backups, exit_code, id_of};
use crate::support::sandbox::{capture, in_dir, write_file};
use crate::support::{Output, Sandbox, TestDb, cluster};

const REFUSED: i32 = 77;

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql(
        "create table items (id int primary key, name text);
         insert into items select g, 'item ' || g from generate_series(1, 250) g;",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

/// Every row of `items`, in order: what must come back.
fn items(db: &TestDb) -> String {
    db.sql("select string_agg(id || '=' || name, ',' order by id) from items")
}

fn exists(name: &str) -> bool {
    cluster().sql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{name}'"),
    ) == "1"
}

fn shim_without_terminal(sandbox: &Sandbox, tool: &str, args: &[&str]) -> Output {
    guarded::without_terminal(sandbox.shim(tool).args(args), None)
}

fn shim_on_terminal(sandbox: &Sandbox, tool: &str, args: &[&str]) -> expectrl::session::OsSession {
    guarded::on_terminal(sandbox, &sandbox.shims.join(tool), args, None, None)
}

/// A custom-format archive of `db` made with the real pg_dump.
fn archive_of(s: &Setup, name: &str) -> PathBuf {
    let path = in_dir(&s.sandbox, name);
    let out = capture(
        s.sandbox
            .real("pg_dump")
            .args(["-Fc", "-f"])
            .arg(&path)
            .arg(&s.db.name),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    path
}

/// stdout without the `\\restrict KEY` lines, whose key pg_restore draws at
/// random on every run.
fn without_restrict_keys(out: &Output) -> String {
    out.stdout_str()
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn metadata(store: &Path, backup: &Path) -> serde_json::Value {
    let json = fs::read(store.join(format!("{}.json", id_of(backup)))).expect("metadata");
    serde_json::from_slice(&json).expect("json")
}

#[test]
fn dropdb_asks_for_the_name_and_the_backup_brings_the_database_back_exactly() {
    let s = setup("dropdb_right_name");
    let before = items(&s.db);
    let name = s.db.name.as_str();

    let mut p = shim_on_terminal(&s.sandbox, "dropdb", &[name]);
    let shown = p
        .expect(format!("Type \"{name}\" to continue").as_str())
        .expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains(&format!("dropdb is about to drop database \"{name}\"")),
        "{summary}"
    );
    assert!(summary.contains("in 1 table, ~"), "{summary}");
    assert!(exists(name), "nothing dropped while the question is open");
    p.send_line(name).expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert!(!exists(name));

    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    let meta = metadata(&s.store, &files[0]);
    assert_eq!(meta["database"], name);
    assert_eq!(meta["scope"], "database");
    assert!(
        meta["pg_dump_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("pg_dump (PostgreSQL) ")),
        "{meta}"
    );
    let id = id_of(&files[0]);
    let verify = capture(s.sandbox.dbguard().args(["verify", &id]), None);
    assert_eq!(verify.status, 0, "{}", verify.stderr_str());
    let audit = audit_lines(&s.store);
    let last = audit.last().expect("an audit line");
    assert_eq!(last["tool"], "dropdb");
    assert_eq!(last["decision"], "confirmed");
    assert_eq!(last["backups"][0]["sha256"], meta["sha256"]);

    cluster().sql("postgres", &format!("create database \"{name}\""));
    guarded::restore_unasked(&s.sandbox, &id);
    assert_eq!(items(&s.db), before);
}

#[test]
fn dropdb_with_a_wrong_word_or_no_terminal_drops_nothing() {
    let s = setup("dropdb_declined");
    let name = s.db.name.as_str();
    let mut p = shim_on_terminal(&s.sandbox, "dropdb", &["-e", name]);
    p.expect(format!("Type \"{name}\"").as_str())
        .expect("prompt");
    p.send_line("DROP").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    assert!(exists(name));

    let out = shim_without_terminal(&s.sandbox, "dropdb", &[name]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert!(exists(name));
    let stderr = out.stderr_str();
    // The reason first, the bypass on the last line.
    let refusal = stderr
        .lines()
        .skip_while(|l| !l.starts_with("dbguard: refused"))
        .collect::<Vec<_>>()
        .join("\n");
    let last = refusal.as_str();
    assert!(
        last.starts_with(&format!("dbguard: refused dropdb \"{name}\": no terminal"))
            && last
                .lines()
                .last()
                .unwrap_or_default()
                .contains("DBGUARD_YES=1"),
        "{last}"
    );
    assert!(backups(&s.store).is_empty());
    let audit = audit_lines(&s.store);
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|l| l["decision"] == "refused"));
}

#[test]
fn dropdb_under_policy_off_dbguard_yes_and_bypass_asks_nobody() {
    let mut off = setup("dropdb_policy_off");
    // No pg_dump is needed when nothing is backed up.
    off.sandbox
        .set("DBGUARD_REAL_PG_DUMP", "/nonexistent/pg_dump");
    write_file(
        &in_dir(&off.sandbox, ".dbguard.toml"),
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"off\"\n",
            off.db.name
        ),
    );
    let out = shim_without_terminal(&off.sandbox, "dropdb", &[&off.db.name]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!exists(&off.db.name));
    assert!(backups(&off.store).is_empty());
    assert_eq!(audit_lines(&off.store)[0]["decision"], "policy_off");
    // Under confirm the same missing pg_dump is a refusal.
    let other = cluster().create_db("dropdb_no_pg_dump");
    let out = shim_without_terminal(&off.sandbox, "dropdb", &[&other.name]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("no backup is possible"),
        "{}",
        out.stderr_str()
    );
    assert!(exists(&other.name));

    let mut yes = setup("dropdb_yes");
    yes.sandbox.set("DBGUARD_YES", "1");
    let out = shim_without_terminal(&yes.sandbox, "dropdb", &[&yes.db.name]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!exists(&yes.db.name));
    let files = backups(&yes.store);
    assert_eq!(files.len(), 1);
    assert_eq!(
        metadata(&yes.store, &files[0])["database"],
        yes.db.name.as_str()
    );
    let audit = audit_lines(&yes.store);
    assert_eq!(audit[0]["decision"], "confirmed");
    assert_eq!(audit[0]["yes"], true);

    let mut bypass = setup("dropdb_bypass");
    bypass.sandbox.set("DBGUARD_BYPASS", "1");
    let out = shim_without_terminal(&bypass.sandbox, "pg_restore", &["--version"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    let out = shim_without_terminal(&bypass.sandbox, "dropdb", &[&bypass.db.name]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!exists(&bypass.db.name));
    assert!(backups(&bypass.store).is_empty());
    let audit = audit_lines(&bypass.store);
    assert_eq!(audit.len(), 2, "each bypassed run is recorded");
    assert_eq!(audit[1]["tool"], "dropdb");
    assert_eq!(audit[1]["decision"], "bypass");
}

#[test]
fn dropdb_if_exists_of_a_missing_database_passes_with_one_line() {
    let s = setup("dropdb_missing");
    let out = shim_without_terminal(&s.sandbox, "dropdb", &["--if-exists", "no_such_db_here"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains(
            "database \"no_such_db_here\" does not exist, so there is nothing to back up"
        ),
        "{}",
        out.stderr_str()
    );
    assert!(backups(&s.store).is_empty());
    // Help and a rejected command line are dropdb's own business.
    let help = shim_without_terminal(&s.sandbox, "dropdb", &["--help"]);
    let real = capture(s.sandbox.real("dropdb").arg("--help"), None);
    assert_eq!(help, real);
    let too_many = shim_without_terminal(&s.sandbox, "dropdb", &["a", "b"]);
    assert_eq!(too_many.status, 1, "{}", too_many.stderr_str());
    assert!(exists(&s.db.name));
}

#[test]
fn pg_restore_clean_asks_and_backs_up_the_state_it_replaces() {
    let s = setup("restore_clean");
    let archive = archive_of(&s, "items.dump");
    s.db.sql("insert into items values (1000, 'added after the archive'); delete from items where id < 10;");
    let replaced = items(&s.db);
    let archived = {
        let other = cluster().create_db("restore_expected");
        let out = capture(
            s.sandbox
                .real("pg_restore")
                .args(["-d", &other.name])
                .arg(&archive),
            None,
        );
        assert_eq!(out.status, 0, "{}", out.stderr_str());
        items(&other)
    };
    assert_ne!(replaced, archived);

    let archive_arg = archive.to_str().expect("utf-8 path");
    let args = [
        "--clean",
        "--if-exists",
        "-1",
        "-d",
        &s.db.name,
        archive_arg,
    ];
    let mut p = shim_on_terminal(&s.sandbox, "pg_restore", &args);
    let shown = p.expect("Type \"RESTORE\" to continue").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("pg_restore is about to drop and recreate"),
        "{summary}"
    );
    assert_eq!(items(&s.db), replaced, "nothing restored while asking");
    p.send_line("RESTORE").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(items(&s.db), archived);

    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    guarded::restore_unasked(&s.sandbox, &id_of(&files[0]));
    assert_eq!(
        items(&s.db),
        replaced,
        "the backup holds the replaced state"
    );
    assert_eq!(audit_lines(&s.store)[0]["tool"], "pg_restore");
}

#[test]
fn pg_restore_without_clean_or_with_list_runs_unasked_and_unchanged() {
    let s = setup("restore_harmless");
    let archive = archive_of(&s, "items.dump");
    let archive = archive.to_str().expect("utf-8 path");
    for args in [
        &["-l", archive][..],
        &["-l", "--clean", "-d", &s.db.name, archive],
        &["--clean", "-f", "-", archive],
        &["--version"],
    ] {
        let shim = shim_without_terminal(&s.sandbox, "pg_restore", args);
        let real = guarded::without_terminal(s.sandbox.real("pg_restore").args(args), None);
        assert_eq!(
            (without_restrict_keys(&shim), shim.status, shim.stderr_str()),
            (without_restrict_keys(&real), real.status, real.stderr_str()),
            "{args:?}"
        );
        assert_eq!(shim.status, 0, "{args:?}: {}", shim.stderr_str());
    }
    let fresh = cluster().create_db("restore_additive");
    let out = shim_without_terminal(&s.sandbox, "pg_restore", &["-d", &fresh.name, archive]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(items(&fresh), items(&s.db));
    assert!(backups(&s.store).is_empty());
    assert!(audit_lines(&s.store).is_empty());
}

/// dbguard's own pg_restore (a custom backup's completeness check, a
/// restore) must be the real one: through the shim, `dbguard restore`'s
/// `pg_restore --clean -d` would be guarded and, with no terminal, refused.
#[test]
fn dbguard_never_runs_its_own_pg_restore_through_the_shim() {
    let mut s = setup("own_pg_restore");
    write_file(
        &in_dir(&s.sandbox, ".dbguard.toml"),
        "[backup]\nformat = \"custom\"\n",
    );
    s.sandbox.set("DBGUARD_YES", "1");
    let before = items(&s.db);
    let out = guarded::without_terminal(s.sandbox.dbguard().args(["backup", "--no-prune"]), None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".dump"));
    s.db.sql("delete from items");
    let out = guarded::without_terminal(
        s.sandbox
            .dbguard()
            .args(["restore", &id_of(&files[0]), "--yes", "--no-safety-backup"]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(items(&s.db), before);
    assert!(
        audit_lines(&s.store).iter().all(|l| l["tool"] == "restore"),
        "no shim ran"
    );
}

/// With `--create`, `-d` is only where pg_restore connects first: the
/// database dropped and recreated is the archive's own, and that is the one
/// backed up. From stdin the archive cannot be read twice: refused.
#[test]
fn pg_restore_clean_create_backs_up_the_archives_own_database() {
    let mut s = setup("restore_create");
    let archive = archive_of(&s, "items.dump");
    s.db.sql("insert into items values (1000, 'after the archive')");
    s.sandbox.set("DBGUARD_YES", "1");
    let archive_arg = archive.to_str().expect("utf-8 path");
    let out = shim_without_terminal(
        &s.sandbox,
        "pg_restore",
        &["-C", "-c", "-d", "postgres", archive_arg],
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from items"), "250");
    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    assert_eq!(
        metadata(&s.store, &files[0])["database"],
        s.db.name.as_str()
    );

    let from_stdin = guarded::without_terminal(
        s.sandbox
            .shim("pg_restore")
            .args(["-C", "-c", "-d", "postgres"]),
        Some(&fs::read(&archive).expect("archive")),
    );
    assert_eq!(from_stdin.status, REFUSED, "{}", from_stdin.stderr_str());
    assert!(
        from_stdin
            .stderr_str()
            .contains("give the archive as a file"),
        "{}",
        from_stdin.stderr_str()
    );
    assert_eq!(backups(&s.store).len(), 1);
}
