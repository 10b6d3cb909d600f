/*
 * scheduler.c - the scheduler thread (the single writer of task state) and the worker
 * threads of an embedded orchestrator.
 *
 * The scheduler keeps a bounded set of active tasks in memory (the rest wait in the
 * database), hands attempts to idle workers over the transport, and records each outcome.
 * Every change made while handling a burst of messages goes into one transaction (group
 * commit); events reach the host's callback and waiters are woken only after that commit,
 * so nothing is acknowledged before it is durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orq.h"

#define BURST 256           /* messages handled per commit at most */
#define POLL_MS 100         /* how often an idle scheduler or worker checks for shutdown */

typedef struct active {
    struct active *next;
    int64_t seq;
    char *task_id;
    cJSON *spec;            /* normalised task JSON */
    int priority;
    int max_attempts;
    double wall_s;
    double started_wall;
    int attempts;           /* recorded so far */
    int inflight;           /* a worker has attempt attempts+1 */
    int cancelled;
    int infra_failures;
    double not_before_ms;   /* backoff after an infrastructure fault */
    cJSON *feedback;        /* the last GGI_FEEDBACK_ATTEMPTS attempts, oldest first */
} active;

typedef struct identity {
    unsigned char id[GG_TRANSPORT_MAX_IDENTITY];
    size_t len;
} identity;

typedef struct sched {
    gg_orchestrator_t *o;
    ggi_store *db;
    active *tasks;
    int n_active;
    int limit;
    identity *idle;
    unsigned n_idle;
    int txn_open;
    int may_have_queued;
    int finished;           /* tasks ended in this batch */
    cJSON *events;          /* printed events to deliver after the commit */
} sched;

/* ---------------------------------------------------------------- helpers */

static void active_free(active *a)
{
    if (!a)
        return;
    free(a->task_id);
    cJSON_Delete(a->spec);
    cJSON_Delete(a->feedback);
    free(a);
}

static int txn(sched *s)
{
    /* SQLite may have rolled back by itself after an I/O error or a lock timeout. */
    s->txn_open = ggi_store_in_transaction(s->db);
    if (s->txn_open)
        return GG_OK;
    int rc = ggi_store_begin(s->db);
    if (rc == GG_OK)
        s->txn_open = 1;
    return rc;
}

/* Records an event (in the open transaction) and queues it for the host's callback. */
static void emit(sched *s, int64_t seq, cJSON *ev)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
    char *text = ggi_json_print(ev);
    if (text && txn(s) == GG_OK) {
        if (ggi_store_event_insert(s->db, seq, type ? type : "event", text, ggi_wall_s()) != GG_OK)
            ggi_log(&s->o->log, GG_LOG_WARN, "cannot record event: %s", gg_error_last());
        if (s->o->event_fn)
            cJSON_AddItemToArray(s->events, cJSON_CreateString(text));
    }
    free(text);
    cJSON_Delete(ev);
}

static cJSON *event_new(const char *type, const char *task_id)
{
    cJSON *ev = cJSON_CreateObject();
    if (!ev)
        return NULL;
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_AddNumberToObject(ev, "ts", ggi_wall_s());
    cJSON_AddStringToObject(ev, "task_id", task_id);
    return ev;
}

/* Commits the batch, then tells the host. */
static void flush(sched *s)
{
    if (ggi_store_in_transaction(s->db)) {
        int rc = ggi_store_commit(s->db);
        s->txn_open = 0;
        if (rc != GG_OK) {
            ggi_log(&s->o->log, GG_LOG_ERROR, "commit failed: %s", gg_error_last());
            ggi_store_rollback(s->db);
        }
    }
    cJSON *ev;
    cJSON_ArrayForEach(ev, s->events)
    {
        if (s->o->event_fn && cJSON_IsString(ev))
            s->o->event_fn(s->o->event_user, ev->valuestring);
    }
    cJSON_Delete(s->events);
    s->events = cJSON_CreateArray();
    if (s->finished) {
        s->finished = 0;
        ggi_orq_signal_done(s->o);
    }
}

