/*
 * test_zygote.c - `python -c` jobs forked from a warm zygote behave as the direct sandbox
 * path does (exit codes, signals, tracebacks, argv, stdin, atexit, threads, uid), every job
 * starts clean whatever an earlier job did to modules, globals, builtins, files, the
 * environment and the kernel state its zygote's namespaces share (keyrings, a process left
 * behind listening on loopback, /dev/shm), a zygote that dies is replaced, and a request's
 * stage timings say where a job's time went; PID 1 of a job is the embedded init program
 * where it can be used, and a job's network namespace comes back for a later job only when
 * the job left nothing in it. Arguments: "python-init" (GRYPHGEN_ZINIT=0), "no-netns-reuse"
 * (GRYPHGEN_NETNS_REUSE=0), "broken-init" (an init program that cannot start: the zygotes
 * fall back to a fork of themselves), "no-userns" (GRYPHGEN_USERNS=0: no user namespace for
 * the sandbox; a job's user keyring is then out of its reach).
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/sandbox.h"
#include "execution/zygote.h"
#include "testexec.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static gg_executor_t *ex;
static int broken_init; /* "broken-init": the zygotes get an init program that cannot start */

static cJSON *run(const char *code, const char *extra, int zygote)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(req, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(PY));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(code));
    cJSON_AddItemToArray(argv, cJSON_CreateString("a1"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("a 2"));
    cJSON_AddBoolToObject(req, "zygote", zygote);
    /* A guard against a hang only: a loaded machine may be slow to run even print(1). */
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(req, "limits"), "timeout_s", 120);
    cJSON_AddStringToObject(req, "stdin", "line1\nline2\n");
    cJSON *env = cJSON_AddObjectToObject(req, "env");
    cJSON_AddStringToObject(env, "PYTHONHASHSEED", "0");
    if (extra)
        cJSON_AddStringToObject(env, "GG_EXTRA", extra);
    return test_exec_run(ex, req);
}

/* The same code through the zygote and directly: the same outcome. */
static void test_same_as_direct(void)
{
    static const char *const codes[] = {
        "print('hello')",
        "import sys; sys.exit(3)",
        "import sys; sys.exit('bye')",
        "raise ValueError('boom')",
        "import os; os.kill(os.getpid(), 11)",
        "import sys; print(sys.argv, repr(sys.path[0]))",
        "import sys; print(sys.stdin.read().split())",
        "import atexit; atexit.register(lambda: print('at exit'))",
        "import threading, time\nt = threading.Thread(target=lambda: (time.sleep(0.05), "
        "print('thread done')))\nt.start()\nprint('main done')",
        "import os; print(os.getuid(), os.getgid(), os.getcwd() == os.environ['HOME'], "
        "os.getpid(), os.getppid() in (0, 1))",
        "import sys; sys.stdout.write('no newline'); sys.stderr.write('err')",
        "print({'b': 1, 'a': 2, 'c': 3}, {'x', 'y', 'z'})",
        "x = ",
        "import os, sys; print(sorted(k for k in os.environ))",
        "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)",
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cJSON *z = run(codes[i], NULL, 1), *d = run(codes[i], NULL, 0);
        if (!z || !d) {
            cJSON_Delete(z);
            cJSON_Delete(d);
            continue;
        }
        CHECK(test_true(z, "zygote") == 1);
        CHECK(test_true(d, "zygote") == 0);
        int same = test_num(z, "exit_code") == test_num(d, "exit_code") &&
                   test_num(z, "signal") == test_num(d, "signal") &&
                   !strcmp(test_str(z, "stdout"), test_str(d, "stdout")) &&
                   !strcmp(test_str(z, "stderr"), test_str(d, "stderr"));
        if (!same)
            fprintf(stderr, "code %zu differs:\n zygote: %d %d [%s] [%s]\n direct: %d %d [%s] "
                            "[%s]\n",
                    i, (int)test_num(z, "exit_code"), (int)test_num(z, "signal"),
                    test_str(z, "stdout"), test_str(z, "stderr"), (int)test_num(d, "exit_code"),
                    (int)test_num(d, "signal"), test_str(d, "stdout"), test_str(d, "stderr"));
        CHECK(same);
        cJSON_Delete(z);
        cJSON_Delete(d);
    }
}

