/*
 * sched_tasks.c - the active set: the claimed tasks the scheduler holds in memory.
 *
 * A claimed task becomes an active entry (add_active, which also resumes a task from its
 * recorded attempts), is found by seq through a hash index (find_active), and leaves the set
 * by ending (end_active, finish_task). Submitters are numbered here for the fair turns of
 * dispatch. Cut here because every other concern (dispatch, results, the monitor, cancel)
 * works on these entries and none of them should know how the set is kept.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

static void active_free(active *a)
{
    if (!a)
        return;
    cJSON_Delete(a->needs); /* task_id and spec_text live in a's block */
    free(a->language);
    cJSON_Delete(a->feedback);
    free(a->codes);
    free(a->last_sig);
    free(a->last_reason);
    cJSON_Delete(a->best_fb);
    cJSON_Delete(a->strategy);
    cJSON_Delete(a->demote);
    free(a);
}

/* Ends a task: claimed (running; started_at its start) or not (a queued task cancelled): its
 * end goes into the batch being gathered, with the task.finished event; it does not touch
 * the active list (ggi_sched_end_active does). attempts: the task's attempt count to store
 * with its end, or -1 to leave it. The result is not stored as text: the task's columns and
 * its attempts hold it, and reading the task builds it (ggi_store_task_get). It is read back
 * after the batch's commit, only for the clients waiting for the task and for the learner
 * (complete_batch). */
void ggi_sched_finish_task(sched *s, int64_t seq, const char *task_id, const char *status,
                           const char *cause, const char *reason, int attempts,
                           double started_at, int claimed)
{
    pending *pd = &s->pend[s->cur];
    /* Only tasks that ran their tests teach the retriever. */
    int learns =
        s->learner && (strcmp(status, GGI_ST_PASSED) == 0 || strcmp(status, GGI_ST_FAILED) == 0);
    char *id = ggi_strdup(task_id);
    if (!id || ggi_sched_push_ended(pd, id, learns) != GG_OK) {
        free(id);
        ggi_log(&s->o->log, GG_LOG_ERROR, "cannot record the end of task '%s': out of memory",
                task_id);
        return;
    }
    ggi_op op = { .kind = GGI_OP_FINISH, .seq = seq, .status = status, .cause = cause,
                  .count = attempts,
                  .ts = ggi_wall_s(), .a = started_at, .n = claimed,
                  .text = reason ? ggi_strdup(reason) : NULL };
    if (ggi_sched_add_op(s, &op, !reason || op.text, "the end of a task") != GG_OK) {
        free(pd->ended[--pd->n_ended].task_id);
        return;
    }
    atomic_fetch_add(&s->o->ends_unheard, 1);
    ggi_metrics_task_end(&s->o->metrics, cause);
    if (s->summary)
        ggi_sched_summary_note(s, task_id, status, attempts > 0 ? attempts : 0, reason);
    cJSON *ev = ggi_sched_event_wanted(s, "task.finished")
                    ? ggi_sched_event_new("task.finished", task_id)
                    : NULL;
    if (ev) {
        cJSON_AddStringToObject(ev, "status", status);
        cJSON_AddNumberToObject(ev, "attempts", attempts > 0 ? attempts : 0);
        if (strcmp(status, GGI_ST_PASSED) == 0 && attempts > 0)
            cJSON_AddNumberToObject(ev, "passed_attempt", attempts);
        else
            cJSON_AddNullToObject(ev, "passed_attempt");
        ggi_json_add_str(ev, "reason", reason);
        ggi_json_add_str(ev, "end_cause", cause);
        ggi_sched_emit(s, seq, ev);
    }
    ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' %s%s%s", task_id, status, reason ? ": " : "",
            reason ? reason : "");
    pd->finished++;
}

static unsigned seq_bucket(const sched *s, int64_t seq)
{
    uint64_t h = (uint64_t)seq * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 32) & (s->n_buckets - 1);
}

/* Keeps the buckets at least as many as the active tasks (grown by doubling; when memory
 * runs out the chains only get longer). */
static void grow_buckets(sched *s)
{
    if (s->by_seq && (unsigned)s->n_active < s->n_buckets)
        return;
    unsigned n = s->n_buckets ? s->n_buckets * 2 : 1024;
    active **b = calloc(n, sizeof *b);
    if (!b)
        return;
    free(s->by_seq);
    s->by_seq = b;
    s->n_buckets = n;
    for (active *a = s->tasks; a; a = a->next) { /* rebuilt from the list */
        unsigned k = seq_bucket(s, a->seq);
        a->hnext = b[k];
        b[k] = a;
    }
}

/* Puts a in the active list and in the index by seq. */
static void link_active(sched *s, active *a)
{
    grow_buckets(s);
    a->prev = NULL;
    a->next = s->tasks;
    if (s->tasks)
        s->tasks->prev = a;
    s->tasks = a;
    s->n_active++;
    if (s->by_seq) {
        unsigned k = seq_bucket(s, a->seq);
        a->hnext = s->by_seq[k];
        s->by_seq[k] = a;
    }
}

void ggi_sched_remove_active(sched *s, active *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else if (s->tasks == a)
        s->tasks = a->next;
    if (a->next)
        a->next->prev = a->prev;
    s->n_active--;
    if (s->by_seq) {
        for (active **p = &s->by_seq[seq_bucket(s, a->seq)]; *p; p = &(*p)->hnext) {
            if (*p == a) {
                *p = a->hnext;
                break;
            }
        }
    }
    active_free(a);
}

