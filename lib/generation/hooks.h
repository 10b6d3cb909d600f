/*
 * hooks.h - internal calls the orchestrator makes on a generator handle, beyond the public
 * gg_generator_* API: the outcome of an attempt fed back to the backend that wrote its code
 * (the "openai" backend's strategy bandit learns from it), the journal attached to the
 * orchestrator's own database, and whether the thread's last generator failure is
 * permanent (a refused key, a malformed request: asking again cannot help). Each goes to
 * the backend through the public vtable's version 2 slots when its capability bit says so
 * (gryphgen/sys/generator.h, GG_GENERATOR_CAP_*), for built-in and host backends alike.
 * Internal.
 *
 * THREAD SAFETY: feedback and permanent may be called from any thread at any time;
 * attach_journal too, but it is meant for set-up, before the generator is busy.
 */
#ifndef GGI_GENERATION_HOOKS_H
#define GGI_GENERATION_HOOKS_H

#include <cjson/cJSON.h>

#include "gryphgen/generator.h"

/**
 * Hands the record of a finished attempt (docs/tasks.md: "passed", "usage", "durations" and
 * the "arm" the generator's response named) to the backend that generated its code, as
 * JSON text, when it has GG_GENERATOR_CAP_FEEDBACK. Never fails.
 */
void ggi_generator_feedback(gg_generator_t *gen, const cJSON *record);

/**
 * Offers the SQLite database at db_path to a generator with GG_GENERATOR_CAP_JOURNAL (the
 * "openai" backend keeps its journal and bandit state there, tables llm_journal and
 * llm_arms, unless GRYPHGEN_LLM_JOURNAL gave it one). 0 also for a generator without the
 * bit; otherwise what its attach_journal slot returns.
 */
int ggi_generator_attach_journal(gg_generator_t *gen, const char *db_path);

/**
 * 1 when the last gg_generator_generate() of this thread failed for good (HTTP 400, 401,
 * 403, 404 and other refusals that asking again would not change), else 0. Reset by every
 * gg_generator_generate().
 */
int ggi_generator_permanent(void);

/**
 * Asks a generator with GG_GENERATOR_CAP_INTERRUPT to cut short the generate calls in
 * progress for task_id (NULL: all of them). Returns 1 when the generator was asked, 0 when it
 * cannot be interrupted (its generation then runs to its own end). Any thread; never blocks.
 */
int ggi_generator_interrupt(gg_generator_t *gen, const char *task_id);

/** Used by generator.c: marks the current failure of this thread as permanent (or not). */
void ggi_generator_set_permanent(int permanent);

#endif
