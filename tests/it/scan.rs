//! `dbguard scan` and the SQL analysis behind it: evasions that must still
//! be caught, look-alikes that must not be, scripts with includes and
//! variables, bad input, the reporters' output (insta snapshots, rendered
//! in-process), and the binary's exit statuses, stdin and formats.

use std::io::Read;
use std::path::Path;

use assert_cmd::Command;
use dbguard::report::{self, Report};
use dbguard::sql::{Format, Kind, ScanReport, Scanner, scan_str};
use predicates::prelude::PredicateBooleanExt;
use proptest::prelude::*;

fn scan(sql: &[u8]) -> ScanReport {
    let mut scanner = Scanner::new("/");
    scanner.scan_bytes("input.sql", sql, Path::new("/"));
    scanner.finish()
}

/// (line, kind) of every finding.
fn found(sql: &[u8]) -> Vec<(u64, Kind)> {
    scan(sql)
        .findings
        .iter()
        .map(|f| (f.line, f.kind))
        .collect()
}

fn dbguard() -> Command {
    let mut cmd = Command::cargo_bin("dbguard").expect("the dbguard binary is built for tests");
    cmd.env_remove("DBGUARD_ARGV0").env("NO_COLOR", "1");
    cmd
}

// ---------------------------------------------------------------- evasions

/// A script and the (line, kind) findings expected from it.
type Case = (&'static [u8], &'static [(u64, Kind)]);

