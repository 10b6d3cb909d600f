/*
 * scheduler.c - the scheduler thread: the single writer of task state and the grid's hub.
 *
 * It keeps a bounded set of active tasks in memory (the rest wait in the database, claimed
 * fairly across submitters), matches each runnable task to a worker node whose capacity and
 * labels fit, ranked by the node's learned score and load, and sends it on a lease. Results
 * are recorded exactly once: a result whose lease is not the task's current one is ignored.
 * Nodes heartbeat both ways; a silent node is dead and its jobs are requeued. Clients submit,
 * wait, ask for status, cancel and watch over the same socket.
 *
 * This file holds the loop (ggi_scheduler_main: start, the rounds of dispatch, handoff to
 * the writer, a burst of messages and liveness, then stop) and the routing of one message to
 * its handler by type and the sender's role. The rest is cut by concern, one file each, so a
 * reader finds a concern by its name (docs/architecture.md walks one task through them):
 *
 *   sched_commit.c    group commit with the writer thread; what waits for a commit
 *   sched_events.c    events for the host and the watching clients
 *   sched_tasks.c     the active set: claimed tasks in memory, their ends
 *   sched_dispatch.c  leases, the jobs messages, matching tasks to nodes
 *   sched_results.c   a result under its lease: recorded, retried or ending the task
 *   sched_monitor.c   the Task Monitor: feedback, stuck loops, budgets, decisions
 *   sched_nodes.c     worker nodes: hello, what they can run, scores, quarantine, liveness
 *   sched.h           the state they share and the functions that cross files
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../retrieval/retriever_none.h"
#include "sched.h"

client *ggi_sched_find_client(sched *s, const void *id, size_t len)
{
    for (client *c = s->clients; c; c = c->next)
        if (same_identity(&c->id, id, len))
            return c;
    return NULL;
}

/* Forgets a client (it is gone, or evicted): its record and its watch. */
static void drop_client(sched *s, client **link)
{
    client *gone = *link;
    *link = gone->next;
    int watched = gone->watching;
    free(gone);
    s->n_clients--;
    s->peers_gone++;
    s->gone_at = ggi_now_ms();
    if (watched)
        ggi_sched_count_watchers(s);
}

static void on_client_hello(sched *s, const gg_transport_msg *msg, const cJSON *b)
{
    client *c = ggi_sched_find_client(s, msg->peer, msg->peer_len);
    if (!c) {
        if (s->n_clients >= MAX_CLIENTS) {
            /* Evict the least recently seen client. */
            client **oldest = &s->clients;
            for (client **p = &s->clients; *p; p = &(*p)->next)
                if ((*p)->last_seen < (*oldest)->last_seen)
                    oldest = p;
            drop_client(s, oldest);
        }
        c = calloc(1, sizeof *c);
        if (!c)
            return;
        set_identity(&c->id, msg->peer, msg->peer_len);
        c->next = s->clients;
        s->clients = c;
        s->n_clients++;
    }
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
    snprintf(c->name, sizeof c->name, "%s", name && *name ? name : "anonymous");
    c->last_seen = c->last_probe = ggi_now_ms();
    cJSON *w = ggp_new(GGP_WELCOME);
    if (w) {
        cJSON_AddNumberToObject(w, "version", GGP_VERSION);
        cJSON_AddNumberToObject(w, "hb_ms", s->o->hb_ms);
    }
    ggi_sched_queue_msg(s, &c->id, w);
}

static void on_hello(sched *s, const gg_transport_msg *msg, const cJSON *b)
{
    ggi_sched_sync_point(s); /* reads and writes the database itself */
    int v1 = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "versions"))
    {
        if (cJSON_IsNumber(e) && e->valuedouble == GGP_VERSION)
            v1 = 1;
    }
    identity to;
    set_identity(&to, msg->peer, msg->peer_len);
    if (!v1) {
        atomic_fetch_add(&s->o->n_dropped, 1);
        ggi_log(&s->o->log, GG_LOG_WARN, "refusing a hello: no common protocol version "
                "(this orchestrator speaks ggp/%d)", GGP_VERSION);
        ggi_sched_reply_error(s, &to, 0, GG_EVERSION, "no common protocol version (ggp/1 is spoken here)");
        return;
    }
    const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "role"));
    if (strcmp(role, "worker") == 0)
        ggi_sched_on_worker_hello(s, msg, b);
    else
        on_client_hello(s, msg, b);
}

