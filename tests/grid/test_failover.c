/*
 * test_failover.c - workers and clients that follow the active orchestrator (issue 20): a
 * connect option may list several endpoints ("EP1,EP2"), and a peer moves to the next one
 * when its hub answers "passive:" (a standby), when its connection closes (a hub killed with
 * -9: the socket monitor sees it at once) or when nobody listens there. Checked: malformed
 * lists are GG_EINVAL; a fake passive hub (a raw ROUTER answering "passive:") in front of a
 * real orchestrator: the worker and the client end up on the real one; every endpoint down:
 * a request fails with GG_ETIMEDOUT naming them, a worker keeps trying and still stops when
 * asked; a hub that accepts connections and never answers is left after 3 heartbeat
 * intervals; a worker with one endpoint started before its hub joins without reconnecting;
 * a watch through a list reaches the active hub; a result finished while no hub welcomed the
 * worker reaches the next hub after its welcome, its lease listed in the hello; two
 * orchestrators sharing nothing, the first a `gryphgen serve` child killed with -9 while the
 * worker runs its job: the worker moves, its held result goes to the second (which drops it:
 * it never gave that lease), and the client's submission, sent again there, succeeds; a
 * worker that says hello again over a new connection keeps its leases (same instance id),
 * another instance does not. The fake hubs share one ROUTER loop (fake_start) and differ in
 * their message handlers. Every wait is on state, with TEST_DEADLINE_MS only against a hang.
 */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "gryphgen/client.h"
#include "gryphgen/sys/executor.h"
#include "gryphgen/worker.h"
#include "orchestrator/orq.h"

#include "../testdb.h"
#include "../testutil.h"
#include "ggpeer.h"

extern char **environ;

static char dir[256];

/* ---- fake hubs: a raw ROUTER on a fresh loopback endpoint whose thread hands each
 * message (routing id, text) to the hub's handler; without a handler nothing is ever read
 * (a hung process: connections complete, nothing answers) ---- */

typedef struct fake_hub fake_hub;
typedef void (*fake_handler)(fake_hub *h, const char *id, int idn, const char *body);

struct fake_hub {
    char ep[64];
    void *ctx, *sock;
    pthread_t th;
    atomic_int stop;
    fake_handler handle;
    void *user; /* the handler's */
};

static void hub_send(fake_hub *h, const char *id, int idn, const char *text)
{
    zmq_send(h->sock, id, (size_t)idn, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(h->sock, text, strlen(text), ZMQ_DONTWAIT);
}

static void *fake_main(void *arg)
{
    fake_hub *h = arg;
    while (!atomic_load(&h->stop)) {
        zmq_pollitem_t it = { h->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 20) <= 0)
            continue;
        char id[256], body[65536];
        int idn = zmq_recv(h->sock, id, sizeof id, 0);
        int n = zmq_recv(h->sock, body, sizeof body - 1, 0);
        if (idn <= 0 || n < 0)
            continue;
        body[n < (int)sizeof body - 1 ? n : (int)sizeof body - 1] = '\0';
        h->handle(h, id, idn, body);
    }
    return NULL;
}

static void fake_start(fake_hub *h, fake_handler handle, void *user)
{
    memset(h, 0, sizeof *h);
    h->handle = handle;
    h->user = user;
    ggpeer_endpoint(h->ep, sizeof h->ep);
    h->ctx = zmq_ctx_new();
    h->sock = zmq_socket(h->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(h->sock, ZMQ_LINGER, &zero, sizeof zero);
    CHECK(zmq_bind(h->sock, h->ep) == 0);
    if (handle)
        CHECK(pthread_create(&h->th, NULL, fake_main, h) == 0);
}

static void fake_stop(fake_hub *h)
{
    atomic_store(&h->stop, 1);
    if (h->handle)
        pthread_join(h->th, NULL);
    zmq_close(h->sock);
    zmq_ctx_term(h->ctx);
}

/* A passive hub: answers every message but heartbeats "passive:", counting what came. */
typedef struct passive_hub {
    fake_hub hub;
    atomic_int worker_hellos, client_hellos, requests;
} passive_hub;

static void passive_handle(fake_hub *hub, const char *id, int idn, const char *body)
{
    passive_hub *h = hub->user;
    cJSON *m = cJSON_Parse(body);
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(m, "t"));
    const char *role = cJSON_GetStringValue(cJSON_GetObjectItem(m, "role"));
    long long rid = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(m, "rid"));
    if (t && strcmp(t, "hello") == 0)
        atomic_fetch_add(role && strcmp(role, "worker") == 0 ? &h->worker_hellos
                                                             : &h->client_hellos, 1);
    else if (t && strcmp(t, "hb") != 0)
        atomic_fetch_add(&h->requests, 1);
    int beat = t && strcmp(t, "hb") == 0;
    cJSON_Delete(m);
    if (beat)
        return;
    char reply[256];
    snprintf(reply, sizeof reply,
             "{\"ggp\":1,\"t\":\"reply\",\"rid\":%lld,\"ok\":false,\"code\":-10,"
             "\"message\":\"passive: this orchestrator is the backup\"}", rid > 0 ? rid : 0);
    hub_send(hub, id, idn, reply);
}