#[test]
fn evasions_are_caught() {
    let cases: &[Case] = &[
        (b"DROP/**/TABLE/**/users;", &[(1, Kind::DropTable)]),
        (b"DROP /* a /* nested */ comment */ TABLE users;", &[(1, Kind::DropTable)]),
        (b"DROP -- line comment\nTABLE users;", &[(1, Kind::DropTable)]),
        (b"dRoP tAbLe users;", &[(1, Kind::DropTable)]),
        (b"DROP TABLE \"Users\";", &[(1, Kind::DropTable)]),
        (b"DROP TABLE \"my schema\".\"My Table\";", &[(1, Kind::DropTable)]),
        (b"SELECT 1; DROP TABLE a; SELECT 2; TRUNCATE b;", &[(1, Kind::DropTable), (1, Kind::Truncate)]),
        (b"SELECT 1;\r\nDELETE FROM t;\r\n", &[(2, Kind::DeleteAll)]),
        (b"\xEF\xBB\xBFDROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT '\xff\xfe';\n\xc3 ;\nDROP TABLE t;", &[(3, Kind::DropTable)]),
        (b"DROP TABLE caf\xc3\xa9, \xff\xfe;", &[(1, Kind::DropTable)]),
        (b"\n\n\n   \t  TRUNCATE t;", &[(4, Kind::Truncate)]),
        (b"SELECT $$;$$; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT $x$ $$ ; $x$; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT E'\\';'; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT U&'d\\0061t'; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT \"a;b\"; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"SELECT 1 \\; DROP TABLE t;", &[(1, Kind::DropTable)]),
        (b"DELETE FROM t \\g\n", &[(1, Kind::DeleteAll)]),
        (b"UPDATE t SET a = 1\n\\gx\n", &[(1, Kind::UpdateAll)]),
        (b"DELETE FROM t WHERE 1=1;", &[(1, Kind::DeleteAll)]),
        (b"DELETE FROM t WHERE 'a'='a';", &[(1, Kind::DeleteAll)]),
        (b"delete from t where TRUE;", &[(1, Kind::DeleteAll)]),
        (b"WITH x AS (DELETE FROM t RETURNING *) SELECT 1;", &[(1, Kind::DeleteAll)]),
        (b"EXPLAIN ANALYZE UPDATE t SET a = 1;", &[(1, Kind::UpdateAll)]),
        (b"ALTER TABLE ONLY t DROP COLUMN IF EXISTS c;", &[(1, Kind::DropColumn)]),
        (b"ALTER TABLE IF EXISTS ONLY s.t DROP c;", &[(1, Kind::DropColumn)]),
        (b"TRUNCATE ONLY a, b CASCADE;", &[(1, Kind::Truncate)]),
        (b"DROP OWNED BY app;", &[(1, Kind::DropOwned)]),
        (b"DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$;", &[(1, Kind::Dynamic)]),
        (b"SELECT 'TRUNCATE ' || tablename FROM pg_tables \\gexec\n", &[(1, Kind::Dynamic)]),
        (b"CREATE TABLE t (a int);\n/* multi\nline */ DROP TABLE t;", &[(3, Kind::DropTable)]),
        (b"DROP TABLE a; DROP TABLE b; DROP TABLE c;", &[(1, Kind::DropTable), (1, Kind::DropTable), (1, Kind::DropTable)]),
        (b"-- unterminated comment then\nDROP DATABASE prod", &[(2, Kind::DropDatabase)]),
        (b"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nDROP SCHEMA s;", &[(2, Kind::DropSchema)]),
        (b"PREPARE p AS TRUNCATE t;", &[(1, Kind::Truncate)]),
        (b"DROP\tTABLE\x0bt;", &[(1, Kind::DropTable)]),
        (b"SELECT 'DROP TABLE t';\n\\gexec\n", &[(2, Kind::DropTable)]),
    ];
    for (sql, expected) in cases {
        assert_eq!(found(sql), *expected, "{}", String::from_utf8_lossy(sql));
    }
}

#[test]
fn look_alikes_are_not_destructive() {
    let cases: &[&[u8]] = &[
        b"SELECT 'DROP TABLE users';",
        b"SELECT $$DROP TABLE users$$;",
        b"SELECT $tag$ TRUNCATE t; $tag$;",
        b"SELECT E'\\'; DROP TABLE t; --';",
        b"-- DROP TABLE users;\nSELECT 1;",
        b"/* DROP TABLE users; */ SELECT 1;",
        b"/* nested /* DROP TABLE x; */ still comment; DELETE FROM t; */ SELECT 1;",
        b"SELECT \"DROP TABLE users\" FROM t;",
        b"SELECT drop, \"delete\" FROM actions;",
        b"INSERT INTO log (msg) VALUES ('DELETE FROM users');",
        b"DELETE FROM users WHERE id = 1;",
        b"UPDATE users SET name = 'x' WHERE id = 1;",
        b"CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t $$ LANGUAGE sql;",
        b"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; TRUNCATE u; END;",
        b"CREATE RULE r AS ON DELETE TO t DO INSTEAD NOTHING;",
        b"CREATE TRIGGER t BEFORE DELETE ON x FOR EACH ROW EXECUTE FUNCTION f();",
        b"CREATE TABLE t (id int REFERENCES u ON DELETE CASCADE ON UPDATE CASCADE);",
        b"SELECT * FROM t FOR UPDATE;",
        b"COPY t FROM stdin;\nDROP TABLE users;\nTRUNCATE x;\n\\.\n",
        b"\\copy t from stdin\nDELETE FROM t;\n\\.\n",
        b"\\echo DROP TABLE users\n",
        b"EXPLAIN DELETE FROM users;",
        b"DROP TABLE x \\r\nSELECT 1;",
        b"COMMENT ON COLUMN t.c IS 'drop me';",
        b"",
    ];
    for sql in cases {
        let report = scan(sql);
        assert_eq!(report.findings, vec![], "{}", String::from_utf8_lossy(sql));
        assert!(!report.has_errors(), "{}", String::from_utf8_lossy(sql));
    }
}

#[test]
fn objects_follow_identifier_rules() {
    let report =
        scan(br#"DROP TABLE USERS, "Users", Public."Orders", "a.b"; TRUNCATE "T" CASCADE;"#);
    assert_eq!(
        report.findings[0].objects,
        vec!["users", "Users", "public.Orders", "a.b"]
    );
    assert!(!report.findings[0].cascade);
    assert_eq!(report.findings[1].objects, vec!["T"]);
    assert!(report.findings[1].cascade);
}

#[test]
fn statement_count_and_lines_in_a_pg_dump_like_script() {
    let sql = b"SET statement_timeout = 0;\n\
        CREATE TABLE public.t (id integer, note text);\n\
        COPY public.t (id, note) FROM stdin;\n\
        1\tDROP TABLE x;\n\
        2\t\\\\.\n\
        \\.\n\
        ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;\n";
    let report = scan(sql);
    assert_eq!(report.statements, 4);
    let got: Vec<(u64, Kind)> = report.findings.iter().map(|f| (f.line, f.kind)).collect();
    assert_eq!(got, vec![(7, Kind::DropOther)]);
}

// ---------------------------------------------------------------- bad input

#[test]
fn a_one_megabyte_line_then_a_drop() {
    let mut sql = b"INSERT INTO t VALUES ('".to_vec();
    sql.extend(std::iter::repeat_n(b'x', 1 << 20));
    sql.extend_from_slice(b"'); DROP TABLE t;\nSELECT 1;");
    assert_eq!(found(&sql), vec![(1, Kind::DropTable)]);
}

#[test]
fn a_huge_delete_is_judged_conservatively() {
    // Longer than the per-statement cap: its WHERE is beyond the cut.
    let mut sql = b"DELETE FROM t WHERE note = '".to_vec();
    sql.extend(std::iter::repeat_n(b'x', 3 << 20));
    sql.extend_from_slice(b"' OR id = 1;");
    let report = scan(&sql);
    assert_eq!(report.statements, 1);
    // The WHERE names a column in the kept head, so the statement picks rows.
    assert_eq!(report.findings, vec![]);
    let mut sql = b"UPDATE t SET note = '".to_vec();
    sql.extend(std::iter::repeat_n(b'x', 3 << 20));
    sql.extend_from_slice(b"' WHERE id = 1;");
    assert_eq!(found(&sql), vec![(1, Kind::UpdateAll)]);
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 100_000;
    let sql = format!(
        "SELECT {}1{};\nDROP TABLE t;",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(found(sql.as_bytes()), vec![(2, Kind::DropTable)]);
    let sql = format!(
        "DELETE FROM t WHERE {}1=1{};",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(found(sql.as_bytes()), vec![(1, Kind::DeleteAll)]);
    let sql = format!(
        "SELECT 1; {} DROP TABLE t; {}",
        "/*".repeat(depth),
        "*/".repeat(depth)
    );
    assert_eq!(found(sql.as_bytes()), vec![]);
}

#[test]
fn unterminated_quotes_at_end_of_file_are_errors() {
    for sql in [
        &b"DROP TABLE a;\nSELECT 'abc"[..],
        b"SELECT $$ abc; DROP TABLE x;",
        b"SELECT \"abc",
        b"SELECT 1; /* never closed",
        b"SELECT E'\\'",
    ] {
        let report = scan(sql);
        assert!(report.has_errors(), "{}", String::from_utf8_lossy(sql));
        assert!(!report.is_safe());
    }
}

#[test]
fn binary_garbage_finishes() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..2_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let report = scan(&garbage);
    assert!(report.statements > 0);
}

/// Hands out its bytes in small pieces, to exercise chunk boundaries.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    turn: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn sql_fragment() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"DROP TABLE t"[..],
        b"DELETE FROM t",
        b" WHERE id = 1",
        b"UPDATE t SET a = 1",
        b"TRUNCATE t",
        b";",
        b"\n",
        b"\r\n",
        b"'",
        b"''",
        b"\"",
        b"$$",
        b"$q$",
        b"E'\\'",
        b"--",
        b"/*",
        b"*/",
        b"\\g\n",
        b"\\gexec\n",
        b"\\;",
        b"\\set x 1\n",
        b":x",
        b":'x'",
        b"COPY t FROM stdin;\n",
        b"\\.\n",
        b"(",
        b")",
        b"SELECT 1",
        b"BEGIN",
        b"CREATE FUNCTION f() BEGIN ATOMIC",
        b"END",
        b"\xff",
        b"DO $$ BEGIN EXECUTE 'DROP TABLE ' || t; END $$",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Where the input is cut into reads never changes the result.
    #[test]
    fn chunking_never_changes_the_report(sql in sql_fragment(), sizes in prop::collection::vec(1usize..9, 1..5)) {
        let whole = scan(&sql);
        let mut scanner = Scanner::new("/");
        scanner.scan_reader("input.sql", Trickle { data: &sql, sizes, turn: 0 }, Path::new("/"));
        prop_assert_eq!(scanner.finish(), whole);
    }

    /// Arbitrary bytes never panic, and a report always comes back.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = scan(&bytes);
    }
}

// ---------------------------------------------------------------- scripts

#[test]
fn includes_are_followed_relative_to_the_right_directory() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(
        dir.path().join("main.sql"),
        "SELECT 1;\n\\ir sub/a.sql\n\\i top.sql\nSELECT 2;\n",
    )
    .expect("write");
    std::fs::write(
        sub.join("a.sql"),
        "\n\\include_relative b.sql\nDELETE FROM a;\n",
    )
    .expect("write");
    std::fs::write(sub.join("b.sql"), "TRUNCATE b;\n").expect("write");
    std::fs::write(dir.path().join("top.sql"), "DROP TABLE top;\n").expect("write");

    let mut scanner = Scanner::new(dir.path());
    scanner.scan_path(Path::new("main.sql"));
    let report = scanner.finish();
    let got: Vec<(String, u64, Kind)> = report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.line, f.kind))
        .collect();
    assert_eq!(
        got,
        vec![
            ("sub/b.sql".to_string(), 1, Kind::Truncate),
            ("sub/a.sql".to_string(), 3, Kind::DeleteAll),
            ("top.sql".to_string(), 1, Kind::DropTable),
        ]
    );
    assert_eq!(report.statements, 5);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_missing_include_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("main.sql"),
        "SELECT 1;\n\\i nowhere.sql\nSELECT 2;\n",
    )
    .expect("write");
    let mut scanner = Scanner::new(dir.path());
    scanner.scan_path(Path::new("main.sql"));
    let report = scanner.finish();
    assert_eq!(report.statements, 2);
    assert!(report.has_errors());
    let problem = &report.problems[0];
    assert_eq!((problem.path.as_str(), problem.line), ("main.sql", Some(2)));
    assert!(
        problem.message.contains("nowhere.sql"),
        "{}",
        problem.message
    );
}

