"""The Transport class of the gryphgen binding: a host's own message transport between an
orchestrator and its workers and clients (gryphgen/sys/transport.h), made in C with
gg_transport_new_custom() and handed to Python by address.

Why not a transport written in Python: the library calls a transport for every message, on
its own threads (the scheduler's and each worker's), in a loop with short timeouts. In
Python each call would take the GIL, so the grid's throughput would depend on the host's
Python threads, and calls still arriving while the interpreter shuts down would crash it.
A transport's code therefore lives in C (or another language with a C ABI); Python only
passes the handle along: Orchestrator(custom_transport=t), Worker(..., custom_transport=t),
Client(..., custom_transport=t)."""

from __future__ import annotations

import ctypes
import weakref

from . import _native as N
from . import errors
from ._common import NativeObject


class Transport(NativeObject):
    """A gg_transport_t * made by C code (gg_transport_new_custom()), given as an int address
    or a ctypes.c_void_p. owned: True (default) makes close() destroy it
    (gg_transport_destroy()); False leaves that to the C code that made it. Objects given it
    keep it referenced; close() raises InvalidState while one of them is still open."""

    _what = "the transport"

    def __init__(self, address: int | ctypes.c_void_p, owned: bool = True) -> None:
        self._ptr = None
        if isinstance(address, ctypes.c_void_p):
            address = address.value
        if not isinstance(address, int) or address <= 0:
            raise errors.InvalidInput("gryphgen: a transport is the non-NULL address of a "
                                      "gg_transport_t made by gg_transport_new_custom()")
        self._owned = bool(owned)
        self._users: weakref.WeakSet = weakref.WeakSet()
        self._ptr = address

    @property
    def address(self) -> int:
        """The gg_transport_t * as an int."""
        return self._p()

    def _lend(self, user: NativeObject) -> int:
        """The handle for user's options; user is remembered until it is closed."""
        p = self._p()
        self._users.add(user)
        return p

    def close(self) -> None:
        """Destroys the transport (when owned). Idempotent. InvalidState while an
        Orchestrator, Worker or Client given it is still open."""
        if not self._ptr:
            return
        if any(u._ptr for u in list(self._users)):
            raise errors.InvalidState("gryphgen: close the orchestrators, workers and clients "
                                      "using the transport first")
        p = ctypes.c_void_p(self._ptr)
        self._ptr = None
        if self._owned:
            N.fn("gg_transport_destroy")(ctypes.byref(p))


def lend(transport: Transport | None, user: NativeObject) -> int | None:
    """The address for an options struct's custom_transport (None: the built-in ZeroMQ)."""
    if transport is None:
        return None
    if not isinstance(transport, Transport):
        raise TypeError("gryphgen: custom_transport must be a gryphgen.Transport, got %s"
                        % type(transport).__name__)
    return transport._lend(user)
