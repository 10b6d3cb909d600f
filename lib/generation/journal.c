/*
 * journal.c - the SQLite journal of model exchanges (journal.h): the table llm_journal,
 * keyed by the 64-bit hash of the request body, with the body kept to tell collisions apart,
 * and the table llm_arms of the strategy bandit's statistics, one row per arm.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/dbfile.h"
#include "../core/ggi.h"
#include "journal.h"
#include "strategy.h"

#define BUSY_TIMEOUT_MS 5000

struct ggi_journal {
    sqlite3 *db;
};

static int db_error(ggi_journal *j, const char *what)
{
    return ggi_error(GG_ESTORE, "generator journal: %s: %s", what,
                     j->db ? sqlite3_errmsg(j->db) : "no database");
}

void ggi_journal_close(ggi_journal **pj)
{
    if (!pj || !*pj)
        return;
    sqlite3_close_v2((*pj)->db);
    free(*pj);
    *pj = NULL;
}

int ggi_journal_open(const char *path, ggi_journal **out)
{
    *out = NULL;
    ggi_journal *j = calloc(1, sizeof *j);
    if (!j)
        return ggi_error(GG_ENOMEM, "out of memory opening the generator journal");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    /* A new journal is its owner's only, as every database of the library. */
    int rc = ggi_dbfile_create_private(path);
    if (rc) {
        free(j);
        return rc;
    }
    if (sqlite3_open_v2(path, &j->db, flags, NULL) != SQLITE_OK) {
        rc = ggi_error(GG_ESTORE, "generator journal %s: cannot open: %s", path,
                       j->db ? sqlite3_errmsg(j->db) : "out of memory");
    } else {
        sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
        /* WAL is best effort (not every file system has it); the table is not. */
        sqlite3_exec(j->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (sqlite3_exec(j->db,
                         "CREATE TABLE IF NOT EXISTS llm_journal ("
                         " key TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,"
                         " created REAL NOT NULL, PRIMARY KEY (key, request))",
                         NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(j->db,
                         "CREATE TABLE IF NOT EXISTS llm_arms ("
                         " arm TEXT PRIMARY KEY, n REAL NOT NULL, passes REAL NOT NULL,"
                         " cost_sum REAL NOT NULL, cost_n REAL NOT NULL, updated REAL NOT NULL)",
                         NULL, NULL, NULL) != SQLITE_OK)
            rc = db_error(j, path);
    }
    if (rc) {
        ggi_journal_close(&j);
        return rc;
    }
    *out = j;
    return GG_OK;
}

int ggi_journal_get(ggi_journal *j, const char *request, char **out_response)
{
    *out_response = NULL;
    char key[17];
    ggi_hash_hex(request, strlen(request), key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "SELECT response FROM llm_journal WHERE key = ?1 AND request = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(j, "lookup");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, request, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status;
    if (rc == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        *out_response = ggi_strdup(text ? text : "");
        status = *out_response ? GG_OK : ggi_error(GG_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        status = GG_ENOTFOUND;
    } else {
        status = db_error(j, "lookup");
    }
    sqlite3_finalize(st);
    return status;
}

int ggi_journal_put(ggi_journal *j, const char *request, const char *response)
{
    char key[17];
    ggi_hash_hex(request, strlen(request), key);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "INSERT OR REPLACE INTO llm_journal (key, request, response, created)"
                           " VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(j, "record");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, request, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, response, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, ggi_wall_s());
    int rc = sqlite3_step(st) == SQLITE_DONE ? GG_OK : db_error(j, "record");
    sqlite3_finalize(st);
    return rc;
}

int ggi_journal_arm_get(ggi_journal *j, const char *key, ggi_arm_stats *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "SELECT n, passes, cost_sum, cost_n FROM llm_arms WHERE arm = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(j, "arm lookup");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int status = GG_OK;
    if (rc == SQLITE_ROW) {
        out->n = sqlite3_column_double(st, 0);
        out->passes = sqlite3_column_double(st, 1);
        out->cost_sum = sqlite3_column_double(st, 2);
        out->cost_n = sqlite3_column_double(st, 3);
    } else if (rc != SQLITE_DONE) {
        status = db_error(j, "arm lookup");
    }
    sqlite3_finalize(st);
    return status;
}

int ggi_journal_arm_add(ggi_journal *j, const char *key, const ggi_arm_stats *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db,
                           "INSERT INTO llm_arms (arm, n, passes, cost_sum, cost_n, updated)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (arm) DO UPDATE SET"
                           " n = n + excluded.n, passes = passes + excluded.passes,"
                           " cost_sum = cost_sum + excluded.cost_sum,"
                           " cost_n = cost_n + excluded.cost_n, updated = excluded.updated",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(j, "arm update");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, d->n);
    sqlite3_bind_double(st, 3, d->passes);
    sqlite3_bind_double(st, 4, d->cost_sum);
    sqlite3_bind_double(st, 5, d->cost_n);
    sqlite3_bind_double(st, 6, ggi_wall_s());
    int rc = sqlite3_step(st) == SQLITE_DONE ? GG_OK : db_error(j, "arm update");
    sqlite3_finalize(st);
    return rc;
}
