/*
 * container_run.c - one job of the "container" executor backend, from start to end: the
 * create request (the limits in HostConfig, the wrapper), create, upload the files, start,
 * wait with the job's timeout (following the logs), read and decode the logs, inspect for an
 * OOM kill, and always remove the container (asked again when the engine refuses). Cut here
 * because it is the container's life cycle, the order of engine calls and their failures.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "exec_request.h"
#include "job_registry.h"
#include "process_executor.h"
#include "spawn.h"
#include "container_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* the create request                                                                       */

static long long clamp_rlimit(int resource, long long want)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        (unsigned long long)want > (unsigned long long)rl.rlim_max)
        return (long long)rl.rlim_max;
    return want;
}

static int add_ulimit(cJSON *arr, const char *name, long long v)
{
    cJSON *u = cJSON_CreateObject();
    if (!u || !cJSON_AddItemToArray(arr, u)) {
        cJSON_Delete(u);
        return GG_ENOMEM;
    }
    if (ggi_json_add_str(u, "Name", name) || ggi_json_add_num(u, "Soft", (double)v) ||
        ggi_json_add_num(u, "Hard", (double)v))
        return GG_ENOMEM;
    return GG_OK;
}

static int add_strings(cJSON *obj, const char *key, const char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    if (!a)
        return GG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return GG_ENOMEM;
        }
    }
    return GG_OK;
}

