"""test_ws_overlay.py - attempts' copies through `gryphgen eval` (docs/tasks.md, "What an
attempt's copy costs"): a test command that writes into a tracked file in place passes under
each isolation level and the base (the cache's tree and the overlay's lower layer) is the same
afterwards; a patch that deletes and renames files (the result's patch is the diff against the
base, and the job sees the tree the answer made); a base holding symbolic links that point
outside (kept as links, an answer through one refused); a test command that writes into the
lower layer's real path fails to and changes nothing; GRYPHGEN_WS_COPY=full and an unknown
value still pass. Where no overlay can be mounted (not root) the same tasks must pass on
full copies, and the overlay's own checks are skipped with a note."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import check, finish, gg, read_jsonl, tmpdir  # noqa: E402

work = tmpdir()
root = os.path.join(work, "wsroot")
os.environ["GRYPHGEN_WS_ROOT"] = root
os.environ.pop("GRYPHGEN_WS_COPY", None)
is_root = os.geteuid() == 0


def rmtree(top):
    """Removes a tree holding read-only directories (the cache's bases)."""
    for d, dirs, _ in os.walk(top):
        for name in dirs:
            try:
                os.chmod(os.path.join(d, name), 0o755)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def run(tasks, name, *args, **extra_env):
    """Runs tasks with gryphgen eval; returns {task_id: result row} and the stderr."""
    path = os.path.join(work, name + ".jsonl")
    with open(path, "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    res = os.path.join(work, name + ".results")
    saved = {k: os.environ.get(k) for k in extra_env}
    os.environ.update(extra_env)
    try:
        p = gg(["eval", "--results", res] + list(args) + [path], timeout=300)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    rows = {r.get("task_id"): r for r in read_jsonl(res)} if os.path.exists(res) else {}
    return rows, p.stderr


def files_of(top):
    """{relative path: content or link target} of a tree, without following links."""
    out = {}
    for d, dirs, files in os.walk(top):
        for n in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


def bases():
    """The trees a job must never change: the cache's bases and the overlays' lower layers."""
    out = {}
    for sub in ("cache/trees", "lower"):
        top = os.path.join(root, sub)
        for n in sorted(os.listdir(top)) if os.path.isdir(top) else []:
            if not n.startswith("."):
                out[sub + "/" + n] = files_of(os.path.join(top, n))
    return out


try:
    # A directory workspace with a symbolic link to outside and one that climbs out.
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "pkg"))
    outside = os.path.join(work, "outside")
    os.makedirs(outside)
    with open(os.path.join(outside, "secret.txt"), "w") as f:
        f.write("outside\n")
    for rel, text in {"v.txt": "0\n", "pkg/old.txt": "old\n", "pkg/gone.txt": "bye\n",
                      "keep.txt": "k\n"}.items():
        with open(os.path.join(src, rel), "w") as f:
            f.write(text)
    os.symlink(outside, os.path.join(src, "out"))
    os.symlink("../outside", os.path.join(src, "up"))

    in_place = ("echo x >> v.txt && [ \"$(cat v.txt)\" = \"$(printf '0\\nx')\" ] && "
                "echo y > keep.txt && mkdir -p made && echo z > made/f && "
                "[ \"$(cat pkg/new.txt)\" = old ] && [ ! -e pkg/old.txt ] && "
                "[ ! -e pkg/gone.txt ] && [ -L out ] || { echo 'not ok 1 - in place'; exit 1; }")
    answer = ("diff --git a/pkg/old.txt b/pkg/new.txt\nsimilarity index 100%\n"
              "rename from pkg/old.txt\nrename to pkg/new.txt\n"
              "diff --git a/pkg/gone.txt b/pkg/gone.txt\ndeleted file mode 100644\n"
              "--- a/pkg/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n")
    base_task = {"language": "python", "workspace": {"dir": src}, "test_command": in_place,
                 "candidates": [answer]}

    levels = [("default", [])] + [(lv, ["--isolation", lv])
                                  for lv in ("none", "rlimits", "namespaces")]
    before = None
    for level, args in levels:
        rows, err = run([dict(base_task, task_id="ip-" + level)], "ip-" + level, *args)
        r = rows.get("ip-" + level, {})
        if level == "namespaces" and r.get("status") == "error" and \
                "namespaces" in (r.get("reason") or "") + err:
            print("note: no namespace sandbox here; that level is not checked")
            continue
        check(r.get("status") == "passed",
              "%s: a test writes a tracked file in place, sees the deletion and the rename"
              % level, r.get("reason") or err[-2000:])
        patch = r.get("patch") or ""
        check("rename from pkg/old.txt" in patch or
              ("deleted file mode" in patch and "+++ b/pkg/new.txt" in patch),
              "%s: the patch says pkg/old.txt became pkg/new.txt" % level, patch)
        check("--- a/pkg/gone.txt" in patch and "+++ /dev/null" in patch,
              "%s: the patch deletes pkg/gone.txt" % level, patch)
        check("v.txt" not in patch and "made/f" not in patch,
              "%s: what the tests wrote is not in the patch" % level, patch)
        now = bases()
        if before is None:
            before = now
        check(now == before and any(k.startswith("cache/trees/") for k in now),
              "%s: the bases are as they were" % level, sorted(now))
        check(files_of(src)["v.txt"] == b"0\n", "%s: the source is as it was" % level)
    lowers = [k for k in (before or {}) if k.startswith("lower/")]
    check(lowers if is_root else not lowers,
          "overlay copies (a lower layer made once) where this process can mount one",
          sorted(before or {}))
    check(not os.listdir(os.path.join(root, "attempts")),
          "no copy is left behind", os.listdir(os.path.join(root, "attempts")))

    # An answer through a link to outside is refused; nothing lands outside.
    rows, _ = run([dict(base_task, task_id="via-link", test_command="true",
                        candidates=["--- a/out/secret.txt\n+++ b/out/secret.txt\n"
                                    "@@ -1 +1 @@\n-outside\n+owned\n",
                                    "--- /dev/null\n+++ b/up/x.txt\n@@ -0,0 +1 @@\n+x\n"])],
                  "via-link")
    r = rows.get("via-link", {})
    check(r.get("status") == "failed" and
          all("patch does not apply" in (h.get("reason") or "") for h in r.get("history", [])),
          "answers through links to outside are refused", r.get("history"))
    check(files_of(outside) == {"secret.txt": b"outside\n"}, "nothing was written outside",
          files_of(outside))

    # A test command that writes into the lower layer's real path: it cannot, at any level.
    if lowers:
        lower = os.path.join(root, lowers[0])
        hack = ("if echo hacked > %s/v.txt 2>/dev/null; then echo 'not ok 1 - wrote it'; "
                "exit 1; fi; if rm %s/keep.txt 2>/dev/null; then echo 'not ok 2 - removed "
                "from it'; exit 1; fi; echo x >> v.txt" % (lower, lower))
        for level, args in levels:
            rows, err = run([dict(base_task, task_id="hack-" + level, test_command=hack)],
                            "hack-" + level, *args)
            r = rows.get("hack-" + level, {})
            if level == "namespaces" and r.get("status") == "error":
                continue
            check(r.get("status") == "passed",
                  "%s: the lower layer's real path cannot be written" % level,
                  r.get("reason") or err[-2000:])
        check(bases() == before, "the lower layer and the base are as they were",
              sorted(bases()))
    else:
        print("note: no overlay here (not root?); the lower layer is not checked")

    # The fallback: full copies asked for, and an unknown value (the default, said in the
    # log) still pass the same task.
    rows, err = run([dict(base_task, task_id="full")], "full", GRYPHGEN_WS_COPY="full")
    check(rows.get("full", {}).get("status") == "passed",
          "GRYPHGEN_WS_COPY=full: the task passes on a full copy",
          rows.get("full", {}).get("reason") or err[-2000:])
    rows, err = run([dict(base_task, task_id="odd")], "odd", "--log-level", "info",
                    GRYPHGEN_WS_COPY="sideways")
    check(rows.get("odd", {}).get("status") == "passed" and "sideways" in err,
          "an unknown GRYPHGEN_WS_COPY is said in the log and the default used",
          err[-2000:])
finally:
    rmtree(work)
finish()
