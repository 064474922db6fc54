#!/bin/sh
# Start-up cost in instructions, which (unlike wall time) do not depend on
# what else the machine is doing: `psql -X -c 'select 1'` under
# `valgrind --tool=callgrind`, following the exec, started
#   - by a minimal C program that only execs the real psql (the floor),
#   - by the dbguard shim (which preloads the first stage of the library),
#   - by the C program with the first stage preloaded (the library's share).
# Prints each total (the starter before its exec plus psql) and its ratio
# to the floor. Wall time on a quiet
# machine is bench/startup.sh's job.
#
#   BIN=target/release bench/startup-instructions.sh
#
# BIN holds dbguard, libdbguard_preload.so and libdbguard_check.so (as
# for bench/startup.sh); without it the release build is made first.
# Needs: valgrind, initdb/pg_ctl, psql, cc.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb)")
psql=$bindir/psql
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install -y valgrind)" >&2; exit 1; }
work=$(mktemp -d /tmp/dbguard-instructions.XXXXXX)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

bin=${BIN:-}
if [ -z "$bin" ]; then
    echo "building dbguard and the preload libraries (release)" >&2
    (cd "$here" && cargo build --release --locked -p dbguard -p dbguard-check >&2 &&
        cargo build --release --locked --manifest-path preload/first/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-target}" >&2)
    bin=${CARGO_TARGET_DIR:-$here/target}/release
fi
bin=$(cd "$bin" && pwd)

mkdir "$work/floor" "$work/shims"
cat > "$work/floor.c" <<EOC
#include <unistd.h>
int main(int argc, char **argv) { (void)argc; execv("$psql", argv); return 127; }
EOC
cc -O2 -o "$work/floor/psql" "$work/floor.c"
ln -s "$bin/dbguard" "$work/shims/psql"
touch "$work/shims/.dbguard-shims"

as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres >/dev/null
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
    -o "-k $work -c listen_addresses= -c fsync=off" start >/dev/null
export PGHOST="$work" PGUSER=postgres PGDATABASE=postgres
export DBGUARD_BACKUP_DIR="$work/backups" DBGUARD_PRELOAD="$bin/libdbguard_preload.so"
export DBGUARD_REAL_PSQL="$psql"

# The shim and the floor replace psql's path: run them in its place.
side() { # name, program, env...
    name=$1 program=$2
    shift 2
    rm -f "$work"/cg.*
    env "$@" valgrind --tool=callgrind --trace-children=yes --dump-before=execve \
        --callgrind-out-file="$work/cg.%p.%n" "$program" -X -q -c 'select 1' >/dev/null 2>"$work/err" ||
        { cat "$work/err" >&2; exit 1; }
    total=$(cat "$work"/cg.* | sed -n 's/^summary: //p' | awk '{ s += $1 } END { print s }')
    echo "$name $total"
}
{
    side "C exec shim" "$work/floor/psql"
    side "dbguard shim + library" "$work/shims/psql"
    side "C exec shim + library" "$work/floor/psql" LD_PRELOAD="$bin/libdbguard_preload.so"
} | awk '
    { n = $NF; $NF = ""; name[NR] = $0; total[NR] = n }
    END { for (i = 1; i <= NR; i++)
        printf "%-26s %12d instructions  ratio %.3f\n", name[i], total[i], total[i] / total[1] }'
