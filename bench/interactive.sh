#!/bin/sh
# Benchmark: what the preload library (the guard inside psql) costs: its
# first stage, and the check it loads for a string that may be destructive
# (MIX=delete loads it; the default mix never does).
#
#   bench/interactive.sh                        # 20,000 statements, 5 rounds
#   STATEMENTS=5000 ROUNDS=3 bench/interactive.sh
#   MIX=delete bench/interactive.sh     # also DELETE ... WHERE id = N
#   LIB=target/release/libdbguard_preload.so bench/interactive.sh   # no build
#
# 1. Throughput: the real psql sends STATEMENTS small non-destructive
#    statements (alternately `SELECT 1` and a one-row INSERT; with
#    MIX=delete also a DELETE by primary key, which the guard lets through
#    without an estimate once it has learned the table's keys), each sent on its own as typed at the prompt (psql's
#    SendQuery path is the same for a terminal and a file), with the library
#    preloaded and without, alternating round by round; prints statements
#    per second and the median ratio (target for the default mix: at least
#    0.98).
# 2. Start-up: `psql -X -c 'select 1'` with and without the library, STARTS
#    runs each alternating; prints the medians and the difference.
#
# It starts a throwaway PostgreSQL cluster (initdb + pg_ctl, as the
# `postgres` user when run as root), builds the library in release mode, and
# removes everything when done. Needs: initdb/pg_ctl, psql, python3.
set -eu

STATEMENTS=${STATEMENTS:-20000}
MIX=${MIX:-plain}
ROUNDS=${ROUNDS:-5}
STARTS=${STARTS:-200}
. "$(dirname "$0")/common.sh"
bench_workdir bench

# LIB=path measures an already built library instead of building one.
lib=${LIB:-}
if [ -z "$lib" ]; then
    echo "building the preload library (release)" >&2
    bench_build_release
    target=${CARGO_TARGET_DIR:-$here/target}
    lib=$target/release/libdbguard_preload.so
fi
[ -f "$lib" ] || { echo "no $lib" >&2; exit 1; }

bench_cluster -c fsync=off -c synchronous_commit=off
# Backups never happen here (nothing is destructive); this keeps the guard
# from looking for a configuration in the caller's directories.
export DBGUARD_BACKUP_DIR="$work/backups"
"$psql" -X -q -c "create table bench (id int primary key, v text)"

python3 - "$work/stmts.sql" "$STATEMENTS" "$MIX" <<'EOF'
import sys
path, n, mix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        k = i % 3 if mix == "delete" else i % 2
        if k == 0:
            f.write("SELECT 1;\n")
        elif k == 1:
            f.write(f"INSERT INTO bench VALUES ({i}, 'row {i}');\n")
        else:
            f.write(f"DELETE FROM bench WHERE id = {i - 1};\n")
EOF

echo "throughput: $STATEMENTS statements per run ($MIX mix), $ROUNDS rounds"
# Wall time is what a person sees but swings with other load on the
# machine; psql's own CPU time (user + system) is where the library's work
# shows, so both are reported.
python3 - "$psql" "$lib" "$work/stmts.sql" "$STATEMENTS" "$ROUNDS" <<'EOF'
import os, resource, statistics, subprocess, sys, time
psql, lib, script, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def run(preload):
    subprocess.run([psql, "-X", "-q", "-c", "truncate bench"], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, LD_PRELOAD=preload)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([psql, "-X", "-q", "-f", script], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu
plain, guarded = [], []
for r in range(rounds):
    # Alternate which side goes first, so drifting load hits both alike.
    order = [("", plain), (lib, guarded)] if r % 2 == 0 else [(lib, guarded), ("", plain)]
    for preload, out in order:
        out.append(run(preload))
    print(f"  round {r + 1}: plain {n / plain[-1][0]:.0f}/s ({plain[-1][1] * 1e6 / n:.1f} us CPU per statement), "
          f"guarded {n / guarded[-1][0]:.0f}/s ({guarded[-1][1] * 1e6 / n:.1f} us CPU per statement)")
pw, gw = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in guarded)
pc, gc = statistics.median(c for _, c in plain), statistics.median(c for _, c in guarded)
added = (gc - pc) / n
print(f"median wall: plain {n / pw:.0f} statements/s, guarded {n / gw:.0f} statements/s, ratio {pw / gw:.4f}")
print(f"median psql CPU per statement: plain {pc * 1e6 / n:.1f} us, guarded {gc * 1e6 / n:.1f} us, added {added * 1e6:.1f} us")
print(f"throughput ratio from CPU (plain wall per statement / (that + added CPU)): {(pw / n) / (pw / n + added):.4f}")
EOF

echo "start-up: psql -X -c 'select 1', $STARTS runs each"
python3 - "$psql" "$lib" "$STARTS" <<'EOF'
import os, statistics, subprocess, sys, time
psql, lib, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
plain, guarded = [], []
for _ in range(runs):
    for env_lib, out in (("", plain), (lib, guarded)):
        env = dict(os.environ, LD_PRELOAD=env_lib)
        t = time.perf_counter()
        subprocess.run([psql, "-X", "-q", "-c", "select 1"], env=env, stdout=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t)
mp, mg = statistics.median(plain), statistics.median(guarded)
print(f"median: plain {mp * 1000:.2f} ms, with the library {mg * 1000:.2f} ms, added {(mg - mp) * 1000:.2f} ms")
EOF
