"""test_http_metrics.py - GET /metrics of `gryphgen serve --http` (issue 19): the text passes
`promtool check metrics` (Debian's prometheus package; the same check rejects a broken
exposition, so it can fail), the task counters come from the database and survive a
restart, an observer token is needed, and a real Prometheus server (started here on
loopback, stopped by PID) scrapes it: its API shows the target up and a gryphgen metric."""

import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request

from gridtest import (GUARD_S, check, finish, free_port, kill, read_log, require, skip, start,
                      stop_all, tmpdir, wait_until)
from httptest import api_url, call, jsonl, task, token_file

promtool = shutil.which("promtool")
prometheus = shutil.which("prometheus")
if not promtool or not prometheus:
    skip("promtool or prometheus is not installed (Debian package prometheus)")

work = tmpdir()
db = os.path.join(work, "grid.db")
OBS, SUB = "obs-" + os.urandom(12).hex(), "sub-" + os.urandom(12).hex()
tokens = token_file(os.path.join(work, "tokens"), ["%s observer" % OBS, "%s submitter" % SUB])


def promtool_check(text):
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=GUARD_S)
    return p.returncode, (p.stdout + p.stderr).strip()


def value(text, name_and_labels):
    for line in text.splitlines():
        if line.startswith(name_and_labels + " "):
            return float(line.split()[-1])
    return None


def serve(log):
    p = start(["serve", "--insecure", "--bind", "tcp://127.0.0.1:%d" % free_port(), "--db", db,
               "--local", "1", "--http", "127.0.0.1:0", "--http-tokens", tokens], log)
    return p, api_url(log, p)


def prom_query(base, q):
    try:
        with urllib.request.urlopen(base + "/api/v1/query?query=" + urllib.parse.quote(q),
                                    timeout=GUARD_S) as r:
            return json.load(r).get("data", {}).get("result", [])
    except OSError:
        return []


prom = None
try:
    proc, url = serve(os.path.join(work, "serve.log"))
    check(url is not None, "serve prints its HTTP API URL")
    st, body, _ = call(url + "/v1/tasks", "POST", SUB,
                       jsonl([task("m%d" % i, passes=i % 3 != 0) for i in range(6)]))
    check(st == 201, "six tasks are taken", (st, body))

    def ended():
        st, body, _ = call(url + "/metrics", token=OBS)
        if st == 200 and (value(body, 'gryphgen_tasks_total{status="passed"}') or 0) + \
                (value(body, 'gryphgen_tasks_total{status="failed"}') or 0) == 6:
            return body
        return None
    text = wait_until(ended)
    check(text is not None, "the metrics count six ended tasks")
    text = text or ""
    st, _, hdrs = call(url + "/metrics")
    check(st == 401, "/metrics needs a token", st)
    st, _, hdrs = call(url + "/metrics", token=OBS)
    check(hdrs.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
          "the exposition's content type", hdrs.get("Content-Type"))
    rc, out = promtool_check(text)
    check(rc == 0 and out == "", "promtool check metrics passes without a complaint", out)
    rc, out = promtool_check(text + "# TYPE gryphgen_broken counter\ngryphgen_broken 1\n")
    check(rc != 0, "promtool rejects a counter named against the rules (the check can fail)",
          out)
    check(value(text, 'gryphgen_tasks_total{status="passed"}') == 4 and
          value(text, 'gryphgen_tasks_total{status="failed"}') == 2,
          "tasks by status: 4 passed, 2 failed", text[:600])
    check(value(text, 'gryphgen_attempts_total{outcome="passed"}') == 4,
          "attempts by outcome count the passing attempts")
    check(value(text, 'gryphgen_attempt_stage_duration_seconds_count{stage="execute"}') >= 6,
          "the execute stage histogram saw every attempt")
    check(value(text, 'gryphgen_model_requests_total{arm="replay",status="ok"}') >= 6,
          "model requests are counted by arm")
    check((value(text, "gryphgen_db_write_duration_seconds_count") or 0) > 0,
          "database writes are timed")
    check(value(text, 'gryphgen_nodes{state="ready"}') == 1 and
          value(text, "gryphgen_slots_capacity") == 1, "one node with one slot")
    for name in ("gryphgen_queue_depth", "gryphgen_dropped_messages_total",
                 "gryphgen_generator_tokens_total", "gryphgen_slots_busy"):
        check(value(text, name) is not None, "%s is present" % name)

    # Restart on the same database: the task counters are still there.
    kill(proc, signal.SIGTERM)
    proc, url = serve(os.path.join(work, "serve2.log"))
    st, text2, _ = call(url + "/metrics", token=OBS)
    check(st == 200 and value(text2, 'gryphgen_tasks_total{status="passed"}') == 4,
          "after a restart gryphgen_tasks_total still counts 4 passed", str(text2)[:400])

    # A real Prometheus scrapes it.
    ppath = os.path.join(work, "prom")
    os.makedirs(ppath)
    cred = os.path.join(ppath, "token")
    with open(cred, "w") as f:
        f.write(OBS)
    os.chmod(cred, 0o600)
    target = url.split("://", 1)[1]
    conf = os.path.join(ppath, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: gryphgen\n    metrics_path: /metrics\n"
                "    authorization:\n      credentials_file: %s\n"
                "    static_configs:\n      - targets: ['%s']\n" % (cred, target))
    pport = free_port()
    plog = open(os.path.join(ppath, "prometheus.log"), "w")
    prom = subprocess.Popen([prometheus, "--config.file=" + conf,
                             "--storage.tsdb.path=" + os.path.join(ppath, "data"),
                             "--web.listen-address=127.0.0.1:%d" % pport],
                            stdout=plog, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % pport
    seen = []

    def target_up():
        seen[:] = [r for r in prom_query(base, 'up{job="gryphgen"}') if r["value"][1] == "1"]
        return seen
    # What follows stands on Prometheus: one that exited (say its port was taken) or never
    # saw the target up ends the script here (require).
    wait_until(lambda: target_up() or prom.poll() is not None, timeout=120)
    require(bool(seen) and prom.poll() is None, "Prometheus shows the target up",
            (prom.returncode, prom_query(base, "up"), read_log(plog.name)[-1500:]))
    got = wait_until(lambda: prom_query(base, 'gryphgen_tasks_total{status="passed"}'),
                     timeout=120)
    check(bool(got) and got[0]["value"][1] == "4",
          "Prometheus holds gryphgen_tasks_total from the scrape", got)
finally:
    if prom is not None and prom.poll() is None:
        prom.terminate()
        try:
            prom.wait(timeout=GUARD_S)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
    stop_all()
finish()