#[test]
fn include_cycles_stop() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("a.sql"), "DROP TABLE a;\n\\i b.sql\n").expect("write");
    std::fs::write(dir.path().join("b.sql"), "\\i a.sql\n").expect("write");
    let mut scanner = Scanner::new(dir.path());
    scanner.scan_path(Path::new("a.sql"));
    let report = scanner.finish();
    assert_eq!(report.findings.len(), 1);
    assert!(report.has_errors());
    assert!(
        report.problems[0].message.contains("include cycle"),
        "{:?}",
        report.problems
    );
}

#[test]
fn include_depth_is_limited() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // 40 distinct files, each including the next: no cycle, but too deep.
    for n in 0..40 {
        std::fs::write(
            dir.path().join(format!("f{n}.sql")),
            format!("\\i f{}.sql\n", n + 1),
        )
        .expect("write");
    }
    let mut scanner = Scanner::new(dir.path());
    scanner.scan_path(Path::new("f0.sql"));
    let report = scanner.finish();
    assert!(report.has_errors());
    assert!(
        report.problems[0].message.contains("deeper"),
        "{:?}",
        report.problems
    );
}

#[test]
fn variables_from_v_and_set_are_substituted() {
    let mut scanner = Scanner::new("/");
    scanner.apply_assignment("target=prod_users");
    scanner.scan_bytes(
        "-c",
        b"\\set action 'TRUNCATE'\n:action :target;\nDELETE FROM :\"target\" WHERE :cond;",
        Path::new("/"),
    );
    let report = scanner.finish();
    let got: Vec<(Kind, Vec<String>)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.objects.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Kind::Truncate, vec!["prod_users".to_string()]),
            (Kind::DeleteAll, vec!["prod_users".to_string()]),
        ]
    );
}

