/*
 * rest_events.c - GET /v1/events: the grid's events (docs/events.md) as Server-Sent Events.
 * One relay thread watches the scheduler through an in-process client (the same watch a
 * remote `gryphgen watch` makes), from the first stream on (which waits until the watch is
 * in place, so it misses nothing after its answer began), and keeps the latest events
 * in a ring; each stream reads the ring from where it joined, so a slow reader never holds
 * the relay or the scheduler up: it skips what the ring no longer holds (and is told how
 * many). A stream with nothing to send suspends its connection until the relay has news or
 * a keep-alive is due, so waiting streams hold no server thread.
 * The relay watches only the types the open streams ask for (?types=, their union): the
 * scheduler builds no event nobody asked for. A stream that widens the union starts once the
 * relay's watch of the wider union is in place.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gryphgen.h"
#include "face.h"
#include "orchestrator/event_filter.h"

#define RING 4096          /* events kept */
#define MAX_STREAMS 64     /* open event streams */
#define KEEPALIVE_S 10     /* a comment line at least this often */
#define WATCH_SLICE_MS 200 /* the relay checks its stop flag (and wakes streams) this often */
#define SUBSCRIBE_MS 5000 /* a stream waits this long for the relay's watch of its types */
#define WAKE_MS 50         /* streams are woken for news at most this often (each wake-up
                            * costs the server a thread switch: at thousands of events a
                            * second, one per event would cost more than the events) */

typedef struct stream stream;

/* An event kept: its text and its type's bit (found once, not once per stream). */
typedef struct kept {
    char *text;
    uint32_t bit;
} kept;

struct ggi_http_events {
    ggi_http_face *face;
    pthread_mutex_t mu; /* guards everything below */
    kept ring[RING];
    unsigned long long head; /* events received so far; ring[(head - 1) % RING] the last */
    struct timespec last_wake;
    stream *suspended;       /* streams waiting for news */
    stream *streams;         /* all open streams */
    int n_streams;
    uint32_t want;           /* the union of the open streams' types (event_filter.h) */
    unsigned long want_gen;  /* counts changes of want */
    unsigned long sub_gen;   /* the want_gen the relay's watch has in place */
    pthread_cond_t subscribed; /* signalled when sub_gen moves */
    int stopping;
    int relay_running;
    pthread_t relay;
    pthread_mutex_t start_mu; /* one stream at a time starts the relay */
};

struct stream {
    ggi_http_events *ev;
    void *conn;
    stream *next;           /* in suspended */
    stream *all_next;       /* in streams */
    int is_suspended;
    unsigned long long next_seq;
    char *out;              /* text being sent, and how far */
    size_t out_len, out_off;
    time_t last_sent;
    uint32_t types;         /* the types to send (?types=; GGI_EVENT_ALL: all) */
};

static void resume_all(ggi_http_events *e)
{
    for (stream *s = e->suspended; s; s = s->next) {
        s->is_suspended = 0;
        ggi_http_resume(s->conn);
    }
    e->suspended = NULL;
}

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Under mu: the union of the open streams' types; kept as it was when none is open (the
 * relay goes on watching them, for the ring and a later ?since=all). Whether it changed. */
static int update_want(ggi_http_events *e)
{
    if (!e->streams)
        return 0;
    uint32_t u = 0;
    int all = 0;
    for (stream *s = e->streams; s; s = s->all_next) {
        all |= s->types == GGI_EVENT_ALL;
        u |= s->types == GGI_EVENT_ALL ? 0 : s->types;
    }
    /* grid.summary goes only to a filter that names it: beside a stream of every type the
     * relay names every type and it. */
    if (all)
        u = u & GGI_EVENT_SUMMARY ? GGI_EVENT_EVERY | GGI_EVENT_SUMMARY : GGI_EVENT_ALL;
    if (u == e->want)
        return 0;
    e->want = u;
    e->want_gen++;
    return 1;
}

