/*
 * fts5_internal.h - what the files of the "fts5" retriever backend share, and nothing else
 * includes: its limits, the ids of its prepared statements, a pooled connection with its
 * search scratch, the handle itself, and the few helpers more than one file calls.
 *
 * The backend is cut by concern (each file's opening comment says why there):
 *   fts5.c         schema and its migration, the connection pool, open/close, the vtable;
 *   fts5_search.c  search and ranking (gg_rank(), BM25 candidates blended with usefulness);
 *   fts5_learn.c   learning: feedback into the success and failure counts;
 *   fts5_index.c   indexing: adding documents, chunk storage, solutions, pruning.
 * The type names below (conn, cand, ...) are private to these files; every shared function
 * carries the ggi_fts5_ prefix.
 */
#ifndef GGI_FTS5_INTERNAL_H
#define GGI_FTS5_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "../core/ggi.h"
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

/* Ids of the prepared statements of a connection (their SQL: stmt_sql in fts5.c). */
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

/* ---- search scratch (the FTS5 extension interface is declared in sqlite3.h) ---- */
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

/* ---- shared helpers ---- */

/* Sets the error from db's message prefixed by what; returns its status (fts5.c). */
int ggi_fts5_fail_db(sqlite3 *db, const char *what);

/* Lends the statement id of connection c, prepared on first use (fts5.c). */
int ggi_fts5_stmt(conn *c, enum stmt_id id, sqlite3_stmt **out);

/* Takes an idle connection of x's pool or opens one; gives it back, rolling back a
 * transaction a failed write left open (fts5.c). */
int ggi_fts5_conn_get(ggi_fts5 *x, conn **out);
void ggi_fts5_conn_put(ggi_fts5 *x, conn *c);

/* Steps statement id, which takes no parameters and returns no rows (BEGIN, COMMIT,
 * ROLLBACK) (fts5.c). */
int ggi_fts5_exec_simple(conn *c, enum stmt_id id);

/* Registers the auxiliary function gg_rank() on db (fts5_search.c). */
int ggi_fts5_register_rank(sqlite3 *db);

/* Reads an id ("42" or 42) into *out; 0 when it is not one of ours (fts5_learn.c). */
int ggi_fts5_parse_id(const cJSON *v, sqlite3_int64 *out);

#endif
