/*
 * test_custom_transport.c - the orchestrator, a worker and a client over a transport written
 * here (gryphgen/sys/transport.h), not ZeroMQ: an in-process queue pair per peer, with
 * identities, bounded queues and timeouts as the header asks. Tasks pass through it from
 * the embedded workers, from a gg_worker_t in a thread of its own and from a gg_client_t;
 * the transport counts what it carried, so the test knows ZeroMQ carried none of it.
 * Failure paths: vtables with missing slots or an unknown version (destroy runs once),
 * options that do not go with a custom transport, a hub that cannot open, a worker whose
 * endpoint has no hub, and a full queue (GG_EBUSY) that loses nothing.
 * Links the shared library only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gryphgen.h>
#include <gryphgen/sys/transport.h>

#include "testutil.h"

/* ---------------------------------------------------------------- the transport */

#define QCAP 256           /* messages a queue holds; a send beyond is GG_EBUSY */
#define MAX_MSG (16u << 20)

typedef struct qmsg {
    void *data;
    size_t len;
    char from[16]; /* the sender's identity (hub queue only) */
    size_t from_len;
} qmsg;

typedef struct queue {
    qmsg items[QCAP];
    int head, count;
    pthread_cond_t cv;
} queue;

typedef struct qt_socket qt_socket;

typedef struct qt {
    pthread_mutex_t mu;      /* guards everything below and every queue */
    qt_socket *hubs;         /* open hubs */
    qt_socket *peers;        /* open peers */
    unsigned next_id;
    unsigned long carried;   /* messages delivered into a queue */
    unsigned long refused;   /* sends refused as full */
    int fail_hub_open;       /* 1: hub_open fails (a fault) */
    int refuse_every;        /* > 0: every refuse_every-th send is refused as full */
    unsigned long sends;
    int destroyed;
} qt;

struct qt_socket {
    qt *t;
    int is_hub;
    char endpoint[128];
    char id[16];
    size_t id_len;
    queue in;
    qmsg held;               /* the message last received, freed at the next recv */
    qt_socket *next;
};

static void queue_init(queue *q)
{
    memset(q, 0, sizeof *q);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void queue_clear(queue *q)
{
    for (; q->count > 0; q->count--) {
        free(q->items[q->head].data);
        q->head = (q->head + 1) % QCAP;
    }
    pthread_cond_destroy(&q->cv);
}

/* Under t->mu: appends a copy of data, or GG_EBUSY when the queue is full. */
static int queue_put(qt *t, queue *q, const void *data, size_t len, const char *from,
                     size_t from_len)
{
    if (q->count >= QCAP || (t->refuse_every > 0 && ++t->sends % t->refuse_every == 0)) {
        t->refused++;
        return gg_error_set(GG_EBUSY, "test transport: queue full");
    }
    void *copy = malloc(len ? len : 1);
    if (!copy)
        return gg_error_set(GG_ENOMEM, "test transport: out of memory");
    memcpy(copy, data, len);
    qmsg *m = &q->items[(q->head + q->count) % QCAP];
    m->data = copy;
    m->len = len;
    m->from_len = from_len;
    if (from_len)
        memcpy(m->from, from, from_len);
    q->count++;
    t->carried++;
    pthread_cond_signal(&q->cv);
    return GG_OK;
}

/* Under t->mu: waits up to timeout_ms for a message and moves it into s->held. */
static int queue_get(qt_socket *s, int timeout_ms)
{
    qt *t = s->t;
    free(s->held.data);
    memset(&s->held, 0, sizeof s->held);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)(timeout_ms > 0 ? timeout_ms : 0) * 1000000LL;
    until.tv_sec += ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    while (s->in.count == 0) {
        if (timeout_ms == 0)
            return GG_ETIMEDOUT;
        int r = timeout_ms < 0 ? pthread_cond_wait(&s->in.cv, &t->mu)
                               : pthread_cond_timedwait(&s->in.cv, &t->mu, &until);
        if (r == ETIMEDOUT && s->in.count == 0)
            return GG_ETIMEDOUT;
    }
    s->held = s->in.items[s->in.head];
    s->in.head = (s->in.head + 1) % QCAP;
    s->in.count--;
    return GG_OK;
}

