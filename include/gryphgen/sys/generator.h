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
#define GG_GENERATOR_VTABLE_VERSION 3 /* 2 added caps and the slots after it; 3 interrupt */

/**
 * Capability bits of gg_generator_vtable.caps (version 2). Each says the library may call
 * the slot of the same name; a bit set with its slot NULL is GG_EINVAL. The built-in
 * backends use the same bits, so a host's backend can do whatever a built-in one does.
 */
enum gg_generator_cap {
    /** feedback: the outcome of every judged attempt this generator wrote the code of */
    GG_GENERATOR_CAP_FEEDBACK = 1u << 0,
    /** attach_journal: the orchestrator offers its own database for the backend's records */
    GG_GENERATOR_CAP_JOURNAL = 1u << 1,
    /** permanent: after a failed generate, whether asking again could help */
    GG_GENERATOR_CAP_PERMANENT_ERRORS = 1u << 2,
    /** interrupt (vtable version 3): a generation in progress can be cut short */
    GG_GENERATOR_CAP_INTERRUPT = 1u << 3
};

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
    /* ---- version 2 ---- */
    /** GG_GENERATOR_CAP_* bits: which of the slots below the library calls (0: none). */
    uint32_t caps;
    /**
     * With GG_GENERATOR_CAP_FEEDBACK. The record of a finished, judged attempt whose code
     * this generator wrote (docs/tasks.md: "passed", "usage", "durations", and the "arm" its
     * response named), as JSON borrowed for the call. May run on any library thread,
     * concurrently with generate; must not block for long.
     */
    void (*feedback)(void *self, const char *record_json);
    /**
     * With GG_GENERATOR_CAP_JOURNAL. Called once by gg_orchestrator_new() with the path of
     * the orchestrator's SQLite database, before any generate: the backend may keep its own
     * tables there on a connection of its own (WAL; names that do not start with "gg_" or
     * clash with docs/tasks.md's tables). A failure is logged and the run goes on.
     */
    int (*attach_journal)(void *self, const char *db_path);
    /**
     * With GG_GENERATOR_CAP_PERMANENT_ERRORS. Called on the same thread right after generate
     * failed: 1 when that failure is permanent (a refused key, an unknown model: the attempt
     * is not retried), 0 when asking again may help.
     */
    int (*permanent)(void *self);
    /* ---- version 3 ---- */
    /**
     * With GG_GENERATOR_CAP_INTERRUPT. Asks every generate call in progress for the task
     * task_id (the request's "task"."task_id"; NULL: every call) to return soon with
     * GG_ECANCELLED; the library calls it when the task is cancelled or its budget ends
     * while its code is being written. A call that starts afterwards is not affected. May
     * run on any library thread, concurrently with generate; must not block. Returns 0 (also
     * when no call matched).
     */
    int (*interrupt)(void *self, const char *task_id);
} gg_generator_vtable;

/** Static initialiser: version set, every slot NULL. */
#define GG_GENERATOR_VTABLE_INIT \
    { GG_GENERATOR_VTABLE_VERSION, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL }

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
