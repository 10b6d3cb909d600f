/*
 * zap.h - the ZAP handler of a secure ZeroMQ transport: a thread bound to
 * inproc://zeromq.zap.01 on the transport's context that admits CURVE clients whose public
 * key is listed (answering with the key's role as the ZAP User-Id, which reaches every
 * message as its "User-Id" property) and refuses every other, logging the refusal with the
 * key's short fingerprint and the peer's address and counting it. Internal.
 */
#ifndef GGI_ZAP_H
#define GGI_ZAP_H

#include <stdint.h>

#include "../core/ggi.h"
#include "keys.h"

/** The ZAP domain the secure hubs of libgryphgen use. */
#define GGI_ZAP_DOMAIN "gryphgen"
/* The metadata property an admitted peer's messages carry: its public key in Z85. */
#define GGI_ZAP_KEY_PROPERTY "X-Gryphgen-Key"

typedef struct ggi_zap ggi_zap;

/** What a ZAP handler has done so far. */
typedef struct ggi_zap_stats {
    uint64_t admitted;       /* handshakes admitted */
    uint64_t refused;        /* handshakes refused (unknown key, wrong mechanism) */
    uint64_t malformed;      /* ZAP requests that broke the protocol (answered 500 or dropped) */
    char last_refusal[256];  /* the last refusal's log line, "" when none */
} ggi_zap_stats;

/**
 * Binds the handler on zmq_ctx and starts its thread. keys is moved into the handler (*keys
 * is emptied, also on failure). log may be NULL; its callback runs on the handler's
 * thread. Must be called before any socket of the context handshakes: without a handler
 * libzmq admits every CURVE client.
 */
int ggi_zap_start(ggi_zap **out, void *zmq_ctx, ggi_auth_keys *keys, const ggi_logger *log);

/** Copies the counters. */
void ggi_zap_get_stats(ggi_zap *z, ggi_zap_stats *out);

/** Stops the thread, closes its sockets and frees the handler; accepts NULL, nulls *pz. */
void ggi_zap_stop(ggi_zap **pz);

#endif
