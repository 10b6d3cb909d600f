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
 *   sched_clients.c   client requests: hello, submit, wait, status, cancel
 *   sched.h           the state they share and the functions that cross files
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../retrieval/retriever_none.h"
#include "ha.h"
#include "sched.h"

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
        ggi_sched_reply_error(s, &to, 0, GG_EVERSION,
                              "no common protocol version (ggp/1 is spoken here)");
        return;
    }
    const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "role"));
    if (strcmp(role, "worker") == 0)
        ggi_sched_on_worker_hello(s, msg, b);
    else
        ggi_sched_on_client_hello(s, msg, b);
}

static void reset_peer(sched *s, const gg_transport_msg *msg, const char *why)
{
    identity to;
    set_identity(&to, msg->peer, msg->peer_len);
    ggi_sched_queue_msg(s, &to, ggp_build_reset(why));
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

/* The sender's role (CURVE) may send this type, and say hello as what it says it is; a
 * refused message is counted, logged and, when it is a request, answered. */
static int sender_may(sched *s, const gg_transport_msg *msg, const ggp_msg *m)
{
    gg_orchestrator_t *o = s->o;
    const char *role = sender_role(msg);
    const char *said = m->type == GGP_HELLO
                           ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->body, "role"))
                           : NULL;
    if (role_allows(role, m->type) && (ggp_type_class(m->type) & ~GGP_CLASS_HUB) &&
        !(said && strcmp(role, "submitter") == 0 && strcmp(said, "worker") == 0) &&
        !(said && strcmp(role, "worker") == 0 && strcmp(said, "client") == 0))
        return 1;
    atomic_fetch_add(&o->n_dropped, 1);
    ggi_log(&o->log, GG_LOG_WARN, "dropping a '%s' message: not allowed for role '%s'",
            ggp_type_name(m->type), role[0] ? role : "-");
    char why[160];
    if (m->type == GGP_HELLO)
        snprintf(why, sizeof why, "forbidden: role %s may not say hello as a %s",
                 role[0] ? role : "-", said);
    else
        snprintf(why, sizeof why, "forbidden: role %s may not %s", role[0] ? role : "-",
                 what_type_does(m->type));
    if (ggp_type_class(m->type) & ~GGP_CLASS_HUB)
        refuse_request(s, msg, m->type, m->body, GG_EUNSUPPORTED, why);
    return 0;
}

/* A worker's results: those read fast (fast[0..n_fast)) and those of the decoded body. */
static void on_results(sched *s, node *n, const gg_transport_msg *msg, const cJSON *body,
                       const ggp_result *fast, int n_fast)
{
    gg_orchestrator_t *o = s->o;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "results");
    if (!n) {
        /* Nothing from a peer that is not a worker here is believed. */
        ggi_sched_foreign_results(s, n_fast + cJSON_GetArraySize(list), "a peer that is not a "
                        "connected worker", "it never said hello as a worker");
        reset_peer(s, msg, "unknown worker: say hello");
        return;
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
}

static void on_message(sched *s, const gg_transport_msg *msg)
{
    gg_orchestrator_t *o = s->o;
    if (o->ha && ggi_ha_is_frame(msg->data, msg->len)) {
        ggi_ha_on_hub_frame(o->ha, msg); /* the standby's heartbeats */
        return;
    }
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
    if (!sender_may(s, msg, &m)) {
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
    case GGP_RESULTS:
        on_results(s, n, msg, m.body, fast, n_fast);
        break;
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
        ggi_sched_on_submit(s, &from, c, m.body);
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
        ggi_sched_on_wait(s, &from, m.body);
        break;
    case GGP_STATUS:
        ggi_sched_on_status(s, &from, m.body);
        break;
    case GGP_CANCEL:
        ggi_sched_on_cancel(s, &from, m.body);
        break;
    default:
        atomic_fetch_add(&o->n_dropped, 1);
        ggi_log(&o->log, GG_LOG_WARN, "dropping a '%s' message: not for the orchestrator",
                ggp_type_name(m.type));
    }
    ggp_msg_free(&m);
    ggp_results_free(fast, n_fast);
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
        s->txn_open = 0;
    }
    while (s->tasks)
        ggi_sched_remove_active(s, s->tasks);
}

/* The run's token budget: the option max_tokens when the host set it (negative: none),
 * else GRYPHGEN_MAX_TOKENS; 0 (no limit) when unset, empty or not a positive integer (then
 * with a warning). */
