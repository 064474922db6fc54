//! install.sh, run for real by bash into a private HOME or prefix, with
//! `--binary` pointing at the test build so no release build is needed:
//! what it creates, that a second run changes nothing, that it never
//! overwrites what it did not create, and that `--uninstall` takes away
//! exactly what it put there.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Output;
use crate::support::sandbox::{capture, dbguard_bin, install_preload_beside_binary};

/// A private HOME and a command line for install.sh.
struct Home {
    dir: tempfile::TempDir,
    home: PathBuf,
}

impl Home {
    fn new() -> Home {
        // `--binary target/<profile>/dbguard` installs the library beside it.
        install_preload_beside_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        Home { dir, home }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn bin(&self) -> PathBuf {
        self.home.join(".local/bin/dbguard")
    }

    fn shims(&self) -> PathBuf {
        self.home.join(".local/share/dbguard/shims")
    }

    /// install.sh with a clean environment: only HOME, a system PATH and SHELL.
    fn script(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(install_sh())
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("SHELL", "/bin/bash")
            .env("LC_ALL", "C.UTF-8")
            .current_dir(self.root());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        capture(self.script().args(args), None)
    }

    /// Installs the test build, asserting success.
    fn install(&self, extra: &[&str]) -> Output {
        let bin = dbguard_bin();
        let mut args = vec!["--binary", bin.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(out.status, 0, "install.sh failed:\n{}", out.stderr_str());
        out
    }

    /// Every path under the root with its kind and, for links, the target:
    /// a picture of the filesystem to compare before and after.
    fn tree(&self) -> Vec<String> {
        let mut entries = Vec::new();
        walk(self.root(), self.root(), &mut entries);
        entries.sort();
        entries
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_symlink() {
            let target = fs::read_link(&path).unwrap();
            out.push(format!("{rel} -> {}", target.display()));
        } else if meta.is_dir() {
            out.push(format!("{rel}/"));
            walk(root, &path, out);
        } else {
            out.push(format!("{rel} ({} bytes)", meta.len()));
        }
    }
}

fn install_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

#[test]
fn installs_binary_shims_and_marker_and_prints_the_path_line() {
    let h = Home::new();
    let out = h.install(&[]);
    let (bin, shims) = (h.bin(), h.shims());

    assert_eq!(fs::read(&bin).unwrap(), fs::read(dbguard_bin()).unwrap());
    assert_eq!(mode(&bin), 0o755);
    assert_eq!(mode(&shims), 0o755);
    // The preload library for interactive sessions, where the installed
    // binary looks for it.
    let library = h.home.join(".local/lib/dbguard/libdbguard_preload.so");
    let built = dbguard_bin().with_file_name("libdbguard_preload.so");
    assert_eq!(fs::read(&library).unwrap(), fs::read(&built).unwrap());
    assert_eq!(mode(&library), 0o644);
    // And the check it loads from beside itself.
    let check = library.with_file_name("libdbguard_check.so");
    let built_check = built.with_file_name("libdbguard_check.so");
    assert_eq!(fs::read(&check).unwrap(), fs::read(&built_check).unwrap());
    assert_eq!(mode(&check), 0o644);
    let doctor = capture(
        Command::new(&bin)
            .arg("doctor")
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", shims.display())),
        None,
    );
    assert!(
        doctor
            .stdout_str()
            .contains(&format!("checked inside psql by {}", library.display())),
        "{}",
        doctor.stdout_str()
    );
    assert!(shims.join(".dbguard-shims").is_file());
    for tool in ["psql", "alembic", "dropdb", "pg_restore"] {
        assert_eq!(fs::read_link(shims.join(tool)).unwrap(), bin, "{tool} link");
    }
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!("export PATH=\"{}:$PATH\"", shims.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{} init bash --shim-dir {}",
            bin.display(),
            shims.display()
        )),
        "{stdout}"
    );

    // The installed shim is a working psql: the same output as the psql
    // behind it on PATH.
    let system_path = "/usr/local/bin:/usr/bin:/bin";
    let shim = capture(
        Command::new(shims.join("psql"))
            .arg("--version")
            .env_clear()
            .env("PATH", format!("{}:{system_path}", shims.display())),
        None,
    );
    let real_psql = which::which_in("psql", Some(system_path), "/").expect("psql on PATH");
    let real = capture(Command::new(real_psql).arg("--version"), None);
    assert_eq!(shim, real);
    assert!(shim.stdout_str().starts_with("psql (PostgreSQL)"));
}

