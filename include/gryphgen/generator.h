/*
 * gryphgen/generator.h - the Code Generator: turns a task (plus context and feedback of
 * earlier attempts) into code.
 *
 * Built-in backends: "replay" (attempt n returns the task's candidates[n-1]), "reference"
 * (returns the task's canonical_solution), "command:PROGRAM" (runs PROGRAM through /bin/sh
 * with the request JSON on stdin; its stdout is the code), "openai" (an OpenAI-compatible
 * chat-completions endpoint: llama.cpp's server, Ollama, vLLM or a hosted API).
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
#define GG_GENERATOR_OPTIONS_VERSION 2 /* 2 added arms and the fields after it */

/** Options for gg_generator_new(). Fields are only ever appended. */
typedef struct gg_generator_options {
    uint32_t version;   /**< GG_GENERATOR_OPTIONS_VERSION */
    const char *spec;   /**< "replay" (default when NULL), "reference", "command:PROGRAM"
                             or "openai" */
    /** for "command": how long the program may take (0: 60 s); for "openai": how long one
     * HTTP exchange may take in all (0: 120 s) */
    double timeout_s;
    size_t max_output;  /**< largest accepted code in bytes; 0: 1 MiB */
    /* The fields below are read by the "openai" backend only. A NULL string falls back to
     * the environment (docs/generator.md); the strings are copied by gg_generator_new(). */
    /** base URL such as "http://127.0.0.1:11434/v1", or several separated by commas (a dead
     * one fails over to the next); NULL: $GRYPHGEN_LLM_URL, else $OPENAI_BASE_URL */
    const char *url;
    const char *model;        /**< NULL: $GRYPHGEN_LLM_MODEL (required one way or other) */
    /** bearer token, sent only in the Authorization header; NULL: $GRYPHGEN_LLM_API_KEY,
     * else the file api_key_file, else $OPENAI_API_KEY; none: no header */
    const char *api_key;
    const char *api_key_file; /**< file holding the key; NULL: $GRYPHGEN_LLM_API_KEY_FILE */
    double temperature;       /**< negative or NaN: $GRYPHGEN_LLM_TEMPERATURE, else 0.2 */
    int max_tokens;           /**< completion token limit; 0: not sent */
    long long seed;           /**< sent when >= 0; negative (default): not sent */
    double connect_timeout_s; /**< how long connecting may take; 0: 10 s */
    int max_retries;          /**< retries per endpoint on 429, 5xx, connection errors;
                                   0: 2; negative: none */
    /** prompt template with {{placeholders}}; NULL: $GRYPHGEN_LLM_PROMPT_FILE, else the
     * built-in template */
    const char *prompt_template_file;
    /* ---- version 2: settings that were the environment's only (docs/configuration.md) */
    /** explicit arms, "N MODEL [T,T...]; ..." (N: the 1-based endpoint); NULL:
     * $GRYPHGEN_LLM_ARMS, else every endpoint x model x temperature */
    const char *arms;
    /** SQLite file for the journal and the bandit's state; NULL: $GRYPHGEN_LLM_JOURNAL,
     * else the orchestrator's database when it offers one */
    const char *journal;
    /** seed of the bandit's draws (0: from the clock); negative (default):
     * $GRYPHGEN_LLM_BANDIT_SEED, else from the clock */
    long long bandit_seed;
    /** tokens a second of latency costs in the bandit; negative (default):
     * $GRYPHGEN_LLM_COST_PER_SECOND, else 0 */
    double cost_per_second;
} gg_generator_options;

/** Static initialiser with defaults. */
#define GG_GENERATOR_OPTIONS_INIT \
    { GG_GENERATOR_OPTIONS_VERSION, NULL, 0.0, 0, NULL, NULL, NULL, NULL, -1.0, 0, -1, 0.0, \
      0, NULL, NULL, NULL, -1, -1.0 }

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
