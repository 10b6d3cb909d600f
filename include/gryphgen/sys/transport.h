/*
 * gryphgen/sys/transport.h - the transport vtable: how the orchestrator's scheduler talks
 * to its workers and clients. The built-in transport is ZeroMQ ("zmq": ROUTER/DEALER over
 * inproc://, ipc:// or tcp://). A host may carry the same messages over its own message bus:
 * it fills a gg_transport_vtable, wraps it with gg_transport_new_custom() and hands the
 * handle to gg_orchestrator_options, gg_worker_options and gg_client_options
 * (custom_transport). docs/protocol.md has the messages; docs/grid.md an example.
 *
 * The model: one hub (the scheduler's side, many peers) and any number of peers (one per
 * worker or client, and one the orchestrator's own API threads use to wake its scheduler).
 * The hub is opened with an endpoint name (the orchestrator's `bind`, else a name of its
 * own), peers are opened with the same name (the worker's or client's `connect`, or that
 * name). Messages are opaque byte strings; a hub receives each message with the sending
 * peer's identity and replies by identity.
 *
 * WHAT A TRANSPORT MUST GUARANTEE
 * - Framing: a message arrives whole and alone, with exactly the bytes and length sent, or
 *   not at all; never split, joined or truncated. Messages up to max_message bytes are
 *   carried; a larger send fails with GG_ETOOBIG and nothing is sent.
 * - Ordering: the messages of one peer to the hub arrive in the order sent, and so do the
 *   hub's messages to one peer. Nothing is promised between different peers.
 * - Delivery: at most once. A transport may lose messages when a peer or the hub goes away
 *   (the protocol's heartbeats, leases and retries recover: docs/protocol.md), but must not
 *   duplicate, reorder or corrupt them, and must not lose them silently while both ends are
 *   open: a message it cannot queue is refused with GG_EBUSY at send.
 * - Identity: hub_recv names the sending peer by an identity of at most
 *   GG_TRANSPORT_MAX_IDENTITY bytes, the same for every message of one open peer and
 *   different from every other open peer's; hub_send with that identity reaches that peer.
 *   A peer closed and opened again is a new peer (a new identity is best; the scheduler
 *   asks an unknown identity to say hello again either way).
 * - Authentication (optional): a transport that authenticates its peers sets msg->role
 *   ("worker", "submitter", "admin", or "local" for the peers inside the hub's process);
 *   one that does not leaves it "" and every peer may do everything (keep such a transport
 *   to trusted networks).
 * - Blocking: hub_recv and peer_recv wait at most timeout_ms (0: do not wait; negative:
 *   without limit) and return GG_ETIMEDOUT when nothing came. hub_send and peer_send never
 *   wait for the other side to read: they queue the message and return, or return GG_EBUSY
 *   at once when the queue is full (the library counts the message as not sent: jobs go
 *   back to the queue, a worker keeps its results and sends them again, a client asks
 *   again).
 * - Threads: one thread at a time uses a given hub or peer (the library serialises its own
 *   use: the scheduler thread owns the hub; each worker its peer; the orchestrator's API
 *   threads share one peer under a lock), but different hubs and peers of one transport
 *   are used from different threads at once, so state shared among them needs locks. open
 *   and close may be called from any thread; close is called once per socket, after the
 *   last use, and releases what is queued for it.
 * - Errors: 0 or a negative GG_E* code, with gg_error_set() saying why: GG_ETIMEDOUT (recv:
 *   nothing came), GG_EBUSY (send: full, try later), GG_ENOTFOUND (hub_send: no such peer;
 *   peer_open: no hub by that name, if the transport cannot wait for one), GG_ETOOBIG,
 *   GG_EINVAL (a bad endpoint name), GG_ETRANSPORT (the carrier failed). A recv error other
 *   than GG_ETIMEDOUT is logged and the call repeated after a short pause: it should not
 *   repeat for ever.
 * - Memory: a received message's data belongs to the transport and stays valid until the
 *   next recv on the same hub or peer (or its close); the library copies what it keeps.
 *
 * THREAD SAFETY: as stated above; gg_transport_new_custom() may be called from any thread.
 */
