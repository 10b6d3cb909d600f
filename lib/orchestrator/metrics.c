/*
 * metrics.c - the orchestrator's Prometheus metrics: the counters the scheduler and writer
 * threads add to (relaxed atomics, no lock), and gg_orchestrator_metrics(), which writes them
 * in the text exposition format (version 0.0.4) with the task counts read from the database,
 * so that the ended-task counters survive a restart. docs/http.md lists every metric.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../store/store.h"
#include "metrics.h"
#include "orq.h"

static const char *const cause_names[GGI_METRICS_CAUSES + 1] = {
    GGI_END_PASSED,         GGI_END_FAILED_TESTS, GGI_END_BUDGET_ATTEMPTS,
    GGI_END_BUDGET_TOKENS,  GGI_END_BUDGET_RUN_TOKENS, GGI_END_DEADLINE,
    GGI_END_CANCELLED,      GGI_END_NO_WORKER,    GGI_END_NO_CODE,
    GGI_END_INFRA,          GGI_END_WORKERS_LOST, GGI_END_INVALID,
    "other",
};

void ggi_metrics_task_end(ggi_metrics *m, const char *cause)
{
    int i = 0;
    while (i < GGI_METRICS_CAUSES && !(cause && strcmp(cause, cause_names[i]) == 0))
        i++;
    atomic_fetch_add_explicit(&m->ends[i], 1, memory_order_relaxed);
}

static const double bounds[GGI_HIST_N] = { GGI_HIST_BOUNDS };
static const char *const stage_names[GGI_STAGES] = { "retrieve", "generate", "analyze",
                                                     "execute" };
static const char *const stage_keys[GGI_STAGES] = { "retrieve_ms", "generate_ms",
                                                    "analyze_ms", "execute_ms" };
static const char *const outcome_names[GGI_OUTCOMES] = { "passed", "failed", "infra_error",
                                                         "exhausted" };

void ggi_metrics_init(ggi_metrics *m)
{
    memset(m, 0, sizeof *m);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->started_wall = (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void ggi_hist_observe_ms(ggi_hist *h, double ms)
{
    if (!(ms >= 0) || !isfinite(ms))
        return;
    double sec = ms / 1000.0;
    int i = 0;
    while (i < GGI_HIST_N && sec > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(ms * 1000.0 + 0.5),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* The arm's counters by name; a name not seen before takes the next free entry (the one
 * writer is the scheduler thread), "other" when the table is full. */
static ggi_arm_count *arm_of(ggi_metrics *m, const char *name)
{
    int n = atomic_load_explicit(&m->n_arms, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (strcmp(m->arms[i].name, name) == 0)
            return &m->arms[i];
    if (n >= GGI_METRICS_ARMS) {
        ggi_arm_count *other = &m->arms[GGI_METRICS_ARMS];
        if (!other->name[0])
            snprintf(other->name, sizeof other->name, "other");
        return other;
    }
    snprintf(m->arms[n].name, sizeof m->arms[n].name, "%s", name);
    atomic_store_explicit(&m->n_arms, n + 1, memory_order_release);
    return &m->arms[n];
}

/* The name a model request is counted under: the arm's model (or its index), else the
 * generator's name; NULL when the attempt asked no model. */
static const char *arm_name(const cJSON *rec, char *buf, size_t cap)
{
    const cJSON *arm = cJSON_GetObjectItemCaseSensitive(rec, "arm");
    if (cJSON_IsObject(arm)) {
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(arm, "model"));
        if (model && *model)
            return model;
        double idx = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(arm, "index"));
        snprintf(buf, cap, "arm%d", isnan(idx) ? 0 : (int)idx);
        return buf;
    }
    const char *gen = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "generator"));
    if (!gen || !*gen || strcmp(gen, "none") == 0)
        return NULL;
    return gen;
}

void ggi_metrics_attempt(ggi_metrics *m, const cJSON *rec)
{
    const cJSON *infra = cJSON_GetObjectItemCaseSensitive(rec, "infra");
    const char *infra_stage =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(infra, "stage"));
    ggi_outcome oc = GGI_OUTCOME_FAILED;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "exhausted")))
        oc = GGI_OUTCOME_EXHAUSTED;
    else if (cJSON_IsObject(infra))
        oc = GGI_OUTCOME_INFRA;
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed")))
        oc = GGI_OUTCOME_PASSED;
    atomic_fetch_add_explicit(&m->attempts[oc], 1, memory_order_relaxed);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(rec, "durations");
    if (cJSON_IsObject(d)) {
        for (int i = 0; i < GGI_STAGES; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, stage_keys[i]);
            if (cJSON_IsNumber(v))
                ggi_hist_observe_ms(&m->stage[i], v->valuedouble);
        }
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(rec, "usage");
    if (cJSON_IsObject(u)) {
        double t = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
        if (isnan(t)) {
            double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
            double c = cJSON_GetNumberValue(
                cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
            t = (isnan(p) ? 0 : p) + (isnan(c) ? 0 : c);
        }
        if (isfinite(t) && t > 0 && t < 1e15)
            atomic_fetch_add_explicit(&m->tokens, (unsigned long long)t, memory_order_relaxed);
    }
    char buf[32];
    const char *name = arm_name(rec, buf, sizeof buf);
    int gen_fault = infra_stage && strcmp(infra_stage, "generate") == 0;
    if (!name && gen_fault)
        name = "unknown";
    if (name && oc != GGI_OUTCOME_EXHAUSTED) {
        ggi_arm_count *a = arm_of(m, name);
        atomic_fetch_add_explicit(gen_fault ? &a->error : &a->ok, 1, memory_order_relaxed);
    }
}

