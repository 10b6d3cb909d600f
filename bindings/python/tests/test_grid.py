"""The grid through the binding: an Orchestrator bound to a loopback TCP port with no local
workers, a Python Worker serving it on a thread, and a Client submitting tasks (one by one
and in a batch), waiting for results, asking for status, cancelling and watching events;
bad options and endpoints raising the right exceptions with the library's messages; the rule
that unencrypted operation needs insecure=True and a loopback endpoint."""

import ctypes
import json
import threading

import pytest

from conftest import GUARD_S, PYTHON, add_task, free_port, wait_until
from gryphgen import _native as N


@pytest.fixture(scope="module")
def grid():
    """(endpoint, orchestrator, worker): an orchestrator on a free loopback port whose only
    worker is a gryphgen.Worker running on a thread of this process."""
    import gryphgen as gg
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    with gg.Orchestrator(bind=endpoint, local_workers=False, python=PYTHON,
                         insecure=True) as orch:
        with gg.Worker(endpoint, name="pyworker", slots=2, labels={"zone": "test"},
                       python=PYTHON, insecure=True) as worker:
            t = worker.run_in_thread()
            assert t.is_alive()
            yield endpoint, orch, worker
        assert not t.is_alive()
        assert worker.run_error is None and worker.run_status == 0


@pytest.fixture
def client(gg, grid):
    with gg.Client(grid[0], name="pytest", timeout=GUARD_S, insecure=True) as c:
        yield c


def test_submit_and_wait_through_a_remote_worker(gg, grid, client):
    tid = client.submit(add_task("grid/add"))
    assert tid == "grid/add"
    r = client.wait(tid, timeout=60)
    assert r["status"] == "passed"
    assert r["passed_attempt"] == 1
    assert "return a + b" in r["code"]
    # The orchestrator sees the same result, and the worker counted the job.
    assert grid[1].result(tid)["status"] == "passed"
    st = client.status(tid)
    assert st["task_id"] == tid and st["status"] == "passed" and st["attempts"] == 1
    # The worker counts a result after sending it.
    ws = wait_until(lambda: (lambda w: w if w["results"] >= 1 else None)(grid[2].stats()))
    assert ws, grid[2].stats()
    assert ws["jobs"] >= 1 and ws["results"] >= 1 and ws["dropped"] == 0
    overall = client.status()
    assert isinstance(overall, dict) and overall
    # The worker announces the isolation levels the host's probe found, weakest first.
    out = ctypes.c_void_p()
    N.check(N.fn("gg_executor_probe")(ctypes.byref(out)))
    probe = json.loads(N.take_string(out))
    node = [n for n in overall["nodes"] if n["name"] == "pyworker"][0]
    assert node["caps"]["isolation"] == probe["levels"]
    # capacity is what the hub may hand the worker at once: its slots (running) plus its
    # queue (held ahead, by default as many as the slots), docs/grid.md.
    assert node["slots"] == 2 and node["queue"] == 2 and node["capacity"] == 4


def test_repair_loop_and_failure_over_the_grid(gg, client):
    tid = client.submit(add_task("grid/repair", ["    return a - b\n", "    return a + b\n"]))
    r = client.wait(tid, 60)
    assert r["status"] == "passed" and r["passed_attempt"] == 2
    tid = client.submit(add_task("grid/fail", ["    return 0\n"], budget={"max_attempts": 1}))
    r = client.wait(tid, 60)
    assert r["status"] == "failed"


def test_submit_batch(gg, client):
    tasks = [add_task("grid/batch%d" % i) for i in range(3)]
    tasks.append({"language": "cobol"})  # a bad task: refused alone
    out = client.submit_batch(tasks)
    assert out["ids"][:3] == ["grid/batch0", "grid/batch1", "grid/batch2"]
    assert out["ids"][3] is None
    assert [e["index"] for e in out["errors"]] == [3]
    assert out["errors"][0]["message"]
    for tid in out["ids"][:3]:
        assert client.wait(tid, 60)["status"] == "passed"
    with pytest.raises(gg.InvalidInput):
        client.submit_batch("not json")