void ggi_orq_signal_done(gg_orchestrator_t *o)
{
    pthread_mutex_lock(&o->done_mu);
    o->done_gen++;
    pthread_cond_broadcast(&o->done_cv);
    pthread_mutex_unlock(&o->done_mu);
}

/* ---------------------------------------------------------------- results */

/* How good an attempt is, to pick the one whose code a failed task keeps. */
static int attempt_score(const cJSON *rec)
{
    if (cJSON_IsTrue(cJSON_GetObjectItem(rec, "passed")))
        return 3;
    const cJSON *ex = cJSON_GetObjectItem(rec, "execution");
    if (ex && cJSON_IsObject(ex))
        return 2;
    return 1;
}

typedef struct history_ctx {
    cJSON *history;
    int best_n, best_score, passed_n;
} history_ctx;

static int collect_attempt(void *user, int n, int passed, const char *record_json)
{
    history_ctx *h = user;
    cJSON *rec = cJSON_Parse(record_json);
    if (!rec)
        return ggi_error(GG_ESTORE, "attempt %d has an unreadable record", n);
    int score = attempt_score(rec);
    if (score >= h->best_score) {
        h->best_score = score;
        h->best_n = n;
    }
    if (passed && !h->passed_n)
        h->passed_n = n;
    cJSON_AddItemToArray(h->history, rec);
    return GG_OK;
}

static cJSON *build_result(sched *s, int64_t seq, const char *task_id, const char *status,
                           const char *reason, double started_wall)
{
    history_ctx h = { cJSON_CreateArray(), 0, 0, 0 };
    cJSON *res = cJSON_CreateObject();
    if (!res || !h.history) {
        cJSON_Delete(res);
        cJSON_Delete(h.history);
        return NULL;
    }
    if (ggi_store_attempts_each(s->db, seq, collect_attempt, &h) != GG_OK)
        ggi_log(&s->o->log, GG_LOG_ERROR, "task '%s': %s", task_id, gg_error_last());
    int n = cJSON_GetArraySize(h.history);
    if (h.passed_n)
        h.best_n = h.passed_n;
    cJSON_AddStringToObject(res, "task_id", task_id);
    cJSON_AddStringToObject(res, "status", status);
    cJSON_AddNumberToObject(res, "attempts", n);
    if (h.passed_n)
        cJSON_AddNumberToObject(res, "passed_attempt", h.passed_n);
    else
        cJSON_AddNullToObject(res, "passed_attempt");
    const cJSON *best = h.best_n ? cJSON_GetArrayItem(h.history, h.best_n - 1) : NULL;
    if (best)
        cJSON_AddNumberToObject(res, "best_attempt", h.best_n);
    else
        cJSON_AddNullToObject(res, "best_attempt");
    const char *code = best ? cJSON_GetStringValue(cJSON_GetObjectItem(best, "code")) : NULL;
    ggi_json_add_str(res, "code", code);
    ggi_json_add_str(res, "reason", reason);
    cJSON_AddNumberToObject(res, "duration_ms",
                            started_wall > 0 ? (ggi_wall_s() - started_wall) * 1e3 : 0.0);
    cJSON_AddItemToObject(res, "history", h.history);
    return res;
}

/* Ends a task: result written, event emitted. Does not touch the active list. */
static void finish_task(sched *s, int64_t seq, const char *task_id, const char *status,
                        const char *reason, double started_wall)
{
    if (txn(s) != GG_OK) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "task '%s': %s", task_id, gg_error_last());
        return;
    }
    cJSON *res = build_result(s, seq, task_id, status, reason, started_wall);
    char *text = res ? ggi_json_print(res) : NULL;
    if (!text || ggi_store_task_finish(s->db, seq, status, reason, text, ggi_wall_s()) != GG_OK)
        ggi_log(&s->o->log, GG_LOG_ERROR, "cannot record the end of task '%s': %s", task_id,
                gg_error_last());
    cJSON *ev = event_new("task.finished", task_id);
    if (ev) {
        cJSON_AddStringToObject(ev, "status", status);
        cJSON_AddItemToObject(ev, "attempts",
                              cJSON_Duplicate(cJSON_GetObjectItem(res, "attempts"), 1));
        cJSON_AddItemToObject(ev, "passed_attempt",
                              cJSON_Duplicate(cJSON_GetObjectItem(res, "passed_attempt"), 1));
        ggi_json_add_str(ev, "reason", reason);
        emit(s, seq, ev);
    }
    ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' %s%s%s", task_id, status, reason ? ": " : "",
            reason ? reason : "");
    free(text);
    cJSON_Delete(res);
    s->finished++;
}

