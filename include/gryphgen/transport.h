/*
 * gryphgen/transport.h - a handle on a host's own transport: the message carrier between an
 * orchestrator's scheduler (the hub) and its workers and clients (the peers), made with
 * gg_transport_new_custom() (gryphgen/sys/transport.h, where a transport's duties are) and
 * handed to gg_orchestrator_options, gg_worker_options and gg_client_options as
 * custom_transport. Without one, the library carries its messages over ZeroMQ.
 *
 * THREAD SAFETY: a transport handle is shared by the orchestrators, workers and clients it
 * was given to, which call it from their own threads as gryphgen/sys/transport.h says.
 * gg_transport_destroy() must come after every one of them was destroyed.
 */
#ifndef GRYPHGEN_TRANSPORT_H
#define GRYPHGEN_TRANSPORT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A host's transport, wrapped (gg_transport_new_custom()). */
typedef struct gg_transport gg_transport_t;

/**
 * Releases the transport (its vtable's destroy runs once) and sets *pt to NULL. Accepts
 * NULL and a pointer to NULL. Every orchestrator, worker and client given the transport
 * must have been destroyed before.
 */
GG_API void gg_transport_destroy(gg_transport_t **pt);

#ifdef __cplusplus
}
#endif
#endif
