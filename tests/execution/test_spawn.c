/*
 * test_spawn.c - the process-spawning core (exit codes, signals, timeouts, output floods,
 * stdin, process-group cleanup, cancel, rlimits, program lookup, UTF-8 cleaning) and the
 * resolution of runtimes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>

#include "execution/runtimes.h"
#include "execution/spawn.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static const char *const base_env[] = { "PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL };

static int run(const char *const *argv, double timeout_s, ggi_spawn_result *r)
{
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = base_env;
    o.timeout_s = timeout_s;
    o.max_stdout = 1 << 16;
    o.max_stderr = 1 << 16;
    memset(r, 0, sizeof *r);
    return ggi_spawn_run(&o, r);
}

static void test_exit_codes(void)
{
    ggi_spawn_result r;
    const char *ok[] = { "/bin/sh", "-c", "exit 0", NULL };
    CHECK_RC(run(ok, 60, &r), 0);
    CHECK(r.exit_code == 0 && r.term_signal == 0 && !r.timed_out && !r.cancelled);
    CHECK(r.out.data && r.out.len == 0);
    ggi_spawn_result_free(&r);
    CHECK(r.out.data == NULL);

    const char *three[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    CHECK_RC(run(three, 60, &r), 0);
    CHECK(r.exit_code == 3);
    CHECK_STR(r.out.data, "out\n");
    CHECK_STR(r.err.data, "err\n");
    CHECK(r.max_rss_kb > 0);
    CHECK(r.duration_ms > 0);
    ggi_spawn_result_free(&r);
}

static void test_signal(void)
{
    ggi_spawn_result r;
    const char *segv[] = { "/bin/sh", "-c", "kill -SEGV $$", NULL };
    CHECK_RC(run(segv, 60, &r), 0);
    CHECK(r.exit_code == -1);
    CHECK(r.term_signal == SIGSEGV);
    ggi_spawn_result_free(&r);
    char name[24];
    ggi_spawn_signal_name(SIGSEGV, name);
    CHECK_STR(name, "SIGSEGV");
    ggi_spawn_signal_name(SIGKILL, name);
    CHECK_STR(name, "SIGKILL");
}

static void test_timeout(void)
{
    ggi_spawn_result r;
    const char *busy[] = { "/bin/sh", "-c", "while :; do :; done", NULL };
    double t0 = ggi_now_ms();
    CHECK_RC(run(busy, 0.5, &r), 0);
    double took = ggi_now_ms() - t0;
    /* The loop never ends by itself: the timeout ended it, and not before its time. */
    CHECK(r.timed_out == 1);
    CHECK(r.term_signal == SIGKILL && r.exit_code == -1);
    CHECK(took >= 450 && r.duration_ms >= 450);
    ggi_spawn_result_free(&r);
}

static void test_flood(void)
{
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    const char *argv[] = { PY, "-c",
                           "import sys\nb = b'x' * (1 << 20)\n"
                           "for _ in range(100): sys.stdout.buffer.write(b)\n"
                           "sys.stderr.write('e' * 5000)\n",
                           NULL };
    o.argv = argv;
    o.envp = base_env;
    o.timeout_s = 120; /* a guard: the flood ends by itself */
    o.max_stdout = 1000;
    o.max_stderr = 100;
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.exit_code == 0 && !r.timed_out);
    CHECK(r.out.len == 1000 && r.out_truncated);
    CHECK(r.out.data && r.out.data[0] == 'x' && r.out.data[999] == 'x');
    CHECK(r.err.len == 100 && r.err_truncated);
    ggi_spawn_result_free(&r);

    /* An endless flood ends with the timeout (killed, not blocked on a full pipe); 3 s leave a
     * busy machine room to start yes and fill the cap first. */
    const char *yes[] = { "yes", NULL };
    o.argv = yes;
    o.timeout_s = 3;
    memset(&r, 0, sizeof r);
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.timed_out && r.term_signal == SIGKILL);
    CHECK(r.out_truncated && r.out.len == 1000);
    ggi_spawn_result_free(&r);
}

