//! Point-in-time recovery through pgBackRest, against a real cluster that
//! archives its WAL to a real repository (support/pgbackrest.rs).

use std::process::Command;

use crate::support::pgbackrest::{STANZA, pitr_cluster};

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