static void remove_active(sched *s, active *a)
{
    for (active **p = &s->tasks; *p; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            s->n_active--;
            break;
        }
    }
    active_free(a);
}

static void end_active(sched *s, active *a, const char *status, const char *reason)
{
    finish_task(s, a->seq, a->task_id, status, reason, a->started_wall);
    remove_active(s, a);
}

/* ---------------------------------------------------------------- feedback */

static const char *tail(const char *text, size_t max)
{
    if (!text)
        return NULL;
    size_t n = strlen(text);
    if (n <= max)
        return text;
    const char *p = text + n - max;
    while (*p && ((unsigned char)*p & 0xC0) == 0x80) /* do not start inside a UTF-8 sequence */
        p++;
    return p;
}

/* Adds what the next attempt should know about this one. */
static void add_feedback(active *a, int n, const cJSON *rec)
{
    cJSON *fb = cJSON_CreateObject();
    if (!fb)
        return;
    cJSON_AddNumberToObject(fb, "attempt", n);
    const cJSON *v = cJSON_GetObjectItem(rec, "code");
    ggi_json_add_str(fb, "code", cJSON_GetStringValue(v));
    ggi_json_add_str(fb, "reason", cJSON_GetStringValue(cJSON_GetObjectItem(rec, "reason")));
    const cJSON *an = cJSON_GetObjectItem(rec, "analysis");
    const cJSON *findings = an ? cJSON_GetObjectItem(an, "findings") : NULL;
    cJSON_AddItemToObject(fb, "findings", findings ? cJSON_Duplicate(findings, 1)
                                                   : cJSON_CreateArray());
    const cJSON *ex = cJSON_GetObjectItem(rec, "execution");
    if (cJSON_IsObject(ex)) {
        ggi_json_add_str(fb, "stderr_tail",
                         tail(cJSON_GetStringValue(cJSON_GetObjectItem(ex, "stderr")),
                              GGI_FEEDBACK_TAIL));
        ggi_json_add_str(fb, "stdout_tail",
                         tail(cJSON_GetStringValue(cJSON_GetObjectItem(ex, "stdout")),
                              GGI_FEEDBACK_TAIL));
    }
    cJSON_AddItemToArray(a->feedback, fb);
    while (cJSON_GetArraySize(a->feedback) > GGI_FEEDBACK_ATTEMPTS)
        cJSON_DeleteItemFromArray(a->feedback, 0);
}

typedef struct resume_ctx {
    active *a;
    int last_passed;
    char *last_reason;
} resume_ctx;

static int resume_attempt(void *user, int n, int passed, const char *record_json)
{
    resume_ctx *r = user;
    cJSON *rec = cJSON_Parse(record_json);
    if (!rec)
        return ggi_error(GG_ESTORE, "attempt %d has an unreadable record", n);
    add_feedback(r->a, n, rec);
    r->a->attempts = n;
    r->last_passed = passed;
    free(r->last_reason);
    r->last_reason = ggi_strdup(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "reason")));
    cJSON_Delete(rec);
    return GG_OK;
}

/* ---------------------------------------------------------------- decisions */

