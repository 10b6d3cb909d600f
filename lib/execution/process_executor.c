/*
 * process_executor.c - the "process" executor backend: checks a job request, makes its
 * workspace and files, builds its scrubbed environment, runs it through ggi_spawn_run with
 * rlimits, turns the outcome into result JSON and removes the workspace. Running jobs are
 * kept in a mutex-protected list of cancel flags so gg_executor_interrupt() can stop them.
 * At the "namespaces" level the job runs in the sandbox of sandbox.c with a cgroup of its
 * own (cgroup.c) when the host allows, and `python -c` jobs are forked from a warm zygote
 * (zygote.c); its files are then written inside the sandbox's tmpfs, not on the host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/ggi.h"
#include "cgroup.h"
#include "exec_request.h"
#include "job_registry.h"
#include "process_executor.h"
#include "overlay.h"
#include "sandbox.h"
#include "spawn.h"
#include "zygote.h"

#define DEFAULT_TIMEOUT_S 10.0
#define MAX_TIMEOUT_S GGI_EXEC_MAX_TIMEOUT_S
#define DEFAULT_MAX_OUTPUT (64u * 1024u)
#define DEFAULT_NOFILE 256
#define DEFAULT_FSIZE_MB 64
#define REMOVE_MAX_DEPTH 128
#define REMOVE_MAX_PASSES 8
#define DEFAULT_PIDS 512          /* processes per sandboxed job (cgroup or RLIMIT_NPROC) */
#define MIN_TMPFS_MB 64           /* the sandbox's /tmp and workspace hold at least this */
#define MAX_CG_FDS 4

typedef struct proc_exec {
    char *root;               /* where workspaces are made */
    size_t max_output;
    double default_timeout_s;
    ggi_job_registry reg;     /* the running jobs, for interrupt */
    int default_level;        /* GGI_ISO_* for requests that name none */
    int default_explicit;     /* default_level came from options.isolation */
    int min_level;            /* the weakest level allowed */
    int zygote;               /* 0: never use zygotes ($GRYPHGEN_ZYGOTE=0) */
    ggi_zygote_pool *zpool;
} proc_exec;

/* One checked request; strings point into the parsed cJSON tree. */
typedef struct job {
    ggi_exec_request r;   /* the checked common fields */
    const char **argv;
    int level;   /* GGI_ISO_NONE, _RLIMITS or _NAMESPACES */
    int zygote;  /* the request allows a zygote (field "zygote", default true) */
    int explicit_level; /* the level was asked for (request, option or minimum) */
    int stage_times;    /* the result carries "stages" (field "stage_times") */
    double t_begin;     /* when the run began (ggi_now_ms) */
} job;

/* ---------------------------------------------------------------------------------------- */
/* workspace removal                                                                        */

static int remove_contents(int dfd, int depth);

/* Removes name (in directory dfd) whatever it is; never follows a symlink. */
static int remove_entry(int dfd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) ? 0 : -1;
    if (depth >= REMOVE_MAX_DEPTH)
        return -1;
    /* A job may have left a directory without permissions; glibc's NOFOLLOW variant refuses
     * symlinks, so this cannot chmod anything outside the workspace. */
    if ((st.st_mode & 0700) != 0700)
        (void)fchmodat(dfd, name, 0700, AT_SYMLINK_NOFOLLOW);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int bad = remove_contents(fd, depth + 1);
    close(fd);
    if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        bad = -1;
    return bad;
}

/* Removes everything inside the directory open as dfd (which stays open). */
static int remove_contents(int dfd, int depth)
{
    int bad = 0;
    /* Several passes, since readdir need not return entries after removals began. */
    for (int pass = 0; pass < REMOVE_MAX_PASSES; pass++) {
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0)
            return -1;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
            close(dup_fd);
            return -1;
        }
        int seen = 0;
        bad = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            seen = 1;
            if (remove_entry(dfd, e->d_name, depth) < 0)
                bad = -1;
        }
        closedir(d);
        if (!seen || bad)
            break;
    }
    return bad;
}

