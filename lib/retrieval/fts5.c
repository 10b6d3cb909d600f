/*
 * fts5.c - the "fts5" retriever backend (fts5.h), its schema and its connections: the tables
 * (created IF NOT EXISTS under their own version key, beside whatever else the database
 * holds, and migrated from version 1), the SQL of every prepared statement, a
 * mutex-protected pool of connections with their statements and scratch space, open and
 * close, and the retriever vtable. Cut here because this is what every other part of the
 * backend stands on; search and ranking are in fts5_search.c, learning from feedback in
 * fts5_learn.c, adding and pruning documents in fts5_index.c (fts5_internal.h lists what
 * they share).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/ggi.h"
#include "../core/dbfile.h"
#include "fts5_internal.h"

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS rag_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rag_documents("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"      /* the source, or solution:<hash> */
    "  source TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  lang TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  updated_at REAL);"
    /* Small columns first and text last, so ranking reads no overflow pages. */
    "CREATE TABLE IF NOT EXISTS rag_chunks("
    "  id INTEGER PRIMARY KEY,"
    "  doc_id INTEGER NOT NULL REFERENCES rag_documents(id),"
    "  successes INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  lang TEXT NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  line_start INTEGER NOT NULL,"
    "  line_end INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  created_at REAL,"
    "  title TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rag_chunks_doc ON rag_chunks(doc_id);"
    "CREATE INDEX IF NOT EXISTS rag_chunks_hash ON rag_chunks(hash);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS rag_fts USING fts5(text, title, source, lang,"
    "  content='rag_chunks', content_rowid='id');"
    "CREATE TRIGGER IF NOT EXISTS rag_chunks_ai AFTER INSERT ON rag_chunks BEGIN"
    "  INSERT INTO rag_fts(rowid, text, title, source, lang)"
    "    VALUES (new.id, new.text, new.title, new.source, new.lang);"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS rag_chunks_ad AFTER DELETE ON rag_chunks BEGIN"
    "  INSERT INTO rag_fts(rag_fts, rowid, text, title, source, lang)"
    "    VALUES ('delete', old.id, old.text, old.title, old.source, old.lang);"
    "END;"
    /* Only indexed columns: feedback updates the counts without touching the index. */
    "CREATE TRIGGER IF NOT EXISTS rag_chunks_au AFTER UPDATE OF text, title, source, lang"
    "  ON rag_chunks BEGIN"
    "  INSERT INTO rag_fts(rag_fts, rowid, text, title, source, lang)"
    "    VALUES ('delete', old.id, old.text, old.title, old.source, old.lang);"
    "  INSERT INTO rag_fts(rowid, text, title, source, lang)"
    "    VALUES (new.id, new.text, new.title, new.source, new.lang);"
    "END;"
    /* Version 2: usefulness per kind of task, and which task each solution solved. */
    "CREATE TABLE IF NOT EXISTS rag_usefulness("
    "  chunk_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  successes REAL NOT NULL DEFAULT 0,"
    "  failures REAL NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(chunk_id, kind)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rag_solutions("
    "  doc_id INTEGER PRIMARY KEY,"
    "  task_id TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL,"
    "  added_at REAL);"
    "CREATE INDEX IF NOT EXISTS rag_solutions_kind ON rag_solutions(kind, added_at);"
    "CREATE TRIGGER IF NOT EXISTS rag_chunks_ad_use AFTER DELETE ON rag_chunks BEGIN"
    "  DELETE FROM rag_usefulness WHERE chunk_id = old.id;"
    "END;"
    "CREATE TRIGGER IF NOT EXISTS rag_documents_ad AFTER DELETE ON rag_documents BEGIN"
    "  DELETE FROM rag_solutions WHERE doc_id = old.id;"
    "END;"
    "INSERT OR IGNORE INTO rag_meta(key, value) VALUES ('schema_version', '2');"
    /* Version 1 had neither table: the statements above added them. */
    "UPDATE rag_meta SET value = '2' WHERE key = 'schema_version' AND value = '1';";

