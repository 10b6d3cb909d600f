/*
 * test_store.c - the SQLite store against real database files in a temporary folder:
 * opening, migrations and refusals, tasks, claims, attempts, events, transactions, two
 * connections on one file (WAL readers, a waiting writer, GG_EBUSY), a process killed in the
 * middle of a transaction, claim cost on a million queued rows, and a throughput print.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <gryphgen.h>

#include "core/ggi.h"
#include "store/store.h"
#include "testdb.h"
#include "teststore.h"
#include "testutil.h"

static char tmpdir[256];

/* A path in the test's temporary folder (static buffer per slot). */
static const char *tpath(int slot, const char *name)
{
    static char bufs[8][512];
    snprintf(bufs[slot], sizeof bufs[slot], "%s/%s", tmpdir, name);
    return bufs[slot];
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

static int64_t add_task(ggi_store *s, const char *id, int priority, double now)
{
    int64_t seq = -1;
    int existing = -1;
    int rc = test_task_insert(s, id, "{\"prompt\":\"x\"}", "h1", priority, now, &seq,
                                   &existing);
    if (rc != 0 || existing != 0) {
        fprintf(stderr, "add_task %s: rc %d existing %d: %s\n", id, rc, existing,
                gg_error_last());
        return -1;
    }
    return seq;
}

static void free_rows(ggi_task_row *rows, int n)
{
    for (int i = 0; i < n; i++)
        ggi_store_task_row_free(&rows[i]);
    free(rows);
}

/* ---- open, schema, refusals ---- */

static void test_open(void)
{
    const char *path = tpath(0, "open.db");
    ggi_store *s = (ggi_store *)1;
    CHECK_RC(ggi_store_open(&s, path), 0);
    CHECK(s != NULL);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    int64_t seq = add_task(s, "keep", 3, 100.0);
    CHECK(seq > 0);
    ggi_store_close(&s);
    CHECK(s == NULL);
    ggi_store_close(&s);   /* pointer to NULL */
    ggi_store_close(NULL); /* NULL */

    /* What the file holds, read without the store. */
    CHECK(test_db_int(path, "PRAGMA user_version") == GGI_STORE_SCHEMA_VERSION);
    CHECK(test_db_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                        "('tasks','attempts','events','queue','task_counts')") == 5);
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
    }

    /* Reopening keeps the data and does not migrate again. */
    CHECK_RC(ggi_store_open(&s, path), 0);
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "keep", &row), 0);
    CHECK(row.seq == seq);
    CHECK(row.priority == 3);
    CHECK_STR(row.status, GGI_ST_QUEUED);
    ggi_store_task_row_free(&row);
    {
        /* The connection's settings took effect. */
        sqlite3 *db = ggi_store_sqlite(s);
        sqlite3_stmt *st = NULL;
        CHECK(sqlite3_prepare_v2(db, "PRAGMA foreign_keys", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1);
        sqlite3_finalize(st);
        CHECK(sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1); /* NORMAL */
        sqlite3_finalize(st);
        CHECK(sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 5000);
        sqlite3_finalize(st);
    }
    ggi_store_close(&s);

    /* Bad arguments and places. */
    CHECK_RC(ggi_store_open(NULL, path), GG_EINVAL);
    s = (ggi_store *)1;
    CHECK_RC(ggi_store_open(&s, NULL), GG_EINVAL);
    CHECK(s == NULL);
    CHECK_RC(ggi_store_open(&s, ""), GG_EINVAL);
    const char *nodir = tpath(1, "no/such/dir/x.db");
    CHECK_RC(ggi_store_open(&s, nodir), GG_ESTORE);
    CHECK_CONTAINS(gg_error_last(), nodir);
    CHECK(s == NULL);
    /* A database that cannot be in WAL mode is refused with a clear message. */
    CHECK_RC(ggi_store_open(&s, ":memory:"), GG_ESTORE);
    CHECK_CONTAINS(gg_error_last(), "WAL");
    CHECK_CONTAINS(gg_error_last(), "memory");
    CHECK(s == NULL);
}

static void test_refusals(void)
{
    ggi_store *s = NULL;

    /* Newer schema: refused, untouched. */
    const char *newer = tpath(0, "newer.db");
    CHECK(test_db_exec(newer, "CREATE TABLE future(x); PRAGMA user_version = 99;") == SQLITE_OK);
    CHECK_RC(ggi_store_open(&s, newer), GG_EVERSION);
    CHECK(s == NULL);
    CHECK_CONTAINS(gg_error_last(), "99");
    {
        char known[32];
        snprintf(known, sizeof known, "version %d", GGI_STORE_SCHEMA_VERSION);
        CHECK_CONTAINS(gg_error_last(), known);
    }
    CHECK_CONTAINS(gg_error_last(), newer);
    CHECK(test_db_int(newer, "PRAGMA user_version") == 99);
    CHECK(test_db_int(newer, "SELECT count(*) FROM pragma_journal_mode "
                         "WHERE journal_mode = 'delete'") == 1);
    CHECK(test_db_int(newer, "SELECT count(*) FROM sqlite_master WHERE name = 'tasks'") == 0);

    /* Not a database. */
    const char *garbage = tpath(1, "garbage.db");
    FILE *f = fopen(garbage, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 200; i++)
            fputs("this is not a SQLite database, only text\n", f);
        fclose(f);
    }
    CHECK_RC(ggi_store_open(&s, garbage), GG_ESTORE);
    CHECK(s == NULL);
    CHECK_CONTAINS(gg_error_last(), garbage);
    CHECK_CONTAINS(gg_error_last(), "not a database");

    /* A migration that fails is rolled back whole: the version and the schema stay. */
    const char *clash = tpath(2, "clash.db");
    CHECK(test_db_exec(clash, "CREATE TABLE tasks(x);") == SQLITE_OK);
    CHECK_RC(ggi_store_open(&s, clash), GG_ESTORE);
    CHECK(s == NULL);
    CHECK_CONTAINS(gg_error_last(), "schema version 1");
    CHECK_CONTAINS(gg_error_last(), "tasks");
    CHECK(test_db_int(clash, "PRAGMA user_version") == 0);
    CHECK(test_db_int(clash, "SELECT count(*) FROM sqlite_master WHERE name = 'attempts'") == 0);
}

/* ---- tasks ---- */