static void reset_peer(sched *s, const gg_transport_msg *msg, const char *why)
{
    identity to;
    set_identity(&to, msg->peer, msg->peer_len);
    cJSON *m = ggp_new(GGP_RESET);
    if (m)
        cJSON_AddStringToObject(m, "reason", why);
    ggi_sched_queue_msg(s, &to, m);
}

/*
 * Whether a workspace a remote submitter sent can be built by workers without reading their
 * own files on its behalf: resolved (it has "commit"), and a repository given by a path or a
 * file:// URL, or a directory, carries its pack (gg_client_submit packs them). A worker
 * fetches only network URLs itself.
 */
static int remote_workspace_ok(const ggi_task *t)
{
    const char *id = t->task_id ? t->task_id : "?";
    const cJSON *ws = t->workspace;
    if (!cJSON_GetObjectItemCaseSensitive(ws, "commit"))
        return ggi_error(GG_EINVAL, "task '%s': field 'workspace.commit' is missing: a "
                         "workspace is resolved by its submitter (gg_client_submit does that)",
                         id);
    if (cJSON_GetObjectItemCaseSensitive(ws, "pack") ||
        cJSON_GetObjectItemCaseSensitive(ws, "files"))
        return GG_OK;
    const char *repo = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ws, "repo"));
    /* git's scp-like form, user@host:path, has a ':' before any '/' */
    const char *colon = repo ? strchr(repo, ':') : NULL, *slash = repo ? strchr(repo, '/') : NULL;
    int scp = colon && colon != repo && (!slash || colon < slash) && repo[0] != '.' &&
              !strstr(repo, "://");
    int network = repo && (!strncmp(repo, "https://", 8) || !strncmp(repo, "http://", 7) ||
                           !strncmp(repo, "ssh://", 6) || !strncmp(repo, "git://", 6) || scp);
    if (network)
        return GG_OK;
    return ggi_error(GG_EINVAL, "task '%s': field 'workspace.%s' ('%.200s') is on the "
                     "submitter's machine and the task carries no 'workspace.pack': workers "
                     "fetch only network URLs (gg_client_submit packs a local repository or "
                     "directory)", id, repo ? "repo" : "dir",
                     repo ? repo
                          : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ws, "dir")));
}

static void on_submit(sched *s, const identity *to, client *c, const cJSON *b)
{
    ggi_sched_sync_point(s); /* reads and writes the database itself */
    long long rid = 0;
    ggi_json_int(b, "rid", 1, 0, (1LL << 53), &rid);
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(b, "tasks");
    int n = cJSON_GetArraySize(tasks);
    long long queued = atomic_load(&s->o->queued);
    if (s->o->max_queued && queued + n > (long long)s->o->max_queued) {
        atomic_fetch_add(&s->o->n_busy, 1);
        ggi_log(&s->o->log, GG_LOG_INFO, "busy: %lld task(s) queued, the limit is %u; refusing "
                "%d from '%s'", queued, s->o->max_queued, n, c->name);
        cJSON *m = ggi_sched_reply_new(rid, 0);
        if (m) {
            cJSON_AddNumberToObject(m, "code", GG_EBUSY);
            cJSON_AddStringToObject(m, "message", "the orchestrator's queue is full; try again "
                                    "later");
            cJSON_AddNumberToObject(m, "retry_ms", 500);
        }
        ggi_sched_queue_msg(s, to, m);
        return;
    }
    cJSON *m = ggi_sched_reply_new(rid, 1);
    cJSON *ids = m ? cJSON_AddArrayToObject(m, "ids") : NULL;
    cJSON *errors = m ? cJSON_AddArrayToObject(m, "errors") : NULL;
    if (!ids || !errors) {
        cJSON_Delete(m);
        return;
    }
    int fresh = 0, i = 0;
    const cJSON *tj;
    cJSON_ArrayForEach(tj, tasks)
    {
        ggi_task *t = NULL;
        char *spec = NULL, *needs = NULL;
        char hash[17];
        int64_t seq = 0;
        int existing = 0;
        int rc = ggi_task_from_json(tj, &t);
        /* The orchestrator never reads a path on a remote submitter's behalf: the
         * submitter's client resolved the workspace (packed it, pinned its commit). */
        if (!rc && t->workspace)
            rc = remote_workspace_ok(t);
        if (!rc)
            rc = ggi_orq_prepare_task(t, &spec, hash);
        if (!rc)
            rc = ggi_task_needs(t, &needs);
        if (!rc)
            rc = ggi_sched_txn(s);
        if (!rc)
            rc = ggi_store_task_insert(s->db,
                                       &(ggi_task_new){ .task_id = t->task_id,
                                                        .spec_json = spec, .spec_hash = hash,
                                                        .priority = t->priority,
                                                        .submitter = c->name,
                                                        .language = t->language,
                                                        .needs = needs, .now = ggi_wall_s() },
                                       &seq, &existing);
        if (rc) {
            cJSON_AddItemToArray(ids, cJSON_CreateNull());
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", i);
            cJSON_AddNumberToObject(e, "code", rc);
            cJSON_AddStringToObject(e, "message", gg_error_last());
            cJSON_AddItemToArray(errors, e);
        } else {
            cJSON_AddItemToArray(ids, cJSON_CreateString(t->task_id));
            fresh += !existing;
        }
        free(spec);
        free(needs);
        ggi_task_free(t);
        i++;
    }
    if (fresh) {
        atomic_fetch_add(&s->o->queued, fresh);
        s->may_have_queued = 1;
        s->submit_gen++;
    }
    ggi_sched_queue_msg(s, to, m);
}

