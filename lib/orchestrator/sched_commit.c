/*
 * sched_commit.c - group commit: the scheduler's writes go to the writer thread in batches.
 *
 * Every change made while handling the bursts of messages that arrive while the writer
 * thread (writer.c) is busy goes into one batch, which the writer then writes in one
 * transaction (group commit), together with a claim of queued tasks, while this thread
 * handles the next bursts; replies, events and wake-ups leave only after that commit, so
 * nothing is acknowledged before it is durable. Reads, and the rare writes that need an
 * answer at once (submissions, cancels, hellos), use the connection here with the writer
 * idle (sync_point). Jobs need no commit: a result is recorded only under the lease its job
 * carries.
 *
 * Cut here because this is the one place that knows the three batch slots and what waits for
 * each (replies, events, ended tasks): every other file only adds an op (add_op) or queues a
 * message (queue_msg) and trusts this file to release it after the commit.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/replica.h"
#include "ha.h"
#include "sched.h"

void ggi_orq_signal_done(gg_orchestrator_t *o);
static void notify_waiters(sched *s, const char *task_id, const char *result_text);
static void learn_from_result(sched *s, cJSON *res);
static int has_waiter(const sched *s, const char *task_id);

/* Whether this thread's own transaction was rolled back by SQLite itself (after an I/O
 * error, a full disk, a lock timeout, a trigger's RAISE(ROLLBACK)): what it wrote since
 * ggi_sched_txn began it is gone, while the replies saying so are queued. */
static int txn_lost(sched *s)
{
    return s->txn_open && !ggi_store_in_transaction(s->db);
}

static int lost_error(const sched *s)
{
    return ggi_error(GG_ESTORE, "the scheduler's transaction was rolled back by the database "
                     "(%s); its writes are lost", s->txn_why[0] ? s->txn_why : "no detail");
}

/* Opens (or continues) this thread's own transaction, with the writer idle: for the rare
 * writes that need an answer now (submissions, cancels, hellos). A transaction SQLite
 * rolled back is not replaced by a fresh one (the later writes would commit and the lost
 * ones be acknowledged with them): it stays lost, every later call fails, and the handoff
 * fails the batch gathered with it (ggi_sched_handoff). Callers record a write's error
 * (gg_error_last) in txn_why through ggi_sched_txn_note. */
int ggi_sched_txn(sched *s)
{
    ggi_sched_sync_point(s);
    if (ggi_store_in_transaction(s->db))
        return GG_OK;
    if (txn_lost(s))
        return lost_error(s);
    int rc = ggi_store_begin(s->db);
    s->txn_open = rc == GG_OK;
    s->txn_why[0] = 0;
    return rc;
}

void ggi_sched_txn_note(sched *s)
{
    if (s->txn_open && !s->txn_why[0] && !ggi_store_in_transaction(s->db))
        snprintf(s->txn_why, sizeof s->txn_why, "%s", gg_error_last());
}

/* Queues a write in the batch being gathered, taking op's strings; copied says whether every
 * string it needs was copied (a copy can fail). GG_OK, or GG_ENOMEM logged with what. */
int ggi_sched_add_op(sched *s, ggi_op *op, int copied, const char *what)
{
    int rc = GG_ENOMEM;
    if (copied)
        rc = ggi_batch_add(&s->batch[s->cur], op); /* frees the strings when it fails */
    else
        ggi_op_free(op);
    if (rc != GG_OK)
        ggi_log(&s->o->log, GG_LOG_ERROR, "cannot record %s: out of memory", what);
    return rc;
}

/* Queues a message for after the commit of the batch being gathered; takes text. */
void ggi_sched_queue_out(sched *s, const identity *to, char *text, size_t len)
{
    if (!text)
        return;
    pending *pd = &s->pend[s->cur];
    if (pd->n_out == pd->cap_out) {
        int ncap = pd->cap_out ? pd->cap_out * 2 : 64;
        outmsg *p = realloc(pd->out, (size_t)ncap * sizeof *p);
        if (!p) {
            ggi_log(&s->o->log, GG_LOG_ERROR, "out of memory queueing a reply");
            free(text);
            return;
        }
        pd->out = p;
        pd->cap_out = ncap;
    }
    outmsg *m = &pd->out[pd->n_out++];
    m->to = *to;
    m->text = text;
    m->len = len;
}