/* After an attempt was recorded (or on resume): end the task or leave it for the next one. */
static void decide(sched *s, active *a, int last_passed, const char *last_reason)
{
    if (last_passed) {
        end_active(s, a, GGI_ST_PASSED, NULL);
        return;
    }
    if (a->attempts >= a->max_attempts) {
        char *why = ggi_asprintf("failed all %d attempt(s); last: %s", a->attempts,
                                 last_reason ? last_reason : "no reason recorded");
        end_active(s, a, GGI_ST_FAILED, why);
        free(why);
        return;
    }
    if (a->wall_s > 0 && a->started_wall > 0 && ggi_wall_s() - a->started_wall > a->wall_s) {
        char *why = ggi_asprintf("wall budget of %g s spent after %d attempt(s); last: %s",
                                 a->wall_s, a->attempts, last_reason ? last_reason : "-");
        end_active(s, a, GGI_ST_FAILED, why);
        free(why);
    }
}

static void claim(sched *s)
{
    int want = s->limit - s->n_active;
    if (want <= 0 || !s->may_have_queued)
        return;
    if (txn(s) != GG_OK) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "claiming tasks: %s", gg_error_last());
        return;
    }
    ggi_task_row *rows = NULL;
    int n = 0;
    if (ggi_store_tasks_claim(s->db, want, ggi_wall_s(), &rows, &n) != GG_OK) {
        ggi_log(&s->o->log, GG_LOG_ERROR, "claiming tasks: %s", gg_error_last());
        return;
    }
    if (n < want)
        s->may_have_queued = 0;
    for (int i = 0; i < n; i++) {
        ggi_task_row *row = &rows[i];
        active *a = calloc(1, sizeof *a);
        ggi_task *t = NULL;
        cJSON *spec = cJSON_Parse(row->spec);
        int rc = (a && spec) ? ggi_task_from_json(spec, &t) : GG_ENOMEM;
        if (rc != GG_OK) {
            /* A row this library cannot read any more ends as an error, not a crash. */
            finish_task(s, row->seq, row->task_id, GGI_ST_ERROR,
                        "stored task cannot be read by this version", row->started_at);
            free(a);
            cJSON_Delete(spec);
            ggi_task_free(t);
            continue;
        }
        a->seq = row->seq;
        a->task_id = row->task_id;
        row->task_id = NULL;
        a->spec = spec;
        a->priority = row->priority;
        a->max_attempts = t->max_attempts > 0 ? t->max_attempts : (int)s->o->max_attempts;
        a->wall_s = t->wall_s;
        a->started_wall = row->started_at;
        a->feedback = cJSON_CreateArray();
        ggi_task_free(t);
        a->next = s->tasks;
        s->tasks = a;
        s->n_active++;
        if (row->attempts > 0) {
            resume_ctx r = { a, 0, NULL };
            if (ggi_store_attempts_each(s->db, a->seq, resume_attempt, &r) != GG_OK)
                ggi_log(&s->o->log, GG_LOG_ERROR, "resuming '%s': %s", a->task_id,
                        gg_error_last());
            ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' resumes after attempt %d",
                    a->task_id, a->attempts);
            decide(s, a, r.last_passed, r.last_reason);
            free(r.last_reason);
        }
    }
    for (int i = 0; i < n; i++)
        ggi_store_task_row_free(&rows[i]);
    free(rows);
}

static active *next_runnable(sched *s, double now)
{
    active *best = NULL;
    for (active *a = s->tasks; a; a = a->next) {
        if (a->inflight || a->cancelled || a->not_before_ms > now)
            continue;
        if (!best || a->priority > best->priority ||
            (a->priority == best->priority && a->seq < best->seq))
            best = a;
    }
    return best;
}

