"""Backends written in Python and plugged into the C library through the vtables: an executor
that runs jobs with subprocess, generators (one that repairs from feedback, one that raises),
a retriever whose context must reach the generator's request; exceptions becoming status
codes with messages; the Python objects released when the library lets go; and the ctypes
mirrors of the C structs checked against the compiler's layout."""

import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import PYTHON, SOURCE_ROOT, add_task


def make_subprocess_executor(gg):
    class SubprocessExecutor(gg.Executor):
        """Runs a job (docs/executor.md) in a temporary directory with subprocess."""
        name = "pysubprocess"

        def __init__(self):
            self.calls = 0
            self.closed = False
            self.lock = threading.Lock()

        def run(self, request):
            with self.lock:
                self.calls += 1
            limits = request.get("limits") or {}
            work = tempfile.mkdtemp(prefix="gg-pyexec-")
            try:
                for f in request.get("files", []):
                    path = os.path.join(work, f["path"])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w") as fh:
                        fh.write(f["content"])
                env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"}
                env.update(request.get("env") or {})
                argv = request["argv"]
                if shutil.which(argv[0], path=env["PATH"]) is None and not os.path.exists(
                        os.path.join(work, argv[0])):
                    raise gg.NotFound("program %r not found" % argv[0])
                start = time.monotonic()
                timed_out = False
                try:
                    p = subprocess.run(argv, cwd=work, env=env, input=request.get("stdin", ""),
                                       capture_output=True, text=True,
                                       timeout=limits.get("timeout_s") or 10)
                    code, out, err = p.returncode, p.stdout, p.stderr
                except subprocess.TimeoutExpired as e:
                    timed_out, code = True, -1
                    out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                    err = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
                sig = -code if code < 0 and not timed_out else 0
                return {"exit_code": code if code >= 0 else -1, "signal": sig,
                        "signal_name": None, "timed_out": timed_out,
                        "duration_ms": (time.monotonic() - start) * 1000, "max_rss_kb": 0,
                        "stdout": out, "stdout_truncated": False,
                        "stderr": err, "stderr_truncated": False}
            finally:
                shutil.rmtree(work, ignore_errors=True)

        def close(self):
            self.closed = True

    return SubprocessExecutor()


def test_python_executor_runs_the_attempts(gg):
    base = gg.backends.live_backends()
    ex = make_subprocess_executor(gg)
    with gg.Orchestrator(workers=2, python=PYTHON, executor=ex) as o:
        r = o.wait(o.submit(add_task("pyexec/add", ["    return a - b\n", "    return a + b\n"])), 60)
        assert r["status"] == "passed" and r["passed_attempt"] == 2
        assert ex.calls >= 2  # at least one test run per attempt went through Python
        assert "AssertionError" in r["history"][0]["execution"]["stderr"]
    assert ex.closed, "the library did not call the vtable's destroy"
    assert gg.backends.live_backends() == base


def test_python_executor_directly_and_its_errors(gg):
    ex = make_subprocess_executor(gg)
    with gg.ExecutorHandle.create(ex) as h:
        assert h.backend == "pysubprocess"
        res = h.run({"argv": ["/bin/echo", "hi"]})
        assert res["exit_code"] == 0 and res["stdout"] == "hi\n"
        with pytest.raises(gg.NotFound) as e:  # a gryphgen error keeps its status
            h.run({"argv": ["no-such-program-xyz"]})
        assert "no-such-program-xyz" in e.value.message
        with pytest.raises(gg.ExecutorFailure) as e:  # any other exception: GG_EEXEC
            h.run({"files": []})  # KeyError: 'argv'
        assert "KeyError" in e.value.message and "argv" in e.value.message
        with pytest.raises(gg.Unsupported):  # no interrupt method: the slot stays NULL
            h.interrupt()
    assert ex.closed
    with pytest.raises(gg.InvalidState):
        h.run({"argv": ["/bin/true"]})


