#!/usr/bin/env bash
# Copy throughput to an S3-compatible server on loopback: `dbguard sync` of
# one backup against `rclone copy` of the same file to the same server.
#
#   scripts/bench-remote.sh [SIZE_MIB]        (default 512)
#
# Needs: a built target/release/dbguard (or DBGUARD=path), rclone (Debian's
# package), and the moto venv the tests create (target/tmp/s3-venv; run
# `cargo test --test it remote` once). Prints seconds and MiB/s for each.
set -euo pipefail

size_mib=${1:-512}
root=$(cd "$(dirname "$0")/.." && pwd)
dbguard=${DBGUARD:-$root/target/release/dbguard}
venv=$root/target/tmp/s3-venv
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
endpoint=http://127.0.0.1:$port
"$venv/bin/python" -c "import boto3; c = boto3.client('s3', endpoint_url='$endpoint'); [c.create_bucket(Bucket=b) for b in ('dbguard', 'rclone')]"

# One backup in a store, as `dbguard backup` would leave it.
store=$work/store
mkdir -m 700 "$store"
id=backup_bench_20260101_000000
head -c "$((size_mib << 20))" /dev/urandom >"$store/$id.dump"
sha=$(sha256sum "$store/$id.dump" | cut -d' ' -f1)
cat >"$store/$id.json" <<EOF
{"id": "$id", "file": "$id.dump", "created_at": "2026-01-01T00:00:00+00:00",
 "sha256": "$sha", "size_bytes": $((size_mib << 20)), "format": "custom",
 "database": "bench", "host": "localhost", "port": 5432, "user": "bench",
 "server_version": "16", "pg_dump_version": "pg_dump 16", "tables": [],
 "alembic_revision": null, "scope": "database", "reason": "bench",
 "tool_version": "0"}
EOF
cat >"$work/dbguard.toml" <<EOF
[[remote]]
name = "bench"
url = "s3://dbguard/bench"
endpoint = "$endpoint"
EOF

mibs() { python3 -c "print(f'{$size_mib / $1:.1f}')"; }
start=$(date +%s.%N)
DBGUARD_CONFIG=$work/dbguard.toml DBGUARD_BACKUP_DIR=$store "$dbguard" sync >/dev/null
dbguard_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")

start=$(date +%s.%N)
RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$endpoint \
RCLONE_CONFIG_B_ACCESS_KEY_ID=bench RCLONE_CONFIG_B_SECRET_ACCESS_KEY=bench \
    rclone copy --s3-chunk-size 16M "$store/$id.dump" b:rclone/bench
rclone_s=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")

echo "file            ${size_mib} MiB"
echo "dbguard sync    ${dbguard_s} s  $(mibs "$dbguard_s") MiB/s (upload, checksum object, confirmation, sidecar)"
echo "rclone copy     ${rclone_s} s  $(mibs "$rclone_s") MiB/s"
python3 -c "print(f'ratio           {$rclone_s / $dbguard_s:.2f}x of rclone (target >= 0.9)')"
