"""Backends of the gryphgen binding: the base classes a host subclasses to write an executor,
a generator or a retriever in Python (plugged into the C library through the vtables of
include/gryphgen/sys/), and the handle classes that own a C gg_executor_t / gg_generator_t /
gg_retriever_t, built-in or custom.

Lifetime: the C vtable slots are module-level ctypes thunks that live as long as the process;
the C side's `self` is a key into _registry, which keeps the Python backend object (and the
bytes of its name) alive until the library calls the vtable's destroy slot. An exception in
a backend method never crosses into C: it becomes a GG_E* status with gg_error_set()."""

from __future__ import annotations

import ctypes
import itertools
import json
import threading

from . import _native as N
from . import errors
from ._common import NativeObject

_registry = {}
_registry_lock = threading.Lock()
_keys = itertools.count(1)


def _register(obj, name):
    key = next(_keys)
    with _registry_lock:
        _registry[key] = (obj, name)
    return key


def _lookup(self_ptr):
    with _registry_lock:
        entry = _registry.get(self_ptr)
    return entry[0] if entry else None


def _fail(exc, default_status, what):
    """Records a Python exception as the calling thread's libgryphgen error; returns the
    status the slot returns."""
    if isinstance(exc, errors.GryphgenError) and exc.status < 0:
        status, msg = exc.status, exc.message or str(exc)
    else:
        status, msg = default_status, "%s: %s" % (type(exc).__name__, exc)
    try:
        N.lib.gg_error_set(status, N.encode("%s: %s" % (what, msg)))
    except BaseException:  # never let anything escape into C
        pass
    return status


def _answer(self_ptr, text, out, method, default_status, kind, wrap=None):
    """Common body of the slots that take a JSON request and answer a JSON string."""
    out[0] = None
    try:
        obj = _lookup(self_ptr)
        if obj is None:
            return N.lib.gg_error_set(errors.EINTERNAL,
                                      b"gryphgen: Python backend called after destroy")
        request = json.loads(text.decode("utf-8", "replace"))
        answer = getattr(obj, method)(request)
        if wrap is not None:
            answer = wrap(answer)
        out[0] = N.give_string(answer if isinstance(answer, str) else json.dumps(answer))
        return 0
    except MemoryError as e:
        return _fail(errors.OutOfMemory(str(e)), errors.ENOMEM, kind)
    except BaseException as e:  # noqa: B036 - a KeyboardInterrupt must not unwind C frames
        return _fail(e, default_status, "%s %s.%s" % (kind, type(_lookup(self_ptr)).__name__,
                                                       method))


def _simple(self_ptr, method, default_status, kind, *args):
    try:
        obj = _lookup(self_ptr)
        if obj is None:
            return N.lib.gg_error_set(errors.EINTERNAL,
                                      b"gryphgen: Python backend called after destroy")
        getattr(obj, method)(*args)
        return 0
    except BaseException as e:  # noqa: B036
        return _fail(e, default_status, "%s %s.%s" % (kind, type(_lookup(self_ptr)).__name__,
                                                       method))


def _destroy(self_ptr):
    with _registry_lock:
        entry = _registry.pop(self_ptr, None)
    if entry is None:
        return
    close = getattr(entry[0], "close", None)
    if callable(close):
        try:
            close()
        except BaseException:  # noqa: B036
            pass


def _generator_response(answer):
    # A generator may answer with the code alone.
    if isinstance(answer, str):
        return {"code": answer}
    return answer


@N.EXECUTOR_RUN_FN
def _executor_run(self_ptr, request, out):
    return _answer(self_ptr, request, out, "run", errors.EEXEC, "executor")


@N.EXECUTOR_INTERRUPT_FN
def _executor_interrupt(self_ptr):
    return _simple(self_ptr, "interrupt", errors.EEXEC, "executor")


@N.GENERATOR_GENERATE_FN
def _generator_generate(self_ptr, request, out):
    return _answer(self_ptr, request, out, "generate", errors.EGENERATOR, "generator",
                   _generator_response)


@N.RETRIEVER_SEARCH_FN
def _retriever_search(self_ptr, query, out):
    return _answer(self_ptr, query, out, "search", errors.EIO, "retriever")


