/*
 * transport.h - the transports libgryphgen carries its messages over: a copy of a transport
 * vtable with its state, the built-in ZeroMQ transport, and the handle of a host's own
 * (custom_transport.c). Internal.
 */
#ifndef GGI_TRANSPORT_H
#define GGI_TRANSPORT_H

#include "gryphgen/sys/transport.h"
#include "../core/ggi.h"

typedef struct ggi_transport {
    gg_transport_vtable vt;
    void *self;
    int borrowed; /* a host's transport lent by its handle: ggi_transport_destroy leaves it */
} ggi_transport;

/** A host's transport (gg_transport_new_custom): the vtable and state it owns. */
struct gg_transport {
    ggi_transport t;
};

/** Fills *dst with a borrowed copy of the host's transport src (never destroyed through dst). */
void ggi_transport_borrow(ggi_transport *dst, const gg_transport_t *src);

/** Largest message the built-in transport carries (bytes). */
#define GGI_ZMQ_MAX_MESSAGE (64u << 20)

/**
 * Creates the ZeroMQ transport (its own context: inproc:// endpoints are shared only by
 * sockets of the same transport). Hubs are ROUTER sockets with ROUTER_MANDATORY and bounded
 * queues; peers are DEALER sockets. Messages larger than GGI_ZMQ_MAX_MESSAGE are dropped on
 * receipt and counted.
 */
int ggi_zmq_transport_new(ggi_transport *out);

/**
 * Security of a ZeroMQ transport (CURVE encryption, ZAP authentication). Paths are read
 * while the transport is made and not kept.
 */
typedef struct ggi_zmq_security {
    /* Hub side: both or neither. Every hub becomes a CURVE server whose ZAP handler admits
     * only the keys listed, each with its role. */
    const char *server_key_file;      /* key pair file (public and secret) */
    const char *authorized_keys_file; /* lines "ROLE Z85PUBKEY [comment]" */
    /* Peer side: this peer's key pair and the hub's public key (40 Z85 characters or the
     * path of a key file). Without client_key_file, a transport that has a server key uses
     * that key pair for its own peers and admits it with role "local". */
    const char *client_key_file;
    const char *server_public_key;
    ggi_logger log; /* refusals (warn), admissions (debug); runs on the ZAP handler thread */
} ggi_zmq_security;

/**
 * Creates the ZeroMQ transport with CURVE security; sec NULL is ggi_zmq_transport_new.
 * Hubs receive with gg_transport_msg.role set from the ZAP handler's answer: "worker",
 * "submitter", "admin", or "local" for peers in this process (the server's own key, or an
 * inproc:// hub, where ZeroMQ does no handshake). A secure hub bound to another transport
 * drops (and counts) a message that carries no role. Opening a hub on a transport without
 * a server key, or a peer without client keys, is GG_EINVAL.
 */
int ggi_zmq_transport_new_secure(ggi_transport *out, const ggi_zmq_security *sec);

/** Counters of a ZeroMQ transport's security (all zero when it has none). */
typedef struct ggi_zmq_security_stats {
    uint64_t admitted;      /* handshakes admitted by the ZAP handler */
    uint64_t refused;       /* handshakes refused */
    uint64_t malformed;     /* broken ZAP requests */
    uint64_t dropped;       /* malformed, oversized or unauthenticated messages dropped */
    char last_refusal[256]; /* the last refusal's log line */
} ggi_zmq_security_stats;

/** Fills *out for a transport made by ggi_zmq_transport_new*; GG_EINVAL for another. */
int ggi_zmq_transport_security_stats(const ggi_transport *t, ggi_zmq_security_stats *out);

/**
 * The public key (40 characters of Z85) the sender of the message last received on hub
 * authenticated with, as the ZAP handler admitted it; "" when the hub is not secure, the
 * sender is in this process (inproc://), or t is not the built-in ZeroMQ transport. Valid
 * until the next receive on hub; same thread as the receive.
 */
const char *ggi_zmq_hub_sender_key(const ggi_transport *t, void *hub);

/**
 * Binds a hub of the ZeroMQ transport t to one more endpoint (a ROUTER listens on many:
 * inproc:// for embedded workers plus tcp:// or ipc:// for remote ones). GG_EUNSUPPORTED for
 * another transport, GG_ETRANSPORT when the endpoint cannot be bound.
 */
int ggi_zmq_hub_bind(const ggi_transport *t, void *hub, const char *endpoint);

/** The state of a peer's connection to its hub (ggi_zmq_peer_link). */
enum {
    GGI_LINK_UNKNOWN = -1, /* not watched: another transport, inproc://, a hub */
    GGI_LINK_PENDING = 0,  /* not connected yet */
    GGI_LINK_UP = 1,       /* connected */
    GGI_LINK_REFUSED = 2,  /* not connected yet and a try was refused (nobody listens) */
    GGI_LINK_LOST = 3      /* was connected and the connection closed (the hub stopped or
                              died: a killed process's TCP connection closes at once) */
};

/**
 * What the socket monitor of a ZeroMQ peer saw of its connection (GGI_LINK_*), read without
 * blocking; GGI_LINK_UNKNOWN for another transport or an inproc:// peer. Same thread as the
 * peer's other calls.
 */
int ggi_zmq_peer_link(const ggi_transport *t, void *peer);

/** Destroys a transport made by ggi_*_transport_new or gg_transport_new_custom (calls its
 * destroy slot), and forgets a borrowed one; clears *t. */
void ggi_transport_destroy(ggi_transport *t);

#endif
