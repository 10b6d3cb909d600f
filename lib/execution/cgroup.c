/*
 * cgroup.c - per-job control groups. The probe finds the host process's own groups in
 * /proc/self/cgroup: a v2 group whose subtree has the memory and pids controllers delegated,
 * else the v1 memory and pids hierarchies (mounted at /sys/fs/cgroup/<controller>); it makes
 * and removes a test group to be sure they are writable. A job's group is made below those,
 * limited, joined by the job's first process (through an open cgroup.procs descriptor), and
 * removed once the job has ended.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../core/ggi.h"
#include "cgroup.h"

#define CGROUP_V1_MAGIC 0x27e0ebL
#define CGROUP_V2_MAGIC 0x63677270L
#define KILL_ROUNDS 8
#define RMDIR_WAIT_MS 3000.0
#define BASE_MAX 1024
#define STALE_WAIT_MS 2000.0

struct ggi_cgroup {
    int version;
    unsigned long id;         /* the n of its name gg-job-<pid>-<n> */
    char mem[BASE_MAX + 64];  /* v2: the one group; v1: the memory group ("" when none) */
    char pids[BASE_MAX + 64]; /* v1: the pids group ("" when none); v2: "" */
};

static ggi_cgroup_caps caps;

static char base_mem[BASE_MAX], base_pids[BASE_MAX]; /* v1 parents, or v2 parent in base_mem */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned long counter;

static int write_file(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

static int read_file(const char *dir, const char *file, char *buf, size_t cap)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int has_file(const char *dir, const char *file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static int fs_is(const char *path, long magic)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

/* Can a group be made (and removed) below dir? */
static int can_make(const char *dir)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%.4000s/gg-probe-%ld", dir, (long)getpid());
    if (mkdir(p, 0755) < 0)
        return 0;
    rmdir(p);
    return 1;
}

static int word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n' || p[n] == ','))
            return 1;
    }
    return 0;
}

static int kill_listed(const char *dir);

/* Removes the job groups a host process left when it was killed mid-job (their name holds
 * its pid, and it no longer exists), groups made ahead included: what is still in them (a
 * job dying with its namespaces) is killed, and the removal retried for a bounded time. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int seen = 0;
    double until = ggi_now_ms() + STALE_WAIT_MS;
    while (d && (e = readdir(d)) != NULL && seen++ < 100000) {
        long pid = 0;
        if (strncmp(e->d_name, "gg-job-", 7) != 0 ||
            (pid = strtol(e->d_name + 7, NULL, 10)) <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%.4000s/%.255s", dir, e->d_name);
        while (rmdir(p) < 0 && errno == EBUSY && ggi_now_ms() < until) {
            (void)kill_listed(p);
            ggi_sleep_ms(1);
        }
    }
    if (d)
        closedir(d);
}

static void probe(void)
{
    memset(&caps, 0, sizeof caps);
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) {
        snprintf(caps.why, sizeof caps.why, "no /proc/self/cgroup: cgroups unavailable");
        return;
    }
    char line[PATH_MAX + 128], v2path[PATH_MAX] = "", mem[PATH_MAX] = "", pids[PATH_MAX] = "";
    int have_v2 = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (!*ctrls) {
            have_v2 = 1;
            snprintf(v2path, sizeof v2path, "%s", path);
        } else if (word_in(ctrls, "memory")) {
            snprintf(mem, sizeof mem, "/sys/fs/cgroup/memory%s", path);
        } else if (word_in(ctrls, "pids")) {
            snprintf(pids, sizeof pids, "/sys/fs/cgroup/pids%s", path);
        }
    }
    fclose(f);

    /* v2 first when its controllers are delegated to our subtree. */
    if (have_v2) {
        const char *mnt = fs_is("/sys/fs/cgroup", CGROUP_V2_MAGIC) ? "/sys/fs/cgroup"
                          : fs_is("/sys/fs/cgroup/unified", CGROUP_V2_MAGIC)
                              ? "/sys/fs/cgroup/unified" : NULL;
        char dir[PATH_MAX + 64], ctl[512] = "";
        if (mnt) {
            snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(v2path, "/") ? v2path : "");
            if (read_file(dir, "cgroup.subtree_control", ctl, sizeof ctl) == 0 &&
                word_in(ctl, "memory") && word_in(ctl, "pids") && can_make(dir)) {
                caps.version = 2;
                caps.memory = caps.pids = 1;
                snprintf(base_mem, sizeof base_mem, "%.1000s", dir);
                caps.swap = 1;
                remove_stale(base_mem);
                snprintf(caps.why, sizeof caps.why,
                         "cgroup v2 at %.240s: memory and pids delegated and writable", dir);
                return;
            }
        }
    }
    if (*mem && fs_is("/sys/fs/cgroup/memory", CGROUP_V1_MAGIC) && can_make(mem)) {
        caps.memory = 1;
        snprintf(base_mem, sizeof base_mem, "%.1000s", mem);
        caps.swap = has_file(mem, "memory.memsw.limit_in_bytes");
    }
    if (*pids && fs_is("/sys/fs/cgroup/pids", CGROUP_V1_MAGIC) && can_make(pids)) {
        caps.pids = 1;
        snprintf(base_pids, sizeof base_pids, "%.1000s", pids);
    }
    if (caps.memory)
        remove_stale(base_mem);
    if (caps.pids)
        remove_stale(base_pids);
    if (caps.memory || caps.pids) {
        caps.version = 1;
        snprintf(caps.why, sizeof caps.why,
                 "cgroup v1: memory %s%.110s, pids %s%.110s%s", caps.memory ? "writable at " : "not "
                 "writable", caps.memory ? base_mem : "", caps.pids ? "writable at " : "not "
                 "writable", caps.pids ? base_pids : "",
                 caps.memory ? (caps.swap ? " (swap accounted)" : " (swap not accounted)")
                             : "");
    } else {
        snprintf(caps.why, sizeof caps.why,
                 "no writable cgroup: v2 %s, v1 memory/pids %s; memory and process limits "
                 "fall back to rlimits",
                 have_v2 ? "controllers not delegated to this process's group" : "absent",
                 (*mem || *pids) ? "not writable" : "not mounted");
    }
}

