#!/usr/bin/env bash
# Sandbox benchmark: accepted sends/s of POST /{id}/messages (webhooks off, throughput limit
# raised) against a trivial axum handler returning fixed JSON, same client, same run.
# Not part of CI. See bench/README.md.
#
# Environment: BENCH_SECS (per run, default 5), BENCH_TASKS (concurrent keep-alive tasks,
# default 64), CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-sandbox --example bench_sends
echo "# Sandbox benchmark"
echo
"$CARGO_TARGET_DIR/release/examples/bench_sends" "${BENCH_SECS:-5}" "${BENCH_TASKS:-64}"
