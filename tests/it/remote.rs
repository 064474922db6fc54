//! Off-machine copies against a real S3-compatible server (moto's, started
//! by `support::s3` on loopback): `dbguard backup` copies and confirms,
//! `sync` retries, `keygen` + `encryption_key_file` keep the server from
//! ever seeing plaintext, and the faults a remote can have are one line
//! each with nothing recorded as copied.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::guarded;
use crate::support::s3::{Fault, FaultProxy, s3_server};
use crate::support::sandbox::capture;
use crate::support::{Output, Sandbox, TestDb, cluster};

struct Setup {
    db: TestDb,
    sandbox: Sandbox,
    store: PathBuf,
    bucket: String,
}

const SAMPLE: &str = "
    create table users (id serial primary key, email text not null);
    insert into users (email) select 'u' || g || '@example.com' from generate_series(1, 300) g;
";

/// A database with rows, a store, a fresh bucket and a config whose one
/// remote (`offsite`) is `remote_extra` plus the url and endpoint.
fn setup(hint: &str, remote_extra: &str) -> Setup {
    let server = s3_server();
    let db = cluster().create_db(hint);
    db.sql(SAMPLE);
    let mut sandbox = Sandbox::psql_only().with_db(&db);
    let store = guarded::use_store(&mut sandbox);
    for (k, v) in server.env() {
        sandbox.set(k, &v);
    }
    let bucket = server.create_bucket(hint);
    write_config(&sandbox, &bucket, &server.endpoint, remote_extra);
    Setup {
        db,
        sandbox,
        store,
        bucket,
    }
}

