#!/usr/bin/env bash
# Reply latency under load with and without a compaction running (docs/performance.md).
# Loads the compaction data set into a fresh dibs, then alternates ROUNDS times: a
# `dibs-bench set` run alone, and the same run with a BGREWRITEAOF started a second in. Prints one CSV line
# per run: mode, requests/s, p50, p99, p99.9, max (ms), the loop's longest iteration (wall and CPU, µs),
# the log's longest fsync (µs), how many compactions finished during the run and how long the last took (ms).
# Usage: docs/scripts/compaction_latency.sh [ROUNDS] [PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} port=${2:-18401}
source docs/scripts/compaction_server.sh
echo "mode,rps,p50_ms,p99_ms,p999_ms,max_ms,loop_max_us,loop_cpu_max_us,fsync_max_us,compactions,last_compaction_ms"
for round in $(seq "$rounds"); do
  for mode in alone compacting; do
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    before=$(info persistence aof_rewrites)
    target/release/dibs-bench set -p "$port" -c 50 -n 300000 -r 8000000 -q --csv >"$work/bench.csv" &
    bench=$!
    if [ $mode = compacting ]; then sleep 1; redis-cli -p "$port" BGREWRITEAOF >/dev/null; fi
    wait $bench
    until [ "$(info persistence aof_rewrite_in_progress)" = 0 ]; do sleep 0.2; done
    after=$(info persistence aof_rewrites)
    tail -1 "$work/bench.csv" | tr -d '"' | awk -F, -v m=$mode -v w="$(info stats loop_iteration_max_microseconds)" \
      -v c="$(info stats loop_iteration_cpu_max_microseconds)" -v n=$((after - before)) \
      -v f="$(info persistence aof_max_sync_microseconds)" -v d="$(info persistence aof_last_rewrite_time_ms)" \
      '{ print m "," $3 "," $4 "," $5 "," $6 "," $7 "," w "," c "," f "," n "," d }'
  done
done