void ggi_metrics_nodes(ggi_metrics *m, int ready, int quarantined, int slots, int busy)
{
    atomic_store_explicit(&m->nodes_ready, ready, memory_order_relaxed);
    atomic_store_explicit(&m->nodes_quarantined, quarantined, memory_order_relaxed);
    atomic_store_explicit(&m->slots_total, slots, memory_order_relaxed);
    atomic_store_explicit(&m->slots_busy, busy, memory_order_relaxed);
}

/* ---- the exposition ---- */

static void head(ggi_buf *b, const char *name, const char *type, const char *help)
{
    ggi_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with backslash, quote and newline escaped. */
static void label_value(ggi_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            ggi_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            ggi_buf_puts(b, "\\n");
        else
            ggi_buf_append(b, v, 1);
    }
}

static void hist(ggi_buf *b, const char *name, const char *label, const char *value,
                 const ggi_hist *h)
{
    unsigned long long cum = 0;
    char lab[96] = "";
    if (label)
        snprintf(lab, sizeof lab, "%s=\"%s\",", label, value);
    for (int i = 0; i <= GGI_HIST_N; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < GGI_HIST_N)
            ggi_buf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, lab, bounds[i], cum);
        else
            ggi_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lab, cum);
    }
    /* The count is the +Inf bucket, so the two always agree within one scrape. */
    lab[strlen(lab) ? strlen(lab) - 1 : 0] = '\0';
    const char *open = label ? "{" : "", *close = label ? "}" : "";
    ggi_buf_printf(b, "%s_sum%s%s%s %.6f\n", name, open, lab, close,
                   (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
    ggi_buf_printf(b, "%s_count%s%s%s %llu\n", name, open, lab, close, cum);
}

static void counter1(ggi_buf *b, const char *name, const char *help, unsigned long long v)
{
    head(b, name, "counter", help);
    ggi_buf_printf(b, "%s %llu\n", name, v);
}

static void write_tasks(ggi_buf *b, const ggi_store_counts *c, long long unfinished)
{
    head(b, "gryphgen_tasks_total", "counter",
         "Tasks that ended, by final status (counted in the database).");
    ggi_buf_printf(b, "gryphgen_tasks_total{status=\"passed\"} %lld\n", (long long)c->passed);
    ggi_buf_printf(b, "gryphgen_tasks_total{status=\"failed\"} %lld\n", (long long)c->failed);
    ggi_buf_printf(b, "gryphgen_tasks_total{status=\"error\"} %lld\n", (long long)c->error);
    ggi_buf_printf(b, "gryphgen_tasks_total{status=\"cancelled\"} %lld\n",
                   (long long)c->cancelled);
    head(b, "gryphgen_tasks", "gauge", "Tasks not yet ended, by status (in the database).");
    ggi_buf_printf(b, "gryphgen_tasks{status=\"queued\"} %lld\n", (long long)c->queued);
    ggi_buf_printf(b, "gryphgen_tasks{status=\"running\"} %lld\n", (long long)c->running);
    head(b, "gryphgen_queue_depth", "gauge", "Tasks waiting for a worker.");
    ggi_buf_printf(b, "gryphgen_queue_depth %lld\n", (long long)c->queued);
    head(b, "gryphgen_unfinished_tasks", "gauge",
         "Queued and running tasks as the admission limit (max_queued) counts them.");
    ggi_buf_printf(b, "gryphgen_unfinished_tasks %lld\n", unfinished);
    counter1(b, "gryphgen_attempts_recorded_total", "Attempts in the database.",
             (unsigned long long)c->attempts);
}

static void write_attempts(ggi_buf *b, ggi_metrics *m)
{
    head(b, "gryphgen_task_ends_total", "counter",
         "Tasks ended since start, by why they ended (end_cause).");
    for (int i = 0; i <= GGI_METRICS_CAUSES; i++)
        ggi_buf_printf(b, "gryphgen_task_ends_total{cause=\"%s\"} %llu\n", cause_names[i],
                       atomic_load_explicit(&m->ends[i], memory_order_relaxed));
    head(b, "gryphgen_attempts_total", "counter",
         "Attempts returned to the scheduler since start, by outcome.");
    for (int i = 0; i < GGI_OUTCOMES; i++)
        ggi_buf_printf(b, "gryphgen_attempts_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                       atomic_load_explicit(&m->attempts[i], memory_order_relaxed));
    head(b, "gryphgen_attempt_stage_duration_seconds", "histogram",
         "Time an attempt spent in each stage (retrieve is the retrieval latency).");
    for (int i = 0; i < GGI_STAGES; i++)
        hist(b, "gryphgen_attempt_stage_duration_seconds", "stage", stage_names[i],
             &m->stage[i]);
    counter1(b, "gryphgen_generator_tokens_total",
             "Model tokens the generators reported since start.",
             atomic_load_explicit(&m->tokens, memory_order_relaxed));
    head(b, "gryphgen_model_requests_total", "counter",
         "Generator requests since start, by arm (model) and status.");
    int n = atomic_load_explicit(&m->n_arms, memory_order_acquire);
    for (int i = 0; i <= GGI_METRICS_ARMS; i++) {
        if (i >= n && i < GGI_METRICS_ARMS)
            continue;
        const ggi_arm_count *a = &m->arms[i];
        if (!a->name[0])
            continue;
        static const char *const st[2] = { "ok", "error" };
        unsigned long long v[2] = { atomic_load_explicit(&a->ok, memory_order_relaxed),
                                    atomic_load_explicit(&a->error, memory_order_relaxed) };
        for (int k = 0; k < 2; k++) {
            ggi_buf_puts(b, "gryphgen_model_requests_total{arm=\"");
            label_value(b, a->name);
            ggi_buf_printf(b, "\",status=\"%s\"} %llu\n", st[k], v[k]);
        }
    }
}

static void write_grid(ggi_buf *b, gg_orchestrator_t *o)
{
    ggi_metrics *m = &o->metrics;
    head(b, "gryphgen_nodes", "gauge", "Worker nodes connected, by state.");
    ggi_buf_printf(b, "gryphgen_nodes{state=\"ready\"} %d\n",
                   atomic_load_explicit(&m->nodes_ready, memory_order_relaxed));
    ggi_buf_printf(b, "gryphgen_nodes{state=\"quarantined\"} %d\n",
                   atomic_load_explicit(&m->nodes_quarantined, memory_order_relaxed));
    head(b, "gryphgen_slots_busy", "gauge", "Worker slots running a job.");
    ggi_buf_printf(b, "gryphgen_slots_busy %d\n",
                   atomic_load_explicit(&m->slots_busy, memory_order_relaxed));
    head(b, "gryphgen_slots_capacity", "gauge", "Worker slots of the connected nodes.");
    ggi_buf_printf(b, "gryphgen_slots_capacity %d\n",
                   atomic_load_explicit(&m->slots_total, memory_order_relaxed));
    counter1(b, "gryphgen_dropped_messages_total",
             "Malformed, oversized, unknown or forbidden messages dropped.",
             atomic_load(&o->n_dropped));
    counter1(b, "gryphgen_stale_results_total", "Results of stale leases ignored.",
             atomic_load(&o->n_stale));
    counter1(b, "gryphgen_foreign_results_total",
             "Results dropped because their sender did not hold the lease.",
             atomic_load(&o->n_foreign));
    counter1(b, "gryphgen_busy_answers_total", "Submissions answered busy.",
             atomic_load(&o->n_busy));
    counter1(b, "gryphgen_requeued_jobs_total", "Jobs requeued after their worker died.",
             atomic_load(&o->n_requeued));
    head(b, "gryphgen_db_write_duration_seconds", "histogram",
         "Time to write one batch of task state to the database (one transaction).");
    hist(b, "gryphgen_db_write_duration_seconds", NULL, NULL, &m->db_write);
    head(b, "gryphgen_start_time_seconds", "gauge",
         "When this orchestrator started (seconds since the epoch).");
    ggi_buf_printf(b, "gryphgen_start_time_seconds %.3f\n", m->started_wall);
}

int gg_orchestrator_metrics(gg_orchestrator_t *o, char **out_text)
{
    if (out_text)
        *out_text = NULL;
    if (!o || !out_text)
        return ggi_error(GG_EINVAL, "orchestrator and out pointer must not be NULL");
    ggi_store_counts c;
    memset(&c, 0, sizeof c);
    pthread_mutex_lock(&o->api_mu);
    int rc = ggi_store_counts_get(o->api_store, &c);
    pthread_mutex_unlock(&o->api_mu);
    if (rc != GG_OK)
        return rc;
    ggi_buf b = {0};
    write_tasks(&b, &c, (long long)atomic_load(&o->queued));
    write_attempts(&b, &o->metrics);
    write_grid(&b, o);
    char *text = ggi_buf_steal(&b);
    if (!text)
        return ggi_error(GG_ENOMEM, "out of memory");
    *out_text = text;
    return GG_OK;
}
