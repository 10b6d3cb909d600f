"""test_refusals.py - a refused client hears why, through the commands: `gryphgen serve` with
CURVE keys admitting a worker key and a submitter key. `submit`, `status` and `cancel` run with
the worker's key are answered "forbidden: role worker may not ..." and exit 2 (before, the
orchestrator dropped them silently and the client timed out saying nothing useful); a worker
run with the submitter's key logs why it is not taken. A
submitter's file with a task of an unknown language gets that task's error by its place in
the batch, exit 2, while the good tasks are taken."""

import json
import os

from gridtest import (GUARD_S, check, curve_keys, finish, free_port, gg, keygen, read_log, start,
                      stop_all, tmpdir, up, wait_until)

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
serve_log = os.path.join(work, "serve.log")


try:
    keys, auth = curve_keys(work)
    (server_key, server_pub), (worker_key, _), (sub_key, _) = \
        keys["server"], keys["worker"], keys["submitter"]
    serve = start(["serve", "--bind", ep, "--db", os.path.join(work, "grid.db"), "--key",
                   server_key, "--authorized-keys", auth, "--log-level", "info"], serve_log)

    def as_submitter(args):
        return gg(args + ["--connect", ep, "--key", sub_key, "--server-key", server_pub],
                  timeout=GUARD_S)

    def answers():
        p = as_submitter(["status"])
        return p.returncode == 0 and "nodes" in p.stdout

    up("the orchestrator answers the submitter", answers, serve)

    tasks = os.path.join(work, "tasks.jsonl")
    with open(tasks, "w") as f:
        f.write(json.dumps({"task_id": "good1", "language": "python", "prompt": "x"}) + "\n")
        f.write(json.dumps({"task_id": "bad", "language": "cobol", "prompt": "x"}) + "\n")
        f.write(json.dumps({"task_id": "good2", "language": "c", "prompt": "x"}) + "\n")

    worker_args = ["--connect", ep, "--key", worker_key, "--server-key", server_pub]
    for cmd, verb in ((["submit", tasks], "submit"), (["status"], "ask for status"),
                      (["cancel", "good1"], "cancel")):
        p = gg(cmd + worker_args, timeout=GUARD_S)
        check(p.returncode == 2, "%s with a worker key: exit 2" % cmd[0],
              "exit %d: %s" % (p.returncode, p.stderr))
        check("forbidden: role worker may not %s" % verb in p.stderr,
              "%s with a worker key says why" % cmd[0], p.stderr)
    log = read_log(serve_log)
    check("not allowed for role 'worker'" in log, "the serve log shows the refusals", log)

    # A key the orchestrator does not list is refused in the handshake, where no answer can
    # come: the client's time-out names the likely causes.
    stranger_key, _ = keygen(work, "stranger")
    p = gg(["status", "--connect", ep, "--key", stranger_key, "--server-key", server_pub],
           timeout=GUARD_S)
    check(p.returncode != 0 and "does it list this client's key" in p.stderr,
          "an unlisted key's time-out names the likely causes", p.stderr)

    # A worker started with the submitter's key is told why it is not taken.
    wlog = os.path.join(work, "worker.log")
    start(["worker", "--connect", ep, "--key", sub_key, "--server-key", server_pub,
           "--name", "mistaken"], wlog)

    def worker_told():
        try:
            with open(wlog, errors="replace") as f:
                return "forbidden: role submitter may not say hello as a worker" in f.read()
        except OSError:
            return False

    check(wait_until(worker_told), "a worker with a submitter key logs the refusal",
          open(wlog, errors="replace").read() if os.path.exists(wlog) else "")

    p = as_submitter(["submit", tasks])
    check(p.returncode == 2, "a batch with a bad task: exit 2", p.stderr)
    check("task 2 of the batch" in p.stderr and "language" in p.stderr,
          "the bad task's error names its place and the field", p.stderr)
    check(p.stdout.split() == ["good1", "good2"], "the good tasks are taken", p.stdout)
finally:
    stop_all()
finish()
