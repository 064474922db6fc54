//! The psql guard end to end: the real cluster, the real psql and pg_dump,
//! and a real pseudo-terminal for the questions. Each test checks the
//! database itself afterwards, not just what dbguard printed.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

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
        "create table users (id int primary key, email text);
         insert into users select g, 'u' || g || '@example.com' from generate_series(1, 300) g;
         create table orders (id int primary key, user_id int references users(id), total numeric);
         insert into orders select g, (g % 300) + 1, g * 1.25 from generate_series(1, 1000) g;
         create table marker (n int);",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

/// The shim in a new session: there is no terminal to ask on.
fn shim_without_terminal(sandbox: &Sandbox, args: &[&str], stdin: Option<&[u8]>) -> Output {
    guarded::without_terminal(sandbox.shim("psql").args(args), stdin)
}

/// The shim on a pseudo-terminal, stdin from `stdin_file` (default
/// /dev/null), so answers can only come through /dev/tty.
fn shim_on_terminal(
    sandbox: &Sandbox,
    args: &[&str],
    stdin_file: Option<&Path>,
) -> expectrl::session::OsSession {
    guarded::on_terminal(sandbox, &sandbox.shims.join("psql"), args, stdin_file, None)
}

fn table_exists(db: &TestDb, name: &str) -> bool {
    db.sql(&format!("select to_regclass('{name}') is not null")) == "t"
}

/// Every row of `orders`, in order, as text: the thing that must come back.
fn orders_rows(db: &TestDb) -> String {
    db.sql("select string_agg(format('%s|%s|%s', id, user_id, total), ',' order by id) from orders")
}

#[test]
fn typing_the_word_drops_and_the_backup_brings_the_rows_back_exactly() {
    let s = setup("right_word");
    let before = orders_rows(&s.db);
    let mut p = shim_on_terminal(&s.sandbox, &["-X", "-c", "drop table orders"], None);
    let shown = p
        .expect("to continue (anything else cancels)")
        .expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("-c:1: drop_table orders"), "{summary}");
    assert!(summary.contains("public.orders: 1,000 rows"), "{summary}");
    assert!(summary.contains("Type \"DROP\""), "{summary}");
    // The statement has not run while the question is open.
    assert!(table_exists(&s.db, "orders"));
    p.send_line("DROP").expect("type");
    p.expect("DROP TABLE").expect("psql ran the statement");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert!(!table_exists(&s.db, "orders"));

    let files = backups(&s.store);
    assert_eq!(files.len(), 1, "{files:?}");
    let id = id_of(&files[0]);
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(s.store.join(format!("{id}.json"))).expect("metadata"))
            .expect("json");
    assert_eq!(meta["scope"], serde_json::json!(["public.orders"]));
    let verify = capture(s.sandbox.dbguard().args(["verify", &id]), None);
    assert_eq!(verify.status, 0, "{}", verify.stderr_str());

    guarded::restore_unasked(&s.sandbox, &id);
    assert_eq!(orders_rows(&s.db), before);

    // The restore writes its own line; the guard's is the one before.
    let audit = audit_lines(&s.store);
    let last = audit
        .iter()
        .rfind(|l| l["tool"] != "restore")
        .expect("an audit line");
    assert_eq!(last["decision"], "confirmed");
    assert_eq!(last["backups"][0]["id"], id.as_str());
    assert_eq!(last["backups"][0]["sha256"], meta["sha256"]);
    assert_eq!(last["target"]["database"], s.db.name.as_str());
}

#[test]
fn a_wrong_word_ctrl_c_and_end_of_input_leave_the_database_untouched() {
    let s = setup("declined");
    for answer in ["drop", "\x03", "\x04"] {
        let mut p = shim_on_terminal(&s.sandbox, &["-X", "-c", "truncate users, orders"], None);
        p.expect("Type \"TRUNCATE\"").expect("prompt");
        if answer.starts_with('\x03') || answer.starts_with('\x04') {
            p.send(answer).expect("type");
        } else {
            p.send_line(answer).expect("type");
        }
        p.expect(expectrl::Eof).expect("end");
        assert_eq!(exit_code(&mut p), REFUSED, "answer {answer:?}");
        assert_eq!(s.db.sql("select count(*) from orders"), "1000");
    }
    assert!(backups(&s.store).is_empty());
    let audit = audit_lines(&s.store);
    assert_eq!(audit.len(), 3);
    assert!(audit.iter().all(|l| l["decision"] == "refused"));
}

