/*
 * json_write.c - compact JSON text of a cJSON tree, appended to a ggi_buf (ggi_json_write).
 *
 * cJSON's own printer formats every number with sprintf("%1.15g") and checks it with sscanf,
 * which made numbers the dearest part of every protocol message. Here an integral number
 * (the usual case: sequence numbers, counts, attempt numbers) is written digit by digit, and
 * only a fractional one goes through "%.15g", checked by strtod and widened to "%.17g" when
 * that does not read back the same double. Strings are escaped as cJSON escapes them, except
 * that a byte which is not part of valid UTF-8 (program output cut mid-character, or binary)
 * is written as \ufffd, so every text written is JSON whatever its strings held.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggi.h"

#define MAX_DEPTH 1000 /* as deep as cJSON parses */

typedef struct writer {
    ggi_buf *b;
    int failed;
} writer;

static char *room(writer *w, size_t n)
{
    if (w->failed)
        return NULL;
    if (ggi_buf_reserve(w->b, n) != GG_OK) {
        w->failed = GG_ENOMEM;
        return NULL;
    }
    return w->b->data + w->b->len;
}

static void put(writer *w, const char *s, size_t n)
{
    char *p = room(w, n);
    if (!p)
        return;
    memcpy(p, s, n);
    w->b->len += n;
}

static void put_char(writer *w, char c)
{
    char *p = room(w, 1);
    if (!p)
        return;
    *p = c;
    w->b->len++;
}

static void put_number(writer *w, double d)
{
    char tmp[32];
    if (!isfinite(d)) {
        put(w, "null", 4); /* as cJSON writes it: JSON has no NaN or infinity */
        return;
    }
    if (d == floor(d) && fabs(d) < 9007199254740992.0) { /* an integer below 2^53 */
        long long v = (long long)d;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        char *e = tmp + sizeof tmp, *p = e;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        put(w, p, (size_t)(e - p));
        return;
    }
    int n = snprintf(tmp, sizeof tmp, "%.15g", d);
    if (n > 0 && strtod(tmp, NULL) != d)
        n = snprintf(tmp, sizeof tmp, "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof tmp) {
        w->failed = ggi_error(GG_EINVAL, "cannot write the number %g", d);
        return;
    }
    put(w, tmp, (size_t)n);
}

static void put_string(writer *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        put(w, "\"\"", 2);
        return;
    }
    put_char(w, '"');
    const char *run = s; /* bytes written as they are, not yet copied */
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
            continue;
        if (c >= 0x80) {
            /* the string ends at its NUL, which no sequence takes as a continuation byte */
            size_t n = ggi_utf8_seq((const unsigned char *)p, 4);
            if (n) {
                p += n - 1;
                continue;
            }
            put(w, run, (size_t)(p - run));
            put(w, "\\ufffd", 6); /* a byte that is not UTF-8: U+FFFD, so the text stays JSON */
            run = p + 1;
            continue;
        }
        put(w, run, (size_t)(p - run));
        if (c == 0)
            break;
        run = p + 1;
        char esc[6] = { '\\', 0, 0, 0, 0, 0 };
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        put(w, esc, n);
    }
    put_char(w, '"');
}

static void put_item(writer *w, const cJSON *item, int depth)
{
    if (w->failed)
        return;
    if (!item || depth > MAX_DEPTH) {
        w->failed = ggi_error(GG_EINVAL, item ? "JSON nested too deeply to write"
                                              : "no JSON item to write");
        return;
    }
    switch (item->type & 0xFF) {
    case cJSON_False:
        put(w, "false", 5);
        break;
    case cJSON_True:
        put(w, "true", 4);
        break;
    case cJSON_NULL:
        put(w, "null", 4);
        break;
    case cJSON_Number:
        put_number(w, item->valuedouble);
        break;
    case cJSON_String:
        put_string(w, item->valuestring);
        break;
    case cJSON_Raw:
        if (!item->valuestring) {
            w->failed = ggi_error(GG_EINVAL, "a raw JSON item without text");
            return;
        }
        put(w, item->valuestring, strlen(item->valuestring));
        break;
    case cJSON_Array:
    case cJSON_Object: {
        int object = (item->type & 0xFF) == cJSON_Object;
        put_char(w, object ? '{' : '[');
        for (const cJSON *c = item->child; c && !w->failed; c = c->next) {
            if (c != item->child)
                put_char(w, ',');
            if (object) {
                put_string(w, c->string);
                put_char(w, ':');
            }
            put_item(w, c, depth + 1);
        }
        put_char(w, object ? '}' : ']');
        break;
    }
    default:
        w->failed = ggi_error(GG_EINVAL, "a JSON item of unknown type %d", item->type);
    }
}

int ggi_json_write(ggi_buf *b, const cJSON *item)
{
    if (!b)
        return ggi_error(GG_EINVAL, "ggi_json_write: no buffer");
    size_t mark = b->len;
    writer w = { b, 0 };
    put_item(&w, item, 0);
    if (!w.failed && !room(&w, 0))
        w.failed = GG_ENOMEM;
    if (w.failed) {
        b->len = mark; /* nothing half written stays */
        if (b->data)
            b->data[mark] = '\0';
        return w.failed == GG_ENOMEM ? ggi_error(GG_ENOMEM, "out of memory writing JSON")
                                     : w.failed;
    }
    b->data[b->len] = '\0';
    return GG_OK;
}

int ggi_json_write_string(ggi_buf *b, const char *s)
{
    if (!b)
        return ggi_error(GG_EINVAL, "ggi_json_write_string: no buffer");
    size_t mark = b->len;
    writer w = { b, 0 };
    put_string(&w, s);
    if (!w.failed && !room(&w, 0))
        w.failed = GG_ENOMEM;
    if (w.failed) {
        b->len = mark;
        if (b->data)
            b->data[mark] = '\0';
        return ggi_error(GG_ENOMEM, "out of memory writing JSON");
    }
    b->data[b->len] = '\0';
    return GG_OK;
}
