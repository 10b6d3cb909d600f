/*
 * test_executor.c - the executor handle and its "process" backend through the public API:
 * results of jobs that end in every way, request checking, workspaces (files, removal,
 * scrubbed environment), limits, concurrency, interrupt, and the custom vtable rules.
 * The same tests run once per mode (argv[1]): "rlimits" (plain child processes),
 * "namespaces" (the sandbox, each job started directly) and "zygote" (the sandbox, with
 * `python -c` jobs forked from a warm zygote). Modes that the host cannot give skip (77).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>

#include "core/ggi.h"
#include "execution/cgroup.h"
#include "execution/process_executor.h"
#include "execution/sandbox.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static char root_dir[] = "/tmp/gg-test-exec-XXXXXX";
static gg_executor_t *ex;
static const char *mode = "rlimits";
static int sandboxed; /* mode is "namespaces" or "zygote" */
static int cgrouped;  /* sandboxed jobs get a cgroup on this host */

/* Runs a request; on success returns the parsed result (caller deletes), else NULL and
 * *rc says why. */
static cJSON *run_req(gg_executor_t *e, const char *req, int *rc)
{
    char *out = NULL;
    *rc = gg_executor_run(e, req, &out);
    if (*rc) {
        CHECK(out == NULL);
        return NULL;
    }
    cJSON *res = NULL;
    CHECK_RC(ggi_json_parse(out, strlen(out), &res), 0);
    gg_free(out);
    return res;
}