int ggi_workspace_remove(const char *path)
{
    struct stat st;
    if (!path)
        return ggi_error(GG_EINVAL, "workspace path is NULL");
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? GG_OK
                               : ggi_error(GG_EIO, "cannot stat workspace '%s': %s", path,
                                           strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ggi_error(GG_EIO, "workspace '%s' is not a directory", path);
    if ((st.st_mode & 0700) != 0700)
        (void)fchmodat(AT_FDCWD, path, 0700, AT_SYMLINK_NOFOLLOW);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ggi_error(GG_EIO, "cannot open workspace '%s': %s", path, strerror(errno));
    int bad = remove_contents(fd, 0);
    close(fd);
    if (rmdir(path) < 0 || bad)
        return ggi_error(GG_EIO, "could not remove all of workspace '%s'", path);
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* request checking                                                                         */

/* Checks the whole request; j->argv is malloc'd (free it) on success. */
static int check_request(const proc_exec *pe, const cJSON *req, job *j)
{
    memset(j, 0, sizeof *j);
    ggi_exec_policy pol = { pe->default_timeout_s, (long long)pe->max_output, DEFAULT_NOFILE,
                            DEFAULT_FSIZE_MB, 0, 0, 0, 0, 0 };
    int rc = ggi_exec_request_check(req, &pol, &j->r);
    if (rc)
        return rc;
    const ggi_exec_request *er = &j->r;

    const char *iso = NULL;
    if (ggi_json_string(req, "isolation", 0, 0, &iso))
        return gg_error_last_code();
    j->level = pe->default_level;
    if (iso && ggi_isolation_parse(iso, &j->level))
        return gg_error_last_code();
    /* The job's min_isolation (a task's "isolation"): a default below it is raised to it; an
     * explicit level below it is refused. */
    const char *miso = er->min_isolation;
    int req_min = er->min_level;
    if (j->level < req_min) {
        if (iso)
            return ggi_error(GG_EUNSUPPORTED, "isolation '%s' is below the job's min_isolation "
                                              "'%s'; the job was not run", iso, miso);
        j->level = req_min;
    }
    j->explicit_level = iso || pe->default_explicit || pe->min_level >= GGI_ISO_NAMESPACES ||
                        req_min >= GGI_ISO_NAMESPACES;
    const ggi_sandbox_caps *caps = ggi_sandbox_probe();
    if (j->level == GGI_ISO_CONTAINER)
        return ggi_error(GG_EUNSUPPORTED, "isolation 'container'%s is not available on the "
                                          "process backend (use the container backend); the "
                                          "job was not run",
                         req_min == GGI_ISO_CONTAINER ? " (the job's minimum)" : "");
    if (j->level < pe->min_level)
        return ggi_error(GG_EUNSUPPORTED, "isolation '%s' is below the required minimum '%s'; "
                                          "the job was not run",
                         ggi_isolation_name(j->level), ggi_isolation_name(pe->min_level));
    if (j->level == GGI_ISO_NAMESPACES && !caps->namespaces)
        return ggi_error(GG_EUNSUPPORTED, "isolation 'namespaces' is not available on this host "
                                          "(%s); the job was not run", caps->namespaces_why);
    int zy = 1;
    if (ggi_json_bool(req, "zygote", 0, &zy))
        return gg_error_last_code();
    j->zygote = zy;
    int st = 0;
    if (ggi_json_bool(req, "stage_times", 0, &st))
        return gg_error_last_code();
    j->stage_times = st;

    j->argv = calloc((size_t)er->argc + 1, sizeof *j->argv);
    if (!j->argv)
        return ggi_error(GG_ENOMEM, "out of memory");
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, er->argv)
        j->argv[i++] = a->valuestring;
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* workspace, files, environment                                                            */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n > (1u << 20) ? (1u << 20) : n);
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

/* Writes one checked file below the workspace open as root; never follows symlinks. With
 * replace (a "workdir" the caller prepared), a file already there is unlinked first, never
 * written into (it may be a hard link to a read-only base, lib/workspace/workspace.h). */
static int write_file(int root, const char *path, const char *content, size_t idx, int replace,
                      uid_t uid, gid_t gid)
{
    char *copy = strdup(path);
    if (!copy)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc = GG_OK, dfd = root;
    char *save = NULL;
    char *comp = strtok_r(copy, "/", &save);
    while (comp && rc == GG_OK) {
        char *next = strtok_r(NULL, "/", &save);
        if (!strcmp(comp, ".")) {
            comp = next;
            continue;
        }
        if (next) {
            if (mkdirat(dfd, comp, 0755) == 0) {
                if (uid != (uid_t)-1 && fchownat(dfd, comp, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
                    rc = ggi_error(GG_EEXEC, "files[%zu]: cannot hand over directory '%s': %s",
                                   idx, comp, strerror(errno));
                    break;
                }
            } else if (errno != EEXIST) {
                rc = ggi_error(GG_EEXEC, "files[%zu]: cannot make directory '%s': %s", idx,
                               comp, strerror(errno));
                break;
            }
            int nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd < 0) {
                rc = (errno == ENOTDIR || errno == ELOOP)
                         ? ggi_error(GG_EINVAL, "files[%zu].path '%s': '%s' is already a file",
                                     idx, path, comp)
                         : ggi_error(GG_EEXEC, "files[%zu]: cannot open directory '%s': %s",
                                     idx, comp, strerror(errno));
                break;
            }
            if (dfd != root)
                close(dfd);
            dfd = nfd;
        } else {
            if (replace && unlinkat(dfd, comp, 0) != 0 && errno != ENOENT) {
                rc = errno == EISDIR || errno == EPERM
                         ? ggi_error(GG_EINVAL, "files[%zu].path '%s' is a directory of "
                                                "'workdir'", idx, path)
                         : ggi_error(GG_EEXEC, "files[%zu]: cannot replace '%s': %s", idx,
                                     path, strerror(errno));
                break;
            }
            int fd = openat(dfd, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            0644);
            if (fd < 0) {
                rc = errno == EEXIST
                         ? ggi_error(GG_EINVAL, "files[%zu].path '%s' is given twice or is "
                                                "already a directory", idx, path)
                         : ggi_error(GG_EEXEC, "files[%zu]: cannot create '%s': %s", idx, path,
                                     strerror(errno));
                break;
            }
            if (write_all(fd, content, strlen(content)) < 0)
                rc = ggi_error(GG_EEXEC, "files[%zu]: cannot write '%s': %s", idx, path,
                               strerror(errno));
            else if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0)
                rc = ggi_error(GG_EEXEC, "files[%zu]: cannot hand over '%s': %s", idx, path,
                               strerror(errno));
            if (close(fd) < 0 && rc == GG_OK)
                rc = ggi_error(GG_EEXEC, "files[%zu]: cannot write '%s': %s", idx, path,
                               strerror(errno));
        }
        comp = next;
    }
    if (dfd != root)
        close(dfd);
    free(copy);
    return rc;
}

