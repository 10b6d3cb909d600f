"""test_bad_input.py - gryphgen eval on a set with bad lines: malformed JSON, a missing
language, a field of the wrong type, an oversize field, an unsupported language, a JSON
array, a NUL byte and a line over 8 MiB. Each is reported on stderr naming its line (and task
and field), listed in --results as an error line, counted in the summary; the good tasks
still run, and the exit status is 2 (bad input), as it is for a set of bad lines only; a
set whose every line is a valid task exits 0. Also: a big set of bad lines is streamed in
bounded memory."""

import json
import os
import shutil
import subprocess

from clitest import (GRYPHGEN, check, env, finish, gg, no_sanitizer_report, read_jsonl,
                     summary, tmpdir)

work = tmpdir()


def good(i):
    return json.dumps({"task_id": "good/%d" % i, "language": "python", "stub": "def f():\n",
                       "entry_point": "f", "test": "assert f() == 1\n",
                       "candidates": ["    return 1\n"]})


# --- a large set of bad lines streams in bounded memory -------------------------------
# First, while this script is still small: a child's max RSS includes its parent's at fork.
big = os.path.join(work, "big.jsonl")
n_lines, pad = 20000, 3000
with open(big, "w") as f:
    for i in range(n_lines):
        f.write(json.dumps({"task_id": "t%06d" % i, "language": "cobol", "prompt": "z" * pad})
                + "\n")
size_kb = os.path.getsize(big) // 1024
out_path = os.path.join(work, "big.out")
with open(out_path, "w") as out:
    child = subprocess.Popen([GRYPHGEN, "eval", "--quiet", "--results",
                              os.path.join(work, "big.results.jsonl"), big],
                             stdout=out, stderr=subprocess.PIPE, env=env())
    big_err = child.stderr.read().decode(errors="replace")
    _, wstatus, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(wstatus)
rss_kb = usage.ru_maxrss
with open(out_path) as f:
    p = subprocess.CompletedProcess(child.args, child.returncode, f.read(), big_err[-2000:])
no_sanitizer_report(big_err)
s = summary(p.stdout)
check(p.returncode == 2 and s.get("bad lines") == n_lines,
      "a big set of bad lines is read, and exits 2", p.stdout + p.stderr[-500:])
with open(GRYPHGEN, "rb") as f:
    sanitized = b"__asan_init" in f.read()
if sanitized:  # AddressSanitizer's quarantine and shadow memory make RSS meaningless
    print("note: the RSS bound is not checked in a sanitizer build")
else:
    check(rss_kb < size_kb // 2, "memory stays bounded (max RSS %d KiB for a %d KiB set)" %
          (rss_kb, size_kb))
with open(os.path.join(work, "big.results.jsonl")) as f:
    check(sum(1 for _ in f) == n_lines, "every bad line is in the results")


# --- every kind of bad line ---------------------------------------------------------
lines = [
    good(1),                                                             # 1
    '{"task_id": "broken", "language": ',                                # 2 malformed
    '',                                                                  # 3 blank
    json.dumps({"task_id": "nolang", "stub": "x = 1\n"}),                # 4 no language
    json.dumps({"task_id": "bad-type", "language": "python",
                "budget": {"max_attempts": "three"}}),                   # 5 wrong type
    json.dumps({"task_id": "huge", "language": "python",
                "prompt": "x" * ((1 << 20) + 1)}),                       # 6 oversize field
    good(2),                                                             # 7
    "   \t ",                                                            # 8 blank
    json.dumps({"task_id": "toolong", "language": "python",
                "prompt": "y" * (9 << 20)}),                             # 9 line over 8 MiB
    json.dumps({"task_id": "cobol", "language": "cobol"}),               # 10 unsupported
    "[1, 2]",                                                            # 11 not an object
    'a\x00b',                                                            # 12 NUL byte
    good(3),                                                             # 13, no final newline
]
path = os.path.join(work, "bad.jsonl")
with open(path, "w") as f:
    f.write("\n".join(lines))
