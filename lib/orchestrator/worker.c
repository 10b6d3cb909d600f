/*
 * worker.c - gg_worker_t: the worker side of the grid. One thread (the caller of
 * gg_worker_run) owns the socket: it says hello, takes job batches, sends heartbeats and
 * result batches, and reconnects when the orchestrator goes silent. Slot threads run the
 * attempts. An embedded orchestrator runs the same worker over inproc:// (with "any": it
 * takes every job and reports a missing runtime as the attempt's infrastructure fault).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "../core/lang.h"
#include "../execution/executor_caps.h"
#include "../execution/job_registry.h"
#include "../execution/sandbox.h"
#include "endpoint_rule.h"
#include "endpoints.h"
#include "../core/options.h"
#include "../generation/hooks.h"
#include "orq.h"
#include "protocol.h"

#define RESULT_BATCH 256 /* results per message (one per message when they are large) */
#define RESULT_WAKE 32   /* results that wake the socket thread before its poll ends */
#define BUSY_POLL_MS 1   /* how long the socket thread waits while jobs run */
#define UNWELCOMED_POLL_MS 20 /* how long it waits for a welcome (results are held) */
#define SILENT_BEATS 3   /* a hub silent for this many heartbeat intervals is gone */
#define BACKOFF_MIN_MS 100  /* pause after a round of endpoints that all failed, doubling */
#define BACKOFF_MAX_MS 2000 /* ... up to this */

/*
 * Results as printed texts, one after another (item i ends at ends[i]). A slot thread
 * prints its result and frees what it built itself, and the socket thread frees the jobs
 * it parsed, so each thread frees what it allocated (memory freed by another thread left
 * glibc's per-thread caches empty on both sides: most of a job's cost was malloc).
 */
typedef struct result_list {
    ggi_buf text;
    size_t *ends;
    unsigned n, cap;
} result_list;

static int result_list_add(result_list *l, const char *text, size_t len)
{
    if (l->n == l->cap) {
        unsigned ncap = l->cap ? l->cap * 2 : 64;
        size_t *p = realloc(l->ends, ncap * sizeof *p);
        if (!p)
            return GG_ENOMEM;
        l->ends = p;
        l->cap = ncap;
    }
    if (ggi_buf_append(&l->text, text, len) != GG_OK)
        return GG_ENOMEM;
    l->ends[l->n++] = l->text.len;
    return GG_OK;
}

static const char *result_item(const result_list *l, unsigned i, size_t *len)
{
    size_t start = i ? l->ends[i - 1] : 0;
    *len = l->ends[i] - start;
    return l->text.data + start;
}

/* Empties the list, keeping its room unless it grew for something large. */
static void result_list_clear(result_list *l)
{
    l->n = 0;
    l->text.len = 0;
    if (l->text.cap > (1u << 20)) {
        ggi_buf_free(&l->text);
        free(l->ends);
        l->ends = NULL;
        l->cap = 0;
    }
}

static void result_list_free(result_list *l)
{
    ggi_buf_free(&l->text);
    free(l->ends);
    memset(l, 0, sizeof *l);
}

struct gg_worker {
    ggi_logger log;
    ggi_transport own_transport;
    ggi_transport *tp;
    ggi_endpoints eps;     /* where the orchestrator may be (connect: "EP1,EP2,...") */
    char instance[33];     /* this worker's random id, sent in every hello (docs/protocol.md) */
    char *name;
    unsigned slots, queue;
    cJSON *caps;
    int hb_ms;

    gg_generator_t *generator, *own_generator;
    gg_executor_t *executor, *own_executor;
    gg_retriever_t *retriever, *own_retriever;
    ggi_runtimes own_runtimes;
    const ggi_runtimes *runtimes;

    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cJSON **jobs;          /* ring of queued jobs */
    unsigned head, count, cap; /* cap: the capacity announced (slots + queue) */
    unsigned running;
    cJSON **cur;           /* the job each slot runs, or NULL (for the hello's leases) */
    ggi_job_scope *scopes; /* each slot's jobs on the executor, for an abort (inited: n_scopes) */
    unsigned n_scopes;
    unsigned char *aborted; /* the hub aborted the job the slot runs: no result for it */
    atomic_ulong n_aborted;
    atomic_uint slot_seq;  /* hands each slot thread its index in cur */
    result_list done;      /* results waiting to be sent (slots add, under mu) */
    cJSON **spent;         /* jobs run, for the socket thread (which parsed them) to free */
    unsigned n_spent, cap_spent;
    pthread_cond_t done_cv; /* signalled for the socket thread when results wait */
    int sock_waiting;      /* the socket thread waits on done_cv */
    /* the socket thread's own */
    result_list sending;   /* taken from done; sending.n - sent of them not sent yet */
    unsigned sent;
    ggi_buf out;           /* the message being sent, reused for every batch */
    int welcomed;          /* the hub of this connection welcomed us: results may go */
    unsigned tried;        /* endpoints tried since the last welcome */
    int backoff_ms;        /* the pause after the next round that fails */
    int heard_passive;     /* a hub of this round answered "passive:" */
    double opened_at, last_rx, last_tx;
    pthread_t *threads;
    unsigned started;

    atomic_ulong n_jobs, n_results, n_reconnects, n_dropped, n_failovers;
    atomic_int active_ep;  /* index of the endpoint that welcomed us, or -1 */
};

GGI_OPTIONS_LAYOUT(worker_options, gg_worker_options, GG_WORKER_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_worker_options, insecure),
                   GGI_OPTIONS_END(gg_worker_options, custom_transport));

int gg_worker_options_init(gg_worker_options *opts, unsigned version)
{
    gg_worker_options d = GG_WORKER_OPTIONS_INIT;
    return ggi_options_init(&worker_options, opts, &d, version);
}

/* ---------------------------------------------------------------- capacity */

