#!/usr/bin/env bash
# Import benchmark (issue #19): `waypost contacts import` of a generated CSV file of
# BENCH_ROWS rows (default 100,000) into a fresh SQLite database (and PostgreSQL with
# `postgres` as an argument), release build, timed end to end: the first import creates
# every contact, the second (same file, another key) updates every one. Half the rows carry
# marketing consent with its evidence; every row has a name, language, time zone and two tags.
# Not part of CI. See bench/README.md.
#
# Arguments: [sqlite|postgres]... (default sqlite).
# Environment: BENCH_ROWS, WAYPOST_TEST_POSTGRES_URL (a server where a database may be
# created; default the local test server), CARGO_TARGET_DIR (default ./target),
# BENCH_NO_BUILD=1 (use the release binary already in the target directory).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PG="${WAYPOST_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ROWS="${BENCH_ROWS:-100000}"
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(sqlite)

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  echo "==> building (release)" >&2
  cargo build --release --locked -q -p waypost
fi
bin="$CARGO_TARGET_DIR/release/waypost"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

awk -v n="$ROWS" 'BEGIN {
  print "phone,name,language,time_zone,tags,consent_marketing,consent_source,consent_captured_at,consent_text";
  for (i = 0; i < n; i++) {
    consent = (i % 2 == 0) ? "yes,checkout,2026-11-01T10:00:00Z,\"Yes, send me offers on WhatsApp\"" : ",,,";
    printf "+491512%07d,Person %d,de,Europe/Berlin,bench;wave-%d,%s\n", i, i, i % 10, consent;
  }
}' > "$work/contacts.csv"

echo "# Import benchmark"
echo
echo "rows: $ROWS ($(du -h "$work/contacts.csv" | cut -f1)), cores: $(nproc), load before: $(uptime | sed 's/.*load average: //')"
echo
echo "| backend | run | seconds | rows/s | result |"
echo "|---|---|---|---|---|"
for backend in "${backends[@]}"; do
  dir="$work/$backend"
  mkdir -p "$dir"
  case "$backend" in
    sqlite) url="sqlite://$dir/waypost.db" ;;
    postgres)
      db="waypost_bench_import_$$"
      psql "$PG" -qc "CREATE DATABASE $db" >/dev/null
      url="${PG%/*}/$db"
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  export WAYPOST_DATABASE_URL="$url"
  "$bin" --data-dir "$dir" migrate >/dev/null 2>&1
  "$bin" --data-dir "$dir" admin bootstrap --email bench@example.com --workspace bench </dev/null >/dev/null 2>&1
  for run in create update; do
    start=$(date +%s.%N)
    out=$("$bin" --data-dir "$dir" contacts import "$work/contacts.csv" --workspace bench --key "bench-$run" 2>/dev/null)
    out="${out%%$'\n'*}"
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    rate=$(echo "$ROWS / $secs" | bc -l)
    printf "| %s | %s | %.1f | %.0f | %s |\n" "$backend" "$run" "$secs" "$rate" "$(echo "$out" | sed 's/^import [^ ]* //')"
  done
  if [ "$backend" = postgres ]; then
    psql "$PG" -qc "DROP DATABASE $db" >/dev/null
  fi
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
