/*
 * test_orchestrator.c - the attempt loop end to end on the embedded orchestrator: passes,
 * repairs from feedback, analysis failures, budgets, cancellation, waiting, events, bad
 * input, custom backends that fail, priorities. Tasks that must still be running at some
 * point are held by a gate in front of the executor (their code carries GATE_MARK) until the
 * test lets them go: nothing depends on how fast the machine is.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gryphgen.h>
#include <gryphgen/sys/executor.h>
#include <gryphgen/sys/generator.h>

#include "store/store.h"
#include "testutil.h"

/* ---- a gate in front of the process executor ---- */

#define GATE_MARK "gg-test-gate"

/* Jobs whose request holds GATE_MARK wait until the gate is open or a permit is given (one
 * job each); every other job runs at once. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gg_executor_t *real;
    int open, permits, held; /* held: jobs waiting at the gate now */
    int passed;              /* marked jobs let through so far */
} gate;

static int gate_run(void *self, const char *req, char **out)
{
    gate *g = self;
    if (strstr(req, GATE_MARK)) {
        pthread_mutex_lock(&g->mu);
        g->held++;
        pthread_cond_broadcast(&g->cv);
        while (!g->open && g->permits == 0)
            pthread_cond_wait(&g->cv, &g->mu);
        if (!g->open)
            g->permits--;
        g->held--;
        g->passed++;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    return gg_executor_run(g->real, req, out);
}

/* Shutting down opens the gate, so nothing waits forever. */
static int gate_interrupt(void *self)
{
    gate *g = self;
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return gg_executor_interrupt(g->real);
}

static void gate_init(gate *g, gg_executor_t **out)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    CHECK_RC(gg_executor_new(&g->real, NULL), GG_OK);
    gg_executor_vtable vt = GG_EXECUTOR_VTABLE_INIT;
    vt.run = gate_run;
    vt.interrupt = gate_interrupt;
    vt.name = "process"; /* what it runs with: the same isolation levels */
    CHECK_RC(gg_executor_new_custom(out, &vt, g), GG_OK);
}

