/*
 * attempt_workspace.c - one attempt of a workspace task (docs/tasks.md, "Workspace tasks"):
 * the task's base from this machine's cache (made once per base tree; a setup_command runs
 * once per base and command in a copy that then serves as the base), context from an index
 * of the base's files, the generator's answer (a diff or whole files) applied to a fresh copy
 * of the base, the task's test_command run in that copy by the executor, and the copy
 * removed whatever happened. Faults of the machinery (cache, copy, executor) are reported as
 * infrastructure faults, never as failures of the code; a task whose own fields cannot work
 * (a workspace that is not there, a test or setup command that does not exist) ends as an
 * error naming the field.
 *
 * Where things live: a root per user, $GRYPHGEN_WS_ROOT or $TMPDIR/gryphgen-ws-<uid> (else
 * /tmp), holding cache/ (the ggi_ws_cache), prepared/ (bases after their setup command),
 * index/ (an FTS5 index per base tree), lower/ (the lower layers of overlay copies: a base
 * given to the job's user, once per base) and attempts/ (the copies, while an attempt runs).
 *
 * How a copy is made (docs/tasks.md, "What an attempt's copy costs"): an overlay where this
 * process may mount one (a root host, the process backend: an empty upper directory over
 * the base, O(1)); else hard links where that is safe, else a full copy. GRYPHGEN_WS_COPY
 * (full, link or overlay) overrides the choice where the asked mode can work.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "orq.h"
#include "../execution/overlay.h"
#include "../execution/executor_caps.h"
#include "../generation/hooks.h"
#include "../workspace/patch.h"
#include "../workspace/workspace.h"

#define WS_DEFAULT_TIMEOUT_S 120.0  /* a test suite takes longer than a snippet */
#define WS_DEFAULT_MEMORY_MB 2048
#define WS_LISTED_FILES 500          /* paths the generator's "workspace" object lists */
#define WS_CONTEXT_K 6
#define WS_CONTEXT_BUDGET 12000      /* characters of indexed text passed to the generator */
#define WS_INDEX_MAX_FILES 2000
#define WS_INDEX_MAX_FILE (256u << 10)
#define WS_INDEX_MAX_BYTES (32u << 20)
#define WS_FAILED_NAMES 10           /* failing tests named in a reason */
#define WS_NAME_MAX 200

/* ------------------------------------------------------------------ the machine's root */

static pthread_mutex_t ws_mu = PTHREAD_MUTEX_INITIALIZER;
static ggi_ws_cache *ws_cache;   /* opened lazily, lives as long as the process */
static char *ws_root;
static atomic_ulong ws_serial;

/* Makes dir (mode) when missing and checks it is a directory of ours, not a link. */
static int own_dir(const char *dir, mode_t mode)
{
    if (mkdir(dir, mode) != 0 && errno != EEXIST)
        return ggi_error(GG_EIO, "cannot make '%s': %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0)
        return ggi_error(GG_EIO, "cannot read '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return ggi_error(GG_EIO, "'%s' is not a directory of this user (uid %u)", dir,
                         (unsigned)geteuid());
    if ((st.st_mode & 07777) != mode && chmod(dir, mode) != 0)
        return ggi_error(GG_EIO, "cannot change the mode of '%s': %s", dir, strerror(errno));
    return GG_OK;
}

/* Removes the copies under attempts/ that a process which died (killed in the middle of an
 * attempt) left behind: their names carry the pid that made them. */
static void remove_stale(const char *root)
{
    char *dir = ggi_asprintf("%s/attempts", root);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *dash = strchr(e->d_name, '-');
        long pid = dash ? strtol(dash + 1, NULL, 10) : 0;
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = ggi_asprintf("%s/%s", dir, e->d_name);
        if (p)
            ggi_ws_remove(p);
        free(p);
    }
    if (d)
        closedir(d);
    free(dir);
}

/* The root and the cache, opened once (under ws_mu). */
static int ws_open(ggi_ws_cache **out_cache, const char **out_root)
{
    int rc = GG_OK;
    pthread_mutex_lock(&ws_mu);
    if (!ws_cache) {
        const char *env = getenv("GRYPHGEN_WS_ROOT");
        const char *tmp = getenv("TMPDIR");
        char *root = env && *env ? ggi_strdup(env)
                                 : ggi_asprintf("%s/gryphgen-ws-%u",
                                                tmp && *tmp == '/' ? tmp : "/tmp",
                                                (unsigned)geteuid());
        char *cache = root ? ggi_asprintf("%s/cache", root) : NULL;
        const char *subs[] = { "prepared", "index", "attempts", "lower" };
        if (!root || !cache)
            rc = ggi_error(GG_ENOMEM, "out of memory");
        /* All private (0700): a copy's directories may be writable by anyone who reaches
         * them (link copies; full copies given to the sandbox's uid), and a sandboxed job
         * gets its copy bound into its sandbox, not by walking down to it. */
        if (!rc)
            rc = own_dir(root, 0700);
        for (size_t i = 0; !rc && i < sizeof subs / sizeof subs[0]; i++) {
            char *d = ggi_asprintf("%s/%s", root, subs[i]);
            rc = d ? own_dir(d, 0700) : ggi_error(GG_ENOMEM, "out of memory");
            free(d);
        }
        if (!rc)
            rc = ggi_ws_cache_open(cache, &ws_cache);
        free(cache);
        if (rc) {
            free(root);
        } else {
            ws_root = root;
            remove_stale(root);
        }
    }
    *out_cache = ws_cache;
    *out_root = ws_root;
    pthread_mutex_unlock(&ws_mu);
    return rc;
}

/* ------------------------------------------------------------------ small helpers */

static const char *str_of(const cJSON *o, const char *k)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
    return s ? s : "";
}

static double num_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The last max bytes of text, starting at a line when one starts near. */
static const char *tail_of(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n <= max)
        return text;
    const char *p = text + n - max;
    const char *nl = memchr(p, '\n', max / 4);
    if (nl)
        return nl + 1;
    while (*p && ((unsigned char)*p & 0xC0) == 0x80)
        p++;
    return p;
}