/* The bit of an event's type (its "type", the first member of every event). */
static uint32_t type_bit(const char *ev)
{
    static const char head[] = "{\"type\":\"";
    if (strncmp(ev, head, sizeof head - 1) != 0)
        return GGI_EVENT_ALL;
    const char *t = ev + sizeof head - 1, *q = strchr(t, '"');
    if (!q || q - t > 120)
        return GGI_EVENT_ALL;
    char type[128];
    snprintf(type, sizeof type, "%.*s", (int)(q - t), t);
    return ggi_event_type_bit(type);
}

static int relay_deliver(ggi_http_events *e, const char *event_json, int *stop)
{
    char *copy = strdup(event_json);
    uint32_t bit = type_bit(event_json);
    pthread_mutex_lock(&e->mu);
    if (copy) {
        unsigned slot = (unsigned)(e->head % RING);
        free(e->ring[slot].text);
        e->ring[slot].text = copy;
        e->ring[slot].bit = bit;
        e->head++;
    }
    if (e->suspended && ms_since(&e->last_wake) >= WAKE_MS) {
        resume_all(e);
        clock_gettime(CLOCK_MONOTONIC, &e->last_wake);
    }
    /* a changed union ends this watch, so the next one asks for it at once */
    *stop = e->stopping || e->want_gen != e->sub_gen;
    int r = e->stopping;
    pthread_mutex_unlock(&e->mu);
    return r;
}

/* While watching: stops for our stop and for a changed union. */
static int on_event(void *user, const char *event_json)
{
    int stop;
    relay_deliver(user, event_json, &stop);
    return stop;
}

/* While subscribing: stops only for our stop (the subscription's answer is awaited). */
static int on_event_subscribing(void *user, const char *event_json)
{
    int stop;
    return relay_deliver(user, event_json, &stop);
}

/* Waits (the orchestrator is stopping: we wait for our own stop). */
static void relay_pause(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static void *relay_main(void *arg)
{
    ggi_http_events *e = arg;
    gg_client_t *c = NULL;
    int rc = ggi_http_face_client(e->face, "relay:http-events", &c);
    char types[256];
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int stop = e->stopping;
        resume_all(e); /* keep-alives are due now and then */
        unsigned long gen = e->want_gen, have = e->sub_gen;
        uint32_t want = e->want;
        ggi_event_filter_names(e->want, types, sizeof types);
        pthread_mutex_unlock(&e->mu);
        if (stop)
            break;
        if (rc) {
            relay_pause(WATCH_SLICE_MS);
        } else if (!want) {
            relay_pause(20); /* started for a stream not yet listed */
        } else if (gen != have) {
            /* Timeout 0: subscribes (the answer awaited), then returns; streams then start. */
            if (gg_client_watch_filtered(c, types, on_event_subscribing, e, 0) != GG_OK) {
                relay_pause(WATCH_SLICE_MS);
                continue;
            }
            pthread_mutex_lock(&e->mu);
            e->sub_gen = gen;
            pthread_cond_broadcast(&e->subscribed);
            pthread_mutex_unlock(&e->mu);
        } else if (gg_client_watch_filtered(c, types, on_event, e, WATCH_SLICE_MS) != GG_OK) {
            relay_pause(WATCH_SLICE_MS);
        }
    }
    return NULL;
}

int ggi_http_events_new(ggi_http_events **out, ggi_http_face *f)
{
    *out = NULL;
    ggi_http_events *e = calloc(1, sizeof *e);
    if (!e)
        return gg_error_set(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->start_mu, NULL);
    pthread_cond_init(&e->subscribed, NULL);
    e->face = f;
    *out = e;
    return GG_OK;
}

void ggi_http_events_stop(ggi_http_events *e)
{
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    resume_all(e);
    pthread_cond_broadcast(&e->subscribed);
    int running = e->relay_running;
    e->relay_running = 0;
    pthread_mutex_unlock(&e->mu);
    if (running)
        pthread_join(e->relay, NULL);
}

void ggi_http_events_free(ggi_http_events **pe)
{
    if (!pe || !*pe)
        return;
    ggi_http_events *e = *pe;
    ggi_http_events_stop(e);
    for (int i = 0; i < RING; i++)
        free(e->ring[i].text);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->start_mu);
    pthread_cond_destroy(&e->subscribed);
    free(e);
    *pe = NULL;
}

