#!/bin/sh
# Benchmark: `dbguard backup` against bare `pg_dump` writing the same format
# to a file, on a generated database, alternating the two so that caches and
# background load hit both alike; then `dbguard verify` against the dump time.
#
#   bench/backup.sh                      # ~500 MB database, 5 rounds, plain
#   SCALE=10 ROUNDS=3 bench/backup.sh    # smaller and quicker
#   FORMAT=custom bench/backup.sh
#
# It starts a throwaway PostgreSQL cluster (initdb + pg_ctl, run as the
# `postgres` user when invoked as root), builds dbguard in release mode, and
# removes everything when done. Needs: initdb/pg_ctl (postgresql), pgbench,
# pg_dump, psql. SCALE is pgbench's scale factor: 34 gives ~500 MB.
set -eu

SCALE=${SCALE:-34}
ROUNDS=${ROUNDS:-5}
FORMAT=${FORMAT:-plain}
here=$(cd "$(dirname "$0")/.." && pwd)

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb)")
work=$(mktemp -d /tmp/dbguard-bench.XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building dbguard (release)..." >&2
(cd "$here" && cargo build --release --quiet)
dbguard="$here/target/release/dbguard"

as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-k $work -p $port -c listen_addresses='' -c fsync=off -c max_wal_size=4GB" start >/dev/null
export PGHOST="$work" PGPORT="$port" PGUSER=postgres PGDATABASE=bench
# Both sides use the same client programs: the versioned binaries, not a
# distribution wrapper script in front of them.
export PATH="$bindir:$PATH"
psql -qX -d postgres -c "create database bench"

start=$(date +%s)
pgbench -q -i -s "$SCALE" -I dtGvp bench >/dev/null 2>&1
size=$(psql -XAtc "select pg_size_pretty(pg_database_size('bench'))")
echo "generated database: $size (pgbench scale $SCALE) in $(( $(date +%s) - start )) s" >&2

case $FORMAT in
    plain) dump_args="--format=plain --clean --if-exists" ;;
    custom) dump_args="--format=custom" ;;
    *) echo "FORMAT must be plain or custom" >&2; exit 2 ;;
esac
now() { date +%s.%N; }
export DBGUARD_BACKUP_DIR="$work/store"

bare() {
    t0=$(now)
    # shellcheck disable=SC2086
    pg_dump $dump_args -f "$work/bare.out" bench
    t1=$(now)
    echo "$t1 - $t0" | bc
    rm -f "$work/bare.out"
}
guarded() {
    t0=$(now)
    "$dbguard" backup --yes --no-prune --format "$FORMAT" >"$work/last.out"
    t1=$(now)
    echo "$t1 - $t0" | bc
}
verify_last() {
    id=$(sed -n 's/^Backed up database "[^"]*" as //p' "$work/last.out")
    t0=$(now)
    "$dbguard" verify "$id" >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc
    rm -rf "$DBGUARD_BACKUP_DIR"
}

: >"$work/ratios"
: >"$work/verify"
i=1
while [ "$i" -le "$ROUNDS" ]; do
    if [ $((i % 2)) = 1 ]; then
        b=$(bare); g=$(guarded)
    else
        g=$(guarded); b=$(bare)
    fi
    v=$(verify_last)
    echo "round $i: pg_dump ${b}s  dbguard backup ${g}s  ratio $(echo "scale=3; $g / $b" | bc)  verify ${v}s ($(echo "scale=3; $v / $g" | bc)x)" >&2
    echo "scale=4; $g / $b" | bc >>"$work/ratios"
    echo "scale=4; $v / $g" | bc >>"$work/verify"
    i=$((i + 1))
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "format $FORMAT, database $size, $ROUNDS rounds"
echo "median dbguard backup / pg_dump: $(median "$work/ratios") (target <= 1.05)"
echo "median dbguard verify / dbguard backup: $(median "$work/verify") (target <= 0.2)"
