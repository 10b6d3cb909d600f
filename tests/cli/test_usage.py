"""test_usage.py - the gryphgen command's usage text (every command answers --help and -h;
every generator and executor is named), version, and its exit statuses for usage errors (2:
unknown command or option, missing value, bad number, missing or unreadable input, bad
generator, an option of where tasks run given to eval --connect) and infrastructure errors
(1: a database or results file that cannot be created), each with a clear message."""

import os
import shutil
import subprocess

from clitest import EXAMPLES, check, finish, gg, tmpdir

work = tmpdir()

for args in ([], ["help"], ["--help"], ["-h"]):
    p = gg(args)
    check(p.returncode == 0 and "usage: gryphgen" in p.stdout and "eval" in p.stdout and
          "run" in p.stdout and "--generator" in p.stdout and "--results" in p.stdout,
          "gryphgen %s prints the usage text" % " ".join(args), p.stdout + p.stderr)
p = gg(["eval", "--help"])
check(p.returncode == 0 and "usage: gryphgen eval" in p.stdout, "eval --help", p.stdout)

# Every command answers --help and -h with its usage on stdout, exit 0: the commands are
# read from the usage text itself, so a command added later is covered too.
p = gg(["help"])
text = p.stdout
commands = []
in_commands = False
for line in text.splitlines():
    if line == "commands:":
        in_commands = True
        continue
    if in_commands and not line.strip():
        break
    if in_commands and line.startswith("  ") and not line.startswith("   "):
        commands.append(line.split()[0])
check(len(commands) >= 15 and "submit" in commands and "watch" in commands,
      "the usage text lists the commands", commands)
for cmd in commands:
    for flag in ("--help", "-h"):
        p = gg([cmd, flag])
        want = "usage: gryphgen " + ("COMMAND" if cmd == "help" else cmd)
        check(p.returncode == 0 and want in p.stdout and not p.stderr,
              "gryphgen %s %s prints its usage on stdout, exit 0" % (cmd, flag),
              "exit %d, stdout: %s, stderr: %s" % (p.returncode, p.stdout[:300], p.stderr))

# ... every generator and every executor the library has are named
for word in ("replay", "reference", "command:PROG", "openai"):
    check(word in text, "gryphgen help names the generator '%s'" % word, text)
for word in ("process", "container", "noop"):
    check(("  " + word + " ") in text, "gryphgen help names the executor '%s'" % word, text)
p = gg(["worker", "--help"])
check("process|container|noop" in p.stdout and "--isolation" in p.stdout,
      "worker --help names every executor and --isolation", p.stdout)
# ... and the exit status rule, one rule for eval and run
check("exit status" in text and "any line or task that is not a valid task" in text,
      "gryphgen help states the exit status rule", text)
p = gg(["version"])
check(p.returncode == 0 and p.stdout.startswith("gryphgen 1.") and "libgryphgen" in p.stdout,
      "version prints both versions", p.stdout)

usage_cases = [
    (["frob"], "unknown command 'frob'"),
    (["eval", "--frob", EXAMPLES], "unknown option '--frob'"),
    (["eval", "-x", EXAMPLES], "unknown option '-x'"),
    (["eval", EXAMPLES, "--jobs"], "needs a value"),
    (["eval", "--jobs", "abc", EXAMPLES], "--jobs: 'abc' is not a number"),
    (["eval", "--jobs", "0", EXAMPLES], "--jobs: '0'"),
    (["eval", "--jobs", "-3", EXAMPLES], "--jobs"),
    (["eval", "--jobs", "2x", EXAMPLES], "--jobs: '2x'"),
    (["eval", "--max-attempts", "101", EXAMPLES], "--max-attempts: '101'"),
    (["eval", "--log-level", "loud", EXAMPLES], "--log-level: 'loud'"),
    (["eval"], "which task set"),
    (["eval", EXAMPLES, EXAMPLES], "one task set"),
    (["eval", os.path.join(work, "missing.jsonl")], "cannot open"),
    (["eval", work], "is a directory"),
    (["eval", "--generator", "bogus", EXAMPLES], "bogus"),
    (["run"], "which task"),
    (["run", os.path.join(work, "missing.json")], "cannot open"),
    (["run", "--max-attempts", "zero", "x.json"], "--max-attempts"),
    (["version", "extra"], "takes no arguments"),
    (["eval", "--python", os.path.join(work, "no-python"), EXAMPLES], "--python"),
    (["run", "--cc", "/nonexistent/cc", "x.json"], "--cc"),
    (["worker", "--insecure", "--connect", "tcp://127.0.0.1:1", "--isolation", "strong"],
     "--isolation: 'strong'"),
    (["worker", "--insecure", "--connect", "tcp://127.0.0.1:1", "--slots", "0"],
     "option --slots: '0' is not a number"),
    (["search", "-k", "0", "query"], "option -k: '0' is not a number"),
    (["serve", "--insecure", "--bind", "tcp://127.0.0.1:1", "--local", "x"],
     "option --local: 'x' is not a number"),
]
# eval --connect: the options of where tasks run are refused, naming where they belong
# (checked before connecting, so no orchestrator is needed here)
connect = ["eval", "--insecure", "--connect", "tcp://127.0.0.1:1"]
for opt, value, where in (("--generator", "reference", "gryphgen worker --generator"),
                          ("--python", "/usr/bin/python3", "gryphgen worker --python"),
                          ("--cc", "cc", "gryphgen worker --cc"),
                          ("--isolation", "rlimits", "gryphgen worker --isolation"),
                          ("--jobs", "2", "gryphgen worker --slots"),
                          ("-j", "2", "gryphgen worker --slots"),
                          ("--db", os.path.join(work, "x.db"), "gryphgen serve --db"),
                          ("--max-attempts", "2", "gryphgen serve --max-attempts"),
                          ("--log-level", "info", "--log-level")):
    usage_cases.append((connect + [opt, value, EXAMPLES],
                        "does not apply with --connect"))
    usage_cases.append((["eval", opt, value, "--insecure", "--connect", "tcp://127.0.0.1:1",
                         EXAMPLES], where))