// ---------------------------------------------------------------- reporters

fn sample_report() -> ScanReport {
    let sql = "SELECT 1;\n\
        DROP TABLE public.users, \"Audit\" CASCADE;\n\
        DELETE FROM sessions WHERE true;\n\
        ALTER TABLE orders DROP COLUMN note;\n\
        DO $$ BEGIN EXECUTE format('TRUNCATE %I', 'logs'); END $$;\n\
        \\i missing.sql\n";
    let mut scanner = Scanner::new("/nonexistent-dir");
    scanner.scan_bytes("deploy.sql", sql.as_bytes(), Path::new("/nonexistent-dir"));
    scanner.finish()
}

fn render(format: Format, report: &ScanReport, color: bool) -> String {
    let mut out = Vec::new();
    report::write(format, &Report::Scan(report), &mut out, color)
        .expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("reports are UTF-8")
}

#[test]
fn text_report() {
    insta::assert_snapshot!(render(Format::Text, &sample_report(), false));
}

#[test]
fn text_report_in_color() {
    insta::assert_snapshot!(render(Format::Text, &sample_report(), true));
}

#[test]
fn text_report_when_clean() {
    insta::assert_snapshot!(render(
        Format::Text,
        &scan_str("SELECT 1; SELECT 2;"),
        false
    ));
}

#[test]
fn json_report() {
    let rendered = render(Format::Json, &sample_report(), false);
    let value: serde_json::Value = serde_json::from_str(&rendered).expect("valid JSON");
    assert_eq!(value["statements"], 5);
    insta::assert_snapshot!(rendered);
}

#[test]
fn github_report() {
    insta::assert_snapshot!(render(Format::Github, &sample_report(), false));
}

// ---------------------------------------------------------------- the binary

#[test]
fn exit_zero_when_nothing_is_destructive() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("ok.sql"), "SELECT 1;\n").expect("write");
    dbguard()
        .current_dir(dir.path())
        .args(["scan", "ok.sql"])
        .assert()
        .code(0)
        .stdout("no destructive statements in 1 statement\n");
}

#[test]
fn exit_one_when_something_is_destructive() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("bad.sql"), "SELECT 1;\nDROP TABLE users;\n").expect("write");
    dbguard()
        .current_dir(dir.path())
        .args(["scan", "bad.sql"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("bad.sql:2: drop_table users"));
}

