/*
 * learner.c - the learner thread (learner.h): a ring buffer of task results guarded by a
 * mutex, a condition variable that wakes the thread, and ggi_learn_from_result(), which turns
 * one result into retriever feedback per attempt (each reference weighted by its position or
 * by the generator's citations, credit.h; for the task's kind too) and a solution document.
 * Shutdown drains within a time bound and counts what it leaves.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../retrieval/credit.h"
#include "../retrieval/retriever_none.h"
#include "../store/store.h"
#include "learner.h"

#define MAX_QUEUE_LIMIT 1000000

struct ggi_learner {
    gg_retriever_t *r;
    const ggi_logger *log;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cJSON **ring;          /* cap slots; n queued from head */
    size_t cap, head, n;
    size_t dropped, done;
    int stopping;
    double deadline_ms;    /* ggi_now_ms() after which the rest is dropped */
};

/* The feedback of one attempt's record: its context ids in order, the share of the outcome
 * each gets (credit.h) and the kind of the task; NULL when it used no context. */
static char *attempt_feedback(const char *task_id, const cJSON *rec)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "context_ids");
    int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
    if (n == 0 || n > GGI_LEARN_MAX_IDS)
        return NULL;
    /* A record is a worker's word: what is not well formed is left out, not refused. */
    const cJSON *cited = cJSON_GetObjectItemCaseSensitive(rec, "cited");
    if (!cJSON_IsArray(cited) || cJSON_GetArraySize(cited) > GGI_CREDIT_MAX_CITED)
        cited = NULL;
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "context_kind"));
    if (!ggi_credit_kind_ok(kind))
        kind = NULL;
    double w[GGI_LEARN_MAX_IDS];
    ggi_credit_weights(ids, cited, w, n);
    cJSON *fb = cJSON_CreateObject();
    cJSON *ws = cJSON_CreateDoubleArray(w, n);
    char *text = NULL;
    if (fb && ws && cJSON_AddStringToObject(fb, "task_id", task_id) &&
        cJSON_AddBoolToObject(fb, "passed",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "passed"))) &&
        cJSON_AddItemToObject(fb, "ids", cJSON_Duplicate(ids, 1)) &&
        cJSON_AddItemToObject(fb, "weights", ws)) {
        ws = NULL;
        if ((!kind || !ggi_json_add_str(fb, "kind", kind)) &&
            (!cJSON_IsArray(cited) ||
             cJSON_AddItemToObject(fb, "cited", cJSON_Duplicate(cited, 1))))
            text = ggi_json_print(fb);
    }
    cJSON_Delete(ws);
    cJSON_Delete(fb);
    return text;
}

void ggi_learn_from_result(gg_retriever_t *r, const ggi_logger *log, const cJSON *res)
{
    const char *task_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "task_id"));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "status"));
    if (!task_id || !status || ggi_retriever_is_none(r))
        return;
    if (strcmp(status, GGI_ST_PASSED) != 0 && strcmp(status, GGI_ST_FAILED) != 0)
        return;
    /* A workspace task's context came from its own base's index, not this retriever, and
     * its answer is a patch to one repository, not a solution other tasks could reuse. */
    if (cJSON_GetObjectItemCaseSensitive(res, "base_commit"))
        return;
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(res, "history");
    const cJSON *rec;
    const char *kind = NULL;
    cJSON_ArrayForEach(rec, history)
    {
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rec, "context_ids");
        if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0)
            continue;
        const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "context_kind"));
        if (!kind && ggi_credit_kind_ok(k))
            kind = k;
        char *text = attempt_feedback(task_id, rec);
        if (!text && cJSON_GetArraySize(ids) > GGI_LEARN_MAX_IDS)
            continue; /* not a context this library gave */
        int rc = text ? gg_retriever_feedback(r, text) : GG_ENOMEM;
        if (rc != GG_OK && rc != GG_EUNSUPPORTED)
            ggi_log(log, GG_LOG_WARN, "task '%s': retrieval feedback: %s", task_id,
                    text ? gg_error_last() : "out of memory");
        free(text);
    }
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "code"));
    if (strcmp(status, GGI_ST_PASSED) != 0 || !code)
        return;
    const cJSON *first = cJSON_GetArrayItem(history, 0);
    const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, "language"));
    /* The task's prompt heads the solution, so that a task asking the same finds it. */
    const char *spec_text =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "task_spec"));
    cJSON *spec = spec_text ? cJSON_Parse(spec_text) : NULL;
    const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "prompt"));
    char kind_buf[GGI_CREDIT_KIND_MAX];
    if (!kind && prompt) {
        ggi_credit_kind(prompt, lang, kind_buf);
        kind = kind_buf;
    }
    ggi_buf body = GGI_BUF_INIT;
    int bad = 0;
    if (prompt && *prompt) {
        size_t pl = strlen(prompt);
        if (pl > GGI_LEARN_PROMPT_MAX)
            pl = GGI_LEARN_PROMPT_MAX;
        while (pl > 0 && ((unsigned char)prompt[pl] & 0xC0) == 0x80)
            pl--; /* not inside a UTF-8 sequence */
        bad = ggi_buf_append(&body, prompt, pl) || ggi_buf_puts(&body, "\n");
    }
    bad = bad || ggi_buf_puts(&body, code);
    cJSON_Delete(spec);
    cJSON *doc = cJSON_CreateObject();
    char *source = ggi_asprintf("task:%s", task_id);
    char *text = NULL;
    if (!bad && doc && source && !ggi_json_add_str(doc, "source", source) &&
        !ggi_json_add_str(doc, "text", body.data) &&
        (!lang || !ggi_json_add_str(doc, "language", lang)) &&
        cJSON_AddStringToObject(doc, "kind", "solution") &&
        !ggi_json_add_str(doc, "task_id", task_id) &&
        (!kind || !ggi_json_add_str(doc, "task_kind", kind)))
        text = ggi_json_print(doc);
    ggi_buf_free(&body);
    cJSON_Delete(doc);
    free(source);
    int rc = text ? gg_retriever_add(r, text, NULL) : GG_ENOMEM;
    if (rc != GG_OK && rc != GG_EUNSUPPORTED)
        ggi_log(log, GG_LOG_WARN, "task '%s': indexing its solution: %s", task_id,
                text ? gg_error_last() : "out of memory");
    free(text);
}

