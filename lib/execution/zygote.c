/*
 * zygote.c - the pool of zygotes and the host side of their protocol. A zygote is
 * `python -c <the script below>` started in a sandbox made with the zygote flag of
 * sandbox.c (all namespaces, PID included; it keeps root and its capabilities so it can build
 * each job's mounts, but drops its bounding set and sets no_new_privs). It preloads a few
 * standard modules, freezes its objects for the collector and listens on a SOCK_SEQPACKET
 * socket at descriptor 3: each job is one message carrying descriptors (the job's own stream
 * socket, stdin, stdout, stderr). Ahead of its jobs (before it reports ready, and after each
 * job handed on) it makes two "parked" jobs: PID 1 of a new PID namespace (unshare, start,
 * setns back) and the job's process, which makes its mount, IPC and UTS namespaces and /proc,
 * enters the network namespace the zygote gives it (one an ended job left clean, or a new
 * one), copies the pages a job's first steps write, and waits. PID 1 is the init program
 * (zinit.c, from a memfd at descriptor 5, started with posix_spawn; the zygote forks the
 * job's process as PID 2 and the host reads the job's status through a pidfd of it) or,
 * where that cannot be used, a fork of the zygote that forks the job's process and reports
 * its status ("S"). The zygote hands the host each parked process's socket ("K"); the host
 * gives a job straight to one (telling the zygote "F", upon which it makes the next), or,
 * when it holds none, to the zygote, which makes one then. With cgroups the host also hands
 * the zygote groups made ahead on a second socket (descriptor 4): each parked process joins
 * one while no job waits, and writes its job's limits into it when the job comes. The parked
 * process hands a forked PID 1 the job's socket, reads the request JSON from the job socket,
 * makes its tmpfs, workspace, files and a user namespace of its own, replies "P" with a pidfd
 * of PID 1 (and with the init program one of itself) and when each step began, and runs the
 * job. A forked PID 1 kills whatever is left and sends "S" with the job's wait status, peak
 * RSS and when it reaped it; the host takes the job as ended on "S" (or when the socket
 * closes). The init program's job has ended when the init has (the kernel has then killed
 * what was left); the host reads the status from its pidfd of PID 2 and the peak memory from
 * the job's cgroup. Killing PID 1 (pidfd_send_signal) kills everything in the job's PID
 * namespace. Jobs run through ggi_spawn_run's I/O loop as an "external" start, so
 * timeouts, output caps and cancellation behave as on the direct path.
 *
 * Why one file of this length: the Python script the zygote runs and the host's side of its
 * message protocol ("K", "F", "P", "S", the groups' socket) are two halves of one protocol;
 * kept together, a change to one is read beside the other. Its functions are short steps.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/ggi.h"
#include "cgroup.h"
#include "zygote.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* The exit status of a process that has ended, read through a pidfd by any holder (Linux
 * 6.15: PIDFD_GET_INFO with PIDFD_INFO_EXIT); the layout of the kernel's struct pidfd_info. */
typedef struct zpidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
} zpidfd_info;
#define ZPIDFD_INFO_EXIT (1ULL << 3)
#define ZPIDFD_GET_INFO _IOWR(0xFF, 11, zpidfd_info)

/* The init program of a job's PID namespace (zinit.c), embedded by the build (length 0
 * where it has none for this architecture). */
extern const char ggi_zinit[];
extern const size_t ggi_zinit_len;

#define MAX_ZYGOTES 4
#define START_TIMEOUT_MS 15000
#define REPLY_TIMEOUT_MS 15000
#define MAX_CG_FDS 4
#define PARKED 2            /* _PARKED of the script */
/* Groups made ahead and not yet claimed by a job, per zygote: its parked job processes', two
 * spare (so the group of the next one is there before the zygote makes it) and those of jobs
 * being handed on. */
#define AHEAD_PER_ZYGOTE (PARKED + 4)
#define MAX_AHEAD (MAX_ZYGOTES * AHEAD_PER_ZYGOTE)
#define MAX_LIMIT_FDS 3
#define MAX_KEPT 4          /* job processes made ahead whose sockets the host holds */
/* A zygote no job used for this long is stopped (with its processes and groups made ahead)
 * when the next job comes. */
#define IDLE_MS 120000.0
#define MAX_ERR_MSG 2000