def subscribe(w, on_event):
    """Subscribes the client w to events: a watch of no time returns once the orchestrator
    has answered the subscription (the client's timeout is the guard), and the subscription
    stays with the connection, so the events of anything started after it reach w's next
    watch (those that come meanwhile go to on_event)."""
    w.watch(on_event, timeout=0)


def test_watch_sees_task_finished(gg, client, grid):
    seen = []
    subscribed = threading.Event()

    def watcher():
        with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as w:
            def on_event(ev):
                seen.append(ev)
                return ev.get("type") == "task.finished" and ev.get("task_id") == "grid/watch"
            subscribe(w, on_event)
            subscribed.set()  # the task is submitted after this: its events come below
            w.watch(on_event, timeout=GUARD_S)

    t = threading.Thread(target=watcher)
    t.start()
    assert subscribed.wait(GUARD_S)
    client.submit(add_task("grid/watch"))
    t.join(GUARD_S)
    assert not t.is_alive()
    fin = [e for e in seen if e.get("type") == "task.finished"]
    assert fin and fin[-1]["task_id"] == "grid/watch" and fin[-1]["status"] == "passed"
    assert [e["type"] for e in seen if e.get("task_id") == "grid/watch"][0] == "task.started"


def watch_until_finished(w, task_id, types=None):
    """Events w's watch receives until task_id's task.finished (or, when the filter leaves
    task.finished out, until a task.started of it and the task's end is known)."""
    seen = []

    def on_event(ev):
        seen.append(ev)
        return ev.get("task_id") == task_id and ev.get("type") in ("task.finished",
                                                                     "attempt.finished")
    w.watch(on_event, timeout=GUARD_S, types=types)
    return seen


def test_filtered_watch_gets_only_its_types(gg, client, grid):
    """A watcher asking for attempt.finished and the node.* events gets those and nothing
    else, while an unfiltered one watching the same task gets its whole course."""
    with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as narrow, \
            gg.Client(grid[0], timeout=GUARD_S, insecure=True) as wide:
        got_narrow, got_wide = [], []
        subscribe(narrow, got_narrow.append)
        narrow.watch(got_narrow.append, timeout=0, types=["attempt.finished", "node."])
        subscribe(wide, got_wide.append)
        st = client.status()
        assert st["watchers"] >= 2 and st["watch_types"] == "all", st
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "narrow", watch_until_finished(narrow, "grid/filtered",
                                           types="attempt.finished,node.")))
        t.start()
        client.submit(add_task("grid/filtered"))
        got_wide += watch_until_finished(wide, "grid/filtered")
        t.join(GUARD_S)
        assert not t.is_alive()
        got_narrow += out["narrow"]
    narrow_types = {e["type"] for e in got_narrow}
    assert narrow_types and narrow_types <= {"attempt.finished", "node.joined", "node.lost",
                                             "node.quarantined"}, narrow_types
    assert "attempt.finished" in narrow_types
    wide_types = [e["type"] for e in got_wide if e.get("task_id") == "grid/filtered"]
    assert {"task.started", "job.dispatched", "attempt.finished"} <= set(wide_types), wide_types


def test_watch_filter_bad_input_refused(gg, client, grid):
    before = client.status()["watchers"]
    with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as w:
        with pytest.raises(gg.InvalidInput, match="unknown event type 'task.bogus'"):
            w.watch(lambda ev: True, timeout=0, types=["task.bogus"])
        with pytest.raises(gg.InvalidInput, match="unknown event type 'nodes.'"):
            w.watch(lambda ev: True, timeout=0, types="nodes.")
        with pytest.raises(gg.InvalidInput, match="more than 32 entries"):
            w.watch(lambda ev: True, timeout=0, types=["node.lost"] * 33)
        with pytest.raises(gg.InvalidInput, match="longer than 64 bytes"):
            w.watch(lambda ev: True, timeout=0, types=["task." + "x" * 70])
        with pytest.raises(gg.InvalidInput, match="empty entry"):
            w.watch(lambda ev: True, timeout=0, types="task.finished,,node.lost")
        # Refused before anything was sent: the client is no watcher (earlier tests' closed
        # watchers may be forgotten meanwhile, never added).
        assert client.status()["watchers"] <= before