static int build_create(const cont_exec *ce, const job *j, char **out)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return GG_ENOMEM;
    int rc = GG_ENOMEM;
    cJSON *cmd, *envs, *labels, *hc, *tmpfs, *ul, *s;
    char user[32], sz[64];
    snprintf(user, sizeof user, "%u:%u", j->uid, j->gid);
    if (ggi_json_add_str(o, "Image", j->image) || ggi_json_add_str(o, "User", user) ||
        ggi_json_add_str(o, "WorkingDir", WORKDIR) || ggi_json_add_bool(o, "Tty", 0) ||
        ggi_json_add_bool(o, "OpenStdin", 0) || ggi_json_add_bool(o, "AttachStdin", 0) ||
        ggi_json_add_bool(o, "NetworkDisabled", 1))
        goto done;
    /* The image's entrypoint is replaced by a small shell wrapper (the image needs
     * /bin/sh): as PID 1 it leaves the job an ordinary process (signals act on it as on the
     * host), redirects stdin from the uploaded file, and after the job reads the cgroup's
     * oom_kill count, since engines do not always report an OOM kill (State.OOMKilled). */
    static const char *const wrap[] = { "/bin/sh", "-c" };
    if (add_strings(o, "Entrypoint", wrap, 2) || !(cmd = cJSON_AddArrayToObject(o, "Cmd")))
        goto done;
    if (!(s = cJSON_CreateString(j->r.stdin_data ? WRAPPER_STDIN : WRAPPER)) ||
        !cJSON_AddItemToArray(cmd, s))
        goto done;
    const cJSON *a;
    int first = 1;
    cJSON_ArrayForEach(a, j->r.argv) {
        const char *v = first && j->interpreter ? j->interpreter : a->valuestring;
        first = 0;
        if (!(s = cJSON_CreateString(v)) || !cJSON_AddItemToArray(cmd, s))
            goto done;
    }
    /* A scrubbed environment, as the process backend's, with the container's paths. */
    if (!(envs = cJSON_AddArrayToObject(o, "Env")))
        goto done;
    const char *base[][2] = { { "PATH", "/usr/local/bin:/usr/bin:/bin" },
                              { "HOME", WORKDIR },
                              { "TMPDIR", "/tmp" },
                              { "LANG", "C.UTF-8" } };
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        if (j->r.env && cJSON_GetObjectItemCaseSensitive(j->r.env, base[i][0]))
            continue;
        char *kv = ggi_asprintf("%s=%s", base[i][0], base[i][1]);
        s = kv ? cJSON_CreateString(kv) : NULL;
        free(kv);
        if (!s || !cJSON_AddItemToArray(envs, s))
            goto done;
    }
    if (j->r.env) {
        cJSON_ArrayForEach(a, j->r.env) {
            char *kv = ggi_asprintf("%s=%s", a->string, a->valuestring);
            s = kv ? cJSON_CreateString(kv) : NULL;
            free(kv);
            if (!s || !cJSON_AddItemToArray(envs, s))
                goto done;
        }
    }
    if (!(labels = cJSON_AddObjectToObject(o, "Labels")) ||
        ggi_json_add_str(labels, "gryphgen.job", "1") ||
        ggi_json_add_str(labels, "gryphgen.executor", ce->exec_id))
        goto done;

    if (!(hc = cJSON_AddObjectToObject(o, "HostConfig")))
        goto done;
    double mem = (double)j->r.memory_mb * 1048576.0;
    if (ggi_json_add_num(hc, "Memory", mem) || ggi_json_add_num(hc, "MemorySwap", mem) ||
        ggi_json_add_num(hc, "NanoCpus", round(j->r.cpus * 1e9)) ||
        ggi_json_add_num(hc, "PidsLimit", (double)j->r.nproc) ||
        ggi_json_add_str(hc, "NetworkMode", "none") ||
        ggi_json_add_bool(hc, "ReadonlyRootfs", 1) || ggi_json_add_bool(hc, "Privileged", 0) ||
        ggi_json_add_bool(hc, "AutoRemove", 0))
        goto done;
    static const char *const drop[] = { "ALL" };
    static const char *const secopt[] = { "no-new-privileges" };
    if (add_strings(hc, "CapDrop", drop, 1) || add_strings(hc, "SecurityOpt", secopt, 1))
        goto done;
    snprintf(sz, sizeof sz, "rw,nosuid,nodev,size=%lldm,mode=1777", j->r.fsize_mb);
    if (!(tmpfs = cJSON_AddObjectToObject(hc, "Tmpfs")) ||
        (!j->r.workdir && ggi_json_add_str(tmpfs, WORKDIR, sz)) ||
        ggi_json_add_str(tmpfs, "/tmp", sz))
        goto done;
    /* A caller's workdir is bound read-write at the workspace instead of a tmpfs. */
    if (j->r.workdir) {
        cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts"), *m = cJSON_CreateObject();
        if (!mounts || !m || !cJSON_AddItemToArray(mounts, m)) {
            cJSON_Delete(m);
            goto done;
        }
        if (ggi_json_add_str(m, "Type", "bind") || ggi_json_add_str(m, "Source", j->r.workdir) ||
            ggi_json_add_str(m, "Target", WORKDIR) || ggi_json_add_bool(m, "ReadOnly", 0))
            goto done;
    }
    /* Root may be unable to raise a hard rlimit, and the engine applies every ulimit (and
     * defaults nproc, above what it may set, when it is not given), so each is clamped to
     * this process's hard limits and nproc is always present. The engine's own limits may be
     * lower still (podman lowers its nproc to 32768), hence the modest nproc. The per-job
     * process cap is PidsLimit; nproc counts the user across all jobs. */
    if (!(ul = cJSON_AddArrayToObject(hc, "Ulimits")))
        goto done;
    long long nofile = clamp_rlimit(RLIMIT_NOFILE, j->r.nofile);
    long long nproc = clamp_rlimit(RLIMIT_NPROC, DEFAULT_NPROC_ULIMIT);
    long long fsize = clamp_rlimit(RLIMIT_FSIZE, j->r.fsize_mb << 20);
    if (add_ulimit(ul, "nofile", nofile) || add_ulimit(ul, "nproc", nproc) ||
        add_ulimit(ul, "fsize", fsize))
        goto done;
    if (j->r.cpu_s > 0 && add_ulimit(ul, "cpu", clamp_rlimit(RLIMIT_CPU, (long long)ceil(j->r.cpu_s))))
        goto done;
    /* The engine's log file is what logs reads back; capping it keeps an output flood from
     * filling the host's disk. */
    cJSON *lc = cJSON_AddObjectToObject(hc, "LogConfig"), *lcc;
    if (!lc || !(lcc = cJSON_AddObjectToObject(lc, "Config")))
        goto done;
    snprintf(sz, sizeof sz, "%lld", 2 * j->r.max_output + (long long)LOG_SLACK);
    if (ggi_json_add_str(lc, "Type", "k8s-file") || ggi_json_add_str(lcc, "max-size", sz))
        goto done;
    *out = ggi_json_print(o);
    rc = *out ? GG_OK : GG_ENOMEM;
done:
    cJSON_Delete(o);
    return rc;
}

