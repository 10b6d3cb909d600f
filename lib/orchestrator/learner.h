/*
 * learner.h - learning from ended tasks off the scheduler thread (SYMORG): a thread with a
 * bounded queue of task results that credits or debits each attempt's retrieved chunks
 * (gg_retriever_feedback) and indexes passing solutions (gg_retriever_add), so a slow
 * retriever (an http backend's feedback POST, a busy database) never holds up the scheduler.
 *
 * THREAD SAFETY: ggi_learner_push() may be called from any thread; ggi_learner_destroy() must
 * not race with it. The retriever must outlive the learner.
 */
#ifndef GGI_LEARNER_H
#define GGI_LEARNER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "gryphgen/retriever.h"
#include "../core/ggi.h"

/** Results the scheduler's learner holds at most; when full the oldest is dropped. */
#define GGI_LEARNER_QUEUE_MAX 1024

/** Context ids of one attempt that feedback is sent for at most (a record with more did not
 *  come from this library's attempt, which retrieves a few). */
#define GGI_LEARN_MAX_IDS 100

/** Bytes of a task's prompt put at the head of its indexed solution at most. */
#define GGI_LEARN_PROMPT_MAX 4000

/** How long (ms) shutdown keeps learning from what is queued (plus the call in progress). */
#define GGI_LEARNER_DRAIN_MS 2000

typedef struct ggi_learner ggi_learner;

/**
 * Starts a learner for retriever r (borrowed), logging to log (borrowed, may be NULL), with a
 * queue of max_queue results (1 to 1,000,000). When r is NULL or the "none" backend there is
 * nothing to learn: *out is NULL and the result GG_OK (every function accepts a NULL learner).
 */
int ggi_learner_new(gg_retriever_t *r, const ggi_logger *log, size_t max_queue,
                    ggi_learner **out);

/**
 * Queues a task's result JSON (as the scheduler records it: task_id, status, code, history
 * with each attempt's passed, language and context_ids); takes ownership of res. Never
 * blocks beyond a short lock: when the queue is full the oldest result is dropped, counted
 * and warned about. A NULL learner just frees res.
 */
void ggi_learner_push(ggi_learner *l, cJSON *res);

/** Results dropped so far (queue full, or left at shutdown). */
size_t ggi_learner_dropped(ggi_learner *l);

/** Results learnt from so far. */
size_t ggi_learner_done(ggi_learner *l);

/**
 * Stops the learner: keeps learning from what is queued for up to drain_ms (a call already
 * in progress is waited for), drops the rest with a counted warning, joins the thread, frees
 * it and sets *pl to NULL. Accepts NULL and a pointer to NULL.
 */
void ggi_learner_destroy(ggi_learner **pl, double drain_ms);

/**
 * What the learner does with one result, synchronously: for a "passed" or "failed" task,
 * feedback for every attempt that used context (passed or not), each id with its share of
 * the outcome ("weights": by position, or by the attempt's "cited", credit.h) and the
 * attempt's "context_kind"; then a passing task's prompt (from the result's "task_spec", the
 * task's JSON text, when the scheduler put it there) and code added as a "solution" document
 * with source "task:<id>", "task_id" and "task_kind". Failures are logged as warnings;
 * GG_EUNSUPPORTED from a backend is nothing to report.
 */
void ggi_learn_from_result(gg_retriever_t *r, const ggi_logger *log, const cJSON *res);

#endif