def test_watch_union_follows_the_watchers(gg, client, grid):
    """The event types the hub builds are the union of its watchers' filters, and shrink
    when a watcher leaves (its connection closed: the hub forgets it)."""
    # earlier tests' watchers, closed, are forgotten first
    assert wait_until(lambda: client.status()["watchers"] == 0)
    with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as a:
        a.watch(lambda ev: False, timeout=0, types="task.finished")
        with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as b:
            b.watch(lambda ev: False, timeout=0, types="node.")
            st = client.status()
            assert st["watchers"] == 2, st
            assert st["watch_types"] == "task.finished,node.joined,node.lost,node.quarantined"
        st = wait_until(lambda: (lambda s: s if s["watchers"] == 1 else None)(client.status()))
        assert st and st["watch_types"] == "task.finished", st
        # Watching again with another filter replaces the watcher's own.
        a.watch(lambda ev: False, timeout=0, types="job.retried")
        assert client.status()["watch_types"] == "job.retried"
    st = wait_until(lambda: (lambda s: s if s["watchers"] == 0 else None)(client.status()))
    assert st and st["watch_types"] == "", st


def test_watch_as_iterator(gg, client, grid):
    with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as w:
        got = []
        subscribe(w, got.append)
        it = w.watch(timeout=GUARD_S)
        threading.Thread(target=lambda: client.submit(add_task("grid/iter"))).start()
        for ev in it:
            got.append(ev)
            if ev.get("type") == "task.finished" and ev.get("task_id") == "grid/iter":
                break
        it.close()
    assert got[-1]["type"] == "task.finished" and got[-1]["status"] == "passed"
    assert [e["type"] for e in got if e.get("task_id") == "grid/iter"][0] == "task.started"
    # A short watch with nothing happening just ends (on a thread, so that a watch that
    # never ends fails the test instead of hanging it).
    with gg.Client(grid[0], insecure=True) as w:
        ended = []
        t = threading.Thread(target=lambda: ended.append(list(w.watch(timeout=0.3))))
        t.start()
        t.join(GUARD_S)
        assert not t.is_alive() and ended and all(isinstance(ev, dict) for ev in ended[0])


def test_watch_callback_exception_is_raised(gg, client, grid):
    with gg.Client(grid[0], timeout=GUARD_S, insecure=True) as w:
        subscribe(w, lambda ev: None)
        client.submit(add_task("grid/raise"))

        def boom(ev):
            raise RuntimeError("from the callback")
        with pytest.raises(RuntimeError, match="from the callback"):
            w.watch(boom, timeout=GUARD_S)


def test_status_cancel_and_errors_without_workers(gg):
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    with gg.Orchestrator(bind=[endpoint], local_workers=False, max_queued=2,
                         python=PYTHON, insecure=True) as orch, \
            gg.Client(endpoint, insecure=True) as c:
        tid = c.submit(add_task("idle/add"))
        assert c.status(tid)["status"] == "queued"  # nobody runs it
        assert c.demand()["waiting"] == 1
        assert c.demand({"languages": ["c"]})["tasks"] == 0
        with pytest.raises(gg.InvalidInput) as e:
            c.demand({"gpus": "many"})
        assert "gpus" in e.value.message
        with pytest.raises(gg.Timeout):
            c.wait(tid, timeout=0.3)
        c.submit(add_task("idle/two"))
        with pytest.raises(gg.Busy):  # max_queued reached
            c.submit(add_task("idle/three"))
        c.cancel(tid)
        assert c.wait(tid, GUARD_S)["status"] == "cancelled"
        assert c.status(tid)["status"] == "cancelled"
        assert c.status(tid)["end_cause"] == "cancelled"
        with pytest.raises(gg.InvalidState):
            c.cancel(tid)
        with pytest.raises(gg.NotFound):
            c.cancel("no/such/task")
        with pytest.raises(gg.NotFound):
            c.status("no/such/task")
        with pytest.raises(gg.NotFound):
            c.wait("no/such/task", 5)
        with pytest.raises(gg.InvalidInput):
            c.submit({"task_id": "bad"})
        assert orch.stats()["cancelled"] == 1