/* Whether the stream wants the event. */
static int wanted(const stream *s, const kept *k)
{
    return ggi_event_mask_hears(s->types, k->bit);
}

/* Writes the stream's next event straight into buf when it fits in cap bytes: its length,
 * or 0 (nothing due, or it does not fit: next_text copies it). Under mu. */
static size_t next_direct(stream *s, char *buf, size_t cap)
{
    ggi_http_events *e = s->ev;
    while (e->head > s->next_seq && e->head - s->next_seq <= RING &&
           !wanted(s, &e->ring[s->next_seq % RING]))
        s->next_seq++;
    if (e->head <= s->next_seq || e->head - s->next_seq > RING)
        return 0;
    const char *ev = e->ring[s->next_seq % RING].text;
    size_t n = strlen(ev);
    if (n + 40 > cap)
        return 0;
    int k = snprintf(buf, cap, "id: %llu\ndata: ", s->next_seq + 1);
    if (k < 0 || (size_t)k + n + 2 >= cap)
        return 0;
    memcpy(buf + k, ev, n);
    memcpy(buf + k + n, "\n\n", 2);
    s->next_seq++;
    return (size_t)k + n + 2;
}

/* The next text for a stream (under mu): the next event, a note of skipped ones, or a
 * keep-alive; NULL when there is nothing to send yet. */
static char *next_text(stream *s, unsigned long long *len)
{
    ggi_http_events *e = s->ev;
    char *t = NULL;
    while (e->head > s->next_seq && e->head - s->next_seq <= RING &&
           !wanted(s, &e->ring[s->next_seq % RING]))
        s->next_seq++;
    if (e->head > s->next_seq && e->head - s->next_seq > RING) {
        unsigned long long skipped = e->head - RING - s->next_seq;
        s->next_seq = e->head - RING;
        t = malloc(96);
        if (t)
            snprintf(t, 96, "event: skipped\ndata: {\"skipped\":%llu}\n\n", skipped);
    } else if (e->head > s->next_seq) {
        const char *ev = e->ring[s->next_seq % RING].text;
        size_t n = strlen(ev) + 64;
        t = malloc(n);
        if (t)
            snprintf(t, n, "id: %llu\ndata: %s\n\n", s->next_seq + 1, ev);
        s->next_seq++;
    } else if (time(NULL) - s->last_sent >= KEEPALIVE_S) {
        t = strdup(": keep-alive\n\n");
    }
    *len = t ? strlen(t) : 0;
    return t;
}

static long stream_read(void *cls, unsigned long long pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    ggi_http_events *e = s->ev;
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    /* As many events as fit: one write for many, not one per event; each written straight
     * into the server's buffer unless it does not fit there whole. */
    while (n < max) {
        if (!s->out && !e->stopping) {
            size_t k = next_direct(s, buf + n, max - n);
            if (k) {
                n += k;
                continue;
            }
            unsigned long long len = 0;
            s->out = next_text(s, &len);
            s->out_len = (size_t)len;
            s->out_off = 0;
        }
        if (!s->out)
            break;
        size_t k = s->out_len - s->out_off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, s->out + s->out_off, k);
        n += k;
        s->out_off += k;
        if (s->out_off == s->out_len) {
            free(s->out);
            s->out = NULL;
        }
    }
    long r = (long)n;
    if (n > 0) {
        s->last_sent = time(NULL);
    } else if (e->stopping) {
        r = -1; /* the end of the stream */
    } else {
        s->is_suspended = 1;
        s->next = e->suspended;
        e->suspended = s;
        ggi_http_suspend(s->conn);
    }
    pthread_mutex_unlock(&e->mu);
    return r;
}

/* Under mu: forgets a stream (closed, or never started). */
static void unlist_stream(ggi_http_events *e, stream *s)
{
    for (stream **l = &e->streams; *l; l = &(*l)->all_next) {
        if (*l == s) {
            *l = s->all_next;
            break;
        }
    }
    e->n_streams--;
    update_want(e);
}

