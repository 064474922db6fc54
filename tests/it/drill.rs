//! `dbguard drill` against the real cluster: real pg_dump backups in each
//! format restored into a scratch database and compared with their
//! sidecars, failures that name the table (a sidecar that disagrees with
//! its dump, a dump whose rows were altered with its SHA-256 kept right),
//! `--all` past a failure, the last drill in `list`, the scratch database
//! gone afterwards (asked of the server), and a pgBackRest restore point
//! drilled in a scratch cluster.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::support::guarded::{self, audit_lines};
use crate::support::pgbackrest::{STANZA, pitr_cluster, repository_shared};
use crate::support::sandbox::{capture, write_file};
use crate::support::{Output, Sandbox, TestDb, cluster};

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
}

const SAMPLE: &str = "
    create table items (id serial primary key, name text,
                        at timestamptz not null default '2026-01-01 12:00+00',
                        raw bytea default '\\x0102');
    insert into items (name) select 'item ' || g from generate_series(1, 200) g;
    create table keep (id int primary key, note text);
    insert into keep values (1, 'before'), (2, E'two\\nlines');
";

fn setup(hint: &str) -> Setup {
    let db = cluster().create_db(hint);
    db.sql(SAMPLE);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    Setup { db, sandbox, store }
}

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    capture(sandbox.dbguard().args(args), None)
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

/// A backup in `format`; returns its id.
fn backup(s: &Setup, format: &str) -> String {
    let out = ok(run(&s.sandbox, &["backup", "--format", format]));
    out.stdout_str()
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no id in {}", out.stdout_str()))
}

/// The scratch databases of drills of `db` the server still has.
fn scratch_databases(db: &TestDb) -> String {
    cluster().sql(
        "postgres",
        &format!(
            "select coalesce(string_agg(datname, ','), '') from pg_database where starts_with(datname, '{}__dbguard_drill_')",
            db.name
        ),
    )
}

fn sidecar_path(s: &Setup, id: &str) -> PathBuf {
    s.store.join(format!("{id}.json"))
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("read json")).expect("json")
}

fn last_drill(s: &Setup, id: &str) -> serde_json::Value {
    read_json(&s.store.join(format!("{id}.drill.json")))
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"t\d+_[a-z_]+?__dbguard_drill_\d{8}_\d{6}_\d+", "[SCRATCH]"),
        (r"backup_t\d+_[a-z_]+?_\d{8}_\d{6}(_\d+)?", "[ID]"),
        (r"/tmp/[^\s:)]+", "[PATH]"),
        (r"\bt\d+_[a-z_]+\b", "[DB]"),
        (r"\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "[SIZE]"),
        (
            r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2}",
            "[TIME]",
        ),
        (r":\d{4,5}\b", ":[PORT]"),
        // Values print in the server's TimeZone, which initdb took from
        // the machine: the sums are the same at backup and drill time,
        // not from one machine to the next.
        (r"\b[0-9a-f]{16}\b", "[SUM]"),
    ]
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ filters => filters() }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn a_drill_of_each_format_passes_against_the_sidecar_and_leaves_no_scratch_database() {
    let s = setup("drill_formats");
    for format in ["plain", "custom", "directory"] {
        let id = backup(&s, format);
        let out = ok(run(&s.sandbox, &["drill", &id]));
        let stdout = out.stdout_str();
        assert!(stdout.contains("Drill passed: 2 tables"), "{stdout}");
        if format == "plain" {
            assert!(
                stdout.contains("row counts recorded in the sidecar (2)")
                    && stdout.contains("content checksums recorded in the sidecar (2)"),
                "{stdout}"
            );
            snapshot!("drill_plain", stdout);
        } else {
            assert!(
                stdout.contains("row counts from the archive's data (2)")
                    && stdout.contains("content checksums from the archive's data (2)"),
                "{stdout}"
            );
        }
        assert_eq!(
            scratch_databases(&s.db),
            "",
            "{format}: scratch left behind"
        );
        let record = last_drill(&s, &id);
        assert_eq!(record["ok"], true, "{record}");
        let audit = audit_lines(&s.store);
        let last = audit.last().expect("an audit line");
        assert_eq!(last["tool"], "drill");
        assert_eq!(last["decision"], "drilled");
        assert_eq!(last["backups"][0]["id"], id.as_str());
    }
    // The origin is untouched, and the drill records are not backups.
    assert_eq!(s.db.sql("select count(*) from items"), "200");
    let verify = ok(run(&s.sandbox, &["verify"])).stdout_str();
    assert!(verify.contains("3 checked: 3 OK, 0 bad"), "{verify}");
}