def test_bad_options_and_endpoints(gg):
    with pytest.raises(gg.InvalidInput) as e:
        gg.Worker(None)
    assert "connect" in e.value.message
    with pytest.raises(gg.InvalidInput) as e:
        gg.Worker("tcp://127.0.0.1:1", labels=["nolabel"], insecure=True)
    assert e.value.message
    with pytest.raises(TypeError):
        gg.Worker("tcp://127.0.0.1:1", labels="zone=a")
    with pytest.raises(gg.InvalidInput):
        gg.Worker("tcp://127.0.0.1:1", log_level="loud")
    with pytest.raises(gg.InvalidInput) as e:
        gg.Client(None)
    assert "connect" in e.value.message
    with pytest.raises(gg.InvalidInput):
        gg.Client("tcp://127.0.0.1:1", timeout=0)
    # An endpoint that cannot be used at all: the worker's run() fails with a message.
    with gg.Worker("bogus://nowhere") as w:
        with pytest.raises(gg.GryphgenError) as e:
            w.run()
        assert e.value.status < 0 and e.value.message
    # A client whose endpoint nobody serves (or that is malformed) fails with a message.
    with pytest.raises(gg.GryphgenError) as e:
        with gg.Client("bogus://nowhere", timeout=0.5) as c:
            c.submit(add_task("x/add"))
    assert e.value.message
    with gg.Client("tcp://127.0.0.1:%d" % free_port(), timeout=0.3, insecure=True) as c:
        with pytest.raises(gg.Timeout) as e:
            c.status("x")
        assert e.value.message


def test_unencrypted_only_when_asked_and_on_loopback(gg, tmp_path):
    """Without CURVE keys, tcp:// and ipc:// need insecure=True (loopback included), and
    insecure=True is refused on an endpoint that is not loopback; the error is InvalidInput
    (GG_EINVAL) and its message names the option. inproc:// needs nothing."""
    port = free_port()
    loopback = ["tcp://127.0.0.1:%d" % port, "tcp://[::1]:%d" % port,
                "tcp://localhost:%d" % port, "ipc://%s" % (tmp_path / "gg.sock")]
    for ep in loopback:
        for make in (lambda: gg.Orchestrator(bind=ep, local_workers=False),
                     lambda: gg.Worker(ep), lambda: gg.Client(ep)):
            with pytest.raises(gg.InvalidInput) as e:
                make()
            assert e.value.status == gg.errors.EINVAL
            assert ep in e.value.message and "insecure" in e.value.message
            assert "no CURVE keys" in e.value.message
    for ep in ("tcp://0.0.0.0:%d" % port, "tcp://*:%d" % port, "tcp://192.0.2.1:5555"):
        for make in (lambda: gg.Orchestrator(bind=ep, local_workers=False, insecure=True),
                     lambda: gg.Worker(ep, insecure=True),
                     lambda: gg.Client(ep, insecure=True)):
            with pytest.raises(gg.InvalidInput) as e:
                make()
            assert "insecure" in e.value.message and "not loopback" in e.value.message
    # One endpoint that is not loopback in a bind list refuses the whole orchestrator.
    with pytest.raises(gg.InvalidInput):
        gg.Orchestrator(bind=[loopback[0], "tcp://0.0.0.0:%d" % port], local_workers=False,
                        insecure=True)
    # Accepted: insecure=True on loopback (the ipc endpoint serves a client), and inproc://
    # without anything.
    with gg.Orchestrator(bind=loopback[3], local_workers=False, insecure=True):
        with gg.Client(loopback[3], timeout=GUARD_S, insecure=True) as c:
            assert isinstance(c.status(), dict)
    gg.Client("inproc://gg-python-rule").close()


