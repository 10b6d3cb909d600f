"""test_index.py - gryphgen index and gryphgen search end to end: a first run chunks a tree
(hidden entries skipped), a second run reports nothing new, a changed file is re-chunked (its
unchanged function keeps its chunk, the stale one goes), a deleted file's chunks are gone
while a file indexed from outside the tree stays, and search prints ranked chunks (text and
--json) and refuses bad input: no index, an empty query, a bad -k."""

import json
import os
import re
import shutil

from clitest import check, finish, gg, tmpdir

work = tmpdir()
db = os.path.join(work, "index.db")
src = os.path.join(work, "src")
os.makedirs(os.path.join(src, "sub"))


def write(rel, text):
    path = os.path.join(src, rel) if not os.path.isabs(rel) else rel
    with open(path, "w") as f:
        f.write(text)
    return path


PY = ("import os\n\n\n"
      "def parse_config(text):\n    return text.split(',')\n\n\n"
      "def save_config(path, items):\n    with open(path, 'w') as f:\n"
      "        f.write(','.join(items))\n")
write("conf.py", PY)
write("notes.md", "# Quokka\n\nThe quokka lives on Rottnest island.\n\n"
      "# Wombat\n\nThe wombat digs burrows with its claws.\n")
write("sub/ring.c", "int ring_push(int *buf, int n, int v)\n{\n    buf[n] = v;\n"
      "    return n + 1;\n}\n")
write(".hidden.txt", "quokka secrets never indexed\n")
outside = os.path.join(work, "outside.txt")
write(outside, "a pangolin note kept outside the tree\n")


def index(*paths):
    p = gg(["index", "--db", db] + list(paths))
    m = re.search(r"indexed (\d+) files \((\d+) unchanged, (\d+) skipped, (\d+) failed\): "
                  r"(\d+) chunks added, (\d+) unchanged, (\d+) removed; (\d+) files gone",
                  p.stdout)
    keys = ["files", "unchanged_files", "skipped", "failed", "added", "unchanged", "removed",
            "gone"]
    return p, dict(zip(keys, map(int, m.groups()))) if m else None


def search(*args):
    return gg(["search", "--db", db] + list(args))


def sources(query, k=10):
    p = search("--json", "-k", str(k), query)
    try:
        return [(r["source"], r["title"]) for r in json.loads(p.stdout)["results"]]
    except (ValueError, KeyError):
        return None


# --- first run, then a second one that finds nothing new ----------------------------------
p, r = index(outside)
check(p.returncode == 0 and r and r["files"] == 1, "index a file outside the tree", p.stdout)
p, r = index(src)
check(p.returncode == 0 and r is not None, "index the tree", (p.stdout, p.stderr))
check(r and r["files"] == 3 and r["added"] >= 6 and r["removed"] == 0 and r["gone"] == 0,
      "three files (the hidden one skipped) chunked", r)
p, r2 = index(src)
check(p.returncode == 0 and r2 and r2["files"] == 3 and r2["unchanged_files"] == 3 and
      r2["added"] == 0 and r2["removed"] == 0 and r2["gone"] == 0 and
      r2["unchanged"] == r["added"], "a second run reports nothing new", (r, r2))
check(sources("quokka secrets") is not None and
      all(not s.endswith(".hidden.txt") for s, _ in sources("quokka secrets")),
      "hidden files are not indexed")

# --- search: ranked text output and --json ------------------------------------------------
p = search("-k", "3", "wombat", "burrows")
lines = [l for l in p.stdout.splitlines() if re.match(r"^\d+\. ", l)]
check(p.returncode == 0 and lines and "notes.md:" in lines[0] and "# Wombat" in lines[0],
      "the wombat section ranks first", p.stdout)
scores = [float(l.split()[1]) for l in lines]
check(scores == sorted(scores, reverse=True), "scores are in decreasing order", p.stdout)
check(len(lines) <= 3, "-k bounds the results", p.stdout)
p = search("--json", "-k", "1", "parse_config")
res = json.loads(p.stdout)["results"] if p.returncode == 0 else []
check(len(res) == 1 and res[0]["source"].endswith("conf.py") and
      res[0]["title"] == "def parse_config", "--json: the function's chunk", p.stdout)
old_save = [x for x in json.loads(search("--json", "save_config").stdout)["results"]
            if x["title"] == "def save_config"]
p = search("zzzqqq")
check(p.returncode == 0 and "no results" in p.stdout, "no match: 'no results'", p.stdout)

# --- a changed file is re-chunked ---------------------------------------------------------
write("conf.py", PY.replace("return text.split(',')", "return [t.strip() for t in text.split(';')]"))
p, r = index(src)
check(p.returncode == 0 and r and r["added"] == 1 and r["removed"] == 1 and r["gone"] == 0 and
      r["unchanged_files"] == 2, "only the changed function is re-chunked", (p.stdout, r))
res = json.loads(search("--json", "parse_config").stdout)["results"]
check(any("strip()" in x["text"] for x in res) and
      not any("split(',')" in x["text"] for x in res), "the new text replaces the old", res)
new_save = [x for x in json.loads(search("--json", "save_config").stdout)["results"]
            if x["title"] == "def save_config"]
check(old_save and new_save and old_save[0]["id"] == new_save[0]["id"],
      "the unchanged function keeps its chunk", (old_save, new_save))

# --- a deleted file's chunks are gone; a file outside the tree stays ----------------------
check(any(s.endswith("ring.c") for s, _ in sources("ring_push")), "ring.c is indexed")
os.remove(os.path.join(src, "sub", "ring.c"))
p, r = index(src)
check(p.returncode == 0 and r and r["gone"] == 1 and r["removed"] >= 1 and r["files"] == 2,
      "the deleted file is dropped", (p.stdout, r))
check(sources("ring_push") == [], "its chunks are gone", sources("ring_push"))
check(any(s == os.path.realpath(outside) for s, _ in sources("pangolin")),
      "a file indexed from outside the tree stays")
p, r = index(src)
check(p.returncode == 0 and r and r["gone"] == 0 and r["added"] == 0,
      "nothing more to drop", p.stdout)
# A whole directory removed: its files go too; a file given alone is never pruned.
shutil.rmtree(os.path.join(src, "sub"))
p, r = index(os.path.join(src, "notes.md"))
check(p.returncode == 0 and r and r["gone"] == 0, "a file argument prunes nothing", p.stdout)

# --- bad input ----------------------------------------------------------------------------
p = gg(["search", "--db", os.path.join(work, "none.db"), "quokka"])
check(p.returncode == 2 and "no index" in p.stderr, "search without an index", p.stderr)
check(not os.path.exists(os.path.join(work, "none.db")), "and it creates none")
for q in ([""], ["   "], []):
    p = search(*q)
    check(p.returncode == 2 and ("empty" in p.stderr or "what should it look for" in p.stderr),
          "empty query %r is refused" % (q,), p.stderr)
for k in ("0", "101", "abc", "-3"):
    p = search("-k", k, "quokka")
    check(p.returncode == 2 and "-k" in p.stderr, "bad -k %s is refused" % k, p.stderr)
p = gg(["index", "--db", db, os.path.join(work, "missing")])
check(p.returncode == 2 and "missing" in p.stderr, "index of a missing path", p.stderr)
p = gg(["index", "--db", db])
check(p.returncode == 2, "index without a path", p.stderr)

shutil.rmtree(work, ignore_errors=True)
finish()