fn write_config(sandbox: &Sandbox, bucket: &str, endpoint: &str, remote_extra: &str) {
    fs::write(
        sandbox.dir.path().join(".dbguard.toml"),
        format!(
            "[[remote]]\nname = \"offsite\"\nurl = \"s3://{bucket}/team/db\"\nendpoint = \"{endpoint}\"\n{remote_extra}"
        ),
    )
    .expect("write config");
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

fn backup_id(out: &Output) -> String {
    out.stdout_str()
        .lines()
        .find_map(|l| l.split(" as ").nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no id in {}", out.stdout_str()))
}

fn copies(store: &Path, id: &str) -> serde_json::Value {
    fs::read(store.join(format!("{id}.copies.json")))
        .map(|b| serde_json::from_slice(&b).expect("copies file is JSON"))
        .unwrap_or(serde_json::Value::Null)
}

fn copied_to(store: &Path, id: &str) -> Vec<String> {
    copies(store, id)["copies"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["remote"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_backup_is_copied_to_the_remote_byte_for_byte_and_recorded() {
    let s = setup("remote_copy", "");
    let out = run(&s.sandbox, &["backup", "--format", "custom"]);
    ok(&out);
    let id = backup_id(&out);
    let file = format!("{id}.dump");
    let location = format!("s3://{}/team/db/{file}", s.bucket);
    assert!(
        out.stdout_str()
            .contains(&format!("copy     offsite: {location}")),
        "{}",
        out.stdout_str()
    );
    let server = s3_server();
    assert_eq!(
        server.keys(&s.bucket),
        vec![
            format!("team/db/{file}"),
            format!("team/db/{file}.sha256"),
            format!("team/db/{id}.json"),
            format!("team/db/{id}.json.sha256"),
        ]
    );
    let local = fs::read(s.store.join(&file)).unwrap();
    assert_eq!(server.get(&s.bucket, &format!("team/db/{file}")), local);
    assert_eq!(copied_to(&s.store, &id), vec!["offsite"]);
    assert_eq!(copies(&s.store, &id)["copies"][0]["location"], location);
    // Nothing of the credentials anywhere dbguard wrote.
    for entry in fs::read_dir(&s.store).unwrap().flatten() {
        let bytes = fs::read(entry.path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(crate::support::s3::SECRET_KEY),
            "{:?}",
            entry.path()
        );
    }
    drop(s.db);
}

#[test]
fn an_encrypted_remote_never_sees_plaintext_and_only_its_key_opens_it() {
    let s = setup("remote_enc", "encryption_key_file = \"offsite.key\"\n");
    let key = s.sandbox.dir.path().join("offsite.key");
    let out = run(&s.sandbox, &["keygen", key.to_str().unwrap()]);
    ok(&out);
    assert!(
        out.stdout_str().contains("public key  age1"),
        "{}",
        out.stdout_str()
    );
    assert!(!out.stdout_str().contains("AGE-SECRET-KEY"));
    // A second keygen over the same file would orphan every copy: refused.
    let again = run(&s.sandbox, &["keygen", key.to_str().unwrap()]);
    assert_eq!(again.status, 2, "{}", again.stderr_str());
    assert!(
        again.stderr_str().contains("already exists"),
        "{}",
        again.stderr_str()
    );

    let out = run(&s.sandbox, &["backup", "--format", "plain"]);
    ok(&out);
    let id = backup_id(&out);
    let server = s3_server();
    let keys = server.keys(&s.bucket);
    assert!(keys.contains(&format!("team/db/{id}.sql.age")), "{keys:?}");
    assert!(keys.contains(&format!("team/db/{id}.json.age")), "{keys:?}");
    for object in [format!("{id}.sql.age"), format!("{id}.json.age")] {
        let stored = server.get(&s.bucket, &format!("team/db/{object}"));
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{object}");
        let text = String::from_utf8_lossy(&stored);
        assert!(
            !text.contains("u17@example.com") && !text.contains("\"sha256\""),
            "{object}"
        );
    }
    assert_eq!(copies(&s.store, &id)["copies"][0]["encrypted"], true);
    drop(s.db);
}

#[test]
fn a_missing_bucket_is_one_line_nothing_is_recorded_and_sync_retries() {
    let server = s3_server();
    let s = setup("remote_retry", "");
    let missing = format!("{}-not-yet", s.bucket);
    write_config(&s.sandbox, &missing, &server.endpoint, "");
    let out = run(&s.sandbox, &["backup"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert_eq!(
        err.trim_end()
            .lines()
            .last()
            .map(|l| l.starts_with("dbguard: ")),
        Some(true),
        "{err}"
    );
    assert!(err.contains("the bucket does not exist"), "{err}");
    assert!(!err.contains(crate::support::s3::SECRET_KEY), "{err}");
    let id = guarded::id_of(&guarded::backups(&s.store)[0]);
    assert!(copied_to(&s.store, &id).is_empty());
    assert_eq!(copies(&s.store, &id)["failures"][0]["remote"], "offsite");
    // The local backup is untouched and verifies.
    ok(&run(&s.sandbox, &["verify", &id]));

    // Once the bucket exists, `sync` copies what is missing.
    server.create_named_bucket(&missing);
    let out = run(&s.sandbox, &["sync"]);
    ok(&out);
    assert!(
        out.stdout_str()
            .contains(&format!("copied {id} to offsite")),
        "{}",
        out.stdout_str()
    );
    assert_eq!(copied_to(&s.store, &id), vec!["offsite"]);
    assert!(
        copies(&s.store, &id)["failures"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    // Nothing left to do.
    let out = run(&s.sandbox, &["sync"]);
    ok(&out);
    assert!(
        out.stdout_str().contains("on every remote already"),
        "{}",
        out.stdout_str()
    );
    drop(s.db);
}

#[test]
fn an_unreachable_endpoint_is_one_line_and_the_local_backup_stands() {
    let s = setup("remote_down", "");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    write_config(
        &s.sandbox,
        &s.bucket,
        &format!("http://127.0.0.1:{port}"),
        "",
    );
    let out = run(&s.sandbox, &["backup"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("cannot reach the server"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("dbguard:")).count(),
        1,
        "{err}"
    );
    let id = guarded::id_of(&guarded::backups(&s.store)[0]);
    assert!(copied_to(&s.store, &id).is_empty());
    ok(&run(&s.sandbox, &["verify", &id]));
    drop(s.db);
}

#[test]
fn wrong_credentials_are_one_line_and_never_shown() {
    let (server, (key_id, secret)) = crate::support::s3::authenticating_server();
    let s = setup("remote_creds", "");
    write_config(&s.sandbox, "guarded", &server.endpoint, "");
    let mut sandbox = s.sandbox;
    sandbox.set("AWS_ACCESS_KEY_ID", &key_id);
    sandbox.set("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = run(&sandbox, &["backup"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(
        err.contains("access denied: check the credentials"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-secret") && !err.contains(&secret),
        "{err}"
    );
    let id = guarded::id_of(&guarded::backups(&s.store)[0]);
    assert!(copied_to(&s.store, &id).is_empty());

    // The right secret: copied.
    sandbox.set("AWS_SECRET_ACCESS_KEY", &secret);
    let out = run(&sandbox, &["sync"]);
    ok(&out);
    assert_eq!(copied_to(&s.store, &id), vec!["offsite"]);
    drop(s.db);
}

fn users(db: &TestDb) -> String {
    db.sql("select count(*) from users")
}

/// `restore WANTED --yes --no-safety-backup`, which must succeed and say
/// that `id` came from remote offsite, there being no local copy.
fn restore_from_the_remote(sandbox: &Sandbox, wanted: &str, id: &str) -> Output {
    let out = run(sandbox, &["restore", wanted, "--yes", "--no-safety-backup"]);
    ok(&out);
    assert!(
        out.stderr_str().contains(&format!(
            "there is no local copy: restoring {id} from remote offsite"
        )),
        "{}",
        out.stderr_str()
    );
    out
}

#[test]
fn a_backup_only_the_remote_holds_is_listed_and_restored_from_there() {
    let s = setup("remote_only", "");
    let out = run(&s.sandbox, &["backup", "--format", "custom"]);
    ok(&out);
    let id = backup_id(&out);
    let listed = ok(&run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        rows[0]["locations"],
        serde_json::json!(["local", "offsite"]),
        "{listed}"
    );

    // The laptop loses its backups.
    fs::remove_dir_all(&s.store).unwrap();
    let listed = ok(&run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["state"], "remote");
    assert_eq!(rows[0]["locations"], serde_json::json!(["offsite"]));
    let table = ok(&run(&s.sandbox, &["list"])).stdout_str();
    assert!(
        table.contains("remote only") && table.contains("offsite"),
        "{table}"
    );

    s.db.sql("delete from users where id > 10");
    restore_from_the_remote(&s.sandbox, &id, &id);
    assert_eq!(users(&s.db).trim(), "300");
    // It is a local backup again, verified.
    ok(&run(&s.sandbox, &["verify", &id]));
}

/// Two backups in one second are `X` and `X_2`. With only `X_2` here and
/// `X` only on the remote, `restore X` means the remote's `X`: the local
/// `X_2` it prefixes is another backup.
#[test]
fn an_exact_id_only_the_remote_holds_is_restored_not_the_local_one_it_prefixes() {
    let s = setup("remote_exact_id", "");
    let backup = || {
        let out = run(&s.sandbox, &["backup", "--format", "custom"]);
        ok(&out);
        backup_id(&out)
    };
    let mut previous = backup();
    let mut pair = None;
    for _ in 0..10 {
        let id = backup();
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
    s.db.sql("delete from users");
    let out = restore_from_the_remote(&s.sandbox, &remote_only, &remote_only);
    assert!(
        out.stdout_str()
            .contains(&format!("Restored {remote_only} ")),
        "{}",
        out.stdout_str()
    );
    assert!(
        !out.stdout_str().contains(&local),
        "the local {local} was not the one restored:\n{}",
        out.stdout_str()
    );
}

#[test]
fn a_corrupt_local_copy_is_set_aside_and_the_remote_one_restores() {
    let s = setup("remote_corrupt_local", "");
    let out = run(&s.sandbox, &["backup", "--format", "plain"]);
    ok(&out);
    let id = backup_id(&out);
    let file = s.store.join(format!("{id}.sql"));
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(&file, &bytes).unwrap();
    s.db.sql("delete from users");
    let out = run(&s.sandbox, &["restore", &id, "--yes", "--no-safety-backup"]);
    ok(&out);
    assert!(
        out.stderr_str().contains("the local copy is CORRUPTED"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(users(&s.db).trim(), "300");
    assert_eq!(
        fs::read(s.store.join(format!("{id}.sql.corrupt"))).unwrap(),
        bytes
    );
    ok(&run(&s.sandbox, &["verify", &id]));
}

#[test]
fn verify_remote_rereads_copies_and_a_tampered_one_is_never_restored() {
    let s = setup("remote_tamper", "encryption_key_file = \"k.key\"\n");
    ok(&run(&s.sandbox, &["keygen", "k.key"]));
    let out = run(&s.sandbox, &["backup", "--format", "custom"]);
    ok(&out);
    let id = backup_id(&out);
    let out = ok(&run(&s.sandbox, &["verify", "--remote", "offsite"])).stdout_str();
    assert!(
        out.contains(&format!("OK          {id}")) || out.contains("1 OK, 0 bad"),
        "{out}"
    );

    // Someone with access to the bucket cuts the object short, checksum object untouched.
    let server = s3_server();
    let key = format!("team/db/{id}.dump.age");
    let stored = server.get(&s.bucket, &key);
    server.put(&s.bucket, &key, &stored[..stored.len() - 100]);
    let out = run(&s.sandbox, &["verify", "--remote", "offsite"]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("CORRUPTED"),
        "{}",
        out.stdout_str()
    );

    // --from the damaged remote: refused, the database unchanged.
    s.db.sql("delete from users where id > 5");
    let out = run(
        &s.sandbox,
        &[
            "restore",
            &id,
            "--yes",
            "--no-safety-backup",
            "--from",
            "offsite",
        ],
    );
    assert_ne!(out.status, 0);
    assert!(
        out.stderr_str().contains("no remote copy could be used"),
        "{}",
        out.stderr_str()
    );
    assert_eq!(users(&s.db).trim(), "5");

    // The wrong key: one clear line.
    fs::remove_file(s.sandbox.dir.path().join("k.key")).unwrap();
    ok(&run(&s.sandbox, &["keygen", "k.key"]));
    let out = run(&s.sandbox, &["verify", "--remote", "offsite"]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("encrypted for another key"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn remote_retention_plans_then_removes_and_keeps_the_newest() {
    let s = setup("remote_prune", "keep_within = \"0\"\nkeep_last = 1\n");
    let first = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let second = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let server = s3_server();
    let before = server.keys(&s.bucket);
    let out = ok(&run(
        &s.sandbox,
        &["prune", "--remote", "offsite", "--dry-run"],
    ))
    .stdout_str();
    assert!(out.contains(&format!("would remove  {first}")), "{out}");
    assert!(out.contains(&second), "{out}");
    assert_eq!(server.keys(&s.bucket), before);

    let out = ok(&run(&s.sandbox, &["prune", "--remote", "offsite"])).stdout_str();
    assert!(out.contains(&format!("remove        {first}")), "{out}");
    let after = server.keys(&s.bucket);
    // `first.` not `first`: two backups in one second are `ID` and `ID_2`.
    assert!(
        after.iter().all(|k| !k.contains(&format!("{first}."))),
        "{after:?}"
    );
    assert!(
        after.contains(&format!("team/db/{second}.dump")),
        "{after:?}"
    );
    // The local backups are the local retention's business: untouched.
    assert!(s.store.join(format!("{first}.dump")).exists());
    assert!(copied_to(&s.store, &first).is_empty());
    let audit = guarded::audit_lines(&s.store);
    assert!(
        audit
            .iter()
            .any(|r| r["backups"][0]["id"] == first.as_str()),
        "{audit:?}"
    );
}

/// The remote's keys of backup `id` (`id.` not `id`: two backups in one
/// second are `ID` and `ID_2`).
fn keys_of(keys: &[String], id: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k.starts_with(&format!("team/db/{id}.")))
        .cloned()
        .collect()
}

#[test]
fn remote_retention_removes_every_file_of_a_directory_copy_and_keeps_the_newest() {
    let s = setup("remote_prune_dir", "keep_within = \"0\"\nkeep_last = 1\n");
    let first = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "directory"])));
    let second = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "directory"])));
    let server = s3_server();
    let before = server.keys(&s.bucket);
    let first_keys = keys_of(&before, &first);
    // The directory's files, their checksum objects and the sidecar.
    for part in [
        ".dir/toc.dat",
        ".dir/toc.dat.sha256",
        ".json",
        ".json.sha256",
    ] {
        assert!(
            first_keys.contains(&format!("team/db/{first}{part}")),
            "{first_keys:?}"
        );
    }
    let local_files = fs::read_dir(s.store.join(format!("{first}.dir")))
        .unwrap()
        .count();
    assert_eq!(first_keys.len(), 2 * local_files + 2, "{first_keys:?}");

    let out = ok(&run(&s.sandbox, &["prune", "--remote", "offsite"])).stdout_str();
    assert!(out.contains(&format!("remove        {first}")), "{out}");
    assert!(!out.contains(&format!("remove        {second}")), "{out}");
    let after = server.keys(&s.bucket);
    assert_eq!(keys_of(&after, &first), Vec::<String>::new());
    // Nothing but the newest copy is left, all of it, and it still verifies.
    assert_eq!(after, keys_of(&before, &second));
    let out = ok(&run(&s.sandbox, &["verify", "--remote", "offsite"])).stdout_str();
    assert!(out.contains("1 OK, 0 bad"), "{out}");
    // Local backups are the local retention's business.
    assert!(
        s.store
            .join(format!("{first}.dir"))
            .join("toc.dat")
            .exists()
    );
    assert!(copied_to(&s.store, &first).is_empty());
    assert_eq!(copied_to(&s.store, &second), vec!["offsite"]);

    // Run again: the newest copy stays, whatever the rules say.
    let out = ok(&run(&s.sandbox, &["prune", "--remote", "offsite"])).stdout_str();
    assert!(!out.contains("remove        "), "{out}");
    assert_eq!(server.keys(&s.bucket), after);
}

/// A newer directory copy that lost a file on the remote cannot be
/// restored: the older complete copy is the one that must stay.
#[test]
fn remote_retention_keeps_the_newest_complete_copy_when_a_newer_one_lost_a_file() {
    let s = setup(
        "remote_prune_incomplete",
        "keep_within = \"0\"\nkeep_last = 1\n",
    );
    let complete = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "directory"])));
    let damaged = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "directory"])));
    let server = s3_server();
    for key in ["toc.dat", "toc.dat.sha256"] {
        server.delete(&s.bucket, &format!("team/db/{damaged}.dir/{key}"));
    }
    let before = server.keys(&s.bucket);
    let out = ok(&run(&s.sandbox, &["prune", "--remote", "offsite"])).stdout_str();
    assert!(!out.contains("remove        "), "{out}");
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(complete.as_str()))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("newest verified"), "{out}");
    assert_eq!(server.keys(&s.bucket), before);
}

