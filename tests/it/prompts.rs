//! What a person sees at the moment they are scared: the blast radius
//! before the question (tables and rows a CASCADE takes along, the rows a
//! WHERE'd change touches), refusals that fit where the person is, and the
//! terminal details (type-ahead, Ctrl-C, the session's own locks) on a
//! real pseudo-terminal. Each test checks the server afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use expectrl::Expect;
use expectrl::session::OsSession;

use crate::support::guarded::{self, backups, psql_prompt};
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
        "create table orders (id int primary key, total numeric);
         insert into orders select g, g * 1.25 from generate_series(1, 1000) g;
         create schema archive;
         create table archive.old_orders (id int primary key, total numeric);
         insert into archive.old_orders select g, g from generate_series(1, 2500) g;
         create table archive.notes (n int);
         insert into archive.notes values (1), (2), (3);",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

fn shim_without_terminal(sandbox: &Sandbox, args: &[&str]) -> Output {
    guarded::without_terminal(sandbox.shim("psql").args(args), None)
}

fn open(s: &Setup) -> OsSession {
    guarded::open_psql(&s.sandbox, &s.db.name)
}

fn quit(mut p: OsSession) {
    p.send_line("\\q").expect("type");
    p.expect(expectrl::Eof).expect("psql ends");
}

fn count(db: &TestDb, table: &str) -> String {
    db.sql(&format!("select count(*) from {table}"))
}

#[test]
fn drop_schema_cascade_lists_the_tables_and_rows_it_takes() {
    let s = setup("radius_schema");
    // Never analysed: the planner knows nothing, so the rows are counted.
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "drop schema archive cascade"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("dropped with them by CASCADE: 2 tables"),
        "{stderr}"
    );
    assert!(
        stderr.contains("archive.old_orders: 2,500 rows"),
        "{stderr}"
    );
    assert!(stderr.contains("archive.notes: 3 rows"), "{stderr}");
    assert!(!stderr.contains("public.orders"), "{stderr}");
    assert_eq!(count(&s.db, "archive.old_orders"), "2500");
}

#[test]
fn drop_table_cascade_names_the_inheriting_tables_it_takes() {
    let s = setup("radius_table_cascade");
    s.db.sql(
        "create table orders_2020 () inherits (orders);
         insert into orders_2020 select g + 5000, 1 from generate_series(1, 40) g;
         create view big_orders as select * from orders where total > 100;",
    );
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "drop table orders cascade"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(stderr.contains("public.orders: 1,040 rows"), "{stderr}");
    assert!(
        stderr.contains("dropped with them by CASCADE: 1 table\n"),
        "{stderr}"
    );
    assert!(stderr.contains("public.orders_2020: 40 rows"), "{stderr}");
    assert_eq!(count(&s.db, "orders_2020"), "40");
}

#[test]
fn a_refusal_from_a_shell_gives_the_reason_then_the_bypass_on_short_lines() {
    let s = setup("refusal_lines");
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "truncate orders"]);
    assert_eq!(out.status, REFUSED);
    let stderr = out.stderr_str();
    let refusal: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("dbguard: refused"))
        .collect();
    assert_eq!(refusal.len(), 2, "{stderr}");
    assert!(
        refusal[0].ends_with("no terminal to ask for confirmation on"),
        "{stderr}"
    );
    assert!(
        refusal[1].starts_with("  to run it anyway: DBGUARD_YES=1"),
        "{stderr}"
    );
    assert_eq!(count(&s.db, "orders"), "1000");
}

#[test]
fn a_misspelt_database_is_left_to_psql_to_report() {
    let s = setup("no_such_db");
    let missing = format!("{}_typo", s.db.name);
    let out = shim_without_terminal(
        &s.sandbox,
        &["-X", "-d", &missing, "-c", "drop table orders"],
    );
    let stderr = out.stderr_str();
    // psql's own status and message, not a refusal.
    assert_eq!(out.status, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("database \"{missing}\" does not exist")),
        "{stderr}"
    );
    assert!(!stderr.contains("dbguard:"), "{stderr}");
    assert_eq!(count(&s.db, "orders"), "1000");
}

#[test]
fn a_bulk_update_shows_how_many_rows_it_changes() {
    let s = setup("radius_bulk");
    s.db.sql("analyze orders");
    let mut p = open(&s);
    p.send_line("update orders set total = 0 where id > 100;")
        .expect("type");
    let shown = p.expect("Type \"UPDATE\"").expect("asked");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("of 1,000 rows in orders"),
        "the rows touched, out of the table's: {summary}"
    );
    p.send_line("no").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    // Outside a transaction: the statement was not run, nothing to roll back.
    p.expect("send it again to be asked again").expect("hint");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(s.db.sql("select count(*) from orders where total = 0"), "0");
}