static void passive_start(passive_hub *h)
{
    memset(h, 0, sizeof *h);
    fake_start(&h->hub, passive_handle, h);
}

/* ---- helpers ---- */

/* An orchestrator without local workers bound to ep, its database dir/name. */
static gg_orchestrator_t *serve_at(const char *ep, const char *name)
{
    char db[300];
    snprintf(db, sizeof db, "%s/%s", dir, name);
    gg_orchestrator_options o = GG_ORCHESTRATOR_OPTIONS_INIT;
    o.db_path = db;
    o.bind = ep;
    o.insecure = 1;
    o.local_workers = 0;
    gg_orchestrator_t *orch = NULL;
    CHECK_RC(gg_orchestrator_new(&orch, &o), 0);
    return orch;
}

/* serve_at() on a fresh endpoint, written to ep (64 bytes). */
static gg_orchestrator_t *serve_here(char *ep, const char *name)
{
    ggpeer_endpoint(ep, 64);
    return serve_at(ep, name);
}

static gg_client_t *client_to(const char *connect, int timeout_ms)
{
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = connect;
    co.insecure = 1;
    co.timeout_ms = timeout_ms;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), 0);
    return c;
}

static gg_worker_t *worker_to(const char *connect, const char *name, gg_executor_t *ex)
{
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = connect;
    wo.insecure = 1;
    wo.name = name;
    wo.slots = 1;
    wo.executor = ex;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), 0);
    return w;
}

static void *run_worker(void *w)
{
    gg_worker_run(w);
    return NULL;
}

/* The worker's counter key (a number), or -1. */
static long long worker_stat(gg_worker_t *w, const char *key)
{
    char *s = NULL;
    return gg_worker_stats(w, &s) == 0 ? ggpeer_stat_of(s, key) : -1;
}

/* Whether the worker's hub of the moment (stats "endpoint") is ep. */
static int worker_on(gg_worker_t *w, const char *ep)
{
    char *s = NULL;
    if (gg_worker_stats(w, &s) != 0)
        return 0;
    cJSON *j = cJSON_Parse(s);
    const char *at = cJSON_GetStringValue(cJSON_GetObjectItem(j, "endpoint"));
    int on = at && strcmp(at, ep) == 0;
    cJSON_Delete(j);
    gg_free(s);
    return on;
}

typedef struct on_arg {
    gg_worker_t *w;
    const char *ep;
} on_arg;

static int worker_on_cond(void *arg)
{
    on_arg *a = arg;
    return worker_on(a->w, a->ep);
}

typedef struct stat_arg {
    gg_worker_t *w;
    gg_orchestrator_t *o;
    const char *key;
    long long want;
} stat_arg;

static int stat_cond(void *arg)
{
    stat_arg *a = arg;
    return (a->w ? worker_stat(a->w, a->key) : ggpeer_hub_stat(a->o, a->key)) >= a->want;
}

static int hub_nodes(gg_orchestrator_t *o)
{
    return (int)ggpeer_hub_stat(o, "nodes");
}

static int one_node(void *o)
{
    return hub_nodes(o) >= 1;
}

/* Joins the worker's thread after a stop: 1 when it ended within TEST_DEADLINE_MS. */
static int join_within(pthread_t th)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(TEST_DEADLINE_MS / 1000);
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

static gg_executor_t *noop_executor(void)
{
    gg_executor_options eo = GG_EXECUTOR_OPTIONS_INIT;
    eo.backend = "noop";
    gg_executor_t *ex = NULL;
    CHECK_RC(gg_executor_new(&ex, &eo), 0);
    return ex;
}

/* A worker running on its own thread; ex is its noop executor, or NULL (the default). */
typedef struct running_worker {
    gg_executor_t *ex;
    gg_worker_t *w;
    pthread_t th;
} running_worker;

static gg_worker_t *worker_start(running_worker *r, const char *connect, const char *name,
                                 int noop)
{
    r->ex = noop ? noop_executor() : NULL;
    r->w = worker_to(connect, name, r->ex);
    CHECK(pthread_create(&r->th, NULL, run_worker, r->w) == 0);
    return r->w;
}

/* Stops the worker: its thread must end within TEST_DEADLINE_MS, in its backoff too. */
static void worker_end(running_worker *r)
{
    gg_worker_stop(r->w);
    CHECK(join_within(r->th));
    gg_worker_destroy(&r->w);
    gg_executor_destroy(&r->ex);
}

/* ---- malformed lists ---- */