#[test]
fn remote_retention_removing_the_last_copy_of_a_backup_removes_its_drill_record() {
    let s = setup("remote_prune_drill", "keep_within = \"0\"\nkeep_last = 1\n");
    // Ids taken in one second are `ID`, `ID_2`, `ID_3`: the remote-only
    // one a prefix of the local ones.
    let remote_only = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let local_too = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let newest = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    for suffix in [".dump", ".json", ".copies.json"] {
        fs::remove_file(s.store.join(format!("{remote_only}{suffix}"))).unwrap();
    }
    let record = |id: &str| s.store.join(format!("{id}.drill.json"));
    for id in [&remote_only, &local_too] {
        ok(&run(&s.sandbox, &["drill", id]));
        assert!(record(id).exists(), "{id}: no drill record");
    }
    let out = ok(&run(&s.sandbox, &["prune", "--remote", "offsite"])).stdout_str();
    for id in [&remote_only, &local_too] {
        assert!(out.contains(&format!("remove        {id}")), "{out}");
    }
    // No copy of it anywhere: its drill went with it.
    assert!(!record(&remote_only).exists());
    // The local copy still stands, and so does the record of its drill.
    assert!(record(&local_too).exists());
    let listed = ok(&run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [newest.as_str(), local_too.as_str()], "{listed}");
    assert_eq!(rows[1]["last_drill"]["ok"], true, "{listed}");
}

