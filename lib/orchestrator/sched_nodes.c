/*
 * sched_nodes.c - worker nodes: hello, what they can run, scores, quarantine, liveness.
 *
 * A worker says hello with its slots and caps (runtimes, labels, memory, GPUs, isolation);
 * its learned score per language (success rate and latency, moving averages) ranks it for
 * dispatch, and a streak of infrastructure faults quarantines it. Heartbeats go both ways;
 * a node silent for three intervals is dropped and its jobs requeued (drop_node).
 *
 * Cut here because a node's record and lifetime are one concern that dispatch only reads
 * (node_matches, the scores) and results only feed (learn).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "sched.h"
#include "../core/lang.h"

node *ggi_sched_find_node(sched *s, const void *id, size_t len)
{
    for (node *n = s->nodes; n; n = n->next)
        if (same_identity(&n->id, id, len))
            return n;
    return NULL;
}

void ggi_sched_save_scores(sched *s)
{
    for (node *n = s->nodes; n; n = n->next) {
        for (int i = 0; i < n->n_scores; i++) {
            score *sc = &n->scores[i];
            if (!sc->dirty)
                continue;
            ggi_op op = { .kind = GGI_OP_SCORE, .name = ggi_strdup(n->name),
                          .code = ggi_strdup(sc->lang), .a = sc->ok, .b = sc->lat_ms,
                          .count = (int)(sc->n > 2000000000 ? 2000000000 : sc->n),
                          .ts = ggi_wall_s() };
            ggi_sched_add_op(s, &op, op.name && op.code, "a node's score");
            sc->dirty = 0;
        }
    }
}

/* Takes a score the database kept from earlier runs into a node saying hello. */
static void preload_score(void *user, const char *lang, double ok, double lat_ms, long long n)
{
    node *nd = user;
    if (nd->n_scores >= MAX_SCORES - 1) /* one slot stays for a language new to it */
        return;
    score *sc = &nd->scores[nd->n_scores++];
    memset(sc, 0, sizeof *sc);
    snprintf(sc->lang, sizeof sc->lang, "%s", lang);
    sc->ok = ok;
    sc->lat_ms = lat_ms;
    sc->n = n;
}

score *ggi_sched_node_score(sched *s, node *n, const char *lang)
{
    (void)s;
    if (!lang)
        lang = "?";
    for (int i = 0; i < n->n_scores; i++)
        if (strcmp(n->scores[i].lang, lang) == 0)
            return &n->scores[i];
    if (n->n_scores >= MAX_SCORES)
        return &n->scores[MAX_SCORES - 1];
    /* What earlier runs learnt was read at the node's hello (preload_score): a lookup never
     * waits for the writer, so it never completes a batch (events, replies) in the middle of
     * dispatch. A language new to the node starts trusted and fast. */
    score *sc = &n->scores[n->n_scores++];
    memset(sc, 0, sizeof *sc);
    snprintf(sc->lang, sizeof sc->lang, "%s", lang);
    sc->ok = 1.0;
    return sc;
}

static int has_string(const cJSON *arr, const char *v)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, v) == 0)
            return 1;
    }
    return 0;
}

/* The language a runtime name stands for, the way tasks name languages: workers and hosts
 * spell runtimes differently ("python3", "python", "python3.12", "cc", "gcc", "clang"); an
 * unknown name stands for itself. */
static const char *runtime_language(const char *rt, char *buf, size_t cap)
{
    size_t n = 0;
    for (; rt[n] && n + 1 < cap; n++)
        buf[n] = (char)(rt[n] >= 'A' && rt[n] <= 'Z' ? rt[n] - 'A' + 'a' : rt[n]);
    buf[n] = '\0';
    if (strncmp(buf, "python", 6) == 0 && strspn(buf + 6, "0123456789.") == strlen(buf + 6))
        return "python";
    if (strcmp(buf, "cpython") == 0)
        return "python";
    static const char *const c_compilers[] = { "c", "cc", "gcc", "clang", "tcc" };
    for (size_t i = 0; i < sizeof c_compilers / sizeof c_compilers[0]; i++)
        if (strcmp(buf, c_compilers[i]) == 0)
            return "c";
    /* binaries older workers announced for the languages they stand for */
    static const char *const tools[][2] = { { "node", "javascript" }, { "nodejs", "javascript" },
                                            { "g++", "cpp" },         { "c++", "cpp" },
                                            { "clang++", "cpp" },     { "rustc", "rust" },
                                            { "golang", "go" },       { "tsc", "typescript" } };
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (strcmp(buf, tools[i][0]) == 0)
            return tools[i][1];
    return buf;
}

