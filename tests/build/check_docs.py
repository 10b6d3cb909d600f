"""check_docs.py - the documentation lists what the tree has. docs/events.md and the code
agree on the event types: every type the library emits (a string literal passed to
event_new() or ggi_sched_event_new() anywhere under lib/) has a "### `type`" section in the
doc, and every section names a type the code emits. examples/README.md names every file of examples/ (and of its folders, as ci/x.yml). It first
proves it can fail: a doc missing a type, and a doc naming a type the code does not emit,
must both be refused.
Usage: check_docs.py SOURCE_ROOT"""

import os
import re
import sys

TYPE = re.compile(r'"([a-z]+\.[a-z_]+)"')
CALL = re.compile(r"\b(?:ggi_sched_)?event_new\s*\((.*?)\)\s*[;:)]", re.S)
HEADING = re.compile(r"^### `([a-z]+\.[a-z_]+)`\s*$", re.M)


def emitted(lib_dir):
    """The event types of the code: literals among the arguments of event_new() calls
    (a call may choose between two, as dispatch does)."""
    found = {}
    for root, _, files in os.walk(lib_dir):
        for name in sorted(files):
            if not name.endswith(".c"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for call in CALL.finditer(text):
                if "const char *type" in call.group(1):  # the definition itself
                    continue
                for t in TYPE.findall(call.group(1)):
                    found.setdefault(t, os.path.relpath(path, os.path.dirname(lib_dir)))
    return found


def documented(doc_text):
    return set(HEADING.findall(doc_text))


def compare(code, doc):
    """The problems, as lines; empty when the two agree."""
    out = []
    for t in sorted(set(code) - doc):
        out.append("event '%s' is emitted (%s) but has no section in docs/events.md" %
                   (t, code[t]))
    for t in sorted(doc - set(code)):
        out.append("docs/events.md documents '%s', which the code never emits" % t)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GG_SOURCE_ROOT", ".")
    code = emitted(os.path.join(root, "lib"))
    with open(os.path.join(root, "docs", "events.md"), encoding="utf-8") as f:
        doc_text = f.read()
    doc = documented(doc_text)
    failed = 0

    # The checker can fail: a type taken out of the doc, and one added that nobody emits.
    if len(code) < 5 or "task.finished" not in code:
        print("FAIL: found only %d emitted types in lib/: %s" % (len(code), sorted(code)))
        failed = 1
    missing = HEADING.sub(lambda m: "" if m.group(1) == "task.finished" else m.group(0),
                          doc_text)
    if not any("task.finished" in p for p in compare(code, documented(missing))):
        print("FAIL: selftest: a doc without task.finished was not refused")
        failed = 1
    if not any("no.such" in p for p in compare(code, doc | {"no.such"})):
        print("FAIL: selftest: a doc naming an unknown type was not refused")
        failed = 1

    for problem in compare(code, doc):
        print("FAIL: " + problem)
        failed = 1

    examples = os.path.join(root, "examples")
    with open(os.path.join(examples, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    files = sorted(os.path.relpath(os.path.join(d, n), examples)
                   for d, _, names in os.walk(examples) for n in names
                   if os.path.join(d, n) != os.path.join(examples, "README.md"))
    for name in files:
        if "`%s`" % name not in readme:
            print("FAIL: examples/%s is not described in examples/README.md" % name)
            failed = 1
    for name in re.findall(r"^- `([^`]+)`", readme, re.M):
        if name not in files:
            print("FAIL: examples/README.md describes %s, which examples/ does not hold" % name)
            failed = 1

    if not failed:
        print("ok: %d event types, each emitted and documented: %s; %d examples described" %
              (len(code), ", ".join(sorted(code)), len(files)))
    sys.exit(failed)


main()
