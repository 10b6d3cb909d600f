/*
 * json.c - checked access to cJSON objects, with errors that name the field, and printing
 * into plain malloc'd memory (independent of any hooks a host may have set on cJSON).
 */
#include <math.h>
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

int ggi_json_parse(const char *text, size_t len, cJSON **out)
{
    const char *end = NULL;
    *out = NULL;
    if (!text)
        return ggi_error(GG_EINVAL, "JSON text is NULL");
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
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
    return GG_OK;
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

int ggi_json_add_bool(cJSON *obj, const char *key, int value)
{
    return cJSON_AddBoolToObject(obj, key, value) ? GG_OK
                                                  : ggi_error(GG_ENOMEM, "out of memory building JSON");
}
