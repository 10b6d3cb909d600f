/*
 * sched_demand.c - a scaler's demand (docs/protocol.md, `status` with "demand"): how many of
 * the unfinished tasks a worker with given capabilities could run, so that `gryphgen scale`
 * starts no job for tasks that need labels, languages, GPUs or libraries its workers lack.
 * Cut from sched_clients.c because it has its own matching rule (against capabilities a
 * worker would have, not a connected node) and its own bound: the queue is read from the
 * database up to a limit, so a million queued tasks cost one bounded scan per question.
 */
#include <stdio.h>
#include <string.h>

#include "../core/lang.h"
#include "sched.h"

#define DEMAND_LIMIT_DEFAULT 100000 /* servable queued tasks counted at most, unless limit says */
#define DEMAND_LIMIT_MAX 1000000
#define DEMAND_SCAN_ROWS 200000    /* queued tasks read per question at most (the scheduler
                                    * thread reads them: about 0.1 s) */
#define DEMAND_ENTRIES_MAX 64      /* labels and languages a question may name */

/* The capabilities asked about; a member absent is not checked. */
typedef struct demand_caps {
    const cJSON *labels;    /* object of strings, or NULL */
    const cJSON *languages; /* array of strings, or NULL */
    const cJSON *deps;      /* as a worker's hello caps.deps, or NULL */
    double gpus;            /* < 0: not checked */
} demand_caps;

typedef struct demand_count {
    const demand_caps *caps;
    long long servable, other, limit;
} demand_count;

static int serves(const demand_caps *c, const char *language, const cJSON *needs)
{
    if (c->languages && language) {
        int found = 0;
        const cJSON *l;
        cJSON_ArrayForEach(l, c->languages)
            found |= cJSON_IsString(l) && strcmp(l->valuestring, language) == 0;
        if (!found)
            return 0;
    }
    double gpus = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(needs, "gpus"));
    if (c->gpus >= 0 && gpus > c->gpus)
        return 0;
    const cJSON *requires = cJSON_GetObjectItemCaseSensitive(needs, "requires");
    if (c->deps && requires && !ggi_lang_deps_cover(c->deps, requires, NULL))
        return 0;
    const cJSON *want = c->labels ? cJSON_GetObjectItemCaseSensitive(needs, "labels") : NULL;
    const cJSON *l;
    cJSON_ArrayForEach(l, want)
    {
        const char *v =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c->labels, l->string));
        if (!v || !cJSON_IsString(l) || strcmp(v, l->valuestring) != 0)
            return 0;
    }
    return 1;
}

/* A queued task's stored language and needs (NULL: an old row, counted as servable: its
 * needs are known only once it is claimed). Nonzero once limit servable ones are counted. */
static int count_queued(void *user, const char *language, const char *needs_text)
{
    demand_count *d = user;
    cJSON *needs = needs_text ? cJSON_Parse(needs_text) : NULL;
    if (!language || (needs_text && !needs) || serves(d->caps, language, needs))
        d->servable++;
    else
        d->other++;
    cJSON_Delete(needs);
    return d->servable >= d->limit;
}

/* Checks the question; GG_EINVAL naming what is wrong. */
static int read_caps(const cJSON *q, demand_caps *c, int *limit)
{
    memset(c, 0, sizeof *c);
    c->gpus = -1;
    *limit = DEMAND_LIMIT_DEFAULT;
    if (!cJSON_IsObject(q))
        return ggi_error(GG_EINVAL, "demand: must be an object of a worker's capabilities");
    c->labels = cJSON_GetObjectItemCaseSensitive(q, "labels");
    c->languages = cJSON_GetObjectItemCaseSensitive(q, "languages");
    c->deps = cJSON_GetObjectItemCaseSensitive(q, "deps");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(q, "gpus");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(q, "limit");
    if (c->labels && (!cJSON_IsObject(c->labels) ||
                      cJSON_GetArraySize(c->labels) > DEMAND_ENTRIES_MAX))
        return ggi_error(GG_EINVAL, "demand: 'labels' must be an object of at most %d strings",
                         DEMAND_ENTRIES_MAX);
    const cJSON *x;
    cJSON_ArrayForEach(x, c->labels)
    {
        if (!cJSON_IsString(x))
            return ggi_error(GG_EINVAL, "demand: label '%.64s' must be a string",
                             x->string ? x->string : "");
    }
    if (c->languages && (!cJSON_IsArray(c->languages) ||
                         cJSON_GetArraySize(c->languages) > DEMAND_ENTRIES_MAX))
        return ggi_error(GG_EINVAL, "demand: 'languages' must be an array of at most %d "
                         "strings", DEMAND_ENTRIES_MAX);
    cJSON_ArrayForEach(x, c->languages)
    {
        if (!cJSON_IsString(x))
            return ggi_error(GG_EINVAL, "demand: 'languages' must be an array of strings");
    }
    if (c->deps && !cJSON_IsObject(c->deps))
        return ggi_error(GG_EINVAL, "demand: 'deps' must be an object (a worker's caps.deps)");
    if (g && (!cJSON_IsNumber(g) || g->valuedouble < 0 || g->valuedouble > 1024))
        return ggi_error(GG_EINVAL, "demand: 'gpus' must be a number from 0 to 1024");
    if (g)
        c->gpus = g->valuedouble;
    if (l && (!cJSON_IsNumber(l) || l->valuedouble < 1 || l->valuedouble > DEMAND_LIMIT_MAX))
        return ggi_error(GG_EINVAL, "demand: 'limit' must be a number from 1 to %d",
                         DEMAND_LIMIT_MAX);
    if (l)
        *limit = (int)l->valuedouble;
    return GG_OK;
}

int ggi_sched_demand(sched *s, const cJSON *question, cJSON *status)
{
    demand_caps caps;
    int limit;
    int rc = read_caps(question, &caps, &limit);
    if (rc)
        return rc;
    demand_count q = { .caps = &caps, .limit = limit };
    int scanned = 0;
    rc = ggi_grid_each_queued(s->g, DEMAND_SCAN_ROWS, count_queued, &q, &scanned);
    if (rc)
        return rc;
    /* The claimed tasks: those no worker holds wait as the queued ones do. */
    long long claimed = 0, waiting = 0;
    for (active *a = s->tasks; a; a = a->next) {
        if (a->cancelled || !serves(&caps, a->language, a->needs))
            continue;
        claimed++;
        waiting += !a->inflight;
    }
    cJSON *d = cJSON_AddObjectToObject(status, "demand");
    if (!d)
        return ggi_error(GG_ENOMEM, "out of memory");
    cJSON_AddNumberToObject(d, "tasks", (double)(q.servable + claimed));
    cJSON_AddNumberToObject(d, "waiting", (double)(q.servable + waiting));
    cJSON_AddNumberToObject(d, "queued", (double)q.servable);
    cJSON_AddNumberToObject(d, "running", (double)claimed);
    cJSON_AddNumberToObject(d, "unservable", (double)q.other);
    /* every queued task read (none left after the last one counted, none beyond the rows) */
    cJSON_AddBoolToObject(d, "complete", q.servable < limit && scanned < DEMAND_SCAN_ROWS);
    return GG_OK;
}
