/*
 * fts5.c - the "fts5" retriever backend (fts5.h): its tables (created IF NOT EXISTS under
 * their own version key, beside whatever else the database holds), a mutex-protected pool of
 * connections with their prepared statements and scratch space, search (BM25 candidates
 * re-ranked with the learned usefulness of each chunk, with Thompson-sampling exploration),
 * feedback (success and failure counts), adding documents (chunked, deduplicated by content
 * hash, re-indexed incrementally) and removing the documents of sources that are gone.
 *
 * Candidates of one query come from one pass over the FTS5 matches with our own auxiliary
 * function gg_rank() (below), which screens rows by BM25 computed as if every chunk had the
 * average length (no per-row length lookup: that lookup is what makes FTS5's own bm25() slow
 * on common words) and reads the length, for the exact bm25() value, only of rows that enter
 * the screen and whose best possible score could still enter the pool. The candidates are
 * the best `pool` rows by exact bm25(). Then:
 *   rel(c)   = -bm25(c) / max over the pool of -bm25          (in (0, 1]; FTS5's bm25 is
 *                                                             negative, lower is better)
 *   g(c)     = (s+1)/(s+f+2)                                 (s, f: weighted successes and
 *                                                             failures over every kind)
 *   use(c)   = mean of Beta(ks + 2 g, kf + 2 (1 - g))          (ks, kf: for the query's kind;
 *              or, in a share `exploration` of queries,        the back-off to g)
 *              a draw from it
 *   score(c) = rel(c) * (2 use(c))^weight
 * With weight 0 the order is the BM25 order of the candidates (docs/retrieval.md).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "../core/dbfile.h"
#include "../core/ggi.h"
#include "chunker.h"
#include "credit.h"
#include "fts5.h"

#define BUSY_TIMEOUT_MS 5000
#define POOL_IDLE_MAX 8
#define MAX_QUERY_BYTES (1u << 20)
#define MAX_DOC_BYTES (8u << 20)
#define MAX_SOURCE_BYTES 4096
#define MAX_K 100
#define DEFAULT_K 5
#define MAX_TERMS 24
#define MAX_FEEDBACK_IDS 10000
#define MAX_KEEP 1000000 /* sources one prune may keep */
#define POOL_MIN GGI_FTS5_POOL_MIN
#define POOL_PER_K GGI_FTS5_POOL_PER_K
#define POOL_MAX GGI_FTS5_POOL_MAX
#define SCREEN_PER_POOL GGI_FTS5_SCREEN_PER_POOL
#define KIND_PRIOR GGI_FTS5_KIND_PRIOR
#define BM25_K1 1.2
#define BM25_B 0.75

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

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_CANDIDATES,
    S_CHUNK_META,
    S_CHUNK_GET,
    S_DOC_FIND,
    S_DOC_INSERT,
    S_DOC_UPDATE,
    S_DOC_CHUNKS,
    S_CHUNK_INSERT,
    S_CHUNK_DELETE,
    S_CHUNK_LINES,
    S_HASH_FIND,
    S_DOCS_UNDER,
    S_DOC_CHUNKS_DELETE,
    S_DOC_DELETE,
    S_KIND_META,
    S_KIND_CREDIT,
    S_CREDIT_W,
    S_SOL_FIND,
    S_SOL_INSERT,
    S_SOL_OVER,
    S_SOL_COUNT,
    S_COUNT_
};

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

/* ---- search scratch (the FTS5 extension interface is declared in sqlite3.h) ---- */

/* Column weights of GGI_FTS5_BM25, in column order (text, title, source, lang). */
static const double col_weight[] = { 1.0, 2.0, 0.5, 0.0 };

/* One row kept by gg_rank(): its id, its average-length score and its BM25 score
 * (-bm25()). */
typedef struct screened {
    sqlite3_int64 id;
    double approx, score;
} screened;

/* State of one gg_rank() pass, owned by the connection and bound to the query as a pointer. */
typedef struct rank_pass {
    int ready, failed, n_phrase;
    double idf[MAX_TERMS];
    double avgdl;
    screened *heap;  /* the screen: min-heap on approx, n of cap (allocated: heap_alloc) */
    int n, cap, heap_alloc;
    screened *top;   /* the best rows by score: min-heap on score, top_n of top_cap */
    int top_n, top_cap, top_alloc; /* top_cap 0: every screened row is scored in heap */
} rank_pass;

typedef struct cand {
    sqlite3_int64 id;
    double bm25, rel, use, score;
    double s, f;   /* learned counts, over every kind of task (weighted: may be fractional) */
    double ks, kf; /* the same for the query's kind */
    int rank;
    int foreign;   /* a solution of another kind of task than the query's */
    int demoted;   /* named by the query's "demote": goes last */
} cand;

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT_];
    struct conn *next;
    rank_pass rp;     /* scratch of searches, reused */
    cand *cands;
    int cap_cands;
} conn;

struct ggi_fts5 {
    char *path;
    double weight, exploration;
    size_t max_chars, max_chunk;
    pthread_mutex_t mu;   /* guards idle, n_idle and rng */
    conn *idle;
    int n_idle;
    uint64_t rng;
};

/* ---- connections ---- */

static int fail_db(sqlite3 *db, const char *what)
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

/* ---- gg_rank(): the candidate screen ---- */

static int count_cb(const Fts5ExtensionApi *api, Fts5Context *fts, void *user)
{
    (void)api;
    (void)fts;
    (*(sqlite3_int64 *)user)++;
    return SQLITE_OK;
}

/* Per query: FTS5's bm25() IDF of each phrase and the average row length in tokens. */
static int rank_prepare(const Fts5ExtensionApi *api, Fts5Context *fts, rank_pass *p)
{
    sqlite3_int64 rows = 0, tokens = 0;
    int rc = api->xRowCount(fts, &rows);
    if (rc == SQLITE_OK)
        rc = api->xColumnTotalSize(fts, -1, &tokens);
    int n = api->xPhraseCount(fts);
    if (n > MAX_TERMS)
        n = MAX_TERMS; /* the match expression never has more */
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_int64 hits = 0;
        rc = api->xQueryPhrase(fts, i, &hits, count_cb);
        double idf = log(((double)rows - (double)hits + 0.5) / ((double)hits + 0.5));
        p->idf[i] = idf > 0 ? idf : 1e-6;
    }
    p->n_phrase = n;
    p->avgdl = rows > 0 && tokens > 0 ? (double)tokens / (double)rows : 1.0;
    p->ready = 1;
    return rc;
}

/* Min-heaps of screened rows, on approx (by_score 0) or on score (1). */
static double key(const screened *e, int by_score)
{
    return by_score ? e->score : e->approx;
}

static void heap_down(screened *h, int n, int i, int by_score)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key(&h[l], by_score) < key(&h[m], by_score))
            m = l;
        if (r < n && key(&h[r], by_score) < key(&h[m], by_score))
            m = r;
        if (m == i)
            return;
        screened t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(screened *h, int i, int by_score)
{
    while (i > 0) {
        int up = (i - 1) / 2;
        if (key(&h[up], by_score) <= key(&h[i], by_score))
            return;
        screened t = h[i];
        h[i] = h[up];
        h[up] = t;
        i = up;
    }
}