/* Twice in turn: a zygote job runs pollute (which prints "polluted") and the next one check
 * (which prints "clean" when it sees nothing pollute left). */
static void pollute_then_check(const char *pollute, const char *check)
{
    for (int round = 0; round < 2; round++) {
        cJSON *p = run(pollute, NULL, 1);
        if (p) {
            CHECK_STR(test_str(p, "stdout"), "polluted\n");
            CHECK(test_true(p, "zygote"));
            cJSON_Delete(p);
        }
        cJSON *c = run(check, NULL, 1);
        if (c) {
            CHECK_STR(test_str(c, "stdout"), "clean\n");
            CHECK(test_true(c, "zygote"));
            cJSON_Delete(c);
        }
    }
}

/* A job that pollutes everything it can reach does not affect the next one. */
static void test_no_state_between_jobs(void)
{
    const char *pollute =
        "import os, sys, json, builtins\n"
        "json.dumps = None\n"
        "builtins.LEAKED = 1\n"
        "sys.modules['gg_planted'] = object()\n"
        "sys.path.insert(0, '/planted')\n"
        "os.environ['LEAKED'] = '1'\n"
        "os.putenv('LEAKED2', '1')\n"
        "open('/tmp/leaked', 'w').write('x')\n"
        "open('leaked.txt', 'w').write('x')\n"
        "globals()['G'] = 1\n"
        "os.chdir('/')\n"
        "os.umask(0)\n"
        "import typing, collections, re\n"
        "typing.List = None\n"
        "collections.OrderedDict = None\n"
        "re.compile = None\n"
        "print('polluted')\n";
    const char *check =
        "import os, sys, json, builtins\n"
        "bad = []\n"
        "if json.dumps is None: bad.append('module')\n"
        "if hasattr(builtins, 'LEAKED'): bad.append('builtins')\n"
        "if 'gg_planted' in sys.modules: bad.append('sys.modules')\n"
        "if '/planted' in sys.path: bad.append('sys.path')\n"
        "if 'LEAKED' in os.environ or 'LEAKED2' in os.environ: bad.append('env')\n"
        "if os.path.exists('/tmp/leaked'): bad.append('/tmp')\n"
        "if os.path.exists('leaked.txt'): bad.append('workspace')\n"
        "if 'G' in globals(): bad.append('globals')\n"
        "if os.getcwd() != os.environ['HOME']: bad.append('cwd')\n"
        "if os.umask(0o22) != 0o22: bad.append('umask')\n"
        "import typing, collections, re\n"
        "if typing.List is None or collections.OrderedDict is None or re.compile is None:\n"
        "    bad.append('preloaded modules')\n"
        "print('clean' if not bad else bad)\n";
    pollute_then_check(pollute, check);
}

/* What the jobs of one zygote share are its user and network namespaces: a job that stores
 * keys in the keyrings the kernel keeps per user (namespace), leaves a process behind
 * listening on loopback or a file in /dev/shm leaves nothing the next job sees. */
/* A key a job puts in its user keyring is not there for the next job, zygote or direct:
 * each has a user namespace (and user keyring) of its own, or, without one, the keyring
 * calls are refused (GRYPHGEN_USERNS=0: "no-userns"). */