static void test_bad_lists(void)
{
    char many[20 * 40] = "";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%stcp://127.0.0.1:%d",
                 i ? "," : "", 21000 + i);
    char sixteen[20 * 40];
    snprintf(sixteen, sizeof sixteen, "%s", many);
    *strrchr(sixteen, ',') = '\0';
    const char *bad[] = { "", ",", "tcp://127.0.0.1:21000,", ",tcp://127.0.0.1:21000",
                          "tcp://127.0.0.1:21000,,tcp://127.0.0.1:21001",
                          "tcp://127.0.0.1:21000,tcp://10.1.2.3:5555",
                          "tcp://127.0.0.1:21000,tcp://127.0.0.1:21000", many };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gg_client_options co = GG_CLIENT_OPTIONS_INIT;
        co.connect = bad[i];
        co.insecure = 1;
        gg_client_t *c = NULL;
        CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
        CHECK(c == NULL);
        gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
        wo.connect = bad[i];
        wo.insecure = 1;
        gg_worker_t *w = NULL;
        CHECK_RC(gg_worker_new(&w, &wo), GG_EINVAL);
        CHECK(w == NULL);
    }
    /* the messages name what is wrong */
    gg_client_options co = GG_CLIENT_OPTIONS_INIT;
    co.connect = many;
    co.insecure = 1;
    gg_client_t *c = NULL;
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "more than 16");
    co.connect = "tcp://127.0.0.1:21000,tcp://10.1.2.3:5555";
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "tcp://10.1.2.3:5555");
    co.insecure = 0; /* every entry needs keys or insecure */
    co.connect = "inproc://x,tcp://127.0.0.1:21000";
    CHECK_RC(gg_client_new(&c, &co), GG_EINVAL);
    /* sixteen is the documented maximum; blanks around entries are dropped */
    co.insecure = 1;
    co.connect = sixteen;
    CHECK_RC(gg_client_new(&c, &co), 0);
    gg_client_destroy(&c);
    co.connect = "tcp://127.0.0.1:21000 , tcp://127.0.0.1:21001";
    CHECK_RC(gg_client_new(&c, &co), 0);
    gg_client_destroy(&c);
    gg_worker_options wo = GG_WORKER_OPTIONS_INIT;
    wo.connect = sixteen;
    wo.insecure = 1;
    gg_worker_t *w = NULL;
    CHECK_RC(gg_worker_new(&w, &wo), 0);
    gg_worker_destroy(&w);
}

/* ---- a watch through a list ---- */

typedef struct watch_arg {
    gg_client_t *c;
    int rc;
    atomic_int got;
} watch_arg;

static int on_finished(void *user, const char *event_json)
{
    watch_arg *a = user;
    if (strstr(event_json, "\"task.finished\"")) {
        atomic_store(&a->got, 1);
        return 1;
    }
    return 0;
}

static void *run_watch(void *arg)
{
    watch_arg *a = arg;
    a->rc = gg_client_watch_filtered(a->c, "task.finished", on_finished, a,
                                     (int)TEST_DEADLINE_MS);
    return NULL;
}

static int watchers_at_least_one(void *c)
{
    char *st = NULL;
    if (gg_client_status(c, NULL, &st) != 0)
        return 0;
    cJSON *j = cJSON_Parse(st);
    gg_free(st);
    int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "watchers"));
    cJSON_Delete(j);
    return n >= 1;
}

/* ---- a passive hub first, then the active one ---- */