int ggi_exec_write_files(const char *ws, const cJSON *files, int replace, uid_t uid, gid_t gid)
{
    if (!files)
        return GG_OK;
    int root = open(ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0)
        return ggi_error(GG_EEXEC, "cannot open workspace '%s': %s", ws, strerror(errno));
    int rc = GG_OK;
    size_t i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, files) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(f, "content");
        if ((rc = write_file(root, p->valuestring, c->valuestring, i, replace, uid, gid)))
            break;
        i++;
    }
    close(root);
    return rc;
}

static void free_env(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/* Sets name=value in env (n entries, room for more), replacing an entry of the same name. */
static int env_set(char **env, size_t *n, const char *name, const char *value)
{
    char *kv = ggi_asprintf("%s=%s", name, value);
    if (!kv)
        return ggi_error(GG_ENOMEM, "out of memory");
    size_t nl = strlen(name);
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp(env[i], name, nl) && env[i][nl] == '=') {
            free(env[i]);
            env[i] = kv;
            return GG_OK;
        }
    }
    env[(*n)++] = kv;
    env[*n] = NULL;
    return GG_OK;
}

static int build_env(const char *ws, const cJSON *extra, char ***out)
{
    size_t cap = 4 + (extra ? (size_t)cJSON_GetArraySize(extra) : 0) + 1, n = 0;
    char **env = calloc(cap, sizeof *env);
    if (!env)
        return ggi_error(GG_ENOMEM, "out of memory");
    int rc;
    if ((rc = env_set(env, &n, "PATH", "/usr/local/bin:/usr/bin:/bin")) ||
        (rc = env_set(env, &n, "HOME", ws)) || (rc = env_set(env, &n, "TMPDIR", ws)) ||
        (rc = env_set(env, &n, "LANG", "C.UTF-8"))) {
        free_env(env);
        return rc;
    }
    const cJSON *e;
    if (extra) {
        cJSON_ArrayForEach(e, extra) {
            if ((rc = env_set(env, &n, e->string, e->valuestring))) {
                free_env(env);
                return rc;
            }
        }
    }
    *out = env;
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* result                                                                                   */

static int add_text(cJSON *o, const char *key, const ggi_buf *b)
{
    char *clean = NULL;
    int rc = ggi_utf8_sanitize(b->data, b->len, &clean);
    if (rc)
        return rc;
    rc = ggi_json_add_str(o, key, clean);
    free(clean);
    return rc;
}

/* When each of the host's steps of a run ended (ggi_now_ms), for "stage_times". */
typedef struct run_stages {
    double begin, prepared, cgroup_made, spawned, cgroup_removed;
    ggi_zygote_times z;   /* a zygote job's steps (z.sent 0: it had none) */
} run_stages;

typedef struct run_info {
    int level;
    int zygote;      /* the job was forked from a zygote */
    int cgroup;      /* it had a cgroup of its own */
    long oom_kills;  /* processes the cgroup's OOM killer killed */
    long long memory_mb;
    const run_stages *stages; /* NULL: no "stages" in the result */
} run_info;

/* Adds name: b - a in ms (3 decimals) when both are known. */
static int add_span(cJSON *o, const char *name, double a, double b)
{
    if (a <= 0 || b <= 0)
        return GG_OK;
    return ggi_json_add_num(o, name, round((b - a) * 1000.0) / 1000.0);
}

/* "stages": where a run's time went, in ms. The host's steps: prepare (request, workspace
 * name, environment, program lookup), cgroup_create, run (the job from hand-over to its end
 * seen), cleanup (the cgroup emptied and removed, or the workspace removed), result (this
 * JSON), total. A zygote job's run in detail: handover (finding its zygote, the job's
 * pipes), dispatch (to the zygote and on to a job process made ahead), cgroup_join (and the request read), sandbox (the job's tmpfs,
 * workspace, files and user namespace), reply (back to the host), program (the job's code
 * with its interpreter's set-up and exit), collect (the end reported, output drained),
 * finish (the host's side of the job closed); and
 * what was made ahead of the job: ahead_pidns_fork (the zygote's unshare and fork of PID 1),
 * ahead_job_fork (PID 1's fork), ahead_namespaces (mount, IPC and UTS namespaces, /proc). */
static int add_stages(cJSON *o, const run_stages *s)
{
    cJSON *st = cJSON_AddObjectToObject(o, "stages");
    if (!st)
        return GG_ENOMEM;
    const ggi_zygote_times *z = &s->z;
    double now = ggi_now_ms();
    int rc;
    if ((rc = add_span(st, "prepare", s->begin, s->prepared)) ||
        (rc = add_span(st, "cgroup_create", s->prepared, s->cgroup_made)) ||
        (rc = add_span(st, "run", s->cgroup_made, s->spawned)) ||
        (rc = add_span(st, "handover", s->cgroup_made, z->sent)) ||
        (rc = add_span(st, "dispatch", z->sent, z->handed)) ||
        (rc = add_span(st, "cgroup_join", z->handed, z->request)) ||
        (rc = add_span(st, "sandbox", z->request, z->ready)) ||
        (rc = add_span(st, "reply", z->ready, z->replied)) ||
        (rc = add_span(st, "program", z->replied, z->reaped)) ||
        (rc = add_span(st, "collect", z->reaped, z->finished)) ||
        (rc = add_span(st, "finish", z->finished, s->spawned)) ||
        (rc = add_span(st, "ahead_pidns_fork", z->park, z->init)) ||
        (rc = add_span(st, "ahead_job_fork", z->init, z->job)) ||
        (rc = add_span(st, "ahead_namespaces", z->job, z->parked)) ||
        (rc = add_span(st, "cleanup", s->spawned, s->cgroup_removed)) ||
        (rc = add_span(st, "result", s->cgroup_removed, now)) ||
        (rc = add_span(st, "total", s->begin, now)))
        return rc;
    return GG_OK;
}

static int build_result(const ggi_spawn_result *r, const run_info *ri, char **out)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return ggi_error(GG_ENOMEM, "out of memory building the result");
    char sig[24];
    ggi_spawn_signal_name(r->term_signal, sig);
    int rc;
    if ((rc = ggi_json_add_num(o, "exit_code", r->exit_code)) ||
        (rc = ggi_json_add_num(o, "signal", r->term_signal)) ||
        (rc = ggi_json_add_str(o, "signal_name", r->term_signal ? sig : NULL)) ||
        (rc = ggi_json_add_bool(o, "timed_out", r->timed_out)) ||
        (rc = ggi_json_add_bool(o, "cancelled", r->cancelled)) ||
        (rc = ggi_json_add_num(o, "duration_ms", round(r->duration_ms * 1000.0) / 1000.0)) ||
        (rc = ggi_json_add_num(o, "max_rss_kb", (double)r->max_rss_kb)) ||
        (rc = add_text(o, "stdout", &r->out)) ||
        (rc = ggi_json_add_bool(o, "stdout_truncated", r->out_truncated)) ||
        (rc = add_text(o, "stderr", &r->err)) ||
        (rc = ggi_json_add_bool(o, "stderr_truncated", r->err_truncated)) ||
        (rc = ggi_json_add_str(o, "isolation", ggi_isolation_name(ri->level))) ||
        (rc = ggi_json_add_bool(o, "oom_killed", ri->oom_kills > 0)) ||
        (rc = ggi_json_add_bool(o, "zygote", ri->zygote)) ||
        (rc = ggi_json_add_bool(o, "cgroup", ri->cgroup))) {
        cJSON_Delete(o);
        return rc;
    }
    if (ri->oom_kills > 0) {
        char why[160];
        if (ri->memory_mb)
            snprintf(why, sizeof why, "out of memory: the job exceeded its memory limit of "
                                      "%lld MiB and was killed", ri->memory_mb);
        else
            snprintf(why, sizeof why, "out of memory: the kernel killed the job");
        rc = ggi_json_add_str(o, "reason", why);
    }
    if (!rc && ri->stages)
        rc = add_stages(o, ri->stages);
    if (rc) {
        cJSON_Delete(o);
        return rc;
    }
    char *s = ggi_json_print(o);
    cJSON_Delete(o);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory printing the result");
    *out = s;
    return GG_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the backend                                                                              */

/* The workspace path inside the sandbox: the host path when it lies below /tmp (the sandbox
 * makes it in its own tmpfs, so the path a job sees matches the host's naming), else
 * /tmp/<its name>, since the host directories above it need not be searchable by the
 * sandbox's uid. */
static char *inner_workspace(const char *ws)
{
    if (!strncmp(ws, "/tmp/", 5))
        return strdup(ws);
    const char *base = strrchr(ws, '/');
    return ggi_asprintf("/tmp/%s", base ? base + 1 : ws);
}

/* "root/gg-job-XXXXXX" with six letters or digits, as mkdtemp makes them (nothing is made:
 * each sandbox has a tmpfs of its own, so two jobs may even share a name). */
static char *sandbox_ws_name(const char *root)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned long counter;
    unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    uint64_t v = (uint64_t)n * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() << 32;
    char suffix[7];
    for (int i = 0; i < 6; i++) {
        suffix[i] = chars[v % 62];
        v /= 62;
    }
    suffix[6] = '\0';
    return ggi_asprintf("%s/gg-job-%s", root, suffix);
}

