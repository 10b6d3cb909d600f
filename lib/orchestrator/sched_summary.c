/*
 * sched_summary.c - the grid.summary event (docs/events.md): the tasks' course coalesced, at
 * most once a second, for watchers that show a grid rather than follow each task (the
 * dashboard). Cut from sched_events.c because its cost rule differs: while anyone asks for
 * it, a task's start and end cost a counter and a copy of its id into a bounded ring (no JSON,
 * no message); once a second, when something changed, one event is built and its text sent
 * to each watcher that names grid.summary. Without such a watcher nothing here runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "sched.h"

#define SUMMARY_MS 1000   /* at most one summary this often */
#define RECENT 64         /* tasks whose change a summary lists (the latest) */
#define FAILURES 16       /* failed or errored tasks it lists (the latest) */
#define REASON_MAX 240    /* bytes of a reason kept */

typedef struct change {
    char *task_id;
    const char *status; /* a static string: running, passed, failed, error, cancelled */
    int attempts;
    char *reason;       /* NULL, or at most REASON_MAX bytes */
} change;

typedef struct ring {
    change c[RECENT];
    int cap, n, head;   /* head: the next slot written */
    unsigned long lost; /* changes overwritten before they were sent */
} ring;

struct ggi_sched_summary {
    double sent_at;             /* ggi_now_ms() of the last summary */
    unsigned long started;      /* since the last summary */
    unsigned long ended[4];     /* passed, failed, error, cancelled */
    ring recent, failures;
};

static const char *const ends[4] = { GGI_ST_PASSED, GGI_ST_FAILED, GGI_ST_ERROR,
                                     GGI_ST_CANCELLED };

static void change_clear(change *c)
{
    free(c->task_id);
    free(c->reason);
    memset(c, 0, sizeof *c);
}

static void ring_clear(ring *r)
{
    for (int i = 0; i < r->cap; i++)
        change_clear(&r->c[i]);
    r->n = r->head = 0;
    r->lost = 0;
}

/* The bytes of a reason kept: at most REASON_MAX, cut before a UTF-8 sequence, never in it. */
static size_t reason_len(const char *reason)
{
    size_t n = strnlen(reason, REASON_MAX + 1);
    if (n <= REASON_MAX)
        return n;
    n = REASON_MAX;
    while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void ring_add(ring *r, const char *task_id, const char *status, int attempts,
                     const char *reason)
{
    change *c = &r->c[r->head];
    if (r->n == r->cap)
        r->lost++;
    else
        r->n++;
    change_clear(c);
    c->task_id = ggi_strdup(task_id);
    c->status = status;
    c->attempts = attempts;
    c->reason = reason ? ggi_strndup(reason, reason_len(reason)) : NULL;
    r->head = (r->head + 1) % r->cap;
}

/* The ring's changes, oldest first, as an array in o under key. */
static void ring_json(const ring *r, cJSON *o, const char *key)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int k = 0; a && k < r->n; k++) {
        const change *c = &r->c[(r->head - r->n + k + r->cap) % r->cap];
        cJSON *x = c->task_id ? cJSON_CreateObject() : NULL;
        if (!x)
            continue;
        cJSON_AddStringToObject(x, "task_id", c->task_id);
        cJSON_AddStringToObject(x, "status", c->status);
        cJSON_AddNumberToObject(x, "attempts", c->attempts);
        if (c->reason)
            cJSON_AddStringToObject(x, "reason", c->reason);
        cJSON_AddItemToArray(a, x);
    }
}

void ggi_sched_summary_update(sched *s)
{
    int want = 0;
    for (client *c = s->clients; c && !want; c = c->next)
        want = c->watching && ggi_event_mask_hears(c->watch_mask, GGI_EVENT_SUMMARY);
    if (want && !s->summary) {
        s->summary = calloc(1, sizeof *s->summary);
        if (s->summary) {
            s->summary->recent.cap = RECENT;
            s->summary->failures.cap = FAILURES;
        }
    } else if (!want) {
        ggi_sched_summary_free(s);
    }
}

void ggi_sched_summary_free(sched *s)
{
    if (!s->summary)
        return;
    ring_clear(&s->summary->recent);
    ring_clear(&s->summary->failures);
    free(s->summary);
    s->summary = NULL;
}

void ggi_sched_summary_note(sched *s, const char *task_id, const char *status, int attempts,
                            const char *reason)
{
    struct ggi_sched_summary *m = s->summary;
    if (!m)
        return;
    const char *st = NULL;
    for (int i = 0; i < 4 && !st; i++) {
        if (strcmp(status, ends[i]) == 0) {
            st = ends[i];
            m->ended[i]++;
            if (i == 1 || i == 2)
                ring_add(&m->failures, task_id, st, attempts, reason);
        }
    }
    if (!st) {
        st = "running";
        m->started++;
    }
    ring_add(&m->recent, task_id, st, attempts, st == ends[0] ? NULL : reason);
}

/* The summary of what changed since the last one (NULL when out of memory). */
static cJSON *summary_event(sched *s, double interval_ms)
{
    struct ggi_sched_summary *m = s->summary;
    cJSON *ev = ggi_sched_event_new("grid.summary", NULL);
    if (!ev)
        return NULL;
    cJSON_AddNumberToObject(ev, "interval_s", (double)(long long)interval_ms / 1000.0);
    cJSON_AddNumberToObject(ev, "started", (double)m->started);
    cJSON *e = cJSON_AddObjectToObject(ev, "ended");
    for (int i = 0; e && i < 4; i++)
        cJSON_AddNumberToObject(e, ends[i], (double)m->ended[i]);
    cJSON_AddNumberToObject(ev, "active", s->n_active);
    ring_json(&m->recent, ev, "tasks");
    cJSON_AddNumberToObject(ev, "more", (double)m->recent.lost);
    ring_json(&m->failures, ev, "failures");
    return ev;
}

void ggi_sched_summary_tick(sched *s)
{
    struct ggi_sched_summary *m = s->summary;
    if (!m || (!m->recent.n && !m->started))
        return;
    double now = ggi_now_ms();
    if (now - m->sent_at < SUMMARY_MS)
        return;
    double interval = m->sent_at > 0 && now - m->sent_at < 60000 ? now - m->sent_at
                                                                  : SUMMARY_MS;
    cJSON *ev = summary_event(s, interval);
    char *text = ev ? ggi_json_print(ev) : NULL;
    cJSON_Delete(ev);
    /* Printed once, wrapped once; each watcher gets a copy (the queue takes its text). */
    size_t len = 0;
    char *msg = text ? ggp_encode_event(text, strlen(text), &len) : NULL;
    free(text);
    if (!msg) {
        ggi_log(&s->o->log, GG_LOG_WARN, "grid.summary: out of memory");
        return;
    }
    for (client *c = s->clients; c; c = c->next) {
        if (!c->watching || !ggi_event_mask_hears(c->watch_mask, GGI_EVENT_SUMMARY))
            continue;
        char *copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, msg, len + 1);
            ggi_sched_queue_out(s, &c->id, copy, len);
        }
    }
    free(msg);
    m->sent_at = now;
    m->started = 0;
    memset(m->ended, 0, sizeof m->ended);
    ring_clear(&m->recent);
    ring_clear(&m->failures);
}
