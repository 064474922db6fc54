//! The differential test: scripts run through the shimmed psql against the
//! real cluster with `log_statement = 'all'` on their database, and the
//! server, not dbguard, says what happened. For every idiom:
//!
//! - run unguarded (`DBGUARD_BYPASS=1`), the server's log shows the
//!   destructive statement and the table is gone: the idiom really
//!   destroys, and the log reader really sees it;
//! - run guarded with no terminal to ask on, the log shows no destructive
//!   statement on the table and the table is intact: what was refused
//!   never reached the server;
//! - run guarded with `DBGUARD_YES=1` or a person typing the word on a
//!   pseudo-terminal, the log shows the backup's `COPY … TO stdout` of the
//!   table before the statement that destroys it.
//!
//! Each run gets a database of its own holding `victim` (100 rows).
//!
//! The first stage they run is the one psql gets from an installed dbguard:
//! the release build (`support::sandbox` builds it).

use std::path::PathBuf;

use expectrl::Expect;

use crate::support::guarded::{self, audit_lines, backups, without_terminal};
use crate::support::sandbox::{capture, write_file};
use crate::support::{Output, Sandbox, TestDb, cluster};

/// How a run is guarded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// `DBGUARD_BYPASS=1`: no guard at all.
    Bypass,
    /// Guarded, no terminal, no `DBGUARD_YES`: everything must be refused.
    Refuse,
    /// Guarded, `DBGUARD_YES=1`: confirmed without a terminal, backed up.
    Yes,
}

/// One idiom: files written into the sandbox directory (`~/` names go to
/// the sandbox's HOME), psql's arguments, extra environment, stdin, and
/// settings of the database.
#[derive(Default, Clone)]
struct Idiom {
    files: Vec<(String, Vec<u8>)>,
    args: Vec<Vec<u8>>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    database_settings: Vec<&'static str>,
}

impl Idiom {
    fn new(args: &[&str]) -> Idiom {
        Idiom {
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ..Idiom::default()
        }
    }

    fn file(mut self, name: &str, text: impl AsRef<[u8]>) -> Idiom {
        self.files.push((name.to_owned(), text.as_ref().to_vec()));
        self
    }

    fn env(mut self, key: &str, value: &str) -> Idiom {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn stdin(mut self, text: &str) -> Idiom {
        self.stdin = Some(text.as_bytes().to_vec());
        self
    }

    fn setting(mut self, setting: &'static str) -> Idiom {
        self.database_settings.push(setting);
        self
    }
}

/// What one run left behind.
struct Run {
    db: TestDb,
    /// Kept alive: its directory holds the backup store.
    _sandbox: Sandbox,
    out: Output,
    /// The statements the server logged for the run's database, in order.
    logged: Vec<String>,
    store: PathBuf,
}

impl Run {
    fn victim_rows(&self) -> Option<i64> {
        let exists = self
            .db
            .sql("select to_regclass('public.victim') is not null");
        (exists == "t").then(|| {
            self.db
                .sql("select count(*) from victim")
                .parse()
                .expect("a count")
        })
    }

    /// The logged statements that destroy rows or the table `victim`.
    fn destroying(&self, table: &str) -> Vec<&String> {
        self.logged.iter().filter(|s| destroys(s, table)).collect()
    }

    fn context(&self) -> String {
        format!(
            "status {}\nstderr:\n{}\nlogged:\n{}",
            self.out.status,
            self.out.stderr_str(),
            self.logged.join("\n---\n")
        )
    }
}

fn fresh_db(hint: &str, settings: &[&str]) -> TestDb {
    let db = cluster().create_db(hint);
    db.sql(
        "create table victim (id int primary key, note text, created_at timestamptz default now() - interval '1 year');
         insert into victim (id) select g from generate_series(1, 100) g;
         create table victim_copy as select * from victim where id <= 3;
         create table single (id int primary key);
         insert into single values (1);",
    );
    let mut all = vec!["log_statement = 'all'"];
    all.extend_from_slice(settings);
    for setting in all {
        db.sql(&format!("alter database \"{}\" set {setting}", db.name));
    }
    db
}

/// The first stage the shim preloads: built as it ships, beside the binary.
fn first_stage_under_test() -> PathBuf {
    crate::support::sandbox::install_preload_beside_binary();
    crate::support::sandbox::dbguard_bin().with_file_name("libdbguard_preload.so")
}

fn run(hint: &str, idiom: &Idiom, mode: Mode) -> Run {
    let db = fresh_db(hint, &idiom.database_settings);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    match mode {
        Mode::Bypass => {
            sandbox.set("DBGUARD_BYPASS", "1");
        }
        Mode::Yes => {
            sandbox.set("DBGUARD_YES", "1");
        }
        Mode::Refuse => {}
    }
    for (k, v) in &idiom.env {
        sandbox.set(k, &expand(&sandbox, v));
    }
    write_files(&sandbox, &idiom.files);
    let mut cmd = sandbox.shim("psql");
    for arg in &idiom.args {
        cmd.arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(arg));
    }
    let out = without_terminal(&mut cmd, idiom.stdin.as_deref());
    let logged = logged_statements(&db.name);
    Run {
        db,
        _sandbox: sandbox,
        out,
        logged,
        store,
    }
}

