"""test_humaneval.py - the published HumanEval set (164 problems) through gryphgen eval with
the reference generator, read from stdin as `zcat HumanEval.jsonl.gz | gryphgen eval
--generator reference --jobs 2 -` would: every canonical solution must pass. Skipped (77)
when the data file is absent."""

import gzip
import os
import subprocess

from clitest import (GRYPHGEN, SOURCE_ROOT, check, env, finish, no_sanitizer_report, skip,
                     summary)

data = os.path.join(SOURCE_ROOT, "..", "shared", "data", "HumanEval.jsonl.gz")
if not os.path.exists(data):
    skip("%s is absent" % os.path.normpath(data))

zcat = subprocess.Popen(["zcat", data], stdout=subprocess.PIPE)
p = subprocess.run([GRYPHGEN, "eval", "--generator", "reference", "--jobs", "2", "-"],
                   stdin=zcat.stdout, capture_output=True, text=True, timeout=300, env=env())
zcat.stdout.close()
check(zcat.wait() == 0, "zcat read the data set")
no_sanitizer_report(p.stderr)
s = summary(p.stdout)
check(p.returncode == 0, "eval exits 0", p.stderr[-2000:])
check(s.get("tasks") == 164, "164 tasks", p.stdout)
check(s.get("passed at first attempt") == 164, "164 passed", p.stdout + p.stderr[-2000:])
check(s.get("failed") == 0 and s.get("errors") == 0, "none failed or errored", p.stdout)
with gzip.open(data, "rt") as f:
    n = sum(1 for line in f if line.strip())
check(n == s.get("tasks"), "every line of the file became a task", n)

finish()