void ggi_sched_queue_msg(sched *s, const identity *to, cJSON *m)
{
    size_t len = 0;
    char *text = m ? ggp_print(m, &len) : NULL;
    cJSON_Delete(m);
    if (!text) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "cannot print a reply: %s", gg_error_last());
        return;
    }
    ggi_sched_queue_out(s, to, text, len);
}

cJSON *ggi_sched_reply_new(long long rid, int ok)
{
    return ggp_build_reply(rid, ok);
}

void ggi_sched_reply_error(sched *s, const identity *to, long long rid, int code,
                           const char *message)
{
    ggi_sched_queue_msg(s, to, ggp_build_reply_error(rid, code, message));
}

/* Sends now (used for heartbeats and jobs, which need no commit first). */
int ggi_sched_send_now(sched *s, const identity *to, const char *text, size_t len)
{
    return s->o->transport.vt.hub_send(s->o->hub, to->id, to->len, text, len);
}

void ggi_sched_send_out(sched *s, outmsg *m)
{
    int rc = ggi_sched_send_now(s, &m->to, m->text, m->len);
    if (rc != GG_OK) {
        /* Not silent: the peer is gone or its queue is full; it asks again. */
        ggi_log(&s->o->log, GG_LOG_WARN, "could not deliver a reply: %s", gg_error_last());
        if (rc == GG_ENOTFOUND) {
            client *c = ggi_sched_find_client(s, m->to.id, m->to.len);
            if (c && c->watching) {
                c->watching = 0;
                ggi_sched_count_watchers(s);
            }
        }
    }
    free(m->text);
    m->text = NULL;
}

int ggi_sched_push_ended(pending *pd, char *task_id, int learns)
{
    if (pd->n_ended == pd->cap_ended) {
        int ncap = pd->cap_ended ? pd->cap_ended * 2 : 256;
        struct ended *p = realloc(pd->ended, (size_t)ncap * sizeof *p);
        if (!p)
            return ggi_error(GG_ENOMEM, "out of memory");
        pd->ended = p;
        pd->cap_ended = ncap;
    }
    pd->ended[pd->n_ended].task_id = task_id;
    pd->ended[pd->n_ended].learns = learns;
    pd->n_ended++;
    return GG_OK;
}

/* Reads back an ended task's result for its waiters and the learner (writer idle). */
static void read_back(sched *s, const struct ended *e)
{
    int waited = s->n_waiters > 0 && has_waiter(s, e->task_id);
    if (!waited && !e->learns)
        return;
    ggi_task_row row;
    if (ggi_store_task_get(s->db, e->task_id, &row) != GG_OK || !row.result) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "reading the result of task '%s': %s", e->task_id,
                gg_error_last());
    } else {
        if (waited)
            notify_waiters(s, e->task_id, row.result);
        cJSON *res = e->learns ? cJSON_Parse(row.result) : NULL;
        /* The task itself, for the learner to head the indexed solution with its prompt. */
        if (res && row.spec)
            cJSON_AddStringToObject(res, "task_spec", row.spec);
        if (res)
            learn_from_result(s, res);
    }
    ggi_store_task_row_free(&row);
}

/* What was left for the writer to be idle: results read back, claimed tasks resumed. */
static void run_later(sched *s)
{
    for (int i = 0; i < s->later.n_ended; i++) {
        read_back(s, &s->later.ended[i]);
        free(s->later.ended[i].task_id);
    }
    s->later.n_ended = 0;
    for (int i = 0; i < s->n_later_rows; i++) {
        ggi_sched_add_active(s, &s->later_rows[i].row, s->later_rows[i].submitter);
        ggi_claimed_release(&s->later_rows[i]);
    }
    s->n_later_rows = 0;
}

/* The writer gave up on a batch: nothing of it is durable, so nothing of it is told (no
 * event, no reply, no result), and since the tasks in memory are ahead of the database now,
 * the scheduler stops; the next start resumes from what was committed. */
static void fail_batch(sched *s, ggi_batch *b, pending *pd)
{
    if (!s->dead)
        ggi_orq_fail(s->o, b->fault, b->why);
    s->dead = 1;
    cJSON_Delete(pd->events);
    pd->events = cJSON_CreateArray();
    for (int i = 0; i < pd->n_out; i++)
        free(pd->out[i].text);
    pd->n_out = 0;
    for (int i = 0; i < pd->n_ended; i++)
        free(pd->ended[i].task_id);
    atomic_fetch_sub(&s->o->ends_unheard, pd->n_ended);
    pd->n_ended = 0;
    pd->finished = 0;
    ggi_batch_clear(b);
}

