"""What the binding's handle classes share: the lifetime protocol of a native handle (a
closed check, with-blocks, close on garbage collection), log levels and the delivery of the
library's log lines to Python, task text, and resolving the generator / executor / retriever
options given as names, Python backends or handles."""

import json
import logging
import time

from . import _native as N
from . import errors

WAIT_SLICE_MS = 500  # waits are sliced so Ctrl-C reaches Python between slices
LOG_LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}
PY_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def log_level(value):
    """The library's level number for a name ("error", "warn", "info", "debug") or a number."""
    if isinstance(value, str):
        if value not in LOG_LEVELS:
            raise errors.InvalidInput("gryphgen: unknown log_level %r" % value)
        return LOG_LEVELS[value]
    return int(value)


def sliced_wait(call, timeout):
    """Calls call(slice_ms) -> status again while it times out before the deadline (timeout
    seconds; None: no limit), then raises the status it ended with, if an error."""
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    while True:
        slice_ms = WAIT_SLICE_MS
        if deadline is not None:
            slice_ms = max(0, min(slice_ms, int((deadline - time.monotonic()) * 1000)))
        rc = call(slice_ms)
        if rc == errors.ETIMEDOUT and (deadline is None or time.monotonic() < deadline):
            continue
        N.check(rc)
        return


def task_text(task):
    """JSON text of a task given as a dict (or list) or as text already."""
    if isinstance(task, (dict, list)):
        return json.dumps(task)
    if isinstance(task, str):
        return task
    raise TypeError("gryphgen: a task is a dict or JSON text, got %s" % type(task).__name__)


def resolve_handle(value, handle_cls, base_cls, what):
    """(handle, owned) for an option given as None, a name, a Python backend or a handle."""
    if value is None:
        return None, False
    if isinstance(value, handle_cls):
        return value, False
    if isinstance(value, (str, base_cls)):
        return handle_cls.create(value), True
    raise TypeError("gryphgen: %s must be None, a name, a %s or a %s, got %s"
                    % (what, base_cls.__name__, handle_cls.__name__, type(value).__name__))


def resolve_backends(owned, generator, executor, retriever):
    """(generator, executor, retriever) handles for the three backend options; the handles
    created here are appended to owned (the caller closes them after the native object)."""
    from .backends import (Executor, ExecutorHandle, Generator, GeneratorHandle, Retriever,
                           RetrieverHandle)
    out = []
    for value, handle_cls, base_cls, what in (
            (generator, GeneratorHandle, Generator, "generator"),
            (executor, ExecutorHandle, Executor, "executor"),
            (retriever, RetrieverHandle, Retriever, "retriever")):
        h, own = resolve_handle(value, handle_cls, base_cls, what)
        if own:
            owned.append(h)
        out.append(h)
    return tuple(out)


class NativeObject:
    """Base of the classes that own a native handle in self._ptr: _p() refuses a closed
    object, with-blocks and garbage collection call close()."""

    _ptr = None
    _what = None  # how errors name the object; None: its class name

    def _p(self):
        if not self._ptr:
            raise errors.InvalidState("gryphgen: %s is closed"
                                      % (self._what or type(self).__name__))
        return self._ptr

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class LogSink:
    """Delivers the library's log lines to self._log (a logging.Logger or a callable(level
    name, message)); a failing callback is counted in self._callback_errors, never raised
    into C."""

    def _deliver_log(self, _user, level, message):
        try:
            msg = message.decode("utf-8", "replace")
            if isinstance(self._log, logging.Logger):
                self._log.log(PY_LEVELS.get(level, logging.DEBUG), "%s", msg)
            else:
                self._log(N.decode(N.lib.gg_log_level_name(level)), msg)
        except BaseException:  # noqa: B036
            self._callback_errors += 1
