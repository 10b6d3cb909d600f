"""testports.py - loopback ports for every Python script that starts a server on a port of
its own choosing: the command's test scripts (tests/cli/clitest.py re-exports free_port), the
Python binding's tests (bindings/python/tests/conftest.py) and bench/failover.py. The same
rules as tests/common/testnet.h for the C tests, and the same lock files, so a C test and a
Python script running at the same time never get the same port:

- the port comes from below the kernel's ephemeral range, where every outgoing connection
  takes its source port and every bind to port 0 lands, so no other program's connection or
  server can take it between the pick and the bind of the server the test starts;
- it is reserved by an advisory lock on a file named after it in $TMPDIR/gg-test-ports, held
  until the process exits, so no other test script picks it meanwhile;
- it is checked by binding it."""

import errno
import fcntl
import os
import random
import socket
import tempfile


def _port_range():
    """Where test ports come from: [low, high) below the ephemeral range (or above it when
    there is no room below); None when neither has room."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 20000 >= 1000:
        return 20000, low
    if 65535 - high >= 1000:
        return high + 1, 65536
    return None


_port_locks = []
_PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "gg-test-ports")


def _reserve(port):
    """Holds an advisory lock named after port for the rest of this process, so test scripts
    running at the same time never pick the same one; False when another holds it."""
    try:
        os.makedirs(_PORT_LOCK_DIR, exist_ok=True)
        fd = os.open(os.path.join(_PORT_LOCK_DIR, str(port)), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return True   # no lock directory: the bind check below still guards
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        return True
    _port_locks.append(fd)
    return True


def _binds(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on and that no other test running now was
    given (see the module's text); each call gives another one."""
    span = _port_range()
    for _ in range(200 if span else 0):
        port = random.randrange(span[0], span[1])
        if _reserve(port) and _binds(port):
            return port
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
