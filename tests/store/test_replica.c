/*
 * test_replica.c - replication of the store (lib/store/replica.c): the primary's committed
 * transactions, captured as changesets, applied in order on a replica give the same rows;
 * a gap, a duplicate, a changeset with garbage or one too big is refused and leaves the
 * replica as it was; a rolled-back transaction ships nothing; a snapshot starts a replica
 * that then takes the stream from the snapshot's sequence; a snapshot that is not one is
 * refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../../lib/store/replica.h"
#include "../../lib/store/store.h"
#include "gryphgen.h"
#include "teststore.h"
#include "testutil.h"

#define MAX_SHIPPED 64

typedef struct shipped {
    int64_t seq;
    void *cs;
    size_t n;
} shipped;

static shipped log_[MAX_SHIPPED];
static int n_log;

static void ship(void *user, int64_t seq, const void *cs, size_t n)
{
    (void)user;
    if (n_log == MAX_SHIPPED)
        return;
    log_[n_log].seq = seq;
    log_[n_log].cs = malloc(n);
    memcpy(log_[n_log].cs, cs, n);
    log_[n_log].n = n;
    n_log++;
}

static long long count_rows(ggi_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(ggi_store_sqlite(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void insert_tasks(ggi_store *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32], hash[32];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(hash, sizeof hash, "h%d", i);
        int64_t seq = 0;
        int existing = 0;
        CHECK_RC(test_task_insert(s, id, "{\"prompt\":\"x\"}", hash, 0, 1.0, &seq, &existing), 0);
    }
}

static int64_t seq_of(ggi_store *s)
{
    int64_t v = -1;
    CHECK_RC(ggi_replica_read_seq(s, &v), 0);
    return v;
}

int main(void)
{
    char dir[] = "/tmp/gg-replica-XXXXXX";
    if (!test_make_dir(dir))
        return 1;
    char p_path[96], r_path[96], r2_path[96];
    snprintf(p_path, sizeof p_path, "%s/primary.db", dir);
    snprintf(r_path, sizeof r_path, "%s/replica.db", dir);
    snprintf(r2_path, sizeof r2_path, "%s/late.db", dir);
    ggi_store *p = NULL, *r = NULL, *r2 = NULL;
    CHECK_RC(ggi_store_open(&p, p_path), 0);
    CHECK_RC(ggi_store_open(&r, r_path), 0);
    CHECK_RC(ggi_store_open(&r2, r2_path), 0);
    CHECK_RC(ggi_replica_prepare(p), 0);
    CHECK_RC(ggi_replica_prepare(r), 0);
    CHECK_RC(ggi_replica_attach(p, ship, NULL), 0);
    CHECK_RC(ggi_replica_attach(p, ship, NULL), GG_ESTATE);

    /* Three transactions: three changesets numbered 1, 2, 3. */
    insert_tasks(p, 0, 3);
    CHECK(n_log == 3);
    CHECK(ggi_replica_seq(p) == 3);
    for (int i = 0; i < n_log; i++)
        CHECK(log_[i].seq == i + 1);

    /* A rolled-back transaction ships nothing. */
    CHECK_RC(ggi_store_begin(p), 0);
    CHECK(sqlite3_exec(ggi_store_sqlite(p), "DELETE FROM task_specs", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK_RC(ggi_store_rollback(p), 0);
    CHECK(n_log == 3);
    CHECK(ggi_replica_seq(p) == 3);

    /* A standby applies without foreign-key checks and turns them on again to take over;
     * neither inside a transaction. */
    CHECK_RC(ggi_replica_standby(r, 1), 0);
    CHECK(count_rows(r, "PRAGMA foreign_keys") == 0);
    CHECK_RC(ggi_store_begin(r), 0);
    CHECK_RC(ggi_replica_standby(r, 0), GG_ESTATE);
    CHECK_RC(ggi_store_rollback(r), 0);
    CHECK(count_rows(r, "PRAGMA foreign_keys") == 0);
    CHECK_RC(ggi_replica_standby(NULL, 1), GG_EINVAL);

    /* Out of order: a gap is refused, nothing applied. */
    CHECK_RC(ggi_replica_apply(r, 2, log_[1].cs, log_[1].n), GG_ESTATE);
    CHECK(count_rows(r, "SELECT count(*) FROM tasks") == 0);
    /* In order: applied, the replica's sequence follows. */
    CHECK_RC(ggi_replica_apply(r, 1, log_[0].cs, log_[0].n), 0);
    CHECK(seq_of(r) == 1);
    /* A duplicate is refused and changes nothing. */
    CHECK_RC(ggi_replica_apply(r, 1, log_[0].cs, log_[0].n), GG_EEXIST);
    CHECK(count_rows(r, "SELECT count(*) FROM tasks") == 1);
    /* A peer that lies about the number: changeset 3 sent as 2 does not carry seq 2. */
    CHECK(ggi_replica_apply(r, 2, log_[2].cs, log_[2].n) != 0);
    CHECK(seq_of(r) == 1);
    CHECK(count_rows(r, "SELECT count(*) FROM tasks") == 1);
    /* Garbage, and one too big, are refused. */
    unsigned char junk[64];
    memset(junk, 0x5a, sizeof junk);
    CHECK(ggi_replica_apply(r, 2, junk, sizeof junk) != 0);
    CHECK_RC(ggi_replica_apply(r, 2, junk, (size_t)GGI_REPLICA_MAX_CHANGESET + 1), GG_ETOOBIG);
    CHECK_RC(ggi_replica_apply(r, 2, junk, 0), GG_EINVAL);
    /* A truncated changeset. */
    CHECK(ggi_replica_apply(r, 2, log_[1].cs, log_[1].n / 2) != 0);
    CHECK(seq_of(r) == 1);
    CHECK_RC(ggi_replica_apply(r, 2, log_[1].cs, log_[1].n), 0);
    CHECK_RC(ggi_replica_apply(r, 3, log_[2].cs, log_[2].n), 0);
    CHECK(seq_of(r) == 3);
    CHECK(count_rows(r, "SELECT count(*) FROM tasks") == 3);
    CHECK(count_rows(r, "SELECT count(*) FROM task_specs") == 3);
    CHECK(count_rows(r, "SELECT n FROM task_counts WHERE status = 'queued'") == 3);
    CHECK_RC(ggi_replica_standby(r, 0), 0);
    CHECK(count_rows(r, "PRAGMA foreign_keys") == 1);

    /* A snapshot at 3, then the stream from 4 on, on a replica that was empty. */
    void *img = NULL;
    size_t n_img = 0;
    int64_t snap_seq = 0;
    CHECK_RC(ggi_replica_snapshot(p_path, &img, &n_img, &snap_seq), 0);
    CHECK(snap_seq == 3);
    insert_tasks(p, 3, 5);
    CHECK(n_log == 5);
    /* Not a snapshot: refused, the replica untouched. */
    CHECK(ggi_replica_restore(r2, junk, sizeof junk, &snap_seq) == GG_EINVAL);
    if (img && n_img > 4096) {
        unsigned char *cut = malloc(n_img);
        memcpy(cut, img, n_img);
        memset(cut + n_img / 2, 0, n_img - n_img / 2); /* pages lost */
        int64_t s2 = 0;
        CHECK(ggi_replica_restore(r2, cut, n_img, &s2) != 0);
        free(cut);
    }
    int64_t restored = 0;
    CHECK_RC(ggi_replica_restore(r2, img, n_img, &restored), 0);
    ggi_replica_free_image(img);
    CHECK(restored == 3);
    CHECK(seq_of(r2) == 3);
    CHECK(count_rows(r2, "SELECT count(*) FROM tasks") == 3);
    CHECK_RC(ggi_replica_apply(r2, 4, log_[3].cs, log_[3].n), 0);
    CHECK_RC(ggi_replica_apply(r2, 5, log_[4].cs, log_[4].n), 0);
    CHECK(count_rows(r2, "SELECT count(*) FROM tasks") == 5);
    CHECK(seq_of(r2) == 5);
    /* The restored replica is a working store: its tasks are read as the primary's. */
    CHECK(count_rows(r2, "SELECT count(*) FROM queue") == 5);

    ggi_replica_detach(p);
    insert_tasks(p, 5, 6);
    CHECK(n_log == 5); /* detached: nothing recorded */

    for (int i = 0; i < n_log; i++)
        free(log_[i].cs);
    ggi_store_close(&p);
    ggi_store_close(&r);
    ggi_store_close(&r2);
    test_remove_dir(dir);
    return test_exit();
}
