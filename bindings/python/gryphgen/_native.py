"""The ctypes layer of the gryphgen binding: finds and loads libgryphgen.so.1, checks that its
major version is the one this binding speaks, declares argtypes/restype of every function
the binding calls (PROTOTYPES), mirrors the public structs of include/gryphgen/*.h and
include/gryphgen/sys/*.h, and turns failing status codes into exceptions with the library's
own message. Exported functions the binding leaves alone are listed in UNBOUND with why."""

import ctypes
import os

from . import errors

SONAME = "libgryphgen.so.1"
ABI_MAJOR = 1
LIBRARY_ENV = "GRYPHGEN_LIBRARY"


def _installed_libdirs():
    """Directories where an installed libgryphgen may be, after the dynamic linker's own
    search: the one recorded when this package was built (gryphgen/_install.py, written by
    the build backend from pkg-config or `--config-settings libdir=DIR`), then what `pkg-config
    --variable=libdir gryphgen` says now (PKG_CONFIG_PATH naming the prefix's
    lib/<multiarch>/pkgconfig)."""
    dirs = []
    try:
        from . import _install
        if getattr(_install, "LIBDIR", None):
            dirs.append(_install.LIBDIR)
    except ImportError:  # a source tree, not an installed copy
        pass
    try:
        import subprocess
        r = subprocess.run(["pkg-config", "--variable=libdir", "gryphgen"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
        libdir = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode == 0 and libdir and libdir not in dirs:
            dirs.append(libdir)
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return dirs


def _load():
    """Loads the library: $GRYPHGEN_LIBRARY when set (and only it), else the file next to this
    package, else the dynamic linker's search for the soname (LD_LIBRARY_PATH, ld.so.cache),
    else the install directory recorded at build time, else pkg-config's. The error names
    every place tried and why each failed."""
    tried = []
    override = os.environ.get(LIBRARY_ENV)
    if override:
        candidates = [override]
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        candidates = [os.path.join(here, SONAME), SONAME]
    for i, path in enumerate(candidates):
        if os.sep in path and not os.path.exists(path):
            tried.append("%s (no such file)" % path)
        else:
            try:
                return ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
        if not override and i == len(candidates) - 1 and path == SONAME:
            # Looked up lazily: pkg-config runs only when the linker's search failed.
            candidates.extend(os.path.join(d, SONAME) for d in _installed_libdirs())
    where = ("$%s=%s" % (LIBRARY_ENV, override)) if override else \
        ("the package directory, the dynamic linker's path (LD_LIBRARY_PATH, ld.so.cache), "
         "the install directory recorded at build time and pkg-config's libdir "
         "(set $%s to the library's path to choose one)" % LIBRARY_ENV)
    raise ImportError("gryphgen: cannot load %s from %s; tried: %s"
                      % (SONAME, where, "; ".join(tried)))


lib = _load()

# Callback and struct types, mirroring the public headers field by field.
c_char_pp = ctypes.POINTER(ctypes.c_void_p)  # char ** out-parameters, read as raw pointers
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)

EXECUTOR_RUN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, c_char_pp)
EXECUTOR_INTERRUPT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
GENERATOR_GENERATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                         c_char_pp)
RETRIEVER_SEARCH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                       c_char_pp)
RETRIEVER_FEEDBACK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
RETRIEVER_ADD_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.POINTER(ctypes.c_void_p))
DESTROY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
WATCH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)

EXECUTOR_OPTIONS_VERSION = 3
GENERATOR_OPTIONS_VERSION = 2
RETRIEVER_OPTIONS_VERSION = 2
ORCHESTRATOR_OPTIONS_VERSION = 4
EXECUTOR_VTABLE_VERSION = 1
GENERATOR_VTABLE_VERSION = 1
RETRIEVER_VTABLE_VERSION = 2
WORKER_OPTIONS_VERSION = 2
CLIENT_OPTIONS_VERSION = 2