static void test_stdin(void)
{
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    const char *cat[] = { "cat", NULL };
    o.argv = cat;
    o.envp = base_env;
    o.timeout_s = 60;
    o.max_stdout = 1 << 20;
    o.stdin_data = "hello\nworld";
    o.stdin_len = strlen(o.stdin_data);
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK_STR(r.out.data, "hello\nworld");
    ggi_spawn_result_free(&r);

    /* Larger than any pipe buffer, through cat and back. */
    size_t n = 3u << 20;
    char *big = malloc(n);
    CHECK(big != NULL);
    if (!big)
        return;
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    o.stdin_data = big;
    o.stdin_len = n;
    o.max_stdout = n;
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.out.len == n && !r.out_truncated && memcmp(r.out.data, big, n) == 0);
    ggi_spawn_result_free(&r);

    /* A child that never reads stdin and exits: no SIGPIPE in the host, no hang. */
    const char *no_read[] = { "/bin/sh", "-c", "exit 7", NULL };
    o.argv = no_read;
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.exit_code == 7);
    ggi_spawn_result_free(&r);
    free(big);

    /* No stdin_data: /dev/null, so a reader sees EOF at once. */
    const char *wc[] = { "wc", "-c", NULL };
    CHECK_RC(run(wc, 60, &r), 0);
    CHECK_STR(r.out.data, "0\n");
    ggi_spawn_result_free(&r);
}

static void test_not_found(void)
{
    ggi_spawn_result r;
    const char *missing[] = { "gg-no-such-interpreter", "-c", "1", NULL };
    CHECK_RC(run(missing, 60, &r), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "gg-no-such-interpreter");
    CHECK(r.out.data == NULL);
    const char *missing_path[] = { "/nonexistent/dir/python9", NULL };
    CHECK_RC(run(missing_path, 60, &r), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "/nonexistent/dir/python9");
    const char *not_exec[] = { "/etc/hostname", NULL };
    CHECK_RC(run(not_exec, 60, &r), GG_EIO);
    CHECK_CONTAINS(gg_error_last(), "/etc/hostname");

    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    CHECK_RC(ggi_spawn_run(&o, &r), GG_EINVAL);
    CHECK_RC(ggi_spawn_run(NULL, &r), GG_EINVAL);
    const char *empty[] = { "", NULL };
    o.argv = empty;
    CHECK_RC(ggi_spawn_run(&o, &r), GG_EINVAL);

    char *p = NULL;
    CHECK_RC(ggi_spawn_find_program("sh", "/nonexistent:/usr/bin:/bin", &p), 0);
    CHECK(p && p[0] == '/' && strstr(p, "/sh"));
    free(p);
    CHECK_RC(ggi_spawn_find_program("sh", "/nonexistent", &p), GG_ENOTFOUND);
    CHECK(p == NULL);
    CHECK_STR(ggi_spawn_env_get(base_env, "LANG"), "C.UTF-8");
    CHECK(ggi_spawn_env_get(base_env, "LAN") == NULL);
}

static void test_group_killed(void)
{
    /* The background sleep keeps stdout open and would outlive the run's timeout and the
     * test's deadline: the run ends when the shell does (not by its timeout), and the sleep
     * does not outlive it. */
    ggi_spawn_result r;
    const char *bg[] = { "/bin/sh", "-c", "sleep 900 & echo $!", NULL };
    CHECK_RC(run(bg, 300, &r), 0);
    CHECK(r.exit_code == 0 && !r.timed_out);
    long pid = r.out.data ? strtol(r.out.data, NULL, 10) : 0;
    CHECK(pid > 1);
    if (pid > 1 && !test_process_gone(pid)) {
        CHECK(!"the background process outlived the run");
        kill((pid_t)pid, SIGKILL);
    }
    ggi_spawn_result_free(&r);

    /* A process that left the group (setsid) and holds the pipe: the drain is bounded, so
     * the run ends without waiting for it (nor for its timeout). */
    const char *escaped[] = { "/bin/sh", "-c", "setsid sleep 900 & echo $!", NULL };
    CHECK_RC(run(escaped, 300, &r), 0);
    CHECK(r.exit_code == 0 && !r.timed_out);
    pid = r.out.data ? strtol(r.out.data, NULL, 10) : 0;
    CHECK(pid > 1);
    if (pid > 1)
        kill((pid_t)pid, SIGKILL);
    ggi_spawn_result_free(&r);
}

static int read_pid_file(void *path)
{
    return access((const char *)path, F_OK) == 0;
}

/* A job does not outlive a host that dies in the middle of it. */
static void test_host_death(void)
{
    char pidfile[] = "/tmp/gg-test-pid-XXXXXX";
    int fd = mkstemp(pidfile);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    char script[256];
    snprintf(script, sizeof script, "echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 900",
             pidfile, pidfile, pidfile);
    unlink(pidfile);
    pid_t host = fork();
    if (host == 0) {
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        ggi_spawn_result r;
        run(argv, 1200, &r);
        _exit(0);
    }
    CHECK(host > 0);
    /* The job has started once its pid file is there (written whole, then renamed). */
    long job = 0;
    CHECK(test_wait_for(read_pid_file, pidfile));
    FILE *f = fopen(pidfile, "r");
    if (f) {
        if (fscanf(f, "%ld", &job) != 1)
            job = 0;
        fclose(f);
    }
    CHECK(job > 1);
    kill(host, SIGKILL);
    waitpid(host, NULL, 0);
    if (job > 1) {
        CHECK(test_process_gone(job));
        kill((pid_t)job, SIGKILL);
    }
    unlink(pidfile);
}