/* Adds e to the min-heap h of *n rows (at most cap), replacing its least row when full. */
static void heap_offer(screened *h, int *n, int cap, screened e, int by_score)
{
    if (*n < cap) {
        h[*n] = e;
        heap_up(h, (*n)++, by_score);
    } else if (key(&e, by_score) > key(&h[0], by_score)) {
        h[0] = e;
        heap_down(h, *n, 0, by_score);
    }
}

/*
 * gg_rank(rag_fts, pass): called for every matching row. Scores the row with bm25() (k1 =
 * 1.2, b = 0.75, FTS5's IDF and our column weights) as if it had the average length, which
 * needs no lookup; a row that does not beat the weakest of the screen is dropped. Otherwise
 * its real length is read (one lookup: the costly part of FTS5's bm25()) and its exact score
 * computed, unless the pass keeps a top set (top_cap > 0) and even the row's best possible
 * score (its length no shorter than its last hit in each column allows) cannot enter it.
 * Returns NULL; the pass's heaps are the result.
 */
static void gg_rank(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                    int n_val, sqlite3_value **val)
{
    rank_pass *p = n_val == 1 ? sqlite3_value_pointer(val[0], "gg_rank_pass") : NULL;
    if (!p || p->failed)
        return;
    int rc = p->ready ? SQLITE_OK : rank_prepare(api, fts, p);
    double freq[MAX_TERMS] = { 0 };
    int n_inst = 0, end[4] = { 0, 0, 0, 0 }; /* per column, past the last hit */
    if (rc == SQLITE_OK)
        rc = api->xInstCount(fts, &n_inst);
    for (int i = 0; i < n_inst && rc == SQLITE_OK; i++) {
        int ph = 0, col = 0, off = 0;
        rc = api->xInst(fts, i, &ph, &col, &off);
        if (rc == SQLITE_OK && ph >= 0 && ph < p->n_phrase && col >= 0 && col < 4) {
            freq[ph] += col_weight[col];
            if (off >= end[col])
                end[col] = off + 1;
        }
    }
    if (rc != SQLITE_OK) {
        p->failed = 1;
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double approx = 0;
    for (int i = 0; i < p->n_phrase; i++)
        approx += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + BM25_K1));
    if (p->n == p->cap && approx <= p->heap[0].approx)
        return;
    screened e = { api->xRowid(fts), approx, 0 };
    if (p->top_cap && p->top_n == p->top_cap) {
        int least = end[0] + end[1] + end[2] + end[3];
        double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)least / p->avgdl), bound = 0;
        for (int i = 0; i < p->n_phrase; i++)
            bound += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + norm));
        if (bound <= p->top[0].score) {
            heap_offer(p->heap, &p->n, p->cap, e, 0);
            return;
        }
    }
    int tokens = 0;
    if ((rc = api->xColumnSize(fts, -1, &tokens)) != SQLITE_OK) {
        p->failed = 1;
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)tokens / p->avgdl);
    for (int i = 0; i < p->n_phrase; i++)
        e.score += p->idf[i] * ((freq[i] * (BM25_K1 + 1.0)) / (freq[i] + norm));
    heap_offer(p->heap, &p->n, p->cap, e, 0);
    if (p->top_cap)
        heap_offer(p->top, &p->top_n, p->top_cap, e, 1);
}

static int register_rank(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(s);
    }
    sqlite3_finalize(s);
    if (!api || api->iVersion < 2)
        return ggi_error(GG_EUNSUPPORTED, "fts5 retriever: this SQLite lacks FTS5");
    if (api->xCreateFunction(api, "gg_rank", NULL, gg_rank, NULL) != SQLITE_OK)
        return fail_db(db, "registering gg_rank()");
    return GG_OK;
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
        int st = c->db ? fail_db(c->db, "opening the database")
                       : ggi_error(GG_ENOMEM, "out of memory");
        ggi_error_wrap("%s: ", path);
        conn_close(c);
        return st;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(c->db, GGI_FTS5_PRAGMAS, NULL, NULL, NULL) != SQLITE_OK) {
        int st = fail_db(c->db, "configuring the connection");
        conn_close(c);
        return st;
    }
    int st = register_rank(c->db);
    if (st) {
        conn_close(c);
        return st;
    }
    *out = c;
    return GG_OK;
}

/* Lends the statement id of c, prepared on first use. */
static int stmt(conn *c, enum stmt_id id, sqlite3_stmt **out)
{
    if (!c->st[id] && sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                         &c->st[id], NULL) != SQLITE_OK) {
        *out = NULL;
        return fail_db(c->db, "preparing a statement");
    }
    *out = c->st[id];
    return GG_OK;
}

static int conn_get(ggi_fts5 *x, conn **out)
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

static void conn_put(ggi_fts5 *x, conn *c)
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

static int exec_simple(conn *c, enum stmt_id id)
{
    sqlite3_stmt *s;
    int rc = stmt(c, id, &s);
    if (rc)
        return rc;
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? GG_OK : fail_db(c->db, stmt_sql[id]);
}