#[test]
fn a_second_run_changes_nothing() {
    let h = Home::new();
    h.install(&[]);
    let before = h.tree();
    let inodes: Vec<u64> = [h.bin(), h.shims().join("psql"), h.shims().join("alembic")]
        .iter()
        .map(|p| inode(p))
        .collect();

    let out = h.install(&[]);
    assert_eq!(h.tree(), before);
    let after: Vec<u64> = [h.bin(), h.shims().join("psql"), h.shims().join("alembic")]
        .iter()
        .map(|p| inode(p))
        .collect();
    assert_eq!(after, inodes, "files were replaced");
    let stdout = out.stdout_str();
    assert!(stdout.contains("kept"), "{stdout}");
    assert!(!stdout.contains("linked "), "{stdout}");
}

#[test]
fn prefix_and_directory_options() {
    let h = Home::new();
    h.install(&["--prefix", "opt/dbg"]);
    let prefix = h.root().join("opt/dbg");
    let bin = prefix.join("bin/dbguard");
    assert!(bin.is_file());
    assert_eq!(
        fs::read_link(prefix.join("share/dbguard/shims/psql")).unwrap(),
        bin,
        "relative --prefix is taken from the working directory"
    );
    assert!(
        !h.home.join(".local").exists(),
        "HOME untouched with --prefix"
    );

    let h = Home::new();
    h.install(&["--bin-dir", "b", "--shim-dir", "s"]);
    assert_eq!(
        fs::read_link(h.root().join("s/alembic")).unwrap(),
        h.root().join("b/dbguard")
    );
    let out = h.run(&["--uninstall", "--shim-dir", "s"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(h.tree(), ["home/"]);
}

#[test]
fn refuses_to_overwrite_what_it_did_not_create_and_changes_nothing() {
    // A real psql sitting where a shim would go.
    let h = Home::new();
    fs::create_dir_all(h.shims()).unwrap();
    fs::write(h.shims().join("psql"), "#!/bin/sh\n").unwrap();
    let before = h.tree();
    let out = h.run(&["--binary", dbguard_bin().to_str().unwrap()]);
    assert_eq!(out.status, 1);
    let path = h.shims().join("psql").display().to_string();
    assert_eq!(
        out.stderr_str(),
        format!(
            "install.sh: error: refusing to overwrite {path}: install.sh did not create it; move it away or pass --shim-dir\n"
        )
    );
    assert_eq!(h.tree(), before, "nothing may change on refusal");

    // A link to some other program.
    let h = Home::new();
    fs::create_dir_all(h.shims()).unwrap();
    symlink("/bin/true", h.shims().join("alembic")).unwrap();
    let before = h.tree();
    let out = h.run(&["--binary", dbguard_bin().to_str().unwrap()]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr_str().contains("links to /bin/true"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(h.tree(), before);

    // Someone else's dbguard where the binary would go.
    let h = Home::new();
    fs::create_dir_all(h.bin().parent().unwrap()).unwrap();
    fs::write(h.bin(), "another program").unwrap();
    let out = h.run(&["--binary", dbguard_bin().to_str().unwrap()]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr_str()
            .contains(&format!("refusing to overwrite {}", h.bin().display())),
        "{}",
        out.stderr_str()
    );
    assert_eq!(fs::read(h.bin()).unwrap(), b"another program");
    assert!(!h.shims().exists());
}

#[test]
fn rejects_a_binary_that_is_not_dbguard() {
    let h = Home::new();
    let out = h.run(&["--binary", "/bin/true"]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr_str()
            .contains("/bin/true is not a dbguard binary"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(h.tree(), ["home/"]);
}

#[test]
fn missing_cargo_is_one_line_naming_rustup() {
    let h = Home::new();
    let mut cmd = h.script();
    // A PATH with the basic tools but certainly no cargo.
    let bin = h.root().join("tools");
    fs::create_dir(&bin).unwrap();
    for tool in ["bash", "dirname", "cat", "mkdir", "env"] {
        symlink(which::which(tool).unwrap(), bin.join(tool)).unwrap();
    }
    cmd.env("PATH", &bin);
    let out = capture(&mut cmd, None);
    assert_eq!(out.status, 1);
    let stderr = out.stderr_str();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cargo not found"), "{stderr}");
    assert!(stderr.contains("rustup"), "{stderr}");
}

#[test]
fn uninstall_removes_exactly_what_it_installed() {
    let h = Home::new();
    // Present before the install: must survive it and the uninstall.
    fs::create_dir_all(h.home.join(".local/share/dbguard/backups")).unwrap();
    fs::write(
        h.home.join(".local/share/dbguard/backups/keep.dump"),
        "data",
    )
    .unwrap();
    let before = h.tree();
    h.install(&["--modify-rc"]);
    // Added after the install by someone else.
    fs::write(h.shims().join("notes.txt"), "mine").unwrap();
    fs::write(h.home.join(".local/bin/other-tool"), "mine").unwrap();

    let out = h.run(&["--uninstall"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    let mut expected = before.clone();
    expected.extend([
        "home/.local/bin/".to_owned(),
        "home/.local/bin/other-tool (4 bytes)".to_owned(),
        "home/.local/share/dbguard/shims/".to_owned(),
        "home/.local/share/dbguard/shims/notes.txt (4 bytes)".to_owned(),
    ]);
    expected.sort();
    assert_eq!(h.tree(), expected);
    let stderr = out.stderr_str();
    assert!(stderr.contains("it is not empty"), "{stderr}");

    // A second uninstall has nothing left to do.
    let out = h.run(&["--uninstall"]);
    assert_eq!(out.status, 0);
    assert!(out.stdout_str().contains("nothing to uninstall"));
    assert_eq!(h.tree(), expected);
}

/// `dbguard uninstall`, run from the installed binary with no checkout in
/// sight, removes what install.sh made (binary, library, shims, manual
/// pages, rc block, directories it created) and nothing else, and says
/// where the backups are.
#[test]
fn dbguard_uninstall_needs_no_checkout_and_removes_exactly_what_was_installed() {
    let h = Home::new();
    let rc = h.home.join(".bashrc");
    fs::write(&rc, "# mine\n").unwrap();
    let backups = h.home.join(".local/share/dbguard/backups");
    fs::create_dir_all(&backups).unwrap();
    fs::write(backups.join("keep.dump"), "data").unwrap();
    let before = h.tree();
    h.install(&["--modify-rc"]);
    let man = h.home.join(".local/share/man/man1");
    let page = fs::read_to_string(man.join("dbguard.1")).expect("dbguard.1 installed");
    assert!(page.contains(".TH dbguard 1"), "{page}");
    assert!(man.join("dbguard-list.1").is_file());
    assert!(man.join("dbguard-uninstall.1").is_file());

    // From an unrelated directory, with only HOME and a system PATH: no
    // checkout, no install.sh.
    let elsewhere = tempfile::tempdir().unwrap();
    let uninstall = |extra: &[&str]| {
        capture(
            Command::new(h.bin())
                .arg("uninstall")
                .args(extra)
                .env_clear()
                .env("HOME", &h.home)
                .env("PATH", "/usr/bin:/bin")
                .current_dir(elsewhere.path()),
            None,
        )
    };
    let installed = h.tree();
    let dry = uninstall(&["--dry-run"]);
    assert_eq!(dry.status, 0, "{}", dry.stderr_str());
    assert!(
        dry.stdout_str().contains("would remove"),
        "{}",
        dry.stdout_str()
    );
    assert_eq!(h.tree(), installed, "--dry-run removes nothing");

    let out = uninstall(&[]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(h.tree(), before);
    assert_eq!(fs::read_to_string(&rc).unwrap(), "# mine\n");
    let stdout = out.stdout_str();
    assert!(stdout.contains("dbguard uninstalled."), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Backups were not touched: they are in {}",
            backups.display()
        )),
        "{stdout}"
    );
    assert_eq!(out.stderr_str(), "");
}

/// Regression: a failed build used to scroll past and the binary an earlier
/// build left in target/ was installed with exit 0. The failing cargo is a
/// stand-in: a real build failure cannot be produced on demand.
#[test]
fn a_failed_build_installs_nothing_even_with_a_stale_binary_in_target() {
    let h = Home::new();
    let tools = h.root().join("tools");
    fs::create_dir(&tools).unwrap();
    // Everything an install needs, so only the build can stop it.
    for tool in [
        "bash",
        "dirname",
        "cat",
        "mkdir",
        "env",
        "cc",
        "sed",
        "cp",
        "chmod",
        "mv",
        "ln",
        "readlink",
        "sha256sum",
        "cmp",
        "mktemp",
        "awk",
        "grep",
        "tail",
        "rm",
        "rmdir",
    ] {
        symlink(which::which(tool).unwrap(), tools.join(tool)).unwrap();
    }
    let cargo = tools.join("cargo");
    fs::write(
        &cargo,
        "#!/bin/sh\necho 'error: rustup could not choose a version of cargo to run' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
    // The stale binary an earlier build left behind.
    let target = h.root().join("cargo-target");
    fs::create_dir_all(target.join("release")).unwrap();
    fs::copy(dbguard_bin(), target.join("release/dbguard")).unwrap();
    let before = h.tree();

    let out = capture(
        h.script()
            .env("PATH", &tools)
            .env("CARGO_TARGET_DIR", &target),
        None,
    );
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("install.sh: error: the build failed (cargo build --release --locked, messages above); nothing was installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rustup could not choose"),
        "cargo's own message stays: {stderr}"
    );
    assert_eq!(h.tree(), before, "nothing installed");
    assert!(
        !out.stdout_str().contains("installed"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn uninstall_leaves_files_that_changed_since() {
    let h = Home::new();
    h.install(&[]);
    // The user repointed one shim and replaced the binary by hand.
    fs::remove_file(h.shims().join("alembic")).unwrap();
    symlink("/bin/true", h.shims().join("alembic")).unwrap();
    fs::remove_file(h.bin()).unwrap();
    fs::write(h.bin(), "a different build").unwrap();

    let out = h.run(&["--uninstall"]);
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert!(!h.shims().join("psql").exists());
    assert_eq!(
        fs::read_link(h.shims().join("alembic")).unwrap(),
        Path::new("/bin/true")
    );
    assert_eq!(fs::read(h.bin()).unwrap(), b"a different build");
    let stderr = out.stderr_str();
    assert!(stderr.contains("no longer links to"), "{stderr}");
    assert!(
        stderr.contains("changed since install.sh installed it"),
        "{stderr}"
    );
}

#[test]
fn modify_rc_appends_once_and_the_line_works_in_a_real_bash() {
    let h = Home::new();
    let rc = h.home.join(".bashrc");
    let original = "# my settings\nalias ll='ls -l'\n";
    fs::write(&rc, original).unwrap();

    h.install(&["--modify-rc"]);
    let once = fs::read_to_string(&rc).unwrap();
    h.install(&["--modify-rc"]);
    assert_eq!(
        fs::read_to_string(&rc).unwrap(),
        once,
        "second run changed the rc"
    );
    assert!(once.starts_with(original));
    assert_eq!(once.matches("# >>> dbguard >>>").count(), 1, "{once}");

    // An interactive bash reads ~/.bashrc: the shims come first, and stay
    // first after something prepends to PATH and a prompt is shown.
    let script =
        "echo \"one=$(type -P psql)\"\nPATH=/usr/local/sbin:$PATH\necho \"two=${PATH%%:*}\"\n";
    let out = capture(
        Command::new("bash")
            .arg("-i")
            .env_clear()
            .env("HOME", &h.home)
            .env("PATH", "/usr/bin:/bin")
            .env("TERM", "dumb")
            .current_dir(h.root()),
        Some(script.as_bytes()),
    );
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!("one={}", h.shims().join("psql").display())),
        "{stdout}\n{}",
        out.stderr_str()
    );
    assert!(
        stdout.contains(&format!("two={}", h.shims().display())),
        "{stdout}"
    );

    let out = h.run(&["--uninstall"]);
    assert_eq!(out.status, 0);
    assert_eq!(fs::read_to_string(&rc).unwrap(), original);
}

#[test]
fn modify_rc_for_fish_creates_and_removes_its_config() {
    let h = Home::new();
    h.install(&["--modify-rc", "--shell", "fish"]);
    let config = h.home.join(".config/fish/config.fish");
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!(
            "{} init fish --shim-dir {} | source",
            h.bin().display(),
            h.shims().display()
        )),
        "{text}"
    );
    h.run(&["--uninstall"]);
    assert_eq!(h.tree(), ["home/"], "the config it created goes too");
}

#[test]
fn modify_rc_needs_a_known_shell() {
    let h = Home::new();
    let out = capture(
        h.script().env("SHELL", "/bin/tcsh").args([
            "--binary",
            dbguard_bin().to_str().unwrap(),
            "--modify-rc",
        ]),
        None,
    );
    assert_eq!(out.status, 1);
    assert!(
        out.stderr_str().contains("pass --shell"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(h.tree(), ["home/"]);
}

#[test]
fn install_sh_is_shellcheck_clean() {
    let Ok(shellcheck) = which::which("shellcheck") else {
        eprintln!("shellcheck not installed; skipped");
        return;
    };
    let out = capture(Command::new(shellcheck).arg(install_sh()), None);
    assert_eq!(out.status, 0, "{}", out.stdout_str());
}

/// The build path, with `cargo` and `apt-get` replaced by recorders (the
/// real ones would take minutes and need root on a machine without a
/// compiler): cargo is called as documented, build-essential is installed
/// when `cc` is missing, and apt-get is left alone when it is present.
#[test]
fn build_path_installs_build_essential_only_when_cc_is_missing() {
    // The third case: a rustc that cannot say its host (a rustup without
    // its toolchain) once ended install.sh silently; it now takes the
    // ordinary build.
    for (cc_present, failing_rustc) in [(false, false), (true, false), (true, true)] {
        let h = Home::new();
        let tools = h.root().join("tools");
        fs::create_dir(&tools).unwrap();
        let mut needed = vec![
            "bash",
            "dirname",
            "cat",
            "mkdir",
            "env",
            "cp",
            "chmod",
            "mv",
            "ln",
            "readlink",
            "sha256sum",
            "cmp",
            "mktemp",
            "awk",
            "grep",
            "tail",
            "rm",
            "rmdir",
            "sed",
        ];
        if cc_present {
            needed.push("cc");
        }
        for tool in needed {
            symlink(which::which(tool).unwrap(), tools.join(tool)).unwrap();
        }
        let log = h.root().join("calls.log");
        let target = h.root().join("cargo-target");
        let recorder = |name: &str, extra: &str| {
            let path = tools.join(name);
            fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"{name} $* (in $PWD)\" >> '{}'\n{extra}",
                    log.display()
                ),
            )
            .unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        };
        recorder("apt-get", "");
        if failing_rustc {
            let rustc = tools.join("rustc");
            fs::write(
                &rustc,
                "#!/bin/sh\necho 'error: no default toolchain' >&2\nexit 1\n",
            )
            .unwrap();
            fs::set_permissions(&rustc, fs::Permissions::from_mode(0o755)).unwrap();
        }
        recorder(
            "cargo",
            &format!(
                "mkdir -p \"$CARGO_TARGET_DIR/release\" && cp '{}' \"$CARGO_TARGET_DIR/release/dbguard\"\n",
                dbguard_bin().display()
            ),
        );

        let out = capture(
            h.script()
                .env("PATH", &tools)
                .env("CARGO_TARGET_DIR", &target),
            None,
        );
        assert_eq!(
            out.status,
            0,
            "cc present: {cc_present}\n{}",
            out.stderr_str()
        );
        let calls = fs::read_to_string(&log).unwrap();
        let repo = env!("CARGO_MANIFEST_DIR");
        // The binary and check library, then the first stage of the preload
        // library (a workspace of its own), into the same target directory.
        let cargo_call = format!(
            "cargo build --release --locked (in {repo})\n\
             cargo build --release --locked --manifest-path preload/first/Cargo.toml --target-dir {target} (in {repo})\n",
            target = target.display()
        );
        let expected = if cc_present {
            cargo_call
        } else {
            format!(
                "apt-get update -qq (in {root})\napt-get install -y -qq build-essential (in {root})\n{cargo_call}",
                root = h.root().display()
            )
        };
        assert_eq!(calls, expected, "cc present: {cc_present}");
        assert_eq!(fs::read(h.bin()).unwrap(), fs::read(dbguard_bin()).unwrap());
    }
}
