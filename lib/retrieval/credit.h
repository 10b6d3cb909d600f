/*
 * credit.h - credit assignment for retrieval learning (SYMORG, docs/retrieval.md "Credit
 * assignment"): which references of an attempt's context get how much of its outcome (by
 * position, or by the generator's citations), which of them led a failed attempt (to be
 * demoted by the next one), the sanitising of citations that come from outside, and the
 * "kind" key of a task that per-kind usefulness is conditioned on.
 *
 * THREAD SAFETY: every function is pure (no shared state) and may be called from any thread.
 */
#ifndef GGI_CREDIT_H
#define GGI_CREDIT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/** Ratio of the position weights: the reference at position i (from 0) gets
 *  GGI_CREDIT_DECAY^i of an outcome when the generator cited nothing. */
#define GGI_CREDIT_DECAY (1.0 / 3.0)
/** Share of an outcome an uncited reference gets when the generator cited some. */
#define GGI_CREDIT_UNCITED 0.0
/** Citations kept of one answer at most (the rest are ignored). */
#define GGI_CREDIT_MAX_CITED 16
/** Ids a job asks its retrieval to demote at most. */
#define GGI_CREDIT_MAX_DEMOTE 16
/** Longest id a citation or a demotion may name. */
#define GGI_CREDIT_MAX_ID 64
/** Size of a kind key buffer: "LANGUAGE:" (at most 32 bytes) and 16 hex digits. */
#define GGI_CREDIT_KIND_MAX 64

/**
 * The kind key of a task (per-kind usefulness): "LANGUAGE:HASH", HASH the 16 hex digits of
 * the FNV-1a hash of the sorted, distinct salient words of text (letters only, lowered,
 * at least 3 letters, stop words dropped, the first 32 distinct ones). Numbers and
 * punctuation do not count, so "Return 3 plus 4." and "Return 5 plus 9." are one kind.
 * language may be NULL or "" ("any"). Text without a salient word gives "LANGUAGE:-".
 */
void ggi_credit_kind(const char *text, const char *language, char out[GGI_CREDIT_KIND_MAX]);

/**
 * The share of an attempt's outcome each of its n context references gets, in weights[0 ..
 * n): with no usable citation (cited NULL, empty, or naming nothing of ids) the position
 * weights GGI_CREDIT_DECAY^i; with citations 1 for each cited reference and
 * GGI_CREDIT_UNCITED for the others. ids is the context in order (cJSON strings).
 */
void ggi_credit_weights(const cJSON *ids, const cJSON *cited, double *weights, int n);

/**
 * The references that led an attempt: those of ids it cited (when any is in ids), else
 * the first of ids. Appended (as new strings, not repeated) to out, which holds at most
 * GGI_CREDIT_MAX_DEMOTE. Returns 0 or GG_ENOMEM.
 */
int ggi_credit_leads(const cJSON *ids, const cJSON *cited, cJSON *out);

/** Appends id to out unless it is not an id (ggi_credit_id_ok), out already holds it or
 *  holds GGI_CREDIT_MAX_DEMOTE; out may be NULL (nothing happens). Returns 0 or GG_ENOMEM. */
int ggi_credit_demote_add(cJSON *out, const char *id);

/**
 * The citations of a generator's response that count: strings of cited (any JSON; anything
 * but an array gives none) that name an id of context (an array of result objects with an
 * "id"), each once, at most GGI_CREDIT_MAX_CITED, in the order cited. A new array in *out
 * (possibly empty); GG_ENOMEM.
 */
int ggi_credit_cited(const cJSON *cited, const cJSON *context, cJSON **out);

/**
 * Moves the results of context (an array of result objects with "id") whose id is in demote
 * (strings, at most GGI_CREDIT_MAX_DEMOTE read) to its end, keeping the order within both
 * groups, and appends their ids to demoted (when not NULL). Returns 0 or GG_ENOMEM.
 */
int ggi_credit_demote(cJSON *context, const cJSON *demote, cJSON *demoted);

/** Entries of an id list or a citation list that are read at most (a hostile record's longer
 *  lists are read only so far). */
#define GGI_CREDIT_SCAN 256

/** Whether s may be a kind key: 1 to GGI_CREDIT_KIND_MAX - 1 bytes of letters, digits and
 *  "_-.:+". */
int ggi_credit_kind_ok(const char *s);

/** Whether s is an id a citation or a demotion may name: 1 to GGI_CREDIT_MAX_ID bytes of
 *  letters, digits and "_-.:/". */
int ggi_credit_id_ok(const char *s);

#endif