/* The zygote, in Python (3.9 or later: socket.send_fds, os.pidfd_open). */
static const char ZYGOTE_PY[] =
    "import os, sys, socket, struct, json, ctypes, signal, io, resource, gc, time, select\n"
    "_libc = ctypes.CDLL(None, use_errno=True)\n"
    "_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,\n"
    "                        ctypes.c_char_p)\n"
    "_libc.unshare.argtypes = (ctypes.c_int,)\n"
    "_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)\n"
    "_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)\n"
    "_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,\n"
    "                        ctypes.c_ulong)\n"
    "_libc.syscall.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_long)\n"
    "_libc.syscall.restype = ctypes.c_long\n"
    "_now = time.monotonic_ns\n"
    "# capset's header and data types, made once in the zygote (a job making them costs CPU)\n"
    "_CAP_HEADER, _CAP_DATA = ctypes.c_uint32 * 2, ctypes.c_uint32 * 6\n"
    "\n"
    "\n"
    "def _c(r, what):\n"
    "    if r != 0:\n"
    "        e = ctypes.get_errno()\n"
    "        raise OSError(e, '%s: %s' % (what, os.strerror(e)))\n"
    "\n"
    "\n"
    "def _recv_exact(s, n):\n"
    "    b = bytearray()\n"
    "    while len(b) < n:\n"
    "        c = s.recv(min(n - len(b), 1 << 20))\n"
    "        if not c:\n"
    "            raise EOFError('the request was cut short')\n"
    "        b += c\n"
    "    return bytes(b)\n"
    "\n"
    "\n"
    "_NEWNS, _NEWPID, _NEWIPC, _NEWUTS = 0x00020000, 0x20000000, 0x08000000, 0x04000000\n"
    "_NEWUSER, _SYS_KEYCTL, _KEYCTL_JOIN_SESSION = 0x10000000, 250, 1\n"
    "_NEWNET = 0x40000000\n"
    "# Modules without per-process state that jobs commonly import; never random, tempfile,\n"
    "# uuid or anything that seeds itself or starts threads at import time.\n"
    "_USERNS = sys.argv[1:2] == ['userns']  # the zygote runs in a user namespace of its own\n"
    "_PARKED = 2  # jobs' PID 1 and processes made ahead, waiting for their jobs\n"
    "# With cgroups, the host hands the zygote groups made ahead on descriptor 4 (\"C\", the\n"
    "# group's number, how many cgroup.procs files; then those and its limit files): each job's\n"
    "# process made ahead joins one (a job is only ever parked with a group of its own) and\n"
    "# limits it once its job's limits are known.\n"
    "_CGSOCK = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=4) \\\n"
    "    if sys.argv[2:3] == ['cg'] else None\n"
    "_STOCK = []  # groups received and not yet given to a job's process: (number, procs, limits)\n"
    "# With the host's init program (descriptor 5, zinit.c), a job's PID 1 is that program,\n"
    "# started with vfork and exec, and the job's process is PID 2, forked by the zygote: the\n"
    "# host reads the job's wait status from a pidfd of it. Without it, PID 1 is a fork of the\n"
    "# zygote (_init) that reports the status itself.\n"
    "_ZINIT = [sys.argv[3:4] == ['zinit']]  # (cleared when the init program cannot start)\n"
    "_NET_OFF = sys.argv[4:5] == ['no-net-reuse']  # every job's process makes its own\n"
    "_WARM = ('fcntl', 'typing', 'collections', 're', 'math', 'itertools', 'functools', 'heapq',\n"
    "         'bisect', 'string', 'copy', 'traceback', 'types')\n"
    "\n"
    "\n"
    "def _tmpfs(where, size):\n"
    "    _c(_libc.mount(b'tmpfs', where, b'tmpfs', 6, b'size=%d,mode=1777' % size),\n"
    "       'mount a tmpfs on ' + where.decode())\n"
    "\n"
    "\n"
    "def _lo_up():\n"
    "    # Loopback up in the job's empty network namespace (SIOCGIFFLAGS, SIOCSIFFLAGS with\n"
    "    # IFF_UP | IFF_RUNNING; a 40-byte struct ifreq).\n"
    "    import fcntl\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    try:\n"
    "        r = fcntl.ioctl(s, 0x8913, struct.pack('16sh22x', b'lo', 0))\n"
    "        flags = struct.unpack('16sh22x', r)[1]\n"
    "        fcntl.ioctl(s, 0x8914, struct.pack('16sh22x', b'lo', flags | 0x41))\n"
    "    finally:\n"
    "        s.close()\n"
    "\n"
    "\n"
    "def _ahead(net):\n"
    "    # What a job's process makes before any job is there: its own mount, IPC, UTS and\n"
    "    # network namespaces (loopback up; the one the zygote gave it, else a new one), its\n"
    "    # hostname and a /proc of its PID namespace.\n"
    "    if net is None:\n"
    "        _c(_libc.unshare(_NEWNS | _NEWIPC | _NEWUTS | _NEWNET), 'unshare')\n"
    "        _lo_up()\n"
    "    else:\n"
    "        _c(_libc.unshare(_NEWNS | _NEWIPC | _NEWUTS), 'unshare')\n"
    "        try:\n"
    "            _c(_libc.setns(net, _NEWNET), 'enter its network namespace')\n"
    "        finally:\n"
    "            os.close(net)\n"
    "    _c(_libc.sethostname(b'gg-sandbox', 10), 'sethostname')\n"
    "    _c(_libc.mount(b'proc', b'/proc', b'proc', 14, None), 'mount /proc')\n"
    "\n"
    "\n"
    "# Network namespaces for jobs. Making one and the kernel's tearing it down cost more than\n"
    "# the rest of a job's namespaces together, so a job's namespace is used again, for a later\n"
    "# job, when its job left nothing in it: the job and all it started are gone (its PID 1 has\n"
    "# ended), no packet ever crossed its loopback (so no connection, no TIME_WAIT, no counter\n"
    "# moved by traffic) and it holds no Unix socket (an abstract name kept bound by sockets\n"
    "# in flight). Jobs cannot change anything else in it: it belongs to the zygote's user\n"
    "# namespace, where a job has no capability. Never two running jobs share one.\n"
    "_NETS = []      # namespaces ready for a job's process: descriptors\n"
    "_NET_USED = []  # (namespace, pidfd of the PID 1 of the job that has it)\n"
    "_NET_KEEP = 4   # at most this many wait\n"
    "_OWN_NET = None\n"
    "\n"
    "\n"
    "def _net_new():\n"
    "    # A fresh network namespace with loopback up, made by the zygote, which returns to its\n"
    "    # own.\n"
    "    _c(_libc.unshare(_NEWNET), 'unshare a network namespace')\n"
    "    try:\n"
    "        _lo_up()\n"
    "        return os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)\n"
    "    finally:\n"
    "        _net_home()\n"
    "\n"
    "\n"
    "def _net_home():\n"
    "    # Back to the zygote's own network namespace; a zygote that cannot go back ends (the\n"
    "    # host starts another).\n"
    "    if _libc.setns(_OWN_NET, _NEWNET) != 0:\n"
    "        os._exit(3)\n"
    "\n"
    "\n"
    "def _net_clean(net):\n"
    "    # Whether the namespace is as it was made: loopback its only device, with no packet\n"
    "    # received or sent, and no Unix socket in it.\n"
    "    _c(_libc.setns(net, _NEWNET), 'setns')\n"
    "    try:\n"
    "        with open('/proc/self/net/dev', 'rb') as f:\n"
    "            dev = f.read().splitlines()[2:]\n"
    "        with open('/proc/self/net/unix', 'rb') as f:\n"
    "            unix = f.read().splitlines()[1:]\n"
    "    finally:\n"
    "        _net_home()\n"
    "    if len(dev) != 1 or unix:\n"
    "        return False\n"
    "    name, _, counts = dev[0].partition(b':')\n"
    "    v = counts.split()\n"
    "    return name.strip() == b'lo' and len(v) >= 10 and v[1] == b'0' and v[9] == b'0'\n"
    "\n"
    "\n"
    "def _net_take():\n"
    "    # A network namespace for the next job's process: one an ended job left clean, else a\n"
    "    # new one (None: the job's process makes its own).\n"
    "    if _OWN_NET is None:\n"
    "        return None\n"
    "    used = []\n"
    "    for net, pfd in _NET_USED:\n"
    "        if not select.select([pfd], [], [], 0)[0]:\n"
    "            used.append((net, pfd))  # its job (or what it started) still runs\n"
    "            continue\n"
    "        os.close(pfd)\n"
    "        try:\n"
    "            keep = len(_NETS) < _NET_KEEP and _net_clean(net)\n"
    "        except OSError:\n"
    "            keep = False\n"
    "        if keep:\n"
    "            _NETS.append(net)\n"
    "        else:\n"
    "            os.close(net)\n"
    "    _NET_USED[:] = used\n"
    "    if _NETS:\n"
    "        return _NETS.pop(0)\n"
    "    try:\n"
    "        return _net_new()\n"
    "    except OSError:\n"
    "        return None\n"
    "\n"
    "\n"
    "def _net_given(net, pid):\n"
    "    # The namespace went to a job whose PID 1 is pid: it may come back once that has ended.\n"
    "    if net is None:\n"
    "        return\n"
    "    try:\n"
    "        _NET_USED.append((net, os.pidfd_open(pid)))\n"
    "    except OSError:\n"
    "        os.close(net)\n"
    "\n"
    "\n"
    "def _net_close_all():\n"
    "    # In a child: the zygote's namespaces are not its own.\n"
    "    for net in _NETS:\n"
    "        os.close(net)\n"
    "    for net, pfd in _NET_USED:\n"
    "        os.close(net)\n"
    "        os.close(pfd)\n"
    "    if _OWN_NET is not None:\n"
    "        os.close(_OWN_NET)\n"
    "\n"
    "\n"
    "def _warm():\n"
    "    # The first steps of every job write to the same pages of the interpreter's memory,\n"
    "    # which the fork shares with the zygote: taking them ahead copies those pages now, while\n"
    "    # no job waits. (Run once in the zygote itself too, before it freezes its objects.)\n"
    "    for fd, mode in ((0, 'r'), (1, 'w'), (2, 'w')):\n"
    "        f = io.FileIO(fd, mode, closefd=False)\n"
    "        io.TextIOWrapper(io.BufferedReader(f) if mode == 'r' else io.BufferedWriter(f),\n"
    "                         encoding='utf-8', errors='strict').detach()\n"
    "    import types\n"
    "    m = types.ModuleType('__main__')\n"
    "    exec(compile('x = [str(i) for i in range(8)]', '<string>', 'exec'), m.__dict__)\n"
    "    json.loads('{\"a\": [1, \"b\", null]}')\n"
    "    del f, m\n"
    "\n"
    "\n"
    "def _setup(req):\n"
    "    _tmpfs(b'/tmp', req['tmpfs'])\n"
    "    if os.path.isdir('/dev/shm'):\n"
    "        _tmpfs(b'/dev/shm', min(req['tmpfs'], 64 << 20))\n"
    "    uid, gid, ws = req['uid'], req['gid'], req['ws']\n"
    "    os.makedirs(ws, 0o755)\n"
    "    os.chown(ws, uid, gid)\n"
    "    for path, content in req['files']:\n"
    "        cur = ws\n"
    "        for part in path.split('/')[:-1]:\n"
    "            if part in ('', '.'):\n"
    "                continue\n"
    "            cur += '/' + part\n"
    "            try:\n"
    "                os.mkdir(cur, 0o755)\n"
    "                os.chown(cur, uid, gid)\n"
    "            except FileExistsError:\n"
    "                pass\n"
    "        fd = os.open(ws + '/' + path,\n"
    "                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)\n"
    "        try:\n"
    "            mv = memoryview(content.encode('utf-8', 'surrogateescape'))\n"
    "            while mv:\n"
    "                mv = mv[os.write(fd, mv):]\n"
    "            os.fchown(fd, uid, gid)\n"
    "        finally:\n"
    "            os.close(fd)\n"
    "    _own_userns(uid, gid)\n"
    "\n"
    "\n"
    "def _own_userns(uid, gid):\n"
    "    # The zygote's user namespace is shared by its jobs, and with it the kernel's per-user\n"
    "    # state (the user and user-session keyrings): each job takes the sandbox's ids, then\n"
    "    # gets a user namespace of its own below (those ids mapped onto themselves, nothing\n"
    "    # else) and a new session keyring, so nothing one job stores there reaches the next.\n"
    "    # (Its mounts are made by then.) Where the zygote has no user namespace either (a root\n"
    "    # host without them) and the kernel refuses one, the new session keyring is all.\n"
    "    try:\n"
    "        os.setgroups([])\n"
    "    except PermissionError:\n"
    "        pass  # a user namespace made without root denies setgroups\n"
    "    os.setresgid(gid, gid, gid)\n"
    "    os.setresuid(uid, uid, uid)\n"
    "    _c(_libc.prctl(4, 1, 0, 0, 0), 'PR_SET_DUMPABLE')  # its own /proc/self/*_map\n"
    "    try:\n"
    "        _c(_libc.unshare(_NEWUSER), 'unshare a user namespace')\n"
    "    except OSError:\n"
    "        if _USERNS:\n"
    "            raise\n"
    "        return _new_session()  # a host without them: as its direct jobs, a keyring only\n"
    "    for name, text in (('uid_map', '%d %d 1\\n' % (uid, uid)), ('setgroups', 'deny'),\n"
    "                       ('gid_map', '%d %d 1\\n' % (gid, gid))):\n"
    "        fd = os.open('/proc/self/' + name, os.O_WRONLY | os.O_CLOEXEC)\n"
    "        try:\n"
    "            os.write(fd, text.encode())\n"
    "        finally:\n"
    "            os.close(fd)\n"
    "    _new_session()\n"
    "\n"
    "\n"
    "def _new_session():\n"
    "    if _libc.syscall(_SYS_KEYCTL, _KEYCTL_JOIN_SESSION, 0) < 0:\n"
    "        _c(-1, 'join a new session keyring')\n"
    "    for cap in range(64):  # a new user namespace starts with a full bounding set\n"
    "        if _libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "            break\n"
    "\n"
    "\n"
    "def _exit_code(e):\n"
    "    c = e.code\n"
    "    if c is None:\n"
    "        return 0\n"
    "    if isinstance(c, int):\n"
    "        return c & 0xff\n"
    "    try:\n"
    "        sys.stderr.write(str(c) + '\\n')\n"
    "    except BaseException:\n"
    "        pass\n"
    "    return 1\n"
    "\n"
    "\n"
    "def _run(stdio, req):\n"
    "    os.setsid()\n"
    "    for i, f in enumerate(stdio):\n"
    "        os.dup2(f, i)\n"
    "    os.closerange(3, 1 << 20)\n"
    "    for r, soft, hard in req['rlimits']:\n"
    "        resource.setrlimit(r, (soft, hard))\n"
    "    os.chdir(req['ws'])\n"
    "    try:\n"
    "        os.setgroups([])\n"
    "    except PermissionError:\n"
    "        pass  # a user namespace made without root denies setgroups\n"
    "    os.setresgid(req['gid'], req['gid'], req['gid'])\n"
    "    os.setresuid(req['uid'], req['uid'], req['uid'])\n"
    "    _libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL\n"
    "    _c(_libc.capset(_CAP_HEADER(0x20080522, 0), _CAP_DATA()),\n"
    "       'drop its capabilities')\n"
    "    os.environ.clear()\n"
    "    for k, v in req['env']:\n"
    "        os.environ[k] = v\n"
    "    sys.argv = ['-c'] + req['args']\n"
    "    enc_in, enc_out = sys.stdin.encoding, sys.stdout.encoding\n"
    "    sys.stdin = sys.__stdin__ = io.TextIOWrapper(\n"
    "        io.BufferedReader(io.FileIO(0, 'r', closefd=False)), encoding=enc_in,\n"
    "        errors=sys.stdin.errors)\n"
    "    sys.stdout = sys.__stdout__ = io.TextIOWrapper(\n"
    "        io.BufferedWriter(io.FileIO(1, 'w', closefd=False)), encoding=enc_out,\n"
    "        errors=sys.stdout.errors)\n"
    "    sys.stderr = sys.__stderr__ = io.TextIOWrapper(\n"
    "        io.BufferedWriter(io.FileIO(2, 'w', closefd=False)), encoding=enc_out,\n"
    "        errors='backslashreplace', line_buffering=True)\n"
    "    import builtins, types\n"
    "    main = types.ModuleType('__main__')\n"
    "    main.__builtins__ = builtins\n"
    "    sys.modules['__main__'] = main\n"
    "    code = req['code']\n"
    "    del req, stdio\n"
    "    rc = 0\n"
    "    try:\n"
    "        exec(compile(code, '<string>', 'exec'), main.__dict__)\n"
    "    except SystemExit as e:\n"
    "        rc = _exit_code(e)\n"
    "    except BaseException:\n"
    "        t, v, tb = sys.exc_info()\n"
    "        v.__traceback__ = tb.tb_next  # without this function's own frame\n"
    "        sys.excepthook(t, v, tb.tb_next)\n"
    "        del t, v, tb\n"
    "        rc = 1\n"
    "    try:\n"
    "        if 'threading' in sys.modules:\n"
    "            sys.modules['threading']._shutdown()\n"
    "    except SystemExit as e:\n"
    "        rc = _exit_code(e)\n"
    "    except BaseException:\n"
    "        pass\n"
    "    import atexit\n"
    "    atexit._run_exitfuncs()\n"
    "    for s in (sys.stdout, sys.stderr):\n"
    "        try:\n"
    "            s.flush()\n"
    "        except BaseException:\n"
    "            rc = 120\n"
    "    os._exit(rc)\n"
    "\n"
    "\n"
    "def _fail(sock, e):\n"
    "    m = ('%s: %s' % (type(e).__name__, e)).encode('utf-8', 'replace')[:2000]\n"
    "    sock.sendall(b'E' + struct.pack('<I', len(m)) + m)\n"
    "\n"
    "\n"
    "def _cg_recv(block):\n"
    "    # Moves the groups the host sent into the stock (blocking: up to the end of its first\n"
    "    # supply, \".\").\n"
    "    while _CGSOCK is not None:\n"
    "        try:  # (socket.recv_fds ignores its flags before Python 3.12)\n"
    "            msg, anc, _f, _a = _CGSOCK.recvmsg(16, socket.CMSG_LEN(8 * 4),\n"
    "                                               0 if block else socket.MSG_DONTWAIT)\n"
    "        except (BlockingIOError, InterruptedError):\n"
    "            break\n"
    "        fds = []\n"
    "        for lvl, typ, data in anc:\n"
    "            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:\n"
    "                fds += struct.unpack('%di' % (len(data) // 4), data[:len(data) // 4 * 4])\n"
    "        if not msg:\n"
    "            break\n"
    "        if len(msg) == 10 and msg[:1] == b'C' and msg[9] <= len(fds):\n"
    "            _STOCK.append((struct.unpack('<q', msg[1:9])[0], fds[:msg[9]], fds[msg[9]:]))\n"
    "        else:\n"
    "            for f in fds:\n"
    "                os.close(f)\n"
    "            if msg == b'.':\n"
    "                break  # the end of the host's first supply\n"
    "\n"
    "\n"
    "def _cg_take():\n"
    "    # A group made ahead (from the stock, else from the host's socket), or None.\n"
    "    _cg_recv(False)\n"
    "    return _STOCK.pop(0) if _STOCK else None\n"
    "\n"
    "\n"
    "def _cg_close(cg):\n"
    "    for f in (cg[1] + cg[2]) if cg else ():\n"
    "        try:\n"
    "            os.close(f)\n"
    "        except OSError:\n"
    "            pass\n"
    "\n"
    "\n"
    "def _job(park, to_init, times, warm, cg, net):\n"
    "    # The job's process (PID 2), made ahead: builds what it can of its sandbox, waits for\n"
    "    # its job's descriptors (from the zygote), hands PID 1 the job's socket, joins the job's\n"
    "    # cgroup, finishes its sandbox, hands the host a pidfd of PID 1 and when each step began\n"
    "    # (the host's stage timings), runs. A failure made ahead is reported when the job is\n"
    "    # there.\n"
    "    times.append(_now())\n"
    "    err = None\n"
    "    try:\n"
    "        _ahead(net)\n"
    "        if cg:\n"
    "            for f in cg[1]:  # joined now: moving a process between groups is slow\n"
    "                os.write(f, b'0')\n"
    "        if warm:\n"
    "            _warm()\n"
    "    except BaseException as e:\n"
    "        err = e\n"
    "    times.append(_now())\n"
    "    try:\n"
    "        msg, fds, _f, _a = socket.recv_fds(park, 16, 16)\n"
    "    except BaseException:\n"
    "        os._exit(0)\n"
    "    if len(msg) != 9 or len(fds) < 4:\n"
    "        os._exit(0)  # the zygote gave up on it\n"
    "    park.close()\n"
    "    times += [struct.unpack('<q', msg[1:])[0], _now()]\n"
    "    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fds[0])\n"
    "    try:\n"
    "        if to_init is not None:\n"
    "            socket.send_fds(to_init, [b'J'], [fds[0]])\n"
    "            to_init.close()\n"
    "        if err:\n"
    "            raise err\n"
    "        for f in fds[4:]:\n"
    "            os.close(f)\n"
    "        n = struct.unpack('<I', _recv_exact(sock, 4))[0]\n"
    "        req = json.loads(_recv_exact(sock, n).decode('utf-8', 'surrogateescape'))\n"
    "        times.append(_now())\n"
    "        if req['cgroup'] and not cg:\n"
    "            raise OSError('no cgroup was made for the job')\n"
    "        if cg:\n"
    "            lim = req['cglimits']\n"
    "            if len(lim) != len(cg[2]):\n"
    "                raise OSError('the cgroup has %d limit files, %d limits came' %\n"
    "                              (len(cg[2]), len(lim)))\n"
    "            try:\n"
    "                for f, v in zip(cg[2], lim):\n"
    "                    os.write(f, v.encode())\n"
    "            except OSError:\n"
    "                # (A memory limit below what this process already uses is refused: the\n"
    "                # direct way runs the job, in a group made for it.)\n"
    "                sock.sendall(b'N' + struct.pack('<q', cg[0]))\n"
    "                os._exit(1)\n"
    "            _cg_close(cg)\n"
    "        times.append(cg[0] if cg else 0)\n"
    "        _setup(req)\n"
    "        pidfds = [os.pidfd_open(1)] + ([os.pidfd_open(os.getpid())] if to_init is None\n"
    "                                       else [])\n"
    "        times.insert(7, _now())\n"
    "        socket.send_fds(sock, [b'P' + struct.pack('<9q', *times)], pidfds)\n"
    "        for f in pidfds:\n"
    "            os.close(f)\n"
    "    except BaseException as e:\n"
    "        _fail(sock, e)\n"
    "        os._exit(1)\n"
    "    _run(fds[1:4], req)\n"
    "\n"
    "\n"
    "def _init(park, times, warm, cg, net):\n"
    "    # PID 1 of a job's own PID namespace, made ahead. It does as little as it can (every\n"
    "    # page it writes is copied): forks the job's process (which gets its job straight from\n"
    "    # the zygote and hands PID 1 the job's socket), reaps every process of the namespace and\n"
    "    # reports the job's end. Killing it kills them all. It stays out of the job's cgroup:\n"
    "    # the host may remove that as soon as the report is in.\n"
    "    times.append(_now())\n"
    "    signal.signal(signal.SIGCHLD, signal.SIG_DFL)\n"
    "    mine, its = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
    "    j = os.fork()\n"
    "    if j == 0:\n"
    "        try:\n"
    "            mine.close()\n"
    "            _job(park, its, times, warm, cg, net)\n"
    "        finally:\n"
    "            os._exit(127)\n"
    "    its.close()\n"
    "    park.close()\n"
    "    if net is not None:\n"
    "        os.close(net)  # (the job's process has it)\n"
    "    _cg_close(cg)  # (the job's process has them)\n"
    "    try:\n"
    "        msg, fds, _f, _a = socket.recv_fds(mine, 1, 1)\n"
    "    except BaseException:\n"
    "        os._exit(0)\n"
    "    if not fds:\n"
    "        os._exit(0)  # the job's process ended without a job: the namespace goes with it\n"
    "    mine.close()\n"
    "    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fds[0])\n"
    "    while True:\n"
    "        try:\n"
    "            pid, status, ru = os.wait4(-1, 0)\n"
    "        except InterruptedError:\n"
    "            continue\n"
    "        except ChildProcessError:\n"
    "            os._exit(125)\n"
    "        if pid == j:\n"
    "            # Whatever the job left behind dies before the host hears of its end, so\n"
    "            # nothing of it outlives the job (its PID namespace goes with this process).\n"
    "            # Every process left in the namespace descends from PID 1: with no child left,\n"
    "            # there is none.\n"
    "            try:\n"
    "                os.waitpid(-1, os.WNOHANG)\n"
    "                os.kill(-1, signal.SIGKILL)\n"
    "            except OSError:\n"
    "                pass\n"
    "            try:\n"
    "                sock.sendall(b'S' + struct.pack('<iqq', status, ru.ru_maxrss, _now()))\n"
    "            except OSError:\n"
    "                pass\n"
    "            os._exit(0)\n"
    "\n"
    "\n"
    "def _spawn_init():\n"
    "    # PID 1 of the PID namespace just unshared: the init program, its descriptor 3 the\n"
    "    # read end of a pipe (the zygote writes a byte once PID 2 is there). Returns (read\n"
    "    # end, write end, its pid); None, and PID 1 is a fork of the zygote from now on, when\n"
    "    # it cannot be started (a host that forbids executing an in-memory file).\n"
    "    go = os.pipe()\n"
    "    try:\n"
    "        return go + (os.posix_spawn('/proc/self/fd/5', ['gg-zinit'], {},\n"
    "                                    file_actions=[(os.POSIX_SPAWN_DUP2, go[0], 3)]),)\n"
    "    except OSError:\n"
    "        os.close(go[0])\n"
    "        os.close(go[1])\n"
    "        _ZINIT[0] = False\n"
    "        return None\n"
    "\n"
    "\n"
    "def _park(own_pidns, ctl, parked, warm, cg):\n"
    "    # Makes a job's PID 1 and process ahead of their job: the zygote unshares a PID\n"
    "    # namespace, starts PID 1 in it (the host's init program, or a fork of itself that\n"
    "    # forks the job's process) and, with the init program, forks the job's process into\n"
    "    # it as PID 2, then returns to its own namespace. The job's process gets a network\n"
    "    # namespace from the zygote's (_net_take). Returns the zygote's end of the socket the\n"
    "    # job's process waits on.\n"
    "    times = [_now()]\n"
    "    net = _net_take()\n"
    "    mine, its = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
    "    pid = init = -1\n"
    "    go = None\n"
    "    try:\n"
    "        _c(_libc.unshare(_NEWPID), 'unshare')\n"
    "        try:\n"
    "            if _ZINIT[0]:\n"
    "                go = _spawn_init()\n"
    "            if go:\n"
    "                init = go[2]\n"
    "                times.append(_now())\n"
    "            pid = os.fork()\n"
    "        finally:\n"
    "            if pid != 0:\n"
    "                _c(_libc.setns(own_pidns, _NEWPID), 'setns')\n"
    "    except OSError:\n"
    "        if pid > 0:\n"
    "            os._exit(3)  # cannot return to its own namespace: the host restarts it\n"
    "        for f in go[:2] if go else ():\n"
    "            os.close(f)  # (an init started ends: no byte comes)\n"
    "        if net is not None:\n"
    "            os.close(net)\n"
    "        mine.close()\n"
    "        its.close()\n"
    "        raise\n"
    "    if pid == 0:\n"
    "        try:\n"
    "            for s in [ctl, mine] + parked + ([_CGSOCK] if _CGSOCK else []):\n"
    "                s.close()\n"
    "            for other in _STOCK:\n"
    "                _cg_close(other)\n"
    "            os.close(own_pidns)\n"
    "            _net_close_all()\n"
    "            if go:\n"
    "                os.close(go[0])\n"
    "                os.close(go[1])\n"
    "                _job(its, None, times, warm, cg, net)\n"
    "            else:\n"
    "                _init(its, times, warm, cg, net)\n"
    "        finally:\n"
    "            os._exit(127)\n"
    "    if go:\n"
    "        os.write(go[1], b'.')  # PID 2 is there: the init watches it\n"
    "        os.close(go[0])\n"
    "        os.close(go[1])\n"
    "    _net_given(net, init if go else pid)\n"
    "    its.close()\n"
    "    return mine\n"
    "\n"
    "\n"
    "def _main():\n"
    "    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=3)\n"
    "    signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
    "    _c(_libc.prctl(36, 1, 0, 0, 0), 'PR_SET_CHILD_SUBREAPER')\n"
    "    for cap in range(64):\n"
    "        if _libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "            break\n"
    "    _c(_libc.prctl(38, 1, 0, 0, 0), 'PR_SET_NO_NEW_PRIVS')\n"
    "    own_pidns = os.open('/proc/self/ns/pid', os.O_RDONLY | os.O_CLOEXEC)\n"
    "    global _OWN_NET\n"
    "    if not _NET_OFF:\n"
    "        _OWN_NET = os.open('/proc/self/ns/net', os.O_RDONLY | os.O_CLOEXEC)\n"
    "    for m in _WARM:\n"
    "        try:\n"
    "            __import__(m)\n"
    "        except ImportError:\n"
    "            pass\n"
    "    # What every job's first steps set up lazily in the interpreter (the compiler's and\n"
    "    # the codecs' state, the interned strings they add, ctypes' array types) is set up\n"
    "    # once here, before the freeze, instead of in each job: a first compile() in a process\n"
    "    # forked from the zygote costs some 1 ms of CPU, a later one a tenth of that.\n"
    "    _warm()\n"
    "    gc.collect()\n"
    "    gc.freeze()  # jobs' collections skip the zygote's objects: fewer pages copied\n"
    "    parked = []\n"
    "    _cg_recv(True)\n"
    "    _fill(parked, own_pidns, ctl)\n"
    "    ctl.send(b'R')\n"
    "    out = _hand(parked, ctl, 0)\n"
    "    while True:\n"
    "        try:\n"
    "            msg, fds, _f, _a = socket.recv_fds(ctl, 16, 16)\n"
    "        except InterruptedError:\n"
    "            continue\n"
    "        got = _now()\n"
    "        if not msg:\n"
    "            os._exit(0)\n"
    "        if msg[:1] == b'F':\n"
    "            # The host handed a job straight to a process it was given: make the next.\n"
    "            out = max(out - 1, 0)\n"
    "            _fill(parked, own_pidns, ctl, _PARKED - out)\n"
    "            out = _hand(parked, ctl, out)\n"
    "            continue\n"
    "        # A job goes to a job process made ahead (one made now when none is left or they\n"
    "        # died); a job that none takes sees its socket close, and the host runs it directly.\n"
    "        for _attempt in range(_PARKED + 1):\n"
    "            if not parked:\n"
    "                _fill(parked, own_pidns, ctl, 1, False)\n"
    "            if not parked:\n"
    "                break\n"
    "            p = parked.pop(0)\n"
    "            try:\n"
    "                socket.send_fds(p, [b'J' + struct.pack('<q', got)], fds)\n"
    "                p.close()\n"
    "                break\n"
    "            except OSError:\n"
    "                p.close()\n"
    "        for f in fds:\n"
    "            os.close(f)\n"
    "        # The host says whether a core is free for making the next ones now (fewer of its\n"
    "        # jobs run than it has cores); else they are made when a job needs them, so that\n"
    "        # making them ahead never takes a core from a running job.\n"
    "        if msg[1:2] == b'1':\n"
    "            _fill(parked, own_pidns, ctl, _PARKED - out)\n"
    "        out = _hand(parked, ctl, out)\n"
    "\n"
    "\n"
    "def _hand(parked, ctl, out):\n"
    "    # Gives the host the sockets of the job processes made ahead, so it hands them their\n"
    "    # jobs itself (\"K\" and the socket; it says \"F\" when it took one); returns how many\n"
    "    # it holds.\n"
    "    while parked:\n"
    "        p = parked.pop(0)\n"
    "        try:\n"
    "            socket.send_fds(ctl, [b'K'], [p.fileno()])\n"
    "            out += 1\n"
    "        except OSError:\n"
    "            pass\n"
    "        p.close()\n"
    "    return out\n"
    "\n"
    "\n"
    "def _fill(parked, own_pidns, ctl, n=_PARKED, warm=True):\n"
    "    while len(parked) < n:\n"
    "        cg = _cg_take()\n"
    "        if _CGSOCK is not None and not cg:\n"
    "            return  # none left: the host sends one with each job\n"
    "        try:\n"
    "            parked.append(_park(own_pidns, ctl, parked, warm, cg))\n"
    "        except OSError:\n"
    "            return\n"
    "        finally:\n"
    "            _cg_close(cg)\n"
    "\n"
    "\n"
    "_main()\n";

