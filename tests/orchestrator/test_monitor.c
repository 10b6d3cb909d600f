/*
 * test_monitor.c - the Task Monitor on the embedded orchestrator: stuck loops (the same code
 * again, the same failure again) change the next request's strategy and roll its feedback
 * back to the best attempt; token budgets per task (budget.tokens) and per run
 * (GRYPHGEN_MAX_TOKENS) end tasks with their best attempt.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/generator.h>
#include <cJSON.h>

#include "testutil.h"

#define MAX_REQ 16

/* A generator that answers from a list (the last answer repeats) and keeps the requests. */
typedef struct fake_gen {
    pthread_mutex_t mu;
    const char *const *answers;
    int n_answers;
    const char *usage; /* JSON object text, or NULL */
    cJSON *requests[MAX_REQ];
    int n_req;
} fake_gen;

static int fake_generate(void *self, const char *request_json, char **out)
{
    fake_gen *g = self;
    pthread_mutex_lock(&g->mu);
    int i = g->n_req;
    if (g->n_req < MAX_REQ)
        g->requests[g->n_req++] = cJSON_Parse(request_json);
    pthread_mutex_unlock(&g->mu);
    const char *code = g->answers[i < g->n_answers ? i : g->n_answers - 1];
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "code", code);
    if (g->usage)
        cJSON_AddItemToObject(r, "usage", cJSON_Parse(g->usage));
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    *out = text ? gg_strdup(text) : NULL;
    cJSON_free(text);
    return *out ? GG_OK : GG_ENOMEM;
}

static void fake_reset(fake_gen *g, const char *const *answers, int n, const char *usage)
{
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < g->n_req; i++)
        cJSON_Delete(g->requests[i]);
    g->n_req = 0;
    g->answers = answers;
    g->n_answers = n;
    g->usage = usage;
    pthread_mutex_unlock(&g->mu);
}

typedef struct events {
    pthread_mutex_t mu;
    int stuck;
    int stuck_attempt[8];
} events;

static void on_event(void *user, const char *json)
{
    events *e = user;
    cJSON *ev = cJSON_Parse(json);
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
    pthread_mutex_lock(&e->mu);
    if (type && strcmp(type, "task.stuck") == 0) {
        if (e->stuck < 8)
            e->stuck_attempt[e->stuck] =
                (int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "attempt"));
        e->stuck++;
    }
    pthread_mutex_unlock(&e->mu);
    cJSON_Delete(ev);
}

static cJSON *run_task(gg_orchestrator_t *o, const char *json)
{
    char *id = NULL, *res = NULL;
    if (gg_orchestrator_submit(o, json, &id) != GG_OK) {
        fprintf(stderr, "submit failed: %s\n", gg_error_last());
        return NULL;
    }
    int rc = gg_orchestrator_wait(o, id, 60000, &res);
    gg_free(id);
    if (rc != GG_OK) {
        fprintf(stderr, "wait failed: %s\n", gg_error_last());
        return NULL;
    }
    cJSON *r = cJSON_Parse(res);
    gg_free(res);
    return r;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
}

static double num(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static const cJSON *hist(const cJSON *r, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(r, "history"), i);
}

static const cJSON *strategy(const cJSON *o)
{
    return cJSON_GetObjectItem(o, "strategy");
}

/* The attempt number of the only feedback entry of a request, or -1. */
static int only_feedback(const cJSON *req)
{
    const cJSON *fb = cJSON_GetObjectItem(req, "feedback");
    if (cJSON_GetArraySize(fb) != 1)
        return -1;
    return (int)num(cJSON_GetArrayItem(fb, 0), "attempt");
}

#define SUB_TASK(id, extra)                                                                  \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"stub\":\"def sub(a, b):\\n\","        \
    "\"entry_point\":\"sub\",\"test\":\"def check(f):\\n    assert f(5, 2) == 3\\n\"," extra "}"

static gg_orchestrator_t *new_orq(gg_generator_t *gen, events *ev)
{
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 1;
    opts.generator = gen;
    opts.event_fn = on_event;
    opts.event_user = ev;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    return o;
}