@N.RETRIEVER_FEEDBACK_FN
def _retriever_feedback(self_ptr, feedback):
    try:
        data = json.loads(feedback.decode("utf-8", "replace"))
    except BaseException as e:  # noqa: B036
        return _fail(e, errors.EINVAL, "retriever feedback")
    return _simple(self_ptr, "feedback", errors.EIO, "retriever", data)


@N.DESTROY_FN
def _backend_destroy(self_ptr):
    try:
        _destroy(self_ptr)
    except BaseException:  # noqa: B036
        pass


def _overrides(obj, base, method):
    return getattr(type(obj), method, None) is not getattr(base, method)


# Capability bits of an executor (gryphgen/sys/executor.h, GG_EXECUTOR_CAP_*), for
# Executor.caps.
CAP_ISOLATION_RLIMITS = 1 << 0
CAP_ISOLATION_NAMESPACES = 1 << 1
CAP_ISOLATION_CONTAINER = 1 << 2
CAP_UNPRIVILEGED_JOBS = 1 << 3
CAP_SKIP_ATTEMPTS = 1 << 4
CAP_OVERLAY_WORKDIR = 1 << 5


class Executor:
    """Base class of executors written in Python. Override run(request) -> result dict
    (formats in docs/executor.md); optionally interrupt() and close(). run is called from
    library worker threads, possibly several at once. Raise a gryphgen error (for example
    NotFound) to return its status; any other exception becomes GG_EEXEC.

    caps: None (the library counts it as isolation "rlimits", as before 1.2) or the
    CAP_* bits saying what it does: the isolation levels a worker announces for it, and
    CAP_SKIP_ATTEMPTS for a benchmark executor whose attempts pass without running."""

    name: "str | None" = None
    caps: "int | None" = None

    def run(self, request: dict) -> dict | str:
        raise NotImplementedError

    def interrupt(self) -> None:
        raise errors.Unsupported("interrupt is not implemented")

    def close(self) -> None:
        """Called once when the library lets go of the backend."""


