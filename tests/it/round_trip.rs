//! Round trip for every destructive kind the guards know (DESIGN.md
//! invariants 3 and 6): take a signature of the database, run the
//! operation through the real shim under `DBGUARD_YES=1` (so the guard backs
//! up and lets it through), check that it really changed the database,
//! `dbguard restore` the backup the guard took, and compare the signature
//! with the one taken before.
//!
//! The signature is the server's own account: a normalised `pg_dump
//! --schema-only` and, per table and sequence, a hash of every row in a
//! fixed order. The sample schema has what restores trip over: views on
//! tables, foreign keys in both directions, serial and identity sequences,
//! an enum type, a function and a second schema.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::support::guarded::{self, backups, id_of};
use crate::support::sandbox::{capture, in_dir, write_file};
use crate::support::{AlembicProject, Output, Sandbox, TestDb, cluster};

const SAMPLE: &str = "
    create type mood as enum ('calm', 'cross');
    create table users (id serial primary key, email text not null unique, mood mood);
    create table orders (id bigserial primary key,
                         user_id int not null references users(id),
                         total numeric(10,2), note text);
    create table notes (id int generated always as identity primary key, body text);
    insert into users (email, mood)
      select 'u' || g || '@example.com', case when g % 3 = 0 then 'cross' else 'calm' end::mood
      from generate_series(1, 300) g;
    insert into orders (user_id, total, note)
      select (g % 300) + 1, g * 1.5, case when g % 7 = 0 then E'multi\\nline' end
      from generate_series(1, 2000) g;
    insert into notes (body) select 'note ' || g from generate_series(1, 50) g;
    create view big_orders as select id, user_id, total from orders where total > 100;
    create view user_emails as select id, email from users;
    create sequence ticket_seq;
    select setval('ticket_seq', 42);
    create function order_count() returns bigint language sql as 'select count(*) from orders';
    create schema app;
    create table app.settings (key text primary key, value text);
    insert into app.settings values ('theme', 'dark'), ('lang', 'en');
    create view app.user_count as select count(*) from public.users;
    analyze;
";

/// A database with the sample, and a sandbox aimed at it by `PG*`.
struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql(SAMPLE);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    sandbox.set("DBGUARD_YES", "1");
    Setup { db, sandbox, store }
}

/// Schema and contents of database `name`, as one comparable text.
fn signature(name: &str) -> String {
    let out = Command::new(cluster().client("pg_dump"))
        .envs(cluster().env())
        .args(["--schema-only", "--no-sync", "-d", name])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        // pg_dump 15.14+ brackets the script with a random \restrict key.
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    let relations = cluster().sql(
        name,
        "select string_agg(format('%s %I.%I', c.relkind, n.nspname, c.relname), E'\\n' order by n.nspname, c.relname)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p', 'S')
            and n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname not like 'pg_toast%'",
    );
    let mut contents = String::new();
    for line in relations.lines() {
        let (kind, qualified) = line.split_once(' ').expect("kind and name");
        let sql = if kind == "S" {
            format!("select last_value || ':' || is_called from {qualified}")
        } else {
            format!(
                "select count(*) || ' rows ' || md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from {qualified} t"
            )
        };
        contents.push_str(&format!("{qualified}: {}\n", cluster().sql(name, &sql)));
    }
    format!("{schema}\n-- contents\n{contents}")
}

/// Fails with the lines that differ, not two pages of signature.
fn assert_same(before: &str, after: &str) {
    if before == after {
        return;
    }
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let gone: Vec<&&str> = old.iter().filter(|l| !new.contains(l)).collect();
    let added: Vec<&&str> = new.iter().filter(|l| !old.contains(l)).collect();
    panic!(
        "the database differs from before:\nmissing now: {gone:#?}\nnew now: {added:#?}\nafter:\n{after}"
    );
}

fn exists(name: &str) -> bool {
    cluster().sql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{name}'"),
    ) == "1"
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

/// The one backup the guard took.
fn only_backup(store: &std::path::Path) -> String {
    let files = backups(store);
    assert_eq!(files.len(), 1, "one backup expected: {files:?}");
    id_of(&files[0])
}

/// `dbguard restore ID --yes` with the sandbox's environment, which names
/// the database the backup came from.
fn restore(sandbox: &Sandbox, id: &str) -> Output {
    capture(sandbox.dbguard().args(["restore", id, "--yes"]), None)
}

