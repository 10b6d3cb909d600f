/*
 * sched_monitor.c - the Task Monitor: feedback, stuck loops, budgets and what happens next.
 *
 * After each attempt it counts the generator's tokens against the task's budget.tokens and
 * the run's GRYPHGEN_MAX_TOKENS, and spots a stuck loop (the same code again, or the same
 * failure signature as the previous attempt), after which the next job carries a changed
 * strategy and the feedback rolls back to the best attempt. decide then ends the task or
 * leaves it for another attempt.
 *
 * Cut here because this is the policy (what an attempt means for the task), apart from the
 * mechanics of receiving results (sched_results.c) and of sending jobs (sched_dispatch.c);
 * a resumed task replays its stored attempts through the same code (resume_attempt).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../retrieval/credit.h"
#include "sched.h"

/* How good an attempt is, to pick the one whose code a failed task keeps. */
static int attempt_score(const cJSON *rec)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed")))
        return 3;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(rec, "execution");
    if (ex && cJSON_IsObject(ex))
        return 2;
    return 1;
}

/* Generator tokens an attempt used, from its record's usage (total_tokens, else prompt +
 * completion); 0 when the generator reported none. */
long long ggi_sched_record_tokens(const cJSON *rec)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(rec, "usage");
    if (!cJSON_IsObject(u))
        return 0;
    double t = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
    if (isnan(t)) {
        double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
        double c = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
        t = (isnan(p) ? 0 : p) + (isnan(c) ? 0 : c);
    }
    if (!isfinite(t) || t <= 0)
        return 0;
    return t > 1e15 ? (long long)1e15 : (long long)t; /* bounded: sums cannot overflow */
}

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

/* What the next attempt should know about this one. */
static cJSON *feedback_entry(int n, const cJSON *rec)
{
    cJSON *fb = cJSON_CreateObject();
    if (!fb)
        return NULL;
    cJSON_AddNumberToObject(fb, "attempt", n);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "code");
    ggi_json_add_str(fb, "code", cJSON_GetStringValue(v));
    ggi_json_add_str(fb, "reason", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "reason")));
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(rec, "analysis");
    const cJSON *findings = an ? cJSON_GetObjectItemCaseSensitive(an, "findings") : NULL;
    cJSON_AddItemToObject(fb, "findings", findings ? cJSON_Duplicate(findings, 1)
                                                   : cJSON_CreateArray());
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(rec, "execution");
    if (cJSON_IsObject(ex)) {
        ggi_json_add_str(fb, "stderr_tail",
                         tail(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ex, "stderr")),
                              GGI_FEEDBACK_TAIL));
        ggi_json_add_str(fb, "stdout_tail",
                         tail(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ex, "stdout")),
                              GGI_FEEDBACK_TAIL));
    }
    return fb;
}

/* Adds an entry to the feedback the next job carries, keeping the last few. */
static void add_feedback(active *a, cJSON *fb)
{
    if (!fb)
        return;
    if (!cJSON_AddItemToArray(a->feedback, fb)) {
        cJSON_Delete(fb);
        return;
    }
    while (cJSON_GetArraySize(a->feedback) > GGI_FEEDBACK_ATTEMPTS)
        cJSON_DeleteItemFromArray(a->feedback, 0);
}

/* Whether a failed attempt repeats an earlier one: the same code as any earlier attempt of
 * the task, or the same failure signature as the previous attempt. why gets which. */
int ggi_sched_repeats(const active *a, const cJSON *rec, char *why, size_t cap)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed")))
        return 0;
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "code"));
    if (code) {
        char h[17];
        ggi_hash_hex(code, strlen(code), h);
        for (int i = 0; i < a->n_codes; i++) {
            if (strcmp(a->codes[i].hash, h) == 0) {
                snprintf(why, cap, "same code as attempt %d", a->codes[i].n);
                return 1;
            }
        }
    }
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "signature"));
    if (sig && *sig && a->last_sig && strcmp(sig, a->last_sig) == 0) {
        snprintf(why, cap, "same failure as attempt %d", a->last_sig_n);
        return 1;
    }
    return 0;
}