/* The files, relative to the workspace; NULL (and 0) when there are none. */
static int build_files_archive(const job *j, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!j->r.files || cJSON_GetArraySize(j->r.files) == 0)
        return GG_OK;
    ggi_tar_entry ents[MAX_FILES];
    size_t n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, j->r.files) {
        if (n == MAX_FILES)
            break;
        const char *c = cJSON_GetObjectItemCaseSensitive(f, "content")->valuestring;
        ents[n].path = cJSON_GetObjectItemCaseSensitive(f, "path")->valuestring;
        ents[n].data = c;
        ents[n].len = strlen(c);
        ents[n].mode = 0644;
        n++;
    }
    return ggi_tar_build(ents, n, j->uid, j->gid, out, len);
}

static int engine_error(const cont_exec *ce, CURLcode cc, http_reply *r, const char *what);

/* Uploads an archive into the container, extracted at dir. */
static int upload(const cont_exec *ce, http_ctx *h, const char *id, const char *dir,
                  const char *tar, size_t len)
{
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/archive?path=%s&copyUIDGID=1", id, dir);
    http_reply r;
    memset(&r, 0, sizeof r);
    CURLcode cc = ggi_ce_http_do(h, "PUT", path, "application/x-tar", tar, len, CLEANUP_TIMEOUT_MS, 0,
                          &r);
    int rc = cc == CURLE_OK && r.status == 200
                 ? GG_OK
                 : engine_error(ce, cc, &r, "uploading the job's files");
    ggi_buf_free(&r.body);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* one job                                                                                  */

static int engine_error(const cont_exec *ce, CURLcode cc, http_reply *r, const char *what)
{
    char msg[512];
    if (cc != CURLE_OK)
        return ggi_error(GG_EEXEC, "container engine at '%s': %s failed: %s", ce->socket, what,
                         curl_easy_strerror(cc));
    return ggi_error(GG_EEXEC, "container engine at '%s': %s failed (HTTP %ld): %s", ce->socket,
                     what, r->status, ggi_ce_reply_message(r, msg, sizeof msg));
}

/* Kills and removes the container. An engine may refuse a forced removal while the
 * container is still being killed (an interrupt's kill racing this removal: Podman answers
 * 409 or 500 then), so a refusal is asked again, REMOVE_TRIES times in all, briefly apart,
 * before the container counts as leaked. On failure returns GG_EEXEC and writes into why
 * (why_cap bytes) the tries and the engine's last answer; sets no error itself. */
static int remove_container(const cont_exec *ce, http_ctx *h, const char *id, char *why,
                            size_t why_cap)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    for (int tries = 0; tries < REMOVE_TRIES; tries++) {
        if (tries)
            ggi_sleep_ms(20.0 * tries);
        http_reply r;
        memset(&r, 0, sizeof r);
        CURLcode cc = ggi_ce_http_do(h, "DELETE", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
        int ok = cc == CURLE_OK && (r.status == 204 || r.status == 200 || r.status == 404);
        if (!ok && tries == REMOVE_TRIES - 1) {
            char msg[256], said[200];
            if (cc != CURLE_OK)
                snprintf(msg, sizeof msg, "%s", curl_easy_strerror(cc));
            else
                snprintf(msg, sizeof msg, "HTTP %ld: %s", r.status,
                         ggi_ce_reply_message(&r, said, sizeof said));
            snprintf(why, why_cap, "container engine at '%s': could not remove container %.12s "
                     "after %d tries (last: %s)", ce->socket, id, REMOVE_TRIES, msg);
        }
        ggi_buf_free(&r.body);
        if (ok)
            return GG_OK;
    }
    return GG_EEXEC;
}

void ggi_ce_kill_container(http_ctx *h, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/kill?signal=KILL", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    (void)ggi_ce_http_do(h, "POST", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    ggi_buf_free(&r.body);
}

/*
 * The wait request. Podman's compatible wait polls the container's state slowly (a quarter
 * second or more per job); its own API takes a poll interval, so on Podman that one is used.
 * The engine is asked once per executor (GET /version).
 */
static void wait_path(cont_exec *ce, http_ctx *h, const char *id, char *path, size_t cap)
{
    int kind = __atomic_load_n(&ce->engine, __ATOMIC_ACQUIRE);
    if (!kind) {
        http_reply r;
        memset(&r, 0, sizeof r);
        kind = 1;
        if (ggi_ce_http_do(h, "GET", "/version", NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r) == CURLE_OK &&
            r.status == 200 && r.body.data && strstr(r.body.data, "\"Podman Engine\""))
            kind = 2;
        ggi_buf_free(&r.body);
        __atomic_store_n(&ce->engine, kind, __ATOMIC_RELEASE);
    }
    if (kind == 2)
        snprintf(path, cap, "/../v4.0.0/libpod/containers/%s/wait?condition=stopped&"
                            "condition=exited&interval=10ms", id);
    else
        snprintf(path, cap, "/containers/%s/wait", id);
}

/* The exit status in a wait reply: {"StatusCode": n} (Docker API) or n (Podman's API). */
static int wait_status(const http_reply *r, long *status)
{
    cJSON *j = r->body.data ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    const cJSON *sc = cJSON_IsNumber(j) ? j : j ? cJSON_GetObjectItemCaseSensitive(j, "StatusCode")
                                                : NULL;
    int ok = cJSON_IsNumber(sc);
    if (ok)
        *status = (long)sc->valuedouble;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* Waits for the container's end; *status is its exit status. CURLE_OPERATION_TIMEDOUT when
 * timeout_ms ran out, CURLE_ABORTED_BY_CALLBACK when cancelled. */
static CURLcode wait_container(cont_exec *ce, http_ctx *h, const char *id, long timeout_ms,
                               int cancellable, long *status, int *rc_out)
{
    char path[256];
    wait_path(ce, h, id, path, sizeof path);
    http_reply r;
    memset(&r, 0, sizeof r);
    *rc_out = GG_OK;
    CURLcode cc = ggi_ce_http_do(h, "POST", path, NULL, NULL, 0, timeout_ms, cancellable, &r);
    if (cc == CURLE_OK && r.status == 200) {
        if (wait_status(&r, status))
            *rc_out = ggi_error(GG_EEXEC, "container engine at '%s': wait gave no status",
                                ce->socket);
    } else if (cc != CURLE_OPERATION_TIMEDOUT && cc != CURLE_ABORTED_BY_CALLBACK) {
        *rc_out = engine_error(ce, cc, &r, "wait");
    }
    ggi_buf_free(&r.body);
    return cc;
}

static void inspect_oom(http_ctx *h, const char *id, int *oom)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/json", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    if (ggi_ce_http_do(h, "GET", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r) == CURLE_OK &&
        r.status == 200 && r.body.data) {
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "State") : NULL;
        const cJSON *o = st ? cJSON_GetObjectItemCaseSensitive(st, "OOMKilled") : NULL;
        *oom = cJSON_IsTrue(o);
        cJSON_Delete(j);
    }
    ggi_buf_free(&r.body);
}