static void test_tasks(void)
{
    const char *path = tpath(0, "tasks.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    int64_t seq = 0;
    int existing = -1;
    CHECK_RC(test_task_insert(s, "alpha", "{\"a\":1}", "hashA", 7, 1000.5, &seq, &existing),
             0);
    CHECK(seq > 0);
    CHECK(existing == 0);

    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "alpha", &row), 0);
    CHECK(row.seq == seq);
    CHECK_STR(row.task_id, "alpha");
    CHECK_STR(row.spec, "{\"a\":1}");
    CHECK_STR(row.status, GGI_ST_QUEUED);
    CHECK(row.priority == 7);
    CHECK(row.attempts == 0);
    CHECK(row.created_at == 1000.5);
    CHECK(row.started_at == 0.0);
    CHECK(row.finished_at == 0.0);
    CHECK(row.reason == NULL);
    CHECK(row.result == NULL);
    ggi_store_task_row_free(&row);
    CHECK(row.task_id == NULL && row.spec == NULL);
    ggi_store_task_row_free(NULL);

    /* Same id, same hash: the old row, nothing written. */
    int64_t seq2 = 0;
    CHECK_RC(test_task_insert(s, "alpha", "{\"a\": 1}", "hashA", 0, 2000.0, &seq2,
                                   &existing),
             0);
    CHECK(existing == 1);
    CHECK(seq2 == seq);
    CHECK_RC(ggi_store_task_get(s, "alpha", &row), 0);
    CHECK(row.priority == 7 && row.created_at == 1000.5);
    CHECK_STR(row.spec, "{\"a\":1}");
    ggi_store_task_row_free(&row);
    /* The spec lives in task_specs, once; the task row has none. */
    CHECK(test_db_int(path, "SELECT count(*) FROM task_specs WHERE spec = '{\"a\":1}'") == 1);
    CHECK(test_db_int(path, "SELECT count(*) FROM pragma_table_info('tasks') WHERE name = 'spec'")
          == 0);
    /* One spec per task: a second row for it is refused by the table itself. */
    char twice[128];
    snprintf(twice, sizeof twice, "INSERT INTO task_specs(seq, spec) VALUES (%lld, '{}')",
             (long long)seq);
    CHECK(test_db_exec(path, twice) == SQLITE_CONSTRAINT);

    /* Same id, other hash: GG_EEXIST naming the task. */
    seq2 = 99;
    CHECK_RC(test_task_insert(s, "alpha", "{\"a\":2}", "hashB", 0, 2000.0, &seq2,
                                   &existing),
             GG_EEXIST);
    CHECK_CONTAINS(gg_error_last(), "'alpha'");
    CHECK(seq2 == 0);

    /* Missing task, bad arguments. */
    CHECK_RC(ggi_store_task_get(s, "nope", &row), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "nope");
    CHECK(row.task_id == NULL);
    CHECK_RC(test_task_insert(s, "", "{}", "h", 0, 0, &seq2, NULL), GG_EINVAL);
    CHECK_RC(test_task_insert(s, "x", NULL, "h", 0, 0, &seq2, NULL), GG_EINVAL);
    CHECK_RC(test_task_insert(NULL, "x", "{}", "h", 0, 0, &seq2, NULL), GG_EINVAL);

    /* seq grows with each new task; a task id with quotes is data, not SQL. */
    int64_t seq3 = add_task(s, "it's \"quoted\"", 0, 1.0);
    CHECK(seq3 > seq);
    CHECK_RC(ggi_store_task_get(s, "it's \"quoted\"", &row), 0);
    CHECK(row.seq == seq3);
    ggi_store_task_row_free(&row);

    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 2 && c.running == 0 && c.passed == 0 && c.attempts == 0);
    ggi_store_close(&s);
}

static void test_claim(void)
{
    const char *path = tpath(0, "claim.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    /* Inserted in this order; claim order is priority desc, then age. */
    int64_t a = add_task(s, "a", 0, 1.0);
    int64_t b = add_task(s, "b", 5, 2.0);
    int64_t c = add_task(s, "c", 0, 3.0);
    int64_t d = add_task(s, "d", 5, 4.0);
    int64_t e = add_task(s, "e", 1, 5.0);
    ggi_task_row *rows = (ggi_task_row *)1;
    int n = -1;
    CHECK_RC(test_tasks_claim(s, 3, 50.0, &rows, &n), 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(rows[0].seq == b && rows[1].seq == d && rows[2].seq == e);
        CHECK_STR(rows[0].task_id, "b");
        CHECK_STR(rows[0].status, GGI_ST_RUNNING);
        CHECK(rows[0].started_at == 50.0);
        CHECK_STR(rows[2].spec, "{\"prompt\":\"x\"}");
    }
    free_rows(rows, n);

    /* A claim takes queue entries and leaves the task rows alone: a claimed task reads as
     * running, its start is stored with its end (or requeue). */
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "d", &row), 0);
    CHECK_STR(row.status, GGI_ST_RUNNING);
    CHECK(row.started_at == 0.0);
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(s, "a", &row), 0);
    CHECK_STR(row.status, GGI_ST_QUEUED);
    ggi_store_task_row_free(&row);
    CHECK(test_db_int(path, "SELECT count(*) FROM queue") == 2);
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 5);

    /* The rest, then nothing. */
    CHECK_RC(test_tasks_claim(s, 10, 60.0, &rows, &n), 0);
    CHECK(n == 2);
    if (n == 2)
        CHECK(rows[0].seq == a && rows[1].seq == c);
    free_rows(rows, n);
    CHECK_RC(test_tasks_claim(s, 10, 70.0, &rows, &n), 0);
    CHECK(n == 0 && rows == NULL);
    CHECK_RC(test_tasks_claim(s, 0, 70.0, &rows, &n), 0);
    CHECK(n == 0 && rows == NULL);
    CHECK_RC(test_tasks_claim(s, -1, 70.0, &rows, &n), 0);
    CHECK(n == 0 && rows == NULL);

    /* Requeue and claim again: started_at keeps the first start. */
    CHECK_RC(ggi_store_task_requeue(s, d, 50.0), 0);
    CHECK_RC(ggi_store_task_requeue(s, d, 65.0), 0); /* already queued: nothing to do */
    CHECK_RC(ggi_store_task_requeue(s, 424242, 0), GG_ENOTFOUND);
    CHECK_RC(ggi_store_task_get(s, "d", &row), 0);
    CHECK_STR(row.status, GGI_ST_QUEUED);
    ggi_store_task_row_free(&row);
    CHECK_RC(test_tasks_claim(s, 10, 80.0, &rows, &n), 0);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(rows[0].seq == d);
        CHECK(rows[0].started_at == 50.0);
    }
    free_rows(rows, n);
    CHECK_RC(ggi_store_task_get(s, "d", &row), 0);
    CHECK(row.started_at == 50.0);
    ggi_store_task_row_free(&row);

    /* A crash left everything running: recover puts it all back, in claim order again. */
    ggi_store_counts cn;
    CHECK_RC(ggi_store_counts_get(s, &cn), 0);
    CHECK(cn.running == 5 && cn.queued == 0);
    ggi_store_close(&s);
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    int recovered = -1;
    CHECK_RC(ggi_store_recover(s, &recovered), 0);
    CHECK(recovered == 5);
    CHECK_RC(ggi_store_recover(s, &recovered), 0);
    CHECK(recovered == 0);
    CHECK_RC(ggi_store_counts_get(s, &cn), 0);
    CHECK(cn.running == 0 && cn.queued == 5);
    /* b's start was never stored (it did not end): it starts anew; d keeps its first. */
    CHECK_RC(test_tasks_claim(s, 2, 90.0, &rows, &n), 0);
    CHECK(n == 2 && rows[0].seq == b && rows[0].started_at == 90.0);
    CHECK(n == 2 && rows[1].seq == d && rows[1].started_at == 50.0);
    free_rows(rows, n);
    /* With nothing running, recovery does not look. */
    CHECK_RC(ggi_store_task_end(s, b, GGI_ST_PASSED, NULL, 0, 95.0, -1, 0), 0);
    CHECK_RC(ggi_store_task_end(s, d, GGI_ST_PASSED, NULL, 0, 95.0, -1, 0), 0);
    CHECK_RC(ggi_store_counts_get(s, &cn), 0);
    CHECK(cn.running == 0 && cn.queued == 3 && cn.passed == 2);
    CHECK_RC(ggi_store_recover(s, &recovered), 0);
    CHECK(recovered == 0);
    ggi_store_close(&s);
}

