/*
 * replica.c - replication of the store's committed transactions (replica.h): a session
 * (SQLite's session extension) per transaction on the active server, changesets applied in
 * order on the standby, and whole-database snapshots for a standby that joins.
 *
 * The session is made fresh at each BEGIN and dropped after the COMMIT or ROLLBACK, so one
 * changeset is exactly one transaction. Before the COMMIT, a transaction that changed
 * something also bumps ggi_ha.seq; the bump is part of the changeset, so applying it moves
 * the standby's sequence too, and an out-of-order changeset fails on the conflict even if
 * the caller's check were wrong.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"

struct ggi_replica {
    sqlite3 *db;
    sqlite3_session *session; /* of the open transaction, or NULL */
    ggi_replica_ship_fn ship;
    void *user;
    _Atomic int64_t seq;      /* last committed */
    int64_t pending_seq;      /* given to the transaction being committed */
    void *cs;                 /* its changeset (sqlite3_malloc'd), or NULL */
    int n_cs;
};

/* Set by store.c: the store's recorder slot. */
ggi_replica **ggi_store_replica_slot(ggi_store *s);

int ggi_replica_prepare(ggi_store *s)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db)
        return ggi_error(GG_EINVAL, "ggi_replica_prepare: no database");
    char *err = NULL;
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS ggi_ha(id INTEGER PRIMARY KEY CHECK(id = 1),"
                     " seq INTEGER NOT NULL);"
                     "INSERT OR IGNORE INTO ggi_ha(id, seq) VALUES (1, 0);",
                     NULL, NULL, &err) != SQLITE_OK) {
        int rc = ggi_error(GG_ESTORE, "preparing replication: %s", err ? err : "?");
        sqlite3_free(err);
        return rc;
    }
    return GG_OK;
}

static int read_seq_db(sqlite3 *db, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = GG_ESTORE;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM ggi_ha WHERE id = 1", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = GG_OK;
    }
    if (rc != GG_OK)
        ggi_error(GG_ESTORE, "reading the replication sequence: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int ggi_replica_read_seq(ggi_store *s, int64_t *out)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db || !out)
        return ggi_error(GG_EINVAL, "ggi_replica_read_seq: bad argument");
    return read_seq_db(db, out);
}

int ggi_replica_attach(ggi_store *s, ggi_replica_ship_fn ship, void *user)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    if (!slot || !ship)
        return ggi_error(GG_EINVAL, "ggi_replica_attach: bad argument");
    if (*slot)
        return ggi_error(GG_ESTATE, "the store is recorded already");
    int64_t seq = 0;
    int rc = ggi_replica_read_seq(s, &seq);
    if (rc != GG_OK)
        return rc;
    ggi_replica *r = calloc(1, sizeof *r);
    if (!r)
        return ggi_error(GG_ENOMEM, "out of memory");
    r->db = ggi_store_sqlite(s);
    r->ship = ship;
    r->user = user;
    atomic_store(&r->seq, seq);
    *slot = r;
    return GG_OK;
}

void ggi_replica_detach(ggi_store *s)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    if (slot && *slot) {
        ggi_replica_free(*slot);
        *slot = NULL;
    }
}

int64_t ggi_replica_seq(ggi_store *s)
{
    ggi_replica **slot = s ? ggi_store_replica_slot(s) : NULL;
    return slot && *slot ? atomic_load(&(*slot)->seq) : 0;
}

static void drop_session(ggi_replica *r)
{
    if (r->session)
        sqlite3session_delete(r->session);
    r->session = NULL;
    sqlite3_free(r->cs);
    r->cs = NULL;
    r->n_cs = 0;
}

void ggi_replica_on_begin(ggi_replica *r)
{
    drop_session(r);
    if (sqlite3session_create(r->db, "main", &r->session) != SQLITE_OK) {
        r->session = NULL;
        return; /* before_commit refuses the commit: nothing goes unrecorded */
    }
    if (sqlite3session_attach(r->session, NULL) != SQLITE_OK)
        drop_session(r);
}