#[test]
fn a_sidecar_that_disagrees_with_its_dump_fails_the_drill_naming_the_table() {
    let s = setup("drill_rows_differ");
    let id = backup(&s, "plain");
    let path = sidecar_path(&s, &id);
    let mut meta = read_json(&path);
    for table in meta["tables"].as_array_mut().expect("tables") {
        if table["name"] == "keep" {
            assert_eq!(table["rows"], 2, "exact rows in the sidecar");
            table["rows"] = 3.into();
        }
    }
    fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let out = run(&s.sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert_eq!(
        out.stderr_str().trim_end(),
        format!(
            "dbguard: drill of {id} failed: public.keep: 3 rows expected (recorded in the sidecar at backup time), 2 found"
        )
    );
    assert!(
        out.stdout_str().contains("  DIFFERS  public.keep"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
    let record = last_drill(&s, &id);
    assert_eq!(record["ok"], false, "{record}");
    assert_eq!(record["table"], "public.keep", "{record}");
    let last = audit_lines(&s.store).pop().expect("an audit line");
    assert_eq!(last["decision"], "drill_failed");
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains("public.keep: 3 rows expected"),
        "{last}"
    );
}

/// One row's value changed inside the dump, with the SHA-256 and size in
/// the sidecar made to match (what `verify` cannot see): the row count is
/// right, the content checksum recorded at backup time is not.
#[test]
fn a_dump_whose_row_was_altered_fails_on_its_content_checksum() {
    let s = setup("drill_content_differs");
    let id = backup(&s, "plain");
    let data = s.store.join(format!("{id}.sql"));
    let dump = fs::read_to_string(&data).unwrap();
    assert_eq!(dump.matches("\titem 7\t").count(), 1);
    let altered = dump.replace("\titem 7\t", "\titem X\t");
    fs::write(&data, &altered).unwrap();
    let path = sidecar_path(&s, &id);
    let mut meta = read_json(&path);
    meta["sha256"] = hex::encode(Sha256::digest(altered.as_bytes())).into();
    meta["size_bytes"] = altered.len().into();
    fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    ok(run(&s.sandbox, &["verify", &id]));

    let out = run(&s.sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.starts_with(&format!(
            "dbguard: drill of {id} failed: public.items: content checksum "
        )) && stderr.contains("expected (recorded in the sidecar at backup time),"),
        "{stderr}"
    );
    assert!(
        out.stdout_str().contains("  ok       public.keep"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
    assert_eq!(last_drill(&s, &id)["table"], "public.items");
}

#[test]
fn drill_all_goes_past_a_failure_and_list_shows_the_last_drills() {
    let s = setup("drill_all");
    let good = backup(&s, "custom");
    let bad = backup(&s, "plain");
    let path = sidecar_path(&s, &bad);
    let mut meta = read_json(&path);
    for table in meta["tables"].as_array_mut().expect("tables") {
        if table["name"] == "items" {
            table["rows"] = 201.into();
        }
    }
    fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let out = run(&s.sandbox, &["drill", "--all"]);
    assert_eq!(out.status, 1, "{}", out.stderr_str());
    let stdout = out.stdout_str();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("FAILED  {bad}  public.items: 201 rows expected")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("ok      {good}  2 tables")),
        "{stdout}"
    );
    snapshot!("drill_all", stdout);
    assert_eq!(
        out.stderr_str().trim_end(),
        format!("dbguard: 1 of 2 drills failed: {bad}")
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");

    let listed = ok(run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows[0]["id"], bad.as_str());
    assert_eq!(rows[0]["last_drill"]["ok"], false, "{listed}");
    assert_eq!(rows[0]["last_drill"]["table"], "public.items", "{listed}");
    assert_eq!(rows[1]["last_drill"]["ok"], true, "{listed}");
    let mut list = s.sandbox.dbguard();
    list.arg("list").env("COLUMNS", "200");
    let table = ok(capture(&mut list, None)).stdout_str();
    assert!(table.lines().next().unwrap().contains("DRILLED"), "{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{} ", id.strip_prefix("backup_").unwrap())))
            .unwrap_or_else(|| panic!("{id} in {table}"))
            .to_owned()
    };
    assert!(row(&bad).contains("  FAILED "), "{table}");
    // Verified and drilled, both OK.
    assert_eq!(row(&good).matches("  OK ").count(), 2, "{table}");

    // Pruned with its backup: nothing of a removed backup stays behind.
    write_file(
        &s.sandbox.dir.path().join("dbguard.toml"),
        "[retention]\nkeep_last = 1\nkeep_within = \"0\"\n",
    );
    let mut prune = s.sandbox.dbguard();
    prune
        .arg("prune")
        .env("DBGUARD_CONFIG", s.sandbox.dir.path().join("dbguard.toml"));
    ok(capture(&mut prune, None));
    assert!(!s.store.join(format!("{good}.drill.json")).exists());
    assert!(!s.store.join(format!("{good}.dump")).exists());
    assert!(s.store.join(format!("{bad}.drill.json")).exists());
}