static int create_schema(conn *c)
{
    char *err = NULL;
    int rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail_db(c->db, "switching to WAL");
    if ((rc = exec_simple(c, S_BEGIN)))
        return rc;
    if (sqlite3_exec(c->db, schema_sql, NULL, NULL, &err) != SQLITE_OK) {
        int st = ggi_error(GG_ESTORE, "fts5 retriever: creating the tables: %s%s",
                           err ? err : sqlite3_errmsg(c->db),
                           err && strstr(err, "fts5") ? " (this SQLite lacks FTS5)" : "");
        sqlite3_free(err);
        exec_simple(c, S_ROLLBACK);
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
        exec_simple(c, S_ROLLBACK);
        return ggi_error(GG_EVERSION,
                         "fts5 retriever: the retrieval tables have schema version %d; this "
                         "library knows %d",
                         version, GGI_FTS5_SCHEMA_VERSION);
    }
    return exec_simple(c, S_COMMIT);
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
    conn_put(x, c);
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

/* ---- search ---- */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

int ggi_fts5_stop_word(const char *w, size_t n)
{
    static const char *const words[] = {
        "the", "and", "for", "that", "this", "with", "from", "are", "was", "were", "will",
        "its", "into", "not", "but", "all", "any", "can", "has", "have", "had", "you", "your",
        "our", "their", "they", "them", "than", "then", "there", "these", "those", "which",
        "who", "what", "when", "where", "how", "also", "each", "such", "may", "should", "would",
        "could", "been", "being", "over", "only", "other", "some", "one", "two", "out", "use",
        "used", "using", "via", "per", "given", "returns", "return", "an", "as", "at", "be",
        "by", "if", "in", "is", "it", "of", "on", "or", "so", "to", "we", "do", "no",
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && memcmp(words[i], w, n) == 0)
            return 1;
    return 0;
}

int ggi_fts5_match_expr(const char *text, char **out)
{
    *out = NULL;
    char terms[MAX_TERMS][65];
    int n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && n < MAX_TERMS) {
        while (*p && !is_word_byte(*p))
            p++;
        const unsigned char *s = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t len = (size_t)(p - s);
        if (len < 2 || len > 64)
            continue;
        char w[65];
        for (size_t i = 0; i < len; i++)
            w[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : (char)s[i];
        w[len] = '\0';
        if (ggi_fts5_stop_word(w, len))
            continue;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(terms[i], w) == 0;
        if (!dup)
            memcpy(terms[n++], w, len + 1);
    }
    ggi_buf b = GGI_BUF_INIT;
    int rc = ggi_buf_puts(&b, "");
    for (int i = 0; i < n && !rc; i++)
        rc = ggi_buf_printf(&b, "%s\"%s\"", i ? " OR " : "", terms[i]);
    if (rc) {
        ggi_buf_free(&b);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    *out = ggi_buf_steal(&b);
    return GG_OK;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->rank - y->rank; /* ties keep the BM25 order */
}

static int lang_ok(const char *want, const char *have)
{
    return !want || !have || strcmp(want, have) == 0 || strcmp(have, "text") == 0 ||
           strcmp(have, "markdown") == 0;
}

/* Appends result c (its stored fields) to arr; *used counts text characters. */
static int add_result(conn *co, const cand *c, cJSON *arr, size_t budget, size_t *used,
                      int *added)
{
    *added = 0;
    sqlite3_stmt *s;
    int rc = stmt(co, S_CHUNK_GET, &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, c->id);
    int r = sqlite3_step(s);
    if (r == SQLITE_DONE) { /* deleted since the ranking query */
        sqlite3_reset(s);
        return GG_OK;
    }
    if (r != SQLITE_ROW) {
        rc = fail_db(co->db, "reading a chunk");
        sqlite3_reset(s);
        return rc;
    }
    const char *text = (const char *)sqlite3_column_text(s, 6);
    size_t tl = text ? (size_t)sqlite3_column_bytes(s, 6) : 0;
    if (budget && *used + tl > budget) {
        sqlite3_reset(s);
        return GG_OK;
    }
    cJSON *o = cJSON_CreateObject();
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)c->id);
    int line_start = sqlite3_column_int(s, 1), line_end = sqlite3_column_int(s, 2);
    const char *src = (const char *)sqlite3_column_text(s, 0);
    int bad = !o || !cJSON_AddItemToArray(arr, o);
    if (bad) {
        cJSON_Delete(o);
    } else {
        bad = ggi_json_add_str(o, "id", id) || ggi_json_add_str(o, "text", text ? text : "") ||
              ggi_json_add_num(o, "score", c->score) || ggi_json_add_str(o, "source", src) ||
              ggi_json_add_num(o, "line_start", line_start) ||
              ggi_json_add_num(o, "line_end", line_end) ||
              ggi_json_add_str(o, "title", (const char *)sqlite3_column_text(s, 3)) ||
              ggi_json_add_str(o, "kind", (const char *)sqlite3_column_text(s, 4)) ||
              ggi_json_add_str(o, "hash", (const char *)sqlite3_column_text(s, 5)) ||
              ggi_json_add_num(o, "bm25", c->bm25) ||
              ggi_json_add_num(o, "usefulness", c->use) ||
              ggi_json_add_num(o, "successes", c->s) ||
              ggi_json_add_num(o, "failures", c->f) ||
              ggi_json_add_num(o, "kind_successes", c->ks) ||
              ggi_json_add_num(o, "kind_failures", c->kf);
    }
    sqlite3_reset(s);
    if (bad)
        return ggi_error(GG_ENOMEM, "out of memory");
    *used += tl;
    *added = 1;
    return GG_OK;
}

static int screened_cmp(const void *a, const void *b)
{
    const screened *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id; /* ties: FTS5's order, by rowid */
}

static int grow(screened **v, int *alloc, int want)
{
    if (*alloc >= want)
        return GG_OK;
    screened *h = realloc(*v, (size_t)want * sizeof *h);
    if (!h)
        return ggi_error(GG_ENOMEM, "out of memory");
    *v = h;
    *alloc = want;
    return GG_OK;
}

/*
 * The candidates of a match expression: one gg_rank() pass screens the best SCREEN_PER_POOL *
 * pool rows by average-length BM25 and keeps the best pool of those by exact bm25() (without
 * a language; with one, every screened row is scored, so that the pool can be filled from
 * the rows whose language fits). They become co->cands[0 .. *n), in BM25 order, with their
 * learned counts.
 */
static int candidates(conn *co, const char *match, const char *lang, const char *kind,
                      int kind_counts, int pool, int *n_out)
{
    *n_out = 0;
    rank_pass *p = &co->rp;
    int screen = pool * SCREEN_PER_POOL;
    int rc = grow(&p->heap, &p->heap_alloc, screen);
    if (!rc && !lang)
        rc = grow(&p->top, &p->top_alloc, pool);
    if (!rc && co->cap_cands < pool) {
        cand *c = realloc(co->cands, (size_t)pool * sizeof *c);
        if (!c)
            return ggi_error(GG_ENOMEM, "out of memory");
        co->cands = c;
        co->cap_cands = pool;
    }
    if (rc)
        return rc;
    p->ready = p->failed = 0;
    p->n = p->top_n = 0;
    p->cap = screen;
    p->top_cap = lang ? 0 : pool;
    sqlite3_stmt *s;
    if ((rc = stmt(co, S_CANDIDATES, &s)))
        return rc;
    sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_pointer(s, 2, p, "gg_rank_pass", NULL);
    int r = sqlite3_step(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = fail_db(co->db, "searching");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc)
        return rc;
    screened *best = p->top_cap ? p->top : p->heap;
    int n_best = p->top_cap ? p->top_n : p->n;
    qsort(best, (size_t)n_best, sizeof *best, screened_cmp);
    if ((rc = stmt(co, S_CHUNK_META, &s)))
        return rc;
    int n = 0;
    for (int i = 0; i < n_best && n < pool; i++) {
        sqlite3_bind_int64(s, 1, best[i].id);
        r = sqlite3_step(s);
        if (r == SQLITE_ROW && lang_ok(lang, (const char *)sqlite3_column_text(s, 2))) {
            cand *c = &co->cands[n];
            c->id = best[i].id;
            c->bm25 = -best[i].score;
            c->s = sqlite3_column_double(s, 0);
            c->f = sqlite3_column_double(s, 1);
            c->ks = c->kf = 0;
            c->demoted = 0;
            const char *sk = (const char *)sqlite3_column_text(s, 4);
            c->foreign = kind && sqlite3_column_int(s, 3) && (!sk || strcmp(sk, kind) != 0);
            c->rank = n++;
        }
        sqlite3_reset(s);
        if (r != SQLITE_ROW && r != SQLITE_DONE) /* DONE: deleted since the pass */
            return fail_db(co->db, "reading a chunk's counts");
    }
    /* The counts for the query's kind, where it has any. */
    if (kind && kind_counts && n > 0) {
        if ((rc = stmt(co, S_KIND_META, &s)))
            return rc;
        sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
        for (int i = 0; i < n; i++) {
            sqlite3_bind_int64(s, 1, co->cands[i].id);
            r = sqlite3_step(s);
            if (r == SQLITE_ROW) {
                co->cands[i].ks = sqlite3_column_double(s, 0);
                co->cands[i].kf = sqlite3_column_double(s, 1);
            }
            sqlite3_reset(s);
            if (r != SQLITE_ROW && r != SQLITE_DONE) {
                sqlite3_clear_bindings(s);
                return fail_db(co->db, "reading a chunk's counts for a kind");
            }
        }
        sqlite3_clear_bindings(s);
    }
    *n_out = n;
    return GG_OK;
}