/* The same wrong code every time: from the third request on, a changed strategy. */
static void test_same_code(gg_orchestrator_t *o, fake_gen *g, events *ev)
{
    static const char *const same[] = { "    return a + b\n" };
    fake_reset(g, same, 1, NULL);
    pthread_mutex_lock(&ev->mu);
    ev->stuck = 0;
    pthread_mutex_unlock(&ev->mu);
    cJSON *r = run_task(o, SUB_TASK("same", "\"budget\":{\"max_attempts\":4}"));
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 4);
    CHECK(num(r, "best_attempt") >= 1);
    CHECK_CONTAINS(str(r, "reason"), "failed all 4 attempt(s)");
    CHECK(num(r, "tokens") == 0);
    /* Records: the first is new, each later one repeats it. */
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hist(r, 0), "stuck")));
    for (int i = 1; i < 4; i++)
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(hist(r, i), "stuck")));
    CHECK(strategy(hist(r, 0)) == NULL && strategy(hist(r, 1)) == NULL);
    CHECK(num(strategy(hist(r, 2)), "temperature") == 0.7);
    cJSON_Delete(r);

    pthread_mutex_lock(&g->mu);
    CHECK(g->n_req == 4);
    if (g->n_req == 4) {
        CHECK(strategy(g->requests[0]) == NULL);
        CHECK(strategy(g->requests[1]) == NULL);
        CHECK(only_feedback(g->requests[1]) == 1);
        const cJSON *s3 = strategy(g->requests[2]), *s4 = strategy(g->requests[3]);
        CHECK(cJSON_IsObject(s3) && cJSON_IsObject(s4));
        CHECK(num(s3, "temperature") == 0.7);
        CHECK(num(s4, "temperature") > num(s3, "temperature"));
        CHECK_STR(str(s3, "reason"), "same code as attempt 1");
        CHECK_STR(str(s4, "reason"), "same code as attempt 1");
        CHECK(num(s3, "rollback_to") == 1 && num(s4, "rollback_to") == 1);
        /* Rolled back: only the best attempt's feedback, not the last three. */
        CHECK(only_feedback(g->requests[2]) == 1);
        CHECK(only_feedback(g->requests[3]) == 1);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&ev->mu);
    CHECK(ev->stuck == 3);
    CHECK(ev->stuck_attempt[0] == 2 && ev->stuck_attempt[1] == 3 && ev->stuck_attempt[2] == 4);
    pthread_mutex_unlock(&ev->mu);
}

/* Different code, the same failure: the rollback goes to the best attempt, not the last. */
static void test_same_failure(gg_orchestrator_t *o, fake_gen *g, events *ev)
{
    static const char *const answers[] = {
        "    return a + b\n",   /* runs, fails the test: the best attempt */
        "    return (a\n",      /* does not compile */
        "    return ((b\n",     /* does not compile again: same failure, stuck */
        "    return a - b\n",   /* passes */
    };
    fake_reset(g, answers, 4, NULL);
    pthread_mutex_lock(&ev->mu);
    ev->stuck = 0;
    pthread_mutex_unlock(&ev->mu);
    cJSON *r = run_task(o, SUB_TASK("fail", "\"budget\":{\"max_attempts\":5}"));
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 4);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hist(r, 0), "stuck")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hist(r, 1), "stuck")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(hist(r, 2), "stuck")));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hist(r, 3), "stuck")));
    CHECK(num(strategy(hist(r, 3)), "rollback_to") == 1);
    cJSON_Delete(r);
    pthread_mutex_lock(&g->mu);
    CHECK(g->n_req == 4);
    if (g->n_req == 4) {
        CHECK(strategy(g->requests[2]) == NULL);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(g->requests[2], "feedback")) == 2);
        const cJSON *s4 = strategy(g->requests[3]);
        CHECK_STR(str(s4, "reason"), "same failure as attempt 2");
        CHECK(num(s4, "rollback_to") == 1);
        CHECK(num(s4, "temperature") == 0.7);
        CHECK(only_feedback(g->requests[3]) == 1);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_lock(&ev->mu);
    CHECK(ev->stuck == 1 && ev->stuck_attempt[0] == 3);
    pthread_mutex_unlock(&ev->mu);
}

/* budget.tokens: 100 per answer against 250 ends the task after 3 attempts. */
static void test_task_tokens(gg_orchestrator_t *o, fake_gen *g)
{
    static const char *const answers[] = { "    return a + b\n", "    return a * b\n",
                                           "    return b - a\n", "    return 0\n" };
    fake_reset(g, answers, 4, "{\"total_tokens\":100}");
    cJSON *r = run_task(o, SUB_TASK("tok", "\"budget\":{\"max_attempts\":10,\"tokens\":250}"));
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 3);
    CHECK(num(r, "tokens") == 300);
    CHECK_CONTAINS(str(r, "reason"), "token budget of 250 spent after 3 attempt(s); last: ");
    CHECK_CONTAINS(str(r, "reason"), "AssertionError");
    CHECK(num(r, "best_attempt") >= 1);
    CHECK_CONTAINS(str(r, "code"), "def sub(a, b):");
    CHECK(num(cJSON_GetObjectItem(hist(r, 0), "usage"), "total_tokens") == 100);
    cJSON_Delete(r);

    /* prompt + completion when there is no total; a budget not reached does not end it. */
    fake_reset(g, answers, 4, "{\"prompt_tokens\":30,\"completion_tokens\":20}");
    r = run_task(o, SUB_TASK("tok2", "\"budget\":{\"max_attempts\":2,\"tokens\":1000}"));
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 2);
    CHECK(num(r, "tokens") == 100);
    CHECK_CONTAINS(str(r, "reason"), "failed all 2 attempt(s)");
    cJSON_Delete(r);

    /* A bad budget is refused at submission. */
    char *id = NULL;
    CHECK_RC(gg_orchestrator_submit(o, SUB_TASK("tok3", "\"budget\":{\"tokens\":0}"), &id),
             GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "budget.tokens");
    gg_free(id);
}