struct each_log {
    int n[8];
    int passed[8];
    char rec[8][32];
    int count;
    int stop_after;
    ggi_store *s;   /* when set, the callback re-enters the store */
    int64_t other;
    int inner;
};

static int count_cb(void *user, int n, int passed, const char *rec)
{
    (void)n;
    (void)passed;
    (void)rec;
    (*(int *)user)++;
    return 0;
}

static int each_cb(void *user, int n, int passed, const char *rec)
{
    struct each_log *lg = user;
    if (lg->count < 8) {
        lg->n[lg->count] = n;
        lg->passed[lg->count] = passed;
        snprintf(lg->rec[lg->count], sizeof lg->rec[0], "%s", rec);
    }
    lg->count++;
    if (lg->s) {
        int inner = 0;
        if (ggi_store_attempts_each(lg->s, lg->other, count_cb, &inner) != 0)
            return -100;
        lg->inner += inner;
        if (ggi_store_event_insert(lg->s, lg->other, "seen", NULL, 1.0) != 0)
            return -101;
    }
    if (lg->stop_after && lg->count >= lg->stop_after)
        return 42;
    return 0;
}

static void test_attempts(void)
{
    const char *path = tpath(0, "attempts.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    int64_t t = add_task(s, "t", 0, 1.0);
    int64_t u = add_task(s, "u", 0, 1.0);
    /* Recorded out of order; read back in order of n. */
    CHECK_RC(ggi_store_attempt_add(s, t, 2, "print(2)", 0, "{\"n\":2}", 10.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, t, 1, "print(1)", 0, "{\"n\":1}", 11.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, t, 3, NULL, 1, "{\"n\":3}", 12.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, u, 1, "x", 0, "{\"u\":1}", 12.0, 1), 0);
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "t", &row), 0);
    CHECK(row.attempts == 3);
    ggi_store_task_row_free(&row);

    /* One attempt, one row. */
    CHECK_RC(ggi_store_attempt_add(s, t, 2, "other", 1, "{\"again\":1}", 13.0, 1), GG_EEXIST);
    CHECK_CONTAINS(gg_error_last(), "attempt 2");
    /* No such task: the foreign key holds. */
    CHECK_RC(ggi_store_attempt_add(s, 9999, 1, "x", 0, "{}", 13.0, 1), GG_ENOTFOUND);
    CHECK_CONTAINS(gg_error_last(), "9999");
    CHECK_RC(ggi_store_attempt_add(s, t, 0, "x", 0, "{}", 13.0, 1), GG_EINVAL);
    CHECK_RC(ggi_store_attempt_add(s, t, 4, "x", 0, NULL, 13.0, 1), GG_EINVAL);

    struct each_log lg;
    memset(&lg, 0, sizeof lg);
    CHECK_RC(ggi_store_attempts_each(s, t, each_cb, &lg), 0);
    CHECK(lg.count == 3);
    CHECK(lg.n[0] == 1 && lg.n[1] == 2 && lg.n[2] == 3);
    CHECK(lg.passed[0] == 0 && lg.passed[2] == 1);
    CHECK_STR(lg.rec[0], "{\"n\":1}");
    CHECK_STR(lg.rec[1], "{\"n\":2}"); /* the duplicate did not overwrite */

    /* A non-zero return stops the walk and is returned. */
    memset(&lg, 0, sizeof lg);
    lg.stop_after = 2;
    CHECK_RC(ggi_store_attempts_each(s, t, each_cb, &lg), 42);
    CHECK(lg.count == 2);

    /* The callback may use the store again (the cached statement is busy meanwhile). */
    memset(&lg, 0, sizeof lg);
    lg.s = s;
    lg.other = u;
    CHECK_RC(ggi_store_attempts_each(s, t, each_cb, &lg), 0);
    CHECK(lg.count == 3 && lg.inner == 3);
    int64_t seen = -1;
    CHECK_RC(ggi_store_events_count(s, &seen), 0);
    CHECK(seen == 3);
    CHECK(test_db_int(path, "SELECT count(*) FROM events WHERE kind = 'seen'") == 3);

    /* A task without attempts: no calls. */
    memset(&lg, 0, sizeof lg);
    int64_t v = add_task(s, "v", 0, 1.0);
    CHECK_RC(ggi_store_attempts_each(s, v, each_cb, &lg), 0);
    CHECK(lg.count == 0);
    CHECK_RC(ggi_store_attempts_each(s, v, NULL, &lg), GG_EINVAL);

    /* Finish. */
    CHECK_RC(ggi_store_task_end(s, t, GGI_ST_PASSED, NULL, 0, 20.0, -1, 0), 0);
    CHECK_RC(ggi_store_task_end(s, u, GGI_ST_FAILED, "budget spent", 0, 21.0, -1, 0), 0);
    CHECK_RC(ggi_store_task_end(s, v, "running", NULL, 0, 21.0, -1, 0), GG_EINVAL);
    CHECK_RC(ggi_store_task_end(s, v, NULL, NULL, 0, 21.0, -1, 0), GG_EINVAL);
    CHECK_RC(ggi_store_task_end(s, 777, GGI_ST_ERROR, NULL, 0, 21.0, -1, 0), GG_ENOTFOUND);
    /* A task ends once: a second end is refused and changes nothing. */
    CHECK_RC(ggi_store_task_end(s, t, GGI_ST_ERROR, "again", 0, 22.0, -1, 0), GG_ESTATE);
    CHECK_CONTAINS(gg_error_last(), "a task ends once");
    CHECK_RC(ggi_store_task_get(s, "t", &row), 0);
    CHECK_STR(row.status, GGI_ST_PASSED);
    CHECK_CONTAINS(row.result, "\"status\":\"passed\""); /* built from the columns */
    CHECK(row.reason == NULL);
    CHECK(row.finished_at == 20.0);
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(s, "u", &row), 0);
    CHECK_STR(row.status, GGI_ST_FAILED);
    CHECK_STR(row.reason, "budget spent");
    CHECK(row.finished_at == 21.0);
    ggi_store_task_row_free(&row);
    /* An ended task is not requeued, nor claimed. */
    CHECK_RC(ggi_store_task_requeue(s, t, 0), GG_ESTATE);
    CHECK_CONTAINS(gg_error_last(), "passed");
    ggi_task_row *rows = NULL;
    int n = 0;
    CHECK_RC(test_tasks_claim(s, 10, 30.0, &rows, &n), 0);
    CHECK(n == 1 && rows && rows[0].seq == v);
    free_rows(rows, n);
    CHECK_RC(ggi_store_task_end(s, v, GGI_ST_CANCELLED, "cancelled by request", 0, 31.0, -1, 0),
             0);
    int64_t w = add_task(s, "w", 0, 1.0);
    CHECK_RC(ggi_store_task_end(s, w, GGI_ST_ERROR, "executor lost", 0, 32.0, -1, 0), 0);
    add_task(s, "x", 0, 1.0);

    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 1 && c.running == 0 && c.passed == 1 && c.failed == 1 && c.error == 1 &&
          c.cancelled == 1);
    CHECK(c.attempts == 4);

    /* Events. */
    int64_t ne = -1;
    CHECK_RC(ggi_store_events_count(s, &ne), 0);
    CHECK(ne == 3);
    CHECK_RC(ggi_store_event_insert(s, t, "task.finished", "{\"status\":\"passed\"}", 20.0), 0);
    CHECK_RC(ggi_store_event_insert(s, 0, "store.opened", NULL, 20.0), 0);
    CHECK_RC(ggi_store_event_insert(s, u, "task.finished", NULL, 21.0), 0);
    CHECK_RC(ggi_store_event_insert(s, u, NULL, NULL, 21.0), GG_EINVAL);
    CHECK_RC(ggi_store_events_count(s, &ne), 0);
    CHECK(ne == 6);

    /* Rows of earlier versions may hold a stored result (the store no longer writes one;
     * the UPDATEs below stand in for them): one with "history": null reads back with the
     * attempt records spliced in, in order of n; any other reads back as it was written. */
    int64_t h = add_task(s, "h", 0, 1.0);
    CHECK_RC(ggi_store_attempt_add(s, h, 2, NULL, 1, "{\"n\":2,\"x\":[1,\"a\"]}", 41.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, h, 1, NULL, 0, "{\"n\":1}", 40.0, 1), 0);
    CHECK_RC(ggi_store_task_end(s, h, GGI_ST_PASSED, NULL, 0, 42.0, -1, 0), 0);
    CHECK(test_db_exec(path, "UPDATE tasks SET result = '{\"status\":\"passed\","
                             "\"history\":null}' WHERE task_id = 'h'") == 0);
    CHECK_RC(ggi_store_task_get(s, "h", &row), 0);
    CHECK_STR(row.result, "{\"status\":\"passed\",\"history\":[{\"n\":1},{\"n\":2,\"x\":[1,\"a\"]}]}");
    ggi_store_task_row_free(&row);
    CHECK(test_db_int(path, "SELECT json_type(result, '$.history') = 'null' FROM tasks"
                        " WHERE task_id = 'h'") == 1); /* the records are not stored twice */
    int64_t z = add_task(s, "z", 0, 1.0);
    CHECK_RC(ggi_store_task_end(s, z, GGI_ST_ERROR, "none", 0, 43.0, -1, 0), 0);
    CHECK(test_db_exec(path, "UPDATE tasks SET result = '{\"history\":null}'"
                             " WHERE task_id = 'z'") == 0);
    CHECK_RC(ggi_store_task_get(s, "z", &row), 0);
    CHECK_STR(row.result, "{\"history\":[]}");
    ggi_store_task_row_free(&row);
    int64_t y = add_task(s, "y", 0, 1.0);
    CHECK_RC(ggi_store_attempt_add(s, y, 1, NULL, 0, "{\"n\":1}", 40.0, 1), 0);
    CHECK_RC(ggi_store_task_end(s, y, GGI_ST_FAILED, NULL, 0, 44.0, -1, 0), 0);
    CHECK(test_db_exec(path, "UPDATE tasks SET result = '{\"history\":[{\"kept\":1}]}'"
                             " WHERE task_id = 'y'") == 0);
    CHECK_RC(ggi_store_task_get(s, "y", &row), 0);
    CHECK_STR(row.result, "{\"history\":[{\"kept\":1}]}");
    ggi_store_task_row_free(&row);
    int64_t x2 = add_task(s, "x2", 0, 1.0);
    CHECK_RC(ggi_store_task_end(s, x2, GGI_ST_FAILED, NULL, 0, 45.0, -1, 0), 0);
    CHECK(test_db_exec(path, "UPDATE tasks SET result = 'not json, \"history\":null'"
                             " WHERE task_id = 'x2'") == 0);
    CHECK_RC(ggi_store_task_get(s, "x2", &row), 0);
    CHECK_STR(row.result, "not json, \"history\":null");
    ggi_store_task_row_free(&row);

    /* A result not stored is built from the columns and the attempts: the first passing
     * attempt is best; else the latest that ran its tests; tokens summed from each usage. */
    int64_t b = add_task(s, "built", 0, 1.0);
    CHECK_RC(ggi_store_task_get(s, "built", &row), 0);
    CHECK(row.result == NULL); /* not ended: no result */
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_attempt_add(s, b, 1, "a", 0, "{\"n\":1,\"execution\":{},"
                                      "\"usage\":{\"total_tokens\":10}}", 50.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, b, 2, "b", 0, "{\"n\":2,\"usage\":{"
                                      "\"prompt_tokens\":3,\"completion_tokens\":4}}", 51.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, b, 3, "c", 0, "{\"n\":3,\"execution\":{}}", 52.0, 1), 0);
    CHECK_RC(ggi_store_task_end(s, b, GGI_ST_FAILED, "3 attempts", 0, 53.5, -1, 0), 0);
    CHECK_RC(ggi_store_task_get(s, "built", &row), 0);
    cJSON *r = row.result ? cJSON_Parse(row.result) : NULL;
    CHECK(r != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "status")), "failed");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "reason")), "3 attempts");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "attempts")) == 3);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(r, "passed_attempt")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "best_attempt")) == 3);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "code")), "c");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "tokens")) == 17);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r, "history")) == 3);
    cJSON_Delete(r);
    ggi_store_task_row_free(&row);
    int64_t b2 = add_task(s, "built2", 0, 1.0);
    CHECK_RC(ggi_store_attempt_add(s, b2, 1, "x", 0, "{\"n\":1}", 60.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, b2, 2, "y", 1, "{\"n\":2,\"passed\":true}", 61.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, b2, 3, "z", 1, "{\"n\":3,\"passed\":true}", 62.0, 1), 0);
    CHECK_RC(ggi_store_task_end(s, b2, GGI_ST_PASSED, NULL, 0, 63.0, -1, 0), 0);
    CHECK_RC(ggi_store_task_get(s, "built2", &row), 0);
    r = row.result ? cJSON_Parse(row.result) : NULL;
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "passed_attempt")) == 2);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "best_attempt")) == 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(r, "code")), "y");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "tokens")) == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "duration_ms")) == 0); /* never claimed */
    cJSON_Delete(r);
    ggi_store_task_row_free(&row);
    ggi_store_close(&s);
    CHECK(test_db_int(path, "SELECT count(*) FROM events WHERE task_seq IS NULL") == 1);
}