/* GPUs the NVIDIA driver shows in /proc; 0 when there is no driver. */
static int count_gpus(char *model, size_t model_len)
{
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (model[0])
            continue;
        char path[512];
        snprintf(path, sizeof path, "/proc/driver/nvidia/gpus/%.200s/information", e->d_name);
        FILE *f = fopen(path, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "Model:", 6) == 0) {
                char *p = line + 6;
                while (*p == ' ' || *p == '\t')
                    p++;
                p[strcspn(p, "\n")] = 0;
                size_t n = strlen(p);
                if (n >= model_len)
                    n = model_len - 1;
                memcpy(model, p, n);
                model[n] = 0;
                break;
            }
        }
        if (f)
            fclose(f);
    }
    closedir(d);
    return n;
}

/* The isolation levels this worker's executor gives (docs/protocol.md "isolation"): "none"
 * and each level its backend's capability bits name (the process backend's come from the
 * host's sandbox probe; a version 1 host backend counts as rlimits). A task's minimum level
 * is matched against this list. */
static int add_isolation_levels(cJSON *caps, uint32_t ex_caps)
{
    static const struct { uint32_t bit; const char *level; } levels[] = {
        { 0, "none" },
        { GG_EXECUTOR_CAP_ISOLATION_RLIMITS, "rlimits" },
        { GG_EXECUTOR_CAP_ISOLATION_NAMESPACES, "namespaces" },
        { GG_EXECUTOR_CAP_ISOLATION_CONTAINER, "container" },
    };
    cJSON *iso = cJSON_AddArrayToObject(caps, "isolation");
    for (size_t i = 0; iso && i < sizeof levels / sizeof levels[0]; i++)
        if ((!levels[i].bit || (ex_caps & levels[i].bit)) &&
            !cJSON_AddItemToArray(iso, cJSON_CreateString(levels[i].level)))
            return ggi_error(GG_ENOMEM, "out of memory");
    return iso ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

static cJSON *discover_caps(gg_worker_t *w, const char *const *labels, int any)
{
    cJSON *c = cJSON_CreateObject();
    if (!c)
        return NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    cJSON_AddNumberToObject(c, "cores", cores > 0 ? cores : 1);
    cJSON_AddNumberToObject(c, "memory_mb",
                            pages > 0 && psize > 0 ? (double)(pages / (1048576 / psize)) : 0);
    char model[GGP_MAX_NAME + 1] = "";
    cJSON_AddNumberToObject(c, "gpus", count_gpus(model, sizeof model));
    if (model[0])
        cJSON_AddStringToObject(c, "gpu_model", model);
    cJSON *rt = cJSON_AddArrayToObject(c, "runtimes");
    if (w->runtimes->python)
        cJSON_AddItemToArray(rt, cJSON_CreateString("python3"));
    if (w->runtimes->cc)
        cJSON_AddItemToArray(rt, cJSON_CreateString("cc"));
    /* The languages beyond Python and C by name (the scheduler matches a task's language
     * against them), when this worker has their toolchains. */
    for (size_t i = 0; i < ggi_lang_count(); i++) {
        const char *l = ggi_lang_name_at(i);
        if (strcmp(l, "python") && strcmp(l, "c") && ggi_lang_available(l, w->runtimes))
            cJSON_AddItemToArray(rt, cJSON_CreateString(l));
    }
    /* The libraries tasks may require (docs/tasks.md, "requires") this worker has. */
    cJSON *deps = ggi_lang_deps_present();
    if (!deps || !cJSON_AddItemToObject(c, "deps", deps)) {
        cJSON_Delete(deps);
        cJSON_Delete(c);
        return NULL;
    }
    const char *backend = gg_executor_backend(w->executor);
    uint32_t ex_caps = ggi_executor_caps(w->executor);
    cJSON *ex = cJSON_AddArrayToObject(c, "executors");
    cJSON_AddItemToArray(ex, cJSON_CreateString(backend));
    /* The scheduler gives a benchmark worker every language (docs/protocol.md). */
    cJSON_AddBoolToObject(c, "skip_attempts", (ex_caps & GG_EXECUTOR_CAP_SKIP_ATTEMPTS) != 0);
    if (add_isolation_levels(c, ex_caps) != GG_OK) {
        cJSON_Delete(c);
        return NULL;
    }
    /* It stops a job the hub aborts (docs/protocol.md "Aborting a job"). */
    cJSON_AddBoolToObject(c, "abort", 1);
    cJSON *lab = cJSON_AddObjectToObject(c, "labels");
    for (size_t i = 0; labels && labels[i] && i < GGP_MAX_LABELS; i++) {
        const char *eq = strchr(labels[i], '=');
        char key[GGP_MAX_NAME + 1];
        snprintf(key, sizeof key, "%.*s", (int)(eq - labels[i]), labels[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(lab, key);
        cJSON_AddStringToObject(lab, key, eq + 1);
    }
    if (any)
        cJSON_AddBoolToObject(c, "any", 1);
    return c;
}

/* ---------------------------------------------------------------- slots */

/* The record of an attempt this worker could not make: its infrastructure fault. */
static cJSON *infra_record(const char *message, int retry)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON *in = cJSON_AddObjectToObject(rec, "infra");
    cJSON_AddStringToObject(in, "stage", "worker");
    cJSON_AddStringToObject(in, "message", message);
    cJSON_AddBoolToObject(in, "retry", retry);
    return rec;
}

/* Appends job's result with an infrastructure fault to b (ggp_encode_result). */
static int infra_result(ggi_buf *b, const cJSON *job, const char *message, int retry)
{
    cJSON *rec = infra_record(message, retry);
    int rc = rec ? ggp_encode_result(b, job, rec) : GG_ENOMEM;
    cJSON_Delete(rec);
    return rc;
}

/* How long a slot waits, after its job's process was killed by a signal nobody here sent,
 * to see whether this worker is being stopped too. */
#define OUTSIDE_KILL_GRACE_MS 250

/* Whether the attempt's process died of SIGTERM, SIGINT, SIGHUP or SIGKILL that the executor
 * did not send (no timeout, cancel or memory kill): what a batch system does to every
 * process of a job it ends (scancel, a time limit), the worker's own included. */
static int killed_from_outside(const cJSON *record)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(record, "execution");
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(ex, "signal");
    if (!cJSON_IsNumber(sig))
        return 0;
    int n = (int)sig->valuedouble;
    if (n != SIGTERM && n != SIGINT && n != SIGHUP && n != SIGKILL)
        return 0;
    return !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex, "timed_out")) &&
           !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex, "cancelled")) &&
           !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex, "oom_killed"));
}

