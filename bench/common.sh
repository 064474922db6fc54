# Sourced by the start-up and throughput benchmarks: the newest PostgreSQL
# binaries, a private work directory removed on exit, and a throwaway
# cluster on a Unix socket in it (as `postgres` when run as root).
#
#   . "$(dirname "$0")/common.sh"
#   bench_workdir startup        # sets $here, $bindir, $psql, $work
#   bench_cluster [SETTING...]   # starts it; exports PGHOST, PGUSER, PGDATABASE
#   bench_build_release [-p dbguard]...   # cargo builds: the check, the first stage

here=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb)")
psql=$bindir/psql

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

bench_workdir() {
    work=$(mktemp -d "/tmp/dbguard-$1.XXXXXX")
    chmod 755 "$work"
    if [ "$(id -u)" = 0 ]; then chown postgres "$work"; fi
    trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}

# Extra server settings as `-c name=value` words, e.g. bench_cluster -c fsync=off.
bench_cluster() {
    as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
    as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
        -o "-k $work -c listen_addresses= $*" start >/dev/null
    export PGHOST="$work" PGUSER=postgres PGDATABASE=postgres
}

# The release build of the check library and the first stage (a workspace
# of its own), plus any `-p PACKAGE` given; prints nothing on stdout.
bench_build_release() {
    (cd "$here" && cargo build --release --locked -p dbguard-check "$@" >&2 &&
        cargo build --release --locked --manifest-path preload/first/Cargo.toml \
            --target-dir "${CARGO_TARGET_DIR:-target}" >&2)
}