/*
 * Waits for the container's end within timeout_ms while following its logs, so the head of
 * a flood is kept whatever the engine's (size-capped) log file later drops; bytes beyond the
 * caps are read and dropped. Engines do not always end a follow when the container ends
 * (Podman without events), so it is dropped when the wait returns. Returns the wait's CURLcode (CURLE_OPERATION_TIMEDOUT when the
 * time ran out, CURLE_ABORTED_BY_CALLBACK when cancelled); *status is the exit status and
 * *rc_out holds other errors.
 */
static CURLcode wait_and_follow(cont_exec *ce, http_ctx *h, const char *id,
                                ggi_mux_decoder *mux, long timeout_ms, long *status,
                                int *rc_out)
{
    *rc_out = GG_OK;
    char wpath[256], lpath[160];
    wait_path(ce, h, id, wpath, sizeof wpath);
    snprintf(lpath, sizeof lpath, "/containers/%s/logs?stdout=1&stderr=1&follow=1", id);
    http_reply wr, lr;
    memset(&wr, 0, sizeof wr);
    memset(&lr, 0, sizeof lr);
    lr.mux = mux;
    lr.feed_limit = SIZE_MAX;
    CURL *lc = curl_easy_init();
    CURLM *m = curl_multi_init();
    struct curl_slist *wh = NULL, *lh = NULL;
    CURLcode wcc = CURLE_OUT_OF_MEMORY;
    if (!lc || !m) {
        *rc_out = ggi_error(GG_ENOMEM, "cannot make curl handles");
        goto out;
    }
    if ((wcc = ggi_ce_http_prepare(h->curl, h, "POST", wpath, NULL, NULL, 0, timeout_ms, 1, &wr, &wh)) ||
        (wcc = ggi_ce_http_prepare(lc, h, "GET", lpath, NULL, NULL, 0, 0, 1, &lr, &lh))) {
        *rc_out = ggi_error(GG_EEXEC, "cannot prepare requests: %s", curl_easy_strerror(wcc));
        goto out;
    }
    curl_multi_add_handle(m, h->curl);
    curl_multi_add_handle(m, lc);
    int wait_done = 0;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (msg->easy_handle == h->curl) {
                wait_done = 1;
                wcc = msg->data.result;
            }
        }
        /* At the end the caller reads the whole log once more, so the follow only has to
         * have kept the head of the output. */
        if (wait_done)
            break;
        curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &wr.status);
    curl_easy_getinfo(lc, CURLINFO_RESPONSE_CODE, &lr.status);
    curl_multi_remove_handle(m, h->curl);
    curl_multi_remove_handle(m, lc);
    if (mux->oom) {
        *rc_out = ggi_error(GG_ENOMEM, "out of memory reading the job's output");
    } else if (wcc == CURLE_OK && wr.status == 200) {
        if (wait_status(&wr, status))
            *rc_out = ggi_error(GG_EEXEC, "container engine at '%s': wait gave no status",
                                ce->socket);
        if (!*rc_out && lr.status != 200 && lr.status != 0) {
            lr.mux = NULL;
            *rc_out = engine_error(ce, CURLE_OK, &lr, "logs");
        }
    } else if (wcc == CURLE_OK || (wcc != CURLE_OPERATION_TIMEDOUT &&
                                   wcc != CURLE_ABORTED_BY_CALLBACK)) {
        *rc_out = engine_error(ce, wcc, &wr, "wait");
    }