static void on_wait(sched *s, const identity *to, const cJSON *b)
{
    ggi_sched_sync_point(s); /* reads and writes the database itself */
    long long rid = 0;
    ggi_json_int(b, "rid", 1, 0, (1LL << 53), &rid);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
    ggi_task_row row;
    memset(&row, 0, sizeof row);
    int rc = ggi_store_task_get(s->db, id, &row);
    if (rc != GG_OK) {
        ggi_sched_reply_error(s, to, rid, rc, gg_error_last());
        return;
    }
    if (row.result && strcmp(row.status, GGI_ST_QUEUED) != 0 &&
        strcmp(row.status, GGI_ST_RUNNING) != 0) {
        cJSON *m = ggi_sched_reply_new(rid, 1);
        cJSON *res = cJSON_Parse(row.result);
        if (m && res)
            cJSON_AddItemToObject(m, "result", res);
        else
            cJSON_Delete(res);
        ggi_sched_queue_msg(s, to, m);
    } else {
        /* One waiter per peer and task: a repeated wait replaces the earlier one. */
        int k;
        for (k = 0; k < s->n_waiters; k++)
            if (same_identity(&s->waiters[k].to, to->id, to->len) &&
                strcmp(s->waiters[k].task_id, id) == 0)
                break;
        if (k < s->n_waiters) {
            s->waiters[k].rid = rid;
        } else if (s->n_waiters >= MAX_WAITERS) {
            ggi_sched_reply_error(s, to, rid, GG_EBUSY, "too many waiting clients; ask again later");
        } else {
            if (s->n_waiters == s->cap_waiters) {
                int ncap = s->cap_waiters ? s->cap_waiters * 2 : 16;
                waiter *p = realloc(s->waiters, (size_t)ncap * sizeof *p);
                if (!p) {
                    ggi_sched_reply_error(s, to, rid, GG_ENOMEM, "out of memory");
                    ggi_store_task_row_free(&row);
                    return;
                }
                s->waiters = p;
                s->cap_waiters = ncap;
            }
            waiter *w = &s->waiters[s->n_waiters];
            w->to = *to;
            w->rid = rid;
            w->task_id = ggi_strdup(id);
            if (w->task_id)
                s->n_waiters++;
        }
    }
    ggi_store_task_row_free(&row);
}

