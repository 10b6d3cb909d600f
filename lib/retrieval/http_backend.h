/*
 * http_backend.h - the "http" retriever backend: a generic JSON search service reached over
 * libcurl. A URL template (and for POST a body template) carries the query; JSON pointers
 * (RFC 6901) find the result list and each result's id, text, score and source in the reply.
 * Timeouts, retries with backoff on 5xx, 429 and connection failures, a reply size cap; a
 * bearer token from an environment variable or a file travels only in the Authorization
 * header and is scrubbed from every error message.
 *
 * THREAD SAFETY: search and feedback may run concurrently (one curl handle per request).
 */
#ifndef GGI_HTTP_BACKEND_H
#define GGI_HTTP_BACKEND_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "gryphgen/sys/retriever.h"

/** Default body of a POST search when the options name none. */
#define GGI_HTTP_DEFAULT_BODY "{\"query\":\"{query}\",\"k\":{k}}"

/** Fills vt and *self with an http backend configured from o (gg_retriever_new()). */
int ggi_http_retriever_new(const gg_retriever_options *o, gg_retriever_vtable *vt,
                           void **self);

/**
 * Resolves an RFC 6901 JSON pointer ("" is the whole document, "/a/0/b~1c" walks objects
 * and arrays) in root; NULL when it leads nowhere or is malformed. Borrowed.
 */
const cJSON *ggi_json_pointer(const cJSON *root, const char *pointer);

#endif
