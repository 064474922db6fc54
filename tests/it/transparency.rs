//! Pass-through must be invisible: for non-destructive invocations the shim
//! and the real tool produce the same stdout, stderr and exit status.

use crate::support::cluster::DB_LIST;
use crate::support::sandbox::{capture, in_dir, write_file};
use crate::support::{AlembicProject, Output, Sandbox, cluster};

/// Runs the same invocation through the shim and the real tool.
fn both(sandbox: &Sandbox, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> (Output, Output) {
    let shim = capture(sandbox.shim(tool).args(args), stdin);
    let real = capture(sandbox.real(tool).args(args), stdin);
    (shim, real)
}

fn assert_same(sandbox: &Sandbox, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let (shim, real) = both(sandbox, tool, args, stdin);
    assert_eq!(
        shim,
        real,
        "{tool} {args:?}: shim and real differ\nshim stderr: {}\nreal stderr: {}",
        shim.stderr_str(),
        real.stderr_str()
    );
    shim
}

/// Arguments, stdin, and the exit status the real psql gives.
type Case<'a> = (&'a [&'a str], Option<&'a [u8]>, i32);

#[test]
fn psql_invocations_are_byte_for_byte_the_real_ones() {
    let db = cluster().create_db("transparency");
    db.sql("CREATE TABLE items (id int, label text); INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    let sandbox = Sandbox::psql_only().with_db(&db);
    let failing = in_dir(&sandbox, "failing.sql");
    write_file(
        &failing,
        "select 1;\nselect * from missing_table;\nselect 2;\n",
    );
    let failing = failing.to_str().unwrap();

    let cases: &[Case<'_>] = &[
        (&["-X", "-c", "select * from items order by id"], None, 0),
        (
            &["-X", "-c", "select nonexistent_column from items"],
            None,
            1,
        ),
        (&["-X", "-v", "ON_ERROR_STOP=1", "-f", failing], None, 3),
        (&["-X", "-f", failing], None, 0),
        (
            &[
                "-X",
                "--csv",
                "-c",
                "select id, label from items order by id",
            ],
            None,
            0,
        ),
        (&["--version"], None, 0),
        (&["--help"], None, 0),
        (
            &["-X"],
            Some(b"select 40 + 2 as answer;\nselect label from items order by 1;\n"),
            0,
        ),
        (&["-X", "-f", "-"], Some(b"select 'from -f -';\n"), 0),
        (&["-X", "-f", "/nonexistent/script.sql"], None, 1),
        (
            &["-X", "-d", "no_such_database_here", "-c", "select 1"],
            None,
            2,
        ),
        (
            &["-X", "-h", "127.0.0.1", "-p", "1", "-c", "select 1"],
            None,
            2,
        ),
        (&["-X", "--no-such-option"], None, 1),
    ];
    for (args, stdin, status) in cases {
        let out = assert_same(&sandbox, "psql", args, *stdin);
        assert_eq!(out.status, *status, "psql {args:?}: {}", out.stderr_str());
    }
}

#[test]
fn psql_copy_from_stdin_passes_data_through() {
    let db = cluster().create_db("copy_stdin");
    db.sql("CREATE TABLE t (id int, name text)");
    let sandbox = Sandbox::psql_only().with_db(&db);
    let input = b"\\copy t from stdin\n1\tone\n2\ttwo\n\\.\nselect max(name) from t;\n";
    let out = assert_same(&sandbox, "psql", &["-X"], Some(input));
    assert_eq!(out.status, 0);
    // Both runs loaded the two rows.
    assert_eq!(db.sql("select count(*) from t"), "4");
}

#[test]
fn psql_list_databases_matches() {
    let db = cluster().create_db("list");
    let sandbox = Sandbox::psql_only().with_db(&db);
    let _exclusive = DB_LIST.write().unwrap_or_else(|e| e.into_inner());
    let out = assert_same(&sandbox, "psql", &["-X", "-l"], None);
    assert!(out.stdout_str().contains(&db.name));
}

#[test]
fn psql_killed_by_a_signal_reports_the_same_status() {
    let db = cluster().create_db("signal");
    let sandbox = Sandbox::psql_only().with_db(&db);
    // The shell's parent is psql itself (the shim exec'd it: same pid).
    let out = assert_same(
        &sandbox,
        "psql",
        &["-X", "-c", "\\! kill -TERM $PPID"],
        None,
    );
    assert_eq!(out.status, 128 + 15);
}

#[test]
fn psql_writing_into_a_closed_pipe_dies_like_the_real_one() {
    let db = cluster().create_db("sigpipe");
    let sandbox = Sandbox::psql_only().with_db(&db);
    let script = r#""$0" -X -A -t -c "select generate_series(1, 500000)" | head -n 1; echo "status=${PIPESTATUS[0]}""#;
    let run = |program: std::path::PathBuf| {
        capture(
            sandbox.command("bash").arg("-c").arg(script).arg(program),
            None,
        )
    };
    let shim = run(sandbox.shims.join("psql"));
    let real = run(crate::support::sandbox::real_tool("psql"));
    assert_eq!(shim, real);
    assert!(
        shim.stdout_str().contains("status=141"),
        "{}",
        shim.stdout_str()
    );
}

#[test]
fn alembic_invocations_are_byte_for_byte_the_real_ones() {
    let shim_db = cluster().create_db("alembic_shim");
    let real_db = cluster().create_db("alembic_real");
    let sandbox = Sandbox::new();
    let shim_project = AlembicProject::new(&shim_db);
    let real_project = AlembicProject::new(&real_db);
    // `upgrade head` from nothing drops users.nickname (0004), which the
    // guard asks about; with the policy off for this test database the
    // shim must still be indistinguishable from the real alembic.
    write_file(
        &shim_project.path().join(".dbguard.toml"),
        format!(
            "[[database]]\ndbname = \"{}\"\npolicy = \"off\"\n",
            shim_db.name
        ),
    );
    let run = |project: &AlembicProject, via_shim: bool, args: &[&str]| {
        let mut cmd = if via_shim {
            sandbox.shim("alembic")
        } else {
            sandbox.real("alembic")
        };
        cmd.current_dir(project.path()).args(args);
        capture(&mut cmd, None)
    };
    for args in [
        &["--help"][..],
        &["history"],
        &["current"],
        &["upgrade", "head"],
        &["current"],
        &["history", "-r", "0002:head"],
        &["no-such-command"],
    ] {
        let shim = run(&shim_project, true, args);
        let real = run(&real_project, false, args);
        assert_eq!(
            shim,
            real,
            "alembic {args:?}\nshim: {}\nreal: {}",
            shim.stderr_str(),
            real.stderr_str()
        );
    }
    assert_eq!(
        shim_db.sql("select version_num from alembic_version"),
        "0004"
    );
    assert_eq!(shim_db.sql("select count(*) from orders"), "3");
}

/// The real psql (and what it starts) sees the caller's environment as it
/// was: every variable, in any bytes, with `=` in values and empty values;
/// the shim's own marker is the only addition.
#[test]
fn psql_gets_the_callers_environment_unchanged() {
    use std::collections::BTreeSet;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let db = cluster().create_db("environment");
    let sandbox = Sandbox::psql_only().with_db(&db);
    let environment = |program: std::path::PathBuf| -> BTreeSet<Vec<u8>> {
        let out = capture(
            sandbox
                .command(program)
                .args(["-X", "-q", "-c", r"\! env -0"])
                .env("ODD_VALUE", "a=b=c")
                .env("EMPTY_VALUE", "")
                .env(OsStr::from_bytes(b"BYTES"), OsStr::from_bytes(b"\xff\xfe=")),
            None,
        );
        assert_eq!(out.status, 0, "{}", out.stderr_str());
        out.stdout
            .split(|b| *b == 0)
            .filter(|entry| !entry.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let real = environment(crate::support::sandbox::real_tool("psql"));
    let shim = environment(sandbox.shims.join("psql"));
    for expected in [&b"ODD_VALUE=a=b=c"[..], b"EMPTY_VALUE=", b"BYTES=\xff\xfe="] {
        assert!(
            real.contains(expected),
            "{:?}",
            String::from_utf8_lossy(expected)
        );
    }
    let added: Vec<_> = shim
        .difference(&real)
        .map(|e| String::from_utf8_lossy(e))
        .collect();
    let missing: Vec<_> = real
        .difference(&shim)
        .map(|e| String::from_utf8_lossy(e))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(added.len(), 1, "added: {added:?}");
    assert!(added[0].starts_with("DBGUARD_SHIM_CHAIN="), "{added:?}");
}
