"""The grid classes of the gryphgen binding: Worker, a Python face on gg_worker_t
(include/gryphgen/worker.h) that serves attempts for an orchestrator bound to an endpoint,
and Client, a Python face on gg_client_t (include/gryphgen/client.h) that submits tasks to
such an orchestrator, waits for results, asks for status, cancels and watches its events.
Both speak ggp/1 (docs/protocol.md); tasks, results and events are dicts."""

from __future__ import annotations

import ctypes
import json
import queue
import threading
import time

from . import _native as N
from . import errors
from ._common import (LogSink, NativeObject, log_level as _log_level, resolve_backends,
                      sliced_wait, task_text)
from .transport import Transport, lend
from ._types import Any, BackendSpec, Callable, Iterable, Iterator, LogTarget, Task

_WATCH_SLICE_MS = 1000  # an iterating watch re-subscribes this often to notice a close


def _connect_text(connect) -> str:
    """The connect option as the library takes it: a str as is, or a list (tuple) of
    endpoints joined with commas ("EP1,EP2": a primary and its backup; the worker or client
    follows the active one, docs/protocol.md "Failover"). Each entry must be a non-empty str
    without a comma; the library checks the rest (at most 16, each by the security rule)."""
    if isinstance(connect, (list, tuple)):
        for ep in connect:
            if not isinstance(ep, str):
                raise TypeError("gryphgen: connect must be a str or a list of str, got an "
                                "entry of type %s" % type(ep).__name__)
            if not ep.strip() or "," in ep:
                raise errors.InvalidInput("gryphgen: connect: each endpoint of the list must "
                                          "be non-empty and without a comma, got %r" % ep)
        if not connect:
            raise errors.InvalidInput("gryphgen: connect: the list of endpoints is empty")
        return ",".join(connect)
    return connect


def _label_array(labels):
    """(ctypes array of char *, NULL-terminated, or None) for labels given as a dict or an
    iterable of "key=value" strings."""
    if labels is None:
        return None
    if isinstance(labels, dict):
        items = ["%s=%s" % (k, v) for k, v in labels.items()]
    elif isinstance(labels, (str, bytes)):
        raise TypeError("gryphgen: labels must be a dict or a list of 'key=value' strings")
    else:
        items = list(labels)
    arr = (ctypes.c_char_p * (len(items) + 1))()
    for i, item in enumerate(items):
        arr[i] = N.encode(item, "label")
    arr[len(items)] = None
    return arr


