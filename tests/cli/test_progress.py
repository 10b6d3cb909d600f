"""test_progress.py - eval's progress output: plain lines when stderr is not a terminal (at
most one every 2 s, no control characters), none with --quiet, and a bar redrawn in place
when stderr is a terminal (a pty). The three runs go in parallel; each set ends with a task
whose test waits on a file, opened only once that run's stderr shows the progress asked of
it (the quiet run's last), so each run lasts as long as its progress needs on any machine."""

import json
import os
import pty
import re
import shutil
import subprocess
import threading

from clitest import (EXAMPLES, GATE_S, GRYPHGEN, check, env, finish, gated_test,
                     no_sanitizer_report, open_gate, summary, tmpdir, wait_until)

work = tmpdir()
gates = {}
args = {}
for name in ("plain", "quiet", "tty"):
    path = os.path.join(work, name + ".jsonl")
    gates[name] = os.path.join(work, name + ".go")
    with open(EXAMPLES) as src, open(path, "w") as f:
        f.write(src.read())
        f.write(json.dumps({"task_id": "slow", "language": "python",
                            "test": gated_test(os.path.join(work, name + ".started"),
                                               gates[name]),
                            "resources": {"timeout_s": GATE_S + 60},
                            "candidates": ["x = 1\n"]}) + "\n")
    # rlimits: the gated test reads a file of this directory (see gated_test).
    args[name] = [GRYPHGEN, "eval", "--jobs", "2", "--isolation", "rlimits"] + \
        (["--quiet"] if name == "quiet" else []) + [path]


def collect(read, into):
    """Appends what read() returns to the list into until it returns nothing or fails."""
    while True:
        try:
            chunk = read()
        except OSError:  # EIO: every writer closed the terminal
            return
        if not chunk:
            return
        into.append(chunk)


try:
    plain = subprocess.Popen(args["plain"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env())
    quiet = subprocess.Popen(args["quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env())
    master, slave = pty.openpty()
    tty = subprocess.Popen(args["tty"], stdout=subprocess.PIPE, stderr=slave, env=env())
    os.close(slave)
    got = {"plain": [], "quiet": [], "tty": []}
    readers = [threading.Thread(target=collect, args=(lambda: plain.stderr.read1(65536),
                                                      got["plain"])),
               threading.Thread(target=collect, args=(lambda: quiet.stderr.read1(65536),
                                                      got["quiet"])),
               threading.Thread(target=collect, args=(lambda: os.read(master, 65536),
                                                      got["tty"]))]
    for t in readers:
        t.daemon = True
        t.start()

    def text(name):
        return b"".join(list(got[name])).decode(errors="replace")

    check(wait_until(lambda: "progress" in text("plain")),
          "not a terminal: a plain progress line while the run lasts", text("plain"))
    open_gate(gates["plain"])
    check(wait_until(lambda: text("tty").count("\r") >= 5 and "ETA" in text("tty")),
          "a terminal: the bar is redrawn while the run lasts", repr(text("tty")[-500:]))
    open_gate(gates["tty"])
    open_gate(gates["quiet"])  # it ran at least as long as the other two needed

    outs = {}
    for name, proc in (("plain", plain), ("quiet", quiet), ("tty", tty)):
        outs[name] = proc.stdout.read().decode()
        proc.wait(timeout=GATE_S)
    for t in readers:
        t.join(timeout=GATE_S)
    os.close(master)
    plain_err, quiet_err, tty_err = text("plain"), text("quiet"), text("tty")

    for name, proc in (("plain", plain), ("quiet", quiet), ("tty", tty)):
        s = summary(outs[name])
        check(proc.returncode == 0 and s.get("tasks") == 13 and
              s.get("passed at first attempt") == 7,
              "%s run: exit 0 and 7 passed at first attempt" % name, outs[name])

    for err in (plain_err, quiet_err, tty_err):
        no_sanitizer_report(err)

    lines = [l for l in plain_err.splitlines() if "progress" in l]
    check(len(lines) >= 1, "not a terminal: plain progress lines", plain_err)
    check(len(lines) <= int(summary(outs["plain"]).get("wall time", 0) / 2) + 1,
          "not a terminal: at most one progress line every 2 s", plain_err)
    check(all(re.search(r"\d+/\d+\+? tasks done, \d+ passed, \d+ failed, \d+ errors", l)
              for l in lines), "plain lines show done/total, passed, failed, errors", plain_err)
    check(all("ETA" in l and "tasks/s" in l for l in lines), "plain lines show rate and ETA",
          plain_err)
    check("\r" not in plain_err and "\033" not in plain_err,
          "not a terminal: no carriage returns or escape sequences", repr(plain_err))
    check(quiet_err == "", "--quiet: nothing on stderr", quiet_err)

    check(tty_err.count("\r") >= 5 and "\033[K" in tty_err,
          "a terminal: the bar is redrawn in place", repr(tty_err[-500:]))
    check(re.search(r"\[[=> ]+\]", tty_err) is not None and "passed" in tty_err and
          "ETA" in tty_err, "a terminal: the bar shows progress, counts and ETA",
          repr(tty_err[-500:]))
    check(tty_err.endswith("\r\033[K"), "a terminal: the bar is wiped at the end",
          repr(tty_err[-80:]))
finally:
    for gate in gates.values():
        open_gate(gate)  # a test left waiting ends
    shutil.rmtree(work, ignore_errors=True)
finish()
