#!/usr/bin/env python3
"""conn_peers.py - opens N raw ZMTP 3.0 connections to a grid hub, holds them, closes them.

Driver of bench/conn_memory.sh (and of the grid test of per-peer state). Each connection is a
plain TCP socket that speaks ZMTP by hand (NULL mechanism, DEALER), so no binding is needed
and one process holds thousands of peers. Peers take turns: a client that says hello, a
worker that says hello, one that sends the greeting and then nothing, one that connects and
sends nothing at all, and one that sends garbage.

    conn_peers.py HOST PORT N PIDFILE-OR-0

KINDS (environment, comma-separated, default all five) chooses the kinds taken in turn:
KINDS=silent,greeting,garbage is a burst of peers that never say hello, which the hub's
scheduler never knows of (only the transport sees them end).

Prints "rss before/peak/after" lines when PID is given (VmRSS of /proc/PID/status, in kB):
before connecting, once all N are connected and greeted, and after they close and the hub
reports no known clients or nodes (status asked over one raw connection of its own, polled; no
fixed sleep decides it).
"""
import json
import os
import socket
import struct
import sys
import time

ALL_KINDS = ("client", "worker", "greeting", "silent", "garbage")
KINDS = tuple(k for k in os.environ.get("KINDS", ",".join(ALL_KINDS)).split(",") if k)
if not KINDS or any(k not in ALL_KINDS for k in KINDS):
    sys.exit("conn_peers: KINDS must name some of %s" % ", ".join(ALL_KINDS))


def greeting():
    return (b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00")
            + b"\x00" + b"\x00" * 31)


def command(name, props):
    body = bytes([len(name)]) + name
    for k, v in props:
        body += bytes([len(k)]) + k + struct.pack(">I", len(v)) + v
    return frame(body, cmd=True)


def frame(body, cmd=False):
    flags = 0x04 if cmd else 0x00
    if len(body) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def hello(kind, i):
    if kind == "worker":
        m = {"ggp": 1, "t": "hello", "role": "worker", "name": "bench-w%d" % i,
             "versions": [1], "slots": 1, "queue": 0, "caps": {}}
    else:
        m = {"ggp": 1, "t": "hello", "role": "client", "name": "bench-c%d" % i,
             "versions": [1]}
    return frame(json.dumps(m).encode())


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class StatusClient:
    """One raw ZMTP client that stays connected and asks the hub for status: a poll adds no
    client of its own (a `gryphgen status` per poll would leave a just-closed client each
    time, known until the hub notices it went)."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=120)
        self.buf = b""
        self.rid = 0
        self.s.sendall(greeting())
        self._read(64)  # the hub's greeting, then the handshake
        self.buf = self.buf[64:]
        self.s.sendall(command(b"READY", [(b"Socket-Type", b"DEALER")]))
        self.s.sendall(hello("client", 0))
        while b"welcome" not in self._frame():
            pass

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise OSError("the hub closed the connection")
            self.buf += chunk

    def _frame(self):
        """The next message frame's body (commands are skipped)."""
        while True:
            self._read(2)
            flags = self.buf[0]
            if flags & 0x02:
                self._read(9)
                size, head = struct.unpack(">Q", self.buf[1:9])[0], 9
            else:
                size, head = self.buf[1], 2
            self._read(head + size)
            body, self.buf = self.buf[head:head + size], self.buf[head + size:]
            if not flags & 0x04:
                return body

    def known_peers(self):
        """(clients other than this one, nodes) the hub knows; clients is -1 for a hub
        that does not report them."""
        self.rid += 1
        self.s.sendall(frame(json.dumps({"ggp": 1, "t": "status", "rid": self.rid}).encode()))
        while True:
            m = json.loads(self._frame())
            if m.get("t") == "reply" and m.get("rid") == self.rid:
                st = m.get("status", {})
                clients = st.get("clients")
                return ((clients - 1 if isinstance(clients, int) else -1),
                        len(st.get("nodes", [])))


def main():
    host, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    status = StatusClient(host, port) if pid else None
    if pid:
        print("rss before: %d kB" % rss_kb(pid), flush=True)
    socks = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        s = socket.create_connection((host, port), timeout=120)
        if kind in ("client", "worker", "greeting"):
            s.sendall(greeting())
            got = b""
            while len(got) < 64:  # the hub's greeting, then the handshake
                chunk = s.recv(64 - len(got))
                if not chunk:
                    raise OSError("the hub closed connection %d during its greeting" % i)
                got += chunk
            s.sendall(command(b"READY", [(b"Socket-Type", b"DEALER")]))
        if kind in ("client", "worker"):
            s.sendall(hello(kind, i))
        if kind == "garbage":
            s.sendall(os.urandom(64))
        socks.append((kind, s))
    # Every hello handled: each client and worker reads until its welcome, so the peak is
    # taken with all of them taken in.
    for kind, s in socks:
        if kind not in ("client", "worker", "greeting"):
            continue
        if kind == "greeting":
            continue
        got = b""
        try:
            while b"welcome" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
    if pid:
        print("known while open: clients %s, nodes %s" % status.known_peers(), flush=True)
        print("rss peak: %d kB" % rss_kb(pid), flush=True)
    for _, s in socks:
        s.close()
    socks = []
    if pid:
        deadline = time.monotonic() + 600
        peers = None
        while time.monotonic() < deadline:
            peers = status.known_peers()
            if peers and peers[0] <= 0 and peers[1] == 0:
                break
            time.sleep(0.5)
        print("known after close: clients %s, nodes %s" % (peers or ("?", "?")), flush=True)
        # The hub gives free memory back once a burst is over (a heartbeat interval, 1 s,
        # with no peer going); a few seconds later is after that.
        time.sleep(float(os.environ.get("SETTLE", "3")))
        print("rss after: %d kB" % rss_kb(pid), flush=True)


if __name__ == "__main__":
    main()
