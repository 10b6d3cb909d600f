/*
 * writer.c - the scheduler's writer thread (writer.h). A batch is written in one
 * transaction: its attempts (several to a statement), its other ops in order, then its claim
 * (fair across submitters, as the scheduler asked), then COMMIT. An op that fails on its own
 * (a constraint, a task ended already) is logged and the rest go on. A failure of the
 * database itself (locked by another connection, full, an I/O error, read-only) rolls the
 * whole batch back, and the batch is written again, whole, after a pause: no batch is ever
 * committed in part or dropped while the scheduler goes on. When retrying does not help the
 * writer gives up on the batch (failed), and the scheduler stops.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "../store/replica.h"
#include "writer.h"

#define MAX_SUBMITTERS 256 /* submitters served per claim */
#define RETRY_FIRST_MS 50  /* pause before a failed batch is written again, doubling */
#define RETRY_MAX_MS 1000

struct ggi_writer {
    ggi_store *s;
    ggi_grid_db *g;
    const ggi_logger *log;
    const atomic_int *host_stopping; /* the orchestrator is shutting down */
    struct ggi_hist *write_time;     /* batches' write durations, or NULL */
    ggi_log_repeat repeat;           /* the same error, try after try, logged once */
    double locked_ms;                /* how long a lock is retried (locked_limit_ms) */
    char why[384];                   /* why the last try failed */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ggi_attempt_in *attempts; /* the batch's attempts, for ggi_store_attempts_add */
    int cap_attempts;
    ggi_batch *work;   /* handed over, not yet done */
    ggi_batch *done;   /* done, not yet collected */
    int stopping;
};

/* ---------------------------------------------------------------- batches */

void ggi_op_free(ggi_op *op)
{
    free(op->code);
    free(op->text);
    free(op->name);
    op->code = op->text = op->name = NULL;
}

int ggi_batch_add(ggi_batch *b, const ggi_op *op)
{
    if (b->n_ops == b->cap_ops) {
        int ncap = b->cap_ops ? b->cap_ops * 2 : 256;
        ggi_op *p = realloc(b->ops, (size_t)ncap * sizeof *p);
        if (!p) {
            ggi_op copy = *op;
            ggi_op_free(&copy);
            return ggi_error(GG_ENOMEM, "out of memory queueing a database write");
        }
        b->ops = p;
        b->cap_ops = ncap;
    }
    b->ops[b->n_ops++] = *op;
    return GG_OK;
}

void ggi_batch_clear(ggi_batch *b)
{
    for (int i = 0; i < b->n_ops; i++)
        ggi_op_free(&b->ops[i]);
    b->n_ops = 0;
    b->n_claimed = 0; /* their blocks stay for the writer to free (release_claimed) */
    b->claim.want = 0;
    b->failed = 0;
    b->queue_empty = 0;
}

/* Frees the blocks of the tasks this batch claimed last time: the writer allocated them, and
 * frees them itself before it claims again into the same batch. */
static void release_claimed(ggi_batch *b)
{
    for (int i = 0; i < b->n_held; i++)
        ggi_claimed_release(&b->claimed[i]);
    b->n_held = 0;
    b->n_claimed = 0;
}

void ggi_batch_free(ggi_batch *b)
{
    ggi_batch_clear(b);
    release_claimed(b);
    free(b->claimed);
    b->claimed = NULL;
    b->cap_claimed = 0;
    free(b->ops);
    b->ops = NULL;
    b->cap_ops = 0;
}

/* ---------------------------------------------------------------- writing */

