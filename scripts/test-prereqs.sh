#!/usr/bin/env bash
# Installs what the test suite needs and a fresh Debian machine may lack:
# PostgreSQL's server binaries (initdb, pg_ctl, postgres) and client tools
# (psql, pg_dump, pg_restore), Python's venv module for the alembic venv
# and the S3 server (moto) venv of the remote-copy tests, GNU time, fish
# for the completion tests, and pgBackRest for the point-in-time recovery
# tests.
# Each package is installed only when missing; re-running is a no-op.
set -euo pipefail

have_server() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

packages=()
have_server || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
command -v pg_dump >/dev/null 2>&1 || packages+=(postgresql-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
command -v python3 >/dev/null 2>&1 || packages+=(python3 python3-venv)
# GNU time measures the guard's peak memory on a large piped script.
[ -x /usr/bin/time ] || packages+=(time)
# The completion tests load the generated scripts into a real fish.
command -v fish >/dev/null 2>&1 || packages+=(fish)
# The PITR tests archive WAL to a real pgBackRest repository.
command -v pgbackrest >/dev/null 2>&1 || packages+=(pgbackrest)

if ((${#packages[@]} == 0)); then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "test-prereqs: need root (or sudo) to install: ${packages[*]}" >&2
        exit 1
    fi
fi
echo "test-prereqs: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