static cJSON *run_ok(const char *req)
{
    int rc;
    cJSON *res = run_req(ex, req, &rc);
    CHECK_RC(rc, 0);
    return res;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static int flag(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int dir_is_empty(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", path);
    return system(cmd) == 0;
}

static void test_options(void)
{
    gg_executor_options o;
    CHECK_RC(gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION), 0);
    CHECK(o.version == GG_EXECUTOR_OPTIONS_VERSION && o.backend == NULL && o.max_output == 0);
    CHECK_RC(gg_executor_options_init(&o, 99), GG_EVERSION);
    CHECK_RC(gg_executor_options_init(NULL, 1), GG_EINVAL);

    gg_executor_t *e = (gg_executor_t *)&o; /* must be overwritten with NULL on failure */
    o.version = 0;
    CHECK_RC(gg_executor_new(&e, &o), GG_EVERSION);
    CHECK(e == NULL);
    gg_executor_options_init(&o, 1);
    o.backend = "warp-drive";
    CHECK_RC(gg_executor_new(&e, &o), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "warp-drive");
    o.backend = NULL;
    o.workdir_root = "/nonexistent/root";
    CHECK_RC(gg_executor_new(&e, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "workdir_root");
    o.workdir_root = NULL;
    o.max_output = 17u << 20;
    CHECK_RC(gg_executor_new(&e, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "max_output");
    CHECK_RC(gg_executor_new(NULL, NULL), GG_EINVAL);

    /* A relative workdir_root still gives the job an absolute HOME. */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(root_dir) == 0);
    o.max_output = 0;
    o.workdir_root = ".";
    CHECK_RC(gg_executor_new(&e, &o), 0);
    CHECK(chdir("/") == 0);
    char *out = NULL;
    CHECK_RC(gg_executor_run(e, "{\"argv\": [\"sh\", \"-c\", \"echo $HOME\"]}", &out), 0);
    CHECK_CONTAINS(out, "\"stdout\":\"/tmp/gg-test-exec-");
    gg_free(out);
    gg_executor_destroy(&e);
    CHECK(chdir(cwd) == 0);

    /* Levels: bad names are refused; a minimum is never undercut. */
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.isolation = "warp";
    CHECK_RC(gg_executor_new(&e, &o), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "warp");
    o.isolation = NULL;
    o.min_isolation = "sandboxish";
    CHECK_RC(gg_executor_new(&e, &o), GG_EINVAL);
    o.isolation = "rlimits";
    o.min_isolation = sandboxed ? "namespaces" : "rlimits";
    CHECK_RC(gg_executor_new(&e, &o), 0);
    out = NULL;
    int rc2 = gg_executor_run(e, "{\"argv\": [\"true\"]}", &out);
    CHECK(rc2 == (sandboxed ? GG_EUNSUPPORTED : 0));
    if (sandboxed)
        CHECK_CONTAINS(gg_error_last(), "below the required minimum 'namespaces'");
    gg_free(out);
    out = NULL;
    CHECK_RC(gg_executor_run(e, "{\"argv\": [\"true\"], \"isolation\": \"none\"}", &out),
             GG_EUNSUPPORTED);
    CHECK(out == NULL);
    CHECK_CONTAINS(gg_error_last(), "below the required minimum");
    gg_executor_destroy(&e);
    o.isolation = NULL;
    o.min_isolation = "container";
    CHECK_RC(gg_executor_new(&e, &o), 0);
    CHECK_RC(gg_executor_run(e, "{\"argv\": [\"true\"]}", &out), GG_EUNSUPPORTED);
    CHECK(dir_is_empty(root_dir));
    gg_executor_destroy(&e);
    /* A version 1 struct (no isolation fields) still works. */
    gg_executor_options_init(&o, 1);
    CHECK(o.version == 1);
    CHECK_RC(gg_executor_new(&e, &o), 0);
    gg_executor_destroy(&e);

    CHECK_RC(gg_executor_new(&e, NULL), 0);
    CHECK_STR(gg_executor_backend(e), "process");
    CHECK_RC(gg_executor_interrupt(e), 0); /* nothing running: harmless */
    gg_executor_destroy(&e);
    CHECK(e == NULL);
    gg_executor_destroy(&e);
    gg_executor_destroy(NULL);
}

static void test_exit_and_signal(void)
{
    cJSON *r = run_ok("{\"argv\": [\"/bin/echo\", \"hi\", \"there\"]}");
    if (r) {
        CHECK(num(r, "exit_code") == 0);
        CHECK(num(r, "signal") == 0);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(r, "signal_name")));
        CHECK_STR(str(r, "stdout"), "hi there\n");
        CHECK_STR(str(r, "stderr"), "");
        CHECK(flag(r, "timed_out") == 0 && flag(r, "cancelled") == 0);
        CHECK(flag(r, "stdout_truncated") == 0 && flag(r, "stderr_truncated") == 0);
        CHECK_STR(str(r, "isolation"), sandboxed ? "namespaces" : "rlimits");
        CHECK(flag(r, "oom_killed") == 0);
        CHECK(flag(r, "zygote") == 0); /* not a python -c job */
        CHECK(num(r, "max_rss_kb") > 0);
        CHECK(num(r, "duration_ms") > 0);
        cJSON_Delete(r);
    }
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"echo oops >&2; exit 3\"]}");
    if (r) {
        CHECK(num(r, "exit_code") == 3);
        CHECK_STR(str(r, "stderr"), "oops\n");
        cJSON_Delete(r);
    }
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"kill -SEGV $$\"]}");
    if (r) {
        CHECK(num(r, "exit_code") == -1);
        CHECK(num(r, "signal") == 11);
        CHECK_STR(str(r, "signal_name"), "SIGSEGV");
        cJSON_Delete(r);
    }
}

static void test_timeout_and_flood(void)
{
    /* The loop never ends by itself: only the timeout ends it, after at least its 0.5 s. */
    cJSON *r = run_ok("{\"argv\": [\"sh\", \"-c\", \"while :; do :; done\"],"
                      " \"limits\": {\"timeout_s\": 0.5}}");
    if (r) {
        CHECK(flag(r, "timed_out") == 1);
        CHECK_STR(str(r, "signal_name"), "SIGKILL");
        CHECK(num(r, "duration_ms") >= 450);
        cJSON_Delete(r);
    }

    /* A flood far beyond the cap: the writer is not blocked on a full pipe, it ends by
     * itself (not by the timeout, a guard against a hang only). */
    r = run_ok("{\"argv\": [\"" PY "\", \"-c\", \"import sys\\nb = b'y' * (1 << 20)\\n"
               "for _ in range(100): sys.stdout.buffer.write(b)\\n\"],"
               " \"limits\": {\"max_output\": 1000, \"timeout_s\": 120}}");
    if (r) {
        CHECK(flag(r, "timed_out") == 0);
        CHECK(num(r, "exit_code") == 0);
        CHECK(flag(r, "stdout_truncated") == 1);
        CHECK(str(r, "stdout") && strlen(str(r, "stdout")) == 1000);
        cJSON_Delete(r);
    }
}