static void test_passive_then_active(void)
{
    passive_hub ph;
    passive_start(&ph);
    char ep[64], list[160];
    gg_orchestrator_t *o = serve_here(ep, "active.db");
    snprintf(list, sizeof list, "%s,%s", ph.hub.ep, ep);
    running_worker rw;
    gg_worker_t *w = worker_start(&rw, list, "follower", 1);
    on_arg oa = { w, ep };
    CHECK(test_wait_for(worker_on_cond, &oa));
    CHECK(test_wait_for(one_node, o));
    CHECK(atomic_load(&ph.worker_hellos) >= 1); /* it did ask the passive one first */
    CHECK(worker_stat(w, "failovers") >= 1);

    /* The client's request goes to the passive hub, is refused there, and is sent again to
     * the active one. */
    gg_client_t *c = client_to(list, (int)TEST_DEADLINE_MS);
    char *id = NULL, *res = NULL;
    CHECK_RC(gg_client_submit(c, "{\"task_id\":\"pa1\",\"language\":\"python\",\"prompt\":\"p\","
                              "\"candidates\":[\"x\"]}", &id), 0);
    CHECK_STR(id, "pa1");
    CHECK(atomic_load(&ph.client_hellos) >= 1);
    /* Its counters: the submission went twice (the passive hub, then the active one), one
     * reply came, one move to the second endpoint, whose hub welcomed it. */
    gg_client_stats cs = GG_CLIENT_STATS_INIT;
    CHECK_RC(gg_client_get_stats(c, &cs), 0);
    CHECK(cs.requests == 2);
    CHECK(cs.replies == 1);
    CHECK(cs.failovers == 1);
    CHECK(cs.timeouts == 0);
    CHECK(cs.endpoint_index == 1);
    CHECK_STR(cs.endpoint, ep);
    CHECK_RC(gg_client_wait(c, "pa1", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_RC(gg_client_get_stats(c, &cs), 0);
    CHECK(cs.requests == 3 && cs.replies == 2 && cs.failovers == 1);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    gg_free(id);
    id = NULL;
    /* submit stays idempotent: the same task again is its id; other content is refused */
    CHECK_RC(gg_client_submit(c, "{\"task_id\":\"pa1\",\"language\":\"python\",\"prompt\":\"p\","
                              "\"candidates\":[\"x\"]}", &id), 0);
    CHECK_STR(id, "pa1");
    gg_free(id);
    id = NULL;
    CHECK(gg_client_submit(c, "{\"task_id\":\"pa1\",\"language\":\"python\",\"prompt\":\"q\","
                           "\"candidates\":[\"x\"]}", &id) != 0);
    CHECK(id == NULL);
    gg_client_destroy(&c);

    /* A watch through the list subscribes on the active one and gets its events. */
    watch_arg wa = { client_to(list, (int)TEST_DEADLINE_MS), -1, 0 };
    int hellos = atomic_load(&ph.client_hellos);
    pthread_t wt;
    CHECK(pthread_create(&wt, NULL, run_watch, &wa) == 0);
    gg_client_t *direct = client_to(ep, (int)TEST_DEADLINE_MS);
    CHECK(test_wait_for(watchers_at_least_one, direct));
    CHECK(atomic_load(&ph.client_hellos) > hellos); /* it asked the passive one first */
    CHECK_RC(gg_client_submit(direct, "{\"task_id\":\"pa2\",\"language\":\"python\","
                              "\"prompt\":\"p\",\"candidates\":[\"x\"]}", NULL), 0);
    CHECK(join_within(wt));
    CHECK_RC(wa.rc, 0);
    CHECK(atomic_load(&wa.got) == 1);
    gg_client_destroy(&wa.c);
    gg_client_destroy(&direct);

    /* Only passive hubs: a request runs out of time naming them, the worker keeps asking. */
    gg_client_t *c2 = client_to(ph.hub.ep, 1500);
    char *st = NULL;
    CHECK_RC(gg_client_status(c2, NULL, &st), GG_ETIMEDOUT);
    CHECK_CONTAINS(gg_error_last(), ph.hub.ep);
    cs = (gg_client_stats)GG_CLIENT_STATS_INIT;
    CHECK_RC(gg_client_get_stats(c2, &cs), 0);
    CHECK(cs.timeouts == 1);
    CHECK(cs.requests >= 1);
    CHECK(cs.replies == 0);
    CHECK(cs.failovers == 0); /* one endpoint: asked again there, not a move */
    CHECK(cs.endpoint_index == -1);
    CHECK_STR(cs.endpoint, "");
    /* Bad calls, and a caller built with a shorter struct (up to failovers): nothing past
     * its size is written. */
    CHECK_RC(gg_client_get_stats(NULL, &cs), GG_EINVAL);
    CHECK_RC(gg_client_get_stats(c2, NULL), GG_EINVAL);
    cs.size = 0;
    CHECK_RC(gg_client_get_stats(c2, &cs), GG_EINVAL);
    CHECK_CONTAINS(gg_error_last(), "size");
    memset(&cs, 0x5a, sizeof cs);
    cs.size = offsetof(gg_client_stats, endpoint_index);
    CHECK_RC(gg_client_get_stats(c2, &cs), 0);
    CHECK(cs.size == offsetof(gg_client_stats, endpoint_index));
    CHECK(cs.timeouts == 1);
    CHECK(cs.endpoint_index == 0x5a5a5a5a);
    gg_client_destroy(&c2);

    worker_end(&rw);
    gg_orchestrator_destroy(&o);
    fake_stop(&ph.hub);
}

/* ---- every endpoint down ---- */

static void test_all_down(void)
{
    char a[64], b[64], list[160];
    ggpeer_endpoint(a, sizeof a);
    do
        ggpeer_endpoint(b, sizeof b);
    while (strcmp(a, b) == 0);
    snprintf(list, sizeof list, "%s,%s", a, b);
    gg_client_t *c = client_to(list, 1500);
    char *st = NULL;
    double t0 = ggi_now_ms();
    CHECK_RC(gg_client_status(c, NULL, &st), GG_ETIMEDOUT);
    /* within its deadline (the guard is generous: only a hang fails it) */
    CHECK(ggi_now_ms() - t0 < 1500 + TEST_DEADLINE_MS / 4);
    CHECK_CONTAINS(gg_error_last(), a);
    CHECK_CONTAINS(gg_error_last(), b);
    CHECK(st == NULL);
    gg_client_destroy(&c);

    running_worker rw;
    gg_worker_t *w = worker_start(&rw, list, "orphan", 1);
    stat_arg sa = { w, NULL, "reconnects", 4 };
    CHECK(test_wait_for(stat_cond, &sa)); /* it keeps trying, round robin */
    CHECK(!worker_on(w, a) && !worker_on(w, b));
    worker_end(&rw); /* and stops when asked, in its backoff too */
}

/* ---- kill -9 the first of two independent orchestrators ---- */

static pid_t spawn_serve(const char *ep, const char *db)
{
    const char *root = getenv("GG_BUILD_ROOT");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/cli/gryphgen", root ? root : ".");
    char *argv[] = { exe, "serve", "--bind", (char *)ep, "--db", (char *)db, "--insecure",
                     "--log-level", "error", NULL };
    pid_t pid = 0;
    CHECK(posix_spawn(&pid, exe, NULL, NULL, argv, environ) == 0);
    return pid;
}

typedef struct answer_arg {
    gg_client_t *c;
} answer_arg;

static int answers(void *arg)
{
    char *st = NULL;
    int ok = gg_client_status(((answer_arg *)arg)->c, NULL, &st) == 0;
    gg_free(st);
    return ok;
}

static void test_kill9_moves(void)
{
    char a[64], dba[300], flag[300], list[160], task[1024];
    ggpeer_endpoint(a, sizeof a);
    snprintf(dba, sizeof dba, "%s/first.db", dir);
    snprintf(flag, sizeof flag, "%s/go", dir);
    pid_t pid = spawn_serve(a, dba);
    char b[64];
    gg_orchestrator_t *ob = serve_here(b, "second.db");
    CHECK(strcmp(a, b) != 0);
    snprintf(list, sizeof list, "%s,%s", a, b);

    gg_client_t *ca = client_to(a, 2000); /* to know when the child serves */
    answer_arg aa = { ca };
    CHECK(test_wait_for(answers, &aa));
    gg_client_destroy(&ca);

    /* The client and the worker start on the first. */
    gg_client_t *c = client_to(list, (int)TEST_DEADLINE_MS);
    char *st = NULL;
    CHECK_RC(gg_client_status(c, NULL, &st), 0);
    gg_free(st);
    running_worker rw;
    gg_worker_t *w = worker_start(&rw, list, "mover", 0);
    on_arg oa = { w, a };
    CHECK(test_wait_for(worker_on_cond, &oa));
    /* A job that runs until the test says so (the file flag exists). */
    snprintf(task, sizeof task,
             "{\"task_id\":\"held\",\"language\":\"python\",\"prompt\":\"p\","
             "\"resources\":{\"timeout_s\":600},\"candidates\":[\"import os, time\\n"
             "while not os.path.exists('%s'):\\n    time.sleep(0.02)\\n\"]}", flag);
    char *id = NULL;
    CHECK_RC(gg_client_submit(c, task, &id), 0);
    gg_free(id);
    stat_arg held = { w, NULL, "held", 1 };
    CHECK(test_wait_for(stat_cond, &held));

    kill(pid, SIGKILL);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));

    /* The worker moves to the second at once (its connection closed), still holding the
     * job; its result, once there, is dropped by the second: it never gave that lease. */
    on_arg ob_on = { w, b };
    CHECK(test_wait_for(worker_on_cond, &ob_on));
    CHECK(worker_stat(w, "held") >= 1);
    CHECK(worker_stat(w, "failovers") >= 1);
    FILE *f = fopen(flag, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    stat_arg stale = { NULL, ob, "stale", 1 };
    CHECK(test_wait_for(stat_cond, &stale));
    stat_arg sent = { w, NULL, "results", 1 };
    CHECK(test_wait_for(stat_cond, &sent));

    /* The client's submission goes to the first (dead): it is sent again to the second. */
    char *res = NULL;
    CHECK_RC(gg_client_submit(c, "{\"task_id\":\"after\",\"language\":\"python\",\"prompt\":\"p\","
                              "\"candidates\":[\"x = 1\\n\"]}", &id), 0);
    CHECK_STR(id, "after");
    gg_free(id);
    CHECK_RC(gg_client_wait(c, "after", (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    CHECK(worker_on(w, b));

    gg_client_destroy(&c);
    worker_end(&rw);
    gg_orchestrator_destroy(&ob);
}


/* ---- a worker that says hello again over a new connection keeps its leases ---- */

/* Says hello as worker name (2 slots) with an instance id and, when not NULL, the leases it
 * holds (a JSON array's text), and waits for the welcome. */
static void hello_as(ggpeer *p, const char *name, const char *instance, const char *leases)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"ggp\":1,\"t\":\"hello\",\"role\":\"worker\",\"name\":\"%s\","
             "\"versions\":[1],\"slots\":2,\"queue\":0,\"instance\":\"%s\"%s%s,"
             "\"caps\":{\"executors\":[\"noop\"]}}", name, instance,
             leases ? ",\"leases\":" : "", leases ? leases : "");
    ggpeer_send(p, buf);
    cJSON *w = ggpeer_recv(p, "welcome", TEST_DEADLINE_MS);
    CHECK(w != NULL);
    cJSON_Delete(w);
}

static const char *const PASS = "{\"passed\":true,\"reason\":\"ok\",\"code\":\"x\"}";

/* Receives jobs until want of them came (appended to all, an array). */
static void recv_jobs(ggpeer *p, cJSON *all, int want)
{
    while (cJSON_GetArraySize(all) < want) {
        cJSON *m = ggpeer_recv(p, "jobs", TEST_DEADLINE_MS);
        CHECK(m != NULL);
        if (!m)
            return;
        cJSON *j;
        cJSON_ArrayForEach(j, cJSON_GetObjectItem(m, "jobs"))
            cJSON_AddItemToArray(all, cJSON_Duplicate(j, 1));
        cJSON_Delete(m);
    }
}

static void test_leases_kept_by_instance(void)
{
    char ep[64];
    gg_orchestrator_t *o = serve_here(ep, "adopt.db");
    const char *inst = "0123456789abcdef0123456789abcdef";
    ggpeer a;
    ggpeer_open(&a, ep);
    hello_as(&a, "keeper", inst, NULL);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"k1\",\"language\":\"python\","
                                    "\"prompt\":\"p\",\"candidates\":[\"x\"]}", NULL), 0);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"k2\",\"language\":\"python\","
                                    "\"prompt\":\"p\",\"candidates\":[\"x\"]}", NULL), 0);
    cJSON *jobs = cJSON_CreateArray();
    recv_jobs(&a, jobs, 2);
    cJSON *kept = cJSON_GetArrayItem(jobs, 0);
    CHECK(kept != NULL);
    if (!kept) {
        cJSON_Delete(jobs);
        ggpeer_close(&a);
        gg_orchestrator_destroy(&o);
        return;
    }

    /* Another instance under the same name, on a new connection: the lease is not its. */
    ggpeer other;
    ggpeer_open(&other, ep);
    hello_as(&other, "keeper", "ffffffffffffffffffffffffffffffff", NULL);
    ggpeer_send_record(&other, kept, NULL, PASS);
    stat_arg foreign = { NULL, o, "foreign", 1 };
    CHECK(test_wait_for(stat_cond, &foreign));
    ggpeer_close(&other);

    /* The same instance over a new connection (it reconnected), holding one of the two jobs
     * (the other was lost on the way): that lease moves with it and its result counts; the
     * other job is requeued with the old connection. */
    char leases[64];
    snprintf(leases, sizeof leases, "[\"%s\"]",
             cJSON_GetStringValue(cJSON_GetObjectItem(kept, "lease")));
    ggpeer b;
    ggpeer_open(&b, ep);
    hello_as(&b, "keeper", inst, leases);
    stat_arg requeued = { NULL, o, "requeued", 1 };
    CHECK(test_wait_for(stat_cond, &requeued));
    ggpeer_send_record(&b, kept, NULL, PASS);
    char *res = NULL;
    const char *kept_id = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(kept, "task"), "task_id"));
    CHECK(kept_id != NULL);
    if (!kept_id)
        kept_id = "k1";
    CHECK_RC(gg_orchestrator_wait(o, kept_id, (int)TEST_DEADLINE_MS, &res), 0);
    CHECK_CONTAINS(res, "\"status\":\"passed\"");
    gg_free(res);
    CHECK(ggpeer_hub_stat(o, "requeued") == 1);
    CHECK(ggpeer_hub_stat(o, "foreign") == 1);
    cJSON_Delete(jobs);
    ggpeer_close(&a);
    ggpeer_close(&b);
    gg_orchestrator_destroy(&o);
}