int ggi_replica_before_commit(ggi_replica *r)
{
    if (!r->session)
        return ggi_error(GG_ESTORE, "replication: no session records this transaction");
    if (sqlite3session_isempty(r->session))
        return GG_OK;
    int64_t seq = atomic_load(&r->seq) + 1;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(r->db, "UPDATE ggi_ha SET seq = ?1 WHERE id = 1", -1, &st,
                                NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, seq);
        ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(r->db) == 1;
    }
    sqlite3_finalize(st);
    if (!ok)
        return ggi_error(GG_ESTORE, "replication: cannot number the transaction: %s",
                         sqlite3_errmsg(r->db));
    if (sqlite3session_changeset(r->session, &r->n_cs, &r->cs) != SQLITE_OK)
        return ggi_error(GG_ESTORE, "replication: cannot record the transaction's changes");
    if ((size_t)r->n_cs > GGI_REPLICA_MAX_CHANGESET)
        return ggi_error(GG_ETOOBIG, "replication: one transaction changed %d bytes (at most "
                         "%u)", r->n_cs, GGI_REPLICA_MAX_CHANGESET);
    r->pending_seq = seq;
    return GG_OK;
}

void ggi_replica_after_commit(ggi_replica *r, int committed)
{
    if (committed && r->cs) {
        atomic_store(&r->seq, r->pending_seq);
        r->ship(r->user, r->pending_seq, r->cs, (size_t)r->n_cs);
    }
    drop_session(r);
}

void ggi_replica_free(ggi_replica *r)
{
    if (!r)
        return;
    drop_session(r);
    free(r);
}

int ggi_replica_standby(ggi_store *s, int on)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db)
        return ggi_error(GG_EINVAL, "ggi_replica_standby: no database");
    if (!sqlite3_get_autocommit(db))
        return ggi_error(GG_ESTATE, "ggi_replica_standby: a transaction is open");
    if (sqlite3_exec(db, on ? "PRAGMA foreign_keys=OFF" : "PRAGMA foreign_keys=ON", NULL, NULL,
                     NULL) != SQLITE_OK)
        return ggi_error(GG_ESTORE, "setting foreign-key checks: %s", sqlite3_errmsg(db));
    return GG_OK;
}

/* Any conflict ends the apply: a replica holds exactly what the primary committed. */
static int on_conflict(void *ctx, int why, sqlite3_changeset_iter *it)
{
    (void)why;
    (void)it;
    (*(int *)ctx)++;
    return SQLITE_CHANGESET_ABORT;
}

int ggi_replica_apply(ggi_store *s, int64_t seq, const void *cs, size_t n)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db || (!cs && n))
        return ggi_error(GG_EINVAL, "ggi_replica_apply: bad argument");
    if (n == 0 || n > GGI_REPLICA_MAX_CHANGESET)
        return ggi_error(n ? GG_ETOOBIG : GG_EINVAL, "changeset %lld: %zu bytes (1 to %u)",
                         (long long)seq, n, GGI_REPLICA_MAX_CHANGESET);
    int64_t have = 0;
    int rc = read_seq_db(db, &have);
    if (rc != GG_OK)
        return rc;
    if (seq <= have)
        return ggi_error(GG_EEXIST, "changeset %lld is applied already (the replica is at "
                         "%lld)", (long long)seq, (long long)have);
    if (seq != have + 1)
        return ggi_error(GG_ESTATE, "changeset %lld does not follow %lld (a gap)",
                         (long long)seq, (long long)have);
    /* In the caller's transaction when it has one (a group of changesets, committed by the
     * caller); a failure rolls the whole transaction back either way. */
    int own = !ggi_store_in_transaction(s);
    if (own && ggi_store_begin(s) != GG_OK)
        return GG_ESTORE;
    int conflicts = 0;
    int src = sqlite3changeset_apply(db, (int)n, (void *)cs, NULL, on_conflict, &conflicts);
    int64_t now = 0;
    if (src == SQLITE_OK && conflicts == 0 && read_seq_db(db, &now) == GG_OK && now == seq)
        return !own ? GG_OK : ggi_store_commit(s) == GG_OK ? GG_OK : GG_ESTORE;
    ggi_store_rollback(s);
    if (src != SQLITE_OK || conflicts)
        return ggi_error(GG_ESTORE, "changeset %lld does not apply (%s%s)", (long long)seq,
                         conflicts ? "a conflict: the replica differs" : sqlite3_errstr(src),
                         "");
    return ggi_error(GG_ESTORE, "changeset %lld does not carry its sequence number",
                     (long long)seq);
}

