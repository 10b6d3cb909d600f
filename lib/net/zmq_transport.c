/*
 * zmq_transport.c - the built-in transport over ZeroMQ: a ROUTER hub and DEALER peers,
 * two frames on the hub side (identity, body) and one frame on the peer side.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "transport.h"

#define QUEUE_LIMIT 100000 /* messages per socket and direction before backpressure */

typedef struct zt_state {
    void *ctx;
    atomic_ulong dropped; /* malformed or oversized messages received */
} zt_state;

typedef struct zt_socket {
    void *sock;
    int is_hub;
    zmq_msg_t body;
    int has_body;
    zt_state *st;
} zt_socket;

static int zmq_fail(const char *what)
{
    return ggi_error(GG_ETRANSPORT, "%s: %s", what, zmq_strerror(zmq_errno()));
}

static int open_socket(zt_state *st, int type, const char *endpoint, void **out)
{
    *out = NULL;
    zt_socket *s = calloc(1, sizeof *s);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory opening a socket");
    s->st = st;
    s->is_hub = type == ZMQ_ROUTER;
    s->sock = zmq_socket(st->ctx, type);
    if (!s->sock) {
        free(s);
        return zmq_fail("zmq_socket");
    }
    int zero = 0, one = 1, hwm = QUEUE_LIMIT;
    int64_t maxmsg = (int64_t)GGI_ZMQ_MAX_MESSAGE + 1024;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    int rc;
    if (s->is_hub) {
        zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
        rc = zmq_bind(s->sock, endpoint);
    } else {
        rc = zmq_connect(s->sock, endpoint);
    }
    if (rc != 0) {
        int e = ggi_error(GG_ETRANSPORT, "%s %s: %s", s->is_hub ? "bind" : "connect", endpoint,
                          zmq_strerror(zmq_errno()));
        zmq_close(s->sock);
        free(s);
        return e;
    }
    zmq_msg_init(&s->body);
    *out = s;
    return GG_OK;
}

static int zt_hub_open(void *self, const char *endpoint, void **out)
{
    return open_socket(self, ZMQ_ROUTER, endpoint, out);
}

static int zt_peer_open(void *self, const char *endpoint, void **out)
{
    return open_socket(self, ZMQ_DEALER, endpoint, out);
}

static int wait_readable(zt_socket *s, int timeout_ms)
{
    zmq_pollitem_t item = { s->sock, 0, ZMQ_POLLIN, 0 };
    for (;;) {
        int n = zmq_poll(&item, 1, timeout_ms);
        if (n > 0)
            return GG_OK;
        if (n == 0)
            return GG_ETIMEDOUT;
        if (zmq_errno() != EINTR)
            return zmq_fail("zmq_poll");
    }
}

static void drop_rest(zt_socket *s)
{
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &sz);
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s->sock, 0);
        zmq_msg_close(&m);
        sz = sizeof more;
        zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &sz);
    }
}

static int zt_recv(zt_socket *s, int timeout_ms, gg_transport_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    if (s->has_body) {
        zmq_msg_close(&s->body);
        zmq_msg_init(&s->body);
        s->has_body = 0;
    }
    double deadline = timeout_ms >= 0 ? ggi_now_ms() + timeout_ms : 0;
    for (;;) {
        int left = -1;
        if (timeout_ms >= 0) {
            double d = deadline - ggi_now_ms();
            left = d > 0 ? (int)d : 0;
        }
        int rc = wait_readable(s, left);
        if (rc != GG_OK)
            return rc;
        if (s->is_hub) {
            zmq_msg_t id;
            zmq_msg_init(&id);
            if (zmq_msg_recv(&id, s->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&id);
                if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                    continue;
                return zmq_fail("receiving an identity");
            }
            size_t idlen = zmq_msg_size(&id);
            int more = zmq_msg_more(&id);
            if (idlen == 0 || idlen > GG_TRANSPORT_MAX_IDENTITY || !more) {
                zmq_msg_close(&id);
                drop_rest(s);
                atomic_fetch_add(&s->st->dropped, 1);
                continue;
            }
            memcpy(msg->peer, zmq_msg_data(&id), idlen);
            msg->peer_len = idlen;
            zmq_msg_close(&id);
        }
        if (zmq_msg_recv(&s->body, s->sock, ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                continue;
            return zmq_fail("receiving a message");
        }
        s->has_body = 1;
        if (zmq_msg_more(&s->body)) { /* one body frame only */
            drop_rest(s);
            atomic_fetch_add(&s->st->dropped, 1);
            continue;
        }
        msg->data = zmq_msg_data(&s->body);
        msg->len = zmq_msg_size(&s->body);
        return GG_OK;
    }
}

static int zt_hub_recv(void *hub, int timeout_ms, gg_transport_msg *msg)
{
    return zt_recv(hub, timeout_ms, msg);
}

static int zt_peer_recv(void *peer, int timeout_ms, gg_transport_msg *msg)
{
    return zt_recv(peer, timeout_ms, msg);
}

static int send_status(const char *what)
{
    int e = zmq_errno();
    if (e == EAGAIN)
        return ggi_error(GG_EBUSY, "%s: queue full", what);
    if (e == EHOSTUNREACH)
        return ggi_error(GG_ENOTFOUND, "%s: peer is gone", what);
    return zmq_fail(what);
}

static int zt_hub_send(void *hub, const void *peer, size_t peer_len, const void *data,
                       size_t len)
{
    zt_socket *s = hub;
    if (len > GGI_ZMQ_MAX_MESSAGE)
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the transport limit", len);
    if (zmq_send(s->sock, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return send_status("sending to a peer");
    if (zmq_send(s->sock, data, len, ZMQ_DONTWAIT) < 0)
        return send_status("sending to a peer");
    return GG_OK;
}

static int zt_peer_send(void *peer, const void *data, size_t len)
{
    zt_socket *s = peer;
    if (len > GGI_ZMQ_MAX_MESSAGE)
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the transport limit", len);
    if (zmq_send(s->sock, data, len, ZMQ_DONTWAIT) < 0)
        return send_status("sending to the hub");
    return GG_OK;
}

static void zt_close(void *socket)
{
    zt_socket *s = socket;
    if (!s)
        return;
    zmq_msg_close(&s->body);
    zmq_close(s->sock);
    free(s);
}

static void zt_destroy(void *self)
{
    zt_state *st = self;
    if (!st)
        return;
    zmq_ctx_term(st->ctx);
    free(st);
}

int ggi_zmq_transport_new(ggi_transport *out)
{
    memset(out, 0, sizeof *out);
    zt_state *st = calloc(1, sizeof *st);
    if (!st)
        return ggi_error(GG_ENOMEM, "out of memory creating the ZeroMQ transport");
    st->ctx = zmq_ctx_new();
    if (!st->ctx) {
        free(st);
        return zmq_fail("zmq_ctx_new");
    }
    gg_transport_vtable vt = GG_TRANSPORT_VTABLE_INIT;
    vt.hub_open = zt_hub_open;
    vt.hub_recv = zt_hub_recv;
    vt.hub_send = zt_hub_send;
    vt.peer_open = zt_peer_open;
    vt.peer_recv = zt_peer_recv;
    vt.peer_send = zt_peer_send;
    vt.close = zt_close;
    vt.destroy = zt_destroy;
    vt.max_message = GGI_ZMQ_MAX_MESSAGE;
    out->vt = vt;
    out->self = st;
    return GG_OK;
}

void ggi_transport_destroy(ggi_transport *t)
{
    if (t && t->vt.destroy && t->self)
        t->vt.destroy(t->self);
    if (t)
        memset(t, 0, sizeof *t);
}
