"""The Orchestrator through the binding: embedding smoke test, the repair loop, events, bad
input raising the right exceptions with the library's messages, timeouts and cancellation."""

import json
import os
import subprocess
import sys
import threading

import pytest

from conftest import GUARD_S, PYTHON, SOURCE_ROOT, add_task


def test_version_and_library(gg):
    assert gg.library_version().split(".")[0] == "1"
    # the binding is released with the library it wraps (pyproject, __version__, meson)
    assert gg.__version__ == gg.library_version()
    assert gg._native.lib.gg_version() // 10000 == 1
    assert gg.strerror(-4)  # GG_ENOTFOUND has a text
    assert gg.log_level_name(1) == "warn"
    assert gg.log_level_parse("debug") == 3
    with pytest.raises(gg.InvalidInput):
        gg.log_level_parse("loud")
    gg.init()


def test_load_error_names_what_was_searched():
    env = dict(os.environ, GRYPHGEN_LIBRARY="/nonexistent/libgryphgen.so.1",
               GRYPHGEN_TEST_INSTALLED="0")
    code = "import sys; sys.path.insert(0, %r); import gryphgen" % os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "ImportError" in p.stderr
    assert "/nonexistent/libgryphgen.so.1 (no such file)" in p.stderr


def _import_in_child(tmp_path, env_extra, install_libdir=None):
    """Imports a copy of the package in a child without $GRYPHGEN_LIBRARY or
    LD_LIBRARY_PATH; returns (returncode, stdout, stderr)."""
    import shutil
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gryphgen")
    import gryphgen
    if os.environ.get("GRYPHGEN_TEST_INSTALLED") == "1":
        src = os.path.dirname(gryphgen.__file__)
    pkg = tmp_path / "site" / "gryphgen"
    shutil.rmtree(pkg, ignore_errors=True)
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "_install.py"))
    if install_libdir is not None:
        (pkg / "_install.py").write_text("LIBDIR = %r\n" % install_libdir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRYPHGEN_LIBRARY", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH")}
    env.update(env_extra)
    code = "import sys; sys.path.insert(0, %r); import gryphgen; print(gryphgen.library_path())" \
        % str(tmp_path / "site")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout.strip(), p.stderr


def _fake_prefix(tmp_path, gg):
    """A prefix holding the loaded library under a multiarch libdir with a gryphgen.pc, as
    `meson install` leaves one; returns (libdir, pkgconfig dir)."""
    import shutil
    libdir = tmp_path / "prefix" / "lib" / "x86_64-linux-gnu"
    (libdir / "pkgconfig").mkdir(parents=True)
    shutil.copy(os.path.realpath(gg.library_path()), libdir / "libgryphgen.so.1")
    (libdir / "pkgconfig" / "gryphgen.pc").write_text(
        "prefix=%s\nlibdir=%s\nincludedir=${prefix}/include\n\nName: gryphgen\n"
        "Description: test\nVersion: 1.0.0\nLibs: -L${libdir} -lgryphgen\n"
        "Cflags: -I${includedir}\n" % (tmp_path / "prefix", libdir))
    return str(libdir), str(libdir / "pkgconfig")


def test_load_finds_the_library_recorded_at_build_time(gg, tmp_path):
    libdir, _ = _fake_prefix(tmp_path, gg)
    rc, out, err = _import_in_child(tmp_path, {}, install_libdir=libdir)
    assert rc == 0, err
    assert out == os.path.join(libdir, "libgryphgen.so.1")


def test_load_finds_the_library_through_pkg_config(gg, tmp_path):
    import shutil
    if not shutil.which("pkg-config"):
        pytest.skip("no pkg-config")
    libdir, pcdir = _fake_prefix(tmp_path, gg)
    rc, out, err = _import_in_child(tmp_path, {"PKG_CONFIG_PATH": pcdir})
    assert rc == 0, err
    assert out == os.path.join(libdir, "libgryphgen.so.1")
    # Without it (and nothing on the linker's path) the error says where it looked.
    rc, out, err = _import_in_child(tmp_path, {"PKG_CONFIG_PATH": str(tmp_path)})
    if rc == 0:
        pytest.skip("a libgryphgen.so.1 is on this machine's linker path: %s" % out)
    assert "pkg-config" in err


