#!/bin/bash
# One restart round (docs/performance.md): the seconds from starting the server
# until PING answers PONG, for dibs on DIBS_DIR and for redis-server on REDIS_DIR/dump.rdb.
# Usage: restart_round.sh DIBS_BINARY DIBS_DIR REDIS_DIR [PORT_DIBS PORT_REDIS]
set -u
dibs=$1 dibs_dir=$2 redis_dir=$3 port_dibs=${4:-18101} port_redis=${5:-18102}
ready() {
    local port=$1 start=$2
    until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = "PONG" ]; do sleep 0.01; done
    echo "scale=3; ($(date +%s%N) - $start) / 1000000000" | bc
}
start=$(date +%s%N)
"$dibs" --port "$port_dibs" --dir "$dibs_dir" > /dev/null 2>&1 &
pid=$!
echo "dibs $(ready "$port_dibs" "$start") s, $(redis-cli -p "$port_dibs" DBSIZE) keys"
kill "$pid"; wait "$pid"
start=$(date +%s%N)
redis-server --port "$port_redis" --appendonly no --save '' --dir "$redis_dir" > /dev/null 2>&1 &
pid=$!
echo "redis $(ready "$port_redis" "$start") s, $(redis-cli -p "$port_redis" DBSIZE) keys"
kill "$pid"; wait "$pid"