/// Ctrl-C while `restore` downloads a large remote copy: it stops then, not
/// when the download ends, and what was downloaded has no final name, so
/// nothing offers it as a backup.
#[test]
fn ctrl_c_during_a_restore_download_stops_it_and_leaves_no_backup_behind() {
    use sha2::{Digest, Sha256};
    use std::io::BufRead;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};

    let s = setup("remote_restore_interrupted", "");
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    fs::remove_dir_all(&s.store).unwrap();
    // A large object with a valid stored checksum (not the sidecar's: a
    // download run to its end is refused, never restored).
    const SIZE: usize = 400 << 20;
    let large: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let server = s3_server();
    let key = format!("team/db/{id}.dump");
    server.put(&s.bucket, &key, &large);
    let checksum = hex::encode(Sha256::digest(&large));
    server.put(&s.bucket, &format!("{key}.sha256"), checksum.as_bytes());
    drop(large);

    let mut cmd = s.sandbox.dbguard();
    cmd.args(["restore", &id, "--yes", "--no-safety-backup"])
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dbguard restore");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let staged = || {
        fs::read_dir(&s.store)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
    };
    while !staged() {
        assert!(Instant::now() < deadline, "the download wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: plain syscall; the group is the one spawned above.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGINT) };
    let signalled = Instant::now();
    let status = child.wait().expect("wait for dbguard");
    let stopped_after = signalled.elapsed();
    let mut said = String::new();
    while stderr.read_line(&mut said).unwrap_or(0) > 0 {}
    // Ended by the signal itself (what a shell reports as 130) or exit 130.
    assert!(
        status.signal() == Some(libc::SIGINT) || status.code() == Some(130),
        "{status:?}: {said}"
    );
    assert!(
        stopped_after < Duration::from_secs(2),
        "stopped {stopped_after:?} after Ctrl-C"
    );
    assert!(!s.store.join(format!("{id}.dump")).exists());
    let listed = ok(&run(&s.sandbox, &["list", "--json"])).stdout_str();
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(rows[0]["state"], "remote", "{listed}");
}

#[test]
fn a_guard_does_not_wait_for_the_copy_which_arrives_by_itself() {
    let mut s = setup("remote_guard", "");
    s.sandbox.set("DBGUARD_YES", "1");
    let out = guarded::without_terminal(
        s.sandbox
            .shim("psql")
            .args(["-X", "-c", "drop table users"]),
        None,
    );
    assert_eq!(out.status, 0, "{}", out.stderr_str());
    // The table is gone: the guarded command ran.
    assert_eq!(
        s.db.sql("select count(*) from pg_tables where tablename = 'users'")
            .trim(),
        "0"
    );
    let id = guarded::id_of(&guarded::backups(&s.store)[0]);
    // The detached `dbguard sync` records the copy when it is confirmed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while copied_to(&s.store, &id).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no copy recorded: {}",
            copies(&s.store, &id)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let keys = s3_server().keys(&s.bucket);
    assert!(keys.contains(&format!("team/db/{id}.json")), "{keys:?}");
}

/// Lines of `text` that are dbguard's own error lines.
fn error_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("dbguard:")).count()
}

