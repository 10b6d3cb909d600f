/*
 * test_container_engine.c - the "container" executor against a real engine (Podman's
 * Docker-compatible service, started by run_engine_tests.sh, which passes its socket in
 * GG_CONTAINER_SOCKET and the image in GG_CONTAINER_IMAGE). Ordinary jobs (files, stdin,
 * env, exit codes, signals, the interpreter mapping), failures (missing program or image),
 * the adversarial jobs of the isolation issue, each checked on the host side too, C jobs in
 * the C image (GG_CONTAINER_C_IMAGE: passing, failing, not compiling, and adversarial), the
 * container's peak memory as max_rss_kb, and that no job leaves a container behind (listed by
 * label through the Engine API).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gryphgen.h>

#include "core/ggi.h"
#include "testutil.h"

static const char *sock_path;
static const char *image;
static const char *c_image; /* GG_CONTAINER_C_IMAGE: the C image, or NULL (C tests skipped) */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    return ggi_buf_append(u, p, s * n) ? 0 : s * n;
}

/* GET path on the engine; the parsed JSON reply or NULL. */
static cJSON *engine_get(const char *path)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    ggi_buf b = GGI_BUF_INIT;
    char url[512];
    snprintf(url, sizeof url, "http://engine/v1.41%s", path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    cJSON *j = cc == CURLE_OK && b.data ? cJSON_Parse(b.data) : NULL;
    ggi_buf_free(&b);
    return j;
}

/* Containers (any state) labelled gryphgen.job=1; -1 when the engine does not answer. */
static int our_containers(cJSON **list)
{
    cJSON *j = engine_get("/containers/json?all=1&filters=%7B%22label%22%3A%5B%22"
                          "gryphgen.job%3D1%22%5D%7D");
    int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    if (list)
        *list = j;
    else
        cJSON_Delete(j);
    return n;
}

static gg_executor_t *make(void)
{
    gg_executor_options o = GG_EXECUTOR_OPTIONS_INIT;
    o.backend = "container";
    o.container_socket = sock_path;
    char images[512];
    snprintf(images, sizeof images, "python=%s%s%s", image, c_image ? ",c=" : "",
             c_image ? c_image : "");
    o.container_images = images;
    /* Jobs that must end by themselves get a guard against a hang, not the 10 s default a
     * container's start on a busy machine eats into; the tests of the timeout set their own. */
    o.default_timeout_s = 120;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &o), GG_OK);
    return ex;
}

/* Runs a request; the parsed result, or NULL (with *rc_out set) when run failed. */
static cJSON *run(gg_executor_t *ex, const char *req, int *rc_out)
{
    char *res = NULL;
    int rc = gg_executor_run(ex, req, &res);
    if (rc_out)
        *rc_out = rc;
    if (rc) {
        if (!rc_out)
            fprintf(stderr, "run failed %d: %s\n", rc, gg_error_last());
        return NULL;
    }
    if (getenv("GG_CONTAINER_DEBUG"))
        fprintf(stderr, "result: %.2000s\n", res);
    cJSON *j = cJSON_Parse(res);
    CHECK(j != NULL);
    gg_free(res);
    CHECK(our_containers(NULL) == 0); /* every job removes its container */
    return j;
}

/* A request running a Python program given as text (escaped here). */
static char *py_request(const char *program, const char *extra)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(o, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString("/usr/bin/python3"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(program));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (extra && *extra) {
        size_t n = strlen(s);
        char *t = malloc(n + strlen(extra) + 3);
        memcpy(t, s, n - 1);
        sprintf(t + n - 1, ", %s}", extra);
        free(s);
        s = t;
    }
    return s;
}

static cJSON *run_py(gg_executor_t *ex, const char *program, const char *extra)
{
    char *req = py_request(program, extra);
    cJSON *r = run(ex, req, NULL);
    free(req);
    return r;
}

static const char *str(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static int truth(const cJSON *r, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, k));
}

