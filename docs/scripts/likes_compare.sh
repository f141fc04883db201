#!/usr/bin/env bash
# The likes benchmark side by side (docs/performance.md): 2 million likes (Zipf over
# 20,000 posts, integer ids up to 50 million) loaded by examples/likes_load as LIKE.ADD into a fresh dibs
# and as SADD into a fresh redis-server, both syncing every write, alternating ROUNDS times. Each line
# gives the load time and the resident memory growth per like.
# Usage: docs/scripts/likes_compare.sh [ROUNDS] [PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} port=${2:-18441}
cargo build --release --quiet --bin dibs --example likes_load
for round in $(seq "$rounds"); do
  for target in dibs redis; do
    work=$(mktemp -d)
    if [ "$target" = dibs ]; then
      target/release/dibs --port "$port" --dir "$work" 2>"$work/log" &
      command=LIKE.ADD
    else
      redis-server --port "$port" --dir "$work" --appendonly yes --appendfsync always --save '' >"$work/log" 2>&1 &
      command=SADD
    fi
    pid=$!
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
    result=$(target/release/examples/likes_load "$port" "$command" 2000000 20000 2>&1 | tail -1)
    echo "$target round $round: $result"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work"
  done
done
