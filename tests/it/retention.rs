//! Retention, ids and configuration strictness against the real cluster
//! with the real pg_dump: retention per database, `keep_within`, the
//! refusal of a policy that keeps nothing, removals printed and audited
//! (the guard's automatic prune included), orphaned data files, ids of
//! backups started in the same second, config typos, and argument errors
//! in one line.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::guarded::{self, audit_lines};
use crate::support::sandbox::capture;
use crate::support::{Output, Sandbox, TestDb, cluster};

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
    config: PathBuf,
}

/// A database with one table, a sandbox pointing at it, backups in
/// `store`, and `config` (written with `retention`) as the configuration.
fn setup(hint: &str, config_text: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql("create table t (x int); insert into t select generate_series(1, 100);");
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    let config = sandbox.dir.path().join("dbguard.toml");
    fs::write(&config, config_text).expect("write config");
    sandbox.set("DBGUARD_CONFIG", config.to_str().expect("utf-8 temp path"));
    Setup {
        db,
        sandbox,
        store,
        config,
    }
}

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    capture(sandbox.dbguard().args(args), None)
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

/// Ids of the complete backups (data and sidecar) in the store, sorted.
fn complete_ids(store: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(store)
        .map(|r| {
            r.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".json")?.to_owned();
                    (name.starts_with("backup_") && has_data(store, &stem)).then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn has_data(store: &Path, id: &str) -> bool {
    ["sql", "dump", "dir"]
        .iter()
        .any(|ext| store.join(format!("{id}.{ext}")).exists())
}

/// Ids recorded as `pruned` in the audit log.
fn pruned_in_audit(store: &Path) -> Vec<String> {
    let mut ids: Vec<String> = audit_lines(store)
        .iter()
        .filter(|l| l["decision"] == "pruned")
        .filter_map(|l| l["backups"][0]["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Writes a copy of backup `id` as `new_id`, dated `created_at`, as if it
/// had been taken then.
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

fn age(path: &Path) {
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::open(path)
        .and_then(|f| f.set_modified(an_hour_ago))
        .expect("age the file");
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![(r"/tmp/[^\s:)]+", "[PATH]"), (r"\bt\d+_[a-z_]+\b", "[DB]")]
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ filters => filters(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// Regression: with one pool for every database, backups of a busy
/// database pushed out the only backup of a quiet one within minutes.
#[test]
fn retention_is_per_database_and_the_quiet_database_keeps_its_only_backup() {
    let s = setup("busy", "[retention]\nkeep_within = \"0\"\nkeep_last = 2\n");
    let quiet = cluster().create_db("quiet");
    quiet.sql("create table q (x int); insert into q values (1);");
    let only = backup_id(ok(&run(&s.sandbox, &["backup", "-y", "-d", &quiet.name])));

    let mut busy = Vec::new();
    let mut printed = String::new();
    for _ in 0..4 {
        let out = run(&s.sandbox, &["backup", "-y"]);
        busy.push(backup_id(ok(&out)));
        printed.push_str(&out.stderr_str());
    }
    let mut expected = vec![only.clone(), busy[2].clone(), busy[3].clone()];
    expected.sort();
    assert_eq!(complete_ids(&s.store), expected);

    // Each removal was printed on stderr and audited, and nothing else was.
    for gone in &busy[..2] {
        assert!(
            printed.lines().any(|l| l.starts_with(&format!(
                "dbguard: pruned {gone} (database \"{}\"",
                s.db.name
            ))),
            "{printed}"
        );
    }
    let mut gone = busy[..2].to_vec();
    gone.sort();
    assert_eq!(pruned_in_audit(&s.store), gone);
    let record = audit_lines(&s.store)
        .into_iter()
        .find(|l| l["decision"] == "pruned")
        .expect("a pruned record");
    assert_eq!(record["target"]["database"], s.db.name.as_str());
    assert_eq!(record["tool"], "dbguard");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains("keep_last 2") && d.contains("no rule keeps it")),
        "{record}"
    );

    // `dbguard prune` reports database by database.
    let report = ok(&run(&s.sandbox, &["prune", "--dry-run"])).stdout_str();
    assert!(
        report.contains(&format!("Backups of \"{}\" on ", quiet.name)),
        "{report}"
    );
    assert!(
        report.contains(&format!("Backups of \"{}\" on ", s.db.name)),
        "{report}"
    );
    assert!(
        report.ends_with("3 backups of 2 database(s): 3 kept, 0 would be removed\n"),
        "{report}"
    );
}

/// The guard's own automatic prune says what it removed on stderr (stdout
/// is psql's) and records it.
#[test]
fn the_guards_automatic_prune_is_printed_and_audited() {
    let mut s = setup(
        "guard_prune",
        "[retention]\nkeep_within = \"0\"\nkeep_last = 1\n",
    );
    let first = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    // Older than the newest verified one, so that only the rules decide.
    clone_backup(
        &s.store,
        &first,
        "backup_old_20200101_000000",
        "2020-01-01T00:00:00+00:00",
    );
    s.sandbox.set("DBGUARD_YES", "1");
    let out = guarded::without_terminal(
        s.sandbox.shim("psql").args(["-X", "-c", "drop table t"]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    assert_eq!(
        s.db.sql("select to_regclass('t') is null"),
        "t",
        "the drop ran"
    );
    let err = out.stderr_str();
    for gone in [&first, "backup_old_20200101_000000"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("dbguard: pruned {gone} "))),
            "{err}"
        );
    }
    assert!(!out.stdout_str().contains("pruned"), "stdout is psql's");
    let mut gone = vec![first.clone(), "backup_old_20200101_000000".to_owned()];
    gone.sort();
    assert_eq!(pruned_in_audit(&s.store), gone);
    let pruned_by = audit_lines(&s.store)
        .into_iter()
        .find(|l| l["decision"] == "pruned")
        .expect("a pruned record");
    assert_eq!(pruned_by["tool"], "psql");
    assert_eq!(complete_ids(&s.store).len(), 1, "the guard's own backup");
}

#[test]
fn keep_within_keeps_every_young_backup_whatever_the_counts() {
    let s = setup("within", "[retention]\nkeep_last = 1\n");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(backup_id(ok(&run(&s.sandbox, &["backup", "-y"]))));
    }
    // The default minimum age of 7 days keeps all three.
    ids.sort();
    assert_eq!(complete_ids(&s.store), ids);
    clone_backup(
        &s.store,
        &ids[0],
        "backup_old_20200101_000000",
        "2020-01-01T00:00:00+00:00",
    );
    let report = ok(&run(&s.sandbox, &["prune"])).stdout_str();
    assert!(
        report.contains("Policy, for each database separately: keep_within 1w, keep_last 1"),
        "{report}"
    );
    assert!(report.contains("within 1w"), "{report}");
    assert_eq!(complete_ids(&s.store), ids, "only the old one went");
    assert_eq!(pruned_in_audit(&s.store), ["backup_old_20200101_000000"]);

    fs::write(
        &s.config,
        "[retention]\nkeep_within = \"0\"\nkeep_last = 1\n",
    )
    .expect("config");
    ok(&run(&s.sandbox, &["prune"]));
    assert_eq!(complete_ids(&s.store), ids[2..], "keep_last 1 alone");
}

/// Regression: a policy with every count at 0 deleted the only backup.
#[test]
fn a_policy_that_keeps_nothing_is_refused_and_removes_nothing() {
    let s = setup("zero", "");
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    fs::write(
        &s.config,
        "[retention]\nkeep_within = \"0\"\nkeep_last = 0\nkeep_daily = 0\n",
    )
    .expect("config");
    for args in [&["prune"][..], &["backup", "-y"]] {
        let out = run(&s.sandbox, args);
        assert_eq!(out.status, 2, "{args:?}: {}", out.stderr_str());
        assert_eq!(out.stderr_str().lines().count(), 1, "{}", out.stderr_str());
        snapshot!("retention_keeps_nothing", out.stderr_str());
    }
    assert_eq!(complete_ids(&s.store), [id]);
}

/// Regression: a kill between the data file's rename and its sidecar left
/// a final-named data file that nothing ever removed.
#[test]
fn a_data_file_without_a_sidecar_is_removed_by_the_next_backup_once_nobody_writes_it() {
    let s = setup("orphan", "");
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "-y"])));
    // What a kill at the rename leaves: the data file under its final
    // name, no sidecar, and the dead writer's claim on the id.
    fs::remove_file(s.store.join(format!("{id}.json"))).expect("remove sidecar");
    let data = s.store.join(format!("{id}.sql"));
    let claim = s.store.join(format!(".tmp-{id}.id.partial"));
    fs::write(&claim, "").expect("claim");

    // Young: it may be a backup whose sidecar is on its way.
    let out = run(&s.sandbox, &["backup", "-y"]);
    ok(&out);
    assert!(data.exists());
    assert!(!out.stderr_str().contains("pruned"), "{}", out.stderr_str());

    // Old, but a living process holds the id: still left alone.
    age(&data);
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&claim)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let probe = std::process::Command::new("flock")
            .args(["-n", "-o"])
            .arg(&claim)
            .arg("true")
            .status()
            .expect("probe");
        if !probe.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "flock never locked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = ok(&run(&s.sandbox, &["prune"])).stdout_str();
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("skip") && l.contains(&id)),
        "{report}"
    );
    assert!(data.exists());
    holder.kill().expect("kill holder");
    holder.wait().expect("reap holder");

    // Its writer is gone: the next backup removes it, says so and records it.
    let out = run(&s.sandbox, &["backup", "-y"]);
    ok(&out);
    assert!(!data.exists(), "{}", out.stderr_str());
    assert!(
        out.stderr_str().lines().any(|l| l
            == format!("dbguard: pruned {id}: data file without metadata, left by a backup that was interrupted")),
        "{}",
        out.stderr_str()
    );
    assert_eq!(pruned_in_audit(&s.store), [id]);
    assert_eq!(complete_ids(&s.store).len(), 2);
}

