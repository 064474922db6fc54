#!/usr/bin/env bash
# The project's test command: installs missing prerequisites, then runs
# every test (unit, integration against a throwaway PostgreSQL cluster,
# snapshot and property tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-prereqs.sh
cargo test --locked "$@"
