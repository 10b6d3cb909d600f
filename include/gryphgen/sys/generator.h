/*
 * gryphgen/sys/generator.h - the generator vtable, for hosts that bring their own code
 * generator (a model client, a search procedure, a human in the loop).
 *
 * Same rules as gryphgen/sys/executor.h: the vtable is copied, only slots its version has are
 * called, destroy is called exactly once, ownership of self passes at once.
 *
 * THREAD SAFETY: generate may be called concurrently from several library threads.
 */
#ifndef GRYPHGEN_SYS_GENERATOR_H
#define GRYPHGEN_SYS_GENERATOR_H

#include "../generator.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of gg_generator_vtable this header describes. */
#define GG_GENERATOR_VTABLE_VERSION 1

/** A generator backend. Slots are only ever appended. */
typedef struct gg_generator_vtable {
    uint32_t version; /**< GG_GENERATOR_VTABLE_VERSION */
    /**
     * Required. Answers a request (JSON as in gryphgen/generator.h) with a response JSON
     * allocated with gg_malloc() or gg_strdup(). GG_EEXHAUSTED when it has nothing more.
     */
    int (*generate)(void *self, const char *request_json, char **out_response_json);
    /** Optional. Releases self; called exactly once. */
    void (*destroy)(void *self);
    /** Optional. A static name; NULL gives "custom". */
    const char *name;
} gg_generator_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_GENERATOR_VTABLE_INIT { GG_GENERATOR_VTABLE_VERSION, NULL, NULL, NULL }

/**
 * Wraps a host's backend in a generator handle. Ownership of self passes at once: on failure
 * vtable->destroy(self) has already been called.
 */
GG_API int gg_generator_new_custom(gg_generator_t **out, const gg_generator_vtable *vtable,
                                   void *self);

#ifdef __cplusplus
}
#endif
#endif
