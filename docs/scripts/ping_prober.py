#!/usr/bin/env python3
"""Measures PING latency against one server for as long as it runs, phase by phase.

One connection sends PING and waits for +PONG, then pauses PAUSE_MS (so the prober does not take a core
from the server on a small machine; a stall of the server still delays the PING that meets it). On
SIGUSR1 (send it after the line `ready`) it prints one line for the phase since the last signal and starts a new one:
    phase=<n> pings=<count> max_ms=<worst> p99_ms=<99th percentile> p50_ms=<median>
On SIGTERM it prints the current phase and exits. Standard library only.

Usage: ping_prober.py PORT [PAUSE_MS]   (used by docs/scripts/grow_collections.sh)
"""
import signal
import socket
import sys
import time

port = int(sys.argv[1])
pause = float(sys.argv[2] if len(sys.argv) > 2 else 0.5) / 1000.0

samples = []
phase = 0
report_requested = False
stop_requested = False


def request_report(_signal, _frame):
    global report_requested
    report_requested = True


def request_stop(_signal, _frame):
    global stop_requested
    stop_requested = True


def report():
    global samples, phase
    phase += 1
    if samples:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        p50 = ordered[len(ordered) // 2]
        print(
            "phase=%d pings=%d max_ms=%.3f p99_ms=%.3f p50_ms=%.3f"
            % (phase, len(ordered), ordered[-1] * 1e3, p99 * 1e3, p50 * 1e3),
            flush=True,
        )
    else:
        print("phase=%d pings=0 max_ms=0 p99_ms=0 p50_ms=0" % phase, flush=True)
    samples = []


signal.signal(signal.SIGUSR1, request_report)
signal.signal(signal.SIGTERM, request_stop)

connection = socket.create_connection(("127.0.0.1", port))
connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("ready", flush=True)
while not stop_requested:
    if report_requested:
        report_requested = False
        report()
    started = time.perf_counter()
    connection.sendall(b"PING\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        try:
            chunk = connection.recv(64)
        except InterruptedError:
            continue
        if not chunk:
            sys.exit("the server closed the connection")
        reply += chunk
    samples.append(time.perf_counter() - started)
    if reply != b"+PONG\r\n":
        sys.exit("unexpected reply %r" % reply)
    time.sleep(pause)
report()