#[test]
fn exit_two_for_a_missing_file_after_scanning_the_rest() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("bad.sql"), "DROP TABLE users;\n").expect("write");
    dbguard()
        .current_dir(dir.path())
        .args(["scan", "bad.sql", "missing.sql"])
        .assert()
        .code(2)
        .stdout(predicates::str::contains("drop_table users"))
        .stderr(predicates::str::starts_with(
            "dbguard: cannot read missing.sql",
        ));
}

#[test]
fn exit_two_for_a_directory() {
    let dir = tempfile::tempdir().expect("a temp dir");
    dbguard()
        .current_dir(dir.path())
        .args(["scan", "."])
        .assert()
        .code(2);
}

#[test]
fn stdin_is_read_with_a_dash() {
    dbguard()
        .args(["scan", "--format", "json", "-"])
        .write_stdin("SELECT 1;\nTRUNCATE logs;\n")
        .assert()
        .code(1)
        .stdout(predicates::str::contains("\"kind\": \"truncate\""))
        .stdout(predicates::str::contains("\"path\": \"-\""))
        .stdout(predicates::str::contains("\"line\": 2"));
}

#[test]
fn stdin_is_read_without_paths_when_piped() {
    dbguard()
        .args(["scan"])
        .write_stdin("SELECT 1;")
        .assert()
        .code(0);
}

#[test]
fn json_output_is_one_object() {
    let output = dbguard()
        .args(["scan", "--format", "json", "-v", "t=accounts", "-"])
        .write_stdin("DELETE FROM :t;\nUPDATE :t SET a = 1 WHERE id = 2;\n")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let value: serde_json::Value = serde_json::from_slice(&output).expect("valid JSON");
    assert_eq!(value["statements"], 2);
    let findings = value["findings"].as_array().expect("findings is a list");
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f["path"], "-");
    assert_eq!(f["line"], 1);
    assert_eq!(f["kind"], "delete_all");
    assert_eq!(f["objects"], serde_json::json!(["accounts"]));
    assert_eq!(f["cascade"], false);
    assert_eq!(f["statement"], "DELETE FROM accounts");
    assert_eq!(f["verb"], "DELETE");
}

#[test]
fn github_format_annotates() {
    dbguard()
        .args(["scan", "--format", "github", "-"])
        .write_stdin("\n\nDROP SCHEMA app CASCADE;")
        .assert()
        .code(1)
        .stdout(predicates::str::starts_with(
            "::error file=-,line=3,title=dbguard drop_schema::",
        ));
}

#[test]
fn unterminated_input_exits_two() {
    dbguard()
        .args(["scan", "-"])
        .write_stdin("SELECT 'abc")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("quoted string"));
}

#[test]
fn non_utf8_input_is_not_an_error() {
    dbguard()
        .args(["scan", "-"])
        .write_stdin(&b"SELECT '\xff\xfe\x80';\n"[..])
        .assert()
        .code(0);
}

#[test]
fn no_color_and_pipes_get_plain_text() {
    dbguard()
        .env_remove("NO_COLOR")
        .args(["scan", "-"])
        .write_stdin("DROP TABLE t;")
        .assert()
        .code(1)
        .stdout(predicates::str::contains("\x1b[").not());
}

#[test]
fn bad_format_is_a_usage_error() {
    dbguard()
        .args(["scan", "--format", "xml", "-"])
        .write_stdin("")
        .assert()
        .code(2);
}

#[test]
fn include_fan_out_is_bounded() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Each level includes the next four times: 4^12 scans without a budget.
    for n in 0..12 {
        let next = format!("\\i f{}.sql\n", n + 1).repeat(4);
        std::fs::write(dir.path().join(format!("f{n}.sql")), next).expect("write");
    }
    std::fs::write(dir.path().join("f12.sql"), "SELECT 1;\n").expect("write");
    let mut scanner = Scanner::new(dir.path());
    scanner.scan_path(Path::new("f0.sql"));
    let report = scanner.finish();
    assert!(report.has_errors());
    assert!(
        report.problems[0].message.contains("includes in one scan"),
        "{:?}",
        report.problems
    );
}

#[test]
fn names_from_a_cut_statement_are_unknown() {
    let mut sql = b"DROP TABLE ".to_vec();
    for n in 0..200_000 {
        sql.extend_from_slice(format!("t{n}, ").as_bytes());
    }
    sql.extend_from_slice(b"last;");
    let report = scan(&sql);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].kind, Kind::DropTable);
    assert_eq!(report.findings[0].objects, Vec::<String>::new());
    assert!(report.findings[0].statement.ends_with('…'));
}

// ---------------------------------------------- kinds checked on the server