/* Whether the worker is stopped within OUTSIDE_KILL_GRACE_MS. */
static int stopping_soon(gg_worker_t *w)
{
    for (int t = 0; t < OUTSIDE_KILL_GRACE_MS && !atomic_load(&w->stop); t += 10)
        ggi_sleep_ms(10);
    return atomic_load(&w->stop);
}

static void *slot_main(void *arg)
{
    gg_worker_t *w = arg;
    unsigned me = atomic_fetch_add(&w->slot_seq, 1) % w->slots;
    ggi_attempt_env env = { w->generator, w->executor, w->retriever, w->runtimes, &w->log };
    ggi_buf line = { 0 }; /* this slot's result as text, reused */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->count == 0 && !atomic_load(&w->stop))
            pthread_cond_wait(&w->cv, &w->mu);
        if (atomic_load(&w->stop)) {
            pthread_mutex_unlock(&w->mu);
            ggi_buf_free(&line);
            return NULL;
        }
        cJSON *job = w->jobs[w->head];
        w->head = (w->head + 1) % w->cap;
        w->count--;
        w->running++;
        w->cur[me] = job;
        w->aborted[me] = 0;
        ggi_job_scope_reset(&w->scopes[me]);
        pthread_mutex_unlock(&w->mu);

        cJSON *record = NULL;
        int handed_back = 0;
        line.len = 0;
        int printed = 0;
        ggi_job_scope_enter(&w->scopes[me]);
        int arc = ggi_attempt_run(&env, job, &record);
        ggi_job_scope_enter(NULL);
        pthread_mutex_lock(&w->mu);
        int aborted = w->aborted[me];
        pthread_mutex_unlock(&w->mu);
        if (aborted) {
            /* The hub ended its task (cancelled, out of budget or time): it wants nothing
             * back, the lease is no longer its. */
            handed_back = 1;
        } else if (arc != GG_OK) {
            printed = infra_result(&line, job, gg_error_last(), 0) == GG_OK;
        } else if (killed_from_outside(record) && stopping_soon(w)) {
            /* Killed with this worker (a Slurm job cancelled, a pod deleted): not the code's
             * failure. No result: the bye hands the job back and it runs elsewhere. */
            handed_back = 1;
            ggi_log(&w->log, GG_LOG_INFO, "worker: a job killed along with this worker is "
                    "handed back");
        } else {
            printed = record && ggp_encode_result(&line, job, record) == GG_OK;
        }
        cJSON_Delete(record);
        if (!printed && !handed_back)
            ggi_log(&w->log, GG_LOG_ERROR, "worker: a result is lost: out of memory");
        pthread_mutex_lock(&w->mu);
        w->running--;
        w->cur[me] = NULL;
        w->aborted[me] = 0;
        if (printed && result_list_add(&w->done, line.data, line.len) != GG_OK)
            ggi_log(&w->log, GG_LOG_ERROR, "worker: a result is lost: out of memory");
        if (w->n_spent == w->cap_spent) {
            unsigned ncap = w->cap_spent ? w->cap_spent * 2 : 64;
            cJSON **p = realloc(w->spent, ncap * sizeof *p);
            if (p) {
                w->spent = p;
                w->cap_spent = ncap;
            }
        }
        if (w->n_spent < w->cap_spent) {
            w->spent[w->n_spent++] = job;
            job = NULL;
        }
        /* Results leave in batches: the socket thread wakes for a batch's worth, or when
         * no job is left to run (nothing more is coming soon). */
        if (w->sock_waiting &&
            (w->done.n >= RESULT_WAKE || (w->count == 0 && w->done.n > 0)))
            pthread_cond_signal(&w->done_cv);
        pthread_mutex_unlock(&w->mu);
        if (line.cap > (1u << 20))
            ggi_buf_free(&line); /* after a large record: not kept */
        cJSON_Delete(job); /* only when the list could not grow */
    }
}

