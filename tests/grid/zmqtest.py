"""zmqtest.py - a plain ZeroMQ client for the grid's Python tests, with no pyzmq: libzmq
loaded once through ctypes with the prototypes used here, and one request and its reply on a
fresh socket (REQ or DEALER, one frame or several, CURVE keys when given), the reply parsed
as JSON. The receive deadline only guards against a hang."""

import ctypes
import ctypes.util
import json

from gridtest import GUARD_S, skip

ZMQ_REQ, ZMQ_DEALER = 3, 5
ZMQ_SNDMORE = 2
ZMQ_LINGER, ZMQ_RCVTIMEO = 17, 27
ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVERKEY = 48, 49, 50
REPLY_MAX = 4 << 20  # the largest reply read; a longer one is cut there

_zmq = None


def libzmq():
    """libzmq with its prototypes set; ends the script as skipped when it cannot be loaded."""
    global _zmq
    if _zmq is not None:
        return _zmq
    try:
        z = ctypes.CDLL(ctypes.util.find_library("zmq") or "libzmq.so.5", use_errno=True)
    except OSError:
        skip("libzmq is not loadable")
    vp, c_int, size = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    z.zmq_ctx_new.restype = vp
    z.zmq_ctx_term.argtypes = [vp]
    z.zmq_socket.restype = vp
    z.zmq_socket.argtypes = [vp, c_int]
    z.zmq_connect.argtypes = [vp, ctypes.c_char_p]
    z.zmq_setsockopt.argtypes = [vp, c_int, vp, size]
    z.zmq_send.argtypes = [vp, vp, size, c_int]
    z.zmq_recv.argtypes = [vp, vp, size, c_int]
    z.zmq_close.argtypes = [vp]
    _zmq = z
    return z


def _setopt_int(z, s, opt, v):
    x = ctypes.c_int(v)
    z.zmq_setsockopt(s, opt, ctypes.byref(x), ctypes.sizeof(x))


def request(endpoint, frames, kind=ZMQ_REQ, curve=None, wait_s=GUARD_S):
    """Sends frames (bytes, or a list of bytes: one multi-frame message) on a fresh socket of
    kind (ZMQ_REQ or ZMQ_DEALER) connected to endpoint, with curve = (server public key,
    public key, secret key) in Z85 when given, and returns the first reply parsed; None when
    none came within wait_s, {"unparsable": bytes} when it was not JSON."""
    z = libzmq()
    ctx = z.zmq_ctx_new()
    s = z.zmq_socket(ctx, kind)
    _setopt_int(z, s, ZMQ_LINGER, 0)
    _setopt_int(z, s, ZMQ_RCVTIMEO, int(wait_s * 1000))
    if curve:
        for opt, key in zip((ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY),
                            curve):
            k = key.encode()
            z.zmq_setsockopt(s, opt, k, len(k))
    z.zmq_connect(s, endpoint.encode())
    if isinstance(frames, bytes):
        frames = [frames]
    for i, f in enumerate(frames):
        z.zmq_send(s, f, len(f), ZMQ_SNDMORE if i < len(frames) - 1 else 0)
    buf = ctypes.create_string_buffer(REPLY_MAX)
    n = z.zmq_recv(s, buf, len(buf), 0)
    z.zmq_close(s)
    z.zmq_ctx_term(ctx)
    if n < 0:
        return None
    raw = buf.raw[:min(n, REPLY_MAX)]
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return {"unparsable": raw}


def ask(endpoint, obj, **kw):
    """request() with obj sent as one JSON frame."""
    return request(endpoint, json.dumps(obj).encode(), **kw)
