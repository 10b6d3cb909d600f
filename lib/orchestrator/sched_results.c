/*
 * sched_results.c - results: an attempt that comes back under its lease.
 *
 * A result counts only from the node its lease was given to, for the attempt the lease was
 * for; anything else is stale or foreign and is counted and dropped. A counted result either
 * is an infrastructure fault (retried with backoff, or the end of the task), or an attempt:
 * recorded in the batch with its node and lease, then handed to the Task Monitor.
 *
 * Cut here because the lease check is the grid's exactly-once guarantee and deserves a file a
 * reviewer can read alone.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

/* The attempt's record as stored: the worker's (its text as it came, rec_text, when there is
 * one, else rec printed), then the node and lease it ran on (not for the embedded worker)
 * and the monitor's "stuck", appended as text (adding them to the tree first cost more than
 * printing it). A malloc'd text for the attempt's op, or NULL on failure. */
static char *record_text(const cJSON *rec, const char *rec_text, size_t rec_len,
                         const char *node, const char *lease, int stuck)
{
    ggi_buf buf = GGI_BUF_INIT, *b = &buf;
    int rc = ggi_buf_reserve(b, rec_len + 128); /* one block, no regrowth, in the usual case */
    if (!rc)
        rc = rec_text ? ggi_buf_append(b, rec_text, rec_len) : ggi_json_write(b, rec);
    if (rc || b->len < 2 || b->data[b->len - 1] != '}') {
        ggi_buf_free(b);
        return NULL;
    }
    b->len--; /* reopened */
    rc = b->len > 1 ? ggi_buf_append(b, ",", 1) : GG_OK;
    if (node) {
        rc = rc ? rc : ggi_buf_puts(b, "\"node\":");
        rc = rc ? rc : ggi_json_write_string(b, node);
        rc = rc ? rc : ggi_buf_puts(b, ",\"lease\":");
        rc = rc ? rc : ggi_json_write_string(b, lease);
        rc = rc ? rc : ggi_buf_append(b, ",", 1);
    }
    rc = rc ? rc : ggi_buf_puts(b, stuck ? "\"stuck\":true}" : "\"stuck\":false}");
    if (rc) {
        ggi_buf_free(b);
        return NULL;
    }
    return ggi_buf_steal(b);
}

/* Counts results from a peer that does not hold their lease (or never said hello as a
 * worker) and warns about them, at most once a second with how many were left unsaid. */
void ggi_sched_foreign_results(sched *s, int count, const char *who, const char *why)
{
    gg_orchestrator_t *o = s->o;
    atomic_fetch_add(&o->n_foreign, (unsigned long)count);
    double now = ggi_now_ms();
    if (s->foreign_warn_at > 0 && now - s->foreign_warn_at < FOREIGN_WARN_MS) {
        s->foreign_quiet += (unsigned long)count;
        return;
    }
    s->foreign_warn_at = now;
    ggi_log(&o->log, GG_LOG_WARN, "security: dropping %d result(s) from %s: %s (%lu more "
            "since the last warning)", count, who, why, s->foreign_quiet);
    s->foreign_quiet = 0;
}

/* An attempt that came back without an outcome (an infrastructure fault): retried after a
 * backoff while that may help, else the task ends as an error; interrupted by shutdown it
 * stays unfinished; its generation cut short for the run's budget, it ends for the budget. */
static void on_infra(sched *s, active *a, node *nd, int n, const cJSON *infra)
{
    gg_orchestrator_t *o = s->o;
    const char *stage = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(infra, "stage"));
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(infra, "message"));
    int retry = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(infra, "retry"));
    a->infra_failures++;
    if (nd)
        snprintf(a->avoid, sizeof a->avoid, "%s", nd->name);
    if (retry && a->infra_failures <= GGI_INFRA_RETRIES && !atomic_load(&o->stopping)) {
        double backoff = GGI_INFRA_BACKOFF_MS * (double)(1u << (a->infra_failures - 1));
        backoff *= 0.5 + (double)rand() / RAND_MAX; /* jitter */
        a->not_before_ms = ggi_now_ms() + backoff;
        s->backoff = 1;
        ggi_log(&o->log, GG_LOG_WARN, "task '%s': %s failed (%s); retry %d in %.0f ms",
                a->task_id, stage ? stage : "?", msg ? msg : "?", a->infra_failures,
                backoff);
        /* The job came back without an attempt: its job.dispatched is answered here. */
        cJSON *ev = ggi_sched_event_new("job.retried", a->task_id);
        if (ev) {
            cJSON_AddNumberToObject(ev, "attempt", n);
            if (nd)
                cJSON_AddStringToObject(ev, "node", nd->name);
            ggi_json_add_str(ev, "stage", stage);
            ggi_json_add_str(ev, "reason", msg);
            cJSON_AddNumberToObject(ev, "retry", a->infra_failures);
            cJSON_AddNumberToObject(ev, "backoff_ms", floor(backoff));
            ggi_sched_emit(s, a->seq, ev);
        }
        return;
    }
    if (atomic_load(&o->stopping))
        return; /* interrupted by shutdown: the task stays unfinished and resumes */
    if (a->gen_interrupted && ggi_sched_run_spent(s)) {
        ggi_sched_end_for_run_budget(s, a); /* its generation was cut short for it */
        return;
    }
    char *why = ggi_asprintf("%s: %s", stage ? stage : "infrastructure", msg ? msg : "?");
    ggi_sched_end_active(s, a, GGI_ST_ERROR, GGI_END_INFRA, why);
    free(why);
}

