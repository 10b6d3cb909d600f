"""test_http_api.py - the REST API of `gryphgen serve --http` (issue 19): tokens with roles
(401 without one, 403 for a role that may not, a submitter cancels only its own tasks), POST
/v1/tasks (one task and JSON lines), GET /v1/tasks (by status, paginated), GET
/v1/tasks/{id} with a URL-encoded id, DELETE (cancel), GET /v1/nodes, /healthz, the event
stream, and bad input (malformed JSON, oversized bodies, unknown paths, path traversal, a
token file others may read, unsafe addresses) that never disturbs the scheduler: a task
submitted afterwards still runs."""

import json
import os
import socket
import subprocess
import urllib.parse

from gridtest import (GRYPHGEN, GUARD_S, check, db_rows, env, finish, free_port, gg, nodes,
                      read_log, require, start, status, stop_all, tmpdir, up, wait_until)
from httptest import api_url, call, jsonl, task, token_file

work = tmpdir()
db = os.path.join(work, "grid.db")
OBS, SUB_A, SUB_B, ADMIN = ("obs-" + os.urandom(12).hex(), "suba-" + os.urandom(12).hex(),
                            "subb-" + os.urandom(12).hex(), "adm-" + os.urandom(12).hex())
tokens = token_file(os.path.join(work, "tokens"),
                    ["%s observer" % OBS, "%s submitter alice" % SUB_A,
                     "%s submitter bob" % SUB_B, "%s admin" % ADMIN])
ep = "tcp://127.0.0.1:%d" % free_port()


