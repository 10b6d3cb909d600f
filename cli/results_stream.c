/*
 * results_stream.c - the --results file written as tasks end (see results_stream.h). Ids of
 * ended tasks come from the event thread through a small mutex-guarded queue; the main
 * thread reads each result and appends its line. Which tasks have a line is a set of their
 * ids (the ids themselves: a hash alone could take one task for another and lose its line),
 * so a task told of twice is written once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "results_stream.h"

typedef struct ended {
    struct ended *next;
    char id[];
} ended;

struct results_stream {
    int fd;
    pthread_mutex_t mu;
    ended *head, *tail;   /* ids of tasks that ended, under mu */
    char **set;           /* ids written, open addressing; NULL is "empty" */
    size_t set_cap, set_len;
    int old_fd;           /* during a rewrite into a new file: the file it replaces */
    char *tmp_path, *real_path;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

/* The slot of id in the set: where it is, or the empty slot where it would go. */
static size_t set_slot(char *const *set, size_t cap, const char *id)
{
    size_t i = hash_id(id) & (cap - 1);
    while (set[i] && strcmp(set[i], id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int set_has(const results_stream *s, const char *id)
{
    return s->set_cap && s->set[set_slot(s->set, s->set_cap, id)];
}

static int set_add(results_stream *s, const char *id)
{
    if ((s->set_len + 1) * 2 > s->set_cap) {
        size_t cap = s->set_cap ? s->set_cap * 2 : 1024;
        char **n = calloc(cap, sizeof *n);
        if (!n)
            return -1;
        for (size_t k = 0; k < s->set_cap; k++)
            if (s->set[k])
                n[set_slot(n, cap, s->set[k])] = s->set[k];
        free(s->set);
        s->set = n;
        s->set_cap = cap;
    }
    size_t i = set_slot(s->set, s->set_cap, id);
    if (!s->set[i]) {
        if (!(s->set[i] = strdup(id)))
            return -1;
        s->set_len++;
    }
    return 0;
}

static void set_clear(results_stream *s)
{
    for (size_t k = 0; k < s->set_cap; k++)
        free(s->set[k]);
    free(s->set);
    s->set = NULL;
    s->set_cap = s->set_len = 0;
}

int results_stream_new(results_stream **out, int fd)
{
    results_stream *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return -1;
    }
    s->fd = fd;
    s->old_fd = -1;
    *out = s;
    return 0;
}

int results_stream_truncate(results_stream *s)
{
    if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) < 0)
        return -1;
    set_clear(s);
    return 0;
}

void results_stream_on_event(results_stream *s, const char *event_json)
{
    if (!s || !event_json || !strstr(event_json, "\"task.finished\""))
        return;
    cJSON *ev = cJSON_Parse(event_json);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "task_id");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "task.finished") == 0 &&
        cJSON_IsString(id)) {
        size_t n = strlen(id->valuestring);
        ended *e = malloc(sizeof *e + n + 1);
        if (e) { /* out of memory: the last sweep writes it */
            memcpy(e->id, id->valuestring, n + 1);
            e->next = NULL;
            pthread_mutex_lock(&s->mu);
            if (s->tail)
                s->tail->next = e;
            else
                s->head = e;
            s->tail = e;
            pthread_mutex_unlock(&s->mu);
        }
    }
    cJSON_Delete(ev);
}

char *results_stream_next_ended(results_stream *s)
{
    pthread_mutex_lock(&s->mu);
    ended *e = s->head;
    if (e) {
        s->head = e->next;
        if (!s->head)
            s->tail = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (!e)
        return NULL;
    size_t n = strlen(e->id);
    memmove(e, e->id, n + 1); /* the id alone, in the same block */
    return (char *)e;
}

int results_stream_written(const results_stream *s, const char *task_id)
{
    return task_id && set_has(s, task_id);
}

char *results_utf8_clean(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    char *out = malloc(len * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = 0;
        if (c >= 0x01 && c < 0x80)
            n = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4;
        if (n > 1) {
            unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
                n = 0;
            for (size_t k = 2; n && k < n; k++)
                if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                    n = 0;
        }
        if (n) {
            memcpy(o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}

/* One line in one write (a kill -9 leaves whole lines), its bytes made valid UTF-8: what is
 * not can only be inside a string of otherwise valid JSON, so U+FFFD keeps it JSON. */
static int put_line(results_stream *s, const char *text)
{
    size_t len = strlen(text);
    char *line = results_utf8_clean(text, len);
    if (!line)
        return -1;
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' '; /* only white space between tokens can be a raw newline */
    len = strlen(line);
    line[len] = '\n';
    int rc = cli_write_all(s->fd, line, len + 1);
    free(line);
    return rc;
}

int results_stream_put_result(results_stream *s, const char *task_id, const char *result)
{
    const char *id = task_id ? task_id : "";
    if (set_has(s, id))
        return 0;
    if (put_line(s, result) != 0)
        return -1;
    return set_add(s, id) == 0 ? 0 : (errno = ENOMEM, -1);
}

int results_stream_put_bad(results_stream *s, unsigned long long line, const char *task_id,
                           const char *reason)
{
    cJSON *obj = cJSON_CreateObject();
    char *text = NULL;
    int rc = -1;
    errno = ENOMEM;
    if (obj && cJSON_AddNumberToObject(obj, "line", (double)line) &&
        (task_id ? cJSON_AddStringToObject(obj, "task_id", task_id)
                 : cJSON_AddNullToObject(obj, "task_id")) &&
        cJSON_AddStringToObject(obj, "status", "error") &&
        cJSON_AddStringToObject(obj, "reason", reason ? reason : "")) {
        text = cJSON_PrintUnformatted(obj);
        if (text)
            rc = put_line(s, text);
    }
    cJSON_free(text);
    cJSON_Delete(obj);
    return rc;
}

int results_stream_rewrite(results_stream *s, const char *path)
{
    struct stat st;
    char *real = realpath(path, NULL);
    size_t n = real ? strlen(real) + 16 : 0;
    char *tmp = real ? malloc(n) : NULL;
    int fd = -1;
    if (tmp) {
        snprintf(tmp, n, "%s.tmp-XXXXXX", real);
        fd = mkstemp(tmp);
    }
    if (fd < 0) { /* a directory we may not write in: in place */
        free(real);
        free(tmp);
        return results_stream_truncate(s);
    }
    if (fstat(s->fd, &st) == 0)
        (void)fchmod(fd, st.st_mode & 0777);
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    s->old_fd = s->fd;
    s->fd = fd;
    s->tmp_path = tmp;
    s->real_path = real;
    set_clear(s);
    return 0;
}

int results_stream_commit(results_stream *s)
{
    if (!s->tmp_path)
        return 0;
    if (rename(s->tmp_path, s->real_path) != 0)
        return -1;
    free(s->tmp_path);
    s->tmp_path = NULL;
    return 0;
}

int results_stream_close(results_stream **ps)
{
    int rc = 0;
    if (!ps || !*ps)
        return 0;
    results_stream *s = *ps;
    if (s->fd >= 0 && close(s->fd) != 0)
        rc = -1;
    if (s->old_fd >= 0)
        close(s->old_fd);
    if (s->tmp_path)
        unlink(s->tmp_path); /* not committed: the streamed file stays */
    free(s->tmp_path);
    free(s->real_path);
    for (ended *e = s->head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    pthread_mutex_destroy(&s->mu);
    set_clear(s);
    free(s);
    *ps = NULL;
    return rc;
}