#[test]
fn credentials_come_from_the_aws_files_and_the_environment_wins_over_them() {
    let (server, (key_id, secret)) = crate::support::s3::authenticating_server();
    let s = setup("remote_profile", "");
    write_config(&s.sandbox, "guarded", &server.endpoint, "");
    let mut sandbox = s.sandbox;
    sandbox.env.retain(|(k, _)| !k.starts_with("AWS_"));
    // No instance-metadata lookups from a test machine.
    sandbox.set("AWS_EC2_METADATA_DISABLED", "true");

    // No keys anywhere: one line saying where they are looked for.
    let out = run(&sandbox, &["backup"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("no credentials"), "{err}");
    assert_eq!(error_lines(&err), 1, "{err}");
    let first = guarded::id_of(&guarded::backups(&s.store)[0]);
    assert!(copied_to(&s.store, &first).is_empty());

    // The AWS CLI's files, with the profile AWS_PROFILE names.
    let aws = sandbox.home.join(".aws");
    fs::create_dir_all(&aws).unwrap();
    fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = wrong\n\n\
             [offsite-writer]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        ),
    )
    .unwrap();
    fs::write(
        aws.join("config"),
        "[profile offsite-writer]\nregion = us-east-1\n",
    )
    .unwrap();
    sandbox.set("AWS_PROFILE", "offsite-writer");
    let out = run(&sandbox, &["sync"]);
    ok(&out);
    assert_eq!(copied_to(&s.store, &first), vec!["offsite"]);
    // The same files elsewhere, through the variables that move them.
    let moved = sandbox.dir.path().join("aws-credentials");
    fs::rename(aws.join("credentials"), &moved).unwrap();
    sandbox.set("AWS_SHARED_CREDENTIALS_FILE", moved.to_str().unwrap());
    let second = backup_id(ok(&run(&sandbox, &["backup"])));
    assert_eq!(copied_to(&s.store, &second), vec!["offsite"]);

    // Keys in the environment win over the files, as with the AWS CLI.
    sandbox.set("AWS_ACCESS_KEY_ID", &key_id);
    sandbox.set("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = run(&sandbox, &["backup"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("access denied"), "{err}");
    for text in [err, out.stdout_str()] {
        assert!(
            !text.contains(&secret) && !text.contains("not-the-secret"),
            "{text}"
        );
    }
    for entry in fs::read_dir(&s.store).unwrap().flatten() {
        let text =
            String::from_utf8_lossy(&fs::read(entry.path()).unwrap_or_default()).into_owned();
        assert!(!text.contains(&secret), "{:?}", entry.path());
    }
    drop(s.db);
}

