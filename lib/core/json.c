/*
 * json.c - checked access to cJSON objects, with errors that name the field, printing into
 * plain malloc'd memory (independent of any hooks a host may have set on cJSON), and parsing
 * of JSON from outside that refuses what cJSON would take silently: a NUL inside a string
 * (cJSON's strings end there, so the rest would vanish) and bytes that are not UTF-8.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggi.h"

static const cJSON *lookup(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && cJSON_IsNull(v)) ? NULL : v;
}

int ggi_json_string(const cJSON *obj, const char *key, int required, size_t max_len,
                    const char **out)
{
    const cJSON *v = lookup(obj, key);
    *out = NULL;
    if (!v)
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    if (!cJSON_IsString(v) || !v->valuestring)
        return ggi_error(GG_EINVAL, "field '%s' must be a string", key);
    size_t n = strlen(v->valuestring);
    if (max_len && n > max_len)
        return ggi_error(GG_ETOOBIG, "field '%s' is %zu bytes, the limit is %zu", key, n,
                         max_len);
    *out = v->valuestring;
    return GG_OK;
}

int ggi_json_number(const cJSON *obj, const char *key, int required, double lo, double hi,
                    double *out)
{
    const cJSON *v = lookup(obj, key);
    if (!v)
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ggi_error(GG_EINVAL, "field '%s' must be a number", key);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return ggi_error(GG_EINVAL, "field '%s' must be a number from %g to %g", key, lo, hi);
    *out = v->valuedouble;
    return GG_OK;
}

int ggi_json_int(const cJSON *obj, const char *key, int required, long long lo, long long hi,
                 long long *out)
{
    const cJSON *v = lookup(obj, key);
    if (!v)
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return ggi_error(GG_EINVAL, "field '%s' must be an integer from %lld to %lld", key, lo,
                         hi);
    *out = (long long)d;
    return GG_OK;
}

int ggi_json_bool(const cJSON *obj, const char *key, int required, int *out)
{
    const cJSON *v = lookup(obj, key);
    if (!v)
        return required ? ggi_error(GG_EINVAL, "missing field '%s'", key) : GG_OK;
    if (!cJSON_IsBool(v))
        return ggi_error(GG_EINVAL, "field '%s' must be true or false", key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return GG_OK;
}

char *ggi_json_print(const cJSON *item)
{
    ggi_buf b = GGI_BUF_INIT;
    if (ggi_json_write(&b, item) != GG_OK) {
        ggi_buf_free(&b);
        return NULL;
    }
    return ggi_buf_steal(&b);
}

/* The deepest nesting in text[0, upto], strings skipped: tells "nested too deeply" from
 * other errors where cJSON stopped. */
static size_t max_depth(const char *text, size_t upto)
{
    size_t depth = 0, max = 0;
    int in_str = 0;
    for (size_t i = 0; i < upto; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return max;
}

/* Parses; *value_len is where the value ends (what follows is white space or padding). */
static int parse_syntax(const char *text, size_t len, cJSON **out, size_t *value_len)
{
    const char *end = NULL;
    *out = NULL;
    if (!text)
        return ggi_error(GG_EINVAL, "JSON text is NULL");
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        if (max_depth(text, at < len ? at + 1 : len) > CJSON_NESTING_LIMIT)
            return ggi_error(GG_EINVAL, "JSON nested too deeply (limit %d) near byte %zu",
                             CJSON_NESTING_LIMIT, at);
        return ggi_error(GG_EINVAL, "malformed JSON near byte %zu", at);
    }
    /* Only white space may follow the value. */
    const char *p = end ? end : text + len;
    while (p < text + len && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p < text + len && *p != '\0') {
        cJSON_Delete(v);
        return ggi_error(GG_EINVAL, "malformed JSON: unexpected text after the value at byte %zu",
                         (size_t)(p - text));
    }
    *out = v;
    *value_len = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    return GG_OK;
}

int ggi_json_parse_syntax(const char *text, size_t len, cJSON **out, size_t *value_len)
{
    size_t n = 0;
    int rc = parse_syntax(text, len, out, &n);
    if (value_len)
        *value_len = n;
    return rc;
}

/* ---- the strings of JSON text: no NUL, only UTF-8 ---- */

/* One open container while scanning: its kind, the member being read (an array's index, an
 * object's key as it stands in the text). */
typedef struct frame {
    int object;
    size_t index;
    const char *key;
    size_t key_len;
} frame;