/// Runs `script` with the real psql (no dbguard) on `db`, as a file, with
/// ON_ERROR_STOP so that a statement the server refuses fails the test.
fn run_on_server(db: &crate::support::TestDb, script: &str) -> String {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("script.sql");
    std::fs::write(&path, script).expect("write");
    let out = std::process::Command::new(crate::support::cluster().client("psql"))
        .envs(db.env())
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One statement of a kind the classifier learned, the finding expected
/// from it, and what the server shows after running it: `check` is a query
/// whose answer is `after` once the statement ran (it is `before` first).
struct ServerCase {
    sql: &'static str,
    finding: Option<(Kind, &'static [&'static str])>,
    check: &'static str,
    before: &'static str,
    after: &'static str,
}

const SETUP: &str = "CREATE TABLE t (id int PRIMARY KEY, a text);\n\
    INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g;\n\
    CREATE TABLE s AS SELECT * FROM t;\n";

const SERVER_CASES: &[ServerCase] = &[
    ServerCase {
        sql: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE;",
        finding: Some((Kind::DeleteAll, &["t"])),
        check: "SELECT count(*) FROM t",
        before: "5",
        after: "0",
    },
    ServerCase {
        sql: "MERGE INTO t USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET a = 'x';",
        finding: Some((Kind::UpdateAll, &["t"])),
        check: "SELECT count(*) FROM t WHERE a = 'x'",
        before: "0",
        after: "5",
    },
    ServerCase {
        // An upsert by key changes the rows the source names, and only
        // those: not every row.
        sql: "MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id \
              WHEN MATCHED THEN UPDATE SET a = 'x' WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'n');",
        finding: None,
        check: "SELECT count(*) FROM t WHERE a = 'x'",
        before: "0",
        after: "1",
    },
    ServerCase {
        sql: "COPY (DELETE FROM t RETURNING *) TO STDOUT;",
        finding: Some((Kind::DeleteAll, &["t"])),
        check: "SELECT count(*) FROM t",
        before: "5",
        after: "0",
    },
    ServerCase {
        sql: "\\copy (delete from t returning *) to '/dev/null'",
        finding: Some((Kind::DeleteAll, &["t"])),
        check: "SELECT count(*) FROM t",
        before: "5",
        after: "0",
    },
    ServerCase {
        sql: "CREATE TABLE kept AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d;",
        finding: Some((Kind::DeleteAll, &["t"])),
        check: "SELECT count(*) FROM t",
        before: "5",
        after: "0",
    },
    ServerCase {
        sql: "WITH u AS (UPDATE t SET a = NULL RETURNING *) SELECT * INTO kept FROM u;",
        finding: Some((Kind::UpdateAll, &["t"])),
        check: "SELECT count(a) FROM t",
        before: "5",
        after: "0",
    },
    ServerCase {
        sql: "DROP TABLE U&\"!0074\" UESCAPE '!';",
        finding: Some((Kind::DropTable, &["t"])),
        check: "SELECT to_regclass('t') IS NULL",
        before: "f",
        after: "t",
    },
    ServerCase {
        sql: "ALTER TABLE t ALTER COLUMN a TYPE int USING 0;",
        finding: Some((Kind::DropColumn, &["t.a"])),
        check: "SELECT count(*) FROM t WHERE a::text LIKE 'v%'",
        before: "5",
        after: "0",
    },
    ServerCase {
        // A conversion of the old values keeps them.
        sql: "ALTER TABLE t ALTER COLUMN a TYPE varchar(10) USING upper(a);",
        finding: None,
        check: "SELECT count(*) FROM t WHERE a ILIKE 'v%'",
        before: "5",
        after: "5",
    },
    ServerCase {
        sql: "DELETE FROM t WHERE 1 = 0;",
        finding: None,
        check: "SELECT count(*) FROM t",
        before: "5",
        after: "5",
    },
    ServerCase {
        sql: "UPDATE t SET a = NULL WHERE false;",
        finding: None,
        check: "SELECT count(a) FROM t",
        before: "5",
        after: "5",
    },
];