static void stream_free(void *cls)
{
    stream *s = cls;
    ggi_http_events *e = s->ev;
    pthread_mutex_lock(&e->mu);
    for (stream **l = &e->suspended; *l; l = &(*l)->next) {
        if (*l == s) {
            *l = s->next;
            break;
        }
    }
    unlist_stream(e, s); /* narrower: the relay asks for less (no one waits for it) */
    pthread_mutex_unlock(&e->mu);
    free(s->out);
    free(s);
}

/* Starts the relay unless it runs (it subscribes; wait_subscribed waits for that). 0, or -1
 * when the relay cannot start. */
static int start_relay(ggi_http_events *e)
{
    pthread_mutex_lock(&e->start_mu);
    pthread_mutex_lock(&e->mu);
    int running = e->relay_running || e->stopping;
    pthread_mutex_unlock(&e->mu);
    int rc = 0;
    if (!running) {
        gg_client_t *c = NULL;
        rc = ggi_http_face_client(e->face, "relay:http-events", &c);
        pthread_mutex_lock(&e->mu);
        if (!rc && pthread_create(&e->relay, NULL, relay_main, e) == 0)
            e->relay_running = 1;
        else
            rc = -1;
        pthread_mutex_unlock(&e->mu);
    }
    pthread_mutex_unlock(&e->start_mu);
    return rc ? -1 : 0;
}

/* Under mu: waits until the relay's watch covers the union as of generation gen, so the
 * stream misses nothing of its types after its answer began. 0, or -1 (stopping, or the
 * relay could not subscribe within SUBSCRIBE_MS). */
static int wait_subscribed(ggi_http_events *e, unsigned long gen)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SUBSCRIBE_MS / 1000;
    while (!e->stopping && (long)(e->sub_gen - gen) < 0)
        if (pthread_cond_timedwait(&e->subscribed, &e->mu, &until) != 0)
            break;
    return !e->stopping && (long)(e->sub_gen - gen) >= 0 ? 0 : -1;
}

static void events_handler(void *user, const ggi_http_request *req, ggi_http_response *resp)
{
    ggi_http_events *e = ggi_http_face_events(user);
    if (start_relay(e) != 0) {
        ggi_http_error(resp, 503, "cannot watch the grid's events now");
        return;
    }
    stream *s = calloc(1, sizeof *s);
    if (!s) {
        ggi_http_error(resp, 500, "out of memory");
        return;
    }
    s->ev = e;
    s->conn = req->conn_;
    /* ?types=: event types and prefixes ("task.finished,node."), as a watch's filter. */
    if (ggi_event_filter_list(ggi_http_query(req, "types"), &s->types) != GG_OK) {
        free(s);
        ggi_http_error(resp, 400, gg_error_last());
        return;
    }
    s->last_sent = time(NULL);
    pthread_mutex_lock(&e->mu);
    int refused = e->stopping || e->n_streams >= MAX_STREAMS;
    if (!refused) {
        e->n_streams++;
        s->all_next = e->streams;
        e->streams = s;
        update_want(e);
        if (wait_subscribed(e, e->want_gen) != 0) {
            unlist_stream(e, s);
            pthread_mutex_unlock(&e->mu);
            free(s);
            ggi_http_error(resp, 503, "cannot watch the grid's events now");
            return;
        }
        /* From now on; with ?since=all, from the oldest event the ring holds. */
        const char *since = ggi_http_query(req, "since");
        s->next_seq = since && strcmp(since, "all") == 0 && e->head > RING ? e->head - RING
                      : since && strcmp(since, "all") == 0                  ? 0
                                                                             : e->head;
    }
    pthread_mutex_unlock(&e->mu);
    if (refused) {
        free(s);
        ggi_http_error(resp, 503, "too many event streams, or stopping");
        return;
    }
    resp->content_type = "text/event-stream";
    resp->stream.read = stream_read;
    resp->stream.free = stream_free;
    resp->stream.cls = s;
}

int ggi_http_events_routes(ggi_http_face *f, ggi_http_server *s)
{
    return ggi_http_server_route_role(s, "GET", "/v1/events", GGI_ROLE_OBSERVER,
                                      events_handler, f);
}