static void gate_destroy(gate *g, gg_executor_t **ex)
{
    gg_executor_destroy(ex);
    gg_executor_destroy(&g->real);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void gate_set(gate *g, int open, int permits)
{
    pthread_mutex_lock(&g->mu);
    g->open = open;
    g->permits += permits;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until a marked job waits at the gate; 0 when none came before the deadline. */
static int gate_wait_held(gate *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (g->held == 0 && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    int held = g->held;
    pthread_mutex_unlock(&g->mu);
    return held > 0;
}

static cJSON *run_task(gg_orchestrator_t *o, const char *json)
{
    char *id = NULL, *res = NULL;
    int rc = gg_orchestrator_submit(o, json, &id);
    if (rc != GG_OK) {
        fprintf(stderr, "submit failed: %s\n", gg_error_last());
        return NULL;
    }
    rc = gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res);
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

typedef struct events {
    pthread_mutex_t mu;
    int started, finished, attempts;
    char order[16][32];
    int n_order;
} events;

static void on_event(void *user, const char *json)
{
    events *e = user;
    cJSON *ev = cJSON_Parse(json);
    const char *type = str(ev, "type");
    pthread_mutex_lock(&e->mu);
    if (type && strcmp(type, "task.started") == 0) {
        e->started++;
        if (e->n_order < 16)
            snprintf(e->order[e->n_order++], 32, "%s", str(ev, "task_id"));
    }
    if (type && strcmp(type, "task.finished") == 0)
        e->finished++;
    if (type && strcmp(type, "attempt.finished") == 0)
        e->attempts++;
    pthread_mutex_unlock(&e->mu);
    cJSON_Delete(ev);
}

typedef struct slow_state {
    gate *g;
    gg_orchestrator_t *o;
} slow_state;

/* The last permit was taken, and then the task "slow" ended or its next job waits at the
 * gate. */
static int slow_ended_or_held(void *arg)
{
    slow_state *st = arg;
    char *res = NULL;
    int rc = gg_orchestrator_result(st->o, "slow", &res);
    gg_free(res);
    pthread_mutex_lock(&st->g->mu);
    int held = st->g->held, permits = st->g->permits;
    pthread_mutex_unlock(&st->g->mu);
    return permits == 0 && (rc != GG_EAGAIN || held > 0);
}

static void test_pipeline(void)
{
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    gate g;
    gg_executor_t *gex = NULL;
    gate_init(&g, &gex);
    gg_orchestrator_options opts;
    CHECK_RC(gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION), GG_OK);
    opts.executor = gex;
    opts.workers = 2;
    opts.event_fn = on_event;
    opts.event_user = &ev;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    if (!o)
        return;

    /* Passes at once. */
    cJSON *r = run_task(o, "{\"task_id\":\"p1\",\"language\":\"python\",\"stub\":\"def add(a, b):\\n\","
                           "\"entry_point\":\"add\",\"test\":\"def check(f):\\n    assert f(1, 2) == 3\\n\","
                           "\"candidates\":[\"    return a + b\\n\"]}");
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 1);
    CHECK(num(r, "passed_attempt") == 1);
    CHECK_CONTAINS(str(r, "code"), "def add(a, b):\n    return a + b");
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(hist(r, 0), "execution")));
    cJSON_Delete(r);

    /* Repaired: a wrong first candidate, its failure fed back, the second passes. */
    r = run_task(o, "{\"task_id\":\"p2\",\"language\":\"python\",\"stub\":\"def sub(a, b):\\n\","
                    "\"entry_point\":\"sub\",\"test\":\"def check(f):\\n    assert f(5, 2) == 3\\n\","
                    "\"candidates\":[\"    return a + b\\n\",\"    return a - b\\n\"]}");
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 2);
    CHECK(num(r, "passed_attempt") == 2);
    CHECK_CONTAINS(str(hist(r, 0), "reason"), "AssertionError");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(hist(r, 0), "passed")));
    cJSON_Delete(r);

    /* Syntax error: an analysis finding, nothing executed, then repaired. */
    r = run_task(o, "{\"task_id\":\"p3\",\"language\":\"python\",\"stub\":\"def one():\\n\","
                    "\"entry_point\":\"one\",\"test\":\"def check(f):\\n    assert f() == 1\\n\","
                    "\"candidates\":[\"    return (1\\n\",\"    return 1\\n\"]}");
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 2);
    const cJSON *an = cJSON_GetObjectItem(hist(r, 0), "analysis");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(an, "ok")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(an, "findings")) >= 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(hist(r, 0), "execution")));
    CHECK_CONTAINS(str(hist(r, 0), "reason"), "does not compile");
    cJSON_Delete(r);

    /* Fails every candidate: failed, best attempt kept, reason says why. */
    r = run_task(o, "{\"task_id\":\"p4\",\"language\":\"python\",\"stub\":\"def two():\\n\","
                    "\"entry_point\":\"two\",\"test\":\"def check(f):\\n    assert f() == 2\\n\","
                    "\"candidates\":[\"    return (\\n\",\"    return 3\\n\"]}");
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 2);
    CHECK(num(r, "best_attempt") == 2); /* the one that ran beats the one that did not compile */
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(r, "passed_attempt")));
    CHECK(str(r, "reason") != NULL);
    cJSON_Delete(r);

    /* Budget: one attempt only. */
    r = run_task(o, "{\"task_id\":\"p5\",\"language\":\"python\",\"budget\":{\"max_attempts\":1},"
                    "\"test\":\"assert x == 2\\n\",\"candidates\":[\"x = 1\\n\",\"x = 2\\n\"]}");
    CHECK_STR(str(r, "status"), "failed");
    CHECK(num(r, "attempts") == 1);
    CHECK_CONTAINS(str(r, "reason"), "1 attempt");
    cJSON_Delete(r);

    /* No candidates with the default replay generator: an error, not a failure of code. */
    r = run_task(o, "{\"task_id\":\"p6\",\"language\":\"python\",\"test\":\"pass\\n\"}");
    CHECK_STR(str(r, "status"), "error");
    CHECK(num(r, "attempts") == 0);
    CHECK(str(r, "reason") != NULL);
    cJSON_Delete(r);

    /* Timeout of a busy loop, then the repair (the limit also bounds the passing candidate:
     * 10 s leave a slow machine under ASan room to start Python in its sandbox; the busy
     * loop costs the whole limit once). */
    r = run_task(o, "{\"task_id\":\"p7\",\"language\":\"python\",\"resources\":{\"timeout_s\":10},"
                    "\"test\":\"assert f() == 1\\n\","
                    "\"candidates\":[\"def f():\\n    while True: pass\\n\",\"def f():\\n    return 1\\n\"]}");
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 2);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(hist(r, 0), "execution"), "timed_out")));
    cJSON_Delete(r);

    /* C: compile error found by analysis, then a passing program. */
    r = run_task(o, "{\"task_id\":\"c1\",\"language\":\"c\",\"stub\":\"int sq(int x) {\\n\","
                    "\"entry_point\":\"sq\",\"test\":\"int main(void) { return sq(3) == 9 ? 0 : 1; }\\n\","
                    "\"candidates\":[\"    return x * x\\n}\\n\",\"    return x * x;\\n}\\n\"]}");
    CHECK_STR(str(r, "status"), "passed");
    CHECK(num(r, "attempts") == 2);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(hist(r, 0), "analysis"), "ok")));
    cJSON_Delete(r);

    /* The same task again is the same task; other content under its id is refused. */
    char *id = NULL;
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"p5\",\"language\":\"python\",\"budget\":{\"max_attempts\":1},"
                                       "\"test\":\"assert x == 2\\n\",\"candidates\":[\"x = 1\\n\",\"x = 2\\n\"]}", &id), GG_OK);
    CHECK_STR(id, "p5");
    gg_free(id);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"p5\",\"language\":\"python\",\"test\":\"\"}", NULL),
             GG_EEXIST);
    CHECK_CONTAINS(gg_error_last(), "p5");

    /* A task without an id gets a deterministic one. */
    char *id2 = NULL;
    CHECK_RC(gg_orchestrator_submit(o, "{\"language\":\"python\",\"candidates\":[\"x=1\\n\"]}", &id), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, "{\"language\":\"python\",\"candidates\":[\"x=1\\n\"]}", &id2), GG_OK);
    CHECK(id && strncmp(id, "task-", 5) == 0);
    CHECK_STR(id, id2);
    gg_free(id);
    gg_free(id2);

    /* Bad input names the field. */
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"b1\"}", NULL), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "language");
    CHECK_RC(gg_orchestrator_submit(o, "{not json", NULL), GG_EINVAL);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"b2\",\"language\":\"python\",\"budget\":{\"max_attempts\":\"x\"}}", NULL), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "max_attempts");
    CHECK_RC(gg_orchestrator_submit(NULL, "{}", NULL), GG_EINVAL);
    CHECK_RC(gg_orchestrator_submit(o, NULL, NULL), GG_EINVAL);

    /* Unknown tasks. */
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, "nope", 10, &res), GG_ENOTFOUND);
    CHECK_RC(gg_orchestrator_result(o, "nope", &res), GG_ENOTFOUND);
    CHECK_RC(gg_orchestrator_cancel(o, "nope"), GG_ENOTFOUND);
    CHECK_RC(gg_orchestrator_cancel(o, "p1"), GG_ESTATE);

    /* Waiting times out on a task that is still running (held at the gate); cancelling it
     * ends it as cancelled once its attempt returns. Its first candidate fails and its second
     * passes: a cancel that was lost would end it passed. The gate lets one job through at a
     * time, so the cancel is read before any later attempt can return. */
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"slow\",\"language\":\"python\",\"test\":\"assert x == 2\\n\","
                                       "\"candidates\":[\"# " GATE_MARK "\\nx = 1\\n\",\"# " GATE_MARK "\\nx = 2\\n\"]}",
                                    NULL), GG_OK);
    CHECK(gate_wait_held(&g));
    CHECK_RC(gg_orchestrator_wait(o, "slow", 300, &res), GG_ETIMEDOUT);
    CHECK_RC(gg_orchestrator_result(o, "slow", &res), GG_EAGAIN);
    CHECK_RC(gg_orchestrator_cancel(o, "slow"), GG_OK);
    slow_state st = { &g, o };
    for (int i = 0; i < 16; i++) {
        gate_set(&g, 0, 1);
        /* The permit taken (or the task ended), then the next job held or the end. */
        CHECK(test_wait_for(slow_ended_or_held, &st));
        res = NULL;
        int rc = gg_orchestrator_result(o, "slow", &res);
        gg_free(res);
        if (rc != GG_EAGAIN)
            break;
    }
    gate_set(&g, 1, 0);
    CHECK_RC(gg_orchestrator_wait(o, "slow", (int)TEST_DEADLINE_MS, &res), GG_OK);
    CHECK_CONTAINS(res, "\"status\":\"cancelled\"");
    gg_free(res);

    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    CHECK_CONTAINS(stats, "\"queued\":0");
    CHECK_CONTAINS(stats, "\"running\":0");
    gg_free(stats);
    gg_orchestrator_destroy(&o);
    CHECK(o == NULL);
    gate_destroy(&g, &gex);
    /* Events arrived for every task (they are delivered before waiters are woken). */
    CHECK(ev.finished >= 10);
    CHECK(ev.started >= 10);
    CHECK(ev.attempts >= 12);
    pthread_mutex_destroy(&ev.mu);
}