#[test]
fn new_kinds_match_what_the_server_does() {
    for case in SERVER_CASES {
        let got: Vec<(Kind, Vec<String>)> = scan(case.sql.as_bytes())
            .findings
            .into_iter()
            .map(|f| (f.kind, f.objects))
            .collect();
        let expected: Vec<(Kind, Vec<String>)> = case
            .finding
            .iter()
            .map(|(k, o)| (*k, o.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(got, expected, "{}", case.sql);

        let db = crate::support::cluster().create_db("server kinds");
        run_on_server(&db, SETUP);
        assert_eq!(db.sql(case.check), case.before, "{}", case.sql);
        run_on_server(&db, &format!("{}\n", case.sql));
        assert_eq!(db.sql(case.check), case.after, "{}", case.sql);
    }
}

#[test]
fn sql_handed_to_dblink_is_external_and_runs() {
    let sql = "SELECT dblink_exec(format('host=%s port=%s dbname=%s user=postgres', \
        split_part(current_setting('unix_socket_directories'), ',', 1), \
        current_setting('port'), current_database()), 'DELETE FROM t');";
    let report = scan(sql.as_bytes());
    let got: Vec<(Kind, Option<Kind>)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.implied))
        .collect();
    assert_eq!(got, vec![(Kind::External, Some(Kind::DeleteAll))]);
    assert_eq!(report.findings[0].verb(), "DELETE");

    let db = crate::support::cluster().create_db("dblink");
    run_on_server(&db, SETUP);
    run_on_server(&db, "CREATE EXTENSION dblink;");
    run_on_server(&db, sql);
    assert_eq!(db.sql("SELECT count(*) FROM t"), "0");
}

#[test]
fn a_backslash_command_string_ignores_the_sql_after_it() {
    // psql's own reading first: the DROP after `\\` in a -c string that
    // starts with a backslash never reaches the server.
    let db = crate::support::cluster().create_db("single meta");
    run_on_server(&db, SETUP);
    let command = "\\echo hi \\\\ DROP TABLE t";
    let out = std::process::Command::new(crate::support::cluster().client("psql"))
        .envs(db.env())
        .args(["-X", "-c", command])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(db.sql("SELECT count(*) FROM t"), "5");

    let mut scanner = Scanner::new("/");
    scanner.scan_command("-c", command.as_bytes(), Path::new("/"));
    assert_eq!(scanner.finish().findings, vec![]);
    let mut scanner = Scanner::new("/");
    scanner.scan_command("-c", b"SELECT 1; DROP TABLE t", Path::new("/"));
    assert_eq!(scanner.finish().findings.len(), 1);
}

