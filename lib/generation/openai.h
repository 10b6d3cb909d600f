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
 * "total_tokens"}} and fails with GG_EINVAL (malformed request), GG_ETIMEDOUT (the last
 * endpoint tried ran out of time), GG_ETOOBIG (code above max_output) or GG_EGENERATOR
 * (HTTP errors after retries and failover, a refused key, an unreadable response). No
 * message ever holds the API key.
 *
 * Returns 0, GG_EINVAL (no URL or model, a malformed URL, key, number or template; the
 * message names the field and its environment variable), GG_ENOTFOUND / GG_EIO (a key or
 * template file that cannot be read), GG_ESTORE (the journal GRYPHGEN_LLM_JOURNAL names
 * cannot be opened; journal.h) or GG_ENOMEM.
 */
int ggi_openai_generator_new(const gg_generator_options *opts, gg_generator_vtable *vt_out,
                             void **self_out);

#endif
