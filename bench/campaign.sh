#!/usr/bin/env bash
# Campaign benchmark: a BENCH_RECIPIENTS (100,000) recipient campaign to one sandbox number
# limited to BENCH_LIMIT (1,000) msgs/s, end to end (campaign sender → accept → outbox →
# dispatcher → sandbox), against the ceiling a bare client measures on an identical sandbox
# in the same run. Goal: ≥ 0.9 of the limit, never above it in any 1 s window. Not part of
# CI. See bench/README.md.
#
# Environment: BENCH_RECIPIENTS (default 100000), BENCH_LIMIT (default 1000),
# BENCH_BASELINE_SECS (default 3), BENCH_POSTGRES_URL (an empty database; SQLite when unset),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-server --example bench_campaign
echo "# Campaign benchmark"
echo
echo "${BENCH_RECIPIENTS:-100000} recipients, limit ${BENCH_LIMIT:-1000} msgs/s, $([ -n "${BENCH_POSTGRES_URL:-}" ] && echo PostgreSQL || echo SQLite), $(nproc) CPUs, commit $(git rev-parse --short HEAD)"
echo
"$CARGO_TARGET_DIR/release/examples/bench_campaign"
