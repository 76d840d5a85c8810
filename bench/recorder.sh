#!/usr/bin/env bash
# bench/recorder.sh [BIN]: recording throughput of the recorder into SQLite
# and into PostgreSQL, the way `cutover serve` records (one ring per worker,
# the default queue 65536 / batch 512 / flush 200ms, ~1.5 KB of text per
# exchange, API-key masking on). Driver: co_bench_recorder next to BIN
# (bench/recorder_bench.c). PostgreSQL is a throwaway cluster (initdb in a
# temp dir, its own loopback port, deleted at the end); without PostgreSQL
# the row says so.
#
# Per backend and rate: RECORDS exchanges pushed by WORKERS threads, paced at
# the rate (records/s in all) or as fast as push returns ("max"), then the
# recorder is flushed. Columns: offered/s achieved, written/s (recorded /
# time until the flush returned), queue high-water mark (held by the rings
# and the writer), and drops by cause. The target of issue 6 is 0 drops at
# the rate the gateway itself serves (bench/gateway.sh: `cutover
# incumbent` req/s is one record per request, `cutover shadow` two).
# Figures, never assertions.
#
# Knobs (environment): RECORDS (50000), RATES ("5000,10000,max"), WORKERS (4),
# TEXT (1024: request bytes; the output is half), BACKENDS ("sqlite postgres").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../build/cutover}
DRIVER=${RECORDER_BENCH:-$(dirname "$BIN")/co_bench_recorder}
RECORDS=${RECORDS:-50000}
RATES=${RATES:-5000,10000,max}
WORKERS=${WORKERS:-4}
TEXT=${TEXT:-1024}
BACKENDS=${BACKENDS:-"sqlite postgres"}

say() { echo "bench/recorder.sh: $*"; }
[ -x "$DRIVER" ] || { say "no driver at $DRIVER (build first: it is built next to cutover)"; exit 1; }

echo "== recorder: exchanges written into the store, $RECORDS per run, $WORKERS producer threads"
echo "   $(nproc) core(s); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   text: $TEXT bytes of request, $((TEXT / 2)) of output per exchange; queue 65536, batch 512"
echo
printf '%-9s %8s %11s %11s %11s %12s %13s\n' backend rate offered/s written/s high-water "drops:full" "drops:failed"
total_drops=0
for backend in $BACKENDS; do
  out=$("$DRIVER" --backend "$backend" --records "$RECORDS" --rates "$RATES" \
          --workers "$WORKERS" --text "$TEXT") || { say "$backend run failed"; exit 1; }
  while IFS= read -r line; do
    case $line in
      *skipped=*) printf '%-9s skipped: %s\n' "$backend" "${line#*skipped=}"; continue ;;
    esac
    declare -A kv=()
    for pair in $line; do kv[${pair%%=*}]=${pair#*=}; done
    printf '%-9s %8s %11s %11s %11s %12s %13s\n' "${kv[backend]}" "${kv[rate]}" \
      "${kv[offered_per_s]}" "${kv[written_per_s]}" "${kv[high_water]}" \
      "${kv[dropped_queue_full]}" "${kv[dropped_write_failed]}"
    if [ "${kv[rate]}" != max ]; then
      total_drops=$((total_drops + kv[dropped_queue_full] + kv[dropped_write_failed]))
    fi
    unset kv
  done <<< "$out"
done
echo
echo "target (issue 6; a figure, not an assertion): 0 drops at paced rates -> $total_drops dropped"
echo "   (\"max\" pushes faster than any store writes: its drops show where the queue's bound bites)"
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