/// Runs psql `sql` through the shim, checks that it changed the database,
/// restores the guard's backup and compares.
fn round_trip_psql(hint: &str, sql: &str) -> serde_json::Value {
    round_trip_psql_in("plain", hint, sql)
}

/// `round_trip_psql` with the guard's backups in `format`.
/// Returns the backup's metadata.
fn round_trip_psql_in(format: &str, hint: &str, sql: &str) -> serde_json::Value {
    let s = setup(hint);
    write_file(
        &in_dir(&s.sandbox, ".dbguard.toml"),
        format!("[backup]\nformat = \"{format}\"\n"),
    );
    let before = signature(&s.db.name);
    ok(capture(
        s.sandbox
            .shim("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", sql]),
        None,
    ));
    assert_ne!(signature(&s.db.name), before, "{sql} changed nothing");
    let id = only_backup(&s.store);
    ok(restore(&s.sandbox, &id));
    assert_same(&before, &signature(&s.db.name));
    let meta = fs::read(s.store.join(format!("{id}.json"))).expect("metadata");
    serde_json::from_slice(&meta).expect("json")
}

#[test]
fn drop_table_round_trips() {
    round_trip_psql("rt_drop_table", "drop table notes");
}

#[test]
fn drop_table_cascade_round_trips() {
    round_trip_psql("rt_drop_cascade", "drop table users cascade");
}

/// Regression: the backup before `DROP SCHEMA public CASCADE` did not
/// restore ("schema \"public\" does not exist").
#[test]
fn drop_schema_public_cascade_round_trips() {
    round_trip_psql("rt_drop_public", "drop schema public cascade");
}

#[test]
fn drop_schema_public_cascade_round_trips_from_archives() {
    for format in ["custom", "directory"] {
        let meta = round_trip_psql_in(
            format,
            &format!("rt_drop_public_{format}"),
            "drop schema public cascade",
        );
        assert_eq!(meta["format"], format);
    }
}

#[test]
fn update_all_of_a_referenced_table_round_trips_from_archives() {
    for format in ["custom", "directory"] {
        let meta = round_trip_psql_in(
            format,
            &format!("rt_update_{format}"),
            "update users set email = 'x' || email",
        );
        assert_eq!(meta["format"], format);
        assert_eq!(meta["scope"], serde_json::json!(["public.users"]));
    }
}

#[test]
fn drop_schema_round_trips() {
    round_trip_psql("rt_drop_schema", "drop schema app cascade");
}

#[test]
fn drop_column_round_trips() {
    round_trip_psql("rt_drop_column", "alter table orders drop column note");
}

#[test]
fn drop_other_round_trips() {
    round_trip_psql(
        "rt_drop_other",
        "drop view big_orders; drop function order_count(); drop sequence ticket_seq",
    );
}

/// Regression: a table-scoped backup did not restore while a view
/// depended on the table.
#[test]
fn truncate_of_a_table_with_a_view_round_trips() {
    let meta = round_trip_psql("rt_truncate", "truncate orders");
    assert_eq!(
        meta["scope"],
        serde_json::json!(["public.orders"]),
        "a table-scoped backup"
    );
}

#[test]
fn truncate_cascade_round_trips() {
    round_trip_psql("rt_truncate_cascade", "truncate users cascade");
}

#[test]
fn delete_all_round_trips() {
    round_trip_psql("rt_delete_all", "delete from orders");
}

/// `users` has a view on it and is referenced by `orders`: its
/// table-scoped backup must go back without touching either.
#[test]
fn update_all_of_a_referenced_table_round_trips() {
    let meta = round_trip_psql(
        "rt_update_all",
        "update users set email = 'x' || email, mood = 'cross'",
    );
    assert_eq!(
        meta["scope"],
        serde_json::json!(["public.users"]),
        "a table-scoped backup"
    );
}

#[test]
fn bulk_delete_round_trips() {
    round_trip_psql("rt_bulk_delete", "delete from orders where id > 100");
}