/* Makes a tree read-only (files lose their write bits, directories 0555), without following
 * symbolic links: a prepared base is a base like the cache's. */
static int make_read_only(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return ggi_error(GG_EIO, "cannot read '%s': %s", dir, strerror(errno));
    int rc = GG_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = ggi_asprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (!p)
            rc = ggi_error(GG_ENOMEM, "out of memory");
        else if (lstat(p, &st) != 0)
            rc = ggi_error(GG_EIO, "cannot read '%s': %s", p, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = make_read_only(p);
        else if (S_ISREG(st.st_mode) && chmod(p, st.st_mode & 07555) != 0)
            rc = ggi_error(GG_EIO, "cannot change the mode of '%s': %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
    if (!rc && chmod(dir, 0555) != 0)
        rc = ggi_error(GG_EIO, "cannot change the mode of '%s': %s", dir, strerror(errno));
    return rc;
}

/* The uid the namespace sandbox runs jobs as on a root host (docs/executor.md). */
#define SANDBOX_UID 65534

/* Changes the owner of every entry of a tree (not following symbolic links). */
static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
    if (lchown(dir, uid, gid) != 0)
        return ggi_error(GG_EIO, "cannot change the owner of '%s': %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return GG_OK;
    DIR *d = opendir(dir);
    if (!d)
        return ggi_error(GG_EIO, "cannot read '%s': %s", dir, strerror(errno));
    int rc = GG_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = ggi_asprintf("%s/%s", dir, e->d_name);
        rc = p ? chown_tree(p, uid, gid) : ggi_error(GG_ENOMEM, "out of memory");
        free(p);
    }
    closedir(d);
    return rc;
}

/* Whether jobs may run as the sandbox's uid rather than as this process's user: on a root
 * host with a backend that says so (the process backend's namespace level maps jobs onto
 * "nobody"). */
static int jobs_may_be_nobody(const ggi_attempt_env *env)
{
    return geteuid() == 0 &&
           (ggi_executor_caps(env->executor) & GG_EXECUTOR_CAP_UNPRIVILEGED_JOBS);
}

/* A new attempt directory path under attempts/ (not made). */
static char *attempt_dir(const char *root, const char *what)
{
    return ggi_asprintf("%s/attempts/%s-%ld-%lu", root, what, (long)getpid(),
                        (unsigned long)atomic_fetch_add(&ws_serial, 1));
}

/* The owner a copy is given: the sandbox's uid where jobs may run as it, else the
 * process's own (-1: kept). */
static uid_t job_uid(const ggi_attempt_env *env)
{
    return jobs_may_be_nobody(env) ? (uid_t)SANDBOX_UID : (uid_t)-1;
}

/* Says once per process why copies are not overlays (a forced mode that cannot work, a host
 * that cannot mount one). */
static void note_once(const ggi_attempt_env *env, const char *fmt, const char *a,
                      const char *b)
{
    static atomic_int said;
    if (atomic_exchange(&said, 1) == 0)
        ggi_log(env->log, GG_LOG_INFO, fmt, a, b);
}

/* Whether overlay copies work here: a backend whose jobs attach the overlay this process
 * mounts (GG_EXECUTOR_CAP_OVERLAY_WORKDIR) and a probe that mounted one under attempts/ (once
 * per process). */
static int overlay_ok(const ggi_attempt_env *env, const char *root, const char **why)
{
    *why = "the executor does not take overlay workdirs";
    if (!(ggi_executor_caps(env->executor) & GG_EXECUTOR_CAP_OVERLAY_WORKDIR))
        return 0;
    char *scratch = ggi_asprintf("%s/attempts", root);
    int ok = scratch && ggi_overlay_probe(scratch, why);
    free(scratch);
    return ok;
}

/* How a copy is made. An overlay where one can be mounted. Else hard links only where the
 * job cannot write the base's files: a task that asks for the namespace sandbox on a root
 * host (its jobs run as uid 65534, the links' files are root's and read-only). Else a full
 * copy, which on a root host is given to uid 65534, so that a job in the namespace sandbox
 * (the default level there) can write in it as a job running as root can anyway.
 * GRYPHGEN_WS_COPY=full|link|overlay asks for a mode; one that cannot work here (link where
 * a job could write the base through its links, overlay where none mounts) gives a full
 * copy, said once in the log. */
static int copy_mode(const ggi_attempt_env *env, const ggi_task *t, const char *root)
{
    const char *force = getenv("GRYPHGEN_WS_COPY");
    const char *why = "";
    int link_safe = jobs_may_be_nobody(env) && t->isolation &&
                    strcmp(t->isolation, "namespaces") == 0;
    if (force && *force) {
        if (strcmp(force, "full") == 0)
            return GGI_WS_COPY_FULL;
        if (strcmp(force, "link") == 0) {
            if (link_safe)
                return GGI_WS_COPY_LINK;
            note_once(env, "GRYPHGEN_WS_COPY=%s: %s; attempts get full copies", force,
                      "a job could write the base through hard links here");
            return GGI_WS_COPY_FULL;
        }
        if (strcmp(force, "overlay") != 0)
            note_once(env, "GRYPHGEN_WS_COPY='%s' is not full, link or overlay%s; the default "
                      "is used", force, "");
    }
    if (overlay_ok(env, root, &why))
        return GGI_WS_COPY_OVERLAY;
    note_once(env, "workspace copies: no overlay (%s)%s", why,
              link_safe ? "; hard links or full copies instead" : "; full copies instead");
    return link_safe ? GGI_WS_COPY_LINK : GGI_WS_COPY_FULL;
}

/* Gives what an answer made (its paths as ggi_patch_apply reported them, the directories on
 * their way and the copy's root) to the user its job may run as: the rest of a full copy
 * was given while it was made, and an overlay's lower layer is that user's already. */
static int give_changed(const char *dir, const cJSON *changed, uid_t uid)
{
    if (uid == (uid_t)-1)
        return GG_OK;
    struct stat st;
    if (lstat(dir, &st) != 0 || (st.st_uid != uid && lchown(dir, uid, uid) != 0))
        return ggi_error(GG_EIO, "cannot change the owner of '%s': %s", dir, strerror(errno));
    const cJSON *c;
    cJSON_ArrayForEach(c, changed)
    {
        if (!cJSON_IsString(c))
            continue;
        char *p = ggi_asprintf("%s/%s", dir, c->valuestring);
        if (!p)
            return ggi_error(GG_ENOMEM, "out of memory");
        /* Each directory on the way, then the entry itself (gone when it was deleted). */
        size_t skip = strlen(dir) + 1;
        for (char *q = p + skip;; q++) {
            char ch = *q;
            if (ch != '/' && ch != '\0')
                continue;
            *q = '\0';
            int rc = GG_OK;
            if (lstat(p, &st) == 0 && st.st_uid != uid && lchown(p, uid, uid) != 0)
                rc = ggi_error(GG_EIO, "cannot change the owner of '%s': %s", p,
                               strerror(errno));
            *q = ch;
            if (rc != GG_OK || ch == '\0') {
                free(p);
                if (rc != GG_OK)
                    return rc;
                break;
            }
        }
    }
    return GG_OK;
}

/*
 * The lower layer of overlay copies of from: a full copy of it given to the job's user
 * (overlay checks a file's owner and mode on its lower layer: the base's are this user's and
 * read-only, and a job must be able to write a tracked file in place), made once per base
 * and user under lower/<name of from>-<uid>: into attempts/, then renamed into place. Jobs
 * never see its path: a sandboxed job sees only the merged view, another gets it bound
 * read-only in its mount namespace. *out is malloc'd.
 */
static int overlay_lower(const ggi_attempt_env *env, const char *root, const char *from,
                         char **out)
{
    static pthread_mutex_t lower_mu = PTHREAD_MUTEX_INITIALIZER;
    uid_t uid = job_uid(env);
    const char *name = strrchr(from, '/');
    name = name ? name + 1 : from;
    *out = ggi_asprintf("%s/lower/%s-%ld", root, name, uid == (uid_t)-1 ? -1L : (long)uid);
    if (!*out)
        return ggi_error(GG_ENOMEM, "out of memory");
    struct stat st;
    pthread_mutex_lock(&lower_mu);
    int rc = GG_OK;
    if (!(lstat(*out, &st) == 0 && S_ISDIR(st.st_mode))) {
        char *tmp = attempt_dir(root, "lower");
        rc = tmp ? ggi_ws_copy_owned(from, tmp, GGI_WS_COPY_FULL, uid, uid)
                 : ggi_error(GG_ENOMEM, "out of memory");
        /* Another process may have won the race: its lower layer is as good as this one. */
        if (rc == GG_OK && rename(tmp, *out) != 0 && errno != EEXIST && errno != ENOTEMPTY)
            rc = ggi_error(GG_EIO, "cannot put '%s' in place: %s", *out, strerror(errno));
        if (tmp)
            ggi_ws_remove(tmp); /* nothing there after the rename */
        free(tmp);
    }
    pthread_mutex_unlock(&lower_mu);
    if (rc != GG_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The executor request that runs argv in dir with the task's limits; lower, when not NULL,
 * makes dir an overlay copy (its layers below dir, workspace.h) whose merged view the job
 * runs in. */
static cJSON *command_request(const ggi_task *t, const cJSON *cmd, const char *dir,
                              const char *lower)
{
    cJSON *req = cJSON_CreateObject(), *argv = NULL;
    if (!req || ggi_task_command_argv(cmd, &argv) != GG_OK) {
        cJSON_Delete(req);
        return NULL;
    }
    cJSON_AddItemToObject(req, "argv", argv);
    if (lower) {
        char *merged = ggi_asprintf("%s/" GGI_WS_OVERLAY_MERGED, dir);
        char *upper = ggi_asprintf("%s/" GGI_WS_OVERLAY_UPPER, dir);
        char *work = ggi_asprintf("%s/" GGI_WS_OVERLAY_WORK, dir);
        cJSON *ov = cJSON_AddObjectToObject(req, "overlay");
        int ok = merged && upper && work && ov && cJSON_AddStringToObject(ov, "lower", lower) &&
                 cJSON_AddStringToObject(ov, "upper", upper) &&
                 cJSON_AddStringToObject(ov, "work", work) &&
                 cJSON_AddStringToObject(req, "workdir", merged);
        free(merged);
        free(upper);
        free(work);
        if (!ok) {
            cJSON_Delete(req);
            return NULL;
        }
    } else {
        cJSON_AddStringToObject(req, "workdir", dir);
    }
    cJSON *l = cJSON_AddObjectToObject(req, "limits");
    cJSON_AddNumberToObject(l, "timeout_s", t->timeout_s > 0 ? t->timeout_s
                                                             : WS_DEFAULT_TIMEOUT_S);
    cJSON_AddNumberToObject(l, "memory_mb", t->memory_mb > 0 ? t->memory_mb
                                                             : WS_DEFAULT_MEMORY_MB);
    if (t->cpu_s > 0)
        cJSON_AddNumberToObject(l, "cpu_s", t->cpu_s);
    if (ggi_attempt_task_request(t, req) != GG_OK) {
        cJSON_Delete(req);
        return NULL;
    }
    return req;
}

/* Whether a command's result says the command itself was not found (sh's exit 127). */
static int not_found(const cJSON *res)
{
    return num_of(res, "exit_code") == 127 && num_of(res, "signal") == 0 &&
           (strstr(str_of(res, "stderr"), "not found") ||
            strstr(str_of(res, "stderr"), "No such file"));
}

/* The program a command names, for messages. */
static const char *command_name(const cJSON *cmd)
{
    if (cJSON_IsString(cmd))
        return cmd->valuestring;
    const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(cmd, 0));
    return s ? s : "?";
}

/* ------------------------------------------------------------------ setup */

/*
 * The directory later copies are made from: the base itself, or (with a setup_command) a
 * copy of it in which the command ran once and which was then made read-only, kept under
 * prepared/<tree>-<hash of the command> for every later attempt on this machine. *out_dir
 * is malloc'd. On failure rec is marked (a command that fails or does not exist ends the
 * task as an error naming 'setup_command').
 */
static int prepare(const ggi_attempt_env *env, const ggi_task *t, const char *root,
                   const char *base, const char *tree, cJSON *rec, char **out_dir)
{
    *out_dir = NULL;
    if (!t->setup_command) {
        *out_dir = ggi_strdup(base);
        return *out_dir ? GG_OK : ggi_attempt_infra(rec, "setup", GG_ENOMEM, "out of memory",
                                                    1);
    }
    char *cmd = ggi_json_print(t->setup_command);
    char h[17];
    ggi_hash_hex(cmd ? cmd : "", cmd ? strlen(cmd) : 0, h);
    free(cmd);
    char *dir = ggi_asprintf("%s/prepared/%s-%s", root, tree, h);
    if (!dir)
        return ggi_attempt_infra(rec, "setup", GG_ENOMEM, "out of memory", 1);
    /* One setup at a time in this process (another process racing does the same work and
     * loses the rename). */
    static pthread_mutex_t setup_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&setup_mu);
    struct stat st;
    int rc = GG_OK;
    if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        pthread_mutex_unlock(&setup_mu);
        *out_dir = dir;
        return GG_OK;
    }
    char *tmp = attempt_dir(root, "setup");
    cJSON *req = NULL, *res = NULL;
    if (!tmp) {
        rc = ggi_attempt_infra(rec, "setup", GG_ENOMEM, "out of memory", 1);
        goto out;
    }
    if ((rc = ggi_ws_copy_owned(base, tmp, GGI_WS_COPY_FULL, job_uid(env), job_uid(env))) !=
        GG_OK) {
        rc = ggi_attempt_infra(rec, "setup", rc, gg_error_last(), 1);
        goto out;
    }
    req = command_request(t, t->setup_command, tmp, NULL);
    if (!req) {
        rc = ggi_attempt_infra(rec, "setup", GG_ENOMEM, "out of memory", 1);
        goto out;
    }
    rc = ggi_attempt_execute(env, req, &res);
    if (rc == GG_ENOTFOUND || (rc == GG_OK && not_found(res))) {
        char *m = ggi_asprintf("field 'setup_command': '%s' was not found", command_name(
                                   t->setup_command));
        ggi_attempt_infra(rec, "setup", GG_ENOTFOUND, m, 0);
        free(m);
        rc = GG_ENOTFOUND;
        goto out;
    }
    if (rc != GG_OK) {
        ggi_attempt_infra(rec, "setup", rc, gg_error_last(), -1);
        goto out;
    }
    if (num_of(res, "exit_code") != 0 || num_of(res, "signal") != 0 ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "timed_out"))) {
        const char *err = str_of(res, "stderr");
        char *m = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "timed_out"))
                      ? ggi_asprintf("field 'setup_command' timed out")
                  : num_of(res, "signal") != 0
                      ? ggi_asprintf("field 'setup_command' was killed by signal %d",
                                     (int)num_of(res, "signal"))
                      : ggi_asprintf("field 'setup_command' exited with %d%s%s",
                                     (int)num_of(res, "exit_code"), *err ? ": " : "",
                                     tail_of(err, 500));
        ggi_attempt_infra(rec, "setup", GG_EINVAL, m, 0);
        free(m);
        rc = GG_EINVAL;
        goto out;
    }
    /* Back to this user before it becomes a base: a job must never own a base's files. */
    if ((rc = chown_tree(tmp, geteuid(), getegid())) != GG_OK ||
        (rc = make_read_only(tmp)) != GG_OK) {
        ggi_attempt_infra(rec, "setup", rc, gg_error_last(), 1);
        goto out;
    }
    if (rename(tmp, dir) != 0 && !(errno == EEXIST || errno == ENOTEMPTY)) {
        rc = ggi_attempt_infra(rec, "setup", GG_EIO, strerror(errno), 1);
        rc = GG_EIO;
        goto out;
    }
