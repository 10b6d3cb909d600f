"""test_image.py - the image of deploy/image/make_image.sh runs a grid: the build is installed
into a temporary tree (meson install --destdir), the image is built from it into a private
Podman storage (nothing pulled), then `gryphgen serve` and `gryphgen worker` run in two
containers from it (host network, loopback endpoint) and a task set submitted from the host
passes through them. Containers are removed by id and the storage with them. Skipped (77)
without root, podman or runc."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gridtest import (GUARD_S, check, finish, free_port, gg, status,  # noqa: E402
                      require, tmpdir, wait_until)
from podmantest import build_image, need, podman_command, unmount_under  # noqa: E402

need(("podman", "runc", "meson"))
work = tmpdir()
PODMAN = podman_command(work)
IMAGE = "localhost/gryphgen:test"
# Hosts whose hard limits are under Podman's defaults refuse those: ask for what is allowed.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
containers = []


def podman(args, timeout=GUARD_S * 2):
    return subprocess.run(PODMAN + args, capture_output=True, text=True, timeout=timeout)


def run(args):
    p = podman(["run", "-d", "--network", "host"] + ULIMITS + args)
    if p.returncode == 0:
        containers.append(p.stdout.strip())
    return p


try:
    require(build_image(work, PODMAN, IMAGE), "the image is built")
    p = podman(["run", "--rm", "--network", "none"] + ULIMITS + [IMAGE, "version"])
    check(p.returncode == 0 and p.stdout.startswith("gryphgen "), "the image runs gryphgen",
          (p.stdout, p.stderr))

    data = os.path.join(work, "data")
    os.mkdir(data)
    os.chown(data, 65534, 65534)
    ep = "tcp://127.0.0.1:%d" % free_port()
    p = run(["-v", data + ":/data", IMAGE, "serve", "--insecure", "--bind", ep, "--db",
             "/data/grid.db"])
    require(p.returncode == 0, "serve starts in a container", p.stderr)
    require(wait_until(lambda: status(ep) is not None), "serve in the container answers",
            [podman(["logs", c]).stderr[-800:] for c in containers])
    p = run([IMAGE, "worker", "--insecure", "--connect", ep, "--slots", "2"])
    require(p.returncode == 0, "a worker starts in a container", p.stderr)
    require(wait_until(lambda: len((status(ep) or {}).get("nodes", [])) == 1),
          "the worker joins", [podman(["logs", c]).stderr[-800:] for c in containers])
    tasks = os.path.join(work, "t.jsonl")
    with open(tasks, "w") as f:
        for i in range(6):
            f.write(json.dumps({"task_id": "i%d" % i, "language": "python", "prompt": "",
                                "entry_point": "f", "test": "assert f() == %d\n" % i,
                                "candidates": ["def f():\n    return -1\n",
                                               "def f():\n    return %d\n" % i]}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, "--wait", "--timeout-ms",
            str(int(GUARD_S * 1000)), tasks], timeout=GUARD_S * 2)
    results = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    check(p.returncode == 0 and len(results) == 6 and
          all(r.get("status") == "passed" and r.get("attempts") == 2 for r in results),
          "a task set passes through the containers (each at its second attempt)",
          (p.returncode, [(r.get("task_id"), r.get("status")) for r in results], p.stderr,
           [podman(["logs", c]).stderr[-800:] for c in containers]))
    check(os.path.exists(os.path.join(data, "grid.db")), "the database is on the volume")
finally:
    for c in containers:
        podman(["rm", "-f", "-t", "5", c])
    podman(["rmi", "-f", IMAGE])
    unmount_under(work)
    shutil.rmtree(work, ignore_errors=True)
finish()