static void dispatch(sched *s)
{
    gg_orchestrator_t *o = s->o;
    double now = ggi_now_ms();
    while (s->n_idle > 0) {
        active *a = next_runnable(s, now);
        if (!a)
            return;
        int n = a->attempts + 1;
        cJSON *job = cJSON_CreateObject();
        if (!job)
            return;
        cJSON_AddStringToObject(job, "t", "job");
        cJSON_AddNumberToObject(job, "seq", (double)a->seq);
        cJSON_AddNumberToObject(job, "n", n);
        cJSON_AddItemReferenceToObject(job, "task", a->spec);
        cJSON_AddItemReferenceToObject(job, "feedback", a->feedback);
        char *text = ggi_json_print(job);
        cJSON_Delete(job);
        if (!text)
            return;
        identity *w = &s->idle[--s->n_idle];
        int rc = o->transport.vt.hub_send(o->hub, w->id, w->len, text, strlen(text));
        free(text);
        if (rc != GG_OK) {
            ggi_log(&o->log, GG_LOG_WARN, "cannot send a job to a worker: %s", gg_error_last());
            continue; /* that worker is gone; try the task on another */
        }
        a->inflight = 1;
        cJSON *ev = event_new(n == 1 ? "task.started" : "attempt.started", a->task_id);
        if (ev) {
            cJSON_AddNumberToObject(ev, "attempt", n);
            emit(s, a->seq, ev);
        }
    }
}

static active *find_active(sched *s, int64_t seq)
{
    for (active *a = s->tasks; a; a = a->next)
        if (a->seq == seq)
            return a;
    return NULL;
}

static void add_idle(sched *s, const gg_transport_msg *msg)
{
    if (s->n_idle >= s->o->n_workers)
        return;
    identity *w = &s->idle[s->n_idle++];
    memcpy(w->id, msg->peer, msg->peer_len);
    w->len = msg->peer_len;
}

static void on_result(sched *s, const cJSON *m)
{
    gg_orchestrator_t *o = s->o;
    int64_t seq = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "seq"));
    int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "n"));
    const cJSON *rec = cJSON_GetObjectItem(m, "record");
    active *a = find_active(s, seq);
    if (!a || !a->inflight || n != a->attempts + 1 || !cJSON_IsObject(rec)) {
        ggi_log(&o->log, GG_LOG_DEBUG, "ignoring a stale result (task %lld, attempt %d)",
                (long long)seq, n);
        return;
    }
    a->inflight = 0;
    if (a->cancelled) {
        end_active(s, a, GGI_ST_CANCELLED, "cancelled");
        return;
    }
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "reason"));
    const cJSON *infra = cJSON_GetObjectItem(rec, "infra");
    if (cJSON_IsObject(infra)) {
        const char *stage = cJSON_GetStringValue(cJSON_GetObjectItem(infra, "stage"));
        const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(infra, "message"));
        int retry = cJSON_IsTrue(cJSON_GetObjectItem(infra, "retry"));
        a->infra_failures++;
        if (retry && a->infra_failures <= GGI_INFRA_RETRIES && !atomic_load(&o->stopping)) {
            double backoff = GGI_INFRA_BACKOFF_MS * (double)(1u << (a->infra_failures - 1));
            backoff *= 0.5 + (double)rand() / RAND_MAX; /* jitter */
            a->not_before_ms = ggi_now_ms() + backoff;
            ggi_log(&o->log, GG_LOG_WARN, "task '%s': %s failed (%s); retry %d in %.0f ms",
                    a->task_id, stage ? stage : "?", msg ? msg : "?", a->infra_failures,
                    backoff);
            return;
        }
        if (atomic_load(&o->stopping))
            return; /* interrupted by shutdown: the task stays unfinished and resumes */
        char *why = ggi_asprintf("%s: %s", stage ? stage : "infrastructure", msg ? msg : "?");
        end_active(s, a, GGI_ST_ERROR, why);
        free(why);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItem(rec, "exhausted"))) {
        if (a->attempts == 0) {
            end_active(s, a, GGI_ST_ERROR, reason ? reason : "the generator gave no code");
        } else {
            const cJSON *last = cJSON_GetArrayItem(a->feedback,
                                                   cJSON_GetArraySize(a->feedback) - 1);
            const char *lr = cJSON_GetStringValue(cJSON_GetObjectItem(last, "reason"));
            char *why = ggi_asprintf("the generator has nothing more after %d attempt(s); "
                                     "last: %s", a->attempts, lr ? lr : "-");
            end_active(s, a, GGI_ST_FAILED, why);
            free(why);
        }
        return;
    }
    int passed = cJSON_IsTrue(cJSON_GetObjectItem(rec, "passed"));
    char *text = ggi_json_print(rec);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "code"));
    if (!text || txn(s) != GG_OK ||
        ggi_store_attempt_insert(s->db, a->seq, n, code, passed, text, ggi_wall_s()) != GG_OK) {
        ggi_log(&o->log, GG_LOG_ERROR, "cannot record attempt %d of '%s': %s", n, a->task_id,
                gg_error_last());
        free(text);
        a->not_before_ms = ggi_now_ms() + 1000; /* try the attempt again later */
        return;
    }
    free(text);
    a->attempts = n;
    a->infra_failures = 0;
    cJSON *ev = event_new("attempt.finished", a->task_id);
    if (ev) {
        cJSON_AddNumberToObject(ev, "attempt", n);
        cJSON_AddBoolToObject(ev, "passed", passed);
        ggi_json_add_str(ev, "reason", reason);
        const cJSON *d = cJSON_GetObjectItem(rec, "durations");
        cJSON_AddNumberToObject(ev, "duration_ms",
                                cJSON_GetNumberValue(cJSON_GetObjectItem(d, "total_ms")));
        emit(s, a->seq, ev);
    }
    add_feedback(a, n, rec);
    decide(s, a, passed, reason);
}