/* ---- the jobs a worker carries from before its hello count against its capacity ---- */

/* The node's busy and carried in the hub's status (-1 each when it is not listed). */
static void node_load(gg_client_t *c, const char *name, int *busy, int *carried)
{
    char *st = NULL;
    *busy = *carried = -1;
    CHECK_RC(gg_client_status(c, NULL, &st), 0);
    cJSON *j = cJSON_Parse(st ? st : "{}");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(j, "nodes"))
    {
        const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(x, "name"));
        if (nm && strcmp(nm, name) == 0) {
            *busy = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(x, "busy"));
            *carried = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(x, "carried"));
        }
    }
    cJSON_Delete(j);
    gg_free(st);
}

static void test_carried_leases_take_room(void)
{
    char ep[64];
    gg_orchestrator_t *o = serve_here(ep, "carried.db");
    gg_client_t *c = NULL;
    CHECK_RC(gg_orchestrator_connect(o, "looker", &c), 0);
    static const char old1[] = "0000000000000000000000000000aaa1";
    static const char old2[] = "0000000000000000000000000000aaa2";
    char leases[96];
    snprintf(leases, sizeof leases, "[\"%s\",\"%s\"]", old2, old1);
    /* A worker of 2 slots comes over from another hub holding 2 of its jobs: it is full. */
    ggpeer p;
    ggpeer_open(&p, ep);
    hello_as(&p, "carrier", "00000000000000000000000000000ca1", leases);
    int busy, carried;
    node_load(c, "carrier", &busy, &carried);
    CHECK(busy == 2);
    CHECK(carried == 2);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"c1\",\"language\":\"python\","
                                    "\"prompt\":\"p\",\"candidates\":[\"x\"]}", NULL), 0);
    CHECK_RC(gg_orchestrator_submit(o, "{\"task_id\":\"c2\",\"language\":\"python\","
                                    "\"prompt\":\"p\",\"candidates\":[\"x\"]}", NULL), 0);
    /* An old job's result (stale here) frees its room: exactly one new job comes. */
    cJSON *old = cJSON_Parse("{\"seq\":999999,\"n\":1}");
    ggpeer_send_record(&p, old, old1, PASS);
    cJSON *jobs = cJSON_CreateArray();
    recv_jobs(&p, jobs, 1);
    CHECK(cJSON_GetArraySize(jobs) == 1);
    node_load(c, "carrier", &busy, &carried);
    CHECK(busy == 2);
    CHECK(carried == 1);
    /* A lease it never carried frees nothing; the other old one frees the second room. */
    ggpeer_send_record(&p, old, "0000000000000000000000000000bbb1", PASS);
    ggpeer_send_record(&p, old, old2, PASS);
    recv_jobs(&p, jobs, 2);
    CHECK(cJSON_GetArraySize(jobs) == 2);
    node_load(c, "carrier", &busy, &carried);
    CHECK(busy == 2);
    CHECK(carried == 0);
    CHECK(ggpeer_hub_stat(o, "stale") == 3);
    for (int i = 0; i < cJSON_GetArraySize(jobs); i++)
        ggpeer_send_record(&p, cJSON_GetArrayItem(jobs, i), NULL, PASS);
    const char *ids[] = { "c1", "c2" };
    for (int i = 0; i < 2; i++) {
        char *res = NULL;
        CHECK_RC(gg_orchestrator_wait(o, ids[i], (int)TEST_DEADLINE_MS, &res), 0);
        CHECK_CONTAINS(res, "\"status\":\"passed\"");
        gg_free(res);
    }
    node_load(c, "carrier", &busy, &carried);
    CHECK(busy == 0);
    cJSON_Delete(old);
    cJSON_Delete(jobs);
    gg_client_destroy(&c);
    ggpeer_close(&p);
    gg_orchestrator_destroy(&o);
}

