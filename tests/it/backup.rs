//! `dbguard backup`, `list`, `verify`, `prune` and `restore` against the
//! real cluster with the real pg_dump, pg_restore and psql. Fakes appear
//! only to inject faults the real tools cannot produce on demand.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::guarded::{self, exit_code};
use crate::support::sandbox::capture;
use crate::support::{Output, Sandbox, TestDb, cluster};

/// A database with data and a sandbox pointing at it, backups in `store`.
struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

const SAMPLE: &str = "
    create table users (id serial primary key, email text not null unique,
                        created timestamptz not null default '2020-01-01 00:00+00');
    create table orders (id bigserial primary key,
                         user_id int references users(id) on delete cascade,
                         total numeric(10,2), note text);
    insert into users (email) select 'u' || g || '@example.com' from generate_series(1, 500) g;
    insert into orders (user_id, total, note)
      select (g % 500) + 1, g * 1.5,
             case when g % 7 = 0 then E'multi\\nline\\ttab \\\\ back' end
      from generate_series(1, 2000) g;
    create view big_orders as select * from orders where total > 100;
    create schema \"Odd Schema\";
    create table \"Odd Schema\".\"Mixed Case\" (v text);
    insert into \"Odd Schema\".\"Mixed Case\" values ('a'), ('b');
    create table alembic_version (version_num varchar(32) primary key);
    insert into alembic_version values ('0004');
    analyze;
";

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    capture(sandbox.dbguard().args(args), None)
}

/// Like `run`, in a new session: no controlling terminal at all.
fn run_without_terminal(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = sandbox.dbguard();
    cmd.args(args);
    // SAFETY: setsid is async-signal-safe; it detaches from the terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    capture(&mut cmd, None)
}