class ExecutorOptions(ctypes.Structure):
    """gg_executor_options (include/gryphgen/executor.h), version 3."""
    _fields_ = [("version", ctypes.c_uint32), ("backend", ctypes.c_char_p),
                ("workdir_root", ctypes.c_char_p), ("max_output", ctypes.c_size_t),
                ("default_timeout_s", ctypes.c_double),
                ("container_socket", ctypes.c_char_p), ("container_images", ctypes.c_char_p),
                ("isolation", ctypes.c_char_p), ("min_isolation", ctypes.c_char_p),
                ("zygote", ctypes.c_int)]


class GeneratorOptions(ctypes.Structure):
    """gg_generator_options (include/gryphgen/generator.h), version 2."""
    _fields_ = [("version", ctypes.c_uint32), ("spec", ctypes.c_char_p),
                ("timeout_s", ctypes.c_double), ("max_output", ctypes.c_size_t),
                ("url", ctypes.c_char_p), ("model", ctypes.c_char_p),
                ("api_key", ctypes.c_char_p), ("api_key_file", ctypes.c_char_p),
                ("temperature", ctypes.c_double), ("max_tokens", ctypes.c_int),
                ("seed", ctypes.c_longlong), ("connect_timeout_s", ctypes.c_double),
                ("max_retries", ctypes.c_int), ("prompt_template_file", ctypes.c_char_p),
                ("arms", ctypes.c_char_p), ("journal", ctypes.c_char_p),
                ("bandit_seed", ctypes.c_longlong), ("cost_per_second", ctypes.c_double)]


class RetrieverOptions(ctypes.Structure):
    """gg_retriever_options (include/gryphgen/retriever.h), version 2."""
    _fields_ = [("version", ctypes.c_uint32), ("backend", ctypes.c_char_p),
                ("db_path", ctypes.c_char_p), ("usefulness_weight", ctypes.c_double),
                ("exploration", ctypes.c_double), ("seed", ctypes.c_uint64),
                ("max_chars", ctypes.c_size_t), ("url", ctypes.c_char_p),
                ("method", ctypes.c_char_p), ("body", ctypes.c_char_p),
                ("headers", ctypes.c_char_p), ("token_env", ctypes.c_char_p),
                ("token_file", ctypes.c_char_p), ("results_pointer", ctypes.c_char_p),
                ("id_pointer", ctypes.c_char_p), ("text_pointer", ctypes.c_char_p),
                ("score_pointer", ctypes.c_char_p), ("source_pointer", ctypes.c_char_p),
                ("timeout_s", ctypes.c_double), ("max_retries", ctypes.c_int),
                ("feedback_url", ctypes.c_char_p), ("max_response", ctypes.c_size_t)]


class OrchestratorOptions(ctypes.Structure):
    """gg_orchestrator_options (include/gryphgen/orchestrator.h), version 4."""
    _fields_ = [("version", ctypes.c_uint32), ("db_path", ctypes.c_char_p),
                ("workers", ctypes.c_uint), ("max_attempts", ctypes.c_uint),
                ("generator", ctypes.c_void_p), ("executor", ctypes.c_void_p),
                ("retriever", ctypes.c_void_p), ("python", ctypes.c_char_p),
                ("cc", ctypes.c_char_p), ("log_fn", LOG_FN), ("log_user", ctypes.c_void_p),
                ("log_level", ctypes.c_int), ("event_fn", EVENT_FN),
                ("event_user", ctypes.c_void_p), ("transport", ctypes.c_char_p),
                ("bind", ctypes.c_char_p), ("local_workers", ctypes.c_int),
                ("max_queued", ctypes.c_uint), ("curve_key_file", ctypes.c_char_p),
                ("authorized_keys_file", ctypes.c_char_p), ("insecure", ctypes.c_int),
                ("webhooks", ctypes.POINTER(ctypes.c_char_p)), ("stall_alert_s", ctypes.c_double),
                ("front_door", ctypes.c_char_p), ("front_door_timeout_s", ctypes.c_double),
                ("custom_transport", ctypes.c_void_p),
                # version 4: the run's token budget; one of a standby pair (docs/ha.md)
                ("max_tokens", ctypes.c_longlong),
                ("ha_role", ctypes.c_char_p), ("ha_peer", ctypes.c_char_p),
                ("ha_timeout_ms", ctypes.c_uint)]