class Generator:
    """Base class of code generators written in Python. Override generate(request) ->
    response dict {"code": ..., "generator": ..., "usage": ..., "cited": [context ids it
    relied on]} or the code as a str (docs/generator.md). Raise Exhausted when there is nothing more to offer; any other
    exception becomes GG_EGENERATOR (retried by the orchestrator, then the task errors)."""

    name = None

    def generate(self, request: dict) -> dict | str:
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the library lets go of the backend."""


class Retriever:
    """Base class of retrievers written in Python. Override search(query) -> {"results":
    [{"id", "text", "score", "source"}, ...]} and optionally feedback(feedback) (query and
    feedback formats in include/gryphgen/retriever.h). Exceptions become GG_EIO."""

    name = None

    def search(self, query: dict) -> dict | str:
        raise NotImplementedError

    def feedback(self, feedback: dict) -> None:
        pass

    def close(self) -> None:
        """Called once when the library lets go of the backend."""


class _Handle(NativeObject):
    """Owns one C handle; closed by close(), the with-statement, or garbage collection."""

    _destroy_fn = None

    def __init__(self, ptr):
        self._ptr = ptr

    def close(self) -> None:
        """Destroys the C handle. Idempotent."""
        if self._ptr:
            p = ctypes.c_void_p(self._ptr)
            self._ptr = None
            N.fn(self._destroy_fn)(ctypes.byref(p))


def _set_options(opts, options, fixed, what):
    """Sets the fields of an options struct named in options (a dict); strings are encoded
    and returned, to be kept referenced until the struct has been used. fixed: fields not
    set this way."""
    keep = []
    fields = dict(type(opts)._fields_)
    for key, value in options.items():
        ftype = fields.get(key)
        if ftype is None or key == "version" or key in fixed:
            raise TypeError("gryphgen: unknown %s option %r (known: %s)"
                            % (what, key, ", ".join(sorted(set(fields) - {"version"}
                                                           - set(fixed)))))
        if value is None:
            continue  # the library's default
        if ftype is ctypes.c_char_p:
            value = N.encode(value, key)
            keep.append(value)
        elif ftype in (ctypes.c_double,):
            value = float(value)
        else:
            value = int(value)
        setattr(opts, key, value)
    return keep


def _new_custom(new_fn, vtable, obj, name_attr):
    name = getattr(obj, name_attr, None) or type(obj).__name__
    name_b = N.encode(str(name))
    vtable.name = name_b
    key = _register(obj, name_b)
    out = ctypes.c_void_p()
    # On failure the library has already called destroy, which unregistered obj.
    N.check(N.fn(new_fn)(ctypes.byref(out), ctypes.byref(vtable), ctypes.c_void_p(key)))
    return out.value


class ExecutorHandle(_Handle):
    """A C executor: built-in ("process") or a Python Executor behind the vtable."""

    _destroy_fn = "gg_executor_destroy"

    @classmethod
    def create(cls, backend: "str | Executor | None" = None, workdir_root: "str | None" = None,
               max_output: int = 0, default_timeout_s: float = 0.0,
               **options: "str | None") -> "ExecutorHandle":
        """backend: None or a name ("process", "container", "noop") for a built-in one, or an
        Executor instance. options: the other gg_executor_options fields by name, for the
        built-in backends: isolation and min_isolation ("none", "rlimits", "namespaces";
        process backend), zygote (1 on, -1 off, 0: $GRYPHGEN_ZYGOTE; process backend),
        container_socket and container_images (container backend; see docs/executor.md).
        None keeps the library's default."""
        if isinstance(backend, Executor):
            if options:
                raise TypeError("gryphgen: options are for the built-in executors, not for "
                                "a Python Executor")
            # Version 1 without caps (the library's default for it), version 2 with them.
            caps = backend.caps
            vt = N.ExecutorVtable(version=1 if caps is None else 2, run=_executor_run,
                                  destroy=_backend_destroy, caps=int(caps or 0))
            if _overrides(backend, Executor, "interrupt"):
                vt.interrupt = _executor_interrupt
            return cls(_new_custom("gg_executor_new_custom", vt, backend, "name"))
        opts = N.ExecutorOptions()
        N.check(N.fn("gg_executor_options_init")(ctypes.byref(opts),
                                                 N.EXECUTOR_OPTIONS_VERSION))
        opts.backend = N.encode(backend, "backend")
        opts.workdir_root = N.encode(workdir_root, "workdir_root")
        opts.max_output = int(max_output)
        opts.default_timeout_s = float(default_timeout_s)
        keep = _set_options(opts, options, ("backend", "workdir_root", "max_output",
                                            "default_timeout_s"), "executor")
        out = ctypes.c_void_p()
        N.check(N.fn("gg_executor_new")(ctypes.byref(out), ctypes.byref(opts)))
        del keep  # the strings were needed until gg_executor_new() returned
        return cls(out.value)

    def run(self, request: dict | str) -> dict:
        """Runs a job (dict or JSON text) and returns the result dict."""
        text = request if isinstance(request, str) else json.dumps(request)
        out = ctypes.c_void_p()
        rc = N.fn("gg_executor_run")(self._p(), N.encode(text), ctypes.byref(out))
        N.check(rc)
        return json.loads(N.take_string(out))

    def interrupt(self) -> None:
        """Kills the jobs in progress (their runs raise Cancelled)."""
        N.check(N.fn("gg_executor_interrupt")(self._p()))

    @property
    def backend(self) -> str:
        return N.decode(N.fn("gg_executor_backend")(self._p()))


class GeneratorHandle(_Handle):
    """A C generator: built-in (spec "replay", "reference", "command:PROG") or a Python
    Generator behind the vtable."""

    _destroy_fn = "gg_generator_destroy"

    @classmethod
    def create(cls, spec: "str | Generator | None" = None, timeout_s: float = 0.0,
               max_output: int = 0, **options: "str | float | int | None") -> "GeneratorHandle":
        """spec: None or a built-in spec ("replay", "reference", "command:PROG", "openai"), or
        a Generator instance. options: other gg_generator_options fields by name (url, model,
        api_key, api_key_file, temperature, max_tokens, seed, connect_timeout_s,
        max_retries, prompt_template_file, arms, journal, bandit_seed, cost_per_second);
        unset ones keep the library's defaults (docs/configuration.md)."""
        if isinstance(spec, Generator):
            vt = N.GeneratorVtable(version=N.GENERATOR_VTABLE_VERSION,
                                   generate=_generator_generate, destroy=_backend_destroy)
            return cls(_new_custom("gg_generator_new_custom", vt, spec, "name"))
        opts = N.GeneratorOptions()
        N.check(N.fn("gg_generator_options_init")(ctypes.byref(opts),
                                                  N.GENERATOR_OPTIONS_VERSION))
        opts.spec = N.encode(spec, "generator spec")
        opts.timeout_s = float(timeout_s)
        opts.max_output = int(max_output)
        keep = _set_options(opts, options, ("spec", "timeout_s", "max_output"), "generator")
        out = ctypes.c_void_p()
        N.check(N.fn("gg_generator_new")(ctypes.byref(out), ctypes.byref(opts)))
        del keep
        return cls(out.value)

    def generate(self, request: dict | str) -> dict:
        """Asks for one attempt's code; returns the response dict."""
        text = request if isinstance(request, str) else json.dumps(request)
        out = ctypes.c_void_p()
        N.check(N.fn("gg_generator_generate")(self._p(), N.encode(text), ctypes.byref(out)))
        return json.loads(N.take_string(out))

    @property
    def name(self) -> str:
        return N.decode(N.fn("gg_generator_name")(self._p()))