/* Copies src's main database into dst's (the backup API, in one step: one read
 * transaction on src, so the copy is consistent). */
static int copy_db(sqlite3 *dst, sqlite3 *src, const char *what)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b)
        return ggi_error(GG_ESTORE, "%s: %s", what, sqlite3_errmsg(dst));
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return ggi_error(GG_ESTORE, "%s: %s", what, sqlite3_errstr(rc));
    return GG_OK;
}

int ggi_replica_snapshot(const char *path, void **out, size_t *n, int64_t *seq)
{
    if (!path || !out || !n || !seq)
        return ggi_error(GG_EINVAL, "ggi_replica_snapshot: bad argument");
    *out = NULL;
    *n = 0;
    sqlite3 *src = NULL, *mem = NULL;
    int rc = GG_ESTORE;
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "snapshot of '%s': cannot open it", path);
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    if ((rc = copy_db(mem, src, "snapshot")) != GG_OK || (rc = read_seq_db(mem, seq)) != GG_OK)
        goto out;
    sqlite3_int64 size = 0;
    unsigned char *img = sqlite3_serialize(mem, "main", &size, 0);
    if (!img || size <= 0) {
        rc = ggi_error(GG_ENOMEM, "snapshot: cannot serialise the copy");
        goto out;
    }
    if ((unsigned long long)size > GGI_REPLICA_MAX_SNAPSHOT) {
        sqlite3_free(img);
        rc = ggi_error(GG_ETOOBIG, "snapshot: %lld bytes (at most %llu)", (long long)size,
                       GGI_REPLICA_MAX_SNAPSHOT);
        goto out;
    }
    *out = img;
    *n = (size_t)size;
    rc = GG_OK;
out:
    sqlite3_close(mem);
    sqlite3_close(src);
    return rc;
}

void ggi_replica_free_image(void *image)
{
    sqlite3_free(image);
}

int ggi_replica_restore(ggi_store *s, const void *image, size_t n, int64_t *seq)
{
    sqlite3 *db = ggi_store_sqlite(s);
    if (!db || !image || !seq || n < 512 || n > GGI_REPLICA_MAX_SNAPSHOT)
        return ggi_error(GG_EINVAL, "ggi_replica_restore: not a snapshot (%zu bytes)", n);
    if (memcmp(image, "SQLite format 3", 16) != 0)
        return ggi_error(GG_EINVAL, "the snapshot is not an SQLite database");
    sqlite3 *mem = NULL;
    if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(mem);
        return ggi_error(GG_ENOMEM, "restore: out of memory");
    }
    unsigned char *copy = sqlite3_malloc64(n);
    if (!copy) {
        sqlite3_close(mem);
        return ggi_error(GG_ENOMEM, "restore: out of memory");
    }
    memcpy(copy, image, n);
    /* The copy of a WAL database says WAL in its header (bytes 18 and 19), which a database
     * in memory cannot be: read it as a rollback-journal one. */
    if (copy[18] == 2 && copy[19] == 2)
        copy[18] = copy[19] = 1;
    int rc = GG_OK;
    if (sqlite3_deserialize(mem, "main", copy, (sqlite3_int64)n, (sqlite3_int64)n,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK)
        rc = ggi_error(GG_EINVAL, "the snapshot cannot be read: %s", sqlite3_errmsg(mem));
    /* A snapshot that is not whole (or not this library's) is refused before the replica
     * is touched. */
    sqlite3_stmt *st = NULL;
    if (rc == GG_OK) {
        int ok = sqlite3_prepare_v2(mem, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
        if (!ok)
            rc = ggi_error(GG_EINVAL, "the snapshot is damaged");
    }
    if (rc == GG_OK)
        rc = read_seq_db(mem, seq) == GG_OK ? GG_OK
                                            : ggi_error(GG_EINVAL, "the snapshot has no "
                                                        "replication sequence (ggi_ha)");
    if (rc == GG_OK)
        rc = copy_db(db, mem, "restoring a snapshot");
    sqlite3_close(mem);
    return rc;
}
