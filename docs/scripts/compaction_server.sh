# Sourced by the compaction benchmarks (compaction_latency.sh, coupon_wait.sh): builds dibs, starts it on
# $port in a fresh directory ($work, removed on exit) with automatic compaction off, loads the compaction
# data set (8 M SETs over an 8 M key range, then docs/scripts/compaction_data.py) and compacts once, so
# that every round starts from a compacted state as a running server would. Defines info SECTION FIELD.
cargo build --release --quiet --bin dibs --bin dibs-bench
work=$(mktemp -d)
target/release/dibs --port "$port" --dir "$work" --auto-aof-rewrite-percentage 0 2>"$work/dibs.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
redis-benchmark -p "$port" -t set -r 8000000 -n 8000000 -P 64 -q >/dev/null
docs/scripts/compaction_data.py dibs | redis-cli -p "$port" --pipe >/dev/null
info() { redis-cli -p "$port" info "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }
redis-cli -p "$port" BGREWRITEAOF >/dev/null
until [ "$(info persistence aof_rewrite_in_progress)" = 0 ]; do sleep 0.2; done