#[test]
fn drop_database_round_trips() {
    let s = setup("rt_drop_database");
    let before = signature(&s.db.name);
    ok(capture(
        s.sandbox.shim("psql").args([
            "-X",
            "-d",
            "postgres",
            "-c",
            &format!("drop database \"{}\"", s.db.name),
        ]),
        None,
    ));
    assert!(!exists(&s.db.name), "dropped");
    ok(restore(&s.sandbox, &only_backup(&s.store)));
    assert_same(&before, &signature(&s.db.name));
}

#[test]
fn dropdb_round_trips() {
    let s = setup("rt_dropdb");
    let before = signature(&s.db.name);
    ok(capture(s.sandbox.shim("dropdb").arg(&s.db.name), None));
    assert!(!exists(&s.db.name), "dropped");
    ok(restore(&s.sandbox, &only_backup(&s.store)));
    assert_same(&before, &signature(&s.db.name));
}

#[test]
fn pg_restore_clean_round_trips() {
    let s = setup("rt_pg_restore");
    let archive = in_dir(&s.sandbox, "older.dump");
    ok(capture(
        s.sandbox
            .real("pg_dump")
            .args(["-Fc", "-f"])
            .arg(&archive)
            .arg(&s.db.name),
        None,
    ));
    s.db.sql(
        "insert into users (email) values ('late@example.com');
         update orders set total = 0 where id < 10;
         create table late (v int); insert into late values (1)",
    );
    let before = signature(&s.db.name);
    ok(capture(
        s.sandbox
            .shim("pg_restore")
            .args(["--clean", "--if-exists", "-d", &s.db.name])
            .arg(&archive),
        None,
    ));
    assert_ne!(signature(&s.db.name), before, "pg_restore changed nothing");
    ok(restore(&s.sandbox, &only_backup(&s.store)));
    assert_same(&before, &signature(&s.db.name));
}

/// The sample alembic project at 0004 with a sandbox for it.
fn alembic_setup(hint: &str) -> (TestDb, AlembicProject, Sandbox, PathBuf) {
    let db = cluster().create_db(hint);
    let project = AlembicProject::new(&db);
    let mut sandbox = Sandbox::new().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    sandbox.set("DBGUARD_YES", "1");
    ok(capture(
        sandbox
            .real("alembic")
            .current_dir(project.path())
            .args(["upgrade", "head"]),
        None,
    ));
    (db, project, sandbox, store)
}

#[test]
fn alembic_downgrade_round_trips() {
    let (db, project, sandbox, store) = alembic_setup("rt_downgrade");
    let before = signature(&db.name);
    ok(capture(
        sandbox
            .shim("alembic")
            .current_dir(project.path())
            .args(["downgrade", "0002"]),
        None,
    ));
    assert_ne!(signature(&db.name), before, "the downgrade changed nothing");
    ok(restore(&sandbox, &only_backup(&store)));
    assert_same(&before, &signature(&db.name));
}

/// A migration that commits part of its work (a new table referencing
/// `users`, rows deleted) and then fails: the backup `dbguard migrate`
/// offers must bring back exactly the state before it, although the new
/// table depends on tables in the backup.
const FAILS_HALF_WAY: &str = r#""""half applied

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.get_context().autocommit_block():
        op.execute("CREATE TABLE user_links (user_id integer REFERENCES users(id), url text)")
        op.execute("INSERT INTO user_links SELECT id, 'https://example.com/' || id FROM users")
        op.execute("DELETE FROM orders WHERE amount > 10")
    op.execute("ALTER TABLE users ADD COLUMN broken INTEGER NOT NULL DEFAULT 'not a number'")


def downgrade():
    pass
"#;

#[test]
fn a_partially_applied_migration_round_trips() {
    let (db, project, sandbox, store) = alembic_setup("rt_partial");
    fs::write(
        project
            .path()
            .join("migrations/versions/0005_half_applied.py"),
        FAILS_HALF_WAY,
    )
    .expect("write the migration");
    let before = signature(&db.name);
    let out = guarded::without_terminal(
        sandbox.dbguard().current_dir(project.path()).arg("migrate"),
        None,
    );
    assert_ne!(out.status, 0, "the migration fails: {}", out.stderr_str());
    assert!(
        out.stderr_str().contains("dbguard restore "),
        "the restore is offered: {}",
        out.stderr_str()
    );
    assert_ne!(signature(&db.name), before, "the migration left its mark");
    ok(restore(&sandbox, &only_backup(&store)));
    assert_same(&before, &signature(&db.name));
}
