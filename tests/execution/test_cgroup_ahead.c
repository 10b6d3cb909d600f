/*
 * test_cgroup_ahead.c - the cgroups a zygote's jobs join ahead: every job runs in a group of
 * its own (two jobs never share one), the groups waiting for jobs stay few however many jobs
 * ran, none is left once the executor is destroyed, a memory limit below what the waiting
 * group already uses is refused there (the direct way runs that job; the groups are charged
 * by a helper child, since a waiting process itself uses little), and a host killed with
 * SIGKILL mid-job leaves no group (and no mount under its root) once the next process has
 * started. Needs root, cgroup v1 and the namespace sandbox; skipped (77) otherwise.
 */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* The bytes charged to the memory group dir (memory.usage_in_bytes), or -1. */
static long long group_usage(const char *dir)
{
    char path[4700];
    snprintf(path, sizeof path, "%s/memory.usage_in_bytes", dir);
    FILE *f = fopen(path, "r");
    long long n = -1;
    if (f && fscanf(f, "%lld", &n) != 1)
        n = -1;
    if (f)
        fclose(f);
    return n;
}

static int join_group(const char *dir, long pid)
{
    char path[4700];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%ld\n", pid) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The child of charge_waiting(): joins each group of owner's below the memory base, touches
 * and locks bytes of its own memory there, goes back to the base group and holds it all. */
static void charge_child(long owner, size_t bytes, int ready_fd)
{
    char prefix[64], dirs[16][4500];
    int n = 0;
    snprintf(prefix, sizeof prefix, "gg-job-%ld-", owner);
    DIR *d = opendir(mem_base);
    struct dirent *e;
    while (d && n < 16 && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            snprintf(dirs[n++], sizeof dirs[0], "%s/%s", mem_base, e->d_name);
    if (d)
        closedir(d);
    for (int i = 0; i < n; i++) {
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (join_group(dirs[i], (long)getpid()) != 0 || m == MAP_FAILED)
            _exit(1);
        memset(m, 0x5a, bytes); /* charged to that group: v1 leaves charges where made */
        if (mlock(m, bytes) != 0) /* and never reclaimed */
            _exit(1);
    }
    if (join_group(mem_base, (long)getpid()) != 0)
        _exit(1);
    char c = (char)n;
    if (write(ready_fd, &c, 1) != 1)
        _exit(1);
    for (;;)
        pause();
}

/* Makes every group of this process's that waits for a job use more than mb MB, whatever
 * its waiting process uses: a child charges mb + 8 MB of locked memory to each and leaves
 * it, holding the memory until it is killed. Returns the child's pid (0 on failure). */
static pid_t charge_waiting(int mb)
{
    int p[2];
    if (pipe(p) != 0)
        return 0;
    pid_t owner = getpid(), pid = fork();
    if (pid == 0) {
        close(p[0]);
        charge_child((long)owner, ((size_t)mb + 8) << 20, p[1]);
    }
    close(p[1]);
    struct pollfd pf = { p[0], POLLIN, 0 };
    char groups = 0;
    int ok = pid > 0 && poll(&pf, 1, (int)TEST_DEADLINE_MS) == 1 && read(p[0], &groups, 1) == 1;
    close(p[0]);
    printf("# %d waiting groups charged\n", (int)groups);
    if (pid > 0 && (!ok || groups < 1)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 0;
    }
    return pid;
}

/* Whether every group of this process's below the memory base uses more than bytes. */
static int all_groups_above(long long bytes)
{
    char prefix[64], dir[4500];
    snprintf(prefix, sizeof prefix, "gg-job-%ld-", (long)getpid());
    DIR *d = opendir(mem_base);
    struct dirent *e;
    int n = 0, above = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(dir, sizeof dir, "%s/%s", mem_base, e->d_name);
        long long u = group_usage(dir);
        n++;
        above += u > bytes;
    }
    if (d)
        closedir(d);
    return n > 0 && above == n;
}

/* A job with a tiny memory limit (1 MB) below what its waiting job process's group already
 * uses (the groups are charged by charge_waiting: a waiting process itself often uses less
 * than 1 MB, since the zygote warms itself up before it freezes) is refused by that group:
 * the group goes, the direct way runs the job in a group made for it, and the zygote stays
 * in use for the next jobs. */
static void test_limit_too_small(void)
{
    gg_executor_t *ex = NULL;
    if (test_exec_new_sandboxed(&ex) != 0)
        return;
    cJSON *first = run_code(ex, "pass");
    CHECK(first && test_true(first, "zygote"));
    cJSON_Delete(first);
    pid_t charger = charge_waiting(1);
    CHECK(charger > 0);
    CHECK(all_groups_above(1LL << 20)); /* measured: the limit is below every group's use */
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
    CHECK(r && !test_true(r, "zygote")); /* refused there: the direct way ran it */
    cJSON_Delete(r);
    if (charger > 0) {
        kill(charger, SIGKILL);
        waitpid(charger, NULL, 0);
    }
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