static int worker_alloc(gg_worker_t **out, const char *endpoint, const char *name,
                        unsigned slots, unsigned queue)
{
    gg_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return ggi_error(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    ggi_cond_init_monotonic(&w->done_cv);
    w->slots = slots;
    w->queue = queue ? queue : slots;
    /* The capacity announced: a hub counts the jobs this worker carries over from before
     * its hello (their leases are in it) against it, so old and new never exceed it. */
    w->cap = w->slots + w->queue;
    w->hb_ms = GGI_HEARTBEAT_MS;
    w->backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&w->active_ep, -1);
    int rc = ggi_endpoints_parse(endpoint, 0, 0, 0, &w->eps);
    if (rc) {
        gg_worker_destroy(&w);
        return rc;
    }
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* No kernel randomness: the time and address still tell instances apart. */
        unsigned long long t = (unsigned long long)(ggi_now_ms() * 1000.0) ^ (uintptr_t)w;
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (unsigned char)(t >> (8 * (i % 8))) ^ (unsigned char)(i * 37u);
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(w->instance + 2 * i, 3, "%02x", rnd[i]);
    w->name = ggi_strdup(name);
    w->jobs = calloc(w->cap, sizeof *w->jobs);
    w->threads = calloc(w->slots, sizeof *w->threads);
    w->cur = calloc(w->slots, sizeof *w->cur);
    w->aborted = calloc(w->slots, 1);
    w->scopes = calloc(w->slots, sizeof *w->scopes);
    while (w->scopes && w->n_scopes < w->slots &&
           ggi_job_scope_init(&w->scopes[w->n_scopes]) == GG_OK)
        w->n_scopes++;
    if (!w->name || !w->jobs || !w->threads || !w->cur || !w->aborted ||
        w->n_scopes < w->slots) {
        gg_worker_destroy(&w);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out = w;
    return GG_OK;
}

int ggi_worker_new_embedded(gg_worker_t **out, ggi_transport *tp, const char *endpoint,
                            unsigned slots, gg_generator_t *gen, gg_executor_t *ex,
                            gg_retriever_t *ret, const ggi_runtimes *rt, const ggi_logger *log)
{
    int rc = worker_alloc(out, endpoint, "local", slots, slots);
    if (rc)
        return rc;
    gg_worker_t *w = *out;
    w->tp = tp;
    w->generator = gen;
    w->executor = ex;
    w->retriever = ret;
    w->runtimes = rt;
    w->log = *log;
    w->caps = discover_caps(w, NULL, 1);
    if (!w->caps) {
        gg_worker_destroy(out);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

static int check_label(const char *l)
{
    const char *eq = strchr(l, '=');
    if (!eq || eq == l || (size_t)(eq - l) > GGP_MAX_NAME || strlen(eq + 1) > GGP_MAX_NAME)
        return ggi_error(GG_EINVAL, "label '%s' must be key=value (each at most %d bytes)", l,
                         GGP_MAX_NAME);
    return GG_OK;
}

int gg_worker_new(gg_worker_t **out, const gg_worker_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "out pointer is NULL");
    *out = NULL;
    if (!opts)
        return ggi_error(GG_EINVAL, "options are required (at least 'connect')");
    gg_worker_options full = GG_WORKER_OPTIONS_INIT;
    if (ggi_options_accept(&worker_options, &full, opts))
        return GG_EVERSION;
    opts = &full;
    if (!opts->connect || !*opts->connect)
        return ggi_error(GG_EINVAL, "option 'connect' must name the orchestrator's endpoint");
    if (opts->slots > 1024 || opts->queue > 100000)
        return ggi_error(GG_EINVAL, "slots must be at most 1024 and queue at most 100000");
    if (opts->name && (!*opts->name || strlen(opts->name) > GGP_MAX_NAME))
        return ggi_error(GG_EINVAL, "name must be 1 to %d bytes", GGP_MAX_NAME);
    for (size_t i = 0; opts->labels && opts->labels[i]; i++) {
        if (i >= GGP_MAX_LABELS)
            return ggi_error(GG_ETOOBIG, "more than %d labels", GGP_MAX_LABELS);
        if (check_label(opts->labels[i]))
            return GG_EINVAL;
    }
    if (opts->curve_key_file && (!opts->curve_server_key || !*opts->curve_server_key))
        return ggi_error(GG_EINVAL, "curve_key_file needs curve_server_key (the "
                         "orchestrator's public key)");
    /* A host's transport does its own security and names its own endpoints. */
    if (opts->custom_transport && (opts->curve_key_file || opts->curve_server_key))
        return ggi_error(GG_EINVAL, "curve_key_file and curve_server_key are for the built-in "
                         "ZeroMQ transport; a custom_transport does its own security");
    /* Without keys: tcp/ipc need insecure = 1 and a loopback endpoint (endpoint_rule.h). */
    ggi_endpoints eps;
    if (ggi_endpoints_parse(opts->connect, !opts->custom_transport,
                            opts->curve_key_file != NULL, opts->insecure, &eps) != GG_OK)
        return GG_EINVAL;
    ggi_endpoints_free(&eps);
    int rc = gg_init();
    if (rc)
        return rc;
    char host[GGP_MAX_NAME + 1] = "worker";
    if (!opts->name && gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "worker");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned slots = opts->slots ? opts->slots : (cores > 0 ? (unsigned)cores : 1);
    if ((rc = worker_alloc(out, opts->connect, opts->name ? opts->name : host, slots,
                           opts->queue)))
        return rc;
    gg_worker_t *w = *out;
    w->log.fn = opts->log_fn;
    w->log.user = opts->log_user;
    w->log.level = opts->log_level;
    w->tp = &w->own_transport;
    if (opts->custom_transport) {
        ggi_transport_borrow(w->tp, opts->custom_transport);
        rc = GG_OK;
    } else if (opts->curve_key_file) {
        ggi_zmq_security sec = {0};
        sec.client_key_file = opts->curve_key_file;
        sec.server_public_key = opts->curve_server_key;
        sec.log = w->log;
        rc = ggi_zmq_transport_new_secure(w->tp, &sec);
    } else {
        rc = ggi_zmq_transport_new(w->tp);
    }
    if (rc != GG_OK)
        goto fail;
    if (opts->generator)
        w->generator = opts->generator;
    else if ((rc = gg_generator_new(&w->own_generator, NULL)) == GG_OK)
        w->generator = w->own_generator;
    if (!rc && opts->executor)
        w->executor = opts->executor;
    else if (!rc && (rc = gg_executor_new(&w->own_executor, NULL)) == GG_OK)
        w->executor = w->own_executor;
    if (!rc && opts->retriever)
        w->retriever = opts->retriever;
    else if (!rc && (rc = gg_retriever_new(&w->own_retriever, NULL)) == GG_OK)
        w->retriever = w->own_retriever;
    if (!rc)
        rc = ggi_runtimes_resolve(&w->own_runtimes, opts->python, opts->cc);
    if (rc)
        goto fail;
    w->runtimes = &w->own_runtimes;
    w->caps = discover_caps(w, opts->labels, 0);
    if (!w->caps) {
        rc = ggi_error(GG_ENOMEM, "out of memory");
        goto fail;
    }
    return GG_OK;
fail:;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", gg_error_last());
    gg_worker_destroy(out);
    return gg_error_set(rc, msg);
}

void gg_worker_stop(gg_worker_t *w)
{
    if (w)
        atomic_store(&w->stop, 1);
}

int gg_worker_stats(gg_worker_t *w, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!w || !out_json)
        return ggi_error(GG_EINVAL, "worker and out pointer must not be NULL");
    /* held: jobs queued or running here and results not yet handed to the socket thread
     * (what `gryphgen worker --idle-s` waits to see at 0). */
    pthread_mutex_lock(&w->mu);
    unsigned held = w->count + w->running + (unsigned)w->done.n;
    pthread_mutex_unlock(&w->mu);
    /* endpoint: the one whose hub welcomed this worker, JSON-escaped; null when none has. */
    int ep = atomic_load(&w->active_ep);
    char *where = NULL;
    if (ep >= 0 && (unsigned)ep < w->eps.n) {
        cJSON *str = cJSON_CreateString(w->eps.ep[ep]);
        where = str ? ggi_json_print(str) : NULL;
        cJSON_Delete(str);
        if (!where)
            return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out_json = ggi_asprintf("{\"jobs\":%lu,\"results\":%lu,\"reconnects\":%lu,\"dropped\":%lu,"
                             "\"held\":%u,\"failovers\":%lu,\"aborted\":%lu,\"endpoint\":%s}",
                             atomic_load(&w->n_jobs), atomic_load(&w->n_results),
                             atomic_load(&w->n_reconnects), atomic_load(&w->n_dropped), held,
                             atomic_load(&w->n_failovers), atomic_load(&w->n_aborted),
                             where ? where : "null");
    free(where);
    return *out_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}

void gg_worker_destroy(gg_worker_t **pw)
{
    if (!pw || !*pw)
        return;
    gg_worker_t *w = *pw;
    if (w->jobs) {
        for (unsigned i = 0; i < w->count; i++)
            cJSON_Delete(w->jobs[(w->head + i) % w->cap]);
    }
    free(w->jobs);
    free(w->cur);
    free(w->aborted);
    for (unsigned i = 0; i < w->n_scopes; i++)
        ggi_job_scope_destroy(&w->scopes[i]);
    free(w->scopes);
    free(w->threads);
    result_list_free(&w->done);
    result_list_free(&w->sending);
    for (unsigned i = 0; i < w->n_spent; i++)
        cJSON_Delete(w->spent[i]);
    free(w->spent);
    ggi_buf_free(&w->out);
    cJSON_Delete(w->caps);
    ggi_endpoints_free(&w->eps);
    free(w->name);
    if (w->tp == &w->own_transport)
        ggi_transport_destroy(&w->own_transport);
    gg_generator_destroy(&w->own_generator);
    gg_executor_destroy(&w->own_executor);
    gg_retriever_destroy(&w->own_retriever);
    ggi_runtimes_free(&w->own_runtimes);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->done_cv);
    free(w);
    *pw = NULL;
}

/* ---------------------------------------------------------------- the socket thread */

static int send_msg(gg_worker_t *w, void *peer, cJSON *m)
{
    size_t len = 0;
    char *text = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    if (!text)
        return GG_ENOMEM;
    int rc = w->tp->vt.peer_send(peer, text, len);
    free(text);
    return rc;
}

/* Adds a job's lease to the array (a job without one is skipped). */
static void add_job_lease(cJSON *arr, const cJSON *job)
{
    const char *l = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "lease"));
    if (l)
        cJSON_AddItemToArray(arr, cJSON_CreateString(l));
}

