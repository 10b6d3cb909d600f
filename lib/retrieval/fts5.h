/*
 * fts5.h - the "fts5" retriever backend: chunks in an SQLite database with an FTS5 index,
 * ranked by BM25 blended with usefulness learned from feedback (docs/retrieval.md), and the
 * pieces of it that the benchmark and the tests reach directly.
 *
 * THREAD SAFETY: every function may be called concurrently on one ggi_fts5 (each call takes a
 * connection from a mutex-protected pool); ggi_fts5_close() must not race with the others.
 */
#ifndef GGI_FTS5_H
#define GGI_FTS5_H

#include <stddef.h>
#include <stdint.h>

#include "gryphgen/sys/retriever.h"

/** Version of the retrieval tables, kept in rag_meta under the key "schema_version". */
#define GGI_FTS5_SCHEMA_VERSION 2

/** How many outcomes the global usefulness of a chunk is worth as the prior of its
 *  usefulness for one kind of task (the back-off, docs/retrieval.md). */
#define GGI_FTS5_KIND_PRIOR 2.0

/** Solutions kept per kind of task (the newest), and in all (the oldest go first). */
#define GGI_FTS5_SOLUTIONS_PER_KIND 3
#define GGI_FTS5_SOLUTIONS_MAX 10000

/** Column weights of bm25() over (text, title, source, lang), shared with the benchmark. */
#define GGI_FTS5_BM25 "bm25(rag_fts, 1.0, 2.0, 0.5, 0.0)"

/** Pragmas every connection of the backend runs (the benchmark gives its plain query the
 *  same): WAL-friendly durability, 8 MiB of page cache, reads through mmap. */
#define GGI_FTS5_PRAGMAS                                                                 \
    "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8192; PRAGMA mmap_size=268435456;"     \
    " PRAGMA temp_store=MEMORY"

/** Candidate pool of a search for k results: the best GGI_FTS5_POOL_PER_K * k chunks by
 *  bm25(), at least GGI_FTS5_POOL_MIN and at most GGI_FTS5_POOL_MAX, taken from the
 *  GGI_FTS5_SCREEN_PER_POOL times as many best by average-length BM25 (docs/retrieval.md). */
#define GGI_FTS5_POOL_PER_K 4
#define GGI_FTS5_POOL_MIN 20
#define GGI_FTS5_POOL_MAX 400
#define GGI_FTS5_SCREEN_PER_POOL 16

typedef struct ggi_fts5 ggi_fts5;

typedef struct ggi_fts5_config {
    const char *db_path;  /* required */
    double weight;        /* usefulness weight; 0: plain BM25 */
    double exploration;   /* share of queries ranked by Thompson draws, 0 to 1 */
    uint64_t seed;        /* 0: from the clock */
    size_t max_chars;     /* text budget of one search; 0: none */
    size_t max_chunk;     /* chunk size cap in bytes; 0: 4000 */
} ggi_fts5_config;

/** Opens (creating when needed) the tables in cfg->db_path. */
int ggi_fts5_open(const ggi_fts5_config *cfg, ggi_fts5 **out);

/** Closes every pooled connection and frees x; sets *px to NULL. Accepts NULL. */
void ggi_fts5_close(ggi_fts5 **px);

/** Answers a query JSON ({"text", "k", "language"}) with {"results": [...]} (malloc'd). */
int ggi_fts5_search(ggi_fts5 *x, const char *query_json, char **out_json);

/**
 * Credits (passed) or debits the chunks listed in feedback JSON ({"passed", "ids", and
 * optionally "weights": a share from 0 to 1 per id, default 1, and "kind": the kind key the
 * outcome also counts for); unknown ids are skipped.
 */
int ggi_fts5_feedback(ggi_fts5 *x, const char *feedback_json);

/**
 * Adds a document (gg_retriever_add()); *out_json (malloc'd) reports ids and counts. A
 * document {"kind": "prune", "source": ROOT, "keep": [...]} instead removes the documents
 * below the absolute path ROOT that are not kept (never solutions) and also reports
 * "removed_documents".
 */
int ggi_fts5_add(ggi_fts5 *x, const char *doc_json, char **out_json);

/**
 * Builds the FTS5 match expression for free text: its distinct words (stop words and
 * one-letter words left out, at most 24), quoted and joined by OR. *out is malloc'd; "" when
 * the text has no usable word.
 */
int ggi_fts5_match_expr(const char *text, char **out);

/** Whether the n bytes at w (lower case) are a stop word that queries leave out. */
int ggi_fts5_stop_word(const char *w, size_t n);

/** Fills vt and *self with an fts5 backend configured from o (gg_retriever_new()). */
int ggi_fts5_retriever_new(const gg_retriever_options *o, gg_retriever_vtable *vt,
                           void **self);

#endif