static void test_basics(gg_executor_t *ex)
{
    /* Files, stdin, env, cwd, the user, argv[0] mapped from a host interpreter path. */
    cJSON *r = run(ex,
        "{\"argv\": [\"/root/.pyenv/versions/3.11.9/bin/python3.11\", \"main.py\", \"arg1\"],"
        " \"files\": [{\"path\": \"main.py\", \"content\": \"import os, sys\\n"
        "from pkg.mod import V\\nprint(V, sys.argv[1], os.getcwd(), os.getuid(), "
        "os.environ['GREETING'], os.environ['HOME'], sys.stdin.read())\\n"
        "print('to-err', file=sys.stderr)\\nopen('out.txt', 'w').write('w')\\nsys.exit(3)\\n\"},"
        " {\"path\": \"pkg/mod.py\", \"content\": \"V = 42\\n\"}, {\"path\": \"pkg/__init__.py\","
        " \"content\": \"\"}],"
        " \"env\": {\"GREETING\": \"hi\"}, \"stdin\": \"from-stdin\"}", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "42 arg1 /work 65534 hi /work from-stdin\n");
    CHECK_STR(str(r, "stderr"), "to-err\n");
    CHECK(num(r, "exit_code") == 3 && num(r, "signal") == 0);
    CHECK(!truth(r, "timed_out") && !truth(r, "oom_killed") && !truth(r, "stdout_truncated"));
    CHECK_STR(str(r, "isolation"), "container");
    CHECK(num(r, "duration_ms") > 0);
    CHECK(num(r, "max_rss_kb") > 0);
    cJSON_Delete(r);

    /* max_rss_kb is the container's peak memory: a job that touches 64 MiB peaks above it,
     * a small one well below. */
    r = run_py(ex, "b = bytearray(64 << 20)\nprint(len(b))\n", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "67108864\n");
    CHECK(num(r, "max_rss_kb") > 60000);
    CHECK(!strstr(str(r, "stderr"), "GG-PEAK"));
    double big = num(r, "max_rss_kb");
    cJSON_Delete(r);
    r = run_py(ex, "print('small')\n", NULL);
    CHECK(r != NULL);
    CHECK(num(r, "max_rss_kb") > 0 && num(r, "max_rss_kb") < big - 30000);
    cJSON_Delete(r);

    /* The host's environment does not leak in; a signal is reported as one. */
    setenv("GG_HOST_SECRET_ENV", "leak", 1);
    r = run_py(ex, "import os, signal\nprint(sorted(os.environ), flush=True)\n"
                   "os.kill(os.getpid(), signal.SIGSEGV)\n", NULL);
    CHECK(r != NULL);
    CHECK(str(r, "stdout") && !strstr(str(r, "stdout"), "GG_HOST_SECRET_ENV"));
    CHECK_CONTAINS(str(r, "stdout"), "'PATH'");
    CHECK(num(r, "exit_code") == -1 && num(r, "signal") == SIGSEGV);
    CHECK_STR(str(r, "signal_name"), "SIGSEGV");
    cJSON_Delete(r);

    /* Read-only root, no capabilities, no new privileges. */
    r = run_py(ex, "import os\n"
                   "try:\n    open('/etc/x', 'w'); print('rootfs-writable')\n"
                   "except OSError as e:\n    print('rootfs', e.errno)\n"
                   "for l in open('/proc/self/status'):\n"
                   "    if l.startswith(('CapEff', 'CapBnd', 'NoNewPrivs')): print(l.split()[1])\n",
               NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "rootfs 30\n0000000000000000\n0000000000000000\n1\n");
    cJSON_Delete(r);

    /* A program that is not in the image; an image that is not in the engine. */
    int rc = 0;
    r = run(ex, "{\"argv\": [\"/usr/bin/nope\"], \"language\": \"python\"}", &rc);
    CHECK(r == NULL);
    CHECK(rc == GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "nope");
    CHECK(our_containers(NULL) == 0);
    r = run(ex, "{\"argv\": [\"python3\"], \"image\": \"gryphgen-missing:none\"}", &rc);
    CHECK(r == NULL);
    CHECK(rc == GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "gryphgen-missing");
    CHECK(our_containers(NULL) == 0);
}

/* A caller's workdir (a workspace task's copy: here new 0777 directories holding hard links
 * to root's read-only files, as lib/workspace makes them) bound at /work: the job sees and
 * adds files, the request's files replace what is there, the base's file cannot be written
 * through its link. (The image has a shell but no coreutils: builtins only.) */