/* Adds the lease of a result's text (written with "lease" first: {"lease":"HEX",...}). */
static void add_result_lease(cJSON *arr, const char *text, size_t len)
{
    static const char head[] = "{\"lease\":\"";
    size_t h = sizeof head - 1;
    if (len > h + 33 && memcmp(text, head, h) == 0 && text[h + 32] == '"') {
        char l[33];
        memcpy(l, text + h, 32);
        l[32] = '\0';
        cJSON_AddItemToArray(arr, cJSON_CreateString(l));
    }
}

/* The leases of every job this worker holds: queued, running, and finished with the result
 * not yet sent, for its hello (a hub that still knows this worker's instance keeps exactly
 * these leases on the new connection; docs/protocol.md "Leases"). NULL when there are none
 * or more than a message's batch may hold (the hub then keeps none). */
static cJSON *held_leases(gg_worker_t *w)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    pthread_mutex_lock(&w->mu);
    unsigned total = w->count + w->running + w->done.n + (w->sending.n - w->sent);
    if (total == 0 || total > GGP_MAX_BATCH) {
        pthread_mutex_unlock(&w->mu);
        cJSON_Delete(arr);
        return NULL;
    }
    for (unsigned i = 0; i < w->count; i++)
        add_job_lease(arr, w->jobs[(w->head + i) % w->cap]);
    for (unsigned i = 0; i < w->slots; i++)
        if (w->cur[i])
            add_job_lease(arr, w->cur[i]);
    for (unsigned i = 0; i < w->done.n; i++) {
        size_t len;
        const char *t = result_item(&w->done, i, &len);
        add_result_lease(arr, t, len);
    }
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = w->sent; i < w->sending.n; i++) {
        size_t len;
        const char *t = result_item(&w->sending, i, &len);
        add_result_lease(arr, t, len);
    }
    return arr;
}

static int send_hello(gg_worker_t *w, void *peer)
{
    cJSON *m = ggp_build_hello_worker(w->name, w->slots, w->queue, w->caps);
    if (!m)
        return GG_ENOMEM;
    if (ggp_hello_add_resume(m, w->instance, held_leases(w)) != GG_OK) {
        cJSON_Delete(m);
        return GG_ENOMEM;
    }
    return send_msg(w, peer, m);
}

