"""test_remote_index.py - a remote worker learns like a local one (issue 16): `gryphgen worker
--index-url` retrieves context from `gryphgen serve --index --http` (with its bearer token),
the attempts record the context they used and what they cited, and serve's learner credits
each attempt into the index exactly once. A worker without the token gets no context; bad
--index-url values are usage errors."""

import json
import os
import sqlite3

from gridtest import (GUARD_S, check, finish, free_port, gg, kill, nodes, read_log, start,
                      stop_all, tmpdir, up, wait_until)

TOKEN_VAR = "GG_TEST_INDEX_TOKEN"
os.environ[TOKEN_VAR] = "remote-index-token-0123456789"

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
idx = os.path.join(work, "index.db")
notes = os.path.join(work, "walrus.md")
with open(notes, "w") as f:
    f.write("# Walrus constant\n\nThe walrus constant is 41. Tusk tables use it.\n")

# The stand-in model: trusts the first reference that states the constant, cites it, and
# writes down what it was given (one JSON line per request).
gen_log = os.path.join(work, "gen.jsonl")
gen = os.path.join(work, "gen.py")
with open(gen, "w") as f:
    f.write(r'''import json, re, sys
req = json.load(sys.stdin)
ctx = req.get("context") or []
with open(sys.argv[1], "a") as log:
    log.write(json.dumps({"task_id": req["task"]["task_id"],
                          "ids": [c.get("id") for c in ctx]}) + "\n")
for c in ctx:
    m = re.search(r"walrus constant is (\d+)", c.get("text") or "")
    if m:
        code = "# the walrus constant is %s\ndef walrus():\n    return %s\n" % (m[1], m[1])
        print(json.dumps({"code": code, "cited": [c["id"]]}))
        break
else:
    print("def walrus():\n    return None\n")
''')
generator = "command:/usr/bin/python3 %s %s" % (gen, gen_log)


def task_file(task_id):
    path = os.path.join(work, task_id + ".json")
    with open(path, "w") as f:
        json.dump({"task_id": task_id, "language": "python",
                   "prompt": "Return the walrus constant.", "entry_point": "walrus",
                   "test": "def check(f):\n    assert f() == 41\n"}, f)
    return path


def submit(task_id):
    p = gg(["submit", "--insecure", "--connect", ep, "--wait", task_file(task_id)],
           timeout=GUARD_S)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        check(False, "submit %s prints its result" % task_id, p.stdout + p.stderr)
        return {}


def generator_saw():
    """The generator's requests so far: task id -> the context ids it got."""
    try:
        with open(gen_log) as f:
            return {r["task_id"]: r["ids"] for r in map(json.loads, f)}
    except OSError:
        return {}


def counts():
    """chunk id -> (successes, failures) overall, and summed over the per-kind rows."""
    con = sqlite3.connect(idx, timeout=GUARD_S)
    try:
        overall = {str(i): (s, fl) for i, s, fl in
                   con.execute("SELECT id, successes, failures FROM rag_chunks")}
        kinds = {str(i): (s, fl) for i, s, fl in con.execute(
            "SELECT chunk_id, SUM(successes), SUM(failures) FROM rag_usefulness "
            "GROUP BY chunk_id")}
        return overall, kinds
    finally:
        con.close()


