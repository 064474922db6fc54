//! `dbguard restore` beyond the round trip: the swap keeps the replaced
//! database and refuses while others are connected; a failed restore
//! changes nothing and leaves no half-restored database; where a swap is
//! impossible it says so and `--in-place` still works; the target's
//! precedence between flags, `PG*` and the backup's origin; content
//! checksums checked before the swap; restores (refused ones included) in
//! the audit log; and `dbguard migrate --verify-cmd`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use expectrl::Expect;

use crate::support::guarded::{self, audit_lines, backups, exit_code, id_of};
use crate::support::sandbox::capture;
use crate::support::{AlembicProject, Output, Sandbox, TestDb, cluster};

const REFUSED: i32 = 77;

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql(
        "create table items (id serial primary key, name text);
         insert into items (name) select 'item ' || g from generate_series(1, 200) g;
         create view first_items as select * from items where id <= 10;",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    capture(sandbox.dbguard().args(args), None)
}

fn ok(out: Output) -> Output {
    assert_eq!(
        out.status,
        0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
    out
}

fn backup(s: &Setup) -> String {
    ok(run(&s.sandbox, &["backup", "--yes"]));
    id_of(backups(&s.store).last().expect("a backup"))
}

/// Databases whose names start with `prefix`.
fn databases_like(prefix: &str) -> Vec<String> {
    let list = cluster().sql(
        "postgres",
        &format!(
            "select string_agg(datname, ',' order by datname) from pg_database where starts_with(datname, '{prefix}')"
        ),
    );
    list.split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

fn items(db: &str) -> String {
    cluster().sql(db, "select count(*) from items")
}

#[test]
fn a_swap_keeps_the_replaced_database_and_says_how_to_drop_it() {
    let s = setup("swap_keeps");
    let id = backup(&s);
    s.db.sql("delete from items where id > 5; create table later (v int)");
    let out = ok(run(&s.sandbox, &["restore", &id, "--yes"]));
    assert_eq!(items(&s.db.name), "200");
    assert_eq!(
        s.db.sql("select to_regclass('later') is null"),
        "t",
        "what came after the backup is not in the restored database"
    );
    let replaced = databases_like(&format!("{}__dbguard_replaced_", s.db.name));
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(
        items(&replaced[0]),
        "5",
        "the replaced database is kept as it was"
    );
    assert!(
        out.stdout_str()
            .contains(&format!("kept as \"{}\"", replaced[0]))
            && out
                .stdout_str()
                .contains(&format!("dropdb {}", replaced[0])),
        "{}",
        out.stdout_str()
    );
    assert!(databases_like(&format!("{}__dbguard_restore_", s.db.name)).is_empty());

    let audit = audit_lines(&s.store);
    let last = audit.last().expect("an audit line");
    assert_eq!(last["tool"], "restore");
    assert_eq!(last["decision"], "restored");
    assert_eq!(last["backups"][0]["id"], id.as_str());
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("by swap")),
        "{last}"
    );
}

/// A psql session idling on the database; killed when dropped, so a
/// failing test does not leave it behind.
struct IdleSession(Child);

