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
#define GG_EXECUTOR_VTABLE_VERSION 2 /* 2 added caps */

/**
 * Capability bits of gg_executor_vtable.caps (version 2): what the backend does, which the
 * library would otherwise not know. The built-in backends set the same bits. A version 1
 * vtable counts as GG_EXECUTOR_CAP_ISOLATION_RLIMITS.
 */
enum gg_executor_cap {
    /** jobs run under resource limits (the isolation level "rlimits") */
    GG_EXECUTOR_CAP_ISOLATION_RLIMITS = 1u << 0,
    /** jobs run in their own namespaces (the isolation level "namespaces") */
    GG_EXECUTOR_CAP_ISOLATION_NAMESPACES = 1u << 1,
    /** jobs run in a container (the isolation level "container") */
    GG_EXECUTOR_CAP_ISOLATION_CONTAINER = 1u << 2,
    /** on a host running as root, jobs run as an unprivileged user: an attempt's copy of a
     *  workspace is handed to that user before the job runs (docs/tasks.md) */
    GG_EXECUTOR_CAP_UNPRIVILEGED_JOBS = 1u << 3,
    /** a benchmark backend: attempts pass at once, without generating or running code, and
     *  a worker with it takes tasks of every language */
    GG_EXECUTOR_CAP_SKIP_ATTEMPTS = 1u << 4,
    /** the backend takes a request's "overlay" field beside "workdir" (docs/executor.md):
     *  the job runs in the merged view of an overlay this process mounted, so workspace
     *  attempts get overlay copies instead of full ones (docs/tasks.md) */
    GG_EXECUTOR_CAP_OVERLAY_WORKDIR = 1u << 5
};

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
    /* ---- version 2 ---- */
    /** GG_EXECUTOR_CAP_* bits (0: isolation "none" only, nothing special). */
    uint32_t caps;
} gg_executor_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_EXECUTOR_VTABLE_INIT { GG_EXECUTOR_VTABLE_VERSION, NULL, NULL, NULL, NULL, 0 }

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
