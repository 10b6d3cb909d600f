/*
 * zap.c - the ZAP handler (ZeroMQ RFC 27) of secure transports. One thread per transport
 * answers the authentication requests libzmq sends for every CURVE handshake on the
 * transport's context: a listed key gets "200" with its role as User-Id, anything else
 * "400", logged and counted. A PAIR socket wakes the thread when the handler stops.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "zap.h"

#define ZAP_FRAMES_MAX 16 /* a request has 7 frames (6 + one per credential) */
#define ZAP_FRAME_MAX 1024

struct ggi_zap {
    void *ctx;
    void *rep;       /* bound to inproc://zeromq.zap.01; used by the thread only */
    void *wake_recv; /* thread side of the wake-up pair */
    void *wake_send; /* stopper's side */
    pthread_t thread;
    int started;
    ggi_auth_keys keys;
    ggi_logger log;
    atomic_ullong admitted, refused, malformed;
    pthread_mutex_t mu; /* guards last_refusal */
    char last_refusal[256];
};

static atomic_uint zap_counter;

typedef struct zap_request {
    zmq_msg_t frames[ZAP_FRAMES_MAX];
    int n;
} zap_request;

static void request_close(zap_request *r)
{
    for (int i = 0; i < r->n; i++)
        zmq_msg_close(&r->frames[i]);
    r->n = 0;
}

/* Receives one whole multipart request; frames past the limit are read and dropped. */
static int request_recv(void *rep, zap_request *r)
{
    r->n = 0;
    int more = 1, overflow = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, rep, 0) < 0) {
            zmq_msg_close(&m);
            request_close(r);
            return -1;
        }
        more = zmq_msg_more(&m);
        if (r->n < ZAP_FRAMES_MAX) {
            r->frames[r->n++] = m;
        } else {
            overflow = 1;
            zmq_msg_close(&m);
        }
    }
    return overflow ? 1 : 0;
}

/* Copies frame i as text into out (bounded; non-printable bytes become '?'). */
static void frame_text(zap_request *r, int i, char *out, size_t cap)
{
    out[0] = '\0';
    if (i >= r->n)
        return;
    size_t n = zmq_msg_size(&r->frames[i]);
    const unsigned char *d = zmq_msg_data(&r->frames[i]);
    if (n >= cap)
        n = cap - 1;
    for (size_t k = 0; k < n; k++)
        out[k] = (d[k] >= 0x20 && d[k] < 0x7f) ? (char)d[k] : '?';
    out[n] = '\0';
}

static int frame_is(zap_request *r, int i, const char *s)
{
    size_t n = strlen(s);
    return i < r->n && zmq_msg_size(&r->frames[i]) == n &&
           memcmp(zmq_msg_data(&r->frames[i]), s, n) == 0;
}

/* Answers a ZAP request. key (the admitted peer's public key in Z85, or NULL) travels as the
 * metadata property GGI_ZAP_KEY_PROPERTY, so the hub can bind what a peer was given to the
 * key it authenticated with, not only to its role. */
static void reply(void *rep, zmq_msg_t *request_id, const char *code, const char *text,
                  const char *user_id, const char *key)
{
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    if (request_id)
        zmq_send(rep, zmq_msg_data(request_id), zmq_msg_size(request_id), ZMQ_SNDMORE);
    else
        zmq_send(rep, "", 0, ZMQ_SNDMORE);
    zmq_send(rep, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, user_id, strlen(user_id), ZMQ_SNDMORE);
    /* Metadata, ZMTP property encoding: name length (1 byte), name, value length (4 bytes,
     * network order), value. */
    unsigned char meta[1 + sizeof GGI_ZAP_KEY_PROPERTY + 4 + GGI_KEY_Z85_LEN];
    size_t n = 0;
    if (key) {
        size_t nl = strlen(GGI_ZAP_KEY_PROPERTY), vl = strlen(key);
        meta[n++] = (unsigned char)nl;
        memcpy(meta + n, GGI_ZAP_KEY_PROPERTY, nl);
        n += nl;
        meta[n++] = 0;
        meta[n++] = 0;
        meta[n++] = 0;
        meta[n++] = (unsigned char)vl;
        memcpy(meta + n, key, vl);
        n += vl;
    }
    zmq_send(rep, meta, n, 0);
}

static void refuse(ggi_zap *z, void *rep, zmq_msg_t *request_id, const char *why,
                   const char *fp, const char *address)
{
    char line[256];
    snprintf(line, sizeof line, "refused connection from %s: %s (key %s...)",
             address[0] ? address : "unknown address", why, fp[0] ? fp : "none");
    atomic_fetch_add(&z->refused, 1);
    pthread_mutex_lock(&z->mu);
    snprintf(z->last_refusal, sizeof z->last_refusal, "%s", line);
    pthread_mutex_unlock(&z->mu);
    ggi_log(&z->log, GG_LOG_WARN, "security: %s", line);
    reply(rep, request_id, "400", why, "", NULL);
}