static void test_user_keyring_apart(int zygote)
{
    cJSON *a = run("import ctypes\n"
                   "libc = ctypes.CDLL(None, use_errno=True)\n"
                   "libc.syscall.restype = ctypes.c_long\n"
                   "k = libc.syscall(248, b'user', b'gg_left_key', b'secret', 6, ctypes.c_long(-4))\n"
                   "print('planted' if k > 0 else 'refused %d' % ctypes.get_errno())", NULL, zygote);
    cJSON *b = run("import ctypes\n"
                   "libc = ctypes.CDLL(None, use_errno=True)\n"
                   "libc.syscall.restype = ctypes.c_long\n"
                   "k = libc.syscall(250, 10, ctypes.c_long(-4), b'user', b'gg_left_key', 0)\n"
                   "print('found' if k >= 0 else 'absent')", NULL, zygote);
    if (a && b) {
        printf("# %s jobs: %s", zygote ? "zygote" : "direct", test_str(a, "stdout"));
        CHECK_STR(test_str(b, "stdout"), "absent\n");
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_no_kernel_state_between_jobs(void)
{
    const char *pollute =
        "import ctypes, os, socket, time\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "for ring in (-4, -3):  # the user and the session keyring\n"
        "    k = libc.syscall(248, b'user', b'gg_planted_key', b'secret', 6, ctypes.c_long(ring))\n"
        "    assert k > 0 or ctypes.get_errno() == 38, ctypes.get_errno()  # (or refused)\n"
        "open('/dev/shm/planted', 'w').write('x')\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    s = socket.socket()\n"
        "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "    s.bind(('127.0.0.1', 47321))\n"
        "    s.listen(8)\n"
        "    os.write(w, b'1')\n"
        "    time.sleep(300)\n"
        "    os._exit(0)\n"
        "assert os.read(r, 1) == b'1'\n"
        "socket.create_connection(('127.0.0.1', 47321), timeout=5).close()\n"
        "print('polluted')\n";
    const char *check =
        "import ctypes, os, socket\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        "bad = []\n"
        "for ring in (-4, -3):\n"
        "    if libc.syscall(250, 10, ctypes.c_long(ring), b'user', b'gg_planted_key', 0) >= 0:\n"
        "        bad.append('keyring %d' % ring)\n"
        "if os.path.exists('/dev/shm/planted'): bad.append('/dev/shm')\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 47321), timeout=5).close()\n"
        "    bad.append('a listener left behind')\n"
        "except ConnectionRefusedError:\n"
        "    pass\n"
        "others = [p for p in os.listdir('/proc')\n"
        "          if p.isdigit() and int(p) not in (1, os.getpid())]\n"
        "if others: bad.append('processes %s' % others)\n"
        "print('clean' if not bad else bad)\n";
    pollute_then_check(pollute, check);
}

/* "stage_times": true adds where the job's time went; without it there is none; a value
 * that is not a boolean is refused. */
static void test_stage_times(void)
{
    static const char *const zygote_stages[] = { "prepare", "cgroup_create", "run", "handover",
                                                 "dispatch", "cgroup_join", "sandbox", "reply",
                                                 "program", "collect", "finish",
                                                 "ahead_pidns_fork", "ahead_job_fork",
                                                 "ahead_namespaces", "cleanup", "result",
                                                 "total" };
    for (int zygote = 1; zygote >= 0; zygote--) {
        char req[256];
        snprintf(req, sizeof req, "{\"argv\": [\"%s\", \"-c\", \"print(1)\"], \"zygote\": %s, "
                                  "\"stage_times\": true}", PY, zygote ? "true" : "false");
        char *out = NULL;
        CHECK_RC(gg_executor_run(ex, req, &out), 0);
        cJSON *r = out ? cJSON_Parse(out) : NULL;
        gg_free(out);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "stages");
        CHECK(cJSON_IsObject(st));
        CHECK(test_true(r, "zygote") == zygote);
        for (size_t i = 0; st && i < sizeof zygote_stages / sizeof zygote_stages[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, zygote_stages[i]);
            /* The zygote's steps only for its jobs; the host's always. */
            int host = i < 3 || i >= 14;
            if (zygote || host) {
                if (!cJSON_IsNumber(v) || v->valuedouble < 0)
                    fprintf(stderr, "stage %s: missing or negative\n", zygote_stages[i]);
                CHECK(cJSON_IsNumber(v) && v->valuedouble >= 0);
            } else {
                CHECK(v == NULL);
            }
        }
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(st, "total");
        const cJSON *run_ms = cJSON_GetObjectItemCaseSensitive(st, "run");
        CHECK(total && run_ms && total->valuedouble >= run_ms->valuedouble);
        cJSON_Delete(r);
    }
    char *out = NULL;
    CHECK_RC(gg_executor_run(ex, "{\"argv\": [\"" PY "\", \"-c\", \"pass\"]}", &out), 0);
    CHECK(out && !strstr(out, "\"stages\""));
    gg_free(out);
    out = NULL;
    CHECK_RC(gg_executor_run(ex, "{\"argv\": [\"" PY "\", \"-c\", \"pass\"], "
                                 "\"stage_times\": \"yes\"}", &out), GG_EINVAL);
    CHECK(strstr(gg_error_last(), "stage_times") != NULL);
    gg_free(out);
}

/* Jobs that end at once, two at a time: each is forked from the zygote (its report never
 * overtakes the reply that it started) and gets its own output. */
static void *quick_jobs(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < 20; i++) {
        char code[64];
        snprintf(code, sizeof code, "print(%d)", i);
        cJSON *r = run(code, NULL, 1);
        char want[16];
        snprintf(want, sizeof want, "%d\n", i);
        if (!r || !test_true(r, "zygote") || strcmp(test_str(r, "stdout"), want) != 0 ||
            test_num(r, "exit_code") != 0)
            (*bad)++;
        cJSON_Delete(r);
    }
    return NULL;
}