static int parse_id(const cJSON *v, sqlite3_int64 *out);

/* The query's fields, checked; q holds the strings. */
typedef struct query {
    cJSON *q;
    const char *text, *lang, *kind_in;
    long long k;
} query;

static int parse_query(const char *query_json, query *qr)
{
    memset(qr, 0, sizeof *qr);
    qr->k = DEFAULT_K;
    size_t qlen = strlen(query_json);
    if (qlen > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever query is %zu bytes, the limit is %u", qlen,
                         MAX_QUERY_BYTES);
    int rc = ggi_json_parse(query_json, qlen, &qr->q);
    if (rc)
        return ggi_error_wrap("retriever query: ");
    cJSON *q = qr->q;
    if (!cJSON_IsObject(q))
        rc = ggi_error(GG_EINVAL, "retriever query must be a JSON object");
    if (!rc)
        rc = ggi_json_string(q, "text", 1, 0, &qr->text);
    if (!rc)
        rc = ggi_json_string(q, "language", 0, 64, &qr->lang);
    if (!rc)
        rc = ggi_json_int(q, "k", 0, 1, MAX_K, &qr->k);
    if (!rc)
        rc = ggi_json_string(q, "kind", 0, GGI_CREDIT_KIND_MAX - 1, &qr->kind_in);
    if (!rc && qr->kind_in && !ggi_credit_kind_ok(qr->kind_in))
        rc = ggi_error(GG_EINVAL, "field 'kind' may hold only letters, digits and _-.:+");
    if (!rc && !cJSON_GetObjectItemCaseSensitive(q, "k"))
        qr->k = DEFAULT_K;
    if (rc) {
        cJSON_Delete(qr->q);
        qr->q = NULL;
        return ggi_error_wrap("retriever query: ");
    }
    return GG_OK;
}

/* Blends relevance and usefulness into each candidate's score, then sorts; in a share of
 * queries the usefulness is a Thompson draw. */
static void score_candidates(ggi_fts5 *x, cand *cs, int n)
{
    double best = 0;
    for (int i = 0; i < n; i++)
        if (-cs[i].bm25 > best)
            best = -cs[i].bm25;
    uint64_t rng = 0;
    int explore = 0;
    if (x->weight > 0 && n > 0) {
        pthread_mutex_lock(&x->mu);
        rng = ggi_rand_next(&x->rng);
        pthread_mutex_unlock(&x->mu);
        explore = x->exploration > 0 && ggi_rand_uniform(&rng) < x->exploration;
    }
    for (int i = 0; i < n; i++) {
        cand *c = &cs[i];
        c->rel = best > 0 ? -c->bm25 / best : 1.0;
        /* Per kind with back-off (docs/retrieval.md): the kind's counts on a prior worth
         * KIND_PRIOR outcomes centred on the chunk's usefulness over every kind. */
        double global = (c->s + 1.0) / (c->s + c->f + 2.0);
        double a = c->ks + KIND_PRIOR * global, b = c->kf + KIND_PRIOR * (1.0 - global);
        c->use = a / (a + b);
        double u = explore ? ggi_rand_beta(&rng, a, b) : c->use;
        /* Usefulness relative to an unproven chunk's (0.5) scales the relevance: evidence
         * can overturn any BM25 lead, and weight 0 is the BM25 order. */
        c->score = c->rel * pow(2.0 * u, x->weight);
    }
    qsort(cs, (size_t)n, sizeof *cs, cand_cmp);
}

/* What led a failed attempt of the task goes last, in its order (retries as experiments),
 * before the rule on solutions below, so that the retry does not start with another kind's
 * solution. */
static int demote_candidates(const cJSON *q, cand *cs, int n)
{
    const cJSON *demote = cJSON_GetObjectItemCaseSensitive(q, "demote");
    int n_demoted = 0;
    for (int i = 0; i < n && cJSON_IsArray(demote); i++) {
        const cJSON *it;
        int seen = 0;
        cJSON_ArrayForEach(it, demote)
        {
            sqlite3_int64 id;
            if (++seen > GGI_CREDIT_MAX_DEMOTE)
                break;
            if (parse_id(it, &id) && id == cs[i].id) {
                cs[i].demoted = 1;
                n_demoted++;
                break;
            }
        }
    }
    if (n_demoted == 0 || n_demoted >= n)
        return GG_OK;
    cand *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return ggi_error(GG_ENOMEM, "out of memory");
    int j = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (cs[i].demoted == pass)
                tmp[j++] = cs[i];
    memcpy(cs, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    return GG_OK;
}

/* Solutions of other kinds of task do not swamp the results: at most one, and not first
 * while anything else is there (docs/retrieval.md, "Solutions found again"). The others get
 * a negative score: dropped. */
static void limit_foreign(const ggi_fts5 *x, cand *cs, int n)
{
    int foreign_at = -1;
    for (int i = 0; i < n && x->weight > 0; i++) {
        if (!cs[i].foreign)
            continue;
        if (foreign_at < 0)
            foreign_at = i;
        else
            cs[i].score = -1;
    }
    int next = 1;
    while (foreign_at == 0 && next < n && cs[next].score < 0)
        next++;
    if (foreign_at == 0 && next < n) { /* it goes after the first other result */
        cand t = cs[0];
        memmove(&cs[0], &cs[1], (size_t)next * sizeof *cs);
        cs[next] = t;
    }
}

/* The candidates for match, ranked, the first k of them into arr. */
static int rank_into(ggi_fts5 *x, conn *co, const query *qr, const char *match,
                     const char *kind, cJSON *arr)
{
    long long pool = qr->k * POOL_PER_K;
    pool = pool < POOL_MIN ? POOL_MIN : pool > POOL_MAX ? POOL_MAX : pool;
    int n = 0;
    /* Solutions of other kinds are told apart only when the query's kind is a task's. */
    int rc = candidates(co, match, qr->lang, qr->kind_in || qr->lang ? kind : NULL,
                        x->weight > 0, (int)pool, &n);
    if (rc)
        return rc;
    cand *cs = co->cands;
    score_candidates(x, cs, n);
    if ((rc = demote_candidates(qr->q, cs, n)))
        return rc;
    limit_foreign(x, cs, n);
    size_t used = 0;
    int got = 0;
    for (int i = 0; i < n && got < qr->k && !rc; i++) {
        if (cs[i].score < 0)
            continue;
        int added = 0;
        rc = add_result(co, &cs[i], arr, x->max_chars, &used, &added);
        got += added;
    }
    return rc;
}

int ggi_fts5_search(ggi_fts5 *x, const char *query_json, char **out_json)
{
    *out_json = NULL;
    query qr;
    int rc = parse_query(query_json, &qr);
    if (rc)
        return rc;
    char *match = NULL;
    if ((rc = ggi_fts5_match_expr(qr.text, &match))) {
        cJSON_Delete(qr.q);
        return rc;
    }
    char kind[GGI_CREDIT_KIND_MAX];
    if (qr.kind_in)
        snprintf(kind, sizeof kind, "%s", qr.kind_in);
    else
        ggi_credit_kind(qr.text, qr.lang, kind);
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = res ? cJSON_AddArrayToObject(res, "results") : NULL;
    if (!arr || ggi_json_add_str(res, "kind", kind)) {
        free(match);
        cJSON_Delete(qr.q);
        cJSON_Delete(res);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    conn *co = NULL;
    if (*match) { /* else nothing to look for */
        rc = conn_get(x, &co);
        if (!rc)
            rc = rank_into(x, co, &qr, match, kind, arr);
    }
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    conn_put(x, co);
    free(match);
    cJSON_Delete(res);
    cJSON_Delete(qr.q);
    return rc;
}

/* ---- feedback ---- */

/* Reads an id ("42" or 42) into *out; 0 when it is not one of ours. */
static int parse_id(const cJSON *v, sqlite3_int64 *out)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d >= 1 && d <= 9007199254740991.0 && floor(d) == d) {
            *out = (sqlite3_int64)d;
            return 1;
        }
        return 0;
    }
    const char *s = cJSON_GetStringValue(v);
    if (!s || !*s || strlen(s) > 18)
        return 0;
    sqlite3_int64 n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        n = n * 10 + (*p - '0');
    }
    *out = n;
    return n > 0;
}

