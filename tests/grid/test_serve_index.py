"""test_serve_index.py - `gryphgen serve --index --http`: tasks get context from the index,
their outcomes are learned into it (a passing solution becomes a searchable chunk), and the
index is served as GET /v1/search on loopback."""

import json
import os
import urllib.request

from gridtest import (GUARD_S, check, finish, free_port, gg, start, stop_all, tmpdir,
                      wait_until)

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
    log = os.path.join(work, "serve.log")
    start(["serve", "--insecure", "--bind", ep, "--db", db, "--local", "1", "--http", "127.0.0.1:0"], log)
    url = None

    def have_url():
        global url
        with open(log) as f:
            for line in f:
                if "search on http://" in line:
                    url = line[line.index("http://"):].split()[0]
        return url is not None
    check(wait_until(have_url), "serve prints its search URL")
    hits = search(url, "walrus")
    check(any(h.get("source", "").endswith("walrus.md") for h in hits),
          "the indexed note is served", hits)

    task = json.dumps({"task_id": "walrus", "language": "python",
                       "prompt": "walrus checksum of the digits", "entry_point": "walrus",
                       "test": "def check(f):\n    assert f(123) == 6\n",
                       "candidates": ["def walrus(n):\n    return sum(int(c) for c in str(n))\n"]})
    task_file = os.path.join(work, "walrus.json")
    with open(task_file, "w") as f:
        f.write(task)
    p = gg(["submit", "--insecure", "--connect", ep, "--wait", task_file], timeout=GUARD_S)
    check(p.returncode == 0 and '"passed"' in p.stdout, "the task passes", p.stdout + p.stderr)
    res = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    used = (res.get("history") or [{}])[0].get("context_ids") or []
    check(len(used) >= 1, "the attempt got context from the index", res)

    def learned():
        hits = search(url, "walrus")
        note = [h for h in hits if h.get("source", "").endswith("walrus.md")]
        sol = [h for h in hits if h.get("source") == "task:walrus"]
        return note and note[0].get("successes") == 1 and sol
    check(wait_until(learned), "the note is credited and the solution is indexed",
          search(url, "walrus"))

    p = gg(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(),
            "--http", "nonsense"])
    check(p.returncode == 2 and "--http" in p.stderr, "a bad --http value is a usage error",
          p.stderr)
finally:
    stop_all()
finish()