/* The strategy of the job after the k-th stuck loop: a higher temperature each time. */
static cJSON *strategy_new(int k, const char *why, int rollback_to)
{
    double temp = GGI_STUCK_TEMPERATURE + GGI_STUCK_TEMPERATURE_STEP * (k - 1);
    if (temp > GGI_STUCK_TEMPERATURE_MAX)
        temp = GGI_STUCK_TEMPERATURE_MAX;
    cJSON *st = cJSON_CreateObject();
    if (!st)
        return NULL;
    if (ggi_json_add_num(st, "temperature", temp) || ggi_json_add_str(st, "reason", why) ||
        ggi_json_add_num(st, "rollback_to", rollback_to)) {
        cJSON_Delete(st);
        return NULL;
    }
    return st;
}

/* Takes a recorded attempt into the task's state: tokens, code seen, last failure, best
 * attempt and feedback. When it was stuck, the feedback rolls back to the best attempt's and
 * the next job gets a changed strategy; otherwise the next job has none. live: recorded just
 * now (events are emitted), not replayed on resume. */
void ggi_sched_monitor(sched *s, active *a, int n, const cJSON *rec, int stuck, const char *why,
                       int live)
{
    a->tokens += ggi_sched_record_tokens(rec);
    if (!stuck && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed"))) {
        /* A passing attempt ends the task (decide): no next attempt reads what follows. */
        cJSON_Delete(a->strategy);
        a->strategy = NULL;
        return;
    }
    /* Retries as experiments (docs/retrieval.md): what led this failed attempt goes last in
     * the next one's context, so its outcome says something about the other references.
     * Kept for the task's life, through the monitor's roll-backs. */
    if (!a->demote)
        a->demote = cJSON_CreateArray();
    ggi_credit_leads(cJSON_GetObjectItemCaseSensitive(rec, "context_ids"),
                     cJSON_GetObjectItemCaseSensitive(rec, "cited"), a->demote);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "code"));
    char h[17] = "";
    if (code)
        ggi_hash_hex(code, strlen(code), h);
    for (int i = 0; code && i < a->n_codes; i++)
        if (strcmp(a->codes[i].hash, h) == 0)
            code = NULL; /* seen before: its first attempt is the one to name */
    if (code) {
        if (a->n_codes == a->cap_codes) {
            int cap = a->cap_codes ? a->cap_codes * 2 : 8;
            code_seen *p = realloc(a->codes, (size_t)cap * sizeof *p);
            if (p) {
                a->codes = p;
                a->cap_codes = cap;
            }
        }
        if (a->n_codes < a->cap_codes) {
            memcpy(a->codes[a->n_codes].hash, h, sizeof h);
            a->codes[a->n_codes++].n = n;
        }
    }
    const char *sig = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "signature"));
    if (!sig || !a->last_sig || strcmp(sig, a->last_sig) != 0) {
        free(a->last_sig);
        a->last_sig = sig && *sig ? ggi_strdup(sig) : NULL;
        a->last_sig_n = n;
    }
    free(a->last_reason);
    a->last_reason = ggi_strdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "reason")));
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed")) && !stuck) {
        /* A passing attempt ends the task (decide): no next attempt reads feedback. */
        cJSON_Delete(a->strategy);
        a->strategy = NULL;
        return;
    }
    cJSON *fb = feedback_entry(n, rec);
    int score = attempt_score(rec);
    if (score > a->best_score && fb) {
        cJSON *copy = cJSON_Duplicate(fb, 1);
        if (copy) {
            cJSON_Delete(a->best_fb);
            a->best_fb = copy;
            a->best_score = score;
            a->best_n = n;
        }
    }
    cJSON_Delete(a->strategy);
    a->strategy = NULL;
    if (!stuck) {
        add_feedback(a, fb);
        return;
    }
    cJSON_Delete(fb);
    a->stuck++;
    /* Roll back: the next attempt starts again from the best attempt's feedback. */
    cJSON *rolled = cJSON_CreateArray();
    cJSON *best = a->best_fb ? cJSON_Duplicate(a->best_fb, 1) : NULL;
    if (rolled && best && cJSON_AddItemToArray(rolled, best)) {
        cJSON_Delete(a->feedback);
        a->feedback = rolled;
    } else {
        cJSON_Delete(rolled);
        cJSON_Delete(best);
    }
    a->strategy = strategy_new(a->stuck, why, a->best_n ? a->best_n : n);
    if (!live)
        return;
    ggi_log(&s->o->log, GG_LOG_INFO, "task '%s' is stuck at attempt %d (%s); rolling back to "
            "attempt %d", a->task_id, n, why, a->best_n);
    cJSON *ev = ggi_sched_event_new("task.stuck", a->task_id);
    if (ev) {
        cJSON_AddNumberToObject(ev, "attempt", n);
        ggi_json_add_str(ev, "reason", why);
        if (a->strategy)
            cJSON_AddItemToObject(ev, "strategy", cJSON_Duplicate(a->strategy, 1));
        ggi_sched_emit(s, a->seq, ev);
    }
}