#[test]
fn a_terminal_that_closes_at_the_prompt_is_a_refusal() {
    let s = setup("closed_tty");
    // Close-on-exec from the start: other tests spawn children concurrently,
    // and a leaked copy of the master would keep this terminal open.
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .expect("posix_openpt");
    nix::pty::grantpt(&master).expect("grantpt");
    nix::pty::unlockpt(&master).expect("unlockpt");
    let slave_path = nix::pty::ptsname_r(&master).expect("ptsname");
    let slave_file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .expect("open the slave");
    let slave = slave_file.as_raw_fd();
    let mut cmd = s.sandbox.shim("psql");
    cmd.args(["-X", "-c", "drop table orders"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave_file.try_clone().expect("dup")))
        .stderr(Stdio::from(slave_file.try_clone().expect("dup")));
    // SAFETY: setsid and ioctl are async-signal-safe; the child makes the
    // pty's slave its controlling terminal, as a login shell's child has.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    drop(slave_file);
    drop(cmd);
    let mut master = fs::File::from(std::os::fd::OwnedFd::from(master));
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("to continue") {
        let n = master.read(&mut buf).expect("read the pty");
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(master);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(REFUSED), "{status:?}");
    assert!(table_exists(&s.db, "orders"));
}

#[test]
fn without_a_terminal_nothing_runs_and_the_refusal_is_one_clear_line() {
    let s = setup("no_tty");
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "delete from orders"], None);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from orders"), "1000");
    let stderr = out.stderr_str();
    let last = stderr.lines().last().expect("a refusal line");
    assert!(
        last.contains("DBGUARD_YES=1") && last.contains("DBGUARD_BYPASS=1"),
        "{last}"
    );
    insta::with_settings!({
        filters => vec![
            (r"\bt\d+_no_tty\b", "[DB]"),
            (r"host /[^,]+", "host [SOCKET]"),
            (r"port \d+", "port [PORT]"),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("guard_refusal_without_terminal", stderr);
    });
}

#[test]
fn a_script_is_judged_whole_before_its_first_statement_runs() {
    let s = setup("statement_90");
    let mut script = String::from("insert into marker values (1);\n");
    for i in 2..=100 {
        if i == 90 {
            script.push_str("drop table users cascade;\n");
        } else {
            script.push_str(&format!("select {i};\n"));
        }
    }
    let path = in_dir(&s.sandbox, "long.sql");
    write_file(&path, &script);
    let path = path.to_str().expect("utf-8");

    let mut p = shim_on_terminal(&s.sandbox, &["-X", "-f", path], None);
    let shown = p.expect("Type \"DROP\"").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("long.sql:90: drop_table users (CASCADE)"),
        "{summary}"
    );
    assert!(
        summary.contains("the whole database"),
        "CASCADE needs all: {summary}"
    );
    assert_eq!(
        s.db.sql("select count(*) from marker"),
        "0",
        "statement 1 ran early"
    );
    p.send_line("no").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED);
    assert_eq!(s.db.sql("select count(*) from marker"), "0");
    assert!(table_exists(&s.db, "users"));

    // In one transaction (-1), and without a terminal, it is refused too.
    let out = shim_without_terminal(&s.sandbox, &["-X", "-1", "-f", path], None);
    assert_eq!(out.status, REFUSED);
    assert_eq!(s.db.sql("select count(*) from marker"), "0");
}