/* ---- custom backends that fail ---- */

static atomic_int gen_calls, gen_destroyed, exec_destroyed;

static int failing_generate(void *self, const char *req, char **out)
{
    (void)self;
    (void)req;
    (void)out;
    atomic_fetch_add(&gen_calls, 1);
    return gg_error_set(GG_EGENERATOR, "model endpoint refused the connection");
}

static void count_gen_destroy(void *self)
{
    (void)self;
    atomic_fetch_add(&gen_destroyed, 1);
}

static int failing_run(void *self, const char *req, char **out)
{
    (void)self;
    (void)req;
    (void)out;
    return gg_error_set(GG_EEXEC, "node lost");
}

static void count_exec_destroy(void *self)
{
    (void)self;
    atomic_fetch_add(&exec_destroyed, 1);
}

static void test_faulty_backends(void)
{
    gg_generator_vtable gvt = GG_GENERATOR_VTABLE_INIT;
    gvt.generate = failing_generate;
    gvt.destroy = count_gen_destroy;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &gvt, NULL), GG_OK);
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.workers = 1;
    opts.generator = gen;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    cJSON *r = run_task(o, "{\"task_id\":\"g1\",\"language\":\"python\",\"candidates\":[\"x=1\\n\"]}");
    CHECK_STR(str(r, "status"), "error");
    CHECK(num(r, "attempts") == 0); /* infrastructure faults are not attempts of the code */
    CHECK_CONTAINS(str(r, "reason"), "refused");
    CHECK(atomic_load(&gen_calls) == 1 + 3); /* first try and three retries */
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);
    CHECK(atomic_load(&gen_destroyed) == 1);

    gg_executor_vtable evt = GG_EXECUTOR_VTABLE_INIT;
    evt.run = failing_run;
    evt.destroy = count_exec_destroy;
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new_custom(&ex, &evt, NULL), GG_OK);
    gg_orchestrator_options o2 = GG_ORCHESTRATOR_OPTIONS_INIT;
    o2.workers = 1;
    o2.executor = ex;
    CHECK_RC(gg_orchestrator_new(&o, &o2), GG_OK);
    r = run_task(o, "{\"task_id\":\"e1\",\"language\":\"python\",\"candidates\":[\"x=1\\n\"]}");
    CHECK_STR(str(r, "status"), "error");
    CHECK_CONTAINS(str(r, "reason"), "node lost");
    cJSON_Delete(r);
    gg_orchestrator_destroy(&o);
    gg_executor_destroy(&ex);
    CHECK(atomic_load(&exec_destroyed) == 1);
}