/* The languages a node's announced runtimes stand for, worked out once at its hello (the
 * matching of every dispatch compares them as they are). */
static cJSON *runtime_languages(const cJSON *runtimes)
{
    cJSON *langs = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, runtimes)
    {
        char buf[GGP_MAX_NAME + 1];
        if (langs && cJSON_IsString(e))
            cJSON_AddItemToArray(langs, cJSON_CreateString(runtime_language(e->valuestring, buf,
                                                                              sizeof buf)));
    }
    return langs;
}

static const char *runtime_for(const char *language)
{
    if (!language)
        return NULL;
    if (strcmp(language, "python") == 0)
        return "python3";
    if (strcmp(language, "c") == 0)
        return "cc";
    return language;
}

/* Whether n can ever run a: requirements only, not load. */
int ggi_sched_node_matches(const node *n, const active *a)
{
    /* "any" (the embedded worker) takes every language and size: a missing runtime is then
     * reported by the attempt itself, as before the grid. Labels and GPUs still count. */
    const char *rt = runtime_for(a->language);
    char lang[GGP_MAX_NAME + 1];
    if (!n->any && !n->noop && rt &&
        !has_string(n->langs, runtime_language(rt, lang, sizeof lang)))
        return 0;
    if (!n->any && a->memory_mb > 0 && n->memory_mb > 0 && a->memory_mb > n->memory_mb)
        return 0;
    if (a->gpus > n->gpus)
        return 0;
    /* The embedded worker's executor refuses a level it cannot give, as a final fault. */
    if (!n->any && a->isolation &&
        !has_string(cJSON_GetObjectItemCaseSensitive(n->caps, "isolation"), a->isolation))
        return 0;
    /* Every library it requires, on every worker but a benchmark one (it runs nothing): the
     * embedded worker announces its own as a remote one does. */
    if (!n->noop && a->requires && !ggi_lang_deps_cover(n->deps, a->requires, NULL))
        return 0;
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(n->caps, "labels");
    const cJSON *l;
    cJSON_ArrayForEach(l, a->labels)
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(have, l->string));
        if (!v || !cJSON_IsString(l) || strcmp(v, l->valuestring) != 0)
            return 0;
    }
    return 1;
}

char *ggi_sched_needs_text(const active *a)
{
    ggi_buf b = GGI_BUF_INIT;
    const char *rt = runtime_for(a->language);
    ggi_buf_printf(&b, "runtime %s", rt ? rt : "?");
    if (a->memory_mb > 0)
        ggi_buf_printf(&b, ", %g MB memory", a->memory_mb);
    if (a->gpus > 0)
        ggi_buf_printf(&b, ", %d GPU(s)", a->gpus);
    if (a->isolation)
        ggi_buf_printf(&b, ", isolation %s or stronger", a->isolation);
    const cJSON *l;
    cJSON_ArrayForEach(l, a->labels)
    {
        ggi_buf_printf(&b, ", label %s=%s", l->string,
                       cJSON_IsString(l) ? l->valuestring : "?");
    }
    cJSON_ArrayForEach(l, a->requires)
    {
        ggi_buf_printf(&b, ", library %s", cJSON_IsString(l) ? l->valuestring : "?");
    }
    return ggi_buf_steal(&b);
}

void ggi_sched_node_free(node *n)
{
    cJSON_Delete(n->caps);
    cJSON_Delete(n->langs);
    ggi_buf_free(&n->batch);
    free(n->batch_seqs);
    free(n->carried);
    free(n->welcome);
    free(n);
}