/* Warns on the 1st, 2nd, 4th, 8th... drop, so a flood does not flood the log too. */
static void warn_dropped(ggi_learner *l, size_t total, const char *why)
{
    if (total && (total & (total - 1)) == 0)
        ggi_log(l->log, GG_LOG_WARN,
                "retrieval learning: %s; %zu task results dropped so far (queue limit %zu)",
                why, total, l->cap);
}

static void *learner_main(void *arg)
{
    ggi_learner *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->n == 0 && !l->stopping)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->n == 0)
            break; /* stopping, nothing left */
        if (l->stopping && ggi_now_ms() > l->deadline_ms) {
            size_t left = l->n;
            while (l->n > 0) {
                cJSON_Delete(l->ring[l->head]);
                l->ring[l->head] = NULL;
                l->head = (l->head + 1) % l->cap;
                l->n--;
            }
            l->dropped += left;
            pthread_mutex_unlock(&l->mu);
            ggi_log(l->log, GG_LOG_WARN,
                    "retrieval learning: shutdown left %zu task results unlearnt", left);
            pthread_mutex_lock(&l->mu);
            break;
        }
        cJSON *res = l->ring[l->head];
        l->ring[l->head] = NULL;
        l->head = (l->head + 1) % l->cap;
        l->n--;
        pthread_mutex_unlock(&l->mu);
        ggi_learn_from_result(l->r, l->log, res);
        cJSON_Delete(res);
        pthread_mutex_lock(&l->mu);
        l->done++;
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int ggi_learner_new(gg_retriever_t *r, const ggi_logger *log, size_t max_queue,
                    ggi_learner **out)
{
    *out = NULL;
    if (max_queue < 1 || max_queue > MAX_QUEUE_LIMIT)
        return ggi_error(GG_EINVAL, "learner: the queue limit must be from 1 to %d",
                         MAX_QUEUE_LIMIT);
    if (ggi_retriever_is_none(r))
        return GG_OK;
    ggi_learner *l = calloc(1, sizeof *l);
    if (!l || !(l->ring = calloc(max_queue, sizeof *l->ring))) {
        free(l);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    l->r = r;
    l->log = log;
    l->cap = max_queue;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, learner_main, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l->ring);
        free(l);
        return ggi_error(GG_ENOMEM, "learner: cannot start its thread");
    }
    *out = l;
    return GG_OK;
}

void ggi_learner_push(ggi_learner *l, cJSON *res)
{
    if (!l || !res) {
        cJSON_Delete(res);
        return;
    }
    cJSON *old = NULL;
    size_t dropped = 0;
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        old = l->ring[l->head];
        l->ring[l->head] = NULL;
        l->head = (l->head + 1) % l->cap;
        l->n--;
        dropped = ++l->dropped;
    }
    l->ring[(l->head + l->n) % l->cap] = res;
    l->n++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (old) {
        cJSON_Delete(old);
        warn_dropped(l, dropped, "the queue is full, the oldest result was dropped");
    }
}

size_t ggi_learner_dropped(ggi_learner *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    size_t n = l->dropped;
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t ggi_learner_done(ggi_learner *l)
{
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    size_t n = l->done;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void ggi_learner_destroy(ggi_learner **pl, double drain_ms)
{
    if (!pl || !*pl)
        return;
    ggi_learner *l = *pl;
    *pl = NULL;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    l->deadline_ms = ggi_now_ms() + (drain_ms > 0 ? drain_ms : 0);
    size_t queued = l->n;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    /* Also what a test waits for before it lets a retriever call in progress return. */
    ggi_log(l->log, GG_LOG_DEBUG, "retrieval learning: stopping with %zu task results queued",
            queued);
    pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->cap; i++)
        cJSON_Delete(l->ring[i]);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->ring);
    free(l);
}