out:
    if (tmp)
        ggi_ws_remove(tmp); /* after a rename: nothing there */
    free(tmp);
    cJSON_Delete(req);
    cJSON_Delete(res);
    pthread_mutex_unlock(&setup_mu);
    if (rc != GG_OK || cJSON_GetObjectItemCaseSensitive(rec, "infra")) {
        free(dir);
        return rc ? rc : GG_EIO;
    }
    *out_dir = dir;
    return GG_OK;
}

/* ------------------------------------------------------------------ listing and context */

/* Lists the regular files of a tree (relative paths, sorted by the walk's order), at most
 * max; *truncated when there were more. Skips .git. */
static void list_files(const char *dir, const char *rel, cJSON *out, int max, int *truncated)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
            continue;
        char *p = ggi_asprintf("%s/%s", dir, e->d_name);
        char *r = *rel ? ggi_asprintf("%s/%s", rel, e->d_name) : ggi_strdup(e->d_name);
        struct stat st;
        if (p && r && lstat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                list_files(p, r, out, max, truncated);
            else if (S_ISREG(st.st_mode)) {
                if (cJSON_GetArraySize(out) < max)
                    cJSON_AddItemToArray(out, cJSON_CreateString(r));
                else
                    *truncated = 1;
            }
        }
        free(p);
        free(r);
        if (*truncated)
            break;
    }
    closedir(d);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts an array of strings in place. */