/* ---- held results go to the next hub after its welcome ---- */

/* A scripted hub: A welcomes the worker, hands it a job and then says it is passive (a hub
 * that turned standby); B keeps what the worker's hello and results said and welcomes it. */
typedef struct scripted_hub {
    fake_hub hub;
    int is_b;
    int welcomed;        /* B: its welcome was sent (the hub's thread only) */
    pthread_mutex_t mu;
    char hello[8192];    /* B: the worker's hello */
    char results[8192];  /* B: the first results message */
    int results_before_welcome; /* B: results came before its welcome was sent */
} scripted_hub;

static void scripted_handle(fake_hub *hub, const char *id, int idn, const char *body)
{
    scripted_hub *h = hub->user;
    int hello = strstr(body, "\"t\":\"hello\"") != NULL;
    int results = strstr(body, "\"t\":\"results\"") != NULL;
    if (!h->is_b && hello) {
        hub_send(hub, id, idn, "{\"ggp\":1,\"t\":\"welcome\",\"version\":1,"
                               "\"hb_ms\":1000,\"node\":\"w\"}");
        hub_send(hub, id, idn,
                 "{\"ggp\":1,\"t\":\"jobs\",\"jobs\":[{\"lease\":"
                 "\"00112233445566778899aabbccddeeff\",\"seq\":7,\"n\":1,\"task\":"
                 "{\"task_id\":\"h1\",\"language\":\"python\",\"prompt\":\"p\","
                 "\"candidates\":[\"x\"]}}]}");
        hub_send(hub, id, idn,
                 "{\"ggp\":1,\"t\":\"reply\",\"rid\":0,\"ok\":false,\"code\":-10,"
                 "\"message\":\"passive: not yet\"}");
    } else if (h->is_b && hello) {
        pthread_mutex_lock(&h->mu);
        snprintf(h->hello, sizeof h->hello, "%s", body);
        pthread_mutex_unlock(&h->mu);
        hub_send(hub, id, idn, "{\"ggp\":1,\"t\":\"welcome\",\"version\":1,"
                               "\"hb_ms\":1000,\"node\":\"w\"}");
        h->welcomed = 1;
    } else if (h->is_b && results) {
        pthread_mutex_lock(&h->mu);
        if (!h->results[0])
            snprintf(h->results, sizeof h->results, "%s", body);
        if (!h->welcomed)
            h->results_before_welcome = 1;
        pthread_mutex_unlock(&h->mu);
    }
}