/* Moves the jobs out of the decoded message (jobs is its array) into the ring. */
static void take_jobs(gg_worker_t *w, void *peer, cJSON *jobs)
{
    ggi_buf refused = GGI_BUF_INIT, item = GGI_BUF_INIT; /* a results message, when any */
    int n_refused = 0;
    pthread_mutex_lock(&w->mu);
    cJSON *j, *next;
    for (j = jobs ? jobs->child : NULL; j; j = next) {
        next = j->next;
        if (w->count >= w->cap) {
            /* The orchestrator sent more than we announced: refuse, it retries elsewhere. */
            item.len = 0;
            int rc = infra_result(&item, j, "worker queue full", 1);
            if (rc == GG_OK && n_refused == 0)
                rc = ggp_encode_results_begin(&refused);
            if (rc == GG_OK)
                rc = ggp_encode_results_add(&refused, n_refused == 0, item.data, item.len);
            n_refused += rc == GG_OK; /* else not refused: the orchestrator's lease expires */
            continue;
        }
        w->jobs[(w->head + w->count) % w->cap] = cJSON_DetachItemViaPointer(jobs, j);
        w->count++;
        atomic_fetch_add(&w->n_jobs, 1);
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (n_refused && ggp_encode_results_end(&refused) == GG_OK)
        w->tp->vt.peer_send(peer, refused.data, refused.len);
    ggi_buf_free(&refused);
    ggi_buf_free(&item);
}

static int same_lease(const cJSON *job, const char *lease)
{
    const char *l = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "lease"));
    return l && strcmp(l, lease) == 0;
}

/* Stops the job of one lease the hub aborted: a queued one leaves the ring (no result), a
 * running one has its generation and its executor jobs cut short and its result dropped.
 * A lease this worker does not hold (finished meanwhile, or never given) changes nothing.
 * Called with mu held; *task_id gets the task to interrupt the generation of (borrowed from
 * the running job, valid while mu is held), or NULL. */
static int abort_lease(gg_worker_t *w, const char *lease, const char **task_id)
{
    *task_id = NULL;
    for (unsigned i = 0; i < w->count; i++) {
        unsigned at = (w->head + i) % w->cap;
        if (!same_lease(w->jobs[at], lease))
            continue;
        cJSON_Delete(w->jobs[at]);
        for (unsigned k = i; k + 1 < w->count; k++)
            w->jobs[(w->head + k) % w->cap] = w->jobs[(w->head + k + 1) % w->cap];
        w->count--;
        return 1;
    }
    for (unsigned i = 0; i < w->slots; i++) {
        if (!w->cur[i] || w->aborted[i] || !same_lease(w->cur[i], lease))
            continue;
        w->aborted[i] = 1;
        ggi_job_scope_cancel(&w->scopes[i]);
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(w->cur[i], "task");
        *task_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "task_id"));
        return 1;
    }
    return 0;
}

/* The hub's abort: the jobs of these leases stop and send nothing (docs/protocol.md). */
static void on_abort(gg_worker_t *w, const cJSON *body)
{
    const cJSON *leases = cJSON_GetObjectItemCaseSensitive(body, "leases"), *l;
    const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "reason"));
    unsigned n = 0;
    cJSON_ArrayForEach(l, leases)
    {
        const char *task_id = NULL;
        pthread_mutex_lock(&w->mu);
        int hit = abort_lease(w, l->valuestring, &task_id);
        char *tid = task_id ? ggi_strdup(task_id) : NULL;
        pthread_mutex_unlock(&w->mu);
        if (tid)
            ggi_generator_interrupt(w->generator, tid);
        free(tid);
        n += (unsigned)hit;
    }
    atomic_fetch_add(&w->n_aborted, n);
    ggi_log(&w->log, GG_LOG_INFO, "worker '%s': the orchestrator aborted %u job(s) (%s)",
            w->name, n, why ? why : "no reason given");
}

/* Sends finished results in batches; what cannot be sent now stays for the next round
 * (*stalled is then set, when not NULL). Returns whether anything was sent. */
/* Frees the jobs the slots ran (this thread parsed them). */
static void free_spent(gg_worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    cJSON **spent = w->spent;
    unsigned n = w->n_spent, cap = w->cap_spent;
    w->spent = NULL;
    w->n_spent = w->cap_spent = 0;
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < n; i++)
        cJSON_Delete(spent[i]);
    /* The array goes back for reuse when the slots did not start a new one meanwhile. */
    pthread_mutex_lock(&w->mu);
    if (!w->spent && cap <= 4096) {
        w->spent = spent;
        w->cap_spent = cap;
        spent = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    free(spent);
}

/* The result text that replaces one too large for a message: its infrastructure fault. */
static int too_large(gg_worker_t *w, const char *text, size_t len, ggi_buf *out)
{
    cJSON *big = cJSON_ParseWithLength(text, len);
    int rc = big ? infra_result(out, big, "the attempt's record exceeds the message limit", 0)
                 : GG_ENOMEM;
    cJSON_Delete(big);
    if (rc != GG_OK)
        ggi_log(&w->log, GG_LOG_ERROR, "worker: a result is lost: out of memory");
    return rc;
}

/* Sends the results waiting, RESULT_BATCH (and at most GGP_MAX_MESSAGE bytes) a message;
 * what cannot be sent now (a full queue: *stalled) goes first next time. 1 when any was
 * sent. */
static int flush_results(gg_worker_t *w, void *peer, int *stalled)
{
    if (stalled)
        *stalled = 0;
    if (w->sent == w->sending.n) {
        result_list_clear(&w->sending);
        w->sent = 0;
        pthread_mutex_lock(&w->mu);
        result_list taken = w->done;
        w->done = w->sending;
        w->sending = taken;
        pthread_mutex_unlock(&w->mu);
        free_spent(w);
    }
    int sent_any = 0;
    while (w->sent < w->sending.n) {
        int rc = ggp_encode_results_begin(&w->out);
        unsigned k = 0;
        while (rc == GG_OK && w->sent + k < w->sending.n && k < RESULT_BATCH) {
            size_t len;
            const char *item = result_item(&w->sending, w->sent + k, &len);
            rc = ggp_encode_results_add(&w->out, k == 0, item, len);
            if (rc == GG_ETOOBIG) {
                rc = GG_OK;
                if (k > 0)
                    break; /* alone in the next message */
                rc = too_large(w, item, len, &w->out) == GG_OK ? GG_OK : GG_ENOMEM;
                k = 1;
                break;
            }
            k++;
        }
        if (rc == GG_OK)
            rc = ggp_encode_results_end(&w->out);
        if (rc == GG_OK)
            rc = w->tp->vt.peer_send(peer, w->out.data, w->out.len);
        if (w->out.cap > (1u << 20))
            ggi_buf_free(&w->out);
        if (rc != GG_OK) {
            if (stalled)
                *stalled = 1;
            break;
        }
        w->sent += k;
        atomic_fetch_add(&w->n_results, (unsigned long)k);
        sent_any = 1;
    }
    return sent_any;
}

