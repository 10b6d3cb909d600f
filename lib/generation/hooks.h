/*
 * hooks.h - internal calls the orchestrator makes on a generator handle, beyond the public
 * gg_generator_* API: the outcome of an attempt fed back to the backend that wrote its code
 * (the "openai" backend's strategy bandit learns from it), the journal attached to the
 * orchestrator's own database, and whether the thread's last generator failure is
 * permanent (a refused key, a malformed request: asking again cannot help). A host's
 * vtable generator gets none of these: no public vtable slot exists for them. Internal.
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
 * the "arm" the generator's response named) to the backend that generated its code. Only
 * judged attempts (with a "passed" boolean) teach anything; others, answers replayed from
 * the journal and other backends are ignored. Never fails.
 */
void ggi_generator_feedback(gg_generator_t *gen, const cJSON *record);

/**
 * Gives an "openai" generator that has no journal of its own (GRYPHGEN_LLM_JOURNAL unset)
 * its journal and bandit state in the SQLite database at db_path (tables llm_journal and
 * llm_arms, on a connection of its own, WAL). 0 also when the generator is of another kind
 * or already has a journal; GG_ESTORE or GG_ENOMEM when the database cannot be used.
 */
int ggi_generator_attach_journal(gg_generator_t *gen, const char *db_path);

/**
 * 1 when the last gg_generator_generate() of this thread failed for good (HTTP 400, 401,
 * 403, 404 and other refusals that asking again would not change), else 0. Reset by every
 * gg_generator_generate().
 */
int ggi_generator_permanent(void);

/** Used by backends: marks the current failure of this thread as permanent (or not). */
void ggi_generator_set_permanent(int permanent);

#endif