static qt_socket *find_hub(qt *t, const char *endpoint)
{
    for (qt_socket *h = t->hubs; h; h = h->next)
        if (strcmp(h->endpoint, endpoint) == 0)
            return h;
    return NULL;
}

static qt_socket *new_socket(qt *t, const char *endpoint, int is_hub)
{
    qt_socket *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->t = t;
    s->is_hub = is_hub;
    snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    queue_init(&s->in);
    return s;
}

static int qt_hub_open(void *self, const char *endpoint, void **out)
{
    qt *t = self;
    if (!endpoint || strlen(endpoint) >= 128)
        return gg_error_set(GG_EINVAL, "test transport: bad endpoint");
    pthread_mutex_lock(&t->mu);
    int rc = GG_OK;
    qt_socket *s = NULL;
    if (t->fail_hub_open)
        rc = gg_error_set(GG_ETRANSPORT, "test transport: the hub cannot open (on purpose)");
    else if (find_hub(t, endpoint))
        rc = gg_error_set(GG_EEXIST, "test transport: a hub is open on that name");
    else if (!(s = new_socket(t, endpoint, 1)))
        rc = gg_error_set(GG_ENOMEM, "test transport: out of memory");
    if (s) {
        s->next = t->hubs;
        t->hubs = s;
        *out = s;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int qt_peer_open(void *self, const char *endpoint, void **out)
{
    qt *t = self;
    pthread_mutex_lock(&t->mu);
    int rc = GG_OK;
    qt_socket *s = NULL;
    if (!find_hub(t, endpoint))
        rc = gg_error_set(GG_ENOTFOUND, "test transport: no hub by that name");
    else if (!(s = new_socket(t, endpoint, 0)))
        rc = gg_error_set(GG_ENOMEM, "test transport: out of memory");
    if (s) {
        s->id_len = (size_t)snprintf(s->id, sizeof s->id, "p%u", ++t->next_id);
        s->next = t->peers;
        t->peers = s;
        *out = s;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int qt_hub_recv(void *hub, int timeout_ms, gg_transport_msg *msg)
{
    qt_socket *s = hub;
    pthread_mutex_lock(&s->t->mu);
    int rc = queue_get(s, timeout_ms);
    if (rc == GG_OK) {
        msg->data = s->held.data;
        msg->len = s->held.len;
        memcpy(msg->peer, s->held.from, s->held.from_len);
        msg->peer_len = s->held.from_len;
    }
    pthread_mutex_unlock(&s->t->mu);
    return rc;
}

static int qt_peer_recv(void *peer, int timeout_ms, gg_transport_msg *msg)
{
    qt_socket *s = peer;
    pthread_mutex_lock(&s->t->mu);
    int rc = queue_get(s, timeout_ms);
    if (rc == GG_OK) {
        msg->data = s->held.data;
        msg->len = s->held.len;
    }
    pthread_mutex_unlock(&s->t->mu);
    return rc;
}

static int qt_hub_send(void *hub, const void *peer, size_t peer_len, const void *data,
                       size_t len)
{
    qt_socket *h = hub;
    qt *t = h->t;
    if (len > MAX_MSG)
        return gg_error_set(GG_ETOOBIG, "test transport: message too big");
    pthread_mutex_lock(&t->mu);
    qt_socket *p = t->peers;
    while (p && !(p->id_len == peer_len && memcmp(p->id, peer, peer_len) == 0 &&
                  strcmp(p->endpoint, h->endpoint) == 0))
        p = p->next;
    int rc = p ? queue_put(t, &p->in, data, len, NULL, 0)
               : gg_error_set(GG_ENOTFOUND, "test transport: no such peer");
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int qt_peer_send(void *peer, const void *data, size_t len)
{
    qt_socket *p = peer;
    qt *t = p->t;
    if (len > MAX_MSG)
        return gg_error_set(GG_ETOOBIG, "test transport: message too big");
    pthread_mutex_lock(&t->mu);
    qt_socket *h = find_hub(t, p->endpoint);
    /* A peer whose hub went away loses what it sends, as a network would. */
    int rc = h ? queue_put(t, &h->in, data, len, p->id, p->id_len) : GG_OK;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void qt_close(void *sock)
{
    qt_socket *s = sock;
    qt *t = s->t;
    pthread_mutex_lock(&t->mu);
    qt_socket **link = s->is_hub ? &t->hubs : &t->peers;
    while (*link && *link != s)
        link = &(*link)->next;
    if (*link)
        *link = s->next;
    pthread_mutex_unlock(&t->mu);
    free(s->held.data);
    queue_clear(&s->in);
    free(s);
}

static void qt_destroy(void *self)
{
    qt *t = self;
    t->destroyed++;
}

static gg_transport_vtable qt_vtable(void)
{
    gg_transport_vtable vt = GG_TRANSPORT_VTABLE_INIT;
    vt.hub_open = qt_hub_open;
    vt.hub_recv = qt_hub_recv;
    vt.hub_send = qt_hub_send;
    vt.peer_open = qt_peer_open;
    vt.peer_recv = qt_peer_recv;
    vt.peer_send = qt_peer_send;
    vt.close = qt_close;
    vt.destroy = qt_destroy;
    vt.max_message = MAX_MSG;
    return vt;
}

static unsigned long carried(qt *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned long n = t->carried;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static int open_sockets(qt *t)
{
    pthread_mutex_lock(&t->mu);
    int n = 0;
    for (qt_socket *s = t->hubs; s; s = s->next)
        n++;
    for (qt_socket *s = t->peers; s; s = s->next)
        n++;
    pthread_mutex_unlock(&t->mu);
    return n;
}

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

/* A worker of its own and a client, both on the host's transport; the orchestrator runs
 * no local worker, so every task went through the transport to that worker. */
static void test_remote_worker_and_client(gg_transport_t *tp, qt *t)
{
    gg_orchestrator_t *o = new_orq(tp, "bus://grid", 0);
    if (!o)
        return;
    gg_worker_options wo;
    gg_worker_options_init(&wo, GG_WORKER_OPTIONS_VERSION);
    wo.connect = "bus://grid";
    wo.custom_transport = tp;
    wo.slots = 2;
    wo.name = "bus-worker";
    worker_thread wt = { NULL, -1 };
    CHECK_RC(gg_worker_new(&wt.w, &wo), GG_OK);
    pthread_t th;
    int started = wt.w && pthread_create(&th, NULL, run_worker, &wt) == 0;
    CHECK(started);

    gg_client_options co;
    gg_client_options_init(&co, GG_CLIENT_OPTIONS_VERSION);
    co.connect = "bus://grid";
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
    char buf[512];
    for (int i = 0; i < 20; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"m%d\",\"language\":\"python\",\"stub\":"
                 "\"def add(a, b):\\n\",\"entry_point\":\"add\",\"test\":\"def check(f):\\n"
                 "    assert f(2, 3) == 5\\n\",\"candidates\":[\"    return a + b\\n\"]}", i);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), GG_OK);
    }
    CHECK_RC(gg_orchestrator_drain(o, (int)TEST_DEADLINE_MS), GG_OK);
    char *stats = NULL;
    CHECK_RC(gg_orchestrator_stats(o, &stats), GG_OK);
    CHECK_CONTAINS(stats, "\"passed\":21");
    gg_free(stats);
    gg_client_destroy(&c);
    if (started) {
        gg_worker_stop(wt.w);
        pthread_join(th, NULL);
        CHECK_RC(wt.rc, GG_OK);
    }
    gg_worker_destroy(&wt.w);
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
    char buf[512];
    for (int i = 0; i < 30; i++) {
        snprintf(buf, sizeof buf, "{\"task_id\":\"f%d\",\"language\":\"python\",\"stub\":"
                 "\"def add(a, b):\\n\",\"entry_point\":\"add\",\"test\":\"def check(f):\\n"
                 "    assert f(2, 3) == 5\\n\",\"candidates\":[\"    return a + b\\n\"]}", i);
        CHECK_RC(gg_orchestrator_submit(o, buf, NULL), GG_OK);
    }
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
        test_refusals(tp, &t);
    }
    gg_transport_destroy(&tp);
    CHECK(t.destroyed == 1);
    pthread_mutex_destroy(&t.mu);
    return test_exit();
}
