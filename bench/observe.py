"""observe.py - what an operator's tools do to a grid while it works, for bench/dispatch.sh:
reads the event stream (/v1/events of the types the dashboard asks for) throughout and scrapes /metrics
every second (as Prometheus does). Touches READY_FILE once the stream is open; on SIGINT
prints how many events and scrapes it saw. Usage: observe.py BASE_URL READY_FILE"""

import os
import signal
import socket
import sys
import threading
import time
import urllib.request

base, ready = sys.argv[1], sys.argv[2]
# The dashboard's (lib/http/dashboard.html): the coalesced summary and the node events. With
# OBSERVE_TYPES= in the environment, those types instead (the dashboard of 1.2 asked for
# task.started,task.finished,task.stuck,node.joined,node.lost,node.quarantined).
TYPES = os.environ.get("OBSERVE_TYPES") or \
    "grid.summary,task.stuck,node.joined,node.lost,node.quarantined"
host, port = base.split("://", 1)[1].rsplit(":", 1)
counts = {"events": 0, "bytes": 0, "scrapes": 0, "failed": 0}
stop = threading.Event()


def stream():
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /v1/events?types=" + TYPES.encode() +
              b" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    open(ready, "w").close()
    rest = head.split(b"\r\n\r\n", 1)[1]
    counts["events"] += rest.count(b"\ndata: ")
    while not stop.is_set():
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        counts["bytes"] += len(chunk)
        counts["events"] += chunk.count(b"data: ")


signal.signal(signal.SIGINT, lambda *a: stop.set())
threading.Thread(target=stream, daemon=True).start()
while not stop.is_set():
    t = time.monotonic()
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            r.read()
        counts["scrapes"] += 1
    except OSError:
        counts["failed"] += 1
    stop.wait(max(0.0, 1.0 - (time.monotonic() - t)))
print("observer: %(scrapes)d scrapes (%(failed)d failed), %(events)d events, %(bytes)d bytes"
      % counts)