void ggi_sched_end_active(sched *s, active *a, const char *status, const char *cause,
                          const char *reason)
{
    ggi_sched_abort_job(s, a, cause); /* its job, when out on a remote node, stops there */
    ggi_sched_finish_task(s, a->seq, a->task_id, status, cause, reason, a->attempts,
                          a->started_wall, 1);
    ggi_sched_remove_active(s, a);
}

static int submitter_index(sched *s, const char *name)
{
    for (int i = 0; i < s->n_subs; i++)
        if (strcmp(s->subs[i].name, name) == 0)
            return i;
    if (s->n_subs >= MAX_SUBMITTERS * 4) {
        /* Forget the ones with no active task; indexes of active tasks stay valid. */
        return 0;
    }
    submitter *p = realloc(s->subs, (size_t)(s->n_subs + 1) * sizeof *p);
    if (!p)
        return 0;
    s->subs = p;
    p[s->n_subs].name = ggi_strdup(name);
    unsigned long least = 0;
    for (int i = 0; i < s->n_subs; i++)
        if (i == 0 || s->subs[i].served < least)
            least = s->subs[i].served;
    p[s->n_subs].served = least; /* a newcomer starts level with the least served */
    if (!p[s->n_subs].name)
        return 0;
    return s->n_subs++;
}

/* What the scheduler needs of a task: its stored language and needs, or, for a row stored
 * without them, the same read from its spec. */
static int read_needs(const ggi_task_row *row, char **language, cJSON **needs)
{
    *language = NULL;
    *needs = NULL;
    char *text = NULL;
    ggi_task *t = NULL;
    int rc = GG_OK;
    if (row->language) {
        *language = ggi_strdup(row->language);
    } else {
        cJSON *spec = cJSON_Parse(row->spec);
        rc = spec ? ggi_task_from_json(spec, &t) : GG_EINVAL;
        cJSON_Delete(spec);
        if (!rc)
            rc = ggi_task_needs(t, &text);
        if (!rc)
            *language = ggi_strdup(t->language);
        ggi_task_free(t);
    }
    const char *ggi_sched_needs_text = row->language ? row->needs : text;
    if (!rc && ggi_sched_needs_text && !(*needs = cJSON_Parse(ggi_sched_needs_text)))
        rc = GG_EINVAL;
    if (!rc && !*language)
        rc = GG_ENOMEM;
    free(text);
    if (rc) {
        free(*language);
        *language = NULL;
        cJSON_Delete(*needs);
        *needs = NULL;
    }
    return rc;
}

static double needs_number(const cJSON *needs, const char *key)
{
    double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(needs, key));
    return v > 0 ? v : 0; /* absent (NaN) or not positive: none */
}

/* Makes a claimed task active; what it keeps of the row (id, spec) is copied, in one block
 * with the task. */
void ggi_sched_add_active(sched *s, const ggi_task_row *row, const char *submitter_name)
{
    size_t id_len = strlen(row->task_id) + 1, spec_len = row->spec ? strlen(row->spec) + 1 : 0;
    active *a = row->spec ? calloc(1, sizeof *a + id_len + spec_len) : NULL;
    int rc = a ? read_needs(row, &a->language, &a->needs) : GG_ENOMEM;
    if (rc != GG_OK) {
        /* A row this library cannot read any more ends as an error, not a crash. */
        ggi_sched_finish_task(s, row->seq, row->task_id, GGI_ST_ERROR, GGI_END_INVALID,
                    row->spec ? "stored task cannot be read by this version"
                              : "stored task has no spec", row->attempts, row->started_at, 1);
        free(a);
        return;
    }
    a->seq = row->seq;
    a->task_id = (char *)(a + 1);
    memcpy(a->task_id, row->task_id, id_len);
    a->spec_text = a->task_id + id_len;
    memcpy(a->spec_text, row->spec, spec_len);
    a->priority = row->priority;
    int max_attempts = (int)needs_number(a->needs, "max_attempts");
    a->max_attempts = max_attempts > 0 ? max_attempts : (int)s->o->max_attempts;
    a->wall_s = needs_number(a->needs, "wall_s");
    a->max_tokens = (long long)needs_number(a->needs, "tokens");
    a->started_wall = row->started_at;
    a->feedback = cJSON_CreateArray();
    a->sub = submitter_index(s, submitter_name);
    a->memory_mb = needs_number(a->needs, "memory_mb");
    a->gpus = (int)needs_number(a->needs, "gpus");
    a->labels = cJSON_GetObjectItemCaseSensitive(a->needs, "labels");
    a->isolation = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a->needs, "isolation"));
    a->requires = cJSON_GetObjectItemCaseSensitive(a->needs, "requires");
    link_active(s, a);
    s->dispatch_due = 1;
    if (row->attempts > 0) {
        resume_ctx r = { s, a, 0, NULL };
        if (ggi_store_attempts_each(s->db, a->seq, ggi_sched_resume_attempt, &r) != GG_OK)
            ggi_log(&s->o->log, GG_LOG_ERROR, "resuming '%s': %s", a->task_id, gg_error_last());
        ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' resumes after attempt %d", a->task_id,
                a->attempts);
        ggi_sched_decide(s, a, r.last_passed, r.last_reason);
        free(r.last_reason);
    } else if (ggi_sched_run_spent(s)) {
        ggi_sched_end_for_run_budget(s, a);
    }
}

active *ggi_sched_find_active(sched *s, int64_t seq)
{
    if (s->by_seq) {
        for (active *a = s->by_seq[seq_bucket(s, seq)]; a; a = a->hnext)
            if (a->seq == seq)
                return a;
        return NULL;
    }
    for (active *a = s->tasks; a; a = a->next) /* no index (out of memory): by the list */
        if (a->seq == seq)
            return a;
    return NULL;
}
