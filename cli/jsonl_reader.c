/*
 * jsonl_reader.c - the bounded JSON-lines reader: reads in fixed chunks, copies a line into
 * a buffer that never grows past the limit, and only counts the bytes of a line that is too
 * long, so a huge or endless line costs no memory.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonl_reader.h"

#define CHUNK (64 * 1024)

struct jsonl_reader {
    int fd;
    size_t max_line;
    char chunk[CHUNK];
    size_t pos, end;   /* unread bytes are chunk[pos..end) */
    int eof;
    char *line;        /* the current line, cap bytes */
    size_t cap;
    unsigned long long lineno;
};

int jsonl_reader_new(jsonl_reader **out, int fd, size_t max_line)
{
    jsonl_reader *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return -1;
    r->fd = fd;
    r->max_line = max_line;
    r->cap = 4096;
    r->line = malloc(r->cap);
    if (!r->line) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void jsonl_reader_destroy(jsonl_reader **pr)
{
    if (!pr || !*pr)
        return;
    free((*pr)->line);
    free(*pr);
    *pr = NULL;
}

/* Makes room for need bytes (need <= max_line + 1). */
static int reserve(jsonl_reader *r, size_t need)
{
    size_t cap = r->cap;
    char *p;
    if (need <= cap)
        return 0;
    while (cap < need)
        cap = cap > (SIZE_MAX / 2) ? need : cap * 2;
    if (cap > r->max_line + 1)
        cap = r->max_line + 1;
    if (cap < need)
        cap = need;
    p = realloc(r->line, cap);
    if (!p)
        return -1;
    r->line = p;
    r->cap = cap;
    return 0;
}

static int fill(jsonl_reader *r)
{
    for (;;) {
        ssize_t n = read(r->fd, r->chunk, CHUNK);
        if (n > 0) {
            r->pos = 0;
            r->end = (size_t)n;
            return 0;
        }
        if (n == 0) {
            r->eof = 1;
            return 0;
        }
        if (errno != EINTR)
            return -1;
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v')
            return 0;
    return 1;
}

int jsonl_reader_next(jsonl_reader *r, const char **line, size_t *len,
                      unsigned long long *lineno)
{
    *line = NULL;
    *len = 0;
    for (;;) {
        size_t n = 0, total = 0;
        int too_long = 0, any = 0;

        for (;;) {
            const char *start, *nl;
            size_t seg;
            if (r->pos == r->end) {
                if (r->eof)
                    break;
                if (fill(r) != 0)
                    return -1;
                if (r->eof)
                    break;
            }
            any = 1;
            start = r->chunk + r->pos;
            nl = memchr(start, '\n', r->end - r->pos);
            seg = nl ? (size_t)(nl - start) : r->end - r->pos;
            total += seg;
            if (!too_long) {
                if (n + seg > r->max_line) {
                    too_long = 1;
                } else {
                    if (reserve(r, n + seg + 1) != 0) {
                        errno = ENOMEM;
                        return -1;
                    }
                    memcpy(r->line + n, start, seg);
                    n += seg;
                }
            }
            r->pos += seg + (nl ? 1 : 0);
            if (nl)
                break;
        }
        if (!any)
            return JSONL_EOF;
        r->lineno++;
        *lineno = r->lineno;
        if (too_long) {
            *len = total;
            return JSONL_TOO_LONG;
        }
        if (n > 0 && r->line[n - 1] == '\r')
            n--;
        r->line[n] = '\0';
        if (is_blank(r->line, n))
            continue;
        *line = r->line;
        *len = n;
        return JSONL_LINE;
    }
}
