#!/usr/bin/env bash
# Remote copies, measured against an S3-compatible server on loopback (moto's
# standalone server, the one the tests use):
#
#  1. copy throughput: `dbguard sync` of one backup against `rclone copy` of
#     the same file to the same server, alternating round by round (the
#     order flips every round, so caches and background load hit both
#     alike); also `dbguard sync` to an encrypted remote, for information;
#  2. restore from a remote copy: a pgbench database in a throwaway cluster,
#     backed up (custom format) and copied, restored with the local copy
#     present, then with the local copy deleted (download + verification +
#     restore), and `dbguard verify --remote` (download + check alone).
#
#   scripts/bench-remote.sh                          # 512 MiB, 3 rounds, scale 20
#   SIZE_MIB=256 ROUNDS=5 scripts/bench-remote.sh
#   RESTORE_SCALE=0 scripts/bench-remote.sh          # copy throughput only
#
# Needs: rclone (Debian: `apt-get install rclone`), python3 with venv (the
# moto venv is created under target/tmp/s3-venv with the tests' pins unless
# the tests made it already), a dbguard build (target/release/dbguard from
# `cargo build --release`, or DBGUARD=path), and for the restore part
# initdb/pg_ctl, pgbench, pg_dump and pg_restore (scripts/test-prereqs.sh).
# Everything it starts it stops, and it removes what it wrote.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-${1:-512}}
ROUNDS=${ROUNDS:-3}
RESTORE_SCALE=${RESTORE_SCALE:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
dbguard=${DBGUARD:-$root/target/release/dbguard}

if ! command -v rclone >/dev/null 2>&1; then
    echo "bench-remote: rclone is missing (Debian: apt-get install rclone)" >&2
    exit 2
fi
if [ ! -x "$dbguard" ]; then
    echo "bench-remote: no $dbguard (cargo build --release, or DBGUARD=path)" >&2
    exit 2
fi

# The moto venv, shared with the tests (same directory, pins, stamp and lock).
base=$root/target/tmp
venv=$base/s3-venv
mkdir -p "$base"
mapfile -t pins < <(grep -m1 'pub const PINS' "$root/tests/it/support/s3.rs" | grep -o '"[^"]*==[^"]*"' | tr -d '"')
exec 9>"$base/s3-venv.lock"
flock 9
if [ "$(cat "$venv/.dbguard-pins" 2>/dev/null)" != "$(printf '%s\n' "${pins[@]}")" ] || [ ! -x "$venv/bin/moto_server" ]; then
    echo "bench-remote: creating the moto venv ($venv)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
    printf '%s' "$(printf '%s\n' "${pins[@]}")" >"$venv/.dbguard-pins"
fi
flock -u 9

work=$(mktemp -d /tmp/dbguard-bench-remote.XXXXXX)
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
bindir=
cleanup() {
    kill "$moto" 2>/dev/null || true
    if [ -n "$bindir" ]; then
        as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
endpoint=http://127.0.0.1:$port
s3() {
    "$venv/bin/python" -c "import boto3; c = boto3.client('s3', endpoint_url='$endpoint'); $1"
}
s3 "[c.create_bucket(Bucket=b) for b in ('dbguard', 'rclone', 'restore')]"
# Moto keeps objects in memory: every round starts from empty buckets.
empty() {
    s3 "[c.delete_object(Bucket='$1', Key=o['Key']) for o in c.list_objects_v2(Bucket='$1').get('Contents', [])]"
}

# One backup in a store, as `dbguard backup` would leave it.
store=$work/store
mkdir -m 700 "$store"
id=backup_bench_20260101_000000
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$store/$id.dump"
sha=$(sha256sum "$store/$id.dump" | cut -d' ' -f1)
cat >"$store/$id.json" <<EOF
{"id": "$id", "file": "$id.dump", "created_at": "2026-01-01T00:00:00+00:00",
 "sha256": "$sha", "size_bytes": $((SIZE_MIB << 20)), "format": "custom",
 "database": "bench", "host": "localhost", "port": 5432, "user": "bench",
 "server_version": "16", "pg_dump_version": "pg_dump 16", "tables": [],
 "alembic_revision": null, "scope": "database", "reason": "bench",
 "tool_version": "0"}
EOF
cat >"$work/plain.toml" <<EOF
[[remote]]
name = "bench"
url = "s3://dbguard/bench"
endpoint = "$endpoint"
EOF
DBGUARD_CONFIG=$work/plain.toml "$dbguard" keygen "$work/bench.key" >/dev/null
cat >"$work/encrypted.toml" <<EOF
[[remote]]
name = "bench"
url = "s3://dbguard/bench"
endpoint = "$endpoint"
encryption_key_file = "$work/bench.key"
EOF

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
dbguard_sync() {
    empty dbguard
    rm -f "$store/$id.copies.json"
    local t0
    t0=$(now)
    DBGUARD_CONFIG=$1 DBGUARD_BACKUP_DIR=$store "$dbguard" sync >/dev/null || {
        echo "bench-remote: dbguard sync failed" >&2
        exit 1
    }
    local took
    took=$(elapsed "$t0")
    grep -q '"remote": "bench"' "$store/$id.copies.json"
    echo "$took"
}
rclone_copy() {
    empty rclone
    local t0
    t0=$(now)
    # AWS_CA_BUNDLE (set on some machines for HTTPS) makes this rclone
    # refuse even a plain-HTTP endpoint; the endpoint here is http. rclone
    # logs an error for its check after the upload (moto answers 400 to a
    # HEAD with versionId=null), then checks again and succeeds: two small
    # requests, left in its time.
    env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null \
        RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT="$endpoint" \
        RCLONE_CONFIG_B_ACCESS_KEY_ID=bench RCLONE_CONFIG_B_SECRET_ACCESS_KEY=bench \
        rclone copy --s3-chunk-size 16M "$store/$id.dump" b:rclone/bench >"$work/rclone.log" 2>&1 || {
        echo "bench-remote: rclone copy failed:" >&2
        cat "$work/rclone.log" >&2
        exit 1
    }
    local took
    took=$(elapsed "$t0")
    # It really is there (outside the timing).
    s3 "c.head_object(Bucket='rclone', Key='bench/$id.dump')" >/dev/null
    echo "$took"
}

echo "copy of ${SIZE_MIB} MiB (random bytes) to moto on loopback, ${ROUNDS} rounds, seconds:"
plain=() rclone=() encrypted=()
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        plain+=("$(dbguard_sync "$work/plain.toml")")
        rclone+=("$(rclone_copy)")
    else
        rclone+=("$(rclone_copy)")
        plain+=("$(dbguard_sync "$work/plain.toml")")
    fi
    encrypted+=("$(dbguard_sync "$work/encrypted.toml")")
    echo "  round $round: dbguard sync ${plain[-1]}  rclone copy ${rclone[-1]}  dbguard sync (age) ${encrypted[-1]}"
done
python3 - "$SIZE_MIB" "${plain[*]}" "${rclone[*]}" "${encrypted[*]}" <<'EOF'
import statistics, sys
size = int(sys.argv[1])
runs = {name: [float(x) for x in text.split()] for name, text in
        zip(("dbguard sync", "rclone copy", "dbguard sync (age)"), sys.argv[2:])}
medians = {name: statistics.median(times) for name, times in runs.items()}
for name, m in medians.items():
    print(f"{name:<20} median {m:6.2f} s  {size / m:7.1f} MiB/s")
print(f"dbguard / rclone      {medians['rclone copy'] / medians['dbguard sync']:.2f}x of rclone's throughput (target >= 0.9)")
EOF

# Downloads, once each: the last round left the encrypted copy on the
# dbguard side and the plain file on rclone's.
t0=$(now)
DBGUARD_CONFIG=$work/encrypted.toml DBGUARD_BACKUP_DIR=$store "$dbguard" verify --remote bench >/dev/null
verify_big=$(elapsed "$t0")
mkdir "$work/download"
t0=$(now)
env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null \
    RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT="$endpoint" \
    RCLONE_CONFIG_B_ACCESS_KEY_ID=bench RCLONE_CONFIG_B_SECRET_ACCESS_KEY=bench \
    rclone copy "b:rclone/bench/$id.dump" "$work/download" 2>/dev/null
rclone_down=$(elapsed "$t0")
rm -rf "$work/download"
python3 -c "print(f'download: dbguard verify --remote (age, checksums) {$verify_big:.2f} s  {$SIZE_MIB / $verify_big:.1f} MiB/s; rclone copy to disk {$rclone_down:.2f} s  {$SIZE_MIB / $rclone_down:.1f} MiB/s')"

if [ "$RESTORE_SCALE" = 0 ]; then
    exit 0
fi

# Restore from a remote copy, in a throwaway cluster.
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb)")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
pgport=$(free_port)
as_pg "$bindir/initdb" -D "$work/data" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-k $work -p $pgport -c listen_addresses='' -c fsync=off -c max_wal_size=4GB" start >/dev/null
export PGHOST="$work" PGPORT="$pgport" PGUSER=postgres PGDATABASE=bench
export PATH="$bindir:$PATH"
psql -qX -d postgres -c "create database bench"
pgbench -q -i -s "$RESTORE_SCALE" -I dtGvp bench >/dev/null 2>&1
size=$(psql -XAtc "select pg_size_pretty(pg_database_size('bench'))")

cat >"$work/restore.toml" <<EOF
[[remote]]
name = "bench"
url = "s3://restore/bench"
endpoint = "$endpoint"
EOF
export DBGUARD_CONFIG=$work/restore.toml DBGUARD_BACKUP_DIR=$work/restore-store
"$dbguard" backup --yes --no-prune --format custom >"$work/backup.out"
rid=$(sed -n 's/^Backed up database "[^"]*" as //p' "$work/backup.out")
dump=$(ls "$DBGUARD_BACKUP_DIR/$rid".dump)
dump_mib=$(python3 -c "import os; print(f'{os.path.getsize(\"$dump\") / 2**20:.1f}')")
restore() {
    local t0
    t0=$(now)
    "$dbguard" restore "$rid" --yes --no-safety-backup >"$work/restore.out" 2>&1
    elapsed "$t0"
}
local_s=$(restore)
t0=$(now)
"$dbguard" verify --remote bench "$rid" >/dev/null
verify_s=$(elapsed "$t0")
rm -f "$DBGUARD_BACKUP_DIR/$rid".*
remote_s=$(restore)
grep -q "there is no local copy: restoring $rid from remote bench" "$work/restore.out" || {
    echo "bench-remote: the restore did not come from the remote:" >&2
    cat "$work/restore.out" >&2
    exit 1
}
echo
echo "restore of a pgbench scale-$RESTORE_SCALE database ($size; custom dump $dump_mib MiB):"
echo "  local copy present                          ${local_s} s"
echo "  local copy deleted (download + restore)     ${remote_s} s"
echo "  dbguard verify --remote (download + check)  ${verify_s} s"