static void test_options(void)
{
    gg_orchestrator_t *o = (gg_orchestrator_t *)1;
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.version = 99;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_EVERSION);
    CHECK(o == NULL);
    CHECK_RC(gg_orchestrator_options_init(&opts, 42), GG_EVERSION);
    opts = (gg_orchestrator_options)GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.transport = "carrier-pigeon";
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_EINVAL);
    opts = (gg_orchestrator_options)GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.db_path = "/nonexistent-dir/x/y.db";
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_ESTORE);
    CHECK_CONTAINS(gg_error_last(), "/nonexistent-dir/x/y.db");
    CHECK_RC(gg_orchestrator_new(NULL, NULL), GG_EINVAL);
    gg_orchestrator_destroy(NULL);
}

/* Queued tasks start by priority, then by age. */
static void test_priority(void)
{
    char path[] = "/tmp/gg-test-prio-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), GG_OK);
    ggi_store_close(&s);
    /* Submit through one orchestrator that has no time to run them: destroy requeues. */
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    gate g;
    gg_executor_t *gex = NULL;
    gate_init(&g, &gex);
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.executor = gex;
    opts.workers = 1;
    opts.db_path = path;
    opts.event_fn = on_event;
    opts.event_user = &ev;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    /* A blocker holds the only worker (at the gate) while the others are submitted. */
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"blocker\",\"language\":\"python\",\"priority\":1000,"
                                       "\"candidates\":[\"# " GATE_MARK "\\nx = 1\\n\"]}", NULL), GG_OK);
    CHECK(gate_wait_held(&g));
    const char *names[] = { "low-a", "low-b", "mid", "high", "low-c" };
    const int prio[] = { 0, 0, 5, 9, 0 };
    for (int i = 0; i < 5; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s\",\"language\":\"python\",\"priority\":%d,"
                                  "\"candidates\":[\"x = 1\\n\"]}", names[i], prio[i]);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), GG_OK);
    }
    gate_set(&g, 1, 0);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    gg_orchestrator_destroy(&o);
    gate_destroy(&g, &gex);
    CHECK(g.passed >= 1); /* the blocker went through the gate */
    CHECK(ev.n_order == 6);
    CHECK_STR(ev.order[0], "blocker");
    /* While the blocker ran, the worker's one queued place was filled with the best task
     * claimed by then (which depends on how many submissions the claim saw); after it,
     * priority decides, then submission order. */
    int rank[6], n_rank = 0;
    for (int i = 2; i < ev.n_order; i++) {
        for (int k = 0; k < 5; k++)
            if (!strcmp(ev.order[i], names[k]))
                rank[n_rank++] = k;
    }
    CHECK(n_rank == 4);
    for (int i = 1; i < n_rank; i++) {
        int a = rank[i - 1], b = rank[i];
        CHECK(prio[a] > prio[b] || (prio[a] == prio[b] && a < b));
    }
    pthread_mutex_destroy(&ev.mu);
    unlink(path);
    char side[64];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    test_options();
    test_pipeline();
    test_faulty_backends();
    test_priority();
    return test_exit();
}