/* ---- transactions ---- */

static void count_failed(void *user, const ggi_attempt_in *a)
{
    int *n = user;
    n[0]++;
    n[1] = (int)a->seq;
}

/* Many attempts at once: 16 to a statement, the rest one by one, the same rows and counts as
 * one at a time; a bad one (its task unknown) fails alone, also inside a full statement. */
static void test_attempts_many(void)
{
    const char *path = tpath(0, "many.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    enum { N = 40 };
    int64_t seqs[N];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        seqs[i] = add_task(s, id, 0, 1.0);
    }
    ggi_attempt_in v[N];
    for (int i = 0; i < N; i++)
        v[i] = (ggi_attempt_in){ .seq = seqs[i], .n = 1, .passed = i % 2, .count = !(i % 2),
                                 .code = i % 3 ? "x = 1" : NULL, .record_json = "{\"n\":1}",
                                 .now = 5.0 };
    v[20].seq = 999999; /* in the second statement's worth */
    int failed[2] = { 0, 0 };
    CHECK_RC(ggi_store_attempts_add(s, v, N, count_failed, failed), GG_EINVAL); /* no txn */
    CHECK_RC(ggi_store_begin(s), 0);
    CHECK_RC(ggi_store_attempts_add(s, v, N, count_failed, failed), 0);
    CHECK_RC(ggi_store_commit(s), 0);
    CHECK(failed[0] == 1 && failed[1] == 999999);
    CHECK(test_db_int(path, "SELECT count(*) FROM attempts") == N - 1);
    CHECK(test_db_int(path, "SELECT n FROM task_counts WHERE status = '#attempts'") == N - 1);
    /* count set the task's attempt count for the failed ones (odd i passed: count 0) */
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks WHERE attempts = 1") == N / 2 - 1);
    CHECK(test_db_int(path, "SELECT count(*) FROM attempts WHERE code IS NULL") == 14);
    CHECK(test_db_int(path, "SELECT count(*) FROM attempts WHERE passed = 1") == N / 2);
    /* Again: every one is there already (each fails alone, as one at a time would). */
    failed[0] = 0;
    v[20].seq = seqs[20];
    CHECK_RC(ggi_store_begin(s), 0);
    CHECK_RC(ggi_store_attempts_add(s, v, 17, count_failed, failed), 0);
    CHECK_RC(ggi_store_commit(s), 0);
    CHECK(failed[0] == 17);
    CHECK(test_db_int(path, "SELECT count(*) FROM attempts") == N - 1);
    CHECK_RC(ggi_store_attempts_add(s, NULL, 0, NULL, NULL), GG_EINVAL);
    ggi_store_close(&s);
}