static void test_missing_program(void)
{
    int rc;
    cJSON *r = run_req(ex, "{\"argv\": [\"python9-gg-missing\", \"-c\", \"1\"]}", &rc);
    CHECK(r == NULL);
    CHECK(rc == GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "python9-gg-missing");
    CHECK(gg_error_last_code() == GG_ENOTFOUND);
    CHECK(dir_is_empty(root_dir));
}

/* 1 when no process whose command line holds the pattern (a pgrep -f pattern) is alive
 * (host side, any namespace). */
static int marker_gone(void *pattern)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "pgrep -f '%s' >/dev/null", (const char *)pattern);
    return system(cmd) != 0;
}

static void test_grandchild(void)
{
    /* The background sleep holds stdout open and would outlive any deadline of the test:
     * the run returns without waiting for it (not by its timeout), and it is gone. */
    char req[256], pattern[64];
    snprintf(req, sizeof req, "{\"argv\": [\"sh\", \"-c\", \"sleep 600.%ld & echo $!\"],"
                              " \"limits\": {\"timeout_s\": 300}}", (long)getpid());
    snprintf(pattern, sizeof pattern, "slee[p] 600\\.%ld$", (long)getpid());
    cJSON *r = run_ok(req);
    if (r) {
        CHECK(num(r, "exit_code") == 0 && flag(r, "timed_out") == 0);
        long pid = str(r, "stdout") ? strtol(str(r, "stdout"), NULL, 10) : 0;
        CHECK(pid > 1);
        /* In the sandbox the pid is one of the job's PID namespace. */
        if (pid > 1 && !sandboxed)
            CHECK(test_process_gone(pid));
        CHECK(test_wait_for(marker_gone, pattern));
        cJSON_Delete(r);
    }
}