#[test]
fn the_sessions_own_lock_is_refused_at_once_with_what_to_do() {
    let s = setup("own_lock_at_once");
    let mut p = open(&s);
    p.send_line("begin;").expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    p.send_line("alter table orders add column note text;")
        .expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    let started = Instant::now();
    p.send_line("drop table orders;").expect("type");
    let shown = p
        .expect(expectrl::Regex("Type \"DROP\"|must be rolled back"))
        .expect("a refusal");
    let seen = String::from_utf8_lossy(shown.get(0).unwrap_or_default()).into_owned();
    assert_eq!(
        seen, "must be rolled back",
        "no question that cannot succeed"
    );
    let before = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        before.contains("holds a lock on orders"),
        "says why: {before}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "at once, not after a lock timeout: {:?}",
        started.elapsed()
    );
    p.expect(psql_prompt(&s.db.name, "!"))
        .expect("the transaction failed");
    p.send_line("rollback;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(count(&s.db, "orders"), "1000");
    assert_eq!(
        s.db.sql("select count(*) from information_schema.columns where table_name = 'orders' and column_name = 'note'"),
        "0"
    );
    assert!(backups(&s.store).is_empty());
}

#[test]
fn keys_typed_before_the_question_are_not_the_answer() {
    let s = setup("type_ahead");
    let mut p = open(&s);
    // The word arrives with the statement, before any question was shown.
    p.send("drop table orders;\nDROP\n").expect("type");
    p.expect("Type \"DROP\"").expect("asked");
    // Give a wrongly kept answer time to act.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count(&s.db, "orders"),
        "1000",
        "the early DROP was not taken"
    );
    p.send_line("no").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(count(&s.db, "orders"), "1000");
    assert!(backups(&s.store).is_empty());
}

#[test]
fn ctrl_c_at_the_question_starts_the_refusal_on_a_new_line() {
    let s = setup("ctrl_c_newline");
    let mut p = open(&s);
    p.send_line("delete from orders;").expect("type");
    p.expect("Type \"DELETE\"").expect("prompt");
    p.send("\x03").expect("Ctrl-C");
    let shown = p
        .expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    let between = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        between.contains("^C\r\n") || between.ends_with('\n'),
        "the refusal is not glued to ^C: {between:?}"
    );
    p.expect(psql_prompt(&s.db.name, ""))
        .expect("psql lives on");
    quit(p);
    assert_eq!(count(&s.db, "orders"), "1000");
    assert!(backups(&s.store).is_empty());
}

#[test]
fn a_table_created_in_the_same_transaction_does_not_block_the_backup() {
    let s = setup("own_new_table");
    let mut p = open(&s);
    p.send_line("begin;").expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    // The new table is locked by this transaction, but a second connection
    // (pg_dump's) cannot see it, so the whole-database backup is possible.
    p.send_line("create table scratch (n int);").expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    p.send_line("drop schema archive cascade;").expect("type");
    p.expect("Type \"DROP\"")
        .expect("asked, not refused for the new table's lock");
    p.send_line("DROP").expect("type");
    p.expect("DROP SCHEMA").expect("ran after the backup");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    p.send_line("commit;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(
        s.db.sql("select count(*) from pg_namespace where nspname = 'archive'"),
        "0"
    );
    assert_eq!(backups(&s.store).len(), 1);
}

#[test]
fn drop_type_and_truncate_cascade_list_the_tables_they_take() {
    let s = setup("radius_type_truncate");
    s.db.sql(
        "create type person as (name text);
         create table people of person;
         insert into people select 'p' || g from generate_series(1, 7) g;
         create table lines (id int references orders (id));
         insert into lines select g from generate_series(1, 12) g;",
    );
    // A typed table goes with its type.
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "drop type person cascade"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("dropped with them by CASCADE: 1 table\n"),
        "{stderr}"
    );
    assert!(stderr.contains("public.people: 7 rows"), "{stderr}");
    assert_eq!(count(&s.db, "people"), "7");

    // TRUNCATE ... CASCADE empties every table whose foreign key points here.
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "truncate orders cascade"]);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("emptied with them by CASCADE: 1 table\n"),
        "{stderr}"
    );
    assert!(stderr.contains("public.lines: 12 rows"), "{stderr}");
    assert!(!stderr.contains("dropped with them"), "{stderr}");
    assert_eq!(count(&s.db, "lines"), "12");
}