# the client commands and serve refuse the shared options they have no use for
ep = ["--insecure", "--connect", "tcp://127.0.0.1:1"]
usage_cases += [
    (["status", "--wait"] + ep, "--wait is not an option of status"),
    (["cancel", "--timeout-ms", "5", "x"] + ep, "--timeout-ms is not an option of cancel"),
    (["watch", "--wait"] + ep, "--wait is not an option of watch"),
    (["submit", "--timeout-ms", "5", "x.jsonl"] + ep, "give --wait too"),
    (["serve", "--insecure", "--bind", "tcp://127.0.0.1:1", "--server-key", "x.pub"],
     "--server-key is for workers and clients"),
    (["serve", "--insecure", "--bind", "tcp://127.0.0.1:1", "--generator", "reference"],
     "--generator applies to the jobs of --local N workers only"),
    (["serve", "--insecure", "--bind", "tcp://127.0.0.1:1", "--python", "python3"],
     "gryphgen worker --python"),
]
# ... and the grid client's options are refused without --connect (nothing would use them)
for args in (["--insecure"], ["--key", "x.key"], ["--server-key", "x.pub"]):
    usage_cases.append((["eval"] + args + [EXAMPLES],
                        "%s applies only with --connect" % args[0]))
for args, message in usage_cases:
    try:  # a usage error is found before any work: one that is not would run on
        p = gg(args, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "gryphgen %s: exit 2 at once, not a run" % " ".join(args))
        continue
    check(p.returncode == 2 and message in p.stderr and p.stdout == "" and
          "---" not in p.stderr,
          "gryphgen %s: exit 2 with '%s'" % (" ".join(args), message),
          "exit %d, stderr: %s" % (p.returncode, p.stderr))

# infrastructure errors: a database that cannot be created (as root, permissions do not
# stop us, so the parent is a regular file; as another user a read-only directory too)
blocker = os.path.join(work, "not-a-dir")
with open(blocker, "w") as f:
    f.write("x")
task_file = os.path.join(work, "task.json")
with open(task_file, "w") as f:
    f.write('{"task_id": "t", "language": "python", "candidates": ["x = 1\\n"]}')
db_paths = [os.path.join(blocker, "run.db")]
if os.geteuid() != 0:
    ro = os.path.join(work, "read-only")
    os.mkdir(ro, 0o500)
    db_paths.append(os.path.join(ro, "run.db"))
for db in db_paths:
    p = gg(["eval", "--db", db, EXAMPLES])
    check(p.returncode == 1 and db in p.stderr and "database" in p.stderr and p.stdout == "",
          "eval --db %s: exit 1 naming the database" % db,
          "exit %d, stderr: %s" % (p.returncode, p.stderr))
    p = gg(["run", "--db", db, task_file])
    check(p.returncode == 1 and db in p.stderr and p.stdout == "",
          "run --db %s: exit 1 naming the database" % db, p.stderr)
p = gg(["eval", "--results", os.path.join(blocker, "r.jsonl"), EXAMPLES])
check(p.returncode == 1 and "results file" in p.stderr and p.stdout == "",
      "eval --results in a path that cannot be created: exit 1", p.stderr)

# a runtime that cannot be found: the tasks run and end in error (exit 0), and the first
# reasons are shown
p = gg(["eval", "--quiet", "--python", "no-such-python-3.99", EXAMPLES])
s = {l.split(":")[0]: l for l in p.stdout.splitlines()}
check(p.returncode == 0 and "errors:                  8" in s.get("errors", ""),
      "without Python the 8 Python tasks end in error", p.stdout + p.stderr)
check(p.stderr.count("' ended in error: ") == 5 and "more tasks ended in error" in p.stderr,
      "the first 5 reasons are shown", p.stderr)

shutil.rmtree(work, ignore_errors=True)
finish()