static const char *const stmt_sql[S_COUNT_] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_CANDIDATES] = "SELECT rowid FROM rag_fts WHERE rag_fts MATCH ?1 AND gg_rank(rag_fts, ?2)",
    [S_CHUNK_META] = "SELECT c.successes, c.failures, c.lang, c.kind = 'solution', s.kind"
                     " FROM rag_chunks c LEFT JOIN rag_solutions s ON s.doc_id = c.doc_id"
                     " WHERE c.id = ?1",
    [S_CHUNK_GET] = "SELECT source, line_start, line_end, title, kind, hash, text"
                    " FROM rag_chunks WHERE id = ?1",
    [S_DOC_FIND] = "SELECT id, hash FROM rag_documents WHERE key = ?1",
    [S_DOC_INSERT] = "INSERT INTO rag_documents(key, source, kind, lang, hash, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_DOC_UPDATE] = "UPDATE rag_documents SET hash = ?2, kind = ?3, lang = ?4,"
                     " updated_at = ?5 WHERE id = ?1",
    [S_DOC_CHUNKS] = "SELECT id, hash FROM rag_chunks WHERE doc_id = ?1 ORDER BY id",
    [S_CHUNK_INSERT] = "INSERT INTO rag_chunks(doc_id, lang, hash, line_start, line_end, kind,"
                       " created_at, title, source, text)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_CHUNK_DELETE] = "DELETE FROM rag_chunks WHERE id = ?1",
    [S_CHUNK_LINES] = "UPDATE rag_chunks SET line_start = ?2, line_end = ?3 WHERE id = ?1",
    [S_HASH_FIND] = "SELECT id FROM rag_chunks WHERE hash = ?1 LIMIT 1",
    /* Documents whose source is ?1 or lies below it (?2 = ?1 "/", ?3 = ?1 "0"); never
     * solutions. The range uses the unique index on key. */
    [S_DOCS_UNDER] = "SELECT id, key FROM rag_documents WHERE kind != 'solution' AND"
                     " (key = ?1 OR (key >= ?2 AND key < ?3)) ORDER BY key",
    [S_DOC_CHUNKS_DELETE] = "DELETE FROM rag_chunks WHERE doc_id = ?1",
    [S_DOC_DELETE] = "DELETE FROM rag_documents WHERE id = ?1",
    [S_KIND_META] = "SELECT successes, failures FROM rag_usefulness"
                    " WHERE chunk_id = ?1 AND kind = ?2",
    [S_KIND_CREDIT] = "INSERT INTO rag_usefulness(chunk_id, kind, successes, failures)"
                      " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM rag_chunks WHERE id = ?1)"
                      " ON CONFLICT(chunk_id, kind) DO UPDATE SET"
                      " successes = successes + excluded.successes,"
                      " failures = failures + excluded.failures",
    [S_CREDIT_W] = "UPDATE rag_chunks SET successes = successes + ?2, failures = failures + ?3"
                   " WHERE id = ?1",
    [S_SOL_FIND] = "SELECT doc_id FROM rag_solutions WHERE task_id = ?1",
    [S_SOL_INSERT] = "INSERT OR REPLACE INTO rag_solutions(doc_id, task_id, kind, added_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    /* The solutions of a kind beyond its newest ?2. */
    [S_SOL_OVER] = "SELECT s.doc_id FROM rag_solutions s WHERE s.kind = ?1 AND s.doc_id NOT IN"
                   " (SELECT doc_id FROM rag_solutions WHERE kind = ?1"
                   "  ORDER BY added_at DESC, doc_id DESC LIMIT ?2)",
    [S_SOL_COUNT] = "SELECT count(*), min(doc_id) FROM rag_solutions",
};

/* ---- connections ---- */

int ggi_fts5_fail_db(sqlite3 *db, const char *what)
{
    int code = sqlite3_extended_errcode(db) & 0xff;
    int status = code == SQLITE_BUSY || code == SQLITE_LOCKED ? GG_EBUSY
                 : code == SQLITE_NOMEM                       ? GG_ENOMEM
                                                              : GG_ESTORE;
    return ggi_error(status, "fts5 retriever: %s: %s", what, sqlite3_errmsg(db));
}

static void conn_close(conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < S_COUNT_; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    free(c->rp.heap);
    free(c->rp.top);
    free(c->cands);
    free(c);
}

static int conn_open(const char *path, conn **out)
{
    *out = NULL;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return ggi_error(GG_ENOMEM, "out of memory");
    /* A new index is its owner's only, as every database of the library. */
    int rc = ggi_dbfile_create_private(path);
    if (rc) {
        free(c);
        return rc;
    }
    rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        int st = c->db ? ggi_fts5_fail_db(c->db, "opening the database")
                       : ggi_error(GG_ENOMEM, "out of memory");
        ggi_error_wrap("%s: ", path);
        conn_close(c);
        return st;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(c->db, GGI_FTS5_PRAGMAS, NULL, NULL, NULL) != SQLITE_OK) {
        int st = ggi_fts5_fail_db(c->db, "configuring the connection");
        conn_close(c);
        return st;
    }
    int st = ggi_fts5_register_rank(c->db);
    if (st) {
        conn_close(c);
        return st;
    }
    *out = c;
    return GG_OK;
}

/* Lends the statement id of c, prepared on first use. */
int ggi_fts5_stmt(conn *c, enum stmt_id id, sqlite3_stmt **out)
{
    if (!c->st[id] && sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                         &c->st[id], NULL) != SQLITE_OK) {
        *out = NULL;
        return ggi_fts5_fail_db(c->db, "preparing a statement");
    }
    *out = c->st[id];
    return GG_OK;
}

int ggi_fts5_conn_get(ggi_fts5 *x, conn **out)
{
    pthread_mutex_lock(&x->mu);
    conn *c = x->idle;
    if (c) {
        x->idle = c->next;
        x->n_idle--;
    }
    pthread_mutex_unlock(&x->mu);
    if (c) {
        c->next = NULL;
        *out = c;
        return GG_OK;
    }
    return conn_open(x->path, out);
}

