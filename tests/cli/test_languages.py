"""test_languages.py - every language beyond Python and C through `gryphgen eval` at the
default (strongest) isolation: for C++, Go, Java, JavaScript and Rust the first problems of
HumanEval-X (../shared/data/humaneval-x, read unchanged) pass with --generator reference; a
wrong answer fails with the language's own feedback (a C++ assert, a Go test's failure, a
Java AssertionError, a JavaScript console.assert that only prints, a Rust panic); a program
that does not compile is reported as findings with a line. TypeScript and Bash use small
tasks of their own. A language whose toolchain is missing is skipped, unless
GRYPHGEN_REQUIRE_TOOLCHAINS=1 (CI installs them all), and so is HumanEval-X when absent."""

import gzip
import json
import os
import shutil

from clitest import (GRYPHGEN, SOURCE_ROOT, check, finish, gg, read_jsonl, skip, summary,
                     tmpdir)

SAMPLE = 5
DATA = os.path.join(SOURCE_ROOT, "..", "shared", "data", "humaneval-x")
REQUIRE = os.environ.get("GRYPHGEN_REQUIRE_TOOLCHAINS") == "1"

doctor = json.loads(gg(["doctor", "--json"]).stdout)
have = set(doctor.get("languages", []))

# file, wrong body, body that does not compile, what the failure must say
HX = {
    "cpp": ("humaneval_cpp.jsonl.gz", "    return false;\n}\n", "    return (;\n}\n",
            "assertion `"),
    "go": ("humaneval_go.jsonl.gz", "    return false\n}\n", "    return (\n}\n",
           "failed at main_test.go line"),
    "java": ("humaneval_java.jsonl.gz", "        return false;\n    }\n}\n",
             "        return (;\n    }\n}\n", "AssertionError at Main.java line"),
    "javascript": ("humaneval_js.jsonl.gz", "  return false\n}\n", "  return (;\n}\n",
                   "Assertion failed"),
    "rust": ("humaneval_rust.jsonl.gz", "    return false;\n}\n", "    return (;\n}\n",
             "panicked at main.rs line"),
}

OWN = {
    "typescript": ({"stub": "function add(a: number, b: number): number {\n",
                    "test": "console.assert(add(1, 2) === 3);\nconsole.log('done');\n"},
                   "  return a + b;\n}\n", "  return a - b;\n}\n",
                   "  const s: string = a;\n  return 0;\n}\n", "Assertion failed"),
    "bash": ({"stub": "add() {\n", "test": "[ \"$(add 1 2)\" = 3 ] || exit 1\n"},
             "  echo $(( $1 + $2 ))\n}\n", "  echo 0\n}\n", "  if then\n}\n", "exit code 1"),
}

work = tmpdir()
ran = 0


def run_eval(tasks, name):
    path = os.path.join(work, name + ".jsonl")
    res = os.path.join(work, name + ".results.jsonl")
    with open(path, "w") as f:
        for t in tasks:
            # A slow compiler on a busy machine (tsc took 12 s at load 25) is no failure of
            # the program: each job gets a minute.
            t = dict(t, resources=dict(t.get("resources") or {}, timeout_s=60))
            f.write(json.dumps(t) + "\n")
    p = gg(["eval", "--generator", "reference", "--jobs", "2", "--quiet", "--results", res,
            path], timeout=900)
    return p, summary(p.stdout), {r["task_id"]: r for r in read_jsonl(res)}


def findings_of(r):
    out = []
    for h in r.get("history", []):
        out += (h.get("analysis") or {}).get("findings") or []
    return out


def check_language(lang, good, wrong, broken, says):
    p, s, res = run_eval(good, lang + "-good")
    check(s.get("passed at first attempt") == len(good),
          "%s: %d reference solutions pass" % (lang, len(good)), p.stdout + p.stderr[-3000:] +
          json.dumps([r.get("reason") for r in res.values()])[:3000])
    p, s, res = run_eval([wrong, broken], lang + "-bad")
    check(s.get("failed") == 2, "%s: the wrong and the broken answer fail" % lang, p.stdout)
    w = res.get(wrong["task_id"], {})
    check(w.get("status") == "failed" and says in (w.get("reason") or ""),
          "%s: a wrong answer fails saying '%s'" % (lang, says), w.get("reason"))
    b = res.get(broken["task_id"], {})
    f = findings_of(b)
    check(b.get("status") == "failed" and any(x.get("severity") == "error" and
                                              x.get("line", 0) > 0 for x in f),
          "%s: code that does not compile is reported as findings with a line" % lang,
          json.dumps(b)[:3000])