def test_builtin_handles(gg):
    with gg.ExecutorHandle.create() as h:
        assert h.backend == "process"
        assert h.run({"argv": ["/bin/echo", "x"]})["stdout"] == "x\n"
        with pytest.raises(gg.InvalidInput) as e:
            h.run({"argv": []})
        assert "argv" in e.value.message
    with pytest.raises(TypeError):
        gg.GeneratorHandle.create("replay", colour="blue")
    with gg.GeneratorHandle.create("replay", max_retries=1, model="m") as g:
        assert g.name == "replay"
        req = {"task": add_task(), "attempt": 1, "feedback": [], "context": []}
        assert "a + b" in g.generate(req)["code"]
    with gg.RetrieverHandle.create() as r:
        assert r.name == "none"
        assert r.search({"text": "x", "language": "python", "k": 1})["results"] == []


def make_generator(gg, raise_on=None):
    class FixingGenerator(gg.Generator):
        """Wrong code first, then repairs using the feedback it receives."""
        name = "pyfix"

        def __init__(self):
            self.requests = []
            self.closed = False

        def generate(self, request):
            self.requests.append(request)
            if raise_on and raise_on in request["task"]["prompt"]:
                raise ValueError("model endpoint unreachable")
            if request["attempt"] == 1:
                return {"code": "    return a * b\n", "generator": "pyfix"}
            assert request["feedback"], "attempt 2 without feedback"
            return "    return a + b\n"  # a bare string is the code

        def close(self):
            self.closed = True

    return FixingGenerator()


def test_python_generator_repairs_from_feedback(gg):
    gen = make_generator(gg)
    with gg.Orchestrator(workers=1, python=PYTHON, generator=gen) as o:
        r = o.wait(o.submit(add_task("pygen/add", [])), 60)
    assert r["status"] == "passed" and r["passed_attempt"] == 2
    assert r["history"][0]["generator"] == "pyfix"
    assert len(gen.requests) == 2
    fb = gen.requests[1]["feedback"]
    assert fb[0]["attempt"] == 1 and "a * b" in fb[0]["code"] and fb[0]["reason"]
    assert gen.requests[0]["task"]["task_id"] == "pygen/add"
    assert gen.closed


def test_python_generator_that_raises_gives_a_task_error(gg):
    gen = make_generator(gg, raise_on="EXPLODE")
    with gg.Orchestrator(workers=1, python=PYTHON, generator=gen) as o:
        bad = o.submit(add_task("pygen/bad", [], prompt="EXPLODE please"))
        r = o.wait(bad, 60)
        assert r["status"] == "error"
        assert "model endpoint unreachable" in r["reason"]
        assert "ValueError" in r["reason"]
        # The process and the orchestrator carry on.
        ok = o.wait(o.submit(add_task("pygen/good", [])), 60)
        assert ok["status"] == "passed"
    assert gen.closed


def test_python_generator_exhausted(gg):
    class Empty(gg.Generator):
        def generate(self, request):
            raise gg.Exhausted("nothing for %s" % request["task"]["task_id"])
    with gg.GeneratorHandle.create(Empty()) as h:
        assert h.name == "Empty"
        with pytest.raises(gg.Exhausted) as e:
            h.generate({"task": add_task(), "attempt": 1, "feedback": [], "context": []})
        assert "nothing for t/add" in e.value.message
    with gg.Orchestrator(workers=1, python=PYTHON, generator=Empty()) as o:
        r = o.wait(o.submit(add_task("pygen/empty", [])), 60)
    assert r["status"] in ("failed", "error") and r["passed_attempt"] is None