/* Two jobs that ran at the same time (their spans, read on the one monotonic clock, overlap)
 * never had the same network namespace. */
typedef struct span_job {
    unsigned long long cookie;
    double from, to;
} span_job;

static void *span_run(void *arg)
{
    span_job *sj = arg;
    cJSON *r = run("import socket, time\n"
                   "a = time.monotonic()\n"
                   "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "c = int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), 'little')\n"
                   "time.sleep(0.3)\n"
                   "print(c, a, time.monotonic())", NULL, 1);
    if (r) {
        if (sscanf(test_str(r, "stdout"), "%llu %lf %lf", &sj->cookie, &sj->from, &sj->to) != 3)
            sj->cookie = 0;
        cJSON_Delete(r);
    }
    return NULL;
}

static void test_running_jobs_apart(void)
{
    int overlapped = 0;
    for (int round = 0; round < 4; round++) {
        pthread_t t[2];
        span_job sj[2];
        memset(sj, 0, sizeof sj);
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, span_run, &sj[i]) == 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        CHECK(sj[0].cookie && sj[1].cookie);
        if (sj[0].from < sj[1].to && sj[1].from < sj[0].to) {
            overlapped++;
            CHECK(sj[0].cookie != sj[1].cookie);
        }
    }
    printf("# rounds whose two jobs ran at the same time: %d of 4\n", overlapped);
}

static void test_parallel_quick_jobs(void)
{
    pthread_t t[2];
    int bad[2] = { 0, 0 };
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, quick_jobs, &bad[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(bad[0] == 0 && bad[1] == 0);
}

/* Finds a child of this process whose command line starts with the zygote's script. */
static long find_zygote(void)
{
    DIR *d = opendir("/proc");
    long found = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && !found) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = '\0';
        const char *rp = strrchr(buf, ')');
        long ppid = 0;
        if (!rp || sscanf(rp + 2, "%*c %ld", &ppid) != 1 || ppid != (long)getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        f = fopen(path, "r");
        if (!f)
            continue;
        k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = '\0';
        /* argv[0] NUL "-c" NUL script */
        const char *script = buf + strlen(buf) + 1;
        script += strlen(script) + 1;
        if ((size_t)(script - buf) < k && strstr(script, "_libc = ctypes.CDLL"))
            found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

static void test_zygote_replaced(void)
{
    cJSON *r = run("print(1)", NULL, 1);
    cJSON_Delete(r);
    long z = find_zygote();
    CHECK(z > 0);
    if (z > 0)
        CHECK(kill((pid_t)z, SIGKILL) == 0);
    /* Dead (a zombie until the pool reaps it): its end of the socket is closed. */
    if (z > 0)
        CHECK(test_process_gone(z));
    r = run("print(2)", NULL, 1);
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "2\n");
        CHECK(test_true(r, "zygote"));
        cJSON_Delete(r);
    }
    long z2 = find_zygote();
    CHECK(z2 > 0 && z2 != z);
    /* Another environment gets another zygote. */
    r = run("import os; print(os.environ['GG_EXTRA'])", "other", 1);
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "other\n");
        CHECK(test_true(r, "zygote"));
        cJSON_Delete(r);
    }
}

