#!/usr/bin/python3
"""broken_server.py - a JSON search server with faults, for the http retriever's error
paths. Binds 127.0.0.1 on a free port, prints "PORT <n>" and serves until killed:

  /ok           results under /data/hits with custom field names (one numeric id)
  /slow         answers /ok after 3 s (a client's timeout is shorter)
  /hits         one result whose text is how many requests /PATH got, PATH the q parameter
  /500          HTTP 500 whose message echoes the Authorization header (a leaky server)
  /flaky/TAG    503 for the first two requests of TAG, then one result under /results
  /429/TAG      429 with Retry-After: 0 once, then one result under /results
  /malformed    200 with a body that is not JSON
  /huge         200 with a 6 MiB body
  /badshape     "results" is an object, not an array
  /nul          a result whose text holds an escaped NUL before more text
  /badutf8      a result whose text holds bytes that are not UTF-8
  /noid         results without ids
  /echo-auth    one result whose text is the Authorization header received
  /post         (POST) one result whose text is the "query" of the JSON body received
  /feedback     (POST) records the body; /feedback-log returns the last one as a result
  /std          one result under /results (for an orchestrator's searches)
  /held-feedback (POST) answers 204 only once /release was asked, then counts;
                /feedback-count returns that count and /feedback-waiting how many wait now,
                each as the text of one result
  /release      lets every held feedback call answer, now and later
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

counts = {}
last_feedback = [""]
held_feedbacks = [0, 0]  # answered, waiting
released = threading.Event()
lock = threading.Lock()


def bump(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


OK = {"data": {"hits": [{"doc": {"key": "a1", "body": "first text"}, "relevance": 0.9},
                        {"doc": {"key": 7, "body": "second text"}, "relevance": 0.5}]}}

STD = {"results": [{"id": "s1", "text": "first text", "score": 1}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, extra=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    def text(self, value):
        return self.send(200, {"results": [{"id": "n", "text": str(value)}]})

    def route(self, body):
        path = urlsplit(self.path).path
        auth = self.headers.get("Authorization", "")
        bump("hits:" + path)
        if path == "/ok":
            return self.send(200, OK)
        if path == "/slow":
            time.sleep(3)
            return self.send(200, OK)
        if path == "/500":
            return self.send(500, {"error": "internal trouble with credentials " + auth})
        if path.startswith("/flaky/"):
            if bump(path) <= 2:
                return self.send(503, {"error": "try later"})
            return self.send(200, STD)
        if path.startswith("/429/"):
            if bump(path) <= 1:
                return self.send(429, {"error": "slow down"}, {"Retry-After": "0"})
            return self.send(200, STD)
        if path == "/malformed":
            return self.send(200, b"{\"results\": [ this is not json")
        if path == "/huge":
            return self.send(200, b"{\"results\": [\"" + b"x" * (6 << 20) + b"\"]}")
        if path == "/badshape":
            return self.send(200, {"results": {"not": "an array"}})
        if path == "/nul":
            return self.send(200, b'{"results": [{"id": "n", "text": "kept\\u0000 hidden"}]}')
        if path == "/badutf8":
            return self.send(200, b'{"results": [{"id": "u", "text": "bad \xff\xfe"}]}')
        if path == "/noid":
            return self.send(200, {"results": [{"text": "no id here"}]})
        if path == "/echo-auth":
            return self.send(200, {"results": [{"id": "1", "text": auth}]})
        if path == "/post":
            q = json.loads(body.decode())
            return self.send(200, {"results": [{"id": "p", "text": q["query"],
                                                "score": q["k"]}]})
        if path == "/feedback":
            last_feedback[0] = body.decode()
            return self.send(204, b"")
        if path == "/std":
            return self.send(200, STD)
        if path == "/hits":
            q = parse_qs(urlsplit(self.path).query).get("q", [""])[0]
            with lock:
                n = counts.get("hits:" + q, 0)
            return self.text(n)
        if path == "/held-feedback":
            with lock:
                held_feedbacks[1] += 1
            released.wait()
            with lock:
                held_feedbacks[1] -= 1
                held_feedbacks[0] += 1
            return self.send(204, b"")
        if path == "/release":
            released.set()
            return self.text("released")
        if path == "/feedback-count":
            with lock:
                n = held_feedbacks[0]
            return self.text(n)
        if path == "/feedback-waiting":
            with lock:
                n = held_feedbacks[1]
            return self.text(n)
        if path == "/feedback-log":
            return self.send(200, {"results": [{"id": "f", "text": last_feedback[0]}]})
        return self.send(404, {"error": "no such path"})

    def do_GET(self):
        self.route(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.route(self.rfile.read(n))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("PORT %d" % server.server_address[1], flush=True)
server.serve_forever()