/// `~/x` in a value names a file in the sandbox's HOME.
fn expand(sandbox: &Sandbox, value: &str) -> String {
    match value.strip_prefix("~/") {
        Some(rest) => sandbox.home.join(rest).display().to_string(),
        None => value.to_owned(),
    }
}

fn write_files(sandbox: &Sandbox, files: &[(String, Vec<u8>)]) {
    for (name, text) in files {
        let path = match name.strip_prefix("~/") {
            Some(rest) => sandbox.home.join(rest),
            None => sandbox.dir.path().join(name),
        };
        write_file(&path, text);
    }
}

/// The statements the server logged for `db` (`log_statement`), in order:
/// simple queries (`statement: `) and extended-protocol executions
/// (`execute NAME: `). A logged statement may span several lines; the
/// lines after the first carry no prefix.
fn logged_statements(db: &str) -> Vec<String> {
    let log = std::fs::read(cluster().server_log()).expect("read the server log");
    let log = String::from_utf8_lossy(&log);
    let prefix = format!("@{db}@");
    let mut entries: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if line.starts_with('@') {
            entries.extend(current.take());
            if let Some(rest) = line.strip_prefix(&prefix) {
                current = Some(rest.to_owned());
            }
        } else if let Some(entry) = current.as_mut() {
            entry.push('\n');
            entry.push_str(line);
        }
    }
    entries.extend(current);
    entries
        .into_iter()
        .filter_map(|e| {
            let body = e.split_once("LOG:  ")?.1;
            if let Some(text) = body.strip_prefix("statement: ") {
                return Some(text.to_owned());
            }
            let text = body.strip_prefix("execute ")?;
            Some(text.split_once(": ")?.1.to_owned())
        })
        .collect()
}

