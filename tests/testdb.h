/*
 * testdb.h - reading and writing a test's SQLite database around the library, through a
 * connection of the test's own (what a user with the sqlite3 shell would see).
 */
#ifndef GG_TESTDB_H
#define GG_TESTDB_H

#include <sqlite3.h>

/* Runs one query on a new read-only connection to path; its first column as an integer, or
 * -12345 when the query failed or gave no row. */
static inline long long test_db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -12345;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Runs SQL on a new connection to path (created when missing); SQLite's result code. */
static inline int test_db_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

#endif
