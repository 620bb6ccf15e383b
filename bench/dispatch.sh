#!/usr/bin/env bash
# Dispatch benchmark: end-to-end messages/s from Waypost's outbox to the sandbox with each
# number limited to BENCH_LIMIT msgs/s, on one number and on ten, against the ceiling a bare
# client measures on an identical sandbox in the same run. Not part of CI. See bench/README.md.
#
# Environment: BENCH_LIMIT (per number, default 1000), BENCH_MESSAGES (queued per number,
# default 5000), BENCH_NUMBERS (scenarios, default "1,10"), BENCH_BASELINE_SECS (default 3),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> building (release)" >&2
cargo build --release --locked -q -p waypost-server --example bench_dispatch
echo "# Dispatch benchmark"
echo
echo "limit ${BENCH_LIMIT:-1000} msgs/s per number, ${BENCH_MESSAGES:-5000} messages per number, SQLite, $(nproc) CPUs"
echo
"$CARGO_TARGET_DIR/release/examples/bench_dispatch"
