/*
 * test_events.c - what the events of a task's course say (docs/events.md). The hub knows
 * only that it dispatched a job, never that the job began, so: task.started and
 * attempt.started announce the first dispatch of an attempt, once; every dispatch is
 * job.dispatched; and each job.dispatched is answered, before the next one of its task, by
 * attempt.finished (the attempt was made), job.requeued (the worker was lost or left with
 * it), job.retried (an infrastructure fault: no attempt was made) or task.finished. Seen
 * twice: a generator that fails once (embedded workers), and a worker that leaves holding
 * the job (a hand-written ggp/1 peer over tcp on loopback).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "gryphgen.h"
#include "gryphgen/sys/generator.h"
#include "orchestrator/orq.h"

#include "../grid/ggpeer.h"
#include "../testutil.h"

#define MAX_EVENTS 256

/* The events of one task, in the order the callback saw them. */
typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *task_id;
    cJSON *events[MAX_EVENTS];
    int n;
    int finished;
} seen;

static void on_event(void *user, const char *json)
{
    seen *s = user;
    cJSON *ev = cJSON_Parse(json);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "task_id"));
    pthread_mutex_lock(&s->mu);
    if (id && strcmp(id, s->task_id) == 0 && s->n < MAX_EVENTS) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
        if (type && strcmp(type, "task.finished") == 0)
            s->finished = 1;
        s->events[s->n++] = ev;
        ev = NULL;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(ev);
}

static void seen_init(seen *s, const char *task_id)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->task_id = task_id;
}

static void seen_free(seen *s)
{
    for (int i = 0; i < s->n; i++)
        cJSON_Delete(s->events[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Waits (up to 30 s) for the task's task.finished: it is delivered after its commit. */
static int wait_finished(seen *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&s->mu);
    while (!s->finished && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
        ;
    int done = s->finished;
    pthread_mutex_unlock(&s->mu);
    return done;
}

static const char *type_of(const cJSON *ev)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
}

static int count(const seen *s, const char *type)
{
    int k = 0;
    for (int i = 0; i < s->n; i++)
        k += strcmp(type_of(s->events[i]), type) == 0;
    return k;
}

static void print_events(const seen *s)
{
    for (int i = 0; i < s->n; i++) {
        char *t = cJSON_PrintUnformatted(s->events[i]);
        fprintf(stderr, "  event %d: %s\n", i, t ? t : "?");
        free(t);
    }
}

/*
 * The rule of docs/events.md: every job.dispatched is answered by exactly one of
 * attempt.finished, job.requeued, job.retried or task.finished before the next
 * job.dispatched; task.started comes once, before the first dispatch; attempt.started once
 * per later attempt; nothing of the course follows task.finished.
 */
static void check_course(const seen *s)
{
    int open = 0, failures = test_failures, ended = 0, announced = 0;
    for (int i = 0; i < s->n; i++) {
        const char *t = type_of(s->events[i]);
        int attempt = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(s->events[i], "attempt"));
        CHECK(!ended);
        if (strcmp(t, "task.started") == 0 || strcmp(t, "attempt.started") == 0) {
            CHECK(!open);
            CHECK(attempt == announced + 1); /* each attempt announced once, in order */
            CHECK((attempt == 1) == (strcmp(t, "task.started") == 0));
            announced = attempt;
        } else if (strcmp(t, "job.dispatched") == 0) {
            CHECK(!open);
            CHECK(attempt == announced);
            CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(s->events[i], "node")) != NULL);
            open = attempt;
        } else if (strcmp(t, "attempt.finished") == 0 || strcmp(t, "job.requeued") == 0 ||
                   strcmp(t, "job.retried") == 0) {
            CHECK(open && attempt == open);
            open = 0;
        } else if (strcmp(t, "task.finished") == 0) {
            open = 0;
            ended = 1;
        }
    }
    CHECK(ended);
    if (test_failures != failures)
        print_events(s);
}

/* ---- an infrastructure fault: the generator fails once, then answers ---- */

static atomic_int gen_calls;
static int gen_fail_at;   /* the call that fails (0: the first) */
static int gen_wrong;     /* calls before it answer wrong code (a repair follows) */

static int flaky_generate(void *self, const char *req, char **out)
{
    (void)self;
    (void)req;
    int call = atomic_fetch_add(&gen_calls, 1);
    if (call == gen_fail_at)
        return gg_error_set(GG_EGENERATOR, "model endpoint timed out");
    *out = gg_strdup(call < gen_wrong
                         ? "{\"code\": \"    return a - b\\n\", \"generator\": \"flaky\"}"
                         : "{\"code\": \"    return a + b\\n\", \"generator\": \"flaky\"}");
    return *out ? GG_OK : GG_ENOMEM;
}

/* The generator fails once at call fail_at; with repair, attempt 1 fails and attempt 2's
 * job is the one that comes back with the fault. */