out:
    curl_slist_free_all(wh);
    curl_slist_free_all(lh);
    if (m)
        curl_multi_cleanup(m);
    if (lc)
        curl_easy_cleanup(lc);
    ggi_buf_free(&wr.body);
    ggi_buf_free(&lr.body);
    return wcc;
}

/*
 * Reads the whole log once (the container has ended) into mux; *fed is the number of bytes
 * the engine sent. Reading stops, without error, after limit bytes.
 */
static int read_logs(const cont_exec *ce, http_ctx *h, const char *id, ggi_mux_decoder *mux,
                     size_t limit, size_t *fed)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&follow=0", id);
    http_reply r;
    memset(&r, 0, sizeof r);
    r.mux = mux;
    r.feed_limit = limit;
    CURLcode cc = ggi_ce_http_do(h, "GET", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    int rc = GG_OK;
    if (mux->oom) {
        rc = ggi_error(GG_ENOMEM, "out of memory reading the job's output");
    } else if (!r.too_big && (cc != CURLE_OK || r.status != 200)) {
        r.mux = NULL;
        rc = engine_error(ce, cc, &r, "logs");
    }
    *fed = r.too_big ? limit : r.fed;
    ggi_buf_free(&r.body);
    return rc;
}

/* The inputs of one job: the create request, the files (written into a workdir, or an
 * archive for the engine to upload) and stdin's archive. Into a workdir the files are written
 * here, by replacing (the engine's archive upload would write into a file that may be a hard
 * link to a read-only base), and handed to the job's user. */
static int prepare_inputs(const cont_exec *ce, const job *j, char **create, char **tar,
                          size_t *tar_len, char **stdin_tar, size_t *stdin_tar_len)
{
    int rc = build_create(ce, j, create) ? ggi_error(GG_ENOMEM, "out of memory") : GG_OK;
    if (!rc && j->r.workdir)
        rc = ggi_exec_write_files(j->r.workdir, j->r.files, 1,
                                  geteuid() == 0 ? (uid_t)j->uid : (uid_t)-1,
                                  geteuid() == 0 ? (gid_t)j->gid : (gid_t)-1);
    else if (!rc)
        rc = build_files_archive(j, tar, tar_len);
    if (!rc && j->r.stdin_data) {
        ggi_tar_entry in = { STDIN_PATH + 1, j->r.stdin_data, strlen(j->r.stdin_data), 0444 };
        rc = ggi_tar_build(&in, 1, j->uid, j->gid, stdin_tar, stdin_tar_len);
    }
    return rc;
}

/* Creates the container; its Id (checked: hex, short) goes into id and the registry, so an
 * interrupt can reach it. */