class WorkerOptions(ctypes.Structure):
    """gg_worker_options (include/gryphgen/worker.h), version 2."""
    _fields_ = [("version", ctypes.c_uint32), ("connect", ctypes.c_char_p),
                ("name", ctypes.c_char_p), ("slots", ctypes.c_uint), ("queue", ctypes.c_uint),
                ("labels", ctypes.POINTER(ctypes.c_char_p)), ("executor", ctypes.c_void_p),
                ("generator", ctypes.c_void_p), ("retriever", ctypes.c_void_p),
                ("python", ctypes.c_char_p), ("cc", ctypes.c_char_p), ("log_fn", LOG_FN),
                ("log_user", ctypes.c_void_p), ("log_level", ctypes.c_int),
                ("curve_key_file", ctypes.c_char_p), ("curve_server_key", ctypes.c_char_p),
                ("insecure", ctypes.c_int), ("custom_transport", ctypes.c_void_p)]


class ClientOptions(ctypes.Structure):
    """gg_client_options (include/gryphgen/client.h), version 2."""
    _fields_ = [("version", ctypes.c_uint32), ("connect", ctypes.c_char_p),
                ("name", ctypes.c_char_p), ("timeout_ms", ctypes.c_int),
                ("curve_key_file", ctypes.c_char_p), ("curve_server_key", ctypes.c_char_p),
                ("insecure", ctypes.c_int), ("custom_transport", ctypes.c_void_p)]


class ClientStats(ctypes.Structure):
    """gg_client_stats (include/gryphgen/client.h, since 1.3): size first, set by the caller;
    the library fills only the fields within it."""
    _fields_ = [("size", ctypes.c_size_t), ("requests", ctypes.c_uint64),
                ("replies", ctypes.c_uint64), ("timeouts", ctypes.c_uint64),
                ("failovers", ctypes.c_uint64), ("endpoint_index", ctypes.c_int32),
                ("endpoint", ctypes.c_char * 1024)]


class ExecutorVtable(ctypes.Structure):
    """gg_executor_vtable (include/gryphgen/sys/executor.h), version 2 (caps: the
    GG_EXECUTOR_CAP_* bits)."""
    _fields_ = [("version", ctypes.c_uint32), ("run", EXECUTOR_RUN_FN),
                ("interrupt", EXECUTOR_INTERRUPT_FN), ("destroy", DESTROY_FN),
                ("name", ctypes.c_char_p), ("caps", ctypes.c_uint32)]


class GeneratorVtable(ctypes.Structure):
    """gg_generator_vtable (include/gryphgen/sys/generator.h), version 3. The binding fills
    the version 1 slots only (caps 0: feedback, journal, permanent and interrupt are not
    offered to Python generators)."""
    _fields_ = [("version", ctypes.c_uint32), ("generate", GENERATOR_GENERATE_FN),
                ("destroy", DESTROY_FN), ("name", ctypes.c_char_p), ("caps", ctypes.c_uint32),
                ("feedback", ctypes.c_void_p), ("attach_journal", ctypes.c_void_p),
                ("permanent", ctypes.c_void_p), ("interrupt", ctypes.c_void_p)]


class RetrieverVtable(ctypes.Structure):
    """gg_retriever_vtable (include/gryphgen/sys/retriever.h), version 2 (the add slot is
    left NULL: Python retrievers do not take documents yet)."""
    _fields_ = [("version", ctypes.c_uint32), ("search", RETRIEVER_SEARCH_FN),
                ("feedback", RETRIEVER_FEEDBACK_FN), ("destroy", DESTROY_FN),
                ("name", ctypes.c_char_p), ("add", RETRIEVER_ADD_FN)]


class DeliverOptions(ctypes.Structure):
    """gg_deliver_options (include/gryphgen/workspace.h), version 1."""
    _fields_ = [("version", ctypes.c_uint32), ("branch", ctypes.c_char_p),
                ("author_name", ctypes.c_char_p), ("author_email", ctypes.c_char_p),
                ("committer_name", ctypes.c_char_p), ("committer_email", ctypes.c_char_p)]