#[test]
fn includes_stdin_files_and_variables_are_all_read() {
    let s = setup("sources");
    let inc = in_dir(&s.sandbox, "inc.sql");
    write_file(&inc, "select 1;\ntruncate orders;\n");
    let main = in_dir(&s.sandbox, "main.sql");
    write_file(&main, "select 0;\n\\ir inc.sql\n");
    let main = main.to_str().expect("utf-8");

    let out = shim_without_terminal(&s.sandbox, &["-X", "-f", main], None);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("inc.sql:2: truncate orders"),
        "{}",
        out.stderr_str()
    );

    // A regular file on stdin, and a pipe.
    let stdin_file = in_dir(&s.sandbox, "stdin.sql");
    write_file(&stdin_file, "select 1;\ndelete from orders;\n");
    let mut cmd = s.sandbox.shim("psql");
    cmd.arg("-X")
        .stdin(fs::File::open(&stdin_file).expect("open"));
    unsafe {
        // SAFETY: setsid is async-signal-safe.
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(REFUSED));
    let out = shim_without_terminal(&s.sandbox, &["-X"], Some(b"update orders set total = 0;\n"));
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from orders where total = 0"), "0");

    // -v names the table; DBGUARD_YES backs up just that table and runs it.
    let var_script = in_dir(&s.sandbox, "var.sql");
    write_file(&var_script, "drop table :victim;\n");
    let mut yes = Sandbox::psql_only().with_db(&s.db);
    yes.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"))
        .set("DBGUARD_YES", "1");
    let out = shim_without_terminal(
        &yes,
        &[
            "-X",
            "-v",
            "victim=orders",
            "-f",
            var_script.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!table_exists(&s.db, "orders"));
    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    let dump = fs::read_to_string(&files[0]).expect("plain dump");
    assert!(dump.contains("CREATE TABLE public.orders"), "scoped dump");
    assert!(
        !dump.contains("CREATE TABLE public.users"),
        "only the table dropped"
    );
    let audit = audit_lines(&s.store);
    assert_eq!(audit.last().expect("line")["yes"], true);
}

#[test]
fn policy_off_runs_at_once_and_bypass_skips_everything_but_the_log() {
    let s = setup("policy_off");
    write_file(
        &in_dir(&s.sandbox, ".dbguard.toml"),
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"off\"\n",
            s.db.name
        ),
    );
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "truncate marker"], None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(backups(&s.store).is_empty());

    let other = setup("bypass");
    let mut bypass = Sandbox::psql_only().with_db(&other.db);
    bypass
        .set("DBGUARD_BACKUP_DIR", other.store.to_str().expect("utf-8"))
        .set("DBGUARD_BYPASS", "1");
    let out = shim_without_terminal(&bypass, &["-X", "-c", "drop table orders"], None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!table_exists(&other.db, "orders"));
    assert!(backups(&other.store).is_empty());
    let audit = audit_lines(&other.store);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["decision"], "bypass");
    assert_eq!(audit[0]["bypass"], true);
}

#[test]
fn no_password_reaches_the_audit_log_or_the_backup() {
    let s = setup("password");
    let url = format!(
        "postgresql://postgres:s3cret-pw@127.0.0.1:{}/{}",
        s.db.cluster.port, s.db.name
    );
    let mut yes = Sandbox::psql_only();
    yes.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"))
        .set("DBGUARD_YES", "1");
    let out = shim_without_terminal(&yes, &["-X", &url, "-c", "delete from orders"], None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from orders"), "0");
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
    let audit = audit_lines(&s.store);
    assert!(
        audit[0]["argv"][2]
            .as_str()
            .expect("argv")
            .contains("postgres@127.0.0.1")
    );
}

/// Runs `cmd` under GNU time and returns its peak resident memory in KiB.
/// Measured by a small parent: the rusage of a process forked straight
/// from this (large, multi-threaded) test binary would include the copy of
/// the test binary's own memory it starts with.
fn run_measuring_rss(
    sandbox: &Sandbox,
    args: &[&str],
    feed: impl FnOnce(std::process::ChildStdin) + Send + 'static,
) -> i64 {
    let report = in_dir(sandbox, "rss.txt");
    let mut cmd = sandbox.command("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(sandbox.shims.join("psql"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("spawn /usr/bin/time (apt-get install -y time)");
    let stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || feed(stdin));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&report).expect("time's report");
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("time said {text:?}"))
}

