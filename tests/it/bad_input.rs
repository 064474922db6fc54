//! The shim under odd conditions: no real tool, links and overrides that
//! lead back to dbguard, PATH with empty, relative and missing entries,
//! argv that is not UTF-8, argv[0] spelled oddly or empty, and names dbguard
//! does not answer to. Each ends in one clear line or a correct
//! pass-through (compared with the real psql), never a panic or a loop.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::support::sandbox::{capture, dbguard_bin, real_tool};
use crate::support::{Output, Sandbox, cluster};

fn one_line(out: &Output) -> String {
    let stderr = out.stderr_str();
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got {stderr:?}"
    );
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout_str());
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A sandbox for psql against a fresh database, and a query whose output
/// proves the real psql ran.
fn psql_sandbox(hint: &str) -> Sandbox {
    let db = cluster().create_db(hint);
    Sandbox::psql_only().with_db(&db)
}

const QUERY: &[&str] = &["-X", "-A", "-t", "-c", "select 40 + 2"];

fn assert_passes_through(sandbox: &Sandbox, shim: Output, args: &[&OsStr]) {
    let real = capture(sandbox.real("psql").args(args), None);
    assert_eq!(
        shim,
        real,
        "shim stderr: {}\nreal stderr: {}",
        shim.stderr_str(),
        real.stderr_str()
    );
}