/* Every zygote job has a network namespace of its own (made ahead), with loopback up. */
static void test_own_network_namespace(void)
{
    char seen[6][64];
    for (int i = 0; i < 6; i++) {
        seen[i][0] = '\0';
        cJSON *r = run("import os, socket\n"
                       "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
                       "c = socket.create_connection(s.getsockname(), timeout=5)\n"
                       "print(os.readlink('/proc/self/ns/net'))", NULL, 1);
        if (!r)
            continue;
        CHECK(test_true(r, "zygote"));
        CHECK(test_num(r, "exit_code") == 0);
        const char *out = test_str(r, "stdout");
        CHECK_CONTAINS(out, "net:[");
        /* The kernel reuses a freed namespace's number, so only the job before, whose
         * namespace lived while this one was made ahead, must differ (jobs sharing the
         * zygote's namespace would all read the same); and none is the host's. */
        if (i > 0)
            CHECK(strcmp(seen[i - 1], out) != 0);
        char host[64] = "";
        ssize_t hn = readlink("/proc/self/ns/net", host, sizeof host - 1);
        if (hn > 0) {
            host[hn] = '\0';
            CHECK(strncmp(out, host, strlen(host)) != 0);
        }
        snprintf(seen[i], sizeof seen[i], "%s", out);
        cJSON_Delete(r);
    }
}

/* The cookie of the network namespace a job's code ran in (unique, never reused by the
 * kernel), or 0. extra: code run before. */
static unsigned long long netns_cookie(const char *extra)
{
    char code[1024];
    snprintf(code, sizeof code,
             "import socket\n%s\n"
             "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "print(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), 'little'))",
             extra ? extra : "");
    cJSON *r = run(code, NULL, 1);
    unsigned long long c = 0;
    if (r) {
        CHECK(test_num(r, "exit_code") == 0);
        c = strtoull(test_str(r, "stdout"), NULL, 10);
        cJSON_Delete(r);
    }
    return c;
}

/* A job's network namespace is used again for a later job only when its job left nothing in
 * it: after a job that sent packets over loopback (here a connection, which leaves a
 * TIME_WAIT on its port) no later job is given that namespace, and each can bind the port;
 * after jobs that used no network, their namespaces come back (GRYPHGEN_NETNS_REUSE=0: never). */
static void test_network_namespace_reuse(void)
{
    int reuse = !getenv("GRYPHGEN_NETNS_REUSE") || strcmp(getenv("GRYPHGEN_NETNS_REUSE"), "0");
    unsigned long long seen[8];
    int repeats = 0;
    for (int i = 0; i < 8; i++) {
        seen[i] = netns_cookie(NULL);
        CHECK(seen[i] != 0);
        for (int j = 0; j < i; j++)
            repeats += seen[j] == seen[i];
    }
    printf("# network namespaces used again in 8 jobs: %d\n", repeats);
    CHECK(reuse ? repeats > 0 : repeats == 0);
    /* A connection over loopback, closed by the job's side first: a TIME_WAIT on its port. */
    cJSON *r = run("import socket\n"
                   "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n"
                   "c = socket.create_connection(l.getsockname(), timeout=5)\n"
                   "a, _ = l.accept(); port = c.getsockname()[1]\n"
                   "c.close(); a.recv(1); a.close()\n"
                   "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "print(int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 71, 8), 'little'),\n"
                   "      port)", NULL, 1);
    unsigned long long used = 0;
    int port = 0;
    if (r) {
        CHECK(test_num(r, "exit_code") == 0);
        CHECK(sscanf(test_str(r, "stdout"), "%llu %d", &used, &port) == 2);
        cJSON_Delete(r);
    }
    char bind_port[128];
    snprintf(bind_port, sizeof bind_port,
             "b = socket.socket(); b.bind(('127.0.0.1', %d)); b.close()", port);
    for (int i = 0; i < 6 && used && port; i++)
        CHECK(netns_cookie(bind_port) != used);
}

/* Where the embedded init program can be used (ggi_zygote_init_program), it is PID 1 of
 * every job's PID namespace and the job's process is PID 2; else PID 1 is the zygote's own
 * fork. Either way what a job leaves running ends with it, and its exit status, signal and
 * peak memory are reported. */