static volatile int cancel_flag;
static char cancel_pidfile[64];

/* Cancels the run once its child has started (written its pid file); a cancel before the
 * start would test another path. */
static void *set_cancel(void *arg)
{
    int *started = arg;
    *started = test_wait_for(read_pid_file, cancel_pidfile);
    __atomic_store_n(&cancel_flag, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_cancel(void)
{
    snprintf(cancel_pidfile, sizeof cancel_pidfile, "/tmp/gg-test-cancel-%ld", (long)getpid());
    unlink(cancel_pidfile);
    char script[256];
    snprintf(script, sizeof script, "echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 900",
             cancel_pidfile, cancel_pidfile, cancel_pidfile);
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    const char *sl[] = { "/bin/sh", "-c", script, NULL };
    o.argv = sl;
    o.envp = base_env;
    o.timeout_s = 1200; /* the sleep outlives the test's deadline: only the cancel ends it */
    o.cancel = &cancel_flag;
    cancel_flag = 0;
    int started = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, set_cancel, &started) == 0);
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    pthread_join(t, NULL);
    CHECK(started == 1);
    CHECK(r.cancelled == 1 && !r.timed_out);
    CHECK(r.term_signal == SIGKILL);
    long pid = 0;
    FILE *f = fopen(cancel_pidfile, "r");
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    CHECK(pid > 1);
    if (pid > 1)
        CHECK(test_process_gone(pid));
    unlink(cancel_pidfile);
    ggi_spawn_result_free(&r);
}

static void test_rlimits_env_cwd(void)
{
    ggi_spawn_opts o;
    memset(&o, 0, sizeof o);
    const char *ul[] = { "/bin/sh", "-c", "ulimit -n; ulimit -t; ulimit -f; pwd; echo \"$FOO\"",
                         NULL };
    const char *env[] = { "FOO=bar baz", NULL };
    o.argv = ul;
    o.envp = env;
    o.cwd = "/tmp";
    o.timeout_s = 60;
    o.max_stdout = 4096;
    o.max_stderr = 4096;
    o.nofile = 64;
    o.cpu_s = 2.5;
    o.fsize_bytes = 1024 * 1024;
    ggi_spawn_result r;
    memset(&r, 0, sizeof r);
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    /* dash's ulimit -f counts 512-byte blocks */
    CHECK_STR(r.out.data, "64\n3\n2048\n/tmp\nbar baz\n");
    ggi_spawn_result_free(&r);

    /* Memory: a 1 GB allocation under a 256 MB address-space limit fails. */
    const char *alloc[] = { PY, "-c", "b = bytearray(1 << 30); print('allocated')", NULL };
    o.argv = alloc;
    o.envp = base_env;
    o.cwd = NULL;
    o.as_bytes = 256u << 20;
    o.nofile = 0;
    o.cpu_s = 0;
    o.fsize_bytes = 0;
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.exit_code != 0);
    CHECK_CONTAINS(r.err.data, "MemoryError");
    CHECK(!r.out.data || !strstr(r.out.data, "allocated"));
    ggi_spawn_result_free(&r);

    /* No envp: an empty environment. */
    const char *envprint[] = { "/usr/bin/env", NULL };
    o.argv = envprint;
    o.envp = NULL;
    o.as_bytes = 0;
    CHECK_RC(ggi_spawn_run(&o, &r), 0);
    CHECK(r.exit_code == 0 && r.out.len == 0);
    ggi_spawn_result_free(&r);
}