const ggi_cgroup_caps *ggi_cgroup_probe(void)
{
    pthread_once(&once, probe);
    return &caps;
}

int ggi_cgroup_new(ggi_cgroup **out, uint64_t memory_bytes, uint64_t pids_max)
{
    *out = NULL;
    const ggi_cgroup_caps *c = ggi_cgroup_probe();
    if (!c->version)
        return ggi_error(GG_EUNSUPPORTED, "%s", c->why);
    ggi_cgroup *cg = calloc(1, sizeof *cg);
    if (!cg)
        return ggi_error(GG_ENOMEM, "out of memory");
    cg->version = c->version;
    unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    cg->id = n;
    char v[32];
    int bad = 0;
    if (c->memory) {
        snprintf(cg->mem, sizeof cg->mem, "%.1000s/gg-job-%ld-%lu", base_mem, (long)getpid(), n);
        if (mkdir(cg->mem, 0755) < 0) {
            cg->mem[0] = '\0';
            bad = 1;
        }
    }
    if (!bad && c->version == 1 && c->pids) {
        snprintf(cg->pids, sizeof cg->pids, "%.1000s/gg-job-%ld-%lu", base_pids, (long)getpid(), n);
        if (mkdir(cg->pids, 0755) < 0) {
            cg->pids[0] = '\0';
            bad = 1;
        }
    }
    if (!bad && memory_bytes && cg->mem[0]) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)memory_bytes);
        if (c->version == 2)
            bad = write_file(cg->mem, "memory.max", v) < 0 ||
                  (has_file(cg->mem, "memory.swap.max") &&
                   write_file(cg->mem, "memory.swap.max", "0") < 0);
        else
            bad = write_file(cg->mem, "memory.limit_in_bytes", v) < 0 ||
                  (c->swap && write_file(cg->mem, "memory.memsw.limit_in_bytes", v) < 0);
    }
    if (!bad && pids_max) {
        snprintf(v, sizeof v, "%llu", (unsigned long long)pids_max);
        const char *dir = c->version == 2 ? cg->mem : cg->pids;
        if (dir[0])
            bad = write_file(dir, "pids.max", v) < 0;
    }
    if (bad) {
        int e = errno;
        ggi_cgroup_destroy(&cg);
        return ggi_error(GG_EIO, "cannot set up the job's cgroup: %s", strerror(e));
    }
    *out = cg;
    return GG_OK;
}

int ggi_cgroup_open_procs(ggi_cgroup *cg, int *fds, int max)
{
    int n = 0;
    const char *dirs[2] = { cg->mem, cg->pids };
    for (int i = 0; i < 2; i++) {
        if (!dirs[i][0] || n >= max)
            continue;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            while (n > 0)
                close(fds[--n]);
            return ggi_error(GG_EIO, "cannot open %s: %s", path, strerror(e));
        }
        fds[n++] = fd;
    }
    return n;
}

unsigned long ggi_cgroup_id(const ggi_cgroup *cg)
{
    return cg ? cg->id : 0;
}

/* The files that set a group's limits, in the order ggi_cgroup_open_limits opens them: the
 * same for every group this process makes (ggi_cgroup_new makes each controller's group or
 * fails), so cg may be NULL when only the names are wanted. */
