/*
 * test_replica.c - physical replication of the store (lib/store/replica.c): the pages each
 * committed transaction wrote to the WAL, applied in order on a replica file started from a
 * snapshot, make it the primary's file page for page (compared byte for byte after a full
 * checkpoint), through the file growing, the WAL restarting and a VACUUM that shrinks it;
 * a gap, a duplicate, a wrong page size, a truncated or damaged page set is refused before
 * a byte is written; a page set that writes the wrong pages leaves the replica dirty (its
 * marker stays, it takes no more pages); a rolled-back transaction ships nothing; a commit by
 * another connection ships as "not captured"; a snapshot that is not one is refused.
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

#define MAX_SHIPPED 1024

typedef struct shipped {
    int64_t seq;
    void *data; /* NULL: not captured */
    size_t n;
} shipped;

static shipped log_[MAX_SHIPPED];
static int n_log;

static void ship(void *user, int64_t seq, const void *data, size_t n)
{
    (void)user;
    if (n_log == MAX_SHIPPED)
        return;
    log_[n_log].seq = seq;
    log_[n_log].data = data ? malloc(n) : NULL;
    if (data)
        memcpy(log_[n_log].data, data, n);
    log_[n_log].n = n;
    n_log++;
}

static long long db_count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

static long long count_rows(ggi_store *s, const char *sql)
{
    return db_count(ggi_store_sqlite(s), sql);
}

/* Tasks from..to, per transactions of per tasks, each with a spec of about size bytes. */
static void insert_tasks(ggi_store *s, int from, int to, int per, size_t size)
{
    char *spec = malloc(size + 32);
    memset(spec, 'x', size + 32);
    for (int i = from; i < to;) {
        CHECK_RC(ggi_store_begin(s), 0);
        for (int k = 0; k < per && i < to; k++, i++) {
            char id[32], hash[32];
            snprintf(id, sizeof id, "t%d", i);
            snprintf(hash, sizeof hash, "h%d", i);
            int len = snprintf(spec, size + 32, "{\"prompt\":\"%d ", i);
            memset(spec + len, 'p', size);
            memcpy(spec + len + size, "\"}", 3);
            int64_t seq = 0;
            int existing = 0;
            CHECK_RC(test_task_insert(s, id, spec, hash, 0, 1.0, &seq, &existing), 0);
        }
        CHECK_RC(ggi_store_commit(s), 0);
    }
    free(spec);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* The primary's file after a full checkpoint against the replica's, byte for byte. */
static int same_files(ggi_store *p, const char *p_path, const char *r_path)
{
    int log = -1, done = -1;
    CHECK(sqlite3_wal_checkpoint_v2(ggi_store_sqlite(p), "main", SQLITE_CHECKPOINT_TRUNCATE,
                                    &log, &done) == SQLITE_OK);
    size_t na = 0, nb = 0;
    unsigned char *a = read_file(p_path, &na), *b = read_file(r_path, &nb);
    int same = a && b && na == nb && memcmp(a, b, na) == 0;
    if (!same && a && b) {
        fprintf(stderr, "files differ: %zu against %zu bytes\n", na, nb);
        for (size_t i = 0; i < na && i < nb; i++)
            if (a[i] != b[i]) {
                fprintf(stderr, "  first difference at byte %zu (page %zu)\n", i,
                        i / 4096 + 1);
                break;
            }
    }
    free(a);
    free(b);
    return same;
}

/* Applies the page sets shipped from index *next on, in order, and checks each group. */
static void apply_all(ggi_replica_file *rf, int *next)
{
    for (; *next < n_log; (*next)++) {
        CHECK(log_[*next].data != NULL);
        CHECK_RC(ggi_replica_file_apply(rf, log_[*next].seq, log_[*next].data, log_[*next].n),
                 0);
        if (*next % 7 == 0)
            CHECK_RC(ggi_replica_file_sync(rf), 0);
    }
    CHECK_RC(ggi_replica_file_sync(rf), 0);
}

/* Every refusal leaves the replica where it was, with nothing written. */
static void refusals(ggi_replica_file *rf, const char *r_path, const shipped *next)
{
    int64_t at = ggi_replica_file_seq(rf);
    CHECK(next->seq == at + 1);
    unsigned char *bad = malloc(next->n + 8);
    /* A gap, a duplicate. */
    CHECK_RC(ggi_replica_file_apply(rf, at + 2, next->data, next->n), GG_ESTATE);
    CHECK_RC(ggi_replica_file_apply(rf, at, next->data, next->n), GG_EEXIST);
    /* Truncated: the payload does not hold its pages. */
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, next->data, next->n - 1), GG_EINVAL);
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, next->data, 10), GG_EINVAL);
    memcpy(bad, next->data, next->n);
    memset(bad + next->n, 0, 8);
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n + 8), GG_EINVAL);
    /* Wrong page size. */
    bad[6] ^= 0x30;
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n), GG_EINVAL);
    memcpy(bad, next->data, next->n);
    /* Not a page set. */
    bad[0] = 'X';
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n), GG_EINVAL);
    memcpy(bad, next->data, next->n);
    /* A page beyond the database's size, a page 0, a size of 0 pages. */
    bad[16] = 0x7f;
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n), GG_EINVAL);
    memset(bad + 16, 0, 4);
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n), GG_EINVAL);
    memcpy(bad, next->data, next->n);
    memset(bad + 8, 0, 4);
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, next->n), GG_EINVAL);
    CHECK_RC(ggi_replica_file_apply(rf, at + 1, bad, (size_t)GGI_REPLICA_MAX_PAGESET + 1),
             GG_ETOOBIG);
    CHECK_RC(ggi_replica_file_apply(NULL, at + 1, bad, next->n), GG_EINVAL);
    CHECK(ggi_replica_file_seq(rf) == at);
    CHECK(!ggi_replica_dirty(r_path));
    free(bad);
}

