#!/usr/bin/env bash
# How long a write to a large collection waits while a compaction holds it (docs/performance.md).
# Loads the compaction data set into a fresh dibs (its coupon:big has 260,000 holders), then
# ROUNDS times: 10 clients issue coupon:big to random users (redis-benchmark, 60,000 requests) and a
# BGREWRITEAOF starts half a second in. Prints one CSV line per round: the coupon's holders at the end, the
# commands that waited for the collection serializer and the longest wait (µs), the loop's longest
# iteration (wall and CPU, µs), and the clients' p99 and longest reply (ms).
# Usage: docs/scripts/coupon_wait.sh [ROUNDS] [PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} port=${2:-18402}
source docs/scripts/compaction_server.sh
echo "round,holders,waits,wait_max_us,loop_max_us,loop_cpu_max_us,p99_ms,max_ms"
for round in $(seq "$rounds"); do
  redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
  waits_before=$(info persistence aof_rewrite_writes_waited)
  # Options go before the command: after it, redis-benchmark passes them to the server as arguments.
  redis-benchmark -p "$port" -n 60000 -c 10 -r 100000000 --csv COUPON.ISSUE coupon:big u:__rand_int__ \
    >"$work/bench.csv" &
  bench=$!
  sleep 0.5
  redis-cli -p "$port" BGREWRITEAOF >/dev/null
  wait $bench
  until [ "$(info persistence aof_rewrite_in_progress)" = 0 ]; do sleep 0.2; done
  holders=$(redis-cli -p "$port" COUPON.INFO coupon:big | awk 'prev == "issued" { print; exit } { prev = $0 }')
  tail -1 "$work/bench.csv" | tr -d '"' | awk -F, -v r="$round" -v h="$holders" \
    -v n=$(($(info persistence aof_rewrite_writes_waited) - waits_before)) \
    -v w="$(info persistence aof_rewrite_write_wait_max_microseconds)" \
    -v l="$(info stats loop_iteration_max_microseconds)" -v c="$(info stats loop_iteration_cpu_max_microseconds)" \
    '{ print r "," h "," n "," w "," l "," c "," $7 "," $8 }'
done