/* The request's files as the sandbox child writes them. */
static int sandbox_files(const cJSON *files, ggi_sandbox_file **out, size_t *n, size_t *bytes)
{
    *out = NULL;
    *n = 0;
    *bytes = 0;
    if (!files)
        return GG_OK;
    int count = cJSON_GetArraySize(files);
    if (count <= 0)
        return GG_OK;
    ggi_sandbox_file *f = calloc((size_t)count, sizeof *f);
    if (!f)
        return ggi_error(GG_ENOMEM, "out of memory");
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, files) {
        const char *path = cJSON_GetObjectItemCaseSensitive(e, "path")->valuestring;
        while (path[0] == '.' && path[1] == '/')
            path += 2;
        f[i].path = path;
        f[i].content = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
        f[i].len = strlen(f[i].content);
        *bytes += f[i].len;
        i++;
    }
    /* The same path twice would fail inside the sandbox with a vaguer message. */
    for (size_t a = 0; a < i; a++) {
        for (size_t b = a + 1; b < i; b++) {
            size_t la = strlen(f[a].path);
            if (!strcmp(f[a].path, f[b].path) ||
                (!strncmp(f[a].path, f[b].path, la) && f[b].path[la] == '/')) {
                int rc = ggi_error(GG_EINVAL, "files[%zu].path '%s' is given twice or is "
                                              "already a file", b, f[b].path);
                free(f);
                return rc;
            }
        }
    }
    *out = f;
    *n = i;
    return GG_OK;
}