/// Regression: a plain and a custom backup started in the same second got
/// the same id, and the second failed.
#[test]
fn backups_started_in_the_same_second_in_different_formats_get_different_ids() {
    let s = setup("same_second", "");
    for attempt in 0..10 {
        let start = |format: &str| {
            s.sandbox
                .dbguard()
                .args(["backup", "-y", "--no-prune", "-F", format])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start backup")
        };
        let (plain, custom) = (start("plain"), start("custom"));
        let outputs: Vec<std::process::Output> = [plain, custom]
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        let mut ids = Vec::new();
        for out in &outputs {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            ids.push(
                text.lines()
                    .find_map(|l| l.split(" as ").nth(1))
                    .map(|s| s.trim().to_owned())
                    .expect("an id"),
            );
        }
        assert_ne!(ids[0], ids[1]);
        let prefix = format!("backup_{}_", s.db.name);
        let stamp = |id: &str| {
            id.strip_prefix(&prefix)
                .and_then(|rest| rest.get(..15))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("{id} does not follow the naming scheme"))
        };
        if stamp(&ids[0]) != stamp(&ids[1]) {
            eprintln!("attempt {attempt}: not the same second, again");
            continue;
        }
        assert!(ids.iter().any(|id| id.ends_with("_2")), "{ids:?}");
        let verify = run(&s.sandbox, &["verify", &ids[0], &ids[1]]);
        assert_eq!(verify.status, 0, "{}", verify.stdout_str());
        return;
    }
    panic!("two backups never started in the same second");
}

