#!/usr/bin/python3
"""plain_run.py - the baseline of bench/humaneval.sh: runs each HumanEval problem's program
(prompt + canonical_solution + test + check(entry_point)) as a plain interpreter subprocess,
N at a time, with no orchestration, database or sandbox. Prints one JSON line:
{"wall_s": ..., "passed": n, "total": n, "python": "..."}.

Each program runs in the same scrubbed environment the pipeline's process executor gives its
jobs (PATH=/usr/local/bin:/usr/bin:/bin, HOME and TMPDIR the work directory, LANG=C.UTF-8),
so both sides start the same interpreter the same way. Only running the programs is timed (decompressing and assembling them is not), so the
baseline is at its fastest and the comparison is, if anything, strict on the pipeline.
"""
import argparse
import concurrent.futures
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time


def programs(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            p = json.loads(line)
            yield (p["task_id"], p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n"
                   + "check(%s)\n" % p["entry_point"])


def run_one(python, workdir, index, text, timeout):
    path = os.path.join(workdir, "p%d.py" % index)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
               "LANG": "C.UTF-8"}
        r = subprocess.run([python, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=workdir, env=env, timeout=timeout)
        return r.returncode == 0
    except subprocess.TimeoutExpired:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True, help="interpreter that runs each program")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("data", help="HumanEval.jsonl or .jsonl.gz")
    args = ap.parse_args()

    todo = list(programs(args.data))
    with tempfile.TemporaryDirectory(prefix="gg-plain-") as workdir:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, args.python, workdir, i, text, args.timeout)
                       for i, (_, text) in enumerate(todo)]
            passed = sum(1 for f in futures if f.result())
        wall = time.monotonic() - start
    print(json.dumps({"wall_s": round(wall, 4), "passed": passed, "total": len(todo),
                      "python": args.python}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
