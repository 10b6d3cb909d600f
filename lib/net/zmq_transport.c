/*
 * zmq_transport.c - the built-in transport over ZeroMQ: a ROUTER hub and DEALER peers,
 * two frames on the hub side (identity, body) and one frame on the peer side. A secure
 * transport makes its hubs CURVE servers authenticated by its ZAP handler (zap.c) and its
 * peers CURVE clients, and tags each message a hub receives with the sender's role.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "keys.h"
#include "transport.h"
#include "zap.h"

#define QUEUE_LIMIT 100000 /* messages per socket and direction before backpressure */
#define POOL_MIN 4096      /* smaller messages go by ZeroMQ's own copy */
#define POOL_KEEP 8        /* send buffers kept for reuse */
#define POOL_BUF_MAX (1u << 20) /* larger ones are freed after use */

/* A buffer a large message is sent from (its bytes follow); ZeroMQ gives it back when sent. */
typedef struct send_buf {
    struct send_buf *next;
    size_t cap;
} send_buf;

typedef struct zt_state {
    void *ctx;
    atomic_ulong dropped; /* malformed or oversized messages received */
    int secure;           /* made with security: no plain-text sockets at all */
    int has_server;       /* server key pair known: hubs allowed */
    int has_client;       /* client key pair and server public key known: peers allowed */
    ggi_keypair server;   /* hub's key pair */
    ggi_keypair client;   /* peers' key pair */
    char server_public[GGI_KEY_Z85_LEN + 1]; /* what peers expect the hub to be */
    ggi_zap *zap;
    /* Large messages are sent from buffers kept here: ZeroMQ's own copy was a fresh block
     * per message, freed by its I/O thread, and each such block made glibc sweep its free
     * lists on the sending thread. */
    pthread_mutex_t pool_mu;
    send_buf *pool;
    int pool_n;
} zt_state;

typedef struct zt_socket {
    void *sock;
    int is_hub;
    int secure_hub; /* messages carry a role; those without one are dropped */
    int inproc;     /* bound or connected over inproc:// (no handshake, no ZAP) */
    zmq_msg_t body;
    int has_body;
    char key[GGI_KEY_Z85_LEN + 1]; /* on a secure hub: the last sender's public key, or "" */
    zt_state *st;
    /* A peer's connection as its socket monitor tells it (ggi_zmq_peer_link) */
    void *mon;       /* PAIR socket reading the monitor's events, or NULL */
    int link;        /* GGI_LINK_* */
} zt_socket;

static int zt_hub_open(void *self, const char *endpoint, void **out);

static int zmq_fail(const char *what)
{
    return ggi_error(GG_ETRANSPORT, "%s: %s", what, zmq_strerror(zmq_errno()));
}

/* Sets the CURVE options of a new socket; GG_OK when the transport is not secure. */
static int set_security(zt_state *st, zt_socket *s)
{
    if (!st->secure)
        return GG_OK;
    int rc = 0, one = 1;
    if (s->is_hub) {
        rc |= zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof one);
        rc |= zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, st->server.secret_key,
                             GGI_KEY_Z85_LEN);
        rc |= zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, GGI_ZAP_DOMAIN, strlen(GGI_ZAP_DOMAIN));
    } else {
        rc |= zmq_setsockopt(s->sock, ZMQ_CURVE_SERVERKEY, st->server_public, GGI_KEY_Z85_LEN);
        rc |= zmq_setsockopt(s->sock, ZMQ_CURVE_PUBLICKEY, st->client.public_key,
                             GGI_KEY_Z85_LEN);
        rc |= zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, st->client.secret_key,
                             GGI_KEY_Z85_LEN);
    }
    return rc == 0 ? GG_OK : zmq_fail("setting the CURVE keys");
}

/* Starts a monitor of a peer's connection: its events (connected, refused, closed) come on
 * a PAIR socket that ggi_zmq_peer_link() reads without blocking. Not for inproc:// (no
 * connection to lose). A monitor that cannot start leaves the link unknown. */
