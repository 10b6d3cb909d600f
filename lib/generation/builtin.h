/*
 * builtin.h - constructors of the generator backends that need nothing outside the task:
 * "replay" (the task's candidates, one per attempt) and "reference" (the task's canonical
 * solution). Each fills a vtable and its state the way a host's backend would be handed to
 * gg_generator_new_custom(). Internal.
 */
#ifndef GGI_GENERATION_BUILTIN_H
#define GGI_GENERATION_BUILTIN_H

#include "gryphgen/sys/generator.h"

/**
 * The replay backend: attempt n (1-based) answers with task.candidates[n-1]; GG_EEXHAUSTED
 * when the task has no candidate n (or none at all). Stateless, so *self_out is NULL and
 * generate is safe to call from any thread. Returns 0.
 */
int ggi_replay_generator_new(gg_generator_vtable *vt_out, void **self_out);

/**
 * The reference backend: attempt 1 answers with task.canonical_solution; GG_EEXHAUSTED when
 * the task has none, and for every later attempt (it would be the same code again).
 * Stateless like replay. Returns 0.
 */
int ggi_reference_generator_new(gg_generator_vtable *vt_out, void **self_out);

/**
 * Shared by the built-in backends: parses a request, checks that it holds a "task" object
 * and an "attempt" from 1 on, and returns the parsed request (*out_req, to be freed with
 * cJSON_Delete), the task object inside it, its task id (or "?") and the attempt number.
 */
struct cJSON;
int ggi_generator_read_request(const char *request_json, struct cJSON **out_req,
                               const struct cJSON **out_task, const char **out_task_id,
                               int *out_attempt);

/**
 * Builds the response {"code": code, "generator": name} in gg_malloc() memory.
 */
int ggi_generator_response(const char *code, const char *name, char **out_response_json);

#endif
