#!/usr/bin/env bash
# Restart time on the compaction data set (docs/performance.md): the same data
# (docs/scripts/compaction_data.py after 8 M random SETs, about 5.09 M keys) plus a tail of 200,000 SETs,
# held three ways: dibs from a snapshot plus the tail's log, dibs from the full log alone (no compaction
# ever ran), and redis-server from an RDB. Then ROUNDS alternating restarts of each, timed from start until
# PING answers, and the medians. Usage: docs/scripts/restart_compare.sh [ROUNDS] [PORT_DIBS] [PORT_REDIS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5} port_dibs=${2:-18101} port_redis=${3:-18102}
cargo build --release --quiet --bin dibs
snapshot_dir=$(mktemp -d) full_dir=$(mktemp -d) redis_dir=$(mktemp -d) results=$(mktemp)
trap 'rm -rf "$snapshot_dir" "$full_dir" "$redis_dir" "$results"' EXIT
info() { redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }
start_dibs() {
  target/release/dibs --port "$port_dibs" --dir "$1" --auto-aof-rewrite-percentage 0 >/dev/null 2>&1 &
  pid=$!
  until redis-cli -p "$port_dibs" ping >/dev/null 2>&1; do sleep 0.01; done
}
stop() { kill "$pid"; wait "$pid" || true; }
tail_sets() { redis-benchmark -p "$1" -t set -r 8000000 -n 200000 -P 64 -q >/dev/null; }

start_dibs "$snapshot_dir"
redis-benchmark -p "$port_dibs" -t set -r 8000000 -n 8000000 -P 64 -q >/dev/null
docs/scripts/compaction_data.py dibs | redis-cli -p "$port_dibs" --pipe >/dev/null
stop
cp -r "$snapshot_dir/." "$full_dir/"
start_dibs "$snapshot_dir"
redis-cli -p "$port_dibs" BGREWRITEAOF >/dev/null
until [ "$(info "$port_dibs" aof_rewrite_in_progress)" = 0 ]; do sleep 0.2; done
tail_sets "$port_dibs"
echo "dibs, snapshot + tail: $(redis-cli -p "$port_dibs" dbsize) keys, snapshot $(info "$port_dibs" aof_base_size) bytes, log since $(info "$port_dibs" aof_log_size_since_base) bytes"
stop
start_dibs "$full_dir"
tail_sets "$port_dibs"
echo "dibs, full log: $(redis-cli -p "$port_dibs" dbsize) keys, log $(info "$port_dibs" aof_current_size) bytes"
stop
redis-server --port "$port_redis" --dir "$redis_dir" --appendonly no --save '' >/dev/null 2>&1 &
pid=$!
until redis-cli -p "$port_redis" ping >/dev/null 2>&1; do sleep 0.1; done
redis-benchmark -p "$port_redis" -t set -r 8000000 -n 8000000 -P 64 -q >/dev/null
docs/scripts/compaction_data.py redis | redis-cli -p "$port_redis" --pipe >/dev/null
tail_sets "$port_redis"
redis-cli -p "$port_redis" SAVE >/dev/null
echo "redis: $(redis-cli -p "$port_redis" dbsize) keys, RDB $(stat -c %s "$redis_dir/dump.rdb") bytes"
stop
sync

ready_seconds() {
  local port=$1 start=$2
  until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ]; do sleep 0.01; done
  echo "scale=3; ($(date +%s%N) - $start) / 1000000000" | bc
}
for round in $(seq "$rounds"); do
  for kind in snapshot full redis; do
    start=$(date +%s%N)
    case $kind in
      snapshot) target/release/dibs --port "$port_dibs" --dir "$snapshot_dir" >/dev/null 2>&1 & port=$port_dibs ;;
      full) target/release/dibs --port "$port_dibs" --dir "$full_dir" --auto-aof-rewrite-percentage 0 >/dev/null 2>&1 & port=$port_dibs ;;
      redis) redis-server --port "$port_redis" --appendonly no --save '' --dir "$redis_dir" >/dev/null 2>&1 & port=$port_redis ;;
    esac
    pid=$!
    seconds=$(ready_seconds "$port" "$start")
    echo "round $round: $kind $seconds s, $(redis-cli -p "$port" DBSIZE) keys" | tee -a "$results"
    stop
  done
done
for kind in snapshot full redis; do
  echo "$kind median $(awk -v k="$kind" '$3 == k { print $4 }' "$results" | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') s"
done