static void sort_strings(cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    if (n < 2)
        return;
    char **v = calloc((size_t)n, sizeof *v);
    if (!v)
        return;
    int i = 0;
    cJSON *s;
    cJSON_ArrayForEach(s, arr) v[i++] = s->valuestring;
    qsort(v, (size_t)n, sizeof *v, cmp_strings);
    i = 0;
    cJSON_ArrayForEach(s, arr) s->valuestring = v[i++];
    free(v);
}

/* Whether a file looks like text (no NUL in its first 8 KiB). */
static char *read_text_file(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[got] = 0;
    if (memchr(buf, 0, got < 8192 ? got : 8192) || strlen(buf) != got) {
        free(buf);
        return NULL;
    }
    return buf;
}

/*
 * The index of a base (an FTS5 retriever over its text files), built once per tree under
 * index/<tree>.db: into a temporary file, renamed into place. NULL when it cannot be made
 * (the attempt goes on without context).
 */
static gg_retriever_t *open_index(const ggi_attempt_env *env, const char *root,
                                  const char *base, const char *tree, const cJSON *files)
{
    static pthread_mutex_t index_mu = PTHREAD_MUTEX_INITIALIZER;
    char *db = ggi_asprintf("%s/index/%s.db", root, tree);
    if (!db)
        return NULL;
    gg_retriever_t *r = NULL;
    gg_retriever_options o = GG_RETRIEVER_OPTIONS_INIT;
    o.backend = "fts5";
    o.exploration = 0;
    o.seed = 1;
    pthread_mutex_lock(&index_mu);
    if (access(db, F_OK) != 0) {
        char *tmp = ggi_asprintf("%s/index/.%s-%ld.db", root, tree, (long)getpid());
        o.db_path = tmp;
        int rc = tmp ? gg_retriever_new(&r, &o) : GG_ENOMEM;
        size_t bytes = 0;
        int n = 0;
        const cJSON *f;
        cJSON_ArrayForEach(f, files)
        {
            if (rc || n >= WS_INDEX_MAX_FILES || bytes > WS_INDEX_MAX_BYTES)
                break;
            char *p = ggi_asprintf("%s/%s", base, f->valuestring);
            char *text = p ? read_text_file(p, WS_INDEX_MAX_FILE) : NULL;
            free(p);
            if (!text || !*text) {
                free(text);
                continue;
            }
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddStringToObject(doc, "source", f->valuestring);
            cJSON_AddStringToObject(doc, "text", text);
            cJSON_AddStringToObject(doc, "kind", "workspace");
            char *dtext = ggi_json_print(doc);
            cJSON_Delete(doc);
            bytes += strlen(text);
            free(text);
            n++;
            /* A file the chunker refuses costs only itself. */
            if (dtext && gg_retriever_add(r, dtext, NULL) != GG_OK)
                ggi_log(env->log, GG_LOG_DEBUG, "workspace index: '%s' skipped: %s",
                        f->valuestring, gg_error_last());
            free(dtext);
        }
        gg_retriever_destroy(&r);
        if (rc == GG_OK && rename(tmp, db) != 0)
            rc = GG_EIO;
        if (rc != GG_OK && tmp) {
            unlink(tmp);
            ggi_log(env->log, GG_LOG_WARN, "cannot index the workspace %s: %s", tree,
                    gg_error_last());
        }
        free(tmp);
    }
    pthread_mutex_unlock(&index_mu);
    o.db_path = db;
    if (access(db, F_OK) != 0 || gg_retriever_new(&r, &o) != GG_OK)
        r = NULL;
    free(db);
    return r;
}

