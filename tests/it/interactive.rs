//! The guard inside an interactive psql: the real psql on a real
//! pseudo-terminal, with the preload library the shim loads into it,
//! against the real cluster. Each test checks the database afterwards.

use std::path::PathBuf;

use expectrl::Expect;
use expectrl::session::OsSession;

use crate::support::guarded::{self, audit_lines, backups, id_of, interactive_psql, psql_prompt};
use crate::support::{Sandbox, TestDb, cluster};

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
         create table marker (n int);",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

fn open(s: &Setup) -> OsSession {
    guarded::open_psql(&s.sandbox, &s.db.name)
}

fn quit(mut p: OsSession) {
    p.send_line("\\q").expect("type");
    p.expect(expectrl::Eof).expect("psql ends");
    assert_eq!(guarded::exit_code(&mut p), 0);
}

fn table_exists(db: &TestDb, name: &str) -> bool {
    db.sql(&format!("select to_regclass('{name}') is not null")) == "t"
}

fn orders_rows(db: &TestDb) -> String {
    db.sql("select string_agg(format('%s|%s', id, total), ',' order by id) from orders")
}

#[test]
fn a_wrong_word_keeps_the_table_and_the_session_goes_on() {
    let s = setup("live_wrong_word");
    let mut p = open(&s);
    p.send_line("drop table orders;").expect("type");
    let shown = p
        .expect("to continue (anything else cancels)")
        .expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("drop_table orders"), "{summary}");
    assert!(summary.contains("public.orders: 1,000 rows"), "{summary}");
    assert!(
        table_exists(&s.db, "orders"),
        "nothing runs while the question is open"
    );
    p.send_line("drop").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("psql shows the refusal");
    p.expect(psql_prompt(&s.db.name, ""))
        .expect("the session goes on");
    assert!(table_exists(&s.db, "orders"));
    assert!(backups(&s.store).is_empty());
    p.send_line("select count(*) as n from orders;")
        .expect("type");
    p.expect("1000").expect("the next statement works");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    let audit = audit_lines(&s.store);
    assert_eq!(audit.last().expect("audit line")["decision"], "refused");
}

#[test]
fn the_right_word_backs_up_then_drops_and_the_backup_restores() {
    let s = setup("live_right_word");
    let before = orders_rows(&s.db);
    let mut p = open(&s);
    p.send_line("drop table orders;").expect("type");
    p.expect("Type \"DROP\"").expect("prompt");
    p.send_line("DROP").expect("type");
    p.expect("dbguard:   to restore: dbguard restore")
        .expect("backup line");
    p.expect("DROP TABLE").expect("psql ran the statement");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert!(!table_exists(&s.db, "orders"));
    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    let id = id_of(&files[0]);
    let audit = audit_lines(&s.store);
    let last = audit.last().expect("audit line");
    assert_eq!(last["decision"], "confirmed");
    assert_eq!(last["backups"][0]["id"], id.as_str());
    guarded::restore_unasked(&s.sandbox, &id);
    assert_eq!(orders_rows(&s.db), before);
}

