#!/usr/bin/env bash
# Grows one big collection in dibs and in redis-server 7, side by side in one run, and reports per size
# the PING latency a second client saw meanwhile, dibs's longest loop iteration in CPU, and each server's
# resident memory growth (docs/performance.md, "Growing one collection to millions").
#
# Usage: docs/scripts/grow_collections.sh [SIZES] [CASES] [DIBS_BINARY]
#   SIZES  comma-separated member counts, grown to in order     (default 1000000,5000000,10000000)
#   CASES  comma-separated, any of strings,ints,coupon,likes    (default all four)
#   DIBS_BINARY                                                  (default target/release/dibs)
#   e.g. docs/scripts/grow_collections.sh 1000000,5000000 strings,coupon
#
# Each case starts each server fresh in its own temporary directory, syncing every write (dibs
# `--appendfsync always`, its default; Redis `appendonly yes`, `appendfsync always`, no RDB saves), one
# server at a time, and grows one key from empty to each size in turn:
#   strings  SADD big m:<12 digits>                          redis-benchmark, both servers
#   ints     SADD big 1<12 digits> (canonical integers)      redis-benchmark, both servers
#   coupon   dibs: COUPON.CREATE big 10000000, then COUPON.ISSUE big u:<12 digits>;
#            Redis: the tools/lua/coupon_issue.lua recipe by EVALSHA (a set plus a hash plus two strings)
#   likes    one post's likes, user ids integers 1..50,000,000: dibs LIKE.ADD, Redis SADD
#            (dibs-bench `like --posts 1`: redis-benchmark's __rand_int__ is always 12 zero-padded
#            digits, which LIKE.ADD rightly stores as text, not as the integer ids likes are made for)
# all with 50 clients pipelining 16 (-c 50 -P 16) and random members (-r 2000000000: redis-benchmark reads
# -r as a C int), topped up until the key holds
# at least the size (random draws repeat now and then). Meanwhile docs/scripts/ping_prober.py sends PING
# on its own connection, one at a time, 0.5 ms apart, and reports the worst and the 99th percentile per
# size step. Before each step dibs gets CONFIG RESETSTAT, so its loop_iteration_cpu_max_microseconds is the
# step's. RSS is /proc/PID/status VmRSS after the step minus VmRSS with the empty key created.
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${1:-1000000,5000000,10000000}
cases=${2:-strings,ints,coupon,likes}
dibs=${3:-target/release/dibs}
bench=target/release/dibs-bench
port_dibs=17611 port_redis=17612
work=$(mktemp -d)
server_pid="" prober_pid=""
cleanup() {
  [ -n "$prober_pid" ] && kill "$prober_pid" 2>/dev/null || true
  redis-cli -p $port_dibs shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p $port_redis shutdown nosave >/dev/null 2>&1 || true
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -x "$dibs" ] || { echo "no dibs binary at $dibs (cargo build --release)" >&2; exit 2; }
if [[ ",$cases," == *",likes,"* ]] && [ ! -x "$bench" ]; then
  echo "no $bench (cargo build --release --bin dibs-bench)" >&2; exit 2
fi

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
info_field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'; }

start_server() { # server
  rm -rf "$work/$1"; mkdir -p "$work/$1"
  if [ "$1" = dibs ]; then
    port=$port_dibs
    "$dibs" --port $port --dir "$work/$1" --appendfsync always 2>"$work/$1.log" &
  else
    port=$port_redis
    redis-server --port $port --dir "$work/$1" --appendonly yes --appendfsync always --save "" \
      --daemonize no --logfile "$work/$1.log" &
  fi
  server_pid=$!
  until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done
}

stop_server() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# Creates the empty key (or its surroundings) for a case, so the RSS baseline includes them.
prepare() { # case server
  case "$1" in
    coupon)
      if [ "$2" = dibs ]; then
        redis-cli -p "$port" COUPON.CREATE big 10000000 >/dev/null
      else
        redis-cli -p "$port" SET remaining 10000000 >/dev/null
        sha=$(redis-cli -p "$port" SCRIPT LOAD "$(cat tools/lua/coupon_issue.lua)")
      fi ;;
  esac
}

