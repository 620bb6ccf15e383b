#!/usr/bin/env bash
# Webhook delivery benchmark: signed deliveries/s from the real deliverer to a local receiver,
# next to the receiver's own rate for a plain client with the same concurrency (the baseline),
# measured in the same run. Not part of CI. See bench/README.md.
#
# Environment: BENCH_EVENTS (default 20000), BENCH_SECS (baseline seconds, default 5),
# BENCH_POSTGRES_URL (an empty PostgreSQL database; default: SQLite in a temporary directory),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-server --example bench_webhook_deliveries
args=(--events "${BENCH_EVENTS:-20000}" --secs "${BENCH_SECS:-5}")
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then args+=(--postgres "$BENCH_POSTGRES_URL"); fi
echo "# Webhook delivery benchmark"
echo
"$CARGO_TARGET_DIR/release/examples/bench_webhook_deliveries" "${args[@]}"