static int limit_files(const ggi_cgroup *cg, const char *dirs[3], const char *files[3])
{
    const ggi_cgroup_caps *c = ggi_cgroup_probe();
    int n = 0;
    if (c->memory) {
        dirs[n] = cg ? cg->mem : "", files[n++] = c->version == 2 ? "memory.max"
                                                                  : "memory.limit_in_bytes";
        if (c->swap)
            dirs[n] = cg ? cg->mem : "",
            files[n++] = c->version == 2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
    }
    if (c->pids)
        dirs[n] = cg ? (c->version == 2 ? cg->mem : cg->pids) : "", files[n++] = "pids.max";
    return n;
}

int ggi_cgroup_open_limits(ggi_cgroup *cg, int *fds, int max)
{
    const char *dirs[3], *files[3];
    int n = limit_files(cg, dirs, files);
    if (n > max)
        return ggi_error(GG_EINTERNAL, "too many cgroup limit files");
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", dirs[i], files[i]);
        fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int e = errno;
            while (i > 0)
                close(fds[--i]);
            return ggi_error(GG_EIO, "cannot open %s: %s", path, strerror(e));
        }
    }
    return n;
}

int ggi_cgroup_limit_values(uint64_t memory_bytes, uint64_t pids_max, char vals[][24], int max)
{
    const char *dirs[3], *files[3];
    int n = limit_files(NULL, dirs, files);
    if (n > max)
        return ggi_error(GG_EINTERNAL, "too many cgroup limit files");
    for (int i = 0; i < n; i++) {
        int pids = !strcmp(files[i], "pids.max"), swap = !strcmp(files[i], "memory.swap.max");
        uint64_t v = pids ? pids_max : memory_bytes;
        if (swap)
            snprintf(vals[i], 24, "%s", memory_bytes ? "0" : "max");
        else if (!v)
            snprintf(vals[i], 24, "%s", ggi_cgroup_probe()->version == 1 && !pids ? "-1" : "max");
        else
            snprintf(vals[i], 24, "%llu", (unsigned long long)v);
    }
    return n;
}

/* Reads a file of the group's memory controller, v2's name or v1's; -1 without one. */
static int read_mem_file(const ggi_cgroup *cg, const char *v2, const char *v1, char *buf,
                         size_t cap)
{
    if (!cg || !cg->mem[0])
        return -1;
    return read_file(cg->mem, cg->version == 2 ? v2 : v1, buf, cap);
}

long ggi_cgroup_oom_kills(const ggi_cgroup *cg)
{
    char buf[2048];
    if (read_mem_file(cg, "memory.events", "memory.oom_control", buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "oom_kill ");
    return p ? strtol(p + 9, NULL, 10) : 0;
}

long ggi_cgroup_peak_kb(const ggi_cgroup *cg)
{
    char buf[64];
    if (read_mem_file(cg, "memory.peak", "memory.max_usage_in_bytes", buf, sizeof buf) < 0)
        return 0;
    long long v = strtoll(buf, NULL, 10);
    return v > 0 ? (long)(v / 1024) : 0;
}

/* Kills the pids listed in dir/cgroup.procs; returns how many were listed. */
static int kill_listed(const char *dir)
{
    char buf[8192];
    if (!dir[0] || read_file(dir, "cgroup.procs", buf, sizeof buf) < 0)
        return 0;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        long pid = strtol(t, NULL, 10);
        if (pid > 1) {
            kill((pid_t)pid, SIGKILL);
            n++;
        }
    }
    return n;
}

void ggi_cgroup_kill(ggi_cgroup *cg)
{
    if (!cg)
        return;
    if (cg->version == 2 && cg->mem[0] && has_file(cg->mem, "cgroup.kill")) {
        (void)write_file(cg->mem, "cgroup.kill", "1");
        return;
    }
    for (int r = 0; r < KILL_ROUNDS; r++) {
        if (kill_listed(cg->mem) + kill_listed(cg->pids) == 0)
            break;
    }
}

void ggi_cgroup_destroy(ggi_cgroup **pcg)
{
    if (!pcg || !*pcg)
        return;
    ggi_cgroup *cg = *pcg;
    *pcg = NULL;
    const char *dirs[2] = { cg->mem, cg->pids };
    for (int i = 0; i < 2; i++) {
        if (!dirs[i][0])
            continue;
        double until = ggi_now_ms() + RMDIR_WAIT_MS;
        while (rmdir(dirs[i]) < 0 && errno == EBUSY && ggi_now_ms() < until) {
            ggi_cgroup_kill(cg);
            ggi_sleep_ms(1);
        }
    }
    free(cg);
}
