"""test_progress.py - eval's progress output: plain lines when stderr is not a terminal (at
most one every 2 s, no control characters), none with --quiet, and a bar redrawn in place
when stderr is a terminal (a pty). The set holds a task that sleeps 2.5 s so the run lasts
long enough to show progress; the three runs go in parallel."""

import json
import os
import pty
import re
import select
import shutil
import subprocess
import time

from clitest import (EXAMPLES, GRYPHGEN, check, env, finish, no_sanitizer_report, summary,
                     tmpdir)

work = tmpdir()
path = os.path.join(work, "slow.jsonl")
with open(EXAMPLES) as src, open(path, "w") as f:
    f.write(src.read())
    f.write(json.dumps({"task_id": "slow", "language": "python",
                        "test": "import time\ntime.sleep(2.5)\n",
                        "candidates": ["x = 1\n"]}) + "\n")

args = [GRYPHGEN, "eval", "--jobs", "2", path]
plain = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env())
quiet = subprocess.Popen(args[:2] + ["--quiet"] + args[2:], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
master, slave = pty.openpty()
tty = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, env=env())
os.close(slave)
tty_err = b""
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        tty_err += chunk
    elif tty.poll() is not None:
        break
os.close(master)
tty_out = tty.communicate(timeout=60)[0].decode()
plain_out, plain_err = plain.communicate(timeout=60)
quiet_out, quiet_err = quiet.communicate(timeout=60)

for name, proc, out in (("plain", plain, plain_out), ("quiet", quiet, quiet_out),
                        ("tty", tty, tty_out)):
    s = summary(out)
    check(proc.returncode == 0 and s.get("tasks") == 13 and s.get("passed at first attempt") == 7,
          "%s run: exit 0 and 7 passed at first attempt" % name, out)
    check(s.get("wall time", 0) >= 2.5, "%s run lasted the slow task's 2.5 s" % name, out)

for err in (plain_err, quiet_err, tty_err.decode(errors="replace")):
    no_sanitizer_report(err)

lines = [l for l in plain_err.splitlines() if "progress" in l]
check(len(lines) >= 1, "not a terminal: plain progress lines", plain_err)
check(len(lines) <= int(summary(plain_out).get("wall time", 0) / 2) + 1,
      "not a terminal: at most one progress line every 2 s", plain_err)
check(all(re.search(r"\d+/\d+\+? tasks done, \d+ passed, \d+ failed, \d+ errors", l)
          for l in lines), "plain lines show done/total, passed, failed, errors", plain_err)
check(all("ETA" in l and "tasks/s" in l for l in lines), "plain lines show rate and ETA",
      plain_err)
check("\r" not in plain_err and "\033" not in plain_err,
      "not a terminal: no carriage returns or escape sequences", repr(plain_err))
check(quiet_err == "", "--quiet: nothing on stderr", quiet_err)

text = tty_err.decode(errors="replace")
check(text.count("\r") >= 5 and "\033[K" in text, "a terminal: the bar is redrawn in place",
      repr(text[-500:]))
check(re.search(r"\[[=> ]+\]", text) is not None and "passed" in text and "ETA" in text,
      "a terminal: the bar shows progress, counts and ETA", repr(text[-500:]))
check(text.endswith("\r\033[K"), "a terminal: the bar is wiped at the end", repr(text[-80:]))

shutil.rmtree(work, ignore_errors=True)
finish()
