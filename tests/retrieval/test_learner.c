/*
 * test_learner.c - the learner thread (lib/orchestrator/learner.h) with a recording
 * retriever: feedback per attempt that used context and a solution document for a passing
 * task; nothing for other statuses; a push never blocks behind a slow retriever, and a full
 * queue drops its oldest result with a counted warning; shutdown drains within its bound and
 * counts what it left; the "none" retriever needs no learner.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gryphgen.h"
#include "gryphgen/sys/retriever.h"
#include "orchestrator/learner.h"
#include "testutil.h"

typedef struct rec {
    pthread_mutex_t mu;
    int delay_ms;
    char log[8192];      /* "fb:TASK:passed;" and "add:SOURCE:LANG;" in call order */
    int feedbacks, adds;
} rec;

static rec R = { PTHREAD_MUTEX_INITIALIZER, 0, "", 0, 0 };

static int r_search(void *self, const char *q, char **out)
{
    (void)self;
    (void)q;
    *out = gg_strdup("{\"results\":[]}");
    return GG_OK;
}

static void append(const char *s)
{
    pthread_mutex_lock(&R.mu);
    if (strlen(R.log) + strlen(s) + 1 < sizeof R.log)
        strcat(R.log, s);
    pthread_mutex_unlock(&R.mu);
}

static int r_feedback(void *self, const char *fb)
{
    (void)self;
    if (R.delay_ms)
        ggi_sleep_ms(R.delay_ms);
    cJSON *j = cJSON_Parse(fb);
    char line[256];
    snprintf(line, sizeof line, "fb:%s:%s:%d;",
             cJSON_GetStringValue(cJSON_GetObjectItem(j, "task_id")),
             cJSON_IsTrue(cJSON_GetObjectItem(j, "passed")) ? "pass" : "fail",
             cJSON_GetArraySize(cJSON_GetObjectItem(j, "ids")));
    cJSON_Delete(j);
    append(line);
    pthread_mutex_lock(&R.mu);
    R.feedbacks++;
    pthread_mutex_unlock(&R.mu);
    return GG_OK;
}

static int r_add(void *self, const char *doc, char **out)
{
    (void)self;
    (void)out;
    cJSON *j = cJSON_Parse(doc);
    char line[256];
    snprintf(line, sizeof line, "add:%s:%s:%s;",
             cJSON_GetStringValue(cJSON_GetObjectItem(j, "source")),
             cJSON_GetStringValue(cJSON_GetObjectItem(j, "language")),
             cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind")));
    cJSON_Delete(j);
    append(line);
    pthread_mutex_lock(&R.mu);
    R.adds++;
    pthread_mutex_unlock(&R.mu);
    return GG_OK;
}

static char warnings[4096];
static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;

static void log_fn(void *user, int level, const char *msg)
{
    (void)user;
    (void)level;
    pthread_mutex_lock(&warn_mu);
    if (strlen(warnings) + strlen(msg) + 2 < sizeof warnings) {
        strcat(warnings, msg);
        strcat(warnings, "\n");
    }
    pthread_mutex_unlock(&warn_mu);
}

static const ggi_logger logger = { log_fn, NULL, GG_LOG_DEBUG };

static void reset(int delay_ms)
{
    pthread_mutex_lock(&R.mu);
    R.delay_ms = delay_ms;
    R.log[0] = '\0';
    R.feedbacks = R.adds = 0;
    pthread_mutex_unlock(&R.mu);
    pthread_mutex_lock(&warn_mu);
    warnings[0] = '\0';
    pthread_mutex_unlock(&warn_mu);
}

static cJSON *result(const char *task, const char *status)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"task_id\":\"%s\",\"status\":\"%s\",\"code\":\"def f():\\n    return 1\\n\","
             "\"history\":[{\"attempt\":1,\"passed\":false,\"language\":\"python\","
             "\"context_ids\":[\"3\",\"4\"]},{\"attempt\":2,\"passed\":true,"
             "\"language\":\"python\",\"context_ids\":[\"3\"]},{\"attempt\":3,"
             "\"passed\":false}]}",
             task, status);
    return cJSON_Parse(buf);
}

static int wait_done(ggi_learner *l, size_t n, double ms)
{
    double end = ggi_now_ms() + ms;
    while (ggi_learner_done(l) < n && ggi_now_ms() < end)
        ggi_sleep_ms(5);
    return ggi_learner_done(l) >= n;
}