/* One result from node from (which authenticated with from_key, "" without CURVE): attempt
 * n of task seq under lease_text, its record rec (and, when it came as the worker wrote it,
 * that text: rec_text, rec_len bytes). It counts only from the node the lease was given to:
 * the same connection, that said hello with the same key. */
void ggi_sched_on_result(sched *s, node *from, const char *from_key, int64_t seq, int n,
                         const char *lease_text, cJSON *rec, const char *rec_text,
                         size_t rec_len)
{
    gg_orchestrator_t *o = s->o;
    active *a = ggi_sched_find_active(s, seq);
    if (!a || !a->inflight || !ggi_sched_lease_is(a->lease, lease_text) || n != a->attempts + 1) {
        atomic_fetch_add(&o->n_stale, 1);
        ggi_log(&o->log, GG_LOG_INFO, "ignoring a stale result (task %lld, attempt %d, "
                "lease %s)", (long long)seq, n, lease_text ? lease_text : "?");
        ggi_sched_release_carried(s, from, lease_text);
        return;
    }
    if (a->on != from || strcmp(from->key, from_key) != 0) {
        char who[GGP_MAX_NAME + 32];
        snprintf(who, sizeof who, "worker '%s'", from->name);
        ggi_sched_foreign_results(s, 1, who, a->on != from ? "the lease was given to another worker"
                                                 : "its key is not the one it said hello with");
        ggi_sched_release_carried(s, from, lease_text);
        return;
    }
    node *nd = a->on;
    nd->delivered = 1;
    a->inflight = 0;
    a->lease[0] = '\0';
    a->on = NULL;
    if (nd)
        nd->busy--;
    s->dispatch_due = 1;
    ggi_metrics_attempt(&o->metrics, rec);
    if (a->cancelled) {
        ggi_sched_end_active(s, a, GGI_ST_CANCELLED, GGI_END_CANCELLED, "cancelled");
        return;
    }
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "reason"));
    const cJSON *infra = cJSON_GetObjectItemCaseSensitive(rec, "infra");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(rec, "durations");
    /* A generator fault belongs to the model endpoint, not to the node that asked it: it
     * neither lowers the node's score nor counts towards its quarantine. */
    const char *infra_stage =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(infra, "stage"));
    if (nd && !(infra_stage && strcmp(infra_stage, "generate") == 0))
        ggi_sched_learn(s, nd, a->language, !cJSON_IsObject(infra),
              cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "total_ms")));
    if (cJSON_IsObject(infra)) {
        on_infra(s, a, nd, n, infra);
        return;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "exhausted"))) {
        if (a->attempts == 0) {
            ggi_sched_end_active(s, a, GGI_ST_ERROR, GGI_END_NO_CODE,
                                 reason ? reason : "the generator gave no code");
        } else {
            const char *lr = a->last_reason;
            char *why = ggi_asprintf("the generator has nothing more after %d attempt(s); "
                                     "last: %s", a->attempts, lr ? lr : "-");
            ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_FAILED_TESTS, why);
            free(why);
        }
        return;
    }
    int passed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed"));
    char why[96] = "";
    int stuck = ggi_sched_repeats(a, rec, why, sizeof why);
    if (cJSON_GetObjectItemCaseSensitive(rec, "stuck")) {
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "stuck"); /* the monitor's word */
        rec_text = NULL; /* printed again without it */
    }
    char *text = record_text(rec, rec_text, rec_len,
                             nd && strcmp(nd->name, "local") != 0 ? nd->name : NULL, lease_text,
                             stuck);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "code"));
    /* A passing attempt ends the task in this same transaction, and that end stores the
     * attempt count with the result: one task update, not two. */
    ggi_op op = { .kind = GGI_OP_ATTEMPT, .seq = a->seq, .n = n, .passed = passed,
                  .count = !passed, .ts = ggi_wall_s(), .code = code ? ggi_strdup(code) : NULL,
                  .text = text };
    if (ggi_sched_add_op(s, &op, op.text && (!code || op.code), "an attempt") != GG_OK) {
        ggi_log(&o->log, GG_LOG_ERROR, "attempt %d of '%s' is tried again later", n, a->task_id);
        a->not_before_ms = ggi_now_ms() + 1000; /* try the attempt again later */
        s->backoff = 1;
        return;
    }
    a->attempts = n;
    a->infra_failures = 0;
    cJSON *ev =
        ggi_sched_event_wanted(s, "attempt.finished")
            ? ggi_sched_event_new("attempt.finished", a->task_id)
            : NULL;
    if (ev) {
        cJSON_AddNumberToObject(ev, "attempt", n);
        cJSON_AddBoolToObject(ev, "passed", passed);
        ggi_json_add_str(ev, "reason", reason);
        cJSON_AddNumberToObject(ev, "duration_ms",
                                cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "total_ms")));
        ggi_sched_emit(s, a->seq, ev);
    }
    s->tokens += ggi_sched_record_tokens(rec);
    ggi_sched_monitor(s, a, n, rec, stuck, why, 1);
    ggi_sched_decide(s, a, passed, reason);
    ggi_sched_enforce_run_budget(s);
}