/* The context of an attempt: the base's chunks that best match the prompt and the last
 * feedback's reason, within the budget. */
static cJSON *workspace_context(gg_retriever_t *r, const ggi_task *t, const cJSON *job,
                                const ggi_logger *log)
{
    cJSON *ctx = cJSON_CreateArray();
    if (!r || !ctx)
        return ctx;
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(job, "feedback");
    const char *last = str_of(cJSON_GetArrayItem(fb, cJSON_GetArraySize(fb) - 1), "reason");
    char *text = ggi_asprintf("%s %s", t->prompt ? t->prompt : "", last);
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "text", text ? text : "");
    cJSON_AddStringToObject(q, "language", t->language);
    cJSON_AddNumberToObject(q, "k", WS_CONTEXT_K);
    free(text);
    char *qtext = ggi_json_print(q);
    cJSON_Delete(q);
    char *rtext = NULL;
    if (!qtext || gg_retriever_search(r, qtext, &rtext) != GG_OK) {
        ggi_log(log, GG_LOG_WARN, "workspace retrieval failed, going on without context: %s",
                gg_error_last());
        free(qtext);
        return ctx;
    }
    free(qtext);
    cJSON *res = cJSON_Parse(rtext);
    gg_free(rtext);
    size_t used = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(res, "results"))
    {
        const char *s = str_of(item, "text");
        if (!*s || used + strlen(s) > WS_CONTEXT_BUDGET)
            continue;
        used += strlen(s);
        cJSON_AddItemToArray(ctx, cJSON_Duplicate(item, 1));
    }
    cJSON_Delete(res);
    return ctx;
}

/* The task as the generator sees it: the normalised form without what only machines read
 * (the packfile; inline files are listed and retrieved like any other). */
static cJSON *request_task(const ggi_task *t)
{
    cJSON *task = ggi_task_to_json(t);
    cJSON *ws = cJSON_GetObjectItemCaseSensitive(task, "workspace");
    cJSON_DeleteItemFromObjectCaseSensitive(ws, "pack");
    cJSON_DeleteItemFromObjectCaseSensitive(ws, "files");
    return task;
}

/* ------------------------------------------------------------------ reading test output */

/* Adds a failing test's name once (trimmed, capped). */
static void add_name(cJSON *names, const char *s, size_t n)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    while (n && *s == ' ') {
        s++;
        n--;
    }
    if (!n || cJSON_GetArraySize(names) >= WS_FAILED_NAMES)
        return;
    char *name = ggi_strndup(s, n > WS_NAME_MAX ? WS_NAME_MAX : n);
    if (!name)
        return;
    const cJSON *e;
    cJSON_ArrayForEach(e, names) if (!strcmp(e->valuestring, name))
    {
        free(name);
        return;
    }
    cJSON_AddItemToArray(names, cJSON_CreateString(name));
    free(name);
}

