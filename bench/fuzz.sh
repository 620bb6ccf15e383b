#!/usr/bin/env bash
# Fuzzing (issue #25): runs every fuzz target for a set time each, in a release
# build, with many cases per round and a fresh random seed every round. The
# targets are property tests, so CI runs each briefly in the ordinary suite; a
# failing input proptest finds is saved under the crate's proptest-regressions/
# (commit it: it is replayed first on every later run).
#
# Arguments: [seconds per target] (default 60).
# Environment: WAYPOST_FUZZ_CASES (cases per round, default 2000),
# WAYPOST_TEST_POSTGRES_URL (for the request-body target on PostgreSQL; without
# a reachable server that half is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
export WAYPOST_FUZZ_CASES="${WAYPOST_FUZZ_CASES:-2000}"

# crate, test binary, name filter
targets=(
  "waypost-cloudapi fuzz fuzz_webhook_arbitrary_bytes"
  "waypost-cloudapi fuzz fuzz_webhook_mutated_json"
  "waypost-cloudapi fuzz fuzz_webhook_mutated_bytes"
  "waypost-cloudapi fuzz fuzz_signature"
  "waypost-core fuzz fuzz_phone_parse"
  "waypost-core fuzz fuzz_template_components"
  "waypost-core fuzz fuzz_template_names_and_texts"
  "waypost-shield proptest_urls extraction_and_scan_never_panic"
  "waypost-shield proptest_urls url_like_strings_never_panic"
  "waypost-server api fuzz_backup_arbitrary_bytes"
  "waypost-server api fuzz_backup_mutated_lines"
  "waypost-server api fuzz_backup_value_conversion"
  "waypost-server api arbitrary_request_bodies_never_cause_a_server_error"
)

echo "==> building the fuzz targets (release)" >&2
for crate in waypost-cloudapi waypost-core waypost-shield; do
  cargo test --release --locked -q -p "$crate" --no-run 2>/dev/null
done
cargo test --release --locked -q -p waypost-server --test api --no-run 2>/dev/null

echo "# Fuzzing, ${secs}s per target, ${WAYPOST_FUZZ_CASES} cases a round"
failed=0
for t in "${targets[@]}"; do
  read -r crate bin filter <<<"$t"
  end=$(( $(date +%s) + secs ))
  rounds=0
  status=ok
  while [ "$(date +%s)" -lt "$end" ]; do
    if ! cargo test --release --locked -q -p "$crate" --test "$bin" -- "$filter" >"/tmp/fuzz-$filter.log" 2>&1; then
      status="FAILED (see /tmp/fuzz-$filter.log)"
      failed=1
      break
    fi
    rounds=$((rounds + 1))
  done
  printf '%-60s %4d rounds  %s\n' "$crate/$filter" "$rounds" "$status"
done
exit "$failed"