static int run_op(ggi_writer *w, const ggi_op *op)
{
    switch (op->kind) {
    case GGI_OP_ATTEMPT:
        return ggi_store_attempt_add(w->s, op->seq, op->n, op->code, op->passed, op->text,
                                     op->ts, op->count);
    case GGI_OP_FINISH:
        return ggi_store_task_end_cause(w->s, op->seq, op->status, op->cause, op->text, op->a,
                                        op->ts, op->count, op->n);
    case GGI_OP_EVENT:
        return ggi_store_event_insert(w->s, op->seq, op->name, op->text, op->ts);
    case GGI_OP_SCORE:
        return ggi_grid_score_save(w->g, op->name, op->code, op->a, op->b, op->count, op->ts);
    case GGI_OP_QUARANTINE:
        return ggi_grid_node_quarantine(w->g, op->name, op->ts);
    }
    return ggi_error(GG_EINVAL, "unknown database write %d", (int)op->kind);
}

/* Takes queued tasks, in turn from every submitter that has some: an equal share each,
 * starting with a different submitter every time (so a slot freed one at a time goes to each
 * in turn); what one cannot use goes to the next round. */
static int claim(ggi_writer *w, ggi_batch *b)
{
    int want = b->claim.want;
    char **names = NULL;
    int n_names = 0;
    int rc = ggi_grid_submitters(w->g, MAX_SUBMITTERS, &names, &n_names);
    if (rc)
        return rc;
    unsigned start = n_names > 0 ? b->claim.rr % (unsigned)n_names : 0;
    for (int round = 0; round < 4 && want > 0 && n_names > 0 && !rc; round++) {
        int share = want / n_names > 0 ? want / n_names : 1;
        int got_round = 0;
        for (int k = 0; k < n_names && want > 0 && !rc; k++) {
            int i = (int)((start + (unsigned)k) % (unsigned)n_names);
            if (!names[i])
                continue;
            int before = b->n_claimed;
            rc = ggi_grid_claim(w->g, names[i], share < want ? share : want, ggi_wall_s(),
                                &b->claimed, &b->n_claimed, &b->cap_claimed);
            b->n_held = b->n_claimed;
            int n = b->n_claimed - before;
            if (!rc && n < share) {
                free(names[i]);
                names[i] = NULL;
            }
            want -= n;
            got_round += n;
        }
        if (got_round == 0)
            break;
    }
    int left = 0;
    for (int i = 0; i < n_names; i++) {
        left += names[i] != NULL;
        free(names[i]);
    }
    free(names);
    b->queue_empty = !rc && left == 0 && want > 0;
    return rc;
}

static void attempt_failed(void *user, const ggi_attempt_in *a)
{
    ggi_writer *w = user;
    if (ggi_store_fault(w->s))
        return; /* the batch fails as a whole, and says why once */
    ggi_log(w->log, GG_LOG_ERROR, "writer: task %lld: %s", (long long)a->seq, gg_error_last());
}

/* The batch's attempts, GGI_ATTEMPT_ROWS to a statement (ggi_store_attempts_add); GG_ESTORE
 * when the transaction was lost. */
static int write_attempts(ggi_writer *w, const ggi_batch *b)
{
    int n = 0;
    for (int i = 0; i < b->n_ops; i++)
        n += b->ops[i].kind == GGI_OP_ATTEMPT;
    if (n == 0)
        return GG_OK;
    if (n > w->cap_attempts) {
        ggi_attempt_in *p = realloc(w->attempts, (size_t)n * sizeof *p);
        if (!p) {
            /* One at a time then, as any other op. */
            for (int i = 0; i < b->n_ops; i++)
                if (b->ops[i].kind == GGI_OP_ATTEMPT && run_op(w, &b->ops[i]) != GG_OK)
                    ggi_log(w->log, GG_LOG_ERROR, "writer: task %lld: %s",
                            (long long)b->ops[i].seq, gg_error_last());
            return ggi_store_in_transaction(w->s) ? GG_OK : GG_ESTORE;
        }
        w->attempts = p;
        w->cap_attempts = n;
    }
    n = 0;
    for (int i = 0; i < b->n_ops; i++) {
        const ggi_op *op = &b->ops[i];
        if (op->kind != GGI_OP_ATTEMPT)
            continue;
        w->attempts[n++] = (ggi_attempt_in){ .seq = op->seq, .n = op->n, .passed = op->passed,
                                             .count = op->count, .code = op->code,
                                             .record_json = op->text, .now = op->ts };
    }
    return ggi_store_attempts_add(w->s, w->attempts, n, attempt_failed, w);
}