static void on_cancel(sched *s, const cJSON *m)
{
    int64_t seq = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "seq"));
    const char *task_id = cJSON_GetStringValue(cJSON_GetObjectItem(m, "task_id"));
    active *a = find_active(s, seq);
    if (a) {
        if (a->inflight)
            a->cancelled = 1; /* ends when its attempt returns */
        else
            end_active(s, a, GGI_ST_CANCELLED, "cancelled");
        return;
    }
    if (!task_id)
        return;
    ggi_task_row row;
    memset(&row, 0, sizeof row);
    if (ggi_store_task_get(s->db, task_id, &row) == GG_OK &&
        strcmp(row.status, GGI_ST_QUEUED) == 0)
        finish_task(s, row.seq, row.task_id, GGI_ST_CANCELLED, "cancelled", row.started_at);
    ggi_store_task_row_free(&row);
}

static void on_message(sched *s, const gg_transport_msg *msg)
{
    cJSON *m = NULL;
    if (ggi_json_parse(msg->data, msg->len, &m) != GG_OK) {
        ggi_log(&s->o->log, GG_LOG_WARN, "dropping a malformed message: %s", gg_error_last());
        return;
    }
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(m, "t"));
    if (!t) {
        ggi_log(&s->o->log, GG_LOG_WARN, "dropping a message without a type");
    } else if (strcmp(t, "ready") == 0) {
        add_idle(s, msg);
    } else if (strcmp(t, "result") == 0) {
        add_idle(s, msg);
        on_result(s, m);
    } else if (strcmp(t, "wake") == 0) {
        atomic_store(&s->o->wake_pending, 0);
        s->may_have_queued = 1;
    } else if (strcmp(t, "cancel") == 0) {
        on_cancel(s, m);
    } else {
        ggi_log(&s->o->log, GG_LOG_WARN, "dropping a message of unknown type '%s'", t);
    }
    cJSON_Delete(m);
}

static int next_timeout(sched *s)
{
    double now = ggi_now_ms(), t = POLL_MS;
    if (s->n_idle == 0)
        return POLL_MS;
    for (active *a = s->tasks; a; a = a->next)
        if (!a->inflight && !a->cancelled && a->not_before_ms - now < t)
            t = a->not_before_ms - now;
    return t < 0 ? 0 : (int)t + 1;
}

/* On shutdown: unfinished tasks go back to the queue, to resume on the next start. */
static void requeue_all(sched *s)
{
    if (!s->tasks)
        return;
    if (txn(s) == GG_OK) {
        for (active *a = s->tasks; a; a = a->next)
            ggi_store_task_requeue(s->db, a->seq);
    }
    flush(s);
    while (s->tasks)
        remove_active(s, s->tasks);
}

