"""test_front_door.py - `gryphgen serve --req ENDPOINT`: GRYPHGEN's original REQ client.
A plain ZeroMQ REQ socket (libzmq through ctypes, no pyzmq) sends
{"code": "print('Hello, World!')", "query": "example query"} and gets one JSON reply: the
code's run (status, exit code, stdout and stderr tails) and the query's results from the
index. Every request gets exactly one reply: not JSON, unknown keys, wrong types, oversized,
several frames, no index, a timeout, a key whose role may not submit -- each an error naming
what was wrong; several clients at once each get theirs. The endpoint follows the grid's key
rules: loopback without keys only with --insecure, CURVE otherwise."""

import json
import os
import shutil
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gridtest import (check, curve_keys, finish, free_port, gg, read_log, require,  # noqa: E402
                      start, stop_all, tmpdir, wait_until)
from zmqtest import ask, libzmq, request  # noqa: E402

libzmq()  # skips the script when libzmq cannot be loaded


def serve(work, name, args, local=1):
    port, req = free_port(), free_port()
    log = os.path.join(work, name + ".log")
    start(["serve", "--bind", "tcp://127.0.0.1:%d" % port, "--req",
           "tcp://127.0.0.1:%d" % req, "--local", str(local)] + args, log)
    require(wait_until(lambda: "serving on" in read_log(log)), name + ": serve started",
          read_log(log))
    return "tcp://127.0.0.1:%d" % req


def test_original_client(work):
    docs = os.path.join(work, "docs")
    os.makedirs(docs)
    with open(os.path.join(docs, "notes.md"), "w") as f:
        f.write("# Example\n\nAn example query finds this paragraph about greetings.\n")
    db = os.path.join(work, "index.db")
    p = gg(["index", "--db", db, "--quiet", docs])
    check(p.returncode == 0, "index built", p.stderr)
    ep = serve(work, "indexed", ["--insecure", "--index", db])

    r = ask(ep, {"code": "print('Hello, World!')", "query": "example query"})
    check(r and r.get("ok") is True, "the original message: ok", r)
    code = (r or {}).get("code") or {}
    check(code.get("passed") is True and code.get("status") == "passed" and
          code.get("exit_code") == 0, "the code passed", code)
    check(code.get("stdout") == "Hello, World!\n", "its stdout", code)
    check(str(code.get("task_id", "")).startswith("front-door/"), "its task id", code)
    results = ((r or {}).get("query") or {}).get("results") or []
    check(any("greetings" in json.dumps(x) for x in results), "the query's results", r)

    r = ask(ep, {"code": "raise ValueError('oops')\n"})
    code = (r or {}).get("code") or {}
    check(r and r.get("ok") is True and code.get("passed") is False and
          code.get("exit_code") not in (0, None) and "oops" in code.get("stderr", "") and
          "ValueError" in (code.get("reason") or ""),
          "a failing script: its exit code, stderr and reason", r)
    r = ask(ep, {"query": "example query", "k": 1})
    check(r and r.get("ok") is True and len(r["query"]["results"]) <= 1 and "code" not in r,
          "a query alone, k 1", r)

    bad = [
        (b"not json {", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"code": "print(1)", "extra": 1}).encode(), "unknown key 'extra'"),
        (json.dumps({"code": 5}).encode(), "\"code\" must be"),
        (json.dumps({}).encode(), "neither"),
        (json.dumps({"query": "q", "k": 500}).encode(), "\"k\""),
        (json.dumps({"code": "x = 1", "language": "cobol"}).encode(), "\"language\""),
        (json.dumps({"code": "#" * (1536 * 1024)}).encode(), "oversized"),
        (b"\xff\xfe", "not JSON"),
    ]
    for msg, want in bad:
        r = request(ep, msg)
        check(r and r.get("ok") is False and want in r.get("error", ""),
              "refused: %s" % want, r)
    r = request(ep, [b'{"code": "print(1)"}', b"second frame"])
    check(r and r.get("ok") is False and "one frame" in r.get("error", ""),
          "a message of two frames is refused", r)

    # several clients at once: each gets exactly its own reply
    replies = {}

    def one(i):
        replies[i] = ask(ep, {"code": "print(%d)" % i})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(replies.get(i) and replies[i].get("code", {}).get("stdout") == "%d\n" % i
              for i in range(5)), "five clients, five replies", replies)


def test_no_index_and_timeout(work):
    # two slots: the script that times out still holds one until its sandbox ends it
    ep = serve(work, "plain", ["--insecure", "--req-timeout", "8"], local=2)
    r = ask(ep, {"code": "print(1)", "query": "example query"})
    check(r and r.get("ok") is False and "--index" in r.get("error", ""),
          "a query without an index names --index", r)
    r = ask(ep, {"code": "import time\ntime.sleep(60)\n"})
    check(r and r.get("ok") is False and "timed out" in r.get("error", "") and r.get("task_id"),
          "a script that outlives --req-timeout: a timeout reply", r)
    r = ask(ep, {"code": "print('after')"})
    check(r and r.get("code", {}).get("stdout") == "after\n", "the door serves on", r)


def test_rules(work):
    p = gg(["serve", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--insecure", "--req",
            "tcp://0.0.0.0:%d" % free_port()])
    check(p.returncode == 2 and "loopback" in p.stderr,
          "--req off loopback without keys is refused", p.stderr)
    p = gg(["serve", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--req",
            "tcp://127.0.0.1:%d" % free_port()])
    check(p.returncode == 2 and "--insecure" in p.stderr,
          "--req without keys needs --insecure", p.stderr)
    p = gg(["serve", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--insecure",
            "--req-timeout", "5"])
    check(p.returncode == 2 and "--req" in p.stderr, "--req-timeout needs --req", p.stderr)

    keys, auth = curve_keys(work)

    def secret(name):
        with open(keys[name][0]) as f:
            return [ln.split(": ", 1)[1] for ln in f.read().splitlines()
                    if ln.startswith("secret: ")][0]

    ep = serve(work, "curve", ["--key", keys["server"][0], "--authorized-keys", auth])
    server_pub = keys["server"][1]
    r = ask(ep, {"code": "print('sealed')"},
            curve=(server_pub, keys["submitter"][1], secret("submitter")))
    check(r and r.get("code", {}).get("stdout") == "sealed\n", "a submitter key is served", r)
    r = ask(ep, {"code": "print('no')"},
            curve=(server_pub, keys["worker"][1], secret("worker")))
    check(r and r.get("ok") is False and "forbidden" in r.get("error", ""),
          "a worker key may not submit", r)
    r = ask(ep, {"code": "print('x')"}, wait_s=3)
    check(r is None, "a client without keys gets nothing through CURVE", r)


if __name__ == "__main__":
    work = tmpdir()
    try:
        test_original_client(work)
        test_no_index_and_timeout(work)
        test_rules(work)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    finish()
