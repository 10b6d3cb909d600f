/*
 * replica.h - physical replication of a store's database to a standby (docs/ha.md): the
 * pages each committed transaction wrote to the WAL, shipped with the transaction's sequence
 * number, written into the standby's copy of the file.
 *
 * On the active server a recorder is attached to the connection that writes task state:
 * every transaction it commits that changed a row also bumps the sequence number in the
 * table ggi_ha, and after its COMMIT the page images it wrote (read back from the WAL) go
 * to a callback as a "page set" with that number. On the standby a replica file takes page
 * sets strictly in order, written straight into the database file while no SQLite
 * connection writes it, and a snapshot (the whole file as bytes) starts a replica at the
 * snapshot's number.
 *
 * THREAD SAFETY: a recorder belongs to its store's connection and runs on whichever thread
 * commits on it (one at a time, as the store requires); ggi_replica_seq may be read from any
 * thread. A replica file is used by one thread at a time. Internal.
 */
#ifndef GGI_REPLICA_H
#define GGI_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/** Largest page set or snapshot a replica accepts (bytes). */
#define GGI_REPLICA_MAX_PAGESET (64u << 20)
#define GGI_REPLICA_MAX_SNAPSHOT (4096ull << 20)

/** Called after a commit with its page set (data, n bytes: the callee copies what it
 * keeps) and the sequence number the transaction was given. data NULL (n 0): the commit
 * could not be captured (the reason is gg_error_last()); the stream must start again from
 * a snapshot. */
typedef void (*ggi_replica_ship_fn)(void *user, int64_t seq, const void *data, size_t n);

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

/* ---- called by store.c around its transactions and from its WAL hook ---- */
void ggi_replica_on_begin(ggi_replica *r);
int ggi_replica_before_commit(ggi_replica *r);
void ggi_replica_on_wal(ggi_replica *r, int wal_frames);
void ggi_replica_after_commit(ggi_replica *r, int committed);
void ggi_replica_free(ggi_replica *r);

/**
 * On the active server: a consistent copy of the whole database at path, as bytes
 * (*out, *n: free with ggi_replica_free_image), and the sequence it stands at. Its pages
 * are the primary's own, page 1 included, so later page sets apply over it.
 */
int ggi_replica_snapshot(const char *path, void **out, size_t *n, int64_t *seq);
void ggi_replica_free_image(void *image);

/* ---- the standby's copy of the file ---- */

typedef struct ggi_replica_file ggi_replica_file;

/**
 * Opens the database file at path for writing pages into (it must exist). No SQLite
 * connection may write the file while the replica is open, and none may have its WAL
 * unchecked (ggi_store_release makes it so for a store).
 */
int ggi_replica_file_open(const char *path, ggi_replica_file **out);
void ggi_replica_file_close(ggi_replica_file **f);

/** Whether the replica holds a snapshot and every page set since, nothing half-written. */
int ggi_replica_file_ready(const ggi_replica_file *f);

/** The sequence the replica stands at (after a restore and the page sets applied). */
int64_t ggi_replica_file_seq(const ggi_replica_file *f);

/**
 * Replaces the whole file with a snapshot's bytes (image, n); *seq gets the sequence it
 * stands at. GG_EINVAL for bytes that are not a whole database of this library (checked
 * before the file is touched).
 */
int ggi_replica_file_restore(ggi_replica_file *f, const void *image, size_t n,
                             int64_t *seq);

/**
 * Writes the page set numbered seq (data, n bytes) into the file. It must be the next one
 * (the replica's sequence + 1): GG_ESTATE for a gap or a replica without a snapshot,
 * GG_EEXIST for one already applied (nothing done), GG_EINVAL for a page set that is not
 * whole or does not fit the replica (page size, page numbers, length), checked before a
 * byte is written. The file is marked dirty until ggi_replica_file_sync.
 */
int ggi_replica_file_apply(ggi_replica_file *f, int64_t seq, const void *data, size_t n);

/**
 * Ends a group of page sets: checks through SQLite that the file reads as the database at
 * the last sequence applied and clears the dirty mark. GG_ECORRUPT-like GG_ESTORE when it
 * does not (the replica is no longer ready: a snapshot must come).
 */
int ggi_replica_file_sync(ggi_replica_file *f);

/** Whether the database at path is a replica left half-written (a crash mid-apply): it
 * must not be served from; a snapshot makes it whole. */
int ggi_replica_dirty(const char *path);

#endif
