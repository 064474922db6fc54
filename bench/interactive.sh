#!/bin/sh
# Benchmark: what the preload library (the guard inside psql) costs.
#
#   bench/interactive.sh                        # 20,000 statements, 5 rounds
#   STATEMENTS=5000 ROUNDS=3 bench/interactive.sh
#
# 1. Throughput: the real psql sends STATEMENTS small non-destructive
#    statements (alternately `SELECT 1`, a one-row INSERT and a targeted
#    DELETE, each sent on its own as typed at the prompt: psql's SendQuery
#    path is the same for a terminal and a file) with the library preloaded
#    and without, alternating round by round; prints statements per second
#    and the median ratio (target: at least 0.98).
# 2. Start-up: `psql -X -c 'select 1'` with and without the library, STARTS
#    runs each alternating; prints the medians and the difference.
#
# It starts a throwaway PostgreSQL cluster (initdb + pg_ctl, as the
# `postgres` user when run as root), builds the library in release mode, and
# removes everything when done. Needs: initdb/pg_ctl, psql, python3.
set -eu

STATEMENTS=${STATEMENTS:-20000}
ROUNDS=${ROUNDS:-5}
STARTS=${STARTS:-200}
here=$(cd "$(dirname "$0")/.." && pwd)

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb)")
psql=$bindir/psql
work=$(mktemp -d /tmp/dbguard-bench.XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building the preload library (release)" >&2
(cd "$here" && cargo build --release --locked -p dbguard-preload >&2)
target=${CARGO_TARGET_DIR:-$here/target}
lib=$target/release/libdbguard_preload.so
[ -f "$lib" ] || { echo "no $lib" >&2; exit 1; }

as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
    -o "-k $work -c listen_addresses= -c fsync=off -c synchronous_commit=off" start >/dev/null
export PGHOST="$work" PGUSER=postgres PGDATABASE=postgres
# Backups never happen here (nothing is destructive); this keeps the guard
# from looking for a configuration in the caller's directories.
export DBGUARD_BACKUP_DIR="$work/backups"
"$psql" -X -q -c "create table bench (id int primary key, v text)"

python3 - "$work/stmts.sql" "$STATEMENTS" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        k = i % 3
        if k == 0:
            f.write("SELECT 1;\n")
        elif k == 1:
            f.write(f"INSERT INTO bench VALUES ({i}, 'row {i}');\n")
        else:
            f.write(f"DELETE FROM bench WHERE id = {i - 1};\n")
EOF

now() { python3 -c 'import time; print(time.perf_counter_ns())'; }
run_script() { # $1: "" or the library
    "$psql" -X -q -c "truncate bench" >/dev/null
    start=$(now)
    LD_PRELOAD=$1 "$psql" -X -q -f "$work/stmts.sql" >/dev/null
    end=$(now)
    echo $(( (end - start) / 1000 ))
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "throughput: $STATEMENTS statements per run, $ROUNDS rounds"
: >"$work/plain" ; : >"$work/guarded"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
    p=$(run_script "")
    g=$(run_script "$lib")
    echo "$p" >>"$work/plain"; echo "$g" >>"$work/guarded"
    echo "  round $((i + 1)): plain $((STATEMENTS * 1000000 / p))/s, guarded $((STATEMENTS * 1000000 / g))/s"
    i=$((i + 1))
done
mp=$(median <"$work/plain"); mg=$(median <"$work/guarded")
python3 -c "
n, p, g = $STATEMENTS, $mp, $mg
print(f'median: plain {n * 1e6 / p:.0f} statements/s, guarded {n * 1e6 / g:.0f} statements/s, ratio {p / g:.4f}')
"

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
