//! `dbguard doctor` in the situations people actually get into, snapshot
//! tested, and `dbguard init`'s hooks: their text snapshotted, and their
//! effect checked in real interactive shells after a real virtualenv
//! activation.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::sandbox::{capture, dbguard_bin};
use crate::support::{Output, Sandbox, alembic_bin_dir};

/// A sandbox whose PATH pieces are named, so each test can order them.
struct Shell {
    sandbox: Sandbox,
    /// A directory holding only links to the system's real psql, dropdb
    /// and pg_restore.
    system: PathBuf,
    /// The alembic venv's bin directory (a real virtualenv).
    venv_bin: PathBuf,
}

impl Shell {
    fn new() -> Shell {
        let sandbox = Sandbox::psql_only();
        let system = sandbox.dir.path().join("usr/bin");
        fs::create_dir_all(&system).unwrap();
        for tool in ["psql", "dropdb", "pg_restore"] {
            let real = which::which(tool).expect("the tool on the test PATH");
            symlink(real, system.join(tool)).unwrap();
        }
        Shell {
            sandbox,
            system,
            venv_bin: alembic_bin_dir().to_path_buf(),
        }
    }

    fn venv(&self) -> &Path {
        self.venv_bin.parent().unwrap()
    }

    fn path_of(&self, dirs: &[&Path]) -> String {
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Runs `dbguard doctor` with PATH made of `dirs` and extra variables.
    fn doctor(&self, dirs: &[&Path], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.sandbox.dbguard();
        cmd.arg("doctor")
            .env("PATH", self.path_of(dirs))
            .env("SHELL", "/bin/bash")
            .envs(env.iter().copied());
        capture(&mut cmd, None)
    }

    /// The output with machine-specific paths replaced by names.
    fn redact(&self, out: &Output) -> String {
        let text = format!("{}[exit status {}]\n", out.stdout_str(), out.status);
        let preload = dbguard_bin().with_file_name("libdbguard_preload.so");
        text.replace(&preload.display().to_string(), "[PRELOAD]")
            .replace(&self.venv().display().to_string(), "[VENV]")
            .replace(&self.sandbox.dir.path().display().to_string(), "[SANDBOX]")
            .replace(&dbguard_bin().display().to_string(), "[DBGUARD]")
            .replace(env!("CARGO_PKG_VERSION"), "[VERSION]")
    }
}

#[test]
fn everything_guarded() {
    let s = Shell::new();
    let out = s.doctor(
        &[&s.sandbox.shims, &s.venv_bin, &s.system],
        &[("DBGUARD_YES", "1"), ("DBGUARD_BACKUP_DIR", "/backups")],
    );
    assert_eq!(out.status, 0, "{}", out.stdout_str());
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn no_preload_library_means_interactive_sessions_are_not_checked() {
    let s = Shell::new();
    let out = s.doctor(
        &[&s.sandbox.shims, &s.venv_bin, &s.system],
        &[("DBGUARD_PRELOAD", "/nonexistent/libdbguard_preload.so")],
    );
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn activated_virtualenv_ahead_of_the_shims() {
    let s = Shell::new();
    let venv = s.venv().display().to_string();
    let out = s.doctor(
        &[&s.venv_bin, &s.sandbox.shims, &s.system],
        &[("VIRTUAL_ENV", &venv)],
    );
    assert_eq!(out.status, 1);
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn virtualenv_first_without_activation_as_under_uv_run() {
    let s = Shell::new();
    let out = s.doctor(&[&s.venv_bin, &s.sandbox.shims, &s.system], &[]);
    assert_eq!(out.status, 1);
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn shim_directory_not_on_path() {
    let s = Shell::new();
    let out = s.doctor(&[&s.venv_bin, &s.system], &[]);
    assert_eq!(out.status, 1);
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn no_real_psql_behind_the_shim() {
    let s = Shell::new();
    let out = s.doctor(&[&s.sandbox.shims, &s.venv_bin], &[]);
    // Not installed is not broken: notes, and a clean exit.
    assert_eq!(out.status, 0, "{}", out.stdout_str());
    insta::assert_snapshot!(s.redact(&out));
}

/// Someone who uses only psql has no alembic: that is a note, exit 0,
/// not a warning that makes doctor fail forever.
#[test]
fn doctor_without_alembic_installed() {
    let s = Shell::new();
    let out = s.doctor(&[&s.sandbox.shims, &s.system], &[]);
    assert_eq!(out.status, 0, "{}", out.stdout_str());
    let text = s.redact(&out);
    assert!(text.contains("note: alembic is not installed"), "{text}");
    assert!(!text.contains("warning"), "{text}");
    insta::assert_snapshot!(text);
}

/// An override naming a file that is not there is a mistake, still a warning.
#[test]
fn doctor_with_a_broken_override_still_fails() {
    let s = Shell::new();
    let out = s.doctor(
        &[&s.sandbox.shims, &s.system],
        &[("DBGUARD_REAL_ALEMBIC", "/nonexistent/alembic")],
    );
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("warning: alembic"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn a_second_install_ahead_and_bypass_set() {
    let s = Shell::new();
    // Another install: its own copy of the binary (another inode) and links.
    let other = s.sandbox.dir.path().join("other");
    fs::create_dir_all(other.join("bin")).unwrap();
    fs::create_dir_all(other.join("shims")).unwrap();
    fs::copy(dbguard_bin(), other.join("bin/dbguard")).unwrap();
    symlink(other.join("bin/dbguard"), other.join("shims/psql")).unwrap();
    let out = s.doctor(
        &[
            &other.join("shims"),
            &s.sandbox.shims,
            &s.venv_bin,
            &s.system,
        ],
        &[("DBGUARD_BYPASS", "1")],
    );
    assert_eq!(out.status, 1);
    insta::assert_snapshot!(s.redact(&out));
}

#[test]
fn shim_directory_from_the_environment() {
    let s = Shell::new();
    // An install outside the default place, named by DBGUARD_SHIM_DIR; the
    // default location holds nothing.
    let custom = s.sandbox.dir.path().join("opt/shims");
    fs::create_dir_all(custom.parent().unwrap()).unwrap();
    fs::rename(&s.sandbox.shims, &custom).unwrap();
    let custom_s = custom.display().to_string();
    let out = s.doctor(
        &[&s.system],
        &[("DBGUARD_SHIM_DIR", &custom_s), ("SHELL", "/usr/bin/zsh")],
    );
    assert_eq!(out.status, 1);
    let text = s.redact(&out);
    // zsh advice, and init told where the directory is.
    assert!(
        text.contains(r#"eval "$([DBGUARD] init zsh --shim-dir [SANDBOX]/opt/shims)""#),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

// ---------------------------------------------------------------------------
// init

fn init(shell: &str) -> String {
    let out = capture(
        Command::new(dbguard_bin())
            .args(["init", shell, "--shim-dir", "/opt/dbguard shims"])
            .env_clear(),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    out.stdout_str()
}

#[test]
fn init_snippets() {
    insta::assert_snapshot!("init_bash", init("bash"));
    insta::assert_snapshot!("init_zsh", init("zsh"));
    insta::assert_snapshot!("init_fish", init("fish"));
}

#[test]
fn init_rejects_an_unknown_shell() {
    let out = capture(Command::new(dbguard_bin()).args(["init", "tcsh"]), None);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr_str()
            .contains("possible values: bash, zsh, fish")
    );
}

/// Feeds `script` to an interactive `shell` whose startup loads the hook
/// from `dbguard init`, and returns what it printed. Between the lines of
/// the script the shell shows prompts, and so runs its prompt hooks.
fn interactive(s: &Shell, shell: &str, script: &str) -> Output {
    let args: &[&str] = match shell {
        "bash" => &["--norc", "--noprofile", "-i"],
        "zsh" => &["-f", "-i"],
        _ => &["--no-config", "-i"],
    };
    let dbguard_dir = dbguard_bin().parent().unwrap().to_path_buf();
    let mut cmd = s.sandbox.command(shell);
    cmd.args(args)
        .env(
            "PATH",
            s.path_of(&[
                &dbguard_dir,
                &s.system,
                Path::new("/usr/bin"),
                Path::new("/bin"),
            ]),
        )
        .env("TERM", "dumb");
    capture(&mut cmd, Some(script.as_bytes()))
}

fn line_after<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {stdout:?}"))
}

/// The real test of the hook: after `source .venv/bin/activate`, typing
/// `alembic` runs the shim, and the venv's alembic is what the shim execs.
#[test]
fn bash_hook_keeps_shims_first_after_venv_activation() {
    let s = Shell::new();
    let activate = s.venv_bin.join("activate").display().to_string();
    let script = format!(
        "eval \"$(dbguard init bash)\"\n\
         source {activate}\n\
         echo \"alembic=$(type -P alembic)\"\n\
         echo \"venv=$VIRTUAL_ENV\"\n\
         false\n\
         echo \"status=$?\"\n\
         deactivate\n\
         eval \"$(dbguard init bash)\"\n\
         echo \"path=$PATH\"\n"
    );
    let out = interactive(&s, "bash", &script);
    let stdout = out.stdout_str();
    assert_eq!(
        line_after(&stdout, "alembic="),
        s.sandbox.shims.join("alembic").display().to_string(),
        "{}",
        out.stderr_str()
    );
    assert_eq!(line_after(&stdout, "venv="), s.venv().display().to_string());
    assert_eq!(line_after(&stdout, "status="), "1", "the hook keeps $?");
    // Loading twice and deactivating leave one copy, first.
    let path = line_after(&stdout, "path=");
    let shims = s.sandbox.shims.display().to_string();
    assert!(path.starts_with(&format!("{shims}:")), "{path}");
    assert_eq!(path.matches(shims.as_str()).count(), 1, "{path}");

    // With the shims first, the shim resolves the venv's own alembic.
    let out = capture(
        s.sandbox
            .dbguard()
            .arg("doctor")
            .env(
                "PATH",
                s.path_of(&[&s.sandbox.shims, &s.venv_bin, &s.system]),
            )
            .env("VIRTUAL_ENV", s.venv()),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stdout_str());
}

/// zsh and fish run the same check when they are installed.
#[test]
fn zsh_and_fish_hooks_keep_shims_first_when_those_shells_exist() {
    let s = Shell::new();
    let activate = s.venv_bin.join("activate");
    let cases = [
        (
            "zsh",
            format!(
                "eval \"$(dbguard init zsh)\"\nsource {}\necho \"alembic=$(whence -p alembic)\"\n",
                activate.display()
            ),
        ),
        (
            "fish",
            format!(
                "dbguard init fish | source\nsource {}.fish\necho \"alembic=\"(command -s alembic)\n",
                activate.display()
            ),
        ),
    ];
    for (shell, script) in cases {
        if which::which(shell).is_err() {
            eprintln!("{shell} not installed; skipped");
            continue;
        }
        let out = interactive(&s, shell, &script);
        assert_eq!(
            line_after(&out.stdout_str(), "alembic="),
            s.sandbox.shims.join("alembic").display().to_string(),
            "{shell}: {}",
            out.stderr_str()
        );
    }
}