#[test]
fn declined_inside_a_transaction_aborts_it_like_any_error() {
    let s = setup("live_in_transaction");
    let mut p = open(&s);
    p.send_line("begin;").expect("type");
    p.expect(psql_prompt(&s.db.name, "*"))
        .expect("in a transaction");
    p.send_line("insert into marker values (1);").expect("type");
    p.expect(psql_prompt(&s.db.name, "*"))
        .expect("in a transaction");
    p.send_line("truncate orders;").expect("type");
    p.expect("Type \"TRUNCATE\"").expect("prompt");
    p.send_line("no").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    // psql and the server agree: the transaction has failed.
    p.expect(psql_prompt(&s.db.name, "!"))
        .expect("failed transaction prompt");
    p.send_line("select 1;").expect("type");
    p.expect("current transaction is aborted")
        .expect("server agrees");
    p.send_line("rollback;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(s.db.sql("select count(*) from orders"), "1000");
    assert_eq!(s.db.sql("select count(*) from marker"), "0");
}

#[test]
fn gexec_output_is_checked_statement_by_statement() {
    let s = setup("live_gexec");
    let mut p = open(&s);
    p.send_line("select 'drop table ' || relname from pg_class where relname in ('orders', 'marker') order by 1 \\gexec")
        .expect("type");
    p.expect("drop_table marker")
        .expect("the first generated DROP");
    p.expect("Type \"DROP\"").expect("prompt");
    p.send_line("nope").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    p.expect("drop_table orders")
        .expect("the second generated DROP");
    p.expect("Type \"DROP\"").expect("prompt");
    p.send_line("DROP").expect("type");
    p.expect("DROP TABLE").expect("ran");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert!(table_exists(&s.db, "marker"));
    assert!(!table_exists(&s.db, "orders"));
}

#[test]
fn ctrl_c_at_the_question_declines_and_psql_lives_on() {
    let s = setup("live_ctrl_c");
    let mut p = open(&s);
    p.send_line("delete from orders;").expect("type");
    p.expect("Type \"DELETE\"").expect("prompt");
    p.send("\x03").expect("Ctrl-C");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    p.expect(psql_prompt(&s.db.name, ""))
        .expect("psql still runs");
    p.send_line("select count(*) as n from orders;")
        .expect("type");
    p.expect("1000").expect("intact");
    quit(p);
}

#[test]
fn after_backslash_c_the_new_database_is_guarded() {
    let s = setup("live_reconnect");
    let other = cluster().create_db("live_reconnect_other");
    other.sql("create table keep (n int); insert into keep values (1), (2);");
    let mut p = open(&s);
    p.send_line(format!("\\c {}", other.name)).expect("type");
    p.expect(psql_prompt(&other.name, "")).expect("connected");
    p.send_line("drop table keep;").expect("type");
    let shown = p.expect("Type \"DROP\"").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains(&format!("database \"{}\"", other.name)),
        "{summary}"
    );
    p.send_line("DROP").expect("type");
    p.expect("DROP TABLE").expect("ran");
    p.expect(psql_prompt(&other.name, "")).expect("prompt");
    quit(p);
    assert!(!table_exists(&other, "keep"));
    // The backup is of the database psql was connected to at the time.
    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("backup_{}_", other.name)),
        "{name}"
    );
}

#[test]
fn a_script_statement_confirmed_before_psql_started_is_not_asked_again() {
    let s = setup("live_no_double_prompt");
    let script = s.sandbox.dir.path().join("cleanup.sql");
    std::fs::write(
        &script,
        "drop table marker;\nselect 'drop table ' || 'orders' \\gexec\n",
    )
    .expect("script");
    let mut p = guarded::on_terminal(
        &s.sandbox,
        &s.sandbox.shims.join("psql"),
        &["-X", "-f", script.to_str().expect("utf-8 path")],
        None,
        None,
    );
    // The pre-flight sees the DROP and the \gexec, asks once for both.
    let shown = p.expect("Type \"DROP\"").expect("first question");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("drop_table marker"), "{summary}");
    p.send_line("DROP").expect("type");
    // Inside psql, only what the pre-flight could not see is asked about.
    let shown = p.expect("Type \"DROP\"").expect("second question");
    let between = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(between.contains("drop_table orders"), "{between}");
    assert!(!between.contains("drop_table marker"), "{between}");
    p.send_line("DROP").expect("type");
    let rest = p.expect(expectrl::Eof).expect("psql ends");
    let rest = String::from_utf8_lossy(rest.before()).into_owned();
    assert!(!rest.contains("to continue"), "asked a third time: {rest}");
    assert_eq!(guarded::exit_code(&mut p), 0);
    assert!(!table_exists(&s.db, "marker"));
    assert!(!table_exists(&s.db, "orders"));
    assert_eq!(backups(&s.store).len(), 2);
}

#[test]
fn a_bulk_delete_by_the_planners_estimate_is_asked_about_a_small_one_is_not() {
    let s = setup("live_bulk");
    s.db.sql("analyze orders");
    let mut p = open(&s);
    p.send_line("delete from orders where id = 5;")
        .expect("type");
    p.expect("DELETE 1").expect("a small delete runs unasked");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    // Inside a transaction the estimate must leave it intact.
    p.send_line("begin;").expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    p.send_line("update orders set total = 0 where id > 100;")
        .expect("type");
    let shown = p
        .expect("Type \"UPDATE\"")
        .expect("a bulk update is asked about");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("update_bulk orders"), "{summary}");
    p.send_line("no").expect("type");
    p.expect("ERROR:  dbguard: statement not run")
        .expect("refusal");
    p.expect(psql_prompt(&s.db.name, "!"))
        .expect("failed transaction");
    p.send_line("rollback;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("delete from orders where id > 100;")
        .expect("type");
    p.expect("delete_bulk orders")
        .expect("a bulk delete is asked about");
    p.expect("Type \"DELETE\"").expect("prompt");
    p.send_line("DELETE").expect("type");
    p.expect("DELETE 900").expect("ran after the backup");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(s.db.sql("select count(*) from orders"), "99");
    assert_eq!(backups(&s.store).len(), 1);
}