/* A node is gone: its jobs go back to the queue, to be sent elsewhere. */
void ggi_sched_drop_node(sched *s, node *n, const char *why)
{
    int requeued = 0;
    for (active *a = s->tasks, *next; a; a = next) {
        next = a->next;
        if (a->on != n)
            continue;
        a->on = NULL;
        if (!a->inflight)
            continue;
        a->inflight = 0;
        a->lease[0] = '\0';
        a->lost++;
        requeued++;
        s->dispatch_due = 1;
        atomic_fetch_add(&s->o->n_requeued, 1);
        cJSON *ev = ggi_sched_event_new("job.requeued", a->task_id);
        if (ev) {
            cJSON_AddNumberToObject(ev, "attempt", a->attempts + 1);
            cJSON_AddStringToObject(ev, "node", n->name);
            cJSON_AddStringToObject(ev, "reason", why);
            ggi_sched_emit(s, a->seq, ev);
        }
        if (a->lost >= GGI_MAX_LOST) {
            char *reason = ggi_asprintf("%d workers died running it (last: %s, %s)", a->lost,
                                        n->name, why);
            ggi_sched_end_active(s, a, a->cancelled ? GGI_ST_CANCELLED : GGI_ST_ERROR,
                                 a->cancelled ? GGI_END_CANCELLED : GGI_END_WORKERS_LOST,
                                 reason);
            free(reason);
        } else if (a->cancelled) {
            ggi_sched_end_active(s, a, GGI_ST_CANCELLED, GGI_END_CANCELLED, "cancelled");
        }
    }
    ggi_log(&s->o->log, requeued ? GG_LOG_WARN : GG_LOG_INFO,
            "worker '%s' %s; %d job(s) requeued", n->name, why, requeued);
    cJSON *ev = ggi_sched_event_new("node.lost", NULL);
    if (ev) {
        cJSON_AddStringToObject(ev, "node", n->name);
        cJSON_AddStringToObject(ev, "reason", why);
        ggi_sched_emit(s, 0, ev);
    }
    for (node **p = &s->nodes; *p; p = &(*p)->next) {
        if (*p == n) {
            *p = n->next;
            break;
        }
    }
    s->n_nodes--;
    s->nodes_gen++;
    s->peers_gone++;
    s->gone_at = ggi_now_ms();
    atomic_store(&s->o->n_nodes, s->n_nodes);
    ggi_sched_node_free(n);
}

void ggi_sched_recompute_limit(sched *s)
{
    long total = 0;
    for (node *n = s->nodes; n; n = n->next)
        total += n->capacity;
    /* Twice the capacity: the writer claims while jobs run, so freed slots are filled from
     * tasks claimed ahead rather than after a round trip through the database. */
    long lim = 2 * total + 16;
    if (lim < (long)s->o->n_workers * 2)
        lim = (long)s->o->n_workers * 2;
    if (lim > 100000)
        lim = 100000;
    s->limit = (int)lim;
    s->may_have_queued = 1;
}

/* The instance id of a hello: 32 lowercase hex digits, or "" when absent or malformed. */
static void hello_instance(const cJSON *b, char out[33])
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "instance"));
    out[0] = '\0';
    if (!v || strlen(v) != 32 || strspn(v, "0123456789abcdef") != 32)
        return;
    memcpy(out, v, 33);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The valid entries of a hello's "leases" (32 lowercase hex digits each), sorted, in a new
 * array of pointers into b (*n of them); NULL when there are none. */
static const char **hello_leases(const cJSON *b, int *n)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(b, "leases");
    int size = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    *n = 0;
    if (size <= 0 || size > GGP_MAX_BATCH)
        return NULL;
    const char **out = malloc((size_t)size * sizeof *out);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        const char *v = cJSON_GetStringValue(e);
        if (out && v && strlen(v) == 32 && strspn(v, "0123456789abcdef") == 32)
            out[(*n)++] = v;
    }
    if (out && *n)
        qsort(out, (size_t)*n, sizeof *out, cmp_str);
    return out;
}

/*
 * A worker that said hello again over a new connection (it reconnected, or came back from
 * another endpoint) takes over the leases its old connection holds that it still has (the
 * hello's "leases": jobs queued, running, or with the result not yet sent): the same instance
 * id, name and key. Their results then count. The old connection is forgotten; the jobs it
 * held that the worker does not list (lost on the way) are requeued. Without an instance id
 * or leases nothing moves (the old connection's jobs are requeued when it is declared dead).
 */
static void adopt_leases(sched *s, node *n, const cJSON *b)
{
    if (!n->instance[0])
        return;
    for (node *m = s->nodes; m; m = m->next) {
        if (m == n || strcmp(m->instance, n->instance) != 0 || strcmp(m->key, n->key) != 0 ||
            strcmp(m->name, n->name) != 0)
            continue;
        int moved = 0, n_held = 0;
        const char **held = hello_leases(b, &n_held);
        for (active *a = s->tasks; a && n_held > 0; a = a->next) {
            if (a->on != m || !a->inflight)
                continue;
            const char *key = a->lease;
            int unsent = 0; /* still in the old connection's batch: requeued with it */
            for (int k = 0; k < m->batch_count && !unsent; k++)
                unsent = m->batch_seqs[k] == a->seq;
            if (unsent || !bsearch(&key, held, (size_t)n_held, sizeof *held, cmp_str))
                continue;
            a->on = n;
            m->busy--;
            n->busy++;
            moved++;
        }
        free(held);
        ggi_log(&s->o->log, GG_LOG_INFO, "worker '%s' reconnected: %d lease(s) kept", n->name,
                moved);
        ggi_sched_drop_node(s, m, "reconnected over a new connection");
        return;
    }
}