#[test]
fn an_unknown_id_is_one_error_and_records_nothing() {
    let s = setup("drill_unknown");
    let out = run(&s.sandbox, &["drill", "nosuch"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str()
            .starts_with("dbguard: no backup nosuch in "),
        "{}",
        out.stderr_str()
    );
    assert!(audit_lines(&s.store).is_empty());
}

/// A guarded DROP TABLE on the archiving cluster costs a restore point;
/// its drill restores the cluster as of the point in a scratch cluster,
/// where the dropped table must exist. A point the WAL never saw fails.
#[test]
fn a_restore_point_is_drilled_in_a_scratch_cluster() {
    let _repository = repository_shared();
    let pitr = pitr_cluster();
    let db = pitr.create_db("drill_pitr");
    db.sql(
        "create table items (id serial primary key, name text);
         insert into items (name) select 'item ' || g from generate_series(1, 300) g;",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    for (k, v) in pitr.env() {
        sandbox.set(&k, &v);
    }
    let store = guarded::use_store(&mut sandbox);
    let config = sandbox.dir.path().join("dbguard.toml");
    write_file(&config, pitr.database_rule(&db, ""));
    sandbox.set("DBGUARD_CONFIG", config.to_str().unwrap());
    let mut psql = sandbox.shim("psql");
    psql.env("DBGUARD_YES", "1")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", "drop table items"]);
    ok(capture(&mut psql, None));
    let sidecar = fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a sidecar");
    let mut meta = read_json(&sidecar);
    assert_eq!(meta["restore_point"]["stanza"], STANZA);
    let id = meta["id"].as_str().unwrap().to_owned();
    let point = meta["restore_point"]["name"].as_str().unwrap().to_owned();

    let out = ok(run(&sandbox, &["drill", &id]));
    let stdout = out.stdout_str();
    let scratch = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "Restore point {point} reached in scratch cluster "
            ))
        })
        .unwrap_or_else(|| panic!("the drill names its scratch cluster: {stdout}"));
    assert!(!Path::new(scratch).exists(), "{scratch} left behind");
    assert!(
        stdout.contains("  ok       public.items  300 rows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Drill passed: restore point reached; 1 table: existence only"),
        "{stdout}"
    );
    let record = read_json(&store.join(format!("{id}.drill.json")));
    assert_eq!(record["ok"], true, "{record}");
    assert_eq!(
        db.sql("select count(*) from pg_tables where tablename = 'items'"),
        "0",
        "the live database is not touched"
    );

    meta["restore_point"]["name"] = "dbguard_never_created".into();
    fs::write(&sidecar, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    let out = run(&sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stderr_str()
            .contains("restore point dbguard_never_created was not found in the archived WAL"),
        "{}",
        out.stderr_str()
    );
    let record = read_json(&store.join(format!("{id}.drill.json")));
    assert_eq!(record["ok"], false, "{record}");
}