static void test_workdir(gg_executor_t *ex)
{
    char tmp[] = "/tmp/gg-cworkdir-XXXXXX";
    if (!mkdtemp(tmp)) {
        CHECK(0);
        return;
    }
    char cmd[2048], req[4096], p[600];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; mkdir -p base/src; printf 'base\n' > base/b.txt; "
             "printf 'old\n' > base/src/r.txt; chmod 444 base/b.txt base/src/r.txt; "
             "mkdir -p copy/src; chmod 777 copy copy/src; ln base/b.txt copy/b.txt; "
             "ln base/src/r.txt copy/src/r.txt", tmp);
    CHECK(system(cmd) == 0);
    snprintf(req, sizeof req,
             "{\"argv\": [\"/bin/sh\", \"-c\", \"pwd; for f in b.txt src/r.txt new/g.txt; do read x < $f; echo $x; done; "
             "echo made > made.txt; echo evil >> b.txt; echo rc=$?\"], "
             "\"language\": \"python\", \"workdir\": \"%s/copy\", \"files\": [{\"path\": \"src/r.txt\", "
             "\"content\": \"new\\n\"}, {\"path\": \"new/g.txt\", \"content\": \"g\\n\"}]}",
             tmp);
    cJSON *r = run(ex, req, NULL);
    CHECK(r != NULL);
    if (r) {
        CHECK_CONTAINS(str(r, "stdout"), "/work\nbase\nnew\ng\n");
        CHECK(str(r, "stdout") && !strstr(str(r, "stdout"), "rc=0"));
        CHECK_CONTAINS(str(r, "stderr"), "ermission denied");
    }
    cJSON_Delete(r);
    snprintf(p, sizeof p, "%s/copy/made.txt", tmp);
    FILE *f = fopen(p, "r");
    char line[64] = "";
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "made\n"));
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/base/b.txt", tmp);
    f = fopen(p, "r");
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "base\n"));
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/base/src/r.txt", tmp);
    f = fopen(p, "r");
    CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "old\n"));
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0);
}

/* ---- the adversarial jobs ---- */

static void test_network(gg_executor_t *ex)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t al = sizeof a;
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 8) == 0);
    CHECK(getsockname(ls, (struct sockaddr *)&a, &al) == 0);
    char prog[1024];
    /* Every address the host may be reached by from a default container network. */
    snprintf(prog, sizeof prog,
             "import socket\nok = 0\n"
             "for h in ('127.0.0.1', '10.88.0.1', '172.17.0.1', '10.0.2.2'):\n"
             "    s = socket.socket(); s.settimeout(1)\n"
             "    try:\n        s.connect((h, %d)); ok += 1\n    except OSError:\n        pass\n"
             "print('connected', ok)\n"
             "import os\nprint(sorted(os.listdir('/sys/class/net')))\n",
             ntohs(a.sin_port));
    cJSON *r = run_py(ex, prog, NULL);
    CHECK(r != NULL);
    CHECK_CONTAINS(str(r, "stdout"), "connected 0\n");
    CHECK_CONTAINS(str(r, "stdout"), "['lo']");
    int c = accept(ls, NULL, NULL);
    CHECK(c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)); /* nothing reached the host */
    if (c >= 0)
        close(c);
    close(ls);
    cJSON_Delete(r);
}

static void test_secret(gg_executor_t *ex)
{
    char path[] = "/tmp/gg-secret-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "TOPSECRET", 9) == 9);
    close(fd);
    char prog[512];
    snprintf(prog, sizeof prog,
             "for p in ('%s', '/root/.bashrc', '/etc/shadow'):\n"
             "    try:\n        print(open(p).read())\n"
             "    except OSError as e:\n        print(type(e).__name__)\n"
             "try:\n    open('%s', 'w').write('overwritten')\nexcept OSError as e:\n"
             "    print('write', type(e).__name__)\n", path, path);
    cJSON *r = run_py(ex, prog, NULL);
    CHECK(r != NULL);
    CHECK(str(r, "stdout") && !strstr(str(r, "stdout"), "TOPSECRET"));
    CHECK_CONTAINS(str(r, "stdout"), "FileNotFoundError\nFileNotFoundError\nFileNotFoundError\n");
    char buf[32] = "";
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) == 9);
    CHECK_STR(buf, "TOPSECRET"); /* untouched on the host */
    close(fd);
    unlink(path);
    cJSON_Delete(r);
}

