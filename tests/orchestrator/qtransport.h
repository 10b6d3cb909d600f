/*
 * qtransport.h - a transport written for the tests (gryphgen/sys/transport.h), not ZeroMQ:
 * a hub per endpoint name and a bounded in-process queue per socket, identities "pN",
 * timeouts on a monotonic clock, and counters of what it carried. Faults on demand: a hub
 * that cannot open, and every refuse_every-th send refused as full. Header-only (static
 * functions): test_custom_transport.c includes it, and the Python binding's tests build it
 * into a small shared object with qt_new_transport() below.
 */
#ifndef GG_TEST_QTRANSPORT_H
#define GG_TEST_QTRANSPORT_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gryphgen/sys/transport.h>


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
    /* A welcome refused on demand: the next refuse_welcomes welcomes to the worker node
     * named welcome_node are refused as full; then, for that peer, what it was sent before
     * its first welcome went (before_welcome) and the welcomes that went (welcomes). */
    char welcome_node[64];
    int refuse_welcomes;
    char welcome_peer[16];
    size_t welcome_peer_len;
    unsigned long welcomes, before_welcome;
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

/* Whether the len bytes at data hold the string pat. */
static int qt_has(const void *data, size_t len, const char *pat)
{
    size_t n = strlen(pat);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (memcmp((const char *)data + i, pat, n) == 0)
            return 1;
    return 0;
}

/* Whether data is a welcome to the worker node t->welcome_node. */
static int qt_is_welcome_to(qt *t, const void *data, size_t len)
{
    if (!t->welcome_node[0])
        return 0;
    char node[96];
    snprintf(node, sizeof node, "\"node\":\"%s\"", t->welcome_node);
    return qt_has(data, len, "\"t\":\"welcome\"") && qt_has(data, len, node);
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
    int welcome = qt_is_welcome_to(t, data, len);
    if (p && welcome && t->refuse_welcomes > 0) {
        t->refuse_welcomes--;
        t->refused++;
        memcpy(t->welcome_peer, peer, peer_len < 16 ? peer_len : 16);
        t->welcome_peer_len = peer_len < 16 ? peer_len : 16;
        pthread_mutex_unlock(&t->mu);
        return gg_error_set(GG_EBUSY, "test transport: queue full (a refused welcome)");
    }
    int rc = p ? queue_put(t, &p->in, data, len, NULL, 0)
               : gg_error_set(GG_ENOTFOUND, "test transport: no such peer");
    if (rc == GG_OK && t->welcome_peer_len == peer_len &&
        memcmp(t->welcome_peer, peer, peer_len) == 0) {
        if (welcome)
            t->welcomes++;
        else if (t->welcomes == 0)
            t->before_welcome++;
    }
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

__attribute__((unused)) static unsigned long carried(qt *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned long n = t->carried;
    pthread_mutex_unlock(&t->mu);
    return n;
}

__attribute__((unused)) static int open_sockets(qt *t)
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

/* A transport of its own state (freed by the handle's destroy), for callers that need no
 * access to the counters (the Python tests). */
static void qt_free(void *self)
{
    qt *t = self;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

__attribute__((unused)) static int qt_new_transport(gg_transport_t **out)
{
    qt *t = calloc(1, sizeof *t);
    if (!t)
        return gg_error_set(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    gg_transport_vtable vt = qt_vtable();
    vt.destroy = qt_free;
    return gg_transport_new_custom(out, &vt, t);
}

#endif