/// Ctrl-C in the middle of a drill, sent to the whole foreground process
/// group as a terminal does: dbguard and the client restoring die or stop,
/// the scratch database is dropped on the way out, and nothing is recorded.
#[test]
fn ctrl_c_during_a_drill_drops_the_scratch_database_and_records_nothing() {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let s = setup("drill_interrupted");
    s.db.sql(
        "create table big (id int, payload text);
         insert into big select g, repeat(md5(g::text), 8) from generate_series(1, 300000) g;",
    );
    let id = backup(&s, "plain");
    let mut cmd = s.sandbox.dbguard();
    cmd.args(["drill", &id])
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn dbguard drill");
    let deadline = Instant::now() + Duration::from_secs(60);
    while scratch_databases(&s.db).is_empty() {
        assert!(Instant::now() < deadline, "no scratch database appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: plain syscall; the group is the one spawned above.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) };
    let out = child.wait_with_output().expect("wait for dbguard");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("drill of {id} interrupted")),
        "{stderr}"
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
    assert!(!s.store.join(format!("{id}.drill.json")).exists());
}

/// A backup whose bytes no longer match its SHA-256 fails its drill before
/// anything is restored, and the failure is recorded.
#[test]
fn a_corrupted_backup_fails_its_drill_without_a_restore() {
    let s = setup("drill_corrupted");
    let id = backup(&s, "custom");
    let data = s.store.join(format!("{id}.dump"));
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&data, &bytes).unwrap();

    let out = run(&s.sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert_eq!(
        out.stderr_str().trim_end(),
        format!(
            "dbguard: drill of {id} failed: the backup does not verify: CORRUPTED (SHA-256 does not match the metadata)"
        )
    );
    assert!(
        out.stdout_str().contains("Nothing was restored."),
        "{}",
        out.stdout_str()
    );
    let record = last_drill(&s, &id);
    assert_eq!(record["ok"], false, "{record}");
    assert!(record.get("table").is_none(), "{record}");
}

/// A remote (`offsite`, a fresh bucket on the moto server) for `s`;
/// returns the bucket.
fn with_remote(s: &mut Setup, hint: &str) -> String {
    with_remote_configured(s, hint, "")
}

/// `with_remote`, with `extra` lines in the remote's section.
fn with_remote_configured(s: &mut Setup, hint: &str, extra: &str) -> String {
    let server = crate::support::s3::s3_server();
    for (k, v) in server.env() {
        s.sandbox.set(k, &v);
    }
    let bucket = server.create_bucket(hint);
    fs::write(
        s.sandbox.dir.path().join(".dbguard.toml"),
        format!(
            "[[remote]]\nname = \"offsite\"\nurl = \"s3://{bucket}/team/db\"\nendpoint = \"{}\"\n{extra}",
            server.endpoint
        ),
    )
    .unwrap();
    bucket
}

/// The same hierarchy as `restore`: a local copy that is missing or
/// corrupt gives way to the remote's good copy, and the drill says so.
#[test]
fn a_missing_or_corrupt_local_copy_is_drilled_from_the_remote_that_holds_a_good_one() {
    let mut s = setup("drill_fallback");
    let bucket = with_remote(&mut s, "drill-fallback");
    let corrupt = backup(&s, "custom");
    let missing = backup(&s, "plain");
    let data = s.store.join(format!("{corrupt}.dump"));
    let mut bytes = fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&data, &bytes).unwrap();
    fs::remove_file(s.store.join(format!("{missing}.sql"))).unwrap();

    let out = ok(run(&s.sandbox, &["drill", "--all"]));
    let stdout = out.stdout_str();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, id) in lines.iter().zip([&missing, &corrupt]) {
        assert!(
            line.starts_with(&format!("ok      {id} (remote offsite)  2 tables")),
            "{stdout}"
        );
        let record = last_drill(&s, id);
        assert_eq!(record["ok"], true, "{record}");
        assert_eq!(record["from"], "offsite", "{record}");
    }
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
    // The damaged local file is left as it was found, for the person.
    assert_eq!(fs::read(&data).unwrap(), bytes);

    // One backup at a time, the drill says why it went to the remote.
    let out = ok(run(&s.sandbox, &["drill", &corrupt]));
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!(
            "The local copy of {corrupt}: the backup does not verify: CORRUPTED (SHA-256 does not match the metadata); looking for a copy on a remote"
        )) && stdout.contains(&format!("{corrupt} drilled from remote offsite: downloading it into "))
            && stdout.contains("Drill passed: 2 tables"),
        "{stdout}"
    );

    // The remote's copy damaged too: the drill fails, naming both.
    let server = crate::support::s3::s3_server();
    let key = format!("team/db/{corrupt}.dump");
    let stored = server.get(&bucket, &key);
    server.put(&bucket, &key, &stored[..stored.len() - 100]);
    let out = run(&s.sandbox, &["drill", &corrupt]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.starts_with(&format!(
            "dbguard: drill of {corrupt} failed: the backup does not verify: CORRUPTED (SHA-256 does not match the metadata); the remote copy does not verify either: remote offsite: "
        )),
        "{stderr}"
    );
    let record = last_drill(&s, &corrupt);
    assert_eq!(record["ok"], false, "{record}");
    assert!(record.get("from").is_none(), "{record}");
}

