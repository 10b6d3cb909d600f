/*
 * job_registry.h - the running jobs of an executor backend, so that gg_executor_interrupt()
 * can reach them: a mutex-protected list of slots, each a cancel flag and, for backends
 * whose jobs live elsewhere (a container), the job's id there. Internal.
 *
 * THREAD SAFETY: every function may be called from any thread; a slot belongs to the run
 * that registered it and must be unregistered before it goes out of scope.
 */
#ifndef GGI_JOB_REGISTRY_H
#define GGI_JOB_REGISTRY_H

#include <pthread.h>
#include <stddef.h>

#define GGI_JOB_ID_MAX 80

struct ggi_job_scope;

typedef struct ggi_job_slot {
    volatile int cancel;          /* set by ggi_job_registry_cancel_all or its scope */
    char id[GGI_JOB_ID_MAX];      /* the backend's id of the job, "" until set (locked) */
    struct ggi_job_slot *prev, *next;
    struct ggi_job_scope *scope;  /* the registering thread's scope, or NULL */
    struct ggi_job_slot *sprev, *snext; /* its jobs (under the scope's lock) */
} ggi_job_slot;

/*
 * A job scope: the jobs one thread runs while the scope is entered, on whatever executor
 * backend with a registry (process, container), so that one caller's jobs can be stopped
 * without touching the other callers' (gg_executor_interrupt stops every job): a worker's
 * slot enters its scope around an attempt and a hub's abort cancels it. A job registered
 * while its scope is cancelled is cancelled at once.
 */
typedef struct ggi_job_scope {
    pthread_mutex_t lock;
    int cancelled;
    ggi_job_slot *jobs;
} ggi_job_scope;

/** Starts a scope, not cancelled. GG_ENOMEM when the mutex cannot be made. */
int ggi_job_scope_init(ggi_job_scope *sc);
/** Releases a scope (no job may be in it, no thread in it). */
void ggi_job_scope_destroy(ggi_job_scope *sc);
/** Makes sc (NULL: none) the calling thread's scope: the jobs it registers join it. */
void ggi_job_scope_enter(ggi_job_scope *sc);
/** Cancels the scope's running jobs and those it registers until ggi_job_scope_reset. */
void ggi_job_scope_cancel(ggi_job_scope *sc);
/** Clears the scope's cancel (its jobs then registered run). */
void ggi_job_scope_reset(ggi_job_scope *sc);

typedef struct ggi_job_registry {
    pthread_mutex_t lock;
    ggi_job_slot *jobs;
} ggi_job_registry;

/** Starts an empty registry. GG_ENOMEM when the mutex cannot be made. */
int ggi_job_registry_init(ggi_job_registry *r);

/** Releases the registry (no job may be registered any more). */
void ggi_job_registry_destroy(ggi_job_registry *r);

/** Zeroes s and adds it to the running jobs. */
void ggi_job_register(ggi_job_registry *r, ggi_job_slot *s);

/** Removes s from the running jobs. */
void ggi_job_unregister(ggi_job_registry *r, ggi_job_slot *s);

/** Records the backend's id of the job (truncated to GGI_JOB_ID_MAX - 1 bytes). */
void ggi_job_set_id(ggi_job_registry *r, ggi_job_slot *s, const char *id);

/** 1 when the job was cancelled. */
int ggi_job_cancelled(const ggi_job_slot *s);

/**
 * Flags every running job cancelled. When ids is not NULL, *ids receives a malloc'd copy of
 * the ids that were set (NULL when none or out of memory) and the return value is their
 * count; else returns 0.
 */
size_t ggi_job_registry_cancel_all(ggi_job_registry *r, char (**ids)[GGI_JOB_ID_MAX]);

#endif