/* Reads the failing tests out of one line of output, in the forms of common runners. */
static void scan_line(const char *l, size_t n, cJSON *names, char *summary, size_t cap)
{
    char line[512];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, l, k);
    line[k] = 0;
    const char *p;
    if (!strncmp(line, "FAILED ", 7) && line[7] != '(') { /* pytest: FAILED path::name - msg
                                                              * (unittest's FAILED (failures=1)
                                                              * is no name) */
        p = line + 7;
        const char *end = strstr(p, " - ");
        add_name(names, p, end ? (size_t)(end - p) : strlen(p));
    } else if ((p = strstr(line, "--- FAIL: "))) { /* go test */
        p += 10;
        add_name(names, p, strcspn(p, " ("));
    } else if (!strncmp(line, "test ", 5) && (p = strstr(line, " ... FAILED"))) { /* cargo */
        add_name(names, line + 5, (size_t)(p - (line + 5)));
    } else if (!strncmp(line, "FAIL: ", 6) || !strncmp(line, "ERROR: ", 7)) { /* unittest */
        p = line + (line[1] == 'A' ? 6 : 7);
        add_name(names, p, strlen(p));
    } else if (!strncmp(line, "not ok ", 7)) { /* TAP (node --test, prove) */
        p = line + 7;
        p += strspn(p, "0123456789");
        p += strspn(p, " -");
        const char *hash = strstr(p, " # ");
        add_name(names, p, hash ? (size_t)(hash - p) : strlen(p));
    } else if ((p = strstr(line, "Tests run:")) && strstr(p, "Failures:")) { /* JUnit */
        snprintf(summary, cap, "%s", p);
    } else if ((p = strstr(line, "AssertionError")) && !*summary) { /* node assert */
        snprintf(summary, cap, "%s", p);
    }
}

/* The failing tests named in a test run's output, and a summary line when one says more. */
static void failing_tests(const cJSON *res, cJSON *names, char *summary, size_t cap)
{
    const char *streams[] = { str_of(res, "stdout"), str_of(res, "stderr") };
    summary[0] = 0;
    for (int s = 0; s < 2; s++) {
        const char *p = streams[s];
        while (*p) {
            size_t n = strcspn(p, "\n");
            scan_line(p, n, names, summary, cap);
            p += n;
            if (*p)
                p++;
        }
    }
}

/* The verdict of a test run: passed, or a reason naming what failed, and a signature. */
static void read_tests(const ggi_task *t, const cJSON *res, cJSON *rec)
{
    int passed = num_of(res, "exit_code") == 0 && num_of(res, "signal") == 0 &&
                 !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "timed_out")) &&
                 !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "cancelled"));
    cJSON_AddBoolToObject(rec, "passed", passed);
    if (passed) {
        cJSON_AddNullToObject(rec, "reason");
        return;
    }
    cJSON *names = cJSON_CreateArray();
    char summary[240];
    failing_tests(res, names, summary, sizeof summary);
    char how[96];
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "timed_out")))
        snprintf(how, sizeof how, "test command timed out after %g s",
                 t->timeout_s > 0 ? t->timeout_s : WS_DEFAULT_TIMEOUT_S);
    else if (num_of(res, "signal") != 0)
        snprintf(how, sizeof how, "test command killed by signal %d", (int)num_of(res, "signal"));
    else
        snprintf(how, sizeof how, "test command exited with %d", (int)num_of(res, "exit_code"));
    ggi_buf reason = GGI_BUF_INIT, sig = GGI_BUF_INIT;
    ggi_buf_printf(&reason, "%s", how);
    ggi_buf_printf(&sig, "tests:%s", how + 13);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, names)
    {
        ggi_buf_printf(&reason, "%s%s", i ? ", " : "; failed: ", e->valuestring);
        ggi_buf_printf(&sig, "|%s", e->valuestring);
        i++;
    }
    if (summary[0]) {
        summary[strcspn(summary, "\r")] = 0;
        ggi_buf_printf(&reason, " (%s)", summary);
    }
    if (!i && !summary[0]) {
        /* Nothing recognised: the output's last line says the most. */
        const char *err = str_of(res, "stderr");
        if (!*err)
            err = str_of(res, "stdout");
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            n--;
        size_t start = n;
        while (start && err[start - 1] != '\n')
            start--;
        if (n > start)
            ggi_buf_printf(&reason, ": %.*s", (int)(n - start > 200 ? 200 : n - start),
                           err + start);
    }
    ggi_json_add_str(rec, "reason", reason.data);
    ggi_json_add_str(rec, "signature", sig.data);
    if (cJSON_GetArraySize(names))
        cJSON_AddItemToObject(rec, "failed_tests", names);
    else
        cJSON_Delete(names);
    ggi_buf_free(&reason);
    ggi_buf_free(&sig);
}

/* Makes an attempt's copy of from at copy the way mode says, given to the job's user. An
 * overlay copy also gets its lower layer (*lower, malloc'd) and is mounted (*ovl_fd, a
 * detached mount of its merged view, overlay.h). */
static int make_copy(const ggi_attempt_env *env, const char *root, const char *from,
                     const char *copy, int mode, char **lower, int *ovl_fd)
{
    uid_t uid = mode == GGI_WS_COPY_LINK ? (uid_t)-1 : job_uid(env);
    if (mode != GGI_WS_COPY_OVERLAY)
        return ggi_ws_copy_owned(from, copy, mode, uid, uid);
    int rc = overlay_lower(env, root, from, lower);
    if (rc == GG_OK)
        rc = ggi_ws_copy_owned(*lower, copy, mode, uid, uid);
    if (rc != GG_OK)
        return rc;
    char *upper = ggi_asprintf("%s/" GGI_WS_OVERLAY_UPPER, copy);
    char *work = ggi_asprintf("%s/" GGI_WS_OVERLAY_WORK, copy);
    rc = upper && work ? ggi_overlay_mount(*lower, upper, work, ovl_fd)
                       : ggi_error(GG_ENOMEM, "out of memory");
    free(upper);
    free(work);
    return rc;
}