/* How long the socket thread may wait for messages. While jobs run, it first waits (up to
 * BUSY_POLL_MS) for their results to make a batch and then only looks at the socket; when
 * results could not be sent (stalled), it waits BUSY_POLL_MS on the socket instead of
 * spinning; idle, it waits on the socket for idle_ms. */
static int socket_wait_ms(gg_worker_t *w, int idle_ms, int stalled)
{
    pthread_mutex_lock(&w->mu);
    unsigned jobs = w->count + w->running;
    if (jobs > 0 && !stalled && w->done.n < RESULT_WAKE) {
        struct timespec ts = ggi_timespec_in(CLOCK_MONOTONIC, BUSY_POLL_MS);
        w->sock_waiting = 1;
        pthread_cond_timedwait(&w->done_cv, &w->mu, &ts);
        w->sock_waiting = 0;
    }
    int wait = stalled ? BUSY_POLL_MS : jobs > 0 || w->done.n > 0 ? 0 : idle_ms;
    pthread_mutex_unlock(&w->mu);
    return wait;
}

static void join_slots(gg_worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->started; i++) {
        for (;;) {
            struct timespec ts = ggi_timespec_in(CLOCK_REALTIME, 50);
            if (pthread_timedjoin_np(w->threads[i], NULL, &ts) == 0)
                break;
            gg_executor_interrupt(w->executor);
        }
    }
    w->started = 0;
}

/* A new connection's start: nothing heard yet, results held until the welcome. */
static void link_start(gg_worker_t *w, void *peer)
{
    w->welcomed = 0;
    w->hb_ms = GGI_HEARTBEAT_MS;
    atomic_store(&w->active_ep, -1);
    send_hello(w, peer);
    w->opened_at = w->last_rx = w->last_tx = ggi_now_ms();
}

/* Sleeps ms in short steps; 1 when the worker was stopped meanwhile. */
static int pause_unless_stopped(gg_worker_t *w, int ms)
{
    for (int t = 0; t < ms && !atomic_load(&w->stop); t += 10)
        ggi_sleep_ms(10);
    return atomic_load(&w->stop);
}

/*
 * Leaves the hub of peer (why: what was wrong) for the next endpoint of the list, round
 * robin (the same one when there is only one), with a pause growing from BACKOFF_MIN_MS to
 * BACKOFF_MAX_MS after each round in which no hub welcomed us. Jobs and results held stay:
 * the results go to the next hub after its welcome. Returns the new peer, or NULL when the
 * worker was stopped meanwhile.
 */
static void *fail_over(gg_worker_t *w, void *peer, const char *why, int passive)
{
    const char *from = ggi_endpoints_current(&w->eps);
    w->heard_passive |= passive;
    w->tp->vt.close(peer);
    atomic_store(&w->active_ep, -1);
    atomic_fetch_add(&w->n_reconnects, 1);
    if (w->eps.n > 1)
        atomic_fetch_add(&w->n_failovers, 1);
    for (;;) {
        if (++w->tried >= w->eps.n) {
            /* A standby that answered is about to decide (it takes over when the primary
             * stays silent): asked again soon, without a growing pause. */
            int ms = w->heard_passive ? BACKOFF_MIN_MS : w->backoff_ms;
            w->tried = 0;
            w->heard_passive = 0;
            if (pause_unless_stopped(w, ms))
                return NULL;
            if (ms == w->backoff_ms)
                w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                   : w->backoff_ms * 2;
        }
        const char *to = ggi_endpoints_next(&w->eps);
        ggi_log(&w->log, GG_LOG_WARN, "worker '%s': leaving %s (%s); reconnecting to %s",
                w->name, from, why, to);
        peer = NULL;
        if (w->tp->vt.peer_open(w->tp->self, to, &peer) == GG_OK) {
            link_start(w, peer);
            return peer;
        }
        ggi_log(&w->log, GG_LOG_ERROR, "worker '%s': %s", w->name, gg_error_last());
        from = to;
        why = "cannot connect";
        if (atomic_load(&w->stop))
            return NULL;
    }
}

/* The hub of this connection took our hello: results may go, and the heartbeat is its. */
static void welcome(gg_worker_t *w, int hb_ms)
{
    w->hb_ms = hb_ms;
    w->welcomed = 1;
    w->tried = 0;
    w->heard_passive = 0;
    w->backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&w->active_ep, (int)w->eps.cur);
    ggi_log(&w->log, GG_LOG_INFO, "worker '%s': connected to %s", w->name,
            ggi_endpoints_current(&w->eps));
}