/* A try failed: rolls everything back (the claim too: its tasks stay queued) and returns
 * the fault (ggi_store_fault, or SQLITE_ERROR when SQLite rolled back without naming one). */
static int try_lost(ggi_writer *w, ggi_batch *b)
{
    int fault = ggi_store_fault(w->s);
    snprintf(w->why, sizeof w->why, "%s", gg_error_last());
    ggi_store_rollback(w->s);
    release_claimed(b);
    b->queue_empty = 0;
    return fault ? fault : SQLITE_ERROR;
}

/* One try at writing the batch in one transaction: 0 when it is committed, else the fault
 * (everything rolled back). */
static int try_batch(ggi_writer *w, ggi_batch *b)
{
    release_claimed(b);
    b->queue_empty = 0;
    if (ggi_store_begin(w->s) != GG_OK)
        return try_lost(w, b);
    /* The attempts first, several to a statement; then the other ops in order (an attempt
     * and its task's end are in the same transaction either way). */
    if (write_attempts(w, b) != GG_OK || ggi_store_fault(w->s))
        return try_lost(w, b);
    for (int i = 0; i < b->n_ops; i++) {
        if (b->ops[i].kind == GGI_OP_ATTEMPT || run_op(w, &b->ops[i]) == GG_OK)
            continue;
        /* SQLite may also have rolled the transaction back by itself (I/O error, full disk). */
        if (ggi_store_fault(w->s) || !ggi_store_in_transaction(w->s))
            return try_lost(w, b);
        ggi_log(w->log, GG_LOG_ERROR, "writer: task %lld: %s", (long long)b->ops[i].seq,
                gg_error_last());
    }
    if (b->claim.want > 0 && claim(w, b) != GG_OK) {
        if (ggi_store_fault(w->s) || !ggi_store_in_transaction(w->s))
            return try_lost(w, b);
        ggi_log(w->log, GG_LOG_ERROR, "claiming tasks: %s", gg_error_last());
        /* Rows claimed before the error are kept (their marks are in this transaction). */
    }
    if (ggi_store_commit(w->s) != GG_OK)
        return try_lost(w, b);
    b->repl_seq = ggi_replica_seq(w->s);
    return 0;
}

static void write_batch(ggi_writer *w, ggi_batch *b)
{
    b->failed = 0;
    b->fault = 0;
    b->why[0] = 0;
    double first_ms = 0, began_ms = ggi_now_ms();
    int tries = 0, pause_ms = RETRY_FIRST_MS;
    for (;;) {
        int fault = try_batch(w, b);
        if (!fault) {
            if (w->write_time)
                ggi_hist_observe_ms(w->write_time, ggi_now_ms() - began_ms);
            if (tries > 0) {
                ggi_log_repeat_flush(w->log, &w->repeat);
                ggi_log(w->log, GG_LOG_WARN, "writer: a batch of %d database writes was "
                        "written whole after %d failed tr%s", b->n_ops, tries,
                        tries == 1 ? "y" : "ies");
            }
            return;
        }
        double now = ggi_now_ms();
        if (tries++ == 0)
            first_ms = now;
        int locked = fault == SQLITE_BUSY || fault == SQLITE_LOCKED;
        int stopping = w->host_stopping && atomic_load(w->host_stopping);
        /* Another connection's lock passes (it is retried for long); other faults rarely do
         * (a few tries); a shutdown does not wait long for either. */
        int again = locked && !stopping ? now - first_ms < w->locked_ms
                                        : tries < GGI_WRITER_TRIES;
        ggi_log_repeated(w->log, &w->repeat, GG_LOG_ERROR, "writer: %s; %s", w->why,
                         again ? "the batch is rolled back and written again"
                               : "giving up on the batch");
        if (!again) {
            ggi_log_repeat_flush(w->log, &w->repeat);
            b->failed = 1;
            b->fault = fault;
            if (locked)
                snprintf(b->why, sizeof b->why, "%s (another connection still held the "
                         "lock after %.1f s of retries; the limit is %g s)", w->why,
                         (now - first_ms) / 1000.0, w->locked_ms / 1000.0);
            else
                snprintf(b->why, sizeof b->why, "%s", w->why);
            return;
        }
        ggi_sleep_ms(pause_ms);
        pause_ms = pause_ms * 2 < RETRY_MAX_MS ? pause_ms * 2 : RETRY_MAX_MS;
    }
}