static void scripted_start(scripted_hub *h, int is_b)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->is_b = is_b;
    fake_start(&h->hub, scripted_handle, h);
}

static void scripted_stop(scripted_hub *h)
{
    fake_stop(&h->hub);
    pthread_mutex_destroy(&h->mu);
}

static int has_results(void *arg)
{
    scripted_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    int got = h->results[0] != 0;
    pthread_mutex_unlock(&h->mu);
    return got;
}

/* An executor that runs as noop once the test opens its gate: a job that is still running
 * while its worker moves from A to B. */
typedef struct gated_exec {
    gg_executor_t *noop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} gated_exec;

static int gated_run(void *self, const char *request_json, char **out_result_json)
{
    gated_exec *g = self;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return gg_executor_run(g->noop, request_json, out_result_json);
}

static void gate_open(gated_exec *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int has_hello(void *arg)
{
    scripted_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    int got = h->hello[0] != 0;
    pthread_mutex_unlock(&h->mu);
    return got;
}

static void test_held_results_after_welcome(void)
{
    scripted_hub a, b;
    scripted_start(&a, 0);
    scripted_start(&b, 1);
    CHECK(strcmp(a.hub.ep, b.hub.ep) != 0);
    char list[160];
    snprintf(list, sizeof list, "%s,%s", a.hub.ep, b.hub.ep);
    gated_exec gate = { noop_executor(), PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    gg_executor_vtable xv = GG_EXECUTOR_VTABLE_INIT;
    xv.run = gated_run;
    gg_executor_t *gated = NULL;
    CHECK_RC(gg_executor_new_custom(&gated, &xv, &gate), 0);
    gg_worker_t *w = worker_to(list, "holder", gated);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_worker, w) == 0);
    /* The job A handed out still runs when the worker says hello to B. */
    CHECK(test_wait_for(has_hello, &b));
    gate_open(&gate);
    CHECK(test_wait_for(has_results, &b));
    pthread_mutex_lock(&b.mu);
    /* The job A handed out, running while the worker moved: its lease is in the hello to B,
     * with the worker's instance id, and its result went to B only after B's welcome. */
    CHECK_CONTAINS(b.hello, "\"leases\":[\"00112233445566778899aabbccddeeff\"]");
    CHECK_CONTAINS(b.hello, "\"instance\":\"");
    CHECK_CONTAINS(b.results, "\"lease\":\"00112233445566778899aabbccddeeff\"");
    CHECK(!b.results_before_welcome);
    pthread_mutex_unlock(&b.mu);
    CHECK(worker_on(w, b.hub.ep));
    gg_worker_stop(w);
    CHECK(join_within(th));
    gg_worker_destroy(&w);
    gg_executor_destroy(&gated);
    gg_executor_destroy(&gate.noop);
    scripted_stop(&a);
    scripted_stop(&b);
}