/// Regression: `drill X` of a backup only a remote holds, with the local
/// `X_2` (taken in the same second), drilled `X_2` or called `X` ambiguous.
#[test]
fn an_exact_id_only_a_remote_holds_wins_over_a_local_id_it_prefixes() {
    let mut s = setup("drill_exact");
    with_remote(&mut s, "drill-exact");
    let mut previous = backup(&s, "custom");
    let mut pair = None;
    for _ in 0..10 {
        let id = backup(&s, "custom");
        if id == format!("{previous}_2") {
            pair = Some((previous, id));
            break;
        }
        previous = id;
    }
    let (remote_only, local) = pair.expect("two backups in one second");
    for suffix in [".dump", ".json", ".copies.json"] {
        fs::remove_file(s.store.join(format!("{remote_only}{suffix}"))).unwrap();
    }
    let out = ok(run(&s.sandbox, &["drill", &remote_only]));
    assert!(
        out.stdout_str().contains(&format!(
            "{remote_only} is only on remote offsite: downloading it into "
        )),
        "{}",
        out.stdout_str()
    );
    assert_eq!(last_drill(&s, &remote_only)["from"], "offsite");
    assert!(!s.store.join(format!("{local}.drill.json")).exists());
}

/// Ctrl-C while a large remote copy downloads: the download stops at its
/// next chunk (not at its end), the partial file goes with its temporary
/// directory, nothing is recorded, exit 130.
#[test]
fn ctrl_c_during_a_remote_download_stops_it_and_leaves_nothing_behind() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let mut s = setup("drill_download_interrupted");
    let bucket = with_remote(&mut s, "drill-download-interrupted");
    let id = backup(&s, "custom");
    for suffix in [".dump", ".json", ".copies.json"] {
        fs::remove_file(s.store.join(format!("{id}{suffix}"))).unwrap();
    }
    // A large object with a valid stored checksum, so the download runs
    // for long (its SHA-256 differs from the sidecar's: a drill that ran
    // to the end would fail, and record that).
    const SIZE: usize = 400 << 20;
    let large: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let server = crate::support::s3::s3_server();
    let key = format!("team/db/{id}.dump");
    server.put(&bucket, &key, &large);
    let checksum = hex::encode(Sha256::digest(&large));
    server.put(&bucket, &format!("{key}.sha256"), checksum.as_bytes());
    drop(large);

    let mut cmd = s.sandbox.dbguard();
    cmd.args(["drill", &id])
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dbguard drill");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let into = format!("{id} is only on remote offsite: downloading it into ");
    let dir = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no download began"
        );
        if let Some(dir) = line.trim_end().strip_prefix(&into) {
            break PathBuf::from(dir);
        }
    };
    let partial = dir.join(format!("{id}.dump"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the download wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: plain syscall; the group is the one spawned above.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) };
    let signalled = Instant::now();
    let status = child.wait().expect("wait for dbguard");
    let stopped_after = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!("drill of {id} interrupted")),
        "{stderr}"
    );
    assert!(
        stopped_after < Duration::from_secs(2),
        "stopped {stopped_after:?} after Ctrl-C"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!s.store.join(format!("{id}.drill.json")).exists());
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
}