int ggi_sched_run_spent(const sched *s)
{
    return s->max_tokens > 0 && s->tokens >= s->max_tokens;
}

/* Ends a task that has no attempt in flight because the run's token budget is spent. */
void ggi_sched_end_for_run_budget(sched *s, active *a)
{
    char *why;
    if (a->attempts > 0)
        why = ggi_asprintf("run token budget of %lld (GRYPHGEN_MAX_TOKENS) spent after %d "
                           "attempt(s); last: %s", s->max_tokens, a->attempts,
                           a->last_reason ? a->last_reason : "-");
    else
        why = ggi_asprintf("run token budget of %lld (GRYPHGEN_MAX_TOKENS) spent before its "
                           "first attempt", s->max_tokens);
    ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_BUDGET_RUN_TOKENS,
                         why ? why : "run token budget spent");
    free(why);
}

/* Once the run's budget is spent, every task without an attempt in flight ends, and so does
 * one whose job is out on a remote node (aborted there); one in flight on the embedded
 * worker ends when its attempt returns, and a generation it is waiting for is cut short
 * (once). */
void ggi_sched_enforce_run_budget(sched *s)
{
    if (!ggi_sched_run_spent(s))
        return;
    active *a = s->tasks;
    while (a) {
        active *next = a->next;
        if (!a->inflight || ggi_sched_job_remote(a)) {
            ggi_sched_end_for_run_budget(s, a); /* a remote job is aborted */
        } else if (!a->gen_interrupted) {
            a->gen_interrupted = 1;
            ggi_orq_interrupt_generation(s->o, a->task_id);
        }
        a = next;
    }
}

int ggi_sched_resume_attempt(void *user, int n, int passed, const char *record_json)
{
    resume_ctx *r = user;
    cJSON *rec = cJSON_Parse(record_json);
    if (!rec)
        return ggi_error(GG_ESTORE, "attempt %d has an unreadable record", n);
    char why[96] = "";
    int stuck = ggi_sched_repeats(r->a, rec, why, sizeof why);
    ggi_sched_monitor(r->s, r->a, n, rec, stuck, why, 0);
    r->a->attempts = n;
    r->last_passed = passed;
    free(r->last_reason);
    r->last_reason = ggi_strdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "reason")));
    cJSON_Delete(rec);
    return GG_OK;
}

/* After an attempt was recorded (or on resume): end the task or leave it for the next one.
 * Returns 1 when the task ended (a is freed). */
int ggi_sched_decide(sched *s, active *a, int last_passed, const char *last_reason)
{
    if (last_passed) {
        ggi_sched_end_active(s, a, GGI_ST_PASSED, GGI_END_PASSED, NULL);
        return 1;
    }
    if (a->attempts >= a->max_attempts) {
        char *why = ggi_asprintf("failed all %d attempt(s); last: %s", a->attempts,
                                 last_reason ? last_reason : "no reason recorded");
        ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_BUDGET_ATTEMPTS, why);
        free(why);
        return 1;
    }
    if (a->max_tokens > 0 && a->tokens >= a->max_tokens) {
        char *why = ggi_asprintf("token budget of %lld spent after %d attempt(s); last: %s",
                                 a->max_tokens, a->attempts, last_reason ? last_reason : "-");
        ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_BUDGET_TOKENS,
                             why ? why : "token budget spent");
        free(why);
        return 1;
    }
    if (a->wall_s > 0 && a->started_wall > 0 && ggi_wall_s() - a->started_wall > a->wall_s) {
        char *why = ggi_asprintf("wall budget of %g s spent after %d attempt(s); last: %s",
                                 a->wall_s, a->attempts, last_reason ? last_reason : "-");
        ggi_sched_end_active(s, a, GGI_ST_FAILED, GGI_END_DEADLINE, why);
        free(why);
        return 1;
    }
    if (ggi_sched_run_spent(s)) {
        ggi_sched_end_for_run_budget(s, a);
        return 1;
    }
    return 0;
}