def test_closed_handles_raise(gg):
    w = gg.Worker("tcp://127.0.0.1:1", insecure=True)
    w.close()
    w.close()
    with pytest.raises(gg.InvalidState):
        w.stats()
    w.stop()  # harmless after close
    c = gg.Client("tcp://127.0.0.1:1", insecure=True)
    c.close()
    c.close()
    with pytest.raises(gg.InvalidState):
        c.submit(add_task())
    with pytest.raises(gg.InvalidState):
        c.stats()


def test_worker_with_a_python_generator_and_logger(gg, tmp_path):
    """A worker's backends may be Python objects; its log reaches a Python callable."""
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    logs = []
    with gg.Orchestrator(bind=endpoint, local_workers=False, python=PYTHON,
                         insecure=True) as orch:
        gen_calls = []

        class Gen(gg.Generator):
            name = "pygen"

            def generate(self, request):
                gen_calls.append(request)
                return {"code": "def add(a, b):\n    return a + b\n"}

        with gg.Worker(endpoint, slots=1, generator=Gen(), log=lambda lv, m: logs.append(m),
                       log_level="debug", insecure=True) as w:
            w.run_in_thread()
            tid = orch.submit(add_task("pyw/add"))
            r = orch.wait(tid, 60)
            assert r["status"] == "passed"
            assert gen_calls
    assert logs


def test_curve_keys_encrypt_the_grid_and_refuse_unknown_keys(gg, tmp_path):
    """With keys from gryphgen.keygen(), an orchestrator admits a worker and a submitter
    listed in its authorized keys over encrypted tcp (no insecure needed); a client whose key
    is not listed gets no answer; keygen never overwrites a key."""
    try:
        server = gg.keygen(str(tmp_path / "server"))
    except gg.Unsupported:
        pytest.skip("this ZeroMQ library has no CURVE")
    worker_pub = gg.keygen(str(tmp_path / "worker"))
    submitter_pub = gg.keygen(str(tmp_path / "submitter"))
    gg.keygen(str(tmp_path / "stranger"))
    assert len(server) == 40
    with pytest.raises(gg.AlreadyExists):
        gg.keygen(str(tmp_path / "server"))
    auth = tmp_path / "authorized_keys"
    auth.write_text("worker %s w1\nsubmitter %s me\n" % (worker_pub, submitter_pub))
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    with gg.Orchestrator(bind=endpoint, local_workers=False, python=PYTHON,
                         curve_key_file=str(tmp_path / "server.key"),
                         authorized_keys_file=str(auth)):
        with gg.Worker(endpoint, name="curve-worker", slots=1, python=PYTHON,
                       curve_key_file=str(tmp_path / "worker.key"),
                       curve_server_key=str(tmp_path / "server.pub")) as worker:
            worker.run_in_thread()
            with gg.Client(endpoint, timeout=GUARD_S,
                           curve_key_file=str(tmp_path / "submitter.key"),
                           curve_server_key=server) as c:
                tid = c.submit(add_task("curve/add"))
                assert c.wait(tid, timeout=GUARD_S)["status"] == "passed"
            with gg.Client(endpoint, timeout=1, curve_key_file=str(tmp_path / "stranger.key"),
                           curve_server_key=server) as c:
                with pytest.raises((gg.Timeout, gg.TransportFailure)):
                    c.status()
    # A key without the server's public key is refused before anything connects.
    with pytest.raises(gg.InvalidInput):
        gg.Client(endpoint, curve_key_file=str(tmp_path / "submitter.key"))


