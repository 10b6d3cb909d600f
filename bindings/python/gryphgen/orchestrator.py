"""The Orchestrator class of the gryphgen binding: a Python face on gg_orchestrator_t (submit,
wait, result, cancel, drain, stats, run_set), with events delivered to a callback and to a
bounded, thread-safe queue read through events(). Generator, executor and retriever may be
given as built-in names, Python backends (gryphgen.Generator, ...) or handles."""

from __future__ import annotations

import ctypes
import json
import queue
import time

from . import _native as N
from . import errors
from ._common import (LogSink, NativeObject, log_level as _log_level, resolve_backends,
                      sliced_wait, task_text)
from .grid import Client
from .transport import Transport, lend
from ._types import Any, BackendSpec, Callable, Iterable, Iterator, LogTarget, Task

_CLOSED = object()


class Orchestrator(NativeObject, LogSink):
    """Runs tasks through the repair loop (include/gryphgen/orchestrator.h).

    db_path: SQLite file (None: temporary). workers: threads (0: cores). max_attempts: default
    budget (0: 3). generator / executor / retriever: None (replay / process / none), a built-in
    name or spec, a Python backend, or a handle (borrowed: close it after the orchestrator).
    python, cc: interpreters for tasks. on_event(dict): called on the scheduler thread for
    every event; keep it short. log: a logging.Logger or a callable(level_name, message).
    log_level: "error", "warn", "info" or "debug". event_queue: how many events events() keeps
    when nobody reads them (the oldest are dropped beyond it; see .events_dropped).
    bind: endpoints for remote workers and clients (gryphgen.Worker, gryphgen.Client), a str
    (comma-separated) or a list, e.g. "tcp://127.0.0.1:5555"; None: none. local_workers:
    False runs no worker threads here (only remote workers run tasks). max_queued:
    unfinished tasks beyond which submissions raise Busy (0: no limit). insecure: True allows
    `bind` endpoints without encryption, on loopback only (tcp://127.0.0.1:P, tcp://[::1]:P,
    tcp://localhost:P, ipc://PATH); without it a tcp:// or ipc:// bind raises InvalidInput,
    and an endpoint that is not loopback raises InvalidInput even with it (the library's
    rule, docs/security.md). curve_key_file: this orchestrator's key pair (PREFIX.key from
    gryphgen.keygen() or `gryphgen keygen`) and authorized_keys_file: lines "ROLE PUBKEY"
    (worker, submitter, admin): with both, every tcp/ipc peer must use CURVE with a listed
    key of a fitting role, and the endpoints need not be loopback. webhooks: http(s) URLs
    (a list) that get alerts as JSON POSTs (docs/alerts.md); stall_alert_s: seconds without
    progress while tasks wait before queue.stalled (0: 300; negative: never). front_door: an
    endpoint where a plain ZeroMQ REQ client gets one JSON reply per {"code", "query"}
    (docs/front_door.md), with front_door_timeout_s (0: 300) for its code. custom_transport: a
    gryphgen.Transport (a host's transport made in C) instead of ZeroMQ; bind is then one
    endpoint name of that transport's (docs/grid.md, "Your own transport"). max_tokens: the
    run's token budget (0: $GRYPHGEN_MAX_TOKENS, else none; negative: none whatever the
    environment says; docs/configuration.md)."""

    _what = "the orchestrator"

    def __init__(self, db_path: str | None = None, workers: int = 0, max_attempts: int = 0,
                 generator: BackendSpec = None, executor: BackendSpec = None,
                 retriever: BackendSpec = None, python: str | None = None,
                 cc: str | None = None, on_event: Callable[[dict], Any] | None = None,
                 log: LogTarget = None, log_level: str | int = "warn",
                 event_queue: int = 10000, bind: str | Iterable[str] | None = None,
                 local_workers: bool = True, max_queued: int = 0, insecure: bool = False,
                 curve_key_file: str | None = None, authorized_keys_file: str | None = None,
                 webhooks: Iterable[str] | None = None, stall_alert_s: float = 0.0,
                 front_door: str | None = None, front_door_timeout_s: float = 0.0,
                 custom_transport: Transport | None = None, max_tokens: int = 0) -> None:
        self._ptr = None
        self._transport = custom_transport  # referenced while the orchestrator lives
        self._owned = []
        self._on_event = on_event
        self._log = log
        self._queue = queue.Queue(maxsize=max(1, int(event_queue)))
        self.events_dropped = 0
        self._callback_errors = 0
        try:
            gen, ex, ret = resolve_backends(self._owned, generator, executor, retriever)
            self._handles = (gen, ex, ret)  # keeps borrowed handles referenced too

            opts = N.OrchestratorOptions()
            N.check(N.fn("gg_orchestrator_options_init")(ctypes.byref(opts),
                                                         N.ORCHESTRATOR_OPTIONS_VERSION))
            self._strings = [N.encode(db_path, "db_path"), N.encode(python, "python"),
                             N.encode(cc, "cc"), N.encode(curve_key_file, "curve_key_file"),
                             N.encode(authorized_keys_file, "authorized_keys_file")]
            (opts.db_path, opts.python, opts.cc, opts.curve_key_file,
             opts.authorized_keys_file) = self._strings
            if bind is not None and not isinstance(bind, (str, bytes)):
                bind = ",".join(bind)
            self._bind = N.encode(bind, "bind")
            opts.bind = self._bind
            if webhooks:
                urls = [N.encode(u, "webhooks") for u in webhooks]
                self._webhooks = (ctypes.c_char_p * (len(urls) + 1))(*urls, None)
                opts.webhooks = ctypes.cast(self._webhooks, ctypes.POINTER(ctypes.c_char_p))
            opts.stall_alert_s = float(stall_alert_s)
            self._front_door = N.encode(front_door, "front_door")
            opts.front_door = self._front_door
            opts.front_door_timeout_s = float(front_door_timeout_s)
            opts.local_workers = 1 if local_workers else 0
            opts.max_queued = int(max_queued)
            opts.max_tokens = int(max_tokens)
            opts.insecure = 1 if insecure else 0
            opts.custom_transport = lend(custom_transport, self)
            opts.workers = int(workers)
            opts.max_attempts = int(max_attempts)
            opts.generator = gen._ptr if gen else None
            opts.executor = ex._ptr if ex else None
            opts.retriever = ret._ptr if ret else None
            opts.log_level = _log_level(log_level)
            # The thunks live on self until gg_orchestrator_destroy() has returned.
            self._event_thunk = N.EVENT_FN(self._deliver_event)
            opts.event_fn = self._event_thunk
            if log is not None:
                self._log_thunk = N.LOG_FN(self._deliver_log)
                opts.log_fn = self._log_thunk
            out = ctypes.c_void_p()
            N.check(N.fn("gg_orchestrator_new")(ctypes.byref(out), ctypes.byref(opts)))
            self._ptr = out.value
        except BaseException:
            self.close()
            raise

    # Callbacks from the scheduler (or worker) threads: never raise into C.
    def _deliver_event(self, _user, text):
        try:
            event = json.loads(text.decode("utf-8", "replace"))
            while True:
                try:
                    self._queue.put_nowait(event)
                    break
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.events_dropped += 1
                    except queue.Empty:
                        pass
            if self._on_event is not None:
                self._on_event(event)
        except BaseException:  # noqa: B036
            self._callback_errors += 1

    def close(self) -> None:
        """Stops the orchestrator (unfinished tasks stay in the database) and releases the
        backends it created. Idempotent."""
        for c in getattr(self, "_clients", []):  # before the orchestrator they live in
            c.close()
        self._clients = []
        if self._ptr:
            p = ctypes.c_void_p(self._ptr)
            self._ptr = None
            N.fn("gg_orchestrator_destroy")(ctypes.byref(p))
            try:
                self._queue.put_nowait(_CLOSED)
            except queue.Full:
                pass
        owned, self._owned = getattr(self, "_owned", []), []
        for h in owned:
            h.close()

    def submit(self, task: Task) -> str:
        """Submits a task (dict or JSON text); returns its task_id."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_submit")(self._p(), N.encode(task_text(task)),
                                               ctypes.byref(out)))
        return N.take_string(out)

    def wait(self, task_id: str, timeout: float | None = None) -> dict:
        """Waits for the task's end and returns its result dict; raises Timeout when timeout
        seconds pass first (None: no limit), NotFound for an unknown task."""
        tid = N.encode(task_id, "task_id")
        out = ctypes.c_void_p()
        sliced_wait(lambda ms: N.fn("gg_orchestrator_wait")(self._p(), tid, ms, ctypes.byref(out)), timeout)
        return json.loads(N.take_string(out))

    def result(self, task_id: str) -> dict:
        """The result dict of an ended task; NotReady while it runs, NotFound if unknown."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_result")(self._p(), N.encode(task_id, "task_id"),
                                               ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def cancel(self, task_id: str) -> None:
        """Cancels a task; InvalidState when it has ended, NotFound when unknown."""
        N.check(N.fn("gg_orchestrator_cancel")(self._p(), N.encode(task_id, "task_id")))

    def drain(self, timeout: float | None = None) -> None:
        """Waits until no task is queued or running; Timeout when timeout seconds pass."""
        sliced_wait(lambda ms: N.fn("gg_orchestrator_drain")(self._p(), ms), timeout)

    def stats(self) -> dict:
        """Task counts by status and the number of attempts, as a dict."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_stats")(self._p(), ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def metrics(self) -> str:
        """The metrics in Prometheus' text exposition format (docs/http.md), as str."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_metrics")(self._p(), ctypes.byref(out)))
        return N.take_string(out)

    def tasks(self, status: str | None = None, submitter: str | None = None,
              after: int | None = None, limit: int | None = None,
              newest: bool = False) -> dict:
        """One page of the task list: {"tasks": [...], "next": n or None}; pass next as
        after for the following page. InvalidInput names a bad argument."""
        q = {k: v for k, v in (("status", status), ("submitter", submitter), ("after", after),
                               ("limit", limit)) if v is not None}
        if newest:
            q["newest"] = True
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_tasks")(self._p(), N.encode(json.dumps(q)),
                                              ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def connect(self, name: str) -> Client:
        """A Client in this process (no sockets, no keys) under the submitter name given: it
        submits, waits, asks and cancels through the scheduler like a remote client. It is
        closed with the orchestrator at the latest."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_orchestrator_connect")(self._p(), N.encode(name, "name"),
                                                ctypes.byref(out)))
        c = Client.__new__(Client)
        c._ptr = out.value
        c._strings = []
        self._clients = getattr(self, "_clients", []) + [c]
        return c

    def run_set(self, tasks: Iterable[Task], timeout: float | None = None) -> list[dict]:
        """Submits every task (dicts or JSON lines; blank lines skipped), waits for all and
        returns their result dicts in order. A bad task raises its error with its 1-based
        position in the message, before anything is waited for."""
        ids = []
        for n, task in enumerate(tasks, 1):
            if isinstance(task, str) and not task.strip():
                continue
            try:
                ids.append(self.submit(task))
            except errors.GryphgenError as e:
                raise type(e)("task %d: %s" % (n, e.message), status=e.status) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for tid in ids:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.append(self.wait(tid, left))
        return results

    def events(self, block: bool = True, timeout: float | None = None) -> Iterator[dict]:
        """Iterates over events (dicts) in arrival order. block=False yields only those
        already received; otherwise it waits for more and stops when timeout seconds pass
        without one (None: until the orchestrator is closed)."""
        while True:
            try:
                item = self._queue.get(block=block, timeout=timeout if block else None)
            except queue.Empty:
                return
            if item is _CLOSED:
                return
            yield item