static void test_stdin_files_workspace(void)
{
    cJSON *r = run_ok("{\"argv\": [\"cat\"], \"stdin\": \"from stdin\\n\"}");
    if (r) {
        CHECK_STR(str(r, "stdout"), "from stdin\n");
        cJSON_Delete(r);
    }

    /* A directory outside the workspace that a symlink inside points to must survive. */
    char outside[] = "/tmp/gg-test-outside-XXXXXX";
    CHECK(mkdtemp(outside) != NULL);
    char keep[128];
    snprintf(keep, sizeof keep, "%s/keep.txt", outside);
    FILE *f = fopen(keep, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("keep", f);
        fclose(f);
    }

    char req[2048];
    snprintf(req, sizeof req,
             "{\"argv\": [\"sh\", \"-c\", \"cat a.txt sub/dir/b.py; echo; pwd; "
             "mkdir -p locked/inner && touch locked/inner/f && chmod 000 locked/inner && "
             "chmod 500 locked && ln -s %s escape && ln -s %s escape_file && "
             "chmod 444 a.txt && chmod 000 .\"],"
             " \"files\": [{\"path\": \"a.txt\", \"content\": \"A-\"},"
             "             {\"path\": \"./sub/dir/b.py\", \"content\": \"print(1)\"}]}",
             outside, keep);
    r = run_ok(req);
    if (r) {
        CHECK(num(r, "exit_code") == 0);
        const char *out = str(r, "stdout");
        CHECK(out && strncmp(out, "A-print(1)\n", 11) == 0);
        const char *ws = out ? strchr(out, '\n') : NULL;
        if (ws) {
            ws++;
            char path[512];
            snprintf(path, sizeof path, "%.*s", (int)strcspn(ws, "\n"), ws);
            CHECK(strncmp(path, root_dir, strlen(root_dir)) == 0);
            CHECK(strstr(path, "/gg-job-") != NULL);
            struct stat st;
            CHECK(lstat(path, &st) < 0 && errno == ENOENT);
        }
        cJSON_Delete(r);
    }
    CHECK(access(keep, R_OK) == 0);
    unlink(keep);
    rmdir(outside);
    CHECK(dir_is_empty(root_dir));

    /* HOME and TMPDIR are the workspace; nothing else comes from the host. */
    setenv("GG_TEST_SECRET", "leak", 1);
    r = run_ok("{\"argv\": [\"/usr/bin/env\"], \"env\": {\"FOO\": \"bar\", \"LANG\": \"C\"}}");
    if (r) {
        const char *out = str(r, "stdout");
        CHECK(out && !strstr(out, "GG_TEST_SECRET"));
        CHECK_CONTAINS(out, "FOO=bar\n");
        CHECK_CONTAINS(out, "LANG=C\n");
        CHECK_CONTAINS(out, "PATH=/usr/local/bin:/usr/bin:/bin\n");
        CHECK_CONTAINS(out, "HOME=/tmp/gg-test-exec-");
        CHECK_CONTAINS(out, "TMPDIR=/tmp/gg-test-exec-");
        int lines = 0;
        for (const char *p = out; p && *p; p++)
            lines += *p == '\n';
        CHECK(lines == 5);
        cJSON_Delete(r);
    }
    unsetenv("GG_TEST_SECRET");

    /* ggi_workspace_remove directly: a tree without permissions. */
    char tree[] = "/tmp/gg-test-tree-XXXXXX";
    CHECK(mkdtemp(tree) != NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p a/b/c && touch a/b/c/f && ln -s / a/root && chmod 0 a/b/c "
             "&& chmod 0 a/b && chmod 0 .",
             tree);
    CHECK(system(cmd) == 0);
    CHECK_RC(ggi_workspace_remove(tree), 0);
    CHECK(access(tree, F_OK) < 0);
    CHECK(access("/etc/hostname", F_OK) == 0 || access("/etc/passwd", F_OK) == 0);
}

