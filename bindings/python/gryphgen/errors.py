"""Exceptions of the gryphgen binding: one class per libgryphgen status code (GG_E*), all
derived from GryphgenError, which carries the code (.status) and the library's message for
the failing call (gg_error_last() of the calling thread)."""

from __future__ import annotations

OK = 0
EINVAL = -1
ENOMEM = -2
EIO = -3
ENOTFOUND = -4
ETIMEDOUT = -5
EEXIST = -6
EVERSION = -7
ECANCELLED = -8
EBUSY = -9
ESTATE = -10
EEXEC = -11
EGENERATOR = -12
ESTORE = -13
ETRANSPORT = -14
EEXHAUSTED = -15
ETOOBIG = -16
EAGAIN = -17
EUNSUPPORTED = -18
EINTERNAL = -19


class GryphgenError(Exception):
    """A libgryphgen call failed. .status is the negative GG_E* code, .message the library's
    message (or the strerror text when the library gave none)."""

    status = EINTERNAL

    def __init__(self, message="", status=None):
        if status is not None:
            self.status = status
        self.message = message
        super().__init__(message)

    def __repr__(self):
        return "%s(status=%d, message=%r)" % (type(self).__name__, self.status, self.message)


def _make(name, code, doc):
    return type(name, (GryphgenError,), {"status": code, "__doc__": doc})


InvalidInput = _make("InvalidInput", EINVAL, "An argument or input is malformed (GG_EINVAL).")
OutOfMemory = _make("OutOfMemory", ENOMEM, "Out of memory (GG_ENOMEM).")
IOFailure = _make("IOFailure", EIO, "An operating-system call failed (GG_EIO).")
NotFound = _make("NotFound", ENOTFOUND, "No such task, file, program or backend (GG_ENOTFOUND).")
Timeout = _make("Timeout", ETIMEDOUT, "A wait or a job ran out of time (GG_ETIMEDOUT).")
AlreadyExists = _make("AlreadyExists", EEXIST, "Exists with different content (GG_EEXIST).")
VersionMismatch = _make("VersionMismatch", EVERSION, "Unknown struct/vtable version (GG_EVERSION).")
Cancelled = _make("Cancelled", ECANCELLED, "Cancelled (GG_ECANCELLED).")
Busy = _make("Busy", EBUSY, "A queue or limit is full (GG_EBUSY).")
InvalidState = _make("InvalidState", ESTATE, "The call does not fit the state (GG_ESTATE).")
ExecutorFailure = _make("ExecutorFailure", EEXEC, "An executor could not run a job (GG_EEXEC).")
GeneratorFailure = _make("GeneratorFailure", EGENERATOR, "A generator failed (GG_EGENERATOR).")
StoreFailure = _make("StoreFailure", ESTORE, "The database failed (GG_ESTORE).")
TransportFailure = _make("TransportFailure", ETRANSPORT, "Messaging failed (GG_ETRANSPORT).")
Exhausted = _make("Exhausted", EEXHAUSTED, "A generator has no more candidates (GG_EEXHAUSTED).")
TooBig = _make("TooBig", ETOOBIG, "An input exceeds a size limit (GG_ETOOBIG).")
NotReady = _make("NotReady", EAGAIN, "Not ready yet, e.g. a task still running (GG_EAGAIN).")
Unsupported = _make("Unsupported", EUNSUPPORTED, "Not supported here (GG_EUNSUPPORTED).")
InternalError = _make("InternalError", EINTERNAL, "A bug in libgryphgen (GG_EINTERNAL).")

_BY_STATUS = {cls.status: cls for cls in (
    InvalidInput, OutOfMemory, IOFailure, NotFound, Timeout, AlreadyExists, VersionMismatch,
    Cancelled, Busy, InvalidState, ExecutorFailure, GeneratorFailure, StoreFailure,
    TransportFailure, Exhausted, TooBig, NotReady, Unsupported, InternalError)}


def error_class(status: int) -> type[GryphgenError]:
    """The exception class for a status code; GryphgenError for codes this binding does not
    know (a newer library may append codes)."""
    return _BY_STATUS.get(status, GryphgenError)


def make_error(status, message):
    """An exception instance for status with message."""
    cls = error_class(status)
    return cls(message, status=status)