static int create_container(cont_exec *ce, http_ctx *h, const job *j, ggi_job_slot *slot,
                            const char *create, char id[80])
{
    http_reply r;
    memset(&r, 0, sizeof r);
    char msg[512];
    int rc = GG_OK;
    CURLcode cc = ggi_ce_http_do(h, "POST", "/containers/create", "application/json", create,
                          strlen(create), CLEANUP_TIMEOUT_MS, 0, &r);
    if (cc == CURLE_OK && r.status == 201) {
        cJSON *jr = r.body.data ? cJSON_ParseWithLength(r.body.data, r.body.len) : NULL;
        const cJSON *idj = jr ? cJSON_GetObjectItemCaseSensitive(jr, "Id") : NULL;
        if (cJSON_IsString(idj) && idj->valuestring && strlen(idj->valuestring) < 80 &&
            strspn(idj->valuestring, "0123456789abcdef") == strlen(idj->valuestring))
            snprintf(id, 80, "%s", idj->valuestring);
        cJSON_Delete(jr);
        if (!id[0])
            rc = ggi_error(GG_EEXEC, "container engine at '%s': create gave no valid Id",
                           ce->socket);
        else
            ggi_job_set_id(&ce->reg, slot, id);
    } else if (cc == CURLE_OK && r.status == 404) {
        rc = ggi_error(GG_EEXEC, "container engine at '%s': image '%s' not found: %s",
                       ce->socket, j->image, ggi_ce_reply_message(&r, msg, sizeof msg));
    } else {
        rc = engine_error(ce, cc, &r, "create");
    }
    ggi_ce_reply_reset(&r);
    return rc;
}

/* Starts the container; a program missing from the image is GG_ENOTFOUND, naming both. */
static int start_container(const cont_exec *ce, http_ctx *h, const job *j, const char *id)
{
    http_reply r;
    memset(&r, 0, sizeof r);
    char msg[512], path[160];
    int rc = GG_OK;
    snprintf(path, sizeof path, "/containers/%s/start", id);
    CURLcode cc = ggi_ce_http_do(h, "POST", path, NULL, NULL, 0, CLEANUP_TIMEOUT_MS, 0, &r);
    if (cc == CURLE_OK && (r.status == 204 || r.status == 304)) {
        /* started */
    } else if (cc == CURLE_OK) {
        ggi_ce_reply_message(&r, msg, sizeof msg);
        if (strstr(msg, "not found") || strstr(msg, "no such file"))
            rc = ggi_error(GG_ENOTFOUND, "program '%s' not found in image '%s': %s",
                           cJSON_GetArrayItem(j->r.argv, 0)->valuestring, j->image, msg);
        else
            rc = engine_error(ce, cc, &r, "start");
    } else {
        rc = engine_error(ce, cc, &r, "start");
    }
    ggi_ce_reply_reset(&r);
    return rc;
}

/* Waits for the end within the job's timeout (counted from t0), following the logs
 * meanwhile; a timed-out container is killed. *marker: which wrapper marker the output held
 * (1 OOM, 2 program not found). */
static int await_container(cont_exec *ce, http_ctx *h, const job *j, ggi_job_slot *slot,
                           const char *id, double t0, outcome *oc, int *marker)
{
    int rc = GG_OK;
    long left = (long)ceil(j->r.timeout_s * 1000.0 - (ggi_now_ms() - t0));
    int wrc = GG_OK;
    CURLcode cc = wait_and_follow(ce, h, id, &oc->mux, left > 1 ? left : 1, &oc->status, &wrc);
    oc->duration_ms = ggi_now_ms() - t0;
    if (cc == CURLE_ABORTED_BY_CALLBACK || ggi_job_cancelled(slot)) {
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        oc->timed_out = 1;
        ggi_ce_kill_container(h, id);
        int rc2 = GG_OK;
        CURLcode cc2 = wait_container(ce, h, id, CLEANUP_TIMEOUT_MS, 0, &oc->status, &rc2);
        if (cc2 != CURLE_OK || rc2)
            oc->status = 128 + 9;
    } else {
        rc = wrc;
    }
    /* The follow may lag behind the end. When the engine's log file cannot have been cut (it
     * holds less than its cap), one more read of all of it is complete and replaces what the
     * follow saw; after a flood the follow's head stands. */
    if (!rc) {
        ggi_mux_decoder whole;
        ggi_mux_init(&whole, (size_t)j->r.max_output, (size_t)j->r.max_output);
        size_t fed = 0, log_max = 2 * (size_t)j->r.max_output + LOG_SLACK;
        rc = read_logs(ce, h, id, &whole, log_max, &fed);
        if (!rc && fed < log_max) {
            ggi_mux_free(&oc->mux);
            oc->mux = whole;
        } else {
            ggi_mux_free(&whole);
        }
    }
    static const char *const markers[] = { OOM_MARKER, NOTFOUND_MARKER };
    long long peak = 0;
    if (ggi_mux_take_value(&oc->mux, PEAK_MARKER, &peak))
        oc->peak_kb = peak / 1024;
    *marker = ggi_mux_finish(&oc->mux, markers, 2);
    return rc;
}

