//! Point-in-time recovery through pgBackRest, against a real cluster that
//! archives its WAL to a real repository (support/pgbackrest.rs): a guarded
//! DROP TABLE costs a restore point, `list` and `verify` show it, and
//! `dbguard restore` brings the table back from a scratch cluster with
//! every row written after the repository's full backup, without touching
//! the rest of the live database. Also: the typed confirmation of that
//! restore, prune tied to pgBackRest's own retention, and the explicit
//! whole-cluster rewind on a cluster of its own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use expectrl::Expect;

use crate::support::guarded::{self, audit_lines, exit_code, on_terminal, without_terminal};
use crate::support::pgbackrest::{
    PitrCluster, STANZA, own_pitr_cluster, pitr_cluster, repository_exclusive, repository_shared,
};
use crate::support::sandbox::dbguard_bin;
use crate::support::sandbox::{capture, write_file};
use crate::support::{Output, Sandbox, TestDb};

#[test]
fn the_test_cluster_archives_wal_into_a_repository_with_a_full_backup() {
    let pitr = pitr_cluster();
    let out = Command::new("pgbackrest")
        .envs(pitr.env())
        .args([&format!("--stanza={STANZA}"), "--output=json", "info"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info[0]["status"]["code"], 0, "{info}");
    assert_eq!(info[0]["backup"][0]["type"], "full", "{info}");
}

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

/// A database in the archiving cluster (created after its full backup, so
/// all of it lives only in archived WAL), guarded by the pgBackRest engine.
fn setup(hint: &str, rule_extra: &str) -> Setup {
    setup_in(pitr_cluster(), hint, rule_extra)
}

fn setup_in(pitr: &'static PitrCluster, hint: &str, rule_extra: &str) -> Setup {
    let db = pitr.create_db(hint);
    db.sql(
        "create table items (id serial primary key, name text);
         insert into items (name) select 'item ' || g from generate_series(1, 300) g;
         create table keep (id int primary key, note text);
         insert into keep values (1, 'before');",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    for (k, v) in pitr.env() {
        sandbox.set(&k, &v);
    }
    let store = guarded::use_store(&mut sandbox);
    let config = sandbox.dir.path().join("dbguard.toml");
    write_file(&config, pitr.database_rule(&db, rule_extra));
    sandbox.set("DBGUARD_CONFIG", config.to_str().unwrap());
    Setup { db, sandbox, store }
}

fn dbguard(s: &Setup, args: &[&str]) -> Output {
    capture(s.sandbox.dbguard().args(args), None)
}

/// DROP TABLE through the real psql shim, unasked.
fn guarded_drop(s: &Setup, table: &str) -> Output {
    let mut psql = s.sandbox.shim("psql");
    psql.env("DBGUARD_YES", "1")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("drop table {table}"));
    capture(&mut psql, None)
}

fn sidecars(store: &Path) -> Vec<serde_json::Value> {
    let mut paths: Vec<PathBuf> = fs::read_dir(store)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.starts_with("backup_") && name.ends_with(".json")
    });
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&fs::read(p).unwrap()).unwrap())
        .collect()
}