static void watch_link(zt_socket *s)
{
    static atomic_ulong serial;
    char addr[96];
    snprintf(addr, sizeof addr, "inproc://ggi-link-%p-%lu", (void *)s,
             atomic_fetch_add(&serial, 1));
    s->link = GGI_LINK_UNKNOWN;
    /* Not ZMQ_EVENT_CLOSED: it also comes after each refused try, with CONNECT_RETRIED. */
    if (zmq_socket_monitor(s->sock, addr, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                                              ZMQ_EVENT_DISCONNECTED) != 0)
        return;
    s->mon = zmq_socket(s->st->ctx, ZMQ_PAIR);
    int zero = 0;
    if (s->mon)
        zmq_setsockopt(s->mon, ZMQ_LINGER, &zero, sizeof zero);
    if (!s->mon || zmq_connect(s->mon, addr) != 0) {
        if (s->mon)
            zmq_close(s->mon);
        s->mon = NULL;
        zmq_socket_monitor(s->sock, NULL, 0);
        return;
    }
    s->link = GGI_LINK_PENDING;
}

static int open_socket(zt_state *st, int type, const char *endpoint, void **out)
{
    *out = NULL;
    if (!endpoint)
        return ggi_error(GG_EINVAL, "endpoint is NULL");
    if (st->secure && type == ZMQ_ROUTER && !st->has_server)
        return ggi_error(GG_EINVAL, "cannot open a hub at %s: this secure transport has no "
                         "server key", endpoint);
    if (st->secure && type != ZMQ_ROUTER && !st->has_client)
        return ggi_error(GG_EINVAL, "cannot connect to %s: this secure transport has no client "
                         "key pair or no server public key", endpoint);
    zt_socket *s = calloc(1, sizeof *s);
    if (!s)
        return ggi_error(GG_ENOMEM, "out of memory opening a socket");
    s->st = st;
    s->is_hub = type == ZMQ_ROUTER;
    s->secure_hub = s->is_hub && st->secure;
    s->inproc = strncmp(endpoint, "inproc://", 9) == 0;
    s->sock = zmq_socket(st->ctx, type);
    if (!s->sock) {
        free(s);
        return zmq_fail("zmq_socket");
    }
    int src = set_security(st, s);
    if (src != GG_OK) {
        zmq_close(s->sock);
        free(s);
        return src;
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
        if (!s->inproc)
            watch_link(s);
        rc = zmq_connect(s->sock, endpoint);
    }
    if (rc != 0) {
        int e = ggi_error(GG_ETRANSPORT, "%s %s: %s", s->is_hub ? "bind" : "connect", endpoint,
                          zmq_strerror(zmq_errno()));
        if (s->mon) {
            zmq_socket_monitor(s->sock, NULL, 0);
            zmq_close(s->mon);
        }
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
    s->key[0] = '\0';
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
            /* Rounded up: a truncated 0.9 ms would poll with 0 and spin until the deadline. */
            left = d > 0 ? (int)ceil(d) : 0;
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
        if (s->secure_hub) {
            /* The ZAP handler's User-Id is the role. Over inproc:// ZeroMQ does no
             * handshake, so only this process can be the sender. Anything else without a
             * role did not pass the handler and is never delivered. */
            const char *role = zmq_msg_gets(&s->body, "User-Id");
            s->key[0] = '\0';
            if (role && *role && strlen(role) < sizeof msg->role) {
                snprintf(msg->role, sizeof msg->role, "%s", role);
                const char *key = zmq_msg_gets(&s->body, GGI_ZAP_KEY_PROPERTY);
                if (key && strlen(key) == GGI_KEY_Z85_LEN)
                    memcpy(s->key, key, GGI_KEY_Z85_LEN + 1);
            } else if (s->inproc) {
                snprintf(msg->role, sizeof msg->role, "local");
            } else {
                atomic_fetch_add(&s->st->dropped, 1);
                continue;
            }
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

/* Called by ZeroMQ (on its I/O thread, or on close) when a pooled message is done. */
static void pool_return(void *data, void *hint)
{
    zt_state *st = hint;
    send_buf *b = (send_buf *)data - 1;
    pthread_mutex_lock(&st->pool_mu);
    if (st->pool_n < POOL_KEEP && b->cap <= POOL_BUF_MAX) {
        b->next = st->pool;
        st->pool = b;
        st->pool_n++;
        b = NULL;
    }
    pthread_mutex_unlock(&st->pool_mu);
    free(b);
}

/* zmq_send, from a pooled buffer for a large message. */
static int send_body(zt_socket *s, const void *data, size_t len, int flags)
{
    zt_state *st = s->st;
    if (len < POOL_MIN)
        return zmq_send(s->sock, data, len, flags);
    send_buf *b = NULL;
    pthread_mutex_lock(&st->pool_mu);
    for (send_buf **p = &st->pool; *p; p = &(*p)->next) {
        if ((*p)->cap >= len) {
            b = *p;
            *p = b->next;
            st->pool_n--;
            break;
        }
    }
    pthread_mutex_unlock(&st->pool_mu);
    if (!b) {
        size_t cap = (len + 16383) & ~(size_t)16383;
        b = malloc(sizeof *b + cap);
        if (!b)
            return zmq_send(s->sock, data, len, flags);
        b->cap = cap;
    }
    memcpy(b + 1, data, len);
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, b + 1, len, pool_return, st) != 0) {
        free(b);
        return -1;
    }
    int rc = zmq_msg_send(&m, s->sock, flags);
    if (rc < 0) {
        int e = errno;
        zmq_msg_close(&m); /* gives the buffer back */
        errno = e;
    }
    return rc;
}

static int zt_hub_send(void *hub, const void *peer, size_t peer_len, const void *data,
                       size_t len)
{
    zt_socket *s = hub;
    if (len > GGI_ZMQ_MAX_MESSAGE)
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the transport limit", len);
    if (zmq_send(s->sock, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return send_status("sending to a peer");
    if (send_body(s, data, len, ZMQ_DONTWAIT) < 0)
        return send_status("sending to a peer");
    return GG_OK;
}

static int zt_peer_send(void *peer, const void *data, size_t len)
{
    zt_socket *s = peer;
    if (len > GGI_ZMQ_MAX_MESSAGE)
        return ggi_error(GG_ETOOBIG, "message of %zu bytes exceeds the transport limit", len);
    if (send_body(s, data, len, ZMQ_DONTWAIT) < 0)
        return send_status("sending to the hub");
    return GG_OK;
}

static void zt_close(void *socket)
{
    zt_socket *s = socket;
    if (!s)
        return;
    zmq_msg_close(&s->body);
    if (s->mon) {
        zmq_socket_monitor(s->sock, NULL, 0);
        zmq_close(s->mon);
    }
    zmq_close(s->sock);
    free(s);
}

static void zt_destroy(void *self)
{
    zt_state *st = self;
    if (!st)
        return;
    ggi_zap_stop(&st->zap); /* its sockets must close before the context can end */
    zmq_ctx_term(st->ctx); /* every message is released by now: the pool is complete */
    while (st->pool) {
        send_buf *b = st->pool;
        st->pool = b->next;
        free(b);
    }
    pthread_mutex_destroy(&st->pool_mu);
    ggi_wipe(st, sizeof *st);
    free(st);
}

/* Reads the keys sec names into st and starts the ZAP handler when st gets a hub key. */
static int setup_security(zt_state *st, const ggi_zmq_security *sec)
{
    if (!zmq_has("curve"))
        return ggi_error(GG_EUNSUPPORTED, "this libzmq was built without CURVE support");
    if (!sec->server_key_file != !sec->authorized_keys_file)
        return ggi_error(GG_EINVAL, "a secure hub needs both a server key file and an "
                         "authorized keys file");
    if (sec->client_key_file && !sec->server_public_key)
        return ggi_error(GG_EINVAL, "a client key pair needs the server's public key too");
    if (!sec->server_key_file && !sec->client_key_file)
        return ggi_error(GG_EINVAL, "security options name no key file");
    st->secure = 1;
    int rc;
    ggi_auth_keys keys = {0};
    if (sec->server_key_file) {
        if ((rc = ggi_keys_read(sec->server_key_file, 1, &st->server)) != GG_OK)
            return rc;
        if ((rc = ggi_auth_keys_load(sec->authorized_keys_file, &keys)) != GG_OK)
            return rc;
        /* The server's own key pair serves this process's peers; it is "local". */
        uint8_t own[32];
        if (!zmq_z85_decode(own, st->server.public_key)) {
            ggi_auth_keys_free(&keys);
            return ggi_error(GG_EINTERNAL, "cannot decode the server's public key");
        }
        if (ggi_auth_keys_find(&keys, own)) {
            ggi_auth_keys_free(&keys);
            return ggi_error(GG_EINVAL, "authorized keys file %s lists the server's own key; "
                             "give workers and clients keys of their own",
                             sec->authorized_keys_file);
        }
        if ((rc = ggi_auth_keys_add(&keys, st->server.public_key, "local")) != GG_OK) {
            ggi_auth_keys_free(&keys);
            return rc;
        }
        st->has_server = 1;
        if ((rc = ggi_zap_start(&st->zap, st->ctx, &keys, &sec->log)) != GG_OK)
            return rc;
    }
    if (sec->client_key_file) {
        if ((rc = ggi_keys_read(sec->client_key_file, 1, &st->client)) != GG_OK)
            return rc;
        if ((rc = ggi_keys_resolve_public(sec->server_public_key, st->server_public)) != GG_OK)
            return rc;
        st->has_client = 1;
    } else {
        st->client = st->server;
        memcpy(st->server_public, st->server.public_key, sizeof st->server_public);
        st->has_client = 1;
    }
    return GG_OK;
}

int ggi_zmq_transport_new(ggi_transport *out)
{
    return ggi_zmq_transport_new_secure(out, NULL);
}

int ggi_zmq_transport_new_secure(ggi_transport *out, const ggi_zmq_security *sec)
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
    pthread_mutex_init(&st->pool_mu, NULL);
    if (sec) {
        int rc = setup_security(st, sec);
        if (rc != GG_OK) {
            zt_destroy(st);
            return rc;
        }
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

int ggi_zmq_transport_security_stats(const ggi_transport *t, ggi_zmq_security_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!t || t->vt.hub_open != zt_hub_open || !t->self)
        return ggi_error(GG_EINVAL, "not a ZeroMQ transport");
    zt_state *st = t->self;
    out->dropped = atomic_load(&st->dropped);
    if (st->zap) {
        ggi_zap_stats z;
        ggi_zap_get_stats(st->zap, &z);
        out->admitted = z.admitted;
        out->refused = z.refused;
        out->malformed = z.malformed;
        memcpy(out->last_refusal, z.last_refusal, sizeof out->last_refusal);
    }
    return GG_OK;
}

const char *ggi_zmq_hub_sender_key(const ggi_transport *t, void *hub)
{
    if (!t || t->vt.hub_open != zt_hub_open || !hub)
        return "";
    const zt_socket *s = hub;
    return s->is_hub ? s->key : "";
}

int ggi_zmq_hub_bind(const ggi_transport *t, void *hub, const char *endpoint)
{
    if (!t || t->vt.hub_open != zt_hub_open || !hub || !endpoint)
        return ggi_error(GG_EUNSUPPORTED, "extra endpoints need the built-in ZeroMQ transport");
    zt_socket *s = hub;
    if (!s->is_hub)
        return ggi_error(GG_EINVAL, "not a hub");
    if (zmq_bind(s->sock, endpoint) != 0)
        return ggi_error(GG_ETRANSPORT, "bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
    return GG_OK;
}

int ggi_zmq_peer_link(const ggi_transport *t, void *peer)
{
    if (!t || t->vt.hub_open != zt_hub_open || !peer)
        return GGI_LINK_UNKNOWN;
    zt_socket *s = peer;
    if (s->is_hub || !s->mon)
        return GGI_LINK_UNKNOWN;
    /* Each event is two frames: 2 bytes of event and 4 of value, then the address. */
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= sizeof event)
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more)
            drop_rest(&(zt_socket){ .sock = s->mon });
        /* A lost link stays lost: ZeroMQ reconnects by itself, but the hub behind it may be
         * another process that knows nothing of this peer. */
        if (s->link == GGI_LINK_LOST)
            continue;
        if (event == ZMQ_EVENT_CONNECTED)
            s->link = GGI_LINK_UP;
        else if (event == ZMQ_EVENT_DISCONNECTED)
            s->link = GGI_LINK_LOST;
        else if (event == ZMQ_EVENT_CONNECT_RETRIED && s->link != GGI_LINK_UP)
            s->link = GGI_LINK_REFUSED;
    }
    return s->link;
}

void ggi_transport_destroy(ggi_transport *t)
{
    if (t && !t->borrowed && t->vt.destroy)
        t->vt.destroy(t->self);
    if (t)
        memset(t, 0, sizeof *t);
}