#[test]
fn two_hundred_megabytes_on_a_pipe_pass_in_constant_memory() {
    let s = setup("big_pipe");
    s.db.sql("create unlogged table big (line text)");
    let mut yes = Sandbox::psql_only().with_db(&s.db);
    yes.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"))
        .set("DBGUARD_YES", "1");
    const LINES: usize = 200 * 1024;
    let max_rss_kib =
        run_measuring_rss(&yes, &["-X", "-q", "-v", "ON_ERROR_STOP=1"], |mut stdin| {
            let line = format!("{}\n", "x".repeat(1023));
            let mut block = String::new();
            for _ in 0..64 {
                block.push_str(&line);
            }
            let _ = stdin.write_all(b"copy big from stdin;\n");
            for _ in 0..LINES / 64 {
                if stdin.write_all(block.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = stdin
                .write_all(b"\\.\ninsert into marker select count(*) from big;\ntruncate big;\n");
        });
    assert_eq!(s.db.sql("select n from marker"), LINES.to_string());
    assert_eq!(
        s.db.sql("select count(*) from big"),
        "0",
        "the truncate ran"
    );
    eprintln!("peak RSS of shim and psql: {max_rss_kib} KiB");
    assert!(max_rss_kib < 32 * 1024, "peak RSS {max_rss_kib} KiB");
}

#[test]
fn config_says_where_each_value_comes_from() {
    let s = setup("config_cmd");
    write_file(
        &in_dir(&s.sandbox, ".dbguard.toml"),
        "[backup]\nformat = \"custom\"\n[retention]\nkeep_last = 3\n[bulk]\nrows = 500\n\
         [alembic]\ndatabase_url = \"postgresql://app:s3cret@db.example/app\"\n\
         [[database]]\ndbname = \"*_test\"\npolicy = \"off\"\n",
    );
    let out = capture(s.sandbox.dbguard().args(["config", &s.db.name]), None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    let text = out.stdout_str();
    for expected in [
        "(nearest .dbguard.toml above the working directory)",
        "(DBGUARD_BACKUP_DIR)",
        "backup.format: custom (backup.format in ",
        "retention.keep_last: 3 (retention.keep_last in ",
        "bulk.rows: 500 (bulk.rows in ",
        "bulk.fraction: 0.5 (default)",
        "alembic.upgrade_analysis: true (default)",
        "alembic.database_url: postgresql://app@db.example/app (alembic.database_url in ",
        "dbname *_test host * port *: off",
        &format!("policy for \"{}\"", s.db.name),
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("retention.keep_daily: ") && l.ends_with(" (default)")),
        "{text}"
    );
    assert!(text.contains("environment: DBGUARD_BACKUP_DIR="), "{text}");
    assert!(!text.contains("s3cret"), "no password in\n{text}");
}

#[test]
fn verify_test_db_sees_through_a_second_address_of_the_same_server() {
    let s = setup("verify_test_db");
    let url = s.db.url(); // over TCP, 127.0.0.1
    let socket = cluster().socket_dir.display().to_string();
    let config = in_dir(&s.sandbox, ".dbguard.toml");

    // Not listed: the default policy (confirm) is not safe for tests.
    let out = capture(s.sandbox.dbguard().args(["verify-test-db", &url]), None);
    assert_eq!(out.status, 1, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("its policy is confirm"),
        "{}",
        out.stderr_str()
    );

    write_file(
        &config,
        format!(
            "[[database]]\ndbname = \"{}\"\nport = {}\npolicy = \"off\"\n",
            s.db.name, s.db.cluster.port
        ),
    );
    let mut with_env = Sandbox::psql_only().with_db(&s.db);
    with_env.dir = s.sandbox.dir;
    with_env.set("TEST_DATABASE_URL", &url);
    let out = capture(with_env.dbguard().arg("verify-test-db"), None);
    assert_eq!(out.status, 0, "{}\n{}", out.stdout_str(), out.stderr_str());
    assert!(out.stdout_str().contains("OK: safe to use for tests"));

    // The same database through the socket directory, named as protected.
    write_file(
        &config,
        format!(
            "[[database]]\ndbname = \"{0}\"\nhost = \"127.0.0.1\"\npolicy = \"off\"\n\
             [[database]]\ndbname = \"{0}\"\nhost = \"{socket}\"\nport = {1}\npolicy = \"protect\"\n",
            s.db.name, s.db.cluster.port
        ),
    );
    let out = capture(with_env.dbguard().arg("verify-test-db"), None);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stderr_str()
            .contains("is the same database as the protect database"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn drop_database_of_a_protected_database_asks_for_its_name_and_backs_it_up() {
    let s = setup("drop_db");
    write_file(
        &in_dir(&s.sandbox, ".dbguard.toml"),
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"protect\"\n",
            s.db.name
        ),
    );
    let drop = format!("drop database {}", s.db.name);
    let args = ["-X", "-d", "postgres", "-c", drop.as_str()];
    let mut p = shim_on_terminal(&s.sandbox, &args, None);
    p.expect(format!("Type \"{}\"", s.db.name).as_str())
        .expect("prompt");
    p.send_line("DROP").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), REFUSED, "the verb is not the name");
    assert!(backups(&s.store).is_empty());

    let mut p = shim_on_terminal(&s.sandbox, &args, None);
    p.expect(format!("Type \"{}\"", s.db.name).as_str())
        .expect("prompt");
    p.send_line(&s.db.name).expect("type");
    p.expect("DROP DATABASE").expect("psql ran it");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    let gone = cluster().sql(
        "postgres",
        &format!(
            "select count(*) from pg_database where datname = '{}'",
            s.db.name
        ),
    );
    assert_eq!(gone, "0");
    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    let meta: serde_json::Value = serde_json::from_slice(
        &fs::read(s.store.join(format!("{}.json", id_of(&files[0])))).expect("metadata"),
    )
    .expect("json");
    assert_eq!(meta["database"], s.db.name.as_str());
    assert_eq!(meta["scope"], "database");
    let dump = fs::read_to_string(&files[0]).expect("plain dump");
    assert!(
        dump.contains("CREATE TABLE public.orders"),
        "the dropped database's tables"
    );
}

/// Regression: `DROP DATABASE IF EXISTS x` of a database that does not
/// exist was refused (nothing to back up), which broke every setup script
/// that starts by clearing the way. It removes nothing, so it runs; the
/// same script still stops when the database exists.
#[test]
fn dropping_a_database_that_does_not_exist_runs_unasked() {
    let s = setup("drop_absent");
    let absent = format!("{}_absent", s.db.name);
    let drop = format!("drop database if exists {absent}");
    let create = format!("create database {absent}");
    // Two -c: DROP DATABASE cannot share a transaction with anything.
    let args = [
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
        "-c",
        &drop,
        "-c",
        &create,
    ];
    let out = shim_without_terminal(&s.sandbox, &args, None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains(&format!(
            "database \"{absent}\" does not exist, so dropping it removes nothing"
        )),
        "{}",
        out.stderr_str()
    );
    assert!(backups(&s.store).is_empty());
    let pass = audit_lines(&s.store);
    assert_eq!(pass.last().expect("an audit record")["decision"], "pass");

    // Now it exists: the same script is refused without a terminal.
    let out = shim_without_terminal(&s.sandbox, &args, None);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    let exists = cluster().sql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{absent}'"),
    );
    assert_eq!(exists, "1", "still there");
    cluster().sql("postgres", &format!("drop database {absent}"));
}