static void test_transactions(void)
{
    const char *path = tpath(0, "tx.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    int64_t base = add_task(s, "base", 0, 1.0);

    CHECK(ggi_store_in_transaction(s) == 0);
    CHECK_RC(ggi_store_commit(s), GG_ESTATE);
    CHECK_RC(ggi_store_rollback(s), 0);
    CHECK_RC(ggi_store_begin(s), 0);
    CHECK(ggi_store_in_transaction(s) == 1);
    CHECK_RC(ggi_store_begin(s), GG_ESTATE);
    int64_t t1 = add_task(s, "tx1", 2, 2.0);
    add_task(s, "tx2", 1, 2.0);
    ggi_task_row *rows = NULL;
    int n = 0;
    CHECK_RC(test_tasks_claim(s, 2, 3.0, &rows, &n), 0);
    CHECK(n == 2);
    free_rows(rows, n);
    CHECK_RC(ggi_store_attempt_add(s, t1, 1, "c", 0, "{}", 4.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, base, 1, "c", 0, "{}", 4.0, 1), 0);
    CHECK_RC(ggi_store_task_end(s, t1, GGI_ST_PASSED, NULL, 0, 5.0, -1, 0), 0);
    CHECK_RC(ggi_store_event_insert(s, t1, "task.finished", NULL, 5.0), 0);
    CHECK(ggi_store_in_transaction(s) == 1); /* the operations joined it */
    CHECK_RC(ggi_store_rollback(s), 0);
    CHECK(ggi_store_in_transaction(s) == 0);

    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "tx1", &row), GG_ENOTFOUND);
    CHECK_RC(ggi_store_task_get(s, "base", &row), 0);
    CHECK_STR(row.status, GGI_ST_QUEUED);
    CHECK(row.attempts == 0 && row.started_at == 0.0);
    ggi_store_task_row_free(&row);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 1 && c.running == 0 && c.passed == 0 && c.attempts == 0);
    int64_t ne = -1;
    CHECK_RC(ggi_store_events_count(s, &ne), 0);
    CHECK(ne == 0);

    /* A failed statement inside a transaction leaves the transaction usable. */
    CHECK_RC(ggi_store_begin(s), 0);
    CHECK_RC(ggi_store_attempt_add(s, base, 1, "c", 0, "{\"first\":1}", 4.0, 1), 0);
    CHECK_RC(ggi_store_attempt_add(s, base, 1, "c", 0, "{\"second\":1}", 4.0, 1), GG_EEXIST);
    CHECK(ggi_store_in_transaction(s) == 1);
    CHECK_RC(ggi_store_event_insert(s, base, "attempt", NULL, 4.0), 0);
    CHECK_RC(ggi_store_commit(s), 0);
    CHECK(ggi_store_in_transaction(s) == 0);
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.attempts == 1);
    CHECK_RC(ggi_store_events_count(s, &ne), 0);
    CHECK(ne == 1);
    ggi_store_close(&s);

    /* Closing with a transaction open discards it. */
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    CHECK_RC(ggi_store_begin(s), 0);
    add_task(s, "dropped", 0, 1.0);
    ggi_store_close(&s);
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    CHECK_RC(ggi_store_task_get(s, "dropped", &row), GG_ENOTFOUND);
    ggi_store_close(&s);
}

/* ---- two connections ---- */

struct writer_arg {
    ggi_store *s;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy_calls; /* how often the writer found the database locked */
    double give_up;  /* when the busy handler stops retrying (a hang guard) */
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    int64_t seq = 0;
    w->rc = test_task_insert(w->s, "from-b", "{}", "hb", 0, 1.0, &seq, NULL);
    return NULL;
}

/* B's busy handler for the test: tells that B waits for the lock, and retries (as the busy
 * timeout would) until the guard passes. */
static int writer_busy(void *p, int count)
{
    (void)count;
    struct writer_arg *w = p;
    pthread_mutex_lock(&w->mu);
    w->busy_calls++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (ggi_now_ms() > w->give_up)
        return 0;
    usleep(1000);
    return 1;
}