/// The help says what is compared, where, and the exit statuses.
#[test]
fn help_says_what_is_compared_and_the_exit_statuses() {
    let out = ok(run(&Sandbox::psql_only(), &["drill", "--help"]));
    insta::assert_snapshot!("help_drill", out.stdout_str());
}

const FK_CHAIN: &str = "
    create table users (id int primary key, name text);
    insert into users select g, 'user ' || g from generate_series(1, 5) g;
    create table products (id int primary key, title text);
    insert into products select g, 'product ' || g from generate_series(1, 3) g;
    create table orders (id serial primary key, user_id int not null references users (id),
                         note text);
    insert into orders (user_id, note) select 1 + g % 5, 'order ' || g from generate_series(1, 40) g;
    create table order_items (order_id int references orders (id) on delete cascade,
                              product_id int references products (id), qty int);
    insert into order_items select 1 + g % 40, 1 + g % 3, g from generate_series(1, 90) g;
";

/// A table-scoped backup (`-t orders -t order_items`, what a guarded
/// `DELETE FROM orders` takes) whose tables reference tables outside it:
/// the drill leaves out exactly the foreign keys to users and products,
/// says so, keeps the one between the backed-up tables, and passes; the
/// same backup with a table's recorded rows tampered with still fails,
/// naming the table. Plain, custom and directory.
#[test]
fn a_table_scoped_backup_with_foreign_keys_outside_it_is_drilled_honestly() {
    let db = cluster().create_db("drill_fk_chain");
    db.sql(FK_CHAIN);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    let s = Setup { db, sandbox, store };
    for format in ["plain", "custom", "directory"] {
        let out = ok(run(
            &s.sandbox,
            &[
                "backup",
                "--format",
                format,
                "-t",
                "orders",
                "-t",
                "order_items",
            ],
        ));
        let id = out
            .stdout_str()
            .lines()
            .find_map(|l| l.split(" as ").nth(1))
            .map(|id| id.trim().to_owned())
            .unwrap_or_else(|| panic!("no id in {}", out.stdout_str()));
        let meta = read_json(&sidecar_path(&s, &id));
        assert_eq!(meta["tables"].as_array().unwrap().len(), 2, "{meta}");

        let out = ok(run(&s.sandbox, &["drill", &id]));
        let stdout = out.stdout_str();
        let left_out = "Leaving out 2 foreign keys to tables not in this table-scoped backup \
             (an empty scratch database cannot hold them): ";
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(left_out))
            .unwrap_or_else(|| panic!("{format}: {stdout}"));
        let mut keys: Vec<&str> = line.split(", ").collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "public.order_items (order_items_product_id_fkey) -> public.products",
                "public.orders (orders_user_id_fkey) -> public.users",
            ],
            "{format}: {stdout}"
        );
        assert!(
            stdout.contains("  ok       public.orders       40 rows")
                && stdout.contains("  ok       public.order_items  90 rows")
                && stdout.contains("; 2 foreign keys to tables outside the backup not created: "),
            "{format}: {stdout}"
        );
        assert_eq!(
            scratch_databases(&s.db),
            "",
            "{format}: scratch left behind"
        );
        let record = last_drill(&s, &id);
        assert_eq!(record["ok"], true, "{format}: {record}");
        assert!(
            record["detail"]
                .as_str()
                .unwrap()
                .contains("public.orders (orders_user_id_fkey) -> public.users"),
            "{record}"
        );

        // The same backup, its sidecar made to disagree with its data.
        let path = sidecar_path(&s, &id);
        let mut meta = read_json(&path);
        for table in meta["tables"].as_array_mut().unwrap() {
            if table["name"] == "orders" {
                table["rows"] = 41.into();
            }
        }
        fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
        let out = run(&s.sandbox, &["drill", &id]);
        assert_eq!(out.status, 1, "{format}: {}", out.stdout_str());
        assert!(
            out.stderr_str().starts_with(&format!(
                "dbguard: drill of {id} failed: public.orders: 41 rows expected"
            )),
            "{format}: {}",
            out.stderr_str()
        );
        assert_eq!(last_drill(&s, &id)["table"], "public.orders");
        assert_eq!(
            scratch_databases(&s.db),
            "",
            "{format}: scratch left behind"
        );
    }
    // Nothing of the origin changed.
    assert_eq!(s.db.sql("select count(*) from order_items"), "90");
}