/* Can the sandbox's uid reach and execute path (every directory above it searchable by
 * others)? 1 or 0, with the reason in why. */
static int sandbox_can_exec(const char *path, char *why, size_t n)
{
    char *real = realpath(path, NULL);
    if (!real)
        return 1; /* not found: the run reports it */
    int ok = 1;
    struct stat st;
    for (char *p = real + 1; ok; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (stat(real, &st) == 0 && st.st_uid != GGI_SANDBOX_UID &&
            !(st.st_mode & (c ? S_IXOTH : S_IXOTH | S_IROTH))) {
            snprintf(why, n, "'%s' is not %s by other users", real,
                     c ? "searchable" : "readable and executable");
            ok = 0;
        }
        *p = c;
        if (!c)
            break;
    }
    free(real);
    return ok;
}

/* One job's run in steps: the state the steps share, so each can be read alone. */
typedef struct job_run {
    proc_exec *pe;
    job jcopy;          /* the job as run (its level may give way to rlimits) */
    const job *j;       /* &jcopy */
    ggi_job_slot *slot;
    int sandboxed;
    const char *workdir; /* the caller's, or NULL */
    char *ws;            /* the workspace's host name */
    char **env;
    char *inner;         /* the workspace's name inside the sandbox */
    ggi_sandbox_file *sfiles;
    ggi_cgroup *cg;
    int cg_fds[MAX_CG_FDS];
    int n_cg;
    run_info ri;
    ggi_spawn_result r;
    ggi_sandbox_spec sb;
    ggi_sandbox_binds binds;
    run_stages stg;
    int ovl_fd;          /* an overlay copy's mount, or -1 */
    char ovl_view[40];
    ggi_overlay_attach oa;
} job_run;

/* The job runs as an unprivileged uid: a program it cannot reach (an interpreter in root's
 * home) cannot run in the sandbox. Asked-for isolation fails; the default level gives way to
 * rlimits for this job, and the result says so. */
static int settle_level(job *jc)
{
    if (jc->level != GGI_ISO_NAMESPACES)
        return GG_OK;
    char *prog = NULL, why[PATH_MAX + 64];
    int frc = ggi_spawn_find_program(jc->argv[0], "/usr/local/bin:/usr/bin:/bin", &prog);
    if (frc == GG_ENOMEM)
        return frc;
    /* (Without root the job keeps the host user's ids: what they reach, it reaches.) */
    int ok = frc || prog[0] != '/' || geteuid() != 0 || sandbox_can_exec(prog, why, sizeof why);
    free(prog);
    gg_error_clear();
    if (!ok && jc->explicit_level)
        return ggi_error(GG_EUNSUPPORTED, "isolation 'namespaces': '%s' cannot run as the "
                                          "sandbox's uid %d: %s; the job was not run",
                         jc->argv[0], GGI_SANDBOX_UID, why);
    if (!ok)
        jc->level = GGI_ISO_RLIMITS;
    return GG_OK;
}

/* A sandboxed job's workspace is made in its own tmpfs: on the host it only needs a name (of
 * the same form, so the path a job sees does not depend on its isolation). A "workdir" is the
 * caller's: used as it is (bound into the sandbox), never removed. */
static int name_workspace(job_run *jr)
{
    const char *root = jr->pe->root;
    jr->ws = jr->workdir ? strdup(jr->workdir)
             : jr->sandboxed ? sandbox_ws_name(root)
                             : ggi_asprintf("%s/gg-job-XXXXXX", root);
    if (!jr->ws)
        return ggi_error(GG_ENOMEM, "out of memory");
    if (!jr->sandboxed && !jr->workdir && !mkdtemp(jr->ws)) {
        int rc = ggi_error(GG_EEXEC, "cannot make a workspace under '%s': %s", root,
                           strerror(errno));
        free(jr->ws);
        jr->ws = NULL;
        return rc;
    }
    return GG_OK;
}

/* An overlay copy: mounted here, detached, and attached by the job in its own mount
 * namespace; the request's files are written through it. */
static int mount_overlay(job_run *jr)
{
    const job *j = jr->j;
    if (!j->r.ovl_lower)
        return GG_OK;
    int rc = ggi_overlay_mount(j->r.ovl_lower, j->r.ovl_upper, j->r.ovl_work, &jr->ovl_fd);
    if (rc)
        rc = ggi_error(GG_EEXEC, "cannot run the job: %s", gg_error_last());
    /* ("/." so that a walk that follows no link still enters the mount.) */
    snprintf(jr->ovl_view, sizeof jr->ovl_view, "/proc/self/fd/%d/.", jr->ovl_fd);
    jr->oa.fd = jr->ovl_fd;
    jr->oa.target = jr->ws;
    jr->oa.ro_path = j->r.ovl_lower;
    return rc;
}