static void test_bad_requests(void)
{
    struct {
        const char *req;
        int rc;
        const char *msg;
    } cases[] = {
        { "{\"argv\": [\"true\"", GG_EINVAL, "malformed" },
        { "[\"true\"]", GG_EINVAL, "object" },
        { "{}", GG_EINVAL, "argv" },
        { "{\"argv\": []}", GG_EINVAL, "argv" },
        { "{\"argv\": \"true\"}", GG_EINVAL, "argv" },
        { "{\"argv\": [\"echo\", 3]}", GG_EINVAL, "argv[1]" },
        { "{\"argv\": [\"\"]}", GG_EINVAL, "argv[0]" },
        { "{\"argv\": [\"true\"], \"files\": {}}", GG_EINVAL, "files" },
        { "{\"argv\": [\"true\"], \"files\": [\"a\"]}", GG_EINVAL, "files[0]" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"/etc/x\", \"content\": \"\"}]}",
          GG_EINVAL, "absolute" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"../x\", \"content\": \"\"}]}",
          GG_EINVAL, ".." },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a/../../x\", \"content\": \"\"}]}",
          GG_EINVAL, ".." },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a/\", \"content\": \"\"}]}",
          GG_EINVAL, "files[0].path" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"\", \"content\": \"\"}]}",
          GG_EINVAL, "files[0].path" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a\"}]}", GG_EINVAL, "content" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a\", \"content\": 1}]}", GG_EINVAL,
          "content" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a\", \"content\": \"\"},"
          " {\"path\": \"a\", \"content\": \"\"}]}", GG_EINVAL, "twice" },
        { "{\"argv\": [\"true\"], \"files\": [{\"path\": \"a\", \"content\": \"\"},"
          " {\"path\": \"a/b\", \"content\": \"\"}]}", GG_EINVAL, "files[1]" },
        { "{\"argv\": [\"true\"], \"env\": [\"A=1\"]}", GG_EINVAL, "env" },
        { "{\"argv\": [\"true\"], \"env\": {\"A\": 1}}", GG_EINVAL, "env" },
        { "{\"argv\": [\"true\"], \"env\": {\"A=B\": \"1\"}}", GG_EINVAL, "env" },
        { "{\"argv\": [\"true\"], \"stdin\": 5}", GG_EINVAL, "stdin" },
        { "{\"argv\": [\"true\"], \"limits\": 5}", GG_EINVAL, "limits" },
        { "{\"argv\": [\"true\"], \"limits\": {\"timeout_s\": \"10\"}}", GG_EINVAL,
          "timeout_s" },
        { "{\"argv\": [\"true\"], \"limits\": {\"timeout_s\": -1}}", GG_EINVAL, "timeout_s" },
        { "{\"argv\": [\"true\"], \"limits\": {\"memory_mb\": 1.5}}", GG_EINVAL, "memory_mb" },
        { "{\"argv\": [\"true\"], \"limits\": {\"max_output\": 16777217}}", GG_EINVAL,
          "max_output" },
        { "{\"argv\": [\"true\"], \"limits\": {\"nproc\": 0}}", GG_EINVAL, "nproc" },
        { "{\"argv\": [\"true\"], \"limits\": {\"timeout\": 3}}", GG_EINVAL, "timeout" },
        { "{\"argv\": [\"true\"], \"isolation\": 1}", GG_EINVAL, "isolation" },
        { "{\"argv\": [\"true\"], \"isolation\": \"container\"}", GG_EUNSUPPORTED,
          "container" },
        { "{\"argv\": [\"true\"], \"isolation\": \"jail\"}", GG_EINVAL, "jail" },
        { "{\"argv\": [\"true\"], \"zygote\": 1}", GG_EINVAL, "zygote" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        cJSON *r = run_req(ex, cases[i].req, &rc);
        CHECK(r == NULL);
        cJSON_Delete(r);
        if (rc != cases[i].rc || !strstr(gg_error_last(), cases[i].msg)) {
            fprintf(stderr, "case %zu (%s): rc %d, message '%s'\n", i, cases[i].req, rc,
                    gg_error_last());
            CHECK(0);
        } else {
            CHECK(1);
        }
    }

    /* Too many files. */
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_puts(&b, "{\"argv\": [\"true\"], \"files\": [");
    for (int i = 0; i < 65; i++)
        ggi_buf_printf(&b, "%s{\"path\": \"f%d\", \"content\": \"x\"}", i ? "," : "", i);
    ggi_buf_puts(&b, "]}");
    int rc;
    cJSON *r = run_req(ex, b.data, &rc);
    CHECK(r == NULL && rc == GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "files");
    ggi_buf_free(&b);

    char *out = (char *)"sentinel";
    CHECK_RC(gg_executor_run(ex, NULL, &out), GG_EINVAL);
    CHECK(out == NULL);
    CHECK_RC(gg_executor_run(NULL, "{}", &out), GG_EINVAL);
    CHECK_RC(gg_executor_run(ex, "{}", NULL), GG_EINVAL);
    CHECK(dir_is_empty(root_dir));
}