static void test_two_connections(void)
{
    const char *path = tpath(0, "two.db");
    ggi_store *a = NULL, *b = NULL;
    CHECK_RC(ggi_store_open(&a, path), 0);
    CHECK_RC(ggi_store_open(&b, path), 0);
    if (!a || !b) {
        ggi_store_close(&a);
        ggi_store_close(&b);
        return;
    }
    add_task(a, "committed", 0, 1.0);

    /* A writes in a transaction; B reads the last committed state without waiting: with no
     * busy timeout at all, a read that had to wait for the lock would fail at once. */
    CHECK_RC(ggi_store_begin(a), 0);
    add_task(a, "pending", 0, 2.0);
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_set_busy_timeout(b, 0), 0);
    CHECK_RC(ggi_store_task_get(b, "committed", &row), 0);
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(b, "pending", &row), GG_ENOTFOUND);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(b, &c), 0);
    CHECK(c.queued == 1);

    /* B as a writer with a short timeout: GG_EBUSY after waiting that long. */
    CHECK_RC(ggi_store_set_busy_timeout(b, 150), 0);
    CHECK_RC(ggi_store_set_busy_timeout(b, -1), GG_EINVAL);
    double t0 = ggi_now_ms();
    CHECK_RC(test_task_insert(b, "from-b", "{}", "hb", 0, 1.0, NULL, NULL), GG_EBUSY);
    double waited = ggi_now_ms() - t0;
    CHECK(waited >= 100.0); /* a lower bound: slowness only makes the wait longer */
    CHECK_CONTAINS(gg_error_last(), "from-b");
    CHECK_CONTAINS(gg_error_last(), "locked");
    CHECK(ggi_store_in_transaction(b) == 0);
    CHECK_RC(ggi_store_begin(b), GG_EBUSY);
    CHECK(ggi_store_in_transaction(b) == 0);

    /* Waiting for the lock, B goes on once A commits, then succeeds. A commits only once B
     * was seen waiting (its busy handler called). */
    struct writer_arg w;
    memset(&w, 0, sizeof w);
    w.s = b;
    w.rc = -999;
    w.give_up = ggi_now_ms() + TEST_DEADLINE_MS;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    CHECK(sqlite3_busy_handler(ggi_store_sqlite(b), writer_busy, &w) == SQLITE_OK);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, writer_main, &w) == 0);
    pthread_mutex_lock(&w.mu);
    while (w.busy_calls == 0 && ggi_now_ms() < w.give_up) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&w.cv, &w.mu, &ts);
    }
    int waited_for_lock = w.busy_calls > 0;
    pthread_mutex_unlock(&w.mu);
    CHECK(waited_for_lock);
    CHECK_RC(ggi_store_commit(a), 0);
    pthread_join(th, NULL);
    CHECK_RC(w.rc, 0);
    CHECK_RC(ggi_store_set_busy_timeout(b, 5000), 0); /* the store's own handler again */
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    CHECK_RC(ggi_store_task_get(b, "pending", &row), 0);
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(a, "from-b", &row), 0);
    ggi_store_task_row_free(&row);

    /* A claim in one connection is seen by the other: no task is handed out twice. */
    ggi_task_row *ra = NULL, *rb = NULL;
    int na = 0, nb = 0;
    CHECK_RC(test_tasks_claim(a, 2, 5.0, &ra, &na), 0);
    CHECK_RC(test_tasks_claim(b, 5, 5.0, &rb, &nb), 0);
    CHECK(na == 2 && nb == 1);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            CHECK(ra[i].seq != rb[j].seq);
    free_rows(ra, na);
    free_rows(rb, nb);
    ggi_store_close(&a);
    ggi_store_close(&b);
}

/* Several connections create and migrate one new file at the same moment. */
struct opener_arg {
    const char *path;
    int id;
    int rc;
};

static void *opener_main(void *p)
{
    struct opener_arg *o = p;
    ggi_store *s = NULL;
    o->rc = ggi_store_open(&s, o->path);
    if (o->rc == 0) {
        char id[16];
        snprintf(id, sizeof id, "o%d", o->id);
        o->rc = test_task_insert(s, id, "{}", "h", 0, 1.0, NULL, NULL);
    }
    if (o->rc)
        fprintf(stderr, "opener %d: %s\n", o->id, gg_error_last());
    ggi_store_close(&s);
    return NULL;
}

static void test_concurrent_open(void)
{
    const char *path = tpath(0, "race.db");
    enum { N = 4 };
    pthread_t th[N];
    struct opener_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct opener_arg){ path, i, -999 };
        CHECK(pthread_create(&th[i], NULL, opener_main, &args[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_RC(args[i].rc, 0);
    }
    CHECK(test_db_int(path, "PRAGMA user_version") == GGI_STORE_SCHEMA_VERSION);
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks") == N);
}

/* ---- crash safety ---- */

static void child_crash(const char *path, int fd)
{
    ggi_store *s = NULL;
    char big[4096];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    if (ggi_store_open(&s, path) != 0)
        goto fail;
    if (ggi_store_begin(s) != 0)
        goto fail;
    int64_t s1 = 0, s2 = 0;
    if (test_task_insert(s, "c1", "{}", "h", 0, 1.0, &s1, NULL) != 0 ||
        test_task_insert(s, "c2", "{}", "h", 0, 1.0, &s2, NULL) != 0 ||
        ggi_store_attempt_add(s, s1, 1, "code", 0, "{\"a\":1}", 2.0, 1) != 0 ||
        ggi_store_commit(s) != 0)
        goto fail;
    /* A second transaction, large enough to spill pages into the WAL before its commit. */
    if (ggi_store_begin(s) != 0)
        goto fail;
    for (int i = 0; i < 3000; i++) {
        char id[32];
        snprintf(id, sizeof id, "lost%d", i);
        if (test_task_insert(s, id, big, "h", 0, 3.0, NULL, NULL) != 0)
            goto fail;
    }
    if (ggi_store_attempt_add(s, s1, 2, "code", 1, "{\"a\":2}", 3.0, 1) != 0 ||
        ggi_store_task_end(s, s2, GGI_ST_PASSED, NULL, 0, 3.0, -1, 0) != 0 ||
        ggi_store_event_insert(s, s2, "task.finished", NULL, 3.0) != 0)
        goto fail;
    if (write(fd, "k", 1) != 1)
        _exit(3);
    for (;;)
        pause(); /* killed here, transaction open */
fail:
    fprintf(stderr, "child: %s\n", gg_error_last());
    if (write(fd, "f", 1) != 1)
        _exit(3);
    _exit(2);
}

static void test_crash(void)
{
    const char *path = tpath(0, "crash.db");
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid < 0)
        return;
    if (pid == 0) {
        close(fds[0]);
        child_crash(path, fds[1]);
        _exit(4);
    }
    close(fds[1]);
    char ch = 0;
    ssize_t r;
    do {
        r = read(fds[0], &ch, 1);
    } while (r < 0 && errno == EINTR);
    close(fds[0]);
    CHECK(r == 1 && ch == 'k');
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "c1", &row), 0);
    CHECK(row.attempts == 1);
    int64_t c1 = row.seq;
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(s, "c2", &row), 0);
    CHECK_STR(row.status, GGI_ST_QUEUED);
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(s, "lost0", &row), GG_ENOTFOUND);
    CHECK_RC(ggi_store_task_get(s, "lost2999", &row), GG_ENOTFOUND);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 2 && c.passed == 0 && c.attempts == 1);
    int64_t ne = -1;
    CHECK_RC(ggi_store_events_count(s, &ne), 0);
    CHECK(ne == 0);
    /* The file is writable again (no lock left behind by the dead process). */
    CHECK_RC(ggi_store_set_busy_timeout(s, 200), 0);
    CHECK(add_task(s, "after", 0, 4.0) > 0);
    CHECK_RC(ggi_store_attempt_add(s, c1, 2, "code", 1, "{\"a\":2}", 5.0, 1), 0);
    ggi_store_close(&s);
    CHECK(test_db_int(path, "SELECT count(*) FROM pragma_integrity_check "
                        "WHERE integrity_check = 'ok'") == 1);
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks") == 3);
}

/* ---- scale ---- */