/// Regression: `[[databases]]` (for `[[database]]`) was ignored, so its
/// `protect` policy disappeared. Now it is an error with the line and the
/// right name, and a guard refuses rather than run with a weaker policy.
#[test]
fn a_misspelt_table_is_an_error_with_its_line_and_the_guard_refuses() {
    let mut s = setup(
        "typo",
        "[backup]\nformat = \"plain\"\n\n[[databases]]\ndbname = \"t*\"\npolicy = \"protect\"\n",
    );
    let out = run(&s.sandbox, &["prune"]);
    assert_eq!(out.status, 2);
    snapshot!("config_typo_table", out.stderr_str());

    s.sandbox.set("DBGUARD_YES", "1");
    let out = guarded::without_terminal(
        s.sandbox.shim("psql").args(["-X", "-c", "drop table t"]),
        None,
    );
    assert_eq!(out.status, 77, "{}", out.stderr_str());
    // Under DBGUARD_YES=1 the refusal does not suggest DBGUARD_YES=1.
    snapshot!("config_typo_guard_refusal_under_yes", out.stderr_str());
    assert_eq!(s.db.sql("select count(*) from t"), "100", "nothing ran");

    fs::write(&s.config, "[bakup]\ndir = \"b\"\n").expect("config");
    let out = run(&s.sandbox, &["backup", "-y"]);
    assert_eq!(out.status, 2);
    snapshot!("config_typo_bakup", out.stderr_str());
    assert!(!s.store.exists() || complete_ids(&s.store).is_empty());
}

#[test]
fn argument_errors_are_one_line_and_help_is_untouched() {
    let sandbox = Sandbox::psql_only();
    let out = run(&sandbox, &["bakup", "-y"]);
    assert_eq!(out.status, 2);
    assert_eq!(out.stdout_str(), "");
    snapshot!("argument_error_subcommand", out.stderr_str());
    let out = run(&sandbox, &["prune", "--keep-last", "3"]);
    assert_eq!(out.status, 2);
    snapshot!("argument_error_option", out.stderr_str());

    let help = run(&sandbox, &["prune", "--help"]);
    assert_eq!(help.status, 0);
    assert_eq!(help.stderr_str(), "");
    assert!(
        help.stdout_str().starts_with("Remove old backups"),
        "{}",
        help.stdout_str()
    );
    assert!(
        help.stdout_str().contains("Usage: dbguard prune"),
        "{}",
        help.stdout_str()
    );
    let version = run(&sandbox, &["--version"]);
    assert_eq!(version.status, 0);
    assert_eq!(
        version.stdout_str(),
        format!("dbguard {}\n", env!("CARGO_PKG_VERSION"))
    );
}
