/*
 * test_custom_transport.c - the orchestrator, a worker and a client over a transport written
 * for the tests (qtransport.h; gryphgen/sys/transport.h), not ZeroMQ: an in-process queue per
 * socket, with identities, bounded queues and timeouts as the header asks. Tasks pass through
 * it from the embedded workers, from a gg_worker_t in a thread of its own and from a
 * gg_client_t; the transport counts what it carried, so the test knows it was used. Failure
 * paths: vtables with missing slots or an unknown version (destroy runs once), options that
 * do not go with a custom transport, a hub that cannot open, a worker or a client whose
 * endpoint has no hub (or none of whose endpoints has; a client given a list whose first has
 * none works on the next), and sends refused as full (GG_EBUSY) that lose no task.
 * Links the shared library only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gryphgen.h>
#include <gryphgen/sys/transport.h>

#include "qtransport.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

#define TASK(id, code)                                                                       \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"stub\":\"def add(a, b):\\n\","        \
    "\"entry_point\":\"add\",\"test\":\"def check(f):\\n    assert f(2, 3) == 5\\n\","       \
    "\"candidates\":[\"" code "\"]}"

static void check_passed(gg_orchestrator_t *o, const char *id, const char *want)
{
    char *res = NULL;
    CHECK_RC(gg_orchestrator_wait(o, id, (int)TEST_DEADLINE_MS, &res), GG_OK);
    char pat[64];
    snprintf(pat, sizeof pat, "\"status\":\"%s\"", want);
    CHECK_CONTAINS(res, pat);
    gg_free(res);
}

static gg_orchestrator_t *new_orq(gg_transport_t *tp, const char *bind, int local)
{
    gg_orchestrator_options oo;
    gg_orchestrator_options_init(&oo, GG_ORCHESTRATOR_OPTIONS_VERSION);
    oo.custom_transport = tp;
    oo.bind = bind;
    oo.local_workers = local;
    oo.workers = 2;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_OK);
    return o;
}

/* ---------------------------------------------------------------- tests */

/* The embedded workers talk to the scheduler over the host's transport. */
static void test_embedded(gg_transport_t *tp, qt *t)
{
    unsigned long before = carried(t);
    gg_orchestrator_t *o = new_orq(tp, NULL, 1);
    if (!o)
        return;
    CHECK_RC(gg_orchestrator_submit(o, TASK("e1", "    return a + b\\n"), NULL), GG_OK);
    CHECK_RC(gg_orchestrator_submit(o, TASK("e2", "    return a - b\\n"), NULL), GG_OK);
    check_passed(o, "e1", "passed");
    check_passed(o, "e2", "failed");
    CHECK(carried(t) - before >= 6); /* wakes, hellos, jobs and results went through it */
    gg_orchestrator_destroy(&o);
    CHECK(open_sockets(t) == 0);     /* every socket the orchestrator opened is closed */
    CHECK(t->destroyed == 0);        /* borrowed: the orchestrator does not destroy it */
}

typedef struct worker_thread {
    gg_worker_t *w;
    int rc;
} worker_thread;

static void *run_worker(void *arg)
{
    worker_thread *wt = arg;
    wt->rc = gg_worker_run(wt->w);
    return NULL;
}

/* Starts a worker of slots named name on the host's transport tp, connecting to connect, on
 * a thread of its own (wt->w stays NULL when it could not be made). */
static void worker_start(worker_thread *wt, pthread_t *th, gg_transport_t *tp,
                         const char *connect, const char *name)
{
    gg_worker_options wo;
    gg_worker_options_init(&wo, GG_WORKER_OPTIONS_VERSION);
    wo.connect = connect;
    wo.custom_transport = tp;
    wo.slots = 2;
    wo.name = name;
    wt->w = NULL;
    wt->rc = -1;
    CHECK_RC(gg_worker_new(&wt->w, &wo), GG_OK);
    if (wt->w && pthread_create(th, NULL, run_worker, wt) != 0) {
        CHECK(!"worker thread started");
        gg_worker_destroy(&wt->w);
    }
}