#ifndef GRYPHGEN_SYS_TRANSPORT_H
#define GRYPHGEN_SYS_TRANSPORT_H

#include "../common.h"
#include "../transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of gg_transport_vtable this header describes. */
#define GG_TRANSPORT_VTABLE_VERSION 1

/** Largest peer identity a transport may use, in bytes. */
#define GG_TRANSPORT_MAX_IDENTITY 255

/** Size of gg_transport_msg.role, with the terminating NUL. */
#define GG_TRANSPORT_MAX_ROLE 32

/**
 * A message received by a hub or a peer. The transport owns data until the next recv.
 * The library clears the whole struct before each recv, so a transport that does not
 * authenticate its peers leaves role empty.
 */
typedef struct gg_transport_msg {
    const void *data;                              /**< message bytes */
    size_t len;                                    /**< number of bytes */
    unsigned char peer[GG_TRANSPORT_MAX_IDENTITY]; /**< on a hub: the sender's identity */
    size_t peer_len;                               /**< on a hub: identity length */
    /**
     * On a hub that authenticates its peers: the sender's role ("worker", "submitter",
     * "admin", or "local" for a peer inside the hub's own process), NUL-terminated.
     * "" when the transport does not authenticate.
     */
    char role[GG_TRANSPORT_MAX_ROLE];
} gg_transport_msg;

/** A transport backend. Slots are only ever appended. */
typedef struct gg_transport_vtable {
    uint32_t version; /**< GG_TRANSPORT_VTABLE_VERSION */
    /** Opens a hub bound to endpoint; *out_hub is the transport's own handle. */
    int (*hub_open)(void *self, const char *endpoint, void **out_hub);
    /**
     * Waits up to timeout_ms (negative: no limit) for one message. GG_ETIMEDOUT when none
     * came. msg stays valid until the next recv on this hub.
     */
    int (*hub_recv)(void *hub, int timeout_ms, gg_transport_msg *msg);
    /** Sends to a peer by identity; GG_ENOTFOUND when the peer is gone, GG_EBUSY when full. */
    int (*hub_send)(void *hub, const void *peer, size_t peer_len, const void *data,
                    size_t len);
    /** Opens a peer connected to endpoint. */
    int (*peer_open)(void *self, const char *endpoint, void **out_peer);
    /** Waits up to timeout_ms for one message from the hub; GG_ETIMEDOUT when none came. */
    int (*peer_recv)(void *peer, int timeout_ms, gg_transport_msg *msg);
    /** Sends to the hub; GG_EBUSY when the queue is full. */
    int (*peer_send)(void *peer, const void *data, size_t len);
    /** Closes a hub or peer opened by this transport. */
    void (*close)(void *socket);
    /** Optional. Releases self; called exactly once, after every socket is closed. */
    void (*destroy)(void *self);
    /** Largest message in bytes the transport carries; 0 means 16 MiB. */
    size_t max_message;
} gg_transport_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_TRANSPORT_VTABLE_INIT \
    { GG_TRANSPORT_VTABLE_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

/**
 * Wraps a host's transport in a handle for the options of orchestrators, workers and
 * clients (custom_transport; borrowed by each, so it must outlive them). Every slot but
 * destroy is required (GG_EINVAL naming the missing one); GG_EVERSION for a vtable version
 * this library does not know. Ownership of self passes at once: if this call fails,
 * vtable->destroy(self) has already been called; otherwise gg_transport_destroy() calls it.
 */
GG_API int gg_transport_new_custom(gg_transport_t **out, const gg_transport_vtable *vtable,
                                   void *self);

#ifdef __cplusplus
}
#endif
#endif