void *ggi_scheduler_main(void *arg)
{
    gg_orchestrator_t *o = arg;
    sched s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.db = o->sched_store;
    s.limit = (int)o->n_workers * 2;
    s.idle = calloc(o->n_workers, sizeof *s.idle);
    s.events = cJSON_CreateArray();
    s.may_have_queued = 1;
    if (!s.idle || !s.events) {
        ggi_log(&o->log, GG_LOG_ERROR, "scheduler: out of memory");
        free(s.idle);
        cJSON_Delete(s.events);
        return NULL;
    }
    while (!atomic_load(&o->stopping)) {
        claim(&s);
        dispatch(&s);
        flush(&s);
        gg_transport_msg msg;
        int rc = o->transport.vt.hub_recv(o->hub, next_timeout(&s), &msg);
        for (int i = 0; rc == GG_OK && i < BURST; i++) {
            on_message(&s, &msg);
            rc = o->transport.vt.hub_recv(o->hub, 0, &msg);
        }
        if (rc != GG_OK && rc != GG_ETIMEDOUT) {
            ggi_log(&o->log, GG_LOG_ERROR, "scheduler: %s", gg_error_last());
            ggi_sleep_ms(POLL_MS);
        }
    }
    flush(&s);
    requeue_all(&s);
    free(s.idle);
    cJSON_Delete(s.events);
    return NULL;
}

/* ---------------------------------------------------------------- workers */

void *ggi_worker_main(void *arg)
{
    gg_orchestrator_t *o = arg;
    void *peer = NULL;
    if (o->transport.vt.peer_open(o->transport.self, o->endpoint, &peer) != GG_OK) {
        ggi_log(&o->log, GG_LOG_ERROR, "worker: %s", gg_error_last());
        return NULL;
    }
    ggi_attempt_env env = { o->generator, o->executor, o->retriever, &o->runtimes, &o->log };
    const char *ready = "{\"t\":\"ready\"}";
    if (o->transport.vt.peer_send(peer, ready, strlen(ready)) != GG_OK)
        ggi_log(&o->log, GG_LOG_ERROR, "worker: %s", gg_error_last());
    while (!atomic_load(&o->stopping)) {
        gg_transport_msg msg;
        int rc = o->transport.vt.peer_recv(peer, POLL_MS, &msg);
        if (rc == GG_ETIMEDOUT)
            continue;
        if (rc != GG_OK) {
            ggi_log(&o->log, GG_LOG_ERROR, "worker: %s", gg_error_last());
            ggi_sleep_ms(POLL_MS);
            continue;
        }
        cJSON *job = NULL;
        if (ggi_json_parse(msg.data, msg.len, &job) != GG_OK) {
            ggi_log(&o->log, GG_LOG_WARN, "worker: dropping a malformed job: %s",
                    gg_error_last());
            continue;
        }
        cJSON *record = NULL;
        cJSON *reply = cJSON_CreateObject();
        if (ggi_attempt_run(&env, job, &record) != GG_OK || !reply) {
            ggi_log(&o->log, GG_LOG_ERROR, "worker: %s", gg_error_last());
            record = cJSON_CreateObject();
            cJSON *infra = cJSON_AddObjectToObject(record, "infra");
            cJSON_AddStringToObject(infra, "stage", "worker");
            cJSON_AddStringToObject(infra, "message", gg_error_last());
            cJSON_AddBoolToObject(infra, "retry", 0);
        }
        cJSON_AddStringToObject(reply, "t", "result");
        cJSON_AddItemToObject(reply, "seq", cJSON_Duplicate(cJSON_GetObjectItem(job, "seq"), 1));
        cJSON_AddItemToObject(reply, "n", cJSON_Duplicate(cJSON_GetObjectItem(job, "n"), 1));
        cJSON_AddItemToObject(reply, "record", record);
        char *text = ggi_json_print(reply);
        cJSON_Delete(reply);
        cJSON_Delete(job);
        if (!text || o->transport.vt.peer_send(peer, text, strlen(text)) != GG_OK)
            ggi_log(&o->log, GG_LOG_ERROR, "worker: cannot send a result: %s", gg_error_last());
        free(text);
    }
    o->transport.vt.close(peer);
    return NULL;
}
