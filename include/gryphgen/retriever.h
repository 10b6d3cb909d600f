/*
 * gryphgen/retriever.h - SYMORG: retrieves context for a task and learns from outcomes.
 *
 * Built-in backend: "none" (returns no context). A query and its results cross this API as
 * JSON (docs/retriever.md):
 *   query    {"text": "...", "language": "python", "k": 5}
 *   results  {"results": [{"id": "...", "text": "...", "score": 1.0, "source": "..."}]}
 *   feedback {"task_id": "...", "passed": true, "ids": ["...", ...]}
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
#define GG_RETRIEVER_OPTIONS_VERSION 1

/** Options for gg_retriever_new(). Fields are only ever appended. */
typedef struct gg_retriever_options {
    uint32_t version;     /**< GG_RETRIEVER_OPTIONS_VERSION */
    const char *backend;  /**< "none" (default when NULL) */
} gg_retriever_options;

/** Static initialiser with defaults. */
#define GG_RETRIEVER_OPTIONS_INIT { GG_RETRIEVER_OPTIONS_VERSION, NULL }

/** Fills *opts with defaults for the given version; GG_EVERSION for an unknown version. */
GG_API int gg_retriever_options_init(gg_retriever_options *opts, unsigned version);

/** Creates a retriever (NULL opts: "none"). On failure *out is NULL. */
GG_API int gg_retriever_new(gg_retriever_t **out, const gg_retriever_options *opts);

/** Runs a query; *out_results_json (free with gg_free()) holds {"results": [...]}. */
GG_API int gg_retriever_search(gg_retriever_t *r, const char *query_json,
                               char **out_results_json);

/** Reports which results an attempt used and whether it passed. Backends may ignore it. */
GG_API int gg_retriever_feedback(gg_retriever_t *r, const char *feedback_json);

/** The backend's name; borrowed, valid while the retriever lives. */
GG_API const char *gg_retriever_name(const gg_retriever_t *r);

/** Destroys the retriever and sets *pr to NULL. Accepts NULL and a pointer to NULL. */
GG_API void gg_retriever_destroy(gg_retriever_t **pr);

#ifdef __cplusplus
}
#endif
#endif
