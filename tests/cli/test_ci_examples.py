"""test_ci_examples.py - the CI workflow files of examples/ci/ (docs/ci.md) do what they say:
the `gryphgen ...` lines of each file (a step's `run:` block, a `script:` item; a line ending
in a backslash goes on) are run as they are, in the file's order, in a fresh folder holding
examples/tasks.jsonl as tasks.jsonl; each must exit 0, and every artifact the file promises
(upload-artifact's `path:`, `report_paths:`, GitLab's `junit:` and `paths:`) must then exist.
The JUnit report must parse with one testcase per task, the summary must say the gate was
met, and the delivery job's run must resume from the first run's database without making an
attempt again. When PyYAML is there, each file must also parse as YAML and hold each command
it was found to hold."""

import json
import os
import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET

from clitest import EXAMPLES, GRYPHGEN, SOURCE_ROOT, check, env, finish, summary, tmpdir

CI_DIR = os.path.join(SOURCE_ROOT, "examples", "ci")
FILES = ["github-actions.yml", "gitlab-ci.yml"]


def logical_lines(text):
    """The file's lines with backslash continuations joined."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        out.append(cur + line if cur else line)
        cur = ""
    if cur:
        out.append(cur)
    return out


def commands(text):
    """The gryphgen command lines, in order."""
    found = []
    for line in logical_lines(text):
        s = line.strip()
        for prefix in ("- ", "run: "):
            if s.startswith(prefix):
                s = s[len(prefix):].strip()
        if s.startswith("gryphgen "):
            found.append(" ".join(s.split()))
    return found


def artifacts(text):
    """The paths the file promises to keep."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(report_paths|junit|path|paths):\s*(.*?)\s*$", line)
        if not m:
            continue
        indent, key, value = len(m.group(1)), m.group(2), m.group(3)
        if value not in ("", "|"):
            if key != "paths" and value != ".":  # ".": where download-artifact unpacks
                found.append(value)  # one path
            continue
        for nxt in lines[i + 1:]:  # the block below the key: "path: |" lines, "paths:" items
            if not nxt.strip():
                continue
            depth = len(nxt) - len(nxt.lstrip())
            item = nxt.strip()
            if key == "paths" and item.startswith("- ") and depth >= indent:
                found.append(item[2:].strip())
            elif key == "path" and depth > indent:
                found.append(item)
            else:
                break
    return found


def yaml_strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from yaml_strings(k)
            yield from yaml_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from yaml_strings(v)
    elif isinstance(node, str):
        yield " ".join(node.replace("\\\n", " ").split())


try:
    import yaml
except ImportError:
    yaml = None

for name in FILES:
    path = os.path.join(CI_DIR, name)
    check(os.path.exists(path), "%s exists" % name)
    if not os.path.exists(path):
        continue
    with open(path) as f:
        text = f.read()
    cmds = commands(text)
    promised = artifacts(text)
    check(len(cmds) >= 2 and any("--junit" in c for c in cmds) and
          any("--fail-under" in c for c in cmds) and any("--patches" in c for c in cmds) and
          any("--deliver branch" in c for c in cmds),
          "%s: runs eval with --junit, --fail-under, --patches and --deliver" % name, cmds)
    check("reports/junit.xml" in promised and "patches/" in promised,
          "%s: keeps the JUnit report and the patches" % name, promised)
    check(re.search(r"git push .*refs/heads/gryphgen/\*", " ".join(text.split())) is not None,
          "%s: pushes the delivered branches" % name)
    if yaml is not None:
        try:
            doc = yaml.safe_load(text)
            strings = list(yaml_strings(doc))
            for c in cmds:
                check(any(c in s for s in strings), "%s: YAML holds %r" % (name, c[:60]))
        except yaml.YAMLError as e:
            check(False, "%s is valid YAML" % name, str(e))

    work = tmpdir()
    try:
        shutil.copy(EXAMPLES, os.path.join(work, "tasks.jsonl"))
        outputs = []
        for c in cmds:
            argv = shlex.split(c)
            argv[0] = GRYPHGEN
            p = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=300,
                               env=env(GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@example.org"))
            check(p.returncode == 0, "%s: `%s` exits 0" % (name, c),
                  "exit %d: %s" % (p.returncode, p.stderr[-2000:]))
            outputs.append(p.stdout)
        for a in promised:
            full = os.path.join(work, a)
            ok = os.path.isdir(full) if a.endswith("/") else os.path.isfile(full)
            check(ok, "%s: the promised artifact %s exists" % (name, a), sorted(os.listdir(work)))
        jx = os.path.join(work, "reports", "junit.xml")
        if os.path.isfile(jx):
            cases = list(ET.parse(jx).getroot().iter("testcase"))
            check(len(cases) == 12, "%s: JUnit has the 12 example tasks" % name, len(cases))
        sj = os.path.join(work, "reports", "summary.json")
        if os.path.isfile(sj):
            with open(sj) as f:
                sm = json.load(f)
            check(sm.get("total") == 12 and sm.get("fail_under_met") is True,
                  "%s: the summary says the gate was met" % name, sm)
        if len(outputs) >= 2:
            s = summary(outputs[-1])
            check(s.get("tasks") == 12 and s.get("attempts this run") == 0,
                  "%s: the delivery run resumes from the database, no attempt again" % name,
                  outputs[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)

finish()