static void on_status(sched *s, const identity *to, const cJSON *b)
{
    ggi_sched_sync_point(s); /* reads and writes the database itself */
    long long rid = 0;
    ggi_json_int(b, "rid", 1, 0, (1LL << 53), &rid);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
    cJSON *m = ggi_sched_reply_new(rid, 1);
    if (!m)
        return;
    if (id) {
        ggi_task_row row;
        memset(&row, 0, sizeof row);
        int rc = ggi_store_task_get(s->db, id, &row);
        if (rc != GG_OK) {
            cJSON_Delete(m);
            ggi_sched_reply_error(s, to, rid, rc, gg_error_last());
            return;
        }
        cJSON *t = cJSON_AddObjectToObject(m, "status");
        cJSON_AddStringToObject(t, "task_id", row.task_id);
        cJSON_AddStringToObject(t, "status", row.status);
        cJSON_AddNumberToObject(t, "attempts", row.attempts);
        cJSON_AddNumberToObject(t, "priority", row.priority);
        ggi_json_add_str(t, "reason", row.reason);
        ggi_store_task_row_free(&row);
    } else {
        ggi_store_counts k;
        memset(&k, 0, sizeof k);
        ggi_store_counts_get(s->db, &k);
        cJSON *t = cJSON_AddObjectToObject(m, "status");
        cJSON_AddNumberToObject(t, "queued", (double)k.queued);
        cJSON_AddNumberToObject(t, "running", (double)k.running);
        cJSON_AddNumberToObject(t, "passed", (double)k.passed);
        cJSON_AddNumberToObject(t, "failed", (double)k.failed);
        cJSON_AddNumberToObject(t, "error", (double)k.error);
        cJSON_AddNumberToObject(t, "cancelled", (double)k.cancelled);
        cJSON_AddNumberToObject(t, "attempts", (double)k.attempts);
        cJSON_AddNumberToObject(t, "dropped", (double)atomic_load(&s->o->n_dropped));
        cJSON_AddNumberToObject(t, "stale", (double)atomic_load(&s->o->n_stale));
        cJSON_AddNumberToObject(t, "busy", (double)atomic_load(&s->o->n_busy));
        cJSON_AddNumberToObject(t, "requeued", (double)atomic_load(&s->o->n_requeued));
        cJSON_AddNumberToObject(t, "watchers", s->n_watching);
        cJSON_AddNumberToObject(t, "clients", s->n_clients);
        cJSON_AddNumberToObject(t, "foreign", (double)atomic_load(&s->o->n_foreign));
        ggi_orq_observe_status(s->o, t);
        cJSON *nodes = cJSON_AddArrayToObject(t, "nodes");
        double now = ggi_now_ms();
        for (node *n = s->nodes; n; n = n->next) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", n->name);
            cJSON_AddNumberToObject(x, "capacity", n->capacity);
            cJSON_AddNumberToObject(x, "slots", n->slots);
            cJSON_AddNumberToObject(x, "queue", n->queue);
            cJSON_AddNumberToObject(x, "busy", n->busy);
            cJSON_AddBoolToObject(x, "quarantined", n->quarantined_until > now);
            cJSON_AddItemToObject(x, "caps", cJSON_Duplicate(n->caps, 1));
            cJSON_AddItemToArray(nodes, x);
        }
    }
    ggi_sched_queue_msg(s, to, m);
}

static void on_cancel(sched *s, const identity *to, const cJSON *b)
{
    ggi_sched_sync_point(s); /* reads and writes the database itself */
    long long rid = -1, seq = 0;
    ggi_json_int(b, "rid", 0, 0, (1LL << 53), &rid);
    ggi_json_int(b, "seq", 0, 1, (1LL << 53), &seq);
    const char *task_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
    active *a = seq ? ggi_sched_find_active(s, seq) : NULL;
    for (active *x = s->tasks; !a && x; x = x->next)
        if (strcmp(x->task_id, task_id) == 0)
            a = x;
    int rc = GG_OK;
    if (a) {
        if (a->inflight)
            a->cancelled = 1; /* ends when its attempt returns */
        else
            ggi_sched_end_active(s, a, GGI_ST_CANCELLED, "cancelled");
    } else {
        ggi_task_row row;
        memset(&row, 0, sizeof row);
        rc = ggi_store_task_get(s->db, task_id, &row);
        if (rc == GG_OK && strcmp(row.status, GGI_ST_QUEUED) == 0) {
            ggi_sched_finish_task(s, row.seq, row.task_id, GGI_ST_CANCELLED, "cancelled", row.attempts, 0,
                        0);
        } else if (rc == GG_OK && strcmp(row.status, GGI_ST_RUNNING) != 0) {
            rc = ggi_error(GG_ESTATE, "task '%s' has already ended (%s)", task_id, row.status);
        }
        ggi_store_task_row_free(&row);
    }
    if (rid < 0)
        return;
    if (rc)
        ggi_sched_reply_error(s, to, rid, rc, gg_error_last());
    else
        ggi_sched_queue_msg(s, to, ggi_sched_reply_new(rid, 1));
}

