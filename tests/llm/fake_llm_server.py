#!/usr/bin/python3
"""fake_llm_server.py - an OpenAI-compatible chat-completions server for the openai
generator's tests. Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout and serves
POST .../chat/completions until killed. The model name picks the behaviour ("mode" or
"mode:tag"; counters are kept per full model name, so each test uses its own tag):

  ok          a fenced Python answer defining add
  wrong       a fenced Python add that subtracts (fails its test), every time
  plain       the code without any fence
  count       "x = N" where N counts the requests this model name got
  fenced      prose and two fenced blocks; the second defines the entry point
  echo        the request itself (JSON with the messages and the Authorization header)
              inside a fence, so a test can inspect what was sent
  401         HTTP 401 whose error message echoes the bearer key (a leaky server)
  400         HTTP 400 with an OpenAI-style error message
  404         HTTP 404 with an Ollama-style error ("model ... not found")
  429once     429 with Retry-After: 1, then ok
  429         always 429 with Retry-After: 1
  500once     500, then ok
  500         always 500
  slow        answers ok after 3 s
  hang        sends the headers and half a body, then stalls for 30 s
  malformed   200 with a body that is not JSON
  nochoices   200 with a JSON object without choices
  nocontent   200 with choices[0].message without content
  nul         the code of ok with an escaped NUL (\\u0000) in the middle of it
  badutf8     the code of ok with bytes that are not UTF-8 (0xff 0xfe) in it
  truncated   a Content-Length larger than the body, then the connection is closed
  big         a 9 MiB body
  repair      a wrong add (a - b) until a message of the request mentions AssertionError,
              then the right one
  cite        the ok answer, then "CITED: --- 12 ---, 40, 999" after the block
  citeinline  the code without a fence, a "# CITED: 40" comment line inside it
  citehostile the ok answer, then 20 citation lines: a 100,000-id list, a 1,000-byte id,
              an id split over two lines, quotes and brackets around ids
A path starting with /dead answers 503 to everything (an endpoint that is down). A path
without /v1 before /chat/completions answers 404 "404 page not found" in plain text, as
Ollama, vLLM and llama.cpp's server do for a base URL without /v1 (counted under its path
only, as no model was asked).
GET /stats answers {"models": {model: requests}, "paths": {path: requests}, "total": n},
so a test can tell how often (and where) the server was asked.
"""
import json
import sys
import threading
import time
from urllib.parse import urlsplit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"

counts = {}
paths = {}
lock = threading.Lock()


def bump(key, path):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        paths[path] = paths.get(path, 0) + 1
        return counts[key]


def completion(content, model):
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_raw(self, status, body, length=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        if urlsplit(self.path).path == "/stats":
            with lock:
                stats = {"models": dict(counts), "paths": dict(paths),
                         "total": sum(counts.values())}
            self.send_json(200, stats)
        else:
            self.send_json(404, {"error": "no such path " + self.path})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        path = urlsplit(self.path).path
        if path.startswith("/dead"):
            bump("", path)
            self.send_json(503, {"error": {"message": "service unavailable"}})
            return
        if not path.endswith("/chat/completions"):
            self.send_json(404, {"error": "no such path " + self.path})
            return
        if not path.endswith("/v1/chat/completions"):
            with lock:
                paths[path] = paths.get(path, 0) + 1
            body = b"404 page not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        try:
            req = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "request is not JSON"}})
            return
        model = req.get("model", "")
        mode = model.split(":", 1)[0]
        count = bump(model, path)
        auth = self.headers.get("Authorization") or ""
        text = "\n".join(m.get("content") or "" for m in req.get("messages", []))

        if mode == "ok":
            self.send_json(200, completion("Here it is:\n```python\n" + GOOD + "```\n", model))
        elif mode == "wrong":
            self.send_json(200, completion("```python\n" + WRONG + "```", model))
        elif mode == "count":
            self.send_json(200, completion("```python\nx = %d\n```" % count, model))
        elif mode == "plain":
            self.send_json(200, completion(GOOD, model))
        elif mode == "fenced":
            content = ("First a helper:\n```python\ndef helper(x):\n    return x\n```\n"
                       "And the function:\n```python\n" + GOOD + "```\nDone.")
            self.send_json(200, completion(content, model))
        elif mode == "echo":
            echo = {"request": req, "authorization": auth, "path": self.path}
            self.send_json(200, completion("```json\n" + json.dumps(echo) + "\n```", model))
        elif mode == "401":
            key = auth[len("Bearer "):] if auth.startswith("Bearer ") else auth
            self.send_json(401, {"error": {"message": "Incorrect API key provided: " + key +
                                           " for " + self.path,
                                           "type": "invalid_request_error"}})
        elif mode == "400":
            self.send_json(400, {"error": {"message": "max_tokens is too large"}})
        elif mode == "404":
            self.send_json(404, {"error": "model '%s' not found" % model})
        elif mode == "429once" and count == 1 or mode == "429":
            self.send_json(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        elif mode == "500once" and count == 1 or mode == "500":
            self.send_json(500, {"error": {"message": "internal trouble"}})
        elif mode in ("429once", "500once"):
            self.send_json(200, completion("```python\n" + GOOD + "```", model))
        elif mode == "slow":
            time.sleep(3)
            self.send_json(200, completion("```python\n" + GOOD + "```", model))
        elif mode == "hang":
            self.send_raw(200, b'{"choices": [', length=1000)
            time.sleep(30)
        elif mode == "malformed":
            self.send_raw(200, b'{"choices": [{"message": oops')
        elif mode == "nochoices":
            self.send_json(200, {"object": "chat.completion", "model": model})
        elif mode == "nocontent":
            self.send_json(200, {"choices": [{"message": {"role": "assistant"}}]})
        elif mode == "nul":
            self.send_json(200, completion("```python\n" + GOOD + "# \x00\nassert 0\n```",
                                           model))
        elif mode == "badutf8":
            body = json.dumps(completion("```python\n" + GOOD + "# @@\n```", model))
            self.send_raw(200, body.encode().replace(b"@@", b"\xff\xfe"))
        elif mode == "truncated":
            self.send_raw(200, b'{"choices": [{"mess', length=5000)
            self.close_connection = True
        elif mode == "big":
            self.send_json(200, completion("x" * (9 << 20), model))
        elif mode == "cite":
            self.send_json(200, completion("```python\n" + GOOD + "```\nCITED: --- 12 ---, 40, 999\n",
                                           model))
        elif mode == "citeinline":
            self.send_json(200, completion(GOOD + "# CITED: 40\n", model))
        elif mode == "citehostile":
            lines = ["CITED: " + ", ".join(str(i) for i in range(1000, 101000))]
            lines.append("cited: " + "9" * 1000)
            lines.append("CITED: 4\n0")
            lines += ["Cited: [\"40\"], `12`"] * 17
            self.send_json(200, completion("```python\n" + GOOD + "```\n" + "\n".join(lines),
                                           model))
        elif mode == "repair":
            right = "AssertionError" in text
            code = GOOD if right else WRONG
            self.send_json(200, completion("```python\n" + code + "```", model))
        else:
            self.send_json(400, {"error": {"message": "unknown test mode " + mode}})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up on purpose (timeouts) are part of the tests


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
