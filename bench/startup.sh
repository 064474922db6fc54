#!/bin/sh
# Benchmark: what the psql shim and the preload library add to psql's
# start-up, against the physical floor, a minimal C program that only
# execs the real psql.
#
#   bench/startup.sh                    # 300 runs of each, alternating
#   RUNS=100 bench/startup.sh
#   BIN=target/release bench/startup.sh # an existing build: dbguard,
#                                       # libdbguard_preload.so and
#                                       # libdbguard_check.so in BIN
#
# Each run is `psql -X -c 'select 1'` against a throwaway cluster, started
# three ways in turn: the C exec shim; the dbguard shim (a `psql` symlink to
# the binary, which loads the library into psql for every run that can send
# SQL); the dbguard shim with DBGUARD_BYPASS=1 (pure exec, no library);
# the C exec shim with the library preloaded (the library's own share).
# Prints the medians and p90 of each, and the ratios to the C shim (target:
# shim + library within 1.05).
#
# Needs: initdb/pg_ctl, psql, cc, python3. Runs the server as `postgres`
# when run as root. Removes everything when done.
set -eu

RUNS=${RUNS:-300}
. "$(dirname "$0")/common.sh"
bench_workdir startup

bin=${BIN:-}
if [ -z "$bin" ]; then
    echo "building dbguard and the preload libraries (release)" >&2
    bench_build_release -p dbguard
    bin=${CARGO_TARGET_DIR:-$here/target}/release
fi
bin=$(cd "$bin" && pwd)
[ -x "$bin/dbguard" ] && [ -f "$bin/libdbguard_preload.so" ] && [ -f "$bin/libdbguard_check.so" ] ||
    { echo "no dbguard, libdbguard_preload.so and libdbguard_check.so in $bin" >&2; exit 1; }

# The floor: parse nothing, exec the real psql with the same arguments.
mkdir "$work/floor" "$work/shims"
cat > "$work/floor.c" <<EOF
#include <unistd.h>
int main(int argc, char **argv) { (void)argc; execv("$psql", argv); return 127; }
EOF
cc -O2 -o "$work/floor/psql" "$work/floor.c"
ln -s "$bin/dbguard" "$work/shims/psql"
touch "$work/shims/.dbguard-shims"

bench_cluster -c fsync=off
export DBGUARD_BACKUP_DIR="$work/backups" DBGUARD_PRELOAD="$bin/libdbguard_preload.so"
export DBGUARD_REAL_PSQL="$psql"

python3 - "$work" "$RUNS" <<'EOF'
import os, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
args = ["-X", "-q", "-c", "select 1"]
base = dict(os.environ)
sides = {
    "C exec shim": ([f"{work}/floor/psql"] + args, base),
    "dbguard shim + library": ([f"{work}/shims/psql"] + args, base),
    "dbguard shim, bypass": ([f"{work}/shims/psql"] + args, dict(base, DBGUARD_BYPASS="1")),
    # The library's own share, without the shim in front.
    "C exec shim + library": ([f"{work}/floor/psql"] + args, dict(base, LD_PRELOAD=base["DBGUARD_PRELOAD"])),
}
times = {name: [] for name in sides}
for r in range(runs):
    names = list(sides)
    # Rotate the order, so drifting load hits every side alike.
    names = names[r % len(names):] + names[:r % len(names)]
    for name in names:
        argv, env = sides[name]
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        times[name].append(time.perf_counter() - t)
floor = statistics.median(times["C exec shim"])
for name, ts in times.items():
    ts.sort()
    med, p90 = statistics.median(ts), ts[int(len(ts) * 0.9)]
    print(f"{name:26} median {med * 1e3:.2f} ms  p90 {p90 * 1e3:.2f} ms  ratio {med / floor:.3f}  (+{(med - floor) * 1e3:.2f} ms)")
EOF
