//! The library as it ships (release, `no_std`, `panic = "abort"`) loads
//! into programs without disturbing them.

use std::path::PathBuf;
use std::process::Command;

/// The shipped build of the library: `cargo test` builds this crate with
/// `std` and unwinding (tests cannot abort), so the library under test is
/// built here, in a target directory of its own (the running `cargo test`
/// holds the lock on the crate's).
fn library() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shipped");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("release").join(dbguard_preload::PRELOAD_FILE)
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