try:
    # ---- usage errors ----
    base = ["worker", "--insecure", "--connect", "tcp://127.0.0.1:1"]
    for bad in ("ftp://127.0.0.1/v1/search", "nonsense", "", "http://", "http:///v1/search",
                "http://127.0.0.1:1/v1/search?q=a b"):
        p = gg(base + ["--index-url", bad])
        check(p.returncode == 2 and "--index-url" in p.stderr,
              "--index-url %r is a usage error" % bad, (p.returncode, p.stderr))
    p = gg(base + ["--index-url", "http://127.0.0.1:1", "--index-token-env", "GG_UNSET_VAR_X"])
    check(p.returncode == 2 and "GG_UNSET_VAR_X" in p.stderr,
          "an unset --index-token-env variable is a usage error", (p.returncode, p.stderr))
    p = gg(base + ["--index-token-env", TOKEN_VAR])
    check(p.returncode == 2 and "--index-url" in p.stderr,
          "--index-token-env without --index-url is a usage error", (p.returncode, p.stderr))
    p = gg(["worker", "--help"])
    check(p.returncode == 0 and "--index-url" in p.stdout and "--index-token-env" in p.stdout,
          "worker --help names --index-url and --index-token-env", p.stdout)
    p = gg(["help"])
    check("--index-url" in p.stdout, "gryphgen help names --index-url", p.stdout)

    # ---- the index, and serve with no local workers ----
    p = gg(["index", "--db", idx, notes])
    check(p.returncode == 0, "index the notes", p.stderr)
    before, before_kinds = counts()
    check(before and all(v == (0, 0) for v in before.values()) and not before_kinds,
          "the fresh index has learned nothing", (before, before_kinds))
    serve_log = os.path.join(work, "serve.log")
    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "grid.db"),
                   "--max-attempts", "1", "--index", idx, "--http", "127.0.0.1:0",
                   "--http-token-env", TOKEN_VAR], serve_log)

    def search_url():
        return next((line[line.index("http://"):].split()[0]
                     for line in read_log(serve_log).splitlines(True)
                     if "search on http://" in line and line.endswith("\n")), None)
    up("serve prints its search URL", search_url, serve)
    url = search_url()
    check(url is not None and url.endswith("/v1/search"), "the search URL ends in /v1/search",
          read_log(serve_log))

    # ---- a worker without the token: its searches are refused, its attempt has no context
    nolog = os.path.join(work, "worker-notoken.log")
    w = start(["worker", "--insecure", "--connect", ep, "--name", "notoken", "--slots", "1",
               "--generator", generator, "--index-url", url], nolog)
    up("the token-less worker joins", lambda: nodes(ep) == 1, serve, w)
    res = submit("walrus-0")
    check(res.get("status") == "failed" and
          not (res.get("history") or [{}])[0].get("context_ids"),
          "without the token the attempt gets no context and fails", res)
    check("401" in read_log(nolog),
          "the worker logs why retrieval failed", read_log(nolog))
    check(generator_saw().get("walrus-0") == [], "the generator got no context", generator_saw())
    kill(w, 15)
    check(w.returncode == 0, "the token-less worker stops cleanly on SIGTERM", w.returncode)
    check(wait_until(lambda: nodes(ep) == 0), "the token-less worker has left")

    # ---- the worker with the token (and serve's address alone: the route is implied):
    # context, citations, learning ----
    wlog = os.path.join(work, "worker.log")
    w = start(["worker", "--insecure", "--connect", ep, "--name", "remote", "--slots", "1",
               "--generator", generator, "--index-url", url[:-len("/v1/search")] + "/",
               "--index-token-env", TOKEN_VAR],
              wlog)
    up("the remote worker joins", lambda: nodes(ep) == 1, serve, w)
    tasks = ["walrus-1", "walrus-2", "walrus-3"]
    results = [submit(t) for t in tasks]
    expected = {}  # chunk id -> the successes the learner should have credited
    for t, res in zip(tasks, results):
        hist = res.get("history") or []
        rec = hist[0] if hist else {}
        check(res.get("status") == "passed" and len(hist) == 1,
              "%s passes on its one attempt" % t, res)
        check(rec.get("context_ids") and rec.get("context_kind"),
              "%s: the attempt record has context_ids and a context_kind" % t, rec)
        check(generator_saw().get(t) == rec.get("context_ids"),
              "%s: the generator got the recorded context" % t, (generator_saw(), rec))
        cited = rec.get("cited") or []
        check(len(cited) == 1 and cited[0] in (rec.get("context_ids") or []),
              "%s: the record has the one reference the generator cited" % t, rec)
        for c in cited:
            expected[c] = expected.get(c, 0) + 1
    note_ids = {i for i, v in before.items()}
    check(any(c in note_ids for c in expected), "the note was cited", (expected, note_ids))

    # Every attempt teaches the index once: the learner's feedback, nothing from the worker.
    def learned():
        overall, _ = counts()
        return all(overall.get(c, (0, 0))[0] >= n for c, n in expected.items())
    check(wait_until(learned), "serve's index learned from the remote attempts",
          (counts(), expected))
    stop_all()  # serve drains its learner before it exits: the counts are final
    overall, kinds = counts()
    for c, n in expected.items():
        check(overall.get(c) == (n, 0), "chunk %s: credited once per citing attempt (%d)" %
              (c, n), overall.get(c))
        # A passing task's solution is indexed as it ends (docs/retrieval.md), so a later task
        # may be given and cite it, depending on how fast the learner indexed it. Its chunks
        # start with one success in their kind's row (it passed its own task once); the note's
        # chunks start with none.
        prior = 0 if c in note_ids else 1
        check(kinds.get(c) == (n + prior, 0),
              "chunk %s: its kind row too, once per attempt (+%d as a solution)" % (c, prior),
              kinds.get(c))
    uncited = {c: v for c, v in overall.items() if c not in expected and v != (0, 0)}
    check(not uncited, "nothing else was credited or blamed (the failed attempt had no "
          "context)", uncited)
finally:
    stop_all()
finish()
