//! The built library loads into programs without disturbing them. Also the
//! reason `cargo test` builds the library itself (an integration test needs
//! its crate's library built), which the workspace's pty tests preload into
//! the real psql.

use std::path::PathBuf;
use std::process::Command;

/// The library cargo built for this test run: `target/<profile>/deps/`,
/// the directory of this test's own executable.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.with_file_name(dbguard_preload::PRELOAD_FILE)
}

#[test]
fn in_a_program_without_libpq_the_environment_is_passed_on_untouched() {
    let lib = library();
    assert!(lib.is_file(), "{} was built", lib.display());
    // A process without libpq (like Debian's pg_wrapper, which then execs
    // the real psql) must hand LD_PRELOAD and the confirmed-statements file
    // on to what it runs.
    let out = Command::new("sh")
        .args([
            "-c",
            "printf '%s|%s' \"$LD_PRELOAD\" \"$DBGUARD_LIVE_CONFIRMED\"",
        ])
        .env("LD_PRELOAD", &lib)
        .env("DBGUARD_LIVE_CONFIRMED", "/nonexistent/confirmed")
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}|/nonexistent/confirmed", lib.display())
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
