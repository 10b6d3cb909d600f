"""test_ha.py - a standby pair (serve --ha-role primary|backup, docs/ha.md) on loopback:

1. 600 no-op tasks through 3 workers given both endpoints: 300 run to their end, 300 more are
   acknowledged and held by frozen workers when the primary is killed with -9; the workers
   turn to the backup by themselves, and their hellos make it take over: every task ends
   exactly once, passed, in the backup's database (one end per task, one attempt each, none
   missing), and every id the primary acknowledged is there.
2. The old primary restarted: it rejoins as backup (passive), takes a snapshot and answers
   "passive:"; its replica then holds the 600 ends.
3. The same run with the backup killed instead: the primary carries on alone.
4. Both started with no peer reachable: the primary serves alone, the backup stays passive
   and answers every hello with "passive:".
5. A primary whose database a backup left half-written (its -hadirty marker) refuses to serve
   from it and stops.
Waits on state (log lines, rows, answers), never on time."""

import json
import os
import shutil
import signal

from gridtest import (check, curve_keys, finish, free_port, gg, kill, query, read_log, require,
                      skip, start, stop_all, tmpdir, wait_until)
from zmqtest import ZMQ_DEALER, libzmq, request

libzmq()  # skips the script when libzmq cannot be loaded

if not shutil.which("/usr/bin/python3"):
    skip("needs /usr/bin/python3")

N = 600
work = tmpdir()


def tasks_file(name, first, n):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for i in range(first, first + n):
            f.write(json.dumps({"task_id": "ha%04d" % i, "language": "python",
                                "prompt": "return %d" % i, "entry_point": "f",
                                "test": "assert f() == %d\n" % i}) + "\n")
    return path


def serve(name, role, ep, peer):
    db = os.path.join(work, name + ".db")
    log = os.path.join(work, name + ".log")
    p = start(["serve", "--insecure", "--bind", ep, "--db", db, "--ha-role", role,
               "--ha-peer", peer, "--log-level", "info"], log)
    return p, db, log


def workers(ep, tag):
    """Three no-op workers given ep (a list "P,B": they move to the active one by themselves,
    on a "passive:" answer, a closed connection or silence)."""
    return [start(["worker", "--insecure", "--connect", ep, "--executor", "noop", "--slots", "2",
                   "--name", "%s%d" % (tag, i), "--log-level", "info"],
                  os.path.join(work, "%s%d.log" % (tag, i))) for i in range(3)]


def freeze(ps, sig):
    for p in ps:
        os.kill(p.pid, sig)


def raw_hello(ep):
    """Says hello as a client over a plain DEALER (the command's own client keeps asking a
    passive server until its deadline, as a client given one endpoint should) and returns the
    first answer, parsed, or None."""
    return request(ep, b'{"ggp":1,"t":"hello","role":"client","name":"t","versions":[1]}',
                   kind=ZMQ_DEALER)


def is_passive(ep):
    r = raw_hello(ep)
    return (r is not None and r.get("t") == "reply" and r.get("ok") is False and
            r.get("code") == -10 and str(r.get("message", "")).startswith("passive:")), r


def count(db, sql):
    try:
        rows = query(db, sql)
        return rows[0][0] if rows else 0
    except Exception:  # the table may not be there yet (a replica before its snapshot)
        return 0


def passed(db):
    return count(db, "SELECT count(*) FROM tasks WHERE status = 'passed'")


def in_log(log, text):
    return text in read_log(log)


def submit(ep, path):
    p = gg(["submit", "--insecure", "--connect", ep, path])
    return p.returncode, [l for l in p.stdout.split() if l.startswith("ha")], p.stderr


def check_ends(db, ids, what):
    """One end per task, all passed, one attempt each, none missing."""
    rows = query(db, "SELECT task_id, status, attempts, finished_at FROM tasks")
    by_id = {r[0]: r for r in rows}
    missing = [i for i in ids if i not in by_id]
    check(not missing, what + ": no acknowledged task is missing", missing[:10])
    bad = [r for r in rows if r[1] != "passed" or r[3] is None]
    check(not bad, what + ": every task passed, with its end", bad[:10])
    dup = query(db, "SELECT task_seq, count(*) FROM attempts GROUP BY task_seq HAVING "
                "count(*) <> 1")
    check(not dup, what + ": one attempt per task", dup[:10])
    check(len(rows) == N, what + ": %d tasks" % N, len(rows))