static void test_limits(void)
{
    cJSON *r = run_ok("{\"argv\": [\"" PY "\", \"-c\", \"b = bytearray(1 << 30); print('ok')\"],"
                      " \"limits\": {\"memory_mb\": 256}}");
    if (r) {
        CHECK(num(r, "exit_code") != 0);
        if (cgrouped) {
            /* The job's cgroup bounds its memory: the kernel kills it, and says so. */
            CHECK(flag(r, "oom_killed") == 1);
            CHECK_STR(str(r, "signal_name"), "SIGKILL");
            CHECK_CONTAINS(str(r, "reason"), "out of memory");
        } else {
            CHECK_CONTAINS(str(r, "stderr"), "MemoryError");
            CHECK(flag(r, "oom_killed") == 0);
        }
        CHECK(flag(r, "zygote") == !strcmp(mode, "zygote"));
        cJSON_Delete(r);
    }
    /* Defaults of "rlimits": nofile 256, fsize 64 MiB (dash counts 512-byte blocks). */
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"ulimit -n; ulimit -f\"]}");
    if (r) {
        CHECK_STR(str(r, "stdout"), "256\n131072\n");
        cJSON_Delete(r);
    }
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"ulimit -n; ulimit -t\"],"
               " \"limits\": {\"nofile\": 32, \"cpu_s\": 3, \"nproc\": 1000}}");
    if (r) {
        CHECK_STR(str(r, "stdout"), "32\n3\n");
        cJSON_Delete(r);
    }
    /* "none" applies no rlimits. */
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"ulimit -n\"], \"isolation\": \"none\","
               " \"limits\": {\"nofile\": 32}}");
    if (r) {
        CHECK_STR(str(r, "isolation"), "none");
        CHECK(str(r, "stdout") && strcmp(str(r, "stdout"), "32\n") != 0);
        cJSON_Delete(r);
    }
    /* A file larger than fsize_mb is cut off by SIGXFSZ. */
    r = run_ok("{\"argv\": [\"sh\", \"-c\", \"head -c 3000000 /dev/zero > big\"],"
               " \"limits\": {\"fsize_mb\": 1}}");
    if (r) {
        CHECK(num(r, "exit_code") != 0);
        cJSON_Delete(r);
    }
}

static void test_invalid_utf8(void)
{
    cJSON *r = run_ok("{\"argv\": [\"" PY "\", \"-c\", \"import sys; "
                      "sys.stdout.buffer.write(b'ab\\\\xff\\\\xfe\\\\x00cd\\\\xc3')\"]}");
    if (r) {
        CHECK_STR(str(r, "stdout"), "ab\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "cd\xef\xbf\xbd");
        cJSON_Delete(r);
    }
}

typedef struct worker_arg {
    int id;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < 5; i++) {
        char req[256], want[64];
        snprintf(req, sizeof req,
                 "{\"argv\": [\"sh\", \"-c\", \"cat f.txt; echo -$1\", \"sh\", \"%d\"],"
                 " \"files\": [{\"path\": \"f.txt\", \"content\": \"t%d\"}]}", i, w->id);
        snprintf(want, sizeof want, "t%d-%d\n", w->id, i);
        char *out = NULL;
        int rc = gg_executor_run(ex, req, &out);
        cJSON *r = NULL;
        if (rc || ggi_json_parse(out, strlen(out), &r) || !str(r, "stdout") ||
            strcmp(str(r, "stdout"), want) != 0)
            w->failures++;
        cJSON_Delete(r);
        gg_free(out);
    }
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].id = i;
        a[i].failures = 0;
        CHECK(pthread_create(&t[i], NULL, worker, &a[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].failures == 0);
    }
    CHECK(dir_is_empty(root_dir));
}

typedef struct sleeper_arg {
    int rc;
    char *out;
} sleeper_arg;

/* The job would sleep past every deadline of the test and its timeout: only the interrupt
 * can end it before the test gives up. */
static void *sleeper(void *p)
{
    sleeper_arg *s = p;
    s->rc = gg_executor_run(ex, "{\"argv\": [\"sleep\", \"900\"], \"limits\": {\"timeout_s\": 1200}}",
                            &s->out);
    return NULL;
}

static int sleepers_running(void *want)
{
    return test_count_descendants("sleep") >= *(int *)want;
}

static int sleepers_gone(void *want)
{
    return test_count_descendants("sleep") <= *(int *)want;
}