#[test]
fn latest_names_a_newer_backup_only_the_remote_holds() {
    let s = setup("remote_latest", "");
    let first = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let second = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    // The newest backup is gone here; the older one is still local.
    for entry in fs::read_dir(&s.store).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{second}.")) {
            fs::remove_file(entry.path()).unwrap();
        }
    }
    s.db.sql("delete from users where id > 10");
    let latest_db = format!("latest:{}", s.db.name);
    restore_from_the_remote(&s.sandbox, &latest_db, &second);
    assert_eq!(users(&s.db).trim(), "300");
    assert!(s.store.join(format!("{first}.dump")).exists());

    // Nothing local at all: `latest` is the remote's newest.
    fs::remove_dir_all(&s.store).unwrap();
    s.db.sql("delete from users where id > 20");
    let out = run(
        &s.sandbox,
        &["restore", "latest", "--yes", "--no-safety-backup"],
    );
    ok(&out);
    assert!(
        out.stderr_str()
            .contains(&format!("restoring {second} from remote offsite")),
        "{}",
        out.stderr_str()
    );
    assert_eq!(users(&s.db).trim(), "300");
    // Another database's latest is not this one's.
    let out = run(
        &s.sandbox,
        &[
            "restore",
            "latest:no_such_db",
            "--yes",
            "--no-safety-backup",
        ],
    );
    assert_ne!(out.status, 0, "{}", out.stdout_str());
}