def raw(port, request_bytes):
    """Sends bytes on a fresh connection; the status line's code (0 when none came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    try:
        s.sendall(request_bytes)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    finally:
        s.close()


def refusals():
    """Options serve refuses before it starts (exit 2, naming what to do)."""
    base = ["serve", "--bind", ep, "--db", os.path.join(work, "r.db")]
    p = gg(base + ["--insecure", "--http", "0.0.0.0:0", "--http-tokens", tokens], timeout=GUARD_S)
    check(p.returncode == 2 and "--http-cert" in p.stderr,
          "a non-loopback --http without TLS is refused, naming --http-cert", p.stderr)
    p = gg(["serve", "--bind", "inproc://gg-http-test", "--db", os.path.join(work, "r.db"),
            "--http", "127.0.0.1:0"], timeout=GUARD_S)
    check(p.returncode == 2 and "--http-tokens" in p.stderr and "--insecure" in p.stderr,
          "--http without tokens and without --insecure is refused", p.stderr)
    loose = os.path.join(work, "loose-tokens")
    token_file(loose, ["%s admin" % ADMIN])
    os.chmod(loose, 0o644)
    p = gg(base + ["--insecure", "--http", "127.0.0.1:0", "--http-tokens", loose], timeout=GUARD_S)
    check(p.returncode == 2 and "chmod 600" in p.stderr and ADMIN not in p.stderr,
          "a token file others may read is refused (and the token is not printed)", p.stderr)
    bad = token_file(os.path.join(work, "bad-tokens"), ["%s root" % ADMIN])
    p = gg(base + ["--insecure", "--http", "127.0.0.1:0", "--http-tokens", bad], timeout=GUARD_S)
    check(p.returncode == 2 and "line 2" in p.stderr and ADMIN not in p.stderr,
          "an unknown role is refused naming the line, not the token", p.stderr)
    short = token_file(os.path.join(work, "short-tokens"), ["abc admin"])
    p = gg(base + ["--insecure", "--http", "127.0.0.1:0", "--http-tokens", short], timeout=GUARD_S)
    check(p.returncode == 2 and "shorter" in p.stderr, "a short token is refused", p.stderr)


def access(url):
    st, body, _ = call(url + "/v1/tasks")
    check(st == 401, "no token: 401", (st, body))
    st, body, _ = call(url + "/v1/tasks", token="not-a-known-token-at-all")
    check(st == 401, "an unknown token: 401", (st, body))
    st, body, _ = call(url + "/healthz")
    check(st == 200 and body == {"status": "ok"}, "/healthz needs no token", (st, body))
    st, body, _ = call(url + "/v1/tasks", token=OBS)
    check(st == 200 and body.get("tasks") == [], "an observer lists tasks", (st, body))
    st, body, _ = call(url + "/metrics", token=OBS)
    check(st == 200 and "gryphgen_tasks_total" in body, "an observer reads /metrics", st)
    st, body, _ = call(url + "/v1/tasks", "POST", OBS, json.dumps(task("nope")))
    check(st == 403, "an observer may not submit: 403", (st, body))


def submit_and_cancel(url):
    # No worker yet: what is submitted stays queued.
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, json.dumps(task("obs/5")))
    check(st == 201 and body.get("ids") == ["obs/5"], "one task is taken: 201 and its id",
          (st, body))
    lines = jsonl([task("a%d" % i, passes=(i != 1)) for i in range(5)])
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, lines)
    check(st == 201 and body.get("ids") == ["a%d" % i for i in range(5)],
          "JSON lines are taken: their ids in order", (st, body))
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_B, json.dumps(task("b0")))
    check(st == 201, "another submitter's task is taken", (st, body))
    st, body, _ = call(url + "/v1/tasks/" + urllib.parse.quote("obs/5", safe=""), token=OBS)
    check(st == 200 and body.get("task_id") == "obs/5" and body.get("status") == "queued",
          "GET /v1/tasks/obs%2F5 finds the task", (st, body))
    st, body, _ = call(url + "/v1/tasks/a4", "DELETE", SUB_B)
    check(st == 403, "a submitter may not cancel another's task: 403", (st, body))
    st, body, _ = call(url + "/v1/tasks/a4", "DELETE", OBS)
    check(st == 403, "an observer may not cancel: 403", (st, body))
    st, body, _ = call(url + "/v1/tasks/a4", "DELETE", SUB_A)
    check(st == 200 and body.get("status") == "cancelled", "its submitter cancels it",
          (st, body))
    st, body, _ = call(url + "/v1/tasks/b0", "DELETE", ADMIN)
    check(st == 200, "an admin cancels anyone's task", (st, body))
    st, body, _ = call(url + "/v1/tasks/b0", "DELETE", ADMIN)
    check(st == 409, "cancelling an ended task: 409", (st, body))
    st, body, _ = call(url + "/v1/tasks/nosuch", "DELETE", ADMIN)
    check(st == 404, "cancelling an unknown task: 404", (st, body))
    st, body, _ = call(url + "/v1/tasks/nosuch", token=OBS)
    check(st == 404, "an unknown task: 404", (st, body))
    owners = dict(db_rows(db, "SELECT task_id, submitter FROM tasks"))
    check(owners.get("a0") == "http-alice" and owners.get("b0") == "http-bob",
          "tasks are recorded under their token's name", owners)


def bad_input(url, port):
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A,
                       json.dumps(task("bad0")) + "\n{not json\n")
    check(st == 400 and "line 2" in str(body), "a malformed line: 400 naming it", (st, body))
    check(not db_rows(db, "SELECT 1 FROM tasks WHERE task_id = 'bad0'"),
          "nothing of a malformed batch is taken")
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, "")
    check(st == 400, "an empty body: 400", (st, body))
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, "x" * (2 << 20))
    check(st == 413, "a body over the cap: 413", st)
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, json.dumps({"task_id": "w",
                       "language": "python", "prompt": "p", "workspace": {"dir": "/etc"}}))
    check(st == 400 and "workspace" in str(body), "a workspace task is refused over HTTP",
          (st, body))
    st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, json.dumps({"task_id": "x"}))
    check(st == 400 and body.get("errors"), "an invalid task: 400 with its error", (st, body))
    st, body, _ = call(url + "/v1/tasks?status=bogus", token=OBS)
    check(st == 400, "an unknown status filter: 400", (st, body))
    st, body, _ = call(url + "/v1/tasks?limit=-3", token=OBS)
    check(st == 400, "a negative limit: 400", (st, body))
    st, body, _ = call(url + "/no/such/path", token=ADMIN)
    check(st == 404, "an unknown path: 404", (st, body))
    st, body, _ = call(url + "/v1/nodes", "POST", ADMIN, "{}")
    check(st == 405, "a known path with another method: 405", (st, body))
    code = raw(port, b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
               + ADMIN.encode() + b"\r\n\r\n")
    check(code in (400, 404), "a path escaping the root: 400 or 404", code)
    st, body, _ = call(url + "/v1/tasks/..%2F..%2Fetc%2Fpasswd", token=ADMIN)
    check(st == 404 and "root:" not in str(body), "an encoded traversal is an unknown task",
          (st, body))
    code = raw(port, b"GARBAGE\r\n\r\n")
    check(code in (0, 400), "a malformed request line: 400 (or closed)", code)


def run_to_end(url):
    w = start(["worker", "--insecure", "--connect", ep, "--name", "w1", "--slots", "2"],
              os.path.join(work, "worker.log"))
    up("a worker joins", lambda: nodes(ep) == 1, w)

    def ended(tid):
        st, body, _ = call(url + "/v1/tasks/" + urllib.parse.quote(tid, safe=""), token=OBS)
        return body if st == 200 and body.get("status") not in ("queued", "running") else None
    r = wait_until(lambda: ended("obs/5"))
    check(r is not None and r.get("status") == "passed" and
          (r.get("result") or {}).get("status") == "passed",
          "the task submitted before the bad input passes, with its result", r)
    wait_until(lambda: ended("a3"))
    wait_until(lambda: ended("a1"))  # (its repair attempts may end after a3)
    st, body, _ = call(url + "/v1/tasks?status=failed", token=OBS)
    check(st == 200 and [t["task_id"] for t in body["tasks"]] == ["a1"],
          "GET /v1/tasks?status=failed lists the failed one", body)
    check(body["tasks"] and body["tasks"][0].get("end_cause") in ("failed_tests",
                                                                  "budget_attempts"),
          "... with why it ended (end_cause)", body)
    check(r is not None and r.get("end_cause") == "passed",
          "GET /v1/tasks/{id} says why the task ended", r)
    seen, after, pages = [], None, 0
    while pages < 10:
        q = "/v1/tasks?status=passed&limit=2" + ("&after=%d" % after if after else "")
        st, body, _ = call(url + q, token=OBS)
        seen += [t["task_id"] for t in body.get("tasks", [])]
        pages += 1
        after = body.get("next")
        if not after:
            break
    check(seen == ["obs/5", "a0", "a2", "a3"] and pages >= 2,
          "pages of two follow 'next' through the passed tasks", (seen, pages))
    st, body, _ = call(url + "/v1/tasks?order=newest&limit=1&status=passed", token=OBS)
    check(st == 200 and body["tasks"][0]["task_id"] == "a3", "order=newest: newest first", body)
    st, body, _ = call(url + "/v1/nodes", token=OBS)
    check(st == 200 and [n["name"] for n in body.get("nodes", [])] == ["w1"] and
          body["nodes"][0].get("slots") == 2, "GET /v1/nodes lists the worker and its slots",
          body)


def open_stream(port, types):
    s = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    s.sendall(b"GET /v1/events?types=" + types.encode() + b" HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + OBS.encode() + b"\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    check(b" 200 " in buf.split(b"\r\n")[0], "a stream of %s opens" % types, buf[:200])
    return s


def union_follows_streams(port):
    """The relay watches the union of the open streams' types (the hub builds those events
    only), narrowed when a stream closes (the server notices a closed stream when it writes
    to it: a keep-alive every 10 s at the latest; earlier tests' streams end so too)."""
    def watch_types():
        return (status(ep) or {}).get("watch_types")

    a = open_stream(port, "task.finished")
    b = open_stream(port, "node.")
    both = "task.finished,node.joined,node.lost,node.quarantined"
    got = wait_until(lambda: watch_types() == both)
    check(got, "two streams: the hub builds both streams' types", watch_types())
    b.close()
    got = wait_until(lambda: watch_types() == "task.finished")
    check(got, "a stream closed: the hub builds only the other's types", watch_types())
    a.close()


def events(url, port):
    """Reads the event stream while a task runs: its task.finished arrives."""
    s = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    try:
        s.sendall(b"GET /v1/events?since=all HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  b"Authorization: Bearer " + OBS.encode() + b"\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        check(b" 200 " in buf.split(b"\r\n")[0] and b"text/event-stream" in buf,
              "GET /v1/events answers an event stream", buf[:300])
        # The relay watches from serve's start; since=all replays what it holds.
        st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, json.dumps(task("ev1")))
        check(st == 201, "a task submitted while watching is taken", (st, body))
        found = False
        while not found:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("data: ") and '"task.finished"' in line and '"ev1"' in line:
                    found = True
        check(found, "the stream carries the task's task.finished event")
    finally:
        s.close()
    # ?types= keeps only those types (what the dashboard asks for).
    s = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    try:
        s.sendall(b"GET /v1/events?since=all&types=task.finished HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + OBS.encode() + b"\r\n\r\n")
        buf = b""
        while b'"ev1"' not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        data = [ln for ln in buf.decode(errors="replace").splitlines()
                if ln.startswith("data: ")]
        check(data and all('"type":"task.finished"' in ln for ln in data),
              "?types=task.finished streams task.finished events only", data[:5])
    finally:
        s.close()
    st, body, _ = call(url + "/v1/events?types=a%20b", token=OBS)
    check(st == 400, "a malformed ?types= is 400", (st, body))
    st, body, _ = call(url + "/v1/events?types=task.finished,task.bogus", token=OBS)
    check(st == 400 and "unknown event type 'task.bogus'" in str(body),
          "an unknown type in ?types= is 400, named", (st, body))
    st, body, _ = call(url + "/v1/events?types=" + ",".join(["node."] * 33), token=OBS)
    check(st == 400 and "more than 32" in str(body), "too many ?types= entries are 400", (st, body))
    union_follows_streams(port)
    st, body, _ = call(url + "/v1/events", token=None)
    check(st == 401, "the event stream needs a token", st)


def read_until(s, buf, done):
    """Reads the stream s onto buf until done(the data lines so far) holds; the lines."""
    while True:
        data = [ln[6:] for ln in buf.decode(errors="replace").split("\n")
                if ln.startswith("data: ")]
        if done(data):
            return buf, data
        chunk = s.recv(65536)
        if not chunk:
            return buf, data
        buf += chunk


def summary(url, port):
    """grid.summary: a stream that names it gets the tasks' course coalesced (their ids,
    statuses and the failure's reason, counts by status); a stream of every type does not."""
    named = open_stream(port, "grid.summary")
    every = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
    every.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  OBS.encode() + b"\r\n\r\n")
    try:
        # sum-long fails with a reason longer than a summary keeps, in 2-byte characters.
        long_task = {"task_id": "sum-long", "language": "python", "prompt": "p",
                     "entry_point": "f", "test": "assert f() == 1, '\u00e9' * 300\n",
                     "candidates": ["def f():\n    return 2\n"]}
        st, body, _ = call(url + "/v1/tasks", "POST", SUB_A,
                           jsonl([task("sum-ok"), task("sum-bad", passes=False), long_task]))
        check(st == 201, "three tasks for the summary are taken", (st, body))
        seen, ended, failures = {}, {}, {}

        def both_ended(data):
            for d in data[len(seen.get("_n", [])):]:
                ev = json.loads(d)
                check(ev.get("type") == "grid.summary", "the named stream gets only summaries",
                      ev.get("type"))
                for t in ev.get("tasks", []):
                    seen[t["task_id"]] = t
                for k, v in ev.get("ended", {}).items():
                    ended[k] = ended.get(k, 0) + v
                for f in ev.get("failures", []):
                    failures[f["task_id"]] = f
            seen["_n"] = data
            return all(seen.get(t, {}).get("status") in ("passed", "failed")
                       for t in ("sum-ok", "sum-bad", "sum-long"))
        read_until(named, b"", both_ended)
        check(seen.get("sum-ok", {}).get("status") == "passed" and
              seen.get("sum-bad", {}).get("status") == "failed",
              "the summaries carry both tasks' ids and ends", seen)
        check(ended.get("passed", 0) >= 1 and ended.get("failed", 0) >= 1,
              "the summaries count the ends by status", ended)
        check(failures.get("sum-bad", {}).get("reason"), "the failure is listed with its reason",
              failures)
        why = failures.get("sum-long", {}).get("reason") or ""
        check(200 < len(why.encode()) <= 240 and "\ufffd" not in why and why.endswith("\u00e9"),
              "a long reason is cut to 240 bytes, between characters", why)
        # A task after them: once its task.finished is on the stream of every type (and
        # printed by `gryphgen watch`, a watcher of every type of the scheduler itself), no
        # summary came before it on either (each delivers in order).
        out = os.path.join(work, "watch.out")
        watcher = subprocess.Popen([GRYPHGEN, "watch", "--insecure", "--connect", ep],
                                   stdout=open(out, "wb"), stderr=subprocess.DEVNULL,
                                   env=env())
        try:
            require(wait_until(lambda: (status(ep) or {}).get("watch_types") == "all" or
                               watcher.poll() is not None) and watcher.poll() is None,
                    "gryphgen watch watches every type", watcher.returncode)
            st, body, _ = call(url + "/v1/tasks", "POST", SUB_A, json.dumps(task("sum-last")))
            _, data = read_until(every, b"", lambda d: any('"sum-last"' in x and
                                                            '"task.finished"' in x for x in d))
            check(data and not any('"grid.summary"' in x for x in data),
                  "a stream of every type gets no summary", [x[:60] for x in data][-5:])
            printed = wait_until(lambda: (lambda t: t if '"sum-last"' in t and
                                          '"task.finished"' in t else None)(read_log(out)))
            check(printed and '"grid.summary"' not in printed,
                  "a ggp watcher of every type gets no summary", (printed or "")[-300:])
        finally:
            watcher.terminate()
            watcher.wait(timeout=GUARD_S)
    finally:
        named.close()
        every.close()


try:
    refusals()
    log = os.path.join(work, "serve.log")
    proc = start(["serve", "--insecure", "--bind", ep, "--db", db, "--http", "127.0.0.1:0",
                  "--http-tokens", tokens], log)
    url = api_url(log, proc)
    check(url is not None, "serve prints its HTTP API URL")
    if url:
        port = int(url.rsplit(":", 1)[1])
        # A slow client: a request that never arrives whole, held open throughout.
        slow = socket.create_connection(("127.0.0.1", port), timeout=GUARD_S)
        slow.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                     b"Authorization: Bearer " + SUB_A.encode() + b"\r\n\r\n{")
        access(url)
        submit_and_cancel(url)
        bad_input(url, port)
        run_to_end(url)
        events(url, port)
        summary(url, port)
        st, body, _ = call(url + "/healthz")
        check(st == 200, "after all that the grid is healthy", (st, body))
        try:  # the server closes the slow request at its deadline (15 s)
            got = slow.recv(4096)
            closed = got == b"" or got.startswith(b"HTTP/1.1 4")
        except socket.timeout:
            closed = False  # still open after the guard: a hang
        except OSError:
            closed = True  # reset
        check(closed, "the slow client's connection is closed by the server")
        check(not db_rows(db, "SELECT 1 FROM tasks WHERE task_id NOT IN ('obs/5', 'a0', 'a1', "
                              "'a2', 'a3', 'a4', 'b0', 'ev1', 'sum-ok', 'sum-bad', 'sum-long', "
                              "'sum-last')"),
              "nothing but the tasks sent whole was taken")
        slow.close()
    with open(log, errors="replace") as f:
        text = f.read()
    check(not any(t in text for t in (OBS, SUB_A, SUB_B, ADMIN)), "no token is ever logged")
finally:
    stop_all()
finish()