static long long run_token_budget(const gg_orchestrator_t *o, const ggi_logger *log)
{
    if (o->max_tokens)
        return o->max_tokens > 0 ? o->max_tokens : 0;
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

/* One of a standby pair stands by until it becomes active (ha.c), then starts as after a
 * restart: its tasks that the other server ran are requeued. 1: go on (*first: the hello
 * that made it active, or NULL), 0: stopping or failed. */
static int stand_by(gg_orchestrator_t *o, gg_transport_msg **first)
{
    *first = NULL;
    if (!o->ha)
        return 1;
    if (!ggi_ha_passive_loop(o->ha, first))
        return 0;
    if (ggi_ha_become_active(o->ha) != GG_OK) {
        ggi_orq_fail(o, 0, gg_error_last());
        ggi_ha_free_msg(*first);
        *first = NULL;
        return 0;
    }
    return 1;
}

/* The scheduler's state for o: its batches, the grid's statements, the writer thread, the
 * learner and the run's budget; GG_OK, or an error logged and nothing left. */
static int sched_open(gg_orchestrator_t *o, sched *s)
{
    s->o = o;
    s->db = o->sched_store;
    for (int k = 0; k < 3; k++)
        s->pend[k].events = cJSON_CreateArray();
    s->may_have_queued = 1;
    ggi_sched_recompute_limit(s);
    if (!s->pend[0].events || !s->pend[1].events || !s->pend[2].events ||
        ggi_grid_db_new(&s->g, s->db) != GG_OK ||
        ggi_writer_start(s->db, s->g, &o->log, &s->writer) != GG_OK) {
        ggi_log(&o->log, GG_LOG_ERROR, "scheduler: %s", gg_error_last());
        ggi_grid_db_free(&s->g);
        for (int k = 0; k < 3; k++)
            cJSON_Delete(s->pend[k].events);
        return GG_EIO;
    }
    ggi_writer_watch_stop(s->writer, &o->stopping);
    ggi_writer_observe(s->writer, &o->metrics.db_write);
    /* The "none" retriever learns nothing: no learner, and no result is read back for it. */
    if (!ggi_retriever_is_none(o->retriever) &&
        ggi_learner_new(o->retriever, &o->log, GGI_LEARNER_QUEUE_MAX, &s->learner) != GG_OK)
        ggi_log(&o->log, GG_LOG_WARN, "scheduler: no retrieval learning: %s", gg_error_last());
    s->max_tokens = run_token_budget(o, &o->log);
    /* The run goes on from what the recorded attempts already spent (a resumed run). */
    if (s->max_tokens > 0 && ggi_store_tokens_spent(s->db, &s->tokens) != GG_OK)
        ggi_log(&o->log, GG_LOG_WARN, "cannot sum the tokens spent so far: %s",
                gg_error_last());
    int64_t unfinished = 0;
    if (ggi_grid_unfinished(s->g, &unfinished) == GG_OK)
        atomic_store(&o->queued, unfinished);
    return GG_OK;
}

/* Frees what the scheduler held, after its last writes: the writer thread, nodes, clients,
 * waiters, submitters, pending batches and the learner (drained). */
static void sched_close(sched *s)
{
    ggi_writer_stop(&s->writer);
    while (s->nodes) {
        node *n = s->nodes;
        s->nodes = n->next;
        ggi_sched_node_free(n);
    }
    while (s->clients) {
        client *c = s->clients;
        s->clients = c->next;
        free(c);
    }
    for (int i = 0; i < s->n_waiters; i++)
        free(s->waiters[i].task_id);
    free(s->waiters);
    for (int i = 0; i < s->n_subs; i++)
        free(s->subs[i].name);
    free(s->subs);
    for (int i = 0; i < s->later.n_ended; i++)
        free(s->later.ended[i].task_id);
    free(s->later.ended);
    for (int i = 0; i < s->n_later_rows; i++)
        ggi_claimed_release(&s->later_rows[i]);
    free(s->later_rows);
    for (int k = 0; k < 3; k++) {
        pending *pd = &s->pend[k];
        for (int i = 0; i < pd->n_out; i++)
            free(pd->out[i].text);
        free(pd->out);
        for (int i = 0; i < pd->n_ended; i++)
            free(pd->ended[i].task_id);
        free(pd->ended);
        cJSON_Delete(pd->events);
        ggi_batch_free(&s->batch[k]);
    }
    ggi_sched_summary_free(s);
    free(s->by_seq);
    free(s->run);
    free(s->run_head);
    free(s->run_end);
    ggi_buf_free(&s->ev_buf);
    ggi_grid_db_free(&s->g);
    ggi_learner_destroy(&s->learner, GGI_LEARNER_DRAIN_MS);
}

void *ggi_scheduler_main(void *arg)
{
    gg_orchestrator_t *o = arg;
    gg_transport_msg *first = NULL;
    if (!stand_by(o, &first))
        return NULL;
    ggi_batch *held = NULL; /* written, waiting for the standby's ack */
    sched s;
    memset(&s, 0, sizeof s);
    if (sched_open(o, &s) != GG_OK)
        return NULL;
    if (first) { /* the hello that made this server active */
        on_message(&s, first);
        ggi_ha_free_msg(first);
    }
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
        ggi_batch *done = held;
        int writing = 0;
        held = NULL;
        if (!done)
            writing = !ggi_writer_poll(s.writer, &done);
        /* One of a standby pair holds a written batch until its standby acked it, handling
         * messages into the next meanwhile (which grows, as it does while a commit is slow),
         * rather than blocking in complete_batch. */
        if (!writing && done && o->ha && !done->failed && !ggi_ha_acked(o->ha, done->repl_seq)) {
            held = done;
            writing = 1;
        }
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
        ggi_sched_summary_tick(&s);
    }
    /* The last writes, and those that completing them made (a claimed task that cannot be
     * read ends at once). */
    if (held && !s.dead)
        ggi_sched_handoff(&s, held); /* completed once acked, or the standby given up on */
    for (int i = 0; i < 3 && !s.dead; i++) {
        ggi_sched_handoff(&s, ggi_writer_wait(s.writer));
        ggi_sched_sync_point(&s);
    }
    if (!s.dead)
        requeue_all(&s);
    while (s.tasks) /* left running when dead: the next start requeues them (recover) */
        ggi_sched_remove_active(&s, s.tasks);
    sched_close(&s);
    return NULL;
}