res = os.path.join(work, "bad.results.jsonl")
p = gg(["eval", "--results", res, path])
err = p.stderr
check(p.returncode == 2, "a set with bad lines exits 2 (bad input)", err)
check("8 line(s) of %s are not valid tasks" % path in err,
      "the exit status is explained", err[-500:])
s = summary(p.stdout)
check(s.get("tasks") == 11, "11 entries (blank lines skipped)", p.stdout)
check(s.get("passed at first attempt") == 3, "the 3 good tasks ran and passed", p.stdout + err)
check(s.get("errors") == 8 and s.get("bad lines") == 8, "8 bad lines counted as errors",
      p.stdout)

check("line 2:" in err and "JSON" in err, "malformed JSON names line 2", err)
check("line 4: task 'nolang':" in err and "'language'" in err,
      "missing language names line, task and field", err)
check("line 5: task 'bad-type': field 'budget.max_attempts'" in err,
      "wrong type names line, task and field", err)
check("line 6: task 'huge':" in err and "'prompt'" in err,
      "oversize field names line, task and field", err)
check("line 9:" in err and "8388608" in err, "a line over 8 MiB is reported by its line", err)
check("line 10: task 'cobol':" in err, "unsupported language names line and task", err)
check("line 11:" in err, "a JSON array is reported", err)
check("line 12:" in err and "NUL" in err, "a NUL byte is reported", err)
check("line 3:" not in err and "line 8:" not in err, "blank lines are skipped silently", err)

rows = read_jsonl(res) if os.path.exists(res) else []
check(len(rows) == 11, "results: one line per non-blank line", len(rows))
want = [(None, "good/1", "passed"), (2, None, "error"), (4, "nolang", "error"),
        (5, "bad-type", "error"), (6, "huge", "error"), (None, "good/2", "passed"),
        (9, None, "error"), (10, "cobol", "error"), (11, None, "error"), (12, None, "error"),
        (None, "good/3", "passed")]
got = [(r.get("line"), r.get("task_id"), r.get("status")) for r in rows]
check(got == want, "results: lines, ids and statuses in order", got)
check(all(r.get("reason") for r in rows if r.get("status") == "error"),
      "results: every error line has a reason")
check(any("budget.max_attempts" in (r.get("reason") or "") for r in rows),
      "results: the reason names the field")

# --- the exit status: any bad line is bad input (2); only valid tasks, 0 -------------
only_bad = os.path.join(work, "only-bad.jsonl")
with open(only_bad, "w") as f:
    f.write('{"task_id": "broken", "language": \n[1, 2]\n')
p = gg(["eval", "--quiet", only_bad])
s = summary(p.stdout)
check(p.returncode == 2 and s.get("bad lines") == 2,
      "a set whose lines are all malformed exits 2", "exit %d\n%s%s" % (p.returncode, p.stdout,
                                                                    p.stderr))
p = gg(["eval", "--quiet", "-"], input="not json\n")
check(p.returncode == 2, "a bad line on stdin exits 2", p.stderr)
all_good = os.path.join(work, "good.jsonl")
with open(all_good, "w") as f:
    f.write(good(1) + "\n\n" + good(2) + "\n")
p = gg(["eval", "--quiet", all_good])
check(p.returncode == 0 and summary(p.stdout).get("tasks") == 2,
      "a set of valid tasks (and a blank line) exits 0", p.stdout + p.stderr)
failing = os.path.join(work, "failing.jsonl")
with open(failing, "w") as f:
    f.write(json.dumps({"task_id": "fails", "language": "python", "stub": "def f():\n",
                        "entry_point": "f", "test": "assert f() == 1\n",
                        "candidates": ["    return 2\n"]}) + "\n")
p = gg(["eval", "--quiet", failing])
check(p.returncode == 0 and summary(p.stdout).get("failed") == 1,
      "a valid task that fails still exits 0 (the score is not the status)",
      p.stdout + p.stderr)

shutil.rmtree(work, ignore_errors=True)
finish()
