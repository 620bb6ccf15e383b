#!/usr/bin/env bash
# Shield benchmark: engine throughput per core and model load time (bench_classify), then
# p50/p99 latency of POST /v1/shield/scan against the real release binary (bench_scan_latency),
# each against a baseline measured in the same run. Not part of CI. See bench/README.md.
#
# Environment: WAYPOST_BENCH_DATA (default /work/shared/data; the built-in samples are used
# when its TSV files are missing), BENCH_SECS (engine time budget per data set, default 5),
# BENCH_REQUESTS (scan requests, default 5000), CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${WAYPOST_BENCH_DATA:-/work/shared/data}"
SECS="${BENCH_SECS:-5}"
REQUESTS="${BENCH_REQUESTS:-5000}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$TARGET"

data_args=()
for f in "$DATA/sms-spam-collection/sms_spam_collection.tsv" "$DATA/smishing-labels/smishing_labels.tsv"; do
    if [[ -f "$f" ]]; then data_args+=(--data "$f"); else echo "note: $f not found, skipped" >&2; fi
done

echo "==> building (release)" >&2
# One invocation, so the three targets share one feature resolution (no rebuilt dependencies).
cargo build --release --locked -q -p waypost -p waypost-shield -p waypost-server \
    --bin waypost --example bench_classify --example bench_scan_latency
BIN="$TARGET/release/waypost"

echo "# Shield benchmark"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
     "rustc $(rustc --version | cut -d' ' -f2), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
# Exit status 2 means below the throughput goal: report it, still measure latency.
classify_status=0
"$TARGET/release/examples/bench_classify" --secs "$SECS" "${data_args[@]}" || classify_status=$?

echo
echo "## Scan endpoint latency (release binary, SQLite, usage records written)"
echo
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export WAYPOST_DATA_DIR="$WORK/data" WAYPOST_LISTEN="127.0.0.1:$PORT" WAYPOST_LOG_LEVEL=warn
# The benchmark client is one caller sending as fast as it can: lift the per-minute limits.
export WAYPOST_RATE_LIMIT_API_KEY_PER_MINUTE=1000000000 WAYPOST_RATE_LIMIT_IP_PER_MINUTE=1000000000
"$BIN" migrate >/dev/null
head -c 24 /dev/urandom | base64 | "$BIN" admin bootstrap --email bench@example.com --workspace Bench >/dev/null
KEY="$("$BIN" admin api-key create --workspace Bench --scopes shield:scan --name bench 2>/dev/null | tail -1)"
"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
"$TARGET/release/examples/bench_scan_latency" --base "http://127.0.0.1:$PORT" --key "$KEY" \
    --requests "$REQUESTS" "${data_args[@]}"
echo
echo "Command: bench/shield.sh (BENCH_SECS=$SECS BENCH_REQUESTS=$REQUESTS)"
exit "$classify_status"