/* Appends s[0, n) to the path, shown safely: printable ASCII as it is, anything else '?'. */
static void path_put(char *path, size_t size, size_t *at, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *at + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        path[(*at)++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    path[*at] = '\0';
}

static void path_of(const frame *st, size_t depth, char *path, size_t size)
{
    size_t at = 0;
    if (!size)
        return;
    path[0] = '\0';
    for (size_t d = 0; d < depth; d++) {
        char idx[32];
        if (st[d].object) {
            if (!st[d].key)
                break; /* the object's key itself */
            if (at)
                path_put(path, size, &at, ".", 1);
            path_put(path, size, &at, st[d].key, st[d].key_len > 64 ? 64 : st[d].key_len);
        } else {
            int n = snprintf(idx, sizeof idx, "[%zu]", st[d].index);
            path_put(path, size, &at, idx, (size_t)n);
        }
    }
}

/* Quick: no NUL, no "\u0000" (escaped or not) and the whole text UTF-8, so every string in it
 * is; only text that fails this is walked string by string to name the field at fault. */
static int plain_text(const char *text, size_t len)
{
    static const char nul_escape[] = "\\u0000";
    return !memchr(text, '\0', len) && !memmem(text, len, nul_escape, sizeof nul_escape - 1) &&
           ggi_utf8_invalid_at(text, len) == len;
}

int ggi_json_check_strings(const char *text, size_t len, char *path, size_t path_size)
{
    char local[256];
    if (!path || !path_size) {
        path = local;
        path_size = sizeof local;
    }
    path[0] = '\0';
    if (!text || plain_text(text, len))
        return GG_OK;
    frame *st = malloc((CJSON_NESTING_LIMIT + 2) * sizeof *st);
    if (!st)
        return ggi_error(GG_ENOMEM, "out of memory checking JSON text");
    size_t depth = 0;
    int want_key = 0, rc = GG_OK;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char c = s[i];
        if (c == '{' || c == '[') {
            if (depth > CJSON_NESTING_LIMIT) {
                rc = ggi_error(GG_EINVAL, "JSON nested too deeply (limit %d) near byte %zu",
                               CJSON_NESTING_LIMIT, i);
                break;
            }
            st[depth] = (frame){ c == '{', 0, NULL, 0 };
            depth++;
            want_key = c == '{';
        } else if (c == '}' || c == ']') {
            if (depth)
                depth--;
            want_key = 0;
        } else if (c == ',') {
            if (depth && st[depth - 1].object) {
                st[depth - 1].key = NULL;
                want_key = 1;
            } else if (depth) {
                st[depth - 1].index++;
            }
        } else if (c == '"') {
            size_t start = i + 1, j = start;
            const char *problem = NULL;
            size_t bad_at = 0;
            while (j < len && s[j] != '"') {
                if (s[j] == '\\') {
                    if (j + 5 < len && s[j + 1] == 'u' && !memcmp(s + j + 2, "0000", 4)) {
                        problem = "nul";
                        break;
                    }
                    j += 2;
                } else if (s[j] == 0) {
                    problem = "nul";
                    break;
                } else if (s[j] >= 0x80) {
                    size_t n = ggi_utf8_seq(s + j, len - j);
                    if (!n) {
                        problem = "utf8";
                        bad_at = j;
                        break;
                    }
                    j += n;
                } else {
                    j++;
                }
            }
            if (problem) {
                int is_key = want_key && depth && st[depth - 1].object;
                path_of(st, depth, path, path_size);
                char what[320];
                if (is_key)
                    snprintf(what, sizeof what, "a key in %s%s%s", *path ? "field '" : "",
                             *path ? path : "the top object", *path ? "'" : "");
                else
                    snprintf(what, sizeof what, "%s%s%s", *path ? "field '" : "",
                             *path ? path : "the JSON value", *path ? "'" : "");
                if (problem[0] == 'n')
                    rc = ggi_error(GG_EINVAL, "%s holds a NUL character (\\u0000), which no "
                                   "string may hold", what);
                else
                    rc = ggi_error(GG_EINVAL, "%s is not valid UTF-8 (byte 0x%02x at byte %zu "
                                   "of the JSON text)", what, s[bad_at], bad_at);
                break;
            }
            if (want_key && depth && st[depth - 1].object) {
                st[depth - 1].key = text + start;
                st[depth - 1].key_len = j - start;
                want_key = 0;
            }
            i = j; /* the closing quote */
        }
    }
    free(st);
    return rc;
}

int ggi_json_parse(const char *text, size_t len, cJSON **out)
{
    size_t n = 0;
    int rc = parse_syntax(text, len, out, &n);
    if (rc)
        return rc;
    rc = ggi_json_check_strings(text, n, NULL, 0);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

int ggi_json_add_str(cJSON *obj, const char *key, const char *value)
{
    cJSON *v = value ? cJSON_AddStringToObject(obj, key, value)
                     : cJSON_AddNullToObject(obj, key);
    return v ? GG_OK : ggi_error(GG_ENOMEM, "out of memory building JSON");
}

int ggi_json_add_num(cJSON *obj, const char *key, double value)
{
    return cJSON_AddNumberToObject(obj, key, value) ? GG_OK
                                                    : ggi_error(GG_ENOMEM, "out of memory building JSON");
}

int ggi_json_array_has_id(const cJSON *arr, const char *id)
{
    const cJSON *doc;
    cJSON_ArrayForEach(doc, arr)
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "id"));
        if (v && strcmp(v, id) == 0)
            return 1;
    }
    return 0;
}

int ggi_json_add_bool(cJSON *obj, const char *key, int value)
{
    return cJSON_AddBoolToObject(obj, key, value) ? GG_OK
                                                  : ggi_error(GG_ENOMEM, "out of memory building JSON");
}
