/*
 * sched_clients.c - client requests: hello, submit, wait, status and cancel.
 *
 * Clients (gg_client_*, the CLI, the front door) talk to the hub over the same socket as
 * workers. Each request is answered after the commit of what it changed (queue_msg), or, for
 * wait, when the task's end is durable. Clients send no heartbeats: each is probed once an
 * interval and forgotten when the transport cannot route to it.
 *
 * Cut here because these handlers are the scheduler's API to the outside: they read and
 * write the database directly (writer idle), which nothing else on the hot path does.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void ggi_sched_on_client_hello(sched *s, const gg_transport_msg *msg, const cJSON *b)
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
    ggi_sched_queue_msg(s, &c->id, ggp_build_welcome(s->o->hb_ms, NULL));
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

void ggi_sched_on_submit(sched *s, const identity *to, client *c, const cJSON *b)
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
            ggi_sched_txn_note(s);
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

void ggi_sched_on_wait(sched *s, const identity *to, const cJSON *b)
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
            ggi_sched_reply_error(s, to, rid, GG_EBUSY,
                                  "too many waiting clients; ask again later");
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

/* The status counters' "watch_types": the event types the watchers' filters name together
 * (the events built for them), "all", or "" with no watcher. */
static void add_watch_types(const sched *s, cJSON *status)
{
    char names[256];
    ggi_event_filter_names(s->watch_union, names, sizeof names);
    cJSON_AddStringToObject(status, "watch_types", s->watch_union == GGI_EVENT_ALL ? "all"
                                                                                    : names);
}

void ggi_sched_on_status(sched *s, const identity *to, const cJSON *b)
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
        ggi_json_add_str(t, "end_cause", row.end_cause);
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
        add_watch_types(s, t);
        cJSON_AddNumberToObject(t, "clients", s->n_clients);
        cJSON_AddNumberToObject(t, "foreign", (double)atomic_load(&s->o->n_foreign));
        ggi_orq_observe_status(s->o, t);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, "demand");
        if (q && ggi_sched_demand(s, q, t) != GG_OK) {
            cJSON_Delete(m);
            ggi_sched_reply_error(s, to, rid, GG_EINVAL, gg_error_last());
            return;
        }
        cJSON *nodes = cJSON_AddArrayToObject(t, "nodes");
        double now = ggi_now_ms();
        for (node *n = s->nodes; n; n = n->next) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", n->name);
            cJSON_AddNumberToObject(x, "capacity", n->capacity);
            cJSON_AddNumberToObject(x, "slots", n->slots);
            cJSON_AddNumberToObject(x, "queue", n->queue);
            cJSON_AddNumberToObject(x, "busy", n->busy);
            cJSON_AddNumberToObject(x, "carried", n->n_carried);
            cJSON_AddBoolToObject(x, "quarantined", n->quarantined_until > now);
            cJSON_AddItemToObject(x, "caps", cJSON_Duplicate(n->caps, 1));
            cJSON_AddItemToArray(nodes, x);
        }
    }
    ggi_sched_queue_msg(s, to, m);
}

void ggi_sched_on_cancel(sched *s, const identity *to, const cJSON *b)
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
        if (a->inflight && !ggi_sched_job_remote(a)) {
            a->cancelled = 1; /* ends when its attempt returns, sooner when cut short */
            ggi_orq_interrupt_generation(s->o, a->task_id);
        }
        else /* a job on a remote node is aborted there (ggi_sched_end_active) */
            ggi_sched_end_active(s, a, GGI_ST_CANCELLED, GGI_END_CANCELLED, "cancelled");
    } else {
        ggi_task_row row;
        memset(&row, 0, sizeof row);
        rc = ggi_store_task_get(s->db, task_id, &row);
        if (rc == GG_OK && strcmp(row.status, GGI_ST_QUEUED) == 0) {
            ggi_sched_finish_task(s, row.seq, row.task_id, GGI_ST_CANCELLED, GGI_END_CANCELLED,
                                  "cancelled",
                                  row.attempts, 0, 0);
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

/* Clients send no heartbeats, and the socket does not say when a peer disconnects: each
 * client known for a heartbeat interval is sent one, and one the hub cannot route to (its
 * connection is gone: ROUTER_MANDATORY) is forgotten. Without this a client's record (and
 * its watch) stayed until MAX_CLIENTS newer ones evicted it. */
void ggi_sched_probe_clients(sched *s, double now)
{
    if (!s->clients || now < s->probe_at)
        return;
    s->probe_at = now + s->o->hb_ms;
    size_t hb_len;
    const char *hb = ggp_encode_bare(GGP_HB, &hb_len);
    for (client **p = &s->clients; *p;) {
        client *c = *p;
        if (now - c->last_probe < s->o->hb_ms) {
            p = &c->next;
            continue;
        }
        c->last_probe = now;
        if (ggi_sched_send_now(s, &c->id, hb, hb_len) == GG_ENOTFOUND) {
            drop_client(s, p);
            continue;
        }
        p = &c->next;
    }
}