class Worker(NativeObject, LogSink):
    """A grid worker (gg_worker_t): connects to an orchestrator's endpoint and runs the
    attempts it hands out, one per slot, with its own generator, executor and retriever.

    connect: the endpoint, e.g. "tcp://127.0.0.1:5555" (required), or several as a list or a
    comma-separated str (at most 16: a primary and its backup), of which the worker follows
    the active one: it moves to the next when its orchestrator answers "passive:", closes the
    connection or falls silent, keeping its jobs and sending their results to the new one
    (docs/protocol.md "Failover"). name: node name (None: the
    host name). slots: attempts at once (0: cores). queue: jobs held ahead of the slots (0: as
    many as slots). labels: a dict or a list of "key=value" strings. executor / generator /
    retriever: None (process / replay / none), a built-in name or spec, a Python backend, or a
    handle (borrowed: close it after the worker). python, cc: interpreters for tasks. log: a
    logging.Logger or a callable(level_name, message), called on the run or a slot thread.
    log_level: "error", "warn", "info" or "debug". insecure: True allows connecting without
    encryption, to a loopback endpoint only (tcp://127.0.0.1:P, tcp://[::1]:P,
    tcp://localhost:P, ipc://PATH); without it a tcp:// or ipc:// endpoint raises
    InvalidInput, and an endpoint that is not loopback raises InvalidInput even with it (the
    library's rule, docs/security.md). curve_key_file: this worker's key pair (PREFIX.key,
    its public key listed with role worker in the orchestrator's authorized keys) and
    curve_server_key: the orchestrator's public key (Z85 text or a PREFIX.pub file): with
    both, the connection is encrypted and the endpoint need not be loopback.
    custom_transport: a gryphgen.Transport (a host's transport made in C) instead of ZeroMQ;
    connect is then the orchestrator's endpoint name in it.

    run() blocks until stop() (from another thread); run_in_thread() starts it on a thread.
    close() (or leaving the with block) stops, joins that thread and frees the worker."""

    _what = "the worker"

    def __init__(self, connect: str | list[str], name: str | None = None, slots: int = 0,
                 queue: int = 0,
                 labels: dict[str, str] | Iterable[str] | None = None,
                 executor: BackendSpec = None, generator: BackendSpec = None,
                 retriever: BackendSpec = None, python: str | None = None,
                 cc: str | None = None, log: LogTarget = None, log_level: str | int = "warn",
                 insecure: bool = False, curve_key_file: str | None = None,
                 curve_server_key: str | None = None,
                 custom_transport: Transport | None = None) -> None:
        self._ptr = None
        self._owned = []
        self._transport = custom_transport
        self._thread = None
        self._log = log
        self._callback_errors = 0
        self._lock = threading.Lock()
        self._running = False
        self.run_status = None      # the status run() returned on the thread, once it ended
        self.run_error = None       # the exception it raised there, if any
        try:
            gen, ex, ret = resolve_backends(self._owned, generator, executor, retriever)
            self._handles = (gen, ex, ret)  # keeps borrowed handles referenced too

            opts = N.WorkerOptions()
            N.check(N.fn("gg_worker_options_init")(ctypes.byref(opts),
                                                   N.WORKER_OPTIONS_VERSION))
            self._strings = [N.encode(_connect_text(connect), "connect"),
                             N.encode(name, "name"), N.encode(python, "python"), N.encode(cc, "cc"),
                             N.encode(curve_key_file, "curve_key_file"),
                             N.encode(curve_server_key, "curve_server_key")]
            (opts.connect, opts.name, opts.python, opts.cc, opts.curve_key_file,
             opts.curve_server_key) = self._strings
            opts.slots = int(slots)
            opts.queue = int(queue)
            opts.insecure = 1 if insecure else 0
            opts.custom_transport = lend(custom_transport, self)
            self._labels = _label_array(labels)
            if self._labels is not None:
                opts.labels = ctypes.cast(self._labels, ctypes.POINTER(ctypes.c_char_p))
            opts.executor = ex._ptr if ex else None
            opts.generator = gen._ptr if gen else None
            opts.retriever = ret._ptr if ret else None
            opts.log_level = _log_level(log_level)
            if log is not None:
                # The thunk lives on self until gg_worker_destroy() has returned.
                self._log_thunk = N.LOG_FN(self._deliver_log)
                opts.log_fn = self._log_thunk
            out = ctypes.c_void_p()
            N.check(N.fn("gg_worker_new")(ctypes.byref(out), ctypes.byref(opts)))
            self._ptr = out.value
        except BaseException:
            self.close()
            raise

    def run(self) -> int:
        """Connects and serves jobs until stop(); returns 0 after a stop. Raises the
        library's error when the endpoint cannot be used at all, InvalidState when the
        worker already runs. The GIL is released meanwhile."""
        p = self._p()
        with self._lock:
            if self._running:
                raise errors.InvalidState("gryphgen: the worker is already running")
            self._running = True
        try:
            return N.check(N.fn("gg_worker_run")(p))
        finally:
            with self._lock:
                self._running = False

    def run_in_thread(self, name: str = "gryphgen-worker") -> threading.Thread:
        """Starts run() on a new daemon thread and returns the thread. When run() ends, its
        status is in .run_status, or the exception it raised in .run_error."""
        self._p()
        if self._thread is not None and self._thread.is_alive():
            raise errors.InvalidState("gryphgen: the worker already runs on a thread")
        self.run_status = self.run_error = None

        def body():
            try:
                self.run_status = self.run()
            except BaseException as e:  # noqa: B036
                self.run_error = e

        self._thread = threading.Thread(target=body, name=name, daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Asks run() to return soon (running attempts are interrupted). Any thread."""
        if self._ptr:
            N.fn("gg_worker_stop")(self._ptr)

    def stats(self) -> dict:
        """Counters as a dict: jobs, results, reconnects, dropped, held, failovers (moves to
        another endpoint of the list) and endpoint (the one whose orchestrator welcomed the
        worker, or None)."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_worker_stats")(self._p(), ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def close(self, timeout: float = 30.0) -> None:
        """Stops the worker, joins run_in_thread()'s thread and frees the worker and the
        backends it created. Idempotent. InvalidState when run() still runs on a thread
        this worker did not start (stop it and let it return first)."""
        if self._ptr:
            self.stop()
            if self._thread is not None:
                self._thread.join(timeout)
                if self._thread.is_alive():
                    raise errors.Timeout("gryphgen: the worker thread did not stop within "
                                         "%.1f s" % timeout)
                self._thread = None
            with self._lock:
                if self._running:
                    raise errors.InvalidState("gryphgen: close() while run() still runs")
                p = ctypes.c_void_p(self._ptr)
                self._ptr = None
            N.fn("gg_worker_destroy")(ctypes.byref(p))
        owned, self._owned = getattr(self, "_owned", []), []
        for h in owned:
            h.close()


class Client(NativeObject):
    """A client of a grid orchestrator (gg_client_t): an Orchestrator with bind=... or
    `gryphgen serve`. connect: the endpoint (required), or several as a list or a
    comma-separated str (at most 16: a primary and its backup): a request goes to the active
    one, and is sent again to the next when an orchestrator answers "passive:", closes the
    connection or falls silent (docs/protocol.md "Failover"). name: submitter name for fair share
    (None: user@host). timeout: seconds per request, not per wait (None: 10). insecure: True
    allows connecting without encryption, to a loopback endpoint only (as for Worker); without
    it a tcp:// or ipc:// endpoint raises InvalidInput. curve_key_file, curve_server_key: as
    for Worker (the client's key listed with role submitter or admin). custom_transport: as
    for Worker.

    Calls on one client are serialised by the library; use one client per thread for
    parallel requests. A watch holds the client for its duration."""

    _what = "the client"

    def __init__(self, connect: str | list[str], name: str | None = None,
                 timeout: float | None = None,
                 insecure: bool = False, curve_key_file: str | None = None,
                 curve_server_key: str | None = None,
                 custom_transport: Transport | None = None) -> None:
        self._ptr = None
        self._transport = custom_transport
        opts = N.ClientOptions()
        N.check(N.fn("gg_client_options_init")(ctypes.byref(opts), N.CLIENT_OPTIONS_VERSION))
        self._strings = [N.encode(_connect_text(connect), "connect"), N.encode(name, "name"),
                         N.encode(curve_key_file, "curve_key_file"),
                         N.encode(curve_server_key, "curve_server_key")]
        opts.connect, opts.name, opts.curve_key_file, opts.curve_server_key = self._strings
        opts.insecure = 1 if insecure else 0
        opts.custom_transport = lend(custom_transport, self)
        if timeout is not None:
            ms = int(round(float(timeout) * 1000))
            if ms <= 0:
                raise errors.InvalidInput("gryphgen: timeout must be positive")
            opts.timeout_ms = ms
        out = ctypes.c_void_p()
        N.check(N.fn("gg_client_new")(ctypes.byref(out), ctypes.byref(opts)))
        self._ptr = out.value

    def close(self) -> None:
        """Closes the connection and frees the client. Idempotent."""
        if self._ptr:
            p = ctypes.c_void_p(self._ptr)
            self._ptr = None
            N.fn("gg_client_destroy")(ctypes.byref(p))

    def submit(self, task: Task) -> str:
        """Submits a task (dict or JSON text); returns its task_id. Busy when the
        orchestrator's queue is full, Timeout when nobody answered."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_client_submit")(self._p(), N.encode(task_text(task)),
                                         ctypes.byref(out)))
        return N.take_string(out)

    def submit_batch(self, tasks: Iterable[Task] | str) -> dict:
        """Submits many tasks (a list of dicts, or JSON array text) in one message; returns
        {"ids": [id or None, ...], "errors": [{"index", "code", "message"}, ...]}. Busy when
        the whole batch was refused."""
        if isinstance(tasks, (str, bytes)):
            text = tasks
        else:
            text = json.dumps([json.loads(t) if isinstance(t, str) else t for t in tasks])
        out = ctypes.c_void_p()
        N.check(N.fn("gg_client_submit_batch")(self._p(), N.encode(text, "tasks"),
                                               ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def wait(self, task_id: str, timeout: float | None = None) -> dict:
        """Waits for the task's end and returns its result dict; Timeout when timeout
        seconds pass first (None: no limit), NotFound for an unknown task."""
        tid = N.encode(task_id, "task_id")
        out = ctypes.c_void_p()
        sliced_wait(lambda ms: N.fn("gg_client_wait")(self._p(), tid, ms, ctypes.byref(out)), timeout)
        return json.loads(N.take_string(out))

    def status(self, task_id: str | None = None) -> dict:
        """The state of a task as a dict (task_id, status, attempts, reason), or with no
        task_id the orchestrator's counters and nodes."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_client_status")(self._p(), N.encode(task_id, "task_id"),
                                         ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def stats(self) -> dict:
        """The client's counters (gg_client_get_stats, since 1.3) as a dict: requests
        (request messages sent, again after a reset or a move), replies, timeouts (requests
        that raised Timeout for want of an answer; a wait whose task did not end in time is
        not one), failovers (moves to another endpoint of the list), and
        endpoint / endpoint_index (the one whose orchestrator welcomed the client last and
        its index in the list, or None / -1). Safe from any thread, also while another one
        waits in a request."""
        st = N.ClientStats()
        st.size = ctypes.sizeof(N.ClientStats)
        N.check(N.fn("gg_client_get_stats")(self._p(), ctypes.byref(st)))
        ep = st.endpoint.decode("utf-8", "replace") if st.endpoint_index >= 0 else None
        return {"requests": st.requests, "replies": st.replies, "timeouts": st.timeouts,
                "failovers": st.failovers, "endpoint": ep,
                "endpoint_index": st.endpoint_index}

    def demand(self, caps: dict | None = None) -> dict:
        """The unfinished tasks a worker with capabilities caps could run (labels,
        languages, gpus, deps, limit; absent: not checked), as a scaler asks (library 1.3):
        {"tasks", "waiting", "queued", "running", "unservable", "complete"}."""
        out = ctypes.c_void_p()
        N.check(N.fn("gg_client_demand")(self._p(), json.dumps(caps or {}).encode(),
                                         ctypes.byref(out)))
        return json.loads(N.take_string(out))

    def cancel(self, task_id: str) -> None:
        """Cancels a task; InvalidState when it has ended, NotFound when unknown."""
        N.check(N.fn("gg_client_cancel")(self._p(), N.encode(task_id, "task_id")))

    def _watch_call(self, deliver, timeout_ms, types=None):
        """One gg_client_watch_filtered(); deliver(event dict) returns True to stop.
        Exceptions of deliver stop the watch and are raised here after it returned."""
        failure = []

        def thunk(_user, text):
            try:
                return 1 if deliver(json.loads(text.decode("utf-8", "replace"))) else 0
            except BaseException as e:  # noqa: B036
                failure.append(e)
                return 1

        cb = N.WATCH_FN(thunk)
        rc = N.fn("gg_client_watch_filtered")(self._p(), types, cb, None, int(timeout_ms))
        if failure:
            raise failure[0]
        N.check(rc)

    def watch(self, callback: Callable[[dict], Any] | None = None,
              timeout: float | None = None,
              types: Iterable[str] | str | None = None) -> Iterator[dict] | None:
        """Streams the orchestrator's events (docs/events.md) as dicts.

        types: the event types (or prefixes such as "node.") to receive, as a list or a
        comma-separated string; None: all. The orchestrator builds no event nobody asked
        for. Unknown types, empty entries or more than 32 raise InvalidInput.

        With a callback: calls callback(event) for each until it returns a true value or
        timeout seconds pass (None: until the callback says stop); returns None. An
        exception raised by the callback ends the watch and is re-raised.

        Without one: returns an iterator over events that ends when timeout seconds pass
        (None: when the iterator is closed). It watches on a helper thread which
        re-subscribes every second, so an event emitted in that instant can be missed."""
        if types is not None and not isinstance(types, str):
            types = ",".join(types)
        types = None if types is None else N.encode(types, "types")
        if callback is not None:
            ms = -1 if timeout is None else max(0, int(timeout * 1000))
            self._watch_call(callback, ms, types)
            return None
        return self._watch_iter(timeout, types)

    def _watch_iter(self, timeout, types):
        self._p()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        events = queue.Queue(maxsize=10000)
        stop = threading.Event()
        done = object()

        def put(event):
            while not stop.is_set():
                try:
                    events.put(event, timeout=0.1)
                    return False
                except queue.Full:
                    continue
            return True

        def body():
            try:
                while not stop.is_set():
                    ms = _WATCH_SLICE_MS
                    if deadline is not None:
                        left = int((deadline - time.monotonic()) * 1000)
                        if left <= 0:
                            break
                        ms = min(ms, left)
                    self._watch_call(put, ms, types)
            except BaseException as e:  # noqa: B036
                events.put(e)
            events.put(done)

        t = threading.Thread(target=body, name="gryphgen-watch", daemon=True)
        t.start()
        try:
            while True:
                item = events.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while t.is_alive():
                try:  # unblock a put() waiting on a full queue
                    events.get(timeout=0.05)
                except queue.Empty:
                    pass
            t.join()
