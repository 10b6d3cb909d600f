/*
 * citations.h - the references a model says it relied on: the "CITED: id, id" line the
 * openai backend's prompt asks for after the code (docs/generator.md "Citations"), taken out
 * of the reply (so it never reaches the code) and kept only for ids of the request's context.
 *
 * THREAD SAFETY: pure functions; any thread.
 */
#ifndef GGI_CITATIONS_H
#define GGI_CITATIONS_H

#include <cjson/cJSON.h>

/** Ids one reply may cite at most (the rest are ignored). */
#define GGI_CITATIONS_MAX 16
/** Citation lines of one reply read at most, and words of one line. */
#define GGI_CITATIONS_MAX_LINES 8
#define GGI_CITATIONS_MAX_WORDS 64
/** Longest id a citation may name. */
#define GGI_CITATIONS_MAX_ID 64

/**
 * Splits a model's reply: *out_text (malloc'd) is the reply without its citation lines (a
 * line that, after blanks and comment or markup marks (# / * - > ` _), starts with "CITED:" in any
 * case, also inside a code block), *out_cited (cJSON_Delete it) the ids those lines name that
 * are ids of context (the request's "context": objects with an "id"; NULL: none is), each
 * once, in order, at most GGI_CITATIONS_MAX. Ids are separated by commas, semicolons or
 * blanks and may be wrapped in "---", quotes, backticks or brackets. GG_ENOMEM.
 */
int ggi_citations_take(const char *reply, const cJSON *context, char **out_text,
                       cJSON **out_cited);

#endif