/* Handles one message from the hub; sets *passive when the hub says it is passive. */
static void on_message(gg_worker_t *w, void *peer, const ggp_msg *m, int *passive)
{
    switch (m->type) {
    case GGP_WELCOME: {
        long long hb = GGI_HEARTBEAT_MS;
        ggi_json_int(m->body, "hb_ms", 0, 10, 600000, &hb);
        welcome(w, (int)hb);
        break;
    }
    case GGP_JOBS:
        /* Jobs come only after the welcome (a hub whose welcome was refused by its transport
         * sends it again first): jobs before it are a protocol error, dropped. */
        if (!w->welcomed) {
            atomic_fetch_add(&w->n_dropped, 1);
            ggi_log(&w->log, GG_LOG_WARN, "worker '%s': dropping jobs sent before the "
                    "welcome (a protocol error of the orchestrator)", w->name);
            break;
        }
        take_jobs(w, peer, cJSON_GetObjectItemCaseSensitive(m->body, "jobs"));
        break;
    case GGP_RESET:
        ggi_log(&w->log, GG_LOG_INFO, "worker '%s': the orchestrator asks for a new hello",
                w->name);
        w->welcomed = 0; /* results wait for the welcome of the new hello */
        atomic_store(&w->active_ep, -1);
        send_hello(w, peer);
        w->last_tx = ggi_now_ms();
        break;
    case GGP_HB:
        break;
    case GGP_ABORT:
        on_abort(w, m->body);
        break;
    case GGP_REPLY: {
        /* A refused hello (a key whose role is not worker, no common version, a passive
         * orchestrator): said once per hello, with the orchestrator's reason. */
        const char *why =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->body, "message"));
        if (ggi_reply_is_passive(m->body))
            *passive = 1;
        else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->body, "ok")))
            ggi_log(&w->log, GG_LOG_ERROR, "worker '%s': the orchestrator refused it: %s",
                    w->name, why ? why : "no reason given");
        break;
    }
    default:
        atomic_fetch_add(&w->n_dropped, 1);
        ggi_log(&w->log, GG_LOG_WARN, "worker: dropping an unexpected '%s' message",
                ggp_type_name(m->type));
    }
}

/* Why the worker must leave its hub now, or NULL: it said it is passive, its connection
 * closed (the socket monitor sees a killed process's connection close at once), nobody
 * listens there while another endpoint is listed, or it fell silent for SILENT_BEATS
 * heartbeat intervals (the interval its welcome gave). */
static const char *leave_reason(gg_worker_t *w, void *peer, int passive, double now)
{
    if (passive)
        return "the orchestrator there is passive";
    int link = ggi_zmq_peer_link(w->tp, peer);
    if (link == GGI_LINK_LOST)
        return "its connection closed";
    if (link == GGI_LINK_REFUSED && w->eps.n > 1)
        return "nobody listens there";
    if (now - w->last_rx > (double)SILENT_BEATS * w->hb_ms)
        return "no heartbeat";
    return NULL;
}

int gg_worker_run(gg_worker_t *w)
{
    if (!w)
        return ggi_error(GG_EINVAL, "worker is NULL");
    /* The first endpoint that opens (a custom transport may refuse a name it has no hub
     * for); none: the first one's error. */
    void *peer = NULL;
    int rc = GG_OK, first_rc = GG_OK;
    char first_msg[1024] = "";
    for (unsigned i = 0; i < w->eps.n; i++) {
        rc = w->tp->vt.peer_open(w->tp->self, ggi_endpoints_current(&w->eps), &peer);
        if (rc == GG_OK)
            break;
        if (i == 0) {
            first_rc = rc;
            snprintf(first_msg, sizeof first_msg, "%s", gg_error_last());
        }
        ggi_endpoints_next(&w->eps);
    }
    if (rc != GG_OK)
        return gg_error_set(first_rc, first_msg);
    /* stop is never cleared here: a stop that came before run must not be lost. */
    for (unsigned i = 0; i < w->slots; i++) {
        if (pthread_create(&w->threads[i], NULL, slot_main, w) != 0) {
            atomic_store(&w->stop, 1);
            join_slots(w);
            w->tp->vt.close(peer);
            return ggi_error(GG_EIO, "cannot start slot thread %u", i);
        }
        w->started++;
    }
    link_start(w, peer);
    int stalled = 0;
    ggi_log(&w->log, GG_LOG_INFO, "worker '%s' (%u slots) connecting to %s", w->name, w->slots,
            ggi_endpoints_current(&w->eps));
    while (!atomic_load(&w->stop)) {
        int timeout = w->welcomed ? socket_wait_ms(w, 50, stalled) : UNWELCOMED_POLL_MS;
        gg_transport_msg msg;
        int passive = 0;
        int r = w->tp->vt.peer_recv(peer, timeout, &msg);
        for (int burst = 0; r == GG_OK && burst < 64 && !passive; burst++) {
            w->last_rx = ggi_now_ms();
            ggp_msg m;
            if (ggp_decode(msg.data, msg.len, &m) != GG_OK) {
                atomic_fetch_add(&w->n_dropped, 1);
                ggi_log(&w->log, GG_LOG_WARN, "worker: dropping a message: %s", gg_error_last());
            } else {
                on_message(w, peer, &m, &passive);
                ggp_msg_free(&m);
            }
            if (!passive)
                r = w->tp->vt.peer_recv(peer, 0, &msg);
        }
        if (r != GG_OK && r != GG_ETIMEDOUT) {
            ggi_log(&w->log, GG_LOG_ERROR, "worker: %s", gg_error_last());
            ggi_sleep_ms(50);
        }
        if (w->welcomed && flush_results(w, peer, &stalled))
            w->last_tx = ggi_now_ms();
        double now = ggi_now_ms();
        /* Before a welcome too: a hub that lost the hello answers a heartbeat with reset,
         * and the worker says hello again. */
        if (now - w->last_tx >= w->hb_ms) {
            cJSON *hb = ggp_new(GGP_HB);
            send_msg(w, peer, hb);
            w->last_tx = now;
        }
        const char *why = leave_reason(w, peer, passive, now);
        if (why && !(peer = fail_over(w, peer, why, passive)))
            break;
    }
    if (peer) {
        if (w->welcomed)
            flush_results(w, peer, NULL);
        send_msg(w, peer, ggp_new(GGP_BYE));
    }
    join_slots(w);
    pthread_mutex_lock(&w->mu);
    while (w->count > 0) {
        cJSON_Delete(w->jobs[w->head]);
        w->head = (w->head + 1) % w->cap;
        w->count--;
    }
    result_list_clear(&w->done);
    pthread_mutex_unlock(&w->mu);
    result_list_clear(&w->sending);
    w->sent = 0;
    free_spent(w);
    atomic_store(&w->active_ep, -1);
    if (peer)
        w->tp->vt.close(peer);
    return GG_OK;
}
