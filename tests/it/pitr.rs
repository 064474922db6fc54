//! Point-in-time recovery through pgBackRest, against a real cluster that
//! archives its WAL to a real repository (support/pgbackrest.rs): a guarded
//! DROP TABLE costs a restore point, `list` and `verify` show it, and
//! `dbguard restore` brings the table back from a scratch cluster with
//! every row written after the repository's full backup, without touching
//! the rest of the live database.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::guarded;
use crate::support::pgbackrest::{STANZA, pitr_cluster};
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
    let pitr = pitr_cluster();
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

    let list = ok(dbguard(&s, &["list", "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["id"], id, "{rows}");
    assert_eq!(rows[0]["state"], "complete", "{rows}");
    assert_eq!(rows[0]["format"], "pitr", "{rows}");
    assert_eq!(rows[0]["restore_point"], point["name"], "{rows}");
    ok(dbguard(&s, &["verify", id]));

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