class RetrieverHandle(_Handle):
    """A C retriever: built-in ("none") or a Python Retriever behind the vtable."""

    _destroy_fn = "gg_retriever_destroy"

    @classmethod
    def create(cls, backend: "str | Retriever | None" = None,
               **options: "str | float | int | None") -> "RetrieverHandle":
        """backend: None or "none", "fts5" (an SQLite FTS5 index: db_path, usefulness_weight,
        exploration, seed, max_chars) or "http" (a search endpoint: url, method, body,
        headers, token_env, token_file, results_pointer, id_pointer, text_pointer,
        score_pointer, source_pointer, timeout_s, max_retries, feedback_url, max_response,
        max_chars), or a Retriever instance. options: those gg_retriever_options fields by
        name (include/gryphgen/retriever.h, docs/retrieval.md); None keeps the default."""
        if isinstance(backend, Retriever):
            if options:
                raise TypeError("gryphgen: options are for the built-in retrievers, not for "
                                "a Python Retriever")
            vt = N.RetrieverVtable(version=N.RETRIEVER_VTABLE_VERSION,
                                   search=_retriever_search, destroy=_backend_destroy)
            if _overrides(backend, Retriever, "feedback"):
                vt.feedback = _retriever_feedback
            return cls(_new_custom("gg_retriever_new_custom", vt, backend, "name"))
        opts = N.RetrieverOptions()
        N.check(N.fn("gg_retriever_options_init")(ctypes.byref(opts),
                                                  N.RETRIEVER_OPTIONS_VERSION))
        opts.backend = N.encode(backend, "retriever backend")
        keep = _set_options(opts, options, ("backend",), "retriever")
        out = ctypes.c_void_p()
        N.check(N.fn("gg_retriever_new")(ctypes.byref(out), ctypes.byref(opts)))
        del keep
        return cls(out.value)

    def search(self, query: dict | str) -> dict:
        """Answers a query ({"query", "k", "language"}) with {"results": [...]}."""
        text = query if isinstance(query, str) else json.dumps(query)
        out = ctypes.c_void_p()
        N.check(N.fn("gg_retriever_search")(self._p(), N.encode(text), ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def feedback(self, feedback: "dict | str") -> None:
        """Hands feedback (which results an attempt used, whether it passed) to the
        retriever."""
        text = feedback if isinstance(feedback, str) else json.dumps(feedback)
        N.check(N.fn("gg_retriever_feedback")(self._p(), N.encode(text)))

    def add(self, document: "dict | str") -> dict:
        """Adds a document ({"source", "text", "language", "kind"}; include/gryphgen/
        retriever.h) to a retriever that takes documents (fts5); returns {"ids", "added",
        "unchanged", "removed"}. Unsupported for the others."""
        text = document if isinstance(document, str) else json.dumps(document)
        out = ctypes.c_void_p()
        N.check(N.fn("gg_retriever_add")(self._p(), N.encode(text), ctypes.byref(out)))
        answer = N.take_string(out) if out.value else None
        return json.loads(answer) if answer else {}

    @property
    def name(self) -> str:
        return N.decode(N.fn("gg_retriever_name")(self._p()))


def live_backends() -> int:
    """How many Python backends the library still holds (for tests and leak checks)."""
    with _registry_lock:
        return len(_registry)
