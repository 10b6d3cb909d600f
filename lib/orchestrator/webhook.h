/*
 * webhook.h - alerts as JSON POSTs to operators' webhooks (gg_orchestrator_options.webhooks,
 * `gryphgen serve --webhook URL`): a task that failed or ended in error (task.failed), a
 * spent budget (budget.exhausted), a lost or quarantined node (node.lost, node.quarantined),
 * and a queue that makes no progress (queue.stalled; queue.resumed when it moves again).
 * docs/alerts.md has the payloads.
 *
 * The orchestrator's events are handed in on the scheduler thread (ggi_webhook_event never
 * blocks: it only appends to a bounded queue); one thread of the webhook's own sends them,
 * retrying a failed POST with exponential backoff, and drops an alert (counted) when the
 * queue is full or a receiver stays down through every retry.
 *
 * THREAD SAFETY: ggi_webhook_event and ggi_webhook_get_stats may be called from any thread;
 * ggi_webhook_destroy must not race with them.
 */
#ifndef GGI_WEBHOOK_H
#define GGI_WEBHOOK_H

#include <stdint.h>

#include "../core/ggi.h"

/** Webhook URLs at most, alerts waiting at most (more are dropped), and a URL's length. */
#define GGI_WEBHOOK_MAX_URLS 16
#define GGI_WEBHOOK_QUEUE_MAX 1024
#define GGI_WEBHOOK_URL_MAX 2048

typedef struct ggi_webhook ggi_webhook;

/** Counters since the webhook started; what /metrics and `status` show. */
typedef struct ggi_webhook_stats {
    uint64_t alerts;   /* alerts raised (each goes to every URL) */
    uint64_t sent;     /* deliveries a receiver accepted (2xx) */
    uint64_t retried;  /* POSTs tried again after a failure */
    uint64_t dropped;  /* deliveries given up: queue full, retries spent, refused (4xx) */
    uint64_t queued;   /* alerts waiting now */
} ggi_webhook_stats;

/** How many tasks wait to be dispatched now (< 0: unknown); called on the webhook's thread. */
typedef long long (*ggi_webhook_backlog_fn)(void *user);

typedef struct ggi_webhook_options {
    const char *const *urls;   /* NULL-terminated; http:// or https:// only */
    double stall_s;            /* queue.stalled after this long without progress while tasks
                                  wait; 0: GGI_WEBHOOK_STALL_S; < 0: never */
    ggi_webhook_backlog_fn backlog; /* NULL: no queue.stalled */
    void *backlog_user;
    int attempts;              /* POSTs of one delivery at most; 0: 5 */
    double backoff_ms;         /* first retry's wait, doubled each time; 0: 500 */
    unsigned queue_max;        /* 0: GGI_WEBHOOK_QUEUE_MAX */
    double timeout_s;          /* one POST's limit; 0: 10 */
    ggi_logger log;            /* deliveries given up (warn) */
} ggi_webhook_options;

#define GGI_WEBHOOK_STALL_S 300.0

/**
 * Checks the URLs (GG_EINVAL naming one that is not http(s), too long or too many) and
 * starts the sending thread. *out is NULL on failure.
 */
int ggi_webhook_new(ggi_webhook **out, const ggi_webhook_options *opts);

/** Hands in one orchestrator event (docs/events.md); raises an alert when it calls for one. */
void ggi_webhook_event(ggi_webhook *w, const char *event_json);

/** Raises an alert of the given type with the fields of data (borrowed; may be NULL). */
void ggi_webhook_alert(ggi_webhook *w, const char *type, const cJSON *data);

void ggi_webhook_get_stats(ggi_webhook *w, ggi_webhook_stats *out);

/**
 * Stops the thread: alerts still queued get one POST each within a few seconds, the rest
 * are dropped (counted). Accepts NULL; sets *pw to NULL.
 */
void ggi_webhook_destroy(ggi_webhook **pw);

#endif