for lang, (fname, wrong_body, broken_body, says) in HX.items():
    path = os.path.join(DATA, fname)
    if lang not in have:
        check(not REQUIRE, "%s: toolchain present (GRYPHGEN_REQUIRE_TOOLCHAINS=1)" % lang)
        print("skipped %s: no toolchain" % lang)
        continue
    if not os.path.exists(path):
        print("skipped %s: %s is absent" % (lang, os.path.normpath(path)))
        continue
    with gzip.open(path, "rt") as f:
        lines = [json.loads(line) for _, line in zip(range(SAMPLE), f)]
    wrong = dict(lines[0], task_id=lines[0]["task_id"] + "-wrong",
                 canonical_solution=wrong_body)
    broken = dict(lines[0], task_id=lines[0]["task_id"] + "-broken",
                  canonical_solution=broken_body)
    check_language(lang, lines, wrong, broken, says)
    ran += 1

for lang, (base, good_body, wrong_body, broken_body, says) in OWN.items():
    if lang not in have:
        check(not REQUIRE, "%s: toolchain present (GRYPHGEN_REQUIRE_TOOLCHAINS=1)" % lang)
        print("skipped %s: no toolchain" % lang)
        continue
    mk = lambda suffix, body: dict(base, task_id="%s-%s" % (lang, suffix), language=lang,
                                   canonical_solution=body)
    check_language(lang, [mk("good", good_body)], mk("wrong", wrong_body),
                   mk("broken", broken_body), says)
    ran += 1

# The sandbox holds for every language: at the namespaces level a job runs as uid 65534, cannot
# write outside its workspace (nor into a prepared toolchain directory shared by all jobs) and
# has no network.
if doctor.get("best") == "namespaces":
    probes = []
    if "bash" in have:
        probes.append({"task_id": "iso-bash", "language": "bash", "stub": "",
                       "canonical_solution": "true\n",
                       "test": "[ \"$(id -u)\" = 65534 ] || { echo uid >&2; exit 1; }\n"
                               "if touch /usr/gg-probe 2>/dev/null; then echo usr >&2; exit 1; fi\n"
                               "if (exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null; then echo net >&2;"
                               " exit 1; fi\n"})
    if "go" in have:
        probes.append({"task_id": "iso-go", "language": "go", "stub": "",
                       "canonical_solution": "func f() int { return 1 }\n",
                       "test": "package main\n\nimport (\n    \"os\"\n    \"testing\"\n)\n\n"
                               "func TestIso(t *testing.T) {\n"
                               "    if os.Getuid() != 65534 { t.Fatal(\"uid\") }\n"
                               "    err := os.WriteFile(os.Getenv(\"GOCACHE\")+\"/x\", nil, 0644)\n"
                               "    if err == nil { t.Fatal(\"the shared Go cache is writable\") }\n"
                               "    if f() != 1 { t.Fatal(\"f\") }\n}\n"})
    if probes:
        p, s, res = run_eval(probes, "isolation")
        check(s.get("passed at first attempt") == len(probes),
              "every language's job is isolated (uid 65534, read-only outside, no network)",
              json.dumps([(r["task_id"], r.get("reason")) for r in res.values()]))

# A language that is not supported is refused with the list of those that are.
p = gg(["eval", "--generator", "reference", "-"],
       input=json.dumps({"task_id": "x", "language": "cobol", "test": ""}) + "\n")
check("supported are: python, c, cpp, java, javascript, typescript, go, rust, bash"
      in p.stderr + p.stdout, "an unknown language is refused, naming the supported ones",
      p.stderr)

shutil.rmtree(work, ignore_errors=True)
if not ran:
    skip("no language beyond Python and C could run here")
finish()
