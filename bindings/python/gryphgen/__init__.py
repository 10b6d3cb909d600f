"""gryphgen - Python binding (ctypes) of libgryphgen: run code-generation tasks through the
repair loop (Orchestrator), use the built-in generators, executors and retrievers directly
(GeneratorHandle, ExecutorHandle, RetrieverHandle), or write backends in Python by
subclassing Generator, Executor or Retriever; spread tasks over a grid with
Orchestrator(bind=...), Worker and Client (ggp/1); deliver a passing workspace task's patch
onto a branch of its repository (deliver) or as a git format-patch mail (format_patch).
Results and events are dicts; failures raise GryphgenError subclasses carrying the library's
status and message.

The library is libgryphgen.so.1, found through $GRYPHGEN_LIBRARY, the package directory, the
dynamic linker's path, the install directory recorded when the package was built, or
pkg-config's libdir for gryphgen."""

from __future__ import annotations

import ctypes

from . import _native
from .backends import (CAP_ISOLATION_CONTAINER, CAP_ISOLATION_NAMESPACES,
                       CAP_ISOLATION_RLIMITS, CAP_OVERLAY_WORKDIR, CAP_SKIP_ATTEMPTS,
                       CAP_UNPRIVILEGED_JOBS,
                       Executor, ExecutorHandle, Generator, GeneratorHandle, Retriever,
                       RetrieverHandle)
from .errors import (AlreadyExists, Busy, Cancelled, ExecutorFailure, Exhausted,
                     GeneratorFailure, GryphgenError, InternalError, InvalidInput,
                     InvalidState, IOFailure, NotFound, NotReady, OutOfMemory, StoreFailure,
                     Timeout, TooBig, TransportFailure, Unsupported, VersionMismatch,
                     error_class)
from .grid import Client, Worker
from .orchestrator import Orchestrator
from .transport import Transport
from .workspace import deliver, format_patch

__version__ = "1.3.0"


def library_version() -> str:
    """The loaded library's version string, such as "1.3.0"."""
    return _native.decode(_native.lib.gg_version_string())


def library_path() -> str:
    """The path or name the library was loaded from."""
    return _native.lib._name


def strerror(status: int) -> str:
    """The library's description of a status code."""
    return _native.decode(_native.lib.gg_strerror(int(status)))


def init() -> None:
    """Initialises the library's process-wide state (every constructor does it too)."""
    _native.check(_native.lib.gg_init())


def log_level_name(level: int) -> str:
    """"error", "warn", "info", "debug" or "unknown"."""
    return _native.decode(_native.lib.gg_log_level_name(int(level)))


def log_level_parse(name: str) -> int:
    """The level number of a level name; InvalidInput for an unknown name."""
    return _native.check(_native.lib.gg_log_level_parse(_native.encode(name)))


def last_error() -> tuple[int, str]:
    """(status, message) of the calling thread's last libgryphgen error."""
    return (_native.lib.gg_error_last_code(), _native.decode(_native.lib.gg_error_last()))


def keygen(prefix: str) -> str:
    """Writes a new CURVE key pair as PREFIX.key (mode 0600) and PREFIX.pub and returns the
    public key (Z85 text). AlreadyExists when either file exists; Unsupported when the
    ZeroMQ library has no CURVE."""
    out = ctypes.create_string_buffer(41)
    _native.check(_native.fn("gg_curve_keygen")(_native.encode(prefix, "prefix"), out))
    return out.value.decode("ascii")


def clear_error() -> None:
    """Forgets the calling thread's last libgryphgen error."""
    _native.lib.gg_error_clear()


__all__ = [
    "Orchestrator", "Worker", "Client", "Transport", "Executor", "Generator", "Retriever", "ExecutorHandle", "GeneratorHandle",
    "RetrieverHandle", "GryphgenError", "InvalidInput", "OutOfMemory", "IOFailure", "NotFound",
    "Timeout", "AlreadyExists", "VersionMismatch", "Cancelled", "Busy", "InvalidState",
    "ExecutorFailure", "GeneratorFailure", "StoreFailure", "TransportFailure", "Exhausted",
    "TooBig", "NotReady", "Unsupported", "InternalError", "error_class", "library_version",
    "library_path", "strerror", "init", "log_level_name", "log_level_parse", "last_error",
    "clear_error", "keygen", "deliver", "format_patch", "__version__",
    "CAP_ISOLATION_RLIMITS", "CAP_ISOLATION_NAMESPACES", "CAP_ISOLATION_CONTAINER",
    "CAP_UNPRIVILEGED_JOBS", "CAP_SKIP_ATTEMPTS", "CAP_OVERLAY_WORKDIR",
]
