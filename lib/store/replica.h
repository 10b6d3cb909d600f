/*
 * replica.h - replication of a store's committed transactions to a standby (docs/ha.md).
 *
 * On the active server, a recorder is attached to the connection that writes task state:
 * every transaction it commits that changed anything also bumps the sequence number in the
 * table ggi_ha and is captured as an SQLite changeset (the session extension), handed to a
 * callback right after its COMMIT succeeded, with that sequence number. On the standby, the
 * changesets are applied strictly in order, each in one transaction (the changeset itself
 * carries the bump of ggi_ha.seq, so the replica knows where it stands after a crash), and a
 * snapshot (the whole database as bytes) starts a replica at the snapshot's sequence.
 *
 * THREAD SAFETY: a recorder belongs to its store's connection and runs on whichever thread
 * commits on it (one at a time, as the store requires); ggi_replica_seq may be read from any
 * thread. The apply and snapshot functions use the connection or path they are given, on the
 * caller's thread. Internal.
 */
#ifndef GGI_REPLICA_H
#define GGI_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/** Largest changeset or snapshot a replica accepts (bytes). */
#define GGI_REPLICA_MAX_CHANGESET (32u << 20)
#define GGI_REPLICA_MAX_SNAPSHOT (4096ull << 20)

/** Called after a commit with its changeset (cs, n bytes: the callee copies what it keeps)
 * and the sequence number the transaction was given. */
typedef void (*ggi_replica_ship_fn)(void *user, int64_t seq, const void *cs, size_t n);

typedef struct ggi_replica ggi_replica;

/** Makes the table ggi_ha on the store's database when missing (outside any transaction). */
int ggi_replica_prepare(ggi_store *s);

/** The sequence number the database holds (the last transaction recorded or applied). */
int ggi_replica_read_seq(ggi_store *s, int64_t *out);

/** Starts recording the store's transactions (ggi_replica_prepare first); ship runs after
 * each commit that changed something. The store keeps the recorder until it is closed or
 * ggi_replica_detach is called. */
int ggi_replica_attach(ggi_store *s, ggi_replica_ship_fn ship, void *user);

/** Stops recording (no commit may be in progress). */
void ggi_replica_detach(ggi_store *s);

/** The sequence number of the last transaction the recorder committed (any thread). */
int64_t ggi_replica_seq(ggi_store *s);

/* ---- called by store.c around its transactions ---- */
void ggi_replica_on_begin(ggi_replica *r);
int ggi_replica_before_commit(ggi_replica *r);
void ggi_replica_after_commit(ggi_replica *r, int committed);
void ggi_replica_free(ggi_replica *r);

/**
 * On the standby (on 1): the store's connection stops checking foreign keys, since what it
 * applies was checked where it was committed (the checks cost the apply a lookup per row);
 * on 0 it checks them again, as a server that takes over must. Outside any transaction.
 */
int ggi_replica_standby(ggi_store *s, int on);

/**
 * On the standby: applies the changeset numbered seq (n bytes) in one transaction. It must
 * be the next one (the database's sequence + 1): GG_ESTATE for a gap, GG_EEXIST for one
 * already applied (nothing done), GG_EINVAL for one too big, GG_ECORRUPT-like GG_ESTORE for
 * one that does not apply cleanly (any conflict, or a changeset that does not carry its own
 * sequence number): the transaction is rolled back and the replica stays where it was.
 * Within a transaction the caller opened, the changeset joins it (the caller commits; a
 * failure rolls all of it back).
 */
int ggi_replica_apply(ggi_store *s, int64_t seq, const void *cs, size_t n);

/**
 * On the active server: a consistent copy of the whole database at path, as bytes
 * (*out, *n: free with ggi_replica_free_image), and the sequence it stands at.
 */
int ggi_replica_snapshot(const char *path, void **out, size_t *n, int64_t *seq);
void ggi_replica_free_image(void *image);

/**
 * On the standby: replaces the whole content of the store's database with a snapshot's
 * (image, n bytes); *seq gets the sequence it stands at. GG_EINVAL for bytes that are not
 * a database of this library with a ggi_ha table.
 */
int ggi_replica_restore(ggi_store *s, const void *image, size_t n, int64_t *seq);

#endif
