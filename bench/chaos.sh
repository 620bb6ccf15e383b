#!/usr/bin/env bash
# Chaos (issue #25): 20 kill -9 of the real server at random moments under a
# continuous send load with idempotent retries, on SQLite and PostgreSQL; then
# every acknowledged message reached the sandbox provider exactly once and none
# is stuck. Also three nodes on one PostgreSQL database, the lease holder killed
# and restarted under load: the same checks, and the number's limit held in every
# 1 s window at the provider. Prints one summary line per scenario. CI runs the
# same tests (3 kills per backend); this is the long run, outside CI.
#
# Arguments: [kills] (default 20).
# Environment: WAYPOST_TEST_POSTGRES_URL (default the local test server).
set -euo pipefail
cd "$(dirname "$0")/.."
export WAYPOST_CHAOS_KILLS="${1:-20}"
export WAYPOST_TEST_POSTGRES_URL="${WAYPOST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CI=true  # a missing PostgreSQL fails instead of skipping
cargo test --release --locked -q -p waypost --test crash -- chaos --nocapture --test-threads 1 2>&1 \
  | grep -aEo 'chaos [A-Z].*in all|panicked.*|test result.*|FAILED.*'
