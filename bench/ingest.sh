#!/usr/bin/env bash
# Ingest benchmark (issue #17): signed inbound message webhooks per second into
# POST /webhooks/whatsapp/{channel_id} and p50/p99 latency on SQLite and PostgreSQL, against
# a bare axum endpoint that verifies the same signature and commits one row per request into
# the same kind of database, same client, same run. Not part of CI. See bench/README.md.
#
# Arguments: [sqlite|postgres]... (default both).
# Environment: BENCH_SECS (per round, default 5), BENCH_TASKS (concurrent keep-alive
# clients, default 64), WAYPOST_TEST_POSTGRES_URL (default the local test database),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export WAYPOST_TEST_POSTGRES_URL="${WAYPOST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-server --example bench_ingest
echo "# Ingest benchmark"
echo
echo "load before: $(uptime)"
echo
"$CARGO_TARGET_DIR/release/examples/bench_ingest" "${BENCH_SECS:-5}" "${BENCH_TASKS:-64}" "$@"
echo
echo "load after: $(uptime)"