/* The claim statement as the scheduler's claim (grid_store.c) prepared it on this
 * connection, or NULL. */
static sqlite3_stmt *find_claim_stmt(sqlite3 *db)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st)) {
        const char *sql = sqlite3_sql(st);
        if (sql && strstr(sql, "SELECT") && strstr(sql, "status = 'queued'") &&
            strstr(sql, "LIMIT"))
            return st;
    }
    return NULL;
}

static void test_claim_scale(void)
{
    const int rows_n = 1000000;
    const char *path = tpath(0, "million.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    double t0 = ggi_now_ms();
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
             "INSERT INTO tasks(task_id, spec_hash, status, priority, created_at) "
             "SELECT printf('m%%07d', i), 'h', 'queued', i %% 7, i FROM c",
             rows_n);
    sqlite3 *db = ggi_store_sqlite(s);
    CHECK(db != NULL);
    /* Ids in key order and a big page cache keep the fill quick; the claim is what counts. */
    CHECK(sqlite3_exec(db, "PRAGMA cache_size = -131072", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "INSERT INTO task_specs(seq, spec) SELECT seq, '{}' FROM tasks;"
                           "INSERT INTO queue(submitter, priority, seq)"
                           " SELECT submitter, -priority, seq FROM tasks",
                       NULL, NULL, NULL) == SQLITE_OK);
    /* Written around the store: the counts are kept by hand too. */
    snprintf(sql, sizeof sql, "UPDATE task_counts SET n = n + %d WHERE status = 'queued'",
             rows_n);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    double fill_ms = ggi_now_ms() - t0;

    ggi_task_row *rows = NULL;
    int n = 0;
    ggi_grid_db *g = NULL; /* kept until its claim statement is looked at */
    CHECK_RC(ggi_grid_db_new(&g, s), 0);
    t0 = ggi_now_ms();
    if (g)
        CHECK_RC(test_tasks_claim_on(g, s, 10, 1.0, &rows, &n), 0);
    double claim_ms = ggi_now_ms() - t0;
    CHECK(n == 10);
    /* priority 6 first: i = 6, 13, 20, ... in insertion order */
    if (n == 10) {
        CHECK(rows[0].priority == 6 && rows[9].priority == 6);
        CHECK_STR(rows[0].task_id, "m0000006");
        CHECK_STR(rows[1].task_id, "m0000013");
        CHECK_STR(rows[9].task_id, "m0000069");
    }
    free_rows(rows, n);

    /* The real statement: no full scan, no sort, a few steps per returned row. */
    sqlite3_stmt *claim = find_claim_stmt(db);
    CHECK(claim != NULL);
    if (claim) {
        int full = sqlite3_stmt_status(claim, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0);
        int sorts = sqlite3_stmt_status(claim, SQLITE_STMTSTATUS_SORT, 0);
        int steps = sqlite3_stmt_status(claim, SQLITE_STMTSTATUS_VM_STEP, 0);
        printf("claim statement: fullscan steps %d, sorts %d, vm steps %d\n", full, sorts,
               steps);
        CHECK(full == 0);
        CHECK(sorts == 0);
        CHECK(steps < 5000);
        char plan_sql[1024];
        snprintf(plan_sql, sizeof plan_sql, "EXPLAIN QUERY PLAN %s", sqlite3_sql(claim));
        sqlite3_stmt *plan = NULL;
        CHECK(sqlite3_prepare_v2(db, plan_sql, -1, &plan, NULL) == SQLITE_OK);
        char detail[512] = "";
        while (plan && sqlite3_step(plan) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(plan, 3);
            size_t used = strlen(detail);
            snprintf(detail + used, sizeof detail - used, "%s; ", d ? d : "");
        }
        sqlite3_finalize(plan);
        printf("claim plan: %s\n", detail);
        CHECK_CONTAINS(detail, "SEARCH queue USING PRIMARY KEY");
        CHECK_CONTAINS(detail, "SEARCH tasks USING INTEGER PRIMARY KEY");
        CHECK(strstr(detail, "TEMP B-TREE") == NULL);
    }
    ggi_grid_db_free(&g);

    /* Recover puts the ten back (reading the tasks not ended: some were running); counts see
     * the million. */
    int rec = 0;
    t0 = ggi_now_ms();
    CHECK_RC(ggi_store_recover(s, &rec), 0);
    double recover_ms = ggi_now_ms() - t0;
    CHECK(rec == 10);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == rows_n);
    printf("%d queued rows: fill %.0f ms, claim 10 in %.2f ms, recover in %.2f ms\n", rows_n,
           fill_ms, claim_ms, recover_ms);
    ggi_store_close(&s);
    remove_db(path);
}

static void test_throughput(void)
{
    const char *path = tpath(0, "throughput.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    int64_t seqs[100];
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "tp%d", i);
        seqs[i] = add_task(s, id, 0, 1.0);
    }
    const char *record = "{\"analysis\":{\"ok\":true},\"exec\":{\"exit_code\":1,\"stdout\":\"...\","
                         "\"stderr\":\"AssertionError: expected 3, got 4\"},\"tests\":[1,0,1]}";
    int failures = 0;
    double t0 = ggi_now_ms();
    for (int batch = 0; batch < 100; batch++) {
        if (ggi_store_begin(s) != 0) {
            failures++;
            continue;
        }
        /* Batch b holds attempt b + 1 of each of the 100 tasks. */
        for (int i = 0; i < 100; i++)
            if (ggi_store_attempt_add(s, seqs[i], batch + 1, "def f(x):\n    return x\n", 0,
                                         record, 2.0, 1) != 0)
                failures++;
        if (ggi_store_commit(s) != 0)
            failures++;
    }
    double ms = ggi_now_ms() - t0;
    CHECK(failures == 0);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.attempts == 10000);
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "tp42", &row), 0);
    CHECK(row.attempts == 100);
    ggi_store_task_row_free(&row);
    printf("10000 attempts in 100 transactions: %.0f ms (%.0f attempts/s)\n", ms,
           ms > 0 ? 10000.0 / (ms / 1000.0) : 0.0);
    ggi_store_close(&s);
}