/*
 * The leases of a hello that are not this hub's jobs on the node (after adopt_leases): jobs
 * another hub gave it before a failover, or ones requeued here since. The worker holds them
 * (queued, running, or with the result not yet sent), so until their results come they
 * count against the capacity it announced: the hub never sends more than that in total, and
 * the worker's queue is no larger than it announced (docs/protocol.md "Leases").
 */
static void note_carried(sched *s, node *n, const cJSON *b)
{
    n->busy -= n->n_carried; /* a hello again on this connection says it anew */
    free(n->carried);
    n->carried = NULL;
    n->n_carried = 0;
    int n_held = 0;
    const char **held = hello_leases(b, &n_held);
    unsigned char *ours = n_held > 0 ? calloc((size_t)n_held, 1) : NULL;
    n->carried = ours ? malloc((size_t)n_held * sizeof *n->carried) : NULL;
    if (n_held > 0 && !n->carried) {
        ggi_log(&s->o->log, GG_LOG_WARN, "worker '%s': its %d held lease(s) are not counted: "
                "out of memory", n->name, n_held);
    } else if (n_held > 0) {
        for (active *a = s->tasks; a; a = a->next) {
            if (a->on != n || !a->inflight)
                continue;
            const char *key = a->lease;
            const char **hit = bsearch(&key, held, (size_t)n_held, sizeof *held, cmp_str);
            if (hit)
                ours[hit - held] = 1;
        }
        for (int i = 0; i < n_held; i++)
            if (!ours[i] && (i == 0 || strcmp(held[i], held[i - 1]) != 0))
                memcpy(n->carried[n->n_carried++], held[i], 33);
        n->busy += n->n_carried;
        if (n->n_carried)
            ggi_log(&s->o->log, GG_LOG_INFO, "worker '%s' carries %d job(s) from before its "
                    "hello: they take room until their results come", n->name, n->n_carried);
    }
    free(ours);
    free(held);
}

static int cmp_lease(const void *key, const void *elem)
{
    return strcmp(key, elem);
}

void ggi_sched_release_carried(sched *s, node *n, const char *lease)
{
    if (!n || n->n_carried == 0 || !lease)
        return;
    char(*hit)[33] = bsearch(lease, n->carried, (size_t)n->n_carried, sizeof *n->carried,
                             cmp_lease);
    if (!hit)
        return;
    memmove(hit, hit + 1, (size_t)(n->carried + n->n_carried - (hit + 1)) * sizeof *hit);
    n->n_carried--;
    n->busy--;
    s->dispatch_due = 1;
}

int ggi_sched_node_send(sched *s, node *n, const char *text, size_t len)
{
    int rc = GG_OK;
    if (n->welcome) {
        rc = ggi_sched_send_now(s, &n->id, n->welcome, n->welcome_len);
        if (rc != GG_OK)
            return rc;
        free(n->welcome);
        n->welcome = NULL;
        n->last_tx = ggi_now_ms();
        s->dispatch_due = 1; /* jobs may go to it now */
        ggi_log(&s->o->log, GG_LOG_INFO, "worker '%s': its welcome went on a later try",
                n->name);
    }
    if (text)
        rc = ggi_sched_send_now(s, &n->id, text, len);
    return rc;
}

/* Welcomes node n. At once, not after the commit: it promises nothing durable, and the
 * node's first jobs (which need no commit either) must not overtake it. A welcome the
 * transport refuses as full is kept and sent again first (ggi_sched_node_send): a worker
 * takes no job before its welcome (docs/protocol.md). */
static void send_welcome(sched *s, node *n)
{
    free(n->welcome);
    n->welcome = NULL;
    cJSON *w = ggp_build_welcome(s->o->hb_ms, n->name);
    size_t len = 0;
    char *text = w ? ggp_print(w, &len) : NULL;
    cJSON_Delete(w);
    if (!text) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "cannot welcome worker '%s': out of memory", n->name);
        return;
    }
    int rc = ggi_sched_send_now(s, &n->id, text, len);
    if (rc == GG_EBUSY) {
        ggi_log(&s->o->log, GG_LOG_WARN, "worker '%s': its welcome waits: %s", n->name,
                gg_error_last());
        n->welcome = text;
        n->welcome_len = len;
        return;
    }
    if (rc != GG_OK)
        ggi_log(&s->o->log, GG_LOG_WARN, "cannot welcome worker '%s': %s", n->name,
                gg_error_last());
    free(text);
}

