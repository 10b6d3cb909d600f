/*
 * observe.c - what watches and serves an orchestrator beside the grid protocol, wired in
 * from its options (version 3): the webhook alerts (webhook.h), fed by a tee in front of the
 * host's event callback, with the queue's backlog read from the database; and the REQ front
 * door (front_door.h). Kept apart so the scheduler only knows an event callback.
 */
#include <string.h>

#include "front_door.h"
#include "orq.h"
#include "webhook.h"

/* Runs on the scheduler thread: the webhook queues (never blocks), then the host's callback. */
static void tee_event(void *user, const char *event_json)
{
    struct gg_orchestrator *o = user;
    ggi_webhook_event(o->webhook, event_json);
    if (o->host_event_fn)
        o->host_event_fn(o->host_event_user, event_json);
}

/* Tasks waiting for their first dispatch (the webhook's thread asks once a second). */
static long long backlog(void *user)
{
    struct gg_orchestrator *o = user;
    ggi_store_counts c;
    pthread_mutex_lock(&o->api_mu);
    int rc = ggi_store_counts_get(o->api_store, &c);
    pthread_mutex_unlock(&o->api_mu);
    return rc == GG_OK ? (long long)c.queued : -1;
}

int ggi_orq_observe_start_alerts(struct gg_orchestrator *o, const gg_orchestrator_options *op)
{
    if (!op->webhooks || !op->webhooks[0])
        return GG_OK;
    ggi_webhook_options wo;
    memset(&wo, 0, sizeof wo);
    wo.urls = op->webhooks;
    wo.stall_s = op->stall_alert_s;
    wo.backlog = backlog;
    wo.backlog_user = o;
    wo.log = o->log;
    int rc = ggi_webhook_new(&o->webhook, &wo);
    if (rc != GG_OK)
        return rc;
    o->host_event_fn = o->event_fn;
    o->host_event_user = o->event_user;
    o->event_fn = tee_event;
    o->event_user = o;
    return GG_OK;
}

int ggi_orq_observe_start_front_door(struct gg_orchestrator *o,
                                     const gg_orchestrator_options *op)
{
    if (!op->front_door || !*op->front_door)
        return GG_OK;
    ggi_front_door_options fo;
    memset(&fo, 0, sizeof fo);
    fo.endpoint = op->front_door;
    fo.curve_key_file = op->curve_key_file;
    fo.authorized_keys_file = op->authorized_keys_file;
    fo.insecure = op->insecure;
    fo.orch = o;
    fo.index = op->retriever;
    fo.timeout_s = op->front_door_timeout_s;
    fo.log = o->log;
    return ggi_front_door_new(&o->front_door, &fo);
}

void ggi_orq_observe_stop_front_door(struct gg_orchestrator *o)
{
    ggi_front_door_destroy(&o->front_door);
}

void ggi_orq_observe_stop_alerts(struct gg_orchestrator *o)
{
    ggi_webhook_destroy(&o->webhook);
}

void ggi_orchestrator_webhook_stats(struct gg_orchestrator *o, ggi_webhook_stats *out)
{
    ggi_webhook_get_stats(o ? o->webhook : NULL, out);
}

void ggi_orq_observe_status(struct gg_orchestrator *o, cJSON *status)
{
    if (!o->webhook)
        return;
    ggi_webhook_stats st;
    ggi_webhook_get_stats(o->webhook, &st);
    cJSON *w = cJSON_AddObjectToObject(status, "webhooks");
    if (!w)
        return;
    cJSON_AddNumberToObject(w, "alerts", (double)st.alerts);
    cJSON_AddNumberToObject(w, "sent", (double)st.sent);
    cJSON_AddNumberToObject(w, "retried", (double)st.retried);
    cJSON_AddNumberToObject(w, "dropped", (double)st.dropped);
    cJSON_AddNumberToObject(w, "queued", (double)st.queued);
}