/* Live processes on the host (any container) whose name or command line holds marker. A
 * marker holds this test's pid, so runs of other tests and of other builds do not count. */
static int marked_processes(const char *marker)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        long pid = strtol(e->d_name, NULL, 10);
        char state = 0, comm[32], path[64], buf[4096];
        long ppid = 0;
        if (pid <= 0 || test_proc_stat(pid, &state, &ppid, comm) != 0 || state == 'Z')
            continue;
        if (strstr(comm, marker)) {
            n++;
            continue;
        }
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < k; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[k] = '\0';
        n += strstr(buf, marker) != NULL;
    }
    if (d)
        closedir(d);
    return n;
}

static int marked_gone(void *marker)
{
    return marked_processes(marker) == 0;
}

/* Waits (up to the hang guard) until no process carries marker. */
static int marked_processes_gone(const char *marker)
{
    return test_wait_for(marked_gone, (void *)marker);
}

static void test_fork_bomb(gg_executor_t *ex)
{
    /* The children sleep past the test's waits: only the container's end ends them. */
    char marker[32], code[512];
    snprintf(marker, sizeof marker, "ggforkbomb%ld", (long)getpid());
    snprintf(code, sizeof code,
        "import os, time\nn = 0\nerr = ''\n"
        "for i in range(10000):\n"
        "    try:\n        pid = os.fork()\n"
        "    except OSError as e:\n        err = type(e).__name__; break\n"
        "    if pid == 0:\n        time.sleep(600); os._exit(0)\n"
        "    n += 1\n"
        "print('forked', n, err, flush=True)\n# %s\n", marker);
    cJSON *r = run_py(ex, code, "\"limits\": {\"nproc\": 24, \"timeout_s\": 120}");
    CHECK(r != NULL);
    const char *out = str(r, "stdout");
    int n = -1;
    CHECK(out && sscanf(out, "forked %d", &n) == 1);
    CHECK(n >= 1 && n < 24);
    CHECK_CONTAINS(out, "BlockingIOError");
    CHECK(!truth(r, "timed_out"));
    cJSON_Delete(r);
    /* The sleeping children went with the container. */
    CHECK(marked_processes_gone(marker));
}

static void test_memory_bomb(gg_executor_t *ex)
{
    cJSON *r = run_py(ex, "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n",
                      "\"limits\": {\"memory_mb\": 64, \"timeout_s\": 120}");
    CHECK(r != NULL);
    CHECK(truth(r, "oom_killed"));
    CHECK(num(r, "signal") == SIGKILL);
    CHECK(!truth(r, "timed_out"));
    cJSON_Delete(r);
}

static void test_disk_fill(gg_executor_t *ex)
{
    cJSON *r = run_py(ex,
        "import os\ntotal = 0\nerr = 0\n"
        "for d in ('/work', '/tmp'):\n"
        "    for i in range(200):\n"
        "        try:\n"
        "            with open('%s/f%d' % (d, i), 'wb') as f: f.write(b'x' * (1 << 20))\n"
        "            total += 1\n"
        "        except OSError as e:\n            err = e.errno; break\n"
        "    print(d, total, err)\n    total = 0\n",
        "\"limits\": {\"fsize_mb\": 8, \"memory_mb\": 256}");
    CHECK(r != NULL);
    int n1 = -1, e1 = -1, n2 = -1, e2 = -1;
    const char *out = str(r, "stdout");
    CHECK(out && sscanf(out, "/work %d %d\n/tmp %d %d", &n1, &e1, &n2, &e2) == 4);
    CHECK(n1 >= 6 && n1 <= 8 && e1 == ENOSPC);
    CHECK(n2 >= 6 && n2 <= 8 && e2 == ENOSPC);
    CHECK(num(r, "exit_code") == 0);
    cJSON_Delete(r);
}

static void test_output_flood(gg_executor_t *ex)
{
    cJSON *r = run_py(ex,
        "import sys, os\nb = b'y' * 65536\n"
        "for i in range(320):\n    os.write(1, b)\n"
        "for i in range(32):\n    os.write(2, b'e' * 65536)\n",
        "\"limits\": {\"max_output\": 5000}");
    CHECK(r != NULL);
    const char *out = str(r, "stdout"), *err = str(r, "stderr");
    CHECK(out && strlen(out) == 5000 && out[0] == 'y' && out[4999] == 'y');
    CHECK(err && strlen(err) == 5000 && err[0] == 'e');
    CHECK(truth(r, "stdout_truncated") && truth(r, "stderr_truncated"));
    CHECK(num(r, "exit_code") == 0 && !truth(r, "timed_out"));
    cJSON_Delete(r);
}