/* Stops the worker started by worker_start; its run must have ended without an error. */
static void worker_end(worker_thread *wt, pthread_t th)
{
    if (!wt->w)
        return;
    gg_worker_stop(wt->w);
    pthread_join(th, NULL);
    CHECK_RC(wt->rc, GG_OK);
    gg_worker_destroy(&wt->w);
}

/* Submits n copies of a passing task named prefix0..prefix{n-1} to o. */
static void submit_passing(gg_orchestrator_t *o, const char *prefix, int n)
{
    char buf[512];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"%s%d\",\"language\":\"python\",\"stub\":"
                 "\"def add(a, b):\\n\",\"entry_point\":\"add\",\"test\":\"def check(f):\\n"
                 "    assert f(2, 3) == 5\\n\",\"candidates\":[\"    return a + b\\n\"]}",
                 prefix, i);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), GG_OK);
    }
}

/* A worker of its own and a client, both on the host's transport; the orchestrator runs
 * no local worker, so every task went through the transport to that worker. */
static void test_remote_worker_and_client(gg_transport_t *tp, qt *t)
{
    gg_orchestrator_t *o = new_orq(tp, "bus://grid", 0);
    if (!o)
        return;
    worker_thread wt;
    pthread_t th;
    worker_start(&wt, &th, tp, "bus://grid", "bus-worker");

    gg_client_options co;
    gg_client_options_init(&co, GG_CLIENT_OPTIONS_VERSION);
    co.connect = "bus://nobody,bus://grid"; /* a list: the first has no hub, the second */
    co.custom_transport = tp;
    co.name = "bus-client";
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), GG_OK);
    char *id = NULL, *res = NULL;
    if (c) {
        CHECK_RC(gg_client_submit(c, TASK("r1", "    return a + b\\n"), &id), GG_OK);
        CHECK_STR(id, "r1");
        CHECK_RC(gg_client_wait(c, "r1", (int)TEST_DEADLINE_MS, &res), GG_OK);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
        res = NULL;
        CHECK_RC(gg_client_status(c, NULL, &res), GG_OK);
        CHECK_CONTAINS(res, "bus-worker"); /* the node the tasks ran on */
        gg_free(res);
    }
    gg_free(id);
    /* Many at once through the orchestrator's API, run by the remote worker only. */
    submit_passing(o, "m", 20);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    CHECK_CONTAINS(stats, "\"passed\":21");
    gg_free(stats);
    gg_client_destroy(&c);
    worker_end(&wt, th);
    gg_orchestrator_destroy(&o);
    CHECK(open_sockets(t) == 0);
    CHECK(t->destroyed == 0);
}

/* A transport that refuses sends as full (every fourth here) loses no task: the worker keeps
 * its results, the scheduler its jobs, a lost hello or wake is made good by heartbeats. */
static void test_full_queues(gg_transport_t *tp, qt *t)
{
    pthread_mutex_lock(&t->mu);
    t->refuse_every = 4;
    t->refused = 0;
    pthread_mutex_unlock(&t->mu);
    gg_orchestrator_t *o = new_orq(tp, NULL, 1);
    if (!o)
        return;
    submit_passing(o, "f", 30);
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    CHECK_CONTAINS(stats, "\"passed\":30");
    gg_free(stats);
    gg_orchestrator_destroy(&o);
    pthread_mutex_lock(&t->mu);
    t->refuse_every = 0;
    unsigned long refused = t->refused;
    pthread_mutex_unlock(&t->mu);
    printf("full queues: %lu sends refused with GG_EBUSY\n", refused);
    CHECK(refused > 0);
}

/* A welcome the transport refuses as full (twice here) is sent again before anything else
 * for that worker, which takes no job before its welcome: it gets its jobs, every task
 * passes, and nothing reached it ahead of the welcome. */