/* The role the transport authenticated for the sender: "" when authentication is off,
 * "local" for a peer in this process. */
static const char *sender_role(const gg_transport_msg *msg)
{
    return msg->role;
}

static int role_allows(const char *role, ggp_type t)
{
    if (!role[0] || strcmp(role, "admin") == 0 || strcmp(role, "local") == 0)
        return 1;
    int cls = ggp_type_class(t);
    if (strcmp(role, "worker") == 0)
        return (cls & GGP_CLASS_WORKER) != 0;
    if (strcmp(role, "submitter") == 0)
        return (cls & GGP_CLASS_CLIENT) != 0;
    return 0;
}

/* The rid of a client request the hub will not serve (refused by role, or malformed), read
 * from its text when it has one; -1 when there is none to answer. */
static long long request_rid(const gg_transport_msg *msg, const cJSON *body)
{
    cJSON *parsed = NULL;
    if (!body && msg->len <= GGP_MAX_MESSAGE) {
        parsed = cJSON_ParseWithLength(msg->data, msg->len);
        body = parsed;
    }
    long long rid = -1;
    if (ggi_json_int(body, "rid", 1, 0, (1LL << 53), &rid) != GG_OK)
        rid = -1;
    cJSON_Delete(parsed);
    return rid;
}

/* What sending a message of type t asks for, in words. */
static const char *what_type_does(ggp_type t)
{
    switch (t) {
    case GGP_SUBMIT: return "submit";
    case GGP_WAIT: return "wait for a task";
    case GGP_STATUS: return "ask for status";
    case GGP_CANCEL: return "cancel";
    case GGP_WATCH: return "watch events";
    case GGP_RESULTS: return "send results";
    default: return ggp_type_name(t);
    }
}

/* Tells a peer why the hub will not serve its request (nothing for messages without rid,
 * except a hello, answered with rid 0 as a refused version is). */
static void refuse_request(sched *s, const gg_transport_msg *msg, ggp_type t, const cJSON *body,
                           int code, const char *why)
{
    long long rid = t == GGP_HELLO ? 0 : request_rid(msg, body);
    if (rid < 0)
        return;
    identity to;
    set_identity(&to, msg->peer, msg->peer_len);
    ggi_sched_reply_error(s, &to, rid, code, why);
}