static void *run(void *arg)
{
    ggi_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->work && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->work)
            break;
        ggi_batch *b = w->work;
        pthread_mutex_unlock(&w->mu);
        write_batch(w, b);
        pthread_mutex_lock(&w->mu);
        w->work = NULL;
        w->done = b;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

/* How long a batch meeting another connection's lock is retried: GGI_WRITER_LOCKED_MS, or
 * GRYPHGEN_DB_LOCK_WAIT_S seconds (an internal setting, for tests: from 0.1 to 86400; another
 * value is ignored with a warning). */
static double locked_limit_ms(const ggi_logger *log)
{
    const char *v = getenv("GRYPHGEN_DB_LOCK_WAIT_S");
    if (!v || !*v)
        return GGI_WRITER_LOCKED_MS;
    char *end = NULL;
    errno = 0;
    double sec = strtod(v, &end);
    if (errno || end == v || *end || !(sec >= 0.1 && sec <= 86400.0)) {
        ggi_log(log, GG_LOG_WARN, "ignoring GRYPHGEN_DB_LOCK_WAIT_S='%.32s': not a number of "
                "seconds from 0.1 to 86400; a lock is waited for %g s", v,
                GGI_WRITER_LOCKED_MS / 1000.0);
        return GGI_WRITER_LOCKED_MS;
    }
    return sec * 1000.0;
}

int ggi_writer_start(ggi_store *s, ggi_grid_db *g, const ggi_logger *log, ggi_writer **out)
{
    *out = NULL;
    ggi_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ggi_error(GG_ENOMEM, "out of memory");
    w->s = s;
    w->g = g;
    w->log = log;
    w->locked_ms = locked_limit_ms(log);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ggi_error(GG_ENOMEM, "cannot start the writer thread");
    }
    *out = w;
    return GG_OK;
}

void ggi_writer_watch_stop(ggi_writer *w, const atomic_int *stopping)
{
    pthread_mutex_lock(&w->mu);
    w->host_stopping = stopping;
    pthread_mutex_unlock(&w->mu);
}

void ggi_writer_observe(ggi_writer *w, struct ggi_hist *h)
{
    pthread_mutex_lock(&w->mu);
    w->write_time = h;
    pthread_mutex_unlock(&w->mu);
}

void ggi_writer_submit(ggi_writer *w, ggi_batch *b)
{
    pthread_mutex_lock(&w->mu);
    w->work = b;
    w->done = NULL;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ggi_writer_poll(ggi_writer *w, ggi_batch **done)
{
    pthread_mutex_lock(&w->mu);
    int idle = w->work == NULL;
    *done = idle ? w->done : NULL;
    if (idle)
        w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

ggi_batch *ggi_writer_wait(ggi_writer *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->work)
        pthread_cond_wait(&w->cv, &w->mu);
    ggi_batch *b = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    return b;
}

void ggi_writer_stop(ggi_writer **pw)
{
    if (!pw || !*pw)
        return;
    ggi_writer *w = *pw;
    pthread_mutex_lock(&w->mu);
    while (w->work)
        pthread_cond_wait(&w->cv, &w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->attempts);
    free(w);
    *pw = NULL;
}
