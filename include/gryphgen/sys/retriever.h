/*
 * gryphgen/sys/retriever.h - the retriever vtable, for hosts that bring their own context
 * source (a vector store, a code search service).
 *
 * Same rules as gryphgen/sys/executor.h.
 *
 * THREAD SAFETY: search and feedback may be called concurrently from several library threads.
 */
#ifndef GRYPHGEN_SYS_RETRIEVER_H
#define GRYPHGEN_SYS_RETRIEVER_H

#include "../retriever.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of gg_retriever_vtable this header describes. */
#define GG_RETRIEVER_VTABLE_VERSION 2

/** A retriever backend. Slots are only ever appended. */
typedef struct gg_retriever_vtable {
    uint32_t version; /**< GG_RETRIEVER_VTABLE_VERSION */
    /** Required. Answers a query JSON with {"results": [...]} allocated with gg_malloc(). */
    int (*search)(void *self, const char *query_json, char **out_results_json);
    /** Optional. Takes feedback JSON (which results an attempt used, whether it passed). */
    int (*feedback)(void *self, const char *feedback_json);
    /** Optional. Releases self; called exactly once. */
    void (*destroy)(void *self);
    /** Optional. A static name; NULL gives "custom". */
    const char *name;
    /* ---- version 2 ---- */
    /** Optional. Adds a document (gg_retriever_add()); out_result_json is never NULL and
     *  receives gg_malloc() memory or stays NULL. NULL slot: GG_EUNSUPPORTED. */
    int (*add)(void *self, const char *doc_json, char **out_result_json);
} gg_retriever_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_RETRIEVER_VTABLE_INIT { GG_RETRIEVER_VTABLE_VERSION, NULL, NULL, NULL, NULL, NULL }

/**
 * Wraps a host's backend in a retriever handle. Ownership of self passes at once: on failure
 * vtable->destroy(self) has already been called.
 */
GG_API int gg_retriever_new_custom(gg_retriever_t **out, const gg_retriever_vtable *vtable,
                                   void *self);

#ifdef __cplusplus
}
#endif
#endif
