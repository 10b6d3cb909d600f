"""What the binding lets a host configure and what it promises type checkers: the built-in
fts5 and http retrievers and the executor's isolation and container options set from
Python (each checked by what the library then does), a Python executor's capability bits,
a transport made in C handed to an orchestrator, a worker and a client (gryphgen.Transport),
and type hints on the whole public API with the package's py.typed marker."""

import ctypes
import http.server
import inspect
import json
import os
import shutil
import subprocess
import sys
import threading
import typing

import pytest

from conftest import SOURCE_ROOT, add_task


# ---- retrievers ----

def test_fts5_retriever_from_python(gg, tmp_path):
    db = str(tmp_path / "index.db")
    with gg.RetrieverHandle.create("fts5", db_path=db, usefulness_weight=0.0, exploration=0.0,
                                   seed=7, max_chars=100000) as r:
        assert r.name == "fts5"
        added = r.add({"source": "notes.md", "text": "# Walrus\n\nThe walrus operator binds "
                       "a name inside an expression.\n", "language": "markdown"})
        assert added["added"] >= 1
        found = r.search({"text": "walrus operator", "k": 3})["results"]
        assert found and "walrus" in found[0]["text"].lower()
    assert os.path.getsize(db) > 0
    # Options of the wrong kind or values the library refuses.
    with pytest.raises(TypeError) as e:
        gg.RetrieverHandle.create("fts5", colour="blue")
    assert "db_path" in str(e.value)
    with pytest.raises(gg.InvalidInput):
        gg.RetrieverHandle.create("fts5", db_path=db, exploration=2.0)
    with pytest.raises(gg.Unsupported):
        with gg.RetrieverHandle.create() as none:
            none.add({"source": "x", "text": "y"})


