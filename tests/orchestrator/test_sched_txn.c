/*
 * test_sched_txn.c - the scheduler's own transaction (ggi_sched_txn, for the writes that need
 * an answer at once: submissions, hellos) rolled back by SQLite in the middle of a message.
 * A trigger the test adds to the database raises ROLLBACK when a task named "boom" is
 * inserted, as SQLite itself rolls back after a full disk or an I/O error: a batch
 * submission [a, boom, c] then loses a's insert with the transaction. The scheduler must not
 * carry on in a fresh transaction and tell the client a was accepted: every id a client was
 * told of is in the database, and the lost transaction stops the scheduler saying why (as a
 * failed commit does), with nothing of it acknowledged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sqlite3.h>

#include <gryphgen.h>

#include "testutil.h"

#define TASK(id)                                                                             \
    "{\"task_id\":\"" id "\",\"language\":\"python\",\"stub\":\"def f():\\n\","             \
    "\"entry_point\":\"f\",\"test\":\"def check(f):\\n    assert f() == 1\\n\"}"

static gg_orchestrator_t *open_orq(const char *db)
{
    gg_orchestrator_options opts;
    gg_orchestrator_options_init(&opts, GG_ORCHESTRATOR_OPTIONS_VERSION);
    opts.workers = 0; /* nothing runs: the tasks stay queued */
    opts.db_path = db;
    gg_orchestrator_t *o = NULL;
    CHECK_RC(gg_orchestrator_new(&o, &opts), GG_OK);
    return o;
}

/* Whether the database holds the task (read on a connection of the test's own). */
static int stored(const char *db, const char *task_id)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM tasks WHERE task_id = ?", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

static void test_lost_transaction(const char *dir)
{
    char db[512];
    snprintf(db, sizeof db, "%s/txn.db", dir);
    gg_orchestrator_t *o = open_orq(db); /* makes the schema */
    gg_orchestrator_destroy(&o);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(db, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "CREATE TRIGGER boom BEFORE INSERT ON tasks "
                          "WHEN NEW.task_id = 'boom' "
                          "BEGIN SELECT RAISE(ROLLBACK, 'injected rollback'); END;",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);

    o = open_orq(db);
    gg_client_t *c = NULL;
    if (o)
        CHECK_RC(gg_orchestrator_connect(o, "txn", &c), GG_OK);
    char *out = NULL;
    int rc = c ? gg_client_submit_batch(c, "[" TASK("a") "," TASK("boom") "," TASK("c") "]",
                                        &out)
               : GG_EINVAL;
    cJSON *r = out ? cJSON_Parse(out) : NULL;
    const cJSON *ids = cJSON_GetObjectItem(r, "ids");
    int told = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        const char *s = cJSON_GetStringValue(id);
        if (!s)
            continue;
        told++;
        if (stored(db, s) != 1)
            fprintf(stderr, "task '%s' was reported accepted and is not in the database\n", s);
        CHECK(stored(db, s) == 1);
    }
    /* 'boom' itself never is. */
    CHECK(stored(db, "boom") == 0);
    if (rc == GG_OK) {
        /* Only what is durable was acknowledged: nothing before 'boom' (lost with it). */
        CHECK(stored(db, "a") == 0 && told <= 1);
    } else {
        /* The lost transaction stopped the scheduler: said by drain, nothing acknowledged. */
        CHECK(told == 0);
        CHECK_RC(gg_orchestrator_drain(o, 0), GG_ESTORE);
        CHECK_CONTAINS(gg_error_last(), "rolled back");
        CHECK_CONTAINS(gg_error_last(), "injected rollback");
    }
    cJSON_Delete(r);
    gg_free(out);
    gg_client_destroy(&c);
    gg_orchestrator_destroy(&o);
    CHECK(stored(db, "a") == 0 && stored(db, "c") == 0); /* nothing half-written either */
}

int main(void)
{
    char dir[] = "/tmp/gg_sched_txn_XXXXXX";
    CHECK(test_make_dir(dir));
    if (!dir[0] || strstr(dir, "XXXXXX"))
        return test_exit();
    test_lost_transaction(dir);
    test_remove_dir(dir);
    return test_exit();
}