#[test]
fn a_drop_after_a_create_that_may_fail_reaches_the_older_table() {
    // Why a CREATE earlier in the script exempts a DROP only when a failed
    // CREATE stops the script: without ON_ERROR_STOP, psql carries on and
    // the DROP removes the table that was there before.
    let script = "CREATE TABLE t (id int);\nDROP TABLE t;\n";
    assert_eq!(found(script.as_bytes()), vec![(2, Kind::DropTable)]);
    let db = crate::support::cluster().create_db("create may fail");
    run_on_server(&db, SETUP);
    let out = std::process::Command::new(crate::support::cluster().client("psql"))
        .envs(db.env())
        .args(["-X", "-q", "-c", "SELECT 1"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("x.sql"), script).expect("write");
    let out = std::process::Command::new(crate::support::cluster().client("psql"))
        .envs(db.env())
        .args(["-X", "-q", "-f"])
        .arg(dir.path().join("x.sql"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(db.sql("SELECT to_regclass('t') IS NULL"), "t");

    // With ON_ERROR_STOP the failed CREATE ends the script first.
    let stopped = format!("\\set ON_ERROR_STOP on\n{script}");
    let report = scan(stopped.as_bytes());
    assert_eq!(report.findings, vec![]);
    assert_eq!(report.created_here.len(), 1);
    assert!(report.created_here[0].created_in_input);
    let db = crate::support::cluster().create_db("create stops");
    run_on_server(&db, SETUP);
    std::fs::write(dir.path().join("y.sql"), &stopped).expect("write");
    let out = std::process::Command::new(crate::support::cluster().client("psql"))
        .envs(db.env())
        .args(["-X", "-q", "-f"])
        .arg(dir.path().join("y.sql"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(!out.status.success());
    assert_eq!(db.sql("SELECT count(*) FROM t"), "5");
}

#[test]
fn scan_exempts_tables_the_script_creates_and_follows_tilde_and_stdin() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("setup.sql"),
        "\\set ON_ERROR_STOP on\nCREATE TABLE scratch (a int);\n\\i ~/more.sql\n\\i /dev/stdin\nDROP TABLE scratch;\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("more.sql"), "TRUNCATE scratch;\n").expect("write");
    dbguard()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args(["scan", "setup.sql"])
        .write_stdin("SELECT 1;\n")
        .assert()
        .code(0)
        .stdout("no destructive statements in 4 statements\n");
    dbguard()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .args(["scan", "--format", "json", "setup.sql"])
        .write_stdin("DELETE FROM users;\n")
        .assert()
        .code(1)
        .stdout(predicates::str::contains("\"kind\": \"delete_all\""))
        .stdout(predicates::str::contains("\"path\": \"/dev/stdin\""));
}

fn new_kinds_report() -> ScanReport {
    let sql = "MERGE INTO orders o USING gone g ON o.id = g.id WHEN MATCHED THEN DELETE;\n\
        COPY (DELETE FROM sessions RETURNING *) TO STDOUT;\n\
        SELECT dblink_exec('dbname=archive', 'TRUNCATE events');\n\
        COPY logs TO PROGRAM 'gzip > /tmp/logs.gz';\n\
        DROP TABLE U&\"\\0075sers\";\n\
        ALTER TABLE accounts ALTER COLUMN balance TYPE numeric USING 0;\n\
        DELETE FROM audit WHERE false;\n\
        DROP TABLE IF EXISTS old_audit;\n";
    let mut scanner = Scanner::new("/nonexistent-dir");
    scanner.scan_bytes("kinds.sql", sql.as_bytes(), Path::new("/nonexistent-dir"));
    scanner.finish()
}

#[test]
fn text_report_of_new_kinds() {
    insta::assert_snapshot!(render(Format::Text, &new_kinds_report(), false));
}

#[test]
fn json_report_of_new_kinds() {
    let rendered = render(Format::Json, &new_kinds_report(), false);
    let value: serde_json::Value = serde_json::from_str(&rendered).expect("valid JSON");
    let kinds: Vec<&str> = value["findings"]
        .as_array()
        .expect("findings is a list")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind is a string"))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "delete_all",
            "delete_all",
            "external",
            "external",
            "drop_table",
            "drop_column",
            "drop_table"
        ]
    );
    insta::assert_snapshot!(rendered);
}

#[test]
fn drop_if_exists_is_marked() {
    let report = new_kinds_report();
    let marked: Vec<bool> = report.findings.iter().map(|f| f.if_exists).collect();
    assert_eq!(marked, vec![false, false, false, false, false, false, true]);
}

#[test]
fn created_here_is_claimed_only_when_the_older_table_survives() {
    // Each script meets a table `t` that already holds five rows. The
    // scanner may set a DROP or TRUNCATE apart as "created here" only when
    // the server, running the script as psql does, leaves that table whole.
    let scripts = [
        "CREATE TABLE t (id int);\nDROP TABLE t;\n",
        "\\set ON_ERROR_STOP on\nCREATE TABLE t (id int);\nDROP TABLE t;\n",
        "\\set ON_ERROR_STOP on\nCREATE TABLE t (id int);\nTRUNCATE t;\n",
        "BEGIN;\nCREATE TABLE t (id int);\nDROP TABLE t;\nCOMMIT;\n",
        "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\nDROP TABLE t;\n",
        "\\set ON_ERROR_ROLLBACK on\nBEGIN;\nCREATE TABLE t (id int);\nDROP TABLE t;\nCOMMIT;\n",
        "\\set ON_ERROR_STOP on\nCREATE TABLE IF NOT EXISTS t (id int);\nDROP TABLE t;\n",
    ];
    let dir = tempfile::tempdir().expect("a temp dir");
    for script in scripts {
        let report = scan(script.as_bytes());
        let claimed = report.findings.is_empty() && !report.created_here.is_empty();
        assert!(claimed || !report.findings.is_empty(), "{script}");

        let db = crate::support::cluster().create_db("created here");
        run_on_server(&db, SETUP);
        std::fs::write(dir.path().join("x.sql"), script).expect("write");
        // The script's own settings decide whether psql stops on an error.
        std::process::Command::new(crate::support::cluster().client("psql"))
            .envs(db.env())
            .args(["-X", "-q", "-f"])
            .arg(dir.path().join("x.sql"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run psql");
        let survives = db.sql("SELECT to_regclass('t') IS NOT NULL") == "t"
            && db.sql("SELECT count(*) FROM t") == "5";
        assert_eq!(claimed, survives, "{script}");
    }
}

#[test]
fn copy_program_is_external_and_runs_a_command_on_the_server() {
    // The server, not psql, runs the command: it writes where the server
    // runs (a name in /tmp, which every user may write).
    let written = std::env::temp_dir().join(format!(
        "dbguard-copy-program-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos()
    ));
    let sql = format!("COPY (SELECT 42) TO PROGRAM 'cat > {}';", written.display());
    let report = scan(sql.as_bytes());
    let got: Vec<(Kind, Option<Kind>, &str)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.implied, f.verb()))
        .collect();
    assert_eq!(got, vec![(Kind::External, None, "RUN")]);

    let db = crate::support::cluster().create_db("copy program");
    run_on_server(&db, &sql);
    let contents = std::fs::read_to_string(&written).expect("the server ran the command");
    assert_eq!(contents, "42\n");
    let _ = std::fs::remove_file(&written);
}
