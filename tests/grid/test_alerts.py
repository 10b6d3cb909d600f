"""test_alerts.py - `gryphgen serve --webhook URL`: alerts reach a receiver of the test's own
(an HTTP server on loopback in this process) as JSON POSTs: a failed task (task.failed with
its id, status and reason) and a worker that left (node.lost); a receiver that answers 500
first gets the retry; a second URL where nothing listens costs drops, counted in `gryphgen
status` ("webhooks"), while the tasks still finish. Bad options are usage errors."""

import json
import os
import shutil
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gridtest import (check, finish, free_port, gg, kill, read_log, require, start,  # noqa: E402
                      status, stop_all, tmpdir, up, wait_until)

received = []
answers = [500]  # the first POST is answered 500, the rest 200
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            code = answers.pop(0) if answers else 200
            received.append((code, self.headers.get("Content-Type"), body))
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def alerts(kind, ok_only=True):
    with lock:
        out = []
        for code, _, body in received:
            try:
                a = json.loads(body)
            except ValueError:
                continue
            if a.get("alert") == kind and (code == 200 or not ok_only):
                out.append(a)
        return out


def main(work):
    for args, want in ((["--webhook", "ftp://127.0.0.1/x"], "http"),
                       (["--stall-alert", "5"], "--webhook")):
        p = gg(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port()] + args)
        check(p.returncode == 2 and want in p.stderr, "usage error: %s" % args, p.stderr)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/alerts" % httpd.server_address[1]
    dead = "http://127.0.0.1:%d/nobody" % free_port()
    ep = "tcp://127.0.0.1:%d" % free_port()
    log = os.path.join(work, "serve.log")
    start(["serve", "--insecure", "--bind", ep, "--local", "1", "--webhook", url,
           "--webhook", dead], log)
    require(wait_until(lambda: "serving on" in read_log(log)), "serve started", read_log(log))
    wlog = os.path.join(work, "worker.log")
    worker = start(["worker", "--insecure", "--connect", ep, "--name", "leaver", "--slots", "1"],
                   wlog)
    up("the worker joined", lambda: any(n.get("name") == "leaver"
                                        for n in (status(ep) or {}).get("nodes", [])), worker)

    task = os.path.join(work, "t.jsonl")
    with open(task, "w") as f:
        f.write(json.dumps({"task_id": "alert/fail", "language": "python", "prompt": "p",
                            "entry_point": "f", "stub": "", "test": "assert f() == 1\n",
                            "candidates": ["def f():\n    return 2\n"],
                            "budget": {"max_attempts": 1}}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, "--wait", task])
    check(p.returncode == 0 and '"failed"' in p.stdout, "the task ended failed", p.stderr)

    got = wait_until(lambda: [a for a in alerts("task.failed") if a.get("task_id") == "alert/fail"])
    check(got, "task.failed arrived", received)
    if got:
        a = got[0]
        check(a.get("status") == "failed" and a.get("source") == "gryphgen" and a.get("host")
              and "1 attempt" in (a.get("reason") or "") and isinstance(a.get("ts"), float),
              "task.failed has its fields", a)
    with lock:
        check(received and received[0][0] == 500 and
              all(ct == "application/json" for _, ct, _ in received),
              "the first POST was answered 500 and JSON was sent", received)
    kill(worker, signal.SIGTERM)
    lost = wait_until(lambda: [a for a in alerts("node.lost") if a.get("node") == "leaver"])
    check(lost and lost[0].get("reason") == "left", "node.lost for the worker that left", lost)

    def webhook_counts():
        w = (status(ep) or {}).get("webhooks") or {}
        return w if w.get("dropped", 0) >= 1 and w.get("sent", 0) >= 2 else None

    w = wait_until(webhook_counts)
    check(w and w.get("retried", 0) >= 1 and w.get("alerts", 0) >= 2,
          "status counts sent, retried and dropped deliveries", w)
    stop_all()
    httpd.shutdown()


if __name__ == "__main__":
    work = tmpdir()
    try:
        main(work)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    finish()