static void on_message(sched *s, const gg_transport_msg *msg)
{
    gg_orchestrator_t *o = s->o;
    ggp_msg m = { GGP_UNKNOWN, NULL };
    /* Results as workers write them are read without a tree for their envelope; anything
     * else (or a results message written otherwise) goes through the full decoder. */
    ggp_result *fast = NULL;
    int n_fast = 0;
    if (ggp_results_scan(msg->data, msg->len, &fast, &n_fast) == GG_OK)
        m.type = GGP_RESULTS;
    else if (ggp_decode(msg->data, msg->len, &m) != GG_OK) {
        atomic_fetch_add(&o->n_dropped, 1);
        char why[512];
        snprintf(why, sizeof why, "bad request: %s", gg_error_last());
        ggi_log(&o->log, GG_LOG_WARN, "dropping a message of %zu bytes: %s", msg->len,
                gg_error_last());
        /* A client's request with a rid hears why (a worker's message has none). */
        refuse_request(s, msg, GGP_UNKNOWN, NULL, GG_EINVAL, why);
        return;
    }
    const char *role = sender_role(msg);
    if (!role_allows(role, m.type) || !(ggp_type_class(m.type) & ~GGP_CLASS_HUB) ||
        (m.type == GGP_HELLO && strcmp(role, "submitter") == 0 &&
         strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m.body, "role")), "worker") == 0) ||
        (m.type == GGP_HELLO && strcmp(role, "worker") == 0 &&
         strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m.body, "role")), "client") == 0)) {
        atomic_fetch_add(&o->n_dropped, 1);
        ggi_log(&o->log, GG_LOG_WARN, "dropping a '%s' message: not allowed for role '%s'",
                ggp_type_name(m.type), role[0] ? role : "-");
        char why[160];
        if (m.type == GGP_HELLO)
            snprintf(why, sizeof why, "forbidden: role %s may not say hello as a %s",
                     role[0] ? role : "-",
                     cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m.body, "role")));
        else
            snprintf(why, sizeof why, "forbidden: role %s may not %s", role[0] ? role : "-",
                     what_type_does(m.type));
        if (ggp_type_class(m.type) & ~GGP_CLASS_HUB)
            refuse_request(s, msg, m.type, m.body, GG_EUNSUPPORTED, why);
        ggp_msg_free(&m);
        ggp_results_free(fast, n_fast);
        return;
    }
    identity from;
    set_identity(&from, msg->peer, msg->peer_len);
    node *n = ggi_sched_find_node(s, msg->peer, msg->peer_len);
    if (n)
        n->last_rx = ggi_now_ms();
    client *c = NULL;
    switch (m.type) {
    case GGP_HELLO:
        on_hello(s, msg, m.body);
        break;
    case GGP_HB:
        if (!n && !ggi_sched_find_client(s, msg->peer, msg->peer_len))
            reset_peer(s, msg, "unknown peer: say hello");
        break;
    case GGP_RESULTS: {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(m.body, "results");
        if (!n) {
            /* Nothing from a peer that is not a worker here is believed. */
            ggi_sched_foreign_results(s, n_fast + cJSON_GetArraySize(list), "a peer that is not a "
                            "connected worker", "it never said hello as a worker");
            reset_peer(s, msg, "unknown worker: say hello");
            break;
        }
        const char *key = ggi_zmq_hub_sender_key(&o->transport, o->hub);
        for (int i = 0; i < n_fast; i++)
            ggi_sched_on_result(s, n, key, fast[i].seq, fast[i].n, fast[i].lease, fast[i].record,
                      fast[i].text, fast[i].len);
        cJSON *r;
        cJSON_ArrayForEach(r, list)
        {
            ggi_sched_on_result(s, n, key,
                      (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "seq")),
                      (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "n")),
                      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "lease")),
                      cJSON_GetObjectItemCaseSensitive(r, "record"), NULL, 0);
        }
        break;
    }
    case GGP_BYE:
        if (n)
            ggi_sched_drop_node(s, n, "left");
        break;
    case GGP_WAKE:
        atomic_store(&o->wake_pending, 0);
        s->may_have_queued = 1;
        s->submit_gen++;
        break;
    case GGP_SUBMIT:
        c = ggi_sched_find_client(s, msg->peer, msg->peer_len);
        if (!c) {
            reset_peer(s, msg, "unknown client: say hello");
            break;
        }
        c->last_seen = ggi_now_ms();
        on_submit(s, &from, c, m.body);
        break;
    case GGP_WATCH:
        c = ggi_sched_find_client(s, msg->peer, msg->peer_len);
        if (!c) {
            reset_peer(s, msg, "unknown client: say hello");
            break;
        }
        c->last_seen = ggi_now_ms();
        ggi_sched_on_watch(s, &from, c, m.body);
        break;
    case GGP_WAIT:
        on_wait(s, &from, m.body);
        break;
    case GGP_STATUS:
        on_status(s, &from, m.body);
        break;
    case GGP_CANCEL:
        on_cancel(s, &from, m.body);
        break;
    default:
        atomic_fetch_add(&o->n_dropped, 1);
        ggi_log(&o->log, GG_LOG_WARN, "dropping a '%s' message: not for the orchestrator",
                ggp_type_name(m.type));
    }
    ggp_msg_free(&m);
    ggp_results_free(fast, n_fast);
}

/* Clients send no heartbeats, and the socket does not say when a peer disconnects: each
 * client known for a heartbeat interval is sent one, and one the hub cannot route to (its
 * connection is gone: ROUTER_MANDATORY) is forgotten. Without this a client's record (and
 * its watch) stayed until MAX_CLIENTS newer ones evicted it. */