/* A cgroup bounds the sandboxed job's memory and processes as a whole, where the host has
 * one: for a job spawned the direct way it is made here (a zygote's job process joined one
 * made ahead), its procs files opened for the child to join. */
static int make_cgroup(job_run *jr)
{
    const job *j = jr->j;
    int rc = ggi_cgroup_new(&jr->cg, (uint64_t)j->r.memory_mb << 20,
                            (uint64_t)(j->r.nproc ? j->r.nproc : DEFAULT_PIDS));
    if (!rc) {
        jr->n_cg = ggi_cgroup_open_procs(jr->cg, jr->cg_fds, MAX_CG_FDS);
        rc = jr->n_cg < 0 ? jr->n_cg : GG_OK;
        if (rc)
            jr->n_cg = 0;
    }
    if (rc)
        rc = ggi_error(GG_EEXEC, "%s", gg_error_last());
    jr->ri.cgroup = jr->cg != NULL;
    return rc;
}

/* The sandbox's description: files go into its tmpfs, the environment names the inner
 * workspace, and the program's prefix is bound in. */
static int prepare_sandboxed(job_run *jr)
{
    const job *j = jr->j;
    size_t nfiles = 0, bytes = 0;
    jr->inner = inner_workspace(jr->ws);
    int rc = jr->inner ? sandbox_files(j->r.files, &jr->sfiles, &nfiles, &bytes)
                       : ggi_error(GG_ENOMEM, "out of memory");
    if (!rc)
        rc = build_env(jr->inner, j->r.env, &jr->env);
    /* The job's root holds the runtime; a program elsewhere (an interpreter in /opt, a
     * virtual environment) brings its own prefix along. */
    char *prog = NULL;
    if (!rc && !ggi_spawn_find_program(j->argv[0], ggi_spawn_env_get(
                                                       (const char *const *)jr->env, "PATH"),
                                       &prog))
        ggi_sandbox_program_binds(&jr->binds, prog);
    free(prog);
    gg_error_clear();
    ggi_sandbox_spec *sb = &jr->sb;
    sb->binds = &jr->binds;
    long long mb = j->r.fsize_mb > MIN_TMPFS_MB ? j->r.fsize_mb : MIN_TMPFS_MB;
    sb->inner_ws = jr->inner;
    sb->host_ws = jr->workdir;
    sb->host_ws_fd = jr->ovl_fd;
    sb->tmpfs_bytes = ((uint64_t)mb << 20) + bytes;
    sb->files = jr->sfiles;
    sb->nfiles = nfiles;
    /* The job gets a group of its own when the host has cgroups: made ahead and joined
     * ahead by a zygote's job process, else made before it is spawned (spawn_job). */
    jr->ri.cgroup = ggi_cgroup_probe()->version != 0;
    sb->cgroup_fds = jr->cg_fds;
    jr->stg.prepared = jr->stg.cgroup_made = ggi_now_ms();
    return rc;
}

/* Without a sandbox the files are written into the host workspace (through the overlay when
 * there is one). */
static int prepare_host(job_run *jr)
{
    const job *j = jr->j;
    int rc = ggi_exec_write_files(jr->ovl_fd >= 0 ? jr->ovl_view : jr->ws, j->r.files,
                                  jr->workdir != NULL, (uid_t)-1, (gid_t)-1);
    if (!rc)
        rc = build_env(jr->ws, j->r.env, &jr->env);
    jr->stg.prepared = jr->stg.cgroup_made = ggi_now_ms();
    return rc;
}

/* The spawn's options: the request's limits at rlimits level and above. */
static void fill_spawn_opts(job_run *jr, ggi_spawn_opts *o)
{
    const job *j = jr->j;
    memset(o, 0, sizeof *o);
    o->argv = j->argv;
    o->envp = (const char *const *)jr->env;
    o->cwd = jr->sandboxed ? jr->inner : jr->ws;
    o->stdin_data = j->r.stdin_data;
    o->stdin_len = j->r.stdin_len;
    o->timeout_s = j->r.timeout_s;
    o->max_stdout = (size_t)j->r.max_output;
    o->max_stderr = (size_t)j->r.max_output;
    if (j->level >= GGI_ISO_RLIMITS) {
        o->cpu_s = j->r.cpu_s;
        o->fsize_bytes = (uint64_t)j->r.fsize_mb << 20;
        o->nofile = (uint64_t)j->r.nofile;
        /* A cgroup bounds the job's memory and processes as a whole; rlimits are the
         * fallback (RLIMIT_NPROC counts every process of the uid, RLIMIT_AS each process's
         * address space). */
        if (!jr->ri.cgroup) {
            o->as_bytes = (uint64_t)j->r.memory_mb << 20;
            o->nproc = (uint64_t)(j->r.nproc ? j->r.nproc : jr->sandboxed ? DEFAULT_PIDS : 0);
        }
    }
    o->cancel = &jr->slot->cancel;
    o->sandbox = jr->sandboxed ? &jr->sb : NULL;
    o->overlay = !jr->sandboxed && jr->ovl_fd >= 0 ? &jr->oa : NULL;
}

/* A Python job may start in a pre-started interpreter; *fallback stays 1 when it cannot (the
 * job is then spawned as usual). A zygote's jobs start inside its sandbox, where no host
 * directory is reached. */