static void test_timeout(gg_executor_t *ex)
{
    /* Endless: only the timeout ends it, and not before its time. The limit counts from the
     * container's start, which a busy machine can make take seconds: 5 s leave the program
     * room to print before it spins. */
    cJSON *r = run_py(ex, "print('spinning', flush=True)\nwhile True:\n    pass\n",
                      "\"limits\": {\"timeout_s\": 5}");
    CHECK(r != NULL);
    CHECK(truth(r, "timed_out"));
    CHECK(num(r, "signal") == SIGKILL);
    CHECK_STR(str(r, "stdout"), "spinning\n");
    CHECK(num(r, "duration_ms") >= 4900);
    cJSON_Delete(r);
}

static void test_orphans(gg_executor_t *ex)
{
    /* Children that start their own sessions and outlive the job's main process (and,
     * were they left, the test's waits). */
    char marker[32], code[512];
    snprintf(marker, sizeof marker, "ggorphan%ld", (long)getpid());
    snprintf(code, sizeof code,
        "import subprocess, sys\n"
        "for i in range(3):\n"
        "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # %s'],"
        " start_new_session=True)\n"
        "print('spawned')\n", marker);
    cJSON *r = run_py(ex, code, NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "spawned\n");
    cJSON_Delete(r);
    CHECK(marked_processes_gone(marker));
}

static void test_kill_all(gg_executor_t *ex)
{
    /* A host process of the job's uid, and this test itself, survive kill(-1, SIGKILL). */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t sentinel = fork();
    if (sentinel == 0) {
        close(ready[0]);
        if (setgid(65534) || setuid(65534))
            _exit(1);
        if (write(ready[1], "u", 1) != 1)
            _exit(3);
        pause();
        _exit(0);
    }
    CHECK(sentinel > 0);
    /* It runs as the job's uid before the job starts. */
    close(ready[1]);
    char u = 0;
    CHECK(read(ready[0], &u, 1) == 1 && u == 'u');
    close(ready[0]);
    cJSON *r = run_py(ex, "import os, signal, time\n"
                          "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n"
                          "    print('kill', e)\n"
                          "time.sleep(0.2)\nprint('still here')\n", NULL);
    CHECK(r != NULL);
    CHECK_CONTAINS(str(r, "stdout"), "still here");
    cJSON_Delete(r);
    int st = 0;
    CHECK(waitpid(sentinel, &st, WNOHANG) == 0); /* alive */
    kill(sentinel, SIGKILL);
    waitpid(sentinel, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK(our_containers(NULL) == 0);
}

/* ---- interrupt and concurrency ---- */

typedef struct runner {
    gg_executor_t *ex;
    const char *req;
    int rc;
    char *res;
} runner;

static void *run_thread(void *p)
{
    runner *r = p;
    r->rc = gg_executor_run(r->ex, r->req, &r->res);
    return NULL;
}

/* Our one container runs (its labels checked on the way). */
static int container_running(void *arg)
{
    (void)arg;
    cJSON *list = NULL;
    int running = 0;
    if (our_containers(&list) == 1) {
        const cJSON *c = cJSON_GetArrayItem(list, 0);
        const char *state = str(c, "State");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(c, "Labels");
        const char *eid = str(labels, "gryphgen.executor");
        if (state && !strcmp(state, "running")) {
            running = 1;
            CHECK(eid && strlen(eid) == 16);
        }
    }
    cJSON_Delete(list);
    return running;
}

static void test_interrupt(gg_executor_t *ex)
{
    /* The job would outlive the test's waits: only the interrupt can end it. */
    char *req = py_request("import time\ntime.sleep(900)\n", "\"limits\": {\"timeout_s\": 1200}");
    runner rn = { ex, req, 1, NULL };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_thread, &rn) == 0);
    /* Wait until the container runs, and check its labels on the way. */
    CHECK(test_wait_for(container_running, NULL));
    CHECK_RC(gg_executor_interrupt(ex), GG_OK);
    pthread_join(t, NULL);
    CHECK(rn.rc == GG_ECANCELLED);
    CHECK(rn.res == NULL);
    CHECK(our_containers(NULL) == 0);
    free(req);

    /* Two jobs at once on one executor. */
    char *r1 = py_request("import time; time.sleep(0.3); print('one')", NULL);
    char *r2 = py_request("import time; time.sleep(0.3); print('two')", NULL);
    runner a = { ex, r1, 1, NULL }, b = { ex, r2, 1, NULL };
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, run_thread, &a) == 0);
    CHECK(pthread_create(&tb, NULL, run_thread, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.rc == GG_OK && b.rc == GG_OK);
    CHECK_CONTAINS(a.res, "\"stdout\":\"one\\n\"");
    CHECK_CONTAINS(b.res, "\"stdout\":\"two\\n\"");
    gg_free(a.res);
    gg_free(b.res);
    free(r1);
    free(r2);
    CHECK(our_containers(NULL) == 0);
}

