/*
 * openai.h - the "openai" generator backend: a client of OpenAI-compatible chat-completions
 * endpoints (llama.cpp's server, Ollama, vLLM, hosted APIs) over libcurl. Internal;
 * gg_generator_new() calls the constructor for the spec "openai". Configuration, prompts,
 * retries and failover are described in docs/generator.md ("openai").
 *
 * THREAD SAFETY: generate may be called concurrently; each call uses its own curl handle,
 * and the shared endpoint health is guarded by a mutex.
 */
#ifndef GGI_OPENAI_H
#define GGI_OPENAI_H

#include <cjson/cJSON.h>

#include "gryphgen/sys/generator.h"

/** Defaults used when the options leave a field unset. */
#define GGI_OPENAI_DEFAULT_TIMEOUT_S 120.0
#define GGI_OPENAI_DEFAULT_CONNECT_TIMEOUT_S 10.0
#define GGI_OPENAI_DEFAULT_TEMPERATURE 0.2
#define GGI_OPENAI_DEFAULT_RETRIES 2
/** Largest response body accepted from an endpoint. */
#define GGI_OPENAI_MAX_BODY (8u << 20)
/** Most endpoints in one URL list. */
#define GGI_OPENAI_MAX_ENDPOINTS 16

/**
 * Creates an openai backend from opts (fields a NULL string or an unset number leaves open
 * are read from the environment) and fills *vt_out (generate, destroy, name "openai") and
 * *self_out, which the caller owns and releases through vt_out->destroy.
 *
 * generate answers {"code", "generator": "openai", "model", "endpoint" (the URL without
 * credentials), "finish_reason", "usage": {"prompt_tokens", "completion_tokens",
 * "total_tokens"}, "arm": {"index", "endpoint", "endpoint_index", "model", "temperature"
 * [, "strategy": true]}} (the arm the strategy bandit chose; strategy.h) and fails with
 * GG_EINVAL (malformed request), GG_ETIMEDOUT (the last endpoint tried ran out of time),
 * GG_ETOOBIG (code above max_output) or GG_EGENERATOR (HTTP errors after retries and
 * failover, a refused key, an unreadable response); a refusal that asking again would not
 * change (HTTP 4xx other than 408 and 429) is also marked permanent (hooks.h). No message
 * ever holds the API key.
 *
 * Returns 0, GG_EINVAL (no URL or model, a malformed URL, key, number, template or arm list;
 * the message names the field and its environment variable), GG_ENOTFOUND / GG_EIO (a key or
 * template file that cannot be read), GG_ESTORE (the journal GRYPHGEN_LLM_JOURNAL names
 * cannot be opened; journal.h) or GG_ENOMEM.
 */
int ggi_openai_generator_new(const gg_generator_options *opts, gg_generator_vtable *vt_out,
                             void **self_out);

/**
 * Teaches the strategy bandit the outcome of an attempt whose code this backend wrote (its
 * feedback slot, GG_GENERATOR_CAP_FEEDBACK): the record's "arm" names the arm, "passed" the
 * reward, "usage" and "durations.generate_ms" the cost. Records without a judged outcome,
 * answers from the journal and answers whose temperature the Task Monitor's strategy set are
 * ignored. The update is added to the journal's llm_arms table when there is a journal.
 */
void ggi_openai_feedback(void *self, const cJSON *record);

/**
 * Opens the journal at db_path when the backend has none yet, and merges the bandit's
 * statistics with those recorded there (its attach_journal slot, GG_GENERATOR_CAP_JOURNAL). 0,
 * GG_ESTORE, GG_ENOMEM.
 */
int ggi_openai_attach_journal(void *self, const char *db_path);

#endif
