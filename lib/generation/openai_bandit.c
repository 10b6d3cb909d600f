/*
 * openai_bandit.c - bandit and journal glue of the "openai" generator backend: the order in
 * which a request tries the arms (the strategy bandit's draw, dead endpoints last), marking
 * endpoints dead, the journal's key for a request and its recorded responses, feedback that
 * teaches the bandit, and attaching a journal. Cut here because it is what ties the backend
 * to strategy.h and journal.h.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "../core/ggi.h"
#include "builtin.h"
#include "hooks.h"
#include "journal.h"
#include "openai.h"
#include "citations.h"
#include "prompt.h"
#include "redact.h"
#include "strategy.h"
#include "openai_internal.h"

/* ---- arm choice ---- */

/*
 * The order in which this request tries the arms: the bandit's Thompson draw ranks them
 * (strategy.h); arms on endpoints marked dead go after the others, soonest back first.
 */
void ggi_openai_pick_order(openai *g, int order[GGI_BANDIT_MAX_ARMS])
{
    int ranked[GGI_BANDIT_MAX_ARMS];
    ggi_bandit_order(g->bandit, ranked);
    double now = ggi_now_ms();
    double until[GGI_BANDIT_MAX_ARMS];
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->n_arms; i++)
        until[i] = g->eps[g->arms[i].ep].dead_until;
    pthread_mutex_unlock(&g->mu);
    int k = 0;
    for (int i = 0; i < g->n_arms; i++)
        if (until[ranked[i]] <= now)
            order[k++] = ranked[i];
    int first_dead = k;
    for (int i = 0; i < g->n_arms; i++)
        if (until[ranked[i]] > now)
            order[k++] = ranked[i];
    for (int i = first_dead + 1; i < k; i++) /* a few entries: insertion sort, stable */
        for (int j = i; j > first_dead && until[order[j]] < until[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
}

void ggi_openai_mark(openai *g, int i, int dead)
{
    pthread_mutex_lock(&g->mu);
    g->eps[i].dead_until = dead ? ggi_now_ms() + DEAD_FOR_MS : 0;
    pthread_mutex_unlock(&g->mu);
}

/*
 * The text the journal knows this request by: with a single model and temperature the body
 * itself; with several arms the body with the list of the arms' model@temperature pairs in
 * place of the model, so that whichever arm answered, a rerun finds the answer.
 */
char *ggi_openai_journal_key(const openai *g, const cJSON *messages, double override)
{
    if (g->one_pair)
        return ggi_openai_body_text(g, messages, g->arms[0].model,
                         override >= 0 ? override : g->arms[0].temperature);
    ggi_buf sig = GGI_BUF_INIT;
    int bad = 0;
    for (int i = 0; i < g->n_arms && !bad; i++) {
        int seen = 0;
        for (int k = 0; k < i && !seen; k++)
            seen = strcmp(g->arms[k].model, g->arms[i].model) == 0 &&
                   g->arms[k].temperature == g->arms[i].temperature;
        if (!seen)
            bad = ggi_buf_printf(&sig, "%s%s@%g", sig.len ? "," : "", g->arms[i].model,
                                 g->arms[i].temperature) != GG_OK;
    }
    char *text = bad ? NULL : ggi_openai_body_text(g, messages, sig.data ? sig.data : "", override);
    ggi_buf_free(&sig);
    return text;
}

/* A response recorded for exactly this request body, marked "journal": true. A journal that
 * fails is passed by: the model is asked instead. */
int ggi_openai_journal_hit(ggi_journal *j, const char *body, char **out)
{
    char *text = NULL;
    if (ggi_journal_get(j, body, &text) != GG_OK)
        return 0;
    cJSON *r = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(r) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "code")) ||
        ggi_json_add_bool(r, "journal", 1) || !(*out = ggi_json_print(r))) {
        cJSON_Delete(r);
        return 0;
    }
    cJSON_Delete(r);
    gg_error_clear();
    return 1;
}

ggi_journal *ggi_openai_journal_of(openai *g)
{
    pthread_mutex_lock(&g->mu);
    ggi_journal *j = g->journal;
    pthread_mutex_unlock(&g->mu);
    return j;
}

void ggi_openai_feedback(void *self, const cJSON *rec)
{
    openai *g = self;
    const cJSON *passed = cJSON_GetObjectItemCaseSensitive(rec, "passed");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, "arm");
    if (!g || !cJSON_IsBool(passed) || !cJSON_IsObject(a) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "journal")) ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "strategy")))
        return;
    double idx = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(a, "index"));
    if (!(idx >= 0 && idx < g->n_arms) || idx != (double)(int)idx)
        return;
    const arm *arm = &g->arms[(int)idx];
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "model"));
    const char *ep = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "endpoint"));
    if (!model || !ep || strcmp(model, arm->model) != 0 || strcmp(ep, g->eps[arm->ep].shown))
        return; /* another generator's answer */
    /* cost: the tokens of the answer, plus latency when GRYPHGEN_LLM_COST_PER_SECOND says */
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(rec, "usage");
    double tokens = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "total_tokens"));
    if (!isfinite(tokens)) {
        double p = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"));
        double c = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(u, "completion_tokens"));
        tokens = isfinite(p) || isfinite(c) ? (isfinite(p) ? p : 0) + (isfinite(c) ? c : 0)
                                            : NAN;
    }
    double ms = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec, "durations"), "generate_ms"));
    double cost = -1;
    if (isfinite(tokens) && tokens >= 0)
        cost = tokens;
    if (g->cost_per_s > 0 && isfinite(ms) && ms >= 0)
        cost = (cost > 0 ? cost : 0) + g->cost_per_s * ms / 1000.0;
    int ok = cJSON_IsTrue(passed);
    ggi_bandit_update(g->bandit, (int)idx, ok, cost);
    ggi_journal *j = ggi_openai_journal_of(g);
    if (j) {
        ggi_arm_stats d = { 1, ok ? 1 : 0, cost >= 0 ? cost : 0, cost >= 0 ? 1 : 0 };
        if (ggi_journal_arm_add(j, arm->key, &d) != GG_OK)
            gg_error_clear(); /* best effort: the bandit in memory has it */
    }
}

int ggi_openai_attach_journal(void *self, const char *db_path)
{
    openai *g = self;
    if (ggi_openai_journal_of(g))
        return GG_OK;
    ggi_journal *j = NULL;
    int rc = ggi_journal_open(db_path, &j);
    if (rc)
        return rc;
    pthread_mutex_lock(&g->mu);
    int taken = g->journal == NULL;
    if (taken)
        g->journal = j;
    pthread_mutex_unlock(&g->mu);
    if (!taken) {
        ggi_journal_close(&j);
        return GG_OK;
    }
    ggi_openai_load_arms(g, j);
    return GG_OK;
}