typedef struct zygote {
    char *key;        /* interpreter, NUL, environment entries joined by NUL */
    size_t key_len;
    pid_t pid;
    int ctl;          /* our end of the control socket */
    int cgs;          /* our end of the socket that hands it cgroups made ahead, or -1 */
    unsigned long serial; /* which zygote (owner of its groups made ahead) */
    unsigned long used;
    double last;          /* when a job last used it (ggi_now_ms) */
    int inflight;         /* its jobs running now */
    int kept[MAX_KEPT];   /* sockets of its job processes made ahead, oldest first */
    int nkept;
    int zinit;            /* its jobs' PID 1 is the init program; the host reads their status */
} zygote;

/* A cgroup made ahead and handed to a zygote, until a job claims it. */
typedef struct ahead_cg {
    ggi_cgroup *cg;
    unsigned long owner; /* the zygote's serial */
} ahead_cg;

struct ggi_zygote_pool {
    pthread_mutex_t lock;
    zygote z[MAX_ZYGOTES];
    unsigned long tick;
    int starts;
    int broken;       /* a zygote failed to build a job's sandbox: use the direct path */
    int active;       /* jobs running through the pool (atomic) */
    int cores;        /* cores this process may run on */
    unsigned long serials;
    ahead_cg ahead[MAX_AHEAD];
};

