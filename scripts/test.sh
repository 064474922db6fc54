#!/usr/bin/env bash
# The project's test command: installs missing prerequisites, then runs
# every test (unit, integration against a throwaway PostgreSQL cluster,
# snapshot and property tests).
#
# Then, for a whole run (no arguments), the live-check tests once more
# against the first stage built as it ships: release (optimised code has
# shown bugs a debug build hides). Only the first stage is built in
# release (libc only: seconds); the check library beside it is the debug
# build the first pass made.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-prereqs.sh
cargo test --locked "$@"
[[ $# -eq 0 ]] || exit 0

target=${CARGO_TARGET_DIR:-target}
cargo build --locked --release -p dbguard-preload
cargo build --locked -p dbguard-check
shipped=$(mktemp -d)
trap 'rm -rf -- "$shipped"' EXIT
cp -- "$target/release/libdbguard_preload.so" "$shipped/"
ln -s -- "$(cd "$target/debug" && pwd)/libdbguard_check.so" "$shipped/"
DBGUARD_TEST_PRELOAD="$shipped/libdbguard_preload.so" cargo test --locked --test it differential
