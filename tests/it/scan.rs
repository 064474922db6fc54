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
