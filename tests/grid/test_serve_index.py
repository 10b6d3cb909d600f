"""test_serve_index.py - `gryphgen serve --http` serves --db as GET /v1/search on loopback;
tasks neither retrieve from it nor teach it unless --http-learn is given (learning costs
every task a read of its result); with --http-learn tasks get context from the index and
their outcomes are learned into it (a passing solution becomes a searchable chunk)."""

import json
import os
import signal
import urllib.request

from gridtest import (GUARD_S, check, finish, free_port, gg, kill, start, stop_all, tmpdir,
                      up, wait_until)

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
db = os.path.join(work, "grid.db")
notes = os.path.join(work, "walrus.md")
with open(notes, "w") as f:
    f.write("# Walrus checksum\n\nThe walrus checksum adds the digits of a number.\n")


def search(url, q):
    with urllib.request.urlopen("%s?q=%s&k=10" % (url, q), timeout=GUARD_S) as r:
        return json.load(r)["results"]


try:
    p = gg(["index", "--db", db, notes])
    check(p.returncode == 0, "index the notes", p.stderr)

    def serve(name, extra):
        log = os.path.join(work, name + ".log")
        proc = start(["serve", "--insecure", "--bind", ep, "--db", db, "--local", "1", "--http",
                      "127.0.0.1:0"] + extra, log)
        found = []

        def have_url():
            with open(log) as f:
                found[:] = [line[line.index("http://"):].split()[0] for line in f
                            if "search on http://" in line and line.endswith("\n")]
            return bool(found)
        up("serve prints its search URL (%s)" % name, have_url, proc)
        return proc, (found or [None])[0], log

    def submit(task_id):
        path = os.path.join(work, task_id + ".json")
        with open(path, "w") as f:
            f.write(json.dumps({
                "task_id": task_id, "language": "python",
                "prompt": "walrus checksum of the digits", "entry_point": "walrus",
                "test": "def check(f):\n    assert f(123) == 6\n",
                "candidates": ["def walrus(n):\n    return sum(int(c) for c in str(n))\n"]}))
        p = gg(["submit", "--insecure", "--connect", ep, "--wait", path], timeout=GUARD_S)
        check(p.returncode == 0 and '"passed"' in p.stdout, "task %s passes" % task_id,
              p.stdout + p.stderr)
        res = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
        return (res.get("history") or [{}])[0].get("context_ids") or []

    def note_of(hits):
        return ([h for h in hits if h.get("source", "").endswith("walrus.md")] or [{}])[0]

    # --http alone: /v1/search reads --db; the grid neither retrieves from it nor learns.
    proc, url, log = serve("plain", [])
    hits = search(url, "walrus")
    check(note_of(hits), "the indexed note is served", hits)
    with open(log) as f:
        check("--http-learn" in f.read(), "serve says the index is only searched")
    check(url and not submit("walrus-plain"), "without --http-learn the attempt got no context")
    kill(proc, signal.SIGTERM)  # the learner, were there one, drains before serve exits

    # --http --http-learn: --db is the grid's index (as --index would make it).
    proc, url, log = serve("learn", ["--http-learn"])
    hits = search(url, "walrus")
    check(not note_of(hits).get("successes") and
          not [h for h in hits if h.get("source") == "task:walrus-plain"],
          "nothing was learned from the task run without --http-learn", hits)
    check(len(submit("walrus")) >= 1, "with --http-learn the attempt got context from the index")

    def learned():
        hits = search(url, "walrus")
        sol = [h for h in hits if h.get("source") == "task:walrus"]
        return note_of(hits).get("successes") == 1 and sol
    check(wait_until(learned), "the note is credited and the solution is indexed",
          search(url, "walrus"))

    p = gg(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(),
            "--http", "nonsense"])
    check(p.returncode == 2 and "--http" in p.stderr, "a bad --http value is a usage error",
          p.stderr)
    p = gg(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--db", db,
            "--http-learn"])
    check(p.returncode == 2 and "--http-learn" in p.stderr,
          "--http-learn without --http is a usage error", p.stderr)
finally:
    stop_all()
finish()