/* ---- C through the container backend ---- */

/* A C job as the task format makes it: the program is compiled by $GG_CC (the host's path
 * of the compiler) inside the image and run; language "c" picks the image. */
static cJSON *run_c(gg_executor_t *ex, const char *source, const char *limits)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(o, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/sh"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(
        "\"$GG_CC\" -std=c11 -Wall -o prog main.c -lm || { echo COMPILE-FAILED >&2; exit 3; }\n"
        "exec ./prog"));
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path", "main.c");
    cJSON_AddStringToObject(f, "content", source);
    cJSON_AddItemToArray(files, f);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(o, "env"), "GG_CC",
                          cJSON_CreateString("/usr/bin/cc"));
    cJSON_AddStringToObject(o, "language", "c");
    if (limits)
        cJSON_AddItemToObject(o, "limits", cJSON_Parse(limits));
    char *req = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON *r = run(ex, req, NULL);
    free(req);
    return r;
}

static void test_c(gg_executor_t *ex)
{
    if (!c_image) {
        fprintf(stderr, "SKIP (C part): GG_CONTAINER_C_IMAGE is not set\n");
        return;
    }
    /* A passing program (libm linked), a failing one, one that does not compile. */
    cJSON *r = run_c(ex, "#include <math.h>\n#include <stdio.h>\n"
                         "int main(void) { printf(\"%.3f\\n\", sqrt(2.0)); return 0; }\n", NULL);
    CHECK(r != NULL);
    CHECK_STR(str(r, "stdout"), "1.414\n");
    CHECK(num(r, "exit_code") == 0);
    CHECK_STR(str(r, "image"), c_image);
    cJSON_Delete(r);
    r = run_c(ex, "#include <assert.h>\nint add(int a, int b) { return a - b; }\n"
                  "int main(void) { assert(add(2, 3) == 5); return 0; }\n", NULL);
    CHECK(r != NULL);
    CHECK(num(r, "exit_code") == -1);
    CHECK_STR(str(r, "signal_name"), "SIGABRT");
    CHECK_CONTAINS(str(r, "stderr"), "Assertion");
    cJSON_Delete(r);
    r = run_c(ex, "int main(void) { return nope; }\n", NULL);
    CHECK(r != NULL);
    CHECK(num(r, "exit_code") == 3);
    CHECK_CONTAINS(str(r, "stderr"), "error");
    CHECK_CONTAINS(str(r, "stderr"), "COMPILE-FAILED");
    cJSON_Delete(r);
    /* The analysis job's form: the compiler itself as argv[0], found by its name. */
    r = run(ex, "{\"argv\": [\"/usr/bin/cc\", \"-std=c11\", \"-fsyntax-only\", \"s.c\"], "
                "\"files\": [{\"path\": \"s.c\", \"content\": \"int f(void) { return 1 }\"}]}",
            NULL);
    CHECK(r != NULL);
    CHECK(num(r, "exit_code") == 1);
    CHECK_CONTAINS(str(r, "stderr"), "expected");
    cJSON_Delete(r);

    /* Adversarial, in C: a host secret, the host's listener, a fork bomb. */
    char path[] = "/tmp/gg-secret-c-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "TOPSECRET", 9) == 9);
    close(fd);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 4) == 0 &&
          getsockname(ls, (struct sockaddr *)&a, &al) == 0);
    char marker[16];
    snprintf(marker, sizeof marker, "ggcfb%ld", (long)getpid() % 10000000);
    char src[3072];
    snprintf(src, sizeof src,
        "#define _GNU_SOURCE\n#include <arpa/inet.h>\n#include <stdio.h>\n#include <string.h>\n"
        "#include <sys/prctl.h>\n#include <sys/socket.h>\n#include <unistd.h>\n"
        "int main(void) {\n"
        "  printf(\"secret %%s\\n\", fopen(\"%s\", \"r\") ? \"READ\" : \"hidden\");\n"
        "  printf(\"write %%s\\n\", fopen(\"/etc/gg-planted\", \"w\") ? \"DONE\" : \"denied\");\n"
        "  int s = socket(AF_INET, SOCK_STREAM, 0);\n"
        "  struct sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET;\n"
        "  a.sin_port = htons(%d); a.sin_addr.s_addr = htonl(0x7f000001);\n"
        "  printf(\"connect %%s\\n\", connect(s, (void *)&a, sizeof a) == 0 ? \"DONE\" : \"failed\");\n"
        "  fflush(stdout);\n"
        "  int n = 0;\n"
        "  for (int i = 0; i < 10000; i++) {\n"
        "    pid_t p = fork();\n"
        "    if (p < 0) break;\n"
        "    if (p == 0) { prctl(PR_SET_NAME, \"%s\"); sleep(600); _exit(0); }\n"
        "    n++;\n"
        "  }\n"
        "  printf(\"forked %%d\\n\", n);\n"
        "  return 0;\n"
        "}\n", path, ntohs(a.sin_port), marker);
    r = run_c(ex, src, "{\"nproc\": 24, \"timeout_s\": 120}");
    CHECK(r != NULL);
    const char *out = str(r, "stdout");
    CHECK_CONTAINS(out, "secret hidden\nwrite denied\nconnect failed\n");
    int n = -1;
    const char *fk = out ? strstr(out, "forked ") : NULL;
    CHECK(fk && sscanf(fk, "forked %d", &n) == 1 && n >= 1 && n < 24);
    CHECK(!truth(r, "timed_out"));
    cJSON_Delete(r);
    int c = accept(ls, NULL, NULL);
    CHECK(c < 0); /* nothing reached the host's listener */
    if (c >= 0)
        close(c);
    close(ls);
    CHECK(access("/etc/gg-planted", F_OK) < 0);
    char buf[16] = "";
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf - 1) == 9);
    close(fd);
    unlink(path);
    CHECK(marked_processes_gone(marker)); /* the sleeping children went too */
}

