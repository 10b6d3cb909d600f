"""Shared fixtures of the gryphgen binding's tests. The package is imported from this source
tree (set GRYPHGEN_TEST_INSTALLED=1 to test an installed copy instead); the library comes
from $GRYPHGEN_LIBRARY, else from $GG_BUILD_ROOT/lib (as meson test sets it), else from the
dynamic linker's path."""

import os
import socket
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("GG_SOURCE_ROOT") or os.path.abspath(os.path.join(HERE, "..", "..", ".."))

if os.environ.get("GRYPHGEN_TEST_INSTALLED") != "1":
    sys.path.insert(0, os.path.dirname(HERE))
if not os.environ.get("GRYPHGEN_LIBRARY") and os.environ.get("GG_BUILD_ROOT"):
    os.environ["GRYPHGEN_LIBRARY"] = os.path.join(os.environ["GG_BUILD_ROOT"], "lib",
                                                  "libgryphgen.so.1")

# The interpreter the tasks run with. A venv's python is a link to the real one; the link
# itself may be invisible to a sandboxed job (a venv under /tmp: the sandbox's /tmp is its
# own), so the tasks get the file it points to.
PYTHON = os.path.realpath(sys.executable) if sys.executable else "/usr/bin/python3"

# How long a test waits for something before it fails: a guard against hangs on a busy
# machine, never a measure of speed.
GUARD_S = 90.0


def wait_until(cond, timeout=GUARD_S, step=0.02):
    """Calls cond until it returns a true value and returns that value; None when timeout
    seconds pass first."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v or None
        time.sleep(step)


def _load_free_port():
    """The shared port picker of the repository's tests (tests/common/testports.py: below the
    ephemeral range, reserved across concurrent tests); where the tests run without the
    source tree, a port the kernel hands out for a bind to port 0."""
    common = os.path.join(SOURCE_ROOT, "tests", "common")
    if os.path.isfile(os.path.join(common, "testports.py")):
        sys.path.insert(0, common)
        try:
            from testports import free_port as picker
            return picker
        finally:
            sys.path.remove(common)

    def picker():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    return picker


# A TCP port on 127.0.0.1 for a server a test starts: free_port() (see _load_free_port).
free_port = _load_free_port()


def add_task(task_id="t/add", candidates=("    return a + b\n",), **extra):
    """A small Python task whose replay candidates are given."""
    task = {
        "task_id": task_id,
        "language": "python",
        "prompt": "Return the sum of a and b.",
        "stub": "def add(a, b):\n",
        "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"
                "    assert candidate(-1, 1) == 0\n",
        "candidates": list(candidates),
    }
    task.update(extra)
    return task


@pytest.fixture
def gg():
    import gryphgen
    return gryphgen


@pytest.fixture
def orch(gg):
    """An orchestrator with defaults (temporary database), two workers."""
    with gg.Orchestrator(workers=2, python=PYTHON) as o:
        yield o