int ggi_fts5_feedback(ggi_fts5 *x, const char *feedback_json)
{
    size_t len = strlen(feedback_json);
    if (len > MAX_QUERY_BYTES)
        return ggi_error(GG_ETOOBIG, "retriever feedback is %zu bytes, the limit is %u", len,
                         MAX_QUERY_BYTES);
    cJSON *fb = NULL;
    if (ggi_json_parse(feedback_json, len, &fb))
        return ggi_error_wrap("retriever feedback: ");
    int passed = 0, rc = GG_OK;
    const char *kind = NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(fb, "ids");
    const cJSON *weights = cJSON_GetObjectItemCaseSensitive(fb, "weights");
    if (!cJSON_IsObject(fb))
        rc = ggi_error(GG_EINVAL, "retriever feedback must be a JSON object");
    else if ((rc = ggi_json_bool(fb, "passed", 1, &passed)))
        ggi_error_wrap("retriever feedback: ");
    else if (!cJSON_IsArray(ids))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'ids' must be an array");
    else if (cJSON_GetArraySize(ids) > MAX_FEEDBACK_IDS)
        rc = ggi_error(GG_ETOOBIG, "retriever feedback: more than %d ids", MAX_FEEDBACK_IDS);
    else if (weights && !cJSON_IsNull(weights) &&
             (!cJSON_IsArray(weights) || cJSON_GetArraySize(weights) != cJSON_GetArraySize(ids)))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'weights' must be an array as long "
                                  "as 'ids'");
    else if ((rc = ggi_json_string(fb, "kind", 0, GGI_CREDIT_KIND_MAX - 1, &kind)))
        ggi_error_wrap("retriever feedback: ");
    else if (kind && !ggi_credit_kind_ok(kind))
        rc = ggi_error(GG_EINVAL, "retriever feedback: field 'kind' may hold only letters, "
                                  "digits and _-.:+");
    if (!cJSON_IsArray(weights))
        weights = NULL;
    int n = rc ? 0 : cJSON_GetArraySize(ids);
    sqlite3_int64 *v = n ? malloc((size_t)n * sizeof *v) : NULL;
    double *w = n ? malloc((size_t)n * sizeof *w) : NULL;
    if (n && (!v || !w))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    int m = 0;
    const cJSON *it, *wt = weights ? weights->child : NULL;
    if (!rc) {
        cJSON_ArrayForEach(it, ids)
        {
            double share = 1.0;
            if (wt) {
                share = cJSON_IsNumber(wt) ? wt->valuedouble : -1;
                wt = wt->next;
                if (!(share >= 0 && share <= 1)) {
                    rc = ggi_error(GG_EINVAL, "retriever feedback: 'weights' must hold "
                                              "numbers from 0 to 1");
                    break;
                }
            }
            sqlite3_int64 id;
            if (share <= 0 || !parse_id(it, &id))
                continue;
            int dup = 0;
            for (int i = 0; i < m && !dup; i++)
                dup = v[i] == id;
            if (!dup) {
                v[m] = id;
                w[m++] = share;
            }
        }
    }
    char kind_copy[GGI_CREDIT_KIND_MAX] = "";
    if (kind)
        snprintf(kind_copy, sizeof kind_copy, "%s", kind);
    cJSON_Delete(fb);
    if (rc || m == 0) {
        free(v);
        free(w);
        return rc;
    }
    conn *c = NULL;
    if (!(rc = conn_get(x, &c)) && !(rc = exec_simple(c, S_BEGIN))) {
        sqlite3_stmt *s = NULL, *k = NULL;
        rc = stmt(c, S_CREDIT_W, &s);
        if (!rc && kind_copy[0])
            rc = stmt(c, S_KIND_CREDIT, &k);
        for (int i = 0; i < m && !rc; i++) {
            sqlite3_bind_int64(s, 1, v[i]);
            sqlite3_bind_double(s, 2, passed ? w[i] : 0.0);
            sqlite3_bind_double(s, 3, passed ? 0.0 : w[i]);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = fail_db(c->db, "recording feedback");
            sqlite3_reset(s);
            if (!rc && k) {
                sqlite3_bind_int64(k, 1, v[i]);
                sqlite3_bind_text(k, 2, kind_copy, -1, SQLITE_STATIC);
                sqlite3_bind_double(k, 3, passed ? w[i] : 0.0);
                sqlite3_bind_double(k, 4, passed ? 0.0 : w[i]);
                if (sqlite3_step(k) != SQLITE_DONE)
                    rc = fail_db(c->db, "recording feedback for a kind");
                sqlite3_reset(k);
            }
        }
        if (k)
            sqlite3_clear_bindings(k);
        rc = rc ? rc : exec_simple(c, S_COMMIT);
    }
    conn_put(x, c);
    free(v);
    free(w);
    return rc;
}

/* ---- adding documents ---- */

typedef struct old_chunk {
    sqlite3_int64 id;
    char hash[17];
    int kept;
} old_chunk;

static int step_done(conn *c, sqlite3_stmt *s, const char *what)
{
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE ? GG_OK : fail_db(c->db, what);
}

static int add_id(cJSON *ids, sqlite3_int64 id)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)id);
    cJSON *s = cJSON_CreateString(b);
    if (!s || !cJSON_AddItemToArray(ids, s)) {
        cJSON_Delete(s);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    return GG_OK;
}

