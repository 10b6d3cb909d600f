/*
 * progress.c - counters of a run and their display. The event callback only touches atomics
 * and a small ring of hashes of recently finished task ids (under its own mutex); all drawing
 * happens on the main thread under the stderr lock, so log lines from other threads can wipe
 * the bar first.
 *
 * The ring lets a resumed run count tasks that an earlier run finished without counting twice
 * a task that finished between its submission and the main thread's look at its result.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "progress.h"

#define RING_SIZE 4096
#define TTY_INTERVAL_S 0.1
#define PLAIN_INTERVAL_S 2.0

enum { MODE_NONE, MODE_PLAIN, MODE_TTY };

struct progress {
    int mode;
    double start, last_draw;
    int drawn;      /* a bar is on the terminal's current line */
    int finished;   /* progress_finish() was called */
    atomic_ulong total, done, passed, failed, errors, cancelled, attempts, finished_run;
    pthread_mutex_t ring_mutex;
    uint64_t ring[RING_SIZE];
    size_t ring_next, ring_len;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Called under the output lock before someone else writes to stderr. */
static void clear_bar(void *user)
{
    progress *p = user;
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        p->drawn = 0;
    }
}

int progress_new(progress **out, int quiet)
{
    progress *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p)
        return -1;
    if (pthread_mutex_init(&p->ring_mutex, NULL) != 0) {
        free(p);
        return -1;
    }
    p->mode = quiet ? MODE_NONE : isatty(STDERR_FILENO) ? MODE_TTY : MODE_PLAIN;
    p->start = p->last_draw = now_s();
    if (p->mode == MODE_TTY)
        cli_output_set_clear(clear_bar, p);
    *out = p;
    return 0;
}

void progress_destroy(progress **pp)
{
    if (!pp || !*pp)
        return;
    progress_finish(*pp);
    if ((*pp)->mode == MODE_TTY)
        cli_output_set_clear(NULL, NULL);
    pthread_mutex_destroy(&(*pp)->ring_mutex);
    free(*pp);
    *pp = NULL;
}

static void count_status(progress *p, const char *status)
{
    if (!status)
        atomic_fetch_add(&p->errors, 1);
    else if (strcmp(status, "passed") == 0)
        atomic_fetch_add(&p->passed, 1);
    else if (strcmp(status, "failed") == 0)
        atomic_fetch_add(&p->failed, 1);
    else if (strcmp(status, "cancelled") == 0)
        atomic_fetch_add(&p->cancelled, 1);
    else
        atomic_fetch_add(&p->errors, 1);
}

void progress_on_event(void *user, const char *event_json)
{
    progress *p = user;
    cJSON *ev;
    const cJSON *type;
    if (!p || !event_json)
        return;
    ev = cJSON_Parse(event_json);
    if (!ev)
        return;
    type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "attempt.finished") == 0) {
        atomic_fetch_add(&p->attempts, 1);
    } else if (cJSON_IsString(type) && strcmp(type->valuestring, "task.finished") == 0) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "task_id");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(ev, "status");
        count_status(p, cJSON_IsString(status) ? status->valuestring : NULL);
        atomic_fetch_add(&p->done, 1);
        atomic_fetch_add(&p->finished_run, 1);
        if (cJSON_IsString(id)) {
            pthread_mutex_lock(&p->ring_mutex);
            p->ring[p->ring_next] = hash_id(id->valuestring);
            p->ring_next = (p->ring_next + 1) % RING_SIZE;
            if (p->ring_len < RING_SIZE)
                p->ring_len++;
            pthread_mutex_unlock(&p->ring_mutex);
        }
    }
    cJSON_Delete(ev);
}

void progress_add_task(progress *p)
{
    atomic_fetch_add(&p->total, 1);
}

void progress_add_bad(progress *p)
{
    atomic_fetch_add(&p->total, 1);
    atomic_fetch_add(&p->done, 1);
    atomic_fetch_add(&p->errors, 1);
}

void progress_add_ended(progress *p, const char *task_id, const char *status)
{
    uint64_t h = hash_id(task_id ? task_id : "");
    int seen = 0;
    pthread_mutex_lock(&p->ring_mutex);
    for (size_t i = 0; i < p->ring_len && !seen; i++)
        seen = p->ring[i] == h;
    pthread_mutex_unlock(&p->ring_mutex);
    if (seen)
        return;
    count_status(p, status);
    atomic_fetch_add(&p->done, 1);
}

void progress_get(progress *p, progress_counts *out)
{
    out->total = atomic_load(&p->total);
    out->done = atomic_load(&p->done);
    out->passed = atomic_load(&p->passed);
    out->failed = atomic_load(&p->failed);
    out->errors = atomic_load(&p->errors);
    out->cancelled = atomic_load(&p->cancelled);
    out->attempts = atomic_load(&p->attempts);
    out->finished = atomic_load(&p->finished_run);
    /* tasks of the database that are not in this set may end too */
    if (out->done > out->total)
        out->done = out->total;
}

static void format_duration(char *buf, size_t n, double s)
{
    unsigned long t = s < 0 ? 0 : s > 359999 ? 359999 : (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col > 400 ? 400 : ws.ws_col;
    return 80;
}

static void draw(progress *p, int input_done, double now)
{
    progress_counts c;
    char text[256], eta[32], bar[420];
    double elapsed = now - p->start, rate;
    progress_get(p, &c);
    rate = elapsed > 0 ? (double)c.finished / elapsed : 0;
    if (rate > 0 && input_done)
        format_duration(eta, sizeof eta, (double)(c.total - c.done) / rate);
    else
        snprintf(eta, sizeof eta, "?");

    if (p->mode == MODE_PLAIN) {
        fprintf(stderr,
                "gryphgen: progress %lu/%lu%s tasks done, %lu passed, %lu failed, %lu errors,"
                " %.1f tasks/s, ETA %s\n",
                c.done, c.total, input_done ? "" : "+", c.passed, c.failed, c.errors, rate,
                eta);
        fflush(stderr);
        return;
    }

    snprintf(text, sizeof text, " %lu/%lu%s  passed %lu  failed %lu  errors %lu  %.1f/s  ETA %s",
             c.done, c.total, input_done ? "" : "+", c.passed, c.failed, c.errors, rate, eta);
    {
        int cols = terminal_columns() - 1;
        int width = cols - (int)strlen(text) - 2;
        size_t k = 0;
        if (width >= 10) {
            int fill = c.total ? (int)((double)width * (double)c.done / (double)c.total) : 0;
            if (fill > width)
                fill = width;
            bar[k++] = '[';
            for (int i = 0; i < width; i++)
                bar[k++] = i < fill ? '=' : (i == fill ? '>' : ' ');
            bar[k++] = ']';
        }
        bar[k] = '\0';
        fprintf(stderr, "\r%s%.*s\033[K", bar, cols > 0 ? cols : 0, text);
        fflush(stderr);
        p->drawn = 1;
    }
}

void progress_tick(progress *p, int input_done)
{
    double now, interval;
    if (p->mode == MODE_NONE || p->finished)
        return;
    now = now_s();
    interval = p->mode == MODE_TTY ? TTY_INTERVAL_S : PLAIN_INTERVAL_S;
    if (now - p->last_draw < interval)
        return;
    p->last_draw = now;
    cli_output_lock();
    draw(p, input_done, now);
    cli_output_unlock();
}

void progress_finish(progress *p)
{
    if (p->finished)
        return;
    p->finished = 1;
    if (p->mode == MODE_TTY) {
        cli_output_lock();
        clear_bar(p);
        fflush(stderr);
        cli_output_unlock();
    }
}