static int run_in_zygote(job_run *jr, const ggi_spawn_opts *o, int *fallback)
{
    const job *j = jr->j;
    *fallback = 1;
    if (!(jr->sandboxed && jr->pe->zygote && j->zygote && !jr->workdir &&
          ggi_zygote_eligible(j->argv, (const char *const *)jr->env)))
        return GG_OK;
    char *py = NULL;
    int rc = ggi_spawn_find_program(j->argv[0], ggi_spawn_env_get(
                                                    (const char *const *)jr->env, "PATH"), &py);
    if (!rc) {
        ggi_zygote_job zj;
        memset(&zj, 0, sizeof zj);
        zj.python = py;
        zj.envp = (const char *const *)jr->env;
        zj.code = j->argv[2];
        zj.args = j->argv + 3;
        zj.sb = &jr->sb;
        zj.cpu_s = o->cpu_s;
        zj.as_bytes = o->as_bytes;
        zj.fsize_bytes = o->fsize_bytes;
        zj.nofile = o->nofile;
        zj.nproc = o->nproc;
        zj.times = &jr->stg.z;
        zj.cgroup = jr->ri.cgroup;
        zj.cg_memory = (uint64_t)j->r.memory_mb << 20;
        zj.cg_pids = (uint64_t)(j->r.nproc ? j->r.nproc : DEFAULT_PIDS);
        zj.cg_out = &jr->cg;
        rc = ggi_zygote_run(jr->pe->zpool, &zj, o, &jr->r, fallback);
        jr->ri.zygote = !*fallback;
        if (*fallback) {
            memset(&jr->stg.z, 0, sizeof jr->stg.z);
            ggi_spawn_result_free(&jr->r);
            rc = GG_OK;
        }
    }
    free(py);
    return rc;
}

/* The job itself: in a zygote or spawned; a failure to start is the executor's error. */
static int spawn_job(job_run *jr)
{
    ggi_spawn_opts o;
    fill_spawn_opts(jr, &o);
    int fallback = 1;
    int rc = run_in_zygote(jr, &o, &fallback);
    if (!rc && fallback && jr->ri.cgroup) {
        ggi_cgroup_destroy(&jr->cg);
        rc = make_cgroup(jr);
        jr->sb.ncgroup_fds = jr->n_cg;
        jr->stg.cgroup_made = ggi_now_ms();
    }
    if (!rc && fallback)
        rc = ggi_spawn_run(&o, &jr->r);
    if (rc == GG_EIO || rc == GG_EINVAL || rc == GG_EINTERNAL) {
        char msg[1024];
        snprintf(msg, sizeof msg, "cannot run the job: %s", gg_error_last());
        rc = gg_error_set(GG_EEXEC, msg);
    }
    return rc;
}

/* Everything the job held is released; a failed removal must not hide the job's outcome: its
 * error is dropped, and the job's result still stands. */
static int finish_job(job_run *jr, int rc, char **out)
{
    jr->stg.spawned = ggi_now_ms();
    for (int i = 0; i < jr->n_cg; i++)
        close(jr->cg_fds[i]);
    if (jr->ovl_fd >= 0)
        close(jr->ovl_fd); /* the job's namespace holds what it attached */
    if (jr->cg) {
        ggi_cgroup_kill(jr->cg);
        jr->ri.oom_kills = ggi_cgroup_oom_kills(jr->cg);
    }
    if (!rc && jr->r.cancelled)
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    int saved_code = gg_error_last_code();
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", gg_error_last());
    ggi_cgroup_destroy(&jr->cg);
    if (!jr->sandboxed && !jr->workdir)
        (void)ggi_workspace_remove(jr->ws);
    jr->stg.cgroup_removed = ggi_now_ms();
    if (rc)
        gg_error_set(saved_code, saved);
    else
        rc = build_result(&jr->r, &jr->ri, out);
    ggi_spawn_result_free(&jr->r);
    free_env(jr->env);
    free(jr->sfiles);
    free(jr->inner);
    free(jr->ws);
    return rc;
}

static int run_job(proc_exec *pe, const job *j0, ggi_job_slot *slot, char **out)
{
    job_run *jr = calloc(1, sizeof *jr);
    if (!jr)
        return ggi_error(GG_ENOMEM, "out of memory");
    jr->pe = pe;
    jr->jcopy = *j0;
    jr->j = &jr->jcopy;
    jr->slot = slot;
    jr->ovl_fd = -1;
    int rc = settle_level(&jr->jcopy);
    if (!rc) {
        jr->sandboxed = jr->j->level == GGI_ISO_NAMESPACES;
        jr->workdir = jr->j->r.workdir;
        rc = name_workspace(jr);
    }
    if (rc) {
        free(jr);
        return rc;
    }
    jr->ri.level = jr->j->level;
    jr->ri.memory_mb = jr->j->r.memory_mb;
    ggi_sandbox_spec_init(&jr->sb);
    jr->stg.begin = jr->j->t_begin;
    jr->ri.stages = jr->j->stage_times ? &jr->stg : NULL;
    rc = mount_overlay(jr);
    if (!rc)
        rc = jr->sandboxed ? prepare_sandboxed(jr) : prepare_host(jr);
    if (!rc && ggi_job_cancelled(slot))
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    if (!rc)
        rc = spawn_job(jr);
    rc = finish_job(jr, rc, out);
    free(jr);
    return rc;
}