/* After a batch's commit: the host hears its events, the clients get their replies, the
 * clients waiting for the tasks it ended get their results and the learner learns from
 * them; then the tasks it claimed join the active set. What needs the database (reading
 * results back, resuming a task from its attempts) waits for the writer to be idle when it
 * is not (idle). */
static void complete_batch(sched *s, ggi_batch *b, int idle)
{
    int idx = (int)(b - s->batch);
    pending *pd = &s->pend[idx];
    if (b->failed) {
        fail_batch(s, b, pd);
        return;
    }
    /* One of a pair tells nothing before its standby holds it too (when one is attached):
     * a batch the writer wrote waits for its own sequence; any other (completed with the
     * writer idle) for everything committed so far. */
    if (s->o->ha)
        ggi_ha_wait_acked(s->o->ha, idle ? ggi_replica_seq(s->db) : b->repl_seq);
    cJSON *ev;
    cJSON_ArrayForEach(ev, pd->events)
    {
        if (s->o->event_fn && cJSON_IsString(ev))
            s->o->event_fn(s->o->event_user, ev->valuestring);
    }
    cJSON_Delete(pd->events);
    pd->events = cJSON_CreateArray();
    for (int i = 0; i < pd->n_out; i++)
        ggi_sched_send_out(s, &pd->out[i]);
    pd->n_out = 0;
    for (int i = 0; i < pd->n_ended; i++) {
        struct ended *e = &pd->ended[i];
        int needs_read = !b->failed && (e->learns || (s->n_waiters > 0 &&
                                                      has_waiter(s, e->task_id)));
        if (needs_read && idle)
            read_back(s, e);
        if (needs_read && !idle && ggi_sched_push_ended(&s->later, e->task_id, e->learns) == GG_OK)
            continue; /* the id is the later list's now */
        free(e->task_id);
    }
    atomic_fetch_sub(&s->o->ends_unheard, pd->n_ended);
    pd->n_ended = 0;
    if (pd->finished) {
        atomic_fetch_sub(&s->o->queued, pd->finished); /* unfinished tasks fewer */
        pd->finished = 0;
        ggi_orq_signal_done(s->o);
    }
    for (int i = 0; i < b->n_claimed; i++) {
        ggi_claimed *c = &b->claimed[i];
        if (c->row.attempts > 0 && !idle) {
            if (s->n_later_rows == s->cap_later_rows) {
                int ncap = s->cap_later_rows ? s->cap_later_rows * 2 : 16;
                ggi_claimed *p = realloc(s->later_rows, (size_t)ncap * sizeof *p);
                if (p) {
                    s->later_rows = p;
                    s->cap_later_rows = ncap;
                }
            }
            if (s->n_later_rows < s->cap_later_rows &&
                ggi_claimed_copy(c, &s->later_rows[s->n_later_rows]) == GG_OK) {
                s->n_later_rows++;
                continue;
            }
            /* No room to wait: it stays claimed (running) until the next start requeues it. */
            ggi_log(&s->o->log, GG_LOG_ERROR, "cannot resume task '%s' now: out of memory",
                    c->row.task_id);
            continue;
        }
        ggi_sched_add_active(s, &c->row, c->submitter);
    }
    /* Nothing more to claim, unless tasks came in after the claim looked. */
    if (b->queue_empty && b->tag == s->submit_gen)
        s->may_have_queued = 0;
    ggi_batch_clear(b);
}

/* Waits until the writer is idle and completes the batch it wrote; afterwards this thread
 * may use the connection itself until the next handoff. */
void ggi_sched_sync_point(sched *s)
{
    ggi_batch *b = s->writer ? ggi_writer_wait(s->writer) : NULL;
    if (b)
        complete_batch(s, b, 1);
    run_later(s);
}

/* The claim for the next batch: up to the room in the active set, in chunks (one claim per
 * eighth of the active set, not per freed slot); none without a worker (tasks then wait in
 * the database, and stay 'queued', not in memory). */
static ggi_claim_request claim_request(sched *s, int coming)
{
    ggi_claim_request r = { 0, 0 };
    int want = s->limit - s->n_active - coming; /* coming: claimed, not yet active */
    if (want <= 0 || !s->may_have_queued || !s->nodes || atomic_load(&s->o->stopping))
        return r;
    if (want < s->limit / 8 && s->n_active > s->limit / 2)
        return r;
    r.want = want;
    r.rr = s->claim_rr++;
    return r;
}

