/*
 * buf.c - a growable, always NUL-terminated byte buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggi.h"

int ggi_buf_reserve(ggi_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return GG_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return GG_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return GG_ENOMEM;
    b->data = p;
    b->cap = cap;
    return GG_OK;
}

int ggi_buf_append(ggi_buf *b, const void *data, size_t n)
{
    if (ggi_buf_reserve(b, n) != GG_OK)
        return ggi_error(GG_ENOMEM, "out of memory growing a buffer to %zu bytes", b->len + n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return GG_OK;
}

int ggi_buf_puts(ggi_buf *b, const char *s)
{
    return ggi_buf_append(b, s, strlen(s));
}

int ggi_buf_printf(ggi_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ggi_error(GG_EINVAL, "bad format string");
    if (ggi_buf_reserve(b, (size_t)n) != GG_OK)
        return ggi_error(GG_ENOMEM, "out of memory formatting into a buffer");
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return GG_OK;
}

char *ggi_buf_steal(ggi_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void ggi_buf_free(ggi_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
