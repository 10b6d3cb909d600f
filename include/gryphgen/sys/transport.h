/*
 * gryphgen/sys/transport.h - the transport vtable: how the orchestrator's scheduler talks
 * to its workers. The built-in transport is ZeroMQ ("zmq": ROUTER/DEALER over inproc://,
 * ipc:// or tcp://). A host may carry the same messages over its own message bus.
 *
 * The model: one hub (the scheduler's side, many peers) and any number of peers (one per
 * worker or client). Messages are opaque byte strings up to a size the transport states;
 * a hub receives each message with the sending peer's identity and replies by identity.
 *
 * THREAD SAFETY: a hub or a peer is used by one thread at a time; different hubs and peers
 * of one transport may be used from different threads at once. open and close of sockets
 * may be called from any thread.
 */
#ifndef GRYPHGEN_SYS_TRANSPORT_H
#define GRYPHGEN_SYS_TRANSPORT_H

#include "../common.h"

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

#ifdef __cplusplus
}
#endif
#endif