void ggi_sched_probe_clients(sched *s, double now)
{
    if (!s->clients || now < s->probe_at)
        return;
    s->probe_at = now + s->o->hb_ms;
    static const char hb[] = "{\"ggp\":1,\"t\":\"hb\"}";
    for (client **p = &s->clients; *p;) {
        client *c = *p;
        if (now - c->last_probe < s->o->hb_ms) {
            p = &c->next;
            continue;
        }
        c->last_probe = now;
        if (ggi_sched_send_now(s, &c->id, hb, sizeof hb - 1) == GG_ENOTFOUND) {
            drop_client(s, p);
            continue;
        }
        p = &c->next;
    }
}

static int next_timeout(sched *s)
{
    double now = ggi_now_ms(), t = s->nodes ? s->o->hb_ms / 4 : POLL_MS;
    if (t > POLL_MS)
        t = POLL_MS;
    if (!s->backoff)
        return (int)t;
    /* Some task waits out a backoff: wake when the first one may run. */
    int waiting = 0;
    for (active *a = s->tasks; a; a = a->next) {
        if (a->inflight || a->cancelled || a->not_before_ms <= now)
            continue;
        waiting = 1;
        if (a->not_before_ms - now < t)
            t = a->not_before_ms - now;
    }
    s->backoff = waiting;
    return t < 0 ? 0 : (int)t + 1;
}

/* On shutdown: unfinished tasks go back to the queue, to resume on the next start. */
static void requeue_all(sched *s)
{
    ggi_sched_sync_point(s);
    if (!s->tasks)
        return;
    if (ggi_sched_txn(s) == GG_OK) {
        for (active *a = s->tasks; a; a = a->next)
            ggi_store_task_requeue(s->db, a->seq, a->started_wall);
        if (ggi_store_commit(s->db) != GG_OK) {
            ggi_log(&s->o->log, GG_LOG_ERROR, "commit failed: %s", gg_error_last());
            ggi_store_rollback(s->db);
        }
    }
    while (s->tasks)
        ggi_sched_remove_active(s, s->tasks);
}

/* The run's token budget from GRYPHGEN_MAX_TOKENS; 0 (no limit) when unset, empty or
 * not a positive integer (then with a warning). */
static long long run_token_budget(const ggi_logger *log)
{
    const char *v = getenv("GRYPHGEN_MAX_TOKENS");
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > GGI_TASK_MAX_TOKENS) {
        ggi_log(log, GG_LOG_WARN, "ignoring GRYPHGEN_MAX_TOKENS='%.32s': not an integer from "
                "0 to %lld", v, (long long)GGI_TASK_MAX_TOKENS);
        return 0;
    }
    return n;
}