/* Ends the gathering of the current batch (the writer is idle, and done holds the batch it
 * wrote last, or NULL): what this thread wrote itself is committed, then the batch goes to
 * the writer with its claim, and done is completed while the writer works. Returns 1 when
 * the writer got a batch (it is busy now), 0 when there was nothing to write. */
int ggi_sched_handoff(sched *s, ggi_batch *done)
{
    /* After a batch the writer gave up on, no later one may be written: it would record
     * what follows from writes that are not there (attempt n + 1 without attempt n). */
    if (done && done->failed)
        complete_batch(s, done, 1);
    if (s->dead) {
        ggi_store_rollback(s->db);
        s->txn_open = 0;
        return 0;
    }
    run_later(s);
    ggi_sched_save_scores(s);
    if (ggi_store_in_transaction(s->db) || txn_lost(s)) {
        int rc = txn_lost(s) ? lost_error(s) : ggi_store_commit(s->db);
        s->txn_open = 0;
        if (rc != GG_OK) {
            /* Its replies wait in the batch being gathered: they must not go out. */
            char why[512];
            snprintf(why, sizeof why, "%s", gg_error_last());
            int fault = ggi_store_fault(s->db);
            ggi_store_rollback(s->db);
            s->batch[s->cur].failed = 1;
            s->batch[s->cur].fault = fault;
            snprintf(s->batch[s->cur].why, sizeof s->batch[s->cur].why, "%s", why);
            if (done)
                complete_batch(s, done, 1); /* that one is durable: it is told */
            complete_batch(s, &s->batch[s->cur], 1);
            return 0;
        }
    }
    ggi_batch *b = &s->batch[s->cur];
    b->claim = claim_request(s, done ? done->n_claimed : 0);
    b->tag = s->submit_gen;
    if (b->n_ops == 0 && b->claim.want == 0) {
        /* Nothing to write: what waited goes now, in order (completing done may still give
         * this batch something to write: a claimed task that ends at once). */
        if (done)
            complete_batch(s, done, 1);
        done = NULL;
        if (b->n_ops == 0) {
            complete_batch(s, b, 1);
            return 0;
        }
    }
    ggi_writer_submit(s->writer, b);
    /* The next one gathers in the slot that is neither being written nor completed. */
    int busy = s->cur, finishing = done ? (int)(done - s->batch) : -1;
    s->cur = (busy + 1) % 3 != finishing ? (busy + 1) % 3 : (busy + 2) % 3;
    if (done)
        complete_batch(s, done, 0);
    return 1;
}

void ggi_orq_signal_done(gg_orchestrator_t *o)
{
    pthread_mutex_lock(&o->done_mu);
    o->done_gen++;
    pthread_cond_broadcast(&o->done_cv);
    pthread_mutex_unlock(&o->done_mu);
}

/* Answers the clients waiting for a task whose end is durable (at once). */
static void notify_waiters(sched *s, const char *task_id, const char *result_text)
{
    for (int i = 0; i < s->n_waiters;) {
        waiter *w = &s->waiters[i];
        if (strcmp(w->task_id, task_id) != 0) {
            i++;
            continue;
        }
        cJSON *m = ggi_sched_reply_new(w->rid, 1);
        cJSON *res = result_text ? cJSON_Parse(result_text) : NULL;
        if (m && res)
            cJSON_AddItemToObject(m, "result", res);
        else
            cJSON_Delete(res);
        outmsg out = { w->to, NULL, 0 };
        out.text = m ? ggp_print(m, &out.len) : NULL;
        cJSON_Delete(m);
        if (out.text)
            ggi_sched_send_out(s, &out);
        else
            ggi_log(&s->o->log, GG_LOG_ERROR, "cannot print a reply: %s", gg_error_last());
        free(w->task_id);
        s->waiters[i] = s->waiters[--s->n_waiters];
    }
}

/* Learning from the outcome (SYMORG): each attempt's retrieved chunks are credited or debited
 * by whether that attempt passed, and a passing solution becomes a document later tasks can
 * retrieve. It runs on the learner's thread (learner.c), so a slow retriever never holds up
 * this one; res (owned) is pushed after the commit that recorded the task's end. */
static void learn_from_result(sched *s, cJSON *res)
{
    ggi_learner_push(s->learner, res);
}

static int has_waiter(const sched *s, const char *task_id)
{
    for (int i = 0; i < s->n_waiters; i++)
        if (strcmp(s->waiters[i].task_id, task_id) == 0)
            return 1;
    return 0;
}
