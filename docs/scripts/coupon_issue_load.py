#!/usr/bin/env python3
# Issues coupon:big to new users one at a time for SECONDS (docs/performance.md: a write to a large
# collection during a compaction).
# Usage: coupon_issue_load.py PORT SECONDS USER_PREFIX
import socket, sys, time
port, seconds, prefix = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
end = time.time() + seconds
n = 0
while time.time() < end:
    user = b"%s:%d" % (prefix.encode(), n)
    s.sendall(b"*3\r\n$12\r\nCOUPON.ISSUE\r\n$10\r\ncoupon:big\r\n$%d\r\n%s\r\n" % (len(user), user))
    data = b""
    while data.count(b"\r\n") < 4:
        data += s.recv(4096)
    n += 1
print("issued", n)