void *ggi_scheduler_main(void *arg)
{
    gg_orchestrator_t *o = arg;
    sched s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.db = o->sched_store;
    for (int k = 0; k < 3; k++)
        s.pend[k].events = cJSON_CreateArray();
    s.may_have_queued = 1;
    ggi_sched_recompute_limit(&s);
    if (!s.pend[0].events || !s.pend[1].events || !s.pend[2].events ||
        ggi_grid_db_new(&s.g, s.db) != GG_OK ||
        ggi_writer_start(s.db, s.g, &o->log, &s.writer) != GG_OK) {
        ggi_log(&o->log, GG_LOG_ERROR, "scheduler: %s", gg_error_last());
        ggi_grid_db_free(&s.g);
        for (int k = 0; k < 3; k++)
            cJSON_Delete(s.pend[k].events);
        return NULL;
    }
    ggi_writer_watch_stop(s.writer, &o->stopping);
    ggi_writer_observe(s.writer, &o->metrics.db_write);
    /* The "none" retriever learns nothing: no learner, and no result is read back for it. */
    if (!ggi_retriever_is_none(o->retriever) &&
        ggi_learner_new(o->retriever, &o->log, GGI_LEARNER_QUEUE_MAX, &s.learner) != GG_OK)
        ggi_log(&o->log, GG_LOG_WARN, "scheduler: no retrieval learning: %s", gg_error_last());
    s.max_tokens = run_token_budget(&o->log);
    /* The run goes on from what the recorded attempts already spent (a resumed run). */
    if (s.max_tokens > 0 && ggi_store_tokens_spent(s.db, &s.tokens) != GG_OK)
        ggi_log(&o->log, GG_LOG_WARN, "cannot sum the tokens spent so far: %s",
                gg_error_last());
    int64_t unfinished = 0;
    if (ggi_grid_unfinished(s.g, &unfinished) == GG_OK)
        atomic_store(&o->queued, unfinished);
    while (!atomic_load(&o->stopping) && !s.dead) {
        /* The writer wrote the last batch meanwhile: what waited for it goes now, and the
         * tasks it claimed are dispatched. Jobs need no commit first: a result is recorded
         * only under the lease its job carries, so a job whose claim a crash undid comes
         * back stale. */
        ggi_sched_dispatch(&s); /* from the tasks claimed ahead, before waiting for the writer */
        ggi_sched_send_batches(&s);
        /* When the writer is idle, what the bursts since its last batch changed goes to it,
         * and the batch it wrote is completed while it works. While it writes, this thread
         * does not wait for it: the next bursts are handled into the same batch (a slow
         * commit makes the next batch bigger, not the scheduler idle), and the writer is
         * looked at again at least every millisecond. */
        ggi_batch *done = NULL;
        int writing = !ggi_writer_poll(s.writer, &done);
        if (!writing) {
            writing = ggi_sched_handoff(&s, done); /* busy again with a new batch, or still idle */
            if (s.dead)
                break;
            ggi_sched_dispatch(&s);
            ggi_sched_send_batches(&s);
        }
        gg_transport_msg msg;
        int timeout = next_timeout(&s);
        if (writing && timeout > WRITER_POLL_MS)
            timeout = WRITER_POLL_MS;
        int rc = o->transport.vt.hub_recv(o->hub, timeout, &msg);
        /* Group commit: the messages waiting (up to BURST) go into one transaction. A message
         * is received only when it will be handled in this round (the one after the BURST-th
         * used to be received and never handled). */
        for (int handled = 0; rc == GG_OK;) {
            on_message(&s, &msg);
            if (++handled >= BURST)
                break;
            rc = o->transport.vt.hub_recv(o->hub, 0, &msg);
        }
        if (rc != GG_OK && rc != GG_ETIMEDOUT) {
            ggi_log(&o->log, GG_LOG_ERROR, "scheduler: %s", gg_error_last());
            ggi_sleep_ms(POLL_MS);
        }
        ggi_sched_liveness(&s);
    }
    /* The last writes, and those that completing them made (a claimed task that cannot be
     * read ends at once). */
    for (int i = 0; i < 3 && !s.dead; i++) {
        ggi_sched_handoff(&s, ggi_writer_wait(s.writer));
        ggi_sched_sync_point(&s);
    }
    if (!s.dead)
        requeue_all(&s);
    while (s.tasks) /* left running when dead: the next start requeues them (recover) */
        ggi_sched_remove_active(&s, s.tasks);
    ggi_writer_stop(&s.writer);
    while (s.nodes) {
        node *n = s.nodes;
        s.nodes = n->next;
        ggi_sched_node_free(n);
    }
    while (s.clients) {
        client *c = s.clients;
        s.clients = c->next;
        free(c);
    }
    for (int i = 0; i < s.n_waiters; i++)
        free(s.waiters[i].task_id);
    free(s.waiters);
    for (int i = 0; i < s.n_subs; i++)
        free(s.subs[i].name);
    free(s.subs);
    for (int i = 0; i < s.later.n_ended; i++)
        free(s.later.ended[i].task_id);
    free(s.later.ended);
    for (int i = 0; i < s.n_later_rows; i++)
        ggi_claimed_release(&s.later_rows[i]);
    free(s.later_rows);
    for (int k = 0; k < 3; k++) {
        pending *pd = &s.pend[k];
        for (int i = 0; i < pd->n_out; i++)
            free(pd->out[i].text);
        free(pd->out);
        for (int i = 0; i < pd->n_ended; i++)
            free(pd->ended[i].task_id);
        free(pd->ended);
        cJSON_Delete(pd->events);
        ggi_batch_free(&s.batch[k]);
    }
    free(s.by_seq);
    free(s.run);
    free(s.run_head);
    free(s.run_end);
    ggi_buf_free(&s.ev_buf);
    ggi_grid_db_free(&s.g);
    ggi_learner_destroy(&s.learner, GGI_LEARNER_DRAIN_MS);
    return NULL;
}