impl Drop for IdleSession {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn idle_session(db: &TestDb) -> IdleSession {
    let session = IdleSession(
        Command::new(cluster().client("psql"))
            .envs(db.env())
            .args(["-X", "-q", "-c", "select pg_sleep(600)"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let n = cluster().sql(
            "postgres",
            &format!(
                "select count(*) from pg_stat_activity where datname = '{}' and query like '%pg_sleep(600)%' and pid <> pg_backend_pid()",
                db.name
            ),
        );
        if n != "0" {
            return session;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the idle session never showed up");
}

#[test]
fn other_sessions_refuse_the_swap_unchanged_until_terminate() {
    let s = setup("swap_sessions");
    let id = backup(&s);
    s.db.sql("delete from items");
    let mut session = idle_session(&s.db);

    let out = run(&s.sandbox, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(
        err.contains("other sessions are connected") && err.contains("--terminate"),
        "{err}"
    );
    assert!(err.contains("was not touched"), "{err}");
    assert_eq!(items(&s.db.name), "0", "unchanged");
    assert!(databases_like(&format!("{}__dbguard_", s.db.name)).is_empty());

    let out = ok(run(
        &s.sandbox,
        &["restore", &id, "--yes", "--no-safety-backup", "--terminate"],
    ));
    assert!(
        out.stdout_str().contains("Ending 1 other session"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(items(&s.db.name), "200");
    let status = session.0.wait().expect("psql ends");
    assert!(!status.success(), "the idle session was ended");
    // Connections were shut out for the swap only: both databases take them again.
    let replaced = databases_like(&format!("{}__dbguard_replaced_", s.db.name));
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    for name in [&s.db.name, &replaced[0]] {
        assert_eq!(
            cluster().sql(
                "postgres",
                &format!("select datallowconn from pg_database where datname = '{name}'")
            ),
            "t",
            "{name}"
        );
    }
}

/// A restore that fails half-way (here the backup names a role that does
/// not exist on the target) leaves the target as it was and drops the
/// half-restored new database.
#[test]
fn a_failed_restore_changes_nothing_and_leaves_nothing_behind() {
    let s = setup("swap_fails");
    s.db.sql("create role dbguard_gone_owner; alter table items owner to dbguard_gone_owner");
    let id = backup(&s);
    s.db.sql("alter table items owner to postgres; drop role dbguard_gone_owner; delete from items where id > 1");
    let out = run(&s.sandbox, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("dbguard_gone_owner")
            && out.stderr_str().contains("was not touched"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(items(&s.db.name), "1", "unchanged");
    assert!(databases_like(&format!("{}__dbguard_", s.db.name)).is_empty());
}

/// Without CREATEDB there is no new database to restore into: dbguard says
/// so and offers `--in-place`, which then works for a role owning the
/// database's objects.
#[test]
fn without_createdb_the_swap_says_so_and_in_place_works() {
    let s = setup("swap_no_createdb");
    let role = format!("{}_owner", s.db.name);
    s.db.sql(&format!(
        "create role {role} login; alter database {db} owner to {role};
         alter table items owner to {role}; alter view first_items owner to {role};
         alter sequence items_id_seq owner to {role}",
        db = s.db.name
    ));
    let mut sandbox = Sandbox::psql_only().with_db(&s.db);
    sandbox.set("PGUSER", &role);
    sandbox.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"));
    ok(capture(sandbox.dbguard().args(["backup", "--yes"]), None));
    let id = id_of(backups(&s.store).last().expect("a backup"));
    s.db.sql("delete from items");

    let out = capture(
        sandbox
            .dbguard()
            .args(["restore", &id, "--yes", "--no-safety-backup"]),
        None,
    );
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str()
            .contains("permission denied to create database")
            && out.stderr_str().contains("--in-place"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(items(&s.db.name), "0", "unchanged");

    ok(capture(
        sandbox
            .dbguard()
            .args(["restore", &id, "--yes", "--no-safety-backup", "--in-place"]),
        None,
    ));
    assert_eq!(items(&s.db.name), "200");
}

/// Regression: restore ignored `PG*` and went to the backup's origin,
/// silently, under `-y` too.
#[test]
fn pg_environment_is_the_target_and_under_yes_a_different_one_must_be_explicit() {
    let s = setup("target_env");
    let id = backup(&s);
    let other = cluster().create_db("target_env_other");
    other.sql("create table marker (v int)");

    let mut elsewhere = Sandbox::psql_only().with_db(&other);
    elsewhere.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"));
    let out = capture(
        elsewhere
            .dbguard()
            .args(["restore", &id, "--yes", "--no-safety-backup"]),
        None,
    );
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(
        err.contains(&format!("database \"{}\"", other.name))
            && err.contains("from the PG* environment")
            && err.contains("-d/-h/-p/-U")
            && err.contains("--origin"),
        "{err}"
    );
    assert_eq!(
        other.sql("select to_regclass('items') is null"),
        "t",
        "untouched"
    );
    let audit = audit_lines(&s.store);
    let last = audit.last().expect("an audit line");
    assert_eq!(
        (&last["tool"], &last["decision"]),
        (&"restore".into(), &"refused".into()),
        "{last}"
    );
    assert_eq!(last["target"]["database"], other.name.as_str(), "{last}");
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not the database the backup came from")),
        "{last}"
    );

    // Named on the command line, the other database is restored into, with a warning.
    let out = ok(capture(
        elsewhere.dbguard().args([
            "restore",
            &id,
            "--yes",
            "--no-safety-backup",
            "-d",
            &other.name,
        ]),
        None,
    ));
    assert!(
        out.stderr_str().contains("into a DIFFERENT database"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(items(&other.name), "200");

    // --origin goes where the backup came from, whatever PG* says.
    s.db.sql("delete from items");
    ok(capture(
        elsewhere
            .dbguard()
            .args(["restore", &id, "--yes", "--no-safety-backup", "--origin"]),
        None,
    ));
    assert_eq!(items(&s.db.name), "200");

    let out = capture(
        elsewhere
            .dbguard()
            .args(["restore", &id, "--origin", "-d", &other.name]),
        None,
    );
    assert_eq!(out.status, 2, "{}", out.stderr_str());
}

/// Asked on a terminal, a PG* target that is not the origin is shown as
/// such, and typing its name restores into it.
#[test]
fn on_a_terminal_a_different_pg_target_is_named_before_the_question() {
    let s = setup("target_tty");
    let id = backup(&s);
    let other = cluster().create_db("target_tty_other");
    let mut elsewhere = Sandbox::psql_only().with_db(&other);
    elsewhere.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"));
    let mut p = guarded::on_terminal(
        &elsewhere,
        &crate::support::sandbox::dbguard_bin(),
        &["restore", &id, "--no-safety-backup"],
        None,
        None,
    );
    let shown = p.expect("to continue").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("into a DIFFERENT database")
            && summary.contains("from the PG* environment"),
        "{summary}"
    );
    p.send_line(&other.name).expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(items(&other.name), "200");
}

// --- dbguard migrate --verify-cmd -------------------------------------------

struct Migrating {
    db: TestDb,
    project: AlembicProject,
    sandbox: Sandbox,
    store: PathBuf,
}

fn migrating(hint: &str) -> Migrating {
    let db = cluster().create_db(hint);
    let project = AlembicProject::new(&db);
    let mut sandbox = Sandbox::new();
    let store = guarded::use_store(&mut sandbox);
    ok(capture(
        sandbox
            .real("alembic")
            .current_dir(project.path())
            .args(["upgrade", "0003"]),
        None,
    ));
    Migrating {
        db,
        project,
        sandbox,
        store,
    }
}

impl Migrating {
    fn migrate(&self, args: &[&str]) -> Command {
        let mut cmd = self.sandbox.dbguard();
        cmd.current_dir(self.project.path())
            .arg("migrate")
            .args(args);
        cmd
    }

    fn version(&self) -> String {
        self.db.sql("select version_num from alembic_version")
    }
}

#[test]
fn verify_cmd_passing_takes_the_post_migration_backup() {
    let m = migrating("verify_passes");
    let out = guarded::without_terminal(
        &mut m.migrate(&["--verify-cmd", "test -f alembic.ini && echo checks-ran"]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        out.stdout_str().contains("checks-ran"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(m.version(), "0004");
    assert_eq!(backups(&m.store).len(), 2, "before and after");
    let last = audit_lines(&m.store).pop().expect("audit");
    assert_eq!(last["decision"], "migrated");
    assert!(
        last["detail"]
            .as_str()
            .is_some_and(|d| d.contains("passed")),
        "{last}"
    );
}

#[test]
fn verify_cmd_failing_offers_the_backup_but_never_restores_unasked() {
    let m = migrating("verify_fails_no_tty");
    let out = guarded::without_terminal(&mut m.migrate(&["--verify-cmd", "exit 3"]), None);
    assert_eq!(out.status, 3, "the checks' status: {}", out.stderr_str());
    let err = out.stderr_str();
    assert!(err.contains("the checks failed (exit status 3)"), "{err}");
    assert!(
        err.contains("not restored automatically") && err.contains("dbguard restore "),
        "{err}"
    );
    assert_eq!(m.version(), "0004", "migrated, not restored");
    assert_eq!(backups(&m.store).len(), 1, "no backup after the migration");
    let last = audit_lines(&m.store).pop().expect("audit");
    assert_eq!(last["decision"], "verification_failed");
}

#[test]
fn verify_cmd_failing_on_a_terminal_restores_when_the_name_is_typed() {
    let m = migrating("verify_fails_tty");
    let before = m.db.sql("select string_agg(column_name, ',' order by column_name) from information_schema.columns where table_name = 'users'");
    let mut p = guarded::on_terminal(
        &m.sandbox,
        &crate::support::sandbox::dbguard_bin(),
        &["migrate", "--verify-cmd", "echo checking; false"],
        None,
        Some(m.project.path()),
    );
    p.expect("checking").expect("the checks ran");
    p.expect("the checks failed").expect("failure reported");
    p.expect("to continue").expect("restore offered");
    p.send_line(&m.db.name).expect("type");
    p.expect("as it was before the migration")
        .expect("restored");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 1);
    assert_eq!(m.version(), "0003", "back before the migration");
    assert_eq!(
        m.db.sql("select string_agg(column_name, ',' order by column_name) from information_schema.columns where table_name = 'users'"),
        before
    );
    let decisions: Vec<String> = audit_lines(&m.store)
        .iter()
        .map(|l| l["decision"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        decisions.ends_with(&["verification_failed".to_owned(), "restored".to_owned()]),
        "{decisions:?}"
    );
}

/// What belongs to the database itself (not in a dump without `--create`)
/// survives the swap: its settings, grants, connection limit and comment.
#[test]
fn the_database_own_settings_and_grants_survive_the_swap() {
    let s = setup("swap_settings");
    let reader = format!("{}_reader", s.db.name);
    let db = &s.db.name;
    cluster().sql(
        "postgres",
        &format!(
            "create role {reader};
             alter database {db} set search_path = \"$user\", public, app;
             alter database {db} set statement_timeout = '5min';
             alter role {reader} in database {db} set work_mem = '8MB';
             revoke connect on database {db} from public;
             grant connect on database {db} to {reader};
             alter database {db} connection limit 50;
             comment on database {db} is 'the shop''s data'"
        ),
    );
    let own = |name: &str| {
        cluster().sql(
            "postgres",
            &format!(
                "select (select string_agg(coalesce(r.rolname, '-') || ' ' || array_to_string(s.setconfig, ';'), ' | ' order by 1)
                           from pg_db_role_setting s left join pg_roles r on r.oid = s.setrole
                          where s.setdatabase = d.oid),
                        has_database_privilege('{reader}', d.oid, 'CONNECT'),
                        has_database_privilege('public', d.oid, 'CONNECT'),
                        d.datconnlimit, shobj_description(d.oid, 'pg_database'), pg_get_userbyid(d.datdba)
                   from pg_database d where datname = '{name}'"
            ),
        )
    };
    let before = own(db);
    let id = backup(&s);
    let out = ok(run(
        &s.sandbox,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert!(
        !out.stdout_str().contains("Warning"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(own(db), before);
    assert!(
        before.contains("search_path=\"$user\", public, app"),
        "{before}"
    );
}

/// The help documents the target's precedence and the methods.
#[test]
fn help_documents_the_target_and_the_methods() {
    let out = ok(run(&Sandbox::psql_only(), &["restore", "--help"]));
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("help_restore", out.stdout_str());
    });
}

/// A table-scoped restore whose rows would leave another table's foreign
/// key dangling (an order placed since, for a user the backup does not
/// hold) fails as a whole: the foreign key is checked when it is added
/// back, inside the same transaction.
#[test]
fn a_table_scoped_restore_that_would_break_a_foreign_key_changes_nothing() {
    let s = setup("tables_fk");
    s.db.sql(
        "create table users (id int primary key, email text);
         insert into users select g, 'u' || g from generate_series(1, 100) g;
         create table orders (id int primary key, user_id int references users(id));
         insert into orders select g, g from generate_series(1, 100) g;
         create view user_emails as select email from users;
         analyze;",
    );
    let mut yes = Sandbox::psql_only().with_db(&s.db);
    yes.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"));
    yes.set("DBGUARD_YES", "1");
    ok(capture(
        yes.shim("psql")
            .args(["-X", "-c", "update users set email = 'changed'"]),
        None,
    ));
    let id = id_of(backups(&s.store).last().expect("a backup"));
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.store.join(format!("{id}.json"))).expect("metadata"),
    )
    .expect("json");
    assert_eq!(meta["scope"], serde_json::json!(["public.users"]));
    s.db.sql("insert into users values (101, 'late'); insert into orders values (101, 101)");

    let out = run(&s.sandbox, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("orders") && out.stderr_str().contains("unchanged"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(
        s.db.sql("select count(*), min(email) from users"),
        "101|changed",
        "unchanged"
    );
    assert_eq!(
        s.db.sql("select count(*) from pg_constraint where conrelid = 'orders'::regclass and contype = 'f'"),
        "1",
        "the foreign key is still there"
    );

    // Without the late order the same backup restores, the view untouched.
    s.db.sql("delete from orders where id = 101");
    ok(run(
        &s.sandbox,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert_eq!(s.db.sql("select count(*), min(email) from users"), "100|u1");
    assert_eq!(s.db.sql("select count(*) from user_emails"), "100");
}

/// The restored database is created like the one it replaces: encoding,
/// locale and locale provider.
#[test]
fn the_swap_keeps_the_database_locale_and_provider() {
    let name = format!("{}_icu", cluster().create_db("swap_icu_base").name);
    cluster().sql(
        "postgres",
        &format!(
            "create database {name} template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US' lc_collate 'C' lc_ctype 'C'"
        ),
    );
    cluster().sql(
        &name,
        "create table words (w text); insert into words values ('b'), ('a'), ('B')",
    );
    let shape = || {
        cluster().sql(
            "postgres",
            &format!(
                "select pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider, daticulocale
                   from pg_database where datname = '{name}'"
            ),
        )
    };
    let before = shape();
    assert!(before.ends_with("|i|en-US"), "{before}");
    let mut sandbox = Sandbox::psql_only();
    for (k, v) in cluster().env() {
        sandbox.set(&k, if k == "PGDATABASE" { &name } else { &v });
    }
    let store = guarded::use_store(&mut sandbox);
    ok(run(&sandbox, &["backup", "--yes"]));
    let id = id_of(backups(&store).last().expect("a backup"));
    ok(run(
        &sandbox,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert_eq!(shape(), before);
    assert_eq!(
        cluster().sql(&name, "select string_agg(w, ',' order by w) from words"),
        "a,b,B",
        "ICU ordering, not C"
    );
}

/// An archive records only estimates; its swap restore counts the rows it
/// restores and checks the new database against those exact numbers.
#[test]
fn an_archive_is_checked_against_exact_row_counts() {
    for format in ["custom", "directory"] {
        let s = setup(&format!("archive_counts_{format}"));
        ok(run(&s.sandbox, &["backup", "--yes", "-F", format]));
        let id = id_of(backups(&s.store).last().expect("a backup"));
        s.db.sql("delete from items where id > 3");
        let out = ok(run(
            &s.sandbox,
            &["restore", &id, "--yes", "--no-safety-backup"],
        ));
        let report = out.stdout_str();
        assert!(
            report.contains("public.items  200 rows now (200 rows in backup)")
                && !report.contains("estimated")
                && report.contains("Content of 1 table checked against the backup's checksums"),
            "{format}: {report}"
        );
        assert_eq!(items(&s.db.name), "200");
        if format == "directory" {
            // A parallel restore streams nothing past dbguard: the
            // archive's own data gives the checksums.
            s.db.sql("update items set name = 'changed' where id = 7");
            let out = ok(run(
                &s.sandbox,
                &["restore", &id, "--yes", "--no-safety-backup", "-j", "2"],
            ));
            assert!(
                out.stdout_str().contains("Content of 1 table checked"),
                "{}",
                out.stdout_str()
            );
            assert_eq!(s.db.sql("select name from items where id = 7"), "item 7");
        }
    }
}

/// The metadata of a backup, as JSON.
fn sidecar(s: &Setup, id: &str) -> (PathBuf, serde_json::Value) {
    let path = s.store.join(format!("{id}.json"));
    let meta = serde_json::from_slice(&std::fs::read(&path).expect("metadata")).expect("json");
    (path, meta)
}

/// A plain backup records each table's content checksum; the restored
/// copy is read back and checked against it before the swap, also when
/// the database prints values in its own time zone and bytea format. A
/// recorded checksum that the restored rows do not have (here: edited in
/// the sidecar) fails the whole restore before the swap, naming the table,
/// with the original untouched and no new database left behind; a sidecar
/// without checksums (as older ones are) still restores.
#[test]
fn content_checksums_are_checked_before_the_swap() {
    let s = setup("checksums");
    s.db.sql(&format!(
        "create table odd (at timestamptz, bin bytea, f float8, iv interval, j jsonb);
         insert into odd values (now(), '\\x00ff'::bytea, 0.1, '1 day 2 hours', '{{\"a\": [1, 2]}}'),
                                (null, '', 1e-300, null, 'null');
         alter database {name} set timezone = 'Pacific/Chatham';
         alter database {name} set bytea_output = 'escape';",
        name = s.db.name
    ));
    let id = backup(&s);
    let (path, meta) = sidecar(&s, &id);
    let tables = meta["tables"].as_array().expect("tables");
    let items_entry = tables
        .iter()
        .find(|t| t["name"] == "items")
        .expect("items in the metadata");
    let recorded = items_entry["checksum"].as_str().expect("a checksum");
    assert_eq!(recorded.len(), 16, "{items_entry}");
    assert!(tables.iter().all(|t| t["checksum"].is_string()), "{meta}");

    s.db.sql("delete from items where id > 5");
    let out = ok(run(
        &s.sandbox,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert!(
        out.stdout_str()
            .contains("Content of 2 tables checked against the backup's checksums"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(items(&s.db.name), "200");

    // One wrong checksum: the restore fails whole.
    let mut edited = meta.clone();
    let wrong = if recorded == "0000000000000001" {
        "0000000000000002"
    } else {
        "0000000000000001"
    };
    for t in edited["tables"].as_array_mut().expect("tables") {
        if t["name"] == "items" {
            t["checksum"] = serde_json::Value::from(wrong);
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&edited).expect("json")).expect("write");
    s.db.sql("delete from items where id > 3");
    let before = databases_like(&s.db.name);
    let out = run(&s.sandbox, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(
        err.contains("checksums recorded at backup time (public.items)")
            && err.contains("was not touched"),
        "{err}"
    );
    assert_eq!(items(&s.db.name), "3", "the original is untouched");
    assert_eq!(
        databases_like(&s.db.name),
        before,
        "no database left behind or swapped"
    );
    let last = audit_lines(&s.store).pop().expect("an audit line");
    assert_eq!(last["decision"], "restore_failed", "{last}");

    // Without checksums (an older sidecar), row counts alone are checked.
    for t in edited["tables"].as_array_mut().expect("tables") {
        t.as_object_mut().expect("entry").remove("checksum");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&edited).expect("json")).expect("write");
    let out = ok(run(
        &s.sandbox,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert!(
        !out.stdout_str().contains("Content of"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(items(&s.db.name), "200");
}

/// A restore refused before anything changed is in the audit log with its
/// reason: no terminal to ask on (with a password on the command line,
/// which the log must not hold), and a wrong word typed on a terminal.
#[test]
fn refused_restores_are_audited() {
    let s = setup("restore_refused");
    let id = backup(&s);
    s.db.sql("delete from items where id > 5");
    let conninfo = format!("dbname={} password=sekrit_pw", s.db.name);
    let out = run(&s.sandbox, &["restore", &id, "-d", &conninfo]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let audit = audit_lines(&s.store);
    let last = audit.last().expect("an audit line");
    assert_eq!(last["tool"], "restore", "{last}");
    assert_eq!(last["decision"], "refused", "{last}");
    assert_eq!(last["target"]["database"], s.db.name.as_str(), "{last}");
    let detail = last["detail"].as_str().expect("a reason");
    assert!(
        detail.contains(&id) && detail.contains("no terminal"),
        "{detail}"
    );
    let log = std::fs::read_to_string(s.store.join("audit.jsonl")).expect("audit log");
    assert!(!log.contains("sekrit_pw"), "{log}");

    let mut p = guarded::on_terminal(
        &s.sandbox,
        &crate::support::sandbox::dbguard_bin(),
        &["restore", &id, "--no-safety-backup"],
        None,
        None,
    );
    p.expect("to continue").expect("prompt");
    p.send_line("not_the_name").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    let audit = audit_lines(&s.store);
    let last = audit.last().expect("an audit line");
    assert_eq!(last["decision"], "refused", "{last}");
    assert_eq!(last["tool"], "restore", "{last}");
    let refusals = audit
        .iter()
        .filter(|l| l["tool"] == "restore" && l["decision"] == "refused")
        .count();
    assert_eq!(refusals, 2, "{audit:?}");
    assert_eq!(items(&s.db.name), "5", "nothing was restored");
}
