/*
 * sched_events.c - events: built, stored and handed to the host's callback and watchers.
 *
 * Cut here because events are the scheduler's one output with their own audience (the host's
 * event callback and the clients that watch), their own storage rule (a task's course is not
 * stored as rows: docs/events.md) and their own cost rule (built only when someone hears
 * them). The concerns that have news call event_new and emit; a watch request lands here too.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

/* Adds a number of milliseconds (or seconds) with 3 decimals, printed from integers: the
 * general double printer costs more than everything else in a result or an event. */
static void add_fixed3(cJSON *o, const char *key, double v)
{
    if (!isfinite(v) || fabs(v) >= 9e15 / 1000) {
        cJSON_AddNumberToObject(o, key, isfinite(v) ? v : 0);
        return;
    }
    long long k = llround(v * 1000.0);
    char buf[48];
    snprintf(buf, sizeof buf, "%s%lld.%03lld", k < 0 ? "-" : "", llabs(k) / 1000, llabs(k) % 1000);
    cJSON_AddRawToObject(o, key, buf);
}

void ggi_sched_count_watchers(sched *s)
{
    int n = 0;
    uint32_t all = 0;
    for (client *c = s->clients; c; c = c->next) {
        n += c->watching != 0;
        all |= c->watching ? c->watch_mask : 0;
    }
    s->n_watching = n;
    s->watch_union = all;
    ggi_sched_summary_update(s);
}

/* Whether anyone hears events as they happen (the host's callback or a watching client). */
int ggi_sched_events_heard(const sched *s)
{
    return s->o->event_fn != NULL || s->n_watching > 0;
}

int ggi_sched_event_wanted(const sched *s, const char *type)
{
    return s->o->event_fn != NULL || (s->watch_union & ggi_event_type_bit(type)) != 0;
}

/* The events of a task's course (task.started, attempt.started, job.dispatched,
 * attempt.finished, task.finished) are not stored as rows: the tasks and attempts tables hold
 * the same facts (docs/events.md). They are built only when someone hears them. */
static int event_stored(const char *type)
{
    static const char *const course[] = { "task.started", "attempt.started", "job.dispatched",
                                          "attempt.finished", "task.finished" };
    for (size_t i = 0; type && i < sizeof course / sizeof course[0]; i++)
        if (strcmp(type, course[i]) == 0)
            return 0;
    return 1;
}

/* Records an event (in the open transaction) and queues it for the host and watchers. */
void ggi_sched_emit(sched *s, int64_t seq, cJSON *ev)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
    int stored = event_stored(type);
    uint32_t bit = ggi_event_type_bit(type);
    if (!ev || (!stored && !ggi_sched_event_wanted(s, type))) {
        cJSON_Delete(ev);
        return;
    }
    const char *text = NULL;
    if ((stored || s->o->event_fn || s->n_watching) && ggp_print_buf(ev, &s->ev_buf) == GG_OK)
        text = s->ev_buf.data;
    if (text || !(stored || s->o->event_fn || s->n_watching)) {
        if (stored) {
            ggi_op op = { .kind = GGI_OP_EVENT, .seq = seq, .ts = ggi_wall_s(),
                          .name = ggi_strdup(type ? type : "event"), .text = ggi_strdup(text) };
            ggi_sched_add_op(s, &op, op.name && op.text, "an event");
        }
        if (s->o->event_fn && text)
            cJSON_AddItemToArray(s->pend[s->cur].events, cJSON_CreateString(text));
        /* The event's text, printed once, wrapped once in the message of ggp_new(GGP_EVENT)
         * (without copying the tree), and copied for each further watcher. */
        char *m = NULL;
        size_t len = 0;
        for (client *c = s->clients; c && text && s->n_watching; c = c->next) {
            if (!c->watching || !ggi_event_mask_hears(c->watch_mask, bit))
                continue;
            if (!m) {
                m = ggp_encode_event(text, s->ev_buf.len, &len);
                if (!m)
                    break;
            }
            char *copy = malloc(len + 1);
            if (copy)
                memcpy(copy, m, len + 1);
            ggi_sched_queue_out(s, &c->id, copy, copy ? len : 0);
        }
        free(m);
    }
    cJSON_Delete(ev);
}

cJSON *ggi_sched_event_new(const char *type, const char *task_id)
{
    cJSON *ev = cJSON_CreateObject();
    if (!ev)
        return NULL;
    cJSON_AddStringToObject(ev, "type", type);
    add_fixed3(ev, "ts", ggi_wall_s());
    if (task_id)
        cJSON_AddStringToObject(ev, "task_id", task_id);
    return ev;
}

void ggi_sched_on_watch(sched *s, const identity *to, client *c, const cJSON *b)
{
    long long rid = 0;
    ggi_json_int(b, "rid", 1, 0, (1LL << 53), &rid);
    int watching = 0;
    for (client *x = s->clients; x; x = x->next)
        watching += x->watching;
    if (!c->watching && watching >= MAX_WATCHERS) {
        ggi_sched_reply_error(s, to, rid, GG_EBUSY, "too many watchers");
        return;
    }
    /* A watch sent again (every few seconds) replaces the filter. */
    uint32_t mask;
    if (ggi_event_filter_json(cJSON_GetObjectItemCaseSensitive(b, "types"), &mask) != GG_OK) {
        ggi_sched_reply_error(s, to, rid, GG_EINVAL, gg_error_last());
        return;
    }
    c->watching = 1;
    c->watch_mask = mask;
    ggi_sched_count_watchers(s);
    ggi_sched_queue_msg(s, to, ggi_sched_reply_new(rid, 1));
}