#[test]
fn an_upload_killed_half_way_records_nothing_and_sync_completes_it() {
    let s = setup("remote_killed", "");
    // Backed up with no remote configured yet.
    fs::write(s.sandbox.dir.path().join(".dbguard.toml"), "").unwrap();
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "custom"])));
    let server = s3_server();
    let proxy = FaultProxy::start(&server.endpoint, Fault::HoldParts);
    write_config(&s.sandbox, &s.bucket, &proxy.endpoint, "");
    let mut sync = s
        .sandbox
        .dbguard()
        .args(["sync"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dbguard sync");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.held() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no part upload reached the proxy"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Killed in mid-upload, as a closed laptop or a reboot would.
    sync.kill().unwrap();
    sync.wait().unwrap();
    assert!(
        copied_to(&s.store, &id).is_empty(),
        "{}",
        copies(&s.store, &id)
    );
    assert!(
        server.keys(&s.bucket).is_empty(),
        "{:?}",
        server.keys(&s.bucket)
    );
    ok(&run(&s.sandbox, &["verify", &id]));

    // The next sync, with the server reachable, completes it.
    write_config(&s.sandbox, &s.bucket, &server.endpoint, "");
    let out = ok(&run(&s.sandbox, &["sync"])).stdout_str();
    assert!(out.contains(&format!("copied {id} to offsite")), "{out}");
    assert_eq!(copied_to(&s.store, &id), vec!["offsite"]);
    ok(&run(&s.sandbox, &["verify", "--remote", "offsite"]));
    drop(proxy);
}

#[test]
fn a_full_remote_is_one_line_and_nothing_is_recorded() {
    let s = setup("remote_full", "");
    let proxy = FaultProxy::start(&s3_server().endpoint, Fault::QuotaBytes(512));
    write_config(&s.sandbox, &s.bucket, &proxy.endpoint, "");
    let out = run(&s.sandbox, &["backup", "--format", "plain"]);
    assert_eq!(out.status, 2, "{}", out.stdout_str());
    let err = out.stderr_str();
    assert!(err.contains("the remote is full"), "{err}");
    assert!(!err.contains("access denied"), "{err}");
    assert_eq!(error_lines(&err), 1, "{err}");
    let id = guarded::id_of(&guarded::backups(&s.store)[0]);
    assert!(copied_to(&s.store, &id).is_empty());
    assert_eq!(copies(&s.store, &id)["failures"][0]["remote"], "offsite");
    assert!(s3_server().keys(&s.bucket).is_empty());
    ok(&run(&s.sandbox, &["verify", &id]));
    drop(s.db);
}

#[test]
fn a_changed_byte_on_the_remote_is_caught_and_never_restored() {
    let s = setup("remote_flip", "");
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "plain"])));
    let server = s3_server();
    let key = format!("team/db/{id}.sql");
    let mut stored = server.get(&s.bucket, &key);
    let middle = stored.len() / 2;
    stored[middle] ^= 0x01;
    server.put(&s.bucket, &key, &stored);

    let out = run(&s.sandbox, &["verify", "--remote", "offsite"]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    let report = out.stdout_str();
    assert!(
        report.contains("CORRUPTED") && report.contains("damaged or was altered"),
        "{report}"
    );
    s.db.sql("delete from users where id > 7");
    let out = run(
        &s.sandbox,
        &[
            "restore",
            &id,
            "--yes",
            "--no-safety-backup",
            "--from",
            "offsite",
        ],
    );
    assert_ne!(out.status, 0);
    let err = out.stderr_str();
    assert!(err.contains("no remote copy could be used"), "{err}");
    assert_eq!(error_lines(&err), 1, "{err}");
    assert_eq!(users(&s.db).trim(), "7");
    // The local backup is untouched.
    ok(&run(&s.sandbox, &["verify", &id]));
}