def test_embedding_smoke(orch):
    tid = orch.submit(add_task("smoke/add"))
    assert tid == "smoke/add"
    r = orch.wait(tid, timeout=60)
    assert r["status"] == "passed"
    assert r["passed_attempt"] == 1
    assert r["attempts"] == 1
    assert "return a + b" in r["code"]
    assert orch.result(tid) == r
    s = orch.stats()
    assert s["passed"] == 1 and s["queued"] == 0 and s["running"] == 0


def test_task_as_json_text_and_generated_id(orch):
    task = add_task()
    del task["task_id"]
    tid = orch.submit(json.dumps(task))
    assert tid.startswith("task-")
    assert orch.submit(task) == tid  # same content: same id (resume)
    assert orch.wait(tid, 60)["status"] == "passed"


def test_repair_loop(orch):
    tid = orch.submit(add_task("repair/add", ["    return a - b\n", "    return a + b\n"]))
    r = orch.wait(tid, 60)
    assert r["status"] == "passed"
    assert r["passed_attempt"] == 2
    assert len(r["history"]) == 2
    first = r["history"][0]
    assert first["passed"] is False
    assert first["reason"] and "Assertion" in first["reason"]
    assert r["history"][1]["passed"] is True


def test_failed_when_budget_spent(orch):
    r = orch.wait(orch.submit(add_task("fail/add", ["    return 0\n"])), 60)
    assert r["status"] == "failed"
    assert r["passed_attempt"] is None
    assert r["reason"]


def test_events_callback_and_iterator(gg):
    seen = []
    with gg.Orchestrator(workers=1, python=PYTHON, on_event=seen.append) as o:
        tid = o.submit(add_task("ev/add", ["    return a - b\n", "    return a + b\n"]))
        o.wait(tid, 60)
        o.drain(30)
        # task.finished is delivered after its commit; wait for it rather than race it.
        events = []
        for e in o.events(timeout=GUARD_S):
            events.append(e)
            if e["type"] == "task.finished":
                break
    types = [e["type"] for e in events if e.get("task_id") == "ev/add"]
    assert types[0] == "task.started"
    assert types.count("attempt.finished") == 2
    assert types[-1] == "task.finished"
    fin = [e for e in events if e["type"] == "task.finished"][0]
    assert fin["status"] == "passed" and fin["passed_attempt"] == 2
    # The callback saw the same events (it runs before the queue is read).
    assert [e["type"] for e in seen if e.get("task_id") == "ev/add"][:len(types)] == types
    assert all(isinstance(e["ts"], float) for e in events)
    # After close the iterator ends instead of blocking; what is left is only the node
    # events of the shutdown (the local worker leaving).
    assert all(e["type"].startswith("node.") for e in o.events(timeout=None))


def test_event_callback_that_raises_does_not_break_the_run(gg):
    def bad(_event):
        raise RuntimeError("callback fails")
    with gg.Orchestrator(workers=1, python=PYTHON, on_event=bad) as o:
        assert o.wait(o.submit(add_task("evbad/add")), 60)["status"] == "passed"
        assert o._callback_errors >= 1


def test_log_callback(gg):
    lines = []
    with gg.Orchestrator(workers=1, python=PYTHON, log=lambda lvl, m: lines.append((lvl, m)),
                         log_level="debug") as o:
        o.wait(o.submit(add_task("log/add")), 60)
    assert lines, "no log line at debug level"
    assert all(lvl in ("error", "warn", "info", "debug") for lvl, _ in lines)