static void test_refused_welcome(gg_transport_t *tp, qt *t)
{
    pthread_mutex_lock(&t->mu);
    snprintf(t->welcome_node, sizeof t->welcome_node, "late-welcome");
    t->refuse_welcomes = 2;
    t->welcome_peer_len = 0;
    t->welcomes = t->before_welcome = 0;
    pthread_mutex_unlock(&t->mu);
    gg_orchestrator_t *o = new_orq(tp, "bus://welcome", 0);
    if (!o)
        return;
    submit_passing(o, "w", 6);
    worker_thread wt;
    pthread_t th;
    worker_start(&wt, &th, tp, "bus://welcome", "late-welcome");
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    CHECK_CONTAINS(stats, "\"passed\":6");
    gg_free(stats);
    if (wt.w) {
        CHECK_RC(gg_worker_stats(wt.w, &stats), GG_OK);
        CHECK_CONTAINS(stats, "\"dropped\":0"); /* no job came before the welcome */
        gg_free(stats);
    }
    worker_end(&wt, th);
    gg_orchestrator_destroy(&o);
    pthread_mutex_lock(&t->mu);
    int left = t->refuse_welcomes;
    unsigned long welcomes = t->welcomes, before = t->before_welcome;
    t->welcome_node[0] = '\0';
    t->welcome_peer_len = 0;
    pthread_mutex_unlock(&t->mu);
    printf("refused welcome: %lu welcome(s) went, %lu message(s) before the first\n", welcomes,
           before);
    CHECK(left == 0);
    CHECK(welcomes == 1);
    CHECK(before == 0);
}

/* Options that do not go with a host's transport, and faults of the transport. */
static void test_refusals(gg_transport_t *tp, qt *t)
{
    gg_orchestrator_options oo;
    gg_orchestrator_options_init(&oo, GG_ORCHESTRATOR_OPTIONS_VERSION);
    oo.custom_transport = tp;
    gg_orchestrator_t *o = NULL;
    oo.bind = "bus://a,bus://b";
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "one endpoint name");
    oo.bind = NULL;
    oo.transport = "zmq";
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "disagree");
    oo.transport = NULL;
    oo.curve_key_file = "server.key";
    oo.authorized_keys_file = "keys";
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "does its own security");
    oo.curve_key_file = NULL;
    oo.authorized_keys_file = NULL;
    gg_orchestrator_options plain;
    gg_orchestrator_options_init(&plain, GG_ORCHESTRATOR_OPTIONS_VERSION);
    plain.transport = "custom"; /* without the handle */
    CHECK_RC(gg_orchestrator_new(&o, &plain), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "custom_transport");

    /* The hub cannot open: the orchestrator is not made, and says why. */
    pthread_mutex_lock(&t->mu);
    t->fail_hub_open = 1;
    pthread_mutex_unlock(&t->mu);
    CHECK_RC(gg_orchestrator_new(&o, &oo), GG_ETRANSPORT);
    CHECK(o == NULL);
    CHECK_CONTAINS(gg_error_last(), "on purpose");
    pthread_mutex_lock(&t->mu);
    t->fail_hub_open = 0;
    pthread_mutex_unlock(&t->mu);
    CHECK(open_sockets(t) == 0);

    /* A worker whose endpoint has no hub: run says so at once. */
    gg_worker_options wo;
    gg_worker_options_init(&wo, GG_WORKER_OPTIONS_VERSION);
    wo.connect = "bus://nobody";
    wo.custom_transport = tp;
    wo.slots = 1;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), GG_OK);
    if (w)
        CHECK_RC(gg_worker_run(w), GG_ENOTFOUND);
    gg_worker_destroy(&w);
    /* A list where no endpoint has a hub: the same, with the first one's error. */
    wo.connect = "bus://nobody,bus://none";
    CHECK_RC(gg_worker_new(&w, &wo), GG_OK);
    if (w)
        CHECK_RC(gg_worker_run(w), GG_ENOTFOUND);
    gg_worker_destroy(&w);
    wo.curve_key_file = "w.key";
    wo.curve_server_key = "x";
    CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "does its own security");

    gg_client_options co;
    gg_client_options_init(&co, GG_CLIENT_OPTIONS_VERSION);
    co.connect = "bus://nobody";
    co.custom_transport = tp;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), GG_ENOTFOUND);
    CHECK(c == NULL);
    co.connect = "bus://nobody,bus://none";
    CHECK_RC(gg_client_new(&c, &co), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "none of the endpoints");
    CHECK(c == NULL);
    CHECK(open_sockets(t) == 0);
}

