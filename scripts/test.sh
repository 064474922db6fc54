#!/usr/bin/env bash
# The project's test command: installs missing prerequisites, then runs
# every test (unit, integration against a throwaway PostgreSQL cluster,
# snapshot and property tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-prereqs.sh
# The first stage of the preload library is a workspace of its own
# (preload/first/Cargo.toml says why): its own unit tests, and a load test
# of the library as it ships. The integration tests build it themselves.
cargo test --locked --manifest-path preload/first/Cargo.toml --target-dir target/first-stage
cargo test --locked "$@"