fn ok(out: &Output) -> &Output {
    assert_eq!(
        out.status,
        0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
    out
}

/// The id printed by a successful `dbguard backup`.
fn backup_id(out: &Output) -> String {
    out.stdout_str()
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no id in {}", out.stdout_str()))
}

/// A plain pg_dump of the database, for before/after comparisons.
fn pg_dump_text(db: &TestDb) -> String {
    let out = Command::new(cluster().client("pg_dump"))
        .envs(db.env())
        .args(["--no-sync", "-d", &db.name])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 dump");
    // pg_dump 15.14+ brackets the script with a random \restrict key.
    text.lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names in the store directory, sorted, without the lock and journal.
fn store_files(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(".dbguard-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"(backup_)?t\d+_[a-z_]+?_\d{8}_\d{6}(_\d+)?", "[ID]"),
        (r"/tmp/[^\s:)]+", "[PATH]"),
        (r"\bt\d+_[a-z_]+\b", "[DB]"),
        (r"[0-9a-f]{64}", "[SHA256]"),
        (r"\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "[SIZE]"),
        (r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?", "[TIME]"),
        (r"\d+\.\d+ s\b", "[SECS]"),
        (r":\d{4,5}\b", ":[PORT]"),
        // Column widths follow the (test-order dependent) database name length.
        (r"  +", "  "),
        (r" +\n", "\n"),
    ]
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ filters => filters(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn round_trip_in_every_format_restores_exactly_what_was_dumped() {
    for format in ["plain", "custom", "directory"] {
        let s = setup(&format!("round_trip_{format}"));
        s.db.sql(SAMPLE);
        let before = pg_dump_text(&s.db);

        let out = run(
            &s.sandbox,
            &[
                "backup",
                "--yes",
                "--format",
                format,
                "--reason",
                "round trip",
            ],
        );
        let id = backup_id(ok(&out));
        assert_eq!(mode(&s.store), 0o700, "backup directory is private");
        let meta_path = s.store.join(format!("{id}.json"));
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(&meta_path).expect("metadata")).expect("json");
        assert_eq!(meta["format"], format);
        assert_eq!(meta["database"], s.db.name.as_str());
        assert_eq!(meta["alembic_revision"], "0004");
        assert_eq!(meta["scope"], "database");
        let data = s.store.join(meta["file"].as_str().expect("file name"));
        assert_eq!(mode(&meta_path), 0o600);
        if format == "directory" {
            assert_eq!(mode(&data), 0o700);
            for f in fs::read_dir(&data).expect("dir").flatten() {
                assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
            }
        } else {
            assert_eq!(mode(&data), 0o600);
        }
        if format == "plain" {
            let users = meta["tables"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["name"] == "orders"))
                .expect("orders in metadata");
            assert_eq!(users["rows"], 2000, "exact rows counted from the dump");
        }

        s.db.sql(
            "drop view big_orders; drop table orders; truncate users cascade;
             insert into users (email) values ('intruder'); drop schema \"Odd Schema\" cascade;
             update alembic_version set version_num = '0001'",
        );
        let out = run(&s.sandbox, &["restore", &id, "--yes"]);
        ok(&out);
        assert!(
            out.stdout_str()
                .contains("Safety backup of the current state: backup_")
        );
        assert!(
            out.stdout_str().contains("with the expected rows"),
            "{}",
            out.stdout_str()
        );
        let after = pg_dump_text(&s.db);
        assert!(before == after, "{format}: database differs after restore");
    }
}

#[test]
fn backup_report_list_and_verify_output() {
    let s = setup("report");
    s.db.sql(SAMPLE);
    let out = run(&s.sandbox, &["backup", "-y", "--reason", "before cleanup"]);
    snapshot!("backup_stdout", ok(&out).stdout_str());
    snapshot!("backup_stderr_without_terminal", out.stderr_str());
    let list = run(&s.sandbox, &["list"]);
    snapshot!("list_text", ok(&list).stdout_str());
    let json: serde_json::Value =
        serde_json::from_slice(&run(&s.sandbox, &["list", "--json"]).stdout).expect("json");
    assert_eq!(json[0]["state"], "complete");
    assert_eq!(json[0]["reason"], "before cleanup");
    assert_eq!(json[0]["last_verification"]["how"], "created");
    let verify = run(&s.sandbox, &["verify"]);
    snapshot!("verify_ok", ok(&verify).stdout_str());
}

#[test]
fn one_flipped_byte_makes_verify_and_restore_refuse() {
    let s = setup("flipped");
    s.db.sql(SAMPLE);
    for format in ["plain", "directory"] {
        let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y", "-F", format])));
        let ext = if format == "plain" { "sql" } else { "dir" };
        let data = s.store.join(format!("{id}.{ext}"));
        let victim = if format == "plain" {
            data.clone()
        } else {
            data.join("toc.dat")
        };
        let mut bytes = fs::read(&victim).expect("read backup");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&victim, &bytes).expect("write backup");

        let out = run(&s.sandbox, &["verify", &id]);
        assert_eq!(out.status, 1, "{}", out.stdout_str());
        assert!(
            out.stdout_str().starts_with("CORRUPTED"),
            "{}",
            out.stdout_str()
        );
        if format == "directory" {
            assert!(
                out.stdout_str().contains("toc.dat changed"),
                "{}",
                out.stdout_str()
            );
        }
        let before = pg_dump_text(&s.db);
        let out = run(&s.sandbox, &["restore", &id, "--yes"]);
        assert_eq!(out.status, 1);
        assert!(
            out.stderr_str().contains("refusing to restore"),
            "{}",
            out.stderr_str()
        );
        assert_eq!(before, pg_dump_text(&s.db), "nothing was touched");
        if format == "plain" {
            snapshot!("restore_refuses_corrupted", out.stderr_str());
        }
    }
    // Metadata gone: INCOMPLETE; data gone: MISSING; unknown id: MISSING.
    let a = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    fs::remove_file(s.store.join(format!("{a}.json"))).expect("remove metadata");
    let b = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    fs::remove_file(s.store.join(format!("{b}.sql"))).expect("remove data");
    let out = run(
        &s.sandbox,
        &["verify", &a, &b, "backup_nope_20200101_000000"],
    );
    assert_eq!(out.status, 1);
    snapshot!("verify_bad_states", out.stdout_str());
    let out = run(&s.sandbox, &["restore", &a, "--yes"]);
    assert_eq!(out.status, 1, "{}", out.stderr_str());
    assert!(out.stderr_str().contains("INCOMPLETE"));
}

/// A pg_dump that writes the start of a dump, then fails (or pretends not to).
fn fake_pg_dump(sandbox: &mut Sandbox, exit_code: i32) -> PathBuf {
    let dir = sandbox.dir.path().join(format!("fake-{exit_code}"));
    fs::create_dir_all(&dir).expect("fake dir");
    let script = dir.join("pg_dump");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec {real} --version\n\
             printf -- '--\\n-- PostgreSQL database dump\\n--\\nCOPY public.users (id) FROM stdin;\\n1\\n2\\n'\n\
             echo 'pg_dump: error: simulated failure half-way' >&2\nexit {exit_code}\n",
            real = cluster().client("pg_dump").display()
        ),
    )
    .expect("write fake");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod fake");
    sandbox.path = format!("{}:{}", dir.display(), sandbox.path);
    dir
}

#[test]
fn pg_dump_failing_half_way_leaves_nothing_behind() {
    for (code, message) in [
        (
            1,
            "pg_dump exited with status 1: simulated failure half-way",
        ),
        (0, "without its \"dump complete\" trailer"),
    ] {
        let mut s = setup("fake_dump");
        s.db.sql(SAMPLE);
        fake_pg_dump(&mut s.sandbox, code);
        let out = run(&s.sandbox, &["backup", "-y"]);
        assert_eq!(out.status, 2, "{}", out.stderr_str());
        let err = out.stderr_str();
        assert!(err.contains(message), "{err}");
        assert!(
            err.ends_with("nothing was saved\n") && err.lines().count() == 2,
            "{err}"
        );
        assert_eq!(store_files(&s.store), Vec::<String>::new());
    }
}

/// Regression: a backup killed with SIGKILL left a hidden `.partial` file
/// that nothing ever removed. It is never listed, and prune removes it once
/// no process holds it.
#[test]
fn a_killed_backup_leaves_only_a_hidden_partial_that_prune_removes() {
    let mut s = setup("killed");
    s.db.sql(SAMPLE);
    // A pg_dump that writes the start of a dump and then hangs, so the
    // backup can be killed while its temporary file is open.
    let dir = s.sandbox.dir.path().join("fake-hang");
    fs::create_dir_all(&dir).expect("fake dir");
    let script = dir.join("pg_dump");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec {real} --version\n\
             printf -- '--\\n-- PostgreSQL database dump\\n--\\n'\nexec sleep 30\n",
            real = cluster().client("pg_dump").display()
        ),
    )
    .expect("write fake");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod fake");
    s.sandbox.path = format!("{}:{}", dir.display(), s.sandbox.path);

    let mut backup = s.sandbox.dbguard();
    backup
        .args(["backup", "-y"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let child = backup.spawn().expect("start dbguard backup");
    let partial = |store: &Path| -> Option<PathBuf> {
        fs::read_dir(store)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-backup_"))
            })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = loop {
        if let Some(path) = partial(&s.store) {
            break path;
        }
        assert!(
            Instant::now() < deadline,
            "the backup never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SIGKILL to dbguard and its fake pg_dump alike: nothing gets to clean up.
    let group = child.id() as libc::pid_t;
    // SAFETY: plain syscall; the group is the one spawned above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let mut child = child;
    child.wait().expect("reap dbguard");

    assert_eq!(store_files(&s.store).len(), 1, "only the partial is left");
    let list = ok(&run(&s.sandbox, &["list"])).stdout_str();
    assert!(!list.contains(".tmp-"), "{list}");
    // Too young to be called stale: it might be a backup that has just begun.
    let young = ok(&run(&s.sandbox, &["prune"])).stdout_str();
    assert!(!young.contains(".tmp-"), "{young}");
    assert!(left.exists());

    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::open(&left)
        .and_then(|f| f.set_modified(an_hour_ago))
        .expect("age the partial");
    let dry = ok(&run(&s.sandbox, &["prune", "--dry-run"])).stdout_str();
    assert!(dry.contains("would remove"), "{dry}");
    assert!(left.exists(), "a dry run removes nothing");
    let pruned = ok(&run(&s.sandbox, &["prune"])).stdout_str();
    let name = left
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        pruned
            .lines()
            .any(|l| l.starts_with("remove") && l.contains(&name) && l.contains("interrupted")),
        "{pruned}"
    );
    assert!(!left.exists());
    assert_eq!(store_files(&s.store), Vec::<String>::new());
}

#[test]
fn pg_dump_whose_connection_is_terminated_leaves_nothing_behind() {
    let s = setup("terminated");
    s.db.sql(
        "create table big (id int, payload text);
         insert into big select g, repeat(md5(g::text), 8) from generate_series(1, 400000) g;",
    );
    let name = s.db.name.clone();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let killed = cluster().sql(
                "postgres",
                &format!(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity \
                     where datname = '{name}' and query ilike 'COPY public.big%'"
                ),
            );
            if killed != "0" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    let out = run(&s.sandbox, &["backup", "-y"]);
    assert!(
        killer.join().expect("killer thread"),
        "pg_dump's COPY was never seen"
    );
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("pg_dump exited with status 1"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(store_files(&s.store), Vec::<String>::new());
}

/// Mounts a tmpfs at `dir` (root only); false when mounting is not allowed.
fn mount_tmpfs(dir: &Path, options: &str) -> bool {
    fs::create_dir_all(dir).expect("mount point");
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

fn umount(dir: &Path) {
    let _ = Command::new("umount").arg(dir).status();
}

#[test]
fn a_full_disk_fails_cleanly() {
    let s = setup("full_disk");
    s.db.sql(
        "create table filler (id int, payload text);
         insert into filler select g, repeat(md5(g::text), 4) from generate_series(1, 20000) g;",
    );
    if !mount_tmpfs(&s.store, "size=256k,mode=0700") {
        eprintln!("skipped: cannot mount a tmpfs here (the injected-writer unit test covers this)");
        return;
    }
    let out = run(&s.sandbox, &["backup", "-y"]);
    let files = store_files(&s.store);
    umount(&s.store);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("No space left on device"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(files, Vec::<String>::new(), "no partial file remains");
}

#[test]
fn an_unwritable_backup_directory_fails_in_one_line() {
    let s = setup("unwritable");
    s.db.sql(SAMPLE);
    let read_only = if nix::unistd::Uid::effective().is_root() {
        // Permission bits do not stop root; a read-only mount does.
        if !mount_tmpfs(&s.store, "ro,size=64k") {
            eprintln!("skipped: cannot mount a read-only tmpfs here");
            return;
        }
        true
    } else {
        fs::create_dir_all(&s.store).expect("store");
        fs::set_permissions(&s.store, fs::Permissions::from_mode(0o500)).expect("chmod");
        false
    };
    let out = run(&s.sandbox, &["backup", "-y"]);
    if read_only {
        umount(&s.store);
    }
    assert_eq!(out.status, 2);
    assert_eq!(out.stderr_str().lines().count(), 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains("backup failed: cannot"),
        "{}",
        out.stderr_str()
    );
}

#[test]
fn an_unreachable_server_is_one_clear_line() {
    let s = setup("unreachable");
    let out = run(
        &s.sandbox,
        &[
            "backup",
            "-y",
            "-h",
            "127.0.0.1",
            "-p",
            "1",
            "-d",
            "nowhere",
        ],
    );
    assert_eq!(out.status, 2);
    assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
    snapshot!("unreachable", out.stderr_str());
    assert!(!s.store.exists() || store_files(&s.store).is_empty());
}

#[test]
fn a_password_in_the_uri_goes_nowhere_on_disk_nor_on_argv() {
    let mut s = setup("password");
    s.db.sql(SAMPLE);
    let secret = "Sup3rSecretPw";
    // A wrapper around the real pg_dump records its argv and whether it got
    // PGPASSWORD, then becomes the real pg_dump.
    let spy_dir = s.sandbox.dir.path().join("spy");
    fs::create_dir_all(&spy_dir).expect("spy dir");
    let log = s.sandbox.dir.path().join("spy.log");
    let spy = spy_dir.join("pg_dump");
    fs::write(
        &spy,
        format!(
            "#!/bin/sh\necho \"argv: $*\" >> {log}\n[ \"$PGPASSWORD\" = {secret} ] && echo 'env: PGPASSWORD' >> {log}\nexec {real} \"$@\"\n",
            log = log.display(),
            real = cluster().client("pg_dump").display()
        ),
    )
    .expect("spy");
    fs::set_permissions(&spy, fs::Permissions::from_mode(0o755)).expect("chmod spy");
    s.sandbox.path = format!("{}:{}", spy_dir.display(), s.sandbox.path);

    let uri = format!(
        "postgresql://postgres:{secret}@127.0.0.1:{}/{}?sslmode=disable",
        cluster().port,
        s.db.name
    );
    let reason = format!("psql {uri} -c 'drop table users'");
    let out = run(&s.sandbox, &["backup", "-y", "--reason", &reason, &uri]);
    ok(&out);
    assert!(!out.stdout_str().contains(secret) && !out.stderr_str().contains(secret));
    let spied = fs::read_to_string(&log).expect("spy log");
    assert!(spied.contains("env: PGPASSWORD"), "{spied}");
    assert!(
        !spied.contains(secret),
        "password on pg_dump's argv: {spied}"
    );
    for entry in fs::read_dir(&s.store).expect("store").flatten() {
        let bytes = fs::read(entry.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "password in {}",
            entry.path().display()
        );
    }
    let list = run(&s.sandbox, &["list", "--json"]);
    assert!(
        list.stdout_str()
            .contains("psql postgresql://postgres@127.0.0.1")
    );
}

#[test]
fn scoped_backup_holds_only_the_named_tables() {
    let s = setup("scoped");
    s.db.sql(SAMPLE);
    let id = backup_id(ok(&run(
        &s.sandbox,
        &["backup", "-y", "-t", "public.orders"],
    )));
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(s.store.join(format!("{id}.json"))).expect("meta"))
            .expect("json");
    assert_eq!(meta["scope"], serde_json::json!(["public.orders"]));
    let names: Vec<&str> = meta["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["orders"]);
    let sql = fs::read_to_string(s.store.join(format!("{id}.sql"))).expect("dump");
    assert!(sql.contains("COPY public.orders") && !sql.contains("COPY public.users"));
}

/// Writes a copy of backup `id` under another id and creation time, as if
/// it had been taken then.
fn clone_backup(store: &Path, id: &str, new_id: &str, created_at: &str) {
    fs::copy(
        store.join(format!("{id}.sql")),
        store.join(format!("{new_id}.sql")),
    )
    .expect("copy");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&fs::read(store.join(format!("{id}.json"))).expect("meta"))
            .expect("json");
    meta["id"] = new_id.into();
    meta["file"] = format!("{new_id}.sql").into();
    meta["created_at"] = created_at.into();
    fs::write(
        store.join(format!("{new_id}.json")),
        serde_json::to_vec_pretty(&meta).expect("encode"),
    )
    .expect("write meta");
}

#[test]
fn prune_applies_the_rules_and_keeps_the_newest_verified() {
    let mut s = setup("prune");
    s.db.sql("create table t (x int)");
    let config = s.sandbox.dir.path().join(".dbguard.toml");
    fs::write(&config, "[retention]\nkeep_last = 1\nkeep_daily = 2\n").expect("config");
    s.sandbox
        .set("DBGUARD_CONFIG", config.to_str().expect("utf-8"));
    let real = backup_id(ok(&run(&s.sandbox, &["backup", "-y", "--no-prune"])));
    let history = [
        ("backup_hist_20200101_090000", "2020-01-01T09:00:00+00:00"),
        ("backup_hist_20200101_180000", "2020-01-01T18:00:00+00:00"),
        ("backup_hist_20200102_090000", "2020-01-02T09:00:00+00:00"),
        ("backup_hist_20200105_090000", "2020-01-05T09:00:00+00:00"),
        ("backup_hist_20990101_000000", "2099-01-01T00:00:00+00:00"),
    ];
    for (id, at) in history {
        clone_backup(&s.store, &real, id, at);
    }
    fs::remove_file(s.store.join(format!("{real}.json"))).expect("drop real metadata");
    fs::remove_file(s.store.join(format!("{real}.sql"))).expect("drop real data");
    // The oldest one was re-read and found good: it must survive.
    ok(&run(&s.sandbox, &["verify", "backup_hist_20200101_090000"]));

    let dry = run(&s.sandbox, &["prune", "--dry-run"]);
    snapshot!("prune_dry_run", ok(&dry).stdout_str());
    assert_eq!(store_files(&s.store).len(), 10, "dry run removes nothing");
    ok(&run(&s.sandbox, &["prune"]));
    assert_eq!(
        store_files(&s.store),
        [
            "audit.jsonl",
            "backup_hist_20200101_090000.json",
            "backup_hist_20200101_090000.sql",
            "backup_hist_20200102_090000.json",
            "backup_hist_20200102_090000.sql",
            "backup_hist_20200105_090000.json",
            "backup_hist_20200105_090000.sql",
            "backup_hist_20990101_000000.json",
            "backup_hist_20990101_000000.sql",
        ]
    );
    // A new backup is kept, and being verified at creation it is now the
    // newest verified one: the rules alone decide about the older ones.
    fs::write(&config, "[retention]\nkeep_within = \"0\"\nkeep_last = 1\n").expect("config");
    let out = run(&s.sandbox, &["backup", "-y"]);
    let new = backup_id(ok(&out));
    assert!(s.store.join(format!("{new}.sql")).exists());
    assert!(!s.store.join("backup_hist_20200101_090000.sql").exists());
    assert!(
        s.store.join("backup_hist_20990101_000000.sql").exists(),
        "dated in the future"
    );
}

#[test]
fn without_a_terminal_or_yes_restore_does_nothing_but_backup_runs() {
    let s = setup("no_tty");
    s.db.sql(SAMPLE);
    // A dump only reads: nothing to confirm, with or without a terminal.
    let id = backup_id(ok(&run_without_terminal(&s.sandbox, &["backup"])));
    assert_eq!(store_files(&s.store).len(), 2);
    // `--force` from scripts written when backup asked is still accepted.
    ok(&run(&s.sandbox, &["backup", "--force"]));
    s.db.sql("insert into users (email) values ('new')");
    let out = run_without_terminal(&s.sandbox, &["restore", &id]);
    assert_eq!(out.status, 77, "{}", out.stderr_str());
    assert_eq!(
        s.db.sql("select count(*) from users"),
        "501",
        "not restored"
    );

    let mut yes = Sandbox::psql_only().with_db(&s.db);
    yes.set("DBGUARD_BACKUP_DIR", s.store.to_str().expect("utf-8"));
    yes.set("DBGUARD_YES", "1");
    ok(&run_without_terminal(
        &yes,
        &["restore", &id, "--no-safety-backup"],
    ));
    assert_eq!(s.db.sql("select count(*) from users"), "500", "restored");
}

/// Runs dbguard on a pseudo-terminal with stdin from /dev/null, so the
/// answer can only come through /dev/tty.
fn on_terminal(sandbox: &Sandbox, args: &[&str]) -> expectrl::session::OsSession {
    guarded::on_terminal(
        sandbox,
        &crate::support::sandbox::dbguard_bin(),
        args,
        None,
        None,
    )
}

#[test]
fn restore_asks_for_the_database_name_on_the_terminal() {
    use expectrl::Expect;
    let s = setup("tty_restore");
    s.db.sql(SAMPLE);
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    s.db.sql("delete from orders");

    // A bare "yes" is not the database name.
    let mut p = on_terminal(&s.sandbox, &["restore", &id]);
    p.expect(format!("Type \"{}\" to continue", s.db.name).as_str())
        .expect("prompt");
    p.send_line("yes").expect("type");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 77);
    assert_eq!(s.db.sql("select count(*) from orders"), "0");

    let mut p = on_terminal(&s.sandbox, &["restore", &id]);
    let shown = p.expect("to continue").expect("prompt");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        summary.contains("Now:") && summary.contains("public.orders"),
        "{summary}"
    );
    p.send_line(&s.db.name).expect("type");
    p.expect("with the expected rows").expect("restored");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(s.db.sql("select count(*) from orders"), "2000");
}

#[test]
fn backup_does_not_ask_before_a_read_only_dump() {
    use expectrl::Expect;
    let s = setup("tty_backup");
    s.db.sql(SAMPLE);
    let mut p = on_terminal(&s.sandbox, &["backup"]);
    let shown = p.expect("Backed up database").expect("backed up");
    let before = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(!before.contains("[y/N]"), "{before}");
    assert!(before.contains("Backing up"), "{before}");
    p.expect(expectrl::Eof).expect("end");
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(store_files(&s.store).len(), 2);
}

/// `latest`, `latest:DB` and a unique prefix name a backup for every
/// command that takes an id; an ambiguous prefix lists the candidates.
#[test]
fn ids_latest_and_prefixes() {
    let s = setup("ids");
    s.db.sql(SAMPLE);
    let first = backup_id(ok(&run(&s.sandbox, &["backup", "--no-prune"])));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = backup_id(ok(&run(&s.sandbox, &["backup", "--no-prune"])));
    assert_ne!(first, second);

    let verified = ok(&run(&s.sandbox, &["verify", "latest"])).stdout_str();
    assert!(
        verified.contains(&second) && !verified.contains(&first),
        "{verified}"
    );
    let by_db = format!("latest:{}", s.db.name);
    let verified = ok(&run(&s.sandbox, &["verify", &by_db])).stdout_str();
    assert!(verified.contains(&second), "{verified}");
    // The short id as `list` shows it (prefixes: backup::catalog's tests).
    let short = first.strip_prefix("backup_").unwrap();
    let verified = ok(&run(&s.sandbox, &["verify", short])).stdout_str();
    assert!(verified.contains(&first), "{verified}");

    let ambiguous = format!("{}_", s.db.name);
    let out = run(&s.sandbox, &["restore", &ambiguous, "-y"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    let err = out.stderr_str();
    assert!(err.contains("matches 2 backups"), "{err}");
    assert!(err.contains(short), "{err}");

    s.db.sql("delete from orders");
    ok(&run(
        &s.sandbox,
        &["restore", "latest", "-y", "--no-safety-backup"],
    ));
    assert_eq!(s.db.sql("select count(*) from orders"), "2000");

    let listed = ok(&run(&s.sandbox, &["list", "--database", &s.db.name])).stdout_str();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let none = ok(&run(&s.sandbox, &["list", "--database", "no_such_db"])).stdout_str();
    assert!(none.starts_with("No backups of no_such_db"), "{none}");
}

#[test]
fn restore_into_another_database_says_so_and_creates_it_if_needed() {
    let s = setup("other_db");
    s.db.sql(SAMPLE);
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y", "-F", "custom"])));
    let copy = format!("{}_copy", s.db.name);
    let out = run(&s.sandbox, &["restore", &id, "-y", "-d", &copy]);
    ok(&out);
    assert!(
        out.stderr_str().contains("into a DIFFERENT database"),
        "{}",
        out.stderr_str()
    );
    assert!(
        out.stderr_str()
            .contains("does not exist; it will be created")
    );
    assert_eq!(cluster().sql(&copy, "select count(*) from orders"), "2000");
    cluster().sql("postgres", &format!("drop database \"{copy}\""));
}

/// Regression: restoring over TCP into the database a backup was taken
/// from over the socket was announced as a DIFFERENT database. The servers
/// are now asked who they are.
#[test]
fn restore_to_the_same_database_spelled_another_way_is_not_called_different() {
    let s = setup("same_db");
    s.db.sql(SAMPLE);
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    s.db.sql("delete from orders");
    let out = run(
        &s.sandbox,
        &[
            "restore",
            &id,
            "-y",
            "--no-safety-backup",
            "-h",
            "127.0.0.1",
            "-d",
            &s.db.name,
        ],
    );
    ok(&out);
    let err = out.stderr_str();
    assert!(!err.contains("DIFFERENT"), "{err}");
    assert!(err.contains(&s.db.name), "{err}");
    assert_eq!(
        cluster().sql(&s.db.name, "select count(*) from orders"),
        "2000"
    );
}