/// Regression: `DROP TABLE IF EXISTS t` of a table that does not exist,
/// and a script that creates a table and drops it again, were asked about
/// (refused without a terminal), though they remove nothing that exists;
/// they now run unasked. Whether the table exists is asked when it
/// matters: a table that takes the name before the DROP is sent (a rename
/// earlier in the same script) is judged then, and an existing one is
/// refused up front as before.
#[test]
fn dropping_a_table_that_does_not_exist_runs_unasked() {
    let s = setup("drop_table_absent");
    let drop = [
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "drop table if exists gone",
    ];
    let out = shim_without_terminal(&s.sandbox, &drop, None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    // psql shows the server's own notice, and nothing of dbguard's.
    assert_eq!(
        out.stderr_str().trim(),
        "NOTICE:  table \"gone\" does not exist, skipping"
    );
    assert!(backups(&s.store).is_empty());
    let pass = audit_lines(&s.store);
    assert_eq!(pass.last().expect("an audit record")["decision"], "pass");

    // Without the library nothing would judge it again when it is sent, so
    // what the server says before psql starts lets nothing through.
    let out = guarded::without_terminal(
        s.sandbox
            .shim("psql")
            .args(drop)
            .env("DBGUARD_PRELOAD", "/nonexistent/libdbguard_preload.so"),
        None,
    );
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());

    // A rename gives the name to a table with rows before the DROP is sent:
    // the pre-flight saw no such table, the check inside psql sees one.
    s.db.sql("create table renamed (n int); insert into renamed values (1), (2);");
    let script = b"alter table renamed rename to gone;\ndrop table if exists gone;\n";
    let out = shim_without_terminal(&s.sandbox, &["-X", "-v", "ON_ERROR_STOP=1"], Some(script));
    assert_ne!(out.status, 0, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("statement not run"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(s.db.sql("select count(*) from gone"), "2");

    // It exists now: refused before psql starts.
    let out = shim_without_terminal(&s.sandbox, &drop, None);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from gone"), "2");
    assert!(backups(&s.store).is_empty());

    // A script that makes its own table and drops it again, with nothing
    // that would stop it after a failed CREATE: the table does not exist
    // when psql starts, and the library sees the session create it.
    for create in [
        "create table scratch (n int)",
        "create table if not exists scratch (n int)",
    ] {
        let args = [
            "-X",
            "-c",
            create,
            "-c",
            "insert into scratch values (1)",
            "-c",
            "truncate scratch",
            "-c",
            "drop table scratch",
        ];
        let out = shim_without_terminal(&s.sandbox, &args, None);
        assert_eq!(out.status, 0, "{create}: {}", out.stderr_str());
        assert!(
            !out.stderr_str().contains("dbguard"),
            "{}",
            out.stderr_str()
        );
    }
    assert_eq!(
        s.db.sql("select count(*) from pg_class where relname = 'scratch'"),
        "0"
    );
    assert!(backups(&s.store).is_empty());
}

/// Regression: `psql -f <(…)` hands psql a pipe. Scanning it empties it,
/// so psql would then run nothing; it used to be left unread and treated
/// as unknown. Now it is copied while scanned and psql reads the copy
/// (`-f /dev/fd/N`): a harmless script runs unasked, a destructive one is
/// judged on its content.
#[test]
fn a_script_on_a_pipe_given_with_f_is_scanned_and_still_reaches_psql() {
    let s = setup("f_pipe");
    let shim = s.sandbox.shims.join("psql");
    let harmless = format!(
        "\"{}\" -X -q -c 'select 1' -f <(echo 'insert into marker values (7);') --file=<(echo 'insert into marker values (8);')",
        shim.display()
    );
    let out = guarded::without_terminal(s.sandbox.command("bash").arg("-c").arg(&harmless), None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(
        s.db.sql("select string_agg(n::text, ',' order by n) from marker"),
        "7,8",
        "psql ran both pipes' scripts whole"
    );
    // A named pipe is handed over under another name.
    let named = format!(
        "mkfifo p && {{ echo 'insert into marker values (10);' > p & }} && \"{}\" -X -q -f p",
        shim.display()
    );
    let out = guarded::without_terminal(s.sandbox.command("bash").arg("-c").arg(&named), None);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from marker where n = 10"), "1");

    let destructive = format!(
        "\"{}\" -X -f <(printf 'insert into marker values (9);\\ntruncate orders cascade;\\n')",
        shim.display()
    );
    let out =
        guarded::without_terminal(s.sandbox.command("bash").arg("-c").arg(&destructive), None);
    assert_eq!(out.status, REFUSED, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("/dev/fd/") && out.stderr_str().contains("truncate orders"),
        "the finding names the pipe and the statement: {}",
        out.stderr_str()
    );
    assert_eq!(s.db.sql("select count(*) from marker where n = 9"), "0");
    assert_eq!(s.db.sql("select count(*) from orders"), "1000");

    let out = guarded::without_terminal(
        s.sandbox
            .command("bash")
            .env("DBGUARD_YES", "1")
            .arg("-c")
            .arg(&destructive),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from marker where n = 9"), "1");
    assert_eq!(s.db.sql("select count(*) from orders"), "0");
    assert_eq!(backups(&s.store).len(), 1);
}

/// The table-facts query rides in the backup's connection check (one psql
/// start less). When it fails — here PostgreSQL cannot even look the name
/// up — the check still counts, the rows are reported unknown and the whole
/// database is backed up.
#[test]
fn a_failing_facts_query_leaves_rows_unknown_and_backs_up_everything() {
    let mut s = setup("facts_fail");
    s.sandbox.set("DBGUARD_YES", "1");
    let out = shim_without_terminal(&s.sandbox, &["-X", "-c", "truncate a.b.c.d"], None);
    assert_eq!(out.status, 1, "psql's own error: {}", out.stderr_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("rows affected: unknown (") && stderr.contains("improper relation name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("backup first: the whole database"),
        "{stderr}"
    );
    let files = backups(&s.store);
    assert_eq!(files.len(), 1);
    let dump = fs::read_to_string(&files[0]).expect("plain dump");
    assert!(
        dump.contains("CREATE TABLE public.orders"),
        "whole database"
    );
}