def test_python_retriever_context_reaches_the_generator(gg):
    class Docs(gg.Retriever):
        name = "pydocs"

        def __init__(self):
            self.queries = []
            self.feedbacks = []

        def search(self, query):
            self.queries.append(query)
            return {"results": [
                {"id": "doc-1", "text": "RETRIEVED: use the + operator", "score": 0.9,
                 "source": "notes"},
                {"id": "doc-2", "text": "RETRIEVED: integers may be negative", "score": 0.5,
                 "source": "notes"}]}

        def feedback(self, fb):
            self.feedbacks.append(fb)

    docs = Docs()
    gen = make_generator(gg)
    with gg.Orchestrator(workers=1, python=PYTHON, generator=gen, retriever=docs) as o:
        r = o.wait(o.submit(add_task("pyret/add", [])), 60)
    assert r["status"] == "passed"
    assert docs.queries and docs.queries[0]["text"] == "Return the sum of a and b."
    assert docs.queries[0]["language"] == "python"
    texts = [c["text"] for c in gen.requests[0]["context"]]
    assert texts == ["RETRIEVED: use the + operator", "RETRIEVED: integers may be negative"]
    assert gen.requests[0]["context"][0]["id"] == "doc-1"
    # The orchestrator reported each attempt's outcome for the context it used, with the
    # credit by position (docs/retrieval.md) and the task's kind; the retry demoted the
    # reference that led the failed attempt (doc-1 goes last), so the pass credits doc-2 most.
    kind = docs.feedbacks[0].get("kind", "")
    assert kind.startswith("python:")
    assert docs.feedbacks == [
        {"task_id": "pyret/add", "passed": False, "ids": ["doc-1", "doc-2"],
         "weights": [1, pytest.approx(1 / 3)], "kind": kind},
        {"task_id": "pyret/add", "passed": True, "ids": ["doc-2", "doc-1"],
         "weights": [1, pytest.approx(1 / 3)], "kind": kind}]
    assert [c["id"] for c in gen.requests[1]["context"]] == ["doc-2", "doc-1"]
    # feedback through the handle reaches the Python method
    with gg.RetrieverHandle.create(docs) as h:
        h.feedback({"task_id": "x", "passed": True, "ids": ["doc-1"]})
    assert docs.feedbacks[-1] == {"task_id": "x", "passed": True, "ids": ["doc-1"]}


def test_retriever_that_raises_costs_only_the_context(gg):
    class Broken(gg.Retriever):
        def search(self, query):
            raise ConnectionError("index offline")
    with gg.RetrieverHandle.create(Broken()) as h:
        with pytest.raises(gg.IOFailure) as e:
            h.search({"text": "x"})
        assert "index offline" in e.value.message
        # feedback not overridden: the slot stays NULL and the library ignores feedback
        h.feedback({"task_id": "x", "passed": True, "ids": []})
    with gg.Orchestrator(workers=1, python=PYTHON, retriever=Broken()) as o:
        assert o.wait(o.submit(add_task("pyret/broken")), 60)["status"] == "passed"


def test_backend_returning_garbage(gg):
    class Garbage(gg.Generator):
        def generate(self, request):
            return {"code": object()}  # not JSON-serialisable
    with gg.GeneratorHandle.create(Garbage()) as h:
        with pytest.raises(gg.GeneratorFailure) as e:
            h.generate({"task": add_task(), "attempt": 1, "feedback": [], "context": []})
        assert "TypeError" in e.value.message


def test_borrowed_handle_outlives_orchestrator(gg):
    gen = make_generator(gg)
    with gg.GeneratorHandle.create(gen) as h:
        with gg.Orchestrator(workers=1, python=PYTHON, generator=h) as o:
            assert o.wait(o.submit(add_task("borrow/add", [])), 60)["status"] == "passed"
        assert not gen.closed  # still held by the handle
        assert h.name == "pyfix"
    assert gen.closed


def _c_layout(cc, src):
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "layout.c")
        exe = os.path.join(d, "layout")
        with open(c, "w") as f:
            f.write(src)
        subprocess.run([cc, "-std=c11", "-I", os.path.join(SOURCE_ROOT, "include"), "-o", exe, c],
                       check=True, capture_output=True, timeout=60)
        return json.loads(subprocess.run([exe], check=True, capture_output=True, text=True,
                                         timeout=30).stdout)


