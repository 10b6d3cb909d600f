/*
 * webhook.c - the alert sender of webhook.h: events in (scheduler thread), alerts out (one
 * thread of its own, libcurl), and the watch on a queue that stops moving.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../store/store.h"
#include "webhook.h"

/* How long destroy spends on the alerts still queued, at most. */
#define FLUSH_MS 3000.0

struct ggi_webhook {
    char *urls[GGI_WEBHOOK_MAX_URLS];
    int n_urls;
    ggi_webhook_options o;
    char host[256];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **queue;          /* ring of alert bodies, under mu */
    unsigned head, count;
    int stop;
    pthread_t thread;
    int started;

    _Atomic double last_progress_ms; /* the last dispatch or end the events told */
    atomic_int stalled;              /* queue.stalled was sent and no progress since */
    atomic_int run_budget_told;      /* the run's budget is told once */
    atomic_ullong alerts, sent, retried, dropped;
    CURL *curl;                      /* the thread's */
};

static int is_http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* Appends one alert body (taken over) to the queue, or drops it when the queue is full. */
static void enqueue(ggi_webhook *w, char *body)
{
    if (!body) {
        atomic_fetch_add(&w->dropped, (unsigned long long)w->n_urls);
        return;
    }
    atomic_fetch_add(&w->alerts, 1);
    pthread_mutex_lock(&w->mu);
    if (w->count >= w->o.queue_max || w->stop) {
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add(&w->dropped, (unsigned long long)w->n_urls);
        free(body);
        return;
    }
    w->queue[(w->head + w->count) % w->o.queue_max] = body;
    w->count++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void ggi_webhook_alert(ggi_webhook *w, const char *type, const cJSON *data)
{
    if (!w)
        return;
    cJSON *a = data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject();
    char *body = NULL;
    if (a && cJSON_IsObject(a)) {
        cJSON_DeleteItemFromObjectCaseSensitive(a, "alert");
        cJSON_DeleteItemFromObjectCaseSensitive(a, "source");
        cJSON_DeleteItemFromObjectCaseSensitive(a, "host");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (!cJSON_GetObjectItemCaseSensitive(a, "ts"))
            cJSON_AddNumberToObject(a, "ts", (double)ts.tv_sec + ts.tv_nsec / 1e9);
        cJSON_AddStringToObject(a, "alert", type);
        cJSON_AddStringToObject(a, "source", "gryphgen");
        cJSON_AddStringToObject(a, "host", w->host);
        body = ggi_json_print(a);
    }
    cJSON_Delete(a);
    enqueue(w, body);
}

static const char *str_of(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* The budget a task's end cause (its task.finished's "end_cause", GGI_END_* of store.h)
 * says was spent ("tokens", "wall", "run_tokens"), or NULL. A task that failed all its
 * attempts is a task.failed, not a budget alert. */
static const char *budget_of(const char *cause)
{
    static const char *const map[][2] = {
        { GGI_END_BUDGET_TOKENS, "tokens" },
        { GGI_END_DEADLINE, "wall" },
        { GGI_END_BUDGET_RUN_TOKENS, "run_tokens" },
    };
    for (size_t i = 0; cause && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(cause, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static void task_finished(ggi_webhook *w, cJSON *ev)
{
    const char *status = str_of(ev, "status");
    if (!status || (strcmp(status, "failed") != 0 && strcmp(status, "error") != 0))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "type");
    ggi_webhook_alert(w, "task.failed", ev);
    const char *budget = budget_of(str_of(ev, "end_cause"));
    if (!budget)
        return;
    /* The run's budget ends every task: told once, not once per task. */
    if (strcmp(budget, "run_tokens") == 0 && atomic_exchange(&w->run_budget_told, 1))
        return;
    cJSON_AddStringToObject(ev, "budget", budget);
    if (strcmp(budget, "run_tokens") == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(ev, "task_id");
    ggi_webhook_alert(w, "budget.exhausted", ev);
}

static int type_is(const char *json, const char *type)
{
    /* events are printed compactly with "type" first: {"type":"task.finished",... */
    const char *t = strstr(json, "\"type\":\"");
    return t && t - json < 8 && strncmp(t + 8, type, strlen(type)) == 0 &&
           t[8 + strlen(type)] == '"';
}

void ggi_webhook_event(ggi_webhook *w, const char *event_json)
{
    if (!w || !event_json)
        return;
    int finished = type_is(event_json, "task.finished");
    if (finished || type_is(event_json, "job.dispatched") ||
        type_is(event_json, "attempt.finished")) {
        atomic_store(&w->last_progress_ms, ggi_now_ms());
        if (atomic_exchange(&w->stalled, 0)) {
            cJSON *d = cJSON_CreateObject();
            ggi_webhook_alert(w, "queue.resumed", d);
            cJSON_Delete(d);
        }
    }
    const char *alert = type_is(event_json, "node.lost")          ? "node.lost"
                        : type_is(event_json, "node.quarantined") ? "node.quarantined"
                                                                  : NULL;
    if (!finished && !alert)
        return;
    cJSON *ev = NULL;
    if (ggi_json_parse(event_json, strlen(event_json), &ev) != GG_OK)
        return;
    if (finished) {
        task_finished(w, ev);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(ev, "type");
        ggi_webhook_alert(w, alert, ev);
    }
    cJSON_Delete(ev);
}

/* Raises queue.stalled when tasks have waited stall_s without a dispatch or an end. */
static void watch_stall(ggi_webhook *w)
{
    if (!w->o.backlog || w->o.stall_s < 0 || atomic_load(&w->stalled))
        return;
    long long waiting = w->o.backlog(w->o.backlog_user);
    double now = ggi_now_ms();
    if (waiting <= 0) {
        /* idle time counts only while tasks wait */
        atomic_store(&w->last_progress_ms, now);
        return;
    }
    double idle = now - atomic_load(&w->last_progress_ms);
    if (idle < w->o.stall_s * 1000.0)
        return;
    atomic_store(&w->stalled, 1);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddNumberToObject(d, "queued", (double)waiting);
        cJSON_AddNumberToObject(d, "idle_s", floor(idle / 100.0) / 10.0);
    }
    ggi_webhook_alert(w, "queue.stalled", d);
    cJSON_Delete(d);
}

/* Waits up to ms (less when stopping), watching for a stalled queue meanwhile; mu held.
 * Returns 1 when stopping. */
static int wait_ms(ggi_webhook *w, double ms)
{
    double until = ggi_now_ms() + ms;
    while (!w->stop) {
        double left = until - ggi_now_ms();
        if (left <= 0)
            break;
        if (left > 1000)
            left = 1000;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long ns = ts.tv_nsec + (long long)(left * 1e6);
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        pthread_mutex_unlock(&w->mu);
        watch_stall(w);
        pthread_mutex_lock(&w->mu);
    }
    return w->stop;
}

static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* One POST: 0 delivered, 1 worth retrying (no connection, 5xx, 408, 429), -1 refused. */
static int post(ggi_webhook *w, const char *url, const char *body, long *status,
                char *err, size_t err_size)
{
    CURL *c = w->curl;
    curl_easy_reset(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gryphgen-webhook");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(w->o.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(w->o.timeout_s * 500));
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    *status = 0;
    if (rc != CURLE_OK) {
        snprintf(err, err_size, "%s", curl_easy_strerror(rc));
        return 1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    snprintf(err, err_size, "HTTP %ld", *status);
    if (*status >= 200 && *status < 300)
        return 0;
    return *status >= 500 || *status == 408 || *status == 429 ? 1 : -1;
}

/* Delivers body to url with retries; mu held (released around each POST). */
static void deliver(ggi_webhook *w, const char *url, const char *body, int final)
{
    char err[256] = "";
    long status = 0;
    double backoff = w->o.backoff_ms;
    for (int i = 0; i < w->o.attempts; i++) {
        if (i > 0) {
            atomic_fetch_add(&w->retried, 1);
            if (wait_ms(w, backoff) && !final)
                final = 1; /* stopping: this try is the last */
            backoff *= 2;
        }
        pthread_mutex_unlock(&w->mu);
        int r = post(w, url, body, &status, err, sizeof err);
        pthread_mutex_lock(&w->mu);
        if (r == 0) {
            atomic_fetch_add(&w->sent, 1);
            return;
        }
        if (r < 0 || final)
            break;
    }
    atomic_fetch_add(&w->dropped, 1);
    ggi_log(&w->o.log, GG_LOG_WARN, "webhook: an alert to %s is dropped: %s", url, err);
}

static void *webhook_main(void *arg)
{
    ggi_webhook *w = arg;
    pthread_mutex_lock(&w->mu);
    double flush_until = 0;
    for (;;) {
        if (w->count == 0) {
            if (w->stop)
                break;
            wait_ms(w, 1000);
            continue;
        }
        char *body = w->queue[w->head];
        w->head = (w->head + 1) % w->o.queue_max;
        w->count--;
        if (w->stop && flush_until == 0)
            flush_until = ggi_now_ms() + FLUSH_MS;
        for (int i = 0; i < w->n_urls; i++) {
            if (w->stop && ggi_now_ms() > flush_until)
                atomic_fetch_add(&w->dropped, 1);
            else
                deliver(w, w->urls[i], body, w->stop);
        }
        free(body);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void free_webhook(ggi_webhook *w)
{
    for (int i = 0; i < w->n_urls; i++)
        free(w->urls[i]);
    if (w->queue)
        for (unsigned i = 0; i < w->count; i++)
            free(w->queue[(w->head + i) % w->o.queue_max]);
    free(w->queue);
    if (w->curl)
        curl_easy_cleanup(w->curl);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

int ggi_webhook_new(ggi_webhook **out, const ggi_webhook_options *opts)
{
    if (!out || !opts || !opts->urls)
        return ggi_error(GG_EINVAL, "webhook: no options or no URLs");
    *out = NULL;
    int n = 0;
    for (; opts->urls[n]; n++) {
        const char *u = opts->urls[n];
        if (n >= GGI_WEBHOOK_MAX_URLS)
            return ggi_error(GG_EINVAL, "webhooks: more than %d URLs", GGI_WEBHOOK_MAX_URLS);
        if (!is_http_url(u) || strlen(u) > GGI_WEBHOOK_URL_MAX || strpbrk(u, " \t\r\n"))
            return ggi_error(GG_EINVAL, "webhook '%.200s': not an http:// or https:// URL "
                             "(of at most %d bytes, without spaces)", u, GGI_WEBHOOK_URL_MAX);
    }
    if (n == 0)
        return ggi_error(GG_EINVAL, "webhooks: the list is empty");
    ggi_webhook *w = calloc(1, sizeof *w);
    if (!w)
        return ggi_error(GG_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    ggi_cond_init_monotonic(&w->cv);
    w->o = *opts;
    w->o.urls = NULL;
    if (w->o.stall_s == 0)
        w->o.stall_s = GGI_WEBHOOK_STALL_S;
    if (w->o.attempts <= 0)
        w->o.attempts = 5;
    if (!(w->o.backoff_ms > 0))
        w->o.backoff_ms = 500;
    if (w->o.queue_max == 0 || w->o.queue_max > GGI_WEBHOOK_QUEUE_MAX)
        w->o.queue_max = GGI_WEBHOOK_QUEUE_MAX;
    if (!(w->o.timeout_s > 0))
        w->o.timeout_s = 10;
    atomic_store(&w->last_progress_ms, ggi_now_ms());
    if (gethostname(w->host, sizeof w->host - 1) != 0)
        snprintf(w->host, sizeof w->host, "unknown");
    int rc = GG_OK;
    for (int i = 0; i < n && rc == GG_OK; i++)
        if (!(w->urls[w->n_urls++] = ggi_strdup(opts->urls[i])))
            rc = ggi_error(GG_ENOMEM, "out of memory");
    if (rc == GG_OK && !(w->queue = calloc(w->o.queue_max, sizeof *w->queue)))
        rc = ggi_error(GG_ENOMEM, "out of memory");
    if (rc == GG_OK && !(w->curl = curl_easy_init()))
        rc = ggi_error(GG_ENOMEM, "webhook: cannot make a curl handle");
    if (rc == GG_OK && pthread_create(&w->thread, NULL, webhook_main, w) != 0)
        rc = ggi_error(GG_ENOMEM, "webhook: cannot start its thread");
    if (rc != GG_OK) {
        free_webhook(w);
        return rc;
    }
    w->started = 1;
    *out = w;
    return GG_OK;
}

void ggi_webhook_get_stats(ggi_webhook *w, ggi_webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!w)
        return;
    out->alerts = atomic_load(&w->alerts);
    out->sent = atomic_load(&w->sent);
    out->retried = atomic_load(&w->retried);
    out->dropped = atomic_load(&w->dropped);
    pthread_mutex_lock(&w->mu);
    out->queued = w->count;
    pthread_mutex_unlock(&w->mu);
}

void ggi_webhook_destroy(ggi_webhook **pw)
{
    if (!pw || !*pw)
        return;
    ggi_webhook *w = *pw;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    free_webhook(w);
    *pw = NULL;
}