def takeover_run():
    pe, be = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    both = pe + "," + be
    prim, pdb, plog = serve("p", "primary", pe, be)
    back, bdb, blog = serve("b", "backup", be, pe)
    check(wait_until(lambda: in_log(blog, "replica restored from a snapshot") and
                     in_log(plog, "the backup is attached")),
          "the backup takes a snapshot and is attached", read_log(plog)[-2000:])
    # A client turning to the backup while the primary lives is told "passive:".
    ok, r = is_passive(be)
    check(ok, "the backup answers passive:", r)
    ws = workers(both, "a")
    # The first half runs to its end on the primary, each end replicated before it is told.
    rc, ids, err = submit(both, tasks_file("t1.jsonl", 0, N // 2))
    check(rc == 0 and len(ids) == N // 2, "the primary acknowledges %d tasks" % (N // 2), err)
    check(wait_until(lambda: passed(bdb) == N // 2), "their ends replicate to the backup",
          passed(bdb))
    # Nothing restarted: the backup's own heartbeats (sent before its snapshot was applied,
    # arriving after its ack on another connection) never make the primary drop it.
    check("running without the backup" not in read_log(plog) and
          read_log(plog).count("sent the backup a snapshot") == 1,
          "one snapshot, the backup never dropped", read_log(plog)[-2000:])
    # The second half is acknowledged and handed to workers that are frozen: jobs in flight
    # under leases only the primary knew when it is killed with -9, mid-run.
    freeze(ws, signal.SIGSTOP)
    rc, ids2, err = submit(both, tasks_file("t1b.jsonl", N // 2, N // 2))
    check(rc == 0 and len(ids2) == N // 2, "and %d more" % (N // 2), err)
    ids += ids2
    check(count(bdb, "SELECT count(*) FROM tasks") == N, "every acknowledged task is in the "
          "replica before the kill")
    at_kill = passed(pdb)
    kill(prim)
    check(at_kill < N, "the primary is killed mid-run", at_kill)
    freeze(ws, signal.SIGCONT)
    # The workers turn to the backup; their hellos make it active once the primary is silent.
    check(wait_until(lambda: in_log(blog, "taking over")), "the backup takes over",
          read_log(blog)[-2000:])
    check(wait_until(lambda: passed(bdb) == N), "every task ends on the backup", passed(bdb))
    check_ends(bdb, ids, "after takeover")
    s = gg(["status", "--insecure", "--connect", both])
    check(s.returncode == 0 and '"passed":%d' % N in s.stdout.replace(" ", ""),
          "a client given both endpoints reads the backup's status", s.stdout[:300] + s.stderr)

    # The old primary restarts: it rejoins as backup with a snapshot of the active one.
    prim2, _, _ = serve("p", "primary", pe, be)
    check(wait_until(lambda: in_log(plog, "rejoining as backup") and
                     in_log(plog, "replica restored from a snapshot at")),
          "the old primary rejoins as backup", read_log(plog)[-2000:])
    ok, r = is_passive(pe)
    check(ok, "the rejoined primary answers passive:", r)
    check(wait_until(lambda: passed(pdb) == N), "its replica holds every end", passed(pdb))
    for x in ws + [prim2, back]:
        kill(x)


def backup_first_run():
    """The backup started before the primary (as an operator may): its heartbeats, built
    before its snapshot is applied, reach the primary on another connection than its ack
    and may come after it; the primary must not take them for a restart."""
    pe, be = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    back, bdb, blog = serve("bf-b", "backup", be, pe)
    require(wait_until(lambda: in_log(blog, "serving on")), "the backup started", read_log(blog))
    prim, pdb, plog = serve("bf-p", "primary", pe, be)
    check(wait_until(lambda: in_log(plog, "the backup is attached")),
          "backup first: the backup is attached", read_log(plog)[-2000:])
    for i in range(3):
        rc, ids, err = submit(pe, tasks_file("bf%d.jsonl" % i, 1000 + 10 * i, 10))
        check(rc == 0 and len(ids) == 10, "backup first: 10 tasks acknowledged", err)
    check("running without the backup" not in read_log(plog) and
          read_log(plog).count("sent the backup a snapshot") == 1,
          "backup first: one snapshot, the backup never dropped", read_log(plog)[-2000:])
    for p in (prim, back):
        kill(p, signal.SIGTERM)


def backup_killed_run():
    pe, be = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    both = pe + "," + be
    prim, pdb, plog = serve("p2", "primary", pe, be)
    back, bdb, blog = serve("b2", "backup", be, pe)
    check(wait_until(lambda: in_log(plog, "the backup is attached")), "pair 2 attached")
    ws = workers(both, "c")
    rc, ids, err = submit(both, tasks_file("t2.jsonl", 0, N // 2))
    check(rc == 0 and len(ids) == N // 2, "pair 2: %d tasks acknowledged" % (N // 2), err)
    check(wait_until(lambda: passed(bdb) == N // 2), "pair 2: ends replicate", passed(bdb))
    kill(back)
    rc, ids2, err = submit(both, tasks_file("t2b.jsonl", N // 2, N // 2))
    check(rc == 0 and len(ids2) == N // 2, "the primary takes more with the backup dead", err)
    ids += ids2
    check(wait_until(lambda: passed(pdb) == N), "the primary carries on alone", passed(pdb))
    check(in_log(plog, "running without the backup"), "the primary says it runs alone",
          read_log(plog)[-2000:])
    check_ends(pdb, ids, "backup killed")
    # The backup comes back (a new run of it, its old file): it is given a snapshot again
    # and holds every end. The page sets ZeroMQ queued for it while it was away reach the
    # new run, which refuses them: those stale refusals must not drop the new stream.
    back = serve("b2", "backup", be, pe)[0]
    check(wait_until(lambda: read_log(plog).count("sent the backup a snapshot") >= 2 and
                     passed(bdb) == N),
          "the restarted backup takes a new snapshot with every end", read_log(plog)[-2000:])
    check("running without the backup: not a synced standby" not in read_log(plog),
          "stale refusals do not drop the restarted backup's stream", read_log(plog)[-2000:])
    for x in ws + [prim, back]:
        kill(x)


def no_peer_run():
    pe, be = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    dead = "tcp://127.0.0.1:%d" % free_port()  # nobody listens there
    prim, pdb, plog = serve("p3", "primary", pe, dead)
    back, bdb, blog = serve("b3", "backup", be, dead)
    path = tasks_file("t3.jsonl", 0, 5)
    # The primary serves once a whole timeout passed without a peer: clients retry until.
    ok = wait_until(lambda: submit(pe, path)[0] == 0)
    check(ok, "a primary without a peer serves alone", read_log(plog)[-2000:])
    check(in_log(plog, "serving alone"), "it says so")
    ok, r = is_passive(be)
    check(ok, "a backup without a peer stays passive", r)
    check(count(bdb, "SELECT count(*) FROM tasks") == 0, "the backup stored nothing")
    for x in (prim, back):
        kill(x)


def dirty_replica_run():
    """A database a backup left half-written (its -hadirty marker, as after a crash while it
    wrote pages): started as the primary with no peer, it refuses to become active from it,
    says why and stops, rather than serve from a torn file."""
    pe = "tcp://127.0.0.1:%d" % free_port()
    dead = "tcp://127.0.0.1:%d" % free_port()  # nobody listens there
    with open(os.path.join(work, "d5.db-hadirty"), "w"):
        pass
    prim, ddb, dlog = serve("d5", "primary", pe, dead)
    path = tasks_file("t5.jsonl", 0, 2)

    def refused():
        # A client: once a timeout passed without a peer, its hello makes the primary try.
        if not in_log(dlog, "half-written"):
            submit(pe, path)
        return in_log(dlog, "half-written")
    check(wait_until(refused), "a primary on a half-written replica refuses to serve",
          read_log(dlog)[-2000:])
    check(wait_until(lambda: prim.poll() is not None), "and stops", read_log(dlog)[-500:])
    check(count(ddb, "SELECT count(*) FROM tasks") in (0, -1), "it took no task")
    kill(prim)


def curve_run():
    """With CURVE: the pair share one key pair (each admits the other as its own), workers and
    a submitter use theirs; the pair attaches and the stream flows encrypted."""
    keys, auth = curve_keys(work)
    skey, spub = keys["server"]
    pe, be = "tcp://127.0.0.1:%d" % free_port(), "tcp://127.0.0.1:%d" % free_port()
    both = pe + "," + be
    procs = []
    for name, role, ep, peer in (("p4", "primary", pe, be), ("b4", "backup", be, pe)):
        procs.append(start(["serve", "--bind", ep, "--db", os.path.join(work, name + ".db"),
                            "--key", skey, "--authorized-keys", auth, "--ha-role", role,
                            "--ha-peer", peer, "--log-level", "info"],
                           os.path.join(work, name + ".log")))
    plog, bdb = os.path.join(work, "p4.log"), os.path.join(work, "b4.db")
    check(wait_until(lambda: in_log(plog, "the backup is attached")),
          "CURVE: the pair attaches with the shared key pair", read_log(plog)[-2000:])
    path = tasks_file("t4.jsonl", 0, 20)
    p = gg(["submit", "--connect", both, "--key", keys["submitter"][0], "--server-key", spub,
            path])
    check(p.returncode == 0, "CURVE: a submitter's tasks are taken", p.stderr)
    procs.append(start(["worker", "--connect", both, "--key", keys["worker"][0], "--server-key",
                        spub, "--executor", "noop", "--name", "cw"],
                       os.path.join(work, "cw.log")))
    check(wait_until(lambda: passed(bdb) == 20), "CURVE: their ends reach the backup",
          passed(bdb))
    for x in procs:
        kill(x)


try:
    curve_run()
    takeover_run()
    backup_first_run()
    backup_killed_run()
    no_peer_run()
    dirty_replica_run()
finally:
    stop_all()
finish()