def test_webhooks_alert_a_receiver(gg):
    """webhooks=[url]: a failed task arrives as a task.failed POST at a receiver of the
    test's own; a URL that is not http(s) raises InvalidInput."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    got = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/hook" % httpd.server_address[1]
        with gg.Orchestrator(workers=1, python=PYTHON, webhooks=[url],
                             stall_alert_s=-1) as orch:
            orch.submit(add_task("py/alert", candidates=("    return a - b\n",),
                                 budget={"max_attempts": 1}))
            result = orch.wait("py/alert", timeout=GUARD_S)
            assert result["status"] == "failed"
            alerts = wait_until(lambda: [a for a in got if a.get("alert") == "task.failed"])
            assert alerts and alerts[0]["task_id"] == "py/alert"
            assert alerts[0]["source"] == "gryphgen" and alerts[0]["status"] == "failed"
            # The receiver has the alert before the sender has counted its answer.
            assert wait_until(lambda: orch.stats()["webhooks"]["sent"] >= 1)
    finally:
        httpd.shutdown()
    with pytest.raises(gg.InvalidInput) as e:
        gg.Orchestrator(webhooks=["ftp://127.0.0.1/x"])
    assert "http" in str(e.value)


def test_connect_as_a_list(gg):
    """connect as a list of endpoints: the first is down (nobody listens), so the worker and
    the client move on to the orchestrator on the second and work there."""
    down = "tcp://127.0.0.1:%d" % free_port()
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    assert down != endpoint
    with gg.Orchestrator(bind=endpoint, local_workers=False, python=PYTHON,
                         insecure=True) as orch, \
            gg.Worker([down, endpoint], name="listed", python=PYTHON, insecure=True) as w:
        w.run_in_thread()
        st = wait_until(lambda: (lambda s: s if s["endpoint"] == endpoint else None)(w.stats()))
        assert st, w.stats()
        assert st["failovers"] >= 1
        with gg.Client((down, endpoint), timeout=GUARD_S, insecure=True) as c:
            fresh = c.stats()
            assert fresh == {"requests": 0, "replies": 0, "timeouts": 0, "failovers": 0,
                             "endpoint": None, "endpoint_index": -1}
            tid = c.submit(add_task("listed/add"))
            assert c.wait(tid, timeout=GUARD_S)["status"] == "passed"
            cs = c.stats()
            # it moved from the first endpoint (nobody listens) to the second, which
            # welcomed it; two replies (submit, wait), no timeout
            assert cs["failovers"] >= 1, cs
            assert cs["endpoint"] == endpoint and cs["endpoint_index"] == 1, cs
            assert cs["replies"] == 2 and cs["timeouts"] == 0, cs
            assert cs["requests"] >= 2, cs
        assert orch.result(tid)["status"] == "passed"


def test_connect_list_refusals(gg):
    ep = "tcp://127.0.0.1:%d" % free_port()
    with pytest.raises(gg.InvalidInput):
        gg.Client([], insecure=True)
    with pytest.raises(TypeError):
        gg.Client([ep, 5], insecure=True)
    with pytest.raises(gg.InvalidInput):
        gg.Worker([ep, "%s,%s" % (ep, ep)], insecure=True)
    with pytest.raises(gg.InvalidInput):
        gg.Worker([ep, " "], insecure=True)
    many = ["tcp://127.0.0.1:%d" % (21100 + i) for i in range(17)]
    with pytest.raises(gg.InvalidInput) as e:
        gg.Client(many, insecure=True)
    assert "16" in e.value.message
    with pytest.raises(gg.InvalidInput) as e:  # every entry by the security rule
        gg.Worker([ep, "tcp://10.1.2.3:5555"], insecure=True)
    assert "10.1.2.3" in e.value.message
    with gg.Client(many[:16], timeout=0.3, insecure=True) as c:
        with pytest.raises(gg.Timeout):
            c.status()
        cs = c.stats()  # the timeout is counted; nobody welcomed it, nothing answered
        assert cs["timeouts"] == 1 and cs["replies"] == 0, cs
        assert cs["endpoint"] is None and cs["endpoint_index"] == -1, cs
