"""clitest.py - what the gryphgen command's test scripts share: running the command,
reading its summary, and counting checks. Each script gets the built gryphgen as its first
argument and the source root in $GG_SOURCE_ROOT, and ends with "N passed, N failed"."""

import json
import os
import re
import subprocess
import sys
import tempfile

GRYPHGEN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "gryphgen"
SOURCE_ROOT = os.environ.get("GG_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(os.path.dirname(
                                 os.path.abspath(__file__)))))
EXAMPLES = os.path.join(SOURCE_ROOT, "examples", "tasks.jsonl")

_passed = 0
_failed = 0


def check(cond, what, detail=None):
    """Counts one check; prints what failed (and detail) when cond is false."""
    global _passed, _failed
    if cond:
        _passed += 1
    else:
        _failed += 1
        print("FAIL: %s" % what, file=sys.stderr)
        if detail is not None:
            text = detail if isinstance(detail, str) else repr(detail)
            print("      " + text[:3000].replace("\n", "\n      "), file=sys.stderr)
    return cond


def finish():
    """Prints the last line and exits: non-zero when a check failed or none ran."""
    print("%d passed, %d failed" % (_passed, _failed))
    sys.exit(1 if _failed or not _passed else 0)


def skip(why):
    print("skipped: " + why)
    sys.exit(77)


def env(**extra):
    e = dict(os.environ)
    e.setdefault("GRYPHGEN_PYTHON", "/usr/bin/python3")
    e.update(extra)
    return e


def no_sanitizer_report(stderr, what="gryphgen"):
    """Fails when a sanitizer build of gryphgen reported an error on stderr."""
    if "Sanitizer" in stderr or "runtime error:" in stderr:
        check(False, "%s: a sanitizer reported an error" % what, stderr[-3000:])


def gg(args, stdin=None, input=None, timeout=120, **kw):
    """Runs gryphgen with args; returns the CompletedProcess (text mode)."""
    p = subprocess.run([GRYPHGEN] + list(args), input=input, stdin=stdin,
                       capture_output=True, text=True, timeout=timeout, env=env(), **kw)
    no_sanitizer_report(p.stderr, "gryphgen " + " ".join(str(a) for a in args)[:200])
    return p


def summary(stdout):
    """The summary lines of eval as a dict of ints/floats (keys as printed)."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^([a-z/ ]+):\s+([0-9.]+)(?: \((?:bad lines|this run): ([0-9]+)\))?",
                     line)
        if m:
            out[m.group(1)] = float(m.group(2)) if "." in m.group(2) else int(m.group(2))
            if m.group(3) is not None:
                key = "bad lines" if m.group(1) == "errors" else "attempts this run"
                out[key] = int(m.group(3))
    return out


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tmpdir():
    return tempfile.mkdtemp(prefix="gg-cli-test-")
