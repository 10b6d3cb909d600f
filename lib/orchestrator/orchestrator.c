/*
 * orchestrator.c - the public orchestrator API: creation (database, backends, the hub and
 * its endpoints, the scheduler thread and the embedded worker), submission, waiting,
 * cancelling and shutdown. Runs on the host's threads; task state is changed only by the
 * scheduler thread, except that submit inserts queued tasks.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "endpoint_rule.h"
#include "ha.h"
#include "../core/options.h"
#include "orq.h"
#include "protocol.h"
#include "webhook.h"
#include "../workspace/workspace.h"
#include "../generation/hooks.h"

static atomic_uint orchestrator_counter;

GGI_OPTIONS_LAYOUT(orchestrator_options, gg_orchestrator_options,
                   GG_ORCHESTRATOR_OPTIONS_VERSION,
                   GGI_OPTIONS_END(gg_orchestrator_options, transport),
                   GGI_OPTIONS_END(gg_orchestrator_options, insecure),
                   GGI_OPTIONS_END(gg_orchestrator_options, custom_transport),
                   GGI_OPTIONS_END(gg_orchestrator_options, ha_timeout_ms));

int gg_orchestrator_options_init(gg_orchestrator_options *opts, unsigned version)
{
    gg_orchestrator_options d = GG_ORCHESTRATOR_OPTIONS_INIT;
    return ggi_options_init(&orchestrator_options, opts, &d, version);
}

/* Sends a control message to the scheduler. */
static int send_control(gg_orchestrator_t *o, const char *msg)
{
    pthread_mutex_lock(&o->ctl_mu);
    int rc = o->transport.vt.peer_send(o->ctl_peer, msg, strlen(msg));
    pthread_mutex_unlock(&o->ctl_mu);
    return rc;
}

static void wake_scheduler(gg_orchestrator_t *o)
{
    if (atomic_exchange(&o->wake_pending, 1))
        return; /* one wake is already on its way; the scheduler clears the flag first */
    if (send_control(o, ggp_encode_bare(GGP_WAKE, NULL)) != GG_OK)
        atomic_store(&o->wake_pending, 0);
}

static int make_temp_db(gg_orchestrator_t *o)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char *path = ggi_asprintf("%s/gryphgen-%ld-XXXXXX", dir, (long)getpid());
    if (!path)
        return ggi_error(GG_ENOMEM, "out of memory");
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        free(path);
        return ggi_error(GG_EIO, "cannot create a temporary database in %s: %s", dir,
                         strerror(e));
    }
    close(fd);
    o->db_path = path;
    o->db_is_temp = 1;
    return GG_OK;
}