static void handle(ggi_zap *z, void *rep)
{
    zap_request r;
    int rc = request_recv(rep, &r);
    if (rc < 0)
        return;
    /* Frames: version, request id, domain, address, identity, mechanism, credentials. */
    if (rc > 0 || r.n < 6 || !frame_is(&r, 0, "1.0")) {
        atomic_fetch_add(&z->malformed, 1);
        ggi_log(&z->log, GG_LOG_WARN, "security: malformed ZAP request (%d frames)", r.n);
        /* A REP socket must answer; a well-formed reply with status 500 keeps it usable. */
        reply(rep, r.n > 1 ? &r.frames[1] : NULL, "500", "malformed request", "", NULL);
        request_close(&r);
        return;
    }
    char address[64], mech[16], fp[GGI_FINGERPRINT_LEN] = "";
    frame_text(&r, 3, address, sizeof address);
    frame_text(&r, 5, mech, sizeof mech);
    if (!frame_is(&r, 5, "CURVE")) {
        refuse(z, rep, &r.frames[1], "not a CURVE handshake", fp, address);
    } else if (r.n != 7 || zmq_msg_size(&r.frames[6]) != 32) {
        refuse(z, rep, &r.frames[1], "malformed CURVE credentials", fp, address);
    } else {
        const uint8_t *key = zmq_msg_data(&r.frames[6]);
        ggi_key_fingerprint_raw(key, fp);
        const char *role = ggi_auth_keys_find(&z->keys, key);
        if (!role) {
            refuse(z, rep, &r.frames[1], "public key not authorized", fp, address);
        } else {
            atomic_fetch_add(&z->admitted, 1);
            ggi_log(&z->log, GG_LOG_DEBUG, "security: admitted %s from %s (key %s...)", role,
                    address[0] ? address : "unknown address", fp);
            char z85[GGI_KEY_Z85_LEN + 1];
            reply(rep, &r.frames[1], "200", "OK", role,
                  zmq_z85_encode(z85, key, 32) ? z85 : NULL);
        }
    }
    request_close(&r);
}

static void *zap_main(void *arg)
{
    ggi_zap *z = arg;
    zmq_pollitem_t items[2] = {{z->rep, 0, ZMQ_POLLIN, 0}, {z->wake_recv, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        int n = zmq_poll(items, 2, -1);
        if (n < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* ETERM: the context is going away */
        }
        if (items[1].revents & ZMQ_POLLIN)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            handle(z, z->rep);
    }
    return NULL;
}

static void zap_free(ggi_zap *z)
{
    if (z->rep)
        zmq_close(z->rep);
    if (z->wake_recv)
        zmq_close(z->wake_recv);
    if (z->wake_send)
        zmq_close(z->wake_send);
    ggi_auth_keys_free(&z->keys);
    pthread_mutex_destroy(&z->mu);
    free(z);
}

int ggi_zap_start(ggi_zap **out, void *zmq_ctx, ggi_auth_keys *keys, const ggi_logger *log)
{
    *out = NULL;
    ggi_zap *z = calloc(1, sizeof *z);
    if (!z) {
        ggi_auth_keys_free(keys);
        return ggi_error(GG_ENOMEM, "out of memory starting the ZAP handler");
    }
    z->ctx = zmq_ctx;
    z->keys = *keys;
    memset(keys, 0, sizeof *keys);
    if (log)
        z->log = *log;
    pthread_mutex_init(&z->mu, NULL);
    char wake[64];
    snprintf(wake, sizeof wake, "inproc://gryphgen-zap-wake-%u",
             atomic_fetch_add(&zap_counter, 1));
    int zero = 0;
    z->rep = zmq_socket(zmq_ctx, ZMQ_REP);
    z->wake_recv = zmq_socket(zmq_ctx, ZMQ_PAIR);
    z->wake_send = zmq_socket(zmq_ctx, ZMQ_PAIR);
    int rc = GG_OK;
    if (!z->rep || !z->wake_recv || !z->wake_send) {
        rc = ggi_error(GG_ETRANSPORT, "ZAP handler sockets: %s", zmq_strerror(zmq_errno()));
    } else {
        zmq_setsockopt(z->rep, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(z->wake_recv, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(z->wake_send, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(z->rep, "inproc://zeromq.zap.01") != 0)
            rc = ggi_error(GG_ETRANSPORT, "binding the ZAP handler: %s",
                           zmq_strerror(zmq_errno()));
        else if (zmq_bind(z->wake_recv, wake) != 0 || zmq_connect(z->wake_send, wake) != 0)
            rc = ggi_error(GG_ETRANSPORT, "ZAP handler wake-up pair: %s",
                           zmq_strerror(zmq_errno()));
    }
    if (rc == GG_OK && pthread_create(&z->thread, NULL, zap_main, z) != 0)
        rc = ggi_error(GG_EIO, "cannot start the ZAP handler thread");
    if (rc != GG_OK) {
        zap_free(z);
        return rc;
    }
    z->started = 1;
    *out = z;
    return GG_OK;
}

void ggi_zap_get_stats(ggi_zap *z, ggi_zap_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!z)
        return;
    out->admitted = atomic_load(&z->admitted);
    out->refused = atomic_load(&z->refused);
    out->malformed = atomic_load(&z->malformed);
    pthread_mutex_lock(&z->mu);
    snprintf(out->last_refusal, sizeof out->last_refusal, "%s", z->last_refusal);
    pthread_mutex_unlock(&z->mu);
}

void ggi_zap_stop(ggi_zap **pz)
{
    if (!pz || !*pz)
        return;
    ggi_zap *z = *pz;
    *pz = NULL;
    if (z->started) {
        zmq_send(z->wake_send, "", 0, 0);
        pthread_join(z->thread, NULL);
    }
    zap_free(z);
}