/* ------------------------------------------------------------------ the attempt */

/* One workspace attempt in steps: the state they share. Each step records its own failure in
 * rec and returns nonzero to end the attempt there. */
typedef struct ws_attempt {
    const ggi_attempt_env *env;
    const cJSON *job;
    const ggi_task *t;
    cJSON *rec;
    ggi_ws_cache *cache;
    const char *root;
    char *base, *from, *copy, *answer, *diff, *lower;
    char view[4200];
    int ovl_fd;
    int mode;
    char tree[41];
    cJSON *files, *context, *changed, *findings;
    double t_gen, t_gen_end, apply_ms, execute_ms;
} ws_attempt;

/* The base from the cache (a workspace that is not there, or over the caps, will not be
 * there next time: the task ends, naming the field), and the tree the answer applies to. */
static int ws_base(ws_attempt *a)
{
    int rc;
    ggi_json_add_str(a->rec, "base_commit", str_of(a->t->workspace, "commit"));
    if ((rc = ws_open(&a->cache, &a->root)) != GG_OK) {
        ggi_attempt_infra(a->rec, "workspace", rc, gg_error_last(), 1);
        return rc;
    }
    if ((rc = ggi_ws_cache_base(a->cache, a->t->workspace, &a->base, a->tree)) != GG_OK) {
        int permanent = rc == GG_ENOTFOUND || rc == GG_ETOOBIG || rc == GG_EINVAL;
        ggi_attempt_infra(a->rec, "workspace", rc, gg_error_last(), permanent ? 0 : 1);
        return rc;
    }
    cJSON_AddStringToObject(a->rec, "base_tree", a->tree);
    return prepare(a->env, a->t, a->root, a->base, a->tree, a->rec, &a->from);
}

/* What the generator is told of the workspace: its commit and tree, the files (the first
 * WS_LISTED_FILES), and the form of answer wanted. */
static cJSON *ws_request(const ws_attempt *a, int truncated)
{
    cJSON *wsreq = cJSON_CreateObject();
    cJSON *listed = cJSON_CreateArray();
    int k = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, a->files)
    {
        if (k++ >= WS_LISTED_FILES) {
            truncated = 1;
            break;
        }
        cJSON_AddItemToArray(listed, cJSON_CreateString(f->valuestring));
    }
    cJSON_AddStringToObject(wsreq, "commit", str_of(a->t->workspace, "commit"));
    cJSON_AddStringToObject(wsreq, "tree", a->tree);
    cJSON_AddItemToObject(wsreq, "files", listed);
    cJSON_AddBoolToObject(wsreq, "truncated", truncated);
    cJSON_AddStringToObject(wsreq, "answer", "a unified diff (git's format) against the "
                            "workspace root, or {\"files\": {\"path\": \"content\"}}");
    return wsreq;
}

/* Context (the base's files, listed and retrieved), then the answer from the generator. */
static int ws_generate(ws_attempt *a)
{
    a->files = cJSON_CreateArray();
    int truncated = 0;
    list_files(a->base, "", a->files, WS_INDEX_MAX_FILES, &truncated); /* not setup output */
    sort_strings(a->files);
    gg_retriever_t *index = open_index(a->env, a->root, a->base, a->tree, a->files);
    a->context = workspace_context(index, a->t, a->job, a->env->log);
    gg_retriever_destroy(&index);
    cJSON *wsreq = ws_request(a, truncated);
    cJSON *used = cJSON_AddArrayToObject(a->rec, "context_ids");
    const cJSON *c;
    cJSON_ArrayForEach(c, a->context)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"));
        if (id)
            cJSON_AddItemToArray(used, cJSON_CreateString(id));
    }
    a->t_gen = ggi_now_ms();
    a->answer = ggi_attempt_generate(a->env, a->job, request_task(a->t), a->context, wsreq,
                                     a->rec);
    a->t_gen_end = ggi_now_ms();
    if (!a->answer)
        return GG_EINVAL; /* exhausted or an infrastructure fault, already in the record */
    cJSON_AddStringToObject(a->rec, "code", a->answer);
    return GG_OK;
}

/* The answer's fault: a failed attempt whose finding is the feedback; nothing ran. The
 * refusal names the hunk or path: two different answers that fail the same way are the same
 * failure (the Task Monitor's stuck loop), others are not. */
static void ws_refused(ws_attempt *a)
{
    cJSON *rec = a->rec;
    const char *msg = gg_error_last();
    char *why = ggi_asprintf("patch does not apply: %s", *msg ? msg : "refused");
    cJSON *an = cJSON_AddObjectToObject(rec, "analysis");
    cJSON_AddBoolToObject(an, "ok", 0);
    if (!a->findings) {
        a->findings = cJSON_CreateArray();
        cJSON *fnd = cJSON_CreateObject();
        cJSON_AddStringToObject(fnd, "severity", "error");
        cJSON_AddNullToObject(fnd, "path");
        cJSON_AddStringToObject(fnd, "message", *msg ? msg : "refused");
        cJSON_AddItemToArray(a->findings, fnd);
    }
    cJSON_AddItemToObject(an, "findings", a->findings);
    a->findings = NULL;
    cJSON_AddNullToObject(rec, "execution");
    cJSON_AddBoolToObject(rec, "passed", 0);
    ggi_json_add_str(rec, "reason", why);
    char *sig = ggi_asprintf("patch:%.120s", *msg ? msg : "refused");
    ggi_json_add_str(rec, "signature", sig ? sig : "patch");
    free(sig);
    cJSON_AddNullToObject(rec, "patch");
    free(why);
}