static void remove_temp_db(gg_orchestrator_t *o)
{
    if (!o->db_is_temp || !o->db_path)
        return;
    unlink(o->db_path);
    char *side = ggi_asprintf("%s-wal", o->db_path);
    if (side)
        unlink(side);
    free(side);
    side = ggi_asprintf("%s-shm", o->db_path);
    if (side)
        unlink(side);
    free(side);
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int setup_backends(gg_orchestrator_t *o, const gg_orchestrator_options *opts)
{
    int rc;
    if (opts->generator) {
        o->generator = opts->generator;
    } else {
        if ((rc = gg_generator_new(&o->own_generator, NULL)) != GG_OK)
            return ggi_error_wrap("default generator: ");
        o->generator = o->own_generator;
    }
    if (opts->executor) {
        o->executor = opts->executor;
    } else {
        if ((rc = gg_executor_new(&o->own_executor, NULL)) != GG_OK)
            return ggi_error_wrap("default executor: ");
        o->executor = o->own_executor;
    }
    if (opts->retriever) {
        o->retriever = opts->retriever;
    } else {
        if ((rc = gg_retriever_new(&o->own_retriever, NULL)) != GG_OK)
            return ggi_error_wrap("default retriever: ");
        o->retriever = o->own_retriever;
    }
    if ((rc = ggi_runtimes_resolve(&o->runtimes, opts->python, opts->cc)) != GG_OK)
        return rc;
    ggi_log(&o->log, GG_LOG_INFO, "python: %s (%s); cc: %s (%s)",
            o->runtimes.python ? o->runtimes.python : "none",
            o->runtimes.python_source ? o->runtimes.python_source : "-",
            o->runtimes.cc ? o->runtimes.cc : "none",
            o->runtimes.cc_source ? o->runtimes.cc_source : "-");
    return GG_OK;
}

static void *local_main(void *arg)
{
    gg_orchestrator_t *o = arg;
    if (gg_worker_run(o->local) != GG_OK)
        ggi_log(&o->log, GG_LOG_ERROR, "embedded worker: %s", gg_error_last());
    return NULL;
}

/* Binds the hub's extra endpoints: a comma-separated list. */
static int bind_extra(gg_orchestrator_t *o)
{
    if (!o->bind)
        return GG_OK;
    const char *p = o->bind;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            char ep[1024];
            if (n >= sizeof ep)
                return ggi_error(GG_EINVAL, "bind endpoint too long");
            memcpy(ep, p, n);
            ep[n] = 0;
            int rc = ggi_zmq_hub_bind(&o->transport, o->hub, ep);
            if (rc != GG_OK)
                return rc;
            ggi_log(&o->log, GG_LOG_INFO, "listening on %s", ep);
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return GG_OK;
}

/* The transport options: "zmq" (or NULL) for the built-in one; a host's transport takes one
 * endpoint name of its own and does its own security. */
static int check_transport(const gg_orchestrator_options *opts)
{
    const char *name = opts->transport;
    if (!opts->custom_transport) {
        if (name && strcmp(name, "zmq") != 0)
            return ggi_error(GG_EINVAL, "unknown transport '%s' (known: zmq; \"custom\" needs "
                             "custom_transport)", name);
        return GG_OK;
    }
    if (name && strcmp(name, "custom") != 0)
        return ggi_error(GG_EINVAL, "transport '%s' and custom_transport disagree (give "
                         "\"custom\" or NULL)", name);
    if (opts->curve_key_file)
        return ggi_error(GG_EINVAL, "curve_key_file is for the built-in ZeroMQ transport; a "
                         "custom_transport does its own security");
    if (opts->bind && *opts->bind && (strpbrk(opts->bind, ", ") || strlen(opts->bind) >= 96))
        return ggi_error(GG_EINVAL, "with custom_transport, bind is one endpoint name of at "
                         "most 95 bytes (no commas or spaces)");
    return GG_OK;
}

/* Applies the rule for unencrypted operation to every bind endpoint: with keys anything
 * goes; without them a tcp/ipc endpoint needs insecure = 1 and must be loopback. */
static int check_binds(const gg_orchestrator_options *opts)
{
    const char *p = opts->bind;
    while (p && *p) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            char ep[1024];
            if (n >= sizeof ep)
                return ggi_error(GG_EINVAL, "bind endpoint too long");
            memcpy(ep, p, n);
            ep[n] = 0;
            if (ggi_endpoint_rule(ep, opts->curve_key_file != NULL, opts->insecure,
                                  "curve_key_file and authorized_keys_file") != GG_OK)
                return GG_EINVAL;
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return GG_OK;
}

/* A standby pair's options: a role, the peer, an endpoint to be reached at, no local
 * workers (a passive server runs no work), the built-in transport. */
static int check_ha(const gg_orchestrator_options *opts)
{
    if (!opts->ha_role && !opts->ha_peer)
        return GG_OK;
    if (!opts->ha_role || !opts->ha_peer)
        return ggi_error(GG_EINVAL, "ha_role and ha_peer go together");
    if (!opts->bind || !*opts->bind)
        return ggi_error(GG_EINVAL, "ha_role needs a bind endpoint (where workers, clients "
                         "and the peer reach this server)");
    if (opts->local_workers)
        return ggi_error(GG_EINVAL, "ha_role needs local_workers = 0 (a standby runs no "
                         "work; run workers as processes that know both endpoints)");
    if (opts->custom_transport)
        return ggi_error(GG_EUNSUPPORTED, "ha_role works over the built-in ZeroMQ transport "
                         "only");
    return GG_OK;
}

static int start_threads(gg_orchestrator_t *o)
{
    int rc = o->transport.vt.hub_open(o->transport.self, o->endpoint, &o->hub);
    if (rc != GG_OK)
        return rc;
    /* A host's transport has its one endpoint; the built-in one binds the rest. */
    if (!o->transport.borrowed && (rc = bind_extra(o)) != GG_OK)
        return rc;
    rc = o->transport.vt.peer_open(o->transport.self, o->endpoint, &o->ctl_peer);
    if (rc != GG_OK)
        return rc;
    if (pthread_create(&o->scheduler, NULL, ggi_scheduler_main, o) != 0)
        return ggi_error(GG_EIO, "cannot start the scheduler thread");
    o->scheduler_started = 1;
    if (!o->local_workers)
        return GG_OK;
    rc = ggi_worker_new_embedded(&o->local, &o->transport, o->endpoint, o->n_workers,
                                 o->generator, o->executor, o->retriever, &o->runtimes, &o->log);
    if (rc != GG_OK)
        return rc;
    if (pthread_create(&o->local_thread, NULL, local_main, o) != 0)
        return ggi_error(GG_EIO, "cannot start the embedded worker");
    o->local_started = 1;
    return GG_OK;
}

int ggi_orq_resolve_workspace(cJSON **ws, const char *task_id, int flags)
{
    if (!*ws || cJSON_GetObjectItemCaseSensitive(*ws, "commit"))
        return GG_OK;
    cJSON *resolved = NULL;
    int rc = ggi_ws_resolve_ex(*ws, flags, &resolved);
    if (rc != GG_OK)
        return task_id ? ggi_error_wrap("task '%s': ", task_id) : ggi_error_wrap("task: ");
    cJSON_Delete(*ws);
    *ws = resolved;
    return GG_OK;
}

/* The normalised text a task's hash (and default id) is computed from: the task as it was
 * written, without what resolving its workspace added (the commit, the packfile). So a set
 * run again finds its tasks (resumes them) even when a branch moved in between, and the
 * stored task keeps the commit it was first pinned to. */
static char *hash_text(ggi_task *t)
{
    cJSON *pack = NULL, *commit = NULL;
    if (t->workspace) {
        pack = cJSON_DetachItemFromObjectCaseSensitive(t->workspace, "pack");
        commit = cJSON_DetachItemFromObjectCaseSensitive(t->workspace, "commit");
    }
    cJSON *norm = ggi_task_to_json(t);
    char *text = norm ? ggi_json_print(norm) : NULL;
    cJSON_Delete(norm);
    if (commit)
        cJSON_AddItemToObject(t->workspace, "commit", commit);
    if (pack)
        cJSON_AddItemToObject(t->workspace, "pack", pack);
    return text;
}

int ggi_orq_prepare_task(ggi_task *t, char **out_spec, char out_hash[17])
{
    *out_spec = NULL;
    if (!t->task_id) {
        /* A deterministic id, so that re-running the same set resumes it. */
        t->task_id = ggi_strdup("");
        char *spec = t->task_id ? hash_text(t) : NULL;
        if (!spec)
            return ggi_error(GG_ENOMEM, "out of memory");
        char hash[17];
        ggi_hash_hex(spec, strlen(spec), hash);
        free(spec);
        free(t->task_id);
        t->task_id = ggi_asprintf("task-%s", hash);
        if (!t->task_id)
            return ggi_error(GG_ENOMEM, "out of memory");
    }
    /* The hash is of the full normalised form (as ids and stored hashes always were); the
     * spec stored and sent with every job is the compact form of the same task. */
    cJSON *norm = ggi_task_to_json(t);
    char *full = norm ? hash_text(t) : NULL;
    ggi_task_json_compact(norm);
    char *spec = full ? ggi_json_print(norm) : NULL;
    cJSON_Delete(norm);
    if (!spec) {
        free(full);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    ggi_hash_hex(full, strlen(full), out_hash);
    free(full);
    *out_spec = spec;
    return GG_OK;
}

/* The options' values, each against its documented range. */
static int check_options(const gg_orchestrator_options *opts)
{
    int rc;
    if (opts->bind && strlen(opts->bind) > 4096)
        return ggi_error(GG_EINVAL, "bind is longer than 4096 bytes");
    if ((rc = check_transport(opts)) != GG_OK)
        return rc;
    if (opts->max_attempts > 100)
        return ggi_error(GG_EINVAL, "max_attempts must be from 1 to 100 (0: default 3)");
    if (opts->workers > 1024)
        return ggi_error(GG_EINVAL, "workers must be at most 1024");
    if (opts->max_tokens > GGI_TASK_MAX_TOKENS)
        return ggi_error(GG_EINVAL, "max_tokens must be at most %lld (0: $GRYPHGEN_MAX_TOKENS, "
                         "negative: no limit)", (long long)GGI_TASK_MAX_TOKENS);
    if (opts->curve_key_file && (!opts->authorized_keys_file || !*opts->authorized_keys_file))
        return ggi_error(GG_EINVAL, "curve_key_file needs authorized_keys_file (the keys "
                         "admitted, with their roles)");
    if (!opts->custom_transport && (rc = check_binds(opts)) != GG_OK)
        return rc;
    return check_ha(opts);
}

/* The object with its locks and the options' plain values; NULL when out of memory. */
static gg_orchestrator_t *new_object(const gg_orchestrator_options *opts)
{
    gg_orchestrator_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    ggi_metrics_init(&o->metrics);
    pthread_mutex_init(&o->api_mu, NULL);
    pthread_mutex_init(&o->ctl_mu, NULL);
    pthread_mutex_init(&o->done_mu, NULL);
    ggi_cond_init_monotonic(&o->done_cv);
    o->log.fn = opts->log_fn;
    o->log.user = opts->log_user;
    o->log.level = opts->log_level;
    o->event_fn = opts->event_fn;
    o->event_user = opts->event_user;
    o->max_attempts = opts->max_attempts ? opts->max_attempts : 3;
    o->n_workers = opts->workers ? opts->workers : online_cores();
    o->local_workers = opts->local_workers != 0;
    o->max_queued = opts->max_queued;
    o->max_tokens = opts->max_tokens;
    /* A pair's workers must notice a dead server soon, to turn to the other. */
    o->hb_ms = opts->ha_role ? GGI_HA_WORKER_HB_MS : GGI_HEARTBEAT_MS;
    if (opts->bind && *opts->bind && !(o->bind = ggi_strdup(opts->bind))) {
        free(o);
        return NULL;
    }
    /* A host's transport opens its hub under the name bind gives, when it gives one. */
    if (opts->custom_transport && o->bind)
        snprintf(o->endpoint, sizeof o->endpoint, "%s", o->bind);
    else
        snprintf(o->endpoint, sizeof o->endpoint, "inproc://gryphgen-orchestrator-%u",
                 atomic_fetch_add(&orchestrator_counter, 1));
    return o;
}

/* The database (the caller's, or a temporary one), recovered or handed to the standby pair,
 * and the scheduler's and the API's connections to it. */
static int open_stores(gg_orchestrator_t *o, const gg_orchestrator_options *opts)
{
    int rc = GG_OK;
    if (opts->db_path) {
        o->db_path = ggi_strdup(opts->db_path);
        if (!o->db_path)
            rc = ggi_error(GG_ENOMEM, "out of memory");
    } else {
        rc = make_temp_db(o);
    }
    if (rc == GG_OK && (rc = ggi_store_open(&o->sched_store, o->db_path)) == GG_OK) {
        int n = 0;
        /* One of a pair recovers when it becomes active (ggi_ha_become_active): until then
         * its database may be a replica being written by the other. */
        if (opts->ha_role)
            rc = ggi_ha_new(&o->ha, o, opts->ha_role, opts->ha_peer, opts->ha_timeout_ms);
        else
            rc = ggi_store_recover(o->sched_store, &n);
        if (rc == GG_OK && n > 0)
            ggi_log(&o->log, GG_LOG_INFO, "resuming %d interrupted task(s)", n);
        /* The scheduler writes every state change: its commits do not wait for checkpoints. */
        if (rc == GG_OK && ggi_store_checkpoint_in_background(o->sched_store) != GG_OK)
            ggi_log(&o->log, GG_LOG_WARN, "checkpoints stay on the scheduler's thread: %s",
                    gg_error_last());
    }
    if (rc == GG_OK)
        rc = ggi_store_open(&o->api_store, o->db_path);
    return rc;
}

/* The transport: the host's own, ZeroMQ with CURVE, or plain ZeroMQ. */
static int open_transport(gg_orchestrator_t *o, const gg_orchestrator_options *opts)
{
    if (opts->custom_transport) {
        ggi_transport_borrow(&o->transport, opts->custom_transport);
        return GG_OK;
    }
    if (!opts->curve_key_file)
        return ggi_zmq_transport_new(&o->transport);
    ggi_zmq_security sec = {0};
    sec.server_key_file = opts->curve_key_file;
    sec.authorized_keys_file = opts->authorized_keys_file;
    /* The pair share one key pair: the peer link authenticates with it. */
    if (opts->ha_role)
        sec.server_public_key = opts->curve_key_file;
    sec.log = o->log;
    return ggi_zmq_transport_new_secure(&o->transport, &sec);
}

int gg_orchestrator_new(gg_orchestrator_t **out, const gg_orchestrator_options *opts)
{
    if (!out)
        return ggi_error(GG_EINVAL, "out pointer is NULL");
    *out = NULL;
    gg_orchestrator_options defaults = GG_ORCHESTRATOR_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    /* Fields of later versions than the caller's read as their defaults. */
    gg_orchestrator_options full = GG_ORCHESTRATOR_OPTIONS_INIT;
    if (ggi_options_accept(&orchestrator_options, &full, opts))
        return GG_EVERSION;
    opts = &full;
    int rc = check_options(opts);
    if (rc != GG_OK || (rc = gg_init()) != GG_OK)
        return rc;
    gg_orchestrator_t *o = new_object(opts);
    if (!o)
        return ggi_error(GG_ENOMEM, "out of memory");
    rc = open_stores(o, opts);
    if (rc == GG_OK)
        rc = setup_backends(o, opts);
    /* An openai generator without a journal of its own keeps it (and its bandit) here. */
    if (rc == GG_OK && !o->db_is_temp &&
        ggi_generator_attach_journal(o->generator, o->db_path) != GG_OK)
        ggi_log(&o->log, GG_LOG_WARN, "generator journal in %s: %s", o->db_path,
                gg_error_last());
    if (rc == GG_OK)
        rc = open_transport(o, opts);
    if (rc == GG_OK)
        rc = ggi_orq_observe_start_alerts(o, opts);
    if (rc == GG_OK)
        rc = start_threads(o);
    if (rc == GG_OK && o->ha)
        rc = ggi_ha_start(o->ha);
    if (rc == GG_OK)
        rc = ggi_orq_observe_start_front_door(o, opts);
    if (rc != GG_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", gg_error_last());
        gg_orchestrator_destroy(&o);
        return gg_error_set(rc, msg);
    }
    *out = o;
    return GG_OK;
}

void gg_orchestrator_destroy(gg_orchestrator_t **po)
{
    if (!po || !*po)
        return;
    gg_orchestrator_t *o = *po;
    ggi_orq_observe_stop_front_door(o); /* its requests in flight are answered first */
    atomic_store(&o->stopping, 1);
    /* The embedded worker interrupts its running attempts and returns. */
    if (o->local)
        gg_worker_stop(o->local);
    if (o->local_started)
        pthread_join(o->local_thread, NULL);
    gg_worker_destroy(&o->local);
    if (o->scheduler_started)
        pthread_join(o->scheduler, NULL);
    ggi_ha_destroy(&o->ha); /* its link uses the transport */
    ggi_orq_observe_stop_alerts(o); /* no events come any more */
    if (o->ctl_peer)
        o->transport.vt.close(o->ctl_peer);
    if (o->hub)
        o->transport.vt.close(o->hub);
    ggi_transport_destroy(&o->transport);
    free(o->bind);
    ggi_store_close(&o->api_store);
    ggi_store_close(&o->sched_store);
    remove_temp_db(o);
    free(o->db_path);
    gg_generator_destroy(&o->own_generator);
    gg_executor_destroy(&o->own_executor);
    gg_retriever_destroy(&o->own_retriever);
    ggi_runtimes_free(&o->runtimes);
    pthread_mutex_destroy(&o->api_mu);
    pthread_mutex_destroy(&o->ctl_mu);
    pthread_mutex_destroy(&o->done_mu);
    pthread_cond_destroy(&o->done_cv);
    free(o);
    *po = NULL;
}

void ggi_orq_interrupt_generation(gg_orchestrator_t *o, const char *task_id)
{
    if (o && o->local_workers > 0 && task_id)
        ggi_generator_interrupt(o->generator, task_id);
}

void ggi_orq_fail(gg_orchestrator_t *o, int fault, const char *why)
{
    const char *cause;
    switch (fault & 0xff) {
    case SQLITE_FULL: cause = "its filesystem is full"; break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: cause = "it cannot be written (read-only)"; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: cause = "another process keeps it locked"; break;
    case SQLITE_IOERR: cause = "an I/O error"; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: cause = "it is damaged"; break;
    default: cause = "it failed"; break;
    }
    pthread_mutex_lock(&o->done_mu);
    if (!atomic_load(&o->failed)) {
        snprintf(o->failed_msg, sizeof o->failed_msg,
                 "stopped: cannot write to the database '%s' (%s: %s); what was committed is "
                 "kept, and the unfinished tasks resume when it is opened again",
                 o->db_path ? o->db_path : "?", cause, why && *why ? why : "no detail");
        atomic_store(&o->failed, 1);
    }
    pthread_mutex_unlock(&o->done_mu);
    ggi_log(&o->log, GG_LOG_ERROR, "%s", o->failed_msg);
    ggi_orq_signal_done(o);
}

int ggi_orq_failed(gg_orchestrator_t *o)
{
    if (!atomic_load(&o->failed))
        return GG_OK;
    return ggi_error(GG_ESTORE, "%s", o->failed_msg);
}

int gg_orchestrator_submit(gg_orchestrator_t *o, const char *task_json, char **out_task_id)
{
    if (out_task_id)
        *out_task_id = NULL;
    if (!o || !task_json)
        return ggi_error(GG_EINVAL, "orchestrator and task JSON must not be NULL");
    if (atomic_load(&o->stopping))
        return ggi_error(GG_ESTATE, "the orchestrator is shutting down");
    if (ggi_orq_failed(o) != GG_OK)
        return GG_ESTORE;
    if (o->ha)
        return ggi_error(GG_EUNSUPPORTED, "one of a standby pair takes tasks from clients "
                         "over ggp/1 only (their writes are replicated; see docs/ha.md)");
    ggi_task *t = NULL;
    int rc = ggi_task_parse(task_json, strlen(task_json), &t);
    if (rc != GG_OK)
        return rc;
    /* A workspace is pinned here, where its source is read: every attempt starts from the
     * same commit, however the branch moves later (a source that is not there is refused,
     * naming the field). */
    /* Only this process's workers will build the base when no endpoint lets other workers
     * join: a repository's commit is then read from the repository itself, so the task
     * (every job, the database) carries no packfile of it, and no pack cap applies. A
     * directory, which may change, is still packed: its attempts see it as submitted. */
    int own_only = !o->bind && o->local_workers && t->workspace &&
                   cJSON_GetObjectItemCaseSensitive(t->workspace, "repo");
    if ((rc = ggi_orq_resolve_workspace(&t->workspace, t->task_id,
                                        own_only ? GGI_WS_RESOLVE_NO_PACK : 0)) != GG_OK) {
        ggi_task_free(t);
        return rc;
    }
    char *spec = NULL, *needs = NULL;
    char hash[17];
    int64_t seq = 0;
    int existing = 0;
    if ((rc = ggi_orq_prepare_task(t, &spec, hash)) != GG_OK)
        goto out;
    if (o->max_queued && atomic_load(&o->queued) >= (long long)o->max_queued) {
        atomic_fetch_add(&o->n_busy, 1);
        rc = ggi_error(GG_EBUSY, "the orchestrator's queue is full (%u tasks); try again later",
                       o->max_queued);
        goto out;
    }
    if ((rc = ggi_task_needs(t, &needs)) != GG_OK)
        goto out;
    pthread_mutex_lock(&o->api_mu);
    rc = ggi_store_task_insert(o->api_store,
                               &(ggi_task_new){ .task_id = t->task_id, .spec_json = spec,
                                                .spec_hash = hash, .priority = t->priority,
                                                .language = t->language, .needs = needs,
                                                .now = ggi_wall_s() },
                               &seq, &existing);
    pthread_mutex_unlock(&o->api_mu);
    if (rc != GG_OK)
        goto out;
    if (!existing) {
        atomic_fetch_add(&o->queued, 1);
        wake_scheduler(o);
    }
    if (out_task_id) {
        *out_task_id = ggi_strdup(t->task_id);
        if (!*out_task_id)
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
out:
    free(spec);
    free(needs);
    ggi_task_free(t);
    return rc;
}

static int is_ended(const char *status)
{
    return strcmp(status, GGI_ST_QUEUED) != 0 && strcmp(status, GGI_ST_RUNNING) != 0;
}

/* Reads the task; GG_EAGAIN while it runs, its result once it ended. */
static int read_result(gg_orchestrator_t *o, const char *task_id, char **out)
{
    ggi_task_row row;
    memset(&row, 0, sizeof row);
    pthread_mutex_lock(&o->api_mu);
    int rc = ggi_store_task_get(o->api_store, task_id, &row);
    pthread_mutex_unlock(&o->api_mu);
    if (rc == GG_ENOTFOUND)
        return ggi_error(GG_ENOTFOUND, "no task '%s'", task_id);
    if (rc != GG_OK)
        return rc;
    if (!is_ended(row.status) || !row.result) {
        ggi_store_task_row_free(&row);
        return GG_EAGAIN;
    }
    *out = row.result;
    row.result = NULL;
    ggi_store_task_row_free(&row);
    return GG_OK;
}

static uint64_t done_generation(gg_orchestrator_t *o)
{
    pthread_mutex_lock(&o->done_mu);
    uint64_t g = o->done_gen;
    pthread_mutex_unlock(&o->done_mu);
    return g;
}

/* Waits until done_gen moves past seen or the deadline (monotonic ms; < 0: none) passes.
 * Returns 0, or GG_ETIMEDOUT. */
static int wait_done(gg_orchestrator_t *o, uint64_t seen, double deadline_ms)
{
    int rc = GG_OK;
    pthread_mutex_lock(&o->done_mu);
    while (o->done_gen == seen) {
        double now = ggi_now_ms();
        if (deadline_ms >= 0 && now >= deadline_ms) {
            rc = GG_ETIMEDOUT;
            break;
        }
        /* Wake at least every second, so a task ended by another process is noticed. */
        double until = now + 1000.0;
        if (deadline_ms >= 0 && deadline_ms < until)
            until = deadline_ms;
        struct timespec ts = ggi_timespec_in(CLOCK_MONOTONIC, until - now);
        if (pthread_cond_timedwait(&o->done_cv, &o->done_mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&o->done_mu);
    return rc;
}

int gg_orchestrator_result(gg_orchestrator_t *o, const char *task_id, char **out_result_json)
{
    if (out_result_json)
        *out_result_json = NULL;
    if (!o || !task_id || !out_result_json)
        return ggi_error(GG_EINVAL, "orchestrator, task id and out pointer must not be NULL");
    int rc = read_result(o, task_id, out_result_json);
    if (rc == GG_EAGAIN)
        return ggi_error(GG_EAGAIN, "task '%s' has not ended yet", task_id);
    return rc;
}

int gg_orchestrator_wait(gg_orchestrator_t *o, const char *task_id, int timeout_ms,
                         char **out_result_json)
{
    if (out_result_json)
        *out_result_json = NULL;
    if (!o || !task_id || !out_result_json)
        return ggi_error(GG_EINVAL, "orchestrator, task id and out pointer must not be NULL");
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : -1;
    for (;;) {
        uint64_t seen = done_generation(o);
        int rc = read_result(o, task_id, out_result_json);
        if (rc != GG_EAGAIN)
            return rc;
        if (ggi_orq_failed(o) != GG_OK)
            return GG_ESTORE; /* it will not end in this run */
        if (wait_done(o, seen, deadline) == GG_ETIMEDOUT)
            return ggi_error(GG_ETIMEDOUT, "task '%s' did not end within %d ms", task_id,
                             timeout_ms);
    }
}

int gg_orchestrator_cancel(gg_orchestrator_t *o, const char *task_id)
{
    if (!o || !task_id)
        return ggi_error(GG_EINVAL, "orchestrator and task id must not be NULL");
    ggi_task_row row;
    memset(&row, 0, sizeof row);
    pthread_mutex_lock(&o->api_mu);
    int rc = ggi_store_task_get(o->api_store, task_id, &row);
    pthread_mutex_unlock(&o->api_mu);
    if (rc == GG_ENOTFOUND)
        return ggi_error(GG_ENOTFOUND, "no task '%s'", task_id);
    if (rc != GG_OK)
        return rc;
    if (is_ended(row.status)) {
        rc = ggi_error(GG_ESTATE, "task '%s' has already ended (%s)", task_id, row.status);
    } else {
        cJSON *m = ggp_build_cancel(task_id, row.seq);
        char *text = m ? ggi_json_print(m) : NULL;
        cJSON_Delete(m);
        rc = text ? send_control(o, text) : ggi_error(GG_ENOMEM, "out of memory");
        free(text);
    }
    ggi_store_task_row_free(&row);
    return rc;
}

static int count_tasks(gg_orchestrator_t *o, ggi_store_counts *c)
{
    pthread_mutex_lock(&o->api_mu);
    int rc = ggi_store_counts_get(o->api_store, c);
    pthread_mutex_unlock(&o->api_mu);
    return rc;
}

int gg_orchestrator_drain(gg_orchestrator_t *o, int timeout_ms)
{
    if (!o)
        return ggi_error(GG_EINVAL, "orchestrator must not be NULL");
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : -1;
    for (;;) {
        uint64_t seen = done_generation(o);
        /* First: a stopped scheduler is said even when nothing is left to run (serve asks
         * with timeout 0), and the counts of a database that failed are not asked. */
        if (ggi_orq_failed(o) != GG_OK)
            return GG_ESTORE;
        ggi_store_counts c;
        int rc = count_tasks(o, &c);
        if (rc != GG_OK)
            return rc;
        if (c.queued + c.running == 0 && atomic_load(&o->ends_unheard) == 0)
            return GG_OK;
        if (wait_done(o, seen, deadline) == GG_ETIMEDOUT)
            return ggi_error(GG_ETIMEDOUT, "%lld task(s) still unfinished after %d ms",
                             (long long)(c.queued + c.running), timeout_ms);
    }
}

int gg_orchestrator_stats(gg_orchestrator_t *o, char **out_json)
{
    if (out_json)
        *out_json = NULL;
    if (!o || !out_json)
        return ggi_error(GG_EINVAL, "orchestrator and out pointer must not be NULL");
    ggi_store_counts c;
    int rc = count_tasks(o, &c);
    if (rc != GG_OK)
        return rc;
    ggi_webhook_stats wh;
    ggi_orchestrator_webhook_stats(o, &wh);
    *out_json = ggi_asprintf("{\"queued\":%lld,\"running\":%lld,\"passed\":%lld,"
                             "\"failed\":%lld,\"error\":%lld,\"cancelled\":%lld,"
                             "\"attempts\":%lld,\"nodes\":%d,\"dropped\":%lu,\"stale\":%lu,"
                             "\"busy\":%lu,\"requeued\":%lu,\"foreign\":%lu,"
                             "\"webhooks\":{\"alerts\":%llu,\"sent\":%llu,\"retried\":%llu,"
                             "\"dropped\":%llu,\"queued\":%llu}}",
                             (long long)c.queued, (long long)c.running, (long long)c.passed,
                             (long long)c.failed, (long long)c.error, (long long)c.cancelled,
                             (long long)c.attempts, atomic_load(&o->n_nodes),
                             atomic_load(&o->n_dropped), atomic_load(&o->n_stale),
                             atomic_load(&o->n_busy), atomic_load(&o->n_requeued),
                             atomic_load(&o->n_foreign), (unsigned long long)wh.alerts,
                             (unsigned long long)wh.sent, (unsigned long long)wh.retried,
                             (unsigned long long)wh.dropped, (unsigned long long)wh.queued);
    return *out_json ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
}