/* Inserts the document row; *doc gets its id. */
static int doc_insert(conn *c, const char *key, const char *source, const char *kind,
                      const char *lang, const char *hash, sqlite3_int64 *doc)
{
    sqlite3_stmt *s;
    int rc = stmt(c, S_DOC_INSERT, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, hash, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 6, ggi_wall_s());
    rc = step_done(c, s, "adding a document");
    sqlite3_clear_bindings(s);
    *doc = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static int chunk_insert(conn *c, sqlite3_int64 doc, const char *lang, const char *hash,
                        const ggi_chunk *ch, const char *kind, const char *source,
                        const char *text, sqlite3_int64 *id)
{
    sqlite3_stmt *s;
    int rc = stmt(c, S_CHUNK_INSERT, &s);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, doc);
    sqlite3_bind_text(s, 2, lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, ch->line_start);
    sqlite3_bind_int(s, 5, ch->line_end);
    sqlite3_bind_text(s, 6, kind, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, ggi_wall_s());
    sqlite3_bind_text(s, 8, ch->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, text + ch->off, (int)ch->len, SQLITE_STATIC);
    rc = step_done(c, s, "adding a chunk");
    sqlite3_clear_bindings(s);
    *id = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Finds a chunk with this hash anywhere in the corpus; *id 0 when none. */
static int hash_find(conn *c, const char *hash, sqlite3_int64 *id)
{
    sqlite3_stmt *s;
    int rc = stmt(c, S_HASH_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    *id = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? GG_OK : fail_db(c->db, "looking up a hash");
}

typedef struct add_ctx {
    conn *c;
    const char *source, *kind, *lang, *text;
    const char *task_id, *task_kind; /* a solution's task and its kind key, or NULL */
    const ggi_chunk *ch;
    size_t n;
    cJSON *ids;
    int added, unchanged, removed;
} add_ctx;

static void chunk_hash(const add_ctx *a, const ggi_chunk *ch, char out[17])
{
    ggi_hash_hex(a->text + ch->off, ch->len, out);
}

/* Removes a document with its chunks (their learned counts, its solution row). */
static int doc_remove(conn *c, sqlite3_int64 doc, int *chunks)
{
    sqlite3_stmt *s;
    int rc = stmt(c, S_DOC_CHUNKS_DELETE, &s);
    if (!rc) {
        sqlite3_bind_int64(s, 1, doc);
        rc = step_done(c, s, "removing a document's chunks");
        if (!rc && chunks)
            *chunks += sqlite3_changes(c->db);
    }
    if (!rc && !(rc = stmt(c, S_DOC_DELETE, &s))) {
        sqlite3_bind_int64(s, 1, doc);
        rc = step_done(c, s, "removing a document");
    }
    return rc;
}

/* The solutions that do not fit any more: a kind keeps its newest GGI_FTS5_SOLUTIONS_PER_KIND,
 * the corpus GGI_FTS5_SOLUTIONS_MAX (the oldest go). */
static int solutions_cap(conn *c, const char *kind, int *removed)
{
    sqlite3_stmt *s;
    sqlite3_int64 over[64];
    int n = 0, r, rc = *kind ? stmt(c, S_SOL_OVER, &s) : GG_OK; /* kindless: the total only */
    if (rc)
        return rc;
    if (*kind) {
        sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, GGI_FTS5_SOLUTIONS_PER_KIND);
    }
    while (*kind && n < 64 && (r = sqlite3_step(s)) == SQLITE_ROW)
        over[n++] = sqlite3_column_int64(s, 0);
    if (*kind) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    for (int i = 0; i < n && !rc; i++)
        rc = doc_remove(c, over[i], removed);
    for (int guard = 0; !rc && guard < 64; guard++) {
        if ((rc = stmt(c, S_SOL_COUNT, &s)))
            break;
        long long count = 0;
        sqlite3_int64 oldest = 0;
        if ((r = sqlite3_step(s)) == SQLITE_ROW) {
            count = sqlite3_column_int64(s, 0);
            oldest = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (r != SQLITE_ROW)
            rc = fail_db(c->db, "counting solutions");
        if (rc || count <= GGI_FTS5_SOLUTIONS_MAX || !oldest)
            break;
        rc = doc_remove(c, oldest, removed);
    }
    return rc;
}

/* A solution: every chunk whose content is new to the corpus is added. */
static int add_solution(add_ctx *a, const char *doc_hash)
{
    char key[64];
    snprintf(key, sizeof key, "solution:%s", doc_hash);
    sqlite3_int64 doc = 0;
    int rc = GG_OK;
    for (size_t i = 0; i < a->n && !rc; i++) {
        char h[17];
        chunk_hash(a, &a->ch[i], h);
        sqlite3_int64 id = 0;
        if ((rc = hash_find(a->c, h, &id)))
            break;
        if (id) {
            a->unchanged++;
            rc = add_id(a->ids, id);
            continue;
        }
        if (!doc) {
            sqlite3_stmt *s;
            if ((rc = stmt(a->c, S_DOC_FIND, &s)))
                break;
            sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
            if (sqlite3_step(s) == SQLITE_ROW)
                doc = sqlite3_column_int64(s, 0);
            sqlite3_reset(s);
            if (!doc && (rc = doc_insert(a->c, key, a->source, a->kind, a->lang, doc_hash, &doc)))
                break;
        }
        rc = chunk_insert(a->c, doc, a->lang, h, &a->ch[i], a->kind, a->source, a->text, &id);
        if (!rc) {
            a->added++;
            rc = add_id(a->ids, id);
        }
    }
    if (!rc && doc && a->task_id && a->task_kind[0]) {
        /* It passed its task's tests once: one success for that kind, per chunk. */
        sqlite3_stmt *k;
        if (!(rc = stmt(a->c, S_KIND_CREDIT, &k))) {
            sqlite3_stmt *s;
            if (!(rc = stmt(a->c, S_DOC_CHUNKS, &s))) {
                sqlite3_bind_int64(s, 1, doc);
                while (!rc && sqlite3_step(s) == SQLITE_ROW) {
                    sqlite3_bind_int64(k, 1, sqlite3_column_int64(s, 0));
                    sqlite3_bind_text(k, 2, a->task_kind, -1, SQLITE_STATIC);
                    sqlite3_bind_double(k, 3, 1.0);
                    sqlite3_bind_double(k, 4, 0.0);
                    rc = step_done(a->c, k, "crediting a solution");
                }
                sqlite3_reset(s);
            }
            sqlite3_clear_bindings(k);
        }
    }
    if (!rc && doc && a->task_id) {
        /* One solution per task (the last one), a few per kind. */
        sqlite3_stmt *s;
        if (!(rc = stmt(a->c, S_SOL_INSERT, &s))) {
            sqlite3_bind_int64(s, 1, doc);
            sqlite3_bind_text(s, 2, a->task_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, a->task_kind, -1, SQLITE_STATIC);
            sqlite3_bind_double(s, 4, ggi_wall_s());
            rc = step_done(a->c, s, "recording a solution");
            sqlite3_clear_bindings(s);
        }
        if (!rc)
            rc = solutions_cap(a->c, a->task_kind, &a->removed);
    }
    return rc;
}

/* The solution recorded earlier for task_id, when it is not byte-identical (doc_hash) to the
 * one being added, is removed: a task keeps its last passing solution. */
static int solution_replace(add_ctx *a, const char *doc_hash)
{
    sqlite3_stmt *s;
    int rc = stmt(a->c, S_SOL_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, a->task_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sqlite3_int64 old = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return fail_db(a->c->db, "looking up a task's solution");
    if (!old)
        return GG_OK;
    char key[64];
    snprintf(key, sizeof key, "solution:%s", doc_hash);
    if ((rc = stmt(a->c, S_DOC_FIND, &s)))
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_int64 same = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return same == old ? GG_OK : doc_remove(a->c, old, &a->removed);
}

/* A document keyed by its source: unchanged chunks stay, new ones are added, stale ones go. */
static int add_document(add_ctx *a, const char *doc_hash)
{
    sqlite3_stmt *s;
    int rc = stmt(a->c, S_DOC_FIND, &s);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, a->source, -1, SQLITE_STATIC);
    sqlite3_int64 doc = 0;
    int same = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        doc = sqlite3_column_int64(s, 0);
        const char *h = (const char *)sqlite3_column_text(s, 1);
        same = h && strcmp(h, doc_hash) == 0;
    }
    sqlite3_reset(s);
    if (!doc)
        return ggi_error(GG_EINTERNAL, "unreachable");
    old_chunk *old = NULL;
    size_t n_old = 0, cap = 0;
    if ((rc = stmt(a->c, S_DOC_CHUNKS, &s)))
        return rc;
    sqlite3_bind_int64(s, 1, doc);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n_old == cap) {
            size_t nc = cap ? cap * 2 : 64;
            old_chunk *v = realloc(old, nc * sizeof *v);
            if (!v) {
                rc = ggi_error(GG_ENOMEM, "out of memory");
                break;
            }
            old = v;
            cap = nc;
        }
        old[n_old].id = sqlite3_column_int64(s, 0);
        snprintf(old[n_old].hash, sizeof old[n_old].hash, "%s",
                 (const char *)sqlite3_column_text(s, 1));
        old[n_old].kept = 0;
        n_old++;
    }
    if (!rc && r != SQLITE_DONE)
        rc = fail_db(a->c->db, "reading a document's chunks");
    sqlite3_reset(s);
    if (!rc && same) {
        /* Byte-identical: nothing to do but report the ids. */
        for (size_t i = 0; i < n_old && !rc; i++)
            rc = add_id(a->ids, old[i].id);
        a->unchanged = (int)n_old;
        free(old);
        return rc;
    }
    for (size_t i = 0; i < a->n && !rc; i++) {
        char h[17];
        chunk_hash(a, &a->ch[i], h);
        size_t j = 0;
        while (j < n_old && (old[j].kept || strcmp(old[j].hash, h) != 0))
            j++;
        sqlite3_int64 id;
        if (j < n_old) {
            old[j].kept = 1;
            id = old[j].id;
            a->unchanged++;
            if (!(rc = stmt(a->c, S_CHUNK_LINES, &s))) {
                sqlite3_bind_int64(s, 1, id);
                sqlite3_bind_int(s, 2, a->ch[i].line_start);
                sqlite3_bind_int(s, 3, a->ch[i].line_end);
                rc = step_done(a->c, s, "moving a chunk");
            }
        } else {
            rc = chunk_insert(a->c, doc, a->lang, h, &a->ch[i], a->kind, a->source, a->text,
                              &id);
            a->added++;
        }
        if (!rc)
            rc = add_id(a->ids, id);
    }
    for (size_t j = 0; j < n_old && !rc; j++) {
        if (old[j].kept)
            continue;
        if (!(rc = stmt(a->c, S_CHUNK_DELETE, &s))) {
            sqlite3_bind_int64(s, 1, old[j].id);
            rc = step_done(a->c, s, "removing a stale chunk");
            a->removed++;
        }
    }
    if (!rc && !(rc = stmt(a->c, S_DOC_UPDATE, &s))) {
        sqlite3_bind_int64(s, 1, doc);
        sqlite3_bind_text(s, 2, doc_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, a->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, a->lang, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 5, ggi_wall_s());
        rc = step_done(a->c, s, "updating a document");
        sqlite3_clear_bindings(s);
    }
    free(old);
    return rc;
}

