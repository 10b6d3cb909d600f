"""test_requires.py - a task's "requires" (issue 18) through `gryphgen eval` without a grid:
a task requiring a library this machine has runs (an npm package on GRYPHGEN_NODE_PATH, made
here); one requiring a library it lacks ends before its first attempt with a reason naming
that library; a bad "requires" is a bad line naming the field; `doctor --json` lists what the
machine has."""

import json
import os
import shutil

from clitest import check, finish, gg, read_jsonl, tmpdir

work = tmpdir()
node_path = os.path.join(work, "node_modules")
os.makedirs(os.path.join(node_path, "gg-fake-pkg"))
os.environ["GRYPHGEN_NODE_PATH"] = node_path


def task(tid, requires):
    return {"task_id": tid, "language": "python", "prompt": "one", "stub": "def f():\n",
            "canonical_solution": "    return 1\n", "entry_point": "f",
            "test": "assert f() == 1\n", "requires": requires}


path = os.path.join(work, "tasks.jsonl")
res = os.path.join(work, "results.jsonl")
with open(path, "w") as f:
    f.write(json.dumps(task("have", ["npm:gg-fake-pkg"])) + "\n")
    f.write(json.dumps(task("lack", ["npm:gg-fake-pkg", "rust:gg-no-such-crate"])) + "\n")
    f.write(json.dumps(task("bad", "npm:gg-fake-pkg")) + "\n")
    f.write(json.dumps(task("ecosystem", ["pip:numpy"])) + "\n")
p = gg(["eval", "--generator", "reference", "--quiet", "--results", res, path])
results = {r["task_id"]: r for r in read_jsonl(res)}
check(results.get("have", {}).get("status") == "passed",
      "a task requiring a library this machine has passes", p.stdout + p.stderr)
lack = results.get("lack", {})
check(lack.get("status") == "error" and lack.get("attempts") == 0,
      "a task requiring a library nobody has ends before its first attempt", lack)
check("no worker has rust:gg-no-such-crate" in (lack.get("reason") or ""),
      "its reason names the library missing", lack.get("reason"))
check("(bad lines: 2)" in p.stdout and "field 'requires' must be an array" in p.stderr,
      "a 'requires' that is no array is a bad line naming the field", p.stdout + p.stderr)
check("field 'requires' entry 'pip:numpy' has an unknown ecosystem" in p.stderr,
      "an unknown ecosystem is a bad line naming it", p.stderr)

d = gg(["doctor", "--json"])
deps = json.loads(d.stdout).get("deps") if d.stdout.strip().startswith("{") else None
check(isinstance(deps, list) and "npm:gg-fake-pkg" in deps,
      "doctor --json lists the libraries found", d.stdout[-2000:])

shutil.rmtree(work, ignore_errors=True)
finish()
