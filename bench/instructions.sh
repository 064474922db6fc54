#!/bin/sh
# Instruction counts of psql's start-up, the repeatable twin of
# bench/startup.sh: wall time swings by milliseconds on a busy machine,
# instructions executed (valgrind's count, dynamic loader included) do
# not. Both images of the process are counted: the shim up to its exec
# (callgrind dumps its counts before `execve`, which valgrind would
# otherwise drop) and the psql it execs.
#
#   bench/instructions.sh                  # builds the first stage (release)
#   BIN=target/release bench/instructions.sh
#   SHIM=/path/to/dbguard bench/instructions.sh   # e.g. the static build
#   RUNS=5 bench/instructions.sh
#
# Each run is `psql -X -q -c 'select 1'` against a throwaway cluster,
# started as:
#   C exec shim                 a minimal C program that execs the real psql
#   C exec shim + library       the same with the first stage preloaded
#                               (the library's own share)
#   dbguard shim + library      a `psql` link to SHIM (default BIN/dbguard,
#                               when there is one): what a user runs
#   dbguard shim, bypass        the same with DBGUARD_BYPASS=1 (no library)
# Prints the median of RUNS (default 3) counts per side and the ratio to
# the C exec shim (target for shim + library: 1.05). The shim to compare
# is the installed one: `install.sh` builds it static (see its build
# command); a debug or dynamic build counts its loader work too.
#
# Needs: valgrind, initdb/pg_ctl, psql, cc, python3. Runs the server as
# `postgres` when run as root. Removes everything when done.
set -eu

RUNS=${RUNS:-3}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

. "$(dirname "$0")/common.sh"
bench_workdir instructions

bin=${BIN:-}
if [ -z "$bin" ]; then
    echo "building the first stage (release)" >&2
    (cd "$here" && cargo build --release --locked --manifest-path preload/first/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-target}" >&2)
    bin=${CARGO_TARGET_DIR:-$here/target}/release
fi
bin=$(cd "$bin" && pwd)
[ -f "$bin/libdbguard_preload.so" ] || { echo "no libdbguard_preload.so in $bin" >&2; exit 1; }
shim=${SHIM:-$bin/dbguard}

mkdir "$work/floor" "$work/shims" "$work/lib"
cat > "$work/floor.c" <<EOF2
#include <unistd.h>
int main(int argc, char **argv) { (void)argc; execv("$psql", argv); return 127; }
EOF2
cc -O2 -o "$work/floor/psql" "$work/floor.c"
# The first stage alone: `select 1` never loads the check beside it.
cp "$bin/libdbguard_preload.so" "$work/lib/"
if [ -x "$shim" ]; then
    ln -s "$shim" "$work/shims/psql"
    touch "$work/shims/.dbguard-shims"
else
    echo "no dbguard shim at $shim: measuring the library only" >&2
fi

bench_cluster -c fsync=off
export DBGUARD_BACKUP_DIR="$work/backups" DBGUARD_PRELOAD="$work/lib/libdbguard_preload.so"
export DBGUARD_REAL_PSQL="$psql"

python3 - "$work" "$RUNS" <<'EOF2'
import os, re, statistics, subprocess, sys, tempfile
work, runs = sys.argv[1], int(sys.argv[2])
args = ["-X", "-q", "-c", "select 1"]
base = dict(os.environ)
sides = {
    "C exec shim": ([f"{work}/floor/psql"] + args, base),
    "C exec shim + library": ([f"{work}/floor/psql"] + args, dict(base, LD_PRELOAD=base["DBGUARD_PRELOAD"])),
}
if os.path.exists(f"{work}/shims/psql"):
    sides["dbguard shim + library"] = ([f"{work}/shims/psql"] + args, base)
    sides["dbguard shim, bypass"] = ([f"{work}/shims/psql"] + args, dict(base, DBGUARD_BYPASS="1"))

def count(argv, env):
    """Instructions of one run: every image of every process, summed."""
    with tempfile.TemporaryDirectory(dir=work) as out:
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-before=execve",
             f"--callgrind-out-file={out}/cg.%p"] + argv,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        totals = []
        for name in os.listdir(out):
            with open(os.path.join(out, name)) as f:
                totals += [int(m) for m in re.findall(r"^totals: (\d+)", f.read(), re.M)]
        if not totals:
            sys.exit("no instruction count in callgrind's output")
        return sum(totals)

counts = {name: [count(*side) for _ in range(runs)] for name, side in sides.items()}
floor = statistics.median(counts["C exec shim"])
for name, cs in counts.items():
    med = statistics.median(cs)
    print(f"{name:24} {med:>12,.0f} instructions  ratio {med / floor:.4f}  (+{med - floor:,.0f})  runs {', '.join(f'{c:,}' for c in cs)}")
EOF2