static void test_infra_retry(int repair)
{
    seen s;
    seen_init(&s, "ev/retry");
    atomic_store(&gen_calls, 0);
    gen_fail_at = repair ? 1 : 0;
    gen_wrong = repair ? 1 : 0;
    gg_generator_vtable vt = GG_GENERATOR_VTABLE_INIT;
    vt.generate = flaky_generate;
    gg_generator_t *gen = NULL;
    CHECK_RC(gg_generator_new_custom(&gen, &vt, NULL), GG_OK);
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.workers = 1;
    opts.generator = gen;
    opts.event_fn = on_event;
    opts.event_user = &s;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    char *result = NULL;
    if (o) {
        CHECK_RC(gg_orchestrator_submit(o,
                     "{\"task_id\":\"ev/retry\",\"language\":\"python\",\"stub\":\"def add(a, b):\\n\","
                     "\"entry_point\":\"add\",\"test\":\"assert add(2, 3) == 5\\n\"}", NULL),
                 GG_OK);
        CHECK_RC(gg_orchestrator_wait(o, "ev/retry", 60000, &result), GG_OK);
        CHECK_CONTAINS(result, "\"status\":\"passed\"");
        CHECK(wait_finished(&s));
    }
    gg_free(result);
    gg_orchestrator_destroy(&o);
    gg_generator_destroy(&gen);

    CHECK(atomic_load(&gen_calls) == 2 + repair);
    CHECK(count(&s, "task.started") == 1);    /* not again when the job is sent again */
    CHECK(count(&s, "attempt.started") == repair); /* attempt 2, once */
    CHECK(count(&s, "job.dispatched") == 2 + repair);
    CHECK(count(&s, "job.retried") == 1);
    CHECK(count(&s, "attempt.finished") == 1 + repair);
    for (int i = 0; i < s.n; i++) {
        if (strcmp(type_of(s.events[i]), "job.retried") != 0)
            continue;
        CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(s.events[i], "stage")), "generate");
        CHECK_CONTAINS(cJSON_GetStringValue(cJSON_GetObjectItem(s.events[i], "reason")),
                       "timed out");
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(s.events[i], "retry")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(s.events[i], "attempt")) == 1 + repair);
    }
    check_course(&s);
    seen_free(&s);
}

/* ---- a worker that leaves holding the job (a raw ggp/1 peer) ---- */

/* The caps of a worker that runs python, and nothing more. */
static const char worker_caps[] =
    "{\"cores\":1,\"memory_mb\":1000,\"gpus\":0,\"runtimes\":[\"python3\"],"
    "\"executors\":[\"process\"],\"isolation\":[\"none\"],\"labels\":{}}";

static void test_worker_leaves(void)
{
    seen s;
    seen_init(&s, "ev/left");
    char ep[64];
    ggpeer_endpoint(ep, sizeof ep);
    gg_orchestrator_options opts = GG_ORCHESTRATOR_OPTIONS_INIT;
    opts.bind = ep;
    opts.insecure = 1;
    opts.local_workers = 0;
    opts.event_fn = on_event;
    opts.event_user = &s;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    if (!o) {
        seen_free(&s);
        return;
    }
    ggpeer first, second;
    ggpeer_open(&first, ep);
    CHECK(ggpeer_hello(&first, "leaves", 1, worker_caps));
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"ev/left\",\"language\":\"python\","
                                       "\"candidates\":[\"x = 1\\n\"]}", NULL), GG_OK);
    cJSON *jobs = ggpeer_recv(&first, "jobs", TEST_DEADLINE_MS);
    CHECK(jobs != NULL);
    /* It leaves holding the job, which it never ran: the job goes to the next worker. */
    ggpeer_send(&first, "{\"ggp\":1,\"t\":\"bye\"}");
    cJSON_Delete(jobs);
    ggpeer_open(&second, ep);
    CHECK(ggpeer_hello(&second, "stays", 1, worker_caps));
    jobs = ggpeer_recv(&second, "jobs", TEST_DEADLINE_MS);
    const cJSON *job = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
    CHECK(job != NULL);
    if (job) {
        ggpeer_send_record(&second, job, NULL,
                           "{\"passed\":true,\"code\":\"x = 1\\n\",\"reason\":null,"
                           "\"durations\":{\"total_ms\":5}}");
        char *result = NULL;
        CHECK_RC(gg_orchestrator_wait(o, "ev/left", (int)TEST_DEADLINE_MS, &result), GG_OK);
        CHECK_CONTAINS(result, "\"status\":\"passed\"");
        gg_free(result);
        CHECK(wait_finished(&s));
    }
    cJSON_Delete(jobs);
    gg_orchestrator_destroy(&o);
    ggpeer_close(&first);
    ggpeer_close(&second);

    CHECK(count(&s, "task.started") == 1);
    CHECK(count(&s, "job.dispatched") == 2);
    CHECK(count(&s, "job.requeued") == 1);
    CHECK(count(&s, "attempt.finished") == 1);
    int nodes_ok = 0;
    for (int i = 0, k = 0; i < s.n; i++) {
        const char *t = type_of(s.events[i]);
        const char *node = cJSON_GetStringValue(cJSON_GetObjectItem(s.events[i], "node"));
        if (strcmp(t, "job.dispatched") == 0)
            nodes_ok += node && strcmp(node, k++ == 0 ? "leaves" : "stays") == 0;
        if (strcmp(t, "job.requeued") == 0)
            nodes_ok += node && strcmp(node, "leaves") == 0;
    }
    CHECK(nodes_ok == 3);
    check_course(&s);
    seen_free(&s);
}

int main(void)
{
    test_infra_retry(0);
    test_infra_retry(1);
    test_worker_leaves();
    return test_exit();
}