void ggi_sched_on_worker_hello(sched *s, const gg_transport_msg *msg, const cJSON *b)
{
    node *n = ggi_sched_find_node(s, msg->peer, msg->peer_len);
    const char *key = ggi_zmq_hub_sender_key(&s->o->transport, s->o->hub);
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
    if (!name || !*name)
        name = "worker";
    if (n && (strcmp(n->key, key) != 0 || strncmp(n->name, name, GGP_MAX_NAME) != 0)) {
        /* The same connection identity, but another key or another node: not the peer its
         * leases were given to (an identity taken over after the holder went). Its jobs go
         * back to the queue; the newcomer starts as a node of its own. */
        ggi_sched_drop_node(s, n, key[0] && strcmp(n->key, key) != 0
                            ? "its connection identity said hello with another key"
                            : "its connection identity said hello as another node");
        n = NULL;
    }
    if (!n) {
        if (s->n_nodes >= MAX_NODES) {
            ggi_log(&s->o->log, GG_LOG_WARN, "refusing a worker: %d nodes connected",
                    s->n_nodes);
            return;
        }
        n = calloc(1, sizeof *n);
        if (!n)
            return;
        set_identity(&n->id, msg->peer, msg->peer_len);
        n->next = s->nodes;
        s->nodes = n;
        s->n_nodes++;
        atomic_store(&s->o->n_nodes, s->n_nodes);
    }
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->key, sizeof n->key, "%s", key);
    hello_instance(b, n->instance);
    adopt_leases(s, n, b);
    note_carried(s, n, b);
    long long slots = 1, queue = 0;
    ggi_json_int(b, "slots", 1, 1, 1024, &slots);
    ggi_json_int(b, "queue", 0, 0, 100000, &queue);
    n->capacity = (int)(slots + queue);
    n->slots = (int)slots;
    n->queue = (int)queue;
    s->dispatch_due = 1;
    cJSON_Delete(n->caps);
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(b, "caps");
    n->caps = caps ? cJSON_Duplicate(caps, 1) : cJSON_CreateObject();
    n->any = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n->caps, "any"));
    n->aborts = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(n->caps, "abort"));
    /* A benchmark worker says so (skip_attempts); one before 1.2 by its executor's name. */
    const cJSON *skip = cJSON_GetObjectItemCaseSensitive(n->caps, "skip_attempts");
    n->noop = skip ? cJSON_IsTrue(skip)
                   : has_string(cJSON_GetObjectItemCaseSensitive(n->caps, "executors"), "noop");
    cJSON_Delete(n->langs);
    n->langs = runtime_languages(cJSON_GetObjectItemCaseSensitive(n->caps, "runtimes"));
    n->deps = cJSON_GetObjectItemCaseSensitive(n->caps, "deps");
    /* Caps leave out what a node does not know: a missing number is 0, never NaN (whose
     * conversion to int made a node without "gpus" match no task at all). */
    long long gpus = 0;
    if (ggi_json_int(n->caps, "gpus", 0, 0, 1024, &gpus) != GG_OK)
        gpus = 0;
    n->gpus = (int)gpus;
    n->memory_mb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(n->caps, "memory_mb"));
    if (!isfinite(n->memory_mb) || n->memory_mb < 0)
        n->memory_mb = 0;
    n->last_rx = n->last_tx = n->joined_ms = ggi_now_ms();
    n->n_scores = 0;
    s->nodes_gen++;
    char *caps_text = ggi_json_print(n->caps);
    double until = 0;
    if (ggi_sched_txn(s) == GG_OK) {
        if (ggi_grid_node_seen(s->g, n->name, caps_text ? caps_text : "{}", ggi_wall_s()) ||
            ggi_grid_node_quarantined_until(s->g, n->name, &until) ||
            ggi_grid_scores_load(s->g, n->name, MAX_SCORES - 1, preload_score, n)) {
            ggi_sched_txn_note(s);
            ggi_log(&s->o->log, GG_LOG_WARN, "node '%s': %s", n->name, gg_error_last());
        }
    }
    free(caps_text);
    if (until > ggi_wall_s())
        n->quarantined_until = ggi_now_ms() + (until - ggi_wall_s()) * 1e3;
    ggi_sched_recompute_limit(s);
    ggi_log(&s->o->log, GG_LOG_INFO, "worker '%s' joined with %lld slot(s)", n->name, slots);
    cJSON *ev = ggi_sched_event_new("node.joined", NULL);
    if (ev) {
        cJSON_AddStringToObject(ev, "node", n->name);
        cJSON_AddNumberToObject(ev, "slots", (double)slots);
        ggi_sched_emit(s, 0, ev);
    }
    send_welcome(s, n);
}

