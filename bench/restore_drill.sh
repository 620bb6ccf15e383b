#!/usr/bin/env bash
# Restore drill at scale: backup and restore times for BENCH_MESSAGES messages
# (default 1,000,000) on SQLite and PostgreSQL, both directions, against the
# RPO 1 h / RTO 4 h promise. Not part of CI. See bench/README.md.
#
# Environment: BENCH_MESSAGES, BENCH_FROM (sqlite|postgres: only that source), WAYPOST_TEST_POSTGRES_URL (default the local test
# database), CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export WAYPOST_TEST_POSTGRES_URL="${WAYPOST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-server --example bench_restore_drill
echo "# Restore drill"
echo
"$CARGO_TARGET_DIR/release/examples/bench_restore_drill" "${BENCH_MESSAGES:-1000000}" "$@"
