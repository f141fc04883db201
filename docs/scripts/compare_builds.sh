#!/usr/bin/env bash
# Compares two builds of dibs with redis-benchmark, alternating round by round so machine noise hits both
# alike, and prints each test's median requests per second and the ratio new/old.
#
# Usage: docs/scripts/compare_builds.sh OLD_BINARY NEW_BINARY [rounds] [pipeline] [fsync] [requests] [tests]
#   e.g. docs/scripts/compare_builds.sh /tmp/dibs-old target/release/dibs 10 16 always 1000000
# Each round starts a fresh server on an empty data directory and runs
#   redis-benchmark -p PORT -t TESTS (default set,incr) -n REQUESTS -c 50 -P PIPELINE -r 1000000 -q --csv
set -euo pipefail
old=$1 new=$2 rounds=${3:-6} pipeline=${4:-16} fsync=${5:-always} requests=${6:-400000} tests=${7:-set,incr}
port=17391
work=$(mktemp -d)
trap 'redis-cli -p $port shutdown >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

run_round() { # binary label
  rm -rf "$work/data"; mkdir -p "$work/data"
  "$1" --port $port --dir "$work/data" --appendfsync "$fsync" 2>"$work/server.log" &
  local pid=$!
  until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done
  redis-benchmark -p $port -t "$tests" -n "$requests" -c 50 -P "$pipeline" -r 1000000 -q --csv \
    | tr -d '"' | awk -F, -v label="$2" 'NR > 1 { print label, $1, $2 }' >>"$work/results"
  redis-cli -p $port shutdown >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
}

for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then run_round "$old" old; run_round "$new" new
  else run_round "$new" new; run_round "$old" old; fi
done

echo "| test | old median rps (range) | new median rps (range) | new/old | rounds |"
echo "|---|---:|---:|---:|---:|"
for test in $(awk '{print $2}' "$work/results" | sort -u); do
  median() { grep "^$1 $test " "$work/results" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
  range() { grep "^$1 $test " "$work/results" | awk '{print $3}' | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.0f-%.0f", lo, hi}'; }
  o=$(median old) n=$(median new)
  awk -v t="$test" -v o="$o" -v n="$n" -v r="$rounds" -v ro="$(range old)" -v rn="$(range new)" \
    'BEGIN { printf "| %s | %.0f (%s) | %.0f (%s) | %.3f | %d |\n", t, o, ro, n, rn, n / o, r }'
done