class _SearchHandler(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"hits": [{"key": "d1", "body": "def add(a, b): return a + b",
                                     "rank": 2.5, "from": "lib.py"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_retriever_from_python(gg, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _SearchHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("GG_TEST_SEARCH_TOKEN", "s3cret")
        url = "http://127.0.0.1:%d/find?q={query}&n={k}" % server.server_port
        with gg.RetrieverHandle.create("http", url=url, token_env="GG_TEST_SEARCH_TOKEN",
                                       results_pointer="/hits", id_pointer="/key",
                                       text_pointer="/body", score_pointer="/rank",
                                       source_pointer="/from", timeout_s=30.0,
                                       max_retries=0) as r:
            assert r.name == "http"
            found = r.search({"text": "add two numbers", "k": 2})["results"]
        assert len(found) == 1
        assert (found[0]["id"], found[0]["source"]) == ("d1", "lib.py")
        assert found[0]["text"] == "def add(a, b): return a + b"
        path, auth = _SearchHandler.seen[-1]
        assert path.startswith("/find?q=add") and "n=2" in path
        assert auth == "Bearer s3cret"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(gg.InvalidInput):
        gg.RetrieverHandle.create("http", url="ftp://example.invalid/{query}")


# ---- executors ----

def test_executor_isolation_from_python(gg):
    with gg.ExecutorHandle.create("process", isolation="none") as h:
        assert h.run({"argv": ["/bin/echo", "x"]})["isolation"] == "none"
    with gg.ExecutorHandle.create("process", isolation="rlimits") as h:
        assert h.run({"argv": ["/bin/echo", "x"]})["isolation"] == "rlimits"
    # A minimum above the default: the job is refused rather than run weaker.
    with gg.ExecutorHandle.create("process", isolation="none", min_isolation="rlimits") as h:
        with pytest.raises(gg.Unsupported):
            h.run({"argv": ["/bin/echo", "x"], "isolation": "none"})
    with pytest.raises(gg.InvalidInput):
        gg.ExecutorHandle.create("process", isolation="fortress")
    with pytest.raises(TypeError):
        gg.ExecutorHandle.create("process", colour="blue")


def test_executor_container_options_from_python(gg, tmp_path):
    # No engine listens on this socket: the options reached the container backend, which
    # says so when a job runs (or when it is made).
    sock = str(tmp_path / "no-engine.sock")
    try:
        h = gg.ExecutorHandle.create("container", container_socket=sock,
                                     container_images="python=img:1")
    except gg.GryphgenError as e:
        assert "no-engine.sock" in e.message
        return
    with h:
        assert h.backend == "container"
        with pytest.raises(gg.GryphgenError) as e:
            h.run({"argv": ["python3", "-c", "print(1)"], "language": "python"})
        assert "no-engine.sock" in e.value.message


def test_python_executor_caps(gg):
    runs = []

    class Bench(gg.Executor):
        name = "bench"
        caps = gg.CAP_SKIP_ATTEMPTS

        def run(self, request):
            runs.append(request)
            return {"exit_code": 1}

    with gg.Orchestrator(executor=Bench(), workers=1) as o:
        o.submit(add_task("capped"))
        assert o.wait("capped", 60)["status"] == "passed"
    assert runs == []

    class Plain(Bench):
        caps = None

    with gg.Orchestrator(executor=Plain(), workers=1, max_attempts=1) as o:
        o.submit(add_task("plain"))
        assert o.wait("plain", 60)["status"] == "failed"
    assert len(runs) >= 1
    with pytest.raises(gg.InvalidInput):
        class Bad(Bench):
            caps = 1 << 30
        gg.ExecutorHandle.create(Bad())


# ---- a transport made in C ----

def _qtransport_module(tmp_path):
    cc = shutil.which(os.environ.get("CC", "cc"))
    header = os.path.join(SOURCE_ROOT, "tests", "orchestrator", "qtransport.h")
    lib = os.environ.get("GRYPHGEN_LIBRARY", "")
    if not cc or not os.path.exists(header) or not os.path.isfile(lib):
        pytest.skip("needs a C compiler, tests/orchestrator/qtransport.h and the library file")
    src = tmp_path / "qx.c"
    src.write_text('#include "qtransport.h"\n'
                   "int qt_export(gg_transport_t **out) { return qt_new_transport(out); }\n")
    so = tmp_path / "qx.so"
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-shared", "-fPIC",
                    "-I", os.path.join(SOURCE_ROOT, "include"),
                    "-I", os.path.dirname(header), str(src), "-o", str(so), lib, "-pthread"],
                   check=True, capture_output=True, timeout=120)
    mod = ctypes.CDLL(str(so))
    mod.qt_export.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    mod.qt_export.restype = ctypes.c_int
    return mod


def test_transport_made_in_c(gg, tmp_path):
    mod = _qtransport_module(tmp_path)
    out = ctypes.c_void_p()
    assert mod.qt_export(ctypes.byref(out)) == 0 and out.value
    tp = gg.Transport(out.value)
    o = gg.Orchestrator(custom_transport=tp, bind="bus://py", local_workers=False)
    w = gg.Worker("bus://py", custom_transport=tp, slots=1, name="py-bus-worker")
    w.run_in_thread()
    c = gg.Client("bus://py", custom_transport=tp)
    try:
        assert c.submit(add_task("over-the-bus")) == "over-the-bus"
        assert c.wait("over-the-bus", 60)["status"] == "passed"
        assert "py-bus-worker" in json.dumps(c.status())
        with pytest.raises(gg.InvalidState):
            tp.close()  # still in use
    finally:
        c.close()
        w.close()
        o.close()
    tp.close()
    tp.close()  # idempotent
    with pytest.raises(gg.InvalidState):
        tp.address
    with pytest.raises(gg.InvalidInput):
        gg.Transport(0)
    with pytest.raises(TypeError):
        gg.Orchestrator(custom_transport="zmq")


# ---- type hints ----

def _public_callables(gg):
    for name in gg.__all__:
        obj = getattr(gg, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield "%s.%s" % (name, attr), member
        elif inspect.isfunction(obj):
            yield name, obj


def test_public_api_has_type_hints(gg):
    missing = []
    checked = 0
    for name, fn in _public_callables(gg):
        sig = inspect.signature(fn)
        checked += 1
        for p in sig.parameters.values():
            if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                missing.append("%s(%s)" % (name, p.name))
        if sig.return_annotation is inspect.Signature.empty:
            missing.append("%s -> ?" % name)
        if sys.version_info >= (3, 10):
            typing.get_type_hints(fn)  # every hint names something that exists
    assert checked > 50
    assert not missing, "public API without type hints: %s" % ", ".join(missing)


def test_package_is_marked_typed(gg):
    pkg = os.path.dirname(gg.__file__)
    assert os.path.isfile(os.path.join(pkg, "py.typed"))
