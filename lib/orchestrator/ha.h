/*
 * ha.h - a standby orchestrator (zguide's Binary Star): the pair's states and the rules
 * between them, the peer link, the replication stream and the passive server (docs/ha.md).
 *
 * Two servers, one with role primary and one with role backup, each connect a peer
 * (DEALER) to the other's hub and exchange heartbeats on it. The active one streams every
 * transaction its scheduler's connection commits (replica.h) to the passive one, which
 * applies it and acks; a batch's replies and events go out only after the ack (when a
 * backup is attached). A passive server answers every hello and request with an error whose
 * message starts with "passive:", until the rules let it become active: then the scheduler
 * starts on its replica as after a restart.
 *
 * THREAD SAFETY: a ggi_ha is shared by the scheduler thread (the hub, the passive loop,
 * the waits for acks), the writer thread (ggi_ha_ship, through the store's recorder), the
 * host's threads (ggi_ha_is_active) and its own thread (the peer link); its state is under
 * its mutex. Internal.
 */
#ifndef GGI_HA_H
#define GGI_HA_H

#include <stddef.h>
#include <stdint.h>

#include "gryphgen/sys/transport.h"

typedef enum {
    GGI_HA_PRIMARY, /* started as primary: waiting to learn the peer's state */
    GGI_HA_BACKUP,  /* started as backup: likewise */
    GGI_HA_ACTIVE,  /* serving */
    GGI_HA_PASSIVE  /* standing by: a replica, answering "passive:" */
} ggi_ha_state;

typedef enum {
    GGI_HA_PEER_PRIMARY,
    GGI_HA_PEER_BACKUP,
    GGI_HA_PEER_ACTIVE,
    GGI_HA_PEER_PASSIVE,
    GGI_HA_CLIENT /* a hello or request from a worker or client */
} ggi_ha_event;

/** The state machine alone (no threads, no sockets): what the unit test drives. */
typedef struct ggi_ha_fsm {
    ggi_ha_state state;
    int synced;          /* this server's database is a replica of the active one's */
    double started_ms;   /* monotonic */
    double peer_seen_ms; /* when the peer was last heard; 0: never */
    double timeout_ms;   /* the peer is dead after this long without a word */
} ggi_ha_fsm;

/** Starts the machine for role (1 primary, 0 backup) at now. */
void ggi_ha_fsm_init(ggi_ha_fsm *f, int primary, double timeout_ms, double now);

/**
 * One event at now (peer events carry whether the peer's database is synced). Returns 1
 * when a client's hello or request is to be served (the state is ACTIVE after it), 0 when
 * it is to be refused (or for a peer event). why gets a line for the log when the event
 * changed the state or revealed a fault (two actives, two primaries), else "".
 */
int ggi_ha_fsm_step(ggi_ha_fsm *f, ggi_ha_event ev, int peer_synced, double now, char *why,
                    size_t cap);

/** A peer frame's payload sum as its header's "sum" carries it (16 hex digits and a NUL):
 * damage shows, forgery is CURVE's to stop. */
void ggi_ha_sum(const void *data, size_t n, char out[17]);

/** The state's name ("primary", "backup", "active", "passive"). */
const char *ggi_ha_state_name(ggi_ha_state s);

/* ---- the running pair ---- */

typedef struct ggi_ha ggi_ha;
struct gg_orchestrator;

/** Peer heartbeat interval and the default silence after which the peer is dead. */
#define GGI_HA_HB_MS 100
#define GGI_HA_TIMEOUT_MS 500
/** The heartbeat interval an HA server gives its workers in `welcome` (they notice a dead
 * server after 3 of them, and turn to the other). */
#define GGI_HA_WORKER_HB_MS 200
/** Bytes of a snapshot per message (under the transport's message cap). */
#define GGI_HA_CHUNK (8u << 20)
/** Page sets kept for a backup that has not acked them (bytes); beyond, it resyncs. */
#define GGI_HA_QUEUE_MAX (256u << 20)

/** Makes the pair's state for o: role "primary" or "backup", peer the other's endpoint. */
int ggi_ha_new(ggi_ha **out, struct gg_orchestrator *o, const char *role, const char *peer,
               unsigned timeout_ms);
/** Starts the peer link's thread (after the hub is bound). */
int ggi_ha_start(ggi_ha *h);
/** Stops the thread and frees everything; accepts NULL. */
void ggi_ha_destroy(ggi_ha **ph);

/** Whether this server is active (any thread). */
int ggi_ha_is_active(ggi_ha *h);

/** Whether a message received on the hub is a peer frame (not ggp/1). */
int ggi_ha_is_frame(const void *data, size_t len);

/** A peer frame received on the hub (the scheduler thread): heartbeats are answered;
 * page sets and snapshots are applied when passive, refused when active. */
void ggi_ha_on_hub_frame(ggi_ha *h, const gg_transport_msg *msg);

/**
 * The passive server's loop, on the scheduler thread before the scheduler starts: peer
 * frames are handled, hellos and requests answered "passive:" until the rules make this
 * server active. Returns 1 when it became active (*first then holds a copy of the hello
 * that made it so, to be handled first: free with ggi_ha_free_msg), 0 when stopping.
 */
int ggi_ha_passive_loop(ggi_ha *h, gg_transport_msg **first);
void ggi_ha_free_msg(gg_transport_msg *m);

/** On becoming active (the scheduler thread, before its writer starts): the store records
 * its transactions for the stream. */
int ggi_ha_become_active(ggi_ha *h);

/** Waits until the backup acked the transaction numbered seq, or is absent or dead (then at
 * once); the scheduler thread, before it tells what a batch promised. */
void ggi_ha_wait_acked(ggi_ha *h, int64_t seq);

/** Whether the transaction numbered seq needs no more waiting: acked, or no standby is
 * attached (any thread, without waiting). */
int ggi_ha_acked(ggi_ha *h, int64_t seq);

/** Called by the store's recorder after each commit (the writer's or scheduler's thread). */
void ggi_ha_ship(void *user, int64_t seq, const void *cs, size_t n);

#endif