#[test]
fn a_delete_by_unique_key_is_not_estimated_a_range_on_the_same_table_is() {
    let s = setup("live_unique_key");
    s.db.sql(
        "create table big (id int primary key, n int);
         insert into big select g, g from generate_series(1, 20000) g;
         create table one (id int primary key, n int);
         insert into one values (1, 1);
         analyze big; analyze one;",
    );
    let mut p = open(&s);
    p.send_line("delete from big where id = 5;").expect("type");
    p.expect("DELETE 1")
        .expect("one row by its key runs unasked");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    // The planner is not asked: by its estimate this one row would be more
    // than half of the table, which the fraction rule calls bulk.
    p.send_line("delete from one where 1 = id;").expect("type");
    p.expect("DELETE 1")
        .expect("one row by its key runs unasked");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("insert into one values (2, 2);").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    s.db.sql("analyze one");

    let mut p = open(&s);
    // Not a key: the same kind of one-row change is estimated and asked.
    p.send_line("delete from one where n = 2;").expect("type");
    let shown = p.expect("Type \"DELETE\"").expect("asked");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("delete_bulk one"), "{summary}");
    p.send_line("no").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("delete from big where id > 0;").expect("type");
    let shown = p.expect("Type \"DELETE\"").expect("asked");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("delete_bulk big"), "{summary}");
    p.send_line("no").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("delete from big where id = 6;").expect("type");
    p.expect("DELETE 1")
        .expect("one row by its key runs unasked");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    // The key is dropped in this session: what was learned about it is
    // forgotten, and the rule no longer applies.
    p.send_line("alter table big drop constraint big_pkey;")
        .expect("type");
    p.expect("Type \"DROP\"").expect("asked about the drop");
    p.send_line("DROP").expect("type");
    p.expect("ALTER TABLE").expect("dropped");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("insert into big select 7, g from generate_series(1, 20000) g;")
        .expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("analyze big;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("delete from big where id = 7;").expect("type");
    let shown = p.expect("Type \"DELETE\"").expect("asked");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("delete_bulk big"), "{summary}");
    p.send_line("no").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert_eq!(s.db.sql("select count(*) from big"), "39998");
    assert_eq!(s.db.sql("select count(*) from one"), "1");
}

#[test]
fn the_key_query_finds_only_keys_that_hold_for_every_row() {
    let db = cluster().create_db("unique_keys");
    db.sql(
        r#"create schema s;
         create table s."Mixed" (id int primary key, a int, b int, e text,
             unique (a, b), unique (e) include (id));
         create unique index on s."Mixed" (lower(e));
         create unique index on s."Mixed" (b) where a > 0;
         create table d (id int unique deferrable initially immediate);
         create table parent (id int primary key);
         create table child () inherits (parent);
         create table p (id int, k int, primary key (k, id)) partition by range (k);
         create table p1 partition of p for values from (0) to (10);
         create view v as select 1 as id;"#,
    );
    // Each key's columns, keys sorted; `None` when no row came back.
    let keys = |name: &str| -> Option<Vec<Vec<String>>> {
        let sql = dbguard::shim::live::unique_keys_query(name).expect("a query");
        let out = db.sql(&format!("set search_path = s, public; {sql}"));
        if out.is_empty() {
            return None;
        }
        let mut keys: Vec<Vec<String>> = serde_json::from_str(&out).expect("json");
        keys.sort();
        Some(keys)
    };
    let key = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        keys(r#""Mixed""#),
        Some(vec![key(&["a", "b"]), key(&["e"]), key(&["id"])])
    );
    assert_eq!(
        keys("d"),
        Some(vec![]),
        "a deferrable key may not hold mid-transaction"
    );
    assert_eq!(keys("parent"), None, "children are not covered");
    assert_eq!(keys("p"), Some(vec![key(&["id", "k"])]));
    assert_eq!(keys("v"), None);
    assert_eq!(keys("missing"), None);
}