static void cleanup_dir(void)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlink(tpath(0, e->d_name));
        }
        closedir(d);
    }
    if (rmdir(tmpdir) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* The kept counts follow only what commits: a rolled-back transaction's changes are
 * forgotten, and a begin after SQLite rolled back by itself starts clean. */
static void test_counts_rollback(void)
{
    const char *path = tpath(0, "counts.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    add_task(s, "kept", 0, 1.0);
    CHECK_RC(ggi_store_begin(s), 0);
    add_task(s, "gone", 0, 1.0);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 2); /* the open transaction sees its own */
    CHECK_RC(ggi_store_rollback(s), 0);
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == 1);
    CHECK_RC(ggi_store_begin(s), 0);
    add_task(s, "gone2", 0, 1.0);
    /* SQLite ends the transaction behind the store's back (as after an I/O error). */
    CHECK(sqlite3_exec(ggi_store_sqlite(s), "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    CHECK_RC(ggi_store_begin(s), 0);
    add_task(s, "next", 0, 1.0);
    CHECK_RC(ggi_store_commit(s), 0);
    CHECK(test_db_int(path, "SELECT n FROM task_counts WHERE status = 'queued'") == 2);
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks WHERE status = 'queued'") == 2);
    ggi_store_close(&s);
    remove_db(path);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Checkpoints on their own thread: the writer's commits leave the WAL to it, the database
 * file receives the pages, counts and rows stay right, and closing stops the thread. */
static void test_background_checkpoint(void)
{
    const char *path = tpath(0, "ckpt.db");
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    {
        /* Reads go through a bounded memory map. */
        sqlite3_stmt *st = NULL;
        CHECK(sqlite3_prepare_v2(ggi_store_sqlite(s), "PRAGMA mmap_size", -1, &st, NULL) ==
              SQLITE_OK);
        CHECK(st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 67108864);
        sqlite3_finalize(st);
    }
    CHECK_RC(ggi_store_checkpoint_in_background(NULL), GG_EINVAL);
    CHECK_RC(ggi_store_checkpoint_in_background(s), 0);
    CHECK_RC(ggi_store_checkpoint_in_background(s), 0); /* once is enough */
    long db0 = file_size(path);
    /* About 6,000 pages of tasks (more than one checkpoint's worth), in commits of 100. */
    char spec[2100];
    memset(spec, 'x', sizeof spec - 1);
    spec[sizeof spec - 1] = 0;
    int total = 0;
    for (int b = 0; b < 120; b++) {
        CHECK_RC(ggi_store_begin(s), 0);
        for (int i = 0; i < 100; i++) {
            char id[32];
            snprintf(id, sizeof id, "c%d", total++);
            CHECK_RC(test_task_insert(s, id, spec, "h", 0, 1.0, NULL, NULL), 0);
        }
        CHECK_RC(ggi_store_commit(s), 0);
    }
    double deadline = ggi_now_ms() + TEST_DEADLINE_MS;
    while (file_size(path) < db0 + 4096L * 4096 && ggi_now_ms() < deadline)
        ggi_sleep_ms(10);
    printf("background checkpoint: database %ld -> %ld bytes, WAL %ld bytes\n", db0,
           file_size(path), file_size(wal));
    CHECK(file_size(path) >= db0 + 4096L * 4096);
    ggi_store_counts c;
    CHECK_RC(ggi_store_counts_get(s, &c), 0);
    CHECK(c.queued == total);
    ggi_store_close(&s);
    CHECK(test_db_int(path, "SELECT count(*) FROM tasks") == total);
    remove_db(path);
}


/* Why a task ended is stored (schema 7), and a database of schema 6 migrates: its ended
 * tasks get the cause their reason's wording (as 1.2 wrote it) says, its others none. */
static void test_end_cause(void)
{
    const char *path = tpath(0, "cause.db");
    ggi_store *s = NULL;
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    static const char *const ids[] = { "ok", "spent", "wall", "tries", "gen", "nowk", "lost",
                                       "bad", "fault", "stop", "run", "waiting" };
    int64_t seq[12] = { 0 };
    int existing = 0;
    for (int i = 0; i < 12; i++)
        CHECK_RC(test_task_insert(s, ids[i], "{}", ids[i], 0, 1.0, &seq[i], &existing), 0);
    CHECK_RC(ggi_store_task_end_cause(s, seq[0], GGI_ST_PASSED, GGI_END_PASSED, NULL, 0, 2.0,
                                      1, 0), 0);
    ggi_task_row row = { 0 };
    CHECK_RC(ggi_store_task_get(s, "ok", &row), 0);
    CHECK_STR(row.end_cause, GGI_END_PASSED);
    CHECK(row.result && strstr(row.result, "\"end_cause\":\"passed\""));
    ggi_store_task_row_free(&row);
    CHECK_RC(ggi_store_task_get(s, "waiting", &row), 0);
    CHECK(row.end_cause == NULL); /* not ended */
    ggi_store_task_row_free(&row);
    /* The other ends as 1.2 stored them: the reason only. */
    static const char *const ends[][3] = {
        { "spent", GGI_ST_FAILED, "token budget of 10 spent after 2 attempt(s); last: -" },
        { "wall", GGI_ST_FAILED, "wall budget of 1 s spent after 1 attempt(s); last: -" },
        { "tries", GGI_ST_FAILED, "failed all 3 attempt(s); last: AssertionError" },
        { "gen", GGI_ST_FAILED, "the generator has nothing more after 2 attempt(s); last: x" },
        { "nowk", GGI_ST_ERROR, "no connected worker can run this task (needs gpu)" },
        { "lost", GGI_ST_ERROR, "5 workers died running it (last: w, left)" },
        { "bad", GGI_ST_ERROR, "stored task cannot be read by this version" },
        { "fault", GGI_ST_ERROR, "execute: sandbox setup failed" },
        { "stop", GGI_ST_CANCELLED, "cancelled" },
        { "run", GGI_ST_FAILED, "run token budget of 5 (GRYPHGEN_MAX_TOKENS) spent before its "
                                "first attempt" },
    };
    for (int i = 0; i < 10; i++)
        CHECK_RC(ggi_store_task_end(s, seq[i + 1], ends[i][1], ends[i][2], 0, 2.0, 1, 0), 0);
    ggi_store_close(&s);
    /* Back to schema 6: no end_cause column. */
    CHECK(test_db_exec(path, "ALTER TABLE tasks DROP COLUMN end_cause;"
                             "PRAGMA user_version = 6;") == SQLITE_OK);
    CHECK_RC(ggi_store_open(&s, path), 0);
    if (!s)
        return;
    CHECK(test_db_int(path, "PRAGMA user_version") == GGI_STORE_SCHEMA_VERSION);
    static const char *const want[] = {
        GGI_END_PASSED, GGI_END_BUDGET_TOKENS, GGI_END_DEADLINE, GGI_END_BUDGET_ATTEMPTS,
        GGI_END_FAILED_TESTS, GGI_END_NO_WORKER, GGI_END_WORKERS_LOST, GGI_END_INVALID,
        GGI_END_INFRA, GGI_END_CANCELLED, GGI_END_BUDGET_RUN_TOKENS, NULL,
    };
    for (int i = 0; i < 12; i++) {
        CHECK_RC(ggi_store_task_get(s, ids[i], &row), 0);
        if (want[i]) {
            CHECK(row.end_cause && strcmp(row.end_cause, want[i]) == 0);
            if (!row.end_cause || strcmp(row.end_cause, want[i]) != 0)
                fprintf(stderr, "  task %s: end_cause %s, want %s\n", ids[i],
                        row.end_cause ? row.end_cause : "NULL", want[i]);
        } else {
            CHECK(row.end_cause == NULL);
        }
        ggi_store_task_row_free(&row);
    }
    ggi_store_close(&s);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gg-store-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_open();
    test_refusals();
    test_tasks();
    test_end_cause();
    test_claim();
    test_attempts();
    test_attempts_many();
    test_transactions();
    test_two_connections();
    for (int i = 0; i < 5; i++) {
        test_concurrent_open();
        remove_db(tpath(0, "race.db"));
    }
    test_crash();
    test_claim_scale();
    test_throughput();
    test_background_checkpoint();
    test_counts_rollback();
    cleanup_dir();
    return test_exit();
}