def test_ctypes_structs_mirror_the_headers(gg):
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc or not os.path.isdir(os.path.join(SOURCE_ROOT, "include")):
        pytest.skip("no C compiler or no headers to compare the layouts with")
    N = gg._native
    mirrors = {"gg_executor_options": N.ExecutorOptions, "gg_generator_options": N.GeneratorOptions,
               "gg_retriever_options": N.RetrieverOptions,
               "gg_orchestrator_options": N.OrchestratorOptions,
               "gg_worker_options": N.WorkerOptions, "gg_client_options": N.ClientOptions,
               "gg_executor_vtable": N.ExecutorVtable, "gg_generator_vtable": N.GeneratorVtable,
               "gg_retriever_vtable": N.RetrieverVtable}
    lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <gryphgen.h>",
             "#include <gryphgen/sys/executor.h>", "#include <gryphgen/sys/generator.h>",
             "#include <gryphgen/sys/retriever.h>", "int main(void) {", 'printf("{");']
    first = True
    for cname, py in mirrors.items():
        for fname, _ in py._fields_:
            lines.append('printf("%s\\"%s.%s\\": %%zu", offsetof(%s, %s));'
                         % ("" if first else ", ", cname, fname, cname, fname))
            first = False
        lines.append('printf(", \\"%s\\": %%zu", sizeof(%s));' % (cname, cname))
    lines += ['printf("}\\n");', "return 0; }"]
    layout = _c_layout(cc, "\n".join(lines))
    for cname, py in mirrors.items():
        assert ctypes.sizeof(py) == layout[cname], cname
        for fname, _ in py._fields_:
            assert getattr(py, fname).offset == layout["%s.%s" % (cname, fname)], (cname, fname)


def _doc_request_example():
    """The example request of docs/generator.md ("## Request"), parsed."""
    with open(os.path.join(SOURCE_ROOT, "docs", "generator.md"), encoding="utf-8") as f:
        doc = f.read()
    section = doc[doc.index("\n## Request\n"):]
    block = section[section.index("```json\n") + 8:]
    return json.loads(block[:block.index("\n```")])


def _key_shape(value):
    """The keys of value, recursively (lists: the shape of their first element)."""
    if isinstance(value, dict):
        return {k: _key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_key_shape(value[0])] if value else []
    return None


def test_command_generator_request_matches_the_docs(gg, tmp_path):
    """A command: generator gets the request docs/generator.md shows: the same keys at every
    level, the task in its full normalised form (every field, absent ones null). On attempt 2
    of a task whose first candidate fails, the request has feedback."""
    capture = tmp_path / "capture.py"
    capture.write_text(
        "import json, sys\n"
        "req = json.load(sys.stdin)\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(json.dumps(req) + '\\n')\n"
        "sys.stdout.write(req['task']['candidates'][req['attempt'] - 1])\n")
    out = tmp_path / "requests.jsonl"
    spec = "command:%s %s %s" % (PYTHON, capture, out)
    task = add_task("demo/add", candidates=("    return a - b\n", "    return a + b\n"))
    with gg.Orchestrator(generator=spec, workers=1, python=PYTHON) as o:
        r = o.wait(o.submit(task), 120)
    assert r["status"] == "passed" and r["passed_attempt"] == 2, r
    requests = [json.loads(line) for line in out.read_text().splitlines()]
    assert [q["attempt"] for q in requests] == [1, 2]
    captured = requests[1]
    documented = _doc_request_example()
    assert _key_shape(captured) == _key_shape(documented), (
        "docs/generator.md's example request differs from what a generator gets:\n%s"
        % json.dumps(captured, indent=1))
    # Absent fields are present as null; defaults are filled in.
    assert captured["task"]["canonical_solution"] is None
    assert captured["task"]["priority"] == 0 and captured["task"]["humaneval"] is False
    assert requests[0]["feedback"] == [] and requests[0]["context"] == []
