"""test_log_json.py - `--log-format json`: every line gryphgen writes on stderr is one JSON
object with time (RFC 3339 UTC, milliseconds), level, component and message, plus task and
node where the line names them; control characters and bytes that are not UTF-8 (from a
task's stderr, from a file name) are escaped so each line still parses. Checked for run, eval,
serve and worker; a bad value is a usage error; text stays the default."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import (GRYPHGEN, GUARD_S, check, env, finish, free_port, gg, tmpdir,  # noqa: E402
                     wait_until)

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"error", "warn", "info", "debug"}


def parse_lines(raw, what):
    """Each line of raw (bytes) parsed as JSON; a check per line."""
    objs = []
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            text = line.decode("utf-8")  # strict: every byte must be UTF-8
            o = json.loads(text)
        except (UnicodeDecodeError, ValueError) as e:
            check(False, "%s: a line that is not a JSON object in UTF-8" % what,
                  "%r: %s" % (line[:300], e))
            continue
        ok = (isinstance(o, dict) and TIME.match(str(o.get("time", ""))) is not None
              and o.get("level") in LEVELS and isinstance(o.get("component"), str)
              and o.get("component") and isinstance(o.get("message"), str))
        check(ok, "%s: a line with time, level, component and message" % what, o)
        objs.append(o)
    check(objs, "%s: some lines" % what, raw[-2000:])
    return objs


def run_bytes(args, **kw):
    p = subprocess.run([GRYPHGEN.encode()] + args, capture_output=True, timeout=120, env=env(), **kw)
    check(b"Sanitizer" not in p.stderr and b"runtime error:" not in p.stderr,
          "no sanitizer report", p.stderr[-2000:])
    return p


def test_run(d):
    # a failing task whose stderr holds control characters and bytes that are not UTF-8,
    # with a task id that needs escaping
    code = ("import sys\ndef f():\n    sys.stderr.buffer.write(b'bad \\xff\\xfe ctl \\x01"
            "\\x1b[31m tab\\t end\\n')\n    sys.stderr.flush()\n    raise SystemExit(3)\n")
    task_id = 'log/\u00e9t\u00e9 "q"\\'
    task = {"task_id": task_id, "language": "python", "prompt": "p", "entry_point": "f",
            "stub": "", "test": "f()\n", "candidates": [code]}
    path = os.path.join(d, "t.json")
    with open(path, "w") as f:
        json.dump(task, f)
    p = run_bytes([b"run", b"--log-format", b"json", b"--log-level", b"debug",
                   b"--max-attempts", b"1", path.encode()])
    check(p.returncode == 0, "run --log-format json: exit 0", p.stderr[-2000:])
    objs = parse_lines(p.stderr, "run")
    ended = [o for o in objs if o.get("task") == task_id and "failed" in o["message"]]
    check(len(ended) == 1, "run: the task's end names the task", objs)
    if ended:
        check(ended[0]["level"] == "info" and ended[0]["component"] == "run",
              "run: its level and component", ended[0])
        check("\u0001\u001b[31m" in ended[0]["message"] and "\t end" in ended[0]["message"],
              "run: control characters kept as escapes", ended[0]["message"])
    check(any(o.get("node") == "local" for o in objs), "run: a line names the node", objs)
    # the command's own error, with a file name that is not UTF-8
    bad = os.path.join(d.encode(), b"no\xff\xfe.json")
    p = run_bytes([b"run", b"--log-format", b"json", bad])
    check(p.returncode == 2, "run of a missing file: exit 2", p.stderr)
    objs = parse_lines(p.stderr, "run (bad file name)")
    check(any(o["level"] == "error" and "\ufffd\ufffd" in o["message"] for o in objs),
          "run: bytes that are not UTF-8 become U+FFFD", objs)


def test_eval(d):
    p = run_bytes([b"eval", b"--log-format", b"json", b"--log-level", b"info", b"--quiet",
                   os.path.join(os.environ.get("GG_SOURCE_ROOT", "."), "examples",
                                "tasks.jsonl").encode()])
    check(p.returncode == 0, "eval --log-format json: exit 0", p.stderr[-2000:])
    objs = parse_lines(p.stderr, "eval")
    check(any(o["component"] == "eval" and o.get("task") for o in objs),
          "eval: lines name their tasks", objs[:5])


def test_serve_and_worker(d):
    ep = "tcp://127.0.0.1:%d" % free_port()
    logs = {}
    procs = {}
    for name, args in (("serve", ["serve", "--insecure", "--bind", ep]),
                       ("worker", ["worker", "--insecure", "--connect", ep, "--name", "w-j",
                                   "--slots", "1"])):
        logs[name] = os.path.join(d, name + ".log")
        with open(logs[name], "wb") as f:
            procs[name] = subprocess.Popen([GRYPHGEN] + args + ["--log-format", "json",
                                                                "--log-level", "info"],
                                           stdout=subprocess.DEVNULL, stderr=f, env=env())

    def read(name):
        with open(logs[name], "rb") as f:
            return f.read()

    def ended():  # a process that ended (its port taken, say): no use waiting on
        return any(p.poll() is not None for p in procs.values())

    try:
        check(wait_until(lambda: b"joined" in read("serve") or ended()) and
              b"joined" in read("serve"), "serve: the worker joined",
              read("serve")[-2000:] + read("worker")[-2000:])
        check(wait_until(lambda: b"connected" in read("worker") or ended()) and not ended(),
              "worker: connected", read("worker")[-2000:])
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(timeout=GUARD_S)
    served = parse_lines(read("serve"), "serve")
    check(any(o["level"] == "info" and o["message"].startswith("serving on") for o in served),
          "serve: its notice is an info line", served)
    check(any(o.get("node") == "w-j" and o["component"] == "serve" for o in served),
          "serve: the join names the node", served)
    worked = parse_lines(read("worker"), "worker")
    check(any(o.get("node") == "w-j" and o["component"] == "worker" for o in worked),
          "worker: lines name the node", worked)


def test_usage(d):
    p = gg(["run", "--log-format", "xml", "x.json"])
    check(p.returncode == 2 and "not one of text, json" in p.stderr,
          "a bad --log-format is a usage error", p.stderr)
    p = gg(["run", os.path.join(d, "missing.json")])
    check(p.returncode == 2 and p.stderr.startswith("gryphgen: "), "text stays the default",
          p.stderr)


if __name__ == "__main__":
    d = tmpdir()
    try:
        test_usage(d)
        test_run(d)
        test_eval(d)
        test_serve_and_worker(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    finish()
