/*
 * gryphgen/generator.h - the Code Generator: turns a task (plus context and feedback of
 * earlier attempts) into code.
 *
 * Built-in backends: "replay" (attempt n returns the task's candidates[n-1]), "reference"
 * (returns the task's canonical_solution), "command:PROGRAM" (runs PROGRAM through /bin/sh
 * with the request JSON on stdin; its stdout is the code).
 *
 * A request and a response cross this API as JSON (docs/generator.md):
 *   request  {"task": {...normalised task...}, "attempt": n, "feedback": [...],
 *             "context": [...]}
 *   response {"code": "...", "generator": "name", "usage": {...}}
 *
 * THREAD SAFETY: gg_generator_generate() may be called concurrently from many threads on one
 * generator. gg_generator_destroy() must not race with other calls on the same generator.
 */
#ifndef GRYPHGEN_GENERATOR_H
#define GRYPHGEN_GENERATOR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A code generator: a built-in backend or a host's vtable (gryphgen/sys/generator.h). */
typedef struct gg_generator gg_generator_t;

/** Version of gg_generator_options this header describes. */
#define GG_GENERATOR_OPTIONS_VERSION 1

/** Options for gg_generator_new(). Fields are only ever appended. */
typedef struct gg_generator_options {
    uint32_t version;   /**< GG_GENERATOR_OPTIONS_VERSION */
    const char *spec;   /**< "replay" (default when NULL), "reference" or "command:PROGRAM" */
    double timeout_s;   /**< for "command": how long the program may take; 0: 60 s */
    size_t max_output;  /**< for "command": largest accepted code in bytes; 0: 1 MiB */
} gg_generator_options;

/** Static initialiser with defaults. */
#define GG_GENERATOR_OPTIONS_INIT { GG_GENERATOR_OPTIONS_VERSION, NULL, 0.0, 0 }

/** Fills *opts with defaults for the given version; GG_EVERSION for an unknown version. */
GG_API int gg_generator_options_init(gg_generator_options *opts, unsigned version);

/**
 * Creates a generator from opts (NULL: replay). GG_EINVAL names an unknown spec. On success
 * *out owns the generator (gg_generator_destroy()); on failure *out is NULL.
 */
GG_API int gg_generator_new(gg_generator_t **out, const gg_generator_options *opts);

/**
 * Asks for the code of one attempt. On success *out_response_json holds the response (free
 * with gg_free()). GG_EEXHAUSTED: the generator has nothing more to offer for this task;
 * GG_EINVAL: bad request; GG_EGENERATOR / GG_ETIMEDOUT: the generator failed.
 */
GG_API int gg_generator_generate(gg_generator_t *gen, const char *request_json,
                                 char **out_response_json);

/** The backend's name, such as "replay"; borrowed, valid while the generator lives. */
GG_API const char *gg_generator_name(const gg_generator_t *gen);

/** Destroys the generator and sets *pgen to NULL. Accepts NULL and a pointer to NULL. */
GG_API void gg_generator_destroy(gg_generator_t **pgen);

#ifdef __cplusplus
}
#endif
#endif
