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
//! 3. `alembic upgrade head` from an empty database (a first deploy): the
//!    guard's one catalog query shows no user data, so it execs without
//!    rendering, asking or backing up; the database is emptied again
//!    (untimed) before every run. Its ratio to the real alembic is the
//!    figure issue 13 bounds at 1.2.
//! 4. The shim alone, exec'ing `/bin/true` (`DBGUARD_REAL_ALEMBIC`), against
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

#[path = "../tests/it/support/venv.rs"]
mod venv;

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
    // Wall-clock and CPU time (user + system, of the command and all its
    // children): on a busy machine wall time is mostly scheduling noise,
    // while CPU time shows the work each side actually did.
    let run = |program: &Path, args: &[&str], extra: &[(&str, &str)], fresh: bool| -> Sample {
        if fresh {
            db.sql("drop schema public cascade; create schema public");
        }
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
        let cpu_before = children_cpu();
        let start = Instant::now();
        let status = cmd.status().expect("run");
        let wall = start.elapsed().as_secs_f64();
        assert!(status.success(), "{} {args:?} failed", program.display());
        Sample {
            wall,
            cpu: children_cpu() - cpu_before,
        }
    };
    assert!(run(&real, &["upgrade", "head"], &[], false).wall > 0.0);

    println!("{runs} alternating pairs each (order swapped every pair); medians in ms");
    let floor = [("DBGUARD_REAL_ALEMBIC", "/bin/true")];
    let cases = [
        Case {
            what: "alembic history",
            direct: &real,
            args: &["history"],
            shim_env: &[],
            pairs: runs,
            fresh: false,
        },
        Case {
            what: "alembic upgrade head, nothing pending",
            direct: &real,
            args: &["upgrade", "head"],
            shim_env: &[],
            pairs: runs,
            fresh: false,
        },
        Case {
            what: "alembic upgrade head from an empty database",
            direct: &real,
            args: &["upgrade", "head"],
            shim_env: &[],
            pairs: runs,
            fresh: true,
        },
        Case {
            what: "shim -> /bin/true",
            direct: Path::new("/bin/true"),
            args: &["history"],
            shim_env: &floor,
            pairs: runs * 10,
            fresh: false,
        },
    ];
    for Case {
        what,
        direct: direct_program,
        args,
        shim_env: extra,
        pairs: n,
        fresh,
    } in cases
    {
        let mut pairs = Vec::new();
        // Two warm-up pairs fill the page cache and __pycache__.
        for i in 0..n + 2 {
            let (d, g) = if i % 2 == 0 {
                let d = run(direct_program, args, &[], fresh);
                (d, run(&shim, args, extra, fresh))
            } else {
                let g = run(&shim, args, extra, fresh);
                (run(direct_program, args, &[], fresh), g)
            };
            if i >= 2 {
                pairs.push((d, g));
            }
        }
        report(what, &pairs);
    }
    cluster.stop();
}

/// One comparison: `direct` against the shim, with the same arguments.
struct Case<'a> {
    what: &'a str,
    direct: &'a Path,
    args: &'a [&'a str],
    /// Extra environment for the shim side only.
    shim_env: &'a [(&'a str, &'a str)],
    pairs: usize,
    /// Empty the database (untimed) before each run.
    fresh: bool,
}

#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

/// User + system seconds of all waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn report(what: &str, pairs: &[(Sample, Sample)]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1e3
    };
    let pick = |f: fn(&(Sample, Sample)) -> f64| median(pairs.iter().map(f).collect());
    println!(
        "  {what}: wall real {:.1}, shim {:.1}, added {:+.1} (median of pair differences), ratio {:.3} (median of pair ratios); cpu real {:.1}, shim {:.1}, added {:+.1}",
        pick(|p| p.0.wall),
        pick(|p| p.1.wall),
        pick(|p| p.1.wall - p.0.wall),
        pick(|p| p.1.wall / p.0.wall) / 1e3,
        pick(|p| p.0.cpu),
        pick(|p| p.1.cpu),
        pick(|p| p.1.cpu - p.0.cpu),
    );
}