fn ok(out: Output) -> Output {
    assert_eq!(
        out.status,
        0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
    out
}

#[test]
fn a_dropped_table_comes_back_from_its_restore_point_with_the_rows_written_after_the_full_backup() {
    let _repository = repository_shared();
    let s = setup("pitr_round_trip", "");
    // More rows, in separate transactions, after the database was created.
    s.db.sql("insert into items (name) values ('late 1')");
    s.db.sql("insert into items (name) values ('late 2')");
    let before =
        s.db.sql("select count(*), md5(string_agg(name, ',' order by id)) from items");

    ok(guarded_drop(&s, "items"));
    assert_eq!(
        s.db.sql("select count(*) from pg_tables where tablename = 'items'"),
        "0",
        "the guard let the DROP run"
    );
    // Written after the operation: must survive the restore untouched.
    s.db.sql("insert into keep values (2, 'after')");

    let metas = sidecars(&s.store);
    assert_eq!(metas.len(), 1, "{metas:?}");
    let meta = &metas[0];
    assert_eq!(meta["engine"], "pgbackrest", "{meta}");
    assert!(
        meta["pg_dump_version"]
            .as_str()
            .unwrap()
            .starts_with("pgBackRest 2."),
        "{meta}"
    );
    let point = &meta["restore_point"];
    assert_eq!(point["stanza"], STANZA, "{meta}");
    assert!(
        point["name"].as_str().unwrap().starts_with("dbguard_"),
        "{meta}"
    );
    assert!(
        !point["backup_label"].as_str().unwrap().is_empty(),
        "{meta}"
    );
    // The server itself says the segment holding the point is archived.
    let archived = s.db.sql("select last_archived_wal from pg_stat_archiver");
    assert!(
        archived.as_str() >= point["wal_segment"].as_str().unwrap(),
        "{archived} {meta}"
    );
    let id = meta["id"].as_str().unwrap();

    // The guard's audit record names the restore point that covers it.
    let log = ok(dbguard(&s, &["log", "--json", "--decision", "confirmed"]));
    let record: serde_json::Value =
        serde_json::from_str(log.stdout_str().lines().last().expect("a confirmed record")).unwrap();
    assert_eq!(record["backups"][0]["id"], id, "{record}");
    let covered = &record["restore_points"][0];
    assert_eq!(covered["backup"], id, "{record}");
    assert_eq!(covered["name"], point["name"], "{record}");
    assert_eq!(covered["lsn"], point["lsn"], "{record}");
    assert_eq!(covered["stanza"], STANZA, "{record}");
    let table = ok(dbguard(&s, &["log"])).stdout_str();
    assert!(
        table.contains(&format!("@{}", point["lsn"].as_str().unwrap())),
        "{table}"
    );

    let list = ok(dbguard(&s, &["list", "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["id"], id, "{rows}");
    assert_eq!(rows[0]["state"], "complete", "{rows}");
    assert_eq!(rows[0]["format"], "pitr", "{rows}");
    assert_eq!(rows[0]["restore_point"], point["name"], "{rows}");
    // The whole record, for a DBA who restores it with pgBackRest alone.
    assert_eq!(&rows[0]["pitr"], point, "{rows}");
    let mut wide = s.sandbox.dbguard();
    wide.arg("list").env("COLUMNS", "250");
    let table = ok(capture(&mut wide, None)).stdout_str();
    let short = id.strip_prefix("backup_").unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{short} ")))
        .unwrap_or_else(|| panic!("{short} in {table}"));
    assert!(
        row.contains(&format!(
            " pitr {STANZA}@{} tl{} ",
            point["lsn"].as_str().unwrap(),
            point["timeline"]
        )),
        "{table}"
    );

    // verify says what makes the point restorable: the pgBackRest backup a
    // restore starts from (its --set) and the WAL from that backup's start
    // to the point, as pgBackRest's own info reports them.
    let label = point["backup_label"].as_str().unwrap();
    let info = Command::new("pgbackrest")
        .envs(pitr_cluster().env())
        .args([&format!("--stanza={STANZA}"), "--output=json", "info"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let base = info[0]["backup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["label"] == label)
        .unwrap_or_else(|| panic!("no backup {label}: {info}"));
    let verified = ok(dbguard(&s, &["verify", id])).stdout_str();
    assert_eq!(
        line_about(&verified, id),
        format!(
            "OK          {id}  restore point {} at {} (timeline {}): from pgBackRest backup {label} (--set={label}) and WAL {}..{}, both in the repository of stanza \"{STANZA}\"",
            point["name"].as_str().unwrap(),
            point["lsn"].as_str().unwrap(),
            point["timeline"],
            base["archive"]["start"].as_str().unwrap(),
            point["wal_segment"].as_str().unwrap(),
        ),
        "{verified}"
    );
    assert!(!verified.contains("warning"), "{verified}");

    let restored = ok(dbguard(&s, &["restore", id, "--yes", "--no-safety-backup"]));
    assert!(
        restored.stdout_str().contains("Recovered tables"),
        "{}",
        restored.stdout_str()
    );
    assert_eq!(
        s.db.sql("select count(*), md5(string_agg(name, ',' order by id)) from items"),
        before
    );
    assert!(before.starts_with("302|"), "{before}");
    assert_eq!(
        s.db.sql("select string_agg(note, ',' order by id) from keep"),
        "before,after",
        "the rest of the database was rewound"
    );
    // Unasked (--yes), and the audit record says so.
    let restored_records: Vec<serde_json::Value> = audit_lines(&s.store)
        .into_iter()
        .filter(|l| l["tool"] == "restore" && l["decision"] == "restored")
        .collect();
    assert_eq!(restored_records.len(), 1, "{restored_records:?}");
    assert_eq!(restored_records[0]["yes"], true, "{restored_records:?}");
    // The scratch cluster is stopped and its directory removed.
    let stdout = restored.stdout_str();
    let scratch = stdout
        .lines()
        .find_map(|l| l.split(" in ").nth(1)?.strip_suffix(" ..."))
        .expect("the restore names its scratch directory");
    assert!(scratch.contains("dbguard-pitr-"), "{stdout}");
    assert!(!Path::new(scratch).exists(), "{scratch} left behind");
    // What came back was dumped from the scratch cluster, kept as a backup.
    let recovered = sidecars(&s.store);
    assert_eq!(recovered.len(), 2, "{recovered:?}");
    assert_eq!(recovered[1]["engine"], "pg_dump");
    assert!(
        recovered[1]["reason"]
            .as_str()
            .unwrap()
            .contains(point["name"].as_str().unwrap()),
        "{recovered:?}"
    );
}

/// Guards a DROP of `items` and returns the restore point's backup id.
fn drop_items(s: &Setup) -> String {
    ok(guarded_drop(s, "items"));
    let metas = sidecars(&s.store);
    assert_eq!(metas[0]["engine"], "pgbackrest", "{metas:?}");
    metas[0]["id"].as_str().unwrap().to_owned()
}

fn items_exist(s: &Setup) -> bool {
    s.db.sql("select count(*) from pg_tables where tablename = 'items'") == "1"
}

fn assert_failed_with(out: &Output, status: i32, message: &str) {
    assert_eq!(out.status, status, "{}", out.stderr_str());
    assert!(out.stderr_str().contains(message), "{}", out.stderr_str());
}

#[test]
fn a_taken_scratch_port_is_refused_before_anything_is_restored() {
    let _repository = repository_shared();
    let s = setup("pitr_port_taken", "");
    let id = drop_items(&s);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = dbguard(
        &s,
        &[
            "restore",
            &id,
            "--yes",
            "--no-safety-backup",
            "--scratch-port",
            &port,
        ],
    );
    assert_failed_with(&out, 2, &format!("scratch port {port} is taken"));
    assert!(!items_exist(&s));
    assert_eq!(sidecars(&s.store).len(), 1, "something was recovered");
}

/// A sidecar naming a restore point the WAL never saw (the fault a real
/// guard cannot produce): recovery ends without reaching it, and the live
/// database is left as it was.
#[test]
fn a_restore_point_missing_from_the_wal_restores_nothing() {
    let _repository = repository_shared();
    let s = setup("pitr_point_missing", "");
    let id = drop_items(&s);
    let path = s.store.join(format!("{id}.json"));
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    meta["restore_point"]["name"] = "dbguard_never_created".into();
    fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let out = dbguard(&s, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_failed_with(
        &out,
        2,
        "restore point dbguard_never_created was not found in the archived WAL",
    );
    assert!(!items_exist(&s));
    assert_eq!(s.db.sql("select count(*) from keep"), "1");
}

#[test]
fn unhealthy_archiving_falls_back_to_pg_dump_or_refuses_when_pitr_is_required() {
    let _repository = repository_shared();
    // pgbackrest info fails for a stanza that was never created.
    let s = setup("pitr_unhealthy", "");
    let config = s.sandbox.dir.path().join("dbguard.toml");
    let rule = |extra: &str| {
        pitr_cluster()
            .database_rule(&s.db, extra)
            .replace(&format!("stanza = \"{STANZA}\""), "stanza = \"nosuch\"")
    };

    write_file(&config, rule("require_pitr = true\n"));
    let refused = guarded_drop(&s, "items");
    assert_failed_with(&refused, 77, "require_pitr = true");
    assert!(
        refused.stderr_str().contains("nosuch"),
        "{}",
        refused.stderr_str()
    );
    assert!(items_exist(&s), "dropped without a backup");
    assert!(sidecars(&s.store).is_empty());

    write_file(&config, rule(""));
    let fell_back = ok(guarded_drop(&s, "items"));
    assert!(
        fell_back
            .stderr_str()
            .contains("backing up with pg_dump instead"),
        "{}",
        fell_back.stderr_str()
    );
    assert!(!items_exist(&s));
    let metas = sidecars(&s.store);
    assert_eq!(metas.len(), 1, "{metas:?}");
    assert_eq!(metas[0]["engine"], "pg_dump");
}

/// A full backup taken after the restore point starts after it, so
/// recovery from it could never reach the point; with a named target
/// pgBackRest takes its newest backup unless told which (`--set`), so the
/// restore must name the one the point builds on.
#[test]
fn a_full_backup_taken_after_the_restore_point_is_not_the_one_restored_from() {
    // A new full backup may expire the oldest one (repo1-retention-full).
    let _repository = repository_exclusive();
    let pitr = pitr_cluster();
    let s = setup("pitr_newer_full", "");
    let id = drop_items(&s);
    pitr.pgbackrest(&["--type=full", "backup"]).unwrap();
    ok(dbguard(
        &s,
        &["restore", &id, "--yes", "--no-safety-backup"],
    ));
    assert_eq!(s.db.sql("select count(*) from items"), "300");
}

/// The sidecars in the store taken by `engine`, oldest id first.
fn by_engine(store: &Path, engine: &str) -> Vec<serde_json::Value> {
    sidecars(store)
        .into_iter()
        .filter(|m| m["engine"] == engine)
        .collect()
}

/// The line of a prune report about backup `id` (one id may be the
/// prefix of another taken in the same second).
fn line_about(report: &str, id: &str) -> String {
    report
        .lines()
        .find(|l| l.split_whitespace().any(|word| word == id))
        .unwrap_or_else(|| panic!("no line about {id}:\n{report}"))
        .to_owned()
}

/// After a newer full backup and pgBackRest's own expiry, the WAL from the
/// old base backup to the restore point is gone: verify says so, restore
/// refuses, and prune removes the entry (printed and audited, with why)
/// instead of letting it stand as the newest verified backup that an
/// older pg_dump backup of the database would be pruned behind.
#[test]
fn a_restore_point_whose_wal_expired_is_reported_pruned_and_never_restored() {
    let _repository = repository_exclusive();
    let pitr = pitr_cluster();
    let s = setup("pitr_expired", "");
    ok(dbguard(&s, &["backup", "--no-prune"]));
    let dumped = by_engine(&s.store, "pg_dump");
    assert_eq!(dumped.len(), 1, "{dumped:?}");
    let dump_id = dumped[0]["id"].as_str().unwrap().to_owned();
    ok(guarded_drop(&s, "items"));
    let points = by_engine(&s.store, "pgbackrest");
    assert_eq!(points.len(), 1, "{points:?}");
    let id = points[0]["id"].as_str().unwrap().to_owned();
    ok(dbguard(&s, &["verify", &id]));

    // A policy that keeps one backup per database: while the restore point
    // can be restored it is that one, and the dump would go.
    let config = s.sandbox.dir.path().join("dbguard.toml");
    write_file(
        &config,
        format!(
            "{}\n[retention]\nkeep_within = \"0\"\nkeep_last = 1\n",
            pitr.database_rule(&s.db, "")
        ),
    );
    let plan = ok(dbguard(&s, &["prune", "--dry-run"])).stdout_str();
    let point_line = line_about(&plan, &id);
    assert!(point_line.starts_with("keep "), "{plan}");
    assert!(point_line.contains("newest verified"), "{plan}");
    assert!(
        line_about(&plan, &dump_id).starts_with("would remove"),
        "{plan}"
    );

    pitr.pgbackrest(&["--type=full", "backup"]).unwrap();
    pitr.pgbackrest(&["--repo1-retention-full=1", "expire"])
        .unwrap();

    let verified = dbguard(&s, &["verify", &id]);
    assert_ne!(verified.status, 0, "{}", verified.stdout_str());
    let said = format!("{}{}", verified.stdout_str(), verified.stderr_str());
    assert!(said.contains("WAL has expired"), "{said}");

    let restored = dbguard(&s, &["restore", &id, "--yes", "--no-safety-backup"]);
    assert_ne!(restored.status, 0);
    assert!(
        restored.stderr_str().contains("refusing to restore"),
        "{}",
        restored.stderr_str()
    );
    assert!(!items_exist(&s));

    // Expired: no longer the newest verified backup; the dump is again.
    let plan = ok(dbguard(&s, &["prune", "--dry-run"])).stdout_str();
    let point_line = line_about(&plan, &id);
    assert!(point_line.starts_with("would remove"), "{plan}");
    assert!(
        point_line.contains("expired by pgBackRest's retention"),
        "{plan}"
    );
    let dump_line = line_about(&plan, &dump_id);
    assert!(dump_line.starts_with("keep "), "{plan}");
    assert!(dump_line.contains("newest verified"), "{plan}");
    assert_eq!(sidecars(&s.store).len(), 2, "a dry run removed something");

    let pruned = ok(dbguard(&s, &["prune"])).stdout_str();
    assert!(line_about(&pruned, &id).starts_with("remove "), "{pruned}");
    let left: Vec<String> = sidecars(&s.store)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, [dump_id.as_str()]);
    assert!(
        guarded::backups(&s.store)
            .iter()
            .any(|p| guarded::id_of(p) == dump_id)
    );
    let audited: Vec<serde_json::Value> = audit_lines(&s.store)
        .into_iter()
        .filter(|l| l["decision"] == "pruned")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["backups"][0]["id"], id.as_str());
    assert!(
        audited[0]["detail"]
            .as_str()
            .unwrap()
            .contains("WAL has expired"),
        "{audited:?}"
    );
}

/// The prune after a guard on the pgBackRest engine assesses the older
/// restore points with the `pgbackrest info` the guard's health check
/// read (one `info` per guard, not two: each costs a process start and a
/// read of the repository), and still removes, printed and audited, a
/// point whose WAL pgBackRest expired, while the point just made stands.
/// pgBackRest's calls are counted by a wrapper that runs the real one.
#[test]
fn a_guard_asks_pgbackrest_info_once_and_its_prune_still_removes_an_expired_point() {
    let _repository = repository_exclusive();
    let pitr = pitr_cluster();
    let mut s = setup("pitr_prune_info", "");
    let old = drop_items(&s);
    pitr.pgbackrest(&["--type=full", "backup"]).unwrap();
    pitr.pgbackrest(&["--repo1-retention-full=1", "expire"])
        .unwrap();

    let calls = s.sandbox.dir.path().join("pgbackrest-calls");
    let counting = s.sandbox.dir.path().join("counting");
    fs::create_dir(&counting).unwrap();
    let wrapper = counting.join("pgbackrest");
    write_file(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            which::which("pgbackrest").unwrap().display()
        ),
    );
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    s.sandbox.path = format!("{}:{}", counting.display(), s.sandbox.path);

    let guarded = ok(guarded_drop(&s, "keep"));
    let called = fs::read_to_string(&calls).unwrap_or_default();
    let infos = called
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == "info"))
        .count();
    assert_eq!(infos, 1, "pgbackrest calls:\n{called}");

    let points: Vec<String> = by_engine(&s.store, "pgbackrest")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_ne!(points[0], old, "the expired point was kept");
    assert!(
        guarded.stderr_str().contains(&old),
        "the removal was not printed: {}",
        guarded.stderr_str()
    );
    let audited: Vec<serde_json::Value> = audit_lines(&s.store)
        .into_iter()
        .filter(|l| l["decision"] == "pruned")
        .collect();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["backups"][0]["id"], old.as_str());
    assert!(
        audited[0]["detail"]
            .as_str()
            .unwrap()
            .contains("expired by pgBackRest's retention"),
        "{audited:?}"
    );
    // The point just made is restorable and verifies against pgBackRest.
    ok(dbguard(&s, &["verify", &points[0]]));
}

/// `dbguard restore ID` of a restore point, on a terminal: the summary
/// says where the tables come from, a wrong word restores nothing (no
/// scratch cluster, no recovered backup), the database's name restores
/// the table after a safety backup of the current state.
#[test]
fn restoring_a_restore_point_asks_on_the_terminal_and_takes_a_safety_backup_first() {
    let _repository = repository_shared();
    let s = setup("pitr_typed", "");
    let id = drop_items(&s);
    let restore = |answer: &str| {
        let mut p = on_terminal(&s.sandbox, &dbguard_bin(), &["restore", &id], None, None);
        let shown = p.expect("to continue").expect("the question");
        let summary = String::from_utf8_lossy(shown.before()).into_owned();
        p.send_line(answer).expect("type");
        let rest = p.expect(expectrl::Eof).expect("the end");
        let rest = String::from_utf8_lossy(rest.as_bytes()).into_owned();
        (summary, rest, exit_code(&mut p))
    };

    let (summary, _, status) = restore("items");
    assert!(
        summary.contains("as of restore point dbguard_"),
        "{summary}"
    );
    assert!(summary.contains(&s.db.name), "{summary}");
    assert!(
        summary.contains("the live cluster keeps running"),
        "{summary}"
    );
    assert_eq!(status, 77);
    assert!(!items_exist(&s));
    assert_eq!(sidecars(&s.store).len(), 1, "something was recovered");

    let (_, said, status) = restore(&s.db.name);
    assert_eq!(status, 0, "{said}");
    assert_eq!(s.db.sql("select count(*) from items"), "300");
    let safety = said
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Safety backup of the current state: ")
        })
        .unwrap_or_else(|| panic!("no safety backup: {said}"))
        .trim()
        .to_owned();
    let metas = sidecars(&s.store);
    let taken = metas
        .iter()
        .find(|m| m["id"] == safety.as_str())
        .unwrap_or_else(|| panic!("{safety} not in the store: {metas:?}"));
    assert!(
        taken["reason"]
            .as_str()
            .unwrap()
            .starts_with("safety backup before restoring"),
        "{taken}"
    );
    // Both answers were typed by a person: neither record may claim
    // `--yes`/DBGUARD_YES, though the restore of what was recovered is
    // not asked a second time.
    let records: Vec<(String, serde_json::Value)> = audit_lines(&s.store)
        .into_iter()
        .filter(|l| l["tool"] == "restore")
        .map(|l| {
            (
                l["decision"].as_str().unwrap_or("").to_owned(),
                l["yes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            ("refused".to_owned(), serde_json::Value::Bool(false)),
            ("restored".to_owned(), serde_json::Value::Bool(false)),
        ]
    );
}

/// The explicit full-cluster rewind, on a cluster of its own: refused
/// while the server runs and without a terminal (DBGUARD_YES does not
/// answer it), then, the server stopped and the stanza's name typed,
/// pgBackRest rewrites the data directory; started again, the cluster is
/// as of the restore point: the dropped table is back with the rows
/// written after the full backup, and what was written after the point is
/// gone.
#[test]
fn the_whole_cluster_is_rewound_only_stopped_and_typed_on_a_terminal() {
    let pitr = own_pitr_cluster("whole");
    let s = setup_in(pitr, "pitr_whole", "");
    s.db.sql("insert into items (name) values ('late 1')");
    let before =
        s.db.sql("select count(*), md5(string_agg(name, ',' order by id)) from items");
    ok(guarded_drop(&s, "items"));
    assert!(!items_exist(&s));
    s.db.sql("insert into keep values (2, 'after the point')");
    let id = by_engine(&s.store, "pgbackrest")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let whole = ["restore", id.as_str(), "--whole-cluster"];

    let running = dbguard(&s, &whole);
    assert_failed_with(&running, 77, "the server is running");
    assert!(
        running.stderr_str().contains("postmaster.pid"),
        "{}",
        running.stderr_str()
    );
    let with_yes = dbguard(&s, &["restore", &id, "--whole-cluster", "--yes"]);
    assert_failed_with(&with_yes, 2, "--yes");

    pitr.stop_server().unwrap();
    let mut unattended = s.sandbox.dbguard();
    unattended.env("DBGUARD_YES", "1").args(whole);
    let refused = without_terminal(&mut unattended, None);
    assert_failed_with(&refused, 77, "no terminal to ask for confirmation on");
    assert!(
        refused.stderr_str().contains("pgbackrest --stanza=whole"),
        "{}",
        refused.stderr_str()
    );
    assert!(
        !pitr.cluster.data.join("recovery.signal").exists(),
        "the data directory was touched"
    );

    let mut p = on_terminal(&s.sandbox, &dbguard_bin(), &whole, None, None);
    let shown = p.expect("to continue").expect("the question");
    let summary = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(summary.contains("WHOLE cluster"), "{summary}");
    assert!(summary.contains("\"whole\""), "{summary}");
    p.send_line("whole").expect("type");
    let rest = p.expect(expectrl::Eof).expect("the end");
    let said = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert_eq!(exit_code(&mut p), 0, "{said}");
    assert!(said.contains("The server is still stopped"), "{said}");
    assert!(said.contains("pg_ctl -D"), "{said}");

    pitr.start_server().unwrap();
    assert_eq!(
        s.db.sql("select count(*), md5(string_agg(name, ',' order by id)) from items"),
        before
    );
    assert!(before.starts_with("301|"), "{before}");
    assert_eq!(
        s.db.sql("select string_agg(note, ',' order by id) from keep"),
        "before",
        "not rewound to the point"
    );
    let decisions: Vec<String> = audit_lines(&s.store)
        .iter()
        .filter(|l| l["argv"].to_string().contains("--whole-cluster"))
        .map(|l| l["decision"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(decisions, ["refused", "refused", "restored"]);
    pitr.cluster.stop();
}

/// Archiving that fails on the server (archive_command broken, as after a
/// full disk or a lost repository): a guard whose own restore point cannot
/// be archived fails as soon as the server's archiver gives up on it; then
/// pg_stat_archiver shows a failure newer than the last success, and a
/// guard that requires PITR refuses before taking a restore point. A restore point taken before
/// archiving broke is still restorable (a point is recorded only once its
/// WAL is in the repository, and what came after it is not needed to reach
/// it): `verify` checks it against the repository and says OK, `list`
/// shows it complete.
/// Archiving is repaired before the repository is handed back to the
/// other tests.
#[test]
fn a_failing_archive_command_makes_a_guard_that_requires_pitr_refuse() {
    let _repository = repository_exclusive();
    let s = setup("pitr_archiving_broken", "require_pitr = true\n");
    let before_breaking = drop_items(&s);
    s.db.sql("create table items (id serial primary key, name text)");
    s.db.sql("alter system set archive_command = 'false'");
    s.db.sql("select pg_reload_conf()");
    // Broken, but nothing has failed yet, so the health check passes: the
    // guard's own WAL switch is the first segment that cannot be archived.
    // It fails once the server's archiver gives up on it (three attempts,
    // about a second apart), not after the minute it would wait.
    let clock = std::time::Instant::now();
    let gave_up = guarded_drop(&s, "items");
    assert_failed_with(&gave_up, 77, "failed 3 times in a row");
    assert!(
        clock.elapsed() < std::time::Duration::from_secs(30),
        "waited {:?}",
        clock.elapsed()
    );
    assert!(items_exist(&s));
    assert_eq!(by_engine(&s.store, "pgbackrest").len(), 1);

    // Now the failure is on record: the next guard refuses before taking
    // a restore point.
    let refused = guarded_drop(&s, "items");
    assert_failed_with(&refused, 77, "failed after the last success");
    assert!(items_exist(&s));

    let verified = ok(dbguard(&s, &["verify", &before_breaking])).stdout_str();
    assert!(
        line_about(&verified, &before_breaking).starts_with("OK "),
        "{verified}"
    );
    // verify and list say plainly that archiving is broken now, what that
    // means for the older points and for the next guard.
    let taken = &by_engine(&s.store, "pgbackrest")[0];
    let broken = format!(
        "warning: WAL archiving on {}:{} is broken now: archiving WAL segment ",
        taken["host"].as_str().unwrap(),
        taken["port"]
    );
    let consequences = "Restore points taken before it broke stay restorable (each is checked against the repository), but new guarded operations on its pgBackRest databases fall back to pg_dump, or refuse where require_pitr is set, until archive_command works again";
    for said in [verified.clone(), ok(dbguard(&s, &["list"])).stdout_str()] {
        assert!(said.contains(&broken), "{said}");
        assert!(said.contains(consequences), "{said}");
    }
    // doctor runs the guard's own health check for the configured database.
    let doctor = dbguard(&s, &["doctor"]).stdout_str();
    assert!(
        doctor.contains(&format!(
            "database {} (pgBackRest stanza \"{STANZA}\" on {}:{}): WAL archiving is not healthy: archiving WAL segment ",
            s.db.name,
            taken["host"].as_str().unwrap(),
            taken["port"]
        )),
        "{doctor}"
    );
    assert!(
        doctor.contains("Restore points taken before stay restorable (dbguard verify checks them), but new guarded operations are refused (require_pitr)"),
        "{doctor}"
    );
    let list = ok(dbguard(&s, &["list", "--json"]));
    assert!(
        list.stderr_str().contains(&format!("dbguard: {broken}")),
        "{}",
        list.stderr_str()
    );
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == before_breaking.as_str())
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["state"], "complete", "{rows}");

    s.db.sql("alter system reset archive_command");
    s.db.sql("select pg_reload_conf()");
    // Repaired: the failed segment is archived on the next attempt, and
    // the guard takes a restore point again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let behind = s.db.sql(
            "select coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) from pg_stat_archiver",
        );
        if behind == "f" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "archiving did not recover"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let verified = ok(dbguard(&s, &["verify", &before_breaking])).stdout_str();
    assert!(!verified.contains("warning"), "{verified}");
    let doctor = dbguard(&s, &["doctor"]).stdout_str();
    assert!(
        doctor.contains("WAL archiving is healthy, guards take restore points"),
        "{doctor}"
    );
    assert!(!doctor.contains("not healthy"), "{doctor}");
    ok(guarded_drop(&s, "items"));
    let points = by_engine(&s.store, "pgbackrest");
    assert_eq!(points.len(), 2, "{points:?}");
}

/// The cost of guarding `DROP TABLE` on a database of at least 1 GB with
/// each engine (the statement runs inside a transaction that rolls back,
/// so both engines guard the same table), the automatic prune after each
/// backup included (on the pgBackRest engine it asks `pgbackrest info`
/// about the stanza), and that `info` call timed on its own. The WAL the
/// load wrote is archived before the clock starts: archiving a backlog is
/// not the guard's cost. Not a timed assertion: run with
/// `cargo test --test it pitr::benchmark -- --ignored --nocapture` and read
/// the figures (`BENCH_ROUNDS`, default 5, for the pgBackRest engine; the
/// pg_dump engine runs 2).
#[test]
#[ignore = "benchmark: builds a 1 GB database"]
fn benchmark_guarding_drop_table_on_a_gigabyte_database() {
    let _repository = repository_shared();
    let pitr_cluster = pitr_cluster();
    let s = setup("pitr_benchmark", "");
    s.db.sql(
        "create table big (id bigint primary key, payload text);
         insert into big select g, repeat(md5(g::text), 6) from generate_series(1, 4500000) g",
    );
    let size: u64 =
        s.db.sql("select pg_database_size(current_database())")
            .parse()
            .unwrap();
    assert!(size >= 1 << 30, "only {size} bytes");
    let switched = s.db.sql("select pg_walfile_name(pg_switch_wal())");
    let clock = std::time::Instant::now();
    while s
        .db
        .sql("select coalesce(last_archived_wal, '') from pg_stat_archiver")
        < switched
    {
        assert!(
            clock.elapsed() < std::time::Duration::from_secs(1800),
            "archiving did not catch up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!(
        "archived the load's WAL up to {switched} in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    let load = || {
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let config = s.sandbox.dir.path().join("dbguard.toml");
    let guard = |engine: &str| {
        let before = sidecars(&s.store).len();
        let mut psql = s.sandbox.shim("psql");
        psql.env("DBGUARD_YES", "1")
            .args(["-X", "-v", "ON_ERROR_STOP=1"]);
        let clock = std::time::Instant::now();
        let out = capture(&mut psql, Some(b"begin;\ndrop table big;\nrollback;\n"));
        let seconds = clock.elapsed().as_secs_f64();
        assert_eq!(out.status, 0, "{}", out.stderr_str());
        let metas = sidecars(&s.store);
        assert!(metas.len() > before, "no backup taken");
        let newest = metas
            .iter()
            .max_by_key(|m| m["created_at"].as_str().unwrap_or("").to_owned())
            .unwrap();
        assert_eq!(newest["engine"], engine, "{newest}");
        println!(
            "guarded DROP TABLE on {size} bytes with {engine}: {seconds:.2} s (load average {})",
            load()
        );
        seconds
    };
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let pitr = median((0..rounds).map(|_| guard("pgbackrest")).collect());
    let info = median(
        (0..rounds)
            .map(|_| {
                // As the engine runs it: as ourselves, the stanza's config
                // from the environment.
                let clock = std::time::Instant::now();
                let out = Command::new("pgbackrest")
                    .envs(pitr_cluster.env())
                    .args([&format!("--stanza={STANZA}"), "--output=json", "info"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                clock.elapsed().as_secs_f64()
            })
            .collect(),
    );
    write_file(&config, "[[database]]\nengine = \"pg_dump\"\n");
    let dump = median((0..2).map(|_| guard("pg_dump")).collect());
    println!(
        "medians: pgbackrest {pitr:.2} s ({rounds} rounds; one `pgbackrest info` alone {info:.3} s), pg_dump {dump:.2} s (2 rounds); load average {}",
        load()
    );
}