static int vt_destroyed;
static void count_destroy(void *self)
{
    (void)self;
    vt_destroyed++;
}

/* gg_transport_new_custom checks the vtable; ownership of self passes either way. */
static void test_bad_vtables(void)
{
    static const char *const slots[] = { "hub_open", "hub_recv", "hub_send", "peer_open",
                                         "peer_recv", "peer_send", "close" };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        gg_transport_vtable vt = qt_vtable();
        vt.destroy = count_destroy;
        void **slot = i == 0 ? (void **)&vt.hub_open : i == 1 ? (void **)&vt.hub_recv
                    : i == 2 ? (void **)&vt.hub_send : i == 3 ? (void **)&vt.peer_open
                    : i == 4 ? (void **)&vt.peer_recv : i == 5 ? (void **)&vt.peer_send
                             : (void **)&vt.close;
        *slot = NULL;
        vt_destroyed = 0;
        gg_transport_t *tp = (gg_transport_t *)&vt; /* must come back NULL */
        CHECK_RC(gg_transport_new_custom(&tp, &vt, NULL), GG_EINVAL);
        CHECK(tp == NULL && vt_destroyed == 1);
        CHECK_CONTAINS(gg_error_last(), slots[i]);
    }
    gg_transport_vtable vt = qt_vtable();
    vt.destroy = count_destroy;
    vt.version = GG_TRANSPORT_VTABLE_VERSION + 1;
    vt_destroyed = 0;
    gg_transport_t *tp = NULL;
    CHECK_RC(gg_transport_new_custom(&tp, &vt, NULL), GG_EVERSION);
    CHECK(tp == NULL && vt_destroyed == 1);
    CHECK_RC(gg_transport_new_custom(&tp, NULL, NULL), GG_EINVAL);
    vt.version = GG_TRANSPORT_VTABLE_VERSION;
    vt_destroyed = 0;
    CHECK_RC(gg_transport_new_custom(NULL, &vt, NULL), GG_EINVAL);
    CHECK(vt_destroyed == 1);
    /* A good one with a NULL self: destroy still runs once, from gg_transport_destroy. */
    vt_destroyed = 0;
    CHECK_RC(gg_transport_new_custom(&tp, &vt, NULL), GG_OK);
    CHECK(vt_destroyed == 0);
    gg_transport_destroy(&tp);
    CHECK(tp == NULL && vt_destroyed == 1);
    gg_transport_destroy(&tp);
    gg_transport_destroy(NULL);
    CHECK(vt_destroyed == 1);
}

int main(void)
{
    setenv("GRYPHGEN_PYTHON", "/usr/bin/python3", 0);
    test_bad_vtables();
    qt t;
    memset(&t, 0, sizeof t);
    pthread_mutex_init(&t.mu, NULL);
    gg_transport_vtable vt = qt_vtable();
    gg_transport_t *tp = NULL;
    CHECK_RC(gg_transport_new_custom(&tp, &vt, &t), GG_OK);
    if (tp) {
        test_embedded(tp, &t);
        test_remote_worker_and_client(tp, &t);
        test_full_queues(tp, &t);
        test_refused_welcome(tp, &t);
        test_refusals(tp, &t);
    }
    gg_transport_destroy(&tp);
    CHECK(t.destroyed == 1);
    pthread_mutex_destroy(&t.mu);
    return test_exit();
}