#[test]
fn a_directory_backup_is_copied_file_by_file_and_restored_from_there() {
    let s = setup("remote_dir", "");
    let out = run(&s.sandbox, &["backup", "--format", "directory"]);
    ok(&out);
    let id = backup_id(&out);
    assert_eq!(copied_to(&s.store, &id), vec!["offsite"]);
    assert_eq!(
        copies(&s.store, &id)["copies"][0]["location"],
        format!("s3://{}/team/db/{id}.dir/", s.bucket)
    );
    // Every file of the directory, byte for byte, each with its checksum.
    let server = s3_server();
    let keys = server.keys(&s.bucket);
    let local_dir = s.store.join(format!("{id}.dir"));
    let mut names: Vec<String> = fs::read_dir(&local_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"toc.dat".to_owned()), "{names:?}");
    for name in &names {
        let key = format!("team/db/{id}.dir/{name}");
        assert!(keys.contains(&format!("{key}.sha256")), "{keys:?}");
        assert_eq!(
            server.get(&s.bucket, &key),
            fs::read(local_dir.join(name)).unwrap(),
            "{name}"
        );
    }
    let out = ok(&run(&s.sandbox, &["verify", "--remote", "offsite"])).stdout_str();
    assert!(out.contains("1 OK, 0 bad"), "{out}");

    // The laptop loses its backups: restored from the remote's files.
    fs::remove_dir_all(&s.store).unwrap();
    s.db.sql("delete from users where id > 3");
    restore_from_the_remote(&s.sandbox, &id, &id);
    assert_eq!(users(&s.db).trim(), "300");
    ok(&run(&s.sandbox, &["verify", &id]));

    // One file changed on the remote: named, and the copy is not used.
    let key = format!("team/db/{id}.dir/toc.dat");
    let mut stored = server.get(&s.bucket, &key);
    let middle = stored.len() / 2;
    stored[middle] ^= 0x01;
    server.put(&s.bucket, &key, &stored);
    let out = run(&s.sandbox, &["verify", "--remote", "offsite"]);
    assert_eq!(out.status, 1, "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("CORRUPTED") && out.stdout_str().contains("toc.dat"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn long_transfers_show_progress_on_a_terminal_and_nothing_elsewhere() {
    use expectrl::Expect;
    let s = setup("remote_progress", "");
    // About 14 MB of text that does not compress away: past the bar's threshold.
    s.db.sql(
        "create table blobs as select g, md5(random()::text) || md5(random()::text) as a \
         from generate_series(1, 200000) g",
    );
    fs::write(s.sandbox.dir.path().join(".dbguard.toml"), "").unwrap();
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "plain"])));
    write_config(&s.sandbox, &s.bucket, &s3_server().endpoint, "");
    // A terminal of a real size, as a person's is.
    let on_terminal = |args: &str| {
        let mut cmd = s.sandbox.command("sh");
        cmd.arg("-c").arg(format!(
            "stty cols 160 rows 40; exec \"$0\" {args} </dev/null"
        ));
        cmd.arg(crate::support::sandbox::dbguard_bin())
            // Without TERM a terminal counts as a dumb one: no bar.
            .env("TERM", "xterm");
        let mut session = expectrl::Session::spawn(cmd).expect("spawn on a pty");
        session.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
        session
    };

    let mut sync = on_terminal("sync");
    sync.expect(format!("copying {id}"))
        .expect("an upload progress bar");
    sync.expect(format!("copied {id} to offsite"))
        .expect("the copy's line");
    sync.expect(expectrl::Eof).expect("sync ends");
    assert_eq!(guarded::exit_code(&mut sync), 0);

    let mut verify = on_terminal("verify --remote offsite");
    verify
        .expect(format!("downloading {id}"))
        .expect("a download progress bar");
    verify.expect(expectrl::Eof).expect("verify ends");
    assert_eq!(guarded::exit_code(&mut verify), 0);

    // Not a terminal: no bar, stderr stays empty.
    let out = run(&s.sandbox, &["verify", "--remote", "offsite"]);
    ok(&out);
    assert_eq!(out.stderr_str(), "");
    drop(s.db);
}

#[test]
fn an_encrypted_directory_backup_verifies_from_the_remote() {
    let s = setup("remote_dir_enc", "encryption_key_file = \"d.key\"\n");
    ok(&run(&s.sandbox, &["keygen", "d.key"]));
    let id = backup_id(ok(&run(&s.sandbox, &["backup", "--format", "directory"])));
    let keys = s3_server().keys(&s.bucket);
    assert!(
        keys.contains(&format!("team/db/{id}.dir/toc.dat.age")),
        "{keys:?}"
    );
    let out = ok(&run(&s.sandbox, &["verify", "--remote", "offsite"])).stdout_str();
    assert!(out.contains("1 OK, 0 bad"), "{out}");
    drop(s.db);
}