static int pe_run(void *self, const char *request_json, char **out)
{
    proc_exec *pe = self;
    double t_begin = ggi_now_ms();
    *out = NULL;
    cJSON *req = NULL;
    int rc = ggi_exec_request_parse(request_json, &req);
    if (rc)
        return rc;
    job j;
    rc = check_request(pe, req, &j);
    j.t_begin = t_begin;
    if (!rc) {
        ggi_job_slot slot;
        ggi_job_register(&pe->reg, &slot);
        rc = run_job(pe, &j, &slot, out);
        ggi_job_unregister(&pe->reg, &slot);
    }
    free(j.argv);
    cJSON_Delete(req);
    return rc;
}

static int pe_interrupt(void *self)
{
    proc_exec *pe = self;
    (void)ggi_job_registry_cancel_all(&pe->reg, NULL);
    return GG_OK;
}

static void pe_destroy(void *self)
{
    proc_exec *pe = self;
    if (!pe)
        return;
    ggi_zygote_pool_destroy(&pe->zpool);
    ggi_job_registry_destroy(&pe->reg);
    free(pe->root);
    free(pe);
}

int ggi_process_executor_new(const gg_executor_options *opts, gg_executor_vtable *vt_out,
                             void **self_out)
{
    *self_out = NULL;
    const char *root = opts ? opts->workdir_root : NULL;
    if (!root || !*root) {
        const char *t = getenv("TMPDIR");
        root = (t && *t) ? t : "/tmp";
    }
    struct stat st;
    if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
        return ggi_error(GG_EINVAL, "workdir_root '%s' is not a directory", root);
    size_t max_output = opts && opts->max_output ? opts->max_output : DEFAULT_MAX_OUTPUT;
    if (max_output > GGI_PROCESS_MAX_BYTES)
        return ggi_error(GG_EINVAL, "max_output is %zu bytes, the limit is %u", max_output,
                         GGI_PROCESS_MAX_BYTES);
    double timeout = opts ? opts->default_timeout_s : 0;
    if (!isfinite(timeout) || timeout < 0 || timeout > MAX_TIMEOUT_S)
        return ggi_error(GG_EINVAL, "default_timeout_s must be from 0 to %g", MAX_TIMEOUT_S);

    int def_level = -1, min_level = GGI_ISO_NONE;
    /* The isolation fields exist from options version 2 on. */
    const char *iso = opts && opts->version >= 2 ? opts->isolation : NULL;
    const char *min_iso = opts && opts->version >= 2 ? opts->min_isolation : NULL;
    if (iso && ggi_isolation_parse(iso, &def_level))
        return ggi_error_wrap("option isolation: ");
    if (min_iso && ggi_isolation_parse(min_iso, &min_level))
        return ggi_error_wrap("option min_isolation: ");
    if (def_level < 0) {
        /* The strongest this host gives, but never below a stated minimum: a job must then
         * fail rather than run weaker. */
        def_level = ggi_sandbox_probe()->best;
        if (def_level < min_level)
            def_level = min_level;
    }

    proc_exec *pe = calloc(1, sizeof *pe);
    if (!pe)
        return ggi_error(GG_ENOMEM, "out of memory");
    pe->default_level = def_level;
    pe->default_explicit = iso != NULL;
    pe->min_level = min_level;
    /* The option when the host set it, else the environment, else on. */
    int zopt = opts ? opts->zygote : 0;
    const char *zy = getenv("GRYPHGEN_ZYGOTE");
    pe->zygote = zopt ? zopt > 0 : !(zy && !strcmp(zy, "0"));
    /* Absolute, so the job's cwd, HOME and TMPDIR never depend on the host's cwd. */
    pe->root = realpath(root, NULL);
    if (!pe->root) {
        int rc = errno == ENOMEM ? ggi_error(GG_ENOMEM, "out of memory")
                                 : ggi_error(GG_EINVAL, "workdir_root '%s': %s", root,
                                             strerror(errno));
        free(pe);
        return rc;
    }
    if (ggi_zygote_pool_new(&pe->zpool) != GG_OK) {
        free(pe->root);
        free(pe);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    if (ggi_job_registry_init(&pe->reg) != GG_OK) {
        ggi_zygote_pool_destroy(&pe->zpool);
        free(pe->root);
        free(pe);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    pe->max_output = max_output;
    pe->default_timeout_s = timeout > 0 ? timeout : DEFAULT_TIMEOUT_S;

    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = pe_run;
    vt.interrupt = pe_interrupt;
    vt.destroy = pe_destroy;
    vt.name = "process";
    /* Levels are ordered, weakest first: the host gives every level up to its best. */
    int best = ggi_sandbox_probe()->best;
    vt.caps = GG_EXECUTOR_CAP_UNPRIVILEGED_JOBS | GG_EXECUTOR_CAP_OVERLAY_WORKDIR |
              (best >= GGI_ISO_RLIMITS ? GG_EXECUTOR_CAP_ISOLATION_RLIMITS : 0u) |
              (best >= GGI_ISO_NAMESPACES ? GG_EXECUTOR_CAP_ISOLATION_NAMESPACES : 0u);
    *vt_out = vt;
    *self_out = pe;
    return GG_OK;
}
