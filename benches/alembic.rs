//! What the alembic guard costs when there is nothing to guard (issue 6,
//! item 7), on the sample project against a throwaway cluster, through the
//! shim and straight to the real alembic, alternating run by run so drift
//! in machine load hits both sides alike:
//!
//! 1. `alembic history`: a command that changes nothing; the shim must
//!    exec at once (no configuration, no connection, no render).
//! 2. `alembic upgrade head` with the database already at head: the guard
//!    reads the version table (one psql query) and the revision files,
//!    sees nothing to apply and execs without rendering.
//! 3. The shim alone, exec'ing `/bin/true` (`DBGUARD_REAL_ALEMBIC`), against
//!    `/bin/true` itself: the floor under both.
//!
//! Run: `cargo bench --bench alembic` (BENCH_RUNS=N pairs, default 20;
//! DBGUARD_BENCH_BIN measures another build, e.g. the installed binary).

#[path = "../tests/it/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

#[path = "../tests/it/support/alembic.rs"]
#[allow(dead_code)]
mod alembic;

use cluster::TestDb;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cluster = cluster::cluster();
    let db = cluster.create_db("bench_alembic");
    let project = alembic::AlembicProject::new(&db);
    let venv = alembic::alembic_bin_dir();
    let real = venv.join("alembic");

    let shims = tempfile::tempdir().expect("temp dir");
    std::fs::write(shims.path().join(".dbguard-shims"), "").expect("marker");
    let shim = shims.path().join("alembic");
    let bin = std::env::var_os("DBGUARD_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_dbguard").into());
    symlink(&bin, &shim).expect("link");
    let path = format!(
        "{}:{}:{}",
        shims.path().display(),
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let store = shims.path().join("store");
    let run = |program: &Path, args: &[&str], extra: &[(&str, &str)]| -> f64 {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(project.path())
            .envs(db.env())
            .env("PATH", &path)
            .env("HOME", shims.path())
            .env("DBGUARD_BACKUP_DIR", &store)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run");
        let elapsed = start.elapsed().as_secs_f64();
        assert!(status.success(), "{} {args:?} failed", program.display());
        elapsed
    };
    assert!(run(&real, &["upgrade", "head"], &[]) > 0.0);

    println!("{runs} alternating pairs each; medians (p90) in ms");
    for args in [&["history"][..], &["upgrade", "head"][..]] {
        let (mut direct, mut guarded) = (Vec::new(), Vec::new());
        // Two warm-up pairs fill the page cache and __pycache__.
        for i in 0..runs + 2 {
            let d = run(&real, args, &[]);
            let g = run(&shim, args, &[]);
            if i >= 2 {
                direct.push(d);
                guarded.push(g);
            }
        }
        report(&format!("alembic {}", args.join(" ")), &direct, &guarded);
    }
    let (mut direct, mut guarded) = (Vec::new(), Vec::new());
    let floor = [("DBGUARD_REAL_ALEMBIC", "/bin/true")];
    for _ in 0..runs * 10 {
        direct.push(run(Path::new("/bin/true"), &["history"], &[]));
        guarded.push(run(&shim, &["history"], &floor));
    }
    report("shim -> /bin/true history", &direct, &guarded);
    cluster.stop();
}

fn report(what: &str, direct: &[f64], guarded: &[f64]) {
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2] * 1e3, v[(v.len() - 1) * 9 / 10] * 1e3)
    };
    let (d, dp) = stats(direct);
    let (g, gp) = stats(guarded);
    println!(
        "  {what}: real {d:.1} ({dp:.1}), through the shim {g:.1} ({gp:.1}), added {:.1}",
        g - d
    );
}
