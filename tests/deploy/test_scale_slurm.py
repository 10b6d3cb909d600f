"""test_scale_slurm.py - `gryphgen scale --engine slurm` against a real single-node Slurm that
this test starts (munged, slurmctld and slurmd with a key and a slurm.conf in a temporary
directory, on loopback ports, stopped by PID at the end):

  A. tasks queued, a scaler with --min-jobs 0 --max-jobs 2: every task passes, never more than
     two jobs exist, then the workers idle out and their jobs end (squeue empty) while the
     scaler still runs; SIGTERM ends it with status 0.
  B. SIGTERM to a scaler while its jobs run tasks: it leaves no job behind.
  C. a new scaler picks up what B left; one running job is scancel'ed (SIGTERM to its worker)
     and another killed with SIGKILL mid-task: every task still ends exactly once, passed,
     with no attempt recorded twice.
  D. workers that exit at once (--worker-exe /bin/false) hold new submissions back.
  E. sbatch refusing the job (no such partition) is said at each try.

Needs root and Debian's slurm-wlm and munge; skipped (77) otherwise."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import (GUARD_S, GRYPHGEN, check, env, finish, free_port, gg,  # noqa: E402
                      kill, no_sanitizer_report, query, read_log, skip, start, status,
                      require, stop_all, tmpdir, up, wait_until)

NEEDED = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
if os.geteuid() != 0:
    skip("needs root to run slurmctld and slurmd (SlurmUser=root)")
missing = [p for p in NEEDED if not shutil.which(p)]
if missing:
    skip("needs Slurm and munge (Debian: slurm-wlm munge); missing: " + " ".join(missing))
if not os.path.exists("/usr/bin/python3"):
    skip("needs /usr/bin/python3 to run the tasks")

work = tmpdir()
os.chmod(work, 0o711)
daemons = []  # (name, Popen), stopped by PID in reverse order


def daemon(name, argv, extra_env=None):
    log = open(os.path.join(work, name + ".out"), "ab")
    p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         env=env(**(extra_env or {})))
    log.close()
    daemons.append((name, p))
    return p


def slurm_env():
    return env(SLURM_CONF=os.path.join(work, "slurm.conf"))


def slurm(argv, timeout=GUARD_S):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=slurm_env())


def jobs(name):
    """[(id, state)] of the jobs named name."""
    p = slurm(["squeue", "--noheader", "--name=" + name, "--format=%i %T"])
    if p.returncode != 0:
        return None
    return [tuple(l.split()) for l in p.stdout.splitlines() if l.strip()]


def start_slurm():
    mdir = os.path.join(work, "munge")
    os.mkdir(mdir, 0o711)
    key = os.path.join(mdir, "munge.key")
    p = subprocess.run(["mungekey", "-c", "-k", key], capture_output=True, text=True)
    check(p.returncode == 0, "mungekey makes a key", p.stderr)
    os.chmod(key, 0o400)  # munged refuses a key others may read; root owns it here
    sock = os.path.join(mdir, "munge.socket")
    munged = daemon("munged", ["munged", "-F", "--force", "--key-file=" + key, "--socket=" + sock,
                      "--pid-file=" + os.path.join(mdir, "munged.pid"),
                      "--seed-file=" + os.path.join(mdir, "munged.seed"),
                      "--log-file=" + os.path.join(mdir, "munged.log")])
    require(wait_until(lambda: os.path.exists(sock) or munged.poll() is not None) and
            munged.poll() is None, "munged makes its socket",
            read_log(os.path.join(work, "munged.out")))
    for d in ("state", "spool"):
        os.mkdir(os.path.join(work, d), 0o700)
    cpus = os.cpu_count() or 1
    conf = "\n".join([
        "ClusterName=ggtest",
        "SlurmctldHost=localhost(127.0.0.1)",
        "SlurmctldPort=%d" % free_port(),
        "SlurmdPort=%d" % free_port(),
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge",
        "AuthInfo=socket=" + sock,
        "StateSaveLocation=" + os.path.join(work, "state"),
        "SlurmdSpoolDir=" + os.path.join(work, "spool"),
        "SlurmctldPidFile=" + os.path.join(work, "slurmctld.pid"),
        "SlurmdPidFile=" + os.path.join(work, "slurmd.pid"),
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "MpiDefault=none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "SwitchType=switch/none",
        "ReturnToService=2", "KillWait=5",
        "NodeName=localhost NodeAddr=127.0.0.1 CPUs=%d RealMemory=256 State=UNKNOWN" % cpus,
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"
    with open(os.path.join(work, "slurm.conf"), "w") as f:
        f.write(conf)
    senv = {"SLURM_CONF": os.path.join(work, "slurm.conf")}
    ctld = daemon("slurmctld", ["slurmctld", "-D", "-i"], senv)
    slurmd = daemon("slurmd", ["slurmd", "-D", "-N", "localhost"], senv)

    def idle():
        p = slurm(["sinfo", "--noheader", "--format=%t"])
        return p.returncode == 0 and p.stdout.strip() == "idle"

    def died():
        return any(d.poll() is not None for d in (munged, ctld, slurmd))
    # The rest of the script stands on the cluster: without it, it ends here (require).
    require(wait_until(lambda: died() or idle()) and not died(),
            "the single-node cluster comes up idle",
            read_log(os.path.join(work, "slurmctld.out"))[-1500:] +
            read_log(os.path.join(work, "slurmd.out"))[-1500:])


def write_tasks(path, prefix, n, sleep_s):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({
                "task_id": "%s%02d" % (prefix, i), "language": "python", "prompt": "",
                "entry_point": "f",
                "test": "import time\ntime.sleep(%s)\nassert f() == %d\n" % (sleep_s, i),
                "candidates": ["def f():\n    return %d\n" % i],
                "budget": {"max_attempts": 1}}) + "\n")


def scaler(ep, sid, max_jobs=2, extra=()):
    return subprocess.Popen(
        [GRYPHGEN, "scale", "--insecure", "--connect", ep, "--engine", "slurm",
         "--min-jobs", "0", "--max-jobs", str(max_jobs), "--slots", "1", "--idle-s", "3",
         "--poll-ms", "300", "--id", sid, "--log-level", "info",
         "--sbatch-arg=--output=" + os.path.join(work, "job-%j.out")] + list(extra),
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "scale-%s.log" % sid), "ab"),
        env=slurm_env())


def end_scaler(p, what):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=GUARD_S * 2)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    check(rc == 0, what + ": SIGTERM ends the scaler with status 0", rc)


def passed(db, prefix):
    rows = query(db, "SELECT count(*) FROM tasks WHERE status = 'passed' AND task_id LIKE ?",
                 (prefix + "%",)) if os.path.exists(db) else [(0,)]
    return rows[0][0]


def bad_input(ep):
    for args, what in ((["--engine", "pbs"], "an unknown engine"),
                       (["--min-jobs", "3", "--max-jobs", "2"], "--min-jobs over --max-jobs"),
                       (["--id", "no/slash"], "an id with a slash"),
                       (["--label", "nokey"], "a label without ="),
                       (["--max-jobs", "0"], "--max-jobs 0")):
        p = gg(["scale", "--insecure", "--connect", ep] + args)
        check(p.returncode == 2 and p.stderr.startswith("gryphgen: "), "scale refuses " + what,
              (p.returncode, p.stderr))
    p = gg(["scale", "--engine", "slurm"])
    check(p.returncode == 2 and "--connect" in p.stderr, "scale wants --connect", p.stderr)
    p = gg(["worker", "--insecure", "--connect", ep, "--idle-s", "0"])
    check(p.returncode == 2 and "--idle-s" in p.stderr, "worker refuses --idle-s 0", p.stderr)


db = os.path.join(work, "grid.db")
ep = "tcp://127.0.0.1:%d" % free_port()
try:
    start_slurm()
    serve = start(["serve", "--insecure", "--bind", ep, "--db", db],
                  os.path.join(work, "serve.log"))
    up("serve answers", lambda: status(ep) is not None, serve)
    bad_input(ep)

    # A: the happy path, and workers idling out.
    ta = os.path.join(work, "a.jsonl")
    write_tasks(ta, "a", 8, 0.5)
    check(gg(["submit", "--insecure", "--connect", ep, ta]).returncode == 0, "A: submitted")
    sa = scaler(ep, "A")
    most = [0]

    def a_done():
        j = jobs("gryphgen-A") or []
        most[0] = max(most[0], len(j))
        return passed(db, "a") == 8
    check(wait_until(a_done), "A: all 8 tasks pass on workers in Slurm jobs",
          read_log(os.path.join(work, "scale-A.log"))[-2000:])
    check(1 <= most[0] <= 2, "A: one or two jobs existed, never more than --max-jobs", most[0])
    check(wait_until(lambda: jobs("gryphgen-A") == []),
          "A: the idle workers exit and their jobs end", jobs("gryphgen-A"))
    check(sa.poll() is None, "A: the scaler keeps running with no job")
    end_scaler(sa, "A")

    # B: SIGTERM while jobs run tasks.
    tb = os.path.join(work, "b.jsonl")
    write_tasks(tb, "b", 6, 4)
    check(gg(["submit", "--insecure", "--connect", ep, tb]).returncode == 0, "B: submitted")
    sb = scaler(ep, "B")

    def busy_nodes(k):
        s = status(ep) or {}
        return len([n for n in s.get("nodes", []) if n.get("busy", 0) >= 1]) >= k
    check(wait_until(lambda: len([j for j in jobs("gryphgen-B") or [] if j[1] == "RUNNING"])
                     == 2 and busy_nodes(2)), "B: two jobs run tasks", jobs("gryphgen-B"))
    end_scaler(sb, "B")
    check(jobs("gryphgen-B") == [], "B: no job is left once the scaler has ended",
          jobs("gryphgen-B"))
    check("no job named gryphgen-B is left" in read_log(os.path.join(work, "scale-B.log")),
          "B: the scaler says so")

    # C: B's tasks and more, with one job scancel'ed and one SIGKILLed mid-task.
    tc = os.path.join(work, "c.jsonl")
    write_tasks(tc, "c", 4, 2)
    check(gg(["submit", "--insecure", "--connect", ep, tc]).returncode == 0, "C: submitted")
    sc = scaler(ep, "C")
    for how in (["scancel"], ["scancel", "--signal=KILL"]):
        running = []

        def one_running():
            running[:] = [j[0] for j in jobs("gryphgen-C") or [] if j[1] == "RUNNING"]
            return running and busy_nodes(1) and passed(db, "b") + passed(db, "c") < 10
        if not check(wait_until(one_running), "C: a job runs a task before " + how[-1],
                     jobs("gryphgen-C")):
            break
        p = slurm(how + [running[0]])
        check(p.returncode == 0, "C: " + " ".join(how) + " of a running job", p.stderr)
        check(wait_until(lambda: running[0] not in [j[0] for j in jobs("gryphgen-C") or []]),
              "C: the killed job leaves squeue")
    check(wait_until(lambda: passed(db, "b") + passed(db, "c") == 10),
          "C: every task of B and C passes",
          query(db, "SELECT task_id, status FROM tasks WHERE status != 'passed'"))
    rows = query(db, "SELECT status, count(*) FROM tasks GROUP BY status")
    check(rows == [("passed", 18)], "every task ended passed, each once", rows)
    att = query(db, "SELECT count(*), count(DISTINCT task_seq || '/' || n), max(n) "
                    "FROM attempts")[0]
    check(att == (18, 18, 1), "one attempt recorded per task, none twice", att)
    check("a task ends once" not in read_log(os.path.join(work, "serve.log")),
          "the store never refused a second end")
    requeued = query(db, "SELECT count(*) FROM events WHERE kind = 'job.requeued'")[0][0]
    check(requeued >= 1, "the killed jobs' work was requeued", requeued)
    end_scaler(sc, "C")
    check(jobs("gryphgen-C") == [], "C: no job is left", jobs("gryphgen-C"))

    # D: workers that cannot run there (they exit at once) hold submissions back; E: sbatch
    # refuses the job (no such partition): said, and the scaler goes on.
    td = os.path.join(work, "d.jsonl")
    write_tasks(td, "d", 1, 0)
    check(gg(["submit", "--insecure", "--connect", ep, td]).returncode == 0, "D: submitted")
    sd = scaler(ep, "D", extra=["--worker-exe", "/bin/false"])
    dlog = os.path.join(work, "scale-D.log")
    check(wait_until(lambda: "ended soon after they started" in read_log(dlog)),
          "D: jobs that end at once hold back new ones", read_log(dlog)[-1500:])
    end_scaler(sd, "D")
    check(jobs("gryphgen-D") == [], "D: no job is left", jobs("gryphgen-D"))
    se = scaler(ep, "E", extra=["--sbatch-arg=--partition=nosuch"])
    elog = os.path.join(work, "scale-E.log")
    check(wait_until(lambda: read_log(elog).count("sbatch failed") >= 2),
          "E: a refused sbatch is said at each try", read_log(elog)[-1500:])
    end_scaler(se, "E")
    for name in sorted(os.listdir(work)):
        if name.startswith("job-") or name.startswith("scale-"):
            no_sanitizer_report(read_log(os.path.join(work, name)), name)
finally:
    for sid in ("A", "B", "C", "D", "E"):  # whatever a failed check left
        left = jobs("gryphgen-" + sid) if daemons else None
        if left:
            slurm(["scancel"] + [j[0] for j in left])
            wait_until(lambda: not jobs("gryphgen-" + sid), timeout=30)
    stop_all()
    for name, p in reversed(daemons):
        kill(p, signal.SIGTERM)
    if os.environ.get("GG_KEEP_WORK"):
        print("kept " + work)
    else:
        shutil.rmtree(work, ignore_errors=True)
finish()
