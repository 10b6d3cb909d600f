/*
 * test_learner.c - the learner thread (lib/orchestrator/learner.h) with a recording
 * retriever: feedback per attempt that used context and a solution document for a passing
 * task; nothing for other statuses; a push never blocks behind a slow retriever, and a full
 * queue drops its oldest result with a counted warning; shutdown drains within its bound and
 * counts what it left; the "none" retriever needs no learner. The slow retriever is one whose
 * feedback calls wait at a gate the test opens, so what the learner has done at each point
 * is known exactly, whatever the speed of the machine.
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
    pthread_cond_t cv;
    int gated;           /* feedback calls wait until the gate opens */
    int waiting;         /* feedback calls waiting at the gate now */
    char log[8192];      /* "fb:TASK:passed;" and "add:SOURCE:LANG;" in call order */
    int feedbacks, adds;
} rec;

static rec R = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "", 0, 0 };

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
    pthread_mutex_lock(&R.mu);
    R.waiting++;
    pthread_cond_broadcast(&R.cv);
    while (R.gated)
        pthread_cond_wait(&R.cv, &R.mu);
    R.waiting--;
    pthread_mutex_unlock(&R.mu);
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
static int stopping; /* the learner said it is stopping (a debug line) */
static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t warn_cv = PTHREAD_COND_INITIALIZER;

static void log_fn(void *user, int level, const char *msg)
{
    (void)user;
    pthread_mutex_lock(&warn_mu);
    if (level == GG_LOG_DEBUG) {
        stopping += strstr(msg, "stopping") != NULL;
        pthread_cond_broadcast(&warn_cv);
    } else if (strlen(warnings) + strlen(msg) + 2 < sizeof warnings) {
        strcat(warnings, msg);
        strcat(warnings, "\n");
    }
    pthread_mutex_unlock(&warn_mu);
}

static const ggi_logger logger = { log_fn, NULL, GG_LOG_DEBUG };

static void reset(int gated)
{
    pthread_mutex_lock(&R.mu);
    R.gated = gated;
    R.log[0] = '\0';
    R.feedbacks = R.adds = 0;
    pthread_mutex_unlock(&R.mu);
    pthread_mutex_lock(&warn_mu);
    warnings[0] = '\0';
    stopping = 0;
    pthread_mutex_unlock(&warn_mu);
}

static void open_gate(void)
{
    pthread_mutex_lock(&R.mu);
    R.gated = 0;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
}

static struct timespec deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    return ts;
}

/* Waits until a feedback call waits at the gate; 0 when none came before the deadline. */
static int wait_at_gate(void)
{
    struct timespec ts = deadline();
    pthread_mutex_lock(&R.mu);
    while (R.waiting == 0 && pthread_cond_timedwait(&R.cv, &R.mu, &ts) == 0) {
    }
    int waiting = R.waiting;
    pthread_mutex_unlock(&R.mu);
    return waiting > 0;
}

static int wait_stopping(void)
{
    struct timespec ts = deadline();
    pthread_mutex_lock(&warn_mu);
    while (!stopping && pthread_cond_timedwait(&warn_cv, &warn_mu, &ts) == 0) {
    }
    int s = stopping;
    pthread_mutex_unlock(&warn_mu);
    return s > 0;
}

static int feedbacks(void)
{
    pthread_mutex_lock(&R.mu);
    int n = R.feedbacks;
    pthread_mutex_unlock(&R.mu);
    return n;
}

typedef struct stopper {
    ggi_learner *l;
    double drain_ms;
    pthread_t thread;
} stopper;

static void *stop_main(void *arg)
{
    stopper *st = arg;
    ggi_learner_destroy(&st->l, st->drain_ms);
    return NULL;
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

typedef struct done_arg {
    ggi_learner *l;
    size_t n;
} done_arg;

static int done_reached(void *arg)
{
    done_arg *d = arg;
    return ggi_learner_done(d->l) >= d->n;
}

/* Waits until n results were learnt from. */
static int wait_done(ggi_learner *l, size_t n)
{
    done_arg d = { l, n };
    return test_wait_for(done_reached, &d);
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
    CHECK(wait_done(l, 4));
    CHECK_STR(R.log, "fb:t1:fail:2;fb:t1:pass:1;add:task:t1:python:solution;"
                     "fb:t2:fail:2;fb:t2:pass:1;");
    CHECK(ggi_learner_dropped(l) == 0);
    ggi_learner_destroy(&l, 1000);
    CHECK(l == NULL);

    /* A slow retriever (its first call held at the gate): pushes return while it is still
     * busy; a full queue drops its oldest. */
    reset(1);
    CHECK_RC(ggi_learner_new(r, &logger, 2, &l), 0);
    char id[16];
    ggi_learner_push(l, result("q0", "failed"));
    CHECK(wait_at_gate()); /* q0 is being learnt, the queue is empty */
    for (int i = 1; i < 6; i++) {
        snprintf(id, sizeof id, "q%d", i);
        ggi_learner_push(l, result(id, "failed"));
    }
    /* Every push returned with the retriever's call still waiting: none blocked on it. */
    pthread_mutex_lock(&R.mu);
    CHECK(R.waiting == 1 && R.feedbacks == 0);
    pthread_mutex_unlock(&R.mu);
    /* q1 and q2 filled the queue; q3, q4 and q5 each pushed the oldest out. */
    CHECK(ggi_learner_dropped(l) == 3);
    CHECK_CONTAINS(warnings, "dropped");
    CHECK_CONTAINS(warnings, "queue limit 2");
    open_gate();
    CHECK(wait_done(l, 3));
    pthread_mutex_lock(&R.mu);
    CHECK_STR(R.log, "fb:q0:fail:2;fb:q0:pass:1;fb:q4:fail:2;fb:q4:pass:1;"
                     "fb:q5:fail:2;fb:q5:pass:1;");
    pthread_mutex_unlock(&R.mu);
    CHECK(ggi_learner_dropped(l) == 3);
    ggi_learner_destroy(&l, 1000);

    /* Shutdown with a bound of 0: the call in progress is waited for, the rest is left and
     * counted. The gate opens only once the learner was told to stop. */
    reset(1);
    stopper st = { NULL, 0, 0 };
    CHECK_RC(ggi_learner_new(r, &logger, 100, &st.l), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "s%d", i);
        ggi_learner_push(st.l, result(id, "passed"));
    }
    CHECK(wait_at_gate()); /* s0 is being learnt, 29 are queued */
    CHECK(pthread_create(&st.thread, NULL, stop_main, &st) == 0);
    CHECK(wait_stopping());
    open_gate();
    pthread_join(st.thread, NULL);
    CHECK(st.l == NULL);
    CHECK(feedbacks() == 2); /* s0's two attempts with context, no more */
    CHECK_CONTAINS(warnings, "shutdown left 29 task results unlearnt");

    /* Shutdown with room to drain: everything queued is learnt, nothing left. */
    reset(1);
    st.l = NULL;
    st.drain_ms = TEST_DEADLINE_MS;
    CHECK_RC(ggi_learner_new(r, &logger, 100, &st.l), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "d%d", i);
        ggi_learner_push(st.l, result(id, "passed"));
    }
    CHECK(wait_at_gate());
    CHECK(pthread_create(&st.thread, NULL, stop_main, &st) == 0);
    CHECK(wait_stopping());
    open_gate();
    pthread_join(st.thread, NULL);
    CHECK(feedbacks() == 60);
    CHECK(strstr(warnings, "shutdown left") == NULL);

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