/* GRYPHGEN_MAX_TOKENS: the run's budget ends every task once spent. */
static void test_run_tokens(fake_gen *g, events *ev)
{
    static const char *const answers[] = { "    return a + b\n", "    return a * b\n",
                                           "    return b - a\n", "    return 0\n",
                                           "    return 1\n", "    return 2\n" };
    fake_reset(g, answers, 6, "{\"total_tokens\":100}");
    gg_generator_t *gen = NULL;
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = fake_generate;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, g), GG_OK);
    setenv("GRYPHGEN_MAX_TOKENS", "250", 1);
    gg_orchestrator_t *o = new_orq(gen, ev);
    if (!o) {
        gg_generator_destroy(&gen);
        unsetenv("GRYPHGEN_MAX_TOKENS");
        return;
    }
    char *id1 = NULL, *id2 = NULL, *res = NULL;
    CHECK_RC(gg_orchestrator_submit(o, SUB_TASK("run1", "\"budget\":{\"max_attempts\":10}"),
                                    &id1), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, SUB_TASK("run2", "\"budget\":{\"max_attempts\":10}"),
                                    &id2), GG_OK);
    double total = 0;
    int attempts = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_RC(gg_orchestrator_wait(o, i ? id2 : id1, 60000, &res), GG_OK);
        cJSON *r = cJSON_Parse(res);
        gg_free(res);
        res = NULL;
        CHECK_STR(str(r, "status"), "failed");
        CHECK_CONTAINS(str(r, "reason"), "run token budget of 250 (GRYPHGEN_MAX_TOKENS) spent");
        total += num(r, "tokens");
        attempts += (int)num(r, "attempts");
        cJSON_Delete(r);
    }
    /* The third attempt spends the budget; one worker slot (and its one queued job) means at
     * most one more attempt was in flight then, which finishes and counts. Without the run
     * budget the two tasks would make 20 attempts. */
    CHECK(attempts == 3 || attempts == 4);
    CHECK(total == 100.0 * attempts);
    gg_free(id1);
    gg_free(id2);
    /* A task submitted after that ends before its first attempt. */
    cJSON *r = run_task(o, SUB_TASK("run3", "\"budget\":{\"max_attempts\":10}"));
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 0);
    CHECK_CONTAINS(str(r, "reason"), "spent before its first attempt");
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    unsetenv("GRYPHGEN_MAX_TOKENS");

    /* A malformed value is ignored (no limit). */
    setenv("GRYPHGEN_MAX_TOKENS", "lots", 1);
    fake_reset(g, answers, 6, "{\"total_tokens\":100}");
    o = new_orq(gen, ev);
    r = o ? run_task(o, SUB_TASK("run4", "\"budget\":{\"max_attempts\":4}")) : NULL;
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 4);
    CHECK(num(r, "tokens") == 400);
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    unsetenv("GRYPHGEN_MAX_TOKENS");
    gg_generator_destroy(&gen);
}

/* The replay generator ignores the strategy: a repeated candidate, then the right one. */
static void test_replay_ignores_strategy(events *ev)
{
    gg_orchestrator_t *o = new_orq(NULL, ev);
    if (!o)
        return;
    cJSON *r = run_task(o, SUB_TASK("replay", "\"candidates\":[\"    return a + b\\n\","
                                              "\"    return a + b\\n\",\"    return a - b\\n\"]"));
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 3);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(hist(r, 1), "stuck")));
    CHECK(cJSON_IsObject(strategy(hist(r, 2))));
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    unsetenv("GRYPHGEN_MAX_TOKENS");
    fake_gen g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    static const char *const none[] = { "    pass\n" };
    fake_reset(&g, none, 1, NULL);

    gg_generator_t *gen = NULL;
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = fake_generate;
    vt.name = "fake";
    CHECK_RC(gg_generator_new_custom(&gen, &vt, &g), GG_OK);
    gg_orchestrator_t *o = gen ? new_orq(gen, &ev) : NULL;
    if (o) {
        test_same_code(o, &g, &ev);
        test_same_failure(o, &g, &ev);
        test_task_tokens(o, &g);
    }
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    test_run_tokens(&g, &ev);
    test_replay_ignores_strategy(&ev);
    fake_reset(&g, none, 1, NULL);
    pthread_mutex_destroy(&g.mu);
    pthread_mutex_destroy(&ev.mu);
    return test_exit();
}