/* The attempt's own copy, and the answer applied to it. An overlay copy is written through
 * its mount, which this process reaches by its descriptor only (it is attached nowhere). */
static int ws_apply(ws_attempt *a)
{
    double ta = ggi_now_ms();
    a->copy = attempt_dir(a->root, "attempt");
    if (!a->copy) {
        ggi_attempt_infra(a->rec, "copy", GG_ENOMEM, "out of memory", 1);
        return GG_ENOMEM;
    }
    a->mode = copy_mode(a->env, a->t, a->root);
    int rc = make_copy(a->env, a->root, a->from, a->copy, a->mode, &a->lower, &a->ovl_fd);
    if (rc != GG_OK) {
        ggi_attempt_infra(a->rec, "copy", rc, gg_error_last(), 1);
        return rc;
    }
    if (a->ovl_fd >= 0)
        snprintf(a->view, sizeof a->view, "/proc/self/fd/%d", a->ovl_fd);
    else
        snprintf(a->view, sizeof a->view, "%s", a->copy);
    int kind = 0;
    rc = ggi_patch_apply(a->view, a->answer, strlen(a->answer), &kind, &a->changed,
                         &a->findings);
    a->apply_ms = ggi_now_ms() - ta;
    if (rc == GG_EINVAL || rc == GG_ETOOBIG) {
        ws_refused(a);
        return rc;
    }
    if (rc != GG_OK) {
        ggi_attempt_infra(a->rec, "apply", rc, gg_error_last(), 1);
        return rc;
    }
    cJSON *an = cJSON_AddObjectToObject(a->rec, "analysis");
    cJSON_AddBoolToObject(an, "ok", 1);
    cJSON_AddItemToObject(an, "findings", a->findings ? a->findings : cJSON_CreateArray());
    a->findings = NULL;
    cJSON_AddStringToObject(a->rec, "answer_kind", kind == GGI_PATCH_FILES ? "files" : "diff");
    cJSON_AddItemToObject(a->rec, "changed", a->changed ? a->changed : cJSON_CreateArray());
    return GG_OK;
}

/* The patch is what the answer changed, before the tests write anything; what the answer
 * made becomes the job's too (a link copy's job writes only new files). */
static int ws_patch(ws_attempt *a)
{
    int rc = ggi_patch_diff(a->from, a->view, a->changed, &a->diff);
    if (rc != GG_OK) {
        a->changed = NULL; /* the record holds it */
        cJSON_DeleteItemFromObjectCaseSensitive(a->rec, "analysis");
        ggi_attempt_infra(a->rec, "diff", rc, gg_error_last(), 1);
        return rc;
    }
    ggi_json_add_str(a->rec, "patch", a->diff);
    rc = a->mode == GGI_WS_COPY_LINK ? GG_OK : give_changed(a->view, a->changed,
                                                             job_uid(a->env));
    a->changed = NULL;
    if (a->ovl_fd >= 0)
        close(a->ovl_fd); /* the job mounts the layers again, in its own namespace */
    a->ovl_fd = -1;
    if (rc != GG_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(a->rec, "analysis");
        ggi_attempt_infra(a->rec, "copy", rc, gg_error_last(), 1);
    }
    return rc;
}

/* The task's tests, in the copy; a test command that is not there ends the task. */
static void ws_test(ws_attempt *a)
{
    const ggi_task *t = a->t;
    double te = ggi_now_ms();
    cJSON *treq = command_request(t, t->test_command, a->copy, a->lower), *tres = NULL;
    int rc = treq ? ggi_attempt_execute(a->env, treq, &tres) : GG_ENOMEM;
    cJSON_Delete(treq);
    a->execute_ms = ggi_now_ms() - te;
    if (rc == GG_ENOTFOUND || (rc == GG_OK && not_found(tres))) {
        char *m = ggi_asprintf("field 'test_command': '%s' was not found%s%s",
                               command_name(t->test_command), tres ? ": " : "",
                               tres ? tail_of(str_of(tres, "stderr"), 300) : "");
        cJSON_DeleteItemFromObjectCaseSensitive(a->rec, "analysis");
        ggi_attempt_infra(a->rec, "test", GG_ENOTFOUND, m, 0);
        free(m);
        cJSON_Delete(tres);
        return;
    }
    if (rc != GG_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(a->rec, "analysis");
        ggi_attempt_infra(a->rec, "execute", rc, gg_error_last(), -1);
        return;
    }
    read_tests(t, tres, a->rec);
    cJSON_AddItemToObject(a->rec, "execution", tres);
}

int ggi_attempt_workspace(const ggi_attempt_env *env, const cJSON *job, const ggi_task *t,
                          cJSON *rec)
{
    double t0 = ggi_now_ms();
    ws_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        ggi_attempt_infra(rec, "workspace", GG_ENOMEM, "out of memory", 1);
        ggi_attempt_finish(env, rec, t0, t0, t0, 0, 0);
        return GG_OK;
    }
    a->env = env;
    a->job = job;
    a->t = t;
    a->rec = rec;
    a->ovl_fd = -1;
    a->t_gen = a->t_gen_end = t0;
    if (ws_base(a) == GG_OK && ws_generate(a) == GG_OK && ws_apply(a) == GG_OK &&
        ws_patch(a) == GG_OK)
        ws_test(a);
    if (a->ovl_fd >= 0)
        close(a->ovl_fd);
    if (a->copy)
        ggi_ws_remove(a->copy);
    free(a->lower);
    ggi_attempt_finish(env, rec, t0, a->t_gen, a->t_gen_end, a->apply_ms, a->execute_ms);
    free(a->base);
    free(a->from);
    free(a->copy);
    free(a->answer);
    free(a->diff);
    cJSON_Delete(a->files);
    cJSON_Delete(a->context);
    cJSON_Delete(a->changed);
    cJSON_Delete(a->findings);
    free(a);
    return GG_OK;
}