def test_bad_input_raises_with_messages(gg, orch):
    with pytest.raises(gg.InvalidInput) as e:
        orch.submit("{not json")
    assert e.value.status == -1 and e.value.message
    with pytest.raises(gg.InvalidInput) as e:
        orch.submit({"task_id": "bad/lang", "language": "cobol", "test": "x"})
    assert "language" in e.value.message
    with pytest.raises(TypeError):
        orch.submit(42)
    with pytest.raises(gg.NotFound) as e:
        orch.wait("no/such/task", timeout=1)
    assert e.value.message
    with pytest.raises(gg.NotFound):
        orch.result("no/such/task")
    with pytest.raises(gg.NotFound):
        orch.cancel("no/such/task")
    orch.submit(add_task("dup/add"))
    with pytest.raises(gg.AlreadyExists) as e:
        orch.submit(add_task("dup/add", ["    return 1\n"]))
    assert "dup/add" in e.value.message
    orch.wait("dup/add", 60)
    with pytest.raises(gg.InvalidState):
        orch.cancel("dup/add")
    assert isinstance(e.value, gg.GryphgenError)


def test_bad_options(gg):
    with pytest.raises(gg.InvalidInput) as e:
        gg.Orchestrator(generator="no-such-generator")
    assert "no-such-generator" in e.value.message
    with pytest.raises(gg.InvalidInput):
        gg.Orchestrator(log_level="loud")
    with pytest.raises(TypeError):
        gg.Orchestrator(executor=3.5)


def test_run_set_reports_the_bad_position(gg, orch):
    with pytest.raises(gg.InvalidInput) as e:
        orch.run_set([add_task("set/1"), "{broken", add_task("set/3")])
    assert e.value.message.startswith("task 2: ")


def test_run_set_example_tasks(gg):
    with open(os.path.join(SOURCE_ROOT, "examples", "tasks.jsonl")) as f:
        lines = f.read().splitlines()
    with gg.Orchestrator(workers=2, python=PYTHON) as o:
        results = o.run_set(lines, timeout=120)
    assert len(results) == len([ln for ln in lines if ln.strip()])
    assert all(r["status"] in ("passed", "failed", "error") for r in results)
    assert any(r["status"] == "passed" for r in results)


def test_wait_timeout_then_cancel(gg, orch):
    # The job's own time limit (2 s) bounds how long the cancelled attempt keeps running; the
    # budget of attempts keeps the task from ending by itself (20 s at least) before the
    # cancel, however slow this machine is.
    slow = add_task("slow/add", ["    import time\n    time.sleep(20)\n    return a + b\n"],
                    resources={"timeout_s": 2}, budget={"max_attempts": 10})
    tid = orch.submit(slow)
    with pytest.raises(gg.Timeout):
        orch.wait(tid, timeout=0.3)
    with pytest.raises(gg.Timeout):
        orch.drain(timeout=0.2)
    orch.cancel(tid)
    r = orch.wait(tid, timeout=60)
    assert r["status"] == "cancelled"


def test_result_not_ready(gg, orch):
    tid = orch.submit(add_task("nr/add", ["    import time\n    time.sleep(20)\n    return a + b\n"]))
    with pytest.raises(gg.NotReady):
        orch.result(tid)
    orch.cancel(tid)


def test_closed_orchestrator(gg):
    o = gg.Orchestrator(workers=1, python=PYTHON)
    o.close()
    o.close()  # idempotent
    with pytest.raises(gg.InvalidState):
        o.submit(add_task())


def test_database_resume(gg, tmp_path):
    db = str(tmp_path / "gg.db")
    with gg.Orchestrator(db_path=db, workers=1, python=PYTHON) as o:
        first = o.wait(o.submit(add_task("db/add")), 60)
    with gg.Orchestrator(db_path=db, workers=1, python=PYTHON) as o:
        assert o.result("db/add")["status"] == first["status"] == "passed"


def test_waits_from_threads(orch):
    ids = [orch.submit(add_task("thr/%d" % i)) for i in range(4)]
    out = {}

    def waiter(tid):
        out[tid] = orch.wait(tid, 60)["status"]
    threads = [threading.Thread(target=waiter, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert out == {t: "passed" for t in ids}
