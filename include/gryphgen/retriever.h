/*
 * gryphgen/retriever.h - SYMORG: retrieves context for a task and learns from outcomes.
 *
 * Built-in backends: "none" (returns no context), "fts5" (an SQLite FTS5 index whose BM25
 * ranking is blended with usefulness learned from feedback) and "http" (a JSON search
 * service). A query and its results cross this API as JSON (docs/retrieval.md):
 *   query    {"text": "...", "language": "python", "k": 5}
 *   results  {"results": [{"id": "...", "text": "...", "score": 1.0, "source": "..."}]}
 *   feedback {"task_id": "...", "passed": true, "ids": ["...", ...]}
 *   document {"source": "...", "text": "...", "language": "python", "kind": "solution"}
 *
 * THREAD SAFETY: search and feedback may be called concurrently from many threads on one
 * retriever. gg_retriever_destroy() must not race with other calls on the same retriever.
 */
#ifndef GRYPHGEN_RETRIEVER_H
#define GRYPHGEN_RETRIEVER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A retriever: a built-in backend or a host's vtable (gryphgen/sys/retriever.h). */
typedef struct gg_retriever gg_retriever_t;

/** Version of gg_retriever_options this header describes. */
#define GG_RETRIEVER_OPTIONS_VERSION 2

/**
 * Options for gg_retriever_new(). Fields are only ever appended; a version 1 struct ends
 * after backend and gets the defaults of every later field.
 */
typedef struct gg_retriever_options {
    uint32_t version;     /**< GG_RETRIEVER_OPTIONS_VERSION */
    const char *backend;  /**< "none" (default when NULL), "fts5" or "http" */
    /* ---- version 2 ---- */
    /** fts5: the SQLite file (created when missing; may be the orchestrator's database). */
    const char *db_path;
    /** fts5: weight of learned usefulness against normalised BM25; 0 gives plain BM25.
     *  Default 0.5. */
    double usefulness_weight;
    /** fts5: share of queries (0 to 1) ranked by Thompson draws instead of the posterior
     *  mean, so unproven results get a chance. Default 0.1. */
    double exploration;
    /** fts5: seed of the exploration draws (0: seeded from the clock). */
    uint64_t seed;
    /** Both: total characters of text one search returns (0: no limit). Results that do not
     *  fit are skipped. */
    size_t max_chars;
    /** http: URL template; {query}, {k} and {language} are replaced, URL-encoded. */
    const char *url;
    /** http: "GET" (default) or "POST". */
    const char *method;
    /** http: POST body template; {query} and {language} become JSON-escaped text (without
     *  quotes), {k} a number. NULL: {"query":"{query}","k":{k}}. */
    const char *body;
    /** http: extra request headers, "Name: value" one per line. */
    const char *headers;
    /** http: environment variable holding a bearer token (sent, never logged). */
    const char *token_env;
    /** http: file holding a bearer token (used when token_env is NULL or unset). */
    const char *token_file;
    /** http: RFC 6901 JSON pointer to the result array in the reply (NULL: "/results"). */
    const char *results_pointer;
    /** http: pointers into each result (NULL: "/id", "/text", "/score", "/source"). */
    const char *id_pointer, *text_pointer, *score_pointer, *source_pointer;
    /** http: timeout of one request in seconds (0: 10). */
    double timeout_s;
    /** http: retries after a 5xx, 429 or connection failure (default 2; 0: none). */
    int max_retries;
    /** http: URL that feedback JSON is POSTed to (NULL: feedback is ignored). */
    const char *feedback_url;
    /** http: largest reply accepted in bytes (0: 4 MiB). */
    size_t max_response;
} gg_retriever_options;

/** Static initialiser with defaults. */
#define GG_RETRIEVER_OPTIONS_INIT                                                          \
    { GG_RETRIEVER_OPTIONS_VERSION, NULL, NULL, 0.5, 0.1, 0, 0, NULL, NULL, NULL, NULL,      \
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0.0, 2, NULL, 0 }

/** Fills *opts with defaults for the given version; GG_EVERSION for an unknown version. */
GG_API int gg_retriever_options_init(gg_retriever_options *opts, unsigned version);

/** Creates a retriever (NULL opts: "none"). On failure *out is NULL. */
GG_API int gg_retriever_new(gg_retriever_t **out, const gg_retriever_options *opts);

/** Runs a query; *out_results_json (free with gg_free()) holds {"results": [...]}. */
GG_API int gg_retriever_search(gg_retriever_t *r, const char *query_json,
                               char **out_results_json);

/** Reports which results an attempt used and whether it passed. Backends may ignore it. */
GG_API int gg_retriever_feedback(gg_retriever_t *r, const char *feedback_json);

/**
 * Adds a document to the retriever's corpus: {"source": "...", "text": "...", "language":
 * "python", "kind": "solution"}. The fts5 backend chunks it (by function, class, section or
 * paragraph); a "solution" is deduplicated by content hash across the whole corpus, any other
 * kind replaces the earlier version of the same source (unchanged chunks keep their id and
 * learned usefulness). When out_result_json is not NULL it receives (free with gg_free())
 * {"ids": [...], "added": n, "unchanged": n, "removed": n}. Backends that cannot add return
 * GG_EUNSUPPORTED.
 */
GG_API int gg_retriever_add(gg_retriever_t *r, const char *doc_json, char **out_result_json);

/** The backend's name; borrowed, valid while the retriever lives. */
GG_API const char *gg_retriever_name(const gg_retriever_t *r);

/** Destroys the retriever and sets *pr to NULL. Accepts NULL and a pointer to NULL. */
GG_API void gg_retriever_destroy(gg_retriever_t **pr);

#ifdef __cplusplus
}
#endif
#endif