int main(void)
{
    sock_path = getenv("GG_CONTAINER_SOCKET");
    image = getenv("GG_CONTAINER_IMAGE");
    c_image = getenv("GG_CONTAINER_C_IMAGE");
    if (c_image && !*c_image)
        c_image = NULL;
    if (!sock_path || !image) {
        fprintf(stderr, "SKIP: GG_CONTAINER_SOCKET and GG_CONTAINER_IMAGE are not set "
                        "(run through run_engine_tests.sh)\n");
        return 77;
    }
    CHECK_RC(gg_init(), GG_OK);
    CHECK(our_containers(NULL) == 0);
    gg_executor_t *ex = make();
    if (!ex)
        return test_exit();
    const char *only = getenv("GG_CONTAINER_ONLY");
#define RUN(name)                                                                      \
    do {                                                                               \
        if (!only || strstr(only, #name)) {                                            \
            double t_ = now_ms();                                                      \
            test_##name(ex);                                                           \
            fprintf(stderr, "%-12s %6.0f ms\n", #name, now_ms() - t_);                 \
        }                                                                              \
    } while (0)
    RUN(basics);
    RUN(workdir);
    RUN(network);
    RUN(secret);
    RUN(fork_bomb);
    RUN(memory_bomb);
    RUN(disk_fill);
    RUN(output_flood);
    RUN(timeout);
    RUN(orphans);
    RUN(kill_all);
    RUN(interrupt);
    RUN(c);
    gg_executor_destroy(&ex);
    CHECK(our_containers(NULL) == 0);
    return test_exit();
}
