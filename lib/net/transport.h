/*
 * transport.h - the transports libgryphgen carries its messages over: a copy of a transport
 * vtable with its state, and the built-in ZeroMQ transport. Internal.
 */
#ifndef GGI_TRANSPORT_H
#define GGI_TRANSPORT_H

#include "gryphgen/sys/transport.h"
#include "../core/ggi.h"

typedef struct ggi_transport {
    gg_transport_vtable vt;
    void *self;
} ggi_transport;

/** Largest message the built-in transport carries (bytes). */
#define GGI_ZMQ_MAX_MESSAGE (64u << 20)

/**
 * Creates the ZeroMQ transport (its own context: inproc:// endpoints are shared only by
 * sockets of the same transport). Hubs are ROUTER sockets with ROUTER_MANDATORY and bounded
 * queues; peers are DEALER sockets. Messages larger than GGI_ZMQ_MAX_MESSAGE are dropped on
 * receipt and counted.
 */
int ggi_zmq_transport_new(ggi_transport *out);

/** Destroys a transport made by ggi_*_transport_new (calls its destroy slot). */
void ggi_transport_destroy(ggi_transport *t);

#endif
