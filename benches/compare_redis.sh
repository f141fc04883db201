#!/usr/bin/env bash
# Runs redis-benchmark against dibs and redis-server side by side on this machine and prints a Markdown
# table of medians and ratios. The two servers run one at a time, alternating round by round, so machine
# noise hits both alike; the median of the rounds is reported, with the share of a CPU the load generator
# used (near 100% for redis-benchmark, the generator, not the server, sets the pace).
#
# Usage: benches/compare_redis.sh [--fsync always|no] [--rounds N] [--requests N] [--clients N]
#                                 [--pipeline P] [--tests ping,set,get,incr]
#   --fsync no      dibs --appendfsync no      vs  redis-server --appendonly no  --save ''  (issue: core)
#   --fsync always  dibs --appendfsync always  vs  redis-server --appendonly yes --appendfsync always
# Custom commands: --command 'NAME=dibs command ;; redis command' (repeatable), e.g.
#   --command 'INCR=INCR counter:__rand_int__ ;; INCR counter:__rand_int__'
# --dibs-setup 'COMMAND ...' / --redis-setup 'COMMAND ...' run once after each start (repeatable);
# --redis-script FILE loads a Lua script into redis-server and replaces __SHA__ in the redis commands.
# --dibs-bench 'TEST [options]' (repeatable) runs a dibs-bench test or scenario instead of redis-benchmark,
#   with --target dibs or --target redis for the two servers, e.g. the likes throughput benchmark:
#   --dibs-bench 'like --posts 20000'   (LIKE.ADD on dibs, SADD on Redis, Zipf over 20,000 posts)
set -euo pipefail
cd "$(dirname "$0")/.."

fsync=no rounds=5 requests=200000 clients=50 pipeline=1 tests=ping,set,get,incr
commands=()
dibs_setup=() redis_setup=() redis_script= dibs_bench=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fsync) fsync=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --pipeline) pipeline=$2; shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --command) commands+=("$2"); shift 2 ;;
    --dibs-setup) dibs_setup+=("$2"); shift 2 ;;
    --redis-setup) redis_setup+=("$2"); shift 2 ;;
    --redis-script) redis_script=$2; shift 2 ;;
    --dibs-bench) dibs_bench+=("$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet --bin dibs --bin dibs-bench
work=$(mktemp -d)
trap 'redis-cli -p 17380 shutdown nosave >/dev/null 2>&1 || true; redis-cli -p 17379 shutdown >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

start_dibs() {
  rm -rf "$work/dibs"; mkdir -p "$work/dibs"
  ./target/release/dibs --port 17379 --dir "$work/dibs" --appendfsync "$fsync" 2>"$work/dibs.log" &
  until redis-cli -p 17379 ping >/dev/null 2>&1; do sleep 0.05; done
  for line in "${dibs_setup[@]+"${dibs_setup[@]}"}"; do redis-cli -p 17379 $line >/dev/null; done
}
start_redis() {
  rm -rf "$work/redis"; mkdir -p "$work/redis"
  if [ "$fsync" = always ]; then persistence=(--appendonly yes --appendfsync always); else persistence=(--appendonly no); fi
  redis-server --port 17380 --dir "$work/redis" --save '' "${persistence[@]}" --daemonize yes --logfile "$work/redis.log" >/dev/null
  until redis-cli -p 17380 ping >/dev/null 2>&1; do sleep 0.05; done
  for line in "${redis_setup[@]+"${redis_setup[@]}"}"; do redis-cli -p 17380 $line >/dev/null; done
  if [ -n "$redis_script" ]; then sha=$(redis-cli -p 17380 SCRIPT LOAD "$(cat "$redis_script")"); fi
}
stop_all() {
  redis-cli -p 17379 shutdown >/dev/null 2>&1 || true
  redis-cli -p 17380 shutdown nosave >/dev/null 2>&1 || true
  sleep 0.2
}

# timed OUTPUT COMMAND...: runs the load generator with its output in OUTPUT, and prints the share of one
# CPU it used (user + system over wall time, in percent). Near 100 the generator itself is the bottleneck:
# it is single-threaded, so no server can go faster than it can send.
timed() {
  local output=$1; shift
  local TIMEFORMAT='%U %S %R'
  { time "$@" >"$output" 2>/dev/null; } 2>"$work/time"
  awk '{ printf "%.0f\n", ($1 + $2) / $3 * 100 }' "$work/time"
}

# run PORT NAME [command...]: prints "NAME rps generator-cpu-percent"
run() {
  local port=$1 name=$2 cpu; shift 2
  if [ $# -eq 0 ]; then
    cpu=$(timed "$work/csv" redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipeline" -r 100000 -t "$name" --csv)
    tail -n +2 "$work/csv" | tr -d '"' \
      | awk -F, -v n="$name" -v cpu="$cpu" '{ t = toupper($1); u = toupper(n); if (t == u || index(t, u "_") == 1) print t, $2, cpu }'
  else
    cpu=$(timed "$work/csv" redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipeline" -r 100000000 --csv "$@")
    tail -n +2 "$work/csv" | tr -d '"' | awk -F, -v n="$name" -v cpu="$cpu" '{ print n, $2, cpu }'
  fi
}

: >"$work/results"
for round in $(seq "$rounds"); do
  for server in dibs redis; do
    stop_all
    if [ $server = dibs ]; then start_dibs; port=17379; else start_redis; port=17380; fi
    for test in ${tests//,/ }; do
      run "$port" "$test" | sed "s/^/$server /" >>"$work/results"
    done
    for spec in "${commands[@]+"${commands[@]}"}"; do
      name=${spec%%=*}; rest=${spec#*=}
      dibs_command=${rest%% ;; *}; redis_command=${rest#* ;; }
      redis_command=${redis_command//__SHA__/${sha:-}}
      if [ $server = dibs ]; then run "$port" "$name" $dibs_command; else run "$port" "$name" $redis_command; fi \
        | sed "s/^/$server /" >>"$work/results"
    done
    for spec in "${dibs_bench[@]+"${dibs_bench[@]}"}"; do
      # shellcheck disable=SC2086 # the spec is a test name plus options, split on purpose
      cpu=$(timed "$work/csv" ./target/release/dibs-bench $spec --target $server -p "$port" -c "$clients" \
        -n "$requests" -P "$pipeline" -q --csv)
      tail -n +2 "$work/csv" | tr -d '"' | awk -F, -v s=$server -v cpu="$cpu" '{ print s, toupper($1), $3, cpu }' \
        >>"$work/results"
    done
  done
done
stop_all

echo "| test | dibs rps (median of $rounds) | redis rps (median of $rounds) | dibs / redis | load generator CPU, dibs / redis runs |"
echo "|---|---:|---:|---:|---:|"
python3 - "$work/results" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
cpu = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    server, test, rps, generator = line.split()
    if test not in order: order.append(test)
    runs[(server, test)].append(float(rps))
    cpu[(server, test)].append(float(generator))
for test in order:
    d = statistics.median(runs[("dibs", test)]); r = statistics.median(runs[("redis", test)])
    dc = statistics.median(cpu[("dibs", test)]); rc = statistics.median(cpu[("redis", test)])
    print(f"| {test} | {d:,.0f} | {r:,.0f} | {d / r:.2f}x | {dc:.0f}% / {rc:.0f}% |")
PY
