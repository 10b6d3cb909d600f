#!/usr/bin/python3
"""plain_x.py - the baseline of bench/humaneval_x.sh: the programs a `gryphgen eval` run
assembled (its --results file's "code") with their HumanEval-X tests, compiled and run by
the plain toolchain, N at a time, unsandboxed, with the host's warm caches (Go's default
build cache, the same prebuilt Rust crates the pipeline's jobs get). Prints one JSON line:
{"wall_s": ..., "passed": n, "total": n, "language": "..."}. Only compiling and running is
timed; writing the files is not.

usage: plain_x.py --language L --data humaneval_L.jsonl.gz --results R.jsonl [--jobs N]
                  [--rust-dir DIR]
"""
import argparse
import concurrent.futures
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

GO_STD = ["fmt", "math", "strings", "strconv", "sort", "bytes", "unicode", "regexp",
          "math/rand", "crypto/md5", "encoding/hex", "math/big", "errors", "time", "reflect",
          "unicode/utf8", "math/bits", "container/heap"]
JVM = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:-UsePerfData"]


def go_test_file(setup, test):
    """test_setup + test, with the standard packages the test uses imported too."""
    have = set(re.findall(r'"([^"]+)"', setup))
    body = re.sub(r'"[^"\n]*"', '""', re.sub(r"//[^\n]*", "", test))
    extra = [p for p in GO_STD if p not in have and
             re.search(r"(?<![\w.])%s\." % re.escape(p.split("/")[-1]), body)]
    imports = "".join('import "%s"\n' % p for p in extra)
    return setup + "\n" + imports + "\n" + test


def prepare(lang, d, code, root, rust_dir):
    """Writes one problem's files into root; returns the shell command that builds + runs."""
    if lang == "cpp":
        open(os.path.join(root, "main.cpp"), "w").write(code + "\n" + d["test"])
        return "g++ -std=c++17 -o prog main.cpp -lcrypto -lm && ./prog"
    if lang == "java":
        open(os.path.join(root, "Main.java"), "w").write(code + "\n" + d["test"])
        return ("javac %s -nowarn -d . Main.java && java %s -cp . Main" %
                (" ".join("-J" + f for f in JVM), " ".join(JVM)))
    if lang == "javascript":
        open(os.path.join(root, "main.js"), "w").write(code + "\n" + d["test"])
        return "node main.js"
    if lang == "go":
        open(os.path.join(root, "solution.go"), "w").write(code)
        open(os.path.join(root, "main_test.go"), "w").write(
            go_test_file(d.get("test_setup", ""), d["test"]))
        return "go test -c -o prog.test . && ./prog.test -test.count=1"
    if lang == "rust":
        open(os.path.join(root, "main.rs"), "w").write("fn main(){}\n" + code + "\n" + d["test"])
        ext = ""
        for line in open(os.path.join(rust_dir, "externs")):
            name, _, f = line.strip().partition("=")
            ext += " --extern %s=%s/deps/%s" % (name, rust_dir, f)
        return ("rustc --edition 2021 --test -C debuginfo=0 -o prog -L dependency=%s/deps%s "
                "main.rs && ./prog -q --test-threads=1" % (rust_dir, ext))
    raise SystemExit("plain_x: unknown language " + lang)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--language", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rust-dir", default="")
    a = ap.parse_args()
    with gzip.open(a.data, "rt") as f:
        data = {d["task_id"]: d for d in map(json.loads, f)}
    codes = {}
    for line in open(a.results):
        r = json.loads(line)
        codes[r["task_id"]] = r.get("code") or ""
    if a.language == "rust" and not a.rust_dir:
        dirs = sorted(glob.glob("/var/cache/gryphgen/rust-*[0-9a-f]"))
        a.rust_dir = dirs[-1] if dirs else ""
    env = dict(os.environ, PATH="/usr/bin:/bin", GO111MODULE="off",
               GOPATH="/usr/share/gocode", GOPROXY="off", CGO_ENABLED="0",
               NODE_PATH=os.environ.get("GRYPHGEN_NODE_PATH", "/usr/local/lib/node_modules"))
    work = tempfile.mkdtemp(prefix="gg-plain-x-")
    jobs = []
    for i, (tid, d) in enumerate(sorted(data.items())):
        root = os.path.join(work, "p%03d" % i)
        os.mkdir(root)
        jobs.append((root, prepare(a.language, d, codes.get(tid, ""), root, a.rust_dir)))

    def run(job):
        root, cmd = job
        p = subprocess.run(["/bin/sh", "-c", cmd], cwd=root, env=dict(env, HOME=os.environ.get(
            "HOME", root)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        return p.returncode == 0 and b"Assertion failed" not in p.stderr

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        ok = list(ex.map(run, jobs))
    wall = time.monotonic() - t0
    failed = [tid for tid, good in zip(sorted(data), ok) if not good]
    if failed:
        print("plain_x: failed: " + " ".join(failed), file=sys.stderr)
    subprocess.run(["rm", "-rf", work])
    print(json.dumps({"wall_s": wall, "passed": sum(ok), "total": len(ok),
                      "language": a.language}))


main()
