#!/usr/bin/env python3
# The collections of the compaction/restart data set (README, "Replay, likes memory, compaction") as RESP
# for `redis-cli --pipe`: `compaction_data.py dibs` (a coupon) or `compaction_data.py redis` (a hash
# with the same holders), after `redis-benchmark -t set -r 5000000 -n 5000000 -P 64`.
import sys
kind = sys.argv[1]  # dibs or redis
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
for m in range(86000):
    cmd("SADD", "bigset", "member:%012d" % m)
for s in range(20000):
    for m in range(5):
        cmd("SADD", "smallset:%d" % s, "m%d" % m)
if kind == "dibs":
    cmd("COUPON.CREATE", "coupon:big", 10000000)
    for u in range(260000):
        cmd("COUPON.ISSUE", "coupon:big", "user:%012d" % (u * 3))
else:
    for u in range(260000):
        cmd("HSET", "coupon:big", "user:%012d" % (u * 3), u + 1)