/* ---- one endpoint whose hub starts later: ZeroMQ's own retries, no reconnect churn ---- */

static void test_single_endpoint_waits(void)
{
    char ep[64];
    ggpeer_endpoint(ep, sizeof ep);
    running_worker rw;
    gg_worker_t *w = worker_start(&rw, ep, "early", 1);
    /* Its first tries are refused (nobody listens yet): not a lost connection. */
    gg_orchestrator_t *orch = serve_at(ep, "late.db");
    on_arg oa = { w, ep };
    CHECK(test_wait_for(worker_on_cond, &oa));
    CHECK(worker_stat(w, "reconnects") == 0);
    CHECK(worker_stat(w, "failovers") == 0);
    worker_end(&rw);
    gg_orchestrator_destroy(&orch);
}

/* ---- a hub that accepts connections and never answers (a hung process) ---- */

static void test_silent_hub(void)
{
    char ep[64], list[160];
    fake_hub silent;
    fake_start(&silent, NULL, NULL); /* connections complete; nothing is ever read */
    gg_orchestrator_t *o = serve_here(ep, "after_silence.db");
    CHECK(strcmp(silent.ep, ep) != 0);
    snprintf(list, sizeof list, "%s,%s", silent.ep, ep);
    running_worker rw;
    gg_worker_t *w = worker_start(&rw, list, "patient", 1);
    /* The client and the worker leave the silent one after 3 heartbeat intervals. */
    gg_client_t *c = client_to(list, (int)TEST_DEADLINE_MS);
    char *st = NULL;
    CHECK_RC(gg_client_status(c, NULL, &st), 0);
    CHECK_CONTAINS(st, "\"nodes\"");
    gg_free(st);
    on_arg oa = { w, ep };
    CHECK(test_wait_for(worker_on_cond, &oa));
    CHECK(worker_stat(w, "failovers") >= 1);
    gg_client_destroy(&c);
    worker_end(&rw);
    gg_orchestrator_destroy(&o);
    fake_stop(&silent);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/gg-failover-XXXXXX");
    if (!test_make_dir(dir))
        return 1;
    test_bad_lists();
    test_passive_then_active();
    test_all_down();
    test_single_endpoint_waits();
    test_silent_hub();
    test_kill9_moves();
    test_leases_kept_by_instance();
    test_carried_leases_take_room();
    test_held_results_after_welcome();
    test_remove_dir(dir);
    return test_exit();
}
