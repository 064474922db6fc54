//! What the psql guard costs, against a throwaway cluster (issue 5, item 9):
//!
//! 1. `psql -c 'DROP TABLE t'` with `DBGUARD_YES=1` through the shim, minus
//!    the same command on the real psql, minus pg_dump's own time (the
//!    backup's `dump_seconds`): the guard's added latency (target < 50 ms).
//! 2. `psql -f` of a ~100 MB non-destructive script, shim against real
//!    psql, alternating (target ≤ 1.1×).
//!
//! Run: `cargo bench --bench guard` (BENCH_RUNS=N drop runs, default 20;
//! BENCH_SCRIPT_MB=N script size, default 100). The psql and pg_dump
//! measured are the ones on PATH: on Debian the `pg_wrapper` links;
//! put `/usr/lib/postgresql/<version>/bin` first to measure the binaries.

#[path = "../tests/it/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let env_num = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = env_num("BENCH_RUNS", 20);
    let script_mb = env_num("BENCH_SCRIPT_MB", 100);
    let cluster = cluster::cluster();
    let db = cluster.create_db("bench_guard");
    let dir = tempfile::tempdir().expect("temp dir");
    let shims = dir.path().join("shims");
    std::fs::create_dir(&shims).expect("shim dir");
    std::fs::write(shims.join(".dbguard-shims"), "").expect("marker");
    let shim = shims.join("psql");
    symlink(env!("CARGO_BIN_EXE_dbguard"), &shim).expect("link");
    let real = cluster.client("psql");
    let store = dir.path().join("store");

    let run = |program: &Path, args: &[&str]| -> Duration {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(db.env())
            .env("DBGUARD_YES", "1")
            .env("DBGUARD_BACKUP_DIR", &store)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run psql");
        let elapsed = start.elapsed();
        assert!(status.success(), "{} {args:?} failed", program.display());
        elapsed
    };

    // 1. Guarded DROP.
    let drop_args = ["-X", "-q", "-c", "DROP TABLE t"];
    let setup = "create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 1000) g";
    let mut added = Vec::new();
    let mut dumps = Vec::new();
    for i in 0..runs + 2 {
        db.sql(setup);
        let direct = run(&real, &drop_args);
        db.sql(setup);
        let guarded = run(&shim, &drop_args);
        let dump = newest_dump_seconds(&store);
        if i >= 2 {
            // The first two runs warm caches.
            added.push(guarded.as_secs_f64() - direct.as_secs_f64() - dump);
            dumps.push(dump);
        }
    }
    added.sort_by(f64::total_cmp);
    dumps.sort_by(f64::total_cmp);
    println!("guarded DROP TABLE t (DBGUARD_YES=1, 1000 rows), {runs} runs");
    println!(
        "  added by the guard, pg_dump excluded: median {:.1} ms, p90 {:.1} ms (pg_dump itself: median {:.1} ms)\n",
        added[added.len() / 2] * 1e3,
        added[(added.len() - 1) * 9 / 10] * 1e3,
        dumps[dumps.len() / 2] * 1e3
    );

    // 2. A large harmless script.
    db.sql("create unlogged table big (id int, v text)");
    let script = dir.path().join("big.sql");
    write_script(&script, script_mb << 20);
    let script = script.to_str().expect("utf-8 temp path");
    let file_args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", script];
    let (mut via_shim, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        db.sql("truncate big");
        direct.push(run(&real, &file_args));
        db.sql("truncate big");
        via_shim.push(run(&shim, &file_args));
    }
    via_shim.sort();
    direct.sort();
    let (s, r) = (via_shim[1], direct[1]);
    println!("psql -f of a {script_mb} MB script of multi-row INSERTs, 3 alternating runs");
    println!(
        "  real {:.2} s, shim {:.2} s (medians): ratio {:.3}x",
        r.as_secs_f64(),
        s.as_secs_f64(),
        s.as_secs_f64() / r.as_secs_f64()
    );
    cluster.stop();
}

/// `dump_seconds` of the newest backup's metadata in `store`.
fn newest_dump_seconds(store: &Path) -> f64 {
    let mut metas: Vec<_> = std::fs::read_dir(store)
        .expect("store")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("backup_"))
        })
        .collect();
    metas.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let newest = metas.last().expect("a backup");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(newest).expect("read")).expect("json");
    meta["dump_seconds"].as_f64().unwrap_or(0.0)
}

/// About `bytes` of INSERTs, 200 rows per statement, with comments and
/// quoted strings so the lexer has real work.
fn write_script(path: &Path, bytes: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("script"));
    let mut written = 0;
    let mut id = 0;
    while written < bytes {
        let mut stmt = String::from("-- a batch\ninsert into big (id, v) values\n");
        for i in 0..200 {
            id += 1;
            let sep = if i == 199 { ";\n" } else { ",\n" };
            stmt.push_str(&format!(
                "  ({id}, 'row ''{id}'' of the benchmark; not a DROP'){sep}"
            ));
        }
        out.write_all(stmt.as_bytes()).expect("write");
        written += stmt.len();
    }
    out.flush().expect("flush");
}
