"""test_ci.py - eval's outputs for CI/CD on plain tasks (docs/ci.md): --junit (parsed with
xml.etree: one testcase per task, failures with the reason and the output's tail, errors,
bad lines, escaping of ids and of output that is not text), --summary-json (the same numbers
as the printed summary), --fail-under (met, missed, bad values), a task's own "deliver"
field (on a task without a workspace it is bad input; a malformed field is bad input too), and
both files after an interrupt holding what ended."""

import json
import os
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET

from clitest import (EXAMPLES, GATE_S, GRYPHGEN, check, ended_tasks, env, finish, gated_test,
                     gg, no_sanitizer_report, open_gate, starts, summary, tmpdir, wait_until,
                     write_jsonl)

work = tmpdir()


def write_set(name, items, raw_lines=()):
    return write_jsonl(os.path.join(work, name), items, raw_lines)


def py_task(task_id, body, test, **extra):
    t = {"task_id": task_id, "language": "python", "prompt": "f", "stub": "def f():\n",
         "entry_point": "f", "test": test, "candidates": [body]}
    t.update(extra)
    return t


PASS_TEST = "def check(candidate):\n    assert candidate() == 1\n"
# A failing test whose stderr holds markup, a CDATA end, control characters and bytes that
# are not UTF-8, after a stdout far over the tail's size.
NASTY_TEST = (
    "import sys\n"
    "def check(candidate):\n"
    "    sys.stdout.write('o' * 9000 + 'STDOUT-END\\n')\n"
    "    sys.stdout.flush()\n"
    "    sys.stderr.write('x' * 6000 + '\\n')\n"
    "    sys.stderr.flush()\n"
    "    sys.stderr.buffer.write(b'bad \\xff\\xfe utf8 \\xc3( ctl \\x01\\x1b[31m ]]> <&> "
    "\\xef\\xbf\\xbe STDERR-END\\n')\n"
    "    sys.stderr.flush()\n"
    "    assert candidate() == 2, 'wanted <2> & \"more\"'\n")

ODD_ID = "odd/\"quoted\" <&> 'id'"


def junit(path):
    """The parsed JUnit file: (root, {name: testcase element})."""
    root = ET.parse(path).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    return root, cases


