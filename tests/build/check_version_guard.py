"""check_version_guard.py - meson.build refuses a public header whose GG_VERSION_STRING is
not the project's version (the headers, gg_version_string() and the Python binding must say
what meson says). On a copy of the source tree (without .git and build directories): meson
setup succeeds as the tree is, and fails naming include/gryphgen/common.h and the project's
version when the header's string is another version, a near miss of it, or missing.
Usage: check_version_guard.py SOURCE_ROOT [MESON]; skipped (77) without meson."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HEADER = os.path.join("include", "gryphgen", "common.h")
DEFINE = re.compile(r'^#define GG_VERSION_STRING "([^"]*)"$', re.M)
SETUP_S = 600  # a guard against a hang only

passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what)
        if detail:
            print("      " + detail[-3000:].replace("\n", "\n      "))
    return cond


def ignore_builds(folder, names):
    """.git, caches and build directories (those meson set up) stay out of the copy."""
    return [n for n in names if n in (".git", "__pycache__") or
            os.path.isdir(os.path.join(folder, n, "meson-private"))]


def setup(meson, src, build):
    p = subprocess.run([meson, "setup", build, src], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=SETUP_S)
    return p.returncode, p.stdout


def main():
    root = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "."
    meson = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else shutil.which("meson")
    if not meson or not os.access(meson, os.X_OK):
        print("skipped: meson not found")
        return 77
    tmp = tempfile.mkdtemp(prefix="gg-version-guard-")
    try:
        src = os.path.join(tmp, "src")
        shutil.copytree(root, src, symlinks=True, ignore=ignore_builds)
        path = os.path.join(src, HEADER)
        with open(path) as f:
            header = f.read()
        m = DEFINE.search(header)
        if not check(m is not None, HEADER + " defines GG_VERSION_STRING"):
            return 1
        version = m.group(1)
        rc, out = setup(meson, src, os.path.join(tmp, "good"))
        check(rc == 0, "the tree as it is sets up", out)
        bad = [("another version", '#define GG_VERSION_STRING "0.0.0"'),
               ("a near miss", '#define GG_VERSION_STRING "%s1"' % version),
               ("no string", "")]
        for i, (what, line) in enumerate(bad):
            with open(path, "w") as f:
                f.write(DEFINE.sub(line, header, count=1))
            rc, out = setup(meson, src, os.path.join(tmp, "bad%d" % i))
            check(rc != 0 and "GG_VERSION_STRING is not " + version in out and
                  "include/gryphgen/common.h" in out,
                  "a header with %s is refused, naming the header and %s" % (what, version),
                  out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