static void test_init_program(void)
{
    int expected = ggi_zygote_init_program() && !broken_init;
    printf("# PID 1 of zygote jobs: %s\n", expected ? "the init program" : "a fork of the zygote");
    cJSON *r = run("import os\n"
                   "print(open('/proc/1/comm').read().strip(), os.getpid())", NULL, 1);
    if (r) {
        CHECK(test_true(r, "zygote"));
        CHECK_STR(test_str(r, "stdout"), expected ? "gg-zinit 2\n" : "python3 2\n");
        cJSON_Delete(r);
    }
    /* A child left running (not waited for, in its own session) ends with the job: the
     * result comes although it would sleep for an hour. */
    r = run("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid(); time.sleep(3600); os._exit(0)\n"
            "print('left one')", NULL, 1);
    if (r) {
        CHECK_STR(test_str(r, "stdout"), "left one\n");
        CHECK(test_num(r, "exit_code") == 0);
        cJSON_Delete(r);
    }
    /* A signal the job sends itself ends it as it would anywhere (the job's process is not
     * its namespace's init, which the kernel would shield from it). */
    r = run("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", NULL, 1);
    if (r) {
        CHECK(test_num(r, "exit_code") == -1);
        CHECK(test_num(r, "signal") == SIGTERM);
        cJSON_Delete(r);
    }
    /* Peak memory: a job that holds 64 MiB peaks above that. */
    r = run("b = bytearray(64 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1", NULL, 1);
    if (r) {
        CHECK(test_num(r, "exit_code") == 0);
        CHECK(test_num(r, "max_rss_kb") > 60000);
        cJSON_Delete(r);
    }
}

int main(int argc, char **argv)
{
    /* "python-init": as where the init program cannot be used (GRYPHGEN_ZINIT=0);
     * "no-netns-reuse": every job's network namespace new (GRYPHGEN_NETNS_REUSE=0). */
    if (argc > 1 && strcmp(argv[1], "python-init") == 0)
        setenv("GRYPHGEN_ZINIT", "0", 1);
    if (argc > 1 && strcmp(argv[1], "no-netns-reuse") == 0)
        setenv("GRYPHGEN_NETNS_REUSE", "0", 1);
    /* "no-userns": the sandbox without user namespaces (GRYPHGEN_USERNS=0, root only). */
    if (argc > 1 && strcmp(argv[1], "no-userns") == 0) {
        if (geteuid() != 0) {
            printf("SKIP: the sandbox without user namespaces needs root\n");
            return 77;
        }
        setenv("GRYPHGEN_USERNS", "0", 1);
    }
    /* "broken-init": an init program the kernel will not execute; the zygotes fall back to
     * a fork of themselves as PID 1 and every job still runs. */
    static const char not_elf[] = "#!/nonexistent/interpreter\n";
    if (argc > 1 && strcmp(argv[1], "broken-init") == 0) {
        broken_init = 1;
        ggi_zygote_set_init_program(not_elf, sizeof not_elf - 1);
    }
    if (!ggi_sandbox_probe()->namespaces) {
        printf("SKIP: no namespace sandbox here: %s\n", ggi_sandbox_probe()->namespaces_why);
        return 77;
    }
    if (access(PY, X_OK) != 0) {
        printf("SKIP: %s not found\n", PY);
        return 77;
    }
    gg_executor_options o;
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.isolation = "namespaces";
    if (gg_executor_new(&ex, &o) != 0) {
        fprintf(stderr, "gg_executor_new: %s\n", gg_error_last());
        return 1;
    }
    test_init_program();
    test_network_namespace_reuse();
    test_same_as_direct();
    test_no_state_between_jobs();
    test_no_kernel_state_between_jobs();
    test_user_keyring_apart(1);
    test_user_keyring_apart(0);
    test_own_network_namespace();
    test_stage_times();
    test_parallel_quick_jobs();
    test_running_jobs_apart();
    test_zygote_replaced();
    gg_executor_destroy(&ex);
    CHECK(find_zygote() == 0);
    return test_exit();
}