count() { # case server
  case "$1" in
    strings|ints) redis-cli -p "$port" SCARD big ;;
    coupon)
      if [ "$2" = dibs ]; then
        redis-cli -p "$port" COUPON.INFO big | awk 'previous == "issued" { print; exit } { previous = $0 }'
      else
        redis-cli -p "$port" SCARD holders
      fi ;;
    likes)
      local key; key=$(redis-cli -p "$port" --scan --pattern 'grow:*:post:*' | head -1)
      if [ -z "$key" ]; then echo 0
      elif [ "$2" = dibs ]; then redis-cli -p "$port" LIKE.COUNT "$key"
      else redis-cli -p "$port" SCARD "$key"; fi ;;
  esac
}

add() { # case server requests
  local common=(-p "$port" -c 50 -P 16 -n "$3" -q)
  case "$1" in
    strings) redis-benchmark "${common[@]}" -r 2000000000 SADD big m:__rand_int__ >/dev/null ;;
    ints) redis-benchmark "${common[@]}" -r 2000000000 SADD big 1__rand_int__ >/dev/null ;;
    coupon)
      if [ "$2" = dibs ]; then
        redis-benchmark "${common[@]}" -r 2000000000 COUPON.ISSUE big u:__rand_int__ >/dev/null
      else
        redis-benchmark "${common[@]}" -r 2000000000 \
          EVALSHA "$sha" 4 remaining holders numbers issued u:__rand_int__ r >/dev/null
      fi ;;
    likes)
      "$bench" like -p "$port" -c 50 -P 16 -n "$3" --posts 1 --prefix grow --target "$2" -q \
        >/dev/null ;;
  esac
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dibs: $dibs; $(redis-server --version | cut -d' ' -f1-3)"
echo
echo "| case | size | server | members | worst PING ms | p99 PING ms | dibs loop CPU max µs | RSS growth MB | bytes/member | dibs/Redis RSS |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a case_list <<<"$cases"
for kind in "${case_list[@]}"; do
  declare -A growth=()
  for server in dibs redis; do
    start_server "$server"
    prepare "$kind" "$server"
    baseline=$(rss_kb "$server_pid")
    python3 docs/scripts/ping_prober.py "$port" >"$work/prober.out" &
    prober_pid=$!
    until grep -q '^ready' "$work/prober.out"; do sleep 0.05; done
    phases=0
    for size in "${size_list[@]}"; do
      [ "$server" = dibs ] && redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
      members=$(count "$kind" "$server")
      while [ "$members" -lt "$size" ]; do
        need=$((size - members))
        add "$kind" "$server" $((need + need / 20 + 1000))
        before=$members members=$(count "$kind" "$server")
        if [ "$members" -le "$before" ]; then
          echo "$kind on $server: no growth past $members members; see $work/$server.log" >&2; exit 1
        fi
        if [ "$kind" = coupon ] && [ "$members" -ge 10000000 ]; then break; fi
      done
      kill -USR1 "$prober_pid"
      phases=$((phases + 1))
      until [ "$(grep -c '^phase=' "$work/prober.out")" -ge "$phases" ]; do sleep 0.05; done
      line=$(grep "^phase=$phases " "$work/prober.out")
      worst=$(sed 's/.*max_ms=\([^ ]*\).*/\1/' <<<"$line")
      p99=$(sed 's/.*p99_ms=\([^ ]*\).*/\1/' <<<"$line")
      cpu="-"
      [ "$server" = dibs ] && cpu=$(info_field "$port" stats loop_iteration_cpu_max_microseconds)
      rss=$(( $(rss_kb "$server_pid") - baseline ))
      growth[$server,$size]=$rss
      ratio="-"
      if [ "$server" = redis ] && [ "${growth[redis,$size]}" -gt 0 ]; then
        ratio=$(awk -v d="${growth[dibs,$size]}" -v r="$rss" 'BEGIN { printf "%.2fx", d / r }')
      fi
      awk -v k="$kind" -v s="$size" -v v="$server" -v m="$members" -v w="$worst" -v p="$p99" -v c="$cpu" \
        -v r="$rss" -v x="$ratio" 'BEGIN { printf "| %s | %d | %s | %d | %s | %s | %s | %.1f | %.1f | %s |\n",
        k, s, v, m, w, p, c, r / 1024, r * 1024 / m, x }'
    done
    kill "$prober_pid"; wait "$prober_pid" 2>/dev/null || true; prober_pid=""
    stop_server
  done
  unset growth
done