/* The cores this process may run on (its affinity mask), at least 1. */
static int usable_cores(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (n <= 0)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

int ggi_zygote_pool_new(ggi_zygote_pool **out)
{
    ggi_zygote_pool *p = calloc(1, sizeof *p);
    if (!p || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < MAX_ZYGOTES; i++)
        p->z[i].ctl = p->z[i].cgs = -1;
    p->cores = usable_cores();
    *out = p;
    return GG_OK;
}

/* Removes the groups made ahead for zygote serial that no job claimed (the lock is held; its
 * processes are gone or going: the removal kills what is left). */
static void drop_ahead(ggi_zygote_pool *p, unsigned long serial)
{
    for (int i = 0; i < MAX_AHEAD; i++) {
        if (p->ahead[i].cg && p->ahead[i].owner == serial) {
            ggi_cgroup_destroy(&p->ahead[i].cg);
            p->ahead[i].owner = 0;
        }
    }
}

/* Makes a group (no limits yet) and hands it to zygote z over fd: "C", its number and how
 * many of the descriptors are cgroup.procs files, then those and its limit files. At most
 * AHEAD_PER_ZYGOTE wait per zygote. The lock is held. */
static int supply_cgroup(ggi_zygote_pool *p, unsigned long serial, int fd)
{
    int slot = -1, mine = 0;
    for (int i = 0; i < MAX_AHEAD; i++) {
        if (!p->ahead[i].cg && slot < 0)
            slot = i;
        mine += p->ahead[i].cg && p->ahead[i].owner == serial;
    }
    if (slot < 0 || mine >= AHEAD_PER_ZYGOTE)
        return GG_OK;
    ggi_cgroup *cg = NULL;
    int fds[MAX_CG_FDS + MAX_LIMIT_FDS], np = 0, nl = 0;
    int rc = ggi_cgroup_new(&cg, 0, 0);
    if (!rc && (np = ggi_cgroup_open_procs(cg, fds, MAX_CG_FDS)) < 0)
        rc = np, np = 0;
    if (!rc && (nl = ggi_cgroup_open_limits(cg, fds + np, MAX_LIMIT_FDS)) < 0)
        rc = nl, nl = 0;
    if (!rc) {
        unsigned char msg[10];
        msg[0] = 'C';
        int64_t id = (int64_t)ggi_cgroup_id(cg);
        memcpy(msg + 1, &id, 8);
        msg[9] = (unsigned char)np;
        char cbuf[CMSG_SPACE(sizeof fds)];
        memset(cbuf, 0, sizeof cbuf);
        struct iovec iov = { msg, sizeof msg };
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cbuf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)(np + nl));
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)(np + nl));
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)(np + nl));
        ssize_t sent;
        while ((sent = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR) {
        }
        if (sent != (ssize_t)sizeof msg)
            rc = ggi_error(GG_EIO, "cannot hand the zygote a cgroup: %s", strerror(errno));
    }
    for (int i = 0; i < np + nl; i++)
        close(fds[i]);
    if (rc) {
        ggi_cgroup_destroy(&cg);
        return rc;
    }
    p->ahead[slot].cg = cg;
    p->ahead[slot].owner = serial;
    return GG_OK;
}