void ggi_sched_learn(sched *s, node *n, const char *lang, int ok, double latency_ms)
{
    score *sc = ggi_sched_node_score(s, n, lang);
    if (!(latency_ms >= 0 && latency_ms < 1e9)) /* a worker's number, not trusted */
        latency_ms = 0;
    sc->ok = (1 - EMA) * sc->ok + EMA * (ok ? 1.0 : 0.0);
    if (ok)
        sc->lat_ms = sc->n == 0 ? latency_ms : (1 - EMA) * sc->lat_ms + EMA * latency_ms;
    sc->n++;
    sc->dirty = 1;
    if (ok) {
        n->infra_streak = 0;
        return;
    }
    /* Quarantine reroutes work; with no other usable node it would only stall every task,
     * so the last usable node stays in service (its faults still end tasks after retries). */
    int others = 0;
    double now = ggi_now_ms();
    for (node *m = s->nodes; m; m = m->next)
        others += m != n && m->quarantined_until <= now;
    if (++n->infra_streak >= GGI_QUARANTINE_STREAK && others > 0) {
        n->infra_streak = 0;
        n->quarantined_until = ggi_now_ms() + GGI_QUARANTINE_MS;
        ggi_log(&s->o->log, GG_LOG_WARN, "worker '%s' quarantined for %.0f s after %d "
                "infrastructure faults in a row", n->name, GGI_QUARANTINE_MS / 1e3,
                GGI_QUARANTINE_STREAK);
        ggi_op op = { .kind = GGI_OP_QUARANTINE, .name = ggi_strdup(n->name),
                      .ts = ggi_wall_s() + GGI_QUARANTINE_MS / 1e3 };
        ggi_sched_add_op(s, &op, op.name != NULL, "a quarantine");
        cJSON *ev = ggi_sched_event_new("node.quarantined", NULL);
        if (ev) {
            cJSON_AddStringToObject(ev, "node", n->name);
            ggi_sched_emit(s, 0, ev);
        }
    }
}

/* After a burst of peers went (their records here, and ZeroMQ's buffers of their
 * connections, all freed), the allocator is asked to give the free memory back: glibc keeps
 * it otherwise (a server that saw 3,000 connections stayed at its peak). Once the burst is
 * over (none went for a heartbeat interval), and only for many: it walks every arena. */
static void trim_after_burst(sched *s, double now)
{
    if (s->peers_gone < TRIM_PEERS || now - s->gone_at < s->o->hb_ms)
        return;
    s->peers_gone = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* Heartbeats out, and the dead dropped. */
void ggi_sched_liveness(sched *s)
{
    double now = ggi_now_ms();
    ggi_sched_probe_clients(s, now);
    trim_after_burst(s, now);
    int ready = 0, resting = 0, slots = 0, busy = 0;
    for (node *n = s->nodes, *next; n; n = next) {
        next = n->next;
        if (now - n->last_rx > 3.0 * s->o->hb_ms) {
            char why[96];
            snprintf(why, sizeof why, "missed %d heartbeats", 3);
            ggi_sched_drop_node(s, n, n->last_rx == 0 ? "is unreachable" : why);
            continue;
        }
        if (n->welcome)
            ggi_sched_node_send(s, n, NULL, 0); /* its refused welcome, again */
        *(n->quarantined_until > now ? &resting : &ready) += 1;
        slots += n->slots;
        busy += n->busy;
        if (now - n->last_tx >= s->o->hb_ms) {
            size_t hb_len;
            const char *hb = ggp_encode_bare(GGP_HB, &hb_len);
            int rc = ggi_sched_node_send(s, n, hb, hb_len);
            n->last_tx = now;
            if (rc == GG_ENOTFOUND)
                n->last_rx = 0;
        }
    }
    ggi_metrics_nodes(&s->o->metrics, ready, resting, slots, busy);
}
