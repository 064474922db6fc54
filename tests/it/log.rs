//! `dbguard log` and `dbguard list` after real guarded operations: what the
//! guards wrote to the audit log reads back as a table and as JSON, the
//! filters select what they say, and `list` names the statement a guard's
//! backup protects. Layouts at fixed widths are snapshotted in-process
//! (src/cli/log.rs, src/cli/list.rs); this checks the whole path.

use crate::support::guarded;
use crate::support::sandbox::capture;
use crate::support::{Output, Sandbox, TestDb, cluster};

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
}

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql(
        "create table orders (id int primary key, total numeric);
         insert into orders select g, g from generate_series(1, 500) g;
         create table notes (id int);",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    guarded::use_store(&mut sandbox);
    Setup { db, sandbox }
}

fn dbguard(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = sandbox.dbguard();
    cmd.args(args).envs(env.iter().copied());
    let out = capture(&mut cmd, None);
    assert_eq!(out.status, 0, "{args:?}: {}", out.stderr_str());
    out
}

#[test]
fn log_and_list_after_guarded_statements() {
    let s = setup("log_list");
    // Confirmed (DBGUARD_YES: backed up, no prompt), then refused (no terminal).
    let yes = guarded::without_terminal(
        s.sandbox
            .shim("psql")
            .args(["-c", "DROP TABLE orders"])
            .env("DBGUARD_YES", "1"),
        None,
    );
    assert_eq!(yes.status, 0, "{}", yes.stderr_str());
    let refused =
        guarded::without_terminal(s.sandbox.shim("psql").args(["-c", "TRUNCATE notes"]), None);
    assert_eq!(refused.status, 77, "{}", refused.stderr_str());
    // What the server says: the confirmed drop ran, the refused truncate not.
    assert_eq!(s.db.sql("select to_regclass('orders') is null"), "t");

    let wide = [("COLUMNS", "200")];
    let text = dbguard(&s.sandbox, &["log"], &wide).stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("TIME"), "{text}");
    assert!(
        lines[1].contains("confirmed") && lines[1].contains("DROP TABLE orders"),
        "{text}"
    );
    assert!(
        lines[2].contains("refused") && lines[2].contains("TRUNCATE notes"),
        "{text}"
    );
    assert!(
        lines[1].contains(&format!("{}_", s.db.name)),
        "backup id shown: {text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour off a terminal");

    // Narrow: every line fits.
    let narrow = dbguard(&s.sandbox, &["log"], &[("COLUMNS", "60")]).stdout_str();
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");

    let refused_only = dbguard(&s.sandbox, &["log", "--decision", "refused"], &wide).stdout_str();
    assert_eq!(refused_only.lines().count(), 2, "{refused_only}");
    let other_db = dbguard(&s.sandbox, &["log", "--database", "elsewhere"], &wide).stdout_str();
    assert_eq!(other_db, "No audit log entries match\n");
    let future = dbguard(&s.sandbox, &["log", "--since", "2999-01-01"], &wide).stdout_str();
    assert_eq!(future, "No audit log entries match\n");
    let recent = dbguard(&s.sandbox, &["log", "--since", "1h"], &wide).stdout_str();
    assert_eq!(recent.lines().count(), 3, "{recent}");

    let json = dbguard(
        &s.sandbox,
        &["log", "--json", "--decision", "confirmed"],
        &[],
    )
    .stdout_str();
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(records.len(), 1, "{json}");
    assert_eq!(records[0]["decision"], "confirmed");
    assert_eq!(records[0]["target"]["database"], s.db.name.as_str());
    let backup_id = records[0]["backups"][0]["id"]
        .as_str()
        .expect("a backup")
        .to_owned();

    // `list` names the statement, not psql's command line.
    let listed = dbguard(&s.sandbox, &["list"], &wide).stdout_str();
    let row = listed
        .lines()
        .find(|l| l.starts_with(backup_id.strip_prefix("backup_").unwrap()))
        .unwrap_or_else(|| panic!("{backup_id} in {listed}"));
    assert!(row.trim_end().ends_with("DROP TABLE orders"), "{row}");

    let bad = capture(
        s.sandbox.dbguard().args(["log", "--since", "yesterday"]),
        None,
    );
    assert_eq!(bad.status, 2);
    assert!(
        bad.stderr_str().contains("neither a date"),
        "{}",
        bad.stderr_str()
    );
}