int main(void)
{
    char dir[] = "/tmp/gg-replica-XXXXXX";
    if (!test_make_dir(dir))
        return 1;
    char p_path[96], r_path[96];
    snprintf(p_path, sizeof p_path, "%s/primary.db", dir);
    snprintf(r_path, sizeof r_path, "%s/replica.db", dir);
    ggi_store *p = NULL, *r = NULL;
    CHECK_RC(ggi_store_open(&p, p_path), 0);
    CHECK_RC(ggi_store_checkpoint_in_background(p), 0);
    CHECK_RC(ggi_replica_prepare(p), 0);
    CHECK_RC(ggi_replica_attach(p, ship, NULL), 0);
    CHECK_RC(ggi_replica_attach(p, ship, NULL), GG_ESTATE);

    /* Three transactions: three page sets numbered 1, 2, 3. */
    insert_tasks(p, 0, 3, 1, 100);
    CHECK(n_log == 3);
    CHECK(ggi_replica_seq(p) == 3);
    for (int i = 0; i < n_log; i++)
        CHECK(log_[i].seq == i + 1 && log_[i].data && log_[i].n > 16);

    /* A rolled-back transaction ships nothing, nor does one that changed no row. */
    CHECK_RC(ggi_store_begin(p), 0);
    CHECK(sqlite3_exec(ggi_store_sqlite(p), "DELETE FROM task_specs", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK_RC(ggi_store_rollback(p), 0);
    CHECK_RC(ggi_store_begin(p), 0);
    CHECK_RC(ggi_store_commit(p), 0);
    CHECK(n_log == 3);
    CHECK(ggi_replica_seq(p) == 3);

    /* The standby's store lets go of its file, which becomes the replica. */
    CHECK_RC(ggi_store_open(&r, r_path), 0);
    CHECK_RC(ggi_store_begin(r), 0);
    CHECK_RC(ggi_store_release(r), GG_ESTATE); /* not within a transaction */
    CHECK_RC(ggi_store_rollback(r), 0);
    CHECK_RC(ggi_store_release(r), 0);
    CHECK_RC(ggi_store_release(r), GG_EINVAL);
    /* Another connection stays open on the replica throughout, as the host API's does on
     * a standby: it must read what the pages make of the file. */
    sqlite3 *watcher = NULL;
    CHECK(sqlite3_open(r_path, &watcher) == SQLITE_OK);
    CHECK(db_count(watcher, "SELECT count(*) FROM tasks") == 0);
    ggi_replica_file *rf = NULL;
    CHECK_RC(ggi_replica_file_open(r_path, &rf), 0);
    CHECK(!ggi_replica_file_ready(rf));
    /* No snapshot yet: no page set is taken. */
    CHECK_RC(ggi_replica_file_apply(rf, 1, log_[0].data, log_[0].n), GG_ESTATE);

    /* A snapshot at 3; not a snapshot, or one with pages lost, is refused untouched. */
    void *img = NULL;
    size_t n_img = 0;
    int64_t snap_seq = 0;
    CHECK_RC(ggi_replica_snapshot(p_path, &img, &n_img, &snap_seq), 0);
    CHECK(snap_seq == 3);
    unsigned char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    int64_t got = -1;
    CHECK_RC(ggi_replica_file_restore(rf, junk, sizeof junk, &got), GG_EINVAL);
    CHECK(!ggi_replica_dirty(r_path));
    if (img && n_img > 8192) {
        unsigned char *cut = malloc(n_img);
        memcpy(cut, img, n_img);
        memset(cut + 4096, 0, n_img - 4096); /* pages lost */
        CHECK(ggi_replica_file_restore(rf, cut, n_img, &got) != 0);
        CHECK_RC(ggi_replica_file_restore(rf, cut, n_img - 100, &got), GG_EINVAL);
        free(cut);
    }
    CHECK(!ggi_replica_file_ready(rf));
    CHECK_RC(ggi_replica_file_restore(rf, img, n_img, &got), 0);
    ggi_replica_free_image(img);
    CHECK(got == 3 && ggi_replica_file_seq(rf) == 3 && ggi_replica_file_ready(rf));
    CHECK(!ggi_replica_dirty(r_path));
    /* A page set the snapshot covers: already applied. */
    CHECK_RC(ggi_replica_file_apply(rf, 3, log_[2].data, log_[2].n), GG_EEXIST);
    /* A snapshot alone is the primary's file. */
    CHECK(same_files(p, p_path, r_path));
    int next = 3;

    /* Many transactions, one task or twenty each, specs of 3 KB: the file grows. */
    insert_tasks(p, 3, 200, 1, 3000);
    insert_tasks(p, 200, 600, 20, 3000);
    insert_tasks(p, 1000, 2500, 1500, 3000); /* one page set of over 1000 pages */
    /* A write outside any store transaction numbers nothing: its pages go with the next. */
    CHECK(sqlite3_exec(ggi_store_sqlite(p), "CREATE TABLE extra(x); INSERT INTO extra "
                       "VALUES (randomblob(20000))", NULL, NULL, NULL) == SQLITE_OK);
    insert_tasks(p, 600, 601, 1, 10);
    CHECK(n_log > 3 && n_log < MAX_SHIPPED);
    refusals(rf, r_path, &log_[next]);
    apply_all(rf, &next);
    CHECK(ggi_replica_file_seq(rf) == ggi_replica_seq(p));
    CHECK(db_count(watcher, "SELECT count(*) FROM tasks") == 2101);
    CHECK(db_count(watcher, "SELECT seq FROM ggi_ha") == ggi_replica_seq(p));
    /* Page for page the primary's (the checkpoint also restarts the primary's WAL). */
    CHECK(same_files(p, p_path, r_path));

    /* After the WAL restarted, and through a VACUUM that shrinks the file. */
    insert_tasks(p, 601, 700, 10, 3000);
    CHECK(sqlite3_exec(ggi_store_sqlite(p), "DROP TABLE extra; DELETE FROM attempts; "
                       "VACUUM", NULL, NULL, NULL) == SQLITE_OK);
    CHECK_RC(ggi_store_begin(p), 0);
    CHECK(sqlite3_exec(ggi_store_sqlite(p), "DELETE FROM task_counts WHERE 0; UPDATE tasks "
                       "SET priority = 1 WHERE task_id = 't1'", NULL, NULL, NULL) ==
          SQLITE_OK);
    CHECK_RC(ggi_store_commit(p), 0);
    apply_all(rf, &next);
    CHECK(same_files(p, p_path, r_path));

    /* A commit by another connection cannot be captured: the next numbered one ships as
     * "not captured" (the standby re-snapshots); the one after is captured again. */
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(p_path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "CREATE TABLE foreign_rows(x); INSERT INTO foreign_rows "
                       "VALUES (1)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    int before = n_log;
    insert_tasks(p, 700, 702, 1, 10);
    CHECK(n_log == before + 2);
    CHECK(log_[before].data == NULL && log_[before].n == 0);
    CHECK(log_[before + 1].data != NULL);

    /* The replica as a store: whole, the primary's rows, at the primary's sequence. */
    ggi_replica_file_close(&rf);
    CHECK(db_count(watcher, "SELECT count(*) FROM pragma_integrity_check WHERE "
                            "integrity_check = 'ok'") == 1);
    CHECK_RC(ggi_store_reopen(r), 0);
    CHECK(count_rows(r, "SELECT count(*) FROM tasks") == 2200);
    CHECK(count_rows(r, "SELECT count(*) FROM pragma_integrity_check WHERE "
                        "integrity_check = 'ok'") == 1);
    int64_t rs = -1;
    CHECK_RC(ggi_replica_read_seq(r, &rs), 0);
    CHECK(rs == log_[before - 1].seq);
    CHECK(count_rows(r, "SELECT priority FROM tasks WHERE task_id = 't1'") == 1);

    /* A page set that writes the wrong pages (an old one, numbered as the next): the
     * sequence read back does not match, the replica stays dirty and takes nothing more. */
    CHECK_RC(ggi_store_release(r), 0);
    CHECK_RC(ggi_replica_file_open(r_path, &rf), 0);
    img = NULL;
    CHECK_RC(ggi_replica_snapshot(p_path, &img, &n_img, &snap_seq), 0);
    CHECK_RC(ggi_replica_file_restore(rf, img, n_img, &got), 0);
    ggi_replica_free_image(img);
    CHECK(got == ggi_replica_seq(p));
    CHECK_RC(ggi_replica_file_apply(rf, got + 1, log_[5].data, log_[5].n), 0);
    CHECK(ggi_replica_dirty(r_path));
    CHECK(ggi_replica_file_sync(rf) != 0);
    CHECK(!ggi_replica_file_ready(rf));
    CHECK(ggi_replica_dirty(r_path));
    CHECK_RC(ggi_replica_file_apply(rf, got + 2, log_[6].data, log_[6].n), GG_ESTATE);
    ggi_replica_file_close(&rf);
    CHECK(ggi_replica_dirty(r_path)); /* visible to the next process too */
    CHECK(!ggi_replica_dirty(p_path));
    CHECK_RC(ggi_replica_file_open(dir, &rf), GG_ESTORE); /* a directory is no replica */
    CHECK_RC(ggi_replica_file_open("", &rf), GG_EINVAL);

    ggi_replica_detach(p);
    before = n_log;
    insert_tasks(p, 702, 703, 1, 10);
    CHECK(n_log == before); /* detached: nothing recorded */

    for (int i = 0; i < n_log; i++)
        free(log_[i].data);
    sqlite3_close(watcher);
    ggi_store_close(&p);
    ggi_store_close(&r);
    test_remove_dir(dir);
    return test_exit();
}
