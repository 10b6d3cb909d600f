/*
 * test_cgroup_ahead.c - the cgroups a zygote's jobs join ahead: every job runs in a group of
 * its own (two jobs never share one), the groups waiting for jobs stay few however many jobs
 * ran, none is left once the executor is destroyed, and a host killed with SIGKILL mid-job
 * leaves no group (and no mount under its root) once the next process has started. Needs
 * root, cgroups and the namespace sandbox; skipped (77) otherwise.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "execution/cgroup.h"
#include "execution/sandbox.h"
#include "testexec.h"
#include "testutil.h"

#define PY "/usr/bin/python3"

static char mem_base[4200];

/* The v1 memory group (or v2 group) this process's job groups are made below, read from
 * /proc/self/cgroup the way cgroup.c does, without probing (the probe removes stale groups:
 * the crash test must not run it before the crash). */
static int find_base(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        if (strstr(c1 + 1, "memory")) {
            snprintf(mem_base, sizeof mem_base, "/sys/fs/cgroup/memory%s", c2 + 1);
            found = 1;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* How many groups of process pid are below the memory base. */
static int count_groups(long pid)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "gg-job-%ld-", pid);
    DIR *d = opendir(mem_base);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static cJSON *run_code(gg_executor_t *ex, const char *code)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(req, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(PY));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString(code));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(req, "limits"), "timeout_s", 120);
    return test_exec_run(ex, req);
}

/* Each job's group is its own, the groups made ahead stay bounded, and none outlives the
 * executor. */
static void test_own_groups_bounded(void)
{
    gg_executor_t *ex = NULL;
    if (test_exec_new_sandboxed(&ex) != 0)
        return;
    char seen[8][256];
    int nseen = 0;
    for (int i = 0; i < 8; i++) {
        cJSON *r = run_code(ex, "print([l for l in open('/proc/self/cgroup') "
                                "if ':memory:' in l][0].strip())");
        if (!r)
            continue;
        CHECK(test_true(r, "zygote"));
        CHECK(test_true(r, "cgroup"));
        const char *out = test_str(r, "stdout");
        CHECK_CONTAINS(out, "/gg-job-");
        for (int k = 0; k < nseen; k++)
            CHECK(strcmp(seen[k], out) != 0); /* never a group an earlier job had */
        if (nseen < 8)
            snprintf(seen[nseen++], sizeof seen[0], "%s", out);
        cJSON_Delete(r);
        /* Waiting: at most 6 a zygote (docs/executor.md), and this process has one. */
        CHECK(count_groups((long)getpid()) <= 6);
    }
    CHECK(nseen == 8);
    gg_executor_destroy(&ex);
    CHECK(count_groups((long)getpid()) == 0);
}

/* A job with a tiny memory limit (1 MB) runs in a group of its own either way: when the limit
 * is below what a waiting job process already uses, the direct way (in a group made for it);
 * when the waiting process uses less (since the zygote warms itself up before it freezes, a
 * waiting process copies few pages: often under 1 MB), in the zygote under that limit. The
 * zygote stays in use for the next jobs. */
static void test_limit_too_small(void)
{
    gg_executor_t *ex = NULL;
    if (test_exec_new_sandboxed(&ex) != 0)
        return;
    cJSON *first = run_code(ex, "pass");
    CHECK(first && test_true(first, "zygote"));
    cJSON_Delete(first);
    cJSON *req = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(req, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString(PY));
    cJSON_AddItemToArray(argv, cJSON_CreateString("-c"));
    cJSON_AddItemToArray(argv, cJSON_CreateString("pass"));
    cJSON *lim = cJSON_AddObjectToObject(req, "limits");
    cJSON_AddNumberToObject(lim, "timeout_s", 120);
    cJSON_AddNumberToObject(lim, "memory_mb", 1);
    cJSON *r = test_exec_run(ex, req);
    CHECK(r && test_true(r, "cgroup"));
    if (r && test_true(r, "zygote"))
        printf("# the 1 MB job fit its waiting zygote process: the refusal path was not taken\n");
    cJSON_Delete(r);
    for (int i = 0; i < 3; i++) {
        cJSON *after = run_code(ex, "print('still')");
        CHECK(after && test_true(after, "zygote"));
        CHECK(after && strcmp(test_str(after, "stdout"), "still\n") == 0);
        cJSON_Delete(after);
    }
    gg_executor_destroy(&ex);
    CHECK(count_groups((long)getpid()) == 0);
}

static long crash_pid;

static int groups_populated(void *arg)
{
    (void)arg;
    return count_groups(crash_pid) >= 2;
}

/* Whether a line of /proc/self/mountinfo names root. */
static int mounted_under(const char *root)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192];
    int hit = 0;
    while (f && fgets(line, sizeof line, f))
        hit |= strstr(line, root) != NULL;
    if (f)
        fclose(f);
    return hit;
}

/* A host killed with SIGKILL while a job runs: the next process's start removes its groups. */
static void test_kill9_leaves_nothing(void)
{
    char root[] = "/tmp/gg-cgahead-XXXXXX";
    if (!test_make_dir(root)) {
        CHECK(0);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        gg_executor_options o;
        gg_executor_options_init(&o, GG_EXECUTOR_OPTIONS_VERSION);
        o.min_isolation = "namespaces";
        o.workdir_root = root;
        gg_executor_t *ex = NULL;
        if (gg_executor_new(&ex, &o) != 0)
            _exit(2);
        char *out = NULL;
        const char *req = "{\"argv\": [\"" PY "\", \"-c\", \"import time; time.sleep(600)\"],"
                          " \"limits\": {\"timeout_s\": 900}}";
        (void)gg_executor_run(ex, req, &out);
        _exit(3);
    }
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    crash_pid = pid;
    /* Its zygote's processes made ahead and the job are in groups of the child's. */
    CHECK(test_wait_for(groups_populated, NULL));
    kill(pid, SIGKILL);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
    /* The next process's first use of cgroups removes what the dead one left. */
    CHECK(count_groups((long)pid) > 0);
    (void)ggi_cgroup_probe();
    CHECK(count_groups((long)pid) == 0);
    CHECK(!mounted_under(root));
    test_remove_dir(root);
}

int main(void)
{
    if (geteuid() != 0 || !find_base()) {
        printf("SKIP: needs root and a cgroup v1 memory hierarchy\n");
        return 77;
    }
    if (!ggi_sandbox_probe()->namespaces) {
        printf("SKIP: no namespace sandbox here\n");
        return 77;
    }
    /* The crash first: this process must not have probed cgroups yet. */
    test_kill9_leaves_nothing();
    if (!ggi_cgroup_probe()->memory) {
        printf("SKIP: no writable memory cgroup: %s\n", ggi_cgroup_probe()->why);
        return 77;
    }
    test_own_groups_bounded();
    test_limit_too_small();
    return test_exit();
}