#[test]
fn a_script_s_bulk_delete_is_asked_about_before_psql_starts() {
    let s = setup("script_bulk");
    s.db.sql("analyze orders");
    let mut p = guarded::on_terminal(
        &s.sandbox,
        &s.sandbox.shims.join("psql"),
        &["-X", "-c", "delete from orders where id > 10"],
        None,
        None,
    );
    let shown = p.expect("Type \"DELETE\"").expect("question");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("-c:1: delete_bulk orders"), "{summary}");
    p.send_line("no").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(guarded::exit_code(&mut p), 77);
    assert_eq!(s.db.sql("select count(*) from orders"), "1000");

    // Without an estimate (the table is created by the script itself) the
    // WHERE rule stands: nothing to ask.
    let out = crate::support::sandbox::capture(
        s.sandbox.shim("psql").args([
            "-X",
            "-c",
            "create table fresh as select g as a from generate_series(1, 20000) g; delete from fresh where a > 1",
        ]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from fresh"), "1");
}

#[test]
fn a_backup_blocked_by_the_sessions_own_locks_gives_up_and_refuses() {
    let s = setup("live_own_locks");
    let mut p = open(&s);
    p.send_line("begin;").expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    // ALTER TABLE holds an ACCESS EXCLUSIVE lock until the transaction
    // ends: a dump from a second connection could wait for ever.
    p.send_line("alter table orders add column note text;")
        .expect("type");
    p.expect(psql_prompt(&s.db.name, "*")).expect("prompt");
    p.send_line("drop table orders;").expect("type");
    let started = std::time::Instant::now();
    let seen = p
        .expect(expectrl::Regex("Type \"DROP\"|ERROR:  dbguard"))
        .expect("a question or a refusal");
    if seen.get(0).is_some_and(|m| m.starts_with(b"Type")) {
        p.send_line("DROP").expect("type");
        p.expect("ERROR:  dbguard: statement not run")
            .expect("refusal");
    }
    p.expect(psql_prompt(&s.db.name, "!"))
        .expect("the transaction failed");
    assert!(started.elapsed().as_secs() < 50, "gave up in time");
    p.send_line("rollback;").expect("type");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    quit(p);
    assert!(table_exists(&s.db, "orders"));
    assert!(backups(&s.store).is_empty());
}

#[test]
fn without_the_preload_library_the_session_runs_with_a_notice() {
    let mut s = setup("live_no_library");
    s.sandbox
        .set("DBGUARD_PRELOAD", "/nonexistent/libdbguard_preload.so");
    let mut p = interactive_psql(&s.sandbox, &[]);
    p.expect("interactive psql sessions are not guarded")
        .expect("the notice");
    p.expect(psql_prompt(&s.db.name, "")).expect("psql runs");
    quit(p);
}

#[test]
fn shell_escapes_copy_pipes_and_watch_keep_working_and_children_run_without_the_library() {
    let s = setup("live_psql_features");
    let csv = s.sandbox.dir.path().join("out.csv");
    let mut p = open(&s);
    p.send_line("\\! echo \"preload=[$LD_PRELOAD]\"")
        .expect("type");
    p.expect("preload=[]")
        .expect("a child of psql does not inherit the library");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line(format!(
        "\\copy (select id from orders where id <= 3) to '{}' csv",
        csv.display()
    ))
    .expect("type");
    p.expect("COPY 3").expect("\\copy works");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("select 40 + 2 as answer \\g | tr 4 X")
        .expect("type");
    p.expect("X2").expect("\\g into a pipe works");
    p.expect(psql_prompt(&s.db.name, "")).expect("prompt");
    p.send_line("select 'tick' as t \\watch 0.2").expect("type");
    p.expect("tick").expect("\\watch runs");
    p.expect("tick").expect("\\watch runs again");
    p.send("\x03").expect("Ctrl-C");
    p.expect(psql_prompt(&s.db.name, ""))
        .expect("Ctrl-C ends \\watch");
    quit(p);
    assert_eq!(std::fs::read_to_string(&csv).expect("csv"), "1\n2\n3\n");
}