static void test_interrupt(void)
{
    pthread_t t[2];
    sleeper_arg s[2] = { { -1, NULL }, { -1, NULL } };
    int before = test_count_descendants("sleep");
    CHECK(before == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, sleeper, &s[i]) == 0);
    /* Both jobs have started (their processes run, so the executor holds them) before the
     * interrupt; one sent earlier would find nothing to cancel. */
    int want = before + 2;
    CHECK(test_wait_for(sleepers_running, &want));
    CHECK_RC(gg_executor_interrupt(ex), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(s[i].rc == GG_ECANCELLED);
        CHECK(s[i].out == NULL);
        gg_free(s[i].out);
    }
    CHECK(test_wait_for(sleepers_gone, &before)); /* and the processes are gone */
    /* Later runs work normally. */
    cJSON *r = run_ok("{\"argv\": [\"echo\", \"after\"]}");
    if (r) {
        CHECK_STR(str(r, "stdout"), "after\n");
        cJSON_Delete(r);
    }
    CHECK(dir_is_empty(root_dir));
}

/* ---- custom vtables ---- */

static int destroyed;
static int custom_runs;

static int fake_run(void *self, const char *req, char **out)
{
    (void)req;
    custom_runs++;
    if (self == (void *)2)
        return GG_EEXEC; /* fails without a message */
    if (self == (void *)3)
        return 0; /* "succeeds" without a result */
    *out = gg_strdup("{\"exit_code\": 0}");
    return 0;
}

static void fake_destroy(void *self)
{
    (void)self;
    destroyed++;
}

static void test_custom(void)
{
    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = fake_run;
    vt.destroy = fake_destroy;
    gg_executor_t *e = NULL;

    destroyed = 0;
    vt.version = 0;
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)1), GG_EVERSION);
    CHECK(e == NULL && destroyed == 1);
    vt.version = 999;
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)1), GG_EVERSION);
    CHECK(e == NULL && destroyed == 2);
    vt.version = GG_EXECUTOR_VTABLE_VERSION;
    vt.run = NULL;
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)1), GG_EINVAL);
    CHECK(e == NULL && destroyed == 3);
    vt.run = fake_run;
    CHECK_RC(gg_executor_new_custom(NULL, &vt, (void *)1), GG_EINVAL);
    CHECK(destroyed == 4);
    CHECK_RC(gg_executor_new_custom(&e, NULL, (void *)1), GG_EINVAL);
    CHECK(destroyed == 4);

    destroyed = 0;
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)1), 0);
    CHECK(e != NULL && destroyed == 0);
    vt.run = NULL; /* the handle holds its own copy */
    CHECK_STR(gg_executor_backend(e), "custom");
    char *out = NULL;
    CHECK_RC(gg_executor_run(e, "{}", &out), 0);
    CHECK_STR(out, "{\"exit_code\": 0}");
    gg_free(out);
    CHECK_RC(gg_executor_interrupt(e), GG_EUNSUPPORTED);
    gg_executor_destroy(&e);
    CHECK(e == NULL && destroyed == 1);
    gg_executor_destroy(&e);
    CHECK(destroyed == 1);

    vt.run = fake_run;
    vt.name = "fake";
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)2), 0);
    CHECK_STR(gg_executor_backend(e), "fake");
    CHECK_RC(gg_executor_run(e, "{}", &out), GG_EEXEC);
    CHECK(out == NULL);
    CHECK_CONTAINS(gg_error_last(), "fake");
    gg_executor_destroy(&e);
    CHECK_RC(gg_executor_new_custom(&e, &vt, (void *)3), 0);
    CHECK_RC(gg_executor_run(e, "{}", &out), GG_EEXEC);
    CHECK_CONTAINS(gg_error_last(), "no result");
    gg_executor_destroy(&e);
    CHECK(destroyed == 3);

    /* No destroy slot at all: fine. */
    vt.destroy = NULL;
    CHECK_RC(gg_executor_new_custom(&e, &vt, NULL), 0);
    gg_executor_destroy(&e);
    CHECK(e == NULL);
}

/* A job's min_isolation (a task's "isolation"): raises a default below it, refuses an explicit
 * level below it or a level this backend cannot give, and never runs weaker. */