fn os(args: &[&'static str]) -> Vec<&'static OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

#[test]
fn missing_real_tool_is_one_line_and_status_127() {
    let mut sandbox = Sandbox::psql_only();
    sandbox.path = format!("{}:/nonexistent", sandbox.shims.display());
    for tool in ["psql", "alembic", "dropdb", "pg_restore"] {
        let out = capture(sandbox.shim(tool).args(["-c", "select 1"]), None);
        assert_eq!(out.status, 127, "{tool}");
        let line = one_line(&out);
        assert!(
            line.starts_with(&format!("dbguard: no real {tool} found on PATH")),
            "{line}"
        );
        assert!(line.contains(&format!("DBGUARD_REAL_{}", tool.to_uppercase())));
    }
}

#[test]
fn override_pointing_back_at_the_shim_is_one_line_and_status_126() {
    let sandbox = Sandbox::psql_only();
    for target in [sandbox.shims.join("psql"), dbguard_bin()] {
        let out = capture(
            sandbox
                .shim("psql")
                .env("DBGUARD_REAL_PSQL", &target)
                .args(QUERY),
            None,
        );
        assert_eq!(out.status, 126, "{}", target.display());
        let line = one_line(&out);
        assert!(
            line.starts_with("dbguard: recursive shim invocation"),
            "{line}"
        );
        assert!(line.contains("DBGUARD_REAL_PSQL"), "{line}");
    }
}

#[test]
fn a_link_that_points_at_itself_is_skipped() {
    let mut sandbox = psql_sandbox("self_link");
    let looped = sandbox.dir.path().join("looped");
    fs::create_dir(&looped).unwrap();
    symlink("psql", looped.join("psql")).unwrap();
    let tail = sandbox.path.split_once(':').unwrap().1.to_owned();
    sandbox.path = format!("{}:{}:{tail}", sandbox.shims.display(), looped.display());
    let shim = capture(sandbox.shim("psql").args(QUERY), None);
    assert_eq!(shim.stdout_str(), "42\n");
    assert_passes_through(&sandbox, shim, &os(QUERY));
}

#[test]
fn two_copies_of_dbguard_named_psql_stop_instead_of_looping() {
    // Each copy is another file (not a link, another inode), so neither
    // recognises the other as itself: the recursion counter has to stop it.
    let mut sandbox = Sandbox::psql_only();
    let (a, b) = (sandbox.dir.path().join("a"), sandbox.dir.path().join("b"));
    for dir in [&a, &b] {
        fs::create_dir(dir).unwrap();
        fs::copy(dbguard_bin(), dir.join("psql")).unwrap();
    }
    sandbox.path = format!("{}:{}:/usr/bin:/bin", a.display(), b.display());
    let started = Instant::now();
    let out = capture(sandbox.command(a.join("psql")).args(QUERY), None);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status, 126);
    let line = one_line(&out);
    assert!(
        line.starts_with("dbguard: recursive shim invocation"),
        "{line}"
    );
}

#[test]
fn path_with_empty_relative_and_missing_entries_passes_through() {
    let mut sandbox = psql_sandbox("odd_path");
    // Only a relative entry leads to the real psql; the empty entries are
    // the working directory (the sandbox root, which has no psql).
    let rel = sandbox.dir.path().join("rel/bin");
    fs::create_dir_all(&rel).unwrap();
    symlink(real_tool("psql"), rel.join("psql")).unwrap();
    sandbox.path = format!(
        "{}::/nonexistent/bin:rel/bin:/also/missing:",
        sandbox.shims.display()
    );
    let shim = capture(sandbox.shim("psql").args(QUERY), None);
    assert_eq!(shim.stdout_str(), "42\n", "{}", shim.stderr_str());
    assert_passes_through(&sandbox, shim, &os(QUERY));
}

#[test]
fn non_utf8_arguments_pass_through_byte_for_byte() {
    let sandbox = psql_sandbox("non_utf8");
    let var = OsStr::from_bytes(b"v=\xff\xfe caf\xe9");
    let args: Vec<&OsStr> = vec![
        OsStr::new("-X"),
        OsStr::new("-v"),
        var,
        OsStr::new("-c"),
        OsStr::new(r"\echo :v"),
    ];
    let shim = capture(sandbox.shim("psql").args(&args), None);
    assert_eq!(shim.stdout, b"\xff\xfe caf\xe9\n", "{}", shim.stderr_str());
    assert_passes_through(&sandbox, shim, &args);

    // And where psql itself complains about the bytes.
    let bad = vec![OsStr::from_bytes(b"--no-such-\xff")];
    let shim = capture(sandbox.shim("psql").args(&bad), None);
    assert_eq!(shim.status, 1);
    assert_passes_through(&sandbox, shim, &bad);
}

#[test]
fn relative_argv0_from_inside_the_shim_directory() {
    let mut sandbox = psql_sandbox("relative_argv0");
    // As a shell runs `./psql` typed in the shim directory, with an empty
    // PATH entry that also means that directory.
    sandbox.path = format!(":{}", sandbox.path);
    let mut cmd = sandbox.shim("psql");
    cmd.arg0("./psql").current_dir(&sandbox.shims).args(QUERY);
    let shim = capture(&mut cmd, None);
    assert_eq!(shim.stdout_str(), "42\n", "{}", shim.stderr_str());
    let real = capture(
        sandbox.real("psql").current_dir(&sandbox.shims).args(QUERY),
        None,
    );
    assert_eq!(shim, real);
}

#[test]
fn odd_argv0_paths_still_name_the_tool() {
    let sandbox = psql_sandbox("odd_argv0");
    for argv0 in ["/a/../b/psql", "psql", "//psql", "x/./psql"] {
        let mut cmd = sandbox.shim("psql");
        cmd.arg0(argv0).args(QUERY);
        let shim = capture(&mut cmd, None);
        assert_eq!(
            shim.stdout_str(),
            "42\n",
            "argv0 {argv0}: {}",
            shim.stderr_str()
        );
        assert_passes_through(&sandbox, shim, &os(QUERY));
    }
}

#[test]
fn unknown_name_lists_the_valid_ones() {
    let sandbox = Sandbox::psql_only();
    let link = sandbox.dir.path().join("pg_wat");
    symlink(dbguard_bin(), &link).unwrap();
    let out = capture(sandbox.command(&link).arg("--help"), None);
    assert_eq!(out.status, 2);
    insta::assert_snapshot!(one_line(&out));
}

#[test]
fn empty_argv0_is_an_unknown_name() {
    let sandbox = Sandbox::psql_only();
    let mut cmd = sandbox.dbguard();
    cmd.arg0("").arg("--help");
    let out = capture(&mut cmd, None);
    assert_eq!(out.status, 2);
    insta::assert_snapshot!(one_line(&out));
}

#[test]
fn argv0_override_must_still_be_a_known_name() {
    let sandbox = Sandbox::psql_only();
    let out = capture(
        sandbox
            .dbguard()
            .env("DBGUARD_ARGV0", "/x/not-a-tool")
            .arg("--help"),
        None,
    );
    assert_eq!(out.status, 2);
    let line = one_line(&out);
    assert!(line.contains("\"not-a-tool\""), "{line}");
}