void ggi_fts5_conn_put(ggi_fts5 *x, conn *c)
{
    if (!c)
        return;
    if (!sqlite3_get_autocommit(c->db)) /* a failed write left a transaction open */
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&x->mu);
    if (x->n_idle < POOL_IDLE_MAX) {
        c->next = x->idle;
        x->idle = c;
        x->n_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&x->mu);
    conn_close(c);
}

int ggi_fts5_exec_simple(conn *c, enum stmt_id id)
{
    sqlite3_stmt *s;
    int rc = ggi_fts5_stmt(c, id, &s);
    if (rc)
        return rc;
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? GG_OK : ggi_fts5_fail_db(c->db, stmt_sql[id]);
}

static int create_schema(conn *c)
{
    char *err = NULL;
    int rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return ggi_fts5_fail_db(c->db, "switching to WAL");
    if ((rc = ggi_fts5_exec_simple(c, S_BEGIN)))
        return rc;
    if (sqlite3_exec(c->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        int st = ggi_error(GG_ESTORE, "fts5 retriever: creating the tables: %s%s",
                           err ? err : sqlite3_errmsg(c->db),
                           err && strstr(err, "fts5") ? " (this SQLite lacks FTS5)" : "");
        sqlite3_free(err);
        ggi_fts5_exec_simple(c, S_ROLLBACK);
        return st;
    }
    sqlite3_stmt *s = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT value FROM rag_meta WHERE key = 'schema_version'",
                           -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = atoi((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    if (version != GGI_FTS5_SCHEMA_VERSION) {
        ggi_fts5_exec_simple(c, S_ROLLBACK);
        return ggi_error(GG_EVERSION,
                         "fts5 retriever: the retrieval tables have schema version %d; this "
                         "library knows %d",
                         version, GGI_FTS5_SCHEMA_VERSION);
    }
    return ggi_fts5_exec_simple(c, S_COMMIT);
}

/* ---- open and close ---- */

int ggi_fts5_open(const ggi_fts5_config *cfg, ggi_fts5 **out)
{
    *out = NULL;
    if (!cfg || !cfg->db_path || !*cfg->db_path)
        return ggi_error(GG_EINVAL, "fts5 retriever: no database path (option db_path)");
    if (!(cfg->weight >= 0 && cfg->weight <= 1e6))
        return ggi_error(GG_EINVAL,
                         "fts5 retriever: usefulness_weight must be from 0 to 1e6");
    if (!(cfg->exploration >= 0 && cfg->exploration <= 1))
        return ggi_error(GG_EINVAL, "fts5 retriever: exploration must be from 0 to 1");
    ggi_fts5 *x = calloc(1, sizeof *x);
    if (!x)
        return ggi_error(GG_ENOMEM, "out of memory");
    if (!(x->path = ggi_strdup(cfg->db_path))) {
        free(x);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&x->mu, NULL);
    x->weight = cfg->weight;
    x->exploration = cfg->exploration;
    x->max_chars = cfg->max_chars;
    x->max_chunk = cfg->max_chunk ? cfg->max_chunk : 4000;
    x->rng = cfg->seed ? cfg->seed : (uint64_t)(ggi_wall_s() * 1e6) ^ (uint64_t)(uintptr_t)x;
    conn *c = NULL;
    int rc = conn_open(x->path, &c);
    if (!rc)
        rc = create_schema(c);
    if (rc) {
        conn_close(c);
        ggi_fts5_close(&x);
        return rc;
    }
    ggi_fts5_conn_put(x, c);
    *out = x;
    return GG_OK;
}

void ggi_fts5_close(ggi_fts5 **px)
{
    if (!px || !*px)
        return;
    ggi_fts5 *x = *px;
    *px = NULL;
    while (x->idle) {
        conn *c = x->idle;
        x->idle = c->next;
        conn_close(c);
    }
    pthread_mutex_destroy(&x->mu);
    free(x->path);
    free(x);
}

/* ---- the backend ---- */

static int v_search(void *self, const char *q, char **out)
{
    return ggi_fts5_search(self, q, out);
}

static int v_feedback(void *self, const char *fb)
{
    return ggi_fts5_feedback(self, fb);
}

static int v_add(void *self, const char *doc, char **out)
{
    return ggi_fts5_add(self, doc, out);
}

static void v_destroy(void *self)
{
    ggi_fts5 *x = self;
    ggi_fts5_close(&x);
}

int ggi_fts5_retriever_new(const gg_retriever_options *o, gg_retriever_vtable *vt, void **self)
{
    ggi_fts5_config cfg = { o->db_path, o->usefulness_weight, o->exploration, o->seed,
                            o->max_chars, 0 };
    ggi_fts5 *x = NULL;
    int rc = ggi_fts5_open(&cfg, &x);
    if (rc)
        return rc;
    vt->search = v_search;
    vt->feedback = v_feedback;
    vt->add = v_add;
    vt->destroy = v_destroy;
    vt->name = "fts5";
    *self = x;
    return GG_OK;
}
