/*
 * idlog.c - the unlinked temporary file of a task set's ids and bad lines. Each record is a
 * fixed header (kind, line number, lengths) followed by the id and the reason bytes, so ids
 * holding any character survive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idlog.h"

#define IDLOG_MAX_FIELD (16u << 20)

typedef struct record_head {
    uint64_t line;
    uint32_t id_len;     /* UINT32_MAX: no id */
    uint32_t reason_len; /* UINT32_MAX: no reason (a submitted task) */
} record_head;

struct idlog {
    FILE *f;
    size_t count;
    char *id;
    char *reason;
};

static FILE *open_unlinked(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd;
    FILE *f;

    if (!dir || !*dir)
        dir = "/tmp";
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
#endif
    {
        if ((size_t)snprintf(path, sizeof path, "%s/gryphgen-ids-XXXXXX", dir) >= sizeof path) {
            errno = ENAMETOOLONG;
            return NULL;
        }
        fd = mkstemp(path);
        if (fd < 0)
            return NULL;
        unlink(path);
    }
    f = fdopen(fd, "w+b");
    if (!f)
        close(fd);
    return f;
}

int idlog_new(idlog **out)
{
    idlog *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l)
        return -1;
    l->f = open_unlinked();
    if (!l->f) {
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

void idlog_destroy(idlog **pl)
{
    if (!pl || !*pl)
        return;
    if ((*pl)->f)
        fclose((*pl)->f);
    free((*pl)->id);
    free((*pl)->reason);
    free(*pl);
    *pl = NULL;
}

static int put(idlog *l, unsigned long long line, const char *id, const char *reason)
{
    record_head h;
    size_t id_len = id ? strlen(id) : 0, reason_len = reason ? strlen(reason) : 0;
    if (id_len > IDLOG_MAX_FIELD)
        id_len = IDLOG_MAX_FIELD;
    if (reason_len > IDLOG_MAX_FIELD)
        reason_len = IDLOG_MAX_FIELD;
    memset(&h, 0, sizeof h);
    h.line = line;
    h.id_len = id ? (uint32_t)id_len : UINT32_MAX;
    h.reason_len = reason ? (uint32_t)reason_len : UINT32_MAX;
    if (fwrite(&h, sizeof h, 1, l->f) != 1 || (id_len && fwrite(id, id_len, 1, l->f) != 1) ||
        (reason_len && fwrite(reason, reason_len, 1, l->f) != 1))
        return -1;
    l->count++;
    return 0;
}

int idlog_add_task(idlog *l, unsigned long long line, const char *task_id)
{
    return put(l, line, task_id ? task_id : "", NULL);
}

int idlog_add_bad(idlog *l, unsigned long long line, const char *task_id, const char *reason)
{
    return put(l, line, task_id, reason ? reason : "");
}

int idlog_rewind(idlog *l)
{
    if (fflush(l->f) != 0)
        return -1;
    return fseek(l->f, 0, SEEK_SET);
}

/* Reads n bytes into *buf (reallocated, NUL-terminated); n == UINT32_MAX gives NULL. */
static int get_field(FILE *f, uint32_t n, char **buf, const char **out)
{
    char *p;
    if (n == UINT32_MAX) {
        *out = NULL;
        return 0;
    }
    if (n > IDLOG_MAX_FIELD) {
        errno = EINVAL;
        return -1;
    }
    p = realloc(*buf, (size_t)n + 1);
    if (!p)
        return -1;
    *buf = p;
    if (n && fread(p, n, 1, f) != 1) {
        errno = ferror(f) ? EIO : EINVAL;
        return -1;
    }
    p[n] = '\0';
    *out = p;
    return 0;
}

int idlog_next(idlog *l, idlog_entry *e)
{
    record_head h;
    if (fread(&h, sizeof h, 1, l->f) != 1) {
        if (ferror(l->f)) {
            errno = EIO;
            return -1;
        }
        return 0;
    }
    if (get_field(l->f, h.id_len, &l->id, &e->task_id) != 0 ||
        get_field(l->f, h.reason_len, &l->reason, &e->reason) != 0)
        return -1;
    e->line = h.line;
    e->bad = h.reason_len != UINT32_MAX;
    return 1;
}

size_t idlog_count(const idlog *l)
{
    return l->count;
}