/* Whatever happened, the container goes. A failed removal is an error of its own when nothing
 * else failed, and is added to the other error when something did: a leaked container is a
 * fault the host must hear of. */
static int remove_after(cont_exec *ce, http_ctx *h, ggi_job_slot *slot, const char *id, int rc,
                        char **out)
{
    int saved_code = gg_error_last_code();
    char saved[1024], why[512] = "";
    snprintf(saved, sizeof saved, "%s", gg_error_last());
    int rrc = remove_container(ce, h, id, why, sizeof why);
    if (rc && rrc) {
        ggi_error(saved_code, "%s; and %s", saved, why);
    } else if (rc) {
        gg_error_set(saved_code, saved);
    } else if (rrc) {
        free(*out);
        *out = NULL;
        rc = ggi_error(GG_EEXEC, "%s", why);
    }
    ggi_job_set_id(&ce->reg, slot, "");
    return rc;
}

int ggi_ce_run_job(cont_exec *ce, const job *j, ggi_job_slot *slot, char **out)
{
    http_ctx h = { curl_easy_init(), ce->socket, &slot->cancel };
    if (!h.curl)
        return ggi_error(GG_ENOMEM, "cannot make a curl handle");
    char *create = NULL, *tar = NULL, *stdin_tar = NULL;
    size_t tar_len = 0, stdin_tar_len = 0;
    char id[80] = "";
    outcome oc;
    memset(&oc, 0, sizeof oc);
    ggi_mux_init(&oc.mux, (size_t)j->r.max_output, (size_t)j->r.max_output);
    int rc = prepare_inputs(ce, j, &create, &tar, &tar_len, &stdin_tar, &stdin_tar_len);
    if (!rc)
        rc = create_container(ce, &h, j, slot, create, id);
    if (!rc && ggi_job_cancelled(slot))
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    /* The files go into the workspace (Podman copies them into the tmpfs mounted there when
     * the container starts; an archive holding the workspace directory itself would reset its
     * mode), stdin beside it, outside the workspace. */
    if (!rc && tar)
        rc = upload(ce, &h, id, WORKDIR, tar, tar_len);
    if (!rc && stdin_tar)
        rc = upload(ce, &h, id, "/", stdin_tar, stdin_tar_len);
    if (!rc && ggi_job_cancelled(slot))
        rc = ggi_error(GG_ECANCELLED, "job cancelled by gg_executor_interrupt()");
    double t0 = ggi_now_ms();
    if (!rc)
        rc = start_container(ce, &h, j, id);
    int marker = 0;
    if (!rc)
        rc = await_container(ce, &h, j, slot, id, t0, &oc, &marker);
    if (!rc && marker == 2 && oc.status == 127)
        rc = ggi_error(GG_ENOTFOUND, "program '%s' not found in image '%s'",
                       cJSON_GetArrayItem(j->r.argv, 0)->valuestring, j->image);
    /* An OOM kill is a SIGKILL; only then is the engine asked as well as the wrapper. */
    if (!rc && !oc.timed_out && oc.status == 128 + 9)
        inspect_oom(&h, id, &oc.oom_killed);
    oc.oom_killed |= marker == 1;
    if (!rc)
        rc = ggi_ce_build_result(j, &oc, out);
    if (id[0])
        rc = remove_after(ce, &h, slot, id, rc, out);
    ggi_mux_free(&oc.mux);
    free(create);
    free(tar);
    free(stdin_tar);
    curl_easy_cleanup(h.curl);
    return rc;
}