_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)  # gg_x_t ** (in/out handle pointers)
_s = ctypes.c_char_p
_i = ctypes.c_int
_u = ctypes.c_uint

# name: (restype, argtypes). Strings the library hands over (char ** outputs) are c_void_p so
# they can be passed back to gg_free(); borrowed static strings are c_char_p.
PROTOTYPES = {
    "gg_strerror": (_s, [_i]),
    "gg_error_last": (_s, []),
    "gg_error_last_code": (_i, []),
    "gg_error_set": (_i, [_i, _s]),
    "gg_error_clear": (None, []),
    "gg_strdup": (_p, [_s]),
    "gg_free": (None, [_p]),
    "gg_version": (_u, []),
    "gg_version_string": (_s, []),
    "gg_init": (_i, []),
    "gg_log_level_name": (_s, [_i]),
    "gg_log_level_parse": (_i, [_s]),
    "gg_executor_options_init": (_i, [ctypes.POINTER(ExecutorOptions), _u]),
    "gg_executor_new": (_i, [_pp, ctypes.POINTER(ExecutorOptions)]),
    "gg_executor_new_custom": (_i, [_pp, ctypes.POINTER(ExecutorVtable), _p]),
    "gg_executor_run": (_i, [_p, _s, c_char_pp]),
    "gg_executor_interrupt": (_i, [_p]),
    "gg_executor_backend": (_s, [_p]),
    "gg_executor_probe": (_i, [c_char_pp]),
    "gg_executor_destroy": (None, [_pp]),
    "gg_generator_options_init": (_i, [ctypes.POINTER(GeneratorOptions), _u]),
    "gg_generator_new": (_i, [_pp, ctypes.POINTER(GeneratorOptions)]),
    "gg_generator_new_custom": (_i, [_pp, ctypes.POINTER(GeneratorVtable), _p]),
    "gg_generator_generate": (_i, [_p, _s, c_char_pp]),
    "gg_generator_name": (_s, [_p]),
    "gg_generator_destroy": (None, [_pp]),
    "gg_retriever_options_init": (_i, [ctypes.POINTER(RetrieverOptions), _u]),
    "gg_retriever_new": (_i, [_pp, ctypes.POINTER(RetrieverOptions)]),
    "gg_retriever_new_custom": (_i, [_pp, ctypes.POINTER(RetrieverVtable), _p]),
    "gg_retriever_search": (_i, [_p, _s, c_char_pp]),
    "gg_retriever_feedback": (_i, [_p, _s]),
    "gg_retriever_name": (_s, [_p]),
    "gg_retriever_destroy": (None, [_pp]),
    "gg_retriever_add": (_i, [_p, _s, c_char_pp]),
    "gg_orchestrator_options_init": (_i, [ctypes.POINTER(OrchestratorOptions), _u]),
    "gg_orchestrator_new": (_i, [_pp, ctypes.POINTER(OrchestratorOptions)]),
    "gg_orchestrator_destroy": (None, [_pp]),
    "gg_orchestrator_submit": (_i, [_p, _s, c_char_pp]),
    "gg_orchestrator_wait": (_i, [_p, _s, _i, c_char_pp]),
    "gg_orchestrator_result": (_i, [_p, _s, c_char_pp]),
    "gg_orchestrator_cancel": (_i, [_p, _s]),
    "gg_orchestrator_drain": (_i, [_p, _i]),
    "gg_orchestrator_stats": (_i, [_p, c_char_pp]),
    "gg_orchestrator_metrics": (_i, [_p, c_char_pp]),
    "gg_orchestrator_tasks": (_i, [_p, _s, c_char_pp]),
    "gg_orchestrator_connect": (_i, [_p, _s, _pp]),
    "gg_endpoint_is_loopback": (_i, [_s]),
    "gg_security_check": (_i, [_s, _i, _i]),
    "gg_curve_keygen": (_i, [_s, ctypes.c_char_p]),
    "gg_worker_options_init": (_i, [ctypes.POINTER(WorkerOptions), _u]),
    "gg_worker_new": (_i, [_pp, ctypes.POINTER(WorkerOptions)]),
    "gg_worker_run": (_i, [_p]),
    "gg_worker_stop": (None, [_p]),
    "gg_worker_stats": (_i, [_p, c_char_pp]),
    "gg_worker_destroy": (None, [_pp]),
    "gg_client_options_init": (_i, [ctypes.POINTER(ClientOptions), _u]),
    "gg_client_new": (_i, [_pp, ctypes.POINTER(ClientOptions)]),
    "gg_client_submit": (_i, [_p, _s, c_char_pp]),
    "gg_client_submit_batch": (_i, [_p, _s, c_char_pp]),
    "gg_client_wait": (_i, [_p, _s, _i, c_char_pp]),
    "gg_client_status": (_i, [_p, _s, c_char_pp]),
    "gg_client_demand": (_i, [_p, _s, c_char_pp]),
    "gg_client_cancel": (_i, [_p, _s]),
    "gg_client_watch": (_i, [_p, WATCH_FN, _p, _i]),
    "gg_client_watch_filtered": (_i, [_p, _s, WATCH_FN, _p, _i]),
    "gg_client_get_stats": (_i, [_p, ctypes.POINTER(ClientStats)]),
    "gg_client_destroy": (None, [_pp]),
    "gg_workspace_deliver": (_i, [_s, _s, ctypes.POINTER(DeliverOptions), c_char_pp]),
    "gg_workspace_format_patch": (_i, [_s, _s, c_char_pp]),
    "gg_transport_destroy": (None, [_pp]),
}