static void test_utf8(void)
{
    struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        { "plain ascii", 11, "plain ascii" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        { "a\xff" "b", 3, "a\xef\xbf\xbd" "b" },
        { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },             /* overlong '/' */
        { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
        { "\xf4\x90\x80\x80", 4,
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },      /* above U+10FFFF */
        { "x\xe2\x82", 3, "x\xef\xbf\xbd\xef\xbf\xbd" },           /* cut at the end */
        { "n\0ul", 4, "n\xef\xbf\xbdul" },
        { "", 0, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        CHECK_RC(ggi_utf8_sanitize(cases[i].in, cases[i].len, &out), 0);
        CHECK_STR(out, cases[i].want);
        free(out);
    }
}

static void test_runtimes(void)
{
    ggi_runtimes rt;
    char *saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 1);
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.python && strncmp(rt.python, "/usr/bin/python3", 16) == 0);
    CHECK_CONTAINS(rt.python_source, "$GRYPHGEN_PYTHON");
    CHECK_CONTAINS(rt.python_source, "sys.executable");
    ggi_runtimes_free(&rt);
    CHECK(rt.python == NULL && rt.python_source == NULL);

    setenv("GRYPHGEN_PYTHON", "/bogus/python", 1);
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.python == NULL);
    CHECK_CONTAINS(rt.python_source, "$GRYPHGEN_PYTHON");
    CHECK_CONTAINS(rt.python_source, "/bogus/python");
    ggi_runtimes_free(&rt);

    /* The explicit choice wins over the environment. */
    CHECK_RC(ggi_runtimes_resolve(&rt, PY, NULL), 0);
    CHECK(rt.python && strncmp(rt.python, "/usr/bin/python3", 16) == 0);
    CHECK_CONTAINS(rt.python_source, "option");
    ggi_runtimes_free(&rt);

    /* A Python binary is not asked (its sys.executable is its own path); a script in front
     * of one (a version manager's shim) is, and gives way to the interpreter it runs. */
    CHECK_RC(ggi_runtimes_resolve(&rt, PY, NULL), 0);
    CHECK_CONTAINS(rt.python_source, "the binary itself");
    {
        char dir[] = "/tmp/gg-shim-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char shim[64];
        snprintf(shim, sizeof shim, "%s/python3", dir);
        FILE *f = fopen(shim, "w");
        CHECK(f != NULL);
        if (f) {
            fputs("#!/bin/sh\nexec " PY " \"$@\"\n", f);
            fclose(f);
        }
        CHECK(chmod(shim, 0755) == 0);
        ggi_runtimes_free(&rt);
        CHECK_RC(ggi_runtimes_resolve(&rt, shim, NULL), 0);
        CHECK_STR(rt.python, PY);
        CHECK_CONTAINS(rt.python_source, "sys.executable");
        CHECK(!strstr(rt.python_source, "the binary itself"));
        unlink(shim);
        rmdir(dir);
    }
    ggi_runtimes_free(&rt);

    /* A program that is not a Python: the found path is kept, the source says so. */
    CHECK_RC(ggi_runtimes_resolve(&rt, "/bin/false", NULL), 0);
    CHECK_STR(rt.python, "/bin/false");
    CHECK_CONTAINS(rt.python_source, "failed");
    ggi_runtimes_free(&rt);

    /* PATH search (a plain PATH without shims). */
    unsetenv("GRYPHGEN_PYTHON");
    setenv("PATH", "/usr/bin:/bin", 1);
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.python && strncmp(rt.python, "/usr/bin/python3", 16) == 0);
    CHECK_CONTAINS(rt.python_source, "PATH");
    ggi_runtimes_free(&rt);

    setenv("PATH", "/nonexistent", 1);
    unsetenv("GRYPHGEN_CC");
    unsetenv("CC");
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.python == NULL && rt.cc == NULL);
    CHECK_CONTAINS(rt.python_source, "python3");
    CHECK_CONTAINS(rt.cc_source, "cc");
    ggi_runtimes_free(&rt);
    setenv("PATH", "/usr/bin:/bin", 1);

    /* cc: $GRYPHGEN_CC before $CC, names resolved to absolute paths. */
    setenv("GRYPHGEN_CC", "sh", 1); /* any executable stands in for a compiler here */
    setenv("CC", "/bogus/cc", 1);
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.cc && rt.cc[0] == '/' && strstr(rt.cc, "/sh"));
    CHECK_CONTAINS(rt.cc_source, "$GRYPHGEN_CC");
    ggi_runtimes_free(&rt);
    unsetenv("GRYPHGEN_CC");
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, NULL), 0);
    CHECK(rt.cc == NULL);
    CHECK_CONTAINS(rt.cc_source, "$CC");
    CHECK_CONTAINS(rt.cc_source, "/bogus/cc");
    ggi_runtimes_free(&rt);
    CHECK_RC(ggi_runtimes_resolve(&rt, NULL, "/bin/sh"), 0);
    CHECK_STR(rt.cc, "/bin/sh");
    CHECK_CONTAINS(rt.cc_source, "option");
    ggi_runtimes_free(&rt);
    unsetenv("CC");

    if (saved_path) {
        setenv("PATH", saved_path, 1);
        free(saved_path);
    }
}

int main(void)
{
    test_exit_codes();
    test_signal();
    test_timeout();
    test_flood();
    test_stdin();
    test_not_found();
    test_group_killed();
    test_host_death();
    test_cancel();
    test_rlimits_env_cwd();
    test_utf8();
    test_runtimes();
    return test_exit();
}
