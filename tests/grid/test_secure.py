"""test_secure.py - the grid with CURVE security, as real processes on loopback: keys made by
`gryphgen keygen`, `gryphgen serve --key --authorized-keys` admitting one worker key and one
submitter key. A listed worker runs tasks for a listed submitter; a client with an unknown
key is refused by the ZAP handler, and a client using the worker's key is refused by role;
both refusals appear in the serve log. Binding a non-loopback endpoint without keys is
refused with a clear message."""

import json
import os
import subprocess

from gridtest import (GRYPHGEN, GUARD_S, check, env, finish, free_port, gg, curve_keys, read_log,
                      start, stop_all, tmpdir, up, wait_until)

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
serve_log = os.path.join(work, "serve.log")


def keyed(key, server_pub):
    return ["--key", key, "--server-key", server_pub]


try:
    keys, auth = curve_keys(work, "stranger")
    (server_key, server_pub), (worker_key, _), (sub_key, _), (stranger_key, _) = \
        keys["server"], keys["worker"], keys["submitter"], keys["stranger"]

    # Without keys, a non-loopback endpoint is refused, with or without --insecure.
    wild = "tcp://0.0.0.0:%d" % free_port()
    p = gg(["serve", "--bind", wild], timeout=GUARD_S)
    check(p.returncode == 2 and "no CURVE keys" in p.stderr and "0.0.0.0" in p.stderr,
          "serve on 0.0.0.0 without keys: exit 2 with a clear message", p.stderr)
    p = gg(["serve", "--bind", wild, "--insecure"], timeout=GUARD_S)
    check(p.returncode == 2 and "not loopback" in p.stderr,
          "serve on 0.0.0.0 with --insecure: exit 2, not loopback", p.stderr)
    p = gg(["worker", "--connect", "tcp://192.0.2.1:5555"], timeout=GUARD_S)
    check(p.returncode == 2 and "no CURVE keys" in p.stderr,
          "worker to a remote address without keys: exit 2", p.stderr)
    p = gg(["status", "--connect", "tcp://192.0.2.1:5555", "--insecure"], timeout=GUARD_S)
    check(p.returncode == 2 and "not loopback" in p.stderr,
          "status to a remote address with --insecure: exit 2", p.stderr)
    # Loopback too: unencrypted only with an explicit --insecure, for serve, worker and clients.
    for cmd in (["serve", "--bind", ep], ["worker", "--connect", ep],
                ["status", "--connect", ep], ["submit", "--connect", ep, "/dev/null"]):
        p = gg(cmd, timeout=GUARD_S)
        check(p.returncode == 2 and "--insecure" in p.stderr and "no CURVE keys" in p.stderr
              and "--key" in p.stderr, "%s on loopback without keys or --insecure: exit 2 "
              "naming the flags" % cmd[0], p.stderr)
    p = gg(["serve", "--bind", ep, "--key", server_key], timeout=GUARD_S)
    check(p.returncode == 2 and "--authorized-keys" in p.stderr,
          "serve --key without --authorized-keys: exit 2", p.stderr)

    serve = start(["serve", "--bind", ep, "--db", os.path.join(work, "grid.db"), "--key",
                   server_key, "--authorized-keys", auth, "--log-level", "info"], serve_log)
    worker = start(["worker", "--connect", ep, "--slots", "2", "--name", "w1"] +
                   keyed(worker_key, server_pub), os.path.join(work, "w.log"))

    def joined():
        p = gg(["status", "--connect", ep] + keyed(sub_key, server_pub), timeout=GUARD_S)
        try:
            return p.returncode == 0 and len(json.loads(p.stdout).get("nodes", [])) == 1
        except ValueError:
            return False

    up("the listed worker joins (status with the submitter key)", joined, serve, worker)

    task = os.path.join(work, "one.jsonl")
    with open(task, "w") as f:
        f.write(json.dumps({"task_id": "solo", "language": "python", "prompt": "x",
                            "entry_point": "f", "test": "assert f() == 1",
                            "candidates": ["def f():\n    return 1\n"]}) + "\n")
    p = gg(["submit", "--connect", ep, "--wait", task] + keyed(sub_key, server_pub),
           timeout=GUARD_S)
    check(p.returncode == 0 and '"passed"' in p.stdout,
          "the submitter's task runs on the listed worker and passes", p.stdout + p.stderr)

    # Both refused clients at once (each waits out its request timeout).
    def client(key):
        return subprocess.Popen([GRYPHGEN, "submit", "--connect", ep, task] +
                                keyed(key, server_pub), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env())

    stranger = client(stranger_key)
    wrong_role = client(worker_key)
    out_s, err_s = stranger.communicate(timeout=GUARD_S)
    out_w, err_w = wrong_role.communicate(timeout=GUARD_S)
    check(stranger.returncode != 0, "a client with an unknown key is refused", out_s + err_s)
    check(wrong_role.returncode != 0, "a client with a worker-role key cannot submit",
          out_w + err_w)
    log = read_log(serve_log)
    check("not authorized" in log, "the serve log shows the unknown key's refusal", log)
    check("not allowed for role 'worker'" in log,
          "the serve log shows the role violation", log)
    check(wait_until(joined), "the listed worker and submitter still work")
finally:
    stop_all()
finish()
