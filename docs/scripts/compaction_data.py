#!/usr/bin/env python3
# The collections of the compaction/restart data set (docs/performance.md) as RESP
# for `redis-cli --pipe`: `compaction_data.py dibs` (a coupon, likes) or `compaction_data.py redis` (a
# hash with the same holders, sets with the same likers), after
# `redis-benchmark -t set -r 8000000 -n 8000000 -P 64` (about 5.06 million keys).
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
# Likes: one post of 100,000 (large enough to go to the snapshot writer by handle) and 10,000 posts of 90.
like = b"LIKE.ADD" if kind == "dibs" else b"SADD"
for user in range(100000):
    cmd(like, "post:hot", user * 7 + 1)
for post in range(10000):
    for user in range(90):
        cmd(like, "post:%d" % post, (post * 7919 + user * 104729) % 50000000 + 1)
if kind == "dibs":
    cmd("COUPON.CREATE", "coupon:big", 10000000)
    for u in range(260000):
        cmd("COUPON.ISSUE", "coupon:big", "user:%012d" % (u * 3))
else:
    for u in range(260000):
        cmd("HSET", "coupon:big", "user:%012d" % (u * 3), u + 1)