static void test_min_isolation(void)
{
    int rc;
    cJSON *r = run_req(ex, "{\"argv\": [\"/bin/sh\", \"-c\", \"echo ran > ran\"], "
                           "\"min_isolation\": \"container\"}", &rc);
    CHECK(r == NULL);
    CHECK_RC(rc, GG_EUNSUPPORTED);
    CHECK_CONTAINS(gg_error_last(), "isolation 'container' (the job's minimum) is not available");
    CHECK_CONTAINS(gg_error_last(), "not run");
    r = run_req(ex, "{\"argv\": [\"/bin/sh\", \"-c\", \"echo ok\"], \"isolation\": \"none\", "
                    "\"min_isolation\": \"rlimits\"}", &rc);
    CHECK(r == NULL);
    CHECK_RC(rc, GG_EUNSUPPORTED);
    CHECK_CONTAINS(gg_error_last(), "below the job's min_isolation 'rlimits'");
    r = run_req(ex, "{\"argv\": [\"/bin/sh\", \"-c\", \"echo ok\"], "
                    "\"min_isolation\": \"strong\"}", &rc);
    CHECK(r == NULL);
    CHECK_RC(rc, GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "min_isolation");
    r = run_req(ex, "{\"argv\": [\"/bin/sh\", \"-c\", \"echo ok\"], "
                    "\"min_isolation\": \"rlimits\"}", &rc);
    CHECK_RC(rc, 0);
    if (r) {
        CHECK_STR(str(r, "stdout"), "ok\n");
        CHECK_STR(str(r, "isolation"), sandboxed ? "namespaces" : "rlimits");
        cJSON_Delete(r);
    }
    /* A default below the minimum is raised to it. */
    r = run_req(ex, "{\"argv\": [\"/bin/sh\", \"-c\", \"echo ok\"], "
                    "\"min_isolation\": \"namespaces\"}", &rc);
    if (ggi_sandbox_probe()->namespaces) {
        CHECK_RC(rc, 0);
        if (r)
            CHECK_STR(str(r, "isolation"), "namespaces");
    } else {
        CHECK_RC(rc, GG_EUNSUPPORTED);
    }
    cJSON_Delete(r);
}

/* Runs one test and prints how long it took (for the log only: speed is bench/'s business). */
static void timed(const char *name, void (*fn)(void))
{
    double t0 = ggi_now_ms();
    fn();
    fprintf(stderr, "%-22s %7.0f ms\n", name, ggi_now_ms() - t0);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        mode = argv[1];
    sandboxed = !strcmp(mode, "namespaces") || !strcmp(mode, "zygote");
    if (sandboxed && !ggi_sandbox_probe()->namespaces) {
        printf("SKIP: no namespace sandbox here: %s\n", ggi_sandbox_probe()->namespaces_why);
        return 77;
    }
    cgrouped = sandboxed && ggi_cgroup_probe()->version > 0;
    if (!strcmp(mode, "namespaces"))
        setenv("GRYPHGEN_ZYGOTE", "0", 1);
    if (!mkdtemp(root_dir)) {
        perror("mkdtemp");
        return 1;
    }
    gg_executor_options o;
    gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
    o.workdir_root = root_dir;
    o.isolation = sandboxed ? "namespaces" : "rlimits";
    o.default_timeout_s = 120; /* jobs that must end by themselves: a guard against a hang */
    if (gg_executor_new(&ex, &o) != 0) {
        fprintf(stderr, "gg_executor_new: %s\n", gg_error_last());
        return 1;
    }
    timed("options", test_options);
    timed("exit_and_signal", test_exit_and_signal);
    timed("timeout_and_flood", test_timeout_and_flood);
    timed("missing_program", test_missing_program);
    timed("grandchild", test_grandchild);
    timed("stdin_files_workspace", test_stdin_files_workspace);
    timed("bad_requests", test_bad_requests);
    timed("limits", test_limits);
    timed("invalid_utf8", test_invalid_utf8);
    timed("concurrent", test_concurrent);
    timed("interrupt", test_interrupt);
    timed("custom", test_custom);
    timed("min_isolation", test_min_isolation);
    gg_executor_destroy(&ex);
    CHECK(dir_is_empty(root_dir));
    rmdir(root_dir);
    return test_exit();
}