/// True when a logged query string holds a statement that destroys
/// `table` or its rows: one of its `;`-separated pieces, comments and
/// whitespace skipped, opens with DROP TABLE, TRUNCATE, DELETE FROM or
/// UPDATE of it. The refusal dbguard sends instead of a statement
/// (`DO $dbguard$ … RAISE …`) names the statement in its message and
/// runs nothing.
fn destroys(logged: &str, table: &str) -> bool {
    let lower = logged.to_lowercase();
    if lower.trim_start().starts_with("do $dbguard$") {
        return false;
    }
    lower.split(';').any(|piece| {
        let words = without_comments(piece)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let heads = [
            format!("drop table {table}"),
            format!("drop table if exists {table}"),
            format!("truncate {table}"),
            format!("truncate table {table}"),
            format!("delete from {table}"),
            format!("update {table}"),
        ];
        heads.iter().any(|h| {
            words
                .strip_prefix(h.as_str())
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `idiom` three ways (see the file's header) and checks each.
fn differential(hint: &str, idiom: Idiom) {
    let bypass = run(&format!("{hint}_bypass"), &idiom, Mode::Bypass);
    assert!(
        !bypass.destroying("victim").is_empty(),
        "unguarded, the idiom must reach the server (else it tests nothing)\n{}",
        bypass.context()
    );
    assert_ne!(bypass.victim_rows(), Some(100), "{}", bypass.context());

    let refused = run(&format!("{hint}_refused"), &idiom, Mode::Refuse);
    assert!(
        refused.destroying("victim").is_empty(),
        "refused, yet the server ran it\n{}",
        refused.context()
    );
    assert_eq!(refused.victim_rows(), Some(100), "{}", refused.context());
    assert!(
        refused.out.stderr_str().contains("dbguard"),
        "the refusal says why\n{}",
        refused.context()
    );
    assert!(backups(&refused.store).is_empty());

    let confirmed = run(&format!("{hint}_yes"), &idiom, Mode::Yes);
    assert_backed_up_first(&confirmed);
}

/// Every destructive statement on `victim` the server ran came after a
/// backup of it (pg_dump's `COPY public.victim … TO stdout` in the same
/// log), and the audit log says it was confirmed.
fn assert_backed_up_first(run: &Run) {
    let first_destroying = run
        .logged
        .iter()
        .position(|s| destroys(s, "victim"))
        .unwrap_or_else(|| panic!("confirmed, it runs\n{}", run.context()));
    let first_copy = run
        .logged
        .iter()
        .position(|s| s.contains("COPY public.victim ") && s.contains("TO stdout"));
    assert!(
        first_copy.is_some_and(|c| c < first_destroying),
        "the backup comes before the statement\n{}",
        run.context()
    );
    assert!(!backups(&run.store).is_empty(), "{}", run.context());
    let audit = audit_lines(&run.store);
    assert!(
        audit.iter().any(|a| a["decision"] == "confirmed"),
        "{audit:?}"
    );
}

#[test]
fn differential_a_set_chosen_by_if_on_a_v_variable() {
    let script = "\\if :dry_run\n  \\set action 'select 1'\n\\else\n  \\set action 'drop table victim'\n\\endif\n:action;\n";
    differential(
        "diff_if_set",
        Idiom::new(&["-v", "dry_run=false", "-f", "s.sql"]).file("s.sql", script),
    );
}

#[test]
fn differential_a_variable_overwritten_by_gset() {
    let script = "\\set q 'select 1'\nselect 'drop table victim' as q \\gset\n:q;\n";
    differential(
        "diff_gset",
        Idiom::new(&["-f", "s.sql"]).file("s.sql", script),
    );
}

#[test]
fn differential_a_variable_overwritten_by_prompt() {
    // Without a terminal psql's \prompt reads stdin.
    let script = "\\set q 'select 1'\n\\prompt 'table? ' q\n:q;\n";
    differential(
        "diff_prompt",
        Idiom::new(&["-f", "s.sql"])
            .file("s.sql", script)
            .stdin("drop table victim\n"),
    );
}

#[test]
fn differential_a_file_written_by_o_then_included() {
    let script = "\\o gen.sql\nselect 'drop table victim;';\n\\o\n\\i gen.sql\n";
    differential(
        "diff_o_include",
        Idiom::new(&["-A", "-t", "-f", "s.sql"])
            .file("s.sql", script)
            .file("gen.sql", "select 1;\n"),
    );
}

#[test]
fn differential_a_file_written_by_a_shell_command_then_included() {
    let script = "\\! echo 'drop table victim;' > gen.sql\n\\i gen.sql\n";
    differential(
        "diff_shell_include",
        Idiom::new(&["-f", "s.sql"])
            .file("s.sql", script)
            .file("gen.sql", "select 1;\n"),
    );
}

#[test]
fn differential_a_psqlrc_named_by_psqlrc() {
    differential(
        "diff_psqlrc_env",
        Idiom::new(&["-c", "select 1"])
            .file("rc", "drop table victim;\n")
            .env("PSQLRC", "rc"),
    );
}

#[test]
fn differential_a_versioned_psqlrc_in_home() {
    differential(
        "diff_psqlrc_versioned",
        Idiom::new(&["-c", "select 1"]).file(
            &format!("~/.psqlrc-{}", psql_major()),
            "drop table victim;\n",
        ),
    );
}

#[test]
fn differential_single_line_mode() {
    // With -S a newline ends a statement: two statements, not one.
    differential(
        "diff_single_line",
        Idiom::new(&["-S", "-f", "s.sql"]).file("s.sql", "select 1\ndrop table victim\n"),
    );
}

#[test]
fn differential_standard_conforming_strings_off() {
    // With the setting off the server reads 'a\'' as one string: the DROP
    // is code. Read with the setting on, it hides inside a second string.
    differential(
        "diff_scs_off",
        Idiom::new(&["-c", "select 'a\\''; drop table victim; --'"])
            .setting("standard_conforming_strings = off"),
    );
}

#[test]
fn differential_a_sjis_character_ending_in_a_backslash_byte() {
    // 0x95 0x5C is one SJIS character: the quote after it closes the
    // string. Read byte by byte, 0x5C escapes the quote instead.
    let sql = b"select E'\x95\x5c'; drop table victim; --'".to_vec();
    let mut idiom = Idiom::new(&["-c"]).env("PGCLIENTENCODING", "SJIS");
    idiom.args.push(sql);
    differential("diff_sjis", idiom);
}

#[test]
fn differential_a_big5_character_ending_in_a_backslash_byte() {
    let mut idiom = Idiom::new(&["-c"]).env("PGCLIENTENCODING", "BIG5");
    idiom
        .args
        .push(b"select E'\xa5\x5c'; drop table victim; --'".to_vec());
    differential("diff_big5", idiom);
}

#[test]
fn differential_a_failed_copy_runs_its_data_as_sql() {
    let script = "copy no_such_table from stdin;\ndrop table victim;\n\\.\n";
    differential(
        "diff_failed_copy",
        Idiom::new(&["-f", "s.sql"]).file("s.sql", script),
    );
}

#[test]
fn differential_rollback_and_drop_in_one_string_after_a_failed_transaction() {
    // `\;` sends both statements as one string, in a failed transaction.
    let rc = "begin;\nselect 1/0;\nrollback \\; drop table victim;\n";
    differential(
        "diff_failed_tx",
        Idiom::new(&["-c", "select 1"])
            .file("rc", rc)
            .env("PSQLRC", "rc"),
    );
}

#[test]
fn differential_a_maintenance_script_whose_delete_takes_every_row() {
    // Every row is older than 30 days. Analysed by the script itself, so
    // only an estimate made when the DELETE is sent sees it.
    let script = "\\set ON_ERROR_STOP on\nvacuum analyze victim;\ndelete from victim where created_at < now() - interval '30 days';\n";
    differential(
        "diff_maintenance",
        Idiom::new(&["-f", "s.sql"]).file("s.sql", script),
    );
}

#[test]
fn differential_a_delete_of_every_row_of_a_never_analysed_table() {
    // Without statistics the planner guesses a third of a made-up size;
    // the table is small, so it is counted exactly: all 100 rows go.
    let script = "delete from victim where created_at < now() - interval '30 days';\n";
    let idiom = Idiom::new(&["-f", "s.sql"]).file("s.sql", script);
    let refused = run("diff_unanalysed_kind", &idiom, Mode::Refuse);
    assert!(
        refused.out.stderr_str().contains("delete_bulk victim"),
        "{}",
        refused.context()
    );
    differential("diff_unanalysed", idiom);
}

#[test]
fn differential_a_generated_drop_script() {
    let script = "select format('drop table %I;', tablename) from pg_tables\n where schemaname = 'public' and tablename like 'vict%' \\gexec\n";
    differential(
        "diff_generated_drop",
        Idiom::new(&["-f", "s.sql"]).file("s.sql", script),
    );
}

/// Typed on a terminal: a statement the pre-flight could not see (it is in
/// the psqlrc) is asked about when psql sends it, backed up, then run; a
/// wrong word keeps it from the server.
#[test]
fn differential_on_a_terminal_the_live_question_decides() {
    for (word, runs) in [("DROP", true), ("no", false)] {
        let db = fresh_db(&format!("diff_pty_{runs}"), &[]);
        let mut sandbox = Sandbox::psql_only().with_db(&db);
        let store = guarded::use_store(&mut sandbox);
        let rc = sandbox.dir.path().join("rc");
        write_file(&rc, "drop table victim;\n");
        sandbox.set("PSQLRC", rc.to_str().expect("utf-8 path"));
        let shim = sandbox.shims.join("psql");
        let mut p = guarded::on_terminal(&sandbox, &shim, &["-c", "select 1"], None, None);
        p.expect("Type \"DROP\"").expect("asked on the terminal");
        p.send_line(word).expect("type");
        p.expect(expectrl::Eof).expect("psql ends");
        let logged = logged_statements(&db.name);
        let run = Run {
            db,
            _sandbox: sandbox,
            out: Output {
                stdout: Vec::new(),
                stderr: Vec::new(),
                status: guarded::exit_code(&mut p),
            },
            logged,
            store,
        };
        if runs {
            assert_backed_up_first(&run);
            assert_eq!(run.victim_rows(), None, "{}", run.context());
        } else {
            assert!(run.destroying("victim").is_empty(), "{}", run.context());
            assert_eq!(run.victim_rows(), Some(100), "{}", run.context());
        }
    }
}

/// No false alarm: a table the session itself created is dropped without
/// a question (there is no terminal here), a one-row fix by key runs, and
/// the server ran both. The psqlrc is seen only by the library.
#[test]
fn differential_own_tables_and_keyed_fixes_run_unasked() {
    let rc = "create table scratch (a int);\ninsert into scratch values (1);\ndrop table scratch;\ntruncate victim_copy;\n";
    // The only row of `single`, by its key: one row is never bulk, though
    // it is all of the table.
    let idiom = Idiom::new(&[
        "-c",
        "update victim set note = 'fixed' where id = 7",
        "-c",
        "delete from single where id = 1",
    ])
    .file("rc", rc)
    .env("PSQLRC", "rc");
    let run = run("diff_own_tables", &idiom, Mode::Refuse);
    assert!(
        run.logged.iter().any(|s| destroys(s, "scratch")),
        "{}",
        run.context()
    );
    assert!(
        run.destroying("victim_copy").is_empty(),
        "a table the session did not create is still asked about\n{}",
        run.context()
    );
    assert_eq!(
        run.db.sql("select count(*) from victim_copy"),
        "3",
        "{}",
        run.context()
    );
    assert_eq!(
        run.db.sql("select note from victim where id = 7"),
        "fixed",
        "{}",
        run.context()
    );
    assert_eq!(
        run.db.sql("select count(*) from single"),
        "0",
        "{}",
        run.context()
    );
    assert!(backups(&run.store).is_empty());
}

/// `CREATE TABLE IF NOT EXISTS` over an existing table created nothing:
/// dropping that table afterwards is still asked about, whether the
/// server's notice that it skipped reaches the session or not.
#[test]
fn differential_create_if_not_exists_over_an_existing_table_exempts_nothing() {
    let script =
        "create table if not exists victim (id int);\nselect 'drop table victim' \\gexec\n";
    differential(
        "diff_if_not_exists",
        Idiom::new(&["-f", "s.sql"]).file("s.sql", script),
    );
    differential(
        "diff_if_not_exists_quiet",
        Idiom::new(&["-f", "s.sql"])
            .file("s.sql", script)
            .setting("client_min_messages = warning"),
    );
}

/// No false alarm: a `CREATE TABLE IF NOT EXISTS` that really created its
/// table (the server sent no "already exists, skipping") makes the table
/// the session's own, so dropping or truncating it later runs unasked
/// (there is no terminal here). The psqlrc is seen only by the library.
#[test]
fn differential_a_table_created_if_not_exists_is_the_sessions_own() {
    let rc = "create table if not exists scratch (a int);\ninsert into scratch values (1);\ntruncate scratch;\ndrop table scratch;\n";
    let idiom = Idiom::new(&["-c", "select 1"])
        .file("rc", rc)
        .env("PSQLRC", "rc");
    let run = run("diff_if_not_exists_own", &idiom, Mode::Refuse);
    let truncated = run
        .logged
        .iter()
        .position(|s| s.trim_end_matches(';') == "truncate scratch");
    let dropped = run
        .logged
        .iter()
        .position(|s| s.trim_end_matches(';') == "drop table scratch");
    assert!(
        truncated.is_some() && dropped.is_some(),
        "the server ran both\n{}",
        run.context()
    );
    assert_eq!(
        run.db.sql("select to_regclass('public.scratch') is null"),
        "t",
        "{}",
        run.context()
    );
    assert!(
        !run.out.stderr_str().contains("dbguard"),
        "nothing was refused\n{}",
        run.context()
    );
    assert!(backups(&run.store).is_empty());
}

/// Regression: a confirmed statement shown shortened (over 200
/// characters) or longer than the scanner keeps (1 MiB) had no key, so the
/// library protected it a second time: a second backup, and on a terminal
/// a second question. Confirmed once (`DBGUARD_YES=1`), it is backed up
/// once, and the server runs it.
#[test]
fn differential_a_long_confirmed_statement_is_protected_once() {
    for (hint, padding) in [("diff_long_300", 300), ("diff_long_mib", (1 << 20) + 64)] {
        let script = format!("drop table victim /* {} */;\n", "x".repeat(padding));
        let idiom = Idiom::new(&["-X", "-f", "s.sql"]).file("s.sql", script);
        let run = run(hint, &idiom, Mode::Yes);
        assert_backed_up_first(&run);
        assert_eq!(run.victim_rows(), None, "{}", run.context());
        assert_eq!(backups(&run.store).len(), 1, "{}", run.context());
        let confirmed = audit_lines(&run.store)
            .iter()
            .filter(|a| a["decision"] == "confirmed")
            .count();
        assert_eq!(confirmed, 1, "{}", run.context());
    }
}

/// The major version of the psql on PATH (`~/.psqlrc-NN`).
fn psql_major() -> String {
    let out = capture(
        std::process::Command::new(cluster().client("psql")).arg("--version"),
        None,
    );
    let text = out.stdout_str();
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .expect("psql --version names a version");
    version.split('.').next().unwrap_or(version).to_owned()
}

#[test]
fn the_log_reader_sees_destruction_and_only_destruction() {
    assert!(destroys("DROP TABLE victim", "victim"));
    assert!(destroys("select 1; -- x\n  drop   table victim;", "victim"));
    assert!(destroys("update victim set a = 1", "victim"));
    assert!(!destroys("drop table victim_other", "victim"));
    assert!(!destroys(
        "DO $dbguard$ BEGIN RAISE EXCEPTION USING MESSAGE = E'drop table victim'; END $dbguard$",
        "victim"
    ));
    assert!(!destroys(
        "EXPLAIN (FORMAT JSON) DELETE FROM victim WHERE id > 1",
        "victim"
    ));
}

/// The first stage (`libdbguard_preload.so`) loads the check only for a
/// string that may be destructive. Without a loadable check beside it
/// (missing, or not a library) it fails closed: the harmless query runs,
/// the DROP that only psql knows of (a variable set by `\gset`) is refused
/// with the reason, even under `DBGUARD_YES=1`, and never reaches the
/// server.
#[test]
fn differential_the_first_stage_alone_refuses_what_may_destroy_and_runs_the_rest() {
    let first_stage = first_stage_under_test();
    let first_stage =
        std::fs::read(&first_stage).unwrap_or_else(|e| panic!("{}: {e}", first_stage.display()));
    let script = "select 40 + 2 as harmless;\nselect 'drop table victim' as q \\gset\n:q;\nselect 'not reached';\n";
    let alone = Idiom::new(&["-X", "-v", "ON_ERROR_STOP=1", "-f", "s.sql"])
        .file("s.sql", script)
        .file("~/libdbguard_preload.so", &first_stage)
        .env("DBGUARD_PRELOAD", "~/libdbguard_preload.so");
    let unloadable = alone
        .clone()
        .file("~/libdbguard_check.so", "not a shared object\n");
    for (hint, idiom, why) in [
        ("stage_missing", alone, "libdbguard_check.so"),
        ("stage_unloadable", unloadable, "could not be loaded"),
    ] {
        let run = run(hint, &idiom, Mode::Yes);
        let stderr = run.out.stderr_str();
        assert!(
            run.out.stdout_str().contains("42"),
            "the harmless query ran\n{}",
            run.context()
        );
        assert!(
            run.destroying("victim").is_empty(),
            "without the check, the DROP reached the server\n{}",
            run.context()
        );
        assert_eq!(run.victim_rows(), Some(100), "{}", run.context());
        assert!(
            stderr.contains("ERROR:  dbguard: statement not run") && stderr.contains(why),
            "the refusal says why\n{}",
            run.context()
        );
        assert!(
            !run.out.stdout_str().contains("not reached"),
            "ON_ERROR_STOP stopped the script at the refusal\n{}",
            run.context()
        );
        assert_eq!(run.out.status, 3, "{}", run.context());
    }
}

/// A libpq client of our own: what psql 16+'s `\bind` (extended protocol,
/// `PQsendQueryParams`) and `\parse` + `\bind_named` (`PQsendPrepare`, then
/// an execution of the named statement) send. The machine's psql may
/// predate those commands, so a small C program calls the same entry
/// points, with prototypes of its own (no libpq headers needed).
const EXTENDED_PROTOCOL_CLIENT: &str = r#"
#include <stdio.h>
#include <string.h>
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
extern PGconn *PQconnectdb(const char *conninfo);
extern int PQstatus(const PGconn *conn);
extern char *PQerrorMessage(const PGconn *conn);
extern int PQsendQueryParams(PGconn *conn, const char *command, int nParams,
    const unsigned int *paramTypes, const char *const *paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat);
extern int PQsendPrepare(PGconn *conn, const char *stmtName, const char *query,
    int nParams, const unsigned int *paramTypes);
extern int PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams,
    const char *const *paramValues, const int *paramLengths,
    const int *paramFormats, int resultFormat);
extern PGresult *PQgetResult(PGconn *conn);
extern char *PQresultErrorMessage(const PGresult *res);
extern int PQntuples(const PGresult *res);
extern char *PQgetvalue(const PGresult *res, int row, int column);
extern void PQclear(PGresult *res);

/* Prints each result: its error, or its first value. */
static void drain(PGconn *conn) {
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        const char *error = PQresultErrorMessage(res);
        if (error[0] != '\0')
            printf("ERROR: %s", error);
        else if (PQntuples(res) > 0)
            printf("VALUE: %s\n", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    PGconn *conn = PQconnectdb("");
    if (PQstatus(conn) != 0) { fprintf(stderr, "%s", PQerrorMessage(conn)); return 1; }
    if (strcmp(argv[1], "bind") == 0) {
        if (!PQsendQueryParams(conn, argv[2], 0, NULL, NULL, NULL, NULL, 0)) return 1;
        drain(conn);
    } else {
        if (!PQsendPrepare(conn, "named", argv[2], 0, NULL)) return 1;
        drain(conn);
        if (!PQsendQueryPrepared(conn, "named", 0, NULL, NULL, NULL, 0)) return 1;
        drain(conn);
    }
    return 0;
}
"#;

#[test]
fn differential_the_extended_protocol_entry_points_of_bind_and_parse_are_checked() {
    let sandbox = Sandbox::psql_only();
    let source = sandbox.dir.path().join("client.c");
    let client = sandbox.dir.path().join("client");
    write_file(&source, EXTENDED_PROTOCOL_CLIENT);
    let cc = std::process::Command::new("cc")
        .arg("-o")
        .arg(&client)
        .arg(&source)
        .arg("-l:libpq.so.5")
        .output()
        .expect("run cc");
    assert!(
        cc.status.success(),
        "compiling the libpq client: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let first_stage = first_stage_under_test();
    for entry_point in ["bind", "parse"] {
        let db = fresh_db(&format!("diff_{entry_point}"), &[]);
        let mut sandbox = Sandbox::psql_only().with_db(&db);
        let store = guarded::use_store(&mut sandbox);
        // As the shim starts psql: the first stage preloaded, the check
        // beside it. No terminal: what may be destructive is refused.
        sandbox.set("LD_PRELOAD", first_stage.to_str().expect("utf-8 path"));
        let run = |sql: &str| {
            let out = without_terminal(sandbox.command(&client).args([entry_point, sql]), None);
            (out.stdout_str(), out.status)
        };
        let (harmless, status) = run("select 40 + 2");
        assert_eq!(
            (harmless.as_str(), status),
            ("VALUE: 42\n", 0),
            "{entry_point}: a harmless statement runs"
        );
        let (refused, status) = run("drop table victim");
        assert_eq!(status, 0, "{entry_point}: {refused}");
        assert!(
            refused.starts_with(
                "ERROR: ERROR:  dbguard: statement not run: refused drop table victim"
            ),
            "{entry_point}: the DROP is refused as a failed statement: {refused}"
        );
        let logged = logged_statements(&db.name);
        assert!(
            !logged.iter().any(|s| destroys(s, "victim")),
            "{entry_point}: the DROP reached the server:\n{}",
            logged.join("\n---\n")
        );
        assert!(
            logged.iter().any(|s| s.contains("select 40 + 2")),
            "{entry_point}: the server's log holds the harmless statement (the log is read):\n{}",
            logged.join("\n---\n")
        );
        let rows = db.sql("select count(*) from victim");
        assert_eq!(rows, "100", "{entry_point}");
        assert!(
            backups(&store).is_empty(),
            "{entry_point}: nothing to back up"
        );
    }
}