try:
    # --- a complete run: JUnit, summary JSON, a met gate ---
    mixed = write_set("mixed.jsonl", [
        py_task("ci/nasty", "    return 1\n", NASTY_TEST),
        py_task(ODD_ID, "    return 1\n", PASS_TEST),
        dict(py_task("ci/no-candidates", "", PASS_TEST), candidates=[]),
    ])
    with open(EXAMPLES) as src, open(mixed, "a") as f:
        f.write(src.read())
    jx = os.path.join(work, "reports", "junit.xml")  # its folder is made
    sj = os.path.join(work, "summary.json")
    p = gg(["eval", "--quiet", "--junit", jx, "--summary-json", sj, "--fail-under", "70",
            mixed])
    s = summary(p.stdout)
    check(p.returncode == 0, "a run over its --fail-under: exit 0", p.stdout + p.stderr)
    check(s.get("tasks") == 15 and s.get("failed") == 2 and s.get("errors") == 1,
          "the mixed set's summary", p.stdout)
    check(os.path.exists(jx), "--junit: the file is written (its folder made)")
    root, cases = junit(jx)
    suite = root.find("testsuite")
    check(root.tag == "testsuites" and suite is not None and suite.get("name") == "gryphgen",
          "junit: <testsuites><testsuite name=gryphgen>", ET.tostring(root)[:300])
    check(suite.get("tests") == "15" and suite.get("failures") == "2" and
          suite.get("errors") == "1" and suite.get("skipped") == "0",
          "junit: the suite's counts", suite.attrib)
    check(float(suite.get("time")) > 0, "junit: the suite's time", suite.attrib)
    check(len(cases) == 15 and all(c.get("classname") == "gryphgen" for c in cases.values()),
          "junit: one testcase per task, classname gryphgen", sorted(cases))
    check(all(float(c.get("time")) >= 0 for c in cases.values()), "junit: times are numbers")
    check(ODD_ID in cases and len(list(cases[ODD_ID])) == 0,
          "junit: an id with quotes and markup comes back as it was, passed", sorted(cases))
    nasty = cases.get("ci/nasty")
    fail = nasty.find("failure") if nasty is not None else None
    check(fail is not None and "AssertionError" in fail.get("message", ""),
          "junit: a failed task has <failure message=reason>",
          ET.tostring(nasty) if nasty is not None else None)
    if fail is not None:
        text = fail.text or ""
        check("STDERR-END" in text and "STDOUT-END" in text,
              "junit: the failure holds the ends of stderr and stdout", text[-500:])
        check(len(text.encode()) <= 4096 + 200, "junit: the output tail is at most 4 KiB",
              len(text.encode()))
        check("]]> <&>" in text and "\x01" not in text and "\x1b" not in text and
              "\ufffe" not in text and "\ufffd" in text,
              "junit: markup kept as text, control characters dropped, bad bytes replaced",
              text[-300:])
    check(cases.get("py/median") is not None and
          cases["py/median"].find("failure") is not None, "junit: the example that fails")
    err = cases.get("ci/no-candidates")
    check(err is not None and err.find("error") is not None and
          "no candidates" in err.find("error").get("message", ""),
          "junit: a task that ended in error has <error message=reason>",
          ET.tostring(err) if err is not None else None)
    with open(jx, "rb") as f:
        raw = f.read()
    check(raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), "junit: XML declaration")
    try:
        raw.decode("utf-8")
        check(True, "junit: valid UTF-8")
    except UnicodeDecodeError as e:
        check(False, "junit: valid UTF-8", str(e))
    check(not [n for n in os.listdir(os.path.dirname(jx)) if n != "junit.xml"],
          "junit: no temporary file is left", os.listdir(os.path.dirname(jx)))

    with open(sj) as f:
        sm = json.load(f)
    check(sm.get("total") == 15 and sm.get("passed") == 12 and sm.get("passed_first") ==
          s.get("passed at first attempt") and sm.get("passed_after_repair") ==
          s.get("passed after repair") and sm.get("failed") == 2 and sm.get("errors") == 1 and
          sm.get("cancelled") == 0 and sm.get("attempts") == s.get("attempts"),
          "summary json: the printed summary's numbers", sm)
    check(abs(sm.get("pass_rate", -1) - 12 / 15) < 1e-9 and
          abs(sm.get("pass_percent", -1) - 80.0) < 1e-9, "summary json: pass rate", sm)
    check(sm.get("fail_under") == 70 and sm.get("fail_under_met") is True and
          sm.get("interrupted") is False, "summary json: the gate, met", sm)
    check(abs(sm.get("wall_s", -1) - s.get("wall time", -2)) < 0.01,
          "summary json: wall time", sm)

    # --- the gate: 11 of the 12 examples pass (91.67%) ---
    for pct, want in (("91.6", 0), ("91.7", 1), ("100", 1), ("0", 0), ("91.5%", 0)):
        p = gg(["eval", "--quiet", "--summary-json", sj, "--fail-under", pct, EXAMPLES])
        check(p.returncode == want, "--fail-under %s: exit %d" % (pct, want),
              "exit %d: %s" % (p.returncode, p.stderr))
        if want:
            check("--fail-under" in p.stderr and "11 of 12" in p.stderr,
                  "--fail-under %s: says why the exit is 1" % pct, p.stderr)
        with open(sj) as f:
            sm = json.load(f)
        check(sm.get("fail_under_met") is (want == 0), "summary json: met is %s at %s"
              % (want == 0, pct), sm)
    for bad in ("abc", "-1", "100.5", "", "nan", "inf", "50%%", "1e3"):
        p = gg(["eval", "--fail-under", bad, EXAMPLES])
        check(p.returncode == 2 and "--fail-under" in p.stderr and "tasks:" not in p.stdout,
              "--fail-under %r: usage error before the run" % bad,
              "exit %d: %s" % (p.returncode, p.stderr))
    for opt in ("--junit", "--summary-json", "--patches"):
        p = gg(["eval", opt, "", EXAMPLES])
        check(p.returncode == 2, "%s '': usage error" % opt, p.stderr)
    p = gg(["eval", "--deliver", "tag", EXAMPLES])
    check(p.returncode == 2 and "--deliver branch" in p.stderr,
          "--deliver with an unknown way: usage error naming the one there is", p.stderr)
    afile = os.path.join(work, "a-file")
    open(afile, "w").close()
    p = gg(["eval", "--junit", os.path.join(afile, "j.xml"), EXAMPLES])
    check(p.returncode == 2 and "--junit" in p.stderr and "tasks:" not in p.stdout,
          "--junit under a file: usage error before the run", p.stderr)
    p = gg(["eval", "--patches", afile, EXAMPLES])
    check(p.returncode == 2 and "--patches" in p.stderr, "--patches on a file: usage error",
          p.stderr)

    # --- bad lines: an error testcase each, exit 2, files written ---
    badset = write_set("bad.jsonl", [py_task("ok/1", "    return 1\n", PASS_TEST)],
                       ["{not json", json.dumps({"task_id": "bad/deliver", "language": "python",
                                                 "deliver": "yes", "candidates": ["x"]})])
    p = gg(["eval", "--quiet", "--junit", jx, "--summary-json", sj, badset])
    check(p.returncode == 2, "bad lines: exit 2", p.stdout + p.stderr)
    check("bad/deliver" in p.stderr and "'deliver'" in p.stderr,
          "a malformed 'deliver' field is bad input, named", p.stderr)
    root, cases = junit(jx)
    suite = root.find("testsuite")
    check(suite.get("tests") == "3" and suite.get("errors") == "2",
          "junit: bad lines count as errors", suite.attrib)
    bd = cases.get("bad/deliver")
    check(bd is not None and bd.find("error") is not None and
          bd.find("error").get("type") == "bad input" and
          "deliver" in bd.find("error").get("message"),
          "junit: a bad line is an error case named by its id",
          ET.tostring(bd) if bd is not None else sorted(cases))
    check("line 2" in cases, "junit: a bad line without an id is named by its line",
          sorted(cases))
    with open(sj) as f:
        sm = json.load(f)
    check(sm.get("bad_lines") == 2 and sm.get("total") == 3, "summary json: bad lines", sm)

    # --- a task's own "deliver" field on plain tasks: refused as bad input (it belongs to
    # workspace tasks), never delivered; the other lines run ---
    dset = write_set("deliver.jsonl", [
        py_task("dl/plain-pass", "    return 1\n", PASS_TEST, deliver={"branch": "x/y"}),
        py_task("dl/none", "    return 1\n", PASS_TEST)])
    p = gg(["eval", "--quiet", "--summary-json", sj, dset])
    check(p.returncode == 2, "a plain task asking for delivery is bad input: exit 2",
          "exit %d: %s" % (p.returncode, p.stderr))
    check("task 'dl/plain-pass': field 'deliver' needs a 'workspace'" in p.stderr,
          "the refusal names the task and the field", p.stderr)
    check("delivered" not in p.stderr and "dl/none" not in p.stderr,
          "nothing is delivered, the task that asks for nothing just runs", p.stderr)
    with open(sj) as f:
        sm = json.load(f)
    check(sm.get("bad_lines") == 1 and sm.get("passed") == 1 and sm.get("delivered") == 0,
          "summary json: the bad line, the passing task, no delivery", sm)
    # --deliver with plain tasks: nothing to deliver, nothing said, exit 0
    p = gg(["eval", "--quiet", "--deliver", "branch", "--patches",
            os.path.join(work, "patches"), EXAMPLES])
    check(p.returncode == 0 and "deliver" not in p.stderr,
          "--deliver and --patches on plain tasks: nothing to do, exit 0", p.stderr)
    check(os.listdir(os.path.join(work, "patches")) == [],
          "--patches: no file for tasks without a patch")

    # --- an interrupt: the files hold the tasks that ended ---
    started = os.path.join(work, "slow.started")
    go = os.path.join(work, "slow.go")
    slow = os.path.join(work, "slow.jsonl")
    db = os.path.join(work, "run.db")
    with open(EXAMPLES) as src, open(slow, "w") as f:
        others = sum(1 for line in src if line.strip())
        src.seek(0)
        f.write(src.read())
        f.write(json.dumps({"task_id": "slow", "language": "python", "priority": -1000,
                            "test": gated_test(started, go),
                            "resources": {"timeout_s": GATE_S + 60},
                            "candidates": ["x = 1\n"]}) + "\n")
    os.remove(jx)
    proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--isolation", "rlimits", "--db",
                             db, "--junit", jx, "--summary-json", sj, "--fail-under", "100",
                             slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())
    try:
        ready = wait_until(lambda: proc.poll() is not None or
                           (ended_tasks(db) == others and starts(started) == 1))
        check(ready and proc.poll() is None, "interrupt: the others end while 'slow' runs",
              proc.poll())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=GATE_S)
    finally:
        open_gate(go)
    no_sanitizer_report(err)
    check(proc.returncode == 130, "interrupt: exit 130 (not the gate's 1)",
          "exit %d: %s" % (proc.returncode, err))
    check(os.path.exists(jx), "interrupt: the JUnit file is written")
    if os.path.exists(jx):
        root, cases = junit(jx)
        check(len(cases) == others and "slow" not in cases,
              "interrupt: JUnit holds the tasks that ended", sorted(cases))
    with open(sj) as f:
        sm = json.load(f)
    check(sm.get("interrupted") is True and sm.get("total") == others and
          sm.get("fail_under_met") is None, "interrupt: the summary of what ended", sm)
finally:
    shutil.rmtree(work, ignore_errors=True)
finish()
