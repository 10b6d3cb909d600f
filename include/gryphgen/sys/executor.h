/*
 * gryphgen/sys/executor.h - the executor vtable, for hosts that bring their own executor.
 *
 * A host fills a gg_executor_vtable (start from GG_EXECUTOR_VTABLE_INIT), and hands it with
 * its own state pointer to gg_executor_new_custom(). The library copies the vtable, calls
 * only the slots the vtable's version has, and calls destroy exactly once, from
 * gg_executor_destroy() or when gg_executor_new_custom() itself fails after taking ownership.
 *
 * THREAD SAFETY: run may be called concurrently from several library threads; interrupt may
 * be called from any thread while runs are in progress.
 */
#ifndef GRYPHGEN_SYS_EXECUTOR_H
#define GRYPHGEN_SYS_EXECUTOR_H

#include "../executor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of gg_executor_vtable this header describes. */
#define GG_EXECUTOR_VTABLE_VERSION 1

/** An executor backend. Slots are only ever appended. */
typedef struct gg_executor_vtable {
    uint32_t version; /**< GG_EXECUTOR_VTABLE_VERSION */
    /**
     * Required. Runs a job (request JSON as in gryphgen/executor.h) and stores the result
     * JSON, allocated with gg_malloc() or gg_strdup(), in *out_result_json. Returns 0 or a
     * negative GG_E* code; on failure it may set a message with gg_error_set().
     */
    int (*run)(void *self, const char *request_json, char **out_result_json);
    /** Optional. Kills every job in progress; their run calls return GG_ECANCELLED. */
    int (*interrupt)(void *self);
    /** Optional. Releases self; called exactly once. */
    void (*destroy)(void *self);
    /** Optional. A static name such as "slurm"; NULL gives "custom". */
    const char *name;
} gg_executor_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_EXECUTOR_VTABLE_INIT { GG_EXECUTOR_VTABLE_VERSION, NULL, NULL, NULL, NULL }

/**
 * Wraps a host's backend in an executor handle. Ownership of self passes to the library at
 * once: if this call fails, vtable->destroy(self) has already been called. GG_EVERSION for a
 * vtable version this library does not know, GG_EINVAL when run is NULL.
 */
GG_API int gg_executor_new_custom(gg_executor_t **out, const gg_executor_vtable *vtable,
                                  void *self);

#ifdef __cplusplus
}
#endif
#endif