int main(void)
{
    gg_retriever_vtable vt = GG_RETRIEVER_VTABLE_INIT;
    vt.search = r_search;
    vt.feedback = r_feedback;
    vt.add = r_add;
    vt.name = "recording";
    gg_retriever_t *r = NULL;
    CHECK_RC(gg_retriever_new_custom(&r, &vt, NULL), 0);

    /* What one result turns into. */
    reset(0);
    ggi_learner *l = NULL;
    CHECK_RC(ggi_learner_new(r, &logger, 8, &l), 0);
    CHECK(l != NULL);
    ggi_learner_push(l, result("t1", "passed"));
    ggi_learner_push(l, result("t2", "failed"));
    ggi_learner_push(l, result("t3", "error"));
    ggi_learner_push(l, result("t4", "cancelled"));
    ggi_learner_push(l, NULL);
    CHECK(wait_done(l, 4, 5000));
    CHECK_STR(R.log, "fb:t1:fail:2;fb:t1:pass:1;add:task:t1:python:solution;"
                     "fb:t2:fail:2;fb:t2:pass:1;");
    CHECK(ggi_learner_dropped(l) == 0);
    ggi_learner_destroy(&l, 1000);
    CHECK(l == NULL);

    /* A slow retriever: pushes return at once; a full queue drops its oldest. */
    reset(150);
    CHECK_RC(ggi_learner_new(r, &logger, 2, &l), 0);
    double t0 = ggi_now_ms();
    char id[16];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "q%d", i);
        ggi_learner_push(l, result(id, "failed"));
    }
    double push_ms = ggi_now_ms() - t0;
    fprintf(stderr, "6 pushes took %.2f ms\n", push_ms);
    CHECK(push_ms < 100); /* one feedback call alone takes 150 ms */
    size_t dropped = ggi_learner_dropped(l);
    CHECK(dropped >= 3 && dropped <= 4); /* queue of 2, plus the one being learnt */
    CHECK_CONTAINS(warnings, "dropped");
    CHECK_CONTAINS(warnings, "queue limit 2");
    CHECK(wait_done(l, 6 - dropped, 10000));
    CHECK_CONTAINS(R.log, "fb:q5:"); /* the newest was kept */
    /* Which of the older ones were dropped depends on when the thread took its first;
     * exactly the undropped ones were learnt. */
    size_t learnt = 0;
    for (const char *p = R.log; (p = strstr(p, ":fail:2;")) != NULL; p++)
        learnt++;
    CHECK(learnt == 6 - dropped);
    ggi_learner_destroy(&l, 1000);

    /* Shutdown drains within its bound and counts what it left. */
    reset(100);
    CHECK_RC(ggi_learner_new(r, &logger, 100, &l), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "s%d", i);
        ggi_learner_push(l, result(id, "passed"));
    }
    t0 = ggi_now_ms();
    ggi_learner_destroy(&l, 250);
    double stop_ms = ggi_now_ms() - t0;
    fprintf(stderr, "shutdown took %.0f ms for %d feedback calls\n", stop_ms, R.feedbacks);
    CHECK(stop_ms < 250 + 2 * 100 + 300); /* the bound, the call in progress, slack */
    CHECK(R.feedbacks >= 2 && R.feedbacks < 60);
    CHECK_CONTAINS(warnings, "shutdown left");

    /* Nothing to learn with "none"; a NULL learner accepts everything. */
    gg_retriever_t *none = NULL;
    CHECK_RC(gg_retriever_new(&none, NULL), 0);
    l = (ggi_learner *)1;
    CHECK_RC(ggi_learner_new(none, &logger, 8, &l), 0);
    CHECK(l == NULL);
    ggi_learner_push(NULL, result("n", "passed"));
    CHECK(ggi_learner_dropped(NULL) == 0 && ggi_learner_done(NULL) == 0);
    ggi_learner_destroy(&l, 0);
    ggi_learner_destroy(NULL, 0);
    CHECK_RC(ggi_learner_new(r, &logger, 0, &l), GG_EINVAL);
    CHECK(l == NULL);
    gg_retriever_destroy(&none);
    gg_retriever_destroy(&r);
    return test_exit();
}