/* The group made ahead with number id for zygote serial, now the job's (NULL: none). */
static ggi_cgroup *claim_ahead(ggi_zygote_pool *p, unsigned long serial, unsigned long id)
{
    ggi_cgroup *cg = NULL;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < MAX_AHEAD && !cg; i++) {
        if (p->ahead[i].cg && p->ahead[i].owner == serial &&
            ggi_cgroup_id(p->ahead[i].cg) == id) {
            cg = p->ahead[i].cg;
            p->ahead[i].cg = NULL;
            p->ahead[i].owner = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return cg;
}

static void zygote_stop(ggi_zygote_pool *p, zygote *z)
{
    if (z->ctl >= 0)
        close(z->ctl);
    if (z->cgs >= 0)
        close(z->cgs);
    for (int i = 0; i < z->nkept; i++)
        close(z->kept[i]);
    if (z->pid > 0) {
        kill(z->pid, SIGKILL);
        while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    if (z->serial)
        drop_ahead(p, z->serial);
    free(z->key);
    memset(z, 0, sizeof *z);
    z->ctl = z->cgs = -1;
}

void ggi_zygote_pool_destroy(ggi_zygote_pool **pp)
{
    if (!pp || !*pp)
        return;
    ggi_zygote_pool *p = *pp;
    *pp = NULL;
    for (int i = 0; i < MAX_ZYGOTES; i++)
        zygote_stop(p, &p->z[i]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int ggi_zygote_pool_starts(ggi_zygote_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = pool->starts;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

/* Entries of the environment that differ per job and are set by the job's process. */
static int per_job_env(const char *kv)
{
    return !strncmp(kv, "HOME=", 5) || !strncmp(kv, "TMPDIR=", 7);
}

int ggi_zygote_eligible(const char *const *argv, const char *const *envp)
{
    if (!argv[0] || !argv[1] || strcmp(argv[1], "-c") != 0 || !argv[2])
        return 0;
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (strncmp(base, "python", 6) != 0)
        return 0;
    for (size_t i = 0; envp && envp[i] && i < 4096; i++) {
        if (!strncmp(envp[i], "PYTHONUNBUFFERED=", 17) ||
            !strncmp(envp[i], "PYTHONINSPECT=", 14) || !strncmp(envp[i], "PYTHONSTARTUP=", 14))
            return 0;
    }
    return 1;
}

static char *make_key(const char *python, const char *const *envp, size_t *len)
{
    ggi_buf b = GGI_BUF_INIT;
    int rc = ggi_buf_append(&b, python, strlen(python) + 1);
    for (size_t i = 0; !rc && envp && envp[i]; i++) {
        if (!per_job_env(envp[i]))
            rc = ggi_buf_append(&b, envp[i], strlen(envp[i]) + 1);
    }
    if (rc) {
        ggi_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return ggi_buf_steal(&b);
}

/* The zygote's environment: the job's, with HOME and TMPDIR neutral (NULL: out of memory;
 * the strings stay the caller's). */
static const char **zygote_env(const char *const *envp)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    const char **env = calloc(n + 3, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!per_job_env(envp[i]))
            env[k++] = envp[i];
    }
    env[k++] = "HOME=/";
    env[k++] = "TMPDIR=/tmp";
    env[k] = NULL;
    return env;
}

/* Whether this kernel gives any holder of a pidfd the wait status of the process once it
 * has ended (PIDFD_INFO_EXIT): seen once, on a child made to end with status 7. */
static int exit_info_ok;
static pthread_once_t exit_info_once = PTHREAD_ONCE_INIT;

static void probe_exit_info(void)
{
    pid_t pid = vfork();
    if (pid == 0)
        _exit(7);
    if (pid < 0)
        return;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (fd < 0)
        return;
    zpidfd_info info;
    memset(&info, 0, sizeof info);
    info.mask = ZPIDFD_INFO_EXIT;
    exit_info_ok = ioctl(fd, ZPIDFD_GET_INFO, &info) == 0 && (info.mask & ZPIDFD_INFO_EXIT) &&
                   WIFEXITED(info.exit_code) && WEXITSTATUS(info.exit_code) == 7;
    close(fd);
}

/* Whether zygotes start their jobs' PID 1 as the embedded init program: it is there, the
 * kernel reports exit statuses through pidfds, the jobs have cgroups (their peak memory
 * comes from there) and GRYPHGEN_ZINIT is not 0. */
static int use_zinit(int with_cg)
{
    const char *env = getenv("GRYPHGEN_ZINIT");
    if (!ggi_zinit_len || !with_cg || (env && strcmp(env, "0") == 0))
        return 0;
    pthread_once(&exit_info_once, probe_exit_info);
    return exit_info_ok;
}

int ggi_zygote_init_program(void)
{
    return use_zinit(ggi_cgroup_probe()->version != 0);
}

/* Whether a zygote gives a job's process the network namespace of an earlier job that left
 * nothing in it (the script's _net_take), unless GRYPHGEN_NETNS_REUSE is 0. */
static int net_reuse(void)
{
    const char *env = getenv("GRYPHGEN_NETNS_REUSE");
    return !(env && strcmp(env, "0") == 0);
}

/* The init program handed to zygotes started from now on (tests give a broken one). */
static const char *zinit_bytes;
static size_t zinit_len;
static pthread_mutex_t zinit_lock = PTHREAD_MUTEX_INITIALIZER;

void ggi_zygote_set_init_program(const char *bytes, size_t len)
{
    pthread_mutex_lock(&zinit_lock);
    zinit_bytes = bytes;
    zinit_len = bytes ? len : 0;
    pthread_mutex_unlock(&zinit_lock);
}

/* A sealed, executable in-memory file holding the init program (-1: none could be made). */
static int zinit_memfd(void)
{
    pthread_mutex_lock(&zinit_lock);
    const char *bytes = zinit_bytes ? zinit_bytes : ggi_zinit;
    size_t len = zinit_bytes ? zinit_len : ggi_zinit_len;
    pthread_mutex_unlock(&zinit_lock);
    int fd = memfd_create("gg-zinit", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* before Linux 6.3 */
        fd = memfd_create("gg-zinit", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    int high = -1; /* above the descriptors the zygote's child sets up */
    if (ggi_write_all(fd, bytes, len) != 0 || fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
        (high = fcntl(fd, F_DUPFD_CLOEXEC, 10)) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return high;
}

/* The descriptors a zygote is started with: its control socket (sv), with cgroups the socket
 * that hands it groups made ahead (cv), /dev/null, the init program (or -1), and the child's
 * ends duplicated above the standard ones. */
typedef struct zygote_fds {
    int sv[2], cv[2];
    int devnull, child_ctl, child_cg, zinit;
    int with_cg;
} zygote_fds;

static int zygote_fds_open(zygote_fds *f)
{
    f->sv[0] = f->sv[1] = f->cv[0] = f->cv[1] = -1;
    f->devnull = f->child_ctl = f->child_cg = f->zinit = -1;
    /* With cgroups, a second socket hands it the groups its jobs' processes join ahead. */
    f->with_cg = ggi_cgroup_probe()->version != 0;
    if (use_zinit(f->with_cg))
        f->zinit = zinit_memfd(); /* (none: the Python PID 1) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv) < 0 ||
        (f->with_cg && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->cv) < 0) ||
        (f->devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
        (f->child_ctl = fcntl(f->sv[1], F_DUPFD_CLOEXEC, 10)) < 0 ||
        (f->with_cg && (f->child_cg = fcntl(f->cv[1], F_DUPFD_CLOEXEC, 10)) < 0))
        return ggi_error(GG_EIO, "cannot make the zygote's socket: %s", strerror(errno));
    return GG_OK;
}

static void zygote_fds_close(zygote_fds *f)
{
    for (int i = 0; i < 2; i++) {
        if (f->sv[i] >= 0)
            close(f->sv[i]);
        if (f->cv[i] >= 0)
            close(f->cv[i]);
    }
    if (f->child_cg >= 0)
        close(f->child_cg);
    if (f->devnull >= 0)
        close(f->devnull);
    if (f->child_ctl >= 0)
        close(f->child_ctl);
    if (f->zinit >= 0)
        close(f->zinit);
}

/* In the cloned child: default signal dispositions, its sandbox, the descriptors the script
 * expects (0-2 /dev/null, 3 control, 4 cgroups, 5 the init program), then the interpreter.
 * Never returns. */
static void zygote_child(ggi_sandbox_spec *s, const zygote_fds *f, int sync_wr,
                         const char *python, const char *const *argv, const char **env)
{
    if (sync_wr >= 0)
        close(sync_wr);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &dfl, NULL);
    }
    (void)setsid();
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char *step = NULL;
    if (ggi_sandbox_child_setup(s, &step))
        _exit(120);
    /* In its user namespace the zygote is uid 65534: it keeps the capabilities it needs
     * to build each job's sandbox across exec; jobs drop them all. */
    if (s->userns && ggi_sandbox_child_keep_caps())
        _exit(123);
    /* Without a user namespace, its jobs may have none of their own either (a kernel that
     * refuses them): the keyring calls that would reach uid 65534's shared user keyring are
     * refused to the zygote and every job it forks. */
    if (!s->userns && ggi_sandbox_child_deny_keys())
        _exit(124);
    if (dup2(f->devnull, 0) < 0 || dup2(f->devnull, 1) < 0 || dup2(f->devnull, 2) < 0 ||
        dup2(f->child_ctl, 3) < 0 || (f->child_cg >= 0 && dup2(f->child_cg, 4) < 0) ||
        (f->zinit >= 0 && dup2(f->zinit, 5) < 0))
        _exit(121);
    (void)syscall(SYS_close_range, f->zinit >= 0 ? 6U : f->child_cg >= 0 ? 5U : 4U, ~0U,
                  CLOSE_RANGE_CLOEXEC);
    if (chdir("/") < 0)
        _exit(122);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(python, (char *const *)argv, (char *const *)env);
    _exit(127);
}

/* Clones the zygote's process into its sandbox (the zygote flag of sandbox.c) and maps its
 * user namespace; *pid_out is its pid. */
static int zygote_clone(const zygote_fds *f, const char *python, const char **env,
                        pid_t *pid_out)
{
    ggi_sandbox_spec s;
    ggi_sandbox_spec_init(&s);
    s.zygote = 1;
    ggi_sandbox_binds binds;
    memset(&binds, 0, sizeof binds);
    ggi_sandbox_program_binds(&binds, python);
    s.binds = &binds;
    int sync_wr = -1, se = ggi_sandbox_userns_pipe(&s, &s.userns_fd, &sync_wr);
    if (se)
        return ggi_error(GG_EIO, "cannot make the zygote's pipe: %s", strerror(se));
    /* (Its sys.argv[1] says whether it has a user namespace of its own.) */
    const char *argv[] = { python, "-c", ZYGOTE_PY, s.userns ? "userns" : "-",
                           f->with_cg ? "cg" : "-", f->zinit >= 0 ? "zinit" : "-",
                           net_reuse() ? "-" : "no-net-reuse", NULL };
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = ggi_sandbox_raw_clone((unsigned long)ggi_sandbox_clone_flags(&s));
    if (pid == 0)
        zygote_child(&s, f, sync_wr, python, argv, env);
    int e = errno;
    if (pid > 0)
        (void)ggi_sandbox_userns_map(pid, sync_wr); /* a failure: the zygote does not start */
    else if (sync_wr >= 0)
        close(sync_wr);
    if (s.userns_fd >= 0)
        close(s.userns_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return ggi_error(GG_EIO, "cannot start a zygote: %s", strerror(e));
    *pid_out = pid;
    return GG_OK;
}

/* Waits for the started zygote's "ready" ("R" on ctl); kills and reaps it when that does not
 * come. */
static int zygote_await_ready(pid_t pid, int ctl, const char *python)
{
    struct pollfd pf = { ctl, POLLIN, 0 };
    char c = 0;
    int pr;
    while ((pr = poll(&pf, 1, START_TIMEOUT_MS)) < 0 && errno == EINTR) {
    }
    if (pr > 0 && recv(ctl, &c, 1, 0) == 1 && c == 'R')
        return GG_OK;
    kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return ggi_error(GG_EUNSUPPORTED, "the zygote (%s) did not start (%s)", python,
                     pr == 0 ? "no answer"
                     : WIFEXITED(st) ? "it exited; Python 3.9 or later is needed"
                                     : "it was killed");
}

/* Starts a zygote into z (the lock is held): its sockets, its process, its first jobs'
 * groups made ahead, its "ready". */
static int zygote_start(ggi_zygote_pool *p, zygote *z, const char *python,
                        const char *const *envp)
{
    const char **env = zygote_env(envp);
    if (!env)
        return ggi_error(GG_ENOMEM, "out of memory");
    zygote_fds f;
    pid_t pid = -1;
    int rc = zygote_fds_open(&f);
    if (!rc)
        rc = zygote_clone(&f, python, env, &pid);
    if (rc)
        goto out;
    close(f.sv[1]);
    f.sv[1] = -1;
    if (f.with_cg) {
        /* Its first jobs' groups, then the end of this supply. */
        close(f.cv[1]);
        f.cv[1] = -1;
        for (int i = 0; i < PARKED + 2; i++)
            if (supply_cgroup(p, z->serial, f.cv[0]))
                break;
        (void)send(f.cv[0], ".", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    rc = zygote_await_ready(pid, f.sv[0], python);
    if (rc)
        goto out;
    z->pid = pid;
    z->ctl = f.sv[0];
    z->cgs = f.cv[0];
    z->zinit = f.zinit >= 0;
    f.sv[0] = f.cv[0] = -1;
out:
    zygote_fds_close(&f);
    free(env);
    return rc;
}

/* One byte from sock, with the descriptors sent beside it if any (up to two: *fd, then *fd2
 * when not NULL; -1: none; others are closed), EINTR retried: recvmsg's result. */
static ssize_t recv_byte_fds(int sock, int flags, char *c, int *fd, int *fd2)
{
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = { c, 1 };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n;
    while ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    }
    int got[2] = { -1, -1 };
    *fd = -1;
    if (fd2)
        *fd2 = -1;
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(got, CMSG_DATA(cm), sizeof(int) * (k > 2 ? 2 : k));
    }
    *fd = got[0];
    if (fd2)
        *fd2 = got[1];
    else if (got[1] >= 0)
        close(got[1]);
    return n;
}

static ssize_t recv_byte_fd(int sock, int flags, char *c, int *fd)
{
    return recv_byte_fds(sock, flags, c, fd, NULL);
}

/* Takes in the sockets of job processes zygote z made ahead ("K" messages; the lock is
 * held), and returns the oldest one (-1: none). */
static int take_kept(zygote *z)
{
    for (;;) {
        char c = 0;
        int fd = -1;
        if (recv_byte_fd(z->ctl, MSG_DONTWAIT, &c, &fd) <= 0)
            break;
        if (fd < 0)
            continue;
        if (c != 'K' || z->nkept >= MAX_KEPT) {
            close(fd); /* (its process ends, and its group goes with the zygote) */
            continue;
        }
        z->kept[z->nkept++] = fd;
    }
    if (!z->nkept)
        return -1;
    int fd = z->kept[0];
    memmove(z->kept, z->kept + 1, sizeof(int) * (size_t)--z->nkept);
    return fd;
}

/* Finds or starts the zygote for key; returns a dup of its control socket and of its
 * cgroup socket (or -1), its serial, the socket of a job process it made ahead (or -1), now
 * the caller's, and whether its jobs' PID 1 is the init program. */
static int zygote_get(ggi_zygote_pool *p, const char *python, const char *const *envp,
                      int *ctl_out, int *cgs_out, unsigned long *serial, int *kept_out,
                      int *zinit_out)
{
    size_t klen = 0;
    char *key = make_key(python, envp, &klen);
    if (!key)
        return ggi_error(GG_ENOMEM, "out of memory");
    pthread_mutex_lock(&p->lock);
    int rc = GG_OK;
    if (p->broken) {
        rc = ggi_error(GG_EUNSUPPORTED, "zygotes are disabled after a failure");
        goto out;
    }
    zygote *hit = NULL, *lru = &p->z[0];
    double now = ggi_now_ms();
    for (int i = 0; i < MAX_ZYGOTES; i++) {
        zygote *z = &p->z[i];
        if (z->pid > 0 && waitpid(z->pid, NULL, WNOHANG) == z->pid) {
            z->pid = 0; /* died: reaped */
            zygote_stop(p, z);
        }
        if (z->pid > 0 && now - z->last > IDLE_MS && z->inflight == 0 &&
            !(z->key_len == klen && !memcmp(z->key, key, klen)))
            zygote_stop(p, z); /* idle: what it holds goes */
        if (z->pid > 0 && z->key_len == klen && !memcmp(z->key, key, klen))
            hit = z;
        if (z->used < lru->used)
            lru = z;
    }
    if (!hit) {
        zygote_stop(p, lru);
        lru->serial = ++p->serials;
        rc = zygote_start(p, lru, python, envp);
        if (rc)
            zygote_stop(p, lru);
        if (rc)
            goto out;
        p->starts++;
        lru->key = key;
        lru->key_len = klen;
        key = NULL;
        hit = lru;
    }
    hit->used = ++p->tick;
    hit->last = now;
    hit->inflight++;
    *serial = hit->serial;
    *zinit_out = hit->zinit;
    *kept_out = take_kept(hit);
    *ctl_out = fcntl(hit->ctl, F_DUPFD_CLOEXEC, 3);
    *cgs_out = hit->cgs >= 0 ? fcntl(hit->cgs, F_DUPFD_CLOEXEC, 3) : -1;
    if (*ctl_out < 0 || (hit->cgs >= 0 && *cgs_out < 0)) {
        rc = ggi_error(GG_EIO, "dup failed: %s", strerror(errno));
        if (*ctl_out >= 0)
            close(*ctl_out);
        *ctl_out = -1;
        if (*kept_out >= 0)
            close(*kept_out);
        *kept_out = -1;
    }
out:
    pthread_mutex_unlock(&p->lock);
    free(key);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* one job                                                                                  */

typedef struct zjob {
    ggi_zygote_pool *pool;
    const ggi_zygote_job *job;
    int ctl;       /* dup of the zygote's control socket */
    int cgs;       /* dup of its cgroup socket, or -1 */
    int kept;      /* a job process made ahead, handed its job directly (-1: none) */
    unsigned long serial;
    int sock;      /* our end of the job socket */
    int init_fd;   /* pidfd of the job's init */
    int zinit;     /* the init is the init program: the job's status comes from job_fd */
    int job_fd;    /* with it, a pidfd of the job's process (PID 2), else -1 */
    ggi_cgroup *cg; /* the job's group (made ahead, joined by its process) */
    int fallback;  /* the job never started: run it the direct way */
    ggi_zygote_times t;
} zjob;

static int add_rlimit(cJSON *arr, int res, uint64_t want, uint64_t extra)
{
    if (!want)
        return GG_OK;
    struct rlimit cur;
    if (getrlimit(res, &cur) != 0)
        return ggi_error(GG_EIO, "getrlimit failed: %s", strerror(errno));
    uint64_t v = want, hard;
    if (cur.rlim_max != RLIM_INFINITY && v > cur.rlim_max)
        v = cur.rlim_max;
    hard = v;
    if (cur.rlim_max == RLIM_INFINITY || v + extra <= cur.rlim_max)
        hard = v + extra;
    cJSON *t = cJSON_CreateArray();
    if (!t || !cJSON_AddItemToArray(arr, t)) {
        cJSON_Delete(t);
        return GG_ENOMEM;
    }
    double vals[3] = { res, (double)v, (double)hard };
    for (int i = 0; i < 3; i++) {
        cJSON *n = cJSON_CreateNumber(vals[i]);
        if (!n || !cJSON_AddItemToArray(t, n)) {
            cJSON_Delete(n);
            return GG_ENOMEM;
        }
    }
    return GG_OK;
}

static int add_strings(cJSON *arr, const char *const *v)
{
    for (size_t i = 0; v && v[i]; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return GG_ENOMEM;
        }
    }
    return GG_OK;
}

static char *build_request(const ggi_zygote_job *j)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *files = NULL, *env = NULL, *args = NULL, *rl = NULL;
    int rc = r ? GG_OK : GG_ENOMEM;
    if (!rc)
        rc = ggi_json_add_str(r, "ws", j->sb->inner_ws);
    if (!rc)
        rc = ggi_json_add_num(r, "tmpfs", (double)j->sb->tmpfs_bytes);
    if (!rc)
        rc = ggi_json_add_num(r, "uid", j->sb->uid);
    if (!rc)
        rc = ggi_json_add_num(r, "gid", j->sb->gid);
    if (!rc)
        rc = ggi_json_add_str(r, "code", j->code);
    if (!rc)
        rc = (args = cJSON_AddArrayToObject(r, "args")) ? add_strings(args, j->args) : GG_ENOMEM;
    if (!rc)
        rc = (files = cJSON_AddArrayToObject(r, "files")) ? GG_OK : GG_ENOMEM;
    for (size_t i = 0; !rc && i < j->sb->nfiles; i++) {
        cJSON *f = cJSON_CreateArray();
        const char *pc[3] = { j->sb->files[i].path, j->sb->files[i].content, NULL };
        rc = f && cJSON_AddItemToArray(files, f) ? add_strings(f, pc) : GG_ENOMEM;
        if (!rc && strlen(pc[1]) != j->sb->files[i].len)
            rc = GG_EINVAL;
    }
    if (!rc)
        rc = (env = cJSON_AddArrayToObject(r, "env")) ? GG_OK : GG_ENOMEM;
    for (size_t i = 0; !rc && j->envp && j->envp[i]; i++) {
        const char *eq = strchr(j->envp[i], '=');
        if (!eq)
            continue;
        char *name = ggi_strndup(j->envp[i], (size_t)(eq - j->envp[i]));
        const char *kv[3] = { name, eq + 1, NULL };
        cJSON *e = cJSON_CreateArray();
        rc = name && e && cJSON_AddItemToArray(env, e) ? add_strings(e, kv) : GG_ENOMEM;
        free(name);
    }
    if (!rc)
        rc = ggi_json_add_bool(r, "cgroup", j->cgroup);
    cJSON *cl = NULL;
    if (!rc)
        rc = (cl = cJSON_AddArrayToObject(r, "cglimits")) ? GG_OK : GG_ENOMEM;
    if (!rc && j->cgroup) {
        char vals[MAX_LIMIT_FDS][24];
        int n = ggi_cgroup_limit_values(j->cg_memory, j->cg_pids, vals, MAX_LIMIT_FDS);
        for (int i = 0; !rc && i < n; i++) {
            const char *v[2] = { vals[i], NULL };
            rc = add_strings(cl, v);
        }
    }
    if (!rc)
        rc = (rl = cJSON_AddArrayToObject(r, "rlimits")) ? GG_OK : GG_ENOMEM;
    if (!rc && j->cpu_s > 0)
        rc = add_rlimit(rl, RLIMIT_CPU, (uint64_t)(j->cpu_s + 0.999), 1);
    if (!rc)
        rc = add_rlimit(rl, RLIMIT_AS, j->as_bytes, 0);
    if (!rc)
        rc = add_rlimit(rl, RLIMIT_FSIZE, j->fsize_bytes, 0);
    if (!rc)
        rc = add_rlimit(rl, RLIMIT_NOFILE, j->nofile, 0);
    if (!rc)
        rc = add_rlimit(rl, RLIMIT_NPROC, j->nproc, 0);
    char *s = rc ? NULL : ggi_json_print(r);
    cJSON_Delete(r);
    return s;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int wait_readable(int fd, int ms)
{
    struct pollfd pf = { fd, POLLIN, 0 };
    int r;
    while ((r = poll(&pf, 1, ms)) < 0 && errno == EINTR) {
    }
    return r;
}

static void zj_kill(void *ctx);

/* The job's request on the wire (a 4-byte little-endian length, then the JSON) into wire. */
static int zj_wire(zjob *zj, ggi_buf *wire)
{
    char *req = build_request(zj->job);
    if (!req)
        return ggi_error(GG_EUNSUPPORTED, "cannot build the zygote request");
    size_t len = strlen(req);
    unsigned char hdr[4] = { (unsigned char)len, (unsigned char)(len >> 8),
                             (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
    int bad = ggi_buf_append(wire, (const char *)hdr, 4) || ggi_buf_append(wire, req, len);
    gg_free(req);
    return bad ? ggi_error(GG_ENOMEM, "out of memory") : GG_OK;
}

/* Hands the job on: its socket's other end and its stdin, stdout and stderr go straight to a
 * job process made ahead ("J" and when it was sent; *direct is set), or, when there is none
 * or it died, to the zygote ("J" and whether a core is free for the zygote to make the next
 * jobs' processes ahead now: fewer jobs run than there are cores, this one counted).
 * Returns 0, or -1 with errno when neither took it. */
static int zj_hand_on(zjob *zj, const int fds[4], int *direct)
{
    enum { NFDS = 4 };
    char cbuf[CMSG_SPACE(sizeof(int) * NFDS)];
    memset(cbuf, 0, sizeof cbuf);
    int running = __atomic_load_n(&zj->pool->active, __ATOMIC_RELAXED);
    char tag[2] = { 'J', running < zj->pool->cores ? '1' : '0' };
    struct iovec iov = { tag, sizeof tag };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * NFDS);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * NFDS);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * NFDS);
    ssize_t sent = -1;
    *direct = 0;
    zj->t.sent = ggi_now_ms();
    if (zj->kept >= 0) {
        /* Straight to a job process made ahead; then the zygote hears that it should make
         * the next one ("F"). */
        char d[9] = { 'J' };
        int64_t ns = (int64_t)(zj->t.sent * 1e6);
        memcpy(d + 1, &ns, 8);
        iov.iov_base = d;
        iov.iov_len = sizeof d;
        while ((sent = sendmsg(zj->kept, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
        }
        close(zj->kept);
        zj->kept = -1;
        if (sent == (ssize_t)sizeof d) {
            *direct = 1;
            return 0;
        }
        iov.iov_base = tag; /* it died: the zygote's way */
        iov.iov_len = sizeof tag;
    }
    while ((sent = sendmsg(zj->ctl, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    if (sent == (ssize_t)sizeof tag)
        return 0;
    if (sent >= 0)
        errno = EPIPE;
    return -1;
}

/* The job process's "E" reply (or an unknown one): the error with its message; zygotes are
 * off from now on. */
static int zj_reply_error(zjob *zj, char r)
{
    char msg[MAX_ERR_MSG + 1] = "no reason given";
    if (r == 'E') {
        unsigned char l[4];
        if (recv(zj->sock, l, 4, MSG_WAITALL) == 4) {
            size_t ml = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 |
                        (size_t)l[3] << 24;
            if (ml > MAX_ERR_MSG)
                ml = MAX_ERR_MSG;
            ssize_t k = recv(zj->sock, msg, ml, MSG_WAITALL);
            msg[k > 0 ? k : 0] = '\0';
        }
    }
    pthread_mutex_lock(&zj->pool->lock);
    zj->pool->broken = 1;
    pthread_mutex_unlock(&zj->pool->lock);
    zj->fallback = 1;
    return ggi_error(GG_EUNSUPPORTED, "the zygote could not build the job's sandbox: %s", msg);
}

/* The job process's "P" reply: after its pidfd of the job's PID 1, when each step in the
 * zygote began (eight int64 nanoseconds, CLOCK_MONOTONIC) and the number of the group the
 * job's process joined ahead (0: none), which becomes the job's. */
static int zj_reply_ready(zjob *zj)
{
    zj->t.replied = ggi_now_ms();
    int64_t ns[9];
    if (recv(zj->sock, ns, sizeof ns, MSG_WAITALL) != (ssize_t)sizeof ns) {
        zj_kill(zj);
        return ggi_error(GG_EIO, "the zygote's reply was cut short");
    }
    if (zj->job->cgroup) {
        zj->cg = ns[8] > 0 ? claim_ahead(zj->pool, zj->serial, (unsigned long)ns[8]) : NULL;
        if (!zj->cg) {
            zj_kill(zj);
            return ggi_error(GG_EIO, "the zygote's job is in no cgroup of its own");
        }
    }
    double *at[8] = { &zj->t.park, &zj->t.init, &zj->t.job, &zj->t.parked,
                      &zj->t.received, &zj->t.handed, &zj->t.request, &zj->t.ready };
    for (int i = 0; i < 8; i++)
        *at[i] = (double)ns[i] / 1e6;
    return GG_OK;
}

/* Reads the job process's reply on the job socket: "P" with the pidfd of its PID 1, "N"
 * (its group refused the job's limits), "E" with a message, or nothing (closed). */
static int zj_reply(zjob *zj, int *done_fd)
{
    if (wait_readable(zj->sock, REPLY_TIMEOUT_MS) <= 0) {
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "the zygote did not take the job");
    }
    char r = 0;
    int passed_fd = -1, second_fd = -1;
    ssize_t got = recv_byte_fds(zj->sock, 0, &r, &passed_fd, &second_fd);
    if (second_fd >= 0 && (r != 'P' || !zj->zinit)) {
        close(second_fd); /* (only the init program's jobs send a second one) */
        second_fd = -1;
    }
    /* A zygote that could not start the init program made a fork of itself PID 1 (one
     * pidfd, and an "S" at the end): this job is then ended as those are. */
    if (second_fd < 0)
        zj->zinit = 0;
    if (got == 0) {
        /* Closed unanswered: no job process took it (none could be made, or none had a
         * cgroup); the direct way runs it, and zygotes stay in use. */
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "no job process of the zygote took the job");
    }
    if (r == 'N') {
        if (passed_fd >= 0)
            close(passed_fd);
        /* Its group refused the job's limits (a memory limit below what the waiting process
         * uses): the group goes, the direct way runs the job, zygotes stay in use. */
        int64_t id = 0;
        if (recv(zj->sock, &id, sizeof id, MSG_WAITALL) == (ssize_t)sizeof id && id > 0) {
            ggi_cgroup *cg = claim_ahead(zj->pool, zj->serial, (unsigned long)id);
            ggi_cgroup_destroy(&cg);
        }
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "the job's limits do not fit a zygote's process");
    }
    if (r == 'P' && passed_fd >= 0) {
        zj->init_fd = passed_fd;
        zj->job_fd = second_fd;
        int rc = zj_reply_ready(zj);
        /* A forked PID 1's job has ended when its report ("S") is in, or the socket closes
         * (PID 1 was killed); the init program's when the init has (its pidfd polls
         * readable once the kernel has killed what the job left), its status then read from
         * the pidfd of PID 2. Neither waits for the other namespaces to go away. */
        if (!rc)
            *done_fd = zj->zinit ? zj->init_fd : zj->sock;
        return rc;
    }
    if (passed_fd >= 0)
        close(passed_fd); /* (a descriptor beside another answer is nobody's) */
    return zj_reply_error(zj, r);
}

/* The external start of a zygote job (spawn.c): the request into the job socket, the job
 * handed on, a later job's group made, the reply read. */
static int zj_start(void *ctx, int in_fd, int out_fd, int err_fd, int *done_fd)
{
    zjob *zj = ctx;
    int js[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, js) < 0) {
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "socketpair failed: %s", strerror(errno));
    }
    zj->sock = js[0];
    struct timeval tv = { 15, 0 };
    (void)setsockopt(js[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* The request goes into the job socket before the job is handed on (as much as its
     * buffer takes), so the job's process finds it there. */
    ggi_buf wire = GGI_BUF_INIT;
    if (zj_wire(zj, &wire)) {
        ggi_buf_free(&wire);
        close(js[1]);
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "cannot build the zygote request");
    }
    size_t early = 0;
    while (early < wire.len) {
        ssize_t w = send(js[0], wire.data + early, wire.len - early, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        early += (size_t)w;
    }
    int fds[4] = { js[1], in_fd, out_fd, err_fd };
    int direct = 0;
    int handed = zj_hand_on(zj, fds, &direct);
    int e = errno;
    close(js[1]);
    if (handed < 0) {
        ggi_buf_free(&wire);
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "the zygote is gone (%s)", strerror(e));
    }
    int bad = early < wire.len && send_all(js[0], wire.data + early, wire.len - early) < 0;
    ggi_buf_free(&wire);
    /* The group of a later job, made while this one is set up; then the zygote may make
     * the next job process ahead (it finds the group there). */
    if (zj->cgs >= 0) {
        pthread_mutex_lock(&zj->pool->lock);
        (void)supply_cgroup(zj->pool, zj->serial, zj->cgs);
        pthread_mutex_unlock(&zj->pool->lock);
        gg_error_clear();
    }
    if (direct)
        (void)send(zj->ctl, "F", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (bad) {
        zj->fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "the zygote did not take the job");
    }
    return zj_reply(zj, done_fd);
}

static void zj_kill(void *ctx)
{
    zjob *zj = ctx;
    if (zj->init_fd >= 0)
        (void)syscall(SYS_pidfd_send_signal, zj->init_fd, SIGKILL, NULL, 0);
}

/* A wait status into res (exit code, or -1 and the signal). */
static void put_status(ggi_spawn_result *res, int st)
{
    if (WIFEXITED(st)) {
        res->exit_code = WEXITSTATUS(st);
    } else {
        res->exit_code = -1;
        res->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    }
}

/* The end of an init program's job: the wait status of its process (PID 2) from its pidfd,
 * its peak memory from its group. */
static int zj_finish_zinit(zjob *zj, ggi_spawn_result *res)
{
    zpidfd_info info;
    memset(&info, 0, sizeof info);
    info.mask = ZPIDFD_INFO_EXIT;
    zj->t.finished = zj->t.reaped = ggi_now_ms();
    if (zj->t.replied > zj->t.reaped)
        zj->t.replied = zj->t.reaped;
    if (ioctl(zj->job_fd, ZPIDFD_GET_INFO, &info) == 0 && (info.mask & ZPIDFD_INFO_EXIT)) {
        put_status(res, info.exit_code);
    } else {
        /* Ended with no status kept (which the probe says this kernel keeps): as killed. */
        res->exit_code = -1;
        res->term_signal = SIGKILL;
    }
    res->max_rss_kb = zj->cg ? ggi_cgroup_peak_kb(zj->cg) : 0;
    return GG_OK;
}

static int zj_finish(void *ctx, int killed, ggi_spawn_result *res)
{
    zjob *zj = ctx;
    (void)killed;
    if (zj->zinit && zj->job_fd >= 0)
        return zj_finish_zinit(zj, res);
    /* "S", the wait status (int32), peak RSS in KiB and when it was reaped (int64 ns). */
    unsigned char m[21];
    ssize_t n = 0;
    if (wait_readable(zj->sock, 0) > 0)
        n = recv(zj->sock, m, sizeof m, MSG_WAITALL | MSG_DONTWAIT);
    zj->t.finished = ggi_now_ms();
    if (n == (ssize_t)sizeof m && m[0] == 'S') {
        int32_t st;
        int64_t rss, reaped;
        memcpy(&st, m + 1, 4);
        memcpy(&rss, m + 5, 8);
        memcpy(&reaped, m + 13, 8);
        zj->t.reaped = (double)reaped / 1e6;
        /* A short program may end before this thread, busy or descheduled, noted the reply:
         * then the reply's stage lasts until the end and the program's is 0, never negative
         * (both clocks are CLOCK_MONOTONIC; only the host's look came late). */
        if (zj->t.replied > zj->t.reaped)
            zj->t.replied = zj->t.reaped;
        put_status(res, st);
        res->max_rss_kb = (long)rss;
    } else {
        /* The init was killed (timeout, cancel, out of memory) before it could report. */
        res->exit_code = -1;
        res->term_signal = SIGKILL;
    }
    return GG_OK;
}

/* A job of zygote serial has ended: it is idle from now when no other runs. */
static void zygote_done(ggi_zygote_pool *p, unsigned long serial)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < MAX_ZYGOTES; i++) {
        if (p->z[i].serial == serial && p->z[i].inflight > 0) {
            p->z[i].inflight--;
            p->z[i].last = ggi_now_ms();
        }
    }
    pthread_mutex_unlock(&p->lock);
}

int ggi_zygote_run(ggi_zygote_pool *pool, const ggi_zygote_job *job, const ggi_spawn_opts *o,
                   ggi_spawn_result *res, int *fallback)
{
    *fallback = 0;
    memset(res, 0, sizeof *res);
    zjob zj;
    memset(&zj, 0, sizeof zj);
    zj.pool = pool;
    zj.job = job;
    zj.ctl = zj.cgs = zj.kept = zj.sock = zj.init_fd = zj.job_fd = -1;
    int rc = zygote_get(pool, job->python, job->envp, &zj.ctl, &zj.cgs, &zj.serial, &zj.kept,
                        &zj.zinit);
    if (!rc && job->cgroup && zj.cgs < 0) {
        close(zj.ctl);
        if (zj.kept >= 0)
            close(zj.kept);
        zygote_done(pool, zj.serial);
        *fallback = 1;
        return ggi_error(GG_EUNSUPPORTED, "the zygote has no cgroups");
    }
    if (rc) {
        zygote_done(pool, zj.serial);
        *fallback = rc != GG_ENOMEM;
        return rc;
    }
    ggi_spawn_external ext = { zj_start, zj_kill, zj_finish, &zj };
    ggi_spawn_opts so = *o;
    so.external = &ext;
    so.sandbox = NULL;
    __atomic_add_fetch(&pool->active, 1, __ATOMIC_RELAXED);
    rc = ggi_spawn_run(&so, res);
    __atomic_sub_fetch(&pool->active, 1, __ATOMIC_RELAXED);
    if (zj.fallback)
        *fallback = 1;
    if (job->times)
        *job->times = zj.t;
    if (zj.init_fd >= 0)
        close(zj.init_fd);
    if (zj.job_fd >= 0)
        close(zj.job_fd);
    if (zj.sock >= 0)
        close(zj.sock);
    if (zj.cgs >= 0)
        close(zj.cgs);
    if (zj.kept >= 0)
        close(zj.kept);
    close(zj.ctl);
    zygote_done(pool, zj.serial);
    if (job->cg_out)
        *job->cg_out = zj.cg;
    else
        ggi_cgroup_destroy(&zj.cg);
    return rc;
}