static int check_label(const char *what, const char *v)
{
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '+' || *p == '.'))
            return ggi_error(GG_EINVAL,
                             "retriever document: field '%s' may hold only a-z, 0-9, _ - + .",
                             what);
    return *v ? GG_OK : ggi_error(GG_EINVAL, "retriever document: field '%s' is empty", what);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * {"kind": "prune", "source": ROOT, "keep": [SOURCE, ...]}: removes every document (and its
 * chunks, with their learned counts) whose source is ROOT or lies below ROOT/ and is not in
 * keep. Solutions are never touched. ROOT must be an absolute path.
 */
static int prune(ggi_fts5 *x, const cJSON *d, cJSON *res)
{
    const char *root = NULL;
    int rc = ggi_json_string(d, "source", 1, MAX_SOURCE_BYTES, &root);
    if (rc)
        return ggi_error_wrap("retriever prune: ");
    if (root[0] != '/')
        return ggi_error(GG_EINVAL, "retriever prune: 'source' must be an absolute path");
    const cJSON *keep = cJSON_GetObjectItemCaseSensitive(d, "keep");
    if (keep && !cJSON_IsArray(keep))
        return ggi_error(GG_EINVAL, "retriever prune: field 'keep' must be an array");
    int n_keep = keep ? cJSON_GetArraySize(keep) : 0;
    if (n_keep > MAX_KEEP)
        return ggi_error(GG_ETOOBIG, "retriever prune: more than %d sources to keep", MAX_KEEP);
    const char **kept = n_keep ? malloc((size_t)n_keep * sizeof *kept) : NULL;
    if (n_keep && !kept)
        return ggi_error(GG_ENOMEM, "out of memory");
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, keep)
    {
        const char *v = cJSON_GetStringValue(it);
        if (!v) {
            free(kept);
            return ggi_error(GG_EINVAL, "retriever prune: 'keep' must hold strings");
        }
        kept[n++] = v;
    }
    if (n > 1)
        qsort(kept, (size_t)n, sizeof *kept, str_cmp);
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--; /* "/a/b/" is "/a/b" */
    char *lo = malloc(rl + 2), *hi = malloc(rl + 2), *exact = malloc(rl + 1);
    if (!lo || !hi || !exact) {
        free(lo);
        free(hi);
        free(exact);
        free(kept);
        return ggi_error(GG_ENOMEM, "out of memory");
    }
    memcpy(exact, root, rl);
    exact[rl] = '\0';
    /* Below "/" is every absolute path: from "/" up to "0", the byte after '/'. */
    snprintf(lo, rl + 2, "%s%s", exact, rl == 1 ? "" : "/");
    snprintf(hi, rl + 2, "%.*s0", (int)(rl == 1 ? 0 : rl), exact);
    long docs = 0, chunks = 0;
    conn *c = NULL;
    sqlite3_int64 *gone = NULL;
    size_t n_gone = 0, cap = 0;
    if (!(rc = conn_get(x, &c)) && !(rc = exec_simple(c, S_BEGIN))) {
        sqlite3_stmt *s;
        if (!(rc = stmt(c, S_DOCS_UNDER, &s))) {
            sqlite3_bind_text(s, 1, exact, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, lo, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, hi, -1, SQLITE_STATIC);
            int r;
            while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW) {
                const char *key = (const char *)sqlite3_column_text(s, 1);
                if (key && n && bsearch(&key, kept, (size_t)n, sizeof *kept, str_cmp))
                    continue;
                if (n_gone == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    sqlite3_int64 *v = realloc(gone, nc * sizeof *v);
                    if (!v) {
                        rc = ggi_error(GG_ENOMEM, "out of memory");
                        break;
                    }
                    gone = v;
                    cap = nc;
                }
                gone[n_gone++] = sqlite3_column_int64(s, 0);
            }
            if (!rc && r != SQLITE_DONE)
                rc = fail_db(c->db, "listing documents");
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
        for (size_t i = 0; i < n_gone && !rc; i++) {
            if (!(rc = stmt(c, S_DOC_CHUNKS_DELETE, &s))) {
                sqlite3_bind_int64(s, 1, gone[i]);
                rc = step_done(c, s, "removing a document's chunks");
                chunks += sqlite3_changes(c->db);
            }
            if (!rc && !(rc = stmt(c, S_DOC_DELETE, &s))) {
                sqlite3_bind_int64(s, 1, gone[i]);
                rc = step_done(c, s, "removing a document");
                docs++;
            }
        }
        if (!rc)
            rc = exec_simple(c, S_COMMIT);
    }
    conn_put(x, c);
    free(gone);
    free(lo);
    free(hi);
    free(exact);
    free(kept);
    if (!rc && (!cJSON_AddArrayToObject(res, "ids") || ggi_json_add_num(res, "added", 0) ||
                ggi_json_add_num(res, "unchanged", 0) ||
                ggi_json_add_num(res, "removed", (double)chunks) ||
                ggi_json_add_num(res, "removed_documents", (double)docs)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    return rc;
}

/* {"kind": "prune", ...}: removes what the request names; the counts into *out_json. */
static int prune_request(ggi_fts5 *x, cJSON *d, char **out_json)
{
    cJSON *res = cJSON_CreateObject();
    int rc = res ? prune(x, d, res) : ggi_error(GG_ENOMEM, "out of memory");
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    cJSON_Delete(res);
    return rc;
}

/* A solution is retrieved whole when it fits one chunk: that one chunk (none for an empty
 * text). */
static int whole_chunk(const char *text, size_t tlen, ggi_chunk **ch, size_t *n)
{
    if (!tlen)
        return GG_OK;
    if (!(*ch = calloc(1, sizeof **ch)))
        return ggi_error(GG_ENOMEM, "out of memory");
    int lines = 1;
    for (size_t i = 0; i + 1 < tlen; i++)
        lines += text[i] == '\n';
    (*ch)->off = 0;
    (*ch)->len = tlen;
    (*ch)->line_start = 1;
    (*ch)->line_end = lines;
    *n = 1;
    return GG_OK;
}

/* Inside the add's transaction: a solution replaces the task's earlier one; a document's
 * chunks are brought up to date (a new document starts with an empty row, so one path does
 * both). The document's hash covers its language, kind and text. */
static int write_document(add_ctx *a, int solution)
{
    char doc_hash[17];
    ggi_buf hb = GGI_BUF_INIT;
    int rc = ggi_buf_printf(&hb, "%s\n%s\n", a->lang, a->kind) || ggi_buf_puts(&hb, a->text)
                 ? ggi_error(GG_ENOMEM, "out of memory")
                 : GG_OK;
    if (!rc)
        ggi_hash_hex(hb.data, hb.len, doc_hash);
    ggi_buf_free(&hb);
    if (rc)
        return rc;
    if (solution) {
        if (a->task_id)
            rc = solution_replace(a, doc_hash);
        return rc ? rc : add_solution(a, doc_hash);
    }
    sqlite3_stmt *s;
    sqlite3_int64 doc = 0;
    if (!(rc = stmt(a->c, S_DOC_FIND, &s))) {
        sqlite3_bind_text(s, 1, a->source, -1, SQLITE_STATIC);
        int r = sqlite3_step(s);
        doc = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
    }
    if (!rc && !doc)
        rc = doc_insert(a->c, a->source, a->source, a->kind, a->lang, "", &doc);
    return rc ? rc : add_document(a, doc_hash);
}

int ggi_fts5_add(ggi_fts5 *x, const char *doc_json, char **out_json)
{
    *out_json = NULL;
    size_t len = strlen(doc_json);
    if (len > MAX_DOC_BYTES * 2)
        return ggi_error(GG_ETOOBIG, "retriever document is %zu bytes, the limit is %u", len,
                         MAX_DOC_BYTES * 2);
    cJSON *d = NULL;
    if (ggi_json_parse(doc_json, len, &d))
        return ggi_error_wrap("retriever document: ");
    const char *source = NULL, *text = NULL, *lang = NULL, *kind = NULL;
    const char *task_id = NULL, *task_kind = NULL;
    int rc = cJSON_IsObject(d) ? GG_OK
                               : ggi_error(GG_EINVAL, "retriever document must be a JSON object");
    const char *op = rc ? NULL : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "kind"));
    if (op && strcmp(op, "prune") == 0) {
        rc = prune_request(x, d, out_json);
        cJSON_Delete(d);
        return rc;
    }
    if (!rc)
        rc = ggi_json_string(d, "source", 1, MAX_SOURCE_BYTES, &source);
    if (!rc)
        rc = ggi_json_string(d, "text", 1, MAX_DOC_BYTES, &text);
    if (!rc)
        rc = ggi_json_string(d, "language", 0, 32, &lang);
    if (!rc)
        rc = ggi_json_string(d, "kind", 0, 32, &kind);
    if (!rc)
        rc = ggi_json_string(d, "task_id", 0, 1024, &task_id);
    if (!rc)
        rc = ggi_json_string(d, "task_kind", 0, GGI_CREDIT_KIND_MAX - 1, &task_kind);
    if (rc)
        ggi_error_wrap("retriever document: ");
    if (!rc && task_kind && !ggi_credit_kind_ok(task_kind))
        rc = ggi_error(GG_EINVAL, "retriever document: field 'task_kind' may hold only "
                                  "letters, digits and _-.:+");
    if (!rc && task_id && !*task_id)
        task_id = NULL;
    if (!rc && !*source)
        rc = ggi_error(GG_EINVAL, "retriever document: field 'source' is empty");
    if (!lang)
        lang = ggi_chunk_language_of(source);
    if (!kind)
        kind = "document";
    if (!rc)
        rc = check_label("language", lang);
    if (!rc)
        rc = check_label("kind", kind);
    int solution = !rc && strcmp(kind, "solution") == 0;
    size_t tlen = text ? strlen(text) : 0;
    ggi_chunk *ch = NULL;
    size_t n = 0;
    if (!rc)
        rc = solution && tlen <= x->max_chunk
                 ? whole_chunk(text, tlen, &ch, &n)
                 : ggi_chunk_text(text, tlen, lang, x->max_chunk, 0, &ch, &n);
    cJSON *res = rc ? NULL : cJSON_CreateObject();
    cJSON *ids = res ? cJSON_AddArrayToObject(res, "ids") : NULL;
    if (!rc && !ids)
        rc = ggi_error(GG_ENOMEM, "out of memory");
    conn *c = NULL;
    if (!rc && !(rc = conn_get(x, &c)) && !(rc = exec_simple(c, S_BEGIN))) {
        add_ctx a = { c, source, kind, lang, text, task_id, task_kind ? task_kind : "", ch, n,
                      ids, 0, 0, 0 };
        rc = write_document(&a, solution);
        if (!rc)
            rc = exec_simple(c, S_COMMIT);
        if (!rc && (ggi_json_add_num(res, "added", a.added) ||
                    ggi_json_add_num(res, "unchanged", a.unchanged) ||
                    ggi_json_add_num(res, "removed", a.removed)))
            rc = ggi_error(GG_ENOMEM, "out of memory");
    }
    conn_put(x, c);
    if (!rc && !(*out_json = ggi_json_print(res)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    cJSON_Delete(res);
    cJSON_Delete(d);
    free(ch);
    return rc;
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