# Exported functions deliberately not bound, with the reason (tests/test_symbols.py checks
# that every gg_ symbol of lib/libgryphgen.map is in PROTOTYPES or here).
UNBOUND = {
    "gg_malloc": "the binding hands strings to the library with gg_strdup(); raw, "
                 "uninitialised buffers have no use in Python",
    "gg_transport_new_custom": "a transport written in Python would run on the scheduler's "
                               "and the workers' C threads for every message (the GIL on "
                               "the hot path, callbacks during interpreter exit); Python "
                               "hands over a transport made in C instead (gryphgen.Transport)",
}

for _name, (_res, _args) in PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

_version = lib.gg_version()
if _version // 10000 != ABI_MAJOR:
    raise ImportError("gryphgen: %s reports version %s (%d); this binding needs major "
                      "version %d" % (getattr(lib, "_name", SONAME),
                                      lib.gg_version_string().decode(), _version, ABI_MAJOR))


def fn(name):
    """The declared function name; only names in PROTOTYPES are reachable."""
    if name not in PROTOTYPES:
        raise AttributeError("gryphgen: %s is not bound" % name)
    return getattr(lib, name)


def encode(s, what="argument"):
    """str -> UTF-8 bytes for a const char * parameter; None stays None."""
    if s is None or isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("utf-8")
    raise TypeError("gryphgen: %s must be str, got %s" % (what, type(s).__name__))


def decode(b):
    """bytes from the library -> str; None stays None."""
    return None if b is None else b.decode("utf-8", "replace")


def last_error_message(rc):
    """gg_error_last() of this thread, or strerror(rc) when it is empty. Must be called right
    after the failing call, before any other library call on this thread."""
    msg = decode(lib.gg_error_last())
    return msg if msg else decode(lib.gg_strerror(rc))


def check(rc, context=None):
    """Raises the exception for a negative rc with the library's message; returns rc."""
    if rc < 0:
        msg = last_error_message(rc)
        if context:
            msg = "%s: %s" % (context, msg)
        raise errors.make_error(rc, msg)
    return rc


def take_string(ptr):
    """Reads a library-owned char * (a c_void_p value or int) and frees it with gg_free()."""
    if isinstance(ptr, ctypes.c_void_p):
        ptr = ptr.value
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lib.gg_free(ptr)


def give_string(s):
    """Copies s into gg_strdup() memory that the library will free with gg_free(); returns
    the address (int) or raises MemoryError."""
    ptr = lib.gg_strdup(encode(s))
    if not ptr:
        raise MemoryError("gg_strdup failed")
    return ptr
