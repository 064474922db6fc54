//! Whole-command benchmark: `psql -X -c 'select 1'` against a throwaway
//! cluster, through the shim and straight to the real binary, alternating
//! run by run so drift in machine load hits both sides alike. Prints
//! medians, the 90th percentile, the ratio and the time the shim adds.
//!
//! Run: `cargo bench --bench shim_overhead` (BENCH_RUNS=N for more runs).
//! Two pairs are measured: Debian's `psql` (the pg_wrapper script users
//! actually run) and the psql binary behind it, where the shim's own cost is
//! easiest to see.

#[path = "../tests/it/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we ignore.
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cluster = cluster::cluster();
    let shims = tempfile::tempdir().expect("temp dir");
    std::fs::write(shims.path().join(".dbguard-shims"), "").expect("marker");
    let shim = shims.path().join("psql");
    // DBGUARD_BENCH_BIN measures another build (e.g. the installed binary).
    let bin = std::env::var_os("DBGUARD_BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_dbguard").into());
    symlink(&bin, &shim).expect("link");

    let wrapper = cluster.client("psql");
    let binary = std::fs::canonicalize(&wrapper)
        .ok()
        .filter(|p| p.file_name().is_some_and(|n| n == "psql"))
        .unwrap_or_else(|| cluster.server_bin.join("psql"));

    println!(
        "shim overhead: psql -X -c 'select 1', {runs} alternating runs each\nshim binary: {}\n",
        bin.display()
    );
    baseline(&shim, runs);
    compare(
        cluster,
        "psql as found on PATH",
        &shim,
        &wrapper,
        None,
        runs,
    );
    if binary != wrapper {
        compare(cluster, "psql binary", &shim, &binary, Some(&binary), runs);
    }
    cluster.stop();
}

fn compare(
    cluster: &cluster::Cluster,
    label: &str,
    shim: &Path,
    real: &Path,
    real_override: Option<&Path>,
    runs: usize,
) {
    let run = |program: &Path| -> Duration {
        let mut cmd = Command::new(program);
        cmd.args(["-X", "-q", "-c", "select 1"])
            .envs(cluster.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(path) = real_override {
            cmd.env("DBGUARD_REAL_PSQL", path);
        }
        let start = Instant::now();
        let status = cmd.status().expect("run psql");
        let elapsed = start.elapsed();
        assert!(status.success(), "{} failed", program.display());
        elapsed
    };
    // Warm caches (page cache, the server's catalog cache) before measuring.
    for _ in 0..10 {
        run(shim);
        run(real);
    }
    let (mut via_shim, mut direct) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        via_shim.push(run(shim));
        direct.push(run(real));
    }
    let (s50, s90) = percentiles(&mut via_shim);
    let (r50, r90) = percentiles(&mut direct);
    println!("{label} ({})", real.display());
    println!(
        "  real   median {:>9.3} ms   p90 {:>9.3} ms",
        ms(r50),
        ms(r90)
    );
    println!(
        "  shim   median {:>9.3} ms   p90 {:>9.3} ms",
        ms(s50),
        ms(s90)
    );
    println!(
        "  ratio  {:.4}x   added {:+.0} µs (median)\n",
        s50.as_secs_f64() / r50.as_secs_f64(),
        (s50.as_secs_f64() - r50.as_secs_f64()) * 1e6
    );
}

/// What the shim costs with nothing behind it but /bin/true: its own start
/// and one extra exec, against /bin/true run directly.
fn baseline(shim: &Path, runs: usize) {
    let run = |program: &Path| -> Duration {
        let mut cmd = Command::new(program);
        cmd.env("DBGUARD_REAL_PSQL", "/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run");
        assert!(status.success());
        start.elapsed()
    };
    let truth = Path::new("/bin/true");
    let (mut via_shim, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        via_shim.push(run(shim));
        direct.push(run(truth));
    }
    let (s50, _) = percentiles(&mut via_shim);
    let (r50, _) = percentiles(&mut direct);
    println!(
        "baseline: /bin/true median {:.3} ms, through the shim {:.3} ms: the shim adds {:+.0} µs\n",
        ms(r50),
        ms(s50),
        (s50.as_secs_f64() - r50.as_secs_f64()) * 1e6
    );
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