/// A plain table-scoped dump whose row was altered inside (SHA-256 kept
/// right): leaving foreign keys out does not hide it.
#[test]
fn an_altered_row_in_a_table_scoped_dump_with_foreign_keys_still_fails() {
    let db = cluster().create_db("drill_fk_altered");
    db.sql(FK_CHAIN);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    let s = Setup { db, sandbox, store };
    let out = ok(run(
        &s.sandbox,
        &["backup", "--format", "plain", "-t", "orders"],
    ));
    let id = out
        .stdout_str()
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .map(|id| id.trim().to_owned())
        .unwrap();
    let data = s.store.join(format!("{id}.sql"));
    let dump = fs::read_to_string(&data).unwrap();
    assert_eq!(dump.matches("\torder 7\n").count(), 1, "{dump}");
    let altered = dump.replace("\torder 7\n", "\torder X\n");
    fs::write(&data, &altered).unwrap();
    let path = sidecar_path(&s, &id);
    let mut meta = read_json(&path);
    meta["sha256"] = hex::encode(Sha256::digest(altered.as_bytes())).into();
    meta["size_bytes"] = altered.len().into();
    fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let out = run(&s.sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stderr_str().starts_with(&format!(
            "dbguard: drill of {id} failed: public.orders: content checksum "
        )),
        "{}",
        out.stderr_str()
    );
    assert!(
        out.stdout_str().contains("Leaving out 1 foreign keys"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
}

/// A backup whose only copy is on a remote (the moto S3 server): the drill
/// downloads it into a private temporary directory, verified before use,
/// drills it, records the result here (naming the remote, shown by
/// `list`), and removes the download. A copy cut short on the remote
/// fails its drill before any restore, recorded too.
#[test]
fn a_backup_only_a_remote_holds_is_downloaded_verified_drilled_and_removed() {
    use crate::support::s3::s3_server;

    let server = s3_server();
    let mut s = setup("drill_remote_only");
    let bucket = with_remote(&mut s, "drill-remote-only");
    let mut ids = Vec::new();
    for format in ["plain", "custom"] {
        ids.push((format, backup(&s, format)));
    }
    // --from drills the remote's copy even with a local one at hand.
    let (_, plain) = &ids[0];
    let out = ok(run(&s.sandbox, &["drill", plain, "--from", "offsite"]));
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!(
            "{plain} drilled from remote offsite: downloading it into "
        )) && stdout.contains("Drill passed: 2 tables"),
        "{stdout}"
    );
    assert_eq!(last_drill(&s, plain)["from"], "offsite");

    // The machine loses its backups; the remote keeps them.
    fs::remove_dir_all(&s.store).unwrap();

    for (format, id) in &ids {
        let out = ok(run(&s.sandbox, &["drill", id]));
        let stdout = out.stdout_str();
        let download = stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "{id} is only on remote offsite: downloading it into "
                ))
            })
            .unwrap_or_else(|| panic!("{format}: {stdout}"));
        assert!(
            stdout.contains("and verified it (the remote's checksum, then the sidecar's SHA-256)")
                && stdout.contains("Drill passed: 2 tables")
                && stdout.contains(&format!("Downloaded copy {download} removed.")),
            "{format}: {stdout}"
        );
        assert!(!Path::new(download).exists(), "{download} left behind");
        assert_eq!(
            scratch_databases(&s.db),
            "",
            "{format}: scratch left behind"
        );
        let record = last_drill(&s, id);
        assert_eq!(record["ok"], true, "{record}");
        assert_eq!(record["from"], "offsite", "{record}");
        // Recorded beside nothing else: the backup is still remote only.
        let local: Vec<_> = fs::read_dir(&s.store)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(id.as_str()))
            .collect();
        assert_eq!(local, [format!("{id}.drill.json")], "{format}");
    }
    let listed = ok(run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    for row in rows.as_array().unwrap() {
        assert_eq!(row["state"], "remote", "{listed}");
        assert_eq!(row["last_drill"]["ok"], true, "{listed}");
        assert_eq!(row["last_drill"]["from"], "offsite", "{listed}");
    }

    // --all drills the remote-only backups too, each from its remote.
    let out = ok(run(&s.sandbox, &["drill", "--all"]));
    let stdout = out.stdout_str();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, (_, id)) in lines.iter().zip(ids.iter().rev()) {
        assert!(
            line.starts_with(&format!("ok      {id} (remote offsite)  2 tables")),
            "{stdout}"
        );
    }

    // Someone with access to the bucket cuts the custom archive short.
    let (_, id) = &ids[1];
    let key = format!("team/db/{id}.dump");
    let stored = server.get(&bucket, &key);
    server.put(&bucket, &key, &stored[..stored.len() - 100]);
    let out = run(&s.sandbox, &["drill", id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stderr_str().starts_with(&format!(
            "dbguard: drill of {id} failed: the copy on remote offsite does not verify: "
        )),
        "{}",
        out.stderr_str()
    );
    assert!(
        out.stdout_str().contains("Nothing was restored."),
        "{}",
        out.stdout_str()
    );
    let record = last_drill(&s, id);
    assert_eq!(record["ok"], false, "{record}");
    assert_eq!(record["from"], "offsite", "{record}");
    let last = audit_lines(&s.store).pop().expect("an audit line");
    assert_eq!(last["decision"], "drill_failed");
    assert_eq!(
        last["backups"][0]["path"],
        format!("offsite:{id}.dump").as_str()
    );

    // --from a remote that is not configured: one usage error.
    let out = run(&s.sandbox, &["drill", id, "--from", "elsewhere"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());

    // An id neither here nor there is one error naming both.
    let out = run(&s.sandbox, &["drill", "nosuch"]);
    assert_eq!(out.status, 2, "{}", out.stderr_str());
    assert!(
        out.stderr_str().contains(" nor on remote offsite;"),
        "{}",
        out.stderr_str()
    );
}

/// A table-scoped backup of a table whose column type lives outside it
/// cannot be restored into an empty database: the drill fails, and says
/// why rather than blaming the backup's bytes.
#[test]
fn a_table_scoped_backup_needing_a_type_outside_it_fails_saying_why() {
    let db = cluster().create_db("drill_scoped_type");
    db.sql(
        "create type mood as enum ('ok', 'sad');
         create table notes (id int primary key, feeling mood);
         insert into notes values (1, 'ok'), (2, 'sad');",
    );
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    let s = Setup { db, sandbox, store };
    let out = ok(run(&s.sandbox, &["backup", "-t", "notes"]));
    let id = out
        .stdout_str()
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .map(|id| id.trim().to_owned())
        .unwrap();
    let out = run(&s.sandbox, &["drill", &id]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("the backup does not restore into an empty database: ")
            && stderr.contains("mood")
            && stderr.contains("a table-scoped backup holds only its tables"),
        "{stderr}"
    );
    assert_eq!(scratch_databases(&s.db), "", "scratch left behind");
}

/// An encrypted remote copy (age key in the config) is decrypted on the
/// way down and drilled like any other; `latest` finds it there (from the
/// remote sidecars, as the local store reads its own).
#[test]
fn an_encrypted_remote_only_copy_is_drilled_by_latest() {
    use crate::support::s3::s3_server;

    let server = s3_server();
    let mut s = setup("drill_remote_encrypted");
    let bucket = with_remote_configured(
        &mut s,
        "drill-remote-encrypted",
        "encryption_key_file = \"k.key\"\n",
    );
    ok(run(&s.sandbox, &["keygen", "k.key"]));
    let id = backup(&s, "custom");
    assert!(
        server
            .keys(&bucket)
            .contains(&format!("team/db/{id}.dump.age")),
        "{:?}",
        server.keys(&bucket)
    );
    fs::remove_dir_all(&s.store).unwrap();
    let out = ok(run(&s.sandbox, &["drill", "latest"]));
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!("{id} is only on remote offsite"))
            && stdout.contains("Drill passed: 2 tables: row counts from the archive's data (2)"),
        "{stdout}"
    );
    assert_eq!(last_drill(&s, &id)["from"], "offsite");
}
